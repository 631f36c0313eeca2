/* SPDX-License-Identifier: MIT */
/*
 * vpn.c - `microvm vpn import|connect|status|profiles|disconnect`: talk to `microvm up`.
 *
 * Each subcommand is one or a few requests on the control socket (control.h).  `connect`
 * polls while the VPN is connecting or waiting for web authentication, showing one progress
 * line, until it is connected, fails, or --timeout passes.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/control.h"
#include "runtime/compat.h"
#include "sandbox/secret.h"

int cli_vpn(int argc, char **argv);

static void vpn_usage(FILE *out)
{
	fprintf(out,
"usage: microvm vpn COMMAND [OPTIONS]\n"
"\n"
"Drive the VPN inside the appliance started with 'microvm up'.\n"
"\n"
"Commands:\n"
"  import FILE [--name NAME]     upload an OpenVPN profile (name: the file's name)\n"
"  connect NAME [--user USER] [--password-stdin] [--timeout SEC] [--no-wait]\n"
"                                start a profile (NAME as imported, with or without .ovpn);\n"
"                                if the server wants web authentication,\n"
"                                print the URL to open and wait (default 300 s) until the\n"
"                                VPN is up; the password is asked without echo\n"
"  status [--json]               state, tunnel address, web-auth URL, last error; exit\n"
"                                status 1 if not running (--json still prints an object:\n"
"                                {\"running\": false, \"error\": \"...\"})\n"
"  profiles [--json]             profiles stored in the appliance\n"
"  disconnect                    stop the VPN\n"
"\n"
"Every command takes --control PATH (default: see 'microvm up --help').\n"
"\n"
"Examples:\n"
"  microvm vpn import ~/corp.ovpn\n"
"  microvm vpn connect corp --user alice\n"
"  pass show corp | microvm vpn connect corp --user alice --password-stdin\n"
"  microvm vpn status --json | jq -r .tun_ip\n"
"  microvm vpn disconnect\n");
}

static const char *vpn_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static bool vpn_ok(const cJSON *resp)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok"));
}

/**
 * vpn_simple() - a request {"cmd": @cmd} and its answer
 * Return: the answer (NULL after printing why).
 */
static cJSON *vpn_simple(const char *path, const char *cmd)
{
	cJSON *req = cJSON_CreateObject();

	cJSON_AddStringToObject(req, "cmd", cmd);
	return ctl_call(path, req);
}

/**
 * struct vpn_opts - options shared by the subcommands
 */
struct vpn_opts {
	const char *control, *user, *name;
	bool json, password_stdin, no_wait;
	int timeout_s;
};

/**
 * vpn_parse() - options after the subcommand
 * Return: -1 to continue, else an exit status.
 */
