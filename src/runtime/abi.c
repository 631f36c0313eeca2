/* SPDX-License-Identifier: MIT */
/*
 * abi.c - sized config structs: defaults for the fields a caller's headers do not know,
 * refusal of a struct from newer headers.  The rule and why: src/runtime/abi.h and
 * docs/library.md, "ABI rules".
 */
#include "runtime/abi.h"

#include <errno.h>
#include <string.h>

#include "microvm/version.h"
#include "runtime/error.h"

void mvm_abi_init(void *dst, size_t size, const void *defaults, size_t full)
{
	if (!dst || size < sizeof(size_t))
		return;
	memset(dst, 0, size);
	memcpy(dst, defaults, size < full ? size : full);
	memcpy(dst, &size, sizeof(size));
}

int mvm_abi_copy_in(void *dst, size_t full, const void *src, const char *name)
{
	size_t size;

	if (!src)
		return mvm_set_error(-EINVAL, "no struct %s given", name);
	memcpy(&size, src, sizeof(size));
	if (size < sizeof(size_t))
		return mvm_set_error(-EINVAL,
				     "struct %s has size %lu: fill it with %s_init() first",
				     name, (unsigned long)size, name);
	if (size > full)
		return mvm_set_error(-EINVAL,
				     "struct %s of %lu bytes comes from newer headers than this "
				     "libmicrovm %s (%lu bytes): run the program with the library "
				     "it was built for, or a newer one",
				     name, (unsigned long)size, MVM_VERSION_STRING,
				     (unsigned long)full);
	memcpy(dst, src, size);
	memcpy(dst, &full, sizeof(full));
	return 0;
}
