/* SPDX-License-Identifier: MIT */
/*
 * test_arm64_machine.c - the arm64 machine model: layout checks, the device tree parsed back
 * with libfdt node by node, Image header errors, and kernel/initrd/device tree placement in a
 * simulated guest RAM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libfdt.h>

#include "arch/arm64/machine.h"
#include "microvm/error.h"

#define MiB		(1ULL << 20)
#define RAM_SIZE	(64 * MiB)

static uint8_t fdt_buf[ARM64_FDT_MAX_SIZE];

/* put_le32() / put_le64() - little-endian header fields of a fake Image */
static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* make_image() - a fake Image of @len bytes: header, then a byte pattern */
static uint8_t *make_image(size_t len, uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
	uint8_t *img = malloc(len);

	assert_non_null(img);
	for (size_t i = 0; i < len; i++)
		img[i] = (uint8_t)(i * 7 + 1);
	put_le32(img, 0x14000010);		/* b #0x40 */
	put_le32(img + 4, 0);
	put_le64(img + 8, text_offset);
	put_le64(img + 16, image_size);
	put_le64(img + 24, flags);
	memset(img + 32, 0, 24);
	put_le32(img + 56, ARM64_IMAGE_MAGIC);
	put_le32(img + 60, 0);
	return img;
}

/* node() - offset of @path in @fdt, failing the test when it is missing */
static int node(const void *fdt, const char *path)
{
	int off = fdt_path_offset(fdt, path);

	if (off < 0)
		fail_msg("no node %s: %s", path, fdt_strerror(off));
	return off;
}

static void assert_prop_str(const void *fdt, const char *path, const char *name,
			    const char *want)
{
	int len;
	const char *v = fdt_getprop(fdt, node(fdt, path), name, &len);

	assert_non_null(v);
	assert_int_equal(len, strlen(want) + 1);
	assert_string_equal(v, want);
}

static void assert_prop_cells(const void *fdt, const char *path, const char *name,
			      const uint32_t *want, int n)
{
	int len;
	const fdt32_t *v = fdt_getprop(fdt, node(fdt, path), name, &len);

	assert_non_null(v);
	assert_int_equal(len, n * 4);
	for (int i = 0; i < n; i++)
		assert_int_equal(fdt32_to_cpu(v[i]), want[i]);
}

static void assert_prop_u64s(const void *fdt, const char *path, const char *name,
			     const uint64_t *want, int n)
{
	int len;
	const fdt64_t *v = fdt_getprop(fdt, node(fdt, path), name, &len);

	assert_non_null(v);
	assert_int_equal(len, n * 8);
	for (int i = 0; i < n; i++)
		assert_int_equal(fdt64_ld(&v[i]), want[i]);
}

static void assert_prop_empty(const void *fdt, const char *path, const char *name)
{
	int len = -1;

	assert_non_null(fdt_getprop(fdt, node(fdt, path), name, &len));
	assert_int_equal(len, 0);
}

static void test_machine_init_limits(void **state)
{
	struct arm64_machine m;

	(void)state;
	assert_int_equal(arm64_machine_init(&m, RAM_SIZE, 1), 0);
	assert_int_equal(m.ram_size, RAM_SIZE);
	assert_int_equal(m.uart.base, ARM64_UART_BASE);
	assert_int_equal(m.uart.spi, ARM64_UART_SPI);
	assert_int_equal(m.nr_virtio, 0);
	assert_int_equal(arm64_machine_init(&m, RAM_SIZE + 4096, 1), -EINVAL);
	assert_non_null(strstr(mvm_last_error(), "multiple of 2 MiB"));
	assert_int_equal(arm64_machine_init(&m, 8 * MiB, 1), -EINVAL);
	assert_int_equal(arm64_machine_init(&m, ARM64_MAX_RAM + 2 * MiB, 1), -EINVAL);
	assert_int_equal(arm64_machine_init(&m, ARM64_MAX_RAM, ARM64_MAX_CPUS), 0);
	assert_int_equal(arm64_machine_init(&m, RAM_SIZE, 0), -EINVAL);
	assert_int_equal(arm64_machine_init(&m, RAM_SIZE, ARM64_MAX_CPUS + 1), -EINVAL);
	assert_non_null(strstr(mvm_last_error(), "vCPUs"));
	/* the redistributors of the largest machine end below the UART */
	assert_true(ARM64_GIC_REDIST_BASE + ARM64_MAX_CPUS * ARM64_GIC_REDIST_SIZE <=
		    ARM64_UART_BASE);
	assert_true(ARM64_VIRTIO_BASE + ARM64_MAX_VIRTIO * ARM64_VIRTIO_SLOT_SIZE <=
		    ARM64_RAM_BASE);
	assert_true(ARM64_RAM_BASE + ARM64_MAX_RAM <= 1ULL << 36);
}

