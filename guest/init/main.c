// SPDX-License-Identifier: MIT
/*
 * main.c - microvm-init, PID 1 of the microvm guest
 *
 * Theory of operation
 *
 *   The kernel starts /init from the initramfs (the rootfs tarball has the same binary as
 *   /sbin/init for the namespace backend and WSL2). Init does, in order:
 *
 *   1. mounts: proc, sysfs, devtmpfs on /dev, devpts, tmpfs on /dev/shm, /run and /tmp;
 *      failures are logged and skipped, so the same binary works inside a user namespace
 *      where some of these are not allowed. If the kernel could not give init a console
 *      (no /dev/console in the initramfs), init opens /dev/console itself.
 *   2. /dev/net/tun for OpenVPN (devtmpfs normally has it; created if missing).
 *   3. options: microvm.* tokens from /proc/cmdline, then the same tokens from init's own
 *      argv (how the namespace backend passes them); see cmdline.c.
 *   4. clock (microvm.time=, if the guest clock is behind), hostname "microvm", entropy
 *      from virtio-rng (/dev/hwrng, credited with RNDADDENTROPY).
 *   5. network: lo up; eth0 10.0.2.15/24 via 10.0.2.2, /etc/resolv.conf with 10.0.2.3
 *      (microvm.net=none skips eth0; the namespace backend configures its own).
 *   6. supervision: one loop on a signalfd. The agent (/usr/bin/microvm-agent
 *      --transport vsock|tcp) is started, and restarted with exponential back-off when it
 *      dies (supervise.c), with how the last run ended in its environment
 *      (MICROVM_AGENT_PREVIOUS: the new agent tells the host why the VPN is down; OpenVPN
 *      itself ends with the agent, by its parent-death signal); every child is reaped. The
 *      agent ends the machine by exiting with INIT_EXIT_POWEROFF (100) or INIT_EXIT_REBOOT
 *      (101). SIGTERM and SIGUSR2 power off, SIGINT (also Ctrl-Alt-Del) reboots.
 *   7. shutdown: SIGTERM to everything, up to 3 s to exit, SIGKILL, sync, then
 *      reboot(RB_POWER_OFF / RB_AUTOBOOT). When not PID 1 (tests) or when reboot() is not
 *      permitted (a PID namespace without CAP_SYS_BOOT), init exits instead: status 0 for
 *      power off, 1 for reboot.
 *
 *   Every message goes to the console with the prefix "microvm-init: ". The lines
 *   "microvm-init: agent started", "microvm-init: powering off" and "microvm-init:
 *   rebooting" are stable (tests and VMMs may look for them).
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/random.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

/* A run of the agent this long resets the back-off. */
#define AGENT_STABLE_MS 10000
/* How long processes get between SIGTERM and SIGKILL at shutdown. */
#define SHUTDOWN_GRACE_MS 3000

/**
 * struct init_state - the supervisor's state
 * @opts:		options from the command line
 * @backoff:		agent restart delay state
 * @pid1:		running as PID 1 (else: a test run, never reboot())
 * @agent_pid:		running agent, 0 if none
 * @agent_started:	monotonic ms of the agent's start
 * @restart_at:		monotonic ms of the pending restart, 0 if none
 */
struct init_state {
	struct init_opts opts;
	struct init_backoff backoff;
	bool pid1;
	pid_t agent_pid;
	uint64_t agent_started;
	uint64_t restart_at;
};

/**
 * ilog() - log a line to the console with the "microvm-init: " prefix
 * @fmt:	printf format, no trailing newline
 */
__attribute__((format(printf, 1, 2)))
static void ilog(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "microvm-init: ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	/* One write per line so that lines from init and the agent do not interleave. */
	if (write(STDERR_FILENO, line, strlen(line)) < 0)
		return;
}

/**
 * now_ms() - monotonic clock in milliseconds
 *
 * Return: milliseconds since boot
 */
static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/**
 * mount_one() - create @dir and mount a file system on it, logging failures
 * @src:	source (file system name)
 * @dir:	mount point
 * @type:	file system type
 * @flags:	mount flags
 * @data:	file system options
 */
static void mount_one(const char *src, const char *dir, const char *type, unsigned long flags,
		      const char *data)
{
	if (mkdir(dir, 0755) && errno != EEXIST)
		ilog("mkdir %s: %s", dir, strerror(errno));
	if (mount(src, dir, type, flags, data) && errno != EBUSY)
		ilog("mount %s on %s: %s", type, dir, strerror(errno));
}

