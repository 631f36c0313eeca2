/* SPDX-License-Identifier: MIT */
/*
 * test_vsock_client.c - the vsock client over its TCP transport, against small servers on
 * 127.0.0.1 (ephemeral ports): long responses, EOF without newline, refused ports, servers
 * that never answer, listeners, and dialling from inside a network namespace.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "microvm/error.h"
#include "microvm/vsock.h"
#include "runtime/vsock_client.h"

enum srv_mode {
	SRV_BIG_LINE,		/* read a line, answer with BIG_LEN bytes + '\n' + junk */
	SRV_NO_NEWLINE,		/* read a line, answer "partial" and close */
	SRV_SILENT,		/* read a line, never answer until the client goes away */
	SRV_CLOSE,		/* read the request, close without answering */
	SRV_AT_CAP,		/* answer exactly MVM_VSOCK_MAX_RESPONSE bytes + '\n' */
	SRV_OVER_CAP,		/* answer MVM_VSOCK_MAX_RESPONSE + 1 bytes + '\n' */
};

#define BIG_LEN (3u * 1024 * 1024 + 17)

struct srv {
	int fd;
	uint16_t port;
	enum srv_mode mode;
	pthread_t thread;
	char got[256];		/* the request line the server read */
};

/** listen_any() - a listening socket on 127.0.0.1:0; returns fd, fills *port. */
static int listen_any(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void read_line(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	char c;

	while (len + 1 < cap && read(fd, &c, 1) == 1 && c != '\n')
		buf[len++] = c;
	buf[len] = '\0';
}

/** write_filler() - @n bytes of 'x' then '\n', in chunks (stops when the peer goes away) */
static void write_filler(int fd, size_t n)
{
	static char chunk[65536];

	memset(chunk, 'x', sizeof(chunk));
	while (n) {
		size_t k = n < sizeof(chunk) ? n : sizeof(chunk);
		ssize_t w = send(fd, chunk, k, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		n -= (size_t)w;
	}
	write_all(fd, "\n", 1);
}

static void *srv_thread(void *arg)
{
	struct srv *s = arg;
	char *big, tmp[64];
	int c = accept(s->fd, NULL, NULL);

	if (c < 0)
		return NULL;
	read_line(c, s->got, sizeof(s->got));
	switch (s->mode) {
	case SRV_BIG_LINE:
		big = malloc(BIG_LEN + 64);
		for (size_t i = 0; i < BIG_LEN; i++)
			big[i] = (char)('a' + i % 26);
		memcpy(big + BIG_LEN, "\nafter-the-newline", 18);
		write_all(c, big, BIG_LEN + 18);
		free(big);
		break;
	case SRV_NO_NEWLINE:
		write_all(c, "partial", 7);
		break;
	case SRV_SILENT:
		while (read(c, tmp, sizeof(tmp)) > 0)
			;
		break;
	case SRV_CLOSE:
		break;
	case SRV_AT_CAP:
		write_filler(c, MVM_VSOCK_MAX_RESPONSE);
		break;
	case SRV_OVER_CAP:
		write_filler(c, (size_t)MVM_VSOCK_MAX_RESPONSE + 1);
		break;
	}
	close(c);
	return NULL;
}

static void srv_start(struct srv *s, enum srv_mode mode)
{
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->fd = listen_any(&s->port);
	assert_int_equal(pthread_create(&s->thread, NULL, srv_thread, s), 0);
}

static void srv_stop(struct srv *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static void test_long_response(void **state)
{
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);
	struct srv s;
	char *resp = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(vs);
	srv_start(&s, SRV_BIG_LINE);
	assert_int_equal(mvm_vsock_request(vs, s.port, "{\"cmd\":\"ping\"}", 14, &resp, &len,
					   10000), 0);
	srv_stop(&s);
	assert_string_equal(s.got, "{\"cmd\":\"ping\"}");
	assert_int_equal(len, BIG_LEN);
	assert_int_equal(strlen(resp), BIG_LEN);
	for (size_t i = 0; i < BIG_LEN; i++)
		if (resp[i] != (char)('a' + i % 26))
			fail_msg("byte %zu differs", i);
	free(resp);
	mvm_vsock_free(vs);
}

/* a guest answer is capped: MVM_VSOCK_MAX_RESPONSE bytes pass, one more is -EMSGSIZE */
static void test_response_cap(void **state)
{
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);
	struct srv s;
	char *resp = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(vs);
	srv_start(&s, SRV_AT_CAP);
	assert_int_equal(mvm_vsock_request(vs, s.port, "x", 1, &resp, &len, 20000), 0);
	srv_stop(&s);
	assert_int_equal(len, MVM_VSOCK_MAX_RESPONSE);
	free(resp);
	resp = NULL;

	srv_start(&s, SRV_OVER_CAP);
	assert_int_equal(mvm_vsock_request(vs, s.port, "x", 1, &resp, &len, 20000), -EMSGSIZE);
	srv_stop(&s);
	assert_null(resp);
	assert_non_null(strstr(mvm_last_error(), "exceeds"));
	mvm_vsock_free(vs);
}

static void test_request_keeps_given_newline(void **state)
{
	mvm_vsock *vs = mvm_vsock_new_tcp("127.0.0.1");
	struct srv s;
	char *resp = NULL;

	(void)state;
	srv_start(&s, SRV_NO_NEWLINE);
	assert_int_equal(mvm_vsock_request(vs, s.port, "hello\n", 6, &resp, NULL, 5000), 0);
	srv_stop(&s);
	assert_string_equal(s.got, "hello");
	assert_string_equal(resp, "partial");	/* EOF ends the response too */
	free(resp);
	mvm_vsock_free(vs);
}

static void test_eof_before_any_byte(void **state)
{
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);
	struct srv s;
	char *resp = (char *)1;

	(void)state;
	srv_start(&s, SRV_CLOSE);
	assert_int_equal(mvm_vsock_request(vs, s.port, "x", 1, &resp, NULL, 5000), -EPROTO);
	assert_null(resp);
	assert_non_null(strstr(mvm_last_error(), "closed"));
	srv_stop(&s);
	mvm_vsock_free(vs);
}

