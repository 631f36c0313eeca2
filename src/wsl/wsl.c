/* SPDX-License-Identifier: MIT */
/**
 * DOC: Theory of operation - the WSL2 backend (Windows)
 *
 * On Windows the "guest" is a WSL2 distribution (a real Linux kernel in Hyper-V, managed by
 * wsl.exe), and "vsock" is TCP on 127.0.0.1: WSL2 forwards ports the distro listens on to
 * the Windows loopback.  The guest program is the same microvm-agent as in the other
 * backends, started with --transport tcp.
 *
 * create:	find wsl.exe (%SystemRoot%\System32\wsl.exe, or MICROVM_WSL_EXE) - a clear
 *		error if WSL is not installed - and make the TCP vsock client.
 * start:	`wsl.exe --list --quiet` (UTF-16LE output, parsed by wsl_list_has()); if the
 *		distro WSL_DISTRO is missing, `wsl.exe --import microvm <dir> <rootfs.tar.gz>
 *		--version 2` with <dir> = %LOCALAPPDATA%\microvm\wsl.  Then run
 *		`wsl.exe -d microvm -- /usr/bin/microvm-agent --transport tcp --listen 127.0.0.1
 *		--auth-secret-file /dev/stdin` as a child whose stdout+stderr (one pipe) a reader
 *		thread feeds to the console.  The agent listens on the distro's loopback only
 *		(WSL2 forwards it to the Windows loopback), never on the VPN's side.
 *		The first line on its stdin is the auth secret, drawn per start: every TCP
 *		connection must prove it (docs/protocol.md), and the vsock client is keyed with it.
 *		When that pipe ends the thread waits for the child and reports the exit: status
 *		100 (the agent's "shutdown") or 0 is a poweroff, anything else an error.
 * request_stop: {"cmd":"shutdown"} to the agent's control port 1025 over TCP.
 * kill:	`wsl.exe --terminate microvm`, then TerminateProcess() on the child.
 *
 * Command lines are built by wsl_cmdline() (CommandLineToArgvW quoting) and converted from
 * UTF-8 to UTF-16 for CreateProcessW, so paths with blanks or non-ASCII letters work.
 * MICROVM_WSL_CONTROL_PORT overrides the control port (tests run a fake wsl.exe with an
 * agent stand-in on a free port, see tests/windows/).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "microvm/contract.h"
#include "mvm_auth.h"
#include "runtime/backend.h"
#include "runtime/compat.h"
#include "runtime/error.h"
#include "wsl/wsl_cmd.h"

#define WSL_CMD_MAX	8192
#define WSL_LIST_MS	30000		/* wsl --list may start the WSL service */
#define WSL_IMPORT_MS	300000		/* unpacking a rootfs */
#define WSL_TERM_MS	15000
#define WSL_AGENT	"/usr/bin/microvm-agent"
#define WSL_CONTROL_PORT MVM_AGENT_PORT
#define WSL_EXIT_SHUTDOWN MVM_STATUS_POWEROFF	/* the agent's exit status after "shutdown" */

struct wsl {
	mvm_vm *vm;
	char exe[MAX_PATH * 3];		/* wsl.exe, UTF-8 */
	char *rootfs;			/* cfg->rootfs_path copy, or NULL */
	uint32_t control_port;
	mvm_vsock *vsock;
	char secret[MVM_SECRET_HEX_LEN + 2];	/* this start's auth secret and a newline */
	HANDLE proc;			/* the wsl.exe running the agent */
	HANDLE out;			/* read end of its stdout+stderr */
	HANDLE in;			/* write end of its stdin */
	pthread_t reader;
	int reader_started;
	volatile LONG killed;
};

