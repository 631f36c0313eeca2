// SPDX-License-Identifier: MIT
/*
 * control.c - the control port: newline-delimited JSON requests, one answer line each
 *
 * Theory of operation
 *
 *   Each connection has an input buffer (at most AGENT_LINE_MAX plus one read) and an
 *   output buffer. Complete lines are handled in order; the answer to a request is always
 *   queued before the next request is looked at, so answers come in request order.
 *   vpn_start and vpn_stop cannot be answered at once: the connection is parked (@wait)
 *   and further lines stay buffered until the VPN module reports an outcome to
 *   ctl_vpn_changed(), the listener ctl_init() registers with vpn_on_change(). A client may half-close after its last request: pending answers are still
 *   written, then the connection is closed. A line longer than AGENT_LINE_MAX gets an
 *   error answer and the connection is closed. Consumed input is wiped (passwords).
 *   Closing after an error answer lingers: our side is shut down and whatever the client
 *   still sends is read and dropped (input buffer freed) until it closes, for at most
 *   CTL_LINGER_MS, so that closing with unread input never turns into a reset that
 *   destroys the error line.
 *
 *   Limits (docs/security.md): at most AGENT_CTL_CONN_MAX connections (one more is told
 *   "too many control connections" and closed); a connection that is not parked on the VPN
 *   and makes no progress for --control-idle-timeout seconds is closed; input buffers may
 *   grow past their first 128 KiB only while all connections together stay within
 *   AGENT_CTL_BUDGET, otherwise the growing connection gets an error line and is closed;
 *   unread output stops request processing at CTL_OUT_HIGH. Accepting goes through the
 *   shared loop in transport.c, which pauses on EMFILE instead of spinning.
 *
 *   Second vpn_start while a VPN session exists: with the same profile the request joins
 *   the session and gets its outcome (current state if known: connected + tun_ip or
 *   webauth_required + auth_url); its credentials are ignored. With another profile it is
 *   answered with error "vpn already started with profile X; vpn_stop first". "Same" is
 *   after profile_resolve(): "corp" and "corp.ovpn" are the same stored profile.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

/* Stop reading requests while this much output is unread by the client. */
#define CTL_OUT_HIGH	(256 * 1024)
#define CTL_READ_CHUNK	65536
/* Every connection's first input buffer; only growth beyond it counts against the budget. */
#define CTL_IN_FIRST	(2 * CTL_READ_CHUNK)
/* After an error answer, drop what the client still sends for at most this long. */
#define CTL_LINGER_MS	2000

/**
 * enum ctl_wait - what a parked connection waits for
 */
enum ctl_wait {
	CTL_WAIT_NONE,
	CTL_WAIT_START,		/* an outcome of vpn_start */
	CTL_WAIT_STOP,		/* OpenVPN gone */
	CTL_WAIT_IDLE,		/* a failed or stopped session to end, then rerun @deferred */
};

/**
 * struct ctl_conn - one control connection
 * @ev:		socket registration
 * @in:		input buffer
 * @inoff:	start of unconsumed input
 * @inlen:	end of input
 * @incap:	allocated size
 * @out:	output buffer
 * @outoff:	start of unsent output
 * @outlen:	end of output
 * @outcap:	allocated size
 * @rd_eof:	the client half-closed
 * @closing:	close once the output is flushed
 * @wait:	parked on the VPN
 * @deferred:	CTL_WAIT_IDLE: copy of the request line to run again (wiped when freed)
 * @deferred_len: its length
 * @active_ms:	monotonic time of the last progress (bytes in or out, an answer)
 * @linger_ms:	closing: our side is shut, input is dropped until then (0: not lingering)
 * @next:	list link
 * @prev:	list link
 */
struct ctl_conn {
	struct agent_ev ev;
	char *in;
	size_t inoff, inlen, incap;
	char *out;
	size_t outoff, outlen, outcap;
	bool rd_eof, closing;
	enum ctl_wait wait;
	char *deferred;
	size_t deferred_len;
	uint64_t active_ms;
	uint64_t linger_ms;
	struct ctl_conn *next, *prev;
};

