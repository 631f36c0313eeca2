/* SPDX-License-Identifier: MIT */
/* test_virtio_net.c - virtio-net frames in both directions against a simulated guest driver
 * and a recording back end: header handling, full RX ring, oversized frames, bad TX chains. */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <linux/virtio_net.h>

#include "devices/virtio/net.h"
#include "virtio_sim.h"

#define RXBUF (VIRTIO_NET_HDR_LEN + 1514)

/* Back end that records the last frame it was given. */
struct rec {
	unsigned int frames;
	int rc;
	size_t len;
	unsigned char last[VIRTIO_NET_MAX_FRAME];
};

static int rec_send(void *be, const void *frame, size_t len)
{
	struct rec *r = be;

	if (r->rc)
		return r->rc;
	r->frames++;
	r->len = len;
	memcpy(r->last, frame, len);
	return 0;
}

static const struct virtio_net_backend_ops rec_ops = { .send = rec_send };

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

struct fixture {
	struct vsim s;
	struct virtio_net *n;
	struct rec be;
	struct virtio_net_stats st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->n = virtio_net_new(mac, &rec_ops, &f->be);
	if (!f->n || vsim_init(&f->s, 8u << 20) || vsim_attach(&f->s, &virtio_net_ops, f->n))
		return -1;
	if (vsim_start(&f->s, (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS), 16))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vsim_fini(&f->s);
	virtio_net_free(f->n);
	free(f);
	return 0;
}

static void fill_frame(unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + seed);
}

static void post_rx(struct fixture *f, size_t len)
{
	assert_true(vsim_post(&f->s, VIRTIO_NET_RXQ, NULL, 0, &len, 1) >= 0);
}

