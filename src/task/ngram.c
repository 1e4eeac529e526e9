/* ngram.c: the sparse n-gram classifier (ngram.h).
 *
 * Sections: text (lenient UTF-8, lowercase, character classes), n-gram extraction (one routine
 * that calls back per n-gram, used by training, inference and the test hook), a string hash table
 * (keys interned into one arena; ids in insertion order), the model and its tf-idf rows, the
 * objective and gradient over a CSR matrix (examples split across threads) and its CSC transpose
 * (features split across threads, so each gradient row has one writer and no atomics), L-BFGS,
 * and the GGUF part.
 *
 * Why L-BFGS: it minimises the same objective scikit-learn's default solver does, to the same
 * point, so the accuracy matches the baseline's without tuning a learning rate; it is full-batch,
 * so the model does not depend on a seed or on the thread count (every reduction runs in a fixed
 * order). W is stored feature-major with rows padded to a multiple of 8 floats (Kp) so that a
 * row is whole vectors; the padding stays zero.
 */
#include "task/ngram.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "kernels/kernels.h"

/* As src/kernels/simd.h: let GCC vectorise the row loops at -O2, and build the two hot loops of
 * the gradient for AVX2 and for the baseline (chosen at load by CPU). No fast-math: the AVX2
 * clone rounds as the scalar code does. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#pragma GCC optimize("no-trapping-math", "vect-cost-model=dynamic")
#define NG_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#define NG_INLINE static inline __attribute__((always_inline))
#else
#define NG_CLONES
#define NG_INLINE static inline
#endif

#define NG_MAX_WORD_N 8      /* caps on the options (and on what a file may ask for) */
#define NG_MAX_CHAR_N 16
#define NG_DEFAULT_ITER 200
#define NG_DEFAULT_TOL 1e-5f
#define NG_LBFGS_M 5         /* L-BFGS history pairs (4..10 converge alike on Banking77) */

/* ---- text --------------------------------------------------------------------------------- */

/* An invalid byte b reads as the code point NG_INVALID + b: outside Unicode, so it is a word
 * character, never a space, never lowercased. */
#define NG_INVALID 0x110000u

/* Length of the code point at s[i] (i < n) and its value; an invalid or truncated sequence is one
 * byte. */
static size_t cp_next(const unsigned char *s, size_t i, size_t n, uint32_t *cp) {
    unsigned c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t L;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) L = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) L = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) L = 4, v = c & 0x07, min = 0x10000;
    else goto invalid;
    if (n - i < L) goto invalid;
    for (size_t k = 1; k < L; k++) {
        unsigned d = s[i + k];
        if ((d & 0xC0) != 0x80) goto invalid;
        v = v << 6 | (d & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto invalid;
    *cp = v;
    return L;
invalid:
    *cp = NG_INVALID + c;
    return 1;
}

/* Python's str.lower() for the blocks handled (each maps to a code point of the same UTF-8
 * length, so lowercasing keeps byte offsets); others unchanged. U+0130 lowers to two code points
 * in Python and is left as it is; so is the final-sigma rule. */
static uint32_t cp_lower(uint32_t c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c < 0xC0) return c;
    if (c <= 0xDE) return c == 0xD7 ? c : c + 0x20;
    if (c < 0x100) return c;
    if (c < 0x180) { /* Latin Extended-A */
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;
        if (c == 0x178) return 0xFF;
        if ((c < 0x138 || (c >= 0x14A && c < 0x178))) return (c & 1) ? c : c + 1;
        return (c & 1) ? c + 1 : c; /* 0139-0148, 0179-017E */
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20; /* Greek */
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 0x25;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 0x3F;
    if (c >= 0x400 && c <= 0x40F) return c + 0x50; /* Cyrillic */
    if (c >= 0x410 && c <= 0x42F) return c + 0x20;
    return c;
}

/* Python's str.isspace() (what str.split() splits on). */
static bool cp_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* Python's \w, approximately: exact for ASCII and Latin-1; the General Punctuation, currency and
 * CJK punctuation blocks are not word characters; every other non-space code point is (most
 * are letters), and so is an invalid byte. */
static bool cp_word(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c < 0xC0)
        return c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA || c == 0xBC ||
               c == 0xBD || c == 0xBE;
    if (c < 0x100) return c != 0xD7 && c != 0xF7;
    if ((c >= 0x2000 && c <= 0x206F) || (c >= 0x20A0 && c <= 0x20CF) || (c >= 0x3000 && c <= 0x3003)) return false;
    return !cp_space(c);
}

static void put_cp(unsigned char *d, uint32_t c, size_t L) {
    if (L == 1) d[0] = (unsigned char)c;
    else if (L == 2) d[0] = (unsigned char)(0xC0 | c >> 6), d[1] = (unsigned char)(0x80 | (c & 0x3F));
}

