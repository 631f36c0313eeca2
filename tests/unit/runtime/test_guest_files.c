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
static char keys[PATH_MAX + 16];

/* this build's keys file (guest/keys.sh's format) */
static void put_keys(const char *text)
{
	FILE *f = fopen(keys, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char *installed_kernel = MVM_DATADIR "/microvm/" MVM_GUEST_KERNEL_NAME;

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
	/* no record of this build's keys unless a test writes one */
	snprintf(keys, sizeof(keys), "%s/guest-keys", root);
	setenv("MICROVM_GUEST_KEYS", keys, 1);
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

static void test_newest_in_cache_without_keys_says_so(void **state)
{
	char buf[PATH_MAX], want[PATH_MAX + 64], note[PATH_MAX + 256];

	(void)state;
	if (!access(installed_kernel, F_OK))	/* an installed kernel comes before it */
		skip();
	put("kernel/" MVM_GUEST_CACHE_ARCH "aaa/" MVM_GUEST_KERNEL_NAME, 1000);
	put("kernel/" MVM_GUEST_CACHE_ARCH "bbb/" MVM_GUEST_KERNEL_NAME, 2000);	/* built last */
	put("kernel/" MVM_GUEST_CACHE_ARCH "ccc/" MVM_GUEST_KERNEL_NAME, 1500);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf), note,
					     sizeof(note)), 0);
	snprintf(want, sizeof(want), "%s/kernel/" MVM_GUEST_CACHE_ARCH "bbb/" MVM_GUEST_KERNEL_NAME, root);
	assert_string_equal(buf, want);
	/* nothing says this kernel goes with this microvm: the user is told */
	assert_non_null(strstr(note, "not known to match"));
	assert_non_null(strstr(note, want));
	assert_non_null(strstr(note, "make kernel"));
	put("image/" MVM_GUEST_CACHE_ARCH "k1/initramfs.cpio.gz", 1000);
	put("image/" MVM_GUEST_CACHE_ARCH "k1/rootfs.tar.gz", 1000);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_INITRD, buf, sizeof(buf), NULL, 0), 0);
	assert_non_null(strstr(buf, "/image/" MVM_GUEST_CACHE_ARCH "k1/initramfs.cpio.gz"));
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_ROOTFS, buf, sizeof(buf), note,
					     sizeof(note)), 0);
	assert_non_null(strstr(buf, "/image/" MVM_GUEST_CACHE_ARCH "k1/rootfs.tar.gz"));
	assert_non_null(strstr(note, "make image"));
}

static void test_this_builds_entry_over_a_newer_one(void **state)
{
	char buf[PATH_MAX], want[PATH_MAX + 64], note[64];

	(void)state;
	put("kernel/" MVM_GUEST_CACHE_ARCH "0123456789abcdef/" MVM_GUEST_KERNEL_NAME, 1000);	/* this build's */
	put("kernel/" MVM_GUEST_CACHE_ARCH "fedcba9876543210/" MVM_GUEST_KERNEL_NAME, 2000);	/* another tree's, built later */
	put("image/" MVM_GUEST_CACHE_ARCH "00000000000000aa/initramfs.cpio.gz", 1000);
	put("image/" MVM_GUEST_CACHE_ARCH "00000000000000bb/initramfs.cpio.gz", 2000);
	put_keys("kernel 0123456789abcdef\nimage 00000000000000aa\n");
	strcpy(note, "unset");
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf), note,
					     sizeof(note)), 0);
	snprintf(want, sizeof(want), "%s/kernel/" MVM_GUEST_CACHE_ARCH "0123456789abcdef/" MVM_GUEST_KERNEL_NAME, root);
	assert_string_equal(buf, want);
	assert_string_equal(note, "");
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_INITRD, buf, sizeof(buf), note,
					     sizeof(note)), 0);
	snprintf(want, sizeof(want), "%s/image/" MVM_GUEST_CACHE_ARCH "00000000000000aa/initramfs.cpio.gz", root);
	assert_string_equal(buf, want);
	assert_string_equal(note, "");
}

