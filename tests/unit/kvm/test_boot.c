/* SPDX-License-Identifier: MIT */
/*
 * test_boot.c - kernel loaders and boot tables against a simulated guest memory buffer.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/boot.h"
#include "kvm/kvm.h"
#include "microvm/error.h"

#define MEM_SIZE	(64u << 20)

static uint8_t *mem;

static int setup(void **state)
{
	(void)state;
	mem = calloc(1, MEM_SIZE);
	return mem ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(mem);
	return 0;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* A two-segment vmlinux-like ELF: code at 16 MiB (entry), bss-only segment after it. */
static size_t make_elf(uint8_t *buf, size_t cap)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	size_t off = sizeof(eh) + sizeof(ph);

	assert_true(cap >= off + 256);
	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_entry = 0x1000000;
	eh.e_phoff = sizeof(eh);
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 2;
	memset(ph, 0, sizeof(ph));
	ph[0].p_type = PT_LOAD;
	ph[0].p_offset = off;
	ph[0].p_vaddr = 0xffffffff81000000ULL;
	ph[0].p_paddr = 0x1000000;
	ph[0].p_filesz = 256;
	ph[0].p_memsz = 0x2000;
	ph[1].p_type = PT_LOAD;
	ph[1].p_offset = off + 256;
	ph[1].p_vaddr = 0xffffffff81100000ULL;
	ph[1].p_paddr = 0x1100000;
	ph[1].p_filesz = 0;
	ph[1].p_memsz = 0x10000;
	memcpy(buf, &eh, sizeof(eh));
	memcpy(buf + sizeof(eh), ph, sizeof(ph));
	memset(buf + off, 0xcc, 256);
	return off + 256;
}

static void test_elf_loads_segments(void **state)
{
	uint8_t img[1024];
	struct boot_image bi;
	size_t len = make_elf(img, sizeof(img));

	(void)state;
	memset(mem + 0x1000000 + 256, 0x55, 16);	/* must be zeroed: memsz > filesz */
	assert_int_equal(boot_load_kernel(mem, MEM_SIZE, img, len, &bi), 0);
	assert_int_equal(bi.entry, 0x1000000);
	assert_int_equal(bi.load_end, 0x1110000);
	assert_false(bi.is_bzimage);
	assert_int_equal(mem[0x1000000], 0xcc);
	assert_int_equal(mem[0x1000000 + 255], 0xcc);
	assert_int_equal(mem[0x1000000 + 256], 0);
}

static void test_elf_virtual_entry_is_translated(void **state)
{
	uint8_t img[1024];
	struct boot_image bi;
	size_t len = make_elf(img, sizeof(img));
	Elf64_Ehdr eh;

	(void)state;
	memcpy(&eh, img, sizeof(eh));
	eh.e_entry = 0xffffffff81000040ULL;
	memcpy(img, &eh, sizeof(eh));
	assert_int_equal(boot_load_elf(mem, MEM_SIZE, img, len, &bi), 0);
	assert_int_equal(bi.entry, 0x1000040);
}

static void test_elf_truncated_everywhere(void **state)
{
	uint8_t img[1024];
	struct boot_image bi;
	size_t len = make_elf(img, sizeof(img)), cut;

	(void)state;
	/* Every prefix that cuts a header or the first segment's data must be refused. */
	for (cut = 0; cut < len - 1; cut++) {
		int ret = boot_load_kernel(mem, MEM_SIZE, img, cut, &bi);

		assert_true(ret == -ENOEXEC);
		assert_true(strlen(mvm_last_error()) > 0);
	}
}

