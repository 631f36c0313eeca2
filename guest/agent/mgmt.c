// SPDX-License-Identifier: MIT
/*
 * mgmt.c - parse lines from OpenVPN's management interface (doc/management-notes.txt)
 *
 * OpenVPN is a peer: every line is treated as untrusted input. The parser copies what it
 * keeps into fixed-size fields and reports anything it does not understand, or that does
 * not fit, as MGMT_OTHER (ignored by the supervisor). Only the text of >FATAL is truncated
 * rather than dropped. Pure code, fuzzed by fuzz-agent-mgmt.
 */
#include <stdio.h>
#include <string.h>

#include "agent.h"

/**
 * starts() - does [p, p+len) start with the string @pfx
 * @p:		text
 * @len:	its length
 * @pfx:	prefix
 *
 * Return: length of @pfx if it matches, 0 if not
 */
static size_t starts(const char *p, size_t len, const char *pfx)
{
	size_t n = strlen(pfx);

	return len >= n && !memcmp(p, pfx, n) ? n : 0;
}

/**
 * copy_field() - copy [p, p+len) into a NUL-terminated field
 * @dst:	field
 * @size:	its size
 * @p:		text
 * @len:	length
 *
 * Return: 0, or -1 if it does not fit or contains a NUL
 */
static int copy_field(char *dst, size_t size, const char *p, size_t len)
{
	if (len >= size || memchr(p, '\0', len))
		return -1;
	memcpy(dst, p, len);
	dst[len] = '\0';
	return 0;
}

/**
 * quoted() - the text between the first pair of single quotes in [p, p+len)
 * @p:		text
 * @len:	length
 * @qlen:	receives the length of the quoted text
 *
 * Return: pointer to the quoted text, or NULL
 */
static const char *quoted(const char *p, size_t len, size_t *qlen)
{
	const char *a = memchr(p, '\'', len), *b;

	if (!a)
		return NULL;
	a++;
	b = memchr(a, '\'', len - (size_t)(a - p));
	if (!b)
		return NULL;
	*qlen = (size_t)(b - a);
	return a;
}

/**
 * parse_state() - ">STATE:" payload: ts,NAME,desc,tun_ip,remote,...
 * @p:		payload
 * @len:	length
 * @m:		result
 */
static void parse_state(const char *p, size_t len, struct mgmt_msg *m)
{
	const char *f[5];
	size_t fl[5];
	size_t i = 0;
	const char *end = p + len;

	/* Split the first five comma-separated fields; the rest are not needed. */
	while (i < 5) {
		const char *c = memchr(p, ',', (size_t)(end - p));

		f[i] = p;
		fl[i] = c ? (size_t)(c - p) : (size_t)(end - p);
		i++;
		if (!c)
			break;
		p = c + 1;
	}
	if (i < 2 || fl[1] == 0)
		return;
	if (copy_field(m->a, sizeof(m->a), f[1], fl[1]) ||
	    (i > 2 && copy_field(m->b, sizeof(m->b), f[2], fl[2])) ||
	    (i > 3 && copy_field(m->c, sizeof(m->c), f[3], fl[3]))) {
		m->a[0] = m->b[0] = m->c[0] = '\0';
		return;
	}
	m->type = MGMT_STATE;
}

/**
 * parse_password() - ">PASSWORD:" payload
 * @p:		payload
 * @len:	length
 * @m:		result
 */
static void parse_password(const char *p, size_t len, struct mgmt_msg *m)
{
	const char *q, *r;
	size_t ql, rl, n;

	if ((n = starts(p, len, "Need "))) {
		q = quoted(p, len, &ql);
		if (!q || copy_field(m->a, sizeof(m->a), q, ql))
			return;
		/* "Need 'Auth' username/password" vs "Need 'Private Key' password" */
		m->n1 = memmem(p, len, "username/password", 17) != NULL;
		m->type = MGMT_PASSWORD_NEED;
	} else if ((n = starts(p, len, "Verification Failed"))) {
		q = quoted(p, len, &ql);
		if (!q || copy_field(m->a, sizeof(m->a), q, ql))
			return;
		/* Optional ['reason'] after the type. */
		r = q + ql + 1;
		rl = len - (size_t)(r - p);
		r = memchr(r, '[', rl);
		if (r) {
			const char *rq;
			size_t rql;

			rq = quoted(r, len - (size_t)(r - p), &rql);
			if (rq && copy_field(m->b, sizeof(m->b), rq, rql))
				m->b[0] = '\0';
		}
		m->type = MGMT_PASSWORD_FAILED;
	}
	/* Anything else (Auth-Token:...) may carry a secret: ignored, never logged. */
}

/**
 * parse_url() - the URL in "flags:URL" (WEB_AUTH) or "URL" (OPEN_URL)
 * @p:		text after WEB_AUTH: or OPEN_URL:
 * @len:	length
 * @m:		result
 *
 * Flags may contain colons (proxy=[v6]): the URL is found by its "://" and the scheme
 * letters before it.
 */
