// SPDX-License-Identifier: MIT
/*
 * sandbox.c - the agent's sandbox: capabilities, no_new_privs, dumpable, seccomp
 *
 * Theory of operation
 *
 *   agent_sandbox() runs once, after setup() has opened everything the agent needs (the two
 *   listening sockets, the state and run directories, the secret), on the only thread; the
 *   resolver threads and every OpenVPN started later inherit what it sets:
 *
 *   - capabilities: all dropped, bounding set included, but CAP_NET_ADMIN, which OpenVPN
 *     needs for its tun device and routes (it cannot be opened beforehand: OpenVPN creates
 *     the device when the server's settings arrive), CAP_SETUID and CAP_SETGID for a
 *     profile's "user"/"group" (OpenVPN then drops to that user, keeping CAP_NET_ADMIN),
 *     CAP_KILL to stop an OpenVPN that did, and CAP_SYS_BOOT with --poweroff-on-shutdown.  OpenVPN runs as root, so at execve() it gets the bounding
 *     set, which is now just that;
 *   - PR_SET_NO_NEW_PRIVS: nothing executed later gains privileges (set-uid, file caps);
 *   - PR_SET_DUMPABLE 0: the agent holds VPN passwords (vpn.c wipes them after use), so no
 *     core dump and no ptrace by other processes of the same user;
 *   - one seccomp allow-list for the agent and OpenVPN together (agent_syscalls[] below,
 *     grouped by the module that needs them).  OpenVPN is exec'd under it: a filter survives
 *     execve() and cannot be loosened, so the list is the union, and what it keeps out is
 *     the kernel surface neither needs (mount, ptrace, bpf, module loading, kexec, keyrings,
 *     namespaces, perf, io_uring, ...).  A test wrapper script around OpenVPN (/bin/sh) needs
 *     nothing beyond it.
 *
 *   A violation kills the process with SIGSYS (logged by the kernel, audit type 1326: the
 *   guest's console, or dmesg); MICROVM_SECCOMP=log in the agent's environment logs instead.
 */
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "agent.h"
#include "sandbox/sandbox.h"

