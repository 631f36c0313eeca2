/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by the vsock client and its transports. */
#ifndef MVM_RUNTIME_VSOCK_CLIENT_H
#define MVM_RUNTIME_VSOCK_CLIENT_H

#include <stdint.h>

/** vsock_now_ms() - CLOCK_MONOTONIC in milliseconds. */
int64_t vsock_now_ms(void);

#endif
