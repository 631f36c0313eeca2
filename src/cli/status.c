/* SPDX-License-Identifier: MIT */
/*
 * status.c - `microvm status`, `microvm down`, `microvm console`: small clients of the control
 * socket of `microvm up` (see control.h).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <termios.h>
#endif

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/control.h"

int cli_status(int argc, char **argv);
int cli_down(int argc, char **argv);
int cli_console(int argc, char **argv);

static const char *const st_help[] = {
	"usage: microvm status [--json] [--control PATH]\n"
	"\n"
	"Show the appliance started with 'microvm up': first one line that says what the state\n"
	"means and what to do next, then VM, hypervisor, agent, VPN state, tunnel address,\n"
	"web-auth URL, SOCKS5 proxy, last error, and the fault if the guest side does not work\n"
	"right now (guest stopped and why, agent not answering, VPN down and why).\n"
	"Exit status 1 if it is not running;\n"
	"with --json the output is still an object: {\"running\": false, \"error\": \"...\"}.\n"
	"\n"
	"Examples:\n"
	"  microvm status\n"
	"  microvm status --json | jq .vpn.state\n",

	"usage: microvm down [--control PATH]\n"
	"\n"
	"Stop the appliance started with 'microvm up': the SOCKS5 proxy closes, the agent is told\n"
	"to shut down and the VM is stopped (killed if it has not stopped after the time\n"
	"given to 'microvm up --stop-timeout', 10 s by default).\n"
	"\n"
	"Example:\n"
	"  microvm down\n",

	"usage: microvm console [--no-follow] [--control PATH]\n"
	"\n"
	"Print the VM's console (the last 64 KiB first, then live) and send what you type to it.\n"
	"On a terminal the keys go to the guest as typed (Ctrl-C too); Ctrl-] quits.  Not\n"
	"available when 'microvm up' attached to an agent without a VM.\n"
	"\n"
	"  --no-follow    print what the console holds now (the last 64 KiB at most) and exit\n"
	"                 at once; nothing is sent to the guest\n"
	"\n"
	"Examples:\n"
	"  microvm console\n"
	"  microvm console --no-follow | tail -20\n"
	"  microvm console </dev/null | tee guest.log\n",
};

/**
 * st_parse() - --json, --control, --help
 * Return: -1 to continue, else an exit status.
 */
static int st_parse(int argc, char **argv, int which, bool *json, const char **control)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "no-follow", no_argument, NULL, 'n' },
		{ "control", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
		case 'n':	/* --json for status, --no-follow for console */
			if (!json || (c == 'n') != (which == 2))
				goto usage;
			*json = true;
			break;
		case 'c':
			*control = optarg;
			break;
		case 'h':
			fputs(st_help[which], stdout);
			return CLI_EXIT_OK;
		default:
			goto usage;
		}
	}
	if (optind == argc)
		return -1;
usage:
	fputs(st_help[which], stderr);
	return CLI_EXIT_USAGE;
}

