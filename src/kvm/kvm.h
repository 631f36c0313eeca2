/* SPDX-License-Identifier: MIT */
/*
 * kvm.h - the KVM backend's internal interfaces (VM, vCPUs, device buses, architecture hooks).
 *
 * vm.c, cpu.c and devices.c are the same on every host architecture; what differs (interrupt
 * controller, memory layout, boot, vCPU registers, exits that only one architecture has)
 * is behind the kvm_arch_*() hooks below, implemented once per architecture in src/kvm/x86/
 * and src/kvm/arm64/, each with its private state in struct kvm_arch (its arch.h).
 */
#ifndef MVM_KVM_KVM_H
#define MVM_KVM_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/guest_mem.h"
#include "devices/serial.h"
#include "microvm/runtime.h"

#if defined(__x86_64__)
#include "kvm/x86/arch.h"
#elif defined(__aarch64__)
#include "kvm/arm64/arch.h"
#else
#error "the KVM backend supports x86-64 and arm64 hosts"
#endif

#define KVM_MAX_CPUS		32	/* what the MP table (x86) and the GIC map (arm64) hold */
#define KVM_MIN_MEM_MIB		32
#define KVM_MAX_MMIO		16
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
 * @irq:	its interrupt line (x86: announced on the command line; arm64: an SPI, in the
 *		device tree)
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
	struct mvm_gmem gmem;		/* the same RAM, for devices */
	unsigned int ncpus;
	struct kvm_cpu cpus[KVM_MAX_CPUS];
	struct serial *serial;
	unsigned int serial_irq;	/* the UART's line, for kvm_irq_line() */
	struct kvm_mmio_dev mmio[KVM_MAX_MMIO];
	unsigned int nr_mmio;
	char cmdline[KVM_CMDLINE_MAX];
	atomic_bool stopping;
	atomic_bool panicked;
	char line[160];			/* console line being assembled, for panic detection */
	size_t line_len;
	pthread_mutex_t line_lock;
	struct kvm_arch arch;		/* the architecture's own state (kvm/ARCH/arch.h) */
	mvm_vsock *vsock;		/* client over the virtio-vsock device (devices.c) */
	struct virtio_rng *rng;		/* the virtio-rng device, owned by its slot (devices.c) */
};

int kvm_cpu_init(struct kvm_vm *kvm, struct kvm_cpu *cpu, unsigned int id);
void *kvm_cpu_thread(void *arg);
int kvm_cpu_sandbox(unsigned int id);
void kvm_cpu_kick(struct kvm_cpu *cpu);

void kvm_vm_stop(struct kvm_vm *kvm, enum mvm_exit_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kvm_mmio(struct kvm_vm *kvm, uint64_t addr, uint8_t *data, uint32_t len, int is_write);
void kvm_irq_line(struct kvm_vm *kvm, unsigned int irq, int level);
int kvm_add_mmio(struct kvm_vm *kvm, kvm_mmio_fn fn, void *opaque, void (*free_fn)(void *),
		 unsigned int *irq, uint64_t *base);
int kvm_add_mmio_at(struct kvm_vm *kvm, uint64_t base, uint64_t size, unsigned int irq,
		    kvm_mmio_fn fn, void *opaque, void (*free_fn)(void *));
int kvm_read_file(const char *path, const char *what, uint64_t max, uint8_t **buf,
		  size_t *len);
void kvm_serial_mmio(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write);
int kvm_devices_add(struct kvm_vm *kvm);
int kvm_devices_stats(struct kvm_vm *kvm, char *buf, size_t len);
struct virtio_dev_ops;
int kvm_virtio_add(struct kvm_vm *kvm, const struct virtio_dev_ops *ops, void *dev,
		   void (*dev_free)(void *dev));

int kvm_pvm_host(void);
int kvm_cmdline_build(char *out, size_t out_len, const char *user, int pvm,
		      const struct kvm_mmio_dev *devs, unsigned int nr);
int kvm_cmdline_add_time(char *out, size_t out_len, long long now);

/**
 * struct kvm_ram_region - one KVM memory slot over part of kvm->mem
 * @gpa:	guest physical address
 * @offset:	into kvm->mem
 * @size:	bytes
 */
struct kvm_ram_region {
	uint64_t gpa, offset, size;
};

#define KVM_MAX_RAM_REGIONS	2

/*
 * The architecture hooks (src/kvm/x86/x86.c, src/kvm/arm64/arm64.c), in the order create()
 * calls them.  Each returns 0 or -errno with mvm_last_error() set unless said otherwise.
 *   kvm_arch_vm_init()	after KVM_CREATE_VM: the interrupt controller and whatever must
 *			exist before memory and vCPUs (x86: TSS, identity map, irqchip, PIT)
 *   kvm_arch_ram_layout()	where guest RAM goes: fills @r, returns how many regions
 *   kvm_arch_devices()	the console UART and legacy devices (not virtio: devices.c)
 *   kvm_arch_mmio_slot()	base and interrupt line of virtio-mmio slot @index
 *   kvm_arch_load_guest()	kernel, initrd, command line, boot tables into guest RAM
 *   kvm_arch_cpu_init()	after KVM_CREATE_VCPU and the kvm_run mapping: registers
 *   kvm_arch_vm_ready()	after every vCPU exists (arm64: initialise the vGIC)
 *   kvm_arch_irq()		the KVM_IRQ_LINE number of line @irq (void: cannot fail)
 *   kvm_arch_cpu_exit()	an exit the common loop does not know: 1 to keep running,
 *			0 to stop (after kvm_vm_stop()), -1 when it is not one of its own
 *   kvm_arch_destroy()	free struct kvm_arch (also after a failed create)
 */
int kvm_arch_vm_init(struct kvm_vm *kvm);
unsigned int kvm_arch_ram_layout(struct kvm_vm *kvm, struct kvm_ram_region *r);
int kvm_arch_devices(struct kvm_vm *kvm);
int kvm_arch_mmio_slot(struct kvm_vm *kvm, unsigned int index, uint64_t *base,
		       uint64_t *size, unsigned int *irq);
int kvm_arch_load_guest(struct kvm_vm *kvm);
int kvm_arch_cpu_init(struct kvm_vm *kvm, struct kvm_cpu *cpu);
int kvm_arch_vm_ready(struct kvm_vm *kvm);
uint32_t kvm_arch_irq(struct kvm_vm *kvm, unsigned int irq);
int kvm_arch_cpu_exit(struct kvm_cpu *cpu);
void kvm_arch_destroy(struct kvm_vm *kvm);

#endif
