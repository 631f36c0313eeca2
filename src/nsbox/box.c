// SPDX-License-Identifier: MIT
/**
 * DOC: the box's own processes
 *
 * Two processes run the box; both are forked copies of the host process, single-threaded
 * (their own children are forked with box_fork(): no fork handlers of the host's libraries),
 * and never exec (only the box's main program does):
 *
 * S, the supervisor (nsbox_supervisor()), forked by the host.  It unshares the user (unless
 * root without user namespaces), network, UTS, IPC and PID namespaces, maps root in the box to
 * the caller's uid (for root, box ids 1..65535 go to root's subordinate range in /etc/subuid
 * and /etc/subgid, or to a default one: never the whole id space), creates the TAP device eth0 (10.0.2.15/24, default route via 10.0.2.2),
 * forks the box's PID 1 and sends the host the TAP fd and a pidfd of PID 1 over the control
 * socket.  It then serves "connect to TCP port N" requests: being inside the box's network
 * namespace, it can connect to the agent on 127.0.0.1 and pass the stream back (SCM_RIGHTS),
 * which needs no privilege on the host (setns() would).  S exits when PID 1 exits, with a
 * status that encodes PID 1's (code, or 128 + signal).
 *
 * I, the box's PID 1 (box_init()), forked by S into the new PID namespace.  It unshares the
 * mount namespace, builds the root (an overlay over the cached rootfs with a private upper
 * layer, or a bind of the rootfs; /proc, a minimal /dev bind-mounted
 * from the host, tmpfs /run and /tmp), pivot_root()s into it, forks and execs the main
 * program (the agent), and then acts as init: reaps every zombie, restarts the program with
 * back-off if it crashes or fails (any exit but 0, 100 = power off, 101 = reboot), forwards SIGTERM to every process in the box, and exits with the
 * program's status when it ends normally.  PID 1's exit makes the kernel kill everything
 * left in the PID namespace, and the last process leaving takes the namespaces (and with
 * them every mount) away: nothing outlives the box.
 *
 * Both ask for SIGKILL when their parent dies (PR_SET_PDEATHSIG), so a crashed host leaves
 * nothing behind either.
 *
 * The main program starts with a bounding set of box_caps only (what a VPN appliance needs:
 * network administration, its own files and users; no mounts, modules, ptrace, raw I/O, time,
 * audit, BPF ...) and no_new_privs, so nothing it executes can get more.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nsbox/nsbox.h"
#include "sandbox/sandbox.h"

#define BOX_CTL_FD	3
#define BOX_BACKOFF_MIN_MS	100	/* first restart delay; doubles per failure... */
#define BOX_BACKOFF_MAX_MS	5000	/* ...up to this */
#define BOX_NS_FLAGS	(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID)

/* Host ids a box root may map besides its own: at most this many (what /etc/subuid gives). */
#define BOX_SUBID_MAX	65535U
/*
 * Without a subordinate range for the user: box ids 1..65535 go here, above what useradd
 * hands out (SUB_UID_MAX 600100000) and what systemd-nspawn picks from (below 0x70000000),
 * so that programs in the box may still switch users (OpenVPN's --user nobody).
 */
#define BOX_SUBID_DEFAULT	0x70000000ULL

/* The bounding set of the box's main program (and everything it runs). */
static const uint64_t box_caps =
	(1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_DAC_READ_SEARCH) |
	(1ULL << CAP_FOWNER) | (1ULL << CAP_FSETID) | (1ULL << CAP_KILL) |
	(1ULL << CAP_SETGID) | (1ULL << CAP_SETUID) | (1ULL << CAP_SETPCAP) |
	(1ULL << CAP_NET_BIND_SERVICE) | (1ULL << CAP_NET_ADMIN) | (1ULL << CAP_NET_RAW) |
	(1ULL << CAP_SYS_CHROOT);

static const uint8_t box_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

/**
 * struct box_status - I's setup result, reported to S through a pipe
 */
struct box_status {
	int32_t result;
	char msg[200];
};

/* ---- fd passing (also used by the host side) ---- */

int nsbox_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (nfds > 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

ssize_t nsbox_recv_fds(int sock, void *buf, size_t len, int *fds, int maxfds)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	ssize_t n;
	int i, got = 0;

	for (i = 0; i < maxfds; i++)
		fds[i] = -1;
	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k, nf;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < nf; k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			if (got < maxfds)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		return -EMSGSIZE;
	return n;
}

