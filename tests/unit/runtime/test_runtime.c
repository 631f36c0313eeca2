/* SPDX-License-Identifier: MIT */
/*
 * test_runtime.c - the runtime's state machine and console plumbing over a fake backend.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/backend.h"
#include "runtime/error.h"

/* The fake: a guest that runs until told, or exits by itself after start if @self_exit. */
struct fake {
	mvm_vm *vm;
	int started, killed, stop_requested, destroyed_flag;
	int honour_stop;	/* request_stop makes the guest power off */
	int fail_start;
	char typed[64];
	size_t typed_len;
};

static struct fake *last_fake;
static struct mvm_config last_cfg;	/* what the backend was given */
static int destroyed;

static int fake_create(mvm_vm *vm, const struct mvm_config *cfg, void **priv)
{
	struct fake *f;

	last_cfg = *cfg;
	if (cfg->mem_mib == 0)
		return mvm_set_error(-EINVAL, "fake: no memory");
	f = calloc(1, sizeof(*f));
	f->vm = vm;
	f->honour_stop = cfg->cpus == 2;	/* the tests pick behaviours through the config */
	f->fail_start = cfg->cpus == 3;
	last_fake = f;
	*priv = f;
	return 0;
}

static int fake_start(void *priv)
{
	struct fake *f = priv;

	if (f->fail_start)
		return mvm_set_error(-EIO, "fake: cannot start");
	f->started = 1;
	mvm_vm_console_output(f->vm, "booted\n", 7);
	return 0;
}

static int fake_request_stop(void *priv)
{
	struct fake *f = priv;

	f->stop_requested = 1;
	if (f->honour_stop)
		mvm_vm_exited(f->vm, MVM_EXIT_POWEROFF, "bye");
	return 0;
}

static int fake_kill(void *priv)
{
	struct fake *f = priv;

	f->killed = 1;
	mvm_vm_exited(f->vm, MVM_EXIT_ERROR, "would be overridden by killed");
	return 0;
}

static long fake_console_write(void *priv, const void *data, size_t len)
{
	struct fake *f = priv;

	if (len > sizeof(f->typed) - f->typed_len)
		len = sizeof(f->typed) - f->typed_len;
	memcpy(f->typed + f->typed_len, data, len);
	f->typed_len += len;
	return (long)len;
}

static void fake_destroy(void *priv)
{
	destroyed++;
	free(priv);
}

static const struct mvm_backend_ops fake_ops = {
	.name = "fake",
	.kind = MVM_BACKEND_HVF,
	.create = fake_create,
	.start = fake_start,
	.request_stop = fake_request_stop,
	.kill = fake_kill,
	.console_write = fake_console_write,
	.destroy = fake_destroy,
};

static mvm_vm *make(uint32_t cpus)
{
	struct mvm_config cfg;

	mvm_config_init(&cfg);
	cfg.cpus = cpus;
	return mvm_vm_new_ops(&fake_ops, &cfg);
}

static void test_config_defaults(void **state)
{
	struct mvm_config cfg;

	(void)state;
	memset(&cfg, 0x5a, sizeof(cfg));
	mvm_config_init(&cfg);
	assert_int_equal(cfg.backend, MVM_BACKEND_AUTO);
	assert_int_equal(cfg.mem_mib, 256);
	assert_int_equal(cfg.cpus, 1);
	assert_int_equal(cfg.guest_cid, 3);
	assert_false(cfg.net);
	assert_null(cfg.kernel_path);
}

/*
 * A caller built against older headers, whose struct mvm_config ended before cpus: it
 * passes that smaller size; the fields it does not know get the library's defaults, never
 * what lies in its memory past its struct (0x5a here).
 */
static void test_config_from_older_headers(void **state)
{
	const size_t old = offsetof(struct mvm_config, cpus);
	struct mvm_config cfg;
	unsigned char *tail = (unsigned char *)&cfg + old;
	mvm_vm *vm;

	(void)state;
	memset(&cfg, 0x5a, sizeof(cfg));
	mvm_config_init_sized(&cfg, old);
	assert_int_equal(cfg.size, old);
	assert_int_equal(cfg.mem_mib, 256);
	for (size_t i = 0; i < sizeof(cfg) - old; i++)
		assert_int_equal(tail[i], 0x5a);	/* init wrote only the caller's bytes */
	cfg.mem_mib = 512;
	vm = mvm_vm_new_ops(&fake_ops, &cfg);
	assert_non_null(vm);
	assert_int_equal(last_cfg.size, sizeof(struct mvm_config));
	assert_int_equal(last_cfg.mem_mib, 512);
	assert_int_equal(last_cfg.cpus, 1);
	assert_int_equal(last_cfg.guest_cid, 3);
	assert_false(last_cfg.net);
	assert_false(last_cfg.quiet);
	assert_null(last_cfg.vsock_uds_path);
	assert_null(last_cfg.box_argv);
	mvm_vm_free(vm);
}

