/* SPDX-License-Identifier: MIT */
/*
 * runtime.c - the backend-neutral VM object: configuration, state machine, console, vsock.
 *
 * Theory of operation
 * -------------------
 * A &struct mvm_vm pairs the caller's view (state, exit reason, console subscribers, vsock
 * client) with one backend from mvm_backends[] (KVM, the namespace box, ...), which does the
 * actual running.  The state only moves forward:
 *
 *	CREATED --mvm_vm_start()--> RUNNING --mvm_vm_stop()--> STOPPING --+
 *	   |                           |                                  |
 *	   +---- destroy/kill ---------+---- backend calls mvm_vm_exited() +--> STOPPED
 *
 * The backend reports the end of its guest exactly once with mvm_vm_exited() from any thread;
 * mvm_vm_wait() sleeps on a condition variable for it.  A stop or kill requested by the caller
 * turns the reported reason into MVM_EXIT_KILLED unless the guest got there on its own first.
 *
 * Backends: mvm_backends[] lists them in order of preference for MVM_BACKEND_AUTO, which takes
 * the first whose usable() says yes.  Adding a backend is one line in that table.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/abi.h"
#include "runtime/backend.h"
#include "runtime/console.h"
#include "runtime/error.h"

/* KVM: Linux on x86-64 and arm64 (the condition of have_kvm in meson.build). */
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#define MVM_HAVE_KVM 1
extern const struct mvm_backend_ops mvm_kvm_backend;
#endif
#ifdef __linux__
extern const struct mvm_backend_ops mvm_nsbox_backend;
#endif
#ifdef _WIN32
extern const struct mvm_backend_ops mvm_wsl_backend;
#endif

/* Preference order for MVM_BACKEND_AUTO.  A new backend: declare it above, add one line. */
static const struct mvm_backend_ops *const mvm_backends[] = {
#ifdef MVM_HAVE_KVM
	&mvm_kvm_backend,
#endif
#ifdef __linux__
	&mvm_nsbox_backend,
#endif
#ifdef _WIN32
	&mvm_wsl_backend,	/* AUTO on Windows: WSL2 */
#endif
	NULL,
};

struct mvm_vm {
	const struct mvm_backend_ops *ops;
	void *priv;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	enum mvm_state state;
	enum mvm_exit_reason reason;
	bool kill_requested;
	char detail[256];
	struct console *console;
	mvm_vsock *vsock;
	bool vsock_fetched;
};

/*
 * struct mvm_config as callers may pass it (docs/library.md, "ABI rules"): fields are only
 * appended, each new one at or after the previous size.  64-bit sizes by version:
 * 0.2: 96.  A new field: append it, check its offset against the last size here, record
 * the new size.
 */
_Static_assert(sizeof(void *) != 8 || sizeof(struct mvm_config) == 96,
	       "struct mvm_config changed: append fields only, record the new size above");

/**
 * mvm_config_defaults() - the library's defaults of every field
 * @cfg:	config to fill (the library's full struct)
 */
static void mvm_config_defaults(struct mvm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->backend = MVM_BACKEND_AUTO;
	cfg->mem_mib = 256;
	cfg->cpus = 1;
	cfg->guest_cid = 3;
}

/**
 * mvm_config_init_sized() - defaults: auto backend, 256 MiB, 1 vCPU, CID 3, no net
 * @cfg:	config to fill, as the caller's headers define it
 * @size:	sizeof(*@cfg) in the caller's build (the mvm_config_init() macro passes it)
 */
void mvm_config_init_sized(struct mvm_config *cfg, size_t size)
{
	struct mvm_config d;

	mvm_config_defaults(&d);
	mvm_abi_init(cfg, size, &d, sizeof(d));
}

/**
 * mvm_exit_reason_name() - short name of an exit reason
 * Return: "poweroff", "reboot", "panic", "error", "killed" or "none".
 */
const char *mvm_exit_reason_name(enum mvm_exit_reason reason)
{
	switch (reason) {
	case MVM_EXIT_POWEROFF:	return "poweroff";
	case MVM_EXIT_REBOOT:	return "reboot";
	case MVM_EXIT_PANIC:	return "panic";
	case MVM_EXIT_ERROR:	return "error";
	case MVM_EXIT_KILLED:	return "killed";
	case MVM_EXIT_NONE:
	default:		return "none";
	}
}

