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

#include "kvm/kvm.h"
#include "runtime/error.h"

/**
 * kvm_devices_add() - create the VM's virtio devices
 * @kvm:	the VM (memory is mapped, nothing loaded yet)
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_devices_add(struct kvm_vm *kvm)
{
	if (kvm->cfg.vsock_uds_path)
		return mvm_set_error(-ENOTSUP, "--vsock-uds: this build has no virtio-vsock device yet");
	return 0;
}
