/* SPDX-License-Identifier: MIT */
/**
 * DOC: export marker
 *
 * libmicrovm is compiled with hidden symbol visibility (-fvisibility=hidden): a function is
 * part of the shared library's ABI only when its public declaration carries MVM_API.  Anything
 * else - backend internals, test helpers - stays out of libmicrovm.so.0 even though it has
 * external linkage inside the library.  src/libmicrovm.map then gives every exported symbol
 * the version node MICROVM_0 (see docs/library.md, "ABI rules").
 *
 * The Windows build is a static library for now, so MVM_API is empty there.
 */
#ifndef MICROVM_EXPORT_H
#define MICROVM_EXPORT_H

#if defined(_WIN32)
#define MVM_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#define MVM_API __attribute__((visibility("default")))
#else
#define MVM_API
#endif

#endif
