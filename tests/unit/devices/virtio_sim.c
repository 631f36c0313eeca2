/* SPDX-License-Identifier: MIT */
/* virtio_sim.c - simulated guest driver for device unit tests (see virtio_sim.h). */
#include <endian.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "virtio_sim.h"

/* Interrupt line callback: record the level and count rising edges. */
static void vsim_set_irq(void *opaque, int level)
{
	struct vsim *s = opaque;

	if (level && !s->irq_level)
		s->irq_raises++;
	s->irq_level = level;
}

int vsim_init(struct vsim *s, size_t ram_size)
{
	memset(s, 0, sizeof(*s));
	s->ram_size = ram_size ? ram_size : VSIM_DEFAULT_RAM;
	s->ram = aligned_alloc(4096, s->ram_size);
	if (!s->ram)
		return -1;
	memset(s->ram, 0, s->ram_size);
	s->brk = 4096;		/* keep gpa VSIM_RAM_GPA itself unused */
	mvm_gmem_init(&s->mem);
	return mvm_gmem_add(&s->mem, VSIM_RAM_GPA, s->ram_size, s->ram) ? -1 : 0;
}

int vsim_attach(struct vsim *s, const struct virtio_dev_ops *ops, void *dev)
{
	s->t = virtio_mmio_new(ops, dev, &s->mem, vsim_set_irq, s);
	return s->t ? 0 : -1;
}

void vsim_fini(struct vsim *s)
{
	virtio_mmio_free(s->t);
	free(s->ram);
	memset(s, 0, sizeof(*s));
}

uint32_t vsim_read32(struct vsim *s, uint64_t off)
{
	uint32_t v;

	virtio_mmio_read(s->t, off, &v, 4);
	return le32toh(v);
}

void vsim_write32(struct vsim *s, uint64_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	virtio_mmio_write(s->t, off, &v, 4);
}

uint64_t vsim_alloc(struct vsim *s, size_t size, size_t align)
{
	size_t at = (s->brk + align - 1) & ~(align - 1);

	if (at > s->ram_size || size > s->ram_size - at)
		return 0;
	s->brk = at + size;
	memset(s->ram + at, 0, size);
	return VSIM_RAM_GPA + at;
}

void *vsim_ptr(struct vsim *s, uint64_t gpa)
{
	return mvm_gmem_ptr(&s->mem, gpa, 1);
}

