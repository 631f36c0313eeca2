// SPDX-License-Identifier: MIT
/*
 * Unit tests for the OpenVPN supervisor (guest/agent/vpn.c), alone: vpn.c starts
 * fake_openvpn (its path is FAKE_OPENVPN, from the build) as it would start OpenVPN, the fake hands the management
 * connection over to the test, and the test plays OpenVPN's management interface. State
 * changes are observed through a listener registered with vpn_on_change(), the way
 * control.c and proxy.c get them.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_testlib.h"

static const char profile[] = "client\ndev tun\nproto udp\nremote 192.0.2.1 1194\n";

/**
 * struct fixture - one agent with the supervisor and the fake's end of things
 * @a:		agent
 * @lsn:	the test's socket the fake connects to ($FAKE_OVPN_SOCK)
 * @mgmt:	the management connection, as the fake handed it over (-1 before)
 * @ctl:	the connection to the fake (a byte: exit status)
 * @pid:	the fake's pid
 * @args:	its command line
 * @changes:	listener calls so far
 * @views:	vpn_view() at each call
 */
static struct fixture {
	struct agent a;
	int lsn, mgmt, ctl;
	pid_t pid;
	char args[4096];
	int changes;
	enum vpn_view views[64];
} f;

static void on_change(struct agent *a)
{
	if (f.changes < 64)
		f.views[f.changes] = vpn_view(a);
	f.changes++;
}

static int setup(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	(void)state;
	memset(&f, 0, sizeof(f));
	f.mgmt = f.ctl = -1;
	tl_agent_init(&f.a);
	assert_true(strlen(FAKE_OPENVPN) < sizeof(f.a.opts.openvpn));
	strcpy(f.a.opts.openvpn, FAKE_OPENVPN);
	assert_true(strlen(f.a.opts.run_dir) + sizeof("/fake.sock") <= sizeof(sun.sun_path));
	strcpy(sun.sun_path, f.a.opts.run_dir);
	strcat(sun.sun_path, "/fake.sock");
	f.lsn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(f.lsn, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(f.lsn, 4), 0);
	setenv("FAKE_OVPN_SOCK", sun.sun_path, 1);
	unsetenv("FAKE_OVPN_MODE");
	assert_int_equal(vpn_init(&f.a), 0);
	assert_int_equal(vpn_on_change(&f.a, on_change), 0);
	assert_int_equal(profile_store(f.a.profile_dir, "corp", profile, strlen(profile)), 0);
	return 0;
}

/* the agent as init restarts it: how the previous run ended is in its environment */
static int setup_restarted(void **state)
{
	setenv("MICROVM_AGENT_PREVIOUS", "killed by signal 9 (Killed) after 12.3 s", 1);
	return setup(state);
}

static int teardown(void **state)
{
	(void)state;
	vpn_shutdown(&f.a);
	vpn_fini(&f.a);
	if (f.mgmt >= 0)
		close(f.mgmt);
	if (f.ctl >= 0)
		close(f.ctl);
	close(f.lsn);
	tl_agent_fini(&f.a);
	return 0;
}

/**
 * adopt_fake() - accept the fake's connection and take over the management socket
 *
 * Runs the agent's loop meanwhile (it accepts OpenVPN's management connection).
 */
static void adopt_fake(void)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = f.args, .iov_len = sizeof(f.args) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	ssize_t n;

	for (int i = 0; i < 500 && f.ctl < 0; i++) {
		f.ctl = accept4(f.lsn, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		agent_loop_once(&f.a, 10);
	}
	assert_true(f.ctl >= 0);
	for (int i = 0; i < 500; i++) {
		n = recvmsg(f.ctl, &mh, MSG_DONTWAIT);
		if (n > 0)
			break;
		agent_loop_once(&f.a, 10);
	}
	assert_true(n > 0);
	f.args[n] = '\0';
	cm = CMSG_FIRSTHDR(&mh);
	assert_non_null(cm);
	memcpy(&f.mgmt, CMSG_DATA(cm), sizeof(int));
	f.pid = (pid_t)atoi(f.args);
	assert_true(f.pid > 0);
}

/**
 * expect() - the next management command the agent sends is @want
 * @want:	the line
 */
static void expect(const char *want)
{
	char line[512];

	assert_true(tl_line(&f.a, f.mgmt, line, sizeof(line), 3000));
	assert_string_equal(line, want);
}