/**
 * mount_all() - the pseudo file systems every guest program expects
 */
static void mount_all(void)
{
	const unsigned long nsx = MS_NOSUID | MS_NOEXEC | MS_NODEV;

	mount_one("proc", "/proc", "proc", nsx, NULL);
	mount_one("sysfs", "/sys", "sysfs", nsx, NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
	mount_one("tmpfs", "/dev/shm", "tmpfs", nsx, "mode=1777");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
}

/**
 * console_fds() - make sure fds 0, 1 and 2 are open on the console
 *
 * The kernel opens /dev/console for init only if the initramfs has that node; with
 * devtmpfs mounted it exists now.
 */
static void console_fds(void)
{
	int fd;

	if (fcntl(STDERR_FILENO, F_GETFD) >= 0 && fcntl(STDIN_FILENO, F_GETFD) >= 0)
		return;
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/**
 * make_tun_node() - /dev/net/tun (character device 10:200) for OpenVPN
 */
static void make_tun_node(void)
{
	if (!access("/dev/net/tun", F_OK))
		return;
	if (mkdir("/dev/net", 0755) && errno != EEXIST)
		ilog("mkdir /dev/net: %s", strerror(errno));
	if (mknod("/dev/net/tun", S_IFCHR | 0666, makedev(10, 200)))
		ilog("mknod /dev/net/tun: %s", strerror(errno));
}

/**
 * report_opt() - init_cmdline_parse() reporter: log the message
 * @ctx:	unused
 * @msg:	message
 */
static void report_opt(void *ctx, const char *msg)
{
	(void)ctx;
	ilog("%s", msg);
}

/**
 * read_options() - defaults, then /proc/cmdline, then init's own arguments
 * @o:		options to fill
 * @argc:	init's argc
 * @argv:	init's argv (microvm.KEY=VALUE tokens)
 */
static void read_options(struct init_opts *o, int argc, char **argv)
{
	char buf[4096];
	ssize_t n = -1;
	int fd, i;

	init_opts_default(o);
	fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n >= 0) {
		buf[n] = '\0';
		init_cmdline_parse(o, buf, report_opt, NULL);
	}
	for (i = 1; i < argc; i++)
		init_cmdline_parse(o, argv[i], report_opt, NULL);
	init_opts_finish(o);
}

/**
 * set_clock() - move the wall clock forward to microvm.time= if it is behind
 * @o:		options
 *
 * OpenVPN checks certificate validity against the wall clock; a guest without an RTC
 * (QEMU microvm with rtc=off, TCG) starts in 1970.
 */
static void set_clock(const struct init_opts *o)
{
	struct timespec ts;

	if (!o->time || clock_gettime(CLOCK_REALTIME, &ts) || ts.tv_sec >= o->time)
		return;
	ts.tv_sec = (time_t)o->time;
	ts.tv_nsec = 0;
	if (clock_settime(CLOCK_REALTIME, &ts))
		ilog("setting the clock: %s", strerror(errno));
}

/**
 * seed_entropy() - feed bytes from virtio-rng into the kernel pool, credited
 */
static void seed_entropy(void)
{
	union {
		struct rand_pool_info info;
		unsigned char raw[sizeof(struct rand_pool_info) + 64];
	} u;
	struct timespec tick = { .tv_nsec = 20 * 1000 * 1000 };
	ssize_t n = -1;
	int fd, i;

	fd = open("/dev/hwrng", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ilog("no /dev/hwrng (%s): entropy from the kernel alone", strerror(errno));
		return;
	}
	/* /dev/hwrng has no poll(): retry a non-blocking read for up to a second. */
	for (i = 0; i < 50; i++) {
		n = read(fd, u.info.buf, 64);
		if (n > 0 || (errno != EAGAIN && errno != EINTR))
			break;
		nanosleep(&tick, NULL);
	}
	close(fd);
	if (n <= 0) {
		ilog("/dev/hwrng gave no data");
		return;
	}
	u.info.entropy_count = (int)n * 8;
	u.info.buf_size = (int)n;
	fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, RNDADDENTROPY, &u.info))
		ilog("RNDADDENTROPY: %s", strerror(errno));
	else
		ilog("seeded %zd bytes of entropy from /dev/hwrng", n);
	if (fd >= 0)
		close(fd);
	explicit_bzero(&u, sizeof(u));
}

