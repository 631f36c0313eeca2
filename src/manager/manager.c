/* SPDX-License-Identifier: MIT */
/*
 * manager.c - the VPN appliance manager: VM lifecycle, the agent's JSON protocol, SOCKS.
 *
 * Theory of operation
 * -------------------
 * The manager owns at most one "guest link": either a VM created through the runtime API
 * (whose vsock client it borrows) or, in attach mode, a vsock client handed to it for an
 * agent that already runs.  Everything else - agent requests, the SOCKS server - only sees
 * an mvm_vsock, so nothing here depends on the backend.
 *
 * Agent protocol (port 1025, one JSON object per line each way, one request per stream):
 *   {"cmd":"ping"} -> {"status":"pong"}
 *   {"cmd":"vpn_set_profile","name":N,"content":C} -> {"status":"ok"}
 *   {"cmd":"vpn_start","profile":N[,"username":U,"password":P]}
 *       -> {"status":"connected","tun_ip":...} | {"status":"webauth_required","auth_url":...}
 *        | {"status":"error","error":...}
 *   {"cmd":"vpn_stop"}, {"cmd":"vpn_status"}, {"cmd":"vpn_check_webauth"},
 *   {"cmd":"list_profiles"} -> {"status":"ok","profiles":[...]}, {"cmd":"shutdown"}
 * Requests are built with cJSON (so every string is escaped), and the serialized request is
 * wiped after sending because it may hold a password.
 *
 * Locking: @life (a rwlock) guards the guest link: start/attach/stop take it for writing,
 * every agent request for reading, so a request never uses a vsock client being freed.
 * @lock (a mutex) guards the cached VPN state and last error, which get_status reports.
 * The last error describes the last user action that failed: the next action that succeeds
 * (import, connect, disconnect, list) clears it (mgr_succeeded()), so an old mistake does
 * not linger in `status`.  Status polls neither set nor clear it, except that a VPN that
 * reports an error is recorded.
 *
 * start_vm: create + start the VM, then ping every 200 ms until the agent answers (or the
 * guest stops, or boot_timeout_ms passes), then start SOCKS.  stop_vm: SOCKS off, "shutdown"
 * to the agent, mvm_vm_stop() with the timeout (the runtime kills after it), destroy.
 *
 * Faults: get_status fills @fault with why the guest side does not work right now
 * (mvm_manager_format_fault()): the guest stopped on its own (exit reason and the backend's
 * detail, e.g. the box's PID 1 killed by a signal, a VMM error), the agent does not answer,
 * or the VPN went down without being asked (the agent's reason).  A watchdog thread runs
 * while a guest link exists: every MGR_WATCH_MS it takes the status and logs each new fault
 * (and its end) through the log callback - so `microvm up` logs it - and a stopped guest's
 * fault becomes the last error.  stop_vm ends the watchdog before it takes @life.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "microvm/manager.h"
#include "manager/manager_reply.h"
#include "runtime/abi.h"
#include "runtime/error.h"
#include "sandbox/secret.h"

struct mvm_manager {
	struct mvm_manager_config cfg;	/* .vm and .socks unused: the two below */
	struct mvm_config vm_cfg;
	struct mvm_socks_config socks_cfg;
	char *strs[6];			/* copies of the config strings */

	pthread_rwlock_t life;
	mvm_vm *vm;
	mvm_vsock *vs;			/* the VM's (borrowed) or attached (owned) */
	bool attached;
	mvm_socks *socks;
	char hypervisor[32];

	char socks_user[256];
	char socks_pass[256];
	bool secret_generated;		/* socks_pass is ours to replace by the agent's */

	pthread_mutex_t lock;
	struct mvm_vpn_info vpn;
	char last_error[512];

	pthread_t watch;		/* the watchdog, while @watching */
	bool watching;
	bool watch_stop;		/* under @lock; @watch_cond wakes it */
	pthread_cond_t watch_cond;
	char fault_seen[512];		/* the fault last logged (watchdog only) */
};

#define MGR_WATCH_MS	2000
#define MGR_PING_MS	2000

static void mgr_watch_start_locked(struct mvm_manager *m);
static void mgr_watch_stop(struct mvm_manager *m);

static const char *const mgr_state_names[] = {
	[MVM_VPN_UNKNOWN] = "unknown",
	[MVM_VPN_DISCONNECTED] = "disconnected",
	[MVM_VPN_CONNECTING] = "connecting",
	[MVM_VPN_WEBAUTH] = "webauth_required",
	[MVM_VPN_CONNECTED] = "connected",
	[MVM_VPN_ERROR] = "error",
};

const char *mvm_vpn_state_name(enum mvm_vpn_state state)
{
	if ((unsigned int)state >= sizeof(mgr_state_names) / sizeof(mgr_state_names[0]))
		return "unknown";
	return mgr_state_names[state];
}

/**
 * mgr_log() - a line to the configured log (never called with secrets)
 */
static void MVM_PRINTF(2, 3) mgr_log(struct mvm_manager *m, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	if (!m->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	m->cfg.log(m->cfg.log_opaque, line);
}

/**
 * mgr_fail() - record an error for get_status and mvm_last_error()
 * @m:		manager
 * @err:	negative errno, returned
 * @fmt:	message
 *
 * Return: @err.
 */
static int MVM_PRINTF(3, 4) mgr_fail(struct mvm_manager *m, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&m->lock);
	snprintf(m->last_error, sizeof(m->last_error), "%s", msg);
	pthread_mutex_unlock(&m->lock);
	mgr_log(m, "error: %s", msg);
	return mvm_set_error(err, "%s", msg);
}

/**
 * mgr_succeeded() - a user action succeeded: the previous action's error is history
 * @m:		manager
 */
