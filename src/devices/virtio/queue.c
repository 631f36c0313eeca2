/* SPDX-License-Identifier: MIT */
/**
 * DOC: Theory of operation - split virtqueues
 *
 * The driver (guest) owns three areas in guest RAM: the descriptor table (size entries of
 * {addr, len, flags, next}), the avail ring (the driver publishes chain heads and bumps
 * avail->idx) and the used ring (we publish {head, bytes written} and bump used->idx).  Indexes
 * are free-running 16-bit counters taken modulo the (power of two) queue size.
 *
 * Reading: virtq_pop() loads avail->idx (acquire), then the ring entry, then walks the
 * chain.  Each descriptor is copied out of guest RAM exactly once before it is checked, so a
 * guest rewriting descriptors under us cannot make a checked value differ from a used one.
 * Every address goes through mvm_gmem_ptr(); the chain walk counts descriptors and refuses
 * more than the table holds, which catches loops without any visited-set.  An indirect
 * descriptor switches the walk to its table (bounds-checked, no nesting, no NEXT flag).
 *
 * Writing: virtq_push() writes the used element, then used->idx (release).
 * virtq_notify() then reads avail->flags after a full fence, so that either we see the
 * driver's NO_INTERRUPT cleared or the driver sees our new used->idx.
 *
 * Errors: any inconsistency marks the queue broken, reports it once through the transport's
 * @error callback (which sets DEVICE_NEEDS_RESET) and makes later pops return -EIO until the
 * driver resets the device.  A broken queue never touches guest RAM again except for pushes
 * of elements the device already holds.
 *
 * Locking: @lock covers the ring state; it is taken by every function here and released
 * before the transport callbacks run (they take the transport's interrupt lock).
 */
#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "devices/virtio/queue.h"

/* The layout this code assumes for guest-visible structures. */
_Static_assert(sizeof(struct vring_desc) == 16, "vring_desc layout");
_Static_assert(sizeof(struct vring_used_elem) == 8, "vring_used_elem layout");
_Static_assert(sizeof(struct vring_avail) == 4, "vring_avail header layout");
_Static_assert(sizeof(struct vring_used) == 4, "vring_used header layout");

int virtq_init(struct virtq *vq, const struct mvm_gmem *mem, unsigned int index,
	       uint16_t max_size)
{
	int rc;

	if (!max_size || (max_size & (max_size - 1)))
		return -EINVAL;
	memset(vq, 0, sizeof(*vq));
	rc = pthread_mutex_init(&vq->lock, NULL);
	if (rc)
		return -rc;
	vq->mem = mem;
	vq->index = index;
	vq->max_size = max_size;
	return 0;
}

void virtq_destroy(struct virtq *vq)
{
	pthread_mutex_destroy(&vq->lock);
}

/* Map @len bytes at @gpa, aligned to @align both in the guest and on the host. */
static void *virtq_map(const struct virtq *vq, uint64_t gpa, uint64_t len, unsigned int align)
{
	void *p;

	if (gpa & (align - 1))
		return NULL;
	p = mvm_gmem_ptr(vq->mem, gpa, len);
	if (!p || ((uintptr_t)p & (align - 1)))
		return NULL;
	return p;
}

int virtq_enable(struct virtq *vq)
{
	uint64_t n;
	int rc = -EINVAL;

	pthread_mutex_lock(&vq->lock);
	n = vq->size;
	if (!n || n > vq->max_size || (n & (n - 1)))
		goto out;
	vq->desc = virtq_map(vq, vq->desc_gpa, 16 * n, 16);
	vq->avail = virtq_map(vq, vq->avail_gpa, 6 + 2 * n, 2);
	vq->used = virtq_map(vq, vq->used_gpa, 6 + 8 * n, 4);
	if (!vq->desc || !vq->avail || !vq->used)
		goto out;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->broken = false;
	vq->gen++;
	vq->ready = true;
	rc = 0;
out:
	pthread_mutex_unlock(&vq->lock);
	return rc;
}

void virtq_reset(struct virtq *vq)
{
	pthread_mutex_lock(&vq->lock);
	vq->ready = false;
	vq->broken = false;
	vq->gen++;
	vq->size = 0;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->last_avail = vq->used_idx = 0;
	pthread_mutex_unlock(&vq->lock);
}

/*
 * Guest-shared 16-bit little-endian indexes and flags.  Atomic accesses so that the compiler
 * never tears, merges or re-reads them; acquire/release order the ring contents against the
 * index that publishes them (the guest pairs them with its own barriers).
 */
