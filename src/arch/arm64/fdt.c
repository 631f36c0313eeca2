/* SPDX-License-Identifier: MIT */
/*
 * fdt.c - the device tree of the arm64 machine, written with libfdt.
 *
 * Theory of operation
 * -------------------
 * With no firmware, the device tree is how Linux learns the machine: arm64_fdt_build() writes
 * it with libfdt's sequential-write API (fdt_create() ... fdt_finish()) from the struct
 * arm64_machine the backend routes MMIO by, so the two cannot disagree.  The tree:
 *
 *   /                    compatible "linux,dummy-virt", 2 address and 2 size cells,
 *                        interrupt-parent = the GIC
 *   /chosen              bootargs, stdout-path (the UART), linux,initrd-start/-end
 *   /memory@40000000     the RAM
 *   /cpus/cpu@N          one per vCPU: "arm,arm-v8", reg = MPIDR affinity, enable-method psci
 *   /psci                "arm,psci-0.2" over HVC: CPU_ON brings up secondaries, SYSTEM_OFF
 *                        and SYSTEM_RESET end the VM (KVM implements it in the kernel; HVF
 *                        traps the HVC to the VMM)
 *   /timer               "arm,armv8-timer", the four PPIs, always-on
 *   /intc@8000000        "arm,gic-v3": distributor and one redistributor region for all vCPUs
 *   /uart@9000000        "ns16550a", byte-spaced registers, SPI 1 (the console: ttyS0)
 *   /virtio_mmio@...     "virtio,mmio", one per slot, SPI 16 + i, dma-coherent
 *
 * Interrupt specifiers are GIC triples <type number flags>; SPIs are level-high (the devices
 * drive levels), the timer PPIs level-low as on KVM's virtual timer.
 *
 * Only standard C and libfdt: shared with the macOS (HVF) backend.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <libfdt.h>

#include "arch/arm64/machine.h"
#include "runtime/error.h"

/* FDT_TRY() - run a libfdt call; a failure leaves through the function's "out" label */
#define FDT_TRY(call)				\
	do {					\
		err = (call);			\
		if (err < 0)			\
			goto out;		\
	} while (0)

/**
 * fdt_prop_u64s() - a property of big-endian 64-bit cells (reg, initrd bounds)
 * @fdt:	tree being written
 * @name:	property
 * @v:		values (host order)
 * @n:		how many (at most 4)
 *
 * Return: 0 or a negative libfdt error.
 */
static int fdt_prop_u64s(void *fdt, const char *name, const uint64_t *v, int n)
{
	fdt64_t cells[4];
	int i;

	for (i = 0; i < n; i++)
		cells[i] = cpu_to_fdt64(v[i]);
	return fdt_property(fdt, name, cells, (int)(n * sizeof(cells[0])));
}

/**
 * fdt_prop_irq() - an "interrupts" property of one or more GIC triples
 * @fdt:	tree being written
 * @irqs:	type, number, flags per interrupt (host order)
 * @n:		how many interrupts (at most 4)
 *
 * Return: 0 or a negative libfdt error.
 */
static int fdt_prop_irq(void *fdt, const uint32_t *irqs, int n)
{
	fdt32_t cells[12];
	int i;

	for (i = 0; i < 3 * n; i++)
		cells[i] = cpu_to_fdt32(irqs[i]);
	return fdt_property(fdt, "interrupts", cells, (int)(3 * n * sizeof(cells[0])));
}

/**
 * fdt_mmio_node() - begin a node "NAME@BASE" with its reg (the caller ends it)
 * @fdt:	tree being written
 * @name:	node name without unit address
 * @base:	guest physical base
 * @size:	bytes
 *
 * Return: 0 or a negative libfdt error.
 */
static int fdt_mmio_node(void *fdt, const char *name, uint64_t base, uint64_t size)
{
	char node[64];
	uint64_t reg[2] = { base, size };
	int err;

	snprintf(node, sizeof(node), "%s@%" PRIx64, name, base);
	err = fdt_begin_node(fdt, node);
	if (err < 0)
		return err;
	return fdt_prop_u64s(fdt, "reg", reg, 2);
}

/**
 * fdt_cpus() - /cpus and one cpu@MPIDR node per vCPU
 * @fdt:	tree being written
 * @m:		the machine
 *
 * Return: 0 or a negative libfdt error.
 */
