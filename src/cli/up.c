/* SPDX-License-Identifier: MIT */
/*
 * up.c - `microvm up`: run the VPN appliance and serve the control socket.
 *
 * The process owns a manager (VM + agent + SOCKS5 server).  It serves the control socket
 * (control.h) on a libuv loop: the loop thread accepts, reads request lines and writes
 * answers; each request is answered on libuv's thread pool (up_work()), so a `vpn connect`
 * that waits for OpenVPN does not block `status`.  A `console` client is streamed from the
 * loop: the console's delivery thread queues bytes and wakes the loop with a uv_async.
 * A `console_read` (console --no-follow) is an ordinary request whose answer line is followed by
 * the raw bytes of one mvm_manager_console_read() snapshot.
 * SIGINT/SIGTERM (uv_signal) or `microvm down` stop the loop; the VM is stopped and the
 * answers in flight get out before the process exits.  With --detach the process forks after parsing its options; the parent returns
 * once the child serves its control socket (or reports why it could not).  Windows has no
 * fork(): there the process starts itself again, detached, and the VPN password goes to
 * the child through a pipe (see the Windows up_detach()).  On a terminal,
 * starting the VM and connecting the VPN show a progress line (progress.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <aclapi.h>
#include <io.h>
#include <shellapi.h>
#define O_CLOEXEC	O_NOINHERIT
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#endif

#include <cjson/cJSON.h>
#include <uv.h>

#include "cli/cli.h"
#include "cli/control.h"
#include "runtime/compat.h"
#include "sandbox/secret.h"
#include "microvm/manager.h"
#ifdef _WIN32
#include "wsl/wsl_cmd.h"	/* wsl_cmdline(): CommandLineToArgvW quoting */
#endif

int cli_up(int argc, char **argv);

/**
 * struct up_ctx - the running appliance
 * @m:		manager
 * @ctl_path:	control socket path
 * @secret_path: file with a generated SOCKS password, or ""
 * @loop:	the event loop serving the control socket (loop thread: everything below)
 * @server:	the listening control socket
 * @signals:	the stop signals (up_sigs[])
 * @clients:	the open control connections
 * @nclients:	how many
 * @stopping:	`down` or a signal: no new connections, the loop stops
 * @stop_timeout_ms: how long the guest gets to stop before it is killed (--stop-timeout)
 */
/* the signals that stop `up`: SIGINT, SIGTERM (Windows: Ctrl-C, Ctrl-Break, console closed) */
#ifdef _WIN32
#define UP_NSIGS	3
#else
#define UP_NSIGS	2
#endif

struct up_ctx {
	mvm_manager *m;
	char ctl_path[PATH_MAX];
	char secret_path[CLI_PATH_MAX];
	uv_loop_t *loop;
	uv_pipe_t server;
	uv_signal_t signals[UP_NSIGS];
	struct up_client *clients;
	int nclients;
	bool stopping;
	int stop_timeout_ms;
};

/* --box-exec CMD: the box runs /bin/sh -c CMD instead of the agent */
static const char *up_box_argv[] = { "/bin/sh", "-c", NULL, NULL };

/* backends this build has (runtime.c's mvm_backends[]) */
#ifdef __linux__
#define UP_BACKENDS		"auto, kvm, nsbox"
#define UP_BACKENDS_HELP	"auto (default), kvm, nsbox (wsl, hvf: not available on this platform)"
#elif defined(_WIN32)
#define UP_BACKENDS		"auto, wsl"
#define UP_BACKENDS_HELP	"auto (default: wsl), wsl (kvm, nsbox: Linux only)"
#else
#define UP_BACKENDS		"auto"
#define UP_BACKENDS_HELP	"auto (no backend is available on this platform yet)"
#endif

#ifdef _WIN32
#define UP_CONTROL_HELP \
"  --control PATH        control endpoint, a named pipe (default \\\\.\\pipe\\microvm-USER-control;\n" \
"                        %%MICROVM_CONTROL%% overrides)\n"
#else
#define UP_CONTROL_HELP \
"  --control PATH        control socket (default $XDG_RUNTIME_DIR/microvm/control.sock or\n" \
"                        /run/microvm/control.sock; $MICROVM_CONTROL overrides)\n"
#endif

static void up_usage(FILE *out)
{
	fprintf(out,
"usage: microvm up [OPTIONS]\n"
"\n"
"Run the VPN appliance in the foreground: start the micro-VM, wait for its agent, serve the\n"
"SOCKS5 proxy (127.0.0.1:1080) that routes connections through the VM's VPN, and accept\n"
"commands from 'microvm vpn ...', 'status', 'console' and 'down' on a control socket.\n"
"\n"
"VPN:\n"
"  --profile FILE        upload this OpenVPN profile and connect it at start\n"
"  --user USER           VPN username (the password is asked without echo)\n"
"  --password-stdin      read the VPN password from the first line of stdin\n"
"\n"
"SOCKS5 proxy:\n"
"  --socks ADDR:PORT     listen address (default 127.0.0.1:1080; [::1]:PORT for IPv6)\n"
"  --socks-allow-remote  allow a non-loopback listen address (anyone reaching it uses the VPN)\n"
"  --socks-auth          require username 'microvm' and the agent's auth secret as the\n"
"                        password (or a random one; written to socks.secret next to the\n"
"                        control socket, mode 0600)\n"
"  --socks-user USER     require this username ...\n"
"  --socks-password-file FILE   ... with the password in FILE (first line)\n"
"  --idle-timeout SEC    close relayed connections idle this long (default 3600)\n"
"  --no-socks            do not serve SOCKS5\n"
"\n"
"VM:\n"
"  --backend NAME        " UP_BACKENDS_HELP "\n"
"  --kernel FILE         guest kernel (vmlinux or bzImage; not for nsbox)\n"
"  --initrd FILE         guest initramfs (not for nsbox)\n"
"  --rootfs PATH         root file system for the nsbox backend\n"
"                        defaults: $MICROVM_KERNEL, $MICROVM_INITRD, $MICROVM_ROOTFS, else\n"
"                        what 'make kernel image' built, else $datadir/microvm/\n"
"  --cmdline TEXT        extra kernel command line (not for nsbox)\n"
"  --memory MIB          guest memory, 16-65536 (default 256; not for nsbox)\n"
"  --boot-timeout SEC    how long to wait for the agent (default 60)\n"
"  --stop-timeout SEC    at 'down' or a signal: how long the guest gets to stop after the\n"
"                        agent's shutdown before it is killed (default 10)\n"
"  --box-exec CMD        nsbox backend: run /bin/sh -c CMD in the box instead of the agent\n"
"                        (CMD must start the agent for 'up' to succeed)\n"
"  --net-host-loopback   the guest network's gateway 10.0.2.2 becomes this host's 127.0.0.1.\n"
"                        RISK: the guest (and through it the VPN profile's OpenVPN) reaches\n"
"                        every service listening on this host's loopback; off by default\n"
"\n"
"Attach to an agent that already runs (no VM; for tests and development):\n"
"  --agent tcp:HOST      the agent's ports are TCP ports on HOST\n"
"  --agent-netns PATH    ... dialled from inside this network namespace (/run/netns/NAME);\n"
"                        HOST defaults to 127.0.0.1 there\n"
"  --agent-secret-file FILE  the agent's secret (its --auth-secret-file: 64 hex\n"
"                        characters; FILE must not be readable by others). Required:\n"
"                        every connection proves it, and an agent that cannot is refused\n"
"\n"
"Options are checked before anything starts: a bad value is an error naming the option.\n"
"\n"
"General:\n"
UP_CONTROL_HELP
"  --detach              go to the background once everything is up (messages go to\n"
"                        up.log beside the control socket)\n"
"  -h, --help            this help\n"
"\n"
"Examples:\n"
"  microvm up --profile corp.ovpn --user alice\n"
"  microvm up --kernel vmlinux --initrd initrd.img --profile corp.ovpn --user alice\n"
"  printf '%%s\\n' \"$PW\" | microvm up --profile corp.ovpn --user alice --password-stdin --detach\n"
"  microvm up --agent-netns /run/netns/vpnclient --socks 127.0.0.1:1081\n"
"  ssh -o ProxyCommand='nc -X 5 -x 127.0.0.1:1080 %%h %%p' admin@10.8.0.1\n"
"  curl --socks5-hostname 127.0.0.1:1080 http://intranet.example/\n");
}

static void up_log(void *opaque, const char *line)
{
	(void)opaque;
	cli_progress_note("microvm: %s", line);
}

/* ---- JSON views of the manager state ---------------------------------------------------- */

/**
 * up_vpn_json() - {"state", "tun_ip", "auth_url", "profile", "error"}
 * Return: a new object (NULL on OOM).
 */
