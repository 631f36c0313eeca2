/* SPDX-License-Identifier: MIT */
/*
 * compat_win.c - Windows side of compat.h (Windows builds only): Winsock2, and files named
 * in UTF-8 opened through the wide API (see compat.h on why not the ANSI one).
 */
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "runtime/compat.h"

#include <aclapi.h>	/* after compat.h: winsock2.h before windows.h */

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

/**
 * mvm_win_errno() - a Windows error (GetLastError()) of a file or pipe call as a POSIX errno
 * value; the one mapping of the program (microvm.exe's control pipe uses it too)
 * Return: the errno value (EIO for codes without a counterpart).
 */
int mvm_win_errno(DWORD err)
{
	switch (err) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_ENVVAR_NOT_FOUND:
		return ENOENT;
	case ERROR_ACCESS_DENIED:
	case ERROR_SHARING_VIOLATION:
		return EACCES;
	case ERROR_ALREADY_EXISTS:
	case ERROR_FILE_EXISTS:
		return EEXIST;
	case ERROR_INVALID_NAME:
	case ERROR_BAD_PATHNAME:
	case ERROR_NO_UNICODE_TRANSLATION:
		return EINVAL;
	case ERROR_FILENAME_EXCED_RANGE:
	case ERROR_INSUFFICIENT_BUFFER:
		return ENAMETOOLONG;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return ENOMEM;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL:
		return ENOSPC;
	case ERROR_WRITE_PROTECT:
		return EROFS;
	case ERROR_PIPE_BUSY:
	case ERROR_SEM_TIMEOUT:
		return EBUSY;
	case ERROR_BROKEN_PIPE:
	case ERROR_NO_DATA:
	case ERROR_PIPE_NOT_CONNECTED:
		return EPIPE;
	case ERROR_OPERATION_ABORTED:
		return EINTR;
	default:
		return EIO;
	}
}

/**
 * mvm_fs_widen() - @utf8 as a malloc()ed UTF-16 string (free() it)
 *
 * Invalid UTF-8 is refused rather than guessed at (MB_ERR_INVALID_CHARS): a name in the
 * ANSI code page passed here by mistake fails instead of opening another file.
 * Return: the string, or NULL with errno set (EINVAL, ENOMEM).
 */
wchar_t *mvm_fs_widen(const char *utf8)
{
	int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, NULL, 0);
	wchar_t *w;

	if (n <= 0) {
		errno = EINVAL;
		return NULL;
	}
	w = malloc((size_t)n * sizeof(*w));
	if (!w) {
		errno = ENOMEM;
		return NULL;
	}
	MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, w, n);
	return w;
}

/**
 * mvm_fs_getenv() - environment variable @name (ASCII) as UTF-8, from its UTF-16 value
 * @out/@size:	the value, NUL-terminated; "" on every error (when @size allows)
 *
 * Not getenv(): the C runtime's copy of the environment is in the ANSI code page, and a
 * %LOCALAPPDATA% of C:\Users\Пётр\AppData\Local comes back as C:\Users\????\AppData\Local.
 * A value that grows between the size query and the copy (another thread) is read again;
 * one with an unpaired surrogate (not a name Windows can have made) is refused
 * (WC_ERR_INVALID_CHARS) rather than turned into U+FFFD.
 * Return: 0, -ENOENT (unset or empty), -ENAMETOOLONG (@name or the value too long),
 * -ENOMEM, or -EINVAL (not valid UTF-16).
 */