static int fdt_cpus(void *fdt, const struct arm64_machine *m)
{
	char node[32];
	unsigned int i;
	int err;

	FDT_TRY(fdt_begin_node(fdt, "cpus"));
	FDT_TRY(fdt_property_cell(fdt, "#address-cells", 1));
	FDT_TRY(fdt_property_cell(fdt, "#size-cells", 0));
	for (i = 0; i < m->ncpus; i++) {
		uint32_t mpidr = (uint32_t)arm64_cpu_mpidr(i);

		snprintf(node, sizeof(node), "cpu@%" PRIx32, mpidr);
		FDT_TRY(fdt_begin_node(fdt, node));
		FDT_TRY(fdt_property_string(fdt, "device_type", "cpu"));
		FDT_TRY(fdt_property_string(fdt, "compatible", "arm,arm-v8"));
		FDT_TRY(fdt_property_string(fdt, "enable-method", "psci"));
		FDT_TRY(fdt_property_cell(fdt, "reg", mpidr));
		FDT_TRY(fdt_end_node(fdt));
	}
	err = fdt_end_node(fdt);
out:
	return err;
}

/**
 * fdt_interrupts_and_timer() - /psci, /timer and the GICv3 node
 * @fdt:	tree being written
 * @m:		the machine
 *
 * Return: 0 or a negative libfdt error.
 */
static int fdt_interrupts_and_timer(void *fdt, const struct arm64_machine *m)
{
	static const uint32_t timer_irqs[] = {
		ARM64_FDT_IRQ_PPI, ARM64_TIMER_PPI_SEC, ARM64_FDT_IRQ_LEVEL_LOW,
		ARM64_FDT_IRQ_PPI, ARM64_TIMER_PPI_NONSEC, ARM64_FDT_IRQ_LEVEL_LOW,
		ARM64_FDT_IRQ_PPI, ARM64_TIMER_PPI_VIRT, ARM64_FDT_IRQ_LEVEL_LOW,
		ARM64_FDT_IRQ_PPI, ARM64_TIMER_PPI_HYP, ARM64_FDT_IRQ_LEVEL_LOW,
	};
	uint64_t gic_reg[4] = {
		ARM64_GIC_DIST_BASE, ARM64_GIC_DIST_SIZE,
		ARM64_GIC_REDIST_BASE, ARM64_GIC_REDIST_SIZE * m->ncpus,
	};
	char node[32];
	int err;

	FDT_TRY(fdt_begin_node(fdt, "psci"));
	FDT_TRY(fdt_property_string(fdt, "compatible", "arm,psci-0.2"));
	FDT_TRY(fdt_property_string(fdt, "method", "hvc"));
	FDT_TRY(fdt_end_node(fdt));

	FDT_TRY(fdt_begin_node(fdt, "timer"));
	FDT_TRY(fdt_property_string(fdt, "compatible", "arm,armv8-timer"));
	FDT_TRY(fdt_prop_irq(fdt, timer_irqs, 4));
	FDT_TRY(fdt_property(fdt, "always-on", NULL, 0));
	FDT_TRY(fdt_end_node(fdt));

	snprintf(node, sizeof(node), "intc@%llx", ARM64_GIC_DIST_BASE);
	FDT_TRY(fdt_begin_node(fdt, node));
	FDT_TRY(fdt_property_string(fdt, "compatible", "arm,gic-v3"));
	FDT_TRY(fdt_property_cell(fdt, "#interrupt-cells", 3));
	FDT_TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
	FDT_TRY(fdt_prop_u64s(fdt, "reg", gic_reg, 4));
	FDT_TRY(fdt_property_cell(fdt, "#address-cells", 2));
	FDT_TRY(fdt_property_cell(fdt, "#size-cells", 2));
	FDT_TRY(fdt_property(fdt, "ranges", NULL, 0));
	FDT_TRY(fdt_property_cell(fdt, "phandle", ARM64_FDT_PHANDLE_GIC));
	err = fdt_end_node(fdt);
out:
	return err;
}

/**
 * fdt_devices() - the UART and the virtio-mmio slots
 * @fdt:	tree being written
 * @m:		the machine
 *
 * Return: 0 or a negative libfdt error.
 */
