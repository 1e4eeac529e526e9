/* perplexity.c: perplexity, bits per byte and KL to a reference over non-overlapping windows
 * (see perplexity.h). Each window is one batch through the batched forward pass, with logits only
 * for the scored positions; log-softmax in double. */
#include "eval/perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/forward.h"

typedef struct {
    slm_ctx *c;
    slm_kv_cache *kv;
} runner;

static slm_status runner_new(runner *r, const slm_model *m, int ctx, int n_out, uint32_t kv_type,
                             slm_pool *pool, slm_err *err) {
    r->c = slm_ctx_new_outputs(&m->cfg, ctx, n_out, 0, pool, err);
    r->kv = r->c ? slm_kv_cache_new_type(&m->cfg, 1, ctx, kv_type, err) : NULL;
    return r->kv ? SLM_OK : (err ? err->code : SLM_ERR_NOMEM);
}

static void runner_free(runner *r) {
    slm_ctx_free(r->c);
    slm_kv_cache_free(r->kv);
}

/* log-softmax of z (V) into lp (double), returns the argmax */
static int log_softmax(const float *z, double *lp, int V) {
    int best = 0;
    double mx = z[0];
    for (int v = 1; v < V; v++)
        if (z[v] > mx) mx = z[v], best = v;
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)z[v] - mx);
    double lse = mx + log(s);
    for (int v = 0; v < V; v++) lp[v] = (double)z[v] - lse;
    return best;
}

slm_status slm_perplexity(const slm_model *m, const slm_model *ref, const int32_t *tokens, size_t n,
                          int ctx, int32_t bos, const uint32_t *token_nbytes, slm_pool *pool,
                          slm_ppl_result *out, slm_err *err) {
    return slm_perplexity_kv(m, ref, tokens, n, ctx, bos, token_nbytes, SLM_GGML_F32, pool, out, err);
}

slm_status slm_perplexity_kv(const slm_model *m, const slm_model *ref, const int32_t *tokens, size_t n,
                             int ctx, int32_t bos, const uint32_t *token_nbytes, uint32_t kv_type,
                             slm_pool *pool, slm_ppl_result *out, slm_err *err) {
    memset(out, 0, sizeof *out);
    if (ctx < 4 || ctx % 2 || ctx > m->cfg.ctx_len || (ref && ctx > ref->cfg.ctx_len))
        return slm_err_set(err, SLM_ERR_ARG, "perplexity: ctx %d must be even, >= 4 and within the model's context (%d)",
                           ctx, m->cfg.ctx_len);
    if (ref && ref->cfg.n_vocab != m->cfg.n_vocab)
        return slm_err_set(err, SLM_ERR_ARG, "perplexity: the reference's vocabulary (%d) differs from the model's (%d)",
                           ref->cfg.n_vocab, m->cfg.n_vocab);
    if (n < (size_t)ctx)
        return slm_err_set(err, SLM_ERR_RANGE, "perplexity: the text is %zu tokens; one window needs %d (lower --ctx)",
                           n, ctx);
    int V = m->cfg.n_vocab, first = ctx / 2, n_out = ctx - 1 - first;
    runner rm = {0}, rr = {0};
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)ctx), *pos = malloc(sizeof(int32_t) * (size_t)ctx);
    int32_t *seq = calloc((size_t)ctx, sizeof(int32_t));
    int8_t *outf = calloc((size_t)ctx, 1);
    double *lp = malloc(sizeof(double) * (size_t)V), *lq = malloc(sizeof(double) * (size_t)V);
    slm_status st = SLM_OK;
    if (!tok || !pos || !seq || !outf || !lp || !lq) {
        st = slm_err_set(err, SLM_ERR_NOMEM, "perplexity: out of memory");
        goto done;
    }
    if ((st = runner_new(&rm, m, ctx, n_out, kv_type, pool, err)) != SLM_OK) goto done;
    if (ref && (st = runner_new(&rr, ref, ctx, n_out, SLM_GGML_F32, pool, err)) != SLM_OK) goto done;
    for (int j = 0; j < ctx; j++) {
        pos[j] = j;
        outf[j] = j >= first && j < ctx - 1;
    }
    double nll = 0, ref_nll = 0, kl = 0, bytes = 0;
    long agree = 0, scored = 0;
    size_t n_windows = n / (size_t)ctx;
    for (size_t w = 0; w < n_windows; w++) {
        const int32_t *src = tokens + w * (size_t)ctx;
        memcpy(tok, src, sizeof(int32_t) * (size_t)ctx);
        if (bos >= 0) tok[0] = bos;
        slm_batch b = {ctx, tok, pos, seq, outf};
        if ((st = slm_model_forward(m, rm.c, rm.kv, &b, err)) != SLM_OK) goto done;
        if (ref && (st = slm_model_forward(ref, rr.c, rr.kv, &b, err)) != SLM_OK) goto done;
        for (int i = 0; i < n_out; i++) {
            int32_t target = src[first + i + 1];
            int am = log_softmax(slm_ctx_logits(rm.c) + (size_t)i * V, lq, V);
            nll -= lq[target];
            if (token_nbytes) bytes += token_nbytes[target];
            if (ref) {
                int ar = log_softmax(slm_ctx_logits(rr.c) + (size_t)i * V, lp, V);
                ref_nll -= lp[target];
                double k = 0;
                for (int v = 0; v < V; v++) k += exp(lp[v]) * (lp[v] - lq[v]);
                kl += k;
                agree += am == ar;
            }
            scored++;
        }
    }
    out->n_windows = (int)n_windows;
    out->n_scored = scored;
    out->nll = nll / (double)scored;
    out->ppl = exp(out->nll);
    out->bits_per_byte = bytes > 0 ? nll / log(2.0) / bytes : 0;
    if (ref) {
        out->has_ref = 1;
        out->kl = kl / (double)scored;
        out->top1 = (double)agree / (double)scored;
        out->ref_ppl = exp(ref_nll / (double)scored);
    }
done:
    runner_free(&rm);
    runner_free(&rr);
    free(tok), free(pos), free(seq), free(outf), free(lp), free(lq);
    return st;
}
