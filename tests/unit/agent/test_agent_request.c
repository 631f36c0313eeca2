// SPDX-License-Identifier: MIT
/* Unit tests for the control request parser (guest/agent/request.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent.h"

static int parse(struct agent_req *r, const char *s, char *err)
{
	return agent_req_parse(r, s, strlen(s), err, 256);
}

static void test_commands(void **state)
{
	static const struct { const char *json; enum agent_cmd cmd; } ok[] = {
		{ "{\"cmd\":\"ping\"}", AGENT_CMD_PING },
		{ "{\"cmd\":\"get_auth_secret\"}", AGENT_CMD_GET_AUTH_SECRET },
		{ "{\"cmd\":\"list_profiles\"}", AGENT_CMD_LIST_PROFILES },
		{ "{\"cmd\":\"vpn_stop\"}", AGENT_CMD_VPN_STOP },
		{ "{\"cmd\":\"vpn_status\"}", AGENT_CMD_VPN_STATUS },
		{ "{\"cmd\":\"vpn_check_webauth\"}", AGENT_CMD_VPN_CHECK_WEBAUTH },
		{ "{\"cmd\":\"shutdown\"}", AGENT_CMD_SHUTDOWN },
		{ " { \"x\" : [1,{}], \"cmd\" : \"ping\", \"y\":null } ", AGENT_CMD_PING },
	};
	struct agent_req r;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(parse(&r, ok[i].json, err), 0);
		assert_int_equal(r.cmd, ok[i].cmd);
		agent_req_free(&r);
	}
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"", "{", "null", "[]", "\"ping\"", "{\"cmd\":1}", "{\"cmd\":null}",
		"{\"Cmd\":\"ping\"}", "{\"cmd\":\"PING\"}", "{\"cmd\":\"ping\"} x",
		"{\"cmd\":\"vpn_set_profile\",\"name\":\"a\"}",
		"{\"cmd\":\"vpn_set_profile\",\"content\":\"a\"}",
		"{\"cmd\":\"vpn_set_profile\",\"name\":\"../a\",\"content\":\"\"}",
		"{\"cmd\":\"vpn_set_profile\",\"name\":\"a\\u0000b\",\"content\":\"\"}",
		"{\"cmd\":\"vpn_set_profile\",\"name\":\"a\",\"content\":7}",
		"{\"cmd\":\"vpn_start\"}",
		"{\"cmd\":\"vpn_start\",\"profile\":\".x\"}",
		"{\"cmd\":\"vpn_start\",\"profile\":\"a\",\"username\":5}",
		"{\"cmd\":\"vpn_start\",\"profile\":\"a\",\"password\":\"p\"}",
		"{\"cmd\":\"vpn_start\",\"profile\":\"a\",\"username\":\"u\\n\"}",
		"{\"cmd\":\"vpn_start\",\"profile\":\"a\",\"timeout\":0}",
		"{\"cmd\":\"vpn_start\",\"profile\":\"a\",\"timeout\":\"5\"}",
		"{\"cmd\":\"vpn_start\",\"profile\":\"a\",\"timeout\":3601}",
	};
	struct agent_req r;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse(&r, bad[i], err), -EINVAL);
		assert_true(err[0] != '\0');
		agent_req_free(&r);
	}
	/* embedded NUL byte in the line */
	assert_int_equal(agent_req_parse(&r, "{\"cmd\":\"ping\"}\0", 15, err, 256), -EINVAL);
	agent_req_free(&r);
}

static void test_set_profile(void **state)
{
	struct agent_req r;
	char err[256];

	(void)state;
	assert_int_equal(parse(&r, "{\"cmd\":\"vpn_set_profile\",\"name\":\"corp.ovpn\","
			      "\"content\":\"client\\nremote x\\n\"}", err), 0);
	assert_string_equal(r.name, "corp.ovpn");
	assert_string_equal(r.content, "client\nremote x\n");
	assert_int_equal(r.content_len, 16);
	agent_req_free(&r);
	/* an escaped backslash before u0000 is text, not a NUL */
	assert_int_equal(parse(&r, "{\"cmd\":\"vpn_set_profile\",\"name\":\"a\","
			      "\"content\":\"\\\\u0000\"}", err), 0);
	assert_string_equal(r.content, "\\u0000");
	agent_req_free(&r);
}

static void test_content_limit(void **state)
{
	static const char pre[] = "{\"cmd\":\"vpn_set_profile\",\"name\":\"a\",\"content\":\"";
	static char s[sizeof(pre) + 6 * AGENT_PROFILE_MAX + 4];
	size_t p = sizeof(pre) - 1, i;
	struct agent_req r;
	char err[256];

	(void)state;
	memcpy(s, pre, p);
	memset(s + p, 'x', AGENT_PROFILE_MAX + 1);
	memcpy(s + p + AGENT_PROFILE_MAX + 1, "\"}", 3);
	/* one byte over the content limit: a clear error, not the line limit */
	assert_int_equal(parse(&r, s, err), -EINVAL);
	assert_non_null(strstr(err, "profile content larger than 1 MiB"));
	agent_req_free(&r);

	/* exactly 1 MiB of control characters, each escaped as \u0001 (6 MiB line): accepted */
	for (i = 0; i < AGENT_PROFILE_MAX; i++)
		memcpy(s + p + 6 * i, "\\u0001", 6);
	memcpy(s + p + 6 * (size_t)AGENT_PROFILE_MAX, "\"}", 3);
	assert_true(strlen(s) > 6u * AGENT_PROFILE_MAX);
	assert_true(strlen(s) <= AGENT_LINE_MAX);
	assert_int_equal(parse(&r, s, err), 0);
	assert_int_equal(r.content_len, AGENT_PROFILE_MAX);
	assert_int_equal(r.content[0], 1);
	assert_int_equal(r.content[AGENT_PROFILE_MAX - 1], 1);
	agent_req_free(&r);
}

static void test_start(void **state)
{
	struct agent_req r;
	char err[256];

	(void)state;
	assert_int_equal(parse(&r, "{\"cmd\":\"vpn_start\",\"profile\":\"p.ovpn\"}", err), 0);
	assert_string_equal(r.profile, "p.ovpn");
	assert_null(r.username);
	assert_null(r.password);
	assert_int_equal(r.timeout_s, 0);
	agent_req_free(&r);
	assert_int_equal(parse(&r, "{\"cmd\":\"vpn_start\",\"profile\":\"p\",\"username\":\"u\","
			      "\"password\":\"p \\\"w\\\\\",\"timeout\":12}", err), 0);
	assert_string_equal(r.username, "u");
	assert_string_equal(r.password, "p \"w\\");
	assert_int_equal(r.timeout_s, 12);
	agent_req_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_set_profile),
		cmocka_unit_test(test_content_limit),
		cmocka_unit_test(test_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