static int vpn_parse(int argc, char **argv, struct vpn_opts *o)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'c' },
		{ "user", required_argument, NULL, 'u' },
		{ "name", required_argument, NULL, 'n' },
		{ "password-stdin", no_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "no-wait", no_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o->control = optarg; break;
		case 'u': o->user = optarg; break;
		case 'n': o->name = optarg; break;
		case 'p': o->password_stdin = true; break;
		case 'j': o->json = true; break;
		case 'W': o->no_wait = true; break;
		case 't':
			o->timeout_s = (int)strtol(optarg, &end, 10);
			if (!*optarg || *end || o->timeout_s <= 0) {
				fprintf(stderr, "microvm vpn: bad --timeout '%s'\n", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h':
			vpn_usage(stdout);
			return CLI_EXIT_OK;
		default:
			vpn_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	return -1;
}

/**
 * vpn_print_state() - human-readable VPN state
 */
static void vpn_print_state(const cJSON *vpn)
{
	const char *state = vpn_str(vpn, "state");

	printf("vpn:      %s\n", state);
	if (*vpn_str(vpn, "profile"))
		printf("profile:  %s\n", vpn_str(vpn, "profile"));
	if (*vpn_str(vpn, "tun_ip"))
		printf("tun ip:   %s\n", vpn_str(vpn, "tun_ip"));
	if (*vpn_str(vpn, "auth_url"))
		printf("auth url: %s\n", vpn_str(vpn, "auth_url"));
	if (*vpn_str(vpn, "error"))
		printf("error:    %s\n", vpn_str(vpn, "error"));
}

/**
 * vpn_import() - `vpn import FILE`: upload a profile through the appliance
 * @path:	control socket
 * @file:	profile file
 * @o:		options (--name)
 *
 * Return: exit status.
 */
static int vpn_import(const char *path, const char *file, const struct vpn_opts *o)
{
	char *content, tmp[CLI_PATH_MAX];
	cJSON *req, *resp;
	int ret;

	ret = ctl_read_file(file, &content);
	if (ret) {
		fprintf(stderr, "microvm vpn import: cannot read %s: %s\n", file, strerror(-ret));
		return CLI_EXIT_FAIL;
	}
	snprintf(tmp, sizeof(tmp), "%s", file);
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "cmd", "vpn_import");
	cJSON_AddStringToObject(req, "name", o->name ? o->name : mvm_fs_path_tail(tmp));
	cJSON_AddStringToObject(req, "content", content);
	free(content);
	resp = ctl_call(path, req);
	if (!resp)
		return CLI_EXIT_FAIL;
	ret = vpn_ok(resp) ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	if (ret)
		ctl_print_error("vpn import", resp);
	else
		printf("imported %s\n", o->name ? o->name : mvm_fs_path_tail(tmp));
	cJSON_Delete(resp);
	return ret;
}

/**
 * vpn_connect() - start a profile and wait until it is up (or fails)
 * @path:	control socket
 * @name:	profile name
 * @o:		options (--user, --password-stdin, --timeout, --no-wait)
 *
 * Return: exit status.
 */
static int vpn_connect(const char *path, const char *name, const struct vpn_opts *o)
{
	char pass[512];
	cJSON *req, *resp, *vpn;
	const char *state, *url, *next;
	bool shown_url = false, tty = isatty(STDERR_FILENO);
	time_t start = time(NULL);
	int ret, timeout = o->timeout_s ? o->timeout_s : 300;

	ctl_protect_process();	/* the password: no core dump */
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "cmd", "vpn_connect");
	cJSON_AddStringToObject(req, "name", name);
	if (o->user) {
		ret = ctl_read_password(o->password_stdin, "VPN password: ", pass, sizeof(pass));
		if (ret) {
			fprintf(stderr, "microvm vpn connect: no password (%s)\n",
				ret == -ENOTTY ? "no terminal; use --password-stdin"
					       : "empty or too long");
			cJSON_Delete(req);
			return CLI_EXIT_USAGE;
		}
		cJSON_AddStringToObject(req, "username", o->user);
		cJSON_AddStringToObject(req, "password", pass);
		explicit_bzero(pass, sizeof(pass));
	}
	resp = ctl_call(path, req);
	for (;;) {
		if (!resp)
			return CLI_EXIT_FAIL;
		if (!vpn_ok(resp)) {
			if (tty && shown_url)
				fprintf(stderr, "\n");
			ctl_print_error("vpn connect", resp);
			cJSON_Delete(resp);
			return CLI_EXIT_FAIL;
		}
		vpn = cJSON_GetObjectItemCaseSensitive(resp, "vpn");
		state = vpn_str(vpn, "state");
		url = vpn_str(vpn, "auth_url");
		if (!strcmp(state, "connected")) {
			if (tty && shown_url)
				fprintf(stderr, "\n");
			printf("connected: %s, tunnel address %s\n", name, vpn_str(vpn, "tun_ip"));
			cJSON_Delete(resp);
			return CLI_EXIT_OK;
		}
		if (strcmp(state, "connecting") && strcmp(state, "webauth_required")) {
			if (tty && shown_url)
				fprintf(stderr, "\n");
			ctl_print_failure("vpn connect", *vpn_str(vpn, "error") ?
					  vpn_str(vpn, "error") : state);
			cJSON_Delete(resp);
			return CLI_EXIT_FAIL;
		}
		if (*url && !shown_url) {
			printf("Web authentication required. Open this URL in a browser:\n  %s\n",
			       url);
			fflush(stdout);
			shown_url = true;
		}
		if (o->no_wait) {
			cJSON_Delete(resp);
			return CLI_EXIT_OK;
		}
		if (time(NULL) - start >= timeout) {
			fprintf(stderr, "%smicrovm vpn connect: still %s after %d s\n"
				"  next: 'microvm vpn status' shows the state; --timeout SEC waits "
				"longer\n", tty ? "\n" : "", state, timeout);
			cJSON_Delete(resp);
			return CLI_EXIT_FAIL;
		}
		if (tty) {
			fprintf(stderr, "\r%s... %lds ", strcmp(state, "connecting") ?
				"waiting for web authentication" : "connecting",
				(long)(time(NULL) - start));
			shown_url = true;
		}
		next = !strcmp(state, "webauth_required") ? "vpn_check_webauth" : "vpn_status";
		cJSON_Delete(resp);
		sleep(1);
		resp = vpn_simple(path, next);
	}
}

