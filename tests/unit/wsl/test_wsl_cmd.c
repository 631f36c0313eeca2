/* SPDX-License-Identifier: MIT */
/* test_wsl_cmd.c - wsl.exe command lines and `wsl --list --quiet` parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wsl/wsl_cmd.h"

static void check_quote(const char *arg, const char *want)
{
	char out[256];

	assert_int_equal(wsl_quote_arg(out, sizeof(out), arg), (int)strlen(want));
	assert_string_equal(out, want);
}

/* CommandLineToArgvW rules, cases from Microsoft's "Parsing C command-line arguments" */
static void test_quote_rules(void **state)
{
	(void)state;
	check_quote("microvm", "microvm");
	check_quote("", "\"\"");
	check_quote("a b", "\"a b\"");
	check_quote("C:\\Users\\A B\\", "\"C:\\Users\\A B\\\\\"");
	check_quote("C:\\dir\\", "C:\\dir\\");	/* no blank: untouched */
	check_quote("say \"hi\"", "\"say \\\"hi\\\"\"");
	check_quote("a\\\"b", "\"a\\\\\\\"b\"");	/* a\"b -> "a\\\"b" */
	check_quote("a\\\\b c", "\"a\\\\b c\"");	/* backslashes not before a quote: as is */
	check_quote("tab\there", "\"tab\there\"");
}

static void test_quote_too_long(void **state)
{
	char out[6];

	(void)state;
	assert_int_equal(wsl_quote_arg(out, sizeof(out), "abcde"), 5);
	assert_int_equal(wsl_quote_arg(out, sizeof(out), "abcdef"), -ENAMETOOLONG);
	assert_string_equal(out, "");
	assert_int_equal(wsl_quote_arg(out, sizeof(out), "a b c"), -ENAMETOOLONG);
	assert_int_equal(wsl_quote_arg(out, 0, "a"), -ENAMETOOLONG);
}

