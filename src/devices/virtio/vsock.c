/* SPDX-License-Identifier: MIT */
/**
 * DOC: Theory of operation - virtio-vsock device
 *
 * The guest sees a virtio-vsock device (id 19) with three queues: RX (device -> driver
 * packets), TX (driver -> device packets) and an event queue we never need to use.  Every
 * packet is a 44-byte little-endian header (&struct vsock_hdr) plus, for RW, a payload.  This
 * file is the host end of every stream: a connection table keyed by (guest port, host port),
 * where the host side of each connection is a plain stream file descriptor: one end of a
 * socketpair whose other end mvm_vsock_connect() returned, or a Unix socket of the
 * Firecracker-style bridge.  The device never knows what the host program does with it.
 *
 * Threads.  One device thread runs vsock_dev_poll() (epoll over every host fd, edge
 * triggered, plus an eventfd "kick") and then lets the virtio glue drain TX and fill RX.
 * vCPU threads only kick it.  API callers (connect, listen) take the device lock, change the
 * table and kick.  Every entry point takes d->lock; epoll events carry a (slot, generation)
 * id, never a pointer, so a connection freed by another thread between epoll_wait() and the
 * lock is simply not found.
 *
 * Connection set-up.  Host-initiated: the caller's thread allocates a connection in
 * CONNECTING with a pending REQUEST and sleeps on d->cond; the guest answers RESPONSE
 * (established: the caller gets its fd) or RST (-ECONNREFUSED).  On timeout the caller marks
 * the connection for RST and leaves (or just drops it if the REQUEST never reached the guest,
 * e.g. no driver yet, so a dead guest does not fill the table).  Guest-initiated: a REQUEST to host CID 2 port P is
 * accepted if a listener (mvm_vsock_listen) or the forwarder (Unix socket bridge) takes P,
 * answered RESPONSE, and the listener's callback gets its fd after the lock is dropped.
 * Anything else gets RST.
 *
 * Credit flow (virtio spec 5.10.6.3).  Each side tells the other, in every header, how big
 * its receive buffer is (buf_alloc) and how many bytes it has consumed in total (fwd_cnt).
 * A sender may have at most buf_alloc - (tx_cnt - fwd_cnt) bytes in flight.
 *
 *  guest -> host: we advertise VSOCK_BUF_ALLOC and back that promise with a per-connection
 *  ring of that size (allocated only while bytes wait in it).  RW payload is written straight to the host fd; what the fd does not
 *  take goes into the ring and is flushed on EPOLLOUT.  fwd_cnt counts bytes written to the
 *  host fd, so a slow host program throttles the guest.  Whenever fwd_cnt has moved by a
 *  quarter of buf_alloc since we last told the guest (any header we send tells it), we queue
 *  a CREDIT_UPDATE; the guest never stalls for good because a stalled guest has buf_alloc
 *  unacknowledged bytes, which is more than the quarter.  A guest that sends more than its
 *  credit is lying: guest error, RST, the connection is dropped.
 *
 *  host -> guest: we read from the host fd at most min(guest credit, RX buffer, 64 KiB)
 *  bytes, so nothing is ever buffered on this side: bytes stay in the socket until the guest
 *  can take them, and the host program's writes block (backpressure).  The guest's
 *  buf_alloc/fwd_cnt are taken from every header it sends; a fwd_cnt that claims more than
 *  we sent yields zero credit, not a wrapped huge one.  When a readable connection has no
 *  credit, we send one CREDIT_REQUEST in case an update got lost.
 *
 * Shutdown.  A guest SHUTDOWN with SEND: after the ring drains, shutdown(fd, SHUT_WR) so the
 * host reads EOF (half-close).  With RCV: shutdown(fd, SHUT_RD), we stop reading.  With both:
 * the guest closed; once the ring drains we answer RST and drop the connection.  Host side:
 * EOF from the fd becomes SHUTDOWN(SEND) to the guest (plus RCV if the fd is fully closed,
 * EPOLLHUP); when both directions are down we wait a few seconds for the guest's RST, then
 * send our own and drop the connection.
 *
 * Bad guests.  Short packets, lengths that disagree with the header, payloads over 64 KiB,
 * wrong CIDs, unknown ops or types, packets for unknown connections, RW before RESPONSE,
 * credit lies: each is counted as a guest error (reported on stderr, rate limited) and
 * answered with RST where a connection can be named; other connections are unaffected.
 * Chains of the wrong shape (writable TX, readable or sub-header RX, TX over header + 64 KiB)
 * are reported and returned unused by the glue; malformed descriptor chains (addresses
 * outside RAM, loops, zero or huge lengths) are refused by the virtio queue code, which sets
 * DEVICE_NEEDS_RESET; nothing blocks and the next driver reset starts afresh.
 *
 * Sandbox.  The device thread drops its capabilities and installs vsock_dev_syscalls[] before
 * it polls; listeners' accept callbacks run on it, so they must stay within that list (hand
 * the fd to a thread of your own for anything more).
 *
 * Reset.  A driver reset drops every connection (host fds are closed, so host programs see
 * EOF; pending connects fail with -ECONNRESET); listeners stay.
 *
 * Teardown.  Bytes in a connection's ring were taken from the guest: its write() returned, so
 * it counts them as sent (a guest program that writes, closes and powers off at once is
 * normal).  Before the device is freed with the VM, vsock_dev_free() writes every ring to its
 * host fd (and applies the guest's shutdown), waiting for slow host programs at most
 * VSOCK_DRAIN_MS in all; then the fds are closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/vsock.h"
#include "runtime/error.h"
#include "sandbox/sandbox.h"

#define VSOCK_CLOSE_TIMEOUT_MS	5000
#define VSOCK_STRAY_RST_MAX	256
#define VSOCK_MAX_LISTENERS	64
#define VSOCK_EPOLL_KICK	UINT64_MAX
#define VSOCK_HOST_PORT_MIN	49152u
#define VSOCK_GUEST_ERR_PRINT	20

enum vsock_state {
	VSOCK_CONNECTING,	/* host sent (or will send) REQUEST */
	VSOCK_ESTABLISHED,
	VSOCK_CLOSING,		/* both directions shut; waiting for the guest's RST */
};

/* pending control packets, highest priority first */
enum {
	VSOCK_PEND_RST = 1u << 0,
	VSOCK_PEND_REQUEST = 1u << 1,
	VSOCK_PEND_RESPONSE = 1u << 2,
	VSOCK_PEND_CREDIT_UPDATE = 1u << 3,
	VSOCK_PEND_CREDIT_REQUEST = 1u << 4,
	VSOCK_PEND_SHUTDOWN = 1u << 5,
};

