/* SPDX-License-Identifier: MIT */
/*
 * test_win_socks.c - the SOCKS5 server (src/manager/socks5.c, on libuv's IOCP backend) built
 * for Windows, run under Wine (make windows).
 *
 * The guest side is the shared fake agent of win_peer.h in PEER_PROXY mode: it reads the
 * [len][host][port] handshake, answers the status byte chosen by the test and echoes.  The
 * server reaches it through the TCP vsock client, as with WSL2; the tests are its SOCKS5
 * clients (blocking Winsock with a receive timeout, so a hang fails instead of blocking).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "microvm/socks.h"
#include "microvm/vsock.h"
#include "runtime/compat.h"
#include "win_peer.h"

/**
 * struct srv - a SOCKS5 server in front of a fake agent on @agent_port
 */
struct srv {
	mvm_vsock *vs;
	mvm_socks *s;
	uint16_t port;
};

static int srv_start(struct srv *v, int agent_port, const char *user, const char *pass)
{
	struct mvm_socks_config cfg;

	memset(v, 0, sizeof(*v));
	v->vs = mvm_vsock_new_tcp("127.0.0.1");
	if (!v->vs)
		return -1;
	mvm_socks_config_init(&cfg);
	cfg.port = 0;
	cfg.agent_port = (uint32_t)agent_port;
	cfg.connect_timeout_ms = 3000;
	cfg.username = user;
	cfg.password = pass;
	v->s = mvm_socks_new(&cfg, v->vs);
	if (!v->s || mvm_socks_start(v->s))
		return -1;
	v->port = mvm_socks_port(v->s);
	return v->port ? 0 : -1;
}

static void srv_stop(struct srv *v)
{
	mvm_socks_free(v->s);
	mvm_vsock_free(v->vs);
}

/* client_connect() - a TCP connection to the server; 5 s receive timeout */
static SOCKET client_connect(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	DWORD tmo = 5000;
	SOCKET c = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	if (c == INVALID_SOCKET)
		return c;
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, (const char *)&tmo, sizeof(tmo));
	if (connect(c, (struct sockaddr *)&sa, sizeof(sa))) {
		closesocket(c);
		return INVALID_SOCKET;
	}
	return c;
}

static bool send_all(SOCKET c, const void *buf, int len)
{
	return send(c, (const char *)buf, len, 0) == len;
}

/* request_example() - CONNECT example.test:80 (a domain name: the agent resolves it) */
static bool request_example(SOCKET c)
{
	static const uint8_t req[] = { 5, 1, 0, 3, 12, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
				       '.', 't', 'e', 's', 't', 0, 80 };

	return send_all(c, req, sizeof(req));
}

/* no authentication: greeting, CONNECT, success, bytes both ways, half-close, counters */
static void test_connect_relay(void)
{
	struct peer p;
	struct srv v;
	struct mvm_socks_stats st;
	uint8_t r[16];
	char echo[6] = "";
	SOCKET c;
	int i;

	CHECK(peer_start(&p, PEER_PROXY) == 0);
	CHECK(srv_start(&v, p.port, NULL, NULL) == 0);
	c = client_connect(v.port);
	CHECK(c != INVALID_SOCKET);
	CHECK(send_all(c, "\x05\x01\x00", 3));
	CHECK(recv_full(c, r, 2) && r[0] == 5 && r[1] == 0);
	CHECK(request_example(c));
	CHECK(recv_full(c, r, 10) && r[0] == 5 && r[1] == 0 && r[3] == 1);
	CHECK(send_all(c, "hello", 5));
	CHECK(recv_full(c, echo, 5) && memcmp(echo, "hello", 5) == 0);
	shutdown(c, SD_SEND);			/* -> FIN to the agent, which ends its echo */
	CHECK(recv(c, (char *)r, 1, 0) == 0);	/* its FIN comes back through the relay */
	closesocket(c);
	peer_stop(&p);
	CHECK(strcmp(p.got, "example.test:80") == 0);
	for (i = 0; i < 50; i++) {		/* the loop frees the connection right after */
		mvm_socks_stats(v.s, &st);
		if (!st.active)
			break;
		Sleep(20);
	}
	CHECK(st.active == 0 && st.accepted == 1 && st.relayed == 1 && st.refused == 0);
	CHECK(st.bytes_up == 5 && st.bytes_down == 5);
	srv_stop(&v);
}