/* ---- small helpers (no allocation: these run in forked children) ---- */

static int box_write_file(const char *path, const char *data)
{
	size_t len = strlen(data);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, data, len);
	close(fd);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int box_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/**
 * box_fail() - format a failure into @st
 * @st:		status to fill
 * @err:	-errno
 * @what:	the step that failed
 *
 * Return: @err.
 */
static int box_fail(struct box_status *st, int err, const char *what)
{
	st->result = err;
	snprintf(st->msg, sizeof(st->msg), "%s: %s", what, strerror(-err));
	return err;
}

/**
 * box_reset_signals() - default dispositions and an empty mask
 *
 * A forked copy of the host inherits its handlers (a CLI's SIGTERM handler, SIGPIPE or
 * SIGCHLD ignored): none of them makes sense in the box, and an ignored SIGCHLD would even
 * make waitpid() fail.
 */
static void box_reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);	/* EINVAL for SIGKILL/SIGSTOP: fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* ---- S: namespaces and network ---- */

/**
 * box_userns_map_self() - map root in our new user namespace to our own uid and gid
 * @spec:	the box
 *
 * An unprivileged process may write exactly this one-line map for itself.
 *
 * Return: 0 or -errno.
 */
static int box_userns_map_self(const struct nsbox_spec *spec)
{
	int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	char line[64];
	int ret;

	/* A non-dumpable process (one holding passwords, like `microvm up`) has /proc/self owned
	 * by the host's root, which it could not write: dumpable just for the maps. */
	if (dumpable == 0)
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	ret = box_write_file("/proc/self/setgroups", "deny\n");
	if (ret == -ENOENT)
		ret = 0;
	snprintf(line, sizeof(line), "0 %u 1\n", (unsigned int)spec->uid);
	if (!ret)
		ret = box_write_file("/proc/self/uid_map", line);
	snprintf(line, sizeof(line), "0 %u 1\n", (unsigned int)spec->gid);
	if (!ret)
		ret = box_write_file("/proc/self/gid_map", line);
	if (dumpable == 0)
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return ret;
}

/**
 * nsbox_id_map() - the id map of a box whose root is host id @id
 * @buf:	output, "0 <id> 1\n" and maybe "1 <start> <count>\n"
 * @len:	its size (64 bytes are plenty)
 * @subid:	contents of /etc/subuid or /etc/subgid, or NULL
 * @name:	the user's name ("root")
 * @id:		the user's id
 *
 * Root in the box is the invoking user.  Box ids 1.. map to the user's first subordinate
 * range ("name:start:count" or "id:start:count"), at most BOX_SUBID_MAX of them; a range that
 * would include @id or wrap is ignored; without one, BOX_SUBID_MAX ids at BOX_SUBID_DEFAULT.
 *
 * Return: 0, or -ENOSPC if @buf is too small.
 */
