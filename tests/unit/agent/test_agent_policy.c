// SPDX-License-Identifier: MIT
/* Unit tests for the inbound proxy's destination policy (guest/agent/policy.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent.h"

/* The verdict for a literal under @pol. */
static enum policy_reason check(const struct policy *pol, const char *text)
{
	struct sockaddr_storage ss;

	assert_int_equal(policy_addr_parse(text, &ss), 0);
	return policy_check(pol, (struct sockaddr *)&ss);
}

static void test_ranges(void **state)
{
	static const struct { const char *addr; enum policy_reason r; } cases[] = {
		{ "127.0.0.1", POLICY_LOOPBACK },	{ "127.255.1.2", POLICY_LOOPBACK },
		{ "::1", POLICY_LOOPBACK },		{ "::ffff:127.0.0.1", POLICY_LOOPBACK },
		{ "::127.0.0.1", POLICY_LOOPBACK },	{ "0.0.0.0", POLICY_UNSPECIFIED },
		{ "0.1.2.3", POLICY_UNSPECIFIED },	{ "::", POLICY_UNSPECIFIED },
		{ "::ffff:0.0.0.0", POLICY_UNSPECIFIED },
		{ "169.254.169.254", POLICY_LINK_LOCAL }, { "fe80::1", POLICY_LINK_LOCAL },
		{ "febf::1", POLICY_LINK_LOCAL },	{ "::ffff:169.254.0.1", POLICY_LINK_LOCAL },
		{ "224.0.0.1", POLICY_MULTICAST },	{ "239.255.255.250", POLICY_MULTICAST },
		{ "255.255.255.255", POLICY_MULTICAST }, { "ff02::1", POLICY_MULTICAST },
		{ "10.8.0.1", POLICY_ALLOW },		{ "192.168.1.1", POLICY_ALLOW },
		{ "8.8.8.8", POLICY_ALLOW },		{ "2001:db8::1", POLICY_ALLOW },
		{ "fec0::1", POLICY_ALLOW },		{ "::ffff:10.8.0.1", POLICY_ALLOW },
		{ "128.0.0.1", POLICY_ALLOW },		{ "126.255.255.255", POLICY_ALLOW },
		{ "223.255.255.255", POLICY_ALLOW },	{ "fec0::2", POLICY_ALLOW },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum policy_reason r = check(NULL, cases[i].addr);

		if (r != cases[i].r)
			fail_msg("%s: %s, expected %s", cases[i].addr, policy_reason_text(r),
				 policy_reason_text(cases[i].r));
	}
}

static void test_slirp_and_exact(void **state)
{
	struct policy pol;
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	(void)state;
	policy_init(&pol);
	assert_int_equal(check(&pol, "10.0.2.2"), POLICY_GATEWAY);
	assert_int_equal(check(&pol, "10.0.2.3"), POLICY_GATEWAY);
	assert_int_equal(check(&pol, "::ffff:10.0.2.2"), POLICY_GATEWAY);
	assert_int_equal(check(&pol, "fec0::2"), POLICY_GATEWAY);
	assert_int_equal(check(&pol, "fec0::3"), POLICY_GATEWAY);
	assert_int_equal(check(&pol, "10.0.2.4"), POLICY_ALLOW);
	assert_int_equal(check(&pol, "10.0.2.15"), POLICY_ALLOW);
	/* the guest's own addresses, as proxy.c adds them from getifaddrs() */
	assert_int_equal(policy_add_text(&pol, "10.0.2.15", POLICY_LOCAL), 0);
	assert_int_equal(policy_add_text(&pol, "fe80::5054:ff:fe12:3456%eth0", POLICY_LOCAL), 0);
	inet_pton(AF_INET6, "2001:db8::15", &sin6.sin6_addr);
	assert_int_equal(policy_add(&pol, (struct sockaddr *)&sin6, POLICY_LOCAL), 0);
	assert_int_equal(check(&pol, "10.0.2.15"), POLICY_LOCAL);
	assert_int_equal(check(&pol, "::ffff:10.0.2.15"), POLICY_LOCAL);
	assert_int_equal(check(&pol, "2001:db8::15"), POLICY_LOCAL);
	assert_int_equal(check(&pol, "2001:db8::16"), POLICY_ALLOW);
	assert_int_equal(policy_add_text(&pol, "not-an-address", POLICY_LOCAL), -EINVAL);
	/* a full table says so */
	while (pol.n < POLICY_ADDR_MAX)
		assert_int_equal(policy_add_text(&pol, "192.0.2.1", POLICY_LOCAL), 0);
	assert_int_equal(policy_add_text(&pol, "192.0.2.2", POLICY_LOCAL), -ENOSPC);
	/* a family other than IP is never allowed */
	{
		struct sockaddr sa = { .sa_family = AF_UNIX };

		assert_int_equal(policy_check(&pol, &sa), POLICY_UNSPECIFIED);
		assert_int_equal(policy_add(&pol, &sa, POLICY_LOCAL), -EAFNOSUPPORT);
	}
}

static void test_resolv_conf(void **state)
{
	static const char text[] =
		"# generated\n"
		"nameserver 192.168.7.53\n"
		"  nameserver\t2001:db8::53\n"
		"search example\n"
		"nameserver garbage\n"
		"options timeout:1\n"
		"nameserver 10.9.9.9";		/* no final newline */
	struct policy pol;

	(void)state;
	memset(&pol, 0, sizeof(pol));
	assert_int_equal(policy_parse_resolv(&pol, text, sizeof(text) - 1), 3);
	assert_int_equal(check(&pol, "192.168.7.53"), POLICY_GATEWAY);
	assert_int_equal(check(&pol, "2001:db8::53"), POLICY_GATEWAY);
	assert_int_equal(check(&pol, "10.9.9.9"), POLICY_GATEWAY);
	assert_int_equal(check(&pol, "192.168.7.54"), POLICY_ALLOW);
}

static void test_proc_net_route(void **state)
{
	/* default via 10.0.2.2 on eth0, a host route via a gateway, a link route */
	static const char text[] =
		"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
		"eth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
		"eth0\t0100080A\t0302000A\t0007\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n"
		"eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
		"tun0\t00000000\t0101080A\t0001\t0\t0\t0\t00000000\t0\t0\t0\n";
	struct policy pol;

	(void)state;
	memset(&pol, 0, sizeof(pol));
	assert_int_equal(policy_parse_routes(&pol, text, sizeof(text) - 1), 1);
	assert_int_equal(check(&pol, "10.0.2.2"), POLICY_GATEWAY);
	assert_int_equal(check(&pol, "10.0.2.3"), POLICY_ALLOW);	/* not a default route */
	assert_int_equal(check(&pol, "10.8.1.1"), POLICY_ALLOW);	/* no RTF_GATEWAY flag */
	assert_int_equal(policy_parse_routes(&pol, "", 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_slirp_and_exact),
		cmocka_unit_test(test_resolv_conf),
		cmocka_unit_test(test_proc_net_route),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
