/* SPDX-License-Identifier: MIT */
/*
 * machine.h - the arm64 machine model: memory map, interrupt numbering, device tree, Image boot.
 *
 * Theory of operation
 * -------------------
 * One description of the arm64 guest machine that every arm64 backend uses: KVM on Linux/arm64
 * and, later, Hypervisor.framework on macOS (docs/macos.md).  It knows nothing of any
 * hypervisor; a backend
 *   1. fills a struct arm64_machine with arm64_machine_init() (RAM size, vCPU count) and
 *      arm64_machine_add_virtio() (one slot per virtio-mmio device: its window and SPI);
 *   2. maps guest RAM at ARM64_RAM_BASE and calls arm64_boot_prepare() on it: the Image goes to
 *      RAM_BASE + text_offset, the device tree (arm64_fdt_build()) to the top 2 MiB of RAM,
 *      the initrd right below it; the result is the boot vCPU's registers (struct
 *      arm64_boot_regs: PC, X0 = device tree, PSTATE = EL1h with DAIF masked);
 *   3. creates its GICv3 at ARM64_GIC_DIST_BASE / ARM64_GIC_REDIST_BASE, gives vCPU i the
 *      MPIDR arm64_cpu_mpidr(i), implements PSCI 0.2 over HVC (KVM does it in the kernel) and
 *      routes MMIO in the device windows to the same device code as x86 (the 16550 UART of
 *      src/devices/serial.c, with registers one byte apart, and virtio-mmio);
 *   4. raises device interrupts as SPIs (arm64_spi_intid() gives the GIC INTID).
 *
 * Memory map (guest physical; the low part follows QEMU's "virt" machine so that tools and
 * habits carry over; everything fits a 36-bit IPA space, the smallest HVF offers):
 *   0x0800_0000  GICv3 distributor         64 KiB
 *   0x080a_0000  GICv3 redistributors      128 KiB per vCPU (ARM64_MAX_CPUS of them)
 *   0x0900_0000  UART (ns16550a)           4 KiB, SPI 1
 *   0x0a00_0000  virtio-mmio slot i        4 KiB each at + i * 4 KiB, SPI 16 + i
 *   0x4000_0000  RAM                       up to ARM64_MAX_RAM
 * Interrupts: SPIs are level-triggered active-high; the architected timer uses the usual PPIs
 * (secure 13, non-secure 14, virtual 11, hypervisor 10).
 *
 * Only standard C and libfdt: this compiles for any host, including macOS.
 */
#ifndef MVM_ARCH_ARM64_MACHINE_H
#define MVM_ARCH_ARM64_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#define ARM64_GIC_DIST_BASE	0x08000000ULL
#define ARM64_GIC_DIST_SIZE	0x10000ULL
#define ARM64_GIC_REDIST_BASE	0x080a0000ULL
#define ARM64_GIC_REDIST_SIZE	0x20000ULL	/* per vCPU: RD_base + SGI_base frames */
#define ARM64_UART_BASE		0x09000000ULL
#define ARM64_UART_SIZE		0x1000ULL
#define ARM64_UART_SPI		1
#define ARM64_UART_CLOCK	1843200		/* Hz, as the 8250 driver expects */
#define ARM64_VIRTIO_BASE	0x0a000000ULL
#define ARM64_VIRTIO_SLOT_SIZE	0x1000ULL
#define ARM64_VIRTIO_FIRST_SPI	16
#define ARM64_MAX_VIRTIO	16
#define ARM64_RAM_BASE		0x40000000ULL
#define ARM64_MAX_RAM		(63ULL << 30)	/* RAM ends below 64 GiB (36-bit IPA) */
#define ARM64_MIN_RAM		(16ULL << 20)
#define ARM64_MAX_CPUS		32		/* redistributors fit below the UART */

/* GIC interrupt numbers (INTIDs) and device tree interrupt specifiers. */
#define ARM64_GIC_SPI_BASE	32		/* INTID of SPI 0 */
#define ARM64_GIC_PPI_BASE	16		/* INTID of PPI 0 */
#define ARM64_FDT_IRQ_SPI	0		/* first cell of an "interrupts" triple */
#define ARM64_FDT_IRQ_PPI	1
#define ARM64_FDT_IRQ_EDGE_RISING	1	/* third cell */
#define ARM64_FDT_IRQ_LEVEL_HIGH	4
#define ARM64_FDT_IRQ_LEVEL_LOW		8
#define ARM64_TIMER_PPI_SEC	13
#define ARM64_TIMER_PPI_NONSEC	14
#define ARM64_TIMER_PPI_VIRT	11
#define ARM64_TIMER_PPI_HYP	10

