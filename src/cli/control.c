/* SPDX-License-Identifier: MIT */
/* control.c - client side of the control socket (see control.h), and input helpers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "cli/control.h"
#include "sandbox/secret.h"

/**
 * ctl_default_path() - $MICROVM_CONTROL, else $XDG_RUNTIME_DIR/microvm/control.sock, else
 * /run/microvm/control.sock
 * Return: 0 or -ENAMETOOLONG.
 */
int ctl_default_path(char *out, size_t cap)
{
	const char *env = getenv("MICROVM_CONTROL"), *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (env && *env)
		n = snprintf(out, cap, "%s", env);
	else if (xdg && *xdg)
		n = snprintf(out, cap, "%s/microvm/control.sock", xdg);
	else
		n = snprintf(out, cap, "/run/microvm/control.sock");
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/**
 * ctl_path() - the control socket: @opt if given (--control), else the default
 * Return: 0 or -ENAMETOOLONG.
 */
int ctl_path(const char *opt, char *out, size_t cap)
{
	if (opt) {
		if (strlen(opt) >= cap)
			return -ENAMETOOLONG;
		strcpy(out, opt);
		return 0;
	}
	return ctl_default_path(out, cap);
}

/**
 * ctl_connect() - connect to the `up` process
 * Return: a socket or -errno.
 */
int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/**
 * ctl_send() - write one JSON line
 * Return: 0 or -errno.
 */
int ctl_send(int fd, const cJSON *msg)
{
	char *text = cJSON_PrintUnformatted(msg);
	size_t len, off = 0;
	ssize_t n;
	int ret = 0;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	text[len] = '\n';	/* replaces the NUL; cJSON allocated len + 1 */
	while (off < len + 1) {
		n = send(fd, text + off, len + 1 - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		off += (size_t)n;
	}
	explicit_bzero(text, len + 1);	/* may carry a password */
	cJSON_free(text);
	return ret;
}

/**
 * ctl_recv() - read one JSON line (byte by byte: the console stream may follow it)
 * @fd:		socket
 * @msg:	the parsed object
 *
 * Return: 0, -EPIPE on EOF before a line, -EPROTO for a bad or too long line, -errno.
 */
int ctl_recv(int fd, cJSON **msg)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *nb;
	ssize_t n;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= CTL_LINE_MAX) {
				ret = -EPROTO;
				goto out;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				ret = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0) {
			ret = -EPIPE;
			goto out;
		}
		if (buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = '\0';
	*msg = cJSON_Parse(buf);
	if (!cJSON_IsObject(*msg)) {
		cJSON_Delete(*msg);
		*msg = NULL;
		ret = -EPROTO;
	}
out:
	explicit_bzero(buf, cap);	/* may carry a password */
	free(buf);
	return ret;
}

static char ctl_err[512];	/* why the last ctl_call() got no answer */
static bool ctl_reached;	/* ... and whether it reached the socket */

/**
 * ctl_call() - one request/response with the `up` process
 * @path:	control socket
 * @req:	request (consumed)
 *
 * Return: the response, or NULL after printing why (typically: `up` is not running).
 */
cJSON *ctl_call(const char *path, cJSON *req)
{
	cJSON *resp = NULL;
	int fd, ret;

	ctl_reached = false;
	fd = ctl_connect(path);
	if (fd < 0) {
		snprintf(ctl_err, sizeof(ctl_err), "not running (cannot reach %s: %s); start it "
			 "with 'microvm up'", path, strerror(-fd));
		fprintf(stderr, "microvm: %s\n", ctl_err);
		secret_wipe_json(req, "password");
		cJSON_Delete(req);
		return NULL;
	}
	ctl_reached = true;
	ret = ctl_send(fd, req);
	secret_wipe_json(req, "password");
	if (!ret)
		ret = ctl_recv(fd, &resp);
	close(fd);
	cJSON_Delete(req);
	if (ret) {
		snprintf(ctl_err, sizeof(ctl_err), "no answer from the appliance: %s",
			 strerror(-ret));
		fprintf(stderr, "microvm: %s\n", ctl_err);
		return NULL;
	}
	return resp;
}

/**
 * ctl_print_json_failure() - the --json answer of a command that failed
 * @resp:	the appliance's error answer, or NULL when ctl_call() got none
 *
 * Prints {"running": BOOL, "error": TEXT} on stdout, so that a script reading the output
 * always gets an object; "running" is false when the control socket could not be reached.
 * The caller still exits non-zero.
 */
void ctl_print_json_failure(const cJSON *resp)
{
	const cJSON *e = resp ? cJSON_GetObjectItemCaseSensitive(resp, "error") : NULL;
	cJSON *o = cJSON_CreateObject();
	char *text;

	cJSON_AddBoolToObject(o, "running", resp ? true : ctl_reached);
	cJSON_AddStringToObject(o, "error", resp ? (cJSON_IsString(e) ? e->valuestring : "failed")
					      : ctl_err);
	text = cJSON_PrintUnformatted(o);
	printf("%s\n", text ? text : "{\"running\":false}");
	cJSON_free(text);
	cJSON_Delete(o);
}

/**
 * ctl_next_step() - what the user can do about an error from the appliance
 * @error:	the error text (agent's or manager's)
 *
 * One table, matched by the words the agent and the manager use (docs/protocol.md), so that
 * every failed command ends with the command to run or the option to add.
 *
 * Return: a hint ("" when none is known).
 */
const char *ctl_next_step(const char *error)
{
	static const struct {
		const char *words;
		const char *next;
	} hints[] = {
		{ "no such profile", "import it with 'microvm vpn import FILE'; 'microvm vpn "
				     "profiles' lists the stored ones" },
		{ "needs a username and password", "add --user USER (the password is asked)" },
		{ "web authentication failed", "run 'microvm vpn connect' again and finish the "
					       "login in the browser" },
		{ "web authentication timed out", "run 'microvm vpn connect' again and open the "
						  "URL sooner" },
		{ "authentication failed", "check --user and the password, then connect again" },
		{ "vpn already started with profile", "run 'microvm vpn disconnect' first" },
		{ "waiting for the vpn to connect", "check that the profile's 'remote' server is "
						    "reachable; --timeout SEC waits longer" },
		{ "openvpn exited", "check the profile: it must work with 'openvpn --config FILE'" },
		{ "no web authentication pending", "start with 'microvm vpn connect NAME'" },
		{ "bad profile name", "use a plain file name such as corp.ovpn (--name NAME)" },
		{ "no VM running", "start it with 'microvm up --detach'" },
		{ "did not answer within", "--boot-timeout SEC waits longer" },
		{ "Address already in use", "'microvm status' shows whether an appliance already "
					    "runs; --socks 127.0.0.1:PORT picks another port" },
		{ "no guest image built", "run 'make image', or give --rootfs" },
		{ "agent request", "'microvm status' says whether the agent is reachable; "
				   "'microvm console' shows the guest" },
	};
	size_t i;

	for (i = 0; error && i < sizeof(hints) / sizeof(hints[0]); i++)
		if (strstr(error, hints[i].words))
			return hints[i].next;
	return "";
}

/**
 * ctl_print_failure() - "microvm CMD: ERROR", then the next step on its own line if known
 * @cmd:	the command ("vpn connect")
 * @error:	what failed
 */
void ctl_print_failure(const char *cmd, const char *error)
{
	const char *next;

	if (!error)
		error = "failed";
	next = ctl_next_step(error);
	fprintf(stderr, "microvm %s: %s\n", cmd, error);
	if (*next)
		fprintf(stderr, "  next: %s\n", next);
}

/**
 * ctl_print_error() - print the error of a failed response, and the next step
 */
void ctl_print_error(const char *cmd, const cJSON *resp)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");

	ctl_print_failure(cmd, cJSON_IsString(e) ? e->valuestring : "failed");
}