static int fdt_devices(void *fdt, const struct arm64_machine *m)
{
	uint32_t irq[3] = { ARM64_FDT_IRQ_SPI, m->uart.spi, ARM64_FDT_IRQ_LEVEL_HIGH };
	unsigned int i;
	int err;

	FDT_TRY(fdt_mmio_node(fdt, "uart", m->uart.base, m->uart.size));
	FDT_TRY(fdt_property_string(fdt, "compatible", "ns16550a"));
	FDT_TRY(fdt_prop_irq(fdt, irq, 1));
	FDT_TRY(fdt_property_cell(fdt, "clock-frequency", ARM64_UART_CLOCK));
	FDT_TRY(fdt_end_node(fdt));

	for (i = 0; i < m->nr_virtio; i++) {
		const struct arm64_mmio_slot *s = &m->virtio[i];

		irq[1] = s->spi;
		FDT_TRY(fdt_mmio_node(fdt, "virtio_mmio", s->base, s->size));
		FDT_TRY(fdt_property_string(fdt, "compatible", "virtio,mmio"));
		FDT_TRY(fdt_prop_irq(fdt, irq, 1));
		FDT_TRY(fdt_property(fdt, "dma-coherent", NULL, 0));
		FDT_TRY(fdt_end_node(fdt));
	}
	err = 0;
out:
	return err;
}

/**
 * arm64_fdt_build() - write the machine's device tree into @buf
 * @m:		the machine
 * @cmdline:	kernel command line (/chosen/bootargs), or NULL
 * @initrd_addr: guest physical address of the initrd
 * @initrd_size: its bytes; 0: no initrd properties
 * @buf:	where the flattened tree goes (in guest RAM or a staging buffer)
 * @len:	room in @buf
 *
 * Return: the tree's size in bytes, or -ENOSPC (does not fit @len) / -EINVAL with
 * mvm_last_error() set.
 */
int arm64_fdt_build(const struct arm64_machine *m, const char *cmdline, uint64_t initrd_addr,
		    uint64_t initrd_size, void *buf, size_t len)
{
	uint64_t mem_reg[2] = { ARM64_RAM_BASE, m->ram_size };
	char path[40];
	int err;

	if (len > INT32_MAX)
		len = INT32_MAX;
	if (cmdline && strlen(cmdline) >= ARM64_CMDLINE_MAX)
		return mvm_set_error(-EINVAL, "arm64: kernel command line longer than %d bytes",
				     ARM64_CMDLINE_MAX - 1);
	FDT_TRY(fdt_create(buf, (int)len));
	FDT_TRY(fdt_finish_reservemap(buf));
	FDT_TRY(fdt_begin_node(buf, ""));
	FDT_TRY(fdt_property_string(buf, "compatible", "linux,dummy-virt"));
	FDT_TRY(fdt_property_cell(buf, "#address-cells", 2));
	FDT_TRY(fdt_property_cell(buf, "#size-cells", 2));
	FDT_TRY(fdt_property_cell(buf, "interrupt-parent", ARM64_FDT_PHANDLE_GIC));

	FDT_TRY(fdt_begin_node(buf, "chosen"));
	FDT_TRY(fdt_property_string(buf, "bootargs", cmdline ? cmdline : ""));
	snprintf(path, sizeof(path), "/uart@%" PRIx64, m->uart.base);
	FDT_TRY(fdt_property_string(buf, "stdout-path", path));
	if (initrd_size) {
		FDT_TRY(fdt_property_u64(buf, "linux,initrd-start", initrd_addr));
		FDT_TRY(fdt_property_u64(buf, "linux,initrd-end", initrd_addr + initrd_size));
	}
	FDT_TRY(fdt_end_node(buf));

	FDT_TRY(fdt_mmio_node(buf, "memory", mem_reg[0], mem_reg[1]));
	FDT_TRY(fdt_property_string(buf, "device_type", "memory"));
	FDT_TRY(fdt_end_node(buf));

	FDT_TRY(fdt_cpus(buf, m));
	FDT_TRY(fdt_interrupts_and_timer(buf, m));
	FDT_TRY(fdt_devices(buf, m));
	FDT_TRY(fdt_end_node(buf));
	FDT_TRY(fdt_finish(buf));
	return (int)fdt_totalsize(buf);
out:
	if (err == -FDT_ERR_NOSPACE)
		return mvm_set_error(-ENOSPC, "arm64: device tree larger than %zu bytes", len);
	return mvm_set_error(-EINVAL, "arm64: device tree: %s", fdt_strerror(err));
}
