/* SPDX-License-Identifier: MIT */
/*
 * test_win_wsl.c - the WSL2 backend end to end under Wine, against fake_wsl.exe (a wsl.exe
 * double next to this program; MICROVM_WSL_EXE points the backend at it) running the real
 * Linux agent from the real guest image (MICROVM_TEST_ROOTFS, a Windows path to
 * rootfs.tar.gz; scripts/test-windows.sh passes the one `make image` built).  Needs root
 * (the double chroots into the distro) and a network namespace of its own (the agent
 * listens on 127.0.0.1:1025): scripts/test-windows.sh provides both.  Real WSL2 needs
 * Windows with Hyper-V, which this machine is not: see docs/windows.md.
 * `test_win_wsl.exe --hold IMAGE` is the second process of test_holder_process_dies().
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "microvm/error.h"
#include "microvm/runtime.h"
#include "runtime/compat.h"
#include "win_peer.h"	/* CHECK() */

#include <tlhelp32.h>

static char fake_exe[MAX_PATH], state_dir[MAX_PATH], rootfs[MAX_PATH], rootfs2[MAX_PATH];
static char appdata[MAX_PATH];

#define PORT 1025	/* the agent's control port (include/microvm/contract.h) */

struct console_buf {
	pthread_mutex_t lock;
	char data[8192];
	size_t len;
};

static void console_cb(void *opaque, const uint8_t *data, size_t len, uint64_t lost)
{
	struct console_buf *c = opaque;

	pthread_mutex_lock(&c->lock);
	if (len > sizeof(c->data) - 1 - c->len)
		len = sizeof(c->data) - 1 - c->len;
	memcpy(c->data + c->len, data, len);
	c->len += len;
	c->data[c->len] = '\0';
	pthread_mutex_unlock(&c->lock);
}

/* console_wait() - until @needle appeared on the console or @ms passed */
static int console_wait(struct console_buf *c, const char *needle, int ms)
{
	int found = 0;

	for (; ms > 0 && !found; ms -= 20) {
		pthread_mutex_lock(&c->lock);
		found = strstr(c->data, needle) != NULL;
		pthread_mutex_unlock(&c->lock);
		if (!found)
			Sleep(20);
	}
	return found;
}

