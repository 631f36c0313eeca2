/* SPDX-License-Identifier: MIT */
/**
 * DOC: Theory of operation - the virtio-mmio transport
 *
 * One &struct virtio_mmio_dev is one 4 KiB MMIO window (virtio 1.x section 4.2, register
 * layout version 2; the legacy version 1 layout is not implemented, and VIRTIO_F_VERSION_1 is
 * required).  The backend routes guest loads and stores in the window to virtio_mmio_read() and
 * virtio_mmio_write(); registers are 32-bit, the device config space at 0x100 is forwarded to
 * the device's config_read/config_write ops after a bounds check.
 *
 * Status machine: the driver sets ACKNOWLEDGE, DRIVER, writes its features, sets FEATURES_OK
 * (we clear it again if it asked for a feature we did not offer or left out VERSION_1), sets up
 * the queues (QueueSel, QueueNum, ring addresses, QueueReady=1, which validates the rings) and
 * finally sets DRIVER_OK, which activates the device with its queues.  Writing 0 resets: the
 * device is told first (it must stop using its queues), then every queue is reset.  A guest
 * error found in a queue sets DEVICE_NEEDS_RESET and raises a config-change interrupt.
 *
 * Interrupts: InterruptStatus bits are set by virtio_mmio_notify_used() (any thread) and by
 * guest errors; set_irq(1) is called when it becomes non-zero, set_irq(0) when the driver's
 * InterruptACK clears it, so the backend can drive a level-triggered line.
 *
 * Locking: @reg_lock serialises register accesses (vCPUs may race) and is held while device
 * ops run; @irq_lock (innermost) covers @isr, @needs_reset and set_irq() calls, so device
 * threads that hold their own locks can raise interrupts without taking @reg_lock.  Each
 * queue has its own lock (queue.c), taken after @reg_lock and before @irq_lock.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "runtime/error.h"

#define VIRTIO_MMIO_MAGIC	0x74726976U	/* "virt" */

/* Transport features we always offer on top of the device's. */
#define VIRTIO_MMIO_TRANSPORT_FEATURES \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC))

/**
 * struct virtio_mmio_dev - one virtio-mmio transport instance
 * @reg_lock:	serialises register accesses and device ops
 * @irq_lock:	protects @isr, @needs_reset and the interrupt line
 * @ops:	the device
 * @dev:	the device's context
 * @mem:	guest memory
 * @set_irq:	interrupt line callback
 * @irq_opaque:	its argument
 * @status:	device status as written by the driver (without NEEDS_RESET); written with
 *		both locks held, so either lock suffices to read it
 * @dev_feat_sel: DeviceFeaturesSel
 * @drv_feat_sel: DriverFeaturesSel
 * @driver_features: features written by the driver
 * @queue_sel:	QueueSel
 * @config_gen:	ConfigGeneration
 * @isr:	InterruptStatus (VIRTIO_MMIO_INT_*)
 * @needs_reset: DEVICE_NEEDS_RESET is set
 * @vqs:	the device's queues (ops->num_queues used)
 */
struct virtio_mmio_dev {
	pthread_mutex_t reg_lock;
	pthread_mutex_t irq_lock;
	const struct virtio_dev_ops *ops;
	void *dev;
	struct mvm_gmem *mem;
	void (*set_irq)(void *opaque, int level);
	void *irq_opaque;
	uint32_t status;
	uint32_t dev_feat_sel;
	uint32_t drv_feat_sel;
	uint64_t driver_features;
	uint32_t queue_sel;
	uint32_t config_gen;
	uint32_t isr;
	bool needs_reset;
	struct virtq vqs[VIRTIO_MAX_QUEUES];
};

static uint64_t virtio_mmio_offered(const struct virtio_mmio_dev *t)
{
	return t->ops->features | VIRTIO_MMIO_TRANSPORT_FEATURES;
}

/* Set bits in InterruptStatus and raise the line on a 0 -> non-zero edge; irq_lock held. */
static void virtio_mmio_raise_locked(struct virtio_mmio_dev *t, uint32_t bits)
{
	uint32_t old = t->isr;

	t->isr |= bits;
	if (!old && t->isr && t->set_irq)
		t->set_irq(t->irq_opaque, 1);
}

void virtio_mmio_notify_used(struct virtio_mmio_dev *t, unsigned int qidx)
{
	(void)qidx;
	pthread_mutex_lock(&t->irq_lock);
	virtio_mmio_raise_locked(t, VIRTIO_MMIO_INT_VRING);
	pthread_mutex_unlock(&t->irq_lock);
}

/* virtq signal callback. */
static void virtio_mmio_vq_signal(void *opaque, unsigned int index)
{
	virtio_mmio_notify_used(opaque, index);
}

