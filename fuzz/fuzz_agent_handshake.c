// SPDX-License-Identifier: MIT
/* fuzz-agent-handshake: the inbound proxy handshake (guest/agent/handshake.c), byte by byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
	return 0;
}
