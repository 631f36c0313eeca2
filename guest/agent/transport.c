// SPDX-License-Identifier: MIT
/*
 * transport.c - the agent's listening sockets
 *
 * In a VM the host reaches the agent over virtio-vsock: we listen on (VMADDR_CID_ANY, port).
 * In WSL2 and the namespace backend the same ports are TCP ports on --listen (an IPv4 or
 * IPv6 literal, default 127.0.0.1). Everything above this file sees stream sockets only.
 *
 * Both listeners (control.c, proxy.c) accept through one loop here (struct agent_listener):
 * at most AGENT_ACCEPT_BATCH connections per wake-up, and when the process runs out of
 * descriptors the listener pauses until the next tick instead of spinning on EMFILE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

/**
 * agent_listen() - open a non-blocking listening socket for @port
 * @o:		options (transport and address)
 * @port:	port number
 *
 * Return: the socket, or -errno
 */
int agent_listen(const struct agent_opts *o, unsigned int port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, ret;

	memset(&ss, 0, sizeof(ss));
	if (o->vsock) {
		struct sockaddr_vm *vm = (struct sockaddr_vm *)&ss;

		vm->svm_family = AF_VSOCK;
		vm->svm_cid = VMADDR_CID_ANY;
		vm->svm_port = port;
		sl = sizeof(*vm);
	} else {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		if (port == 0 || port > 65535)
			return -EINVAL;
		if (inet_pton(AF_INET, o->listen, &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons((uint16_t)port);
			sl = sizeof(*in4);
		} else if (inet_pton(AF_INET6, o->listen, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)port);
			sl = sizeof(*in6);
		} else {
			return -EINVAL;
		}
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (!o->vsock)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/**
 * on_listen() - accept what is pending; pause the listener when descriptors run out
 * @a:		agent
 * @ev:		the listener's registration (first member of struct agent_listener)
 * @events:	unused
 *
 * accept() failing with EMFILE/ENFILE (or out of memory) leaves the connection in the
 * backlog, so a level-triggered listener would be reported readable again at once and the
 * loop would spin logging the same error. The listener is taken out of the epoll set
 * instead and agent_listener_tick() puts it back on the next tick (250 ms), when closed
 * connections may have freed descriptors. One log line per pause episode.
 */
static void on_listen(struct agent *a, struct agent_ev *ev, uint32_t events)
{
	struct agent_listener *l = (struct agent_listener *)ev;

	(void)events;
	for (int i = 0; i < AGENT_ACCEPT_BATCH; i++) {
		int fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				if (!l->pause_logged)
					agent_log(a, "%s accept: %s; pausing new connections",
						  l->name, strerror(errno));
				l->pause_logged = true;
				l->paused = true;
				agent_ev_set(a, ev, 0);
			} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				agent_log(a, "%s accept: %s", l->name, strerror(errno));
			}
			return;
		}
		if (l->pause_logged)
			agent_log(a, "%s accept: resumed", l->name);
		l->pause_logged = false;
		l->on_fd(a, fd);
	}
}

/**
 * agent_listener_init() - serve a listening socket through the shared accept loop
 * @a:		agent
 * @l:		listener (static storage of the caller)
 * @fd:		listening socket (non-blocking)
 * @name:	"control" or "proxy", for log lines
 * @on_fd:	takes each accepted (non-blocking, close-on-exec) socket
 *
 * Return: 0 or -errno
 */
int agent_listener_init(struct agent *a, struct agent_listener *l, int fd, const char *name,
			void (*on_fd)(struct agent *a, int fd))
{
	l->ev.fd = fd;
	l->ev.mask = 0;
	l->ev.cb = on_listen;
	l->name = name;
	l->on_fd = on_fd;
	l->paused = l->pause_logged = false;
	return agent_ev_set(a, &l->ev, EPOLLIN);
}

/**
 * agent_listener_tick() - listen again after a pause (called every tick)
 * @a:		agent
 * @l:		listener
 */
void agent_listener_tick(struct agent *a, struct agent_listener *l)
{
	if (!l->paused || l->ev.fd < 0)
		return;
	l->paused = false;
	agent_ev_set(a, &l->ev, EPOLLIN);
}
