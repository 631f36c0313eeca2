// SPDX-License-Identifier: MIT
/* Unit tests for profile names and the profile store (guest/agent/profiles.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent.h"

static void test_names(void **state)
{
	char n64[65], n65[66];

	(void)state;
	memset(n64, 'a', 64);
	n64[64] = '\0';
	memset(n65, 'a', 65);
	n65[65] = '\0';
	assert_true(profile_name_valid("corp.ovpn"));
	assert_true(profile_name_valid("A-b_c.9"));
	assert_true(profile_name_valid("a"));
	assert_true(profile_name_valid("a.."));
	assert_true(profile_name_valid(n64));
	assert_false(profile_name_valid(n65));
	assert_false(profile_name_valid(NULL));
	assert_false(profile_name_valid(""));
	assert_false(profile_name_valid("."));
	assert_false(profile_name_valid(".."));
	assert_false(profile_name_valid(".hidden"));
	assert_false(profile_name_valid("../x"));
	assert_false(profile_name_valid("a/b"));
	assert_false(profile_name_valid("/abs"));
	assert_false(profile_name_valid("a b"));
	assert_false(profile_name_valid("a\\b"));
	assert_false(profile_name_valid("a\nb"));
	assert_false(profile_name_valid("\xc3\xa9"));
}

static void test_store(void **state)
{
	char dir[] = "/tmp/agent-profiles-XXXXXX", path[128], buf[32];
	char **names;
	size_t n;
	FILE *f;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(profile_store(dir, "b.ovpn", "two", 3), 0);
	assert_int_equal(profile_store(dir, "a.ovpn", "one", 3), 0);
	assert_int_equal(profile_store(dir, "a.ovpn", "uno", 3), 0);
	assert_int_equal(profile_store(dir, "../x", "bad", 3), -EINVAL);
	snprintf(path, sizeof(path), "%s/.junk", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(profile_list(dir, &names, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "a.ovpn");
	assert_string_equal(names[1], "b.ovpn");
	profile_list_free(names, n);
	assert_true(profile_exists(dir, "a.ovpn"));
	assert_false(profile_exists(dir, "c.ovpn"));
	assert_false(profile_exists(dir, ".junk"));
	snprintf(path, sizeof(path), "%s/a.ovpn", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, sizeof(buf), f), 3);
	fclose(f);
	assert_memory_equal(buf, "uno", 3);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	unlink(path);
	snprintf(path, sizeof(path), "%s/b.ovpn", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/.junk", dir);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(profile_list("/nonexistent-agent-dir", &names, &n), -ENOENT);
}

/* The store's limits: count (replacing does not count twice) and total size. */
static void test_room(void **state)
{
	char dir[] = "/tmp/agent-profiles-XXXXXX", err[128] = "", name[16], path[128];

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(profile_check_room(dir, "a", 10, 3, 100, err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(profile_store(dir, name, "0123456789", 10), 0);
	}
	/* a fourth profile is refused, with the limit in the message */
	assert_int_equal(profile_check_room(dir, "new", 1, 3, 100, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "too many profiles (at most 3)"));
	/* replacing one is fine, within the total: 20 + 80 = 100 */
	assert_int_equal(profile_check_room(dir, "p1", 80, 3, 100, err, sizeof(err)), 0);
	/* but not past it: 20 + 81 */
	err[0] = '\0';
	assert_int_equal(profile_check_room(dir, "p1", 81, 3, 100, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "profile store full"));
	/* a new one within count but past the total */
	assert_int_equal(profile_check_room(dir, "new", 71, 4, 100, err, sizeof(err)), -ENOSPC);
	assert_int_equal(profile_check_room(dir, "new", 70, 4, 100, err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/p%d", dir, i);
		unlink(path);
	}
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(profile_check_room("/nonexistent-agent-dir", "a", 1, 3, 100, err,
					    sizeof(err)), -ENOENT);
}

/* "corp" finds "corp.ovpn" and back; the exact name wins; a miss lists what is stored */
static void test_resolve(void **state)
{
	char dir[] = "/tmp/agent-resolve-XXXXXX", out[AGENT_PROFILE_NAME_MAX + 1], err[512];
	char path[128], n60[61], n64[65];
	const char *files[] = { "corp.ovpn", "home", "both", "both.ovpn" };
	size_t i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	profile_describe_missing(dir, "corp", err, sizeof(err));
	assert_string_equal(err, "no such profile 'corp' (no profile stored yet)");
	for (i = 0; i < 4; i++)
		assert_int_equal(profile_store(dir, files[i], "x", 1), 0);
	assert_int_equal(profile_resolve(dir, "corp", out, sizeof(out)), 0);
	assert_string_equal(out, "corp.ovpn");
	assert_int_equal(profile_resolve(dir, "corp.ovpn", out, sizeof(out)), 0);
	assert_string_equal(out, "corp.ovpn");
	assert_int_equal(profile_resolve(dir, "home.ovpn", out, sizeof(out)), 0);
	assert_string_equal(out, "home");
	assert_int_equal(profile_resolve(dir, "both", out, sizeof(out)), 0);
	assert_string_equal(out, "both");
	assert_int_equal(profile_resolve(dir, "both.ovpn", out, sizeof(out)), 0);
	assert_string_equal(out, "both.ovpn");
	assert_int_equal(profile_resolve(dir, "corp.conf", out, sizeof(out)), -ENOENT);
	assert_int_equal(profile_resolve(dir, ".ovpn", out, sizeof(out)), -EINVAL);
	assert_int_equal(profile_resolve(dir, "../corp", out, sizeof(out)), -EINVAL);
	assert_int_equal(profile_resolve(dir, "nope", out, sizeof(out)), -ENOENT);
	/* a 60-character name plus ".ovpn" is too long to be stored: simply not found */
	memset(n60, 'a', 60);
	n60[60] = '\0';
	assert_int_equal(profile_resolve(dir, n60, out, sizeof(out)), -ENOENT);
	profile_describe_missing(dir, "nope", err, sizeof(err));
	assert_string_equal(err, "no such profile 'nope' (stored: both, both.ovpn, corp.ovpn, "
			    "home)");
	/* a list longer than the buffer is cut at a name and says so */
	memset(n64, 'z', 64);
	n64[64] = '\0';
	assert_int_equal(profile_store(dir, n64, "x", 1), 0);
	profile_describe_missing(dir, "nope", err, 80);
	assert_true(strlen(err) < 80);
	assert_non_null(strstr(err, "stored: both, both.ovpn, corp.ovpn, home, ...)"));
	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		assert_int_equal(unlink(path), 0);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, n64);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_room),
		cmocka_unit_test(test_resolve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