static const int agent_syscalls[] = {
	/* loop.c: the epoll loop, signals, timers; main.c: power-off */
	SANDBOX_SYS(epoll_wait), SANDBOX_SYS(epoll_pwait), SANDBOX_SYS(epoll_ctl),
	SANDBOX_SYS(epoll_create1),
	SANDBOX_SYS(signalfd4), SANDBOX_SYS(timerfd_settime), SANDBOX_SYS(timerfd_create),
	SANDBOX_SYS(reboot),		/* --poweroff-on-shutdown (and CAP_SYS_BOOT) */
	SANDBOX_SYS(sync),
	/* control.c, proxy.c: accepted streams, outbound TCP through the tunnel */
	SANDBOX_SYS(accept4), SANDBOX_SYS(accept), SANDBOX_SYS(socket), SANDBOX_SYS(connect),
	SANDBOX_SYS(sendto), SANDBOX_SYS(recvfrom), SANDBOX_SYS(sendmsg), SANDBOX_SYS(recvmsg),
	/* glibc's stub resolver sends the A and AAAA queries together (resolve.c threads) */
	SANDBOX_SYS(sendmmsg), SANDBOX_SYS(recvmmsg),
	SANDBOX_SYS(shutdown), SANDBOX_SYS(setsockopt), SANDBOX_SYS(getsockopt),
	SANDBOX_SYS(getsockname), SANDBOX_SYS(getpeername), SANDBOX_SYS(bind),
	SANDBOX_SYS(listen), SANDBOX_SYS(socketpair), SANDBOX_SYS(fcntl), SANDBOX_SYS(ioctl),
	SANDBOX_SYS(poll), SANDBOX_SYS(ppoll), SANDBOX_SYS(select), SANDBOX_SYS(pselect6),
	/* profiles.c: the profile store (write to a temporary name, rename, list) */
	SANDBOX_SYS(openat), SANDBOX_SYS(open), SANDBOX_SYS(creat), SANDBOX_SYS(mkdir),
	SANDBOX_SYS(mkdirat), SANDBOX_SYS(rename), SANDBOX_SYS(renameat), SANDBOX_SYS(renameat2),
	SANDBOX_SYS(unlink), SANDBOX_SYS(unlinkat), SANDBOX_SYS(getdents64),
	SANDBOX_SYS(fsync), SANDBOX_SYS(fdatasync), SANDBOX_SYS(fchmod), SANDBOX_SYS(chmod),
	SANDBOX_SYS(fchmodat), SANDBOX_SYS(stat), SANDBOX_SYS(lstat), SANDBOX_SYS(statx),
	SANDBOX_SYS(access), SANDBOX_SYS(faccessat), SANDBOX_SYS(faccessat2), SANDBOX_SYS(lseek),
	SANDBOX_SYS(pread64), SANDBOX_SYS(pwrite64), SANDBOX_SYS(ftruncate),
	SANDBOX_SYS(readlink), SANDBOX_SYS(readlinkat), SANDBOX_SYS(getcwd), SANDBOX_SYS(chdir),
	SANDBOX_SYS(umask), SANDBOX_SYS(statfs), SANDBOX_SYS(fstatfs),
	/* resolve.c: getaddrinfo() on worker threads (resolv.conf, hosts, NSS, DNS over UDP:
	 * glibc sends the A and AAAA queries together with sendmmsg) */
	SANDBOX_SYS(clone3), SANDBOX_SYS(clone), SANDBOX_SYS(uname), SANDBOX_SYS(sendmmsg),
	SANDBOX_SYS(recvmmsg),
	/* vpn.c: OpenVPN as a child process, its management socket */
	SANDBOX_SYS(fork), SANDBOX_SYS(vfork), SANDBOX_SYS(execve), SANDBOX_SYS(wait4),
	SANDBOX_SYS(waitid), SANDBOX_SYS(kill), SANDBOX_SYS(setsid), SANDBOX_SYS(prctl),
	SANDBOX_SYS(dup), SANDBOX_SYS(dup2), SANDBOX_SYS(dup3), SANDBOX_SYS(pipe),
	SANDBOX_SYS(pipe2), SANDBOX_SYS(getppid), SANDBOX_SYS(getpgrp), SANDBOX_SYS(setpgid),
	SANDBOX_SYS(getpgid), SANDBOX_SYS(getrlimit), SANDBOX_SYS(setrlimit),
	SANDBOX_SYS(prlimit64),
	/* OpenVPN (and a /bin/sh wrapper in tests): start-up, tun, routes, timers */
	SANDBOX_SYS(arch_prctl), SANDBOX_SYS(set_tid_address), SANDBOX_SYS(getuid),
	SANDBOX_SYS(geteuid), SANDBOX_SYS(getgid), SANDBOX_SYS(getegid), SANDBOX_SYS(getgroups),
	SANDBOX_SYS(getresuid), SANDBOX_SYS(getresgid), SANDBOX_SYS(capget),
	SANDBOX_SYS(sysinfo), SANDBOX_SYS(time), SANDBOX_SYS(times), SANDBOX_SYS(alarm),
	SANDBOX_SYS(setitimer), SANDBOX_SYS(getitimer), SANDBOX_SYS(rt_sigtimedwait),
	SANDBOX_SYS(rt_sigsuspend), SANDBOX_SYS(pause), SANDBOX_SYS(mlock), SANDBOX_SYS(munlock),
	SANDBOX_SYS(mlockall), SANDBOX_SYS(getpriority), SANDBOX_SYS(setpriority),
	SANDBOX_SYS(sched_setaffinity), SANDBOX_SYS(eventfd2), SANDBOX_SYS(membarrier),
	SANDBOX_SYS(fchown), SANDBOX_SYS(chown), SANDBOX_SYS(utimensat), SANDBOX_SYS(flock),
	SANDBOX_SYS(getsid), SANDBOX_SYS(fstat), SANDBOX_SYS(newfstatat),
	/* OpenVPN's --user/--group (CAP_SETUID, CAP_SETGID); capset: it keeps CAP_NET_ADMIN
	 * across the switch (PR_SET_KEEPCAPS) to take its routes down at the end */
	SANDBOX_SYS(setuid), SANDBOX_SYS(setgid), SANDBOX_SYS(setgroups), SANDBOX_SYS(setresuid),
	SANDBOX_SYS(setresgid), SANDBOX_SYS(setreuid), SANDBOX_SYS(setregid), SANDBOX_SYS(capset),
};

/* What the agent and OpenVPN keep (see the top of this file). */
#define AGENT_CAPS	((1ULL << CAP_NET_ADMIN) | (1ULL << CAP_SETUID) | (1ULL << CAP_SETGID) | \
			 (1ULL << CAP_KILL))

/**
 * agent_sandbox() - drop what the agent and OpenVPN do not need (see the top of this file)
 * @a:		agent, set up
 *
 * Return: 0 or -errno (reported); the agent must not go on without its sandbox.
 */
int agent_sandbox(struct agent *a)
{
	struct sandbox_list list = SANDBOX_LIST(agent_syscalls);
	uint64_t keep = AGENT_CAPS;
	int ret;

	if (a->opts.poweroff_on_shutdown)
		keep |= 1ULL << CAP_SYS_BOOT;
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	ret = sandbox_caps_keep(keep);
	if (ret) {
		agent_log(a, "cannot drop capabilities: %s", strerror(-ret));
		return ret;
	}
	ret = sandbox_filter("microvm-agent", &list, 1);
	if (ret) {
		agent_log(a, "cannot install the seccomp filter: %s", strerror(-ret));
		return ret;
	}
	/* One line that says what holds (the image test looks for it on the guest console). */
	agent_log(a, "sandboxed: %s, capabilities net_admin setuid setgid kill%s, no_new_privs",
		  !sandbox_supported() ? "NO seccomp in this kernel" :
		  sandbox_mode() == SANDBOX_LOG ? "seccomp allow-list (log mode)" :
		  "seccomp allow-list", a->opts.poweroff_on_shutdown ? " sys_boot" : "");
	return 0;
}
