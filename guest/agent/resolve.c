// SPDX-License-Identifier: MIT
/*
 * resolve.c - name resolution for the inbound proxy, off the event loop
 *
 * Theory of operation
 *
 *   Names that need no lookup are answered in the event loop, before anything is queued
 *   (resolve_local()): "localhost" and *.localhost (RFC 6761) and whatever /etc/hosts
 *   lists (hosts.c). IP literals never get here (proxy.c). So local names never wait
 *   behind slow DNS lookups.
 *
 *   Other names go to worker threads, started on demand up to AGENT_RESOLVE_THREADS, that
 *   take jobs from a queue of at most AGENT_RESOLVE_QUEUE waiting jobs (mutex + condition
 *   variable); a full queue refuses the job at once (the proxy answers 0x01). Each
 *   finished job goes back to the event loop through a pipe (the job pointer is written
 *   whole; pipe writes of that size are atomic). Workers touch only the job, never agent
 *   state; the loop side alone reads and writes job->owner. A job whose client went away
 *   while it waited is taken out of the queue and freed (resolve_cancel()); one already
 *   running has its owner set to NULL and is freed when it comes back. A job whose
 *   deadline (the proxy connection's) passed while it waited is not resolved at all: it
 *   comes back at once with 0x06. With as many threads as lookups may run at once, a
 *   handful of names that never resolve hold only their own threads; the others go on.
 *
 *   A job first asks the DNS servers the VPN pushed (IPv4 A records, with res_nquery() on
 *   a private resolver state): an authoritative "no such name" ends there (status 0x04);
 *   if those servers do not answer, or none were pushed, getaddrinfo() (the system
 *   resolver: /etc/hosts, /etc/resolv.conf) is used.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "agent.h"

#define RESOLVE_HOSTS_MAX	(64 * 1024)
#define RESOLVE_STACK		(256 * 1024)

/**
 * struct resolver - the pool
 * @ev:		read end of the result pipe
 * @wfd:	write end
 * @lock:	protects the fields below it
 * @cond:	signalled when a job is queued
 * @head:	queue
 * @tail:	queue end
 * @nqueued:	jobs in the queue
 * @nthreads:	worker threads started
 * @nidle:	workers waiting for a job
 * @done:	called in the loop for each finished job
 */
struct resolver {
	struct agent_ev ev;
	int wfd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct resolve_job *head, *tail;
	size_t nqueued, nthreads, nidle;
	void (*done)(struct agent *a, struct resolve_job *j);
};

/**
 * query_pushed() - resolve through the VPN's DNS servers
 * @j:		job
 *
 * Return: 1 answered (j->status set), 0 no usable answer (try the system resolver)
 */
static int query_pushed(struct resolve_job *j)
{
	struct __res_state st;
	unsigned char ans[2048];
	ns_msg msg;
	int len, n4 = 0;

	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) < 0)
		return 0;
	st.options &= ~(RES_DNSRCH | RES_DEFNAMES);
	st.retrans = 2;
	st.retry = 2;
	/* IPv6 servers from resolv.conf live here and would take precedence: drop them. */
	for (int i = 0; i < MAXNS; i++) {
		free(st._u._ext.nsaddrs[i]);
		st._u._ext.nsaddrs[i] = NULL;
	}
	for (size_t i = 0; i < j->ndns && n4 < MAXNS; i++) {
		if (j->dns[i].ss_family != AF_INET)
			continue;
		memcpy(&st.nsaddr_list[n4++], &j->dns[i], sizeof(struct sockaddr_in));
	}
	if (!n4) {
		res_nclose(&st);
		return 0;
	}
	st.nscount = n4;
	len = res_nquery(&st, j->host, ns_c_in, ns_t_a, ans, sizeof(ans));
	if (len < 0) {
		int herr = st.res_h_errno;

		res_nclose(&st);
		if (herr == HOST_NOT_FOUND || herr == NO_DATA) {
			j->status = HS_ERR_HOSTUNREACH;
			return 1;
		}
		return 0;
	}
	res_nclose(&st);
	if (ns_initparse(ans, len, &msg) < 0)
		return 0;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an) && j->naddrs < AGENT_ADDR_MAX; i++) {
		ns_rr rr;
		struct sockaddr_in *in4;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			break;
		if (ns_rr_type(rr) != ns_t_a || ns_rr_rdlen(rr) != 4)
			continue;
		in4 = (struct sockaddr_in *)&j->addrs[j->naddrs++];
		memset(in4, 0, sizeof(j->addrs[0]));
		in4->sin_family = AF_INET;
		in4->sin_port = htons(j->port);
		memcpy(&in4->sin_addr, ns_rr_rdata(rr), 4);
	}
	j->status = j->naddrs ? HS_OK : HS_ERR_HOSTUNREACH;
	return 1;
}

