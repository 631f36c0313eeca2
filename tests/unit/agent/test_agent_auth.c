/* SPDX-License-Identifier: MIT */
/*
 * test_agent_auth.c - the TCP authentication handshake (common/mvm_auth.c): the agent's
 * state machine against the host's side, byte by byte, and against truncated, garbage,
 * replayed, reflected, port-swapped and wrong-key input; a known-answer MAC shared with
 * tests/integration/authlib.py, for both MACs and through both sides' state machines; the
 * key's HMAC context, set up once and copied per handshake: the MACs libcrypto's one-shot
 * HMAC() gives, a live key not set up twice, and a key freed while a handshake copied from
 * it runs (ASan checks the teardown: make asan).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mvm_auth.h"

static const uint8_t key_bytes[MVM_AUTH_KEY_LEN] = { 1, 2, 3 };
static const uint8_t other_key_bytes[MVM_AUTH_KEY_LEN] = { 9, 9, 9 };
/* the two keys set up once for all tests (setup()), as the agent and the host do */
static struct mvm_auth_key key_ctx, other_ctx;
static const struct mvm_auth_key *const key = &key_ctx, *const other_key = &other_ctx;

/** agent_start() - a fresh agent-side handshake in @ag (wiped first) */
static void agent_start(struct mvm_auth *ag, const struct mvm_auth_key *k, uint32_t port)
{
	mvm_auth_wipe(ag);
	assert_int_equal(mvm_auth_agent_init(ag, k, port), 0);
}

/** host_start() - a fresh host-side handshake in @host (wiped first): its HELLO */
static void host_start(struct mvm_auth *host, const struct mvm_auth_key *k, uint32_t port,
		       uint8_t *hello)
{
	mvm_auth_wipe(host);
	assert_int_equal(mvm_auth_host_start(host, k, port), 0);
	assert_int_equal(mvm_auth_host_hello(host, hello), 0);
}

/** agent_hello() - feed @hello to a fresh agent (@ag wiped first); expect the challenge. */
static void agent_hello(struct mvm_auth *ag, const struct mvm_auth_key *k, uint32_t port,
			const uint8_t *hello, uint8_t *chall)
{
	agent_start(ag, k, port);
	assert_int_equal(mvm_auth_agent_want(ag), MVM_AUTH_HELLO_LEN);
	assert_int_equal(mvm_auth_agent_input(ag, hello, MVM_AUTH_HELLO_LEN, chall),
			 MVM_AUTH_SEND);
	assert_int_equal(mvm_auth_agent_want(ag), MVM_AUTH_PROOF_LEN);
}

static void test_full_exchange(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	struct mvm_auth host = { 0 }, ag = { 0 };

	(void)state;
	host_start(&host, key, 1025, hello);
	assert_memory_equal(hello, MVM_AUTH_MAGIC, MVM_AUTH_MAGIC_LEN);
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall), MVM_AUTH_DONE);
	assert_int_equal(mvm_auth_agent_want(&ag), 0);
	/* input after the end is not consumed as handshake */
	assert_int_equal(mvm_auth_agent_input(&ag, proof, 1, chall), -EPROTO);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
}

static void test_byte_by_byte(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	struct mvm_auth host = { 0 }, ag = { 0 };
	size_t i;

	(void)state;
	host_start(&host, key, 7602, hello);
	agent_start(&ag, key, 7602);
	for (i = 0; i + 1 < sizeof(hello); i++) {
		assert_int_equal(mvm_auth_agent_input(&ag, hello + i, 1, chall), MVM_AUTH_MORE);
		assert_int_equal(mvm_auth_agent_want(&ag), sizeof(hello) - i - 1);
	}
	assert_int_equal(mvm_auth_agent_input(&ag, hello + i, 1, chall), MVM_AUTH_SEND);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
	for (i = 0; i + 1 < sizeof(proof); i++)
		assert_int_equal(mvm_auth_agent_input(&ag, proof + i, 1, chall), MVM_AUTH_MORE);
	assert_int_equal(mvm_auth_agent_input(&ag, proof + i, 1, chall), MVM_AUTH_DONE);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
}