static void test_elf_corrupt_headers(void **state)
{
	uint8_t img[1024], bad[1024];
	struct boot_image bi;
	size_t len = make_elf(img, sizeof(img));
	Elf64_Ehdr eh;
	Elf64_Phdr ph;

	(void)state;
	memcpy(bad, img, len);
	bad[EI_CLASS] = ELFCLASS32;
	assert_int_equal(boot_load_elf(mem, MEM_SIZE, bad, len, &bi), -ENOEXEC);

	memcpy(bad, img, len);
	memcpy(&eh, bad, sizeof(eh));
	eh.e_phoff = 0xffffffffffffff00ULL;	/* overflow bait */
	memcpy(bad, &eh, sizeof(eh));
	assert_int_equal(boot_load_elf(mem, MEM_SIZE, bad, len, &bi), -ENOEXEC);

	memcpy(bad, img, len);
	memcpy(&ph, bad + sizeof(eh), sizeof(ph));
	ph.p_filesz = ph.p_memsz + 1;
	memcpy(bad + sizeof(eh), &ph, sizeof(ph));
	assert_int_equal(boot_load_elf(mem, MEM_SIZE, bad, len, &bi), -ENOEXEC);

	memcpy(bad, img, len);
	memcpy(&ph, bad + sizeof(eh), sizeof(ph));
	ph.p_paddr = 0x1000;			/* would overwrite our boot tables */
	memcpy(bad + sizeof(eh), &ph, sizeof(ph));
	assert_int_equal(boot_load_elf(mem, MEM_SIZE, bad, len, &bi), -ENOEXEC);

	memcpy(bad, img, len);
	memcpy(&ph, bad + sizeof(eh), sizeof(ph));
	ph.p_paddr = 0xfffffffffffff000ULL;	/* wraps */
	memcpy(bad + sizeof(eh), &ph, sizeof(ph));
	assert_int_equal(boot_load_elf(mem, MEM_SIZE, bad, len, &bi), -EFBIG);

	memcpy(bad, img, len);
	memcpy(&eh, bad, sizeof(eh));
	eh.e_entry = 0x5000000;			/* outside every segment */
	memcpy(bad, &eh, sizeof(eh));
	assert_int_equal(boot_load_elf(mem, MEM_SIZE, bad, len, &bi), -ENOEXEC);
}

static void test_elf_too_big_for_memory(void **state)
{
	uint8_t img[1024];
	struct boot_image bi;
	size_t len = make_elf(img, sizeof(img));

	(void)state;
	assert_int_equal(boot_load_elf(mem, 0x1001000, img, len, &bi), -EFBIG);
	assert_non_null(strstr(mvm_last_error(), "does not fit"));
}

/* A bzImage: 4 setup sectors (setup_sects = 0 means 4), then the protected-mode part. */
static size_t make_bzimage(uint8_t *buf, size_t cap, size_t pm_len)
{
	size_t len = 5 * 512 + pm_len;

	assert_true(cap >= len);
	memset(buf, 0, len);
	buf[HDR_SETUP_SECTS] = 0;
	buf[HDR_BOOT_FLAG] = 0x55;
	buf[HDR_BOOT_FLAG + 1] = 0xaa;
	buf[HDR_JUMP] = 0xeb;
	buf[HDR_JUMP + 1] = 0x6a;	/* header ends at 0x26c */
	memcpy(buf + HDR_HEADER, "HdrS", 4);
	buf[HDR_VERSION] = 0x0f;
	buf[HDR_VERSION + 1] = 0x02;
	buf[HDR_RELOCATABLE] = 1;
	buf[HDR_XLOADFLAGS] = XLF_KERNEL_64;
	buf[HDR_INITRD_ADDR_MAX] = 0xff;	/* 0x7fffffff */
	buf[HDR_INITRD_ADDR_MAX + 1] = 0xff;
	buf[HDR_INITRD_ADDR_MAX + 2] = 0xff;
	buf[HDR_INITRD_ADDR_MAX + 3] = 0x7f;
	buf[HDR_CMDLINE_SIZE] = 0xff;	/* 255 */
	buf[HDR_INIT_SIZE + 2] = 0x40;	/* init_size 4 MiB */
	memset(buf + 5 * 512, 0x90, pm_len);
	return len;
}

