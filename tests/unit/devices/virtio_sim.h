/* SPDX-License-Identifier: MIT */
/**
 * DOC: virtio_sim - a simulated guest driver for device unit tests
 *
 * Lets a unit test play the guest side of a virtio-mmio device without a VM: it allocates
 * "guest RAM" (a malloc'd block mapped at VSIM_RAM_GPA in a &struct mvm_gmem), creates the
 * real transport (virtio_mmio_new()) around the device under test, drives the transport
 * only through its MMIO registers (like the Linux driver), posts buffers and reads back used
 * entries.  The interrupt line is recorded in @irq_level / @irq_raises.
 *
 * Typical use::
 *
 *	struct vsim s;
 *	vsim_init(&s, 0);                           // 4 MiB of guest RAM
 *	vsim_attach(&s, &virtio_rng_ops, rng);      // creates the transport
 *	vsim_start(&s, 0, 0);                       // negotiate, set up every queue, DRIVER_OK
 *	size_t in = 64;
 *	int head = vsim_post(&s, 0, NULL, 0, &in, 1);   // one 64-byte writable buffer
 *	vsim_kick(&s, 0);                           // QueueNotify
 *	uint32_t len; char buf[64];
 *	int id = vsim_used(&s, 0, &len, buf, sizeof(buf));  // == head, buf = what was written
 *	vsim_fini(&s);
 *
 * Out (readable) segments are given as struct iovec (data copied into guest RAM); in
 * (writable) segments as lengths (zero-filled guest buffers).  Descriptors come from a
 * Linux-style free list and are returned to it by vsim_used(), so a test can post and
 * complete any number of buffers; buffer memory comes from a bump allocator (vsim_alloc()).
 * For malformed-input tests use vsim_desc()/vsim_avail()/vsim_ptr() to write raw ring
 * contents and vsim_publish() to expose a head.  Functions return -1 on misuse (not
 * -errno); nothing here asserts, so it works with any test framework.
 */
#ifndef MVM_TESTS_VIRTIO_SIM_H
#define MVM_TESTS_VIRTIO_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/virtio/virtio.h"

/* Guest physical address of simulated RAM (not zero, to catch missing translation). */
#define VSIM_RAM_GPA		0x40000000ull
#define VSIM_DEFAULT_RAM	(4u << 20)

/**
 * struct vsim_queue - driver-side state of one queue
 * @size:	queue size (0: not set up)
 * @desc_gpa:	descriptor table address
 * @avail_gpa:	avail ring address
 * @used_gpa:	used ring address
 * @desc:	host view of the table
 * @avail:	host view of the avail ring
 * @used:	host view of the used ring
 * @avail_idx:	next avail index the driver publishes
 * @used_seen:	used entries consumed by vsim_used()
 * @free_head:	first free descriptor (free ones are linked through .next)
 * @num_free:	free descriptors
 */
struct vsim_queue {
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;
	uint16_t used_seen;
	uint16_t free_head;
	uint16_t num_free;
};

/**
 * struct vsim - one simulated guest with one device
 * @mem:	the guest memory map given to the transport
 * @ram:	simulated RAM (host)
 * @ram_size:	its size
 * @brk:	bump allocator offset into @ram
 * @t:		the transport (after vsim_attach())
 * @irq_level:	current interrupt line level
 * @irq_raises:	number of 0 -> 1 transitions seen
 * @use_indirect: vsim_post() puts chains in an indirect table (negotiate the feature)
 * @q:		driver-side queue state
 */
struct vsim {
	struct mvm_gmem mem;
	unsigned char *ram;
	size_t ram_size;
	size_t brk;
	struct virtio_mmio_dev *t;
	int irq_level;
	unsigned int irq_raises;
	bool use_indirect;
	struct vsim_queue q[VIRTIO_MAX_QUEUES];
};

/** vsim_init() - allocate @ram_size (0: VSIM_DEFAULT_RAM) bytes of RAM.  Return 0 or -1. */
int vsim_init(struct vsim *s, size_t ram_size);