int nsbox_id_map(char *buf, size_t len, const char *subid, const char *name, unsigned int id)
{
	unsigned long long start = 0, count = 0;
	const char *p = subid;
	char idstr[16];
	int n;

	snprintf(idstr, sizeof(idstr), "%u", id);
	while (p && *p && !count) {
		const char *eol = strchr(p, '\n');
		size_t l = eol ? (size_t)(eol - p) : strlen(p);
		char line[256], *f1, *f2, *f3, *end1, *end2, *save;

		if (l < sizeof(line)) {
			memcpy(line, p, l);
			line[l] = '\0';
			f1 = strtok_r(line, ":", &save);
			f2 = strtok_r(NULL, ":", &save);
			f3 = strtok_r(NULL, ":", &save);
			if (f1 && f2 && f3 && (!strcmp(f1, name) || !strcmp(f1, idstr))) {
				start = strtoull(f2, &end1, 10);
				count = strtoull(f3, &end2, 10);
				if (*end1 || *end2 || !*f2 || !*f3 || start == 0 ||
				    start + count > 0xffffffffULL ||
				    (id >= start && id < start + count))
					start = count = 0;
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	if (count > BOX_SUBID_MAX)
		count = BOX_SUBID_MAX;
	if (!count) {
		start = BOX_SUBID_DEFAULT;
		count = BOX_SUBID_MAX;
	}
	n = snprintf(buf, len, "0 %u 1\n1 %llu %llu\n", id, start, count);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

/**
 * box_read_small() - a small text file into @buf (NUL-terminated), or "" if unreadable
 */
static void box_read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, len - 1);

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/**
 * box_fork() - fork() for S and I, without the host process's fork handlers
 *
 * S and I are single-threaded, so they need none of what fork() adds to the system call:
 * the pthread_atfork() child handlers registered by libraries of the host process.  Those
 * can break them: libuv's (registered by any event loop of the host) closes two descriptor
 * numbers it recorded and makes a new pipe, in a process that has since closed its inherited
 * descriptors and reused those numbers for its own pipes.  _Fork() (glibc 2.34) runs none.
 *
 * Return: as fork().
 */
static pid_t box_fork(void)
{
	return _Fork();
}

/**
 * box_unshare_root() - root: a user namespace with root and a bounded id range mapped
 * @st:		failure details
 *
 * The box's root stays host root for file ownership (the unpacked rootfs keeps its owners),
 * while its capabilities only reach the box's own namespaces.  Other box ids map to root's
 * subordinate range (nsbox_id_map()), never to the host's own users.  A map of more than our
 * own id can only be written from the parent namespace, so a helper forked before unshare()
 * writes it once we are in.
 *
 * Return: 0, -EPERM/-EINVAL/-ENOSPC when user namespaces are unavailable, or -errno.
 */
static int box_unshare_root(struct box_status *st)
{
	static const char *const maps[] = { "uid_map", "gid_map" };
	static const char *const subids[] = { "/etc/subuid", "/etc/subgid" };
	pid_t self = getpid(), helper;
	int go[2], status, err = 0;
	char map[2][96], text[4096];
	char c = 'x';
	size_t i;

	for (i = 0; i < 2; i++) {
		box_read_small(subids[i], text, sizeof(text));
		if (nsbox_id_map(map[i], sizeof(map[i]), text, "root", 0))
			return box_fail(st, -ENOSPC, "user namespace id map");
	}

	if (pipe2(go, O_CLOEXEC))
		return box_fail(st, -errno, "pipe");
	helper = box_fork();
	if (helper < 0) {
		err = -errno;
		close(go[0]);
		close(go[1]);
		return box_fail(st, err, "fork");
	}
	if (helper == 0) {
		char path[64];

		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(0);	/* unshare failed: nothing to map */
		for (i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "/proc/%d/%s", (int)self, maps[i]);
			err = box_write_file(path, map[i]);
			if (err)
				_exit(-err);
		}
		_exit(0);
	}
	close(go[0]);
	if (unshare(CLONE_NEWUSER | BOX_NS_FLAGS))
		err = -errno;
	else if (write(go[1], &c, 1) != 1)
		err = -EIO;
	close(go[1]);
	while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
		;
	if (err)
		return err;	/* caller falls back to no user namespace */
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return box_fail(st, WIFEXITED(status) ? -WEXITSTATUS(status) : -EIO,
				"user namespace id map");
	return 0;
}

/**
 * box_unshare() - enter the box's namespaces (all but mount, which PID 1 unshares)
 * @spec:	the box
 * @st:		failure details
 *
 * Return: 0 or -errno.
 */
static int box_unshare(const struct nsbox_spec *spec, struct box_status *st)
{
	int ret;

	if (spec->userns && spec->uid == 0) {
		ret = box_unshare_root(st);
		if (ret != -EPERM && ret != -EINVAL && ret != -ENOSPC && ret != -EUSERS)
			return ret;
		/* User namespaces are disabled here: root runs the box without one. */
	} else if (spec->userns) {
		if (unshare(CLONE_NEWUSER | BOX_NS_FLAGS))
			return box_fail(st, -errno, "unshare(user, net, uts, ipc, pid)");
		ret = box_userns_map_self(spec);
		return ret ? box_fail(st, ret, "user namespace id map") : 0;
	}
	if (unshare(BOX_NS_FLAGS))
		return box_fail(st, -errno, "unshare(net, uts, ipc, pid)");
	return 0;
}

static int box_ifflags(int sock, const char *name, short set)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr))
		return -errno;
	ifr.ifr_flags |= set;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr))
		return -errno;
	return 0;
}

static void box_sin(struct sockaddr *sa, uint32_t addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(addr) };

	memcpy(sa, &sin, sizeof(sin));
}

