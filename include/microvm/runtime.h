/* SPDX-License-Identifier: MIT */
/**
 * DOC: runtime
 *
 * One API for every backend: fill a &struct mvm_config, create, start, then talk to the guest
 * through its vsock client and console; stop (gracefully, forcefully after a timeout), wait
 * for the exit reason, destroy.  The backend (KVM, namespace box, WSL2, HVF) is chosen by the
 * config, or automatically; callers never branch on the platform.
 *
 * Lifecycle: CREATED --start--> RUNNING --(guest exits | stop | kill)--> STOPPED.
 *
 * Threads: every function may be called from any thread.  The backend runs the guest on
 * threads of its own (vCPUs, devices, the box's supervisor); the only callback here, the
 * console's (&mvm_console_cb), runs on the VM's console delivery thread (one event loop
 * serving every subscriber of the VM) - never on the caller's thread, never on a vCPU thread.
 * Callbacks of one VM therefore run one at a time: a callback should hand the bytes off
 * quickly, since while it blocks the VM's other subscribers wait (the guest never does).  A
 * callback may call mvm_console_unsubscribe() (for its own subscription or another) but not
 * mvm_vm_free() (which waits for that thread).
 */
#ifndef MICROVM_RUNTIME_H
#define MICROVM_RUNTIME_H

#include "microvm/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "microvm/error.h"
#include "microvm/vsock.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mvm_vm mvm_vm;

enum mvm_backend_kind {
	MVM_BACKEND_AUTO = 0,	/* KVM if it can run the guest, else the namespace box */
	MVM_BACKEND_KVM,
	MVM_BACKEND_NSBOX,
	MVM_BACKEND_WSL,
	MVM_BACKEND_HVF,
};

enum mvm_state {
	MVM_STATE_CREATED = 0,
	MVM_STATE_RUNNING,
	MVM_STATE_STOPPING,
	MVM_STATE_STOPPED,
};

enum mvm_exit_reason {
	MVM_EXIT_NONE = 0,	/* still running */
	MVM_EXIT_POWEROFF,	/* guest powered off (or the box's init exited 0) */
	MVM_EXIT_REBOOT,	/* guest asked for a reboot (i8042 reset, triple fault with reboot=t) */
	MVM_EXIT_PANIC,		/* guest kernel panicked */
	MVM_EXIT_ERROR,		/* the VMM gave up: emulation failure, bad guest state, I/O error */
	MVM_EXIT_KILLED,	/* mvm_vm_kill() or a stop that timed out */
};

/**
 * struct mvm_config - what to run
 * @size:	sizeof this struct as the caller's headers define it; set by mvm_config_init(),
 *		never by hand (docs/library.md, "ABI rules")
 * @backend:	which backend; MVM_BACKEND_AUTO picks one
 * @kernel_path: vmlinux (ELF) or bzImage, for VM backends
 * @initrd_path: initramfs, or NULL
 * @cmdline:	kernel command line; the runtime appends its own device arguments
 * @rootfs_path: root file system (directory or .tar.gz) for the namespace/WSL2 backends;
 *		NULL for the namespace backend: the image `make image` cached for this build.
 *		On Windows every path is UTF-8 (not the ANSI code page; docs/windows.md)
 * @mem_mib:	guest memory in MiB
 * @cpus:	number of vCPUs
 * @guest_cid:	vsock context id of the guest (host is 2)
 * @net:	attach user-mode networking (libslirp)
 * @vsock_uds_path: Firecracker-style Unix socket bridge for vsock, or NULL
 * @quiet:	do not print notices (such as the PVM one) to stderr
 * @box_argv:	namespace backend: the program run under the box's PID 1 and its arguments,
 *		NULL-terminated, paths inside the rootfs (NULL: the agent, TCP transport on
 *		127.0.0.1)
 * @net_host_loopback: with @net, the gateway 10.0.2.2 is the host's 127.0.0.1 (libslirp's
 *		host-loopback mapping): the guest reaches every service bound to the host's
 *		loopback.  Off by default.
 */
struct mvm_config {
	size_t size;
	enum mvm_backend_kind backend;
	const char *kernel_path;
	const char *initrd_path;
	const char *cmdline;
	const char *rootfs_path;
	uint32_t mem_mib;
	uint32_t cpus;
	uint32_t guest_cid;
	bool net;
	const char *vsock_uds_path;
	bool quiet;
	const char *const *box_argv;
	bool net_host_loopback;
};

