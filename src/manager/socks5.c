/* SPDX-License-Identifier: MIT */
/*
 * socks5.c - the host's SOCKS5 server: client -> SOCKS5 -> vsock port 7602 -> guest -> target.
 *
 * Theory of operation
 * -------------------
 * One thread runs an epoll loop over the listening socket, an eventfd, and two sockets per
 * connection (the client's and the stream to the guest).  Every socket is non-blocking; each
 * connection owns two fixed buffers, client->guest (c2a) and guest->client (a2c), so a slow
 * client only ever fills its own buffer and then stops being read from - it cannot hold up
 * anyone else.  Event data points at a small tagged endpoint (listener, wakeup, client side,
 * guest side) and the loop dispatches on the tag.
 *
 * A connection moves through phases:
 *
 *   GREETING -> [AUTH] -> REQUEST -> CONNECTING -> STATUS -> RELAY
 *        \          \         \           \           \        \
 *         `----------`---------`-----------`-----------`--------`--> CLOSING -> freed
 *
 * GREETING/AUTH/REQUEST accumulate the client's bytes in c2a and hand them to the pure parsers
 * of socks5_proto.c, which say "need more", "complete" or "malformed".  A good CONNECT turns
 * into the agent handshake [len][host][port BE], written into c2a ahead of any bytes the
 * client pipelined after its request.
 *
 * CONNECTING: opening a vsock stream may block (a TCP connect, a virtio-vsock round trip),
 * so the loop never does it.  The connection is queued to a few worker threads that only
 * call mvm_vsock_connect() and post the result back through a completion list and the
 * eventfd.  A connection whose client leaves meanwhile is marked dead and freed when its
 * worker result comes back.
 *
 * STATUS: the loop writes the handshake and reads exactly one byte, the agent's status; it
 * becomes the SOCKS reply (socks_rep_from_agent()).  Anything but success is answered and the
 * connection closes.
 *
 * RELAY: bytes flow both ways.  An endpoint is registered with epoll only for the directions
 * that can make progress (EPOLLIN while its source buffer has room and no EOF was seen,
 * EPOLLOUT while there is something to write), and removed from epoll entirely when neither
 * can, so a hung-up peer never makes the level-triggered loop spin.  Half-close: EOF from one
 * side becomes shutdown(SHUT_WR) on the other once the buffer in between is drained; the
 * connection ends when both directions are shut, or on any error.
 *
 * CLOSING: a refused or malformed connection gets its reply flushed, then shutdown(SHUT_WR)
 * and its remaining input drained for a moment, so the client sees a FIN after the reply
 * rather than a reset that could discard it.
 *
 * Deadlines: every connection has one, set by phase (handshake, connect, idle, linger); the
 * loop wakes at least once a second and closes connections past theirs.
 *
 * Limits: max_conns is at most MVM_SOCKS_MAX_CONNS (1000), below the 1,024 streams the vsock
 * device carries, so a relay never fails for want of a guest stream.  RLIMIT_NOFILE is raised
 * to fit max_conns (two descriptors each).  Past max_conns, up to SOCKS_OVER_MAX more clients
 * are taken through the greeting and answered 0x01 (general failure) to their request, with
 * one log line per episode; beyond those, new clients are closed at once.  When accept()
 * runs out of descriptors the listener is paused for 100 ms instead of spinning.
 *
 * Sandbox: the loop, which parses what clients send and relays bytes, drops every capability
 * and installs socks_loop_syscalls[]; the connect workers install socks_worker_syscalls[] and
 * keep CAP_SYS_ADMIN only, which a transport that dials from inside a network namespace
 * (mvm_vsock_new_tcp_netns(), `microvm up --agent-netns`) needs for setns().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "microvm/socks.h"
#include "manager/socks5_proto.h"
#include "runtime/abi.h"
#include "runtime/error.h"
#include "sandbox/sandbox.h"

#define SOCKS_BUF_SIZE		(32 * 1024)
#define SOCKS_LINGER_MS		2000
#define SOCKS_PAUSE_MS		100
#define SOCKS_ACCEPT_BATCH	64
#define SOCKS_MAX_EVENTS	256
/* Clients past max_conns that still get a proper refusal (each holds two buffers). */
#define SOCKS_OVER_MAX		64
#define SOCKS_PUMP_ROUNDS	4

_Static_assert(SOCKS_BUF_SIZE > SOCKS_AUTH_MAX + SOCKS_HANDSHAKE_MAX,
	       "handshake messages must fit a buffer");

enum socks_kind { EP_LISTEN, EP_WAKE, EP_CLIENT, EP_AGENT };

enum socks_phase {
	PH_GREETING,
	PH_AUTH,
	PH_REQUEST,
	PH_CONNECTING,
	PH_STATUS,
	PH_RELAY,
	PH_CLOSING,
};

struct socks_conn;

/**
 * struct socks_ep - one file descriptor in the epoll set
 * @kind:	what it is (dispatch tag)
 * @fd:		the descriptor, -1 if none
 * @events:	events currently registered (valid if @registered)
 * @registered:	in the epoll set
 * @conn:	owning connection (NULL for the listener and the wakeup)
 */
struct socks_ep {
	enum socks_kind kind;
	int fd;
	uint32_t events;
	bool registered;
	struct socks_conn *conn;
};

/**
 * struct socks_buf - a linear buffer: bytes in [start, end) wait to be written
 */
struct socks_buf {
	uint8_t data[SOCKS_BUF_SIZE];
	size_t start;
	size_t end;
};

