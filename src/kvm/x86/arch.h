/* SPDX-License-Identifier: MIT */
/*
 * arch.h - the x86-64 KVM backend's own state (struct kvm_arch, inside struct kvm_vm).
 */
#ifndef MVM_KVM_X86_ARCH_H
#define MVM_KVM_X86_ARCH_H

#include <stdint.h>

#include "devices/i8042.h"

struct kvm_cpuid2;

/**
 * struct kvm_arch - x86-64 state of one VM
 * @low_size:	bytes of RAM below the MMIO hole (BOOT_MMIO_HOLE); the rest is at 4 GiB
 * @i8042:	the keyboard controller (its reset line reboots the guest)
 * @cpuid:	what KVM_GET_SUPPORTED_CPUID offered, adjusted per vCPU
 * @tsc_deadline: offer the LAPIC's TSC-deadline mode (KVM_CAP_TSC_DEADLINE_TIMER, not PVM)
 * @entry:	the kernel's 64-bit entry point
 */
struct kvm_arch {
	uint64_t low_size;
	struct i8042 i8042;
	struct kvm_cpuid2 *cpuid;
	int tsc_deadline;
	uint64_t entry;
};

#endif
