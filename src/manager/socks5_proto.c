/* SPDX-License-Identifier: MIT */
/*
 * socks5_proto.c - SOCKS5 message parsers and builders (see socks5_proto.h).
 *
 * Every read from a peer's bytes goes through socks_rd(), which checks the offset against the
 * length first; a parser that runs out of bytes says "need more" and is called again later
 * with the same buffer grown.  No parser allocates or keeps state between calls.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
#include <ws2tcpip.h>	/* inet_ntop */
#else
#include <arpa/inet.h>
#endif

#include "manager/socks5_proto.h"

/**
 * socks_rd() - bounds-checked byte access
 * @buf:	message bytes
 * @len:	how many are valid
 * @off:	offset to read
 * @out:	the byte
 *
 * Return: true if @off is inside the buffer.
 */
static bool socks_rd(const uint8_t *buf, size_t len, size_t off, uint8_t *out)
{
	if (off >= len)
		return false;
	*out = buf[off];
	return true;
}

/**
 * socks_parse_greeting() - parse VER NMETHODS METHODS...
 * @buf:	bytes received so far
 * @len:	their number
 * @g:		filled on success
 *
 * Return: bytes consumed (> 0), 0 if incomplete, -EPROTO for a version other than 5 or no
 * methods at all.
 */
int socks_parse_greeting(const uint8_t *buf, size_t len, struct socks_greeting *g)
{
	uint8_t ver, n, m;
	size_t i;

	if (!socks_rd(buf, len, 0, &ver))
		return 0;
	if (ver != SOCKS_VERSION)
		return -EPROTO;
	if (!socks_rd(buf, len, 1, &n))
		return 0;
	if (n == 0)
		return -EPROTO;
	if (len < 2 + (size_t)n)
		return 0;
	g->has_none = false;
	g->has_userpass = false;
	for (i = 0; i < n; i++) {
		if (!socks_rd(buf, len, 2 + i, &m))
			return 0;
		if (m == SOCKS_METHOD_NONE)
			g->has_none = true;
		else if (m == SOCKS_METHOD_USERPASS)
			g->has_userpass = true;
	}
	return 2 + n;
}

/**
 * socks_choose_method() - the server's method selection
 * @g:			the client's offer
 * @auth_required:	a username/password is configured
 *
 * Return: SOCKS_METHOD_USERPASS, SOCKS_METHOD_NONE or SOCKS_METHOD_REJECT.
 */
uint8_t socks_choose_method(const struct socks_greeting *g, bool auth_required)
{
	if (auth_required)
		return g->has_userpass ? SOCKS_METHOD_USERPASS : SOCKS_METHOD_REJECT;
	return g->has_none ? SOCKS_METHOD_NONE : SOCKS_METHOD_REJECT;
}

/**
 * socks_rd_string() - read a [len][bytes] field
 * @buf/@len:	message
 * @off:	in: offset of the length byte; out: offset after the field
 * @out:	NUL-terminated copy (256 bytes)
 * @out_len:	its length
 *
 * Return: 1 complete, 0 incomplete, -EPROTO for an empty string or an embedded NUL.
 */
static int socks_rd_string(const uint8_t *buf, size_t len, size_t *off, char *out,
			   size_t *out_len)
{
	uint8_t n;

	if (!socks_rd(buf, len, *off, &n))
		return 0;
	if (n == 0)
		return -EPROTO;
	if (len - *off - 1 < n)
		return 0;
	if (memchr(buf + *off + 1, '\0', n))
		return -EPROTO;
	memcpy(out, buf + *off + 1, n);
	out[n] = '\0';
	*out_len = n;
	*off += 1 + (size_t)n;
	return 1;
}

/**
 * socks_parse_auth() - parse an RFC 1929 request: VER ULEN UNAME PLEN PASSWD
 * @buf/@len:	bytes received so far
 * @a:		filled on success
 *
 * Return: bytes consumed, 0 if incomplete, -EPROTO if malformed.
 */
