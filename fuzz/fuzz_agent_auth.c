// SPDX-License-Identifier: MIT
/*
 * fuzz-agent-auth: the agent side of the TCP authentication handshake
 * (common/mvm_auth.c, mvm_auth_agent_input()), fed what an unauthenticated peer sends.
 *
 * The first input byte picks the chunk size (1..16 bytes per call, like TCP segments), the
 * rest is the peer's byte stream.  Checked:
 *   - results are MORE, SEND or an error; an error is final (later input is refused);
 *   - SEND comes exactly when a full HELLO with the right magic has arrived, and the
 *     challenge it makes verifies on the host side (the real host, same key, same nonce),
 *     whose proof the agent then accepts;
 *   - the fuzzer's own bytes never authenticate (they cannot know the agent's fresh nonce).
 * The key is set up once (as the agent does); every handshake works on its own copy.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mvm_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t raw[MVM_AUTH_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	/* the agent's key, set up once as the agent does when it loads its secret */
	static struct mvm_auth_key key;
	uint8_t out[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN], hello[MVM_AUTH_HELLO_LEN];
	struct mvm_auth st, host;
	size_t chunk, off = 1, fed = 0;
	bool failed = false, sent = false;

	if (size < 1)
		return 0;
	chunk = (size_t)(data[0] % 16) + 1;
	if (!key.mac && mvm_auth_key_init(&key, raw))
		abort();
	if (mvm_auth_agent_init(&st, &key, 1025))
		abort();
	while (off < size) {
		size_t want = mvm_auth_agent_want(&st);
		size_t n = size - off < chunk ? size - off : chunk;
		int r;

		if (!failed && n > want)
			n = want;
		if (n == 0)
			break;
		r = mvm_auth_agent_input(&st, data + off, n, out);
		if (failed && r != -EPROTO)
			abort();	/* an error is final */
		if (r == MVM_AUTH_DONE)
			abort();	/* forged proof */
		if (r == MVM_AUTH_SEND) {
			if (sent || fed + n != MVM_AUTH_HELLO_LEN ||
			    memcmp(data + 1, MVM_AUTH_MAGIC, MVM_AUTH_MAGIC_LEN))
				abort();
			sent = true;
			/* The real host with the same key and nonce accepts the challenge... */
			if (mvm_auth_host_start(&host, &key, 1025) || mvm_auth_host_hello(&host, hello))
				abort();
			memcpy(host.nh, data + 1 + MVM_AUTH_MAGIC_LEN, MVM_AUTH_NONCE_LEN);
			if (mvm_auth_host_finish(&host, out, proof))
				abort();
			mvm_auth_wipe(&host);
			/* ...but the fuzzer's next bytes are what the agent checks as the proof. */
		} else if (r < 0) {
			if (r != -EPROTO && r != -EACCES)
				abort();
			failed = true;
		} else if (r != MVM_AUTH_MORE) {
			abort();
		}
		fed += n;
		off += n;
	}
	/* Then the genuine proof for the same challenge completes a fresh-state check. */
	if (sent && !failed && mvm_auth_agent_want(&st) == MVM_AUTH_PROOF_LEN &&
	    mvm_auth_agent_input(&st, proof, sizeof(proof), out) != MVM_AUTH_DONE)
		abort();
	mvm_auth_wipe(&st);
	return 0;
}
