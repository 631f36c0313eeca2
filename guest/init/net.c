// SPDX-License-Identifier: MIT
/*
 * net.c - bring up loopback and the guest NIC with a static address
 *
 * The guest network is fixed by the VMM's user-mode stack (libslirp, QEMU's -netdev user):
 * the guest is 10.0.2.15/24, the gateway 10.0.2.2, DNS 10.0.2.3. Rather than run a DHCP
 * client, init sets these (or the microvm.ip/gw/dns= overrides) with the classic ioctls:
 * SIOCSIFADDR/SIOCSIFNETMASK for the address, SIOCSIFFLAGS for IFF_UP, SIOCADDRT for the
 * default route. Drivers are built in, but virtio-net may still be probing when init starts,
 * so init_net_configure() waits up to three seconds for the interface to appear.
 */
#include <errno.h>
#include <net/if.h>
#include <net/route.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

/**
 * ifreq_for() - an ifreq naming @ifname
 * @ifr:	request to fill
 * @ifname:	interface name
 *
 * Return: 0, or -EINVAL if the name does not fit
 */
static int ifreq_for(struct ifreq *ifr, const char *ifname)
{
	memset(ifr, 0, sizeof(*ifr));
	if (strlen(ifname) >= sizeof(ifr->ifr_name))
		return -EINVAL;
	strcpy(ifr->ifr_name, ifname);
	return 0;
}

/**
 * set_up() - set IFF_UP on an interface
 * @fd:		AF_INET datagram socket
 * @ifname:	interface name
 *
 * Return: 0 or -errno
 */
static int set_up(int fd, const char *ifname)
{
	struct ifreq ifr;

	if (ifreq_for(&ifr, ifname))
		return -EINVAL;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr))
		return -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		return -errno;
	return 0;
}

/**
 * set_ipv4() - set the address or netmask of an interface
 * @fd:		AF_INET datagram socket
 * @ifname:	interface name
 * @req:	SIOCSIFADDR or SIOCSIFNETMASK
 * @a:		the value
 *
 * Return: 0 or -errno
 */
static int set_ipv4(int fd, const char *ifname, unsigned long req, struct in_addr a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = a };
	struct ifreq ifr;

	if (ifreq_for(&ifr, ifname))
		return -EINVAL;
	memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
	if (ioctl(fd, req, &ifr))
		return -errno;
	return 0;
}

/**
 * add_default_route() - default route through @gw
 * @fd:		AF_INET datagram socket
 * @gw:		gateway, on the interface's subnet
 *
 * Return: 0 (also if the route exists) or -errno
 */
static int add_default_route(int fd, struct in_addr gw)
{
	struct sockaddr_in any = { .sin_family = AF_INET };
	struct sockaddr_in via = { .sin_family = AF_INET, .sin_addr = gw };
	struct rtentry rt;

	memset(&rt, 0, sizeof(rt));
	memcpy(&rt.rt_dst, &any, sizeof(any));
	memcpy(&rt.rt_genmask, &any, sizeof(any));
	memcpy(&rt.rt_gateway, &via, sizeof(via));
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	if (ioctl(fd, SIOCADDRT, &rt) && errno != EEXIST)
		return -errno;
	return 0;
}

/**
 * init_net_up() - set an interface up (used for "lo")
 * @ifname:	interface name
 *
 * Return: 0 or -errno
 */
int init_net_up(const char *ifname)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -errno;
	rc = set_up(fd, ifname);
	close(fd);
	return rc;
}

/**
 * init_net_configure() - address, netmask, up and default route for o->ifname
 * @o:		options (ifname, addr, prefix, gw)
 *
 * Return: 0 or -errno (-ENODEV if the interface did not appear within 3 s)
 */
int init_net_configure(const struct init_opts *o)
{
	struct in_addr mask = { .s_addr = o->prefix ? htonl(~0u << (32 - o->prefix)) : 0 };
	struct timespec tick = { .tv_nsec = 50 * 1000 * 1000 };
	int fd, rc, i;

	for (i = 0; !if_nametoindex(o->ifname); i++) {
		if (i == 60)
			return -ENODEV;
		nanosleep(&tick, NULL);
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = set_ipv4(fd, o->ifname, SIOCSIFADDR, o->addr);
	if (!rc)
		rc = set_ipv4(fd, o->ifname, SIOCSIFNETMASK, mask);
	if (!rc)
		rc = set_up(fd, o->ifname);
	if (!rc && o->gw.s_addr)
		rc = add_default_route(fd, o->gw);
	close(fd);
	return rc;
}
