// SPDX-License-Identifier: MIT
/*
 * loop.c - the agent's event-loop services: epoll registrations, deferred frees, the tick,
 * signals, the clock and logging
 *
 * Theory of operation
 *
 *   One thread runs one epoll loop; every file descriptor is a struct agent_ev whose
 *   callback gets the events. Objects closed while a batch of events is being dispatched
 *   are freed after the batch (agent_defer_free()), so a later event of the same batch
 *   never touches freed memory. A descriptor with nothing to wait for is removed from the
 *   epoll set rather than registered with an empty mask, so a hung-up peer cannot spin the
 *   loop.
 *
 *   agent_loop_init() creates the epoll instance and the loop's own two sources:
 *   - a signalfd: SIGCHLD calls the handler set with agent_on_child() (vpn.c reaps
 *     OpenVPN there, so there are no zombies); SIGTERM/SIGINT set a->quit to 0.
 *   - a 250 ms timerfd: every tick calls the functions added with agent_on_tick(), in the
 *     order they were added (connect, handshake, VPN outcome and control idle timeouts).
 *   The modules own every other source. This unit knows none of them: they register
 *   themselves (or main.c registers them), so each module can be driven alone by a unit
 *   test with agent_loop_once().
 *
 *   agent_now_ms() is the monotonic clock every timeout is measured with;
 *   agent_clock_skip() moves it forward, for tests of timeouts that are minutes long.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

/* Added to the monotonic clock (agent_clock_skip()). */
static uint64_t clock_skip_ms;

/**
 * agent_log() - a line on stderr with the program prefix
 * @a:		agent (unused, for symmetry)
 * @fmt:	printf format
 */
void agent_log(struct agent *a, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	(void)a;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "microvm-agent: %s\n", buf);
}

/**
 * agent_debug() - agent_log() when --verbose
 * @a:		agent
 * @fmt:	printf format
 */
void agent_debug(struct agent *a, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!a->opts.verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	agent_log(a, "%s", buf);
}

/**
 * agent_now_ms() - monotonic clock in milliseconds
 *
 * Return: milliseconds (plus whatever agent_clock_skip() added)
 */
uint64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + clock_skip_ms;
}

/**
 * agent_clock_skip() - move agent_now_ms() forward (tests of long timeouts)
 * @ms:		milliseconds to add
 */
void agent_clock_skip(uint64_t ms)
{
	clock_skip_ms += ms;
}

/**
 * agent_ev_set() - register @ev for @mask (0: remove from the epoll set)
 * @a:		agent
 * @ev:		registration (fd set)
 * @mask:	EPOLLIN/EPOLLOUT/...
 *
 * Return: 0 or -errno
 */
int agent_ev_set(struct agent *a, struct agent_ev *ev, uint32_t mask)
{
	struct epoll_event e = { .events = mask, .data.ptr = ev };
	int op;

	if (ev->fd < 0 || mask == ev->mask)
		return 0;
	if (!mask)
		op = EPOLL_CTL_DEL;
	else if (!ev->mask)
		op = EPOLL_CTL_ADD;
	else
		op = EPOLL_CTL_MOD;
	if (epoll_ctl(a->epfd, op, ev->fd, &e) < 0)
		return -errno;
	ev->mask = mask;
	return 0;
}

/**
 * agent_ev_close() - unregister and close @ev's descriptor
 * @a:		agent
 * @ev:		registration; fd becomes -1
 */
void agent_ev_close(struct agent *a, struct agent_ev *ev)
{
	if (ev->fd < 0)
		return;
	if (ev->mask)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
	close(ev->fd);
	ev->fd = -1;
	ev->mask = 0;
}

/**
 * agent_defer_free() - free @p after the current batch of events
 * @a:		agent
 * @p:		heap object
 */
void agent_defer_free(struct agent *a, void *p)
{
	if (a->ngrave == a->cgrave) {
		size_t nc = a->cgrave ? a->cgrave * 2 : 64;
		void **g = realloc(a->graveyard, nc * sizeof(*g));

		if (!g) {
			/* Leaking beats a use-after-free. */
			agent_log(a, "out of memory; leaking %p", p);
			return;
		}
		a->graveyard = g;
		a->cgrave = nc;
	}
	a->graveyard[a->ngrave++] = p;
}

/**
 * bury() - free what agent_defer_free() collected
 * @a:		agent
 */
static void bury(struct agent *a)
{
	for (size_t i = 0; i < a->ngrave; i++)
		free(a->graveyard[i]);
	a->ngrave = 0;
}

