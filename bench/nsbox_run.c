/* SPDX-License-Identifier: MIT */
/*
 * nsbox_run.c - run one program in a namespace box (libmicrovm's nsbox backend) and wait for
 * it: the benchmark's way to start boxes without the VPN appliance around them.
 *
 *   nsbox-run [--net] [--net-host-loopback] [--timeout SEC] ROOTFS PROGRAM [ARGS...]
 *
 * The box's console goes to stdout.  Exit status: 0 when the box powered off (the program
 * exited 0), 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "microvm/runtime.h"

static void run_console(void *opaque, const uint8_t *data, size_t len, uint64_t lost)
{
	(void)opaque;
	(void)lost;
	fwrite(data, 1, len, stdout);
	fflush(stdout);
}

static int run_usage(void)
{
	fprintf(stderr, "usage: nsbox-run [--net] [--net-host-loopback] [--timeout SEC] ROOTFS "
		"PROGRAM [ARGS...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	struct mvm_config cfg;
	int i = 1, timeout_s = 60;
	mvm_vm *vm;

	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_NSBOX;
	cfg.quiet = true;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--net"))
			cfg.net = true;
		else if (!strcmp(argv[i], "--net-host-loopback"))
			cfg.net = cfg.net_host_loopback = true;
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout_s = atoi(argv[++i]);
		else
			return run_usage();
	}
	if (argc - i < 2)
		return run_usage();
	cfg.rootfs_path = argv[i];
	cfg.box_argv = (const char *const *)&argv[i + 1];
	vm = mvm_vm_new(&cfg);
	if (!vm) {
		fprintf(stderr, "nsbox-run: %s\n", mvm_last_error());
		return 1;
	}
	mvm_console_subscribe(vm, run_console, NULL);
	if (mvm_vm_start(vm)) {
		fprintf(stderr, "nsbox-run: %s\n", mvm_last_error());
		mvm_vm_free(vm);
		return 1;
	}
	if (mvm_vm_wait(vm, timeout_s * 1000, &reason)) {
		fprintf(stderr, "nsbox-run: timed out after %d s\n", timeout_s);
		mvm_vm_stop(vm, 2000);
		mvm_vm_wait(vm, -1, &reason);
	}
	mvm_vm_free(vm);
	return reason == MVM_EXIT_POWEROFF ? 0 : 1;
}