static cJSON *up_vpn_json(const struct mvm_vpn_info *v)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "state", mvm_vpn_state_name(v->state));
	cJSON_AddStringToObject(o, "tun_ip", v->tun_ip);
	cJSON_AddStringToObject(o, "auth_url", v->auth_url);
	cJSON_AddStringToObject(o, "profile", v->profile);
	cJSON_AddStringToObject(o, "error", v->error);
	return o;
}

/**
 * up_status_json() - the whole status as the `status` command shows it
 */
static cJSON *up_status_json(struct up_ctx *u)
{
	struct mvm_manager_status st;
	cJSON *o = cJSON_CreateObject(), *s;

	mvm_manager_get_status(u->m, &st);
	cJSON_AddBoolToObject(o, "vm_running", st.vm_running);
	cJSON_AddBoolToObject(o, "attached", st.attached);
	cJSON_AddStringToObject(o, "hypervisor", st.hypervisor);
	cJSON_AddBoolToObject(o, "agent_reachable", st.agent_reachable);
	cJSON_AddItemToObject(o, "vpn", up_vpn_json(&st.vpn));
	s = cJSON_AddObjectToObject(o, "socks");
	cJSON_AddBoolToObject(s, "running", st.socks_running);
	cJSON_AddStringToObject(s, "address", st.socks_addr);
	cJSON_AddNumberToObject(s, "port", st.socks_port);
	cJSON_AddBoolToObject(s, "auth", st.socks_auth);
	cJSON_AddStringToObject(s, "secret_file", u->secret_path);
	cJSON_AddStringToObject(o, "last_error", st.last_error);
	cJSON_AddStringToObject(o, "fault", st.fault);
	return o;
}

static cJSON *up_ok(void)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", true);
	return o;
}

/**
 * up_err() - {"ok": false, "error": the last libmicrovm error or @fallback}
 */
static cJSON *up_err(const char *fallback)
{
	const char *e = mvm_last_error();
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", false);
	cJSON_AddStringToObject(o, "error", e && *e ? e : fallback);
	return o;
}

static const char *up_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- control clients -------------------------------------------------------------------- */

#define UP_CONSOLE_QUEUE_MAX	(256 * 1024)	/* console bytes held for one slow client */
#define UP_READ_CHUNK		65536

/**
 * struct up_client - one control connection; every field but @out/@out_len belongs to the
 * loop thread
 * @u:		appliance
 * @next:	the next connection in @u->clients
 * @pipe:	the connection
 * @work:	the request being answered on libuv's thread pool
 * @in:		bytes read and not consumed yet (request lines; in console mode, keys)
 * @in_len/@in_cap: their length and the buffer's size
 * @req:	the request on the thread pool
 * @resp:	its answer
 * @raw/@raw_len: bytes that follow the answer line (`console_read`), or NULL
 * @busy:	a request is on the thread pool (reading is paused meanwhile)
 * @done:	`down` answered: close and stop once the answer is out
 * @eof:	the client went away while @busy: close once the answer is back
 * @closing:	uv_close() was called on the handles
 * @console_id:	the console subscription (console mode), or -1
 * @async:	wakes the loop when console bytes are queued (console mode)
 * @lock:	protects @out/@out_len: the console's delivery thread fills them
 * @out:	console bytes waiting for the loop to write them
 * @out_len:	their length
 * @handles:	handles not closed yet; the client is freed when the last one is
 * @ending:	the last answer is queued: what the client sends now is not read
 * @async_open:	@async is initialised and not closed yet
 */
struct up_client {
	struct up_ctx *u;
	struct up_client *next;
	uv_pipe_t pipe;
	uv_work_t work;
	char *in;
	size_t in_len, in_cap;
	cJSON *req, *resp;
	char *raw;
	size_t raw_len;
	bool busy, done, eof, closing, ending, async_open;
	int console_id;
	uv_async_t async;
	pthread_mutex_t lock;
	char *out;
	size_t out_len;
	int handles;
};

/**
 * struct up_write - one write to a client
 * @req:	libuv's request
 * @c:		the client
 * @buf:	the bytes (freed, and wiped, when written)
 * @len:	their length
 * @then:	what follows once it is written (UP_THEN_*)
 */
struct up_write {
	uv_write_t req;
	struct up_client *c;
	char *buf;
	size_t len;
	int then;
};

/* after a write: go on, close the client (an error answer that ends the connection, or the
 * last one before the appliance stops), or close it and stop the appliance (`down`) */
enum { UP_THEN_MORE, UP_THEN_CLOSE, UP_THEN_STOP };

static void up_client_next(struct up_client *c);
static void up_shutdown(struct up_ctx *u);
static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
#ifdef _WIN32
static int up_peer_check(uv_pipe_t *pipe);
#endif
static void up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/**
 * up_handle() - answer one request
 * @c:		client
 * @req:	the request
 * @done:	set when the connection should end after the answer
 *
 * Return: the answer.
 */
