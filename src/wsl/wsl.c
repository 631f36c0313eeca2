/* SPDX-License-Identifier: MIT */
/**
 * DOC: Theory of operation - the WSL2 backend (Windows)
 *
 * On Windows the "guest" is a WSL2 distribution (a real Linux kernel in Hyper-V, managed by
 * wsl.exe), and "vsock" is TCP on 127.0.0.1: WSL2 forwards ports the distro listens on to
 * the Windows loopback.  The guest program is the same microvm-agent as in the other
 * backends, started with --transport tcp.
 *
 * Everything the backend runs in the distro goes through `wsl.exe -d microvm --user root
 * --exec PROGRAM ARGS...`: without --exec wsl.exe would hand the command line to the
 * distribution's default shell (root's login shell in its /etc/passwd), and the appliance's
 * root file system has no shell at all.
 *
 * create:	find wsl.exe (%SystemRoot%\System32\wsl.exe, or MICROVM_WSL_EXE) - a clear
 *		error if WSL is not installed - and make the TCP vsock client.  The rootfs
 *		tarball is cfg->rootfs_path, else rootfs.tar.gz next to the running program
 *		(so a Windows package is one directory), else none (an imported distro is used
 *		as it is).
 * One appliance per Windows user: the distribution, %LOCALAPPDATA%\microvm and the ports
 * 1025/7602 on the Windows loopback exist once per user, so a second VM (another app
 * embedding the library, or `microvm.exe up` beside an app) would terminate, re-import or
 * out-bind the first.  start therefore takes the user's appliance lock first, before any
 * wsl.exe command, and holds it until the agent has exited (or start failed, or the VM is
 * freed): %LOCALAPPDATA%\microvm\appliance.lock opened without write sharing
 * (wsl_lock_take()).  Windows refuses a second such open until the handle is closed, and
 * closes it when the process dies, however it dies; the handle is not inherited by wsl.exe.
 * A second start fails with -EBUSY and a message naming the holder (the lock file holds
 * "PID PROGRAM" while held, nothing once let go) and the next step; it runs no wsl.exe
 * command at all.  A record found when the lock is taken means its holder died holding it:
 * its agent may still run in the distribution, so start terminates the distribution first.
 * So does a wsl.exe that ended with an error under a running VM: the reader lets go but
 * keeps the record; only a poweroff, or a kill that ran --terminate, empties it.
 * mvm_wsl_uninstall() holds the lock too, so it refuses while a VM runs.
 * %LOCALAPPDATA% is read as UTF-16 (GetEnvironmentVariableW) and every path under it is
 * kept in UTF-8 and opened with the wide API (mvm_fs_app_dir(), mvm_fs_fopen()... in
 * runtime/compat.h, shared with microvm.exe), so user folders outside the ANSI code page work.
 *
 * start:	wsl_ensure_distro(): `wsl.exe --list --quiet` (UTF-16LE output, parsed by
 *		wsl_list_has()).  The image version is the SHA-256 of the tarball, recorded in
 *		%LOCALAPPDATA%\microvm\wsl\image.sha256 next to the distribution's disk.  Not
 *		imported: `wsl.exe --import microvm %LOCALAPPDATA%\microvm\wsl <rootfs.tar.gz>
 *		--version 2`.  Imported from another image: `wsl.exe --unregister microvm`, then
 *		import.  The user's profiles survive this because the agent keeps its state
 *		outside the distribution, in %LOCALAPPDATA%\microvm\state (--state-dir, the
 *		/mnt/c/... path WSL mounts it at).  wsl.exe's failures are recognised by
 *		wsl_classify() (WSL absent, virtual machine platform disabled, WSL 1 only) and
 *		reported with what to do.
 *		Then run the agent (`--transport tcp --listen 127.0.0.1 --auth-secret-file
 *		/dev/stdin --state-dir ...`) as a child whose stdout+stderr (one pipe) a reader
 *		thread feeds to the console (and keeps the last bytes of, for error messages).
 *		The agent listens on the distro's loopback only (WSL2 forwards it to the
 *		Windows loopback), never on the VPN's side.  The first line on its stdin is the
 *		auth secret, drawn per start: every TCP connection must prove it
 *		(docs/protocol.md), and the vsock client is keyed with it.
 *		start returns only once the agent answers an authenticated {"cmd":"ping"} on
 *		port 1025 (within MICROVM_WSL_START_TIMEOUT seconds, default 60: the first start
 *		boots WSL's virtual machine); if the child exits first or time runs out, start
 *		kills it and fails with the reason and the agent's last output.
 *		When the output pipe ends the reader thread waits for the child and reports the
 *		exit: status 100 (the agent's "shutdown") or 0 is a poweroff, anything else an
 *		error.
 * request_stop: {"cmd":"shutdown"} to the agent's control port 1025 over TCP.
 * kill:	`wsl.exe --terminate microvm` if we still hold the lock (checked and run under
 *		kill_lock, which the reader's release takes too: never another program's
 *		appliance), then TerminateProcess() on the child.
 * mvm_wsl_uninstall(): `wsl.exe --unregister microvm` and the version record; the
 *		state directory (profiles) stays.  Returns 1 if it removed the distribution,
 *		0 if none was registered (`microvm uninstall` says which).
 *		mvm_wsl_uninstall_ex(MVM_WSL_PURGE) also deletes %LOCALAPPDATA%\microvm, still
 *		holding the lock (wsl_purge()): a start in between would lose its state.
 *
 * Command lines are built by wsl_cmdline() (CommandLineToArgvW quoting) and converted from
 * UTF-8 to UTF-16 for CreateProcessW, so paths with blanks or non-ASCII letters work.
 */
