// SPDX-License-Identifier: MIT
/*
 * ovpn_check.c - the allow-list an imported OpenVPN profile must pass
 *
 * Theory of operation
 *
 *   OpenVPN runs as root in the guest, and a profile is a list of command-line options: with
 *   `script-security 2` and `up "/bin/sh ..."` it runs anything, with `log FILE` or
 *   `writepid FILE` it writes where it is told. Whoever uploads a profile (vpn_set_profile)
 *   is untrusted, so, like the desktop clients that import profiles, the agent accepts only
 *   the client directives that change how the tunnel is made and names nothing of its own
 *   choosing on the guest: no program, library, file, directory, device or socket. Keys and
 *   certificates come inline (<ca>...</ca>). Unknown directives are refused too, so a new
 *   OpenVPN option is refused until someone has looked at it.
 *
 *   The text is read the way OpenVPN 2.6 reads a --config file (options.c: read_config_file,
 *   parse_line, check_inline_file, read_inline_file), so both see the same directives:
 *
 *     - lines end at '\n'; OpenVPN reads them with a 256-byte buffer and would take the
 *       rest of a longer line as further lines, so directive lines (and the line closing an
 *       inline block) longer than OVPN_CHECK_LINE_MAX are refused; inside an inline block
 *       (a one-line base64 <pkcs12>) a long line is fine unless it holds a '<', which could
 *       start a close tag in one of OpenVPN's pieces; a UTF-8 byte order mark before line 1
 *       is skipped; NUL bytes are refused;
 *     - tokens are separated by white space; "double" quotes group with backslash escapes
 *       (\\ \" and \<space> only; any other backslash is an error, as in OpenVPN), 'single'
 *       quotes group literally; '#' or ';' where a token would start ends the line;
 *       at most OVPN_CHECK_TOKENS tokens (OpenVPN silently drops the rest: we refuse);
 *     - a leading "--" on the directive is allowed ("--remote" == "remote");
 *     - a line that is exactly "<tag>" opens an inline block that ends at the first line
 *       starting (after white space) with "</tag>"; only the blocks of keys, certificates
 *       and the like are accepted, and <connection> blocks, whose lines are checked as
 *       directives themselves.
 *
 *   Every refusal names the line and the directive: "line 12: 'up' is not allowed in an
 *   imported profile: it runs a program". Pure code, unit-tested
 *   (tests/unit/agent/test_agent_ovpn_check.c) and fuzzed (fuzz-agent-ovpn-check).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

#define OVPN_CHECK_TOKENS	16	/* MAX_PARMS in OpenVPN */
#define OVPN_CHECK_LINE_MAX	254	/* OPTION_LINE_SIZE 256, minus '\n' and NUL */

/**
 * enum ovc_rule_kind - what the allow-list says about a directive
 */
enum ovc_rule_kind {
	OVC_ALLOW,		/* any arguments */
	OVC_NOARGS,		/* allowed without arguments only (an argument names a file) */
	OVC_INLINE,		/* only as an inline block: the directive form names a file */
	OVC_ARGS2,		/* at most two arguments (a third names a file) */
	OVC_HTTP_PROXY,		/* server port [auto|auto-nct [method]]: no credentials file */
	OVC_SCRIPT_SECURITY,	/* 0 or 1 */
	OVC_SETENV,		/* only names that cannot change how a program runs */
	OVC_RUNS,		/* refused: runs a program */
	OVC_LIBRARY,		/* refused: loads code */
	OVC_WRITES,		/* refused: writes a file */
	OVC_READS,		/* refused: reads a file or directory of its choosing */
	OVC_PLACE,		/* refused: changes where or how OpenVPN runs */
};

/**
 * struct ovc_rule - one directive of the allow-list
 * @name:	directive without "--"
 * @kind:	enum ovc_rule_kind
 * @inl:	may also appear as an inline block <name>...</name>
 */
struct ovc_rule {
	const char *name;
	unsigned char kind;
	bool inl;
};