static void test_garbage_refused_at_first_wrong_byte(void **state)
{
	static const char json[] = "{\"cmd\":\"get_auth_secret\"}\n";
	uint8_t out[MVM_AUTH_CHALLENGE_LEN];
	struct mvm_auth ag = { 0 };

	(void)state;
	agent_start(&ag, key, 1025);
	assert_int_equal(mvm_auth_agent_input(&ag, (const uint8_t *)json, 1, out), -EPROTO);
	/* an error is final */
	assert_int_equal(mvm_auth_agent_input(&ag, (const uint8_t *)MVM_AUTH_MAGIC, 1, out),
			 -EPROTO);
	assert_int_equal(mvm_auth_agent_want(&ag), 0);

	/* a right prefix, then a wrong byte */
	agent_start(&ag, key, 1025);
	assert_int_equal(mvm_auth_agent_input(&ag, (const uint8_t *)"MVMAU", 5, out),
			 MVM_AUTH_MORE);
	assert_int_equal(mvm_auth_agent_input(&ag, (const uint8_t *)"X", 1, out), -EPROTO);

	/* more than the message needs */
	agent_start(&ag, key, 1025);
	assert_int_equal(mvm_auth_agent_input(&ag, (const uint8_t *)json, MVM_AUTH_HELLO_LEN + 1,
					      out), -EPROTO);
	mvm_auth_wipe(&ag);
}

static void test_truncated_needs_more(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN];
	struct mvm_auth host = { 0 }, ag = { 0 };

	(void)state;
	host_start(&host, key, 1025, hello);
	agent_start(&ag, key, 1025);
	assert_int_equal(mvm_auth_agent_input(&ag, hello, sizeof(hello) - 1, chall),
			 MVM_AUTH_MORE);
	assert_int_equal(mvm_auth_agent_want(&ag), 1);
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_agent_input(&ag, hello, 31, chall), MVM_AUTH_MORE);
	assert_int_equal(mvm_auth_agent_want(&ag), 1);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
}

static void test_wrong_proof_and_reflection(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	uint8_t out[MVM_AUTH_CHALLENGE_LEN];
	struct mvm_auth host = { 0 }, ag = { 0 };

	(void)state;
	host_start(&host, key, 1025, hello);
	agent_hello(&ag, key, 1025, hello, chall);
	memset(proof, 0, sizeof(proof));
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), out), -EACCES);

	/* the agent's own MAC sent back */
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_agent_input(&ag, chall + MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN,
					      MVM_AUTH_PROOF_LEN, out), -EACCES);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
}

static void test_replayed_proof(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	uint8_t chall2[MVM_AUTH_CHALLENGE_LEN];
	struct mvm_auth host = { 0 }, ag = { 0 };

	(void)state;
	host_start(&host, key, 1025, hello);
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall), MVM_AUTH_DONE);
	/* the same HELLO and PROOF on a new connection: a new agent nonce */
	agent_hello(&ag, key, 1025, hello, chall2);
	assert_memory_not_equal(chall + MVM_AUTH_MAGIC_LEN, chall2 + MVM_AUTH_MAGIC_LEN,
				MVM_AUTH_NONCE_LEN);
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall2), -EACCES);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
}

static void test_port_and_key_bound(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	struct mvm_auth host = { 0 }, ag = { 0 };

	(void)state;
	/* a host dialling 7602 whose stream lands on 1025 (or a proof carried over) */
	host_start(&host, key, 7602, hello);
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), -EACCES);
	/* an impostor agent with another key: the host refuses it, and sends no proof */
	memset(proof, 0x5a, sizeof(proof));
	host_start(&host, key, 1025, hello);
	agent_hello(&ag, other_key, 1025, hello, chall);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), -EACCES);
	for (size_t i = 0; i < sizeof(proof); i++)
		assert_int_equal(proof[i], 0x5a);
	/* something that is not a challenge at all */
	memcpy(chall, "{\"status", 8);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), -EPROTO);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
}

/*
 * HMAC-SHA256(key 00 01 .. 1f, LABEL | 00000401 | aa*32 | 55*32) for both labels, computed
 * outside this code by Python's hmac the way tests/integration/authlib.py's mac() does
 * (hmac.new(bytes(range(32)), label + (1025).to_bytes(4, "big") + b"\xaa"*32 + b"\x55"*32,
 * hashlib.sha256)) and checked with `openssl dgst -sha256 -mac HMAC -macopt hexkey:...`.
 */