#include <errno.h>
#include <pthread.h>
#include <wchar.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "microvm/contract.h"
#include "mvm_auth.h"
#include "runtime/backend.h"
#include "runtime/compat.h"
#include "runtime/error.h"
#include "wsl/wsl_cmd.h"

#include <bcrypt.h>

#define WSL_CMD_MAX	8192
#define WSL_LIST_MS	30000		/* wsl --list may start the WSL service */
#define WSL_IMPORT_MS	300000		/* unpacking a rootfs */
#define WSL_TERM_MS	15000
#define WSL_READY_S	60		/* the first start boots WSL's virtual machine */
#define WSL_PING_MS	1000
#define WSL_AGENT	"/usr/bin/microvm-agent"
#define WSL_CONTROL_PORT MVM_AGENT_PORT
#define WSL_TAIL	1024		/* the agent's last output kept for error messages */
#define WSL_EXIT_SHUTDOWN MVM_STATUS_POWEROFF	/* the agent's exit status after "shutdown" */
#define WSL_LOCK_FILE	"appliance.lock"	/* in %LOCALAPPDATA%\microvm: one appliance per user */
#define WSL_LOCK_REC	256		/* its record: "PID PROGRAM\n" */

struct wsl {
	mvm_vm *vm;
	char exe[MAX_PATH * 3];		/* wsl.exe, UTF-8 */
	char *rootfs;			/* the image tarball, or NULL */
	char state_dir[MAX_PATH * 3];	/* the agent's --state-dir (a /mnt/... path) */
	uint32_t control_port;
	mvm_vsock *vsock;
	char secret[MVM_SECRET_HEX_LEN + 2];	/* this start's auth secret and a newline */
	HANDLE proc;			/* the wsl.exe running the agent */
	HANDLE out;			/* read end of its stdout+stderr */
	HANDLE in;			/* write end of its stdin */
	HANDLE volatile lock;		/* the user's appliance lock, from start until the exit */
	pthread_t reader;
	int reader_started;
	volatile LONG killed;
	CRITICAL_SECTION kill_lock;	/* kill's lock check + --terminate vs the reader's release */
	int terminated;			/* kill ran --terminate, holding the lock (kill_lock) */
	volatile LONG quiet_exit;	/* start failed: the reader reports no exit */
	CRITICAL_SECTION tail_lock;
	char tail[WSL_TAIL];		/* ring of the agent's last output */
	size_t tail_pos, tail_len;
};

/**
 * wsl_find_exe() - wsl.exe's path into @out: $MICROVM_WSL_EXE, else the system's
 *
 * Only an unset (or empty) MICROVM_WSL_EXE falls back to the system's wsl.exe: one that is
 * set but cannot be read (too long, not valid UTF-16, no memory) is an error, not a silent
 * switch to another program.
 * Return: 0, or -ENOENT / mvm_fs_getenv()'s -errno with @why filled.
 */
