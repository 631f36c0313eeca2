/* SPDX-License-Identifier: MIT */
/*
 * test_win_wsl.c - the WSL2 backend end to end under Wine, against fake_wsl.exe (a wsl.exe
 * stand-in next to this program; MICROVM_WSL_EXE points the backend at it).  Real WSL2
 * needs Windows with Hyper-V, which this machine is not: see docs/windows.md.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "microvm/error.h"
#include "microvm/runtime.h"
#include "runtime/compat.h"

static int failed_checks;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			printf("  %s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, \
			       __LINE__, #cond, mvm_last_error());                    \
			failed_checks++;                                              \
		}                                                                     \
	} while (0)

static char fake_exe[MAX_PATH], state_dir[MAX_PATH], rootfs[MAX_PATH];
static int control_port;

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
	static char buf[4096];
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

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int len = sizeof(sa), port;
	SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(s, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(s, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	closesocket(s);
	return port;
}

static void setenv_win(const char *k, const char *v)
{
	char kv[MAX_PATH * 2];

	snprintf(kv, sizeof(kv), "%s=%s", k, v);
	_putenv(kv);
}

static void test_no_wsl(void)
{
	struct mvm_config cfg;

	setenv_win("MICROVM_WSL_EXE", "C:\\nonexistent\\wsl.exe");
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_WSL;
	cfg.quiet = true;
	CHECK(mvm_vm_create(&cfg) == NULL);
	CHECK(strstr(mvm_last_error(), "WSL is not installed") != NULL);
	cfg.backend = MVM_BACKEND_AUTO;
	CHECK(mvm_vm_create(&cfg) == NULL);
	CHECK(strstr(mvm_last_error(), "no usable backend") != NULL);
	CHECK(strstr(mvm_last_error(), "wsl.exe not found") != NULL);
	cfg.backend = MVM_BACKEND_KVM;
	CHECK(mvm_vm_create(&cfg) == NULL);
	CHECK(strstr(mvm_last_error(), "not available in this build") != NULL);
}

static void test_bad_rootfs(void)
{
	struct mvm_config cfg;

	setenv_win("MICROVM_WSL_EXE", fake_exe);
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_WSL;
	cfg.rootfs_path = "C:\\nonexistent\\rootfs.tar.gz";
	CHECK(mvm_vm_create(&cfg) == NULL);
	CHECK(strstr(mvm_last_error(), "not found") != NULL);
}

static void test_not_imported_no_rootfs(void)
{
	struct mvm_config cfg;
	mvm_vm *vm;

	setenv_win("MICROVM_WSL_EXE", fake_exe);
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_AUTO;	/* AUTO on Windows is WSL2 */
	vm = mvm_vm_create(&cfg);
	CHECK(vm != NULL);
	if (!vm)
		return;
	CHECK(strcmp(mvm_vm_hypervisor(vm), "WSL2") == 0);
	CHECK(mvm_vm_start(vm) == -ENOENT);
	CHECK(strstr(mvm_last_error(), "not imported") != NULL);
	mvm_vm_destroy(vm);
}

/* the rootfs vanished between create and start: wsl --import fails, start says so */
static void test_import_fails(void)
{
	struct mvm_config cfg;
	char gone[MAX_PATH + 8];
	mvm_vm *vm;

	setenv_win("MICROVM_WSL_EXE", fake_exe);
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_WSL;
	cfg.rootfs_path = rootfs;
	vm = mvm_vm_create(&cfg);
	CHECK(vm != NULL);
	if (!vm)
		return;
	snprintf(gone, sizeof(gone), "%s.away", rootfs);
	CHECK(MoveFileA(rootfs, gone));
	CHECK(mvm_vm_start(vm) == -EIO);
	CHECK(strstr(mvm_last_error(), "--import microvm` failed with status 1") != NULL);
	CHECK(slurp("imported") == NULL);
	CHECK(MoveFileA(gone, rootfs));
	mvm_vm_destroy(vm);
}

