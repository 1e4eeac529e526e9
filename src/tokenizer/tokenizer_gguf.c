/* tokenizer_gguf.c: the tokenizer in GGUF — load from tokenizer.ggml.* keys, save into a writer,
 * and the vocab-only file the CLI writes.
 *
 * "llama" (SentencePiece) vocabularies: tokenizer.ggml.tokens, tokenizer.ggml.scores (required
 * here, though llama.cpp defaults them to 0: without scores nothing sensible merges),
 * tokenizer.ggml.token_type, the special ids (llama.cpp's defaults: unk 0, bos 1, eos 2),
 * tokenizer.ggml.add_bos_token (default true) and tokenizer.ggml.add_space_prefix (default
 * true). tokenizer.ggml.pre is ignored for them, as llama.cpp does.
 *
 * "gpt2" vocabularies:
 * Keys, as llama.cpp reads them for a "gpt2" (byte-level BPE) vocabulary (src/llama-vocab.cpp):
 *   tokenizer.ggml.model        "gpt2" (required; anything else is SLM_ERR_UNSUPPORTED)
 *   tokenizer.ggml.pre          pre-tokenizer (pretokenize.c lists the names: GPT-2's regex,
 *                               Llama 3's, Qwen2's, SmolLM's and their aliases; others are
 *                               SLM_ERR_UNSUPPORTED). Absent or "default": GPT-2's regex.
 *   tokenizer.ggml.tokens       string array, mapped form, no duplicates (required)
 *   tokenizer.ggml.token_type   int32 array, at least one per token (optional: all NORMAL)
 *   tokenizer.ggml.merges       string array "left right" (required; llama.cpp refuses gpt2
 *                               without it)
 *   tokenizer.ggml.{bos,eos,unknown,padding}_token_id   uint32 (optional; must be in range)
 *   tokenizer.ggml.add_bos_token                        bool (optional; llama.cpp's default for
 *                               gpt2 is false)
 * llama.cpp also requires add_bos_token=true to come with a bos id; save always writes both.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

static slm_status load_special(const slm_gguf *g, const char *key, int32_t n_vocab, int32_t *id,
                               slm_err *err) {
    uint32_t v = UINT32_MAX;
    slm_status st = slm_gguf_opt_u32(g, key, &v, err);
    if (st != SLM_OK) return st;
    if (v == UINT32_MAX) return SLM_OK; /* absent */
    if (v >= (uint32_t)n_vocab)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: %s = %u is outside the vocabulary (%d tokens)",
                           slm_gguf_name(g), key, v, n_vocab);
    *id = (int32_t)v;
    return SLM_OK;
}

/* Reads the special ids and flags every model has; frees t and returns NULL on error. */
static slm_tokenizer *load_specials(const slm_gguf *g, slm_tokenizer *t, slm_err *err) {
    bool add_bos = t->add_bos, add_prefix = t->add_space_prefix;
    if (load_special(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos, err) != SLM_OK ||
        load_special(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos, err) != SLM_OK ||
        load_special(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk, err) != SLM_OK ||
        load_special(g, "tokenizer.ggml.padding_token_id", t->n_vocab, &t->pad, err) != SLM_OK ||
        slm_gguf_opt_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, err) != SLM_OK ||
        slm_gguf_opt_bool(g, "tokenizer.ggml.add_space_prefix", &add_prefix, err) != SLM_OK) {
        slm_tokenizer_free(t);
        return NULL;
    }
    t->add_bos = add_bos;
    t->add_space_prefix = add_prefix;
    return t;
}

/* Copies a string array's entries (pointers into the map). NULL and err set on failure. */
static slm_tok_str *str_array(const slm_gguf *g, const slm_gguf_kv *kv, slm_err *err) {
    size_t n = (size_t)kv->arr_n;
    slm_tok_str *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) {
        slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory loading the tokenizer", slm_gguf_name(g));
        return NULL;
    }
    for (size_t i = 0; i < n; i++) v[i] = (slm_tok_str){kv->arr_strs[i].ptr, (size_t)kv->arr_strs[i].len};
    return v;
}

