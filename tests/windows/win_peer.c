/* SPDX-License-Identifier: MIT */
/*
 * win_peer.c - the Windows tests' harness and fake agent (see win_peer.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mvm_auth.h"
#include "win_peer.h"

int failed_checks;

bool recv_full(SOCKET c, void *buf, int len)
{
	int got = 0, n;

	while (got < len) {
		n = recv(c, (char *)buf + got, len - got, 0);
		if (n <= 0)
			return false;
		got += n;
	}
	return true;
}

/**
 * peer_proxy() - the agent's inbound proxy: read [len][host][port BE], record "host:port" in
 *		  @p->got, answer @p->status; on 0 echo what arrives until EOF, then send FIN
 * @p:	peer
 * @c:	the connection
 */
static void peer_proxy(struct peer *p, SOCKET c)
{
	uint8_t hs[258], buf[4096];
	int n;

	if (!recv_full(c, hs, 1) || !recv_full(c, hs + 1, hs[0] + 2))
		return;
	snprintf(p->got, sizeof(p->got), "%.*s:%u", hs[0], (const char *)hs + 1,
		 (unsigned int)(hs[1 + hs[0]] << 8 | hs[2 + hs[0]]));
	if (send(c, (const char *)&p->status, 1, 0) != 1 || p->status)
		return;
	while ((n = recv(c, (char *)buf, sizeof(buf), 0)) > 0)
		if (send(c, (const char *)buf, n, 0) != n)
			return;
	shutdown(c, SD_SEND);
}

/* peer_thread() - accept one connection and behave as @mode says. */
static void *peer_thread(void *arg)
{
	struct peer *p = arg;
	SOCKET c = accept(p->ls, NULL, NULL);
	size_t len = 0;
	int n;

	if (c == INVALID_SOCKET)
		return NULL;
	if (p->mode == PEER_AUTH_ECHO || p->mode == PEER_AUTH_OTHER) {
		uint8_t buf[MVM_AUTH_HELLO_LEN], out[MVM_AUTH_CHALLENGE_LEN];
		struct mvm_auth_key key = { 0 };
		struct mvm_auth st = { 0 };
		size_t want;
		int r = -EIO;

		if (!mvm_auth_key_init_hex(&key, p->mode == PEER_AUTH_ECHO ? SECRET : OTHER, 64) &&
		    !mvm_auth_agent_init(&st, &key, (uint32_t)p->port))
			r = MVM_AUTH_MORE;
		while ((want = mvm_auth_agent_want(&st)) > 0) {
			n = recv(c, (char *)buf, (int)want, 0);
			if (n <= 0)
				break;
			r = mvm_auth_agent_input(&st, buf, (size_t)n, out);
			if (r < 0)
				break;
			if (r == MVM_AUTH_SEND)
				send(c, (const char *)out, (int)sizeof(out), 0);
		}
		mvm_auth_wipe(&st);
		mvm_auth_key_fini(&key);
		if (r != MVM_AUTH_DONE) {
			closesocket(c);
			return NULL;
		}
		p->mode = PEER_ECHO;
	}
	if (p->mode == PEER_PROXY) {
		peer_proxy(p, c);
		closesocket(c);
		return NULL;
	}
	while (len < sizeof(p->got) - 1) {
		n = recv(c, p->got + len, 1, 0);
		if (n <= 0 || p->got[len] == '\n')
			break;
		len++;
	}
	p->got[len] = '\0';
	if (p->mode == PEER_ECHO) {
		char reply[300];

		snprintf(reply, sizeof(reply), "{\"echo\":\"%s\"}\n", p->got);
		send(c, reply, (int)strlen(reply), 0);
	} else if (p->mode == PEER_BIG) {
		static char big[20001];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 2] = '\n';
		send(c, big, (int)sizeof(big) - 1, 0);
	} else if (p->mode == PEER_HANG) {
		Sleep(1500);
	}
	closesocket(c);
	return NULL;
}

/* peer_start() - listen on an ephemeral loopback port and serve one connection. */
int peer_start(struct peer *p, enum peer_mode mode)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int len = sizeof(sa);

	memset(p, 0, sizeof(*p));
	p->mode = mode;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->ls = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (p->ls == INVALID_SOCKET || bind(p->ls, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(p->ls, 4) || getsockname(p->ls, (struct sockaddr *)&sa, &len))
		return -1;
	p->port = ntohs(sa.sin_port);
	return pthread_create(&p->thread, NULL, peer_thread, p) ? -1 : 0;
}

void peer_stop(struct peer *p)
{
	pthread_join(p->thread, NULL);
	closesocket(p->ls);
}

/* free_port() - a loopback port nothing listens on (bound, then closed). */
int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int len = sizeof(sa), port;
	SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(s, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(s, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	closesocket(s);
	return port;
}

int win_run_tests(const struct win_test *tests, size_t n)
{
	int passed = 0, failed = 0;
	size_t i;

	setvbuf(stdout, NULL, _IONBF, 0);
	for (i = 0; i < n; i++) {
		int before = failed_checks;

		tests[i].fn();
		if (failed_checks == before) {
			printf("ok %s\n", tests[i].name);
			passed++;
		} else {
			printf("FAIL %s\n", tests[i].name);
			failed++;
		}
	}
	printf("windows: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