static cJSON *up_handle(struct up_client *c, cJSON *req, bool *done)
{
	struct up_ctx *u = c->u;
	const char *cmd = up_str(req, "cmd"), *name, *content, *user, *pass;
	struct mvm_vpn_info info;
	cJSON *resp, *arr;
	uint64_t total;
	char **names;
	size_t n, i;
	long got;
	int ret;

	if (!cmd)
		return up_err("request without \"cmd\"");
	if (!strcmp(cmd, "status")) {
		resp = up_ok();
		cJSON_AddItemToObject(resp, "status", up_status_json(u));
		return resp;
	}
	if (!strcmp(cmd, "vpn_import")) {
		name = up_str(req, "name");
		content = up_str(req, "content");
		if (mvm_manager_upload_profile(u->m, name, content))
			return up_err("upload failed");
		return up_ok();
	}
	if (!strcmp(cmd, "vpn_connect") || !strcmp(cmd, "vpn_status") ||
	    !strcmp(cmd, "vpn_check_webauth")) {
		if (!strcmp(cmd, "vpn_connect")) {
			name = up_str(req, "name");
			user = up_str(req, "username");
			pass = up_str(req, "password");
			ret = mvm_manager_vpn_connect(u->m, name, up_str(req, "content"), user,
						      pass, &info);
		} else if (!strcmp(cmd, "vpn_status")) {
			ret = mvm_manager_vpn_status(u->m, &info);
		} else {
			ret = mvm_manager_check_webauth(u->m, &info);
		}
		if (ret)
			return up_err("agent request failed");
		resp = up_ok();
		cJSON_AddItemToObject(resp, "vpn", up_vpn_json(&info));
		return resp;
	}
	if (!strcmp(cmd, "vpn_disconnect")) {
		if (mvm_manager_vpn_disconnect(u->m))
			return up_err("disconnect failed");
		return up_ok();
	}
	if (!strcmp(cmd, "vpn_profiles")) {
		if (mvm_manager_list_profiles(u->m, &names, &n))
			return up_err("cannot list profiles");
		resp = up_ok();
		arr = cJSON_AddArrayToObject(resp, "profiles");
		for (i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
		mvm_manager_free_list(names, n);
		return resp;
	}
	if (!strcmp(cmd, "console_read")) {
		/* what the console holds now: the answer line says how many raw bytes follow */
		c->raw = malloc(MVM_CONSOLE_KEPT);
		if (!c->raw)
			return up_err("out of memory");
		got = mvm_manager_console_read(u->m, c->raw, MVM_CONSOLE_KEPT, &total);
		if (got < 0) {
			free(c->raw);
			c->raw = NULL;
			return up_err("no console");
		}
		c->raw_len = (size_t)got;
		resp = up_ok();
		cJSON_AddNumberToObject(resp, "bytes", (double)got);
		cJSON_AddNumberToObject(resp, "total", (double)total);
		return resp;
	}
	if (!strcmp(cmd, "down")) {
		mvm_manager_stop_vm(u->m, u->stop_timeout_ms);
		/* from now on `status` says "not running" rather than reaching a closing server */
		unlink(u->ctl_path);
		*done = true;	/* up_write_done() stops the loop once this answer is out */
		return up_ok();
	}
	return up_err("unknown command");
}

/**
 * up_client_closed() - a handle of @c is closed; free @c with the last one
 */
static void up_client_closed(uv_handle_t *h)
{
	struct up_client *c = h->data, **pp;

	if (--c->handles > 0)
		return;
	for (pp = &c->u->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->u->nclients--;
	if (c->in)
		explicit_bzero(c->in, c->in_cap);	/* may have held a password */
	free(c->in);
	free(c->out);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/**
 * up_client_close() - end a connection (after the answer in flight, if any)
 */
static void up_client_close(struct up_client *c)
{
	if (c->busy) {
		c->eof = true;	/* up_after_work() closes it */
		return;
	}
	if (c->closing)
		return;
	c->closing = true;
	if (c->console_id >= 0) {
		/* no callback runs after this returns, so the async can go */
		mvm_manager_console_unsubscribe(c->u->m, c->console_id);
		c->console_id = -1;
	}
	if (c->async_open) {
		c->async_open = false;
		uv_close((uv_handle_t *)&c->async, up_client_closed);
	}
	uv_close((uv_handle_t *)&c->pipe, up_client_closed);
}

static void up_write_done(uv_write_t *req, int status)
{
	struct up_write *w = (struct up_write *)req;
	struct up_client *c = w->c;

	explicit_bzero(w->buf, w->len);
	free(w->buf);
	if (w->then != UP_THEN_MORE || status < 0)
		up_client_close(c);
	if (w->then == UP_THEN_STOP)
		up_shutdown(c->u);
	free(w);
}

/**
 * up_write() - queue @len bytes of @buf (taken over: freed when written) to @c
 * @then:	UP_THEN_*: what follows once they are written
 *
 * Return: 0, or -1 after closing the client.
 */
static int up_write(struct up_client *c, char *buf, size_t len, int then)
{
	struct up_write *w = calloc(1, sizeof(*w));
	uv_buf_t b = uv_buf_init(buf, (unsigned int)len);

	if (w) {
		w->c = c;
		w->buf = buf;
		w->len = len;
		w->then = then;
		if (!uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, up_write_done)) {
			if (then != UP_THEN_MORE) {
				/* the last answer: nothing the client sends now is acted on */
				c->ending = true;
				uv_read_stop((uv_stream_t *)&c->pipe);
			}
			return 0;
		}
	}
	free(w);
	free(buf);
	up_client_close(c);
	if (then == UP_THEN_STOP)
		up_shutdown(c->u);
	return -1;
}

/**
 * up_reply() - write @resp as one JSON line to @c
 * @then:	UP_THEN_*
 * Return: 0, or -1 after closing the client.
 */
static int up_reply(struct up_client *c, const cJSON *resp, int then)
{
	char *text = cJSON_PrintUnformatted(resp);
	size_t len;

	if (!text) {
		up_client_close(c);
		return -1;
	}
	len = strlen(text);
	text[len] = '\n';	/* replaces the NUL; cJSON allocated len + 1 */
	return up_write(c, text, len + 1, then);
}

/**
 * up_console_cb() - console bytes for a `microvm console` client (the console's delivery
 * thread): queued for the loop, never blocking the guest; beyond UP_CONSOLE_QUEUE_MAX a slow
 * client loses output
 */
static void up_console_cb(void *opaque, const uint8_t *data, size_t len, uint64_t lost)
{
	struct up_client *c = opaque;
	char note[64];
	size_t nlen = 0;
	char *nb;

	if (lost)
		nlen = (size_t)snprintf(note, sizeof(note), "\r\n[console: %llu bytes lost]\r\n",
					(unsigned long long)lost);
	pthread_mutex_lock(&c->lock);
	if (c->out_len + nlen + len <= UP_CONSOLE_QUEUE_MAX) {
		nb = realloc(c->out, c->out_len + nlen + len);
		if (nb) {
			memcpy(nb + c->out_len, note, nlen);
			memcpy(nb + c->out_len + nlen, data, len);
			c->out = nb;
			c->out_len += nlen + len;
		}
	}
	pthread_mutex_unlock(&c->lock);
	uv_async_send(&c->async);
}

/**
 * up_console_flush() - write the queued console bytes (loop thread)
 */
static void up_console_flush(uv_async_t *a)
{
	struct up_client *c = a->data;
	char *buf;
	size_t len;

	pthread_mutex_lock(&c->lock);
	buf = c->out;
	len = c->out_len;
	c->out = NULL;
	c->out_len = 0;
	pthread_mutex_unlock(&c->lock);
	if (!len || c->closing ||
	    uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > UP_CONSOLE_QUEUE_MAX) {
		free(buf);	/* a slow console client loses output rather than memory */
		return;
	}
	up_write(c, buf, len, UP_THEN_MORE);
}

/**
 * up_console_start() - `console`: answer, then stream the console to the client and what it
 * sends to the guest, until it goes away
 */
static void up_console_start(struct up_client *c)
{
	cJSON *resp;

	if (c->async_open || uv_async_init(c->pipe.loop, &c->async, up_console_flush)) {
		up_client_close(c);	/* a second `console` on one connection: ended */
		return;
	}
	c->async.data = c;
	c->async_open = true;
	c->handles++;
	c->console_id = mvm_manager_console_subscribe(c->u->m, up_console_cb, c);
	if (c->console_id < 0) {
		c->console_id = -1;
		c->async_open = false;
		uv_close((uv_handle_t *)&c->async, up_client_closed);
		resp = up_err("no console");
		up_reply(c, resp, UP_THEN_CLOSE);
		cJSON_Delete(resp);
		return;
	}
	/* the answer is queued before the first console byte: writes keep their order */
	resp = up_ok();
	up_reply(c, resp, UP_THEN_MORE);
	cJSON_Delete(resp);
}

/**
 * up_console_input() - what a console client typed goes to the guest (dropped when the guest
 * does not take input now)
 */
static void up_console_input(struct up_client *c)
{
	size_t off;
	long w;

	for (off = 0; off < c->in_len; off += (size_t)w) {
		w = mvm_manager_console_write(c->u->m, c->in + off, c->in_len - off);
		if (w <= 0)
			break;
	}
	c->in_len = 0;
}

/**
 * up_work() - answer the request on the thread pool: manager calls may wait for the agent
 * (a `vpn connect` waits for OpenVPN) without holding up other clients
 */
static void up_work(uv_work_t *w)
{
	struct up_client *c = w->data;

	c->resp = up_handle(c, c->req, &c->done);
	secret_wipe_json(c->req, "password");	/* cJSON_Delete() only frees */
	cJSON_Delete(c->req);
	c->req = NULL;
}

static void up_after_work(uv_work_t *w, int status)
{
	struct up_client *c = w->data;
	int ret = -1, then = UP_THEN_MORE;
	size_t raw_len = c->raw_len;
	char *raw = c->raw;

	c->busy = false;
	if (c->done)
		then = UP_THEN_STOP;
	else if (c->eof || c->u->stopping)
		then = UP_THEN_CLOSE;	/* the answer still goes out (if anyone reads it) */
	c->raw = NULL;
	c->raw_len = 0;
	if (c->resp) {
		/* raw bytes after the answer line: the last write says what follows */
		ret = up_reply(c, c->resp, raw_len ? UP_THEN_MORE : then);
		if (raw_len && !ret)
			ret = up_write(c, raw, raw_len, then);
		else
			free(raw);
	} else {
		free(raw);
		up_client_close(c);	/* out of memory */
		if (then == UP_THEN_STOP)
			up_shutdown(c->u);
	}
	cJSON_Delete(c->resp);
	c->resp = NULL;
	if (ret || then != UP_THEN_MORE)
		return;		/* closed, or up_write_done() closes */
	/* reading paused while the request was answered (already reading: UV_EALREADY) */
	if (uv_read_start((uv_stream_t *)&c->pipe, up_alloc, up_read) &&
	    !uv_is_active((uv_handle_t *)&c->pipe)) {
		up_client_close(c);
		return;
	}
	up_client_next(c);
}

/**
 * up_client_next() - start on the next request line in @c->in, or read more
 *
 * A line that is not a JSON object, or longer than CTL_LINE_MAX, ends the connection
 * without an answer.
 */
static void up_client_next(struct up_client *c)
{
	char *nl = memchr(c->in, '\n', c->in_len);
	size_t used;
	cJSON *req;
	const char *cmd;

	if (!nl) {
		if (c->in_len >= CTL_LINE_MAX)
			up_client_close(c);
		return;		/* reading goes on */
	}
	*nl = '\0';
	req = cJSON_Parse(c->in);
	used = (size_t)(nl - c->in) + 1;
	explicit_bzero(c->in, used);
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	if (!cJSON_IsObject(req)) {
		cJSON_Delete(req);
		up_client_close(c);
		return;
	}
	cmd = up_str(req, "cmd");
	if (cmd && !strcmp(cmd, "console")) {
		cJSON_Delete(req);
		up_console_start(c);
		if (!c->closing && !c->ending)
			up_console_input(c);	/* keys sent along with the request */
		return;
	}
	uv_read_stop((uv_stream_t *)&c->pipe);
	c->busy = true;
	c->req = req;
	c->work.data = c;
	if (uv_queue_work(c->pipe.loop, &c->work, up_work, up_after_work)) {
		c->busy = false;
		secret_wipe_json(req, "password");
		cJSON_Delete(req);
		c->req = NULL;
		up_client_close(c);
	}
}

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct up_client *c = h->data;
	size_t cap = c->in_cap;
	char *nb;

	(void)suggested;
	while (cap - c->in_len < UP_READ_CHUNK && cap < CTL_LINE_MAX + UP_READ_CHUNK)
		cap = cap ? cap * 2 : UP_READ_CHUNK;
	if (cap != c->in_cap) {
		/* not realloc(): the old buffer may hold a password, so it is wiped */
		nb = malloc(cap);
		if (nb && c->in) {
			memcpy(nb, c->in, c->in_len);
			explicit_bzero(c->in, c->in_cap);
		}
		if (nb) {
			free(c->in);
			c->in = nb;
			c->in_cap = cap;
		}
	}
	*buf = uv_buf_init(c->in + c->in_len, (unsigned int)(c->in_cap - c->in_len));
	if (!c->in)
		*buf = uv_buf_init(NULL, 0);	/* UV_ENOBUFS: the client is closed */
}

static void up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct up_client *c = s->data;

	(void)buf;
	if (n < 0) {
		up_client_close(c);
		return;
	}
	if (c->ending)
		return;		/* read before the read stop took effect: dropped */
	c->in_len += (size_t)n;
	if (c->console_id >= 0)
		up_console_input(c);
	else if (!c->busy)
		up_client_next(c);
}