struct vsock_wait {
	int result;		/* 1 while pending, then 0 or -errno */
};

struct vsock_conn {
	struct vsock_conn *prev, *next;	/* d->conns, for round-robin RX */
	uint32_t slot, gen;
	uint32_t guest_port, host_port;
	int fd;				/* host side, non-blocking */
	enum vsock_state state;
	unsigned int pending;		/* VSOCK_PEND_* */
	uint32_t shut_send;		/* flags of our pending SHUTDOWN */
	uint32_t guest_shut;		/* SHUTDOWN flags received from the guest */
	uint32_t host_shut;		/* SHUTDOWN flags we have sent */
	bool host_readable;		/* epoll said so and no EAGAIN since */
	bool host_hup;			/* the host closed its end entirely */
	bool wr_shut;			/* we shut the host fd's write side */
	bool credit_requested;
	bool free_after_rst;		/* drop once the pending RST is out */
	bool fc_ok;			/* write "OK <host_port>\n" to fd when established */
	bool req_sent;			/* our REQUEST reached an RX buffer */
	struct vsock_wait *waiter;	/* host-initiated connect in progress */
	/* guest -> host */
	uint8_t *ring;			/* VSOCK_BUF_ALLOC bytes while any is pending */
	uint32_t ring_head, ring_len;
	uint32_t rx_cnt;		/* payload bytes received from the guest */
	uint32_t fwd_cnt;		/* of which written to the host fd */
	uint32_t fwd_cnt_told;		/* fwd_cnt in the last header we sent */
	/* host -> guest */
	uint32_t tx_cnt;		/* payload bytes sent to the guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	int64_t close_deadline;
};

struct vsock_listener {
	uint32_t port;
	mvm_vsock_accept_cb cb;
	void *opaque;
};

struct vsock_accepted {
	mvm_vsock_accept_cb cb;
	void *opaque;
	uint32_t port;
	int fd;
};

struct vsock_dev {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* connect results */
	uint64_t guest_cid;
	int epfd, kickfd;
	struct vsock_conn *slots[VSOCK_MAX_CONNS];
	uint32_t gens[VSOCK_MAX_CONNS];
	struct vsock_conn head;		/* list sentinel */
	unsigned int nconns;
	uint32_t next_host_port;
	struct { uint32_t guest_port, host_port; } stray[VSOCK_STRAY_RST_MAX];
	unsigned int stray_head, stray_len;
	struct vsock_listener listeners[VSOCK_MAX_LISTENERS];
	unsigned int nlisteners;
	vsock_forward_cb forward;
	void *forward_opaque;
	atomic_ulong guest_errors;	/* written without d->lock on some paths: atomic */
	/* deferred accept callbacks, called after the lock is dropped */
	struct vsock_accepted accepted[16];
	unsigned int naccepted;
};

static int64_t vsock_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/** vsock_hdr_decode() - parse the 44 wire bytes at @p into @h */
void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t *p)
{
	h->src_cid = le32(p) | (uint64_t)le32(p + 4) << 32;
	h->dst_cid = le32(p + 8) | (uint64_t)le32(p + 12) << 32;
	h->src_port = le32(p + 16);
	h->dst_port = le32(p + 20);
	h->len = le32(p + 24);
	h->type = (uint16_t)(p[28] | p[29] << 8);
	h->op = (uint16_t)(p[30] | p[31] << 8);
	h->flags = le32(p + 32);
	h->buf_alloc = le32(p + 36);
	h->fwd_cnt = le32(p + 40);
}

/** vsock_hdr_encode() - write @h as 44 wire bytes at @p */
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t *p)
{
	put32(p, (uint32_t)h->src_cid);
	put32(p + 4, (uint32_t)(h->src_cid >> 32));
	put32(p + 8, (uint32_t)h->dst_cid);
	put32(p + 12, (uint32_t)(h->dst_cid >> 32));
	put32(p + 16, h->src_port);
	put32(p + 20, h->dst_port);
	put32(p + 24, h->len);
	p[28] = (uint8_t)h->type;
	p[29] = (uint8_t)(h->type >> 8);
	p[30] = (uint8_t)h->op;
	p[31] = (uint8_t)(h->op >> 8);
	put32(p + 32, h->flags);
	put32(p + 36, h->buf_alloc);
	put32(p + 40, h->fwd_cnt);
}

/** vsock_guest_error() - count and (rate limited) report something the guest got wrong */
static void vsock_guest_error(struct vsock_dev *d, const char *fmt, ...) MVM_PRINTF(2, 3);
static void vsock_guest_error(struct vsock_dev *d, const char *fmt, ...)
{
	unsigned long n = atomic_fetch_add(&d->guest_errors, 1) + 1;
	va_list ap;

	if (n > VSOCK_GUEST_ERR_PRINT)
		return;
	va_start(ap, fmt);
	fputs("microvm: vsock: guest error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(n == VSOCK_GUEST_ERR_PRINT ? " (further errors not shown)\n" : "\n",
	      stderr);
	va_end(ap);
}

static void vsock_kick(struct vsock_dev *d)
{
	uint64_t one = 1;

	(void)!write(d->kickfd, &one, sizeof(one));	/* eventfd: never blocks */
}

static uint64_t vsock_conn_id(const struct vsock_conn *c)
{
	return (uint64_t)c->gen << 32 | c->slot;
}

static struct vsock_conn *vsock_conn_by_id(struct vsock_dev *d, uint64_t id)
{
	uint32_t slot = (uint32_t)id;
	struct vsock_conn *c;

	if (slot >= VSOCK_MAX_CONNS)
		return NULL;
	c = d->slots[slot];
	return c && c->gen == (uint32_t)(id >> 32) ? c : NULL;
}

/** vsock_conn_find() - the connection for (@guest_port, @host_port), or NULL */
static struct vsock_conn *vsock_conn_find(struct vsock_dev *d, uint32_t guest_port,
					  uint32_t host_port)
{
	struct vsock_conn *c;

	for (c = d->head.next; c != &d->head; c = c->next)
		if (c->guest_port == guest_port && c->host_port == host_port)
			return c;
	return NULL;
}

/**
 * vsock_conn_new() - add a connection whose host side is @fd (made non-blocking)
 * Return: the connection, or NULL when the table is full or epoll refuses @fd.
 */
