/* SPDX-License-Identifier: MIT */
/*
 * test_nsbox.c - the namespace backend with a real box: a rootfs made of the host's static
 * busybox, run through the runtime API.  Checks PID 1 and the hostname inside, the console,
 * the vsock client reaching a TCP server in the box, the box reaching the host through
 * slirp (10.0.2.2), graceful stop and kill with their exit reasons, a .tar.gz rootfs, and
 * that nothing is left afterwards (processes, the private writable layer).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "microvm/runtime.h"
#include "nsbox/nsbox.h"
#include "runtime/backend.h"

extern const struct mvm_backend_ops mvm_nsbox_backend;

#define BUSYBOX "/bin/busybox"

static char rootdir[128];
static char workdir[64];

/* Console bytes, collected from the runtime's subscriber callback. */
struct console_buf {
	pthread_mutex_t lock;
	char data[65536];
	size_t len;
};

static void console_cb(void *opaque, const uint8_t *data, size_t len, uint64_t lost)
{
	struct console_buf *c = opaque;

	(void)lost;
	pthread_mutex_lock(&c->lock);
	if (len > sizeof(c->data) - 1 - c->len)
		len = sizeof(c->data) - 1 - c->len;
	memcpy(c->data + c->len, data, len);
	c->len += len;
	c->data[c->len] = '\0';
	pthread_mutex_unlock(&c->lock);
}

static bool console_wait(struct console_buf *c, const char *needle, int timeout_ms)
{
	int waited;

	for (waited = 0; waited < timeout_ms; waited += 20) {
		bool found;

		pthread_mutex_lock(&c->lock);
		found = strstr(c->data, needle) != NULL;
		pthread_mutex_unlock(&c->lock);
		if (found)
			return true;
		usleep(20000);
	}
	fprintf(stderr, "console so far:\n%s\n", c->data);
	return false;
}

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* A rootfs: busybox, /bin/sh, and /bin/pong (the "agent": answers one line per connection). */
static int group_setup(void **state)
{
	char cmd[4096], path[512];
	char why[256];

	(void)state;
	if (access(BUSYBOX, X_OK) || !mvm_nsbox_backend.usable(why, sizeof(why)))
		return 0;	/* each test skips */
	snprintf(workdir, sizeof(workdir), "/tmp/test-nsbox-XXXXXX");
	if (!mkdtemp(workdir))
		return -1;
	snprintf(rootdir, sizeof(rootdir), "%s/root", workdir);
	snprintf(path, sizeof(path), "%s/cache", workdir);
	setenv("MICROVM_CACHE", path, 1);	/* unpacked archives go here, not to ~/.cache */
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/bin %s/etc %s/proc %s/dev %s/run %s/tmp %s/sys %s/unpack && cp %s %s/bin/busybox"
		 " && ln -s busybox %s/bin/sh",
		 rootdir, rootdir, rootdir, rootdir, rootdir, rootdir, rootdir, workdir, BUSYBOX, rootdir,
		 rootdir);
	if (run(cmd))
		return -1;
	snprintf(path, sizeof(path), "%s/bin/pong", rootdir);
	write_file(path, "#!/bin/sh\nread line\necho \"pong $line host=$(busybox hostname)\"\n",
		   0755);
	snprintf(cmd, sizeof(cmd), "tar -C %s -czf %s/rootfs.tar.gz .", rootdir, workdir);
	return run(cmd) ? -1 : 0;
}

static int group_teardown(void **state)
{
	char cmd[512];

	(void)state;
	if (workdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
		run(cmd);
	}
	return 0;
}

static void need_box(void)
{
	if (!workdir[0])
		skip();		/* no busybox or no namespaces here: said by usable() */
}

/* The parent of @pid, or 0. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* after the command name, which may hold anything */
	return p ? (pid_t)strtol(p + 4, NULL, 10) : 0;
}

/*
 * Are processes started in one of our boxes still running?  They carry
 * container=microvm-nsbox and descend from this test (boxes of others do not count).
 */