/**
 * mvm_backend_kind_name() - what users call a backend kind
 */
static const char *mvm_backend_kind_name(enum mvm_backend_kind kind)
{
	switch (kind) {
	case MVM_BACKEND_KVM:	return "KVM";
	case MVM_BACKEND_NSBOX:	return "nsbox";
	case MVM_BACKEND_WSL:	return "WSL2";
	case MVM_BACKEND_HVF:	return "HVF";
	case MVM_BACKEND_AUTO:
	default:		return "auto";
	}
}

/**
 * mvm_backend_pick() - the backend for a config
 * @kind:	requested kind
 * @quiet:	no notice on stderr when AUTO falls back from the first backend
 * Return: the ops, or NULL with mvm_last_error() set.
 */
static const struct mvm_backend_ops *mvm_backend_pick(enum mvm_backend_kind kind, bool quiet)
{
	char why[256] = "", first_why[256] = "";
	size_t i;

	for (i = 0; mvm_backends[i]; i++) {
		const struct mvm_backend_ops *b = mvm_backends[i];

		if (kind != MVM_BACKEND_AUTO) {
			if (b->kind == kind)
				return b;
			continue;
		}
		if (!b->usable || b->usable(why, sizeof(why))) {
			/* A fallback is worth one line: the user may expect a VM. */
			if (first_why[0] && !quiet)
				fprintf(stderr, "microvm: %s; using the %s backend\n", first_why,
					b->name);
			return b;
		}
		if (!first_why[0])
			snprintf(first_why, sizeof(first_why), "%s: %s", b->name, why);
	}
	if (kind != MVM_BACKEND_AUTO) {
		mvm_set_error(-ENOTSUP, "the %s backend is not available in this build",
			      mvm_backend_kind_name(kind));
		return NULL;
	}
	mvm_set_error(-ENOTSUP, "no usable backend (%s)", first_why[0] ? first_why : "none built");
	return NULL;
}

/**
 * mvm_backend_default() - the backend MVM_BACKEND_AUTO would pick on this machine
 *
 * Return: its name ("KVM", "nsbox", "WSL2", "HVF"), or NULL with mvm_last_error() set
 * when no backend can run here.
 */
const char *mvm_backend_default(void)
{
	const struct mvm_backend_ops *b = mvm_backend_pick(MVM_BACKEND_AUTO, true);

	return b ? b->name : NULL;
}

/**
 * mvm_vm_new_ops() - create a VM on a given backend (the runtime's tests use a fake one)
 * @ops:	the backend
 * @cfg:	config from mvm_config_init(), of the caller's size (docs/library.md, "ABI rules")
 * Return: the VM, or NULL with mvm_last_error() set.
 */
mvm_vm *mvm_vm_new_ops(const struct mvm_backend_ops *ops, const struct mvm_config *cfg)
{
	struct mvm_config c;
	mvm_vm *vm;
	int ret;

	/* the caller's fields over the defaults: an older caller's struct is shorter */
	mvm_config_defaults(&c);
	if (mvm_abi_copy_in(&c, sizeof(c), cfg, "mvm_config"))
		return NULL;
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		mvm_set_error(-ENOMEM, "out of memory");
		return NULL;
	}
	vm->ops = ops;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->changed, NULL);
	vm->console = console_new();
	if (!vm->console) {
		mvm_set_error(-ENOMEM, "out of memory");
		goto err_free;
	}
	ret = ops->create(vm, &c, &vm->priv);
	if (ret < 0)
		goto err_console;
	return vm;

err_console:
	console_free(vm->console);
err_free:
	pthread_cond_destroy(&vm->changed);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
	return NULL;
}

/**
 * mvm_vm_new() - check the config and prepare a VM (nothing runs yet)
 * @cfg:	config from mvm_config_init() (copied as needed by the backend)
 * Return: the VM, or NULL with mvm_last_error() set.
 */
mvm_vm *mvm_vm_new(const struct mvm_config *cfg)
{
	const struct mvm_backend_ops *ops;
	struct mvm_config c;

	mvm_config_defaults(&c);
	if (mvm_abi_copy_in(&c, sizeof(c), cfg, "mvm_config"))
		return NULL;
	ops = mvm_backend_pick(c.backend, c.quiet);
	if (!ops)
		return NULL;
	return mvm_vm_new_ops(ops, &c);
}

