/* bpe_encode.c: encoding — pre-split the text, then merge the bytes of each piece by rank.
 *
 * Within a piece the lowest-ranked adjacent pair merges first; among equal ranks (the same pair
 * at several places) the leftmost. That is GPT-2's rule and llama.cpp's (whose queue orders by
 * rank, then left position), so results match token for token. Symbols sit in a linked list over
 * the piece's byte positions; a merge folds the right symbol into the left one.
 *
 * Two paths with identical results: short pieces keep each position's pair rank in an array and
 * rescan it per merge; long pieces (runs of spaces, digits, base64) use a binary heap of
 * candidate pairs with lazy deletion (an entry is stale when either side changed since it was
 * pushed), so a piece of n bytes costs O(n log n).
 *
 * The tokenizer is only read here; each call owns its scratch space and PCRE2 match data, so any
 * number of threads may encode with one tokenizer.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

slm_status slm_tok_ids_push(slm_tok_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 256;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v) return SLM_ERR_NOMEM;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return SLM_OK;
}

void slm_tok_work_free(slm_tok_work *w) {
    free(w->sym);
    free(w->prev);
    free(w->next);
    free(w->rank);
    free(w->res);
    free(w->heap);
    memset(w, 0, sizeof *w);
}

static slm_status work_reserve(slm_tok_work *w, size_t n) {
    if (n <= w->cap) return SLM_OK;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n) cap *= 2;
    int32_t **arrs[] = {&w->sym, &w->prev, &w->next, &w->rank, &w->res};
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        int32_t *p = realloc(*arrs[i], cap * sizeof *p);
        if (!p) return SLM_ERR_NOMEM;
        *arrs[i] = p;
    }
    w->cap = cap;
    return SLM_OK;
}

/* ---- heap of candidates, least (rank, left) on top ---- */