/**
 * say() - OpenVPN says @s (one or more lines) and the agent handles it
 * @s:		text
 */
static void say(const char *s)
{
	tl_send(f.mgmt, s);
	tl_pump(&f.a, 50);
}

/**
 * start() - vpn_start of "corp", the fake adopted, "state on" received
 * @user:	username or NULL
 * @pass:	password
 */
static void start(const char *user, const char *pass)
{
	char err[256] = "";

	assert_int_equal(vpn_start(&f.a, "corp", user, pass, 0, err, sizeof(err)), 0);
	assert_true(vpn_running(&f.a));
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_PENDING);
	assert_string_equal(vpn_profile(&f.a), "corp");
	adopt_fake();
	expect("state on");
}

static bool is_idle(struct agent *a)
{
	return !vpn_running(a);
}

/* The whole way up and down: hold release, credentials, connected, pushed DNS, stop. */
static void test_connect_and_stop(void **state)
{
	struct sockaddr_storage dns[AGENT_DNS_MAX];
	int before;

	(void)state;
	start("alice", "s3cret \"quoted\"");
	/* credentials go over the management socket only */
	assert_non_null(strstr(f.args, "--auth-user-pass"));
	assert_null(strstr(f.args, "s3cret"));
	assert_null(strstr(f.args, "alice"));
	assert_non_null(strstr(f.args, "--management-client"));
	say(">HOLD:Waiting for hold release:0\r\n");
	expect("hold release");
	say(">PASSWORD:Need 'Auth' username/password\r\n");
	expect("username \"Auth\" \"alice\"");
	expect("password \"Auth\" \"s3cret \\\"quoted\\\"\"");
	assert_int_equal(f.changes, 0);
	say(">UPDOWN:UP\r\n>UPDOWN:ENV,dev=tun7\r\n>UPDOWN:ENV,ifconfig_local=10.8.0.6\r\n"
	    ">UPDOWN:ENV,foreign_option_1=dhcp-option DNS 10.8.0.1\r\n>UPDOWN:ENV,END\r\n");
	assert_int_equal(vpn_dns(&f.a, dns, AGENT_DNS_MAX), 0);	/* not connected yet */
	say(">STATE:1700000000,CONNECTED,SUCCESS,10.8.0.6,192.0.2.1,1194,,\r\n");
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_CONNECTED);
	assert_int_equal(f.changes, 1);
	assert_int_equal(f.views[0], VPN_VIEW_CONNECTED);
	assert_string_equal(vpn_tun_ip(&f.a), "10.8.0.6");
	assert_string_equal(vpn_dev(&f.a), "tun7");
	assert_string_equal(vpn_state_name(&f.a), "CONNECTED");
	assert_int_equal(vpn_dns(&f.a, dns, AGENT_DNS_MAX), 1);
	assert_int_equal(dns[0].ss_family, AF_INET);

	before = f.changes;
	vpn_stop(&f.a);
	assert_true(vpn_stopping(&f.a));
	assert_true(tl_wait(&f.a, is_idle, 5000));
	assert_int_equal(f.changes, before + 1);
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_IDLE);
	assert_string_equal(vpn_reason(&f.a), "");
	assert_string_equal(vpn_profile(&f.a), "");
	assert_string_equal(vpn_tun_ip(&f.a), "");
}