/* import on first start, agent up, vsock request, graceful stop via "shutdown" */
static void test_import_run_stop(void)
{
	struct console_buf con = { .len = 0 };
	struct mvm_config cfg;
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	char *resp = NULL, *imported;
	mvm_vm *vm;

	pthread_mutex_init(&con.lock, NULL);
	setenv_win("MICROVM_WSL_EXE", fake_exe);
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_WSL;
	cfg.rootfs_path = rootfs;
	vm = mvm_vm_create(&cfg);
	CHECK(vm != NULL);
	if (!vm)
		return;
	CHECK(mvm_console_subscribe(vm, console_cb, &con) >= 0);
	CHECK(mvm_vm_start(vm) == 0);
	CHECK(console_wait(&con, "fake-agent: up", 10000));
	imported = slurp("imported");
	CHECK(imported && strstr(imported, "microvm|") == imported);
	CHECK(imported && strstr(imported, "\\microvm\\wsl|") != NULL);
	CHECK(imported && strstr(imported, rootfs) != NULL);
	CHECK(mvm_vsock_request(mvm_vm_vsock(vm), (uint32_t)control_port, "{\"cmd\":\"status\"}",
				16, &resp, NULL, 5000) == 0);
	CHECK(resp && strcmp(resp, "{\"status\":\"ok\",\"seen\":16}") == 0);
	free(resp);
	resp = NULL;
	/* the agent got its secret on stdin and refuses a client without it */
	{
		mvm_vsock *plain = mvm_vsock_new_tcp("127.0.0.1");

		CHECK(mvm_vsock_request(plain, (uint32_t)control_port, "{\"cmd\":\"shutdown\"}",
					18, &resp, NULL, 5000) == -EPROTO);
		CHECK(resp == NULL);
		mvm_vsock_free(plain);
	}
	CHECK(console_wait(&con, "fake-agent: refused", 5000));
	CHECK(mvm_vm_stop(vm, 10000) == 0);
	CHECK(mvm_vm_wait(vm, 0, &reason) == 0);
	CHECK(reason == MVM_EXIT_POWEROFF);
	CHECK(console_wait(&con, "got {\"cmd\":\"shutdown\"}", 2000));
	mvm_vm_destroy(vm);
}

/* second start: already imported (no second import); kill terminates the distro */
static void test_reuse_and_kill(void)
{
	struct console_buf con = { .len = 0 };
	struct mvm_config cfg;
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	char *imported;
	mvm_vm *vm;

	pthread_mutex_init(&con.lock, NULL);
	setenv_win("MICROVM_WSL_EXE", fake_exe);
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_WSL;
	cfg.rootfs_path = rootfs;
	vm = mvm_vm_create(&cfg);
	CHECK(vm != NULL);
	if (!vm)
		return;
	CHECK(mvm_console_subscribe(vm, console_cb, &con) >= 0);
	CHECK(mvm_vm_start(vm) == 0);
	CHECK(console_wait(&con, "fake-agent: up", 10000));
	imported = slurp("imported");
	CHECK(imported && strchr(imported, '\n') == strrchr(imported, '\n'));	/* one line */
	CHECK(mvm_vm_kill(vm) == 0);
	CHECK(mvm_vm_wait(vm, 10000, &reason) == 0);
	CHECK(reason == MVM_EXIT_KILLED);
	CHECK(slurp("terminated") != NULL);
	mvm_vm_destroy(vm);
}

static int setup(void)
{
	char tmp[MAX_PATH], *slash, port[16];
	FILE *f;

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
	snprintf(rootfs, sizeof(rootfs), "%s\\rootfs.tar.gz", state_dir);
	f = fopen(rootfs, "wb");
	if (!f)
		return -1;
	fputs("not really a tarball", f);
	fclose(f);
	setenv_win("FAKE_WSL_DIR", state_dir);
	mvm_vsock_free(mvm_vsock_new_tcp(NULL));	/* WSAStartup for free_port() */
	control_port = free_port();
	snprintf(port, sizeof(port), "%d", control_port);
	setenv_win("MICROVM_WSL_CONTROL_PORT", port);
	return 0;
}

static void cleanup(void)
{
	const char *names[] = { "imported", "terminated", "rootfs.tar.gz" };
	char p[MAX_PATH * 2];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s\\%s", state_dir, names[i]);
		DeleteFileA(p);
	}
	RemoveDirectoryA(state_dir);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{ "wsl_no_wsl", test_no_wsl },
		{ "wsl_bad_rootfs", test_bad_rootfs },
		{ "wsl_not_imported_no_rootfs", test_not_imported_no_rootfs },
		{ "wsl_import_fails", test_import_fails },
		{ "wsl_import_run_stop", test_import_run_stop },
		{ "wsl_reuse_and_kill", test_reuse_and_kill },
	};
	int passed = 0, failed = 0;
	size_t i;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (setup()) {
		printf("windows: 0 passed, 1 failed (setup: error %lu)\n", GetLastError());
		return 1;
	}
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int before = failed_checks;

		tests[i].fn();
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
