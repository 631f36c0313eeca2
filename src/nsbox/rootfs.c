// SPDX-License-Identifier: MIT
/*
 * rootfs.c - the namespace backend's root directory: the caller's directory as it is, or an
 * archive unpacked into a private temporary directory that is removed with the box.
 */
#include <errno.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nsbox/nsbox.h"
#include "runtime/error.h"

extern char **environ;

/* The mount points the box needs in its root. */
static const char *const rootfs_dirs[] = { "proc", "dev", "run", "tmp", "etc" };

static bool rootfs_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/**
 * rootfs_untar() - unpack @archive into @dir with tar(1)
 * @archive:	.tar, .tar.gz or .tgz
 * @dir:	existing empty directory
 *
 * Device nodes in the archive are skipped: the box's /dev is built at start.
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int rootfs_untar(const char *archive, const char *dir)
{
	char *argv[] = {
		"tar", "-x", "-f", (char *)archive, "-C", (char *)dir, "--exclude=./dev/*",
		"--exclude=dev/*", geteuid() ? "--no-same-owner" : "--same-owner", NULL,
	};
	pid_t pid;
	int ret, status;

	ret = posix_spawnp(&pid, "tar", NULL, NULL, argv, environ);
	if (ret)
		return mvm_set_error(-ret, "nsbox: cannot run tar: %s", strerror(ret));
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return mvm_set_error(-errno, "nsbox: waitpid(tar): %s", strerror(errno));
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return mvm_set_error(-EIO, "nsbox: cannot unpack %s (tar failed)", archive);
	return 0;
}

/**
 * rootfs_mountpoints() - create the directories the box mounts over
 * @root:	the root directory
 * @ro:		the caller's directory: only check, create nothing
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int rootfs_mountpoints(const char *root, bool ro)
{
	char path[4096];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(rootfs_dirs) / sizeof(rootfs_dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root, rootfs_dirs[i]);
		if (!lstat(path, &st) && S_ISDIR(st.st_mode))
			continue;
		if (ro || mkdir(path, 0755))
			return mvm_set_error(-ENOENT, "nsbox: the rootfs needs a directory %s", path);
	}
	return 0;
}

int nsbox_rootfs_prepare(const char *path, char **tmpdir, char **root, bool *ro)
{
	const char *base = getenv("TMPDIR");
	struct stat st;
	char *dir, *r;
	int ret;

	*tmpdir = NULL;
	*root = NULL;
	*ro = false;
	if (!path)
		return mvm_set_error(-EINVAL, "nsbox: no rootfs given");
	if (stat(path, &st))
		return mvm_set_error(-errno, "nsbox: rootfs %s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		ret = rootfs_mountpoints(path, true);
		if (ret)
			return ret;
		*root = realpath(path, NULL);
		if (!*root)
			return mvm_set_error(-errno, "nsbox: rootfs %s: %s", path, strerror(errno));
		*ro = true;
		return 0;
	}
	if (!S_ISREG(st.st_mode) || !(rootfs_has_suffix(path, ".tar.gz") ||
				      rootfs_has_suffix(path, ".tgz") ||
				      rootfs_has_suffix(path, ".tar")))
		return mvm_set_error(-EINVAL, "nsbox: rootfs %s is neither a directory nor a "
				     ".tar/.tar.gz archive", path);

	if (asprintf(&dir, "%s/microvm-nsbox-XXXXXX", base && *base ? base : "/tmp") < 0)
		return mvm_set_error(-ENOMEM, "nsbox: out of memory");
	if (!mkdtemp(dir)) {
		ret = mvm_set_error(-errno, "nsbox: mkdtemp %s: %s", dir, strerror(errno));
		free(dir);
		return ret;
	}
	if (asprintf(&r, "%s/root", dir) < 0) {
		ret = mvm_set_error(-ENOMEM, "nsbox: out of memory");
		goto err_dir;
	}
	if (mkdir(r, 0755)) {
		ret = mvm_set_error(-errno, "nsbox: mkdir %s: %s", r, strerror(errno));
		goto err_r;
	}
	ret = rootfs_untar(path, r);
	if (!ret)
		ret = rootfs_mountpoints(r, false);
	if (ret)
		goto err_r;
	*tmpdir = dir;
	*root = r;
	return 0;

err_r:
	free(r);
err_dir:
	nsbox_rmtree(dir);
	free(dir);
	return ret;
}

static int rootfs_chmod_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D && (st->st_mode & 0700) != 0700)
		chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

static int rootfs_rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int nsbox_rmtree(const char *path)
{
	struct stat st;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	/* Directories unpacked read-only (0555) must be writable before they can be emptied. */
	if (geteuid() != 0)
		nftw(path, rootfs_chmod_cb, 32, FTW_PHYS | FTW_MOUNT);
	nftw(path, rootfs_rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	return lstat(path, &st) ? 0 : -ENOTEMPTY;
}
