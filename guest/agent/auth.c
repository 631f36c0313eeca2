// SPDX-License-Identifier: MIT
/*
 * auth.c - the authenticated transport: every TCP connection proves the host's secret first
 *
 * Theory of operation
 *
 *   Over virtio-vsock only our VMM reaches the agent, so connections go straight to the
 *   control or proxy module. Over TCP (the namespace backend, WSL2, tests) anything that can
 *   reach the address could connect, so every accepted connection, on either port, first
 *   runs the mutual challenge-response of common/mvm_auth.c (docs/protocol.md,
 *   "Authentication over TCP") keyed with the auth secret the host provisioned
 *   (--auth-secret-file / --auth-secret-fd; the agent refuses TCP without one).
 *
 *   A handshake is an event-loop object like any connection: it reads at most the bytes the
 *   current message still needs (so nothing that follows the handshake is consumed), sends
 *   the challenge, checks the proof, and on success hands the socket, still unread beyond
 *   the handshake, to the port's module (@adopt: ctl_adopt() or proxy_adopt()). Bytes that
 *   are not the handshake, a wrong proof, end of stream, or MVM_AUTH_TIMEOUT_MS without a
 *   complete handshake close the connection without a byte of the port's protocol. At most
 *   AUTH_PENDING_MAX handshakes run at once; further connections are closed at once, so
 *   unauthenticated clients cannot hold more than that many descriptors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

/* Handshakes in progress at most; more connections are refused until some finish. */
#define AUTH_PENDING_MAX	64

/**
 * struct auth_conn - one connection proving the secret
 * @ev:		socket registration
 * @st:		handshake state
 * @port:	the port it came in on
 * @out:	the challenge
 * @deadline:	agent_now_ms() by which the handshake must be complete
 * @adopt:	the port's module, given the socket once authenticated
 * @next:	list link
 * @prev:	list link
 */
struct auth_conn {
	struct agent_ev ev;
	struct mvm_auth st;
	unsigned int port;
	uint8_t out[MVM_AUTH_CHALLENGE_LEN];
	uint64_t deadline;
	void (*adopt)(struct agent *a, int fd);
	struct auth_conn *next, *prev;
};

/**
 * auth_unlink() - take @c off the agent's list and free it after this batch
 * @a:		agent
 * @c:		handshake
 */
static void auth_unlink(struct agent *a, struct auth_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		a->auth = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->nauth--;
	mvm_auth_wipe(&c->st);
	agent_defer_free(a, c);
}

/**
 * auth_close() - drop a connection that did not authenticate
 * @a:		agent
 * @c:		handshake
 * @why:	for the log
 */
static void auth_close(struct agent *a, struct auth_conn *c, const char *why)
{
	agent_log(a, "port %u: connection refused: %s", c->port, why);
	agent_ev_close(a, &c->ev);
	auth_unlink(a, c);
}

/**
 * auth_done() - authenticated: hand the socket to the port's module
 * @a:		agent
 * @c:		handshake
 */
static void auth_done(struct agent *a, struct auth_conn *c)
{
	int fd = c->ev.fd;

	agent_ev_set(a, &c->ev, 0);
	c->ev.fd = -1;
	auth_unlink(a, c);
	agent_debug(a, "port %u: authenticated", c->port);
	c->adopt(a, fd);
}

/**
 * on_auth() - socket events of a handshake
 * @a:		agent
 * @ev:		the socket (first member of struct auth_conn)
 * @events:	what happened
 */
static void on_auth(struct agent *a, struct agent_ev *ev, uint32_t events)
{
	struct auth_conn *c = (struct auth_conn *)ev;
	uint8_t buf[MVM_AUTH_HELLO_LEN];
	size_t want;
	ssize_t n;
	int r;

	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	want = mvm_auth_agent_want(&c->st);
	n = recv(c->ev.fd, buf, want < sizeof(buf) ? want : sizeof(buf), MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		auth_close(a, c, strerror(errno));
		return;
	}
	if (n == 0) {
		auth_close(a, c, "end of stream during the authentication handshake");
		return;
	}
	r = mvm_auth_agent_input(&c->st, buf, (size_t)n, c->out);
	explicit_bzero(buf, sizeof(buf));
	switch (r) {
	case MVM_AUTH_MORE:
		return;
	case MVM_AUTH_SEND:
		/* 72 bytes into a fresh socket's empty send buffer: all of it, or a dead peer. */
		n = send(c->ev.fd, c->out, sizeof(c->out), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n != (ssize_t)sizeof(c->out))
			auth_close(a, c, "cannot send the challenge");
		return;
	case MVM_AUTH_DONE:
		auth_done(a, c);
		return;
	case -EACCES:
		auth_close(a, c, "wrong authentication proof (not our host's secret)");
		return;
	default:
		auth_close(a, c, "not an authentication handshake");
		return;
	}
}

/**
 * auth_begin() - a new connection on @port: authenticate it first when the transport is TCP
 * @a:		agent
 * @fd:		the accepted, non-blocking socket (owned from here on)
 * @port:	the port it came in on
 * @adopt:	called with @fd once the connection may use the port's protocol
 */
void auth_begin(struct agent *a, int fd, unsigned int port, void (*adopt)(struct agent *a, int fd))
{
	struct auth_conn *c;

	if (a->opts.vsock) {
		adopt(a, fd);
		return;
	}
	if (a->nauth >= AUTH_PENDING_MAX) {
		agent_log(a, "port %u: %d authentication handshakes pending; connection refused",
			  port, AUTH_PENDING_MAX);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->ev.fd = fd;
	c->ev.cb = on_auth;
	c->port = port;
	c->adopt = adopt;
	c->deadline = agent_now_ms() + MVM_AUTH_TIMEOUT_MS;
	if (mvm_auth_agent_init(&c->st, &a->auth_key, port)) {
		agent_log(a, "port %u: cannot start an authentication handshake; connection "
			  "refused", port);
		mvm_auth_wipe(&c->st);
		free(c);
		close(fd);
		return;
	}
	c->next = a->auth;
	if (a->auth)
		a->auth->prev = c;
	a->auth = c;
	a->nauth++;
	if (agent_ev_set(a, &c->ev, EPOLLIN) < 0)
		auth_close(a, c, "epoll");
}

/**
 * auth_tick() - close handshakes older than MVM_AUTH_TIMEOUT_MS
 * @a:		agent
 */
static void auth_tick(struct agent *a)
{
	uint64_t now = agent_now_ms();
	struct auth_conn *c, *next;

	for (c = a->auth; c; c = next) {
		next = c->next;
		if (now >= c->deadline)
			auth_close(a, c, "authentication handshake timed out");
	}
}

/**
 * auth_init() - check pending handshakes' deadlines on every tick
 * @a:		agent (event loop initialised)
 *
 * Return: 0 or -ENOSPC (agent_on_tick())
 */
int auth_init(struct agent *a)
{
	return agent_on_tick(a, auth_tick);
}

/**
 * auth_fini() - close every pending handshake, free the key's context, wipe the secret
 * @a:		agent (set up or not: also called when setup fails)
 */
void auth_fini(struct agent *a)
{
	while (a->auth) {
		struct auth_conn *c = a->auth;

		agent_ev_close(a, &c->ev);
		auth_unlink(a, c);
	}
	mvm_auth_key_fini(&a->auth_key);
	explicit_bzero(a->auth_secret, sizeof(a->auth_secret));
}