/**
 * mvm_config_init_sized() - defaults: auto backend, 256 MiB, 1 vCPU, CID 3, no net
 * @cfg:	the config to fill
 * @size:	sizeof(*@cfg) in the caller's build; recorded in @cfg->size
 *
 * Call it through mvm_config_init(), which passes the size.  A caller built against older
 * headers passes a smaller struct and gets the defaults of the fields it knows; the library
 * gives every newer field its default in mvm_vm_new().
 */
MVM_API void mvm_config_init_sized(struct mvm_config *cfg, size_t size);

/** mvm_config_init() - fill @cfg (a struct mvm_config *) with the defaults, before any field is set. */
#define mvm_config_init(cfg) mvm_config_init_sized((cfg), sizeof(*(cfg)))

/**
 * mvm_backend_default() - the backend MVM_BACKEND_AUTO would pick on this machine
 *
 * Nothing is created; the same checks as mvm_vm_new() with MVM_BACKEND_AUTO run.
 * Return: its name ("KVM", "nsbox", "WSL2", "HVF"), a static string, or NULL with
 * mvm_last_error() set when no backend can run here.
 */
MVM_API const char *mvm_backend_default(void);

/**
 * mvm_vm_new() - check the config and prepare a VM (nothing runs yet)
 * @cfg:	filled by mvm_config_init() first, then changed field by field
 * Return: the VM, or NULL with mvm_last_error() set (missing kernel, bad sizes, no /dev/kvm,
 * a @cfg not initialised or from newer headers than this library...).
 */
MVM_API mvm_vm *mvm_vm_new(const struct mvm_config *cfg);

/**
 * mvm_vm_start() - start the guest
 * Return: 0 or -errno with mvm_last_error() set.  -EBUSY: the VM was started before, or
 * (WSL2, one appliance per Windows user) another VM of this user runs, in this process or
 * another one: the message names that program.
 */
MVM_API int mvm_vm_start(mvm_vm *vm);

/**
 * mvm_vm_stop() - ask the guest to stop; kill it if it has not after @timeout_ms
 * Return: 0 once stopped, or -errno.
 */
MVM_API int mvm_vm_stop(mvm_vm *vm, int timeout_ms);

/** mvm_vm_kill() - stop the guest now. Return: 0 or -errno. */
MVM_API int mvm_vm_kill(mvm_vm *vm);

/**
 * mvm_vm_wait() - wait until the guest has stopped
 * @timeout_ms:	negative waits forever
 * @reason:	the exit reason (may be NULL)
 * Return: 0 when stopped, -ETIMEDOUT otherwise.
 */
MVM_API int mvm_vm_wait(mvm_vm *vm, int timeout_ms, enum mvm_exit_reason *reason);

MVM_API enum mvm_state mvm_vm_state(mvm_vm *vm);

/**
 * mvm_vm_exit_detail() - one line from the backend about why the guest stopped
 * ("triple fault", "KVM internal error ..."), "" if it has nothing to add.
 * Return: a string valid until mvm_vm_free().
 */
MVM_API const char *mvm_vm_exit_detail(mvm_vm *vm);

/**
 * mvm_vm_stats() - the backend's device statistics, one "name: value" line each
 * (e.g. "virtio-rng: 4096 bytes\n"); callable while the guest runs or after it stopped
 * @vm:		the VM
 * @buf:	where the NUL-terminated text goes
 * @len:	size of @buf
 *
 * Return: the length of the text (truncated to fit @buf), or -ENOTSUP when the backend
 * keeps no statistics.
 */
MVM_API int mvm_vm_stats(mvm_vm *vm, char *buf, size_t len);

/** mvm_vm_hypervisor() - "KVM", "nsbox", "WSL2", "HVF". */
MVM_API const char *mvm_vm_hypervisor(mvm_vm *vm);

/** mvm_vm_vsock() - the VM's vsock client (owned by the VM; valid until destroy). */
MVM_API mvm_vsock *mvm_vm_vsock(mvm_vm *vm);

/** mvm_vm_free() - kill if needed and free everything. */
MVM_API void mvm_vm_free(mvm_vm *vm);