/* A second start while a session exists is refused; missing and refused profiles too. */
static void test_start_refusals(void **state)
{
	static const char bad[] = "client\nremote 192.0.2.1\nup /bin/sh\n";
	char err[256];

	(void)state;
	assert_int_equal(vpn_start(&f.a, "nope", NULL, NULL, 0, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "no such profile");
	assert_int_equal(profile_store(f.a.profile_dir, "evil", bad, strlen(bad)), 0);
	assert_true(vpn_start(&f.a, "evil", NULL, NULL, 0, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "refused"));
	assert_false(vpn_running(&f.a));
	start(NULL, NULL);
	assert_null(strstr(f.args, "--auth-user-pass"));
	assert_int_equal(vpn_start(&f.a, "corp", NULL, NULL, 0, err, sizeof(err)), -EBUSY);
	assert_string_equal(err, "vpn already started");
}

/* Wrong credentials: failed with the reason, OpenVPN stopped, the reason stays. */
static void test_auth_failed(void **state)
{
	char err[256];

	(void)state;
	start("alice", "wrong");
	say(">PASSWORD:Need 'Auth' username/password\r\n");
	expect("username \"Auth\" \"alice\"");
	expect("password \"Auth\" \"wrong\"");
	tl_send(f.mgmt, ">PASSWORD:Verification Failed: 'Auth'\r\n");
	assert_true(tl_wait(&f.a, is_idle, 5000));
	/* failed (OpenVPN told to stop), then OpenVPN gone: two changes, failed both times */
	assert_int_equal(f.changes, 2);
	assert_int_equal(f.views[0], VPN_VIEW_FAILED);
	assert_int_equal(f.views[1], VPN_VIEW_FAILED);
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_FAILED);
	assert_string_equal(vpn_reason(&f.a), "authentication failed");
	assert_string_equal(vpn_profile(&f.a), "corp");
	/* the next start begins afresh */
	close(f.mgmt);
	close(f.ctl);
	f.mgmt = f.ctl = -1;
	assert_int_equal(vpn_start(&f.a, "corp", NULL, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_PENDING);
	assert_string_equal(vpn_reason(&f.a), "");
}

/* A profile asking for a private-key password, and OpenVPN's FATAL lines, fail the session. */
static void test_unsupported_password_and_fatal(void **state)
{
	(void)state;
	start(NULL, NULL);
	/* the first reason wins */
	say(">PASSWORD:Need 'Private Key' password\r\n>FATAL:something else\r\n");
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_FAILED);
	assert_string_equal(vpn_reason(&f.a),
			    "the profile needs a 'Private Key' password, which is not supported");
	assert_int_equal(f.views[0], VPN_VIEW_FAILED);
}

static void test_fatal(void **state)
{
	(void)state;
	start(NULL, NULL);
	say(">FATAL:Cannot open TUN/TAP dev /dev/net/tun\r\n");
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_FAILED);
	assert_string_equal(vpn_reason(&f.a), "openvpn: Cannot open TUN/TAP dev /dev/net/tun");
}

/* Web authentication: the URL is reported, then it times out after the server's timeout. */
static void test_webauth_timeout(void **state)
{
	(void)state;
	start(NULL, NULL);
	say(">STATE:1,AUTH_PENDING,timeout 120,,,,,\r\n");
	assert_int_equal(f.changes, 0);
	say(">INFOMSG:WEB_AUTH::https://sso.example.com/login?x=1\r\n");
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_WEBAUTH);
	assert_string_equal(vpn_auth_url(&f.a), "https://sso.example.com/login?x=1");
	assert_int_equal(f.changes, 1);
	assert_int_equal(f.views[0], VPN_VIEW_WEBAUTH);
	/* the outcome timeout (60 s) does not apply while the user authenticates */
	agent_clock_skip(100 * 1000);
	agent_tick(&f.a);
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_WEBAUTH);
	agent_clock_skip(30 * 1000);
	agent_tick(&f.a);
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_FAILED);
	assert_string_equal(vpn_reason(&f.a), "web authentication timed out");
	assert_int_equal(f.changes, 2);
}

/* Web authentication that succeeds ends in connected; the tun address comes from UPDOWN. */
static void test_webauth_connected(void **state)
{
	(void)state;
	start(NULL, NULL);
	say(">INFOMSG:OPEN_URL:https://sso.example.com/\r\n");
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_WEBAUTH);
	say(">UPDOWN:UP\r\n>UPDOWN:ENV,ifconfig_local=10.9.0.2\r\n>UPDOWN:ENV,END\r\n"
	    ">STATE:2,CONNECTED,SUCCESS,,192.0.2.1,1194,,\r\n");
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_CONNECTED);
	assert_string_equal(vpn_tun_ip(&f.a), "10.9.0.2");
	assert_int_equal(f.changes, 2);
	/* reconnecting is a change too; the address is gone until connected again */
	say(">STATE:3,RECONNECTING,ping-restart,,,,,\r\n");
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_PENDING);
	assert_string_equal(vpn_tun_ip(&f.a), "");
	assert_int_equal(f.changes, 3);
}