static void test_refused(void **state)
{
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);
	uint16_t port;
	int fd = listen_any(&port);
	int64_t t0;
	char *resp;

	(void)state;
	close(fd);	/* nothing listens on @port now */
	t0 = vsock_now_ms();
	assert_int_equal(mvm_vsock_connect(vs, port, 1000), -ECONNREFUSED);
	assert_int_equal(mvm_vsock_request(vs, port, "x", 1, &resp, NULL, 1000), -ECONNREFUSED);
	assert_true(vsock_now_ms() - t0 < 1000);
	assert_non_null(strstr(mvm_last_error(), "nothing listens"));
	mvm_vsock_free(vs);
}

static void test_timeout(void **state)
{
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);
	struct srv s;
	int64_t t0, dt;
	char *resp = NULL;

	(void)state;
	srv_start(&s, SRV_SILENT);
	t0 = vsock_now_ms();
	assert_int_equal(mvm_vsock_request(vs, s.port, "hello", 5, &resp, NULL, 300), -ETIMEDOUT);
	dt = vsock_now_ms() - t0;
	assert_true(dt >= 290 && dt < 2000);
	assert_null(resp);
	srv_stop(&s);	/* the client closed, so the server's read saw EOF */
	mvm_vsock_free(vs);
}

struct accepted {
	pthread_mutex_t lock;
	uint32_t port;
	int n;
	char line[64];
};

static void on_accept(void *opaque, uint32_t port, int fd)
{
	struct accepted *a = opaque;
	char buf[64];

	read_line(fd, buf, sizeof(buf));
	pthread_mutex_lock(&a->lock);	/* before the ack: the client checks right after it */
	a->port = port;
	a->n++;
	snprintf(a->line, sizeof(a->line), "%s", buf);
	pthread_mutex_unlock(&a->lock);
	write_all(fd, "ack\n", 4);
	close(fd);
}

