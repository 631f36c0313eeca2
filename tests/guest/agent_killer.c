// SPDX-License-Identifier: MIT
/*
 * agent_killer.c - TEST ONLY: a stand-in for /usr/bin/microvm-agent that lets a test kill the
 * real agent with SIGKILL from outside the guest (the nested tier's "agent killed" check).
 *
 * Theory of operation
 *
 *   Never part of the product image. The nested tier appends a second initramfs to the
 *   project's image that puts this program at /usr/bin/microvm-agent and the real agent at
 *   /usr/bin/microvm-agent.real (tests/nested/l1_checks.py). microvm-init starts it as the
 *   agent; it forks a watcher, then execs the real agent with the same arguments, so the
 *   process init supervises (same PID) is the real agent. The watcher reads the guest's
 *   console; on a line "kill-agent" (typed by the test through `microvm console`) it sends
 *   SIGKILL to that PID, says so on the console, and exits. Only the first run arms a
 *   watcher (/run/agent-killer.armed): the agent init restarts runs unwatched.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define REAL_AGENT "/usr/bin/microvm-agent.real"
#define ARMED "/run/agent-killer.armed"
#define TRIGGER "kill-agent"

/**
 * watch() - wait for TRIGGER on the console, then SIGKILL @agent
 * @agent:	PID of the real agent
 *
 * Return: exit status of the watcher
 */
static int watch(pid_t agent)
{
	char buf[256];
	size_t used = 0;
	int fd = open("/dev/console", O_RDONLY | O_NOCTTY | O_CLOEXEC);

	if (fd < 0) {
		dprintf(2, "agent-killer: /dev/console: %s\n", strerror(errno));
		return 1;
	}
	for (;;) {
		ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 1;
		used += (size_t)n;
		buf[used] = '\0';
		if (strstr(buf, TRIGGER))
			break;
		if (used == sizeof(buf) - 1)	/* a full buffer without the trigger: drop it */
			used = 0;
	}
	if (kill(agent, SIGKILL)) {
		dprintf(2, "agent-killer: kill %d: %s\n", (int)agent, strerror(errno));
		return 1;
	}
	dprintf(2, "agent-killer: sent SIGKILL to the agent (pid %d)\n", (int)agent);
	return 0;
}

int main(int argc, char **argv)
{
	int fd = open(ARMED, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	(void)argc;
	if (fd >= 0) {
		pid_t agent = getpid();
		pid_t pid;

		close(fd);
		pid = fork();
		if (pid == 0)
			_exit(watch(agent));
		if (pid < 0)
			dprintf(2, "agent-killer: fork: %s\n", strerror(errno));
	}
	argv[0] = (char *)REAL_AGENT;
	execv(REAL_AGENT, argv);
	dprintf(2, "agent-killer: exec %s: %s\n", REAL_AGENT, strerror(errno));
	return 127;
}