/**
 * struct socks_conn - one client
 * @cli/@agt:	client socket, guest stream
 * @phase:	where in the protocol
 * @c2a/@a2c:	client->guest and guest->client bytes; c2a also collects the handshake
 * @req:	the parsed request (for logs)
 * @deadline:	monotonic ms after which the connection is closed
 * @cli_eof/@agt_eof:	read returned 0 on that side
 * @cli_shut/@agt_shut:	we sent shutdown(SHUT_WR) on that side
 * @in_worker:	queued to or held by a connect worker
 * @dead:	closed while @in_worker; freed when the worker's result arrives
 * @result:	worker's result: a stream fd or -errno
 * @a2c_proto:	SOCKS reply bytes still queued in @a2c (not counted as relayed)
 * @prev/@next:	list of all connections
 * @qnext:	job or completion queue link
 * @gnext:	graveyard link (freed after the current batch of events)
 */
struct socks_conn {
	struct socks_ep cli;
	struct socks_ep agt;
	enum socks_phase phase;
	struct socks_buf c2a;
	struct socks_buf a2c;
	struct socks_request req;
	uint64_t deadline;
	bool cli_eof, agt_eof, cli_shut, agt_shut;
	bool in_worker;
	bool dead;
	bool over_cap;
	int result;
	size_t a2c_proto;
	struct socks_conn *prev, *next;
	struct socks_conn *qnext;
	struct socks_conn *gnext;
};

struct mvm_socks {
	struct mvm_socks_config cfg;
	char addr[INET6_ADDRSTRLEN];
	char *user, *pass;
	mvm_vsock *vs;

	int epfd;
	struct socks_ep listen;
	struct socks_ep wake;
	uint16_t bound_port;
	bool running;
	uint64_t paused_until;

	pthread_t loop;
	pthread_t *workers;
	unsigned int nworkers;
	pthread_mutex_t lock;		/* jobs, done, stop */
	pthread_cond_t cond;
	struct socks_conn *jobs, **jobs_tail;
	struct socks_conn *done;
	bool stop;

	struct socks_conn *conns;	/* loop thread only */
	unsigned int nover;		/* over_cap connections (loop thread) */
	bool full_logged;		/* this episode at max_conns was logged */
	struct socks_conn *graveyard;	/* closed, freed after the batch of events */

	_Atomic uint64_t st_active, st_accepted, st_relayed, st_refused, st_up, st_down;
};

static uint64_t socks_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/**
 * socks_log() - one line to the configured log callback
 * @s:		server
 * @fmt:	printf format
 */
static void MVM_PRINTF(2, 3) socks_log(struct mvm_socks *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!s->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->cfg.log(s->cfg.log_opaque, line);
}

/**
 * socks_idle_deadline() - when a relayed connection idle from now on gets closed
 * Return: monotonic ms, or never (UINT64_MAX) without an idle timeout.
 */
static uint64_t socks_idle_deadline(struct mvm_socks *s)
{
	if (s->cfg.idle_timeout_ms <= 0)
		return UINT64_MAX;
	return socks_now() + (uint64_t)s->cfg.idle_timeout_ms;
}

/*
 * struct mvm_socks_config as callers may pass it (docs/library.md, "ABI rules"): fields are
 * only appended, each new one at or after the previous size.  64-bit sizes by version:
 * 0.2: 80.
 */
_Static_assert(sizeof(void *) != 8 || sizeof(struct mvm_socks_config) == 80,
	       "struct mvm_socks_config changed: append fields only, record the new size above");

/**
 * socks_config_defaults() - the library's defaults of every field
 * @cfg:	the library's full struct
 */
static void socks_config_defaults(struct mvm_socks_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->port = MVM_SOCKS_DEFAULT_PORT;
	cfg->agent_port = MVM_SOCKS_AGENT_PORT;
	cfg->handshake_timeout_ms = 10000;
	cfg->connect_timeout_ms = 30000;
	cfg->idle_timeout_ms = 3600 * 1000;
	cfg->max_conns = MVM_SOCKS_MAX_CONNS;
	cfg->workers = 4;
}

/**
 * mvm_socks_config_init_sized() - defaults: 127.0.0.1:1080, no auth, timeouts as documented
 * @cfg:	config to fill, as the caller's headers define it
 * @size:	sizeof(*@cfg) in the caller's build (the mvm_socks_config_init() macro)
 */
void mvm_socks_config_init_sized(struct mvm_socks_config *cfg, size_t size)
{
	struct mvm_socks_config d;

	socks_config_defaults(&d);
	mvm_abi_init(cfg, size, &d, sizeof(d));
}

/* ---- buffers ---------------------------------------------------------------------------- */

static size_t buf_len(const struct socks_buf *b)
{
	return b->end - b->start;
}

/**
 * buf_room() - free space at the end, compacting first if that helps
 * Return: bytes that can be appended.
 */