static size_t cp_len(uint32_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

/* ---- n-gram extraction -------------------------------------------------------------------- */

typedef struct {
    int word_max, char_min, char_max;
} ng_ana;

typedef void (*ng_emit)(void *ctx, const char *key, size_t len);

/* Scratch for a text of len bytes: token bounds, padded-word code point offsets, the lowercased
 * text, the key and the padded word. 0 when len is absurdly large. */
static size_t scratch_bytes(size_t len) {
    if (len > SIZE_MAX / 64) return 0;
    return sizeof(size_t) * (2 * (len / 2 + 2) + len + 4) + 3 * len + 32;
}

/* How many n-grams a text of len bytes can give at most (see extract). */
static size_t ngram_bound(const ng_ana *a, size_t len) {
    size_t nc = a->char_max > 0 ? (size_t)(a->char_max - a->char_min + 1) : 0;
    return (size_t)a->word_max * (len / 2 + 2) + nc * (2 * len + 2) + 1;
}

/* Calls emit for every n-gram of text (scratch of scratch_bytes(len)). */
static void extract(const ng_ana *a, const char *text, size_t len, void *scratch, ng_emit emit, void *ctx) {
    size_t *tok = scratch, *cpo = tok + 2 * (len / 2 + 2);
    unsigned char *lc = (unsigned char *)(cpo + len + 4), *key = lc + len, *pw = key + len + 16;
    const unsigned char *s = (const unsigned char *)text;
    uint32_t c;
    for (size_t i = 0; i < len;) {
        size_t L = cp_next(s, i, len, &c);
        uint32_t lo = cp_lower(c);
        if (lo != c && cp_len(lo) == L && L <= 2) put_cp(lc + i, lo, L);
        else memcpy(lc + i, s + i, L);
        i += L;
    }
    key[0] = 'w', key[1] = ':';
    if (a->word_max > 0) {
        size_t nt = 0;
        for (size_t i = 0; i < len;) {
            size_t L = cp_next(lc, i, len, &c);
            if (!cp_word(c)) {
                i += L;
                continue;
            }
            size_t start = i, ncp = 0;
            while (i < len) {
                L = cp_next(lc, i, len, &c);
                if (!cp_word(c)) break;
                i += L, ncp++;
            }
            if (ncp >= 2) tok[2 * nt] = start, tok[2 * nt + 1] = i, nt++;
        }
        for (size_t n = 1; n <= (size_t)a->word_max && n <= nt; n++)
            for (size_t t = 0; t + n <= nt; t++) {
                size_t k = 2;
                for (size_t j = t; j < t + n; j++) {
                    if (j > t) key[k++] = ' ';
                    memcpy(key + k, lc + tok[2 * j], tok[2 * j + 1] - tok[2 * j]);
                    k += tok[2 * j + 1] - tok[2 * j];
                }
                emit(ctx, (const char *)key, k);
            }
    }
    if (a->char_max <= 0) return;
    key[0] = 'c';
    for (size_t i = 0; i < len;) {
        size_t L = cp_next(lc, i, len, &c);
        if (cp_space(c)) {
            i += L;
            continue;
        }
        size_t start = i;
        while (i < len) {
            L = cp_next(lc, i, len, &c);
            if (cp_space(c)) break;
            i += L;
        }
        size_t pl = i - start + 2, nc = 0;
        pw[0] = ' ';
        memcpy(pw + 1, lc + start, i - start);
        pw[pl - 1] = ' ';
        for (size_t j = 0; j < pl; nc++) cpo[nc] = j, j += cp_next(pw, j, pl, &c);
        cpo[nc] = pl;
        for (size_t n = (size_t)a->char_min; n <= (size_t)a->char_max; n++) {
            /* sklearn's _char_wb_ngrams: offsets 0..nc-n; a word of at most n code points once */
            size_t e = n < nc ? n : nc;
            memcpy(key + 2, pw, cpo[e]);
            emit(ctx, (const char *)key, cpo[e] + 2);
            for (size_t o = 1; o + n <= nc; o++) {
                memcpy(key + 2, pw + cpo[o], cpo[o + n] - cpo[o]);
                emit(ctx, (const char *)key, cpo[o + n] - cpo[o] + 2);
            }
            if (nc <= n) break;
        }
    }
}

static slm_status check_ana(const slm_ngram_opts *o, slm_err *err) {
    if (o->word_max < 0 || o->word_max > NG_MAX_WORD_N)
        return slm_err_set(err, SLM_ERR_ARG, "ngram: word_max %d is outside [0, %d]", o->word_max, NG_MAX_WORD_N);
    if (o->char_max < 0 || o->char_max > NG_MAX_CHAR_N)
        return slm_err_set(err, SLM_ERR_ARG, "ngram: char_max %d is outside [0, %d]", o->char_max, NG_MAX_CHAR_N);
    if (o->char_max > 0 && (o->char_min < 1 || o->char_min > o->char_max))
        return slm_err_set(err, SLM_ERR_ARG, "ngram: char_min %d is outside [1, char_max %d]", o->char_min,
                           o->char_max);
    if (o->word_max == 0 && o->char_max == 0)
        return slm_err_set(err, SLM_ERR_ARG, "ngram: word_max and char_max are both 0 (no features)");
    return SLM_OK;
}

slm_status slm_ngram_features_of(const slm_ngram_opts *o, const char *text, size_t len,
                                 slm_ngram_feature_fn cb, void *ctx, slm_err *err) {
    if (!o || !cb || (!text && len)) return slm_err_set(err, SLM_ERR_ARG, "ngram: NULL options, callback or text");
    slm_status s = check_ana(o, err);
    if (s) return s;
    size_t nb = scratch_bytes(len);
    void *scratch = nb ? malloc(nb) : NULL;
    if (!scratch) return slm_err_set(err, SLM_ERR_NOMEM, "ngram: no memory for a text of %zu bytes", len);
    ng_ana a = {o->word_max, o->char_min, o->char_max};
    extract(&a, text, len, scratch, cb, ctx);
    free(scratch);
    return SLM_OK;
}

/* ---- string hash table -------------------------------------------------------------------- */

typedef struct {
    uint64_t h;
    int32_t id; /* -1: empty */
} ng_slot;

typedef struct {
    ng_slot *slot;
    size_t mask;       /* slots - 1 (a power of two) */
    int32_t n;         /* keys */
    char *arena;       /* the keys, back to back */
    size_t alen, acap;
    size_t *off;       /* n + 1: key id is arena[off[id], off[id + 1]) */
    size_t ocap;
} ng_map;

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8, n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n);
    h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 33);
}

static bool map_init(ng_map *m, size_t expect) {
    memset(m, 0, sizeof *m);
    size_t cap = 64;
    while (cap < 2 * expect) cap *= 2;
    m->slot = malloc(cap * sizeof *m->slot);
    m->off = malloc(64 * sizeof *m->off);
    if (!m->slot || !m->off) return false;
    for (size_t i = 0; i < cap; i++) m->slot[i].id = -1;
    m->mask = cap - 1, m->ocap = 64, m->off[0] = 0;
    return true;
}

static void map_free(ng_map *m) {
    free(m->slot);
    free(m->arena);
    free(m->off);
    memset(m, 0, sizeof *m);
}

static const char *map_key(const ng_map *m, int32_t id, size_t *len) {
    *len = m->off[id + 1] - m->off[id];
    return m->arena + m->off[id];
}

static int32_t map_find_h(const ng_map *m, const char *k, size_t n, uint64_t h, size_t *at) {
    size_t i = h & m->mask;
    for (;; i = (i + 1) & m->mask) {
        int32_t id = m->slot[i].id;
        if (id < 0) break;
        if (m->slot[i].h == h && m->off[id + 1] - m->off[id] == n && !memcmp(m->arena + m->off[id], k, n)) {
            *at = i;
            return id;
        }
    }
    *at = i;
    return -1;
}

static int32_t map_find(const ng_map *m, const char *k, size_t n) {
    size_t at;
    return map_find_h(m, k, n, hash_bytes(k, n), &at);
}

static bool map_grow(ng_map *m) {
    size_t cap = 2 * (m->mask + 1);
    ng_slot *s = malloc(cap * sizeof *s);
    if (!s) return false;
    for (size_t i = 0; i < cap; i++) s[i].id = -1;
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->slot[i].id < 0) continue;
        size_t j = m->slot[i].h & (cap - 1);
        while (s[j].id >= 0) j = (j + 1) & (cap - 1);
        s[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = s, m->mask = cap - 1;
    return true;
}

/* The id of key k, added if new (*is_new); -1 when out of memory. */
static int32_t map_intern(ng_map *m, const char *k, size_t n, bool *is_new) {
    uint64_t h = hash_bytes(k, n);
    size_t at;
    int32_t id = map_find_h(m, k, n, h, &at);
    *is_new = id < 0;
    if (id >= 0) return id;
    if (m->n >= INT32_MAX - 1) return -1;
    if (m->alen + n > m->acap) {
        size_t cap = m->acap ? m->acap : 4096;
        while (cap < m->alen + n) cap *= 2;
        char *a = realloc(m->arena, cap);
        if (!a) return -1;
        m->arena = a, m->acap = cap;
    }
    if ((size_t)m->n + 2 > m->ocap) {
        size_t *o = realloc(m->off, 2 * m->ocap * sizeof *o);
        if (!o) return -1;
        m->off = o, m->ocap *= 2;
    }
    if (2 * ((size_t)m->n + 1) > m->mask + 1) {
        if (!map_grow(m)) return -1;
        map_find_h(m, k, n, h, &at);
    }
    memcpy(m->arena + m->alen, k, n);
    m->alen += n;
    id = m->n++;
    m->off[m->n] = m->alen;
    m->slot[at].h = h, m->slot[at].id = id;
    return id;
}

/* ---- the model ---------------------------------------------------------------------------- */

struct slm_ngram {
    int F, K, Kp;          /* features, labels, K rounded up to 8 (the row stride of W) */
    ng_ana ana;
    ng_map keys;           /* the F feature keys; id = row */
    uint8_t *word;         /* F: 1 when feature f is in the "w:" block */
    float *idf;            /* F */
    float *W;              /* F x Kp: row f = feature f's K weights, then zeros (64-aligned) */
    float *b;              /* Kp: the K biases, then zeros */
    uint16_t *w16;         /* F x K: the F16 copy slm_ngram_add writes, or NULL */
};