int mvm_fs_getenv(const char *name, char *out, size_t size)
{
	wchar_t wname[64], *val = NULL;
	DWORD n, got;
	int rc = 0, tries;

	if (size)
		out[0] = '\0';
	if (!size || size > INT_MAX || !MultiByteToWideChar(CP_UTF8, 0, name, -1, wname, 64))
		return -ENAMETOOLONG;
	n = GetEnvironmentVariableW(wname, NULL, 0);
	for (tries = 0; tries < 4; tries++) {
		if (!n)
			return -ENOENT;
		free(val);
		val = malloc((size_t)n * sizeof(*val));
		if (!val)
			return -ENOMEM;
		got = GetEnvironmentVariableW(wname, val, n);
		if (got < n)
			break;		/* fitted: got is the length without the NUL */
		n = got;		/* grew in between: the size it needs now */
	}
	if (tries == 4 || !got || !*val)
		rc = -ENOENT;	/* kept changing, removed, or empty */
	else if (!WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, val, -1, out, (int)size,
				      NULL, NULL))
		rc = GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -ENAMETOOLONG : -EINVAL;
	if (rc)
		out[0] = '\0';
	free(val);
	return rc;
}

/**
 * mvm_fs_fopen() - _wfopen() of UTF-8 @path
 * @mode:	fopen()'s mode ("r", "wb"...)
 * Return: the stream, or NULL with errno set.
 */
FILE *mvm_fs_fopen(const char *path, const char *mode)
{
	wchar_t *wpath = mvm_fs_widen(path), *wmode = mvm_fs_widen(mode);
	FILE *f = NULL;

	if (wpath && wmode)
		f = _wfopen(wpath, wmode);
	free(wpath);
	free(wmode);
	return f;
}

/**
 * mvm_fs_open() - _wopen() of UTF-8 @path: a C runtime descriptor
 * @flags/@mode: open()'s (O_NOINHERIT stands for O_CLOEXEC; 0600 is _S_IREAD | _S_IWRITE)
 * Return: the descriptor, or -1 with errno set.
 */
int mvm_fs_open(const char *path, int flags, int mode)
{
	wchar_t *wpath = mvm_fs_widen(path);
	int fd;

	if (!wpath)
		return -1;
	fd = _wopen(wpath, flags, mode);
	free(wpath);
	return fd;
}

/**
 * mvm_fs_access() - _waccess() of UTF-8 @path
 * @mode:	F_OK, R_OK, W_OK (X_OK is dropped: the C runtime refuses it, and Windows has no
 *		execute bit to check)
 * Return: 0, or -1 with errno set.
 */
int mvm_fs_access(const char *path, int mode)
{
	wchar_t *wpath = mvm_fs_widen(path);
	int rc;

	if (!wpath)
		return -1;
	rc = _waccess(wpath, mode & 6);
	free(wpath);
	return rc;
}

/**
 * mvm_win_private_acl() - a DACL that admits this process' user, and SYSTEM if @system,
 * with full control (GENERIC_ALL), and no one else
 * @inherit:	the entries' inheritance: NO_INHERITANCE (a pipe, a file) or
 *		SUB_CONTAINERS_AND_OBJECTS_INHERIT (a folder: OICI, its contents get the same)
 * @dacl:	out: the list (LocalFree() it)
 *
 * Shared by the control pipe (up_bind(): the user only) and the private folder and files
 * below (the user and SYSTEM, as Windows gives a profile's own folders).
 * Return: ERROR_SUCCESS or the Windows error.
 */
DWORD mvm_win_private_acl(int system, DWORD inherit, PACL *dacl)
{
	EXPLICIT_ACCESS_W ea[2];
	union { TOKEN_USER tu; char buf[256]; } tu;
	BYTE sys_sid[SECURITY_MAX_SID_SIZE];
	DWORD len = sizeof(sys_sid), err = ERROR_SUCCESS;
	HANDLE tok = NULL;
	int i;

	*dacl = NULL;
	memset(ea, 0, sizeof(ea));
	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok) ||
	    !GetTokenInformation(tok, TokenUser, &tu, sizeof(tu), &len) ||
	    (system && !CreateWellKnownSid(WinLocalSystemSid, NULL, sys_sid,
					   &(DWORD){ sizeof(sys_sid) })))
		err = GetLastError() ? GetLastError() : ERROR_ACCESS_DENIED;
	if (tok)
		CloseHandle(tok);
	if (err != ERROR_SUCCESS)
		return err;
	for (i = 0; i < 1 + !!system; i++) {
		ea[i].grfAccessPermissions = GENERIC_ALL;
		ea[i].grfAccessMode = SET_ACCESS;
		ea[i].grfInheritance = inherit;
		ea[i].Trustee.TrusteeForm = TRUSTEE_IS_SID;
		ea[i].Trustee.TrusteeType = i ? TRUSTEE_IS_WELL_KNOWN_GROUP : TRUSTEE_IS_USER;
		ea[i].Trustee.ptstrName = i ? (LPWSTR)sys_sid : (LPWSTR)tu.tu.User.Sid;
	}
	return SetEntriesInAclW((ULONG)(1 + !!system), ea, NULL, dacl);
}