#ifdef _WIN32
/**
 * mvm_wsl_uninstall() - Windows: unregister the appliance's WSL distribution ("microvm")
 *
 * `wsl.exe --unregister microvm` removes its disk; the agent's state in
 * %LOCALAPPDATA%\microvm\state (the user's profiles) is kept.
 *
 * Return: 1 when it was registered and has been removed, 0 when it was not registered
 * (nothing to do), or -errno with mvm_last_error() set (-ENOENT: WSL is not installed;
 * -ENODEV: WSL cannot run, with the advice; -EBUSY: a VM of this user runs, nothing was
 * removed).
 */
MVM_API int mvm_wsl_uninstall(void);

/** MVM_WSL_PURGE - mvm_wsl_uninstall_ex(): also delete %LOCALAPPDATA%\microvm (profiles, logs) */
#define MVM_WSL_PURGE	1u

/**
 * mvm_wsl_uninstall_ex() - mvm_wsl_uninstall(), optionally deleting the user's data too
 * @flags:	0, or MVM_WSL_PURGE: delete %LOCALAPPDATA%\microvm as a whole (the profiles,
 *		the logs), while still holding the appliance lock, so that no VM can start
 *		in between and lose its state under it
 *
 * Return: as mvm_wsl_uninstall(); with MVM_WSL_PURGE also -EIO when something could not be
 * deleted (mvm_last_error() names it).
 */
MVM_API int mvm_wsl_uninstall_ex(unsigned int flags);
#endif

/** mvm_exit_reason_name() - "poweroff", "reboot", "panic", "error", "killed", "none". */
MVM_API const char *mvm_exit_reason_name(enum mvm_exit_reason reason);

/*
 * Console.  Output is fanned out to any number of subscribers; the last 64 KiB are replayed
 * to a new subscriber first.  A slow subscriber loses bytes (it is told how many), the guest
 * never waits for it.
 */

/**
 * typedef mvm_console_cb - console bytes for a subscriber
 * @data/@len:	bytes, in order; @lost counts bytes this subscriber missed before these
 *
 * Called on the VM's console delivery thread (started by the first subscription, shared by
 * all of the VM's subscribers), one call at a time, @data valid only during the call; no call
 * is made once mvm_console_unsubscribe() has returned (when called from a callback: once that
 * callback has returned).
 */
typedef void (*mvm_console_cb)(void *opaque, const uint8_t *data, size_t len, uint64_t lost);

/** mvm_console_subscribe() - Return: a subscription id (>= 0) or -errno. */
MVM_API int mvm_console_subscribe(mvm_vm *vm, mvm_console_cb cb, void *opaque);

/**
 * mvm_console_subscribe_fd() - write console output to @fd (not closed by the VM)
 *
 * The VM writes through a copy of @fd without blocking, so a descriptor nobody reads delays
 * no other subscriber (it misses what is more than 64 KiB old when it catches up).  A pipe or
 * terminal keeps its blocking mode for the caller; for a socket the non-blocking flag is
 * shared with the caller's descriptor.  Regular files are written synchronously.
 */
MVM_API int mvm_console_subscribe_fd(mvm_vm *vm, int fd);

MVM_API void mvm_console_unsubscribe(mvm_vm *vm, int id);

/**
 * mvm_console_drain() - wait until every subscriber was handed all output so far
 * @timeout_ms:	negative waits forever
 * Return: 0, or -ETIMEDOUT.
 */
MVM_API int mvm_console_drain(mvm_vm *vm, int timeout_ms);

/* Bytes of the most recent console output a VM keeps (replayed to a new subscriber). */
#define MVM_CONSOLE_KEPT	(64 * 1024)

/**
 * mvm_console_read() - copy out what the console holds now, without subscribing
 * @vm:		the VM
 * @buf:	where to (at least @size bytes)
 * @size:	at most this many: the most recent bytes when the console holds more
 *		(%MVM_CONSOLE_KEPT is enough for all of it)
 * @total:	if not NULL, set to the number of bytes the guest has written to the console
 *		since the VM was made (more than the console holds once it has wrapped)
 *
 * A snapshot taken in one step: output arriving meanwhile is either wholly in or wholly out.
 *
 * Return: bytes copied (0: no output yet), or -errno.
 */
MVM_API long mvm_console_read(mvm_vm *vm, void *buf, size_t size, uint64_t *total);

/** mvm_console_write() - type into the guest's console. Return: bytes accepted or -errno. */
MVM_API long mvm_console_write(mvm_vm *vm, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
