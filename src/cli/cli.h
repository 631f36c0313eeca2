/* SPDX-License-Identifier: MIT */
/* cli.h - the `microvm` command: one function per subcommand, shared helpers. */
#ifndef MVM_CLI_H
#define MVM_CLI_H

#include <limits.h>

/*
 * A file name's buffer.  Windows: file names are UTF-8 here (runtime/compat.h) and the API
 * takes up to MAX_PATH (260) UTF-16 units, up to 3 bytes each in UTF-8; mingw's PATH_MAX
 * is 260 bytes, too short for a folder named in Cyrillic or Chinese letters.
 */
#ifdef _WIN32
#define CLI_PATH_MAX	(260 * 3)
#else
#define CLI_PATH_MAX	PATH_MAX
#endif

/**
 * struct cli_command - a subcommand
 * @name:	what the user types
 * @summary:	one line for `microvm --help`
 * @run:	entry point; argv[0] is the subcommand name; returns the process exit status
 */
struct cli_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

/* Exit statuses shared by all subcommands. */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,	/* the operation failed; the message says why */
	CLI_EXIT_USAGE = 2,	/* bad command line */
};

/* progress.c: one progress line on a terminal during long steps, nothing in scripts */
void cli_progress_begin(const char *what);
void cli_progress_end(void);
void cli_progress_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Subcommands (one file each). */
int cli_run(int argc, char **argv);

#endif
