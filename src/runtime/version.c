/* SPDX-License-Identifier: MIT */
/* version.c - mvm_version(): the library's version, from the generated microvm/version.h. */
#include "microvm/version.h"

const char *mvm_version(void)
{
	return MVM_VERSION_STRING;
}
