/* SPDX-License-Identifier: MIT */
/*
 * arm64.c - the KVM backend's arm64 half: in-kernel vGICv3, PSCI 0.2 vCPUs, one-reg access,
 * and the machine model of src/arch/arm64 for everything the guest sees.
 *
 * Theory of operation
 * -------------------
 * The hooks of kvm.h, for an arm64 host (Documentation/virt/kvm/api.rst, devices/arm-vgic-v3.rst):
 *   vm_init:     arm64_machine_init() (RAM, vCPUs); KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3)
 *                with the distributor and redistributor bases of the memory map
 *                (KVM_DEV_ARM_VGIC_GRP_ADDR).
 *   ram_layout:  one slot: all RAM at ARM64_RAM_BASE.
 *   devices:     the 16550 UART on the MMIO bus at ARM64_UART_BASE (kvm_serial_mmio()), SPI 1;
 *                virtio-mmio slots from arm64_machine_add_virtio(), so that the device tree
 *                names exactly the slots the bus routes.
 *   load_guest:  the command line (no virtio_mmio.device= tokens: the device tree has the
 *                devices), then arm64_boot_prepare(): Image, initrd, device tree.
 *   cpu_init:    KVM_ARM_PREFERRED_TARGET, KVM_ARM_VCPU_INIT with PSCI 0.2 (every vCPU but
 *                the first also KVM_ARM_VCPU_POWER_OFF: the guest starts it with PSCI CPU_ON,
 *                which KVM implements); the first gets PC, X0 and PSTATE with KVM_SET_ONE_REG.
 *                KVM's MPIDR must be the model's (arm64_cpu_mpidr()): checked.
 *   vm_ready:    the vGIC's number of interrupts, then KVM_DEV_ARM_VGIC_CTRL_INIT (after every
 *                vCPU exists, before the first KVM_RUN).
 *   irq:         KVM_ARM_IRQ_TYPE_SPI with the SPI's INTID (32 + n).
 *   cpu_exit:    nothing of its own: MMIO and system events (PSCI SYSTEM_OFF / SYSTEM_RESET)
 *                are the common ones of cpu.c.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "arch/arm64/machine.h"
#include "kvm/kvm.h"
#include "runtime/error.h"

#define KVM_ARM64_MAX_KERNEL	(512ULL << 20)
#define KVM_ARM64_NR_IRQS	128	/* SGIs, PPIs and SPIs 0..95: ours are below 32 */
#define KVM_ARM64_MPIDR_AFF	0xff00ffffffULL

/* one-reg ids of the core registers the boot vCPU needs */
#define KVM_ARM64_CORE(field)						\
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |		\
	 (offsetof(struct kvm_regs, field) / sizeof(uint32_t)))
#define KVM_ARM64_MPIDR_EL1	ARM64_SYS_REG(3, 0, 0, 0, 5)

/**
 * kvm_arm64_gic_attr() - set one attribute of the vGIC device
 * @kvm:	the VM (gic_fd open)
 * @group/@attr: which
 * @val:	pointer to the value (its size is the attribute's)
 * @what:	for the error message
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int kvm_arm64_gic_attr(struct kvm_vm *kvm, uint32_t group, uint64_t attr, void *val,
			      const char *what)
{
	struct kvm_device_attr a = {
		.group = group,
		.attr = attr,
		.addr = (uint64_t)(uintptr_t)val,
	};

	if (ioctl(kvm->arch.gic_fd, KVM_SET_DEVICE_ATTR, &a) < 0)
		return mvm_set_error(-errno, "vGICv3 %s: %s", what, strerror(errno));
	return 0;
}

/**
 * kvm_arch_vm_init() - the machine model and the in-kernel vGICv3 at its addresses
 * @kvm:	the VM (vm_fd open, cfg set)
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_arch_vm_init(struct kvm_vm *kvm)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	uint64_t dist = ARM64_GIC_DIST_BASE, redist = ARM64_GIC_REDIST_BASE;
	int ret;

	ret = arm64_machine_init(&kvm->arch.m, (uint64_t)kvm->cfg.mem_mib << 20, kvm->ncpus);
	if (ret < 0)
		return ret;
	if (ioctl(kvm->vm_fd, KVM_CREATE_DEVICE, &cd) < 0)
		return mvm_set_error(-errno, "KVM cannot create a GICv3 here (%s): a host with a "
				     "GICv3 is needed", strerror(errno));
	kvm->arch.gic_fd = (int)cd.fd;
	ret = kvm_arm64_gic_attr(kvm, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST,
				 &dist, "distributor address");
	if (ret < 0)
		return ret;
	return kvm_arm64_gic_attr(kvm, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST,
				  &redist, "redistributor address");
}

/**
 * kvm_arch_ram_layout() - all RAM in one slot at ARM64_RAM_BASE
 * @kvm:	the VM (mem_size set)
 * @r:		filled
 * Return: 1.
 */