static uint16_t virtq_load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static uint16_t virtq_load16_acquire(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

static void virtq_store16_release(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELEASE);
}

/*
 * struct virtq_walk - state of one chain walk
 * @table:	current descriptor table (the ring's or an indirect one; maybe unaligned)
 * @tsize:	entries in @table
 * @count:	descriptors visited in @table
 * @in_indirect: @table is an indirect table
 */
struct virtq_walk {
	const unsigned char *table;
	uint32_t tsize;
	uint32_t count;
	bool in_indirect;
};

/* Switch the walk to the indirect table described by @d.  Return NULL or an error text. */
static const char *virtq_walk_indirect(struct virtq *vq, struct virtq_walk *w,
				       uint64_t addr, uint32_t len, uint16_t flags)
{
	if (!vq->indirect)
		return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
	if (w->in_indirect)
		return "nested indirect descriptor";
	if (flags & VRING_DESC_F_NEXT)
		return "indirect descriptor with NEXT flag";
	if (!len || len % sizeof(struct vring_desc) ||
	    len / sizeof(struct vring_desc) > VIRTQ_MAX_SIZE)
		return "bad indirect table length";
	w->table = mvm_gmem_ptr(vq->mem, addr, len);
	if (!w->table)
		return "indirect table outside guest memory";
	w->tsize = len / sizeof(struct vring_desc);
	w->count = 0;
	w->in_indirect = true;
	return NULL;
}

/* Add one buffer to @elem.  Return NULL or an error text. */
static const char *virtq_add_seg(struct virtq *vq, struct virtq_elem *elem, uint64_t addr,
				 uint32_t len, bool writable)
{
	void *p;

	if (!len)
		return "zero-length descriptor";
	if (len > VIRTQ_MAX_CHAIN_BYTES)
		return "descriptor too long";
	p = mvm_gmem_ptr(vq->mem, addr, len);
	if (!p)
		return "buffer outside guest memory";
	if (writable) {
		if (elem->in_num >= VIRTQ_MAX_SEGS)
			return "too many writable segments";
		if (len > VIRTQ_MAX_CHAIN_BYTES - elem->in_len)
			return "writable buffers too long";
		elem->in[elem->in_num].iov_base = p;
		elem->in[elem->in_num++].iov_len = len;
		elem->in_len += len;
	} else {
		if (elem->in_num)
			return "readable descriptor after a writable one";
		if (elem->out_num >= VIRTQ_MAX_SEGS)
			return "too many readable segments";
		if (len > VIRTQ_MAX_CHAIN_BYTES - elem->out_len)
			return "readable buffers too long";
		elem->out[elem->out_num].iov_base = p;
		elem->out[elem->out_num++].iov_len = len;
		elem->out_len += len;
	}
	return NULL;
}

/* Walk the chain starting at @head into @elem.  Return NULL or an error text. */
static const char *virtq_walk_chain(struct virtq *vq, uint16_t head, struct virtq_elem *elem)
{
	struct virtq_walk w = { (const unsigned char *)vq->desc, vq->size, 0, false };
	uint32_t i = head;
	const char *err;

	elem->out_num = elem->in_num = 0;
	elem->out_len = elem->in_len = 0;
	for (;;) {
		struct vring_desc d;
		uint16_t flags;
		uint64_t addr;
		uint32_t len;

		if (i >= w.tsize)
			return "descriptor index out of range";
		if (++w.count > w.tsize)
			return "descriptor chain loops";
		memcpy(&d, w.table + (size_t)i * sizeof(d), sizeof(d));
		addr = le64toh(d.addr);
		len = le32toh(d.len);
		flags = le16toh(d.flags);
		if (flags & VRING_DESC_F_INDIRECT) {
			err = virtq_walk_indirect(vq, &w, addr, len, flags);
			if (err)
				return err;
			i = 0;
			continue;
		}
		err = virtq_add_seg(vq, elem, addr, len, flags & VRING_DESC_F_WRITE);
		if (err)
			return err;
		if (!(flags & VRING_DESC_F_NEXT))
			return NULL;
		i = le16toh(d.next);
	}
}

/* Mark @vq broken and tell the transport; called with the lock held, returns unlocked. */
static int virtq_fail(struct virtq *vq, const char *why)
{
	bool first = !vq->broken;

	vq->broken = true;
	pthread_mutex_unlock(&vq->lock);
	if (first && vq->error)
		vq->error(vq->opaque, vq->index, why);
	return -EIO;
}