static void test_virtio_slots(void **state)
{
	struct arm64_machine m;
	struct arm64_mmio_slot s;

	(void)state;
	assert_int_equal(arm64_machine_init(&m, RAM_SIZE, 2), 0);
	for (unsigned int i = 0; i < ARM64_MAX_VIRTIO; i++) {
		assert_int_equal(arm64_machine_add_virtio(&m, &s), 0);
		assert_int_equal(s.base, ARM64_VIRTIO_BASE + i * 0x1000);
		assert_int_equal(s.size, 0x1000);
		assert_int_equal(s.spi, 16 + i);
		assert_int_equal(arm64_spi_intid(s.spi), 48 + i);
	}
	assert_int_equal(arm64_machine_add_virtio(&m, &s), -ENOSPC);
	assert_int_equal(m.nr_virtio, ARM64_MAX_VIRTIO);
}

static void test_mpidr(void **state)
{
	(void)state;
	assert_int_equal(arm64_cpu_mpidr(0), 0);
	assert_int_equal(arm64_cpu_mpidr(15), 0xf);
	assert_int_equal(arm64_cpu_mpidr(16), 0x100);
	assert_int_equal(arm64_cpu_mpidr(31), 0x10f);
}

static void test_fdt_nodes(void **state)
{
	struct arm64_machine m;
	const uint64_t mem_reg[2] = { ARM64_RAM_BASE, RAM_SIZE };
	const uint64_t gic_reg[4] = { 0x08000000, 0x10000, 0x080a0000, 3 * 0x20000 };
	const uint64_t uart_reg[2] = { 0x09000000, 0x1000 };
	const uint32_t uart_irq[3] = { 0, 1, 4 };
	const uint32_t timer_irq[12] = { 1, 13, 8, 1, 14, 8, 1, 11, 8, 1, 10, 8 };
	const uint32_t one[1] = { 1 }, two[1] = { 2 }, three[1] = { 3 }, zero[1] = { 0 };
	const uint32_t clock[1] = { 1843200 };
	int size, off, n, len;
	const fdt32_t *phandle;

	(void)state;
	assert_int_equal(arm64_machine_init(&m, RAM_SIZE, 3), 0);
	assert_int_equal(arm64_machine_add_virtio(&m, NULL), 0);
	assert_int_equal(arm64_machine_add_virtio(&m, NULL), 0);
	size = arm64_fdt_build(&m, "console=ttyS0 root=/dev/ram", 0x43000000, 0x1234, fdt_buf,
			       sizeof(fdt_buf));
	assert_true(size > 0);
	assert_int_equal(fdt_check_header(fdt_buf), 0);
	assert_int_equal(fdt_totalsize(fdt_buf), size);

	/* root */
	assert_prop_str(fdt_buf, "/", "compatible", "linux,dummy-virt");
	assert_prop_cells(fdt_buf, "/", "#address-cells", two, 1);
	assert_prop_cells(fdt_buf, "/", "#size-cells", two, 1);
	assert_prop_cells(fdt_buf, "/", "interrupt-parent", one, 1);

	/* chosen: command line, console, initrd */
	assert_prop_str(fdt_buf, "/chosen", "bootargs", "console=ttyS0 root=/dev/ram");
	assert_prop_str(fdt_buf, "/chosen", "stdout-path", "/uart@9000000");
	{
		const uint64_t start[1] = { 0x43000000 }, end[1] = { 0x43000000 + 0x1234 };

		assert_prop_u64s(fdt_buf, "/chosen", "linux,initrd-start", start, 1);
		assert_prop_u64s(fdt_buf, "/chosen", "linux,initrd-end", end, 1);
	}

	/* memory */
	assert_prop_str(fdt_buf, "/memory@40000000", "device_type", "memory");
	assert_prop_u64s(fdt_buf, "/memory@40000000", "reg", mem_reg, 2);

	/* cpus: one node per vCPU, reg = MPIDR affinity, PSCI enable method */
	assert_prop_cells(fdt_buf, "/cpus", "#address-cells", one, 1);
	assert_prop_cells(fdt_buf, "/cpus", "#size-cells", zero, 1);
	n = 0;
	fdt_for_each_subnode(off, fdt_buf, node(fdt_buf, "/cpus")) {
		const fdt32_t *reg = fdt_getprop(fdt_buf, off, "reg", &len);

		assert_non_null(reg);
		assert_int_equal(len, 4);
		assert_int_equal(fdt32_to_cpu(*reg), arm64_cpu_mpidr((unsigned int)n));
		assert_string_equal(fdt_getprop(fdt_buf, off, "device_type", NULL), "cpu");
		assert_string_equal(fdt_getprop(fdt_buf, off, "compatible", NULL), "arm,arm-v8");
		assert_string_equal(fdt_getprop(fdt_buf, off, "enable-method", NULL), "psci");
		n++;
	}
	assert_int_equal(n, 3);
	assert_prop_cells(fdt_buf, "/cpus/cpu@2", "reg", two, 1);

	/* PSCI 0.2 over HVC, the architected timer */
	assert_prop_str(fdt_buf, "/psci", "compatible", "arm,psci-0.2");
	assert_prop_str(fdt_buf, "/psci", "method", "hvc");
	assert_prop_str(fdt_buf, "/timer", "compatible", "arm,armv8-timer");
	assert_prop_cells(fdt_buf, "/timer", "interrupts", timer_irq, 12);
	assert_prop_empty(fdt_buf, "/timer", "always-on");

	/* GICv3: distributor + the redistributors of 3 vCPUs; the root's interrupt parent */
	assert_prop_str(fdt_buf, "/intc@8000000", "compatible", "arm,gic-v3");
	assert_prop_cells(fdt_buf, "/intc@8000000", "#interrupt-cells", three, 1);
	assert_prop_empty(fdt_buf, "/intc@8000000", "interrupt-controller");
	assert_prop_u64s(fdt_buf, "/intc@8000000", "reg", gic_reg, 4);
	phandle = fdt_getprop(fdt_buf, node(fdt_buf, "/intc@8000000"), "phandle", &len);
	assert_non_null(phandle);
	assert_int_equal(fdt_node_offset_by_phandle(fdt_buf, fdt32_to_cpu(*phandle)),
			 node(fdt_buf, "/intc@8000000"));

	/* UART: ns16550a, SPI 1 level-high, the 8250 clock */
	assert_prop_str(fdt_buf, "/uart@9000000", "compatible", "ns16550a");
	assert_prop_u64s(fdt_buf, "/uart@9000000", "reg", uart_reg, 2);
	assert_prop_cells(fdt_buf, "/uart@9000000", "interrupts", uart_irq, 3);
	assert_prop_cells(fdt_buf, "/uart@9000000", "clock-frequency", clock, 1);

	/* the two virtio-mmio slots, and no third */
	for (unsigned int i = 0; i < 2; i++) {
		char path[64];
		const uint64_t reg[2] = { 0x0a000000 + i * 0x1000, 0x1000 };
		const uint32_t irq[3] = { 0, 16 + i, 4 };

		snprintf(path, sizeof(path), "/virtio_mmio@%llx", (unsigned long long)reg[0]);
		assert_prop_str(fdt_buf, path, "compatible", "virtio,mmio");
		assert_prop_u64s(fdt_buf, path, "reg", reg, 2);
		assert_prop_cells(fdt_buf, path, "interrupts", irq, 3);
		assert_prop_empty(fdt_buf, path, "dma-coherent");
	}
	assert_true(fdt_path_offset(fdt_buf, "/virtio_mmio@a002000") < 0);
	assert_int_equal(fdt_node_offset_by_compatible(fdt_buf, -1, "virtio,mmio") >= 0, 1);
}