static char *slurp(const char *name)
{
	static char buf[65536];
	char p[MAX_PATH * 2];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s\\%s", state_dir, name);
	f = fopen(p, "rb");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void setenv_win(const char *k, const char *v)
{
	char kv[MAX_PATH * 2];

	snprintf(kv, sizeof(kv), "%s=%s", k, v ? v : "");
	_putenv(kv);
}

/* count() - how often @needle occurs in the double's log */
static int count(const char *needle)
{
	const char *log = slurp("log"), *p;
	int n = 0;

	for (p = log; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* request() - one authenticated request to the agent; Return: the answer (malloc'd) or NULL */
static char *request(mvm_vm *vm, const char *req)
{
	char *resp = NULL;

	if (mvm_vsock_request(mvm_vm_vsock(vm), PORT, req, strlen(req), &resp, NULL, 5000))
		return NULL;
	return resp;
}

/* vm_new() - a WSL2 VM with the console captured into @con */
static mvm_vm *vm_new(const char *image, struct console_buf *con)
{
	struct mvm_config cfg;
	mvm_vm *vm;

	setenv_win("MICROVM_WSL_EXE", fake_exe);
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_WSL;
	cfg.rootfs_path = image;
	vm = mvm_vm_new(&cfg);
	if (vm && con) {
		pthread_mutex_init(&con->lock, NULL);
		con->len = 0;
		con->data[0] = '\0';
		mvm_console_subscribe(vm, console_cb, con);
	}
	return vm;
}

/* start_fails() - start must fail with @rc and an error containing @want; nothing runs */
static void start_fails(const char *mode, int rc, const char *want)
{
	mvm_vm *vm;

	setenv_win("FAKE_WSL_MODE", mode);
	vm = vm_new(rootfs, NULL);
	CHECK(vm != NULL);
	if (vm) {
		CHECK(mvm_vm_start(vm) == rc);
		CHECK(strstr(mvm_last_error(), want) != NULL);
		CHECK(mvm_vm_state(vm) == MVM_STATE_STOPPED);
		mvm_vm_free(vm);
	}
	setenv_win("FAKE_WSL_MODE", NULL);
	CHECK(slurp("distros") == NULL);
	/* the later tests count the double's commands from here */
	{
		char p[MAX_PATH * 2];

		snprintf(p, sizeof(p), "%s\\log", state_dir);
		DeleteFileA(p);
	}
}

static void test_no_wsl(void)
{
	struct mvm_config cfg;

	setenv_win("MICROVM_WSL_EXE", "C:\\nonexistent\\wsl.exe");
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_WSL;
	cfg.quiet = true;
	CHECK(mvm_vm_new(&cfg) == NULL);
	CHECK(strstr(mvm_last_error(), "WSL is not installed") != NULL);
	cfg.backend = MVM_BACKEND_AUTO;
	CHECK(mvm_vm_new(&cfg) == NULL);
	CHECK(strstr(mvm_last_error(), "no usable backend") != NULL);
	CHECK(strstr(mvm_last_error(), "wsl.exe not found") != NULL);
	cfg.backend = MVM_BACKEND_KVM;
	CHECK(mvm_vm_new(&cfg) == NULL);
	CHECK(strstr(mvm_last_error(), "not available in this build") != NULL);
	CHECK(mvm_wsl_uninstall() == -ENOENT);
}

/* wsl.exe is there (the inbox stub) but WSL is not installed */
static void test_wsl_absent(void)
{
	start_fails("absent", -ENODEV, "WSL is not installed: run `wsl --install");
	CHECK(strstr(mvm_last_error(), "Subsystem for Linux is not installed") != NULL);
	setenv_win("FAKE_WSL_MODE", "absent");
	CHECK(mvm_wsl_uninstall() == -ENODEV);
	setenv_win("FAKE_WSL_MODE", NULL);
	CHECK(count("import ") == 0);
}

/* the Virtual Machine Platform is off: the WSL2 import fails */
static void test_wsl_disabled(void)
{
	start_fails("disabled", -ENODEV, "enable the Windows feature \"Virtual Machine Platform\"");
	CHECK(strstr(mvm_last_error(), "HCS_E_HYPERV_NOT_INSTALLED") != NULL);
}

/* only WSL 1: `--version 2` is refused */
static void test_wsl1_only(void)
{
	start_fails("wsl1", -ENODEV, "only WSL 1");
	CHECK(strstr(mvm_last_error(), "wsl --update") != NULL);
}

static void test_bad_rootfs(void)
{
	setenv_win("MICROVM_WSL_EXE", fake_exe);
	CHECK(vm_new("C:\\nonexistent\\rootfs.tar.gz", NULL) == NULL);
	CHECK(strstr(mvm_last_error(), "not found") != NULL);
}

static void test_not_imported_no_rootfs(void)
{
	struct mvm_config cfg;
	mvm_vm *vm;

	setenv_win("MICROVM_WSL_EXE", fake_exe);
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_AUTO;	/* AUTO on Windows is WSL2 */
	vm = mvm_vm_new(&cfg);	/* no rootfs.tar.gz next to this program either */
	CHECK(vm != NULL);
	if (!vm)
		return;
	CHECK(strcmp(mvm_vm_hypervisor(vm), "WSL2") == 0);
	CHECK(mvm_vm_start(vm) == -ENOENT);
	CHECK(strstr(mvm_last_error(), "not imported") != NULL);
	mvm_vm_free(vm);
}

/* the rootfs vanished between create and start: wsl --import fails, start says so */
static void test_import_fails(void)
{
	char gone[MAX_PATH + 8];
	mvm_vm *vm;

	vm = vm_new(rootfs, NULL);
	CHECK(vm != NULL);
	if (!vm)
		return;
	snprintf(gone, sizeof(gone), "%s.away", rootfs);
	CHECK(MoveFileA(rootfs, gone));
	CHECK(mvm_vm_start(vm) != 0);
	CHECK(strstr(mvm_last_error(), "cannot read") != NULL);
	CHECK(MoveFileA(gone, rootfs));
	CHECK(slurp("distros") == NULL);
	mvm_vm_free(vm);
}

/*
 * The double is faithful: a `--` command line goes through root's login shell, which the
 * appliance's image does not have (so the backend must use --exec).
 */
static void test_double_shell(void)
{
	char cmd[MAX_PATH * 2], out[2048] = "";
	SECURITY_ATTRIBUTES sa = { .nLength = sizeof(sa), .bInheritHandle = TRUE };
	STARTUPINFOA si = { .cb = sizeof(si) };
	PROCESS_INFORMATION pi;
	HANDLE r, w;
	DWORD n, len = 0, st = 0;

	CHECK(CreatePipe(&r, &w, &sa, 0));
	SetHandleInformation(r, HANDLE_FLAG_INHERIT, 0);
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdOutput = w;
	si.hStdError = w;
	snprintf(cmd, sizeof(cmd), "\"%s\" -d microvm -- /usr/bin/microvm-agent --help", fake_exe);
	CHECK(CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi));
	CloseHandle(w);
	while (len < sizeof(out) - 1 && ReadFile(r, out + len, sizeof(out) - 1 - len, &n, NULL) && n)
		len += n;
	out[len] = '\0';
	CloseHandle(r);
	WaitForSingleObject(pi.hProcess, 30000);
	GetExitCodeProcess(pi.hProcess, &st);
	CloseHandle(pi.hProcess);
	CloseHandle(pi.hThread);
	CHECK(st == 1);
	CHECK(strstr(out, "execvpe /bin/sh failed 2") != NULL);
}

/* first start imports, the agent answers before start returns, graceful stop */
static void test_import_run_stop(void)
{
	struct console_buf con;
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	char *resp, *distros;
	mvm_vm *vm;

	vm = vm_new(rootfs, &con);
	CHECK(vm != NULL);
	if (!vm)
		return;
	CHECK(mvm_vm_start(vm) == 0);
	/* start returned: the agent answers right away, authenticated */
	resp = request(vm, "{\"cmd\":\"ping\"}\n");
	CHECK(resp && strstr(resp, "\"pong\""));
	free(resp);
	distros = slurp("distros");
	CHECK(distros && strstr(distros, "microvm|2|") == distros);
	CHECK(distros && strstr(distros, "\\microvm\\wsl") != NULL);
	CHECK(count("import microvm ") == 1);
	CHECK(count(rootfs) == 1);
	/* every program through --exec as root, the agent on the distro's loopback */
	CHECK(count("exec microvm root /usr/bin/microvm-agent") == 1);
	CHECK(count("shell ") == 0);
	CHECK(console_wait(&con, "listening (tcp 127.0.0.1)", 5000));
	/* a client without the secret is refused */
	{
		mvm_vsock *plain = mvm_vsock_new_tcp("127.0.0.1");

		resp = NULL;
		CHECK(mvm_vsock_request(plain, PORT, "{\"cmd\":\"ping\"}\n", 15, &resp, NULL,
					5000) == -EPROTO);
		CHECK(resp == NULL);
		mvm_vsock_free(plain);
	}
	/* a profile: kept in %LOCALAPPDATA%\microvm\state, outside the distro */
	resp = request(vm, "{\"cmd\":\"vpn_set_profile\",\"name\":\"corp.ovpn\","
			   "\"content\":\"client\\n\"}\n");
	CHECK(resp && strstr(resp, "\"ok\""));
	free(resp);
	{
		char p[MAX_PATH * 2];

		snprintf(p, sizeof(p), "%s\\microvm\\state\\profiles\\corp.ovpn", appdata);
		CHECK(GetFileAttributesA(p) != INVALID_FILE_ATTRIBUTES);
	}
	CHECK(mvm_vm_stop(vm, 10000) == 0);
	CHECK(mvm_vm_wait(vm, 0, &reason) == 0);
	CHECK(reason == MVM_EXIT_POWEROFF);
	mvm_vm_free(vm);
}

/* second start: already imported from this image (no second import); kill terminates */
static void test_reuse_and_kill(void)
{
	struct console_buf con;
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	char *resp;
	mvm_vm *vm;

	vm = vm_new(rootfs, &con);
	CHECK(vm != NULL);
	if (!vm)
		return;
	CHECK(mvm_vm_start(vm) == 0);
	CHECK(count("import microvm ") == 1);
	CHECK(count("unregister") == 0);
	resp = request(vm, "{\"cmd\":\"list_profiles\"}\n");
	CHECK(resp && strstr(resp, "corp.ovpn"));
	free(resp);
	CHECK(mvm_vm_kill(vm) == 0);
	CHECK(mvm_vm_wait(vm, 10000, &reason) == 0);
	CHECK(reason == MVM_EXIT_KILLED);
	CHECK(count("terminate microvm") == 1);
	mvm_vm_free(vm);
}

/* a newer image replaces the distro (unregister + import); the profiles stay */
static void test_upgrade_keeps_profiles(void)
{
	struct console_buf con;
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	char *resp;
	mvm_vm *vm;

	vm = vm_new(rootfs2, &con);
	CHECK(vm != NULL);
	if (!vm)
		return;
	CHECK(mvm_vm_start(vm) == 0);
	CHECK(count("unregister microvm") == 1);
	CHECK(count("import microvm ") == 2);
	CHECK(count(rootfs2) == 1);
	resp = request(vm, "{\"cmd\":\"list_profiles\"}\n");
	CHECK(resp && strstr(resp, "corp.ovpn"));
	free(resp);
	CHECK(mvm_vm_stop(vm, 10000) == 0);
	CHECK(mvm_vm_wait(vm, 0, &reason) == 0);
	CHECK(reason == MVM_EXIT_POWEROFF);
	mvm_vm_free(vm);
	/* and the same image again: no import */
	vm = vm_new(rootfs2, &con);
	CHECK(vm && mvm_vm_start(vm) == 0);
	CHECK(count("import microvm ") == 2);
	if (vm) {
		CHECK(mvm_vm_kill(vm) == 0);
		mvm_vm_free(vm);
	}
}

/* another Windows program holds 127.0.0.1:1025: no authenticated answer, start says so */
static void test_port_taken_on_windows(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	mvm_vm *vm;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(PORT);
	CHECK(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(s, 1) == 0);
	setenv_win("MICROVM_WSL_START_TIMEOUT", "3");
	vm = vm_new(rootfs2, NULL);
	CHECK(vm != NULL);
	if (vm) {
		CHECK(mvm_vm_start(vm) == -ETIMEDOUT);
		CHECK(strstr(mvm_last_error(), "did not answer on 127.0.0.1:1025 within 3 s") != NULL);
		CHECK(mvm_vm_state(vm) == MVM_STATE_STOPPED);
		mvm_vm_free(vm);
	}
	setenv_win("MICROVM_WSL_START_TIMEOUT", "30");
	closesocket(s);
}

/* the agent exits before it answers (its state directory is a file): status and output */
static void test_agent_exits_early(void)
{
	char dir[MAX_PATH * 2], keep[MAX_PATH * 2];
	mvm_vm *vm;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s\\microvm\\state", appdata);
	snprintf(keep, sizeof(keep), "%s\\microvm\\state.keep", appdata);
	CHECK(MoveFileA(dir, keep));
	f = fopen(dir, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	vm = vm_new(rootfs2, NULL);
	CHECK(vm != NULL);
	if (vm) {
		CHECK(mvm_vm_start(vm) == -ECHILD);
		CHECK(strstr(mvm_last_error(), "the agent exited with status 1 before it answered")
		      != NULL);
		CHECK(strstr(mvm_last_error(), "cannot create /mnt/c/") != NULL);
		CHECK(mvm_vm_state(vm) == MVM_STATE_STOPPED);
		mvm_vm_free(vm);
	}
	CHECK(DeleteFileA(dir));
	CHECK(MoveFileA(keep, dir));
}

/* WSL 2 switched off after the import: the run fails, start tells what to do */
static void test_disabled_after_import(void)
{
	mvm_vm *vm;

	setenv_win("FAKE_WSL_MODE", "disabled");
	vm = vm_new(rootfs2, NULL);
	CHECK(vm != NULL);
	if (vm) {
		CHECK(mvm_vm_start(vm) == -ENODEV);
		CHECK(strstr(mvm_last_error(), "\"Virtual Machine Platform\"") != NULL);
		CHECK(strstr(mvm_last_error(), "CreateInstance") != NULL);
		mvm_vm_free(vm);
	}
	setenv_win("FAKE_WSL_MODE", NULL);
}

/* run_agent() - the agent through the double directly, listening on @addr:@port */
static HANDLE run_agent(const char *addr, int port, HANDLE *out)
{
	SECURITY_ATTRIBUTES sa = { .nLength = sizeof(sa), .bInheritHandle = TRUE };
	STARTUPINFOA si = { .cb = sizeof(si) };
	PROCESS_INFORMATION pi;
	HANDLE ir, iw, or, ow;
	char cmd[MAX_PATH * 3];
	DWORD n;

	if (!CreatePipe(&ir, &iw, &sa, 0) || !CreatePipe(&or, &ow, &sa, 0))
		return NULL;
	SetHandleInformation(iw, HANDLE_FLAG_INHERIT, 0);
	SetHandleInformation(or, HANDLE_FLAG_INHERIT, 0);
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdInput = ir;
	si.hStdOutput = ow;
	si.hStdError = ow;
	snprintf(cmd, sizeof(cmd), "\"%s\" -d microvm -u root --exec /usr/bin/microvm-agent "
		 "--transport tcp --listen %s --control-port %d --proxy-port %d "
		 "--auth-secret-file /dev/stdin --state-dir /tmp/agent", fake_exe, addr, port,
		 port + 100);
	if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi))
		return NULL;
	CloseHandle(ir);
	CloseHandle(ow);
	CloseHandle(pi.hThread);
	WriteFile(iw, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 65,
		  &n, NULL);
	*out = or;
	return pi.hProcess;
}

/* pipe_wait() - until @needle appeared in what @h delivers, or @ms passed */
static int pipe_wait(HANDLE h, const char *needle, int ms)
{
	char buf[4096];
	DWORD len = 0, avail, n;

	for (; ms > 0; ms -= 20) {
		if (PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL) && avail &&
		    len < sizeof(buf) - 1 &&
		    ReadFile(h, buf + len, min(avail, (DWORD)(sizeof(buf) - 1 - len)), &n, NULL)) {
			len += n;
			buf[len] = '\0';
			if (strstr(buf, needle))
				return 1;
			continue;
		}
		Sleep(20);
	}
	return 0;
}

/* reachable() - does a TCP connection to 127.0.0.1:@port succeed? */
static int reachable(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	int ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((u_short)port);
	ok = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	closesocket(s);
	return ok;
}

/*
 * The double forwards as WSL does: a listener on the distro's 0.0.0.0 is reachable on the
 * Windows loopback, one on another address (127.0.0.2) is not.
 */
static void test_double_forwarding(void)
{
	SECURITY_ATTRIBUTES sa = { .nLength = sizeof(sa), .bInheritHandle = TRUE };
	HANDLE a, b, ao = NULL, bo = NULL;
	const char *term[] = { "--terminate", "microvm" };
	char cmd[MAX_PATH * 2];
	STARTUPINFOA si = { .cb = sizeof(si) };
	PROCESS_INFORMATION pi;
	int i, got = 0;

	a = run_agent("127.0.0.2", 1030, &ao);
	b = run_agent("0.0.0.0", 1031, &bo);
	CHECK(a && b);
	if (!a || !b)
		return;
	CHECK(pipe_wait(ao, "listening (tcp 127.0.0.2)", 15000));
	CHECK(pipe_wait(bo, "listening (tcp 0.0.0.0)", 15000));
	for (i = 0; i < 100 && !got; i++) {
		got = reachable(1031);
		if (!got)
			Sleep(50);
	}
	CHECK(got);
	Sleep(300);	/* the double looks for listeners every 50 ms */
	CHECK(!reachable(1030));
	snprintf(cmd, sizeof(cmd), "\"%s\" %s %s", fake_exe, term[0], term[1]);
	/* its UTF-16 "completed successfully" is not for our output */
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdOutput = CreateFileA("NUL", GENERIC_WRITE, 0, &sa, OPEN_EXISTING, 0, NULL);
	si.hStdError = si.hStdOutput;
	CHECK(CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi));
	CloseHandle(si.hStdOutput);
	WaitForSingleObject(pi.hProcess, 30000);
	CloseHandle(pi.hProcess);
	CloseHandle(pi.hThread);
	CHECK(WaitForSingleObject(a, 15000) == WAIT_OBJECT_0);
	CHECK(WaitForSingleObject(b, 15000) == WAIT_OBJECT_0);
	CloseHandle(a);
	CloseHandle(b);
	CloseHandle(ao);
	CloseHandle(bo);
}

