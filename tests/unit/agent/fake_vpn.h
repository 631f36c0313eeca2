/* SPDX-License-Identifier: MIT */
/*
 * fake_vpn.h - a stand-in for the VPN supervisor (vpn.c) in the unit tests of its users,
 * control.c and proxy.c: the test sets what vpn_* report and calls fake_vpn_change() where
 * vpn.c would tell its listeners about a change.
 */
#ifndef FAKE_VPN_H
#define FAKE_VPN_H

#include "agent.h"

/**
 * struct fake_vpn - what the fake reports, and what it was asked
 * @view:	vpn_view()
 * @running:	vpn_running()
 * @stopping:	vpn_stopping()
 * @tun_ip:	vpn_tun_ip()
 * @auth_url:	vpn_auth_url()
 * @reason:	vpn_reason()
 * @profile:	vpn_profile()
 * @dns:	vpn_dns()
 * @ndns:	how many
 * @start_ret:	what vpn_start() returns (0: it starts: running, pending, @profile set)
 * @starts:	vpn_start() calls
 * @stops:	vpn_stop() calls
 * @user:	the last vpn_start()'s username ("" if none)
 * @pass:	its password
 * @timeout_s:	its timeout
 * @listeners:	registered with vpn_on_change()
 * @nlisteners:	how many
 */
struct fake_vpn {
	enum vpn_view view;
	bool running, stopping;
	char tun_ip[64], auth_url[256], reason[256], profile[AGENT_PROFILE_NAME_MAX + 1];
	struct sockaddr_storage dns[AGENT_DNS_MAX];
	size_t ndns;
	int start_ret;
	int starts, stops;
	char user[AGENT_CRED_MAX + 1], pass[AGENT_CRED_MAX + 1];
	int timeout_s;
	void (*listeners[AGENT_VPN_LISTENERS_MAX])(struct agent *a);
	size_t nlisteners;
};

extern struct fake_vpn fake_vpn;

void fake_vpn_reset(void);
void fake_vpn_change(struct agent *a);

#endif /* FAKE_VPN_H */
