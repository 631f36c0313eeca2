// SPDX-License-Identifier: MIT
/* Unit tests for the inbound proxy handshake parser (guest/agent/handshake.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent.h"

static void test_complete(void **state)
{
	const uint8_t hs[] = "\x0b" "example.com" "\x00\x16" "extra";
	char host[HS_HOST_MAX + 1];
	uint16_t port;

	(void)state;
	assert_int_equal(hs_parse(hs, sizeof(hs) - 1, host, &port), 14);
	assert_string_equal(host, "example.com");
	assert_int_equal(port, 22);
	/* every prefix needs more */
	for (size_t i = 0; i < 14; i++)
		assert_int_equal(hs_parse(hs, i, host, &port), 0);
}

static void test_literals(void **state)
{
	const uint8_t v6[] = "\x03::1\x1f\x90";
	const uint8_t v4[] = "\x08" "10.8.0.1" "\xff\xff";
	char host[HS_HOST_MAX + 1];
	uint16_t port;

	(void)state;
	assert_int_equal(hs_parse(v6, 6, host, &port), 6);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 8080);
	assert_int_equal(hs_parse(v4, 11, host, &port), 11);
	assert_int_equal(port, 65535);
}

static void test_longest(void **state)
{
	uint8_t hs[HS_MAX];
	char host[HS_HOST_MAX + 1];
	uint16_t port;

	(void)state;
	hs[0] = 255;
	memset(hs + 1, 'a', 255);
	hs[256] = 1;
	hs[257] = 0;
	assert_int_equal(hs_parse(hs, sizeof(hs), host, &port), HS_MAX);
	assert_int_equal(strlen(host), 255);
	assert_int_equal(port, 256);
}

static void test_malformed(void **state)
{
	char host[HS_HOST_MAX + 1];
	uint16_t port;

	(void)state;
	assert_int_equal(hs_parse((const uint8_t *)"\x00", 1, host, &port), -EINVAL);
	assert_int_equal(hs_parse((const uint8_t *)"\x01" "a\x00\x00", 4, host, &port),
			 -EINVAL);
	assert_int_equal(hs_parse((const uint8_t *)"\x03" "a/b\x00\x01", 6, host, &port),
			 -EINVAL);
	assert_int_equal(hs_parse((const uint8_t *)"\x03" "a\x00" "b\x00\x01", 6, host, &port),
			 -EINVAL);
	/* a bad character is refused before the rest arrives */
	assert_int_equal(hs_parse((const uint8_t *)"\x10 ", 2, host, &port), -EINVAL);
	assert_int_equal(hs_parse((const uint8_t *)"", 0, host, &port), 0);
}

static void test_status(void **state)
{
	(void)state;
	assert_int_equal(hs_status_from_errno(ECONNREFUSED), 0x05);
	assert_int_equal(hs_status_from_errno(ENETUNREACH), 0x03);
	assert_int_equal(hs_status_from_errno(EHOSTUNREACH), 0x04);
	assert_int_equal(hs_status_from_errno(ETIMEDOUT), 0x06);
	assert_int_equal(hs_status_from_errno(EACCES), 0x01);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_complete),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_longest),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
