/* SPDX-License-Identifier: MIT */
/*
 * console.c - fan the guest's console output out to any number of subscribers.
 *
 * Theory of operation
 * -------------------
 * One ring of CONSOLE_RING_SIZE bytes holds the most recent output; @head counts every byte
 * ever written, so byte number n lives at ring[n % CONSOLE_RING_SIZE] while n >= head - size.
 * The producer (a vCPU thread emulating the UART) only copies into the ring under a mutex and
 * signals a condition variable: it never waits for a subscriber.
 *
 * Each subscriber has a cursor (the number of the next byte it gets) and its own delivery
 * thread.  The thread copies a chunk out of the ring under the lock, then calls the callback
 * or writes the file descriptor without the lock.  If the producer has overwritten bytes the
 * subscriber had not seen yet (it is more than a ring behind), the cursor jumps forward to the
 * oldest byte still kept and the jump is added to the subscriber's lost counter, passed with the
 * next delivery.  A new subscriber starts at the oldest kept byte, which replays the last
 * 64 KiB.  One thread per subscriber keeps a blocked file descriptor from delaying the others.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/console.h"

#define CONSOLE_CHUNK	4096

/**
 * struct console_sub - one subscriber
 * @id:		handle returned to the caller
 * @cb/@opaque:	callback, or NULL for a file descriptor subscriber
 * @fd:		file descriptor (when @cb is NULL)
 * @pos:	number of the next byte to deliver
 * @lost:	bytes skipped since the last delivery
 * @quit:	set by unsubscribe; the thread exits
 * @busy:	the thread is delivering outside the lock
 * @self_free:	unsubscribed from its own callback: the thread frees @sub when it ends
 * @thread:	delivery thread
 * @next:	list link
 */
struct console_sub {
	int id;
	mvm_console_cb cb;
	void *opaque;
	int fd;
	uint64_t pos;
	uint64_t lost;
	bool quit;
	bool busy;
	bool self_free;
	pthread_t thread;
	struct console *con;
	struct console_sub *next;
};

struct console {
	pthread_mutex_t lock;
	pthread_cond_t more;	/* new output, or a subscriber should quit */
	pthread_cond_t moved;	/* a subscriber advanced (for console_drain) */
	uint8_t ring[CONSOLE_RING_SIZE];
	uint64_t head;
	int next_id;
	struct console_sub *subs;
};

/**
 * console_new() - an empty console
 * Return: the console, or NULL (out of memory).
 */
struct console *console_new(void)
{
	struct console *con = calloc(1, sizeof(*con));

	if (!con)
		return NULL;
	pthread_mutex_init(&con->lock, NULL);
	pthread_cond_init(&con->more, NULL);
	pthread_cond_init(&con->moved, NULL);
	return con;
}

/**
 * console_output() - append guest output; never waits for a subscriber
 * @con:	console
 * @data/@len:	bytes
 */
void console_output(struct console *con, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t off, n;

	if (!len)
		return;
	pthread_mutex_lock(&con->lock);
	if (len > CONSOLE_RING_SIZE) {	/* only the tail can be kept */
		p += len - CONSOLE_RING_SIZE;
		con->head += len - CONSOLE_RING_SIZE;
		len = CONSOLE_RING_SIZE;
	}
	while (len) {
		off = con->head % CONSOLE_RING_SIZE;
		n = CONSOLE_RING_SIZE - off;
		if (n > len)
			n = len;
		memcpy(con->ring + off, p, n);
		con->head += n;
		p += n;
		len -= n;
	}
	pthread_cond_broadcast(&con->more);
	pthread_mutex_unlock(&con->lock);
}

/**
 * console_total() - bytes written since the console was created
 */
uint64_t console_total(struct console *con)
{
	uint64_t h;

	pthread_mutex_lock(&con->lock);
	h = con->head;
	pthread_mutex_unlock(&con->lock);
	return h;
}

/**
 * console_deliver() - hand bytes to a subscriber (called without the lock)
 * @sub:	subscriber
 * @buf/@len:	bytes
 * @lost:	bytes skipped before these
 */