static const uint8_t kat_agent[32] = {
	0xc4, 0xdb, 0xee, 0xaa, 0x79, 0xef, 0xa4, 0x40, 0xcc, 0xc9, 0x40, 0x34, 0xe8, 0x42, 0xe4,
	0x42, 0x55, 0x40, 0x02, 0x52, 0x2a, 0x75, 0x6a, 0x69, 0x2e, 0xa2, 0xc6, 0xac, 0x07, 0x38,
	0xff, 0xfa,
};
static const uint8_t kat_host[32] = {
	0xc5, 0x30, 0xcd, 0x79, 0x53, 0x67, 0x1b, 0x34, 0xe5, 0xb3, 0xfc, 0xed, 0x2c, 0x3c, 0x0c,
	0x2e, 0x09, 0x86, 0x9f, 0xbf, 0xcb, 0x5c, 0x94, 0xd5, 0xa1, 0x59, 0xd3, 0xeb, 0x5a, 0x76,
	0x41, 0x50,
};

/** kat_key() - the known-answer key 00 01 .. 1f, set up in @k */
static void kat_key(struct mvm_auth_key *k)
{
	uint8_t raw[32];

	for (int i = 0; i < 32; i++)
		raw[i] = (uint8_t)i;
	assert_int_equal(mvm_auth_key_init(k, raw), 0);
}

static void test_known_answer(void **state)
{
	struct mvm_auth_key k = { 0 };
	uint8_t nh[32], na[32], mac[32];

	(void)state;
	memset(nh, 0xaa, sizeof(nh));
	memset(na, 0x55, sizeof(na));
	kat_key(&k);
	assert_int_equal(mvm_auth_mac(&k, MVM_AUTH_LABEL_AGENT, 1025, nh, na, mac), 0);
	assert_memory_equal(mac, kat_agent, sizeof(kat_agent));
	assert_int_equal(mvm_auth_mac(&k, MVM_AUTH_LABEL_HOST, 1025, nh, na, mac), 0);
	assert_memory_equal(mac, kat_host, sizeof(kat_host));
	mvm_auth_key_fini(&k);
	assert_null(k.mac);
	assert_true(mvm_auth_equal(mac, kat_host, sizeof(kat_host)));
	mac[31] ^= 1;
	assert_false(mvm_auth_equal(mac, kat_host, sizeof(kat_host)));
}

/*
 * The known answers through the state machines, each side computing its second MAC on the
 * handshake's copy after its first (what OpenSSL 3.0.0-3.0.2 got wrong when a used context
 * was restarted): the host, its nonce fixed to aa*32, accepts the known agent MAC and
 * answers the known proof; the agent, its nonce fixed to 55*32 after its challenge, accepts
 * that proof.
 */
static void test_known_answer_handshake(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	struct mvm_auth host = { 0 }, ag = { 0 };
	struct mvm_auth_key k = { 0 };

	(void)state;
	kat_key(&k);
	/* host */
	assert_int_equal(mvm_auth_host_start(&host, &k, 1025), 0);
	assert_int_equal(mvm_auth_host_hello(&host, hello), 0);
	memset(host.nh, 0xaa, sizeof(host.nh));
	memcpy(chall, MVM_AUTH_MAGIC, MVM_AUTH_MAGIC_LEN);
	memset(chall + MVM_AUTH_MAGIC_LEN, 0x55, MVM_AUTH_NONCE_LEN);
	memcpy(chall + MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN, kat_agent, sizeof(kat_agent));
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
	assert_memory_equal(proof, kat_host, sizeof(kat_host));
	/* agent */
	memset(hello + MVM_AUTH_MAGIC_LEN, 0xaa, MVM_AUTH_NONCE_LEN);
	assert_int_equal(mvm_auth_agent_init(&ag, &k, 1025), 0);
	assert_int_equal(mvm_auth_agent_input(&ag, hello, sizeof(hello), chall), MVM_AUTH_SEND);
	memset(ag.na, 0x55, sizeof(ag.na));
	assert_int_equal(mvm_auth_agent_input(&ag, kat_host, sizeof(kat_host), chall),
			 MVM_AUTH_DONE);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
	mvm_auth_key_fini(&k);
}

/**
 * ref_mac() - the MAC computed independently of mvm_auth.c: libcrypto's one-shot HMAC()
 * over the message built here (label | port BE | nh | na)
 */
