// SPDX-License-Identifier: MIT
/* test_init_supervise.c - agent restart back-off and exit policy (guest/init/supervise.c) */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "init.h"

/* Wait statuses as waitpid() reports them. */
#define EXITED(code) (((code) & 0xff) << 8)
#define KILLED(sig) ((sig) & 0x7f)

static void test_doubling_to_cap(void **state)
{
	static const unsigned int want[] = { 250, 500, 1000, 2000, 4000, 8000, 8000, 8000 };
	struct init_backoff b;
	size_t i;

	(void)state;
	init_backoff_init(&b, 250, 8000, 10000);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(init_backoff_next(&b, 5), want[i]);
}

static void test_stable_run_resets(void **state)
{
	struct init_backoff b;

	(void)state;
	init_backoff_init(&b, 100, 5000, 10000);
	assert_int_equal(init_backoff_next(&b, 0), 100);
	assert_int_equal(init_backoff_next(&b, 9999), 200);
	assert_int_equal(init_backoff_next(&b, 50), 400);
	/* ran long enough: healthy, back to the minimum */
	assert_int_equal(init_backoff_next(&b, 10000), 100);
	assert_int_equal(init_backoff_next(&b, 1), 200);
	assert_int_equal(init_backoff_next(&b, UINT64_MAX), 100);
}

static void test_cap_not_power_of_two(void **state)
{
	struct init_backoff b;

	(void)state;
	init_backoff_init(&b, 300, 1000, 10000);
	assert_int_equal(init_backoff_next(&b, 0), 300);
	assert_int_equal(init_backoff_next(&b, 0), 600);
	assert_int_equal(init_backoff_next(&b, 0), 1000);
	assert_int_equal(init_backoff_next(&b, 0), 1000);
}

static void test_degenerate_parameters(void **state)
{
	struct init_backoff b;
	int i;

	(void)state;
	/* max below min is raised to min; min 0 is taken as 1 ms (never a busy loop) */
	init_backoff_init(&b, 500, 100, 1000);
	assert_int_equal(init_backoff_next(&b, 0), 500);
	assert_int_equal(init_backoff_next(&b, 0), 500);
	init_backoff_init(&b, 0, 0, 1000);
	assert_int_equal(init_backoff_next(&b, 0), 1);
	/* no overflow with the largest values the options allow */
	init_backoff_init(&b, 3600000, 3600000, 10000);
	for (i = 0; i < 40; i++)
		assert_int_equal(init_backoff_next(&b, 0), 3600000);
	init_backoff_init(&b, 1, UINT32_MAX, 10000);
	for (i = 0; i < 40; i++)
		assert_true(init_backoff_next(&b, 0) >= 1);
	assert_int_equal(b.cur_ms, UINT32_MAX);
}

static void test_exit_action(void **state)
{
	(void)state;
	assert_int_equal(init_exit_action(EXITED(INIT_EXIT_POWEROFF)), INIT_POWEROFF);
	assert_int_equal(init_exit_action(EXITED(INIT_EXIT_REBOOT)), INIT_REBOOT);
	assert_int_equal(init_exit_action(EXITED(0)), INIT_RESTART);
	assert_int_equal(init_exit_action(EXITED(1)), INIT_RESTART);
	assert_int_equal(init_exit_action(EXITED(127)), INIT_RESTART);
	assert_int_equal(init_exit_action(KILLED(SIGKILL)), INIT_RESTART);
	/* a signal whose number equals the shutdown code is still a crash */
	assert_int_equal(init_exit_action(KILLED(INIT_EXIT_POWEROFF & 0x7f)), INIT_RESTART);
	assert_true(WIFEXITED(EXITED(INIT_EXIT_POWEROFF)));
}

static void test_describe_end(void **state)
{
	char buf[96];

	(void)state;
	assert_string_equal(init_describe_end(KILLED(SIGKILL), 12345, buf, sizeof(buf)),
			    "killed by signal 9 (Killed) after 12.3 s");
	assert_string_equal(init_describe_end(KILLED(SIGSEGV), 80, buf, sizeof(buf)),
			    "killed by signal 11 (Segmentation fault) after 0.0 s");
	assert_string_equal(init_describe_end(EXITED(3), 1999, buf, sizeof(buf)),
			    "exited with status 3 after 1.9 s");
	/* truncated, still terminated */
	init_describe_end(KILLED(SIGKILL), 1, buf, 8);
	assert_string_equal(buf, "killed ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubling_to_cap),
		cmocka_unit_test(test_stable_run_resets),
		cmocka_unit_test(test_cap_not_power_of_two),
		cmocka_unit_test(test_degenerate_parameters),
		cmocka_unit_test(test_exit_action),
		cmocka_unit_test(test_describe_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
