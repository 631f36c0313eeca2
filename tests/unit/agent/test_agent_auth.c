/* SPDX-License-Identifier: MIT */
/*
 * test_agent_auth.c - the TCP authentication handshake (common/mvm_auth.c): the agent's
 * state machine against the host's side, byte by byte, and against truncated, garbage,
 * replayed, reflected, port-swapped and wrong-key input; a known-answer MAC shared with
 * tests/integration/authlib.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mvm_auth.h"

static const uint8_t key[MVM_AUTH_KEY_LEN] = { 1, 2, 3 };
static const uint8_t other_key[MVM_AUTH_KEY_LEN] = { 9, 9, 9 };

/** agent_hello() - feed @hello to a fresh agent; expect the challenge in @chall. */
static void agent_hello(struct mvm_auth *ag, const uint8_t *k, uint32_t port,
			const uint8_t *hello, uint8_t *chall)
{
	mvm_auth_agent_init(ag, k, port);
	assert_int_equal(mvm_auth_agent_want(ag), MVM_AUTH_HELLO_LEN);
	assert_int_equal(mvm_auth_agent_input(ag, hello, MVM_AUTH_HELLO_LEN, chall),
			 MVM_AUTH_SEND);
	assert_int_equal(mvm_auth_agent_want(ag), MVM_AUTH_PROOF_LEN);
}

static void test_full_exchange(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	struct mvm_auth host, ag;

	(void)state;
	assert_int_equal(mvm_auth_host_hello(&host, key, 1025, hello), 0);
	assert_memory_equal(hello, MVM_AUTH_MAGIC, MVM_AUTH_MAGIC_LEN);
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall), MVM_AUTH_DONE);
	assert_int_equal(mvm_auth_agent_want(&ag), 0);
	/* input after the end is not consumed as handshake */
	assert_int_equal(mvm_auth_agent_input(&ag, proof, 1, chall), -EPROTO);
}

static void test_byte_by_byte(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	struct mvm_auth host, ag;
	size_t i;

	(void)state;
	assert_int_equal(mvm_auth_host_hello(&host, key, 7602, hello), 0);
	mvm_auth_agent_init(&ag, key, 7602);
	for (i = 0; i + 1 < sizeof(hello); i++) {
		assert_int_equal(mvm_auth_agent_input(&ag, hello + i, 1, chall), MVM_AUTH_MORE);
		assert_int_equal(mvm_auth_agent_want(&ag), sizeof(hello) - i - 1);
	}
	assert_int_equal(mvm_auth_agent_input(&ag, hello + i, 1, chall), MVM_AUTH_SEND);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
	for (i = 0; i + 1 < sizeof(proof); i++)
		assert_int_equal(mvm_auth_agent_input(&ag, proof + i, 1, chall), MVM_AUTH_MORE);
	assert_int_equal(mvm_auth_agent_input(&ag, proof + i, 1, chall), MVM_AUTH_DONE);
}

static void test_garbage_refused_at_first_wrong_byte(void **state)
{
	static const char json[] = "{\"cmd\":\"get_auth_secret\"}\n";
	uint8_t out[MVM_AUTH_CHALLENGE_LEN];
	struct mvm_auth ag;

	(void)state;
	mvm_auth_agent_init(&ag, key, 1025);
	assert_int_equal(mvm_auth_agent_input(&ag, (const uint8_t *)json, 1, out), -EPROTO);
	/* an error is final */
	assert_int_equal(mvm_auth_agent_input(&ag, (const uint8_t *)MVM_AUTH_MAGIC, 1, out),
			 -EPROTO);
	assert_int_equal(mvm_auth_agent_want(&ag), 0);

	/* a right prefix, then a wrong byte */
	mvm_auth_agent_init(&ag, key, 1025);
	assert_int_equal(mvm_auth_agent_input(&ag, (const uint8_t *)"MVMAU", 5, out),
			 MVM_AUTH_MORE);
	assert_int_equal(mvm_auth_agent_input(&ag, (const uint8_t *)"X", 1, out), -EPROTO);

	/* more than the message needs */
	mvm_auth_agent_init(&ag, key, 1025);
	assert_int_equal(mvm_auth_agent_input(&ag, (const uint8_t *)json, MVM_AUTH_HELLO_LEN + 1,
					      out), -EPROTO);
}