static int wsl_find_exe(char *out, size_t size, char *why, size_t why_len)
{
	wchar_t sys[MAX_PATH], *wout;
	DWORD attr;
	UINT n;
	int rc;

	/* wide: a wsl.exe under a folder outside the ANSI code page (a test double's) */
	rc = mvm_fs_getenv("MICROVM_WSL_EXE", out, size);
	if (rc && rc != -ENOENT) {
		snprintf(why, why_len, "MICROVM_WSL_EXE: %s", strerror(-rc));
		return rc;
	}
	if (rc) {
		n = GetSystemDirectoryW(sys, MAX_PATH);
		if (!n || n >= MAX_PATH ||
		    !WideCharToMultiByte(CP_UTF8, 0, sys, -1, out, (int)size - 16, NULL, NULL)) {
			snprintf(why, why_len, "cannot find the Windows system directory");
			return -ENOENT;
		}
		strcat(out, "\\wsl.exe");
	}
	wout = mvm_fs_widen(out);
	attr = wout ? GetFileAttributesW(wout) : INVALID_FILE_ATTRIBUTES;
	free(wout);
	if (attr == INVALID_FILE_ATTRIBUTES) {
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
	wcmd = mvm_fs_widen(cmd);
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

/**
 * wsl_app_dir() - %LOCALAPPDATA%\microvm\@sub (both created), as UTF-8: mvm_fs_app_dir()
 * @sub:	"wsl" (the distribution's disk and version record), "state" (the agent's), or
 *		NULL for %LOCALAPPDATA%\microvm itself (the appliance lock)
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int wsl_app_dir(char *out, size_t size, const char *sub)
{
	int rc;

	out[0] = '\0';		/* stays empty if LOCALAPPDATA is not set */
	rc = mvm_fs_app_dir(sub, out, size);
	if (rc == -ENOENT && !out[0])
		return mvm_set_error(rc, "WSL2: LOCALAPPDATA is not set");
	if (rc == -ENAMETOOLONG)
		return mvm_set_error(rc, "WSL2: the path of %%LOCALAPPDATA%%\\microvm is too long");
	if (rc)
		return mvm_set_error(rc, "WSL2: cannot create %s (%s)", out, strerror(-rc));
	return 0;
}

/**
 * wsl_lock_open() - CreateFileW() of the appliance lock file
 * @path:	its UTF-8 path
 * @access/@share/@how: CreateFileW()'s access, share mode and creation disposition
 *
 * Return: the handle, or INVALID_HANDLE_VALUE with GetLastError() set.
 */
static HANDLE wsl_lock_open(const char *path, DWORD access, DWORD share, DWORD how)
{
	wchar_t *wpath = mvm_fs_widen(path);
	HANDLE h = INVALID_HANDLE_VALUE;

	/* not inheritable: the wsl.exe children must not keep the lock after we are gone */
	if (wpath)
		h = CreateFileW(wpath, access, share, NULL, how, FILE_ATTRIBUTE_NORMAL, NULL);
	else
		SetLastError(ERROR_INVALID_NAME);
	free(wpath);
	return h;
}

/**
 * wsl_lock_holder() - who holds the lock, from its record, as "microvm.exe (process 1234)"
 * @path:	the lock file
 * @out/@size:	the text; "another program" when the record is unreadable or not yet written
 */
static void wsl_lock_holder(const char *path, char *out, size_t size)
{
	char rec[WSL_LOCK_REC + 1] = "", *p, *name;
	unsigned long pid;
	HANDLE h;
	DWORD n = 0;

	snprintf(out, size, "another program");
	/* sharing all the holder has: it has write and delete access */
	h = wsl_lock_open(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE |
			  FILE_SHARE_DELETE, OPEN_EXISTING);
	if (h == INVALID_HANDLE_VALUE)
		return;
	if (ReadFile(h, rec, WSL_LOCK_REC, &n, NULL))
		rec[n] = '\0';
	CloseHandle(h);
	/* "PID PROGRAM\n", written by wsl_lock_take() of another process: only printable */
	pid = strtoul(rec, &name, 10);
	if (name == rec || *name != ' ')
		return;
	name++;
	name[strcspn(name, "\r\n")] = '\0';
	for (p = name; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
	if (*name)
		snprintf(out, size, "%s (process %lu)", name, pid);
}

/**
 * wsl_lock_take() - take this Windows user's appliance lock
 * @what:	what the caller is about to do, for the refusal ("start", "uninstall")
 * @stale:	set to 1 when the last holder died holding it (its record is still there: its
 *		agent may still run in the distribution), else 0; may be NULL
 *
 * The lock is %LOCALAPPDATA%\microvm\appliance.lock opened without write sharing: Windows
 * refuses a second such open until the handle is closed, and closes it when the process
 * dies however it dies.  The holder writes "PID PROGRAM" into it for a refused user to read,
 * and empties it when it lets go.
 *
 * Return: the lock's handle, or NULL with mvm_last_error() set and *@rc = -EBUSY (held: the
 * message names the holder and what to do) or another -errno.
 */
static HANDLE wsl_lock_take(const char *what, int *stale, int *rc)
{
	char dir[MAX_PATH * 3], path[MAX_PATH * 3 + 32], rec[WSL_LOCK_REC + 1] = "";
	char holder[WSL_LOCK_REC + 32];
	wchar_t self[MAX_PATH], *base;
	DWORD n = 0;
	HANDLE h;
	int len;

	if (stale)
		*stale = 0;
	*rc = wsl_app_dir(dir, sizeof(dir), NULL);
	if (*rc)
		return NULL;
	snprintf(path, sizeof(path), "%s\\" WSL_LOCK_FILE, dir);
	/* DELETE: a purge removes the file through this handle (wsl_purge()) */
	h = wsl_lock_open(path, GENERIC_READ | GENERIC_WRITE | DELETE, FILE_SHARE_READ,
			  OPEN_ALWAYS);
	if (h == INVALID_HANDLE_VALUE && GetLastError() == ERROR_SHARING_VIOLATION) {
		wsl_lock_holder(path, holder, sizeof(holder));
		*rc = mvm_set_error(-EBUSY, "WSL2: cannot %s: the appliance of this Windows user "
				    "is in use by %s (one appliance per user: its WSL "
				    "distribution, ports and state are shared); stop it first "
				    "(microvm.exe down, or stop the app that runs it)", what,
				    holder);
		return NULL;
	}
	if (h == INVALID_HANDLE_VALUE) {
		*rc = mvm_set_error(-EIO, "WSL2: cannot open %s (error %lu)", path,
				    GetLastError());
		return NULL;
	}
	if (ReadFile(h, rec, WSL_LOCK_REC, &n, NULL) && n && stale)
		*stale = 1;
	/* our record: this process and its program's name */
	base = NULL;
	if (GetModuleFileNameW(NULL, self, MAX_PATH))
		base = wcsrchr(self, L'\\');
	len = snprintf(rec, sizeof(rec), "%lu ", GetCurrentProcessId());
	if (!base || !WideCharToMultiByte(CP_UTF8, 0, base + 1, -1, rec + len,
					  (int)sizeof(rec) - len - 1, NULL, NULL))
		snprintf(rec + len, sizeof(rec) - (size_t)len, "a program");
	len = (int)strlen(rec);
	rec[len++] = '\n';
	/* should this fail, the lock holds all the same: only a refused user's hint is missing */
	if (SetFilePointer(h, 0, NULL, FILE_BEGIN) != INVALID_SET_FILE_POINTER && SetEndOfFile(h))
		WriteFile(h, rec, (DWORD)len, &n, NULL);
	*rc = 0;
	return h;
}

/**
 * wsl_lock_release() - let go of the appliance lock: empty the record, close the handle
 * @lock:	the handle (swapped out for NULL, so two threads release it once), or NULL
 * @keep:	keep the record: our agent may still run in the distribution (wsl.exe failed
 *		and nobody ran --terminate), so the next holder must terminate it first
 */
static void wsl_lock_release(HANDLE volatile *lock, int keep)
{
	HANDLE h = InterlockedExchangePointer((PVOID volatile *)lock, NULL);

	if (!h)
		return;
	/* an empty record says "let go in order": the next holder need not clean up after us */
	if (!keep && SetFilePointer(h, 0, NULL, FILE_BEGIN) != INVALID_SET_FILE_POINTER)
		SetEndOfFile(h);
	CloseHandle(h);
}

/**
 * wsl_fail() - set the error for a wsl.exe command that failed
 * @what:	"`wsl --import microvm`"...
 * @status:	its exit status
 * @out/@len:	what it printed (raw)
 *
 * WSL absent, disabled or WSL 1 only get their own message and advice.
 *
 * Return: -ENODEV for those three, -EIO otherwise.
 */
static int wsl_fail(const char *what, DWORD status, const char *out, size_t len)
{
	char text[1024], *nl;
	enum wsl_fault fault;

	wsl_text(out, len, text, sizeof(text));
	fault = wsl_classify(text);
	for (nl = text; (nl = strchr(nl, '\n'));)
		*nl = ' ';
	if (fault)
		return mvm_set_error(-ENODEV, "WSL2: %s (%s failed: %s)", wsl_fault_advice(fault),
				     what, text);
	return mvm_set_error(-EIO, "WSL2: %s failed with status %lu%s%s", what, status,
			     text[0] ? ": " : "", text);
}

/**
 * wsl_image_version() - the SHA-256 of the image tarball in hex (CNG), into @hex[65]
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int wsl_image_version(const char *path, char hex[65])
{
	BCRYPT_ALG_HANDLE alg = NULL;
	BCRYPT_HASH_HANDLE h = NULL;
	unsigned char digest[32], *buf;
	wchar_t *wpath = mvm_fs_widen(path);
	HANDLE f = INVALID_HANDLE_VALUE;
	DWORD n;
	int rc = -EIO, i;

	buf = malloc(65536);
	if (wpath)
		f = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
	if (!buf || f == INVALID_HANDLE_VALUE) {
		rc = mvm_set_error(buf ? -ENOENT : -ENOMEM, "WSL2: cannot read %s", path);
		goto out;
	}
	if (BCryptOpenAlgorithmProvider(&alg, BCRYPT_SHA256_ALGORITHM, NULL, 0) ||
	    BCryptCreateHash(alg, &h, NULL, 0, NULL, 0, 0))
		goto fail;
	while (ReadFile(f, buf, 65536, &n, NULL) && n)
		if (BCryptHashData(h, buf, n, 0))
			goto fail;
	if (BCryptFinishHash(h, digest, sizeof(digest), 0))
		goto fail;
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	rc = 0;
	goto out;
fail:
	rc = mvm_set_error(-EIO, "WSL2: cannot hash %s", path);
out:
	if (h)
		BCryptDestroyHash(h);
	if (alg)
		BCryptCloseAlgorithmProvider(alg, 0);
	if (f != INVALID_HANDLE_VALUE)
		CloseHandle(f);
	free(wpath);
	free(buf);
	return rc;
}

/** wsl_record_path() - the image version record, %LOCALAPPDATA%\microvm\wsl\image.sha256 */
static void wsl_record_path(char *out, size_t size, const char *dir)
{
	snprintf(out, size, "%s\\image.sha256", dir);
}

/** wsl_record_matches() - does the record in @dir say @hex?  Return: 1 or 0. */
static int wsl_record_matches(const char *dir, const char *hex)
{
	char path[MAX_PATH * 3 + 16], got[80] = "";
	FILE *f;

	wsl_record_path(path, sizeof(path), dir);
	f = mvm_fs_fopen(path, "rb");
	if (!f)
		return 0;
	if (!fgets(got, sizeof(got), f))
		got[0] = '\0';
	fclose(f);
	got[strcspn(got, "\r\n")] = '\0';
	return strcmp(got, hex) == 0;
}

/**
 * wsl_unregister() - `wsl.exe --unregister microvm` and remove the version record in @dir
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int wsl_unregister(const char *exe, const char *dir)
{
	const char *unreg[] = { exe, "--unregister", WSL_DISTRO, NULL };
	char out[4096], path[MAX_PATH * 3 + 16];
	size_t len;
	DWORD status;
	int rc;

	rc = wsl_run(unreg, out, sizeof(out), &len, &status, WSL_IMPORT_MS);
	if (rc)
		return rc;
	if (status)
		return wsl_fail("`wsl --unregister " WSL_DISTRO "`", status, out, len);
	wsl_record_path(path, sizeof(path), dir);
	mvm_fs_unlink(path);
	return 0;
}

/**
 * wsl_listed() - is WSL_DISTRO registered?  (`wsl.exe --list --quiet`)
 * Return: 1, 0, or -errno with mvm_last_error() set (WSL absent...).
 */
static int wsl_listed(const char *exe)
{
	const char *list[] = { exe, "--list", "--quiet", NULL };
	char out[8192], text[1024];
	size_t len;
	DWORD status;
	int rc;

	rc = wsl_run(list, out, sizeof(out), &len, &status, WSL_LIST_MS);
	if (rc)
		return rc;
	/* exit status is non-zero when no distro is installed at all: the text decides */
	if (wsl_list_has(out, len, WSL_DISTRO))
		return 1;
	wsl_text(out, len, text, sizeof(text));
	if (wsl_classify(text))
		return wsl_fail("`wsl --list`", status, out, len);
	return 0;
}

/**
 * wsl_ensure_distro() - WSL_DISTRO imported from the current image
 *
 * Imports it if missing; replaces it (unregister + import) if it came from another image;
 * with no image at hand an imported distro is used as it is.
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int wsl_ensure_distro(struct wsl *w)
{
	char out[8192], dir[MAX_PATH * 3], hex[65], path[MAX_PATH * 3 + 16];
	size_t len;
	DWORD status;
	FILE *f;
	int rc, listed;

	listed = wsl_listed(w->exe);
	if (listed < 0)
		return listed;
	if (listed && !w->rootfs)
		return 0;
	if (!w->rootfs)
		return mvm_set_error(-ENOENT, "WSL2: distro '%s' is not imported and no rootfs "
				     "(rootfs.tar.gz) was given or found next to the program",
				     WSL_DISTRO);
	rc = wsl_app_dir(dir, sizeof(dir), "wsl");
	if (!rc)
		rc = wsl_image_version(w->rootfs, hex);
	if (rc)
		return rc;
	if (listed && wsl_record_matches(dir, hex))
		return 0;
	if (listed) {
		/* another image: replace it; the profiles live in the state directory */
		rc = wsl_unregister(w->exe, dir);
		if (rc)
			return rc;
	}
	{
		const char *imp[] = { w->exe, "--import", WSL_DISTRO, dir, w->rootfs,
				      "--version", "2", NULL };

		rc = wsl_run(imp, out, sizeof(out), &len, &status, WSL_IMPORT_MS);
	}
	if (rc)
		return rc;
	if (status)
		return wsl_fail("`wsl --import " WSL_DISTRO "`", status, out, len);
	wsl_record_path(path, sizeof(path), dir);
	f = mvm_fs_fopen(path, "wb");
	if (!f || fprintf(f, "%s\n", hex) < 0 || fclose(f)) {
		if (f)
			fclose(f);
		return mvm_set_error(-EIO, "WSL2: cannot write %s", path);
	}
	return 0;
}

