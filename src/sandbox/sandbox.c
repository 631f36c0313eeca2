/* SPDX-License-Identifier: MIT */
/*
 * sandbox.c - seccomp allow-lists, no_new_privs and capability dropping.
 *
 * Theory of operation
 * -------------------
 * libmicrovm is a library embedded in other programs, so it never filters the caller's
 * threads or the whole process: a filter is installed without TSYNC, which makes it apply to
 * the calling thread and the threads it creates later, and only threads the library creates
 * call sandbox_thread(), first thing in their start routine, before they touch anything a
 * guest or a peer controls.  Programs that own their process (microvm-agent, the box's
 * processes) call the same functions from their main thread.
 *
 * sandbox_thread() = sandbox_caps_keep(0) + sandbox_filter():
 *   - capabilities: Linux keeps them per thread, so dropping them (bounding set when we may,
 *     ambient, inheritable, permitted, effective) in a library thread leaves the caller's
 *     threads as they were;
 *   - PR_SET_NO_NEW_PRIVS (also per thread), which an unprivileged thread needs before it may
 *     install a filter and which makes execve() unable to grant anything back;
 *   - a seccomp filter: sandbox_common[] (what glibc, pthreads, malloc and the sanitizers'
 *     runtime do behind any code) plus the lists the caller passes, each kept beside the code
 *     that needs its system calls; open()/openat() fail with EACCES instead of killing
 *     (glibc opens files behind the caller's back) unless a list allows them.  Filters
 *     stack: a thread created by a filtered thread
 *     inherits the filter and may only narrow it.
 *
 * A violation kills the whole process (SECCOMP_RET_KILL_PROCESS: a thread of a VMM that does
 * something it never does has been taken over; killing one thread would leave the process in
 * an undefined state).  The kernel logs it (SECCOMP_FILTER_FLAG_LOG): `dmesg | grep 1326`
 * shows "audit: type=1326 ... comm=... syscall=N", and the process's exit status is SIGSYS.
 * MICROVM_SECCOMP=log in the environment turns every filter installed afterwards into a
 * logging one (SCMP_ACT_LOG): the call is allowed and logged the same way, which is how a
 * developer finds what a list misses.
 *
 * A kernel without seccomp filters (CONFIG_SECCOMP_FILTER=n) gets a warning once and no
 * filter; every other failure is an error for the caller, which then refuses to run the thread.
 */
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

/* What any thread does without asking: glibc, pthreads, malloc, stdio, signals. */
static const int sandbox_common[] = {
	SANDBOX_SYS(read),		/* read(2) on the thread's own descriptors */
	SANDBOX_SYS(write),		/* write(2), fprintf(stderr) */
	SANDBOX_SYS(readv),
	SANDBOX_SYS(writev),		/* stdio may gather */
	SANDBOX_SYS(close),
	SANDBOX_SYS(futex),		/* pthread mutexes, condition variables, join */
	SANDBOX_SYS(mmap),		/* malloc: arenas and large blocks */
	SANDBOX_SYS(munmap),
	SANDBOX_SYS(mprotect),		/* malloc: growing a thread arena */
	SANDBOX_SYS(madvise),		/* free(), thread exit (stack MADV_DONTNEED) */
	SANDBOX_SYS(mremap),		/* realloc() of large blocks */
	SANDBOX_SYS(brk),		/* malloc in the main arena */
	SANDBOX_SYS(sched_getaffinity),	/* malloc: arena count (get_nprocs) */
	SANDBOX_SYS(rt_sigprocmask),	/* pthread_sigmask, signal delivery */
	SANDBOX_SYS(rt_sigreturn),	/* return from a signal handler (the vCPU kick) */
	SANDBOX_SYS(sigaltstack),	/* thread exit; the sanitizers' per-thread stacks */
	SANDBOX_SYS(clock_gettime),	/* vDSO fallback */
	SANDBOX_SYS(gettimeofday),
	SANDBOX_SYS(clock_nanosleep),	/* nanosleep(), usleep() */
	SANDBOX_SYS(nanosleep),
	SANDBOX_SYS(sched_yield),
	SANDBOX_SYS(getpid),
	SANDBOX_SYS(gettid),
	SANDBOX_SYS(tgkill),		/* abort(), pthread_kill() (kicking a vCPU) */
	SANDBOX_SYS(rt_sigaction),	/* abort() resets SIGABRT */
	SANDBOX_SYS(getrandom),		/* malloc's tcache randomisation, random ids */
	SANDBOX_SYS(rseq),		/* glibc registers restartable sequences per thread */
	SANDBOX_SYS(set_robust_list),
	SANDBOX_SYS(restart_syscall),
	SANDBOX_SYS(fstat),		/* stdio's first use of a stream */
	SANDBOX_SYS(newfstatat),
	SANDBOX_SYS(exit),		/* thread exit */
	SANDBOX_SYS(exit_group),
#ifdef SANDBOX_ASAN
	/* AddressSanitizer's runtime: its allocator, thread bookkeeping and error reports (which
	 * get EACCES for /proc/self/maps and print without module names). */
	SANDBOX_SYS(readlink),
	SANDBOX_SYS(readlinkat),
	SANDBOX_SYS(prlimit64),
	SANDBOX_SYS(getrlimit),
	SANDBOX_SYS(lseek),
	SANDBOX_SYS(pread64),
	SANDBOX_SYS(mincore),
	SANDBOX_SYS(getppid),
	SANDBOX_SYS(uname),
	SANDBOX_SYS(sched_getparam),
#endif
};