static void test_listen(void **state)
{
	struct accepted a = { .lock = PTHREAD_MUTEX_INITIALIZER };
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);
	uint16_t port;
	int fd = listen_any(&port);
	char *resp = NULL;

	(void)state;
	close(fd);
	assert_int_equal(mvm_vsock_listen(vs, port, on_accept, &a), 0);
	assert_int_equal(mvm_vsock_listen(vs, port, on_accept, &a), -EADDRINUSE);
	/* a "guest" connecting to the host port is just a TCP client here */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mvm_vsock_request(vs, port, "from-guest", 10, &resp, NULL, 5000),
				 0);
		assert_string_equal(resp, "ack");
		free(resp);
	}
	pthread_mutex_lock(&a.lock);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.port, port);
	assert_string_equal(a.line, "from-guest");
	pthread_mutex_unlock(&a.lock);
	mvm_vsock_unlisten(vs, port);
	assert_int_equal(mvm_vsock_connect(vs, port, 1000), -ECONNREFUSED);
	/* listen again after unlisten, then let free() stop it */
	assert_int_equal(mvm_vsock_listen(vs, port, on_accept, &a), 0);
	mvm_vsock_free(vs);
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Two ports served by the transport's one loop; unlisten returns at once with the port free. */
static void test_two_listeners_unlisten_now(void **state)
{
	struct accepted a = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct accepted b = { .lock = PTHREAD_MUTEX_INITIALIZER };
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);
	uint16_t pa, pb;
	int fa = listen_any(&pa), fb = listen_any(&pb), round;
	struct timespec t0;
	char *resp = NULL;

	(void)state;
	close(fa);
	close(fb);
	for (round = 0; round < 3; round++) {
		assert_int_equal(mvm_vsock_listen(vs, pa, on_accept, &a), 0);
		assert_int_equal(mvm_vsock_listen(vs, pb, on_accept, &b), 0);
		assert_int_equal(mvm_vsock_request(vs, pa, "to-a", 4, &resp, NULL, 5000), 0);
		free(resp);
		assert_int_equal(mvm_vsock_request(vs, pb, "to-b", 4, &resp, NULL, 5000), 0);
		free(resp);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		mvm_vsock_unlisten(vs, pa);
		assert_true(elapsed_ms(&t0) < 50);	/* no polling tick: the loop is woken */
		/* the socket is closed when unlisten returns: refused, and the port can be bound */
		assert_int_equal(mvm_vsock_connect(vs, pa, 1000), -ECONNREFUSED);
		assert_int_equal(mvm_vsock_request(vs, pb, "to-b", 4, &resp, NULL, 5000), 0);
		free(resp);
		mvm_vsock_unlisten(vs, pb);
	}
	pthread_mutex_lock(&a.lock);
	assert_int_equal(a.n, 3);
	assert_string_equal(a.line, "to-a");
	pthread_mutex_unlock(&a.lock);
	pthread_mutex_lock(&b.lock);
	assert_int_equal(b.n, 6);
	pthread_mutex_unlock(&b.lock);
	mvm_vsock_free(vs);
}

struct once {
	mvm_vsock *vs;
	int n;
};

/* on_accept_once() - serve one stream, then stop listening from the callback itself */
static void on_accept_once(void *opaque, uint32_t port, int fd)
{
	struct once *o = opaque;
	char buf[16];

	o->n++;
	mvm_vsock_unlisten(o->vs, port);
	read_line(fd, buf, sizeof(buf));	/* the request first: unread data would reset */
	write_all(fd, "last\n", 5);
	close(fd);
}

static void test_unlisten_from_callback(void **state)
{
	struct once o = { .vs = mvm_vsock_new_tcp(NULL) };
	uint16_t port;
	int fd = listen_any(&port);
	char *resp = NULL;

	(void)state;
	close(fd);
	assert_int_equal(mvm_vsock_listen(o.vs, port, on_accept_once, &o), 0);
	assert_int_equal(mvm_vsock_request(o.vs, port, "x", 1, &resp, NULL, 5000), 0);
	assert_string_equal(resp, "last");
	free(resp);
	assert_int_equal(mvm_vsock_connect(o.vs, port, 1000), -ECONNREFUSED);
	assert_int_equal(o.n, 1);
	/* and the port can be taken again */
	assert_int_equal(mvm_vsock_listen(o.vs, port, on_accept_once, &o), 0);
	mvm_vsock_free(o.vs);
}

