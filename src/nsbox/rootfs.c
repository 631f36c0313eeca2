// SPDX-License-Identifier: MIT
/*
 * rootfs.c - the namespace backend's root directory.
 *
 * A directory is used as it is (bound read-only).  An archive (the guest image's
 * rootfs.tar.gz) is unpacked once into the cache, ${MICROVM_CACHE:-${XDG_CACHE_HOME:-
 * ~/.cache}/microvm}/nsbox/<key>/, keyed by the archive's path, size, mtime and inode, and
 * every box gets an overlay over it whose writable layer lives in a private temporary
 * directory removed with the box: starting a box costs no unpacking, and no box can change
 * the cached tree.  Entries are completed under a temporary name and renamed into place, so
 * concurrent starts never see half an entry.  Where overlayfs is not available the backend
 * falls back to unpacking a private copy per box.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nsbox/nsbox.h"
#include "runtime/error.h"
#include "runtime/guest_files.h"

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

/**
 * rootfs_sweep() - remove private directories left by boxes whose host process died
 * @base:	the temporary directory
 *
 * A host killed with SIGKILL takes its box down (parent-death signals) but cannot remove the
 * box's directory; its name carries the host's pid, so the next start cleans up after it.
 * Only directories owned by us, of processes that no longer exist, are touched.
 */
