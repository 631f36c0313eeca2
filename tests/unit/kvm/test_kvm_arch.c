/* SPDX-License-Identifier: MIT */
/*
 * test_kvm_arch.c - the KVM backend's architecture hooks that need no /dev/kvm: memory layout,
 * device slots and interrupt numbers, the MMIO bus (the UART on arm64), and on arm64 the whole
 * guest load (Image, initrd, device tree naming the devices on the bus).  Built for the host's
 * architecture: natively on x86-64, under qemu-user for arm64 (make arm64).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvm/kvm.h"
#include "microvm/error.h"

#if defined(__aarch64__)
#include <libfdt.h>
#endif

static void nop_mmio(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write)
{
	(void)opaque;
	(void)offset;
	(void)is_write;
	memset(data, 0x5a, len);
}

/* new_vm() - a struct kvm_vm as create() has it before any ioctl */
static struct kvm_vm *new_vm(unsigned int mem_mib, unsigned int ncpus)
{
	struct kvm_vm *kvm = calloc(1, sizeof(*kvm));

	assert_non_null(kvm);
	kvm->cfg.mem_mib = mem_mib;
	kvm->ncpus = ncpus;
	kvm->mem_size = (uint64_t)mem_mib << 20;
	return kvm;
}

static void test_mmio_bus(void **state)
{
	struct kvm_vm *kvm = new_vm(64, 1);
	uint8_t buf[4];
	uint64_t base;
	unsigned int irq;

	(void)state;
#if defined(__aarch64__)
	assert_int_equal(arm64_machine_init(&kvm->arch.m, kvm->mem_size, 1), 0);
#endif
	assert_int_equal(kvm_add_mmio(kvm, nop_mmio, NULL, NULL, &irq, &base), 0);
	kvm_mmio(kvm, base + 0x10, buf, 4, 0);
	assert_memory_equal(buf, "\x5a\x5a\x5a\x5a", 4);
	/* an access straddling the end of the window, or nowhere, reads all-ones */
	kvm_mmio(kvm, base + kvm->mmio[0].size - 2, buf, 4, 0);
	assert_memory_equal(buf, "\xff\xff\xff\xff", 4);
	kvm_mmio(kvm, 0x1000, buf, 4, 0);
	assert_memory_equal(buf, "\xff\xff\xff\xff", 4);
	while (kvm->nr_mmio < KVM_MAX_MMIO)
		assert_int_equal(kvm_add_mmio(kvm, nop_mmio, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(kvm_add_mmio(kvm, nop_mmio, NULL, NULL, NULL, NULL), -ENOSPC);
	free(kvm);
}

#if defined(__x86_64__)
static void test_x86_layout_and_slots(void **state)
{
	struct kvm_vm *kvm = new_vm(5 << 10, 1);	/* 5 GiB: across the hole */
	struct kvm_ram_region r[KVM_MAX_RAM_REGIONS];
	uint64_t base, size;
	unsigned int irq;

	(void)state;
	assert_int_equal(kvm_arch_ram_layout(kvm, r), 2);
	assert_int_equal(r[0].gpa, 0);
	assert_int_equal(r[0].size, 3ULL << 30);
	assert_int_equal(r[1].gpa, 4ULL << 30);
	assert_int_equal(r[1].offset, 3ULL << 30);
	assert_int_equal(r[1].size, 2ULL << 30);
	kvm->mem_size = 64 << 20;
	assert_int_equal(kvm_arch_ram_layout(kvm, r), 1);
	assert_int_equal(r[0].size, 64 << 20);

	assert_int_equal(kvm_arch_mmio_slot(kvm, 3, &base, &size, &irq), 0);
	assert_int_equal(base, 0xd0003000);
	assert_int_equal(size, 0x1000);
	assert_int_equal(irq, 8);
	assert_int_equal(kvm_arch_irq(kvm, 8), 8);
	assert_int_equal(kvm_arch_devices(kvm), 0);
	assert_int_equal(kvm->serial_irq, 4);
	assert_int_equal(kvm->nr_mmio, 0);		/* COM1 is on the port bus */
	free(kvm);
}
#endif

#if defined(__aarch64__)
static char uart_out[64];
static size_t uart_len;

static void uart_output(void *opaque, const uint8_t *data, size_t len)
{
	(void)opaque;
	while (len-- && uart_len < sizeof(uart_out) - 1)
		uart_out[uart_len++] = (char)*data++;
}

static void uart_irq(void *opaque, int level)
{
	(void)opaque;
	(void)level;
}

static const struct serial_ops uart_ops = { .output = uart_output, .set_irq = uart_irq };

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_arm64_devices_and_load(void **state)
{
	struct kvm_vm *kvm = new_vm(64, 2);
	struct kvm_ram_region r[KVM_MAX_RAM_REGIONS];
	char kpath[] = "/tmp/test_kvm_arch_XXXXXX";
	uint8_t img[4096] = { 0 }, c = 'A';
	uint64_t base;
	unsigned int irq;
	const char *args;
	const void *fdt;
	int fd;

	(void)state;
	assert_int_equal(arm64_machine_init(&kvm->arch.m, kvm->mem_size, 2), 0);
	assert_int_equal(kvm_arch_ram_layout(kvm, r), 1);
	assert_int_equal(r[0].gpa, 0x40000000);
	assert_int_equal(r[0].size, 64 << 20);

	/* the UART sits on the MMIO bus at the model's address; a byte to THR comes out */
	kvm->serial = serial_new(&uart_ops, NULL);
	assert_non_null(kvm->serial);
	assert_int_equal(kvm_arch_devices(kvm), 0);
	assert_int_equal(kvm->serial_irq, 1);
	assert_int_equal(kvm->mmio[0].base, 0x09000000);
	kvm_mmio(kvm, 0x09000000, &c, 1, 1);
	assert_int_equal(uart_len, 1);
	assert_int_equal(uart_out[0], 'A');

	/* virtio slots come from the machine model: the device tree will name them */
	assert_int_equal(kvm_add_mmio(kvm, nop_mmio, NULL, NULL, &irq, &base), 0);
	assert_int_equal(base, 0x0a000000);
	assert_int_equal(irq, 16);
	assert_int_equal(kvm_arch_irq(kvm, irq), (KVM_ARM_IRQ_TYPE_SPI << 24) | 48);

	/* load: Image at RAM + text_offset, device tree with the command line and the slot */
	put_le(img + 8, 0x80000, 8);
	put_le(img + 16, 0x100000, 8);
	put_le(img + 56, ARM64_IMAGE_MAGIC, 4);
	fd = mkstemp(kpath);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, sizeof(img)), sizeof(img));
	close(fd);
	kvm->mem = calloc(1, kvm->mem_size);
	assert_non_null(kvm->mem);
	kvm->cfg.kernel_path = kpath;
	kvm->cfg.cmdline = "console=ttyS0 panic=-1";
	assert_int_equal(kvm_arch_load_guest(kvm), 0);
	unlink(kpath);
	assert_int_equal(kvm->arch.boot.pc, 0x40080000);
	assert_int_equal(kvm->arch.boot.pstate, 0x3c5);
	fdt = kvm->mem + (kvm->arch.boot.fdt_addr - 0x40000000);
	assert_int_equal(fdt_check_header(fdt), 0);
	args = fdt_getprop(fdt, fdt_path_offset(fdt, "/chosen"), "bootargs", NULL);
	assert_non_null(args);
	assert_non_null(strstr(args, "console=ttyS0 panic=-1 microvm.time="));
	assert_null(strstr(args, "virtio_mmio.device"));
	assert_true(fdt_path_offset(fdt, "/virtio_mmio@a000000") >= 0);
	assert_true(fdt_path_offset(fdt, "/uart@9000000") >= 0);

	/* a missing kernel is an error that names it */
	kvm->cfg.kernel_path = "/nonexistent/Image";
	assert_true(kvm_arch_load_guest(kvm) < 0);
	assert_non_null(strstr(mvm_last_error(), "/nonexistent/Image"));
	serial_free(kvm->serial);
	free(kvm->mem);
	free(kvm);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mmio_bus),
#if defined(__x86_64__)
		cmocka_unit_test(test_x86_layout_and_slots),
#endif
#if defined(__aarch64__)
		cmocka_unit_test(test_arm64_devices_and_load),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
