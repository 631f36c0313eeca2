/* SPDX-License-Identifier: MIT */
/*
 * test_vsock_auth.c - the vsock client's side of the TCP authentication handshake
 * (mvm_vsock_set_secret(), inside mvm_vsock_connect()), against small agents on 127.0.0.1:
 * the real agent-side state machine with the right key, with another key, an old plain
 * agent that answers JSON at once, one that closes, one that never answers; a secret
 * replaced from another thread while a connect is under way; a client whose secret could
 * not be set up refusing to connect in plaintext.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "microvm/error.h"
#include "microvm/vsock.h"
#include "mvm_auth.h"

#define SECRET	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define OTHER	"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

enum agent_mode {
	AG_GOOD,	/* handshake with SECRET, then echo one line as "ok:LINE" */
	AG_OTHER_KEY,	/* handshake with OTHER */
	AG_PLAIN,	/* an unauthenticated agent: answers a JSON line at once */
	AG_CLOSE,	/* reads the HELLO, closes */
	AG_SILENT,	/* reads the HELLO, never answers */
	AG_REPLACE,	/* as AG_GOOD, but after the HELLO replaces @replace's secret with OTHER */
};

struct agent {
	int lfd;
	uint16_t port;
	enum agent_mode mode;
	pthread_t thread;
	char got[256];		/* what followed the handshake */
	size_t got_len;
	int result;		/* agent side: MVM_AUTH_DONE or the error */
	mvm_vsock *replace;	/* AG_REPLACE: the client whose secret is replaced mid-connect */
	int replace_rc;		/* what mvm_vsock_set_secret() returned there */
};

static ssize_t read_some(int fd, void *buf, size_t n)
{
	ssize_t r;

	do {
		r = recv(fd, buf, n, 0);
	} while (r < 0 && errno == EINTR);
	return r;
}

static void *agent_thread(void *arg)
{
	struct agent *a = arg;
	uint8_t buf[64], out[MVM_AUTH_CHALLENGE_LEN];
	struct mvm_auth_key key = { 0 };
	struct mvm_auth st = { 0 };
	int fd = accept(a->lfd, NULL, NULL);
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (mvm_auth_key_init_hex(&key, a->mode == AG_OTHER_KEY ? OTHER : SECRET, 64) ||
	    mvm_auth_agent_init(&st, &key, a->port)) {
		a->result = -ENOMEM;
		goto out;
	}
	if (a->mode == AG_PLAIN) {
		(void)!write(fd, "{\"status\":\"pong\"}\n", 18);
		while (read_some(fd, buf, sizeof(buf)) > 0)
			;
		goto out;
	}
	for (;;) {
		size_t want = mvm_auth_agent_want(&st);
		int r;

		if (!want)
			break;
		n = read_some(fd, buf, want);
		if (n <= 0) {
			a->result = -EPIPE;
			goto out;
		}
		r = mvm_auth_agent_input(&st, buf, (size_t)n, out);
		if (r == MVM_AUTH_SEND) {
			if (a->mode == AG_CLOSE)
				goto out;
			if (a->mode == AG_REPLACE)	/* the connect waits for the challenge */
				a->replace_rc = mvm_vsock_set_secret(a->replace, OTHER);
			if (a->mode == AG_SILENT) {
				while (read_some(fd, buf, sizeof(buf)) > 0)
					;
				goto out;
			}
			(void)!write(fd, out, sizeof(out));
		}
		a->result = r;
		if (r < 0)
			goto out;
	}
	while (a->got_len < sizeof(a->got) - 1) {
		n = read_some(fd, a->got + a->got_len, 1);
		if (n <= 0 || a->got[a->got_len] == '\n')
			break;
		a->got_len++;
	}
	a->got[a->got_len] = '\0';
	(void)!write(fd, "ok:", 3);
	(void)!write(fd, a->got, a->got_len);
	(void)!write(fd, "\n", 1);
out:
	mvm_auth_wipe(&st);
	mvm_auth_key_fini(&key);
	close(fd);
	return NULL;
}

