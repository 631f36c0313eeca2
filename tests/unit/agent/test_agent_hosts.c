// SPDX-License-Identifier: MIT
/* Unit tests for the /etc/hosts lookup (guest/agent/hosts.c). */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "agent.h"

static const char hosts[] =
	"# comment 10.0.0.9 commented\n"
	"127.0.0.1\tlocalhost\n"
	"::1 localhost ip6-localhost   # trailing comment\r\n"
	"10.1.2.3 Intranet.Corp intranet\n"
	"not-an-address intranet\n"
	"\n"
	"   \n"
	"10.1.2.4 intranet";	/* last line without a newline */

static void test_lookup(void **state)
{
	struct sockaddr_storage out[8];
	struct sockaddr_in *in4 = (struct sockaddr_in *)&out[0];
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out[1];
	char buf[64];

	(void)state;
	assert_int_equal(hosts_lookup(hosts, strlen(hosts), "localhost", 80, out, 8), 2);
	assert_int_equal(in4->sin_family, AF_INET);
	assert_int_equal(ntohs(in4->sin_port), 80);
	assert_string_equal(inet_ntop(AF_INET, &in4->sin_addr, buf, sizeof(buf)), "127.0.0.1");
	assert_int_equal(in6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(in6->sin6_port), 80);
	assert_string_equal(inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf)), "::1");

	/* case-insensitive, aliases, file order, bad addresses skipped, no final newline */
	assert_int_equal(hosts_lookup(hosts, strlen(hosts), "INTRANET", 22, out, 8), 2);
	assert_string_equal(inet_ntop(AF_INET, &in4->sin_addr, buf, sizeof(buf)), "10.1.2.3");
	in4 = (struct sockaddr_in *)&out[1];
	assert_string_equal(inet_ntop(AF_INET, &in4->sin_addr, buf, sizeof(buf)), "10.1.2.4");
	assert_int_equal(hosts_lookup(hosts, strlen(hosts), "intranet.corp", 22, out, 8), 1);

	/* capacity respected */
	assert_int_equal(hosts_lookup(hosts, strlen(hosts), "intranet", 22, out, 1), 1);

	/* comments and unknown names */
	assert_int_equal(hosts_lookup(hosts, strlen(hosts), "commented", 1, out, 8), 0);
	assert_int_equal(hosts_lookup(hosts, strlen(hosts), "nosuch", 1, out, 8), 0);
	assert_int_equal(hosts_lookup(hosts, 0, "localhost", 1, out, 8), 0);
	/* a prefix of the text only: the length is honoured */
	assert_int_equal(hosts_lookup(hosts, strlen("# comment 10.0.0.9 commented\n127.0.0.1\t"
						    "localhost\n"), "localhost", 1, out, 8), 1);
}

static void test_long_line_skipped(void **state)
{
	struct sockaddr_storage out[2];
	char text[2048];

	(void)state;
	memset(text, 'x', sizeof(text));
	memcpy(text, "10.0.0.1 ", 9);
	memcpy(text + 1000, " longname\n10.0.0.2 longname\n", 28);
	assert_int_equal(hosts_lookup(text, 1028, "longname", 1, out, 2), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_long_line_skipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