void slm_ngram_opts_default(slm_ngram_opts *o) {
    memset(o, 0, sizeof *o);
    o->word_max = 2;
    o->char_min = 2, o->char_max = 5;
    o->min_df = 1;
    o->C = 30.0f;
    o->max_iter = NG_DEFAULT_ITER;
    o->tol = NG_DEFAULT_TOL;
    o->seed = 1;
}

void slm_ngram_free(slm_ngram *m) {
    if (!m) return;
    map_free(&m->keys);
    free(m->word);
    free(m->idf);
    free(m->W);
    free(m->b);
    free(m->w16);
    free(m);
}

int slm_ngram_n_features(const slm_ngram *m) { return m ? m->F : 0; }
int slm_ngram_n_labels(const slm_ngram *m) { return m ? m->K : 0; }
float slm_ngram_idf(const slm_ngram *m, int f) { return m->idf[f]; }
const float *slm_ngram_weight_row(const slm_ngram *m, int f) { return m->W + (size_t)f * m->Kp; }
const float *slm_ngram_bias(const slm_ngram *m) { return m->b; }
const char *slm_ngram_feature(const slm_ngram *m, int f, size_t *len) { return map_key(&m->keys, f, len); }
int slm_ngram_find(const slm_ngram *m, const char *key, size_t len) { return map_find(&m->keys, key, len); }

static float *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes);
    return p;
}

/* A model of F features and K labels with keys, word, idf, W and b allocated (W, b zero); the
 * keys are added by the caller. */
static slm_ngram *model_new(int F, int K, const ng_ana *a) {
    slm_ngram *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->F = F, m->K = K, m->Kp = (K + 7) / 8 * 8, m->ana = *a;
    bool ok = map_init(&m->keys, (size_t)F);
    m->word = calloc((size_t)F, 1);
    m->idf = malloc((size_t)F * sizeof *m->idf);
    m->W = alloc_floats((size_t)F * m->Kp);
    m->b = alloc_floats((size_t)m->Kp);
    if (!ok || !m->word || !m->idf || !m->W || !m->b) {
        slm_ngram_free(m);
        return NULL;
    }
    return m;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Values (1 + ln cnt) · idf of n distinct features, each block L2-normalised. */
static void row_values(const slm_ngram *m, const int32_t *ids, const int32_t *cnt, size_t n, float *val) {
    double ss[2] = {0, 0}, inv[2];
    for (size_t i = 0; i < n; i++) {
        double v = (1.0 + log((double)cnt[i])) * m->idf[ids[i]];
        val[i] = (float)v;
        ss[m->word[ids[i]]] += v * v;
    }
    for (int k = 0; k < 2; k++) inv[k] = ss[k] > 0 ? 1.0 / sqrt(ss[k]) : 0.0;
    for (size_t i = 0; i < n; i++) val[i] = (float)(val[i] * inv[m->word[ids[i]]]);
}

typedef struct {
    const ng_map *keys;
    int32_t *ids;
    size_t n;
} find_ctx;

static void emit_find(void *p, const char *k, size_t n) {
    find_ctx *c = p;
    int32_t id = map_find(c->keys, k, n);
    if (id >= 0) c->ids[c->n++] = id;
}

/* A text's tf-idf row: n distinct features, ascending. */
typedef struct {
    int32_t *ids;
    float *val;
    size_t n;
    void *b1, *b2;
} ng_row;

static void row_free(ng_row *r) {
    free(r->b1);
    free(r->b2);
}

static bool text_row(const slm_ngram *m, const char *text, size_t len, ng_row *r) {
    memset(r, 0, sizeof *r);
    if (!text) len = 0;
    size_t sb = scratch_bytes(len), nb = ngram_bound(&m->ana, len);
    if (!sb || nb > SIZE_MAX / 8) return false;
    sb = (sb + 15) / 16 * 16;
    if (!(r->b1 = malloc(sb + nb * sizeof(int32_t)))) return false;
    find_ctx c = {&m->keys, (int32_t *)((char *)r->b1 + sb), 0};
    extract(&m->ana, text ? text : "", len, r->b1, emit_find, &c);
    qsort(c.ids, c.n, sizeof *c.ids, cmp_i32);
    if (!(r->b2 = malloc((c.n ? c.n : 1) * (sizeof(int32_t) + sizeof(float))))) {
        row_free(r);
        return false;
    }
    int32_t *cnt = r->b2;
    r->val = (float *)(cnt + c.n);
    size_t d = 0; /* compact to distinct ids with their counts */
    for (size_t i = 0; i < c.n; i++) {
        if (d && c.ids[d - 1] == c.ids[i]) cnt[d - 1]++;
        else c.ids[d] = c.ids[i], cnt[d++] = 1;
    }
    r->ids = c.ids, r->n = d;
    row_values(m, r->ids, cnt, d, r->val);
    return true;
}

int slm_ngram_transform(const slm_ngram *m, const char *text, size_t len, int32_t *idx, float *val, int cap) {
    ng_row r;
    if (!text_row(m, text, len, &r)) return -1;
    for (size_t i = 0; i < r.n && (long)i < cap; i++) idx[i] = r.ids[i], val[i] = r.val[i];
    row_free(&r);
    return r.n > INT32_MAX ? INT32_MAX : (int)r.n;
}

void slm_ngram_logits(const slm_ngram *m, const char *text, size_t len, float *logits) {
    const int K = m->K;
    for (int k = 0; k < K; k++) logits[k] = m->b[k];
    ng_row r;
    if (!text_row(m, text, len, &r)) return;
    for (size_t i = 0; i < r.n; i++) {
        const float *w = m->W + (size_t)r.ids[i] * m->Kp;
        const float x = r.val[i];
        for (int k = 0; k < K; k++) logits[k] += x * w[k];
    }
    row_free(&r);
}

/* ---- objective and gradient --------------------------------------------------------------- */

/* The problem: N rows of tf-idf values as CSR and its CSC transpose, labels, and scratch. The
 * parameter vector theta is W (F x Kp) then b (Kp). */
typedef struct {
    int N, F, K, Kp;
    size_t *rowptr;        /* N + 1 */
    int32_t *col;          /* nnz */
    float *val;            /* nnz */
    size_t *colptr;        /* F + 1 */
    int32_t *row;          /* nnz */
    float *cval;           /* nnz */
    const int32_t *y;      /* N */
    double lambda;         /* 1 / (C N) */
    float *R;              /* N x Kp: (softmax - onehot) / N */
    double *li;            /* N: cross-entropy of example i */
    double *wsq;           /* F: ||W[f]||² */
    double *gbs;           /* Kp: the bias gradient's sums */
    int *fsplit;           /* nth + 1: features of thread ith, balanced by entries */
    int nth;
    const float *theta;    /* the current call's point and gradient */
    float *grad;
} ng_prob;

static void prob_free(ng_prob *p) {
    free(p->rowptr);
    free(p->col);
    free(p->val);
    free(p->colptr);
    free(p->row);
    free(p->cval);
    free(p->R);
    free(p->li);
    free(p->wsq);
    free(p->gbs);
    free(p->fsplit);
}

NG_INLINE void axpy_row(float *restrict z, const float *restrict w, float a, int Kp) {
    for (int k = 0; k < Kp; k += 8)
        for (int j = 0; j < 8; j++) z[k + j] += a * w[k + j];
}

/* Rows [r0, r1): logits, loss and R. */
NG_CLONES static void fwd_rows(ng_prob *p, size_t r0, size_t r1) {
    const int K = p->K, Kp = p->Kp;
    const float *W = p->theta, *b = W + (size_t)p->F * Kp;
    const float invN = 1.0f / (float)p->N;
    for (size_t i = r0; i < r1; i++) {
        float *z = p->R + i * Kp;
        memcpy(z, b, sizeof(float) * Kp);
        for (size_t e = p->rowptr[i]; e < p->rowptr[i + 1]; e++)
            axpy_row(z, W + (size_t)p->col[e] * Kp, p->val[e], Kp);
        float mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        const int y = p->y[i];
        const double zy = (double)z[y] - mx; /* before exp, which may underflow for a bad miss */
        double sum = 0;
        for (int k = 0; k < K; k++) {
            z[k] = expf(z[k] - mx);
            sum += z[k];
        }
        p->li[i] = log(sum) - zy;
        const float s = (float)(1.0 / sum) * invN;
        for (int k = 0; k < K; k++) z[k] *= s;
        for (int k = K; k < Kp; k++) z[k] = 0;
        z[y] -= invN;
    }
}

/* Features [f0, f1): gradient rows lambda·W[f] + sum_i x_if R[i], and ||W[f]||². */
NG_CLONES static void bwd_features(ng_prob *p, size_t f0, size_t f1) {
    const int Kp = p->Kp;
    const float lam = (float)p->lambda;
    for (size_t f = f0; f < f1; f++) {
        const float *w = p->theta + f * Kp;
        float *g = p->grad + f * Kp;
        double sq = 0;
        for (int k = 0; k < Kp; k++) {
            g[k] = lam * w[k];
            sq += (double)w[k] * w[k];
        }
        p->wsq[f] = sq;
        for (size_t e = p->colptr[f]; e < p->colptr[f + 1]; e++)
            axpy_row(g, p->R + (size_t)p->row[e] * Kp, p->cval[e], Kp);
    }
}

static void job_fwd(void *ctx, int ith, int nth) {
    ng_prob *p = ctx;
    size_t r0, r1;
    slm_pool_slice((size_t)p->N, ith, nth, &r0, &r1);
    fwd_rows(p, r0, r1);
}

static void job_bwd(void *ctx, int ith, int nth) {
    ng_prob *p = ctx;
    (void)nth;
    bwd_features(p, (size_t)p->fsplit[ith], (size_t)p->fsplit[ith + 1]);
}

/* Builds the CSC transpose and the scratch once the CSR, N, F, K, y and lambda are set. */
static bool prob_finish(ng_prob *p, int nth) {
    size_t nnz = p->rowptr[p->N];
    p->Kp = (p->K + 7) / 8 * 8;
    p->colptr = calloc((size_t)p->F + 1, sizeof *p->colptr);
    p->row = malloc((nnz ? nnz : 1) * sizeof *p->row);
    p->cval = malloc((nnz ? nnz : 1) * sizeof *p->cval);
    p->R = alloc_floats((size_t)p->N * p->Kp);
    p->li = malloc((size_t)p->N * sizeof *p->li);
    p->wsq = malloc((size_t)p->F * sizeof *p->wsq);
    p->gbs = malloc((size_t)p->Kp * sizeof *p->gbs);
    p->fsplit = malloc(((size_t)nth + 1) * sizeof *p->fsplit);
    if (!p->colptr || !p->row || !p->cval || !p->R || !p->li || !p->wsq || !p->gbs || !p->fsplit) return false;
    for (size_t e = 0; e < nnz; e++) p->colptr[p->col[e] + 1]++;
    for (int f = 0; f < p->F; f++) p->colptr[f + 1] += p->colptr[f];
    size_t *next = malloc(((size_t)p->F + 1) * sizeof *next);
    if (!next) return false;
    memcpy(next, p->colptr, ((size_t)p->F + 1) * sizeof *next);
    for (int i = 0; i < p->N; i++)
        for (size_t e = p->rowptr[i]; e < p->rowptr[i + 1]; e++) {
            size_t at = next[p->col[e]]++;
            p->row[at] = i, p->cval[at] = p->val[e];
        }
    free(next);
    /* thread t owns the features where the cost (entries + features) crosses t/nth of the total */
    p->nth = nth;
    double total = (double)nnz + p->F;
    p->fsplit[0] = 0, p->fsplit[nth] = p->F;
    for (int t = 1; t < nth; t++) {
        double goal = total * t / nth;
        int lo = p->fsplit[t - 1], hi = p->F;
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if ((double)p->colptr[mid] + mid < goal) lo = mid + 1;
            else hi = mid;
        }
        p->fsplit[t] = lo;
    }
    return true;
}