/**
 * wsl_path_fail() - set "WSL2: cannot @what PATH (error N)" for UTF-16 @path, in UTF-8
 * Return: -EIO.
 */
static int wsl_path_fail(const char *what, const wchar_t *path, DWORD err)
{
	char u[MAX_PATH * 6];

	if (!WideCharToMultiByte(CP_UTF8, 0, path, -1, u, sizeof(u), NULL, NULL))
		snprintf(u, sizeof(u), "a file");
	return mvm_set_error(-EIO, "WSL2: cannot %s %s (error %lu)", what, u, err);
}

/**
 * wsl_remove_tree() - delete directory @dir and everything in it, but @skip (a name in @dir)
 * @dir:	the directory (UTF-16; it may contain letters outside the ANSI code page)
 * @skip:	a file left in place (its folder too), or NULL
 *
 * A link (junction) is removed, never followed.
 * Return: 0 (also when @dir did not exist) or -EIO with mvm_last_error() naming what stayed.
 */
static int wsl_remove_tree(const wchar_t *dir, const wchar_t *skip)
{
	wchar_t pat[MAX_PATH * 2], path[MAX_PATH * 2];
	WIN32_FIND_DATAW fd;
	HANDLE h;
	int ret = 0;

	if (_snwprintf(pat, MAX_PATH * 2, L"%ls\\*", dir) >= MAX_PATH * 2 - 1)
		return wsl_path_fail("delete (path too long)", dir, 0);
	h = FindFirstFileW(pat, &fd);
	if (h == INVALID_HANDLE_VALUE)
		return GetLastError() == ERROR_FILE_NOT_FOUND ||
		       GetLastError() == ERROR_PATH_NOT_FOUND ? 0 :
		       wsl_path_fail("list", dir, GetLastError());
	do {
		DWORD attr = fd.dwFileAttributes;
		BOOL ok;

		if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L"..") ||
		    (skip && !_wcsicmp(fd.cFileName, skip)))
			continue;
		if (_snwprintf(path, MAX_PATH * 2, L"%ls\\%ls", dir, fd.cFileName) >=
		    MAX_PATH * 2 - 1) {
			ret = wsl_path_fail("delete in (path too long)", dir, 0);
			continue;
		}
		if ((attr & FILE_ATTRIBUTE_DIRECTORY) && !(attr & FILE_ATTRIBUTE_REPARSE_POINT)) {
			if (wsl_remove_tree(path, NULL))
				ret = -EIO;
			continue;
		}
		if (attr & FILE_ATTRIBUTE_READONLY)
			SetFileAttributesW(path, attr & ~FILE_ATTRIBUTE_READONLY);
		ok = (attr & FILE_ATTRIBUTE_DIRECTORY) ? RemoveDirectoryW(path) : DeleteFileW(path);
		if (!ok)
			ret = wsl_path_fail("delete", path, GetLastError());
	} while (FindNextFileW(h, &fd));
	FindClose(h);
	if (!ret && !skip && !RemoveDirectoryW(dir))
		ret = wsl_path_fail("delete", dir, GetLastError());
	return ret;
}