/* listen from an accept callback while another thread listens too (no deadlock: the client's
 * lock is not held while the transport waits for its loop thread) */
struct nested_listen {
	mvm_vsock *vs;
	uint16_t inner;
	atomic_int in_cb, done;
	int rc;
};

static void on_accept_noop(void *opaque, uint32_t port, int fd)
{
	(void)opaque;
	(void)port;
	close(fd);
}

static void on_accept_listen(void *opaque, uint32_t port, int fd)
{
	struct nested_listen *n = opaque;

	(void)port;
	atomic_store(&n->in_cb, 1);
	usleep(100 * 1000);	/* the other thread's listen starts meanwhile */
	n->rc = mvm_vsock_listen(n->vs, n->inner, on_accept_noop, NULL);
	atomic_store(&n->done, 1);
	close(fd);
}

static void test_listen_from_callback_while_listening(void **state)
{
	struct nested_listen n = { .vs = mvm_vsock_new_tcp(NULL), .rc = -1 };
	uint16_t outer, third;
	int fd, c;

	(void)state;
	fd = listen_any(&outer);
	close(fd);
	fd = listen_any(&n.inner);
	close(fd);
	fd = listen_any(&third);
	close(fd);
	assert_int_equal(mvm_vsock_listen(n.vs, outer, on_accept_listen, &n), 0);
	c = mvm_vsock_connect(n.vs, outer, 2000);
	assert_true(c >= 0);
	for (int i = 0; i < 5000 && !atomic_load(&n.in_cb); i++)
		usleep(1000);
	assert_int_equal(mvm_vsock_listen(n.vs, third, on_accept_noop, NULL), 0);
	for (int i = 0; i < 5000 && !atomic_load(&n.done); i++)
		usleep(1000);
	assert_true(atomic_load(&n.done));
	assert_int_equal(n.rc, 0);
	mvm_vsock_close_stream(c);
	mvm_vsock_free(n.vs);
}

/* The transport takes any address family getaddrinfo() gives: IPv6 loopback here. */
static void test_ipv6(void **state)
{
	struct accepted a = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t len = sizeof(sin6);
	mvm_vsock *vs;
	char *resp = NULL;
	int fd;

	(void)state;
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)))
		skip();	/* no IPv6 loopback on this machine */
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin6, &len), 0);
	close(fd);
	vs = mvm_vsock_new_tcp("::1");
	assert_non_null(vs);
	assert_int_equal(mvm_vsock_listen(vs, ntohs(sin6.sin6_port), on_accept, &a), 0);
	assert_int_equal(mvm_vsock_request(vs, ntohs(sin6.sin6_port), "v6", 2, &resp, NULL, 5000),
			 0);
	assert_string_equal(resp, "ack");
	free(resp);
	mvm_vsock_free(vs);
}

static void test_bad_args(void **state)
{
	static const struct mvm_vsock_transport no_connect = { 0 };
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);
	char *resp;

	(void)state;
	assert_null(mvm_vsock_new(&no_connect, NULL));
	assert_null(mvm_vsock_new_tcp("no.such.host.invalid"));
	assert_null(mvm_vsock_new_tcp_netns("/nonexistent/netns", NULL));
	assert_int_equal(mvm_vsock_connect(vs, 0, 100), -EINVAL);
	assert_int_equal(mvm_vsock_connect(vs, 70000, 100), -EINVAL);
	assert_int_equal(mvm_vsock_request(vs, 1, "x", 1, NULL, NULL, 100), -EINVAL);
	assert_int_equal(mvm_vsock_request(NULL, 1, "x", 1, &resp, NULL, 100), -EINVAL);
	assert_int_equal(mvm_vsock_listen(vs, 1, NULL, NULL), -EINVAL);
	mvm_vsock_free(vs);
	mvm_vsock_free(NULL);
}

/* A server in a fresh network namespace, served by a thread that stays inside it. */
struct ns_srv {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ready;		/* 1 ok, -1 failed */
	pid_t tid;
	uint16_t port;
};