/**
 * box_eth0() - create and configure the TAP device eth0
 * @st:		failure details
 *
 * 10.0.2.15/24 with the default route via 10.0.2.2 (slirp's gateway), MAC 52:54:00:12:34:56,
 * IPv6 off (slirp serves IPv4 here).  No offloads are enabled on the TAP, so the kernel
 * hands over complete frames with their checksums, which is what slirp needs.
 *
 * Return: the TAP fd (non-blocking), or -errno.
 */
static int box_eth0(struct box_status *st)
{
	struct rtentry rt;
	struct ifreq ifr;
	int tap, sock, ret;

	tap = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tap < 0)
		return box_fail(st, -errno, "open /dev/net/tun");
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "eth0");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(tap, TUNSETIFF, &ifr)) {
		ret = box_fail(st, -errno, "TUNSETIFF eth0");
		close(tap);
		return ret;
	}
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		ret = box_fail(st, -errno, "socket");
		close(tap);
		return ret;
	}
	box_write_file("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "1\n");

	ret = box_ifflags(sock, "lo", IFF_UP);
	if (ret) {
		box_fail(st, ret, "bring up lo");
		goto err;
	}
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, box_mac, sizeof(box_mac));
	if (ioctl(sock, SIOCSIFHWADDR, &ifr)) {
		ret = box_fail(st, -errno, "set eth0 MAC");
		goto err;
	}
	box_sin(&ifr.ifr_addr, 0x0a00020f);
	if (ioctl(sock, SIOCSIFADDR, &ifr)) {
		ret = box_fail(st, -errno, "set eth0 address 10.0.2.15");
		goto err;
	}
	box_sin(&ifr.ifr_netmask, 0xffffff00);
	if (ioctl(sock, SIOCSIFNETMASK, &ifr)) {
		ret = box_fail(st, -errno, "set eth0 netmask");
		goto err;
	}
	ifr.ifr_mtu = NSBOX_MTU;
	if (ioctl(sock, SIOCSIFMTU, &ifr)) {
		ret = box_fail(st, -errno, "set eth0 MTU");
		goto err;
	}
	ret = box_ifflags(sock, "eth0", IFF_UP);
	if (ret) {
		box_fail(st, ret, "bring up eth0");
		goto err;
	}
	memset(&rt, 0, sizeof(rt));
	box_sin(&rt.rt_dst, 0);
	box_sin(&rt.rt_genmask, 0);
	box_sin(&rt.rt_gateway, 0x0a000202);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = ifr.ifr_name;
	if (ioctl(sock, SIOCADDRT, &rt)) {
		ret = box_fail(st, -errno, "default route via 10.0.2.2");
		goto err;
	}
	close(sock);
	return tap;
err:
	close(sock);
	close(tap);
	return ret;
}

/**
 * box_lo_only() - without networking the box still has its loopback (the agent listens there)
 * @st:		failure details
 *
 * Return: 0 or -errno.
 */
static int box_lo_only(struct box_status *st)
{
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int ret;

	if (sock < 0)
		return box_fail(st, -errno, "socket");
	ret = box_ifflags(sock, "lo", IFF_UP);
	close(sock);
	return ret ? box_fail(st, ret, "bring up lo") : 0;
}

/* ---- I: the box's PID 1 ---- */

static int box_mount(const char *src, const char *root, const char *dst, const char *type,
		     unsigned long flags, const char *data, struct box_status *st)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s%s", root, dst);
	if (mount(src, path, type, flags, data))
		return box_fail(st, -errno, dst);
	return 0;
}

/**
 * box_dev() - a minimal /dev: tmpfs with the host's device nodes bind-mounted in
 * @root:	the new root (host path)
 * @st:		failure details
 *
 * A user namespace cannot mknod, so each node is an empty file with the host's node bound
 * over it.  /dev/net/tun is there so that OpenVPN can create its tun device in the box.
 *
 * Return: 0 or -errno.
 */
