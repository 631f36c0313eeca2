// SPDX-License-Identifier: MIT
/**
 * DOC: Theory of operation - user-mode networking over libslirp
 *
 * libslirp is a TCP/IP stack in user space: it parses the guest's Ethernet frames, answers
 * ARP, DHCP and DNS itself, and turns the guest's TCP and UDP flows into ordinary sockets of
 * this process.  Nothing on the host needs privileges, and the host's routes are never
 * touched; to the rest of the machine the guest's traffic looks like this process's.
 *
 * Addresses (the conventional QEMU ones): network 10.0.2.0/24, gateway/host 10.0.2.2,
 * DNS 10.0.2.3, DHCP pool starting at 10.0.2.15 (the guest).  IPv6 (fec0::/64) is optional.
 * Restricted mode is off: the guest may reach anything the host can.
 *
 * Threading.  libslirp is not thread-safe, so one thread per instance owns the Slirp object
 * and is the only caller of slirp_*().  Its loop:
 *
 *   1. slirp_pollfds_fill() collects slirp's sockets into a pollfd array, slot 0 being our
 *      wake-up eventfd; the timeout is the nearer of slirp's own (TCP fast/slow timers) and
 *      our earliest timer (libslirp timers, e.g. IPv6 router advertisements, are kept in a
 *      small list here through the SlirpCb timer callbacks);
 *   2. poll();
 *   3. slirp_pollfds_poll() lets slirp read and write its sockets; frames it produces for
 *      the guest go to the user's rx callback, on this thread;
 *   4. expired timers run;
 *   5. the frame queue is drained into slirp_input(), and a pending cross-thread call (adding
 *      a port forward) is executed.
 *
 * Frames from the guest arrive on any thread through mvm_slirp_send(): each is copied into a
 * fixed ring of slots (no allocation on the data path) under a mutex, and the eventfd is
 * signalled when the ring goes from empty to non-empty.  The slirp thread processes a batch
 * of slots outside the lock (producers only ever write past the batch), then releases them.
 * A full ring drops the frame, as a NIC would; TCP recovers.
 *
 * A frame descriptor (the namespace backend's TAP) can instead be handed to the instance at
 * creation (mvm_slirp_new_fd()): the thread polls it beside slirp's sockets, reads frames
 * straight into slirp_input() and writes slirp's frames to it, with no queue and no thread
 * hop in either direction.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "net/slirp.h"
#include "runtime/error.h"
#include "sandbox/sandbox.h"

#define SLIRP_QUEUE_SLOTS	256	/* frames in flight from the guest */
#define SLIRP_MTU_DEFAULT	1500
#define SLIRP_MTU_MIN		576
#define SLIRP_ETH_MIN		14	/* Ethernet header without a tag */
#define SLIRP_FD_BATCH		64	/* frames read from the frame fd per wake-up */
#define SLIRP_FD_BUF		65536	/* any frame a TAP can hand us */

/**
 * struct slirp_timer - one timer libslirp asked for
 * @next:	list link
 * @cb:		callback (timer_new flavour), or NULL
 * @id:		timer id (timer_new_opaque flavour, when @cb is NULL)
 * @cb_opaque:	argument for @cb or slirp_handle_timer()
 * @expire_ms:	absolute expiry on the slirp clock in ms, or -1 when not armed
 */
struct slirp_timer {
	struct slirp_timer *next;
	SlirpTimerCb cb;
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms;
};

/**
 * struct mvm_slirp - one instance
 * @slirp:	the libslirp object (slirp thread only, after start)
 * @thread:	the slirp thread
 * @wake_fd:	eventfd that interrupts the thread's poll()
 * @rx:		frames for the guest (or NULL: written to @frame_fd)
 * @opaque:	argument for @rx
 * @frame_fd:	a frame descriptor (TAP) served by the thread itself, or -1
 * @frame_buf:	read buffer for @frame_fd
 * @lock:	protects the queue, @stop and the call fields
 * @cond:	signals call completion
 * @slots:	queue storage, @nslots slots of @slot_size bytes
 * @slot_len:	length of the frame in each slot
 * @slot_size:	bytes per slot (MTU + Ethernet header with tag)
 * @head:	oldest queued slot
 * @count:	queued slots
 * @dropped:	frames dropped because the queue was full
 * @stop:	thread must exit
 * @call_fwd:	pending cross-thread call: add this forward
 * @call_busy:	a caller owns the call fields
 * @call_done:	the thread has executed the call, @call_ret is valid
 * @call_ret:	its result
 * @timers:	timers created by libslirp (slirp thread only)
 * @pfd:	poll array (slirp thread only)
 * @npfd:	entries used in @pfd (the first @nfixed are ours: wake-up, frame fd)
 * @nfixed:	entries of @pfd before slirp's
 * @pfd_cap:	entries allocated in @pfd
 */
