// SPDX-License-Identifier: MIT
/*
 * proxy.c - the inbound proxy (port 7602): connect through the tunnel, then relay
 *
 * Theory of operation
 *
 *   A connection goes through these states, all driven by the one event loop:
 *
 *     HS          reading [len][host][port BE] (handshake.c); bad or truncated -> 0x01
 *     RESOLVING   a resolver thread looks the name up (resolve.c); IP literals skip it
 *     (policy)    every candidate address goes through the destination policy (policy.c);
 *                 refused ones are dropped, and when none is left -> 0x02 (not allowed)
 *     CONNECTING  non-blocking connect() to each address in turn
 *     RELAY       the status byte 0x00 is the first byte queued towards the client, then
 *                 bytes flow both ways through two 16 KiB buffers
 *     LINGER      a failure status byte was sent and our side shut down; the client's
 *                 remaining bytes are read and dropped until it closes (at most 2 s), so
 *                 closing never turns into a reset that could destroy the status byte
 *
 *   From HS to the end of CONNECTING the client gets --connect-timeout seconds (then 0x06,
 *   or 0x01 while the handshake is incomplete). Connect errors map to status bytes in
 *   hs_status_from_errno(). Half-close: when one side's reads end and its buffer is
 *   drained, the other side's write half is shut down; the relay ends when both halves
 *   are shut, or at once on a reset or write error.
 *
 *   The guest's own addresses, which the policy refuses, are kept between connections and
 *   listed again only after they may have changed (localaddr.c: an rtnetlink subscription
 *   read before every check, and the VPN's state changes).
 *
 *   A relay whose target socket's local address was the tunnel's address when it connected
 *   runs through the VPN. When the VPN goes down (OpenVPN died, stopped or reconnects with
 *   another address) such relays can never move a byte again; proxy_vpn_changed(), the
 *   listener proxy_init() registers with vpn_on_change(), runs on every VPN state change
 *   (and every tick checks too) and resets them: SO_LINGER 0 on both
 *   sockets, so the client gets a TCP reset at once rather than waiting for an idle
 *   timeout on a dead connection.
 *
 *   Nothing here blocks: a target that never answers only holds its own connection until
 *   the timeout, and the control port is served by the same loop in between.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

#define PROXY_BUF	16384
#define PROXY_LINGER_MS	2000

enum proxy_st { PX_HS, PX_RESOLVING, PX_CONNECTING, PX_RELAY, PX_LINGER };

/**
 * struct proxy_dir - one direction of a relay
 * @buf:	bytes read from the source, not yet written to the destination
 * @off:	first unwritten byte
 * @len:	end of data
 * @eof:	the source finished sending
 * @shut:	the destination's write half was shut down
 */
struct proxy_dir {
	uint8_t buf[PROXY_BUF];
	size_t off, len;
	bool eof, shut;
};

/**
 * struct proxy_conn - one inbound proxy connection
 * @cev:	client socket
 * @tev:	target socket (fd -1 until connecting)
 * @st:		state
 * @host:	requested host
 * @port:	requested port
 * @job:	resolution in flight, or NULL
 * @addrs:	candidate addresses
 * @naddrs:	count
 * @ai:		next address to try
 * @last_err:	errno of the last failed connect
 * @deadline:	monotonic ms limit of the current state (HS..CONNECTING, LINGER)
 * @c2t:	client to target
 * @t2c:	target to client (starts with the status byte)
 * @tun_ip:	the tunnel address the target connection goes out from, "" if not the VPN's
 * @next:	list link
 * @prev:	list link
 */
struct proxy_conn {
	struct agent_ev cev, tev;
	enum proxy_st st;
	char host[HS_HOST_MAX + 1];
	uint16_t port;
	struct resolve_job *job;
	struct sockaddr_storage addrs[AGENT_ADDR_MAX];
	size_t naddrs, ai;
	int last_err;
	uint64_t deadline;
	struct proxy_dir c2t, t2c;
	char tun_ip[INET_ADDRSTRLEN];
	struct proxy_conn *next, *prev;
};

