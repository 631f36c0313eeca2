/* SPDX-License-Identifier: MIT */
/*
 * test_agent_auth.c - the TCP authentication handshake (common/mvm_auth.c): the agent's
 * state machine against the host's side, byte by byte, and against truncated, garbage,
 * replayed, reflected, port-swapped and wrong-key input; a known-answer MAC shared with
 * tests/integration/authlib.py; the key's HMAC context, set up once and copied per
 * handshake: reused contexts give the MACs fresh ones give, and a key freed while a
 * handshake copied from it runs (ASan checks the teardown: make asan).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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
	assert_int_equal(mvm_auth_host_hello(host, k, port, hello), 0);
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

static void test_known_answer(void **state)
{
	/* HMAC-SHA256(0..31, "microvm-auth-1 agent" | 00000401 | aa*32 | 55*32), as computed
	 * by tests/integration/authlib.py */
	static const uint8_t want[32] = {
		0xc4, 0xdb, 0xee, 0xaa, 0x79, 0xef, 0xa4, 0x40, 0xcc, 0xc9, 0x40, 0x34, 0xe8, 0x42,
		0xe4, 0x42, 0x55, 0x40, 0x02, 0x52, 0x2a, 0x75, 0x6a, 0x69, 0x2e, 0xa2, 0xc6, 0xac,
		0x07, 0x38, 0xff, 0xfa,
	};
	struct mvm_auth_key k = { 0 };
	uint8_t raw[32], nh[32], na[32], mac[32];

	(void)state;
	for (int i = 0; i < 32; i++)
		raw[i] = (uint8_t)i;
	memset(nh, 0xaa, sizeof(nh));
	memset(na, 0x55, sizeof(na));
	assert_int_equal(mvm_auth_key_init(&k, raw), 0);
	assert_int_equal(mvm_auth_mac(&k, MVM_AUTH_LABEL_AGENT, 1025, nh, na, mac), 0);
	mvm_auth_key_fini(&k);
	assert_null(k.mac);
	assert_memory_equal(mac, want, sizeof(want));
	assert_true(mvm_auth_equal(mac, want, sizeof(want)));
	mac[31] ^= 1;
	assert_false(mvm_auth_equal(mac, want, sizeof(want)));
}

/** fresh_mac() - the MAC from a key context made for this one MAC and freed at once */
static void fresh_mac(const uint8_t *raw, const char *label, uint32_t port, const uint8_t *nh,
		      const uint8_t *na, uint8_t *mac)
{
	struct mvm_auth_key k = { 0 };

	assert_int_equal(mvm_auth_key_init(&k, raw), 0);
	assert_int_equal(mvm_auth_mac(&k, label, port, nh, na, mac), 0);
	mvm_auth_key_fini(&k);
}

/*
 * The key's context is made once and serves many MACs: a context used over and over (the
 * shared key, and a handshake's copy computing its second MAC after its first) gives the
 * MAC a context made afresh for that one MAC gives.
 */
static void test_reused_context_same_mac(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	uint8_t nh[MVM_AUTH_NONCE_LEN], na[MVM_AUTH_NONCE_LEN], mac[MVM_AUTH_MAC_LEN];
	uint8_t want[MVM_AUTH_MAC_LEN];
	struct mvm_auth host = { 0 }, ag = { 0 };

	(void)state;
	for (int round = 0; round < 50; round++) {
		host_start(&host, key, round % 2 ? 7602 : 1025, hello);
		agent_hello(&ag, key, round % 2 ? 7602 : 1025, hello, chall);
		memcpy(nh, hello + MVM_AUTH_MAGIC_LEN, sizeof(nh));
		memcpy(na, chall + MVM_AUTH_MAGIC_LEN, sizeof(na));
		/* the agent's copy made its first MAC: the one a fresh context makes */
		fresh_mac(key_bytes, MVM_AUTH_LABEL_AGENT, round % 2 ? 7602 : 1025, nh, na, want);
		assert_memory_equal(chall + MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN, want,
				    sizeof(want));
		/* the host's copy checks it, then makes its second MAC, the proof */
		assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
		fresh_mac(key_bytes, MVM_AUTH_LABEL_HOST, round % 2 ? 7602 : 1025, nh, na, want);
		assert_memory_equal(proof, want, sizeof(want));
		/* the agent's copy, on its second MAC, accepts exactly that */
		assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall),
				 MVM_AUTH_DONE);
		/* and the shared key, after all these copies, still makes the same MAC */
		assert_int_equal(mvm_auth_mac(key, MVM_AUTH_LABEL_HOST, round % 2 ? 7602 : 1025,
					      nh, na, mac), 0);
		assert_memory_equal(mac, want, sizeof(want));
	}
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
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
	assert_null(host.mac);
	assert_null(ag.mac);

	/* no key: nothing starts, and the agent state is failed */
	assert_int_equal(mvm_auth_host_hello(&host, &none, 1025, hello), -EINVAL);
	assert_int_equal(mvm_auth_agent_init(&ag, &none, 1025), -EINVAL);
	assert_int_equal(mvm_auth_agent_want(&ag), 0);
	assert_int_equal(mvm_auth_agent_input(&ag, hello, 1, chall), -EPROTO);
	assert_int_equal(mvm_auth_mac(&none, MVM_AUTH_LABEL_HOST, 1025, hello, hello, proof),
			 -EINVAL);
	mvm_auth_wipe(&host);
	mvm_auth_wipe(&ag);
	/* a bad secret sets no key */
	assert_int_equal(mvm_auth_key_init_hex(&k, "0g", 2), -EINVAL);
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
		cmocka_unit_test(test_reused_context_same_mac),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_teardown),
		cmocka_unit_test(test_key_from_hex),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
