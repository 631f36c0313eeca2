/* SPDX-License-Identifier: MIT */
/**
 * DOC: split virtqueue API
 *
 * A &struct virtq is one split virtqueue (virtio 1.x, section 2.6).  The transport owns it and
 * configures it from the driver's register writes (size, ring addresses, ready); a device only
 * ever calls virtq_pop() to take the next available descriptor chain as bounded iovec arrays,
 * virtq_push() to hand it back with the number of bytes written, and virtq_notify() to raise
 * the used-buffer interrupt.  All three are thread-safe (the queue has its own lock), so a
 * device may run its queues from its own threads while the vCPU thread touches registers.
 *
 * Every value the guest controls is checked: ring and buffer addresses are translated with
 * mvm_gmem_ptr(), descriptor indexes are bounded by the queue size, chains longer than the
 * queue (loops) are refused, zero-length and huge descriptors are refused, a readable
 * descriptor after a writable one is refused, indirect tables are bounds-checked and may not
 * nest, and an avail index more than the queue size ahead is refused.  Any of these makes the
 * queue "broken": virtq_pop() returns -EIO from then on and the transport is told (it sets
 * DEVICE_NEEDS_RESET) until the driver resets the device.  Nothing a guest writes can make
 * us read or write outside guest RAM.
 *
 * Buffers returned by virtq_pop() point into guest RAM, which stays mapped for the VM's
 * lifetime; if the driver resets the queue while a device still holds an element, the
 * element's generation no longer matches and virtq_push() silently drops it.
 */
#ifndef MVM_DEVICES_VIRTIO_QUEUE_H
#define MVM_DEVICES_VIRTIO_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_ring.h>

#include "devices/guest_mem.h"

/* Largest queue size this implementation accepts (the spec's maximum). */
#define VIRTQ_MAX_SIZE		32768
/* Segments per direction in one element; a longer chain is a guest error. */
#define VIRTQ_MAX_SEGS		64
/* Bytes per direction in one element; more is a guest error (also keeps u32 sums exact). */
#define VIRTQ_MAX_CHAIN_BYTES	(1u << 28)

/**
 * struct virtq_elem - one descriptor chain taken from the avail ring
 * @head:	index of the chain's first descriptor (goes back in the used ring)
 * @gen:	queue generation when popped (virtq_push() drops stale elements)
 * @out_num:	readable (driver -> device) segments in @out
 * @in_num:	writable (device -> driver) segments in @in
 * @out_len:	total bytes in @out
 * @in_len:	total bytes in @in
 * @out:	readable segments, host pointers into guest RAM, each len > 0
 * @in:		writable segments, host pointers into guest RAM, each len > 0
 */
struct virtq_elem {
	uint16_t head;
	uint32_t gen;
	unsigned int out_num;
	unsigned int in_num;
	uint32_t out_len;
	uint32_t in_len;
	struct iovec out[VIRTQ_MAX_SEGS];
	struct iovec in[VIRTQ_MAX_SEGS];
};

/**
 * struct virtq - one split virtqueue
 * @lock:	protects everything below
 * @index:	queue index within its device
 * @max_size:	largest size the device accepts (QueueNumMax)
 * @size:	QueueNum as written by the driver
 * @desc_gpa:	descriptor table guest address (QueueDesc)
 * @avail_gpa:	driver area (QueueDriver)
 * @used_gpa:	device area (QueueDevice)
 * @ready:	enabled by the driver and validated (rings below are valid)
 * @broken:	a guest error was seen; nothing is popped until reset
 * @indirect:	VIRTIO_F_INDIRECT_DESC negotiated
 * @gen:	bumped on every reset/disable
 * @last_avail:	next avail ring entry to consume (free-running)
 * @used_idx:	next used index to publish (free-running)
 * @mem:	guest memory map
 * @desc:	host view of the descriptor table (valid while @ready)
 * @avail:	host view of the avail ring (valid while @ready)
 * @used:	host view of the used ring (valid while @ready)
 * @signal:	transport callback raising the used-buffer interrupt for this queue
 * @error:	transport callback on a guest error (sets DEVICE_NEEDS_RESET)
 * @opaque:	argument of @signal and @error
 */