static void ref_mac(const uint8_t *raw, const char *label, uint32_t port, const uint8_t *nh,
		    const uint8_t *na, uint8_t *mac)
{
	uint8_t msg[64 + 4 + 2 * MVM_AUTH_NONCE_LEN];
	size_t ll = strlen(label);
	unsigned int ol = 0;

	memcpy(msg, label, ll);
	msg[ll] = (uint8_t)(port >> 24);
	msg[ll + 1] = (uint8_t)(port >> 16);
	msg[ll + 2] = (uint8_t)(port >> 8);
	msg[ll + 3] = (uint8_t)port;
	memcpy(msg + ll + 4, nh, MVM_AUTH_NONCE_LEN);
	memcpy(msg + ll + 4 + MVM_AUTH_NONCE_LEN, na, MVM_AUTH_NONCE_LEN);
	assert_non_null(HMAC(EVP_sha256(), raw, MVM_AUTH_KEY_LEN, msg,
			     ll + 4 + 2 * MVM_AUTH_NONCE_LEN, mac, &ol));
	assert_int_equal(ol, MVM_AUTH_MAC_LEN);
}

/*
 * The key's context is made once and serves many handshakes: over 50 handshakes with fresh
 * random nonces from the shared key, both sides' MACs are the ones HMAC() computes from the
 * raw key.
 */
static void test_shared_key_many_handshakes(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	uint8_t nh[MVM_AUTH_NONCE_LEN], na[MVM_AUTH_NONCE_LEN];
	uint8_t want[MVM_AUTH_MAC_LEN];
	struct mvm_auth host = { 0 }, ag = { 0 };

	(void)state;
	for (int round = 0; round < 50; round++) {
		uint32_t port = round % 2 ? 7602 : 1025;

		host_start(&host, key, port, hello);
		agent_hello(&ag, key, port, hello, chall);
		memcpy(nh, hello + MVM_AUTH_MAGIC_LEN, sizeof(nh));
		memcpy(na, chall + MVM_AUTH_MAGIC_LEN, sizeof(na));
		ref_mac(key_bytes, MVM_AUTH_LABEL_AGENT, port, nh, na, want);
		assert_memory_equal(chall + MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN, want,
				    sizeof(want));
		assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
		ref_mac(key_bytes, MVM_AUTH_LABEL_HOST, port, nh, na, want);
		assert_memory_equal(proof, want, sizeof(want));
		assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall),
				 MVM_AUTH_DONE);
	}
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
}

/* A live key is not set up again over itself (that would leak it unwiped): -EBUSY, unchanged */
static void test_key_init_busy(void **state)
{
	static const char hex[] = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
	uint8_t nh[32], na[32], mac[32], raw[32] = { 0 };
	struct mvm_auth_key k = { 0 };
	void *was;

	(void)state;
	memset(nh, 0xaa, sizeof(nh));
	memset(na, 0x55, sizeof(na));
	kat_key(&k);
	was = k.mac;
	assert_int_equal(mvm_auth_key_init(&k, raw), -EBUSY);
	assert_ptr_equal(k.mac, was);
	assert_int_equal(mvm_auth_key_init_hex(&k, hex, 64), -EBUSY);
	assert_ptr_equal(k.mac, was);
	/* still the original key */
	assert_int_equal(mvm_auth_mac(&k, MVM_AUTH_LABEL_HOST, 1025, nh, na, mac), 0);
	assert_memory_equal(mac, kat_host, sizeof(kat_host));
	/* freed, it can be set up again */
	mvm_auth_key_fini(&k);
	assert_int_equal(mvm_auth_key_init_hex(&k, hex, 64), 0);
	assert_non_null(k.mac);
	mvm_auth_key_fini(&k);
}

/*
 * A host and an agent with different keys: whichever side checks first refuses, whatever
 * the order (the agent's proof check is the second line of defence if a host with the
 * wrong key were to answer anyway).
 */
static void test_wrong_key(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	uint8_t nh[MVM_AUTH_NONCE_LEN], na[MVM_AUTH_NONCE_LEN];
	struct mvm_auth host = { 0 }, ag = { 0 };

	(void)state;
	host_start(&host, other_key, 1025, hello);
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), -EACCES);
	/* the proof the wrong key makes is refused by the agent */
	memcpy(nh, hello + MVM_AUTH_MAGIC_LEN, sizeof(nh));
	memcpy(na, chall + MVM_AUTH_MAGIC_LEN, sizeof(na));
	assert_int_equal(mvm_auth_mac(other_key, MVM_AUTH_LABEL_HOST, 1025, nh, na, proof), 0);
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall), -EACCES);
	assert_int_equal(mvm_auth_agent_want(&ag), 0);
	/* the same key from its hex form authenticates */
	{
		struct mvm_auth_key hk = { 0 };

		static const char hex[] = "0102030000000000000000000000000000000000"
					  "000000000000000000000000";

		assert_int_equal(mvm_auth_key_init_hex(&hk, hex, 64), 0);
		host_start(&host, &hk, 1025, hello);
		mvm_auth_key_fini(&hk);
	}
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall), MVM_AUTH_DONE);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
}

