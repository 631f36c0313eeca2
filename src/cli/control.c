/* SPDX-License-Identifier: MIT */
/*
 * control.c - client side of the control endpoint (see control.h), and input helpers.
 *
 * The connection is a Unix socket on POSIX and a named pipe on Windows; ctl_read(),
 * ctl_write(), ctl_interrupt() and ctl_close() hide the difference.  On Windows the pipe is
 * opened for overlapped I/O, so one thread may write (console input) while another waits in
 * a read, and a read can time out (CancelIoEx); a synchronous pipe handle would serialise
 * the two.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _WIN32
#include <winsock2.h>	/* before windows.h; runtime/compat.h brings it */
#include <windows.h>
#else
#include <libgen.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#endif

#include "cli/control.h"
#include "runtime/compat.h"
#include "sandbox/secret.h"

/**
 * ctl_default_path() - $MICROVM_CONTROL, else the platform's default endpoint
 *
 * Linux: $XDG_RUNTIME_DIR/microvm/control.sock, else /run/microvm/control.sock.  Windows:
 * \\.\pipe\microvm-USER-control (one appliance per user; control.h).
 * Return: 0 or -ENAMETOOLONG (Windows: or mvm_fs_getenv()'s -ENOMEM / -EINVAL).
 */
int ctl_default_path(char *out, size_t cap)
{
	int n;
#ifdef _WIN32
	char env[4096];
	wchar_t wuser[257];
	char user[257 * 3];
	DWORD ulen = 257;

	/* wide, as UTF-8 (libuv's uv_pipe_bind() and ctl_connect() take that): in the ANSI
	 * code page the users Пётр and Павел would both be "????" and share one name */
	n = mvm_fs_getenv("MICROVM_CONTROL", env, sizeof(env));
	if (n && n != -ENOENT)
		return n;	/* only -ENOENT means unset */
	if (!n)
		n = snprintf(out, cap, "%s", env);
	else
		n = snprintf(out, cap, "\\\\.\\pipe\\microvm-%s-control",
			     GetUserNameW(wuser, &ulen) &&
			     WideCharToMultiByte(CP_UTF8, 0, wuser, -1, user, sizeof(user),
						 NULL, NULL) ? user : "user");
#else
	const char *ctl = getenv("MICROVM_CONTROL"), *xdg = getenv("XDG_RUNTIME_DIR");

	if (ctl && *ctl)
		n = snprintf(out, cap, "%s", ctl);
	else if (xdg && *xdg)
		n = snprintf(out, cap, "%s/microvm/control.sock", xdg);
	else
		n = snprintf(out, cap, "/run/microvm/control.sock");
#endif
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/**
 * ctl_path() - the control endpoint: @opt if given (--control), else the default
 * Return: 0 or -ENAMETOOLONG (or ctl_default_path()'s -errno).
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
 * ctl_files_dir() - where `up` keeps up.log and socks.secret
 * @path:	the control endpoint
 *
 * POSIX: the socket's directory (0700).  Windows: %LOCALAPPDATA%\microvm, created (a pipe
 * has no directory; the profile's ACL keeps other users out), as UTF-8: open the files in
 * it with mvm_fs_open() / mvm_fs_fopen() (runtime/compat.h), which take UTF-8.
 * Return: 0 or -ENAMETOOLONG / -ENOENT (no %LOCALAPPDATA%) / -errno (cannot create it).
 */
int ctl_files_dir(const char *path, char *out, size_t cap)
{
#ifdef _WIN32
	(void)path;
	return mvm_fs_app_dir(NULL, out, cap);
#else
	char tmp[4096];
	int n;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	n = snprintf(out, cap, "%s", dirname(tmp));
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
#endif
}

#ifdef _WIN32
/**
 * ctl_user_sid() - the user SID of process @pid's token
 * Return: a LocalAlloc()ed copy (LocalFree it), or NULL.
 */
static PSID ctl_user_sid(DWORD pid)
{
	HANDLE proc, tok = NULL;
	union { TOKEN_USER tu; char buf[256]; } u;
	DWORD len = 0, slen;
	PSID sid = NULL;

	proc = pid == GetCurrentProcessId() ? GetCurrentProcess()
		: OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
	if (!proc)
		return NULL;
	if (OpenProcessToken(proc, TOKEN_QUERY, &tok) &&
	    GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len)) {
		slen = GetLengthSid(u.tu.User.Sid);
		sid = LocalAlloc(LMEM_FIXED, slen);
		if (sid && !CopySid(slen, sid, u.tu.User.Sid)) {
			LocalFree(sid);
			sid = NULL;
		}
	}
	if (tok)
		CloseHandle(tok);
	if (proc != GetCurrentProcess())
		CloseHandle(proc);
	return sid;
}