/**
 * wsl_purge() - delete %LOCALAPPDATA%\microvm (@dir) as a whole, appliance lock @lock held
 *
 * Everything but the lock file goes while the lock is held, so no VM can start in between
 * and have its state deleted under it; then the lock file is deleted through its own handle
 * (delete on close) and the folder last.  A start that comes in after that gap finds no lock
 * and makes a new, empty folder: nothing of it is lost.
 *
 * Return: 0 or -EIO with mvm_last_error() set; the lock is let go either way.
 */
static int wsl_purge(const char *dir, HANDLE volatile *lock)
{
	FILE_DISPOSITION_INFO del = { .DeleteFile = TRUE };
	wchar_t *wdir = mvm_fs_widen(dir);
	HANDLE h;
	int rc;

	if (!wdir) {
		wsl_lock_release(lock, 0);
		return mvm_set_error(-EIO, "WSL2: cannot delete %s: bad path", dir);
	}
	rc = wsl_remove_tree(wdir, L"" WSL_LOCK_FILE);
	h = *lock;
	if (!rc && !SetFileInformationByHandle(h, FileDispositionInfo, &del, sizeof(del)))
		rc = mvm_set_error(-EIO, "WSL2: cannot delete %s\\" WSL_LOCK_FILE " (error %lu)",
				   dir, GetLastError());
	/* deleted on close; if it stays (a failure above), empty: we let go in order */
	wsl_lock_release(lock, 0);
	/* not empty: a start came in right after the lock went; it has its own folder now */
	if (!rc && !RemoveDirectoryW(wdir) && GetLastError() != ERROR_DIR_NOT_EMPTY)
		rc = mvm_set_error(-EIO, "WSL2: cannot delete %s (error %lu)", dir,
				   GetLastError());
	free(wdir);
	return rc;
}

