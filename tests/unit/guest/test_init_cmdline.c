// SPDX-License-Identifier: MIT
/* test_init_cmdline.c - microvm-init's kernel command line options (guest/init/cmdline.c) */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "init.h"

struct reports {
	int n;
	char last[256];
};

static void collect(void *ctx, const char *msg)
{
	struct reports *r = ctx;

	r->n++;
	strncpy(r->last, msg, sizeof(r->last) - 1);
}

static const char *ip(struct in_addr a)
{
	static char buf[INET_ADDRSTRLEN];

	return inet_ntop(AF_INET, &a, buf, sizeof(buf));
}

static void test_defaults(void **state)
{
	struct init_opts o;

	(void)state;
	init_opts_default(&o);
	assert_int_equal(o.agent, INIT_AGENT_VSOCK);
	assert_true(o.net);
	assert_string_equal(o.ifname, "eth0");
	assert_string_equal(ip(o.addr), "10.0.2.15");
	assert_int_equal(o.prefix, 24);
	assert_string_equal(ip(o.gw), "10.0.2.2");
	assert_string_equal(ip(o.dns), "10.0.2.3");
	assert_string_equal(o.listen, "");
	assert_int_equal(o.time, 0);
}

static void test_real_cmdline(void **state)
{
	struct reports r = { 0 };
	struct init_opts o;

	(void)state;
	init_opts_default(&o);
	assert_int_equal(init_cmdline_parse(&o,
		"console=ttyS0 reboot=t panic=-1 microvm.agent=tcp microvm.listen=0.0.0.0:1025 "
		"virtio_mmio.device=4K@0xd0000000:5 microvm.ip=192.168.7.2/16 microvm.gw=192.168.0.1 "
		"microvm.dns=1.1.1.1 microvm.time=1800000000 microvm.debug=1 "
		"microvm.backoff_min_ms=100 microvm.backoff_max_ms=2000 microvm.ifname=enp0s1\n",
		collect, &r), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(o.agent, INIT_AGENT_TCP);
	assert_string_equal(o.listen, "0.0.0.0:1025");
	assert_string_equal(ip(o.addr), "192.168.7.2");
	assert_int_equal(o.prefix, 16);
	assert_string_equal(ip(o.gw), "192.168.0.1");
	assert_string_equal(ip(o.dns), "1.1.1.1");
	assert_int_equal(o.time, 1800000000);
	assert_true(o.debug);
	assert_int_equal(o.backoff_min_ms, 100);
	assert_int_equal(o.backoff_max_ms, 2000);
	assert_string_equal(o.ifname, "enp0s1");
}

static void test_quotes_and_blanks(void **state)
{
	struct init_opts o;

	(void)state;
	init_opts_default(&o);
	assert_int_equal(init_cmdline_parse(&o, "\t  foo=\"a microvm.agent=tcp b\"   "
					     "microvm.listen=\"[::]:1025\"  ", NULL, NULL), 0);
	/* the quoted microvm.agent=tcp belongs to foo's value */
	assert_int_equal(o.agent, INIT_AGENT_VSOCK);
	assert_string_equal(o.listen, "[::]:1025");
	assert_int_equal(init_cmdline_parse(&o, "", NULL, NULL), 0);
	assert_int_equal(init_cmdline_parse(&o, "   ", NULL, NULL), 0);
	/* an unterminated quote runs to the end of the line */
	assert_int_equal(init_cmdline_parse(&o, "microvm.agent=\"none", NULL, NULL), 0);
	assert_int_equal(o.agent, INIT_AGENT_NONE);
}

static void test_last_wins(void **state)
{
	struct init_opts o;

	(void)state;
	init_opts_default(&o);
	init_cmdline_parse(&o, "microvm.agent=tcp microvm.agent=vsock", NULL, NULL);
	assert_int_equal(o.agent, INIT_AGENT_VSOCK);
	init_cmdline_parse(&o, "microvm.net=none", NULL, NULL);
	assert_false(o.net);
	init_cmdline_parse(&o, "microvm.net=static", NULL, NULL);
	assert_true(o.net);
}

static void test_bad_values_keep_defaults(void **state)
{
	static const char *const bad[] = {
		"microvm.agent=udp", "microvm.agent", "microvm.ip=10.0.2", "microvm.ip=10.0.2.15/33",
		"microvm.ip=10.0.2.15/", "microvm.ip=10.0.2.15/2x", "microvm.gw=10.0.2.2/24",
		"microvm.dns=", "microvm.time=-5", "microvm.time=99999999999999999999999",
		"microvm.backoff_min_ms=0", "microvm.backoff_max_ms=3600001", "microvm.debug=yes",
		"microvm.ifname=", "microvm.ifname=averyveryverylongname", "microvm.ifname=a/b",
		"microvm.net=dhcp",
	};
	struct init_opts o, def;
	size_t i;

	(void)state;
	init_opts_default(&def);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct reports r = { 0 };

		init_opts_default(&o);
		assert_int_equal(init_cmdline_parse(&o, bad[i], collect, &r), 1);
		assert_int_equal(r.n, 1);
		assert_non_null(strstr(r.last, "bad value"));
		assert_memory_equal(&o, &def, sizeof(o));
	}
}