/* tokenizer.ggml.token_type, one per token (NULL and SLM_OK when absent; *out malloc'd). */
static slm_status load_types(const slm_gguf *g, size_t n_tok, int32_t **out, slm_err *err) {
    const char *name = slm_gguf_name(g);
    *out = NULL;
    const slm_gguf_kv *type_kv = slm_gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (!type_kv) return SLM_OK;
    if (type_kv->type != SLM_GGUF_ARRAY || type_kv->arr_n < n_tok)
        return slm_err_set(err, SLM_ERR_FORMAT,
                           "%s: tokenizer.ggml.token_type must be an integer array with one entry "
                           "per token (%zu), found %s of %llu", name, n_tok,
                           type_kv->type == SLM_GGUF_ARRAY ? "an array" : slm_gguf_type_name(type_kv->type),
                           (unsigned long long)(type_kv->type == SLM_GGUF_ARRAY ? type_kv->arr_n : 1));
    int32_t *types = malloc((size_t)type_kv->arr_n * sizeof *types + 1);
    if (!types) return slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory loading the tokenizer", name);
    if (slm_gguf_arr_copy_i32(g, type_kv, types, err) != SLM_OK) {
        free(types);
        return err ? err->code : SLM_ERR_FORMAT;
    }
    *out = types;
    return SLM_OK;
}