uint32_t vsim_negotiate(struct vsim *s, uint64_t features, bool raw)
{
	uint32_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	if (!raw)
		features |= 1ull << VIRTIO_F_VERSION_1;
	vsim_write32(s, VIRTIO_MMIO_STATUS, 0);
	memset(s->q, 0, sizeof(s->q));
	vsim_write32(s, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vsim_write32(s, VIRTIO_MMIO_STATUS, st);
	vsim_write32(s, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vsim_write32(s, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	vsim_write32(s, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vsim_write32(s, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	vsim_write32(s, VIRTIO_MMIO_STATUS, st | VIRTIO_CONFIG_S_FEATURES_OK);
	return vsim_read32(s, VIRTIO_MMIO_STATUS);
}

int vsim_setup_queue(struct vsim *s, unsigned int qidx, uint16_t size)
{
	struct vsim_queue *q;
	unsigned int i;

	if (qidx >= VIRTIO_MAX_QUEUES)
		return -1;
	q = &s->q[qidx];
	vsim_write32(s, VIRTIO_MMIO_QUEUE_SEL, qidx);
	if (!size)
		size = (uint16_t)vsim_read32(s, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (!size)
		return -1;
	q->desc_gpa = vsim_alloc(s, 16u * size, 16);
	q->avail_gpa = vsim_alloc(s, 6u + 2u * size, 2);
	q->used_gpa = vsim_alloc(s, 6u + 8u * size, 4);
	if (!q->desc_gpa || !q->avail_gpa || !q->used_gpa)
		return -1;
	q->size = size;
	q->desc = vsim_ptr(s, q->desc_gpa);
	q->avail = vsim_ptr(s, q->avail_gpa);
	q->used = vsim_ptr(s, q->used_gpa);
	q->avail_idx = q->used_seen = 0;
	for (i = 0; i < size; i++)
		q->desc[i].next = htole16((uint16_t)(i + 1));
	q->free_head = 0;
	q->num_free = size;
	vsim_write32(s, VIRTIO_MMIO_QUEUE_NUM, size);
	vsim_write32(s, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc_gpa);
	vsim_write32(s, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(q->desc_gpa >> 32));
	vsim_write32(s, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)q->avail_gpa);
	vsim_write32(s, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(q->avail_gpa >> 32));
	vsim_write32(s, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)q->used_gpa);
	vsim_write32(s, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(q->used_gpa >> 32));
	vsim_write32(s, VIRTIO_MMIO_QUEUE_READY, 1);
	return (int)vsim_read32(s, VIRTIO_MMIO_QUEUE_READY);
}

uint32_t vsim_driver_ok(struct vsim *s)
{
	uint32_t st = vsim_read32(s, VIRTIO_MMIO_STATUS);

	vsim_write32(s, VIRTIO_MMIO_STATUS, st | VIRTIO_CONFIG_S_DRIVER_OK);
	return vsim_read32(s, VIRTIO_MMIO_STATUS);
}

int vsim_start(struct vsim *s, uint64_t features, uint16_t size)
{
	unsigned int i;

	if (!(vsim_negotiate(s, features, false) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -1;
	for (i = 0; i < VIRTIO_MAX_QUEUES && virtio_mmio_queue(s->t, i); i++)
		if (vsim_setup_queue(s, i, size) != 1)
			return -1;
	if (!(vsim_driver_ok(s) & VIRTIO_CONFIG_S_DRIVER_OK))
		return -1;
	return 0;
}

/* Fill descriptor @d with a buffer; copy @data in if given, else leave it zeroed. */
static int vsim_fill(struct vsim *s, struct vring_desc *d, const void *data, size_t len,
		     bool writable)
{
	uint64_t gpa = vsim_alloc(s, len ? len : 1, 8);

	if (!gpa)
		return -1;
	if (data)
		memcpy(vsim_ptr(s, gpa), data, len);
	d->addr = htole64(gpa);
	d->len = htole32((uint32_t)len);
	d->flags = htole16(writable ? VRING_DESC_F_WRITE : 0);
	return 0;
}

/* Build the chain in an indirect table hanging off one ring descriptor. */
static int vsim_post_indirect(struct vsim *s, struct vsim_queue *q, const struct iovec *out,
			      unsigned int nout, const size_t *in_lens, unsigned int nin)
{
	unsigned int n = nout + nin, i;
	uint64_t tbl = vsim_alloc(s, 16u * n, 16);
	struct vring_desc *t = tbl ? vsim_ptr(s, tbl) : NULL;
	uint16_t head = q->free_head;

	if (!t || !n || !q->num_free)
		return -1;
	for (i = 0; i < n; i++) {
		int rc = i < nout ? vsim_fill(s, &t[i], out[i].iov_base, out[i].iov_len, false)
				  : vsim_fill(s, &t[i], NULL, in_lens[i - nout], true);

		if (rc)
			return -1;
		if (i + 1 < n) {
			t[i].flags |= htole16(VRING_DESC_F_NEXT);
			t[i].next = htole16((uint16_t)(i + 1));
		}
	}
	q->free_head = le16toh(q->desc[head].next);
	q->num_free--;
	q->desc[head].addr = htole64(tbl);
	q->desc[head].len = htole32(16u * n);
	q->desc[head].flags = htole16(VRING_DESC_F_INDIRECT);
	vsim_publish(s, (unsigned int)(q - s->q), head);
	return head;
}

int vsim_post(struct vsim *s, unsigned int qidx, const struct iovec *out, unsigned int nout,
	      const size_t *in_lens, unsigned int nin)
{
	struct vsim_queue *q;
	unsigned int n = nout + nin, i;
	uint16_t head, cur;

	if (qidx >= VIRTIO_MAX_QUEUES || !s->q[qidx].size || !n)
		return -1;
	q = &s->q[qidx];
	if (s->use_indirect)
		return vsim_post_indirect(s, q, out, nout, in_lens, nin);
	if (n > q->num_free)
		return -1;
	head = cur = q->free_head;
	for (i = 0; i < n; i++) {
		struct vring_desc *d = &q->desc[cur];
		uint16_t next = le16toh(d->next);
		int rc = i < nout ? vsim_fill(s, d, out[i].iov_base, out[i].iov_len, false)
				  : vsim_fill(s, d, NULL, in_lens[i - nout], true);

		if (rc)
			return -1;
		d->next = htole16(next);
		if (i + 1 < n)
			d->flags |= htole16(VRING_DESC_F_NEXT);
		else
			q->free_head = next;
		cur = next;
	}
	q->num_free -= n;
	vsim_publish(s, qidx, head);
	return head;
}

void vsim_publish(struct vsim *s, unsigned int qidx, uint16_t head)
{
	struct vsim_queue *q = &s->q[qidx];

	q->avail->ring[q->avail_idx % q->size] = htole16(head);
	q->avail_idx++;
	__atomic_store_n(&q->avail->idx, htole16(q->avail_idx), __ATOMIC_RELEASE);
}

void vsim_kick(struct vsim *s, unsigned int qidx)
{
	vsim_write32(s, VIRTIO_MMIO_QUEUE_NOTIFY, qidx);
}

unsigned int vsim_used_pending(struct vsim *s, unsigned int qidx)
{
	struct vsim_queue *q = &s->q[qidx];
	uint16_t idx;

	if (!q->size)
		return 0;
	idx = le16toh(__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE));
	return (uint16_t)(idx - q->used_seen);
}

/* Copy the writable buffers of the chain at @d[@i] (table of @tsize) into @buf. */
static size_t vsim_gather(struct vsim *s, const struct vring_desc *d, uint16_t tsize,
			  uint16_t i, void *buf, size_t want)
{
	size_t done = 0;
	unsigned int steps = 0;

	while (i < tsize && steps++ < tsize) {
		uint16_t flags = le16toh(d[i].flags);
		uint32_t len = le32toh(d[i].len);

		if ((flags & VRING_DESC_F_WRITE) && done < want) {
			size_t take = len < want - done ? len : want - done;
			void *p = mvm_gmem_ptr(&s->mem, le64toh(d[i].addr), take);

			if (p && buf)
				memcpy((char *)buf + done, p, take);
			done += take;
		}
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		i = le16toh(d[i].next);
	}
	return done;
}

/* Return the chain at @head to the free list. */
static void vsim_free_chain(struct vsim_queue *q, uint16_t head)
{
	uint16_t i = head;
	unsigned int n = 1;

	while ((le16toh(q->desc[i].flags) & VRING_DESC_F_NEXT) && n < q->size) {
		i = le16toh(q->desc[i].next) % q->size;
		n++;
	}
	q->desc[i].next = htole16(q->free_head);
	q->free_head = head;
	q->num_free = (uint16_t)(q->num_free + n);
}

int vsim_used(struct vsim *s, unsigned int qidx, uint32_t *len, void *buf, size_t buflen)
{
	struct vsim_queue *q = &s->q[qidx];
	struct vring_used_elem e;
	struct vring_desc *d;
	uint32_t id, l;

	if (!vsim_used_pending(s, qidx))	/* acquire: the entry is visible */
		return -1;
	e = q->used->ring[q->used_seen % q->size];
	q->used_seen++;
	id = le32toh(e.id);
	l = le32toh(e.len);
	if (id >= q->size)
		return -1;
	if (len)
		*len = l;
	d = &q->desc[id];
	if (le16toh(d->flags) & VRING_DESC_F_INDIRECT) {
		struct vring_desc *t = mvm_gmem_ptr(&s->mem, le64toh(d->addr), le32toh(d->len));

		if (t)
			vsim_gather(s, t, (uint16_t)(le32toh(d->len) / 16), 0, buf,
				    l < buflen ? l : buflen);
	} else {
		vsim_gather(s, q->desc, q->size, (uint16_t)id, buf, l < buflen ? l : buflen);
	}
	vsim_free_chain(q, (uint16_t)id);
	return (int)id;
}

uint32_t vsim_ack(struct vsim *s)
{
	uint32_t isr = vsim_read32(s, VIRTIO_MMIO_INTERRUPT_STATUS);

	vsim_write32(s, VIRTIO_MMIO_INTERRUPT_ACK, isr);
	return isr;
}

struct vring_desc *vsim_desc(struct vsim *s, unsigned int qidx, uint16_t i)
{
	return &s->q[qidx].desc[i % s->q[qidx].size];
}
