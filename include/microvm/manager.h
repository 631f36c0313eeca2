/* SPDX-License-Identifier: MIT */
/**
 * DOC: VPN appliance manager
 *
 * What an application (or `microvm up`) uses to run the isolated VPN: start the VM, wait for
 * its agent, drive OpenVPN inside it through the agent's JSON protocol on port 1025, and serve
 * the SOCKS5 proxy that routes connections through the guest.  The manager never branches on
 * the backend: it only uses the runtime API and the VM's vsock client - or, in attach mode, a
 * vsock client given to it for an agent that already runs (TCP, or TCP inside a network
 * namespace), with no VM at all.
 *
 * All functions are thread-safe; calls that talk to the agent block for at most their
 * timeout.  Passwords passed in are sent to the agent and never logged or kept.
 */
#ifndef MICROVM_MANAGER_H
#define MICROVM_MANAGER_H

#include "microvm/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "microvm/contract.h"
#include "microvm/error.h"
#include "microvm/runtime.h"
#include "microvm/socks.h"
#include "microvm/vsock.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mvm_manager mvm_manager;

enum mvm_vpn_state {
	MVM_VPN_UNKNOWN = 0,	/* agent not asked yet, or not reachable */
	MVM_VPN_DISCONNECTED,
	MVM_VPN_CONNECTING,
	MVM_VPN_WEBAUTH,	/* waiting for the user to finish web authentication */
	MVM_VPN_CONNECTED,
	MVM_VPN_ERROR,
};

/**
 * struct mvm_manager_config - how to run the appliance
 * @size:	sizeof this struct as the caller's headers define it; set by
 *		mvm_manager_config_init(), never by hand (docs/library.md, "ABI rules")
 * @vm:		VM configuration for start_vm (backend, kernel, initrd, rootfs, memory...),
 *		filled by mvm_config_init() first, or NULL for its defaults; copied by
 *		mvm_manager_new() (strings too; @vm->box_argv must outlive the manager).  The
 *		manager always turns @vm->net on: the appliance reaches its VPN server through it
 * @socks:	SOCKS server configuration (address, port, credentials, timeouts), filled by
 *		mvm_socks_config_init() first, or NULL for its defaults; copied
 * @socks_generate_secret: require auth with user "microvm" and a 64-hex-character password
 *		(see mvm_manager_socks_credentials()) unless @socks has a username: the agent's
 *		auth secret (get_auth_secret) when it gives one, else a random one made here
 * @no_socks:	do not run the SOCKS server
 * @boot_timeout_ms: how long start_vm/attach wait for the agent's "pong" (60 s)
 * @request_timeout_ms: timeout of ordinary agent requests (10 s)
 * @connect_timeout_ms: timeout of vpn_start (90 s)
 * @log:	one line per notable event, or NULL (never sees passwords); called on the
 *		thread of the manager call that caused the event, on the manager's watchdog
 *		thread (faults), and on the SOCKS server's threads: it must be thread-safe
 * @log_opaque:	passed to @log
 */
struct mvm_manager_config {
	size_t size;
	const struct mvm_config *vm;
	const struct mvm_socks_config *socks;
	bool socks_generate_secret;
	bool no_socks;
	int boot_timeout_ms;
	int request_timeout_ms;
	int connect_timeout_ms;
	void (*log)(void *opaque, const char *line);
	void *log_opaque;
};

/**
 * struct mvm_vpn_info - the VPN as the agent reports it
 * @state:	state
 * @tun_ip:	address of the tunnel interface when connected
 * @auth_url:	URL to open in a browser when @state is MVM_VPN_WEBAUTH
 * @profile:	active profile name, if the agent says
 * @error:	agent's error text when @state is MVM_VPN_ERROR (or a request failed)
 */
struct mvm_vpn_info {
	enum mvm_vpn_state state;
	char tun_ip[64];
	char auth_url[1024];
	char profile[256];
	char error[512];
};

