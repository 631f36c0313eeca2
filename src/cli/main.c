/* SPDX-License-Identifier: MIT */
/*
 * main.c - the `microvm` command: dispatch to subcommands.
 *
 * Each subcommand lives in its own file and parses its own options; this file only knows the
 * table below.  `microvm help CMD` and `microvm CMD --help` print the same text; `microvm`
 * alone prints the overview (commands and first steps) and succeeds.
 *
 * On Windows (microvm.exe) the same table: `run` boots a kernel with KVM and exists only on
 * Linux, so there it is listed as such and says so when used, rather than vanishing; in the
 * same way `uninstall` (the WSL distribution) is listed on Linux as Windows-only.
 *
 * On Windows the arguments are taken from GetCommandLineW() and handed on in UTF-8, the
 * encoding of every file name in this code (runtime/compat.h): the C runtime's argv is in
 * the ANSI code page, which turns a C:\Users\Пётр\corp.ovpn into C:\Users\????\corp.ovpn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#include <shellapi.h>
#endif

#include "cli/cli.h"
#include "microvm/version.h"

static int cli_help(int argc, char **argv);
int cli_up(int argc, char **argv);
int cli_down(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_vpn(int argc, char **argv);
int cli_console(int argc, char **argv);
int cli_uninstall(int argc, char **argv);

#ifdef _WIN32
/**
 * cli_linux_only() - a command this platform does not have
 * Return: CLI_EXIT_USAGE, after saying so.
 */
static int cli_linux_only(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "microvm %s: only on Linux (it boots a kernel with KVM); on Windows "
		"'microvm up' runs the appliance in WSL2\n", argv[0]);
	return CLI_EXIT_USAGE;
}
#define CLI_RUN_SUMMARY	"Linux only: boot a kernel in a KVM micro-VM"
#define cli_run		cli_linux_only
#define CLI_UNINSTALL_SUMMARY	"remove the appliance's WSL distribution (keeps profiles)"
#else
#define CLI_RUN_SUMMARY	"boot a kernel in a KVM micro-VM with its console here"
#define CLI_UNINSTALL_SUMMARY	"Windows only: remove the appliance's WSL distribution"
#endif

static const struct cli_command cli_commands[] = {
	{ "help", "show help for microvm or a subcommand", cli_help },
	{ "run", CLI_RUN_SUMMARY, cli_run },
	{ "up", "run the VPN appliance (VM, agent, SOCKS5 proxy on localhost:1080)", cli_up },
	{ "vpn", "import, connect, disconnect VPN profiles; VPN status", cli_vpn },
	{ "status", "state of the appliance started with 'up'", cli_status },
	{ "console", "print the appliance VM's console", cli_console },
	{ "down", "stop the appliance started with 'up'", cli_down },
	{ "uninstall", CLI_UNINSTALL_SUMMARY, cli_uninstall },
};

#define CLI_NCOMMANDS (sizeof(cli_commands) / sizeof(cli_commands[0]))

/**
 * cli_usage() - print the top-level help
 * @out:	stream to print to
 */
static void cli_usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"usage: microvm COMMAND [OPTIONS]\n"
		"\n"
		"A small micro-VM runtime and an isolated VPN appliance.\n"
		"\n"
		"Commands:\n");
	for (i = 0; i < CLI_NCOMMANDS; i++)
		fprintf(out, "  %-12s %s\n", cli_commands[i].name, cli_commands[i].summary);
	fprintf(out,
		"\n"
		"First steps (the VPN appliance):\n"
		"  microvm up --detach                      start it in the background\n"
		"  microvm vpn import corp.ovpn             store an OpenVPN profile in it\n"
		"  microvm vpn connect corp --user alice    connect (asks the password)\n"
		"  curl --socks5-hostname 127.0.0.1:1080 http://intranet.corp/\n"
		"  microvm status                           what runs, and what to do next\n"
		"  microvm down                             stop it\n"
		"\n"
		"Run 'microvm COMMAND --help' for a command's options.\n");
}

/**
 * cli_find() - look up a subcommand by name
 * Return: the command, or NULL.
 */
static const struct cli_command *cli_find(const char *name)
{
	size_t i;

	for (i = 0; i < CLI_NCOMMANDS; i++)
		if (!strcmp(cli_commands[i].name, name))
			return &cli_commands[i];
	return NULL;
}

static int cli_help(int argc, char **argv)
{
	const struct cli_command *c;
	char help[] = "--help";
	char *args[] = { NULL, help, NULL };

	if (argc < 2) {
		cli_usage(stdout);
		return CLI_EXIT_OK;
	}
	c = cli_find(argv[1]);
	if (!c || c->run == cli_help) {
		cli_usage(c ? stdout : stderr);
		return c ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	args[0] = argv[1];
	return c->run(2, args);
}

#ifdef _WIN32
/**
 * cli_utf8_argv() - this process' arguments in UTF-8, from its UTF-16 command line
 * @argc:	receives their number
 *
 * CommandLineToArgvW() splits by the rules of the Microsoft C runtime (quotes, and
 * backslashes before a quote doubled), the rules that up_win_child_cmdline() and
 * wsl_cmdline() quote by, so an argument they pass comes back here unchanged.  An argument
 * with an unpaired surrogate has no UTF-8 form: refused (WC_ERR_INVALID_CHARS), not turned
 * into U+FFFD and a different file name.
 * Return: a NULL-terminated array that lives as long as the process, or NULL.
 */
static char **cli_utf8_argv(int *argc)
{
	wchar_t **wargv = CommandLineToArgvW(GetCommandLineW(), argc);
	char **argv = wargv ? calloc((size_t)*argc + 1, sizeof(*argv)) : NULL;
	int i, len;

	for (i = 0; argv && i < *argc; i++) {
		len = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, wargv[i], -1, NULL, 0,
					  NULL, NULL);
		argv[i] = len > 0 ? malloc((size_t)len) : NULL;
		if (!argv[i] || !WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, wargv[i], -1,
						     argv[i], len, NULL, NULL)) {
			while (i >= 0)
				free(argv[i--]);
			free(argv);
			argv = NULL;
		}
	}
	if (wargv)
		LocalFree(wargv);
	return argv;
}
#endif

int main(int argc, char **argv)
{
	const struct cli_command *c;
#ifdef _WIN32
	int wargc;
	char **uargv = cli_utf8_argv(&wargc);

	/* no fallback to the ANSI argv: it would name other files ("????") */
	if (!uargv) {
		fprintf(stderr, "microvm: cannot read the command line in UTF-8 (an argument "
			"that is not valid UTF-16, or out of memory)\n");
		return CLI_EXIT_USAGE;
	}
	argc = wargc;
	argv = uargv;
#endif

	/* no arguments: a newcomer asking what this is, not a mistake */
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		cli_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("microvm %s\n", mvm_version());
		return CLI_EXIT_OK;
	}
	c = cli_find(argv[1]);
	if (!c) {
		fprintf(stderr, "microvm: unknown command '%s' (see 'microvm --help')\n", argv[1]);
		return CLI_EXIT_USAGE;
	}
	return c->run(argc - 1, argv + 1);
}
