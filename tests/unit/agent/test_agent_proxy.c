// SPDX-License-Identifier: MIT
/*
 * Unit tests for the inbound proxy (guest/agent/proxy.c), alone: clients over loopback TCP,
 * targets are listeners of the test, the VPN supervisor is a fake (fake_vpn.c) whose
 * changes the test reports through the listener proxy.c registered with vpn_on_change().
 *
 * The destination policy refuses loopback, which is all a unit test may connect to; the
 * test links with -Wl,--wrap=policy_check and lets 127.0.0.1 through when it says so.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_testlib.h"
#include "fake_vpn.h"

static struct agent a;
static bool allow_loopback;

enum policy_reason __real_policy_check(const struct policy *pol, const struct sockaddr *sa);
enum policy_reason __wrap_policy_check(const struct policy *pol, const struct sockaddr *sa);

/**
 * __wrap_policy_check() - policy_check(), but 127.0.0.1 is allowed while @allow_loopback
 * @pol:	policy
 * @sa:		address
 *
 * Return: the verdict
 */
enum policy_reason __wrap_policy_check(const struct policy *pol, const struct sockaddr *sa)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;

	if (allow_loopback && sa->sa_family == AF_INET &&
	    in4->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
		return POLICY_ALLOW;
	return __real_policy_check(pol, sa);
}

static int setup(void **state)
{
	unsigned short port;

	(void)state;
	fake_vpn_reset();
	tl_agent_init(&a);
	allow_loopback = true;
	assert_int_equal(proxy_init(&a, tl_tcp_listener(&port)), 0);
	assert_int_equal(fake_vpn.nlisteners, 2);	/* relays through the tunnel, its addresses */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	proxy_fini(&a);
	tl_agent_fini(&a);
	return 0;
}

/**
 * client() - a new proxy connection, served by proxy.c
 *
 * Return: the client's end (TCP over loopback, so that resets are visible)
 */
static int client(void)
{
	int c, s;

	tl_tcp_pair(&c, &s);
	proxy_adopt(&a, s);
	return c;
}

/**
 * handshake() - send [len][host][port BE]
 * @fd:		client
 * @host:	host
 * @port:	port
 * @extra:	bytes sent right behind it ("" for none)
 */
static void handshake(int fd, const char *host, unsigned short port, const char *extra)
{
	uint8_t buf[300];
	size_t n = strlen(host), m = strlen(extra);

	buf[0] = (uint8_t)n;
	memcpy(buf + 1, host, n);
	buf[1 + n] = (uint8_t)(port >> 8);
	buf[2 + n] = (uint8_t)port;
	memcpy(buf + 3 + n, extra, m);
	assert_int_equal(send(fd, buf, 3 + n + m, MSG_NOSIGNAL), (ssize_t)(3 + n + m));
}

/**
 * status() - the status byte the proxy answers
 * @fd:		client
 *
 * Return: the byte, or -1 if none came within 3 s
 */
static int status(int fd)
{
	uint8_t b;

	for (int i = 0; i < 300; i++) {
		if (recv(fd, &b, 1, MSG_DONTWAIT) == 1)
			return b;
		agent_loop_once(&a, 10);
	}
	return -1;
}

/**
 * target_accept() - the connection the proxy made to @lfd
 * @lfd:	the test's listener
 *
 * Return: the accepted socket (blocking)
 */
static int target_accept(int lfd)
{
	for (int i = 0; i < 300; i++) {
		int fd = accept(lfd, NULL, NULL);

		if (fd >= 0)
			return fd;
		agent_loop_once(&a, 10);
	}
	fail_msg("the proxy did not connect");
	return -1;
}

/**
 * expect_bytes() - @fd receives exactly @want next
 * @fd:		socket
 * @want:	text
 */