static struct agent_listener lsn;
/* Connections refused at the cap since the last one accepted (for the log). */
static unsigned long refused;

static void ctl_process(struct agent *a, struct ctl_conn *c);
static void ctl_tick(struct agent *a);
static void ctl_vpn_changed(struct agent *a);

/**
 * drop_deferred() - wipe and free a deferred request
 * @c:		connection
 */
static void drop_deferred(struct ctl_conn *c)
{
	if (!c->deferred)
		return;
	explicit_bzero(c->deferred, c->deferred_len);
	free(c->deferred);
	c->deferred = NULL;
	c->deferred_len = 0;
}

/**
 * budget_of() - input bytes of @c that count against AGENT_CTL_BUDGET
 * @incap:	the connection's input buffer size
 *
 * Return: bytes beyond the first buffer
 */
static size_t budget_of(size_t incap)
{
	return incap > CTL_IN_FIRST ? incap - CTL_IN_FIRST : 0;
}

/**
 * drop_input() - wipe and free the input buffer, giving its bytes back to the budget
 * @a:		agent
 * @c:		connection
 */
static void drop_input(struct agent *a, struct ctl_conn *c)
{
	if (c->in) {
		explicit_bzero(c->in, c->incap);
		free(c->in);
	}
	a->ctl_budget -= budget_of(c->incap);
	c->in = NULL;
	c->incap = c->inoff = c->inlen = 0;
}

/**
 * ctl_close() - drop a connection
 * @a:		agent
 * @c:		connection
 */
static void ctl_close(struct agent *a, struct ctl_conn *c)
{
	agent_ev_close(a, &c->ev);
	if (c->prev)
		c->prev->next = c->next;
	else
		a->ctl = c->next;
	if (c->next)
		c->next->prev = c->prev;
	drop_input(a, c);
	a->nctl--;
	free(c->out);
	c->out = NULL;
	drop_deferred(c);
	agent_defer_free(a, c);
}

/**
 * ctl_flush() - write buffered output
 * @c:		connection
 *
 * Return: 0, or -errno on a write error (the connection is dead)
 */
static int ctl_flush(struct ctl_conn *c)
{
	if (c->outoff < c->outlen)
		c->active_ms = agent_now_ms();
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->ev.fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		c->outoff += (size_t)n;
	}
	c->outoff = c->outlen = 0;
	return 0;
}

/**
 * ctl_update() - register for what the connection can do next, or close it
 * @a:		agent
 * @c:		connection
 */
static void ctl_update(struct agent *a, struct ctl_conn *c)
{
	uint32_t mask = 0;
	bool pending_out;

	if (ctl_flush(c) < 0) {
		ctl_close(a, c);
		return;
	}
	pending_out = c->outoff < c->outlen;
	if (!pending_out && c->closing && !c->rd_eof) {
		/* linger: shut our side, drop what still comes until the client closes */
		if (!c->linger_ms) {
			drop_input(a, c);
			if (shutdown(c->ev.fd, SHUT_WR) < 0) {
				ctl_close(a, c);
				return;
			}
			c->linger_ms = agent_now_ms() + CTL_LINGER_MS;
		}
		if (agent_ev_set(a, &c->ev, EPOLLIN) < 0)
			ctl_close(a, c);
		return;
	}
	if (!pending_out && (c->closing || (c->rd_eof && c->wait == CTL_WAIT_NONE &&
					    c->inoff == c->inlen))) {
		ctl_close(a, c);
		return;
	}
	if (!c->closing && !c->rd_eof && c->outlen - c->outoff < CTL_OUT_HIGH &&
	    c->inlen - c->inoff <= AGENT_LINE_MAX)
		mask |= EPOLLIN;
	if (pending_out)
		mask |= EPOLLOUT;
	if (agent_ev_set(a, &c->ev, mask) < 0)
		ctl_close(a, c);
}

/**
 * ctl_send() - queue one answer line
 * @c:		connection
 * @obj:	answer object (consumed)
 */
