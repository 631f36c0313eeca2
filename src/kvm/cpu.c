/* SPDX-License-Identifier: MIT */
/*
 * cpu.c - vCPUs: creation, long-mode entry state, and the run loop (one thread per vCPU).
 *
 * Theory of operation
 * -------------------
 * Every vCPU gets the host's supported CPUID with its own APIC id patched in.  Only the
 * bootstrap vCPU (id 0) is given registers: 64-bit mode through KVM_SET_SREGS (paging with the
 * identity map from boot.c, PAE, EFER.LME/LMA, flat __BOOT_CS/__BOOT_DS segments), %rip at the
 * kernel's 64-bit entry and %rsi at the zero page.  The others stay in the in-kernel LAPIC's
 * wait-for-SIPI state until Linux wakes them (INIT/SIPI through the MP table's CPU list).
 *
 * Each thread loops on KVM_RUN and dispatches exits: port I/O and MMIO to the device buses in
 * vm.c, a shutdown (triple fault) as a reboot, internal errors as errors.  To stop, vm.c sets
 * kvm->stopping and kicks each thread: immediate_exit = 1 plus a signal with an empty handler
 * (installed without SA_RESTART), so KVM_RUN returns -EINTR whether the thread was inside it
 * or about to enter it.
 *
 * Sandbox: each thread drops its capabilities and installs kvm_cpu_syscalls[] (plus the
 * common list of sandbox.c) before its first KVM_RUN; the devices a vCPU emulates run on it,
 * so their system calls are in that list too.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "arch/x86/boot.h"
#include "kvm/kvm.h"
#include "runtime/error.h"
#include "sandbox/sandbox.h"

#define CR0_PE		0x1ULL
#define CR0_ET		0x10ULL
#define CR0_NE		0x20ULL
#define CR0_PG		0x80000000ULL
#define CR4_PAE		0x20ULL
#define EFER_LME	0x100ULL
#define EFER_LMA	0x400ULL

/* What a vCPU thread does, beside the common list (src/sandbox/sandbox.c). */
static const int kvm_cpu_syscalls[] = {
	SANDBOX_SYS(ioctl),		/* KVM_RUN, KVM_GET_REGS; KVM_IRQ_LINE from device models */
	SANDBOX_SYS(sendto),		/* virtio-vsock engine (vsock.c) writes host streams */
	SANDBOX_SYS(recvfrom),
	SANDBOX_SYS(shutdown),		/* virtio-vsock: a guest reset closes its streams */
	SANDBOX_SYS(epoll_ctl),		/* virtio-vsock: a reset removes streams from the engine */
};

static void kvm_cpu_kick_handler(int sig)
{
	(void)sig;
}

/**
 * kvm_cpu_kick_signal() - the signal used to pull a thread out of KVM_RUN (installed once)
 */
static int kvm_cpu_kick_signal(void)
{
	static atomic_int installed;
	struct sigaction sa;
	int sig = SIGRTMIN + 2;

	if (!atomic_exchange(&installed, 1)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = kvm_cpu_kick_handler;	/* no SA_RESTART: KVM_RUN gets EINTR */
		sigemptyset(&sa.sa_mask);
		sigaction(sig, &sa, NULL);
	}
	return sig;
}

/**
 * kvm_cpu_set_cpuid() - supported CPUID with this vCPU's APIC id
 */