/**
 * virtio_mmio_guest_error() - a queue found a guest error: set DEVICE_NEEDS_RESET
 * @opaque:	the transport
 * @index:	queue index, or VIRTIO_MAX_QUEUES for a register-level error
 * @why:	what was wrong
 *
 * Runs on whichever thread popped (vCPU or device thread), so it only takes @irq_lock.
 */
static void virtio_mmio_guest_error(void *opaque, unsigned int index, const char *why)
{
	struct virtio_mmio_dev *t = opaque;

	if (index < VIRTIO_MAX_QUEUES)
		fprintf(stderr, "microvm: virtio-%s: queue %u: guest error: %s; device needs reset\n",
			t->ops->name, index, why);
	else
		fprintf(stderr, "microvm: virtio-%s: %s; device needs reset\n", t->ops->name, why);
	pthread_mutex_lock(&t->irq_lock);
	if (!t->needs_reset) {
		t->needs_reset = true;
		virtio_mmio_raise_locked(t, VIRTIO_MMIO_INT_CONFIG);
	}
	pthread_mutex_unlock(&t->irq_lock);
}

struct virtio_mmio_dev *virtio_mmio_new(const struct virtio_dev_ops *ops, void *dev,
					struct mvm_gmem *mem,
					void (*set_irq)(void *opaque, int level),
					void *irq_opaque)
{
	struct virtio_mmio_dev *t;
	unsigned int i;
	int rc;

	if (!ops || !mem || !ops->num_queues || ops->num_queues > VIRTIO_MAX_QUEUES) {
		mvm_set_error(-EINVAL, "virtio-mmio: bad device description");
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		mvm_set_error(-ENOMEM, "virtio-mmio: out of memory");
		return NULL;
	}
	t->ops = ops;
	t->dev = dev;
	t->mem = mem;
	t->set_irq = set_irq;
	t->irq_opaque = irq_opaque;
	for (i = 0; i < ops->num_queues; i++) {
		rc = virtq_init(&t->vqs[i], mem, i, ops->queue_max);
		if (rc)
			goto err_queues;
		t->vqs[i].signal = virtio_mmio_vq_signal;
		t->vqs[i].error = virtio_mmio_guest_error;
		t->vqs[i].opaque = t;
	}
	if (pthread_mutex_init(&t->reg_lock, NULL))
		goto err_queues;
	if (pthread_mutex_init(&t->irq_lock, NULL))
		goto err_reg_lock;
	return t;

err_reg_lock:
	pthread_mutex_destroy(&t->reg_lock);
err_queues:
	while (i--)
		virtq_destroy(&t->vqs[i]);
	free(t);
	mvm_set_error(-EINVAL, "virtio-mmio: cannot set up %s queues (queue_max %u)",
		      ops->name, ops->queue_max);
	return NULL;
}

void virtio_mmio_free(struct virtio_mmio_dev *t)
{
	unsigned int i;

	if (!t)
		return;
	for (i = 0; i < t->ops->num_queues; i++)
		virtq_destroy(&t->vqs[i]);
	pthread_mutex_destroy(&t->irq_lock);
	pthread_mutex_destroy(&t->reg_lock);
	free(t);
}

void virtio_mmio_set_irq(struct virtio_mmio_dev *t, void (*set_irq)(void *opaque, int level),
			 void *irq_opaque)
{
	pthread_mutex_lock(&t->irq_lock);
	t->set_irq = set_irq;
	t->irq_opaque = irq_opaque;
	pthread_mutex_unlock(&t->irq_lock);
}

struct virtq *virtio_mmio_queue(struct virtio_mmio_dev *t, unsigned int qidx)
{
	return qidx < t->ops->num_queues ? &t->vqs[qidx] : NULL;
}

uint32_t virtio_mmio_status(struct virtio_mmio_dev *t)
{
	uint32_t st;

	pthread_mutex_lock(&t->irq_lock);
	st = t->status | (t->needs_reset ? VIRTIO_CONFIG_S_NEEDS_RESET : 0);
	pthread_mutex_unlock(&t->irq_lock);
	return st;
}

