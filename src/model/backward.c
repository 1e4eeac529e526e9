/* backward.c: the backward pass of the batched forward — gradients of every parameter,
 * accumulated (+=) into a caller's block laid out like the parameters.
 *
 * It walks the layers in reverse using the activations a train workspace kept (residual stream,
 * normalised inputs and their 1/rms, q|k|v after RoPE, attention outputs, gate|up
 * pre-activations); silu(gate)·up and the attention probabilities are recomputed. Each weight
 * gradient is one product over all n tokens (dW += dY^T·X) and each input gradient another
 * (dX = dY·W), split across the pool by workspace.c. Norm-weight gradients are reduced per column and the embedding's scatter-add per
 * vocabulary range, so no two threads add into one float and results do not depend on the thread
 * count. The tied output's gradient lands on token_embd because the carve makes them one tensor.
 * slm_model_backward_hidden enters below the output projection, from a gradient with respect to
 * the final hidden state (task heads, e.g. classification, that read the hidden state itself).
 */
#include "model/workspace.h"

#include <string.h>

#include "gguf/gguf.h"
#include "kernels/kernels.h"

typedef struct {
    const float *dy, *x, *rinv, *w;
    float *dx, *dw;
    int accumulate;
} normb_arg;

static void normb_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const normb_arg *a = arg;
    size_t D = (size_t)c->cfg.dim;
    slm_rmsnorm_bwd_dx(a->dx + r0 * D, a->dy + r0 * D, a->x + r0 * D, a->rinv + r0, a->w, r1 - r0,
                       (int)D, a->accumulate);
}

static void normb_cols(slm_ctx *c, void *arg, int j0, int j1) {
    const normb_arg *a = arg;
    slm_rmsnorm_bwd_dw(a->dw, a->dy, a->x, a->rinv, c->n_tokens, c->cfg.dim, j0, j1);
}

/* dx (+)= RMSNorm backward of dy; dw += its weight gradient. */
static void norm_backward(slm_ctx *c, float *dx, float *dw, const float *dy, const float *x,
                          const float *rinv, const float *w, int accumulate) {
    normb_arg a = {dy, x, rinv, w, dx, dw, accumulate};
    slm_ws_par_rows(c, c->n_tokens, normb_rows, &a);
    slm_ws_par_rows(c, c->cfg.dim, normb_cols, &a);
}

typedef struct {
    const float *gu;
} swb_arg;

static void swiglu_recompute_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const swb_arg *a = arg;
    size_t F = (size_t)c->cfg.hidden_dim;
    for (int i = r0; i < r1; i++)
        slm_swiglu_fwd(c->h + i * F, a->gu + i * 2 * F, a->gu + i * 2 * F + F, (int)F);
}

static void swiglu_back_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const swb_arg *a = arg;
    size_t F = (size_t)c->cfg.hidden_dim;
    for (int i = r0; i < r1; i++)
        slm_swiglu_bwd(c->dgu + i * 2 * F, c->dgu + i * 2 * F + F, c->dh + i * F, a->gu + i * 2 * F,
                       a->gu + i * 2 * F + F, (int)F);
}

static void rope_back_rows(slm_ctx *c, void *arg, int r0, int r1) {
    int half = c->hd / 2;
    for (int i = r0; i < r1; i++) {
        float *row = c->dqkv + (size_t)i * c->qkvd;
        const float *cs = c->rope_cos + (size_t)c->pos[i] * half, *sn = c->rope_sin + (size_t)c->pos[i] * half;
        slm_rope_bwd(row, c->cfg.n_heads, c->hd, cs, sn);
        slm_rope_bwd(row + c->qd, c->cfg.n_kv_heads, c->hd, cs, sn);
    }
}

typedef struct {
    float *dtable;
} embb_arg;

static void embed_back_vocab(slm_ctx *c, void *arg, int v0, int v1) {
    const embb_arg *a = arg;
    slm_embedding_bwd(a->dtable, c->dx, c->tok, c->n_tokens, c->cfg.dim, v0, v1);
}

typedef struct {
    const float *src;
    float *dst;
} scatter_arg;

static void scatter_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const scatter_arg *a = arg;
    size_t D = (size_t)c->cfg.dim;
    for (int i = r0; i < r1; i++)
        memcpy(a->dst + (size_t)c->out_rows[i] * D, a->src + i * D, sizeof(float) * D);
}

