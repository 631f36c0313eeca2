// SPDX-License-Identifier: MIT
/*
 * cmdline.c - microvm-init options from the kernel command line
 *
 * The VMM (or QEMU, or the namespace backend through init's argv) passes options as
 * `microvm.KEY=VALUE` tokens. The kernel does not hand dotted parameters to init, so init
 * reads /proc/cmdline and parses it here. Tokens are split like the kernel does (blanks
 * separate, double quotes group: microvm.listen="a b"); everything that is not microvm.* is
 * ignored. A bad or unknown microvm.* option is reported and otherwise ignored: PID 1 must
 * come up with its defaults rather than die on a typo.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"

#define PREFIX "microvm."
#define KEY_MAX 48

/**
 * init_opts_default() - the defaults: vsock agent, static 10.0.2.15/24 via 10.0.2.2
 * @o:	options to fill
 */
void init_opts_default(struct init_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->agent = INIT_AGENT_VSOCK;
	o->net = true;
	strcpy(o->ifname, "eth0");
	inet_pton(AF_INET, "10.0.2.15", &o->addr);
	o->prefix = 24;
	inet_pton(AF_INET, "10.0.2.2", &o->gw);
	inet_pton(AF_INET, "10.0.2.3", &o->dns);
	o->backoff_min_ms = 250;
	o->backoff_max_ms = 8000;
}

/**
 * parse_uint() - strict decimal parser
 * @s:		text, digits only
 * @max:	largest accepted value
 * @v:		result
 *
 * Return: 0, or -EINVAL if @s is empty, has other characters or exceeds @max
 */
static int parse_uint(const char *s, unsigned long long max, unsigned long long *v)
{
	unsigned long long r = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (r > (max - (unsigned long long)(*s - '0')) / 10)
			return -EINVAL;
		r = r * 10 + (unsigned long long)(*s - '0');
	}
	*v = r;
	return 0;
}

/**
 * parse_addr() - "A.B.C.D" or "A.B.C.D/N"
 * @s:		text
 * @addr:	address
 * @prefix:	prefix length, or NULL if no "/N" is allowed
 *
 * Return: 0 or -EINVAL
 */
static int parse_addr(const char *s, struct in_addr *addr, unsigned int *prefix)
{
	char buf[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long long n = 24;

	if (len >= sizeof(buf) || (slash && !prefix))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, addr) != 1)
		return -EINVAL;
	if (slash && parse_uint(slash + 1, 32, &n))
		return -EINVAL;
	if (prefix)
		*prefix = (unsigned int)n;
	return 0;
}

/**
 * init_opt_set() - set one option
 * @o:		options
 * @key:	name without the "microvm." prefix
 * @val:	value
 *
 * Return: 0, -ENOENT for an unknown @key, -EINVAL for a bad @val (@o unchanged)
 */
