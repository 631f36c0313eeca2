/* SPDX-License-Identifier: MIT */
/*
 * boot.c - direct Linux boot: load a kernel image and the tables it reads into guest memory.
 *
 * Theory of operation
 * -------------------
 * We skip firmware and the real-mode setup code and enter the kernel the way the x86 64-bit
 * boot protocol (Documentation/x86/boot.rst) describes: the vCPU is already in long mode with
 * an identity map of the low 4 GiB (boot_write_page_tables()), a flat GDT with __BOOT_CS = 0x10
 * and __BOOT_DS = 0x18 (boot_write_gdt()), interrupts off, and %rsi pointing at a "zero page"
 * (struct boot_params, boot_write_params()) that carries the command line, initrd and the
 * e820 memory map.
 *
 * Two image formats:
 *  - vmlinux (ELF64): every PT_LOAD segment goes to its physical address p_paddr; the entry
 *    is e_entry, which the x86 linker script sets to phys_startup_64 (a virtual e_entry is
 *    translated through the segment holding it, as Firecracker does).  There is no setup
 *    header, so we write a minimal one (boot flag, "HdrS", loader type).
 *  - bzImage: the setup header at 0x1f1 must say "HdrS", protocol >= 2.12 and XLF_KERNEL_64;
 *    the protected-mode part after (setup_sects + 1) * 512 bytes is loaded at 1 MiB (or at
 *    pref_address for a non-relocatable kernel) and entered at load address + 0x200.  Its
 *    setup header is copied into the zero page.
 *
 * Every offset and length read from an image is checked against the image and against guest
 * memory before use; a bad image gives -ENOEXEC (or -EFBIG/-ENOMEM when it does not fit) and a
 * one-line message via mvm_set_error().
 *
 * All functions work on a flat buffer @mem of @mem_size bytes standing for guest physical
 * [0, mem_size): the RAM below the MMIO hole.  Nothing here touches KVM.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "runtime/error.h"

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)v);
	wr16(p + 2, (uint16_t)(v >> 16));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/**
 * range_ok() - is [@off, @off + @len) inside [0, @size) without overflow?
 */
static int range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/**
 * boot_load_elf() - load a vmlinux (ELF64, x86-64) at its physical addresses
 * @mem/@mem_size: guest memory below the MMIO hole
 * @img/@img_len: the file contents
 * @bi:		filled with the entry point and image end
 *
 * Return: 0, -ENOEXEC for a malformed image, -EFBIG when a segment lies outside guest memory.
 */
int boot_load_elf(uint8_t *mem, uint64_t mem_size, const uint8_t *img, size_t img_len,
		  struct boot_image *bi)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint64_t entry_phys = 0, end = 0;
	unsigned int i, loaded = 0;

	memset(bi, 0, sizeof(*bi));
	if (img_len < sizeof(eh))
		return mvm_set_error(-ENOEXEC, "kernel: truncated ELF header (%zu bytes)", img_len);
	memcpy(&eh, img, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG))
		return mvm_set_error(-ENOEXEC, "kernel: not an ELF file");
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64)
		return mvm_set_error(-ENOEXEC, "kernel: ELF is not a 64-bit x86-64 vmlinux");
	if (eh.e_phentsize != sizeof(ph) || eh.e_phnum == 0 ||
	    !range_ok(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(ph), img_len))
		return mvm_set_error(-ENOEXEC, "kernel: ELF program headers are truncated or corrupt");

	for (i = 0; i < eh.e_phnum; i++) {
		memcpy(&ph, img + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz || !range_ok(ph.p_offset, ph.p_filesz, img_len))
			return mvm_set_error(-ENOEXEC,
					     "kernel: ELF segment %u is truncated or corrupt", i);
		if (ph.p_paddr < BOOT_HIMEM_ADDR)
			return mvm_set_error(-ENOEXEC,
					     "kernel: ELF segment %u loads below 1 MiB (0x%llx)",
					     i, (unsigned long long)ph.p_paddr);
		if (!range_ok(ph.p_paddr, ph.p_memsz, mem_size))
			return mvm_set_error(-EFBIG,
					     "kernel: segment at 0x%llx+0x%llx does not fit in %llu MiB of guest memory",
					     (unsigned long long)ph.p_paddr,
					     (unsigned long long)ph.p_memsz,
					     (unsigned long long)(mem_size >> 20));
		memcpy(mem + ph.p_paddr, img + ph.p_offset, ph.p_filesz);
		memset(mem + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr + ph.p_memsz > end)
			end = ph.p_paddr + ph.p_memsz;
		/* e_entry is physical for vmlinux; accept a virtual one inside this segment. */
		if (eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz)
			entry_phys = eh.e_entry;
		else if (!entry_phys && eh.e_entry >= ph.p_vaddr &&
			 eh.e_entry - ph.p_vaddr < ph.p_memsz)
			entry_phys = eh.e_entry - ph.p_vaddr + ph.p_paddr;
		loaded++;
	}
	if (!loaded)
		return mvm_set_error(-ENOEXEC, "kernel: ELF has no loadable segment");
	if (!entry_phys)
		return mvm_set_error(-ENOEXEC, "kernel: ELF entry 0x%llx is outside its segments",
				     (unsigned long long)eh.e_entry);
	bi->entry = entry_phys;
	bi->load_end = end;
	return 0;
}