/* WSL hangs starting the program: start gives up after MICROVM_WSL_START_TIMEOUT */
static void test_start_timeout(void)
{
	ULONGLONG t0;
	mvm_vm *vm;

	vm = vm_new(rootfs2, NULL);
	CHECK(vm != NULL);
	if (!vm)
		return;
	setenv_win("FAKE_WSL_MODE", "hang");
	setenv_win("MICROVM_WSL_START_TIMEOUT", "2");
	t0 = GetTickCount64();
	CHECK(mvm_vm_start(vm) == -ETIMEDOUT);
	CHECK(GetTickCount64() - t0 < 15000);
	CHECK(strstr(mvm_last_error(), "the agent did not answer on 127.0.0.1:1025 within 2 s")
	      != NULL);
	CHECK(mvm_vm_state(vm) == MVM_STATE_STOPPED);
	mvm_vm_free(vm);
	setenv_win("FAKE_WSL_MODE", NULL);
	setenv_win("MICROVM_WSL_START_TIMEOUT", "30");
}

/* lines() - how many commands the double has run (lines of its log) */
static int lines(void)
{
	return count("\n");
}

/* ping_ok() - does @vm's agent answer an authenticated ping? */
static int ping_ok(mvm_vm *vm)
{
	char *resp = request(vm, "{\"cmd\":\"ping\"}\n");
	int ok = resp && strstr(resp, "\"pong\"");

	free(resp);
	return ok;
}