static void test_fdt_no_initrd_and_errors(void **state)
{
	struct arm64_machine m;
	char *longline;

	(void)state;
	assert_int_equal(arm64_machine_init(&m, RAM_SIZE, 1), 0);
	assert_true(arm64_fdt_build(&m, NULL, 0, 0, fdt_buf, sizeof(fdt_buf)) > 0);
	assert_prop_str(fdt_buf, "/chosen", "bootargs", "");
	assert_null(fdt_getprop(fdt_buf, node(fdt_buf, "/chosen"), "linux,initrd-start", NULL));
	assert_null(fdt_getprop(fdt_buf, node(fdt_buf, "/chosen"), "linux,initrd-end", NULL));

	/* too small a buffer: -ENOSPC, not a partial tree */
	assert_int_equal(arm64_fdt_build(&m, "x", 0, 0, fdt_buf, 256), -ENOSPC);
	assert_non_null(strstr(mvm_last_error(), "device tree larger"));

	longline = malloc(ARM64_CMDLINE_MAX + 1);
	assert_non_null(longline);
	memset(longline, 'a', ARM64_CMDLINE_MAX);
	longline[ARM64_CMDLINE_MAX] = 0;
	assert_int_equal(arm64_fdt_build(&m, longline, 0, 0, fdt_buf, sizeof(fdt_buf)), -EINVAL);
	assert_non_null(strstr(mvm_last_error(), "command line"));
	free(longline);
}

