/* SPDX-License-Identifier: MIT */
/*
 * agent_testlib.h - helpers for the unit tests of the agent's event-driven modules
 * (test_agent_vpn, test_agent_control, test_agent_proxy): an agent with its event loop in a
 * temporary state directory, and reading a peer's side of a socket while the loop runs.
 */
#ifndef AGENT_TESTLIB_H
#define AGENT_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>

#include "agent.h"

void tl_agent_init(struct agent *a);
void tl_agent_fini(struct agent *a);
void tl_pump(struct agent *a, int ms);
bool tl_wait(struct agent *a, bool (*cond)(struct agent *a), int timeout_ms);
bool tl_line(struct agent *a, int fd, char *buf, size_t size, int timeout_ms);
int tl_eof(struct agent *a, int fd, int timeout_ms);
void tl_send(int fd, const char *s);
void tl_tcp_pair(int *client, int *server);
int tl_tcp_listener(unsigned short *port);

#endif /* AGENT_TESTLIB_H */