/**
 * struct mvm_manager_status - everything get_status reports
 * @vm_running:	a VM runs (or, attached, the agent is there)
 * @attached:	attach mode (no VM managed here)
 * @hypervisor:	"KVM", "nsbox", "WSL2", "HVF", or "attached" in attach mode; "" when stopped
 * @agent_reachable: the agent answered a ping just now
 * @vpn:	VPN state
 * @socks_running: the SOCKS server listens
 * @socks_addr/@socks_port: where
 * @socks_auth:	SOCKS requires a username/password
 * @last_error:	last failure the manager saw ("" if none)
 * @fault:	why the guest side is not working right now, one line ("" when it is): the
 *		guest stopped (with the exit reason and the backend's detail: the box's PID 1
 *		exit status or signal, a VMM error), the agent does not answer, or the VPN
 *		went down on its own (the agent's reason: OpenVPN's exit, its FATAL line...)
 */
struct mvm_manager_status {
	bool vm_running;
	bool attached;
	char hypervisor[32];
	bool agent_reachable;
	struct mvm_vpn_info vpn;
	bool socks_running;
	char socks_addr[64];
	uint16_t socks_port;
	bool socks_auth;
	char last_error[512];
	char fault[512];
};

/**
 * mvm_manager_format_fault() - the @fault line of a status from what was observed
 * @buf:		receives the line ("" when nothing is wrong)
 * @len:		size of @buf
 * @guest_stopped:	the managed VM or box has stopped although nobody asked
 * @reason:		its exit reason (when @guest_stopped)
 * @detail:		the backend's one line about it, or ""
 * @agent_reachable:	the agent answered a ping
 * @vpn:		the VPN as the agent reported it (when reachable)
 */
MVM_API void mvm_manager_format_fault(char *buf, size_t len, bool guest_stopped,
				      enum mvm_exit_reason reason, const char *detail,
				      bool agent_reachable, const struct mvm_vpn_info *vpn);

/**
 * mvm_manager_config_init_sized() - defaults (no @vm, no @socks: auto backend, SOCKS on
 * 127.0.0.1:1080, no auth; timeouts as documented)
 * @cfg:	the config to fill
 * @size:	sizeof(*@cfg) in the caller's build; recorded in @cfg->size
 *
 * Call it through mvm_manager_config_init(); see mvm_config_init_sized().
 */
MVM_API void mvm_manager_config_init_sized(struct mvm_manager_config *cfg, size_t size);

/** mvm_manager_config_init() - fill @cfg (a struct mvm_manager_config *) with the defaults first. */
#define mvm_manager_config_init(cfg) mvm_manager_config_init_sized((cfg), sizeof(*(cfg)))

/**
 * mvm_manager_new() - a manager (nothing runs yet)
 * @cfg:	configuration from mvm_manager_config_init(); it, @cfg->vm, @cfg->socks and
 *		their strings are copied
 * Return: the manager or NULL with mvm_last_error() set.
 */
MVM_API mvm_manager *mvm_manager_new(const struct mvm_manager_config *cfg);

/**
 * mvm_manager_start_vm() - create and start the VM, wait for the agent, start SOCKS
 * Return: 0 or -errno (mvm_last_error() and the status' last_error say why).
 */
MVM_API int mvm_manager_start_vm(mvm_manager *m);

/**
 * mvm_manager_attach() - use an agent that already runs, reached through @vs; start SOCKS
 * @m:		manager without a VM
 * @vs:		vsock client (owned by the manager from now on, even on failure)
 * Return: 0 or -errno.
 */
MVM_API int mvm_manager_attach(mvm_manager *m, mvm_vsock *vs);

/**
 * mvm_manager_stop_vm() - stop SOCKS, ask the agent to shut down, stop the VM
 * @timeout_ms:	how long the guest gets before it is killed
 *
 * In attach mode only SOCKS stops and the manager lets go of the agent (which keeps running).
 * Return: 0 or -errno.
 */