/**
 * mvm_fs_private_sa() - security attributes for a new private folder or file: the DACL of
 * mvm_win_private_acl() (the user and SYSTEM), protected (SE_DACL_PROTECTED: nothing
 * inherited from the parent), handles not inherited
 * @sd/@sa:	filled; @dacl: out, LocalFree() it after the create call
 * Return: ERROR_SUCCESS or the Windows error.
 */
static DWORD mvm_fs_private_sa(DWORD inherit, SECURITY_DESCRIPTOR *sd, SECURITY_ATTRIBUTES *sa,
			       PACL *dacl)
{
	DWORD err = mvm_win_private_acl(1, inherit, dacl);

	if (err != ERROR_SUCCESS)
		return err;
	if (!InitializeSecurityDescriptor(sd, SECURITY_DESCRIPTOR_REVISION) ||
	    !SetSecurityDescriptorDacl(sd, TRUE, *dacl, FALSE) ||
	    !SetSecurityDescriptorControl(sd, SE_DACL_PROTECTED, SE_DACL_PROTECTED)) {
		err = GetLastError();
		LocalFree(*dacl);
		*dacl = NULL;
		return err;
	}
	sa->nLength = sizeof(*sa);
	sa->lpSecurityDescriptor = sd;
	sa->bInheritHandle = FALSE;
	return ERROR_SUCCESS;
}

/**
 * mvm_fs_open_private() - create UTF-8 @path for writing, new (fails if it exists), with a
 * protected DACL of the user and SYSTEM only (CreateFileW), as a C runtime descriptor
 *
 * Not _wopen(..., 0600): on Windows that only decides the read-only attribute, and the
 * file would take its ACL from the folder.  For secrets (socks.secret).
 * Return: the descriptor, or -1 with errno set.
 */
int mvm_fs_open_private(const char *path)
{
	wchar_t *wpath = mvm_fs_widen(path);
	SECURITY_DESCRIPTOR sd;
	SECURITY_ATTRIBUTES sa;
	PACL dacl = NULL;
	HANDLE h = INVALID_HANDLE_VALUE;
	DWORD err;
	int fd = -1;

	if (!wpath)
		return -1;
	err = mvm_fs_private_sa(NO_INHERITANCE, &sd, &sa, &dacl);
	if (err == ERROR_SUCCESS) {
		h = CreateFileW(wpath, GENERIC_WRITE, 0, &sa, CREATE_NEW, FILE_ATTRIBUTE_NORMAL,
				NULL);
		err = h == INVALID_HANDLE_VALUE ? GetLastError() : ERROR_SUCCESS;
	}
	if (dacl)
		LocalFree(dacl);
	free(wpath);
	if (err != ERROR_SUCCESS) {
		errno = mvm_win_errno(err);
		return -1;
	}
	fd = _open_osfhandle((intptr_t)h, _O_WRONLY);
	if (fd < 0)
		CloseHandle(h);
	return fd;
}