/**
 * agent_on_tick() - call @fn on every tick (250 ms), after the ones added before
 * @a:		agent
 * @fn:		the function
 *
 * Return: 0, or -ENOSPC when AGENT_TICK_MAX functions are registered already
 */
int agent_on_tick(struct agent *a, void (*fn)(struct agent *a))
{
	if (a->nticks == AGENT_TICK_MAX)
		return -ENOSPC;
	a->ticks[a->nticks++] = fn;
	return 0;
}

/**
 * agent_on_child() - call @fn when a child process changed state (SIGCHLD)
 * @a:		agent
 * @fn:		the function (it reaps with waitpid()); NULL: nobody
 */
void agent_on_child(struct agent *a, void (*fn)(struct agent *a))
{
	a->on_child = fn;
}

/**
 * agent_tick() - run every registered tick function once
 * @a:		agent
 */
void agent_tick(struct agent *a)
{
	for (size_t i = 0; i < a->nticks; i++)
		a->ticks[i](a);
}

/**
 * on_signal() - SIGCHLD goes to the child handler, SIGTERM/SIGINT end the loop
 * @a:		agent
 * @ev:		the signalfd
 * @events:	unused
 */
static void on_signal(struct agent *a, struct agent_ev *ev, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)events;
	while (read(ev->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			if (a->on_child)
				a->on_child(a);
		} else if (a->quit < 0) {
			agent_log(a, "signal %u: exiting", si.ssi_signo);
			a->quit = 0;
		}
	}
}

/**
 * on_tick() - the timerfd expired: run the tick functions
 * @a:		agent
 * @ev:		the timerfd
 * @events:	unused
 */
static void on_tick(struct agent *a, struct agent_ev *ev, uint32_t events)
{
	uint64_t n;

	(void)events;
	if (read(ev->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	agent_tick(a);
}

/**
 * agent_loop_init() - the epoll instance, the signalfd and the 250 ms tick
 * @a:		agent
 *
 * Blocks SIGCHLD, SIGTERM and SIGINT (they arrive through the signalfd) and ignores
 * SIGPIPE. Undone by agent_loop_fini().
 *
 * Return: 0 or -errno
 */
int agent_loop_init(struct agent *a)
{
	struct itimerspec its = { .it_interval = { 0, 250000000 }, .it_value = { 0, 250000000 } };
	sigset_t set;

	a->sig_ev.fd = a->tick_ev.fd = -1;
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->epfd < 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	a->sig_ev.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	a->sig_ev.cb = on_signal;
	a->tick_ev.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	a->tick_ev.cb = on_tick;
	if (a->sig_ev.fd < 0 || a->tick_ev.fd < 0 ||
	    timerfd_settime(a->tick_ev.fd, 0, &its, NULL) < 0)
		return -errno;
	if (agent_ev_set(a, &a->sig_ev, EPOLLIN) || agent_ev_set(a, &a->tick_ev, EPOLLIN))
		return -errno;
	return 0;
}

/**
 * agent_loop_once() - wait up to @timeout_ms for events and dispatch one batch
 * @a:		agent
 * @timeout_ms:	epoll_wait() timeout (-1: until something happens)
 *
 * Return: events dispatched (0 on timeout), or -errno from epoll_wait() (-EINTR included)
 */
int agent_loop_once(struct agent *a, int timeout_ms)
{
	struct epoll_event evs[64];
	int n = epoll_wait(a->epfd, evs, 64, timeout_ms);

	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		struct agent_ev *ev = evs[i].data.ptr;

		if (ev->fd >= 0)
			ev->cb(a, ev, evs[i].events);
	}
	bury(a);
	return n;
}

/**
 * agent_loop_run() - the event loop, until a->quit is set
 * @a:		agent
 */
void agent_loop_run(struct agent *a)
{
	while (a->quit < 0) {
		int n = agent_loop_once(a, -1);

		if (n == -EINTR)
			continue;
		if (n < 0) {
			agent_log(a, "epoll_wait: %s", strerror(-n));
			a->quit = 1;
			break;
		}
	}
}

/**
 * agent_loop_fini() - free deferred objects, close the loop's descriptors
 * @a:		agent (modules already finished: they unregister from the epoll set)
 */
void agent_loop_fini(struct agent *a)
{
	bury(a);
	free(a->graveyard);
	a->graveyard = NULL;
	a->cgrave = 0;
	agent_ev_close(a, &a->sig_ev);
	agent_ev_close(a, &a->tick_ev);
	if (a->epfd >= 0)
		close(a->epfd);
	a->epfd = -1;
	a->nticks = 0;
	a->on_child = NULL;
}