static struct agent_listener lsn;

static void proxy_tick(struct agent *a);
static void proxy_vpn_changed(struct agent *a);

/* proxy_addrs_changed() - the VPN changed state: its addresses may have too */
static void proxy_addrs_changed(struct agent *a)
{
	localaddr_invalidate(&a->local);
}

/**
 * proxy_close() - drop a connection
 * @a:		agent
 * @p:		connection
 */
static void proxy_close(struct agent *a, struct proxy_conn *p)
{
	agent_ev_close(a, &p->cev);
	agent_ev_close(a, &p->tev);
	if (p->job)
		resolve_cancel(a, p->job);
	p->job = NULL;
	if (p->prev)
		p->prev->next = p->next;
	else
		a->proxies = p->next;
	if (p->next)
		p->next->prev = p->prev;
	a->nproxies--;
	agent_defer_free(a, p);
}

/**
 * proxy_fail() - answer a status byte, shut our side, linger until the client closes
 * @a:		agent
 * @p:		connection
 * @status:	HS_ERR_*
 */
static void proxy_fail(struct agent *a, struct proxy_conn *p, uint8_t status)
{
	agent_debug(a, "proxy %s:%u: status 0x%02x", p->host, p->port, status);
	agent_ev_close(a, &p->tev);
	if (p->job)
		resolve_cancel(a, p->job);
	p->job = NULL;
	if (send(p->cev.fd, &status, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1 ||
	    shutdown(p->cev.fd, SHUT_WR) < 0 || p->c2t.eof) {
		proxy_close(a, p);
		return;
	}
	p->st = PX_LINGER;
	p->deadline = agent_now_ms() + PROXY_LINGER_MS;
	agent_ev_set(a, &p->cev, EPOLLIN);
}

/**
 * dir_read() - read from @fd into @d
 * @fd:		source
 * @d:		direction
 *
 * Return: 0, or -errno on a connection error
 */
static int dir_read(int fd, struct proxy_dir *d)
{
	ssize_t n;

	if (d->eof)
		return 0;
	if (d->off == d->len)
		d->off = d->len = 0;
	if (d->len == sizeof(d->buf) && d->off) {
		memmove(d->buf, d->buf + d->off, d->len - d->off);
		d->len -= d->off;
		d->off = 0;
	}
	if (d->len == sizeof(d->buf))
		return 0;
	n = recv(fd, d->buf + d->len, sizeof(d->buf) - d->len, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		d->eof = true;
	d->len += (size_t)n;
	return 0;
}

/**
 * dir_write() - write @d's data to @fd; shut @fd's write half after the source's EOF
 * @fd:		destination
 * @d:		direction
 *
 * Return: 0, or -errno on a connection error
 */
static int dir_write(int fd, struct proxy_dir *d)
{
	while (d->off < d->len) {
		ssize_t n = send(fd, d->buf + d->off, d->len - d->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		d->off += (size_t)n;
	}
	d->off = d->len = 0;
	if (d->eof && !d->shut) {
		if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
			return -errno;
		d->shut = true;
	}
	return 0;
}

/**
 * room() - can @d take more bytes
 * @d:		direction
 *
 * Return: true if reading makes sense
 */
static bool room(const struct proxy_dir *d)
{
	return !d->eof && !(d->len == sizeof(d->buf) && d->off == 0);
}

/**
 * proxy_update() - register for what can happen next; close when done
 * @a:		agent
 * @p:		connection
 */
static void proxy_update(struct agent *a, struct proxy_conn *p)
{
	uint32_t cm = 0, tm = 0;

	switch (p->st) {
	case PX_HS:
	case PX_RESOLVING:
	case PX_LINGER:
		cm = EPOLLIN;
		break;
	case PX_CONNECTING:
		cm = room(&p->c2t) ? EPOLLIN : 0;
		tm = EPOLLOUT;
		break;
	case PX_RELAY:
		if (p->c2t.shut && p->t2c.shut) {
			proxy_close(a, p);
			return;
		}
		cm = (room(&p->c2t) ? EPOLLIN : 0) | (p->t2c.off < p->t2c.len ? EPOLLOUT : 0);
		tm = (room(&p->t2c) ? EPOLLIN : 0) | (p->c2t.off < p->c2t.len ? EPOLLOUT : 0);
		break;
	}
	if (p->st == PX_RESOLVING && !room(&p->c2t))
		cm = 0;
	if (agent_ev_set(a, &p->cev, cm) < 0 || agent_ev_set(a, &p->tev, tm) < 0)
		proxy_close(a, p);
}

/**
 * relay() - move bytes both ways
 * @a:		agent
 * @p:		connection in PX_RELAY
 */
static void relay(struct agent *a, struct proxy_conn *p)
{
	if (dir_read(p->cev.fd, &p->c2t) < 0 || dir_write(p->tev.fd, &p->c2t) < 0 ||
	    dir_read(p->tev.fd, &p->t2c) < 0 || dir_write(p->cev.fd, &p->t2c) < 0) {
		proxy_close(a, p);
		return;
	}
	proxy_update(a, p);
}

/**
 * note_tunnel() - remember whether the target connection goes through the VPN's tunnel
 * @a:		agent
 * @p:		connection whose target just connected
 */
static void note_tunnel(struct agent *a, struct proxy_conn *p)
{
	struct sockaddr_in local;
	socklen_t sl = sizeof(local);
	char ip[INET_ADDRSTRLEN];

	p->tun_ip[0] = '\0';
	if (vpn_view(a) != VPN_VIEW_CONNECTED ||
	    getsockname(p->tev.fd, (struct sockaddr *)&local, &sl) < 0 ||
	    local.sin_family != AF_INET || !inet_ntop(AF_INET, &local.sin_addr, ip, sizeof(ip)) ||
	    strcmp(ip, vpn_tun_ip(a)))
		return;
	memcpy(p->tun_ip, ip, sizeof(ip));
}

/**
 * proxy_reset() - end a relay with a TCP reset on both sides
 * @a:		agent
 * @p:		connection
 */
static void proxy_reset(struct agent *a, struct proxy_conn *p)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(p->cev.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (p->tev.fd >= 0)
		setsockopt(p->tev.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	proxy_close(a, p);
}

/**
 * connected() - the target accepted: queue the status byte and start relaying
 * @a:		agent
 * @p:		connection
 */
static void connected(struct agent *a, struct proxy_conn *p)
{
	int one = 1;

	setsockopt(p->tev.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	note_tunnel(a, p);
	p->st = PX_RELAY;
	p->t2c.buf[0] = HS_OK;
	p->t2c.off = 0;
	p->t2c.len = 1;
	agent_debug(a, "proxy %s:%u: connected", p->host, p->port);
	relay(a, p);
}

static void try_connect(struct agent *a, struct proxy_conn *p);

/**
 * proxy_filter() - drop the candidate addresses the destination policy refuses
 * @a:		agent
 * @p:		connection with p->addrs[0..naddrs) filled in
 *
 * Return: true when at least one address is left to try
 */
static bool proxy_filter(struct agent *a, struct proxy_conn *p)
{
	unsigned long listings = a->local.listings;
	const struct policy *pol;
	size_t kept = 0;
	int err = 0;

	pol = localaddr_policy(&a->local, &a->net_policy, &err);
	if (!pol) {
		agent_log(a, "proxy %s:%u: cannot list the guest's addresses (%s); refused",
			  p->host, p->port, strerror(-err));
		p->naddrs = 0;
		return false;
	}
	if (a->local.listings != listings)
		agent_debug(a, "proxy: the guest's addresses listed again (%zu refused in all)",
			    pol->n);
	for (size_t i = 0; i < p->naddrs; i++) {
		enum policy_reason r = policy_check(pol, (struct sockaddr *)&p->addrs[i]);

		if (r == POLICY_ALLOW) {
			if (kept != i)
				p->addrs[kept] = p->addrs[i];
			kept++;
		} else {
			agent_debug(a, "proxy %s:%u: address %zu refused: %s", p->host, p->port,
				    i, policy_reason_text(r));
		}
	}
	p->naddrs = kept;
	p->ai = 0;
	return kept > 0;
}

/**
 * start_connect() - candidates known: apply the policy, then try them in turn
 * @a:		agent
 * @p:		connection
 */
static void start_connect(struct agent *a, struct proxy_conn *p)
{
	if (!proxy_filter(a, p)) {
		proxy_fail(a, p, HS_ERR_NOT_ALLOWED);
		return;
	}
	try_connect(a, p);
}

/**
 * try_connect() - connect to the next candidate address
 * @a:		agent
 * @p:		connection
 */
static void try_connect(struct agent *a, struct proxy_conn *p)
{
	agent_ev_close(a, &p->tev);
	while (p->ai < p->naddrs) {
		struct sockaddr_storage *ss = &p->addrs[p->ai++];
		socklen_t sl = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
							: sizeof(struct sockaddr_in6);
		int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			p->last_err = errno;
			continue;
		}
		p->tev.fd = fd;
		p->tev.mask = 0;
		if (connect(fd, (struct sockaddr *)ss, sl) == 0) {
			connected(a, p);
			return;
		}
		if (errno == EINPROGRESS) {
			p->st = PX_CONNECTING;
			proxy_update(a, p);
			return;
		}
		p->last_err = errno;
		agent_ev_close(a, &p->tev);
	}
	proxy_fail(a, p, hs_status_from_errno(p->last_err));
}

/**
 * resolved() - a resolver job came back
 * @a:		agent
 * @j:		the job (freed here)
 */
static void resolved(struct agent *a, struct resolve_job *j)
{
	struct proxy_conn *p = j->owner;

	if (p) {
		p->job = NULL;
		if (j->status != HS_OK) {
			proxy_fail(a, p, j->status);
		} else {
			memcpy(p->addrs, j->addrs, j->naddrs * sizeof(j->addrs[0]));
			p->naddrs = j->naddrs;
			start_connect(a, p);
		}
	}
	free(j);
}

/**
 * start_resolve() - the handshake is complete: resolve or connect directly
 * @a:		agent
 * @p:		connection
 */
static void start_resolve(struct agent *a, struct proxy_conn *p)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&p->addrs[0];
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&p->addrs[0];
	struct resolve_job *j;

	p->deadline = agent_now_ms() + (uint64_t)a->opts.connect_timeout_s * 1000;
	memset(&p->addrs[0], 0, sizeof(p->addrs[0]));
	if (inet_pton(AF_INET, p->host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(p->port);
	} else if (inet_pton(AF_INET6, p->host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(p->port);
	} else {
		j = calloc(1, sizeof(*j));
		if (!j) {
			proxy_fail(a, p, HS_ERR_GENERAL);
			return;
		}
		memcpy(j->host, p->host, sizeof(j->host));
		j->port = p->port;
		if (resolve_local(j)) {
			memcpy(p->addrs, j->addrs, j->naddrs * sizeof(j->addrs[0]));
			p->naddrs = j->naddrs;
			free(j);
			start_connect(a, p);	/* local answers obey the policy too */
			return;
		}
		j->ndns = vpn_dns(a, j->dns, AGENT_DNS_MAX);
		j->owner = p;
		j->deadline = p->deadline;
		if (resolve_submit(a, j)) {
			free(j);
			agent_log(a, "proxy %s:%u: %d name lookups waiting already; refused",
				  p->host, p->port, AGENT_RESOLVE_QUEUE);
			proxy_fail(a, p, HS_ERR_GENERAL);
			return;
		}
		p->job = j;
		p->st = PX_RESOLVING;
		proxy_update(a, p);
		return;
	}
	p->naddrs = 1;
	start_connect(a, p);
}

/**
 * on_client() - events on the client socket
 * @a:		agent
 * @ev:		p->cev
 * @events:	what happened
 */
static void on_client(struct agent *a, struct agent_ev *ev, uint32_t events)
{
	struct proxy_conn *p = (struct proxy_conn *)((char *)ev - offsetof(struct proxy_conn, cev));
	int n;

	(void)events;
	switch (p->st) {
	case PX_HS:
		if (dir_read(ev->fd, &p->c2t) < 0) {
			proxy_close(a, p);
			return;
		}
		n = hs_parse(p->c2t.buf + p->c2t.off, p->c2t.len - p->c2t.off, p->host, &p->port);
		if (n < 0 || (n == 0 && p->c2t.eof)) {
			proxy_fail(a, p, HS_ERR_GENERAL);
			return;
		}
		if (n == 0) {
			proxy_update(a, p);
			return;
		}
		p->c2t.off += (size_t)n;
		start_resolve(a, p);
		return;
	case PX_RESOLVING:
	case PX_CONNECTING:
		/* Keep bytes sent ahead of the status byte; notice resets. */
		if (dir_read(ev->fd, &p->c2t) < 0) {
			proxy_close(a, p);
			return;
		}
		proxy_update(a, p);
		return;
	case PX_RELAY:
		relay(a, p);
		return;
	case PX_LINGER: {
		char drop[4096];
		ssize_t r = recv(ev->fd, drop, sizeof(drop), MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			proxy_close(a, p);
		return;
	}
	}
}

/**
 * on_target() - events on the target socket
 * @a:		agent
 * @ev:		p->tev
 * @events:	what happened
 */
static void on_target(struct agent *a, struct agent_ev *ev, uint32_t events)
{
	struct proxy_conn *p = (struct proxy_conn *)((char *)ev - offsetof(struct proxy_conn, tev));
	socklen_t sl = sizeof(int);
	int err = 0;

	(void)events;
	if (p->st == PX_CONNECTING) {
		if (getsockopt(ev->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
			err = errno;
		if (err == EINPROGRESS || err == EALREADY)
			return;
		if (err) {
			p->last_err = err;
			try_connect(a, p);
			return;
		}
		connected(a, p);
		return;
	}
	if (p->st == PX_RELAY)
		relay(a, p);
}

/**
 * proxy_adopt() - serve a new proxy connection (authenticated, when over TCP)
 * @a:		agent
 * @fd:		the client socket
 */
void proxy_adopt(struct agent *a, int fd)
{
	struct proxy_conn *p = calloc(1, sizeof(*p));

	if (!p) {
		close(fd);
		return;
	}
	p->cev.fd = fd;
	p->cev.cb = on_client;
	p->tev.fd = -1;
	p->tev.cb = on_target;
	p->st = PX_HS;
	p->deadline = agent_now_ms() + (uint64_t)a->opts.connect_timeout_s * 1000;
	p->next = a->proxies;
	if (a->proxies)
		a->proxies->prev = p;
	a->proxies = p;
	a->nproxies++;
	proxy_update(a, p);
}

/**
 * on_fd() - a new proxy connection from the shared accept loop
 * @a:		agent
 * @fd:		the socket
 *
 * Over TCP the connection first proves the host's secret (auth.c), which then hands it to
 * proxy_adopt(); over vsock it goes there at once.
 */
static void on_fd(struct agent *a, int fd)
{
	auth_begin(a, fd, a->opts.proxy_port, proxy_adopt);
}

/**
 * proxy_read_small() - read a small system file
 * @path:	the file
 * @buf:	receives its first @size bytes
 * @size:	buffer size
 *
 * Return: bytes read, 0 when it cannot be read
 */
static size_t proxy_read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while (len < size && (n = read(fd, buf + len, size - len)) > 0)
		len += (size_t)n;
	close(fd);
	return len;
}

/**
 * proxy_policy_init() - learn the guest network's gateways and name servers
 * @a:		agent
 *
 * Read once at start-up, before OpenVPN adds routes of its own: the default routes' gateways
 * and resolv.conf's name servers, on top of the user-mode network's fixed addresses.
 */
static void proxy_policy_init(struct agent *a)
{
	static char buf[16384];
	size_t n;

	policy_init(&a->net_policy);
	n = proxy_read_small("/proc/net/route", buf, sizeof(buf));
	policy_parse_routes(&a->net_policy, buf, n);
	n = proxy_read_small("/etc/resolv.conf", buf, sizeof(buf));
	policy_parse_resolv(&a->net_policy, buf, n);
	agent_debug(a, "proxy: %zu gateway and name server addresses refused", a->net_policy.n);
}

/**
 * proxy_init() - serve the proxy port on @lfd; listen to the VPN, tick
 * @a:		agent (vpn_init() done)
 * @lfd:	listening socket
 *
 * Return: 0 or -errno
 */
int proxy_init(struct agent *a, int lfd)
{
	int ret = agent_on_tick(a, proxy_tick), fd;

	if (!ret)
		ret = vpn_on_change(a, proxy_vpn_changed);
	if (!ret)
		ret = vpn_on_change(a, proxy_addrs_changed);
	if (!ret)
		ret = resolve_init(a, resolved);
	if (ret)
		return ret;
	proxy_policy_init(a);
	fd = localaddr_open_netlink();
	if (fd < 0)
		agent_log(a, "proxy: no address change notifications (%s): the guest's addresses "
			  "are listed for every connection", strerror(-fd));
	localaddr_init(&a->local, fd, localaddr_list_ifaddrs, NULL);
	return agent_listener_init(a, &lsn, lfd, "proxy", on_fd);
}

/**
 * proxy_tick() - timeouts, relays through a tunnel that went down; resume accepting
 * @a:		agent
 */
static void proxy_tick(struct agent *a)
{
	uint64_t now = agent_now_ms();
	struct proxy_conn *p, *next;

	agent_listener_tick(a, &lsn);
	proxy_vpn_changed(a);
	for (p = a->proxies; p; p = next) {
		next = p->next;
		if (p->st == PX_RELAY || now < p->deadline)
			continue;
		if (p->st == PX_LINGER)
			proxy_close(a, p);
		else
			proxy_fail(a, p, p->st == PX_HS ? HS_ERR_GENERAL : HS_ERR_TIMEOUT);
	}
}

/**
 * proxy_vpn_changed() - reset relays through a tunnel that is no longer up
 * @a:		agent
 *
 * The listener proxy_init() registers with vpn_on_change(); every tick runs it too, as a
 * backstop.
 */
static void proxy_vpn_changed(struct agent *a)
{
	const char *tun = vpn_view(a) == VPN_VIEW_CONNECTED ? vpn_tun_ip(a) : "";
	struct proxy_conn *p, *next;
	size_t nreset = 0;

	for (p = a->proxies; p; p = next) {
		next = p->next;
		if (p->tun_ip[0] && strcmp(p->tun_ip, tun)) {
			nreset++;
			proxy_reset(a, p);
		}
	}
	if (nreset)
		agent_log(a, "vpn down: reset %zu relays through the tunnel", nreset);
}

/**
 * proxy_fini() - close every proxy connection (agent exit)
 * @a:		agent
 */
void proxy_fini(struct agent *a)
{
	while (a->proxies)
		proxy_close(a, a->proxies);
	agent_ev_close(a, &lsn.ev);
	resolve_fini(a);
	localaddr_close(&a->local);
}
