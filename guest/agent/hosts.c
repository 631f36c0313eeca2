// SPDX-License-Identifier: MIT
/*
 * hosts.c - look a name up in the text of an /etc/hosts file (pure, unit-tested)
 *
 * The resolver (resolve.c) answers names from /etc/hosts in the event loop, before any
 * lookup is queued, so local names never wait behind slow DNS lookups. Format as in
 * hosts(5): "ADDRESS NAME [ALIAS...]", '#' starts a comment, names compare without case.
 * Lines with an address that is not an IPv4 or IPv6 literal are skipped.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "agent.h"

/**
 * hosts_add() - append one address literal as a socket address
 * @addr:	NUL-terminated IPv4 or IPv6 literal
 * @port:	port for the result
 * @ss:		receives it
 *
 * Return: true if @addr was a literal
 */
static bool hosts_add(const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		return true;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		return true;
	}
	return false;
}

/**
 * hosts_lookup() - the addresses an /etc/hosts text gives @name, in file order
 * @text:	file content (need not be NUL-terminated)
 * @len:	its length
 * @name:	the name (compared case-insensitively)
 * @port:	port for the results
 * @out:	receives up to @max addresses
 * @max:	capacity of @out
 *
 * Return: number of addresses stored
 */
size_t hosts_lookup(const char *text, size_t len, const char *name, uint16_t port,
		    struct sockaddr_storage *out, size_t max)
{
	size_t n = 0, pos = 0;

	while (pos < len && n < max) {
		const char *line = text + pos, *end = memchr(line, '\n', len - pos);
		size_t llen = end ? (size_t)(end - line) : len - pos;
		char buf[512], *save, *addr, *tok;

		pos += llen + 1;
		if (llen >= sizeof(buf))
			continue;	/* no sane hosts line is this long */
		memcpy(buf, line, llen);
		buf[llen] = '\0';
		buf[strcspn(buf, "#")] = '\0';
		addr = strtok_r(buf, " \t\r", &save);
		if (!addr)
			continue;
		while ((tok = strtok_r(NULL, " \t\r", &save))) {
			if (strcasecmp(tok, name))
				continue;
			if (hosts_add(addr, port, &out[n]))
				n++;
			break;
		}
	}
	return n;
}