static void test_bzimage_loads_at_1m(void **state)
{
	static uint8_t img[5 * 512 + 8192];
	struct boot_image bi;
	size_t len = make_bzimage(img, sizeof(img), 8192);

	(void)state;
	assert_int_equal(boot_load_kernel(mem, MEM_SIZE, img, len, &bi), 0);
	assert_true(bi.is_bzimage);
	assert_int_equal(bi.entry, 0x100200);
	assert_int_equal(bi.load_end, 0x100000 + (4u << 20));
	assert_int_equal(mem[0x100000], 0x90);
	assert_int_equal(mem[0x100000 + 8191], 0x90);
	assert_memory_equal(bi.setup, img + BP_HDR, bi.setup_len);
}

static void test_bzimage_rejects_bad_headers(void **state)
{
	static uint8_t img[5 * 512 + 4096], bad[5 * 512 + 4096];
	struct boot_image bi;
	size_t len = make_bzimage(img, sizeof(img), 4096), cut;

	(void)state;
	memcpy(bad, img, len);
	bad[HDR_VERSION] = 0x0b;		/* 2.11: no 64-bit entry protocol */
	assert_int_equal(boot_load_bzimage(mem, MEM_SIZE, bad, len, &bi), -ENOEXEC);
	assert_non_null(strstr(mvm_last_error(), "too old"));

	memcpy(bad, img, len);
	bad[HDR_XLOADFLAGS] = 0;
	assert_int_equal(boot_load_bzimage(mem, MEM_SIZE, bad, len, &bi), -ENOEXEC);

	memcpy(bad, img, len);
	bad[HDR_BOOT_FLAG] = 0;
	assert_int_equal(boot_load_bzimage(mem, MEM_SIZE, bad, len, &bi), -ENOEXEC);

	memcpy(bad, img, len);
	bad[HDR_SETUP_SECTS] = 200;		/* setup longer than the file */
	assert_int_equal(boot_load_bzimage(mem, MEM_SIZE, bad, len, &bi), -ENOEXEC);

	memcpy(bad, img, len);
	bad[HDR_INIT_SIZE + 3] = 0x7f;		/* needs 2 GiB */
	assert_int_equal(boot_load_bzimage(mem, MEM_SIZE, bad, len, &bi), -EFBIG);

	for (cut = 0; cut <= 5 * 512; cut += 7)
		assert_int_equal(boot_load_kernel(mem, MEM_SIZE, img, cut, &bi), -ENOEXEC);
}

static void test_not_a_kernel(void **state)
{
	static const uint8_t junk[4096] = { 'h', 'e', 'l', 'l', 'o' };
	struct boot_image bi;

	(void)state;
	assert_int_equal(boot_load_kernel(mem, MEM_SIZE, junk, sizeof(junk), &bi), -ENOEXEC);
	assert_non_null(strstr(mvm_last_error(), "not a kernel"));
}

static void test_initrd_placed_high_and_refused_when_too_big(void **state)
{
	static uint8_t initrd[10000];
	struct boot_image bi = { .load_end = 0x2000000 };
	uint64_t addr = 0;

	(void)state;
	memset(initrd, 0xab, sizeof(initrd));
	assert_int_equal(boot_place_initrd(mem, MEM_SIZE, &bi, initrd, sizeof(initrd), &addr), 0);
	assert_true(addr + sizeof(initrd) <= MEM_SIZE);
	assert_true(addr >= MEM_SIZE - sizeof(initrd) - 4096);
	assert_int_equal(addr & 0xfff, 0);
	assert_int_equal(mem[addr], 0xab);
	assert_int_equal(mem[addr + sizeof(initrd) - 1], 0xab);

	bi.load_end = MEM_SIZE - 4096;		/* kernel fills memory: no room */
	assert_int_equal(boot_place_initrd(mem, MEM_SIZE, &bi, initrd, sizeof(initrd), &addr),
			 -EFBIG);
	assert_non_null(strstr(mvm_last_error(), "--mem"));
}