struct mvm_slirp {
	Slirp *slirp;
	pthread_t thread;
	int wake_fd;
	mvm_slirp_rx_cb rx;
	void *opaque;
	int frame_fd;
	uint8_t *frame_buf;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t *slots;
	uint32_t *slot_len;
	size_t slot_size;
	unsigned int nslots;
	unsigned int head;
	unsigned int count;
	uint64_t dropped;
	bool stop;

	const struct mvm_slirp_fwd *call_fwd;
	bool call_busy;
	bool call_done;
	int call_ret;

	struct slirp_timer *timers;
	struct pollfd *pfd;
	size_t npfd;
	size_t nfixed;
	size_t pfd_cap;
};

/* ---- libslirp callbacks (all on the slirp thread) ---- */

/**
 * slirp_now_ns() - the clock libslirp runs on
 * Return: CLOCK_MONOTONIC in nanoseconds.
 */
static int64_t slirp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t slirp_cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return slirp_now_ns();
}

/**
 * slirp_cb_send_packet() - libslirp has a frame for the guest
 * @buf:	the frame
 * @len:	its length
 * @opaque:	the instance
 *
 * Return: @len (the frame is always taken; the user's callback may drop it).
 */
static ssize_t slirp_cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct mvm_slirp *s = opaque;

	if (s->rx)
		s->rx(s->opaque, buf, len);
	else if (write(s->frame_fd, buf, len) < 0)
		return (ssize_t)len;	/* a full TAP queue drops the frame, like a NIC */
	return (ssize_t)len;
}

static void slirp_cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	fprintf(stderr, "microvm: slirp: guest error: %s\n", msg);
}

/**
 * slirp_timer_add() - allocate a disarmed timer and link it
 * @s:		instance
 * @cb:		callback or NULL
 * @id:		timer id when @cb is NULL
 * @cb_opaque:	argument
 *
 * Return: the timer, or NULL when out of memory (libslirp then runs without it).
 */
static struct slirp_timer *slirp_timer_add(struct mvm_slirp *s, SlirpTimerCb cb,
					   SlirpTimerId id, void *cb_opaque)
{
	struct slirp_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cb = cb;
	t->id = id;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = s->timers;
	s->timers = t;
	return t;
}

static void *slirp_cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	return slirp_timer_add(opaque, cb, SLIRP_TIMER_NUM, cb_opaque);
}

static void *slirp_cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	return slirp_timer_add(opaque, NULL, id, cb_opaque);
}