static int box_processes_now(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[300], env[8192];
		ssize_t len, i;
		pid_t q;
		int fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/environ", e->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		len = read(fd, env, sizeof(env) - 1);
		close(fd);
		if (len <= 0)
			continue;
		env[len] = '\0';
		for (i = 0; i < len; i += (ssize_t)strlen(env + i) + 1) {
			if (strcmp(env + i, "container=microvm-nsbox"))
				continue;
			for (q = (pid_t)atoi(e->d_name); q > 1 && q != getpid(); q = parent_of(q))
				;
			if (q == getpid())
				n++;
		}
	}
	closedir(d);
	return n;
}

/* The count once it settles on @want (connection handlers may still be exiting), or the last. */
static int box_processes_wait(int want)
{
	int i, n = -1;

	for (i = 0; i < 100; i++) {
		n = box_processes_now();
		if (n == want)
			break;
		usleep(20000);
	}
	return n;
}

#define box_processes_is(n) assert_int_equal(box_processes_wait(n), (n))

static mvm_vm *box_new(const char *rootfs, const char *const *argv, bool net,
		       struct console_buf *con)
{
	struct mvm_config cfg;
	mvm_vm *vm;

	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_NSBOX;
	cfg.rootfs_path = rootfs;
	cfg.box_argv = argv;
	cfg.net = net;
	/* the test servers listen on the host's 127.0.0.1, reached as 10.0.2.2: the mapping
	 * is off by default (test_socks_box.py checks that side) */
	cfg.net_host_loopback = net;
	vm = mvm_vm_new_ops(&mvm_nsbox_backend, &cfg);
	if (!vm)
		fprintf(stderr, "create: %s\n", mvm_last_error());
	assert_non_null(vm);
	/* These box programs are not the agent: plain streams, no authentication handshake. */
	assert_int_equal(mvm_vsock_set_secret(mvm_vm_vsock(vm), NULL), 0);
	memset(con, 0, sizeof(*con));
	pthread_mutex_init(&con->lock, NULL);
	assert_true(mvm_console_subscribe(vm, console_cb, con) >= 0);
	/* Not the state: a short box program may already have finished by now. */
	if (mvm_vm_start(vm)) {
		fprintf(stderr, "start: %s\n", mvm_last_error());
		fail();
	}
	return vm;
}

/* The request/response through the vsock client, retried while the server starts. */
static char *ask(mvm_vm *vm, uint32_t port, const char *req)
{
	char *resp = NULL;
	int i, ret = -1;

	for (i = 0; i < 100; i++) {
		ret = mvm_vsock_request(mvm_vm_vsock(vm), port, req, strlen(req), &resp, NULL, 2000);
		if (ret != -ECONNREFUSED)
			break;
		usleep(20000);
	}
	assert_int_equal(ret, 0);
	return resp;
}

/* The box's uid_map as printed by test_box_basics: every range small, root mapped once. */
static void box_map_is_bounded(struct console_buf *con)
{
	const char *p, *end;
	unsigned long long total = 0;

	pthread_mutex_lock(&con->lock);
	p = strstr(con->data, "uidmap ");
	end = p ? strstr(p, " end") : NULL;
	assert_non_null(end);
	p += 7;
	while (p < end) {
		unsigned long long in, out, count;
		int used = 0;

		if (sscanf(p, "%llu %llu %llu%n", &in, &out, &count, &used) != 3)
			break;
		assert_true(count <= 65536);
		total += count;
		p += used;
	}
	pthread_mutex_unlock(&con->lock);
	assert_true(total >= 1 && total <= 65536);
	if (geteuid() == 0)	/* root and 65535 subordinate ids, so the box may switch users */
		assert_int_equal(total, 65536);
}

#define DEFAULT_MAP	"0 0 1\n1 1879048192 65535\n"

