/* SPDX-License-Identifier: MIT */
/* test_virtio_rng.c - virtio-rng against a simulated guest driver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/virtio/rng.h"
#include "virtio_sim.h"

struct fixture {
	struct vsim s;
	struct virtio_rng *rng;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	f.rng = virtio_rng_new();
	if (!f.rng || vsim_init(&f.s, 0) || vsim_attach(&f.s, &virtio_rng_ops, f.rng))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vsim_fini(&f->s);
	virtio_rng_free(f->rng);
	return 0;
}

static void test_identity(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	assert_int_equal(vsim_start(&f->s, 0, 0), 0);
}

static void test_fills_buffers(void **state)
{
	struct fixture *f = *state;
	static const unsigned char zero[64];
	unsigned char a[64], b[64];
	size_t in[2] = { 16, 48 };
	uint32_t len;
	int h1, h2;

	assert_int_equal(vsim_start(&f->s, 0, 0), 0);
	assert_int_equal(virtio_rng_bytes(f->rng), 0);
	h1 = vsim_post(&f->s, 0, NULL, 0, in, 2);
	h2 = vsim_post(&f->s, 0, NULL, 0, &in[1], 1);
	vsim_kick(&f->s, 0);
	assert_int_equal(f->s.irq_raises, 1);
	assert_int_equal(vsim_used(&f->s, 0, &len, a, sizeof(a)), h1);
	assert_int_equal(len, 64);
	assert_int_equal(vsim_used(&f->s, 0, &len, b, sizeof(b)), h2);
	assert_int_equal(len, 48);
	assert_int_equal(virtio_rng_bytes(f->rng), 64 + 48);
	assert_int_equal(virtio_rng_bytes(NULL), 0);
	/* 2^-384 chance of a false failure. */
	assert_memory_not_equal(a + 16, zero, 48);
	assert_memory_not_equal(a + 16, b, 48);
}

static void test_large_request_capped(void **state)
{
	struct fixture *f = *state;
	size_t in = 100000;
	uint32_t len;

	assert_int_equal(vsim_start(&f->s, 0, 0), 0);
	vsim_post(&f->s, 0, NULL, 0, &in, 1);
	vsim_kick(&f->s, 0);
	assert_true(vsim_used(&f->s, 0, &len, NULL, 0) >= 0);
	assert_int_equal(len, 4096);
	assert_int_equal(virtio_rng_bytes(f->rng), 4096);
}

static void test_readonly_buffer(void **state)
{
	struct fixture *f = *state;
	struct iovec out = { "abc", 3 };
	uint32_t len = 99;

	assert_int_equal(vsim_start(&f->s, 0, 0), 0);
	vsim_post(&f->s, 0, &out, 1, NULL, 0);
	vsim_kick(&f->s, 0);
	assert_true(vsim_used(&f->s, 0, &len, NULL, 0) >= 0);
	assert_int_equal(len, 0);
	assert_int_equal(virtio_rng_bytes(f->rng), 0);
}

static void test_bad_chain_no_crash(void **state)
{
	struct fixture *f = *state;
	size_t in = 8;
	int head;

	assert_int_equal(vsim_start(&f->s, 0, 0), 0);
	head = vsim_post(&f->s, 0, NULL, 0, &in, 1);
	vsim_desc(&f->s, 0, (uint16_t)head)->addr = 0;
	vsim_kick(&f->s, 0);
	assert_int_equal(vsim_used_pending(&f->s, 0), 0);
	assert_true(vsim_read32(&f->s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_identity),
		T(test_fills_buffers),
		T(test_large_request_capped),
		T(test_readonly_buffer),
		T(test_bad_chain_no_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
