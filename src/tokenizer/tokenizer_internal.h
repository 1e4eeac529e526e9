/* tokenizer_internal.h: what the tokenizer's .c files share — the object, its tables, and the
 * helpers each file provides. Private to src/tokenizer (and its unit test); the interface is
 * tokenizer.h.
 *
 * Two id spaces:
 *   tokens   ids [0, n_vocab): the vocabulary as stored in GGUF (text in GPT-2's byte-to-unicode
 *            mapped form, a type each).
 *   symbols  ids [0, n_sym) with n_sym >= n_vocab: every byte string BPE can build. Tokens come
 *            first (same ids); after them "virtual" symbols for strings that a merge names or
 *            produces but the vocabulary lacks (possible in foreign files, never in ours). A
 *            virtual symbol that survives to the output is written as its byte tokens, which is
 *            what llama.cpp does for merge results missing from the vocabulary.
 * BPE works on raw bytes: a symbol is keyed by the bytes it stands for (not the mapped text), so
 * a merge is the table entry (left symbol, right symbol) -> (rank, result symbol).
 */
#ifndef SLM_TOKENIZER_INTERNAL_H
#define SLM_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

/* ---- byte_unicode.c: GPT-2's byte <-> unicode mapping ---- */

/* The code point GPT-2 assigns to byte b (printable Latin-1 bytes map to themselves, the other
 * 68 to U+0100..U+0143 in byte order). */
uint32_t slm_bu_byte_to_cp(uint8_t b);
/* The byte whose code point is cp, or -1 when cp is not one of the 256. */
int slm_bu_cp_to_byte(uint32_t cp);
/* Writes the UTF-8 of byte b's code point to out (1 or 2 bytes) and returns its length. */
size_t slm_bu_encode_byte(uint8_t b, char out[2]);
/* Maps raw[0..n) to its mapped UTF-8 text in out (capacity 2n); returns the length. */
size_t slm_bu_encode(const char *raw, size_t n, char *out);
/* Maps text[0..n) (mapped form) back to raw bytes in out (capacity n). Returns the raw length,
 * or -1 when text is not valid UTF-8 or holds a code point outside the mapping. */
long slm_bu_decode(const char *text, size_t n, char *out);

/* ---- hashing (vocab.c) ---- */

uint64_t slm_tok_hash_bytes(const void *p, size_t n);
static inline uint64_t slm_tok_hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}
static inline uint64_t slm_tok_pair_key(int32_t l, int32_t r) {
    return ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
}

/* ---- the object (vocab.c builds it, the others read it) ---- */

#define SLM_TOK_PAIR_EMPTY UINT64_MAX

typedef struct {
    const char *ptr;
    size_t len;
} slm_tok_str;

typedef struct {
    uint64_t key;        /* slm_tok_pair_key(left, right) */
    int32_t rank, res;
} slm_tok_pair;

struct slm_tokenizer {
    int32_t n_vocab;
    int32_t n_sym;
    int32_t sym_cap;

    /* tokens, ids [0, n_vocab) */
    char *text;          /* stored texts (mapped form), concatenated */
    uint64_t *text_off;  /* [n_vocab + 1] */
    int32_t *type;       /* [n_vocab] SLM_TOKEN_* */
    char *dec;           /* what each token decodes to, concatenated */
    uint64_t *dec_off;   /* [n_vocab + 1] */

    /* symbols, ids [0, n_sym): raw bytes */
    char *raw;
    size_t raw_len, raw_cap;
    uint64_t *raw_off;   /* [sym_cap]; symbol i is raw[raw_off[i] .. raw_off[i] + raw_n[i]) */
    uint32_t *raw_n;     /* [sym_cap]; 0 for tokens BPE can never build (control, unmappable) */

    /* raw bytes -> symbol id; open addressing, -1 empty */
    int32_t *str_slots;
    size_t str_cap;      /* power of two */
    size_t str_used;

    /* merges: (left, right) symbol pair -> rank and result; open addressing, one 16-byte slot
     * per entry so a lookup touches one cache line */
    slm_tok_pair *pairs; /* key SLM_TOK_PAIR_EMPTY when empty */
    size_t pair_cap;     /* power of two */
    size_t pair_used;

    /* merges as stored ("left right", mapped form), for saving */
    char *merge_text;
    uint64_t *merge_off; /* [n_merges + 1] */
    int32_t n_merges;

    int32_t byte_sym[256]; /* the symbol each byte starts as */
    int32_t byte_tok[256]; /* the token of each byte, -1 when the vocabulary has none */

    int32_t bos, eos, pad, unk;
    bool add_bos;          /* tokenizer.ggml.add_bos_token */
    char pre[32];          /* tokenizer.ggml.pre to write back */

