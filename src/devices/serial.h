/* SPDX-License-Identifier: MIT */
/*
 * serial.h - 8250/16550A UART model (see serial.c).
 */
#ifndef MVM_DEVICES_SERIAL_H
#define MVM_DEVICES_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#define SERIAL_COM1_BASE	0x3f8
#define SERIAL_COM1_IRQ		4
#define SERIAL_NR_REGS		8
#define SERIAL_RX_FIFO		1024

/**
 * struct serial_ops - what the UART needs from its board
 * @output:	bytes the guest transmitted
 * @set_irq:	drive the interrupt line (level: 1 asserted, 0 deasserted)
 */
struct serial_ops {
	void (*output)(void *opaque, const uint8_t *data, size_t len);
	void (*set_irq)(void *opaque, int level);
};

struct serial;

struct serial *serial_new(const struct serial_ops *ops, void *opaque);
void serial_free(struct serial *s);
void serial_io(struct serial *s, unsigned int offset, int is_write, uint8_t *data);
size_t serial_input(struct serial *s, const uint8_t *data, size_t len);

#endif
