/* SPDX-License-Identifier: MIT */
/**
 * DOC: Theory of operation - vsock client
 *
 * A client is a thin, thread-safe layer over a transport ops table
 * (&struct mvm_vsock_transport): the KVM backend's virtio-vsock device, plain TCP
 * (vsock_tcp.c), or anything a backend supplies.  The transport only knows how to open a
 * stream to a port and how to accept guest-initiated streams; everything a caller needs on
 * top of that lives here:
 *
 * - mvm_vsock_request(): one newline-framed exchange with a single deadline covering
 *   connect, write and read.  The response ends at the first '\n' or at EOF; the buffer
 *   grows up to MVM_VSOCK_MAX_RESPONSE bytes, and a longer answer is -EMSGSIZE (a guest
 *   must not make the host allocate without bound).  EOF before any byte is -EPROTO (the peer closed without
 *   answering), which callers can tell apart from -ECONNREFUSED (nothing listens) and
 *   -ETIMEDOUT.
 * - the set of ports we listen on, so that a second listen on a port fails with
 *   -EADDRINUSE whatever the transport, and mvm_vsock_free() stops every listener.
 *
 * - the authenticated transport: a client keyed with the agent's secret
 *   (mvm_vsock_set_secret(); the nsbox and WSL2 backends key theirs, `microvm up --agent
 *   tcp:` keys it from --agent-secret-file) runs the host side of the mutual
 *   challenge-response (common/mvm_auth.c, docs/protocol.md) inside mvm_vsock_connect(),
 *   before the stream is returned, within the connect timeout.  Until the agent has proved
 *   the secret nothing but a random nonce is sent, so an impostor learns nothing; a failure
 *   is -EACCES, "the agent at HOST:PORT failed authentication (wrong secret or not our
 *   agent)".  Callers (mvm_vsock_request(), the SOCKS server) see no difference.  An
 *   unkeyed client connects plainly (virtio-vsock: only our VMM reaches the guest); a
 *   client given a secret whose key could not be set up (bad hex, out of memory) stays
 *   keyed without a key, so its connects fail rather than go out in plaintext.  The key is
 *   set up for HMAC once, in mvm_vsock_set_secret(); each connect copies it under the lock
 *   and draws its nonce outside it, so connects in parallel threads never share a context.
 *
 * Streams are plain file descriptors owned by the caller; freeing the client does not close
 * them.  On Windows they are Winsock SOCKETs (close them with mvm_vsock_close_stream());
 * compat.h hides the differences.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "microvm/vsock.h"
#include "runtime/compat.h"
#include "runtime/error.h"
#include "runtime/vsock_client.h"
#include "mvm_auth.h"

struct mvm_vsock {
	const struct mvm_vsock_transport *ops;
	void *ctx;
	pthread_mutex_t lock;	/* protects @ports/@nports/@cap and the key */
	uint32_t *ports;	/* ports we listen on */
	size_t nports;
	size_t cap;
	bool keyed;		/* authenticate every stream with @key */
	struct mvm_auth_key key;	/* set up for HMAC once, copied per handshake */
	char peer[80];		/* "the agent at HOST" for error messages */
};

static int vsock_write_all(int fd, const char *buf, size_t len, int64_t deadline);
static int vsock_wait(int fd, int want_write, int64_t deadline);

mvm_vsock *mvm_vsock_new(const struct mvm_vsock_transport *ops, void *ctx)
{
	mvm_vsock *vs;

	if (!ops || !ops->connect) {
		mvm_set_error(-EINVAL, "vsock: transport without a connect operation");
		return NULL;
	}
	vs = calloc(1, sizeof(*vs));
	if (!vs) {
		mvm_set_error(-ENOMEM, "vsock: out of memory");
		return NULL;
	}
	vs->ops = ops;
	vs->ctx = ctx;
	pthread_mutex_init(&vs->lock, NULL);
	return vs;
}

void mvm_vsock_free(mvm_vsock *vs)
{
	size_t i;

	if (!vs)
		return;
	if (vs->ops->unlisten) {
		for (i = 0; i < vs->nports; i++)
			vs->ops->unlisten(vs->ctx, vs->ports[i]);
	}
	if (vs->ops->destroy)
		vs->ops->destroy(vs->ctx);
	pthread_mutex_destroy(&vs->lock);
	free(vs->ports);
	mvm_auth_key_fini(&vs->key);
	free(vs);
}

void mvm_vsock_close_stream(int fd)
{
	if (fd >= 0)
		mvm_sock_close(fd);
}

/**
 * vsock_read_exact() - read exactly @len bytes from @fd before @deadline
 * Return: 0, -EPROTO on EOF first, -ETIMEDOUT or -errno.
 */
