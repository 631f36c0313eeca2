// SPDX-License-Identifier: MIT
/*
 * fuzz-agent-handshake: the inbound proxy handshake (guest/agent/handshake.c), byte by byte,
 * and the destination policy (guest/agent/policy.c) on the address it names and on the input
 * read as resolv.conf and /proc/net/route text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The policy on @host when it is an IP literal; the verdict must be a known one. */
static void fuzz_policy(const struct policy *pol, const char *host)
{
	struct sockaddr_storage ss;
	enum policy_reason r;

	if (policy_addr_parse(host, &ss))
		return;
	r = policy_check(pol, (struct sockaddr *)&ss);
	if (r > POLICY_GATEWAY || !policy_reason_text(r))
		abort();
	/* what is refused without the table is refused with it */
	if (policy_check(NULL, (struct sockaddr *)&ss) != POLICY_ALLOW && r == POLICY_ALLOW)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy pol;
	char host[HS_HOST_MAX + 1];
	uint16_t port = 0;
	int last = 0;

	/* As the bytes trickle in: need-more until complete or malformed, never a change of
	 * mind after that. */
	for (size_t i = 0; i <= size; i++) {
		int n = hs_parse(data, i, host, &port);

		if (last != 0 && n != last)
			abort();
		if (n > 0) {
			if ((size_t)n > i || (size_t)n != (size_t)data[0] + 3 ||
			    strlen(host) != data[0] || port == 0)
				abort();
		}
		last = n;
	}
	policy_init(&pol);
	policy_parse_resolv(&pol, (const char *)data, size);
	policy_parse_routes(&pol, (const char *)data, size);
	if (pol.n > POLICY_ADDR_MAX)
		abort();
	if (last > 0)
		fuzz_policy(&pol, host);
	return 0;
}