static void test_identity_and_config(void **state)
{
	struct fixture *f = *state;
	uint8_t got[6];
	uint16_t st;
	uint32_t feat;
	unsigned int i;

	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	for (i = 0; i < 6; i++)
		virtio_mmio_read(f->s.t, VIRTIO_MMIO_CONFIG + i, &got[i], 1);
	assert_memory_equal(got, mac, 6);
	virtio_mmio_read(f->s.t, VIRTIO_MMIO_CONFIG + 6, &st, 2);
	assert_int_equal(le16toh(st), VIRTIO_NET_S_LINK_UP);
	/* No offloads are offered: libslirp could not honour them. */
	vsim_write32(&f->s, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	feat = vsim_read32(&f->s, VIRTIO_MMIO_DEVICE_FEATURES);
	assert_true(feat & (1u << VIRTIO_NET_F_MAC));
	assert_false(feat & ((1u << VIRTIO_NET_F_CSUM) | (1u << VIRTIO_NET_F_GUEST_CSUM) |
			     (1u << VIRTIO_NET_F_HOST_TSO4) | (1u << VIRTIO_NET_F_GUEST_TSO4) |
			     (1u << VIRTIO_NET_F_MRG_RXBUF)));
	/* A driver asking for checksum offload is refused at FEATURES_OK. */
	assert_false(vsim_negotiate(&f->s, 1ull << VIRTIO_NET_F_CSUM, false) &
		     VIRTIO_CONFIG_S_FEATURES_OK);
}

static void test_tx(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr_v1 hdr = { 0 };
	unsigned char frame[1514];
	struct iovec out[3];
	uint32_t len;

	fill_frame(frame, sizeof(frame), 1);
	/* Header in its own segment, frame split in two. */
	out[0] = (struct iovec){ &hdr, sizeof(hdr) };
	out[1] = (struct iovec){ frame, 100 };
	out[2] = (struct iovec){ frame + 100, sizeof(frame) - 100 };
	assert_true(vsim_post(&f->s, VIRTIO_NET_TXQ, out, 3, NULL, 0) >= 0);
	vsim_kick(&f->s, VIRTIO_NET_TXQ);
	assert_int_equal(f->be.frames, 1);
	assert_int_equal(f->be.len, sizeof(frame));
	assert_memory_equal(f->be.last, frame, sizeof(frame));
	assert_true(vsim_used(&f->s, VIRTIO_NET_TXQ, &len, NULL, 0) >= 0);
	assert_int_equal(len, 0);
	assert_int_equal(f->s.irq_level, 1);
	virtio_net_get_stats(f->n, &f->st);
	assert_true(f->st.tx_frames == 1);
}

static void test_tx_header_and_frame_in_one_segment(void **state)
{
	struct fixture *f = *state;
	unsigned char buf[VIRTIO_NET_HDR_LEN + 60] = { 0 };
	struct iovec out = { buf, sizeof(buf) };

	fill_frame(buf + VIRTIO_NET_HDR_LEN, 60, 9);
	vsim_post(&f->s, VIRTIO_NET_TXQ, &out, 1, NULL, 0);
	vsim_kick(&f->s, VIRTIO_NET_TXQ);
	assert_int_equal(f->be.len, 60);
	assert_memory_equal(f->be.last, buf + VIRTIO_NET_HDR_LEN, 60);
}

static void test_tx_bad(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr_v1 hdr = { 0 };
	unsigned char frame[64] = { 0 };
	struct iovec out[2] = { { &hdr, sizeof(hdr) }, { frame, sizeof(frame) } };
	struct iovec shorthdr = { &hdr, 8 };
	unsigned char *big = calloc(1, VIRTIO_NET_MAX_FRAME + 1);
	struct iovec oversize[2] = { { &hdr, sizeof(hdr) }, { big, VIRTIO_NET_MAX_FRAME + 1 } };

	assert_non_null(big);
	vsim_post(&f->s, VIRTIO_NET_TXQ, &shorthdr, 1, NULL, 0);	/* short header */
	vsim_post(&f->s, VIRTIO_NET_TXQ, oversize, 2, NULL, 0);	/* too big */
	hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;			/* not offered */
	vsim_post(&f->s, VIRTIO_NET_TXQ, out, 2, NULL, 0);
	vsim_kick(&f->s, VIRTIO_NET_TXQ);
	hdr.gso_type = 0;
	hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;			/* not offered */
	vsim_post(&f->s, VIRTIO_NET_TXQ, out, 2, NULL, 0);
	hdr.flags = 0;
	f->be.rc = -ENOBUFS;						/* back end full */
	vsim_post(&f->s, VIRTIO_NET_TXQ, out, 2, NULL, 0);
	vsim_kick(&f->s, VIRTIO_NET_TXQ);
	free(big);
	assert_int_equal(f->be.frames, 0);
	virtio_net_get_stats(f->n, &f->st);
	assert_true(f->st.tx_errors == 4);
	assert_true(f->st.tx_dropped == 1);
	/* Every chain is returned to the driver all the same. */
	assert_int_equal(vsim_used_pending(&f->s, VIRTIO_NET_TXQ), 5);
	assert_false(vsim_read32(&f->s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_rx(void **state)
{
	struct fixture *f = *state;
	unsigned char frame[1514], got[RXBUF];
	struct virtio_net_hdr_v1 hdr;
	uint32_t len;

	fill_frame(frame, sizeof(frame), 3);
	post_rx(f, RXBUF);
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), 0);
	assert_int_equal(f->s.irq_level, 1);
	assert_true(vsim_used(&f->s, VIRTIO_NET_RXQ, &len, got, sizeof(got)) >= 0);
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + sizeof(frame));
	memcpy(&hdr, got, sizeof(hdr));
	assert_int_equal(hdr.flags, 0);
	assert_int_equal(hdr.gso_type, 0);
	assert_int_equal(le16toh(hdr.num_buffers), 1);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
	virtio_net_get_stats(f->n, &f->st);
	assert_true(f->st.rx_frames == 1);
}

static void test_rx_scattered_buffer(void **state)
{
	struct fixture *f = *state;
	size_t segs[3] = { 5, 10, 200 };	/* the header itself is split */
	unsigned char frame[150], got[215];
	uint32_t len;

	fill_frame(frame, sizeof(frame), 5);
	vsim_post(&f->s, VIRTIO_NET_RXQ, NULL, 0, segs, 3);
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), 0);
	assert_true(vsim_used(&f->s, VIRTIO_NET_RXQ, &len, got, sizeof(got)) >= 0);
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + sizeof(frame));
	assert_int_equal(got[10], 1);		/* num_buffers, little endian */
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
}

static void test_rx_ring_full(void **state)
{
	struct fixture *f = *state;
	unsigned char frame[60] = { 0 };

	/* No buffer at all, then two buffers for three frames. */
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), -EAGAIN);
	post_rx(f, RXBUF);
	post_rx(f, RXBUF);
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), 0);
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), 0);
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), -EAGAIN);
	virtio_net_get_stats(f->n, &f->st);
	assert_true(f->st.rx_frames == 2);
	assert_true(f->st.rx_no_buffer == 2);
	assert_int_equal(vsim_used_pending(&f->s, VIRTIO_NET_RXQ), 2);
	/* After the driver refills, delivery resumes. */
	post_rx(f, RXBUF);
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), 0);
}