/**
 * up_accept() - a new control connection
 */
static void up_accept(uv_stream_t *server, int status)
{
	struct up_ctx *u = server->data;
	struct up_client *c;

	if (status < 0 || u->stopping)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	if (pthread_mutex_init(&c->lock, NULL)) {
		free(c);
		return;
	}
	c->u = u;
	c->console_id = -1;
	c->handles = 1;
	c->next = u->clients;
	u->clients = c;
	u->nclients++;
	uv_pipe_init(server->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) ||
#ifdef _WIN32
	    up_peer_check(&c->pipe) ||
#endif
	    uv_read_start((uv_stream_t *)&c->pipe, up_alloc, up_read))
		up_client_close(c);
}

/**
 * up_on_signal() - SIGINT/SIGTERM (on Windows: Ctrl-C, Ctrl-Break, closing the console):
 * stop
 */
static void up_on_signal(uv_signal_t *s, int sig)
{
	(void)sig;
	up_shutdown(s->data);
}

static void up_handle_closed(uv_handle_t *h)
{
	(void)h;
}

/**
 * up_shutdown() - stop serving: no new clients, idle ones closed, the loop stops; cli_up()
 * then stops the VM and lets the answers in flight out
 */
static void up_shutdown(struct up_ctx *u)
{
	struct up_client *c, *next;
	size_t i;

	if (u->stopping)
		return;
	u->stopping = true;
	/* from now on `status` says "not running" rather than reaching a closing server */
	uv_close((uv_handle_t *)&u->server, up_handle_closed);
	for (i = 0; i < UP_NSIGS; i++)
		uv_close((uv_handle_t *)&u->signals[i], up_handle_closed);
	for (c = u->clients; c; c = next) {
		next = c->next;
		up_client_close(c);
	}
	uv_stop(u->loop);
}

/* ---- setup ------------------------------------------------------------------------------ */

#ifndef _WIN32
/**
 * up_mkdirs() - create the parent directories of @path, mode 0700
 * Return: 0 or -errno.
 */
static int up_mkdirs(const char *path)
{
	char tmp[PATH_MAX];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	p = strrchr(tmp, '/');
	if (!p || p == tmp)
		return 0;
	*p = '\0';
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}
#endif

#ifdef _WIN32
/**
 * up_bind() - create the named pipe, with a DACL that admits the current user only
 * @server:	the pipe handle
 * @path:	\\.\pipe\NAME
 *
 * libuv creates the pipe with FILE_FLAG_FIRST_PIPE_INSTANCE (so an existing pipe of that
 * name, another user's too, makes this fail) and WRITE_DAC; the default DACL would let
 * everyone open it for reading, so it is replaced, protected from inheritance, by one entry:
 * our user, full access.  up_peer_check() still checks every client's user.
 * Return: 0 or a libuv error.
 */
static int up_bind(uv_pipe_t *server, const char *path)
{
	uv_os_fd_t h;
	PACL dacl = NULL;
	DWORD err = ERROR_ACCESS_DENIED;
	int ret;

	if (_strnicmp(path, "\\\\.\\pipe\\", 9))
		return UV_EINVAL;	/* not a pipe name */
	ret = uv_pipe_bind(server, path);
	if (ret)
		return ret;
	if (uv_fileno((uv_handle_t *)server, &h) == 0) {
		err = mvm_win_private_acl(0, NO_INHERITANCE, &dacl);
		if (err == ERROR_SUCCESS)
			err = SetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION |
					      PROTECTED_DACL_SECURITY_INFORMATION, NULL, NULL, dacl,
					      NULL);
	}
	if (dacl)
		LocalFree(dacl);
	return err == ERROR_SUCCESS ? 0 : UV_EACCES;
}

/**
 * up_peer_check() - the client at the other end of @pipe must run as our user
 * Return: 0, or -EPERM.
 */
static int up_peer_check(uv_pipe_t *pipe)
{
	ULONG pid = 0;
	uv_os_fd_t h;

	if (uv_fileno((uv_handle_t *)pipe, &h) || !GetNamedPipeClientProcessId(h, &pid) ||
	    !ctl_same_user(pid))
		return -EPERM;
	return 0;
}

static const int up_sigs[] = { SIGINT, SIGBREAK, SIGHUP };	/* Ctrl-C, Ctrl-Break, close */
#define up_strerror(e)	uv_strerror(e)
#else
/**
 * up_bind() - create the control socket, mode 0600 (its directory is 0700: up_mkdirs())
 * @server:	the pipe handle
 * @path:	where
 *
 * Return: 0 or -errno.
 */
static int up_bind(uv_pipe_t *server, const char *path)
{
	mode_t old_mask;
	int ret;

	unlink(path);
	/* owner only from the start; the chmod() below also covers a umask that allows less */
	old_mask = umask(077);
	ret = uv_pipe_bind(server, path);
	umask(old_mask);
	if (!ret && chmod(path, 0600))
		ret = -errno;
	return ret;
}

static const int up_sigs[] = { SIGINT, SIGTERM };
#define up_strerror(e)	strerror(-(e))
#endif

/**
 * up_listen() - serve the control endpoint on a new loop (refusing if another `up` answers
 * there)
 * @u:	appliance; @u->ctl_path names the endpoint; @u->loop, @u->server and @u->signals are set
 *
 * Called after --detach forked: a libuv loop does not survive fork().
 * Return: 0 or -errno (message printed).
 */
static int up_listen(struct up_ctx *u)
{
	const char *path = u->ctl_path;
	ctl_conn probe;
	size_t i;
	int ret;

#ifndef _WIN32
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "microvm up: control socket path too long: %s\n", path);
		return -ENAMETOOLONG;
	}
#endif
	ret = ctl_connect(path, &probe);
	if (ret == 0) {
		ctl_close(probe);
		fprintf(stderr, "microvm up: already running (control socket %s answers); "
			"stop it with 'microvm down'\n", path);
		return -EADDRINUSE;
	}
	if (ret == -EPERM) {
		fprintf(stderr, "microvm up: %s is held by another user's program; choose "
			"another with --control\n", path);
		return -EADDRINUSE;
	}
#ifndef _WIN32
	ret = up_mkdirs(path);
	if (ret) {
		fprintf(stderr, "microvm up: cannot create the directory of %s: %s\n", path,
			strerror(-ret));
		return ret;
	}
#endif
	u->loop = uv_default_loop();
	if (!u->loop || uv_pipe_init(u->loop, &u->server, 0)) {
		fprintf(stderr, "microvm up: cannot create the event loop\n");
		return -ENOMEM;
	}
	u->server.data = u;
	ret = up_bind(&u->server, path);
	if (!ret)
		ret = uv_listen((uv_stream_t *)&u->server, 16, up_accept);
	if (ret) {
		fprintf(stderr, "microvm up: cannot listen on %s: %s\n", path, up_strerror(ret));
		uv_close((uv_handle_t *)&u->server, NULL);
		uv_run(u->loop, UV_RUN_NOWAIT);
		return -EIO;
	}
	for (i = 0; i < UP_NSIGS; i++) {
		uv_signal_init(u->loop, &u->signals[i]);
		u->signals[i].data = u;
		uv_signal_start(&u->signals[i], up_on_signal, up_sigs[i]);
	}
	return 0;
}

/**
 * up_serve() - serve control clients until `down` or a signal, then stop the VM
 * @u:	appliance, listening (up_listen())
 *
 * After the loop stops, the VM is stopped (a request still waiting for the agent then fails
 * fast) and the loop runs on, for at most 2 s, to let the answers in flight out.
 * Return: true if every client is gone (the manager may be freed).
 */
static bool up_serve(struct up_ctx *u)
{
	int i;

	uv_run(u->loop, UV_RUN_DEFAULT);
	mvm_manager_stop_vm(u->m, u->stop_timeout_ms);
	for (i = 0; i < 200 && (u->nclients > 0 || uv_loop_alive(u->loop)); i++) {
		if (!uv_run(u->loop, UV_RUN_NOWAIT) && u->nclients == 0)
			break;
		usleep(10 * 1000);
	}
	return u->nclients == 0;
}

