/* SPDX-License-Identifier: MIT */
/*
 * socks5.c - the host's SOCKS5 server: client -> SOCKS5 -> vsock port 7602 -> guest -> target.
 *
 * Theory of operation
 * -------------------
 * One thread runs a libuv loop (epoll on Linux, IOCP on Windows) over the listening socket,
 * an async handle, a tick timer and two streams per connection: the client's (uv_tcp_t) and
 * the stream to the guest (uv_tcp_t for a TCP transport, uv_pipe_t for the AF_UNIX
 * socketpair end of virtio-vsock and the namespace box).  Each connection owns two fixed
 * buffers (allocated with it, 32 KiB each, never zeroed: only what was read into them is
 * written out), client->guest (up) and guest->client (down); a side is read (uv_read_start) only
 * while its buffer has room and stopped (uv_read_stop) when it is full, so a slow client only
 * ever fills its own buffers - it cannot hold up anyone else.  Reads land directly in the
 * buffer (alloc callback); each direction has at most one write in flight, tried
 * synchronously first (uv_try_write) and queued (uv_write) for what the socket did not take.
 *
 * A connection moves through phases:
 *
 *   GREETING -> [AUTH] -> REQUEST -> CONNECTING -> STATUS -> RELAY
 *        \          \         \           \           \        \
 *         `----------`---------`-----------`-----------`--------`--> CLOSING -> freed
 *
 * GREETING/AUTH/REQUEST accumulate the client's bytes in the up buffer and hand them to the
 * pure parsers of socks5_proto.c, which say "need more", "complete" or "malformed".  A good
 * CONNECT turns into the agent handshake [len][host][port BE], put in the up buffer ahead of
 * any bytes the client pipelined after its request.
 *
 * CONNECTING: opening a vsock stream may block (a TCP connect, a virtio-vsock round trip),
 * so the loop never does it.  The connection is queued to a few worker threads (our own, not
 * libuv's shared thread pool: they run under their own seccomp filter) that only call
 * mvm_vsock_connect() and post the result back through a completion list and an eventfd the
 * loop polls (uv_poll; uv_async_send() off Linux, see socks_post()).
 * A connection whose client leaves meanwhile is marked dead and freed when its worker result
 * comes back.
 *
 * STATUS: the loop writes the handshake and reads exactly one byte, the agent's status; it
 * becomes the SOCKS reply (socks_rep_from_agent()).  Anything but success is answered and the
 * connection closes.
 *
 * RELAY: bytes flow both ways.  Half-close: EOF from one side becomes uv_shutdown() of the
 * other once the buffer in between is drained; the connection ends when both directions are
 * shut (both shutdowns completed), or on any error.
 *
 * CLOSING: a refused or malformed connection gets its reply flushed, then uv_shutdown() and
 * its remaining input drained for a moment, so the client sees a FIN after the reply rather
 * than a reset that could discard it.
 *
 * Deadlines: every connection has one, set by phase (handshake, connect, idle, linger); a
 * uv_timer ticks every 250 ms and closes connections past theirs.
 *
 * Lifetime: closing a connection uv_close()s its streams; its memory is freed by the last
 * close callback (libuv first cancels its pending writes and shutdowns), or, for a connection
 * a worker holds, when the worker's result comes back.
 *
 * Limits: max_conns is at most MVM_SOCKS_MAX_CONNS (1000), below the 1,024 streams the vsock
 * device carries, so a relay never fails for want of a guest stream.  RLIMIT_NOFILE is raised
 * to fit max_conns (two descriptors each).  Past max_conns, up to SOCKS_OVER_MAX more clients
 * are taken through the greeting and answered 0x01 (general failure) to their request, with
 * one log line per episode; beyond those, new clients are closed at once.  The listener is a
 * uv_poll on the listening socket and the loop accepts itself (libuv's own accept answers
 * EMFILE by closing pending clients): when accept() runs out of descriptors the listener is
 * paused for 100 ms (a one-shot uv_timer) instead of spinning.
 *
 * Sandbox: the loop, which parses what clients send and relays bytes, drops every capability
 * and installs socks_loop_syscalls[] (what libuv's epoll backend and the accept path call);
 * the connect workers install socks_worker_syscalls[] and drop every capability too (a
 * transport that dials from inside a network namespace, mvm_vsock_new_tcp_netns() for
 * `microvm up --agent-netns`, takes its sockets from a helper thread that entered the
 * namespace when the transport was made).  The loop, its handles and the listening socket are
 * created by mvm_socks_start() on the caller's thread, before the filters.
 *
 * Windows: the same code over libuv's IOCP backend, built with mingw-w64 (docs/windows.md).
 * Sockets are Winsock SOCKETs held in ints (src/runtime/compat.h), the guest stream is always
 * TCP (WSL2), and there is no sandbox or descriptor limit to set.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "microvm/socks.h"
#include "manager/socks5_proto.h"
#include "runtime/abi.h"
#include "runtime/compat.h"
#include "runtime/error.h"

#ifdef _WIN32
/* Windows: no capabilities, seccomp or descriptor limit; sockets are SOCKETs held in ints */
#define explicit_bzero(p, n) SecureZeroMemory((p), (n))
#else
#include <arpa/inet.h>
#include <sys/resource.h>
#endif
#ifdef __linux__
#include <sys/eventfd.h>
#include <sys/prctl.h>