unsigned int kvm_arch_ram_layout(struct kvm_vm *kvm, struct kvm_ram_region *r)
{
	r[0].gpa = ARM64_RAM_BASE;
	r[0].offset = 0;
	r[0].size = kvm->mem_size;
	return 1;
}

/**
 * kvm_arch_devices() - the UART on the MMIO bus, at the model's address and SPI
 * @kvm:	the VM (serial created)
 * Return: 0 or -ENOSPC.
 */
int kvm_arch_devices(struct kvm_vm *kvm)
{
	const struct arm64_mmio_slot *u = &kvm->arch.m.uart;

	kvm->serial_irq = u->spi;
	return kvm_add_mmio_at(kvm, u->base, u->size, u->spi, kvm_serial_mmio, kvm, NULL);
}

/**
 * kvm_arch_mmio_slot() - the model's next virtio-mmio slot (@index is the bus's count)
 * @kvm:	the VM
 * @index:	unused: the model numbers its own slots
 * @base/@size/@irq: set (@irq is the slot's SPI)
 * Return: 0 or -ENOSPC with mvm_last_error() set.
 */
int kvm_arch_mmio_slot(struct kvm_vm *kvm, unsigned int index, uint64_t *base, uint64_t *size,
		       unsigned int *irq)
{
	struct arm64_mmio_slot s;
	int ret;

	(void)index;
	ret = arm64_machine_add_virtio(&kvm->arch.m, &s);
	if (ret < 0)
		return ret;
	*base = s.base;
	*size = s.size;
	*irq = s.spi;
	return 0;
}

/**
 * kvm_arch_load_guest() - command line, then Image, initrd and device tree into RAM
 * @kvm:	the VM (devices added: the device tree names them)
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_arch_load_guest(struct kvm_vm *kvm)
{
	uint8_t *kimg = NULL, *iimg = NULL;
	size_t klen, ilen = 0;
	int ret;

	ret = kvm_cmdline_build(kvm->cmdline, sizeof(kvm->cmdline), kvm->cfg.cmdline, 0, NULL, 0);
	if (ret < 0)
		return ret;
	ret = kvm_cmdline_add_time(kvm->cmdline, sizeof(kvm->cmdline), (long long)time(NULL));
	if (ret < 0)
		return ret;
	ret = kvm_read_file(kvm->cfg.kernel_path, "kernel", KVM_ARM64_MAX_KERNEL, &kimg, &klen);
	if (ret < 0)
		return ret;
	if (kvm->cfg.initrd_path) {
		ret = kvm_read_file(kvm->cfg.initrd_path, "initrd", kvm->mem_size, &iimg, &ilen);
		if (ret < 0) {
			free(kimg);
			return ret;
		}
	}
	ret = arm64_boot_prepare(&kvm->arch.m, kvm->mem, kimg, klen, iimg, ilen, kvm->cmdline,
				 &kvm->arch.boot);
	free(kimg);
	free(iimg);
	return ret;
}

/**
 * kvm_arm64_set_reg() - KVM_SET_ONE_REG of a 64-bit register
 */