/*
 * Teardown (run under ASan by make asan: a use after free or a leak fails it): a key freed
 * while handshakes copied from it are under way (mvm_vsock_set_secret() replacing the
 * secret during a connect); freeing and wiping twice; a key never set or a bad hex secret
 * start no handshake.
 */
static void test_teardown(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	struct mvm_auth_key k = { 0 }, none = { 0 };
	struct mvm_auth host = { 0 }, ag = { 0 };

	(void)state;
	assert_int_equal(mvm_auth_key_init(&k, key_bytes), 0);
	host_start(&host, &k, 1025, hello);
	agent_start(&ag, &k, 1025);
	mvm_auth_key_fini(&k);
	assert_null(k.mac);
	mvm_auth_key_fini(&k);
	assert_int_equal(mvm_auth_agent_input(&ag, hello, sizeof(hello), chall), MVM_AUTH_SEND);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall), MVM_AUTH_DONE);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
	assert_null(host.mac[0]);
	assert_null(host.mac[1]);
	assert_null(ag.mac[0]);
	assert_null(ag.mac[1]);

	/* no key: nothing starts, and the agent state is failed */
	assert_int_equal(mvm_auth_host_start(&host, &none, 1025), -EINVAL);
	assert_int_equal(mvm_auth_host_hello(&host, hello), -EINVAL);
	assert_int_equal(mvm_auth_agent_init(&ag, &none, 1025), -EINVAL);
	assert_int_equal(mvm_auth_agent_want(&ag), 0);
	assert_int_equal(mvm_auth_agent_input(&ag, hello, 1, chall), -EPROTO);
	assert_int_equal(mvm_auth_mac(&none, MVM_AUTH_LABEL_HOST, 1025, hello, hello, proof),
			 -EINVAL);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
	/* a bad secret sets no key: a bad character at full length, none at all */
	assert_int_equal(mvm_auth_key_init_hex(&k, "00112233445566778899aabbccddeeff"
						   "00112233445566778899aabbccddeefg", 64),
			 -EINVAL);
	assert_null(k.mac);
	assert_int_equal(mvm_auth_key_init_hex(&k, NULL, 64), -EINVAL);
	assert_null(k.mac);
}

static void test_key_from_hex(void **state)
{
	uint8_t k[MVM_AUTH_KEY_LEN];
	char hex[65];

	(void)state;
	for (int i = 0; i < 64; i++)
		hex[i] = "0123456789abcdefABCDEF"[i % 22];
	hex[64] = '\0';
	assert_int_equal(mvm_auth_key_from_hex(hex, 64, k), 0);
	assert_int_equal(k[0], 0x01);
	assert_int_equal(k[5], 0xab);
	assert_int_equal(mvm_auth_key_from_hex(hex, 63, k), -EINVAL);
	assert_int_equal(mvm_auth_key_from_hex(NULL, 64, k), -EINVAL);
	hex[10] = 'g';
	assert_int_equal(mvm_auth_key_from_hex(hex, 64, k), -EINVAL);
}

/** setup() - the two keys, set up once as the agent and the host do */
static int setup(void **state)
{
	(void)state;
	if (mvm_auth_key_init(&key_ctx, key_bytes) ||
	    mvm_auth_key_init(&other_ctx, other_key_bytes))
		return -1;
	return 0;
}

/** teardown() - free them (ASan's leak check covers the contexts) */
static int teardown(void **state)
{
	(void)state;
	mvm_auth_key_fini(&key_ctx);
	mvm_auth_key_fini(&other_ctx);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_exchange),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_garbage_refused_at_first_wrong_byte),
		cmocka_unit_test(test_truncated_needs_more),
		cmocka_unit_test(test_wrong_proof_and_reflection),
		cmocka_unit_test(test_replayed_proof),
		cmocka_unit_test(test_port_and_key_bound),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_known_answer_handshake),
		cmocka_unit_test(test_shared_key_many_handshakes),
		cmocka_unit_test(test_key_init_busy),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_teardown),
		cmocka_unit_test(test_key_from_hex),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