static size_t buf_room(struct socks_buf *b)
{
	if (b->start == b->end) {
		b->start = 0;
		b->end = 0;
	} else if (b->end == sizeof(b->data) && b->start > 0) {
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
	return sizeof(b->data) - b->end;
}

/**
 * buf_append() - queue bytes
 * Return: true if they all fit.
 */
static bool buf_append(struct socks_buf *b, const void *data, size_t len)
{
	if (buf_room(b) < len) {
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
		if (sizeof(b->data) - b->end < len)
			return false;
	}
	memcpy(b->data + b->end, data, len);
	b->end += len;
	return true;
}

/**
 * buf_prepend() - put bytes in front of what is queued (the agent handshake)
 * Return: true if they fit.
 */
static bool buf_prepend(struct socks_buf *b, const void *data, size_t len)
{
	size_t n = buf_len(b);

	if (n + len > sizeof(b->data))
		return false;
	memmove(b->data + len, b->data + b->start, n);
	memcpy(b->data, data, len);
	b->start = 0;
	b->end = n + len;
	return true;
}

/**
 * buf_read() - read from @fd into @b
 * Return: bytes read, 0 on EOF, -EAGAIN if nothing now, other -errno on error.
 */
static ssize_t buf_read(struct socks_buf *b, int fd)
{
	size_t room = buf_room(b);
	ssize_t n;

	if (!room)
		return -EAGAIN;
	do
		n = recv(fd, b->data + b->end, room, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno == -EWOULDBLOCK ? -EAGAIN : -errno;
	b->end += (size_t)n;
	return n;
}

/**
 * buf_write() - write queued bytes to @fd
 * Return: bytes written (may be 0 when nothing is queued), -EAGAIN, or -errno.
 */
static ssize_t buf_write(struct socks_buf *b, int fd)
{
	ssize_t n;

	if (!buf_len(b))
		return 0;
	do
		n = send(fd, b->data + b->start, buf_len(b), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno == -EWOULDBLOCK ? -EAGAIN : -errno;
	b->start += (size_t)n;
	return n;
}

/* ---- epoll registration ----------------------------------------------------------------- */

/**
 * ep_set() - register @ep for exactly @events (0: not at all)
 * @s:		server
 * @ep:		endpoint
 * @events:	EPOLLIN / EPOLLOUT mask wanted
 */
static void ep_set(struct mvm_socks *s, struct socks_ep *ep, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = ep };

	if (ep->fd < 0)
		return;
	if (!events) {
		if (ep->registered)
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, ep->fd, NULL);
		ep->registered = false;
		return;
	}
	if (ep->registered && ep->events == events)
		return;
	if (epoll_ctl(s->epfd, ep->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ep->fd, &ev) == 0) {
		ep->registered = true;
		ep->events = events;
	}
}

/**
 * conn_update() - register both endpoints for what can make progress in the current phase
 * @s:	server
 * @c:	connection
 */
static void conn_update(struct mvm_socks *s, struct socks_conn *c)
{
	uint32_t ce = 0, ae = 0;
	bool a2c_pending = buf_len(&c->a2c) > 0;
	bool c2a_pending = buf_len(&c->c2a) > 0;

	switch (c->phase) {
	case PH_GREETING:
	case PH_AUTH:
	case PH_REQUEST:
		ce = EPOLLIN;
		break;
	case PH_CONNECTING:
		break;
	case PH_STATUS:
		ae = EPOLLIN | (c2a_pending ? EPOLLOUT : 0);
		break;
	case PH_RELAY:
		if (!c->cli_eof && buf_room(&c->c2a))
			ce |= EPOLLIN;
		if (!c->agt_eof && buf_room(&c->a2c))
			ae |= EPOLLIN;
		if (c2a_pending && !c->agt_shut)
			ae |= EPOLLOUT;
		break;
	case PH_CLOSING:
		/* after the reply is out, drain the client until EOF or the deadline */
		if (!a2c_pending)
			ce = EPOLLIN;
		break;
	}
	if (a2c_pending && !c->cli_shut)
		ce |= EPOLLOUT;
	ep_set(s, &c->cli, ce);
	ep_set(s, &c->agt, ae);
}

/* ---- connection lifetime ---------------------------------------------------------------- */

static void conn_close_fds(struct mvm_socks *s, struct socks_conn *c)
{
	ep_set(s, &c->cli, 0);
	ep_set(s, &c->agt, 0);
	if (c->cli.fd >= 0)
		close(c->cli.fd);
	if (c->agt.fd >= 0)
		close(c->agt.fd);
	c->cli.fd = -1;
	c->agt.fd = -1;
}

/**
 * conn_free() - close and forget a connection (or mark it dead while a worker holds it)
 * @s:	server
 * @c:	connection
 *
 * The memory goes to the graveyard, freed by socks_bury() once no event of the current
 * epoll batch can point at it any more (its endpoints have fd -1 meanwhile).
 */
static void conn_free(struct mvm_socks *s, struct socks_conn *c)
{
	conn_close_fds(s, c);
	if (c->in_worker) {
		c->dead = true;
		return;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->over_cap)
		s->nover--;
	else
		atomic_fetch_sub(&s->st_active, 1);
	c->gnext = s->graveyard;
	s->graveyard = c;
}

/**
 * socks_bury() - free the connections closed during the last batch of events
 * @s:	server
 */
static void socks_bury(struct mvm_socks *s)
{
	struct socks_conn *c;

	while ((c = s->graveyard)) {
		s->graveyard = c->gnext;
		free(c);
	}
}

/**
 * conn_refuse() - send a final reply (if any is queued) and close cleanly
 * @s:	server
 * @c:	connection
 */
static void conn_refuse(struct mvm_socks *s, struct socks_conn *c)
{
	atomic_fetch_add(&s->st_refused, 1);
	if (c->agt.fd >= 0) {
		ep_set(s, &c->agt, 0);
		close(c->agt.fd);
		c->agt.fd = -1;
	}
	c->phase = PH_CLOSING;
	c->c2a.start = c->c2a.end = 0;
	c->deadline = socks_now() + SOCKS_LINGER_MS;
	if (!buf_len(&c->a2c) && !c->cli_shut) {
		shutdown(c->cli.fd, SHUT_WR);
		c->cli_shut = true;
	}
}

/**
 * conn_reply() - queue a SOCKS reply to the client
 */
static void conn_reply(struct socks_conn *c, uint8_t rep)
{
	uint8_t r[SOCKS_REPLY_LEN];

	buf_append(&c->a2c, r, socks_build_reply(r, sizeof(r), rep));
}

/**
 * conn_submit() - hand the connection to a connect worker
 */
static void conn_submit(struct mvm_socks *s, struct socks_conn *c)
{
	c->phase = PH_CONNECTING;
	c->in_worker = true;
	c->deadline = socks_now() + (uint64_t)s->cfg.connect_timeout_ms + 1000;
	c->qnext = NULL;
	pthread_mutex_lock(&s->lock);
	*s->jobs_tail = c;
	s->jobs_tail = &c->qnext;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* ---- the SOCKS handshake ---------------------------------------------------------------- */

/**
 * conn_parse() - feed the client's bytes to the parser of the current phase
 * @s:	server
 * @c:	connection in GREETING, AUTH or REQUEST
 *
 * Loops while complete messages are available (clients may pipeline).
 */
static void conn_parse(struct mvm_socks *s, struct socks_conn *c)
{
	bool auth = s->user != NULL;
	int n = 0;

	for (;;) {
		const uint8_t *p = c->c2a.data + c->c2a.start;
		size_t len = buf_len(&c->c2a);
		struct socks_greeting g;
		struct socks_auth a;
		uint8_t m, rep;
		uint8_t hs[SOCKS_HANDSHAKE_MAX];

		switch (c->phase) {
		case PH_GREETING:
			n = socks_parse_greeting(p, len, &g);
			if (n <= 0)
				goto incomplete;
			c->c2a.start += (size_t)n;
			m = socks_choose_method(&g, auth);
			buf_append(&c->a2c, (uint8_t[]){ SOCKS_VERSION, m }, 2);
			if (m == SOCKS_METHOD_REJECT) {
				socks_log(s, "client offered no acceptable method (%s required)",
					  auth ? "username/password" : "no authentication");
				conn_refuse(s, c);
				return;
			}
			c->phase = m == SOCKS_METHOD_USERPASS ? PH_AUTH : PH_REQUEST;
			break;
		case PH_AUTH:
			n = socks_parse_auth(p, len, &a);
			if (n <= 0)
				goto incomplete;
			m = socks_auth_check(&a, s->user, s->pass) ? 0 : 1;
			explicit_bzero(&a, sizeof(a));
			explicit_bzero(c->c2a.data + c->c2a.start, (size_t)n);	/* its password */
			c->c2a.start += (size_t)n;
			buf_append(&c->a2c, (uint8_t[]){ SOCKS_AUTH_VERSION, m }, 2);
			if (m) {
				socks_log(s, "authentication failed");
				conn_refuse(s, c);
				return;
			}
			c->phase = PH_REQUEST;
			break;
		case PH_REQUEST:
			n = socks_parse_request(p, len, &c->req, &rep);
			if (n < 0) {
				conn_reply(c, rep);
				conn_refuse(s, c);
				return;
			}
			if (n == 0)
				goto incomplete;
			c->c2a.start += (size_t)n;
			if (rep == SOCKS_REP_OK && c->over_cap)
				rep = SOCKS_REP_FAIL;	/* logged once in socks_accept() */
			if (rep != SOCKS_REP_OK) {
				socks_log(s, "refused command 0x%02x to %s:%u: %s", c->req.cmd,
					  c->req.host, c->req.port, socks_rep_name(rep));
				conn_reply(c, rep);
				conn_refuse(s, c);
				return;
			}
			n = socks_build_handshake(&c->req, hs, sizeof(hs));
			if (n < 0 || !buf_prepend(&c->c2a, hs, (size_t)n)) {
				conn_reply(c, SOCKS_REP_FAIL);
				conn_refuse(s, c);
				return;
			}
			conn_submit(s, c);
			return;
		default:
			return;
		}
	}
incomplete:
	if (n < 0) {
		/* not SOCKS5 (or a broken message): nothing sensible to answer */
		socks_log(s, "malformed SOCKS message, closing");
		conn_refuse(s, c);
	}
}

/**
 * conn_connected() - a worker finished opening the stream to the guest
 * @s:	server
 * @c:	connection (its result is set)
 */
static void conn_connected(struct mvm_socks *s, struct socks_conn *c)
{
	int one = 1, fl;

	c->in_worker = false;
	if (c->dead) {
		if (c->result >= 0)
			close(c->result);
		conn_free(s, c);
		return;
	}
	if (c->result < 0) {
		socks_log(s, "cannot reach the guest's proxy for %s:%u: %s", c->req.host,
			  c->req.port, strerror(-c->result));
		conn_reply(c, socks_rep_from_errno(c->result));
		conn_refuse(s, c);
		conn_update(s, c);
		return;
	}
	c->agt.fd = c->result;
	fl = fcntl(c->agt.fd, F_GETFL);
	if (fl >= 0)
		fcntl(c->agt.fd, F_SETFL, fl | O_NONBLOCK);
	setsockopt(c->agt.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->phase = PH_STATUS;
	conn_update(s, c);
}

/**
 * conn_status() - read the agent's status byte and answer the client
 * @s:	server
 * @c:	connection in PH_STATUS
 */
static void conn_status(struct mvm_socks *s, struct socks_conn *c)
{
	uint8_t st, rep;
	ssize_t n;

	do
		n = recv(c->agt.fd, &st, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		socks_log(s, "guest proxy closed before answering for %s:%u", c->req.host,
			  c->req.port);
		conn_reply(c, SOCKS_REP_FAIL);
		conn_refuse(s, c);
		return;
	}
	rep = socks_rep_from_agent(st);
	conn_reply(c, rep);
	if (rep != SOCKS_REP_OK) {
		socks_log(s, "connect to %s:%u failed: %s", c->req.host, c->req.port,
			  socks_rep_name(rep));
		conn_refuse(s, c);
		return;
	}
	atomic_fetch_add(&s->st_relayed, 1);
	c->a2c_proto = buf_len(&c->a2c);
	c->phase = PH_RELAY;
	c->deadline = socks_idle_deadline(s);
}

/* ---- relay ------------------------------------------------------------------------------ */

/**
 * conn_pump() - move bytes from one side's socket into a buffer and from that buffer out
 * @s:		server
 * @c:		connection
 * @src:	endpoint to read from (may be skipped)
 * @b:		buffer between them
 * @dst:	endpoint to write to
 * @src_eof/@dst_shut:	that direction's flags
 * @counter:	byte counter
 * @proto:	protocol bytes at the head of @b, written but not counted
 *
 * Return: 0, or -errno if the connection must be dropped.
 */
static int conn_pump(struct mvm_socks *s, struct socks_conn *c, struct socks_ep *src,
		     struct socks_buf *b, struct socks_ep *dst, bool *src_eof, bool *dst_shut,
		     _Atomic uint64_t *counter, size_t *proto)
{
	size_t skip;
	ssize_t rd, wr;
	int round;

	/* a few rounds per event while both sides keep up: fewer epoll_wait calls on bulk
	 * transfers, still a bounded share of the loop for this connection */
	for (round = 0; round < SOCKS_PUMP_ROUNDS; round++) {
		rd = 0;
		if (!*src_eof && src->fd >= 0) {
			rd = buf_read(b, src->fd);
			if (rd == 0)
				*src_eof = true;
			else if (rd < 0 && rd != -EAGAIN)
				return (int)rd;
		}
		if (*dst_shut)
			return buf_len(b) ? -EPIPE : 0;
		wr = buf_write(b, dst->fd);
		if (wr < 0 && wr != -EAGAIN)
			return (int)wr;
		if (wr > 0) {
			skip = *proto < (size_t)wr ? *proto : (size_t)wr;
			*proto -= skip;
			atomic_fetch_add(counter, (uint64_t)wr - skip);
		}
		if (rd > 0 || wr > 0)
			c->deadline = socks_idle_deadline(s);
		if (*src_eof && !buf_len(b)) {
			shutdown(dst->fd, SHUT_WR);
			*dst_shut = true;
			return 0;
		}
		if (rd <= 0 || buf_len(b))
			break;
	}
	return 0;
}

/**
 * conn_event() - an event on one of a connection's sockets
 * @s:		server
 * @ep:		the endpoint
 * @events:	what epoll reported
 */
static void conn_event(struct mvm_socks *s, struct socks_ep *ep, uint32_t events)
{
	struct socks_conn *c = ep->conn;
	size_t none = 0;
	ssize_t n;
	int ret;

	switch (c->phase) {
	case PH_GREETING:
	case PH_AUTH:
	case PH_REQUEST:
		if (ep->kind != EP_CLIENT)
			break;
		if (events & EPOLLOUT) {
			n = buf_write(&c->a2c, c->cli.fd);
			if (n < 0 && n != -EAGAIN)
				goto drop;
		}
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			n = buf_read(&c->c2a, c->cli.fd);
			if (n == 0 || (n < 0 && n != -EAGAIN))
				goto drop;
			conn_parse(s, c);
		}
		break;
	case PH_CONNECTING:
		if (ep->kind == EP_CLIENT) {
			n = buf_write(&c->a2c, c->cli.fd);
			if (n < 0 && n != -EAGAIN)
				goto drop;
		}
		break;
	case PH_STATUS:
		if (ep->kind == EP_CLIENT) {
			n = buf_write(&c->a2c, c->cli.fd);
			if (n < 0 && n != -EAGAIN)
				goto drop;
			break;
		}
		if (events & EPOLLOUT) {
			n = buf_write(&c->c2a, c->agt.fd);
			if (n < 0 && n != -EAGAIN) {
				conn_reply(c, SOCKS_REP_FAIL);
				conn_refuse(s, c);
				break;
			}
		}
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			conn_status(s, c);
		break;
	case PH_RELAY:
		ret = conn_pump(s, c, &c->cli, &c->c2a, &c->agt, &c->cli_eof, &c->agt_shut,
				&s->st_up, &none);
		if (!ret)
			ret = conn_pump(s, c, &c->agt, &c->a2c, &c->cli, &c->agt_eof,
					&c->cli_shut, &s->st_down, &c->a2c_proto);
		if (ret || (c->cli_shut && c->agt_shut))
			goto drop;
		break;
	case PH_CLOSING:
		if (ep->kind != EP_CLIENT)
			break;
		n = buf_write(&c->a2c, c->cli.fd);
		if (n < 0 && n != -EAGAIN)
			goto drop;
		if (!buf_len(&c->a2c) && !c->cli_shut) {
			shutdown(c->cli.fd, SHUT_WR);
			c->cli_shut = true;
		}
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			uint8_t sink[4096];

			n = recv(c->cli.fd, sink, sizeof(sink), 0);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				goto drop;
		}
		break;
	}
	conn_update(s, c);
	return;
drop:
	conn_free(s, c);
}

/* ---- listener, workers, loop ------------------------------------------------------------ */

/**
 * socks_accept() - accept what is pending on the listener
 * @s:	server
 */
static void socks_accept(struct mvm_socks *s)
{
	int i, fd, one = 1;

	for (i = 0; i < SOCKS_ACCEPT_BATCH; i++) {
		struct socks_conn *c;
		bool over;

		fd = accept4(s->listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				socks_log(s, "accept: %s, pausing", strerror(errno));
				ep_set(s, &s->listen, 0);
				s->paused_until = socks_now() + SOCKS_PAUSE_MS;
			}
			return;
		}
		over = atomic_load(&s->st_active) >= s->cfg.max_conns;
		if (over && !s->full_logged) {
			socks_log(s, "connection limit reached (%u open): refusing new clients",
				  s->cfg.max_conns);
			s->full_logged = true;
		} else if (!over && s->full_logged) {
			socks_log(s, "below the connection limit again");
			s->full_logged = false;
		}
		if ((over && s->nover >= SOCKS_OVER_MAX) || !(c = calloc(1, sizeof(*c)))) {
			atomic_fetch_add(&s->st_refused, 1);
			close(fd);
			continue;
		}
		c->over_cap = over;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->cli = (struct socks_ep){ .kind = EP_CLIENT, .fd = fd, .conn = c };
		c->agt = (struct socks_ep){ .kind = EP_AGENT, .fd = -1, .conn = c };
		c->phase = PH_GREETING;
		c->deadline = socks_now() + (uint64_t)s->cfg.handshake_timeout_ms;
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		if (over)
			s->nover++;
		else
			atomic_fetch_add(&s->st_active, 1);
		atomic_fetch_add(&s->st_accepted, 1);
		conn_update(s, c);
	}
}

