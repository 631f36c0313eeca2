/* SPDX-License-Identifier: MIT */
/*
 * arch.h - the arm64 KVM backend's own state (struct kvm_arch, inside struct kvm_vm).
 */
#ifndef MVM_KVM_ARM64_ARCH_H
#define MVM_KVM_ARM64_ARCH_H

#include "arch/arm64/machine.h"

/**
 * struct kvm_arch - arm64 state of one VM
 * @m:		the machine model (memory map, device slots; src/arch/arm64)
 * @boot:	the boot vCPU's registers and where kernel, initrd and device tree went
 * @gic_fd:	the in-kernel vGICv3 device (0: not created; calloc'd, never stdin)
 */
struct kvm_arch {
	struct arm64_machine m;
	struct arm64_boot_regs boot;
	int gic_fd;
};

#endif
