/* SPDX-License-Identifier: MIT */
/*
 * manager_reply.h - the parsers of the agent's answers (internal to libmicrovm).
 *
 * The manager (manager.c) turns each JSON line the agent sends into C values with these;
 * they face the guest, so the unit tests (tests/unit/manager) and a fuzzer
 * (fuzz/fuzz_manager_reply.c) call them directly.  Not part of the installed API: not
 * exported from libmicrovm.so (no MVM_API), declared outside include/microvm/.
 */
#ifndef MVM_MANAGER_REPLY_H
#define MVM_MANAGER_REPLY_H

#include <stddef.h>

#include "microvm/manager.h"

/**
 * mvm_manager_parse_vpn_reply() - turn an agent JSON response into @info
 * @json:	the response line
 * @info:	filled
 * Return: 0, or -EPROTO if it is not a JSON object with a "status" string.
 */
int mvm_manager_parse_vpn_reply(const char *json, struct mvm_vpn_info *info);

/**
 * mvm_manager_parse_ok_reply() - check an agent answer that should be {"status":"ok"}
 * @json:	the response line (guest-controlled)
 * @err:	on -EPROTO, the agent's error text or a description (may be NULL)
 * @errlen:	size of @err
 * Return: 0, or -EPROTO for an error answer or anything without a "status" string.
 */
int mvm_manager_parse_ok_reply(const char *json, char *err, size_t errlen);

/**
 * mvm_manager_parse_profiles_reply() - the names in a list_profiles answer
 * @json:	the response line (guest-controlled)
 * @names:	on success a malloc'd array of malloc'd strings (mvm_manager_free_list());
 *		members that are not strings are skipped
 * @count:	entries
 * @err:	on -EPROTO, the agent's error text or a description (may be NULL)
 * @errlen:	size of @err
 * Return: 0, -EPROTO without a "profiles" array, or -ENOMEM.
 */
int mvm_manager_parse_profiles_reply(const char *json, char ***names, size_t *count,
				     char *err, size_t errlen);

/**
 * mvm_manager_parse_secret_reply() - the agent's auth secret from a get_auth_secret answer
 * @json:	the response line (guest-controlled)
 * @secret:	on success 64 lowercase hex characters and a NUL
 * Return: 0, or -EPROTO if "auth_secret" is missing or not 64 lowercase hex characters.
 */
int mvm_manager_parse_secret_reply(const char *json, char secret[65]);

#endif
