/* SPDX-License-Identifier: MIT */
/* test_error.c - mvm_last_error() keeps the message per thread. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/error.h"

static void test_set_returns_code(void **state)
{
	(void)state;
	assert_int_equal(mvm_set_error(-ENOENT, "cannot open %s", "vmlinux"), -ENOENT);
	assert_string_equal(mvm_last_error(), "cannot open vmlinux");
}

static void *other_thread(void *arg)
{
	(void)arg;
	mvm_set_error(-EIO, "from the other thread");
	return NULL;
}

static void test_thread_local(void **state)
{
	pthread_t t;

	(void)state;
	mvm_set_error(-EINVAL, "mine");
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	pthread_join(t, NULL);
	assert_string_equal(mvm_last_error(), "mine");
}

static void test_truncates_long_messages(void **state)
{
	char big[2000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mvm_set_error(-E2BIG, "%s", big);
	assert_true(strlen(mvm_last_error()) < sizeof(big));
	assert_true(strlen(mvm_last_error()) > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_returns_code),
		cmocka_unit_test(test_thread_local),
		cmocka_unit_test(test_truncates_long_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
