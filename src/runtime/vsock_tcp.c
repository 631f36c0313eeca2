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
 * namespace.  setns() changes the namespace of the calling thread only, so one helper thread,
 * started by mvm_vsock_new_tcp_netns() on the creating thread, enters the namespace once,
 * drops every capability, installs a seccomp filter that allows socket() and keeps up to
 * VSOCK_TCP_SPARE sockets ready; a socket keeps the namespace it was created in, so a caller
 * takes one from that stock (under a mutex, without a system call) and connects or binds it
 * from its own thread.  The helper refills the stock when it is down to half, so a
 * connection costs its socket() and about one futex wake-up instead of a thread's start
 * and exit (clone3, setns, set_robust_list, rseq, madvise, the join: a tenth of the system
 * calls of a SOCKS connection through `microvm up --agent-netns`, docs/performance.md).
 * The callers need no capability for it (the SOCKS connect workers keep none).  The helper
 * (`mvm-vsock-ns`) takes no signals: it lives as long as the transport, in the namespace and
 * under the filter, where an application's handler would kill the process.  A refill that
 * fails (EMFILE) is answered to a caller only when one waits on an empty stock; otherwise it
 * is dropped and the next caller's wake-up tries again, so nobody gets an old error.
 *
 * listen: the socket is created (in the namespace, if any), bound and listening in the caller's
 * thread, so its errors (-EADDRINUSE) are the caller's.  One libuv loop per transport, on a thread
 * started by the first listen (runtime/loop_thread.c), then watches every listening socket with a
 * uv_poll (epoll on Linux, AFD polling on Windows) and, when one is readable, accept()s on it
 * itself and hands the plain stream (blocking, not inherited: the same fd/SOCKET as ever) to the
 * callback, on the loop thread.  Accepting ourselves rather than through uv_accept() keeps the
 * stream out of libuv, which would own and close it.  Listen and unlisten from other threads
 * change the listener list under the lock and wake the loop with uv_async_send(); they wait for
 * the loop to say the poll started / the socket is closed (a condition variable), so unlisten
 * returns at once with the port free, on both OSes (on Windows, closing a poll handle needs its
 * outstanding request to complete: see vsock_tcp_poke()).  From the loop thread itself (an accept
 * callback) they act inline instead of waiting.  mvm_vsock_free() (destroy) closes the wake
 * handle, which ends uv_run(), and joins the thread.
 *
 * Windows (WSL2 backend): the same code over Winsock2 through compat.h; there are no network
 * namespaces, so mvm_vsock_new_tcp_netns() fails with -EOPNOTSUPP.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef _WIN32
#include <sched.h>
#endif
#ifdef __linux__
#include <sys/prctl.h>

#include "sandbox/sandbox.h"
#endif


#include "microvm/vsock.h"
#include "runtime/compat.h"
#include "runtime/error.h"
#include "runtime/loop_thread.h"
#include "runtime/vsock_client.h"

#define VSOCK_TCP_BATCH 16	/* streams accepted per wake-up of one listener */
#define VSOCK_TCP_POKE_MS 1000	/* Windows: wait for the poke to make the socket readable */
#define VSOCK_TCP_SPARE 4	/* sockets the namespace helper keeps ready */

/* A listener's life: NEW (linked, socket listening) -> ACTIVE (polled by the loop) or FAILED
 * -> STOPPING (unlisten asked) -> CLOSED (the socket is closed). */
enum vsock_tcp_state {
	VSOCK_L_NEW,
	VSOCK_L_ACTIVE,
	VSOCK_L_FAILED,
	VSOCK_L_STOPPING,
	VSOCK_L_CLOSED,
};

/**
 * struct vsock_tcp_listener - one listening port
 * @fd:		listening socket (non-blocking; polled by @poll; closed right after uv_close(),
 *		on Windows by the close callback)
 * @poke:	Windows: our own connection that wakes the poll for its close (vsock_tcp_poke())
 * @state:	see &enum vsock_tcp_state (under @tcp->lock)
 * @polling:	@poll is initialised and not yet being closed (loop thread only)
 * @orphan:	no thread waits for the close: the close callback frees the listener
 */
struct vsock_tcp_listener {
	struct vsock_tcp_listener *next;
	struct vsock_tcp *tcp;
	uint32_t port;
	int fd;
	int poke;
	enum vsock_tcp_state state;
	bool polling;
	bool orphan;
	mvm_vsock_accept_cb cb;
	void *opaque;
	uv_poll_t poll;
};