static void test_truncated_needs_more(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN];
	struct mvm_auth host, ag;

	(void)state;
	assert_int_equal(mvm_auth_host_hello(&host, key, 1025, hello), 0);
	mvm_auth_agent_init(&ag, key, 1025);
	assert_int_equal(mvm_auth_agent_input(&ag, hello, sizeof(hello) - 1, chall),
			 MVM_AUTH_MORE);
	assert_int_equal(mvm_auth_agent_want(&ag), 1);
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_agent_input(&ag, hello, 31, chall), MVM_AUTH_MORE);
	assert_int_equal(mvm_auth_agent_want(&ag), 1);
}

static void test_wrong_proof_and_reflection(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	uint8_t out[MVM_AUTH_CHALLENGE_LEN];
	struct mvm_auth host, ag;

	(void)state;
	assert_int_equal(mvm_auth_host_hello(&host, key, 1025, hello), 0);
	agent_hello(&ag, key, 1025, hello, chall);
	memset(proof, 0, sizeof(proof));
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), out), -EACCES);

	/* the agent's own MAC sent back */
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_agent_input(&ag, chall + MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN,
					      MVM_AUTH_PROOF_LEN, out), -EACCES);
}

static void test_replayed_proof(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	uint8_t chall2[MVM_AUTH_CHALLENGE_LEN];
	struct mvm_auth host, ag;

	(void)state;
	assert_int_equal(mvm_auth_host_hello(&host, key, 1025, hello), 0);
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), 0);
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall), MVM_AUTH_DONE);
	/* the same HELLO and PROOF on a new connection: a new agent nonce */
	agent_hello(&ag, key, 1025, hello, chall2);
	assert_memory_not_equal(chall + MVM_AUTH_MAGIC_LEN, chall2 + MVM_AUTH_MAGIC_LEN,
				MVM_AUTH_NONCE_LEN);
	assert_int_equal(mvm_auth_agent_input(&ag, proof, sizeof(proof), chall2), -EACCES);
}

static void test_port_and_key_bound(void **state)
{
	uint8_t hello[MVM_AUTH_HELLO_LEN], chall[MVM_AUTH_CHALLENGE_LEN], proof[MVM_AUTH_PROOF_LEN];
	struct mvm_auth host, ag;

	(void)state;
	/* a host dialling 7602 whose stream lands on 1025 (or a proof carried over) */
	assert_int_equal(mvm_auth_host_hello(&host, key, 7602, hello), 0);
	agent_hello(&ag, key, 1025, hello, chall);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), -EACCES);
	/* an impostor agent with another key: the host refuses it, and sends no proof */
	memset(proof, 0x5a, sizeof(proof));
	assert_int_equal(mvm_auth_host_hello(&host, key, 1025, hello), 0);
	agent_hello(&ag, other_key, 1025, hello, chall);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), -EACCES);
	for (size_t i = 0; i < sizeof(proof); i++)
		assert_int_equal(proof[i], 0x5a);
	/* something that is not a challenge at all */
	memcpy(chall, "{\"status", 8);
	assert_int_equal(mvm_auth_host_finish(&host, chall, proof), -EPROTO);
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
	uint8_t k[32], nh[32], na[32], mac[32];

	(void)state;
	for (int i = 0; i < 32; i++)
		k[i] = (uint8_t)i;
	memset(nh, 0xaa, sizeof(nh));
	memset(na, 0x55, sizeof(na));
	assert_int_equal(mvm_auth_mac(k, MVM_AUTH_LABEL_AGENT, 1025, nh, na, mac), 0);
	assert_memory_equal(mac, want, sizeof(want));
	assert_true(mvm_auth_equal(mac, want, sizeof(want)));
	mac[31] ^= 1;
	assert_false(mvm_auth_equal(mac, want, sizeof(want)));
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
		cmocka_unit_test(test_key_from_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
