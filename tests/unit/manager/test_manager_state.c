/* SPDX-License-Identifier: MIT */
/* test_manager_state.c - agent answers to VPN states; bad answers are errors, not crashes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "manager/manager_reply.h"

static void test_connected(void **state)
{
	struct mvm_vpn_info v;

	(void)state;
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"connected\",\"tun_ip\":\"10.8.0.6\",\"profile\":\"corp.ovpn\"}", &v), 0);
	assert_int_equal(v.state, MVM_VPN_CONNECTED);
	assert_string_equal(v.tun_ip, "10.8.0.6");
	assert_string_equal(v.profile, "corp.ovpn");
	assert_string_equal(mvm_vpn_state_name(v.state), "connected");
}

static void test_webauth(void **state)
{
	struct mvm_vpn_info v;

	(void)state;
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"webauth_required\",\"auth_url\":\"https://sso.example/a?b=\\\"c\"}",
		&v), 0);
	assert_int_equal(v.state, MVM_VPN_WEBAUTH);
	assert_string_equal(v.auth_url, "https://sso.example/a?b=\"c");
	assert_string_equal(mvm_vpn_state_name(v.state), "webauth_required");
}

static void test_states(void **state)
{
	struct mvm_vpn_info v;

	(void)state;
	assert_int_equal(mvm_manager_parse_vpn_reply("{\"status\":\"disconnected\"}", &v), 0);
	assert_int_equal(v.state, MVM_VPN_DISCONNECTED);
	assert_int_equal(mvm_manager_parse_vpn_reply("{\"status\":\"connecting\"}", &v), 0);
	assert_int_equal(v.state, MVM_VPN_CONNECTING);
	/* "ok" with a separate state word */
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"ok\",\"state\":\"connected\",\"tun_ip\":\"10.0.0.2\"}", &v), 0);
	assert_int_equal(v.state, MVM_VPN_CONNECTED);
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"error\",\"error\":\"auth failed\"}", &v), 0);
	assert_int_equal(v.state, MVM_VPN_ERROR);
	assert_string_equal(v.error, "auth failed");
	/* unknown word with an error text counts as an error */
	assert_int_equal(mvm_manager_parse_vpn_reply("{\"status\":\"weird\",\"error\":\"x\"}", &v),
			 0);
	assert_int_equal(v.state, MVM_VPN_ERROR);
	assert_int_equal(mvm_manager_parse_vpn_reply("{\"status\":\"weird\"}", &v), 0);
	assert_int_equal(v.state, MVM_VPN_UNKNOWN);
	assert_string_equal(mvm_vpn_state_name((enum mvm_vpn_state)99), "unknown");
	/* the agent's view: disconnected until up, OpenVPN's own state alongside */
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"disconnected\",\"state\":\"AUTH\",\"profile\":\"p\"}", &v), 0);
	assert_int_equal(v.state, MVM_VPN_CONNECTING);
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"disconnected\",\"state\":\"EXITING\",\"reason\":\"auth-failure\"}",
		&v), 0);
	assert_int_equal(v.state, MVM_VPN_DISCONNECTED);
	assert_string_equal(v.error, "auth-failure");
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"connected\",\"state\":\"CONNECTED\",\"tun_ip\":\"10.8.0.2\"}",
		&v), 0);
	assert_int_equal(v.state, MVM_VPN_CONNECTED);
}

static void test_malformed(void **state)
{
	struct mvm_vpn_info v;
	char longurl[3000];
	size_t n;

	(void)state;
	assert_int_equal(mvm_manager_parse_vpn_reply("", &v), -EPROTO);
	assert_int_equal(mvm_manager_parse_vpn_reply("[1,2]", &v), -EPROTO);
	assert_int_equal(mvm_manager_parse_vpn_reply("{\"status\":5}", &v), -EPROTO);
	assert_int_equal(mvm_manager_parse_vpn_reply("{\"status\":\"connected\"", &v), -EPROTO);
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"connected\",\"tun_ip\":42}", &v), 0);
	assert_string_equal(v.tun_ip, "");
	/* over-long fields are cut, never overflow */
	strcpy(longurl, "{\"status\":\"webauth_required\",\"auth_url\":\"");
	n = strlen(longurl);
	memset(longurl + n, 'a', 2000);
	strcpy(longurl + n + 2000, "\"}");
	assert_int_equal(mvm_manager_parse_vpn_reply(longurl, &v), 0);
	assert_int_equal(strlen(v.auth_url), sizeof(v.auth_url) - 1);
}