static struct vsock_conn *vsock_conn_new(struct vsock_dev *d, uint32_t guest_port,
					 uint32_t host_port, int fd, enum vsock_state state)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct vsock_conn *c;
	uint32_t slot;

	for (slot = 0; slot < VSOCK_MAX_CONNS && d->slots[slot]; slot++)
		;
	if (slot == VSOCK_MAX_CONNS)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->slot = slot;
	c->gen = ++d->gens[slot];
	c->guest_port = guest_port;
	c->host_port = host_port;
	c->fd = fd;
	c->state = state;
	c->host_readable = true;	/* edge triggered: try once at start */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	ev.data.u64 = vsock_conn_id(c);
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		free(c);
		return NULL;
	}
	d->slots[slot] = c;
	c->prev = d->head.prev;
	c->next = &d->head;
	d->head.prev->next = c;
	d->head.prev = c;
	d->nconns++;
	return c;
}

/** vsock_conn_free() - drop a connection, close its host fd, fail a waiting connect */
static void vsock_conn_free(struct vsock_dev *d, struct vsock_conn *c, int err)
{
	if (c->waiter) {
		c->waiter->result = err ? err : -ECONNRESET;
		pthread_cond_broadcast(&d->cond);
	}
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	d->slots[c->slot] = NULL;
	d->nconns--;
	free(c->ring);
	free(c);
}

/** vsock_conn_reset() - send RST for @c and drop it once the RST is out */
static void vsock_conn_reset(struct vsock_dev *d, struct vsock_conn *c)
{
	c->pending = VSOCK_PEND_RST;
	c->free_after_rst = true;
	if (c->waiter) {
		c->waiter->result = -ECONNRESET;
		c->waiter = NULL;
		pthread_cond_broadcast(&d->cond);
	}
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

/** vsock_stray_rst() - queue an RST for a packet that names no connection */
static void vsock_stray_rst(struct vsock_dev *d, uint32_t guest_port, uint32_t host_port)
{
	unsigned int i;

	if (d->stray_len == VSOCK_STRAY_RST_MAX)
		return;	/* a guest that floods us without taking RX buffers loses RSTs */
	i = (d->stray_head + d->stray_len++) % VSOCK_STRAY_RST_MAX;
	d->stray[i].guest_port = guest_port;
	d->stray[i].host_port = host_port;
}

/** vsock_guest_credit() - how many bytes the guest can take now (0 on a credit lie) */
static uint32_t vsock_guest_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/** vsock_note_forwarded() - @n more bytes reached the host; queue a credit update if due */
static void vsock_note_forwarded(struct vsock_conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	if (c->fwd_cnt - c->fwd_cnt_told >= VSOCK_BUF_ALLOC / 4)
		c->pending |= VSOCK_PEND_CREDIT_UPDATE;
}

/** vsock_try_finish() - after the ring drained, apply the guest's shutdown flags */
static void vsock_try_finish(struct vsock_dev *d, struct vsock_conn *c)
{
	if (c->ring_len || c->free_after_rst)
		return;
	if ((c->guest_shut & VSOCK_SHUTDOWN_SEND) && !c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
	if (c->guest_shut == (VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV))
		vsock_conn_reset(d, c);	/* the guest closed: answer RST, drop */
}

/**
 * vsock_flush_ring() - write buffered guest bytes to the host fd
 * Return: 0, or -1 when the host end is gone (the connection was reset).
 */
static int vsock_flush_ring(struct vsock_dev *d, struct vsock_conn *c)
{
	while (c->ring_len) {
		uint32_t chunk = VSOCK_BUF_ALLOC - c->ring_head;
		ssize_t n;

		if (chunk > c->ring_len)
			chunk = c->ring_len;
		n = send(c->fd, c->ring + c->ring_head, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			vsock_conn_reset(d, c);
			return -1;
		}
		c->ring_head = (c->ring_head + (uint32_t)n) % VSOCK_BUF_ALLOC;
		c->ring_len -= (uint32_t)n;
		vsock_note_forwarded(c, (uint32_t)n);
	}
	free(c->ring);
	c->ring = NULL;
	c->ring_head = 0;
	vsock_try_finish(d, c);
	return 0;
}

/**
 * vsock_rw() - guest payload for @c: to the host fd, the rest into the ring
 */
static void vsock_rw(struct vsock_dev *d, struct vsock_conn *c, const uint8_t *p, uint32_t len)
{
	uint32_t space = VSOCK_BUF_ALLOC - (c->rx_cnt - c->fwd_cnt);
	ssize_t n = 0;

	if (c->state == VSOCK_CLOSING && len <= space) {
		c->rx_cnt += len;	/* the host end is gone: drop, but keep credit moving */
		vsock_note_forwarded(c, len);
		return;
	}
	if (c->state != VSOCK_ESTABLISHED || (c->guest_shut & VSOCK_SHUTDOWN_SEND)) {
		vsock_guest_error(d, "RW on port %u->%u in the wrong state", c->guest_port,
				  c->host_port);
		vsock_conn_reset(d, c);
		return;
	}
	if (len > space) {
		vsock_guest_error(d, "credit exceeded on port %u->%u (%u bytes, %u allowed)",
				  c->guest_port, c->host_port, len, space);
		vsock_conn_reset(d, c);
		return;
	}
	c->rx_cnt += len;
	if (!c->ring_len && len) {
		n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			vsock_conn_reset(d, c);	/* the host end is gone */
			return;
		}
		if (n < 0)
			n = 0;
		vsock_note_forwarded(c, (uint32_t)n);
	}
	if ((uint32_t)n < len) {
		uint32_t rest = len - (uint32_t)n, tail, first;

		if (!c->ring) {
			c->ring = malloc(VSOCK_BUF_ALLOC);
			if (!c->ring) {
				vsock_conn_reset(d, c);
				return;
			}
			c->ring_head = 0;
		}
		tail = (c->ring_head + c->ring_len) % VSOCK_BUF_ALLOC;
		first = VSOCK_BUF_ALLOC - tail < rest ? VSOCK_BUF_ALLOC - tail : rest;
		memcpy(c->ring + tail, p + n, first);
		memcpy(c->ring, p + n + first, rest - first);
		c->ring_len += rest;
	}
}

/** vsock_shutdown() - a guest SHUTDOWN with @flags on @c */
static void vsock_shutdown(struct vsock_dev *d, struct vsock_conn *c, uint32_t flags)
{
	if (flags & ~(VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND))
		vsock_guest_error(d, "unknown SHUTDOWN flags 0x%x", flags);
	flags &= VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
	if ((flags & VSOCK_SHUTDOWN_RCV) && !(c->guest_shut & VSOCK_SHUTDOWN_RCV))
		shutdown(c->fd, SHUT_RD);	/* the host's writes now fail with EPIPE */
	c->guest_shut |= flags;
	vsock_try_finish(d, c);
}

/**
 * vsock_accept_guest() - a guest REQUEST for host port @hdr->dst_port
 */
static void vsock_accept_guest(struct vsock_dev *d, const struct vsock_hdr *h)
{
	struct vsock_listener *l = NULL;
	struct vsock_conn *c;
	int sv[2] = { -1, -1 };
	unsigned int i;

	for (i = 0; i < d->nlisteners; i++)
		if (d->listeners[i].port == h->dst_port)
			l = &d->listeners[i];
	if (l && d->naccepted < sizeof(d->accepted) / sizeof(d->accepted[0])) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			sv[0] = -1;
	} else if (!l && d->forward) {
		sv[0] = d->forward(d->forward_opaque, h->dst_port);
	}
	if (sv[0] < 0)
		goto refuse;
	c = vsock_conn_new(d, h->src_port, h->dst_port, sv[0], VSOCK_ESTABLISHED);
	if (!c) {
		close(sv[0]);
		if (sv[1] >= 0)
			close(sv[1]);
		goto refuse;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending |= VSOCK_PEND_RESPONSE;
	if (l) {
		d->accepted[d->naccepted++] = (struct vsock_accepted){
			.cb = l->cb, .opaque = l->opaque, .port = h->dst_port, .fd = sv[1],
		};
	}
	return;
refuse:
	vsock_stray_rst(d, h->src_port, h->dst_port);
}

/** vsock_dev_tx_locked() - one guest packet; returns 0 or -EINVAL for a bad one */
static int vsock_dev_tx_locked(struct vsock_dev *d, const uint8_t *pkt, size_t len)
{
	struct vsock_conn *c;
	struct vsock_hdr h;

	if (len < VSOCK_HDR_LEN) {
		vsock_guest_error(d, "TX packet of %zu bytes is shorter than a header", len);
		return -EINVAL;
	}
	vsock_hdr_decode(&h, pkt);
	if (h.len != len - VSOCK_HDR_LEN || h.len > VSOCK_MAX_PAYLOAD) {
		vsock_guest_error(d, "TX header says %u payload bytes, buffer has %zu", h.len,
				  len - VSOCK_HDR_LEN);
		return -EINVAL;
	}
	if (h.src_cid != d->guest_cid || h.dst_cid != VSOCK_HOST_CID) {
		vsock_guest_error(d, "TX packet from CID %llu to CID %llu (guest is %llu)",
				  (unsigned long long)h.src_cid, (unsigned long long)h.dst_cid,
				  (unsigned long long)d->guest_cid);
		return -EINVAL;
	}
	c = vsock_conn_find(d, h.src_port, h.dst_port);
	if (c && c->free_after_rst)
		return 0;	/* we are resetting it already */
	if (h.type != VSOCK_TYPE_STREAM) {
		if (h.op != VSOCK_OP_RST)
			vsock_stray_rst(d, h.src_port, h.dst_port);
		if (c)
			vsock_conn_reset(d, c);
		return 0;	/* e.g. SEQPACKET: not offered, refused like Linux does */
	}
	if (!c) {
		if (h.op == VSOCK_OP_REQUEST)
			vsock_accept_guest(d, &h);
		else if (h.op != VSOCK_OP_RST)
			vsock_stray_rst(d, h.src_port, h.dst_port);
		return 0;
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	c->credit_requested = false;
	switch (h.op) {
	case VSOCK_OP_RESPONSE:
		if (c->state != VSOCK_CONNECTING) {
			vsock_guest_error(d, "RESPONSE on established port %u", h.src_port);
			vsock_conn_reset(d, c);
			break;
		}
		c->state = VSOCK_ESTABLISHED;
		if (c->fc_ok) {
			char ok[24];
			int n = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);

			/* a fresh socket always has room for these few bytes */
			if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
				vsock_conn_reset(d, c);
				break;
			}
		}
		if (c->waiter) {
			c->waiter->result = 0;
			c->waiter = NULL;
			pthread_cond_broadcast(&d->cond);
		}
		break;
	case VSOCK_OP_RST:
		vsock_conn_free(d, c, c->state == VSOCK_CONNECTING ? -ECONNREFUSED : -ECONNRESET);
		break;
	case VSOCK_OP_SHUTDOWN:
		vsock_shutdown(d, c, h.flags);
		break;
	case VSOCK_OP_RW:
		vsock_rw(d, c, pkt + VSOCK_HDR_LEN, h.len);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pending |= VSOCK_PEND_CREDIT_UPDATE;
		break;
	default:
		vsock_guest_error(d, "op %u on port %u->%u", h.op, h.src_port, h.dst_port);
		vsock_conn_reset(d, c);
		break;
	}
	return 0;
}