static void test_id_map(void **state)
{
	char buf[96];

	(void)state;
	/* No subordinate range: root and the default range (0x70000000). */
	assert_int_equal(nsbox_id_map(buf, sizeof(buf), NULL, "root", 0), 0);
	assert_string_equal(buf, DEFAULT_MAP);
	assert_int_equal(nsbox_id_map(buf, sizeof(buf), "alice:100000:65536\n", "root", 0), 0);
	assert_string_equal(buf, DEFAULT_MAP);
	/* By name or by id; capped at 65535 ids besides root. */
	assert_int_equal(nsbox_id_map(buf, sizeof(buf),
				      "alice:100000:65536\nroot:165536:1000000\n", "root", 0), 0);
	assert_string_equal(buf, "0 0 1\n1 165536 65535\n");
	assert_int_equal(nsbox_id_map(buf, sizeof(buf), "0:200000:100", "root", 0), 0);
	assert_string_equal(buf, "0 0 1\n1 200000 100\n");
	/* Ranges that include root, start at 0, wrap or do not parse are ignored. */
	assert_int_equal(nsbox_id_map(buf, sizeof(buf), "root:0:65536\n", "root", 0), 0);
	assert_string_equal(buf, DEFAULT_MAP);
	assert_int_equal(nsbox_id_map(buf, sizeof(buf), "root:4294967000:65536\n", "root", 0), 0);
	assert_string_equal(buf, DEFAULT_MAP);
	assert_int_equal(nsbox_id_map(buf, sizeof(buf), "root:1x:5\nroot::\n", "root", 0), 0);
	assert_string_equal(buf, DEFAULT_MAP);
	assert_int_equal(nsbox_id_map(buf, sizeof(buf), "bob:1000:10\n", "bob", 1005), 0);
	assert_string_equal(buf, "0 1005 1\n1 1879048192 65535\n");
	assert_int_equal(nsbox_id_map(buf, 4, NULL, "root", 0), -ENOSPC);
}

static void test_box_basics(void **state)
{
	static const char *const argv[] = {
		"/bin/sh", "-c",
		"echo box-up pid=$$ ppid=$PPID host=$(hostname);"
		"echo uidmap $(cat /proc/self/uid_map) end;"
		"grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status;"
		"ls /dev; exec busybox nc -ll -p 1025 -e /bin/pong", NULL,
	};
	struct console_buf con;
	enum mvm_exit_reason reason;
	mvm_vm *vm;
	char *resp;

	(void)state;
	need_box();
	vm = box_new(rootdir, argv, false, &con);
	assert_string_equal(mvm_vm_hypervisor(vm), "nsbox");
	assert_true(console_wait(&con, "box-up pid=2 ppid=1 host=microvm", 5000));
	assert_true(console_wait(&con, "urandom", 5000));	/* the minimal /dev */
	/* Bounded id map (never 0 0 4294967295), a narrow bounding set, no_new_privs. */
	assert_true(console_wait(&con, "uidmap ", 5000));
	assert_true(console_wait(&con, " end", 5000));
	box_map_is_bounded(&con);
	assert_true(console_wait(&con, "CapBnd:\t00000000000435ff", 5000));
	assert_true(console_wait(&con, "NoNewPrivs:\t1", 5000));
	resp = ask(vm, 1025, "ping");
	assert_string_equal(resp, "pong ping host=microvm");
	free(resp);
	/* Nothing listens on 1026 in the box: refused, not a hang. */
	assert_int_equal(mvm_vsock_connect(mvm_vm_vsock(vm), 1026, 2000), -ECONNREFUSED);
	box_processes_is(1);

	assert_int_equal(mvm_vm_stop(vm, 5000), 0);
	assert_int_equal(mvm_vm_wait(vm, 1000, &reason), 0);
	assert_int_equal(reason, MVM_EXIT_POWEROFF);
	/* Once stopped, connects fail at once. */
	assert_true(mvm_vsock_connect(mvm_vm_vsock(vm), 1025, 1000) < 0);
	mvm_vm_free(vm);
	assert_int_equal(box_processes_now(), 0);	/* at once */
}

/* A host TCP server on 127.0.0.1 that the box reaches as 10.0.2.2 through slirp. */
struct host_srv {
	int fd;
	char got[256];
};

static void *host_srv_thread(void *arg)
{
	struct host_srv *h = arg;
	int c = accept(h->fd, NULL, NULL);
	ssize_t n;

	if (c < 0)
		return NULL;
	n = read(c, h->got, sizeof(h->got) - 1);
	if (n > 0)
		h->got[n] = '\0';
	if (write(c, "hello-from-host\n", 16) < 0)
		h->got[0] = '!';
	close(c);
	return NULL;
}

