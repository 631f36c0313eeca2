/* SPDX-License-Identifier: MIT */
/* test_guest_files.c - where the default guest kernel, initramfs and rootfs are found. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/guest_files.h"
#include "runtime/mvm_paths.h"

static char root[PATH_MAX];

/* a file @rel under the temporary cache, with mtime @t */
static void put(const char *rel, time_t t)
{
	char p[PATH_MAX + 64], cmd[2 * PATH_MAX + 64];
	struct timeval tv[2] = { { t, 0 }, { t, 0 } };
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", p);
	assert_int_equal(system(cmd), 0);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("x", f);
	fclose(f);
	assert_int_equal(utimes(p, tv), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/mvm-guest-files-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	setenv("MICROVM_CACHE", root, 1);
	unsetenv("MICROVM_KERNEL");
	unsetenv("MICROVM_INITRD");
	unsetenv("MICROVM_ROOTFS");
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) ? -1 : 0;
}

static void test_newest_in_cache(void **state)
{
	char buf[PATH_MAX], want[PATH_MAX + 64];

	(void)state;
	put("kernel/aaa/vmlinux", 1000);
	put("kernel/bbb/vmlinux", 2000);	/* built last */
	put("kernel/ccc/vmlinux", 1500);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/kernel/bbb/vmlinux", root);
	assert_string_equal(buf, want);
	put("image/k1/initramfs.cpio.gz", 1000);
	put("image/k1/rootfs.tar.gz", 1000);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_INITRD, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "/image/k1/initramfs.cpio.gz"));
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_ROOTFS, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "/image/k1/rootfs.tar.gz"));
}

static void test_env_overrides_the_cache(void **state)
{
	char buf[PATH_MAX];

	(void)state;
	put("kernel/aaa/vmlinux", 1000);
	setenv("MICROVM_KERNEL", "/somewhere/else/bzImage", 1);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/somewhere/else/bzImage");	/* as given, even if missing */
	assert_string_equal(mvm_guest_file_env(MVM_GUEST_KERNEL), "MICROVM_KERNEL");
	/* an empty variable is no override */
	setenv("MICROVM_KERNEL", "", 1);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "/kernel/aaa/vmlinux"));
	unsetenv("MICROVM_KERNEL");
}

static void test_nothing_found(void **state)
{
	char buf[PATH_MAX], small[8];
	const char *installed = MVM_DATADIR "/microvm/vmlinux";

	(void)state;
	/* an empty cache: the installed kernel if this machine has one, else nothing */
	if (!access(installed, F_OK)) {
		assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf)), 0);
		assert_string_equal(buf, installed);
	} else {
		assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf)),
				 -ENOENT);
	}
	/* a path that does not fit is not handed out truncated */
	put("kernel/aaa/vmlinux", 1000);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, small, sizeof(small)), -ENOENT);
}

static void test_unusable_only_candidate_is_named(void **state)
{
	char buf[PATH_MAX], p[PATH_MAX + 64], cmd[PATH_MAX + 80];

	(void)state;
	/* a directory where the kernel should be: handed out, so opening it names it */
	snprintf(p, sizeof(p), "%s/kernel/ddd/vmlinux", root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", p);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_newest_in_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_overrides_the_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_only_candidate_is_named, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