/* The connect workers: mvm_vsock_connect() over any transport. */
static const int socks_worker_syscalls[] = {
	SANDBOX_SYS(socketpair),	/* virtio-vsock: the host end of a stream... */
	SANDBOX_SYS(epoll_ctl),		/* ...added to the device's engine (vsock.c) */
	SANDBOX_SYS(socket),		/* TCP transport */
	SANDBOX_SYS(connect),
	SANDBOX_SYS(poll),		/* connect timeout */
	SANDBOX_SYS(ppoll),
	SANDBOX_SYS(getsockopt),	/* SO_ERROR */
	SANDBOX_SYS(setsockopt),	/* TCP_NODELAY */
	SANDBOX_SYS(fcntl),		/* O_NONBLOCK on and off */
	SANDBOX_SYS(sendto),		/* transport handshakes */
	SANDBOX_SYS(recvfrom),
	SANDBOX_SYS(shutdown),		/* a transport closing a stream it gives up on */
	SANDBOX_SYS(sendmsg),		/* namespace backend: ask the box for a stream... */
	SANDBOX_SYS(recvmsg),		/* ...and receive it (SCM_RIGHTS) */
	SANDBOX_SYS(openat),		/* a transport may read its key file */
	SANDBOX_SYS(clone3),		/* --agent-netns: a short thread creates the socket... */
	SANDBOX_SYS(clone),
	SANDBOX_SYS(setns),		/* ...inside the agent's network namespace */
};

