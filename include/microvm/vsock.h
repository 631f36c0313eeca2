/* SPDX-License-Identifier: MIT */
/**
 * DOC: vsock client
 *
 * The host's way to talk to programs in the guest, whatever the backend.  A client maps a
 * port number to a byte stream: under KVM through the virtio-vsock device (guest CID, host
 * CID 2), under WSL2 or the namespace backend through TCP (port N <-> 127.0.0.1:N or another
 * dialer supplied by the backend).  Callers never branch on which one it is.
 *
 * A stream is a plain file descriptor (a socket, or one end of a socketpair whose other end
 * the device serves): read, write, poll, shutdown(SHUT_WR) for half-close, close when done.
 * EOF means the guest closed its side.
 *
 * All functions are thread-safe.  Every call that can block takes a timeout in milliseconds
 * (negative: wait forever).
 */
#ifndef MICROVM_VSOCK_H
#define MICROVM_VSOCK_H

#include "microvm/export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mvm_vsock mvm_vsock;

/**
 * typedef mvm_vsock_accept_cb - a guest opened a connection to a host port we listen on
 * @opaque:	as given to mvm_vsock_listen()
 * @port:	the host port the guest connected to
 * @fd:		the stream; the callback owns it and must close it eventually
 *
 * Called from a libmicrovm thread (under KVM the virtio-vsock device's thread that processes
 * the guest's packets; over TCP the transport's listener loop thread, shared by all its
 * ports), never from the thread that called mvm_vsock_listen(): hand the fd off quickly
 * rather than serving it inline; meanwhile the device (or loop) serves no other stream.  It
 * may call mvm_vsock_listen() and mvm_vsock_unlisten() (even for its own port).
 */
typedef void (*mvm_vsock_accept_cb)(void *opaque, uint32_t port, int fd);

/**
 * mvm_vsock_new_tcp() - a client whose port N is TCP @host:N
 * @host:	numeric address or name; NULL means 127.0.0.1
 *
 * The TCP flavour used for WSL2 and for tests that run the agent outside a VM.
 */
MVM_API mvm_vsock *mvm_vsock_new_tcp(const char *host);

/**
 * mvm_vsock_new_tcp_netns() - like mvm_vsock_new_tcp(), dialling from inside a network namespace
 * @netns_path:	e.g. "/run/netns/NAME" or "/proc/PID/ns/net"
 * @host:	address inside that namespace; NULL means 127.0.0.1
 *
 * Sockets are created in the namespace (needs CAP_SYS_ADMIN over it) and then used from here.
 */
MVM_API mvm_vsock *mvm_vsock_new_tcp_netns(const char *netns_path, const char *host);

/**
 * mvm_vsock_set_secret() - authenticate every stream of this client with the agent's secret
 * @vs:		client
 * @secret:	the agent's auth secret, MVM_SECRET_HEX_LEN (64) hex characters; NULL: stop
 *		authenticating
 *
 * Needed over TCP, where the agent accepts only connections that prove its secret
 * (docs/protocol.md, "Authentication over TCP"): mvm_vsock_connect() then runs the mutual
 * handshake before it returns a stream, and fails with -EACCES ("the agent at HOST:PORT
 * failed authentication (wrong secret or not our agent)") when the peer does not prove the
 * same secret.  The namespace and WSL2 backends key their clients themselves.  The key is
 * set up for HMAC here, once, and copied for each handshake; nothing keeps @secret.
 *
 * Return: 0, -EINVAL when @secret is not 64 hex characters, or -ENOMEM / -EIO when the
 * crypto library cannot set the key up.
 */
MVM_API int mvm_vsock_set_secret(mvm_vsock *vs, const char *secret);

/** mvm_vsock_free() - release the client; open streams stay usable until closed. */
MVM_API void mvm_vsock_free(mvm_vsock *vs);

/**
 * mvm_vsock_connect() - open a stream to a guest port
 * With a secret set (mvm_vsock_set_secret()) the stream is returned authenticated; @timeout_ms
 * covers the handshake too.
 * Return: a file descriptor, or -errno with mvm_last_error() set (-EACCES: the agent
 * failed authentication).
 */
MVM_API int mvm_vsock_connect(mvm_vsock *vs, uint32_t port, int timeout_ms);

/**
 * mvm_vsock_close_stream() - close a stream from mvm_vsock_connect() or an accept callback
 * (close() on POSIX; on Windows the int holds a Winsock SOCKET and needs closesocket())
 * @fd:		the stream; negative values are ignored
 */
MVM_API void mvm_vsock_close_stream(int fd);

/**
 * MVM_VSOCK_MAX_CONNS - connections one virtio-vsock device carries at once
 *
 * The size of the device's connection table (src/devices/virtio/vsock.c); a connect past
 * it is reset. Users of many streams (the SOCKS server) stay below it, keeping
 * MVM_VSOCK_CONN_RESERVE of them for control requests.
 */
#define MVM_VSOCK_MAX_CONNS	1024
#define MVM_VSOCK_CONN_RESERVE	24

/**
 * MVM_VSOCK_MAX_RESPONSE - longest response mvm_vsock_request() accepts (16 MiB)
 *
 * The response comes from the guest, so its size is capped: a longer line (counted without
 * its '\n') fails with -EMSGSIZE instead of growing the host's buffer without bound.
 */
#define MVM_VSOCK_MAX_RESPONSE	(16u * 1024 * 1024)

/**
 * mvm_vsock_request() - one newline-framed request and its response
 * @vs:		client
 * @port:	guest port (1025 for the agent)
 * @req:	request bytes; a '\n' is appended if @req does not end with one
 * @req_len:	length of @req
 * @resp:	on success, a malloc'd NUL-terminated response without its '\n' (caller frees)
 * @resp_len:	on success, its length (may be NULL)
 * @timeout_ms:	for the whole exchange
 *
 * Opens a stream, writes the request, reads until a newline or EOF (at most
 * MVM_VSOCK_MAX_RESPONSE bytes), closes.
 * Return: 0, or -errno (-ETIMEDOUT, -ECONNREFUSED, -EPROTO for EOF before any byte,
 * -EMSGSIZE for a response longer than MVM_VSOCK_MAX_RESPONSE).
 */
MVM_API int mvm_vsock_request(mvm_vsock *vs, uint32_t port, const void *req, size_t req_len,
			      char **resp, size_t *resp_len, int timeout_ms);

/**
 * mvm_vsock_listen() - accept guest-initiated connections to host port @port
 * Return: 0 or -errno (-EADDRINUSE when already listening, -EOPNOTSUPP by transport).
 */
MVM_API int mvm_vsock_listen(mvm_vsock *vs, uint32_t port, mvm_vsock_accept_cb cb, void *opaque);

/** mvm_vsock_unlisten() - stop accepting on @port. */
MVM_API void mvm_vsock_unlisten(mvm_vsock *vs, uint32_t port);

#ifdef __cplusplus
}
#endif
#endif
