/* SPDX-License-Identifier: MIT */
/*
 * control.h - the control socket between `microvm up` and the other commands.
 *
 * Protocol: a Unix stream socket (mode 0600 in a 0700 directory); the client writes one JSON
 * object per line, {"cmd": NAME, ...}, and reads one JSON object per line back:
 * {"ok": true, ...} or {"ok": false, "error": TEXT}.  Commands: status, vpn_import (name,
 * content), vpn_connect (name, username?, password?), vpn_status, vpn_check_webauth,
 * vpn_profiles, vpn_disconnect, down, console (after the answer, raw console bytes follow,
 * and what the client sends is typed into the guest, until either side closes).
 */
#ifndef MVM_CLI_CONTROL_H
#define MVM_CLI_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "microvm/contract.h"

#define CTL_LINE_MAX	MVM_LINE_MAX	/* a 1 MiB profile fits, even escaped 6x */

int ctl_default_path(char *out, size_t cap);
int ctl_path(const char *opt, char *out, size_t cap);
int ctl_connect(const char *path);
int ctl_send(int fd, const cJSON *msg);
int ctl_recv(int fd, cJSON **msg);
cJSON *ctl_call(const char *path, cJSON *req);
int ctl_read_password(bool from_stdin, const char *prompt, char *buf, size_t cap);
int ctl_read_file(const char *path, char **out);
void ctl_print_error(const char *cmd, const cJSON *resp);
const char *ctl_next_step(const char *error);
void ctl_print_failure(const char *cmd, const char *error);
void ctl_print_json_failure(const cJSON *resp);

#endif
