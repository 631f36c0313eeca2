/* SPDX-License-Identifier: MIT */
/*
 * test_socks5_server.c - the SOCKS5 server's event loop against an in-process "guest".
 *
 * The vsock client runs over a test transport whose connect() returns one end of a
 * socketpair and hands the other to a fake agent thread, so the test sees exactly the bytes
 * the server sends towards the guest (the [len][host][port] handshake, pipelined data) and
 * chooses the status byte.  The connect workers run under a seccomp filter that allows no
 * thread creation, so the fake connect queues the agent's end to a dispatcher thread the test
 * started, which starts one agent thread per connection.  Runs under ASan/UBSan in `make asan`.
 *
 * The library's free() is wrapped (-Wl,--wrap=free, meson.build): a block freed while a test
 * watches is searched for a secret, which shows what a connection leaves in freed memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "microvm/socks.h"
#include "runtime/vsock_client.h"

/* ---- free() wrapped: what the library leaves in memory it frees ---- */

#define SECRET "Zq7-SECRET-pw"	/* a password a client starts to send */

static atomic_bool watch_free;		/* look into blocks freed from now on */
static atomic_int secret_freed;		/* freed blocks holding SECRET */
static atomic_int conns_freed;		/* freed blocks the size of a connection (64 KiB+) */

void __real_free(void *p);
void __wrap_free(void *p);

/** __wrap_free() - the library's free(): count blocks that still hold SECRET */
void __wrap_free(void *p)
{
	size_t n;

	if (p && atomic_load(&watch_free)) {
		n = malloc_usable_size(p);
		if (memmem(p, n, SECRET, strlen(SECRET)))
			atomic_fetch_add(&secret_freed, 1);
		if (n >= 65536)
			atomic_fetch_add(&conns_freed, 1);
	}
	__real_free(p);
}

/**
 * struct fake - the fake guest
 * @status:	status byte to answer (negative: refuse the connect with that errno)
 * @hs:		handshake bytes received (plus whatever followed in the same read)
 * @hs_len:	their number
 * @conns:	connect() calls seen
 * @lock:	protects the above between the agent thread and the test, and the queue
 * @jobs:	connections for the dispatcher to start agent threads for
 * @cond:	signalled when @jobs or @stop change
 * @stop:	the dispatcher ends once @jobs is empty
 * @disp:	the dispatcher thread
 */
struct fake {
	int status;
	uint8_t hs[512];
	size_t hs_len;
	int conns;
	pthread_mutex_t lock;
	struct agent_job *jobs;
	pthread_cond_t cond;
	bool stop;
	pthread_t disp;
};

struct agent_job {
	struct fake *f;
	int fd;
	struct agent_job *next;
};

/**
 * agent_thread() - read the handshake, answer the status, then echo until EOF and close
 */