static void console_deliver(struct console_sub *sub, const uint8_t *buf, size_t len,
			    uint64_t lost)
{
	ssize_t w;

	if (sub->cb) {
		sub->cb(sub->opaque, buf, len, lost);
		return;
	}
	while (len) {
		w = write(sub->fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;	/* a broken fd just stops receiving */
		buf += w;
		len -= (size_t)w;
	}
}

/**
 * console_sub_thread() - delivery loop of one subscriber
 * @arg:	the &struct console_sub
 * Return: NULL
 */
static void *console_sub_thread(void *arg)
{
	struct console_sub *sub = arg;
	struct console *con = sub->con;
	uint8_t buf[CONSOLE_CHUNK];
	uint64_t lost, oldest;
	size_t n, off;

	pthread_mutex_lock(&con->lock);
	while (!sub->quit) {
		if (sub->pos == con->head) {
			pthread_cond_wait(&con->more, &con->lock);
			continue;
		}
		oldest = con->head > CONSOLE_RING_SIZE ? con->head - CONSOLE_RING_SIZE : 0;
		if (sub->pos < oldest) {
			sub->lost += oldest - sub->pos;
			sub->pos = oldest;
		}
		n = (size_t)(con->head - sub->pos);
		if (n > sizeof(buf))
			n = sizeof(buf);
		off = sub->pos % CONSOLE_RING_SIZE;
		if (n > CONSOLE_RING_SIZE - off)
			n = CONSOLE_RING_SIZE - off;
		memcpy(buf, con->ring + off, n);
		lost = sub->lost;
		sub->lost = 0;
		sub->busy = true;
		pthread_mutex_unlock(&con->lock);

		console_deliver(sub, buf, n, lost);

		pthread_mutex_lock(&con->lock);
		sub->busy = false;
		/* The ring may have lapped us meanwhile: the copy was valid when taken. */
		sub->pos += n;
		pthread_cond_broadcast(&con->moved);
	}
	pthread_mutex_unlock(&con->lock);
	if (sub->self_free)
		free(sub);
	return NULL;
}

/**
 * console_add() - register a subscriber and start its thread
 * Return: the id (>= 0) or -errno.
 */
static int console_add(struct console *con, mvm_console_cb cb, void *opaque, int fd)
{
	struct console_sub *sub = calloc(1, sizeof(*sub));
	int id;

	if (!sub)
		return -ENOMEM;
	sub->cb = cb;
	sub->opaque = opaque;
	sub->fd = fd;
	sub->con = con;
	pthread_mutex_lock(&con->lock);
	sub->id = id = con->next_id++;
	sub->pos = con->head > CONSOLE_RING_SIZE ? con->head - CONSOLE_RING_SIZE : 0;
	if (pthread_create(&sub->thread, NULL, console_sub_thread, sub)) {
		pthread_mutex_unlock(&con->lock);
		free(sub);
		return -EAGAIN;
	}
	sub->next = con->subs;
	con->subs = sub;
	pthread_mutex_unlock(&con->lock);
	return id;
}

/**
 * console_subscribe() - deliver output to @cb (from a console thread), starting with the replay
 * Return: subscription id (>= 0) or -errno.
 */
int console_subscribe(struct console *con, mvm_console_cb cb, void *opaque)
{
	if (!cb)
		return -EINVAL;
	return console_add(con, cb, opaque, -1);
}

/**
 * console_subscribe_fd() - write output to @fd (a blocked fd only delays itself)
 * Return: subscription id (>= 0) or -errno.
 */
int console_subscribe_fd(struct console *con, int fd)
{
	if (fd < 0)
		return -EBADF;
	return console_add(con, NULL, NULL, fd);
}

/**
 * console_unsubscribe() - stop a subscription; no callback runs after this returns
 * (unless called from that subscriber's own callback, which is allowed)
 * @id:		subscription id; unknown ids are ignored
 */
void console_unsubscribe(struct console *con, int id)
{
	struct console_sub **pp, *sub = NULL;

	pthread_mutex_lock(&con->lock);
	for (pp = &con->subs; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			sub = *pp;
			*pp = sub->next;
			break;
		}
	}
	if (sub) {
		sub->quit = true;
		sub->self_free = pthread_equal(sub->thread, pthread_self());
		pthread_cond_broadcast(&con->more);
	}
	pthread_mutex_unlock(&con->lock);
	if (!sub)
		return;
	if (sub->self_free) {
		pthread_detach(sub->thread);
		return;
	}
	pthread_join(sub->thread, NULL);
	free(sub);
}

/**
 * console_drain() - wait until every subscriber has been handed everything written so far
 * @timeout_ms:	negative waits forever
 * Return: 0, or -ETIMEDOUT.
 */
int console_drain(struct console *con, int timeout_ms)
{
	struct console_sub *sub;
	struct timespec dl;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	if (timeout_ms >= 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&con->lock);
	for (;;) {
		for (sub = con->subs; sub; sub = sub->next)
			if (sub->pos != con->head || sub->busy)
				break;
		if (!sub)
			break;
		if (timeout_ms < 0) {
			pthread_cond_wait(&con->moved, &con->lock);
		} else if (pthread_cond_timedwait(&con->moved, &con->lock, &dl)) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&con->lock);
	return ret;
}

/**
 * console_free() - unsubscribe everyone and free the console
 */
void console_free(struct console *con)
{
	if (!con)
		return;
	for (;;) {
		int id;

		pthread_mutex_lock(&con->lock);
		id = con->subs ? con->subs->id : -1;
		pthread_mutex_unlock(&con->lock);
		if (id < 0)
			break;
		console_unsubscribe(con, id);
	}
	pthread_cond_destroy(&con->more);
	pthread_cond_destroy(&con->moved);
	pthread_mutex_destroy(&con->lock);
	free(con);
}