/* No outcome before the deadline: failed (timeout) and OpenVPN stopped. */
static void test_timeout(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(vpn_start(&f.a, "corp", NULL, NULL, 5, err, sizeof(err)), 0);
	adopt_fake();
	expect("state on");
	agent_clock_skip(4000);
	agent_tick(&f.a);
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_PENDING);
	agent_clock_skip(1500);
	agent_tick(&f.a);
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_FAILED);
	assert_string_equal(vpn_reason(&f.a), "timed out after 5 s waiting for the vpn to connect");
	assert_true(tl_wait(&f.a, is_idle, 5000));
	assert_int_equal(f.changes, 2);
}

/* OpenVPN dying on its own: reaped through SIGCHLD, failed with the exit status. */
static void test_process_death(void **state)
{
	unsigned char code = 3;

	(void)state;
	start(NULL, NULL);
	say(">STATE:1,CONNECTED,SUCCESS,10.8.0.2,192.0.2.1,1194,,\r\n");
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_CONNECTED);
	assert_int_equal(write(f.ctl, &code, 1), 1);
	assert_true(tl_wait(&f.a, is_idle, 5000));
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_FAILED);
	assert_string_equal(vpn_reason(&f.a), "openvpn exited with status 3");
	assert_string_equal(vpn_tun_ip(&f.a), "");
	assert_int_equal(f.changes, 2);
	assert_int_equal(f.views[1], VPN_VIEW_FAILED);
}

/* OpenVPN exiting before its management interface: the reason comes from its log. */
static void test_early_exit_log(void **state)
{
	char err[256];

	(void)state;
	setenv("FAKE_OVPN_MODE", "early", 1);
	assert_int_equal(vpn_start(&f.a, "corp", NULL, NULL, 0, err, sizeof(err)), 0);
	assert_true(tl_wait(&f.a, is_idle, 5000));
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_FAILED);
	assert_string_equal(vpn_reason(&f.a),
			    "openvpn exited with status 1: Options error: Unrecognized option: bogus");
	assert_int_equal(f.changes, 1);
}

/* An OpenVPN that ignores SIGTERM gets SIGKILL after 5 s. */
static void test_stop_escalates_to_sigkill(void **state)
{
	(void)state;
	setenv("FAKE_OVPN_MODE", "noterm", 1);
	start(NULL, NULL);
	vpn_stop(&f.a);
	tl_pump(&f.a, 300);
	assert_true(vpn_stopping(&f.a));
	assert_int_equal(kill(f.pid, 0), 0);
	agent_clock_skip(6000);
	agent_tick(&f.a);
	assert_true(tl_wait(&f.a, is_idle, 5000));
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_IDLE);
}

/* Listeners are called in order, and there is room for a bounded number only. */
static int order[8], norder;
static void first(struct agent *a) { (void)a; order[norder++] = 1; }
static void second(struct agent *a) { (void)a; order[norder++] = 2; }

static void test_listeners(void **state)
{
	int n = 1;	/* setup()'s */

	(void)state;
	assert_int_equal(vpn_on_change(&f.a, first), 0);
	assert_int_equal(vpn_on_change(&f.a, second), 0);
	for (n += 2; vpn_on_change(&f.a, first) == 0; n++)
		;
	assert_int_equal(n, AGENT_VPN_LISTENERS_MAX);
	start(NULL, NULL);
	say(">FATAL:x\r\n");
	assert_true(f.changes >= 1);
	assert_true(norder >= 2);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 2);
}

static void test_restarted_agent_says_why(void **state)
{
	(void)state;
	/* the host's vpn_status shows why its VPN is down */
	assert_int_equal(vpn_view(&f.a), VPN_VIEW_IDLE);
	assert_string_equal(vpn_reason(&f.a), "the VM's agent ended (killed by signal 9 (Killed) "
			    "after 12.3 s) and was restarted; any VPN session ended with it");
	/* OpenVPN does not inherit it */
	assert_null(getenv("MICROVM_AGENT_PREVIOUS"));
	/* the next session clears it */
	start(NULL, NULL);
	assert_string_equal(vpn_reason(&f.a), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connect_and_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_failed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported_password_and_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webauth_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webauth_connected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_process_death, setup, teardown),
		cmocka_unit_test_setup_teardown(test_early_exit_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_escalates_to_sigkill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listeners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restarted_agent_says_why, setup_restarted,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
