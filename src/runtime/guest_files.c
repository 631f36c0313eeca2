/* SPDX-License-Identifier: MIT */
/*
 * guest_files.c - default guest kernel and image: where `microvm up` and `microvm run` look
 * when no --kernel / --initrd / --rootfs is given.
 *
 * Theory of operation
 * -------------------
 * Four places, first match wins:
 *   1. the environment: MICROVM_KERNEL, MICROVM_INITRD, MICROVM_ROOTFS (an explicit override;
 *      taken as is, so a wrong path is reported by whoever opens it, naming the variable);
 *   2. the build cache entry this build goes with: `make kernel` / `make image` cache under
 *      ${MICROVM_CACHE:-$HOME/.cache/microvm}/kernel/<key>/vmlinux and
 *      .../image/<key>/{initramfs.cpio.gz,rootfs.tar.gz} (on arm64 hosts `make kernel-arm64` /
 *      `make image-arm64`: kernel/arm64/<key>/Image and image/arm64/<key>/...; see
 *      guest_files.h), and at every build guest/keys.sh
 *      records in the build directory (MVM_GUEST_KEYS; MICROVM_GUEST_KEYS overrides it, for
 *      tests) the keys those scripts compute for this source tree and this build's init and
 *      agent; that entry is taken when it is built;
 *   3. the installed location $datadir/microvm/ (MVM_DATADIR, from meson's prefix and datadir),
 *      where a package puts vmlinux (Image on arm64), initramfs.cpio.gz and rootfs.tar.gz;
 *   4. the newest other cache entry (another tree's, or one built before the guest's sources
 *      changed). It may well work, but a stale kernel or image used silently is a trap, so
 *      it comes with a note that says so and names the command that builds the right one;
 *      the backend prints it (unless quiet).
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
 * @kind:	cache subdirectory, and the key's name in the keys file ("kernel", "image")
 * @name:	file name in a cache entry and under $datadir/microvm/
 * @what:	what it is, for the note
 */
static const struct guest_file_place {
	const char *env, *kind, *name, *what;
} guest_file_places[] = {
	[MVM_GUEST_KERNEL] = { "MICROVM_KERNEL", "kernel", MVM_GUEST_KERNEL_NAME, "guest kernel" },
	[MVM_GUEST_INITRD] = { "MICROVM_INITRD", "image", "initramfs.cpio.gz", "guest image" },
	[MVM_GUEST_ROOTFS] = { "MICROVM_ROOTFS", "image", "rootfs.tar.gz", "guest image" },
};

/* Cache keys are this many hex digits (guest/kernel/build.sh, guest/image/build.sh). */
#define GUEST_KEY_LEN 16

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
 * mvm_guest_key_read() - the cache key of @kind recorded in the keys file @path
 * @path:	keys file: lines "kernel <key>" and "image <key>" (guest/keys.sh)
 * @kind:	"kernel" or "image"
 * @key:	receives the key (GUEST_KEY_LEN hex digits and a NUL)
 * @len:	size of @key
 *
 * Return: 0, or -ENOENT when the file, the line or a well-formed key is missing.
 */
int mvm_guest_key_read(const char *path, const char *kind, char *key, size_t len)
{
	char line[128], name[16], val[64];
	int ret = -ENOENT;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -ENOENT;
	while (ret && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%15s %63s", name, val) != 2 || strcmp(name, kind) ||
		    strlen(val) != GUEST_KEY_LEN || strspn(val, "0123456789abcdef") != GUEST_KEY_LEN ||
		    len <= GUEST_KEY_LEN)
			continue;
		memcpy(key, val, GUEST_KEY_LEN + 1);
		ret = 0;
	}
	fclose(f);
	return ret;
}

/**
 * guest_file_note() - the note for a file taken from a cache entry that is not this build's
 * @p:		what was looked for
 * @key:	this build's key, "" when unknown
 * @path:	the file taken
 * @note/@len:	the note (nothing when @note is NULL)
 */
static void guest_file_note(const struct guest_file_place *p, const char *key, const char *path,
			    char *note, size_t len)
{
	const char *make = strcmp(p->kind, "kernel") ? MVM_GUEST_MAKE_IMAGE : MVM_GUEST_MAKE_KERNEL;

	if (!note || !len)
		return;
	if (key[0])
		snprintf(note, len, "the %s this build goes with (cache key %s) is not built; "
			 "using %s, which is stale (built from other sources or an older state "
			 "of them): run '%s' to build the right one", p->what, key, path, make);
	else
		snprintf(note, len, "using the newest cached %s %s, which is not known to match "
			 "this microvm (its build recorded no keys): run '%s' in its source tree, "
			 "or set %s", p->what, path, make, p->env);
}

/**
 * mvm_guest_file_find() - the default file of kind @f (see the theory of operation)
 * @f:		which file
 * @buf/@len:	where the path goes
 * @note/@note_len: receives "" or, when the file is a cache entry other than this build's,
 *		a sentence saying so (for the user: the backend prints it); @note may be NULL
 *
 * A directory in the cache that matches the pattern but is not a regular file is returned
 * as well when it is the only candidate, so that opening it gives a clear error instead of
 * a silent fallback to an older file.
 *
 * Return: 0, or -ENOENT when none of the places has it (mvm_last_error() not set: the caller
 * words the error, naming the command that builds the file).
 */
int mvm_guest_file_find(enum mvm_guest_file f, char *buf, size_t len, char *note,
			size_t note_len)
{
	const struct guest_file_place *p = &guest_file_places[f];
	const char *v = getenv(p->env), *cache = getenv("MICROVM_CACHE"), *home = getenv("HOME");
	const char *keys = getenv("MICROVM_GUEST_KEYS");
	char root[4096], pattern[4200], key[GUEST_KEY_LEN + 1] = "";
	struct stat st;
	glob_t g;

	if (note && note_len)
		note[0] = '\0';
	if (v && *v)
		return snprintf(buf, len, "%s", v) < (int)len ? 0 : -ENAMETOOLONG;
	if (cache && *cache)
		snprintf(root, sizeof(root), "%s", cache);
	else if (home && *home)
		snprintf(root, sizeof(root), "%s/.cache/microvm", home);
	else
		root[0] = '\0';
	if (root[0] && !mvm_guest_key_read(keys && *keys ? keys : MVM_GUEST_KEYS, p->kind, key,
					   sizeof(key))) {
		/* this build's entry */
		if (snprintf(buf, len, "%s/%s/" MVM_GUEST_CACHE_ARCH "%s/%s", root, p->kind, key,
			     p->name) < (int)len &&
		    !stat(buf, &st) && S_ISREG(st.st_mode))
			return 0;
	}
	if (snprintf(buf, len, "%s/microvm/%s", MVM_DATADIR, p->name) < (int)len &&
	    !stat(buf, &st))
		return 0;
	if (root[0]) {
		snprintf(pattern, sizeof(pattern), "%s/%s/" MVM_GUEST_CACHE_ARCH "*/%s", root, p->kind,
			 p->name);
		if (!guest_file_newest(pattern, buf, len)) {
			guest_file_note(p, key, buf, note, note_len);
			return 0;
		}
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
	return -ENOENT;
}
