/* SPDX-License-Identifier: MIT */
/*
 * cpu.c - vCPUs: creation and the run loop (one thread per vCPU), on every host architecture.
 *
 * Theory of operation
 * -------------------
 * kvm_cpu_init() creates the vCPU and maps its kvm_run; kvm_arch_cpu_init() gives it its
 * registers: on x86 every vCPU gets the supported CPUID with its own APIC id, and only the
 * bootstrap vCPU gets registers (long mode at the kernel's 64-bit entry, %rsi at the zero
 * page; src/kvm/x86/x86.c), the others wait for INIT/SIPI from the in-kernel LAPIC; on arm64
 * every vCPU is initialised with PSCI 0.2, the first at the Image's entry with X0 = device
 * tree, the others powered off until the guest's PSCI CPU_ON (src/kvm/arm64/arm64.c).
 *
 * Each thread loops on KVM_RUN and dispatches exits: first to kvm_arch_cpu_exit() (x86: port
 * I/O, halts, triple faults), then the common ones: MMIO to the device bus in vm.c, system
 * events (PSCI SYSTEM_OFF / SYSTEM_RESET on arm64) as poweroff / reboot, entry failures and
 * internal errors as errors.  To stop, vm.c sets kvm->stopping and kicks each thread:
 * immediate_exit = 1 plus a signal with an empty handler (installed without SA_RESTART), so
 * KVM_RUN returns -EINTR whether the thread was inside it or about to enter it.
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

#include "kvm/kvm.h"
#include "runtime/error.h"
#include "sandbox/sandbox.h"

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
 * kvm_cpu_init() - create vCPU @id and set it up for boot (kvm_arch_cpu_init())
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_cpu_init(struct kvm_vm *kvm, struct kvm_cpu *cpu, unsigned int id)
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
	ret = kvm_arch_cpu_init(kvm, cpu);
	return ret < 0 ? ret : 0;
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
 * kvm_cpu_exit() - handle one exit
 * Return: true to keep running.
 */
static bool kvm_cpu_exit(struct kvm_cpu *cpu)
{
	struct kvm_run *run = cpu->run;
	struct kvm_vm *kvm = cpu->kvm;
	int ret = kvm_arch_cpu_exit(cpu);

	if (ret >= 0)
		return ret > 0;
	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		kvm_mmio(kvm, run->mmio.phys_addr, run->mmio.data,
			 run->mmio.len > 8 ? 8 : run->mmio.len, run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
		return true;
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
		kvm_vm_stop(kvm, MVM_EXIT_ERROR, "KVM internal error %u on vCPU %u",
			    run->internal.suberror, cpu->id);
		return false;
	default:
		kvm_vm_stop(kvm, MVM_EXIT_ERROR, "unexpected KVM exit %u on vCPU %u",
			    run->exit_reason, cpu->id);
		return false;
	}
}

/**
 * kvm_cpu_sandbox() - name the calling thread mvm-vcpu@id and sandbox it as a vCPU thread
 * @id:		vCPU number
 *
 * Return: 0 or -errno (reported on stderr).
 */
int kvm_cpu_sandbox(unsigned int id)
{
	struct sandbox_list list = SANDBOX_LIST(kvm_cpu_syscalls);
	char name[16];

	snprintf(name, sizeof(name), "mvm-vcpu%u", id);
	prctl(PR_SET_NAME, name);
	return sandbox_thread(name, &list, 1);
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
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, kvm_cpu_kick_signal());
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (kvm_cpu_sandbox(cpu->id)) {
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
