/* SPDX-License-Identifier: MIT */
/* error.c - thread-local "last error" message behind mvm_last_error(). */
#include <stdarg.h>
#include <stdio.h>

#include "runtime/error.h"

static _Thread_local char mvm_err_buf[512];

const char *mvm_last_error(void)
{
	return mvm_err_buf;
}

int mvm_set_error(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(mvm_err_buf, sizeof(mvm_err_buf), fmt, ap);
	va_end(ap);
	return err;
}
