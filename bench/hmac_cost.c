/* SPDX-License-Identifier: MIT */
/*
 * hmac_cost.c - what one HMAC-SHA256 of the handshake's size costs through each of
 * libcrypto's ways to compute it, and what one whole handshake (both sides,
 * common/mvm_auth.c) costs; run under callgrind by bench/hmac_cost.sh, which subtracts a
 * run with no iterations, so start-up is not counted.
 *
 * Usage: hmac-cost MODE N   (MODE as in modes[] below; N iterations)
 *
 * The message is 88 bytes like the handshake's agent MAC (label, port, two nonces; the host's
 * label is one byte shorter: 87), the key 32 bytes.  Every libcrypto call is checked and the
 * last MAC compared with the one HMAC() computes, so a path that fails cannot look cheap.
 * The ways differ in what they redo per MAC:
 *   hmac          HMAC(): fetches SHA-256 and the HMAC implementation, hashes the padded key
 *   q-mac         EVP_Q_mac(): the same through the EVP_MAC interface
 *   new-ctx       a new EVP_MAC_CTX from an EVP_MAC fetched once: hashes the padded key
 *   dup           EVP_MAC_CTX_dup() of a keyed context made once: what a handshake does
 *                 now (each side takes one copy per MAC when it starts)
 *   hmac-ctx-copy HMAC_CTX_copy() of a keyed HMAC_CTX (deprecated in OpenSSL 3)
 *   dup-reset     one dup per two MACs, EVP_MAC_init() without a key before the second
 *                 (reported per MAC): what a handshake did before; that restart is broken
 *                 in OpenSSL 3.0.0-3.0.2 (openssl#17811)
 *   reuse         one context for every MAC, reset each time: cheapest, but one context
 *                 cannot serve two threads at once
 *   handshake     a whole handshake, host and agent side, from one mvm_auth_key
 */
#define OPENSSL_SUPPRESS_DEPRECATED	/* HMAC_CTX, for the comparison only */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mvm_auth.h"

static const char *const modes[] = {
	"hmac", "q-mac", "new-ctx", "dup", "hmac-ctx-copy", "dup-reset", "reuse", "handshake",
};

/* a libcrypto call that fails ends the run: a failing path must not look cheap */
#define CHECK(x)	do { if (!(x)) abort(); } while (0)

/** dup_mac() - one MAC of @msg on a fresh copy of @from */
static void dup_mac(EVP_MAC_CTX *from, const uint8_t *msg, size_t n, uint8_t *out)
{
	EVP_MAC_CTX *c = EVP_MAC_CTX_dup(from);
	size_t l = 0;

	CHECK(c && EVP_MAC_update(c, msg, n) && EVP_MAC_final(c, out, &l, 32) && l == 32);
	EVP_MAC_CTX_free(c);
}

/** handshake() - one complete handshake between a host and an agent sharing @k */
static void handshake(const struct mvm_auth_key *k)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN];
	uint8_t proof[MVM_AUTH_PROOF_LEN];
	struct mvm_auth host = { 0 }, agent = { 0 };

	if (mvm_auth_host_start(&host, k, 1025) || mvm_auth_host_hello(&host, hello) ||
	    mvm_auth_agent_init(&agent, k, 1025) ||
	    mvm_auth_agent_input(&agent, hello, sizeof(hello), chall) != MVM_AUTH_SEND ||
	    mvm_auth_host_finish(&host, chall, proof) ||
	    mvm_auth_agent_input(&agent, proof, sizeof(proof), chall) != MVM_AUTH_DONE)
		abort();
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&agent);
}

int main(int argc, char **argv)
{
	static uint8_t key[32], msg[88], out[32], want[32];
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	struct mvm_auth_key k = { 0 };
	EVP_MAC *mac;
	EVP_MAC_CTX *keyed, *c;
	HMAC_CTX *hkeyed, *hc;
	unsigned int ol;
	size_t l, mode;
	long n, i;

	if (argc != 3) {
		fprintf(stderr, "usage: hmac-cost MODE N\n");
		return 2;
	}
	for (mode = 0; mode < sizeof(modes) / sizeof(modes[0]); mode++)
		if (!strcmp(argv[1], modes[mode]))
			break;
	n = atol(argv[2]);
	if (mode == sizeof(modes) / sizeof(modes[0]) || n < 0) {
		fprintf(stderr, "hmac-cost: unknown mode %s\n", argv[1]);
		return 2;
	}
	memset(key, 7, sizeof(key));
	memset(msg, 3, sizeof(msg));
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	keyed = mac ? EVP_MAC_CTX_new(mac) : NULL;
	hkeyed = HMAC_CTX_new();
	if (!keyed || !EVP_MAC_init(keyed, key, sizeof(key), params) || !hkeyed ||
	    !HMAC_Init_ex(hkeyed, key, sizeof(key), EVP_sha256(), NULL) ||
	    mvm_auth_key_init(&k, key))
		abort();
	/* everything a first call sets up once, before the counted part; the expected MAC */
	CHECK(HMAC(EVP_sha256(), key, sizeof(key), msg, sizeof(msg), want, &ol) && ol == 32);
	handshake(&k);
	for (i = 0; i < n; i++) {
		switch (mode) {
		case 0:
			CHECK(HMAC(EVP_sha256(), key, sizeof(key), msg, sizeof(msg), out, &ol));
			break;
		case 1:
			CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, sizeof(key), msg,
					sizeof(msg), out, sizeof(out), &l));
			break;
		case 2:
			c = EVP_MAC_CTX_new(mac);
			CHECK(c && EVP_MAC_init(c, key, sizeof(key), params) &&
			      EVP_MAC_update(c, msg, sizeof(msg)) &&
			      EVP_MAC_final(c, out, &l, sizeof(out)));
			EVP_MAC_CTX_free(c);
			break;
		case 3:
			dup_mac(keyed, msg, sizeof(msg), out);
			break;
		case 4:
			hc = HMAC_CTX_new();
			CHECK(hc && HMAC_CTX_copy(hc, hkeyed) && HMAC_Update(hc, msg, sizeof(msg)) &&
			      HMAC_Final(hc, out, &ol));
			HMAC_CTX_free(hc);
			break;
		case 5:
			c = EVP_MAC_CTX_dup(keyed);
			CHECK(c && EVP_MAC_update(c, msg, sizeof(msg)) &&
			      EVP_MAC_final(c, out, &l, sizeof(out)) &&
			      EVP_MAC_init(c, NULL, 0, NULL) && EVP_MAC_update(c, msg, sizeof(msg)) &&
			      EVP_MAC_final(c, out, &l, sizeof(out)));
			EVP_MAC_CTX_free(c);
			i++;	/* two MACs */
			break;
		case 6:
			CHECK(EVP_MAC_init(keyed, NULL, 0, NULL) &&
			      EVP_MAC_update(keyed, msg, sizeof(msg)) &&
			      EVP_MAC_final(keyed, out, &l, sizeof(out)));
			break;
		default:
			handshake(&k);	/* aborts unless both sides accept */
			break;
		}
	}
	/* the MAC the counted loop computed last is the right one */
	if (n > 0 && mode != 7 && memcmp(out, want, sizeof(want)))
		abort();
	mvm_auth_key_fini(&k);
	HMAC_CTX_free(hkeyed);
	EVP_MAC_CTX_free(keyed);
	EVP_MAC_free(mac);
	return 0;
}