static void test_unknown_and_foreign(void **state)
{
	struct reports r = { 0 };
	struct init_opts o, def;

	(void)state;
	init_opts_default(&o);
	init_opts_default(&def);
	assert_int_equal(init_cmdline_parse(&o, "microvm.frobnicate=1 microvmagent=tcp "
					     "xmicrovm.agent=tcp microvm.=1", collect, &r), 2);
	assert_int_equal(r.n, 2);
	assert_non_null(strstr(r.last, "unknown option"));
	assert_memory_equal(&o, &def, sizeof(o));
}

static void test_overlong(void **state)
{
	char line[600];
	struct reports r = { 0 };
	struct init_opts o;

	(void)state;
	init_opts_default(&o);
	/* a value longer than the buffer: reported, not truncated into place */
	strcpy(line, "microvm.listen=");
	memset(line + strlen(line), '1', 200);
	line[15 + 200] = '\0';
	strcat(line, " microvm.agent=tcp");
	assert_int_equal(init_cmdline_parse(&o, line, collect, &r), 1);
	assert_non_null(strstr(r.last, "over-long"));
	assert_string_equal(o.listen, "");
	assert_int_equal(o.agent, INIT_AGENT_TCP);
	/* a key longer than the buffer */
	memset(line, 'k', 300);
	memcpy(line, "microvm.", 8);
	strcpy(line + 300, "=1");
	r.n = 0;
	assert_int_equal(init_cmdline_parse(&o, line, collect, &r), 1);
	/* the longest value that fits */
	memset(line, 0, sizeof(line));
	strcpy(line, "microvm.listen=");
	memset(line + 15, 'a', INIT_VALUE_MAX - 1);
	assert_int_equal(init_cmdline_parse(&o, line, NULL, NULL), 0);
	assert_int_equal(strlen(o.listen), INIT_VALUE_MAX - 1);
}

static void test_agent_argv(void **state)
{
	const char *argv[8];
	struct init_opts o;

	(void)state;
	init_opts_default(&o);
	assert_int_equal(init_agent_argv(&o, argv, 8), 3);
	assert_string_equal(argv[0], INIT_AGENT_PATH);
	assert_string_equal(argv[1], "--transport");
	assert_string_equal(argv[2], "vsock");
	assert_null(argv[3]);
	init_cmdline_parse(&o, "microvm.agent=tcp microvm.listen=10.0.2.15:1025", NULL, NULL);
	assert_int_equal(init_agent_argv(&o, argv, 8), 7);
	assert_string_equal(argv[2], "tcp");
	assert_string_equal(argv[3], "--listen");
	assert_string_equal(argv[4], "10.0.2.15:1025");
	/* over TCP the agent needs the host's secret */
	assert_string_equal(argv[5], "--auth-secret-file");
	assert_string_equal(argv[6], INIT_AGENT_SECRET);
	assert_null(argv[7]);
	assert_int_equal(init_agent_argv(&o, argv, 7), -ENOSPC);
	o.agent = INIT_AGENT_NONE;
	assert_int_equal(init_agent_argv(&o, argv, 8), -EINVAL);
}

static void test_finish_listen(void **state)
{
	struct init_opts o;

	(void)state;
	/* TCP agent, NIC configured: listen on the guest address (reachable by hostfwd) */
	init_opts_default(&o);
	init_cmdline_parse(&o, "microvm.agent=tcp microvm.ip=10.0.2.99/24", NULL, NULL);
	init_opts_finish(&o);
	assert_string_equal(o.listen, "10.0.2.99");
	/* namespace backend: no NIC set up, the agent's own default (loopback) */
	init_opts_default(&o);
	init_cmdline_parse(&o, "microvm.agent=tcp microvm.net=none", NULL, NULL);
	init_opts_finish(&o);
	assert_string_equal(o.listen, "");
	/* explicit wins; vsock never gets a TCP address */
	init_opts_default(&o);
	init_cmdline_parse(&o, "microvm.agent=tcp microvm.listen=0.0.0.0", NULL, NULL);
	init_opts_finish(&o);
	assert_string_equal(o.listen, "0.0.0.0");
	init_opts_default(&o);
	init_opts_finish(&o);
	assert_string_equal(o.listen, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_real_cmdline),
		cmocka_unit_test(test_quotes_and_blanks),
		cmocka_unit_test(test_last_wins),
		cmocka_unit_test(test_bad_values_keep_defaults),
		cmocka_unit_test(test_unknown_and_foreign),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_agent_argv),
		cmocka_unit_test(test_finish_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
