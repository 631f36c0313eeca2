// SPDX-License-Identifier: MIT
/*
 * policy.c - the inbound proxy's destination policy: which addresses port 7602 may connect to
 *
 * Theory of operation
 *
 *   The proxy exists to reach hosts *through the VPN*. Whoever can talk to the host's SOCKS
 *   server (any local user when it needs no password) must not use it to reach the guest
 *   itself or the host behind it. So after name resolution, every candidate address is
 *   checked here before it is tried, and a destination whose addresses are all refused gets
 *   the status byte HS_ERR_NOT_ALLOWED (SOCKS reply 0x02). Refused:
 *
 *     - loopback (127.0.0.0/8, ::1): the agent's own ports 1025/7602 live there;
 *     - "this network" and unspecified (0.0.0.0/8, ::), which Linux connects to loopback;
 *     - link-local (169.254.0.0/16, fe80::/10), multicast (224.0.0.0/4, ff00::/8) and the
 *       rest of 240.0.0.0/4 including the broadcast address;
 *     - every address of the guest's own interfaces (from getifaddrs(), kept by localaddr.c
 *       and listed again as soon as an address changes, so the tunnel's address counts as
 *       soon as it exists);
 *     - the user-mode network's gateway and DNS (10.0.2.2, 10.0.2.3, fec0::2, fec0::3: the
 *       gateway is the host's loopback when libslirp's host-loopback mapping is on), and the
 *       gateway and name servers the guest was actually configured with (default routes in
 *       /proc/net/route and name servers in /etc/resolv.conf, read when the agent starts,
 *       before any VPN route exists).
 *
 *   IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) IPv6 addresses are judged
 *   by the IPv4 address they carry. Everything else is allowed.
 *
 *   Pure code (no system calls): the caller collects the addresses, policy_check() decides.
 *   Unit-tested (tests/unit/agent/test_agent_policy.c) and fuzzed (fuzz-agent-policy).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

/* The user-mode network's fixed addresses (src/net/slirp.c, guest/init/cmdline.c). */
static const char *const policy_slirp_addrs[] = { "10.0.2.2", "10.0.2.3", "fec0::2", "fec0::3" };

/**
 * policy_init() - an empty policy that knows the user-mode network's gateway and DNS
 * @pol:	policy to set up
 */
void policy_init(struct policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	for (size_t i = 0; i < sizeof(policy_slirp_addrs) / sizeof(policy_slirp_addrs[0]); i++)
		policy_add_text(pol, policy_slirp_addrs[i], POLICY_GATEWAY);
}

/**
 * policy_add() - refuse one more exact address
 * @pol:	policy
 * @sa:		an AF_INET or AF_INET6 address (the port is ignored)
 * @why:	POLICY_LOCAL or POLICY_GATEWAY (what the address is, for the reason text)
 *
 * Return: 0, -EAFNOSUPPORT for another family, -ENOSPC when the table is full
 */
int policy_add(struct policy *pol, const struct sockaddr *sa, enum policy_reason why)
{
	struct policy_addr *e;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if (pol->n == POLICY_ADDR_MAX)
		return -ENOSPC;
	e = &pol->addrs[pol->n++];
	e->family = sa->sa_family;
	e->why = why;
	if (sa->sa_family == AF_INET)
		memcpy(e->a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else
		memcpy(e->a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	return 0;
}

/**
 * policy_addr_parse() - an IPv4 or IPv6 literal as a socket address (port 0)
 * @text:	the literal (an IPv6 zone "%eth0" is ignored)
 * @ss:		receives the address
 *
 * Return: 0, or -EINVAL when @text is not a literal
 */
int policy_addr_parse(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN];
	size_t n = strcspn(text, "%");

	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, n);
	buf[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, buf, &in4->sin_addr) == 1)
		in4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
	else
		return -EINVAL;
	return 0;
}

/**
 * policy_add_text() - refuse an address given as an IPv4 or IPv6 literal
 * @pol:	policy
 * @text:	the literal (an IPv6 zone "%eth0" is ignored)
 * @why:	POLICY_LOCAL or POLICY_GATEWAY
 *
 * Return: 0, -EINVAL when @text is not a literal, -ENOSPC when the table is full
 */
int policy_add_text(struct policy *pol, const char *text, enum policy_reason why)
{
	struct sockaddr_storage ss;

	if (policy_addr_parse(text, &ss))
		return -EINVAL;
	return policy_add(pol, (struct sockaddr *)&ss, why);
}

/**
 * policy_parse_resolv() - refuse the name servers of a resolv.conf text
 * @pol:	policy
 * @text:	the file's content (need not be NUL-terminated)
 * @len:	its length
 *
 * Lines "nameserver ADDR"; anything else, and addresses that do not parse, are ignored.
 *
 * Return: how many addresses were added
 */
