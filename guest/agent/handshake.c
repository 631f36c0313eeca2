// SPDX-License-Identifier: MIT
/*
 * handshake.c - the inbound proxy's connect request: [len][host: len bytes][port: 2 bytes BE]
 *
 * Pure code, fuzzed by fuzz-agent-handshake. The host is a DNS name or an IPv4/IPv6
 * literal: letters, digits, '.', '-', '_' and ':' only, so nothing odd reaches the
 * resolver or the logs.
 */
#include <errno.h>
#include <string.h>

#include "agent.h"

/**
 * hs_parse() - parse the handshake at the start of @buf
 * @buf:	bytes received so far
 * @len:	how many
 * @host:	receives the NUL-terminated host (HS_HOST_MAX + 1 bytes)
 * @port:	receives the port
 *
 * Return: bytes the handshake occupies (> 0) when complete, 0 when more bytes are
 * needed, -EINVAL when malformed (length 0, port 0, bad characters)
 */
int hs_parse(const uint8_t *buf, size_t len, char *host, uint16_t *port)
{
	size_t hl;

	if (len < 1)
		return 0;
	hl = buf[0];
	if (hl == 0)
		return -EINVAL;
	/* Reject bad characters as soon as they arrive. */
	for (size_t i = 1; i < len && i <= hl; i++) {
		uint8_t c = buf[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_' || c == ':'))
			return -EINVAL;
	}
	if (len < 1 + hl + 2)
		return 0;
	*port = (uint16_t)(buf[1 + hl] << 8 | buf[2 + hl]);
	if (*port == 0)
		return -EINVAL;
	memcpy(host, buf + 1, hl);
	host[hl] = '\0';
	return (int)(1 + hl + 2);
}

/**
 * hs_status_from_errno() - the status byte for a failed connect
 * @err:	positive errno
 *
 * Return: HS_ERR_*
 */
uint8_t hs_status_from_errno(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return HS_ERR_REFUSED;
	case ENETUNREACH:
	case ENETDOWN:
		return HS_ERR_NETUNREACH;
	case EHOSTUNREACH:
	case EHOSTDOWN:
		return HS_ERR_HOSTUNREACH;
	case ETIMEDOUT:
		return HS_ERR_TIMEOUT;
	default:
		return HS_ERR_GENERAL;
	}
}