#include "sandbox/sandbox.h"
#endif

#define SOCKS_BUF_SIZE		(32 * 1024)
#define SOCKS_LINGER_MS		2000
#define SOCKS_PAUSE_MS		100
#define SOCKS_TICK_MS		250
#define SOCKS_ACCEPT_BATCH	64
/* Clients past max_conns that still get a proper refusal (each holds two buffers). */
#define SOCKS_OVER_MAX		64

_Static_assert(SOCKS_BUF_SIZE > SOCKS_AUTH_MAX + SOCKS_HANDSHAKE_MAX,
	       "handshake messages must fit a buffer");

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
 * struct socks_buf - a linear buffer: bytes in [start, end) wait to be written
 * @data:	SOCKS_BUF_SIZE bytes, the connection's (&socks_conn.bufs)
 */
struct socks_buf {
	uint8_t *data;
	size_t start;
	size_t end;
};

/** union socks_stream - a connection's side: TCP, or an AF_UNIX stream to the guest */
union socks_stream {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

/**
 * struct socks_dir - one direction of a connection: up (client->guest), down (guest->client)
 * @buf:	bytes read from the source, not yet written to the destination
 * @wreq:	the write in flight
 * @inflight:	bytes at the head of @buf being written by @wreq (0: none)
 * @sreq:	the shutdown of the destination
 * @eof:	the source sent EOF
 * @shut:	the destination was shut down for writing (uv_shutdown() issued)
 * @shut_done:	that shutdown completed
 * @proto:	protocol bytes (SOCKS replies, the agent handshake) at the head of @buf:
 *		written but not counted as relayed
 * @conn:	the connection
 */
struct socks_dir {
	struct socks_buf buf;
	uv_write_t wreq;
	size_t inflight;
	uv_shutdown_t sreq;
	bool eof, shut, shut_done;
	size_t proto;
	struct socks_conn *conn;
};

/**
 * struct socks_conn - one client
 * @s:		the server
 * @cli/@agt:	client stream, guest stream
 * @cli_open/@agt_open:	that stream is initialised and not closed
 * @cli_reading/@agt_reading:	uv_read_start() is in effect
 * @handles:	streams initialised whose close callback has not run yet
 * @phase:	where in the protocol
 * @up/@down:	client->guest and guest->client; up also collects the handshake
 * @status:	the agent's status byte (read into it in PH_STATUS)
 * @req:	the parsed request (for logs)
 * @deadline:	monotonic ms after which the connection is closed
 * @in_worker:	queued to or held by a connect worker
 * @dead:	closed while @in_worker; freed when the worker's result arrives
 * @unlinked:	off the list: freed by the last close callback
 * @over_cap:	accepted past max_conns, to be refused
 * @result:	worker's result: a stream fd or -errno
 * @prev/@next:	list of all connections
 * @qnext:	job or completion queue link
 * @bufs:	the data of @up and @down, last: a new connection zeroes everything before it
 *		only (conn_new()), never the 64 KiB here, which nothing reads before it is written
 */
struct socks_conn {
	struct mvm_socks *s;
	union socks_stream cli;
	union socks_stream agt;
	bool cli_open, agt_open, cli_reading, agt_reading;
	unsigned int handles;
	enum socks_phase phase;
	struct socks_dir up;
	struct socks_dir down;
	uint8_t status;
	struct socks_request req;
	uint64_t deadline;
	bool in_worker;
	bool dead;
	bool unlinked;
	bool over_cap;
	int result;
	struct socks_conn *prev, *next;
	struct socks_conn *qnext;
	uint8_t bufs[2][SOCKS_BUF_SIZE];
};

struct mvm_socks {
	struct mvm_socks_config cfg;
	char addr[INET6_ADDRSTRLEN];
	char *user, *pass;
	mvm_vsock *vs;

	uv_loop_t loop;
	bool loop_ready;
	int listen_fd;
	uv_poll_t listen_poll;		/* readable listening socket */
	uv_async_t wake;		/* stop (and, off Linux, worker completions) */
#ifdef __linux__
	int done_fd;			/* eventfd: worker completions */
	uv_poll_t done_poll;
#endif
	uv_timer_t tick;		/* deadlines */
	uv_timer_t pause;		/* listener paused after EMFILE */
	uv_tcp_t first_stream;		/* see mvm_socks_start() */
	uint16_t bound_port;
	bool running;