/* Sorted by name (strcmp): looked up with bsearch(). */
static const struct ovc_rule ovc_rules[] = {
	{ "allow-compression", OVC_ALLOW, false },
	{ "allow-pull-fqdn", OVC_ALLOW, false },
	{ "allow-recursive-routing", OVC_ALLOW, false },
	{ "askpass", OVC_NOARGS, false },
	{ "auth", OVC_ALLOW, false },
	{ "auth-nocache", OVC_ALLOW, false },
	{ "auth-retry", OVC_ALLOW, false },
	{ "auth-token", OVC_ALLOW, false },
	{ "auth-token-user", OVC_ALLOW, false },
	{ "auth-user-pass", OVC_NOARGS, true },
	{ "auth-user-pass-verify", OVC_RUNS, false },
	{ "bcast-buffers", OVC_ALLOW, false },
	{ "bind", OVC_ALLOW, false },
	{ "bind-dev", OVC_ALLOW, false },
	{ "block-ipv6", OVC_ALLOW, false },
	{ "block-outside-dns", OVC_ALLOW, false },
	{ "ca", OVC_INLINE, true },
	{ "capath", OVC_READS, false },
	{ "cd", OVC_PLACE, false },
	{ "cert", OVC_INLINE, true },
	{ "chroot", OVC_PLACE, false },
	{ "cipher", OVC_ALLOW, false },
	{ "client", OVC_ALLOW, false },
	{ "client-connect", OVC_RUNS, false },
	{ "client-disconnect", OVC_RUNS, false },
	{ "client-nat", OVC_ALLOW, false },
	{ "comp-lzo", OVC_ALLOW, false },
	{ "comp-noadapt", OVC_ALLOW, false },
	{ "compat-mode", OVC_ALLOW, false },
	{ "compress", OVC_ALLOW, false },
	{ "config", OVC_READS, false },
	{ "connect-retry", OVC_ALLOW, false },
	{ "connect-retry-max", OVC_ALLOW, false },
	{ "connect-timeout", OVC_ALLOW, false },
	{ "crl-verify", OVC_INLINE, true },
	{ "cryptoapicert", OVC_READS, false },
	{ "daemon", OVC_PLACE, false },
	{ "data-ciphers", OVC_ALLOW, false },
	{ "data-ciphers-fallback", OVC_ALLOW, false },
	{ "dev", OVC_ALLOW, false },
	{ "dev-node", OVC_READS, false },
	{ "dev-type", OVC_ALLOW, false },
	{ "dhcp-option", OVC_ALLOW, false },
	{ "dhcp-release", OVC_ALLOW, false },
	{ "dhcp-renew", OVC_ALLOW, false },
	{ "disable-dco", OVC_ALLOW, false },
	{ "disable-occ", OVC_ALLOW, false },
	{ "dns", OVC_ALLOW, false },
	{ "down", OVC_RUNS, false },
	{ "down-pre", OVC_ALLOW, false },
	{ "ecdh-curve", OVC_ALLOW, false },
	{ "echo", OVC_ALLOW, false },
	{ "engine", OVC_LIBRARY, false },
	{ "errors-to-stderr", OVC_ALLOW, false },
	{ "explicit-exit-notify", OVC_ALLOW, false },
	{ "extra-certs", OVC_INLINE, true },
	{ "fast-io", OVC_ALLOW, false },
	{ "float", OVC_ALLOW, false },
	{ "force-tls-key-material-export", OVC_ALLOW, false },
	{ "fragment", OVC_ALLOW, false },
	{ "group", OVC_ALLOW, false },
	{ "hand-window", OVC_ALLOW, false },
	{ "http-proxy", OVC_HTTP_PROXY, false },
	{ "http-proxy-option", OVC_ALLOW, false },
	{ "http-proxy-user-pass", OVC_INLINE, true },
	{ "ifconfig", OVC_ALLOW, false },
	{ "ifconfig-ipv6", OVC_ALLOW, false },
	{ "ifconfig-noexec", OVC_ALLOW, false },
	{ "ifconfig-nowarn", OVC_ALLOW, false },
	{ "ignore-unknown-option", OVC_ALLOW, false },
	{ "inactive", OVC_ALLOW, false },
	{ "ip-win32", OVC_ALLOW, false },
	{ "ipchange", OVC_RUNS, false },
	{ "iproute", OVC_RUNS, false },
	{ "keepalive", OVC_ALLOW, false },
	{ "key", OVC_INLINE, true },
	{ "key-direction", OVC_ALLOW, false },
	{ "keying-material-exporter", OVC_ALLOW, false },
	{ "learn-address", OVC_RUNS, false },
	{ "link-mtu", OVC_ALLOW, false },
	{ "lladdr", OVC_ALLOW, false },
	{ "local", OVC_ALLOW, false },
	{ "log", OVC_WRITES, false },
	{ "log-append", OVC_WRITES, false },
	{ "lport", OVC_ALLOW, false },
	{ "machine-readable-output", OVC_ALLOW, false },
	{ "mark", OVC_ALLOW, false },
	{ "memstats", OVC_WRITES, false },
	{ "mlock", OVC_ALLOW, false },
	{ "mssfix", OVC_ALLOW, false },
	{ "mtu-disc", OVC_ALLOW, false },
	{ "mtu-test", OVC_ALLOW, false },
	{ "mute", OVC_ALLOW, false },
	{ "mute-replay-warnings", OVC_ALLOW, false },
	{ "ncp-ciphers", OVC_ALLOW, false },
	{ "nice", OVC_ALLOW, false },
	{ "nobind", OVC_ALLOW, false },
	{ "ns-cert-type", OVC_ALLOW, false },
	{ "opt-verify", OVC_ALLOW, false },
	{ "passtos", OVC_ALLOW, false },
	{ "peer-fingerprint", OVC_ALLOW, true },
	{ "persist-key", OVC_ALLOW, false },
	{ "persist-local-ip", OVC_ALLOW, false },
	{ "persist-remote-ip", OVC_ALLOW, false },
	{ "persist-tun", OVC_ALLOW, false },
	{ "ping", OVC_ALLOW, false },
	{ "ping-exit", OVC_ALLOW, false },
	{ "ping-restart", OVC_ALLOW, false },
	{ "ping-timer-rem", OVC_ALLOW, false },
	{ "pkcs11-providers", OVC_LIBRARY, false },
	{ "pkcs12", OVC_INLINE, true },
	{ "plugin", OVC_LIBRARY, false },
	{ "port", OVC_ALLOW, false },
	{ "proto", OVC_ALLOW, false },
	{ "proto-force", OVC_ALLOW, false },
	{ "providers", OVC_LIBRARY, false },
	{ "pull", OVC_ALLOW, false },
	{ "pull-filter", OVC_ALLOW, false },
	{ "push-peer-info", OVC_ALLOW, false },
	{ "rcvbuf", OVC_ALLOW, false },
	{ "redirect-gateway", OVC_ALLOW, false },
	{ "redirect-private", OVC_ALLOW, false },
	{ "register-dns", OVC_ALLOW, false },
	{ "remap-usr1", OVC_ALLOW, false },
	{ "remote", OVC_ALLOW, false },
	{ "remote-cert-eku", OVC_ALLOW, false },
	{ "remote-cert-ku", OVC_ALLOW, false },
	{ "remote-cert-tls", OVC_ALLOW, false },
	{ "remote-random", OVC_ALLOW, false },
	{ "remote-random-hostname", OVC_ALLOW, false },
	{ "reneg-bytes", OVC_ALLOW, false },
	{ "reneg-pkts", OVC_ALLOW, false },
	{ "reneg-sec", OVC_ALLOW, false },
	{ "replay-persist", OVC_WRITES, false },
	{ "replay-window", OVC_ALLOW, false },
	{ "resolv-retry", OVC_ALLOW, false },
	{ "route", OVC_ALLOW, false },
	{ "route-delay", OVC_ALLOW, false },
	{ "route-gateway", OVC_ALLOW, false },
	{ "route-ipv6", OVC_ALLOW, false },
	{ "route-ipv6-gateway", OVC_ALLOW, false },
	{ "route-method", OVC_ALLOW, false },
	{ "route-metric", OVC_ALLOW, false },
	{ "route-noexec", OVC_ALLOW, false },
	{ "route-nopull", OVC_ALLOW, false },
	{ "route-pre-down", OVC_RUNS, false },
	{ "route-up", OVC_RUNS, false },
	{ "rport", OVC_ALLOW, false },
	{ "script-security", OVC_SCRIPT_SECURITY, false },
	{ "secret", OVC_INLINE, true },
	{ "server-poll-timeout", OVC_ALLOW, false },
	{ "session-timeout", OVC_ALLOW, false },
	{ "setcon", OVC_PLACE, false },
	{ "setenv", OVC_SETENV, false },
	{ "setenv-safe", OVC_ALLOW, false },	/* the name gets an "OPENVPN_" prefix */
	{ "shaper", OVC_ALLOW, false },
	{ "single-session", OVC_ALLOW, false },
	{ "sndbuf", OVC_ALLOW, false },
	{ "socket-flags", OVC_ALLOW, false },
	{ "socks-proxy", OVC_ARGS2, false },
	{ "static-challenge", OVC_ALLOW, false },
	{ "status", OVC_WRITES, false },
	{ "status-version", OVC_ALLOW, false },
	{ "suppress-timestamps", OVC_ALLOW, false },
	{ "syslog", OVC_PLACE, false },
	{ "tap-sleep", OVC_ALLOW, false },
	{ "tcp-nodelay", OVC_ALLOW, false },
	{ "tcp-queue-limit", OVC_ALLOW, false },
	{ "tls-auth", OVC_INLINE, true },
	{ "tls-cert-profile", OVC_ALLOW, false },
	{ "tls-cipher", OVC_ALLOW, false },
	{ "tls-ciphersuites", OVC_ALLOW, false },
	{ "tls-client", OVC_ALLOW, false },
	{ "tls-crypt", OVC_INLINE, true },
	{ "tls-crypt-v2", OVC_INLINE, true },
	{ "tls-crypt-v2-verify", OVC_RUNS, false },
	{ "tls-exit", OVC_ALLOW, false },
	{ "tls-export-cert", OVC_WRITES, false },
	{ "tls-groups", OVC_ALLOW, false },
	{ "tls-timeout", OVC_ALLOW, false },
	{ "tls-verify", OVC_RUNS, false },
	{ "tls-version-max", OVC_ALLOW, false },
	{ "tls-version-min", OVC_ALLOW, false },
	{ "tmp-dir", OVC_PLACE, false },
	{ "topology", OVC_ALLOW, false },
	{ "tran-window", OVC_ALLOW, false },
	{ "tun-ipv6", OVC_ALLOW, false },
	{ "tun-max-mtu", OVC_ALLOW, false },
	{ "tun-mtu", OVC_ALLOW, false },
	{ "tun-mtu-extra", OVC_ALLOW, false },
	{ "txqueuelen", OVC_ALLOW, false },
	{ "up", OVC_RUNS, false },
	{ "up-delay", OVC_ALLOW, false },
	{ "up-restart", OVC_ALLOW, false },
	{ "user", OVC_ALLOW, false },
	{ "verb", OVC_ALLOW, false },
	{ "verify-hash", OVC_ALLOW, true },
	{ "verify-x509-name", OVC_ALLOW, false },
	{ "writepid", OVC_WRITES, false },
	{ "x509-track", OVC_ALLOW, false },
};