/* The batch must be the one run forward, and every position a token attends to in the batch. */
static slm_status check_batch(const slm_ctx *c, const slm_batch *b, slm_err *err) {
    int n = c->n_tokens;
    if (!b || b->n_tokens != n || !b->token || !b->pos || !b->seq ||
        memcmp(b->token, c->tok, sizeof(int32_t) * (size_t)n) != 0 ||
        memcmp(b->pos, c->pos, sizeof(int32_t) * (size_t)n) != 0 ||
        memcmp(b->seq, c->seq, sizeof(int32_t) * (size_t)n) != 0)
        return slm_err_set(err, SLM_ERR_ARG, "backward: the batch is not the one the last forward ran");
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!b->output || b->output[i]) {
            if (k >= c->n_outputs || c->out_rows[k] != i)
                return slm_err_set(err, SLM_ERR_ARG, "backward: the batch's output flags changed since the forward");
            k++;
        }
    if (k != c->n_outputs)
        return slm_err_set(err, SLM_ERR_ARG, "backward: the batch's output flags changed since the forward");
    for (int g = 0; g < c->n_groups; g++) {
        const slm_tok_key *keys = c->sorted + c->grp_start[g];
        for (int j = 0; j < c->grp_len[g]; j++)
            if (keys[j].pos != j)
                return slm_err_set(err, SLM_ERR_ARG,
                                   "backward: batch token %d (seq %d, pos %d) attends to position %d of its "
                                   "sequence, which is not in the batch",
                                   (int)keys[j].idx, (int)keys[j].seq, (int)keys[j].pos, j);
    }
    return SLM_OK;
}

/* Checks shared by both entry points; need_dlogits: the workspace must hold d(loss)/d(logits). */
static slm_status backward_check(const slm_model *m, const slm_ctx *c, const slm_batch *b,
                                 const float *grads, int need_dlogits, slm_err *err) {
    if (!m || !c || !grads)
        return slm_err_set(err, SLM_ERR_ARG, "backward: model, workspace and gradient block are required");
    if (m->mapped || m->cfg.arch != SLM_ARCH_LLAMA || m->cfg.rope_neox || m->cfg.qkv_bias ||
        m->cfg.qk_norm)
        return slm_err_set(err, SLM_ERR_UNSUPPORTED,
                           "backward: training is supported for fp32 llama models only (this one is %s%s%s); "
                           "load an F32/F16 llama GGUF with slm_model_load to train",
                           slm_arch_name(m->cfg.arch), m->mapped ? ", with mapped (possibly quantized) weights" : "",
                           m->cfg.rope_neox ? ", NEOX RoPE" : "");
    if (!c->train)
        return slm_err_set(err, SLM_ERR_ARG, "backward: the workspace was not created with train = 1");
    if (need_dlogits && c->state != 2)
        return slm_err_set(err, SLM_ERR_ARG,
                           "backward: no d(loss)/d(logits): run the forward, then slm_model_loss "
                           "(or fill slm_ctx_dlogits)");
    if (!need_dlogits && c->state < 1)
        return slm_err_set(err, SLM_ERR_ARG, "backward: no forward has run on this workspace");
    if (memcmp(&m->cfg, &c->cfg, sizeof m->cfg) != 0)
        return slm_err_set(err, SLM_ERR_ARG, "backward: the workspace was made for another model config");
    return check_batch(c, b, err);
}