	pthread_t loop_thread;
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
	_Atomic uint64_t st_active, st_accepted, st_relayed, st_refused, st_up, st_down;
};

static uint64_t socks_now(void)
{
	return uv_hrtime() / 1000000;	/* CLOCK_MONOTONIC on Linux */
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
 * dir_room() - free space at the end of a direction's buffer, compacting first if that helps
 * @d:	direction
 *
 * Bytes a write has in flight stay where they are: the buffer is compacted only when none is.
 * Return: bytes that can be appended.
 */
static size_t dir_room(struct socks_dir *d)
{
	struct socks_buf *b = &d->buf;

	if (d->inflight)
		return SOCKS_BUF_SIZE - b->end;
	if (b->start == b->end) {
		b->start = 0;
		b->end = 0;
	} else if (b->end == SOCKS_BUF_SIZE && b->start > 0) {
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
	return SOCKS_BUF_SIZE - b->end;
}

/**
 * dir_append() - queue protocol bytes (a SOCKS reply) to be written
 * Return: true if they all fit.
 */
static bool dir_append(struct socks_dir *d, const void *data, size_t len)
{
	struct socks_buf *b = &d->buf;

	if (dir_room(d) < len) {
		if (d->inflight)
			return false;
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
		if (SOCKS_BUF_SIZE - b->end < len)
			return false;
	}
	memcpy(b->data + b->end, data, len);
	b->end += len;
	d->proto += len;
	return true;
}

/**
 * dir_prepend() - put protocol bytes in front of what is queued (the agent handshake)
 * Return: true if they fit.
 */
static bool dir_prepend(struct socks_dir *d, const void *data, size_t len)
{
	struct socks_buf *b = &d->buf;
	size_t n = buf_len(b);

	if (d->inflight || n + len > SOCKS_BUF_SIZE)
		return false;
	memmove(b->data + len, b->data + b->start, n);
	memcpy(b->data, data, len);
	b->start = 0;
	b->end = n + len;
	d->proto += len;
	return true;
}

/* ---- connection lifetime ---------------------------------------------------------------- */

/**
 * conn_new() - a connection with every field zero but its buffers, which are left as they are
 *		(zeroing 64 KiB per connection was half the instructions of a short connection)
 * @s:	server
 *
 * Return: the connection, or NULL when out of memory.
 */
static struct socks_conn *conn_new(struct mvm_socks *s)
{
	struct socks_conn *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	memset(c, 0, offsetof(struct socks_conn, bufs));
	c->s = s;
	c->up.conn = c;
	c->down.conn = c;
	c->up.buf.data = c->bufs[0];
	c->down.buf.data = c->bufs[1];
	return c;
}

static void conn_close_cb(uv_handle_t *h)
{
	struct socks_conn *c = h->data;

	if (--c->handles == 0 && c->unlinked)
		free(c);
}

/** conn_close_agt() - close the stream to the guest (if open) */
static void conn_close_agt(struct socks_conn *c)
{
	if (!c->agt_open)
		return;
	c->agt_open = false;
	c->agt_reading = false;
	uv_close(&c->agt.handle, conn_close_cb);
}

/**
 * conn_unlink() - take a connection off the list; the last close callback frees it
 * @s:	server
 * @c:	connection whose streams are closed or closing
 */
static void conn_unlink(struct mvm_socks *s, struct socks_conn *c)
{
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
	c->unlinked = true;
	if (!c->handles)
		free(c);
}

/**
 * conn_wipe_auth() - wipe what the client sent while its RFC 1929 message may be incomplete
 * @c:	connection
 *
 * A complete authentication message is wiped once parsed (conn_parse()); one cut short (the
 * client went away, timed out or sent garbage) would stay in the buffer, which conn_new() no
 * longer zeroes, and in freed heap memory.  Everything from the buffer's start up to its end
 * is covered: the handshake never fills it, so it was never compacted before this point.
 */
static void conn_wipe_auth(struct socks_conn *c)
{
	if (c->phase <= PH_AUTH && c->up.buf.end)
		explicit_bzero(c->up.buf.data, c->up.buf.end);
}

/**
 * conn_free() - close and forget a connection (or mark it dead while a worker holds it)
 * @s:	server
 * @c:	connection
 */
static void conn_free(struct mvm_socks *s, struct socks_conn *c)
{
	conn_wipe_auth(c);
	if (c->cli_open) {
		c->cli_open = false;
		c->cli_reading = false;
		uv_close(&c->cli.handle, conn_close_cb);
	}
	conn_close_agt(c);
	if (c->in_worker) {
		c->dead = true;
		return;
	}
	if (!c->unlinked)
		conn_unlink(s, c);
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status);
static void conn_write_cb(uv_write_t *req, int status);

/**
 * conn_shut_cli() - send FIN to the client after the last reply (PH_CLOSING)
 * @c:	connection
 */
static void conn_shut_cli(struct socks_conn *c)
{
	struct socks_dir *d = &c->down;

	if (d->shut || !c->cli_open || buf_len(&d->buf) || d->inflight)
		return;
	d->shut = true;
	d->sreq.data = d;
	if (uv_shutdown(&d->sreq, &c->cli.stream, conn_shutdown_cb))
		d->shut_done = true;
}

/**
 * conn_refuse() - send a final reply (if any is queued) and close cleanly
 * @s:	server
 * @c:	connection
 */
static void conn_refuse(struct mvm_socks *s, struct socks_conn *c)
{
	atomic_fetch_add(&s->st_refused, 1);
	conn_close_agt(c);
	conn_wipe_auth(c);
	c->phase = PH_CLOSING;
	if (!c->up.inflight)
		c->up.buf.start = c->up.buf.end = 0;
	c->deadline = socks_now() + SOCKS_LINGER_MS;
}

/**
 * conn_reply() - queue a SOCKS reply to the client
 */
static void conn_reply(struct socks_conn *c, uint8_t rep)
{
	uint8_t r[SOCKS_REPLY_LEN];

	dir_append(&c->down, r, socks_build_reply(r, sizeof(r), rep));
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

/* ---- writing ---------------------------------------------------------------------------- */

/**
 * dir_wrote() - account for @n bytes of @d written to its destination
 * @c:	connection
 * @d:	direction
 * @n:	bytes
 */
static void dir_wrote(struct socks_conn *c, struct socks_dir *d, size_t n)
{
	struct mvm_socks *s = c->s;
	size_t skip = d->proto < n ? d->proto : n;

	d->buf.start += n;
	d->proto -= skip;
	if (n > skip)
		atomic_fetch_add(d == &c->up ? &s->st_up : &s->st_down, (uint64_t)(n - skip));
	if (c->phase == PH_RELAY)
		c->deadline = socks_idle_deadline(s);
}

/**
 * dir_flush() - write what @d holds to its destination, or shut the destination down once
 *		 the source ended and everything is written
 * @c:	connection
 * @d:	direction
 *
 * Return: 0, or a libuv error if the connection must be dropped.
 */
static int dir_flush(struct socks_conn *c, struct socks_dir *d)
{
	bool up = d == &c->up;
	uv_stream_t *dst = up ? &c->agt.stream : &c->cli.stream;
	uv_buf_t ub;
	int n;

	if (!(up ? c->agt_open : c->cli_open) || d->inflight || d->shut)
		return 0;
	if (buf_len(&d->buf)) {
		ub = uv_buf_init((char *)d->buf.data + d->buf.start, (unsigned int)buf_len(&d->buf));
		n = uv_try_write(dst, &ub, 1);
		if (n < 0 && n != UV_EAGAIN)
			return n;
		if (n > 0)
			dir_wrote(c, d, (size_t)n);
		if (buf_len(&d->buf)) {
			ub = uv_buf_init((char *)d->buf.data + d->buf.start,
					 (unsigned int)buf_len(&d->buf));
			d->wreq.data = d;
			n = uv_write(&d->wreq, dst, &ub, 1, conn_write_cb);
			if (n)
				return n;
			d->inflight = buf_len(&d->buf);
			return 0;
		}
	}
	if (d->eof && c->phase == PH_RELAY) {
		d->shut = true;
		d->sreq.data = d;
		n = uv_shutdown(&d->sreq, dst, conn_shutdown_cb);
		if (n)
			return n;
	}
	return 0;
}

static void conn_update(struct mvm_socks *s, struct socks_conn *c);

/**
 * conn_flush() - flush both directions; a failure ends the connection (or, towards a guest
 *		  not yet answering, refuses it)
 * @s:	server
 * @c:	connection
 *
 * Return: false if the connection was freed.
 */
static bool conn_flush(struct mvm_socks *s, struct socks_conn *c)
{
	if (dir_flush(c, &c->up)) {
		if (c->phase != PH_STATUS) {
			conn_free(s, c);
			return false;
		}
		conn_reply(c, SOCKS_REP_FAIL);
		conn_refuse(s, c);
	}
	if (dir_flush(c, &c->down)) {
		conn_free(s, c);
		return false;
	}
	if (c->phase == PH_CLOSING)
		conn_shut_cli(c);
	return true;
}

static void conn_write_cb(uv_write_t *req, int status)
{
	struct socks_dir *d = req->data;
	struct socks_conn *c = d->conn;
	struct mvm_socks *s = c->s;
	size_t n = d->inflight;

	d->inflight = 0;
	if (status == UV_ECANCELED)
		return;		/* its stream is closing */
	if (status < 0) {
		if (d == &c->up && c->phase == PH_STATUS) {
			conn_reply(c, SOCKS_REP_FAIL);
			conn_refuse(s, c);
			conn_update(s, c);
		} else {
			conn_free(s, c);
		}
		return;
	}
	dir_wrote(c, d, n);
	conn_update(s, c);
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct socks_dir *d = req->data;
	struct socks_conn *c = d->conn;

	if (status == UV_ECANCELED)
		return;
	d->shut_done = true;
	if (c->phase == PH_RELAY && c->up.shut_done && c->down.shut_done)
		conn_free(c->s, c);
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
	struct socks_buf *in = &c->up.buf;
	bool auth = s->user != NULL;
	int n = 0;

	for (;;) {
		const uint8_t *p = in->data + in->start;
		size_t len = buf_len(in);
		struct socks_greeting g;
		struct socks_auth a;
		uint8_t m, rep;
		uint8_t hs[SOCKS_HANDSHAKE_MAX];

		switch (c->phase) {
		case PH_GREETING:
			n = socks_parse_greeting(p, len, &g);
			if (n <= 0)
				goto incomplete;
			in->start += (size_t)n;
			m = socks_choose_method(&g, auth);
			dir_append(&c->down, (uint8_t[]){ SOCKS_VERSION, m }, 2);
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
			explicit_bzero(in->data + in->start, (size_t)n);	/* its password */
			in->start += (size_t)n;
			dir_append(&c->down, (uint8_t[]){ SOCKS_AUTH_VERSION, m }, 2);
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
			in->start += (size_t)n;
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
			if (n < 0 || !dir_prepend(&c->up, hs, (size_t)n)) {
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

/* ---- reading ---------------------------------------------------------------------------- */

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
	struct socks_conn *c = h->data;
	struct socks_dir *d = h == &c->cli.handle ? &c->up : &c->down;
	size_t room;

	if (h == &c->agt.handle && c->phase == PH_STATUS) {
		*out = uv_buf_init((char *)&c->status, 1);	/* exactly the status byte */
		return;
	}
	if (c->phase == PH_CLOSING && !d->inflight)
		d->buf.start = d->buf.end = 0;	/* draining: what the client sends is dropped */
	room = dir_room(d);
	*out = uv_buf_init((char *)d->buf.data + d->buf.end, (unsigned int)room);
}

/**
 * conn_status() - the agent's status byte arrived: answer the client
 * @s:	server
 * @c:	connection in PH_STATUS
 */
static void conn_status(struct mvm_socks *s, struct socks_conn *c)
{
	uint8_t rep = socks_rep_from_agent(c->status);

	conn_reply(c, rep);
	if (rep != SOCKS_REP_OK) {
		socks_log(s, "connect to %s:%u failed: %s", c->req.host, c->req.port,
			  socks_rep_name(rep));
		conn_refuse(s, c);
		return;
	}
	atomic_fetch_add(&s->st_relayed, 1);
	c->phase = PH_RELAY;
	c->deadline = socks_idle_deadline(s);
}

static void conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *ub)
{
	struct socks_conn *c = st->data;
	struct mvm_socks *s = c->s;
	bool client = st == &c->cli.stream;
	struct socks_dir *d = client ? &c->up : &c->down;

	if (nread == 0 || nread == UV_ENOBUFS)
		goto update;	/* nothing now / the buffer is full: conn_update() stops reading */
	if (nread == UV_EOF) {
		/* libuv stopped reading this stream */
		if (client)
			c->cli_reading = false;
		else
			c->agt_reading = false;
	}
	switch (c->phase) {
	case PH_GREETING:
	case PH_AUTH:
	case PH_REQUEST:
		if (nread < 0)
			goto drop;
		d->buf.end += (size_t)nread;
		conn_parse(s, c);
		break;
	case PH_STATUS:
		if (client)
			break;
		if (nread < 0) {
			socks_log(s, "guest proxy closed before answering for %s:%u", c->req.host,
				  c->req.port);
			conn_reply(c, SOCKS_REP_FAIL);
			conn_refuse(s, c);
			break;
		}
		conn_status(s, c);
		break;
	case PH_RELAY:
		if (nread == UV_EOF) {
			d->eof = true;
		} else if (nread < 0 || d->shut) {
			goto drop;
		} else {
			d->buf.end += (size_t)nread;
			c->deadline = socks_idle_deadline(s);
		}
		break;
	case PH_CLOSING:
		if (client && nread < 0)
			goto drop;
		break;
	case PH_CONNECTING:
		break;
	}
update:
	conn_update(s, c);
	return;
drop:
	conn_free(s, c);
}

/**
 * conn_set_reading() - start or stop reading a stream
 * @st:		the stream
 * @reading:	its current state, updated
 * @want:	the state wanted
 *
 * Return: 0 or a libuv error.
 */
static int conn_set_reading(uv_stream_t *st, bool *reading, bool want)
{
	int ret = 0;

	if (want && !*reading)
		ret = uv_read_start(st, conn_alloc_cb, conn_read_cb);
	else if (!want && *reading)
		ret = uv_read_stop(st);
	if (!ret)
		*reading = want;
	return ret;
}

/**
 * conn_update() - write what can be written, read what there is room for in the current phase
 * @s:	server
 * @c:	connection
 */
static void conn_update(struct mvm_socks *s, struct socks_conn *c)
{
	bool cr = false, ar = false;

	if (!c->cli_open)
		return;		/* closing */
	if (!conn_flush(s, c))
		return;
	switch (c->phase) {
	case PH_GREETING:
	case PH_AUTH:
	case PH_REQUEST:
		cr = true;
		break;
	case PH_CONNECTING:
		break;
	case PH_STATUS:
		ar = true;
		break;
	case PH_RELAY:
		cr = !c->up.eof && dir_room(&c->up) > 0;
		ar = !c->down.eof && dir_room(&c->down) > 0;
		break;
	case PH_CLOSING:
		/* after the reply is out, drain the client until EOF or the deadline */
		cr = c->down.shut;
		break;
	}
	if (conn_set_reading(&c->cli.stream, &c->cli_reading, cr && !c->up.eof) ||
	    (c->agt_open && conn_set_reading(&c->agt.stream, &c->agt_reading, ar)))
		conn_free(s, c);
}

/* ---- listener, workers, loop ------------------------------------------------------------ */

static void socks_accept_cb(uv_poll_t *h, int status, int events);
static void socks_resume_cb(uv_timer_t *t);

/**
 * socks_accept_fd() - accept one client: non-blocking, not inherited by child processes
 * @s:	server
 *
 * Return: the socket, or -errno (-EAGAIN: none pending).
 */
static int socks_accept_fd(struct mvm_socks *s)
{
#ifdef _WIN32
	SOCKET fd = accept((SOCKET)s->listen_fd, NULL, NULL);
	u_long on = 1;

	if (fd == INVALID_SOCKET)
		return -mvm_sock_errno();
	SetHandleInformation((HANDLE)fd, HANDLE_FLAG_INHERIT, 0);
	ioctlsocket(fd, FIONBIO, &on);
	return (int)fd;
#else
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	return fd < 0 ? -errno : fd;
#endif
}

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

		fd = socks_accept_fd(s);
		if (fd < 0) {
			if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
				socks_log(s, "accept: %s, pausing", strerror(-fd));
				uv_poll_stop(&s->listen_poll);
				uv_timer_start(&s->pause, socks_resume_cb, SOCKS_PAUSE_MS, 0);
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
		if ((over && s->nover >= SOCKS_OVER_MAX) || !(c = conn_new(s))) {
			atomic_fetch_add(&s->st_refused, 1);
			mvm_sock_close(fd);
			continue;
		}
		c->over_cap = over;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
		uv_tcp_init(&s->loop, &c->cli.tcp);
		c->cli.handle.data = c;
		c->handles = 1;
		c->cli_open = true;
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
		if (uv_tcp_open(&c->cli.tcp, (uv_os_sock_t)fd)) {
			mvm_sock_close(fd);
			conn_free(s, c);
			continue;
		}
		conn_update(s, c);
	}
}

static void socks_accept_cb(uv_poll_t *h, int status, int events)
{
	socks_accept(h->data);
}

/* the listener's pause after EMFILE is over */
static void socks_resume_cb(uv_timer_t *t)
{
	struct mvm_socks *s = t->data;

	uv_poll_start(&s->listen_poll, UV_READABLE, socks_accept_cb);
}

/**
 * conn_connected() - a worker finished opening the stream to the guest
 * @s:	server
 * @c:	connection (its result is set)
 */
static void conn_connected(struct mvm_socks *s, struct socks_conn *c)
{
#ifndef _WIN32
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
#endif
	int one = 1, fd = c->result, ret;

	c->in_worker = false;
	if (c->dead) {
		if (fd >= 0)
			mvm_sock_close(fd);
		conn_free(s, c);
		return;
	}
	if (fd < 0) {
		socks_log(s, "cannot reach the guest's proxy for %s:%u: %s", c->req.host,
			  c->req.port, strerror(-fd));
		conn_reply(c, socks_rep_from_errno(fd));
		conn_refuse(s, c);
		conn_update(s, c);
		return;
	}
	/* virtio-vsock and the namespace box hand over AF_UNIX streams, TCP transports TCP */
#ifndef _WIN32
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_UNIX) {
		uv_pipe_init(&s->loop, &c->agt.pipe, 0);
		c->agt.handle.data = c;
		c->handles++;
		c->agt_open = true;
		ret = uv_pipe_open(&c->agt.pipe, fd);
	} else
#endif
	{
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
		uv_tcp_init(&s->loop, &c->agt.tcp);
		c->agt.handle.data = c;
		c->handles++;
		c->agt_open = true;
		ret = uv_tcp_open(&c->agt.tcp, (uv_os_sock_t)fd);
	}
	if (ret) {
		mvm_sock_close(fd);
		socks_log(s, "cannot use the guest stream for %s:%u: %s", c->req.host,
			  c->req.port, uv_strerror(ret));
		conn_reply(c, SOCKS_REP_FAIL);
		conn_refuse(s, c);
	} else {
		c->phase = PH_STATUS;
	}
	conn_update(s, c);
}

#ifdef __linux__
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
};
#endif

/**
 * socks_post() - wake the loop for a worker's completion
 * @s:	server
 *
 * On Linux a plain eventfd write: libuv 1.44's uv_async_send() makes the loop spin (and
 * sched_yield) until the sender has finished its call, which on a busy machine - the
 * eventfd write wakes the loop, the worker gets preempted - cost ~10 % more CPU and latency
 * per connection.  Elsewhere uv_async_send().
 */
static void socks_post(struct mvm_socks *s)
{
#ifdef __linux__
	uint64_t one = 1;

	if (write(s->done_fd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow in practice */
	}
#else
	uv_async_send(&s->wake);
#endif
}

/**
 * socks_worker() - connect-worker thread: open vsock streams for queued connections
 * @arg:	the server
 *
 * Return: NULL.
 */
static void *socks_worker(void *arg)
{
	struct mvm_socks *s = arg;
	struct socks_conn *c;
#ifdef __linux__
	struct sandbox_list list = SANDBOX_LIST(socks_worker_syscalls);

	prctl(PR_SET_NAME, "mvm-socks-conn");
	if (sandbox_thread("SOCKS5 connect worker", &list, 1))
		return NULL;	/* reported; the other workers and the loop's deadlines go on */
#endif
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
		socks_post(s);
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

	pthread_mutex_lock(&s->lock);
	c = s->stop ? NULL : s->done;
	if (c)
		s->done = NULL;
	pthread_mutex_unlock(&s->lock);
	for (; c; c = next) {
		next = c->qnext;
		conn_connected(s, c);
	}
}

/**
 * socks_wake_cb() - stop the loop when asked; off Linux, also the workers' completions
 * @h:	the async handle
 */
static void socks_wake_cb(uv_async_t *h)
{
	struct mvm_socks *s = h->data;
	bool stop;

	pthread_mutex_lock(&s->lock);
	stop = s->stop;
	pthread_mutex_unlock(&s->lock);
	if (stop)
		uv_stop(&s->loop);
	else
		socks_completions(s);
}

#ifdef __linux__
/* socks_done_cb() - the completion eventfd is readable */
static void socks_done_cb(uv_poll_t *h, int status, int events)
{
	struct mvm_socks *s = h->data;
	uint64_t v;

	if (read(s->done_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to clear */
	}
	socks_completions(s);
}
#endif

/**
 * socks_tick_cb() - close connections past their deadline
 * @t:	the tick timer
 */
static void socks_tick_cb(uv_timer_t *t)
{
	struct mvm_socks *s = t->data;
	struct socks_conn *c, *next;
	uint64_t now = socks_now();

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

#ifdef __linux__
/* The event loop: libuv's epoll backend, the listener, the client and guest streams. */
static const int socks_loop_syscalls[] = {
	SANDBOX_SYS(epoll_wait),	/* uv_run() */
	SANDBOX_SYS(epoll_pwait),
	SANDBOX_SYS(epoll_ctl),
	SANDBOX_SYS(accept4),		/* socks_accept() */
	SANDBOX_SYS(shutdown),		/* half-close, linger */
	SANDBOX_SYS(setsockopt),	/* TCP_NODELAY on clients */
	SANDBOX_SYS(getsockname),	/* the guest stream's family */
	SANDBOX_SYS(fcntl),		/* uv_pipe_open() checks the mode */
	SANDBOX_SYS(ioctl),		/* FIONBIO (uv_tcp_open(), uv_pipe_open()) */
	/* read/write/writev (streams, the async eventfd) and close are in the common set */
};
#endif

/**
 * socks_loop() - the event loop thread
 * @arg:	the server
 *
 * Return: NULL.
 */
static void *socks_loop(void *arg)
{
	struct mvm_socks *s = arg;
#ifdef __linux__
	struct sandbox_list list = SANDBOX_LIST(socks_loop_syscalls);

	prctl(PR_SET_NAME, "mvm-socks");
	if (sandbox_thread("SOCKS5 loop", &list, 1))
		return NULL;
#endif
	uv_run(&s->loop, UV_RUN_DEFAULT);	/* until socks_wake_cb() sees the stop flag */
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
	s->listen_fd = -1;
#ifdef __linux__
	s->done_fd = -1;
#endif
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
#ifndef _WIN32
	rlim_t want = (rlim_t)s->cfg.max_conns * 2 + 64;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
		socks_log(s, "file descriptor limit %lu allows fewer than %u connections",
			  (unsigned long)rl.rlim_cur, s->cfg.max_conns);
#endif
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
	fd = mvm_sock_stream(ss.ss_family);
	if (fd < 0)
		return mvm_set_error(fd, "socket: %s", strerror(-fd));
	mvm_sock_nonblock(fd, 1);
#ifdef _WIN32
	/* SO_REUSEADDR would let another process take the port on Windows */
	setsockopt(fd, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one, sizeof(one));
#else
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
#endif
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 4096)) {
		err = -mvm_sock_errno();
		mvm_sock_close(fd);
		return mvm_set_error(err, "cannot listen on %s:%u for SOCKS: %s", s->addr,
				     s->cfg.port, strerror(-err));
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	s->bound_port = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
	s->listen_fd = fd;
	return 0;
}

/**
 * socks_close_loop() - close the loop's own handles, run their close callbacks (and those of
 *			connections closed just before), close the loop and the listening socket
 * @s:	server, its threads stopped
 */
static void socks_close_loop(struct mvm_socks *s)
{
	uv_handle_t *own[] = {
		(uv_handle_t *)&s->wake, (uv_handle_t *)&s->listen_poll,
		(uv_handle_t *)&s->tick, (uv_handle_t *)&s->pause,
#ifdef __linux__
		(uv_handle_t *)&s->done_poll,
#endif
	};
	size_t i;

	if (s->loop_ready) {
		for (i = 0; i < sizeof(own) / sizeof(own[0]); i++)
			if (own[i]->loop == &s->loop && !uv_is_closing(own[i]))
				uv_close(own[i], NULL);
		uv_run(&s->loop, UV_RUN_DEFAULT);
		uv_loop_close(&s->loop);
		s->loop_ready = false;
	}
	memset(&s->wake, 0, sizeof(s->wake));
#ifdef __linux__
	memset(&s->done_poll, 0, sizeof(s->done_poll));
	if (s->done_fd >= 0)
		close(s->done_fd);
	s->done_fd = -1;
#endif
	memset(&s->listen_poll, 0, sizeof(s->listen_poll));
	memset(&s->tick, 0, sizeof(s->tick));
	memset(&s->pause, 0, sizeof(s->pause));
	if (s->listen_fd >= 0)
		mvm_sock_close(s->listen_fd);
	s->listen_fd = -1;
}

int mvm_socks_start(mvm_socks *s)
{
	unsigned int i;
	int ret;

	if (s->running)
		return mvm_set_error(-EBUSY, "SOCKS server already running");
	ret = mvm_sock_init();
	if (ret)
		return ret;
	socks_raise_nofile(s);
	ret = socks_bind(s);
	if (ret)
		return ret;
	ret = uv_loop_init(&s->loop);
	if (ret) {
		ret = mvm_set_error(-ENOMEM, "event loop: %s", uv_strerror(ret));
		mvm_sock_close(s->listen_fd);
		s->listen_fd = -1;
		return ret;
	}
	s->loop_ready = true;
	/* the async handle's eventfd and the listener's epoll registration are made here,
	 * before the loop thread's seccomp filter */
#ifdef __linux__
	s->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->done_fd < 0) {
		ret = mvm_set_error(-errno, "eventfd: %s", strerror(errno));
		goto err_loop;
	}
	if ((ret = uv_poll_init(&s->loop, &s->done_poll, s->done_fd)) ||
	    (ret = uv_poll_start(&s->done_poll, UV_READABLE, socks_done_cb))) {
		ret = mvm_set_error(-EIO, "event loop: %s", uv_strerror(ret));
		goto err_loop;
	}
	s->done_poll.data = s;
#endif
	if ((ret = uv_async_init(&s->loop, &s->wake, socks_wake_cb)) ||
	    (ret = uv_poll_init_socket(&s->loop, &s->listen_poll, s->listen_fd)) ||
	    (ret = uv_poll_start(&s->listen_poll, UV_READABLE, socks_accept_cb))) {
		ret = mvm_set_error(-EIO, "event loop: %s", uv_strerror(ret));
		goto err_loop;
	}
	uv_timer_init(&s->loop, &s->tick);
	uv_timer_init(&s->loop, &s->pause);
	/* A loop's first stream opens libuv's reserve descriptor (/dev/null, for its own
	 * accept's EMFILE trick); under the loop thread's filter that open fails, and libuv
	 * would try again (two failed openat calls) for every stream of every connection. */
	uv_tcp_init(&s->loop, &s->first_stream);
	uv_close((uv_handle_t *)&s->first_stream, NULL);
	s->wake.data = s->listen_poll.data = s->tick.data = s->pause.data = s;
	uv_timer_start(&s->tick, socks_tick_cb, SOCKS_TICK_MS, SOCKS_TICK_MS);
	s->stop = false;
	s->jobs = NULL;
	s->jobs_tail = &s->jobs;
	s->done = NULL;
	s->workers = calloc(s->cfg.workers, sizeof(*s->workers));
	if (!s->workers) {
		ret = mvm_set_error(-ENOMEM, "out of memory");
		goto err_loop;
	}
	for (s->nworkers = 0; s->nworkers < s->cfg.workers; s->nworkers++)
		if (pthread_create(&s->workers[s->nworkers], NULL, socks_worker, s))
			break;
	if (!s->nworkers || pthread_create(&s->loop_thread, NULL, socks_loop, s)) {
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
err_loop:
	socks_close_loop(s);
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
	unsigned int i;

	if (!s->running)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	uv_async_send(&s->wake);
	pthread_join(s->loop_thread, NULL);
	for (i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	free(s->workers);
	s->workers = NULL;
	/* all threads are gone: finish what they left behind */
	for (c = s->done; c; c = next) {
		next = c->qnext;
		c->in_worker = false;
		if (c->result >= 0)
			mvm_sock_close(c->result);
	}
	for (c = s->jobs; c; c = c->qnext)
		c->in_worker = false;
	s->done = s->jobs = NULL;
	while (s->conns) {
		s->conns->in_worker = false;
		conn_free(s, s->conns);
	}
	socks_close_loop(s);
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
	size_t i;
	int n;

	if (cap < sizeof(raw) * 2 + 1)
		return mvm_set_error(-ENOSPC, "secret buffer too small");
	/* getrandom(2) on Linux, the system's CSPRNG on Windows */
	n = uv_random(NULL, NULL, raw, sizeof(raw), 0, NULL);
	if (n)
		return mvm_set_error(-EIO, "random bytes: %s", uv_strerror(n));
	for (i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * sizeof(raw)] = '\0';
	explicit_bzero(raw, sizeof(raw));
	return 0;
}
