// SPDX-License-Identifier: MIT
/*
 * localaddr.c - the guest's own addresses for the destination policy, listed again only when
 * they may have changed
 *
 * Theory of operation
 *
 *   The proxy refuses every address of the guest's own interfaces (policy.c), and those change
 *   at run time: OpenVPN adds the tunnel's address when it connects, takes it away when it
 *   stops, a new connection may bring another one.  Listing them with getifaddrs() for every
 *   proxy connection costs about ten system calls (a netlink socket, a dump request, its
 *   answers); most connections find the same list.  So the list is kept, on top of the guest
 *   network's gateways and name servers (struct localaddr.pol), and listed again only when it
 *   may be stale:
 *
 *     - an rtnetlink socket subscribed to IPv4 and IPv6 address changes (RTMGRP_*_IFADDR),
 *       opened before the first listing, is read (non-blocking) before every use: the kernel
 *       queues the notification of an address added or removed before the call that changed
 *       it returns, so a change made before a connection's check is always seen by it; any
 *       message, an overrun (ENOBUFS) or any other error marks the list stale (an error
 *       other than "nothing queued" also stops using the socket: from then on the list is
 *       made for every use, as before the cache existed);
 *     - the VPN's state changes mark it stale too (localaddr_invalidate(), from proxy.c);
 *     - a failed listing leaves it stale: the caller refuses the connection, the next use
 *       tries again.
 *
 *   So the policy is exactly as strict as listing per connection: the addresses a check sees
 *   are those of the interfaces when it runs.  Unit-tested with a datagram socket standing in
 *   for netlink (tests/unit/agent/test_agent_localaddr.c).
 */
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

/**
 * localaddr_open_netlink() - an rtnetlink socket told about every address change
 *
 * Return: a non-blocking socket, or -errno (then localaddr lists on every use).
 */
int localaddr_open_netlink(void)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
	};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/**
 * localaddr_list_ifaddrs() - add every address of the guest's interfaces to a policy (the
 * &localaddr.list of the proxy)
 * @pol:	the policy
 * @opaque:	unused
 *
 * Return: 0, or -errno when the interface addresses cannot be listed or do not fit (the
 * caller refuses)
 */
int localaddr_list_ifaddrs(struct policy *pol, void *opaque)
{
	struct ifaddrs *ifa, *i;
	int rc = 0;

	(void)opaque;
	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (i = ifa; i && !rc; i = i->ifa_next)
		if (i->ifa_addr && policy_add(pol, i->ifa_addr, POLICY_LOCAL) == -ENOSPC)
			rc = -ENOSPC;
	freeifaddrs(ifa);
	return rc;
}

/**
 * localaddr_init() - an empty, stale list
 * @la:		the list
 * @notify_fd:	a socket that receives a message for every address change
 *		(localaddr_open_netlink()), opened before this call; owned by @la from now on.
 *		Negative: none, list on every use.
 * @list:	adds the interfaces' addresses to a policy; 0 or -errno
 * @opaque:	for @list
 */
void localaddr_init(struct localaddr *la, int notify_fd,
		    int (*list)(struct policy *pol, void *opaque), void *opaque)
{
	memset(la, 0, sizeof(*la));
	la->notify_fd = notify_fd;
	la->list = list;
	la->opaque = opaque;
}

/**
 * localaddr_close() - close the notification socket
 * @la:		the list (all zero, never initialised: left alone)
 */
void localaddr_close(struct localaddr *la)
{
	if (la->list && la->notify_fd >= 0)
		close(la->notify_fd);
	la->notify_fd = -1;
	la->valid = false;
}

/**
 * localaddr_invalidate() - list the addresses again before the next use (the VPN changed)
 * @la:		the list
 */
void localaddr_invalidate(struct localaddr *la)
{
	la->valid = false;
}

/**
 * localaddr_drain() - read what the notification socket holds; any change makes the list stale
 * @la:		the list
 */
static void localaddr_drain(struct localaddr *la)
{
	char buf[4096];
	ssize_t n;

	if (la->notify_fd < 0) {
		la->valid = false;
		return;
	}
	for (;;) {
		n = recv(la->notify_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n >= 0) {
			la->valid = false;	/* a change, or at least a message */
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		la->valid = false;
		if (errno != ENOBUFS) {	/* ENOBUFS: messages were lost, the socket still works */
			close(la->notify_fd);
			la->notify_fd = -1;
		}
		if (la->notify_fd < 0)
			return;
	}
}

/**
 * localaddr_policy() - @base plus every address of the guest's interfaces, as they are now
 * @la:		the list
 * @base:	the guest network's gateways and name servers
 * @err:	receives -errno when NULL is returned
 *
 * Return: the policy (valid until the next call), or NULL when the addresses could not be
 * listed (the caller refuses the connection).
 */
const struct policy *localaddr_policy(struct localaddr *la, const struct policy *base, int *err)
{
	int rc;

	localaddr_drain(la);
	if (la->valid)
		return &la->pol;
	la->pol = *base;
	rc = la->list(&la->pol, la->opaque);
	if (rc < 0) {
		*err = rc;
		return NULL;
	}
	la->valid = true;
	la->listings++;
	return &la->pol;
}
