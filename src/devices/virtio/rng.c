/* SPDX-License-Identifier: MIT */
/* rng.c - virtio-rng (device id 4): one queue; every writable buffer is filled from
 * getrandom().  The whole device runs on the vCPU thread that kicks the queue. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/random.h>

#include "devices/virtio/rng.h"

/* Bytes given per request at most; the driver asks again for more. */
#define VIRTIO_RNG_CHUNK	4096

/**
 * struct virtio_rng - the device
 * @elem:	scratch element (too big for the stack of a vCPU thread)
 * @bytes:	bytes served so far, read by virtio_rng_bytes() from any thread
 */
struct virtio_rng {
	struct virtq_elem elem;
	_Atomic uint64_t bytes;
};

/* Fill @elem's writable segments with random bytes; return bytes written. */
static uint32_t virtio_rng_fill(struct virtq_elem *elem)
{
	uint32_t done = 0;
	unsigned int i;

	for (i = 0; i < elem->in_num && done < VIRTIO_RNG_CHUNK; i++) {
		size_t want = elem->in[i].iov_len;
		ssize_t n;

		if (want > VIRTIO_RNG_CHUNK - done)
			want = VIRTIO_RNG_CHUNK - done;
		n = getrandom(elem->in[i].iov_base, want, 0);
		if (n < 0 && errno == EINTR)
			n = getrandom(elem->in[i].iov_base, want, 0);
		if (n <= 0)
			break;
		done += (uint32_t)n;
		if ((size_t)n < want)
			break;
	}
	return done;
}

/**
 * virtio_rng_notify() - the driver posted buffers: fill and return all of them
 * @dev:	the device
 * @vq:		its request queue
 * @qidx:	0
 */
static void virtio_rng_notify(void *dev, struct virtq *vq, unsigned int qidx)
{
	struct virtio_rng *rng = dev;
	bool pushed = false;

	(void)qidx;
	while (virtq_pop(vq, &rng->elem) > 0) {
		uint32_t n = virtio_rng_fill(&rng->elem);

		atomic_fetch_add(&rng->bytes, n);
		virtq_push(vq, &rng->elem, n);
		pushed = true;
	}
	if (pushed)
		virtq_notify(vq);
}

const struct virtio_dev_ops virtio_rng_ops = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.features = 0,
	.num_queues = 1,
	.queue_max = 256,
	.config_size = 0,
	.queue_notify = virtio_rng_notify,
};

struct virtio_rng *virtio_rng_new(void)
{
	return calloc(1, sizeof(struct virtio_rng));
}

void virtio_rng_free(struct virtio_rng *rng)
{
	free(rng);
}

uint64_t virtio_rng_bytes(struct virtio_rng *rng)
{
	return rng ? atomic_load(&rng->bytes) : 0;
}
