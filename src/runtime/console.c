/* SPDX-License-Identifier: MIT */
/*
 * console.c - fan the guest's console output out to any number of subscribers.
 *
 * Theory of operation
 * -------------------
 * One ring of CONSOLE_RING_SIZE bytes holds the most recent output; @head counts every byte
 * ever written, so byte number n lives at ring[n % CONSOLE_RING_SIZE] while n >= head - size.
 * The producer (a vCPU thread emulating the UART) only copies into the ring under a mutex and,
 * when anyone subscribes, pokes the delivery loop with uv_async_send() (which never blocks and
 * coalesces): it never waits for a subscriber.
 *
 * Delivery: one libuv loop per console, on a thread started by the first subscription
 * (runtime/loop_thread.c), serves every subscriber.  Each subscriber has a cursor (the number of
 * the next byte it gets).  A pass of the loop hands each subscriber that is behind and not busy
 * one chunk copied out of the ring under the lock (round robin, so a fast producer cannot make one
 * subscriber starve another), passes repeat while anyone made progress (at most CONSOLE_PASSES,
 * then the loop re-pokes itself so that write completions get their turn).  If the producer has
 * overwritten bytes a subscriber had not seen yet (it is more than a ring behind), the cursor
 * jumps to the oldest byte still kept and the jump is added to its lost counter, passed with the
 * next delivery.  A new subscriber starts at the oldest kept byte, which replays the last 64 KiB.
 * console_read() copies those kept bytes out once, under the lock, for a caller that wants what
 * is there now and no stream (`microvm console --no-follow`).
 *
 * - A callback subscriber is called on the loop thread, without the lock, one chunk at a
 *   time; all callbacks of a console share that thread, so a callback must hand the bytes off
 *   rather than block (a blocked callback delays the console's other subscribers, never the
 *   guest, and they lose bytes rather than memory if it lasts).
 * - A file descriptor subscriber gets its own copy of the descriptor (a FIFO is reopened
 *   through /proc/self/fd so that O_NONBLOCK is set on a description of our own, not the
 *   caller's; a terminal is reopened by uv_tty_init() for the same reason; other streams are
 *   dup()ed) made into a libuv stream, and each chunk is a uv_write(): a blocked descriptor
 *   only keeps its own write pending, so it never delays the others.  Regular files (which
 *   cannot block, nor be polled) are written synchronously.  A descriptor whose write fails
 *   gets nothing more.
 *
 * Unsubscribe from another thread marks the subscriber, wakes the loop and waits until the
 * loop has unlinked it and closed its stream (so no callback runs after it returns).  From
 * the loop thread - inside a callback, for its own subscription or another - it unlinks at
 * once and the loop frees the subscriber when its callback or stream is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#ifdef _WIN32
#include <io.h>
#endif

#include "runtime/console.h"
#include "runtime/loop_thread.h"

#define CONSOLE_CHUNK	4096
#define CONSOLE_PASSES	64	/* delivery passes per wake-up of the loop */

enum console_kind {
	CONSOLE_CB,	/* a callback, called on the loop thread */
	CONSOLE_STREAM,	/* a descriptor written with uv_write() */
	CONSOLE_SYNC,	/* a descriptor written with write() (regular files) */
};

/**
 * struct console_sub - one subscriber (fields under @con->lock unless said otherwise)
 * @id:		handle returned to the caller
 * @kind:	see &enum console_kind
 * @cb/@opaque:	callback (CONSOLE_CB)
 * @fd:		our own copy of the caller's descriptor until a stream takes it over, else -1
 * @pos:	number of the next byte to deliver
 * @lost:	bytes skipped since the last delivery
 * @pass:	the last delivery pass that served this subscriber
 * @opened:	@u is an initialised libuv handle (loop thread)
 * @busy:	its callback runs, or a write is in flight (@inflight bytes of @buf)
 * @broken:	a write failed: it gets nothing more (and drain does not wait for it)
 * @removing:	unsubscribe asked; the loop unlinks and retires it
 * @gone:	retired: no callback or write any more, the stream is closed
 * @orphan:	no thread waits for @gone: the loop frees the subscriber
 */
