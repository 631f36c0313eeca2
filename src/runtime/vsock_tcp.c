/* SPDX-License-Identifier: MIT */
/**
 * DOC: Theory of operation - TCP vsock transport
 *
 * Under WSL2 and the namespace backend the "guest" is reached over TCP: vsock port N is TCP
 * port N at a fixed address (127.0.0.1 unless told otherwise).  This file is the
 * &struct mvm_vsock_transport for that case.
 *
 * connect: a non-blocking connect() finished with poll(), so the caller's timeout holds even
 * when the address swallows SYNs; the returned socket is switched back to blocking mode, like
 * a socketpair end from the KVM device.
 *
 * Network namespaces: with mvm_vsock_new_tcp_netns() each socket is created inside the given
 * namespace.  setns() changes the namespace of the calling thread only, so a short-lived
 * helper thread enters the namespace, calls socket() and exits; a socket keeps the namespace
 * it was created in, so the caller then connects or binds it from its own thread.
 *
 * listen: one thread per listening port accepts on host:port (in the namespace, if any) and
 * hands every accepted stream to the callback.  An eventfd wakes it for unlisten; Windows has
 * no eventfd, so there the thread waits at most VSOCK_TCP_TICK_MS and checks a stop flag.
 *
 * Windows (WSL2 backend): the same code over Winsock2 through compat.h; there are no network
 * namespaces, so mvm_vsock_new_tcp_netns() fails with -EOPNOTSUPP.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef _WIN32
#include <sched.h>
#include <sys/eventfd.h>
#endif

#include "microvm/vsock.h"
#include "runtime/compat.h"
#include "runtime/error.h"
#include "runtime/vsock_client.h"

#ifdef _WIN32
#define VSOCK_TCP_TICK_MS 100	/* how long unlisten may wait for the accept thread */
#endif

struct vsock_tcp_listener {
	struct vsock_tcp_listener *next;
	struct vsock_tcp *tcp;
	uint32_t port;
	int fd;			/* listening socket */
	int wake;		/* eventfd: stop (POSIX) */
	volatile int stop;	/* stop flag (Windows) */
	mvm_vsock_accept_cb cb;
	void *opaque;
	pthread_t thread;
};

struct vsock_tcp {
	struct sockaddr_storage addr;	/* port filled per call */
	socklen_t addr_len;
	int netns_fd;			/* -1: current namespace */
	pthread_mutex_t lock;		/* protects @listeners */
	struct vsock_tcp_listener *listeners;
};

struct vsock_tcp_sock_req {
	int netns_fd;
	int family;
	int fd;		/* result: socket or -errno */
};

/** vsock_tcp_netns_thread() - enter the namespace and create one socket there. */
static void *vsock_tcp_netns_thread(void *arg)
{
	struct vsock_tcp_sock_req *r = arg;

#ifdef _WIN32
	r->fd = -EOPNOTSUPP;	/* never reached: no namespaces, netns_fd stays -1 */
#else
	if (setns(r->netns_fd, CLONE_NEWNET)) {
		r->fd = -errno;
		return NULL;
	}
	r->fd = mvm_sock_stream(r->family);
#endif
	return NULL;
}

/**
 * vsock_tcp_socket() - a TCP socket in the transport's namespace
 * Return: the socket or -errno.
 */
static int vsock_tcp_socket(struct vsock_tcp *tcp)
{
	struct vsock_tcp_sock_req r = {
		.netns_fd = tcp->netns_fd, .family = tcp->addr.ss_family, .fd = -EIO,
	};
	pthread_t t;
	int rc;

	if (tcp->netns_fd < 0)
		return mvm_sock_stream(r.family);
	rc = pthread_create(&t, NULL, vsock_tcp_netns_thread, &r);
	if (rc)
		return -rc;
	pthread_join(t, NULL);
	return r.fd;
}

