/* SPDX-License-Identifier: MIT */
/* compat_win.c - Winsock2 side of compat.h (Windows builds only). */
#include <errno.h>
#include <pthread.h>

#include "runtime/compat.h"

static pthread_once_t mvm_wsa_once = PTHREAD_ONCE_INIT;
static int mvm_wsa_rc;

/** mvm_wsa_start() - WSAStartup(2.2) once; the process keeps Winsock until it exits. */
static void mvm_wsa_start(void)
{
	WSADATA wsa;

	mvm_wsa_rc = WSAStartup(MAKEWORD(2, 2), &wsa) ? -EIO : 0;
}

int mvm_sock_init(void)
{
	pthread_once(&mvm_wsa_once, mvm_wsa_start);
	return mvm_wsa_rc;
}

/**
 * mvm_wsa_errno() - a Winsock error code as a POSIX errno value
 * @err:	WSAGetLastError() or an SO_ERROR value
 * Return: the errno value (EIO for codes without a counterpart).
 */
static int mvm_wsa_errno(int err)
{
	switch (err) {
	case 0: return 0;
	case WSAEINTR: return EINTR;
	case WSAEWOULDBLOCK: return EAGAIN;
	case WSAEINPROGRESS: return EINPROGRESS;
	case WSAEALREADY: return EALREADY;
	case WSAECONNREFUSED: return ECONNREFUSED;
	case WSAECONNRESET: return ECONNRESET;
	case WSAECONNABORTED: return ECONNABORTED;
	case WSAETIMEDOUT: return ETIMEDOUT;
	case WSAEADDRINUSE: return EADDRINUSE;
	case WSAEADDRNOTAVAIL: return EADDRNOTAVAIL;
	case WSAENETUNREACH: return ENETUNREACH;
	case WSAEHOSTUNREACH: return EHOSTUNREACH;
	case WSAENOTCONN: return ENOTCONN;
	case WSAESHUTDOWN: return EPIPE;
	case WSAEINVAL: return EINVAL;
	case WSAEMFILE: return EMFILE;
	case WSAENOBUFS: return ENOBUFS;
	case WSAEAFNOSUPPORT: return EAFNOSUPPORT;
	case WSAENOTSOCK: return EBADF;
	default: return EIO;
	}
}

int mvm_sock_errno(void)
{
	return mvm_wsa_errno(WSAGetLastError());
}

int mvm_sock_stream(int family)
{
	SOCKET s;

	/* not inheritable: the WSL2 backend starts wsl.exe with inherited pipe handles;
	 * overlapped (as socket() makes them): libuv's IOCP backend needs that for the
	 * streams handed to the SOCKS5 server and its listener (src/manager/socks5.c) */
	s = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
		       WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
	if (s == INVALID_SOCKET)
		return -mvm_sock_errno();
	return (int)s;
}

int mvm_sock_nonblock(int fd, int on)
{
	u_long mode = on ? 1 : 0;

	return ioctlsocket((SOCKET)fd, FIONBIO, &mode) ? -mvm_sock_errno() : 0;
}

/*
 * select(), not WSAPoll(): before Windows 10 2004 WSAPoll never reported a failed
 * non-blocking connect; select() reports it in the except set.
 */
int mvm_sock_wait(int fd, int want_write, int timeout_ms)
{
	fd_set rd, wr, ex;
	struct timeval tv, *tvp = NULL;
	int rc;

	FD_ZERO(&rd);
	FD_ZERO(&wr);
	FD_ZERO(&ex);
	if (want_write)
		FD_SET((SOCKET)fd, &wr);
	else
		FD_SET((SOCKET)fd, &rd);
	FD_SET((SOCKET)fd, &ex);
	if (timeout_ms >= 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		tvp = &tv;
	}
	rc = select(0, &rd, &wr, &ex, tvp);
	if (rc == SOCKET_ERROR)
		return -mvm_sock_errno();
	return rc > 0 ? 1 : 0;
}

int mvm_sock_close(int fd)
{
	return closesocket((SOCKET)fd) ? -mvm_sock_errno() : 0;
}

int mvm_sock_so_error(int fd)
{
	int err = 0, len = sizeof(err);

	if (getsockopt((SOCKET)fd, SOL_SOCKET, SO_ERROR, (char *)&err, &len))
		return mvm_sock_errno();
	return mvm_wsa_errno(err);
}
