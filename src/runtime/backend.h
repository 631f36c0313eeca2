/* SPDX-License-Identifier: MIT */
/**
 * DOC: backend interface
 *
 * The runtime (runtime.c) owns the VM object, its state machine, the console and the vsock
 * client; a backend owns how the guest actually runs.  A backend fills one of these tables and
 * reports the guest's end with mvm_vm_exited().  Backends register in runtime.c's table; the
 * runtime never includes a backend's headers.
 */
#ifndef MVM_RUNTIME_BACKEND_H
#define MVM_RUNTIME_BACKEND_H

#include <stddef.h>

#include "microvm/runtime.h"

/**
 * struct mvm_backend_ops - one backend
 * @name:	hypervisor name reported to users ("KVM", "nsbox", "WSL2", "HVF")
 * @kind:	the config value that selects it
 * @usable:	can this backend run a full guest here?  Fills @why (a one-line reason) if not.
 *		Used by MVM_BACKEND_AUTO.  May be NULL (always usable).
 * @create:	check @cfg, allocate, and set *@priv; errors via mvm_set_error()
 * @start:	start running the guest (threads, processes); return 0 or -errno
 * @request_stop: ask the guest to shut down gracefully (may be NULL: stop then kills)
 * @kill:	stop the guest now; must make mvm_vm_exited() happen soon
 * @console_write: bytes typed into the guest console; return bytes taken or -errno
 * @vsock:	the transport for the VM's vsock client (called once after create)
 * @stats:	device statistics, one "name: value" line each, into @buf (the op may be NULL):
 *		the length written (snprintf-style, may exceed @len) or -errno
 * @destroy:	free everything; the guest is no longer running
 */
struct mvm_backend_ops {
	const char *name;
	enum mvm_backend_kind kind;
	int (*usable)(char *why, size_t why_len);
	int (*create)(mvm_vm *vm, const struct mvm_config *cfg, void **priv);
	int (*start)(void *priv);
	int (*request_stop)(void *priv);
	int (*kill)(void *priv);
	long (*console_write)(void *priv, const void *data, size_t len);
	mvm_vsock *(*vsock)(void *priv);
	int (*stats)(void *priv, char *buf, size_t len);
	void (*destroy)(void *priv);
};

/**
 * mvm_vm_exited() - a backend reports that its guest has stopped (any thread)
 * @vm:		the VM
 * @reason:	why
 * @detail:	one line for the user (e.g. "triple fault at rip=0x..."), or NULL
 */
void mvm_vm_exited(mvm_vm *vm, enum mvm_exit_reason reason, const char *detail);

/**
 * mvm_vm_console_output() - a backend delivers guest console bytes (never blocks)
 */
void mvm_vm_console_output(mvm_vm *vm, const void *data, size_t len);

/**
 * mvm_vm_new_ops() - create a VM on the given backend, bypassing the table
 * (for tests with a fake backend, and for backends that wrap another)
 * Return: the VM, or NULL with mvm_last_error() set.
 */
mvm_vm *mvm_vm_new_ops(const struct mvm_backend_ops *ops, const struct mvm_config *cfg);

#endif