/**
 * struct vsock_tcp_ns - the namespace helper (Linux, mvm_vsock_new_tcp_netns() only)
 * @lock:	protects the rest
 * @want:	the helper waits here for the stock to run low (or @quit)
 * @ready:	callers wait here for a socket or an error
 * @thread:	the helper, while @started
 * @spare:	sockets created in the namespace, @nspare of them
 * @err:	-errno the helper could not create a socket with, for the caller waiting for it
 *		when the stock was empty (0: none; never kept from an earlier refill)
 * @waiting:	callers waiting on @ready
 */
struct vsock_tcp_ns {
	pthread_mutex_t lock;
	pthread_cond_t want;
	pthread_cond_t ready;
	pthread_t thread;
	bool started, quit;
	int spare[VSOCK_TCP_SPARE];
	unsigned int nspare;
	int err;
	unsigned int waiting;
};

/**
 * struct vsock_tcp - the transport
 * @ns:		the namespace helper (mvm_vsock_new_tcp_netns())
 * @lock:	protects @listeners, their states, @quit
 * @changed:	a listener changed state (the loop thread broadcasts)
 * @lt:		the event loop on its thread, started by the first listen; its wake handle
 *		tells it to look at the listeners (or @quit)
 */
struct vsock_tcp {
	struct sockaddr_storage addr;	/* port filled per call */
	socklen_t addr_len;
	int netns_fd;			/* -1: current namespace */
	struct vsock_tcp_ns ns;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct vsock_tcp_listener *listeners;
	struct loop_thread lt;
	bool quit;
};

static void vsock_tcp_unlisten(void *ctx, uint32_t port);

#ifndef _WIN32
/* The namespace helper: entering the namespace happened before the filter. */
static const int vsock_tcp_ns_syscalls[] = {
	SANDBOX_SYS(socket),		/* the stock of sockets in the namespace */
};

/**
 * vsock_tcp_ns_thread() - the namespace helper: enter the namespace, keep sockets ready
 * @arg:	the transport
 *
 * Return: NULL.
 */
static void *vsock_tcp_ns_thread(void *arg)
{
	struct vsock_tcp *tcp = arg;
	struct vsock_tcp_ns *ns = &tcp->ns;
	bool later = false;
	int fail = 0, fd;

#ifdef __linux__
	prctl(PR_SET_NAME, "mvm-vsock-ns");
#endif
	if (setns(tcp->netns_fd, CLONE_NEWNET))
		fail = -errno;
#ifdef __linux__
	else {
		struct sandbox_list list = SANDBOX_LIST(vsock_tcp_ns_syscalls);

		if (sandbox_thread("vsock namespace helper", &list, 1))
			fail = -EPERM;
	}
#endif
	pthread_mutex_lock(&ns->lock);
	while (!ns->quit) {
		/* refill when down to half, or at once for a waiting caller; never spin when full,
		 * nor after a failure (@later: try again on the next wake-up) */
		if (later || ns->err || ns->nspare == VSOCK_TCP_SPARE ||
		    (ns->nspare > VSOCK_TCP_SPARE / 2 && !ns->waiting)) {
			later = false;
			pthread_cond_wait(&ns->want, &ns->lock);
			continue;
		}
		while (ns->nspare < VSOCK_TCP_SPARE && !ns->quit) {
			pthread_mutex_unlock(&ns->lock);
			fd = fail ? fail : mvm_sock_stream(tcp->addr.ss_family);
			pthread_mutex_lock(&ns->lock);
			if (fd >= 0) {
				ns->spare[ns->nspare++] = fd;
				if (ns->waiting)
					pthread_cond_broadcast(&ns->ready);
				continue;
			}
			/* The error goes to a caller waiting for it now, never kept for a later one
			 * (an EMFILE from minutes ago): with spares in stock or nobody waiting, it
			 * is dropped and the next caller's wake-up tries again. */
			if (ns->waiting && !ns->nspare) {
				ns->err = fd;
				pthread_cond_broadcast(&ns->ready);
			}
			later = true;
			break;
		}
	}
	pthread_mutex_unlock(&ns->lock);
	return NULL;
}

/**
 * vsock_tcp_ns_start() - start the namespace helper (on the thread creating the transport,
 *			  which may enter namespaces)
 * Return: 0 or -errno.
 */
static int vsock_tcp_ns_start(struct vsock_tcp *tcp)
{
	int rc = sandbox_thread_start(&tcp->ns.thread, vsock_tcp_ns_thread, tcp);

	if (rc)
		return rc;
	tcp->ns.started = true;
	return 0;
}

