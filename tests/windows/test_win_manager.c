/* SPDX-License-Identifier: MIT */
/*
 * test_win_manager.c - the VPN manager built for Windows, run under Wine (make windows).
 *
 * The manager attaches to a scripted agent: a Winsock server on 127.0.0.1:1025 (the agent's
 * control port; each test program runs in a network namespace of its own) in a thread of
 * this process, which answers every JSON request line by its "cmd" as microvm-agent would.
 * That drives the manager's whole request path on Windows - the TCP vsock client, cJSON
 * built for mingw, the agent-answer parsers, the watchdog thread, status - and its SOCKS5
 * server (libuv) on a free port; the parsers' edge cases are the Linux unit tests'
 * (tests/unit/manager), the same code.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "microvm/contract.h"
#include "microvm/manager.h"
#include "microvm/vsock.h"
#include "win_peer.h"

/**
 * struct agent - the scripted agent
 * @ls:		listening socket on 127.0.0.1:MVM_AGENT_PORT
 * @stop:	set to end the thread (which then accepts no more)
 * @requests:	requests served
 * @lock:	guards @seen
 * @seen:	every request line served, one per line (the manager's watchdog pings in between
 *		the test's own requests, so "the last request" is not the test's)
 */
struct agent {
	SOCKET ls;
	volatile LONG stop;
	volatile LONG requests;
	pthread_t thread;
	pthread_mutex_t lock;
	char seen[16384];
};

/**
 * agent_saw() - whether one request line served so far contains both @a and @b
 * @ag:	the agent
 * @a:	a string the line contains
 * @b:	another string the same line contains (NULL: only @a)
 */
static int agent_saw(struct agent *ag, const char *a, const char *b)
{
	const char *line, *end;
	char one[512];
	int found = 0;
	size_t n;

	pthread_mutex_lock(&ag->lock);
	for (line = ag->seen; *line && !found; line = *end ? end + 1 : end) {
		end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		n = (size_t)(end - line) < sizeof(one) ? (size_t)(end - line) : sizeof(one) - 1;
		memcpy(one, line, n);
		one[n] = '\0';
		found = strstr(one, a) && (!b || strstr(one, b));
	}
	pthread_mutex_unlock(&ag->lock);
	return found;
}

/* agent_answer() - microvm-agent's answer to one request line */
static const char *agent_answer(const char *req)
{
	static const struct {
		const char *cmd, *answer;
	} script[] = {
		{ "\"ping\"", "{\"status\":\"pong\"}" },
		{ "\"vpn_status\"",
		  "{\"status\":\"connected\",\"tun_ip\":\"10.8.0.6\",\"profile\":\"corp.ovpn\"}" },
		{ "\"vpn_set_profile\"", "{\"status\":\"ok\"}" },
		{ "\"list_profiles\"", "{\"status\":\"ok\",\"profiles\":[\"corp.ovpn\",7,\"home\"]}" },
		{ "\"vpn_start\"",
		  "{\"status\":\"webauth_required\",\"auth_url\":\"https://sso.example/a\"}" },
		{ "\"vpn_stop\"", "{\"status\":\"disconnected\"}" },
	};
	size_t i;

	for (i = 0; i < sizeof(script) / sizeof(script[0]); i++)
		if (strstr(req, "\"cmd\"") && strstr(req, script[i].cmd))
			return script[i].answer;
	return "{\"status\":\"error\",\"error\":\"unknown command\"}";
}

/* agent_thread() - serve one request per connection until told to stop */
static void *agent_thread(void *arg)
{
	struct agent *a = arg;
	char line[512], out[600];
	size_t len;
	SOCKET c;
	int n;

	while (!a->stop) {
		if (mvm_sock_wait((int)a->ls, 0, 50) <= 0)
			continue;
		c = accept(a->ls, NULL, NULL);
		if (c == INVALID_SOCKET)
			continue;
		mvm_sock_nonblock((int)c, 0);	/* accepted sockets inherit non-blocking mode */
		len = 0;
		while (len + 1 < sizeof(line) && (n = recv(c, line + len, 1, 0)) == 1 &&
		       line[len] != '\n')
			len++;
		line[len] = '\0';
		pthread_mutex_lock(&a->lock);
		len = strlen(a->seen);
		if (len + strlen(line) + 2 < sizeof(a->seen))
			snprintf(a->seen + len, sizeof(a->seen) - len, "%s\n", line);
		pthread_mutex_unlock(&a->lock);
		snprintf(out, sizeof(out), "%s\n", agent_answer(line));
		send(c, out, (int)strlen(out), 0);
		closesocket(c);
		InterlockedIncrement(&a->requests);
	}
	return NULL;
}

/* agent_start() - listen on the control port; Return: 0 or -1 */
static int agent_start(struct agent *a)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	u_long on = 1;

	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	if (mvm_sock_init())
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(MVM_AGENT_PORT);
	a->ls = socket(AF_INET, SOCK_STREAM, 0);
	if (a->ls == INVALID_SOCKET || bind(a->ls, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(a->ls, 16) || ioctlsocket(a->ls, FIONBIO, &on))
		return -1;
	return pthread_create(&a->thread, NULL, agent_thread, a) ? -1 : 0;
}