/**
 * mvm_vm_start() - start the guest
 * Return: 0, -EBUSY if not in the CREATED state, or the backend's -errno.
 */
int mvm_vm_start(mvm_vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != MVM_STATE_CREATED) {
		pthread_mutex_unlock(&vm->lock);
		return mvm_set_error(-EBUSY, "the VM was already started");
	}
	vm->state = MVM_STATE_RUNNING;
	pthread_mutex_unlock(&vm->lock);

	ret = vm->ops->start(vm->priv);
	if (ret < 0) {
		pthread_mutex_lock(&vm->lock);
		if (vm->state != MVM_STATE_STOPPED) {
			vm->state = MVM_STATE_STOPPED;
			vm->reason = MVM_EXIT_ERROR;
			snprintf(vm->detail, sizeof(vm->detail), "%s", mvm_last_error());
			pthread_cond_broadcast(&vm->changed);
		}
		pthread_mutex_unlock(&vm->lock);
	}
	return ret;
}

/**
 * mvm_vm_exited() - a backend reports that its guest has stopped; first report wins
 * @vm:		the VM
 * @reason:	why
 * @detail:	one line for the user, or NULL
 */
void mvm_vm_exited(mvm_vm *vm, enum mvm_exit_reason reason, const char *detail)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->state != MVM_STATE_STOPPED) {
		vm->state = MVM_STATE_STOPPED;
		vm->reason = vm->kill_requested ? MVM_EXIT_KILLED : reason;
		snprintf(vm->detail, sizeof(vm->detail), "%s", detail ? detail : "");
		pthread_cond_broadcast(&vm->changed);
	}
	pthread_mutex_unlock(&vm->lock);
}

/**
 * mvm_vm_wait_locked() - wait for STOPPED with vm->lock held
 * @timeout_ms:	negative waits forever
 * Return: 0 when stopped, -ETIMEDOUT otherwise.
 */
static int mvm_vm_wait_locked(mvm_vm *vm, int timeout_ms)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	if (timeout_ms > 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	while (vm->state != MVM_STATE_STOPPED) {
		if (timeout_ms < 0)
			pthread_cond_wait(&vm->changed, &vm->lock);
		else if (pthread_cond_timedwait(&vm->changed, &vm->lock, &dl))
			return vm->state == MVM_STATE_STOPPED ? 0 : -ETIMEDOUT;
	}
	return 0;
}

/**
 * mvm_vm_kill() - stop the guest now; the exit reason becomes "killed"
 * Return: 0 or -errno.
 */
int mvm_vm_kill(mvm_vm *vm)
{
	enum mvm_state st;

	pthread_mutex_lock(&vm->lock);
	st = vm->state;
	if (st == MVM_STATE_CREATED) {
		vm->state = MVM_STATE_STOPPED;
		vm->reason = MVM_EXIT_KILLED;
		pthread_cond_broadcast(&vm->changed);
	} else if (st != MVM_STATE_STOPPED) {
		vm->kill_requested = true;
	}
	pthread_mutex_unlock(&vm->lock);
	if (st == MVM_STATE_RUNNING || st == MVM_STATE_STOPPING)
		return vm->ops->kill(vm->priv);
	return 0;
}

/**
 * mvm_vm_stop() - ask the guest to stop; kill it if it has not after @timeout_ms
 * Return: 0 once stopped, or -errno.
 */
int mvm_vm_stop(mvm_vm *vm, int timeout_ms)
{
	int ret = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != MVM_STATE_RUNNING) {
		pthread_mutex_unlock(&vm->lock);
		if (vm->state == MVM_STATE_CREATED)
			return mvm_vm_kill(vm);
		return mvm_vm_wait(vm, -1, NULL);
	}
	vm->state = MVM_STATE_STOPPING;
	pthread_mutex_unlock(&vm->lock);

	if (vm->ops->request_stop)
		ret = vm->ops->request_stop(vm->priv);
	if (vm->ops->request_stop && ret == 0) {
		pthread_mutex_lock(&vm->lock);
		ret = mvm_vm_wait_locked(vm, timeout_ms < 0 ? 0 : timeout_ms);
		pthread_mutex_unlock(&vm->lock);
		if (ret == 0)
			return 0;
	}
	ret = mvm_vm_kill(vm);
	if (ret < 0)
		return ret;
	return mvm_vm_wait(vm, -1, NULL);
}