/** agent_start_for() - start an agent in @mode; AG_REPLACE replaces @replace's secret */
static void agent_start_for(struct agent *a, enum agent_mode mode, mvm_vsock *replace)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	memset(a, 0, sizeof(*a));
	a->mode = mode;
	a->replace = replace;
	a->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(a->lfd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(a->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(a->lfd, 4), 0);
	assert_int_equal(getsockname(a->lfd, (struct sockaddr *)&sin, &len), 0);
	a->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&a->thread, NULL, agent_thread, a), 0);
}

static void agent_start(struct agent *a, enum agent_mode mode)
{
	agent_start_for(a, mode, NULL);
}

static void agent_join(struct agent *a)
{
	pthread_join(a->thread, NULL);
	close(a->lfd);
}

static mvm_vsock *keyed(const char *secret)
{
	mvm_vsock *vs = mvm_vsock_new_tcp("127.0.0.1");

	assert_non_null(vs);
	assert_int_equal(mvm_vsock_set_secret(vs, secret), 0);
	return vs;
}

/**
 * request_x() - start an agent in @mode, send it "x" through @vs, expect @want back
 * @vs:		client
 * @mode:	the agent's behaviour
 * @want:	the answer
 * @a:		receives the agent, joined
 */
static void request_x(mvm_vsock *vs, enum agent_mode mode, const char *want, struct agent *a)
{
	char *resp = NULL;

	agent_start(a, mode);
	assert_int_equal(mvm_vsock_request(vs, a->port, "x", 1, &resp, NULL, 2000), 0);
	assert_string_equal(resp, want);
	free(resp);
	agent_join(a);
}

static void test_good_agent(void **state)
{
	struct agent a;
	mvm_vsock *vs = keyed(SECRET);
	char *resp = NULL;

	(void)state;
	agent_start(&a, AG_GOOD);
	assert_int_equal(mvm_vsock_request(vs, a.port, "{\"cmd\":\"ping\"}", 14, &resp, NULL,
					   5000), 0);
	agent_join(&a);
	assert_int_equal(a.result, MVM_AUTH_DONE);
	/* the request arrives after the handshake, intact */
	assert_string_equal(a.got, "{\"cmd\":\"ping\"}");
	assert_string_equal(resp, "ok:{\"cmd\":\"ping\"}");
	free(resp);
	mvm_vsock_free(vs);
}

