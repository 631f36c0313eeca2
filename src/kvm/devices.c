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
 * Order matters for the guest's device names, not for correctness: virtio-rng is always first.
 */
#include <errno.h>
#include <stdlib.h>

#include "devices/virtio/rng.h"
#include "devices/virtio/virtio.h"
#include "kvm/kvm.h"
#include "runtime/error.h"

/**
 * struct kvm_virtio - one virtio device in an MMIO slot
 * @kvm:	the VM
 * @irq:	its interrupt line
 * @t:		the transport
 * @dev:	the device context
 * @dev_free:	frees @dev after the transport (may be NULL)
 */
struct kvm_virtio {
	struct kvm_vm *kvm;
	unsigned int irq;
	struct virtio_mmio_dev *t;
	void *dev;
	void (*dev_free)(void *dev);
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

	virtio_mmio_free(v->t);
	if (v->dev_free)
		v->dev_free(v->dev);
	free(v);
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
	struct kvm_virtio *v;
	int ret;

	if (!dev)
		return mvm_set_error(-ENOMEM, "cannot create the %s device", ops->name);
	v = calloc(1, sizeof(*v));
	if (!v) {
		ret = mvm_set_error(-ENOMEM, "out of memory");
		goto err_dev;
	}
	v->kvm = kvm;
	v->dev = dev;
	v->dev_free = dev_free;
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
	if (dev_free)
		dev_free(dev);
	return ret;
}

static void kvm_rng_free(void *dev)
{
	virtio_rng_free(dev);
}

/**
 * kvm_devices_add() - create the VM's virtio devices
 * @kvm:	the VM (memory mapped and kvm->gmem filled, nothing loaded yet)
 *
 * Add a device here with one kvm_virtio_add() call (vsock: a vsock device for
 * kvm->cfg.guest_cid and kvm->cfg.vsock_uds_path; net: when kvm->cfg.net).
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_devices_add(struct kvm_vm *kvm)
{
	int ret;

	ret = kvm_virtio_add(kvm, &virtio_rng_ops, virtio_rng_new(), kvm_rng_free);
	if (ret < 0)
		return ret;
	if (kvm->cfg.vsock_uds_path)
		return mvm_set_error(-ENOTSUP,
				     "--vsock-uds: the KVM backend has no virtio-vsock device yet");
	return 0;
}
