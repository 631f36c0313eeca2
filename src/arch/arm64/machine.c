/* SPDX-License-Identifier: MIT */
/*
 * machine.c - the arm64 machine's layout: RAM, vCPU identities and device slots.
 *
 * Theory of operation
 * -------------------
 * arm64_machine_init() checks the RAM size and vCPU count against the memory map of
 * machine.h (RAM a whole number of 2 MiB blocks, so that the device tree gets a 2 MiB block of
 * its own at the top; redistributors for every vCPU below the UART) and puts the UART in its
 * fixed slot; arm64_machine_add_virtio() hands out the virtio-mmio slots in order.  The
 * backend then routes each slot's MMIO to its device and raises the slot's SPI; the device
 * tree (fdt.c) describes exactly these slots, so guest and VMM agree by construction.
 *
 * vCPU identities follow KVM's reset value of MPIDR_EL1 (Aff0 = id % 16, Aff1 = id / 16):
 * a GICv3 delivers SGIs to at most 16 CPUs per Aff0 group.  HVF lets the VMM set MPIDR_EL1,
 * so it sets the same value (docs/macos.md).
 */
#include <errno.h>
#include <string.h>

#include "arch/arm64/machine.h"
#include "runtime/error.h"

/**
 * arm64_machine_init() - describe a machine with @ram_size bytes of RAM and @ncpus vCPUs
 * @m:		filled in (no virtio slots yet)
 * @ram_size:	bytes, a multiple of 2 MiB between ARM64_MIN_RAM and ARM64_MAX_RAM
 * @ncpus:	1..ARM64_MAX_CPUS
 *
 * Return: 0 or -EINVAL with mvm_last_error() set.
 */
int arm64_machine_init(struct arm64_machine *m, uint64_t ram_size, unsigned int ncpus)
{
	if (ram_size < ARM64_MIN_RAM || ram_size > ARM64_MAX_RAM || ram_size % (2ULL << 20))
		return mvm_set_error(-EINVAL,
				     "arm64: RAM must be a multiple of 2 MiB from %llu MiB to %llu GiB",
				     ARM64_MIN_RAM >> 20, ARM64_MAX_RAM >> 30);
	if (ncpus < 1 || ncpus > ARM64_MAX_CPUS)
		return mvm_set_error(-EINVAL, "arm64: %u vCPUs (1 to %d)", ncpus, ARM64_MAX_CPUS);
	memset(m, 0, sizeof(*m));
	m->ram_size = ram_size;
	m->ncpus = ncpus;
	m->uart.base = ARM64_UART_BASE;
	m->uart.size = ARM64_UART_SIZE;
	m->uart.spi = ARM64_UART_SPI;
	return 0;
}

/**
 * arm64_machine_add_virtio() - take the next virtio-mmio slot
 * @m:		the machine
 * @slot:	its window and SPI, or NULL
 *
 * Return: 0 or -ENOSPC (all ARM64_MAX_VIRTIO slots taken) with mvm_last_error() set.
 */
int arm64_machine_add_virtio(struct arm64_machine *m, struct arm64_mmio_slot *slot)
{
	struct arm64_mmio_slot *s;

	if (m->nr_virtio >= ARM64_MAX_VIRTIO)
		return mvm_set_error(-ENOSPC, "arm64: more than %d virtio devices",
				     ARM64_MAX_VIRTIO);
	s = &m->virtio[m->nr_virtio];
	s->base = ARM64_VIRTIO_BASE + m->nr_virtio * ARM64_VIRTIO_SLOT_SIZE;
	s->size = ARM64_VIRTIO_SLOT_SIZE;
	s->spi = ARM64_VIRTIO_FIRST_SPI + m->nr_virtio;
	m->nr_virtio++;
	if (slot)
		*slot = *s;
	return 0;
}

/**
 * arm64_cpu_mpidr() - the affinity of vCPU @cpu (MPIDR_EL1 without its RES1 bit 31)
 * @cpu:	vCPU index
 *
 * Return: Aff2 << 16 | Aff1 << 8 | Aff0, the "reg" of its device tree node.
 */
uint64_t arm64_cpu_mpidr(unsigned int cpu)
{
	return ((uint64_t)((cpu >> 12) & 0xff) << 16) | ((uint64_t)((cpu >> 4) & 0xff) << 8) |
	       (cpu & 0xf);
}