/* refused() - is mvm_last_error() the one-per-user refusal naming @program (process @pid)? */
static int refused(const char *what, const char *program, unsigned long pid)
{
	char want[MAX_PATH + 64];

	snprintf(want, sizeof(want), "cannot %s: the appliance of this Windows user is in use "
		 "by %s (process %lu)", what, program, pid);
	if (!strstr(mvm_last_error(), want) ||
	    !strstr(mvm_last_error(), "(microvm.exe down, or stop the app that runs it)")) {
		printf("  got: %s\n  want: %s\n", mvm_last_error(), want);
		return 0;
	}
	return 1;
}

/*
 * One appliance per Windows user, two VMs in one process: the second start fails with
 * -EBUSY, names the holder and what to do, and runs no wsl.exe command (it brings another
 * image, which would re-import the distro); uninstall is refused too; the first's agent
 * still answers.  Once the first has stopped, a new VM starts.
 */
static void test_second_vm_refused(void)
{
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	mvm_vm *a, *b;
	int before;

	a = vm_new(rootfs2, NULL);
	CHECK(a != NULL);
	if (!a)
		return;
	CHECK(mvm_vm_start(a) == 0);
	before = lines();
	b = vm_new(rootfs, NULL);
	CHECK(b != NULL);
	if (b) {
		CHECK(mvm_vm_start(b) == -EBUSY);
		CHECK(refused("start", "test_win_wsl.exe", GetCurrentProcessId()));
		CHECK(mvm_vm_state(b) == MVM_STATE_STOPPED);
		mvm_vm_free(b);
	}
	CHECK(mvm_wsl_uninstall() == -EBUSY);
	CHECK(refused("uninstall", "test_win_wsl.exe", GetCurrentProcessId()));
	CHECK(lines() == before);	/* no --list, --import, --terminate, --unregister */
	CHECK(ping_ok(a));
	CHECK(mvm_vm_stop(a, 10000) == 0);
	CHECK(mvm_vm_wait(a, 0, &reason) == 0 && reason == MVM_EXIT_POWEROFF);
	mvm_vm_free(a);
	/* let go: the next one starts (same image: no import) */
	b = vm_new(rootfs2, NULL);
	CHECK(b != NULL);
	if (!b)
		return;
	CHECK(mvm_vm_start(b) == 0);
	CHECK(ping_ok(b));
	CHECK(count("import microvm ") == 2);
	CHECK(mvm_vm_stop(b, 10000) == 0);
	mvm_vm_free(b);
}

