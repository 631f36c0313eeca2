/* SPDX-License-Identifier: MIT */
/*
 * i8042.h - the bits of the PC keyboard controller a guest uses to reboot (see i8042.c).
 */
#ifndef MVM_DEVICES_I8042_H
#define MVM_DEVICES_I8042_H

#include <stdint.h>

#define I8042_DATA_PORT		0x60
#define I8042_PORT_B		0x61
#define I8042_COMMAND_PORT	0x64
#define I8042_CMD_RESET		0xfe

enum i8042_action {
	I8042_NONE = 0,
	I8042_RESET,	/* the guest pulsed the CPU reset line */
};

/**
 * struct i8042 - controller state
 * @port_b:	last value written to port 0x61 (refresh bit toggles on read)
 */
struct i8042 {
	uint8_t port_b;
};

enum i8042_action i8042_io(struct i8042 *kbd, uint16_t port, int is_write, uint8_t *data);

#endif
