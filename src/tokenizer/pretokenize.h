/* pretokenize.h: GPT-2's pre-split of text into pieces (private to src/tokenizer and its test).
 *
 * BPE never merges across a piece boundary. A splitter holds the compiled regex (per tokenizer
 * object, read-only once built, so many threads may split with one splitter); an iterator holds
 * one call's match state. Every byte of the input lands in exactly one piece, in order: bytes
 * that are not valid UTF-8 (which the regex never matches) form pieces of their own, one per
 * maximal run.
 */
#ifndef SLM_TOKENIZER_PRETOKENIZE_H
#define SLM_TOKENIZER_PRETOKENIZE_H

#include <stddef.h>

#include "core/error.h"

typedef struct slm_pretok slm_pretok;

/* The pre-split rules slm knows, by what llama.cpp's tokenizer.ggml.pre maps them to. */
typedef enum {
    SLM_PRE_GPT2 = 0, /* GPT-2's regex */
    SLM_PRE_LLAMA3,   /* Llama 3 ("llama-bpe"): digits in 1-3 groups, \r\n-aware whitespace */
    SLM_PRE_QWEN2,    /* Qwen2/2.5/3: as Llama 3 but every digit alone */
    SLM_PRE_SMOLLM,   /* StarCoder/SmolLM: every digit alone, then GPT-2's regex */
} slm_pre_kind;

typedef struct {
    slm_pre_kind kind;
    int ignore_merges; /* llama.cpp's ignore_merges for this name (llama3 family) */
    int add_bos;       /* llama.cpp's add_bos default for this name (before the GGUF key) */
} slm_pre_info;

/* Maps a tokenizer.ggml.pre name to its rules; 0 when slm does not know it. */
int slm_pretok_lookup(const char *name, size_t len, slm_pre_info *info);

/* Compiles GPT-2's pattern (JIT-compiled when PCRE2 has JIT). */
slm_pretok *slm_pretok_new(slm_err *err);
/* Compiles the pattern of a kind. */
slm_pretok *slm_pretok_new_kind(slm_pre_kind kind, slm_err *err);
void slm_pretok_free(slm_pretok *p);

typedef struct {
    const slm_pretok *p;
    void *md;            /* pcre2_match_data, this iterator's own */
    const char *text;
    size_t len;
    size_t pos;          /* first byte not yet returned */
    size_t next_start;   /* a match found past pos (after a gap of invalid bytes) ... */
    size_t next_end;     /* ... and its end; next_end == 0: none pending */
} slm_pretok_iter;

slm_status slm_pretok_iter_init(slm_pretok_iter *it, const slm_pretok *p, const char *text,
                                size_t len, slm_err *err);
/* The next piece as [*start, *start + *n). Returns 1 for a piece, 0 at the end, -1 on a PCRE2
 * failure (err says which; not expected for any input). */
int slm_pretok_iter_next(slm_pretok_iter *it, size_t *start, size_t *n, slm_err *err);
void slm_pretok_iter_done(slm_pretok_iter *it);

#endif
