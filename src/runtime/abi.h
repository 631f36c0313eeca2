/* SPDX-License-Identifier: MIT */
/**
 * DOC: sized config structs (the library side of the ABI rule in docs/library.md)
 *
 * Every config struct a caller passes in (&struct mvm_config, &struct mvm_socks_config,
 * &struct mvm_manager_config) starts with `size_t size`, which the caller's
 * mvm_X_config_init() macro sets to sizeof the struct *as the caller's headers define it*.
 * The library then:
 *
 * - on init (mvm_abi_init()): zeroes the caller's @size bytes and copies in as much of its
 *   own defaults as fits, so an older caller gets the defaults of the fields it knows and a
 *   newer one zeroes past what this library knows;
 * - on use (mvm_abi_copy_in()): starts from its own defaults, copies the caller's @size bytes
 *   over them, so the fields an older caller does not know keep their defaults; a size
 *   larger than the library's struct (a caller built against newer headers) or smaller than
 *   the size field itself (not initialised) is refused with -EINVAL and a one-line reason.
 *
 * This works because fields are only ever appended, each one starting at or after the old
 * sizeof (the layout assertions beside each struct's defaults keep that honest), and a
 * struct embeds no other sized struct by value (the manager's config points to its VM and
 * SOCKS configs).
 */
#ifndef MVM_RUNTIME_ABI_H
#define MVM_RUNTIME_ABI_H

#include <stddef.h>

/**
 * mvm_abi_init() - fill a caller's sized struct with the library's defaults
 * @dst:	the caller's struct
 * @size:	its size as the caller knows it (sizeof in the caller's build)
 * @defaults:	the library's struct holding the defaults
 * @full:	the library's sizeof of that struct
 *
 * Nothing happens when @dst is NULL or @size cannot even hold the size field.
 */
void mvm_abi_init(void *dst, size_t size, const void *defaults, size_t full);

/**
 * mvm_abi_copy_in() - a caller's sized struct as the library's own
 * @dst:	the library's struct, already holding the defaults
 * @full:	its size
 * @src:	the caller's struct (its first member is `size_t size`)
 * @name:	the struct's name without "struct " ("mvm_config"), for the error
 *
 * On success @dst holds the caller's fields over the defaults, and @dst's size field is @full.
 * Return: 0, or -EINVAL with mvm_last_error() set.
 */
int mvm_abi_copy_in(void *dst, size_t full, const void *src, const char *name);

#endif