static void mgr_succeeded(struct mvm_manager *m)
{
	pthread_mutex_lock(&m->lock);
	m->last_error[0] = '\0';
	pthread_mutex_unlock(&m->lock);
}

static void mgr_copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/*
 * struct mvm_manager_config as callers may pass it (docs/library.md, "ABI rules"): fields are
 * only appended, each new one at or after the previous size; the VM and SOCKS configs are
 * pointed to, never embedded, so that they grow on their own.  64-bit sizes by version:
 * 0.2: 56.
 */
_Static_assert(sizeof(void *) != 8 || sizeof(struct mvm_manager_config) == 56,
	       "struct mvm_manager_config changed: append fields only, record the new size above");

/**
 * mgr_config_defaults() - the library's defaults of every field
 * @cfg:	the library's full struct
 */
static void mgr_config_defaults(struct mvm_manager_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->boot_timeout_ms = 60000;
	cfg->request_timeout_ms = 10000;
	cfg->connect_timeout_ms = 90000;
}

/**
 * mvm_manager_config_init_sized() - defaults (no VM or SOCKS config given: theirs apply)
 * @cfg:	config to fill, as the caller's headers define it
 * @size:	sizeof(*@cfg) in the caller's build (the mvm_manager_config_init() macro)
 */
void mvm_manager_config_init_sized(struct mvm_manager_config *cfg, size_t size)
{
	struct mvm_manager_config d;

	mgr_config_defaults(&d);
	mvm_abi_init(cfg, size, &d, sizeof(d));
}

/**
 * mgr_dup() - copy one config string into the manager
 * Return: 0 or -ENOMEM.
 */
static int mgr_dup(struct mvm_manager *m, int slot, const char **s)
{
	if (!*s)
		return 0;
	m->strs[slot] = strdup(*s);
	if (!m->strs[slot])
		return -ENOMEM;
	*s = m->strs[slot];
	return 0;
}

mvm_manager *mvm_manager_new(const struct mvm_manager_config *cfg)
{
	struct mvm_manager *m = calloc(1, sizeof(*m));
	pthread_condattr_t ca;

	if (!m) {
		mvm_set_error(-ENOMEM, "out of memory");
		return NULL;
	}
	/* each struct: the caller's fields over the defaults (an older caller's is shorter) */
	mgr_config_defaults(&m->cfg);
	mvm_config_init(&m->vm_cfg);
	mvm_socks_config_init(&m->socks_cfg);
	if (mvm_abi_copy_in(&m->cfg, sizeof(m->cfg), cfg, "mvm_manager_config") ||
	    (m->cfg.vm && mvm_abi_copy_in(&m->vm_cfg, sizeof(m->vm_cfg), m->cfg.vm, "mvm_config")) ||
	    (m->cfg.socks && mvm_abi_copy_in(&m->socks_cfg, sizeof(m->socks_cfg), m->cfg.socks,
					      "mvm_socks_config")))
		goto err;
	m->cfg.vm = NULL;
	m->cfg.socks = NULL;
	m->vm_cfg.net = true;	/* the appliance reaches its VPN server through it */
	if (mgr_dup(m, 0, &m->vm_cfg.kernel_path) || mgr_dup(m, 1, &m->vm_cfg.initrd_path) ||
	    mgr_dup(m, 2, &m->vm_cfg.cmdline) || mgr_dup(m, 3, &m->vm_cfg.rootfs_path) ||
	    mgr_dup(m, 4, &m->socks_cfg.addr) || mgr_dup(m, 5, &m->vm_cfg.vsock_uds_path)) {
		mvm_set_error(-ENOMEM, "out of memory");
		goto err;
	}
	if (m->socks_cfg.username) {
		if (!m->socks_cfg.password || strlen(m->socks_cfg.username) > 255 ||
		    strlen(m->socks_cfg.password) > 255 || !*m->socks_cfg.username ||
		    !*m->socks_cfg.password) {
			mvm_set_error(-EINVAL, "SOCKS username and password must be 1..255 bytes");
			goto err;
		}
		mgr_copy(m->socks_user, sizeof(m->socks_user), m->socks_cfg.username);
		mgr_copy(m->socks_pass, sizeof(m->socks_pass), m->socks_cfg.password);
	} else if (m->cfg.socks_generate_secret) {
		mgr_copy(m->socks_user, sizeof(m->socks_user), "microvm");
		if (mvm_socks_generate_secret(m->socks_pass, sizeof(m->socks_pass)))
			goto err;
		m->secret_generated = true;
	}
	m->socks_cfg.username = m->socks_user[0] ? m->socks_user : NULL;
	m->socks_cfg.password = m->socks_user[0] ? m->socks_pass : NULL;
	if (!m->socks_cfg.log) {
		m->socks_cfg.log = m->cfg.log;
		m->socks_cfg.log_opaque = m->cfg.log_opaque;
	}
	pthread_rwlock_init(&m->life, NULL);
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->watch_cond, &ca);
	pthread_condattr_destroy(&ca);
	return m;
err:
	for (size_t i = 0; i < sizeof(m->strs) / sizeof(m->strs[0]); i++)
		free(m->strs[i]);
	explicit_bzero(m->socks_pass, sizeof(m->socks_pass));
	free(m);
	return NULL;
}

/* ---- agent requests --------------------------------------------------------------------- */

/**
 * mgr_request_locked() - send one JSON request to the agent and parse the response
 * @m:		manager; the caller holds @life (read or write) and a guest link exists
 * @req:	request object (not consumed)
 * @timeout_ms:	for the whole exchange
 * @resp:	parsed response (caller deletes)
 *
 * Return: 0 or -errno; the error is recorded.
 */
