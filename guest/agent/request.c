// SPDX-License-Identifier: MIT
/*
 * request.c - parse one control request line
 *
 * A request is one JSON object with a string member "cmd"; members a command does not use
 * are ignored, members it uses are type-checked here so that control.c only sees valid
 * requests. The parser is pure (no I/O) and fuzzed (fuzz-agent-request).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "sandbox/secret.h"

static const struct {
	const char *name;
	enum agent_cmd cmd;
} cmds[] = {
	{ "ping", AGENT_CMD_PING },
	{ "get_auth_secret", AGENT_CMD_GET_AUTH_SECRET },
	{ "vpn_set_profile", AGENT_CMD_VPN_SET_PROFILE },
	{ "list_profiles", AGENT_CMD_LIST_PROFILES },
	{ "vpn_start", AGENT_CMD_VPN_START },
	{ "vpn_stop", AGENT_CMD_VPN_STOP },
	{ "vpn_status", AGENT_CMD_VPN_STATUS },
	{ "vpn_check_webauth", AGENT_CMD_VPN_CHECK_WEBAUTH },
	{ "shutdown", AGENT_CMD_SHUTDOWN },
};

/**
 * get_string() - an optional string member
 * @root:	the object
 * @key:	member name
 * @out:	set to the string, or NULL when absent or null
 *
 * Return: 0, or -EINVAL if present with another type
 */
static int get_string(const cJSON *root, const char *key, const char **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);

	*out = NULL;
	if (!it || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsString(it) || !it->valuestring)
		return -EINVAL;
	*out = it->valuestring;
	return 0;
}

/**
 * cred_valid() - a username or password fit for a management command line
 * @s:	the string
 *
 * Return: true if at most AGENT_CRED_MAX bytes without control characters
 */
static bool cred_valid(const char *s)
{
	size_t n = strlen(s);

	if (n > AGENT_CRED_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/**
 * parse_set_profile() - members of vpn_set_profile
 * @r:		request being filled
 * @err:	message buffer
 * @errlen:	its size
 *
 * Return: 0 or -EINVAL with @err set
 */
static int parse_set_profile(struct agent_req *r, char *err, size_t errlen)
{
	if (get_string(r->root, "name", &r->name) || !r->name) {
		snprintf(err, errlen, "vpn_set_profile needs a string \"name\"");
		return -EINVAL;
	}
	if (!profile_name_valid(r->name)) {
		snprintf(err, errlen, "invalid profile name: 1-%d characters of A-Z a-z 0-9 . _ -, "
			 "not starting with a dot", AGENT_PROFILE_NAME_MAX);
		return -EINVAL;
	}
	if (get_string(r->root, "content", &r->content) || !r->content) {
		snprintf(err, errlen, "vpn_set_profile needs a string \"content\"");
		return -EINVAL;
	}
	r->content_len = strlen(r->content);
	if (r->content_len > AGENT_PROFILE_MAX) {
		snprintf(err, errlen, "profile content larger than 1 MiB (%d bytes)",
			 AGENT_PROFILE_MAX);
		return -EINVAL;
	}
	return 0;
}

/**
 * parse_start() - members of vpn_start
 * @r:		request being filled
 * @err:	message buffer
 * @errlen:	its size
 *
 * Return: 0 or -EINVAL with @err set
 */
static int parse_start(struct agent_req *r, char *err, size_t errlen)
{
	const cJSON *t;

	if (get_string(r->root, "profile", &r->profile) || !r->profile) {
		snprintf(err, errlen, "vpn_start needs a string \"profile\"");
		return -EINVAL;
	}
	if (!profile_name_valid(r->profile)) {
		snprintf(err, errlen, "invalid profile name");
		return -EINVAL;
	}
	if (get_string(r->root, "username", &r->username) ||
	    get_string(r->root, "password", &r->password)) {
		snprintf(err, errlen, "\"username\" and \"password\" must be strings");
		return -EINVAL;
	}
	if ((r->username && !cred_valid(r->username)) ||
	    (r->password && !cred_valid(r->password))) {
		snprintf(err, errlen, "username or password longer than %d bytes or with control "
			 "characters", AGENT_CRED_MAX);
		return -EINVAL;
	}
	if (r->password && !r->username) {
		snprintf(err, errlen, "\"password\" given without \"username\"");
		return -EINVAL;
	}
	t = cJSON_GetObjectItemCaseSensitive(r->root, "timeout");
	if (t && !cJSON_IsNull(t)) {
		if (!cJSON_IsNumber(t) || !(t->valuedouble >= 1 && t->valuedouble <= 3600)) {
			snprintf(err, errlen, "\"timeout\" must be a number of seconds, 1-3600");
			return -EINVAL;
		}
		r->timeout_s = (int)t->valuedouble;
	}
	return 0;
}

/**
 * has_nul_escape() - does the JSON text contain a \u0000 escape
 * @p:		text
 * @len:	length
 *
 * cJSON turns \u0000 into a NUL that silently cuts the string short ("a\u0000b" would
 * become the profile name "a"), so such requests are refused.
 *
 * Return: true if found
 */
static bool has_nul_escape(const char *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (p[i] != '\\')
			continue;
		if (p[i + 1] == 'u' && i + 5 < len && !memcmp(p + i + 2, "0000", 4))
			return true;
		i++;	/* skip the escaped character */
	}
	return false;
}

/**
 * agent_req_parse() - parse and validate one request line
 * @r:		filled on success; release with agent_req_free() in every case
 * @line:	the line, without the newline (need not be NUL-terminated)
 * @len:	its length
 * @err:	receives a message for the client on failure
 * @errlen:	size of @err
 *
 * Return: 0, or -EINVAL with @err set
 */
int agent_req_parse(struct agent_req *r, const char *line, size_t len, char *err, size_t errlen)
{
	const char *cmd, *end = NULL;
	size_t i;

	memset(r, 0, sizeof(*r));
	if (len > AGENT_LINE_MAX) {
		snprintf(err, errlen, "request line longer than " AGENT_LINE_MAX_TEXT);
		return -EINVAL;
	}
	if (memchr(line, '\0', len) || has_nul_escape(line, len)) {
		snprintf(err, errlen, "NUL characters are not allowed");
		return -EINVAL;
	}
	r->root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
	while (r->root && end < line + len && (*end == ' ' || *end == '\t' || *end == '\r'))
		end++;
	if (!r->root || end != line + len) {
		snprintf(err, errlen, "malformed JSON");
		return -EINVAL;
	}
	if (!cJSON_IsObject(r->root)) {
		snprintf(err, errlen, "request must be a JSON object");
		return -EINVAL;
	}
	if (get_string(r->root, "cmd", &cmd) || !cmd) {
		snprintf(err, errlen, "missing string \"cmd\"");
		return -EINVAL;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, cmd))
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		snprintf(err, errlen, "unknown command");
		return -EINVAL;
	}
	r->cmd = cmds[i].cmd;
	if (r->cmd == AGENT_CMD_VPN_SET_PROFILE)
		return parse_set_profile(r, err, errlen);
	if (r->cmd == AGENT_CMD_VPN_START)
		return parse_start(r, err, errlen);
	return 0;
}

/**
 * agent_req_free() - release a request; wipes a password in it
 * @r:	the request
 */
void agent_req_free(struct agent_req *r)
{
	if (!r->root)
		return;
	secret_wipe_json(r->root, "password");
	cJSON_Delete(r->root);
	r->root = NULL;
}
