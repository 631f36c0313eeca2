// SPDX-License-Identifier: MIT
/*
 * Unit tests for the control port (guest/agent/control.c), alone: requests over a
 * socketpair (or the TCP listener), the VPN supervisor a fake (fake_vpn.c) whose changes
 * the test reports through the listener control.c registered with vpn_on_change().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_testlib.h"
#include "fake_vpn.h"

static const char profile[] = "client\ndev tun\nproto udp\nremote 192.0.2.1 1194\n";

static struct agent a;
static unsigned short port;

static int setup(void **state)
{
	int lfd;

	(void)state;
	fake_vpn_reset();
	tl_agent_init(&a);
	lfd = tl_tcp_listener(&port);
	assert_int_equal(ctl_init(&a, lfd), 0);
	assert_int_equal(fake_vpn.nlisteners, 1);
	assert_int_equal(profile_store(a.profile_dir, "corp", profile, strlen(profile)), 0);
	assert_int_equal(profile_store(a.profile_dir, "home", profile, strlen(profile)), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ctl_fini(&a);
	tl_agent_fini(&a);
	return 0;
}

/**
 * client() - a new control connection, served by control.c
 *
 * Return: the client's end of a socketpair
 */
static int client(void)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
			 0);
	ctl_adopt(&a, sv[1]);
	return sv[0];
}

/**
 * expect() - the next answer line on @fd is @want
 * @fd:		client end
 * @want:	the line
 */
static void expect(int fd, const char *want)
{
	char line[1024];

	assert_true(tl_line(&a, fd, line, sizeof(line), 3000));
	assert_string_equal(line, want);
}

/**
 * silent() - nothing arrives on @fd for a while (a parked request)
 * @fd:		client end
 */
static void silent(int fd)
{
	char c;

	tl_pump(&a, 200);
	assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* Through the listener (vsock: no authentication), lines in order, CRLF and empty lines. */
static void test_framing(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)state;
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	tl_send(fd, "{\"cmd\":\"ping\"}\n\r\n\n{\"cmd\":\"get_auth_secret\"}\r\n{\"cmd\":\"pi");
	expect(fd, "{\"status\":\"pong\"}");
	expect(fd, "{\"status\":\"ok\",\"auth_secret\":\"00112233445566778899aabbccddeeff"
		   "00112233445566778899aabbccddeeff\"}");
	silent(fd);
	tl_send(fd, "ng\"}\n");
	expect(fd, "{\"status\":\"pong\"}");
	assert_int_equal(a.nctl, 1);
	close(fd);
	tl_pump(&a, 50);
	assert_int_equal(a.nctl, 0);
}

/* Bad requests get an error line and the connection stays usable. */
static void test_errors(void **state)
{
	char line[512];
	int fd = client();

	(void)state;
	tl_send(fd, "not json\n{\"cmd\":\"nope\"}\n{\"cmd\":\"vpn_start\"}\n{\"cmd\":\"ping\"}\n");
	for (int i = 0; i < 3; i++) {
		assert_true(tl_line(&a, fd, line, sizeof(line), 3000));
		assert_non_null(strstr(line, "{\"status\":\"error\",\"error\":"));
	}
	expect(fd, "{\"status\":\"pong\"}");
	tl_send(fd, "{\"cmd\":\"vpn_start\",\"profile\":\"missing\"}\n");
	assert_true(tl_line(&a, fd, line, sizeof(line), 3000));
	assert_non_null(strstr(line, "\"status\":\"error\""));
	assert_int_equal(fake_vpn.starts, 0);
	close(fd);
}

/* A line longer than AGENT_LINE_MAX: an error answer, then the connection is closed. */
static void test_long_line(void **state)
{
	static char chunk[65536];
	size_t sent = 0;
	char line[512];
	int fd = client();

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	while (sent <= AGENT_LINE_MAX + sizeof(chunk)) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0)
			sent += (size_t)n;
		else if (errno == EAGAIN)
			agent_loop_once(&a, 10);
		else
			break;	/* the agent closed: read the answer */
	}
	assert_true(tl_line(&a, fd, line, sizeof(line), 3000));
	assert_string_equal(line, "{\"status\":\"error\",\"error\":\"request line longer than "
			    AGENT_LINE_MAX_TEXT "\"}");
	assert_int_equal(tl_eof(&a, fd, 5000), 0);
	close(fd);
}

/* One connection more than AGENT_CTL_CONN_MAX is told so and closed. */
static void test_connection_cap(void **state)
{
	int fds[AGENT_CTL_CONN_MAX], extra;

	(void)state;
	for (int i = 0; i < AGENT_CTL_CONN_MAX; i++)
		fds[i] = client();
	assert_int_equal(a.nctl, AGENT_CTL_CONN_MAX);
	extra = client();
	expect(extra, "{\"status\":\"error\",\"error\":\"too many control connections (at most "
		      "64)\"}");
	assert_int_equal(tl_eof(&a, extra, 1000), 0);
	close(extra);
	close(fds[0]);
	tl_pump(&a, 50);
	extra = client();
	tl_send(extra, "{\"cmd\":\"ping\"}\n");
	expect(extra, "{\"status\":\"pong\"}");
	close(extra);
	for (int i = 1; i < AGENT_CTL_CONN_MAX; i++)
		close(fds[i]);
}

