/* SPDX-License-Identifier: MIT */
/*
 * boot.h - x86 direct Linux boot: kernel loaders and the tables a booting kernel reads.
 *
 * Everything here is a pure function over a flat buffer that stands for guest physical memory
 * [0, size) (the RAM below the 32-bit MMIO hole), so it can be unit-tested without KVM.
 */
#ifndef MVM_ARCH_X86_BOOT_H
#define MVM_ARCH_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

/* Guest physical layout of what the VMM writes before the kernel runs. */
#define BOOT_GDT_ADDR		0x500ULL
#define BOOT_ZERO_PAGE_ADDR	0x7000ULL
#define BOOT_STACK_ADDR		0x8ff0ULL
#define BOOT_PML4_ADDR		0x9000ULL
#define BOOT_PDPT_ADDR		0xa000ULL
#define BOOT_PD_ADDR		0xb000ULL	/* 4 pages: identity map of 0..4 GiB */
#define BOOT_CMDLINE_ADDR	0x20000ULL
#define BOOT_CMDLINE_MAX	4096
#define BOOT_MPTABLE_ADDR	0x9fc00ULL	/* last KiB of base memory: Linux scans it */
#define BOOT_EBDA_END		0xa0000ULL
#define BOOT_HIMEM_ADDR		0x100000ULL	/* bzImage protected-mode kernel */

/* Guest physical address map. */
#define BOOT_MMIO_HOLE		0xc0000000ULL	/* RAM below this, devices above */
#define BOOT_HIGH_RAM		0x100000000ULL	/* RAM beyond the hole continues here */

/* boot_params (the "zero page") offsets, from Documentation/x86/zero-page.rst. */
#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_HDR			0x1f1	/* struct setup_header */
#define BP_E820_TABLE		0x2d0
#define BP_E820_MAX		128

/* setup_header fields, as offsets into boot_params / the bzImage. */
#define HDR_SETUP_SECTS		0x1f1
#define HDR_BOOT_FLAG		0x1fe
#define HDR_JUMP		0x200
#define HDR_HEADER		0x202
#define HDR_VERSION		0x206
#define HDR_TYPE_OF_LOADER	0x210
#define HDR_LOADFLAGS		0x211
#define HDR_CODE32_START	0x214
#define HDR_RAMDISK_IMAGE	0x218
#define HDR_RAMDISK_SIZE	0x21c
#define HDR_HEAP_END_PTR	0x224
#define HDR_CMD_LINE_PTR	0x228
#define HDR_INITRD_ADDR_MAX	0x22c
#define HDR_KERNEL_ALIGNMENT	0x230
#define HDR_RELOCATABLE		0x234
#define HDR_XLOADFLAGS		0x236
#define HDR_CMDLINE_SIZE	0x238
#define HDR_PREF_ADDRESS	0x258
#define HDR_INIT_SIZE		0x260
#define HDR_END			0x268

#define HDR_MAGIC		0x53726448u	/* "HdrS" */
#define XLF_KERNEL_64		0x1

#define E820_RAM		1
#define E820_RESERVED		2

/**
 * struct boot_image - a loaded kernel
 * @entry:	guest physical address of the 64-bit entry point
 * @load_end:	first guest physical address above the loaded image (initrd goes above)
 * @is_bzimage:	true for a bzImage: @setup holds its setup header
 * @setup:	bytes HDR_SETUP_SECTS..HDR_END of the bzImage (copied into boot_params)
 * @setup_len:	how many of those the image really had
 */
struct boot_image {
	uint64_t entry;
	uint64_t load_end;
	int is_bzimage;
	uint8_t setup[HDR_END - BP_HDR];
	size_t setup_len;
};

int boot_load_kernel(uint8_t *mem, uint64_t mem_size, const uint8_t *img, size_t img_len,
		     struct boot_image *bi);
int boot_load_elf(uint8_t *mem, uint64_t mem_size, const uint8_t *img, size_t img_len,
		  struct boot_image *bi);
int boot_load_bzimage(uint8_t *mem, uint64_t mem_size, const uint8_t *img, size_t img_len,
		      struct boot_image *bi);
int boot_place_initrd(uint8_t *mem, uint64_t mem_size, const struct boot_image *bi,
		      const uint8_t *initrd, size_t len, uint64_t *addr);
int boot_write_params(uint8_t *mem, uint64_t mem_size, const struct boot_image *bi,
		      const char *cmdline, uint64_t initrd_addr, uint64_t initrd_len,
		      uint64_t ram_size);
int boot_write_page_tables(uint8_t *mem, uint64_t mem_size);
int boot_write_gdt(uint8_t *mem, uint64_t mem_size);

/**
 * struct mptable_irq - an interrupt line announced in the MP table
 * @irq:	ISA IRQ = IOAPIC pin
 * @level:	level-triggered active-high (virtio-mmio) rather than ISA edge
 */
struct mptable_irq {
	uint8_t irq;
	uint8_t level;
};

int mptable_write(uint8_t *mem, uint64_t mem_size, unsigned int cpus,
		  const struct mptable_irq *level_irqs, unsigned int nr_level);

#endif