static int kvm_cpu_set_cpuid(struct kvm_vm *kvm, struct kvm_cpu *cpu)
{
	struct kvm_cpuid2 *c = kvm->cpuid;
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
 * kvm_seg() - a flat 4 GiB segment
 */
static struct kvm_segment kvm_seg(uint16_t sel, uint8_t type, int code64)
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
 * kvm_cpu_set_long_mode() - registers for the 64-bit boot protocol entry
 * @entry:	guest physical address of the kernel's 64-bit entry
 */
static int kvm_cpu_set_long_mode(struct kvm_cpu *cpu, uint64_t entry)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(cpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return mvm_set_error(-errno, "KVM_GET_SREGS: %s", strerror(errno));
	sregs.cs = kvm_seg(0x10, 0xb, 1);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = kvm_seg(0x18, 0x3, 0);
	sregs.tr = kvm_seg(0x20, 0xb, 0);
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
 * kvm_cpu_init() - create vCPU @id and set it up for boot
 * @entry:	kernel entry (used for the bootstrap vCPU only)
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_cpu_init(struct kvm_vm *kvm, struct kvm_cpu *cpu, unsigned int id, uint64_t entry)
{
	void *run;
	int ret;

	cpu->kvm = kvm;
	cpu->id = id;
	cpu->fd = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (cpu->fd < 0)
		return mvm_set_error(-errno, "KVM_CREATE_VCPU %u: %s", id, strerror(errno));
	run = mmap(NULL, kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu->fd, 0);
	if (run == MAP_FAILED)
		return mvm_set_error(-errno, "mmap of vCPU %u state: %s", id, strerror(errno));
	cpu->run = run;
	ret = kvm_cpu_set_cpuid(kvm, cpu);
	if (ret < 0)
		return ret;
	if (id == 0)
		return kvm_cpu_set_long_mode(cpu, entry);
	return 0;
}

/**
 * kvm_cpu_kick() - make the vCPU's thread leave KVM_RUN soon
 */
void kvm_cpu_kick(struct kvm_cpu *cpu)
{
	int sig = kvm_cpu_kick_signal();

	if (cpu->run)
		__atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (cpu->started)
		pthread_kill(cpu->thread, sig);
}

/**
 * kvm_cpu_io() - a KVM_EXIT_IO: dispatch each of @count accesses to the port bus
 */
static void kvm_cpu_io(struct kvm_cpu *cpu)
{
	struct kvm_run *run = cpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t i;

	if (run->io.data_offset + (uint64_t)run->io.size * run->io.count > cpu->kvm->run_size)
		return;
	for (i = 0; i < run->io.count; i++, data += run->io.size)
		kvm_pio(cpu->kvm, run->io.port, data, run->io.size,
			run->io.direction == KVM_EXIT_IO_OUT);
}

/**
 * kvm_cpu_exit() - handle one exit
 * Return: true to keep running.
 */
static bool kvm_cpu_exit(struct kvm_cpu *cpu)
{
	struct kvm_run *run = cpu->run;
	struct kvm_vm *kvm = cpu->kvm;
	struct kvm_regs regs;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		kvm_cpu_io(cpu);
		return true;
	case KVM_EXIT_MMIO:
		kvm_mmio(kvm, run->mmio.phys_addr, run->mmio.data,
			 run->mmio.len > 8 ? 8 : run->mmio.len, run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; a halt with IF=0 never wakes up. */
		if (ioctl(cpu->fd, KVM_GET_REGS, &regs) == 0 && !(regs.rflags & 0x200)) {
			kvm_vm_stop(kvm, MVM_EXIT_POWEROFF, "vCPU %u halted with interrupts off",
				    cpu->id);
			return false;
		}
		return true;
	case KVM_EXIT_SHUTDOWN:
		kvm_vm_stop(kvm, MVM_EXIT_REBOOT, "triple fault on vCPU %u", cpu->id);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			kvm_vm_stop(kvm, MVM_EXIT_POWEROFF, "system event: shutdown");
		else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			kvm_vm_stop(kvm, MVM_EXIT_REBOOT, "system event: reset");
		else
			kvm_vm_stop(kvm, MVM_EXIT_ERROR, "system event %u",
				    run->system_event.type);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		kvm_vm_stop(kvm, MVM_EXIT_ERROR,
			    "KVM entry failed on vCPU %u (hardware reason 0x%llx)", cpu->id,
			    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		if (ioctl(cpu->fd, KVM_GET_REGS, &regs) < 0)
			memset(&regs, 0, sizeof(regs));
		kvm_vm_stop(kvm, MVM_EXIT_ERROR,
			    "KVM internal error %u on vCPU %u at rip=0x%llx (emulation failure?)",
			    run->internal.suberror, cpu->id, (unsigned long long)regs.rip);
		return false;
	default:
		kvm_vm_stop(kvm, MVM_EXIT_ERROR, "unexpected KVM exit %u on vCPU %u",
			    run->exit_reason, cpu->id);
		return false;
	}
}

/**
 * kvm_cpu_thread() - run one vCPU until the VM stops
 * @arg:	the &struct kvm_cpu
 * Return: NULL
 */
void *kvm_cpu_thread(void *arg)
{
	struct kvm_cpu *cpu = arg;
	struct kvm_vm *kvm = cpu->kvm;
	struct sandbox_list list = SANDBOX_LIST(kvm_cpu_syscalls);
	char name[16];
	sigset_t set;

	snprintf(name, sizeof(name), "mvm-vcpu%u", cpu->id);
	prctl(PR_SET_NAME, name);
	sigemptyset(&set);
	sigaddset(&set, kvm_cpu_kick_signal());
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (sandbox_thread(name, &list, 1)) {
		kvm_vm_stop(kvm, MVM_EXIT_ERROR, "vCPU %u: cannot sandbox its thread", cpu->id);
		return NULL;
	}

	while (!atomic_load(&kvm->stopping)) {
		if (ioctl(cpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			kvm_vm_stop(kvm, MVM_EXIT_ERROR, "KVM_RUN on vCPU %u: %s", cpu->id,
				    strerror(errno));
			break;
		}
		if (!kvm_cpu_exit(cpu))
			break;
	}
	return NULL;
}