/* Idle connections are closed after --control-idle-timeout; parked ones are not. */
static void test_idle_timeout(void **state)
{
	int idle = client(), parked = client();

	(void)state;
	tl_send(parked, "{\"cmd\":\"vpn_start\",\"profile\":\"corp\"}\n");
	silent(parked);
	agent_clock_skip((uint64_t)a.opts.ctl_idle_s * 1000 - 2000);
	agent_tick(&a);
	tl_send(idle, "{\"cmd\":\"ping\"}\n");	/* progress: the idle clock starts again */
	expect(idle, "{\"status\":\"pong\"}");
	agent_clock_skip(3000);
	agent_tick(&a);
	assert_int_equal(a.nctl, 2);
	agent_clock_skip((uint64_t)a.opts.ctl_idle_s * 1000);
	agent_tick(&a);
	assert_int_equal(tl_eof(&a, idle, 1000), 0);
	assert_int_equal(a.nctl, 1);
	fake_vpn.view = VPN_VIEW_CONNECTED;
	strcpy(fake_vpn.tun_ip, "10.8.0.2");
	fake_vpn_change(&a);
	expect(parked, "{\"status\":\"connected\",\"tun_ip\":\"10.8.0.2\"}");
	close(idle);
	close(parked);
}

/* vpn_start parks the connection; later requests wait; the change answers in order. */
static void test_start_deferred(void **state)
{
	int fd = client();

	(void)state;
	tl_send(fd, "{\"cmd\":\"vpn_start\",\"profile\":\"corp.ovpn\",\"username\":\"u\","
		    "\"password\":\"p\",\"timeout\":30}\n{\"cmd\":\"ping\"}\n");
	silent(fd);
	assert_int_equal(fake_vpn.starts, 1);
	assert_string_equal(fake_vpn.profile, "corp");
	assert_string_equal(fake_vpn.user, "u");
	assert_string_equal(fake_vpn.pass, "p");
	assert_int_equal(fake_vpn.timeout_s, 30);
	fake_vpn_change(&a);	/* still pending: no answer */
	silent(fd);
	fake_vpn.view = VPN_VIEW_WEBAUTH;
	strcpy(fake_vpn.auth_url, "https://sso.example.com/");
	fake_vpn_change(&a);
	expect(fd, "{\"status\":\"webauth_required\",\"auth_url\":\"https://sso.example.com/\"}");
	expect(fd, "{\"status\":\"pong\"}");
	/* the user finishes: check_webauth reports the outcome */
	fake_vpn.view = VPN_VIEW_CONNECTED;
	strcpy(fake_vpn.tun_ip, "10.8.0.2");
	fake_vpn_change(&a);
	tl_send(fd, "{\"cmd\":\"vpn_check_webauth\"}\n{\"cmd\":\"vpn_status\"}\n");
	expect(fd, "{\"status\":\"connected\",\"tun_ip\":\"10.8.0.2\"}");
	expect(fd, "{\"status\":\"connected\",\"tun_ip\":\"10.8.0.2\",\"dev\":\"tun0\","
		   "\"profile\":\"corp\",\"state\":\"CONNECTED\"}");
	close(fd);
}

/* A failed start answers with the reason; another profile while running is refused. */
static void test_start_failed_and_busy(void **state)
{
	int fd = client(), other = client();

	(void)state;
	tl_send(fd, "{\"cmd\":\"vpn_start\",\"profile\":\"corp\"}\n");
	silent(fd);
	tl_send(other, "{\"cmd\":\"vpn_start\",\"profile\":\"home\"}\n");
	expect(other, "{\"status\":\"error\",\"error\":\"vpn already started with profile corp; "
		      "vpn_stop first\"}");
	/* the same profile joins the session */
	tl_send(other, "{\"cmd\":\"vpn_start\",\"profile\":\"corp\"}\n");
	silent(other);
	assert_int_equal(fake_vpn.starts, 1);
	fake_vpn.view = VPN_VIEW_FAILED;
	fake_vpn.stopping = true;
	strcpy(fake_vpn.reason, "authentication failed");
	fake_vpn_change(&a);
	expect(fd, "{\"status\":\"error\",\"error\":\"authentication failed\"}");
	expect(other, "{\"status\":\"error\",\"error\":\"authentication failed\"}");
	/* vpn_start refused by the supervisor */
	fake_vpn.running = fake_vpn.stopping = false;
	fake_vpn.start_ret = -EIO;
	tl_send(fd, "{\"cmd\":\"vpn_start\",\"profile\":\"home\"}\n");
	expect(fd, "{\"status\":\"error\",\"error\":\"fake start error\"}");
	close(fd);
	close(other);
}