static int box_dev(const char *root, struct box_status *st)
{
	static const char *const nodes[] = {
		"null", "zero", "full", "random", "urandom", "tty", "net/tun",
	};
	static const char *const links[][2] = {
		{ "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" },
		{ "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
	};
	char path[4096], host[64];
	size_t i;
	int ret, fd;

	ret = box_mount("tmpfs", root, "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
			"mode=755,size=1m", st);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/dev/net", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/dev/shm", root);
	mkdir(path, 01777);
	snprintf(path, sizeof(path), "%s/dev/pts", root);
	mkdir(path, 0755);
	for (i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		snprintf(host, sizeof(host), "/dev/%s", nodes[i]);
		if (access(host, F_OK))
			continue;	/* the host lacks it (no tun module): skip */
		snprintf(path, sizeof(path), "%s/dev/%s", root, nodes[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
		if (fd < 0)
			return box_fail(st, -errno, path);
		close(fd);
		if (mount(host, path, NULL, MS_BIND, NULL))
			return box_fail(st, -errno, host);
	}
	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(path, sizeof(path), "%s/dev/%s", root, links[i][1]);
		if (symlink(links[i][0], path))
			return box_fail(st, -errno, path);
	}
	return box_mount("tmpfs", root, "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
			 "mode=1777", st);
}

/**
 * box_readonly_root() - make the (already pivoted) root read-only
 * @st:		failure details
 *
 * A remount in a user namespace must keep the flags the mount was locked with, so they are
 * read back first.
 *
 * Return: 0 or -errno.
 */
static int box_readonly_root(struct box_status *st)
{
	unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
	struct statvfs sv;

	if (statvfs("/", &sv))
		return box_fail(st, -errno, "statvfs /");
	if (sv.f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		flags |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		flags |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		flags |= MS_RELATIME;
	if (mount(NULL, "/", NULL, flags, NULL))
		return box_fail(st, -errno, "remount / read-only");
	return 0;
}

/**
 * box_resolv_conf() - point the box's resolver at slirp's DNS (10.0.2.3)
 * @root_ro:	the root is read-only: only /run can be written
 *
 * Written to /run/resolv.conf, which the guest image links /etc/resolv.conf to; a writable
 * root without that link gets /etc/resolv.conf itself.  Best effort: the box runs without.
 */
static void box_resolv_conf(bool root_ro)
{
	static const char resolv[] = "nameserver 10.0.2.3\n";
	const char *path = "/run/resolv.conf";
	struct stat sb;
	int fd;

	if (!root_ro && lstat("/etc/resolv.conf", &sb) == 0 && !S_ISLNK(sb.st_mode))
		path = "/etc/resolv.conf";
	else if (!root_ro && lstat("/etc", &sb) == 0 && lstat("/etc/resolv.conf", &sb) != 0 &&
		 symlink("../run/resolv.conf", "/etc/resolv.conf") != 0)
		path = "/etc/resolv.conf";
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return;
	if (write(fd, resolv, sizeof(resolv) - 1) < 0)
		path = NULL;	/* best effort */
	close(fd);
}

/**
 * box_root() - build the box's root file system and pivot into it
 * @spec:	the box
 * @st:		failure details
 *
 * Return: 0 or -errno.
 */
static int box_root(const struct nsbox_spec *spec, struct box_status *st)
{
	const char *root = spec->root;
	int ret;

	if (unshare(CLONE_NEWNS))
		return box_fail(st, -errno, "unshare(mount)");
	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return box_fail(st, -errno, "make / private");
	if (spec->lower) {
		char opts[3 * 4096 + 64];

		/* The cached tree stays untouched: the box writes into its private upper layer. */
		snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", spec->lower,
			 spec->upper, spec->work);
		if (mount("overlay", root, "overlay", 0, opts))
			return box_fail(st, -errno, "overlay mount of the cached rootfs");
	}
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL))
		return box_fail(st, -errno, "bind the rootfs");
	ret = box_mount("proc", root, "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, st);
	if (!ret)
		ret = box_dev(root, st);
	if (!ret)
		ret = box_mount("tmpfs", root, "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755", st);
	if (!ret)
		ret = box_mount("tmpfs", root, "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", st);
	if (ret)
		return ret;
	/* /sys (read-only: the box's own network devices) where the rootfs has the mount point. */
	box_mount("sysfs", root, "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL, st);
	st->result = 0;

	/* pivot_root(".", ".") stacks the old root under the new one; detach it at once. */
	if (chdir(root))
		return box_fail(st, -errno, "chdir to the rootfs");
	if (syscall(SYS_pivot_root, ".", "."))
		return box_fail(st, -errno, "pivot_root");
	if (umount2(".", MNT_DETACH))
		return box_fail(st, -errno, "detach the old root");
	if (chdir("/"))
		return box_fail(st, -errno, "chdir /");
	if (spec->root_ro) {
		ret = box_readonly_root(st);
		if (ret)
			return ret;
	}
	box_resolv_conf(spec->root_ro);
	return 0;
}

/**
 * box_spawn() - fork and exec the main program
 * @spec:	the box
 * @st:		failure details (an exec failure is reported through a CLOEXEC pipe)
 *
 * Return: its pid, or -errno.
 */
static pid_t box_spawn(const struct nsbox_spec *spec, struct box_status *st)
{
	/* The last slot passes MICROVM_SECCOMP (log instead of kill, for debugging) through. */
	char *envp[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "TERM=dumb", "container=microvm-nsbox", NULL, NULL,
	};
	static char seccomp_env[64];
	const char *mode = getenv("MICROVM_SECCOMP");
	int p[2], err = 0;
	sigset_t none;
	pid_t pid;
	ssize_t n;

	if (mode && strlen(mode) < sizeof(seccomp_env) - 16) {
		snprintf(seccomp_env, sizeof(seccomp_env), "MICROVM_SECCOMP=%s", mode);
		envp[4] = seccomp_env;
	}
	if (pipe2(p, O_CLOEXEC))
		return box_fail(st, -errno, "pipe");
	pid = box_fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return box_fail(st, -errno, "fork");
	}
	if (pid == 0) {
		close(p[0]);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		if (sandbox_caps_keep(box_caps) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
			err = errno ? errno : EPERM;
			if (write(p[1], &err, sizeof(err)) < 0)
				_exit(127);
			_exit(127);
		}
		execve(spec->argv[0], spec->argv, envp);
		err = errno;
		if (write(p[1], &err, sizeof(err)) < 0)
			_exit(127);
		_exit(127);
	}
	close(p[1]);
	do {
		n = read(p[0], &err, sizeof(err));
	} while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == sizeof(err)) {
		waitpid(pid, NULL, 0);
		return box_fail(st, -err, spec->argv[0]);
	}
	return pid;
}