static void agent_stop(struct agent *a)
{
	InterlockedExchange(&a->stop, 1);
	pthread_join(a->thread, NULL);
	closesocket(a->ls);
	pthread_mutex_destroy(&a->lock);
}

struct log {
	pthread_mutex_t lock;
	int lines;
};

static void log_cb(void *opaque, const char *line)
{
	struct log *l = opaque;

	(void)line;
	pthread_mutex_lock(&l->lock);
	l->lines++;
	pthread_mutex_unlock(&l->lock);
}

/* An attached manager: requests, answers, status, SOCKS on, then detach. */
static void test_attached(void)
{
	struct mvm_manager_config cfg;
	struct mvm_manager_status st;
	struct mvm_socks_config socks;
	struct mvm_vpn_info info;
	struct log lg = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct agent a;
	mvm_manager *m;
	char **names = NULL;
	size_t count = 0;
	int port;

	CHECK(agent_start(&a) == 0);	/* also starts Winsock */
	port = free_port();
	CHECK(port > 0);
	mvm_manager_config_init(&cfg);
	mvm_socks_config_init(&socks);
	cfg.boot_timeout_ms = 10000;
	socks.port = (uint16_t)port;
	cfg.socks = &socks;
	cfg.log = log_cb;
	cfg.log_opaque = &lg;
	m = mvm_manager_new(&cfg);
	CHECK(m != NULL);
	if (!m) {
		agent_stop(&a);
		return;
	}
	CHECK(mvm_manager_attach(m, mvm_vsock_new_tcp("127.0.0.1")) == 0);
	CHECK(agent_saw(&a, "\"ping\"", NULL));

	CHECK(mvm_manager_vpn_status(m, &info) == 0);
	CHECK(info.state == MVM_VPN_CONNECTED);
	CHECK(strcmp(info.tun_ip, "10.8.0.6") == 0);
	CHECK(strcmp(info.profile, "corp.ovpn") == 0);

	CHECK(mvm_manager_upload_profile(m, "corp.ovpn", "client\nremote vpn.example 1194\n") == 0);
	CHECK(agent_saw(&a, "\"vpn_set_profile\"", "remote vpn.example"));

	CHECK(mvm_manager_list_profiles(m, &names, &count) == 0);
	CHECK(count == 2);	/* the number in the list is skipped */
	CHECK(count == 2 && strcmp(names[0], "corp.ovpn") == 0 && strcmp(names[1], "home") == 0);
	mvm_manager_free_list(names, count);

	/* a password goes to the agent, and the answer asks for a browser */
	CHECK(mvm_manager_vpn_connect(m, "corp.ovpn", NULL, "alice", "s3cret", &info) == 0);
	CHECK(agent_saw(&a, "\"vpn_start\"", "\"alice\""));
	CHECK(info.state == MVM_VPN_WEBAUTH);
	CHECK(strcmp(info.auth_url, "https://sso.example/a") == 0);
	CHECK(mvm_manager_vpn_disconnect(m) == 0);

	mvm_manager_get_status(m, &st);
	CHECK(st.attached && st.vm_running && st.agent_reachable);
	CHECK(strcmp(st.hypervisor, "attached") == 0);
	CHECK(st.socks_running && st.socks_port == port);
	CHECK(strcmp(st.socks_addr, "127.0.0.1") == 0);
	CHECK(st.fault[0] == '\0');

	/* an unknown answer is the agent's error, reported and kept as the last error */
	CHECK(mvm_manager_check_webauth(m, &info) < 0 || info.state == MVM_VPN_ERROR);

	CHECK(mvm_manager_stop_vm(m, 2000) == 0);
	mvm_manager_get_status(m, &st);
	CHECK(!st.vm_running && !st.socks_running);
	mvm_manager_free(m);
	agent_stop(&a);
	CHECK(a.requests >= 6);
}

/* Attach to nothing: a clear error, no thread left behind. */
static void test_attach_no_agent(void)
{
	struct mvm_manager_config cfg;
	struct mvm_manager_status st;
	mvm_manager *m;

	mvm_manager_config_init(&cfg);
	cfg.no_socks = true;
	cfg.boot_timeout_ms = 600;
	m = mvm_manager_new(&cfg);
	CHECK(m != NULL);
	if (!m)
		return;
	CHECK(mvm_manager_attach(m, mvm_vsock_new_tcp("127.0.0.1")) < 0);
	mvm_manager_get_status(m, &st);
	CHECK(!st.vm_running);
	CHECK(st.last_error[0] != '\0');
	CHECK(mvm_manager_vpn_status(m, &(struct mvm_vpn_info){ 0 }) < 0);
	mvm_manager_free(m);
}

int main(void)
{
	static const struct win_test tests[] = {
		{ "manager_attached", test_attached },
		{ "manager_attach_no_agent", test_attach_no_agent },
	};

	return win_run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
