/* SPDX-License-Identifier: MIT */
/*
 * console.h - console output fan-out (see the theory of operation in console.c).
 */
#ifndef MVM_RUNTIME_CONSOLE_H
#define MVM_RUNTIME_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "microvm/runtime.h"

/* Bytes kept for late subscribers (and the most a subscriber can lag behind). */
#define CONSOLE_RING_SIZE	MVM_CONSOLE_KEPT

struct console;

struct console *console_new(void);
void console_free(struct console *con);
void console_output(struct console *con, const void *data, size_t len);
int console_subscribe(struct console *con, mvm_console_cb cb, void *opaque);
int console_subscribe_fd(struct console *con, int fd);
void console_unsubscribe(struct console *con, int id);
int console_drain(struct console *con, int timeout_ms);
uint64_t console_total(struct console *con);
size_t console_read(struct console *con, void *buf, size_t size, uint64_t *total);

#endif