/**
 * socks_worker() - connect-worker thread: open vsock streams for queued connections
 * @arg:	the server
 *
 * Return: NULL.
 */
static void *socks_worker(void *arg)
{
	struct mvm_socks *s = arg;
	struct sandbox_list list = SANDBOX_LIST(socks_worker_syscalls);
	struct socks_conn *c;
	uint64_t one = 1;
	int ret;

	prctl(PR_SET_NAME, "mvm-socks-conn");
	ret = sandbox_caps_keep(1ULL << CAP_SYS_ADMIN);
	if (!ret)
		ret = sandbox_filter("SOCKS5 connect worker", &list, 1);
	if (ret)
		return NULL;	/* reported; the other workers and the loop's deadlines go on */
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->jobs && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stop)
			break;
		c = s->jobs;
		s->jobs = c->qnext;
		if (!s->jobs)
			s->jobs_tail = &s->jobs;
		pthread_mutex_unlock(&s->lock);

		c->result = mvm_vsock_connect(s->vs, s->cfg.agent_port, s->cfg.connect_timeout_ms);

		pthread_mutex_lock(&s->lock);
		c->qnext = s->done;
		s->done = c;
		pthread_mutex_unlock(&s->lock);
		if (write(s->wake.fd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow in practice; the loop also polls */
		}
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/**
 * socks_completions() - take finished connects from the workers
 * @s:	server
 */
static void socks_completions(struct mvm_socks *s)
{
	struct socks_conn *c, *next;
	uint64_t v;

	if (read(s->wake.fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to clear */
	}
	pthread_mutex_lock(&s->lock);
	c = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->lock);
	for (; c; c = next) {
		next = c->qnext;
		conn_connected(s, c);
	}
}

/**
 * socks_timers() - close connections past their deadline, resume a paused listener
 * @s:		server
 * @now:	monotonic ms
 */
static void socks_timers(struct mvm_socks *s, uint64_t now)
{
	struct socks_conn *c, *next;

	if (s->paused_until && now >= s->paused_until) {
		s->paused_until = 0;
		ep_set(s, &s->listen, EPOLLIN);
	}
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->dead || c->in_worker || now < c->deadline)
			continue;
		if (c->phase == PH_STATUS) {
			socks_log(s, "guest proxy did not answer for %s:%u in time", c->req.host,
				  c->req.port);
			conn_reply(c, SOCKS_REP_TTL_EXPIRED);
			conn_refuse(s, c);
			conn_update(s, c);
			continue;
		}
		conn_free(s, c);
	}
}

