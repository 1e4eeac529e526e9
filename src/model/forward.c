/* forward.c: the one batched forward pass (DESIGN.md decision 2) — batch checks, the layer loop,
 * the final norm and the output projection.
 *
 * Every projection is one product over all n batch tokens (q|k|v together and gate|up together,
 * their weights being adjacent in the parameter block), split across the pool by workspace.c; the
 * elementwise phases (norms, RoPE and cache writes, SwiGLU) run on the pool by static row slices;
 * attention is attention.c.
 * The batch's keys and values are written into the cache (as F32, or rounded to F16 for an F16
 * cache) before any token attends, so a prompt or B training rows go in one call. Logits are computed only for output tokens.
 */
#include "model/workspace.h"

#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "kernels/qmatmul.h"

static int cfg_same(const slm_model_config *a, const slm_model_config *b) {
    return a->n_vocab == b->n_vocab && a->dim == b->dim && a->n_layers == b->n_layers &&
           a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads &&
           a->hidden_dim == b->hidden_dim && a->ctx_len == b->ctx_len &&
           a->rope_theta == b->rope_theta && a->norm_eps == b->norm_eps &&
           a->tied_output == b->tied_output && a->arch == b->arch && a->head_dim == b->head_dim &&
           a->rope_neox == b->rope_neox && a->qkv_bias == b->qkv_bias && a->qk_norm == b->qk_norm;
}

static int cmp_key(const void *pa, const void *pb) {
    const slm_tok_key *a = pa, *b = pb;
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    if (a->pos != b->pos) return a->pos < b->pos ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

/* Checks model, workspace, cache and batch against each other; fills the batch copies, output
 * rows, runs, the sorted keys and the groups. Touches neither the cache nor the activations. */
static slm_status prepare(const slm_model *m, slm_ctx *c, const slm_kv_cache *kv, const slm_batch *b,
                          slm_err *err) {
    if (!m || !c || !kv || !b)
        return slm_err_set(err, SLM_ERR_ARG, "forward: model, workspace, cache and batch are required");
    if (!cfg_same(&m->cfg, &c->cfg))
        return slm_err_set(err, SLM_ERR_ARG, "forward: the workspace was made for another model config");
    const slm_model_config *cfg = &m->cfg;
    const slm_layer_tensors *L0 = m->w.layers;
    size_t D = (size_t)cfg->dim;
    if (m->mapped && c->train)
        return slm_err_set(err, SLM_ERR_UNSUPPORTED,
                           "forward: a model with mapped (inference) weights cannot run a training workspace");
    for (int l = 0; l < cfg->n_layers && !m->mapped; l++)
        if (L0[l].wk != L0[l].wq + (size_t)c->qd * D || L0[l].wv != L0[l].wk + (size_t)c->kvd * D ||
            L0[l].w_up != L0[l].w_gate + (size_t)cfg->hidden_dim * D)
            return slm_err_set(err, SLM_ERR_ARG,
                               "forward: layer %d's tensors are not laid out by slm_model_carve", l);
    if (kv->n_layers != cfg->n_layers || kv->kv_dim != c->kvd || kv->ctx_len > cfg->ctx_len)
        return slm_err_set(err, SLM_ERR_ARG, "forward: the KV cache was made for another model config");
    if (kv->type != SLM_GGML_F32 && kv->type != SLM_GGML_F16)
        return slm_err_set(err, SLM_ERR_ARG, "forward: KV cache type %u is not f32 or f16", kv->type);
    int n = b->n_tokens;
    if (n < 1) return slm_err_set(err, SLM_ERR_ARG, "forward: empty batch (%d tokens)", n);
    if (n > c->max_tokens)
        return slm_err_set(err, SLM_ERR_RANGE, "forward: batch of %d tokens exceeds the workspace's %d",
                           n, c->max_tokens);
    if (!b->token || !b->pos || !b->seq)
        return slm_err_set(err, SLM_ERR_ARG, "forward: batch token, pos and seq arrays are required");
    for (int i = 0; i < n; i++) {
        if (b->token[i] < 0 || b->token[i] >= cfg->n_vocab)
            return slm_err_set(err, SLM_ERR_RANGE, "batch token %d: token id %d out of the vocabulary [0, %d)",
                               i, (int)b->token[i], cfg->n_vocab);
        if (b->seq[i] < 0 || b->seq[i] >= kv->n_slots)
            return slm_err_set(err, SLM_ERR_RANGE, "batch token %d: seq %d out of the cache's %d slots",
                               i, (int)b->seq[i], kv->n_slots);
        if (b->pos[i] < 0 || b->pos[i] >= kv->ctx_len)
            return slm_err_set(err, SLM_ERR_RANGE, "batch token %d: pos %d beyond the cache's %d positions",
                               i, (int)b->pos[i], kv->ctx_len);
    }
    for (int i = 0; i < n; i++) c->sorted[i] = (slm_tok_key){b->seq[i], b->pos[i], i};
    qsort(c->sorted, (size_t)n, sizeof *c->sorted, cmp_key);
    for (int i = 1; i < n; i++)
        if (c->sorted[i].seq == c->sorted[i - 1].seq && c->sorted[i].pos == c->sorted[i - 1].pos)
            return slm_err_set(err, SLM_ERR_ARG, "batch token %d: (seq %d, pos %d) repeats batch token %d",
                               (int)c->sorted[i].idx, (int)c->sorted[i].seq, (int)c->sorted[i].pos,
                               (int)c->sorted[i - 1].idx);

    c->n_tokens = n;
    memcpy(c->tok, b->token, sizeof(int32_t) * (size_t)n);
    memcpy(c->pos, b->pos, sizeof(int32_t) * (size_t)n);
    memcpy(c->seq, b->seq, sizeof(int32_t) * (size_t)n);
    c->n_outputs = 0;
    for (int i = 0; i < n; i++)
        if (!b->output || b->output[i]) c->out_rows[c->n_outputs++] = i;
    c->all_outputs = c->n_outputs == n;
    if (c->n_outputs > c->max_outputs)
        return slm_err_set(err, SLM_ERR_RANGE, "forward: batch asks for %d outputs; the workspace holds %d",
                           c->n_outputs, c->max_outputs);
    c->n_runs = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && c->seq[i] == c->seq[i - 1] && c->pos[i] == c->pos[i - 1] + 1) {
            c->run_len[c->n_runs - 1]++;
            continue;
        }
        c->run_start[c->n_runs] = i;
        c->run_len[c->n_runs++] = 1;
    }
    c->n_groups = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && c->sorted[i].seq == c->sorted[i - 1].seq) {
            c->grp_len[c->n_groups - 1]++;
            continue;
        }
        c->grp_start[c->n_groups] = i;
        c->grp_len[c->n_groups++] = 1;
    }
    return SLM_OK;
}

