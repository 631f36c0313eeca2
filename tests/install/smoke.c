/* SPDX-License-Identifier: MIT */
/*
 * smoke.c - a program built against an installed libmicrovm with nothing but
 * `pkg-config --cflags --libs microvm` (tests/integration/test_install.py).
 *
 * Usage: smoke PORT.  Prints the library version, checks it against the headers', then sends
 * one request to 127.0.0.1:PORT through the TCP vsock client and prints the answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microvm/microvm.h>

int main(int argc, char **argv)
{
	struct mvm_config cfg;
	mvm_vsock *vs;
	char *resp = NULL;
	size_t len = 0;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: smoke PORT\n");
		return 2;
	}
	printf("version %s\n", mvm_version());
	if (strcmp(mvm_version(), MVM_VERSION_STRING) != 0) {
		fprintf(stderr, "header %s, library %s\n", MVM_VERSION_STRING, mvm_version());
		return 1;
	}
	mvm_config_init(&cfg);
	printf("default memory %u MiB, agent port %d\n", (unsigned)cfg.mem_mib, MVM_AGENT_PORT);

	vs = mvm_vsock_new_tcp("127.0.0.1");
	if (!vs) {
		fprintf(stderr, "mvm_vsock_new_tcp: %s\n", mvm_last_error());
		return 1;
	}
	rc = mvm_vsock_request(vs, (uint32_t)atoi(argv[1]), "{\"cmd\":\"ping\"}", 14,
			       &resp, &len, 5000);
	if (rc < 0) {
		fprintf(stderr, "mvm_vsock_request: %s\n", mvm_last_error());
		mvm_vsock_free(vs);
		return 1;
	}
	printf("reply %s\n", resp);
	free(resp);
	mvm_vsock_free(vs);
	return 0;
}
