/* SPDX-License-Identifier: MIT */
/**
 * DOC: Theory of operation - Firecracker-compatible vsock Unix socket
 *
 * `microvm run --vsock-uds PATH` exposes the guest's vsock ports the way Firecracker does, so
 * `socat` and tools written for Firecracker work unchanged:
 *
 * - host -> guest: a program connects to PATH and writes "CONNECT <port>\n"; once the guest
 *   accepts, it reads "OK <host_port>\n" and then has a raw stream.  If the guest refuses
 *   (or does not answer within VSOCK_UDS_CONNECT_MS) the socket is closed.
 * - guest -> host: a guest connection to host port P is handed to a program listening on the
 *   Unix socket "PATH_P" (nothing listening: the guest gets RST).
 *
 * No bytes are copied here: the accepted Unix socket itself becomes the host side of the
 * vsock connection (vsock_dev_connect_fd()), and the engine writes the "OK" line the moment
 * the guest's RESPONSE arrives, before any guest byte.  One thread accepts on PATH; each
 * accepted client gets a short-lived thread that reads its CONNECT line (byte by byte, so
 * that nothing after the newline is consumed) and waits for the guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio/vsock.h"
#include "runtime/error.h"
#include "sandbox/sandbox.h"

#define VSOCK_UDS_LINE_MS	5000	/* to send the CONNECT line */
#define VSOCK_UDS_CONNECT_MS	5000	/* for the guest to accept */

struct vsock_uds {
	struct vsock_dev *d;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd, wake;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned int clients;	/* CONNECT threads still running */
};

struct vsock_uds_client {
	struct vsock_uds *u;
	int fd;
};

/**
 * vsock_uds_parse_connect() - parse a Firecracker "CONNECT <port>" line
 * @line:	the bytes a host program sent, without the '\n' (not NUL-terminated)
 * @len:	their number
 *
 * Accepts "CONNECT " followed by 1-10 decimal digits of a value <= 0xffffffff, optionally
 * followed by '\r'.  Anything else - other words, signs, spaces, NUL bytes, longer lines -
 * is refused.  Pure: the fuzz target fuzz-vsock-uds drives it directly.
 *
 * Return: the port (0..0xffffffff), or -EPROTO.
 */
long vsock_uds_parse_connect(const char *line, size_t len)
{
	uint64_t port = 0;
	size_t i;

	if (len && line[len - 1] == '\r')
		len--;
	if (len < 9 || len > VSOCK_UDS_LINE_MAX || memcmp(line, "CONNECT ", 8))
		return -EPROTO;
	for (i = 8; i < len; i++) {
		if (line[i] < '0' || line[i] > '9' || i - 8 >= 10)
			return -EPROTO;
		port = port * 10 + (uint64_t)(line[i] - '0');
	}
	if (port > 0xffffffffULL)
		return -EPROTO;
	return (long)port;
}

/**
 * vsock_uds_read_line() - read "CONNECT <port>\n" from @fd, one byte at a time
 * Return: the port, or -errno (-EPROTO for anything else, -ETIMEDOUT).
 */
static long vsock_uds_read_line(int fd)
{
	char line[VSOCK_UDS_LINE_MAX + 2];
	size_t len = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, VSOCK_UDS_LINE_MS) <= 0)
			return -ETIMEDOUT;
		n = read(fd, line + len, 1);
		if (n <= 0)
			return -EPROTO;
		if (line[len] == '\n')
			break;
		if (++len == sizeof(line))
			return -EPROTO;
	}
	return vsock_uds_parse_connect(line, len);
}

/** vsock_uds_client_thread() - one host program's CONNECT handshake */
static void *vsock_uds_client_thread(void *arg)
{
	struct vsock_uds_client *cl = arg;
	struct vsock_uds *u = cl->u;
	long port = vsock_uds_read_line(cl->fd);

	if (port < 0)
		close(cl->fd);
	else	/* the engine owns the fd from here, and writes "OK <port>\n" */
		vsock_dev_connect_fd(u->d, (uint32_t)port, cl->fd, VSOCK_UDS_CONNECT_MS,
				     VSOCK_CONNECT_FC_OK);
	free(cl);
	pthread_mutex_lock(&u->lock);
	if (!--u->clients)
		pthread_cond_broadcast(&u->idle);
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/** vsock_uds_accept() - start the handshake thread of a new client */
static void vsock_uds_accept(struct vsock_uds *u, int fd)
{
	struct vsock_uds_client *cl = malloc(sizeof(*cl));
	pthread_attr_t attr;
	pthread_t t;

	if (!cl) {
		close(fd);
		return;
	}
	cl->u = u;
	cl->fd = fd;
	pthread_mutex_lock(&u->lock);
	u->clients++;
	pthread_mutex_unlock(&u->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, vsock_uds_client_thread, cl)) {
		close(fd);
		free(cl);
		pthread_mutex_lock(&u->lock);
		u->clients--;
		pthread_mutex_unlock(&u->lock);
	}
	pthread_attr_destroy(&attr);
}