/**
 * box_exit_code() - encode a wait status as an exit code (128 + signal when killed)
 * @status:	from waitpid()
 *
 * Return: 0..255.
 */
static int box_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

/**
 * box_backoff() - wait before restarting the program, still answering a stop
 * @set:	the signals PID 1 handles (blocked)
 * @ms:		how long
 *
 * Zombies of other processes are reaped meanwhile.
 *
 * Return: true when a stop (SIGTERM, SIGINT, SIGHUP) arrived.
 */
static bool box_backoff(const sigset_t *set, int ms)
{
	struct timespec now, end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += (long)(ms % 1000) * 1000000;
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	for (;;) {
		struct timespec left;
		int sig;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000;
		}
		if (left.tv_sec < 0)
			return false;
		sig = sigtimedwait(set, NULL, &left);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
			kill(-1, SIGTERM);
			return true;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

/**
 * box_init_loop() - PID 1's life after setup: reap, restart, forward SIGTERM
 * @spec:	the box
 * @child:	the main program
 */
static void __attribute__((noreturn)) box_init_loop(const struct nsbox_spec *spec, pid_t child)
{
	int backoff_ms = BOX_BACKOFF_MIN_MS;
	struct box_status st;
	bool stopping = false;
	siginfo_t si;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		int status, sig;
		pid_t pid;

		sig = sigwaitinfo(&set, &si);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
			stopping = true;
			kill(-1, SIGTERM);	/* every other process in the box */
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != child)
				continue;
			if (stopping)
				_exit(0);	/* a requested stop, however the program ended */
			/* The agent's contract: 0 (stopped), 100 power off, 101 reboot. */
			if ((WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
							       WEXITSTATUS(status) == NSBOX_EXIT_POWEROFF ||
							       WEXITSTATUS(status) == NSBOX_EXIT_REBOOT)))
				_exit(box_exit_code(status));
			if (WIFSIGNALED(status))
				fprintf(stderr, "microvm-nsbox: %s killed by signal %d, restarting\n",
					spec->argv[0], WTERMSIG(status));
			else
				fprintf(stderr, "microvm-nsbox: %s exited with status %d, restarting\n",
					spec->argv[0], box_exit_code(status));
			if (box_backoff(&set, backoff_ms))
				_exit(0);	/* stopped while the program was down */
			if (backoff_ms < BOX_BACKOFF_MAX_MS)
				backoff_ms *= 2;
			child = box_spawn(spec, &st);
			if (child < 0) {
				fprintf(stderr, "microvm-nsbox: %s\n", st.msg);
				_exit(127);
			}
		}
	}
}