/** vsim_attach() - create the transport for device @dev with @ops.  Return 0 or -1. */
int vsim_attach(struct vsim *s, const struct virtio_dev_ops *ops, void *dev);

/** vsim_fini() - free the transport and the RAM (the device is the caller's). */
void vsim_fini(struct vsim *s);

/** vsim_read32() - 32-bit MMIO register read at @off. */
uint32_t vsim_read32(struct vsim *s, uint64_t off);

/** vsim_write32() - 32-bit MMIO register write at @off. */
void vsim_write32(struct vsim *s, uint64_t off, uint32_t val);

/** vsim_alloc() - zeroed guest memory; Return: its gpa, or 0 when RAM is exhausted. */
uint64_t vsim_alloc(struct vsim *s, size_t size, size_t align);

/** vsim_ptr() - host pointer for @gpa (NULL outside simulated RAM). */
void *vsim_ptr(struct vsim *s, uint64_t gpa);

/**
 * vsim_negotiate() - reset, ACKNOWLEDGE, DRIVER, write @features (VERSION_1 is added unless
 * @raw), FEATURES_OK.  Return: the Status register read back (check FEATURES_OK).
 */
uint32_t vsim_negotiate(struct vsim *s, uint64_t features, bool raw);

/**
 * vsim_setup_queue() - allocate rings for queue @qidx with @size entries (0: QueueNumMax) and
 * program them through the registers, then QueueReady=1.  Return: QueueReady read back (1 ok).
 */
int vsim_setup_queue(struct vsim *s, unsigned int qidx, uint16_t size);

/** vsim_driver_ok() - set DRIVER_OK.  Return: the Status register read back. */
uint32_t vsim_driver_ok(struct vsim *s);

/**
 * vsim_start() - vsim_negotiate(@features) + every queue with @size + vsim_driver_ok().
 * Return: 0, or -1 if any step was refused.
 */
int vsim_start(struct vsim *s, uint64_t features, uint16_t size);

/**
 * vsim_post() - make a chain available (does not kick)
 * @s:		the simulator
 * @qidx:	queue
 * @out:	readable segments (copied into guest RAM), may be NULL if @nout is 0
 * @nout:	how many
 * @in_lens:	lengths of writable segments (zeroed guest buffers), may be NULL if @nin is 0
 * @nin:	how many
 *
 * Return: the chain's head descriptor index, or -1 (no descriptors or RAM left).
 */
int vsim_post(struct vsim *s, unsigned int qidx, const struct iovec *out, unsigned int nout,
	      const size_t *in_lens, unsigned int nin);

/** vsim_publish() - put @head in the avail ring and bump avail->idx (raw tests). */
void vsim_publish(struct vsim *s, unsigned int qidx, uint16_t head);

/** vsim_kick() - write @qidx to QueueNotify. */
void vsim_kick(struct vsim *s, unsigned int qidx);

/** vsim_used_pending() - used entries not yet consumed by vsim_used(). */
unsigned int vsim_used_pending(struct vsim *s, unsigned int qidx);

/**
 * vsim_used() - consume the next used entry
 * @s:		the simulator
 * @qidx:	queue
 * @len:	set to the length the device reported (may be NULL)
 * @buf:	receives up to @buflen bytes of what the device wrote into the writable segments
 *		(the first min(len, @buflen) bytes, gathered), may be NULL
 * @buflen:	size of @buf
 *
 * The chain's descriptors go back to the free list.
 *
 * Return: the head id of the entry, or -1 if there is none (or it is invalid).
 */
int vsim_used(struct vsim *s, unsigned int qidx, uint32_t *len, void *buf, size_t buflen);

/** vsim_ack() - read InterruptStatus and acknowledge it.  Return: the bits read. */
uint32_t vsim_ack(struct vsim *s);

/** vsim_desc() - host view of descriptor @i of queue @qidx (raw tests). */
struct vring_desc *vsim_desc(struct vsim *s, unsigned int qidx, uint16_t i);

#endif
