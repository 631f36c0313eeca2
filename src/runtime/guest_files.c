/* SPDX-License-Identifier: MIT */
/*
 * guest_files.c - default guest kernel and image: where `microvm up` and `microvm run` look
 * when no --kernel / --initrd / --rootfs is given.
 *
 * Theory of operation
 * -------------------
 * Three places, first match wins:
 *   1. the environment: MICROVM_KERNEL, MICROVM_INITRD, MICROVM_ROOTFS (an explicit override;
 *      taken as is, so a wrong path is reported by whoever opens it, naming the variable);
 *   2. the build cache that `make kernel` / `make image` fill
 *      (${MICROVM_CACHE:-$HOME/.cache/microvm}/kernel/<key>/vmlinux,
 *      .../image/<key>/{initramfs.cpio.gz,rootfs.tar.gz}); when several keys are cached (the
 *      inputs changed), the newest file wins: that is the last one built;
 *   3. the installed location $datadir/microvm/ (MVM_DATADIR, from meson's prefix and datadir),
 *      where a package puts vmlinux, initramfs.cpio.gz and rootfs.tar.gz.
 * Nothing here builds anything; when nothing is found the caller says which command does.
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/error.h"
#include "runtime/guest_files.h"
#include "runtime/mvm_paths.h"

/**
 * struct guest_file_place - where one kind of file is looked for
 * @env:	environment override
 * @cache:	glob under the cache root
 * @name:	file name under $datadir/microvm/
 */
static const struct guest_file_place {
	const char *env, *cache, *name;
} guest_file_places[] = {
	[MVM_GUEST_KERNEL] = { "MICROVM_KERNEL", "kernel/*/vmlinux", "vmlinux" },
	[MVM_GUEST_INITRD] = { "MICROVM_INITRD", "image/*/initramfs.cpio.gz", "initramfs.cpio.gz" },
	[MVM_GUEST_ROOTFS] = { "MICROVM_ROOTFS", "image/*/rootfs.tar.gz", "rootfs.tar.gz" },
};

/**
 * mvm_guest_file_env() - the environment variable that overrides @f
 */
const char *mvm_guest_file_env(enum mvm_guest_file f)
{
	return guest_file_places[f].env;
}

/**
 * guest_file_newest() - the newest regular file matching @pattern into @buf
 * Return: 0, or -ENOENT when none matches (or a path does not fit).
 */
static int guest_file_newest(const char *pattern, char *buf, size_t len)
{
	struct timespec best = { 0, 0 };
	struct stat st;
	int ret = -ENOENT;
	glob_t g;
	size_t i;

	if (glob(pattern, 0, NULL, &g))
		return -ENOENT;
	for (i = 0; i < g.gl_pathc; i++) {
		if (stat(g.gl_pathv[i], &st) || !S_ISREG(st.st_mode) ||
		    strlen(g.gl_pathv[i]) >= len)
			continue;
		if (ret || st.st_mtim.tv_sec > best.tv_sec ||
		    (st.st_mtim.tv_sec == best.tv_sec && st.st_mtim.tv_nsec > best.tv_nsec)) {
			best = st.st_mtim;
			strcpy(buf, g.gl_pathv[i]);
			ret = 0;
		}
	}
	globfree(&g);
	return ret;
}

/**
 * mvm_guest_file_find() - the default file of kind @f (see the theory of operation)
 * @f:		which file
 * @buf/@len:	where the path goes
 *
 * A directory in the cache that matches the pattern but is not a regular file is returned
 * as well when it is the only candidate, so that opening it gives a clear error instead of
 * a silent fallback to an older file.
 *
 * Return: 0, or -ENOENT when none of the places has it (mvm_last_error() not set: the caller
 * words the error, naming the command that builds the file).
 */
int mvm_guest_file_find(enum mvm_guest_file f, char *buf, size_t len)
{
	const struct guest_file_place *p = &guest_file_places[f];
	const char *v = getenv(p->env), *cache = getenv("MICROVM_CACHE"), *home = getenv("HOME");
	char pattern[4096];
	struct stat st;
	glob_t g;

	if (v && *v)
		return snprintf(buf, len, "%s", v) < (int)len ? 0 : -ENAMETOOLONG;
	if (cache && *cache)
		snprintf(pattern, sizeof(pattern), "%s/%s", cache, p->cache);
	else if (home && *home)
		snprintf(pattern, sizeof(pattern), "%s/.cache/microvm/%s", home, p->cache);
	else
		pattern[0] = '\0';
	if (pattern[0]) {
		if (!guest_file_newest(pattern, buf, len))
			return 0;
		/* only something unusable is cached: hand it out so its error names it */
		if (!glob(pattern, 0, NULL, &g)) {
			int ok = g.gl_pathc && strlen(g.gl_pathv[0]) < len;

			if (ok)
				strcpy(buf, g.gl_pathv[0]);
			globfree(&g);
			if (ok)
				return 0;
		}
	}
	if (snprintf(buf, len, "%s/microvm/%s", MVM_DATADIR, p->name) < (int)len &&
	    !stat(buf, &st))
		return 0;
	return -ENOENT;
}
