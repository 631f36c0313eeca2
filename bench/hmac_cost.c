/* SPDX-License-Identifier: MIT */
/*
 * hmac_cost.c - what one HMAC-SHA256 of the handshake's size costs through each of
 * libcrypto's ways to compute it, and what one whole handshake (both sides,
 * common/mvm_auth.c) costs; run under callgrind by bench/hmac_cost.sh, which subtracts a
 * run with no iterations, so start-up is not counted.
 *
 * Usage: hmac-cost MODE N   (MODE as in modes[] below; N iterations)
 *
 * The message is 84 bytes like the handshake's (label, port, two nonces), the key 32 bytes.
 * The ways differ in what they redo per MAC:
 *   hmac          HMAC(): fetches SHA-256 and the HMAC implementation, hashes the padded key
 *   q-mac         EVP_Q_mac(): the same through the EVP_MAC interface
 *   new-ctx       a new EVP_MAC_CTX from an EVP_MAC fetched once: hashes the padded key
 *   dup           EVP_MAC_CTX_dup() of a keyed context made once
 *   hmac-ctx-copy HMAC_CTX_copy() of a keyed HMAC_CTX (deprecated in OpenSSL 3)
 *   dup-reset     one dup per two MACs, EVP_MAC_init() without a key before the second:
 *                 what a handshake does per side (reported per MAC)
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
	static uint8_t key[32], msg[84], out[32];
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
	/* everything a first call sets up once, before the counted part */
	HMAC(EVP_sha256(), key, sizeof(key), msg, sizeof(msg), out, &ol);
	handshake(&k);
	for (i = 0; i < n; i++) {
		switch (mode) {
		case 0:
			HMAC(EVP_sha256(), key, sizeof(key), msg, sizeof(msg), out, &ol);
			break;
		case 1:
			EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, sizeof(key), msg,
				  sizeof(msg), out, sizeof(out), &l);
			break;
		case 2:
			c = EVP_MAC_CTX_new(mac);
			EVP_MAC_init(c, key, sizeof(key), params);
			EVP_MAC_update(c, msg, sizeof(msg));
			EVP_MAC_final(c, out, &l, sizeof(out));
			EVP_MAC_CTX_free(c);
			break;
		case 3:
			c = EVP_MAC_CTX_dup(keyed);
			EVP_MAC_update(c, msg, sizeof(msg));
			EVP_MAC_final(c, out, &l, sizeof(out));
			EVP_MAC_CTX_free(c);
			break;
		case 4:
			hc = HMAC_CTX_new();
			HMAC_CTX_copy(hc, hkeyed);
			HMAC_Update(hc, msg, sizeof(msg));
			HMAC_Final(hc, out, &ol);
			HMAC_CTX_free(hc);
			break;
		case 5:
			c = EVP_MAC_CTX_dup(keyed);
			EVP_MAC_update(c, msg, sizeof(msg));
			EVP_MAC_final(c, out, &l, sizeof(out));
			EVP_MAC_init(c, NULL, 0, NULL);
			EVP_MAC_update(c, msg, sizeof(msg));
			EVP_MAC_final(c, out, &l, sizeof(out));
			EVP_MAC_CTX_free(c);
			i++;	/* two MACs */
			break;
		case 6:
			EVP_MAC_init(keyed, NULL, 0, NULL);
			EVP_MAC_update(keyed, msg, sizeof(msg));
			EVP_MAC_final(keyed, out, &l, sizeof(out));
			break;
		default:
			handshake(&k);
			break;
		}
	}
	mvm_auth_key_fini(&k);
	HMAC_CTX_free(hkeyed);
	EVP_MAC_CTX_free(keyed);
	EVP_MAC_free(mac);
	return 0;
}
