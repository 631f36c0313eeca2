// SPDX-License-Identifier: MIT
/*
 * fuzz-agent-ovpn-check: the imported-profile allow-list (guest/agent/ovpn_check.c) on any
 * text: never a crash or overrun, a refusal always names a line, and a verdict never
 * depends on bytes after a refused line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], small[16];
	int r = ovpn_check_profile((const char *)data, size, err, sizeof(err));

	if (r != 0 && r != -22)
		abort();
	if (r && strncmp(err, "line ", 5))
		abort();
	if (!r && err[0])
		abort();
	/* a tiny error buffer gives the same verdict and stays terminated */
	if (ovpn_check_profile((const char *)data, size, small, sizeof(small)) != r ||
	    memchr(small, '\0', sizeof(small)) == NULL)
		abort();
	return 0;
}
