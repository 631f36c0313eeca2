// SPDX-License-Identifier: MIT
/*
 * fake_vpn.c - the vpn_* interface of agent.h over struct fake_vpn (see fake_vpn.h)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fake_vpn.h"

struct fake_vpn fake_vpn;

/**
 * fake_vpn_reset() - idle, nothing asked, no listeners
 */
void fake_vpn_reset(void)
{
	memset(&fake_vpn, 0, sizeof(fake_vpn));
	fake_vpn.view = VPN_VIEW_IDLE;
}

/**
 * fake_vpn_change() - tell the listeners, as vpn.c does on a change
 * @a:		agent
 */
void fake_vpn_change(struct agent *a)
{
	for (size_t i = 0; i < fake_vpn.nlisteners; i++)
		fake_vpn.listeners[i](a);
}

int vpn_init(struct agent *a)
{
	(void)a;
	return 0;
}

int vpn_on_change(struct agent *a, void (*fn)(struct agent *a))
{
	(void)a;
	if (fake_vpn.nlisteners == AGENT_VPN_LISTENERS_MAX)
		return -ENOSPC;
	fake_vpn.listeners[fake_vpn.nlisteners++] = fn;
	return 0;
}

int vpn_start(struct agent *a, const char *profile, const char *user, const char *pass,
	      int timeout_s, char *err, size_t errlen)
{
	(void)a;
	fake_vpn.starts++;
	snprintf(fake_vpn.user, sizeof(fake_vpn.user), "%s", user ? user : "");
	snprintf(fake_vpn.pass, sizeof(fake_vpn.pass), "%s", pass ? pass : "");
	fake_vpn.timeout_s = timeout_s;
	if (fake_vpn.start_ret) {
		snprintf(err, errlen, "fake start error");
		return fake_vpn.start_ret;
	}
	snprintf(fake_vpn.profile, sizeof(fake_vpn.profile), "%s", profile);
	fake_vpn.running = true;
	fake_vpn.stopping = false;
	fake_vpn.view = VPN_VIEW_PENDING;
	fake_vpn.reason[0] = '\0';
	return 0;
}

void vpn_stop(struct agent *a)
{
	(void)a;
	fake_vpn.stops++;
	if (fake_vpn.running)
		fake_vpn.stopping = true;
}

bool vpn_running(const struct agent *a)
{
	(void)a;
	return fake_vpn.running;
}

bool vpn_stopping(const struct agent *a)
{
	(void)a;
	return fake_vpn.stopping;
}

enum vpn_view vpn_view(const struct agent *a)
{
	(void)a;
	return fake_vpn.view;
}

const char *vpn_tun_ip(const struct agent *a)
{
	(void)a;
	return fake_vpn.tun_ip;
}

const char *vpn_auth_url(const struct agent *a)
{
	(void)a;
	return fake_vpn.auth_url;
}

const char *vpn_reason(const struct agent *a)
{
	(void)a;
	return fake_vpn.reason;
}

const char *vpn_profile(const struct agent *a)
{
	(void)a;
	return fake_vpn.profile;
}

const char *vpn_state_name(const struct agent *a)
{
	(void)a;
	return fake_vpn.view == VPN_VIEW_CONNECTED ? "CONNECTED" : "";
}

const char *vpn_dev(const struct agent *a)
{
	return a->opts.tun_dev;
}

size_t vpn_dns(const struct agent *a, struct sockaddr_storage *out, size_t max)
{
	size_t n = fake_vpn.ndns < max ? fake_vpn.ndns : max;

	(void)a;
	memcpy(out, fake_vpn.dns, n * sizeof(*out));
	return n;
}
