/* SPDX-License-Identifier: MIT */
/*
 * sandbox.h - seccomp allow-lists, no_new_privs and capability dropping for the threads and
 * processes this project creates (sandbox.c; docs/security.md, "Sandboxing").
 *
 * A module that owns a thread keeps that thread's allow-list beside the code that needs each
 * system call, as an array of SANDBOX_SYS() entries with a comment per line, and calls
 * sandbox_thread() first thing in the thread.  The common set every thread needs (glibc,
 * pthreads, malloc, the sanitizers' runtime) lives in sandbox.c.
 */
#ifndef MVM_SANDBOX_H
#define MVM_SANDBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <seccomp.h>

/* One allowed system call, by name: SANDBOX_SYS(ioctl). */
#define SANDBOX_SYS(name)	SCMP_SYS(name)

/**
 * struct sandbox_list - an allow-list owned by one module
 * @nr:		system call numbers (SANDBOX_SYS())
 * @n:		how many
 */
struct sandbox_list {
	const int *nr;
	size_t n;
};

#define SANDBOX_LIST(arr)	((struct sandbox_list){ (arr), sizeof(arr) / sizeof((arr)[0]) })

/* What a violation does (MICROVM_SECCOMP=kill|log; kill is the default). */
enum sandbox_mode {
	SANDBOX_KILL,	/* SECCOMP_RET_KILL_PROCESS, logged by the kernel (audit type 1326) */
	SANDBOX_LOG,	/* allowed, but logged by the kernel: for finding what a list misses */
};

enum sandbox_mode sandbox_mode(void);
bool sandbox_supported(void);

int sandbox_filter(const char *who, const struct sandbox_list *lists, size_t nlists);
int sandbox_caps_keep(uint64_t keep);
int sandbox_thread(const char *who, const struct sandbox_list *lists, size_t nlists);
int sandbox_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

#endif
