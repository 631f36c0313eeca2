/* SPDX-License-Identifier: MIT */
/* test_virtio_mmio.c - virtio-mmio register semantics, driven like the Linux driver would. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "virtio_sim.h"

#define TDEV_FEATURE	(1ull << 5)
#define TDEV_FEATURE_HI	(1ull << 40)

/* A device that records what the transport does to it. */
struct tdev {
	unsigned char config[8];
	unsigned int resets, activations, kicks, last_kick;
	uint64_t features;
	struct virtq *vqs;
	int activate_rc;
};

static void tdev_config_read(void *dev, uint32_t off, void *data, unsigned int len)
{
	memcpy(data, ((struct tdev *)dev)->config + off, len);
}

static void tdev_config_write(void *dev, uint32_t off, const void *data, unsigned int len)
{
	memcpy(((struct tdev *)dev)->config + off, data, len);
}

static void tdev_notify(void *dev, struct virtq *vq, unsigned int qidx)
{
	struct tdev *d = dev;

	(void)vq;
	d->kicks++;
	d->last_kick = qidx;
}

static int tdev_activate(void *dev, struct virtq *vqs, uint64_t features)
{
	struct tdev *d = dev;

	d->activations++;
	d->vqs = vqs;
	d->features = features;
	return d->activate_rc;
}

static void tdev_reset(void *dev)
{
	((struct tdev *)dev)->resets++;
}

static const struct virtio_dev_ops tdev_ops = {
	.name = "test",
	.device_id = 42,
	.features = TDEV_FEATURE | TDEV_FEATURE_HI,
	.num_queues = 2,
	.queue_max = 64,
	.config_size = 6,
	.config_read = tdev_config_read,
	.config_write = tdev_config_write,
	.queue_notify = tdev_notify,
	.activate = tdev_activate,
	.reset = tdev_reset,
};

struct fixture {
	struct vsim s;
	struct tdev d;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	memcpy(f.d.config, "\x01\x02\x03\x04\x05\x06", 6);
	if (vsim_init(&f.s, 0) || vsim_attach(&f.s, &tdev_ops, &f.d))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vsim_fini(&f->s);
	return 0;
}

static void test_identity(void **state)
{
	struct fixture *f = *state;
	uint16_t v16 = 0xffff;

	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_DEVICE_ID), 42);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	/* Registers need 32-bit aligned accesses; anything else reads as zero. */
	virtio_mmio_read(f->s.t, VIRTIO_MMIO_MAGIC_VALUE, &v16, 2);
	assert_int_equal(v16, 0);
	assert_int_equal(vsim_read32(&f->s, 0x2), 0);
	assert_int_equal(vsim_read32(&f->s, 0xffc), 0);
	assert_int_equal(vsim_read32(&f->s, 0x1000000), 0);
}