/* ---- row phases ---- */

typedef struct {
    const slm_model *m;
} embed_arg;

static void embed_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const embed_arg *a = arg;
    size_t D = (size_t)c->cfg.dim;
    if (a->m->mapped) { /* dequantize just the rows the batch needs */
        for (int i = r0; i < r1; i++) slm_qmat_row(&a->m->mapped->token_embd, c->tok[i], c->res + i * D);
        return;
    }
    slm_embedding_fwd(c->res + r0 * D, a->m->w.token_embd, c->tok + r0, r1 - r0, (int)D);
}

typedef struct {
    const float *x, *w;
    float *y, *rms;
} norm_arg;

static void norm_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const norm_arg *a = arg;
    size_t D = (size_t)c->cfg.dim;
    slm_rmsnorm_fwd(a->y + r0 * D, a->rms + r0, a->x + r0 * D, a->w, r1 - r0, (int)D, c->cfg.norm_eps);
}

typedef struct {
    float *qkv;
    slm_kv_cache *kv;
    int l;
    const slm_layer_weights *lw; /* biases and q/k norms (mapped models) */
} rope_arg;

/* NEOX-style RoPE (llama.cpp's LLAMA_ROPE_TYPE_NEOX, qwen2/qwen3): rotates (x[i], x[i + hd/2]). */
static void rope_neox_fwd(float *x, int n_heads, int hd, const float *cs, const float *sn) {
    int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *xh = x + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            float x0 = xh[i], x1 = xh[i + half];
            xh[i] = x0 * cs[i] - x1 * sn[i];
            xh[i + half] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

static void add_bias(float *x, const float *b, int n) {
    for (int i = 0; i < n; i++) x[i] += b[i];
}

/* Per row: biases (qwen2), per-head q/k RMSNorm (qwen3), RoPE on q and k, then k and v into the
 * cache. */
static void rope_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const rope_arg *a = arg;
    int hd = c->hd, half = hd / 2, kvd = c->kvd;
    const slm_kv_cache *kv = a->kv;
    const slm_layer_weights *lw = a->lw;
    for (int i = r0; i < r1; i++) {
        float *row = a->qkv + (size_t)i * c->qkvd;
        const float *cs = c->rope_cos + (size_t)c->pos[i] * half, *sn = c->rope_sin + (size_t)c->pos[i] * half;
        if (lw && lw->bq) {
            add_bias(row, lw->bq, c->qd);
            add_bias(row + c->qd, lw->bk, kvd);
            add_bias(row + c->qd + kvd, lw->bv, kvd);
        }
        if (lw && lw->q_norm) {
            slm_rmsnorm_fwd(row, NULL, row, lw->q_norm, c->cfg.n_heads, hd, c->cfg.norm_eps);
            slm_rmsnorm_fwd(row + c->qd, NULL, row + c->qd, lw->k_norm, c->cfg.n_kv_heads, hd, c->cfg.norm_eps);
        }
        if (c->cfg.rope_neox) {
            rope_neox_fwd(row, c->cfg.n_heads, hd, cs, sn);
            rope_neox_fwd(row + c->qd, c->cfg.n_kv_heads, hd, cs, sn);
        } else {
            slm_rope_fwd(row, c->cfg.n_heads, hd, cs, sn);
            slm_rope_fwd(row + c->qd, c->cfg.n_kv_heads, hd, cs, sn);
        }
        size_t at = (((size_t)a->l * (size_t)kv->n_slots + (size_t)c->seq[i]) * (size_t)kv->ctx_len +
                     (size_t)c->pos[i]) * (size_t)kvd;
        if (kv->type == SLM_GGML_F16) {
            slm_f32_to_f16_row(kv->kh + at, row + c->qd, (size_t)kvd);
            slm_f32_to_f16_row(kv->vh + at, row + c->qd + kvd, (size_t)kvd);
        } else {
            memcpy(kv->k + at, row + c->qd, sizeof(float) * (size_t)kvd);
            memcpy(kv->v + at, row + c->qd + kvd, sizeof(float) * (size_t)kvd);
        }
    }
}