static const char *st_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static bool st_bool(const cJSON *o, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/**
 * st_explain() - the state of the appliance in one sentence, with the next step
 * @st:		the status object of `up`
 *
 * The first line of `microvm status`: what the combination of VM, agent and VPN state
 * means for the user, and the command that moves it on.
 *
 * Return: a static sentence.
 */
static const char *st_explain(const cJSON *st)
{
	static const struct {
		const char *state;
		const char *text;
	} vpn[] = {
		{ "disconnected", "up, no VPN connected: connect one with 'microvm vpn connect "
				  "NAME --user USER'" },
		{ "connecting", "up, the VPN is connecting: 'microvm vpn status' shows when it is "
				"done" },
		{ "webauth_required", "up, the VPN server waits for you to log in: open the auth "
				      "url below in a browser" },
		{ "connected", "up, the VPN is connected: connections through the SOCKS5 proxy "
			       "below reach it" },
		{ "error", "up, the last VPN attempt failed (error below): fix it, then 'microvm "
			   "vpn connect NAME' again" },
	};
	const char *state = st_str(cJSON_GetObjectItemCaseSensitive(st, "vpn"), "state");
	size_t i;

	if (!st_bool(st, "vm_running"))
		return "the VM is not running: 'microvm down', then 'microvm up --detach' starts "
		       "it again";
	if (!st_bool(st, "agent_reachable"))
		return "the VM runs but its agent does not answer (still booting, or it failed): "
		       "'microvm console' shows the guest";
	for (i = 0; i < sizeof(vpn) / sizeof(vpn[0]); i++)
		if (!strcmp(state, vpn[i].state))
			return vpn[i].text;
	return "up, the VPN state is not known yet: ask again with 'microvm status'";
}

/**
 * st_print() - the status for people: one explaining sentence, then the details
 */
static void st_print(const cJSON *st)
{
	const cJSON *vpn = cJSON_GetObjectItemCaseSensitive(st, "vpn");
	const cJSON *socks = cJSON_GetObjectItemCaseSensitive(st, "socks");
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(socks, "port");

	printf("microvm:   %s\n", st_explain(st));

	printf("vm:        %s%s%s\n", st_bool(st, "vm_running") ? "running" : "stopped",
	       *st_str(st, "hypervisor") ? " on " : "", st_str(st, "hypervisor"));
	printf("agent:     %s\n", st_bool(st, "agent_reachable") ? "reachable" : "not reachable");
	printf("vpn:       %s\n", st_str(vpn, "state"));
	if (*st_str(vpn, "tun_ip"))
		printf("tun ip:    %s\n", st_str(vpn, "tun_ip"));
	if (*st_str(vpn, "auth_url"))
		printf("auth url:  %s\n", st_str(vpn, "auth_url"));
	if (st_bool(socks, "running"))
		printf("socks5:    %s:%d%s\n", st_str(socks, "address"),
		       cJSON_IsNumber(port) ? port->valueint : 0,
		       st_bool(socks, "auth") ? " (username/password)" : "");
	else
		printf("socks5:    off\n");
	if (*st_str(socks, "secret_file"))
		printf("secret:    %s\n", st_str(socks, "secret_file"));
	if (*st_str(st, "fault"))
		printf("fault:     %s\n", st_str(st, "fault"));
	if (*st_str(st, "last_error") && strcmp(st_str(st, "last_error"), st_str(st, "fault")))
		printf("error:     %s\n", st_str(st, "last_error"));
}

/**
 * cli_status() - `microvm status [--json]`
 * @argc/@argv:	argv[0] is "status"
 *
 * Return: exit status (1 when not running).
 */
int cli_status(int argc, char **argv)
{
	const char *control = NULL;
	char path[PATH_MAX], *text;
	bool json = false;
	cJSON *req, *resp, *st;
	int ret;

	ret = st_parse(argc, argv, 0, &json, &control);
	if (ret >= 0)
		return ret;
	if (ctl_path(control, path, sizeof(path)))
		return CLI_EXIT_USAGE;
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "cmd", "status");
	resp = ctl_call(path, req);
	if (!resp) {
		if (json)
			ctl_print_json_failure(NULL);
		return CLI_EXIT_FAIL;
	}
	st = cJSON_GetObjectItemCaseSensitive(resp, "status");
	if (!st_bool(resp, "ok") || !cJSON_IsObject(st)) {
		ctl_print_error("status", resp);
		if (json)
			ctl_print_json_failure(resp);
		cJSON_Delete(resp);
		return CLI_EXIT_FAIL;
	}
	if (json) {
		cJSON_AddBoolToObject(st, "running", true);
		text = cJSON_Print(st);
		printf("%s\n", text ? text : "{}");
		cJSON_free(text);
	} else {
		st_print(st);
	}
	cJSON_Delete(resp);
	return CLI_EXIT_OK;
}