/* f(theta) = (sum CE + ||W||²/(2C)) / N and its gradient. */
static double prob_eval(ng_prob *p, slm_pool *pool, const float *theta, float *grad) {
    p->theta = theta, p->grad = grad;
    slm_pool_run(pool, job_fwd, p);
    slm_pool_run(pool, job_bwd, p);
    const int K = p->K, Kp = p->Kp;
    double *gb = p->gbs;
    float *g = grad + (size_t)p->F * Kp;
    for (int k = 0; k < Kp; k++) gb[k] = 0;
    for (int i = 0; i < p->N; i++)
        for (int k = 0; k < K; k++) gb[k] += p->R[(size_t)i * Kp + k];
    for (int k = 0; k < Kp; k++) g[k] = (float)gb[k];
    double ce = 0, sq = 0;
    for (int i = 0; i < p->N; i++) ce += p->li[i];
    for (int f = 0; f < p->F; f++) sq += p->wsq[f];
    return ce / p->N + 0.5 * p->lambda * sq;
}

/* ---- L-BFGS ------------------------------------------------------------------------------- */

/* Passes over the parameter vector (length a multiple of 16), in blocks of NG_VBLOCK floats split
 * across threads, each fusing an update with the dot product the recursion needs next. A block's
 * sums run in 16 lanes, then the lanes and the blocks are added in order: the results do not
 * depend on the thread count. */
#define NG_VBLOCK 8192

enum { V_NEG, V_AXPY, V_SCALE, V_STEP, V_PAIR, V_MAXABS };

typedef struct {
    int op;
    size_t n;
    float *q, *q2;                 /* written */
    const float *a, *b, *c, *e;    /* read */
    float k;
    double *part;                  /* 3 per block */
} ng_vop;

/* V_NEG:   q = -a;        r0 = b·q (b may be NULL)
 * V_AXPY:  q += k a;      r0 = b·q
 * V_SCALE: q *= k;        r0 = b·q
 * V_STEP:  q = a + k b
 * V_PAIR:  q = a - b, q2 = c - e;  r0 = q·q2, r1 = q2·q2, r2 = max |c|
 * V_MAXABS: r2 = max |a| */