static void test_rx_oversized(void **state)
{
	struct fixture *f = *state;
	unsigned char *big = calloc(1, VIRTIO_NET_MAX_FRAME + 1);
	unsigned char small[100];
	uint32_t len;

	assert_non_null(big);
	post_rx(f, RXBUF);
	/* Larger than any virtio-net frame. */
	assert_int_equal(virtio_net_receive(f->n, big, VIRTIO_NET_MAX_FRAME + 1), -EMSGSIZE);
	/* Larger than the posted buffer: dropped, not truncated, and the buffer is kept. */
	assert_int_equal(virtio_net_receive(f->n, big, RXBUF - VIRTIO_NET_HDR_LEN + 1), -EMSGSIZE);
	assert_int_equal(vsim_used_pending(&f->s, VIRTIO_NET_RXQ), 0);
	/* Exactly fitting is fine. */
	fill_frame(small, sizeof(small), 7);
	assert_int_equal(virtio_net_receive(f->n, big, RXBUF - VIRTIO_NET_HDR_LEN), 0);
	post_rx(f, VIRTIO_NET_HDR_LEN + sizeof(small));
	assert_int_equal(virtio_net_receive(f->n, small, sizeof(small)), 0);
	assert_true(vsim_used(&f->s, VIRTIO_NET_RXQ, &len, NULL, 0) >= 0);
	assert_int_equal(len, RXBUF);
	assert_true(vsim_used(&f->s, VIRTIO_NET_RXQ, &len, NULL, 0) >= 0);
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + sizeof(small));
	virtio_net_get_stats(f->n, &f->st);
	assert_true(f->st.rx_oversize == 2);
	assert_true(f->st.rx_frames == 2);
	free(big);
}

static void test_rx_before_driver_ok_and_after_reset(void **state)
{
	struct fixture *f = *state;
	unsigned char frame[60] = { 0 };

	vsim_write32(&f->s, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), -EAGAIN);
	assert_true(vsim_negotiate(&f->s, 0, false) & VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(vsim_setup_queue(&f->s, 0, 16), 1);
	assert_int_equal(vsim_setup_queue(&f->s, 1, 16), 1);
	post_rx(f, RXBUF);
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), -EAGAIN);
	vsim_driver_ok(&f->s);
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), 0);
}

static void test_rx_broken_ring(void **state)
{
	struct fixture *f = *state;
	unsigned char frame[60] = { 0 };
	size_t len = RXBUF;
	int head = vsim_post(&f->s, VIRTIO_NET_RXQ, NULL, 0, &len, 1);

	vsim_desc(&f->s, VIRTIO_NET_RXQ, (uint16_t)head)->addr = htole64(8);
	assert_int_equal(virtio_net_receive(f->n, frame, sizeof(frame)), -EIO);
	assert_true(vsim_read32(&f->s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* Back end thread delivering frames while the "guest" keeps refilling and draining. */
struct rx_thread {
	struct virtio_net *n;
	unsigned int sent;
	unsigned int ok;
};

static void *rx_thread_fn(void *arg)
{
	struct rx_thread *rt = arg;
	unsigned char frame[64];
	unsigned int i;

	for (i = 0; i < 2000; i++) {
		fill_frame(frame, sizeof(frame), i);
		if (virtio_net_receive(rt->n, frame, sizeof(frame)) == 0)
			rt->ok++;
		rt->sent++;
	}
	return NULL;
}

static void test_rx_concurrent(void **state)
{
	struct fixture *f = *state;
	struct rx_thread rt = { f->n, 0, 0 };
	unsigned int used = 0, i;
	pthread_t th;

	for (i = 0; i < 16; i++)
		post_rx(f, 128);
	assert_int_equal(pthread_create(&th, NULL, rx_thread_fn, &rt), 0);
	for (i = 0; i < 20000; i++) {
		uint32_t len;

		while (vsim_used(&f->s, VIRTIO_NET_RXQ, &len, NULL, 0) >= 0) {
			assert_int_equal(len, VIRTIO_NET_HDR_LEN + 64);
			used++;
			post_rx(f, 128);
		}
	}
	pthread_join(th, NULL);
	while (vsim_used(&f->s, VIRTIO_NET_RXQ, NULL, NULL, 0) >= 0)
		used++;
	virtio_net_get_stats(f->n, &f->st);
	assert_int_equal(used, rt.ok);
	assert_true(f->st.rx_frames + f->st.rx_no_buffer == rt.sent);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_identity_and_config),
		T(test_tx),
		T(test_tx_header_and_frame_in_one_segment),
		T(test_tx_bad),
		T(test_rx),
		T(test_rx_scattered_buffer),
		T(test_rx_ring_full),
		T(test_rx_oversized),
		T(test_rx_before_driver_ok_and_after_reset),
		T(test_rx_broken_ring),
		T(test_rx_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