/**
 * up_file() - the path of up.log or socks.secret (ctl_files_dir(); created on Windows)
 * @u:		appliance
 * @name:	the file's name
 * @out:	CLI_PATH_MAX bytes; UTF-8 on Windows: open it with mvm_fs_open()
 *
 * Return: 0 or -errno.
 */
static int up_file(struct up_ctx *u, const char *name, char *out)
{
	char dir[CLI_PATH_MAX];
	int ret = ctl_files_dir(u->ctl_path, dir, sizeof(dir));

	if (ret)
		return ret;
#ifdef _WIN32
	ret = snprintf(out, CLI_PATH_MAX, "%s\\%s", dir, name);
#else
	ret = snprintf(out, CLI_PATH_MAX, "%s/%s", dir, name);
#endif
	return ret < 0 || ret >= CLI_PATH_MAX ? -ENAMETOOLONG : 0;
}

/**
 * up_write_secret() - store a generated SOCKS password next to the control socket (0600;
 * on Windows in %LOCALAPPDATA%\microvm, which only the user can read)
 * Return: 0 or -errno.
 */
static int up_write_secret(struct up_ctx *u)
{
	char user[256], pass[256];
	FILE *f;
	int fd, ret;

	mvm_manager_socks_credentials(u->m, user, pass);
	ret = up_file(u, "socks.secret", u->secret_path);
	if (ret) {
		u->secret_path[0] = '\0';
		explicit_bzero(pass, sizeof(pass));
		return ret;
	}
	mvm_fs_unlink(u->secret_path);
	fd = mvm_fs_open_private(u->secret_path);	/* Windows: the user's and SYSTEM's only */
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		explicit_bzero(pass, sizeof(pass));
		return ret;
	}
	fprintf(f, "%s\n%s\n", user, pass);
	fclose(f);
	explicit_bzero(pass, sizeof(pass));
	return 0;
}

/**
 * up_open_log() - the detached process' log: up.log beside the control socket (0600; on
 * Windows in %LOCALAPPDATA%\microvm)
 * Return: a descriptor or -1.
 */
static int up_open_log(struct up_ctx *u)
{
	char path[CLI_PATH_MAX];

	if (up_file(u, "up.log", path))
		return -1;
	return mvm_fs_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* the manager's config and the VM and SOCKS configs it points to */
struct up_config {
	struct mvm_manager_config mgr;
	struct mvm_config vm;
	struct mvm_socks_config socks;
};

/**
 * struct up_opts - parsed command line
 */
struct up_opts {
	const char *profile, *user, *control, *agent, *agent_netns, *agent_secret_file;
	const char *socks_user, *socks_pw_file;
	bool password_stdin, detach, socks_auth;
	int stop_timeout_ms;
	char vm_only[64];	/* options given that only a real VM uses, for a notice */
};

/**
 * up_parse_backend() - --backend NAME
 * Return: 0, or CLI_EXIT_USAGE with the message printed.
 */
static int up_parse_backend(const char *s, enum mvm_backend_kind *k)
{
	static const struct { const char *n; enum mvm_backend_kind k; bool here; } map[] = {
		{ "auto", MVM_BACKEND_AUTO, true },
#ifdef __linux__
		{ "kvm", MVM_BACKEND_KVM, true }, { "nsbox", MVM_BACKEND_NSBOX, true },
#else
		{ "kvm", MVM_BACKEND_KVM, false }, { "nsbox", MVM_BACKEND_NSBOX, false },
#endif
#ifdef _WIN32
		{ "wsl", MVM_BACKEND_WSL, true },
#else
		{ "wsl", MVM_BACKEND_WSL, false },
#endif
		{ "hvf", MVM_BACKEND_HVF, false },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(s, map[i].n))
			continue;
		if (!map[i].here) {
			fprintf(stderr, "microvm up: --backend %s: not available on this platform "
				"(valid here: " UP_BACKENDS ")\n", s);
			return CLI_EXIT_USAGE;
		}
		*k = map[i].k;
		return 0;
	}
	fprintf(stderr, "microvm up: --backend: unknown backend '%s' (valid: " UP_BACKENDS ")\n",
		s);
	return CLI_EXIT_USAGE;
}

/**
 * up_is_loopback() - is the numeric address @addr a loopback address?
 * Return: 1 yes, 0 no, -EINVAL if it is not a numeric IPv4/IPv6 address.
 */
static int up_is_loopback(const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return -EINVAL;
}

/**
 * up_note_vm_only() - remember that a VM-only option was given
 */
static void up_note_vm_only(struct up_opts *o, const char *opt)
{
	size_t n = strlen(o->vm_only);

	if (strstr(o->vm_only, opt))
		return;
	snprintf(o->vm_only + n, sizeof(o->vm_only) - n, "%s%s", n ? ", " : "", opt);
}

/**
 * up_parse_seconds() - a positive number of seconds into ms
 * Return: 0 or -EINVAL.
 */
static int up_parse_seconds(const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (!*s || *end || v <= 0 || v > 86400 * 365)
		return -EINVAL;
	*ms = (int)(v * 1000);
	return 0;
}

/**
 * up_parse() - command line into @cfg and @o
 * Return: -1 to continue, else an exit status.
 */
static int up_parse(int argc, char **argv, struct up_config *cfg, struct up_opts *o,
		    char *socks_addr, size_t socks_addr_cap)
{
	enum {
		O_PROFILE = 256, O_USER, O_PWSTDIN, O_SOCKS, O_REMOTE, O_SAUTH, O_SUSER, O_SPWFILE,
		O_IDLE, O_NOSOCKS, O_BACKEND, O_KERNEL, O_INITRD, O_ROOTFS, O_CMDLINE, O_MEMORY,
		O_BOOT, O_AGENT, O_AGENT_NETNS, O_AGENT_SECRET, O_CONTROL, O_DETACH, O_BOX_EXEC, O_STOP,
		O_HOST_LOOPBACK,
	};
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, O_PROFILE },
		{ "user", required_argument, NULL, O_USER },
		{ "password-stdin", no_argument, NULL, O_PWSTDIN },
		{ "socks", required_argument, NULL, O_SOCKS },
		{ "socks-allow-remote", no_argument, NULL, O_REMOTE },
		{ "socks-auth", no_argument, NULL, O_SAUTH },
		{ "socks-user", required_argument, NULL, O_SUSER },
		{ "socks-password-file", required_argument, NULL, O_SPWFILE },
		{ "idle-timeout", required_argument, NULL, O_IDLE },
		{ "no-socks", no_argument, NULL, O_NOSOCKS },
		{ "backend", required_argument, NULL, O_BACKEND },
		{ "kernel", required_argument, NULL, O_KERNEL },
		{ "initrd", required_argument, NULL, O_INITRD },
		{ "rootfs", required_argument, NULL, O_ROOTFS },
		{ "cmdline", required_argument, NULL, O_CMDLINE },
		{ "memory", required_argument, NULL, O_MEMORY },
		{ "boot-timeout", required_argument, NULL, O_BOOT },
		{ "stop-timeout", required_argument, NULL, O_STOP },
		{ "box-exec", required_argument, NULL, O_BOX_EXEC },
		{ "net-host-loopback", no_argument, NULL, O_HOST_LOOPBACK },
		{ "agent", required_argument, NULL, O_AGENT },
		{ "agent-netns", required_argument, NULL, O_AGENT_NETNS },
		{ "agent-secret-file", required_argument, NULL, O_AGENT_SECRET },
		{ "control", required_argument, NULL, O_CONTROL },
		{ "detach", no_argument, NULL, O_DETACH },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint16_t port = cfg->socks.port;
	char *end;
	unsigned long v;
	int c, idx = 0, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
#ifdef _WIN32
		/* KVM, the namespace box and network namespaces: said, not silently dropped */
		if (c == O_KERNEL || c == O_INITRD || c == O_CMDLINE || c == O_MEMORY ||
		    c == O_BOX_EXEC || c == O_HOST_LOOPBACK || c == O_AGENT_NETNS) {
			fprintf(stderr, "microvm up: --%s: only on Linux (on Windows the appliance "
				"runs in WSL2)\n", opts[idx].name);
			return CLI_EXIT_USAGE;
		}