/**
 * box_init() - body of the box's PID 1
 * @spec:	the box
 * @report:	pipe to S for the setup result
 */
static void __attribute__((noreturn)) box_init(const struct nsbox_spec *spec, int report)
{
	struct box_status st = { 0 };
	sigset_t set;
	pid_t child;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "nsbox-init");
	/* Block the signals init handles synchronously, before anything can send them. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	close(BOX_CTL_FD);

	if (box_root(spec, &st) == 0) {
		child = box_spawn(spec, &st);
		if (child > 0) {
			if (write(report, &st, sizeof(st)) < 0)
				_exit(127);
			close(report);
			box_init_loop(spec, child);
		}
	}
	if (write(report, &st, sizeof(st)) < 0)
		_exit(127);
	_exit(127);
}

/* ---- S ---- */

/**
 * box_setup_fds() - stdin, stdout/stderr, the control socket and the secret at 0, 1/2, 3 and
 * NSBOX_SECRET_FD (4); close the rest
 * @spec:	the box (its fds are never 0..2: those are the host's stdio)
 *
 * The host's other descriptors (listening sockets, files) must not live on in the box.  The
 * secret's descriptor stays open across exec (the box's program reads it); the control
 * socket does not.
 *
 * Return: 0 or -errno.
 */
static int box_setup_fds(const struct nsbox_spec *spec)
{
	int ctl = fcntl(spec->ctl_fd, F_DUPFD_CLOEXEC, NSBOX_SECRET_FD + 1);
	int sec = spec->secret_fd < 0 ? -1 :
		  fcntl(spec->secret_fd, F_DUPFD_CLOEXEC, NSBOX_SECRET_FD + 1);

	if (ctl < 0 || (spec->secret_fd >= 0 && sec < 0))
		return -errno;
	if (dup2(spec->stdin_fd, 0) < 0 || dup2(spec->console_fd, 1) < 0 ||
	    dup2(spec->console_fd, 2) < 0)
		return -errno;
	if (dup3(ctl, BOX_CTL_FD, O_CLOEXEC) < 0)
		return -errno;
	if (sec >= 0 ? dup2(sec, NSBOX_SECRET_FD) < 0 : (close(NSBOX_SECRET_FD), 0))
		return -errno;
	if (syscall(SYS_close_range, NSBOX_SECRET_FD + 1, ~0U, 0))
		return -errno;
	return 0;
}

/**
 * box_connect() - a TCP stream to 127.0.0.1:@port inside the box
 * @port:	TCP port
 * @timeout_ms:	negative: no limit
 *
 * Return: a blocking socket or -errno.
 */
static int box_connect(uint32_t port, int timeout_ms)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct pollfd p;
	socklen_t sl = sizeof(int);
	int fd, err = 0;

	if (port == 0 || port > 65535)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		if (errno != EINPROGRESS) {
			err = -errno;
			goto fail;
		}
		p.fd = fd;
		p.events = POLLOUT;
		if (poll(&p, 1, timeout_ms) <= 0) {
			err = -ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) || err) {
			err = err ? -err : -errno;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) {
		err = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return err;
}

/**
 * box_serve() - S's loop: connect requests until PID 1 exits or the host goes away
 * @init_pid:	the box's PID 1
 * @init_pidfd:	pidfd of it
 */
static void __attribute__((noreturn)) box_serve(pid_t init_pid, int init_pidfd)
{
	struct pollfd p[2] = {
		{ .fd = BOX_CTL_FD, .events = POLLIN },
		{ .fd = init_pidfd, .events = POLLIN },
	};
	int status;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN) {
			struct nsbox_req req;
			struct nsbox_resp resp;
			int fd, fds[1];
			ssize_t n = nsbox_recv_fds(BOX_CTL_FD, &req, sizeof(req), fds, 1);

			if (fds[0] >= 0)
				close(fds[0]);
			if (n == 0)
				break;	/* the host is gone */
			if (n != sizeof(req))
				continue;
			fd = box_connect(req.port, req.timeout_ms);
			resp.seq = req.seq;
			resp.result = fd < 0 ? fd : 0;
			nsbox_send_fds(BOX_CTL_FD, &resp, sizeof(resp), &fd, fd < 0 ? 0 : 1);
			if (fd >= 0)
				close(fd);
		} else if (p[0].revents) {
			break;
		}
	}
	/* PID 1 exited, or nobody will ever talk to the box again: make sure it is gone. */
	syscall(SYS_pidfd_send_signal, init_pidfd, SIGKILL, NULL, 0);
	if (waitpid(init_pid, &status, 0) != init_pid)
		_exit(255);
	_exit(box_exit_code(status));
}