/**
 * ctl_read_password() - a password from stdin (first line) or a no-echo prompt on the tty
 * @from_stdin:	--password-stdin was given
 * @prompt:	prompt text
 * @buf:	output
 * @cap:	its size
 *
 * Return: 0, -ENOTTY if there is no terminal to ask on, -EINVAL if empty/too long.
 */
int ctl_read_password(bool from_stdin, const char *prompt, char *buf, size_t cap)
{
	struct termios old, noecho;
	FILE *in = stdin;
	size_t n;
	bool tty = false;
	int ret = 0;

	if (!from_stdin) {
		in = fopen("/dev/tty", "r+");
		if (!in)
			return -ENOTTY;
		setvbuf(in, NULL, _IONBF, 0);	/* no copy of the password in a stdio buffer */
		if (tcgetattr(fileno(in), &old) == 0) {
			noecho = old;
			noecho.c_lflag &= ~(tcflag_t)ECHO;
			tty = tcsetattr(fileno(in), TCSAFLUSH, &noecho) == 0;
		}
		fprintf(stderr, "%s", prompt);
	}
	else
		setvbuf(stdin, NULL, _IONBF, 0);	/* before stdin's first use */
	if (!fgets(buf, (int)cap, in))
		ret = -EINVAL;
	if (tty) {
		tcsetattr(fileno(in), TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (in != stdin)
		fclose(in);
	if (ret)
		return ret;
	n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n + 1 >= cap) {
		explicit_bzero(buf, cap);
		return -EINVAL;		/* did not fit */
	}
	buf[n] = '\0';
	return 0;
}

/**
 * ctl_read_file() - a whole (text) file of at most 1 MiB (the agent's profile limit),
 * NUL-terminated
 * Return: 0 or -errno; -EFBIG past 1 MiB, -EISDIR for a directory, -EIO on a read error.
 */
int ctl_read_file(const char *path, char **out)
{
	const size_t max = MVM_PROFILE_MAX;
	FILE *f = fopen(path, "r");
	size_t len = 0, cap = 8192, n;
	char *buf, *nb;
	int ret = 0;

	if (!f)
		return -errno;
	buf = malloc(cap);
	while (buf) {
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (len > max) {
			ret = -EFBIG;
			break;
		}
		if (n == 0) {
			if (ferror(f))
				ret = errno == EISDIR ? -EISDIR : -EIO;
			break;
		}
		if (cap - len - 1 == 0) {
			/* room for one byte past the limit, to tell "exactly 1 MiB" from more */
			size_t ncap = cap * 2 > max + 2 ? max + 2 : cap * 2;

			nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap = ncap;
		}
	}
	fclose(f);
	if (!buf)
		return -ENOMEM;
	if (ret) {
		free(buf);
		return ret;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}