/**
 * resolve_run() - resolve one job (in a worker thread; also callable directly)
 * @j:		job: host, port, dns filled in; addrs, naddrs, status set on return
 */
void resolve_run(struct resolve_job *j)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res, *ai;
	int ret;

	j->naddrs = 0;
	if (j->ndns && query_pushed(j))
		return;
	ret = getaddrinfo(j->host, NULL, &hints, &res);
	if (ret) {
		j->status = ret == EAI_SYSTEM || ret == EAI_MEMORY ? HS_ERR_GENERAL
								   : HS_ERR_HOSTUNREACH;
		return;
	}
	for (ai = res; ai && j->naddrs < AGENT_ADDR_MAX; ai = ai->ai_next) {
		struct sockaddr_storage *ss = &j->addrs[j->naddrs];

		if (ai->ai_addrlen > sizeof(*ss) ||
		    (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
			continue;
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, ai->ai_addr, ai->ai_addrlen);
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons(j->port);
		else
			((struct sockaddr_in6 *)ss)->sin6_port = htons(j->port);
		j->naddrs++;
	}
	freeaddrinfo(res);
	j->status = j->naddrs ? HS_OK : HS_ERR_HOSTUNREACH;
}

/**
 * worker() - resolver thread
 * @arg:	the pool
 *
 * Return: never
 */
static void *worker(void *arg)
{
	struct resolver *r = arg;

	for (;;) {
		struct resolve_job *j;
		ssize_t n;

		pthread_mutex_lock(&r->lock);
		r->nidle++;
		while (!r->head)
			pthread_cond_wait(&r->cond, &r->lock);
		r->nidle--;
		j = r->head;
		r->head = j->next;
		if (!r->head)
			r->tail = NULL;
		r->nqueued--;
		j->queued = false;
		pthread_mutex_unlock(&r->lock);

		if (agent_now_ms() >= j->deadline) {
			j->naddrs = 0;
			j->status = HS_ERR_TIMEOUT;
		} else {
			resolve_run(j);
		}
		do
			n = write(r->wfd, &j, sizeof(j));
		while (n < 0 && errno == EINTR);
	}
	return NULL;
}

/**
 * on_result() - finished jobs arrive in the loop
 * @a:		agent
 * @ev:		pipe read end
 * @events:	unused
 */
static void on_result(struct agent *a, struct agent_ev *ev, uint32_t events)
{
	struct resolve_job *jobs[64];
	ssize_t n;

	(void)events;
	n = read(ev->fd, jobs, sizeof(jobs));
	if (n <= 0)
		return;
	for (size_t i = 0; i < (size_t)n / sizeof(jobs[0]); i++)
		a->resolver->done(a, jobs[i]);
}

/**
 * resolve_init() - start the worker threads
 * @a:		agent
 * @done:	called in the loop with each finished job (which it then owns)
 *
 * Return: 0 or -errno
 */
int resolve_init(struct agent *a, void (*done)(struct agent *a, struct resolve_job *j))
{
	struct resolver *r = calloc(1, sizeof(*r));
	int p[2];

	if (!r)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(r);
		return -errno;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	r->ev.fd = p[0];
	r->ev.cb = on_result;
	r->wfd = p[1];
	r->done = done;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	a->resolver = r;
	return agent_ev_set(a, &r->ev, EPOLLIN);
}

/**
 * start_worker() - one more worker thread (called with the lock held)
 * @r:		pool
 *
 * Return: true if it runs
 */