NG_CLONES static void vblock(const ng_vop *v, size_t i0, size_t i1, double *r) {
    float l0[16] = {0}, l1[16] = {0}, l2[16] = {0};
    float *restrict q = v->q, *restrict q2 = v->q2;
    const float *a = v->a, *b = v->b, *c = v->c, *e = v->e, k = v->k;
    for (size_t i = i0; i < i1; i += 16) {
        switch (v->op) {
        case V_NEG:
            for (int l = 0; l < 16; l++) q[i + l] = -a[i + l];
            break;
        case V_AXPY:
            for (int l = 0; l < 16; l++) q[i + l] += k * a[i + l];
            break;
        case V_SCALE:
            for (int l = 0; l < 16; l++) q[i + l] *= k;
            break;
        case V_STEP:
            for (int l = 0; l < 16; l++) q[i + l] = a[i + l] + k * b[i + l];
            break;
        case V_PAIR:
            for (int l = 0; l < 16; l++) {
                float s = a[i + l] - b[i + l], y = c[i + l] - e[i + l], ac = fabsf(c[i + l]);
                q[i + l] = s, q2[i + l] = y;
                l0[l] += s * y, l1[l] += y * y, l2[l] = ac > l2[l] ? ac : l2[l];
            }
            break;
        case V_MAXABS:
            for (int l = 0; l < 16; l++) {
                float aa = fabsf(a[i + l]);
                l2[l] = aa > l2[l] ? aa : l2[l];
            }
            break;
        }
        if (b && v->op <= V_SCALE)
            for (int l = 0; l < 16; l++) l0[l] += b[i + l] * q[i + l];
    }
    double s0 = 0, s1 = 0, m2 = 0;
    for (int l = 0; l < 16; l++) s0 += l0[l], s1 += l1[l], m2 = l2[l] > m2 ? l2[l] : m2;
    r[0] = s0, r[1] = s1, r[2] = m2;
}

static void job_vec(void *ctx, int ith, int nth) {
    ng_vop *v = ctx;
    size_t b0, b1, nb = (v->n + NG_VBLOCK - 1) / NG_VBLOCK;
    slm_pool_slice(nb, ith, nth, &b0, &b1);
    for (size_t bl = b0; bl < b1; bl++) {
        size_t e = (bl + 1) * NG_VBLOCK;
        vblock(v, bl * NG_VBLOCK, e < v->n ? e : v->n, v->part + 3 * bl);
    }
}

/* Runs one pass; returns r0 (r1, r2 into out1, out2 when not NULL). */
static double vrun(slm_pool *pool, ng_vop v, double *part, double *out1, double *out2) {
    v.part = part;
    slm_pool_run(pool, job_vec, &v);
    double s0 = 0, s1 = 0, m2 = 0;
    for (size_t bl = 0; bl < (v.n + NG_VBLOCK - 1) / NG_VBLOCK; bl++)
        s0 += part[3 * bl], s1 += part[3 * bl + 1], m2 = part[3 * bl + 2] > m2 ? part[3 * bl + 2] : m2;
    if (out1) *out1 = s1;
    if (out2) *out2 = m2;
    return s0;
}

/* Minimises prob_eval from theta (P floats, P a multiple of 16, updated in place). Stops after
 * max_iter iterations, when max |g| <= tol, or when the line search can no longer decrease f
 * (float precision). */
static slm_status lbfgs(ng_prob *p, slm_pool *pool, float *theta, size_t P, int max_iter, float tol,
                        slm_ngram_progress cb, void *ctx, slm_err *err) {
    const int M = NG_LBFGS_M;
    float *mem = alloc_floats(P * (4 + 2 * (size_t)M));
    double *part = malloc(3 * ((P + NG_VBLOCK - 1) / NG_VBLOCK) * sizeof *part);
    if (!mem || !part) {
        free(mem);
        free(part);
        return slm_err_set(err, SLM_ERR_NOMEM, "ngram: no memory for the solver (%zu parameters)", P);
    }
    float *x = theta, *g = mem, *d = g + P, *xn = d + P, *gn = xn + P, *S = gn + P, *Y = S + (size_t)M * P;
    double rho[NG_LBFGS_M], alpha[NG_LBFGS_M], gamma = 1, gmax;
    int hn = 0, head = 0; /* history pairs held, slot of the oldest */
#define HS(h) (S + (size_t)((head + (h)) % M) * P)
#define HY(h) (Y + (size_t)((head + (h)) % M) * P)
#define HI(h) ((head + (h)) % M)
    double f = prob_eval(p, pool, x, g);
    vrun(pool, (ng_vop){.op = V_MAXABS, .n = P, .a = g}, part, NULL, &gmax);
    for (int it = 1; it <= max_iter && gmax > tol; it++) {
        /* d = -H g by the two-loop recursion run on -g, each update fused with the next dot */
        double gd, dot = vrun(pool, (ng_vop){.op = V_NEG, .n = P, .q = d, .a = g, .b = hn ? HS(hn - 1) : g}, part,
                              NULL, NULL);
        if (hn) {
            for (int h = hn - 1; h >= 0; h--) {
                alpha[HI(h)] = rho[HI(h)] * dot;
                dot = vrun(pool, (ng_vop){.op = V_AXPY, .n = P, .q = d, .a = HY(h), .k = (float)-alpha[HI(h)],
                                          .b = h ? HS(h - 1) : NULL}, part, NULL, NULL);
            }
            dot = vrun(pool, (ng_vop){.op = V_SCALE, .n = P, .q = d, .k = (float)gamma, .b = HY(0)}, part, NULL, NULL);
            for (int h = 0; h < hn; h++) {
                float cf = (float)(alpha[HI(h)] - rho[HI(h)] * dot);
                dot = vrun(pool, (ng_vop){.op = V_AXPY, .n = P, .q = d, .a = HS(h), .k = cf,
                                          .b = h + 1 < hn ? HY(h + 1) : g}, part, NULL, NULL);
            }
        }
        gd = dot;
        if (!(gd < 0)) { /* not a descent direction: forget the history, steepest descent */
            hn = 0;
            gd = vrun(pool, (ng_vop){.op = V_NEG, .n = P, .q = d, .a = g, .b = g}, part, NULL, NULL);
        }
        double step = hn ? 1.0 : 1.0 / sqrt(-gd), fn = f;
        bool ok = false;
        for (int ls = 0; ls < 30 && !ok; ls++) {
            vrun(pool, (ng_vop){.op = V_STEP, .n = P, .q = xn, .a = x, .k = (float)step, .b = d}, part, NULL, NULL);
            fn = prob_eval(p, pool, xn, gn);
            if (isfinite(fn) && fn <= f + 1e-4 * step * gd) ok = true;
            else { /* the quadratic through f, f'(0) and fn, kept within [0.1, 0.5] of the step */
                double qs = isfinite(fn) ? -gd * step * step / (2 * (fn - f - gd * step)) : 0.1 * step;
                step = fmin(fmax(qs, 0.1 * step), 0.5 * step);
            }
        }
        if (!ok) break;
        /* the new pair goes to the slot after the newest (the oldest's, when the history is full) */
        int slot = (head + hn) % M;
        double yy, sy = vrun(pool, (ng_vop){.op = V_PAIR, .n = P, .q = S + (size_t)slot * P, .q2 = Y + (size_t)slot * P,
                                            .a = xn, .b = x, .c = gn, .e = g}, part, &yy, &gmax);
        if (hn == M) head = (head + 1) % M, hn--; /* the oldest pair was overwritten */
        if (sy > 1e-12 * yy && yy > 0) rho[slot] = 1.0 / sy, gamma = sy / yy, hn++;
        float *t = x;
        x = xn, xn = t;
        t = g, g = gn, gn = t;
        double fold = f;
        f = fn;
        if (cb) cb(ctx, it, max_iter, f);
        if (fold - f <= 1e-14 * fmax(fabs(f), 1.0)) break;
    }
#undef HS
#undef HY
#undef HI
    if (x != theta) memcpy(theta, x, P * sizeof *x);
    free(mem);
    free(part);
    return SLM_OK;
}

