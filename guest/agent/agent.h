/* SPDX-License-Identifier: MIT */
/*
 * agent.h - microvm-agent: the VPN daemon (control port 1025) and inbound proxy (port 7602)
 *
 * Modules (one prefix each):
 *   main.c       options, setup, run, shutdown                         main()
 *   loop.c       the epoll loop, deferred frees, tick, signals, clock, log agent_*
 *   transport.c  listening sockets: vsock (any CID) or TCP            agent_listen()
 *   auth.c       TCP: the authentication handshake before either port  auth_*
 *   request.c    control request parser (pure, fuzzed)                 agent_req_*
 *   control.c    control connections: framing, dispatch, answers       ctl_*
 *   profiles.c   profile names and the on-disk profile store           profile_*
 *   mgmt.c       OpenVPN management line parser (pure, fuzzed)         mgmt_*
 *   vpn.c        OpenVPN supervisor and management client              vpn_*
 *   handshake.c  inbound proxy handshake parser (pure, fuzzed)         hs_*
 *   policy.c     inbound proxy destination policy (pure, fuzzed)       policy_*
 *   localaddr.c  the guest's own addresses, listed again on a change    localaddr_*
 *   ovpn_check.c imported OpenVPN profile allow-list (pure, fuzzed)    ovpn_check_*
 *   proxy.c      inbound proxy: connect and relay                      proxy_*
 *   resolve.c    name resolution off the event loop                    resolve_*
 *   hosts.c      /etc/hosts lookup (pure)                               hosts_*
 *   sandbox.c    capabilities, no_new_privs, seccomp for agent+OpenVPN agent_sandbox()
 *
 * Dependencies go one way: main.c -> control.c, proxy.c -> vpn.c -> loop.c (and the pure
 * parsers). vpn.c reports state changes through the listeners registered with
 * vpn_on_change() (control.c: parked requests; proxy.c: relays through the tunnel);
 * modules add their periodic work with agent_on_tick(). So vpn.c, control.c and proxy.c
 * each run alone in a unit test (tests/unit/agent/test_agent_{vpn,control,proxy}.c).
 *
 * docs/protocol.md is the wire contract of both ports.
 */
#ifndef AGENT_H
#define AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "microvm/contract.h"
#include "mvm_auth.h"

/*
 * The host/guest contract (ports, exit statuses, limits, status bytes, the TCP
 * authentication handshake) is include/microvm/contract.h; the names below are the agent's
 * short spellings of those values, not copies.
 */
#define AGENT_LINE_MAX		MVM_LINE_MAX
#define AGENT_LINE_MAX_TEXT	MVM_LINE_MAX_TEXT
#define AGENT_PROFILE_MAX	MVM_PROFILE_MAX
#define AGENT_PROFILE_NAME_MAX	MVM_PROFILE_NAME_MAX
#define AGENT_CRED_MAX		MVM_CRED_MAX
#define AGENT_EXIT_POWEROFF	MVM_STATUS_POWEROFF
/* At most this many DNS servers pushed by the VPN are used. */
#define AGENT_DNS_MAX		3
/* Addresses tried per proxy connection. */
#define AGENT_ADDR_MAX		8

/*
 * Resource limits (docs/security.md, "Resource limits"). The guest has 256 MiB; nothing a
 * client sends may make the agent hold more than a few tens of MiB or spin.
 */
#define AGENT_STR_(x)		#x
#define AGENT_STR(x)		AGENT_STR_(x)

/* Concurrent control connections; more are answered with an error line and closed. */
#define AGENT_CTL_CONN_MAX	64
/* A control connection with nothing to do for this long is closed (--control-idle-timeout). */
#define AGENT_CTL_IDLE_S	60
/*
 * Request bytes buffered across all control connections beyond each one's first read
 * buffer (2 x 64 KiB): room for two requests of the maximum line length at once. A
 * connection whose buffer would grow past it gets an error line and is closed.
 */
#define AGENT_CTL_BUDGET	(16 * 1024 * 1024)
#define AGENT_CTL_BUDGET_TEXT	"16 MiB"
/* Connections accepted per listener wake-up (the rest wait for the next round). */
#define AGENT_ACCEPT_BATCH	64
/* Stored profiles: at most this many, and this many bytes together. */
#define AGENT_PROFILES_MAX	60
#define AGENT_PROFILES_TOTAL_MAX (16 * 1024 * 1024)
/* Name lookups running at once (one thread each) and waiting for a thread. */
#define AGENT_RESOLVE_THREADS	32
#define AGENT_RESOLVE_QUEUE	64

