/* generate.c: the generation loop with stop strings and streaming (see generate.h). */
#include "generate/generate.h"

#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "model/forward.h"

/* Bytes generated but not yet handed to the callback, for stop-string matching. */
typedef struct {
    char *buf;
    size_t len, cap;
} pending_text;

static int pending_append(pending_text *p, const char *s, size_t n) {
    if (p->len + n + 1 > p->cap) {
        size_t cap = (p->len + n + 1) * 2;
        char *nb = realloc(p->buf, cap);
        if (!nb) return -1;
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    return 0;
}

/* Looks for a stop string in pending text. Returns the index where one starts (or -1), and in
 * *safe how many leading bytes cannot be part of any stop string. */
static long find_stop(const pending_text *p, const char *const *stop, int n_stop, size_t *safe) {
    long first = -1;
    for (int i = 0; i < n_stop; i++) {
        size_t sl = strlen(stop[i]);
        if (!sl) continue;
        for (size_t at = 0; at + sl <= p->len; at++)
            if (!memcmp(p->buf + at, stop[i], sl)) {
                if (first < 0 || (long)at < first) first = (long)at;
                break;
            }
    }
    if (first >= 0) {
        *safe = (size_t)first;
        return first;
    }
    /* hold back the longest suffix that is a prefix of some stop string */
    size_t hold = 0;
    for (int i = 0; i < n_stop; i++) {
        size_t sl = strlen(stop[i]);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > hold; k--)
            if (k <= p->len && !memcmp(p->buf + p->len - k, stop[i], k)) {
                hold = k;
                break;
            }
    }
    *safe = p->len - hold;
    return -1;
}