/**
 * struct ovc_line - one tokenized line
 * @tok:	the tokens (NUL-terminated, inside @buf)
 * @n:		how many
 * @buf:	storage: no token is longer than the line
 */
struct ovc_line {
	char *tok[OVPN_CHECK_TOKENS];
	size_t n;
	char buf[OVPN_CHECK_LINE_MAX + OVPN_CHECK_TOKENS + 1];
};

/**
 * struct ovc_ctx - the text being checked
 * @text:	the profile
 * @len:	its length
 * @pos:	start of the next line
 * @line_no:	number of the line last read (1-based)
 * @err:	error text buffer
 * @errlen:	its size
 */
struct ovc_ctx {
	const char *text;
	size_t len, pos;
	unsigned int line_no;
	char *err;
	size_t errlen;
};

/**
 * ovc_fail() - format the error for the current line
 * @c:		context
 * @fmt:	printf format of what is wrong
 *
 * Return: -EINVAL
 */
static int ovc_fail(struct ovc_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int ovc_fail(struct ovc_ctx *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!c->errlen)
		return -EINVAL;
	n = snprintf(c->err, c->errlen, "line %u: ", c->line_no);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/**
 * ovc_next_line() - the next physical line
 * @c:		context
 * @line:	receives its start
 * @n:		receives its length without the '\n'
 *
 * Return: 1 with a line, 0 at the end of the text, -EINVAL for a NUL byte or a line longer
 * than OpenVPN reads in one piece
 */
static int ovc_next_line(struct ovc_ctx *c, const char **line, size_t *n)
{
	const char *s, *nl;

	if (c->pos >= c->len)
		return 0;
	s = c->text + c->pos;
	nl = memchr(s, '\n', c->len - c->pos);
	*n = nl ? (size_t)(nl - s) : c->len - c->pos;
	c->pos += *n + 1;
	c->line_no++;
	*line = s;
	if (c->line_no == 1 && *n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
		*line += 3;
		*n -= 3;
	}
	if (memchr(*line, '\0', *n))
		return ovc_fail(c, "contains a NUL byte");
	return 1;
}

/**
 * ovc_too_long() - refuse a line OpenVPN would read as several
 * @c:		context
 * @n:		the line's length
 *
 * Return: 0, or -EINVAL above OVPN_CHECK_LINE_MAX characters
 */
static int ovc_too_long(struct ovc_ctx *c, size_t n)
{
	if (n <= OVPN_CHECK_LINE_MAX)
		return 0;
	return ovc_fail(c, "longer than %d characters (OpenVPN would split it)",
			OVPN_CHECK_LINE_MAX);
}

/**
 * ovc_space() - white space as OpenVPN's parse_line() sees it
 * @ch:		a character (the end of the line counts as space)
 *
 * Return: true for space
 */
static bool ovc_space(char ch)
{
	return ch == '\0' || isspace((unsigned char)ch);
}

/**
 * ovc_tokenize() - split a line into tokens like OpenVPN's parse_line()
 * @c:		context (for errors)
 * @s:		the line
 * @n:		its length (at most OVPN_CHECK_LINE_MAX, no NUL inside)
 * @out:	receives the tokens
 *
 * Return: 0, or -EINVAL (unclosed quote, bad backslash, too many tokens)
 */
static int ovc_tokenize(struct ovc_ctx *c, const char *s, size_t n, struct ovc_line *out)
{
	enum { INITIAL, UNQUOTED, DQUOTED, SQUOTED } st = INITIAL;
	size_t o = 0, start = 0;
	bool bs = false;

	out->n = 0;
	for (size_t i = 0; i <= n; i++) {
		char in = i < n ? s[i] : '\0', ch = 0;
		bool done = false;

		if (!bs && in == '\\' && st != SQUOTED) {
			bs = true;
			continue;
		}
		if (st == INITIAL) {
			if (!ovc_space(in)) {
				if (in == ';' || in == '#')
					break;
				if (!bs && in == '"') {
					st = DQUOTED;
				} else if (!bs && in == '\'') {
					st = SQUOTED;
				} else {
					ch = in;
					st = UNQUOTED;
				}
				start = o;
			}
		} else if (st == UNQUOTED) {
			if (!bs && ovc_space(in))
				done = true;
			else
				ch = in;
		} else if (st == DQUOTED) {
			if (!bs && in == '"')
				done = true;
			else
				ch = in;
		} else if (in == '\'') {
			done = true;
		} else {
			ch = in;
		}
		if (bs && ch && ch != '\\' && ch != '"' && !ovc_space(ch))
			return ovc_fail(c, "bad backslash ('\\') usage");
		if (bs && !ch && !done && st != INITIAL)
			return ovc_fail(c, "bad backslash ('\\') usage");
		bs = false;
		if (ch)
			out->buf[o++] = ch;
		if (done) {
			if (out->n == OVPN_CHECK_TOKENS)
				return ovc_fail(c, "more than %d words", OVPN_CHECK_TOKENS);
			out->buf[o++] = '\0';
			out->tok[out->n++] = out->buf + start;
			st = INITIAL;
		}
		if (i == n)
			break;
	}
	if (st == DQUOTED)
		return ovc_fail(c, "no closing quotation (\")");
	if (st == SQUOTED)
		return ovc_fail(c, "no closing single quotation (')");
	return 0;
}

/**
 * ovc_rule_cmp() - bsearch() comparison of a name and a rule
 * @key:	the name
 * @elt:	a struct ovc_rule
 *
 * Return: strcmp() order
 */
static int ovc_rule_cmp(const void *key, const void *elt)
{
	return strcmp(key, ((const struct ovc_rule *)elt)->name);
}

/**
 * ovc_lookup() - the allow-list entry of a directive
 * @name:	directive without "--"
 *
 * Return: the rule, or NULL when the directive is unknown
 */
static const struct ovc_rule *ovc_lookup(const char *name)
{
	return bsearch(name, ovc_rules, sizeof(ovc_rules) / sizeof(ovc_rules[0]),
		       sizeof(ovc_rules[0]), ovc_rule_cmp);
}

/**
 * ovpn_check_known() - is @name a directive the allow-list knows (allowed or refused)
 * @name:	directive without "--"
 *
 * Return: true when listed
 */
bool ovpn_check_known(const char *name)
{
	return ovc_lookup(name) != NULL;
}

/**
 * ovc_shown() - a word of the profile as it may appear in an error (and so in a log)
 * @dst:	receives at most OVC_SHOWN_MAX characters and a NUL
 * @src:	the word
 *
 * Control and non-ASCII bytes become '?', and long words are cut ("..."): the profile is
 * untrusted and the message reaches logs and terminals.
 *
 * Return: @dst
 */
#define OVC_SHOWN_MAX 48
static const char *ovc_shown(char dst[OVC_SHOWN_MAX + 1], const char *src)
{
	size_t i;

	for (i = 0; src[i] && i < OVC_SHOWN_MAX; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	if (src[i])
		memcpy(dst + OVC_SHOWN_MAX - 3, "...", 3);
	dst[i] = '\0';
	return dst;
}

/**
 * ovc_refuse() - the standard refusal
 * @c:		context
 * @name:	the directive
 * @why:	the reason
 *
 * Return: -EINVAL
 */
static int ovc_refuse(struct ovc_ctx *c, const char *name, const char *why)
{
	char shown[OVC_SHOWN_MAX + 1];

	return ovc_fail(c, "'%s' is not allowed in an imported profile: %s",
			ovc_shown(shown, name), why);
}

/**
 * ovc_setenv_ok() - may a profile set this environment variable
 * @name:	the variable
 *
 * The values reach OpenVPN's peer info (IV_*, UV_*) and the environment of anything OpenVPN
 * starts: names like LD_PRELOAD or PATH must not get there.
 *
 * Return: true when harmless
 */
static bool ovc_setenv_ok(const char *name)
{
	return !strncmp(name, "IV_", 3) || !strncmp(name, "UV_", 3) ||
	       !strcmp(name, "FORWARD_COMPATIBLE");
}

static int ovc_directive(struct ovc_ctx *c, char **tok, size_t n, bool in_connection);

/**
 * ovc_args() - check the arguments of an allowed directive
 * @c:		context
 * @r:		its rule
 * @tok:	directive and arguments
 * @n:		how many tokens
 * @in_connection: inside a <connection> block
 *
 * Return: 0 or -EINVAL
 */
static int ovc_args(struct ovc_ctx *c, const struct ovc_rule *r, char **tok, size_t n,
		    bool in_connection)
{
	const char *name = tok[0];

	switch (r->kind) {
	case OVC_NOARGS:
		if (n > 1)
			return ovc_refuse(c, name, "with an argument it reads a file");
		return 0;
	case OVC_INLINE:
		return ovc_fail(c, "'%s' is not allowed in an imported profile: it names a file; "
				"put the content inline as <%s>...</%s>", name, name, name);
	case OVC_ARGS2:
		if (n > 3)
			return ovc_refuse(c, name, "its third argument names a file");
		return 0;
	case OVC_HTTP_PROXY:
		if (n > 3 && strcmp(tok[3], "auto") && strcmp(tok[3], "auto-nct"))
			return ovc_refuse(c, name, "its third argument names a file; use "
					  "<http-proxy-user-pass> inline");
		return 0;
	case OVC_SCRIPT_SECURITY:
		if (n != 2 || (strcmp(tok[1], "0") && strcmp(tok[1], "1")))
			return ovc_refuse(c, name, "above 1 it lets OpenVPN run programs");
		return 0;
	case OVC_SETENV:
		if (n >= 3 && !strcmp(tok[1], "opt"))	/* "setenv opt X": X, if OpenVPN knows it */
			return ovc_directive(c, tok + 2, n - 2, in_connection);
		if (n >= 2 && !ovc_setenv_ok(tok[1])) {
			char shown[OVC_SHOWN_MAX + 1];

			return ovc_fail(c, "'setenv %s' is not allowed in an imported profile: "
					"only IV_*, UV_* and FORWARD_COMPATIBLE may be set",
					ovc_shown(shown, tok[1]));
		}
		return 0;
	default:
		return 0;
	}
}

/**
 * ovc_directive() - check one directive line
 * @c:		context
 * @tok:	directive (leading "--" allowed) and arguments
 * @n:		how many tokens (> 0)
 * @in_connection: inside a <connection> block
 *
 * Return: 0 or -EINVAL
 */
static int ovc_directive(struct ovc_ctx *c, char **tok, size_t n, bool in_connection)
{
	const struct ovc_rule *r;
	char *name = tok[0];

	if (!strncmp(name, "--", 2))
		name += 2;
	tok[0] = name;
	r = ovc_lookup(name);
	if (!r && !strncmp(name, "management", 10))
		return ovc_refuse(c, name, "it opens a management interface");
	if (!r && !strncmp(name, "pkcs11-", 7))
		return ovc_refuse(c, name, "it loads a PKCS#11 library");
	if (!r)
		return ovc_refuse(c, name, "not a known client directive");
	switch (r->kind) {
	case OVC_RUNS:
		return ovc_refuse(c, name, "it runs a program");
	case OVC_LIBRARY:
		return ovc_refuse(c, name, "it loads a library");
	case OVC_WRITES:
		return ovc_refuse(c, name, "it writes a file");
	case OVC_READS:
		return ovc_refuse(c, name, "it reads a file of its choosing");
	case OVC_PLACE:
		return ovc_refuse(c, name, "it changes where or how OpenVPN runs");
	default:
		return ovc_args(c, r, tok, n, in_connection);
	}
}

static int ovc_lines(struct ovc_ctx *c, const char *close_tag);

/**
 * ovc_inline() - an inline block "<tag>": check the tag, skip or check its content
 * @c:		context
 * @tag:	the tag without brackets
 * @in_connection: already inside a <connection> block
 *
 * Return: 0 or -EINVAL
 */
static int ovc_inline(struct ovc_ctx *c, const char *tag, bool in_connection)
{
	const struct ovc_rule *r;
	char close_tag[OVPN_CHECK_LINE_MAX + 4];
	unsigned int open_line = c->line_no;
	const char *line;
	size_t n;
	int ret;

	snprintf(close_tag, sizeof(close_tag), "</%s>", tag);
	if (!strcmp(tag, "connection")) {
		if (in_connection)
			return ovc_fail(c, "<connection> blocks do not nest");
		return ovc_lines(c, close_tag);
	}
	r = ovc_lookup(tag);
	if (!r || !r->inl) {
		char shown[OVC_SHOWN_MAX + 1];

		return ovc_fail(c, "<%s> is not allowed in an imported profile: only keys, "
				"certificates and <connection> blocks may be inline",
				ovc_shown(shown, tag));
	}
	while ((ret = ovc_next_line(c, &line, &n)) > 0) {
		size_t full = n;

		while (n && isspace((unsigned char)*line)) {
			line++;
			n--;
		}
		if (n >= strlen(close_tag) && !memcmp(line, close_tag, strlen(close_tag)))
			return ovc_too_long(c, full);
		if (full > OVPN_CHECK_LINE_MAX && memchr(line, '<', n))
			return ovc_fail(c, "a line longer than %d characters inside <%s> holds a "
					"'<' (OpenVPN would split it)", OVPN_CHECK_LINE_MAX, tag);
	}
	if (ret < 0)
		return ret;
	c->line_no = open_line;
	return ovc_fail(c, "<%s> is not closed by </%s>", tag, tag);
}

/**
 * ovc_lines() - check lines up to the end of the text or @close_tag
 * @c:		context
 * @close_tag:	"</connection>" inside a connection block, NULL at the top level
 *
 * Return: 0 or -EINVAL
 */
static int ovc_lines(struct ovc_ctx *c, const char *close_tag)
{
	struct ovc_line *l = malloc(sizeof(*l));
	unsigned int open_line = c->line_no;
	const char *line;
	size_t n;
	int ret;

	if (!l)
		return ovc_fail(c, "out of memory");
	while ((ret = ovc_next_line(c, &line, &n)) > 0) {
		size_t tl;

		ret = ovc_too_long(c, n);
		if (ret < 0)
			break;
		if (close_tag) {
			const char *t = line;
			size_t m = n;

			while (m && isspace((unsigned char)*t)) {
				t++;
				m--;
			}
			if (m >= strlen(close_tag) && !memcmp(t, close_tag, strlen(close_tag))) {
				ret = 1;
				break;
			}
		}
		ret = ovc_tokenize(c, line, n, l);
		if (ret < 0)
			break;
		if (l->n == 0)
			continue;
		tl = strlen(l->tok[0]);
		if (l->n == 1 && tl >= 2 && l->tok[0][0] == '<' && l->tok[0][tl - 1] == '>') {
			l->tok[0][tl - 1] = '\0';
			ret = ovc_inline(c, l->tok[0] + 1, close_tag != NULL);
		} else {
			ret = ovc_directive(c, l->tok, l->n, close_tag != NULL);
		}
		if (ret < 0)
			break;
	}
	free(l);
	if (ret < 0)
		return ret;
	if (close_tag && ret == 0) {
		c->line_no = open_line;
		return ovc_fail(c, "<connection> is not closed by </connection>");
	}
	return 0;
}

/**
 * ovpn_check_profile() - may this profile be imported and run
 * @text:	the profile (not NUL-terminated; NUL bytes are refused)
 * @len:	its length
 * @err:	receives the reason on refusal ("line 12: 'up' is not allowed ...")
 * @errlen:	its size
 *
 * Return: 0 when every line passes the allow-list, -EINVAL otherwise
 */
int ovpn_check_profile(const char *text, size_t len, char *err, size_t errlen)
{
	struct ovc_ctx c = { .text = text, .len = len, .err = err, .errlen = errlen };

	if (errlen)
		err[0] = '\0';
	return ovc_lines(&c, NULL);
}