int virtio_mmio_cmdline(char *buf, size_t len, uint64_t base, unsigned int irq)
{
	int n = snprintf(buf, len, "virtio_mmio.device=4K@0x%" PRIx64 ":%u", base, irq);

	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

/* The selected queue, or NULL. reg_lock held. */
static struct virtq *virtio_mmio_sel(struct virtio_mmio_dev *t)
{
	return virtio_mmio_queue(t, t->queue_sel);
}

/* Full device reset (status 0); reg_lock held. */
static void virtio_mmio_reset(struct virtio_mmio_dev *t)
{
	unsigned int i;

	if (t->ops->reset)
		t->ops->reset(t->dev);
	for (i = 0; i < t->ops->num_queues; i++)
		virtq_reset(&t->vqs[i]);
	t->dev_feat_sel = t->drv_feat_sel = 0;
	t->driver_features = 0;
	t->queue_sel = 0;
	pthread_mutex_lock(&t->irq_lock);
	t->status = 0;
	t->needs_reset = false;
	if (t->isr && t->set_irq)
		t->set_irq(t->irq_opaque, 0);
	t->isr = 0;
	pthread_mutex_unlock(&t->irq_lock);
}

/* Mark the device as needing reset from the register path; reg_lock held. */
static void virtio_mmio_fail(struct virtio_mmio_dev *t, const char *why)
{
	virtio_mmio_guest_error(t, VIRTIO_MAX_QUEUES, why);
}

/* FEATURES_OK requested: may the driver's feature set be accepted? */
static bool virtio_mmio_features_ok(const struct virtio_mmio_dev *t)
{
	if (t->driver_features & ~virtio_mmio_offered(t))
		return false;
	return t->driver_features & (1ull << VIRTIO_F_VERSION_1);
}

/* DRIVER_OK newly set: hand the queues to the device. reg_lock held. */
static void virtio_mmio_activate(struct virtio_mmio_dev *t)
{
	unsigned int i;
	bool indirect = t->driver_features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);

	for (i = 0; i < t->ops->num_queues; i++) {
		pthread_mutex_lock(&t->vqs[i].lock);
		t->vqs[i].indirect = indirect;
		pthread_mutex_unlock(&t->vqs[i].lock);
	}
	if (t->ops->activate && t->ops->activate(t->dev, t->vqs, t->driver_features))
		virtio_mmio_fail(t, "device activation failed");
}

/* Driver wrote the Status register. reg_lock held. */
static void virtio_mmio_write_status(struct virtio_mmio_dev *t, uint32_t val)
{
	uint32_t old = t->status;

	if (!val) {
		virtio_mmio_reset(t);
		return;
	}
	val &= 0xff & ~VIRTIO_CONFIG_S_NEEDS_RESET;
	/* The driver may only add bits; anything else is ignored. */
	if (old & ~val)
		return;
	if ((val & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !virtio_mmio_features_ok(t))
		val &= ~VIRTIO_CONFIG_S_FEATURES_OK;
	if ((val & VIRTIO_CONFIG_S_DRIVER_OK) && !(val & VIRTIO_CONFIG_S_FEATURES_OK)) {
		virtio_mmio_fail(t, "DRIVER_OK without FEATURES_OK");
		val &= ~VIRTIO_CONFIG_S_DRIVER_OK;
	}
	pthread_mutex_lock(&t->irq_lock);
	t->status = val;
	pthread_mutex_unlock(&t->irq_lock);
	if ((val & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK))
		virtio_mmio_activate(t);
}

/* Driver wrote QueueReady. reg_lock held. */
static void virtio_mmio_queue_ready(struct virtio_mmio_dev *t, struct virtq *vq, uint32_t val)
{
	if (!val) {
		virtq_reset(vq);
		return;
	}
	if (vq->ready)
		return;
	if (virtq_enable(vq))
		virtio_mmio_fail(t, "bad queue configuration");
}

/* Driver wrote a queue configuration register; ignored while the queue is live. */
static void virtio_mmio_queue_cfg(struct virtio_mmio_dev *t, uint64_t off, uint32_t val)
{
	struct virtq *vq = virtio_mmio_sel(t);

	if (!vq)
		return;
	if (off == VIRTIO_MMIO_QUEUE_READY) {
		virtio_mmio_queue_ready(t, vq, val);
		return;
	}
	pthread_mutex_lock(&vq->lock);
	if (vq->ready)
		goto out;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		vq->size = val > VIRTQ_MAX_SIZE ? 0 : (uint16_t)val;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		vq->desc_gpa = (vq->desc_gpa & ~0xffffffffull) | val;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		vq->desc_gpa = (vq->desc_gpa & 0xffffffffull) | ((uint64_t)val << 32);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
		vq->avail_gpa = (vq->avail_gpa & ~0xffffffffull) | val;
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		vq->avail_gpa = (vq->avail_gpa & 0xffffffffull) | ((uint64_t)val << 32);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
		vq->used_gpa = (vq->used_gpa & ~0xffffffffull) | val;
		break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		vq->used_gpa = (vq->used_gpa & 0xffffffffull) | ((uint64_t)val << 32);
		break;
	}
out:
	pthread_mutex_unlock(&vq->lock);
}

