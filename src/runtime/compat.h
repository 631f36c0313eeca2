/* SPDX-License-Identifier: MIT */
/**
 * DOC: compat - the few socket and file calls that differ between POSIX and Windows
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
 *
 * File names are UTF-8 everywhere in the code.  On Windows the C runtime's fopen(), open(),
 * mkdir(), getenv() and the "A" API take and give strings in the ANSI code page (1252 on a
 * Western-European system), which cannot hold a user folder such as C:\Users\Пётр: the
 * name comes back with '?' in it and the file cannot be made.  So every file name that
 * comes from the user, the environment or %LOCALAPPDATA% goes through these (or through
 * libuv, which takes UTF-8 itself); only fixed ASCII names ("NUL") do not.  They are the
 * plain POSIX calls on Linux and the wide ("W") calls on Windows, converting UTF-8 <->
 * UTF-16 at the call:
 *
 * - mvm_fs_getenv(): an environment variable as UTF-8 (GetEnvironmentVariableW)
 * - mvm_fs_fopen(), mvm_fs_open(), mvm_fs_access(), mvm_fs_mkdir() (0700 on POSIX),
 *   mvm_fs_unlink()
 * - mvm_fs_open_private(): a new file only the user can read (0600; on Windows a protected
 *   DACL of the user and SYSTEM: _wopen()'s mode sets only the read-only attribute)
 * - Windows only: mvm_win_private_acl() (that DACL, also the control pipe's) and
 *   mvm_win_errno() (GetLastError() as errno, for files and pipes)
 * - mvm_fs_path_tail(): the last component of a path, byte-wise (not basename(): mingw's
 *   converts through the ANSI code page, which splits UTF-8 on a CJK system and overflows
 *   on an invalid sequence)
 * - Windows only: mvm_fs_app_dir() (%LOCALAPPDATA%\microvm[\SUB], created: the home of
 *   up.log, socks.secret, the appliance lock, the WSL disk and the agent's state) and
 *   mvm_fs_widen() (UTF-8 to a malloc()ed UTF-16 string, for any other "W" call)
 */
#ifndef MVM_RUNTIME_COMPAT_H
#define MVM_RUNTIME_COMPAT_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/**
 * mvm_fs_path_tail_as() - the last component of @path, in place (basename() without the
 * locale): trailing separators are cut off, and the rest after the last separator returned
 * @path:	a writable copy of the path (UTF-8: '/', '\\' and ':' are never part of a
 *		multi-byte sequence, so a byte scan is safe)
 * @windows:	'\\' is a separator too, and a leading drive ("C:") is skipped
 *
 * Return: a pointer into @path; @path itself (then "", or the drive "C:") if nothing but
 * separators follows the drive.
 */
static inline char *mvm_fs_path_tail_as(char *path, int windows)
{
	char *start = path, *end, *p;

	if (windows && ((path[0] | 0x20) >= 'a' && (path[0] | 0x20) <= 'z') && path[1] == ':')
		start += 2;
	end = start + strlen(start);
	while (end > start && (end[-1] == '/' || (windows && end[-1] == '\\')))
		*--end = '\0';
	if (end == start)
		return path;
	for (p = end; p > start && p[-1] != '/' && !(windows && p[-1] == '\\'); p--)
		;
	return p;
}

/** mvm_fs_path_tail() - mvm_fs_path_tail_as() with this system's separators. */
static inline char *mvm_fs_path_tail(char *path)
{
#ifdef _WIN32
	return mvm_fs_path_tail_as(path, 1);
#else
	return mvm_fs_path_tail_as(path, 0);
#endif
}

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

int mvm_fs_getenv(const char *name, char *out, size_t size);
FILE *mvm_fs_fopen(const char *path, const char *mode);
int mvm_fs_open(const char *path, int flags, int mode);
int mvm_fs_access(const char *path, int mode);
int mvm_fs_open_private(const char *path);
DWORD mvm_win_private_acl(int system, DWORD inherit, PACL *dacl);
int mvm_win_errno(DWORD err);
int mvm_fs_mkdir(const char *path);
int mvm_fs_unlink(const char *path);
int mvm_fs_app_dir(const char *sub, char *out, size_t size);
wchar_t *mvm_fs_widen(const char *utf8);

#else
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/**
 * mvm_fs_getenv() - environment variable @name copied into @out ("" on an error)
 * Return: 0, -ENOENT (unset or empty) or -ENAMETOOLONG.
 */
static inline int mvm_fs_getenv(const char *name, char *out, size_t size)
{
	const char *v = getenv(name);

	if (size)
		out[0] = '\0';
	if (!v || !*v)
		return -ENOENT;
	if (strlen(v) >= size)
		return -ENAMETOOLONG;
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

/** mvm_fs_fopen() - fopen(); Return: the stream, or NULL with errno set. */
static inline FILE *mvm_fs_fopen(const char *path, const char *mode)
{
	return fopen(path, mode);
}

/** mvm_fs_open() - open(); Return: a descriptor, or -1 with errno set. */
static inline int mvm_fs_open(const char *path, int flags, int mode)
{
	return open(path, flags, mode);
}

/** mvm_fs_access() - access(); Return: 0, or -1 with errno set. */
static inline int mvm_fs_access(const char *path, int mode)
{
	return access(path, mode);
}

/**
 * mvm_fs_open_private() - create @path new (O_EXCL), write-only, mode 0600, close-on-exec
 * Return: a descriptor, or -1 with errno set.
 */
static inline int mvm_fs_open_private(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

/** mvm_fs_mkdir() - create directory @path, mode 0700; Return: 0 (also if it exists) or -errno. */
static inline int mvm_fs_mkdir(const char *path)
{
	return mkdir(path, 0700) && errno != EEXIST ? -errno : 0;
}

/** mvm_fs_unlink() - remove file @path; Return: 0 or -errno. */
static inline int mvm_fs_unlink(const char *path)
{
	return unlink(path) ? -errno : 0;
}
#endif

#endif
