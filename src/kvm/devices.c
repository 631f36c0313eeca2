/* SPDX-License-Identifier: MIT */
/*
 * devices.c - which virtio-mmio devices a KVM guest gets.
 *
 * This is the one place to add a device: call kvm_add_mmio() from kvm_devices_add() with the
 * device's MMIO handler; the slot (0xd0000000 + i * 0x1000), its IRQ (5 + i), the
 * virtio_mmio.device= token on the kernel command line and the MP table's level-triggered
 * interrupt entry all follow from that call.  Devices are added before the kernel is loaded.
 */
#include <errno.h>
#include <stdlib.h>

#include "devices/guest_mem.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/vsock.h"
#include "kvm/boot.h"
#include "kvm/kvm.h"
#include "runtime/error.h"

/**
 * struct kvm_virtio - a virtio-mmio device in a KVM guest
 * @kvm:	the VM
 * @irq:	its interrupt line
 * @gmem:	guest RAM as the device may see it
 * @t:		the transport
 */
struct kvm_virtio {
	struct kvm_vm *kvm;
	unsigned int irq;
	struct mvm_gmem gmem;
	struct virtio_mmio_dev *t;
};

static void kvm_virtio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			      int is_write)
{
	struct kvm_virtio *v = opaque;

	if (is_write)
		virtio_mmio_write(v->t, offset, data, len);
	else
		virtio_mmio_read(v->t, offset, data, len);
}

static void kvm_virtio_irq(void *opaque, int level)
{
	struct kvm_virtio *v = opaque;

	kvm_irq_line(v->kvm, v->irq, level);
}

/**
 * kvm_virtio_init() - a transport for device @dev in the next MMIO slot
 * @kvm:	the VM
 * @v:		zeroed wrapper to fill (freed by the caller's free function)
 * @ops/@dev:	the virtio device
 * @free_fn:	frees @v (and the device) when the VM goes
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int kvm_virtio_init(struct kvm_vm *kvm, struct kvm_virtio *v,
			   const struct virtio_dev_ops *ops, void *dev, void (*free_fn)(void *))
{
	int rc;

	v->kvm = kvm;
	mvm_gmem_init(&v->gmem);
	rc = mvm_gmem_add(&v->gmem, 0, kvm->low_size, kvm->mem);
	if (!rc && kvm->mem_size > kvm->low_size)
		rc = mvm_gmem_add(&v->gmem, BOOT_HIGH_RAM, kvm->mem_size - kvm->low_size,
				  kvm->mem + kvm->low_size);
	if (rc)
		return mvm_set_error(rc, "virtio-%s: bad guest memory map", ops->name);
	v->t = virtio_mmio_new(ops, dev, &v->gmem, kvm_virtio_irq, v);
	if (!v->t)
		return -ENOMEM;
	return kvm_add_mmio(kvm, kvm_virtio_access, v, free_fn, &v->irq, NULL);
}

/**
 * struct kvm_vsock - the virtio-vsock device, its client and its Unix socket bridge
 */
struct kvm_vsock {
	struct kvm_virtio virtio;
	struct vsock_virtio *dev;
	struct vsock_uds *uds;
};

static void kvm_vsock_free(void *opaque)
{
	struct kvm_vsock *vs = opaque;

	if (vs->virtio.kvm) {
		mvm_vsock_free(vs->virtio.kvm->vsock);
		vs->virtio.kvm->vsock = NULL;
	}
	vsock_uds_free(vs->uds);
	vsock_virtio_free(vs->dev);	/* stops the device thread before the queues go */
	virtio_mmio_free(vs->virtio.t);
	free(vs);
}

/**
 * kvm_vsock_add() - the virtio-vsock device (guest CID from the config), the VM's vsock
 * client over it, and the --vsock-uds bridge if asked for
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int kvm_vsock_add(struct kvm_vm *kvm)
{
	struct kvm_vsock *vs = calloc(1, sizeof(*vs));
	int rc;

	if (!vs)
		return mvm_set_error(-ENOMEM, "out of memory");
	vs->dev = vsock_virtio_new(kvm->cfg.guest_cid ? kvm->cfg.guest_cid : 3);
	if (!vs->dev) {
		free(vs);
		return -EINVAL;
	}
	rc = kvm_virtio_init(kvm, &vs->virtio, &vsock_virtio_ops, vs->dev, kvm_vsock_free);
	if (rc) {
		kvm_vsock_free(vs);
		return rc;
	}
	/* from here on kvm_destroy() frees @vs */
	kvm->vsock = vsock_virtio_client(vs->dev);
	if (!kvm->vsock)
		return -ENOMEM;
	if (kvm->cfg.vsock_uds_path) {
		vs->uds = vsock_uds_new(vsock_virtio_engine(vs->dev), kvm->cfg.vsock_uds_path);
		if (!vs->uds)
			return -EINVAL;
	}
	return 0;
}

/**
 * kvm_devices_add() - create the VM's virtio devices
 * @kvm:	the VM (memory is mapped, nothing loaded yet)
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_devices_add(struct kvm_vm *kvm)
{
	return kvm_vsock_add(kvm);
}