/** vsock_run_accepted() - hand new guest-initiated streams to their listeners (unlocked) */
static void vsock_run_accepted(struct vsock_dev *d, struct vsock_accepted *a, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		a[i].cb(a[i].opaque, a[i].port, a[i].fd);
}

/**
 * vsock_dev_tx() - process one packet the guest put on the TX queue
 * @d:		device
 * @pkt:	header and payload, gathered from the descriptor chain
 * @len:	bytes in @pkt
 *
 * Return: 0, or -EINVAL for a packet that was malformed (counted as a guest error).
 */
int vsock_dev_tx(struct vsock_dev *d, const uint8_t *pkt, size_t len)
{
	struct vsock_accepted acc[16];
	unsigned int n;
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = vsock_dev_tx_locked(d, pkt, len);
	n = d->naccepted;
	memcpy(acc, d->accepted, n * sizeof(acc[0]));
	d->naccepted = 0;
	pthread_mutex_unlock(&d->lock);
	vsock_run_accepted(d, acc, n);
	return rc;
}

/** vsock_fill_hdr() - a header from us for @c with @op */
static void vsock_fill_hdr(struct vsock_dev *d, struct vsock_conn *c, struct vsock_hdr *h,
			   uint16_t op)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID, .dst_cid = d->guest_cid,
		.src_port = c->host_port, .dst_port = c->guest_port,
		.type = VSOCK_TYPE_STREAM, .op = op,
		.buf_alloc = VSOCK_BUF_ALLOC, .fwd_cnt = c->fwd_cnt,
	};
	c->fwd_cnt_told = c->fwd_cnt;
}

/** vsock_ctl_packet() - the next control packet of @c, if any; Return: true if built */
static bool vsock_ctl_packet(struct vsock_dev *d, struct vsock_conn *c, struct vsock_hdr *h)
{
	static const struct { unsigned int bit; uint16_t op; } order[] = {
		{ VSOCK_PEND_RST, VSOCK_OP_RST },
		{ VSOCK_PEND_REQUEST, VSOCK_OP_REQUEST },
		{ VSOCK_PEND_RESPONSE, VSOCK_OP_RESPONSE },
		{ VSOCK_PEND_CREDIT_UPDATE, VSOCK_OP_CREDIT_UPDATE },
		{ VSOCK_PEND_CREDIT_REQUEST, VSOCK_OP_CREDIT_REQUEST },
		{ VSOCK_PEND_SHUTDOWN, VSOCK_OP_SHUTDOWN },
	};
	unsigned int i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(c->pending & order[i].bit))
			continue;
		c->pending &= ~order[i].bit;
		vsock_fill_hdr(d, c, h, order[i].op);
		if (order[i].op == VSOCK_OP_REQUEST)
			c->req_sent = true;
		if (order[i].op == VSOCK_OP_SHUTDOWN)
			h->flags = c->shut_send;
		return true;
	}
	return false;
}