static void test_cmdline_import(void **state)
{
	const char *argv[] = {
		"C:\\Windows\\System32\\wsl.exe", "--import", WSL_DISTRO,
		"C:\\Users\\Jane Doe\\AppData\\Local\\microvm\\wsl\\", "D:\\img\\rootfs.tar.gz",
		"--version", "2", NULL,
	};
	char out[512];
	const char *want = "C:\\Windows\\System32\\wsl.exe --import microvm "
			   "\"C:\\Users\\Jane Doe\\AppData\\Local\\microvm\\wsl\\\\\" "
			   "D:\\img\\rootfs.tar.gz --version 2";

	(void)state;
	assert_int_equal(wsl_cmdline(out, sizeof(out), argv), (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_cmdline_run_and_errors(void **state)
{
	const char *argv[] = {
		"wsl.exe", "-d", WSL_DISTRO, "--user", "root", "--exec", "/usr/bin/microvm-agent",
		"--transport", "tcp", "--listen", "127.0.0.1", NULL,
	};
	const char *empty[] = { NULL };
	char out[128], small[20];

	(void)state;
	assert_true(wsl_cmdline(out, sizeof(out), argv) > 0);
	assert_string_equal(out, "wsl.exe -d microvm --user root --exec /usr/bin/microvm-agent "
				 "--transport tcp --listen 127.0.0.1");
	assert_int_equal(wsl_cmdline(small, sizeof(small), argv), -ENAMETOOLONG);
	assert_string_equal(small, "");
	assert_int_equal(wsl_cmdline(out, sizeof(out), empty), -EINVAL);
	assert_int_equal(wsl_cmdline(out, sizeof(out), NULL), -EINVAL);
}

/* u16() - @s as UTF-16LE (ASCII only), optionally with a BOM; Return: bytes */
static size_t u16(unsigned char *out, const char *s, int bom)
{
	size_t n = 0;

	if (bom) {
		out[n++] = 0xff;
		out[n++] = 0xfe;
	}
	for (; *s; s++) {
		out[n++] = (unsigned char)*s;
		out[n++] = 0;
	}
	return n;
}

static void test_list_utf16(void **state)
{
	unsigned char buf[512];
	size_t n;

	(void)state;
	n = u16(buf, "Ubuntu\r\nmicrovm\r\nDebian\r\n", 0);
	assert_int_equal(wsl_list_has(buf, n, "microvm"), 1);
	assert_int_equal(wsl_list_has(buf, n, "MicroVM"), 1);	/* WSL: case-insensitive */
	assert_int_equal(wsl_list_has(buf, n, "micro"), 0);
	assert_int_equal(wsl_list_has(buf, n, "Alpine"), 0);
	n = u16(buf, "microvm", 1);	/* BOM, no newline at the end */
	assert_int_equal(wsl_list_has(buf, n, "microvm"), 1);
	n = u16(buf, "microvm-rs\r\nxmicrovm\r\n", 1);
	assert_int_equal(wsl_list_has(buf, n, "microvm"), 0);
	n = u16(buf, "  microvm \r\n", 0);
	assert_int_equal(wsl_list_has(buf, n, "microvm"), 1);
	/* odd trailing byte (truncated read) is ignored */
	n = u16(buf, "Ubuntu\r\nmicrovm\r\n", 0);
	buf[n] = 'x';
	assert_int_equal(wsl_list_has(buf, n + 1, "microvm"), 1);
}

static void test_list_none_and_garbage(void **state)
{
	unsigned char buf[512];
	size_t n;

	(void)state;
	n = u16(buf, "Windows Subsystem for Linux has no installed distributions.\r\n"
		"Distributions can be installed by visiting the Microsoft Store:\r\n", 1);
	assert_int_equal(wsl_list_has(buf, n, "microvm"), 0);
	assert_int_equal(wsl_list_has(buf, 0, "microvm"), 0);
	assert_int_equal(wsl_list_has(NULL, 10, "microvm"), 0);
	assert_int_equal(wsl_list_has(buf, n, ""), 0);
	/* a non-ASCII unit where a letter should be: no match, no crash */
	n = u16(buf, "microvm\r\n", 0);
	buf[1] = 0x01;	/* 'm' becomes U+016D */
	assert_int_equal(wsl_list_has(buf, n, "microvm"), 0);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(wsl_list_has(buf, sizeof(buf), "microvm"), 0);
}

static void test_list_utf8(void **state)
{
	const char *s = "Ubuntu\nmicrovm\n";
	const char *bom = "\xef\xbb\xbfmicrovm\r\n";

	(void)state;
	/* WSL_UTF8=1 makes wsl.exe print UTF-8 */
	assert_int_equal(wsl_list_has(s, strlen(s), "microvm"), 1);
	assert_int_equal(wsl_list_has(bom, strlen(bom), "microvm"), 1);
	assert_int_equal(wsl_list_has(s, strlen(s), "Debian"), 0);
}

static void test_text(void **state)
{
	unsigned char buf[256];
	char out[64];
	size_t n;

	(void)state;
	n = u16(buf, "Error code: Wsl/X\r\n", 1);
	assert_int_equal(wsl_text(buf, n, out, sizeof(out)), strlen("Error code: Wsl/X\n"));
	assert_string_equal(out, "Error code: Wsl/X\n");
	/* UTF-8 with a non-ASCII letter: one '?' for the whole sequence */
	assert_int_equal(wsl_text("caf\xc3\xa9\x01", 6, out, sizeof(out)), 5);
	assert_string_equal(out, "caf??");
	/* truncated to fit, always terminated */
	assert_int_equal(wsl_text("abcdef", 6, out, 4), 3);
	assert_string_equal(out, "abc");
	assert_int_equal(wsl_text(NULL, 5, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(wsl_text("x", 1, out, 0), 0);
}

static void test_classify(void **state)
{
	unsigned char buf[512];
	char out[512];
	size_t n;

	(void)state;
	n = u16(buf, "Please enable the Virtual Machine Platform Windows feature and ensure "
		"virtualization is enabled in the BIOS.\r\nError code: "
		"Wsl/Service/RegisterDistro/CreateVm/HCS/HCS_E_HYPERV_NOT_INSTALLED\r\n", 1);
	wsl_text(buf, n, out, sizeof(out));
	assert_int_equal(wsl_classify(out), WSL_FAULT_DISABLED);
	assert_int_equal(wsl_classify("Error code: Wsl/Service/CreateInstance/CreateVm/"
				      "HCS_E_SERVICE_NOT_AVAILABLE"), WSL_FAULT_DISABLED);
	assert_int_equal(wsl_classify("WSL 2 requires an update to its kernel component."),
			 WSL_FAULT_WSL1);
	assert_int_equal(wsl_classify("Invalid command line option: --version"), WSL_FAULT_WSL1);
	assert_int_equal(wsl_classify("Error code: Wsl/WSL_E_WSL2_NEEDS_KERNEL_UPDATE"),
			 WSL_FAULT_WSL1);
	assert_int_equal(wsl_classify("The Windows Subsystem for Linux is not installed. You "
				      "can install by running 'wsl.exe --install'."),
			 WSL_FAULT_ABSENT);
	assert_int_equal(wsl_classify("Error code: Wsl/WSL_E_WSL_OPTIONAL_COMPONENT_REQUIRED"),
			 WSL_FAULT_ABSENT);
	assert_int_equal(wsl_classify("There is no distribution with the supplied name."),
			 WSL_FAULT_NONE);
	assert_int_equal(wsl_classify(NULL), WSL_FAULT_NONE);
	assert_string_equal(wsl_fault_advice(WSL_FAULT_NONE), "");
	assert_non_null(strstr(wsl_fault_advice(WSL_FAULT_WSL1), "wsl --update"));
	assert_non_null(strstr(wsl_fault_advice(WSL_FAULT_DISABLED), "Virtual Machine Platform"));
	assert_non_null(strstr(wsl_fault_advice(WSL_FAULT_ABSENT), "wsl --install"));
}

static void check_path(const char *win, const char *want)
{
	char out[128];

	assert_int_equal(wsl_linux_path(out, sizeof(out), win), (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_linux_path(void **state)
{
	char out[12];

	(void)state;
	check_path("C:\\Users\\A B\\AppData\\Local\\microvm\\state",
		   "/mnt/c/Users/A B/AppData/Local/microvm/state");
	check_path("d:/x//y\\", "/mnt/d/x/y");
	check_path("E:\\", "/mnt/e");
	check_path("C:\\Us\xc3\xa9r", "/mnt/c/Us\xc3\xa9r");	/* UTF-8 kept */
	assert_int_equal(wsl_linux_path(out, sizeof(out), "\\\\server\\share"), -EINVAL);
	assert_int_equal(wsl_linux_path(out, sizeof(out), "relative\\x"), -EINVAL);
	assert_int_equal(wsl_linux_path(out, sizeof(out), "C:relative"), -EINVAL);
	assert_int_equal(wsl_linux_path(out, sizeof(out), NULL), -EINVAL);
	assert_int_equal(wsl_linux_path(out, sizeof(out), "C:\\a-long-directory"),
			 -ENAMETOOLONG);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_rules),
		cmocka_unit_test(test_quote_too_long),
		cmocka_unit_test(test_cmdline_import),
		cmocka_unit_test(test_cmdline_run_and_errors),
		cmocka_unit_test(test_list_utf16),
		cmocka_unit_test(test_list_none_and_garbage),
		cmocka_unit_test(test_list_utf8),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_linux_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
