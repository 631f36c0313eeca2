/* SPDX-License-Identifier: MIT */
/**
 * DOC: compat - the few socket calls that differ between POSIX and Winsock2
 *
 * libmicrovm's portable core (error, runtime, console, vsock client, TCP transport) builds
 * for Linux and, with mingw-w64, for Windows.  Streams stay plain ints in the public API:
 * on Windows they hold a SOCKET (Windows keeps socket handles within 32 bits).  Everything
 * else that differs is here, so the callers carry no #ifdefs:
 *
 * - mvm_sock_init(): WSAStartup once per process (no-op on POSIX)
 * - mvm_sock_stream(): a TCP socket not inherited by child processes
 * - mvm_sock_errno(): the last socket error as a POSIX errno value (WSA codes mapped)
 * - mvm_sock_wait(): wait for readability/writability/connect with a timeout (poll/select)
 * - mvm_sock_so_error(), mvm_sock_nonblock(), mvm_sock_close(), MVM_MSG_NOSIGNAL/DONTWAIT
 */
#ifndef MVM_RUNTIME_COMPAT_H
#define MVM_RUNTIME_COMPAT_H

#include <errno.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#define MVM_MSG_NOSIGNAL 0
#define MVM_MSG_DONTWAIT 0

int mvm_sock_init(void);
int mvm_sock_errno(void);
int mvm_sock_stream(int family);
int mvm_sock_nonblock(int fd, int on);
int mvm_sock_wait(int fd, int want_write, int timeout_ms);
int mvm_sock_close(int fd);
int mvm_sock_so_error(int fd);

#else
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MVM_MSG_NOSIGNAL MSG_NOSIGNAL
#define MVM_MSG_DONTWAIT MSG_DONTWAIT

/** mvm_sock_init() - socket library start-up: nothing to do on POSIX. */
static inline int mvm_sock_init(void)
{
	return 0;
}

/** mvm_sock_errno() - the last socket error as an errno value. */
static inline int mvm_sock_errno(void)
{
	return errno;
}

/** mvm_sock_stream() - a close-on-exec TCP socket; Return: fd or -errno. */
static inline int mvm_sock_stream(int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

/** mvm_sock_nonblock() - switch O_NONBLOCK on or off; Return: 0 or -errno. */
static inline int mvm_sock_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) ? -errno : 0;
}

/**
 * mvm_sock_wait() - wait until @fd is readable (or, with @want_write, writable / connected)
 * @timeout_ms:	negative waits forever
 * Return: 1 ready, 0 timed out, -errno (EINTR retried).
 */
static inline int mvm_sock_wait(int fd, int want_write, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = want_write ? POLLOUT : POLLIN };
	int rc;

	do
		rc = poll(&pfd, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : rc;
}

/** mvm_sock_so_error() - the pending error of @fd (SO_ERROR) as an errno value, 0 if none. */
static inline int mvm_sock_so_error(int fd)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return errno;
	return err;
}

/** mvm_sock_close() - close a socket. */
static inline int mvm_sock_close(int fd)
{
	return close(fd);
}
#endif

#endif
