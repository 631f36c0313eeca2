/* SPDX-License-Identifier: MIT */
/*
 * fuzz_socks5.c - the SOCKS5 parsers against arbitrary peer bytes.
 *
 * The input is fed the way the server sees it: as a growing buffer, through the phase parsers
 * in order (greeting, auth, request), each consuming what it parsed; every prefix length is
 * tried so that "incomplete" paths are exercised too.  Anything parsed must be consistent.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "manager/socks5_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct socks_greeting g;
	struct socks_auth a;
	struct socks_request r;
	uint8_t rep, hs[SOCKS_HANDSHAKE_MAX];
	size_t off = 0, i;
	int n, phase = 0;

	for (i = 0; i <= size && phase < 3; i++) {
		/* every prefix of the remaining input */
		const uint8_t *p = data + off;
		size_t len = i > off ? i - off : 0;

		if (phase == 0)
			n = socks_parse_greeting(p, len, &g);
		else if (phase == 1)
			n = socks_parse_auth(p, len, &a);
		else
			n = socks_parse_request(p, len, &r, &rep);
		if (n < 0)
			return 0;
		if (n == 0)
			continue;
		assert((size_t)n <= len);
		if (phase == 1)
			assert(strlen(a.user) == a.user_len && strlen(a.pass) == a.pass_len);
		if (phase == 2) {
			assert(strlen(r.host) < sizeof(r.host));
			n = socks_build_handshake(&r, hs, sizeof(hs));
			assert(n > 0 && (size_t)n <= sizeof(hs));
		}
		off += (size_t)n;
		i = off;
		phase++;
		if (phase == 1 && !g.has_userpass)
			phase = 2;
	}
	return 0;
}