/** wsl_find_exe() - wsl.exe's path into @out; Return: 0 or -ENOENT with @why filled. */
static int wsl_find_exe(char *out, size_t size, char *why, size_t why_len)
{
	const char *env = getenv("MICROVM_WSL_EXE");
	char sys[MAX_PATH];
	UINT n;

	if (env && *env) {
		snprintf(out, size, "%s", env);
	} else {
		n = GetSystemDirectoryA(sys, sizeof(sys));
		if (!n || n >= sizeof(sys)) {
			snprintf(why, why_len, "cannot find the Windows system directory");
			return -ENOENT;
		}
		snprintf(out, size, "%s\\wsl.exe", sys);
	}
	if (GetFileAttributesA(out) == INVALID_FILE_ATTRIBUTES) {
		snprintf(why, why_len, "%s not found: WSL is not installed "
			 "(run `wsl --install --no-distribution` as administrator)", out);
		return -ENOENT;
	}
	return 0;
}

/** wsl_usable() - &mvm_backend_ops.usable: is wsl.exe there? */
static int wsl_usable(char *why, size_t why_len)
{
	char exe[MAX_PATH * 3];

	return wsl_find_exe(exe, sizeof(exe), why, why_len) == 0;
}

/** wsl_widen() - UTF-8 to a malloc'd UTF-16 string, or NULL. */
static wchar_t *wsl_widen(const char *s)
{
	int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
	wchar_t *w;

	if (n <= 0)
		return NULL;
	w = malloc((size_t)n * sizeof(*w));
	if (w && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) <= 0) {
		free(w);
		w = NULL;
	}
	return w;
}

/**
 * wsl_spawn() - start @argv with stdout+stderr into a new pipe (and stdin from one)
 * @argv:	NULL-terminated, UTF-8
 * @proc:	the process handle
 * @out:	read end of the output pipe
 * @in:		write end of the input pipe, or NULL to give the child no input
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int wsl_spawn(const char *const *argv, HANDLE *proc, HANDLE *out, HANDLE *in)
{
	SECURITY_ATTRIBUTES sa = { .nLength = sizeof(sa), .bInheritHandle = TRUE };
	STARTUPINFOW si = { .cb = sizeof(si) };
	PROCESS_INFORMATION pi;
	HANDLE or = NULL, ow = NULL, ir = NULL, iw = NULL;
	wchar_t *wcmd = NULL;
	char *cmd;
	int rc;

	cmd = malloc(WSL_CMD_MAX);
	if (!cmd)
		return mvm_set_error(-ENOMEM, "WSL2: out of memory");
	rc = wsl_cmdline(cmd, WSL_CMD_MAX, argv);
	if (rc < 0) {
		rc = mvm_set_error(rc, "WSL2: command line for %s too long", argv[0]);
		goto out;
	}
	wcmd = wsl_widen(cmd);
	if (!wcmd) {
		rc = mvm_set_error(-EINVAL, "WSL2: command line is not valid UTF-8: %s", cmd);
		goto out;
	}
	/* the child inherits only its ends of the pipes */
	if (!CreatePipe(&or, &ow, &sa, 0) || !SetHandleInformation(or, HANDLE_FLAG_INHERIT, 0) ||
	    (in && (!CreatePipe(&ir, &iw, &sa, 0) ||
		    !SetHandleInformation(iw, HANDLE_FLAG_INHERIT, 0)))) {
		rc = mvm_set_error(-EIO, "WSL2: cannot create pipes (error %lu)", GetLastError());
		goto out;
	}
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdOutput = ow;
	si.hStdError = ow;
	si.hStdInput = ir;
	if (!CreateProcessW(NULL, wcmd, NULL, NULL, TRUE, CREATE_NO_WINDOW, NULL, NULL, &si,
			    &pi)) {
		rc = mvm_set_error(-ENOENT, "WSL2: cannot run %s (error %lu)", cmd,
				   GetLastError());
		goto out;
	}
	CloseHandle(pi.hThread);
	*proc = pi.hProcess;
	*out = or;
	or = NULL;
	if (in) {
		*in = iw;
		iw = NULL;
	}
	rc = 0;
out:
	/* our copies of the child's ends: closed so that EOF arrives when the child exits */
	if (ow)
		CloseHandle(ow);
	if (ir)
		CloseHandle(ir);
	if (or)
		CloseHandle(or);
	if (iw)
		CloseHandle(iw);
	free(wcmd);
	free(cmd);
	return rc;
}