static int cand_less(const slm_tok_cand *a, const slm_tok_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static slm_status heap_push(slm_tok_work *w, slm_tok_cand c) {
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        slm_tok_cand *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return SLM_ERR_NOMEM;
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = c;
    return SLM_OK;
}

static slm_tok_cand heap_pop(slm_tok_work *w) {
    slm_tok_cand top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* Pushes the pair at position left (with its right neighbour) if it has a merge. */
static slm_status push_pair(const slm_tokenizer *t, slm_tok_work *w, int32_t left) {
    if (left < 0 || w->next[left] < 0) return SLM_OK;
    int32_t lid = w->sym[left], rid = w->sym[w->next[left]], res;
    int32_t rank = slm_tok_pair_find(t, lid, rid, &res);
    if (rank < 0) return SLM_OK;
    return heap_push(w, (slm_tok_cand){rank, left, lid, rid, res});
}

/* ---- the two merge loops ---- */

static void set_rank(const slm_tokenizer *t, slm_tok_work *w, int32_t i) {
    int32_t j = w->next[i];
    w->rank[i] = INT32_MAX;
    if (j >= 0) {
        int32_t r = slm_tok_pair_find(t, w->sym[i], w->sym[j], &w->res[i]);
        if (r >= 0) w->rank[i] = r;
    }
}

/* Folds the symbol after position i into i, which becomes symbol res. */
static void fold(slm_tok_work *w, int32_t i, int32_t res) {
    int32_t j = w->next[i];
    w->sym[i] = res;
    w->sym[j] = -1; /* dead: stale heap entries naming it fail validation */
    w->next[i] = w->next[j];
    if (w->next[j] >= 0) w->prev[w->next[j]] = i;
}

static void merge_scan(const slm_tokenizer *t, slm_tok_work *w) {
    for (int32_t i = 0; i >= 0; i = w->next[i]) set_rank(t, w, i);
    for (;;) {
        int32_t best = -1, best_rank = INT32_MAX;
        for (int32_t i = 0; i >= 0; i = w->next[i])
            if (w->rank[i] < best_rank) {
                best_rank = w->rank[i];
                best = i;
            }
        if (best < 0) return;
        fold(w, best, w->res[best]);
        set_rank(t, w, best);
        if (w->prev[best] >= 0) set_rank(t, w, w->prev[best]);
    }
}

static slm_status merge_heap(const slm_tokenizer *t, slm_tok_work *w, size_t n) {
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (push_pair(t, w, (int32_t)i) != SLM_OK) return SLM_ERR_NOMEM;
    while (w->heap_n) {
        slm_tok_cand c = heap_pop(w);
        int32_t j = w->next[c.left];
        if (w->sym[c.left] != c.lid || j < 0 || w->sym[j] != c.rid) continue; /* stale */
        fold(w, c.left, c.res);
        if (push_pair(t, w, w->prev[c.left]) != SLM_OK || push_pair(t, w, c.left) != SLM_OK)
            return SLM_ERR_NOMEM;
    }
    return SLM_OK;
}

/* Appends symbol s: a token as itself, a virtual symbol as the tokens of its bytes. */
static slm_status emit(const slm_tokenizer *t, int32_t s, slm_tok_ids *out) {
    if (s < t->n_vocab) return slm_tok_ids_push(out, s);
    const uint8_t *b = (const uint8_t *)t->raw + t->raw_off[s];
    for (uint32_t k = 0; k < t->raw_n[s]; k++)
        if (t->byte_tok[b[k]] >= 0 && slm_tok_ids_push(out, t->byte_tok[b[k]]) != SLM_OK)
            return SLM_ERR_NOMEM;
    return SLM_OK;
}

slm_status slm_tok_encode_piece(const slm_tokenizer *t, slm_tok_work *w, const uint8_t *bytes,
                                size_t n, size_t heap_from, slm_tok_ids *out) {
    if (n == 0) return SLM_OK;
    if (n == 1) return emit(t, t->byte_sym[bytes[0]], out);
    if (n > (size_t)INT32_MAX - 1 || work_reserve(w, n) != SLM_OK) return SLM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        w->sym[i] = t->byte_sym[bytes[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    if (n >= heap_from) {
        if (merge_heap(t, w, n) != SLM_OK) return SLM_ERR_NOMEM;
    } else {
        merge_scan(t, w);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i])
        if (emit(t, w->sym[i], out) != SLM_OK) return SLM_ERR_NOMEM;
    return SLM_OK;
}

/* ---- a per-call cache of pieces already encoded ----
 * Ordinary text repeats its words: tinyshakespeare's 300,000 pieces hold about 25,000 distinct
 * ones. Pieces seen before in this call are copied from the output instead of merged again.
 * The cache lives for one call (no shared mutable state) and stops growing when full. */

enum { CACHE_MIN_TEXT = 4096, CACHE_MAX_PIECE = 64, CACHE_MAX_SLOTS = 1 << 17 };

typedef struct {
    uint64_t hash;
    uint64_t start;     /* the piece in the text (keys are compared against the input) */
    uint32_t len;       /* 0: empty slot */
    uint32_t n_ids;
    uint64_t ids_at;    /* its ids in the output */
} cache_slot;

typedef struct {
    cache_slot *slots;
    size_t cap, used;   /* cap a power of two; 0: no cache */
} piece_cache;

static void cache_init(piece_cache *c, size_t text_len) {
    c->cap = c->used = 0;
    c->slots = NULL;
    if (text_len < CACHE_MIN_TEXT) return;
    c->slots = calloc(1024, sizeof *c->slots); /* grows with the distinct pieces seen */
    if (c->slots) c->cap = 1024;               /* without memory, simply no cache */
}

/* The slot for the piece: a hit (len set) or the empty slot to fill. NULL: no cache. */
static cache_slot *cache_find(piece_cache *c, const char *text, size_t start, size_t n) {
    if (!c->cap || n > CACHE_MAX_PIECE) return NULL;
    uint64_t h = slm_tok_hash_bytes(text + start, n);
    size_t mask = c->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        cache_slot *s = &c->slots[i];
        if (!s->len) {
            s->hash = h;
            return s;
        }
        if (s->hash == h && s->len == n && !memcmp(text + s->start, text + start, n)) return s;
    }
}

/* Fills the empty slot found for a piece; doubles the table at half full (up to the cap). */
static void cache_put(piece_cache *c, cache_slot *slot, size_t start, size_t n, size_t ids_at,
                      size_t n_ids) {
    *slot = (cache_slot){slot->hash, start, (uint32_t)n, (uint32_t)n_ids, ids_at};
    c->used++;
    if (2 * c->used < c->cap) return;
    size_t cap = c->cap * 2;
    cache_slot *ns = cap <= CACHE_MAX_SLOTS ? calloc(cap, sizeof *ns) : NULL;
    if (!ns) { /* full: keep what is there, add no more */
        c->used = c->cap;
        return;
    }
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].len) continue;
        size_t j = (size_t)c->slots[i].hash & (cap - 1);
        while (ns[j].len) j = (j + 1) & (cap - 1);
        ns[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = ns;
    c->cap = cap;
}

slm_status slm_tokenizer_encode(const slm_tokenizer *t, const char *text, size_t len, int add_bos,
                                int32_t **ids, size_t *n_ids, slm_err *err) {
    if (t->kind == SLM_TOK_KIND_SPM) return slm_tok_spm_encode(t, text, len, add_bos, ids, n_ids, err);
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return slm_err_set(err, SLM_ERR_ARG, "tokenizer: encode of NULL text");
    slm_tok_ids out = {0};
    slm_tok_work w = {0};
    slm_pretok_iter it;
    slm_status st = slm_pretok_iter_init(&it, t->pretok, text ? text : "", len, err);
    if (st != SLM_OK) return st;
    piece_cache cache;
    cache_init(&cache, len);
    /* room for a typical 3-4 bytes per token up front */
    out.cap = len / 3 + 16;
    out.v = malloc(out.cap * sizeof *out.v);
    if (!out.v) goto nomem;
    if (add_bos && t->bos >= 0) out.v[out.n++] = t->bos;
    size_t start, n;
    int rc;
    while ((rc = slm_pretok_iter_next(&it, &start, &n, err)) > 0) {
        cache_slot *slot = cache_find(&cache, text, start, n);
        if (slot && slot->len) { /* seen before: copy its ids */
            for (uint32_t k = 0; k < slot->n_ids; k++)
                if (slm_tok_ids_push(&out, out.v[slot->ids_at + k]) != SLM_OK) goto nomem;
            continue;
        }
        size_t before = out.n;
        if (t->ignore_merges) { /* llama3: a piece that is a whole token is that token */
            int32_t whole = slm_tok_sym_find(t, text + start, n);
            if (whole >= 0 && whole < t->n_vocab) {
                if (slm_tok_ids_push(&out, whole) != SLM_OK) goto nomem;
                continue;
            }
        }
        if (slm_tok_encode_piece(t, &w, (const uint8_t *)text + start, n, SLM_TOK_HEAP_FROM,
                                 &out) != SLM_OK)
            goto nomem;
        if (slot && cache.used < cache.cap) cache_put(&cache, slot, start, n, before, out.n - before);
    }
    free(cache.slots);
    slm_pretok_iter_done(&it);
    slm_tok_work_free(&w);
    if (rc < 0) {
        free(out.v);
        return err ? err->code : SLM_ERR_FORMAT;
    }
    *ids = out.v;
    *n_ids = out.n;
    return SLM_OK;
nomem:
    free(cache.slots);
    slm_pretok_iter_done(&it);
    slm_tok_work_free(&w);
    free(out.v);
    return slm_err_set(err, SLM_ERR_NOMEM, "tokenizer: out of memory encoding %zu bytes", len);
}
