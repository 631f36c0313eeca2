// SPDX-License-Identifier: MIT
/* fuzz-agent-request: one control request line from the host (guest/agent/request.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_req r;
	char err[256];

	if (agent_req_parse(&r, (const char *)data, size, err, sizeof(err)) == 0) {
		/* What control.c relies on. */
		if (r.cmd == AGENT_CMD_VPN_SET_PROFILE &&
		    (!profile_name_valid(r.name) || !r.content || r.content_len > AGENT_PROFILE_MAX))
			abort();
		if (r.cmd == AGENT_CMD_VPN_START &&
		    (!profile_name_valid(r.profile) || (r.password && !r.username) ||
		     (r.username && strlen(r.username) > AGENT_CRED_MAX) ||
		     r.timeout_s < 0 || r.timeout_s > 3600))
			abort();
	} else if (!err[0]) {
		abort();
	}
	agent_req_free(&r);
	return 0;
}