/* ---- training ----------------------------------------------------------------------------- */

typedef struct {
    ng_map map;
    int32_t *df, *last, *slot; /* per key id: texts holding it, last text seen, its entry there */
    size_t cap_ids;
    int32_t *e_id, *e_cnt;     /* per (text, distinct key): key id, count */
    size_t ne, cap_e;
    int doc;
    bool nomem;
} ng_counter;

/* Grows the arrays ps[0..na) of elem-byte items to hold need items (capacity *cap, doubling). */
static bool grow(void **ps[], int na, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    for (int i = 0; i < na; i++) {
        void *q = realloc(*ps[i], c * elem);
        if (!q) return false; /* the arrays already grown keep their (larger) blocks */
        *ps[i] = q;
    }
    *cap = c;
    return true;
}

static void emit_count(void *ctx, const char *k, size_t n) {
    ng_counter *c = ctx;
    if (c->nomem) return;
    bool is_new;
    int32_t id = map_intern(&c->map, k, n, &is_new);
    void **per_id[3] = {(void **)&c->df, (void **)&c->last, (void **)&c->slot};
    void **per_e[2] = {(void **)&c->e_id, (void **)&c->e_cnt};
    if (id < 0 || !grow(per_id, 3, &c->cap_ids, (size_t)id + 1, sizeof(int32_t))) {
        c->nomem = true;
        return;
    }
    if (is_new) c->df[id] = 0, c->last[id] = -1;
    if (c->last[id] == c->doc) {
        c->e_cnt[c->slot[id]]++;
        return;
    }
    if (!grow(per_e, 2, &c->cap_e, c->ne + 1, sizeof(int32_t))) {
        c->nomem = true;
        return;
    }
    c->last[id] = c->doc, c->df[id]++, c->slot[id] = (int32_t)c->ne;
    c->e_id[c->ne] = id, c->e_cnt[c->ne] = 1, c->ne++;
}

typedef struct {
    const char *p;
    size_t n;
    int32_t df, id;
} ng_kref;

static int cmp_key(const void *a, const void *b) {
    const ng_kref *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static int cmp_df_key(const void *a, const void *b) {
    const ng_kref *x = a, *y = b;
    if (x->df != y->df) return x->df > y->df ? -1 : 1;
    return cmp_key(a, b);
}

typedef struct {
    int32_t id, cnt;
} ng_pair;

static int cmp_pair(const void *a, const void *b) { return cmp_i32(a, b); }

slm_ngram *slm_ngram_train(const char *const *texts, const size_t *lens, const int32_t *labels, int n, int K,
                           const slm_ngram_opts *o, slm_ngram_progress cb, void *ctx, slm_err *err) {
    slm_ngram_opts def;
    if (!o) slm_ngram_opts_default(&def), o = &def;
    if (n < 1) return slm_err_set(err, SLM_ERR_ARG, "ngram: n = %d training texts (need at least 1)", n), NULL;
    if (K < 2) return slm_err_set(err, SLM_ERR_ARG, "ngram: K = %d labels (need at least 2)", K), NULL;
    if (K > 1 << 20) return slm_err_set(err, SLM_ERR_ARG, "ngram: K = %d labels (at most %d)", K, 1 << 20), NULL;
    if (!texts || !labels) return slm_err_set(err, SLM_ERR_ARG, "ngram: NULL texts or labels"), NULL;
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= K)
            return slm_err_set(err, SLM_ERR_ARG, "ngram: label %d of text %d is outside [0, K = %d)", labels[i], i,
                               K), NULL;
        if (!texts[i] && (lens && lens[i]))
            return slm_err_set(err, SLM_ERR_ARG, "ngram: text %d is NULL with length %zu", i, lens[i]), NULL;
    }
    if (check_ana(o, err)) return NULL;
    if (o->min_df < 1 || o->min_df > n)
        return slm_err_set(err, SLM_ERR_ARG, "ngram: min_df %d is outside [1, n = %d]", o->min_df, n), NULL;
    if (o->max_features < 0)
        return slm_err_set(err, SLM_ERR_ARG, "ngram: max_features %d is negative", o->max_features), NULL;
    if (!(o->C > 0) || !isfinite(o->C))
        return slm_err_set(err, SLM_ERR_ARG, "ngram: C %g must be positive and finite", (double)o->C), NULL;
    if (!(o->tol >= 0)) return slm_err_set(err, SLM_ERR_ARG, "ngram: tol %g is negative", (double)o->tol), NULL;
    int max_iter = o->max_iter > 0 ? o->max_iter : NG_DEFAULT_ITER;

    ng_ana ana = {o->word_max, o->char_min, o->char_max};
    ng_counter c;
    memset(&c, 0, sizeof c);
    ng_prob p;
    memset(&p, 0, sizeof p);
    slm_ngram *m = NULL;
    slm_pool *pool = NULL;
    size_t *docptr = NULL;
    int32_t *remap = NULL;
    ng_kref *kept = NULL;
    ng_pair *pairs = NULL;
    int32_t *ids = NULL, *cnts = NULL;
    void *scratch = NULL;
    size_t scratch_cap = 0, max_row = 0;
    bool nomem = true;

    /* count: every text's distinct n-grams and their document frequencies */
    docptr = malloc(((size_t)n + 1) * sizeof *docptr);
    if (!docptr || !map_init(&c.map, 1 << 16)) goto fail;
    docptr[0] = 0;
    for (int i = 0; i < n; i++) {
        const char *t = texts[i] ? texts[i] : "";
        size_t len = lens ? lens[i] : strlen(t), sb = scratch_bytes(len);
        if (!sb) goto fail;
        if (sb > scratch_cap) {
            free(scratch);
            if (!(scratch = malloc(sb))) goto fail;
            scratch_cap = sb;
        }
        c.doc = i;
        extract(&ana, t, len, scratch, emit_count, &c);
        if (c.nomem) goto fail;
        docptr[i + 1] = c.ne;
        if (c.ne - docptr[i] > max_row) max_row = c.ne - docptr[i];
    }
    free(scratch), scratch = NULL;

    /* vocabulary: df >= min_df, the max_features of highest df, in key order */
    int nk = 0;
    if (!(kept = malloc(((size_t)c.map.n + 1) * sizeof *kept)) ||
        !(remap = malloc(((size_t)c.map.n + 1) * sizeof *remap)))
        goto fail;
    for (int32_t id = 0; id < c.map.n; id++) {
        remap[id] = -1;
        if (c.df[id] < o->min_df) continue;
        kept[nk].p = map_key(&c.map, id, &kept[nk].n);
        kept[nk].df = c.df[id], kept[nk].id = id, nk++;
    }
    if (o->max_features > 0 && nk > o->max_features) {
        qsort(kept, (size_t)nk, sizeof *kept, cmp_df_key);
        nk = o->max_features;
    }
    if (nk == 0) {
        nomem = false;
        slm_err_set(err, SLM_ERR_ARG, "ngram: the %d training texts give no features (word_max %d, char %d..%d, "
                    "min_df %d)", n, o->word_max, o->char_min, o->char_max, o->min_df);
        goto fail;
    }
    qsort(kept, (size_t)nk, sizeof *kept, cmp_key);
    if (!(m = model_new(nk, K, &ana))) goto fail;
    for (int f = 0; f < nk; f++) {
        bool is_new;
        if (map_intern(&m->keys, kept[f].p, kept[f].n, &is_new) != f) goto fail;
        remap[kept[f].id] = f;
        m->word[f] = kept[f].p[0] == 'w';
        m->idf[f] = (float)(log((1.0 + n) / (1.0 + kept[f].df)) + 1.0);
    }
    free(kept), kept = NULL;

    /* the tf-idf rows (CSR), features ascending in each row */
    p.N = n, p.F = nk, p.K = K, p.y = labels, p.lambda = 1.0 / ((double)o->C * n);
    size_t nnz = 0;
    for (size_t e = 0; e < c.ne; e++) nnz += remap[c.e_id[e]] >= 0;
    p.rowptr = malloc(((size_t)n + 1) * sizeof *p.rowptr);
    p.col = malloc((nnz ? nnz : 1) * sizeof *p.col);
    p.val = malloc((nnz ? nnz : 1) * sizeof *p.val);
    pairs = malloc((max_row + 1) * sizeof *pairs);
    ids = malloc((max_row + 1) * sizeof *ids);
    cnts = malloc((max_row + 1) * sizeof *cnts);
    if (!p.rowptr || !p.col || !p.val || !pairs || !ids || !cnts) goto fail;
    p.rowptr[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t r = 0, at = p.rowptr[i];
        for (size_t e = docptr[i]; e < docptr[i + 1]; e++)
            if (remap[c.e_id[e]] >= 0) pairs[r].id = remap[c.e_id[e]], pairs[r].cnt = c.e_cnt[e], r++;
        qsort(pairs, r, sizeof *pairs, cmp_pair);
        for (size_t j = 0; j < r; j++) ids[j] = pairs[j].id, cnts[j] = pairs[j].cnt;
        row_values(m, ids, cnts, r, p.val + at);
        memcpy(p.col + at, ids, r * sizeof *ids);
        p.rowptr[i + 1] = at + r;
    }
    free(pairs), pairs = NULL;
    free(ids), ids = NULL;
    free(cnts), cnts = NULL;
    free(docptr), docptr = NULL;
    free(remap), remap = NULL;
    map_free(&c.map);
    free(c.df), free(c.last), free(c.slot), free(c.e_id), free(c.e_cnt);
    memset(&c, 0, sizeof c);

    /* solve */
    int nth = o->n_threads > 0 ? o->n_threads : slm_cpu_count();
    if (nth > 1) {
        slm_err perr;
        if (!(pool = slm_pool_new(nth, &perr))) nth = 1;
    }
    if (!prob_finish(&p, pool ? slm_pool_size(pool) : 1)) goto fail;
    size_t P = ((size_t)nk * m->Kp + m->Kp + 15) / 16 * 16;
    float *theta = alloc_floats(P);
    if (!theta) goto fail;
    slm_status s = lbfgs(&p, pool, theta, P, max_iter, o->tol, cb, ctx, err);
    if (!s) {
        memcpy(m->W, theta, (size_t)nk * m->Kp * sizeof(float));
        memcpy(m->b, theta + (size_t)nk * m->Kp, (size_t)m->Kp * sizeof(float));
    }
    free(theta);
    slm_pool_free(pool);
    prob_free(&p);
    if (s) {
        slm_ngram_free(m);
        return NULL;
    }
    return m;

