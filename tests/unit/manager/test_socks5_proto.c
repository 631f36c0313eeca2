/* SPDX-License-Identifier: MIT */
/* test_socks5_proto.c - SOCKS5 parsers: complete, incomplete at every length, malformed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "manager/socks5_proto.h"
#include "microvm/socks.h"

static void test_greeting(void **state)
{
	const uint8_t msg[] = { 5, 2, 0, 2 };
	struct socks_greeting g;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(msg); i++)
		assert_int_equal(socks_parse_greeting(msg, i, &g), 0);
	assert_int_equal(socks_parse_greeting(msg, sizeof(msg), &g), 4);
	assert_true(g.has_none);
	assert_true(g.has_userpass);
	assert_int_equal(socks_choose_method(&g, false), SOCKS_METHOD_NONE);
	assert_int_equal(socks_choose_method(&g, true), SOCKS_METHOD_USERPASS);
}

static void test_greeting_bad(void **state)
{
	const uint8_t http[] = "GET / HTTP/1.1\r\n";
	const uint8_t socks4[] = { 4, 1, 0, 80, 127, 0, 0, 1, 0 };
	const uint8_t zero[] = { 5, 0 };
	const uint8_t gss[] = { 5, 1, 1 };
	struct socks_greeting g;

	(void)state;
	assert_int_equal(socks_parse_greeting(http, sizeof(http) - 1, &g), -EPROTO);
	assert_int_equal(socks_parse_greeting(socks4, sizeof(socks4), &g), -EPROTO);
	assert_int_equal(socks_parse_greeting(zero, sizeof(zero), &g), -EPROTO);
	assert_int_equal(socks_parse_greeting(gss, sizeof(gss), &g), 3);
	assert_int_equal(socks_choose_method(&g, false), SOCKS_METHOD_REJECT);
	assert_int_equal(socks_choose_method(&g, true), SOCKS_METHOD_REJECT);
}

static void test_auth(void **state)
{
	const uint8_t msg[] = { 1, 5, 'a', 'l', 'i', 'c', 'e', 3, 'p', 'w', '!' };
	const uint8_t nul[] = { 1, 2, 'a', 0, 1, 'x' };
	const uint8_t empty[] = { 1, 0, 1, 'x' };
	const uint8_t ver[] = { 5, 1, 'a', 1, 'b' };
	struct socks_auth a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(msg); i++)
		assert_int_equal(socks_parse_auth(msg, i, &a), 0);
	assert_int_equal(socks_parse_auth(msg, sizeof(msg), &a), (int)sizeof(msg));
	assert_string_equal(a.user, "alice");
	assert_string_equal(a.pass, "pw!");
	assert_true(socks_auth_check(&a, "alice", "pw!"));
	assert_false(socks_auth_check(&a, "alice", "pw"));
	assert_false(socks_auth_check(&a, "alice", "pw!!"));
	assert_false(socks_auth_check(&a, "alicf", "pw!"));
	assert_false(socks_auth_check(&a, "", "pw!"));
	assert_int_equal(socks_parse_auth(nul, sizeof(nul), &a), -EPROTO);
	assert_int_equal(socks_parse_auth(empty, sizeof(empty), &a), -EPROTO);
	assert_int_equal(socks_parse_auth(ver, sizeof(ver), &a), -EPROTO);
}

static void test_request_ipv4(void **state)
{
	const uint8_t msg[] = { 5, 1, 0, 1, 10, 8, 0, 1, 0x1f, 0x90 };
	struct socks_request r;
	uint8_t rep, hs[SOCKS_HANDSHAKE_MAX];
	const uint8_t want[] = { 8, '1', '0', '.', '8', '.', '0', '.', '1', 0x1f, 0x90 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(msg); i++)
		assert_int_equal(socks_parse_request(msg, i, &r, &rep), 0);
	assert_int_equal(socks_parse_request(msg, sizeof(msg), &r, &rep), 10);
	assert_int_equal(rep, SOCKS_REP_OK);
	assert_string_equal(r.host, "10.8.0.1");
	assert_int_equal(r.port, 8080);
	assert_int_equal(socks_build_handshake(&r, hs, sizeof(hs)), (int)sizeof(want));
	assert_memory_equal(hs, want, sizeof(want));
	assert_int_equal(socks_build_handshake(&r, hs, 5), -ENOSPC);
}

static void test_request_ipv6_and_domain(void **state)
{
	uint8_t v6[22] = { 5, 1, 0, 4 };
	uint8_t dom[4 + 1 + 11 + 2] = { 5, 1, 0, 3, 11 };
	struct socks_request r;
	uint8_t rep;

	(void)state;
	v6[4] = 0xfd;
	v6[19] = 1;
	v6[20] = 0;
	v6[21] = 22;
	assert_int_equal(socks_parse_request(v6, 21, &r, &rep), 0);
	assert_int_equal(socks_parse_request(v6, sizeof(v6), &r, &rep), 22);
	assert_string_equal(r.host, "fd00::1");
	assert_int_equal(r.port, 22);

	memcpy(dom + 5, "example.vpn", 11);
	dom[16] = 0;
	dom[17] = 80;
	assert_int_equal(socks_parse_request(dom, sizeof(dom) - 1, &r, &rep), 0);
	assert_int_equal(socks_parse_request(dom, sizeof(dom), &r, &rep), (int)sizeof(dom));
	assert_string_equal(r.host, "example.vpn");
	assert_int_equal(r.atyp, SOCKS_ATYP_DOMAIN);
	assert_int_equal(rep, SOCKS_REP_OK);
}

static void test_request_refusals(void **state)
{
	const uint8_t bind[] = { 5, 2, 0, 1, 1, 2, 3, 4, 0, 1 };
	const uint8_t udp[] = { 5, 3, 0, 1, 1, 2, 3, 4, 0, 1 };
	const uint8_t atyp[] = { 5, 1, 0, 9, 1, 2, 3, 4, 0, 1 };
	const uint8_t ver[] = { 4, 1, 0, 1, 1, 2, 3, 4, 0, 1 };
	const uint8_t emptydom[] = { 5, 1, 0, 3, 0, 0, 1 };
	const uint8_t nuldom[] = { 5, 1, 0, 3, 2, 'a', 0, 0, 1 };
	struct socks_request r;
	uint8_t rep;

	(void)state;
	assert_int_equal(socks_parse_request(bind, sizeof(bind), &r, &rep), 10);
	assert_int_equal(rep, SOCKS_REP_CMD_UNSUPP);
	assert_int_equal(socks_parse_request(udp, sizeof(udp), &r, &rep), 10);
	assert_int_equal(rep, SOCKS_REP_CMD_UNSUPP);
	assert_int_equal(socks_parse_request(atyp, sizeof(atyp), &r, &rep), -EPROTO);
	assert_int_equal(rep, SOCKS_REP_ATYP_UNSUPP);
	assert_int_equal(socks_parse_request(ver, sizeof(ver), &r, &rep), -EPROTO);
	assert_int_equal(socks_parse_request(emptydom, sizeof(emptydom), &r, &rep), -EPROTO);
	assert_int_equal(socks_parse_request(nuldom, sizeof(nuldom), &r, &rep), -EPROTO);
}

static void test_reply_and_mapping(void **state)
{
	uint8_t out[16];

	(void)state;
	assert_int_equal(socks_build_reply(out, 9, 0), 0);
	assert_int_equal(socks_build_reply(out, sizeof(out), SOCKS_REP_REFUSED), 10);
	assert_int_equal(out[0], 5);
	assert_int_equal(out[1], 5);
	assert_int_equal(out[3], SOCKS_ATYP_IPV4);
	assert_int_equal(socks_rep_from_agent(0x00), SOCKS_REP_OK);
	assert_int_equal(socks_rep_from_agent(0x01), SOCKS_REP_FAIL);
	assert_int_equal(socks_rep_from_agent(0x02), SOCKS_REP_NOT_ALLOWED);
	assert_int_equal(socks_rep_from_agent(0x03), SOCKS_REP_NET_UNREACH);
	assert_int_equal(socks_rep_from_agent(0x04), SOCKS_REP_HOST_UNREACH);
	assert_int_equal(socks_rep_from_agent(0x05), SOCKS_REP_REFUSED);
	assert_int_equal(socks_rep_from_agent(0x06), SOCKS_REP_TTL_EXPIRED);
	assert_int_equal(socks_rep_from_agent(0xff), SOCKS_REP_FAIL);
	assert_int_equal(socks_rep_from_errno(-ECONNREFUSED), SOCKS_REP_FAIL);
	assert_int_equal(socks_rep_from_errno(-ETIMEDOUT), SOCKS_REP_TTL_EXPIRED);
	assert_string_equal(socks_rep_name(5), "connection refused");
	assert_string_equal(socks_rep_name(200), "unknown");
}

static void test_parse_listen(void **state)
{
	char addr[64] = "127.0.0.1";
	uint16_t port = 1080;

	(void)state;
	assert_int_equal(mvm_socks_parse_listen("2080", addr, sizeof(addr), &port), 0);
	assert_string_equal(addr, "127.0.0.1");
	assert_int_equal(port, 2080);
	assert_int_equal(mvm_socks_parse_listen("127.0.0.2:1081", addr, sizeof(addr), &port), 0);
	assert_string_equal(addr, "127.0.0.2");
	assert_int_equal(port, 1081);
	assert_int_equal(mvm_socks_parse_listen("[::1]:1082", addr, sizeof(addr), &port), 0);
	assert_string_equal(addr, "::1");
	assert_int_equal(port, 1082);
	assert_int_equal(mvm_socks_parse_listen("::1", addr, sizeof(addr), &port), 0);
	assert_int_equal(port, 1082);
	assert_int_equal(mvm_socks_parse_listen("1.2.3.4:99999", addr, sizeof(addr), &port),
			 -EINVAL);
	assert_int_equal(mvm_socks_parse_listen("1.2.3.4:", addr, sizeof(addr), &port), -EINVAL);
	assert_int_equal(mvm_socks_parse_listen("[::1", addr, sizeof(addr), &port), -EINVAL);
	assert_int_equal(mvm_socks_parse_listen("", addr, sizeof(addr), &port), -EINVAL);
}

static void test_secret(void **state)
{
	char a[65], b[65];

	(void)state;
	assert_int_equal(mvm_socks_generate_secret(a, 10), -ENOSPC);
	assert_int_equal(mvm_socks_generate_secret(a, sizeof(a)), 0);
	assert_int_equal(mvm_socks_generate_secret(b, sizeof(b)), 0);
	assert_int_equal(strlen(a), 64);
	assert_int_equal(strspn(a, "0123456789abcdef"), 64);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_greeting_bad),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_request_ipv4),
		cmocka_unit_test(test_request_ipv6_and_domain),
		cmocka_unit_test(test_request_refusals),
		cmocka_unit_test(test_reply_and_mapping),
		cmocka_unit_test(test_parse_listen),
		cmocka_unit_test(test_secret),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
