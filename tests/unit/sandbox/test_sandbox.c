/* SPDX-License-Identifier: MIT */
/*
 * test_sandbox.c - the seccomp filter of src/sandbox: each case forks, so that a filter or a
 * death stays in the child.
 *
 * - a thread filtered with sandbox_thread() that calls ptrace() or mount() is killed by SIGSYS;
 * - its allowed calls (the common list plus its own) work; open() fails with EACCES;
 * - MICROVM_SECCOMP=log lets the forbidden call through (it fails for its own reasons);
 * - the filter, no_new_privs and the dropped capabilities apply to the filtered thread only:
 *   the thread that created it keeps Seccomp: 0 and its capabilities (needs root for the
 *   capability half, which CI and the dev machines are; said when skipped).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox/sandbox.h"

static const int test_syscalls[] = {
	SANDBOX_SYS(getppid),
};

/**
 * run_child() - run @fn in a forked child and return its wait status
 */
static int run_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());	/* _exit: no atexit handlers (LeakSanitizer) under the filter */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/**
 * status_field() - a "Name:\tvalue" line of /proc/self/task/TID/status, as a number
 */
static unsigned long long status_field(pid_t tid, const char *name, int base)
{
	char path[64], line[256];
	unsigned long long v = ~0ULL;
	size_t n = strlen(name);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':')
			v = strtoull(line + n + 1, NULL, base);
	fclose(f);
	return v;
}

static int child_ptrace(void)
{
	struct sandbox_list l = SANDBOX_LIST(test_syscalls);

	if (sandbox_thread("test", &l, 1))
		return 2;
	syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL);
	return 0;	/* not reached: killed */
}

static int child_mount(void)
{
	if (sandbox_thread("test", NULL, 0))
		return 2;
	mount("none", "/nonexistent", "tmpfs", 0, NULL);
	return 0;
}

static int child_allowed(void)
{
	struct sandbox_list l = SANDBOX_LIST(test_syscalls);
	void *p;

	if (sandbox_thread("test", &l, 1))
		return 2;
	p = malloc(1 << 20);		/* common list: mmap */
	if (!p || getppid() <= 0)	/* own list */
		return 3;
	free(p);
	return 0;
}

static int child_open(void)
{
	int fd;

	if (sandbox_thread("test", NULL, 0))
		return 2;
	fd = open("/proc/self/status", O_RDONLY);	/* refused, not fatal: glibc does this */
	return fd < 0 && errno == EACCES ? 0 : 3;
}

static int child_log(void)
{
	setenv("MICROVM_SECCOMP", "log", 1);
	if (sandbox_thread("test", NULL, 0))
		return 2;
	mount("none", "/nonexistent", "tmpfs", 0, NULL);	/* logged, allowed, fails */
	return 0;
}

static void test_forbidden_call_kills(void **state)
{
	int st;

	(void)state;
	st = run_child(child_ptrace);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	st = run_child(child_mount);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void test_allowed_calls_work(void **state)
{
	int st = run_child(child_allowed);

	(void)state;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_open_is_refused_not_fatal(void **state)
{
	int st = run_child(child_open);

	(void)state;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_log_mode_lets_through(void **state)
{
	int st = run_child(child_log);

	(void)state;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

struct thread_result {
	pid_t tid;
	unsigned long long seccomp, nnp, capeff;
	int ret;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ready, done;
};

static void *filtered_thread(void *arg)
{
	struct thread_result *r = arg;

	r->tid = (pid_t)syscall(SYS_gettid);
	r->ret = sandbox_thread("test thread", NULL, 0);	/* may not open files now */
	pthread_mutex_lock(&r->lock);
	r->ready = 1;
	pthread_cond_broadcast(&r->cond);
	while (!r->done)	/* stay alive while the main thread looks */
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static int child_thread_scope(void)
{
	struct thread_result r = { .lock = PTHREAD_MUTEX_INITIALIZER,
				   .cond = PTHREAD_COND_INITIALIZER };
	pid_t self = (pid_t)syscall(SYS_gettid);
	unsigned long long cap_before = status_field(self, "CapEff", 16);
	pthread_t t;

	if (pthread_create(&t, NULL, filtered_thread, &r))
		return 10;
	pthread_mutex_lock(&r.lock);
	while (!r.ready)
		pthread_cond_wait(&r.cond, &r.lock);
	pthread_mutex_unlock(&r.lock);
	r.seccomp = status_field(r.tid, "Seccomp", 10);
	r.nnp = status_field(r.tid, "NoNewPrivs", 10);
	r.capeff = status_field(r.tid, "CapEff", 16);
	if (r.ret || r.seccomp != 2 || r.nnp != 1 || r.capeff != 0)
		return 11;
	/* The creating thread is untouched: no filter, no_new_privs off, same capabilities. */
	if (status_field(self, "Seccomp", 10) != 0 || status_field(self, "NoNewPrivs", 10) != 0)
		return 12;
	if (status_field(self, "CapEff", 16) != cap_before)
		return 13;
	syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL);	/* allowed here */
	pthread_mutex_lock(&r.lock);
	r.done = 1;
	pthread_cond_broadcast(&r.cond);
	pthread_mutex_unlock(&r.lock);
	pthread_join(t, NULL);
	return 0;
}

static void test_filter_is_per_thread(void **state)
{
	int st = run_child(child_thread_scope);

	(void)state;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int child_caps(void)
{
	pid_t self = (pid_t)syscall(SYS_gettid);

	if (sandbox_caps_keep(1ULL << 12 /* CAP_NET_ADMIN */))
		return 2;
	if (status_field(self, "CapEff", 16) != (1ULL << 12) ||
	    status_field(self, "CapPrm", 16) != (1ULL << 12) ||
	    status_field(self, "CapBnd", 16) != (1ULL << 12))
		return 3;
	return 0;
}

static void test_caps_keep(void **state)
{
	int st;

	(void)state;
	if (geteuid() != 0) {
		skip();	/* needs root: an unprivileged process has no capabilities to drop */
		return;
	}
	st = run_child(child_caps);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forbidden_call_kills),
		cmocka_unit_test(test_allowed_calls_work),
		cmocka_unit_test(test_open_is_refused_not_fatal),
		cmocka_unit_test(test_log_mode_lets_through),
		cmocka_unit_test(test_filter_is_per_thread),
		cmocka_unit_test(test_caps_keep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
