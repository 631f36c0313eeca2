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
size_t wsl_text(const void *data, size_t len, char *out, size_t size);
int wsl_linux_path(char *out, size_t size, const char *win);

/** enum wsl_fault - why WSL cannot run the appliance (wsl_classify()) */
enum wsl_fault {
	WSL_FAULT_NONE = 0,	/* not one of the below */
	WSL_FAULT_ABSENT,	/* WSL is not installed */
	WSL_FAULT_DISABLED,	/* WSL 2's virtual machine platform is off */
	WSL_FAULT_WSL1,		/* only WSL 1 (old wsl.exe, or WSL 2 kernel missing) */
};

enum wsl_fault wsl_classify(const char *text);
const char *wsl_fault_advice(enum wsl_fault fault);

#endif