static void *ns_srv_thread(void *arg)
{
	struct ns_srv *ns = arg;
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = -1, c, sk;
	char buf[64];

	if (unshare(CLONE_NEWNET))
		goto fail;
	sk = socket(AF_INET, SOCK_DGRAM, 0);
	if (sk < 0 || ioctl(sk, SIOCGIFFLAGS, &ifr))
		goto fail;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sk, SIOCSIFFLAGS, &ifr))
		goto fail;
	close(sk);
	fd = listen_any(&ns->port);
	pthread_mutex_lock(&ns->lock);
	ns->tid = (pid_t)syscall(SYS_gettid);
	ns->ready = 1;
	pthread_cond_signal(&ns->cond);
	pthread_mutex_unlock(&ns->lock);
	c = accept(fd, NULL, NULL);
	read_line(c, buf, sizeof(buf));
	write_all(c, "inside\n", 7);
	close(c);
	close(fd);
	return NULL;
fail:
	pthread_mutex_lock(&ns->lock);
	ns->ready = -1;
	pthread_cond_signal(&ns->cond);
	pthread_mutex_unlock(&ns->lock);
	return NULL;
}

static void test_netns(void **state)
{
	struct ns_srv ns = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	mvm_vsock *vs, *outside;
	pthread_t t;
	char path[64], *resp = NULL;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(pthread_create(&t, NULL, ns_srv_thread, &ns), 0);
	pthread_mutex_lock(&ns.lock);
	while (!ns.ready)
		pthread_cond_wait(&ns.cond, &ns.lock);
	pthread_mutex_unlock(&ns.lock);
	assert_int_equal(ns.ready, 1);
	snprintf(path, sizeof(path), "/proc/self/task/%d/ns/net", (int)ns.tid);
	vs = mvm_vsock_new_tcp_netns(path, NULL);
	assert_non_null(vs);
	/* the port exists only inside the namespace (nothing listens on it out here) */
	outside = mvm_vsock_new_tcp(NULL);
	assert_int_equal(mvm_vsock_connect(outside, ns.port, 1000), -ECONNREFUSED);
	mvm_vsock_free(outside);
	assert_int_equal(mvm_vsock_request(vs, ns.port, "hi", 2, &resp, NULL, 5000), 0);
	assert_string_equal(resp, "inside");
	free(resp);
	pthread_join(t, NULL);
	/* listeners live in the namespace too (our fd keeps it alive after the thread) */
	struct accepted a = { .lock = PTHREAD_MUTEX_INITIALIZER };

	uint16_t lport = ns.port == 65535 ? 1024 : ns.port + 1;	/* the fresh ns has all free */

	assert_int_equal(mvm_vsock_listen(vs, lport, on_accept, &a), 0);
	assert_int_equal(mvm_vsock_request(vs, lport, "in ns", 5, &resp, NULL, 5000), 0);
	assert_string_equal(resp, "ack");
	free(resp);
	pthread_mutex_lock(&a.lock);
	assert_int_equal(a.n, 1);
	pthread_mutex_unlock(&a.lock);
	mvm_vsock_free(vs);
}

/**
 * thread_sigblk() - the blocked-signal mask of this process's thread named @comm
 * Return: the mask (bit N-1: signal N), or 0 when no thread has that name.
 */
static unsigned long long thread_sigblk(const char *comm)
{
	unsigned long long mask = 0;
	char path[300], buf[64], line[256];
	struct dirent *e;
	DIR *d = opendir("/proc/self/task");
	FILE *f;

	assert_non_null(d);
	while (!mask && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f) || strncmp(buf, comm, strlen(comm)) ||
		    buf[strlen(comm)] != '\n') {
			fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		f = fopen(path, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "SigBlk: %llx", &mask) == 1)
				break;
		fclose(f);
	}
	closedir(d);
	return mask;
}