int socks_parse_auth(const uint8_t *buf, size_t len, struct socks_auth *a)
{
	size_t off = 1;
	uint8_t ver;
	int ret;

	if (!socks_rd(buf, len, 0, &ver))
		return 0;
	if (ver != SOCKS_AUTH_VERSION)
		return -EPROTO;
	ret = socks_rd_string(buf, len, &off, a->user, &a->user_len);
	if (ret <= 0)
		return ret;
	ret = socks_rd_string(buf, len, &off, a->pass, &a->pass_len);
	if (ret <= 0)
		return ret;
	return (int)off;
}

/**
 * socks_ct_equal() - compare two strings in time independent of where they differ
 * Return: true if equal.
 */
static bool socks_ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = alen != blen;
	size_t i;

	/* time depends only on @alen, which the peer already knows */
	for (i = 0; i < alen; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)(i < blen ? b[i] : 0);
	return diff == 0;
}

/**
 * socks_auth_check() - do the credentials match the configured ones?
 * @a:		what the client sent
 * @user/@pass:	configured (non-NULL)
 *
 * Return: true on a match.
 */
bool socks_auth_check(const struct socks_auth *a, const char *user, const char *pass)
{
	bool u = socks_ct_equal(a->user, a->user_len, user, strlen(user));
	bool p = socks_ct_equal(a->pass, a->pass_len, pass, strlen(pass));

	return u & p;
}

/**
 * socks_parse_request() - parse VER CMD RSV ATYP DST.ADDR DST.PORT
 * @buf/@len:	bytes received so far
 * @r:		filled when complete
 * @rep:	on a complete message, SOCKS_REP_OK or the reply code to refuse it with
 *		(command not supported); on an error, the reply code to send before closing
 *
 * A BIND or UDP ASSOCIATE request is parsed completely (so nothing is left unread when the
 * server answers and closes) and reported with *@rep = SOCKS_REP_CMD_UNSUPP.
 *
 * Return: bytes consumed, 0 if incomplete, -EPROTO if malformed.
 */
int socks_parse_request(const uint8_t *buf, size_t len, struct socks_request *r, uint8_t *rep)
{
	uint8_t ver, cmd, atyp, hi, lo;
	size_t off = 4, n;
	int ret;

	*rep = SOCKS_REP_FAIL;
	if (!socks_rd(buf, len, 0, &ver))
		return 0;
	if (ver != SOCKS_VERSION)
		return -EPROTO;
	if (!socks_rd(buf, len, 1, &cmd) || !socks_rd(buf, len, 3, &atyp))
		return 0;
	r->cmd = cmd;
	r->atyp = atyp;
	switch (atyp) {
	case SOCKS_ATYP_IPV4:
		if (len < off + 4)
			return 0;
		if (!inet_ntop(AF_INET, buf + off, r->host, sizeof(r->host)))
			return -EPROTO;
		off += 4;
		break;
	case SOCKS_ATYP_IPV6:
		if (len < off + 16)
			return 0;
		if (!inet_ntop(AF_INET6, buf + off, r->host, sizeof(r->host)))
			return -EPROTO;
		off += 16;
		break;
	case SOCKS_ATYP_DOMAIN:
		ret = socks_rd_string(buf, len, &off, r->host, &n);
		if (ret <= 0)
			return ret;
		break;
	default:
		*rep = SOCKS_REP_ATYP_UNSUPP;
		return -EPROTO;
	}
	if (!socks_rd(buf, len, off, &hi) || !socks_rd(buf, len, off + 1, &lo))
		return 0;
	r->port = (uint16_t)(hi << 8 | lo);
	off += 2;
	if (cmd == SOCKS_CMD_CONNECT)
		*rep = SOCKS_REP_OK;
	else
		*rep = SOCKS_REP_CMD_UNSUPP;
	return (int)off;
}

