/* SPDX-License-Identifier: MIT */
/* net_slirp.c - virtio-net back end over libslirp: two callbacks and the lifetime rules.
 * The slirp thread calls virtio_net_receive() directly; the vCPU thread's TX calls
 * mvm_slirp_send(), which copies and never blocks.  Teardown stops the slirp thread before
 * the device is freed, so no frame can arrive at a dead device. */
#include <errno.h>
#include <stdlib.h>

#include "devices/virtio/net_slirp.h"
#include "runtime/error.h"

/**
 * struct virtio_net_slirp - the adapter
 * @net:	the virtio-net device
 * @slirp:	its back end
 */
struct virtio_net_slirp {
	struct virtio_net *net;
	struct mvm_slirp *slirp;
};

/* virtio-net back end op: a frame from the guest. */
static int virtio_net_slirp_send(void *be, const void *frame, size_t len)
{
	struct virtio_net_slirp *ns = be;

	return mvm_slirp_send(ns->slirp, frame, len);
}

static const struct virtio_net_backend_ops virtio_net_slirp_ops = {
	.send = virtio_net_slirp_send,
};

/* slirp rx callback (slirp thread): a frame for the guest; drops are counted by the device. */
static void virtio_net_slirp_rx(void *opaque, const uint8_t *frame, size_t len)
{
	struct virtio_net_slirp *ns = opaque;

	virtio_net_receive(ns->net, frame, len);
}

struct virtio_net_slirp *virtio_net_slirp_new(const uint8_t *mac, const struct mvm_slirp_cfg *cfg)
{
	static const uint8_t default_mac[6] = VIRTIO_NET_SLIRP_DEFAULT_MAC;
	struct virtio_net_slirp *ns = calloc(1, sizeof(*ns));

	if (!ns) {
		mvm_set_error(-ENOMEM, "virtio-net: out of memory");
		return NULL;
	}
	/* The device first: slirp may deliver a frame as soon as its thread runs. */
	ns->net = virtio_net_new(mac ? mac : default_mac, &virtio_net_slirp_ops, ns);
	if (!ns->net)
		goto err;
	ns->slirp = mvm_slirp_new(cfg, virtio_net_slirp_rx, ns);
	if (!ns->slirp)
		goto err_net;
	return ns;

err_net:
	virtio_net_free(ns->net);
err:
	free(ns);
	return NULL;
}

struct virtio_net *virtio_net_slirp_dev(struct virtio_net_slirp *ns)
{
	return ns->net;
}

struct mvm_slirp *virtio_net_slirp_slirp(struct virtio_net_slirp *ns)
{
	return ns->slirp;
}

void virtio_net_slirp_free(struct virtio_net_slirp *ns)
{
	if (!ns)
		return;
	mvm_slirp_free(ns->slirp);
	virtio_net_free(ns->net);
	free(ns);
}
