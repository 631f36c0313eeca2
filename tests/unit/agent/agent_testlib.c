// SPDX-License-Identifier: MIT
/*
 * agent_testlib.c - see agent_testlib.h
 *
 * Every wait is bounded: a module that never answers makes the test fail after its
 * timeout instead of hanging the suite.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_testlib.h"

static char tmpdir[64];

/**
 * tl_agent_init() - an agent with default options, a fresh state and run directory, and
 * its event loop (no module initialised)
 * @a:		agent to fill in
 */
void tl_agent_init(struct agent *a)
{
	memset(a, 0, sizeof(*a));
	a->epfd = -1;
	a->quit = -1;
	a->opts.vsock = true;
	a->opts.connect_timeout_s = 10;
	a->opts.vpn_timeout_s = 60;
	a->opts.ctl_idle_s = AGENT_CTL_IDLE_S;
	strcpy(a->opts.tun_dev, "tun0");
	a->opts.verbose = getenv("TL_VERBOSE") != NULL;
	strcpy(tmpdir, "/tmp/agent-test-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(a->opts.state_dir, sizeof(a->opts.state_dir), "%s", tmpdir);
	snprintf(a->opts.run_dir, sizeof(a->opts.run_dir), "%s", tmpdir);
	snprintf(a->profile_dir, sizeof(a->profile_dir), "%s/profiles", tmpdir);
	assert_int_equal(mkdir(a->profile_dir, 0700), 0);
	strcpy(a->auth_secret, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	assert_int_equal(agent_loop_init(a), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/**
 * tl_agent_fini() - the loop's end and the temporary directory's (modules finished first)
 * @a:		agent
 */
void tl_agent_fini(struct agent *a)
{
	agent_loop_fini(a);
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/**
 * tl_pump() - run the agent's loop for about @ms milliseconds
 * @a:		agent
 * @ms:		how long
 */
void tl_pump(struct agent *a, int ms)
{
	for (int i = 0; i < ms; i += 10)
		agent_loop_once(a, 10);
}

/**
 * tl_wait() - run the loop until @cond holds
 * @a:		agent
 * @cond:	condition
 * @timeout_ms:	at most this long
 *
 * Return: whether @cond came true
 */
bool tl_wait(struct agent *a, bool (*cond)(struct agent *a), int timeout_ms)
{
	for (int i = 0; i < timeout_ms; i += 10) {
		if (cond(a))
			return true;
		agent_loop_once(a, 10);
	}
	return cond(a);
}

/**
 * tl_line() - read one line from @fd (the peer's side) while the agent's loop runs
 * @a:		agent
 * @fd:		peer socket
 * @buf:	receives the line without its newline
 * @size:	its size
 * @timeout_ms:	at most this long
 *
 * Reads byte by byte, so nothing after the line is consumed.
 *
 * Return: true when a whole line arrived
 */
bool tl_line(struct agent *a, int fd, char *buf, size_t size, int timeout_ms)
{
	size_t n = 0;

	for (int waited = 0; waited <= timeout_ms;) {
		char c;
		ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);

		if (r == 1) {
			if (c == '\n') {
				buf[n] = '\0';
				return true;
			}
			if (n + 1 < size)
				buf[n++] = c;
			continue;
		}
		if (r == 0 || (errno != EAGAIN && errno != EINTR))
			break;
		agent_loop_once(a, 10);
		waited += 10;
	}
	buf[n] = '\0';
	return false;
}

/**
 * tl_eof() - wait for the end of @fd's stream while the loop runs, dropping data
 * @a:		agent
 * @fd:		peer socket
 * @timeout_ms:	at most this long
 *
 * Return: 0 at end of stream, -errno on an error (-ECONNRESET: reset), -ETIMEDOUT
 */
int tl_eof(struct agent *a, int fd, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms;) {
		char c[256];
		ssize_t r = recv(fd, c, sizeof(c), MSG_DONTWAIT);

		if (r == 0)
			return 0;
		if (r > 0)
			continue;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		agent_loop_once(a, 10);
		waited += 10;
	}
	return -ETIMEDOUT;
}

/**
 * tl_send() - write all of @s to @fd (fails the test otherwise)
 * @fd:		socket
 * @s:		text
 */
void tl_send(int fd, const char *s)
{
	size_t n = strlen(s);

	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/**
 * tl_tcp_listener() - a TCP listener on 127.0.0.1, any port
 * @port:	receives the port
 *
 * Return: the listening socket (non-blocking, as the agent's listeners are)
 */
int tl_tcp_listener(unsigned short *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 128), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/**
 * tl_tcp_pair() - a connected TCP pair over loopback
 * @client:	receives the connecting end (blocking)
 * @server:	receives the accepted end (non-blocking, as the accept loop hands it over)
 */
void tl_tcp_pair(int *client, int *server)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	unsigned short port;
	int l = tl_tcp_listener(&port);

	sin.sin_port = htons(port);
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*client >= 0);
	assert_int_equal(connect(*client, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*server = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(*server >= 0);
	close(l);
}
