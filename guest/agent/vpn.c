// SPDX-License-Identifier: MIT
/*
 * vpn.c - OpenVPN supervisor and management client
 *
 * Theory of operation
 *
 *   One OpenVPN client process per vpn_start, driven only through its management
 *   interface (see docs/protocol.md and the OpenVPN 2.6 notes):
 *
 *     openvpn --config PROFILE --dev TUN --dev-type tun [--auth-user-pass] --auth-nocache
 *       --auth-retry none --setenv IV_SSO webauth,openurl
 *       --management RUN_DIR/ovpn.sock unix --management-client --management-hold
 *       --management-query-passwords --management-up-down --disable-dco ...
 *
 *   We listen on the Unix socket (mode 0600 in a 0700 directory) before forking; OpenVPN
 *   connects once (--management-client) and, should the agent go away, exits. On connect
 *   we send "state on"; every ">HOLD:" is answered with "hold release". ">PASSWORD:Need
 *   'Auth'" is answered with the username and password given to vpn_start: they exist only
 *   in our memory and on that socket, never on a command line or in a file, and they are
 *   wiped when the session ends.
 *
 *   Session states: IDLE (no process), RUNNING, STOPPING (SIGTERM sent; SIGKILL after 5 s).
 *   Within RUNNING the outcome a client sees (vpn_view()) follows the management events:
 *     >STATE:..,CONNECTED,..,TUN_IP        -> connected (tun_ip from the state line, else
 *                                            ifconfig_local from >UPDOWN:ENV)
 *     >INFOMSG:WEB_AUTH::URL / OPEN_URL:URL -> webauth_required (until connected or failed)
 *     >PASSWORD:Verification Failed         -> failed ("authentication failed")
 *     >FATAL:text                           -> failed (text)
 *     no outcome before the deadline        -> failed (timeout), process stopped
 *     process exit                          -> failed with the exit reason, unless vpn_stop
 *   A failure stops the process; the reason stays visible (vpn_status "reason", vpn_start
 *   and vpn_check_webauth "error") until the next vpn_start. An agent that init restarted
 *   (MICROVM_AGENT_PREVIOUS in its environment: how the previous run ended) starts with that
 *   as the reason: the previous agent's OpenVPN ended with it (parent-death signal), and the
 *   host learns why its VPN is down. DNS servers pushed with
 *   "dhcp-option DNS" arrive as >UPDOWN:ENV foreign_option_N and are used by the proxy.
 *   SIGCHLD reaps every child (vpn_reap(), registered with agent_on_child()), so there are
 *   never zombies; vpn_tick() (agent_on_tick()) enforces the timeouts.
 *
 *   Every change a client can see (an outcome, a reconnect, the process gone) is reported
 *   to the listeners registered with vpn_on_change(), in the order they registered:
 *   control.c answers parked requests, proxy.c resets relays through a tunnel that went
 *   down. vpn.c knows neither of them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define VPN_KILL_MS		5000
#define VPN_WEBAUTH_DEFAULT_S	300
#define VPN_RBUF		4096
#define VPN_WBUF		4096

enum vpn_st { VPN_ST_IDLE, VPN_ST_RUNNING, VPN_ST_STOPPING };

/**
 * struct vpn - the supervisor
 * @st:			session state
 * @pid:		OpenVPN's pid, 0 if none
 * @lsn:		management listener (until OpenVPN connected)
 * @mgmt:		management connection
 * @sock_path:		the Unix socket path
 * @log_path:		OpenVPN's log file
 * @rbuf:		partial management line
 * @rlen:		its length
 * @rdiscard:		dropping the rest of an overlong line
 * @wbuf:		unsent management commands (may hold a password: wiped when sent)
 * @wlen:		their length
 * @profile:		profile of the session
 * @user:		username (heap, wiped at the end), NULL if none
 * @pass:		password (heap, wiped at the end), NULL if none
 * @tun_ip:		tunnel IPv4 address once connected
 * @dev:		tun device from >UPDOWN:ENV dev
 * @env_ip:		ifconfig_local from the current >UPDOWN block
 * @env_dev:		dev from the current block
 * @auth_url:		web authentication URL
 * @state:		last OpenVPN state name
 * @reason:		why the last session failed or ended
 * @connected:		tunnel up
 * @webauth:		web authentication URL received, not yet connected
 * @failed:		the session failed (@reason set)
 * @user_stop:		vpn_stop or shutdown asked for the end
 * @webauth_default:	@webauth_deadline is our default, not the server's timeout
 * @dns:		pushed DNS servers
 * @ndns:		count
 * @env_dns:		DNS servers of the current >UPDOWN block
 * @env_ndns:		count
 * @timeout_s:		outcome timeout of this session
 * @deadline:		monotonic ms by which an outcome must be known
 * @webauth_deadline:	monotonic ms by which web authentication must be finished
 * @kill_at:		monotonic ms at which STOPPING escalates to SIGKILL (0: not armed)
 * @listeners:		called on every change (vpn_on_change())
 * @nlisteners:		how many
 */
