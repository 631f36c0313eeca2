/* SPDX-License-Identifier: MIT */
/*
 * test_vsock_virtio.c - the virtio-vsock device through the real virtio-mmio transport, with
 * virtio_sim playing the guest driver and the device thread running: registers and config
 * space, a connection through the runtime client, and malformed descriptor chains (wrong
 * directions, tiny and huge buffers, addresses outside RAM, loops, zero lengths).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/virtio/vsock.h"
#include "virtio_sim.h"

#define RXQ 0
#define TXQ 1

struct env {
	struct vsim s;
	struct vsock_virtio *v;
	mvm_vsock *client;
};

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void post_rx(struct env *e, unsigned int n)
{
	size_t lens[2] = { VSOCK_HDR_LEN, 4096 };	/* like Linux 6.1: header, then data */

	for (unsigned int i = 0; i < n; i++)
		assert_true(vsim_post(&e->s, RXQ, NULL, 0, lens, 2) >= 0);
	vsim_kick(&e->s, RXQ);
}

static void send_pkt(struct env *e, uint16_t op, uint32_t gport, uint32_t hport,
		     const void *data, uint32_t len)
{
	uint8_t hdr[VSOCK_HDR_LEN];
	struct vsock_hdr h = {
		.src_cid = 3, .dst_cid = 2, .src_port = gport, .dst_port = hport, .len = len,
		.type = VSOCK_TYPE_STREAM, .op = op, .buf_alloc = 65536,
	};
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, len } };

	vsock_hdr_encode(&h, hdr);
	assert_true(vsim_post(&e->s, TXQ, iov, len ? 2 : 1, NULL, 0) >= 0);
	vsim_kick(&e->s, TXQ);
}

/** recv_pkt() - wait up to 2 s for a used RX buffer; Return: 1 with @h/@data, 0 if none */
static int recv_pkt(struct env *e, struct vsock_hdr *h, uint8_t *data, size_t cap)
{
	uint8_t buf[VSOCK_HDR_LEN + 4096];
	uint32_t len;

	for (int i = 0; i < 2000; i++) {
		while (vsim_used(&e->s, TXQ, NULL, NULL, 0) >= 0)
			;	/* recycle TX descriptors */
		if (vsim_used(&e->s, RXQ, &len, buf, sizeof(buf)) >= 0) {
			assert_true(len >= VSOCK_HDR_LEN);
			vsock_hdr_decode(h, buf);
			assert_int_equal(h->len, len - VSOCK_HDR_LEN);
			if (data)
				memcpy(data, buf + VSOCK_HDR_LEN, h->len < cap ? h->len : cap);
			return 1;
		}
		sleep_ms(1);
	}
	return 0;
}

static int setup(void **state)
{
	static struct env e;

	memset(&e, 0, sizeof(e));
	if (vsim_init(&e.s, 16u << 20))
		return -1;
	e.v = vsock_virtio_new(3);
	if (!e.v || vsim_attach(&e.s, &vsock_virtio_ops, e.v) || vsim_start(&e.s, 0, 0))
		return -1;
	e.client = vsock_virtio_client(e.v);
	*state = &e;
	return e.client ? 0 : -1;
}

static int teardown(void **state)
{
	struct env *e = *state;

	vsock_virtio_free(e->v);	/* frees the client, stops the thread: then the queues may go */
	vsim_fini(&e->s);
	return 0;
}