/** vsock_host_eof() - the host fd read EOF: tell the guest, maybe start closing */
static void vsock_host_eof(struct vsock_conn *c)
{
	/* nothing more can flow once the guest stopped sending too: close both ways */
	bool both = c->host_hup || (c->guest_shut & VSOCK_SHUTDOWN_SEND);
	uint32_t flags = VSOCK_SHUTDOWN_SEND | (both ? VSOCK_SHUTDOWN_RCV : 0);

	c->host_readable = false;
	if ((c->host_shut | flags) == c->host_shut)
		return;
	c->host_shut |= flags;
	c->shut_send = c->host_shut;
	c->pending |= VSOCK_PEND_SHUTDOWN;
	if (c->host_shut == (VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV)) {
		c->state = VSOCK_CLOSING;
		c->close_deadline = vsock_now() + VSOCK_CLOSE_TIMEOUT_MS;
	}
}

/**
 * vsock_data_packet() - read host bytes of @c into @payload (at most @cap)
 * Return: bytes read (> 0), 0 when there is nothing to send now.  May queue control packets.
 */
static size_t vsock_data_packet(struct vsock_dev *d, struct vsock_conn *c, uint8_t *payload,
				size_t cap)
{
	uint32_t credit;
	ssize_t n;

	if (c->state != VSOCK_ESTABLISHED || !c->host_readable || c->free_after_rst ||
	    (c->host_shut & VSOCK_SHUTDOWN_SEND) || (c->guest_shut & VSOCK_SHUTDOWN_RCV))
		return 0;
	credit = vsock_guest_credit(c);
	if (!credit) {
		if (!c->credit_requested) {
			c->credit_requested = true;
			c->pending |= VSOCK_PEND_CREDIT_REQUEST;
		}
		return 0;
	}
	if (cap > credit)
		cap = credit;
	if (cap > VSOCK_MAX_PAYLOAD)
		cap = VSOCK_MAX_PAYLOAD;
	n = recv(c->fd, payload, cap, MSG_DONTWAIT);
	if (n > 0)
		return (size_t)n;
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		c->host_readable = false;
		return 0;
	}
	if (n < 0)
		c->host_hup = true;	/* ECONNRESET and friends: the host end is gone */
	vsock_host_eof(c);
	return 0;
}

/** vsock_move_to_tail() - round robin: @c was just served */
static void vsock_move_to_tail(struct vsock_dev *d, struct vsock_conn *c)
{
	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->prev = d->head.prev;
	c->next = &d->head;
	d->head.prev->next = c;
	d->head.prev = c;
}

/**
 * vsock_dev_rx() - the next packet for the guest, if any
 * @d:		device
 * @buf:	where to build it (header then payload)
 * @cap:	size of the guest's RX buffer
 *
 * Control packets go first (they need no credit), then stray RSTs, then data from the host
 * fds round robin.
 *
 * Return: packet length, or 0 when there is nothing to send (or @cap cannot hold a header).
 */
size_t vsock_dev_rx(struct vsock_dev *d, uint8_t *buf, size_t cap)
{
	struct vsock_conn *c, *next;
	struct vsock_hdr h;
	size_t n = 0;

	if (cap < VSOCK_HDR_LEN)
		return 0;
	pthread_mutex_lock(&d->lock);
	for (c = d->head.next; c != &d->head; c = next) {
		next = c->next;
		if (!vsock_ctl_packet(d, c, &h))
			continue;
		if (h.op == VSOCK_OP_RST && c->free_after_rst)
			vsock_conn_free(d, c, -ECONNRESET);
		n = VSOCK_HDR_LEN;
		goto out;
	}
	if (d->stray_len) {
		h = (struct vsock_hdr){
			.src_cid = VSOCK_HOST_CID, .dst_cid = d->guest_cid,
			.src_port = d->stray[d->stray_head].host_port,
			.dst_port = d->stray[d->stray_head].guest_port,
			.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST,
			.buf_alloc = VSOCK_BUF_ALLOC,
		};
		d->stray_head = (d->stray_head + 1) % VSOCK_STRAY_RST_MAX;
		d->stray_len--;
		n = VSOCK_HDR_LEN;
		goto out;
	}
	for (c = d->head.next; c != &d->head; c = next) {
		size_t got;

		next = c->next;
		got = vsock_data_packet(d, c, buf + VSOCK_HDR_LEN, cap - VSOCK_HDR_LEN);
		if (!got) {
			if (vsock_ctl_packet(d, c, &h)) {	/* EOF or credit request */
				n = VSOCK_HDR_LEN;
				goto out;
			}
			continue;
		}
		vsock_fill_hdr(d, c, &h, VSOCK_OP_RW);
		h.len = (uint32_t)got;
		c->tx_cnt += (uint32_t)got;
		vsock_move_to_tail(d, c);
		n = VSOCK_HDR_LEN + got;
		goto out;
	}
out:
	if (n)
		vsock_hdr_encode(&h, buf);
	pthread_mutex_unlock(&d->lock);
	return n;
}

/** vsock_host_event() - epoll said something about @c's host fd */
static void vsock_host_event(struct vsock_dev *d, struct vsock_conn *c, uint32_t events)
{
	/* HUP means both directions are shut; only the host's doing if we kept writing */
	if ((events & EPOLLERR) || ((events & EPOLLHUP) && !c->wr_shut))
		c->host_hup = true;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->host_readable = true;
	if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && c->ring_len)
		vsock_flush_ring(d, c);
	/* gone while we no longer read from it: tell the guest now */
	if (c->host_hup && !c->free_after_rst &&
	    ((c->host_shut & VSOCK_SHUTDOWN_SEND) || (c->guest_shut & VSOCK_SHUTDOWN_RCV)))
		vsock_host_eof(c);
}

/** vsock_expire() - drop connections whose guest never answered our close */
static int vsock_expire(struct vsock_dev *d)
{
	int64_t now = vsock_now(), next = -1;
	struct vsock_conn *c;

	for (c = d->head.next; c != &d->head; c = c->next) {
		if (c->state != VSOCK_CLOSING || c->free_after_rst)
			continue;
		if (c->close_deadline <= now)
			vsock_conn_reset(d, c);
		else if (next < 0 || c->close_deadline - now < next)
			next = c->close_deadline - now;
	}
	return (int)next;
}

