/* SPDX-License-Identifier: MIT */
/*
 * win_peer.h - what the Windows test programs share (tests/windows/, run under Wine):
 *
 * - a minimal harness (no cmocka for mingw in Debian): CHECK() counts failures, and
 *   win_run_tests() prints "ok NAME" or "FAIL NAME" per case and, last,
 *   "windows: N passed, N failed" (scripts/test-windows.sh adds these up);
 * - a fake agent: a plain Winsock server on 127.0.0.1 in a thread of the test, which serves
 *   one connection as its mode says - the control port's JSON lines (echo, big, hang,
 *   silent close, with or without the agent's side of the authentication handshake) or the
 *   inbound proxy on port 7602 ([len][host][port] handshake, a status byte, then echo).
 */
#ifndef MVM_TESTS_WIN_PEER_H
#define MVM_TESTS_WIN_PEER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "microvm/error.h"
#include "runtime/compat.h"

#define SECRET	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define OTHER	"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

extern int failed_checks;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			printf("  %s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, \
			       __LINE__, #cond, mvm_last_error());                    \
			failed_checks++;                                              \
		}                                                                     \
	} while (0)

enum peer_mode {
	PEER_ECHO, PEER_SILENT_CLOSE, PEER_HANG, PEER_BIG,
	PEER_AUTH_ECHO,		/* handshake with SECRET, then PEER_ECHO */
	PEER_AUTH_OTHER,	/* handshake with OTHER (an impostor) */
	PEER_PROXY,		/* the inbound proxy: handshake, @status, then echo to EOF */
};

/**
 * struct peer - a fake agent serving one connection
 * @ls:		listening socket
 * @port:	its port
 * @mode:	what to do
 * @status:	PEER_PROXY: the status byte to answer (0: connected)
 * @thread:	the thread serving
 * @got:	the request line received (PEER_PROXY: "host:port" of the handshake)
 */
struct peer {
	SOCKET ls;
	int port;
	enum peer_mode mode;
	uint8_t status;
	pthread_t thread;
	char got[256];
};

/** peer_start() - listen on an ephemeral loopback port, serve one connection; Return: 0/-1 */
int peer_start(struct peer *p, enum peer_mode mode);
/** peer_stop() - wait for the connection to be served, close the listener */
void peer_stop(struct peer *p);
/** free_port() - a loopback port nothing listens on (bound, then closed) */
int free_port(void);
/** recv_full() - receive exactly @len bytes; Return: true if they all arrived */
bool recv_full(SOCKET c, void *buf, int len);

struct win_test {
	const char *name;
	void (*fn)(void);
};

/** win_run_tests() - run @n cases, print the summary line; Return: the exit status */
int win_run_tests(const struct win_test *tests, size_t n);

#endif