/* ---------------------------------------------------------------- request.c */

/**
 * enum agent_cmd - control commands (docs/protocol.md)
 */
enum agent_cmd {
	AGENT_CMD_PING,
	AGENT_CMD_GET_AUTH_SECRET,
	AGENT_CMD_VPN_SET_PROFILE,
	AGENT_CMD_LIST_PROFILES,
	AGENT_CMD_VPN_START,
	AGENT_CMD_VPN_STOP,
	AGENT_CMD_VPN_STATUS,
	AGENT_CMD_VPN_CHECK_WEBAUTH,
	AGENT_CMD_SHUTDOWN,
};

struct cJSON;

/**
 * struct agent_req - one parsed control request; strings point into @root
 * @cmd:		the command
 * @root:		parsed JSON document (owned; agent_req_free() releases it)
 * @name:		vpn_set_profile: profile name (validated)
 * @content:		vpn_set_profile: profile text
 * @content_len:	its length
 * @profile:		vpn_start: profile name (validated)
 * @username:		vpn_start: username or NULL
 * @password:		vpn_start: password or NULL
 * @timeout_s:		vpn_start: outcome timeout in seconds, 0 for the default
 */
struct agent_req {
	enum agent_cmd cmd;
	struct cJSON *root;
	const char *name;
	const char *content;
	size_t content_len;
	const char *profile;
	const char *username;
	const char *password;
	int timeout_s;
};

int agent_req_parse(struct agent_req *r, const char *line, size_t len, char *err, size_t errlen);
void agent_req_free(struct agent_req *r);

/* ---------------------------------------------------------------- profiles.c */

int profile_name_valid(const char *name);
int profile_store(const char *dir, const char *name, const char *content, size_t len);
int profile_list(const char *dir, char ***names, size_t *n);
void profile_list_free(char **names, size_t n);
int profile_exists(const char *dir, const char *name);
int profile_read(const char *dir, const char *name, char **content, size_t *len);
int profile_check_room(const char *dir, const char *name, size_t len, size_t max_count,
		       size_t max_total, char *err, size_t errlen);
int profile_resolve(const char *dir, const char *name, char *out, size_t cap);
void profile_describe_missing(const char *dir, const char *name, char *err, size_t cap);

/* ---------------------------------------------------------------- mgmt.c */

#define MGMT_FIELD_MAX 512

/**
 * enum mgmt_type - kinds of lines from the OpenVPN management interface
 */
enum mgmt_type {
	MGMT_OTHER,		/* anything we do not act on */
	MGMT_HOLD,		/* >HOLD:Waiting for hold release */
	MGMT_STATE,		/* >STATE:ts,NAME,desc,tun_ip,...: a=NAME b=desc c=tun_ip */
	MGMT_PASSWORD_NEED,	/* >PASSWORD:Need 'TYPE' ...: a=TYPE, n1=1 if username too */
	MGMT_PASSWORD_FAILED,	/* >PASSWORD:Verification Failed: 'TYPE' ['reason']: a, b */
	MGMT_WEBAUTH_URL,	/* >INFOMSG:WEB_AUTH:flags:URL or OPEN_URL:URL: a=URL */
	MGMT_FATAL,		/* >FATAL:text: a=text (truncated) */
	MGMT_UPDOWN,		/* >UPDOWN:UP|DOWN: a */
	MGMT_UPDOWN_ENV,	/* >UPDOWN:ENV,name=value: a=name b=value */
	MGMT_UPDOWN_END,	/* >UPDOWN:ENV,END */
	MGMT_BYTECOUNT,		/* >BYTECOUNT:in,out: n1, n2 */
	MGMT_SUCCESS,		/* SUCCESS: ... */
	MGMT_ERROR,		/* ERROR: ... a=text */
};

/**
 * struct mgmt_msg - one parsed management line
 * @type:	what it is
 * @a:		first text field (see enum mgmt_type)
 * @b:		second text field
 * @c:		third text field
 * @n1:		first number
 * @n2:		second number
 */
struct mgmt_msg {
	enum mgmt_type type;
	char a[MGMT_FIELD_MAX];
	char b[MGMT_FIELD_MAX];
	char c[64];
	uint64_t n1, n2;
};

void mgmt_parse(const char *line, size_t len, struct mgmt_msg *m);
int mgmt_quote(char *dst, size_t size, const char *s);