/* The namespace helper is named and takes none of the application's signals. */
static void test_netns_helper_signals(void **state)
{
	unsigned long long blk = 0, want = 0;
	sigset_t cur;
	mvm_vsock *vs;

	(void)state;
	if (geteuid() != 0)
		skip();	/* setns() into our own namespace needs CAP_SYS_ADMIN */
	vs = mvm_vsock_new_tcp_netns("/proc/self/ns/net", NULL);
	assert_non_null(vs);
	for (int i = 0; i < 200 && !(blk = thread_sigblk("mvm-vsock-ns")); i++)
		usleep(10 * 1000);	/* the helper names itself when it starts */
	/*
	 * Every asynchronous signal. Not the fault signals: a fault is delivered to the thread
	 * that caused it whatever its mask, and qemu-user (the arm64 unit tests) keeps SIGSEGV and
	 * SIGBUS unblocked in every thread for its own use, which /proc then shows.
	 */
	for (int sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGSEGV && sig != SIGBUS &&
		    sig != SIGILL && sig != SIGFPE && sig != SIGTRAP)
			want |= 1ull << (sig - 1);
	assert_int_equal(blk & want, want);
	/* and the caller's mask is left as it was */
	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
	assert_false(sigismember(&cur, SIGTERM));
	mvm_vsock_free(vs);
}

/*
 * The namespace helper's stock when socket() fails during a refill (EMFILE): the failure is
 * not kept for a later caller once descriptors are free again; the next wake-up refills.
 */
static void test_netns_refill_after_emfile(void **state)
{
	struct rlimit old, low;
	int fds[1024], nfd = 0, c[6], nc = 0, lfd, fd;
	uint16_t port;
	mvm_vsock *vs;

	(void)state;
	if (geteuid() != 0)
		skip();	/* setns() into our own namespace needs CAP_SYS_ADMIN */
	lfd = listen_any(&port);
	vs = mvm_vsock_new_tcp_netns("/proc/self/ns/net", NULL);
	assert_non_null(vs);
	fd = mvm_vsock_connect(vs, port, 2000);	/* starts the stock: 3 or 4 left */
	assert_true(fd >= 0);
	close(fd);
	usleep(100 * 1000);
	/* no descriptor left: the refill the next takes ask for fails with EMFILE */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 256;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nfd < (int)(sizeof(fds) / sizeof(fds[0])) && (fd = dup(lfd)) >= 0)
		fds[nfd++] = fd;
	assert_int_equal(errno, EMFILE);
	for (int i = 0; i < 2; i++) {
		c[nc] = mvm_vsock_connect(vs, port, 2000);
		assert_true(c[nc] >= 0);
		nc++;
		usleep(100 * 1000);	/* the helper's failed refill */
	}
	while (nfd)
		close(fds[--nfd]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* the stock runs out and is refilled: no stale EMFILE for any of these */
	for (int i = 0; i < 4; i++) {
		c[nc] = mvm_vsock_connect(vs, port, 2000);
		assert_true(c[nc] >= 0);
		nc++;
	}
	while (nc)
		close(c[--nc]);
	close(lfd);
	mvm_vsock_free(vs);
}

static void *concurrent_worker(void *arg)
{
	mvm_vsock *vs = arg;
	uint16_t port;
	int fd = listen_any(&port), c, bad = 0;
	char *resp, buf[64];

	for (int i = 0; i < 20; i++) {
		c = mvm_vsock_connect(vs, port, 2000);
		if (c < 0) {
			bad++;
			continue;
		}
		int s = accept(fd, NULL, NULL);

		write_all(s, "r\n", 2);
		close(s);
		if (read(c, buf, sizeof(buf)) != 2)
			bad++;
		close(c);
	}
	close(fd);
	if (mvm_vsock_request(vs, port, "x", 1, &resp, NULL, 500) != -ECONNREFUSED)
		bad++;
	return (void *)(intptr_t)bad;
}

static void test_threads(void **state)
{
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);
	pthread_t t[4];
	void *bad;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, concurrent_worker, vs), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], &bad);
		assert_int_equal((intptr_t)bad, 0);
	}
	mvm_vsock_free(vs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_response),
		cmocka_unit_test(test_response_cap),
		cmocka_unit_test(test_request_keeps_given_newline),
		cmocka_unit_test(test_eof_before_any_byte),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_two_listeners_unlisten_now),
		cmocka_unit_test(test_unlisten_from_callback),
		cmocka_unit_test(test_listen_from_callback_while_listening),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_netns),
		cmocka_unit_test(test_netns_helper_signals),
		cmocka_unit_test(test_netns_refill_after_emfile),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