static void parse_url(const char *p, size_t len, struct mgmt_msg *m)
{
	const char *s = memmem(p, len, "://", 3);
	const char *b;

	if (!s || s == p)
		return;
	b = s;
	while (b > p) {
		char c = b[-1];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
			break;
		b--;
	}
	if (b == s)
		return;
	for (const char *x = b; x < p + len; x++)
		if ((unsigned char)*x <= 0x20 || *x == 0x7f)
			return;
	if (copy_field(m->a, sizeof(m->a), b, (size_t)(p + len - b)))
		return;
	m->type = MGMT_WEBAUTH_URL;
}

/**
 * parse_updown() - ">UPDOWN:" payload
 * @p:		payload
 * @len:	length
 * @m:		result
 */
static void parse_updown(const char *p, size_t len, struct mgmt_msg *m)
{
	size_t n;

	if ((n = starts(p, len, "ENV,"))) {
		const char *eq;

		p += n;
		len -= n;
		if (len == 3 && !memcmp(p, "END", 3)) {
			m->type = MGMT_UPDOWN_END;
			return;
		}
		eq = memchr(p, '=', len);
		if (!eq || eq == p)
			return;
		if (copy_field(m->a, sizeof(m->a), p, (size_t)(eq - p)) ||
		    copy_field(m->b, sizeof(m->b), eq + 1, len - (size_t)(eq - p) - 1)) {
			m->a[0] = m->b[0] = '\0';
			return;
		}
		m->type = MGMT_UPDOWN_ENV;
		return;
	}
	if (copy_field(m->a, sizeof(m->a), p, len))
		return;
	m->type = MGMT_UPDOWN;
}

/**
 * parse_u64() - a decimal number
 * @p:		text
 * @len:	length
 * @out:	result
 *
 * Return: 0 or -1
 */
static int parse_u64(const char *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (!len || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

/**
 * mgmt_parse() - classify one management line
 * @line:	the line without CR/LF (need not be NUL-terminated)
 * @len:	its length
 * @m:		result; m->type is MGMT_OTHER for anything not understood
 */
void mgmt_parse(const char *line, size_t len, struct mgmt_msg *m)
{
	size_t n;

	memset(m, 0, sizeof(*m));
	m->type = MGMT_OTHER;
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	if ((n = starts(line, len, ">STATE:"))) {
		parse_state(line + n, len - n, m);
	} else if ((n = starts(line, len, ">HOLD:"))) {
		m->type = MGMT_HOLD;
	} else if ((n = starts(line, len, ">PASSWORD:"))) {
		parse_password(line + n, len - n, m);
	} else if ((n = starts(line, len, ">INFOMSG:WEB_AUTH:")) ||
		   (n = starts(line, len, ">INFOMSG:OPEN_URL:"))) {
		parse_url(line + n, len - n, m);
	} else if ((n = starts(line, len, ">FATAL:"))) {
		size_t l = len - n;

		if (l >= sizeof(m->a))
			l = sizeof(m->a) - 1;
		if (copy_field(m->a, sizeof(m->a), line + n, l))
			return;
		m->type = MGMT_FATAL;
	} else if ((n = starts(line, len, ">UPDOWN:"))) {
		parse_updown(line + n, len - n, m);
	} else if ((n = starts(line, len, ">BYTECOUNT:"))) {
		const char *c = memchr(line + n, ',', len - n);

		if (!c || parse_u64(line + n, (size_t)(c - line) - n, &m->n1) ||
		    parse_u64(c + 1, (size_t)(line + len - c - 1), &m->n2))
			return;
		m->type = MGMT_BYTECOUNT;
	} else if (starts(line, len, "SUCCESS:")) {
		m->type = MGMT_SUCCESS;
	} else if ((n = starts(line, len, "ERROR:"))) {
		size_t l = len - n;

		if (l >= sizeof(m->a))
			l = sizeof(m->a) - 1;
		if (copy_field(m->a, sizeof(m->a), line + n, l))
			return;
		m->type = MGMT_ERROR;
	}
}

/**
 * mgmt_quote() - quote @s for a management command (config-file quoting)
 * @dst:	output buffer
 * @size:	its size
 * @s:		string (no control characters)
 *
 * Produces "..." with backslash and double quote escaped by a backslash.
 *
 * Return: length written, or -1 if it does not fit or @s has control characters
 */
int mgmt_quote(char *dst, size_t size, const char *s)
{
	size_t o = 0;

	if (size < 3)
		return -1;
	dst[o++] = '"';
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return -1;
		if (*s == '"' || *s == '\\') {
			if (o + 1 >= size)
				return -1;
			dst[o++] = '\\';
		}
		if (o + 1 >= size)
			return -1;
		dst[o++] = *s;
	}
	if (o + 2 > size)
		return -1;
	dst[o++] = '"';
	dst[o] = '\0';
	return (int)o;
}
