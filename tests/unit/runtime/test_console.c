/* SPDX-License-Identifier: MIT */
/*
 * test_console.c - console fan-out: replay, slow subscribers (callbacks and blocked
 * descriptors), unsubscribe (from other threads and from callbacks), fd subscribers, and
 * console_read() snapshots (empty, partial, wrapped, smaller buffers).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/console.h"

struct sink {
	pthread_mutex_t lock;
	uint8_t *buf;
	size_t len, cap;
	uint64_t lost;
	unsigned int calls;
	sem_t *gate;		/* if set, the first call waits on it */
};

static void sink_init(struct sink *s, size_t cap)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->buf = malloc(cap);
	s->cap = cap;
}

static void sink_fini(struct sink *s)
{
	free(s->buf);
	pthread_mutex_destroy(&s->lock);
}

static void sink_cb(void *opaque, const uint8_t *data, size_t len, uint64_t lost)
{
	struct sink *s = opaque;

	if (s->gate && s->calls == 0)
		sem_wait(s->gate);
	pthread_mutex_lock(&s->lock);
	s->calls++;
	s->lost += lost;
	if (s->len + len <= s->cap) {
		memcpy(s->buf + s->len, data, len);
		s->len += len;
	}
	pthread_mutex_unlock(&s->lock);
}

static void test_late_subscriber_gets_replay(void **state)
{
	struct console *con = console_new();
	struct sink early, late;
	int a, b;

	(void)state;
	sink_init(&early, 1024);
	sink_init(&late, 1024);
	a = console_subscribe(con, sink_cb, &early);
	assert_true(a >= 0);
	console_output(con, "hello ", 6);
	b = console_subscribe(con, sink_cb, &late);
	assert_true(b >= 0 && b != a);
	console_output(con, "world", 5);
	assert_int_equal(console_drain(con, 5000), 0);
	assert_int_equal(early.len, 11);
	assert_memory_equal(early.buf, "hello world", 11);
	assert_int_equal(late.len, 11);		/* replayed "hello " first */
	assert_memory_equal(late.buf, "hello world", 11);
	assert_int_equal(early.lost + late.lost, 0);
	console_free(con);
	sink_fini(&early);
	sink_fini(&late);
}

static void test_replay_keeps_only_last_64k(void **state)
{
	struct console *con = console_new();
	static uint8_t data[100000];
	struct sink late;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	console_output(con, data, 30000);
	console_output(con, data + 30000, sizeof(data) - 30000);
	sink_init(&late, sizeof(data));
	assert_true(console_subscribe(con, sink_cb, &late) >= 0);
	assert_int_equal(console_drain(con, 5000), 0);
	assert_int_equal(late.len, CONSOLE_RING_SIZE);
	assert_memory_equal(late.buf, data + sizeof(data) - CONSOLE_RING_SIZE, CONSOLE_RING_SIZE);
	assert_int_equal(late.lost, 0);
	assert_int_equal(console_total(con), sizeof(data));
	console_free(con);
	sink_fini(&late);
}

static void test_read_empty_console(void **state)
{
	struct console *con = console_new();
	uint8_t buf[16];
	uint64_t total = 99;

	(void)state;
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(console_read(con, buf, sizeof(buf), &total), 0);
	assert_int_equal(total, 0);
	assert_int_equal(buf[0], 0xaa);		/* nothing written */
	assert_int_equal(console_read(con, NULL, 0, NULL), 0);
	console_free(con);
}

static void test_read_before_wrap(void **state)
{
	struct console *con = console_new();
	uint8_t buf[64];
	uint64_t total;

	(void)state;
	console_output(con, "hello ", 6);
	console_output(con, "world", 5);
	assert_int_equal(console_read(con, buf, sizeof(buf), &total), 11);
	assert_memory_equal(buf, "hello world", 11);
	assert_int_equal(total, 11);
	/* a smaller buffer gets the most recent bytes */
	assert_int_equal(console_read(con, buf, 5, NULL), 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(console_read(con, buf, 0, &total), 0);
	assert_int_equal(total, 11);
	console_free(con);
}

static void test_read_after_wrap(void **state)
{
	struct console *con = console_new();
	static uint8_t data[150001], buf[CONSOLE_RING_SIZE + 100];
	uint64_t total;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + i / 251);
	/* odd pieces, so that the ring's end falls inside a write and the head is unaligned */
	for (i = 0; i < sizeof(data); i += n) {
		n = sizeof(data) - i < 7919 ? sizeof(data) - i : 7919;
		console_output(con, data + i, n);
	}
	memset(buf, 0, sizeof(buf));
	assert_int_equal(console_read(con, buf, sizeof(buf), &total), CONSOLE_RING_SIZE);
	assert_int_equal(total, sizeof(data));
	assert_memory_equal(buf, data + sizeof(data) - CONSOLE_RING_SIZE, CONSOLE_RING_SIZE);
	/* a buffer smaller than the ring, across the wrap point (head % size != 0) */
	assert_int_equal(console_read(con, buf, 40000, NULL), 40000);
	assert_memory_equal(buf, data + sizeof(data) - 40000, 40000);
	/* one write larger than the ring keeps only its tail */
	console_output(con, data, sizeof(data));
	assert_int_equal(console_read(con, buf, sizeof(buf), &total), CONSOLE_RING_SIZE);
	assert_int_equal(total, 2 * sizeof(data));
	assert_memory_equal(buf, data + sizeof(data) - CONSOLE_RING_SIZE, CONSOLE_RING_SIZE);
	console_free(con);
}