MVM_API int mvm_manager_stop_vm(mvm_manager *m, int timeout_ms);

/** mvm_manager_get_status() - ping the agent, ask the VPN state, fill @st. */
MVM_API void mvm_manager_get_status(mvm_manager *m, struct mvm_manager_status *st);

/**
 * mvm_manager_upload_profile() - store an OpenVPN profile in the guest
 * @name:	file name ("corp.ovpn"); plain name, no '/'
 * @content:	the profile text
 * Return: 0 or -errno.
 */
MVM_API int mvm_manager_upload_profile(mvm_manager *m, const char *name, const char *content);

/**
 * mvm_manager_vpn_connect() - (upload and) start a profile
 * @name:	profile name
 * @content:	profile text to upload first, or NULL to use one uploaded before
 * @username/@password:	credentials, or NULL
 * @info:	the result: connected (with tun IP), web auth required (with URL) or error
 * Return: 0 when the agent answered (whatever the state), -errno when it could not be asked.
 */
MVM_API int mvm_manager_vpn_connect(mvm_manager *m, const char *name, const char *content,
				    const char *username, const char *password,
				    struct mvm_vpn_info *info);

/** mvm_manager_vpn_disconnect() - stop OpenVPN. Return: 0 or -errno. */
MVM_API int mvm_manager_vpn_disconnect(mvm_manager *m);

/** mvm_manager_vpn_status() - ask the agent. Return: 0 or -errno. */
MVM_API int mvm_manager_vpn_status(mvm_manager *m, struct mvm_vpn_info *info);

/** mvm_manager_check_webauth() - has the web authentication completed? Return: 0 or -errno. */
MVM_API int mvm_manager_check_webauth(mvm_manager *m, struct mvm_vpn_info *info);

/**
 * mvm_manager_list_profiles() - profile names stored in the guest
 * @names:	malloc'd array of malloc'd strings (free with mvm_manager_free_list())
 * @count:	entries
 * Return: 0 or -errno.
 */
MVM_API int mvm_manager_list_profiles(mvm_manager *m, char ***names, size_t *count);

/** mvm_manager_free_list() - free what mvm_manager_list_profiles() returned. */
MVM_API void mvm_manager_free_list(char **names, size_t count);

/**
 * mvm_manager_socks_credentials() - the SOCKS username and password in force
 * @user/@pass:	buffers of at least 256 bytes; set to "" without auth
 */
MVM_API void mvm_manager_socks_credentials(mvm_manager *m, char *user, char *pass);

/**
 * mvm_manager_console_subscribe() - receive the guest console (see mvm_console_subscribe())
 * Return: subscription id or -errno (-ENOTSUP in attach mode: no console there).
 */
MVM_API int mvm_manager_console_subscribe(mvm_manager *m, mvm_console_cb cb, void *opaque);

/**
 * mvm_manager_console_write() - type into the guest's console
 * Return: bytes accepted, or -errno (-ENOTSUP in attach mode, -ENOTCONN without a VM).
 */
MVM_API long mvm_manager_console_write(mvm_manager *m, const void *data, size_t len);

/**
 * mvm_manager_console_read() - copy out what the guest console holds now (see
 * mvm_console_read())
 * Return: bytes copied, or -errno (-ENOTSUP in attach mode: no console there).
 */
MVM_API long mvm_manager_console_read(mvm_manager *m, void *buf, size_t size, uint64_t *total);

/** mvm_manager_console_unsubscribe() - stop a subscription. */
MVM_API void mvm_manager_console_unsubscribe(mvm_manager *m, int id);

/** mvm_manager_free() - stop everything and free. */
MVM_API void mvm_manager_free(mvm_manager *m);

/** mvm_vpn_state_name() - "unknown", "disconnected", "connecting", "webauth_required",
 * "connected", "error". */
MVM_API const char *mvm_vpn_state_name(enum mvm_vpn_state state);

#ifdef __cplusplus
}
#endif
#endif
