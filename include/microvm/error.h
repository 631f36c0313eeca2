/* SPDX-License-Identifier: MIT */
/**
 * DOC: error reporting
 *
 * Every libmicrovm call that can fail returns a negative errno value (or NULL) and leaves a
 * one-line, human-readable explanation in a thread-local buffer, read with mvm_last_error().
 * The text says what went wrong and, where possible, what to do about it
 * ("cannot open /dev/kvm: Permission denied (add yourself to the 'kvm' group)").
 */
#ifndef MICROVM_ERROR_H
#define MICROVM_ERROR_H

#include "microvm/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * mvm_last_error() - the message of the last failed call on this thread
 *
 * Return: a NUL-terminated string, "" when nothing failed yet; valid until the next
 * libmicrovm call on the same thread.
 */
MVM_API const char *mvm_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