static void rootfs_sweep(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[4096];
		struct stat st;
		int pid;

		if (sscanf(e->d_name, "microvm-nsbox-%d-", &pid) != 1 || pid <= 0 ||
		    pid == getpid() || !kill(pid, 0) || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		if (!lstat(path, &st) && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
			nsbox_rmtree(path);
	}
	closedir(d);
}

/**
 * rootfs_mkdtemp() - a private directory $TMPDIR/microvm-nsbox-<our pid>-XXXXXX
 * Return: the path (malloc'd), or NULL with mvm_last_error() set.
 */
static char *rootfs_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char *dir;

	if (!base || !*base)
		base = "/tmp";
	rootfs_sweep(base);
	if (asprintf(&dir, "%s/microvm-nsbox-%d-XXXXXX", base, (int)getpid()) < 0) {
		mvm_set_error(-ENOMEM, "nsbox: out of memory");
		return NULL;
	}
	if (!mkdtemp(dir)) {
		mvm_set_error(-errno, "nsbox: mkdtemp %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

static char *rootfs_join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/**
 * rootfs_cache_base() - ${MICROVM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/microvm}/nsbox
 * Return: the path (malloc'd), or NULL when no home is known.
 */
static char *rootfs_cache_base(void)
{
	const char *c = getenv("MICROVM_CACHE"), *x = getenv("XDG_CACHE_HOME");
	const char *h = getenv("HOME");
	char *p = NULL;
	int n;

	if (c && *c)
		n = asprintf(&p, "%s/nsbox", c);
	else if (x && *x)
		n = asprintf(&p, "%s/microvm/nsbox", x);
	else if (h && *h)
		n = asprintf(&p, "%s/.cache/microvm/nsbox", h);
	else
		return NULL;
	return n < 0 ? NULL : p;
}

static int rootfs_mkdir_p(char *path)
{
	char *s;

	for (s = path + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(path, 0755) && errno != EEXIST) {
			*s = '/';
			return -errno;
		}
		*s = '/';
	}
	return mkdir(path, 0755) && errno != EEXIST ? -errno : 0;
}

/**
 * rootfs_unpack() - unpack @archive into a new directory @dir/root with the mount points
 * @archive:	the archive
 * @dir:	an existing empty directory
 *
 * Return: the root path (malloc'd), or NULL with mvm_last_error() set.
 */
static char *rootfs_unpack(const char *archive, const char *dir)
{
	char *r = rootfs_join(dir, "root");

	if (!r) {
		mvm_set_error(-ENOMEM, "nsbox: out of memory");
		return NULL;
	}
	if (mkdir(r, 0755)) {
		mvm_set_error(-errno, "nsbox: mkdir %s: %s", r, strerror(errno));
		goto err;
	}
	if (rootfs_untar(archive, r) || rootfs_mountpoints(r, false))
		goto err;
	return r;
err:
	free(r);
	return NULL;
}

/**
 * rootfs_cached() - the archive unpacked in the cache, unpacking it first if needed
 * @archive:	the archive
 * @st:		its stat
 *
 * Return: the cached root (malloc'd), or NULL with mvm_last_error() set.
 */
static char *rootfs_cached(const char *archive, const struct stat *st)
{
	char *base = rootfs_cache_base(), *real = realpath(archive, NULL);
	char *entry = NULL, *tmp = NULL, *root = NULL, *r;
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a over path and identity */
	char id[128];
	size_t i;

	if (!base || !real) {
		mvm_set_error(-ENOENT, "nsbox: no cache directory (set MICROVM_CACHE or HOME)");
		goto out;
	}
	snprintf(id, sizeof(id), "|%lld|%lld.%09ld|%llu|%llu", (long long)st->st_size,
		 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
		 (unsigned long long)st->st_ino, (unsigned long long)st->st_dev);
	for (i = 0; real[i]; i++)
		h = (h ^ (uint8_t)real[i]) * 1099511628211ULL;
	for (i = 0; id[i]; i++)
		h = (h ^ (uint8_t)id[i]) * 1099511628211ULL;
	if (asprintf(&entry, "%s/%016llx", base, (unsigned long long)h) < 0 ||
	    asprintf(&root, "%s/root", entry) < 0 || asprintf(&tmp, "%s/.new-XXXXXX", base) < 0) {
		mvm_set_error(-ENOMEM, "nsbox: out of memory");
		goto fail;
	}
	if (!access(root, F_OK))
		goto out;	/* already unpacked */
	if (rootfs_mkdir_p(base) || !mkdtemp(tmp)) {
		mvm_set_error(-errno, "nsbox: cache %s: %s", base, strerror(errno));
		goto fail;
	}
	r = rootfs_unpack(archive, tmp);
	if (!r) {
		nsbox_rmtree(tmp);
		goto fail;
	}
	free(r);
	/* Publish atomically; if another start won the race, use its entry. */
	if (rename(tmp, entry)) {
		int err = errno;

		nsbox_rmtree(tmp);
		if ((err != EEXIST && err != ENOTEMPTY) || access(root, F_OK)) {
			mvm_set_error(-err, "nsbox: cache %s: %s", entry, strerror(err));
			goto fail;
		}
	}
	goto out;
fail:
	free(root);
	root = NULL;
out:
	free(tmp);
	free(entry);
	free(real);
	free(base);
	return root;
}

char *nsbox_rootfs_default(bool quiet)
{
	char path[PATH_MAX], note[PATH_MAX + 256];

	if (mvm_guest_file_find(MVM_GUEST_ROOTFS, path, sizeof(path), note, sizeof(note)))
		return NULL;
	if (note[0] && !quiet)
		fprintf(stderr, "microvm: note: %s\n", note);
	return strdup(path);
}

int nsbox_rootfs_prepare(const char *path, struct nsbox_rootfs *fs, bool overlay)
{
	struct stat st;

	memset(fs, 0, sizeof(*fs));
	if (!path)
		return mvm_set_error(-EINVAL, "nsbox: no rootfs given");
	if (stat(path, &st))
		return mvm_set_error(-errno, "nsbox: rootfs %s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		int ret = rootfs_mountpoints(path, true);

		if (ret)
			return ret;
		fs->root = realpath(path, NULL);
		if (!fs->root)
			return mvm_set_error(-errno, "nsbox: rootfs %s: %s", path, strerror(errno));
		fs->ro = true;
		return 0;
	}
	if (!S_ISREG(st.st_mode) || !(rootfs_has_suffix(path, ".tar.gz") ||
				      rootfs_has_suffix(path, ".tgz") ||
				      rootfs_has_suffix(path, ".tar")))
		return mvm_set_error(-EINVAL, "nsbox: rootfs %s is neither a directory nor a "
				     ".tar/.tar.gz archive", path);

	if (overlay) {
		fs->lower = rootfs_cached(path, &st);
		if (!fs->lower)
			return -EIO;
	}
	fs->tmpdir = rootfs_mkdtemp();
	if (!fs->tmpdir)
		goto err;
	if (!overlay) {
		fs->root = rootfs_unpack(path, fs->tmpdir);
		if (!fs->root)
			goto err;
		return 0;
	}
	fs->root = rootfs_join(fs->tmpdir, "merged");
	fs->upper = rootfs_join(fs->tmpdir, "upper");
	fs->work = rootfs_join(fs->tmpdir, "work");
	if (!fs->root || !fs->upper || !fs->work) {
		mvm_set_error(-ENOMEM, "nsbox: out of memory");
		goto err;
	}
	if (mkdir(fs->root, 0755) || mkdir(fs->upper, 0755) || mkdir(fs->work, 0700)) {
		mvm_set_error(-errno, "nsbox: mkdir in %s: %s", fs->tmpdir, strerror(errno));
		goto err;
	}
	return 0;
err:
	nsbox_rootfs_release(fs);
	return -EIO;
}

void nsbox_rootfs_release(struct nsbox_rootfs *fs)
{
	if (fs->tmpdir)
		nsbox_rmtree(fs->tmpdir);
	free(fs->tmpdir);
	free(fs->root);
	free(fs->lower);
	free(fs->upper);
	free(fs->work);
	memset(fs, 0, sizeof(*fs));
}

static int rootfs_chmod_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if ((type == FTW_D || type == FTW_DNR) && (st->st_mode & 0700) != 0700)
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