#endif
		switch (c) {
		case 'h':
			up_usage(stdout);
			return CLI_EXIT_OK;
		case O_PROFILE: o->profile = optarg; break;
		case O_USER: o->user = optarg; break;
		case O_PWSTDIN: o->password_stdin = true; break;
		case O_SOCKS:
			if (mvm_socks_parse_listen(optarg, socks_addr, socks_addr_cap, &port)) {
				fprintf(stderr, "microvm up: %s\n", mvm_last_error());
				return CLI_EXIT_USAGE;
			}
			break;
		case O_REMOTE: cfg->socks.allow_remote = true; break;
		case O_SAUTH: o->socks_auth = true; break;
		case O_SUSER: o->socks_user = optarg; break;
		case O_SPWFILE: o->socks_pw_file = optarg; break;
		case O_IDLE:
			if (up_parse_seconds(optarg, &cfg->socks.idle_timeout_ms))
				goto bad_seconds;
			break;
		case O_NOSOCKS: cfg->mgr.no_socks = true; break;
		case O_BACKEND:
			if (up_parse_backend(optarg, &cfg->vm.backend))
				return CLI_EXIT_USAGE;
			break;
		case O_KERNEL:
			cfg->vm.kernel_path = optarg;
			up_note_vm_only(o, "--kernel");
			break;
		case O_INITRD:
			cfg->vm.initrd_path = optarg;
			up_note_vm_only(o, "--initrd");
			break;
		case O_ROOTFS: cfg->vm.rootfs_path = optarg; break;
		case O_CMDLINE:
			cfg->vm.cmdline = optarg;
			up_note_vm_only(o, "--cmdline");
			break;
		case O_MEMORY:
			v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v < 16 || v > 65536) {
				fprintf(stderr, "microvm up: --memory: '%s' is not a size in MiB "
					"(valid: 16 to 65536)\n", optarg);
				return CLI_EXIT_USAGE;
			}
			cfg->vm.mem_mib = (uint32_t)v;
			up_note_vm_only(o, "--memory");
			break;
		case O_BOOT:
			if (up_parse_seconds(optarg, &cfg->mgr.boot_timeout_ms))
				goto bad_seconds;
			break;
		case O_STOP:
			if (up_parse_seconds(optarg, &o->stop_timeout_ms))
				goto bad_seconds;
			break;
		case O_AGENT:
			if (strncmp(optarg, "tcp:", 4) || !optarg[4]) {
				fprintf(stderr, "microvm up: --agent takes tcp:HOST\n");
				return CLI_EXIT_USAGE;
			}
			o->agent = optarg + 4;
			break;
		case O_AGENT_NETNS: o->agent_netns = optarg; break;
		case O_AGENT_SECRET: o->agent_secret_file = optarg; break;
		case O_CONTROL: o->control = optarg; break;
		case O_BOX_EXEC:
			up_box_argv[2] = optarg;
			cfg->vm.box_argv = up_box_argv;
			break;
		case O_DETACH: o->detach = true; break;
		case O_HOST_LOOPBACK: cfg->vm.net_host_loopback = true; break;
		default:
			up_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "microvm up: unexpected argument '%s'\n", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (!!o->socks_user != !!o->socks_pw_file) {
		fprintf(stderr, "microvm up: --socks-user and --socks-password-file go together\n");
		return CLI_EXIT_USAGE;
	}
	if (o->password_stdin && !o->user) {
		fprintf(stderr, "microvm up: --password-stdin needs --user\n");
		return CLI_EXIT_USAGE;
	}
	if (o->user && !o->profile) {
		fprintf(stderr, "microvm up: --user needs --profile\n");
		return CLI_EXIT_USAGE;
	}
	ret = cfg->mgr.no_socks ? 1 : up_is_loopback(socks_addr);
	if (ret < 0) {
		fprintf(stderr, "microvm up: --socks: '%s' is not a numeric IPv4 or IPv6 address\n",
			socks_addr);
		return CLI_EXIT_USAGE;
	}
	if (!ret && !cfg->socks.allow_remote) {
		fprintf(stderr, "microvm up: --socks %s is a non-loopback address: anyone reaching "
			"it could use the VPN; add --socks-allow-remote to allow that\n", socks_addr);
		return CLI_EXIT_USAGE;
	}
	cfg->socks.port = port;
	cfg->socks.addr = socks_addr;
	return -1;
bad_seconds:
	fprintf(stderr, "microvm up: --%s: '%s' is not a positive number of seconds\n",
		opts[idx].name, optarg);
	return CLI_EXIT_USAGE;
}

/**
 * up_connect_profile() - --profile: upload and connect at start
 * @u:		appliance
 * @path:	the profile's path (its base name names it)
 * @content:	its content, read before anything started
 * @user:	VPN username or NULL
 * @pass:	VPN password or NULL
 *
 * Return: 0 or -errno (message printed).
 */
static int up_connect_profile(struct up_ctx *u, const char *path, const char *content,
			      const char *user, const char *pass)
{
	struct mvm_vpn_info info;
	char tmp[CLI_PATH_MAX];
	int ret;

	snprintf(tmp, sizeof(tmp), "%s", path);
	cli_progress_begin("microvm up: connecting the VPN");
	ret = mvm_manager_vpn_connect(u->m, mvm_fs_path_tail(tmp), content, user, pass, &info);
	cli_progress_end();
	if (ret) {
		fprintf(stderr, "microvm up: VPN: %s\n", mvm_last_error());
		return ret;
	}
	switch (info.state) {
	case MVM_VPN_CONNECTED:
		printf("VPN connected, tunnel address %s\n", info.tun_ip);
		break;
	case MVM_VPN_WEBAUTH:
		printf("VPN needs web authentication; open:\n  %s\n", info.auth_url);
		break;
	case MVM_VPN_ERROR:
		fprintf(stderr, "microvm up: VPN: %s\n", info.error);
		break;
	default:
		printf("VPN %s\n", mvm_vpn_state_name(info.state));
		break;
	}
	fflush(stdout);
	return 0;
}

/**
 * up_check_files() - files named on the command line must be readable, before anything starts
 * @cfg:	parsed config
 * @o:		parsed options
 * @profile:	out: the --profile content (caller frees), or NULL without --profile
 *
 * Also prints the one-line notice for VM options that the chosen backend does not use.
 * Return: -1 to continue, else an exit status (message printed).
 */
static int up_check_files(const struct up_config *cfg, const struct up_opts *o,
			  char **profile)
{
	const struct { const char *opt, *path; } files[] = {
		{ "--kernel", cfg->vm.kernel_path }, { "--initrd", cfg->vm.initrd_path },
	};
	bool attach = o->agent || o->agent_netns;
	bool vm = !attach && cfg->vm.backend != MVM_BACKEND_NSBOX;
	size_t i;
	int ret;

	*profile = NULL;
	for (i = 0; vm && i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i].path && mvm_fs_access(files[i].path, R_OK)) {
			fprintf(stderr, "microvm up: %s %s: %s\n", files[i].opt, files[i].path,
				strerror(errno));
			return CLI_EXIT_USAGE;
		}
	if (cfg->vm.rootfs_path && !attach && mvm_fs_access(cfg->vm.rootfs_path, R_OK)) {
		fprintf(stderr, "microvm up: --rootfs %s: %s\n", cfg->vm.rootfs_path,
			strerror(errno));
		return CLI_EXIT_USAGE;
	}
	if (o->profile) {
		ret = ctl_read_file(o->profile, profile);
		if (ret) {
			fprintf(stderr, "microvm up: --profile %s: cannot read it: %s\n", o->profile,
				ret == -EFBIG ? "larger than 1 MiB" : strerror(-ret));
			return CLI_EXIT_USAGE;
		}
	}
	if (attach && !o->agent_secret_file) {
		fprintf(stderr, "microvm up: attaching to an agent needs --agent-secret-file FILE "
			"(the secret the agent was started with)\n");
		free(*profile);
		*profile = NULL;
		return CLI_EXIT_USAGE;
	}
	if (!attach && o->agent_secret_file) {
		fprintf(stderr, "microvm up: --agent-secret-file goes with --agent or "
			"--agent-netns\n");
		free(*profile);
		*profile = NULL;
		return CLI_EXIT_USAGE;
	}
	if (o->vm_only[0] && attach)
		fprintf(stderr, "microvm up: note: %s not used when attaching to an agent; "
			"ignored\n", o->vm_only);
	else if (o->vm_only[0] && cfg->vm.backend == MVM_BACKEND_NSBOX)
		fprintf(stderr, "microvm up: note: the nsbox backend does not use %s; ignored\n",
			o->vm_only);
	return -1;
}

#ifndef _WIN32
/**
 * up_detach() - fork; the parent waits for the child to be ready and exits
 * @ready:	out: write end the child reports readiness on
 *
 * Return: -1 in the child; in the parent, the exit status to return.
 */
static int up_detach(int *ready)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC)) {
		perror("microvm up: pipe");
		return CLI_EXIT_FAIL;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("microvm up: fork");
		return CLI_EXIT_FAIL;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		*ready = p[1];
		return -1;
	}
	close(p[1]);
	while (read(p[0], &c, 1) < 0 && errno == EINTR)
		;
	close(p[0]);
	return c == 'R' ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

#endif

#ifdef _WIN32
#define UP_NULL_DEV	"NUL"
#define UP_READY_ENV	"MICROVM_UP_READY"	/* the detached child's readiness pipe */

/**
 * up_win_child_cmdline() - the detached child's command line: this process' own arguments
 * (from GetCommandLineW(), so nothing is lost to the ANSI code page) without --detach, plus
 * --password-stdin when the password comes through the child's stdin
 * @pwstdin:	add --password-stdin (unless already there)
 *
 * Return: a malloc()ed UTF-16 command line, or NULL.
 */