static void test_slow_subscriber_loses_bytes_not_the_guest(void **state)
{
	struct console *con = console_new();
	struct sink slow, fast;
	static uint8_t chunk[1000];
	struct timespec t0, t1;
	sem_t gate;
	size_t i, total = 300 * sizeof(chunk);

	(void)state;
	sem_init(&gate, 0, 0);
	sink_init(&slow, total);
	sink_init(&fast, total);
	slow.gate = &gate;
	assert_true(console_subscribe(con, sink_cb, &slow) >= 0);
	assert_true(console_subscribe(con, sink_cb, &fast) >= 0);
	console_output(con, "x", 1);	/* the slow one blocks in its first callback */
	usleep(20000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 300; i++) {
		memset(chunk, (int)(i & 0xff), sizeof(chunk));
		console_output(con, chunk, sizeof(chunk));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* the producer never waited for the stuck subscriber */
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2000);
	sem_post(&gate);
	assert_int_equal(console_drain(con, 5000), 0);
	assert_true(slow.lost > 0);
	assert_int_equal(slow.len + slow.lost, total + 1);	/* every byte delivered or counted */
	/* what it did get ends with the newest bytes */
	assert_int_equal(slow.buf[slow.len - 1], 299 & 0xff);
	assert_int_equal(fast.len + fast.lost, total + 1);
	console_free(con);
	sink_fini(&slow);
	sink_fini(&fast);
	sem_destroy(&gate);
}

static void test_unsubscribe_stops_delivery(void **state)
{
	struct console *con = console_new();
	struct sink s;
	int id;

	(void)state;
	sink_init(&s, 1024);
	id = console_subscribe(con, sink_cb, &s);
	console_output(con, "abc", 3);
	assert_int_equal(console_drain(con, 5000), 0);
	console_unsubscribe(con, id);
	console_output(con, "def", 3);
	usleep(20000);
	assert_int_equal(s.len, 3);
	console_unsubscribe(con, id);		/* twice, or an unknown id: harmless */
	console_unsubscribe(con, 12345);
	console_free(con);
	sink_fini(&s);
}

struct self_unsub {
	struct console *con;
	int id;
	int calls;
};

static void self_cb(void *opaque, const uint8_t *data, size_t len, uint64_t lost)
{
	struct self_unsub *u = opaque;

	(void)data; (void)len; (void)lost;
	u->calls++;
	console_unsubscribe(u->con, u->id);
}

static void test_unsubscribe_from_own_callback(void **state)
{
	struct self_unsub u = { .con = console_new(), .calls = 0 };

	(void)state;
	u.id = console_subscribe(u.con, self_cb, &u);
	console_output(u.con, "1", 1);
	usleep(50000);
	console_output(u.con, "2", 1);
	usleep(50000);
	assert_int_equal(u.calls, 1);
	console_free(u.con);
}

/* A callback that unsubscribes another subscription, then its own, from the delivery thread. */
struct unsub_other {
	struct console *con;
	int self, other;
	int calls;
};

static void unsub_other_cb(void *opaque, const uint8_t *data, size_t len, uint64_t lost)
{
	struct unsub_other *u = opaque;

	(void)data; (void)len; (void)lost;
	u->calls++;
	console_unsubscribe(u->con, u->other);
	console_unsubscribe(u->con, u->self);
	console_unsubscribe(u->con, u->self);	/* again: already going, ignored */
}

static void test_unsubscribe_other_from_callback(void **state)
{
	struct unsub_other u = { .con = console_new() };
	struct sink other;

	(void)state;
	sink_init(&other, 1024);
	u.other = console_subscribe(u.con, sink_cb, &other);
	/* subscribed last, served first in a pass: it removes @other before its turn */
	u.self = console_subscribe(u.con, unsub_other_cb, &u);
	console_output(u.con, "x", 1);
	assert_int_equal(console_drain(u.con, 5000), 0);
	console_output(u.con, "y", 1);
	assert_int_equal(console_drain(u.con, 5000), 0);
	usleep(20000);
	assert_int_equal(u.calls, 1);
	assert_int_equal(other.calls, 0);
	console_free(u.con);
	sink_fini(&other);
}

/* Unsubscribe from another thread returns only once a running callback has returned. */
struct gated {
	sem_t entered, gate;
	volatile int in_cb;
};

static void gated_cb(void *opaque, const uint8_t *data, size_t len, uint64_t lost)
{
	struct gated *g = opaque;

	(void)data; (void)len; (void)lost;
	g->in_cb = 1;
	sem_post(&g->entered);
	sem_wait(&g->gate);
	usleep(10000);
	g->in_cb = 0;
}

