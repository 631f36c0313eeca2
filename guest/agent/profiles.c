// SPDX-License-Identifier: MIT
/*
 * profiles.c - the profile store: one file per profile in STATE_DIR/profiles
 *
 * Names are checked before they ever reach a path (1..64 of [A-Za-z0-9._-], no leading
 * dot), so a name is always a plain file name in the store directory. Writes are atomic:
 * a temporary ".tmp-XXXXXX" file (hidden: names never start with a dot) is written, synced
 * and renamed over the old profile, then the directory is synced. Files are mode 0600.
 *
 * The store lives in guest memory, so it is bounded (profile_check_room()): at most
 * AGENT_PROFILES_MAX profiles and AGENT_PROFILES_TOTAL_MAX bytes together; replacing a
 * profile counts its new size instead of the old one.
 *
 * Forgiving names: profiles are stored under the name they were given ("corp.ovpn"), but
 * people say "corp". profile_resolve() is the one place that maps what a client asked for to
 * a stored name: the exact name first, then the same name with ".ovpn" added or removed.
 * profile_describe_missing() words the error for a name that matches nothing, listing what
 * is stored so the user sees the right name at once.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

/**
 * profile_name_valid() - is @name acceptable as a profile name
 * @name:	NUL-terminated candidate
 *
 * Return: 1 if valid, 0 if not
 */
