/* SPDX-License-Identifier: MIT */
/*
 * test_vsock.c - the vsock connection engine, driven by a fake guest that builds and parses
 * packets (no queues): set-up, refusal, timeouts, data both ways, credit flow in both
 * directions, half-close, reset, and every malformed packet we can think of.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/virtio/vsock.h"

#define GCID 3

struct pkt {
	struct vsock_hdr h;
	uint8_t data[VSOCK_MAX_PAYLOAD];
};

/** gsend() - the fake guest sends a packet; returns vsock_dev_tx()'s result */
static int gsend(struct vsock_dev *d, uint16_t op, uint32_t gport, uint32_t hport,
		 uint32_t flags, const void *data, uint32_t len, uint32_t buf_alloc,
		 uint32_t fwd_cnt)
{
	static uint8_t buf[VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD];
	struct vsock_hdr h = {
		.src_cid = GCID, .dst_cid = 2, .src_port = gport, .dst_port = hport,
		.len = len, .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
		.buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt,
	};

	vsock_hdr_encode(&h, buf);
	if (len)
		memcpy(buf + VSOCK_HDR_LEN, data, len);
	return vsock_dev_tx(d, buf, VSOCK_HDR_LEN + len);
}

/** grecv() - the fake guest takes the next packet (RX buffer of @cap bytes); 0 if none */
static int grecv(struct vsock_dev *d, struct pkt *p, size_t cap)
{
	static uint8_t buf[VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD];
	size_t n;

	vsock_dev_poll(d, 0);
	n = vsock_dev_rx(d, buf, cap);
	if (!n)
		return 0;
	assert_true(n >= VSOCK_HDR_LEN && n <= cap);
	vsock_hdr_decode(&p->h, buf);
	assert_int_equal(p->h.src_cid, 2);
	assert_int_equal(p->h.dst_cid, GCID);
	assert_int_equal(p->h.type, VSOCK_TYPE_STREAM);
	assert_int_equal(p->h.len, n - VSOCK_HDR_LEN);
	assert_int_equal(p->h.buf_alloc, VSOCK_BUF_ALLOC);
	memcpy(p->data, buf + VSOCK_HDR_LEN, p->h.len);
	return 1;
}

/** gexpect() - the next packet must be @op; waits up to 2 s for it */
static void gexpect(struct vsock_dev *d, struct pkt *p, uint16_t op)
{
	for (int i = 0; i < 200; i++) {
		if (grecv(d, p, sizeof(p->data))) {
			if (p->h.op != op)
				fail_msg("expected op %u, got op %u", op, p->h.op);
			return;
		}
		vsock_dev_poll(d, 10);
	}
	fail_msg("no packet (expected op %u)", op);
}

static void gexpect_none(struct vsock_dev *d)
{
	struct pkt p;

	if (grecv(d, &p, sizeof(p.data)))
		fail_msg("unexpected packet op %u len %u", p.h.op, p.h.len);
}

struct connector {
	struct vsock_dev *d;
	uint32_t port;
	int timeout;
	int result;
	pthread_t t;
};

static void *connector_thread(void *arg)
{
	struct connector *c = arg;

	c->result = vsock_dev_connect(c->d, c->port, c->timeout);
	return NULL;
}

static void connect_start(struct connector *c, struct vsock_dev *d, uint32_t port, int timeout)
{
	*c = (struct connector){ .d = d, .port = port, .timeout = timeout };
	assert_int_equal(pthread_create(&c->t, NULL, connector_thread, c), 0);
}

/** established() - host connects to guest port @port; the fake guest accepts */
static int established(struct vsock_dev *d, uint32_t port, uint32_t buf_alloc, uint32_t *hport)
{
	struct connector c;
	struct pkt p;

	connect_start(&c, d, port, 2000);
	gexpect(d, &p, VSOCK_OP_REQUEST);
	assert_int_equal(p.h.dst_port, port);
	*hport = p.h.src_port;
	assert_int_equal(gsend(d, VSOCK_OP_RESPONSE, port, *hport, 0, NULL, 0, buf_alloc, 0), 0);
	pthread_join(c.t, NULL);
	assert_true(c.result >= 0);
	return c.result;
}