/* hold() - `test_win_wsl.exe --hold IMAGE`: start a VM, say so, run until killed */
static int hold(const char *image)
{
	const char *exe = getenv("MICROVM_WSL_EXE");
	mvm_vm *vm;

	if (!exe)
		return 1;
	snprintf(fake_exe, sizeof(fake_exe), "%s", exe);
	mvm_vsock_free(mvm_vsock_new_tcp(NULL));	/* WSAStartup */
	vm = vm_new(image, NULL);
	if (!vm || mvm_vm_start(vm)) {
		printf("hold: %s\n", mvm_last_error());
		return 1;
	}
	printf("holding\n");
	Sleep(INFINITE);
	return 0;
}

/*
 * Another process holds the appliance: its program and process are named; when it dies
 * without stopping (its agent left running in the distro, holding the ports), the lock is
 * free again, and the next start terminates the orphan before it starts its own.
 */
static void test_holder_process_dies(void)
{
	SECURITY_ATTRIBUTES sa = { .nLength = sizeof(sa), .bInheritHandle = TRUE };
	STARTUPINFOA si = { .cb = sizeof(si) };
	PROCESS_INFORMATION pi;
	char self[MAX_PATH], cmd[MAX_PATH * 3];
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	HANDLE r, w;
	mvm_vm *vm;
	int terms;

	CHECK(GetModuleFileNameA(NULL, self, sizeof(self)) > 0);
	CHECK(CreatePipe(&r, &w, &sa, 0));
	SetHandleInformation(r, HANDLE_FLAG_INHERIT, 0);
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdOutput = w;
	si.hStdError = w;
	snprintf(cmd, sizeof(cmd), "\"%s\" --hold \"%s\"", self, rootfs2);
	CHECK(CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi));
	CloseHandle(w);
	CHECK(pipe_wait(r, "holding", 60000));
	vm = vm_new(rootfs2, NULL);
	CHECK(vm != NULL);
	if (vm) {
		CHECK(mvm_vm_start(vm) == -EBUSY);
		CHECK(refused("start", "test_win_wsl.exe", pi.dwProcessId));
		mvm_vm_free(vm);
	}
	/* it dies holding the lock; its wsl.exe and agent live on */
	terms = count("terminate microvm");
	CHECK(TerminateProcess(pi.hProcess, 9));
	CHECK(WaitForSingleObject(pi.hProcess, 15000) == WAIT_OBJECT_0);
	CloseHandle(pi.hProcess);
	CloseHandle(pi.hThread);
	CloseHandle(r);
	CHECK(reachable(PORT));
	vm = vm_new(rootfs2, NULL);
	CHECK(vm != NULL);
	if (!vm)
		return;
	CHECK(mvm_vm_start(vm) == 0);
	CHECK(count("terminate microvm") == terms + 1);	/* the orphan first */
	CHECK(ping_ok(vm));
	CHECK(mvm_vm_stop(vm, 10000) == 0);
	CHECK(mvm_vm_wait(vm, 0, &reason) == 0 && reason == MVM_EXIT_POWEROFF);
	mvm_vm_free(vm);
}

