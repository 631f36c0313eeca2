/* SPDX-License-Identifier: MIT */
/**
 * DOC: the host/guest contract
 *
 * Every number that the host (libmicrovm, `microvm`) and the guest (microvm-init,
 * microvm-agent) must agree on lives here, once: both src/ and guest/ include this header,
 * and so may an application that writes its own client for the agent.  docs/protocol.md
 * describes the same values in prose; when one changes, both sides change with it.
 *
 * - ports: the agent's control port (newline JSON) and inbound proxy port;
 * - exit statuses of the agent and of microvm-init that mean "power off" / "reboot";
 * - the status bytes of the inbound proxy handshake;
 * - size limits of the control protocol (request line, profile, names, credentials);
 * - the constants of the authenticated-transport handshake used over TCP
 *   (docs/protocol.md, "Authentication over TCP").
 *
 * Plain constants only: no types, no functions, usable from C11 on Linux and Windows.
 */
#ifndef MICROVM_CONTRACT_H
#define MICROVM_CONTRACT_H

/* ---------------------------------------------------------------- ports */

/* The agent's control port: one JSON object per line each way. */
#define MVM_AGENT_PORT			1025
/* The agent's inbound proxy: [len][host][port BE], one status byte, then raw bytes. */
#define MVM_PROXY_PORT			7602

/* ---------------------------------------------------------------- exit statuses */

/* The agent after a "shutdown" request; microvm-init and the backends power off. */
#define MVM_STATUS_POWEROFF		100
/* A guest program that asks for a reboot (microvm-init, the namespace box). */
#define MVM_STATUS_REBOOT		101

/* ---------------------------------------------------------------- inbound proxy */

/* Longest host name in the proxy handshake, and the whole handshake. */
#define MVM_PROXY_HOST_MAX		255
#define MVM_PROXY_HANDSHAKE_MAX		(1 + MVM_PROXY_HOST_MAX + 2)

/* The status byte the agent answers after the handshake (SOCKS5 reply codes). */
#define MVM_PROXY_OK			0x00	/* connected; relaying follows */
#define MVM_PROXY_ERR_GENERAL		0x01	/* general failure, malformed handshake */
#define MVM_PROXY_ERR_NOT_ALLOWED	0x02	/* the destination policy refuses it */
#define MVM_PROXY_ERR_NETUNREACH	0x03
#define MVM_PROXY_ERR_HOSTUNREACH	0x04	/* also: the name does not resolve */
#define MVM_PROXY_ERR_REFUSED		0x05
#define MVM_PROXY_ERR_TIMEOUT		0x06

/* ---------------------------------------------------------------- control protocol limits */

/*
 * Longest control request line (without the newline): 8 MiB, so that any profile of at most
 * MVM_PROFILE_MAX bytes fits even when every byte is a control character that JSON escapes
 * as "\u00XX" (6x: 6 MiB), with room for the other members.
 */
#define MVM_LINE_MAX			(8 * 1024 * 1024)
#define MVM_LINE_MAX_TEXT		"8 MiB"
/* Largest profile content, decoded. */
#define MVM_PROFILE_MAX			(1024 * 1024)
/* Profile names: 1..64 characters of [A-Za-z0-9._-], not starting with a dot. */
#define MVM_PROFILE_NAME_MAX		64
/* Longest username or password (OpenVPN management command lines are <= 1024 bytes). */
#define MVM_CRED_MAX			256
/* The agent's auth secret (get_auth_secret, --auth-secret-file): 64 hex characters. */
#define MVM_SECRET_HEX_LEN		64

/* ---------------------------------------------------------------- authenticated transport */

/*
 * Over TCP every connection to either port starts with a mutual HMAC-SHA256
 * challenge-response keyed with the 32 bytes the auth secret's hex encodes:
 *
 *   host  -> agent   HELLO  = MVM_AUTH_MAGIC (8) | host nonce Nh (32)
 *   agent -> host    CHALL  = MVM_AUTH_MAGIC (8) | agent nonce Na (32) |
 *                             HMAC(key, MVM_AUTH_LABEL_AGENT | port (4, BE) | Nh | Na) (32)
 *   host  -> agent   PROOF  = HMAC(key, MVM_AUTH_LABEL_HOST  | port (4, BE) | Nh | Na) (32)
 *
 * after which the port's own protocol follows unchanged.  The labels are sent without their
 * NUL.  See docs/protocol.md.
 */
#define MVM_AUTH_MAGIC			"MVMAUTH1"
#define MVM_AUTH_MAGIC_LEN		8
#define MVM_AUTH_NONCE_LEN		32
#define MVM_AUTH_MAC_LEN		32
#define MVM_AUTH_KEY_LEN		32
#define MVM_AUTH_HELLO_LEN		(MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN)
#define MVM_AUTH_CHALLENGE_LEN		(MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN + MVM_AUTH_MAC_LEN)
#define MVM_AUTH_PROOF_LEN		MVM_AUTH_MAC_LEN
#define MVM_AUTH_LABEL_AGENT		"microvm-auth-1 agent"
#define MVM_AUTH_LABEL_HOST		"microvm-auth-1 host"
/* The agent drops a connection whose handshake is not complete within this time. */
#define MVM_AUTH_TIMEOUT_MS		5000

#endif