/**
 * mvm_wsl_uninstall_ex() - unregister the appliance's WSL distribution, MVM_WSL_PURGE: and
 * delete %LOCALAPPDATA%\microvm
 *
 * `wsl.exe --unregister microvm` (its disk goes with it) and the image version record.
 * The agent's state (the user's profiles) in %LOCALAPPDATA%\microvm\state stays unless
 * @flags has MVM_WSL_PURGE (wsl_purge(), under the lock).
 *
 * Refused (-EBUSY, nothing removed) while a VM of this Windows user runs: it holds the
 * appliance lock, which the removal holds too.
 *
 * Return: 1 when it was registered and is gone, 0 when it was not registered (nothing to
 * do), or -errno with mvm_last_error() set.
 */
int mvm_wsl_uninstall_ex(unsigned int flags)
{
	char exe[MAX_PATH * 3], why[512], dir[MAX_PATH * 3], top[MAX_PATH * 3];
	HANDLE volatile lock;
	int rc, prc;

	rc = wsl_find_exe(exe, sizeof(exe), why, sizeof(why));
	if (rc)
		return mvm_set_error(rc, "WSL2: %s", why);
	rc = wsl_app_dir(dir, sizeof(dir), "wsl");
	if (!rc)
		rc = wsl_app_dir(top, sizeof(top), NULL);
	if (rc)
		return rc;
	/* held for the whole removal: neither unregister a running appliance nor start one */
	lock = wsl_lock_take("uninstall", NULL, &rc);
	if (!lock)
		return rc;
	rc = wsl_listed(exe);
	if (rc == 0) {
		char path[MAX_PATH * 3 + 16];

		wsl_record_path(path, sizeof(path), dir);
		mvm_fs_unlink(path);
	} else if (rc > 0) {
		rc = wsl_unregister(exe, dir);
		if (!rc)
			rc = 1;
	}
	if (rc >= 0 && (flags & MVM_WSL_PURGE)) {
		prc = wsl_purge(top, &lock);
		if (prc)
			rc = prc;
	}
	wsl_lock_release(&lock, 0);
	return rc;
}

/** mvm_wsl_uninstall() - mvm_wsl_uninstall_ex(0): the profiles stay. */
int mvm_wsl_uninstall(void)
{
	return mvm_wsl_uninstall_ex(0);
}

