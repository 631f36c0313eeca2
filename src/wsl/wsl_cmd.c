/* SPDX-License-Identifier: MIT */
/**
 * DOC: wsl_cmd - command lines for wsl.exe and parsing of `wsl.exe --list --quiet`
 *
 * Pure functions, so they build and are unit-tested on Linux as well as Windows:
 *
 * - Windows passes a program one command-line string, which the C runtime
 *   (CommandLineToArgvW rules) splits back into argv.  wsl_quote_arg() quotes one argument
 *   so that it survives that split unchanged (spaces, quotes, trailing backslashes in paths
 *   such as "C:\Users\A B\"), wsl_cmdline() joins a whole argv.
 * - `wsl.exe --list --quiet` prints one distribution name per line in UTF-16LE (with or
 *   without a byte order mark; UTF-8 when WSL_UTF8=1 is set), lines ending in CRLF.
 *   wsl_list_has() answers whether a name is among them (names compare case-insensitively,
 *   as WSL does).  Any other output, such as "no installed distributions" text, is simply a
 *   line that does not match.
 * - wsl_text() turns any wsl.exe output (UTF-16LE or UTF-8) into ASCII text for error
 *   messages, and wsl_classify() recognises in it the three ways a machine cannot run the
 *   appliance: WSL absent, WSL2's virtual machine platform disabled, or WSL 1 only.  It
 *   matches the error codes wsl.exe prints ("Error code: Wsl/.../HCS_E_HYPERV_NOT_INSTALLED"),
 *   which are not translated, and the English texts of older wsl.exe versions.
 * - wsl_linux_path() maps a Windows path (C:\Users\...) to the path WSL mounts it at inside
 *   the distribution (/mnt/c/Users/...).
 */
#include <errno.h>
#include <string.h>

#include "wsl/wsl_cmd.h"

/** wsl_put() - append @c to @out at *@pos if it fits (one byte kept for the NUL). */
static int wsl_put(char *out, size_t size, size_t *pos, char c)
{
	if (*pos + 1 >= size)
		return -ENAMETOOLONG;
	out[(*pos)++] = c;
	return 0;
}

/** wsl_put_n() - append @n copies of @c. */
static int wsl_put_n(char *out, size_t size, size_t *pos, char c, size_t n)
{
	while (n--)
		if (wsl_put(out, size, pos, c))
			return -ENAMETOOLONG;
	return 0;
}

/**
 * wsl_quote_arg_at() - append @arg quoted for CommandLineToArgvW at *@pos
 *
 * Unquoted if it has no blank or quote; otherwise in double quotes, where a quote becomes
 * \" and backslashes are doubled only where they precede a quote (or the closing quote).
 *
 * Return: 0, or -ENAMETOOLONG when @out is too small.
 */
static int wsl_quote_arg_at(char *out, size_t size, size_t *pos, const char *arg)
{
	const char *p;
	size_t bs;

	if (*arg && !strpbrk(arg, " \t\n\v\"")) {
		for (p = arg; *p; p++)
			if (wsl_put(out, size, pos, *p))
				return -ENAMETOOLONG;
		return 0;
	}
	if (wsl_put(out, size, pos, '"'))
		return -ENAMETOOLONG;
	for (p = arg;; p++) {
		for (bs = 0; *p == '\\'; p++)
			bs++;
		if (!*p) {
			/* backslashes before the closing quote: doubled */
			if (wsl_put_n(out, size, pos, '\\', bs * 2))
				return -ENAMETOOLONG;
			break;
		}
		if (*p == '"') {
			if (wsl_put_n(out, size, pos, '\\', bs * 2 + 1) ||
			    wsl_put(out, size, pos, '"'))
				return -ENAMETOOLONG;
			continue;
		}
		if (wsl_put_n(out, size, pos, '\\', bs) || wsl_put(out, size, pos, *p))
			return -ENAMETOOLONG;
	}
	return wsl_put(out, size, pos, '"');
}

/**
 * wsl_quote_arg() - @arg quoted as one argument of a Windows command line
 * @out:	result, NUL-terminated
 * @size:	size of @out
 * @arg:	the argument (UTF-8; bytes >= 0x80 pass through)
 *
 * Return: the length written, or -ENAMETOOLONG (then @out is "").
 */
int wsl_quote_arg(char *out, size_t size, const char *arg)
{
	size_t pos = 0;

	if (!size)
		return -ENAMETOOLONG;
	if (wsl_quote_arg_at(out, size, &pos, arg)) {
		out[0] = '\0';
		return -ENAMETOOLONG;
	}
	out[pos] = '\0';
	return (int)pos;
}

