/* SPDX-License-Identifier: MIT */
/*
 * uninstall.c - `microvm uninstall`: remove the appliance's WSL distribution (Windows).
 *
 * On Windows `up` imports the guest image as the WSL distribution "microvm" (src/wsl/wsl.c);
 * this command takes it away again with mvm_wsl_uninstall() (`wsl.exe --unregister
 * microvm`: its disk goes with it).  What the user stored - the VPN profiles, which the
 * agent keeps in %LOCALAPPDATA%\microvm\state, outside the distribution - stays unless
 * --purge is given, which deletes %LOCALAPPDATA%\microvm as a whole: uninstalling to
 * reinstall a new version should not lose a user's profiles, and removing them is one
 * explicit option away.  The WSL backend does that deletion too (mvm_wsl_uninstall_ex()
 * with MVM_WSL_PURGE), while it holds the appliance lock: a VM started in between would
 * otherwise lose its state under it.
 *
 * While `up` runs (its control endpoint answers) the command refuses rather than stopping
 * it: the running appliance carries the user's VPN connections, and `microvm down` says
 * plainly that they end.  Nothing is removed then.
 *
 * On Linux there is nothing installed to remove (the guest image is a file of the build or
 * of $datadir, and nsbox unpacks it into the control socket's directory, which `down`
 * cleans): the command says it is for Windows, as `run` says it is for Linux there.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#endif

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/control.h"
#include "microvm/runtime.h"

int cli_uninstall(int argc, char **argv);

static void un_usage(FILE *out)
{
	fprintf(out,
"usage: microvm uninstall [--purge] [--json] [--control PATH]\n"
"\n"
"Windows only: remove the appliance's WSL distribution (\"microvm\", imported by\n"
"'microvm up'; 'wsl.exe --unregister microvm', its disk goes with it).  The VPN profiles\n"
"you imported are kept (in %%LOCALAPPDATA%%\\microvm\\state) for the next 'microvm up'.\n"
"Refused while 'microvm up' runs: stop it with 'microvm down' first.\n"
"\n"
"  --purge          also delete %%LOCALAPPDATA%%\\microvm: the stored VPN profiles and\n"
"                   the log of 'up --detach'\n"
"  --json           print {\"removed\": true|false, \"purged\": true|false} (or\n"
"                   {\"error\": \"...\"} on failure)\n"
"  --control PATH   the control endpoint of 'microvm up' checked (see 'microvm up')\n"
"\n"
"Exit status 0 also when there was nothing to remove.\n"
"\n"
"Examples:\n"
"  microvm down\n"
"  microvm uninstall\n"
"  microvm uninstall --purge --json\n");
}

/**
 * un_fail() - report a failure, as text or as {"error": ...}
 * Return: CLI_EXIT_FAIL.
 */
static int un_fail(bool json, const char *msg)
{
	if (json) {
		cJSON *o = cJSON_CreateObject();
		char *s;

		cJSON_AddStringToObject(o, "error", msg);
		s = cJSON_PrintUnformatted(o);
		if (s)
			printf("%s\n", s);
		cJSON_free(s);
		cJSON_Delete(o);
	} else {
		fprintf(stderr, "microvm uninstall: %s\n", msg);
	}
	return CLI_EXIT_FAIL;
}

/**
 * cli_uninstall() - `microvm uninstall [--purge] [--json] [--control PATH]`
 * @argc/@argv:	argv[0] is "uninstall"
 *
 * Return: exit status.
 */
int cli_uninstall(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "purge", no_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "control", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *control = NULL;
	bool json = false, purge = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': purge = true; break;
		case 'j': json = true; break;
		case 'c': control = optarg; break;
		case 'h':
			un_usage(stdout);
			return CLI_EXIT_OK;
		default:
			un_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "microvm uninstall: unexpected argument '%s'\n", argv[optind]);
		return CLI_EXIT_USAGE;
	}
#ifdef _WIN32
	{
		char path[PATH_MAX];
		ctl_conn conn;
		int ret;

		if (ctl_path(control, path, sizeof(path)))
			return CLI_EXIT_USAGE;
		if (!ctl_connect(path, &conn)) {
			ctl_close(conn);
			return un_fail(json, "'microvm up' is running; stop it with 'microvm down' "
				       "first (nothing was removed)");
		}
		/* the purge too under the appliance lock: no start can slip in between */
		ret = mvm_wsl_uninstall_ex(purge ? MVM_WSL_PURGE : 0);
		if (ret < 0)
			return un_fail(json, mvm_last_error());
		if (json) {
			printf("{\"removed\":%s,\"purged\":%s}\n", ret ? "true" : "false",
			       purge ? "true" : "false");
		} else {
			printf("%s\n", ret ? "removed the WSL distribution microvm"
					   : "nothing to remove: the WSL distribution microvm is "
					     "not installed");
			printf("%s\n", purge ? "deleted the VPN profiles and logs (--purge)"
					     : "kept your VPN profiles (--purge deletes them)");
		}
		return CLI_EXIT_OK;
	}
#else
	(void)control;
	(void)purge;
	un_fail(json, "only on Windows (it removes the WSL distribution); on Linux nothing "
		"is installed besides the program and its guest image");
	return CLI_EXIT_USAGE;
#endif
}