static void *agent_thread(void *arg)
{
	struct agent_job *j = arg;
	uint8_t buf[4096], st;
	size_t need, got = 0;
	ssize_t n;

	/* the handshake: [len][host][port]; anything after it is relayed data */
	while (got < 1 || got < (size_t)buf[0] + 3) {
		n = read(j->fd, buf + got, sizeof(buf) - got);
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	need = (size_t)buf[0] + 3;
	pthread_mutex_lock(&j->f->lock);
	memcpy(j->f->hs, buf, got < sizeof(j->f->hs) ? got : sizeof(j->f->hs));
	j->f->hs_len = got;
	st = (uint8_t)j->f->status;
	pthread_mutex_unlock(&j->f->lock);
	if (write(j->fd, &st, 1) != 1 || st != 0)
		goto out;
	if (got > need && write(j->fd, buf + need, got - need) != (ssize_t)(got - need))
		goto out;
	while ((n = read(j->fd, buf, sizeof(buf))) > 0)
		if (write(j->fd, buf, (size_t)n) != n)
			goto out;
	shutdown(j->fd, SHUT_WR);
out:
	close(j->fd);
	free(j);
	return NULL;
}

/**
 * dispatcher() - start an agent thread for each queued connection (off the filtered workers)
 */
static void *dispatcher(void *arg)
{
	struct fake *f = arg;
	struct agent_job *j;
	pthread_t t;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (!f->jobs && !f->stop)
			pthread_cond_wait(&f->cond, &f->lock);
		j = f->jobs;
		if (!j)
			break;
		f->jobs = j->next;
		pthread_mutex_unlock(&f->lock);
		pthread_create(&t, NULL, agent_thread, j);
		pthread_detach(t);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static int fake_connect(void *ctx, uint32_t port, int timeout_ms)
{
	struct fake *f = ctx;
	struct agent_job *j;
	int sv[2], status;

	(void)timeout_ms;
	if (port != MVM_SOCKS_AGENT_PORT)	/* no cmocka asserts off the test thread */
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	f->conns++;
	status = f->status;
	pthread_mutex_unlock(&f->lock);
	if (status < 0)
		return status;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	j = malloc(sizeof(*j));
	j->f = f;
	j->fd = sv[1];
	pthread_mutex_lock(&f->lock);
	j->next = f->jobs;
	f->jobs = j;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return sv[0];
}

static const struct mvm_vsock_transport fake_ops = { .connect = fake_connect };

struct env {
	struct fake f;
	mvm_vsock *vs;
	mvm_socks *s;
	uint16_t port;
};

static int setup_with(void **state, const char *user, const char *pass)
{
	struct mvm_socks_config cfg;
	struct env *e = calloc(1, sizeof(*e));

	pthread_mutex_init(&e->f.lock, NULL);
	pthread_cond_init(&e->f.cond, NULL);
	assert_int_equal(pthread_create(&e->f.disp, NULL, dispatcher, &e->f), 0);
	e->vs = mvm_vsock_new(&fake_ops, &e->f);
	assert_non_null(e->vs);
	mvm_socks_config_init(&cfg);
	cfg.port = 0;
	cfg.username = user;
	cfg.password = pass;
	cfg.handshake_timeout_ms = 2000;
	e->s = mvm_socks_new(&cfg, e->vs);
	assert_non_null(e->s);
	assert_int_equal(mvm_socks_start(e->s), 0);
	e->port = mvm_socks_port(e->s);
	assert_true(e->port > 0);
	*state = e;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL, NULL);
}

static int setup_auth(void **state)
{
	return setup_with(state, "alice", "pw");
}

static int teardown(void **state)
{
	struct env *e = *state;

	mvm_socks_free(e->s);
	mvm_vsock_free(e->vs);
	pthread_mutex_lock(&e->f.lock);
	e->f.stop = true;
	pthread_cond_signal(&e->f.cond);
	pthread_mutex_unlock(&e->f.lock);
	pthread_join(e->f.disp, NULL);
	pthread_cond_destroy(&e->f.cond);
	pthread_mutex_destroy(&e->f.lock);
	free(e);
	return 0;
}

static int dial(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void recv_all(int fd, void *p, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = recv(fd, (char *)p + got, n - got, 0);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

static void assert_eof(int fd)
{
	char c;

	assert_int_equal(recv(fd, &c, 1, 0), 0);
}

static void test_domain_connect_relay_halfclose(void **state)
{
	struct env *e = *state;
	const uint8_t req[] = { 5, 1, 0, 3, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'v', 'p',
				'n', 0, 80 };
	const uint8_t want[] = { 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'v', 'p', 'n', 0, 80 };
	uint8_t r[10], echo[5];
	struct mvm_socks_stats st;
	int fd = dial(e->port);

	send_all(fd, "\x05\x01\x00", 3);
	recv_all(fd, r, 2);
	assert_memory_equal(r, "\x05\x00", 2);
	send_all(fd, req, sizeof(req));
	recv_all(fd, r, 10);
	assert_int_equal(r[0], 5);
	assert_int_equal(r[1], 0);
	pthread_mutex_lock(&e->f.lock);
	assert_int_equal(e->f.hs_len, sizeof(want));
	assert_memory_equal(e->f.hs, want, sizeof(want));
	pthread_mutex_unlock(&e->f.lock);
	send_all(fd, "hello", 5);
	shutdown(fd, SHUT_WR);
	recv_all(fd, echo, 5);
	assert_memory_equal(echo, "hello", 5);
	assert_eof(fd);
	close(fd);
	mvm_socks_stats(e->s, &st);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.relayed, 1);
	assert_int_equal(st.bytes_up, 5);	/* relayed payload only, not the handshake */
	assert_int_equal(st.bytes_down, 5);
}

static void test_pipelined_ipv6(void **state)
{
	struct env *e = *state;
	uint8_t msg[3 + 22 + 4] = { 5, 1, 0, 5, 1, 0, 4, 0xfd };
	uint8_t r[12];
	int fd = dial(e->port);

	msg[3 + 19] = 1;		/* fd00::1 */
	msg[3 + 20] = 0x1f;
	msg[3 + 21] = 0x90;		/* port 8080 */
	memcpy(msg + 25, "ping", 4);
	send_all(fd, msg, sizeof(msg));	/* greeting, request and data in one segment */
	recv_all(fd, r, 12);
	assert_memory_equal(r, "\x05\x00\x05\x00", 4);
	recv_all(fd, r, 4);
	assert_memory_equal(r, "ping", 4);
	pthread_mutex_lock(&e->f.lock);
	assert_true(e->f.hs_len >= 10);
	assert_memory_equal(e->f.hs, "\x07" "fd00::1" "\x1f\x90", 10);
	pthread_mutex_unlock(&e->f.lock);
	close(fd);
}

static void test_agent_status_mapped(void **state)
{
	struct env *e = *state;
	const uint8_t req[] = { 5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 9, 0, 22 };
	static const struct { int agent; uint8_t rep; } cases[] = {
		{ 0x05, 0x05 }, { 0x04, 0x04 }, { 0x03, 0x03 }, { 0x06, 0x06 }, { 0x01, 0x01 },
		{ 0x7f, 0x01 }, { -ECONNREFUSED, 0x01 }, { -ETIMEDOUT, 0x06 },
	};
	uint8_t r[12];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd;

		pthread_mutex_lock(&e->f.lock);
		e->f.status = cases[i].agent;
		pthread_mutex_unlock(&e->f.lock);
		fd = dial(e->port);
		send_all(fd, req, sizeof(req));
		recv_all(fd, r, 12);
		assert_int_equal(r[3], cases[i].rep);
		assert_eof(fd);
		close(fd);
	}
}

static void test_unsupported_and_garbage(void **state)
{
	struct env *e = *state;
	const uint8_t bind[] = { 5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 1 };
	uint8_t r[12];
	int fd, conns;

	fd = dial(e->port);
	send_all(fd, bind, sizeof(bind));
	recv_all(fd, r, 12);
	assert_int_equal(r[3], 0x07);
	assert_eof(fd);
	close(fd);

	fd = dial(e->port);
	send_all(fd, "GET / HTTP/1.0\r\n\r\n", 18);
	assert_eof(fd);
	close(fd);

	pthread_mutex_lock(&e->f.lock);
	conns = e->f.conns;
	pthread_mutex_unlock(&e->f.lock);
	assert_int_equal(conns, 0);	/* neither reached the guest */
}

static void test_auth(void **state)
{
	struct env *e = *state;
	const uint8_t bad[] = { 1, 5, 'a', 'l', 'i', 'c', 'e', 3, 'p', 'w', 'x' };
	const uint8_t good[] = { 1, 5, 'a', 'l', 'i', 'c', 'e', 2, 'p', 'w' };
	const uint8_t req[] = { 5, 1, 0, 1, 127, 0, 0, 1, 0, 7 };
	uint8_t r[10];
	int fd;

	fd = dial(e->port);		/* no-auth only: refused */
	send_all(fd, "\x05\x01\x00", 3);
	recv_all(fd, r, 2);
	assert_memory_equal(r, "\x05\xff", 2);
	assert_eof(fd);
	close(fd);

	fd = dial(e->port);
	send_all(fd, "\x05\x02\x00\x02", 4);
	recv_all(fd, r, 2);
	assert_memory_equal(r, "\x05\x02", 2);
	send_all(fd, bad, sizeof(bad));
	recv_all(fd, r, 2);
	assert_memory_equal(r, "\x01\x01", 2);
	assert_eof(fd);
	close(fd);

	fd = dial(e->port);
	send_all(fd, "\x05\x01\x02", 3);
	recv_all(fd, r, 2);
	send_all(fd, good, sizeof(good));
	recv_all(fd, r, 2);
	assert_memory_equal(r, "\x01\x00", 2);
	send_all(fd, req, sizeof(req));
	recv_all(fd, r, 10);
	assert_int_equal(r[1], 0);
	close(fd);
}

/*
 * An RFC 1929 message cut short (the client goes away in the middle of its password) is never
 * parsed, so nothing wiped it after use: the connection wipes it before its memory is freed.
 */
static void test_auth_cut_short_wiped(void **state)
{
	struct env *e = *state;
	/* user "alice", a password of 20 bytes of which only the first 13 arrive */
	const uint8_t part[] = { 1, 5, 'a', 'l', 'i', 'c', 'e', 20 };
	struct mvm_socks_stats st;
	uint8_t r[2];
	int fd, before;

	fd = dial(e->port);
	send_all(fd, "\x05\x01\x02", 3);
	recv_all(fd, r, 2);
	assert_memory_equal(r, "\x05\x02", 2);
	send_all(fd, part, sizeof(part));
	send_all(fd, SECRET, strlen(SECRET));
	usleep(100 * 1000);		/* the server has read it and waits for the rest */
	atomic_store(&secret_freed, 0);
	before = atomic_load(&conns_freed);
	atomic_store(&watch_free, true);
	close(fd);
	for (int i = 0; i < 200 && atomic_load(&conns_freed) == before; i++)
		usleep(10 * 1000);
	atomic_store(&watch_free, false);
	assert_true(atomic_load(&conns_freed) > before);	/* the connection is gone */
	assert_int_equal(atomic_load(&secret_freed), 0);
	mvm_socks_stats(e->s, &st);
	assert_int_equal(st.active, 0);
}

static void test_listen_rules(void **state)
{
	struct mvm_socks_config cfg;
	struct env *e = *state;
	mvm_socks *s;

	mvm_socks_config_init(&cfg);
	cfg.port = 0;
	cfg.addr = "0.0.0.0";
	s = mvm_socks_new(&cfg, e->vs);
	assert_int_equal(mvm_socks_start(s), -EPERM);
	assert_non_null(strstr(mvm_last_error(), "non-loopback"));
	mvm_socks_free(s);
	cfg.addr = "localhost";		/* names are not accepted: be explicit */
	s = mvm_socks_new(&cfg, e->vs);
	assert_int_equal(mvm_socks_start(s), -EINVAL);
	mvm_socks_free(s);
	cfg.addr = "127.0.0.1";
	cfg.port = e->port;		/* taken */
	s = mvm_socks_new(&cfg, e->vs);
	assert_int_equal(mvm_socks_start(s), -EADDRINUSE);
	mvm_socks_free(s);
	cfg.port = 0;
	cfg.username = "u";		/* a user without a password */
	assert_null(mvm_socks_new(&cfg, e->vs));
}

static char cap_log[2048];
static pthread_mutex_t cap_log_lock = PTHREAD_MUTEX_INITIALIZER;

static void cap_logger(void *opaque, const char *line)
{
	(void)opaque;
	pthread_mutex_lock(&cap_log_lock);
	strncat(cap_log, line, sizeof(cap_log) - strlen(cap_log) - 2);
	strcat(cap_log, "\n");
	pthread_mutex_unlock(&cap_log_lock);
}

/* A relay through @port: greeting, CONNECT 10.0.0.9:22; returns the fd and the REP byte. */
static int open_relay(uint16_t port, uint8_t *rep)
{
	const uint8_t req[] = { 5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 9, 0, 22 };
	uint8_t r[12];
	int fd = dial(port);

	send_all(fd, req, sizeof(req));
	recv_all(fd, r, 12);
	assert_memory_equal(r, "\x05\x00\x05", 3);
	*rep = r[3];
	return fd;
}

/* Past max_conns a client gets a SOCKS answer (0x01), the log says why, and a slot freed
 * by a closed relay is usable again. */
static void test_connection_cap(void **state)
{
	struct env *e = *state;
	struct mvm_socks_config cfg;
	struct mvm_socks_stats st;
	int fd[3];
	uint8_t rep;
	mvm_socks *s;

	/* the default cap leaves room for control streams on the vsock device */
	mvm_socks_config_init(&cfg);
	assert_int_equal(cfg.max_conns, MVM_SOCKS_MAX_CONNS);
	assert_true(MVM_SOCKS_MAX_CONNS < MVM_VSOCK_MAX_CONNS);
	cfg.port = 0;
	cfg.max_conns = 2;
	cfg.log = cap_logger;
	s = mvm_socks_new(&cfg, e->vs);
	assert_non_null(s);
	assert_int_equal(mvm_socks_start(s), 0);
	fd[0] = open_relay(mvm_socks_port(s), &rep);
	assert_int_equal(rep, 0);
	fd[1] = open_relay(mvm_socks_port(s), &rep);
	assert_int_equal(rep, 0);
	fd[2] = open_relay(mvm_socks_port(s), &rep);
	assert_int_equal(rep, 1);		/* general SOCKS server failure */
	assert_eof(fd[2]);
	close(fd[2]);
	pthread_mutex_lock(&cap_log_lock);
	assert_non_null(strstr(cap_log, "connection limit reached (2 open)"));
	pthread_mutex_unlock(&cap_log_lock);
	/* the relays still work */
	send_all(fd[0], "x", 1);
	recv_all(fd[0], &rep, 1);
	assert_int_equal(rep, 'x');
	close(fd[0]);
	for (int i = 0; i < 100; i++) {		/* the server notices the close */
		mvm_socks_stats(s, &st);
		if (st.active < 2)
			break;
		usleep(20000);
	}
	fd[2] = open_relay(mvm_socks_port(s), &rep);
	assert_int_equal(rep, 0);
	close(fd[2]);
	close(fd[1]);
	mvm_socks_stats(s, &st);
	assert_true(st.refused >= 1);
	mvm_socks_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_domain_connect_relay_halfclose, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_status_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported_and_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth, setup_auth, teardown),
		cmocka_unit_test_setup_teardown(test_auth_cut_short_wiped, setup_auth, teardown),
		cmocka_unit_test_setup_teardown(test_listen_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
