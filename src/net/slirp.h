/* SPDX-License-Identifier: MIT */
/**
 * DOC: user-mode networking (libslirp)
 *
 * A guest-side Ethernet segment 10.0.2.0/24 served by libslirp: the guest is 10.0.2.15, the
 * gateway 10.0.2.2, DNS 10.0.2.3 (forwarded to the host's resolver), DHCP hands out 10.0.2.15.
 * Connections the guest opens elsewhere become ordinary host sockets: no root, no TAP and no
 * route on the host.  The gateway is not the host's loopback unless @host_loopback asks for
 * it (libslirp's host-loopback mapping, off by default: with it, the guest reaches every
 * service bound to the host's 127.0.0.1, including our own SOCKS server).
 *
 * One thread per instance owns the Slirp object.  Frames from the guest are queued to it with
 * mvm_slirp_send() (any thread); frames for the guest are handed to the rx callback on that
 * thread.  Users: the virtio-net device (src/devices/virtio) and the namespace backend's TAP
 * (src/nsbox).
 */
#ifndef MVM_NET_SLIRP_H
#define MVM_NET_SLIRP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest IP MTU the module accepts (libslirp's own limit). */
#define MVM_SLIRP_MTU_MAX	65520
/* Ethernet header plus one VLAN tag: a frame is at most mtu + this. */
#define MVM_SLIRP_ETH_HLEN	18

struct mvm_slirp;

/**
 * struct mvm_slirp_fwd - one host port forwarded into the guest
 * @udp:	UDP instead of TCP
 * @host_addr:	host address to bind, IPv4 in network byte order (0: 127.0.0.1)
 * @host_port:	host port to listen on
 * @guest_port:	port on the guest (10.0.2.15)
 */
struct mvm_slirp_fwd {
	bool udp;
	uint32_t host_addr;
	uint16_t host_port;
	uint16_t guest_port;
};

/**
 * struct mvm_slirp_cfg - network parameters
 * @mtu:	IP MTU of the guest link (0: 1500)
 * @ipv6:	also serve IPv6 (fec0::/64, host fec0::2, DNS fec0::3)
 * @host_loopback: guest connections to 10.0.2.2 reach the host's 127.0.0.1 (off by default:
 *		every local service of the host would be open to the guest)
 * @fwds:	port forwards set up before the thread starts (may be NULL)
 * @n_fwds:	number of entries in @fwds
 */
struct mvm_slirp_cfg {
	uint32_t mtu;
	bool ipv6;
	bool host_loopback;
	const struct mvm_slirp_fwd *fwds;
	size_t n_fwds;
};

/**
 * typedef mvm_slirp_rx_cb - a frame for the guest
 * @opaque:	as given to mvm_slirp_new()
 * @frame:	Ethernet frame (no FCS); valid only during the call
 * @len:	its length
 *
 * Called on the slirp thread.  Must not block for long and must not call mvm_slirp_free();
 * drop the frame if the guest cannot take it (TCP retransmits).
 */
typedef void (*mvm_slirp_rx_cb)(void *opaque, const uint8_t *frame, size_t len);

/**
 * mvm_slirp_cfg_init() - defaults: MTU 1500, IPv4 only, host loopback not reachable, no
 * forwards
 * @cfg:	config to fill
 */
void mvm_slirp_cfg_init(struct mvm_slirp_cfg *cfg);

/**
 * mvm_slirp_new() - create an instance and start its thread
 * @cfg:	parameters (NULL: defaults); not referenced after the call
 * @rx:		receives frames for the guest
 * @opaque:	passed to @rx
 *
 * Return: the instance, or NULL with mvm_last_error() set.
 */
struct mvm_slirp *mvm_slirp_new(const struct mvm_slirp_cfg *cfg, mvm_slirp_rx_cb rx,
				void *opaque);

/**
 * mvm_slirp_new_fd() - create an instance serving a frame descriptor itself
 * @cfg:	parameters (NULL: defaults); not referenced after the call
 * @fd:		non-blocking descriptor that reads and writes one Ethernet frame per call (a TAP
 *		opened with IFF_TAP | IFF_NO_PI); stays the caller's, to close after
 *		mvm_slirp_free()
 *
 * The slirp thread reads guest frames from @fd and writes frames for the guest to it (a
 * full queue drops them).  mvm_slirp_send() still works too.
 *
 * Return: the instance, or NULL with mvm_last_error() set.
 */
struct mvm_slirp *mvm_slirp_new_fd(const struct mvm_slirp_cfg *cfg, int fd);

/**
 * mvm_slirp_send() - a frame from the guest (any thread; copied, never blocks)
 * @s:		instance
 * @frame:	Ethernet frame
 * @len:	its length
 *
 * Return: 0, -EMSGSIZE for a frame shorter than an Ethernet header or longer than the MTU
 * allows, -ENOBUFS when the queue is full (the frame is dropped and counted).
 */
int mvm_slirp_send(struct mvm_slirp *s, const void *frame, size_t len);

/**
 * mvm_slirp_add_fwd() - forward a host port into the guest while running (any thread)
 * @s:		instance
 * @fwd:	the forward
 *
 * Return: 0, or -errno (-EADDRINUSE when the host port cannot be bound).
 */
int mvm_slirp_add_fwd(struct mvm_slirp *s, const struct mvm_slirp_fwd *fwd);

/**
 * mvm_slirp_dropped() - frames dropped by mvm_slirp_send() because the queue was full
 * @s:		instance
 *
 * Return: the count since creation.
 */
uint64_t mvm_slirp_dropped(struct mvm_slirp *s);

/**
 * mvm_slirp_free() - stop the thread, close every socket slirp holds, free the instance
 * @s:		instance, or NULL
 */
void mvm_slirp_free(struct mvm_slirp *s);

#endif
