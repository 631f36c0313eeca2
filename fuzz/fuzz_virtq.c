/* SPDX-License-Identifier: MIT */
/**
 * fuzz_virtq.c - libFuzzer target for everything a guest controls in virtio
 *
 * Input layout: byte 0 selects the mode and options, the rest is split in two.
 *
 * Mode 0 (rings): byte 1 picks the queue size (a power of two up to 256), byte 2 flags (bit 0
 * indirect negotiated, bit 1 unpop some), bytes 3..8 the descriptor, avail and used ring
 * offsets in RAM (u16 little endian each), then guest RAM contents (RAM at 0x10000, 64 KiB,
 * then a second 4 KiB region at 0x30000, so ranges can straddle a hole).  The
 * target pops every chain it can (touching every byte of every segment so ASan sees any bad
 * pointer), pushes some back with fuzz-chosen lengths, unpops some, and stops on -EIO.
 *
 * Modes 1 and 2 (registers): guest RAM is filled from the input tail and a device is attached
 * to a real transport (mode 1 virtio-rng, mode 2 virtio-net with a back end that accepts
 * everything); byte 1 counts 7-byte MMIO accesses {op, offset lo/hi, value x4} that follow,
 * so the status machine, queue setup and the device data paths (rng fill, net TX header
 * parsing) run against arbitrary register writes and ring contents.  In mode 2 the first
 * bytes of RAM are then also delivered as a received frame, exercising the RX path.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "devices/guest_mem.h"
#include "devices/virtio/net.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/virtio.h"

#define RAM_GPA		0x10000ull
#define RAM_SIZE	0x10000u
#define RAM2_GPA	0x30000ull
#define RAM2_SIZE	0x1000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static _Alignas(4096) unsigned char ram[RAM_SIZE];
static _Alignas(4096) unsigned char ram2[RAM2_SIZE];
static struct virtq_elem elem;
/* Keeps the reads in touch() from being optimised away. */
volatile unsigned int fuzz_virtq_sink;

static void setup_mem(struct mvm_gmem *gm, const uint8_t *data, size_t size)
{
	memset(ram, 0, sizeof(ram));
	memset(ram2, 0, sizeof(ram2));
	memcpy(ram, data, size < sizeof(ram) ? size : sizeof(ram));
	if (size > sizeof(ram))
		memcpy(ram2, data + sizeof(ram),
		       size - sizeof(ram) < sizeof(ram2) ? size - sizeof(ram) : sizeof(ram2));
	mvm_gmem_init(gm);
	mvm_gmem_add(gm, RAM_GPA, RAM_SIZE, ram);
	mvm_gmem_add(gm, RAM2_GPA, RAM2_SIZE, ram2);
}

/* Read every byte and write every writable byte: ASan flags any pointer outside RAM. */
static unsigned int touch(const struct virtq_elem *e)
{
	unsigned int i, sum = 0;

	for (i = 0; i < e->out_num; i++) {
		const unsigned char *p = e->out[i].iov_base;
		size_t j;

		for (j = 0; j < e->out[i].iov_len; j++)
			sum += p[j];
	}
	for (i = 0; i < e->in_num; i++)
		memset(e->in[i].iov_base, 0xa5, e->in[i].iov_len);
	return sum;
}

static void fuzz_rings(const uint8_t *data, size_t size)
{
	struct mvm_gmem gm;
	struct virtq vq;
	unsigned int n, flags;
	int rc, rounds = 0;

	if (size < 9)
		return;
	n = 1u << (data[1] % 9);				/* 1..256 */
	flags = data[2];
	setup_mem(&gm, data + 9, size - 9);
	if (virtq_init(&vq, &gm, 0, 256))
		return;
	vq.size = (uint16_t)n;
	vq.desc_gpa = RAM_GPA + (data[3] | data[4] << 8);
	vq.avail_gpa = RAM_GPA + (data[5] | data[6] << 8);
	vq.used_gpa = RAM_GPA + (data[7] | data[8] << 8);
	if (virtq_enable(&vq))
		goto out;
	vq.indirect = flags & 1;
	while (rounds++ < 512 && (rc = virtq_pop(&vq, &elem)) > 0) {
		fuzz_virtq_sink += touch(&elem);
		if ((flags & 2) && (rounds & 3) == 1)
			virtq_unpop(&vq, &elem);
		else
			virtq_push(&vq, &elem, (uint32_t)rounds * 37u);
	}
	virtq_notify(&vq);
	(void)virtq_has_avail(&vq);
out:
	virtq_destroy(&vq);
}

static int accept_frame(void *be, const void *frame, size_t len)
{
	(void)be;
	fuzz_virtq_sink += len ? ((const unsigned char *)frame)[len - 1] : 0;
	return 0;
}

static const struct virtio_net_backend_ops accept_ops = { .send = accept_frame };

/* Replay the MMIO accesses in @ops (7 bytes each) against @t. */
static void replay(struct virtio_mmio_dev *t, const uint8_t *ops, size_t n)
{
	size_t i;

	for (i = 0; i + 7 <= n; i += 7) {
		uint64_t off = (uint64_t)ops[i + 1] | (uint64_t)(ops[i + 2] & 0x0f) << 8;
		unsigned int len = 1u << (ops[i] >> 1 & 3);
		uint64_t v = 0;

		memcpy(&v, ops + i + 3, 4);
		if (!(ops[i] & 0x20))
			len = 4;
		if (ops[i] & 1)
			virtio_mmio_write(t, off, &v, len);
		else
			virtio_mmio_read(t, off, &v, len);
	}
}

static void fuzz_registers(const uint8_t *data, size_t size, bool net)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 1 };
	const struct virtio_dev_ops *ops = net ? &virtio_net_ops : &virtio_rng_ops;
	struct virtio_mmio_dev *t;
	struct mvm_gmem gm;
	size_t nops = size > 1 ? (size_t)data[1] * 7 : 0;
	void *dev;

	data += 2;
	size = size > 2 ? size - 2 : 0;
	if (nops > size)
		nops = size - size % 7;
	setup_mem(&gm, data + nops, size - nops);
	dev = net ? (void *)virtio_net_new(mac, &accept_ops, NULL) : (void *)virtio_rng_new();
	if (!dev)
		return;
	t = virtio_mmio_new(ops, dev, &gm, NULL, NULL);
	if (t) {
		replay(t, data, nops);
		if (net) {
			/* Frames come from the back end (host memory), never from guest RAM. */
			static uint8_t frame[4096];
			size_t flen = ((size_t)ram[0] << 4 | ram[1]) % sizeof(frame);

			memcpy(frame, ram, flen);
			virtio_net_receive(dev, frame, flen);
		}
		virtio_mmio_free(t);
	}
	if (net)
		virtio_net_free(dev);
	else
		virtio_rng_free(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_rings(data, size);
		break;
	case 1:
		fuzz_registers(data, size, false);
		break;
	default:
		fuzz_registers(data, size, true);
		break;
	}
	return 0;
}