struct vpn {
	enum vpn_st st;
	pid_t pid;
	struct agent_ev lsn, mgmt;
	char sock_path[320];
	char log_path[320];
	char rbuf[VPN_RBUF];
	size_t rlen;
	bool rdiscard;
	char wbuf[VPN_WBUF];
	size_t wlen;
	char profile[AGENT_PROFILE_NAME_MAX + 1];
	char *user, *pass;
	char tun_ip[64], dev[32], env_ip[64], env_dev[32];
	char auth_url[MGMT_FIELD_MAX];
	char state[32];
	char reason[256];
	bool connected, webauth, failed, user_stop, webauth_default;
	struct sockaddr_storage dns[AGENT_DNS_MAX];
	size_t ndns;
	struct sockaddr_storage env_dns[AGENT_DNS_MAX];
	size_t env_ndns;
	int timeout_s;
	uint64_t deadline, webauth_deadline, kill_at;
	void (*listeners[AGENT_VPN_LISTENERS_MAX])(struct agent *a);
	size_t nlisteners;
};

static void vpn_tick(struct agent *a);
static void vpn_reap(struct agent *a);

/**
 * copy_str() - bounded string copy that always terminates
 * @dst:	buffer
 * @size:	its size
 * @src:	string
 */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/**
 * wipe_free() - wipe and free a secret string
 * @p:		string pointer to clear
 */
static void wipe_free(char **p)
{
	if (!*p)
		return;
	explicit_bzero(*p, strlen(*p));
	free(*p);
	*p = NULL;
}

/**
 * vpn_init() - allocate the supervisor; register its tick and the SIGCHLD reaper
 * @a:		agent (event loop initialised)
 *
 * Return: 0, -ENOMEM, or -ENOSPC when the loop has no room for another tick function
 */
int vpn_init(struct agent *a)
{
	struct vpn *v = calloc(1, sizeof(*v));
	const char *prev;
	int ret;

	if (!v)
		return -ENOMEM;
	ret = agent_on_tick(a, vpn_tick);
	if (ret) {
		free(v);
		return ret;
	}
	v->lsn.fd = v->mgmt.fd = -1;
	snprintf(v->sock_path, sizeof(v->sock_path), "%s/ovpn.sock", a->opts.run_dir);
	snprintf(v->log_path, sizeof(v->log_path), "%s/openvpn.log", a->opts.run_dir);
	prev = getenv("MICROVM_AGENT_PREVIOUS");
	if (prev && prev[0]) {
		snprintf(v->reason, sizeof(v->reason), "the VM's agent ended (%.128s) and was "
			 "restarted; any VPN session ended with it", prev);
		agent_log(a, "restarted by init: the previous agent ended (%.128s)", prev);
	}
	unsetenv("MICROVM_AGENT_PREVIOUS");	/* not for OpenVPN's environment */
	a->vpn = v;
	agent_on_child(a, vpn_reap);
	return 0;
}

/**
 * vpn_on_change() - call @fn whenever the VPN's state changes in a way clients can see
 * @a:		agent (vpn_init() done)
 * @fn:		the listener; it may call any vpn_* function, vpn_start() and vpn_stop()
 *		included
 *
 * Return: 0, or -ENOSPC when AGENT_VPN_LISTENERS_MAX listeners are registered already
 */
int vpn_on_change(struct agent *a, void (*fn)(struct agent *a))
{
	struct vpn *v = a->vpn;

	if (v->nlisteners == AGENT_VPN_LISTENERS_MAX)
		return -ENOSPC;
	v->listeners[v->nlisteners++] = fn;
	return 0;
}

/**
 * signal_child() - ask OpenVPN to exit; SIGKILL follows from vpn_tick()
 * @v:		supervisor
 */
static void signal_child(struct vpn *v)
{
	if (v->st != VPN_ST_RUNNING)
		return;
	v->st = VPN_ST_STOPPING;
	if (v->pid > 0)
		kill(v->pid, SIGTERM);
	v->kill_at = agent_now_ms() + VPN_KILL_MS;
}