/**
 * write_resolv_conf() - name server for the guest's resolver
 * @o:		options (dns)
 */
static void write_resolv_conf(const struct init_opts *o)
{
	char line[64];
	int fd, len;

	/* /etc/resolv.conf is a link to /run/resolv.conf in the image (read-only roots). */
	fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ilog("/etc/resolv.conf: %s", strerror(errno));
		return;
	}
	len = snprintf(line, sizeof(line), "nameserver %s\n", inet_ntoa(o->dns));
	if (write(fd, line, (size_t)len) != len)
		ilog("/etc/resolv.conf: short write");
	close(fd);
}

/**
 * setup_network() - loopback, then the NIC if microvm.net=static
 * @o:		options
 */
static void setup_network(const struct init_opts *o)
{
	char addr[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
	int rc;

	rc = init_net_up("lo");
	if (rc)
		ilog("lo up: %s", strerror(-rc));
	if (!o->net)
		return;
	rc = init_net_configure(o);
	inet_ntop(AF_INET, &o->addr, addr, sizeof(addr));
	inet_ntop(AF_INET, &o->gw, gw, sizeof(gw));
	if (rc)
		ilog("%s %s/%u via %s: %s", o->ifname, addr, o->prefix, gw, strerror(-rc));
	else
		ilog("%s %s/%u via %s", o->ifname, addr, o->prefix, gw);
	write_resolv_conf(o);
}

/**
 * agent_start() - fork and exec the agent
 * @s:		state
 */
static void agent_start(struct init_state *s)
{
	const char *argv[8];
	sigset_t all;
	pid_t pid;
	int fd;

	s->restart_at = 0;
	if (init_agent_argv(&s->opts, argv, sizeof(argv) / sizeof(argv[0])) < 0)
		return;
	pid = fork();
	if (pid < 0) {
		ilog("fork: %s", strerror(errno));
		s->restart_at = now_ms() + init_backoff_next(&s->backoff, 0);
		return;
	}
	if (pid == 0) {
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		setsid();
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0 && fd != STDIN_FILENO) {
			dup2(fd, STDIN_FILENO);
			close(fd);
		}
		execv(argv[0], (char *const *)argv);
		ilog("exec %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	s->agent_pid = pid;
	s->agent_started = now_ms();
	ilog("agent started (pid %d, %s %s %s%s%s)", (int)pid, argv[0], argv[1], argv[2],
	     s->opts.listen[0] ? " --listen " : "", s->opts.listen);
}

/**
 * describe_status() - "exit status N" or "signal N"
 * @wstatus:	status from waitpid()
 * @buf:	output
 * @len:	size of @buf
 *
 * Return: @buf
 */
static const char *describe_status(int wstatus, char *buf, size_t len)
{
	if (WIFEXITED(wstatus))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus))
		snprintf(buf, len, "signal %d", WTERMSIG(wstatus));
	else
		snprintf(buf, len, "status 0x%x", (unsigned int)wstatus);
	return buf;
}

/**
 * shutdown_machine() - stop every process and power off or reboot
 * @s:		state
 * @action:	INIT_POWEROFF or INIT_REBOOT
 */
__attribute__((noreturn))
static void shutdown_machine(struct init_state *s, enum init_action action)
{
	uint64_t deadline = now_ms() + SHUTDOWN_GRACE_MS;
	struct timespec tick = { .tv_nsec = 20 * 1000 * 1000 };
	int rc;

	ilog("%s", action == INIT_REBOOT ? "rebooting" : "powering off");
	if (s->agent_pid > 0)
		kill(s->agent_pid, SIGTERM);
	if (s->pid1)
		kill(-1, SIGTERM);
	while (now_ms() < deadline) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);

		if (pid < 0 && errno == ECHILD)
			break;
		if (pid <= 0)
			nanosleep(&tick, NULL);
	}
	if (s->pid1)
		kill(-1, SIGKILL);
	else if (s->agent_pid > 0)
		kill(s->agent_pid, SIGKILL);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	sync();
	if (s->pid1) {
		rc = reboot(action == INIT_REBOOT ? RB_AUTOBOOT : RB_POWER_OFF);
		ilog("reboot(): %s; exiting", rc ? strerror(errno) : "returned");
	}
	_exit(action == INIT_REBOOT ? 1 : 0);
}

