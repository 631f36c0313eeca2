// SPDX-License-Identifier: MIT
/*
 * transport.c - the agent's listening sockets
 *
 * In a VM the host reaches the agent over virtio-vsock: we listen on (VMADDR_CID_ANY, port).
 * In WSL2 and the namespace backend the same ports are TCP ports on --listen (an IPv4 or
 * IPv6 literal, default 127.0.0.1). Everything above this file sees stream sockets only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <string.h>
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