/* ---------------------------------------------------------------- handshake.c */

#define HS_HOST_MAX		MVM_PROXY_HOST_MAX
#define HS_MAX			MVM_PROXY_HANDSHAKE_MAX

/* Status bytes sent after the handshake (contract.h). */
#define HS_OK			MVM_PROXY_OK
#define HS_ERR_GENERAL		MVM_PROXY_ERR_GENERAL
#define HS_ERR_NOT_ALLOWED	MVM_PROXY_ERR_NOT_ALLOWED	/* the destination policy (policy.c) */
#define HS_ERR_NETUNREACH	MVM_PROXY_ERR_NETUNREACH
#define HS_ERR_HOSTUNREACH	MVM_PROXY_ERR_HOSTUNREACH
#define HS_ERR_REFUSED		MVM_PROXY_ERR_REFUSED
#define HS_ERR_TIMEOUT		MVM_PROXY_ERR_TIMEOUT

int hs_parse(const uint8_t *buf, size_t len, char *host, uint16_t *port);
uint8_t hs_status_from_errno(int err);

/* ---------------------------------------------------------------- policy.c */

/* Exact addresses a policy can hold: interface addresses, gateways, name servers. */
#define POLICY_ADDR_MAX 64

/**
 * enum policy_reason - policy_check()'s verdict
 */
enum policy_reason {
	POLICY_ALLOW,		/* may be connected to */
	POLICY_LOOPBACK,	/* 127.0.0.0/8, ::1 */
	POLICY_UNSPECIFIED,	/* 0.0.0.0/8, ::, or not an IP address */
	POLICY_LINK_LOCAL,	/* 169.254.0.0/16, fe80::/10 */
	POLICY_MULTICAST,	/* 224.0.0.0/3 (multicast, reserved, broadcast), ff00::/8 */
	POLICY_LOCAL,		/* an address of the guest's own interfaces */
	POLICY_GATEWAY,		/* the guest network's gateway or name server */
};

/**
 * struct policy_addr - one refused address
 * @family:	AF_INET or AF_INET6
 * @why:	POLICY_LOCAL or POLICY_GATEWAY
 * @a:		the address, network byte order (4 or 16 bytes used)
 */
struct policy_addr {
	int family;
	enum policy_reason why;
	uint8_t a[16];
};

/**
 * struct policy - exact addresses refused besides the fixed ranges
 * @addrs:	the addresses
 * @n:		how many
 */
struct policy {
	struct policy_addr addrs[POLICY_ADDR_MAX];
	size_t n;
};

void policy_init(struct policy *pol);
int policy_add(struct policy *pol, const struct sockaddr *sa, enum policy_reason why);
int policy_addr_parse(const char *text, struct sockaddr_storage *ss);
int policy_add_text(struct policy *pol, const char *text, enum policy_reason why);
int policy_parse_resolv(struct policy *pol, const char *text, size_t len);
int policy_parse_routes(struct policy *pol, const char *text, size_t len);
enum policy_reason policy_check(const struct policy *pol, const struct sockaddr *sa);
const char *policy_reason_text(enum policy_reason r);

/* ---------------------------------------------------------------- localaddr.c */

/**
 * struct localaddr - the destination policy with the guest's own addresses, kept until they
 * may have changed
 * @pol:	the base policy plus the interface addresses, when @valid
 * @valid:	@pol is current (as of the last drain of @notify_fd)
 * @notify_fd:	rtnetlink socket subscribed to address changes, -1: none (list every time)
 * @list:	adds the interface addresses to a policy (the proxy: localaddr_list_ifaddrs())
 * @opaque:	for @list
 * @listings:	how many times @list ran successfully (tests, debug log)
 */
struct localaddr {
	struct policy pol;
	bool valid;
	int notify_fd;
	int (*list)(struct policy *pol, void *opaque);
	void *opaque;
	unsigned long listings;
};

int localaddr_open_netlink(void);
int localaddr_list_ifaddrs(struct policy *pol, void *opaque);
void localaddr_init(struct localaddr *la, int notify_fd,
		    int (*list)(struct policy *pol, void *opaque), void *opaque);
void localaddr_close(struct localaddr *la);
void localaddr_invalidate(struct localaddr *la);
const struct policy *localaddr_policy(struct localaddr *la, const struct policy *base, int *err);

/* ---------------------------------------------------------------- ovpn_check.c */

int ovpn_check_profile(const char *text, size_t len, char *err, size_t errlen);
bool ovpn_check_known(const char *name);