/* A caller built against newer headers than this library: refused, with the reason. */
static void test_config_from_newer_headers(void **state)
{
	struct {
		struct mvm_config cfg;
		uint64_t newer_field;
	} big;

	(void)state;
	memset(&big, 0x5a, sizeof(big));
	mvm_config_init_sized(&big.cfg, sizeof(big));
	assert_int_equal(big.cfg.size, sizeof(big));
	assert_int_equal(big.cfg.mem_mib, 256);
	assert_int_equal(big.newer_field, 0);	/* zeroed: the library does not know it */
	assert_null(mvm_vm_new_ops(&fake_ops, &big.cfg));
	assert_non_null(strstr(mvm_last_error(), "struct mvm_config of"));
	assert_non_null(strstr(mvm_last_error(), "newer headers than this libmicrovm"));
	assert_null(mvm_vm_new(&big.cfg));
	assert_non_null(strstr(mvm_last_error(), "newer headers"));
}

/* A struct nobody initialised (size 0) is refused rather than read. */
static void test_config_not_initialised(void **state)
{
	struct mvm_config cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.mem_mib = 256;
	assert_null(mvm_vm_new_ops(&fake_ops, &cfg));
	assert_string_equal(mvm_last_error(),
			    "struct mvm_config has size 0: fill it with mvm_config_init() first");
	assert_null(mvm_vm_new(&cfg));
	assert_non_null(strstr(mvm_last_error(), "mvm_config_init() first"));
}

static void test_reason_names(void **state)
{
	(void)state;
	assert_string_equal(mvm_exit_reason_name(MVM_EXIT_POWEROFF), "poweroff");
	assert_string_equal(mvm_exit_reason_name(MVM_EXIT_REBOOT), "reboot");
	assert_string_equal(mvm_exit_reason_name(MVM_EXIT_PANIC), "panic");
	assert_string_equal(mvm_exit_reason_name(MVM_EXIT_ERROR), "error");
	assert_string_equal(mvm_exit_reason_name(MVM_EXIT_KILLED), "killed");
	assert_string_equal(mvm_exit_reason_name(MVM_EXIT_NONE), "none");
	assert_string_equal(mvm_exit_reason_name((enum mvm_exit_reason)99), "none");
}

static void test_create_error_passes_message(void **state)
{
	struct mvm_config cfg;

	(void)state;
	mvm_config_init(&cfg);
	cfg.mem_mib = 0;
	assert_null(mvm_vm_new_ops(&fake_ops, &cfg));
	assert_string_equal(mvm_last_error(), "fake: no memory");
	assert_null(mvm_vm_new(NULL));
}

static void test_lifecycle_guest_exits(void **state)
{
	enum mvm_exit_reason r = MVM_EXIT_ERROR;
	mvm_vm *vm = make(1);

	(void)state;
	assert_non_null(vm);
	assert_int_equal(mvm_vm_state(vm), MVM_STATE_CREATED);
	assert_string_equal(mvm_vm_hypervisor(vm), "fake");
	assert_int_equal(mvm_vm_wait(vm, 0, &r), -ETIMEDOUT);
	assert_int_equal(r, MVM_EXIT_NONE);
	assert_int_equal(mvm_vm_start(vm), 0);
	assert_int_equal(mvm_vm_state(vm), MVM_STATE_RUNNING);
	assert_int_equal(mvm_vm_start(vm), -EBUSY);
	assert_int_equal(mvm_vm_wait(vm, 20, &r), -ETIMEDOUT);
	mvm_vm_exited(vm, MVM_EXIT_REBOOT, "triple fault");
	mvm_vm_exited(vm, MVM_EXIT_PANIC, "second report is ignored");
	assert_int_equal(mvm_vm_wait(vm, -1, &r), 0);
	assert_int_equal(r, MVM_EXIT_REBOOT);
	assert_string_equal(mvm_vm_exit_detail(vm), "triple fault");
	assert_int_equal(mvm_vm_state(vm), MVM_STATE_STOPPED);
	destroyed = 0;
	mvm_vm_free(vm);
	assert_int_equal(destroyed, 1);
}

