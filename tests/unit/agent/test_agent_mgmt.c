// SPDX-License-Identifier: MIT
/* Unit tests for the OpenVPN management line parser (guest/agent/mgmt.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent.h"

static struct mgmt_msg m;

static enum mgmt_type parse(const char *s)
{
	mgmt_parse(s, strlen(s), &m);
	return m.type;
}

static void test_state(void **state)
{
	(void)state;
	assert_int_equal(parse(">STATE:1700000000,CONNECTED,SUCCESS,10.8.0.2,10.0.0.1,1194,,\r\n"),
			 MGMT_STATE);
	assert_string_equal(m.a, "CONNECTED");
	assert_string_equal(m.b, "SUCCESS");
	assert_string_equal(m.c, "10.8.0.2");
	assert_int_equal(parse(">STATE:1,AUTH_PENDING,timeout 60,,,,,"), MGMT_STATE);
	assert_string_equal(m.a, "AUTH_PENDING");
	assert_string_equal(m.b, "timeout 60");
	assert_string_equal(m.c, "");
	assert_int_equal(parse(">STATE:1,WAIT"), MGMT_STATE);
	assert_string_equal(m.a, "WAIT");
	assert_string_equal(m.b, "");
	assert_int_equal(parse(">STATE:1"), MGMT_OTHER);
	assert_int_equal(parse(">STATE:1,,x"), MGMT_OTHER);
	assert_int_equal(parse(">STATE:"), MGMT_OTHER);
}

static void test_password(void **state)
{
	(void)state;
	assert_int_equal(parse(">PASSWORD:Need 'Auth' username/password"), MGMT_PASSWORD_NEED);
	assert_string_equal(m.a, "Auth");
	assert_int_equal(m.n1, 1);
	assert_int_equal(parse(">PASSWORD:Need 'Private Key' password"), MGMT_PASSWORD_NEED);
	assert_string_equal(m.a, "Private Key");
	assert_int_equal(m.n1, 0);
	assert_int_equal(parse(">PASSWORD:Verification Failed: 'Auth'"), MGMT_PASSWORD_FAILED);
	assert_string_equal(m.a, "Auth");
	assert_string_equal(m.b, "");
	assert_int_equal(parse(">PASSWORD:Verification Failed: 'Auth' ['denied by test']"),
			 MGMT_PASSWORD_FAILED);
	assert_string_equal(m.b, "denied by test");
	assert_int_equal(parse(">PASSWORD:Need 'Auth"), MGMT_OTHER);
	assert_int_equal(parse(">PASSWORD:Auth-Token:secret"), MGMT_OTHER);
	assert_string_equal(m.a, "");
}

static void test_webauth(void **state)
{
	(void)state;
	assert_int_equal(parse(">INFOMSG:WEB_AUTH::https://vpn.example/auth?x=1"),
			 MGMT_WEBAUTH_URL);
	assert_string_equal(m.a, "https://vpn.example/auth?x=1");
	assert_int_equal(parse(">INFOMSG:WEB_AUTH:external,proxy=[::1]:8080:http://a.b/c"),
			 MGMT_WEBAUTH_URL);
	assert_string_equal(m.a, "http://a.b/c");
	assert_int_equal(parse(">INFOMSG:OPEN_URL:https://x.y/"), MGMT_WEBAUTH_URL);
	assert_string_equal(m.a, "https://x.y/");
	assert_int_equal(parse(">INFOMSG:WEB_AUTH::no-url-here"), MGMT_OTHER);
	assert_int_equal(parse(">INFOMSG:WEB_AUTH:://x"), MGMT_OTHER);
	assert_int_equal(parse(">INFOMSG:WEB_AUTH::http://a b"), MGMT_OTHER);
	assert_int_equal(parse(">INFOMSG:CR_TEXT:E,R:Enter code"), MGMT_OTHER);
}

static void test_misc(void **state)
{
	char big[2000];

	(void)state;
	assert_int_equal(parse(">HOLD:Waiting for hold release:0"), MGMT_HOLD);
	assert_int_equal(parse(">FATAL:Cannot open TUN/TAP dev"), MGMT_FATAL);
	assert_string_equal(m.a, "Cannot open TUN/TAP dev");
	assert_int_equal(parse(">UPDOWN:UP"), MGMT_UPDOWN);
	assert_string_equal(m.a, "UP");
	assert_int_equal(parse(">UPDOWN:ENV,foreign_option_1=dhcp-option DNS 10.8.0.1"),
			 MGMT_UPDOWN_ENV);
	assert_string_equal(m.a, "foreign_option_1");
	assert_string_equal(m.b, "dhcp-option DNS 10.8.0.1");
	assert_int_equal(parse(">UPDOWN:ENV,x="), MGMT_UPDOWN_ENV);
	assert_string_equal(m.b, "");
	assert_int_equal(parse(">UPDOWN:ENV,=x"), MGMT_OTHER);
	assert_int_equal(parse(">UPDOWN:ENV,END"), MGMT_UPDOWN_END);
	assert_int_equal(parse(">BYTECOUNT:123,456"), MGMT_BYTECOUNT);
	assert_int_equal(m.n1, 123);
	assert_int_equal(m.n2, 456);
	assert_int_equal(parse(">BYTECOUNT:1x,2"), MGMT_OTHER);
	assert_int_equal(parse(">BYTECOUNT:99999999999999999999,2"), MGMT_OTHER);
	assert_int_equal(parse("SUCCESS: hold release succeeded"), MGMT_SUCCESS);
	assert_int_equal(parse("ERROR: unknown command"), MGMT_ERROR);
	assert_string_equal(m.a, " unknown command");
	assert_int_equal(parse(">INFO:OpenVPN Management Interface Version 5"), MGMT_OTHER);
	assert_int_equal(parse(""), MGMT_OTHER);
	/* oversized fields are dropped, FATAL text is truncated */
	memset(big, 'a', sizeof(big));
	memcpy(big, ">UPDOWN:ENV,x=", 14);
	mgmt_parse(big, sizeof(big), &m);
	assert_int_equal(m.type, MGMT_OTHER);
	memcpy(big, ">FATAL:", 7);
	mgmt_parse(big, sizeof(big), &m);
	assert_int_equal(m.type, MGMT_FATAL);
	assert_int_equal(strlen(m.a), MGMT_FIELD_MAX - 1);
	/* a NUL inside a line */
	mgmt_parse(">STATE:1,CONN\0ECTED,x", 21, &m);
	assert_int_equal(m.type, MGMT_OTHER);
}

static void test_quote(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(mgmt_quote(buf, sizeof(buf), "alice"), 7);
	assert_string_equal(buf, "\"alice\"");
	assert_int_equal(mgmt_quote(buf, sizeof(buf), "p\"w\\ x"), 10);
	assert_string_equal(buf, "\"p\\\"w\\\\ x\"");
	assert_int_equal(mgmt_quote(buf, sizeof(buf), ""), 2);
	assert_string_equal(buf, "\"\"");
	assert_int_equal(mgmt_quote(buf, sizeof(buf), "a\nb"), -1);
	assert_int_equal(mgmt_quote(buf, sizeof(buf), "0123456789abcd"), -1);
	assert_int_equal(mgmt_quote(buf, sizeof(buf), "0123456789abc"), 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state),
		cmocka_unit_test(test_password),
		cmocka_unit_test(test_webauth),
		cmocka_unit_test(test_misc),
		cmocka_unit_test(test_quote),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
