/* dedup.h: an exact string set for de-duplication (open addressing, 64-bit FNV-1a hashes, full
 * comparison on a hash match, so no false duplicates). Each key carries an integer value (the
 * index of the record that first had it). Keys are copied.
 */
#ifndef SLM_DATA_DEDUP_H
#define SLM_DATA_DEDUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *hash; /* cap slots; 0 = empty */
    char **key;
    size_t *klen;
    long *value;
    size_t cap, n;
} slm_dedup;

void slm_dedup_init(slm_dedup *d);
void slm_dedup_free(slm_dedup *d);
/* Inserts key with value. Returns 1 if inserted, 0 if present (*existing = its value), -1 on OOM. */
int slm_dedup_insert(slm_dedup *d, const char *key, size_t len, long value, long *existing);
/* 1 and *value when key is present, else 0. */
int slm_dedup_find(const slm_dedup *d, const char *key, size_t len, long *value);

#endif
