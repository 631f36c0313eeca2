/* SPDX-License-Identifier: MIT */
/*
 * mvm_auth.h - the authenticated-transport handshake, shared by the host (libmicrovm) and the
 * guest agent.  Prefix mvm_auth_.  Wire format: include/microvm/contract.h and
 * docs/protocol.md ("Authentication over TCP").
 *
 * Theory of operation
 *
 *   Both sides hold the same 32-byte key (the 64-hex-character auth secret, decoded).  The
 *   host opens the exchange with a fresh nonce; the agent answers with its own fresh nonce
 *   and a MAC proving it knows the key; the host checks it and answers with its own MAC.
 *   Each MAC covers a direction label, the port and both nonces, so
 *     - neither side's MAC can be replayed on another connection (the other side's nonce
 *       is new every time), on the other port, or reflected back in the other direction;
 *     - an impostor agent cannot produce the agent's MAC, and the host sends nothing but a
 *       nonce until it has checked that MAC: the impostor learns nothing;
 *     - an unauthenticated client gets one challenge (random nonce + MAC over its own
 *       nonce), which lets it compute nothing it could use.
 *   MACs are compared in constant time.  The agent side is a pure state machine over the
 *   bytes received (fuzzed by fuzz-agent-auth); the I/O belongs to the callers, which also
 *   bound the time a handshake may take.
 *
 *   Crypto comes from the platform's library: OpenSSL's libcrypto on Linux (HMAC-SHA256
 *   through EVP_MAC, RAND_bytes, CRYPTO_memcmp), CNG (BCrypt) on Windows.
 *
 *   The key is set up for HMAC once: mvm_auth_key_init() makes a keyed context when the
 *   secret is loaded, and each handshake takes two copies of it (mvm_auth_host_start(),
 *   mvm_auth_agent_init()), one for each of its two MACs: every MAC is computed on a fresh
 *   copy, never on a used context started over (that restart is broken in OpenSSL
 *   3.0.0-3.0.2); mvm_auth_wipe() frees what is left.  Making the keyed context is what costs (libcrypto fetches
 *   the algorithm and hashes the padded key: more than the MAC itself); copying it is cheap
 *   (docs/performance.md).
 *
 *   What a keyed context holds: libcrypto's keeps the hashed inner and outer pads and also a
 *   copy of the raw key (OPENSSL_secure_malloc: plain heap without a secure heap), and each
 *   copy of the context copies that key; freeing one clears both
 *   (OPENSSL_secure_clear_free(), EVP_MD_CTX cleansing).  CNG allocates its hash objects
 *   itself (we pass no buffer); wiping them on BCryptDestroyHash() is up to CNG.
 *
 *   Threads: a key is only read by the handshakes that copy it; its owner copies it under
 *   the owner's lock (the vsock client's, the agent's single thread) and replaces or frees
 *   it (mvm_auth_key_fini()) under the same lock.  A handshake's copy does not depend on
 *   the key once taken.
 */
#ifndef MVM_COMMON_AUTH_H
#define MVM_COMMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "microvm/contract.h"

/* mvm_auth_agent_input() results (errors are negative errno values) */
#define MVM_AUTH_MORE	0	/* feed more bytes */
#define MVM_AUTH_SEND	1	/* send the challenge in @out, then feed the proof */
#define MVM_AUTH_DONE	2	/* authenticated: the port's own protocol follows */

/**
 * struct mvm_auth_key - a key set up for HMAC-SHA256 once (mvm_auth_key_init())
 * @mac:	the keyed context: an EVP_MAC_CTX (libcrypto) or a BCRYPT_HASH_HANDLE (CNG);
 *		NULL when the key is not set
 *
 * Zero-initialised, it is "no key"; mvm_auth_key_fini() returns it to that.
 */
struct mvm_auth_key {
	void *mac;
};

/**
 * struct mvm_auth - one handshake, either side
 * @mac:	this handshake's two fresh copies of the key's context: [0] computes the
 *		agent's MAC, [1] the host's; each is used once and freed (the rest by
 *		mvm_auth_wipe())
 * @port:	the port the connection is for (bound into both MACs)
 * @nh:		the host's nonce
 * @na:		the agent's nonce
 * @buf:	agent: bytes of the current message received so far
 * @len:	how many
 * @state:	agent: 0 reading HELLO, 1 reading PROOF, 2 done, -1 failed
 */
struct mvm_auth {
	void *mac[2];
	uint32_t port;
	uint8_t nh[MVM_AUTH_NONCE_LEN];
	uint8_t na[MVM_AUTH_NONCE_LEN];
	uint8_t buf[MVM_AUTH_HELLO_LEN];
	size_t len;
	int state;
};

int mvm_auth_key_from_hex(const char *hex, size_t len, uint8_t key[MVM_AUTH_KEY_LEN]);
int mvm_auth_key_init(struct mvm_auth_key *k, const uint8_t key[MVM_AUTH_KEY_LEN]);
int mvm_auth_key_init_hex(struct mvm_auth_key *k, const char *hex, size_t len);
void mvm_auth_key_fini(struct mvm_auth_key *k);
int mvm_auth_random(void *buf, size_t n);
int mvm_auth_mac(const struct mvm_auth_key *k, const char *label, uint32_t port,
		 const uint8_t nh[MVM_AUTH_NONCE_LEN], const uint8_t na[MVM_AUTH_NONCE_LEN],
		 uint8_t out[MVM_AUTH_MAC_LEN]);
int mvm_auth_equal(const void *a, const void *b, size_t n);
void mvm_auth_wipe(struct mvm_auth *st);
void mvm_auth_cleanse(void *p, size_t n);

int mvm_auth_host_start(struct mvm_auth *st, const struct mvm_auth_key *k, uint32_t port);
int mvm_auth_host_hello(struct mvm_auth *st, uint8_t out[MVM_AUTH_HELLO_LEN]);
int mvm_auth_host_finish(struct mvm_auth *st, const uint8_t chall[MVM_AUTH_CHALLENGE_LEN],
			 uint8_t proof[MVM_AUTH_PROOF_LEN]);

int mvm_auth_agent_init(struct mvm_auth *st, const struct mvm_auth_key *k, uint32_t port);
size_t mvm_auth_agent_want(const struct mvm_auth *st);
int mvm_auth_agent_input(struct mvm_auth *st, const uint8_t *data, size_t n,
			 uint8_t out[MVM_AUTH_CHALLENGE_LEN]);

#endif