/* lock_record() - the appliance lock's record ("PID PROGRAM\n", or "" once let go in order) */
static const char *lock_record(void)
{
	static char rec[512];
	char p[MAX_PATH * 2];
	size_t n = 0;
	FILE *f;

	snprintf(p, sizeof(p), "%s\\microvm\\appliance.lock", appdata);
	f = fopen(p, "rb");
	if (f) {
		n = fread(rec, 1, sizeof(rec) - 1, f);
		fclose(f);
	}
	rec[n] = '\0';
	return rec;
}

/* agent_wsl_exe() - our wsl.exe child that runs the agent (the only one still running) */
static HANDLE agent_wsl_exe(void)
{
	PROCESSENTRY32 pe = { .dwSize = sizeof(pe) };
	HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0), h = NULL;

	if (snap == INVALID_HANDLE_VALUE)
		return NULL;
	for (BOOL ok = Process32First(snap, &pe); ok && !h; ok = Process32Next(snap, &pe))
		if (pe.th32ParentProcessID == GetCurrentProcessId() &&
		    !_stricmp(pe.szExeFile, "fake_wsl.exe"))
			h = OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE, FALSE, pe.th32ProcessID);
	CloseHandle(snap);
	return h;
}

/*
 * wsl.exe dies under a running appliance (status 3, an error): the lock's record stays, for
 * its agent may still run in the distribution; the next start terminates it first.  A
 * poweroff lets go in order: empty record, no terminate at the next start.
 */
static void test_crashed_wsl_keeps_record(void)
{
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	HANDLE child;
	mvm_vm *vm;
	int terms;

	vm = vm_new(rootfs2, NULL);
	CHECK(vm != NULL);
	if (!vm)
		return;
	CHECK(mvm_vm_start(vm) == 0);
	child = agent_wsl_exe();
	CHECK(child != NULL);
	if (child) {
		CHECK(TerminateProcess(child, 3));
		CloseHandle(child);
	}
	CHECK(mvm_vm_wait(vm, 15000, &reason) == 0 && reason == MVM_EXIT_ERROR);
	mvm_vm_free(vm);
	CHECK(strstr(lock_record(), "test_win_wsl.exe") != NULL);
	terms = count("terminate microvm");
	vm = vm_new(rootfs2, NULL);
	CHECK(vm != NULL);
	if (!vm)
		return;
	CHECK(mvm_vm_start(vm) == 0);
	CHECK(count("terminate microvm") == terms + 1);	/* what the dead wsl.exe left */
	CHECK(ping_ok(vm));
	CHECK(mvm_vm_stop(vm, 10000) == 0);
	CHECK(mvm_vm_wait(vm, 0, &reason) == 0 && reason == MVM_EXIT_POWEROFF);
	mvm_vm_free(vm);
	CHECK(lock_record()[0] == '\0');
	vm = vm_new(rootfs2, NULL);
	CHECK(vm && mvm_vm_start(vm) == 0);
	CHECK(count("terminate microvm") == terms + 1);	/* let go in order: nothing to clean */
	if (vm) {
		CHECK(mvm_vm_stop(vm, 10000) == 0);
		mvm_vm_free(vm);
	}
}