static void ctl_send(struct ctl_conn *c, cJSON *obj)
{
	char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
	size_t n;

	cJSON_Delete(obj);
	if (!s) {
		s = strdup("{\"status\":\"error\",\"error\":\"out of memory\"}");
		if (!s) {
			c->closing = true;
			return;
		}
	}
	n = strlen(s);
	if (c->outlen + n + 1 > c->outcap) {
		size_t nc = c->outlen + n + 1 + 4096;
		char *no = realloc(c->out, nc);

		if (!no) {
			free(s);
			c->closing = true;
			return;
		}
		c->out = no;
		c->outcap = nc;
	}
	memcpy(c->out + c->outlen, s, n);
	c->out[c->outlen + n] = '\n';
	c->outlen += n + 1;
	free(s);
}

/**
 * answer() - a new answer object with "status"
 * @status:	status string
 *
 * Return: object (NULL on allocation failure; ctl_send() copes)
 */
static cJSON *answer(const char *status)
{
	cJSON *o = cJSON_CreateObject();

	if (o)
		cJSON_AddStringToObject(o, "status", status);
	return o;
}

/**
 * answer_error() - {"status":"error","error":msg}
 * @msg:	message
 *
 * Return: object
 */
static cJSON *answer_error(const char *msg)
{
	cJSON *o = answer("error");

	if (o)
		cJSON_AddStringToObject(o, "error", msg);
	return o;
}

/**
 * answer_vpn() - the VPN's state as vpn_status reports it
 * @a:		agent
 *
 * Return: object
 */
static cJSON *answer_vpn(struct agent *a)
{
	cJSON *o;

	switch (vpn_view(a)) {
	case VPN_VIEW_CONNECTED:
		o = answer("connected");
		if (o) {
			cJSON_AddStringToObject(o, "tun_ip", vpn_tun_ip(a));
			cJSON_AddStringToObject(o, "dev", vpn_dev(a));
		}
		break;
	case VPN_VIEW_WEBAUTH:
		o = answer("webauth_required");
		if (o)
			cJSON_AddStringToObject(o, "auth_url", vpn_auth_url(a));
		break;
	default:
		o = answer("disconnected");
		if (o && vpn_reason(a)[0])
			cJSON_AddStringToObject(o, "reason", vpn_reason(a));
		break;
	}
	if (o && vpn_profile(a)[0])
		cJSON_AddStringToObject(o, "profile", vpn_profile(a));
	if (o && vpn_state_name(a)[0])
		cJSON_AddStringToObject(o, "state", vpn_state_name(a));
	return o;
}

/**
 * start_outcome() - the answer to a parked vpn_start, if the outcome is known
 * @a:		agent
 *
 * Return: answer object, or NULL while pending
 */
static cJSON *start_outcome(struct agent *a)
{
	cJSON *o;

	switch (vpn_view(a)) {
	case VPN_VIEW_CONNECTED:
		o = answer("connected");
		if (o)
			cJSON_AddStringToObject(o, "tun_ip", vpn_tun_ip(a));
		return o;
	case VPN_VIEW_WEBAUTH:
		o = answer("webauth_required");
		if (o)
			cJSON_AddStringToObject(o, "auth_url", vpn_auth_url(a));
		return o;
	case VPN_VIEW_FAILED:
		return answer_error(vpn_reason(a));
	case VPN_VIEW_IDLE:
		return answer_error(vpn_reason(a)[0] ? vpn_reason(a) : "vpn stopped");
	case VPN_VIEW_PENDING:
		break;
	}
	return NULL;
}

/**
 * do_list() - list_profiles
 * @a:		agent
 *
 * Return: answer
 */