/**
 * reap() - collect every exited child; act on the agent's end
 * @s:		state
 */
static void reap(struct init_state *s)
{
	char what[32], end[96];
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
		uint64_t ran;
		unsigned int delay;

		if (pid != s->agent_pid) {
			if (s->opts.debug)
				ilog("reaped pid %d (%s)", (int)pid,
				     describe_status(wstatus, what, sizeof(what)));
			continue;
		}
		s->agent_pid = 0;
		ran = now_ms() - s->agent_started;
		describe_status(wstatus, what, sizeof(what));
		switch (init_exit_action(wstatus)) {
		case INIT_POWEROFF:
			ilog("agent asked for power off (%s)", what);
			shutdown_machine(s, INIT_POWEROFF);
		case INIT_REBOOT:
			ilog("agent asked for reboot (%s)", what);
			shutdown_machine(s, INIT_REBOOT);
		case INIT_RESTART:
			delay = init_backoff_next(&s->backoff, ran);
			init_describe_end(wstatus, ran, end, sizeof(end));
			ilog("agent %s; restarting it in %u ms", end, delay);
			if (setenv(INIT_AGENT_PREVIOUS_ENV, end, 1))
				ilog("setenv: %s", strerror(errno));
			s->restart_at = now_ms() + delay;
			break;
		}
	}
}

/**
 * supervise() - the main loop: signals, reaping, agent restarts
 * @s:		state
 * @sfd:	signalfd for the blocked signals
 */
__attribute__((noreturn))
static void supervise(struct init_state *s, int sfd)
{
	for (;;) {
		struct pollfd pfd = { .fd = sfd, .events = POLLIN };
		struct signalfd_siginfo si;
		int timeout = -1;

		if (s->restart_at) {
			uint64_t now = now_ms();

			timeout = s->restart_at > now ? (int)(s->restart_at - now) : 0;
		}
		if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
			ilog("poll: %s", strerror(errno));
		if (s->restart_at && now_ms() >= s->restart_at)
			agent_start(s);
		if (!(pfd.revents & POLLIN))
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(s);
			break;
		case SIGTERM:
		case SIGUSR2:
			shutdown_machine(s, INIT_POWEROFF);
		case SIGINT:
			shutdown_machine(s, INIT_REBOOT);
		default:
			break;
		}
	}
}

/**
 * main() - microvm-init
 * @argc:	argument count
 * @argv:	microvm.KEY=VALUE options (in addition to /proc/cmdline)
 *
 * Return: does not return as PID 1; otherwise the shutdown status (see the top comment)
 */
int main(int argc, char **argv)
{
	struct init_state s = { .pid1 = getpid() == 1 };
	sigset_t set;
	int sfd;

	umask(022);
	if (chdir("/"))
		return 1;
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	mount_all();
	console_fds();
	ilog("starting (pid %d)", (int)getpid());
	make_tun_node();
	read_options(&s.opts, argc, argv);
	if (s.opts.debug)
		ilog("options: agent=%s listen=%s net=%s ifname=%s backoff=%u..%u ms",
		     s.opts.agent == INIT_AGENT_TCP ? "tcp" :
		     s.opts.agent == INIT_AGENT_NONE ? "none" : "vsock",
		     s.opts.listen[0] ? s.opts.listen : "(default)", s.opts.net ? "static" : "none",
		     s.opts.ifname, s.opts.backoff_min_ms, s.opts.backoff_max_ms);
	set_clock(&s.opts);
	if (s.pid1 && sethostname("microvm", 7))
		ilog("sethostname: %s", strerror(errno));
	seed_entropy();
	setup_network(&s.opts);

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		ilog("signalfd: %s", strerror(errno));
		return 1;
	}
	/* Ctrl-Alt-Del (and the VMM's equivalent) becomes SIGINT to PID 1. */
	if (s.pid1)
		reboot(RB_DISABLE_CAD);

	init_backoff_init(&s.backoff, s.opts.backoff_min_ms, s.opts.backoff_max_ms,
			  AGENT_STABLE_MS);
	if (s.opts.agent == INIT_AGENT_NONE)
		ilog("microvm.agent=none: no agent");
	else
		agent_start(&s);
	supervise(&s, sfd);
}