/* uninstall unregisters; the profiles stay; a second uninstall is fine */
static void test_uninstall(void)
{
	char p[MAX_PATH * 2];
	int before = count("unregister microvm");

	CHECK(mvm_wsl_uninstall() == 1);
	CHECK(count("unregister microvm") == before + 1);
	CHECK(slurp("distros") == NULL || !strstr(slurp("distros"), "microvm"));
	snprintf(p, sizeof(p), "%s\\microvm\\wsl\\image.sha256", appdata);
	CHECK(GetFileAttributesA(p) == INVALID_FILE_ATTRIBUTES);
	snprintf(p, sizeof(p), "%s\\microvm\\state\\profiles\\corp.ovpn", appdata);
	CHECK(GetFileAttributesA(p) != INVALID_FILE_ATTRIBUTES);
	CHECK(mvm_wsl_uninstall() == 0);
	CHECK(count("unregister microvm") == before + 1);	/* not registered: nothing to do */
}

static int copy(const char *from, const char *to, const void *extra, size_t extra_len);

/* no rootfs given: rootfs.tar.gz next to the program (a self-contained Windows package) */
static void test_rootfs_next_to_program(void)
{
	char beside[MAX_PATH + 32], *slash;
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	mvm_vm *vm;

	snprintf(beside, sizeof(beside), "%s", fake_exe);
	slash = strrchr(beside, '\\');
	if (!slash)
		return;
	snprintf(slash + 1, sizeof(beside) - (size_t)(slash + 1 - beside), "rootfs.tar.gz");
	CHECK(copy(rootfs, beside, NULL, 0) == 0);
	vm = vm_new(NULL, NULL);
	CHECK(vm != NULL);
	if (vm) {
		CHECK(mvm_vm_start(vm) == 0);
		CHECK(count(beside) == 1);	/* imported from there */
		CHECK(mvm_vm_stop(vm, 10000) == 0);
		CHECK(mvm_vm_wait(vm, 0, &reason) == 0 && reason == MVM_EXIT_POWEROFF);
		mvm_vm_free(vm);
	}
	CHECK(DeleteFileA(beside));
	CHECK(mvm_wsl_uninstall() == 1);
}

/* copy() - @from to @to; @extra appended (bytes) */
/* wexists() - does UTF-16 path @dir\@name exist? */
static int wexists(const wchar_t *dir, const wchar_t *name)
{
	wchar_t p[MAX_PATH * 2];

	_snwprintf(p, MAX_PATH * 2, L"%ls%ls", dir, name);
	p[MAX_PATH * 2 - 1] = L'\0';
	return GetFileAttributesW(p) != INVALID_FILE_ATTRIBUTES;
}

/*
 * --purge (MVM_WSL_PURGE) with a %LOCALAPPDATA% outside the ANSI code page (a user folder
 * like C:\Users\Müller-Ω): refused with nothing removed while the appliance lock is held;
 * else the profiles, the lock file and the folder all go.
 */
static void test_purge_non_ascii_appdata(void)
{
	wchar_t wapp[MAX_PATH], env[MAX_PATH + 16];
	char saved[MAX_PATH];
	HANDLE held;
	FILE *f;

	snprintf(saved, sizeof(saved), "%s", appdata);
	CHECK(MultiByteToWideChar(CP_ACP, 0, appdata, -1, wapp, MAX_PATH) > 0);
	wcscat(wapp, L"\\M\u00fcller-\u03a9");
	CHECK(CreateDirectoryW(wapp, NULL));
	_snwprintf(env, MAX_PATH + 16, L"LOCALAPPDATA=%ls", wapp);
	env[MAX_PATH + 15] = L'\0';
	CHECK(_wputenv(env) == 0);
	/* nothing registered, nothing there: the lock's folder is made, then purged */
	CHECK(mvm_wsl_uninstall_ex(MVM_WSL_PURGE) == 0);
	CHECK(!wexists(wapp, L"\\microvm"));
	/* a profile there */
	CHECK(CreateDirectoryW(wcscat(wcscpy(env, wapp), L"\\microvm"), NULL));
	CHECK(CreateDirectoryW(wcscat(env, L"\\state"), NULL));
	f = _wfopen(wcscat(env, L"\\corp.ovpn"), L"wb");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	/* the lock held as a VM of this user holds it (CreateFileW without write sharing) */
	held = CreateFileW(wcscat(wcscpy(env, wapp), L"\\microvm\\appliance.lock"),
			   GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_ALWAYS, 0,
			   NULL);
	CHECK(held != INVALID_HANDLE_VALUE);
	CHECK(mvm_wsl_uninstall_ex(MVM_WSL_PURGE) == -EBUSY);
	CHECK(wexists(wapp, L"\\microvm\\state\\corp.ovpn"));
	CloseHandle(held);
	CHECK(mvm_wsl_uninstall_ex(MVM_WSL_PURGE) == 0);
	CHECK(!wexists(wapp, L"\\microvm\\state\\corp.ovpn"));
	CHECK(!wexists(wapp, L"\\microvm\\appliance.lock"));
	CHECK(!wexists(wapp, L"\\microvm"));
	CHECK(RemoveDirectoryW(wapp));
	setenv_win("LOCALAPPDATA", saved);
}

static int copy(const char *from, const char *to, const void *extra, size_t extra_len)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;
	int ok = in && out;

	while (ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		ok = fwrite(buf, 1, n, out) == n;
	if (ok && extra_len)
		ok = fwrite(extra, 1, extra_len, out) == extra_len;
	if (in)
		fclose(in);
	if (out && fclose(out))
		ok = 0;
	return ok ? 0 : -1;
}