static void test_image_header_errors(void **state)
{
	struct arm64_image im;
	uint8_t *img;

	(void)state;
	img = make_image(4096, 0x80000, 0x200000, 0xa);
	assert_int_equal(arm64_image_parse(img, 4096, &im), 0);
	assert_int_equal(im.text_offset, 0x80000);
	assert_int_equal(im.image_size, 0x200000);
	assert_int_equal(im.flags, 0xa);

	assert_int_equal(arm64_image_parse(img, 63, &im), -ENOEXEC);
	assert_non_null(strstr(mvm_last_error(), "truncated"));

	img[56] = 'X';			/* magic */
	assert_int_equal(arm64_image_parse(img, 4096, &im), -ENOEXEC);
	assert_non_null(strstr(mvm_last_error(), "not an arm64 Image"));
	free(img);

	img = make_image(4096, 0x80000, 0x200000, ARM64_IMAGE_FLAG_BE);
	assert_int_equal(arm64_image_parse(img, 4096, &im), -ENOEXEC);
	assert_non_null(strstr(mvm_last_error(), "big-endian"));
	free(img);

	img = make_image(4096, 0x80000, 0, 0);
	assert_int_equal(arm64_image_parse(img, 4096, &im), -ENOEXEC);
	assert_non_null(strstr(mvm_last_error(), "image_size"));
	free(img);

	img = make_image(4096, 0x80010, 0x200000, 0);
	assert_int_equal(arm64_image_parse(img, 4096, &im), -ENOEXEC);
	assert_non_null(strstr(mvm_last_error(), "not page aligned"));
	free(img);

	/* sizes that would overflow an addition */
	img = make_image(4096, 0xfffffffffffff000ULL, 0x200000, 0);
	assert_int_equal(arm64_image_parse(img, 4096, &im), -ENOEXEC);
	free(img);
	img = make_image(4096, 0, UINT64_MAX, 0);
	assert_int_equal(arm64_image_parse(img, 4096, &im), -ENOEXEC);
	free(img);
}