/* The event loop: clients, relays, the wakeup eventfd. */
static const int socks_loop_syscalls[] = {
	SANDBOX_SYS(epoll_wait),
	SANDBOX_SYS(epoll_pwait),
	SANDBOX_SYS(epoll_ctl),
	SANDBOX_SYS(accept4),		/* socks_accept() */
	SANDBOX_SYS(accept),
	SANDBOX_SYS(sendto),		/* replies and relayed bytes */
	SANDBOX_SYS(recvfrom),
	SANDBOX_SYS(shutdown),		/* half-close, linger */
	SANDBOX_SYS(setsockopt),	/* TCP_NODELAY on clients */
	SANDBOX_SYS(getsockopt),
	SANDBOX_SYS(getsockname),
	SANDBOX_SYS(getpeername),
	SANDBOX_SYS(fcntl),		/* O_NONBLOCK */
	SANDBOX_SYS(ioctl),		/* FIONBIO, FIONREAD */
};

/**
 * socks_loop() - the event loop thread
 * @arg:	the server
 *
 * Return: NULL.
 */
static void *socks_loop(void *arg)
{
	struct mvm_socks *s = arg;
	struct sandbox_list list = SANDBOX_LIST(socks_loop_syscalls);
	struct epoll_event evs[SOCKS_MAX_EVENTS];
	uint64_t last_tick = socks_now();

	prctl(PR_SET_NAME, "mvm-socks");
	if (sandbox_thread("SOCKS5 loop", &list, 1))
		return NULL;

	for (;;) {
		int i, n, timeout = s->paused_until ? SOCKS_PAUSE_MS : 1000;
		uint64_t now;
		bool stop;

		n = epoll_wait(s->epfd, evs, SOCKS_MAX_EVENTS, timeout);
		pthread_mutex_lock(&s->lock);
		stop = s->stop;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		for (i = 0; i < n; i++) {
			struct socks_ep *ep = evs[i].data.ptr;

			switch (ep->kind) {
			case EP_LISTEN:
				socks_accept(s);
				break;
			case EP_WAKE:
				socks_completions(s);
				break;
			default:
				/* closed earlier in this batch: still allocated (graveyard) */
				if (ep->fd >= 0)
					conn_event(s, ep, evs[i].events);
				break;
			}
		}
		now = socks_now();
		if (now - last_tick >= 250 || s->paused_until) {
			socks_timers(s, now);
			last_tick = now;
		}
		socks_bury(s);
	}
	return NULL;
}

