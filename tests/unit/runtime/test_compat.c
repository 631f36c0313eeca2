/* SPDX-License-Identifier: MIT */
/*
 * test_compat.c - runtime/compat.h's portable helpers: mvm_fs_path_tail_as() (the byte-wise
 * basename() that replaces mingw's, which converts through the ANSI code page) with both
 * separator sets, and mvm_fs_access() / mvm_fs_getenv() on POSIX.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/compat.h"

/* path, Windows separators?, its tail */
static const struct { const char *path; int windows; const char *want; } tails[] = {
	{ "C:\\Users\\x\\corp.ovpn", 1, "corp.ovpn" },
	{ "C:/Users/x/corp.ovpn", 1, "corp.ovpn" },
	{ "C:corp.ovpn", 1, "corp.ovpn" },
	{ "corp.ovpn", 1, "corp.ovpn" },
	{ "dir\\sub\\\\", 1, "sub" },
	{ "\\\\server\\share\\a.ovpn", 1, "a.ovpn" },
	/* "Пётр 王\表.ovpn": UTF-8 bytes, whatever the code page; "表" is 0xe8 0xa1 0xa8 and
	 * in Shift-JIS 0x95 0x5c, a trail byte equal to '\\': a byte scan of UTF-8 never splits */
	{ "C:\\Users\\\xd0\x9f\xd1\x91\xd1\x82\xd1\x80 \xe7\x8e\x8b\\\xe8\xa1\xa8.ovpn", 1,
	  "\xe8\xa1\xa8.ovpn" },
	/* not valid UTF-8 (a lone continuation byte, a cut sequence): still just bytes */
	{ "C:\\a\\\x80\xe7\x8e.ovpn", 1, "\x80\xe7\x8e.ovpn" },
	{ "C:\\", 1, "C:" },
	{ "", 1, "" },
	{ "/home/x/corp.ovpn", 0, "corp.ovpn" },
	{ "corp.ovpn", 0, "corp.ovpn" },
	{ "a/b//", 0, "b" },
	/* a backslash and a colon are ordinary name bytes on POSIX */
	{ "/x/a\\b.ovpn", 0, "a\\b.ovpn" },
	{ "C:x", 0, "C:x" },
	{ "/", 0, "" },
};

static void test_tail(void **state)
{
	char buf[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", tails[i].path);
		assert_string_equal(mvm_fs_path_tail_as(buf, tails[i].windows), tails[i].want);
	}
	snprintf(buf, sizeof(buf), "/etc/hosts");
	assert_string_equal(mvm_fs_path_tail(buf), "hosts");	/* POSIX: '/' only */
}

static void test_access_getenv(void **state)
{
	char out[8] = "x";

	(void)state;
	assert_int_equal(mvm_fs_access("/", R_OK), 0);
	assert_int_equal(mvm_fs_access("/nonexistent/mvm-test", R_OK), -1);
	assert_int_equal(errno, ENOENT);
	unsetenv("MVM_TEST_COMPAT");
	assert_int_equal(mvm_fs_getenv("MVM_TEST_COMPAT", out, sizeof(out)), -ENOENT);
	assert_string_equal(out, "");
	setenv("MVM_TEST_COMPAT", "1234567", 1);
	assert_int_equal(mvm_fs_getenv("MVM_TEST_COMPAT", out, sizeof(out)), 0);
	assert_string_equal(out, "1234567");
	setenv("MVM_TEST_COMPAT", "12345678", 1);
	assert_int_equal(mvm_fs_getenv("MVM_TEST_COMPAT", out, sizeof(out)), -ENAMETOOLONG);
	assert_string_equal(out, "");
	unsetenv("MVM_TEST_COMPAT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tail),
		cmocka_unit_test(test_access_getenv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
