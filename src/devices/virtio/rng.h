/* SPDX-License-Identifier: MIT */
/* virtio-rng (device id 4): fills the driver's writable buffers with getrandom() bytes. */
#ifndef MVM_DEVICES_VIRTIO_RNG_H
#define MVM_DEVICES_VIRTIO_RNG_H

#include "devices/virtio/virtio.h"

/* The device's ops; its context is a struct virtio_rng from virtio_rng_new(). */
extern const struct virtio_dev_ops virtio_rng_ops;

struct virtio_rng;

/**
 * virtio_rng_new() - allocate an rng device
 *
 * Return: the device (pass it with &virtio_rng_ops to virtio_mmio_new()), or NULL.
 */
struct virtio_rng *virtio_rng_new(void);

/**
 * virtio_rng_free() - free an rng device (after its transport)
 * @rng:	the device, or NULL
 */
void virtio_rng_free(struct virtio_rng *rng);

/**
 * virtio_rng_bytes() - random bytes given to the guest so far (safe from any thread)
 * @rng:	the device, or NULL (0)
 *
 * Return: the byte count.
 */
uint64_t virtio_rng_bytes(struct virtio_rng *rng);

#endif
