/* SPDX-License-Identifier: MIT */
/*
 * nsbox.h - internals shared by the namespace backend's host side (nsbox.c), the processes
 * that run the box (box.c) and the rootfs helpers (rootfs.c).
 */
#ifndef MVM_NSBOX_NSBOX_H
#define MVM_NSBOX_NSBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "microvm/contract.h"

#define NSBOX_HOSTNAME		"microvm"
#define NSBOX_MAX_ARGS		32
/* eth0's MTU, and slirp's: large frames cost slirp far less per byte than 1500-byte ones. */
#define NSBOX_MTU		65520
/* Exit statuses of the box's program that end the box (the agent's and microvm-init's). */
#define NSBOX_EXIT_POWEROFF	MVM_STATUS_POWEROFF
#define NSBOX_EXIT_REBOOT	MVM_STATUS_REBOOT
/*
 * The box's program inherits the agent's auth secret (64 hex characters and a newline, in a
 * memfd read from offset 0) on this descriptor; the default agent gets --auth-secret-fd 4.
 */
#define NSBOX_SECRET_FD		4

/**
 * struct nsbox_spec - everything the box processes need, prepared before fork()
 * @root:	the rootfs directory (host path); with @lower, the overlay's mount point
 * @root_ro:	bind the root read-only (a caller's directory, not our private copy)
 * @lower:	read-only tree (an unpacked archive in the cache) to mount @root as an overlay
 *		of, with @upper and @work as its writable layer; NULL: @root as it is
 * @upper:	the overlay's upper directory (private, removed with the box)
 * @work:	the overlay's work directory
 * @argv:	the box's main program and its arguments (paths inside the rootfs)
 * @ctl_fd:	the box's end of the control socketpair
 * @console_fd:	write end of the console pipe (the box's stdout and stderr)
 * @stdin_fd:	read end of the console input pipe (the box's stdin)
 * @secret_fd:	memfd holding the agent's auth secret, or -1 (NSBOX_SECRET_FD in the box)
 * @net:	create eth0 (a TAP) for user-mode networking
 * @userns:	create a user namespace
 * @uid:	host uid mapped to root in the box
 * @gid:	host gid mapped to root in the box
 */
struct nsbox_spec {
	const char *root;
	bool root_ro;
	const char *lower;
	const char *upper;
	const char *work;
	char *const *argv;
	int ctl_fd;
	int console_fd;
	int stdin_fd;
	int secret_fd;
	bool net;
	bool userns;
	uid_t uid;
	gid_t gid;
};

/*
 * Control protocol on the SOCK_SEQPACKET socketpair between the host and the box's
 * supervisor ("S", see box.c):
 *   S -> host, once:	struct nsbox_ready; fds [tap, pidfd of the box's PID 1] when ok
 *   host -> S:		struct nsbox_req (connect to a TCP port inside the box)
 *   S -> host:		struct nsbox_resp; fd [stream] when result == 0
 */
struct nsbox_ready {
	int32_t result;		/* 0 or -errno */
	int32_t pid;		/* the box's PID 1, as the host sees it */
	char msg[200];		/* what failed, when result < 0 */
};

struct nsbox_req {
	uint32_t seq;
	uint32_t port;
	int32_t timeout_ms;
};

struct nsbox_resp {
	uint32_t seq;
	int32_t result;		/* 0 (an fd attached) or -errno */
};

/**
 * nsbox_supervisor() - body of the forked supervisor process; never returns
 * @spec:	what to run
 */
void nsbox_supervisor(const struct nsbox_spec *spec) __attribute__((noreturn));

/**
 * nsbox_probe() - can this process create the box's namespaces?
 * @why:	filled with a reason when not
 * @why_len:	size of @why
 *
 * Return: 1 when usable, 0 otherwise.
 */
int nsbox_probe(char *why, size_t why_len);

/**
 * nsbox_send_fds() - one message with up to two file descriptors
 * @sock:	SOCK_SEQPACKET socket
 * @buf:	payload
 * @len:	its length
 * @fds:	descriptors to pass (may be NULL)
 * @nfds:	how many (0..2)
 *
 * Return: 0 or -errno.
 */
int nsbox_id_map(char *buf, size_t len, const char *subid, const char *name, unsigned int id);
int nsbox_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);

/**
 * nsbox_recv_fds() - one message and the descriptors that came with it
 * @sock:	SOCK_SEQPACKET socket
 * @buf:	payload buffer
 * @len:	its size
 * @fds:	filled with up to @maxfds received descriptors (CLOEXEC), the rest -1
 * @maxfds:	capacity of @fds; extra descriptors are closed
 *
 * Return: payload bytes (0 at EOF) or -errno.
 */
ssize_t nsbox_recv_fds(int sock, void *buf, size_t len, int *fds, int maxfds);

/* rootfs.c */

/**
 * struct nsbox_rootfs - where the box's root comes from
 * @tmpdir:	private temporary directory, removed with the box (or NULL)
 * @root:	the box's root: the caller's directory, a private unpacked copy, or the mount
 *		point of an overlay (in @tmpdir) over @lower
 * @lower:	the archive unpacked in the cache (read-only to boxes), or NULL
 * @upper:	overlay upper directory in @tmpdir, or NULL
 * @work:	overlay work directory in @tmpdir, or NULL
 * @ro:		@root is the caller's own directory: bind it read-only
 */
struct nsbox_rootfs {
	char *tmpdir;
	char *root;
	char *lower;
	char *upper;
	char *work;
	bool ro;
};

/**
 * nsbox_rootfs_prepare() - a root for the box
 * @path:	a directory, or a .tar.gz / .tgz / .tar archive
 * @fs:		filled (free with nsbox_rootfs_release())
 * @overlay:	for an archive: unpack it once into the cache and give each box an overlay
 *		over it (fast); false: unpack a private copy for this box
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
int nsbox_rootfs_prepare(const char *path, struct nsbox_rootfs *fs, bool overlay);

/**
 * nsbox_rootfs_default() - the default guest image (runtime/guest_files.c)
 * @quiet:	no note on stderr when the image found is not this build's
 *
 * $MICROVM_ROOTFS, else this build's ${MICROVM_CACHE:-$HOME/.cache/microvm}/image/<key>/
 * rootfs.tar.gz (`make image`), else $datadir/microvm/rootfs.tar.gz, else the newest cached
 * one (with a note on stderr that it is stale).
 *
 * Return: its path (malloc'd), or NULL when there is none.
 */
char *nsbox_rootfs_default(bool quiet);

/**
 * nsbox_rootfs_release() - remove the private directory and free @fs
 * @fs:		as filled by nsbox_rootfs_prepare()
 */
void nsbox_rootfs_release(struct nsbox_rootfs *fs);

/**
 * nsbox_rmtree() - remove a directory tree (no symlinks followed, no mounts crossed)
 * @path:	the tree
 *
 * Return: 0 or -errno.
 */
int nsbox_rmtree(const char *path);

#endif
