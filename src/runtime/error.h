/* SPDX-License-Identifier: MIT */
/* Internal side of mvm_last_error(): set the thread's message. */
#ifndef MVM_RUNTIME_ERROR_H
#define MVM_RUNTIME_ERROR_H

#include "microvm/error.h"

#if defined(__GNUC__)
#define MVM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MVM_PRINTF(a, b)
#endif

/**
 * mvm_set_error() - record a message for mvm_last_error()
 * @err:	the value to return (a negative errno), passed through for tail calls
 * @fmt:	printf-style message, without trailing newline
 *
 * Return: @err, so that callers can write "return mvm_set_error(-EINVAL, ...)".
 */
int mvm_set_error(int err, const char *fmt, ...) MVM_PRINTF(2, 3);

#endif