static void slirp_cb_timer_free(void *timer, void *opaque)
{
	struct mvm_slirp *s = opaque;
	struct slirp_timer **pp;

	for (pp = &s->timers; *pp; pp = &(*pp)->next) {
		if (*pp == timer) {
			*pp = ((struct slirp_timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void slirp_cb_timer_mod(void *timer, int64_t expire_time, void *opaque)
{
	(void)opaque;
	((struct slirp_timer *)timer)->expire_ms = expire_time;
}

static void slirp_cb_poll_fd(int fd, void *opaque)
{
	/* slirp_pollfds_fill() hands us every socket on each iteration anyway. */
	(void)fd;
	(void)opaque;
}

static void slirp_cb_notify(void *opaque)
{
	(void)opaque;
}

static const SlirpCb slirp_callbacks = {
	.send_packet = slirp_cb_send_packet,
	.guest_error = slirp_cb_guest_error,
	.clock_get_ns = slirp_cb_clock_get_ns,
	.timer_new = slirp_cb_timer_new,
	.timer_free = slirp_cb_timer_free,
	.timer_mod = slirp_cb_timer_mod,
	.register_poll_fd = slirp_cb_poll_fd,
	.unregister_poll_fd = slirp_cb_poll_fd,
	.notify = slirp_cb_notify,
	.timer_new_opaque = slirp_cb_timer_new_opaque,
};

/* ---- poll array ---- */

/**
 * slirp_add_poll() - slirp_pollfds_fill() callback: watch @fd
 * @fd:		socket
 * @events:	SLIRP_POLL_* mask
 * @opaque:	the instance
 *
 * Return: the index slirp later passes to slirp_get_revents(), or -1 when out of memory.
 */
static int slirp_add_poll(int fd, int events, void *opaque)
{
	struct mvm_slirp *s = opaque;
	struct pollfd *p;

	if (s->npfd == s->pfd_cap) {
		size_t cap = s->pfd_cap * 2;

		p = realloc(s->pfd, cap * sizeof(*p));
		if (!p)
			return -1;
		s->pfd = p;
		s->pfd_cap = cap;
	}
	p = &s->pfd[s->npfd];
	p->fd = fd;
	p->events = (short)(((events & SLIRP_POLL_IN) ? POLLIN : 0) |
			    ((events & SLIRP_POLL_OUT) ? POLLOUT : 0) |
			    ((events & SLIRP_POLL_PRI) ? POLLPRI : 0));
	p->revents = 0;
	return (int)s->npfd++;
}

/**
 * slirp_get_revents() - slirp_pollfds_poll() callback: what happened on entry @idx
 * @idx:	index returned by slirp_add_poll() (-1 for sockets it could not add)
 * @opaque:	the instance
 *
 * Return: SLIRP_POLL_* mask.
 */
static int slirp_get_revents(int idx, void *opaque)
{
	struct mvm_slirp *s = opaque;
	short r;

	if (idx < 0 || (size_t)idx < s->nfixed || (size_t)idx >= s->npfd)
		return 0;
	r = s->pfd[idx].revents;
	return ((r & POLLIN) ? SLIRP_POLL_IN : 0) | ((r & POLLOUT) ? SLIRP_POLL_OUT : 0) |
	       ((r & POLLPRI) ? SLIRP_POLL_PRI : 0) | ((r & POLLERR) ? SLIRP_POLL_ERR : 0) |
	       ((r & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

/* ---- the slirp thread ---- */

/**
 * slirp_timers_timeout() - milliseconds until the earliest armed timer
 * @s:		instance
 * @now_ms:	current time on the slirp clock
 *
 * Return: the delay, or UINT32_MAX when no timer is armed.
 */
static uint32_t slirp_timers_timeout(const struct mvm_slirp *s, int64_t now_ms)
{
	const struct slirp_timer *t;
	uint32_t timeout = UINT32_MAX;

	for (t = s->timers; t; t = t->next) {
		int64_t d;

		if (t->expire_ms < 0)
			continue;
		d = t->expire_ms - now_ms;
		if (d < 0)
			d = 0;
		if ((uint64_t)d < timeout)
			timeout = (uint32_t)d;
	}
	return timeout;
}

/**
 * slirp_timers_run() - fire every expired timer
 * @s:		instance
 *
 * A callback may modify or free timers, so the scan restarts after each one.
 */
static void slirp_timers_run(struct mvm_slirp *s)
{
	int64_t now_ms = slirp_now_ns() / 1000000;
	struct slirp_timer *t;

restart:
	for (t = s->timers; t; t = t->next) {
		if (t->expire_ms < 0 || t->expire_ms > now_ms)
			continue;
		t->expire_ms = -1;
		if (t->cb)
			t->cb(t->cb_opaque);
		else
			slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
		goto restart;
	}
}

/**
 * slirp_do_fwd() - add a host forward (slirp thread, or before it starts)
 * @s:		instance
 * @fwd:	the forward
 *
 * Return: 0 or -EADDRINUSE.
 */
static int slirp_do_fwd(struct mvm_slirp *s, const struct mvm_slirp_fwd *fwd)
{
	struct in_addr host = { .s_addr = fwd->host_addr ? fwd->host_addr : htonl(INADDR_LOOPBACK) };
	struct in_addr guest = { .s_addr = htonl(0x0a00020f) };	/* 10.0.2.15 */

	if (slirp_add_hostfwd(s->slirp, fwd->udp, host, fwd->host_port, guest,
			      fwd->guest_port) < 0)
		return -EADDRINUSE;
	return 0;
}

/**
 * slirp_drain() - feed every queued guest frame to libslirp, then run a pending call
 * @s:		instance
 */
static void slirp_drain(struct mvm_slirp *s)
{
	const struct mvm_slirp_fwd *fwd = NULL;
	unsigned int head, n, i;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		head = s->head;
		n = s->count;
		pthread_mutex_unlock(&s->lock);
		if (!n)
			break;
		for (i = 0; i < n; i++) {
			unsigned int slot = (head + i) % s->nslots;

			slirp_input(s->slirp, s->slots + (size_t)slot * s->slot_size,
				    (int)s->slot_len[slot]);
		}
		pthread_mutex_lock(&s->lock);
		s->head = (head + n) % s->nslots;
		s->count -= n;
		pthread_mutex_unlock(&s->lock);
	}

	pthread_mutex_lock(&s->lock);
	if (s->call_busy && !s->call_done)
		fwd = s->call_fwd;
	pthread_mutex_unlock(&s->lock);
	if (fwd) {
		int ret = slirp_do_fwd(s, fwd);

		pthread_mutex_lock(&s->lock);
		s->call_ret = ret;
		s->call_done = true;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
}

/**
 * slirp_frame_fd_read() - feed the frames waiting on the frame descriptor to libslirp
 * @s:		instance
 *
 * At most a batch per wake-up, so that slirp's sockets get their turn under load.
 */
static void slirp_frame_fd_read(struct mvm_slirp *s)
{
	int i;

	for (i = 0; i < SLIRP_FD_BATCH; i++) {
		ssize_t n = read(s->frame_fd, s->frame_buf, SLIRP_FD_BUF);

		if (n <= 0)
			return;
		if (n >= SLIRP_ETH_MIN && (size_t)n <= s->slot_size)
			slirp_input(s->slirp, s->frame_buf, (int)n);
	}
}

/**
 * slirp_thread() - the loop described in the theory of operation
 * @arg:	the instance
 *
 * Return: NULL.
 */
/* What libslirp does on its thread: the guest's TCP/UDP/ICMP flows become host sockets. */
static const int slirp_syscalls[] = {
	SANDBOX_SYS(poll),		/* slirp_thread() */
	SANDBOX_SYS(ppoll),
	SANDBOX_SYS(socket),		/* one host socket per guest flow */
	SANDBOX_SYS(connect),
	SANDBOX_SYS(bind),		/* UDP flows, port forwards */
	SANDBOX_SYS(listen),
	SANDBOX_SYS(accept),		/* port forwards (hostfwd) */
	SANDBOX_SYS(accept4),
	SANDBOX_SYS(setsockopt),	/* SO_REUSEADDR, TCP_NODELAY, SO_OOBINLINE, ... */
	SANDBOX_SYS(getsockopt),	/* SO_ERROR after a non-blocking connect */
	SANDBOX_SYS(getsockname),
	SANDBOX_SYS(getpeername),
	SANDBOX_SYS(sendto),
	SANDBOX_SYS(recvfrom),
	SANDBOX_SYS(sendmsg),
	SANDBOX_SYS(recvmsg),
	SANDBOX_SYS(shutdown),
	SANDBOX_SYS(fcntl),		/* non-blocking sockets */
	SANDBOX_SYS(ioctl),		/* FIONBIO, FIONREAD */
	SANDBOX_SYS(openat),		/* /etc/resolv.conf for the host's DNS server */
	SANDBOX_SYS(lseek),
	SANDBOX_SYS(stat),
	SANDBOX_SYS(pipe2),		/* glib internals */
	SANDBOX_SYS(eventfd2),
};

static void *slirp_thread(void *arg)
{
	struct mvm_slirp *s = arg;
	struct sandbox_list list = SANDBOX_LIST(slirp_syscalls);

	prctl(PR_SET_NAME, "mvm-slirp");
	if (sandbox_thread("slirp thread", &list, 1))
		return NULL;

	for (;;) {
		uint32_t timeout;
		uint64_t ev;
		bool stop;
		int n;

		pthread_mutex_lock(&s->lock);
		stop = s->stop;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;

		s->pfd[0].fd = s->wake_fd;
		s->pfd[0].events = POLLIN;
		s->pfd[0].revents = 0;
		s->pfd[1].fd = s->frame_fd;	/* -1: ignored by poll() */
		s->pfd[1].events = POLLIN;
		s->pfd[1].revents = 0;
		s->npfd = s->nfixed = 2;
		timeout = slirp_timers_timeout(s, slirp_now_ns() / 1000000);
		slirp_pollfds_fill(s->slirp, &timeout, slirp_add_poll, s);
		n = poll(s->pfd, s->npfd, timeout > INT32_MAX ? -1 : (int)timeout);
		slirp_pollfds_poll(s->slirp, n < 0, slirp_get_revents, s);
		slirp_timers_run(s);
		if (n > 0 && (s->pfd[0].revents & POLLIN)) {
			if (read(s->wake_fd, &ev, sizeof(ev)) < 0 && errno != EAGAIN)
				break;
		}
		if (n > 0 && s->pfd[1].revents)
			slirp_frame_fd_read(s);
		slirp_drain(s);
	}
	return NULL;
}

static void slirp_wake(struct mvm_slirp *s)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is saturated: the thread wakes anyway. */
	if (write(s->wake_fd, &one, sizeof(one)) < 0)
		return;
}

/* ---- public API ---- */

void mvm_slirp_cfg_init(struct mvm_slirp_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mtu = SLIRP_MTU_DEFAULT;
}

/**
 * slirp_config() - translate our config into libslirp's
 * @cfg:	ours
 * @sc:		libslirp's, filled
 */
static void slirp_config(const struct mvm_slirp_cfg *cfg, SlirpConfig *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->version = 4;
	sc->restricted = 0;
	sc->in_enabled = true;
	sc->vnetwork.s_addr = htonl(0x0a000200);	/* 10.0.2.0 */
	sc->vnetmask.s_addr = htonl(0xffffff00);	/* /24 */
	sc->vhost.s_addr = htonl(0x0a000202);		/* 10.0.2.2 */
	sc->vdhcp_start.s_addr = htonl(0x0a00020f);	/* 10.0.2.15 */
	sc->vnameserver.s_addr = htonl(0x0a000203);	/* 10.0.2.3 */
	sc->in6_enabled = cfg->ipv6;
	if (cfg->ipv6) {
		inet_pton(AF_INET6, "fec0::", &sc->vprefix_addr6);
		sc->vprefix_len = 64;
		inet_pton(AF_INET6, "fec0::2", &sc->vhost6);
		inet_pton(AF_INET6, "fec0::3", &sc->vnameserver6);
	}
	sc->vhostname = "microvm";
	sc->if_mtu = cfg->mtu;
	sc->if_mru = cfg->mtu;
	sc->disable_host_loopback = !cfg->host_loopback;
}

/**
 * slirp_create() - an instance delivering frames to @rx or to @frame_fd; its thread started
 * @cfg:	parameters (NULL: defaults)
 * @rx:		receive callback, or NULL with @frame_fd
 * @opaque:	for @rx
 * @frame_fd:	frame descriptor served by the thread, or -1
 *
 * Return: the instance, or NULL with mvm_last_error() set.
 */
static struct mvm_slirp *slirp_create(const struct mvm_slirp_cfg *cfg, mvm_slirp_rx_cb rx,
				      void *opaque, int frame_fd)
{
	struct mvm_slirp_cfg defaults;
	SlirpConfig sc;
	struct mvm_slirp *s;
	size_t i;
	int err;

	if (!cfg) {
		mvm_slirp_cfg_init(&defaults);
		cfg = &defaults;
	}
	if (!rx && frame_fd < 0) {
		mvm_set_error(-EINVAL, "slirp: no receive callback");
		return NULL;
	}
	if (cfg->mtu && (cfg->mtu < SLIRP_MTU_MIN || cfg->mtu > MVM_SLIRP_MTU_MAX)) {
		mvm_set_error(-EINVAL, "slirp: MTU %u out of range %d..%d", cfg->mtu,
			      SLIRP_MTU_MIN, MVM_SLIRP_MTU_MAX);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto err_nomem;
	s->rx = rx;
	s->opaque = opaque;
	s->frame_fd = frame_fd;
	s->wake_fd = -1;
	s->nslots = SLIRP_QUEUE_SLOTS;
	s->slot_size = (cfg->mtu ? cfg->mtu : SLIRP_MTU_DEFAULT) + MVM_SLIRP_ETH_HLEN;
	s->slots = malloc(s->slot_size * s->nslots);
	s->slot_len = calloc(s->nslots, sizeof(*s->slot_len));
	s->pfd_cap = 64;
	s->pfd = calloc(s->pfd_cap, sizeof(*s->pfd));
	if (frame_fd >= 0)
		s->frame_buf = malloc(SLIRP_FD_BUF);
	if (!s->slots || !s->slot_len || !s->pfd || (frame_fd >= 0 && !s->frame_buf))
		goto err_nomem_free;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);

	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->wake_fd < 0) {
		err = mvm_set_error(-errno, "slirp: eventfd: %s", strerror(errno));
		goto err_free;
	}

	slirp_config(cfg, &sc);
	if (!sc.if_mtu)
		sc.if_mtu = sc.if_mru = SLIRP_MTU_DEFAULT;
	s->slirp = slirp_new(&sc, &slirp_callbacks, s);
	if (!s->slirp) {
		err = mvm_set_error(-ENOMEM, "slirp: slirp_new() failed");
		goto err_free;
	}
	for (i = 0; i < cfg->n_fwds; i++) {
		err = slirp_do_fwd(s, &cfg->fwds[i]);
		if (err) {
			mvm_set_error(err, "slirp: cannot forward host %s port %u to guest port %u",
				      cfg->fwds[i].udp ? "UDP" : "TCP", cfg->fwds[i].host_port,
				      cfg->fwds[i].guest_port);
			goto err_cleanup;
		}
	}

	/* The thread takes no signals: SIGPIPE from a slirp socket stays harmless. */
	err = sandbox_thread_start(&s->thread, slirp_thread, s);
	if (err) {
		mvm_set_error(err, "slirp: cannot start thread: %s", strerror(-err));
		goto err_cleanup;
	}
	return s;

err_cleanup:
	slirp_cleanup(s->slirp);
err_free:
	while (s->timers)
		slirp_cb_timer_free(s->timers, s);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->frame_buf);
	free(s->pfd);
	free(s->slot_len);
	free(s->slots);
	free(s);
	return NULL;

err_nomem_free:
	free(s->frame_buf);
	free(s->pfd);
	free(s->slot_len);
	free(s->slots);
	free(s);
err_nomem:
	mvm_set_error(-ENOMEM, "slirp: out of memory");
	return NULL;
}

struct mvm_slirp *mvm_slirp_new(const struct mvm_slirp_cfg *cfg, mvm_slirp_rx_cb rx,
				void *opaque)
{
	if (!rx) {
		mvm_set_error(-EINVAL, "slirp: no receive callback");
		return NULL;
	}
	return slirp_create(cfg, rx, opaque, -1);
}

struct mvm_slirp *mvm_slirp_new_fd(const struct mvm_slirp_cfg *cfg, int fd)
{
	if (fd < 0) {
		mvm_set_error(-EBADF, "slirp: no frame descriptor");
		return NULL;
	}
	return slirp_create(cfg, NULL, NULL, fd);
}

int mvm_slirp_send(struct mvm_slirp *s, const void *frame, size_t len)
{
	unsigned int slot;
	bool was_empty;

	if (len < SLIRP_ETH_MIN || len > s->slot_size)
		return -EMSGSIZE;
	pthread_mutex_lock(&s->lock);
	if (s->count == s->nslots) {
		s->dropped++;
		pthread_mutex_unlock(&s->lock);
		return -ENOBUFS;
	}
	slot = (s->head + s->count) % s->nslots;
	memcpy(s->slots + (size_t)slot * s->slot_size, frame, len);
	s->slot_len[slot] = (uint32_t)len;
	was_empty = s->count++ == 0;
	pthread_mutex_unlock(&s->lock);
	if (was_empty)
		slirp_wake(s);
	return 0;
}

int mvm_slirp_add_fwd(struct mvm_slirp *s, const struct mvm_slirp_fwd *fwd)
{
	int ret;

	pthread_mutex_lock(&s->lock);
	while (s->call_busy)
		pthread_cond_wait(&s->cond, &s->lock);
	s->call_busy = true;
	s->call_done = false;
	s->call_fwd = fwd;
	pthread_mutex_unlock(&s->lock);
	slirp_wake(s);

	pthread_mutex_lock(&s->lock);
	while (!s->call_done)
		pthread_cond_wait(&s->cond, &s->lock);
	ret = s->call_ret;
	s->call_busy = false;
	s->call_done = false;
	s->call_fwd = NULL;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (ret)
		mvm_set_error(ret, "slirp: cannot forward host %s port %u to guest port %u",
			      fwd->udp ? "UDP" : "TCP", fwd->host_port, fwd->guest_port);
	return ret;
}

uint64_t mvm_slirp_dropped(struct mvm_slirp *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->lock);
	n = s->dropped;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void mvm_slirp_free(struct mvm_slirp *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_mutex_unlock(&s->lock);
	slirp_wake(s);
	pthread_join(s->thread, NULL);

	slirp_cleanup(s->slirp);
	while (s->timers)
		slirp_cb_timer_free(s->timers, s);
	close(s->wake_fd);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->frame_buf);
	free(s->pfd);
	free(s->slot_len);
	free(s->slots);
	free(s);
}
