/* SPDX-License-Identifier: MIT */
/*
 * i8042.c - just enough of the PC keyboard controller for a guest to reboot.
 *
 * Theory of operation
 * -------------------
 * Linux's reboot=k writes command 0xFE ("pulse output line 0", wired to CPU reset) to port
 * 0x64 after waiting for the input buffer to drain (status bit 1 clear).  We report that as
 * I8042_RESET; the board turns it into a REBOOT exit.  There is no keyboard: the status
 * register always says "nothing to read, ready to accept", data reads return 0, and port 0x61
 * (system control port B) keeps what was written with its refresh bit toggling on every read,
 * which is what delay loops polling it expect.
 */
#include "devices/i8042.h"

/**
 * i8042_io() - a port access
 * @kbd:	controller
 * @port:	0x60, 0x61 or 0x64
 * @is_write:	direction
 * @data:	byte written, or where to put the byte read
 *
 * Return: I8042_RESET when the guest asked for a CPU reset, else I8042_NONE.
 */
enum i8042_action i8042_io(struct i8042 *kbd, uint16_t port, int is_write, uint8_t *data)
{
	switch (port) {
	case I8042_COMMAND_PORT:
		if (is_write)
			return *data == I8042_CMD_RESET ? I8042_RESET : I8042_NONE;
		*data = 0x1c;	/* self-test passed, last write was a command, unlocked */
		return I8042_NONE;
	case I8042_PORT_B:
		if (is_write) {
			kbd->port_b = *data;
		} else {
			kbd->port_b ^= 0x10;	/* refresh toggle */
			*data = kbd->port_b;
		}
		return I8042_NONE;
	case I8042_DATA_PORT:
	default:
		if (!is_write)
			*data = 0;
		return I8042_NONE;
	}
}