    slm_pretok *pretok;    /* compiled pre-split regex (read-only after build; BPE only) */
    bool ignore_merges;    /* BPE: a piece that is a whole token is that token (llama3) */

    /* SentencePiece ("llama") vocabularies; see spm.c. kind is SLM_TOK_KIND_*. */
    int kind;
    bool add_space_prefix; /* tokenizer.ggml.add_space_prefix (SPM default true) */
    float *score;          /* [n_vocab] tokenizer.ggml.scores (SPM only) */
    int32_t *text_slots;   /* SPM: stored text -> id of the tokens encode may produce
                            * (NORMAL, USER_DEFINED); open addressing, -1 empty */
    size_t text_cap;       /* power of two */
};

enum { SLM_TOK_KIND_BPE = 0, SLM_TOK_KIND_SPM = 1 };

/* Builds a tokenizer from its stored form: token texts (mapped form) with optional types
 * (NULL: all NORMAL) and merges "left right". Special ids are -1, add_bos false, pre "gpt-2";
 * the caller sets them. what names the source in messages ("x.gguf"). Errors name the key:
 * duplicate token, merge without a space, sizes over INT32_MAX. */
slm_status slm_tok_build(const slm_tok_str *tokens, size_t n_tokens, const int32_t *types,
                         const slm_tok_str *merges, size_t n_merges, const char *what,
                         slm_tokenizer **out, slm_err *err);

/* The symbol whose raw bytes are raw[0..n), or -1 (vocab.c). */
int32_t slm_tok_sym_find(const slm_tokenizer *t, const char *raw, size_t n);

/* ---- spm.c: SentencePiece-style vocabularies ---- */

/* Builds an SPM tokenizer from token texts (with U+2581 for spaces, "<0xNN>" byte tokens),
 * types (NULL: all NORMAL) and scores. Special ids are -1, add_bos and add_space_prefix true;
 * the caller sets them. Errors name the key (duplicate token, sizes). */
slm_status slm_tok_build_spm(const slm_tok_str *tokens, size_t n_tokens, const int32_t *types,
                             const float *scores, const char *what, slm_tokenizer **out,
                             slm_err *err);

/* Encodes as llama.cpp's llm_tokenizer_spm (see spm.c); same contract as slm_tokenizer_encode. */
slm_status slm_tok_spm_encode(const slm_tokenizer *t, const char *text, size_t len, int add_bos,
                              int32_t **ids, size_t *n_ids, slm_err *err);

/* The same with the caller deciding whether "▁" goes before non-empty text (special.c). */
slm_status slm_tok_spm_encode_ex(const slm_tokenizer *t, const char *text, size_t len, int add_bos,
                                 int prefix, int32_t **ids, size_t *n_ids, slm_err *err);

/* Looks up the merge of symbols (l, r); returns its rank, or -1 (and *res untouched) if none. */
static inline int32_t slm_tok_pair_find(const slm_tokenizer *t, int32_t l, int32_t r, int32_t *res) {
    uint64_t key = slm_tok_pair_key(l, r);
    size_t mask = t->pair_cap - 1;
    for (size_t i = (size_t)slm_tok_hash_u64(key) & mask;; i = (i + 1) & mask) {
        const slm_tok_pair *p = &t->pairs[i];
        if (p->key == key) {
            *res = p->res;
            return p->rank;
        }
        if (p->key == SLM_TOK_PAIR_EMPTY) return -1;
    }
}

/* ---- bpe_encode.c ---- */

typedef struct {
    int32_t *v;
    size_t n, cap;
} slm_tok_ids;

/* Appends id to ids (grown by doubling). */
slm_status slm_tok_ids_push(slm_tok_ids *ids, int32_t id);

/* A candidate merge in the heap path: the symbols at position left and next[left], which were
 * lid and rid when pushed, merge into res. */
typedef struct {
    int32_t rank, left, lid, rid, res;
} slm_tok_cand;

/* Scratch space for encoding pieces; reused across pieces of one call, then freed. */
typedef struct {
    int32_t *sym, *prev, *next, *rank, *res; /* [cap] per position in the piece */
    size_t cap;
    slm_tok_cand *heap;
    size_t heap_n, heap_cap;
} slm_tok_work;

void slm_tok_work_free(slm_tok_work *w);

/* Pieces of at least this many bytes take the heap path (O(n log n)); shorter ones rescan an
 * array of pair ranks per merge (O(n^2) but fastest for the short pieces of ordinary text). */
#define SLM_TOK_HEAP_FROM 24

/* Encodes one pre-split piece of raw bytes, appending its token ids to out. heap_from chooses
 * the path as above (the two paths give identical results; the test checks it). */
slm_status slm_tok_encode_piece(const slm_tokenizer *t, slm_tok_work *w, const uint8_t *bytes,
                                size_t n, size_t heap_from, slm_tok_ids *out);

#endif
