/* SPDX-License-Identifier: MIT */
/*
 * test_cpu_sandbox.c - a vCPU thread's seccomp list covers what runs on it besides KVM_RUN
 * (tested with /dev/kvm by tests/integration/test_vsock.py): the device models a vCPU
 * emulates (virtio-rng's getrandom(), virtio-vsock's sends and eventfd kicks, the console's
 * mutex and condition variable), the kick signal, logging, malloc - while a call it never
 * makes (socket()) kills the process.  Each case runs in a forked child.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/kvm.h>

#include "kvm/kvm.h"

static volatile sig_atomic_t kicked;

static void on_kick(int sig)
{
	(void)sig;
	kicked = 1;
}

/* What a vCPU thread does; returns NULL when all of it worked under the filter. */
static void *vcpu_like(void *arg)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	int *fds = arg;
	uint8_t rnd[64];
	uint64_t one = 1;
	char *big;

	if (kvm_cpu_sandbox(0))
		return (void *)(intptr_t)2;
	if (ioctl(fds[0], KVM_RUN, 0) == 0 || errno != ENOTTY)	/* not a vCPU fd here */
		return (void *)(intptr_t)3;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))	/* virtio-rng */
		return (void *)(intptr_t)4;
	if (write(fds[1], &one, sizeof(one)) != sizeof(one))		/* kick a device thread */
		return (void *)(intptr_t)5;
	if (send(fds[2], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)	/* vsock engine */
		return (void *)(intptr_t)6;
	pthread_mutex_lock(&lock);					/* console ring */
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	pthread_kill(pthread_self(), SIGUSR1);				/* the kick signal */
	big = malloc(8 << 20);
	if (!big || !kicked)
		return (void *)(intptr_t)7;
	free(big);
	fprintf(stderr, "vcpu-like thread: all done under the filter\n");
	return NULL;
}

static void *vcpu_forbidden(void *arg)
{
	(void)arg;
	if (kvm_cpu_sandbox(1))
		return (void *)(intptr_t)2;
	socket(AF_INET, SOCK_STREAM, 0);	/* never done by a vCPU: SIGSYS */
	return NULL;
}

static int child(void *(*fn)(void *))
{
	int fds[4], sv[2];
	pthread_t t;
	void *ret;

	signal(SIGUSR1, on_kick);
	fds[0] = eventfd(0, 0);		/* any fd that is not a vCPU */
	fds[1] = eventfd(0, EFD_NONBLOCK);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 10;
	fds[2] = sv[0];
	if (pthread_create(&t, NULL, fn, fds))
		return 11;
	pthread_join(t, &ret);
	return (int)(intptr_t)ret;
}

static int run(void *(*fn)(void *))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child(fn));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_vcpu_work_allowed(void **state)
{
	int st = run(vcpu_like);

	(void)state;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_vcpu_socket_kills(void **state)
{
	int st = run(vcpu_forbidden);

	(void)state;
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vcpu_work_allowed),
		cmocka_unit_test(test_vcpu_socket_kills),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