static void test_ok_reply(void **state)
{
	char err[64];

	(void)state;
	assert_int_equal(mvm_manager_parse_ok_reply("{\"status\":\"ok\"}", err, sizeof(err)), 0);
	assert_int_equal(mvm_manager_parse_ok_reply(
		"{\"status\":\"error\",\"error\":\"bad name\"}", err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "bad name");
	assert_int_equal(mvm_manager_parse_ok_reply("{\"status\":\"error\"}", err, sizeof(err)),
			 -EPROTO);
	assert_string_equal(err, "request failed");
	assert_int_equal(mvm_manager_parse_ok_reply("{}", NULL, 0), -EPROTO);
	assert_int_equal(mvm_manager_parse_ok_reply("nope", err, sizeof(err)), -EPROTO);
	assert_int_equal(mvm_manager_parse_ok_reply(NULL, err, sizeof(err)), -EPROTO);
}

static void test_profiles_reply(void **state)
{
	char **names = (char **)1, err[64];
	size_t n = 7;

	(void)state;
	assert_int_equal(mvm_manager_parse_profiles_reply(
		"{\"status\":\"ok\",\"profiles\":[\"a.ovpn\",5,null,\"b\",[\"c\"]]}",
		&names, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "a.ovpn");
	assert_string_equal(names[1], "b");
	assert_null(names[2]);
	mvm_manager_free_list(names, n);
	assert_int_equal(mvm_manager_parse_profiles_reply("{\"profiles\":[]}", &names, &n,
							  err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	mvm_manager_free_list(names, n);
	assert_int_equal(mvm_manager_parse_profiles_reply(
		"{\"status\":\"error\",\"error\":\"disk full\"}", &names, &n, err, sizeof(err)),
		-EPROTO);
	assert_string_equal(err, "disk full");
	assert_null(names);
	assert_int_equal(n, 0);
	assert_int_equal(mvm_manager_parse_profiles_reply("{\"profiles\":\"a\"}", &names, &n,
							  err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "no profile list in answer");
	assert_int_equal(mvm_manager_parse_profiles_reply("[", &names, &n, NULL, 0), -EPROTO);
}

static void test_secret_reply(void **state)
{
	char secret[65], json[128];
	const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

	(void)state;
	snprintf(json, sizeof(json), "{\"status\":\"ok\",\"auth_secret\":\"%s\"}", hex);
	assert_int_equal(mvm_manager_parse_secret_reply(json, secret), 0);
	assert_string_equal(secret, hex);
	/* uppercase, short, long, non-hex, wrong type: refused */
	snprintf(json, sizeof(json), "{\"auth_secret\":\"%.63sA\"}", hex);
	assert_int_equal(mvm_manager_parse_secret_reply(json, secret), -EPROTO);
	snprintf(json, sizeof(json), "{\"auth_secret\":\"%.63s\"}", hex);
	assert_int_equal(mvm_manager_parse_secret_reply(json, secret), -EPROTO);
	snprintf(json, sizeof(json), "{\"auth_secret\":\"%s0\"}", hex);
	assert_int_equal(mvm_manager_parse_secret_reply(json, secret), -EPROTO);
	snprintf(json, sizeof(json), "{\"auth_secret\":\"%.63sg\"}", hex);
	assert_int_equal(mvm_manager_parse_secret_reply(json, secret), -EPROTO);
	assert_int_equal(mvm_manager_parse_secret_reply("{\"auth_secret\":1}", secret), -EPROTO);
	assert_int_equal(mvm_manager_parse_secret_reply("", secret), -EPROTO);
}

/* Every way the guest side fails gives one line with a reason; nothing wrong gives "". */
static void test_fault_text(void **state)
{
	struct mvm_vpn_info v;
	char f[256];

	(void)state;
	mvm_manager_format_fault(f, sizeof(f), true, MVM_EXIT_ERROR,
				 "/sbin/microvm-init killed by signal 9", false, NULL);
	assert_string_equal(f, "the guest stopped (error): /sbin/microvm-init killed by signal 9");
	mvm_manager_format_fault(f, sizeof(f), true, MVM_EXIT_ERROR, "KVM internal error 1",
				 false, NULL);
	assert_string_equal(f, "the guest stopped (error): KVM internal error 1");
	mvm_manager_format_fault(f, sizeof(f), true, MVM_EXIT_PANIC, "", false, NULL);
	assert_string_equal(f, "the guest stopped (panic)");
	mvm_manager_format_fault(f, sizeof(f), false, MVM_EXIT_NONE, "", false, NULL);
	assert_string_equal(f, "the agent does not answer (no reply to ping within 2 s)");

	/* OpenVPN died: the agent's reason (exit, FATAL line) */
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"disconnected\",\"reason\":\"openvpn killed by signal 9\","
		"\"profile\":\"corp.ovpn\"}", &v), 0);
	mvm_manager_format_fault(f, sizeof(f), false, MVM_EXIT_NONE, "", true, &v);
	assert_string_equal(f, "VPN down: openvpn killed by signal 9");
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"error\",\"error\":\"openvpn: Cannot resolve host\"}", &v), 0);
	mvm_manager_format_fault(f, sizeof(f), false, MVM_EXIT_NONE, "", true, &v);
	assert_string_equal(f, "VPN failed: openvpn: Cannot resolve host");

	/* disconnected on request, connected: nothing wrong */
	assert_int_equal(mvm_manager_parse_vpn_reply("{\"status\":\"disconnected\"}", &v), 0);
	mvm_manager_format_fault(f, sizeof(f), false, MVM_EXIT_NONE, "", true, &v);
	assert_string_equal(f, "");
	assert_int_equal(mvm_manager_parse_vpn_reply(
		"{\"status\":\"connected\",\"tun_ip\":\"10.8.0.6\"}", &v), 0);
	mvm_manager_format_fault(f, sizeof(f), false, MVM_EXIT_NONE, "", true, &v);
	assert_string_equal(f, "");

	/* a small buffer truncates, never overflows */
	mvm_manager_format_fault(f, 8, true, MVM_EXIT_ERROR, "long detail", false, NULL);
	assert_string_equal(f, "the gue");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connected),
		cmocka_unit_test(test_webauth),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_ok_reply),
		cmocka_unit_test(test_profiles_reply),
		cmocka_unit_test(test_secret_reply),
		cmocka_unit_test(test_fault_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