static void test_initrd_respects_initrd_addr_max(void **state)
{
	static uint8_t img[5 * 512 + 4096];
	static uint8_t initrd[4096];
	struct boot_image bi;
	uint64_t addr;
	size_t len = make_bzimage(img, sizeof(img), 4096);

	(void)state;
	img[HDR_INITRD_ADDR_MAX + 3] = 0;	/* 0x00ffffff: below 16 MiB */
	assert_int_equal(boot_load_bzimage(mem, MEM_SIZE, img, len, &bi), 0);
	assert_int_equal(boot_place_initrd(mem, MEM_SIZE, &bi, initrd, sizeof(initrd), &addr), 0);
	assert_true(addr + sizeof(initrd) <= 0x1000000);
}

static void test_params_and_e820(void **state)
{
	struct boot_image bi = { .entry = 0x1000000, .load_end = 0x2000000 };
	const uint8_t *bp = mem + BOOT_ZERO_PAGE_ADDR;

	(void)state;
	assert_int_equal(boot_write_params(mem, MEM_SIZE, &bi, "console=ttyS0", 0x3000000, 1234,
					   MEM_SIZE), 0);
	assert_int_equal(bp[HDR_BOOT_FLAG] | bp[HDR_BOOT_FLAG + 1] << 8, 0xaa55);
	assert_int_equal(rd32(bp + HDR_HEADER), HDR_MAGIC);
	assert_int_equal(bp[HDR_TYPE_OF_LOADER], 0xff);
	assert_int_equal(rd32(bp + HDR_CMD_LINE_PTR), BOOT_CMDLINE_ADDR);
	assert_string_equal((const char *)mem + BOOT_CMDLINE_ADDR, "console=ttyS0");
	assert_int_equal(rd32(bp + HDR_RAMDISK_IMAGE), 0x3000000);
	assert_int_equal(rd32(bp + HDR_RAMDISK_SIZE), 1234);
	assert_int_equal(bp[BP_E820_ENTRIES], 3);
	/* RAM below the MP table, the reserved MP-table KiB, RAM from 1 MiB to the end. */
	assert_int_equal(rd64(bp + BP_E820_TABLE), 0);
	assert_int_equal(rd64(bp + BP_E820_TABLE + 8), BOOT_MPTABLE_ADDR);
	assert_int_equal(rd32(bp + BP_E820_TABLE + 16), E820_RAM);
	assert_int_equal(rd32(bp + BP_E820_TABLE + 36), E820_RESERVED);
	assert_int_equal(rd64(bp + BP_E820_TABLE + 40), 0x100000);
	assert_int_equal(rd64(bp + BP_E820_TABLE + 48), MEM_SIZE - 0x100000);
}

static void test_e820_high_memory(void **state)
{
	struct boot_image bi = { .entry = 0x1000000, .load_end = 0x2000000 };
	const uint8_t *bp = mem + BOOT_ZERO_PAGE_ADDR;
	uint64_t ram = 5ULL << 30;

	(void)state;
	assert_int_equal(boot_write_params(mem, MEM_SIZE, &bi, "", 0, 0, ram), 0);
	assert_int_equal(bp[BP_E820_ENTRIES], 4);
	assert_int_equal(rd64(bp + BP_E820_TABLE + 48), BOOT_MMIO_HOLE - 0x100000);
	assert_int_equal(rd64(bp + BP_E820_TABLE + 60), BOOT_HIGH_RAM);
	assert_int_equal(rd64(bp + BP_E820_TABLE + 68), ram - BOOT_MMIO_HOLE);
	assert_int_equal(rd32(bp + HDR_RAMDISK_SIZE), 0);
}

