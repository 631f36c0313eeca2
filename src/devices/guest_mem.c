/* SPDX-License-Identifier: MIT */
/* guest_mem.c - bounds-checked guest physical to host pointer translation. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "devices/guest_mem.h"

void mvm_gmem_init(struct mvm_gmem *gm)
{
	memset(gm, 0, sizeof(*gm));
}

int mvm_gmem_add(struct mvm_gmem *gm, uint64_t gpa, uint64_t size, void *host)
{
	unsigned int i;

	if (!size || !host || gpa + size - 1 < gpa)
		return -EINVAL;
	for (i = 0; i < gm->nr; i++) {
		const struct mvm_gmem_region *r = &gm->regions[i];

		/* Inclusive ends: neither of the two can wrap. */
		if (gpa <= r->gpa + r->size - 1 && r->gpa <= gpa + size - 1)
			return -EINVAL;
	}
	if (gm->nr >= MVM_GMEM_MAX_REGIONS)
		return -ENOSPC;
	gm->regions[gm->nr].gpa = gpa;
	gm->regions[gm->nr].size = size;
	gm->regions[gm->nr].host = host;
	gm->nr++;
	return 0;
}

void *mvm_gmem_ptr(const struct mvm_gmem *gm, uint64_t gpa, uint64_t len)
{
	unsigned int i;

	for (i = 0; i < gm->nr && i < MVM_GMEM_MAX_REGIONS; i++) {
		const struct mvm_gmem_region *r = &gm->regions[i];
		uint64_t off;

		if (gpa < r->gpa)
			continue;
		off = gpa - r->gpa;
		if (off >= r->size)
			continue;
		/* off < size, so size - off cannot underflow; no addition can wrap. */
		if (len > r->size - off)
			return NULL;
		return (char *)r->host + off;
	}
	return NULL;
}
