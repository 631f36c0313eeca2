/* SPDX-License-Identifier: MIT */
/* wsl_cmd.h - pure helpers of the WSL2 backend (portable, unit-tested on Linux too). */
#ifndef MVM_WSL_CMD_H
#define MVM_WSL_CMD_H

#include <stddef.h>

/** WSL_DISTRO - the name the WSL2 backend imports the guest rootfs under. */
#define WSL_DISTRO "microvm"

int wsl_quote_arg(char *out, size_t size, const char *arg);
int wsl_cmdline(char *out, size_t size, const char *const *argv);
int wsl_list_has(const void *data, size_t len, const char *name);

#endif