static int vsock_read_exact(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
	ssize_t n;
	int rc;

	while (len) {
		rc = vsock_wait(fd, 0, deadline);
		if (rc)
			return rc;
		n = recv(fd, (char *)buf, len, MVM_MSG_DONTWAIT);
		if (n < 0) {
			rc = mvm_sock_errno();
			if (rc == EAGAIN || rc == EINTR)
				continue;
			return -rc;
		}
		if (n == 0)
			return -EPROTO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/**
 * vsock_authenticate() - the host side of the handshake on a fresh stream
 * @st:		the handshake, started by mvm_auth_host_hello() (wiped here)
 * @hello:	the HELLO it made
 * @fd:		the stream
 * @deadline:	absolute ms or negative
 *
 * Return: 0; -EACCES when the peer is not an agent holding our key (wrong MAC, not the
 * handshake, or closed instead of answering); -ETIMEDOUT; -errno.
 */
static int vsock_authenticate(struct mvm_auth *st, const uint8_t hello[MVM_AUTH_HELLO_LEN],
			      int fd, int64_t deadline)
{
	uint8_t chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	int rc;

	rc = vsock_write_all(fd, (const char *)hello, MVM_AUTH_HELLO_LEN, deadline);
	/* The magic first: a peer that answers something else is refused at once. */
	if (!rc)
		rc = vsock_read_exact(fd, chall, MVM_AUTH_MAGIC_LEN, deadline);
	if (!rc && memcmp(chall, MVM_AUTH_MAGIC, MVM_AUTH_MAGIC_LEN))
		rc = -EPROTO;
	if (!rc)
		rc = vsock_read_exact(fd, chall + MVM_AUTH_MAGIC_LEN,
				      sizeof(chall) - MVM_AUTH_MAGIC_LEN, deadline);
	if (!rc)
		rc = mvm_auth_host_finish(st, chall, proof);
	if (rc == -EPROTO || rc == -ECONNRESET)
		rc = -EACCES;
	/* Only now, with the agent proven, does anything but a nonce leave this host. */
	if (!rc)
		rc = vsock_write_all(fd, (const char *)proof, sizeof(proof), deadline);
	mvm_auth_wipe(st);
	mvm_auth_cleanse(proof, sizeof(proof));
	return rc;
}

/*
 * The key's HMAC context is made here, once per secret, outside the lock; connects copy it
 * under the lock (mvm_auth_host_start()), so the old one is freed only once it is out of
 * reach, and a handshake under way keeps its own copy.
 */
int mvm_vsock_set_secret(mvm_vsock *vs, const char *secret)
{
	struct mvm_auth_key key = { 0 }, old;
	int rc;

	if (!vs)
		return mvm_set_error(-EINVAL, "vsock: no client");
	rc = secret ? mvm_auth_key_init_hex(&key, secret, strlen(secret)) : 0;
	/*
	 * Fail closed: a secret was given, so the client stays keyed even when its key could
	 * not be set up; without a key every connect then fails (mvm_auth_host_start():
	 * -EINVAL) instead of going out unauthenticated.
	 */
	pthread_mutex_lock(&vs->lock);
	vs->keyed = secret != NULL;
	old = vs->key;
	vs->key = key;
	pthread_mutex_unlock(&vs->lock);
	mvm_auth_key_fini(&old);
	if (rc == -EINVAL)
		return mvm_set_error(rc, "vsock: the agent secret must be %d hex characters",
				     MVM_SECRET_HEX_LEN);
	if (rc)
		return mvm_set_error(rc, "vsock: cannot set up the agent key: %s", strerror(-rc));
	return 0;
}

void vsock_set_peer(mvm_vsock *vs, const char *host)
{
	pthread_mutex_lock(&vs->lock);
	snprintf(vs->peer, sizeof(vs->peer), "%s", host);
	pthread_mutex_unlock(&vs->lock);
}

int mvm_vsock_connect(mvm_vsock *vs, uint32_t port, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : vsock_now_ms() + timeout_ms;
	uint8_t hello[MVM_AUTH_HELLO_LEN];
	char peer[sizeof(vs->peer)];
	struct mvm_auth st;
	bool keyed;
	int fd, rc = 0;

	if (!vs)
		return mvm_set_error(-EINVAL, "vsock: no client");
	fd = vs->ops->connect(vs->ctx, port, timeout_ms);
	if (fd >= 0) {
		pthread_mutex_lock(&vs->lock);
		keyed = vs->keyed;
		/* copies the key's context: the handshake needs @vs->key no more */
		if (keyed)
			rc = mvm_auth_host_start(&st, &vs->key, port);
		snprintf(peer, sizeof(peer), "%s", vs->peer[0] ? vs->peer : "127.0.0.1");
		pthread_mutex_unlock(&vs->lock);
		if (!keyed)
			return fd;
		/* the nonce is drawn outside the lock */
		if (!rc)
			rc = mvm_auth_host_hello(&st, hello);
		if (rc) {
			mvm_auth_wipe(&st);
			mvm_sock_close(fd);
			return mvm_set_error(rc, "the agent at %s:%u: cannot start the "
					     "authentication handshake: %s", peer, port,
					     strerror(-rc));
		}
		rc = vsock_authenticate(&st, hello, fd, deadline);
		if (!rc)
			return fd;
		mvm_sock_close(fd);
		if (rc == -EACCES)
			return mvm_set_error(rc, "the agent at %s:%u failed authentication "
					     "(wrong secret or not our agent)", peer, port);
		if (rc == -ETIMEDOUT)
			return mvm_set_error(rc, "the agent at %s:%u did not complete the "
					     "authentication handshake within %d ms", peer, port,
					     timeout_ms);
		return mvm_set_error(rc, "the agent at %s:%u: authentication handshake failed: %s",
				     peer, port, strerror(-rc));
	}
	switch (fd) {
	case -ECONNREFUSED:
	case -ECONNRESET:
		return mvm_set_error(-ECONNREFUSED, "vsock: nothing listens on guest port %u",
				     port);
	case -ETIMEDOUT:
		return mvm_set_error(fd, "vsock: connecting to guest port %u timed out", port);
	default:
		return mvm_set_error(fd, "vsock: cannot connect to guest port %u: %s", port,
				     strerror(-fd));
	}
}

/**
 * vsock_deadline_left() - milliseconds left until @deadline
 * @deadline:	absolute CLOCK_MONOTONIC time in ms, or a negative value for "no deadline"
 *
 * Return: -1 for no deadline, otherwise the remaining milliseconds (0 when passed).
 */
static int vsock_deadline_left(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - vsock_now_ms();
	if (left <= 0)
		return 0;
	return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

int64_t vsock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/**
 * vsock_wait() - wait until @fd is readable (or writable: @want_write) or @deadline
 * Return: 0 when ready, -ETIMEDOUT, or -errno.
 */
static int vsock_wait(int fd, int want_write, int64_t deadline)
{
	int rc = mvm_sock_wait(fd, want_write, vsock_deadline_left(deadline));

	if (rc > 0)
		return 0;
	return rc == 0 ? -ETIMEDOUT : rc;
}

/**
 * vsock_write_all() - write @len bytes of @buf to the stream @fd before @deadline
 * Return: 0, or -errno (-ETIMEDOUT, -EPIPE...).
 */
static int vsock_write_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	ssize_t n;
	int rc;

	while (len) {
		rc = vsock_wait(fd, 1, deadline);
		if (rc)
			return rc;
		n = send(fd, buf, len, MVM_MSG_NOSIGNAL | MVM_MSG_DONTWAIT);
		if (n < 0) {
			rc = mvm_sock_errno();
			if (rc == EAGAIN || rc == EINTR)
				continue;
			return -rc;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/**
 * vsock_read_line() - read from @fd until a newline or EOF, before @deadline
 * @fd:		stream
 * @out:	on success the malloc'd, NUL-terminated line without its newline
 * @out_len:	its length
 * @deadline:	absolute ms or negative
 *
 * At most MVM_VSOCK_MAX_RESPONSE bytes before the newline are accepted.
 *
 * Return: 0, -EPROTO for EOF before any byte, -EMSGSIZE for a longer line, -ETIMEDOUT,
 * -ENOMEM or -errno.
 */
static int vsock_read_line(int fd, char **out, size_t *out_len, int64_t deadline)
{
	const size_t max_cap = (size_t)MVM_VSOCK_MAX_RESPONSE + 2;	/* one byte over + NUL */
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *nl;
	ssize_t n;
	int rc;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (cap - len < 4096 && cap < max_cap) {
			size_t ncap = cap * 2 < max_cap ? cap * 2 : max_cap;
			char *nb = realloc(buf, ncap);

			if (!nb) {
				rc = -ENOMEM;
				goto err;
			}
			buf = nb;
			cap = ncap;
		}
		rc = vsock_wait(fd, 0, deadline);
		if (rc)
			goto err;
		n = recv(fd, buf + len, cap - len - 1, MVM_MSG_DONTWAIT);
		if (n < 0) {
			rc = mvm_sock_errno();
			if (rc == EAGAIN || rc == EINTR)
				continue;
			rc = -rc;
			goto err;
		}
		if (n == 0) {
			if (!len) {
				rc = -EPROTO;
				goto err;
			}
			break;
		}
		nl = memchr(buf + len, '\n', (size_t)n);
		if (nl) {
			len = (size_t)(nl - buf);
			break;
		}
		len += (size_t)n;
		if (len > MVM_VSOCK_MAX_RESPONSE)
			break;
	}
	if (len > MVM_VSOCK_MAX_RESPONSE) {
		rc = -EMSGSIZE;
		goto err;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
err:
	free(buf);
	return rc;
}

int mvm_vsock_request(mvm_vsock *vs, uint32_t port, const void *req, size_t req_len,
		      char **resp, size_t *resp_len, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : vsock_now_ms() + timeout_ms;
	size_t len = 0;
	int fd, rc;

	if (!vs || !resp || (!req && req_len))
		return mvm_set_error(-EINVAL, "vsock: bad request arguments");
	*resp = NULL;
	fd = mvm_vsock_connect(vs, port, timeout_ms);
	if (fd < 0)
		return fd;
	rc = vsock_write_all(fd, req, req_len, deadline);
	if (!rc && (!req_len || ((const char *)req)[req_len - 1] != '\n'))
		rc = vsock_write_all(fd, "\n", 1, deadline);
	if (rc)
		goto out;
	rc = vsock_read_line(fd, resp, &len, deadline);
	if (!rc && resp_len)
		*resp_len = len;
out:
	mvm_sock_close(fd);
	switch (rc) {
	case 0:
		return 0;
	case -ETIMEDOUT:
		return mvm_set_error(rc, "vsock: request to guest port %u timed out after %d ms",
				     port, timeout_ms);
	case -EPROTO:
		return mvm_set_error(rc, "vsock: guest port %u closed without answering", port);
	case -EMSGSIZE:
		return mvm_set_error(rc, "vsock: answer from guest port %u exceeds %u bytes", port,
				     (unsigned int)MVM_VSOCK_MAX_RESPONSE);
	default:
		return mvm_set_error(rc, "vsock: request to guest port %u failed: %s", port,
				     strerror(-rc));
	}
}

/** vsock_port_index() - where @port is in @vs->ports, or -1 (call with the lock held). */
static long vsock_port_index(mvm_vsock *vs, uint32_t port)
{
	size_t i;

	for (i = 0; i < vs->nports; i++)
		if (vs->ports[i] == port)
			return (long)i;
	return -1;
}

/**
 * vsock_port_drop() - forget @port (lock held)
 * Return: true when it was in the table.
 */
static bool vsock_port_drop(mvm_vsock *vs, uint32_t port)
{
	long i = vsock_port_index(vs, port);

	if (i < 0)
		return false;
	vs->ports[i] = vs->ports[--vs->nports];
	return true;
}

/*
 * The port table is the lock's; the transport's listen/unlisten run without it.  A transport
 * may wait in them for its own event loop thread (TCP), and that thread runs accept callbacks
 * which may call mvm_vsock_listen/unlisten/connect themselves: holding the lock across the
 * transport call would deadlock them.  So listen reserves the port, calls the transport, and
 * takes the reservation back if that failed; an unlisten that came in between wins (the
 * transport is told to stop listening again).
 */
int mvm_vsock_listen(mvm_vsock *vs, uint32_t port, mvm_vsock_accept_cb cb, void *opaque)
{
	bool kept;
	int rc;

	if (!vs || !cb)
		return mvm_set_error(-EINVAL, "vsock: listen needs a client and a callback");
	if (!vs->ops->listen)
		return mvm_set_error(-EOPNOTSUPP, "vsock: this transport cannot accept connections");
	pthread_mutex_lock(&vs->lock);
	if (vsock_port_index(vs, port) >= 0) {
		pthread_mutex_unlock(&vs->lock);
		return mvm_set_error(-EADDRINUSE, "vsock: already listening on host port %u", port);
	}
	if (vs->nports == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 8;
		uint32_t *p = realloc(vs->ports, cap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&vs->lock);
			return mvm_set_error(-ENOMEM, "vsock: out of memory");
		}
		vs->ports = p;
		vs->cap = cap;
	}
	vs->ports[vs->nports++] = port;		/* reserved */
	pthread_mutex_unlock(&vs->lock);

	rc = vs->ops->listen(vs->ctx, port, cb, opaque);

	pthread_mutex_lock(&vs->lock);
	kept = vsock_port_index(vs, port) >= 0;
	if (rc && kept)
		vsock_port_drop(vs, port);
	pthread_mutex_unlock(&vs->lock);
	if (rc)
		return mvm_set_error(rc, "vsock: cannot listen on host port %u: %s", port,
				     strerror(-rc));
	if (!kept && vs->ops->unlisten)
		vs->ops->unlisten(vs->ctx, port);	/* unlistened meanwhile */
	return 0;
}

void mvm_vsock_unlisten(mvm_vsock *vs, uint32_t port)
{
	bool had;

	if (!vs)
		return;
	pthread_mutex_lock(&vs->lock);
	had = vsock_port_drop(vs, port);
	pthread_mutex_unlock(&vs->lock);
	if (had && vs->ops->unlisten)
		vs->ops->unlisten(vs->ctx, port);
}
