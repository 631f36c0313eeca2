/* SPDX-License-Identifier: MIT */
/*
 * control.h - the control endpoint between `microvm up` and the other commands.
 *
 * Protocol: a local stream connection; the client writes one JSON object per line,
 * {"cmd": NAME, ...}, and reads one JSON object per line back: {"ok": true, ...} or
 * {"ok": false, "error": TEXT}.  Commands: status, vpn_import (name, content), vpn_connect
 * (name, username?, password?), vpn_status, vpn_check_webauth, vpn_profiles, vpn_disconnect,
 * down, console (after the answer, raw console bytes follow, and what the client sends is
 * typed into the guest, until either side closes).
 *
 * The endpoint (served by up.c on a libuv uv_pipe):
 * - Linux: a Unix stream socket, mode 0600 in a 0700 directory;
 *   $XDG_RUNTIME_DIR/microvm/control.sock or /run/microvm/control.sock.
 * - Windows: a named pipe, \\.\pipe\microvm-USER-control, with a DACL for the current user
 *   only; each side checks that the process at the other end runs as the same user (a pipe
 *   name is machine-wide: another user could create it first).  up.log and socks.secret go
 *   to %LOCALAPPDATA%\microvm.
 * $MICROVM_CONTROL or --control overrides the endpoint.
 */
#ifndef MVM_CLI_CONTROL_H
#define MVM_CLI_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "microvm/contract.h"

#define CTL_LINE_MAX	MVM_LINE_MAX	/* a 1 MiB profile fits, even escaped 6x */

/* a connection to the endpoint: a socket on POSIX, the pipe's HANDLE on Windows */
#ifdef _WIN32
typedef void *ctl_conn;
#else
typedef int ctl_conn;
#endif

int ctl_default_path(char *out, size_t cap);
int ctl_path(const char *opt, char *out, size_t cap);
int ctl_files_dir(const char *path, char *out, size_t cap);
int ctl_connect(const char *path, ctl_conn *out);
void ctl_close(ctl_conn c);
long ctl_read(ctl_conn c, void *buf, size_t len, int timeout_ms);
int ctl_write(ctl_conn c, const void *buf, size_t len);
void ctl_interrupt(ctl_conn c);
int ctl_send(ctl_conn c, const cJSON *msg);
int ctl_recv(ctl_conn c, cJSON **msg);
void ctl_protect_process(void);
#ifdef _WIN32
int ctl_same_user(unsigned long pid);
#endif
cJSON *ctl_call(const char *path, cJSON *req);
int ctl_read_password(bool from_stdin, const char *prompt, char *buf, size_t cap);
int ctl_read_file(const char *path, char **out);
void ctl_print_error(const char *cmd, const cJSON *resp);
const char *ctl_next_step(const char *error);
void ctl_print_failure(const char *cmd, const char *error);
void ctl_print_json_failure(const cJSON *resp);

#endif