/**
 * ctl_same_user() - does process @pid (the other end of the pipe) run as our user?
 *
 * The pipe's name is machine-wide, so both ends check: the client that the server is not
 * another user's program squatting on the name (it would get the VPN password), the server
 * that the client may command the appliance (its DACL should already refuse others).
 * Return: 1 yes, 0 no (or unknown).
 */
int ctl_same_user(unsigned long pid)
{
	PSID me = ctl_user_sid(GetCurrentProcessId()), peer = ctl_user_sid((DWORD)pid);
	int same = me && peer && EqualSid(me, peer);

	if (me)
		LocalFree(me);
	if (peer)
		LocalFree(peer);
	return same;
}

/**
 * ctl_connect() - connect to the `up` process' named pipe
 * @path:	\\.\pipe\NAME
 * @out:	the pipe's handle (overlapped)
 *
 * Return: 0, -EPERM if the pipe's server runs as another user, or -errno.
 */
int ctl_connect(const char *path, ctl_conn *out)
{
	wchar_t wpath[512];
	ULONG pid = 0;
	HANDLE h;
	int tries;

	if (!MultiByteToWideChar(CP_UTF8, 0, path, -1, wpath, 512))
		return -ENAMETOOLONG;
	for (tries = 0;; tries++) {
		/* SECURITY_IDENTIFICATION: the server may learn who we are, not act as us */
		h = CreateFileW(wpath, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
				FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
				SECURITY_IDENTIFICATION, NULL);
		if (h != INVALID_HANDLE_VALUE)
			break;
		/* every instance busy: `up` creates the next one as it accepts */
		if (GetLastError() != ERROR_PIPE_BUSY || tries == 50)
			return -mvm_win_errno(GetLastError());
		WaitNamedPipeW(wpath, 100);
	}
	if (!GetNamedPipeServerProcessId(h, &pid) || !ctl_same_user(pid)) {
		CloseHandle(h);
		return -EPERM;
	}
	*out = h;
	return 0;
}

void ctl_close(ctl_conn c)
{
	CloseHandle(c);
}

/**
 * ctl_io() - one overlapped ReadFile or WriteFile, waited for
 * @timeout_ms:	-1 waits for ever
 *
 * Return: bytes moved, 0 at EOF (read), -ETIMEDOUT, -EINTR (ctl_interrupt()), -errno.
 */
static long ctl_io(HANDLE h, void *buf, size_t len, bool wr, int timeout_ms)
{
	OVERLAPPED ov = { 0 };
	DWORD n = 0, err = 0, cap = len > 1u << 30 ? 1u << 30 : (DWORD)len;
	bool timed_out = false;
	BOOL ok;

	ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!ov.hEvent)
		return -ENOMEM;
	ok = wr ? WriteFile(h, buf, cap, NULL, &ov) : ReadFile(h, buf, cap, NULL, &ov);
	if (!ok && GetLastError() == ERROR_IO_PENDING) {
		if (WaitForSingleObject(ov.hEvent, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms)
		    == WAIT_TIMEOUT) {
			CancelIoEx(h, &ov);
			timed_out = true;
		}
		ok = GetOverlappedResult(h, &ov, &n, TRUE);	/* done, or cancelled */
	} else if (ok) {
		ok = GetOverlappedResult(h, &ov, &n, TRUE);
	}
	if (!ok)
		err = GetLastError();
	CloseHandle(ov.hEvent);
	if (ok)
		return (long)n;
	if (timed_out && err == ERROR_OPERATION_ABORTED)
		return -ETIMEDOUT;
	if (!wr && (err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED))
		return 0;
	return -mvm_win_errno(err);
}

