/* pretokenize.c: the pre-split regexes through PCRE2 (see pretokenize.h).
 *
 * GPT-2's pattern is
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * with \s spelled out as Unicode's White_Space property. PCRE2's own \s under PCRE2_UCP differs
 * from it (it takes U+180E); White_Space is what Hugging Face's tokenizers and llama.cpp use, and
 * the vectors in data/tokenizer-vectors come from them.
 *
 * PCRE2_MATCH_INVALID_UTF makes matching total over arbitrary bytes: an invalid UTF-8 sequence
 * is never part of a match (a negative lookahead at one succeeds), and the search skips over it.
 * Every valid character starts some alternative, so the bytes between two matches are exactly
 * the invalid ones; the iterator returns each such run as a piece of its own, and so covers
 * every byte once, in order.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenize.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* Unicode White_Space: U+0009..U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000 (the body of a character class). */
#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
           "\\x{202F}\\x{205F}\\x{3000}"

static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d"
    "| ?\\p{L}+"
    "| ?\\p{N}+"
    "| ?[^" WS "\\p{L}\\p{N}]+"
    "|[" WS "]+(?![^" WS "])"
    "|[" WS "]+";

/* Llama 3 and Qwen2, from llama.cpp's src/llama-vocab.cpp (regex_exprs of
 * LLAMA_VOCAB_PRE_TYPE_LLAMA3 / _QWEN2), which spell tokenizer.json's case-insensitive
 * (?i:'s|'t|'re|'ve|'m|'ll|'d) as explicit classes; \s and \S are White_Space as above:
 *   (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+
 *   |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Qwen2 has \p{N} (one digit) where Llama 3 has \p{N}{1,3}. */
#define LLAMA3_HEAD "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])" \
                    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
#define LLAMA3_TAIL "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*" \
                    "|[" WS "]*[\\r\\n]+" \
                    "|[" WS "]+(?![^" WS "])" \
                    "|[" WS "]+"
static const char llama3_pattern[] = LLAMA3_HEAD "|\\p{N}{1,3}" LLAMA3_TAIL;
static const char qwen2_pattern[] = LLAMA3_HEAD "|\\p{N}" LLAMA3_TAIL;

/* StarCoder/SmolLM: llama.cpp splits with two regexes in turn, \p{N} (each digit a piece, the
 * runs between them pieces), then GPT-2's within each run. One pattern does the same: a digit
 * alone; GPT-2's alternatives without " ?\p{N}+" (no run holds a digit); and its whitespace
 * lookahead treating a digit like the end of the run ((?![^\s\p{N}]) for (?!\S)). */
static const char smollm_pattern[] =
    "\\p{N}"
    "|'s|'t|'re|'ve|'m|'ll|'d"
    "| ?\\p{L}+"
    "| ?[^" WS "\\p{L}\\p{N}]+"
    "|[" WS "]+(?![^" WS "\\p{N}])"
    "|[" WS "]+";

/* tokenizer.ggml.pre names as llama.cpp's llama_vocab::impl::load maps them. */
static const struct {
    const char *name;
    slm_pre_kind kind;
    int ignore_merges, add_bos;
} pre_names[] = {
    {"gpt-2", SLM_PRE_GPT2, 0, 0},         {"phi-2", SLM_PRE_GPT2, 0, 0},
    {"jina-es", SLM_PRE_GPT2, 0, 0},       {"jina-de", SLM_PRE_GPT2, 0, 0},
    {"gigachat", SLM_PRE_GPT2, 0, 0},      {"jina-v2-es", SLM_PRE_GPT2, 0, 0},
    {"jina-v2-de", SLM_PRE_GPT2, 0, 0},    {"a.x-4.0", SLM_PRE_GPT2, 0, 0},
    {"mellum", SLM_PRE_GPT2, 0, 0},        {"modern-bert", SLM_PRE_GPT2, 0, 0},
    {"jina-v1-en", SLM_PRE_GPT2, 0, 0},    {"jina-v2-code", SLM_PRE_GPT2, 0, 0},
    {"roberta-bpe", SLM_PRE_GPT2, 0, 0},   {"mpt", SLM_PRE_GPT2, 0, 0},
    {"olmo", SLM_PRE_GPT2, 0, 0},          {"jais", SLM_PRE_GPT2, 0, 0},
    {"trillion", SLM_PRE_GPT2, 0, 0},      {"granite-docling", SLM_PRE_GPT2, 0, 0},
    {"exaone4", SLM_PRE_GPT2, 0, 0},
    {"llama3", SLM_PRE_LLAMA3, 1, 1},      {"llama-v3", SLM_PRE_LLAMA3, 1, 1},
    {"llama-bpe", SLM_PRE_LLAMA3, 1, 1},   {"falcon3", SLM_PRE_LLAMA3, 1, 1},
    {"falcon-h1", SLM_PRE_LLAMA3, 1, 1},   {"pixtral", SLM_PRE_LLAMA3, 1, 1},
    {"midm-2.0", SLM_PRE_LLAMA3, 1, 1},    {"lfm2", SLM_PRE_LLAMA3, 1, 1},
    {"dbrx", SLM_PRE_LLAMA3, 0, 0},        {"smaug-bpe", SLM_PRE_LLAMA3, 0, 0},
    {"qwen2", SLM_PRE_QWEN2, 0, 0},        {"deepseek-r1-qwen", SLM_PRE_QWEN2, 0, 0},
    {"kormo", SLM_PRE_QWEN2, 0, 0},        {"f2llmv2", SLM_PRE_QWEN2, 0, 0},
    {"megrez", SLM_PRE_QWEN2, 0, 0},       {"stablelm2", SLM_PRE_QWEN2, 0, 0},
    {"hunyuan", SLM_PRE_QWEN2, 0, 0},      {"solar-open", SLM_PRE_QWEN2, 0, 0},
    {"smollm", SLM_PRE_SMOLLM, 0, 0},      {"starcoder", SLM_PRE_SMOLLM, 0, 0},
    {"refact", SLM_PRE_SMOLLM, 0, 0},      {"command-r", SLM_PRE_SMOLLM, 0, 0},
    {"codeshell", SLM_PRE_SMOLLM, 0, 0},   {"exaone", SLM_PRE_SMOLLM, 0, 0},
    {"minerva-7b", SLM_PRE_SMOLLM, 0, 0},  {"mellum2", SLM_PRE_SMOLLM, 0, 0},
};

