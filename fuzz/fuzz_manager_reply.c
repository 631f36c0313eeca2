/* SPDX-License-Identifier: MIT */
/*
 * fuzz_manager_reply.c - libFuzzer target for the host's parsing of guest-agent answers
 * (guest-controlled JSON): VPN state answers (vpn_start/vpn_status/vpn_check_webauth),
 * {"status":"ok"} answers, list_profiles and get_auth_secret.
 *
 * The input is one answer line.  Invariants checked: strings in the VPN info stay
 * NUL-terminated inside their fields, states are in range, profile lists hold @count
 * non-NULL strings and end with NULL, a secret is 64 lowercase hex characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const char *f, size_t cap)
{
	if (!memchr(f, '\0', cap))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mvm_vpn_info info;
	char *json = malloc(size + 1), err[128], secret[65], **names;
	size_t count, i;

	if (!json)
		return 0;
	memcpy(json, data, size);
	json[size] = '\0';

	if (!mvm_manager_parse_vpn_reply(json, &info)) {
		if ((unsigned int)info.state > MVM_VPN_ERROR)
			abort();
		check_field(info.tun_ip, sizeof(info.tun_ip));
		check_field(info.auth_url, sizeof(info.auth_url));
		check_field(info.profile, sizeof(info.profile));
		check_field(info.error, sizeof(info.error));
		if (!mvm_vpn_state_name(info.state))
			abort();
	}

	err[0] = '\0';
	if (mvm_manager_parse_ok_reply(json, err, sizeof(err)))
		check_field(err, sizeof(err));

	if (!mvm_manager_parse_profiles_reply(json, &names, &count, err, sizeof(err))) {
		for (i = 0; i < count; i++)
			if (!names[i] || strlen(names[i]) > size)
				abort();
		if (names[count])
			abort();
		mvm_manager_free_list(names, count);
	} else if (names || count) {
		abort();
	}

	if (!mvm_manager_parse_secret_reply(json, secret)) {
		if (strlen(secret) != 64 || strspn(secret, "0123456789abcdef") != 64)
			abort();
	}
	free(json);
	return 0;
}