/* ---- setup ------------------------------------------------------------------------------ */

mvm_socks *mvm_socks_new(const struct mvm_socks_config *user_cfg, mvm_vsock *vs)
{
	struct mvm_socks_config c, *cfg = &c;
	struct mvm_socks *s;

	/* the caller's fields over the defaults: an older caller's struct is shorter */
	socks_config_defaults(&c);
	if (mvm_abi_copy_in(&c, sizeof(c), user_cfg, "mvm_socks_config"))
		return NULL;
	if (!vs) {
		mvm_set_error(-EINVAL, "SOCKS server needs a vsock client");
		return NULL;
	}
	if (cfg->username && (!cfg->password || !*cfg->username || !*cfg->password ||
			      strlen(cfg->username) > 255 || strlen(cfg->password) > 255)) {
		mvm_set_error(-EINVAL, "SOCKS username and password must be 1..255 bytes each");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		mvm_set_error(-ENOMEM, "out of memory");
		return NULL;
	}
	s->cfg = *cfg;
	snprintf(s->addr, sizeof(s->addr), "%s", cfg->addr ? cfg->addr : "127.0.0.1");
	s->cfg.addr = s->addr;
	if (cfg->username) {
		s->user = strdup(cfg->username);
		s->pass = strdup(cfg->password);
		if (!s->user || !s->pass) {
			mvm_socks_free(s);
			mvm_set_error(-ENOMEM, "out of memory");
			return NULL;
		}
	}
	s->cfg.username = NULL;
	s->cfg.password = NULL;
	if (!s->cfg.workers)
		s->cfg.workers = 1;
	if (!s->cfg.max_conns)
		s->cfg.max_conns = 1;
	if (s->cfg.max_conns > MVM_SOCKS_MAX_CONNS)
		s->cfg.max_conns = MVM_SOCKS_MAX_CONNS;
	s->vs = vs;
	s->epfd = -1;
	s->listen = (struct socks_ep){ .kind = EP_LISTEN, .fd = -1 };
	s->wake = (struct socks_ep){ .kind = EP_WAKE, .fd = -1 };
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	return s;
}

/**
 * socks_raise_nofile() - make room for two descriptors per connection
 * @s:	server
 */
static void socks_raise_nofile(struct mvm_socks *s)
{
	rlim_t want = (rlim_t)s->cfg.max_conns * 2 + 64;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
		socks_log(s, "file descriptor limit %lu allows fewer than %u connections",
			  (unsigned long)rl.rlim_cur, s->cfg.max_conns);
}

/**
 * socks_bind() - create the listening socket
 * @s:	server
 *
 * Return: 0 or -errno with the error message set.
 */
static int socks_bind(struct mvm_socks *s)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;
	bool loopback;
	int fd, one = 1, err;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, s->addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(s->cfg.port);
		loopback = (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
		sl = sizeof(*in4);
	} else if (inet_pton(AF_INET6, s->addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(s->cfg.port);
		loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
		sl = sizeof(*in6);
	} else {
		return mvm_set_error(-EINVAL, "SOCKS listen address '%s' is not a numeric IP address",
				     s->addr);
	}
	if (!loopback && !s->cfg.allow_remote)
		return mvm_set_error(-EPERM,
				     "refusing to serve SOCKS on non-loopback address %s: anyone "
				     "reaching it could use the VPN (force it explicitly to allow)",
				     s->addr);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mvm_set_error(-errno, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 4096)) {
		err = -errno;
		close(fd);
		return mvm_set_error(err, "cannot listen on %s:%u for SOCKS: %s", s->addr,
				     s->cfg.port, strerror(-err));
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	s->bound_port = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
	s->listen.fd = fd;
	return 0;
}