fail:
    if (nomem) slm_err_set(err, SLM_ERR_NOMEM, "ngram: out of memory while training on %d texts", n);
    free(scratch);
    free(docptr);
    free(remap);
    free(kept);
    free(pairs);
    free(ids);
    free(cnts);
    map_free(&c.map);
    free(c.df), free(c.last), free(c.slot), free(c.e_id), free(c.e_cnt);
    slm_pool_free(pool);
    prob_free(&p);
    slm_ngram_free(m);
    return NULL;
}

double slm_ngram_objective(const slm_ngram *m, const char *const *texts, const size_t *lens, const int32_t *labels,
                           int n, float C, const float *W, const float *b, float *gW, float *gb) {
    if (!m || !texts || !labels || n < 1 || !(C > 0) || !W || !b) return NAN;
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= m->K) return NAN;
    ng_prob p;
    memset(&p, 0, sizeof p);
    p.N = n, p.F = m->F, p.K = m->K, p.y = labels, p.lambda = 1.0 / ((double)C * n);
    const int Kp = m->Kp;
    size_t P = (size_t)m->F * Kp + Kp, cap = 0;
    float *theta = alloc_floats(P), *grad = alloc_floats(P);
    double f = NAN;
    p.rowptr = malloc(((size_t)n + 1) * sizeof *p.rowptr);
    if (!theta || !grad || !p.rowptr) goto done;
    p.rowptr[0] = 0;
    for (int i = 0; i < n; i++) {
        ng_row row;
        const char *t = texts[i] ? texts[i] : "";
        if (!text_row(m, t, lens ? lens[i] : strlen(t), &row)) goto done;
        size_t at = p.rowptr[i], r = row.n;
        if (at + r > cap) {
            size_t nc = 2 * (at + r) + 64;
            int32_t *c2 = realloc(p.col, nc * sizeof *c2);
            if (c2) p.col = c2;
            float *v2 = realloc(p.val, nc * sizeof *v2);
            if (v2) p.val = v2;
            if (!c2 || !v2) {
                row_free(&row);
                goto done;
            }
            cap = nc;
        }
        memcpy(p.col + at, row.ids, r * sizeof *row.ids);
        memcpy(p.val + at, row.val, r * sizeof *row.val);
        p.rowptr[i + 1] = at + r;
        row_free(&row);
    }
    if (!p.col && !(p.col = malloc(sizeof *p.col))) goto done;
    if (!p.val && !(p.val = malloc(sizeof *p.val))) goto done;
    if (!prob_finish(&p, 1)) goto done;
    for (int fi = 0; fi < m->F; fi++) memcpy(theta + (size_t)fi * Kp, W + (size_t)fi * m->K, sizeof(float) * m->K);
    memcpy(theta + (size_t)m->F * Kp, b, sizeof(float) * m->K);
    f = prob_eval(&p, NULL, theta, grad);
    for (int fi = 0; fi < m->F && gW; fi++) memcpy(gW + (size_t)fi * m->K, grad + (size_t)fi * Kp, sizeof(float) * m->K);
    if (gb) memcpy(gb, grad + (size_t)m->F * Kp, sizeof(float) * m->K);
done:
    free(theta);
    free(grad);
    prob_free(&p);
    return f;
}

/* ---- GGUF --------------------------------------------------------------------------------- */