/* ---------------------------------------------------------------- hosts.c */

size_t hosts_lookup(const char *text, size_t len, const char *name, uint16_t port,
		    struct sockaddr_storage *out, size_t max);

/* ---------------------------------------------------------------- loop.c */

/* Tick functions (agent_on_tick()) and VPN state listeners (vpn_on_change()) at most. */
#define AGENT_TICK_MAX		8
#define AGENT_VPN_LISTENERS_MAX	4

struct agent;

/**
 * struct agent_ev - an epoll registration: a file descriptor and its handler
 * @fd:		the descriptor, -1 once closed
 * @mask:	events currently registered (0: not in the epoll set)
 * @cb:		called with the returned events
 */
struct agent_ev {
	int fd;
	uint32_t mask;
	void (*cb)(struct agent *a, struct agent_ev *ev, uint32_t events);
};

/**
 * struct agent_opts - command-line options (see usage() in main.c)
 */
struct agent_opts {
	bool vsock;
	char listen[64];
	unsigned int control_port;
	unsigned int proxy_port;
	char state_dir[256];
	char run_dir[256];
	char openvpn[256];
	char tun_dev[16];
	const char *auth_secret_file;
	int auth_secret_fd;
	unsigned int connect_timeout_s;
	unsigned int vpn_timeout_s;
	unsigned int ctl_idle_s;
	bool poweroff_on_shutdown;
	bool verbose;
};

struct vpn;
struct auth_conn;
struct ctl_conn;
struct proxy_conn;
struct resolver;

/**
 * struct agent - the daemon
 * @opts:		options
 * @epfd:		the epoll instance
 * @profile_dir:	state_dir/profiles
 * @auth_secret:	64 hex characters
 * @auth_key:		the key they encode, set up once for the TCP handshake's HMAC (none
 *			when the secret is the agent's own: vsock only, no handshake)
 * @auth:		connections still in the authentication handshake (TCP)
 * @nauth:		how many
 * @vpn:		the OpenVPN supervisor
 * @ctl:		open control connections
 * @nctl:		how many
 * @ctl_budget:		input buffer bytes held beyond the first chunk, all connections
 * @proxies:		open proxy connections
 * @nproxies:		how many
 * @resolver:		name resolution thread pool
 * @net_policy:		gateways and name servers of the guest network (proxy_init())
 * @local:		@net_policy plus the guest's own addresses, as of their last change
 * @graveyard:		objects freed after the current batch of events
 * @ngrave:		entries used
 * @cgrave:		capacity
 * @sig_ev:		the signalfd (loop.c)
 * @tick_ev:		the 250 ms timerfd (loop.c)
 * @ticks:		functions run on every tick, in order (agent_on_tick())
 * @nticks:		how many
 * @on_child:		called on SIGCHLD (agent_on_child()), NULL: nobody
 * @quit:		exit status requested (-1: keep running)
 */
struct agent {
	struct agent_opts opts;
	int epfd;
	char profile_dir[300];
	char auth_secret[65];
	struct mvm_auth_key auth_key;
	struct auth_conn *auth;
	size_t nauth;
	struct vpn *vpn;
	struct ctl_conn *ctl;
	size_t nctl;
	size_t ctl_budget;
	struct proxy_conn *proxies;
	size_t nproxies;
	struct resolver *resolver;
	struct policy net_policy;
	struct localaddr local;
	void **graveyard;
	size_t ngrave, cgrave;
	struct agent_ev sig_ev, tick_ev;
	void (*ticks[AGENT_TICK_MAX])(struct agent *a);
	size_t nticks;
	void (*on_child)(struct agent *a);
	int quit;
};

