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
	/* UTF-16LE: a BOM, or ASCII text whose every second byte is 0 */
	u16 = (len >= 2 && d[0] == 0xff && d[1] == 0xfe) || (len >= 2 && d[0] && !d[1]);
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