slm_status slm_ngram_add(slm_gguf_writer *w, const slm_ngram *m, slm_err *err) {
    if (!w || !m) return slm_err_set(err, SLM_ERR_ARG, "ngram: NULL writer or model");
    const size_t F = (size_t)m->F, K = (size_t)m->K;
    slm_ngram *mm = (slm_ngram *)m; /* the F16 copy is a buffer m owns for the writer */
    float *tmp = malloc(K * sizeof *tmp);
    if (!mm->w16) mm->w16 = malloc(F * K * sizeof *mm->w16);
    if (!mm->w16 || !tmp) {
        free(tmp);
        return slm_err_set(err, SLM_ERR_NOMEM, "ngram: out of memory");
    }
    for (size_t f = 0; f < F; f++) { /* clamped to F16's range: a huge weight stays finite */
        for (size_t k = 0; k < K; k++) tmp[k] = fminf(fmaxf(m->W[f * m->Kp + k], -65504.0f), 65504.0f);
        slm_f32_to_f16_row(mm->w16 + f * K, tmp, K);
    }
    free(tmp);
    const char **ptrs = malloc(F * sizeof *ptrs);
    size_t *lens = malloc(F * sizeof *lens);
    if (!ptrs || !lens) {
        free(ptrs);
        free(lens);
        return slm_err_set(err, SLM_ERR_NOMEM, "ngram: out of memory");
    }
    for (size_t f = 0; f < F; f++) ptrs[f] = map_key(&m->keys, (int32_t)f, &lens[f]);
    slm_status s = slm_gguf_set_u32(w, "slm.ngram.word_max", (uint32_t)m->ana.word_max);
    if (!s) s = slm_gguf_set_u32(w, "slm.ngram.char_min", (uint32_t)m->ana.char_min);
    if (!s) s = slm_gguf_set_u32(w, "slm.ngram.char_max", (uint32_t)m->ana.char_max);
    if (!s) s = slm_gguf_set_arr_str(w, "slm.ngram.features", ptrs, lens, F);
    free(ptrs);
    free(lens);
    if (s) return slm_err_set(err, s, "ngram: cannot add the slm.ngram.* keys (%s)", slm_status_name(s));
    uint64_t ne_w[2] = {K, F}, ne_b[1] = {K}, ne_i[1] = {F};
    s = slm_gguf_add_tensor(w, "ngram.weight", SLM_GGML_F16, 2, ne_w, m->w16, err);
    if (!s) s = slm_gguf_add_tensor(w, "ngram.bias", SLM_GGML_F32, 1, ne_b, m->b, err);
    if (!s) s = slm_gguf_add_tensor(w, "ngram.idf", SLM_GGML_F32, 1, ne_i, m->idf, err);
    return s;
}

/* The tensor name with type one of (t1, t2) and shape [ne0, ne1] (ne1 = 1: a vector). */
static const slm_gguf_tensor *want_tensor(const slm_gguf *g, const char *name, uint32_t t1, uint32_t t2,
                                          uint64_t ne0, uint64_t ne1, slm_err *err) {
    const slm_gguf_tensor *t = slm_gguf_find_tensor(g, name);
    if (!t) return slm_err_set(err, SLM_ERR_FORMAT, "%s: n-gram part without tensor '%s'", slm_gguf_name(g), name), NULL;
    if (t->type != t1 && t->type != t2) {
        const char *tn = slm_ggml_type_name(t->type);
        slm_err_set(err, SLM_ERR_FORMAT, "%s: tensor '%s' has type %s (expected %s)", slm_gguf_name(g), name,
                    tn ? tn : "?", slm_ggml_type_name(t1));
        return NULL;
    }
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1) {
        slm_err_set(err, SLM_ERR_FORMAT, "%s: tensor '%s' is [%llu, %llu, %llu, %llu]; expected [%llu, %llu]%s",
                    slm_gguf_name(g), name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                    (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (unsigned long long)ne0,
                    (unsigned long long)ne1, ne1 > 1 ? " (labels, features)" : "");
        return NULL;
    }
    return t;
}

static slm_status want_u32(const slm_gguf *g, const char *key, uint32_t lo, uint32_t hi, int *out, slm_err *err) {
    uint32_t v;
    slm_status s = slm_gguf_get_u32(g, key, &v, err);
    if (s) return s;
    if (v < lo || v > hi)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: %s is %u (expected %u..%u)", slm_gguf_name(g), key, v, lo, hi);
    *out = (int)v;
    return SLM_OK;
}

slm_status slm_ngram_read(const slm_gguf *g, int K, slm_ngram **out, slm_err *err) {
    *out = NULL;
    if (!slm_gguf_find_kv(g, "slm.ngram.features")) return SLM_OK;
    if (K < 2) return slm_err_set(err, SLM_ERR_ARG, "ngram: K = %d labels (need at least 2)", K);
    const char *name = slm_gguf_name(g);
    const slm_gguf_kv *kv;
    slm_status s = slm_gguf_get_arr(g, "slm.ngram.features", SLM_GGUF_STRING, &kv, err);
    if (s) return s;
    if (kv->arr_n < 1 || kv->arr_n > INT32_MAX / 16)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: slm.ngram.features has %llu keys (expected 1..%d)", name,
                           (unsigned long long)kv->arr_n, INT32_MAX / 16);
    ng_ana a;
    if ((s = want_u32(g, "slm.ngram.word_max", 0, NG_MAX_WORD_N, &a.word_max, err)) ||
        (s = want_u32(g, "slm.ngram.char_max", 0, NG_MAX_CHAR_N, &a.char_max, err)) ||
        (s = want_u32(g, "slm.ngram.char_min", a.char_max ? 1 : 0, a.char_max ? (uint32_t)a.char_max : NG_MAX_CHAR_N,
                      &a.char_min, err)))
        return s;
    const int F = (int)kv->arr_n;
    const slm_gguf_tensor *tw, *tb, *ti;
    if (!(tw = want_tensor(g, "ngram.weight", SLM_GGML_F16, SLM_GGML_F32, (uint64_t)K, (uint64_t)F, err)) ||
        !(tb = want_tensor(g, "ngram.bias", SLM_GGML_F32, SLM_GGML_F32, (uint64_t)K, 1, err)) ||
        !(ti = want_tensor(g, "ngram.idf", SLM_GGML_F32, SLM_GGML_F32, (uint64_t)F, 1, err)))
        return SLM_ERR_FORMAT;
    slm_ngram *m = model_new(F, K, &a);
    if (!m) return slm_err_set(err, SLM_ERR_NOMEM, "%s: no memory for the n-gram part (%d features)", name, F);
    for (int f = 0; f < F; f++) {
        slm_gguf_str k = kv->arr_strs[f];
        if (k.len < 3 || (k.ptr[0] != 'w' && k.ptr[0] != 'c') || k.ptr[1] != ':') {
            slm_ngram_free(m);
            return slm_err_set(err, SLM_ERR_FORMAT, "%s: slm.ngram.features[%d] '%.*s' is not \"w:...\" or \"c:...\"",
                               name, f, (int)(k.len < 40 ? k.len : 40), k.ptr);
        }
        bool is_new;
        int32_t id = map_intern(&m->keys, k.ptr, k.len, &is_new);
        if (id < 0 || !is_new) {
            slm_ngram_free(m);
            if (id < 0) return slm_err_set(err, SLM_ERR_NOMEM, "%s: no memory for the n-gram keys", name);
            return slm_err_set(err, SLM_ERR_FORMAT, "%s: slm.ngram.features[%d] '%.*s' repeats key %d", name, f,
                               (int)(k.len < 40 ? k.len : 40), k.ptr, id);
        }
        m->word[f] = k.ptr[0] == 'w';
    }
    memcpy(m->idf, ti->data, (size_t)F * sizeof(float));
    memcpy(m->b, tb->data, (size_t)K * sizeof(float));
    if (tw->type == SLM_GGML_F32) {
        for (int f = 0; f < F; f++)
            memcpy(m->W + (size_t)f * m->Kp, (const char *)tw->data + (size_t)f * K * sizeof(float), K * sizeof(float));
    } else {
        uint16_t *row = malloc((size_t)K * sizeof *row);
        if (!row) {
            slm_ngram_free(m);
            return slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", name);
        }
        for (int f = 0; f < F; f++) {
            memcpy(row, (const char *)tw->data + (size_t)f * K * sizeof *row, (size_t)K * sizeof *row);
            slm_f16_to_f32_row(m->W + (size_t)f * m->Kp, row, (size_t)K);
        }
        free(row);
    }
    *out = m;
    return SLM_OK;
}