static void test_box_net_slirp(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct host_srv h = { 0 };
	struct console_buf con;
	enum mvm_exit_reason reason;
	char script[512];
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	pthread_t t;
	mvm_vm *vm;

	(void)state;
	need_box();
	h.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(h.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(h.fd, 1), 0);
	assert_int_equal(getsockname(h.fd, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(pthread_create(&t, NULL, host_srv_thread, &h), 0);

	/* Exits 0 on its own: a poweroff. */
	snprintf(script, sizeof(script),
		 "ip -4 addr show eth0; ip route; ls /sys/class/net;"
		 "echo hello-from-box | nc -w 5 10.0.2.2 %u > /tmp/reply; echo reply=$(cat /tmp/reply)",
		 ntohs(a.sin_port));
	vm = box_new(rootdir, argv, true, &con);
	assert_int_equal(mvm_vm_wait(vm, 10000, &reason), 0);
	assert_int_equal(reason, MVM_EXIT_POWEROFF);
	pthread_join(t, NULL);
	close(h.fd);
	assert_true(console_wait(&con, "inet 10.0.2.15/24", 100));
	assert_true(console_wait(&con, "default via 10.0.2.2 dev eth0", 100));
	assert_true(console_wait(&con, "reply=hello-from-host", 100));
	assert_true(console_wait(&con, "eth0\nlo\n", 100));	/* the box's own /sys */
	assert_string_equal(h.got, "hello-from-box\n");
	mvm_vm_free(vm);
	assert_int_equal(box_processes_now(), 0);	/* at once */
}

static void test_box_kill_targz(void **state)
{
	static const char *const argv[] = {
		"/bin/sh", "-c",
		"trap '' TERM; echo dns=$(cat /etc/resolv.conf); echo ready; touch /written;"
		"sleep 1000 & wait", NULL,
	};
	static const char *const fresh[] = {
		"/bin/sh", "-c", "test -e /written || echo fresh", NULL,
	};
	struct console_buf con;
	enum mvm_exit_reason reason;
	char tgz[300], cmd[4096];
	mvm_vm *vm;
	pid_t dead;

	(void)state;
	need_box();
	snprintf(tgz, sizeof(tgz), "%s/rootfs.tar.gz", workdir);
	/* What a host killed with SIGKILL leaves: its box's directory, named after its pid. */
	dead = fork();
	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/unpack/microvm-nsbox-%d-stale/upper/x", workdir,
		 (int)dead);
	assert_int_equal(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/unpack", workdir);
	setenv("TMPDIR", cmd, 1);
	vm = box_new(tgz, argv, false, &con);
	unsetenv("TMPDIR");
	assert_true(console_wait(&con, "ready", 5000));
	assert_true(console_wait(&con, "dns=nameserver 10.0.2.3", 100));
	/*
	 * The root is writable: writes land in the box's private upper layer, never in the
	 * archive's unpacked tree in the cache (shared by every box) nor the source directory.
	 * The stale directory of the dead host is gone: ours is the only one.
	 */
	snprintf(cmd, sizeof(cmd), "test $(ls %s/unpack | wc -l) = 1 && test -e %s/unpack/*/upper/written"
		 " && test -d %s/cache/nsbox/*/root/bin && test ! -e %s/cache/nsbox/*/root/written"
		 " && test ! -e %s/written", workdir, workdir, workdir, workdir, rootdir);
	assert_int_equal(run(cmd), 0);
	box_processes_is(2);	/* sh and sleep */

	/* SIGTERM is ignored in the box: stop falls back to kill after its timeout. */
	assert_int_equal(mvm_vm_stop(vm, 300), 0);
	assert_int_equal(mvm_vm_wait(vm, 1000, &reason), 0);
	assert_int_equal(reason, MVM_EXIT_KILLED);
	assert_int_equal(box_processes_now(), 0);	/* at once */
	mvm_vm_free(vm);
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s/unpack)\"", workdir);
	assert_int_equal(run(cmd), 0);

	/* Another box from the same archive: the cached tree, and none of the first's writes. */
	vm = box_new(tgz, fresh, false, &con);
	assert_int_equal(mvm_vm_wait(vm, 5000, &reason), 0);
	assert_true(console_wait(&con, "fresh", 100));
	mvm_vm_free(vm);
	snprintf(cmd, sizeof(cmd), "test $(ls %s/cache/nsbox | wc -l) = 1", workdir);
	assert_int_equal(run(cmd), 0);
}

