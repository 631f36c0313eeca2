// SPDX-License-Identifier: MIT
/*
 * test_agent_localaddr.c - the cached list of the guest's own addresses (guest/agent/localaddr.c)
 *
 * A datagram socketpair stands in for the rtnetlink subscription (any message means "an
 * address changed"), and a fake lister hands out the addresses the test sets, counting its
 * calls: the list is made once, kept while nothing changes, made again after a notification,
 * after localaddr_invalidate() (the VPN changed) and after a failed listing, and for every use
 * when the notification socket is gone or broken.  The last two tests use a real rtnetlink
 * subscription in a network namespace of its own (root only): one address change, and an
 * overrun of the socket's receive buffer (ENOBUFS).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"

/**
 * struct fake_if - what the fake lister reports
 * @addr:	the one interface address ("" for none)
 * @fail:	negative: fail with it
 * @calls:	how many times it ran
 */
struct fake_if {
	char addr[INET6_ADDRSTRLEN];
	int fail;
	int calls;
};

static int fake_list(struct policy *pol, void *opaque)
{
	struct fake_if *f = opaque;

	f->calls++;
	if (f->fail)
		return f->fail;
	if (f->addr[0])
		return policy_add_text(pol, f->addr, POLICY_LOCAL);
	return 0;
}

static enum policy_reason check(const struct policy *pol, const char *text)
{
	struct sockaddr_storage ss;

	assert_int_equal(policy_addr_parse(text, &ss), 0);
	return policy_check(pol, (struct sockaddr *)&ss);
}

/* pair_init() - a list over a datagram socketpair: sv[1] sends the "notifications" */
static void pair_init(struct localaddr *la, struct fake_if *f, struct policy *base, int sv[2])
{
	policy_init(base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
	localaddr_init(la, sv[0], fake_list, f);
}

static void pair_fini(struct localaddr *la, int sv[2])
{
	localaddr_close(la);
	close(sv[1]);
}

static void notify(int fd)
{
	assert_int_equal(send(fd, "x", 1, 0), 1);
}

static void test_kept_until_notified(void **state)
{
	struct fake_if f = { .addr = "10.0.2.15" };
	struct localaddr la;
	struct policy base;
	const struct policy *p;
	int sv[2], err = 0;

	(void)state;
	pair_init(&la, &f, &base, sv);
	p = localaddr_policy(&la, &base, &err);
	assert_non_null(p);
	assert_int_equal(f.calls, 1);
	assert_int_equal(check(p, "10.0.2.15"), POLICY_LOCAL);
	assert_int_equal(check(p, "10.0.2.2"), POLICY_GATEWAY);	/* the base is kept */
	/* nothing changed: the same list, no listing */
	for (int i = 0; i < 5; i++)
		assert_non_null(localaddr_policy(&la, &base, &err));
	assert_int_equal(f.calls, 1);
	/* the tunnel's address appears: the notification makes the next use list again */
	strcpy(f.addr, "10.8.0.6");
	notify(sv[1]);
	notify(sv[1]);	/* several messages: one listing */
	p = localaddr_policy(&la, &base, &err);
	assert_int_equal(f.calls, 2);
	assert_int_equal(check(p, "10.8.0.6"), POLICY_LOCAL);
	assert_int_equal(check(p, "10.0.2.15"), POLICY_ALLOW);	/* gone with its interface */
	assert_non_null(localaddr_policy(&la, &base, &err));
	assert_int_equal(f.calls, 2);
	assert_int_equal(la.listings, 2);
	pair_fini(&la, sv);
}

static void test_invalidate(void **state)
{
	struct fake_if f = { .addr = "10.8.0.6" };
	struct localaddr la;
	struct policy base;
	int sv[2], err = 0;

	(void)state;
	pair_init(&la, &f, &base, sv);
	assert_non_null(localaddr_policy(&la, &base, &err));
	strcpy(f.addr, "10.8.0.10");
	localaddr_invalidate(&la);	/* the VPN changed state */
	assert_int_equal(check(localaddr_policy(&la, &base, &err), "10.8.0.10"), POLICY_LOCAL);
	assert_int_equal(f.calls, 2);
	pair_fini(&la, sv);
}

static void test_failed_listing_retried(void **state)
{
	struct fake_if f = { .addr = "10.0.2.15", .fail = -ENOMEM };
	struct localaddr la;
	struct policy base;
	int sv[2], err = 0;

	(void)state;
	pair_init(&la, &f, &base, sv);
	assert_null(localaddr_policy(&la, &base, &err));
	assert_int_equal(err, -ENOMEM);
	assert_null(localaddr_policy(&la, &base, &err));	/* still stale: tried again */
	assert_int_equal(f.calls, 2);
	f.fail = 0;
	assert_int_equal(check(localaddr_policy(&la, &base, &err), "10.0.2.15"), POLICY_LOCAL);
	assert_non_null(localaddr_policy(&la, &base, &err));
	assert_int_equal(f.calls, 3);
	pair_fini(&la, sv);
}

static void test_without_notifications(void **state)
{
	struct fake_if f = { .addr = "10.0.2.15" };
	struct localaddr la;
	struct policy base;
	int pfd[2], err = 0;

	(void)state;
	policy_init(&base);
	/* none at all: listed for every use */
	localaddr_init(&la, -1, fake_list, &f);
	for (int i = 0; i < 3; i++)
		assert_non_null(localaddr_policy(&la, &base, &err));
	assert_int_equal(f.calls, 3);
	localaddr_close(&la);
	/* a descriptor that fails (not a socket): dropped, then listed for every use */
	f.calls = 0;
	assert_int_equal(pipe(pfd), 0);
	localaddr_init(&la, pfd[0], fake_list, &f);
	for (int i = 0; i < 3; i++)
		assert_non_null(localaddr_policy(&la, &base, &err));
	assert_int_equal(f.calls, 3);
	assert_int_equal(la.notify_fd, -1);
	localaddr_close(&la);
	close(pfd[1]);
}

/* set_addr() - give lo an extra IPv4 address through SIOCSIFADDR on the alias "lo:1" */
static int set_addr(const char *addr)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo:1");
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, addr, &sin->sin_addr);
	rc = ioctl(fd, SIOCSIFADDR, &ifr);
	close(fd);
	return rc;
}