/* Refused with EACCES (rather than killing) unless a list allows them. */
static const int sandbox_fail_open[] = {
	SANDBOX_SYS(openat),
	SANDBOX_SYS(open),
};

/**
 * sandbox_listed() - is @nr in one of @lists or in the common list?
 */
static bool sandbox_listed(int nr, const struct sandbox_list *lists, size_t nlists)
{
	size_t i, j;

	for (j = 0; j < sizeof(sandbox_common) / sizeof(sandbox_common[0]); j++)
		if (sandbox_common[j] == nr)
			return true;
	for (i = 0; i < nlists; i++)
		for (j = 0; j < lists[i].n; j++)
			if (lists[i].nr[j] == nr)
				return true;
	return false;
}

/**
 * sandbox_mode() - what a violation does, from MICROVM_SECCOMP
 *
 * Return: SANDBOX_LOG for "log", SANDBOX_KILL otherwise ("kill", unset, or anything else,
 * which is warned about once: a typo must not open the sandbox).
 */
enum sandbox_mode sandbox_mode(void)
{
	static atomic_int warned;
	const char *v = getenv("MICROVM_SECCOMP");

	if (!v || !*v || !strcmp(v, "kill"))
		return SANDBOX_KILL;
	if (!strcmp(v, "log")) {
		if (!atomic_exchange(&warned, 1))
			fprintf(stderr, "microvm: MICROVM_SECCOMP=log: system calls outside the "
				"sandbox lists are logged (dmesg), not stopped\n");
		return SANDBOX_LOG;
	}
	if (!atomic_exchange(&warned, 1))
		fprintf(stderr, "microvm: MICROVM_SECCOMP=%s is not kill or log; using kill\n", v);
	return SANDBOX_KILL;
}

/**
 * sandbox_supported() - does this kernel have seccomp filters?
 *
 * Return: false if PR_GET_SECCOMP fails with EINVAL (CONFIG_SECCOMP=n).
 */
bool sandbox_supported(void)
{
	return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 || errno != EINVAL;
}

/**
 * sandbox_no_filters() - does this kernel lack seccomp filters altogether?
 *
 * Return: true if so, warning once.
 */
static bool sandbox_no_filters(void)
{
	static atomic_int warned;

	if (sandbox_supported())
		return false;
	if (!atomic_exchange(&warned, 1))
		fprintf(stderr, "microvm: this kernel has no seccomp: threads run unfiltered\n");
	return true;
}

/**
 * sandbox_filter() - no_new_privs and a seccomp allow-list for the calling thread
 * @who:	name for error messages ("vCPU", "SOCKS5 loop", ...)
 * @lists:	allow-lists on top of sandbox_common[]
 * @nlists:	how many
 *
 * The filter applies to the calling thread and to the threads and processes it creates
 * later; other threads are untouched (no TSYNC).
 *
 * Return: 0 (also on a kernel without seccomp) or -errno, with a message on stderr.
 */