/**
 * ctl_read() - read what is there, up to @len bytes
 * @timeout_ms:	-1 waits for ever
 * Return: bytes read, 0 at EOF, -ETIMEDOUT, -errno.
 */
long ctl_read(ctl_conn c, void *buf, size_t len, int timeout_ms)
{
	return ctl_io(c, buf, len, false, timeout_ms);
}

/**
 * ctl_write() - write all of @buf
 * Return: 0 or -errno.
 */
int ctl_write(ctl_conn c, const void *buf, size_t len)
{
	size_t off = 0;
	long n;

	while (off < len) {
		n = ctl_io(c, (char *)buf + off, len - off, true, -1);
		if (n <= 0)
			return n < 0 ? (int)n : -EPIPE;
		off += (size_t)n;
	}
	return 0;
}

/**
 * ctl_interrupt() - make a read blocked in another thread return (and the connection end)
 */
void ctl_interrupt(ctl_conn c)
{
	CancelIoEx(c, NULL);
}

/**
 * ctl_protect_process() - the process is about to hold a password
 *
 * Linux: no core dump, no ptrace by other processes of the user.  Windows writes no core
 * dumps of its own and other users cannot open the process; nothing to do.
 */
void ctl_protect_process(void)
{
}
#else
/**
 * ctl_connect() - connect to the `up` process' Unix socket
 * @out:	the socket
 * Return: 0 or -errno.
 */
int ctl_connect(const char *path, ctl_conn *out)
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
	*out = fd;
	return 0;
}

void ctl_close(ctl_conn c)
{
	close(c);
}

/**
 * ctl_read() - read what is there, up to @len bytes
 * @timeout_ms:	-1 waits for ever
 * Return: bytes read, 0 at EOF, -ETIMEDOUT, -errno.
 */
