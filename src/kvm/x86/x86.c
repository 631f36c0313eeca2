/* SPDX-License-Identifier: MIT */
/*
 * x86.c - the KVM backend's x86-64 half: irqchip and PIT, the memory hole, direct Linux boot,
 * long-mode vCPU registers, port I/O and the exits only x86 has.
 *
 * Theory of operation
 * -------------------
 * The hooks of kvm.h, for an x86-64 host:
 *   vm_init:     TSS and identity-map pages (needed on Intel before vCPUs exist),
 *                KVM_CREATE_IRQCHIP (PIC + IOAPIC + LAPICs), KVM_CREATE_PIT2, and the CPUID
 *                KVM supports (each vCPU gets it with its own APIC id).
 *   ram_layout:  RAM below the 3 GiB MMIO hole (BOOT_MMIO_HOLE) and, beyond that, from 4 GiB.
 *   devices:     COM1 (16550A at port 0x3f8, IRQ 4) and the i8042, on the port bus of
 *                kvm_x86_pio(); virtio-mmio slots at 0xd0000000 + i * 0x1000, IRQ 5 + i.
 *   load_guest:  vmlinux or bzImage, initrd, zero page with the command line (carrying one
 *                virtio_mmio.device= token per slot and, on PVM hosts, the arguments a stock
 *                kernel needs there), MP table, GDT and page tables (src/arch/x86/).
 *   cpu_init:    CPUID, and for the bootstrap vCPU long mode at the kernel's entry with
 *                %rsi = zero page (the others wait for INIT/SIPI from the in-kernel LAPIC).
 *                CPUID is what KVM supports, with the vCPU's APIC id, the hypervisor bit
 *                and, when KVM emulates it (not on PVM), the LAPIC's TSC-deadline mode:
 *                KVM does not list that bit itself (KVM_CAP_TSC_DEADLINE_TIMER says it),
 *                and without it the guest calibrates its LAPIC timer against the PIT,
 *                spinning for 100 ms of its boot until 25 timer interrupts arrived
 *                (docs/kvm.md).
 *   cpu_exit:    KVM_EXIT_IO to the port bus; KVM_EXIT_HLT with IF=0 (only without the
 *                in-kernel LAPIC) = poweroff; KVM_EXIT_SHUTDOWN (triple fault) = reboot;
 *                KVM_EXIT_INTERNAL_ERROR with the faulting %rip.
 *   irq:         the line number is the PIC/IOAPIC pin itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "arch/x86/boot.h"
#include "kvm/kvm.h"
#include "runtime/error.h"

#define KVM_TSS_ADDR		0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR	0xfffbc000ULL
#define KVM_MAX_KERNEL_SIZE	(512ULL << 20)
#define KVM_MMIO_BASE		0xd0000000ULL	/* virtio-mmio slot i at base + i * 0x1000 */
#define KVM_MMIO_SLOT_SIZE	0x1000ULL
#define KVM_MMIO_FIRST_IRQ	5		/* slot i raises IRQ 5 + i */

#define CR0_PE		0x1ULL
#define CR0_ET		0x10ULL
#define CR0_NE		0x20ULL
#define CR0_PG		0x80000000ULL
#define CR4_PAE		0x20ULL
#define EFER_LME	0x100ULL
#define EFER_LMA	0x400ULL

/**
 * kvm_x86_get_cpuid() - what KVM can offer the guest
 */
static int kvm_x86_get_cpuid(struct kvm_vm *kvm)
{
	unsigned int n = 128;

	for (;;) {
		kvm->arch.cpuid = calloc(1, sizeof(*kvm->arch.cpuid) +
					    n * sizeof(kvm->arch.cpuid->entries[0]));
		if (!kvm->arch.cpuid)
			return mvm_set_error(-ENOMEM, "out of memory");
		kvm->arch.cpuid->nent = n;
		if (ioctl(kvm->kvm_fd, KVM_GET_SUPPORTED_CPUID, kvm->arch.cpuid) == 0)
			return 0;
		free(kvm->arch.cpuid);
		kvm->arch.cpuid = NULL;
		if (errno != E2BIG || n >= 4096)
			return mvm_set_error(-errno, "KVM_GET_SUPPORTED_CPUID: %s",
					     strerror(errno));
		n *= 2;
	}
}