static int kvm_arm64_set_reg(struct kvm_cpu *cpu, uint64_t id, uint64_t val, const char *name)
{
	struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)&val };

	if (ioctl(cpu->fd, KVM_SET_ONE_REG, &r) < 0)
		return mvm_set_error(-errno, "vCPU %u: setting %s: %s", cpu->id, name,
				     strerror(errno));
	return 0;
}

/**
 * kvm_arch_cpu_init() - PSCI 0.2 vCPU; the first one at the Image's entry
 * @kvm:	the VM (guest loaded)
 * @cpu:	the vCPU (fd and kvm_run mapped)
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_arch_cpu_init(struct kvm_vm *kvm, struct kvm_cpu *cpu)
{
	struct kvm_vcpu_init init;
	uint64_t mpidr = 0;
	struct kvm_one_reg r = { .id = KVM_ARM64_MPIDR_EL1, .addr = (uint64_t)(uintptr_t)&mpidr };
	int ret;

	memset(&init, 0, sizeof(init));
	if (ioctl(kvm->vm_fd, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		return mvm_set_error(-errno, "KVM_ARM_PREFERRED_TARGET: %s", strerror(errno));
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	if (cpu->id)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
	if (ioctl(cpu->fd, KVM_ARM_VCPU_INIT, &init) < 0)
		return mvm_set_error(-errno, "KVM_ARM_VCPU_INIT on vCPU %u: %s", cpu->id,
				     strerror(errno));
	if (ioctl(cpu->fd, KVM_GET_ONE_REG, &r) < 0)
		return mvm_set_error(-errno, "vCPU %u: reading MPIDR_EL1: %s", cpu->id,
				     strerror(errno));
	if ((mpidr & KVM_ARM64_MPIDR_AFF) != arm64_cpu_mpidr(cpu->id))
		return mvm_set_error(-EINVAL, "vCPU %u: KVM's MPIDR 0x%llx is not the device "
				     "tree's 0x%llx", cpu->id, (unsigned long long)mpidr,
				     (unsigned long long)arm64_cpu_mpidr(cpu->id));
	if (cpu->id)
		return 0;
	ret = kvm_arm64_set_reg(cpu, KVM_ARM64_CORE(regs.pc), kvm->arch.boot.pc, "PC");
	if (!ret)
		ret = kvm_arm64_set_reg(cpu, KVM_ARM64_CORE(regs.regs[0]), kvm->arch.boot.x0, "X0");
	if (!ret)
		ret = kvm_arm64_set_reg(cpu, KVM_ARM64_CORE(regs.pstate), kvm->arch.boot.pstate,
					"PSTATE");
	return ret;
}

/**
 * kvm_arch_vm_ready() - size and initialise the vGIC once every vCPU exists
 * @kvm:	the VM
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_arch_vm_ready(struct kvm_vm *kvm)
{
	uint32_t nr_irqs = KVM_ARM64_NR_IRQS;
	int ret;

	ret = kvm_arm64_gic_attr(kvm, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs,
				 "number of interrupts");
	if (ret < 0)
		return ret;
	return kvm_arm64_gic_attr(kvm, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT,
				  NULL, "init");
}

/**
 * kvm_arch_irq() - the KVM_IRQ_LINE number of SPI @irq: type SPI, INTID 32 + @irq
 */
uint32_t kvm_arch_irq(struct kvm_vm *kvm, unsigned int irq)
{
	(void)kvm;
	return (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | arm64_spi_intid(irq);
}

/**
 * kvm_arch_cpu_exit() - arm64 has no exits of its own (MMIO and system events are common)
 * Return: -1.
 */
int kvm_arch_cpu_exit(struct kvm_cpu *cpu)
{
	(void)cpu;
	return -1;
}

/**
 * kvm_arch_destroy() - close the vGIC device
 */
void kvm_arch_destroy(struct kvm_vm *kvm)
{
	if (kvm->arch.gic_fd > 0)
		close(kvm->arch.gic_fd);
	kvm->arch.gic_fd = 0;
}
