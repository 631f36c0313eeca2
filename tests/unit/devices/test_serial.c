/* SPDX-License-Identifier: MIT */
/*
 * test_serial.c - 8250/16550A register behaviour and the i8042 reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/i8042.h"
#include "devices/serial.h"

struct board {
	uint8_t out[256];
	size_t out_len;
	int irq;
	int irq_changes;
};

static void b_output(void *opaque, const uint8_t *data, size_t len)
{
	struct board *b = opaque;

	memcpy(b->out + b->out_len, data, len);
	b->out_len += len;
}

static void b_irq(void *opaque, int level)
{
	struct board *b = opaque;

	b->irq = level;
	b->irq_changes++;
}

static const struct serial_ops ops = { .output = b_output, .set_irq = b_irq };

static uint8_t rd(struct serial *s, unsigned int off)
{
	uint8_t v = 0;

	serial_io(s, off, 0, &v);
	return v;
}

static void wr(struct serial *s, unsigned int off, uint8_t v)
{
	serial_io(s, off, 1, &v);
}

static void test_transmit(void **state)
{
	struct board b = { .out_len = 0 };
	struct serial *s = serial_new(&ops, &b);

	(void)state;
	assert_int_equal(rd(s, 5) & 0x60, 0x60);	/* THRE | TEMT: ready */
	wr(s, 0, 'h');
	wr(s, 0, 'i');
	assert_int_equal(b.out_len, 2);
	assert_memory_equal(b.out, "hi", 2);
	assert_int_equal(b.irq, 0);			/* IER = 0: no interrupt */
	assert_int_equal(rd(s, 2) & 0x0f, 0x01);	/* IIR: none pending */
	serial_free(s);
}

static void test_dlab_and_scratch(void **state)
{
	struct board b = { .out_len = 0 };
	struct serial *s = serial_new(&ops, &b);

	(void)state;
	wr(s, 3, 0x80);		/* DLAB */
	wr(s, 0, 0x01);		/* DLL: 115200 */
	wr(s, 1, 0x00);		/* DLM */
	assert_int_equal(rd(s, 0), 0x01);
	assert_int_equal(b.out_len, 0);	/* a divisor write is not output */
	wr(s, 3, 0x03);		/* 8N1, DLAB off */
	assert_int_equal(rd(s, 3), 0x03);
	assert_int_equal(rd(s, 1), 0);	/* IER, not DLM */
	wr(s, 7, 0x5a);
	assert_int_equal(rd(s, 7), 0x5a);
	serial_free(s);
}

static void test_thre_interrupt_follows_ier(void **state)
{
	struct board b = { .out_len = 0 };
	struct serial *s = serial_new(&ops, &b);

	(void)state;
	wr(s, 1, 0x02);			/* IER.THRI */
	assert_int_equal(b.irq, 1);
	assert_int_equal(rd(s, 2) & 0x0f, 0x02);
	wr(s, 0, 'x');			/* still empty after the write: stays asserted */
	assert_int_equal(b.irq, 1);
	wr(s, 1, 0x00);			/* the driver's stop_tx */
	assert_int_equal(b.irq, 0);
	assert_int_equal(rd(s, 2) & 0x0f, 0x01);
	wr(s, 1, 0x02);			/* start_tx: a fresh rising edge */
	assert_int_equal(b.irq, 1);
	assert_int_equal(b.irq_changes, 3);
	serial_free(s);
}

static void test_receive_fifo_and_interrupt(void **state)
{
	struct board b = { .out_len = 0 };
	struct serial *s = serial_new(&ops, &b);
	uint8_t big[SERIAL_RX_FIFO + 10];
	size_t i;

	(void)state;
	wr(s, 2, 0x01);			/* FIFO enable: IIR shows 0xc0 (16550A) */
	assert_int_equal(rd(s, 2) & 0xc0, 0xc0);
	assert_int_equal(rd(s, 5) & 0x01, 0);
	assert_int_equal(serial_input(s, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(b.irq, 0);	/* IER.RDI off */
	wr(s, 1, 0x03);			/* RDI | THRI: receive has priority */
	assert_int_equal(b.irq, 1);
	assert_int_equal(rd(s, 2) & 0x0f, 0x04);
	assert_int_equal(rd(s, 5) & 0x01, 1);
	assert_int_equal(rd(s, 0), 'a');
	assert_int_equal(rd(s, 0), 'b');
	assert_int_equal(rd(s, 5) & 0x01, 0);
	assert_int_equal(rd(s, 2) & 0x0f, 0x02);	/* now THRE */
	assert_int_equal(rd(s, 0), 0);			/* empty FIFO reads 0 */

	memset(big, 'z', sizeof(big));
	assert_int_equal(serial_input(s, big, sizeof(big)), SERIAL_RX_FIFO);	/* full */
	for (i = 0; i < SERIAL_RX_FIFO; i++)
		assert_int_equal(rd(s, 0), 'z');
	assert_int_equal(rd(s, 5) & 0x01, 0);
	assert_int_equal(serial_input(s, (const uint8_t *)"q", 1), 1);
	wr(s, 2, 0x03);			/* FCR: clear receive FIFO */
	assert_int_equal(rd(s, 5) & 0x01, 0);
	serial_free(s);
}

static void test_loopback_and_msr(void **state)
{
	struct board b = { .out_len = 0 };
	struct serial *s = serial_new(&ops, &b);

	(void)state;
	assert_int_equal(rd(s, 6) & 0xb0, 0xb0);	/* DCD, DSR, CTS */
	wr(s, 4, 0x10 | 0x0a);		/* loopback, RTS, OUT2: Linux's probe */
	assert_int_equal(rd(s, 6) & 0xf0, 0x90);
	wr(s, 0, 'L');
	assert_int_equal(b.out_len, 0);
	assert_int_equal(rd(s, 0), 'L');
	wr(s, 4, 0x0b);
	assert_int_equal(rd(s, 4), 0x0b);
	uint8_t v = 0;
	serial_io(s, 9, 0, &v);		/* outside the 8 registers */
	assert_int_equal(v, 0xff);
	serial_free(s);
}

static void test_i8042(void **state)
{
	struct i8042 k = { 0 };
	uint8_t v, a, bb;

	(void)state;
	v = 0xff;
	assert_int_equal(i8042_io(&k, I8042_COMMAND_PORT, 0, &v), I8042_NONE);
	assert_int_equal(v & 0x02, 0);		/* input buffer empty: kb_wait() returns */
	v = 0xff;
	assert_int_equal(i8042_io(&k, I8042_DATA_PORT, 0, &v), I8042_NONE);
	assert_int_equal(v, 0);
	i8042_io(&k, I8042_PORT_B, 0, &a);
	i8042_io(&k, I8042_PORT_B, 0, &bb);
	assert_int_not_equal(a & 0x10, bb & 0x10);	/* refresh toggles */
	v = 0xd1;
	assert_int_equal(i8042_io(&k, I8042_COMMAND_PORT, 1, &v), I8042_NONE);
	v = I8042_CMD_RESET;
	assert_int_equal(i8042_io(&k, I8042_COMMAND_PORT, 1, &v), I8042_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transmit),
		cmocka_unit_test(test_dlab_and_scratch),
		cmocka_unit_test(test_thre_interrupt_follows_ier),
		cmocka_unit_test(test_receive_fifo_and_interrupt),
		cmocka_unit_test(test_loopback_and_msr),
		cmocka_unit_test(test_i8042),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