/* the agent's "refused" status becomes SOCKS reply 0x05, then the server closes */
static void test_agent_refuses(void)
{
	struct peer p;
	struct srv v;
	uint8_t r[16];
	SOCKET c;

	CHECK(peer_start(&p, PEER_PROXY) == 0);
	p.status = MVM_PROXY_ERR_REFUSED;	/* read after the handshake arrives */
	CHECK(srv_start(&v, p.port, NULL, NULL) == 0);
	c = client_connect(v.port);
	CHECK(send_all(c, "\x05\x01\x00", 3) && recv_full(c, r, 2));
	CHECK(request_example(c));
	CHECK(recv_full(c, r, 10) && r[0] == 5 && r[1] == 5);
	CHECK(recv(c, (char *)r, 1, 0) == 0);
	closesocket(c);
	peer_stop(&p);
	srv_stop(&v);
}

/* nothing listens on the agent port: the path to the agent failed, general failure 0x01 */
static void test_agent_unreachable(void)
{
	struct srv v;
	uint8_t r[16];
	SOCKET c;

	CHECK(srv_start(&v, free_port(), NULL, NULL) == 0);
	c = client_connect(v.port);
	CHECK(send_all(c, "\x05\x01\x00", 3) && recv_full(c, r, 2));
	CHECK(request_example(c));
	CHECK(recv_full(c, r, 10) && r[0] == 5 && r[1] == 1);
	closesocket(c);
	srv_stop(&v);
}

/* username/password: a wrong password is refused, the right one gets through */
static void test_auth(void)
{
	static const uint8_t bad[] = { 1, 4, 'u', 's', 'e', 'r', 3, 'b', 'a', 'd' };
	static const uint8_t good[] = { 1, 4, 'u', 's', 'e', 'r', 4, 'p', 'a', 's', 's' };
	struct peer p;
	struct srv v;
	uint8_t r[16];
	SOCKET c;

	CHECK(peer_start(&p, PEER_PROXY) == 0);
	CHECK(srv_start(&v, p.port, "user", "pass") == 0);
	c = client_connect(v.port);
	CHECK(send_all(c, "\x05\x01\x00", 3));		/* no-auth only: not acceptable */
	CHECK(recv_full(c, r, 2) && r[1] == 0xff);
	closesocket(c);
	c = client_connect(v.port);
	CHECK(send_all(c, "\x05\x01\x02", 3) && recv_full(c, r, 2) && r[1] == 2);
	CHECK(send_all(c, bad, sizeof(bad)) && recv_full(c, r, 2) && r[1] == 1);
	closesocket(c);
	c = client_connect(v.port);
	CHECK(send_all(c, "\x05\x01\x02", 3) && recv_full(c, r, 2) && r[1] == 2);
	CHECK(send_all(c, good, sizeof(good)) && recv_full(c, r, 2) && r[1] == 0);
	CHECK(request_example(c));
	CHECK(recv_full(c, r, 10) && r[1] == 0);
	closesocket(c);
	peer_stop(&p);
	srv_stop(&v);
}

/* stop closes the listener; a new start listens again */
static void test_stop_start(void)
{
	struct srv v;
	uint16_t old;

	CHECK(srv_start(&v, free_port(), NULL, NULL) == 0);
	old = v.port;
	mvm_socks_stop(v.s);
	CHECK(mvm_socks_port(v.s) == 0);
	CHECK(client_connect(old) == INVALID_SOCKET);
	CHECK(mvm_socks_start(v.s) == 0);
	CHECK(mvm_socks_port(v.s) != 0);
	srv_stop(&v);
}

int main(void)
{
	static const struct win_test tests[] = {
		{ "connect_relay", test_connect_relay },
		{ "agent_refuses", test_agent_refuses },
		{ "agent_unreachable", test_agent_unreachable },
		{ "auth", test_auth },
		{ "stop_start", test_stop_start },
	};

	mvm_sock_init();
	return win_run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