static int setup(void **state)
{
	*state = vsock_dev_new(GCID);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	vsock_dev_free(*state);
	return 0;
}

static void read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		assert_int_equal(poll(&pfd, 1, 2000), 1);
		n = read(fd, (char *)buf + got, len - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

static void test_connect_and_data(void **state)
{
	struct vsock_dev *d = *state;
	uint32_t hport;
	struct pkt p;
	char buf[16];
	int fd = established(d, 1025, 65536, &hport);

	assert_true(hport >= 1024);
	assert_int_equal(vsock_dev_nconns(d), 1);
	/* host -> guest */
	assert_int_equal(write(fd, "hello", 5), 5);
	gexpect(d, &p, VSOCK_OP_RW);
	assert_int_equal(p.h.len, 5);
	assert_memory_equal(p.data, "hello", 5);
	assert_int_equal(p.h.src_port, hport);
	assert_int_equal(p.h.dst_port, 1025);
	/* guest -> host */
	assert_int_equal(gsend(d, VSOCK_OP_RW, 1025, hport, 0, "world", 5, 65536, 5), 0);
	read_exact(fd, buf, 5);
	assert_memory_equal(buf, "world", 5);
	/* credit request gets an update carrying our fwd_cnt */
	assert_int_equal(gsend(d, VSOCK_OP_CREDIT_REQUEST, 1025, hport, 0, NULL, 0, 65536, 5), 0);
	gexpect(d, &p, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(p.h.fwd_cnt, 5);
	gexpect_none(d);
	assert_int_equal(vsock_dev_guest_errors(d), 0);
	close(fd);
}

static void test_refused(void **state)
{
	struct vsock_dev *d = *state;
	struct connector c;
	struct pkt p;

	connect_start(&c, d, 7, 2000);
	gexpect(d, &p, VSOCK_OP_REQUEST);
	gsend(d, VSOCK_OP_RST, 7, p.h.src_port, 0, NULL, 0, 0, 0);
	pthread_join(c.t, NULL);
	assert_int_equal(c.result, -ECONNREFUSED);
	assert_int_equal(vsock_dev_nconns(d), 0);
	assert_int_equal(vsock_dev_guest_errors(d), 0);
}

static void test_connect_timeout(void **state)
{
	struct vsock_dev *d = *state;
	struct connector c;
	struct pkt p;

	connect_start(&c, d, 9, 200);
	gexpect(d, &p, VSOCK_OP_REQUEST);
	pthread_join(c.t, NULL);	/* the guest never answers */
	assert_int_equal(c.result, -ETIMEDOUT);
	gexpect(d, &p, VSOCK_OP_RST);	/* the abandoned attempt is reset */
	assert_int_equal(p.h.dst_port, 9);
	assert_int_equal(vsock_dev_nconns(d), 0);
	/* a late RESPONSE is answered with RST, not an error */
	gsend(d, VSOCK_OP_RESPONSE, 9, p.h.src_port, 0, NULL, 0, 4096, 0);
	gexpect(d, &p, VSOCK_OP_RST);
}

/* A guest that takes no RX buffers never sees the REQUEST: a timeout leaves nothing behind. */
static void test_connect_timeout_unseen(void **state)
{
	struct vsock_dev *d = *state;

	for (int i = 0; i < 3; i++)
		assert_int_equal(vsock_dev_connect(d, 1025, 50), -ETIMEDOUT);
	assert_int_equal(vsock_dev_nconns(d), 0);
	gexpect_none(d);
}

struct accepted {
	int fd;
	uint32_t port;
	int n;
};

static void on_accept(void *opaque, uint32_t port, int fd)
{
	struct accepted *a = opaque;

	a->fd = fd;
	a->port = port;
	a->n++;
}

static void test_guest_initiated(void **state)
{
	struct vsock_dev *d = *state;
	struct accepted a = { .fd = -1 };
	struct pkt p;
	char buf[8];

	assert_int_equal(vsock_dev_listen(d, 5000, on_accept, &a), 0);
	assert_int_equal(vsock_dev_listen(d, 5000, on_accept, &a), -EADDRINUSE);
	gsend(d, VSOCK_OP_REQUEST, 40000, 5000, 0, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RESPONSE);
	assert_int_equal(p.h.src_port, 5000);
	assert_int_equal(p.h.dst_port, 40000);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.port, 5000);
	gsend(d, VSOCK_OP_RW, 40000, 5000, 0, "ping", 4, 65536, 0);
	read_exact(a.fd, buf, 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(write(a.fd, "pong", 4), 4);
	gexpect(d, &p, VSOCK_OP_RW);
	assert_memory_equal(p.data, "pong", 4);
	/* nobody listens on 5001: RST */
	gsend(d, VSOCK_OP_REQUEST, 40001, 5001, 0, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	assert_int_equal(p.h.dst_port, 40001);
	vsock_dev_unlisten(d, 5000);
	gsend(d, VSOCK_OP_REQUEST, 40002, 5000, 0, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	/* the accepted connection still works after unlisten */
	gsend(d, VSOCK_OP_RW, 40000, 5000, 0, "more", 4, 65536, 4);
	read_exact(a.fd, buf, 4);
	assert_memory_equal(buf, "more", 4);
	close(a.fd);
	assert_int_equal(vsock_dev_guest_errors(d), 0);
}

static int forward_to(void *opaque, uint32_t port)
{
	int *sv = opaque;

	return port == 6000 ? sv[0] : -ECONNREFUSED;
}

static void test_forwarder(void **state)
{
	struct vsock_dev *d = *state;
	struct pkt p;
	int sv[2];
	char buf[4];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	vsock_dev_set_forward(d, forward_to, sv);
	gsend(d, VSOCK_OP_REQUEST, 41000, 6000, 0, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RESPONSE);
	gsend(d, VSOCK_OP_RW, 41000, 6000, 0, "abc", 3, 65536, 0);
	read_exact(sv[1], buf, 3);
	assert_memory_equal(buf, "abc", 3);
	gsend(d, VSOCK_OP_REQUEST, 41001, 6001, 0, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	close(sv[1]);
}

static void test_unknown_connection(void **state)
{
	struct vsock_dev *d = *state;
	struct pkt p;

	gsend(d, VSOCK_OP_RW, 1234, 4321, 0, "x", 1, 4096, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	assert_int_equal(p.h.src_port, 4321);
	assert_int_equal(p.h.dst_port, 1234);
	gsend(d, VSOCK_OP_SHUTDOWN, 1234, 4321, 3, NULL, 0, 4096, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	gsend(d, VSOCK_OP_RST, 1234, 4321, 0, NULL, 0, 4096, 0);	/* never answer RST */
	gexpect_none(d);
}

/* host -> guest: never more than the guest's credit; more after its CREDIT_UPDATE */
static void test_credit_to_guest(void **state)
{
	struct vsock_dev *d = *state;
	static char big[10000];
	uint32_t hport, got = 0;
	struct pkt p;
	int fd = established(d, 1030, 3000, &hport);

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)i;
	assert_int_equal(write(fd, big, sizeof(big)), sizeof(big));
	while (grecv(d, &p, 1000 + VSOCK_HDR_LEN)) {	/* small RX buffers: 1000 bytes */
		if (p.h.op == VSOCK_OP_CREDIT_REQUEST)
			break;
		assert_int_equal(p.h.op, VSOCK_OP_RW);
		assert_true(p.h.len <= 1000);
		assert_memory_equal(p.data, big + got, p.h.len);
		got += p.h.len;
	}
	assert_int_equal(got, 3000);	/* exactly the credit */
	assert_int_equal(p.h.op, VSOCK_OP_CREDIT_REQUEST);
	gexpect_none(d);
	/* the guest consumed 2000 of them */
	gsend(d, VSOCK_OP_CREDIT_UPDATE, 1030, hport, 0, NULL, 0, 3000, 2000);
	while (grecv(d, &p, sizeof(p.data))) {
		if (p.h.op == VSOCK_OP_CREDIT_REQUEST)	/* out of credit again */
			continue;
		assert_int_equal(p.h.op, VSOCK_OP_RW);
		assert_memory_equal(p.data, big + got, p.h.len);
		got += p.h.len;
	}
	assert_int_equal(got, 5000);
	/* a lying fwd_cnt (more than we ever sent) gives no credit at all */
	gsend(d, VSOCK_OP_CREDIT_UPDATE, 1030, hport, 0, NULL, 0, 3000, 9000);
	while (grecv(d, &p, sizeof(p.data)))
		assert_int_not_equal(p.h.op, VSOCK_OP_RW);
	/* the truth again: everything consumed, bigger buffer */
	gsend(d, VSOCK_OP_CREDIT_UPDATE, 1030, hport, 0, NULL, 0, 1 << 20, 5000);
	while (grecv(d, &p, sizeof(p.data))) {
		assert_int_equal(p.h.op, VSOCK_OP_RW);
		assert_memory_equal(p.data, big + got, p.h.len);
		got += p.h.len;
	}
	assert_int_equal(got, sizeof(big));
	close(fd);
}

/* guest -> host: our buf_alloc is backed; the guest gets credit back as the host reads */
static void test_credit_from_guest(void **state)
{
	struct vsock_dev *d = *state;
	static uint8_t chunk[VSOCK_MAX_PAYLOAD], rbuf[VSOCK_MAX_PAYLOAD];
	uint32_t hport, sent = 0, peer_fwd = 0, peer_alloc = VSOCK_BUF_ALLOC, checked = 0;
	const uint32_t total = 4u << 20;	/* 4 MiB, far beyond any socket buffer */
	int fd = established(d, 1031, 65536, &hport);
	struct pkt p;

	while (checked < total) {
		/* guest: send as much as its credit allows */
		while (sent < total) {
			uint32_t credit = peer_alloc - (sent - peer_fwd), n = total - sent;

			if (n > sizeof(chunk))
				n = sizeof(chunk);
			if (n > credit)
				n = credit;
			if (!n)
				break;
			for (uint32_t i = 0; i < n; i++)
				chunk[i] = (uint8_t)((sent + i) * 7);
			assert_int_equal(gsend(d, VSOCK_OP_RW, 1031, hport, 0, chunk, n, 65536, 0),
					 0);
			sent += n;
		}
		/* host: read some */
		ssize_t r = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);

		if (r > 0) {
			for (ssize_t i = 0; i < r; i++)
				if (rbuf[i] != (uint8_t)((checked + (uint32_t)i) * 7))
					fail_msg("byte %u differs", checked + (uint32_t)i);
			checked += (uint32_t)r;
		}
		/* guest: take credit updates */
		vsock_dev_poll(d, 0);
		while (grecv(d, &p, sizeof(p.data))) {
			assert_int_equal(p.h.op, VSOCK_OP_CREDIT_UPDATE);
			assert_true(p.h.fwd_cnt - peer_fwd <= sent - peer_fwd);
			peer_fwd = p.h.fwd_cnt;
			peer_alloc = p.h.buf_alloc;
		}
	}
	assert_int_equal(sent, total);
	assert_int_equal(vsock_dev_guest_errors(d), 0);
	close(fd);
}

/* A guest that ignores our credit gets its connection reset; others go on. */
static void test_credit_lie(void **state)
{
	struct vsock_dev *d = *state;
	static uint8_t chunk[VSOCK_MAX_PAYLOAD];
	uint32_t hport, hport2, sent = 0;
	int fd = established(d, 1032, 65536, &hport);
	int fd2 = established(d, 1033, 65536, &hport2);
	struct pkt p;
	char buf[2];

	/* fill the host socket and our ring without the host reading */
	while (sent < 16u << 20) {
		gsend(d, VSOCK_OP_RW, 1032, hport, 0, chunk, sizeof(chunk), 65536, 0);
		sent += sizeof(chunk);
		if (vsock_dev_guest_errors(d))
			break;
	}
	assert_int_equal(vsock_dev_guest_errors(d), 1);
	gexpect(d, &p, VSOCK_OP_RST);
	assert_int_equal(p.h.dst_port, 1032);
	assert_int_equal(vsock_dev_nconns(d), 1);
	/* the other connection is fine */
	gsend(d, VSOCK_OP_RW, 1033, hport2, 0, "ok", 2, 65536, 0);
	read_exact(fd2, buf, 2);
	assert_memory_equal(buf, "ok", 2);
	close(fd);
	close(fd2);
}

static void test_half_close(void **state)
{
	struct vsock_dev *d = *state;
	uint32_t hport;
	int fd = established(d, 1040, 65536, &hport);
	struct pkt p;
	char buf[8];

	/* the host shuts its sending side: SHUTDOWN(SEND) after the data */
	assert_int_equal(write(fd, "bye", 3), 3);
	shutdown(fd, SHUT_WR);
	gexpect(d, &p, VSOCK_OP_RW);
	assert_memory_equal(p.data, "bye", 3);
	gexpect(d, &p, VSOCK_OP_SHUTDOWN);
	assert_int_equal(p.h.flags, VSOCK_SHUTDOWN_SEND);
	gexpect_none(d);
	/* the guest can still send */
	gsend(d, VSOCK_OP_RW, 1040, hport, 0, "more", 4, 65536, 3);
	read_exact(fd, buf, 4);
	assert_memory_equal(buf, "more", 4);
	/* the host closes: SHUTDOWN(RCV|SEND); the guest's RST ends the connection */
	close(fd);
	gexpect(d, &p, VSOCK_OP_SHUTDOWN);
	assert_int_equal(p.h.flags, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
	gsend(d, VSOCK_OP_RST, 1040, hport, 0, NULL, 0, 65536, 0);
	assert_int_equal(vsock_dev_nconns(d), 0);
	gexpect_none(d);

	/* the guest shuts its sending side: the host reads the data, then EOF */
	fd = established(d, 1041, 65536, &hport);
	gsend(d, VSOCK_OP_RW, 1041, hport, 0, "last", 4, 65536, 0);
	gsend(d, VSOCK_OP_SHUTDOWN, 1041, hport, VSOCK_SHUTDOWN_SEND, NULL, 0, 65536, 0);
	read_exact(fd, buf, 4);
	assert_memory_equal(buf, "last", 4);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	/* the host can still send, then closes: both directions are done */
	assert_int_equal(write(fd, "reply", 5), 5);
	gexpect(d, &p, VSOCK_OP_RW);
	assert_memory_equal(p.data, "reply", 5);
	close(fd);
	gexpect(d, &p, VSOCK_OP_SHUTDOWN);
	assert_int_equal(p.h.flags, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
	gsend(d, VSOCK_OP_RST, 1041, hport, 0, NULL, 0, 65536, 0);
	assert_int_equal(vsock_dev_nconns(d), 0);
	assert_int_equal(vsock_dev_guest_errors(d), 0);
}

struct drain_reader {
	int fd;
	uint32_t got;
	int bad;
	pthread_t t;
};

/* the host program: reads to EOF, checking the pattern test_teardown_delivers_buffered sent */
static void *drain_reader_thread(void *arg)
{
	struct drain_reader *r = arg;
	static uint8_t buf[65536];
	ssize_t n;

	usleep(200 * 1000);	/* the device is freed while nothing was read yet */
	while ((n = read(r->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != (uint8_t)((r->got + (uint32_t)i) * 13))
				r->bad = 1;
		r->got += (uint32_t)n;
	}
	return NULL;
}

/*
 * The guest writes until its credit is gone (the host program reads nothing: the host socket
 * fills, then our ring), closes, and the VM goes away: the host program still reads every
 * byte, then EOF.  (A guest whose write() returned counts those bytes as sent.)
 */
static void test_teardown_delivers_buffered(void **state)
{
	struct vsock_dev *d = *state;
	static uint8_t chunk[VSOCK_MAX_PAYLOAD];
	uint32_t hport, sent = 0, peer_fwd = 0, peer_alloc = VSOCK_BUF_ALLOC;
	struct drain_reader r = { 0 };
	struct pkt p;

	r.fd = established(d, 1045, 65536, &hport);
	for (;;) {
		uint32_t n = peer_alloc - (sent - peer_fwd);

		if (n > sizeof(chunk))
			n = sizeof(chunk);
		if (!n) {	/* out of credit: is an update coming? */
			vsock_dev_poll(d, 100);
			if (!grecv(d, &p, sizeof(p.data)))
				break;
			assert_int_equal(p.h.op, VSOCK_OP_CREDIT_UPDATE);
			peer_fwd = p.h.fwd_cnt;
			peer_alloc = p.h.buf_alloc;
			continue;
		}
		for (uint32_t i = 0; i < n; i++)
			chunk[i] = (uint8_t)((sent + i) * 13);
		assert_int_equal(gsend(d, VSOCK_OP_RW, 1045, hport, 0, chunk, n, 65536, 0), 0);
		sent += n;
	}
	assert_true(sent - peer_fwd > 0);	/* some of it waits in our ring */
	gsend(d, VSOCK_OP_SHUTDOWN, 1045, hport, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV, NULL,
	      0, 65536, 0);
	assert_int_equal(pthread_create(&r.t, NULL, drain_reader_thread, &r), 0);
	vsock_dev_free(d);
	*state = NULL;
	pthread_join(r.t, NULL);
	close(r.fd);
	assert_int_equal(r.got, sent);
	assert_false(r.bad);
}

static void test_guest_close(void **state)
{
	struct vsock_dev *d = *state;
	uint32_t hport;
	int fd = established(d, 1041, 65536, &hport);
	struct pkt p;
	char buf[8];

	gsend(d, VSOCK_OP_RW, 1041, hport, 0, "data", 4, 65536, 0);
	gsend(d, VSOCK_OP_SHUTDOWN, 1041, hport, 3, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	assert_int_equal(vsock_dev_nconns(d), 0);
	read_exact(fd, buf, 4);	/* data sent before the close still arrives */
	assert_memory_equal(buf, "data", 4);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);
}

static void test_guest_rst(void **state)
{
	struct vsock_dev *d = *state;
	uint32_t hport;
	int fd = established(d, 1042, 65536, &hport);
	char buf[4];

	gsend(d, VSOCK_OP_RST, 1042, hport, 0, NULL, 0, 65536, 0);
	assert_int_equal(vsock_dev_nconns(d), 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	gexpect_none(d);
}

static void test_bad_packets(void **state)
{
	struct vsock_dev *d = *state;
	uint8_t raw[VSOCK_HDR_LEN + 8] = { 0 };
	struct vsock_hdr h = {
		.src_cid = GCID, .dst_cid = 2, .src_port = 1, .dst_port = 2,
		.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW,
	};
	uint32_t hport;
	unsigned long errs;
	int fd = established(d, 1050, 65536, &hport);
	struct pkt p;
	char buf[4];

	/* short */
	assert_int_equal(vsock_dev_tx(d, raw, 10), -EINVAL);
	assert_int_equal(vsock_dev_tx(d, raw, 0), -EINVAL);
	/* length field disagrees with the buffer, both ways, and a huge one */
	h.len = 100;
	vsock_hdr_encode(&h, raw);
	assert_int_equal(vsock_dev_tx(d, raw, VSOCK_HDR_LEN + 8), -EINVAL);
	h.len = 4;
	vsock_hdr_encode(&h, raw);
	assert_int_equal(vsock_dev_tx(d, raw, VSOCK_HDR_LEN + 8), -EINVAL);
	h.len = 0xffffffffu;
	vsock_hdr_encode(&h, raw);
	assert_int_equal(vsock_dev_tx(d, raw, VSOCK_HDR_LEN), -EINVAL);
	/* wrong CIDs */
	h.len = 0;
	h.src_cid = 99;
	vsock_hdr_encode(&h, raw);
	assert_int_equal(vsock_dev_tx(d, raw, VSOCK_HDR_LEN), -EINVAL);
	h.src_cid = GCID;
	h.dst_cid = 7;
	vsock_hdr_encode(&h, raw);
	assert_int_equal(vsock_dev_tx(d, raw, VSOCK_HDR_LEN), -EINVAL);
	assert_int_equal(vsock_dev_guest_errors(d), 7);
	gexpect_none(d);
	/* SEQPACKET type on a new connection: RST */
	h.dst_cid = 2;
	h.type = 2;
	h.op = VSOCK_OP_REQUEST;
	vsock_hdr_encode(&h, raw);
	assert_int_equal(vsock_dev_tx(d, raw, VSOCK_HDR_LEN), 0);
	gexpect(d, &p, VSOCK_OP_RST);
	/* unknown op and a second REQUEST on a live connection: error, RST, dropped */
	errs = vsock_dev_guest_errors(d);
	gsend(d, 99, 1050, hport, 0, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	assert_int_equal(vsock_dev_guest_errors(d), errs + 1);
	assert_int_equal(vsock_dev_nconns(d), 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	fd = established(d, 1051, 65536, &hport);
	gsend(d, VSOCK_OP_REQUEST, 1051, hport, 0, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	assert_int_equal(vsock_dev_nconns(d), 0);
	close(fd);
	/* RW before RESPONSE on a host-initiated connection */
	struct connector c;

	connect_start(&c, d, 1052, 2000);
	gexpect(d, &p, VSOCK_OP_REQUEST);
	gsend(d, VSOCK_OP_RW, 1052, p.h.src_port, 0, "x", 1, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	pthread_join(c.t, NULL);
	assert_int_equal(c.result, -ECONNRESET);
	/* RW after the guest's own SHUTDOWN(SEND) */
	fd = established(d, 1053, 65536, &hport);
	gsend(d, VSOCK_OP_SHUTDOWN, 1053, hport, VSOCK_SHUTDOWN_SEND, NULL, 0, 65536, 0);
	errs = vsock_dev_guest_errors(d);
	gsend(d, VSOCK_OP_RW, 1053, hport, 0, "x", 1, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	assert_int_equal(vsock_dev_guest_errors(d), errs + 1);
	close(fd);
	assert_int_equal(vsock_dev_nconns(d), 0);
}

static void test_reset(void **state)
{
	struct vsock_dev *d = *state;
	struct accepted a = { .fd = -1 };
	uint32_t hport;
	int fd = established(d, 1060, 65536, &hport);
	struct pkt p;
	char buf[4];

	assert_int_equal(vsock_dev_listen(d, 5005, on_accept, &a), 0);
	assert_int_equal(write(fd, "zz", 2), 2);
	vsock_dev_reset(d);
	assert_int_equal(vsock_dev_nconns(d), 0);
	assert_true(read(fd, buf, sizeof(buf)) <= 0);	/* EOF, or ECONNRESET (unread "zz") */
	close(fd);
	gexpect_none(d);
	/* the listener survived the reset */
	gsend(d, VSOCK_OP_REQUEST, 40000, 5005, 0, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RESPONSE);
	close(a.fd);
}

static void test_many_connections(void **state)
{
	struct vsock_dev *d = *state;
	int fds[100];
	uint32_t hports[100];
	struct pkt p;
	char buf[8];

	for (int i = 0; i < 100; i++)
		fds[i] = established(d, 2000 + (uint32_t)i, 65536, &hports[i]);
	assert_int_equal(vsock_dev_nconns(d), 100);
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "%03d", i);
		assert_int_equal(write(fds[i], buf, 3), 3);
	}
	for (int n = 0; n < 100; n++) {
		gexpect(d, &p, VSOCK_OP_RW);
		snprintf(buf, sizeof(buf), "%03u", p.h.dst_port - 2000);
		assert_memory_equal(p.data, buf, 3);
		gsend(d, VSOCK_OP_RW, p.h.dst_port, p.h.src_port, 0, p.data, 3, 65536, 3);
	}
	for (int i = 0; i < 100; i++) {
		char want[8];

		snprintf(want, sizeof(want), "%03d", i);
		read_exact(fds[i], buf, 3);
		assert_memory_equal(buf, want, 3);
		close(fds[i]);
	}
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

/* Firecracker's protocol: CONNECT <port> / OK <host_port>, and PATH_<port> for the guest */
static void test_uds_bridge(void **state)
{
	struct vsock_dev *d = *state;
	char path[64], ppath[80], buf[64];
	struct vsock_uds *u;
	struct pkt p;
	int fd, lfd, afd;

	snprintf(path, sizeof(path), "/tmp/mvm-vsock-test-%d.sock", (int)getpid());
	u = vsock_uds_new(d, path);
	assert_non_null(u);
	fd = unix_connect(path);
	assert_int_equal(write(fd, "CONNECT 1025\nearly", 18), 18);	/* data right behind */
	gexpect(d, &p, VSOCK_OP_REQUEST);
	assert_int_equal(p.h.dst_port, 1025);
	uint32_t hport = p.h.src_port;

	gsend(d, VSOCK_OP_RESPONSE, 1025, hport, 0, NULL, 0, 65536, 0);
	gsend(d, VSOCK_OP_RW, 1025, hport, 0, "guest", 5, 65536, 0);
	snprintf(ppath, sizeof(ppath), "OK %u\nguest", hport);
	read_exact(fd, buf, strlen(ppath));
	assert_memory_equal(buf, ppath, strlen(ppath));
	gexpect(d, &p, VSOCK_OP_RW);
	assert_int_equal(p.h.len, 5);
	assert_memory_equal(p.data, "early", 5);
	close(fd);
	gexpect(d, &p, VSOCK_OP_SHUTDOWN);
	gsend(d, VSOCK_OP_RST, 1025, hport, 0, NULL, 0, 65536, 0);
	/* refused by the guest: the socket is closed without OK */
	fd = unix_connect(path);
	assert_int_equal(write(fd, "CONNECT 7\n", 10), 10);
	gexpect(d, &p, VSOCK_OP_REQUEST);
	gsend(d, VSOCK_OP_RST, 7, p.h.src_port, 0, NULL, 0, 0, 0);
	assert_true(read(fd, buf, sizeof(buf)) <= 0);
	close(fd);
	/* garbage instead of CONNECT: closed */
	fd = unix_connect(path);
	assert_int_equal(write(fd, "HELLO 1\n", 8), 8);
	assert_true(read(fd, buf, sizeof(buf)) <= 0);
	close(fd);
	/* guest -> host port 6000: PATH_6000 */
	snprintf(ppath, sizeof(ppath), "%s_6000", path);
	lfd = unix_listen(ppath);
	gsend(d, VSOCK_OP_REQUEST, 42000, 6000, 0, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RESPONSE);
	afd = accept(lfd, NULL, NULL);
	gsend(d, VSOCK_OP_RW, 42000, 6000, 0, "hi", 2, 65536, 0);
	read_exact(afd, buf, 2);
	assert_memory_equal(buf, "hi", 2);
	/* nobody on PATH_6001 */
	gsend(d, VSOCK_OP_REQUEST, 42001, 6001, 0, NULL, 0, 65536, 0);
	gexpect(d, &p, VSOCK_OP_RST);
	close(afd);
	close(lfd);
	unlink(ppath);
	vsock_uds_free(u);
	assert_int_equal(access(path, F_OK), -1);
	/* a regular file in the way is an error, not replaced */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_null(vsock_uds_new(d, path));
	unlink(path);
}

/* the Firecracker CONNECT line parser on its own (fuzz-vsock-uds drives it too) */
static void test_uds_parse_connect(void **state)
{
	static const char *const bad[] = {
		"", "CONNECT", "CONNECT ", "CONNECT x", "CONNECT -1", "CONNECT +5", "CONNECT  5",
		"CONNECT 5 ", "connect 5", "CONNECT 4294967296", "CONNECT 00000000001",
		"CONNECT 99999999999999999999", "CONNECT 5\r\r", "LISTEN 5",
	};
	size_t i;

	(void)state;
	assert_int_equal(vsock_uds_parse_connect("CONNECT 1025", 12), 1025);
	assert_int_equal(vsock_uds_parse_connect("CONNECT 0\r", 10), 0);
	assert_int_equal(vsock_uds_parse_connect("CONNECT 4294967295", 18), 4294967295L);
	/* an embedded NUL is not the end of the line */
	assert_int_equal(vsock_uds_parse_connect("CONNECT 5\0x", 11), -EPROTO);
	/* only @len bytes count */
	assert_int_equal(vsock_uds_parse_connect("CONNECT 52", 9), 5);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vsock_uds_parse_connect(bad[i], strlen(bad[i])) != -EPROTO)
			fail_msg("accepted '%s'", bad[i]);
}

static void test_bad_cid(void **state)
{
	(void)state;
	assert_null(vsock_dev_new(2));
	assert_null(vsock_dev_new(0xffffffffULL));
	assert_null(vsock_dev_new(1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connect_and_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_timeout_unseen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_initiated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forwarder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_to_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_from_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_lie, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_delivers_buffered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_rst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_packets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uds_bridge, setup, teardown),
		cmocka_unit_test(test_bad_cid),
		cmocka_unit_test(test_uds_parse_connect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