static void expect_bytes(int fd, const char *want)
{
	char buf[256];
	size_t n = 0, len = strlen(want);

	for (int i = 0; i < 300 && n < len; i++) {
		ssize_t r = recv(fd, buf + n, len - n, MSG_DONTWAIT);

		if (r > 0)
			n += (size_t)r;
		else if (r == 0)
			break;
		else
			agent_loop_once(&a, 10);
	}
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

/**
 * relay_to() - a client relayed to a new target of the test's listener @lfd
 * @lfd:	listener
 * @port:	its port
 * @target:	receives the target's end
 *
 * Return: the client's end, after the status byte 0x00
 */
static int relay_to(int lfd, unsigned short port, int *target)
{
	int c = client();

	handshake(c, "127.0.0.1", port, "early");
	*target = target_accept(lfd);
	assert_int_equal(status(c), HS_OK);
	expect_bytes(*target, "early");
	return c;
}

/* Malformed or truncated handshakes get 0x01 and the connection ends. */
static void test_bad_handshake(void **state)
{
	int c = client();

	(void)state;
	tl_send(c, "\x03" "a b");
	assert_int_equal(status(c), HS_ERR_GENERAL);
	assert_int_equal(tl_eof(&a, c, 3000), 0);
	close(c);
	c = client();
	tl_send(c, "\x09" "localh");
	assert_int_equal(shutdown(c, SHUT_WR), 0);
	assert_int_equal(status(c), HS_ERR_GENERAL);
	close(c);
	tl_pump(&a, 50);
	assert_int_equal(a.nproxies, 0);
}

/* The destination policy refuses: 0x02, and nothing is connected. */
static void test_policy_refusal(void **state)
{
	unsigned short port;
	int lfd = tl_tcp_listener(&port), c;

	(void)state;
	allow_loopback = false;
	c = client();
	handshake(c, "127.0.0.1", port, "");
	assert_int_equal(status(c), HS_ERR_NOT_ALLOWED);
	assert_int_equal(accept(lfd, NULL, NULL), -1);
	close(c);
	c = client();
	handshake(c, "0.0.0.0", port, "");
	assert_int_equal(status(c), HS_ERR_NOT_ALLOWED);
	close(c);
	c = client();
	handshake(c, "::1", port, "");
	assert_int_equal(status(c), HS_ERR_NOT_ALLOWED);
	close(c);
	close(lfd);
}

/* A closed port: connection refused, 0x05. */
static void test_refused(void **state)
{
	unsigned short port;
	int c;

	(void)state;
	close(tl_tcp_listener(&port));
	c = client();
	handshake(c, "127.0.0.1", port, "");
	assert_int_equal(status(c), HS_ERR_REFUSED);
	close(c);
}

/* Bytes both ways, bytes sent before the status byte, and half-close in both directions. */
static void test_relay_half_close(void **state)
{
	unsigned short port;
	int lfd = tl_tcp_listener(&port), c, t;

	(void)state;
	c = relay_to(lfd, port, &t);
	tl_send(t, "world");
	expect_bytes(c, "world");
	tl_send(c, "more");
	expect_bytes(t, "more");
	/* the client is done sending: the target sees the end, and can still answer */
	assert_int_equal(shutdown(c, SHUT_WR), 0);
	assert_int_equal(tl_eof(&a, t, 3000), 0);
	tl_send(t, "bye");
	expect_bytes(c, "bye");
	assert_int_equal(a.nproxies, 1);
	close(t);
	assert_int_equal(tl_eof(&a, c, 3000), 0);
	tl_pump(&a, 50);
	assert_int_equal(a.nproxies, 0);
	close(c);
	close(lfd);
}

/* An incomplete handshake times out with 0x01 after --connect-timeout. */
static void test_handshake_timeout(void **state)
{
	int c = client();

	(void)state;
	tl_send(c, "\x09" "loc");
	tl_pump(&a, 100);
	assert_int_equal(a.nproxies, 1);
	agent_clock_skip((uint64_t)a.opts.connect_timeout_s * 1000 + 1000);
	agent_tick(&a);
	assert_int_equal(status(c), HS_ERR_GENERAL);
	close(c);
}

/*
 * Relays through the tunnel are reset when the VPN goes down (the change listener, at once);
 * relays that were not through the tunnel carry on.
 */
static void test_reset_on_vpn_down(void **state)
{
	unsigned short port;
	int lfd = tl_tcp_listener(&port), c1, t1, c2, t2;

	(void)state;
	c1 = relay_to(lfd, port, &t1);	/* VPN down: not through the tunnel */
	fake_vpn.running = true;
	fake_vpn.view = VPN_VIEW_CONNECTED;
	strcpy(fake_vpn.tun_ip, "127.0.0.1");	/* the relay's local address is the tunnel's */
	fake_vpn_change(&a);
	c2 = relay_to(lfd, port, &t2);
	assert_int_equal(a.nproxies, 2);
	/* reconnected with the same address: nothing to reset */
	fake_vpn_change(&a);
	assert_int_equal(a.nproxies, 2);
	fake_vpn.view = VPN_VIEW_PENDING;
	fake_vpn.tun_ip[0] = '\0';
	fake_vpn_change(&a);
	assert_int_equal(a.nproxies, 1);	/* by the listener, not a tick */
	assert_int_equal(tl_eof(&a, c2, 3000), -ECONNRESET);
	assert_int_equal(tl_eof(&a, t2, 3000), -ECONNRESET);
	tl_send(t1, "still");
	expect_bytes(c1, "still");
	close(c1);
	close(t1);
	close(c2);
	close(t2);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_half_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_on_vpn_down, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
