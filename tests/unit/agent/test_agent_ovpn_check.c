// SPDX-License-Identifier: MIT
/* Unit tests for the imported-profile allow-list (guest/agent/ovpn_check.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent.h"

static char err[512];

/* ovpn_check_profile() on a NUL-terminated text. */
static int check(const char *text)
{
	return ovpn_check_profile(text, strlen(text), err, sizeof(err));
}

/* @text is refused with exactly @want. */
static void refused(const char *text, const char *want)
{
	if (check(text) != -EINVAL)
		fail_msg("accepted: %s", text);
	if (strcmp(err, want))
		fail_msg("for %s:\n got: %s\nwant: %s", text, err, want);
}

/* @text (@len bytes) is refused with exactly @want. */
static void refused_n(const char *text, size_t len, const char *want)
{
	if (ovpn_check_profile(text, len, err, sizeof(err)) != -EINVAL)
		fail_msg("accepted: %.*s", (int)len, text);
	if (strcmp(err, want))
		fail_msg("got: %s\nwant: %s", err, want);
}

static const char typical[] =
	"\xef\xbb\xbf# a profile as VPN providers hand them out\n"
	"client\r\n"
	"dev tun\n"
	"topology subnet\n"
	"proto udp\n"
	"remote vpn.example.com 1194\n"
	"--remote 192.0.2.1 443 tcp\n"
	"remote-random\n"
	"resolv-retry infinite\n"
	"nobind\n"
	"persist-key\n"
	"persist-tun\n"
	"remote-cert-tls server\n"
	"verify-x509-name 'vpn server' name\n"
	"cipher AES-256-GCM\n"
	"data-ciphers AES-256-GCM:CHACHA20-POLY1305\n"
	"auth SHA256\n"
	"auth-user-pass\n"
	"auth-nocache\n"
	"script-security 1\n"
	"setenv IV_GUI_VER \"microvm 1\"\n"
	"setenv opt block-outside-dns\n"
	"setenv FORWARD_COMPATIBLE 1\n"
	"static-challenge \"Enter OTP\" 1\n"
	"pull-filter ignore \"route-ipv6\"\n"
	"http-proxy proxy.example 3128 auto\n"
	"route 10.0.0.0 255.0.0.0 vpn_gateway ; trailing comment\n"
	"verb 3 # another\n"
	"   ; indented comment\n"
	"\n"
	"key-direction 1\n"
	"<ca>\n-----BEGIN CERTIFICATE-----\nup /bin/sh\n-----END CERTIFICATE-----\n</ca>\n"
	"<tls-auth>\n# 2048 bit OpenVPN static key\nabcdef\n</tls-auth>\n"
	"<tls-crypt-v2>\nxyz\n  </tls-crypt-v2>\n"
	"<connection>\nremote backup.example 1194 udp\n</connection>\n"
	"<cert>\nc\n</cert>\n<key>\nk\n</key>\n<pkcs12>\nAAAA\n</pkcs12>\n<extra-certs>\ne\n</extra-certs>\n";

static void test_typical_profile_passes(void **state)
{
	(void)state;
	if (check(typical))
		fail_msg("refused: %s", err);
	assert_string_equal(err, "");
	assert_int_equal(ovpn_check_profile("", 0, err, sizeof(err)), 0);
}

static void test_findings_refused_with_line(void **state)
{
	(void)state;
	refused("client\nscript-security 2\nup \"/bin/sh -c id\"\n",
		"line 2: 'script-security' is not allowed in an imported profile: above 1 it lets "
		"OpenVPN run programs");
	refused("client\n\n\nup \"/bin/sh -c id\"\n",
		"line 4: 'up' is not allowed in an imported profile: it runs a program");
	refused("log /etc/pwned-log\n",
		"line 1: 'log' is not allowed in an imported profile: it writes a file");
	refused("client\nwritepid /etc/passwd\n",
		"line 2: 'writepid' is not allowed in an imported profile: it writes a file");
}

