/* SPDX-License-Identifier: MIT */
/*
 * devices.c - which virtio-mmio devices a KVM guest gets, and how they are wired.
 *
 * Theory of operation
 * -------------------
 * kvm_devices_add() is the one place to add a device: it calls kvm_virtio_add() with the
 * device's ops and context.  That puts a virtio-mmio transport (devices/virtio/mmio.c) over
 * the device in the next MMIO slot (0xd0000000 + i * 0x1000) with IRQ 5 + i; the slot's
 * "virtio_mmio.device=4K@0x...:IRQ" token on the kernel command line and its level-triggered
 * entry in the MP table follow from that (vm.c builds both after this function).  MMIO exits in
 * the slot go to virtio_mmio_read()/virtio_mmio_write(); the transport drives the line with
 * KVM_IRQ_LINE as a level (1 while InterruptStatus is non-zero).
 *
 * Devices: virtio-rng (always, first), virtio-vsock (always), virtio-net over libslirp (when
 * kvm->cfg.net; guest 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3, no root needed).
 *
 * Order matters for the guest's device names, not for correctness: virtio-rng is always first.
 *
 * Teardown (kvm_virtio_free(), vCPUs stopped): the device's owner first -- it stops the
 * device's own thread (vsock's, slirp's) so nothing touches the queues any more -- then the
 * transport, which holds the queues.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "devices/virtio/net_slirp.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/vsock.h"
#include "kvm/kvm.h"
#include "runtime/error.h"

/**
 * struct kvm_virtio - one virtio device in an MMIO slot
 * @kvm:	the VM
 * @irq:	its interrupt line
 * @t:		the transport
 * @dev:	the device context
 * @owner:	what owns @dev (often @dev itself; the adapter for virtio-net over slirp)
 * @dev_free:	frees @owner, before the transport (may be NULL)
 */
struct kvm_virtio {
	struct kvm_vm *kvm;
	unsigned int irq;
	struct virtio_mmio_dev *t;
	void *dev;
	void *owner;
	void (*dev_free)(void *owner);
};

static void kvm_virtio_irq(void *opaque, int level)
{
	struct kvm_virtio *v = opaque;

	kvm_irq_line(v->kvm, v->irq, level);
}

static void kvm_virtio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			      int is_write)
{
	struct kvm_virtio *v = opaque;

	if (is_write)
		virtio_mmio_write(v->t, offset, data, len);
	else
		virtio_mmio_read(v->t, offset, data, len);
}

static void kvm_virtio_free(void *opaque)
{
	struct kvm_virtio *v = opaque;

	/* the device first: a device with its own thread (vsock) must stop using the queues,
	 * which live in the transport, before the transport goes */
	if (v->dev_free)
		v->dev_free(v->owner);
	virtio_mmio_free(v->t);
	free(v);
}

/**
 * kvm_virtio_add_owned() - put a virtio device in the next MMIO slot, owned by another object
 * @kvm:	the VM
 * @ops:	the device's ops
 * @dev:	the device context for @ops
 * @owner:	what owns @dev; on success the VM owns it and frees it with @owner_free
 * @owner_free:	how to free @owner (may be NULL); on failure @owner is freed too
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int kvm_virtio_add_owned(struct kvm_vm *kvm, const struct virtio_dev_ops *ops, void *dev,
				void *owner, void (*owner_free)(void *owner))
{
	struct kvm_virtio *v;
	int ret;

	if (!dev) {
		ret = mvm_set_error(-ENOMEM, "cannot create the %s device", ops->name);
		goto err_dev;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		ret = mvm_set_error(-ENOMEM, "out of memory");
		goto err_dev;
	}
	v->kvm = kvm;
	v->dev = dev;
	v->owner = owner;
	v->dev_free = owner_free;
	v->t = virtio_mmio_new(ops, dev, &kvm->gmem, kvm_virtio_irq, v);
	if (!v->t) {
		ret = -ENOMEM;
		goto err_v;
	}
	ret = kvm_add_mmio(kvm, kvm_virtio_access, v, kvm_virtio_free, &v->irq, NULL);
	if (ret < 0)
		goto err_t;
	return 0;

err_t:
	virtio_mmio_free(v->t);
err_v:
	free(v);
err_dev:
	if (owner && owner_free)
		owner_free(owner);
	return ret;
}

/**
 * kvm_virtio_add() - put a virtio device in the next MMIO slot
 * @kvm:	the VM
 * @ops:	the device's ops
 * @dev:	its context; on success the VM owns it and frees it with @dev_free
 * @dev_free:	how to free @dev (may be NULL); on failure @dev is freed too
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_virtio_add(struct kvm_vm *kvm, const struct virtio_dev_ops *ops, void *dev,
		   void (*dev_free)(void *dev))
{
	return kvm_virtio_add_owned(kvm, ops, dev, dev, dev_free);
}

static void kvm_rng_free(void *dev)
{
	virtio_rng_free(dev);
}

static void kvm_vsock_free(void *dev)
{
	vsock_virtio_free(dev);	/* also frees the client and the Unix socket bridge */
}