static void test_refused(enum agent_mode mode, int want_err, const char *want_msg)
{
	char msg[128];
	struct agent a;
	mvm_vsock *vs = keyed(SECRET);
	char *resp = NULL;
	struct timespec t0, t1;

	agent_start(&a, mode);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(mvm_vsock_request(vs, a.port, "{\"cmd\":\"vpn_start\",\"password\":\"pw\"}",
					   34, &resp, NULL, 1500), want_err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_null(resp);
	snprintf(msg, sizeof(msg), "the agent at 127.0.0.1:%u ", a.port);
	assert_non_null(strstr(mvm_last_error(), msg));
	assert_non_null(strstr(mvm_last_error(), want_msg));
	agent_join(&a);
	/* the agent never saw the request, whatever it was */
	assert_int_equal(a.got_len, 0);
	if (want_err == -EACCES)	/* at once, not after the timeout */
		assert_true(t1.tv_sec - t0.tv_sec < 1 ||
			    (t1.tv_sec - t0.tv_sec == 1 && t1.tv_nsec < t0.tv_nsec));
	mvm_vsock_free(vs);
}

static void test_impostor_agent(void **state)
{
	(void)state;
	test_refused(AG_OTHER_KEY, -EACCES, "failed authentication (wrong secret or not our agent)");
}

static void test_plain_agent(void **state)
{
	(void)state;
	test_refused(AG_PLAIN, -EACCES, "failed authentication (wrong secret or not our agent)");
}

static void test_closing_agent(void **state)
{
	(void)state;
	test_refused(AG_CLOSE, -EACCES, "failed authentication (wrong secret or not our agent)");
}

static void test_silent_agent(void **state)
{
	(void)state;
	test_refused(AG_SILENT, -ETIMEDOUT, "did not complete the authentication handshake "
		     "within 1500 ms");
}

static void test_wrong_secret_on_host(void **state)
{
	struct agent a;
	mvm_vsock *vs = keyed(OTHER);

	(void)state;
	agent_start(&a, AG_GOOD);
	assert_int_equal(mvm_vsock_connect(vs, a.port, 2000), -EACCES);
	agent_join(&a);
	/* the host sent no proof: the agent saw the end of the stream while waiting for it */
	assert_int_equal(a.result, -EPIPE);
	mvm_vsock_free(vs);
}

static void test_set_secret(void **state)
{
	mvm_vsock *vs = mvm_vsock_new_tcp("127.0.0.1");
	struct agent a;

	(void)state;
	assert_int_equal(mvm_vsock_set_secret(vs, "abc"), -EINVAL);
	assert_int_equal(mvm_vsock_set_secret(vs, SECRET "0"), -EINVAL);
	assert_int_equal(mvm_vsock_set_secret(NULL, SECRET), -EINVAL);
	/* unkeyed: plain, as over virtio-vsock */
	assert_int_equal(mvm_vsock_set_secret(vs, SECRET), 0);
	assert_int_equal(mvm_vsock_set_secret(vs, NULL), 0);
	request_x(vs, AG_PLAIN, "{\"status\":\"pong\"}", &a);
	mvm_vsock_free(vs);
}

/* A replaced secret: the next connect uses the new key, the old one is gone (ASan: freed once) */
static void test_secret_replaced(void **state)
{
	mvm_vsock *vs = keyed(OTHER);
	struct agent a;

	(void)state;
	assert_int_equal(mvm_vsock_set_secret(vs, SECRET), 0);
	request_x(vs, AG_GOOD, "ok:x", &a);
	assert_int_equal(a.result, MVM_AUTH_DONE);
	/* and back: the agent with SECRET is refused again */
	assert_int_equal(mvm_vsock_set_secret(vs, OTHER), 0);
	agent_start(&a, AG_GOOD);
	assert_int_equal(mvm_vsock_connect(vs, a.port, 2000), -EACCES);
	agent_join(&a);
	mvm_vsock_free(vs);
}

/*
 * The secret replaced from another thread (the agent's) while a connect waits for the
 * challenge: that connect completes on the key it copied, the old key is freed under it
 * (ASan: no use after free, freed once), and the next connect uses the new key.
 */
static void test_secret_replaced_during_connect(void **state)
{
	mvm_vsock *vs = keyed(SECRET);
	struct agent a;

	(void)state;
	agent_start_for(&a, AG_REPLACE, vs);
	{
		char *resp = NULL;

		assert_int_equal(mvm_vsock_request(vs, a.port, "x", 1, &resp, NULL, 2000), 0);
		assert_string_equal(resp, "ok:x");
		free(resp);
	}
	agent_join(&a);
	assert_int_equal(a.replace_rc, 0);
	assert_int_equal(a.result, MVM_AUTH_DONE);
	agent_start(&a, AG_GOOD);
	assert_int_equal(mvm_vsock_connect(vs, a.port, 2000), -EACCES);
	agent_join(&a);
	mvm_vsock_free(vs);
}

/*
 * A secret that cannot be set up leaves the client keyed without a key: it refuses to
 * connect rather than talk to the agent in plaintext, fresh or after a good secret.
 */
static void test_bad_secret_fails_closed(void **state)
{
	mvm_vsock *vs = mvm_vsock_new_tcp("127.0.0.1");
	struct agent a;

	(void)state;
	for (int round = 0; round < 2; round++) {
		assert_int_equal(mvm_vsock_set_secret(vs, round ? SECRET "0" : "abc"), -EINVAL);
		agent_start(&a, AG_PLAIN);
		assert_int_equal(mvm_vsock_connect(vs, a.port, 2000), -EINVAL);
		assert_non_null(strstr(mvm_last_error(), "cannot start the authentication"));
		agent_join(&a);
		assert_int_equal(mvm_vsock_set_secret(vs, SECRET), 0);
	}
	mvm_vsock_free(vs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_agent),
		cmocka_unit_test(test_impostor_agent),
		cmocka_unit_test(test_plain_agent),
		cmocka_unit_test(test_closing_agent),
		cmocka_unit_test(test_silent_agent),
		cmocka_unit_test(test_wrong_secret_on_host),
		cmocka_unit_test(test_set_secret),
		cmocka_unit_test(test_secret_replaced),
		cmocka_unit_test(test_secret_replaced_during_connect),
		cmocka_unit_test(test_bad_secret_fails_closed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