/** vsock_tcp_addr() - the transport's address with @port filled in. */
static void vsock_tcp_addr(const struct vsock_tcp *tcp, uint32_t port,
			   struct sockaddr_storage *ss)
{
	*ss = tcp->addr;
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

/**
 * vsock_tcp_connect() - &mvm_vsock_transport.connect: TCP to host:@port within @timeout_ms
 * Return: a blocking socket, or -ECONNREFUSED, -ETIMEDOUT, -errno.
 */
static int vsock_tcp_connect(void *ctx, uint32_t port, int timeout_ms)
{
	struct vsock_tcp *tcp = ctx;
	struct sockaddr_storage ss;
	int fd, rc, err, one = 1;

	if (port == 0 || port > 65535)
		return -EINVAL;
	fd = vsock_tcp_socket(tcp);
	if (fd < 0)
		return fd;
	mvm_sock_nonblock(fd, 1);
	vsock_tcp_addr(tcp, port, &ss);
	if (connect(fd, (struct sockaddr *)&ss, tcp->addr_len)) {
		err = mvm_sock_errno();
		/* Winsock says EWOULDBLOCK where POSIX says EINPROGRESS */
		if (err != EINPROGRESS && err != EAGAIN) {
			rc = -err;
			goto err;
		}
	}
	rc = mvm_sock_wait(fd, 1, timeout_ms);
	if (rc == 0) {
		rc = -ETIMEDOUT;
		goto err;
	}
	if (rc < 0)
		goto err;
	err = mvm_sock_so_error(fd);
	if (err) {
		rc = -err;
		goto err;
	}
	mvm_sock_nonblock(fd, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const void *)&one, sizeof(one));
	return fd;
err:
	mvm_sock_close(fd);
	return rc;
}

/** vsock_tcp_accept_thread() - accept on one port until woken by unlisten. */
#ifdef _WIN32
static void *vsock_tcp_accept_thread(void *arg)
{
	struct vsock_tcp_listener *l = arg;
	SOCKET s;
	int rc;

	while (!l->stop) {
		rc = mvm_sock_wait(l->fd, 0, VSOCK_TCP_TICK_MS);
		if (rc < 0 && rc != -EINTR)
			break;
		if (rc <= 0 || l->stop)
			continue;
		s = accept((SOCKET)l->fd, NULL, NULL);
		if (s == INVALID_SOCKET)
			continue;	/* WSAEWOULDBLOCK, WSAECONNRESET: keep serving */
		SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
		mvm_sock_nonblock((int)s, 0);	/* accepted sockets inherit non-blocking mode */
		l->cb(l->opaque, l->port, (int)s);
	}
	return NULL;
}
#else
static void *vsock_tcp_accept_thread(void *arg)
{
	struct vsock_tcp_listener *l = arg;
	struct pollfd pfd[2] = {
		{ .fd = l->fd, .events = POLLIN },
		{ .fd = l->wake, .events = POLLIN },
	};
	int fd;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;	/* EAGAIN, ECONNABORTED, EMFILE: keep serving */
		l->cb(l->opaque, l->port, fd);
	}
	return NULL;
}
#endif

/**
 * vsock_tcp_listen() - &mvm_vsock_transport.listen: accept on host:@port
 * Return: 0 or -errno (-EADDRINUSE when the port is taken).
 */
static int vsock_tcp_listen(void *ctx, uint32_t port, mvm_vsock_accept_cb cb, void *opaque)
{
	struct vsock_tcp *tcp = ctx;
	struct vsock_tcp_listener *l;
	struct sockaddr_storage ss;
	int rc, one = 1;

	if (port == 0 || port > 65535)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->tcp = tcp;
	l->port = port;
	l->cb = cb;
	l->opaque = opaque;
#ifdef _WIN32
	l->wake = -1;
#else
	l->wake = eventfd(0, EFD_CLOEXEC);
	if (l->wake < 0) {
		rc = -errno;
		goto err_free;
	}
#endif
	l->fd = vsock_tcp_socket(tcp);
	if (l->fd < 0) {
		rc = l->fd;
		goto err_wake;
	}
#ifdef _WIN32
	/* SO_REUSEADDR on Windows would let another process steal the port: the opposite */
	setsockopt(l->fd, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one, sizeof(one));
#else
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
#endif
	vsock_tcp_addr(tcp, port, &ss);
	if (bind(l->fd, (struct sockaddr *)&ss, tcp->addr_len) || listen(l->fd, 128)) {
		rc = -mvm_sock_errno();
		goto err_fd;
	}
	mvm_sock_nonblock(l->fd, 1);
	rc = pthread_create(&l->thread, NULL, vsock_tcp_accept_thread, l);
	if (rc) {
		rc = -rc;
		goto err_fd;
	}
	pthread_mutex_lock(&tcp->lock);
	l->next = tcp->listeners;
	tcp->listeners = l;
	pthread_mutex_unlock(&tcp->lock);
	return 0;
err_fd:
	mvm_sock_close(l->fd);
err_wake:
	if (l->wake >= 0)
		close(l->wake);
#ifndef _WIN32
err_free:
#endif
	free(l);
	return rc;
}