/**
 * log_tail_error() - the last line of OpenVPN's log that reports an error
 * @v:		supervisor
 * @fatal_only:	only a line with "FATAL" counts
 * @out:	receives the line
 * @size:	its size
 *
 * Used when OpenVPN exits before its management interface could tell us why (option
 * errors in a broken profile, missing files), and when a session that was up ends (then
 * only OpenVPN's FATAL line is worth adding to the exit status).
 *
 * Return: true if a line was found
 */
static bool log_tail_error(struct vpn *v, bool fatal_only, char *out, size_t size)
{
	char buf[4097];
	ssize_t n;
	off_t end;
	int fd = open(v->log_path, O_RDONLY | O_CLOEXEC);
	bool found = false;

	if (fd < 0)
		return false;
	end = lseek(fd, 0, SEEK_END);
	if (end > 4096)
		lseek(fd, end - 4096, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strstr(line, "FATAL") || (!fatal_only && (strcasestr(line, "error") ||
							      strstr(line, "Cannot")))) {
			/* Skip a "YYYY-MM-DD HH:MM:SS " timestamp if present. */
			char *msg = line;

			if (strlen(line) > 20 && line[4] == '-' && line[7] == '-' &&
			    line[10] == ' ' && line[13] == ':' && line[19] == ' ')
				msg = line + 20;
			copy_str(out, size, msg);
			found = true;
		}
		if (!nl)
			break;
	}
	return found;
}

/**
 * changed() - the VPN's state changed: tell the listeners (parked control clients, relays
 * through a tunnel that is gone)
 * @a:		agent
 */
static void changed(struct agent *a)
{
	struct vpn *v = a->vpn;

	for (size_t i = 0; i < v->nlisteners; i++)
		v->listeners[i](a);
}

/**
 * fail() - the session failed: record why, stop OpenVPN, tell waiting clients
 * @a:		agent
 * @fmt:	reason
 */
static void fail(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct agent *a, const char *fmt, ...)
{
	struct vpn *v = a->vpn;
	va_list ap;

	if (v->failed || v->user_stop)
		return;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
	v->failed = true;
	v->connected = false;
	v->webauth = false;
	agent_log(a, "vpn failed: %s", v->reason);
	signal_child(v);
	changed(a);
}

/**
 * mgmt_flush() - send queued management commands
 * @a:		agent
 *
 * Return: 0 or -errno
 */