static int mgr_request_locked(struct mvm_manager *m, const cJSON *req, int timeout_ms,
			      cJSON **resp)
{
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(req, "cmd");
	const char *name = cJSON_IsString(cmd) ? cmd->valuestring : "?";
	char *text, *answer = NULL;
	size_t len;
	int ret;

	if (!m->vs)
		return mgr_fail(m, -ENOTCONN, "no VM running (start one with 'microvm up')");
	text = cJSON_PrintUnformatted(req);
	if (!text)
		return mgr_fail(m, -ENOMEM, "out of memory");
	len = strlen(text);
	ret = mvm_vsock_request(m->vs, MVM_AGENT_PORT, text, len, &answer, NULL, timeout_ms);
	explicit_bzero(text, len);	/* may contain a password */
	cJSON_free(text);
	if (ret)
		return mgr_fail(m, ret, "agent request '%s' failed: %s", name, mvm_last_error());
	*resp = cJSON_Parse(answer);
	free(answer);
	if (!cJSON_IsObject(*resp)) {
		cJSON_Delete(*resp);
		*resp = NULL;
		return mgr_fail(m, -EPROTO, "agent sent a malformed answer to '%s'", name);
	}
	return 0;
}

/**
 * mgr_request() - like mgr_request_locked(), taking @life for reading
 */
static int mgr_request(struct mvm_manager *m, const cJSON *req, int timeout_ms, cJSON **resp)
{
	int ret;

	pthread_rwlock_rdlock(&m->life);
	ret = mgr_request_locked(m, req, timeout_ms, resp);
	pthread_rwlock_unlock(&m->life);
	return ret;
}

/**
 * mgr_cmd() - a request object {"cmd": @cmd}
 * Return: the object or NULL.
 */