/**
 * wsl_run() - run @argv to completion within @timeout_ms, collecting its output
 * @buf/@size:	output (raw bytes; may be UTF-16); *@len gets its length
 * @status:	exit status
 *
 * Return: 0 or -errno (-ETIMEDOUT: the process was terminated) with mvm_last_error() set.
 */
static int wsl_run(const char *const *argv, char *buf, size_t size, size_t *len,
		   DWORD *status, DWORD timeout_ms)
{
	HANDLE proc, out;
	DWORD waited = 0;
	int rc;

	*len = 0;
	rc = wsl_spawn(argv, &proc, &out, NULL);
	if (rc)
		return rc;
	/*
	 * Read while it runs (a full pipe would block the child) without blocking in ReadFile:
	 * a hung wsl.exe must not hang us past @timeout_ms.
	 */
	for (;;) {
		char tmp[512];
		DWORD avail = 0, n = 0;

		if (!PeekNamedPipe(out, NULL, 0, NULL, &avail, NULL))
			break;	/* broken pipe: every writer is gone */
		if (avail) {
			if (!ReadFile(out, tmp, avail < sizeof(tmp) ? avail : sizeof(tmp), &n, NULL))
				break;
			if (n > size - 1 - *len)
				n = (DWORD)(size - 1 - *len);
			memcpy(buf + *len, tmp, n);
			*len += n;
			continue;
		}
		if (waited >= timeout_ms)
			break;
		if (WaitForSingleObject(proc, 20) == WAIT_OBJECT_0) {
			/* exited: drain what is still in the pipe, then stop */
			if (PeekNamedPipe(out, NULL, 0, NULL, &avail, NULL) && avail)
				continue;
			break;
		}
		waited += 20;
	}
	buf[*len] = '\0';
	CloseHandle(out);
	if (WaitForSingleObject(proc, waited < timeout_ms ? timeout_ms - waited : 0) !=
	    WAIT_OBJECT_0) {
		TerminateProcess(proc, 1);
		CloseHandle(proc);
		return mvm_set_error(-ETIMEDOUT, "WSL2: %s %s did not finish in %lu s", argv[0],
				     argv[1], timeout_ms / 1000);
	}
	GetExitCodeProcess(proc, status);
	CloseHandle(proc);
	return 0;
}