/**
 * kvm_vsock_add() - the virtio-vsock device for kvm->cfg.guest_cid, the VM's vsock client
 * over it (kvm->vsock, owned by the device) and the --vsock-uds bridge if asked for
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int kvm_vsock_add(struct kvm_vm *kvm)
{
	struct vsock_virtio *v;
	int ret;

	v = vsock_virtio_new(kvm->cfg.guest_cid ? kvm->cfg.guest_cid : VSOCK_DEFAULT_GUEST_CID);
	if (!v)
		return -EINVAL;
	if (kvm->cfg.vsock_uds_path) {
		ret = vsock_virtio_bridge(v, kvm->cfg.vsock_uds_path);
		if (ret < 0) {
			vsock_virtio_free(v);
			return ret;
		}
	}
	kvm->vsock = vsock_virtio_client(v);
	if (!kvm->vsock) {
		vsock_virtio_free(v);
		return -ENOMEM;
	}
	ret = kvm_virtio_add(kvm, &vsock_virtio_ops, v, kvm_vsock_free);
	if (ret < 0)
		kvm->vsock = NULL;	/* freed with the device */
	return ret;
}

static void kvm_net_free(void *owner)
{
	virtio_net_slirp_free(owner);	/* stops the slirp thread, then frees the device */
}

/**
 * kvm_net_add() - virtio-net over a new libslirp instance (guest 10.0.2.15/24, gateway
 * 10.0.2.2, DNS 10.0.2.3; MAC VIRTIO_NET_SLIRP_DEFAULT_MAC)
 * @kvm:	the VM
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int kvm_net_add(struct kvm_vm *kvm)
{
	struct mvm_slirp_cfg scfg;
	struct virtio_net_slirp *ns;

	mvm_slirp_cfg_init(&scfg);
	scfg.host_loopback = kvm->cfg.net_host_loopback;
	ns = virtio_net_slirp_new(NULL, &scfg);
	if (!ns)
		return -EIO;	/* mvm_last_error() says why */
	return kvm_virtio_add_owned(kvm, &virtio_net_ops, virtio_net_slirp_dev(ns), ns,
				    kvm_net_free);
}

/**
 * kvm_devices_stats() - the devices' statistics as "name: value" lines
 * @kvm:	the VM
 * @buf:	where the text goes
 * @len:	size of @buf
 *
 * Return: the length of the whole text (snprintf-style).
 */
int kvm_devices_stats(struct kvm_vm *kvm, char *buf, size_t len)
{
	return snprintf(buf, len, "virtio-rng: %llu bytes\n",
			(unsigned long long)virtio_rng_bytes(kvm->rng));
}

/**
 * kvm_devices_add() - create the VM's virtio devices
 * @kvm:	the VM (memory mapped and kvm->gmem filled, nothing loaded yet)
 *
 * Add a device here with one kvm_virtio_add() call: rng; vsock for kvm->cfg.guest_cid and
 * kvm->cfg.vsock_uds_path; net (libslirp) when kvm->cfg.net.
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_devices_add(struct kvm_vm *kvm)
{
	struct virtio_rng *rng = virtio_rng_new();
	int ret;

	ret = kvm_virtio_add(kvm, &virtio_rng_ops, rng, kvm_rng_free);
	if (ret < 0)
		return ret;
	kvm->rng = rng;
	ret = kvm_vsock_add(kvm);
	if (ret < 0)
		return ret;
	if (kvm->cfg.net)
		ret = kvm_net_add(kvm);
	return ret;
}