/**
 * vsock_dev_poll() - wait for host fd events (or a kick) and apply them
 * @d:		device
 * @timeout_ms:	how long to wait at most (negative: until something happens)
 *
 * Return: the timeout to use next time (-1: none needed), or -errno.
 */
int vsock_dev_poll(struct vsock_dev *d, int timeout_ms)
{
	struct epoll_event ev[64];
	uint64_t v;
	int i, n, next;

	n = epoll_wait(d->epfd, ev, 64, timeout_ms);
	if (n < 0 && errno != EINTR)
		return -errno;
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < n; i++) {
		struct vsock_conn *c;

		if (ev[i].data.u64 == VSOCK_EPOLL_KICK) {
			(void)!read(d->kickfd, &v, sizeof(v));
			continue;
		}
		c = vsock_conn_by_id(d, ev[i].data.u64);
		if (c && !c->free_after_rst)
			vsock_host_event(d, c, ev[i].events);
	}
	next = vsock_expire(d);
	pthread_mutex_unlock(&d->lock);
	return next;
}

/**
 * vsock_dev_new() - a device with no connections
 * @guest_cid:	the guest's context id (>= 3)
 *
 * Return: the device, or NULL with mvm_last_error() set.
 */
struct vsock_dev *vsock_dev_new(uint64_t guest_cid)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = VSOCK_EPOLL_KICK };
	struct vsock_dev *d;

	if (guest_cid < 3 || guest_cid >= 0xffffffffULL) {
		mvm_set_error(-EINVAL, "vsock: guest CID %llu is reserved (use 3 or more)",
			      (unsigned long long)guest_cid);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		mvm_set_error(-ENOMEM, "vsock: out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->guest_cid = guest_cid;
	d->head.next = d->head.prev = &d->head;
	d->next_host_port = VSOCK_HOST_PORT_MIN;
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->epfd < 0 || d->kickfd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->kickfd, &ev)) {
		mvm_set_error(-errno, "vsock: cannot set up epoll: %s", strerror(errno));
		vsock_dev_free(d);
		return NULL;
	}
	return d;
}

/** vsock_dev_reset() - driver reset: drop every connection, keep the listeners */
void vsock_dev_reset(struct vsock_dev *d)
{
	pthread_mutex_lock(&d->lock);
	while (d->head.next != &d->head)
		vsock_conn_free(d, d->head.next, -ECONNRESET);
	d->stray_head = d->stray_len = 0;
	pthread_mutex_unlock(&d->lock);
}

/**
 * vsock_drain_rings() - at teardown, deliver what the guest sent and we still buffer
 * @d:		the device (its thread stopped)
 *
 * Writes each connection's ring to its host fd, polling for room, at most VSOCK_DRAIN_MS for
 * all connections together (a host program that does not read loses the rest); a host end that
 * is gone resets that connection.  See "Teardown" above.
 */