int mvm_socks_start(mvm_socks *s)
{
	unsigned int i;
	int ret;

	if (s->running)
		return mvm_set_error(-EBUSY, "SOCKS server already running");
	socks_raise_nofile(s);
	ret = socks_bind(s);
	if (ret)
		return ret;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->epfd < 0 || s->wake.fd < 0) {
		ret = mvm_set_error(-errno, "epoll/eventfd: %s", strerror(errno));
		goto err_fds;
	}
	s->listen.registered = s->wake.registered = false;
	ep_set(s, &s->listen, EPOLLIN);
	ep_set(s, &s->wake, EPOLLIN);
	s->stop = false;
	s->jobs = NULL;
	s->jobs_tail = &s->jobs;
	s->done = NULL;
	s->workers = calloc(s->cfg.workers, sizeof(*s->workers));
	if (!s->workers) {
		ret = mvm_set_error(-ENOMEM, "out of memory");
		goto err_fds;
	}
	for (s->nworkers = 0; s->nworkers < s->cfg.workers; s->nworkers++)
		if (pthread_create(&s->workers[s->nworkers], NULL, socks_worker, s))
			break;
	if (!s->nworkers || pthread_create(&s->loop, NULL, socks_loop, s)) {
		ret = mvm_set_error(-EAGAIN, "cannot start SOCKS threads");
		goto err_threads;
	}
	s->running = true;
	return 0;

err_threads:
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	free(s->workers);
	s->workers = NULL;
err_fds:
	if (s->wake.fd >= 0)
		close(s->wake.fd);
	if (s->epfd >= 0)
		close(s->epfd);
	close(s->listen.fd);
	s->wake.fd = s->listen.fd = s->epfd = -1;
	return ret;
}

uint16_t mvm_socks_port(mvm_socks *s)
{
	return s->running ? s->bound_port : 0;
}

void mvm_socks_stats(mvm_socks *s, struct mvm_socks_stats *st)
{
	st->active = atomic_load(&s->st_active);
	st->accepted = atomic_load(&s->st_accepted);
	st->relayed = atomic_load(&s->st_relayed);
	st->refused = atomic_load(&s->st_refused);
	st->bytes_up = atomic_load(&s->st_up);
	st->bytes_down = atomic_load(&s->st_down);
}

void mvm_socks_stop(mvm_socks *s)
{
	struct socks_conn *c, *next;
	uint64_t one = 1;
	unsigned int i;

	if (!s->running)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (write(s->wake.fd, &one, sizeof(one)) < 0) {
		/* the loop also wakes up every second */
	}
	pthread_join(s->loop, NULL);
	for (i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	free(s->workers);
	s->workers = NULL;
	/* all threads are gone: finish what they left behind */
	for (c = s->done; c; c = next) {
		next = c->qnext;
		c->in_worker = false;
		if (c->result >= 0)
			close(c->result);
	}
	for (c = s->jobs; c; c = c->qnext)
		c->in_worker = false;
	s->done = s->jobs = NULL;
	while (s->conns) {
		s->conns->in_worker = false;
		conn_free(s, s->conns);
	}
	socks_bury(s);
	close(s->listen.fd);
	close(s->wake.fd);
	close(s->epfd);
	s->listen.fd = s->wake.fd = s->epfd = -1;
	s->running = false;
}

void mvm_socks_free(mvm_socks *s)
{
	if (!s)
		return;
	mvm_socks_stop(s);
	if (s->pass)
		explicit_bzero(s->pass, strlen(s->pass));
	free(s->user);
	free(s->pass);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

int mvm_socks_parse_listen(const char *spec, char *addr, size_t addr_cap, uint16_t *port)
{
	const char *host = spec, *colon, *p;
	size_t hlen;
	char *end;
	unsigned long v;

	if (!spec || !*spec)
		return mvm_set_error(-EINVAL, "empty SOCKS address");
	p = NULL;
	if (spec[0] == '[') {
		colon = strchr(spec, ']');
		if (!colon || (colon[1] && colon[1] != ':'))
			return mvm_set_error(-EINVAL, "bad SOCKS address '%s' (use [ADDR]:PORT)",
					     spec);
		host = spec + 1;
		hlen = (size_t)(colon - host);
		if (colon[1] == ':')
			p = colon + 2;
	} else if ((colon = strrchr(spec, ':')) && strchr(spec, ':') == colon) {
		hlen = (size_t)(colon - spec);
		p = colon + 1;
	} else if (!strchr(spec, '.') && !strchr(spec, ':')) {
		hlen = 0;		/* just a port */
		p = spec;
	} else {
		hlen = strlen(spec);	/* an address without port (bare IPv6 included) */
	}
	if (p) {
		v = strtoul(p, &end, 10);
		if (!*p || *end || v > 65535)
			return mvm_set_error(-EINVAL, "bad SOCKS port in '%s'", spec);
		*port = (uint16_t)v;
	}
	if (hlen) {
		if (hlen >= addr_cap)
			return mvm_set_error(-EINVAL, "SOCKS address too long: '%s'", spec);
		memcpy(addr, host, hlen);
		addr[hlen] = '\0';
	}
	return 0;
}

int mvm_socks_generate_secret(char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[32];
	size_t i, got = 0;
	ssize_t n;

	if (cap < sizeof(raw) * 2 + 1)
		return mvm_set_error(-ENOSPC, "secret buffer too small");
	while (got < sizeof(raw)) {
		n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return mvm_set_error(-errno, "getrandom: %s", strerror(errno));
		}
		got += (size_t)n;
	}
	for (i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * sizeof(raw)] = '\0';
	explicit_bzero(raw, sizeof(raw));
	return 0;
}