static void test_each_dangerous_directive(void **state)
{
	static const char *const bad[] = {
		"script-security 3", "script-security", "script-security 1 x", "up x", "down x",
		"route-up x", "route-pre-down x", "ipchange x", "tls-verify x",
		"auth-user-pass-verify x via-file", "learn-address x", "client-connect x",
		"client-disconnect x", "plugin /x.so", "log x", "log-append x", "writepid x",
		"status x", "cd /", "chroot /", "management 127.0.0.1 7505",
		"management-client", "management-hold", "config /etc/x", "daemon", "tmp-dir /x",
		"iproute /bin/x", "askpass /root/pw", "auth-user-pass /root/creds", "secret k",
		"ca ca.crt", "cert c", "key k", "tls-auth ta.key 1", "tls-crypt t", "tls-crypt-v2 t",
		"pkcs12 p", "crl-verify c", "crl-verify d dir", "dev-node /dev/net/tun",
		"setenv LD_PRELOAD /x.so", "setenv PATH /tmp", "setenv opt up /x", "engine x",
		"providers legacy", "pkcs11-providers /x.so", "syslog", "capath /etc",
		"replay-persist f", "tls-export-cert /d", "http-proxy p 8080 /root/pw",
		"socks-proxy p 1080 /root/pw", "extra-certs f", "http-proxy-user-pass f",
		"setcon x", "memstats f", "tls-crypt-v2-verify x", "server 10.8.0.0 255.255.255.0",
		"push \"route 1.2.3.4\"", "frobnicate", "--up x", "mode server", "port-share h 1 d",
		"ifconfig-pool-persist f", "dh dh.pem", "client-config-dir d", "genkey",
	};
	char text[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "client\n%s\n", bad[i]);
		if (check(text) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		if (strncmp(err, "line 2: '", 9) || !strstr(err, "not allowed in an imported"))
			fail_msg("%s: %s", bad[i], err);
	}
	refused("ca ca.crt\n", "line 1: 'ca' is not allowed in an imported profile: it names a "
		"file; put the content inline as <ca>...</ca>");
	refused("setenv LD_PRELOAD /x\n", "line 1: 'setenv LD_PRELOAD' is not allowed in an "
		"imported profile: only IV_*, UV_* and FORWARD_COMPATIBLE may be set");
	refused("x\n", "line 1: 'x' is not allowed in an imported profile: not a known client "
		"directive");
}

static void test_inline_blocks(void **state)
{
	(void)state;
	refused("client\n<up>\n/bin/sh\n</up>\n", "line 2: <up> is not allowed in an imported "
		"profile: only keys, certificates and <connection> blocks may be inline");
	refused("<dh>\nx\n</dh>\n", "line 1: <dh> is not allowed in an imported profile: only "
		"keys, certificates and <connection> blocks may be inline");
	refused("client\n<ca>\nx\n", "line 2: <ca> is not closed by </ca>");
	/* a directive after the block is checked again */
	refused("<ca>\nx\n</ca>\nup y\n",
		"line 4: 'up' is not allowed in an imported profile: it runs a program");
	/* the close tag ends the block even with text after it, as in OpenVPN */
	refused("<ca>\nx\n</ca> junk\nlog f\n",
		"line 4: 'log' is not allowed in an imported profile: it writes a file");
	/* connection blocks are checked line by line */
	refused("<connection>\nremote a\nup x\n</connection>\n",
		"line 3: 'up' is not allowed in an imported profile: it runs a program");
	refused("client\n<connection>\nremote a\n", "line 2: <connection> is not closed by "
		"</connection>");
	refused("<connection>\n<connection>\n</connection>\n</connection>\n",
		"line 2: <connection> blocks do not nest");
	/* "<ca> x" is not a block opener: a directive named "<ca>" */
	assert_int_equal(check("<ca> x\n"), -EINVAL);
	assert_int_equal(check("--<ca>\nx\n</ca>\n"), -EINVAL);
}