/* Where the overlay cannot be mounted, the box still starts, on a private unpacked copy. */
static void test_box_overlay_fallback(void **state)
{
	static const char *const argv[] = {
		"/bin/sh", "-c", "touch /w && echo fallback-ok", NULL,
	};
	struct console_buf con;
	enum mvm_exit_reason reason;
	char tgz[300], dir[300], cmd[1024];
	mvm_vm *vm;

	(void)state;
	need_box();
	snprintf(tgz, sizeof(tgz), "%s/rootfs.tar.gz", workdir);
	/* A comma in the lower directory's path makes overlay's option string invalid. */
	snprintf(dir, sizeof(dir), "%s/cache,bad", workdir);
	setenv("MICROVM_CACHE", dir, 1);
	snprintf(dir, sizeof(dir), "%s/unpack", workdir);
	setenv("TMPDIR", dir, 1);
	vm = box_new(tgz, argv, false, &con);
	snprintf(dir, sizeof(dir), "%s/cache", workdir);
	setenv("MICROVM_CACHE", dir, 1);
	unsetenv("TMPDIR");
	assert_int_equal(mvm_vm_wait(vm, 5000, &reason), 0);
	assert_int_equal(reason, MVM_EXIT_POWEROFF);
	assert_true(console_wait(&con, "fallback-ok", 100));
	snprintf(cmd, sizeof(cmd), "test -e %s/unpack/*/root/w", workdir);	/* the private copy */
	assert_int_equal(run(cmd), 0);
	mvm_vm_free(vm);
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s/unpack)\"", workdir);
	assert_int_equal(run(cmd), 0);
}

static void test_box_readonly_dir(void **state)
{
	static const char *const argv[] = {
		"/bin/sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro; touch /tmp/x && echo tmp-ok;"
		"cat /run/resolv.conf",
		NULL,
	};
	struct console_buf con;
	enum mvm_exit_reason reason;
	mvm_vm *vm;

	(void)state;
	need_box();
	vm = box_new(rootdir, argv, false, &con);
	assert_int_equal(mvm_vm_wait(vm, 5000, &reason), 0);
	assert_true(console_wait(&con, "ro\ntmp-ok\nnameserver 10.0.2.3", 100));
	mvm_vm_free(vm);
}