static void vsock_drain_rings(struct vsock_dev *d)
{
	struct timespec t0, now;
	struct vsock_conn *c;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&d->lock);
	for (c = d->head.next; c != &d->head; c = c->next) {
		while (c->ring_len && !c->free_after_rst) {
			struct pollfd p = { .fd = c->fd, .events = POLLOUT };
			long left;

			clock_gettime(CLOCK_MONOTONIC, &now);
			left = VSOCK_DRAIN_MS - ((now.tv_sec - t0.tv_sec) * 1000 +
						 (now.tv_nsec - t0.tv_nsec) / 1000000);
			if (left <= 0) {
				pthread_mutex_unlock(&d->lock);
				return;
			}
			if (poll(&p, 1, (int)left) <= 0 || !(p.revents & POLLOUT))
				break;
			if (vsock_flush_ring(d, c) < 0)
				break;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

/**
 * vsock_dev_free() - deliver the guest's buffered bytes (vsock_drain_rings()), reset and free
 * @d:		the device; no thread may use it any more
 */
void vsock_dev_free(struct vsock_dev *d)
{
	if (!d)
		return;
	vsock_drain_rings(d);
	vsock_dev_reset(d);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->kickfd >= 0)
		close(d->kickfd);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/** vsock_dev_guest_cid() - the guest's CID (as in the device config space) */
uint64_t vsock_dev_guest_cid(const struct vsock_dev *d)
{
	return d->guest_cid;
}

/** vsock_alloc_host_port() - an unused local port for a host-initiated connection */
static uint32_t vsock_alloc_host_port(struct vsock_dev *d, uint32_t guest_port)
{
	for (;;) {
		uint32_t p = d->next_host_port++;

		if (d->next_host_port == 0 || d->next_host_port < VSOCK_HOST_PORT_MIN)
			d->next_host_port = VSOCK_HOST_PORT_MIN;
		if (!vsock_conn_find(d, guest_port, p))
			return p;
	}
}

/**
 * vsock_dev_connect_fd() - connect guest port @port, using @fd as the host side
 * @d:		device
 * @port:	guest port
 * @fd:		stream the device will serve (it owns it from now on, even on failure)
 * @timeout_ms:	how long to wait for the guest's answer (negative: forever)
 * @flags:	VSOCK_CONNECT_FC_OK: write "OK <host_port>\n" to @fd the moment the guest
 *		accepts, before any guest byte (Firecracker's Unix socket protocol)
 *
 * Return: 0, -ECONNREFUSED (guest RST), -ETIMEDOUT, -ECONNRESET (driver reset), -EMFILE.
 */
int vsock_dev_connect_fd(struct vsock_dev *d, uint32_t port, int fd, int timeout_ms,
			 unsigned int flags)
{
	struct vsock_wait w = { .result = 1 };
	struct vsock_conn *c;
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&d->lock);
	c = vsock_conn_new(d, port, vsock_alloc_host_port(d, port), fd, VSOCK_CONNECTING);
	if (!c) {
		pthread_mutex_unlock(&d->lock);
		close(fd);
		return -EMFILE;
	}
	c->fc_ok = flags & VSOCK_CONNECT_FC_OK;
	c->pending |= VSOCK_PEND_REQUEST;
	c->waiter = &w;
	vsock_kick(d);
	while (w.result == 1 && rc != ETIMEDOUT) {
		if (timeout_ms < 0)
			rc = pthread_cond_wait(&d->cond, &d->lock);
		else
			rc = pthread_cond_timedwait(&d->cond, &d->lock, &ts);
	}
	if (w.result == 1) {	/* timed out: c is still ours to cancel */
		c->waiter = NULL;
		if (c->req_sent) {
			vsock_conn_reset(d, c);
			vsock_kick(d);
		} else {
			/* the guest never saw it (no driver, no RX buffers): nothing to undo */
			vsock_conn_free(d, c, 0);
		}
		w.result = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&d->lock);
	return w.result;
}

/**
 * vsock_dev_connect() - &mvm_vsock_transport.connect: a socketpair end connected to guest
 * port @port
 * Return: the fd or -errno.
 */
int vsock_dev_connect(struct vsock_dev *d, uint32_t port, int timeout_ms)
{
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	rc = vsock_dev_connect_fd(d, port, sv[0], timeout_ms, 0);
	if (rc) {
		close(sv[1]);
		return rc;
	}
	return sv[1];
}

/**
 * vsock_dev_listen() - accept guest connections to host port @port
 * Return: 0, -EADDRINUSE, -ENOSPC.
 */
int vsock_dev_listen(struct vsock_dev *d, uint32_t port, mvm_vsock_accept_cb cb, void *opaque)
{
	unsigned int i;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->nlisteners; i++)
		if (d->listeners[i].port == port)
			rc = -EADDRINUSE;
	if (!rc && d->nlisteners == VSOCK_MAX_LISTENERS)
		rc = -ENOSPC;
	if (!rc)
		d->listeners[d->nlisteners++] = (struct vsock_listener){ port, cb, opaque };
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/** vsock_dev_unlisten() - stop accepting on @port (existing connections stay) */
void vsock_dev_unlisten(struct vsock_dev *d, uint32_t port)
{
	unsigned int i;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->nlisteners; i++) {
		if (d->listeners[i].port == port) {
			d->listeners[i] = d->listeners[--d->nlisteners];
			break;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

/** vsock_dev_set_forward() - where guest connections to unlistened ports go (bridge) */
void vsock_dev_set_forward(struct vsock_dev *d, vsock_forward_cb cb, void *opaque)
{
	pthread_mutex_lock(&d->lock);
	d->forward = cb;
	d->forward_opaque = opaque;
	pthread_mutex_unlock(&d->lock);
}

/** vsock_dev_kick() - wake the device thread (queue notify from a vCPU; never blocks) */
void vsock_dev_kick(struct vsock_dev *d)
{
	vsock_kick(d);
}

/** vsock_dev_report() - count and report a guest error found outside the engine */
void vsock_dev_report(struct vsock_dev *d, const char *why)
{
	pthread_mutex_lock(&d->lock);
	vsock_guest_error(d, "%s", why);
	pthread_mutex_unlock(&d->lock);
}

/** vsock_dev_guest_errors() - how many guest errors were seen (for tests and diagnostics) */
unsigned long vsock_dev_guest_errors(struct vsock_dev *d)
{
	return atomic_load(&d->guest_errors);
}

/** vsock_dev_nconns() - connections in the table right now */
unsigned int vsock_dev_nconns(struct vsock_dev *d)
{
	unsigned int n;

	pthread_mutex_lock(&d->lock);
	n = d->nconns;
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* &struct mvm_vsock_transport over the engine (the client's ctx is the engine) */
static int vsock_tr_connect(void *ctx, uint32_t port, int timeout_ms)
{
	return vsock_dev_connect(ctx, port, timeout_ms);
}

static int vsock_tr_listen(void *ctx, uint32_t port, mvm_vsock_accept_cb cb, void *opaque)
{
	return vsock_dev_listen(ctx, port, cb, opaque);
}

static void vsock_tr_unlisten(void *ctx, uint32_t port)
{
	vsock_dev_unlisten(ctx, port);
}

/* The runtime's vsock client over this device (ctx: struct vsock_dev; not destroyed). */
const struct mvm_vsock_transport vsock_dev_transport = {
	.connect = vsock_tr_connect,
	.listen = vsock_tr_listen,
	.unlisten = vsock_tr_unlisten,
};

/*
 * The virtio glue: a device thread that waits in vsock_dev_poll(), then drains TX into the
 * engine and fills RX from it.  @qlock keeps a driver reset (vCPU thread, transport lock
 * held) from pulling the queues away while the thread uses them.
 */
struct vsock_virtio {
	struct vsock_dev *core;
	pthread_mutex_t qlock;		/* protects @vqs, @stop */
	struct virtq *vqs;		/* NULL unless DRIVER_OK */
	bool stop;
	pthread_t thread;
	mvm_vsock *client;		/* vsock_virtio_client(), freed with the device */
	struct vsock_uds *uds;		/* vsock_virtio_bridge() */
	struct virtq_elem elem;
	uint8_t scratch[VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD];
};

/** vsock_virtio_tx() - every TX chain into the engine; Return: true if any was used */
static bool vsock_virtio_tx(struct vsock_virtio *v, struct virtq *vq)
{
	struct virtq_elem *e = &v->elem;
	bool used = false;

	while (virtq_pop(vq, e) > 0) {
		if (e->in_num)
			vsock_dev_report(v->core, "TX chain with writable descriptors");
		else if (e->out_len > sizeof(v->scratch))
			vsock_dev_report(v->core, "TX packet larger than header + 64 KiB");
		else
			vsock_dev_tx(v->core, v->scratch,
				     virtq_iov_to_buf(e->out, e->out_num, 0, v->scratch,
						      e->out_len));
		virtq_push(vq, e, 0);
		used = true;
	}
	return used;
}

/** vsock_virtio_rx() - fill RX buffers while the engine has packets; Return: true if any */
static bool vsock_virtio_rx(struct vsock_virtio *v, struct virtq *vq)
{
	struct virtq_elem *e = &v->elem;
	bool used = false;
	size_t n, cap;

	while (virtq_pop(vq, e) > 0) {
		if (e->out_num || e->in_len < VSOCK_HDR_LEN) {
			vsock_dev_report(v->core, "RX buffer readable or shorter than a header");
			virtq_push(vq, e, 0);
			used = true;
			continue;
		}
		cap = e->in_len < sizeof(v->scratch) ? e->in_len : sizeof(v->scratch);
		n = vsock_dev_rx(v->core, v->scratch, cap);
		if (!n) {
			virtq_unpop(vq, e);
			break;
		}
		virtq_buf_to_iov(e->in, e->in_num, 0, v->scratch, n);
		virtq_push(vq, e, (uint32_t)n);
		used = true;
	}
	return used;
}

/* What the device thread does, beside the common list (src/sandbox/sandbox.c). */
static const int vsock_dev_syscalls[] = {
	SANDBOX_SYS(epoll_wait),	/* vsock_dev_poll() */
	SANDBOX_SYS(epoll_pwait),
	SANDBOX_SYS(epoll_ctl),		/* streams added, re-armed, dropped */
	SANDBOX_SYS(sendto),		/* send(): guest bytes to host streams */
	SANDBOX_SYS(recvfrom),		/* recv(): host bytes for the guest */
	SANDBOX_SYS(shutdown),		/* guest SHUTDOWN -> half-close */
	SANDBOX_SYS(fcntl),		/* new streams made non-blocking */
	SANDBOX_SYS(socket),		/* vsock_uds_forward(): PATH_<port> for the guest */
	SANDBOX_SYS(connect),
	SANDBOX_SYS(ioctl),		/* virtq_notify(): KVM_IRQ_LINE */
};

/** vsock_virtio_thread() - the device thread */
static void *vsock_virtio_thread(void *arg)
{
	struct vsock_virtio *v = arg;
	struct sandbox_list list = SANDBOX_LIST(vsock_dev_syscalls);
	int timeout = -1;

	prctl(PR_SET_NAME, "mvm-vsock");
	if (sandbox_thread("virtio-vsock device thread", &list, 1))
		return NULL;	/* reported; the device stays silent */

	for (;;) {
		timeout = vsock_dev_poll(v->core, timeout);
		if (timeout < 0)
			timeout = -1;
		pthread_mutex_lock(&v->qlock);
		if (v->stop) {
			pthread_mutex_unlock(&v->qlock);
			return NULL;
		}
		if (v->vqs) {
			if (vsock_virtio_tx(v, &v->vqs[1]))
				virtq_notify(&v->vqs[1]);
			if (vsock_virtio_rx(v, &v->vqs[0]))
				virtq_notify(&v->vqs[0]);
		}
		pthread_mutex_unlock(&v->qlock);
	}
}

/** vsock_virtio_config_read() - config space: le64 guest_cid (bounds checked by mmio.c) */
static void vsock_virtio_config_read(void *dev, uint32_t offset, void *data, unsigned int len)
{
	struct vsock_virtio *v = dev;
	uint8_t cfg[8];

	put32(cfg, (uint32_t)v->core->guest_cid);
	put32(cfg + 4, (uint32_t)(v->core->guest_cid >> 32));
	if (offset < sizeof(cfg) && len <= sizeof(cfg) - offset)
		memcpy(data, cfg + offset, len);
}

/** vsock_virtio_notify() - a vCPU kicked a queue: wake the device thread, nothing else */
static void vsock_virtio_notify(void *dev, struct virtq *vq, unsigned int qidx)
{
	struct vsock_virtio *v = dev;

	vsock_dev_kick(v->core);
}

/** vsock_virtio_activate() - DRIVER_OK: the thread may use @vqs from now on */
static int vsock_virtio_activate(void *dev, struct virtq *vqs, uint64_t features)
{
	struct vsock_virtio *v = dev;

	pthread_mutex_lock(&v->qlock);
	v->vqs = vqs;
	pthread_mutex_unlock(&v->qlock);
	vsock_dev_kick(v->core);
	return 0;
}

/** vsock_virtio_reset() - driver reset: take the queues away, then drop every connection */
static void vsock_virtio_reset(void *dev)
{
	struct vsock_virtio *v = dev;

	pthread_mutex_lock(&v->qlock);
	v->vqs = NULL;
	pthread_mutex_unlock(&v->qlock);
	vsock_dev_reset(v->core);
}

/* queues: 0 RX, 1 TX, 2 event (never used: we do not migrate); config: le64 guest_cid */
const struct virtio_dev_ops vsock_virtio_ops = {
	.name = "vsock",
	.device_id = 19,	/* VIRTIO_ID_VSOCK */
	.features = 0,
	.num_queues = 3,
	.queue_max = 256,
	.config_size = 8,
	.config_read = vsock_virtio_config_read,
	.queue_notify = vsock_virtio_notify,
	.activate = vsock_virtio_activate,
	.reset = vsock_virtio_reset,
};

/**
 * vsock_virtio_new() - a virtio-vsock device with its thread running
 * @guest_cid:	the guest's CID (3 or more)
 *
 * Pass it with &vsock_virtio_ops to virtio_mmio_new().
 * Return: the device, or NULL with mvm_last_error() set.
 */
struct vsock_virtio *vsock_virtio_new(uint64_t guest_cid)
{
	struct vsock_virtio *v = calloc(1, sizeof(*v));
	int rc;

	if (!v) {
		mvm_set_error(-ENOMEM, "vsock: out of memory");
		return NULL;
	}
	v->core = vsock_dev_new(guest_cid);
	if (!v->core)
		goto err;
	pthread_mutex_init(&v->qlock, NULL);
	rc = pthread_create(&v->thread, NULL, vsock_virtio_thread, v);
	if (rc) {
		mvm_set_error(-rc, "vsock: cannot start the device thread: %s", strerror(rc));
		pthread_mutex_destroy(&v->qlock);
		vsock_dev_free(v->core);
		goto err;
	}
	return v;
err:
	free(v);
	return NULL;
}

/** vsock_virtio_free() - free the client and bridge, stop the thread, free the rest (before the transport) */
void vsock_virtio_free(struct vsock_virtio *v)
{
	if (!v)
		return;
	mvm_vsock_free(v->client);
	vsock_uds_free(v->uds);
	pthread_mutex_lock(&v->qlock);
	v->stop = true;
	v->vqs = NULL;
	pthread_mutex_unlock(&v->qlock);
	vsock_dev_kick(v->core);
	pthread_join(v->thread, NULL);
	vsock_dev_free(v->core);
	pthread_mutex_destroy(&v->qlock);
	free(v);
}

/** vsock_virtio_engine() - the connection engine (listen, connect, forwarder) */
struct vsock_dev *vsock_virtio_engine(struct vsock_virtio *v)
{
	return v->core;
}

/**
 * vsock_virtio_client() - the runtime vsock client over this device
 * Return: the client (owned by the device: valid until vsock_virtio_free()), or NULL with
 * mvm_last_error() set.
 */
mvm_vsock *vsock_virtio_client(struct vsock_virtio *v)
{
	if (!v->client)
		v->client = mvm_vsock_new(&vsock_dev_transport, v->core);
	return v->client;
}

/**
 * vsock_virtio_bridge() - serve the Firecracker-style Unix socket @path for this device
 * Return: 0, or -errno with mvm_last_error() set (-EBUSY if already bridged).
 */
int vsock_virtio_bridge(struct vsock_virtio *v, const char *path)
{
	if (v->uds)
		return mvm_set_error(-EBUSY, "vsock: already bridged to a Unix socket");
	v->uds = vsock_uds_new(v->core, path);
	return v->uds ? 0 : -EINVAL;
}