int sandbox_filter(const char *who, const struct sandbox_list *lists, size_t nlists)
{
	enum sandbox_mode mode = sandbox_mode();
	scmp_filter_ctx ctx;
	size_t i, j;
	int ret;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		ret = -errno;
		fprintf(stderr, "microvm: %s: PR_SET_NO_NEW_PRIVS: %s\n", who, strerror(-ret));
		return ret;
	}
	if (sandbox_no_filters())
		return 0;
	ctx = seccomp_init(mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		fprintf(stderr, "microvm: %s: seccomp_init failed\n", who);
		return -ENOMEM;
	}
	/* Have the kernel log every action but "allow", kills included. */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
	for (j = 0; !ret && j < sizeof(sandbox_common) / sizeof(sandbox_common[0]); j++)
		if (sandbox_common[j] >= 0)
			ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sandbox_common[j], 0);
	for (i = 0; !ret && i < nlists; i++)
		for (j = 0; !ret && j < lists[i].n; j++)
			if (lists[i].nr[j] >= 0)
				ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, lists[i].nr[j], 0);
	/* glibc opens files behind the caller's back (malloc reads
	 * /proc/sys/vm/overcommit_memory when it trims a thread's heap; strerror() looks for
	 * its catalog): a thread without file access gets EACCES for those, not death. */
	for (j = 0; !ret && j < sizeof(sandbox_fail_open) / sizeof(sandbox_fail_open[0]); j++)
		if (sandbox_fail_open[j] >= 0 &&
		    !sandbox_listed(sandbox_fail_open[j], lists, nlists))
			ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), sandbox_fail_open[j], 0);
	if (!ret)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	if (ret) {
		fprintf(stderr, "microvm: %s: cannot install the seccomp filter: %s\n", who,
			strerror(-ret));
		return ret;
	}
	return 0;
}

/**
 * sandbox_caps_keep() - drop every capability of the calling thread but @keep
 * @keep:	bit mask of CAP_* numbers to keep (1ULL << CAP_NET_ADMIN, ...)
 *
 * The bounding set is narrowed first (when the thread holds CAP_SETPCAP), so that nothing the
 * thread executes later can regain what it dropped; then ambient, inheritable, permitted and
 * effective sets.  Capabilities are per thread: other threads keep theirs.
 *
 * Return: 0 or -errno.
 */
int sandbox_caps_keep(uint64_t keep)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	int cap;

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	if (data[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP)) {
		for (cap = 0; cap < 64; cap++) {
			int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

			if (r < 0)
				break;		/* past the last capability this kernel knows */
			if (r == 1 && !(keep & (1ULL << cap)) &&
			    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0))
				return -errno;
		}
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (cap = 0; cap < 2; cap++) {
		uint32_t k = (uint32_t)(keep >> (32 * cap));

		data[cap].permitted &= k;
		data[cap].effective = data[cap].permitted;
		data[cap].inheritable = 0;
	}
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

/**
 * sandbox_thread() - the usual start of a library thread: no capabilities, then the filter
 * @who:	name for error messages
 * @lists:	the thread's allow-lists (on top of the common one)
 * @nlists:	how many
 *
 * Return: 0 or -errno (reported on stderr); the caller must not go on unfiltered.
 */
int sandbox_thread(const char *who, const struct sandbox_list *lists, size_t nlists)
{
	int ret = sandbox_caps_keep(0);

	if (ret) {
		fprintf(stderr, "microvm: %s: cannot drop capabilities: %s\n", who, strerror(-ret));
		return ret;
	}
	return sandbox_filter(who, lists, nlists);
}

/**
 * sandbox_thread_start() - create a library thread that takes no signals
 * @thread:	the new thread's id, filled on success
 * @fn:		start routine (calls sandbox_thread() first thing)
 * @arg:	its argument
 *
 * A library thread inherits the creating thread's signal mask; it would then take signals
 * meant for the application (SIGINT, SIGTERM, SIGPIPE from its sockets), run the
 * application's handlers under the thread's seccomp filter and namespace, and die there on a
 * call the filter does not allow.  The mask is full for the create only: the caller's mask is
 * restored before returning.
 *
 * Return: 0 or -errno from pthread_create().
 */
int sandbox_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}