struct unsub_req {
	struct console *con;
	int id;
	struct gated *g;
	volatile int returned;
	int in_cb_at_return;
};

static void *unsub_thread(void *arg)
{
	struct unsub_req *r = arg;

	console_unsubscribe(r->con, r->id);
	r->in_cb_at_return = r->g->in_cb;
	r->returned = 1;
	return NULL;
}

static void test_unsubscribe_waits_for_callback(void **state)
{
	struct console *con = console_new();
	struct gated g = { .in_cb = 0 };
	struct unsub_req r = { .con = con, .g = &g };
	pthread_t t;

	(void)state;
	sem_init(&g.entered, 0, 0);
	sem_init(&g.gate, 0, 0);
	r.id = console_subscribe(con, gated_cb, &g);
	console_output(con, "z", 1);
	sem_wait(&g.entered);
	assert_int_equal(pthread_create(&t, NULL, unsub_thread, &r), 0);
	usleep(50000);
	assert_int_equal(r.returned, 0);	/* still waiting for the callback */
	sem_post(&g.gate);
	pthread_join(t, NULL);
	assert_int_equal(r.in_cb_at_return, 0);
	console_output(con, "more", 4);
	usleep(20000);
	console_free(con);
	sem_destroy(&g.entered);
	sem_destroy(&g.gate);
}

/*
 * A descriptor nobody reads (a full pipe) delays neither the guest nor the other subscribers;
 * when it is read again it gets the newest bytes, the rest skipped.  The caller's own
 * descriptor stays blocking: the console writes through a description of its own.
 */
static void test_blocked_fd_delays_nobody(void **state)
{
	struct console *con = console_new();
	static uint8_t chunk[1000], got[400000];
	size_t i, n = 0, total = 300 * sizeof(chunk);
	struct sink fast;
	struct timespec t0, t1;
	ssize_t r;
	int p[2], k;

	(void)state;
	assert_int_equal(pipe(p), 0);
	sink_init(&fast, total);
	assert_true(console_subscribe_fd(con, p[1]) >= 0);
	assert_true(console_subscribe(con, sink_cb, &fast) >= 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 300; i++) {
		memset(chunk, (int)(i & 0xff), sizeof(chunk));
		console_output(con, chunk, sizeof(chunk));
		if (i % 50 == 0)
			usleep(2000);	/* let the loop run: the pipe fills up meanwhile */
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2000);
	/* the callback subscriber is served in full while the pipe is stuck */
	for (k = 0; k < 500; k++) {
		pthread_mutex_lock(&fast.lock);
		i = fast.len + fast.lost;
		pthread_mutex_unlock(&fast.lock);
		if (i == total)
			break;
		usleep(10000);
	}
	assert_int_equal(i, total);
	assert_int_equal(console_drain(con, 100), -ETIMEDOUT);	/* the pipe's write waits */
	assert_int_equal(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
	/* read it all: the fd subscriber catches up with the newest bytes */
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (k = 0; k < 500; k++) {
		while ((r = read(p[0], got + n, sizeof(got) - n)) > 0)
			n += (size_t)r;
		if (console_drain(con, 10) == 0)
			break;
	}
	while ((r = read(p[0], got + n, sizeof(got) - n)) > 0)
		n += (size_t)r;
	assert_int_equal(console_drain(con, 0), 0);
	assert_true(n > 0 && n < total);	/* it missed what the ring no longer had */
	assert_int_equal(got[n - 1], 299 & 0xff);
	console_free(con);
	sink_fini(&fast);
	close(p[0]);
	close(p[1]);
}

static void test_fd_subscriber(void **state)
{
	struct console *con = console_new();
	char buf[64] = "";
	int p[2];
	ssize_t n;

	(void)state;
	assert_int_equal(pipe(p), 0);
	console_output(con, "boot ", 5);
	assert_true(console_subscribe_fd(con, p[1]) >= 0);
	console_output(con, "log", 3);
	assert_int_equal(console_drain(con, 5000), 0);
	n = read(p[0], buf, sizeof(buf));
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "boot log", 8);
	assert_int_equal(console_subscribe_fd(con, -1), -EBADF);
	assert_int_equal(console_subscribe(con, NULL, NULL), -EINVAL);
	console_free(con);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_late_subscriber_gets_replay),
		cmocka_unit_test(test_replay_keeps_only_last_64k),
		cmocka_unit_test(test_read_empty_console),
		cmocka_unit_test(test_read_before_wrap),
		cmocka_unit_test(test_read_after_wrap),
		cmocka_unit_test(test_slow_subscriber_loses_bytes_not_the_guest),
		cmocka_unit_test(test_unsubscribe_stops_delivery),
		cmocka_unit_test(test_unsubscribe_from_own_callback),
		cmocka_unit_test(test_unsubscribe_other_from_callback),
		cmocka_unit_test(test_unsubscribe_waits_for_callback),
		cmocka_unit_test(test_blocked_fd_delays_nobody),
		cmocka_unit_test(test_fd_subscriber),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
