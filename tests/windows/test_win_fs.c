/* SPDX-License-Identifier: MIT */
/*
 * test_win_fs.c - the UTF-8 file helpers of runtime/compat.h (mvm_fs_*), run under Wine
 * (make windows).
 *
 * Every case works in a folder whose name is outside the ANSI code page of any Western
 * system ("Пётр 王", as a user's profile folder could be), made in the temporary folder, and
 * checks with the wide API that the helpers created, opened and removed exactly the files
 * named (not a "???? ?" one).  %LOCALAPPDATA% is this process' own variable, set with
 * SetEnvironmentVariableW().  test-windows.sh runs it twice: in the default code page (1252)
 * and in 932 (Japanese; MVM_TEST_ACP=932 makes the run check that it is), where the bytes
 * of a UTF-8 name read as other characters.
 */
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "runtime/compat.h"

#include <aclapi.h>	/* after compat.h: winsock2.h before windows.h */
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

/** is_dir_w() - does the test folder + @tail exist as a folder? */
static int is_dir_w(const wchar_t *tail)
{
	DWORD a = exists_w(tail);

	/* INVALID_FILE_ATTRIBUTES has every bit set, FILE_ATTRIBUTE_DIRECTORY too */
	return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

/** setup() - make the test folder and point LOCALAPPDATA at it; Return: 0 or -1. */
static int setup(void)
{
	wchar_t tmp[MAX_PATH];
	DWORD n = GetTempPathW(MAX_PATH, tmp);

	if (!n || n >= MAX_PATH ||
	    swprintf(base_w, MAX_PATH, L"%lsmvm-fs-%lu-" NON_ANSI, tmp,
		     GetCurrentProcessId()) < 0 ||
	    !CreateDirectoryW(base_w, NULL) ||
	    !WideCharToMultiByte(CP_UTF8, 0, base_w, -1, base, sizeof(base), NULL, NULL) ||
	    !SetEnvironmentVariableW(L"LOCALAPPDATA", base_w))
		return -1;
	return 0;
}

static void test_app_dir(void)
{
	char out[MAX_PATH * 3], want[MAX_PATH * 3 + 32];

	CHECK(mvm_fs_app_dir(NULL, out, sizeof(out)) == 0);
	snprintf(want, sizeof(want), "%s\\microvm", base);
	CHECK(strcmp(out, want) == 0);
	CHECK(is_dir_w(L"\\microvm"));
	/* the sub-folder and its parent, created in one call; again: already there */
	CHECK(mvm_fs_app_dir("state", out, sizeof(out)) == 0);
	CHECK(mvm_fs_app_dir("state", out, sizeof(out)) == 0);
	snprintf(want, sizeof(want), "%s\\microvm\\state", base);
	CHECK(strcmp(out, want) == 0);
	CHECK(is_dir_w(L"\\microvm\\state"));
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
	fd = mvm_fs_open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd == -1 && errno == EEXIST);
	if (fd >= 0)
		_close(fd);
	/* readable through the wide API; gone: ENOENT, not an ANSI "????" lookup */
	CHECK(mvm_fs_access(path, R_OK) == 0);
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
	CHECK(mvm_fs_access(path, R_OK) == -1 && errno == ENOENT);
	/* a name in the ANSI code page (Latin-1 "ü") is not UTF-8: refused, not guessed at
	 * (in the test folder: a helper that did guess leaves its file there, not in C:\) */
	snprintf(path, sizeof(path), "%s\\m\xfcller.txt", base);
	f = mvm_fs_fopen(path, "w");
	CHECK(f == NULL && errno == EINVAL);
	if (f)
		fclose(f);
	CHECK(mvm_fs_access(path, F_OK) == -1 && errno == EINVAL);
	snprintf(path, sizeof(path), "%s\\m\xfcller", base);
	CHECK(mvm_fs_mkdir(path) == -EINVAL);
}

/*
 * The byte-wise tail that replaced mingw's basename(), on names that break that one: UTF-8
 * whose bytes the ANSI code page reads otherwise ("表" is 0xe8 0xa1 0xa8), and bytes that are
 * not UTF-8 at all (mingw's basename() got -1 from mbstowcs() and overflowed).
 */
static void test_path_tail(void)
{
	const char *acp = getenv("MVM_TEST_ACP");
	char p[64];

	/* test-windows.sh runs this once more under code page 932: make sure it is in force */
	if (acp)
		CHECK(GetACP() == (UINT)atoi(acp));

	snprintf(p, sizeof(p), "C:\\Users\\\xd0\x9f\xd1\x91\\\xe8\xa1\xa8.ovpn");
	CHECK(strcmp(mvm_fs_path_tail(p), "\xe8\xa1\xa8.ovpn") == 0);
	snprintf(p, sizeof(p), "C:\\a\\\x80\xe7.ovpn");
	CHECK(strcmp(mvm_fs_path_tail(p), "\x80\xe7.ovpn") == 0);
	snprintf(p, sizeof(p), "C:corp.ovpn");
	CHECK(strcmp(mvm_fs_path_tail(p), "corp.ovpn") == 0);
	snprintf(p, sizeof(p), "a/b\\c.ovpn\\");
	CHECK(strcmp(mvm_fs_path_tail(p), "c.ovpn") == 0);
}