static void test_device_features(void **state)
{
	struct fixture *f = *state;
	uint32_t lo, hi;

	vsim_write32(&f->s, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = vsim_read32(&f->s, VIRTIO_MMIO_DEVICE_FEATURES);
	vsim_write32(&f->s, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = vsim_read32(&f->s, VIRTIO_MMIO_DEVICE_FEATURES);
	assert_int_equal(lo, (uint32_t)(TDEV_FEATURE | (1u << VIRTIO_RING_F_INDIRECT_DESC)));
	assert_int_equal(hi, (uint32_t)(TDEV_FEATURE_HI >> 32) | (1u << (VIRTIO_F_VERSION_1 - 32)));
	vsim_write32(&f->s, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

static void test_feature_negotiation(void **state)
{
	struct fixture *f = *state;

	/* A feature we did not offer: FEATURES_OK does not stick. */
	assert_false(vsim_negotiate(&f->s, TDEV_FEATURE | (1ull << 7), false) &
		     VIRTIO_CONFIG_S_FEATURES_OK);
	/* Legacy driver (no VERSION_1): refused. */
	assert_false(vsim_negotiate(&f->s, TDEV_FEATURE, true) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* DRIVER_OK without FEATURES_OK: refused and the device needs a reset. */
	assert_false(vsim_driver_ok(&f->s) & VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(vsim_read32(&f->s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(f->d.activations, 0);
	/* A good set is accepted; the reset cleared NEEDS_RESET. */
	assert_true(vsim_negotiate(&f->s, TDEV_FEATURE | TDEV_FEATURE_HI, false) &
		    VIRTIO_CONFIG_S_FEATURES_OK);
	assert_false(vsim_read32(&f->s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* Feature writes after FEATURES_OK are ignored. */
	vsim_write32(&f->s, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vsim_write32(&f->s, VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffff);
	assert_int_equal(vsim_setup_queue(&f->s, 0, 0), 1);
	assert_int_equal(vsim_setup_queue(&f->s, 1, 16), 1);
	assert_true(vsim_driver_ok(&f->s) & VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(f->d.activations, 1);
	assert_true(f->d.features == (TDEV_FEATURE | TDEV_FEATURE_HI | (1ull << VIRTIO_F_VERSION_1)));
	assert_ptr_equal(f->d.vqs, virtio_mmio_queue(f->s.t, 0));
}

static void test_queue_setup(void **state)
{
	struct fixture *f = *state;
	struct virtq *vq;

	vsim_negotiate(&f->s, 0, false);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_SEL, 2);		/* no such queue */
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_READY, 1);		/* ignored */
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_QUEUE_READY), 0);
	/* Too big and not a power of two are refused. */
	assert_int_equal(vsim_setup_queue(&f->s, 0, 128), 0);
	assert_true(vsim_read32(&f->s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	vsim_negotiate(&f->s, 0, false);
	assert_int_equal(vsim_setup_queue(&f->s, 0, 24), 0);
	vsim_negotiate(&f->s, 0, false);
	/* Rings outside guest RAM or misaligned are refused. */
	assert_int_equal(vsim_setup_queue(&f->s, 0, 16), 1);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_QUEUE_READY), 0);
	vq = virtio_mmio_queue(f->s.t, 0);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_NUM, 16);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);	/* below RAM */
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)f->s.q[0].avail_gpa);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)f->s.q[0].used_gpa);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_QUEUE_READY), 0);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)f->s.q[0].desc_gpa + 8);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_QUEUE_READY), 0);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)f->s.q[0].desc_gpa);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_DESC_HIGH, 1);		/* 4 GiB up */
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_QUEUE_READY), 0);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(vq->size, 16);
	assert_true(vq->desc_gpa == f->s.q[0].desc_gpa);
	/* Configuration is frozen while the queue is live. */
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_NUM, 32);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_DESC_LOW, 0);
	assert_int_equal(vq->size, 16);
	assert_true(vq->desc_gpa == f->s.q[0].desc_gpa);
}