static cJSON *do_list(struct agent *a)
{
	char **names;
	size_t n;
	cJSON *o, *arr;
	int ret = profile_list(a->profile_dir, &names, &n);

	if (ret) {
		agent_log(a, "list profiles: %s", strerror(-ret));
		return answer_error("cannot read the profile store");
	}
	o = answer("ok");
	arr = cJSON_AddArrayToObject(o, "profiles");
	for (size_t i = 0; arr && i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
	profile_list_free(names, n);
	return o;
}

/**
 * do_start() - vpn_start: start, join, or refuse
 * @a:		agent
 * @c:		connection (parked on success)
 * @r:		request
 * @line:	the request line (kept when the request has to wait)
 * @len:	its length
 *
 * A session that failed or is being stopped is still "running" until OpenVPN has exited;
 * a vpn_start in that window waits for the exit and then runs as if it came afterwards,
 * so a quick retry after "authentication failed" starts afresh.
 *
 * Return: an answer now, or NULL when parked
 */
static cJSON *do_start(struct agent *a, struct ctl_conn *c, const struct agent_req *r,
		       const char *line, size_t len)
{
	char err[512], name[AGENT_PROFILE_NAME_MAX + 1];
	int ret;

	if (vpn_stopping(a)) {
		drop_deferred(c);
		c->deferred = malloc(len);
		if (!c->deferred)
			return answer_error("out of memory");
		memcpy(c->deferred, line, len);
		c->deferred_len = len;
		c->wait = CTL_WAIT_IDLE;
		return NULL;
	}
	/* "corp" and "corp.ovpn" name the same stored profile (profiles.c) */
	if (profile_resolve(a->profile_dir, r->profile, name, sizeof(name))) {
		profile_describe_missing(a->profile_dir, r->profile, err, sizeof(err));
		return answer_error(err);
	}
	if (vpn_running(a)) {
		if (strcmp(vpn_profile(a), name)) {
			snprintf(err, sizeof(err), "vpn already started with profile %s; vpn_stop "
				 "first", vpn_profile(a));
			return answer_error(err);
		}
	} else {
		ret = vpn_start(a, name, r->username, r->password, r->timeout_s,
				err, sizeof(err));
		if (ret)
			return answer_error(err);
	}
	c->wait = CTL_WAIT_START;
	return start_outcome(a);
}

/**
 * do_check_webauth() - vpn_check_webauth
 * @a:		agent
 *
 * Return: answer
 */
static cJSON *do_check_webauth(struct agent *a)
{
	switch (vpn_view(a)) {
	case VPN_VIEW_CONNECTED:
	case VPN_VIEW_WEBAUTH:
	case VPN_VIEW_FAILED:
		return start_outcome(a);
	case VPN_VIEW_PENDING:
		return answer_error("vpn is connecting, no web authentication pending");
	case VPN_VIEW_IDLE:
		break;
	}
	return answer_error("no web authentication pending");
}

/**
 * handle() - one request line
 * @a:		agent
 * @c:		connection
 * @line:	the line (no newline)
 * @len:	its length
 *
 * Return: answer, or NULL when the connection was parked
 */
static cJSON *handle(struct agent *a, struct ctl_conn *c, const char *line, size_t len)
{
	struct agent_req r;
	char err[256];
	cJSON *o = NULL;
	int ret;

	if (agent_req_parse(&r, line, len, err, sizeof(err))) {
		agent_req_free(&r);
		return answer_error(err);
	}
	agent_debug(a, "request %d", (int)r.cmd);
	switch (r.cmd) {
	case AGENT_CMD_PING:
		o = answer("pong");
		break;
	case AGENT_CMD_GET_AUTH_SECRET:
		o = answer("ok");
		if (o)
			cJSON_AddStringToObject(o, "auth_secret", a->auth_secret);
		break;
	case AGENT_CMD_VPN_SET_PROFILE:
		ret = profile_check_room(a->profile_dir, r.name, r.content_len, AGENT_PROFILES_MAX,
					 AGENT_PROFILES_TOTAL_MAX, err, sizeof(err));
		if (ret == -ENOSPC) {
			agent_log(a, "store profile %s: %s", r.name, err);
			o = answer_error(err);
			break;
		}
		if (!ret && ovpn_check_profile(r.content, r.content_len, err, sizeof(err))) {
			agent_log(a, "profile %s refused: %s", r.name, err);
			o = answer_error(err);
			break;
		}
		if (!ret)
			ret = profile_store(a->profile_dir, r.name, r.content, r.content_len);
		if (ret) {
			agent_log(a, "store profile %s: %s", r.name, strerror(-ret));
			o = answer_error("cannot store the profile");
		} else {
			agent_log(a, "profile %s stored (%zu bytes)", r.name, r.content_len);
			o = answer("ok");
		}
		break;
	case AGENT_CMD_LIST_PROFILES:
		o = do_list(a);
		break;
	case AGENT_CMD_VPN_START:
		o = do_start(a, c, &r, line, len);
		break;
	case AGENT_CMD_VPN_STOP:
		if (vpn_running(a)) {
			vpn_stop(a);
			c->wait = CTL_WAIT_STOP;
			if (vpn_running(a))
				break;
		}
		c->wait = CTL_WAIT_NONE;
		o = answer("disconnected");
		break;
	case AGENT_CMD_VPN_STATUS:
		o = answer_vpn(a);
		break;
	case AGENT_CMD_VPN_CHECK_WEBAUTH:
		o = do_check_webauth(a);
		break;
	case AGENT_CMD_SHUTDOWN:
		o = answer("ok");
		a->quit = AGENT_EXIT_POWEROFF;
		agent_log(a, "shutdown requested");
		break;
	}
	if (o)
		c->wait = CTL_WAIT_NONE;
	agent_req_free(&r);
	return o;
}

/**
 * ctl_process() - handle buffered complete lines until parked or out of input
 * @a:		agent
 * @c:		connection
 */
static void ctl_process(struct agent *a, struct ctl_conn *c)
{
	while (c->wait == CTL_WAIT_NONE && !c->closing && a->quit < 0 &&
	       c->outlen - c->outoff < CTL_OUT_HIGH) {
		char *start = c->in + c->inoff;
		size_t avail = c->inlen - c->inoff;
		char *nl = avail ? memchr(start, '\n', avail) : NULL;
		size_t len;
		cJSON *o;

		if (!nl) {
			if (avail > AGENT_LINE_MAX) {
				ctl_send(c, answer_error("request line longer than "
							 AGENT_LINE_MAX_TEXT));
				c->closing = true;
				break;
			}
			if (!c->rd_eof || !avail)
				break;
			len = avail;	/* last line without a newline */
		} else {
			len = (size_t)(nl - start);
			if (len > AGENT_LINE_MAX) {
				ctl_send(c, answer_error("request line longer than "
							 AGENT_LINE_MAX_TEXT));
				c->closing = true;
				break;
			}
		}
		if (len && start[len - 1] == '\r')
			len--;
		/* Empty lines are not requests. */
		o = NULL;
		if (len)
			o = handle(a, c, start, len);
		explicit_bzero(start, nl ? (size_t)(nl - start) + 1 : avail);
		c->inoff += nl ? (size_t)(nl - start) + 1 : avail;
		if (o)
			ctl_send(c, o);
		if (a->quit == AGENT_EXIT_POWEROFF)
			ctl_flush_all(a, 1000);
	}
	if (c->inoff == c->inlen)
		c->inoff = c->inlen = 0;
}

/**
 * ctl_read() - read what the client sent
 * @a:		agent
 * @c:		connection
 *
 * Return: 0, or -errno when the connection is dead
 */
static int ctl_read(struct agent *a, struct ctl_conn *c)
{
	ssize_t n;

	if (c->inoff && c->inoff == c->inlen)
		c->inoff = c->inlen = 0;
	if (c->inoff && c->incap - c->inlen < CTL_READ_CHUNK) {
		memmove(c->in, c->in + c->inoff, c->inlen - c->inoff);
		explicit_bzero(c->in + c->inlen - c->inoff, c->inoff);
		c->inlen -= c->inoff;
		c->inoff = 0;
	}
	if (c->incap - c->inlen < CTL_READ_CHUNK) {
		size_t nc = c->incap ? c->incap * 2 : CTL_READ_CHUNK * 2;
		char *ni;

		if (nc > AGENT_LINE_MAX + 2 * CTL_READ_CHUNK)
			nc = AGENT_LINE_MAX + 2 * CTL_READ_CHUNK;
		if (nc <= c->incap)
			return 0;	/* full: ctl_process() reports the long line */
		if (a->ctl_budget - budget_of(c->incap) + budget_of(nc) > AGENT_CTL_BUDGET)
			return -ENOBUFS;
		/* Not realloc(): the old buffer may hold a password and must be wiped. */
		ni = malloc(nc);
		if (!ni)
			return -ENOMEM;
		if (c->in) {
			memcpy(ni, c->in, c->inlen);
			explicit_bzero(c->in, c->incap);
			free(c->in);
		}
		a->ctl_budget += budget_of(nc) - budget_of(c->incap);
		c->in = ni;
		c->incap = nc;
	}
	n = recv(c->ev.fd, c->in + c->inlen, c->incap - c->inlen, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		c->rd_eof = true;
	c->inlen += (size_t)n;
	c->active_ms = agent_now_ms();
	return 0;
}

/**
 * ctl_refuse_input() - the request buffer budget is spent: error line, drop input, close
 * @a:		agent
 * @c:		connection
 */
static void ctl_refuse_input(struct agent *a, struct ctl_conn *c)
{
	agent_log(a, "control: request buffers of all connections reached "
		  AGENT_CTL_BUDGET_TEXT "; closing a connection");
	drop_input(a, c);
	ctl_send(c, answer_error("agent busy: request buffers of all connections are full ("
				 AGENT_CTL_BUDGET_TEXT "); try again"));
	c->closing = true;
}

/**
 * on_conn() - events on a control connection
 * @a:		agent
 * @ev:		its registration
 * @events:	what happened
 */
static void on_conn(struct agent *a, struct agent_ev *ev, uint32_t events)
{
	struct ctl_conn *c = (struct ctl_conn *)ev;

	if (events & EPOLLERR) {
		ctl_close(a, c);
		return;
	}
	if (c->linger_ms) {
		char drop[16384];
		ssize_t n = recv(c->ev.fd, drop, sizeof(drop), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			ctl_close(a, c);
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP)) && !c->rd_eof) {
		int ret = ctl_read(a, c);

		if (ret == -ENOBUFS) {
			ctl_refuse_input(a, c);
			ctl_update(a, c);
			return;
		}
		if (ret < 0) {
			ctl_close(a, c);
			return;
		}
	}
	ctl_process(a, c);
	ctl_update(a, c);
}

/**
 * ctl_refuse() - over AGENT_CTL_CONN_MAX: one error line, then close
 * @a:		agent
 * @fd:		the new connection
 *
 * The line is sent without waiting; if the socket cannot take it the client just sees the
 * connection closed.
 */
static void ctl_refuse(struct agent *a, int fd)
{
	static const char line[] = "{\"status\":\"error\",\"error\":\"too many control "
				   "connections (at most " AGENT_STR(AGENT_CTL_CONN_MAX) ")\"}\n";

	if (!refused++)
		agent_log(a, "control: %d connections open; refusing more",
			  AGENT_CTL_CONN_MAX);
	(void)!send(fd, line, sizeof(line) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/**
 * ctl_adopt() - serve a new control connection (authenticated, when over TCP)
 * @a:		agent
 * @fd:		the socket
 */
void ctl_adopt(struct agent *a, int fd)
{
	struct ctl_conn *c;

	if (a->nctl >= AGENT_CTL_CONN_MAX) {
		ctl_refuse(a, fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	if (refused)
		agent_log(a, "control: refused %lu connections at the limit", refused);
	refused = 0;
	c->ev.fd = fd;
	c->ev.cb = on_conn;
	c->active_ms = agent_now_ms();
	c->next = a->ctl;
	if (a->ctl)
		a->ctl->prev = c;
	a->ctl = c;
	a->nctl++;
	ctl_update(a, c);
}

/**
 * on_fd() - a new control connection from the shared accept loop
 * @a:		agent
 * @fd:		the socket
 *
 * Over TCP the connection first proves the host's secret (auth.c), which then hands it to
 * ctl_adopt(); over vsock it goes there at once.
 */
static void on_fd(struct agent *a, int fd)
{
	auth_begin(a, fd, a->opts.control_port, ctl_adopt);
}

/**
 * ctl_init() - serve the control port on @lfd; listen to the VPN, tick
 * @a:		agent (vpn_init() done)
 * @lfd:	listening socket
 *
 * Return: 0 or -errno
 */
int ctl_init(struct agent *a, int lfd)
{
	int ret = agent_on_tick(a, ctl_tick);

	if (!ret)
		ret = vpn_on_change(a, ctl_vpn_changed);
	if (ret)
		return ret;
	return agent_listener_init(a, &lsn, lfd, "control", on_fd);
}

/**
 * ctl_tick() - close idle connections; resume accepting after EMFILE
 * @a:		agent
 *
 * A connection parked on the VPN is not idle (vpn.c has its own timeouts); any other
 * connection that moved no byte for --control-idle-timeout seconds is closed.
 */
static void ctl_tick(struct agent *a)
{
	uint64_t now = agent_now_ms(), idle = (uint64_t)a->opts.ctl_idle_s * 1000;
	struct ctl_conn *c, *next;

	agent_listener_tick(a, &lsn);
	for (c = a->ctl; c; c = next) {
		next = c->next;
		if (c->linger_ms && now >= c->linger_ms) {
			ctl_close(a, c);
			continue;
		}
		if (c->wait == CTL_WAIT_NONE && !c->linger_ms && now - c->active_ms >= idle) {
			agent_debug(a, "control: closing a connection idle for %u s",
				    a->opts.ctl_idle_s);
			ctl_close(a, c);
		}
	}
}

/**
 * ctl_vpn_changed() - the VPN state changed: answer parked connections that can be
 * @a:		agent
 *
 * The listener ctl_init() registers with vpn_on_change().
 */
static void ctl_vpn_changed(struct agent *a)
{
	struct ctl_conn *c, *next;

	for (c = a->ctl; c; c = next) {
		cJSON *o = NULL;

		next = c->next;
		if (c->wait == CTL_WAIT_START) {
			o = start_outcome(a);
		} else if (c->wait == CTL_WAIT_STOP && !vpn_running(a)) {
			o = answer("disconnected");
		} else if (c->wait == CTL_WAIT_IDLE && !vpn_stopping(a)) {
			char *line = c->deferred;
			size_t len = c->deferred_len;

			c->deferred = NULL;
			c->deferred_len = 0;
			c->wait = CTL_WAIT_NONE;
			o = handle(a, c, line, len);
			explicit_bzero(line, len);
			free(line);
			if (!o) {
				ctl_update(a, c);
				continue;
			}
		}
		if (!o)
			continue;
		c->wait = CTL_WAIT_NONE;
		ctl_send(c, o);
		ctl_process(a, c);
		ctl_update(a, c);
	}
}

/**
 * ctl_fini() - close every control connection (agent exit)
 * @a:		agent
 */
void ctl_fini(struct agent *a)
{
	while (a->ctl)
		ctl_close(a, a->ctl);
	agent_ev_close(a, &lsn.ev);
}

/**
 * ctl_flush_all() - push out pending answers before exiting (bounded wait)
 * @a:		agent
 * @timeout_ms:	total time allowed
 */
void ctl_flush_all(struct agent *a, int timeout_ms)
{
	uint64_t end = agent_now_ms() + (uint64_t)timeout_ms;

	for (struct ctl_conn *c = a->ctl; c; c = c->next) {
		while (c->ev.fd >= 0 && c->outoff < c->outlen) {
			struct pollfd p = { .fd = c->ev.fd, .events = POLLOUT };
			uint64_t now = agent_now_ms();

			if (ctl_flush(c) < 0 || now >= end)
				break;
			if (c->outoff < c->outlen && poll(&p, 1, (int)(end - now)) <= 0)
				break;
		}
	}
}