static bool start_worker(struct resolver *r)
{
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int ret;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, RESOLVE_STACK);
	/* Workers must not take the signals the loop reads through its signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&t, &attr, worker, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (ret)
		return false;
	r->nthreads++;
	return true;
}

/**
 * resolve_submit() - queue a job; the done callback gets it back
 * @a:		agent
 * @j:		job with @deadline set (owned by the pool until returned, unless refused)
 *
 * Return: 0, or -EAGAIN when AGENT_RESOLVE_QUEUE jobs already wait (the caller keeps @j)
 */
int resolve_submit(struct agent *a, struct resolve_job *j)
{
	struct resolver *r = a->resolver;

	j->next = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->nqueued >= AGENT_RESOLVE_QUEUE) {
		pthread_mutex_unlock(&r->lock);
		return -EAGAIN;
	}
	/* A new thread only when every thread is busy or already has a job waiting. */
	if (r->nidle <= r->nqueued && r->nthreads < AGENT_RESOLVE_THREADS &&
	    !start_worker(r) && !r->nthreads) {
		pthread_mutex_unlock(&r->lock);
		return -EAGAIN;
	}
	if (r->tail)
		r->tail->next = j;
	else
		r->head = j;
	r->tail = j;
	r->nqueued++;
	j->queued = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/**
 * resolve_cancel() - the job's client went away (event loop only)
 * @a:		agent
 * @j:		a submitted job
 *
 * A job still waiting is unlinked and freed here; one a worker runs is disowned and freed
 * by the done callback when it comes back.
 */
void resolve_cancel(struct agent *a, struct resolve_job *j)
{
	struct resolver *r = a->resolver;

	pthread_mutex_lock(&r->lock);
	if (j->queued) {
		struct resolve_job *prev = NULL, *cur;

		for (cur = r->head; cur && cur != j; cur = cur->next)
			prev = cur;
		if (prev)
			prev->next = j->next;
		else
			r->head = j->next;
		if (r->tail == j)
			r->tail = prev;
		r->nqueued--;
		pthread_mutex_unlock(&r->lock);
		free(j);
		return;
	}
	j->owner = NULL;
	pthread_mutex_unlock(&r->lock);
}

/**
 * resolve_local() - answer a name that needs no lookup: localhost, /etc/hosts
 * @j:		job (host and port set); on success addrs, naddrs and status are set
 *
 * Return: true if answered
 */
bool resolve_local(struct resolve_job *j)
{
	size_t hl = strlen(j->host);
	char buf[RESOLVE_HOSTS_MAX];
	ssize_t n = -1;
	int fd;

	j->naddrs = 0;
	fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf));
		close(fd);
	}
	if (n > 0)
		j->naddrs = hosts_lookup(buf, (size_t)n, j->host, j->port, j->addrs,
					 AGENT_ADDR_MAX);
	if (!j->naddrs && (!strcasecmp(j->host, "localhost") ||
			   (hl > 10 && !strcasecmp(j->host + hl - 10, ".localhost")))) {
		static const char lo[] = "127.0.0.1 localhost\n::1 localhost\n";

		j->naddrs = hosts_lookup(lo, sizeof(lo) - 1, "localhost", j->port, j->addrs,
					 AGENT_ADDR_MAX);
	}
	if (!j->naddrs)
		return false;
	j->status = HS_OK;
	return true;
}

/**
 * resolve_fini() - stop taking results; free the pool if no worker thread was started
 * @a:		agent (at exit)
 *
 * Worker threads are detached and may be inside a lookup that cannot be interrupted, so a
 * pool that has any is left to them (the process is about to exit); one that never
 * started a thread (only IP literals and local names were asked for) is freed.
 */
void resolve_fini(struct agent *a)
{
	struct resolver *r = a->resolver;
	size_t nthreads;

	if (!r)
		return;
	agent_ev_close(a, &r->ev);
	pthread_mutex_lock(&r->lock);
	nthreads = r->nthreads;
	pthread_mutex_unlock(&r->lock);
	a->resolver = NULL;
	if (nthreads)
		return;
	close(r->wfd);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}