typedef struct {
    const float *gu;
    float *h;
} swiglu_arg;

static void swiglu_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const swiglu_arg *a = arg;
    size_t F = (size_t)c->cfg.hidden_dim;
    for (int i = r0; i < r1; i++)
        slm_swiglu_fwd(a->h + i * F, a->gu + i * 2 * F, a->gu + i * 2 * F + F, (int)F);
}

typedef struct {
    const float *src;
    float *dst;
} gather_arg;

static void gather_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const gather_arg *a = arg;
    size_t D = (size_t)c->cfg.dim;
    for (int i = r0; i < r1; i++)
        memcpy(a->dst + i * D, a->src + (size_t)c->out_rows[i] * D, sizeof(float) * D);
}

/* ---- the pass ---- */

slm_status slm_model_forward(const slm_model *m, slm_ctx *c, slm_kv_cache *kv, const slm_batch *b,
                             slm_err *err) {
    if (c) c->state = 0;
    slm_status st = prepare(m, c, kv, b, err);
    if (st != SLM_OK) return st;
    const slm_model_config *cfg = &m->cfg;
    int n = c->n_tokens, D = cfg->dim, F = cfg->hidden_dim;
    size_t sD = slm_ws_stride(c, (size_t)D), s1 = slm_ws_stride(c, 1),
           sQKV = slm_ws_stride(c, (size_t)c->qkvd), sQ = slm_ws_stride(c, (size_t)c->qd),
           sGU = slm_ws_stride(c, 2 * (size_t)F);
    size_t nD = (size_t)n * D * sizeof(float);

    embed_arg ea = {m};
    slm_ws_par_rows(c, n, embed_rows, &ea);
    const slm_mapped_weights *mw = m->mapped;
    for (int l = 0; l < cfg->n_layers; l++) {
        const slm_layer_tensors *w = &m->w.layers[l];
        const slm_layer_weights *lw = mw ? &mw->layers[l] : NULL;
        const float *attn_norm = lw ? lw->attn_norm : w->attn_norm, *ffn_norm = lw ? lw->ffn_norm : w->ffn_norm;
        float *res = c->res + l * sD, *res_next = c->res + (l + 1) * sD, *mid = c->mid + l * sD;
        float *xn1 = c->xn1 + l * sD, *xn2 = c->xn2 + l * sD, *rms1 = c->rms1 + l * s1,
              *rms2 = c->rms2 + l * s1, *qkv = c->qkv + l * sQKV, *att = c->att + l * sQ,
              *gu = c->gu + l * sGU;

        norm_arg na = {res, attn_norm, xn1, rms1};
        slm_ws_par_rows(c, n, norm_rows, &na);
        if (lw) {
            slm_qmm_out o[3] = {{qkv, c->qkvd, &lw->wq, 0}, {qkv + c->qd, c->qkvd, &lw->wk, 0},
                                {qkv + c->qd + c->kvd, c->qkvd, &lw->wv, 0}};
            slm_qmatmul_multi(c->pool, xn1, n, o, 3, c->qscratch);
        } else {
            slm_ws_matmul_fwd(c, qkv, xn1, w->wq, n, D, c->qkvd, 0.0f);
        }
        rope_arg ra = {qkv, kv, l, lw};
        slm_ws_par_rows(c, n, rope_rows, &ra);
        slm_attention_forward(c, kv, l, qkv, att);
        slm_ws_dropout(c, att, c->qd, l, SLM_DROP_ATT);
        memcpy(mid, res, nD);
        if (lw)
            slm_qmatmul(c->pool, mid, D, att, n, &lw->wo, 1, c->qscratch);
        else
            slm_ws_matmul_fwd(c, mid, att, w->wo, n, c->qd, D, 1.0f);

        norm_arg nb = {mid, ffn_norm, xn2, rms2};
        slm_ws_par_rows(c, n, norm_rows, &nb);
        if (lw) {
            slm_qmm_out o[2] = {{gu, 2 * F, &lw->w_gate, 0}, {gu + F, 2 * F, &lw->w_up, 0}};
            slm_qmatmul_multi(c->pool, xn2, n, o, 2, c->qscratch);
        } else {
            slm_ws_matmul_fwd(c, gu, xn2, w->w_gate, n, D, 2 * F, 0.0f);
        }
        swiglu_arg sa = {gu, c->h};
        slm_ws_par_rows(c, n, swiglu_rows, &sa);
        slm_ws_dropout(c, c->h, F, l, SLM_DROP_FFN);
        memcpy(res_next, mid, nD);
        if (lw)
            slm_qmatmul(c->pool, res_next, D, c->h, n, &lw->w_down, 1, c->qscratch);
        else
            slm_ws_matmul_fwd(c, res_next, c->h, w->w_down, n, F, D, 1.0f);
    }
    norm_arg nf = {c->res + cfg->n_layers * sD, mw ? mw->output_norm : m->w.output_norm, c->xnf, c->rmsf};
    slm_ws_par_rows(c, n, norm_rows, &nf);
    const float *xo = c->xnf;
    if (!c->all_outputs && c->n_outputs > 0) {
        gather_arg ga = {c->xnf, c->gather};
        slm_ws_par_rows(c, c->n_outputs, gather_rows, &ga);
        xo = c->gather;
    }
    if (c->n_outputs > 0) {
        if (mw)
            slm_qmatmul(c->pool, c->logits, cfg->n_vocab, xo, c->n_outputs, &mw->output, 0, c->qscratch);
        else
            slm_ws_matmul_fwd(c, c->logits, xo, m->w.output, c->n_outputs, D, cfg->n_vocab, 0.0f);
    }
    c->state = 1;
    return SLM_OK;
}