static cJSON *mgr_cmd(const char *cmd)
{
	cJSON *o = cJSON_CreateObject();

	if (o && !cJSON_AddStringToObject(o, "cmd", cmd)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static const char *mgr_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/**
 * mgr_state_from_text() - an agent state word to enum mvm_vpn_state
 * Return: the state, MVM_VPN_UNKNOWN for words not known.
 */
static enum mvm_vpn_state mgr_state_from_text(const char *s)
{
	static const struct {
		const char *word;
		enum mvm_vpn_state state;
	} map[] = {
		{ "connected", MVM_VPN_CONNECTED },
		{ "disconnected", MVM_VPN_DISCONNECTED },
		{ "stopped", MVM_VPN_DISCONNECTED },
		{ "idle", MVM_VPN_DISCONNECTED },
		{ "connecting", MVM_VPN_CONNECTING },
		{ "reconnecting", MVM_VPN_CONNECTING },
		{ "webauth_required", MVM_VPN_WEBAUTH },
		{ "webauth", MVM_VPN_WEBAUTH },
		{ "error", MVM_VPN_ERROR },
	};
	size_t i;

	for (i = 0; s && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(s, map[i].word))
			return map[i].state;
	return MVM_VPN_UNKNOWN;
}

/**
 * mgr_openvpn_in_progress() - is @state an OpenVPN state on the way to CONNECTED?
 * @state:	OpenVPN's state name (management interface), or NULL
 *
 * Return: true for CONNECTING, WAIT, AUTH, GET_CONFIG, ... (not EXITING or empty).
 */
static bool mgr_openvpn_in_progress(const char *state)
{
	static const char *const words[] = {
		"CONNECTING", "WAIT", "AUTH", "GET_CONFIG", "ASSIGN_IP", "ADD_ROUTES",
		"RECONNECTING", "RESOLVE", "TCP_CONNECT", "AUTH_PENDING", "HOLD", "STARTING",
	};
	size_t i;

	for (i = 0; state && i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(state, words[i]))
			return true;
	return false;
}

int mvm_manager_parse_vpn_reply(const char *json, struct mvm_vpn_info *info)
{
	cJSON *o = cJSON_Parse(json);
	const char *status, *state;
	int ret = 0;

	memset(info, 0, sizeof(*info));
	status = mgr_str(o, "status");
	if (!cJSON_IsObject(o) || !status) {
		ret = -EPROTO;
		goto out;
	}
	info->state = mgr_state_from_text(status);
	state = mgr_str(o, "state");
	if (state && (info->state == MVM_VPN_UNKNOWN || !strcmp(status, "ok")))
		info->state = mgr_state_from_text(state);
	/* the agent says "disconnected" until OpenVPN is up; its state says how far it is */
	if (info->state == MVM_VPN_DISCONNECTED && mgr_openvpn_in_progress(state))
		info->state = MVM_VPN_CONNECTING;
	mgr_copy(info->tun_ip, sizeof(info->tun_ip), mgr_str(o, "tun_ip"));
	mgr_copy(info->auth_url, sizeof(info->auth_url), mgr_str(o, "auth_url"));
	mgr_copy(info->profile, sizeof(info->profile), mgr_str(o, "profile"));
	mgr_copy(info->error, sizeof(info->error), mgr_str(o, "error"));
	if (!info->error[0])	/* why the VPN went down (auth failure...) */
		mgr_copy(info->error, sizeof(info->error), mgr_str(o, "reason"));
	if (info->error[0] && info->state == MVM_VPN_UNKNOWN)
		info->state = MVM_VPN_ERROR;
out:
	cJSON_Delete(o);
	return ret;
}

/**
 * mgr_vpn_request() - send a VPN command and read the VPN state out of the answer
 * @m:		manager
 * @req:	request (consumed)
 * @timeout_ms:	timeout
 * @info:	result (may be NULL)
 *
 * Return: 0 when the agent answered (also with an error state), or -errno.
 */
static int mgr_vpn_request(struct mvm_manager *m, cJSON *req, int timeout_ms,
			   struct mvm_vpn_info *info)
{
	struct mvm_vpn_info tmp;
	cJSON *resp = NULL;
	bool changed;
	char *text;
	int ret;

	if (!req)
		return mgr_fail(m, -ENOMEM, "out of memory");
	ret = mgr_request(m, req, timeout_ms, &resp);
	secret_wipe_json(req, "password");	/* vpn_start: cJSON_Delete() only frees */
	cJSON_Delete(req);
	if (ret)
		return ret;
	text = cJSON_PrintUnformatted(resp);
	cJSON_Delete(resp);
	if (!text)
		return mgr_fail(m, -ENOMEM, "out of memory");
	ret = mvm_manager_parse_vpn_reply(text, &tmp);
	cJSON_free(text);
	if (ret)
		return mgr_fail(m, ret, "agent answer has no status");
	pthread_mutex_lock(&m->lock);
	/* status polls need not repeat the URL: keep it while still waiting */
	if (tmp.state == MVM_VPN_WEBAUTH && !tmp.auth_url[0])
		mgr_copy(tmp.auth_url, sizeof(tmp.auth_url), m->vpn.auth_url);
	/* periodic polls (the watchdog, status) log only what changed */
	changed = tmp.state != m->vpn.state || strcmp(tmp.error, m->vpn.error) ||
		  strcmp(tmp.tun_ip, m->vpn.tun_ip);
	if (tmp.state != MVM_VPN_UNKNOWN) {
		m->vpn = tmp;
		if (tmp.state == MVM_VPN_ERROR)
			mgr_copy(m->last_error, sizeof(m->last_error), tmp.error);
	}
	pthread_mutex_unlock(&m->lock);
	if (changed && tmp.state == MVM_VPN_ERROR)
		mgr_log(m, "VPN error: %s", tmp.error);
	else if (changed && tmp.state != MVM_VPN_UNKNOWN)
		mgr_log(m, "VPN %s%s%s", mvm_vpn_state_name(tmp.state), tmp.tun_ip[0] ? " " : "",
			tmp.tun_ip);
	if (info)
		*info = tmp;
	return 0;
}

/**
 * mgr_ok_from_json() - check an answer that should be {"status":"ok"}
 * @resp:	parsed answer (guest-controlled; may be NULL)
 * @err:	receives the error text on failure (may be NULL)
 * @errlen:	size of @err
 *
 * Return: 0 or -EPROTO.
 */
static int mgr_ok_from_json(const cJSON *resp, char *err, size_t errlen)
{
	const char *status = mgr_str(resp, "status"), *e = mgr_str(resp, "error");

	if (status && strcmp(status, "error") && !e)
		return 0;
	if (err && errlen)
		mgr_copy(err, errlen, e ? e : "request failed");
	return -EPROTO;
}

int mvm_manager_parse_ok_reply(const char *json, char *err, size_t errlen)
{
	cJSON *o = json ? cJSON_Parse(json) : NULL;
	int ret;

	if (!cJSON_IsObject(o)) {
		if (err && errlen)
			mgr_copy(err, errlen, "malformed answer");
		cJSON_Delete(o);
		return -EPROTO;
	}
	ret = mgr_ok_from_json(o, err, errlen);
	cJSON_Delete(o);
	return ret;
}

/**
 * mgr_ok_request() - send a command whose answer is {"status":"ok"} (or an error)
 * Return: 0, -EPROTO with the agent's error text recorded, or -errno.
 */
static int mgr_ok_request(struct mvm_manager *m, cJSON *req, int timeout_ms)
{
	cJSON *resp = NULL;
	char err[256];
	int ret;

	if (!req)
		return mgr_fail(m, -ENOMEM, "out of memory");
	ret = mgr_request(m, req, timeout_ms, &resp);
	cJSON_Delete(req);
	if (ret)
		return ret;
	ret = mgr_ok_from_json(resp, err, sizeof(err));
	if (ret)
		ret = mgr_fail(m, ret, "agent: %s", err);
	cJSON_Delete(resp);
	return ret;
}

/**
 * mgr_ping_locked() - is the agent there?
 * Return: true if it answered "pong".
 */
static bool mgr_ping_locked(struct mvm_manager *m, int timeout_ms, int *err)
{
	static const char ping[] = "{\"cmd\":\"ping\"}";
	cJSON *resp = NULL;
	const char *status;
	char *answer = NULL;
	bool ok = false;
	int ret;

	if (!m->vs)
		goto out;
	ret = mvm_vsock_request(m->vs, MVM_AGENT_PORT, ping, sizeof(ping) - 1, &answer, NULL,
				timeout_ms);
	if (err)
		*err = ret;
	if (ret)
		goto out;
	resp = cJSON_Parse(answer);
	status = mgr_str(resp, "status");
	ok = status && !strcmp(status, "pong");
out:
	free(answer);
	cJSON_Delete(resp);
	return ok;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static int64_t mgr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/**
 * mgr_exit_words() - why a stopped guest stopped, in a user's words
 * @vm:		a stopped VM
 */
static const char *mgr_exit_words(mvm_vm *vm)
{
	enum mvm_exit_reason r = MVM_EXIT_NONE;

	mvm_vm_wait(vm, 0, &r);
	switch (r) {
	case MVM_EXIT_PANIC:	return "the guest kernel panicked";
	case MVM_EXIT_POWEROFF:	return "the guest powered off";
	case MVM_EXIT_REBOOT:	return "the guest rebooted";
	case MVM_EXIT_KILLED:	return "it was stopped from the host";
	case MVM_EXIT_ERROR:
	default:		return mvm_vm_exit_detail(vm)[0] ? mvm_vm_exit_detail(vm) :
				       "the hypervisor reported an error";
	}
}

/**
 * mgr_wait_agent_locked() - ping until the agent answers
 * @m:		manager with a guest link, @life held for writing
 *
 * Return: 0, -ETIMEDOUT, or -ECHILD if the VM stopped meanwhile.
 */
static int mgr_wait_agent_locked(struct mvm_manager *m)
{
	int64_t deadline = mgr_now_ms() + m->cfg.boot_timeout_ms;
	useconds_t pause = 5 * 1000;	/* doubles up to 200 ms: a box is up in milliseconds */

	for (;;) {
		int err = 0;

		if (mgr_ping_locked(m, 1000, &err))
			return 0;
		/* Something answers but does not prove the secret: waiting will not help. */
		if (err == -EACCES)
			return mgr_fail(m, err, "%s", mvm_last_error());
		if (m->vm && mvm_vm_state(m->vm) == MVM_STATE_STOPPED)
			return mgr_fail(m, -ECHILD, "the VM stopped before its agent answered: %s",
					mgr_exit_words(m->vm));
		if (mgr_now_ms() >= deadline)
			return mgr_fail(m, -ETIMEDOUT,
					"the agent did not answer within %d ms (is it running?)",
					m->cfg.boot_timeout_ms);
		usleep(pause);
		if (pause < 200 * 1000)
			pause *= 2;
	}
}

/**
 * mgr_secret_from_json() - a valid "auth_secret" (64 lowercase hex characters) from @resp
 * Return: 0 with @secret filled, or -EPROTO.
 */
static int mgr_secret_from_json(const cJSON *resp, char secret[65])
{
	const char *v = mgr_str(resp, "auth_secret");

	if (!v || strlen(v) != 64 || strspn(v, "0123456789abcdef") != 64)
		return -EPROTO;
	memcpy(secret, v, 65);
	return 0;
}

int mvm_manager_parse_secret_reply(const char *json, char secret[65])
{
	cJSON *o = json ? cJSON_Parse(json) : NULL;
	int ret = mgr_secret_from_json(o, secret);

	cJSON_Delete(o);
	return ret;
}

/**
 * mgr_adopt_agent_secret_locked() - use the agent's auth secret as the SOCKS password
 * @m:	manager with a guest link, @life held for writing
 *
 * The agent holds a secret for its whole life (get_auth_secret: 64 hex characters, random or
 * provisioned by the host); with a generated SOCKS password the app can read the same value
 * from the guest.  Keeps the host-generated one if the agent has none to give.
 */
static void mgr_adopt_agent_secret_locked(struct mvm_manager *m)
{
	cJSON *req = mgr_cmd("get_auth_secret"), *resp = NULL;
	char secret[65];

	if (!req || mgr_request_locked(m, req, m->cfg.request_timeout_ms, &resp))
		goto out;
	if (!mgr_secret_from_json(resp, secret))
		mgr_copy(m->socks_pass, sizeof(m->socks_pass), secret);
	explicit_bzero(secret, sizeof(secret));
out:
	cJSON_Delete(resp);
	cJSON_Delete(req);
}

/**
 * mgr_start_socks_locked() - start the SOCKS server on the current guest link
 * Return: 0 or -errno.
 */
static int mgr_start_socks_locked(struct mvm_manager *m)
{
	int ret;

	if (m->cfg.no_socks)
		return 0;
	if (m->secret_generated)
		mgr_adopt_agent_secret_locked(m);
	m->socks = mvm_socks_new(&m->socks_cfg, m->vs);
	if (!m->socks)
		return mgr_fail(m, -EINVAL, "%s", mvm_last_error());
	ret = mvm_socks_start(m->socks);
	if (ret) {
		ret = mgr_fail(m, ret, "%s", mvm_last_error());
		mvm_socks_free(m->socks);
		m->socks = NULL;
		return ret;
	}
	mgr_log(m, "SOCKS5 proxy on %s:%u%s", m->socks_cfg.addr ? m->socks_cfg.addr : "127.0.0.1",
		mvm_socks_port(m->socks), m->socks_user[0] ? " (username/password required)" : "");
	return 0;
}

/**
 * mgr_release_locked() - drop the guest link (SOCKS, VM or attached client)
 */
static void mgr_release_locked(struct mvm_manager *m)
{
	mvm_socks_free(m->socks);
	m->socks = NULL;
	if (m->vm)
		mvm_vm_free(m->vm);
	else if (m->attached)
		mvm_vsock_free(m->vs);
	m->vm = NULL;
	m->vs = NULL;
	m->attached = false;
	m->hypervisor[0] = '\0';
	pthread_mutex_lock(&m->lock);
	memset(&m->vpn, 0, sizeof(m->vpn));
	pthread_mutex_unlock(&m->lock);
}

int mvm_manager_start_vm(mvm_manager *m)
{
	int ret;

	pthread_rwlock_wrlock(&m->life);
	if (m->vs) {
		ret = mgr_fail(m, -EBUSY, "a VM is already running");
		goto out;
	}
	m->vm = mvm_vm_new(&m->vm_cfg);
	if (!m->vm) {
		ret = mgr_fail(m, -EINVAL, "cannot create the VM: %s", mvm_last_error());
		goto out;
	}
	ret = mvm_vm_start(m->vm);
	if (ret) {
		ret = mgr_fail(m, ret, "cannot start the VM: %s", mvm_last_error());
		goto err;
	}
	m->vs = mvm_vm_vsock(m->vm);
	mgr_copy(m->hypervisor, sizeof(m->hypervisor), mvm_vm_hypervisor(m->vm));
	mgr_log(m, "VM started (%s), waiting for the agent", m->hypervisor);
	ret = mgr_wait_agent_locked(m);
	if (ret)
		goto err;
	ret = mgr_start_socks_locked(m);
	if (ret)
		goto err;
	mgr_watch_start_locked(m);
	goto out;
err:
	if (m->vm)
		mvm_vm_stop(m->vm, 2000);
	mgr_release_locked(m);
out:
	pthread_rwlock_unlock(&m->life);
	return ret;
}

int mvm_manager_attach(mvm_manager *m, mvm_vsock *vs)
{
	int ret;

	pthread_rwlock_wrlock(&m->life);
	if (m->vs) {
		mvm_vsock_free(vs);
		ret = mgr_fail(m, -EBUSY, "already running");
		goto out;
	}
	if (!vs) {
		ret = mgr_fail(m, -EINVAL, "no vsock client to attach to");
		goto out;
	}
	m->vs = vs;
	m->attached = true;
	mgr_copy(m->hypervisor, sizeof(m->hypervisor), "attached");
	ret = mgr_wait_agent_locked(m);
	if (!ret)
		ret = mgr_start_socks_locked(m);
	if (ret)
		mgr_release_locked(m);
	else
		mgr_watch_start_locked(m);
out:
	pthread_rwlock_unlock(&m->life);
	return ret;
}

int mvm_manager_stop_vm(mvm_manager *m, int timeout_ms)
{
	cJSON *req, *resp = NULL;
	int64_t t0;
	int ret = 0;

	mgr_watch_stop(m);
	pthread_rwlock_wrlock(&m->life);
	if (!m->vs)
		goto out;
	mvm_socks_free(m->socks);
	m->socks = NULL;
	if (m->vm) {
		/* the agent powers the guest off; a missing answer is expected then */
		req = mgr_cmd("shutdown");
		if (req && !mgr_request_locked(m, req, 2000, &resp))
			cJSON_Delete(resp);
		cJSON_Delete(req);
		/* mvm_vm_stop() returns before @timeout_ms unless it had to kill the guest */
		t0 = mgr_now_ms();
		ret = mvm_vm_stop(m->vm, timeout_ms);
		if (ret)
			mgr_fail(m, ret, "stopping the VM: %s", mvm_last_error());
		else if (mgr_now_ms() - t0 >= timeout_ms)
			mgr_log(m, "the VM did not stop within %d ms: killed it", timeout_ms);
	}
	mgr_log(m, "%s", m->vm ? "VM stopped" : "detached from the agent");
	mgr_release_locked(m);
out:
	pthread_rwlock_unlock(&m->life);
	return ret;
}

void mvm_manager_format_fault(char *buf, size_t len, bool guest_stopped,
			      enum mvm_exit_reason reason, const char *detail,
			      bool agent_reachable, const struct mvm_vpn_info *vpn)
{
	if (guest_stopped)
		snprintf(buf, len, "the guest stopped (%s)%s%s", mvm_exit_reason_name(reason),
			 detail && detail[0] ? ": " : "", detail ? detail : "");
	else if (!agent_reachable)
		snprintf(buf, len, "the agent does not answer (no reply to ping within %d s)",
			 MGR_PING_MS / 1000);
	else if (vpn && vpn->state == MVM_VPN_ERROR)
		snprintf(buf, len, "VPN failed: %s", vpn->error[0] ? vpn->error : "unknown error");
	else if (vpn && vpn->state == MVM_VPN_DISCONNECTED && vpn->error[0])
		snprintf(buf, len, "VPN down: %s", vpn->error);
	else if (len)
		buf[0] = '\0';
}

/**
 * mgr_guest_stopped_locked() - has the managed guest stopped (nobody asked: a stop
 * releases it)?
 * @m:		manager, @life held
 * @reason:	receives the exit reason
 * @detail:	receives the backend's line about it
 * @len:	size of @detail
 *
 * Return: true if it stopped
 */
static bool mgr_guest_stopped_locked(struct mvm_manager *m, enum mvm_exit_reason *reason,
				     char *detail, size_t len)
{
	detail[0] = '\0';
	*reason = MVM_EXIT_NONE;
	if (!m->vm || mvm_vm_state(m->vm) != MVM_STATE_STOPPED)
		return false;
	mvm_vm_wait(m->vm, 0, reason);
	mgr_copy(detail, len, mvm_vm_exit_detail(m->vm));
	return true;
}

void mvm_manager_get_status(mvm_manager *m, struct mvm_manager_status *st)
{
	enum mvm_exit_reason reason;
	struct mvm_vpn_info info;
	char detail[256];
	bool reach, stopped, link;

	memset(st, 0, sizeof(*st));
	pthread_rwlock_rdlock(&m->life);
	link = m->vs != NULL;
	st->attached = m->attached;
	st->vm_running = m->vm ? mvm_vm_state(m->vm) == MVM_STATE_RUNNING : m->attached;
	stopped = mgr_guest_stopped_locked(m, &reason, detail, sizeof(detail));
	mgr_copy(st->hypervisor, sizeof(st->hypervisor), m->hypervisor);
	reach = m->vs && !stopped && mgr_ping_locked(m, MGR_PING_MS, NULL);
	st->agent_reachable = reach;
	if (m->socks) {
		st->socks_running = true;
		mgr_copy(st->socks_addr, sizeof(st->socks_addr),
			 m->socks_cfg.addr ? m->socks_cfg.addr : "127.0.0.1");
		st->socks_port = mvm_socks_port(m->socks);
	}
	st->socks_auth = m->socks_user[0] != '\0';
	pthread_rwlock_unlock(&m->life);
	if (reach)
		mvm_manager_vpn_status(m, &info);
	pthread_mutex_lock(&m->lock);
	st->vpn = m->vpn;
	if (!reach)
		st->vpn.state = MVM_VPN_UNKNOWN;
	if (link)
		mvm_manager_format_fault(st->fault, sizeof(st->fault), stopped, reason, detail,
					 reach, &st->vpn);
	/* a guest that died is the error to report, whatever failed before */
	if (stopped && strcmp(m->last_error, st->fault))
		mgr_copy(m->last_error, sizeof(m->last_error), st->fault);
	mgr_copy(st->last_error, sizeof(st->last_error), m->last_error);
	pthread_mutex_unlock(&m->lock);
}

/**
 * mgr_watch_thread() - the watchdog: log each new fault and its end
 * @arg:	manager
 *
 * Return: NULL.
 */
static void *mgr_watch_thread(void *arg)
{
	struct mvm_manager *m = arg;
	struct mvm_manager_status *st = malloc(sizeof(*st));
	struct timespec ts;

	if (!st)
		return NULL;
	pthread_mutex_lock(&m->lock);
	while (!m->watch_stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += MGR_WATCH_MS / 1000;
		pthread_cond_timedwait(&m->watch_cond, &m->lock, &ts);
		if (m->watch_stop)
			break;
		pthread_mutex_unlock(&m->lock);
		mvm_manager_get_status(m, st);
		if (strcmp(st->fault, m->fault_seen)) {
			if (st->fault[0])
				mgr_log(m, "fault: %s", st->fault);
			else
				mgr_log(m, "fault cleared (was: %s)", m->fault_seen);
			mgr_copy(m->fault_seen, sizeof(m->fault_seen), st->fault);
		}
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	free(st);
	return NULL;
}

/**
 * mgr_watch_start_locked() - start the watchdog (a guest link was just made; @life held)
 * @m:		manager
 */
static void mgr_watch_start_locked(struct mvm_manager *m)
{
	pthread_mutex_lock(&m->lock);
	if (!m->watching) {
		m->watch_stop = false;
		m->fault_seen[0] = '\0';
		m->watching = pthread_create(&m->watch, NULL, mgr_watch_thread, m) == 0;
	}
	pthread_mutex_unlock(&m->lock);
}

/**
 * mgr_watch_stop() - end the watchdog and wait for it (without holding @life)
 * @m:		manager
 */
static void mgr_watch_stop(struct mvm_manager *m)
{
	pthread_mutex_lock(&m->lock);
	if (!m->watching) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	m->watch_stop = true;
	pthread_cond_signal(&m->watch_cond);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->watch, NULL);
	pthread_mutex_lock(&m->lock);
	m->watching = false;
	pthread_mutex_unlock(&m->lock);
}

/* ---- VPN -------------------------------------------------------------------------------- */

/**
 * mgr_valid_name() - profile names are plain file names
 * Return: true if @name is 1..255 bytes, no '/', not "." or "..".
 */
static bool mgr_valid_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n && n < 256 && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

int mvm_manager_upload_profile(mvm_manager *m, const char *name, const char *content)
{
	cJSON *req;
	int ret;

	if (!mgr_valid_name(name))
		return mgr_fail(m, -EINVAL, "bad profile name '%s' (a plain file name is needed)",
				name ? name : "");
	if (!content)
		return mgr_fail(m, -EINVAL, "profile '%s' has no content", name);
	req = mgr_cmd("vpn_set_profile");
	if (req && (!cJSON_AddStringToObject(req, "name", name) ||
		    !cJSON_AddStringToObject(req, "content", content))) {
		cJSON_Delete(req);
		req = NULL;
	}
	ret = mgr_ok_request(m, req, m->cfg.request_timeout_ms);
	if (!ret)
		mgr_succeeded(m);
	return ret;
}

int mvm_manager_vpn_connect(mvm_manager *m, const char *name, const char *content,
			    const char *username, const char *password, struct mvm_vpn_info *info)
{
	cJSON *req;
	int ret;

	memset(info, 0, sizeof(*info));
	if (content) {
		ret = mvm_manager_upload_profile(m, name, content);
		if (ret)
			return ret;
	} else if (!mgr_valid_name(name)) {
		return mgr_fail(m, -EINVAL, "bad profile name '%s'", name ? name : "");
	}
	req = mgr_cmd("vpn_start");
	if (req && (!cJSON_AddStringToObject(req, "profile", name) ||
		    (username && !cJSON_AddStringToObject(req, "username", username)) ||
		    (password && !cJSON_AddStringToObject(req, "password", password)))) {
		cJSON_Delete(req);
		req = NULL;
	}
	pthread_mutex_lock(&m->lock);
	m->vpn.state = MVM_VPN_CONNECTING;
	pthread_mutex_unlock(&m->lock);
	mgr_log(m, "connecting VPN profile %s%s%s", name, username ? " as " : "",
		username ? username : "");
	ret = mgr_vpn_request(m, req, m->cfg.connect_timeout_ms, info);
	if (!ret && info->state != MVM_VPN_ERROR)
		mgr_succeeded(m);
	return ret;
}

int mvm_manager_vpn_disconnect(mvm_manager *m)
{
	struct mvm_vpn_info info;
	int ret;

	ret = mgr_vpn_request(m, mgr_cmd("vpn_stop"), m->cfg.request_timeout_ms, &info);
	if (ret)
		return ret;
	if (info.state == MVM_VPN_ERROR)
		return mgr_fail(m, -EPROTO, "agent: %s", info.error);
	pthread_mutex_lock(&m->lock);
	memset(&m->vpn, 0, sizeof(m->vpn));
	m->vpn.state = MVM_VPN_DISCONNECTED;
	pthread_mutex_unlock(&m->lock);
	mgr_succeeded(m);
	return 0;
}

int mvm_manager_vpn_status(mvm_manager *m, struct mvm_vpn_info *info)
{
	return mgr_vpn_request(m, mgr_cmd("vpn_status"), m->cfg.request_timeout_ms, info);
}

int mvm_manager_check_webauth(mvm_manager *m, struct mvm_vpn_info *info)
{
	return mgr_vpn_request(m, mgr_cmd("vpn_check_webauth"), m->cfg.request_timeout_ms, info);
}

void mvm_manager_free_list(char **names, size_t count)
{
	size_t i;

	for (i = 0; names && i < count; i++)
		free(names[i]);
	free(names);
}

/**
 * mgr_profiles_from_json() - the names in a list_profiles answer
 * @resp:	parsed answer (guest-controlled; may be NULL)
 * @names:	result array (NULL-terminated as well), @count entries
 * @count:	entries
 * @err:	receives the error text for -EPROTO (may be NULL)
 * @errlen:	size of @err
 *
 * Return: 0, -EPROTO or -ENOMEM.
 */
static int mgr_profiles_from_json(const cJSON *resp, char ***names, size_t *count,
				  char *err, size_t errlen)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(resp, "profiles"), *it;
	char **out;
	size_t n = 0;

	*names = NULL;
	*count = 0;
	if (!cJSON_IsArray(list)) {
		const char *e = mgr_str(resp, "error");

		if (err && errlen)
			mgr_copy(err, errlen, e ? e : "no profile list in answer");
		return -EPROTO;
	}
	out = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	cJSON_ArrayForEach(it, list) {
		if (!cJSON_IsString(it) || !it->valuestring)
			continue;
		out[n] = strdup(it->valuestring);
		if (!out[n]) {
			mvm_manager_free_list(out, n);
			return -ENOMEM;
		}
		n++;
	}
	*names = out;
	*count = n;
	return 0;
}

int mvm_manager_parse_profiles_reply(const char *json, char ***names, size_t *count,
				     char *err, size_t errlen)
{
	cJSON *o = json ? cJSON_Parse(json) : NULL;
	int ret = mgr_profiles_from_json(o, names, count, err, errlen);

	cJSON_Delete(o);
	return ret;
}

int mvm_manager_list_profiles(mvm_manager *m, char ***names, size_t *count)
{
	cJSON *resp = NULL, *req;
	char err[256];
	int ret;

	*names = NULL;
	*count = 0;
	req = mgr_cmd("list_profiles");
	if (!req)
		return mgr_fail(m, -ENOMEM, "out of memory");
	ret = mgr_request(m, req, m->cfg.request_timeout_ms, &resp);
	cJSON_Delete(req);
	if (ret)
		return ret;
	ret = mgr_profiles_from_json(resp, names, count, err, sizeof(err));
	if (ret == -EPROTO)
		ret = mgr_fail(m, ret, "agent: %s", err);
	else if (ret)
		ret = mgr_fail(m, ret, "out of memory");
	else
		mgr_succeeded(m);
	cJSON_Delete(resp);
	return ret;
}

void mvm_manager_socks_credentials(mvm_manager *m, char *user, char *pass)
{
	mgr_copy(user, 256, m->socks_user);
	mgr_copy(pass, 256, m->socks_pass);
}

/* ---- console ---------------------------------------------------------------------------- */

/**
 * mgr_no_console() - the error for console calls when no VM runs here
 * @m:		manager
 *
 * Return: -ENOTSUP when attached to an agent (no VM, no console), else -ENOTCONN.
 */
static int mgr_no_console(mvm_manager *m)
{
	return mvm_set_error(m->attached ? -ENOTSUP : -ENOTCONN, "%s",
			     m->attached ? "no console: attached to an agent without a VM"
					 : "no VM running");
}

int mvm_manager_console_subscribe(mvm_manager *m, mvm_console_cb cb, void *opaque)
{
	int ret;

	pthread_rwlock_rdlock(&m->life);
	if (m->vm)
		ret = mvm_console_subscribe(m->vm, cb, opaque);
	else
		ret = mgr_no_console(m);
	pthread_rwlock_unlock(&m->life);
	return ret;
}

long mvm_manager_console_write(mvm_manager *m, const void *data, size_t len)
{
	long ret;

	pthread_rwlock_rdlock(&m->life);
	if (m->vm)
		ret = mvm_console_write(m->vm, data, len);
	else
		ret = mgr_no_console(m);
	pthread_rwlock_unlock(&m->life);
	return ret;
}

long mvm_manager_console_read(mvm_manager *m, void *buf, size_t size, uint64_t *total)
{
	long ret;

	pthread_rwlock_rdlock(&m->life);
	if (m->vm)
		ret = mvm_console_read(m->vm, buf, size, total);
	else
		ret = mgr_no_console(m);
	pthread_rwlock_unlock(&m->life);
	return ret;
}

void mvm_manager_console_unsubscribe(mvm_manager *m, int id)
{
	pthread_rwlock_rdlock(&m->life);
	if (m->vm)
		mvm_console_unsubscribe(m->vm, id);
	pthread_rwlock_unlock(&m->life);
}

void mvm_manager_free(mvm_manager *m)
{
	size_t i;

	if (!m)
		return;
	mvm_manager_stop_vm(m, 5000);
	for (i = 0; i < sizeof(m->strs) / sizeof(m->strs[0]); i++)
		free(m->strs[i]);
	explicit_bzero(m->socks_pass, sizeof(m->socks_pass));
	pthread_rwlock_destroy(&m->life);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->watch_cond);
	free(m);
}