static int setup(void)
{
	/* an empty gzip member: the same tar inside, another SHA-256 - a "newer image" */
	static const unsigned char empty_gz[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0,
						  0, 0, 0, 0, 0, 0, 0, 0 };
	const char *image = getenv("MICROVM_TEST_ROOTFS");
	char tmp[MAX_PATH], *slash;

	if (!image || GetFileAttributesA(image) == INVALID_FILE_ATTRIBUTES) {
		printf("setup: MICROVM_TEST_ROOTFS (the guest image's rootfs.tar.gz, a Windows "
		       "path) is not set or missing: run via scripts/test-windows.sh\n");
		return -1;
	}
	if (!GetModuleFileNameA(NULL, fake_exe, sizeof(fake_exe)))
		return -1;
	slash = strrchr(fake_exe, '\\');
	if (!slash)
		return -1;
	snprintf(slash + 1, sizeof(fake_exe) - (size_t)(slash + 1 - fake_exe), "fake_wsl.exe");
	if (!GetTempPathA(sizeof(tmp), tmp))
		return -1;
	snprintf(state_dir, sizeof(state_dir), "%smicrovm-fake-wsl-%lu", tmp,
		 GetCurrentProcessId());
	if (!CreateDirectoryA(state_dir, NULL))
		return -1;
	/* %LOCALAPPDATA% of its own, so that runs do not see each other's distro */
	snprintf(appdata, sizeof(appdata), "%s\\appdata", state_dir);
	if (!CreateDirectoryA(appdata, NULL))
		return -1;
	setenv_win("LOCALAPPDATA", appdata);
	snprintf(rootfs, sizeof(rootfs), "%s\\rootfs.tar.gz", state_dir);
	snprintf(rootfs2, sizeof(rootfs2), "%s\\rootfs-v2.tar.gz", state_dir);
	if (copy(image, rootfs, NULL, 0) || copy(image, rootfs2, empty_gz, sizeof(empty_gz)))
		return -1;
	setenv_win("FAKE_WSL_DIR", state_dir);
	setenv_win("MICROVM_WSL_START_TIMEOUT", "30");
	mvm_vsock_free(mvm_vsock_new_tcp(NULL));	/* WSAStartup */
	return 0;
}

/* cleanup() - the state directory (the distro's files are root's): rm -rf on the Unix side */
static void cleanup(void)
{
	typedef char *(CDECL *fn)(const WCHAR *);
	fn get = (fn)(void *)GetProcAddress(GetModuleHandleA("kernel32.dll"),
					    "wine_get_unix_file_name");
	STARTUPINFOA si = { .cb = sizeof(si) };
	PROCESS_INFORMATION pi;
	char cmd[MAX_PATH * 3];
	WCHAR w[MAX_PATH];
	char *u;

	if (!get || !MultiByteToWideChar(CP_ACP, 0, state_dir, -1, w, MAX_PATH) || !(u = get(w)))
		return;
	snprintf(cmd, sizeof(cmd), "Z:\\bin\\rm -rf \"%s\"", u);
	HeapFree(GetProcessHeap(), 0, u);
	/* a Linux program starts without a process handle under Wine: give it a moment */
	if (CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
		Sleep(500);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{ "wsl_no_wsl", test_no_wsl },
		{ "wsl_absent", test_wsl_absent },
		{ "wsl_disabled", test_wsl_disabled },
		{ "wsl_wsl1_only", test_wsl1_only },
		{ "wsl_bad_rootfs", test_bad_rootfs },
		{ "wsl_not_imported_no_rootfs", test_not_imported_no_rootfs },
		{ "wsl_import_fails", test_import_fails },
		{ "wsl_import_run_stop", test_import_run_stop },
		{ "wsl_double_shell", test_double_shell },
		{ "wsl_reuse_and_kill", test_reuse_and_kill },
		{ "wsl_upgrade_keeps_profiles", test_upgrade_keeps_profiles },
		{ "wsl_port_taken_on_windows", test_port_taken_on_windows },
		{ "wsl_agent_exits_early", test_agent_exits_early },
		{ "wsl_disabled_after_import", test_disabled_after_import },
		{ "wsl_double_forwarding", test_double_forwarding },
		{ "wsl_start_timeout", test_start_timeout },
		{ "wsl_second_vm_refused", test_second_vm_refused },
		{ "wsl_holder_process_dies", test_holder_process_dies },
		{ "wsl_crashed_wsl_keeps_record", test_crashed_wsl_keeps_record },
		{ "wsl_uninstall", test_uninstall },
		{ "wsl_rootfs_next_to_program", test_rootfs_next_to_program },
		{ "wsl_purge_non_ascii_appdata", test_purge_non_ascii_appdata },
	};
	int passed = 0, failed = 0;
	size_t i;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc == 3 && !strcmp(argv[1], "--hold"))
		return hold(argv[2]);	/* the other process of test_holder_process_dies() */
	if (setup()) {
		printf("windows: 0 passed, 1 failed (setup: error %lu)\n", GetLastError());
		return 1;
	}
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int before = failed_checks;

		tests[i].fn();
		if (getenv("FAKE_WSL_SHOW_LOG"))
			printf("--- log:\n%s---\n", slurp("log") ? slurp("log") : "");
		printf("%s %s\n", failed_checks == before ? "ok" : "FAIL", tests[i].name);
		if (failed_checks == before)
			passed++;
		else
			failed++;
	}
	cleanup();
	printf("windows: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
