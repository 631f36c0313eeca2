/* SPDX-License-Identifier: MIT */
/*
 * fuzz_vsock_uds.c - libFuzzer target for the Firecracker-style "CONNECT <port>\n" line that
 * a host program sends on the `--vsock-uds` socket (vsock_uds_parse_connect()).
 *
 * The input is the line as sent (up to its first '\n').  Invariants checked: a port is only
 * returned for "CONNECT " + decimal digits (+ optional '\r'), it fits 32 bits, and printing
 * it back gives the same digits modulo leading zeros.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/vsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t len = nl ? (size_t)(nl - (const char *)data) : size;
	char *line = malloc(len ? len : 1);	/* exact size: ASan catches reads past @len */
	char digits[16], *d;
	long port;
	size_t n;

	if (!line)
		return 0;
	memcpy(line, data, len);
	port = vsock_uds_parse_connect(line, len);
	if (port != -EPROTO) {
		if (port < 0 || (uint64_t)port > 0xffffffffULL)
			abort();
		n = len;
		if (n && line[n - 1] == '\r')
			n--;
		if (n < 9 || memcmp(line, "CONNECT ", 8))
			abort();
		d = line + 8;
		n -= 8;
		while (n > 1 && *d == '0') {
			d++;
			n--;
		}
		snprintf(digits, sizeof(digits), "%ld", port);
		if (strlen(digits) != n || memcmp(digits, d, n))
			abort();
	}
	free(line);
	return 0;
}
