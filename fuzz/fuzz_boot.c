/* SPDX-License-Identifier: MIT */
/**
 * fuzz_boot.c - libFuzzer target for the kernel image loaders and the 8250 UART
 *
 * Byte 0 selects: even -> the input is a kernel image (ELF vmlinux or bzImage) loaded into
 * 64 MiB of simulated guest memory, then an initrd and the zero page are placed for it; odd ->
 * the rest is a sequence of 2-byte UART accesses {op/offset, value} from a guest, with host
 * input mixed in.  Any crash, out-of-bounds access or UB is a bug: images come from users,
 * register accesses from guests.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "devices/serial.h"
#include "arch/x86/boot.h"

#define MEM_SIZE	(64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void out(void *opaque, const uint8_t *d, size_t n)
{
	(void)opaque; (void)d; (void)n;
}

static void irq(void *opaque, int level)
{
	(void)opaque; (void)level;
}

static const struct serial_ops ops = { .output = out, .set_irq = irq };

static void fuzz_serial(const uint8_t *data, size_t size)
{
	struct serial *s = serial_new(&ops, NULL);
	size_t i;

	for (i = 0; i + 1 < size; i += 2) {
		uint8_t v = data[i + 1];

		if (data[i] & 0x80)
			serial_input(s, &v, 1);
		else
			serial_io(s, data[i] & 0x0f, data[i] & 0x10, &v);
	}
	serial_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *mem;
	static const uint8_t initrd[4096];
	struct boot_image bi;
	uint64_t addr = 0;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		fuzz_serial(data + 1, size - 1);
		return 0;
	}
	if (!mem)
		mem = calloc(1, MEM_SIZE);
	if (!mem)
		return 0;
	if (boot_load_kernel(mem, MEM_SIZE, data + 1, size - 1, &bi) < 0)
		return 0;
	if (boot_place_initrd(mem, MEM_SIZE, &bi, initrd, sizeof(initrd), &addr) < 0)
		addr = 0;
	boot_write_params(mem, MEM_SIZE, &bi, "console=ttyS0", addr, addr ? sizeof(initrd) : 0,
			  MEM_SIZE);
	return 0;
}
