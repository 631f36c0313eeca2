/* SPDX-License-Identifier: MIT */
/*
 * vsock_driver.c - boots the freestanding vsock test guest with libmicrovm (KVM backend) and
 * runs scenarios against it through the public vsock client (test code, not product).
 *
 * usage: vsock-driver GUEST.elf SCENARIO...
 *	ping			request {"cmd":"ping"} on 1025, expect {"status":"pong"}
 *	echo:BYTES		stream BYTES through the echo port and compare every byte
 *	concurrent:N		N connections open at once, one request each
 *	closed			a port nobody listens on fails with ECONNREFUSED within 1 s
 *	guest-connect		the guest's own connection reaches our listener on 9000
 *	sink:BYTES		host -> guest throughput
 *	source:BYTES		guest -> host throughput
 *	latency:N		N ping requests, p50/p99
 * Prints one "ok ..." line per scenario (with figures) and exits 0, or "FAIL ..." and 1.
 *
 * vsock-driver --tcp-loopback SCENARIO... runs the same scenarios (ping, echo, sink, source,
 * latency) against an in-process TCP server on 127.0.0.1 that behaves like the guest, through
 * mvm_vsock_new_tcp(): the reference the benchmark compares vsock with.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "microvm/runtime.h"
#include "microvm/vsock.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static char console[65536];
static size_t console_len;
static int accepted_fd = -1;
static uint32_t port_base;	/* added to guest ports in TCP mode */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_console(void *opaque, const uint8_t *data, size_t len, uint64_t lost)
{
	(void)opaque;
	(void)lost;
	fwrite(data, 1, len, stderr);
	pthread_mutex_lock(&lock);
	if (len > sizeof(console) - 1 - console_len)
		len = sizeof(console) - 1 - console_len;
	memcpy(console + console_len, data, len);
	console_len += len;
	console[console_len] = '\0';
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

/* Called from the device thread: only hand the fd over. */
static void on_accept(void *opaque, uint32_t port, int fd)
{
	(void)opaque;
	(void)port;
	pthread_mutex_lock(&lock);
	if (accepted_fd < 0)
		accepted_fd = fd;
	else
		close(fd);
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static int wait_for(const char *what, int secs)
{
	struct timespec ts;
	int found;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs;
	pthread_mutex_lock(&lock);
	while (!(found = strstr(console, what) != NULL))
		if (pthread_cond_timedwait(&cond, &lock, &ts))
			break;
	pthread_mutex_unlock(&lock);
	return found;
}

static int fail(const char *scenario, const char *why)
{
	printf("FAIL %s: %s (%s)\n", scenario, why, mvm_last_error());
	return 1;
}

static int sc_ping(mvm_vsock *vs)
{
	char *resp = NULL;
	int rc = mvm_vsock_request(vs, port_base + 1025, "{\"cmd\":\"ping\"}", 14, &resp, NULL, 5000);

	if (rc)
		return fail("ping", strerror(-rc));
	if (strcmp(resp, "{\"status\":\"pong\"}")) {
		printf("FAIL ping: got '%s'\n", resp);
		free(resp);
		return 1;
	}
	free(resp);
	printf("ok ping\n");
	return 0;
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)((i * 2654435761u) >> 13);
}

static int sc_echo(mvm_vsock *vs, uint64_t total)
{
	static uint8_t out[65536], in[65536];
	uint64_t sent = 0, got = 0, sum_out = 14695981039346656037ull, sum_in = sum_out;
	double t0 = now();
	int fd = mvm_vsock_connect(vs, port_base + 1026, 5000);

	if (fd < 0)
		return fail("echo", "connect");
	while (got < total) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0) };

		if (poll(&pfd, 1, 20000) <= 0) {
			printf("FAIL echo: stalled at %llu sent, %llu received\n",
			       (unsigned long long)sent, (unsigned long long)got);
			return 1;
		}
		if ((pfd.revents & POLLOUT) && sent < total) {
			size_t n = total - sent > sizeof(out) ? sizeof(out) : total - sent;
			ssize_t w;

			for (size_t i = 0; i < n; i++)
				out[i] = pattern(sent + i);
			w = send(fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0) {
				for (ssize_t i = 0; i < w; i++)
					sum_out = (sum_out ^ out[i]) * 1099511628211ull;
				sent += (uint64_t)w;
				if (sent == total)
					shutdown(fd, SHUT_WR);
			}
		}
		if (pfd.revents & (POLLIN | POLLHUP)) {
			ssize_t r = recv(fd, in, sizeof(in), MSG_DONTWAIT);

			if (r == 0) {
				printf("FAIL echo: EOF after %llu of %llu bytes\n",
				       (unsigned long long)got, (unsigned long long)total);
				return 1;
			}
			for (ssize_t i = 0; i < r; i++) {
				if (in[i] != pattern(got + (uint64_t)i)) {
					printf("FAIL echo: byte %llu differs\n",
					       (unsigned long long)(got + (uint64_t)i));
					return 1;
				}
				sum_in = (sum_in ^ in[i]) * 1099511628211ull;
			}
			if (r > 0)
				got += (uint64_t)r;
		}
	}
	/* the guest closes once everything is echoed */
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 5000) != 1 || recv(fd, in, 1, 0) != 0)
		return fail("echo", "no EOF after the echo");
	close(fd);
	if (sum_in != sum_out)
		return fail("echo", "checksum mismatch");
	printf("ok echo %llu bytes checksum %016llx in %.2f s (%.1f MB/s each way)\n",
	       (unsigned long long)total, (unsigned long long)sum_in, now() - t0,
	       (double)total / 1e6 / (now() - t0));
	return 0;
}

