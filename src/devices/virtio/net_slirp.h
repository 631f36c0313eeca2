/* SPDX-License-Identifier: MIT */
/**
 * DOC: virtio-net over libslirp
 *
 * Connects a virtio-net device to a user-mode network (src/net/slirp.h): frames the guest
 * sends go to mvm_slirp_send(), frames slirp produces are delivered with
 * virtio_net_receive() on the slirp thread.  The guest sees 10.0.2.0/24 with DHCP, gateway
 * 10.0.2.2 (the host's loopback only with mvm_slirp_cfg.host_loopback) and DNS 10.0.2.3.
 *
 * Wiring (KVM backend)::
 *
 *	ns = virtio_net_slirp_new(mac, &slirp_cfg);
 *	t = virtio_mmio_new(&virtio_net_ops, virtio_net_slirp_dev(ns), &mem, set_irq, ctx);
 *	...
 *	// teardown, vCPUs stopped: first the adapter (stops the slirp thread), then t
 *	virtio_net_slirp_free(ns);
 *	virtio_mmio_free(t);
 */
#ifndef MVM_DEVICES_VIRTIO_NET_SLIRP_H
#define MVM_DEVICES_VIRTIO_NET_SLIRP_H

#include <stdint.h>

#include "devices/virtio/net.h"
#include "net/slirp.h"

/* The MAC address QEMU gives its first user-mode NIC; fine for a single guest. */
#define VIRTIO_NET_SLIRP_DEFAULT_MAC	{ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }

struct virtio_net_slirp;

/**
 * virtio_net_slirp_new() - a virtio-net device backed by a new slirp instance
 * @mac:	guest MAC address (6 bytes), or NULL for VIRTIO_NET_SLIRP_DEFAULT_MAC
 * @cfg:	slirp parameters (NULL: defaults)
 *
 * Return: the adapter, or NULL with mvm_last_error() set.
 */
struct virtio_net_slirp *virtio_net_slirp_new(const uint8_t *mac, const struct mvm_slirp_cfg *cfg);

/**
 * virtio_net_slirp_dev() - the virtio-net device, for virtio_mmio_new(&virtio_net_ops, ...)
 * @ns:		the adapter
 *
 * Return: the device.
 */
struct virtio_net *virtio_net_slirp_dev(struct virtio_net_slirp *ns);

/**
 * virtio_net_slirp_slirp() - the slirp instance (e.g. for mvm_slirp_add_fwd())
 * @ns:		the adapter
 *
 * Return: the instance.
 */
struct mvm_slirp *virtio_net_slirp_slirp(struct virtio_net_slirp *ns);

/**
 * virtio_net_slirp_free() - stop slirp, then free the device (before its transport)
 * @ns:		the adapter, or NULL
 */
void virtio_net_slirp_free(struct virtio_net_slirp *ns);

#endif
