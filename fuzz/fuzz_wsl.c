/* SPDX-License-Identifier: MIT */
/*
 * fuzz_wsl.c - the WSL2 backend's helpers on arbitrary bytes: `wsl --list --quiet` output
 * (what wsl.exe prints, in UTF-16LE or UTF-8), wsl.exe's and the agent's output turned into
 * message text (wsl_text(), wsl_classify(): the agent's last output is guest-controlled),
 * Windows paths mapped into the distro, and command-line quoting of any argument.
 *
 * Checks: wsl_list_has() never reads out of bounds (ASan) and agrees with itself when the
 * name is looked up in the output with a name line appended; a quoted argument fits the
 * buffer, is NUL-terminated and, when quoting was needed, starts and ends with a quote;
 * wsl_text() output is printable ASCII (or LF/TAB) and fits; a mapped path starts /mnt/.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsl/wsl_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[256], *arg, *buf;
	int n;

	(void)wsl_list_has(data, size, WSL_DISTRO);
	(void)wsl_list_has(data, size, "Ubuntu");

	/* the same bytes plus an 8-bit "\nmicrovm\n" line: must be found */
	buf = malloc(size + 10);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (!(size >= 2 && (uint8_t)buf[0] == 0xff && (uint8_t)buf[1] == 0xfe) &&
	    !(size >= 2 && buf[0] && !buf[1])) {
		memcpy(buf + size, "\nmicrovm\n", 9);
		assert(wsl_list_has(buf, size + 9, WSL_DISTRO) == 1);
	}
	free(buf);

	{
		char text[128];
		size_t len = wsl_text(data, size, text, sizeof(text)), i;

		assert(len < sizeof(text) && text[len] == '\0' && strlen(text) == len);
		for (i = 0; i < len; i++)
			assert(text[i] == '\n' || text[i] == '\t' ||
			       (text[i] >= 0x20 && text[i] < 0x7f));
		(void)wsl_fault_advice(wsl_classify(text));
	}

	arg = malloc(size + 1);
	if (!arg)
		return 0;
	memcpy(arg, data, size);
	arg[size] = '\0';
	n = wsl_quote_arg(out, sizeof(out), arg);
	if (n >= 0) {
		assert((size_t)n < sizeof(out) && out[n] == '\0' && strlen(out) == (size_t)n);
		if (!*arg || strpbrk(arg, " \t\n\v\""))
			assert(n >= 2 && out[0] == '"' && out[n - 1] == '"');
		else
			assert(strcmp(out, arg) == 0);
	} else {
		assert(out[0] == '\0');
	}
	n = wsl_linux_path(out, sizeof(out), arg);
	if (n >= 0)
		assert(!strncmp(out, "/mnt/", 5) && strlen(out) == (size_t)n);
	else
		assert(out[0] == '\0');
	free(arg);
	return 0;
}