/* Read a 32-bit register. reg_lock held. */
static uint32_t virtio_mmio_reg_read(struct virtio_mmio_dev *t, uint64_t off)
{
	struct virtq *vq = virtio_mmio_sel(t);
	uint32_t v = 0;

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->dev_feat_sel < 2)
			v = (uint32_t)(virtio_mmio_offered(t) >> (32 * t->dev_feat_sel));
		return v;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vq ? vq->max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		if (vq) {
			pthread_mutex_lock(&vq->lock);
			v = vq->ready;
			pthread_mutex_unlock(&vq->lock);
		}
		return v;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		pthread_mutex_lock(&t->irq_lock);
		v = t->isr;
		pthread_mutex_unlock(&t->irq_lock);
		return v;
	case VIRTIO_MMIO_STATUS:
		return virtio_mmio_status(t);
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		return 0xffffffffU;	/* no shared memory regions */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->config_gen;
	}
	return 0;
}

/* Driver acknowledged interrupts. */
static void virtio_mmio_ack(struct virtio_mmio_dev *t, uint32_t val)
{
	pthread_mutex_lock(&t->irq_lock);
	if (t->isr) {
		t->isr &= ~val;
		if (!t->isr && t->set_irq)
			t->set_irq(t->irq_opaque, 0);
	}
	pthread_mutex_unlock(&t->irq_lock);
}

/* Driver kicked a queue: call the device without holding any queue lock. reg_lock held. */
static void virtio_mmio_kick(struct virtio_mmio_dev *t, uint32_t qidx)
{
	struct virtq *vq = virtio_mmio_queue(t, qidx);

	if (!vq || !(t->status & VIRTIO_CONFIG_S_DRIVER_OK) || !t->ops->queue_notify)
		return;
	t->ops->queue_notify(t->dev, vq, qidx);
}

/* Write a 32-bit register. reg_lock held. */
static void virtio_mmio_reg_write(struct virtio_mmio_dev *t, uint64_t off, uint32_t val)
{
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_feat_sel = val;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_feat_sel = val;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (t->status & VIRTIO_CONFIG_S_FEATURES_OK || t->drv_feat_sel > 1)
			return;
		if (t->drv_feat_sel)
			t->driver_features = (t->driver_features & 0xffffffffull) |
					     ((uint64_t)val << 32);
		else
			t->driver_features = (t->driver_features & ~0xffffffffull) | val;
		return;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = val;
		return;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		virtio_mmio_queue_cfg(t, off, val);
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		virtio_mmio_kick(t, val);
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		virtio_mmio_ack(t, val);
		return;
	case VIRTIO_MMIO_STATUS:
		virtio_mmio_write_status(t, val);
		return;
	}
}

/* Is [off, off+len) a valid config space access? */
static bool virtio_mmio_cfg_ok(const struct virtio_mmio_dev *t, uint64_t off, unsigned int len)
{
	if (len != 1 && len != 2 && len != 4 && len != 8)
		return false;
	return off >= VIRTIO_MMIO_CONFIG && off - VIRTIO_MMIO_CONFIG <= t->ops->config_size &&
	       len <= t->ops->config_size - (off - VIRTIO_MMIO_CONFIG);
}

void virtio_mmio_read(struct virtio_mmio_dev *t, uint64_t offset, void *data, unsigned int len)
{
	uint32_t v;

	memset(data, 0, len);
	pthread_mutex_lock(&t->reg_lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		if (virtio_mmio_cfg_ok(t, offset, len) && t->ops->config_read)
			t->ops->config_read(t->dev, offset - VIRTIO_MMIO_CONFIG, data, len);
	} else if (len == 4 && !(offset & 3)) {
		v = htole32(virtio_mmio_reg_read(t, offset));
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->reg_lock);
}

void virtio_mmio_write(struct virtio_mmio_dev *t, uint64_t offset, const void *data,
		       unsigned int len)
{
	uint32_t v;

	pthread_mutex_lock(&t->reg_lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		if (virtio_mmio_cfg_ok(t, offset, len) && t->ops->config_write)
			t->ops->config_write(t->dev, offset - VIRTIO_MMIO_CONFIG, data, len);
	} else if (len == 4 && !(offset & 3)) {
		memcpy(&v, data, 4);
		virtio_mmio_reg_write(t, offset, le32toh(v));
	}
	pthread_mutex_unlock(&t->reg_lock);
}

void virtio_mmio_access(void *t, uint64_t offset, uint8_t *data, uint32_t len, int is_write)
{
	if (is_write)
		virtio_mmio_write(t, offset, data, len);
	else
		virtio_mmio_read(t, offset, data, len);
}