/* The accept thread and the handshake threads it starts (they inherit its filter). */
static const int vsock_uds_syscalls[] = {
	SANDBOX_SYS(poll),		/* vsock_uds_thread(): PATH and the wakeup */
	SANDBOX_SYS(ppoll),
	SANDBOX_SYS(accept4),
	SANDBOX_SYS(clone3),		/* one detached handshake thread per client */
	SANDBOX_SYS(clone),
	SANDBOX_SYS(fcntl),		/* vsock_dev_connect_fd(): the stream made non-blocking */
	SANDBOX_SYS(epoll_ctl),		/* ...and added to the engine */
	SANDBOX_SYS(sendto),		/* "OK <port>" and guest bytes */
	SANDBOX_SYS(recvfrom),
};

/** vsock_uds_thread() - accept on PATH until vsock_uds_free() */
static void *vsock_uds_thread(void *arg)
{
	struct vsock_uds *u = arg;
	struct sandbox_list list = SANDBOX_LIST(vsock_uds_syscalls);
	struct pollfd pfd[2] = {
		{ .fd = u->fd, .events = POLLIN },
		{ .fd = u->wake, .events = POLLIN },
	};
	int fd;

	prctl(PR_SET_NAME, "mvm-vsock-uds");
	if (sandbox_thread("vsock Unix socket bridge", &list, 1))
		return NULL;

	for (;;) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(u->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			vsock_uds_accept(u, fd);
	}
	return NULL;
}

/**
 * vsock_uds_forward() - a guest connects to host port @port: hand it to PATH_<port>
 * Return: a connected Unix socket, or -errno (the guest then gets RST).
 */
static int vsock_uds_forward(void *opaque, uint32_t port)
{
	struct vsock_uds *u = opaque;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, n;

	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s_%u", u->path, port);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	/* non-blocking: a full backlog refuses instead of stalling the device thread */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		n = -errno;
		close(fd);
		return n;
	}
	return fd;
}

/**
 * vsock_uds_new() - listen on @path and bridge it to the device's engine @d
 * @d:		the vsock engine
 * @path:	Unix socket path (a stale socket there is replaced; any other file is an error)
 *
 * Return: the bridge, or NULL with mvm_last_error() set.
 */
struct vsock_uds *vsock_uds_new(struct vsock_dev *d, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct vsock_uds *u;
	struct stat st;
	int rc;

	/* room for "_4294967295" in the forwarded paths */
	if (strlen(path) + 11 >= sizeof(sun.sun_path)) {
		mvm_set_error(-ENAMETOOLONG, "--vsock-uds: path too long: %s", path);
		return NULL;
	}
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			mvm_set_error(-EEXIST, "--vsock-uds: %s exists and is not a socket", path);
			return NULL;
		}
		unlink(path);
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		mvm_set_error(-ENOMEM, "vsock: out of memory");
		return NULL;
	}
	u->d = d;
	snprintf(u->path, sizeof(u->path), "%s", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->idle, NULL);
	u->wake = eventfd(0, EFD_CLOEXEC);
	u->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (u->wake < 0 || u->fd < 0 || bind(u->fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    listen(u->fd, 64)) {
		mvm_set_error(-errno, "--vsock-uds: cannot listen on %s: %s", path,
			      strerror(errno));
		goto err;
	}
	rc = pthread_create(&u->thread, NULL, vsock_uds_thread, u);
	if (rc) {
		mvm_set_error(-rc, "--vsock-uds: cannot start a thread: %s", strerror(rc));
		unlink(path);
		goto err;
	}
	vsock_dev_set_forward(d, vsock_uds_forward, u);
	return u;
err:
	if (u->fd >= 0)
		close(u->fd);
	if (u->wake >= 0)
		close(u->wake);
	free(u);
	return NULL;
}

/**
 * vsock_uds_free() - stop listening, remove PATH (connections in progress finish first)
 * @u:		the bridge, or NULL
 */
void vsock_uds_free(struct vsock_uds *u)
{
	uint64_t one = 1;

	if (!u)
		return;
	vsock_dev_set_forward(u->d, NULL, NULL);
	(void)!write(u->wake, &one, sizeof(one));
	pthread_join(u->thread, NULL);
	pthread_mutex_lock(&u->lock);
	while (u->clients)
		pthread_cond_wait(&u->idle, &u->lock);
	pthread_mutex_unlock(&u->lock);
	close(u->fd);
	close(u->wake);
	unlink(u->path);
	pthread_cond_destroy(&u->idle);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