static void test_parsing_like_openvpn(void **state)
{
	char longline[400];

	(void)state;
	/* quoting and escapes: the directive is what OpenVPN would see */
	refused("\"up\" x\n", "line 1: 'up' is not allowed in an imported profile: it runs a "
		"program");
	refused("'log' x\n", "line 1: 'log' is not allowed in an imported profile: it writes a "
		"file");
	refused("u\\p x\n", "line 1: bad backslash ('\\') usage");
	refused("remote \"a b\n", "line 1: no closing quotation (\")");
	refused("remote 'a b\n", "line 1: no closing single quotation (')");
	assert_int_equal(check("remote \"a\\\"b\\\\c\\ d\" 1194\n"), 0);
	assert_int_equal(check("remote a\\ b 1194\n"), 0);
	assert_int_equal(check("remote 'a\\b' 1194\n"), 0);	/* literal in single quotes */
	/* comments only where a word starts */
	assert_int_equal(check("# up x\n; up x\n  #up\nremote a#b 1\n"), 0);
	refused("remote a #\nup x\n", "line 2: 'up' is not allowed in an imported profile: "
		"it runs a program");
	/* CR LF and a missing final newline */
	refused("client\r\nup x\r\n", "line 2: 'up' is not allowed in an imported profile: it "
		"runs a program");
	refused("client\nup x", "line 2: 'up' is not allowed in an imported profile: it runs a "
		"program");
	/* OpenVPN would read a long line as two lines: refused */
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "setenv IV_X ", 12);
	memcpy(longline + 255, "\nup x\n", 7);
	refused(longline, "line 1: longer than 254 characters (OpenVPN would split it)");
	/* inside an inline block a long line is fine (one-line base64), unless a piece of it
	 * could close the block */
	{
		char blk[700];

		memset(blk, 'A', sizeof(blk));
		memcpy(blk, "<pkcs12>\n", 9);
		memcpy(blk + 600, "\n</pkcs12>\nclient\n", 18);
		assert_int_equal(ovpn_check_profile(blk, 618, err, sizeof(err)), 0);
		memcpy(blk + 9 + 255, "</pkcs12>", 9);
		refused_n(blk, 618, "line 2: a line longer than 254 characters inside <pkcs12> "
			  "holds a '<' (OpenVPN would split it)");
		/* the close tag line itself must be short: its rest would be new lines */
		memset(blk, ' ', sizeof(blk));
		memcpy(blk, "<ca>\nx\n</ca>", 12);
		memcpy(blk + 400, "up /bin/sh\n", 11);
		refused_n(blk, 411, "line 3: longer than 254 characters (OpenVPN would split it)");
	}
	/* NUL bytes never reach OpenVPN */
	assert_int_equal(ovpn_check_profile("client\0up x\n", 12, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1: contains a NUL byte");
	/* too many words: OpenVPN would drop the rest silently */
	refused("remote 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "line 1: more than 16 words");
	/* what the profile says is shown printable and short: errors reach logs */
	refused("\"\x1b[31mred\" x\n", "line 1: '?[31mred' is not allowed in an imported profile: "
		"not a known client directive");
	memset(longline, 'b', 100);
	longline[100] = '\n';
	longline[101] = '\0';
	refused(longline, "line 1: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb...' is not allowed "
		"in an imported profile: not a known client directive");
	/* a small error buffer is never overrun */
	assert_int_equal(ovpn_check_profile("up x", 4, err, 8), -EINVAL);
	assert_int_equal(strlen(err), 7);
	assert_int_equal(ovpn_check_profile("up x", 4, err, 0), -EINVAL);
}

static void test_table_sorted_and_known(void **state)
{
	static const char *const names[] = {
		"allow-compression", "ca", "client", "remote", "up", "writepid", "x509-track",
		"verify-hash", "setenv", "script-security", "tls-crypt-v2", "auth-user-pass",
		"topology", "echo", "bcast-buffers", "tap-sleep", "dhcp-renew", "ncp-ciphers",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!ovpn_check_known(names[i]))
			fail_msg("%s not found: ovc_rules[] out of order?", names[i]);
	assert_false(ovpn_check_known("frobnicate"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_typical_profile_passes),
		cmocka_unit_test(test_findings_refused_with_line),
		cmocka_unit_test(test_each_dangerous_directive),
		cmocka_unit_test(test_inline_blocks),
		cmocka_unit_test(test_parsing_like_openvpn),
		cmocka_unit_test(test_table_sorted_and_known),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