/**
 * mvm_vm_wait() - wait until the guest has stopped
 * @timeout_ms:	negative waits forever, 0 polls
 * @reason:	the exit reason (may be NULL)
 * Return: 0 when stopped, -ETIMEDOUT otherwise.
 */
int mvm_vm_wait(mvm_vm *vm, int timeout_ms, enum mvm_exit_reason *reason)
{
	int ret;

	pthread_mutex_lock(&vm->lock);
	ret = mvm_vm_wait_locked(vm, timeout_ms);
	if (reason)
		*reason = ret ? MVM_EXIT_NONE : vm->reason;
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

/** mvm_vm_state() - current lifecycle state */
enum mvm_state mvm_vm_state(mvm_vm *vm)
{
	enum mvm_state st;

	pthread_mutex_lock(&vm->lock);
	st = vm->state;
	pthread_mutex_unlock(&vm->lock);
	return st;
}

/**
 * mvm_vm_exit_detail() - the backend's one-line explanation of the exit ("" if none)
 * Return: a string valid until mvm_vm_free().
 */
const char *mvm_vm_exit_detail(mvm_vm *vm)
{
	return vm->detail;
}

/**
 * mvm_vm_stats() - the backend's device statistics as text (see runtime.h)
 * Return: length written, or -ENOTSUP / -EINVAL.
 */
int mvm_vm_stats(mvm_vm *vm, char *buf, size_t len)
{
	int n;

	if (!buf || !len)
		return -EINVAL;
	buf[0] = '\0';
	if (!vm->ops->stats)
		return -ENOTSUP;
	n = vm->ops->stats(vm->priv, buf, len);
	if (n < 0)
		return n;
	return (size_t)n >= len ? (int)len - 1 : n;
}

/** mvm_vm_hypervisor() - "KVM", "nsbox", "WSL2", "HVF" */
const char *mvm_vm_hypervisor(mvm_vm *vm)
{
	return vm->ops->name;
}

/**
 * mvm_vm_vsock() - the VM's vsock client (owned by the VM)
 * Return: the client, or NULL when the backend has no vsock.
 */
mvm_vsock *mvm_vm_vsock(mvm_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm->vsock_fetched) {
		vm->vsock_fetched = true;
		vm->vsock = vm->ops->vsock ? vm->ops->vsock(vm->priv) : NULL;
	}
	pthread_mutex_unlock(&vm->lock);
	return vm->vsock;
}

/**
 * mvm_vm_free() - kill if needed, then free everything
 */
void mvm_vm_free(mvm_vm *vm)
{
	if (!vm)
		return;
	if (mvm_vm_state(vm) != MVM_STATE_STOPPED) {
		mvm_vm_kill(vm);
		mvm_vm_wait(vm, -1, NULL);
	}
	vm->ops->destroy(vm->priv);
	console_free(vm->console);
	pthread_cond_destroy(&vm->changed);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

/* Console: thin wrappers over console.c. */

void mvm_vm_console_output(mvm_vm *vm, const void *data, size_t len)
{
	console_output(vm->console, data, len);
}

int mvm_console_subscribe(mvm_vm *vm, mvm_console_cb cb, void *opaque)
{
	return console_subscribe(vm->console, cb, opaque);
}

int mvm_console_subscribe_fd(mvm_vm *vm, int fd)
{
	return console_subscribe_fd(vm->console, fd);
}

void mvm_console_unsubscribe(mvm_vm *vm, int id)
{
	console_unsubscribe(vm->console, id);
}

/**
 * mvm_console_drain() - wait until subscribers have received all output so far
 * Return: 0 or -ETIMEDOUT.
 */
int mvm_console_drain(mvm_vm *vm, int timeout_ms)
{
	return console_drain(vm->console, timeout_ms);
}

/**
 * mvm_console_read() - copy out what the console holds now (see runtime.h)
 * Return: bytes copied, or -EINVAL.
 */
long mvm_console_read(mvm_vm *vm, void *buf, size_t size, uint64_t *total)
{
	if (!vm || (!buf && size))
		return mvm_set_error(-EINVAL, "mvm_console_read: no VM or no buffer");
	return (long)console_read(vm->console, buf, size, total);
}

long mvm_console_write(mvm_vm *vm, const void *data, size_t len)
{
	if (!vm->ops->console_write)
		return mvm_set_error(-ENOTSUP, "this backend has no console input");
	return vm->ops->console_write(vm->priv, data, len);
}
