/* SPDX-License-Identifier: MIT */
/*
 * kvm.h - the KVM backend's internal interfaces (VM, vCPUs, device buses).
 */
#ifndef MVM_KVM_KVM_H
#define MVM_KVM_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/guest_mem.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "microvm/runtime.h"

#define KVM_MAX_CPUS		32	/* what the MP table holds */
#define KVM_MIN_MEM_MIB		32
#define KVM_MAX_MMIO		16
#define KVM_MMIO_BASE		0xd0000000ULL	/* virtio-mmio slot i at base + i * 0x1000 */
#define KVM_MMIO_SLOT_SIZE	0x1000ULL
#define KVM_MMIO_FIRST_IRQ	5		/* slot i raises IRQ 5 + i */
#define KVM_CMDLINE_MAX		4096

/**
 * typedef kvm_mmio_fn - an MMIO access to a device
 * @opaque:	the device
 * @offset:	from the device's base
 * @data:	bytes written, or where to put the bytes read
 * @len:	1, 2, 4 or 8
 * @is_write:	direction
 */
typedef void (*kvm_mmio_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			    int is_write);

/**
 * struct kvm_mmio_dev - one device on the MMIO bus
 * @base/@size:	guest physical window
 * @irq:	its interrupt line (announced on the command line for virtio)
 * @fn/@opaque:	access handler
 * @free:	releases @opaque at VM destruction (may be NULL)
 */
struct kvm_mmio_dev {
	uint64_t base, size;
	unsigned int irq;
	kvm_mmio_fn fn;
	void *opaque;
	void (*free)(void *opaque);
};

struct kvm_vm;

/**
 * struct kvm_cpu - one vCPU and its thread
 */
struct kvm_cpu {
	struct kvm_vm *kvm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

/**
 * struct kvm_vm - the KVM backend's private state of one VM
 */
struct virtio_rng;

struct kvm_vm {
	mvm_vm *vm;
	struct mvm_config cfg;
	int kvm_fd, vm_fd;
	size_t run_size;
	uint8_t *mem;			/* all guest RAM, one mapping */
	uint64_t mem_size;		/* bytes of guest RAM */
	uint64_t low_size;		/* of which below BOOT_MMIO_HOLE */
	struct mvm_gmem gmem;		/* the same RAM, for devices */
	unsigned int ncpus;
	struct kvm_cpu cpus[KVM_MAX_CPUS];
	struct serial *serial;
	struct i8042 i8042;
	struct kvm_mmio_dev mmio[KVM_MAX_MMIO];
	unsigned int nr_mmio;
	char cmdline[KVM_CMDLINE_MAX];
	atomic_bool stopping;
	atomic_bool panicked;
	char line[160];			/* console line being assembled, for panic detection */
	size_t line_len;
	pthread_mutex_t line_lock;
	struct kvm_cpuid2 *cpuid;
	mvm_vsock *vsock;		/* client over the virtio-vsock device (devices.c) */
	struct virtio_rng *rng;		/* the virtio-rng device, owned by its slot (devices.c) */
};

int kvm_cpu_init(struct kvm_vm *kvm, struct kvm_cpu *cpu, unsigned int id, uint64_t entry);
void *kvm_cpu_thread(void *arg);
int kvm_cpu_sandbox(unsigned int id);
void kvm_cpu_kick(struct kvm_cpu *cpu);

void kvm_vm_stop(struct kvm_vm *kvm, enum mvm_exit_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kvm_pio(struct kvm_vm *kvm, uint16_t port, uint8_t *data, uint32_t size, int is_write);
void kvm_mmio(struct kvm_vm *kvm, uint64_t addr, uint8_t *data, uint32_t len, int is_write);
void kvm_irq_line(struct kvm_vm *kvm, unsigned int irq, int level);
int kvm_add_mmio(struct kvm_vm *kvm, kvm_mmio_fn fn, void *opaque, void (*free_fn)(void *),
		 unsigned int *irq, uint64_t *base);
int kvm_devices_add(struct kvm_vm *kvm);
int kvm_devices_stats(struct kvm_vm *kvm, char *buf, size_t len);
struct virtio_dev_ops;
int kvm_virtio_add(struct kvm_vm *kvm, const struct virtio_dev_ops *ops, void *dev,
		   void (*dev_free)(void *dev));

int kvm_pvm_host(void);
int kvm_cmdline_build(char *out, size_t out_len, const char *user, int pvm,
		      const struct kvm_mmio_dev *devs, unsigned int nr);
int kvm_cmdline_add_time(char *out, size_t out_len, long long now);

#endif
