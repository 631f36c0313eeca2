// SPDX-License-Identifier: MIT
/* fuzz-agent-mgmt: lines from OpenVPN's management interface (guest/agent/mgmt.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct mgmt_msg m;
	char q[64], *s;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		mgmt_parse(p, len, &m);
		if (strlen(m.a) >= sizeof(m.a) || strlen(m.b) >= sizeof(m.b) ||
		    strlen(m.c) >= sizeof(m.c))
			abort();
		p += len + 1;
	}
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (mgmt_quote(q, sizeof(q), s) >= (int)sizeof(q))
		abort();
	free(s);
	return 0;
}