struct console_sub {
	int id;
	enum console_kind kind;
	mvm_console_cb cb;
	void *opaque;
	int fd;
	uint64_t pos;
	uint64_t lost;
	unsigned int pass;
	bool opened;
	bool busy;
	bool broken;
	bool removing;
	bool gone;
	bool orphan;
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_pipe_t pipe;
		uv_tty_t tty;
		uv_tcp_t tcp;
	} u;
	uv_write_t req;
	size_t inflight;
	uint8_t buf[CONSOLE_CHUNK];
	struct console *con;
	struct console_sub *next;
};

/**
 * struct console - the ring, the subscribers and the delivery loop
 * @moved:	a subscriber advanced or was retired (for drain and unsubscribe)
 * @lt:		the delivery loop on its thread, started by the first subscription; its wake
 *		handle asks for a delivery pass, or to end (@quit)
 * @pass:	number of the current delivery pass (loop thread)
 */
struct console {
	pthread_mutex_t lock;
	pthread_cond_t moved;
	uint8_t ring[CONSOLE_RING_SIZE];
	uint64_t head;
	int next_id;
	struct console_sub *subs;
	struct loop_thread lt;
	bool quit;
	unsigned int pass;
};

static void console_pump(struct console *con);

/**
 * console_new() - an empty console (its delivery thread starts with the first subscriber)
 * Return: the console, or NULL (out of memory).
 */
struct console *console_new(void)
{
	struct console *con = calloc(1, sizeof(*con));

