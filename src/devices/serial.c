/* SPDX-License-Identifier: MIT */
/*
 * serial.c - an 8250/16550A UART, as Linux's 8250 driver sees it on COM1 (0x3f8, IRQ 4).
 *
 * Theory of operation
 * -------------------
 * Transmit is instant: a byte written to THR goes straight to ops->output (in loopback mode,
 * MCR bit 4, into our own receive FIFO instead), so THR is always empty (LSR THRE|TEMT).
 * Receive bytes come from serial_input() (the host typing) into a SERIAL_RX_FIFO byte FIFO
 * read through RBR; LSR DR says whether it holds anything.
 *
 * The interrupt line is recomputed after every access, as a level:
 *   - "received data available" while IER.RDI and the FIFO is not empty,
 *   - "transmitter empty" while IER.THRI (THR is always empty here),
 * and IIR reports the highest-priority one (RDA 0x04 over THRE 0x02, else 0x01 "none"), with
 * bits 6-7 set once the guest enabled the FIFOs (which makes Linux detect a 16550A).  Linux's
 * handler keeps transmitting while IIR says THRE and clears IER.THRI when its buffer is empty,
 * so the line falls and the next start_tx raises it again: each burst is one fresh edge on the
 * edge-triggered ISA IRQ 4.  This is the kvmtool model.
 *
 * Divisor latch (LCR.DLAB) accesses go to DLL/DLM, which only store values.  MSR reports
 * carrier, DSR and CTS (or, in loopback, the MCR outputs).  A mutex makes the device safe to
 * use from several vCPU threads and the host input thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/serial.h"

#define UART_RX		0	/* in:  receive buffer (DLAB=0) */
#define UART_TX		0	/* out: transmit holding (DLAB=0) */
#define UART_DLL	0	/* divisor latch low (DLAB=1) */
#define UART_IER	1
#define UART_DLM	1	/* divisor latch high (DLAB=1) */
#define UART_IIR	2	/* in */
#define UART_FCR	2	/* out */
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_MSR	6
#define UART_SCR	7

#define UART_IER_RDI	0x01
#define UART_IER_THRI	0x02
#define UART_IIR_NO_INT	0x01
#define UART_IIR_THRI	0x02
#define UART_IIR_RDI	0x04
#define UART_IIR_FIFO	0xc0
#define UART_FCR_ENABLE	0x01
#define UART_FCR_CLR_RX	0x02
#define UART_LCR_DLAB	0x80
#define UART_MCR_LOOP	0x10
#define UART_LSR_DR	0x01
#define UART_LSR_THRE	0x20
#define UART_LSR_TEMT	0x40
#define UART_MSR_CTS	0x10
#define UART_MSR_DSR	0x20
#define UART_MSR_RI	0x40
#define UART_MSR_DCD	0x80

struct serial {
	pthread_mutex_t lock;
	const struct serial_ops *ops;
	void *opaque;
	uint8_t ier, iir, fcr, lcr, mcr, msr, scr, dll, dlm;
	int irq_level;
	uint8_t rx[SERIAL_RX_FIFO];
	size_t rx_head, rx_len;
};

/**
 * serial_new() - a UART in its reset state
 * @ops:	output and interrupt callbacks
 * @opaque:	passed to them
 * Return: the device, or NULL (out of memory).
 */
struct serial *serial_new(const struct serial_ops *ops, void *opaque)
{
	struct serial *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->ops = ops;
	s->opaque = opaque;
	s->iir = UART_IIR_NO_INT;
	s->mcr = 0x08;	/* OUT2 */
	s->dll = 12;	/* 9600 baud */
	return s;
}

void serial_free(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/**
 * serial_update_irq() - recompute IIR and the interrupt line (lock held)
 */
static void serial_update_irq(struct serial *s)
{
	uint8_t iir = UART_IIR_NO_INT;
	int level;

	if ((s->ier & UART_IER_RDI) && s->rx_len)
		iir = UART_IIR_RDI;
	else if (s->ier & UART_IER_THRI)
		iir = UART_IIR_THRI;
	s->iir = iir;
	level = iir != UART_IIR_NO_INT;
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->ops->set_irq)
			s->ops->set_irq(s->opaque, level);
	}
}

/**
 * serial_rx_push() - queue received bytes (lock held)
 * Return: how many fitted.
 */
static size_t serial_rx_push(struct serial *s, const uint8_t *data, size_t len)
{
	size_t n = 0;

	while (n < len && s->rx_len < SERIAL_RX_FIFO) {
		s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_FIFO] = data[n++];
		s->rx_len++;
	}
	return n;
}

/**
 * serial_input() - bytes typed by the host
 * @s:		UART
 * @data/@len:	bytes
 * Return: how many were accepted (fewer when the receive FIFO is full).
 */
size_t serial_input(struct serial *s, const uint8_t *data, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = serial_rx_push(s, data, len);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/**
 * serial_read() - a register read (lock held)
 */
static uint8_t serial_read(struct serial *s, unsigned int off)
{
	uint8_t v;

	switch (off) {
	case UART_RX:
		if (s->lcr & UART_LCR_DLAB)
			return s->dll;
		if (!s->rx_len)
			return 0;
		v = s->rx[s->rx_head];
		s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
		s->rx_len--;
		return v;
	case UART_IER:
		return (s->lcr & UART_LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR:
		return s->iir | ((s->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0);
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return UART_LSR_THRE | UART_LSR_TEMT | (s->rx_len ? UART_LSR_DR : 0);
	case UART_MSR:
		if (s->mcr & UART_MCR_LOOP)
			return (uint8_t)(((s->mcr & 0x01) ? UART_MSR_DSR : 0) |
					 ((s->mcr & 0x02) ? UART_MSR_CTS : 0) |
					 ((s->mcr & 0x04) ? UART_MSR_RI : 0) |
					 ((s->mcr & 0x08) ? UART_MSR_DCD : 0));
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	case UART_SCR:
	default:
		return s->scr;
	}
}

/**
 * serial_write() - a register write (lock held)
 */
static void serial_write(struct serial *s, unsigned int off, uint8_t v)
{
	switch (off) {
	case UART_TX:
		if (s->lcr & UART_LCR_DLAB)
			s->dll = v;
		else if (s->mcr & UART_MCR_LOOP)
			serial_rx_push(s, &v, 1);
		else if (s->ops->output)
			s->ops->output(s->opaque, &v, 1);
		break;
	case UART_IER:
		if (s->lcr & UART_LCR_DLAB)
			s->dlm = v;
		else
			s->ier = v & 0x0f;
		break;
	case UART_FCR:
		s->fcr = v & UART_FCR_ENABLE;
		if (v & UART_FCR_CLR_RX)
			s->rx_head = s->rx_len = 0;
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:	/* LSR and MSR are read-only */
		break;
	}
}

/**
 * serial_io() - a port access at COM1 + @offset
 * @s:		UART
 * @offset:	0..7 (others are ignored, reads give 0xff)
 * @is_write:	direction
 * @data:	byte written, or where the byte read goes
 */
void serial_io(struct serial *s, unsigned int offset, int is_write, uint8_t *data)
{
	if (offset >= SERIAL_NR_REGS) {
		if (!is_write)
			*data = 0xff;
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (is_write)
		serial_write(s, offset, *data);
	else
		*data = serial_read(s, offset);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}