/* A SentencePiece vocabulary: tokens, scores (required), token types. */
static slm_tokenizer *load_spm(const slm_gguf *g, slm_err *err) {
    const char *name = slm_gguf_name(g);
    const slm_gguf_kv *tok_kv, *score_kv;
    if (slm_gguf_get_arr(g, "tokenizer.ggml.tokens", SLM_GGUF_STRING, &tok_kv, err) != SLM_OK)
        return NULL;
    size_t n_tok = (size_t)tok_kv->arr_n;
    if (n_tok == 0 || n_tok > INT32_MAX / 4) {
        slm_err_set(err, SLM_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %zu entries", name, n_tok);
        return NULL;
    }
    if (!slm_gguf_find_kv(g, "tokenizer.ggml.scores")) {
        slm_err_set(err, SLM_ERR_FORMAT,
                    "%s: missing key 'tokenizer.ggml.scores' (a 'llama' (SentencePiece) "
                    "vocabulary needs one score per token to merge by)", name);
        return NULL;
    }
    if (slm_gguf_get_arr(g, "tokenizer.ggml.scores", SLM_GGUF_FLOAT32, &score_kv, err) != SLM_OK)
        return NULL;
    if (score_kv->arr_n < n_tok) {
        slm_err_set(err, SLM_ERR_FORMAT, "%s: tokenizer.ggml.scores has %llu entries for %zu tokens",
                    name, (unsigned long long)score_kv->arr_n, n_tok);
        return NULL;
    }
    slm_tokenizer *t = NULL;
    int32_t *types = NULL;
    float *scores = malloc((size_t)score_kv->arr_n * sizeof *scores + 1);
    slm_tok_str *toks = str_array(g, tok_kv, err);
    if (!scores || !toks) {
        if (!scores) slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory loading the tokenizer", name);
        goto done;
    }
    if (slm_gguf_arr_copy_f32(g, score_kv, scores, err) != SLM_OK) goto done;
    if (load_types(g, n_tok, &types, err) != SLM_OK) goto done;
    if (slm_tok_build_spm(toks, n_tok, types, scores, name, &t, err) != SLM_OK) goto done;
    /* llama.cpp's defaults for "llama": bos 1, eos 2, unk 0 (when in range) */
    t->unk = 0;
    t->bos = n_tok > 1 ? 1 : -1;
    t->eos = n_tok > 2 ? 2 : -1;
    t = load_specials(g, t, err);
done:
    free(scores);
    free(toks);
    free(types);
    return t;
}

slm_tokenizer *slm_tokenizer_load(const slm_gguf *g, slm_err *err) {
    const char *name = slm_gguf_name(g);
    slm_gguf_str model, pre = {"gpt-2", 5};
    if (slm_gguf_get_str(g, "tokenizer.ggml.model", &model, err) != SLM_OK) return NULL;
    if (slm_gguf_str_eq(model, "llama")) return load_spm(g, err);
    if (!slm_gguf_str_eq(model, "gpt2")) {
        slm_err_set(err, SLM_ERR_UNSUPPORTED,
                    "%s: tokenizer.ggml.model '%.*s' is not supported (slm reads 'gpt2', "
                    "byte-level BPE, and 'llama', SentencePiece)", name,
                    (int)(model.len > 64 ? 64 : model.len), model.ptr);
        return NULL;
    }
    /* Absent or "default" pre: GPT-2's regex. (llama.cpp's "default" chains four regexes and
     * warns that quality degrades; files that lack the key predate it, and slm's own files
     * always name theirs.) */
    slm_pre_info pinfo = {SLM_PRE_GPT2, 0, 0};
    if (slm_gguf_find_kv(g, "tokenizer.ggml.pre")) {
        if (slm_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err) != SLM_OK) return NULL;
        if (slm_gguf_str_eq(pre, "default")) {
            pre = (slm_gguf_str){"gpt-2", 5};
        } else if (!slm_pretok_lookup(pre.ptr, (size_t)pre.len, &pinfo) ||
                   pre.len >= sizeof ((slm_tokenizer *)0)->pre) {
            slm_err_set(err, SLM_ERR_UNSUPPORTED,
                        "%s: tokenizer.ggml.pre '%.*s' is not supported (slm knows GPT-2's, "
                        "Llama 3's 'llama-bpe', Qwen2's 'qwen2', SmolLM's 'smollm' rules and the "
                        "names llama.cpp treats alike)",
                        name, (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
            return NULL;
        }
    }

    const slm_gguf_kv *tok_kv, *merge_kv;
    if (slm_gguf_get_arr(g, "tokenizer.ggml.tokens", SLM_GGUF_STRING, &tok_kv, err) != SLM_OK)
        return NULL;
    if (slm_gguf_get_arr(g, "tokenizer.ggml.merges", SLM_GGUF_STRING, &merge_kv, err) != SLM_OK)
        return NULL;
    size_t n_tok = (size_t)tok_kv->arr_n, n_merge = (size_t)merge_kv->arr_n;
    if (n_tok == 0 || n_tok > INT32_MAX / 4) {
        slm_err_set(err, SLM_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %zu entries", name, n_tok);
        return NULL;
    }

    slm_tokenizer *t = NULL;
    int32_t *types = NULL;
    slm_tok_str *toks = malloc(n_tok * sizeof *toks);
    slm_tok_str *merges = malloc((n_merge ? n_merge : 1) * sizeof *merges);
    if (!toks || !merges) {
        slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory loading the tokenizer", name);
        goto done;
    }
    for (size_t i = 0; i < n_tok; i++)
        toks[i] = (slm_tok_str){tok_kv->arr_strs[i].ptr, (size_t)tok_kv->arr_strs[i].len};
    for (size_t i = 0; i < n_merge; i++)
        merges[i] = (slm_tok_str){merge_kv->arr_strs[i].ptr, (size_t)merge_kv->arr_strs[i].len};

    if (load_types(g, n_tok, &types, err) != SLM_OK) goto done;

    if (slm_tok_build(toks, n_tok, types, merges, n_merge, name, &t, err) != SLM_OK) goto done;
    memcpy(t->pre, pre.ptr, pre.len);
    t->pre[pre.len] = 0;
    t->ignore_merges = pinfo.ignore_merges;
    t->add_bos = pinfo.add_bos;
    if (pinfo.kind != SLM_PRE_GPT2) {
        slm_pretok *p = slm_pretok_new_kind(pinfo.kind, err);
        if (!p) {
            slm_tokenizer_free(t);
            t = NULL;
            goto done;
        }
        slm_pretok_free(t->pretok);
        t->pretok = p;
    }
    t = load_specials(g, t, err);
done:
    free(toks);
    free(merges);
    free(types);
    return t;
}

slm_tokenizer *slm_tokenizer_load_file(const char *path, slm_err *err) {
    slm_gguf *g = slm_gguf_open(path, err);
    if (!g) return NULL;
    slm_tokenizer *t = slm_tokenizer_load(g, err); /* copies everything it keeps */
    slm_gguf_close(g);
    return t;
}

slm_status slm_tokenizer_save(const slm_tokenizer *t, slm_gguf_writer *w, slm_err *err) {
    size_t n = (size_t)t->n_vocab, m = (size_t)t->n_merges;
    const char **strs = malloc((n > m ? n : m) * sizeof *strs + 1);
    size_t *lens = malloc((n > m ? n : m) * sizeof *lens + 1);
    slm_status st = SLM_ERR_NOMEM;
    if (!strs || !lens) goto done;
    int spm = t->kind == SLM_TOK_KIND_SPM;
    if (slm_gguf_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2") != SLM_OK ||
        slm_gguf_set_str(w, "tokenizer.ggml.pre", t->pre) != SLM_OK)
        goto done;
    if (spm && (slm_gguf_set_arr_f32(w, "tokenizer.ggml.scores", t->score, n) != SLM_OK ||
                slm_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix) != SLM_OK))
        goto done;
    for (size_t i = 0; i < n; i++) {
        strs[i] = t->text + t->text_off[i];
        lens[i] = (size_t)(t->text_off[i + 1] - t->text_off[i]);
    }
    if (slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, lens, n) != SLM_OK ||
        slm_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", t->type, n) != SLM_OK)
        goto done;
    for (size_t i = 0; i < m; i++) {
        strs[i] = t->merge_text + t->merge_off[i];
        lens[i] = (size_t)(t->merge_off[i + 1] - t->merge_off[i]);
    }
    if (!spm && slm_gguf_set_arr_str(w, "tokenizer.ggml.merges", strs, lens, m) != SLM_OK) goto done;
    struct { const char *key; int32_t id; } sp[] = {
        {"tokenizer.ggml.bos_token_id", t->bos},
        {"tokenizer.ggml.eos_token_id", t->eos},
        {"tokenizer.ggml.unknown_token_id", t->unk},
        {"tokenizer.ggml.padding_token_id", t->pad},
    };
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        if (sp[i].id >= 0 && slm_gguf_set_u32(w, sp[i].key, (uint32_t)sp[i].id) != SLM_OK) goto done;
    /* add_bos without a bos id makes llama.cpp refuse the file */
    if (slm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos && t->bos >= 0) != SLM_OK)
        goto done;
    st = SLM_OK;
done:
    free(strs);
    free(lens);
    if (st != SLM_OK)
        return slm_err_set(err, st, "tokenizer: out of memory saving %d tokens", t->n_vocab);
    return SLM_OK;
}

slm_status slm_tokenizer_save_file(const slm_tokenizer *t, const char *path, slm_err *err) {
    slm_gguf_writer *w = slm_gguf_writer_new();
    if (!w) return slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
    slm_status st = SLM_OK;
    if (slm_gguf_set_str(w, "general.architecture", "llama") != SLM_OK ||
        slm_gguf_set_str(w, "general.name", "slm tokenizer") != SLM_OK ||
        slm_gguf_set_u32(w, "llama.vocab_size", (uint32_t)t->n_vocab) != SLM_OK)
        st = slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
    if (st == SLM_OK) st = slm_tokenizer_save(t, w, err);
    if (st == SLM_OK) st = slm_gguf_writer_write(w, path, err);
    slm_gguf_writer_free(w);
    return st;
}