void nsbox_supervisor(const struct nsbox_spec *spec)
{
	struct nsbox_ready ready = { 0 };
	struct box_status st = { 0 };
	int fds[2] = { -1, -1 };
	int rep[2], ret, tap = -1, pidfd = -1;
	pid_t pid;
	ssize_t n;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "nsbox-super");
	box_reset_signals();
	ret = box_setup_fds(spec);
	if (ret) {
		box_fail(&st, ret, "set up descriptors");
		goto fail;
	}
	if (box_unshare(spec, &st))
		goto fail;
	if (sethostname(NSBOX_HOSTNAME, strlen(NSBOX_HOSTNAME))) {
		box_fail(&st, -errno, "sethostname");
		goto fail;
	}
	if (spec->net) {
		tap = box_eth0(&st);
		if (tap < 0)
			goto fail;
	} else if (box_lo_only(&st)) {
		goto fail;
	}
	if (pipe2(rep, O_CLOEXEC)) {
		box_fail(&st, -errno, "pipe");
		goto fail;
	}
	pid = box_fork();
	if (pid < 0) {
		box_fail(&st, -errno, "fork");
		goto fail;
	}
	if (pid == 0) {
		close(rep[0]);
		if (tap >= 0)
			close(tap);
		box_init(spec, rep[1]);
	}
	close(rep[1]);
	pidfd = box_pidfd_open(pid);
	if (pidfd < 0) {
		box_fail(&st, -errno, "pidfd_open");
		kill(pid, SIGKILL);
		goto fail;
	}
	do {
		n = read(rep[0], &st, sizeof(st));
	} while (n < 0 && errno == EINTR);
	close(rep[0]);
	if (n != sizeof(st)) {
		box_fail(&st, -EIO, "the box's init died during setup");
		goto fail;
	}
	if (st.result)
		goto fail;

	ready.pid = pid;
	fds[0] = pidfd;
	fds[1] = tap;
	if (nsbox_send_fds(BOX_CTL_FD, &ready, sizeof(ready), fds, tap >= 0 ? 2 : 1))
		_exit(255);
	if (tap >= 0)
		close(tap);
	box_serve(pid, pidfd);

fail:
	ready.result = st.result ? st.result : -EIO;
	memcpy(ready.msg, st.msg, sizeof(ready.msg));
	ready.msg[sizeof(ready.msg) - 1] = '\0';
	nsbox_send_fds(BOX_CTL_FD, &ready, sizeof(ready), NULL, 0);
	_exit(255);
}

/**
 * nsbox_probe() - try the namespaces once in a throw-away child
 */
int nsbox_probe(char *why, size_t why_len)
{
	int p[2], err = 0, status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return 0;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		snprintf(why, why_len, "fork: %s", strerror(errno));
		return 0;
	}
	if (pid == 0) {
		int flags = CLONE_NEWUSER | CLONE_NEWNS | BOX_NS_FLAGS;

		close(p[0]);
		if (unshare(flags) && (geteuid() != 0 || unshare(flags & ~CLONE_NEWUSER)))
			err = errno;
		if (write(p[1], &err, sizeof(err)) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &err, sizeof(err)) != sizeof(err))
		err = EIO;
	close(p[0]);
	waitpid(pid, &status, 0);
	if (err) {
		snprintf(why, why_len, "cannot create namespaces: %s%s", strerror(err),
			 err == EPERM || err == ENOSPC ?
			 " (unprivileged user namespaces disabled?)" : "");
		return 0;
	}
	if (access("/dev/net/tun", R_OK | W_OK)) {
		snprintf(why, why_len, "/dev/net/tun: %s", strerror(errno));
		return 0;
	}
	return 1;
}
