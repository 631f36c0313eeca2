/* SPDX-License-Identifier: MIT */
/* test_virtq.c - split virtqueue pop/push, and every malformed ring a guest could write. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "virtio_sim.h"

#define QSIZE 16

/* A device that does nothing by itself: the tests pop and push its queue directly. */
static const struct virtio_dev_ops qdev_ops = {
	.name = "qtest",
	.device_id = 42,
	.num_queues = 1,
	.queue_max = QSIZE,
};

struct fixture {
	struct vsim s;
	struct virtq *vq;
	struct virtq_elem elem;
};

static int setup_common(void **state, bool indirect)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	if (vsim_init(&f.s, 0) || vsim_attach(&f.s, &qdev_ops, NULL))
		return -1;
	if (vsim_start(&f.s, indirect ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0, QSIZE))
		return -1;
	f.vq = virtio_mmio_queue(f.s.t, 0);
	*state = &f;
	return 0;
}

static int setup(void **state)
{
	return setup_common(state, false);
}

static int setup_indirect(void **state)
{
	return setup_common(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vsim_fini(&f->s);
	return 0;
}

/* The queue refused a chain: -EIO now and later, NEEDS_RESET and a config interrupt. */
static void assert_guest_error(struct fixture *f)
{
	assert_int_equal(virtq_pop(f->vq, &f->elem), -EIO);
	assert_int_equal(virtq_pop(f->vq, &f->elem), -EIO);
	assert_true(vsim_read32(&f->s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_true(vsim_read32(&f->s, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(f->s.irq_level, 1);
	/* A reset and a fresh setup recover. */
	assert_int_equal(vsim_start(&f->s, 0, QSIZE), 0);
	assert_false(vsim_read32(&f->s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(virtq_pop(f->vq, &f->elem), 0);
}

static void test_empty(void **state)
{
	struct fixture *f = *state;

	assert_false(virtq_has_avail(f->vq));
	assert_int_equal(virtq_pop(f->vq, &f->elem), 0);
}

static void test_pop_push(void **state)
{
	struct fixture *f = *state;
	struct iovec out[2] = { { "hello ", 6 }, { "world", 5 } };
	size_t in[2] = { 3, 100 };
	char got[128], flat[16];
	uint32_t len;
	int head;

	head = vsim_post(&f->s, 0, out, 2, in, 2);
	assert_true(head >= 0);
	assert_true(virtq_has_avail(f->vq));
	assert_int_equal(virtq_pop(f->vq, &f->elem), 1);
	assert_int_equal(f->elem.head, head);
	assert_int_equal(f->elem.out_num, 2);
	assert_int_equal(f->elem.in_num, 2);
	assert_int_equal(f->elem.out_len, 11);
	assert_int_equal(f->elem.in_len, 103);
	assert_int_equal(virtq_iov_to_buf(f->elem.out, 2, 0, flat, sizeof(flat)), 11);
	assert_memory_equal(flat, "hello world", 11);
	assert_int_equal(virtq_iov_to_buf(f->elem.out, 2, 4, flat, 4), 4);
	assert_memory_equal(flat, "o wo", 4);
	assert_int_equal(virtq_buf_to_iov(f->elem.in, 2, 1, "ABCDE", 5), 5);
	assert_int_equal(virtq_pop(f->vq, &f->elem), 0);
	/* Written length is clamped to what the chain can hold. */
	assert_int_equal(virtq_push(f->vq, &f->elem, 6), 0);
	assert_int_equal(vsim_used_pending(&f->s, 0), 1);
	assert_int_equal(vsim_used(&f->s, 0, &len, got, sizeof(got)), head);
	assert_int_equal(len, 6);
	assert_memory_equal(got, "\0ABCDE", 6);
}

static void test_many_wraparound(void **state)
{
	struct fixture *f = *state;
	unsigned int i;

	/* 3 * 65536 / QSIZE rounds: the free-running 16-bit indexes wrap several times. */
	for (i = 0; i < 70000; i++) {
		struct iovec out = { &i, sizeof(i) };
		unsigned int v = 0;
		uint32_t len;

		assert_true(vsim_post(&f->s, 0, &out, 1, NULL, 0) >= 0);
		assert_int_equal(virtq_pop(f->vq, &f->elem), 1);
		virtq_iov_to_buf(f->elem.out, 1, 0, &v, sizeof(v));
		assert_int_equal(v, i);
		assert_int_equal(virtq_push(f->vq, &f->elem, 0), 0);
		assert_true(vsim_used(&f->s, 0, &len, NULL, 0) >= 0);
		f->s.brk = 1 << 20;	/* recycle buffer memory past the rings */
	}
}

static void test_ring_full(void **state)
{
	struct fixture *f = *state;
	size_t in = 8;
	unsigned int i;

	for (i = 0; i < QSIZE; i++)
		assert_true(vsim_post(&f->s, 0, NULL, 0, &in, 1) >= 0);
	for (i = 0; i < QSIZE; i++)
		assert_int_equal(virtq_pop(f->vq, &f->elem), 1);
	assert_int_equal(virtq_pop(f->vq, &f->elem), 0);
}

static void test_unpop(void **state)
{
	struct fixture *f = *state;
	size_t in = 8;
	int head = vsim_post(&f->s, 0, NULL, 0, &in, 1);

	assert_int_equal(virtq_pop(f->vq, &f->elem), 1);
	virtq_unpop(f->vq, &f->elem);
	assert_int_equal(virtq_pop(f->vq, &f->elem), 1);
	assert_int_equal(f->elem.head, head);
}

static void test_stale_push(void **state)
{
	struct fixture *f = *state;
	size_t in = 8;

	vsim_post(&f->s, 0, NULL, 0, &in, 1);
	assert_int_equal(virtq_pop(f->vq, &f->elem), 1);
	assert_int_equal(vsim_start(&f->s, 0, QSIZE), 0);	/* driver reset meanwhile */
	assert_int_equal(virtq_push(f->vq, &f->elem, 8), -ESTALE);
	assert_int_equal(vsim_used_pending(&f->s, 0), 0);
}

static void test_notify_suppression(void **state)
{
	struct fixture *f = *state;
	size_t in = 8;

	vsim_post(&f->s, 0, NULL, 0, &in, 1);
	vsim_post(&f->s, 0, NULL, 0, &in, 1);
	f->s.q[0].avail->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	assert_int_equal(virtq_pop(f->vq, &f->elem), 1);
	virtq_push(f->vq, &f->elem, 1);
	virtq_notify(f->vq);
	assert_int_equal(f->s.irq_raises, 0);
	f->s.q[0].avail->flags = 0;
	assert_int_equal(virtq_pop(f->vq, &f->elem), 1);
	virtq_push(f->vq, &f->elem, 1);
	virtq_notify(f->vq);
	assert_int_equal(f->s.irq_raises, 1);
	assert_int_equal(vsim_ack(&f->s), VIRTIO_MMIO_INT_VRING);
}

static void test_indirect(void **state)
{
	struct fixture *f = *state;
	struct iovec out[3] = { { "a", 1 }, { "bc", 2 }, { "def", 3 } };
	size_t in = 10;
	char got[10];
	uint32_t len;
	int head;

	f->s.use_indirect = true;
	head = vsim_post(&f->s, 0, out, 3, &in, 1);
	assert_int_equal(virtq_pop(f->vq, &f->elem), 1);
	assert_int_equal(f->elem.out_num, 3);
	assert_int_equal(f->elem.out_len, 6);
	assert_int_equal(f->elem.in_len, 10);
	virtq_buf_to_iov(f->elem.in, 1, 0, "xyz", 3);
	virtq_push(f->vq, &f->elem, 3);
	assert_int_equal(vsim_used(&f->s, 0, &len, got, sizeof(got)), head);
	assert_int_equal(len, 3);
	assert_memory_equal(got, "xyz", 3);
}

/* Post a one-descriptor writable chain and return its descriptor for corruption. */
static struct vring_desc *post_one(struct fixture *f, int *head)
{
	size_t in = 64;

	*head = vsim_post(&f->s, 0, NULL, 0, &in, 1);
	assert_true(*head >= 0);
	return vsim_desc(&f->s, 0, (uint16_t)*head);
}

static void test_bad_addr(void **state)
{
	struct fixture *f = *state;
	int head;

	post_one(f, &head)->addr = htole64(VSIM_RAM_GPA + VSIM_DEFAULT_RAM - 32); /* crosses end */
	assert_guest_error(f);
	post_one(f, &head)->addr = htole64(0x1000);				/* below RAM */
	assert_guest_error(f);
	post_one(f, &head)->addr = htole64(UINT64_MAX - 10);			/* wraps */
	assert_guest_error(f);
}

static void test_bad_len(void **state)
{
	struct fixture *f = *state;
	int head;

	post_one(f, &head)->len = 0;
	assert_guest_error(f);
	post_one(f, &head)->len = htole32(0xffffffff);
	assert_guest_error(f);
}

static void test_loop(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *d;
	int head;

	d = post_one(f, &head);
	d->flags |= htole16(VRING_DESC_F_NEXT);
	d->next = htole16((uint16_t)head);			/* points at itself */
	assert_guest_error(f);
}

static void test_long_loop(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *d;
	int head;
	uint16_t i;

	/* Every descriptor valid, chained in a ring through the whole table. */
	d = post_one(f, &head);
	for (i = 0; i < QSIZE; i++) {
		struct vring_desc *di = vsim_desc(&f->s, 0, i);

		*di = *d;
		di->flags = htole16(VRING_DESC_F_WRITE | VRING_DESC_F_NEXT);
		di->next = htole16((uint16_t)((i + 1) % QSIZE));
	}
	assert_guest_error(f);
}

static void test_next_out_of_range(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *d;
	int head;

	d = post_one(f, &head);
	d->flags |= htole16(VRING_DESC_F_NEXT);
	d->next = htole16(QSIZE);
	assert_guest_error(f);
}

static void test_write_then_read(void **state)
{
	struct fixture *f = *state;
	struct iovec out = { "x", 1 };
	size_t in = 4;
	struct vring_desc *d;
	int head;

	head = vsim_post(&f->s, 0, &out, 1, &in, 1);
	d = vsim_desc(&f->s, 0, (uint16_t)head);
	d->flags |= htole16(VRING_DESC_F_WRITE);		/* writable, then readable */
	d = vsim_desc(&f->s, 0, le16toh(d->next));
	d->flags &= htole16((uint16_t)~VRING_DESC_F_WRITE);
	assert_guest_error(f);
}

static void test_too_many_segments(void **state)
{
	struct fixture *f = *state;
	size_t in[VIRTQ_MAX_SEGS + 1];
	unsigned int i;

	for (i = 0; i < VIRTQ_MAX_SEGS + 1; i++)
		in[i] = 1;
	/* Needs more descriptors than the queue: build it in an indirect table instead. */
	vsim_start(&f->s, 1ull << VIRTIO_RING_F_INDIRECT_DESC, QSIZE);
	f->s.use_indirect = true;
	assert_true(vsim_post(&f->s, 0, NULL, 0, in, VIRTQ_MAX_SEGS) >= 0);
	assert_int_equal(virtq_pop(f->vq, &f->elem), 1);
	assert_int_equal(f->elem.in_num, VIRTQ_MAX_SEGS);
	assert_true(vsim_post(&f->s, 0, NULL, 0, in, VIRTQ_MAX_SEGS + 1) >= 0);
	f->s.use_indirect = false;
	assert_guest_error(f);
}

static void test_bad_avail_idx(void **state)
{
	struct fixture *f = *state;

	/* The driver claims more new entries than the ring holds. */
	f->s.q[0].avail->idx = htole16(QSIZE + 1);
	assert_guest_error(f);
	f->s.q[0].avail->idx = htole16(0xffff);			/* "-1": far ahead as well */
	assert_guest_error(f);
}

static void test_bad_head(void **state)
{
	struct fixture *f = *state;

	vsim_publish(&f->s, 0, QSIZE + 3);
	assert_guest_error(f);
}

static void test_indirect_not_negotiated(void **state)
{
	struct fixture *f = *state;

	f->s.use_indirect = true;	/* the fixture did not negotiate it */
	assert_true(vsim_post(&f->s, 0, NULL, 0, (size_t[]){ 8 }, 1) >= 0);
	assert_guest_error(f);
}

/* Post an indirect chain with one writable buffer; return the ring descriptor. */
static struct vring_desc *post_indirect(struct fixture *f)
{
	int head;

	f->s.use_indirect = true;
	head = vsim_post(&f->s, 0, NULL, 0, (size_t[]){ 8, 8 }, 2);
	f->s.use_indirect = false;
	assert_true(head >= 0);
	return vsim_desc(&f->s, 0, (uint16_t)head);
}

static void restart_indirect(struct fixture *f)
{
	assert_int_equal(vsim_start(&f->s, 1ull << VIRTIO_RING_F_INDIRECT_DESC, QSIZE), 0);
}

static void test_indirect_bad(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *d, *t;

	d = post_indirect(f);
	d->len = htole32(24);				/* not a multiple of 16 */
	assert_guest_error(f);
	restart_indirect(f);
	d = post_indirect(f);
	d->len = 0;
	assert_guest_error(f);
	restart_indirect(f);
	d = post_indirect(f);
	d->addr = htole64(VSIM_RAM_GPA + VSIM_DEFAULT_RAM - 16);	/* table leaves RAM */
	assert_guest_error(f);
	restart_indirect(f);
	d = post_indirect(f);
	d->flags |= htole16(VRING_DESC_F_NEXT);		/* INDIRECT | NEXT */
	assert_guest_error(f);
	restart_indirect(f);
	d = post_indirect(f);
	t = vsim_ptr(&f->s, le64toh(d->addr));
	t[1] = *d;					/* nested indirect */
	assert_guest_error(f);
	restart_indirect(f);
	d = post_indirect(f);
	t = vsim_ptr(&f->s, le64toh(d->addr));
	t[1].flags |= htole16(VRING_DESC_F_NEXT);	/* loop inside the table */
	t[1].next = 0;
	assert_guest_error(f);
	restart_indirect(f);
	d = post_indirect(f);
	t = vsim_ptr(&f->s, le64toh(d->addr));
	t[0].next = htole16(2);				/* past the table's 2 entries */
	assert_guest_error(f);
}

static void test_not_ready(void **state)
{
	struct fixture *f = *state;
	size_t in = 8;

	vsim_post(&f->s, 0, NULL, 0, &in, 1);
	vsim_write32(&f->s, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(virtq_pop(f->vq, &f->elem), 0);
	assert_false(virtq_has_avail(f->vq));
	virtq_notify(f->vq);
	assert_int_equal(f->s.irq_raises, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TI(fn) cmocka_unit_test_setup_teardown(fn, setup_indirect, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_empty),
		T(test_pop_push),
		T(test_many_wraparound),
		T(test_ring_full),
		T(test_unpop),
		T(test_stale_push),
		T(test_notify_suppression),
		TI(test_indirect),
		T(test_bad_addr),
		T(test_bad_len),
		T(test_loop),
		T(test_long_loop),
		T(test_next_out_of_range),
		T(test_write_then_read),
		T(test_too_many_segments),
		T(test_bad_avail_idx),
		T(test_bad_head),
		T(test_indirect_not_negotiated),
		TI(test_indirect_bad),
		T(test_not_ready),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