static wchar_t *up_win_child_cmdline(bool pwstdin)
{
	char *line = NULL, **args = NULL, self[MAX_PATH * 3];
	wchar_t **wargv, wself[MAX_PATH], *wline = NULL;
	int n, i, k = 0, len;

	wargv = CommandLineToArgvW(GetCommandLineW(), &n);
	args = calloc((size_t)n + 2, sizeof(*args));
	if (!wargv || !args || !GetModuleFileNameW(NULL, wself, MAX_PATH) ||
	    !WideCharToMultiByte(CP_UTF8, 0, wself, -1, self, sizeof(self), NULL, NULL))
		goto out;
	args[k++] = self;
	for (i = 1; i < n; i++) {
		len = WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, NULL, 0, NULL, NULL);
		if (len <= 0 || !(args[k] = malloc((size_t)len)))
			goto out;
		WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, args[k], len, NULL, NULL);
		if (!strcmp(args[k], "--password-stdin"))
			pwstdin = false;
		if (!strcmp(args[k], "--detach")) {
			free(args[k]);
			args[k] = NULL;
		} else {
			k++;
		}
	}
	if (pwstdin)
		args[k++] = strdup("--password-stdin");
	line = malloc(32768);
	if (!line || (args[k - 1] == NULL) ||
	    wsl_cmdline(line, 32768, (const char *const *)args) < 0)
		goto out;
	len = MultiByteToWideChar(CP_UTF8, 0, line, -1, NULL, 0);
	wline = len > 0 ? malloc((size_t)len * sizeof(wchar_t)) : NULL;
	if (wline)
		MultiByteToWideChar(CP_UTF8, 0, line, -1, wline, len);
out:
	if (args)
		for (i = 1; i < k; i++)
			free(args[i]);
	free(args);
	free(line);
	LocalFree(wargv);
	return wline;
}

/**
 * up_win_inheritable() - an inheritable duplicate of @h (NULL for NULL / invalid)
 */
static HANDLE up_win_inheritable(HANDLE h)
{
	HANDLE dup = NULL;

	if (!h || h == INVALID_HANDLE_VALUE ||
	    !DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &dup, 0, TRUE,
			     DUPLICATE_SAME_ACCESS))
		return NULL;
	return dup;
}

/**
 * up_detach() - Windows: start `microvm up` again as a detached process and wait until it
 * serves (there is no fork())
 * @pass:	the VPN password read from stdin or the console, or NULL
 *
 * The child runs the same arguments without --detach (up_win_child_cmdline()), in no
 * console and a process group of its own (DETACHED_PROCESS, CREATE_NEW_PROCESS_GROUP: the
 * console's Ctrl-C and closing it do not reach it).  It inherits exactly four handles
 * (PROC_THREAD_ATTRIBUTE_HANDLE_LIST): stdin, the read end of an anonymous pipe that
 * carries the password (never argv or the environment), or NUL; our stdout and stderr, so
 * its messages until it serves - and why it failed - appear here as on Linux; and the write
 * end of the readiness pipe, whose handle value it finds in $MICROVM_UP_READY.  The child
 * writes "R" there once it serves (up_detached_ready(), after moving its output to up.log);
 * end of file without "R" means it exited.
 *
 * Return: the exit status to return.
 */
static int up_detach(const char *pass)
{
	SECURITY_ATTRIBUTES sa = { .nLength = sizeof(sa), .bInheritHandle = TRUE };
	STARTUPINFOEXW si = { .StartupInfo.cb = sizeof(si) };
	PROCESS_INFORMATION pi;
	HANDLE rd = NULL, wr = NULL, in = NULL, pw = NULL, out = NULL, err = NULL, list[4];
	LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
	wchar_t *cmd = up_win_child_cmdline(pass != NULL);
	char env[32], c = 0;
	SIZE_T size = 0;
	DWORD n;
	BOOL ok;
	int ret = CLI_EXIT_FAIL;

	if (!cmd) {
		fprintf(stderr, "microvm up: --detach: cannot build the command line\n");
		return CLI_EXIT_FAIL;
	}
	/* the readiness pipe: only its write end is inheritable */
	if (!CreatePipe(&rd, &wr, &sa, 0) || !SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0))
		goto fail;
	if (pass) {
		if (!CreatePipe(&in, &pw, &sa, 0) ||
		    !SetHandleInformation(pw, HANDLE_FLAG_INHERIT, 0))
			goto fail;
	} else {
		in = CreateFileA(UP_NULL_DEV, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
				 OPEN_EXISTING, 0, NULL);
		if (in == INVALID_HANDLE_VALUE) {
			in = NULL;
			goto fail;
		}
	}
	out = up_win_inheritable(GetStdHandle(STD_OUTPUT_HANDLE));
	err = up_win_inheritable(GetStdHandle(STD_ERROR_HANDLE));
	n = 0;
	list[n++] = in;
	list[n++] = wr;
	if (out)
		list[n++] = out;
	if (err)
		list[n++] = err;
	InitializeProcThreadAttributeList(NULL, 1, 0, &size);
	attrs = malloc(size);
	if (!attrs || !InitializeProcThreadAttributeList(attrs, 1, 0, &size) ||
	    !UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, list,
				       n * sizeof(HANDLE), NULL, NULL))
		goto fail;
	si.lpAttributeList = attrs;
	si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
	si.StartupInfo.hStdInput = in;
	si.StartupInfo.hStdOutput = out;
	si.StartupInfo.hStdError = err;
	snprintf(env, sizeof(env), "%llu", (unsigned long long)(uintptr_t)wr);
	fflush(NULL);
	SetEnvironmentVariableA(UP_READY_ENV, env);
	ok = CreateProcessW(NULL, cmd, NULL, NULL, TRUE, DETACHED_PROCESS |
			    CREATE_NEW_PROCESS_GROUP | EXTENDED_STARTUPINFO_PRESENT, NULL, NULL,
			    &si.StartupInfo, &pi);
	SetEnvironmentVariableA(UP_READY_ENV, NULL);
	if (!ok)
		goto fail;
	CloseHandle(pi.hThread);
	/* our copies of the child's ends: EOF on rd when it exits */
	CloseHandle(wr);
	CloseHandle(in);
	wr = in = NULL;
	if (pw) {
		size_t len = strlen(pass);

		WriteFile(pw, pass, (DWORD)len, &n, NULL);
		WriteFile(pw, "\n", 1, &n, NULL);
		CloseHandle(pw);
		pw = NULL;
	}
	if (ReadFile(rd, &c, 1, &n, NULL) && n == 1 && c == 'R') {
		ret = CLI_EXIT_OK;
	} else {
		DWORD status = 1;

		/* its own messages (on our stderr) said why */
		WaitForSingleObject(pi.hProcess, 10000);
		GetExitCodeProcess(pi.hProcess, &status);
		if (status == STILL_ACTIVE || status == 0)
			fprintf(stderr, "microvm up: the background 'microvm up' did not start "
				"(see up.log in %%LOCALAPPDATA%%\\microvm)\n");
		ret = status == CLI_EXIT_USAGE ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
	}
	CloseHandle(pi.hProcess);
	goto out;
fail:
	fprintf(stderr, "microvm up: --detach: cannot start the background process (error "
		"%lu)\n", GetLastError());
out:
	if (attrs)
		DeleteProcThreadAttributeList(attrs);
	free(attrs);
	free(cmd);
	for (HANDLE *h = (HANDLE[]){ rd, wr, in, pw, out, err }, *e = h + 6; h < e; h++)
		if (*h)
			CloseHandle(*h);
	return ret;
}

/**
 * up_win_detached_child() - in the child of up_detach(): take over the readiness pipe
 *
 * Its handle and our inherited std handles are made non-inheritable, so the programs we
 * start (wsl.exe) do not hold the parent's output open or the pipe, and $MICROVM_UP_READY
 * is removed from the environment they get.
 *
 * Return: the readiness pipe as a descriptor, or -1 (not started by up_detach()).
 */
static int up_win_detached_child(void)
{
	const char *env = getenv(UP_READY_ENV);
	HANDLE h;
	int fd;

	if (!env || !*env)
		return -1;
	h = (HANDLE)(uintptr_t)strtoull(env, NULL, 10);
	SetEnvironmentVariableA(UP_READY_ENV, NULL);
	_putenv(UP_READY_ENV "=");
	SetHandleInformation(GetStdHandle(STD_INPUT_HANDLE), HANDLE_FLAG_INHERIT, 0);
	SetHandleInformation(GetStdHandle(STD_OUTPUT_HANDLE), HANDLE_FLAG_INHERIT, 0);
	SetHandleInformation(GetStdHandle(STD_ERROR_HANDLE), HANDLE_FLAG_INHERIT, 0);
	if (!SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0))
		return -1;
	fd = _open_osfhandle((intptr_t)h, _O_WRONLY | _O_BINARY);
	if (fd < 0)
		CloseHandle(h);
	return fd;
}
#else
#define UP_NULL_DEV	"/dev/null"
#endif