long ctl_read(ctl_conn c, void *buf, size_t len, int timeout_ms)
{
	struct pollfd pf = { .fd = c, .events = POLLIN };
	ssize_t n;
	int r;

	for (;;) {
		if (timeout_ms >= 0) {
			r = poll(&pf, 1, timeout_ms);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				return -ETIMEDOUT;
		}
		n = read(c, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : (long)n;
	}
}

/**
 * ctl_write() - write all of @buf (no SIGPIPE)
 * Return: 0 or -errno.
 */
int ctl_write(ctl_conn c, const void *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = send(c, (const char *)buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

/**
 * ctl_interrupt() - make a read blocked in another thread return (and the connection end)
 */
void ctl_interrupt(ctl_conn c)
{
	shutdown(c, SHUT_RDWR);
}

/**
 * ctl_protect_process() - the process is about to hold a password: no core dump, no ptrace
 * by other processes of the user
 */
void ctl_protect_process(void)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
#endif

/**
 * ctl_send() - write one JSON line
 * Return: 0 or -errno.
 */
int ctl_send(ctl_conn c, const cJSON *msg)
{
	char *text = cJSON_PrintUnformatted(msg);
	size_t len;
	int ret;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	text[len] = '\n';	/* replaces the NUL; cJSON allocated len + 1 */
	ret = ctl_write(c, text, len + 1);
	explicit_bzero(text, len + 1);	/* may carry a password */
	cJSON_free(text);
	return ret;
}

/**
 * ctl_recv() - read one JSON line (byte by byte: the console stream may follow it)
 * @c:		connection
 * @msg:	the parsed object
 *
 * Return: 0, -EPIPE on EOF before a line, -EPROTO for a bad or too long line, -errno.
 */
int ctl_recv(ctl_conn c, cJSON **msg)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *nb;
	long n;
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
		n = ctl_read(c, buf + len, 1, -1);
		if (n < 0) {
			ret = (int)n;
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
	ctl_conn c;
	int ret;

	ctl_reached = false;
	ret = ctl_connect(path, &c);
	if (ret) {
		snprintf(ctl_err, sizeof(ctl_err), "not running (cannot reach %s: %s); start it "
			 "with 'microvm up'", path, ret == -EPERM ? "it belongs to another user"
							       : strerror(-ret));
		fprintf(stderr, "microvm: %s\n", ctl_err);
		secret_wipe_json(req, "password");
		cJSON_Delete(req);
		return NULL;
	}
	ctl_reached = true;
	ret = ctl_send(c, req);
	secret_wipe_json(req, "password");
	if (!ret)
		ret = ctl_recv(c, &resp);
	ctl_close(c);
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

#ifdef _WIN32
/**
 * ctl_ask_password() - prompt on the console and read a line without echo
 *
 * The console's input mode is switched off ENABLE_ECHO_INPUT for the one line (and back);
 * the line is read as UTF-16 (ReadConsoleW) and stored as UTF-8.
 * Return: 0, -ENOTTY without a console, -EINVAL if empty or too long.
 */
static int ctl_ask_password(const char *prompt, char *buf, size_t cap)
{
	HANDLE in = CreateFileW(L"CONIN$", GENERIC_READ | GENERIC_WRITE,
				FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
	wchar_t w[512];
	DWORD mode, n = 0;
	int ret = 0, len;

	if (in == INVALID_HANDLE_VALUE)
		return -ENOTTY;
	if (!GetConsoleMode(in, &mode)) {
		CloseHandle(in);
		return -ENOTTY;
	}
	fprintf(stderr, "%s", prompt);
	SetConsoleMode(in, (mode | ENABLE_LINE_INPUT | ENABLE_PROCESSED_INPUT) &
			   ~(DWORD)ENABLE_ECHO_INPUT);
	if (!ReadConsoleW(in, w, 511, &n, NULL))
		n = 0;
	SetConsoleMode(in, mode);
	CloseHandle(in);
	fprintf(stderr, "\n");
	w[n] = L'\0';
	w[wcscspn(w, L"\r\n")] = L'\0';
	len = WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, (int)cap, NULL, NULL);
	if (len <= 1 || n >= 511)
		ret = -EINVAL;
	SecureZeroMemory(w, sizeof(w));
	if (ret)
		explicit_bzero(buf, cap);
	return ret;
}
#else
/**
 * ctl_ask_password() - prompt on /dev/tty and read a line with echo off
 * Return: 0, -ENOTTY without a terminal, -EINVAL if empty or too long.
 */
static int ctl_ask_password(const char *prompt, char *buf, size_t cap)
{
	struct termios old, noecho;
	bool tty = false;
	size_t n;
	int ret = 0;
	FILE *in;

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
	if (!fgets(buf, (int)cap, in))
		ret = -EINVAL;
	if (tty) {
		tcsetattr(fileno(in), TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
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
#endif

/**
 * ctl_read_password() - a password from stdin (first line) or a no-echo prompt on the
 * terminal (Windows: the console)
 * @from_stdin:	--password-stdin was given
 * @prompt:	prompt text
 * @buf:	output
 * @cap:	its size
 *
 * Return: 0, -ENOTTY if there is no terminal to ask on, -EINVAL if empty/too long.
 */
int ctl_read_password(bool from_stdin, const char *prompt, char *buf, size_t cap)
{
	size_t n;

	if (!from_stdin)
		return ctl_ask_password(prompt, buf, cap);
	setvbuf(stdin, NULL, _IONBF, 0);	/* before stdin's first use */
	if (!fgets(buf, (int)cap, stdin))
		return -EINVAL;
	n = strcspn(buf, "\r\n");	/* CRLF from a Windows pipe too */
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
	FILE *f = mvm_fs_fopen(path, "r");	/* UTF-8 @path: the wide API on Windows */
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
