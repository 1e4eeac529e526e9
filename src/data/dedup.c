/* dedup.c: the exact string set behind duplicate dropping and test leakage (see dedup.h). */
#include "data/dedup.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h ? h : 1;
}

void slm_dedup_init(slm_dedup *d) { memset(d, 0, sizeof *d); }

void slm_dedup_free(slm_dedup *d) {
    for (size_t i = 0; i < d->cap; i++)
        if (d->hash[i]) free(d->key[i]);
    free(d->hash);
    free(d->key);
    free(d->klen);
    free(d->value);
    memset(d, 0, sizeof *d);
}

static size_t slot_of(const slm_dedup *d, uint64_t h, const char *key, size_t len, int *found) {
    size_t mask = d->cap - 1, i = (size_t)h & mask;
    for (;;) {
        if (!d->hash[i]) {
            *found = 0;
            return i;
        }
        if (d->hash[i] == h && d->klen[i] == len && !memcmp(d->key[i], key, len)) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int grow(slm_dedup *d) {
    size_t nc = d->cap ? d->cap * 2 : 1024;
    slm_dedup n = {calloc(nc, sizeof(uint64_t)), calloc(nc, sizeof(char *)), calloc(nc, sizeof(size_t)),
                   calloc(nc, sizeof(long)), nc, d->n};
    if (!n.hash || !n.key || !n.klen || !n.value) {
        free(n.hash);
        free(n.key);
        free(n.klen);
        free(n.value);
        return 0;
    }
    for (size_t i = 0; i < d->cap; i++) {
        if (!d->hash[i]) continue;
        int found;
        size_t j = slot_of(&n, d->hash[i], d->key[i], d->klen[i], &found);
        n.hash[j] = d->hash[i];
        n.key[j] = d->key[i];
        n.klen[j] = d->klen[i];
        n.value[j] = d->value[i];
    }
    free(d->hash);
    free(d->key);
    free(d->klen);
    free(d->value);
    *d = n;
    return 1;
}

int slm_dedup_insert(slm_dedup *d, const char *key, size_t len, long value, long *existing) {
    if ((d->n + 1) * 2 > d->cap && !grow(d)) return -1;
    uint64_t h = fnv1a(key, len);
    int found;
    size_t i = slot_of(d, h, key, len, &found);
    if (found) {
        if (existing) *existing = d->value[i];
        return 0;
    }
    char *k = malloc(len + 1);
    if (!k) return -1;
    memcpy(k, key, len);
    k[len] = '\0';
    d->hash[i] = h;
    d->key[i] = k;
    d->klen[i] = len;
    d->value[i] = value;
    d->n++;
    return 1;
}

int slm_dedup_find(const slm_dedup *d, const char *key, size_t len, long *value) {
    if (!d->cap) return 0;
    int found;
    size_t i = slot_of(d, fnv1a(key, len), key, len, &found);
    if (found && value) *value = d->value[i];
    return found;
}