static void test_status_and_reset(void **state)
{
	struct fixture *f = *state;
	uint32_t st;

	assert_int_equal(vsim_start(&f->s, TDEV_FEATURE, 16), 0);
	st = vsim_read32(&f->s, VIRTIO_MMIO_STATUS);
	/* Clearing bits other than by reset is ignored. */
	vsim_write32(&f->s, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_STATUS), st);
	/* Kicks reach the device only after DRIVER_OK, and only for existing queues. */
	vsim_kick(&f->s, 1);
	vsim_kick(&f->s, 7);
	assert_int_equal(f->d.kicks, 1);
	assert_int_equal(f->d.last_kick, 1);
	vsim_write32(&f->s, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->d.resets, 2);	/* vsim_start's reset and this one */
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_STATUS), 0);
	vsim_write32(&f->s, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_false(virtio_mmio_queue(f->s.t, 1)->ready);
	vsim_kick(&f->s, 1);
	assert_int_equal(f->d.kicks, 1);
	/* Activation failure sets NEEDS_RESET. */
	f->d.activate_rc = -ENOMEM;
	assert_int_equal(vsim_start(&f->s, 0, 16), 0);
	assert_true(vsim_read32(&f->s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_true(vsim_read32(&f->s, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
}

static void test_interrupts(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vsim_start(&f->s, 0, 16), 0);
	assert_int_equal(f->s.irq_level, 0);
	virtio_mmio_notify_used(f->s.t, 0);
	virtio_mmio_notify_used(f->s.t, 1);
	assert_int_equal(f->s.irq_level, 1);
	assert_int_equal(f->s.irq_raises, 1);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	vsim_write32(&f->s, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);	/* not set */
	assert_int_equal(f->s.irq_level, 1);
	assert_int_equal(vsim_ack(&f->s), VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->s.irq_level, 0);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	virtio_mmio_notify_used(f->s.t, 0);
	assert_int_equal(f->s.irq_raises, 2);
	/* Reset drops the line. */
	vsim_write32(&f->s, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->s.irq_level, 0);
}

static int other_level = -1;

static void other_irq(void *opaque, int level)
{
	(void)opaque;
	other_level = level;
}

static void test_late_irq_and_access(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4];
	uint32_t v = 0;

	virtio_mmio_access(f->s.t, VIRTIO_MMIO_DEVICE_ID, buf, 4, 0);
	memcpy(&v, buf, 4);
	assert_int_equal(v, 42);
	virtio_mmio_set_irq(f->s.t, other_irq, NULL);
	virtio_mmio_notify_used(f->s.t, 0);
	assert_int_equal(other_level, 1);
	assert_int_equal(f->s.irq_level, 0);
	v = VIRTIO_MMIO_INT_VRING;
	memcpy(buf, &v, 4);
	virtio_mmio_access(f->s.t, VIRTIO_MMIO_INTERRUPT_ACK, buf, 4, 1);
	assert_int_equal(other_level, 0);
}

static void test_config_space(void **state)
{
	struct fixture *f = *state;
	uint32_t v32 = 0;
	uint16_t v16 = 0;
	uint64_t v64 = 1;
	uint8_t v8 = 0;

	virtio_mmio_read(f->s.t, VIRTIO_MMIO_CONFIG, &v32, 4);
	assert_int_equal(v32, 0x04030201);
	virtio_mmio_read(f->s.t, VIRTIO_MMIO_CONFIG + 4, &v16, 2);
	assert_int_equal(v16, 0x0605);
	virtio_mmio_read(f->s.t, VIRTIO_MMIO_CONFIG + 5, &v8, 1);
	assert_int_equal(v8, 6);
	/* Out of bounds (config_size is 6) reads zero and writes nothing. */
	virtio_mmio_read(f->s.t, VIRTIO_MMIO_CONFIG + 4, &v32, 4);
	assert_int_equal(v32, 0);
	virtio_mmio_read(f->s.t, VIRTIO_MMIO_CONFIG, &v64, 8);
	assert_true(v64 == 0);
	virtio_mmio_read(f->s.t, VIRTIO_MMIO_CONFIG + 0xe00, &v8, 1);
	assert_int_equal(v8, 0);
	v16 = 0xaabb;
	virtio_mmio_write(f->s.t, VIRTIO_MMIO_CONFIG + 5, &v16, 2);
	assert_int_equal(f->d.config[5], 6);
	virtio_mmio_write(f->s.t, VIRTIO_MMIO_CONFIG + 4, &v16, 2);
	assert_int_equal(f->d.config[4], 0xbb);
	assert_int_equal(vsim_read32(&f->s, VIRTIO_MMIO_CONFIG_GENERATION), 0);
}

static void test_cmdline(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(virtio_mmio_cmdline(buf, sizeof(buf), 0xd0001000, 6), 34);
	assert_string_equal(buf, "virtio_mmio.device=4K@0xd0001000:6");
	assert_int_equal(virtio_mmio_cmdline(buf, 34, 0xd0001000, 6), -ENOSPC);
}

static void test_bad_ops(void **state)
{
	struct virtio_dev_ops ops = tdev_ops;
	struct mvm_gmem gm;

	(void)state;
	mvm_gmem_init(&gm);
	ops.queue_max = 100;
	assert_null(virtio_mmio_new(&ops, NULL, &gm, NULL, NULL));
	ops.queue_max = 64;
	ops.num_queues = VIRTIO_MAX_QUEUES + 1;
	assert_null(virtio_mmio_new(&ops, NULL, &gm, NULL, NULL));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_identity),
		T(test_device_features),
		T(test_feature_negotiation),
		T(test_queue_setup),
		T(test_status_and_reset),
		T(test_interrupts),
		T(test_config_space),
		T(test_late_irq_and_access),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_bad_ops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
