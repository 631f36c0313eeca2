/* SPDX-License-Identifier: MIT */
/**
 * DOC: SOCKS5 wire format (RFC 1928, RFC 1929) and the agent's relay handshake
 *
 * Pure functions over byte buffers, no I/O: the server (socks5.c) accumulates what a client
 * sent and calls a parser; each parser looks only inside [buf, buf + len) and answers
 * "need more bytes" (0), "this many bytes form a complete message" (> 0) or "bad message"
 * (negative errno).  That keeps every byte a peer controls behind one bounds-checked reader,
 * and makes the parsers easy to unit-test and fuzz.
 */
#ifndef MVM_MANAGER_SOCKS5_PROTO_H
#define MVM_MANAGER_SOCKS5_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "microvm/contract.h"

#define SOCKS_VERSION		0x05
#define SOCKS_AUTH_VERSION	0x01	/* RFC 1929 subnegotiation */

/* Methods (RFC 1928 section 3) */
#define SOCKS_METHOD_NONE	0x00
#define SOCKS_METHOD_USERPASS	0x02
#define SOCKS_METHOD_REJECT	0xff

/* Commands */
#define SOCKS_CMD_CONNECT	0x01
#define SOCKS_CMD_BIND		0x02
#define SOCKS_CMD_UDP		0x03

/* Address types */
#define SOCKS_ATYP_IPV4		0x01
#define SOCKS_ATYP_DOMAIN	0x03
#define SOCKS_ATYP_IPV6		0x04

/* Reply codes (RFC 1928 section 6) */
#define SOCKS_REP_OK		0x00
#define SOCKS_REP_FAIL		0x01
#define SOCKS_REP_NOT_ALLOWED	0x02
#define SOCKS_REP_NET_UNREACH	0x03
#define SOCKS_REP_HOST_UNREACH	0x04
#define SOCKS_REP_REFUSED	0x05
#define SOCKS_REP_TTL_EXPIRED	0x06
#define SOCKS_REP_CMD_UNSUPP	0x07
#define SOCKS_REP_ATYP_UNSUPP	0x08

/* Status byte the agent's inbound proxy (port 7602) answers after the handshake (contract.h) */
#define SOCKS_AGENT_OK		MVM_PROXY_OK
#define SOCKS_AGENT_FAIL	MVM_PROXY_ERR_GENERAL
#define SOCKS_AGENT_NOT_ALLOWED	MVM_PROXY_ERR_NOT_ALLOWED	/* the agent's destination policy refuses it */
#define SOCKS_AGENT_NET_UNREACH	MVM_PROXY_ERR_NETUNREACH
#define SOCKS_AGENT_HOST_UNREACH MVM_PROXY_ERR_HOSTUNREACH
#define SOCKS_AGENT_REFUSED	MVM_PROXY_ERR_REFUSED
#define SOCKS_AGENT_TIMEOUT	MVM_PROXY_ERR_TIMEOUT

/* Longest messages: greeting 2 + 255, auth 3 + 255 + 255, request 4 + 1 + 255 + 2 */
#define SOCKS_GREETING_MAX	257
#define SOCKS_AUTH_MAX		513
#define SOCKS_REQUEST_MAX	262
#define SOCKS_REPLY_LEN		10	/* with an IPv4 bound address */
#define SOCKS_HANDSHAKE_MAX	MVM_PROXY_HANDSHAKE_MAX	/* [len][host <= 255][port BE] */

/**
 * struct socks_greeting - the client's method offer
 * @has_none:		offers "no authentication"
 * @has_userpass:	offers username/password
 */
struct socks_greeting {
	bool has_none;
	bool has_userpass;
};

/**
 * struct socks_auth - an RFC 1929 username/password request
 * @user/@pass:	NUL-terminated copies (the wire allows 1..255 bytes, no NUL inside)
 * @user_len/@pass_len:	their lengths
 */
struct socks_auth {
	char user[256];
	char pass[256];
	size_t user_len;
	size_t pass_len;
};

/**
 * struct socks_request - a parsed request
 * @cmd:	SOCKS_CMD_*
 * @atyp:	SOCKS_ATYP_*
 * @host:	the destination as text: dotted IPv4, IPv6 without brackets, or the domain name
 * @port:	destination port, host byte order
 */
struct socks_request {
	uint8_t cmd;
	uint8_t atyp;
	char host[256];
	uint16_t port;
};

int socks_parse_greeting(const uint8_t *buf, size_t len, struct socks_greeting *g);
uint8_t socks_choose_method(const struct socks_greeting *g, bool auth_required);
int socks_parse_auth(const uint8_t *buf, size_t len, struct socks_auth *a);
bool socks_auth_check(const struct socks_auth *a, const char *user, const char *pass);
int socks_parse_request(const uint8_t *buf, size_t len, struct socks_request *r,
			uint8_t *rep);
size_t socks_build_reply(uint8_t *out, size_t cap, uint8_t rep);
int socks_build_handshake(const struct socks_request *r, uint8_t *out, size_t cap);
uint8_t socks_rep_from_agent(uint8_t status);
uint8_t socks_rep_from_errno(int err);
const char *socks_rep_name(uint8_t rep);

#endif
