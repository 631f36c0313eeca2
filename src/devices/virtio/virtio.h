/* SPDX-License-Identifier: MIT */
/**
 * DOC: virtio devices and the virtio-mmio transport
 *
 * As in kvmtool, a device never knows its transport.  A device fills a &struct
 * virtio_dev_ops (id, features, queues, config space, callbacks) and works on the &struct
 * virtq objects it is given in @activate / @queue_notify, using only queue.h.  The transport
 * (mmio.c, virtio-mmio version 2, modern only) owns the queues, the status machine, feature
 * negotiation and the interrupt line.
 *
 * How a backend (KVM) wires a device::
 *
 *	struct mvm_gmem mem;          // filled with guest RAM regions
 *	t = virtio_mmio_new(&virtio_rng_ops, rng, &mem, set_irq, irq_ctx);
 *	// guest MMIO exits inside [base, base + VIRTIO_MMIO_WINDOW):
 *	virtio_mmio_read(t, addr - base, data, len);   // or virtio_mmio_write()
 *	// kernel command line:
 *	virtio_mmio_cmdline(buf, sizeof(buf), base, irq);  // "virtio_mmio.device=4K@0x...:5"
 *
 * Locking (outer to inner): transport register lock -> device lock -> queue lock ->
 * transport interrupt lock.  The transport calls every device op with its register lock held
 * (so ops are serialised against each other), never with a queue or interrupt lock held.
 * Devices may call virtq_pop/push/notify and virtio_mmio_notify_used() from any thread.
 */
#ifndef MVM_DEVICES_VIRTIO_VIRTIO_H
#define MVM_DEVICES_VIRTIO_VIRTIO_H

#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>

#include "devices/guest_mem.h"
#include "devices/virtio/queue.h"

/* Size of one device's MMIO window and the conventional layout used by the KVM backend. */
#define VIRTIO_MMIO_WINDOW	0x1000
#define VIRTIO_MMIO_BASE	0xd0000000ull
#define VIRTIO_MMIO_IRQ_BASE	5
/* Queues per device this transport supports. */
#define VIRTIO_MAX_QUEUES	8
/* "MVM1": our VendorID register value. */
#define VIRTIO_MMIO_VENDOR	0x314d564dU

/**
 * struct virtio_dev_ops - what a virtio device provides
 * @name:	short name for messages ("rng", "net", "vsock")
 * @device_id:	VIRTIO_ID_* (linux/virtio_ids.h)
 * @features:	device feature bits offered; the transport adds VIRTIO_F_VERSION_1 and
 *		VIRTIO_RING_F_INDIRECT_DESC itself
 * @num_queues:	number of virtqueues (<= VIRTIO_MAX_QUEUES)
 * @queue_max:	QueueNumMax for every queue (power of two, <= VIRTQ_MAX_SIZE)
 * @config_size: bytes of device config space (accesses beyond it read 0 / are ignored)
 * @config_read: read @len bytes at @offset (< @config_size, bounds already checked) into
 *		@data; may be NULL if @config_size is 0
 * @config_write: driver wrote config space; may be NULL (writes ignored)
 * @queue_notify: the driver kicked queue @qidx (vCPU thread; must not block for long)
 * @activate:	DRIVER_OK was set: @vqs[0..num_queues) are the device's queues and
 *		@features the negotiated feature bits; return 0 or -errno (the transport then
 *		sets DEVICE_NEEDS_RESET); may be NULL
 * @reset:	the driver reset the device (status 0): stop using the queues before
 *		returning (they are reset right after); may be NULL
 */
struct virtio_dev_ops {
	const char *name;
	uint32_t device_id;
	uint64_t features;
	unsigned int num_queues;
	uint16_t queue_max;
	uint32_t config_size;
	void (*config_read)(void *dev, uint32_t offset, void *data, unsigned int len);
	void (*config_write)(void *dev, uint32_t offset, const void *data, unsigned int len);
	void (*queue_notify)(void *dev, struct virtq *vq, unsigned int qidx);
	int (*activate)(void *dev, struct virtq *vqs, uint64_t features);
	void (*reset)(void *dev);
};

struct virtio_mmio_dev;