static void test_registers(void **state)
{
	struct env *e = *state;

	assert_int_equal(vsim_read32(&e->s, VIRTIO_MMIO_DEVICE_ID), 19);
	assert_int_equal(vsim_read32(&e->s, VIRTIO_MMIO_CONFIG), 3);	/* guest_cid low */
	assert_int_equal(vsim_read32(&e->s, VIRTIO_MMIO_CONFIG + 4), 0);
	vsim_write32(&e->s, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_true(vsim_read32(&e->s, VIRTIO_MMIO_QUEUE_NUM_MAX) > 0);
	vsim_write32(&e->s, VIRTIO_MMIO_QUEUE_SEL, 3);
	assert_int_equal(vsim_read32(&e->s, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
}

struct connector {
	mvm_vsock *client;
	uint32_t port;
	int result;
	pthread_t t;
};

static void *connector_thread(void *arg)
{
	struct connector *c = arg;

	c->result = mvm_vsock_connect(c->client, c->port, 3000);
	return NULL;
}

/** guest_accept() - the host connects to @port; the simulated guest answers RESPONSE */
static int guest_accept(struct env *e, uint32_t port, uint32_t *hport)
{
	struct connector c = { .client = e->client, .port = port };
	struct vsock_hdr h;

	assert_int_equal(pthread_create(&c.t, NULL, connector_thread, &c), 0);
	assert_true(recv_pkt(e, &h, NULL, 0));
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, port);
	assert_int_equal(h.dst_cid, 3);
	*hport = h.src_port;
	send_pkt(e, VSOCK_OP_RESPONSE, port, h.src_port, NULL, 0);
	pthread_join(c.t, NULL);
	assert_true(c.result >= 0);
	return c.result;
}

static void read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		assert_int_equal(poll(&pfd, 1, 3000), 1);
		n = read(fd, (char *)buf + got, len - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

static void test_connection(void **state)
{
	struct env *e = *state;
	struct vsock_hdr h;
	uint8_t data[4096];
	uint32_t hport;
	char buf[8];
	int fd;

	post_rx(e, 16);
	fd = guest_accept(e, 1025, &hport);
	assert_int_equal(write(fd, "ping\n", 5), 5);
	assert_true(recv_pkt(e, &h, data, sizeof(data)));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_memory_equal(data, "ping\n", 5);
	send_pkt(e, VSOCK_OP_RW, 1025, hport, "pong\n", 5);
	read_exact(fd, buf, 5);
	assert_memory_equal(buf, "pong\n", 5);
	close(fd);
	assert_true(recv_pkt(e, &h, NULL, 0));
	assert_int_equal(h.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, 3);
	send_pkt(e, VSOCK_OP_RST, 1025, hport, NULL, 0);
	/* refused through the client */
	char *resp;
	struct connector c = { .client = e->client, .port = 99 };

	assert_int_equal(pthread_create(&c.t, NULL, connector_thread, &c), 0);
	assert_true(recv_pkt(e, &h, NULL, 0));
	send_pkt(e, VSOCK_OP_RST, 99, h.src_port, NULL, 0);
	pthread_join(c.t, NULL);
	assert_int_equal(c.result, -ECONNREFUSED);
	(void)resp;
	assert_int_equal(vsock_dev_guest_errors(vsock_virtio_engine(e->v)), 0);
}

/* Chains with the wrong shape are guest errors; the device keeps serving. */
static void test_wrong_shapes(void **state)
{
	struct env *e = *state;
	struct vsock_dev *d = vsock_virtio_engine(e->v);
	uint8_t hdr[VSOCK_HDR_LEN] = { 0 };
	struct iovec out = { hdr, sizeof(hdr) };
	size_t tiny = 10, in = 64;
	struct vsock_hdr h;
	uint32_t len, hport;
	int fd;

	/* TX with a writable descriptor */
	assert_true(vsim_post(&e->s, TXQ, &out, 1, &in, 1) >= 0);
	vsim_kick(&e->s, TXQ);
	/* RX buffer that cannot hold a header, and one with a readable descriptor */
	assert_true(vsim_post(&e->s, RXQ, NULL, 0, &tiny, 1) >= 0);
	assert_true(vsim_post(&e->s, RXQ, &out, 1, &in, 1) >= 0);
	vsim_kick(&e->s, RXQ);
	for (int i = 0; i < 10000 && vsock_dev_guest_errors(d) < 3; i++)
		sleep_ms(1);
	assert_int_equal(vsock_dev_guest_errors(d), 3);
	/* both bad RX buffers came back empty (the device counts an error before it returns the
	 * buffer, so wait for each) */
	for (int n = 0; n < 2; n++) {
		int r = -1;

		for (int i = 0; i < 10000 && r < 0; i++) {
			r = vsim_used(&e->s, RXQ, &len, NULL, 0);
			if (r < 0)
				sleep_ms(1);
		}
		assert_true(r >= 0);
		assert_int_equal(len, 0);
	}
	/* an all-zero header (CID 0, length 0) and a TX packet over 64 KiB */
	static uint8_t big[VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD + 1];
	struct iovec bigv = { big, sizeof(big) };

	assert_true(vsim_post(&e->s, TXQ, &out, 1, NULL, 0) >= 0);
	assert_true(vsim_post(&e->s, TXQ, &bigv, 1, NULL, 0) >= 0);
	vsim_kick(&e->s, TXQ);
	for (int i = 0; i < 10000 && vsock_dev_guest_errors(d) < 5; i++)
		sleep_ms(1);
	assert_int_equal(vsock_dev_guest_errors(d), 5);
	/* the device still works */
	post_rx(e, 8);
	fd = guest_accept(e, 1026, &hport);
	send_pkt(e, VSOCK_OP_RW, 1026, hport, "ok", 2);
	char buf[2];

	read_exact(fd, buf, 2);
	close(fd);
	(void)h;
}

/** wait_needs_reset() - the transport flagged DEVICE_NEEDS_RESET */
static void wait_needs_reset(struct env *e)
{
	for (int i = 0; i < 2000; i++) {
		if (virtio_mmio_status(e->s.t) & VIRTIO_CONFIG_S_NEEDS_RESET)
			return;
		sleep_ms(1);
	}
	fail_msg("DEVICE_NEEDS_RESET not set");
}

/** recover() - a driver reset and a fresh start bring the device back */
static void recover(struct env *e)
{
	uint32_t hport;
	char buf[2];
	int fd;

	assert_int_equal(vsim_start(&e->s, 0, 0), 0);
	post_rx(e, 8);
	fd = guest_accept(e, 1027, &hport);
	send_pkt(e, VSOCK_OP_RW, 1027, hport, "ok", 2);
	read_exact(fd, buf, 2);
	close(fd);
}

/* Raw, malformed chains: the queue refuses them (broken until reset), nothing crashes. */
static void raw_tx_chain(struct env *e, uint64_t addr, uint32_t len, uint16_t flags,
			 uint16_t next)
{
	struct vring_desc *dsc = vsim_desc(&e->s, TXQ, 200);

	dsc->addr = addr;
	dsc->len = len;
	dsc->flags = flags;
	dsc->next = next;
	vsim_publish(&e->s, TXQ, 200);
	vsim_kick(&e->s, TXQ);
	wait_needs_reset(e);
}

static void test_addr_outside_ram(void **state)
{
	struct env *e = *state;

	raw_tx_chain(e, 0x1000, VSOCK_HDR_LEN, 0, 0);	/* below RAM */
	recover(e);
	raw_tx_chain(e, VSIM_RAM_GPA + e->s.ram_size - 8, VSOCK_HDR_LEN, 0, 0);	/* straddles */
	recover(e);
	raw_tx_chain(e, UINT64_MAX - 4, VSOCK_HDR_LEN, 0, 0);	/* wraps */
	recover(e);
}

static void test_loop_zero_huge(void **state)
{
	struct env *e = *state;
	uint64_t buf = vsim_alloc(&e->s, 4096, 16);

	raw_tx_chain(e, buf, VSOCK_HDR_LEN, VRING_DESC_F_NEXT, 200);	/* loop on itself */
	recover(e);
	raw_tx_chain(e, buf, 0, 0, 0);					/* zero length */
	recover(e);
	raw_tx_chain(e, buf, 0xfffffff0u, 0, 0);			/* huge */
	recover(e);
}

/* A connection that is open when the driver resets is closed for the host. */
static void test_driver_reset(void **state)
{
	struct env *e = *state;
	uint32_t hport;
	char buf[2];
	int fd;

	post_rx(e, 8);
	fd = guest_accept(e, 1028, &hport);
	vsim_write32(&e->s, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(vsock_dev_nconns(vsock_virtio_engine(e->v)), 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	recover(e);
}

struct streamer {
	int fd;
	size_t total;
	int ok;
	pthread_t t;
};

static void *host_writer(void *arg)
{
	struct streamer *w = arg;
	uint8_t buf[8192];
	size_t done = 0;

	while (done < w->total) {
		size_t n = w->total - done < sizeof(buf) ? w->total - done : sizeof(buf);
		ssize_t r;

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)((done + i) * 13);
		r = write(w->fd, buf, n);
		if (r <= 0)
			return NULL;
		done += (size_t)r;
	}
	w->ok = 1;
	return NULL;
}

static void *host_reader(void *arg)
{
	struct streamer *w = arg;
	uint8_t buf[8192];
	size_t done = 0;
	ssize_t r;

	while (done < w->total && (r = read(w->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != (uint8_t)((done + (size_t)i) * 17))
				return NULL;
		done += (size_t)r;
	}
	w->ok = done == w->total;
	return NULL;
}

/*
 * 1 MiB each way through the real queues with Linux-shaped buffers (RX: 44-byte header
 * descriptor + 4 KiB data descriptor; TX: header + payload descriptors), the simulated guest
 * keeping to the device's credit and returning its own with CREDIT_UPDATEs.
 */
static void test_stream_both_ways(void **state)
{
	struct env *e = *state;
	const size_t total = 1u << 20;
	struct streamer w, r;
	uint32_t hport, got = 0, sent = 0, fwd_cnt = 0, told = 0;
	uint32_t dev_alloc = 0, dev_fwd = 0;
	static uint8_t data[4096], chunk[4096];
	struct vsock_hdr h;
	int fd;

	post_rx(e, 32);
	fd = guest_accept(e, 1100, &hport);
	w = (struct streamer){ .fd = fd, .total = total };
	r = (struct streamer){ .fd = fd, .total = total };
	assert_int_equal(pthread_create(&w.t, NULL, host_writer, &w), 0);
	assert_int_equal(pthread_create(&r.t, NULL, host_reader, &r), 0);
	while (got < total || sent < total) {
		/* guest -> host within the device's credit (it advertised buf_alloc on RX) */
		while (sent < total && dev_alloc && dev_alloc - (sent - dev_fwd) >= sizeof(chunk)) {
			for (size_t i = 0; i < sizeof(chunk); i++)
				chunk[i] = (uint8_t)((sent + i) * 17);
			send_pkt(e, VSOCK_OP_RW, 1100, hport, chunk, sizeof(chunk));
			sent += sizeof(chunk);
		}
		if (!recv_pkt(e, &h, data, sizeof(data)))
			fail_msg("stalled: got %u sent %u", got, sent);
		post_rx(e, 1);
		dev_alloc = h.buf_alloc;
		dev_fwd = h.fwd_cnt;
		if (h.op == VSOCK_OP_RW) {
			assert_true(h.len <= 4096);
			for (uint32_t i = 0; i < h.len; i++)
				if (data[i] != (uint8_t)((got + i) * 13))
					fail_msg("host->guest byte %u differs", got + i);
			got += h.len;
			fwd_cnt += h.len;
		} else {
			assert_true(h.op == VSOCK_OP_CREDIT_UPDATE || h.op == VSOCK_OP_CREDIT_REQUEST);
		}
		if (fwd_cnt - told >= 16384 || h.op == VSOCK_OP_CREDIT_REQUEST) {
			uint8_t hdr[VSOCK_HDR_LEN];
			struct vsock_hdr u = {
				.src_cid = 3, .dst_cid = 2, .src_port = 1100, .dst_port = hport,
				.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_CREDIT_UPDATE,
				.buf_alloc = 65536, .fwd_cnt = fwd_cnt,
			};
			struct iovec iov = { hdr, sizeof(hdr) };

			vsock_hdr_encode(&u, hdr);
			assert_true(vsim_post(&e->s, TXQ, &iov, 1, NULL, 0) >= 0);
			vsim_kick(&e->s, TXQ);
			told = fwd_cnt;
		}
	}
	pthread_join(w.t, NULL);
	pthread_join(r.t, NULL);
	assert_true(w.ok);
	assert_true(r.ok);
	close(fd);
	assert_int_equal(vsock_dev_guest_errors(vsock_virtio_engine(e->v)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_zero_huge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_driver_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_both_ways, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
