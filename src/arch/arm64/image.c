/* SPDX-License-Identifier: MIT */
/*
 * image.c - the arm64 Linux "Image" header, and placing kernel, initrd and device tree in RAM.
 *
 * Theory of operation
 * -------------------
 * An arm64 kernel Image (Documentation/arm64/booting.rst) starts with a 64-byte header, all
 * fields little-endian:
 *   0  code0, code1 (u32 each)   the first instructions (or "MZ" for an EFI stub kernel)
 *   8  text_offset (u64)         load offset from a 2 MiB aligned base of RAM
 *   16 image_size (u64)          bytes the kernel needs from its load address, BSS included
 *   24 flags (u64)               bit 0 big-endian, bits 1-2 page size, bit 3 placement
 *   32 res2, res3, res4 (u64)
 *   56 magic (u32)               "ARM\x64"
 *   60 res5 (u32)                PE header offset for EFI
 * There is nothing to relocate: the file is copied as is to ARM64_RAM_BASE + text_offset and
 * entered at its first byte with X0 = the device tree, MMU and caches off, at EL1 (or EL2)
 * with DAIF masked.  We refuse big-endian kernels (the devices are little-endian only) and
 * image_size == 0 (kernels before 3.17, whose BSS size is unknown).
 *
 * Placement (arm64_boot_prepare()): the device tree takes the top 2 MiB of RAM (booting.rst:
 * 8-byte aligned, at most 2 MiB, not sharing a 2 MiB block with anything mapped differently),
 * the initrd sits page-aligned right below it, and both must stay above the kernel's
 * image_size.  Every length from the image is checked for overflow and against RAM; a bad
 * image gives -ENOEXEC, one that does not fit -EFBIG, each with a one-line mvm_set_error().
 *
 * Only standard C: shared with the macOS (HVF) backend.
 */
#include <errno.h>
#include <string.h>

#include "arch/arm64/machine.h"
#include "runtime/error.h"

#define ARM64_PAGE		0x1000ULL
#define ARM64_2M		0x200000ULL

/* le32() / le64() - little-endian fields of the header, whatever the host's byte order */
static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/**
 * arm64_image_parse() - read and check an Image header
 * @img:	the kernel file
 * @len:	its length
 * @out:	text_offset, image_size and flags
 *
 * Return: 0, or -ENOEXEC with mvm_last_error() naming what is wrong.
 */
int arm64_image_parse(const uint8_t *img, size_t len, struct arm64_image *out)
{
	struct arm64_image im;

	if (len < ARM64_IMAGE_HDR_SIZE)
		return mvm_set_error(-ENOEXEC, "kernel: truncated arm64 Image header (%zu bytes)",
				     len);
	if (le32(img + 56) != ARM64_IMAGE_MAGIC)
		return mvm_set_error(-ENOEXEC,
				     "kernel: not an arm64 Image (no \"ARM\\x64\" magic at offset 56)");
	im.text_offset = le64(img + 8);
	im.image_size = le64(img + 16);
	im.flags = le64(img + 24);
	if (im.flags & ARM64_IMAGE_FLAG_BE)
		return mvm_set_error(-ENOEXEC, "kernel: big-endian arm64 Image is not supported");
	if (!im.image_size)
		return mvm_set_error(-ENOEXEC,
				     "kernel: arm64 Image without image_size (kernels before 3.17 are not supported)");
	if (im.text_offset % ARM64_PAGE)
		return mvm_set_error(-ENOEXEC, "kernel: arm64 Image text_offset 0x%llx is not page aligned",
				     (unsigned long long)im.text_offset);
	if (im.text_offset > ARM64_MAX_RAM || im.image_size > ARM64_MAX_RAM)
		return mvm_set_error(-ENOEXEC, "kernel: arm64 Image text_offset/image_size out of range");
	*out = im;
	return 0;
}

/**
 * arm64_boot_prepare() - load kernel and initrd into RAM, write the device tree, and say how
 * the boot vCPU starts
 * @m:		the machine (arm64_machine_init(), devices added)
 * @ram:	host mapping of guest RAM: @m->ram_size bytes standing for ARM64_RAM_BASE onwards
 * @kernel:	the Image
 * @kernel_len:	its length
 * @initrd:	the initrd, or NULL
 * @initrd_len:	its length (0: none)
 * @cmdline:	kernel command line (may be NULL)
 * @regs:	the boot vCPU's PC, X0 and PSTATE, and where everything went
 *
 * Return: 0; -ENOEXEC (bad Image), -EFBIG (does not fit in RAM) or -ENOSPC (device tree over
 * 2 MiB), with mvm_last_error() set.
 */
int arm64_boot_prepare(const struct arm64_machine *m, uint8_t *ram, const uint8_t *kernel,
		       size_t kernel_len, const uint8_t *initrd, size_t initrd_len,
		       const char *cmdline, struct arm64_boot_regs *regs)
{
	struct arm64_image im;
	uint64_t need, fdt_off, initrd_off = 0, kernel_end;
	int ret;

	ret = arm64_image_parse(kernel, kernel_len, &im);
	if (ret)
		return ret;
	if (m->ram_size < 2 * ARM64_FDT_MAX_SIZE)
		return mvm_set_error(-EFBIG, "arm64: %llu bytes of RAM is too little",
				     (unsigned long long)m->ram_size);
	fdt_off = m->ram_size - ARM64_FDT_MAX_SIZE;
	need = im.image_size > kernel_len ? im.image_size : kernel_len;
	kernel_end = im.text_offset + need;		/* both <= ARM64_MAX_RAM: no overflow */
	kernel_end = (kernel_end + ARM64_PAGE - 1) & ~(ARM64_PAGE - 1);
	if (kernel_end > fdt_off)
		return mvm_set_error(-EFBIG,
				     "kernel: the arm64 Image needs %llu MiB, more than the %llu MiB of RAM",
				     (unsigned long long)((kernel_end + ARM64_FDT_MAX_SIZE) >> 20),
				     (unsigned long long)(m->ram_size >> 20));
	if (initrd_len) {
		if (initrd_len > fdt_off - kernel_end)
			return mvm_set_error(-EFBIG,
					     "initrd: %zu bytes do not fit in RAM beside the kernel (%llu MiB of RAM)",
					     initrd_len, (unsigned long long)(m->ram_size >> 20));
		initrd_off = (fdt_off - initrd_len) & ~(ARM64_PAGE - 1);
	}

	memset(regs, 0, sizeof(*regs));
	regs->fdt_addr = ARM64_RAM_BASE + fdt_off;
	if (initrd_len) {
		regs->initrd_addr = ARM64_RAM_BASE + initrd_off;
		regs->initrd_size = initrd_len;
	}
	ret = arm64_fdt_build(m, cmdline, regs->initrd_addr, regs->initrd_size, ram + fdt_off,
			      ARM64_FDT_MAX_SIZE);
	if (ret < 0)
		return ret;
	regs->fdt_size = (uint64_t)ret;
	memcpy(ram + im.text_offset, kernel, kernel_len);
	memset(ram + im.text_offset + kernel_len, 0, need - kernel_len);	/* BSS */
	if (initrd_len)
		memcpy(ram + initrd_off, initrd, initrd_len);
	regs->pc = ARM64_RAM_BASE + im.text_offset;
	regs->x0 = regs->fdt_addr;
	regs->pstate = ARM64_BOOT_PSTATE;
	regs->kernel_end = ARM64_RAM_BASE + kernel_end;
	return 0;
}