int init_opt_set(struct init_opts *o, const char *key, const char *val)
{
	unsigned long long n;

	if (!strcmp(key, "agent")) {
		if (!strcmp(val, "vsock"))
			o->agent = INIT_AGENT_VSOCK;
		else if (!strcmp(val, "tcp"))
			o->agent = INIT_AGENT_TCP;
		else if (!strcmp(val, "none"))
			o->agent = INIT_AGENT_NONE;
		else
			return -EINVAL;
	} else if (!strcmp(key, "listen")) {
		if (strlen(val) >= sizeof(o->listen))
			return -EINVAL;
		strcpy(o->listen, val);
	} else if (!strcmp(key, "net")) {
		if (!strcmp(val, "static"))
			o->net = true;
		else if (!strcmp(val, "none"))
			o->net = false;
		else
			return -EINVAL;
	} else if (!strcmp(key, "ifname")) {
		if (!*val || strlen(val) >= sizeof(o->ifname) || strchr(val, '/'))
			return -EINVAL;
		strcpy(o->ifname, val);
	} else if (!strcmp(key, "ip")) {
		struct in_addr a;
		unsigned int p;

		if (parse_addr(val, &a, &p))
			return -EINVAL;
		o->addr = a;
		o->prefix = p;
	} else if (!strcmp(key, "gw") || !strcmp(key, "dns")) {
		struct in_addr a;

		if (parse_addr(val, &a, NULL))
			return -EINVAL;
		*(key[0] == 'g' ? &o->gw : &o->dns) = a;
	} else if (!strcmp(key, "time")) {
		if (parse_uint(val, INT64_MAX, &n))
			return -EINVAL;
		o->time = (int64_t)n;
	} else if (!strcmp(key, "backoff_min_ms") || !strcmp(key, "backoff_max_ms")) {
		if (parse_uint(val, 3600000, &n) || n == 0)
			return -EINVAL;
		*(!strcmp(key, "backoff_min_ms") ? &o->backoff_min_ms : &o->backoff_max_ms) =
			(unsigned int)n;
	} else if (!strcmp(key, "debug")) {
		if (strcmp(val, "0") && strcmp(val, "1"))
			return -EINVAL;
		o->debug = val[0] == '1';
	} else {
		return -ENOENT;
	}
	return 0;
}

/**
 * report() - format a message and hand it to the caller's reporter
 * @fn:		reporter, may be NULL
 * @ctx:	its context
 * @fmt:	printf format
 */
__attribute__((format(printf, 3, 4)))
static void report(init_report_fn fn, void *ctx, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(ctx, msg);
}

/**
 * init_cmdline_parse() - apply the microvm.* options of a kernel command line
 * @o:		options, normally preset with init_opts_default()
 * @cmdline:	the command line (contents of /proc/cmdline, NUL-terminated)
 * @rep:	called once per ignored option with a message, may be NULL
 * @ctx:	passed to @rep
 *
 * Return: number of microvm.* options that were ignored (unknown, bad value, too long)
 */
int init_cmdline_parse(struct init_opts *o, const char *cmdline, init_report_fn rep, void *ctx)
{
	const char *p = cmdline;
	int bad = 0;

	while (*p) {
		char key[KEY_MAX], val[INIT_VALUE_MAX];
		size_t klen = 0, vlen = 0;
		bool quoted = false, has_val = false, overflow = false;
		int rc;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		for (; *p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (*p == '"') {
				quoted = !quoted;
			} else if (!has_val && *p == '=') {
				has_val = true;
			} else if (!has_val) {
				if (klen + 1 < sizeof(key))
					key[klen++] = *p;
				else
					overflow = true;
			} else {
				if (vlen + 1 < sizeof(val))
					val[vlen++] = *p;
				else
					overflow = true;
			}
		}
		key[klen] = '\0';
		val[vlen] = '\0';
		if (klen < strlen(PREFIX) || memcmp(key, PREFIX, strlen(PREFIX)))
			continue;
		if (overflow) {
			report(rep, ctx, "ignoring over-long option %s", key);
			bad++;
			continue;
		}
		rc = init_opt_set(o, key + strlen(PREFIX), has_val ? val : "");
		if (rc == -ENOENT)
			report(rep, ctx, "ignoring unknown option %s", key);
		else if (rc)
			report(rep, ctx, "ignoring %s: bad value '%s'", key, val);
		bad += rc != 0;
	}
	return bad;
}

/**
 * init_opts_finish() - defaults that depend on other options
 * @o:		options after parsing
 *
 * An agent on TCP listens on the guest's own address when init configures the NIC (the
 * VMM's user-mode network forwards host ports to 10.0.2.15); with microvm.net=none (the
 * namespace backend) it keeps its own default, loopback. An explicit microvm.listen= wins.
 */
void init_opts_finish(struct init_opts *o)
{
	if (o->agent == INIT_AGENT_TCP && !o->listen[0] && o->net)
		inet_ntop(AF_INET, &o->addr, o->listen, sizeof(o->listen));
}