/**
 * in_netns() - run @body in a child process with a network namespace of its own (root only)
 * @body:	returns the child's exit status: 0 for success, else the step that failed
 *
 * The address changes a body makes are seen by nothing else.
 */
static void in_netns(int (*body)(void))
{
	pid_t pid;
	int st;

	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(unshare(CLONE_NEWNET) ? 2 : body());
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* one address change, seen by the next use */
static int real_netlink(void)
{
	struct localaddr la;
	struct policy base;
	const struct policy *p;
	int err = 0, fd;

	policy_init(&base);
	fd = localaddr_open_netlink();
	if (fd < 0)
		return 3;
	localaddr_init(&la, fd, localaddr_list_ifaddrs, NULL);
	p = localaddr_policy(&la, &base, &err);
	if (!p || check(p, "10.99.0.1") != POLICY_ALLOW)
		return 4;
	if (set_addr("10.99.0.1"))
		return 5;
	/* no waiting: the notification was queued before the ioctl returned */
	p = localaddr_policy(&la, &base, &err);
	if (!p || check(p, "10.99.0.1") != POLICY_LOCAL || la.listings != 2)
		return 6;
	p = localaddr_policy(&la, &base, &err);
	if (!p || la.listings != 2)
		return 7;
	localaddr_close(&la);
	return 0;
}

static void test_real_netlink(void **state)
{
	(void)state;
	in_netns(real_netlink);
}

/**
 * netlink_drops() - the notifications the kernel dropped for netlink socket @fd
 * Return: the Drops column of /proc/self/net/netlink for it, -1 when not found.
 */
static long netlink_drops(int fd)
{
	unsigned long drops, ino;
	char line[256];
	struct stat sb;
	long ret = -1;
	FILE *f;

	if (fstat(fd, &sb))
		return -1;
	f = fopen("/proc/self/net/netlink", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*d %*u %*x %*d %*d %*d %*d %lu %lu", &drops, &ino) == 2 &&
		    ino == sb.st_ino)
			ret = (long)drops;
	fclose(f);
	return ret;
}

/*
 * An overrun of the notification socket (ENOBUFS: the kernel dropped notifications) makes the
 * list stale although the messages telling what changed are lost, and the socket is kept.
 * A real rtnetlink subscription with the smallest receive buffer, in a namespace of its own,
 * sees a hundred address changes (root only).
 */
static int overrun_relists(void)
{
	struct localaddr la;
	struct policy base;
	const struct policy *p;
	int err = 0, fd, zero = 0, e;
	socklen_t len = sizeof(e);
	char addr[32];

	policy_init(&base);
	fd = localaddr_open_netlink();
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &zero, sizeof(zero)))
		return 3;
	localaddr_init(&la, fd, localaddr_list_ifaddrs, NULL);
	if (!localaddr_policy(&la, &base, &err) || la.listings != 1)
		return 4;
	for (int i = 1; i <= 100; i++) {
		snprintf(addr, sizeof(addr), "10.99.1.%d", i);
		if (set_addr(addr))
			return 5;
	}
	/* notifications were dropped (reading the error would clear it: it comes
	 * before the messages still queued, so it alone must make the list stale) */
	if (netlink_drops(fd) <= 0)
		return 6;
	p = localaddr_policy(&la, &base, &err);
	if (!p || la.listings != 2 || check(p, "10.99.1.100") != POLICY_LOCAL ||
	    check(p, "10.99.1.99") != POLICY_ALLOW)
		return 7;
	/* the socket still works: quiet, the list is kept; one more change is seen */
	if (la.notify_fd != fd || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) || e)
		return 8;
	if (!localaddr_policy(&la, &base, &err) || la.listings != 2)
		return 9;
	if (set_addr("10.99.2.1"))
		return 10;
	p = localaddr_policy(&la, &base, &err);
	if (!p || la.listings != 3 || check(p, "10.99.2.1") != POLICY_LOCAL)
		return 11;
	localaddr_close(&la);
	return 0;
}

static void test_overrun_relists(void **state)
{
	(void)state;
	in_netns(overrun_relists);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kept_until_notified),
		cmocka_unit_test(test_invalidate),
		cmocka_unit_test(test_failed_listing_retried),
		cmocka_unit_test(test_without_notifications),
		cmocka_unit_test(test_real_netlink),
		cmocka_unit_test(test_overrun_relists),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
