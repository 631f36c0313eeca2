/* SPDX-License-Identifier: MIT */
/*
 * Internal side of the vsock client: what a backend provides underneath one (the transport),
 * and helpers shared by the client and its transports.  Not in the public headers: an
 * application gets its clients from mvm_vm_vsock() or mvm_vsock_new_tcp().
 */
#ifndef MVM_RUNTIME_VSOCK_CLIENT_H
#define MVM_RUNTIME_VSOCK_CLIENT_H

#include <stdint.h>

#include "microvm/vsock.h"

/**
 * struct mvm_vsock_transport - what a backend provides underneath a client
 * @connect:	open a stream to guest port @port; return a file descriptor or -errno
 *		(-ECONNREFUSED when nothing listens, -ETIMEDOUT on timeout)
 * @listen:	start accepting guest-initiated connections to host port @port (may be NULL:
 *		then mvm_vsock_listen() fails with -EOPNOTSUPP)
 * @unlisten:	stop accepting on @port (may be NULL)
 * @destroy:	release @ctx when the client is freed (may be NULL)
 */
struct mvm_vsock_transport {
	int (*connect)(void *ctx, uint32_t port, int timeout_ms);
	int (*listen)(void *ctx, uint32_t port, mvm_vsock_accept_cb cb, void *opaque);
	void (*unlisten)(void *ctx, uint32_t port);
	void (*destroy)(void *ctx);
};

/**
 * mvm_vsock_new() - a client over a backend-supplied transport
 * @ops:	the transport (must outlive the client)
 * @ctx:	passed to every op
 *
 * Return: the client, or NULL with mvm_last_error() set.
 */
mvm_vsock *mvm_vsock_new(const struct mvm_vsock_transport *ops, void *ctx);

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
