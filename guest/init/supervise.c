// SPDX-License-Identifier: MIT
/*
 * supervise.c - the policy half of the agent supervisor
 *
 * main.c forks and reaps; this file decides. When the agent ends, init_exit_action() maps
 * its wait status to an action: the documented exit codes INIT_EXIT_POWEROFF (100) and
 * INIT_EXIT_REBOOT (101) end the machine, anything else (another code, a signal) restarts
 * it. init_describe_end() words how a run ended ("killed by signal 9 (Killed) after 12.0 s");
 * init hands that to the restarted agent (INIT_AGENT_PREVIOUS_ENV), which reports it to the
 * host as the reason its VPN is down. Restarts are delayed by an exponential back-off: the
 * first quick failure waits min_ms, each further quick failure doubles the delay up to
 * max_ms, and a run that lasted at least stable_ms counts as healthy and starts again from
 * min_ms. A crash loop therefore
 * costs at most one start every max_ms, while a one-off crash is recovered quickly.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "init.h"

/**
 * init_backoff_init() - set up back-off state
 * @b:		state
 * @min_ms:	first delay (0 is taken as 1)
 * @max_ms:	largest delay (raised to @min_ms if smaller)
 * @stable_ms:	run time after which the agent counts as healthy
 */
void init_backoff_init(struct init_backoff *b, unsigned int min_ms, unsigned int max_ms,
		       unsigned int stable_ms)
{
	b->min_ms = min_ms ? min_ms : 1;
	b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
	b->stable_ms = stable_ms;
	b->cur_ms = 0;
}

/**
 * init_backoff_next() - delay before the next start, after a run of @ran_ms
 * @b:		state
 * @ran_ms:	how long the program ran before it ended
 *
 * Return: milliseconds to wait before starting the program again
 */
unsigned int init_backoff_next(struct init_backoff *b, uint64_t ran_ms)
{
	if (ran_ms >= b->stable_ms || b->cur_ms == 0)
		b->cur_ms = b->min_ms;
	else if (b->cur_ms > b->max_ms / 2)
		b->cur_ms = b->max_ms;
	else
		b->cur_ms *= 2;
	return b->cur_ms;
}

/**
 * init_exit_action() - what to do after the agent ended
 * @wstatus:	status from waitpid()
 *
 * Return: INIT_POWEROFF or INIT_REBOOT for the documented exit codes, else INIT_RESTART
 */
enum init_action init_exit_action(int wstatus)
{
	if (WIFEXITED(wstatus)) {
		if (WEXITSTATUS(wstatus) == INIT_EXIT_POWEROFF)
			return INIT_POWEROFF;
		if (WEXITSTATUS(wstatus) == INIT_EXIT_REBOOT)
			return INIT_REBOOT;
	}
	return INIT_RESTART;
}

/**
 * init_describe_end() - how a run of the agent ended, in words, for the user
 * @wstatus:	status from waitpid()
 * @ran_ms:	how long it ran
 * @buf:	output
 * @len:	size of @buf
 *
 * Return: @buf ("killed by signal 9 (Killed) after 12.0 s", "exited with status 3 after
 * 0.2 s")
 */
const char *init_describe_end(int wstatus, uint64_t ran_ms, char *buf, size_t len)
{
	unsigned long long s = ran_ms / 1000, tenths = ran_ms % 1000 / 100;

	if (WIFSIGNALED(wstatus))
		snprintf(buf, len, "killed by signal %d (%s) after %llu.%llu s", WTERMSIG(wstatus),
			 strsignal(WTERMSIG(wstatus)), s, tenths);
	else if (WIFEXITED(wstatus))
		snprintf(buf, len, "exited with status %d after %llu.%llu s", WEXITSTATUS(wstatus),
			 s, tenths);
	else
		snprintf(buf, len, "ended (status 0x%x) after %llu.%llu s", (unsigned int)wstatus,
			 s, tenths);
	return buf;
}

/**
 * init_agent_argv() - the agent's command line for the options (over TCP with the secret
 * file INIT_AGENT_SECRET)
 * @o:		options
 * @argv:	filled with pointers into @o and string constants, NULL-terminated
 * @n:		room in @argv
 *
 * Return: number of arguments, -ENOSPC if @argv is too small, -EINVAL for INIT_AGENT_NONE
 */
int init_agent_argv(const struct init_opts *o, const char **argv, size_t n)
{
	bool tcp = o->agent == INIT_AGENT_TCP;
	size_t i = 0;

	if (o->agent == INIT_AGENT_NONE)
		return -EINVAL;
	if (n < 4 + (o->listen[0] ? 2u : 0u) + (tcp ? 2u : 0u))
		return -ENOSPC;
	argv[i++] = INIT_AGENT_PATH;
	argv[i++] = "--transport";
	argv[i++] = tcp ? "tcp" : "vsock";
	if (o->listen[0]) {
		argv[i++] = "--listen";
		argv[i++] = o->listen;
	}
	if (tcp) {
		argv[i++] = "--auth-secret-file";
		argv[i++] = INIT_AGENT_SECRET;
	}
	argv[i] = NULL;
	return (int)i;
}