/** wsl_reader() - console pump: the agent's output to the console, then its exit. */
static void *wsl_reader(void *arg)
{
	struct wsl *w = arg;
	char buf[4096], detail[128] = "";
	enum mvm_exit_reason reason;
	DWORD n, status = 1;
	int clean;

	while (ReadFile(w->out, buf, sizeof(buf), &n, NULL) && n) {
		DWORD i;

		mvm_vm_console_output(w->vm, buf, n);
		EnterCriticalSection(&w->tail_lock);
		for (i = 0; i < n; i++) {
			w->tail[w->tail_pos] = buf[i];
			w->tail_pos = (w->tail_pos + 1) % WSL_TAIL;
		}
		w->tail_len = w->tail_len + n > WSL_TAIL ? WSL_TAIL : w->tail_len + n;
		LeaveCriticalSection(&w->tail_lock);
	}
	WaitForSingleObject(w->proc, INFINITE);
	GetExitCodeProcess(w->proc, &status);
	if (w->quiet_exit)
		return NULL;
	/*
	 * Let go before the exit is seen: whoever waits for it may start the next appliance.
	 * The record goes only when our agent is known to be gone: it powered off, or kill
	 * terminated the distribution.  A wsl.exe that failed or was killed otherwise may
	 * leave the agent running (holding 1025/7602): the record makes the next start
	 * terminate it first.  Under kill_lock: kill terminates only while we hold the lock.
	 */
	EnterCriticalSection(&w->kill_lock);
	clean = w->terminated || (!w->killed && (status == 0 || status == WSL_EXIT_SHUTDOWN));
	wsl_lock_release(&w->lock, !clean);
	LeaveCriticalSection(&w->kill_lock);
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

/**
 * wsl_find_rootfs() - the image tarball: @given, else rootfs.tar.gz next to the program
 * @given:	cfg->rootfs_path, or NULL
 * @rc:		0, or -ENOENT for a @given path that does not exist (mvm_last_error() set)
 *
 * Return: a malloc'd UTF-8 path, or NULL when there is none.
 */
static char *wsl_find_rootfs(const char *given, int *rc)
{
	wchar_t self[MAX_PATH], *slash;
	char path[MAX_PATH * 3];

	*rc = 0;
	if (given) {
		wchar_t *w = mvm_fs_widen(given);
		DWORD attr = w ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;

		free(w);
		if (attr == INVALID_FILE_ATTRIBUTES) {
			*rc = mvm_set_error(-ENOENT, "WSL2: rootfs %s not found", given);
			return NULL;
		}
		return strdup(given);
	}
	if (!GetModuleFileNameW(NULL, self, MAX_PATH - 16) || !(slash = wcsrchr(self, L'\\')))
		return NULL;
	wcscpy(slash + 1, L"rootfs.tar.gz");
	if (GetFileAttributesW(self) == INVALID_FILE_ATTRIBUTES ||
	    !WideCharToMultiByte(CP_UTF8, 0, self, -1, path, sizeof(path), NULL, NULL))
		return NULL;
	return strdup(path);
}

/** wsl_create() - &mvm_backend_ops.create: find wsl.exe and the image, make the vsock client. */
static int wsl_create(mvm_vm *vm, const struct mvm_config *cfg, void **priv)
{
	char why[512], dir[MAX_PATH * 3];
	struct wsl *w;
	int rc;

	w = calloc(1, sizeof(*w));
	if (!w)
		return mvm_set_error(-ENOMEM, "WSL2: out of memory");
	w->vm = vm;
	w->control_port = WSL_CONTROL_PORT;
	InitializeCriticalSection(&w->tail_lock);
	InitializeCriticalSection(&w->kill_lock);
	rc = wsl_find_exe(w->exe, sizeof(w->exe), why, sizeof(why));
	if (rc) {
		mvm_set_error(rc, "WSL2: %s", why);
		goto err;
	}
	w->rootfs = wsl_find_rootfs(cfg->rootfs_path, &rc);
	if (rc)
		goto err;
	rc = wsl_app_dir(dir, sizeof(dir), "state");
	if (rc)
		goto err;
	if (wsl_linux_path(w->state_dir, sizeof(w->state_dir), dir) < 0) {
		rc = mvm_set_error(-EINVAL, "WSL2: %s is not on a drive WSL mounts", dir);
		goto err;
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
	DeleteCriticalSection(&w->tail_lock);
	DeleteCriticalSection(&w->kill_lock);
	free(w->rootfs);
	free(w);
	return rc;
}

/** wsl_tail() - the agent's last output as one line of text, into @out. */
static void wsl_tail(struct wsl *w, char *out, size_t size)
{
	char raw[WSL_TAIL], *p;
	size_t i, start;

	EnterCriticalSection(&w->tail_lock);
	start = (w->tail_pos + WSL_TAIL - w->tail_len) % WSL_TAIL;
	for (i = 0; i < w->tail_len; i++)
		raw[i] = w->tail[(start + i) % WSL_TAIL];
	wsl_text(raw, w->tail_len, out, size);
	LeaveCriticalSection(&w->tail_lock);
	for (p = out; (p = strchr(p, '\n'));)
		*p = ' ';
}

/**
 * wsl_wait_agent() - until the agent answers an authenticated ping on the control port
 * @w:		started; the reader thread runs
 *
 * Return: 0, or -errno with mvm_last_error() set: the agent exited first (with its status
 * and last output, a WSL fault recognised in it), or did not answer in time.
 */
static int wsl_wait_agent(struct wsl *w)
{
	static const char ping[] = "{\"cmd\":\"ping\"}\n";
	const char *env = getenv("MICROVM_WSL_START_TIMEOUT");
	int limit_s = env && atoi(env) > 0 ? atoi(env) : WSL_READY_S;
	ULONGLONG deadline = GetTickCount64() + (ULONGLONG)limit_s * 1000;
	char tail[WSL_TAIL + 1], last[256] = "no answer";
	enum wsl_fault fault;
	DWORD status = 0;
	int rc;

	for (;;) {
		char *resp = NULL;

		rc = mvm_vsock_request(w->vsock, w->control_port, ping, sizeof(ping) - 1, &resp,
				       NULL, WSL_PING_MS);
		if (!rc && resp && strstr(resp, "\"pong\"")) {
			free(resp);
			return 0;
		}
		if (!rc)
			snprintf(last, sizeof(last), "unexpected answer %.200s", resp ? resp : "");
		else
			snprintf(last, sizeof(last), "%s", mvm_last_error());
		free(resp);
		if (WaitForSingleObject(w->proc, 0) == WAIT_OBJECT_0) {
			/* let the reader take in the last output */
			if (w->reader_started) {
				InterlockedExchange(&w->quiet_exit, 1);
				pthread_join(w->reader, NULL);
				w->reader_started = 0;
			}
			GetExitCodeProcess(w->proc, &status);
			wsl_tail(w, tail, sizeof(tail));
			fault = wsl_classify(tail);
			if (fault)
				return mvm_set_error(-ENODEV, "WSL2: %s (wsl.exe: %s)",
						     wsl_fault_advice(fault), tail);
			return mvm_set_error(-ECHILD, "WSL2: the agent exited with status %lu "
					     "before it answered; its last output: %s", status,
					     tail[0] ? tail : "(none)");
		}
		if (GetTickCount64() >= deadline)
			break;
		Sleep(100);
	}
	wsl_tail(w, tail, sizeof(tail));
	return mvm_set_error(-ETIMEDOUT, "WSL2: the agent did not answer on 127.0.0.1:%u within "
			     "%d s (%s); its last output: %s", w->control_port, limit_s, last,
			     tail[0] ? tail : "(none)");
}

/** wsl_abort_start() - start failed after the child ran: stop it; the reader stays quiet. */
static void wsl_abort_start(struct wsl *w)
{
	const char *term[] = { w->exe, "--terminate", WSL_DISTRO, NULL };
	char out[1024];
	size_t len;
	DWORD status;

	InterlockedExchange(&w->quiet_exit, 1);
	if (WaitForSingleObject(w->proc, 0) != WAIT_OBJECT_0) {
		wsl_run(term, out, sizeof(out), &len, &status, WSL_TERM_MS);
		TerminateProcess(w->proc, 1);
	}
	if (w->reader_started) {
		pthread_join(w->reader, NULL);
		w->reader_started = 0;
	}
	wsl_lock_release(&w->lock, 0);
}

/** wsl_start() - &mvm_backend_ops.start: import if needed, run the agent, wait for it. */
static int wsl_start(void *priv)
{
	struct wsl *w = priv;
	const char *argv[] = { w->exe, "-d", WSL_DISTRO, "--user", "root", "--exec", WSL_AGENT,
			       "--transport", "tcp", "--listen", "127.0.0.1",
			       "--auth-secret-file", "/dev/stdin", "--state-dir", w->state_dir,
			       NULL };
	const char *term[] = { w->exe, "--terminate", WSL_DISTRO, NULL };
	char err[1024];
	size_t len;
	DWORD n;
	int rc, stale;

	/* before anything touches the distribution: it may be another program's running one */
	w->lock = wsl_lock_take("start", &stale, &rc);
	if (!w->lock)
		return rc;
	if (stale) {
		/* its last holder died holding it: its agent may still run there (and hold the
		 * ports); a distro that is not registered makes this fail, which is fine */
		wsl_run(term, err, sizeof(err), &len, &n, WSL_TERM_MS);
	}
	rc = wsl_ensure_distro(w);
	if (!rc)
		rc = wsl_spawn(argv, &w->proc, &w->out, &w->in);
	if (rc) {
		wsl_lock_release(&w->lock, 0);
		return rc;
	}
	/* The secret, first thing on the agent's stdin (never on a command line). */
	if (!WriteFile(w->in, w->secret, MVM_SECRET_HEX_LEN + 1, &n, NULL) ||
	    n != MVM_SECRET_HEX_LEN + 1) {
		snprintf(err, sizeof(err), "WSL2: cannot hand the agent its secret");
		rc = -EPIPE;
		goto fail;
	}
	rc = pthread_create(&w->reader, NULL, wsl_reader, w);
	if (rc) {
		snprintf(err, sizeof(err), "WSL2: cannot start the console thread");
		rc = -rc;
		goto fail;
	}
	w->reader_started = 1;
	rc = wsl_wait_agent(w);
	if (!rc)
		return 0;
	snprintf(err, sizeof(err), "%s", mvm_last_error());
fail:
	wsl_abort_start(w);
	return mvm_set_error(rc, "%s", err);
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
	/*
	 * Only while we hold the lock: otherwise the distro may run another program's agent.
	 * kill_lock keeps the reader from letting go between the check and the terminate.
	 */
	EnterCriticalSection(&w->kill_lock);
	if (w->lock && !wsl_run(term, out, sizeof(out), &len, &status, WSL_TERM_MS) && !status)
		w->terminated = 1;
	LeaveCriticalSection(&w->kill_lock);
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
	wsl_lock_release(&w->lock, 0);
	mvm_vsock_free(w->vsock);
	DeleteCriticalSection(&w->tail_lock);
	DeleteCriticalSection(&w->kill_lock);
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