/**
 * virtio_mmio_new() - create a virtio-mmio transport for a device
 * @ops:	the device's ops (must outlive the transport)
 * @dev:	the device's context, passed to every op
 * @mem:	guest memory map (must outlive the transport)
 * @set_irq:	drive the interrupt line: level 1 when InterruptStatus becomes non-zero, 0 when
 *		the driver acknowledges it back to zero (called with the interrupt lock held, from
 *		any thread)
 * @irq_opaque:	first argument of @set_irq
 *
 * Return: the transport, or NULL with mvm_last_error() set.
 */
struct virtio_mmio_dev *virtio_mmio_new(const struct virtio_dev_ops *ops, void *dev,
					struct mvm_gmem *mem,
					void (*set_irq)(void *opaque, int level),
					void *irq_opaque);

/**
 * virtio_mmio_set_irq() - (re)connect the interrupt line, before the guest runs
 * @t:		the transport
 * @set_irq:	see virtio_mmio_new()
 * @irq_opaque:	its first argument
 *
 * For backends that learn the device's IRQ number only after creating the transport.
 */
void virtio_mmio_set_irq(struct virtio_mmio_dev *t, void (*set_irq)(void *opaque, int level),
			 void *irq_opaque);

/**
 * virtio_mmio_access() - one guest access, in the shape of an MMIO-exit handler
 * @t:		the transport (a struct virtio_mmio_dev *)
 * @offset:	offset within the window
 * @data:	bytes written, or where to store the bytes read
 * @len:	access width
 * @is_write:	non-zero for a write
 *
 * Same as virtio_mmio_write() / virtio_mmio_read(); matches the KVM backend's kvm_mmio_fn so
 * it can be registered directly.
 */
void virtio_mmio_access(void *t, uint64_t offset, uint8_t *data, uint32_t len, int is_write);

/**
 * virtio_mmio_free() - destroy a transport (the device must no longer use its queues)
 * @t:		the transport, or NULL
 */
void virtio_mmio_free(struct virtio_mmio_dev *t);

/**
 * virtio_mmio_read() - guest read from the device's MMIO window
 * @t:		the transport
 * @offset:	offset within the window
 * @data:	where to store @len bytes (little endian)
 * @len:	access width: registers need 4; config space accepts 1, 2, 4, 8
 *
 * Bad offsets or widths read as zero.
 */
void virtio_mmio_read(struct virtio_mmio_dev *t, uint64_t offset, void *data, unsigned int len);

/**
 * virtio_mmio_write() - guest write to the device's MMIO window
 * @t:		the transport
 * @offset:	offset within the window
 * @data:	@len bytes (little endian)
 * @len:	access width (see virtio_mmio_read())
 *
 * Bad offsets, widths or values are ignored (or set DEVICE_NEEDS_RESET).
 */
void virtio_mmio_write(struct virtio_mmio_dev *t, uint64_t offset, const void *data,
		       unsigned int len);

/**
 * virtio_mmio_notify_used() - raise the used-buffer interrupt (any thread)
 * @t:		the transport
 * @qidx:	the queue that has new used buffers
 *
 * Devices normally call virtq_notify(), which calls this unless the driver suppressed
 * interrupts.
 */
void virtio_mmio_notify_used(struct virtio_mmio_dev *t, unsigned int qidx);

/**
 * virtio_mmio_queue() - one of the device's queues
 * @t:		the transport
 * @qidx:	queue index
 *
 * Return: the queue (stable for the transport's lifetime), or NULL if @qidx is out of range.
 */
struct virtq *virtio_mmio_queue(struct virtio_mmio_dev *t, unsigned int qidx);

/**
 * virtio_mmio_status() - current device status register (for tests and diagnostics)
 * @t:		the transport
 *
 * Return: the VIRTIO_CONFIG_S_* bits.
 */
uint32_t virtio_mmio_status(struct virtio_mmio_dev *t);

/**
 * virtio_mmio_cmdline() - kernel command line token declaring a virtio-mmio device
 * @buf:	output buffer
 * @len:	its size
 * @base:	MMIO base address of the device window
 * @irq:	interrupt line
 *
 * Writes "virtio_mmio.device=4K@0x<base>:<irq>".
 *
 * Return: length written (excluding NUL), or -ENOSPC if @buf is too small.
 */
int virtio_mmio_cmdline(char *buf, size_t len, uint64_t base, unsigned int irq);

#endif