/**
 * up_detached_ready() - the detached child serves: its messages go to up.log next to the
 * control socket, and the waiting parent is told
 * @ready:	the write end up_detach() gave; closed and set to -1
 */
static void up_detached_ready(struct up_ctx *u, int *ready)
{
	int null = open(UP_NULL_DEV, O_RDWR | O_CLOEXEC), logfd = up_open_log(u);

	fflush(NULL);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(logfd >= 0 ? logfd : null, STDOUT_FILENO);
		dup2(logfd >= 0 ? logfd : null, STDERR_FILENO);
		close(null);
	}
	if (logfd >= 0)
		close(logfd);
	if (write(*ready, "R", 1) < 0) {
		/* the parent is gone: carry on */
	}
	close(*ready);
	*ready = -1;
}

/**
 * up_read_agent_secret() - the agent's secret from --agent-secret-file
 * @path:	the file: 64 hex characters, optionally a newline; not accessible to group or
 *		others when it is a regular file
 * @out:	receives the NUL-terminated secret
 *
 * Return: 0, or -1 after a one-line error on stderr.
 */
static int up_read_agent_secret(const char *path, char out[MVM_SECRET_HEX_LEN + 1])
{
	char buf[MVM_SECRET_HEX_LEN + 8];
	const char *why = NULL;
#ifndef _WIN32
	struct stat sb;
#endif
	ssize_t n = -1;
	int fd;

	fd = mvm_fs_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		why = strerror(errno);
#ifndef _WIN32
	/* Windows: no mode bits; the file's ACL (%LOCALAPPDATA%'s, typically) decides */
	} else if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077)) {
		why = "readable by others (chmod 600 it)";
#endif
	} else {
		n = read(fd, buf, sizeof(buf) - 1);
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		if (n != MVM_SECRET_HEX_LEN ||
		    strspn(buf, "0123456789abcdefABCDEF") < MVM_SECRET_HEX_LEN)
			why = "not 64 hex characters";
	}
	if (fd >= 0)
		close(fd);
	if (!why) {
		memcpy(out, buf, MVM_SECRET_HEX_LEN);
		out[MVM_SECRET_HEX_LEN] = '\0';
	}
	explicit_bzero(buf, sizeof(buf));
	if (why)
		fprintf(stderr, "microvm up: --agent-secret-file %s: %s\n", path, why);
	return why ? -1 : 0;
}

/**
 * cli_up() - `microvm up`: parse, (detach,) start or attach, serve until down or a signal
 * @argc/@argv:	argv[0] is "up"
 *
 * Return: exit status.
 */
int cli_up(int argc, char **argv)
{
	struct up_config cfg;
	struct up_opts o = { .stop_timeout_ms = 10000 };
	struct up_ctx u = { .loop = NULL };
	char socks_addr[64] = "127.0.0.1", vpn_pass[512] = "", socks_pass[256] = "";
	char *profile = NULL, agent_secret[MVM_SECRET_HEX_LEN + 1] = "";
	struct mvm_manager_status st;
	bool have_pass = false;
	int ret;
	int ready = -1;		/* --detach: tells the waiting parent that we serve */
	bool listening = false, idle = true;
	FILE *f;

	/* This process holds the VPN and SOCKS passwords: no core dump, no ptrace by peers. */
	ctl_protect_process();
	mvm_manager_config_init(&cfg.mgr);
	mvm_config_init(&cfg.vm);
	mvm_socks_config_init(&cfg.socks);
	cfg.mgr.vm = &cfg.vm;
	cfg.mgr.socks = &cfg.socks;
	ret = up_parse(argc, argv, &cfg, &o, socks_addr, sizeof(socks_addr));
	if (ret >= 0)
		return ret;
#ifdef _WIN32
	if (!o.detach)
		ready = up_win_detached_child();
#endif
	if (ctl_path(o.control, u.ctl_path, sizeof(u.ctl_path))) {
		fprintf(stderr, "microvm up: control socket path too long\n");
		return CLI_EXIT_USAGE;
	}
	ret = up_check_files(&cfg, &o, &profile);
	if (ret >= 0)
		return ret;
	if (o.agent_secret_file && up_read_agent_secret(o.agent_secret_file, agent_secret)) {
		free(profile);
		return CLI_EXIT_USAGE;
	}
	if (o.user) {
		ret = ctl_read_password(o.password_stdin, "VPN password: ", vpn_pass,
					sizeof(vpn_pass));
		if (ret) {
			fprintf(stderr, "microvm up: no VPN password (%s)\n",
				ret == -ENOTTY ? "no terminal to ask on; use --password-stdin"
					       : "empty or too long");
			free(profile);
			return CLI_EXIT_USAGE;
		}
		have_pass = true;
	}
	if (o.socks_pw_file) {
		f = mvm_fs_fopen(o.socks_pw_file, "r");
		if (!f || !fgets(socks_pass, sizeof(socks_pass), f)) {
			fprintf(stderr, "microvm up: --socks-password-file %s: cannot read it\n",
				o.socks_pw_file);
			if (f)
				fclose(f);
			explicit_bzero(vpn_pass, sizeof(vpn_pass));
			free(profile);
			return CLI_EXIT_USAGE;
		}
		fclose(f);
		socks_pass[strcspn(socks_pass, "\r\n")] = '\0';
		cfg.socks.username = o.socks_user;
		cfg.socks.password = socks_pass;
	}
	cfg.mgr.socks_generate_secret = o.socks_auth && !o.socks_user;
	cfg.mgr.log = up_log;

	if (o.detach) {
#ifdef _WIN32
		ret = up_detach(have_pass ? vpn_pass : NULL);
#else
		ret = up_detach(&ready);
#endif
		if (ret >= 0) {
			explicit_bzero(vpn_pass, sizeof(vpn_pass));
			free(profile);
			return ret;
		}
	}
	u.stop_timeout_ms = o.stop_timeout_ms;
	u.m = mvm_manager_new(&cfg.mgr);
	memset(socks_pass, 0, sizeof(socks_pass));
	if (!u.m) {
		fprintf(stderr, "microvm up: %s\n", mvm_last_error());
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	if (up_listen(&u)) {
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	listening = true;
	if (o.agent || o.agent_netns) {
		mvm_vsock *vs = o.agent_netns ? mvm_vsock_new_tcp_netns(o.agent_netns, o.agent)
					      : mvm_vsock_new_tcp(o.agent);

		ret = vs ? mvm_vsock_set_secret(vs, agent_secret) : -EINVAL;
		explicit_bzero(agent_secret, sizeof(agent_secret));
		cli_progress_begin("microvm up: waiting for the agent");
		if (!ret)
			ret = mvm_manager_attach(u.m, vs);
		else
			mvm_vsock_free(vs);
		cli_progress_end();
	} else {
		/* the first start also unpacks the guest image (nsbox) */
		cli_progress_begin("microvm up: starting the VM and waiting for its agent");
		ret = mvm_manager_start_vm(u.m);
		cli_progress_end();
		/* auto picked the box: say so about VM options rather than drop them silently */
		if (!ret && o.vm_only[0] && cfg.vm.backend == MVM_BACKEND_AUTO) {
			mvm_manager_get_status(u.m, &st);
			if (!strcmp(st.hypervisor, "nsbox"))
				fprintf(stderr, "microvm up: note: the nsbox backend does not use "
					"%s; ignored\n", o.vm_only);
		}
	}
	if (ret) {
		ctl_print_failure("up", mvm_last_error());
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	if (cfg.mgr.socks_generate_secret && (ret = up_write_secret(&u))) {
		fprintf(stderr, "microvm up: cannot write the SOCKS secret: %s\n", strerror(-ret));
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	if (u.secret_path[0])
		printf("SOCKS5 credentials (user, password) are in %s\n", u.secret_path);
	if (o.profile && up_connect_profile(&u, o.profile, profile, o.user,
					    have_pass ? vpn_pass : NULL)) {
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	explicit_bzero(vpn_pass, sizeof(vpn_pass));
#ifndef _WIN32
	signal(SIGPIPE, SIG_IGN);
#endif
	printf("microvm is up; control socket %s\n", u.ctl_path);
	fflush(stdout);
	if (ready >= 0)
		up_detached_ready(&u, &ready);
	idle = up_serve(&u);
	ret = CLI_EXIT_OK;
out:
	explicit_bzero(vpn_pass, sizeof(vpn_pass));
	free(profile);
	if (listening && !u.stopping) {
		/* failed before serving: closing the socket removes it */
		up_shutdown(&u);
		uv_run(u.loop, UV_RUN_NOWAIT);
	}
	if (u.secret_path[0])
		mvm_fs_unlink(u.secret_path);
	if (ready >= 0)
		close(ready);
	/* answers still on the thread pool hold the manager: free only if none */
	if (u.m && idle)
		mvm_manager_free(u.m);
	return ret;
}