/* From d/d(output_norm output), which c->dxn holds, down to the embedding. */
static void backward_body(const slm_model *m, slm_ctx *c, slm_model_tensors *gt) {
    const slm_model_config *cfg = &m->cfg;
    int n = c->n_tokens, D = cfg->dim, F = cfg->hidden_dim, V = cfg->n_vocab, L = cfg->n_layers;
    size_t sD = slm_ws_stride(c, (size_t)D), s1 = slm_ws_stride(c, 1),
           sQKV = slm_ws_stride(c, (size_t)c->qkvd), sQ = slm_ws_stride(c, (size_t)c->qd),
           sGU = slm_ws_stride(c, 2 * (size_t)F);
    norm_backward(c, c->dx, gt->output_norm, c->dxn, c->res + L * sD, c->rmsf, m->w.output_norm, 0);

    for (int l = L - 1; l >= 0; l--) {
        const slm_layer_tensors *w = &m->w.layers[l];
        slm_layer_tensors *gw = &c->glayers[l];
        const float *res = c->res + l * sD, *mid = c->mid + l * sD, *xn1 = c->xn1 + l * sD,
                    *xn2 = c->xn2 + l * sD, *rms1 = c->rms1 + l * s1, *rms2 = c->rms2 + l * s1,
                    *qkv = c->qkv + l * sQKV, *att = c->att + l * sQ, *gu = c->gu + l * sGU;
        /* dx holds d/d(res[l+1]); res[l+1] = mid + W_down·(silu(gate)·up) */
        swb_arg sw = {gu};
        slm_ws_par_rows(c, n, swiglu_recompute_rows, &sw);
        slm_ws_dropout(c, c->h, F, l, SLM_DROP_FFN); /* the values ffn_down multiplied */
        slm_ws_matmul_bwd(c, c->dh, gw->w_down, c->dx, c->h, w->w_down, n, F, D, 0.0f);
        slm_ws_dropout(c, c->dh, F, l, SLM_DROP_FFN); /* d/d(h) = mask/(1-p) · d/d(dropped h) */
        slm_ws_par_rows(c, n, swiglu_back_rows, &sw);
        slm_ws_matmul_bwd(c, c->dxn, gw->w_gate, c->dgu, xn2, w->w_gate, n, D, 2 * F, 0.0f);
        norm_backward(c, c->dx, gw->ffn_norm, c->dxn, mid, rms2, w->ffn_norm, 1);
        /* dx holds d/d(mid); mid = res + W_o·attention(RoPE(W_q·xn1), RoPE(W_k·xn1), W_v·xn1) */
        slm_ws_matmul_bwd(c, c->datt, gw->wo, c->dx, att, w->wo, n, c->qd, D, 0.0f);
        slm_ws_dropout(c, c->datt, c->qd, l, SLM_DROP_ATT); /* att was dropped in place by the forward */
        slm_attention_backward(c, qkv, c->datt, c->dqkv);
        slm_ws_par_rows(c, n, rope_back_rows, NULL);
        slm_ws_matmul_bwd(c, c->dxn, gw->wq, c->dqkv, xn1, w->wq, n, D, c->qkvd, 0.0f);
        norm_backward(c, c->dx, gw->attn_norm, c->dxn, res, rms1, w->attn_norm, 1);
    }
    embb_arg ea = {gt->token_embd};
    slm_ws_par_rows(c, V, embed_back_vocab, &ea);
}

slm_status slm_model_backward(const slm_model *m, slm_ctx *c, slm_kv_cache *kv, const slm_batch *b,
                              float *grads, slm_err *err) {
    /* keys and values are read from the workspace's copy of q|k|v */
    if (kv && kv->type != SLM_GGML_F32)
        return slm_err_set(err, SLM_ERR_ARG, "backward: the KV cache is F16; training needs an F32 cache "
                           "(the forward attended to rounded keys, the gradients would not match it)");
    slm_status st = backward_check(m, c, b, grads, 1, err);
    if (st != SLM_OK) return st;

    const slm_model_config *cfg = &m->cfg;
    int n = c->n_tokens, D = cfg->dim, V = cfg->n_vocab;
    slm_model_tensors gt;
    slm_model_carve(cfg, grads, &gt, c->glayers);

    /* output projection and final norm */
    if (c->all_outputs) {
        slm_ws_matmul_bwd(c, c->dxn, gt.output, c->logits, c->xnf, m->w.output, n, D, V, 0.0f);
    } else {
        memset(c->dxn, 0, sizeof(float) * (size_t)n * D);
        if (c->n_outputs > 0) {
            slm_ws_matmul_bwd(c, c->dx, gt.output, c->logits, c->gather, m->w.output, c->n_outputs, D, V, 0.0f);
            scatter_arg sa = {c->dx, c->dxn};
            slm_ws_par_rows(c, c->n_outputs, scatter_rows, &sa);
        }
    }
    backward_body(m, c, &gt);
    return SLM_OK;
}

slm_status slm_model_backward_hidden(const slm_model *m, slm_ctx *c, slm_kv_cache *kv,
                                     const slm_batch *b, const float *dhidden, float *grads,
                                     slm_err *err) {
    if (kv && kv->type != SLM_GGML_F32)
        return slm_err_set(err, SLM_ERR_ARG, "backward: the KV cache is F16; training needs an F32 cache "
                           "(the forward attended to rounded keys, the gradients would not match it)");
    if (!dhidden) return slm_err_set(err, SLM_ERR_ARG, "backward: d(loss)/d(hidden) is required");
    slm_status st = backward_check(m, c, b, grads, 0, err);
    if (st != SLM_OK) return st;
    slm_model_tensors gt;
    slm_model_carve(&m->cfg, grads, &gt, c->glayers);
    memcpy(c->dxn, dhidden, sizeof(float) * (size_t)c->n_tokens * (size_t)m->cfg.dim);
    backward_body(m, c, &gt);
    return SLM_OK;
}