/**
 * mvm_fs_mkdir_private() - CreateDirectoryW() of UTF-8 @path with a protected DACL of the
 * user and SYSTEM only, inherited by what is made in it (OICI)
 *
 * A folder that exists already keeps its ACL (the user's, or an administrator's choice).
 * Return: 0 (also if it exists) or -errno.
 */
static int mvm_fs_mkdir_private(const char *path)
{
	wchar_t *wpath = mvm_fs_widen(path);
	SECURITY_DESCRIPTOR sd;
	SECURITY_ATTRIBUTES sa;
	PACL dacl = NULL;
	DWORD err;

	if (!wpath)
		return -errno;
	err = mvm_fs_private_sa(SUB_CONTAINERS_AND_OBJECTS_INHERIT, &sd, &sa, &dacl);
	if (err == ERROR_SUCCESS && !CreateDirectoryW(wpath, &sa))
		err = GetLastError();
	if (dacl)
		LocalFree(dacl);
	free(wpath);
	return err == ERROR_SUCCESS || err == ERROR_ALREADY_EXISTS ? 0 : -mvm_win_errno(err);
}

/**
 * mvm_fs_mkdir() - CreateDirectoryW() of UTF-8 @path, its ACL inherited from the parent
 * (in %LOCALAPPDATA%\microvm, made by mvm_fs_app_dir(): the user and SYSTEM only)
 *
 * A file of that name counts as existing too, as mkdir()'s EEXIST does on POSIX: the
 * caller's next open in it fails instead (test_win_wsl's agent_exits_early relies on that).
 * Return: 0 (also if it exists) or -errno.
 */
int mvm_fs_mkdir(const char *path)
{
	wchar_t *wpath = mvm_fs_widen(path);
	int rc = 0;

	if (!wpath)
		return -errno;
	if (!CreateDirectoryW(wpath, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
		rc = -mvm_win_errno(GetLastError());
	free(wpath);
	return rc;
}

/** mvm_fs_unlink() - DeleteFileW() of UTF-8 @path; Return: 0 or -errno. */
int mvm_fs_unlink(const char *path)
{
	wchar_t *wpath = mvm_fs_widen(path);
	int rc = 0;

	if (!wpath)
		return -errno;
	if (!DeleteFileW(wpath))
		rc = -mvm_win_errno(GetLastError());
	free(wpath);
	return rc;
}

/**
 * mvm_fs_app_dir() - %LOCALAPPDATA%\microvm, or its sub-folder @sub, as UTF-8; both created
 * @sub:	"wsl", "state"... or NULL for %LOCALAPPDATA%\microvm itself
 * @out/@size:	the path; on a failure to create it, the path that failed (for messages);
 *		untouched if LOCALAPPDATA is not set
 *
 * %LOCALAPPDATA%\microvm is created with a DACL of its own, not inherited from whatever
 * folder %LOCALAPPDATA% names: the user and SYSTEM, full control, inherited by everything
 * made in it (OICI), protected (mvm_fs_mkdir_private()); so what `up` and the WSL2 backend
 * keep there (up.log, socks.secret, the appliance lock, the distribution's disk, the
 * agent's state) is private to the user.  A folder that exists already keeps its ACL (it
 * is not changed behind the user's or an administrator's back); socks.secret carries the
 * same DACL itself (mvm_fs_open_private()) in any case.
 * Return: 0, -ENOENT (LOCALAPPDATA unset), -ENAMETOOLONG, or mvm_fs_mkdir()'s -errno.
 */
int mvm_fs_app_dir(const char *sub, char *out, size_t size)
{
	char base[MAX_PATH * 3];
	int rc, n;

	rc = mvm_fs_getenv("LOCALAPPDATA", base, sizeof(base));
	if (rc)
		return rc;
	n = snprintf(out, size, "%s\\microvm", base);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	rc = mvm_fs_mkdir_private(out);
	if (rc || !sub)
		return rc;
	n = snprintf(out, size, "%s\\microvm\\%s", base, sub);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return mvm_fs_mkdir(out);
}