int virtq_pop(struct virtq *vq, struct virtq_elem *elem)
{
	uint16_t avail_idx, head;
	const char *err;

	pthread_mutex_lock(&vq->lock);
	if (!vq->ready) {
		pthread_mutex_unlock(&vq->lock);
		return 0;
	}
	if (vq->broken)
		return virtq_fail(vq, "queue broken");
	avail_idx = virtq_load16_acquire(&vq->avail->idx);
	if (avail_idx == vq->last_avail) {
		pthread_mutex_unlock(&vq->lock);
		return 0;
	}
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size)
		return virtq_fail(vq, "avail index too far ahead");
	/* The acquire load above orders the ring entry and descriptor reads after it. */
	head = virtq_load16(&vq->avail->ring[vq->last_avail & (vq->size - 1)]);
	if (head >= vq->size)
		return virtq_fail(vq, "avail ring entry out of range");
	err = virtq_walk_chain(vq, head, elem);
	if (err)
		return virtq_fail(vq, err);
	elem->head = head;
	elem->gen = vq->gen;
	vq->last_avail++;
	pthread_mutex_unlock(&vq->lock);
	return 1;
}

void virtq_unpop(struct virtq *vq, const struct virtq_elem *elem)
{
	pthread_mutex_lock(&vq->lock);
	if (vq->ready && elem->gen == vq->gen)
		vq->last_avail--;
	pthread_mutex_unlock(&vq->lock);
}

int virtq_push(struct virtq *vq, const struct virtq_elem *elem, uint32_t written)
{
	struct vring_used_elem ue;

	pthread_mutex_lock(&vq->lock);
	if (!vq->ready || elem->gen != vq->gen || elem->head >= vq->size) {
		pthread_mutex_unlock(&vq->lock);
		return -ESTALE;
	}
	if (written > elem->in_len)
		written = elem->in_len;
	ue.id = htole32(elem->head);
	ue.len = htole32(written);
	memcpy((void *)&vq->used->ring[vq->used_idx & (vq->size - 1)], &ue, sizeof(ue));
	/* The release store makes the element visible before the index that publishes it. */
	vq->used_idx++;
	virtq_store16_release(&vq->used->idx, vq->used_idx);
	pthread_mutex_unlock(&vq->lock);
	return 0;
}

void virtq_notify(struct virtq *vq)
{
	bool suppress;

	pthread_mutex_lock(&vq->lock);
	if (!vq->ready) {
		pthread_mutex_unlock(&vq->lock);
		return;
	}
	/* Order our used->idx store before reading the driver's flags. */
	atomic_thread_fence(memory_order_seq_cst);
	suppress = virtq_load16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT;
	pthread_mutex_unlock(&vq->lock);
	if (!suppress && vq->signal)
		vq->signal(vq->opaque, vq->index);
}

bool virtq_has_avail(struct virtq *vq)
{
	bool ret;

	pthread_mutex_lock(&vq->lock);
	ret = vq->ready && (vq->broken || virtq_load16(&vq->avail->idx) != vq->last_avail);
	pthread_mutex_unlock(&vq->lock);
	return ret;
}

/**
 * virtq_iov_copy() - copy between a flat buffer and an iovec list, in either direction
 * @iov:	segments (already bounds-checked guest memory)
 * @n:		number of segments
 * @skip:	bytes of the segments to pass over first
 * @buf:	host buffer
 * @len:	bytes to copy at most
 * @to_iov:	true: @buf -> segments; false: segments -> @buf
 *
 * Return: bytes copied.
 */
static size_t virtq_iov_copy(const struct iovec *iov, unsigned int n, size_t skip, void *buf,
			     size_t len, bool to_iov)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		char *seg;
		size_t take;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		seg = (char *)iov[i].iov_base + skip;
		take = iov[i].iov_len - skip;
		if (take > len - done)
			take = len - done;
		if (to_iov)
			memcpy(seg, (char *)buf + done, take);
		else
			memcpy((char *)buf + done, seg, take);
		done += take;
		skip = 0;
	}
	return done;
}

size_t virtq_iov_to_buf(const struct iovec *iov, unsigned int n, size_t skip, void *buf,
			size_t len)
{
	return virtq_iov_copy(iov, n, skip, buf, len, false);
}

size_t virtq_buf_to_iov(const struct iovec *iov, unsigned int n, size_t skip, const void *buf,
			size_t len)
{
	return virtq_iov_copy(iov, n, skip, (void *)(uintptr_t)buf, len, true);
}
