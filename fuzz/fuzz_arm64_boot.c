/* SPDX-License-Identifier: MIT */
/*
 * fuzz_arm64_boot.c - the arm64 Image loader (a user-supplied kernel file): header parsing and
 * placing kernel, initrd and device tree in a small guest RAM.  The input is the Image; its
 * first byte also picks the initrd length, so that every placement branch is reached.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arm64/machine.h"

#define FUZZ_RAM	(8ULL << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[FUZZ_RAM];
	static const uint8_t initrd[64 << 10];
	struct arm64_machine m;
	struct arm64_boot_regs r;
	struct arm64_image im;
	size_t initrd_len = size ? (size_t)data[0] << 8 : 0;

	(void)arm64_image_parse(data, size, &im);
	if (arm64_machine_init(&m, 16ULL << 20, 2) || arm64_machine_add_virtio(&m, NULL))
		abort();
	m.ram_size = FUZZ_RAM;		/* a smaller RAM than the minimum, to keep runs fast */
	if (arm64_boot_prepare(&m, ram, data, size, initrd, initrd_len, "console=ttyS0", &r) == 0) {
		if (r.pc < ARM64_RAM_BASE || r.kernel_end > r.fdt_addr ||
		    (r.initrd_size && (r.initrd_addr < r.kernel_end ||
				       r.initrd_addr + r.initrd_size > r.fdt_addr)) ||
		    r.fdt_addr + r.fdt_size > ARM64_RAM_BASE + FUZZ_RAM)
			abort();
	}
	return 0;
}