static void test_stale_entry_is_named_stale(void **state)
{
	char buf[PATH_MAX], want[PATH_MAX + 64], note[PATH_MAX + 256];

	(void)state;
	if (!access(installed_kernel, F_OK))	/* an installed kernel comes before it */
		skip();
	/* the sources changed since `make kernel`: this build's key is not built */
	put("kernel/" MVM_GUEST_CACHE_ARCH "fedcba9876543210/" MVM_GUEST_KERNEL_NAME, 2000);
	put_keys("kernel 0123456789abcdef\n");
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf), note,
					     sizeof(note)), 0);
	snprintf(want, sizeof(want), "%s/kernel/" MVM_GUEST_CACHE_ARCH "fedcba9876543210/" MVM_GUEST_KERNEL_NAME, root);
	assert_string_equal(buf, want);
	assert_non_null(strstr(note, "stale"));
	assert_non_null(strstr(note, "0123456789abcdef"));
	assert_non_null(strstr(note, want));
	assert_non_null(strstr(note, "run '" MVM_GUEST_MAKE_KERNEL "'"));
	/* a directory where this build's kernel should be is not taken either */
	snprintf(want, sizeof(want),
		 "mkdir -p '%s/kernel/" MVM_GUEST_CACHE_ARCH "0123456789abcdef/" MVM_GUEST_KERNEL_NAME "'",
		 root);
	assert_int_equal(system(want), 0);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf), note,
					     sizeof(note)), 0);
	assert_non_null(strstr(buf, "/kernel/" MVM_GUEST_CACHE_ARCH "fedcba9876543210/" MVM_GUEST_KERNEL_NAME));
}

static void test_keys_file_parsing(void **state)
{
	char key[17], small[8];

	(void)state;
	assert_int_equal(mvm_guest_key_read(keys, "kernel", key, sizeof(key)), -ENOENT);
	put_keys("kernel 0123456789ABCDEF\n"	/* not lower-case hex */
		 "kernel 0123456789abcde\n"	/* too short */
		 "image ../../etc/passwd00\n"	/* not hex */
		 "kernelx 0123456789abcdef\n"	/* other name */
		 "image 00000000000000aa\n");
	assert_int_equal(mvm_guest_key_read(keys, "kernel", key, sizeof(key)), -ENOENT);
	assert_int_equal(mvm_guest_key_read(keys, "image", key, sizeof(key)), 0);
	assert_string_equal(key, "00000000000000aa");
	assert_int_equal(mvm_guest_key_read(keys, "image", small, sizeof(small)), -ENOENT);
}

static void test_env_overrides_the_cache(void **state)
{
	char buf[PATH_MAX];

	(void)state;
	put("kernel/" MVM_GUEST_CACHE_ARCH "aaa/" MVM_GUEST_KERNEL_NAME, 1000);
	put_keys("kernel 0000000000000aaa\n");
	put("kernel/" MVM_GUEST_CACHE_ARCH "0000000000000aaa/" MVM_GUEST_KERNEL_NAME, 1000);
	setenv("MICROVM_KERNEL", "/somewhere/else/bzImage", 1);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf), NULL, 0), 0);
	assert_string_equal(buf, "/somewhere/else/bzImage");	/* as given, even if missing */
	assert_string_equal(mvm_guest_file_env(MVM_GUEST_KERNEL), "MICROVM_KERNEL");
	/* an empty variable is no override */
	setenv("MICROVM_KERNEL", "", 1);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf), NULL, 0), 0);
	assert_non_null(strstr(buf, "/kernel/" MVM_GUEST_CACHE_ARCH "0000000000000aaa/" MVM_GUEST_KERNEL_NAME));
	unsetenv("MICROVM_KERNEL");
}

static void test_nothing_found(void **state)
{
	char buf[PATH_MAX], small[8];
	const char *installed = installed_kernel;

	(void)state;
	/* an empty cache: the installed kernel if this machine has one, else nothing */
	if (!access(installed, F_OK)) {
		assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf), NULL,
						     0), 0);
		assert_string_equal(buf, installed);
		return;
	}
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf), NULL, 0),
			 -ENOENT);
	/* a path that does not fit is not handed out truncated */
	put("kernel/" MVM_GUEST_CACHE_ARCH "aaa/" MVM_GUEST_KERNEL_NAME, 1000);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, small, sizeof(small), NULL, 0),
			 -ENOENT);
}

static void test_unusable_only_candidate_is_named(void **state)
{
	char buf[PATH_MAX], p[PATH_MAX + 64], cmd[PATH_MAX + 80];

	(void)state;
	if (!access(installed_kernel, F_OK))	/* an installed kernel comes before it */
		skip();
	/* a directory where the kernel should be: handed out, so opening it names it */
	snprintf(p, sizeof(p), "%s/kernel/" MVM_GUEST_CACHE_ARCH "ddd/" MVM_GUEST_KERNEL_NAME, root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", p);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(mvm_guest_file_find(MVM_GUEST_KERNEL, buf, sizeof(buf), NULL, 0), 0);
	assert_string_equal(buf, p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_newest_in_cache_without_keys_says_so, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_this_builds_entry_over_a_newer_one, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stale_entry_is_named_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_file_parsing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_overrides_the_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_only_candidate_is_named, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
