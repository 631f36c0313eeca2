// SPDX-License-Identifier: MIT
/*
 * resolve.c - name resolution for the inbound proxy, off the event loop
 *
 * Theory of operation
 *
 *   A few worker threads take jobs from a queue (mutex + condition variable) and hand each
 *   finished job back to the event loop through a pipe (the job pointer is written whole;
 *   pipe writes of that size are atomic). Workers touch only the job, never agent state;
 *   the loop side alone reads and writes job->owner, so a proxy connection that goes away
 *   while its name is being resolved simply sets owner to NULL and the loop frees the job
 *   when it comes back.
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
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "agent.h"

#define RESOLVE_THREADS 4

/**
 * struct resolver - the pool
 * @ev:		read end of the result pipe
 * @wfd:	write end
 * @lock:	protects @head and @tail
 * @cond:	signalled when a job is queued
 * @head:	queue
 * @tail:	queue end
 * @done:	called in the loop for each finished job
 */
struct resolver {
	struct agent_ev ev;
	int wfd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct resolve_job *head, *tail;
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
		while (!r->head)
			pthread_cond_wait(&r->cond, &r->lock);
		j = r->head;
		r->head = j->next;
		if (!r->head)
			r->tail = NULL;
		pthread_mutex_unlock(&r->lock);

		resolve_run(j);
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
	sigset_t all, old;
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
	/* Workers must not take the signals the loop reads through its signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < RESOLVE_THREADS; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, worker, r) == 0)
			pthread_detach(t);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return agent_ev_set(a, &r->ev, EPOLLIN);
}

/**
 * resolve_submit() - queue a job; the done callback gets it back
 * @a:		agent
 * @j:		job (owned by the pool until returned)
 */
void resolve_submit(struct agent *a, struct resolve_job *j)
{
	struct resolver *r = a->resolver;

	j->next = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->tail)
		r->tail->next = j;
	else
		r->head = j;
	r->tail = j;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}
