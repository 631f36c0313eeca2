/* SPDX-License-Identifier: MIT */
/* test_guest_mem.c - guest physical address translation refuses every out-of-range access. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/guest_mem.h"

static char ram_a[4096], ram_b[8192];

static void setup_map(struct mvm_gmem *gm)
{
	mvm_gmem_init(gm);
	assert_int_equal(mvm_gmem_add(gm, 0x1000, sizeof(ram_a), ram_a), 0);
	assert_int_equal(mvm_gmem_add(gm, 0x10000, sizeof(ram_b), ram_b), 0);
}

static void test_inside(void **state)
{
	struct mvm_gmem gm;

	(void)state;
	setup_map(&gm);
	assert_ptr_equal(mvm_gmem_ptr(&gm, 0x1000, 4096), ram_a);
	assert_ptr_equal(mvm_gmem_ptr(&gm, 0x1ff0, 16), ram_a + 0xff0);
	assert_ptr_equal(mvm_gmem_ptr(&gm, 0x10010, 1), ram_b + 0x10);
	assert_ptr_equal(mvm_gmem_ptr(&gm, 0x11fff, 0), ram_b + 0x1fff);
}

static void test_outside(void **state)
{
	struct mvm_gmem gm;

	(void)state;
	setup_map(&gm);
	assert_null(mvm_gmem_ptr(&gm, 0, 1));
	assert_null(mvm_gmem_ptr(&gm, 0xfff, 2));		/* starts before */
	assert_null(mvm_gmem_ptr(&gm, 0x1ff0, 17));		/* ends after */
	assert_null(mvm_gmem_ptr(&gm, 0x2000, 0));		/* one past the end */
	assert_null(mvm_gmem_ptr(&gm, 0x1000, 0x10000));	/* spans the gap */
	assert_null(mvm_gmem_ptr(&gm, 0x1800, UINT64_MAX));	/* wraps */
	assert_null(mvm_gmem_ptr(&gm, UINT64_MAX, 2));
	assert_null(mvm_gmem_ptr(&gm, 0x10000, 8193));
}

static void test_add_checks(void **state)
{
	struct mvm_gmem gm;
	char x[16];

	(void)state;
	setup_map(&gm);
	assert_int_equal(mvm_gmem_add(&gm, 0x1800, 16, x), -EINVAL);	/* overlap */
	assert_int_equal(mvm_gmem_add(&gm, 0x0, 0x1001, x), -EINVAL);	/* overlap at edge */
	assert_int_equal(mvm_gmem_add(&gm, 0x3000, 0, x), -EINVAL);
	assert_int_equal(mvm_gmem_add(&gm, UINT64_MAX - 4, 16, x), -EINVAL);
	assert_int_equal(mvm_gmem_add(&gm, 0x3000, 16, NULL), -EINVAL);
	assert_int_equal(mvm_gmem_add(&gm, 0x0, 0x1000, x), 0);		/* adjacent is fine */
	assert_int_equal(mvm_gmem_add(&gm, 0x20000, 16, x), 0);
	assert_int_equal(mvm_gmem_add(&gm, 0x30000, 16, x), -ENOSPC);
	/* Adjacent regions: a range crossing the boundary is still refused. */
	assert_null(mvm_gmem_ptr(&gm, 0xff8, 16));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inside),
		cmocka_unit_test(test_outside),
		cmocka_unit_test(test_add_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
