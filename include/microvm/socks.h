/* SPDX-License-Identifier: MIT */
/**
 * DOC: SOCKS5 proxy into the guest
 *
 * A SOCKS5 server (RFC 1928; optional username/password, RFC 1929) on the host, by default on
 * 127.0.0.1:1080.  Each CONNECT becomes a stream to the guest's inbound proxy (port 7602)
 * through a vsock client, so what the client reaches is whatever the guest reaches - through
 * the VPN.  The guest answers a one-byte status which becomes the SOCKS reply.  BIND and UDP
 * ASSOCIATE are refused with "command not supported".
 *
 * The server runs on its own thread (one epoll loop plus a few threads that only open vsock
 * streams) and is safe to start and stop from any thread.
 */
#ifndef MICROVM_SOCKS_H
#define MICROVM_SOCKS_H

#include "microvm/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "microvm/contract.h"
#include "microvm/error.h"
#include "microvm/vsock.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mvm_socks mvm_socks;

#define MVM_SOCKS_DEFAULT_PORT	1080
#define MVM_SOCKS_AGENT_PORT	MVM_PROXY_PORT
/*
 * Most concurrent SOCKS connections: each relay is one stream to the guest, so the cap
 * stays below what the vsock device carries, with room for control requests.
 */
#define MVM_SOCKS_MAX_CONNS	(MVM_VSOCK_MAX_CONNS - MVM_VSOCK_CONN_RESERVE)

/**
 * struct mvm_socks_config - how to serve
 * @size:	sizeof this struct as the caller's headers define it; set by
 *		mvm_socks_config_init(), never by hand (docs/library.md, "ABI rules")
 * @addr:	listen address, numeric IPv4 or IPv6 ("127.0.0.1" when NULL)
 * @port:	listen port (1080 by default; 0 picks a free one, see mvm_socks_port())
 * @allow_remote: allow a non-loopback @addr (anyone who can reach it can use the VPN)
 * @username:	require RFC 1929 authentication with these credentials (NULL: no auth)
 * @password:	the password (required with @username)
 * @agent_port:	guest port of the inbound proxy (7602)
 * @handshake_timeout_ms: time a client has to finish its SOCKS request (10 s)
 * @connect_timeout_ms: time for the stream to the guest and its status byte (30 s)
 * @idle_timeout_ms: close a relayed connection idle this long in both directions (1 h; <= 0
 *		never)
 * @max_conns:	concurrent connections (default and most: MVM_SOCKS_MAX_CONNS, 1000); past
 *		it a client gets SOCKS reply 0x01 (general failure) to its request, or, when
 *		even the few slots for such answers are taken, is closed at once
 * @workers:	threads that open vsock streams, which may block (4)
 * @log:	called with one line per notable event (failed connects, refusals), or NULL;
 *		never sees passwords; called on the server's threads (its event loop
 *		"mvm-socks" and its connect workers "mvm-socks-conn"), possibly at once from
 *		several: it must be thread-safe and quick
 * @log_opaque:	passed to @log
 */
struct mvm_socks_config {
	size_t size;
	const char *addr;
	uint16_t port;
	bool allow_remote;
	const char *username;
	const char *password;
	uint32_t agent_port;
	int handshake_timeout_ms;
	int connect_timeout_ms;
	int idle_timeout_ms;
	unsigned int max_conns;
	unsigned int workers;
	void (*log)(void *opaque, const char *line);
	void *log_opaque;
};

/**
 * struct mvm_socks_stats - counters since start
 * @active:	connections open now
 * @accepted:	connections accepted
 * @relayed:	connections that got a "succeeded" reply
 * @refused:	connections answered with an error reply or closed for bad input
 * @bytes_up:	bytes relayed client -> guest
 * @bytes_down:	bytes relayed guest -> client
 */
struct mvm_socks_stats {
	uint64_t active;
	uint64_t accepted;
	uint64_t relayed;
	uint64_t refused;
	uint64_t bytes_up;
	uint64_t bytes_down;
};

/**
 * mvm_socks_config_init_sized() - defaults: 127.0.0.1:1080, no auth, timeouts as documented
 * @cfg:	the config to fill
 * @size:	sizeof(*@cfg) in the caller's build; recorded in @cfg->size
 *
 * Call it through mvm_socks_config_init(); see mvm_config_init_sized().
 */
MVM_API void mvm_socks_config_init_sized(struct mvm_socks_config *cfg, size_t size);

/** mvm_socks_config_init() - fill @cfg (a struct mvm_socks_config *) with the defaults first. */
#define mvm_socks_config_init(cfg) mvm_socks_config_init_sized((cfg), sizeof(*(cfg)))

/**
 * mvm_socks_new() - prepare a server (nothing listens yet)
 * @cfg:	configuration from mvm_socks_config_init() (copied)
 * @vs:		vsock client to the guest (not owned; must outlive the server)
 *
 * Return: the server, or NULL with mvm_last_error() set.
 */
MVM_API mvm_socks *mvm_socks_new(const struct mvm_socks_config *cfg, mvm_vsock *vs);

/**
 * mvm_socks_start() - bind, listen and start serving
 * Return: 0 or -errno (-EADDRINUSE, -EPERM for a non-loopback address without allow_remote).
 */
MVM_API int mvm_socks_start(mvm_socks *s);

/** mvm_socks_port() - the port listened on (useful with port 0), 0 when not started. */
MVM_API uint16_t mvm_socks_port(mvm_socks *s);

/** mvm_socks_stats() - a snapshot of the counters. */
MVM_API void mvm_socks_stats(mvm_socks *s, struct mvm_socks_stats *st);

/** mvm_socks_stop() - stop listening and close every connection; may be restarted. */
MVM_API void mvm_socks_stop(mvm_socks *s);

/** mvm_socks_free() - stop if needed and free. */
MVM_API void mvm_socks_free(mvm_socks *s);

/**
 * mvm_socks_parse_listen() - parse "ADDR:PORT", "[V6]:PORT", "ADDR" or "PORT"
 * @spec:	text from the user
 * @addr:	numeric address out (unchanged if @spec has none)
 * @addr_cap:	its size
 * @port:	port out (unchanged if @spec has none)
 *
 * Return: 0 or -EINVAL with mvm_last_error() set.
 */
MVM_API int mvm_socks_parse_listen(const char *spec, char *addr, size_t addr_cap, uint16_t *port);

/**
 * mvm_socks_generate_secret() - a random password: 64 hex characters
 * @out:	buffer of at least 65 bytes
 * @cap:	its size
 *
 * Return: 0 or -errno.
 */
MVM_API int mvm_socks_generate_secret(char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