/**
 * only_user_and_system() - does @path's DACL have exactly two entries, explicit (none
 * inherited from the parent), allowing the process' user and SYSTEM?
 *
 * Windows also reports SE_DACL_PROTECTED; Wine (8.0) keeps the entries but not that bit
 * (control 0x8004), so it is printed, not checked.
 */
static int only_user_and_system(const char *path)
{
	union { TOKEN_USER tu; char buf[256]; } tu;
	BYTE sys[SECURITY_MAX_SID_SIZE];
	DWORD len = sizeof(sys), i;
	PSECURITY_DESCRIPTOR sd = NULL;
	SECURITY_DESCRIPTOR_CONTROL ctl = 0;
	DWORD rev;
	PACL dacl = NULL;
	HANDLE tok;
	wchar_t *w = mvm_fs_widen(path);
	int ok = 0, user = 0, system = 0;

	if (!w || !OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		goto out;
	if (!GetTokenInformation(tok, TokenUser, &tu, sizeof(tu), &len) ||
	    !CreateWellKnownSid(WinLocalSystemSid, NULL, sys, &(DWORD){ sizeof(sys) })) {
		CloseHandle(tok);
		goto out;
	}
	CloseHandle(tok);
	if (GetNamedSecurityInfoW(w, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL,
				  &dacl, NULL, &sd) != ERROR_SUCCESS || !dacl ||
	    !GetSecurityDescriptorControl(sd, &ctl, &rev))
		goto out;
	for (i = 0; i < dacl->AceCount; i++) {
		ACCESS_ALLOWED_ACE *ace;

		if (!GetAce(dacl, i, (void **)&ace) ||
		    ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE ||
		    (ace->Header.AceFlags & INHERITED_ACE))
			goto out;
		if (EqualSid((PSID)&ace->SidStart, tu.tu.User.Sid))
			user++;
		else if (EqualSid((PSID)&ace->SidStart, (PSID)sys))
			system++;
		else
			goto out;	/* anyone else */
	}
	ok = user == 1 && system == 1 && dacl->AceCount == 2;
	if (!ok || !(ctl & SE_DACL_PROTECTED))
		printf("  %s: control %#x, %u entries (user %d, SYSTEM %d)\n", path, ctl,
		       dacl->AceCount, user, system);
out:
	if (sd)
		LocalFree(sd);
	free(w);
	return ok;
}

/* %LOCALAPPDATA%\microvm and socks.secret: the user's and SYSTEM's only, not inherited */
static void test_private(void)
{
	char dir[MAX_PATH * 3], path[MAX_PATH * 3 + 32];
	int fd;

	CHECK(mvm_fs_app_dir(NULL, dir, sizeof(dir)) == 0);
	CHECK(only_user_and_system(dir));
	snprintf(path, sizeof(path), "%s\\secret", dir);
	fd = mvm_fs_open_private(path);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(_write(fd, "s\n", 2) == 2);
		_close(fd);
	}
	CHECK(only_user_and_system(path));
	fd = mvm_fs_open_private(path);		/* new only */
	CHECK(fd == -1 && errno == EEXIST);
	if (fd >= 0)
		_close(fd);
	CHECK(mvm_fs_unlink(path) == 0);
}

static void test_getenv(void)
{
	char out[64];

	SetEnvironmentVariableW(L"MVM_TEST_FS", L"\x738b");
	CHECK(mvm_fs_getenv("MVM_TEST_FS", out, sizeof(out)) == 0);
	CHECK(strcmp(out, "\xe7\x8e\x8b") == 0);
	CHECK(mvm_fs_getenv("MVM_TEST_FS", out, 4) == 0);	/* 3 bytes + NUL: an exact fit */
	CHECK(strcmp(out, "\xe7\x8e\x8b") == 0);
	CHECK(mvm_fs_getenv("MVM_TEST_FS", out, 3) == -ENAMETOOLONG);
	CHECK(out[0] == '\0');
	/* an unpaired surrogate has no UTF-8 form: refused */
	SetEnvironmentVariableW(L"MVM_TEST_FS", L"a\xd800" L"b");
	CHECK(mvm_fs_getenv("MVM_TEST_FS", out, sizeof(out)) == -EINVAL);
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

/** cleanup() - remove what the cases made or a failing one may have left */
static void cleanup(void)
{
	static const wchar_t *const files[] = {
		L"\\microvm\\up.log", L"\\microvm\\secret", L"\\m\x00fcller.txt",
	};
	wchar_t p[MAX_PATH * 2];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		swprintf(p, MAX_PATH * 2, L"%ls%ls", base_w, files[i]);
		DeleteFileW(p);
	}
	swprintf(p, MAX_PATH * 2, L"%ls\\m\x00fcller", base_w);
	RemoveDirectoryW(p);
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
		{ "private", test_private },
		{ "files", test_files },
		{ "getenv", test_getenv },
		{ "path_tail", test_path_tail },
		{ "no_localappdata", test_no_localappdata },
	};
	int rc;

	if (setup()) {
		printf("FAIL setup: cannot make the test folder (error %lu)\n", GetLastError());
		printf("windows: 0 passed, 1 failed\n");
		return 1;
	}
	rc = win_run_tests(tests, sizeof(tests) / sizeof(tests[0]));
	cleanup();
	return rc;
}
