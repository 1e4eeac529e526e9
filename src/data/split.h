/* split.h: seeded, stratified train/val/test assignment.
 *
 * Items are grouped (by label for classify; one group otherwise). Within each group the items are
 * shuffled with a generator seeded from (seed, group) and cut by the shares, with the remainders
 * given out by largest fraction (ties rotating with the group), so each group's split sizes are within one item of its share.
 * A group with at least one item always has at least one in the first split (train). The same
 * inputs and seed give the same assignment on every machine.
 */
#ifndef SLM_DATA_SPLIT_H
#define SLM_DATA_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define SLM_SPLIT_MAX 3

/* group[i] in [0, n_groups) for each of n items; shares[0..n_splits) positive, summing to 1
 * (within 1e-6). Fills out[i] with the split of item i. */
slm_status slm_split_assign(const int *group, size_t n, int n_groups, const double *shares, int n_splits,
                            uint64_t seed, uint8_t *out, slm_err *err);

/* Parses "0.9,0.1" or "0.8,0.1,0.1" (or percentages "90,10") into shares; returns their count
 * (2 or 3) or fills err and returns 0. */
int slm_split_parse(const char *s, double shares[SLM_SPLIT_MAX], slm_err *err);

#endif