/** vsock_tcp_ns_stop() - end the namespace helper and close its stock */
static void vsock_tcp_ns_stop(struct vsock_tcp *tcp)
{
	struct vsock_tcp_ns *ns = &tcp->ns;

	if (!ns->started)
		return;
	pthread_mutex_lock(&ns->lock);
	ns->quit = true;
	pthread_cond_signal(&ns->want);
	pthread_mutex_unlock(&ns->lock);
	pthread_join(ns->thread, NULL);
	while (ns->nspare)
		close(ns->spare[--ns->nspare]);
	ns->started = false;
}

/**
 * vsock_tcp_ns_socket() - a socket from the namespace helper's stock
 * Return: the socket or -errno (the helper's failure, once per failure).
 */
static int vsock_tcp_ns_socket(struct vsock_tcp *tcp)
{
	struct vsock_tcp_ns *ns = &tcp->ns;
	int fd;

	pthread_mutex_lock(&ns->lock);
	while (!ns->nspare && !ns->err) {
		ns->waiting++;
		pthread_cond_signal(&ns->want);
		pthread_cond_wait(&ns->ready, &ns->lock);
		ns->waiting--;
	}
	if (ns->nspare) {
		fd = ns->spare[--ns->nspare];
	} else {
		fd = ns->err;
		ns->err = 0;	/* the next caller makes the helper try again */
	}
	if (ns->nspare <= VSOCK_TCP_SPARE / 2)
		pthread_cond_signal(&ns->want);	/* no system call unless the helper waits */
	pthread_mutex_unlock(&ns->lock);
	return fd;
}
#endif

/**
 * vsock_tcp_socket() - a TCP socket in the transport's namespace
 * Return: the socket or -errno.
 */
static int vsock_tcp_socket(struct vsock_tcp *tcp)
{
#ifndef _WIN32
	if (tcp->netns_fd >= 0)
		return vsock_tcp_ns_socket(tcp);
#endif
	return mvm_sock_stream(tcp->addr.ss_family);
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

/**
 * vsock_tcp_on_loop() - whether the caller is the transport's loop thread (call with the lock)
 */
static bool vsock_tcp_on_loop(struct vsock_tcp *tcp)
{
	return loop_thread_is_current(&tcp->lt);
}

/**
 * vsock_tcp_closed() - uv_close callback of a listener's poll handle
 * @h:	the poll handle
 *
 * On Windows the socket (and the poke, see vsock_tcp_retire()) is closed here.  The listener
 * is then CLOSED; the thread that asked for the stop frees it, or this does when no thread
 * waits (a stop from the loop thread itself).
 */
static void vsock_tcp_closed(uv_handle_t *h)
{
	struct vsock_tcp_listener *l = h->data;
	struct vsock_tcp *tcp = l->tcp;
	bool orphan;

#ifdef _WIN32
	mvm_sock_close(l->fd);
	if (l->poke >= 0)
		mvm_sock_close(l->poke);
#endif
	pthread_mutex_lock(&tcp->lock);
	l->state = VSOCK_L_CLOSED;
	orphan = l->orphan;
	pthread_cond_broadcast(&tcp->changed);
	pthread_mutex_unlock(&tcp->lock);
	if (orphan)
		free(l);
}

#ifdef _WIN32
/**
 * vsock_tcp_poke() - make a listener's socket readable before its poll handle closes (Windows)
 * @l:	the listener
 *
 * libuv's Windows poll closes by issuing one more AFD poll on the socket that should cancel
 * the outstanding one; under Wine that poll waits for an event instead (uv_close() hangs in
 * it), and libuv's select() fallback, where AFD polling is unavailable, also finishes only on
 * an event.  A connection of our own to the port is such an event, ready before uv_close()
 * (the caller waits up to VSOCK_TCP_POKE_MS for it); it dies with the listening socket.
 */
static void vsock_tcp_poke(struct vsock_tcp_listener *l)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	vsock_tcp_addr(l->tcp, l->port, &ss);
	if (ss.ss_family == AF_INET && sin->sin_addr.s_addr == htonl(INADDR_ANY))
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
		sin6->sin6_addr = in6addr_loopback;
	l->poke = mvm_sock_stream(ss.ss_family);
	if (l->poke < 0)
		return;
	mvm_sock_nonblock(l->poke, 1);
	connect(l->poke, (struct sockaddr *)&ss, l->tcp->addr_len);	/* completes or not */
}
#endif

/**
 * vsock_tcp_retire() - on the loop thread: stop polling a STOPPING listener and close it
 * @l:	the listener (the lock is held)
 *
 * On Linux the socket is closed at once, so the port is free when unlisten returns even from
 * an accept callback (before the close callback runs).  On Windows it stays open until the
 * close callback (vsock_tcp_closed()), and made readable first (vsock_tcp_poke()).
 */