static int mgmt_flush(struct agent *a)
{
	struct vpn *v = a->vpn;
	size_t off = 0;

	while (off < v->wlen && v->mgmt.fd >= 0) {
		ssize_t n = send(v->mgmt.fd, v->wbuf + off, v->wlen - off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		off += (size_t)n;
	}
	memmove(v->wbuf, v->wbuf + off, v->wlen - off);
	explicit_bzero(v->wbuf + v->wlen - off, off);
	v->wlen -= off;
	if (v->mgmt.fd >= 0)
		agent_ev_set(a, &v->mgmt, EPOLLIN | (v->wlen ? EPOLLOUT : 0));
	return 0;
}

/**
 * mgmt_cmd() - queue one management command line
 * @a:		agent
 * @s:		command without newline
 */
static void mgmt_cmd(struct agent *a, const char *s)
{
	struct vpn *v = a->vpn;
	size_t n = strlen(s);

	if (v->wlen + n + 1 > sizeof(v->wbuf)) {
		fail(a, "management interface not reading");
		return;
	}
	memcpy(v->wbuf + v->wlen, s, n);
	v->wbuf[v->wlen + n] = '\n';
	v->wlen += n + 1;
	if (mgmt_flush(a) < 0)
		fail(a, "management interface write failed");
}

/**
 * send_credentials() - answer >PASSWORD:Need 'Auth'
 * @a:		agent
 */
static void send_credentials(struct agent *a)
{
	struct vpn *v = a->vpn;
	char q[2 * AGENT_CRED_MAX + 3], line[2 * AGENT_CRED_MAX + 32];

	if (!v->user) {
		fail(a, "the profile needs a username and password");
		return;
	}
	if (mgmt_quote(q, sizeof(q), v->user) < 0) {
		fail(a, "bad username");
		return;
	}
	snprintf(line, sizeof(line), "username \"Auth\" %s", q);
	mgmt_cmd(a, line);
	if (mgmt_quote(q, sizeof(q), v->pass ? v->pass : "") < 0) {
		explicit_bzero(q, sizeof(q));
		fail(a, "bad password");
		return;
	}
	snprintf(line, sizeof(line), "password \"Auth\" %s", q);
	mgmt_cmd(a, line);
	explicit_bzero(q, sizeof(q));
	explicit_bzero(line, sizeof(line));
	agent_debug(a, "credentials sent");
}

/**
 * on_state() - a >STATE line
 * @a:		agent
 * @m:		parsed line
 */
static void on_state(struct agent *a, const struct mgmt_msg *m)
{
	struct vpn *v = a->vpn;

	copy_str(v->state, sizeof(v->state), m->a);
	agent_debug(a, "openvpn state %s %s", m->a, m->b);
	if (!strcmp(m->a, "CONNECTED")) {
		if (v->failed)
			return;
		copy_str(v->tun_ip, sizeof(v->tun_ip), m->c[0] ? m->c : v->env_ip);
		v->connected = true;
		v->webauth = false;
		v->webauth_deadline = 0;
		agent_log(a, "vpn connected (%s %s)", v->dev[0] ? v->dev : a->opts.tun_dev,
			  v->tun_ip);
		changed(a);
	} else if (!strcmp(m->a, "AUTH_PENDING")) {
		unsigned int t = 0;

		/* OpenVPN restarts and re-authenticates while the user takes their time (each
		 * round announces the timeout again): the first announcement counts. */
		if (sscanf(m->b, "timeout %u", &t) != 1 || t == 0 || t > 86400)
			t = VPN_WEBAUTH_DEFAULT_S;
		if (!v->webauth_deadline || v->webauth_default) {
			v->webauth_deadline = agent_now_ms() + (uint64_t)t * 1000 + 5000;
			v->webauth_default = false;
		}
	} else if (!strcmp(m->a, "RECONNECTING")) {
		if (v->connected) {
			agent_log(a, "vpn reconnecting (%s)", m->b);
			v->connected = false;
			v->tun_ip[0] = '\0';
			v->deadline = agent_now_ms() + (uint64_t)v->timeout_s * 1000;
			changed(a);
		}
	} else if (!strcmp(m->a, "EXITING")) {
		if (!strcmp(m->b, "auth-failure"))
			fail(a, "authentication failed");
		else if (m->b[0] && !v->failed && !v->user_stop)
			snprintf(v->reason, sizeof(v->reason), "openvpn exiting: %s", m->b);
	}
}

/**
 * on_updown_env() - one >UPDOWN:ENV variable
 * @v:		supervisor
 * @m:		parsed line (a=name, b=value)
 */
static void on_updown_env(struct vpn *v, const struct mgmt_msg *m)
{
	const char *val = m->b;

	if (!strcmp(m->a, "dev")) {
		copy_str(v->env_dev, sizeof(v->env_dev), val);
	} else if (!strcmp(m->a, "ifconfig_local")) {
		copy_str(v->env_ip, sizeof(v->env_ip), val);
	} else if (!strncmp(m->a, "foreign_option_", 15) && v->env_ndns < AGENT_DNS_MAX) {
		struct sockaddr_storage *ss = &v->env_dns[v->env_ndns];
		struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		memset(ss, 0, sizeof(*ss));
		if (!strncmp(val, "dhcp-option DNS ", 16) &&
		    inet_pton(AF_INET, val + 16, &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons(53);
			v->env_ndns++;
		} else if (!strncmp(val, "dhcp-option DNS6 ", 17) &&
			   inet_pton(AF_INET6, val + 17, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(53);
			v->env_ndns++;
		}
	}
}

/**
 * on_line() - one management line
 * @a:		agent
 * @line:	the line
 * @len:	its length
 */
static void on_line(struct agent *a, const char *line, size_t len)
{
	struct vpn *v = a->vpn;
	struct mgmt_msg m;

	mgmt_parse(line, len, &m);
	switch (m.type) {
	case MGMT_HOLD:
		mgmt_cmd(a, "hold release");
		break;
	case MGMT_STATE:
		on_state(a, &m);
		break;
	case MGMT_PASSWORD_NEED:
		if (!strcmp(m.a, "Auth") && m.n1)
			send_credentials(a);
		else
			fail(a, "the profile needs a '%s' password, which is not supported", m.a);
		break;
	case MGMT_PASSWORD_FAILED:
		if (v->webauth)
			fail(a, "web authentication failed%s%s", m.b[0] ? ": " : "", m.b);
		else
			fail(a, "authentication failed%s%s", m.b[0] ? ": " : "", m.b);
		break;
	case MGMT_WEBAUTH_URL:
		if (v->failed || v->connected)
			break;
		copy_str(v->auth_url, sizeof(v->auth_url), m.a);
		if (!v->webauth_deadline) {
			v->webauth_deadline = agent_now_ms() + VPN_WEBAUTH_DEFAULT_S * 1000ULL;
			v->webauth_default = true;
		}
		if (!v->webauth) {
			v->webauth = true;
			agent_log(a, "vpn needs web authentication");
			changed(a);
		}
		break;
	case MGMT_FATAL:
		fail(a, "openvpn: %s", m.a);
		break;
	case MGMT_UPDOWN:
		v->env_ndns = 0;
		v->env_ip[0] = v->env_dev[0] = '\0';
		break;
	case MGMT_UPDOWN_ENV:
		on_updown_env(v, &m);
		break;
	case MGMT_UPDOWN_END:
		memcpy(v->dns, v->env_dns, sizeof(v->dns));
		v->ndns = v->env_ndns;
		if (v->env_dev[0])
			copy_str(v->dev, sizeof(v->dev), v->env_dev);
		break;
	case MGMT_ERROR:
		agent_log(a, "openvpn management: ERROR: %s", m.a);
		break;
	default:
		break;
	}
}

/**
 * mgmt_close() - drop the management connection and listener
 * @a:		agent
 */
static void mgmt_close(struct agent *a)
{
	struct vpn *v = a->vpn;

	agent_ev_close(a, &v->mgmt);
	agent_ev_close(a, &v->lsn);
	unlink(v->sock_path);
	explicit_bzero(v->wbuf, sizeof(v->wbuf));
	v->wlen = 0;
	v->rlen = 0;
	v->rdiscard = false;
}

/**
 * on_mgmt() - events on the management connection
 * @a:		agent
 * @ev:		registration
 * @events:	what happened
 */
static void on_mgmt(struct agent *a, struct agent_ev *ev, uint32_t events)
{
	struct vpn *v = a->vpn;

	if ((events & EPOLLOUT) && mgmt_flush(a) < 0) {
		mgmt_close(a);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = recv(ev->fd, v->rbuf + v->rlen, sizeof(v->rbuf) - v->rlen,
				 MSG_DONTWAIT);
		size_t start = 0;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			/* OpenVPN is exiting; the reaper finishes the session. */
			agent_debug(a, "management connection closed");
			mgmt_close(a);
			return;
		}
		v->rlen += (size_t)n;
		for (size_t i = 0; i < v->rlen; i++) {
			if (v->rbuf[i] != '\n')
				continue;
			if (!v->rdiscard)
				on_line(a, v->rbuf + start, i - start);
			v->rdiscard = false;
			start = i + 1;
			if (v->mgmt.fd < 0)
				return;
		}
		memmove(v->rbuf, v->rbuf + start, v->rlen - start);
		v->rlen -= start;
		if (v->rlen == sizeof(v->rbuf)) {
			/* An overlong line: nothing we act on is this long. */
			v->rdiscard = true;
			v->rlen = 0;
		}
	}
}

/**
 * on_mgmt_accept() - OpenVPN connected to the management socket
 * @a:		agent
 * @ev:		the listener
 * @events:	unused
 */
static void on_mgmt_accept(struct agent *a, struct agent_ev *ev, uint32_t events)
{
	struct vpn *v = a->vpn;
	int fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)events;
	if (fd < 0)
		return;
	/* One connection only: nobody else gets to talk to OpenVPN. */
	agent_ev_close(a, &v->lsn);
	unlink(v->sock_path);
	v->mgmt.fd = fd;
	v->mgmt.cb = on_mgmt;
	agent_ev_set(a, &v->mgmt, EPOLLIN);
	agent_debug(a, "openvpn connected to the management socket");
	mgmt_cmd(a, "state on");
}

/**
 * mgmt_listen() - create the management socket OpenVPN will connect to
 * @a:		agent
 *
 * Return: 0 or -errno
 */
static int mgmt_listen(struct agent *a)
{
	struct vpn *v = a->vpn;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, ret;

	if (strlen(v->sock_path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, v->sock_path);
	unlink(v->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(077);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (ret < 0 || listen(fd, 1) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	v->lsn.fd = fd;
	v->lsn.cb = on_mgmt_accept;
	ret = agent_ev_set(a, &v->lsn, EPOLLIN);
	if (ret) {
		agent_ev_close(a, &v->lsn);
		return ret;
	}
	return 0;
}

/**
 * spawn() - fork and exec OpenVPN
 * @a:		agent
 * @config:	profile path
 *
 * Return: 0 or -errno
 */
static int spawn(struct agent *a, const char *config)
{
	struct vpn *v = a->vpn;
	const char *argv[48];
	size_t i = 0;
	sigset_t all;
	int logfd, nullfd;
	pid_t pid;

	argv[i++] = a->opts.openvpn;
	argv[i++] = "--config";
	argv[i++] = config;
	argv[i++] = "--dev";
	argv[i++] = a->opts.tun_dev;
	argv[i++] = "--dev-type";
	argv[i++] = "tun";
	if (v->user)
		argv[i++] = "--auth-user-pass";
	argv[i++] = "--auth-nocache";
	argv[i++] = "--auth-retry";
	argv[i++] = "none";
	argv[i++] = "--setenv";
	argv[i++] = "IV_SSO";
	argv[i++] = "webauth,openurl";
	argv[i++] = "--management";
	argv[i++] = v->sock_path;
	argv[i++] = "unix";
	argv[i++] = "--management-client";
	argv[i++] = "--management-hold";
	argv[i++] = "--management-query-passwords";
	argv[i++] = "--management-up-down";
	argv[i++] = "--disable-dco";
	argv[i++] = "--connect-retry";
	argv[i++] = "2";
	argv[i++] = "30";
	argv[i++] = "--connect-retry-max";
	argv[i++] = "3";
	argv[i++] = "--server-poll-timeout";
	argv[i++] = "10";
	argv[i++] = "--resolv-retry";
	argv[i++] = "10";
	argv[i++] = "--verb";
	argv[i++] = "3";
	/*
	 * Last, so that it wins over anything in the profile (OpenVPN applies options in
	 * order, a later one replacing an earlier): no user-defined scripts, whatever a
	 * profile that got past ovpn_check says.
	 */
	argv[i++] = "--script-security";
	argv[i++] = "1";
	argv[i] = NULL;

	logfd = open(v->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -errno;
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid = fork();
	if (pid < 0) {
		int ret = -errno;

		close(logfd);
		if (nullfd >= 0)
			close(nullfd);
		return ret;
	}
	if (pid == 0) {
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		setsid();
		if (nullfd >= 0)
			dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execv(argv[0], (char *const *)argv);
		dprintf(2, "ERROR: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	v->pid = pid;
	agent_log(a, "openvpn started (pid %d, profile %s%s)", (int)pid, v->profile,
		  v->user ? ", with username/password" : "");
	return 0;
}

/**
 * vpn_check_stored() - run a stored profile through the import allow-list again
 * @a:		agent
 * @profile:	its name
 * @err:	receives the reason on refusal
 * @errlen:	its size
 *
 * Profiles stored by an older agent, or put into the store by other means, get the same
 * check as an upload before OpenVPN sees them.
 *
 * Return: 0 or -errno
 */
static int vpn_check_stored(struct agent *a, const char *profile, char *err, size_t errlen)
{
	char why[256];
	char *text;
	size_t len;
	int ret = profile_read(a->profile_dir, profile, &text, &len);

	if (ret) {
		if (ret == -ENOENT)
			snprintf(err, errlen, "no such profile");
		else
			snprintf(err, errlen, "cannot read the profile: %s", strerror(-ret));
		return ret;
	}
	ret = ovpn_check_profile(text, len, why, sizeof(why));
	free(text);
	if (ret) {
		snprintf(err, errlen, "profile %s refused: %s", profile, why);
		agent_log(a, "%s", err);
	}
	return ret;
}

/**
 * vpn_start() - start a session
 * @a:		agent
 * @profile:	stored profile name (validated)
 * @user:	username or NULL
 * @pass:	password or NULL
 * @timeout_s:	outcome timeout, 0 for --vpn-timeout
 * @err:	message on failure
 * @errlen:	its size
 *
 * Return: 0 (the outcome follows through the vpn_on_change() listeners), or -errno with
 * @err set
 */
int vpn_start(struct agent *a, const char *profile, const char *user, const char *pass,
	      int timeout_s, char *err, size_t errlen)
{
	struct vpn *v = a->vpn;
	char config[400];
	int ret;

	if (v->st != VPN_ST_IDLE) {
		snprintf(err, errlen, "vpn already started");
		return -EBUSY;
	}
	ret = vpn_check_stored(a, profile, err, errlen);
	if (ret)
		return ret;
	copy_str(v->profile, sizeof(v->profile), profile);
	v->tun_ip[0] = v->dev[0] = v->env_ip[0] = v->env_dev[0] = '\0';
	v->auth_url[0] = v->state[0] = v->reason[0] = '\0';
	v->connected = v->webauth = v->failed = v->user_stop = false;
	v->ndns = v->env_ndns = 0;
	v->webauth_deadline = v->kill_at = 0;
	v->webauth_default = false;
	v->timeout_s = timeout_s > 0 ? timeout_s : (int)a->opts.vpn_timeout_s;
	v->deadline = agent_now_ms() + (uint64_t)v->timeout_s * 1000;
	wipe_free(&v->user);
	wipe_free(&v->pass);
	if (user) {
		v->user = strdup(user);
		v->pass = strdup(pass ? pass : "");
		if (!v->user || !v->pass) {
			wipe_free(&v->user);
			wipe_free(&v->pass);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	snprintf(config, sizeof(config), "%s/%s", a->profile_dir, profile);
	ret = mgmt_listen(a);
	if (!ret) {
		ret = spawn(a, config);
		if (ret)
			mgmt_close(a);
	}
	if (ret) {
		wipe_free(&v->user);
		wipe_free(&v->pass);
		snprintf(err, errlen, "cannot start openvpn: %s", strerror(-ret));
		agent_log(a, "%s", err);
		return ret;
	}
	v->st = VPN_ST_RUNNING;
	return 0;
}

/**
 * vpn_stop() - end the session (vpn_stop request); completion is reported to the
 * vpn_on_change() listeners once OpenVPN is reaped
 * @a:		agent
 */
void vpn_stop(struct agent *a)
{
	struct vpn *v = a->vpn;

	if (v->st == VPN_ST_IDLE)
		return;
	v->user_stop = true;
	if (!v->failed)
		v->reason[0] = '\0';
	agent_log(a, "vpn stop requested");
	signal_child(v);
}

/**
 * describe_exit() - text for a wait status
 * @ws:		status
 * @buf:	output
 * @size:	its size
 */
static void describe_exit(int ws, char *buf, size_t size)
{
	if (WIFSIGNALED(ws))
		snprintf(buf, size, "openvpn killed by signal %d", WTERMSIG(ws));
	else
		snprintf(buf, size, "openvpn exited with status %d", WEXITSTATUS(ws));
}

/**
 * vpn_reap() - collect exited children (SIGCHLD)
 * @a:		agent
 */
static void vpn_reap(struct agent *a)
{
	struct vpn *v = a->vpn;
	pid_t pid;
	int ws;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		char what[96], tail[200];

		if (pid != v->pid)
			continue;
		describe_exit(ws, what, sizeof(what));
		agent_log(a, "%s", what);
		v->pid = 0;
		mgmt_close(a);
		if (!v->failed && !v->user_stop) {
			/* a session that was up ended: only a FATAL line says more than the exit */
			if (!log_tail_error(v, v->connected, tail, sizeof(tail)))
				copy_str(v->reason, sizeof(v->reason), what);
			else if ((size_t)snprintf(v->reason, sizeof(v->reason), "%s: ", what) <
				 sizeof(v->reason))
				strncat(v->reason, tail, sizeof(v->reason) - strlen(v->reason) - 1);
			v->failed = true;
		}
		v->st = VPN_ST_IDLE;
		v->connected = v->webauth = false;
		v->tun_ip[0] = v->state[0] = '\0';
		v->ndns = 0;
		v->kill_at = 0;
		wipe_free(&v->user);
		wipe_free(&v->pass);
		changed(a);
	}
}

/**
 * vpn_tick() - timeouts (every 250 ms)
 * @a:		agent
 */
static void vpn_tick(struct agent *a)
{
	struct vpn *v = a->vpn;
	uint64_t now = agent_now_ms();

	if (v->st == VPN_ST_STOPPING && v->kill_at && now >= v->kill_at && v->pid > 0) {
		agent_log(a, "openvpn did not exit: SIGKILL");
		kill(v->pid, SIGKILL);
		v->kill_at = 0;
	}
	if (v->st != VPN_ST_RUNNING || v->connected || v->failed)
		return;
	if (v->webauth) {
		if (v->webauth_deadline && now >= v->webauth_deadline)
			fail(a, "web authentication timed out");
	} else if (now >= v->deadline) {
		fail(a, "timed out after %d s waiting for the vpn to connect", v->timeout_s);
	}
}

/**
 * vpn_shutdown() - stop OpenVPN synchronously (agent exit)
 * @a:		agent
 */
void vpn_shutdown(struct agent *a)
{
	struct vpn *v = a->vpn;
	uint64_t end = agent_now_ms() + VPN_KILL_MS;
	int ws;

	if (!v)
		return;
	if (v->pid > 0) {
		v->user_stop = true;
		kill(v->pid, SIGTERM);
		while (waitpid(v->pid, &ws, WNOHANG) == 0) {
			if (agent_now_ms() >= end) {
				kill(v->pid, SIGKILL);
				waitpid(v->pid, &ws, 0);
				break;
			}
			usleep(20000);
		}
		agent_log(a, "openvpn stopped");
		v->pid = 0;
	}
	mgmt_close(a);
	wipe_free(&v->user);
	wipe_free(&v->pass);
	v->st = VPN_ST_IDLE;
}

/**
 * vpn_view() - what clients see
 * @a:		agent
 *
 * Return: enum vpn_view
 */
enum vpn_view vpn_view(const struct agent *a)
{
	const struct vpn *v = a->vpn;

	if (v->failed)
		return VPN_VIEW_FAILED;
	if (v->st == VPN_ST_IDLE)
		return VPN_VIEW_IDLE;
	if (v->st == VPN_ST_RUNNING && v->connected)
		return VPN_VIEW_CONNECTED;
	if (v->st == VPN_ST_RUNNING && v->webauth)
		return VPN_VIEW_WEBAUTH;
	return VPN_VIEW_PENDING;
}

/**
 * vpn_stopping() - is OpenVPN on its way out (failed or stopped, not yet exited)
 * @a:		agent
 *
 * Return: true if so
 */
bool vpn_stopping(const struct agent *a)
{
	return a->vpn->st == VPN_ST_STOPPING;
}

/**
 * vpn_running() - is there an OpenVPN process (starting, up, or stopping)
 * @a:		agent
 *
 * Return: true if so
 */
bool vpn_running(const struct agent *a)
{
	return a->vpn->st != VPN_ST_IDLE;
}

/**
 * vpn_tun_ip() - the tunnel address while connected
 * @a:		agent
 *
 * Return: dotted address, "" when not connected
 */
const char *vpn_tun_ip(const struct agent *a)
{
	return a->vpn->tun_ip;
}

/**
 * vpn_auth_url() - the web authentication URL of the session
 * @a:		agent
 *
 * Return: URL, "" if none
 */
const char *vpn_auth_url(const struct agent *a)
{
	return a->vpn->auth_url;
}

/**
 * vpn_reason() - why the last session failed or ended on its own
 * @a:		agent
 *
 * Return: text, "" if none
 */
const char *vpn_reason(const struct agent *a)
{
	return a->vpn->reason;
}

/**
 * vpn_profile() - profile of the current (or failed) session
 * @a:		agent
 *
 * Return: name, "" when idle after a clean stop
 */
const char *vpn_profile(const struct agent *a)
{
	return a->vpn->st == VPN_ST_IDLE && !a->vpn->failed ? "" : a->vpn->profile;
}

/**
 * vpn_state_name() - OpenVPN's last >STATE name
 * @a:		agent
 *
 * Return: e.g. "CONNECTED", "" when idle
 */
const char *vpn_state_name(const struct agent *a)
{
	return a->vpn->state;
}

/**
 * vpn_dev() - the tun device
 * @a:		agent
 *
 * Return: device name from OpenVPN, else --tun-dev
 */
const char *vpn_dev(const struct agent *a)
{
	return a->vpn->dev[0] ? a->vpn->dev : a->opts.tun_dev;
}

/**
 * vpn_dns() - DNS servers pushed by the VPN while connected
 * @a:		agent
 * @out:	receives up to @max addresses (port 53)
 * @max:	room
 *
 * Return: how many
 */
size_t vpn_dns(const struct agent *a, struct sockaddr_storage *out, size_t max)
{
	const struct vpn *v = a->vpn;
	size_t n = v->connected ? v->ndns : 0;

	if (n > max)
		n = max;
	memcpy(out, v->dns, n * sizeof(*out));
	return n;
}

/**
 * vpn_fini() - free the supervisor (after vpn_shutdown())
 * @a:		agent
 */
void vpn_fini(struct agent *a)
{
	if (a->on_child == vpn_reap)
		agent_on_child(a, NULL);
	free(a->vpn);
	a->vpn = NULL;
}