int policy_parse_resolv(struct policy *pol, const char *text, size_t len)
{
	int added = 0;

	for (size_t i = 0; i < len;) {
		size_t end = i;
		char line[128], addr[INET6_ADDRSTRLEN + 16];

		while (end < len && text[end] != '\n')
			end++;
		if (end - i < sizeof(line)) {
			memcpy(line, text + i, end - i);
			line[end - i] = '\0';
			if (sscanf(line, " nameserver %61s", addr) == 1 &&
			    policy_add_text(pol, addr, POLICY_GATEWAY) == 0)
				added++;
		}
		i = end + 1;
	}
	return added;
}

/**
 * policy_parse_routes() - refuse the gateways of the default routes in /proc/net/route
 * @pol:	policy
 * @text:	the file's content (need not be NUL-terminated)
 * @len:	its length
 *
 * Lines "Iface Destination Gateway Flags ..." with hexadecimal fields in network byte order
 * as the kernel prints them; the header line and malformed lines are ignored.
 *
 * Return: how many addresses were added
 */
int policy_parse_routes(struct policy *pol, const char *text, size_t len)
{
	int added = 0;

	for (size_t i = 0; i < len;) {
		size_t end = i;
		char line[256], ifname[32];
		unsigned int dst, gw, flags, mask, metric, refcnt, use;

		while (end < len && text[end] != '\n')
			end++;
		if (end - i < sizeof(line)) {
			memcpy(line, text + i, end - i);
			line[end - i] = '\0';
			if (sscanf(line, "%31s %x %x %x %u %u %u %x", ifname, &dst, &gw, &flags,
				   &refcnt, &use, &metric, &mask) == 8 &&
			    dst == 0 && mask == 0 && gw != 0 && (flags & 0x2 /* RTF_GATEWAY */)) {
				struct sockaddr_in sin = { .sin_family = AF_INET };

				sin.sin_addr.s_addr = gw;	/* already network byte order */
				if (policy_add(pol, (struct sockaddr *)&sin, POLICY_GATEWAY) == 0)
					added++;
			}
		}
		i = end + 1;
	}
	return added;
}

/**
 * policy_v4_reason() - the range rules for an IPv4 address
 * @a:		the address, network byte order
 *
 * Return: POLICY_ALLOW or the reason it is refused
 */
static enum policy_reason policy_v4_reason(const uint8_t a[4])
{
	if (a[0] == 127)
		return POLICY_LOOPBACK;
	if (a[0] == 0)
		return POLICY_UNSPECIFIED;
	if (a[0] == 169 && a[1] == 254)
		return POLICY_LINK_LOCAL;
	if (a[0] >= 224)	/* multicast 224/4, reserved 240/4, broadcast */
		return POLICY_MULTICAST;
	return POLICY_ALLOW;
}

/**
 * policy_check() - may the proxy connect to @sa?
 * @pol:	the exact addresses to refuse (may be NULL: range rules only)
 * @sa:		the candidate address (AF_INET or AF_INET6; the port is ignored)
 *
 * Return: POLICY_ALLOW, or why the address is refused (policy_reason_text() names it)
 */
enum policy_reason policy_check(const struct policy *pol, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t zero[12];
	uint8_t v4[4], v6[16];
	int family;
	enum policy_reason r;

	if (sa->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(v6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		family = AF_INET6;
		if (!memcmp(v6, v4mapped, 12) || !memcmp(v6, zero, 12)) {
			/* ::ffff:a.b.c.d and ::a.b.c.d (also :: and ::1, caught below as v4 0.x) */
			if (!memcmp(v6, zero, 12) && v6[12] == 0 && v6[13] == 0 && v6[14] == 0 &&
			    v6[15] == 1)
				return POLICY_LOOPBACK;		/* ::1 */
			memcpy(v4, v6 + 12, 4);
			family = AF_INET;
		} else if (v6[0] == 0xfe && (v6[1] & 0xc0) == 0x80) {
			return POLICY_LINK_LOCAL;		/* fe80::/10 */
		} else if (v6[0] == 0xff) {
			return POLICY_MULTICAST;		/* ff00::/8 */
		}
	} else {
		return POLICY_UNSPECIFIED;
	}
	if (family == AF_INET) {
		r = policy_v4_reason(v4);
		if (r != POLICY_ALLOW)
			return r;
	}
	for (size_t i = 0; pol && i < pol->n; i++) {
		const struct policy_addr *e = &pol->addrs[i];

		if (e->family == family &&
		    !memcmp(e->a, family == AF_INET ? v4 : v6, family == AF_INET ? 4 : 16))
			return e->why;
	}
	return POLICY_ALLOW;
}

/**
 * policy_reason_text() - what a refused address is, for logs
 * @r:		a policy_check() result
 *
 * Return: a static string
 */
const char *policy_reason_text(enum policy_reason r)
{
	switch (r) {
	case POLICY_ALLOW:
		return "allowed";
	case POLICY_LOOPBACK:
		return "loopback";
	case POLICY_UNSPECIFIED:
		return "unspecified address";
	case POLICY_LINK_LOCAL:
		return "link-local";
	case POLICY_MULTICAST:
		return "multicast or reserved";
	case POLICY_LOCAL:
		return "the guest's own address";
	case POLICY_GATEWAY:
		return "the guest network's gateway or DNS";
	}
	return "refused";
}