static void vsock_tcp_retire(struct vsock_tcp_listener *l)
{
	if (!l->polling) {	/* never started: nothing registered with the loop */
		mvm_sock_close(l->fd);
		l->state = VSOCK_L_CLOSED;
		return;
	}
	l->polling = false;
#ifdef _WIN32
	vsock_tcp_poke(l);
	mvm_sock_wait(l->fd, 0, VSOCK_TCP_POKE_MS);
#endif
	uv_poll_stop(&l->poll);
	uv_close((uv_handle_t *)&l->poll, vsock_tcp_closed);
#ifndef _WIN32
	mvm_sock_close(l->fd);
#endif
}

/**
 * vsock_tcp_accept() - one accepted stream from a readable listening socket
 * Return: the stream (blocking, not inherited by child processes), or -1 when there is none
 * now (EAGAIN; ECONNABORTED and EMFILE are also just skipped: the listener keeps serving).
 */
static int vsock_tcp_accept(struct vsock_tcp_listener *l)
{
#ifdef _WIN32
	SOCKET s = accept((SOCKET)l->fd, NULL, NULL);

	if (s == INVALID_SOCKET)
		return -1;
	SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
	mvm_sock_nonblock((int)s, 0);	/* accepted sockets inherit non-blocking mode */
	return (int)s;
#else
	return accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
#endif
}

/**
 * vsock_tcp_readable() - uv_poll callback: accept what is pending and hand it to the callback
 * @p:		the listener's poll handle
 * @status:	0, or a libuv error (then the next readiness is awaited)
 * @events:	UV_READABLE
 *
 * At most VSOCK_TCP_BATCH streams per wake-up, so one busy port cannot starve the others;
 * the poll is level-triggered and fires again for the rest.  The callback may stop this very
 * listener (mvm_vsock_unlisten() from the loop thread): the handle is only freed after this
 * returns, and its state says whether to go on.
 */
static void vsock_tcp_readable(uv_poll_t *p, int status, int events)
{
	struct vsock_tcp_listener *l = p->data;
	struct vsock_tcp *tcp = l->tcp;
	int i, fd;
	bool on;

	(void)events;
	if (status < 0)
		return;
	for (i = 0; i < VSOCK_TCP_BATCH; i++) {
		fd = vsock_tcp_accept(l);
		if (fd < 0)
			return;
		l->cb(l->opaque, l->port, fd);
		pthread_mutex_lock(&tcp->lock);
		on = l->state == VSOCK_L_ACTIVE;
		pthread_mutex_unlock(&tcp->lock);
		if (!on)
			return;
	}
}

/**
 * vsock_tcp_wake() - uv_async callback: start new listeners, stop retiring ones, or quit
 * @a:	the transport's wake handle
 */
static void vsock_tcp_wake(uv_async_t *a)
{
	struct vsock_tcp *tcp = a->data;
	struct vsock_tcp_listener *l;

	pthread_mutex_lock(&tcp->lock);
	for (l = tcp->listeners; l; l = l->next) {
		if (l->state == VSOCK_L_NEW) {
			l->state = VSOCK_L_FAILED;
			if (uv_poll_init_socket(&tcp->lt.loop, &l->poll, (uv_os_sock_t)l->fd) == 0) {
				l->poll.data = l;
				l->polling = true;
				if (uv_poll_start(&l->poll, UV_READABLE, vsock_tcp_readable) == 0)
					l->state = VSOCK_L_ACTIVE;
			}
		}
		if (l->state == VSOCK_L_STOPPING)
			vsock_tcp_retire(l);
	}
	if (tcp->quit)
		loop_thread_end(&tcp->lt);	/* the listeners are closed: uv_run ends */
	pthread_cond_broadcast(&tcp->changed);
	pthread_mutex_unlock(&tcp->lock);
}