struct virtq {
	pthread_mutex_t lock;
	unsigned int index;
	uint16_t max_size;
	uint16_t size;
	uint64_t desc_gpa;
	uint64_t avail_gpa;
	uint64_t used_gpa;
	bool ready;
	bool broken;
	bool indirect;
	uint32_t gen;
	uint16_t last_avail;
	uint16_t used_idx;
	const struct mvm_gmem *mem;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	void (*signal)(void *opaque, unsigned int index);
	void (*error)(void *opaque, unsigned int index, const char *why);
	void *opaque;
};

/**
 * virtq_init() - initialise a queue (transport side)
 * @vq:		the queue
 * @mem:	guest memory map
 * @index:	queue index within the device
 * @max_size:	QueueNumMax, a power of two <= VIRTQ_MAX_SIZE
 *
 * Return: 0 or -errno (-EINVAL for a bad @max_size).
 */
int virtq_init(struct virtq *vq, const struct mvm_gmem *mem, unsigned int index,
	       uint16_t max_size);

/**
 * virtq_destroy() - release the queue's lock
 * @vq:		the queue
 */
void virtq_destroy(struct virtq *vq);

/**
 * virtq_enable() - validate the configured rings and start using them (transport side)
 * @vq:		the queue, with @size and the three addresses set
 *
 * Checks that the size is a power of two within @max_size, that the rings are aligned (16, 2,
 * 4) and that they lie in guest RAM.  Caller holds no queue lock.
 *
 * Return: 0, or -EINVAL (and the queue stays disabled).
 */
int virtq_enable(struct virtq *vq);

/**
 * virtq_reset() - disable the queue and forget its configuration (transport side)
 * @vq:		the queue
 *
 * Elements still held by devices become stale (virtq_push() drops them).  @indirect is kept:
 * the transport sets it from the negotiated features before the device may pop.
 */
void virtq_reset(struct virtq *vq);

/**
 * virtq_pop() - take the next available descriptor chain
 * @vq:		the queue
 * @elem:	filled on success
 *
 * Return: 1 when @elem holds a chain, 0 when nothing is available (or the queue is not
 * ready), -EIO on a guest error (the queue is now broken; the transport has been told).
 */
int virtq_pop(struct virtq *vq, struct virtq_elem *elem);

/**
 * virtq_unpop() - give back the element virtq_pop() just returned, unused
 * @vq:		the queue
 * @elem:	the element; must be the most recently popped one
 *
 * For a device that popped a buffer and then found it cannot use it yet.
 */
void virtq_unpop(struct virtq *vq, const struct virtq_elem *elem);

/**
 * virtq_push() - return a chain to the driver through the used ring
 * @vq:		the queue
 * @elem:	an element from virtq_pop()
 * @written:	bytes the device wrote into @elem's writable segments (clamped to in_len)
 *
 * Does not interrupt the guest: call virtq_notify() after a batch of pushes.
 *
 * Return: 0, or -ESTALE if the queue was reset since @elem was popped (dropped).
 */
int virtq_push(struct virtq *vq, const struct virtq_elem *elem, uint32_t written);

/**
 * virtq_notify() - raise the used-buffer interrupt unless the driver suppressed it
 * @vq:		the queue
 */
void virtq_notify(struct virtq *vq);

/**
 * virtq_has_avail() - does the driver have buffers waiting?
 * @vq:		the queue
 *
 * Return: true if virtq_pop() would return a chain (or an error).
 */
bool virtq_has_avail(struct virtq *vq);

/**
 * virtq_iov_to_buf() - copy from segments into a flat buffer
 * @iov:	segments
 * @n:		number of segments
 * @skip:	bytes to skip at the start
 * @buf:	destination
 * @len:	bytes to copy at most
 *
 * Return: bytes copied.
 */
size_t virtq_iov_to_buf(const struct iovec *iov, unsigned int n, size_t skip, void *buf,
			size_t len);

/**
 * virtq_buf_to_iov() - copy a flat buffer into segments
 * @iov:	segments
 * @n:		number of segments
 * @skip:	bytes to skip at the start of the segments
 * @buf:	source
 * @len:	bytes to copy at most
 *
 * Return: bytes copied.
 */
size_t virtq_buf_to_iov(const struct iovec *iov, unsigned int n, size_t skip, const void *buf,
			size_t len);

#endif