/**
 * cli_down() - `microvm down`: stop the appliance and wait until it has stopped
 * @argc/@argv:	argv[0] is "down"
 *
 * Return: exit status.
 */
int cli_down(int argc, char **argv)
{
	const char *control = NULL;
	char path[PATH_MAX];
	cJSON *req, *resp;
	int ret;

	ret = st_parse(argc, argv, 1, NULL, &control);
	if (ret >= 0)
		return ret;
	if (ctl_path(control, path, sizeof(path)))
		return CLI_EXIT_USAGE;
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "cmd", "down");
	resp = ctl_call(path, req);
	if (!resp)
		return CLI_EXIT_FAIL;
	ret = st_bool(resp, "ok") ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	if (ret)
		ctl_print_error("down", resp);
	else
		printf("stopped\n");
	cJSON_Delete(resp);
	return ret;
}

/**
 * st_console_ask() - send the request @cmd of the console family on @c, take its answer line
 * @c:		control connection
 * @cmd:	"console" or "console_read"
 *
 * Return: the `{"ok":true,...}` answer (the caller deletes it; raw bytes follow it), or NULL
 * after saying why.
 */
static cJSON *st_console_ask(ctl_conn c, const char *cmd)
{
	cJSON *req, *resp = NULL;
	int ret;

	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "cmd", cmd);
	ret = ctl_send(c, req);
	cJSON_Delete(req);
	if (ret || ctl_recv(c, &resp) || !st_bool(resp, "ok")) {
		if (resp)
			ctl_print_error("console", resp);
		else
			fprintf(stderr, "microvm console: no answer\n");
		cJSON_Delete(resp);
		return NULL;
	}
	return resp;
}

/**
 * st_console_dump() - `console --no-follow`: print what the console holds now, then return
 * @c:	control connection (no request sent yet)
 *
 * Asks `console_read` (docs/appliance.md): the answer line gives the number of bytes, the
 * console's contents at that instant (the last 64 KiB at most), which follow it raw.
 *
 * Return: 0, or -1 (no answer, an error answer, a short read, or stdout failed).
 */
#define ST_DUMP_READ_MS		5000	/* the bytes follow the answer at once */
static int st_console_dump(ctl_conn c)
{
	cJSON *resp, *bytes;
	size_t want, got = 0;
	char buf[4096];
	long n;

	resp = st_console_ask(c, "console_read");
	if (!resp)
		return -1;
	bytes = cJSON_GetObjectItemCaseSensitive(resp, "bytes");
	if (!cJSON_IsNumber(bytes) || bytes->valuedouble < 0 || bytes->valuedouble > (1 << 30)) {
		fprintf(stderr, "microvm console: bad answer\n");
		cJSON_Delete(resp);
		return -1;
	}
	want = (size_t)bytes->valuedouble;
	cJSON_Delete(resp);
	while (got < want) {
		n = ctl_read(c, buf, want - got < sizeof(buf) ? want - got : sizeof(buf),
			     ST_DUMP_READ_MS);
		if (n <= 0) {
			fprintf(stderr, "microvm console: the console's bytes were cut short\n");
			return -1;
		}
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -1;
		got += (size_t)n;
	}
	return fflush(stdout) ? -1 : 0;
}

/**
 * struct st_term - the terminal (Windows: console) stdin is, switched to raw input
 * @raw:	it is one, and it was switched
 * @old:	its settings before
 */
struct st_term {
	bool raw;
#ifdef _WIN32
	DWORD old;
#else
	struct termios old;
#endif
};

/**
 * st_term_raw() - keys, Ctrl-C included, go to the guest as typed; no local echo
 */
static void st_term_raw(struct st_term *t)
{
#ifdef _WIN32
	HANDLE in = GetStdHandle(STD_INPUT_HANDLE);

	t->raw = GetConsoleMode(in, &t->old) &&
		 SetConsoleMode(in, ENABLE_VIRTUAL_TERMINAL_INPUT);
#else
	struct termios raw;

	t->raw = false;
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->old) == 0) {
		raw = t->old;
		cfmakeraw(&raw);
		t->raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
#endif
}