/**
 * boot_load_bzimage() - load the protected-mode part of a bzImage (64-bit boot protocol)
 * @mem/@mem_size: guest memory below the MMIO hole
 * @img/@img_len: the file contents
 * @bi:		filled with the entry point, image end and setup header
 *
 * Return: 0, -ENOEXEC for a malformed or too old image, -EFBIG when it does not fit.
 */
int boot_load_bzimage(uint8_t *mem, uint64_t mem_size, const uint8_t *img, size_t img_len,
		      struct boot_image *bi)
{
	uint64_t pm_off, pm_len, load, need;
	unsigned int setup_sects;
	uint16_t version;
	size_t hdr_len;

	memset(bi, 0, sizeof(*bi));
	if (img_len < HDR_END)
		return mvm_set_error(-ENOEXEC, "kernel: too short to be a bzImage (%zu bytes)",
				     img_len);
	if (rd16(img + HDR_BOOT_FLAG) != 0xAA55 || rd32(img + HDR_HEADER) != HDR_MAGIC)
		return mvm_set_error(-ENOEXEC, "kernel: no bzImage setup header (\"HdrS\" missing)");
	version = rd16(img + HDR_VERSION);
	if (version < 0x020c)
		return mvm_set_error(-ENOEXEC,
				     "kernel: boot protocol %u.%02u is too old (need 2.12 for 64-bit entry)",
				     version >> 8, version & 0xff);
	if (!(rd16(img + HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return mvm_set_error(-ENOEXEC, "kernel: bzImage has no 64-bit entry point");

	setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	pm_off = ((uint64_t)setup_sects + 1) * 512;
	if (pm_off >= img_len)
		return mvm_set_error(-ENOEXEC, "kernel: bzImage is truncated after its setup code");
	pm_len = img_len - pm_off;

	load = BOOT_HIMEM_ADDR;
	if (!img[HDR_RELOCATABLE]) {
		load = rd64(img + HDR_PREF_ADDRESS);
		if (load < BOOT_HIMEM_ADDR)
			return mvm_set_error(-ENOEXEC, "kernel: bad pref_address 0x%llx",
					     (unsigned long long)load);
	}
	need = rd32(img + HDR_INIT_SIZE);
	if (need < pm_len)
		need = pm_len;
	if (!range_ok(load, need, mem_size))
		return mvm_set_error(-EFBIG,
				     "kernel: needs %llu MiB at 0x%llx, guest memory is %llu MiB",
				     (unsigned long long)(need >> 20), (unsigned long long)load,
				     (unsigned long long)(mem_size >> 20));
	memcpy(mem + load, img + pm_off, pm_len);

	/* The header runs from 0x1f1 to 0x202 + the jump's offset byte, capped to what we know. */
	hdr_len = (size_t)(HDR_HEADER + img[HDR_JUMP + 1]) - BP_HDR;
	if (hdr_len > sizeof(bi->setup))
		hdr_len = sizeof(bi->setup);
	memcpy(bi->setup, img + BP_HDR, hdr_len);
	bi->setup_len = hdr_len;
	bi->is_bzimage = 1;
	bi->entry = load + 0x200;
	bi->load_end = load + need;
	return 0;
}

/**
 * boot_load_kernel() - load a vmlinux or a bzImage, whichever @img is
 * Return: 0 or -errno with mvm_last_error() set.
 */
int boot_load_kernel(uint8_t *mem, uint64_t mem_size, const uint8_t *img, size_t img_len,
		     struct boot_image *bi)
{
	if (img_len >= SELFMAG && !memcmp(img, ELFMAG, SELFMAG))
		return boot_load_elf(mem, mem_size, img, img_len, bi);
	if (img_len >= HDR_HEADER + 4 && rd32(img + HDR_HEADER) == HDR_MAGIC)
		return boot_load_bzimage(mem, mem_size, img, img_len, bi);
	return mvm_set_error(-ENOEXEC,
			     "kernel: not a kernel image (neither an ELF vmlinux nor a bzImage)");
}

/**
 * boot_initrd_max() - highest address + 1 the kernel accepts an initrd below
 */
static uint64_t boot_initrd_max(const struct boot_image *bi)
{
	uint64_t max = 0x7fffffffULL;	/* the default for protocol < 2.03, safe for all */

	if (bi->is_bzimage && bi->setup_len >= HDR_INITRD_ADDR_MAX + 4 - BP_HDR)
		max = rd32(bi->setup + (HDR_INITRD_ADDR_MAX - BP_HDR));
	return max + 1;
}

/**
 * boot_place_initrd() - copy the initrd as high as allowed, above the kernel
 * @mem/@mem_size: guest memory below the MMIO hole
 * @bi:		the loaded kernel (its end and initrd_addr_max)
 * @initrd/@len: the initrd contents
 * @addr:	its guest physical address
 *
 * Return: 0, or -EFBIG with a message when it does not fit.
 */
int boot_place_initrd(uint8_t *mem, uint64_t mem_size, const struct boot_image *bi,
		      const uint8_t *initrd, size_t len, uint64_t *addr)
{
	uint64_t top = boot_initrd_max(bi), a;

	if (top > mem_size)
		top = mem_size;
	if (len == 0 || len > top || ((top - len) & ~0xfffULL) < bi->load_end)
		return mvm_set_error(-EFBIG,
				     "initrd (%zu KiB) does not fit in guest memory above the kernel: use a larger --mem",
				     len >> 10);
	a = (top - len) & ~0xfffULL;
	memcpy(mem + a, initrd, len);
	*addr = a;
	return 0;
}

/**
 * boot_write_e820() - the e820 map into the zero page
 * @bp:		boot_params
 * @ram_size:	guest RAM in bytes (the part above the MMIO hole is at 4 GiB)
 */
static void boot_write_e820(uint8_t *bp, uint64_t ram_size)
{
	uint64_t low = ram_size < BOOT_MMIO_HOLE ? ram_size : BOOT_MMIO_HOLE;
	uint64_t e[4][3] = {
		{ 0, BOOT_MPTABLE_ADDR, E820_RAM },
		{ BOOT_MPTABLE_ADDR, BOOT_EBDA_END - BOOT_MPTABLE_ADDR, E820_RESERVED },
		{ BOOT_HIMEM_ADDR, low - BOOT_HIMEM_ADDR, E820_RAM },
		{ BOOT_HIGH_RAM, ram_size - low, E820_RAM },
	};
	unsigned int i, n = ram_size > low ? 4 : 3;

	for (i = 0; i < n; i++) {
		uint8_t *p = bp + BP_E820_TABLE + 20 * i;

		wr64(p, e[i][0]);
		wr64(p + 8, e[i][1]);
		wr32(p + 16, (uint32_t)e[i][2]);
	}
	bp[BP_E820_ENTRIES] = (uint8_t)n;
}

/**
 * boot_write_params() - the zero page and command line
 * @mem/@mem_size: guest memory below the MMIO hole
 * @bi:		the loaded kernel
 * @cmdline:	NUL-terminated command line
 * @initrd_addr/@initrd_len: where the initrd is (length 0: none)
 * @ram_size:	all guest RAM, for the e820 map
 *
 * Return: 0, or -EINVAL (command line too long, memory too small).
 */
int boot_write_params(uint8_t *mem, uint64_t mem_size, const struct boot_image *bi,
		      const char *cmdline, uint64_t initrd_addr, uint64_t initrd_len,
		      uint64_t ram_size)
{
	size_t clen = strlen(cmdline) + 1;
	uint32_t cmax = BOOT_CMDLINE_MAX;
	uint8_t *bp;

	if (mem_size < BOOT_HIMEM_ADDR * 2 || ram_size < mem_size)
		return mvm_set_error(-EINVAL, "guest memory too small for boot tables");
	bp = mem + BOOT_ZERO_PAGE_ADDR;
	memset(bp, 0, 4096);
	if (bi->is_bzimage) {
		memcpy(bp + BP_HDR, bi->setup, bi->setup_len);
		if (bi->setup_len >= HDR_CMDLINE_SIZE + 4 - BP_HDR &&
		    rd32(bp + HDR_CMDLINE_SIZE) + 1 < cmax)
			cmax = rd32(bp + HDR_CMDLINE_SIZE) + 1;
	} else {
		wr16(bp + HDR_BOOT_FLAG, 0xAA55);
		wr32(bp + HDR_HEADER, HDR_MAGIC);
		wr16(bp + HDR_VERSION, 0x020c);
		wr32(bp + HDR_KERNEL_ALIGNMENT, 0x1000000);
		wr32(bp + HDR_CMDLINE_SIZE, BOOT_CMDLINE_MAX - 1);
	}
	if (clen > cmax)
		return mvm_set_error(-EINVAL, "kernel command line too long (%zu bytes, max %u)",
				     clen - 1, cmax - 1);
	memcpy(mem + BOOT_CMDLINE_ADDR, cmdline, clen);

	bp[HDR_TYPE_OF_LOADER] = 0xff;
	bp[HDR_LOADFLAGS] |= 0x01 | 0x80;	/* LOADED_HIGH | CAN_USE_HEAP */
	wr16(bp + HDR_HEAP_END_PTR, 0xfe00);
	wr32(bp + HDR_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_ADDR);
	wr32(bp + BP_EXT_CMD_LINE_PTR, 0);
	if (initrd_len) {
		wr32(bp + HDR_RAMDISK_IMAGE, (uint32_t)initrd_addr);
		wr32(bp + HDR_RAMDISK_SIZE, (uint32_t)initrd_len);
		wr32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_addr >> 32));
		wr32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_len >> 32));
	}
	boot_write_e820(bp, ram_size);
	return 0;
}