/* vpn_stop waits for OpenVPN to be gone. */
static void test_stop_waits(void **state)
{
	int fd = client();

	(void)state;
	tl_send(fd, "{\"cmd\":\"vpn_stop\"}\n");
	expect(fd, "{\"status\":\"disconnected\"}");	/* nothing running */
	assert_int_equal(fake_vpn.stops, 0);
	fake_vpn.running = true;
	fake_vpn.view = VPN_VIEW_CONNECTED;
	tl_send(fd, "{\"cmd\":\"vpn_stop\"}\n{\"cmd\":\"ping\"}\n");
	silent(fd);
	assert_int_equal(fake_vpn.stops, 1);
	fake_vpn_change(&a);	/* still running */
	silent(fd);
	fake_vpn.running = fake_vpn.stopping = false;
	fake_vpn.view = VPN_VIEW_IDLE;
	fake_vpn_change(&a);
	expect(fd, "{\"status\":\"disconnected\"}");
	expect(fd, "{\"status\":\"pong\"}");
	close(fd);
}

/* vpn_start while a failed session is still exiting runs once it has, as a fresh start. */
static void test_start_while_stopping(void **state)
{
	int fd = client();

	(void)state;
	fake_vpn.running = fake_vpn.stopping = true;
	fake_vpn.view = VPN_VIEW_FAILED;
	strcpy(fake_vpn.profile, "corp");
	strcpy(fake_vpn.reason, "authentication failed");
	tl_send(fd, "{\"cmd\":\"vpn_start\",\"profile\":\"home\",\"username\":\"u\","
		    "\"password\":\"again\"}\n");
	silent(fd);
	assert_int_equal(fake_vpn.starts, 0);
	fake_vpn.running = fake_vpn.stopping = false;
	fake_vpn_change(&a);
	assert_int_equal(fake_vpn.starts, 1);
	assert_string_equal(fake_vpn.profile, "home");
	assert_string_equal(fake_vpn.pass, "again");
	silent(fd);
	fake_vpn.view = VPN_VIEW_CONNECTED;
	strcpy(fake_vpn.tun_ip, "10.8.0.9");
	fake_vpn_change(&a);
	expect(fd, "{\"status\":\"connected\",\"tun_ip\":\"10.8.0.9\"}");
	close(fd);
}

/* A client that half-closes after its requests still gets every answer, then the end. */
static void test_half_close(void **state)
{
	int fd = client();

	(void)state;
	tl_send(fd, "{\"cmd\":\"ping\"}\n{\"cmd\":\"vpn_start\",\"profile\":\"corp\"}\n"
		    "{\"cmd\":\"ping\"}");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	expect(fd, "{\"status\":\"pong\"}");
	silent(fd);
	assert_int_equal(a.nctl, 1);
	fake_vpn.view = VPN_VIEW_CONNECTED;
	strcpy(fake_vpn.tun_ip, "10.8.0.2");
	fake_vpn_change(&a);
	expect(fd, "{\"status\":\"connected\",\"tun_ip\":\"10.8.0.2\"}");
	expect(fd, "{\"status\":\"pong\"}");
	assert_int_equal(tl_eof(&a, fd, 1000), 0);
	assert_int_equal(a.nctl, 0);
	close(fd);
}

/* Profiles: store (allow-list checked), list; shutdown answers and asks the loop to end. */
static void test_profiles_and_shutdown(void **state)
{
	char line[512];
	int fd = client();

	(void)state;
	tl_send(fd, "{\"cmd\":\"vpn_set_profile\",\"name\":\"work\",\"content\":\"client\\n"
		    "remote 192.0.2.7 1194\\n\"}\n");
	expect(fd, "{\"status\":\"ok\"}");
	tl_send(fd, "{\"cmd\":\"vpn_set_profile\",\"name\":\"evil\",\"content\":\"client\\n"
		    "up /bin/sh\\n\"}\n");
	assert_true(tl_line(&a, fd, line, sizeof(line), 3000));
	assert_non_null(strstr(line, "\"status\":\"error\""));
	tl_send(fd, "{\"cmd\":\"list_profiles\"}\n");
	expect(fd, "{\"status\":\"ok\",\"profiles\":[\"corp\",\"home\",\"work\"]}");
	tl_send(fd, "{\"cmd\":\"shutdown\"}\n{\"cmd\":\"ping\"}\n");
	expect(fd, "{\"status\":\"ok\"}");
	assert_int_equal(a.quit, AGENT_EXIT_POWEROFF);
	silent(fd);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_deferred, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_failed_and_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_while_stopping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profiles_and_shutdown, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