slm_status slm_generate(const slm_model *m, const slm_tokenizer *tok, const char *prompt, size_t len,
                        const slm_sampler_params *sp, const slm_generate_opts *o, slm_pool *pool,
                        slm_text_callback cb, void *cb_ctx, slm_generate_stats *stats, slm_err *err) {
    memset(stats, 0, sizeof *stats);
    stats->stopped_by = "length";
    int ctx_len = o->ctx_len > 0 && o->ctx_len < m->cfg.ctx_len ? o->ctx_len : m->cfg.ctx_len;
    if (o->max_tokens < 0) return slm_err_set(err, SLM_ERR_ARG, "max_tokens must not be negative");

    int32_t *ids = NULL;
    size_t n_ids = 0;
    slm_status s = o->chat ? slm_tokenizer_encode_special(tok, prompt, len, slm_tokenizer_add_bos_default(tok),
                                                          &ids, &n_ids, err)
                           : slm_tokenizer_encode(tok, prompt, len, 1, &ids, &n_ids, err);
    if (s) return slm_err_prefix(err, "encoding the prompt");
    if (n_ids == 0) {
        /* no BOS in this vocabulary and an empty prompt: nothing to condition on */
        free(ids);
        return slm_err_set(err, SLM_ERR_ARG, "the prompt is empty and the vocabulary has no BOS token");
    }
    if ((long)n_ids > ctx_len && o->truncate) {
        int room = o->max_tokens < ctx_len / 2 ? o->max_tokens : ctx_len / 2;
        size_t keep_head = ids[0] == slm_tokenizer_bos(tok) ? 1 : 0;
        size_t keep = (size_t)(ctx_len - room) - keep_head;
        memmove(ids + keep_head, ids + n_ids - keep, keep * sizeof *ids);
        n_ids = keep_head + keep;
    }
    if ((long)n_ids > ctx_len) {
        free(ids);
        return slm_err_set(err, SLM_ERR_RANGE, "the prompt is %zu tokens; the context holds %d "
                           "(ask for truncation to keep its end)", n_ids, ctx_len);
    }
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] >= m->cfg.n_vocab) {
            free(ids);
            return slm_err_set(err, SLM_ERR_RANGE, "token %d is beyond the model's vocabulary (%d)",
                               ids[i], m->cfg.n_vocab);
        }

    slm_sampler *smp = slm_sampler_new(sp, m->cfg.n_vocab, err);
    /* A model this small does too little work per token to share it: one thread generated twice
     * as fast as two for a 0.75M-parameter model (17.7k vs 8.2k tok/s, and it does not collapse
     * when other processes hold the cores), while 15M parameters gain 1.85x from two. Results
     * are the same either way (work is split statically). */
    if (slm_model_param_count(&m->cfg) < SLM_GENERATE_SERIAL_PARAMS) pool = NULL;
    slm_ctx *ctx = smp ? slm_ctx_new(&m->cfg, (int)n_ids, 0, pool, err) : NULL;
    slm_kv_cache *kv = ctx ? slm_kv_cache_new_type(&m->cfg, 1, ctx_len, o->kv_type, err) : NULL;
    int32_t *pos = malloc(n_ids * sizeof(int32_t)), *seq = calloc(n_ids, sizeof(int32_t));
    int8_t *out = calloc(n_ids, 1);
    pending_text pend = {0};
    if (!smp || !ctx || !kv) {
        s = err ? err->code : SLM_ERR_NOMEM;
        goto done;
    }
    if (!pos || !seq || !out) {
        s = slm_err_set(err, SLM_ERR_NOMEM, "generate: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_ids; i++) {
        pos[i] = (int32_t)i;
        slm_sampler_accept(smp, ids[i]);
    }
    out[n_ids - 1] = 1;
    stats->prompt_tokens = (int)n_ids;

    double t0 = slm_time_now();
    slm_batch b = {.n_tokens = (int)n_ids, .token = ids, .pos = pos, .seq = seq, .output = out};
    s = slm_model_forward(m, ctx, kv, &b, err);
    if (s) goto done;
    stats->prompt_s = slm_time_now() - t0;
    double t1 = slm_time_now();

    /* SentencePiece vocabularies prefix the text with a space; with nothing before the first
     * generated piece, that space is not part of the text (as llama.cpp's detokenizer does). */
    int strip_space = len == 0 && slm_tokenizer_add_space_prefix(tok);
    int32_t cur_pos = (int32_t)n_ids, zero = 0;
    int32_t eos = slm_tokenizer_eos(tok);
    for (int g = 0; g < o->max_tokens; g++) {
        int32_t next = slm_sampler_sample(smp, slm_ctx_logits(ctx));
        slm_sampler_accept(smp, next);
        if (o->stop_at_eos && next == eos) {
            stats->stopped_by = "eos";
            break;
        }
        if (o->chat && slm_tokenizer_token_type(tok, next) == SLM_TOKEN_CONTROL) {
            stats->stopped_by = "end of turn";
            break;
        }
        stats->generated_tokens++;
        size_t pl = 0;
        const char *piece = slm_tokenizer_token_bytes(tok, next, &pl);
        if (strip_space && piece && pl) {
            if (piece[0] == ' ') {
                piece++;
                pl--;
            }
            strip_space = 0;
        }
        if (piece && pl && pending_append(&pend, piece, pl) != 0) {
            s = slm_err_set(err, SLM_ERR_NOMEM, "generate: out of memory");
            goto done;
        }
        size_t safe = pend.len;
        long at = o->n_stop ? find_stop(&pend, o->stop, o->n_stop, &safe) : -1;
        if (safe && cb && cb(cb_ctx, pend.buf, safe)) {
            stats->stopped_by = "callback";
            pend.len = 0;
            break;
        }
        memmove(pend.buf, pend.buf + safe, pend.len - safe);
        pend.len -= safe;
        if (at >= 0) {
            stats->stopped_by = "stop";
            pend.len = 0;
            break;
        }
        if (g + 1 == o->max_tokens) break;
        if (cur_pos >= ctx_len) {
            stats->stopped_by = "context";
            break;
        }
        slm_batch nb = {.n_tokens = 1, .token = &next, .pos = &cur_pos, .seq = &zero, .output = NULL};
        s = slm_model_forward(m, ctx, kv, &nb, err);
        if (s) goto done;
        cur_pos++;
    }
    if (pend.len && cb) cb(cb_ctx, pend.buf, pend.len); /* a held-back prefix that never completed */
    stats->generate_s = slm_time_now() - t1;
done:
    free(pend.buf);
    free(pos);
    free(seq);
    free(out);
    free(ids);
    slm_kv_cache_free(kv);
    slm_ctx_free(ctx);
    slm_sampler_free(smp);
    return s;
}
