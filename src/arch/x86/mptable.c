/* SPDX-License-Identifier: MIT */
/*
 * mptable.c - Intel MultiProcessor Specification 1.4 tables, so that Linux finds the CPUs and
 * the IOAPIC without ACPI (CONFIG_X86_MPPARSE).
 *
 * Theory of operation
 * -------------------
 * Linux looks for the 16-byte floating pointer structure ("_MP_") in the last KiB of base
 * memory, among other places; we put it at BOOT_MPTABLE_ADDR (0x9fc00, reserved in e820) and
 * the configuration table ("PCMP") right after it.  The table lists:
 *  - one processor entry per vCPU (APIC id = vCPU index, the first is the bootstrap CPU),
 *  - one ISA bus,
 *  - the in-kernel IOAPIC (KVM_CREATE_IRQCHIP) at 0xfec00000 with APIC id = number of CPUs,
 *  - an interrupt entry per IOAPIC pin 0..23 mapping ISA IRQ n to pin n; pins in @level_irqs
 *    (the virtio-mmio devices) are level-triggered active-high, the others conforming (edge),
 *  - the local interrupts: ExtINT on LINT0, NMI on LINT1.
 * Both structures carry checksums making their bytes sum to zero.
 */
#include <errno.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "runtime/error.h"

#define MP_IOAPIC_ADDR	0xfec00000u
#define MP_LAPIC_ADDR	0xfee00000u
#define MP_IOAPIC_PINS	24
#define MP_MAX_CPUS	32	/* keeps the whole table inside the reserved KiB */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

/**
 * mp_is_level() - is IOAPIC pin @irq one of the level-triggered lines?
 */
static int mp_is_level(unsigned int irq, const struct mptable_irq *lv, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (lv[i].irq == irq && lv[i].level)
			return 1;
	return 0;
}

/**
 * mptable_write() - write the floating pointer and configuration table
 * @mem/@mem_size: guest memory (must reach past BOOT_EBDA_END)
 * @cpus:	number of vCPUs, 1..32
 * @level_irqs:	lines to declare level-triggered (may be NULL when @nr_level is 0)
 * @nr_level:	how many
 *
 * Return: 0, or -EINVAL (bad CPU count, memory too small, table too big).
 */
int mptable_write(uint8_t *mem, uint64_t mem_size, unsigned int cpus,
		  const struct mptable_irq *level_irqs, unsigned int nr_level)
{
	uint8_t *fp, *ct, *p;
	unsigned int i, ioapic_id = cpus;
	size_t len;

	if (cpus < 1 || cpus > MP_MAX_CPUS)
		return mvm_set_error(-EINVAL, "MP table: %u CPUs (1..%d supported)", cpus,
				     MP_MAX_CPUS);
	len = 16 + 44 + 20 * cpus + 8 + 8 + 8 * MP_IOAPIC_PINS + 2 * 8;
	if (mem_size < BOOT_EBDA_END || len > BOOT_EBDA_END - BOOT_MPTABLE_ADDR)
		return mvm_set_error(-EINVAL, "MP table does not fit");
	fp = mem + BOOT_MPTABLE_ADDR;
	memset(fp, 0, BOOT_EBDA_END - BOOT_MPTABLE_ADDR);
	ct = fp + 16;

	/* Floating pointer: signature, config table address, length in 16-byte units, v1.4. */
	memcpy(fp, "_MP_", 4);
	put32(fp + 4, (uint32_t)(BOOT_MPTABLE_ADDR + 16));
	fp[8] = 1;
	fp[9] = 4;

	/* Configuration table header; the length and checksum are filled in at the end. */
	memcpy(ct, "PCMP", 4);
	ct[6] = 4;
	memcpy(ct + 8, "MICROVM ", 8);
	memcpy(ct + 16, "MICROVM-KVM ", 12);
	put32(ct + 36, MP_LAPIC_ADDR);
	p = ct + 44;

	for (i = 0; i < cpus; i++, p += 20) {	/* processor */
		p[0] = 0;
		p[1] = (uint8_t)i;		/* local APIC id */
		p[2] = 0x14;			/* local APIC version */
		p[3] = 0x01 | (i == 0 ? 0x02 : 0);	/* enabled, bootstrap */
		put32(p + 4, 0x600);		/* family 6 signature */
		put32(p + 8, 0x201);		/* FPU | APIC */
	}
	p[0] = 1;				/* bus 0: ISA */
	memcpy(p + 2, "ISA   ", 6);
	p += 8;
	p[0] = 2;				/* IOAPIC */
	p[1] = (uint8_t)ioapic_id;
	p[2] = 0x11;
	p[3] = 1;				/* usable */
	put32(p + 4, MP_IOAPIC_ADDR);
	p += 8;
	for (i = 0; i < MP_IOAPIC_PINS; i++, p += 8) {	/* I/O interrupt assignment */
		p[0] = 3;
		p[1] = 0;				/* INT */
		put16(p + 2, mp_is_level(i, level_irqs, nr_level) ? 0x0d : 0);
		p[4] = 0;				/* source bus: ISA */
		p[5] = (uint8_t)i;			/* source IRQ */
		p[6] = (uint8_t)ioapic_id;
		p[7] = (uint8_t)i;			/* IOAPIC pin */
	}
	p[0] = 4;				/* local interrupt: ExtINT -> LINT0 */
	p[1] = 3;
	p[6] = 0xff;				/* all local APICs */
	p[7] = 0;
	p += 8;
	p[0] = 4;				/* NMI -> LINT1 */
	p[1] = 1;
	p[6] = 0xff;
	p[7] = 1;
	p += 8;

	put16(ct + 4, (uint16_t)(p - ct));
	put16(ct + 34, (uint16_t)(cpus + 2 + MP_IOAPIC_PINS + 2));	/* entry count */
	ct[7] = mp_checksum(ct, (size_t)(p - ct));
	fp[10] = mp_checksum(fp, 16);
	return 0;
}