/**
 * kvm_arch_vm_init() - TSS, identity map, in-kernel irqchip and PIT, supported CPUID and
 * whether KVM emulates the TSC-deadline timer
 * @kvm:	the VM (vm_fd open)
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_arch_vm_init(struct kvm_vm *kvm)
{
	struct kvm_pit_config pit = { .flags = 0 };
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;

	if (ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
		return mvm_set_error(-errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	if (ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return mvm_set_error(-errno, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return mvm_set_error(-errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	if (ioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return mvm_set_error(-errno, "KVM_CREATE_PIT2: %s", strerror(errno));
	/* not on PVM: its guests read the host's TSC natively, which the deadline is not
	 * known to follow there (and no PVM guest was ever seen calibrating for long) */
	kvm->arch.tsc_deadline = !kvm_pvm_host() &&
				 ioctl(kvm->kvm_fd, KVM_CHECK_EXTENSION,
				       KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	return kvm_x86_get_cpuid(kvm);
}

/**
 * kvm_arch_ram_layout() - RAM below the MMIO hole, the rest from 4 GiB
 * @kvm:	the VM (mem_size set)
 * @r:		filled, KVM_MAX_RAM_REGIONS entries
 * Return: the number of regions.
 */
unsigned int kvm_arch_ram_layout(struct kvm_vm *kvm, struct kvm_ram_region *r)
{
	kvm->arch.low_size = kvm->mem_size < BOOT_MMIO_HOLE ? kvm->mem_size : BOOT_MMIO_HOLE;
	r[0].gpa = 0;
	r[0].offset = 0;
	r[0].size = kvm->arch.low_size;
	if (kvm->mem_size == kvm->arch.low_size)
		return 1;
	r[1].gpa = BOOT_HIGH_RAM;
	r[1].offset = kvm->arch.low_size;
	r[1].size = kvm->mem_size - kvm->arch.low_size;
	return 2;
}

/**
 * kvm_arch_devices() - COM1 on IRQ 4 (the i8042 needs no setup)
 * @kvm:	the VM (serial created)
 * Return: 0.
 */
int kvm_arch_devices(struct kvm_vm *kvm)
{
	kvm->serial_irq = SERIAL_COM1_IRQ;
	return 0;
}

/**
 * kvm_arch_mmio_slot() - virtio-mmio slot @index: 0xd0000000 + index * 4 KiB, IRQ 5 + index
 * @kvm:	the VM
 * @index:	slot number, below KVM_MAX_MMIO
 * @base/@size/@irq: set
 * Return: 0.
 */
int kvm_arch_mmio_slot(struct kvm_vm *kvm, unsigned int index, uint64_t *base, uint64_t *size,
		       unsigned int *irq)
{
	(void)kvm;
	*base = KVM_MMIO_BASE + index * KVM_MMIO_SLOT_SIZE;
	*size = KVM_MMIO_SLOT_SIZE;
	*irq = KVM_MMIO_FIRST_IRQ + index;
	return 0;
}

/**
 * kvm_arch_load_guest() - kernel, initrd, command line and boot tables into guest memory
 * @kvm:	the VM (devices added: the command line and MP table name them)
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_arch_load_guest(struct kvm_vm *kvm)
{
	struct mptable_irq lv[KVM_MAX_MMIO];
	struct boot_image bi;
	uint64_t initrd_addr = 0, low_size = kvm->arch.low_size;
	size_t klen, ilen = 0;
	uint8_t *kimg = NULL, *iimg = NULL;
	unsigned int i;
	int pvm = kvm_pvm_host(), ret;

	ret = kvm_read_file(kvm->cfg.kernel_path, "kernel", KVM_MAX_KERNEL_SIZE, &kimg, &klen);
	if (ret < 0)
		return ret;
	ret = boot_load_kernel(kvm->mem, low_size, kimg, klen, &bi);
	free(kimg);
	if (ret < 0)
		return ret;
	if (kvm->cfg.initrd_path) {
		ret = kvm_read_file(kvm->cfg.initrd_path, "initrd", low_size, &iimg, &ilen);
		if (ret == -EFBIG)
			return mvm_set_error(-EFBIG,
					     "initrd %s does not fit in %u MiB of guest memory: use a larger --mem",
					     kvm->cfg.initrd_path, kvm->cfg.mem_mib);
		if (ret < 0)
			return ret;
		ret = boot_place_initrd(kvm->mem, low_size, &bi, iimg, ilen, &initrd_addr);
		free(iimg);
		if (ret < 0)
			return ret;
	}
	ret = kvm_cmdline_build(kvm->cmdline, sizeof(kvm->cmdline), kvm->cfg.cmdline, pvm,
				kvm->mmio, kvm->nr_mmio);
	if (ret < 0)
		return ret;
	ret = kvm_cmdline_add_time(kvm->cmdline, sizeof(kvm->cmdline), (long long)time(NULL));
	if (ret < 0)
		return ret;
	ret = boot_write_params(kvm->mem, low_size, &bi, kvm->cmdline, initrd_addr, ilen,
				kvm->mem_size);
	if (ret < 0)
		return ret;
	for (i = 0; i < kvm->nr_mmio; i++) {
		lv[i].irq = (uint8_t)kvm->mmio[i].irq;
		lv[i].level = 1;
	}
	ret = mptable_write(kvm->mem, low_size, kvm->ncpus, lv, kvm->nr_mmio);
	if (ret < 0)
		return ret;
	if (boot_write_gdt(kvm->mem, low_size) || boot_write_page_tables(kvm->mem, low_size))
		return mvm_set_error(-EINVAL, "guest memory too small");
	if (pvm && !kvm->cfg.quiet)	/* once everything loaded: errors stay one line */
		fprintf(stderr, "microvm: /dev/kvm is PVM-backed (kvm_pvm): added kernel arguments "
			"noxsave clearcpuid=... so the guest kernel can boot; guest user space "
			"will not run here\n");
	kvm->arch.entry = bi.entry;
	return 0;
}