/**
 * wsl_cmdline() - join @argv into one Windows command line, every argument quoted as needed
 * @out:	result, NUL-terminated
 * @size:	size of @out
 * @argv:	NULL-terminated; argv[0] is the program
 *
 * Return: the length written, -EINVAL for an empty @argv, or -ENAMETOOLONG (@out is "").
 */
int wsl_cmdline(char *out, size_t size, const char *const *argv)
{
	size_t pos = 0, i;

	if (!argv || !argv[0])
		return -EINVAL;
	if (!size)
		return -ENAMETOOLONG;
	for (i = 0; argv[i]; i++) {
		if ((i && wsl_put(out, size, &pos, ' ')) ||
		    wsl_quote_arg_at(out, size, &pos, argv[i])) {
			out[0] = '\0';
			return -ENAMETOOLONG;
		}
	}
	out[pos] = '\0';
	return (int)pos;
}

/** wsl_lower() - ASCII lower case. */
static unsigned wsl_lower(unsigned c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/**
 * wsl_unit() - code unit @i of the listing
 * @u16:	UTF-16LE (2 bytes a unit) or not (1 byte a unit)
 */
static unsigned wsl_unit(const unsigned char *d, size_t i, int u16)
{
	return u16 ? (unsigned)d[2 * i] | (unsigned)d[2 * i + 1] << 8 : d[i];
}

/** wsl_is_u16() - UTF-16LE: a BOM, or ASCII text whose every second byte is 0. */
static int wsl_is_u16(const unsigned char *d, size_t len)
{
	return (len >= 2 && d[0] == 0xff && d[1] == 0xfe) || (len >= 2 && d[0] && !d[1]);
}

/**
 * wsl_list_has() - is @name one of the lines of a `wsl.exe --list --quiet` output?
 * @data:	the raw output (UTF-16LE with or without BOM, or UTF-8/ASCII)
 * @len:	its length in bytes
 * @name:	the distribution name (ASCII)
 *
 * Lines are split at CR/LF/NUL; blanks around a name are ignored; comparison ignores ASCII
 * case.  A non-ASCII unit never matches an ASCII letter.
 *
 * Return: 1 if listed, 0 if not.
 */
int wsl_list_has(const void *data, size_t len, const char *name)
{
	const unsigned char *d = data;
	size_t n, i, start, end, k, nlen = name ? strlen(name) : 0;
	int u16;

	if (!d || !nlen)
		return 0;
	u16 = wsl_is_u16(d, len);
	n = u16 ? len / 2 : len;
	i = u16 && d[0] == 0xff && d[1] == 0xfe ? 1 : 0;
	if (!u16 && len >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf)
		i = 3;	/* UTF-8 BOM */
	while (i < n) {
		unsigned c;

		start = i;
		while (i < n && (c = wsl_unit(d, i, u16)) != '\r' && c != '\n' && c != 0)
			i++;
		end = i;
		i++;
		while (start < end && ((c = wsl_unit(d, start, u16)) == ' ' || c == '\t'))
			start++;
		while (end > start && ((c = wsl_unit(d, end - 1, u16)) == ' ' || c == '\t'))
			end--;
		if (end - start != nlen)
			continue;
		for (k = 0; k < nlen; k++)
			if (wsl_lower(wsl_unit(d, start + k, u16)) !=
			    wsl_lower((unsigned char)name[k]))
				break;
		if (k == nlen)
			return 1;
	}
	return 0;
}

/**
 * wsl_text() - wsl.exe output as printable ASCII, for messages and wsl_classify()
 * @data/@len:	the raw output (UTF-16LE with or without BOM, or UTF-8/ASCII)
 * @out/@size:	result, NUL-terminated (truncated to fit)
 *
 * NULs and BOMs are dropped, CR LF becomes LF, other control and non-ASCII characters
 * become '?' (a UTF-8 sequence counts as one character).
 *
 * Return: the length of @out.
 */
size_t wsl_text(const void *data, size_t len, char *out, size_t size)
{
	const unsigned char *d = data;
	size_t n, i, pos = 0;
	int u16;

	if (!size)
		return 0;
	if (!d)
		len = 0;
	u16 = wsl_is_u16(d, len);
	n = u16 ? len / 2 : len;
	i = u16 && d[0] == 0xff && d[1] == 0xfe ? 1 : 0;
	if (!u16 && len >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf)
		i = 3;
	for (; i < n && pos + 1 < size; i++) {
		unsigned c = wsl_unit(d, i, u16);

		if (c == 0 || c == '\r' || c == 0xfeff)
			continue;
		if (!u16 && c >= 0x80 && c < 0xc0)
			continue;	/* a UTF-8 continuation byte: its lead gave the '?' */
		out[pos++] = c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[pos] = '\0';
	return pos;
}

/**
 * wsl_classify() - why wsl.exe could not run a WSL2 distribution, from what it printed
 * @text:	its output, through wsl_text()
 *
 * Return: %WSL_FAULT_ABSENT (WSL not installed), %WSL_FAULT_DISABLED (the Virtual Machine
 * Platform or firmware virtualisation is off), %WSL_FAULT_WSL1 (this Windows or wsl.exe
 * knows only WSL 1, or WSL 2's kernel is missing), or %WSL_FAULT_NONE (something else).
 */
enum wsl_fault wsl_classify(const char *text)
{
	static const struct {
		const char *needle;
		enum wsl_fault fault;
	} map[] = {
		{ "WSL_E_WSL_OPTIONAL_COMPONENT_REQUIRED", WSL_FAULT_ABSENT },
		{ "Subsystem for Linux is not installed", WSL_FAULT_ABSENT },
		{ "Subsystem for Linux has not been enabled", WSL_FAULT_ABSENT },
		{ "WSL_E_WSL2_NEEDS_KERNEL_UPDATE", WSL_FAULT_WSL1 },
		{ "WSL 2 requires an update to its kernel component", WSL_FAULT_WSL1 },
		{ "Invalid command line option: --version", WSL_FAULT_WSL1 },
		{ "Invalid command line option: --exec", WSL_FAULT_WSL1 },
		{ "WSL_E_VIRTUAL_MACHINE_PLATFORM_REQUIRED", WSL_FAULT_DISABLED },
		{ "HCS_E_HYPERV_NOT_INSTALLED", WSL_FAULT_DISABLED },
		{ "HCS_E_SERVICE_NOT_AVAILABLE", WSL_FAULT_DISABLED },
		{ "0x80370102", WSL_FAULT_DISABLED },
		{ "enable the Virtual Machine Platform", WSL_FAULT_DISABLED },
	};
	size_t i;

	for (i = 0; text && i < sizeof(map) / sizeof(map[0]); i++)
		if (strstr(text, map[i].needle))
			return map[i].fault;
	return WSL_FAULT_NONE;
}

/** wsl_fault_advice() - what the user should do about @fault, one sentence ("" for NONE). */
const char *wsl_fault_advice(enum wsl_fault fault)
{
	switch (fault) {
	case WSL_FAULT_ABSENT:
		return "WSL is not installed: run `wsl --install --no-distribution` as "
		       "administrator and restart Windows";
	case WSL_FAULT_DISABLED:
		return "WSL 2 cannot start its virtual machine: enable the Windows feature "
		       "\"Virtual Machine Platform\" (`wsl --install --no-distribution` as "
		       "administrator) and virtualization in the firmware, then restart Windows";
	case WSL_FAULT_WSL1:
		return "this Windows has only WSL 1, and the appliance needs WSL 2: run "
		       "`wsl --update` (Windows 10 1903 or later), then restart Windows";
	default:
		return "";
	}
}

/**
 * wsl_linux_path() - where WSL mounts a Windows path inside the distribution
 * @out/@size:	result, NUL-terminated
 * @win:	an absolute drive path, "C:\\Users\\A B" (either slash)
 *
 * The drive letter becomes /mnt/<lower-case letter>, backslashes become slashes; other
 * bytes (UTF-8) are kept.  WSL's default automount root /mnt/ is assumed (the appliance's
 * distribution has no /etc/wsl.conf changing it).
 *
 * Return: the length, -EINVAL for a path that is not on a drive (UNC, relative), or
 * -ENAMETOOLONG.
 */
int wsl_linux_path(char *out, size_t size, const char *win)
{
	size_t pos = 0;
	const char *p;
	char drive;

	if (size)
		out[0] = '\0';
	if (!win || !((win[0] >= 'A' && win[0] <= 'Z') || (win[0] >= 'a' && win[0] <= 'z')) ||
	    win[1] != ':' || (win[2] != '\\' && win[2] != '/'))
		return -EINVAL;
	drive = (char)wsl_lower((unsigned char)win[0]);
	if (wsl_put(out, size, &pos, '/') || wsl_put(out, size, &pos, 'm') ||
	    wsl_put(out, size, &pos, 'n') || wsl_put(out, size, &pos, 't') ||
	    wsl_put(out, size, &pos, '/') || wsl_put(out, size, &pos, drive))
		goto long_;
	for (p = win + 2; *p; p++) {
		char c = *p == '\\' ? '/' : *p;

		if (c == '/' && pos && out[pos - 1] == '/')
			continue;
		if (wsl_put(out, size, &pos, c))
			goto long_;
	}
	while (pos > 6 && out[pos - 1] == '/')
		pos--;
	out[pos] = '\0';
	return (int)pos;
long_:
	if (size)
		out[0] = '\0';
	return -ENAMETOOLONG;
}