#define ARM64_FDT_MAX_SIZE	0x200000ULL	/* booting.rst: a dtb is at most 2 MiB */
#define ARM64_FDT_PHANDLE_GIC	1
#define ARM64_CMDLINE_MAX	4096

/* PSTATE at kernel entry: EL1 with SP_EL1 (EL1h), D, A, I and F masked. */
#define ARM64_PSTATE_EL1H	0x5ULL
#define ARM64_PSTATE_DAIF	0x3c0ULL
#define ARM64_BOOT_PSTATE	(ARM64_PSTATE_DAIF | ARM64_PSTATE_EL1H)

/* The Image header (Documentation/arm64/booting.rst). */
#define ARM64_IMAGE_HDR_SIZE	64
#define ARM64_IMAGE_MAGIC	0x644d5241u	/* "ARM\x64", little-endian at offset 56 */
#define ARM64_IMAGE_FLAG_BE	0x1ULL
#define ARM64_IMAGE_DEFAULT_TEXT_OFFSET	0x80000ULL	/* image_size == 0: pre-3.17 kernels */

/**
 * struct arm64_mmio_slot - a device window in the memory map
 * @base:	guest physical address
 * @size:	bytes
 * @spi:	its shared peripheral interrupt (INTID = ARM64_GIC_SPI_BASE + @spi)
 */
struct arm64_mmio_slot {
	uint64_t base, size;
	unsigned int spi;
};

/**
 * struct arm64_machine - one arm64 guest machine
 * @ram_size:	bytes of RAM at ARM64_RAM_BASE
 * @ncpus:	vCPUs (MPIDR of vCPU i: arm64_cpu_mpidr(i))
 * @uart:	the console UART (ns16550a)
 * @virtio:	virtio-mmio slots, in the order they were added
 * @nr_virtio:	how many
 */
struct arm64_machine {
	uint64_t ram_size;
	unsigned int ncpus;
	struct arm64_mmio_slot uart;
	struct arm64_mmio_slot virtio[ARM64_MAX_VIRTIO];
	unsigned int nr_virtio;
};

/**
 * struct arm64_image - what the Image header says
 * @text_offset:	load offset from a 2 MiB aligned base
 * @image_size:		bytes the kernel occupies from its load address, BSS included
 * @flags:		header flags (bit 0: big-endian; bits 1-2: page size; bit 3: placement)
 */
struct arm64_image {
	uint64_t text_offset;
	uint64_t image_size;
	uint64_t flags;
};

/**
 * struct arm64_boot_regs - the boot vCPU's state at kernel entry; other vCPUs start by PSCI
 * @pc:		the kernel's first instruction
 * @x0:		guest physical address of the device tree (X1-X3 are zero)
 * @pstate:	ARM64_BOOT_PSTATE
 * @kernel_end:	first address above the kernel's image_size
 * @initrd_addr/@initrd_size: where the initrd went (size 0: none)
 * @fdt_addr/@fdt_size: where the device tree went
 */
struct arm64_boot_regs {
	uint64_t pc, x0, pstate;
	uint64_t kernel_end;
	uint64_t initrd_addr, initrd_size;
	uint64_t fdt_addr, fdt_size;
};

int arm64_machine_init(struct arm64_machine *m, uint64_t ram_size, unsigned int ncpus);
int arm64_machine_add_virtio(struct arm64_machine *m, struct arm64_mmio_slot *slot);
uint64_t arm64_cpu_mpidr(unsigned int cpu);

/**
 * arm64_spi_intid() - the GIC interrupt ID of a shared peripheral interrupt
 * @spi:	SPI number as in the device tree (and struct arm64_mmio_slot)
 * Return: ARM64_GIC_SPI_BASE + @spi
 */
static inline unsigned int arm64_spi_intid(unsigned int spi)
{
	return ARM64_GIC_SPI_BASE + spi;
}

int arm64_fdt_build(const struct arm64_machine *m, const char *cmdline, uint64_t initrd_addr,
		    uint64_t initrd_size, void *buf, size_t len);

int arm64_image_parse(const uint8_t *img, size_t len, struct arm64_image *out);
int arm64_boot_prepare(const struct arm64_machine *m, uint8_t *ram, const uint8_t *kernel,
		       size_t kernel_len, const uint8_t *initrd, size_t initrd_len,
		       const char *cmdline, struct arm64_boot_regs *regs);

#endif