/**
 * boot_write_page_tables() - identity-map 0..4 GiB with 2 MiB pages
 * Return: 0, or -EINVAL if memory is too small to hold the tables.
 */
int boot_write_page_tables(uint8_t *mem, uint64_t mem_size)
{
	unsigned int i;

	if (mem_size < BOOT_PD_ADDR + 4 * 4096)
		return -EINVAL;
	memset(mem + BOOT_PML4_ADDR, 0, 4096);
	memset(mem + BOOT_PDPT_ADDR, 0, 4096);
	wr64(mem + BOOT_PML4_ADDR, BOOT_PDPT_ADDR | 0x3);	/* present, writable */
	for (i = 0; i < 4; i++)
		wr64(mem + BOOT_PDPT_ADDR + 8 * i, (BOOT_PD_ADDR + 4096ULL * i) | 0x3);
	for (i = 0; i < 4 * 512; i++)	/* present, writable, 2 MiB page */
		wr64(mem + BOOT_PD_ADDR + 8ULL * i, ((uint64_t)i << 21) | 0x83);
	return 0;
}

/**
 * boot_write_gdt() - flat GDT: 0x10 = 64-bit code, 0x18 = data, 0x20 = TSS (boot protocol)
 * Return: 0, or -EINVAL if memory is too small.
 */
int boot_write_gdt(uint8_t *mem, uint64_t mem_size)
{
	static const uint64_t gdt[5] = {
		0,
		0,
		0x00af9b000000ffffULL,	/* __BOOT_CS: code, 64-bit, present, 4 GiB */
		0x00cf93000000ffffULL,	/* __BOOT_DS: data, read/write, 4 GiB */
		0x00808b0000000067ULL,	/* busy 64-bit TSS, base 0 */
	};
	unsigned int i;

	if (mem_size < BOOT_GDT_ADDR + sizeof(gdt))
		return -EINVAL;
	for (i = 0; i < 5; i++)
		wr64(mem + BOOT_GDT_ADDR + 8 * i, gdt[i]);
	return 0;
}