static void test_params_bzimage_header_and_cmdline_limit(void **state)
{
	static uint8_t img[5 * 512 + 4096];
	struct boot_image bi;
	char longline[300];
	size_t len = make_bzimage(img, sizeof(img), 4096);

	(void)state;
	assert_int_equal(boot_load_bzimage(mem, MEM_SIZE, img, len, &bi), 0);
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	/* cmdline_size in the header is 255 */
	assert_int_equal(boot_write_params(mem, MEM_SIZE, &bi, longline, 0, 0, MEM_SIZE), -EINVAL);
	assert_int_equal(boot_write_params(mem, MEM_SIZE, &bi, "quiet", 0, 0, MEM_SIZE), 0);
	assert_int_equal(mem[BOOT_ZERO_PAGE_ADDR + HDR_XLOADFLAGS], XLF_KERNEL_64);
	assert_int_equal(mem[BOOT_ZERO_PAGE_ADDR + HDR_TYPE_OF_LOADER], 0xff);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void test_mptable(void **state)
{
	const struct mptable_irq lv[] = { { 5, 1 }, { 6, 1 } };
	const uint8_t *fp = mem + BOOT_MPTABLE_ADDR, *ct, *p;
	unsigned int i, cpus = 4, nproc = 0, nint = 0, level = 0;
	uint16_t len;

	(void)state;
	assert_int_equal(mptable_write(mem, MEM_SIZE, cpus, lv, 2), 0);
	assert_memory_equal(fp, "_MP_", 4);
	assert_int_equal(sum(fp, 16), 0);
	assert_int_equal(rd32(fp + 4), BOOT_MPTABLE_ADDR + 16);
	ct = mem + rd32(fp + 4);
	assert_memory_equal(ct, "PCMP", 4);
	len = (uint16_t)(ct[4] | ct[5] << 8);
	assert_int_equal(sum(ct, len), 0);
	assert_true(BOOT_MPTABLE_ADDR + 16 + len <= BOOT_EBDA_END);
	assert_int_equal(rd32(ct + 36), 0xfee00000);
	for (p = ct + 44; p < ct + len;) {
		switch (p[0]) {
		case 0:
			assert_int_equal(p[1], nproc);
			assert_int_equal(!!(p[3] & 2), nproc == 0);	/* only CPU 0 boots */
			nproc++;
			p += 20;
			break;
		case 3:
			if ((p[2] | p[3] << 8) == 0x0d) {
				assert_true(p[7] == 5 || p[7] == 6);
				level++;
			}
			assert_int_equal(p[6], cpus);	/* the IOAPIC's id */
			nint++;
			p += 8;
			break;
		case 2:
			assert_int_equal(rd32(p + 4), 0xfec00000);
			p += 8;
			break;
		default:
			p += 8;
			break;
		}
	}
	assert_int_equal(nproc, cpus);
	assert_int_equal(nint, 24);
	assert_int_equal(level, 2);
	i = mptable_write(mem, MEM_SIZE, 0, NULL, 0);
	assert_int_equal((int)i, -EINVAL);
	assert_int_equal(mptable_write(mem, MEM_SIZE, 33, NULL, 0), -EINVAL);
	assert_int_equal(mptable_write(mem, MEM_SIZE, 32, lv, 2), 0);
}

static void test_page_tables_and_gdt(void **state)
{
	(void)state;
	assert_int_equal(boot_write_page_tables(mem, MEM_SIZE), 0);
	assert_int_equal(rd64(mem + BOOT_PML4_ADDR), BOOT_PDPT_ADDR | 3);
	assert_int_equal(rd64(mem + BOOT_PDPT_ADDR + 24), (BOOT_PD_ADDR + 3 * 4096) | 3);
	/* the last 2 MiB page below 4 GiB */
	assert_int_equal(rd64(mem + BOOT_PD_ADDR + 8 * 2047), (2047ULL << 21) | 0x83);
	assert_int_equal(boot_write_gdt(mem, MEM_SIZE), 0);
	assert_int_equal(rd64(mem + BOOT_GDT_ADDR + 0x10), 0x00af9b000000ffffULL);
	assert_int_equal(rd64(mem + BOOT_GDT_ADDR + 0x18), 0x00cf93000000ffffULL);
}

static void test_cmdline_add_time(void **state)
{
	char out[64] = "console=ttyS0", tiny[24] = "console=ttyS0";

	(void)state;
	assert_int_equal(kvm_cmdline_add_time(out, sizeof(out), 1800000000LL), 0);
	assert_string_equal(out, "console=ttyS0 microvm.time=1800000000");
	/* the caller's own token wins, and is not repeated */
	strcpy(out, "microvm.time=5 quiet");
	assert_int_equal(kvm_cmdline_add_time(out, sizeof(out), 1800000000LL), 0);
	assert_string_equal(out, "microvm.time=5 quiet");
	strcpy(out, "quiet xmicrovm.time=5");
	assert_int_equal(kvm_cmdline_add_time(out, sizeof(out), 7), 0);
	assert_string_equal(out, "quiet xmicrovm.time=5 microvm.time=7");
	/* no room: an error naming the limit, the line unchanged */
	assert_int_equal(kvm_cmdline_add_time(tiny, sizeof(tiny), 1800000000LL), -E2BIG);
	assert_string_equal(tiny, "console=ttyS0");
	assert_non_null(strstr(mvm_last_error(), "limit 23 bytes"));
}

static void test_cmdline_build(void **state)
{
	struct kvm_mmio_dev devs[2] = {
		{ .base = 0xd0000000, .size = 0x1000, .irq = 5 },
		{ .base = 0xd0001000, .size = 0x1000, .irq = 6 },
	};
	char out[4096], tiny[40];

	(void)state;
	assert_int_equal(kvm_cmdline_build(out, sizeof(out), NULL, 0, devs, 2), 0);
	assert_string_equal(out, "console=ttyS0 reboot=t panic=-1 quiet "
			    "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6");
	/* PVM: its arguments are added once, without repeating what the user gave */
	assert_int_equal(kvm_cmdline_build(out, sizeof(out), "console=ttyS0 quiet", 1, NULL, 0),
			 0);
	assert_non_null(strstr(out, "noxsave"));
	assert_non_null(strstr(out, "clearcpuid=151,"));
	assert_non_null(strstr(out, "quiet"));
	assert_null(strstr(strstr(out, "console=ttyS0") + 1, "console=ttyS0"));
	/* a normal host gets nothing of the sort */
	assert_int_equal(kvm_cmdline_build(out, sizeof(out), "root=x", 0, NULL, 0), 0);
	assert_string_equal(out, "root=x");
	assert_int_equal(kvm_cmdline_build(tiny, sizeof(tiny), "a", 0, devs, 2), -E2BIG);
	/* the errors state the limit */
	assert_non_null(strstr(mvm_last_error(), "over the limit of 39 bytes"));
	memset(out, 'x', 100);
	out[100] = '\0';
	assert_int_equal(kvm_cmdline_build(tiny, sizeof(tiny), out, 0, NULL, 0), -E2BIG);
	assert_string_equal(mvm_last_error(),
			    "kernel command line too long: 100 bytes, the limit is 39");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_elf_loads_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_virtual_entry_is_translated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_truncated_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_corrupt_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_too_big_for_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_loads_at_1m, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_rejects_bad_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_kernel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_placed_high_and_refused_when_too_big,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_respects_initrd_addr_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params_and_e820, setup, teardown),
		cmocka_unit_test_setup_teardown(test_e820_high_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params_bzimage_header_and_cmdline_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mptable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page_tables_and_gdt, setup, teardown),
		cmocka_unit_test(test_cmdline_build),
		cmocka_unit_test(test_cmdline_add_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