/**
 * kvm_x86_set_cpuid() - supported CPUID with this vCPU's APIC id, the hypervisor bit and,
 * when KVM emulates it, the TSC-deadline timer (see the theory of operation)
 */
static int kvm_x86_set_cpuid(struct kvm_vm *kvm, struct kvm_cpu *cpu)
{
	struct kvm_cpuid2 *c = kvm->arch.cpuid;
	size_t sz = sizeof(*c) + c->nent * sizeof(c->entries[0]);
	struct kvm_cpuid2 *mine = malloc(sz);
	unsigned int i;
	int ret = 0;

	if (!mine)
		return -ENOMEM;
	memcpy(mine, c, sz);
	for (i = 0; i < mine->nent; i++) {
		struct kvm_cpuid_entry2 *e = &mine->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (cpu->id << 24) |
				 (kvm->ncpus << 16);
			if (kvm->ncpus > 1)
				e->edx |= 1u << 28;	/* HTT: the logical count is valid */
			e->ecx |= 1u << 31;		/* running under a hypervisor */
			if (kvm->arch.tsc_deadline)
				e->ecx |= 1u << 24;	/* TSC-deadline LAPIC timer */
			break;
		case 0xb:
		case 0x1f:
			e->edx = cpu->id;
			break;
		default:
			break;
		}
	}
	if (ioctl(cpu->fd, KVM_SET_CPUID2, mine) < 0)
		ret = mvm_set_error(-errno, "KVM_SET_CPUID2: %s", strerror(errno));
	free(mine);
	return ret;
}

/**
 * kvm_x86_seg() - a flat 4 GiB segment
 */
static struct kvm_segment kvm_x86_seg(uint16_t sel, uint8_t type, int code64)
{
	struct kvm_segment s;

	memset(&s, 0, sizeof(s));
	s.base = 0;
	s.limit = 0xffffffff;
	s.selector = sel;
	s.type = type;
	s.present = 1;
	s.s = 1;
	s.l = (uint8_t)code64;
	s.db = (uint8_t)!code64;
	s.g = 1;
	return s;
}

/**
 * kvm_x86_set_long_mode() - registers for the 64-bit boot protocol entry
 * @entry:	guest physical address of the kernel's 64-bit entry
 */
