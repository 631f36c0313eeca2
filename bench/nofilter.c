/* SPDX-License-Identifier: MIT */
/*
 * nofilter.c - LD_PRELOAD shim for bench/socks_count.sh: libseccomp calls that succeed without
 * installing a filter.
 *
 * Valgrind does not implement the seccomp() system call, so under callgrind every sandboxed
 * thread of `microvm up` would fail to start (and a filter installed through prctl() would
 * judge valgrind's own system calls).  Preloaded into the process under callgrind only, this
 * makes the sandbox's seccomp_init/attr_set/rule_add/load succeed and do nothing: the filter
 * runs in the kernel, so leaving it out does not change the user-space instructions that
 * callgrind counts.  Capabilities and no_new_privs are still applied.  Never used outside
 * that benchmark; the system-call counts come from a normal, filtered run.
 */
#include <seccomp.h>
#include <stdint.h>

static int nofilter_ctx;

scmp_filter_ctx seccomp_init(uint32_t def_action)
{
	(void)def_action;
	return &nofilter_ctx;
}

int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value)
{
	(void)ctx;
	(void)attr;
	(void)value;
	return 0;
}

int seccomp_rule_add(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt, ...)
{
	(void)ctx;
	(void)action;
	(void)syscall;
	(void)arg_cnt;
	return 0;
}

int seccomp_load(const scmp_filter_ctx ctx)
{
	(void)ctx;
	return 0;
}

void seccomp_release(scmp_filter_ctx ctx)
{
	(void)ctx;
}