int profile_name_valid(const char *name)
{
	size_t n;

	if (!name || name[0] == '\0' || name[0] == '.')
		return 0;
	for (n = 0; name[n]; n++) {
		char c = name[n];

		if (n >= AGENT_PROFILE_NAME_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/**
 * write_all() - write a whole buffer
 * @fd:		file
 * @p:		data
 * @len:	length
 *
 * Return: 0 or -errno
 */
static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/**
 * profile_store() - atomically create or replace a profile
 * @dir:	store directory (exists)
 * @name:	valid profile name
 * @content:	file content
 * @len:	its length
 *
 * Return: 0 or -errno
 */
int profile_store(const char *dir, const char *name, const char *content, size_t len)
{
	char tmp[512], dst[512];
	int fd, dfd, ret;

	if (!profile_name_valid(name))
		return -EINVAL;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", dir) >= sizeof(tmp) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = write_all(fd, content, len);
	if (!ret && fchmod(fd, 0600) < 0)
		ret = -errno;
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, dst) < 0)
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return ret;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/**
 * profile_exists() - is there a stored profile @name
 * @dir:	store directory
 * @name:	profile name (checked)
 *
 * Return: 1 if a regular file by that name exists, 0 if not or invalid
 */
int profile_exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	if (!profile_name_valid(name))
		return 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return 0;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/**
 * profile_read() - read a stored profile
 * @dir:	store directory
 * @name:	profile name (checked)
 * @content:	receives the malloc'ed content (NUL-terminated; free() it)
 * @len:	receives its length
 *
 * Return: 0, -ENOENT for an invalid or missing name, -EFBIG above AGENT_PROFILE_MAX bytes,
 * or another -errno
 */
int profile_read(const char *dir, const char *name, char **content, size_t *len)
{
	char path[512];
	size_t n = 0;
	ssize_t r;
	char *buf;
	int fd;

	if (!profile_name_valid(name) ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	buf = malloc(AGENT_PROFILE_MAX + 2);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (n <= AGENT_PROFILE_MAX &&
	       (r = read(fd, buf + n, AGENT_PROFILE_MAX + 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			close(fd);
			free(buf);
			return (int)r;
		}
		n += (size_t)r;
	}
	close(fd);
	if (n > AGENT_PROFILE_MAX) {
		free(buf);
		return -EFBIG;
	}
	buf[n] = '\0';
	*content = buf;
	*len = n;
	return 0;
}

/**
 * profile_resolve() - the stored profile a client means by @name
 * @dir:	store directory
 * @name:	name as the client gave it ("corp", "corp.ovpn")
 * @out:	receives the stored name
 * @cap:	size of @out (AGENT_PROFILE_NAME_MAX + 1 is enough)
 *
 * Tries @name itself, then @name without a trailing ".ovpn", then @name + ".ovpn".
 *
 * Return: 0 with @out set, -EINVAL if @name is not a valid name, -ENOENT if nothing matches
 */
int profile_resolve(const char *dir, const char *name, char *out, size_t cap)
{
	static const char ext[] = ".ovpn";
	const size_t elen = sizeof(ext) - 1;
	char alt[AGENT_PROFILE_NAME_MAX + sizeof(ext)];
	size_t n;

	if (!profile_name_valid(name))
		return -EINVAL;
	n = strlen(name);
	if (profile_exists(dir, name))
		goto found;
	if (n > elen && !strcmp(name + n - elen, ext))
		snprintf(alt, sizeof(alt), "%.*s", (int)(n - elen), name);
	else
		snprintf(alt, sizeof(alt), "%s%s", name, ext);
	if (!profile_exists(dir, alt))
		return -ENOENT;
	name = alt;
found:
	if ((size_t)snprintf(out, cap, "%s", name) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/**
 * profile_describe_missing() - the error for a profile name that matches nothing
 * @dir:	store directory
 * @name:	name as the client gave it (valid)
 * @err:	receives "no such profile 'NAME' (stored: a.ovpn, b.ovpn)" or
 *		"no such profile 'NAME' (no profile stored yet)"; a long list ends in "..."
 * @cap:	size of @err
 */
void profile_describe_missing(const char *dir, const char *name, char *err, size_t cap)
{
	char **names = NULL;
	size_t n = 0, len, i;

	if (profile_list(dir, &names, &n))
		n = 0;
	len = (size_t)snprintf(err, cap, "no such profile '%s' (%s", name,
			       n ? "stored: " : "no profile stored yet");
	for (i = 0; i < n && len < cap; i++) {
		/* room for this name, its separator and the closing ", ...)" */
		if (len + strlen(names[i]) + 8 >= cap) {
			len += (size_t)snprintf(err + len, cap - len, "...");
			break;
		}
		len += (size_t)snprintf(err + len, cap - len, "%s%s", names[i],
					i + 1 < n ? ", " : "");
	}
	if (len < cap)
		snprintf(err + len, cap - len, ")");
	profile_list_free(names, n);
}

static int cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/**
 * profile_list() - sorted names of the stored profiles
 * @dir:	store directory
 * @names:	receives a malloc'ed array of malloc'ed names (free with profile_list_free())
 * @n:		receives the count
 *
 * Return: 0 or -errno
 */
int profile_list(const char *dir, char ***names, size_t *n)
{
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	DIR *d;

	*names = NULL;
	*n = 0;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char **nv;

		if (!profile_name_valid(de->d_name) ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		if (de->d_type == DT_UNKNOWN && !profile_exists(dir, de->d_name))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				goto nomem;
			v = nv;
		}
		v[cnt] = strdup(de->d_name);
		if (!v[cnt])
			goto nomem;
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_names);
	*names = v;
	*n = cnt;
	return 0;
nomem:
	closedir(d);
	profile_list_free(v, cnt);
	return -ENOMEM;
}

/**
 * profile_list_free() - release what profile_list() returned
 * @names:	array
 * @n:		count
 */
void profile_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/**
 * profile_check_room() - would storing @len bytes as @name stay within the store's limits
 * @dir:	store directory
 * @name:	valid profile name (replacing an existing one does not add to the count)
 * @len:	size of the new content
 * @max_count:	most profiles the store may hold
 * @max_total:	most bytes all profiles may hold together
 * @err:	receives a message for the client when not
 * @errlen:	size of @err
 *
 * Return: 0 if there is room, -ENOSPC (with @err) if not, or another -errno when the store
 * cannot be read
 */
int profile_check_room(const char *dir, const char *name, size_t len, size_t max_count,
		       size_t max_total, char *err, size_t errlen)
{
	char **names, path[512];
	size_t n, count = 0, total = len;
	bool replacing = false;
	int ret = profile_list(dir, &names, &n);

	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (!strcmp(names[i], name)) {
			replacing = true;
			continue;
		}
		count++;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) < sizeof(path) &&
		    stat(path, &st) == 0)
			total += (size_t)st.st_size;
	}
	profile_list_free(names, n);
	if (!replacing && count + 1 > max_count) {
		snprintf(err, errlen, "too many profiles (at most %zu); replace one",
			 max_count);
		return -ENOSPC;
	}
	if (total > max_total) {
		snprintf(err, errlen, "profile store full (at most %zu MiB for all profiles)",
			 max_total >> 20);
		return -ENOSPC;
	}
	return 0;
}
