/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by the vsock client and its transports. */
#ifndef MVM_RUNTIME_VSOCK_CLIENT_H
#define MVM_RUNTIME_VSOCK_CLIENT_H

#include <stdint.h>

#include "microvm/vsock.h"

/** vsock_now_ms() - CLOCK_MONOTONIC in milliseconds. */
int64_t vsock_now_ms(void);

/**
 * vsock_set_peer() - how error messages name the agent's address ("HOST" in "the agent at
 * HOST:PORT failed authentication"); set by the transport
 * @vs:		client
 * @host:	address text
 */
void vsock_set_peer(mvm_vsock *vs, const char *host);

#endif