/**
 * vsock_tcp_listen() - &mvm_vsock_transport.listen: accept on host:@port
 * Return: 0 or -errno (-EADDRINUSE when the port is taken).
 *
 * The socket is bound and listening when this returns (so errors are the caller's); the loop
 * thread then polls it.  Called from the loop thread itself (an accept callback that starts
 * another listener), the handle is set up inline instead of waiting for the loop.
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
	l->poke = -1;
	l->fd = vsock_tcp_socket(tcp);
	if (l->fd < 0) {
		rc = l->fd;
		goto err_free;
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
	pthread_mutex_lock(&tcp->lock);
	rc = loop_thread_start(&tcp->lt, vsock_tcp_wake, tcp);
	if (rc) {
		pthread_mutex_unlock(&tcp->lock);
		goto err_fd;
	}
	l->state = VSOCK_L_NEW;
	l->next = tcp->listeners;
	tcp->listeners = l;
	if (vsock_tcp_on_loop(tcp)) {
		pthread_mutex_unlock(&tcp->lock);
		vsock_tcp_wake(&tcp->lt.wake);
		pthread_mutex_lock(&tcp->lock);
	} else {
		uv_async_send(&tcp->lt.wake);
		while (l->state == VSOCK_L_NEW)
			pthread_cond_wait(&tcp->changed, &tcp->lock);
	}
	rc = l->state == VSOCK_L_ACTIVE ? 0 : -EIO;
	pthread_mutex_unlock(&tcp->lock);
	if (rc)
		vsock_tcp_unlisten(tcp, port);	/* the poll could not be set up: undo */
	return rc;
err_fd:
	mvm_sock_close(l->fd);
err_free:
	free(l);
	return rc;
}

/**
 * vsock_tcp_stop() - stop one listener and free it (the lock is held)
 * @l:	the listener, linked, not yet STOPPING
 *
 * Off the loop thread the loop is woken and this waits (on @tcp->changed, which releases the
 * lock) until the socket is closed: no callback runs for @l afterwards and the port is free
 * again.  On the loop thread (from an accept callback) the close is started inline and the
 * close callback frees @l.
 */
static void vsock_tcp_stop(struct vsock_tcp *tcp, struct vsock_tcp_listener *l)
{
	struct vsock_tcp_listener **pp;
	bool on_loop = vsock_tcp_on_loop(tcp);

	l->state = VSOCK_L_STOPPING;
	if (on_loop) {
		l->orphan = true;
		vsock_tcp_retire(l);
	} else {
		uv_async_send(&tcp->lt.wake);
		while (l->state != VSOCK_L_CLOSED)
			pthread_cond_wait(&tcp->changed, &tcp->lock);
	}
	for (pp = &tcp->listeners; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	/* on the loop, a listener that was never polled has no close callback to come */
	if (!on_loop || l->state == VSOCK_L_CLOSED)
		free(l);
}

/** vsock_tcp_find() - the live listener on @port, or NULL (lock held) */
static struct vsock_tcp_listener *vsock_tcp_find(struct vsock_tcp *tcp, uint32_t port)
{
	struct vsock_tcp_listener *l;

	for (l = tcp->listeners; l; l = l->next)
		if (l->port == port && l->state != VSOCK_L_STOPPING && l->state != VSOCK_L_CLOSED)
			return l;
	return NULL;
}

/** vsock_tcp_unlisten() - &mvm_vsock_transport.unlisten: returns with the socket closed. */
static void vsock_tcp_unlisten(void *ctx, uint32_t port)
{
	struct vsock_tcp *tcp = ctx;
	struct vsock_tcp_listener *l;

	pthread_mutex_lock(&tcp->lock);
	l = vsock_tcp_find(tcp, port);
	if (l)
		vsock_tcp_stop(tcp, l);
	pthread_mutex_unlock(&tcp->lock);
}

/**
 * vsock_tcp_destroy() - &mvm_vsock_transport.destroy: stop every listener, end the loop
 * thread (not from an accept callback: it would wait for itself).
 */
static void vsock_tcp_destroy(void *ctx)
{
	struct vsock_tcp *tcp = ctx;
	struct vsock_tcp_listener *l;

	pthread_mutex_lock(&tcp->lock);
	while ((l = tcp->listeners))
		vsock_tcp_stop(tcp, l);
	if (tcp->lt.started) {
		tcp->quit = true;
		uv_async_send(&tcp->lt.wake);
	}
	pthread_mutex_unlock(&tcp->lock);
	loop_thread_join(&tcp->lt);
#ifndef _WIN32
	vsock_tcp_ns_stop(tcp);
	pthread_cond_destroy(&tcp->ns.want);
	pthread_cond_destroy(&tcp->ns.ready);
	pthread_mutex_destroy(&tcp->ns.lock);
#endif
	if (tcp->netns_fd >= 0)
		close(tcp->netns_fd);
	pthread_cond_destroy(&tcp->changed);
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
	pthread_cond_init(&tcp->changed, NULL);
#ifndef _WIN32
	pthread_mutex_init(&tcp->ns.lock, NULL);
	pthread_cond_init(&tcp->ns.want, NULL);
	pthread_cond_init(&tcp->ns.ready, NULL);
#endif
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
		rc = vsock_tcp_ns_start(tcp);
		if (!rc)
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
