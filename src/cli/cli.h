/* SPDX-License-Identifier: MIT */
/* cli.h - the `microvm` command: one function per subcommand, shared helpers. */
#ifndef MVM_CLI_H
#define MVM_CLI_H

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

/* Subcommands (one file each). */
int cli_run(int argc, char **argv);

#endif