static void test_stop_graceful(void **state)
{
	enum mvm_exit_reason r;
	mvm_vm *vm = make(2);	/* honours request_stop */
	struct fake *f = last_fake;

	(void)state;
	assert_int_equal(mvm_vm_start(vm), 0);
	assert_int_equal(mvm_vm_stop(vm, 1000), 0);
	assert_true(f->stop_requested);
	assert_false(f->killed);
	assert_int_equal(mvm_vm_wait(vm, 0, &r), 0);
	assert_int_equal(r, MVM_EXIT_POWEROFF);
	mvm_vm_free(vm);
}

static void test_stop_times_out_then_kills(void **state)
{
	enum mvm_exit_reason r;
	mvm_vm *vm = make(1);	/* ignores request_stop */
	struct fake *f = last_fake;

	(void)state;
	assert_int_equal(mvm_vm_start(vm), 0);
	assert_int_equal(mvm_vm_stop(vm, 50), 0);
	assert_true(f->stop_requested);
	assert_true(f->killed);
	assert_int_equal(mvm_vm_wait(vm, 0, &r), 0);
	assert_int_equal(r, MVM_EXIT_KILLED);
	mvm_vm_free(vm);
}

static void test_kill_and_destroy_unstarted(void **state)
{
	enum mvm_exit_reason r;
	mvm_vm *vm = make(1);
	struct fake *f = last_fake;

	(void)state;
	assert_int_equal(mvm_vm_kill(vm), 0);
	assert_false(f->killed);		/* nothing ran: the backend is not asked */
	assert_int_equal(mvm_vm_wait(vm, 0, &r), 0);
	assert_int_equal(r, MVM_EXIT_KILLED);
	assert_int_equal(mvm_vm_start(vm), -EBUSY);
	mvm_vm_free(vm);

	vm = make(1);
	assert_int_equal(mvm_vm_start(vm), 0);
	f = last_fake;
	mvm_vm_free(vm);			/* destroy of a running VM kills it first */
	mvm_vm_free(NULL);
}

static void test_start_failure_is_error(void **state)
{
	enum mvm_exit_reason r;
	mvm_vm *vm = make(3);

	(void)state;
	assert_int_equal(mvm_vm_start(vm), -EIO);
	assert_int_equal(mvm_vm_wait(vm, 0, &r), 0);
	assert_int_equal(r, MVM_EXIT_ERROR);
	assert_string_equal(mvm_vm_exit_detail(vm), "fake: cannot start");
	mvm_vm_free(vm);
}

static void cb(void *opaque, const uint8_t *data, size_t len, uint64_t lost)
{
	char *out = opaque;

	(void)lost;
	strncat(out, (const char *)data, len);
}

static void test_console_through_vm(void **state)
{
	static char got[64];
	static char snap[MVM_CONSOLE_KEPT];
	uint64_t total;
	mvm_vm *vm = make(1);
	struct fake *f = last_fake;

	(void)state;
	assert_int_equal(mvm_vm_start(vm), 0);	/* prints "booted\n" */
	assert_true(mvm_console_subscribe(vm, cb, got) >= 0);
	assert_int_equal(mvm_console_drain(vm, 5000), 0);
	assert_string_equal(got, "booted\n");
	/* the snapshot call: what is there now, no subscription */
	memset(snap, 0, sizeof(snap));
	assert_int_equal(mvm_console_read(vm, snap, sizeof(snap), &total), 7);
	assert_memory_equal(snap, "booted\n", 7);
	assert_int_equal(total, 7);
	assert_int_equal(mvm_console_read(vm, NULL, 1, NULL), -EINVAL);
	assert_int_equal(mvm_console_write(vm, "ls\n", 3), 3);
	assert_int_equal(f->typed_len, 3);
	assert_null(mvm_vm_vsock(vm));		/* the fake has no vsock */
	mvm_vm_free(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_create_error_passes_message),
		cmocka_unit_test(test_lifecycle_guest_exits),
		cmocka_unit_test(test_stop_graceful),
		cmocka_unit_test(test_stop_times_out_then_kills),
		cmocka_unit_test(test_config_from_older_headers),
		cmocka_unit_test(test_config_from_newer_headers),
		cmocka_unit_test(test_config_not_initialised),
		cmocka_unit_test(test_kill_and_destroy_unstarted),
		cmocka_unit_test(test_start_failure_is_error),
		cmocka_unit_test(test_console_through_vm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