static int sc_concurrent(mvm_vsock *vs, int n)
{
	int *fds = calloc((size_t)n, sizeof(int)), bad = 0;
	static const char req[] = "{\"cmd\":\"ping\"}\n", want[] = "{\"status\":\"pong\"}\n";
	char buf[64];

	for (int i = 0; i < n; i++) {
		fds[i] = mvm_vsock_connect(vs, port_base + 1025, 5000);
		if (fds[i] < 0)
			return fail("concurrent", "connect");
	}
	for (int i = 0; i < n; i++)
		if (write(fds[i], req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
			bad++;
	for (int i = 0; i < n; i++) {
		size_t got = 0;

		while (got < sizeof(want) - 1) {
			struct pollfd pfd = { .fd = fds[i], .events = POLLIN };
			ssize_t r;

			if (poll(&pfd, 1, 10000) != 1)
				break;
			r = read(fds[i], buf + got, sizeof(want) - 1 - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got != sizeof(want) - 1 || memcmp(buf, want, got))
			bad++;
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
	if (bad) {
		printf("FAIL concurrent: %d of %d connections failed\n", bad, n);
		return 1;
	}
	printf("ok concurrent %d\n", n);
	return 0;
}

static int sc_closed(mvm_vsock *vs)
{
	double t0 = now(), dt;
	char *resp;
	int rc = mvm_vsock_connect(vs, 4444, 5000);

	dt = now() - t0;
	if (rc != -ECONNREFUSED || dt >= 1.0) {
		printf("FAIL closed: rc %d after %.3f s\n", rc, dt);
		return 1;
	}
	rc = mvm_vsock_request(vs, 4445, "x", 1, &resp, NULL, 5000);
	if (rc != -ECONNREFUSED)
		return fail("closed", "request did not fail with ECONNREFUSED");
	printf("ok closed refused in %.3f s\n", dt);
	return 0;
}

static int sc_guest_connect(void)
{
	struct timespec ts;
	char buf[128];
	ssize_t n = 0, r;
	int fd;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 15;
	pthread_mutex_lock(&lock);
	while (accepted_fd < 0)
		if (pthread_cond_timedwait(&cond, &lock, &ts))
			break;
	fd = accepted_fd;
	pthread_mutex_unlock(&lock);
	if (fd < 0)
		return fail("guest-connect", "no connection from the guest");
	while (n < (ssize_t)sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
		n += r;	/* the guest shuts its side after the line: read to EOF */
	buf[n > 0 ? n : 0] = '\0';
	if (write(fd, "welcome\n", 8) != 8)
		return fail("guest-connect", "write");
	close(fd);
	if (strcmp(buf, "hello from guest cid 3\n")) {
		printf("FAIL guest-connect: got '%s'\n", buf);
		return 1;
	}
	printf("ok guest-connect\n");
	return 0;
}

static int sc_sink(mvm_vsock *vs, uint64_t total)
{
	static uint8_t out[65536];
	uint64_t sent = 0;
	char buf[32];
	ssize_t n = 0, r;
	double t0 = now(), dt;
	int fd = mvm_vsock_connect(vs, port_base + 1027, 5000);

	if (fd < 0)
		return fail("sink", "connect");
	memset(out, 0x5a, sizeof(out));
	while (sent < total) {
		size_t len = total - sent > sizeof(out) ? sizeof(out) : total - sent;

		r = write(fd, out, len);
		if (r <= 0)
			return fail("sink", "write");
		sent += (uint64_t)r;
	}
	shutdown(fd, SHUT_WR);
	while ((r = read(fd, buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
		n += r;
	dt = now() - t0;
	buf[n] = '\0';
	close(fd);
	if (strtoull(buf, NULL, 10) != total) {
		printf("FAIL sink: guest counted '%s'\n", buf);
		return 1;
	}
	printf("ok sink %llu bytes in %.3f s: %.1f MB/s\n", (unsigned long long)total, dt,
	       (double)total / 1e6 / dt);
	return 0;
}

static int sc_source(mvm_vsock *vs, uint64_t total)
{
	static uint8_t in[65536];
	uint64_t got = 0;
	char req[32];
	double t0 = now(), dt;
	ssize_t r;
	int fd = mvm_vsock_connect(vs, port_base + 1028, 5000);

	if (fd < 0)
		return fail("source", "connect");
	snprintf(req, sizeof(req), "%llu\n", (unsigned long long)total);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		return fail("source", "write");
	while ((r = read(fd, in, sizeof(in))) > 0) {
		for (ssize_t i = 0; i < r; i++)
			if (in[i] != (uint8_t)((got + (uint64_t)i) * 7))
				return fail("source", "data differs");
		got += (uint64_t)r;
	}
	dt = now() - t0;
	close(fd);
	if (got != total) {
		printf("FAIL source: got %llu of %llu bytes\n", (unsigned long long)got,
		       (unsigned long long)total);
		return 1;
	}
	printf("ok source %llu bytes in %.3f s: %.1f MB/s\n", (unsigned long long)total, dt,
	       (double)total / 1e6 / dt);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int sc_latency(mvm_vsock *vs, int n)
{
	double *t = calloc((size_t)n, sizeof(double));
	char *resp;

	for (int i = 0; i < n; i++) {
		double t0 = now();

		if (mvm_vsock_request(vs, port_base + 1025, "{\"cmd\":\"ping\"}", 14, &resp, NULL, 5000))
			return fail("latency", "request");
		free(resp);
		t[i] = (now() - t0) * 1e6;
	}
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	printf("ok latency %d requests: p50 %.0f us p99 %.0f us\n", n, t[n / 2],
	       t[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1]);
	free(t);
	return 0;
}

/* ---- the TCP loopback reference: the guest's four services as a threaded TCP server ---- */

static void tcp_serve_conn(int fd, uint32_t svc)
{
	static const char pong[] = "{\"status\":\"pong\"}\n";
	uint8_t buf[65536];
	uint64_t count = 0, n = 0;
	ssize_t r;
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	switch (svc) {
	case 1025:
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			for (ssize_t i = 0; i < r; i++)
				if (buf[i] == '\n' && write(fd, pong, sizeof(pong) - 1) < 0)
					break;
		break;
	case 1026:
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			for (ssize_t off = 0, w; off < r; off += w)
				if ((w = write(fd, buf + off, (size_t)(r - off))) <= 0)
					goto out;
		shutdown(fd, SHUT_WR);
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		break;
	case 1027:
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			count += (uint64_t)r;
		r = snprintf((char *)buf, sizeof(buf), "%llu\n", (unsigned long long)count);
		if (write(fd, buf, (size_t)r) < 0)
			break;
		break;
	case 1028:
		while (read(fd, buf, 1) == 1 && buf[0] != '\n')
			n = n * 10 + (uint64_t)(buf[0] - '0');
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)(i * 7);
		while (count < n) {
			size_t len = n - count > 65280 ? 65280 : n - count;	/* 255 * 256 */

			r = write(fd, buf + count % 256, len);
			if (r <= 0)
				break;
			count += (uint64_t)r;
		}
		break;
	}
out:
	close(fd);
}

struct tcp_conn {
	int fd;
	uint32_t svc;
};

static void *tcp_conn_thread(void *arg)
{
	struct tcp_conn c = *(struct tcp_conn *)arg;

	free(arg);
	tcp_serve_conn(c.fd, c.svc);
	return NULL;
}

static void *tcp_listen_thread(void *arg)
{
	uint32_t svc = (uint32_t)(uintptr_t)arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port_base + svc),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 256)) {
		perror("tcp reference server");
		exit(1);
	}
	for (;;) {
		struct tcp_conn *c = malloc(sizeof(*c));
		pthread_t t;

		c->fd = accept(lfd, NULL, NULL);
		c->svc = svc;
		if (c->fd < 0 || pthread_create(&t, NULL, tcp_conn_thread, c)) {
			free(c);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static int run_scenarios(mvm_vsock *vs, int argc, char **argv, int first);

static int tcp_loopback(int argc, char **argv)
{
	mvm_vsock *vs;
	pthread_t t;
	int rc;

	port_base = 30000;
	for (uint32_t svc = 1025; svc <= 1028; svc++)
		pthread_create(&t, NULL, tcp_listen_thread, (void *)(uintptr_t)svc);
	usleep(100000);
	vs = mvm_vsock_new_tcp(NULL);
	rc = run_scenarios(vs, argc, argv, 2);
	mvm_vsock_free(vs);
	return rc;
}

int main(int argc, char **argv)
{
	struct mvm_config cfg;
	mvm_vsock *vs;
	mvm_vm *vm;
	int rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: %s GUEST.elf SCENARIO...\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "--tcp-loopback"))
		return tcp_loopback(argc, argv);
	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_KVM;
	cfg.kernel_path = argv[1];
	cfg.cmdline = "console=ttyS0 vsockguest.connect=9000";
	cfg.mem_mib = 64;
	cfg.quiet = true;
	vm = mvm_vm_new(&cfg);
	if (!vm) {
		printf("FAIL boot: %s\n", mvm_last_error());
		return 1;
	}
	mvm_console_subscribe(vm, on_console, NULL);
	vs = mvm_vm_vsock(vm);
	if (!vs || mvm_vsock_listen(vs, 9000, on_accept, NULL)) {
		printf("FAIL vsock: %s\n", mvm_last_error());
		return 1;
	}
	if (mvm_vm_start(vm) || !wait_for("vsock-guest: ready", 60)) {
		printf("FAIL boot: the guest did not become ready\n");
		mvm_vm_free(vm);
		return 1;
	}
	rc = run_scenarios(vs, argc, argv, 2);
	mvm_vm_free(vm);
	return rc;
}

/** run_scenarios() - argv[first..] in order; stops at the first failure */
static int run_scenarios(mvm_vsock *vs, int argc, char **argv, int first)
{
	int rc = 0;

	for (int i = first; i < argc && !rc; i++) {
		const char *a = argv[i], *colon = strchr(a, ':');
		unsigned long long v = colon ? strtoull(colon + 1, NULL, 0) : 0;

		if (!strcmp(a, "ping"))
			rc = sc_ping(vs);
		else if (!strncmp(a, "echo:", 5))
			rc = sc_echo(vs, v);
		else if (!strncmp(a, "concurrent:", 11))
			rc = sc_concurrent(vs, (int)v);
		else if (!strcmp(a, "closed"))
			rc = sc_closed(vs);
		else if (!strcmp(a, "guest-connect"))
			rc = sc_guest_connect();
		else if (!strncmp(a, "sink:", 5))
			rc = sc_sink(vs, v);
		else if (!strncmp(a, "source:", 7))
			rc = sc_source(vs, v);
		else if (!strncmp(a, "latency:", 8))
			rc = sc_latency(vs, (int)v);
		else
			rc = fail(a, "unknown scenario");
	}
	return rc;
}
