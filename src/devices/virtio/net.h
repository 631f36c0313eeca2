/* SPDX-License-Identifier: MIT */
/**
 * DOC: virtio-net device
 *
 * virtio-net (device id 1) with one RX and one TX queue, a MAC address and a link-status
 * word in config space, and no offloads: no checksum offload, no TSO/GSO, no mergeable RX
 * buffers, so every frame is a complete Ethernet frame behind a 12-byte virtio_net_hdr_v1
 * that we strip on TX and write (zeroed, num_buffers = 1) on RX.
 *
 * Like kvmtool's net device, the device talks to a back end through an ops table:
 * @send takes a frame from the guest, and the back end delivers frames for the guest with
 * virtio_net_receive() from any thread.  Without an RX buffer a frame is dropped and counted
 * (as a NIC would; TCP recovers).  Frames that do not fit (longer than VIRTIO_NET_MAX_FRAME or
 * than the guest's buffer) are dropped and counted, never truncated.
 */
#ifndef MVM_DEVICES_VIRTIO_NET_H
#define MVM_DEVICES_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_net.h>

#include "devices/virtio/virtio.h"

/* Largest Ethernet frame (without the virtio header) carried in either direction. */
#define VIRTIO_NET_MAX_FRAME	65550
/* Size of the virtio_net_hdr_v1 in front of every frame (VERSION_1 always has num_buffers). */
#define VIRTIO_NET_HDR_LEN	12
#define VIRTIO_NET_RXQ		0
#define VIRTIO_NET_TXQ		1

/* The device's ops; its context is a struct virtio_net from virtio_net_new(). */
extern const struct virtio_dev_ops virtio_net_ops;

struct virtio_net;

/**
 * struct virtio_net_backend_ops - where the guest's frames go
 * @send:	a frame from the guest (vCPU thread; must not block; the frame is only valid
 *		during the call).  Return 0, or -errno if dropped (counted as tx_dropped).
 */
struct virtio_net_backend_ops {
	int (*send)(void *be, const void *frame, size_t len);
};

/**
 * struct virtio_net_stats - counters (monotonic since creation)
 * @rx_frames:		frames delivered to the guest
 * @rx_no_buffer:	frames dropped: no RX buffer posted (or driver not ready)
 * @rx_oversize:	frames dropped: larger than VIRTIO_NET_MAX_FRAME or the RX buffer
 * @tx_frames:		frames handed to the back end
 * @tx_dropped:		frames the back end refused (or no back end)
 * @tx_errors:		malformed TX chains: short header, offload requested, oversized
 */
struct virtio_net_stats {
	uint64_t rx_frames;
	uint64_t rx_no_buffer;
	uint64_t rx_oversize;
	uint64_t tx_frames;
	uint64_t tx_dropped;
	uint64_t tx_errors;
};

/**
 * virtio_net_new() - allocate a virtio-net device
 * @mac:	the guest's MAC address (6 bytes)
 * @be_ops:	back end ops, or NULL (TX frames are then dropped)
 * @be:		back end context passed to @be_ops
 *
 * Return: the device (pass it with &virtio_net_ops to virtio_mmio_new()), or NULL with
 * mvm_last_error() set.
 */
struct virtio_net *virtio_net_new(const uint8_t mac[6], const struct virtio_net_backend_ops *be_ops,
				  void *be);

/**
 * virtio_net_receive() - deliver a frame to the guest (any thread)
 * @n:		the device
 * @frame:	Ethernet frame without FCS (copied before return)
 * @len:	its length
 *
 * Return: 0 if delivered; -EAGAIN if dropped for lack of an RX buffer or because the driver
 * is not running; -EMSGSIZE if too big (dropped); -EIO if the RX ring is broken (dropped).
 */
int virtio_net_receive(struct virtio_net *n, const void *frame, size_t len);

/**
 * virtio_net_get_stats() - read the counters
 * @n:		the device
 * @st:		filled with a consistent snapshot
 */
void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *st);

/**
 * virtio_net_free() - free the device; nothing may call virtio_net_receive() any more, and
 * the transport must not be used afterwards except to be freed
 * @n:		the device, or NULL
 */
void virtio_net_free(struct virtio_net *n);

#endif