static void st_term_restore(struct st_term *t)
{
	if (!t->raw)
		return;
#ifdef _WIN32
	SetConsoleMode(GetStdHandle(STD_INPUT_HANDLE), t->old);
#else
	tcsetattr(STDIN_FILENO, TCSANOW, &t->old);
#endif
}

/**
 * struct st_pump - the console session
 * @c:		control connection in console mode
 * @tty:	stdin is a raw terminal: Ctrl-] quits
 */
struct st_pump {
	ctl_conn c;
	bool tty;
};

/**
 * st_console_input() - thread: stdin to the console until EOF, an error or Ctrl-]
 *
 * EOF on stdin only stops the input side; Ctrl-] (on a terminal) ends the session, which
 * wakes the output side blocked in ctl_read().
 */
static void *st_console_input(void *arg)
{
	struct st_pump *p = arg;
	char buf[4096], *quit;
	long n;

	for (;;) {
#ifdef _WIN32
		DWORD got = 0;

		n = ReadFile(GetStdHandle(STD_INPUT_HANDLE), buf, sizeof(buf), &got, NULL)
			? (long)got : -1;
#else
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
#endif
		if (n <= 0)
			return NULL;
		quit = p->tty ? memchr(buf, 0x1d, (size_t)n) : NULL;
		if (quit)
			n = quit - buf;
		if ((n > 0 && ctl_write(p->c, buf, (size_t)n)) || quit) {
			ctl_interrupt(p->c);
			return NULL;
		}
	}
}

/**
 * st_console_pump() - console bytes to stdout, stdin to the console (st_console_input())
 * @c:	control connection in console mode
 *
 * On a terminal, stdin is switched to raw mode (keys, Ctrl-C included, go to the guest) and
 * Ctrl-] quits.  Output goes on until the appliance closes the stream, Ctrl-] or the
 * process is interrupted.
 */
static void st_console_pump(ctl_conn c)
{
	struct st_pump p = { .c = c };
	struct st_term t;
	pthread_t input;
	bool have_input;
	char buf[4096];
	long n;

	st_term_raw(&t);
	p.tty = t.raw;
	if (t.raw)
		fprintf(stderr, "microvm console: Ctrl-] to quit\r\n");
	have_input = pthread_create(&input, NULL, st_console_input, &p) == 0;
	for (;;) {
		n = ctl_read(c, buf, sizeof(buf), -1);
		if (n <= 0 || fwrite(buf, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout))
			break;
	}
	st_term_restore(&t);
	/* the input thread may be blocked reading stdin: the process' exit ends it */
	if (have_input)
		pthread_detach(input);
}

/**
 * cli_console() - `microvm console`: copy the console stream to stdout until EOF
 * @argc/@argv:	argv[0] is "console"
 *
 * Return: exit status.
 */
int cli_console(int argc, char **argv)
{
	const char *control = NULL;
	char path[PATH_MAX];
	cJSON *resp;
	bool no_follow = false;
	ctl_conn c;
	int ret;

	ret = st_parse(argc, argv, 2, &no_follow, &control);
	if (ret >= 0)
		return ret;
	if (ctl_path(control, path, sizeof(path)))
		return CLI_EXIT_USAGE;
	if (ctl_connect(path, &c)) {
		fprintf(stderr, "microvm console: not running (cannot reach %s)\n", path);
		return CLI_EXIT_FAIL;
	}
	if (no_follow) {
		ret = st_console_dump(c) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
		ctl_close(c);
		return ret;
	}
	resp = st_console_ask(c, "console");
	if (!resp) {
		ctl_close(c);
		return CLI_EXIT_FAIL;
	}
	cJSON_Delete(resp);
	st_console_pump(c);
	ctl_close(c);
	return CLI_EXIT_OK;
}