static int kvm_x86_set_long_mode(struct kvm_cpu *cpu, uint64_t entry)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(cpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return mvm_set_error(-errno, "KVM_GET_SREGS: %s", strerror(errno));
	sregs.cs = kvm_x86_seg(0x10, 0xb, 1);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = kvm_x86_seg(0x18, 0x3, 0);
	sregs.tr = kvm_x86_seg(0x20, 0xb, 0);
	sregs.tr.s = 0;
	sregs.tr.limit = 0x67;
	sregs.tr.g = 0;
	sregs.tr.db = 0;
	sregs.gdt.base = BOOT_GDT_ADDR;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr3 = BOOT_PML4_ADDR;
	sregs.cr4 = CR4_PAE;
	sregs.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	sregs.efer = EFER_LME | EFER_LMA;
	if (ioctl(cpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return mvm_set_error(-errno, "KVM_SET_SREGS: %s", strerror(errno));

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = entry;
	regs.rsi = BOOT_ZERO_PAGE_ADDR;
	regs.rsp = regs.rbp = BOOT_STACK_ADDR;
	if (ioctl(cpu->fd, KVM_SET_REGS, &regs) < 0)
		return mvm_set_error(-errno, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

/**
 * kvm_arch_cpu_init() - CPUID; long mode at the kernel entry for the bootstrap vCPU
 * @kvm:	the VM (guest loaded)
 * @cpu:	the vCPU (fd and kvm_run mapped)
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_arch_cpu_init(struct kvm_vm *kvm, struct kvm_cpu *cpu)
{
	int ret = kvm_x86_set_cpuid(kvm, cpu);

	if (ret < 0)
		return ret;
	if (cpu->id == 0)
		return kvm_x86_set_long_mode(cpu, kvm->arch.entry);
	return 0;
}

/**
 * kvm_arch_vm_ready() - nothing left to do on x86 once the vCPUs exist
 * Return: 0.
 */
int kvm_arch_vm_ready(struct kvm_vm *kvm)
{
	(void)kvm;
	return 0;
}

/**
 * kvm_arch_irq() - the KVM_IRQ_LINE number of line @irq: the PIC and IOAPIC pin itself
 */
uint32_t kvm_arch_irq(struct kvm_vm *kvm, unsigned int irq)
{
	(void)kvm;
	return irq;
}

/**
 * kvm_x86_pio() - one port access from the guest
 * @size:	1, 2 or 4; legacy devices take bytes, wider accesses are split or ignored
 */
static void kvm_x86_pio(struct kvm_vm *kvm, uint16_t port, uint8_t *data, uint32_t size,
			int is_write)
{
	if (port >= SERIAL_COM1_BASE && port < SERIAL_COM1_BASE + SERIAL_NR_REGS && size == 1) {
		serial_io(kvm->serial, port - SERIAL_COM1_BASE, is_write, data);
		return;
	}
	if ((port == I8042_DATA_PORT || port == I8042_PORT_B || port == I8042_COMMAND_PORT) &&
	    size == 1) {
		if (i8042_io(&kvm->arch.i8042, port, is_write, data) == I8042_RESET)
			kvm_vm_stop(kvm, MVM_EXIT_REBOOT, "i8042 reset");
		return;
	}
	if (!is_write)	/* nothing there: the bus floats high */
		memset(data, 0xff, size);
}

/**
 * kvm_x86_io() - a KVM_EXIT_IO: dispatch each of @count accesses to the port bus
 */
static void kvm_x86_io(struct kvm_cpu *cpu)
{
	struct kvm_run *run = cpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t i;

	if (run->io.data_offset + (uint64_t)run->io.size * run->io.count > cpu->kvm->run_size)
		return;
	for (i = 0; i < run->io.count; i++, data += run->io.size)
		kvm_x86_pio(cpu->kvm, run->io.port, data, run->io.size,
			    run->io.direction == KVM_EXIT_IO_OUT);
}

/**
 * kvm_arch_cpu_exit() - port I/O, halts, triple faults and internal errors
 * @cpu:	the vCPU that exited
 * Return: 1 to keep running, 0 to stop, -1 for an exit that is not x86's own.
 */
int kvm_arch_cpu_exit(struct kvm_cpu *cpu)
{
	struct kvm_run *run = cpu->run;
	struct kvm_vm *kvm = cpu->kvm;
	struct kvm_regs regs;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		kvm_x86_io(cpu);
		return 1;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; a halt with IF=0 never wakes up. */
		if (ioctl(cpu->fd, KVM_GET_REGS, &regs) == 0 && !(regs.rflags & 0x200)) {
			kvm_vm_stop(kvm, MVM_EXIT_POWEROFF, "vCPU %u halted with interrupts off",
				    cpu->id);
			return 0;
		}
		return 1;
	case KVM_EXIT_SHUTDOWN:
		kvm_vm_stop(kvm, MVM_EXIT_REBOOT, "triple fault on vCPU %u", cpu->id);
		return 0;
	case KVM_EXIT_INTERNAL_ERROR:
		if (ioctl(cpu->fd, KVM_GET_REGS, &regs) < 0)
			memset(&regs, 0, sizeof(regs));
		kvm_vm_stop(kvm, MVM_EXIT_ERROR,
			    "KVM internal error %u on vCPU %u at rip=0x%llx (emulation failure?)",
			    run->internal.suberror, cpu->id, (unsigned long long)regs.rip);
		return 0;
	default:
		return -1;
	}
}

/**
 * kvm_arch_destroy() - free the CPUID copy
 */
void kvm_arch_destroy(struct kvm_vm *kvm)
{
	free(kvm->arch.cpuid);
	kvm->arch.cpuid = NULL;
}
