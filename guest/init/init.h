/* SPDX-License-Identifier: MIT */
/*
 * init.h - internal interfaces of microvm-init, the guest's PID 1.
 *
 * The pure parts (command-line options, supervisor back-off, exit-status policy) live in
 * cmdline.c and supervise.c and are unit tested (tests/unit/guest/); main.c and net.c do
 * the system calls.
 */
#ifndef MICROVM_GUEST_INIT_H
#define MICROVM_GUEST_INIT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "microvm/contract.h"

/* Path of the supervised agent inside the guest root. */
#define INIT_AGENT_PATH "/usr/bin/microvm-agent"
/*
 * The agent's auth secret for microvm.agent=tcp (64 hex characters, mode 0600), put into the
 * guest's root by the host, e.g. as an extra initramfs: over TCP the agent accepts only
 * connections that prove it (docs/protocol.md) and does not start without it.
 */
#define INIT_AGENT_SECRET "/etc/microvm/agent-secret"

/*
 * Exit statuses by which the agent asks init to end the machine (documented in
 * docs/guest.md; values from the host/guest contract). Any other exit, or death by a
 * signal, restarts the agent after a back-off.
 */
#define INIT_EXIT_POWEROFF MVM_STATUS_POWEROFF
#define INIT_EXIT_REBOOT MVM_STATUS_REBOOT

/*
 * Set in a restarted agent's environment: how the previous run ended (init_describe_end()).
 * The agent reports it as the reason its VPN is down (docs/guest.md).
 */
#define INIT_AGENT_PREVIOUS_ENV "MICROVM_AGENT_PREVIOUS"

/* Longest option value kept (kernel command line tokens are short). */
#define INIT_VALUE_MAX 64

/**
 * enum init_transport - how the agent talks to the host (microvm.agent=)
 * @INIT_AGENT_VSOCK:	virtio-vsock (the VM backends on a KVM host); the default
 * @INIT_AGENT_TCP:	TCP over the virtual NIC (QEMU user networking, WSL2, nsbox)
 * @INIT_AGENT_NONE:	do not start an agent (boot smoke tests)
 */
enum init_transport {
	INIT_AGENT_VSOCK,
	INIT_AGENT_TCP,
	INIT_AGENT_NONE,
};

/**
 * struct init_opts - everything microvm-init takes from the kernel command line
 * @agent:		transport given to the agent (microvm.agent=vsock|tcp|none)
 * @listen:		--listen argument for the agent (microvm.listen=); empty: the agent's
 *			default, except that a TCP agent on a configured NIC gets the guest's
 *			address (init_opts_finish())
 * @net:		configure the NIC statically (microvm.net=static|none)
 * @ifname:		interface to configure (microvm.ifname=, default eth0)
 * @addr:		IPv4 address of the guest (microvm.ip=A.B.C.D/N, default 10.0.2.15/24)
 * @prefix:		prefix length of @addr
 * @gw:			default gateway (microvm.gw=, default 10.0.2.2)
 * @dns:		name server written to /etc/resolv.conf (microvm.dns=, default 10.0.2.3)
 * @time:		wall clock in seconds since the epoch, set if the guest clock is behind
 *			(microvm.time=, 0: leave the clock alone)
 * @backoff_min_ms:	first restart delay of the agent (microvm.backoff_min_ms=)
 * @backoff_max_ms:	longest restart delay (microvm.backoff_max_ms=)
 * @debug:		verbose logging (microvm.debug=0|1)
 */
struct init_opts {
	enum init_transport agent;
	char listen[INIT_VALUE_MAX];
	bool net;
	char ifname[16];
	struct in_addr addr;
	unsigned int prefix;
	struct in_addr gw;
	struct in_addr dns;
	int64_t time;
	unsigned int backoff_min_ms;
	unsigned int backoff_max_ms;
	bool debug;
};

/* Reports a problem found while parsing (printf-like message, already formatted). */
typedef void (*init_report_fn)(void *ctx, const char *msg);

void init_opts_default(struct init_opts *o);
int init_opt_set(struct init_opts *o, const char *key, const char *val);
int init_cmdline_parse(struct init_opts *o, const char *cmdline, init_report_fn report,
		       void *ctx);
void init_opts_finish(struct init_opts *o);

/**
 * struct init_backoff - restart delay state of a supervised program
 * @min_ms:	delay after the first quick failure
 * @max_ms:	upper bound of the delay
 * @stable_ms:	a run at least this long counts as healthy and resets the delay
 * @cur_ms:	last delay handed out, 0 before the first failure
 */
struct init_backoff {
	unsigned int min_ms;
	unsigned int max_ms;
	unsigned int stable_ms;
	unsigned int cur_ms;
};

/**
 * enum init_action - what init does when the agent ends
 * @INIT_RESTART:	start it again after the back-off delay
 * @INIT_POWEROFF:	power the machine off
 * @INIT_REBOOT:	reboot the machine
 */
enum init_action {
	INIT_RESTART,
	INIT_POWEROFF,
	INIT_REBOOT,
};

void init_backoff_init(struct init_backoff *b, unsigned int min_ms, unsigned int max_ms,
		       unsigned int stable_ms);
unsigned int init_backoff_next(struct init_backoff *b, uint64_t ran_ms);
enum init_action init_exit_action(int wstatus);
const char *init_describe_end(int wstatus, uint64_t ran_ms, char *buf, size_t len);
int init_agent_argv(const struct init_opts *o, const char **argv, size_t n);

/* net.c */
int init_net_up(const char *ifname);
int init_net_configure(const struct init_opts *o);

#endif /* MICROVM_GUEST_INIT_H */