/**
 * socks_build_reply() - VER REP RSV ATYP=IPv4 BND.ADDR=0.0.0.0 BND.PORT=0
 * @out:	buffer
 * @cap:	its size (at least SOCKS_REPLY_LEN)
 * @rep:	reply code
 *
 * The bound address is meaningless here (the real socket is in the guest), so it is zero, as
 * many proxies do.
 *
 * Return: bytes written, 0 if @cap is too small.
 */
size_t socks_build_reply(uint8_t *out, size_t cap, uint8_t rep)
{
	if (cap < SOCKS_REPLY_LEN)
		return 0;
	memset(out, 0, SOCKS_REPLY_LEN);
	out[0] = SOCKS_VERSION;
	out[1] = rep;
	out[3] = SOCKS_ATYP_IPV4;
	return SOCKS_REPLY_LEN;
}

/**
 * socks_build_handshake() - the agent's relay header: [len][host][port big-endian]
 * @r:		parsed request (host as text)
 * @out:	buffer
 * @cap:	its size (SOCKS_HANDSHAKE_MAX is always enough)
 *
 * Return: bytes written, or -ENOSPC / -EINVAL for an empty or over-long host.
 */
int socks_build_handshake(const struct socks_request *r, uint8_t *out, size_t cap)
{
	size_t n = strnlen(r->host, sizeof(r->host));

	if (n == 0 || n > 255)
		return -EINVAL;
	if (cap < n + 3)
		return -ENOSPC;
	out[0] = (uint8_t)n;
	memcpy(out + 1, r->host, n);
	out[1 + n] = (uint8_t)(r->port >> 8);
	out[2 + n] = (uint8_t)(r->port & 0xff);
	return (int)(n + 3);
}

/**
 * socks_rep_from_agent() - map the agent's status byte to a SOCKS reply
 * @status:	SOCKS_AGENT_*
 *
 * Return: the reply code; unknown values are a general failure.
 */
uint8_t socks_rep_from_agent(uint8_t status)
{
	switch (status) {
	case SOCKS_AGENT_OK:
		return SOCKS_REP_OK;
	case SOCKS_AGENT_NOT_ALLOWED:
		return SOCKS_REP_NOT_ALLOWED;	/* "connection not allowed by ruleset" */
	case SOCKS_AGENT_NET_UNREACH:
		return SOCKS_REP_NET_UNREACH;
	case SOCKS_AGENT_HOST_UNREACH:
		return SOCKS_REP_HOST_UNREACH;
	case SOCKS_AGENT_REFUSED:
		return SOCKS_REP_REFUSED;
	case SOCKS_AGENT_TIMEOUT:
		return SOCKS_REP_TTL_EXPIRED;	/* what RFC 1928 has for "took too long" */
	default:
		return SOCKS_REP_FAIL;
	}
}

/**
 * socks_rep_from_errno() - map a host-side failure to a SOCKS reply
 * @err:	negative errno from the vsock connect or the status read
 *
 * These failures concern the path to the agent, not the target: the agent being absent is
 * a general failure from the client's point of view, not "connection refused" by the target.
 *
 * Return: the reply code.
 */
uint8_t socks_rep_from_errno(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return SOCKS_REP_TTL_EXPIRED;
	case -ENETUNREACH:
		return SOCKS_REP_NET_UNREACH;
	default:
		return SOCKS_REP_FAIL;
	}
}

/**
 * socks_rep_name() - short text for a reply code (for logs and errors)
 * Return: a static string.
 */
const char *socks_rep_name(uint8_t rep)
{
	static const char *const names[] = {
		"succeeded", "general failure", "not allowed by ruleset", "network unreachable",
		"host unreachable", "connection refused", "TTL expired", "command not supported",
		"address type not supported",
	};

	return rep < sizeof(names) / sizeof(names[0]) ? names[rep] : "unknown";
}