int slm_pretok_lookup(const char *name, size_t len, slm_pre_info *info) {
    for (size_t i = 0; i < sizeof pre_names / sizeof pre_names[0]; i++)
        if (strlen(pre_names[i].name) == len && !memcmp(pre_names[i].name, name, len)) {
            *info = (slm_pre_info){pre_names[i].kind, pre_names[i].ignore_merges,
                                   pre_names[i].add_bos};
            return 1;
        }
    return 0;
}

struct slm_pretok {
    pcre2_code *code;
    int jit; /* JIT compilation succeeded */
};

slm_pretok *slm_pretok_new(slm_err *err) { return slm_pretok_new_kind(SLM_PRE_GPT2, err); }

slm_pretok *slm_pretok_new_kind(slm_pre_kind kind, slm_err *err) {
    static const char *const patterns[] = {gpt2_pattern, llama3_pattern, qwen2_pattern,
                                           smollm_pattern};
    static const char *const names[] = {"GPT-2", "Llama 3", "Qwen2", "SmolLM"};
    if ((unsigned)kind >= sizeof patterns / sizeof patterns[0]) {
        slm_err_set(err, SLM_ERR_ARG, "tokenizer: unknown pre-split kind %d", (int)kind);
        return NULL;
    }
    slm_pretok *p = calloc(1, sizeof *p);
    if (!p) {
        slm_err_set(err, SLM_ERR_NOMEM, "tokenizer: out of memory compiling the pre-split regex");
        return NULL;
    }
    int code;
    PCRE2_SIZE off;
    p->code = pcre2_compile((PCRE2_SPTR)patterns[kind], PCRE2_ZERO_TERMINATED,
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
    if (!p->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        slm_err_set(err, SLM_ERR_UNSUPPORTED,
                    "tokenizer: PCRE2 cannot compile the %s pre-split regex at offset %zu: %s "
                    "(needs PCRE2 >= 10.34 with Unicode support)",
                    names[kind], (size_t)off, (const char *)msg);
        free(p);
        return NULL;
    }
    p->jit = pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE) == 0;
    return p;
}

void slm_pretok_free(slm_pretok *p) {
    if (!p) return;
    pcre2_code_free(p->code);
    free(p);
}

slm_status slm_pretok_iter_init(slm_pretok_iter *it, const slm_pretok *p, const char *text,
                                size_t len, slm_err *err) {
    memset(it, 0, sizeof *it);
    it->p = p;
    it->text = text;
    it->len = len;
    it->md = pcre2_match_data_create_from_pattern(p->code, NULL);
    if (!it->md) return slm_err_set(err, SLM_ERR_NOMEM, "tokenizer: out of memory (match data)");
    return SLM_OK;
}

void slm_pretok_iter_done(slm_pretok_iter *it) {
    if (it->md) pcre2_match_data_free(it->md);
    it->md = NULL;
}

/* Finds the next match at or after it->pos: 1 found ([*s, *e)), 0 none, -1 error. */
static int find(slm_pretok_iter *it, size_t *s, size_t *e, slm_err *err) {
    pcre2_match_data *md = it->md;
    int rc = pcre2_match(it->p->code, (PCRE2_SPTR)it->text, it->len, it->pos, 0, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  /* the interpreter has no such limit */
        rc = pcre2_match(it->p->code, (PCRE2_SPTR)it->text, it->len, it->pos, PCRE2_NO_JIT, md,
                         NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        slm_err_set(err, SLM_ERR_FORMAT, "tokenizer: pre-split failed at byte %zu: %s", it->pos,
                    (const char *)msg);
        return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *s = ov[0];
    *e = ov[1];
    if (*e <= *s || *s < it->pos || *e > it->len) { /* the pattern never matches empty */
        slm_err_set(err, SLM_ERR_FORMAT, "tokenizer: pre-split made an empty piece at byte %zu",
                    it->pos);
        return -1;
    }
    return 1;
}

int slm_pretok_iter_next(slm_pretok_iter *it, size_t *start, size_t *n, slm_err *err) {
    if (it->pos >= it->len) return 0;
    size_t s, e;
    if (it->next_end) { /* a match found after a gap that was returned last time */
        s = it->next_start;
        e = it->next_end;
        it->next_end = 0;
    } else {
        int rc = find(it, &s, &e, err);
        if (rc < 0) return -1;
        if (rc == 0) { /* only invalid bytes remain */
            s = it->len;
            e = it->len;
        }
        if (s > it->pos) { /* a gap of invalid bytes first; keep the match for next time */
            *start = it->pos;
            *n = s - it->pos;
            it->pos = s;
            if (e > s) {
                it->next_start = s;
                it->next_end = e;
            }
            return 1;
        }
    }
    *start = s;
    *n = e - s;
    it->pos = e;
    return 1;
}