	if (!con)
		return NULL;
	pthread_mutex_init(&con->lock, NULL);
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
	bool poke;

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
	poke = con->subs != NULL;
	pthread_mutex_unlock(&con->lock);
	if (poke)
		uv_async_send(&con->lt.wake);
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
 * console_read() - copy out what the ring holds now, without subscribing
 * @con:	console
 * @buf/@size:	where to; when the ring holds more than @size bytes, the most recent ones
 * @total:	if not NULL, set to console_total() at the same instant
 *
 * One copy under the lock, so a producer writing meanwhile is either wholly in or wholly out.
 *
 * Return: bytes copied (0 for a console that has had no output yet).
 */
size_t console_read(struct console *con, void *buf, size_t size, uint64_t *total)
{
	uint8_t *out = buf;
	size_t n, off, first;

	pthread_mutex_lock(&con->lock);
	n = con->head < CONSOLE_RING_SIZE ? (size_t)con->head : CONSOLE_RING_SIZE;
	if (n > size)
		n = size;
	off = (size_t)((con->head - n) % CONSOLE_RING_SIZE);
	first = CONSOLE_RING_SIZE - off < n ? CONSOLE_RING_SIZE - off : n;
	if (n) {	/* @buf may be NULL when @size is 0 */
		memcpy(out, con->ring + off, first);
		memcpy(out + first, con->ring, n - first);
	}
	if (total)
		*total = con->head;
	pthread_mutex_unlock(&con->lock);
	return n;
}

/** console_on_loop() - whether the caller is the delivery thread (lock held) */
static bool console_on_loop(struct console *con)
{
	return loop_thread_is_current(&con->lt);
}

/**
 * console_closed() - uv_close callback of a subscriber's stream: the subscriber is gone
 * @h:	the stream
 */
static void console_closed(uv_handle_t *h)
{
	struct console_sub *sub = h->data;
	struct console *con = sub->con;
	bool orphan;

	pthread_mutex_lock(&con->lock);
	sub->gone = true;
	orphan = sub->orphan;
	pthread_cond_broadcast(&con->moved);
	pthread_mutex_unlock(&con->lock);
	if (orphan)
		free(sub);
}

/**
 * console_retire() - on the loop thread: close an unlinked subscriber's stream, mark it gone
 * (lock held)
 * @sub:	the subscriber; freed here or by console_closed() when it is an orphan
 */
static void console_retire(struct console *con, struct console_sub *sub)
{
	if (sub->opened) {
		sub->opened = false;
		uv_close(&sub->u.h, console_closed);	/* cancels a pending write first */
		return;
	}
	if (sub->fd >= 0)
		close(sub->fd);
	sub->fd = -1;
	sub->gone = true;
	pthread_cond_broadcast(&con->moved);
	if (sub->orphan)
		free(sub);
}

/**
 * console_open() - on the loop thread: make a descriptor subscriber's copy a libuv stream
 * @sub:	a CONSOLE_STREAM subscriber not yet opened
 *
 * The stream owns the descriptor afterwards (uv_tty_init() may have swapped in a reopened
 * terminal: then our copy is closed here).  A descriptor libuv cannot take is written
 * synchronously instead.
 */
static void console_open(struct console *con, struct console_sub *sub)
{
#ifndef _WIN32
	uv_os_fd_t ufd;
#endif
	int rc;

	switch (uv_guess_handle(sub->fd)) {
	case UV_TTY:
		rc = uv_tty_init(&con->lt.loop, &sub->u.tty, sub->fd, 0);
		break;
	case UV_NAMED_PIPE:
		rc = uv_pipe_init(&con->lt.loop, &sub->u.pipe, 0);
		if (rc == 0) {
			sub->opened = true;
			rc = uv_pipe_open(&sub->u.pipe, sub->fd);
		}
		break;
#ifndef _WIN32
	case UV_TCP:
		rc = uv_tcp_init(&con->lt.loop, &sub->u.tcp);
		if (rc == 0) {
			sub->opened = true;
			rc = uv_tcp_open(&sub->u.tcp, sub->fd);
		}
		break;
#endif
	default:
		sub->kind = CONSOLE_SYNC;
		return;
	}
	if (rc && !sub->opened) {	/* no handle: write it synchronously */
		sub->kind = CONSOLE_SYNC;
		return;
	}
	sub->opened = true;
	sub->u.h.data = sub;
	if (rc) {
		/* the handle exists (closed on retire) but is unusable; it never took our copy */
		sub->broken = true;
		close(sub->fd);
		sub->fd = -1;
		return;
	}
#ifndef _WIN32
	if (uv_fileno(&sub->u.h, &ufd) == 0 && ufd != sub->fd)
		close(sub->fd);
#endif
	sub->fd = -1;
}

/**
 * console_write_sync() - write a chunk to a regular file (called without the lock)
 * Return: 0, or -1 when the descriptor failed (it gets nothing more).
 */
static int console_write_sync(int fd, const uint8_t *buf, size_t len)
{
	ssize_t w;

	while (len) {
		w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/**
 * console_written() - uv_write callback: the chunk is out (or the stream failed or closes)
 * @req:	the subscriber's write request
 * @status:	0, UV_ECANCELED (the stream is being closed), or an error
 */
static void console_written(uv_write_t *req, int status)
{
	struct console_sub *sub = req->data;
	struct console *con = sub->con;

	pthread_mutex_lock(&con->lock);
	sub->busy = false;
	if (status == 0)
		sub->pos += sub->inflight;
	else if (status != UV_ECANCELED)
		sub->broken = true;
	pthread_cond_broadcast(&con->moved);
	pthread_mutex_unlock(&con->lock);
	if (status == 0)
		console_pump(con);	/* its next chunk, if any */
}

/**
 * console_serve() - hand one chunk to a subscriber, on the loop thread (lock held; dropped
 * around a callback or a synchronous write)
 * Return: true if something was delivered or started.
 */
static bool console_serve(struct console *con, struct console_sub *sub)
{
	uint64_t lost, oldest;
	size_t n, off;
	uv_buf_t b;
	int rc = 0;

	if (sub->kind == CONSOLE_STREAM && !sub->opened && !sub->broken)
		console_open(con, sub);
	if (sub->busy || sub->broken || sub->pos == con->head)
		return false;
	oldest = con->head > CONSOLE_RING_SIZE ? con->head - CONSOLE_RING_SIZE : 0;
	if (sub->pos < oldest) {
		sub->lost += oldest - sub->pos;
		sub->pos = oldest;
	}
	n = (size_t)(con->head - sub->pos);
	if (n > sizeof(sub->buf))
		n = sizeof(sub->buf);
	off = sub->pos % CONSOLE_RING_SIZE;
	if (n > CONSOLE_RING_SIZE - off)
		n = CONSOLE_RING_SIZE - off;
	memcpy(sub->buf, con->ring + off, n);
	lost = sub->lost;
	sub->lost = 0;
	sub->busy = true;
	if (sub->kind == CONSOLE_STREAM) {
		/* a descriptor is not told about lost bytes: it gets the output as it comes */
		b = uv_buf_init((char *)sub->buf, (unsigned int)n);
		sub->inflight = n;
		sub->req.data = sub;
		if (uv_write(&sub->req, &sub->u.s, &b, 1, console_written)) {
			sub->busy = false;
			sub->broken = true;
		}
		return true;
	}
	pthread_mutex_unlock(&con->lock);
	if (sub->kind == CONSOLE_CB)
		sub->cb(sub->opaque, sub->buf, n, lost);
	else
		rc = console_write_sync(sub->fd, sub->buf, n);
	pthread_mutex_lock(&con->lock);
	sub->busy = false;
	/* The ring may have lapped us meanwhile: the copy was valid when taken. */
	sub->pos += n;
	if (rc)
		sub->broken = true;
	if (sub->removing && sub->orphan)	/* it unsubscribed itself: already unlinked */
		console_retire(con, sub);
	return true;
}

/**
 * console_pass() - one delivery pass: a chunk for every subscriber behind (lock held)
 * Return: true if anyone made progress.
 *
 * Unsubscribed subscribers are unlinked and retired on the way.  A callback may change the
 * list, so after one the scan restarts; @pass marks who was served already.
 */
static bool console_pass(struct console *con)
{
	struct console_sub **pp, *sub;
	bool progress = false;

restart:
	for (pp = &con->subs; (sub = *pp); pp = &sub->next) {
		if (sub->removing) {
			*pp = sub->next;
			console_retire(con, sub);
			goto restart;
		}
		if (sub->pass == con->pass)
			continue;
		sub->pass = con->pass;
		if (console_serve(con, sub)) {
			progress = true;
			goto restart;
		}
	}
	return progress;
}

/**
 * console_pump() - on the loop thread: deliver until everyone is served or blocked
 */
static void console_pump(struct console *con)
{
	int i;

	pthread_mutex_lock(&con->lock);
	for (i = 0; i < CONSOLE_PASSES; i++) {
		con->pass++;
		if (!console_pass(con))
			break;
	}
	if (i == CONSOLE_PASSES)
		uv_async_send(&con->lt.wake);	/* more to do: let write completions run first */
	pthread_cond_broadcast(&con->moved);
	pthread_mutex_unlock(&con->lock);
}

/**
 * console_wake() - uv_async callback: new output, subscribers, unsubscribes, or the end
 */
static void console_wake(uv_async_t *a)
{
	struct console *con = a->data;
	bool quit;

	console_pump(con);
	pthread_mutex_lock(&con->lock);
	quit = con->quit;
	pthread_mutex_unlock(&con->lock);
	if (quit)
		loop_thread_end(&con->lt);	/* the streams are closed: uv_run ends */
}

/**
 * console_own_fd() - a descriptor of our own for the caller's @fd (>= 3, close-on-exec)
 * Return: the descriptor or -errno.
 *
 * A FIFO is reopened (a new open file description: our O_NONBLOCK is not the caller's); the
 * rest is duplicated (a terminal is reopened later by uv_tty_init()).
 */
static int console_own_fd(int fd)
{
#ifdef _WIN32
	int own = _dup(fd);

	return own < 0 ? -errno : own;
#else
	struct stat st;
	char path[64];
	int own, hi;

	if (fstat(fd, &st))
		return -errno;
	own = -1;
	if (S_ISFIFO(st.st_mode)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		own = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	}
	if (own < 0)
		own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	else if (own < 3) {	/* the caller closed its stdio: keep libuv's hands off 0-2 */
		hi = fcntl(own, F_DUPFD_CLOEXEC, 3);
		close(own);
		own = hi;
	}
	return own < 0 ? -errno : own;
#endif
}

/**
 * console_add() - register a subscriber; the loop delivers the replay
 * Return: the id (>= 0) or -errno.
 */
static int console_add(struct console *con, mvm_console_cb cb, void *opaque, int fd)
{
	struct console_sub *sub = calloc(1, sizeof(*sub));
	int id, rc;

	if (!sub)
		return -ENOMEM;
	sub->kind = cb ? CONSOLE_CB : CONSOLE_STREAM;
	sub->cb = cb;
	sub->opaque = opaque;
	sub->fd = -1;
	sub->con = con;
	if (fd >= 0) {
		sub->fd = console_own_fd(fd);
		if (sub->fd < 0) {
			rc = sub->fd;
			free(sub);
			return rc;
		}
	}
	pthread_mutex_lock(&con->lock);
	rc = loop_thread_start(&con->lt, console_wake, con);
	if (rc) {
		pthread_mutex_unlock(&con->lock);
		if (sub->fd >= 0)
			close(sub->fd);
		free(sub);
		return rc;
	}
	sub->id = id = con->next_id++;
	sub->pos = con->head > CONSOLE_RING_SIZE ? con->head - CONSOLE_RING_SIZE : 0;
	sub->next = con->subs;
	con->subs = sub;
	pthread_mutex_unlock(&con->lock);
	uv_async_send(&con->lt.wake);
	return id;
}

/**
 * console_subscribe() - deliver output to @cb (on the delivery thread), starting with the
 * replay
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
 * Return: subscription id (>= 0) or -errno (-EBADF for a bad descriptor).
 */
int console_subscribe_fd(struct console *con, int fd)
{
	if (fd < 0)
		return -EBADF;
	return console_add(con, NULL, NULL, fd);
}

/**
 * console_unsubscribe() - stop a subscription; no callback runs after this returns
 * (unless called from a callback, which is allowed: then the subscription gets nothing more
 * once that callback returns)
 * @id:		subscription id; unknown ids are ignored
 */
void console_unsubscribe(struct console *con, int id)
{
	struct console_sub **pp, *sub = NULL;

	pthread_mutex_lock(&con->lock);
	for (pp = &con->subs; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id && !(*pp)->removing) {
			sub = *pp;
			break;
		}
	}
	if (!sub) {
		pthread_mutex_unlock(&con->lock);
		return;
	}
	sub->removing = true;
	if (console_on_loop(con)) {
		*pp = sub->next;
		sub->orphan = true;
		/* a callback running (its own) retires it when it returns: console_serve() */
		if (!(sub->busy && sub->kind != CONSOLE_STREAM))
			console_retire(con, sub);
		pthread_mutex_unlock(&con->lock);
		return;
	}
	uv_async_send(&con->lt.wake);
	while (!sub->gone)
		pthread_cond_wait(&con->moved, &con->lock);
	pthread_mutex_unlock(&con->lock);
	free(sub);
}

/**
 * console_drain() - wait until every subscriber has been handed everything written so far
 * (a subscriber whose descriptor failed excepted)
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
			if (!sub->removing && !sub->broken && (sub->pos != con->head || sub->busy))
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
 * console_free() - unsubscribe everyone, end the delivery thread and free the console
 * (not from a console callback: it waits for that thread)
 */
void console_free(struct console *con)
{
	bool started;

	if (!con)
		return;
	for (;;) {
		int id = -1;
		struct console_sub *sub;

		pthread_mutex_lock(&con->lock);
		for (sub = con->subs; sub; sub = sub->next)
			if (!sub->removing) {
				id = sub->id;
				break;
			}
		pthread_mutex_unlock(&con->lock);
		if (id < 0)
			break;
		console_unsubscribe(con, id);
	}
	pthread_mutex_lock(&con->lock);
	started = con->lt.started;
	con->quit = true;
	pthread_mutex_unlock(&con->lock);
	if (started)
		uv_async_send(&con->lt.wake);
	loop_thread_join(&con->lt);
	pthread_cond_destroy(&con->moved);
	pthread_mutex_destroy(&con->lock);
	free(con);
}