static void test_boot_prepare(void **state)
{
	struct arm64_machine m;
	struct arm64_boot_regs r;
	const size_t klen = MiB + 123, ilen = 3 * MiB + 5;
	uint8_t *ram, *img, *initrd;
	const void *fdt;
	uint64_t fdt_off;
	int len;
	const fdt64_t *v;

	(void)state;
	ram = malloc(RAM_SIZE);
	initrd = malloc(ilen);
	assert_non_null(ram);
	assert_non_null(initrd);
	memset(ram, 0xaa, RAM_SIZE);
	memset(initrd, 0x5c, ilen);
	img = make_image(klen, 0x80000, 3 * MiB, 0xa);
	assert_int_equal(arm64_machine_init(&m, RAM_SIZE, 2), 0);
	assert_int_equal(arm64_machine_add_virtio(&m, NULL), 0);

	assert_int_equal(arm64_boot_prepare(&m, ram, img, klen, initrd, ilen, "console=ttyS0",
					    &r), 0);
	assert_int_equal(r.pc, ARM64_RAM_BASE + 0x80000);
	assert_int_equal(r.pstate, 0x3c5);
	assert_int_equal(r.x0, r.fdt_addr);
	assert_int_equal(r.fdt_addr, ARM64_RAM_BASE + RAM_SIZE - 2 * MiB);
	assert_int_equal(r.fdt_addr % (2 * MiB), 0);
	assert_int_equal(r.kernel_end, ARM64_RAM_BASE + 0x80000 + 3 * MiB);
	/* kernel copied, its BSS (up to image_size) zeroed, RAM beyond untouched */
	assert_memory_equal(ram + 0x80000, img, klen);
	for (size_t i = 0x80000 + klen; i < 0x80000 + 3 * MiB; i += 4093)
		assert_int_equal(ram[i], 0);
	assert_int_equal(ram[0x80000 + 3 * MiB], 0xaa);
	assert_int_equal(ram[0x7ffff], 0xaa);
	/* initrd page-aligned right below the device tree */
	assert_int_equal(r.initrd_size, ilen);
	assert_int_equal(r.initrd_addr % 4096, 0);
	assert_true(r.initrd_addr + ilen <= r.fdt_addr);
	assert_true(r.fdt_addr - (r.initrd_addr + ilen) < 4096);
	assert_true(r.initrd_addr >= r.kernel_end);
	assert_memory_equal(ram + (r.initrd_addr - ARM64_RAM_BASE), initrd, ilen);
	/* the device tree in RAM names that initrd */
	fdt_off = r.fdt_addr - ARM64_RAM_BASE;
	fdt = ram + fdt_off;
	assert_int_equal(fdt_check_header(fdt), 0);
	assert_int_equal(fdt_totalsize(fdt), r.fdt_size);
	v = fdt_getprop(fdt, node(fdt, "/chosen"), "linux,initrd-start", &len);
	assert_non_null(v);
	assert_int_equal(fdt64_ld(v), r.initrd_addr);
	v = fdt_getprop(fdt, node(fdt, "/chosen"), "linux,initrd-end", &len);
	assert_int_equal(fdt64_ld(v), r.initrd_addr + ilen);
	assert_prop_str(fdt, "/chosen", "bootargs", "console=ttyS0");
	node(fdt, "/virtio_mmio@a000000");

	/* no initrd */
	assert_int_equal(arm64_boot_prepare(&m, ram, img, klen, NULL, 0, NULL, &r), 0);
	assert_int_equal(r.initrd_size, 0);
	assert_null(fdt_getprop(ram + fdt_off, node(ram + fdt_off, "/chosen"),
				"linux,initrd-start", NULL));

	/* an initrd that would overlap the kernel */
	assert_int_equal(arm64_boot_prepare(&m, ram, img, klen, initrd,
					    RAM_SIZE - 2 * MiB - 3 * MiB, NULL, &r), -EFBIG);
	assert_non_null(strstr(mvm_last_error(), "initrd"));
	free(img);

	/* a kernel larger than RAM */
	img = make_image(klen, 0x80000, RAM_SIZE, 0);
	assert_int_equal(arm64_boot_prepare(&m, ram, img, klen, NULL, 0, NULL, &r), -EFBIG);
	assert_non_null(strstr(mvm_last_error(), "more than the 64 MiB"));
	free(img);

	/* a bad header stops before anything is written */
	memset(ram, 0xaa, RAM_SIZE);
	img = make_image(klen, 0x80000, 3 * MiB, ARM64_IMAGE_FLAG_BE);
	assert_int_equal(arm64_boot_prepare(&m, ram, img, klen, initrd, ilen, NULL, &r), -ENOEXEC);
	assert_int_equal(ram[0x80000], 0xaa);
	assert_int_equal(ram[RAM_SIZE - 2 * MiB], 0xaa);
	free(img);
	free(initrd);
	free(ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_machine_init_limits),
		cmocka_unit_test(test_virtio_slots),
		cmocka_unit_test(test_mpidr),
		cmocka_unit_test(test_fdt_nodes),
		cmocka_unit_test(test_fdt_no_initrd_and_errors),
		cmocka_unit_test(test_image_header_errors),
		cmocka_unit_test(test_boot_prepare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