/** wsl_import_dir() - %LOCALAPPDATA%\microvm\wsl (created); Return: 0 or -errno. */
static int wsl_import_dir(char *out, size_t size)
{
	const char *base = getenv("LOCALAPPDATA");
	char dir[MAX_PATH * 3];

	if (!base || !*base)
		return mvm_set_error(-ENOENT, "WSL2: LOCALAPPDATA is not set");
	snprintf(dir, sizeof(dir), "%s\\microvm", base);
	CreateDirectoryA(dir, NULL);
	snprintf(out, size, "%s\\microvm\\wsl", base);
	if (!CreateDirectoryA(out, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
		return mvm_set_error(-EIO, "WSL2: cannot create %s (error %lu)", out,
				     GetLastError());
	return 0;
}

/**
 * wsl_ensure_distro() - import WSL_DISTRO from the rootfs tarball unless already there
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int wsl_ensure_distro(struct wsl *w)
{
	const char *list[] = { w->exe, "--list", "--quiet", NULL };
	char out[8192], dir[MAX_PATH * 3];
	size_t len;
	DWORD status;
	int rc;

	rc = wsl_run(list, out, sizeof(out), &len, &status, WSL_LIST_MS);
	if (rc)
		return rc;
	/* exit status is non-zero when no distro is installed at all: the text decides */
	if (wsl_list_has(out, len, WSL_DISTRO))
		return 0;
	if (!w->rootfs)
		return mvm_set_error(-ENOENT, "WSL2: distro '%s' is not imported and no rootfs "
				     "(rootfs.tar.gz) was given", WSL_DISTRO);
	rc = wsl_import_dir(dir, sizeof(dir));
	if (rc)
		return rc;
	{
		const char *imp[] = { w->exe, "--import", WSL_DISTRO, dir, w->rootfs,
				      "--version", "2", NULL };

		rc = wsl_run(imp, out, sizeof(out), &len, &status, WSL_IMPORT_MS);
	}
	if (rc)
		return rc;
	if (status)
		return mvm_set_error(-EIO, "WSL2: `wsl --import %s` failed with status %lu",
				     WSL_DISTRO, status);
	return 0;
}

/** wsl_reader() - console pump: the agent's output to the console, then its exit. */
static void *wsl_reader(void *arg)
{
	struct wsl *w = arg;
	char buf[4096], detail[128] = "";
	enum mvm_exit_reason reason;
	DWORD n, status = 1;

	while (ReadFile(w->out, buf, sizeof(buf), &n, NULL) && n)
		mvm_vm_console_output(w->vm, buf, n);
	WaitForSingleObject(w->proc, INFINITE);
	GetExitCodeProcess(w->proc, &status);
	if (w->killed) {
		reason = MVM_EXIT_KILLED;
	} else if (status == 0 || status == WSL_EXIT_SHUTDOWN) {
		reason = MVM_EXIT_POWEROFF;
	} else {
		reason = MVM_EXIT_ERROR;
		snprintf(detail, sizeof(detail), "wsl.exe -d %s exited with status %lu",
			 WSL_DISTRO, status);
	}
	mvm_vm_exited(w->vm, reason, detail[0] ? detail : NULL);
	return NULL;
}

/**
 * wsl_make_secret() - draw the agent's auth secret and key the vsock client with it
 * @w:		the backend, vsock client made
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int wsl_make_secret(struct wsl *w)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[MVM_SECRET_HEX_LEN / 2];
	size_t i;
	int rc;

	if (mvm_auth_random(rnd, sizeof(rnd)))
		return mvm_set_error(-EIO, "WSL2: no random numbers for the agent's secret");
	for (i = 0; i < sizeof(rnd); i++) {
		w->secret[2 * i] = hex[rnd[i] >> 4];
		w->secret[2 * i + 1] = hex[rnd[i] & 15];
	}
	w->secret[MVM_SECRET_HEX_LEN] = '\0';
	mvm_auth_cleanse(rnd, sizeof(rnd));
	rc = mvm_vsock_set_secret(w->vsock, w->secret);
	w->secret[MVM_SECRET_HEX_LEN] = '\n';
	return rc;
}

/** wsl_create() - &mvm_backend_ops.create: find wsl.exe, make the TCP vsock client. */
static int wsl_create(mvm_vm *vm, const struct mvm_config *cfg, void **priv)
{
	const char *port = getenv("MICROVM_WSL_CONTROL_PORT");
	char why[512];
	struct wsl *w;
	int rc;

	w = calloc(1, sizeof(*w));
	if (!w)
		return mvm_set_error(-ENOMEM, "WSL2: out of memory");
	w->vm = vm;
	w->control_port = port && atoi(port) > 0 && atoi(port) < 65536 ? (uint32_t)atoi(port)
								      : WSL_CONTROL_PORT;
	rc = wsl_find_exe(w->exe, sizeof(w->exe), why, sizeof(why));
	if (rc) {
		mvm_set_error(rc, "WSL2: %s", why);
		goto err;
	}
	if (cfg->rootfs_path) {
		if (GetFileAttributesA(cfg->rootfs_path) == INVALID_FILE_ATTRIBUTES) {
			rc = mvm_set_error(-ENOENT, "WSL2: rootfs %s not found", cfg->rootfs_path);
			goto err;
		}
		w->rootfs = strdup(cfg->rootfs_path);
		if (!w->rootfs) {
			rc = mvm_set_error(-ENOMEM, "WSL2: out of memory");
			goto err;
		}
	}
	w->vsock = mvm_vsock_new_tcp("127.0.0.1");
	if (!w->vsock) {
		rc = -EIO;
		goto err;
	}
	rc = wsl_make_secret(w);
	if (rc)
		goto err;
	*priv = w;
	return 0;
err:
	mvm_vsock_free(w->vsock);
	free(w->rootfs);
	free(w);
	return rc;
}

/** wsl_start() - &mvm_backend_ops.start: import if needed, run the agent in the distro. */
static int wsl_start(void *priv)
{
	struct wsl *w = priv;
	const char *argv[] = { w->exe, "-d", WSL_DISTRO, "--", WSL_AGENT, "--transport", "tcp",
			       "--listen", "127.0.0.1", "--auth-secret-file", "/dev/stdin", NULL };
	DWORD n;
	int rc;

	rc = wsl_ensure_distro(w);
	if (rc)
		return rc;
	rc = wsl_spawn(argv, &w->proc, &w->out, &w->in);
	if (rc)
		return rc;
	/* The secret, first thing on the agent's stdin (never on a command line). */
	if (!WriteFile(w->in, w->secret, MVM_SECRET_HEX_LEN + 1, &n, NULL) ||
	    n != MVM_SECRET_HEX_LEN + 1) {
		TerminateProcess(w->proc, 1);
		return mvm_set_error(-EPIPE, "WSL2: cannot hand the agent its secret");
	}
	rc = pthread_create(&w->reader, NULL, wsl_reader, w);
	if (rc) {
		TerminateProcess(w->proc, 1);
		return mvm_set_error(-rc, "WSL2: cannot start the console thread");
	}
	w->reader_started = 1;
	return 0;
}

/** wsl_request_stop() - &mvm_backend_ops.request_stop: the agent's "shutdown" request. */
static int wsl_request_stop(void *priv)
{
	struct wsl *w = priv;
	static const char req[] = "{\"cmd\":\"shutdown\"}\n";
	char *resp = NULL;
	int rc;

	rc = mvm_vsock_request(w->vsock, w->control_port, req, sizeof(req) - 1, &resp, NULL,
			       5000);
	free(resp);
	return rc;
}

/** wsl_kill() - &mvm_backend_ops.kill: terminate the distro and the wsl.exe child. */
static int wsl_kill(void *priv)
{
	struct wsl *w = priv;
	const char *term[] = { w->exe, "--terminate", WSL_DISTRO, NULL };
	char out[1024];
	size_t len;
	DWORD status;

	InterlockedExchange(&w->killed, 1);
	wsl_run(term, out, sizeof(out), &len, &status, WSL_TERM_MS);
	if (w->proc)
		TerminateProcess(w->proc, 1);
	return 0;
}

/** wsl_console_write() - &mvm_backend_ops.console_write: into the agent's stdin. */
static long wsl_console_write(void *priv, const void *data, size_t len)
{
	struct wsl *w = priv;
	DWORD n;

	if (!w->in || !WriteFile(w->in, data, len > 65536 ? 65536 : (DWORD)len, &n, NULL))
		return -EPIPE;
	return (long)n;
}

static mvm_vsock *wsl_vsock(void *priv)
{
	return ((struct wsl *)priv)->vsock;
}

/** wsl_destroy() - &mvm_backend_ops.destroy: the guest has stopped; free everything. */
static void wsl_destroy(void *priv)
{
	struct wsl *w = priv;

	if (w->reader_started)
		pthread_join(w->reader, NULL);
	if (w->in)
		CloseHandle(w->in);
	if (w->out)
		CloseHandle(w->out);
	if (w->proc)
		CloseHandle(w->proc);
	mvm_vsock_free(w->vsock);
	SecureZeroMemory(w->secret, sizeof(w->secret));
	free(w->rootfs);
	free(w);
}

const struct mvm_backend_ops mvm_wsl_backend = {
	.name = "WSL2",
	.kind = MVM_BACKEND_WSL,
	.usable = wsl_usable,
	.create = wsl_create,
	.start = wsl_start,
	.request_stop = wsl_request_stop,
	.kill = wsl_kill,
	.console_write = wsl_console_write,
	.vsock = wsl_vsock,
	.destroy = wsl_destroy,
};