static void test_box_errors(void **state)
{
	static const char *const missing[] = { "/bin/nope", NULL };
	static const char *const relative[] = { "bin/sh", NULL };
	static const char *const exits[] = {
		"/bin/sh", "-c",
		"if [ -e /tmp/once ]; then echo second-run; exit 0; fi; touch /tmp/once; exit 3", NULL,
	};
	static const char *const reboots[] = { "/bin/sh", "-c", "exit 101", NULL };
	static const char *const exits0[] = { "/bin/sh", "-c", "exit 0", NULL };
	static const char *const powers_off[] = { "/bin/sh", "-c", "exit 100", NULL };
	static const char *const crashes[] = { "/bin/sh", "-c", "kill -SEGV $$", NULL };
	struct console_buf con;
	struct mvm_config cfg;
	enum mvm_exit_reason reason;
	mvm_vm *vm;
	char cmd[2048];
	time_t t0;

	(void)state;
	need_box();
	mvm_config_init(&cfg);
	cfg.rootfs_path = rootdir;
	cfg.box_argv = missing;
	assert_null(mvm_vm_new_ops(&mvm_nsbox_backend, &cfg));
	assert_non_null(strstr(mvm_last_error(), "/bin/nope"));
	cfg.box_argv = relative;
	assert_null(mvm_vm_new_ops(&mvm_nsbox_backend, &cfg));
	cfg.box_argv = missing;
	cfg.rootfs_path = "/nonexistent/rootfs.tar.gz";
	assert_null(mvm_vm_new_ops(&mvm_nsbox_backend, &cfg));
	assert_non_null(strstr(mvm_last_error(), "/nonexistent"));
	cfg.rootfs_path = NULL;		/* and no image in $MICROVM_CACHE/image */
	assert_null(mvm_vm_new_ops(&mvm_nsbox_backend, &cfg));
	assert_non_null(strstr(mvm_last_error(), "make image"));
	/* With a built image, no rootfs means the newest one. */
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/cache/image/old %s/cache/image/new && "
		 "echo garbage > %s/cache/image/old/rootfs.tar.gz && touch -d 2020-01-01 "
		 "%s/cache/image/old/rootfs.tar.gz && cp %s/rootfs.tar.gz %s/cache/image/new/",
		 workdir, workdir, workdir, workdir, workdir, workdir);
	assert_int_equal(run(cmd), 0);
	cfg.box_argv = exits0;
	vm = mvm_vm_new_ops(&mvm_nsbox_backend, &cfg);
	assert_non_null(vm);
	assert_int_equal(mvm_vm_start(vm), 0);
	assert_int_equal(mvm_vm_wait(vm, 5000, &reason), 0);
	assert_int_equal(reason, MVM_EXIT_POWEROFF);
	mvm_vm_free(vm);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/cache/image", workdir);
	assert_int_equal(run(cmd), 0);

	/* PID 1 restarts a program that fails; its clean exit then powers the box off. */
	vm = box_new(rootdir, exits, false, &con);
	assert_int_equal(mvm_vm_wait(vm, 5000, &reason), 0);
	assert_int_equal(reason, MVM_EXIT_POWEROFF);
	assert_true(console_wait(&con, "exited with status 3, restarting", 100));
	assert_true(console_wait(&con, "second-run", 100));
	mvm_vm_free(vm);

	/* The agent's contract: exit 101 asks for a reboot, 100 for power off. */
	vm = box_new(rootdir, reboots, false, &con);
	assert_int_equal(mvm_vm_wait(vm, 5000, &reason), 0);
	assert_int_equal(reason, MVM_EXIT_REBOOT);
	mvm_vm_free(vm);
	vm = box_new(rootdir, powers_off, false, &con);
	assert_int_equal(mvm_vm_wait(vm, 5000, &reason), 0);
	assert_int_equal(reason, MVM_EXIT_POWEROFF);
	mvm_vm_free(vm);

	/* One that keeps crashing is restarted with back-off until stopped. */
	vm = box_new(rootdir, crashes, false, &con);
	assert_true(console_wait(&con, "killed by signal 11, restarting", 3000));
	usleep(300000);		/* into a longer back-off: a stop is still answered at once */
	t0 = time(NULL);
	assert_int_equal(mvm_vm_stop(vm, 4000), 0);
	assert_int_equal(mvm_vm_wait(vm, 1000, &reason), 0);
	assert_int_equal(reason, MVM_EXIT_POWEROFF);
	assert_true(time(NULL) - t0 <= 2);
	mvm_vm_free(vm);
	assert_int_equal(box_processes_now(), 0);	/* at once */
}

static void on_term(int sig)
{
	(void)sig;
}

