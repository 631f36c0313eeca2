/* SPDX-License-Identifier: MIT */
/**
 * DOC: guest memory map
 *
 * Devices never see raw guest physical addresses: every address a guest hands us (descriptor
 * tables, rings, buffers) is translated through mvm_gmem_ptr(), which refuses any range that is
 * not entirely inside one RAM region.  The backend (KVM) fills the map once before any device
 * runs and never changes it while the guest runs, so lookups need no lock.
 */
#ifndef MVM_DEVICES_GUEST_MEM_H
#define MVM_DEVICES_GUEST_MEM_H

#include <stdint.h>

#define MVM_GMEM_MAX_REGIONS	4

/**
 * struct mvm_gmem_region - one contiguous piece of guest RAM
 * @gpa:	guest physical address of the first byte
 * @size:	length in bytes (non-zero)
 * @host:	where the first byte is mapped in this process
 */
struct mvm_gmem_region {
	uint64_t gpa;
	uint64_t size;
	void *host;
};

/**
 * struct mvm_gmem - guest RAM as a few non-overlapping regions
 * @nr:		number of valid entries in @regions
 * @regions:	the regions, in the order they were added
 *
 * Zero-initialise (or mvm_gmem_init()) and fill with mvm_gmem_add().
 */
struct mvm_gmem {
	unsigned int nr;
	struct mvm_gmem_region regions[MVM_GMEM_MAX_REGIONS];
};

/**
 * mvm_gmem_init() - empty the map
 * @gm:		the map
 */
void mvm_gmem_init(struct mvm_gmem *gm);

/**
 * mvm_gmem_add() - add a RAM region
 * @gm:		the map
 * @gpa:	guest physical base
 * @size:	bytes, non-zero; @gpa + @size must not wrap past 2^64
 * @host:	host mapping of the region's first byte
 *
 * Return: 0, -EINVAL (empty, wrapping, overlapping or NULL @host), -ENOSPC (map full).
 */
int mvm_gmem_add(struct mvm_gmem *gm, uint64_t gpa, uint64_t size, void *host);

/**
 * mvm_gmem_ptr() - translate a guest range to a host pointer
 * @gm:		the map
 * @gpa:	first guest physical address of the range
 * @len:	length of the range; 0 is allowed and then only @gpa must be inside a region
 *
 * Overflow-safe: a range that wraps past 2^64, straddles two regions or leaves RAM is refused.
 *
 * Return: host pointer to @gpa, or NULL unless [@gpa, @gpa + @len) lies inside one region.
 */
void *mvm_gmem_ptr(const struct mvm_gmem *gm, uint64_t gpa, uint64_t len);

#endif