/** vsock_tcp_stop() - stop and free one listener (not linked any more). */
static void vsock_tcp_stop(struct vsock_tcp_listener *l)
{
#ifdef _WIN32
	l->stop = 1;
#else
	uint64_t one = 1;

	/* an eventfd write of 1 cannot fail short of overflow */
	(void)!write(l->wake, &one, sizeof(one));
#endif
	pthread_join(l->thread, NULL);
	mvm_sock_close(l->fd);
	if (l->wake >= 0)
		close(l->wake);
	free(l);
}

/** vsock_tcp_unlisten() - &mvm_vsock_transport.unlisten. */
static void vsock_tcp_unlisten(void *ctx, uint32_t port)
{
	struct vsock_tcp *tcp = ctx;
	struct vsock_tcp_listener **pp, *l = NULL;

	pthread_mutex_lock(&tcp->lock);
	for (pp = &tcp->listeners; *pp; pp = &(*pp)->next) {
		if ((*pp)->port == port) {
			l = *pp;
			*pp = l->next;
			break;
		}
	}
	pthread_mutex_unlock(&tcp->lock);
	if (l)
		vsock_tcp_stop(l);
}

/** vsock_tcp_destroy() - &mvm_vsock_transport.destroy. */
static void vsock_tcp_destroy(void *ctx)
{
	struct vsock_tcp *tcp = ctx;
	struct vsock_tcp_listener *l;

	while ((l = tcp->listeners)) {
		tcp->listeners = l->next;
		vsock_tcp_stop(l);
	}
	if (tcp->netns_fd >= 0)
		close(tcp->netns_fd);
	pthread_mutex_destroy(&tcp->lock);
	free(tcp);
}

static const struct mvm_vsock_transport vsock_tcp_ops = {
	.connect = vsock_tcp_connect,
	.listen = vsock_tcp_listen,
	.unlisten = vsock_tcp_unlisten,
	.destroy = vsock_tcp_destroy,
};

/**
 * vsock_tcp_new() - a TCP transport for @host, optionally in the namespace @netns_path
 * Return: the client, or NULL with mvm_last_error() set.
 */
static mvm_vsock *vsock_tcp_new(const char *netns_path, const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	struct vsock_tcp *tcp;
	mvm_vsock *vs;
	int rc;

	tcp = calloc(1, sizeof(*tcp));
	if (!tcp) {
		mvm_set_error(-ENOMEM, "vsock: out of memory");
		return NULL;
	}
	tcp->netns_fd = -1;
	pthread_mutex_init(&tcp->lock, NULL);
	if (mvm_sock_init()) {
		mvm_set_error(-EIO, "vsock: cannot start Winsock (WSAStartup failed)");
		goto err;
	}
	if (!host)
		host = "127.0.0.1";
	rc = getaddrinfo(host, NULL, &hints, &ai);
	if (rc || !ai || ai->ai_addrlen > sizeof(tcp->addr)) {
		mvm_set_error(-EINVAL, "vsock: cannot resolve '%s': %s", host,
			      rc ? gai_strerror(rc) : "no address");
		goto err;
	}
	memcpy(&tcp->addr, ai->ai_addr, ai->ai_addrlen);
	tcp->addr_len = ai->ai_addrlen;
	freeaddrinfo(ai);
#ifndef _WIN32
	if (netns_path) {
		tcp->netns_fd = open(netns_path, O_RDONLY | O_CLOEXEC);
		if (tcp->netns_fd < 0) {
			mvm_set_error(-errno, "vsock: cannot open network namespace %s: %s",
				      netns_path, strerror(errno));
			goto err;
		}
		rc = vsock_tcp_socket(tcp);	/* fail now, not on the first connect */
		if (rc < 0) {
			mvm_set_error(rc, "vsock: cannot create a socket in namespace %s: %s",
				      netns_path, strerror(-rc));
			goto err;
		}
		mvm_sock_close(rc);
	}
#endif
	vs = mvm_vsock_new(&vsock_tcp_ops, tcp);
	if (!vs)
		goto err;
	vsock_set_peer(vs, host);
	return vs;
err:
	vsock_tcp_destroy(tcp);
	return NULL;
}

mvm_vsock *mvm_vsock_new_tcp(const char *host)
{
	return vsock_tcp_new(NULL, host);
}

mvm_vsock *mvm_vsock_new_tcp_netns(const char *netns_path, const char *host)
{
	if (!netns_path) {
		mvm_set_error(-EINVAL, "vsock: no network namespace given");
		return NULL;
	}
#ifdef _WIN32
	mvm_set_error(-EOPNOTSUPP, "vsock: network namespaces (%s) exist only on Linux; "
		      "use mvm_vsock_new_tcp() on Windows", netns_path);
	return NULL;
#endif
	return vsock_tcp_new(netns_path, host);
}