/* The host's own signal set-up (ignored SIGCHLD, handlers) does not leak into the box. */
static void test_box_host_signals(void **state)
{
	static const char *const argv[] = {
		"/bin/sh", "-c", "echo started; sleep 1000 & wait", NULL,
	};
	struct sigaction ign = { .sa_handler = SIG_IGN }, term = { .sa_handler = on_term };
	struct sigaction old_chld, old_term;
	struct console_buf con;
	enum mvm_exit_reason reason;
	mvm_vm *vm;

	(void)state;
	need_box();
	sigaction(SIGCHLD, &ign, &old_chld);
	sigaction(SIGTERM, &term, &old_term);
	vm = box_new(rootdir, argv, false, &con);
	sigaction(SIGCHLD, &old_chld, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	assert_true(console_wait(&con, "started", 5000));
	assert_int_equal(mvm_vm_stop(vm, 5000), 0);
	assert_int_equal(mvm_vm_wait(vm, 1000, &reason), 0);
	assert_int_equal(reason, MVM_EXIT_POWEROFF);	/* not an error from a failed waitpid */
	mvm_vm_free(vm);
	assert_int_equal(box_processes_now(), 0);
}

/*
 * Rootless: an unprivileged user (nobody, from root here) runs a box from the tar.gz; root in
 * the box is that user outside.  Networking needs /dev/net/tun, which may be root-only, so
 * the box runs without it.  Runs in a forked child that drops its privileges.
 */
static int rootless_child(void)
{
	static const char *const argv[] = {
		"/bin/sh", "-c", "echo uid=$(id -u) map=$(cat /proc/self/uid_map)", NULL,
	};
	char tgz[300], tmp[300];
	struct console_buf con;
	struct mvm_config cfg;
	enum mvm_exit_reason reason;
	mvm_vm *vm;
	int ok;

	snprintf(tgz, sizeof(tgz), "%s/rootfs.tar.gz", workdir);
	snprintf(tmp, sizeof(tmp), "%s/unpack-nobody", workdir);
	setenv("TMPDIR", tmp, 1);
	snprintf(tmp, sizeof(tmp), "%s/cache-nobody", workdir);
	setenv("MICROVM_CACHE", tmp, 1);
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 10;
	/*
	 * Changing credentials made us non-dumpable, which makes /proc/self root's: a user who
	 * simply runs a program (exec) is dumpable and may write its own uid_map.
	 */
	prctl(PR_SET_DUMPABLE, 1);
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_NSBOX;
	cfg.rootfs_path = tgz;
	cfg.box_argv = argv;
	vm = mvm_vm_new_ops(&mvm_nsbox_backend, &cfg);
	if (!vm) {
		fprintf(stderr, "rootless create: %s\n", mvm_last_error());
		return 11;
	}
	memset(&con, 0, sizeof(con));
	pthread_mutex_init(&con.lock, NULL);
	mvm_console_subscribe(vm, console_cb, &con);
	if (mvm_vm_start(vm)) {
		fprintf(stderr, "rootless start: %s\n", mvm_last_error());
		return 12;
	}
	if (mvm_vm_wait(vm, 10000, &reason) || reason != MVM_EXIT_POWEROFF)
		return 13;
	ok = console_wait(&con, "uid=0 map=", 100) && console_wait(&con, " 0 65534 1\n", 100);
	mvm_vm_free(vm);
	return ok ? 0 : 14;
}

static void test_box_rootless(void **state)
{
	char cmd[600];
	int status;
	pid_t pid;

	(void)state;
	need_box();
	if (geteuid() != 0)
		skip();		/* already unprivileged: every other test ran rootless */
	snprintf(cmd, sizeof(cmd), "chmod 755 %s && mkdir -p %s/unpack-nobody %s/cache-nobody && "
		 "chown 65534:65534 %s/unpack-nobody %s/cache-nobody", workdir, workdir, workdir,
		 workdir, workdir);
	assert_int_equal(run(cmd), 0);
	/* Hosts that forbid unprivileged user namespaces: nothing to test there. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(2);
		_exit(unshare(CLONE_NEWUSER) ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WEXITSTATUS(status) == 1)
		skip();		/* no unprivileged user namespaces on this host */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(rootless_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s/unpack-nobody)\"", workdir);
	assert_int_equal(run(cmd), 0);		/* the private copy is gone */
	assert_int_equal(box_processes_now(), 0);
}

/* Where KVM cannot run guest user space (PVM, no /dev/kvm), AUTO picks the box. */
static void test_auto_picks_nsbox(void **state)
{
	static const char *const argv[] = { "/bin/sh", "-c", "exit 0", NULL };
	struct mvm_config cfg;
	mvm_vm *vm;

	(void)state;
	need_box();
	if (access("/sys/module/kvm_pvm", F_OK) && !access("/dev/kvm", R_OK | W_OK))
		skip();		/* a real KVM host: AUTO rightly picks KVM */
	mvm_config_init(&cfg);
	cfg.rootfs_path = rootdir;
	cfg.box_argv = argv;
	cfg.quiet = true;
	vm = mvm_vm_new(&cfg);
	assert_non_null(vm);
	assert_string_equal(mvm_vm_hypervisor(vm), "nsbox");
	mvm_vm_free(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_map),
		cmocka_unit_test(test_box_basics),
		cmocka_unit_test(test_box_net_slirp),
		cmocka_unit_test(test_box_kill_targz),
		cmocka_unit_test(test_box_overlay_fallback),
		cmocka_unit_test(test_box_readonly_dir),
		cmocka_unit_test(test_box_errors),
		cmocka_unit_test(test_box_host_signals),
		cmocka_unit_test(test_box_rootless),
		cmocka_unit_test(test_auto_picks_nsbox),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