/**
 * vpn_status() - `vpn status [--json]`
 * @path:	control socket
 * @o:		options
 *
 * Return: exit status.
 */
static int vpn_status(const char *path, const struct vpn_opts *o)
{
	cJSON *resp = vpn_simple(path, "vpn_status"), *vpn;
	char *text;
	int ret = CLI_EXIT_OK;

	if (!resp) {
		if (o->json)
			ctl_print_json_failure(NULL);
		return CLI_EXIT_FAIL;
	}
	vpn = cJSON_GetObjectItemCaseSensitive(resp, "vpn");
	if (!vpn_ok(resp) || !cJSON_IsObject(vpn)) {
		ctl_print_error("vpn status", resp);
		if (o->json)
			ctl_print_json_failure(resp);
		cJSON_Delete(resp);
		return CLI_EXIT_FAIL;
	}
	if (o->json) {
		cJSON_AddBoolToObject(vpn, "running", true);
		text = cJSON_PrintUnformatted(vpn);
		printf("%s\n", text ? text : "{}");
		cJSON_free(text);
	} else {
		vpn_print_state(vpn);
	}
	cJSON_Delete(resp);
	return ret;
}

/**
 * vpn_profiles() - `vpn profiles [--json]`
 * @path:	control socket
 * @o:		options
 *
 * Return: exit status.
 */
static int vpn_profiles(const char *path, const struct vpn_opts *o)
{
	cJSON *resp = vpn_simple(path, "vpn_profiles"), *list, *it;
	char *text;

	if (!resp)
		return CLI_EXIT_FAIL;
	if (!vpn_ok(resp)) {
		ctl_print_error("vpn profiles", resp);
		cJSON_Delete(resp);
		return CLI_EXIT_FAIL;
	}
	list = cJSON_GetObjectItemCaseSensitive(resp, "profiles");
	if (o->json) {
		text = cJSON_PrintUnformatted(list);
		printf("%s\n", text ? text : "[]");
		cJSON_free(text);
	} else {
		cJSON_ArrayForEach(it, list)
			if (cJSON_IsString(it))
				printf("%s\n", it->valuestring);
	}
	cJSON_Delete(resp);
	return CLI_EXIT_OK;
}

/**
 * vpn_disconnect() - `vpn disconnect`
 * @path:	control socket
 *
 * Return: exit status.
 */
static int vpn_disconnect(const char *path)
{
	cJSON *resp = vpn_simple(path, "vpn_disconnect");
	int ret;

	if (!resp)
		return CLI_EXIT_FAIL;
	ret = vpn_ok(resp) ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	if (ret)
		ctl_print_error("vpn disconnect", resp);
	else
		printf("disconnected\n");
	cJSON_Delete(resp);
	return ret;
}

/**
 * cli_vpn() - `microvm vpn SUBCOMMAND ...`: dispatch
 * @argc/@argv:	argv[0] is "vpn"
 *
 * Return: exit status.
 */
int cli_vpn(int argc, char **argv)
{
	struct vpn_opts o = { 0 };
	char path[PATH_MAX];
	const char *sub;
	int ret;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		vpn_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	sub = argv[1];
	ret = vpn_parse(argc - 1, argv + 1, &o);
	if (ret >= 0)
		return ret;
	argc -= 1;
	argv += 1;
	if (ctl_path(o.control, path, sizeof(path))) {
		fprintf(stderr, "microvm vpn: control socket path too long\n");
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(sub, "import") || !strcmp(sub, "connect")) {
		if (optind + 1 != argc) {
			fprintf(stderr, "microvm vpn %s: needs exactly one %s\n", sub,
				!strcmp(sub, "import") ? "FILE" : "profile NAME");
			return CLI_EXIT_USAGE;
		}
		if (o.password_stdin && !o.user) {
			fprintf(stderr, "microvm vpn connect: --password-stdin needs --user\n");
			return CLI_EXIT_USAGE;
		}
		return !strcmp(sub, "import") ? vpn_import(path, argv[optind], &o)
					      : vpn_connect(path, argv[optind], &o);
	}
	if (optind != argc) {
		fprintf(stderr, "microvm vpn %s: unexpected argument '%s'\n", sub, argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(sub, "status"))
		return vpn_status(path, &o);
	if (!strcmp(sub, "profiles"))
		return vpn_profiles(path, &o);
	if (!strcmp(sub, "disconnect"))
		return vpn_disconnect(path);
	fprintf(stderr, "microvm vpn: unknown command '%s' (see 'microvm vpn --help')\n", sub);
	return CLI_EXIT_USAGE;
}
