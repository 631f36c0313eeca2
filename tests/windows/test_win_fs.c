/* SPDX-License-Identifier: MIT */
/*
 * test_win_fs.c - the UTF-8 file helpers of runtime/compat.h (mvm_fs_*), run under Wine
 * (make windows).
 *
 * Every case works in a folder whose name is outside the ANSI code page of any Western
 * system ("Пётр 王", as a user's profile folder could be), made in the temporary folder, and
 * checks with the wide API that the helpers created, opened and removed exactly the files
 * named (not a "???? ?" one).  %LOCALAPPDATA% is this process' own variable, set with
 * SetEnvironmentVariableW().
 */
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "runtime/compat.h"
#include "win_peer.h"

#define NON_ANSI	L"\x041f\x0451\x0442\x0440 \x738b"	/* "Пётр 王" */

static wchar_t base_w[MAX_PATH];	/* TEMP\mvm-fs-PID-Пётр 王 */
static char base[MAX_PATH * 3];		/* the same in UTF-8 */

/** exists_w() - the attributes of the test folder + @tail (wide), or INVALID_FILE_ATTRIBUTES */
static DWORD exists_w(const wchar_t *tail)
{
	wchar_t p[MAX_PATH * 2];

	swprintf(p, MAX_PATH * 2, L"%ls%ls", base_w, tail);
	return GetFileAttributesW(p);
}

static void setup(void)
{
	wchar_t tmp[MAX_PATH];

	GetTempPathW(MAX_PATH, tmp);
	swprintf(base_w, MAX_PATH, L"%lsmvm-fs-%lu-" NON_ANSI, tmp, GetCurrentProcessId());
	CreateDirectoryW(base_w, NULL);
	WideCharToMultiByte(CP_UTF8, 0, base_w, -1, base, sizeof(base), NULL, NULL);
	SetEnvironmentVariableW(L"LOCALAPPDATA", base_w);
}

static void test_app_dir(void)
{
	char out[MAX_PATH * 3], want[MAX_PATH * 3 + 32];

	CHECK(mvm_fs_app_dir(NULL, out, sizeof(out)) == 0);
	snprintf(want, sizeof(want), "%s\\microvm", base);
	CHECK(strcmp(out, want) == 0);
	CHECK(exists_w(L"\\microvm") & FILE_ATTRIBUTE_DIRECTORY);
	/* the sub-folder and its parent, created in one call; again: already there */
	CHECK(mvm_fs_app_dir("state", out, sizeof(out)) == 0);
	CHECK(mvm_fs_app_dir("state", out, sizeof(out)) == 0);
	snprintf(want, sizeof(want), "%s\\microvm\\state", base);
	CHECK(strcmp(out, want) == 0);
	CHECK(exists_w(L"\\microvm\\state") & FILE_ATTRIBUTE_DIRECTORY);
	CHECK(mvm_fs_app_dir("state", out, 8) == -ENAMETOOLONG);
}

static void test_files(void)
{
	char path[MAX_PATH * 3 + 32], buf[16] = "";
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s\\microvm\\up.log", base);
	f = mvm_fs_fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("hello\n", f);
		fclose(f);
	}
	CHECK(exists_w(L"\\microvm\\up.log") != INVALID_FILE_ATTRIBUTES);
	/* O_EXCL on an existing file, as up_write_secret() would meet a stale one */
	snprintf(path, sizeof(path), "%s\\microvm\\up.log", base);
	CHECK(mvm_fs_open(path, O_WRONLY | O_CREAT | O_EXCL, 0600) == -1 && errno == EEXIST);
	fd = mvm_fs_open(path, O_RDONLY | O_NOINHERIT, 0);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(_read(fd, buf, sizeof(buf) - 1) >= 5);
		_close(fd);
	}
	CHECK(strncmp(buf, "hello", 5) == 0);
	CHECK(mvm_fs_unlink(path) == 0);
	CHECK(exists_w(L"\\microvm\\up.log") == INVALID_FILE_ATTRIBUTES);
	CHECK(mvm_fs_unlink(path) == -ENOENT);
	CHECK(mvm_fs_fopen(path, "r") == NULL && errno == ENOENT);
	/* a name in the ANSI code page (Latin-1 "ü") is not UTF-8: refused, not guessed at */
	CHECK(mvm_fs_fopen("C:\\m\xfcller.txt", "w") == NULL && errno == EINVAL);
	CHECK(mvm_fs_mkdir("C:\\m\xfcller") == -EINVAL);
}

static void test_getenv(void)
{
	char out[64];

	SetEnvironmentVariableW(L"MVM_TEST_FS", L"\x738b");
	CHECK(mvm_fs_getenv("MVM_TEST_FS", out, sizeof(out)) == 0);
	CHECK(strcmp(out, "\xe7\x8e\x8b") == 0);
	CHECK(mvm_fs_getenv("MVM_TEST_FS", out, 3) == -ENAMETOOLONG);
	SetEnvironmentVariableW(L"MVM_TEST_FS", L"");
	CHECK(mvm_fs_getenv("MVM_TEST_FS", out, sizeof(out)) == -ENOENT);
	SetEnvironmentVariableW(L"MVM_TEST_FS", NULL);
	CHECK(mvm_fs_getenv("MVM_TEST_FS", out, sizeof(out)) == -ENOENT);
}

static void test_no_localappdata(void)
{
	char out[MAX_PATH * 3];
	wchar_t missing[MAX_PATH * 2];

	out[0] = '\0';
	SetEnvironmentVariableW(L"LOCALAPPDATA", NULL);
	CHECK(mvm_fs_app_dir(NULL, out, sizeof(out)) == -ENOENT);
	CHECK(out[0] == '\0');		/* unset: nothing to name (wsl_app_dir() says so) */
	/* set, to a folder that does not exist: the path that failed is named */
	swprintf(missing, MAX_PATH * 2, L"%ls\\gone\\deeper", base_w);
	SetEnvironmentVariableW(L"LOCALAPPDATA", missing);
	CHECK(mvm_fs_app_dir(NULL, out, sizeof(out)) == -ENOENT);
	CHECK(strstr(out, "\\gone\\deeper\\microvm") != NULL);
	SetEnvironmentVariableW(L"LOCALAPPDATA", base_w);
}

/** cleanup() - remove what the cases made (in the order made) */
static void cleanup(void)
{
	wchar_t p[MAX_PATH * 2];

	swprintf(p, MAX_PATH * 2, L"%ls\\microvm\\state", base_w);
	RemoveDirectoryW(p);
	swprintf(p, MAX_PATH * 2, L"%ls\\microvm", base_w);
	RemoveDirectoryW(p);
	RemoveDirectoryW(base_w);
}

int main(void)
{
	static const struct win_test tests[] = {
		{ "app_dir", test_app_dir },
		{ "files", test_files },
		{ "getenv", test_getenv },
		{ "no_localappdata", test_no_localappdata },
	};
	int rc;

	setup();
	rc = win_run_tests(tests, sizeof(tests) / sizeof(tests[0]));
	cleanup();
	return rc;
}