void agent_log(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void agent_debug(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int agent_ev_set(struct agent *a, struct agent_ev *ev, uint32_t mask);
void agent_ev_close(struct agent *a, struct agent_ev *ev);
void agent_defer_free(struct agent *a, void *p);
uint64_t agent_now_ms(void);
void agent_clock_skip(uint64_t ms);
int agent_on_tick(struct agent *a, void (*fn)(struct agent *a));
void agent_on_child(struct agent *a, void (*fn)(struct agent *a));
void agent_tick(struct agent *a);
int agent_loop_init(struct agent *a);
int agent_loop_once(struct agent *a, int timeout_ms);
void agent_loop_run(struct agent *a);
void agent_loop_fini(struct agent *a);

/* ---------------------------------------------------------------- sandbox.c */

int agent_sandbox(struct agent *a);

/* ---------------------------------------------------------------- transport.c */

/**
 * struct agent_listener - a listening socket served by the shared accept loop
 * @ev:			registration (first member: the loop hands us &ev)
 * @name:		"control" or "proxy", for log lines
 * @on_fd:		takes each accepted socket
 * @paused:		out of descriptors: out of the epoll set until the next tick
 * @pause_logged:	the current pause episode was logged
 */
struct agent_listener {
	struct agent_ev ev;
	const char *name;
	void (*on_fd)(struct agent *a, int fd);
	bool paused, pause_logged;
};

int agent_listen(const struct agent_opts *o, unsigned int port);
int agent_listener_init(struct agent *a, struct agent_listener *l, int fd, const char *name,
			void (*on_fd)(struct agent *a, int fd));
void agent_listener_tick(struct agent *a, struct agent_listener *l);

/* ---------------------------------------------------------------- auth.c */

int auth_init(struct agent *a);
void auth_begin(struct agent *a, int fd, unsigned int port, void (*adopt)(struct agent *a, int fd));
void auth_fini(struct agent *a);

/* ---------------------------------------------------------------- control.c */

int ctl_init(struct agent *a, int lfd);
void ctl_adopt(struct agent *a, int fd);
void ctl_flush_all(struct agent *a, int timeout_ms);
void ctl_fini(struct agent *a);

/* ---------------------------------------------------------------- vpn.c */

/**
 * enum vpn_view - what a control client sees of the VPN
 */
enum vpn_view {
	VPN_VIEW_IDLE,		/* no OpenVPN, nothing failed since the last start */
	VPN_VIEW_PENDING,	/* OpenVPN starting or connecting, no outcome yet */
	VPN_VIEW_WEBAUTH,	/* waiting for the user to finish web authentication */
	VPN_VIEW_CONNECTED,	/* tunnel up */
	VPN_VIEW_FAILED,	/* the last attempt failed (reason known); maybe still exiting */
};

int vpn_init(struct agent *a);
int vpn_on_change(struct agent *a, void (*fn)(struct agent *a));
int vpn_start(struct agent *a, const char *profile, const char *user, const char *pass,
	      int timeout_s, char *err, size_t errlen);
void vpn_stop(struct agent *a);
bool vpn_running(const struct agent *a);
bool vpn_stopping(const struct agent *a);
enum vpn_view vpn_view(const struct agent *a);
const char *vpn_tun_ip(const struct agent *a);
const char *vpn_auth_url(const struct agent *a);
const char *vpn_reason(const struct agent *a);
const char *vpn_profile(const struct agent *a);
const char *vpn_state_name(const struct agent *a);
const char *vpn_dev(const struct agent *a);
size_t vpn_dns(const struct agent *a, struct sockaddr_storage *out, size_t max);
void vpn_shutdown(struct agent *a);
void vpn_fini(struct agent *a);

/* ---------------------------------------------------------------- proxy.c / resolve.c */

int proxy_init(struct agent *a, int lfd);
void proxy_adopt(struct agent *a, int fd);
void proxy_fini(struct agent *a);

/**
 * struct resolve_job - one name to resolve in a worker thread
 * @host:	the name
 * @port:	port for the results
 * @dns:	DNS servers pushed by the VPN (tried first)
 * @ndns:	how many
 * @addrs:	results
 * @naddrs:	how many
 * @status:	HS_OK or the status byte for the failure
 * @owner:	the proxy connection waiting, NULL when it went away (main thread only)
 * @deadline:	monotonic ms after which the answer is of no use (not resolved then)
 * @queued:	waiting in the queue (under the resolver's lock)
 * @next:	queue link
 */
struct resolve_job {
	char host[HS_HOST_MAX + 1];
	uint16_t port;
	struct sockaddr_storage dns[AGENT_DNS_MAX];
	size_t ndns;
	struct sockaddr_storage addrs[AGENT_ADDR_MAX];
	size_t naddrs;
	uint8_t status;
	struct proxy_conn *owner;
	uint64_t deadline;
	bool queued;
	struct resolve_job *next;
};

int resolve_init(struct agent *a, void (*done)(struct agent *a, struct resolve_job *j));
int resolve_submit(struct agent *a, struct resolve_job *j);
void resolve_cancel(struct agent *a, struct resolve_job *j);
bool resolve_local(struct resolve_job *j);
void resolve_fini(struct agent *a);
void resolve_run(struct resolve_job *j);

#endif /* AGENT_H */
