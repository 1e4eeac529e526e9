/* model_mapped.c: loading a GGUF for inference with the weights where they lie (DESIGN.md
 * decision 4) — architectures llama, qwen2 and qwen3, in llama.cpp's names.
 *
 * Each weight matrix becomes an slm_weight {type, pointer into the mmap}; nothing is converted or
 * copied but the small vectors (norms, biases), which go to F32 in m->params. Keys are read under
 * the architecture's prefix (<arch>.block_count, ...). Family details, from llama.cpp
 * (src/llama-arch.cpp, src/llama-model.cpp):
 *   llama: RoPE on adjacent pairs (LLAMA_ROPE_TYPE_NORM); optional q/k/v biases are honoured.
 *   qwen2: biases blk.N.attn_{q,k,v}.bias; NEOX RoPE (rotates x[i] with x[i + hd/2]).
 *   qwen3: blk.N.attn_{q,k}_norm.weight (hd) RMSNorm per head before RoPE; NEOX RoPE;
 *          head_dim from qwen3.attention.key_length (may differ from dim / heads).
 * rope.freq_base defaults to 10000 and layer_norm_rms_epsilon to 1e-5 when absent, as in
 * llama.cpp's loader. A missing output.weight means the output is tied to token_embd.
 */
#include "model/model.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static int to_int(uint32_t v) { return v > (uint32_t)INT_MAX ? INT_MAX : (int)v; }

slm_status slm_model_config_read(const slm_gguf *g, slm_model_config *cfg, slm_err *err) {
    const char *name = slm_gguf_name(g);
    slm_gguf_str arch;
    slm_status st = slm_gguf_get_str(g, "general.architecture", &arch, err);
    if (st != SLM_OK) return st;
    int a;
    if (slm_gguf_str_eq(arch, "llama")) a = SLM_ARCH_LLAMA;
    else if (slm_gguf_str_eq(arch, "qwen2")) a = SLM_ARCH_QWEN2;
    else if (slm_gguf_str_eq(arch, "qwen3")) a = SLM_ARCH_QWEN3;
    else
        return slm_err_set(err, SLM_ERR_UNSUPPORTED,
                           "%s: architecture '%.*s' is not supported (llama, qwen2, qwen3 are)", name,
                           (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    const char *p = slm_arch_name(a);
    char k[128];
    uint32_t ctx = 0, dim = 0, layers = 0, ff = 0, heads = 0, kv_heads = 0, rope_dims = 0, key_len = 0,
             val_len = 0, vocab = 0;
    float theta = 10000.0f, eps = 1e-5f;
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", p, suffix), k)
    if ((st = slm_gguf_get_u32(g, KEY("context_length"), &ctx, err)) != SLM_OK ||
        (st = slm_gguf_get_u32(g, KEY("embedding_length"), &dim, err)) != SLM_OK ||
        (st = slm_gguf_get_u32(g, KEY("block_count"), &layers, err)) != SLM_OK ||
        (st = slm_gguf_get_u32(g, KEY("feed_forward_length"), &ff, err)) != SLM_OK ||
        (st = slm_gguf_get_u32(g, KEY("attention.head_count"), &heads, err)) != SLM_OK)
        return st;
    kv_heads = heads;
    if ((st = slm_gguf_opt_u32(g, KEY("attention.head_count_kv"), &kv_heads, err)) != SLM_OK ||
        (st = slm_gguf_opt_f32(g, KEY("rope.freq_base"), &theta, err)) != SLM_OK ||
        (st = slm_gguf_opt_f32(g, KEY("attention.layer_norm_rms_epsilon"), &eps, err)) != SLM_OK ||
        (st = slm_gguf_opt_u32(g, KEY("rope.dimension_count"), &rope_dims, err)) != SLM_OK ||
        (st = slm_gguf_opt_u32(g, KEY("attention.key_length"), &key_len, err)) != SLM_OK ||
        (st = slm_gguf_opt_u32(g, KEY("attention.value_length"), &val_len, err)) != SLM_OK ||
        (st = slm_gguf_opt_u32(g, KEY("vocab_size"), &vocab, err)) != SLM_OK)
        return st;
#undef KEY
    const slm_gguf_tensor *embd = slm_gguf_find_tensor(g, "token_embd.weight");
    if (!embd) return slm_err_set(err, SLM_ERR_FORMAT, "%s: missing tensor 'token_embd.weight'", name);
    if (embd->ne[1] > (uint64_t)INT_MAX)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: tensor 'token_embd.weight' has %" PRIu64 " rows",
                           name, embd->ne[1]);
    if (vocab && vocab != embd->ne[1])
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: %s.vocab_size %u disagrees with token_embd.weight's %" PRIu64 " rows",
                           name, p, vocab, embd->ne[1]);
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = a;
    cfg->n_vocab = (int)embd->ne[1];
    cfg->dim = to_int(dim);
    cfg->n_layers = to_int(layers);
    cfg->n_heads = to_int(heads);
    cfg->n_kv_heads = to_int(kv_heads);
    cfg->hidden_dim = to_int(ff);
    cfg->ctx_len = to_int(ctx);
    cfg->rope_theta = theta;
    cfg->norm_eps = eps;
    cfg->tied_output = slm_gguf_find_tensor(g, "output.weight") == NULL;
    cfg->rope_neox = a != SLM_ARCH_LLAMA;
    cfg->qk_norm = a == SLM_ARCH_QWEN3;
    cfg->qkv_bias = slm_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    if (key_len && heads && key_len * heads != dim) cfg->head_dim = to_int(key_len);
    if (key_len && val_len && key_len != val_len)
        return slm_err_set(err, SLM_ERR_UNSUPPORTED, "%s: %s.attention.key_length %u != value_length %u",
                           name, p, key_len, val_len);
    if (slm_model_config_check(cfg, err) != SLM_OK) return slm_err_prefix(err, "%s", name);
    int hd = slm_model_head_dim(cfg);
    if (rope_dims && rope_dims != (uint32_t)hd)
        return slm_err_set(err, SLM_ERR_UNSUPPORTED,
                           "%s: %s.rope.dimension_count %u differs from head_dim %d (partial RoPE)", name,
                           p, rope_dims, hd);
    return SLM_OK;
}

/* Finds a tensor and checks its shape: [cols] (rows == 0) or [cols, rows]. */
static const slm_gguf_tensor *find_shaped(const slm_gguf *g, const char *tn, uint64_t cols,
                                          uint64_t rows, slm_err *err) {
    const char *name = slm_gguf_name(g);
    const slm_gguf_tensor *t = slm_gguf_find_tensor(g, tn);
    if (!t) {
        if (rows)
            slm_err_set(err, SLM_ERR_FORMAT, "%s: missing tensor '%s' (expected shape [%" PRIu64 ", %" PRIu64 "])",
                        name, tn, cols, rows);
        else
            slm_err_set(err, SLM_ERR_FORMAT, "%s: missing tensor '%s' (expected shape [%" PRIu64 "])", name, tn, cols);
        return NULL;
    }
    uint64_t want[SLM_GGUF_MAX_DIMS] = {cols, rows ? rows : 1, 1, 1};
    for (int d = 0; d < SLM_GGUF_MAX_DIMS; d++) {
        uint64_t have = d < (int)t->n_dims ? t->ne[d] : 1;
        if (have != want[d]) {
            slm_err_set(err, SLM_ERR_FORMAT,
                        "%s: tensor '%s' has shape [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
                        "], expected [%" PRIu64 ", %" PRIu64 "]",
                        name, tn, t->ne[0], t->n_dims > 1 ? t->ne[1] : 1, t->n_dims > 2 ? t->ne[2] : 1,
                        t->n_dims > 3 ? t->ne[3] : 1, cols, rows ? rows : 1);
            return NULL;
        }
    }
    return t;
}

static slm_status map_matrix(const slm_gguf *g, const char *tn, int rows, int cols, slm_weight *w,
                             slm_err *err) {
    const slm_gguf_tensor *t = find_shaped(g, tn, (uint64_t)cols, (uint64_t)rows, err);
    if (!t) return err ? err->code : SLM_ERR_FORMAT;
    char what[160];
    snprintf(what, sizeof what, "%s: tensor '%s'", slm_gguf_name(g), tn);
    slm_status st = slm_qmat_check_type(t->type, what, err);
    if (st != SLM_OK) return st;
    w->type = t->type;
    w->data = t->data;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = (size_t)(t->nbytes / (uint64_t)rows);
    if (w->row_bytes * (size_t)rows != t->nbytes)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: %" PRIu64 " bytes are not %d equal rows", what,
                           t->nbytes, rows);
    return SLM_OK;
}

/* Copies a vector tensor (F32, F16 or BF16) of n elements into dst as F32. */
static slm_status load_vector(const slm_gguf *g, const char *tn, int n, float *dst, slm_err *err) {
    const slm_gguf_tensor *t = find_shaped(g, tn, (uint64_t)n, 0, err);
    if (!t) return err ? err->code : SLM_ERR_FORMAT;
    if (t->type != SLM_GGML_F32 && t->type != SLM_GGML_F16 && t->type != SLM_GGML_BF16) {
        const char *ty = slm_ggml_type_name(t->type);
        return slm_err_set(err, SLM_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s; vectors must be f32, f16 or bf16",
                           slm_gguf_name(g), tn, ty ? ty : "unknown");
    }
    slm_qmat v = {t->type, t->data, 1, n, (size_t)t->nbytes};
    slm_qmat_row(&v, 0, dst);
    return SLM_OK;
}

static uint64_t matrix_bytes(const slm_weight *w) { return (uint64_t)w->rows * w->row_bytes; }

slm_model *slm_model_load_mapped(const slm_gguf *g, slm_err *err) {
    slm_model_config cfg;
    if (slm_model_config_read(g, &cfg, err) != SLM_OK) return NULL;
    int L = cfg.n_layers, D = cfg.dim, F = cfg.hidden_dim, V = cfg.n_vocab, hd = slm_model_head_dim(&cfg);
    int qd = hd * cfg.n_heads, kvd = hd * cfg.n_kv_heads;
    size_t per_layer = 2 * (size_t)D + (cfg.qkv_bias ? (size_t)qd + 2 * (size_t)kvd : 0) +
                       (cfg.qk_norm ? 2 * (size_t)hd : 0);
    slm_model *m = calloc(1, sizeof *m);
    if (!m) goto nomem;
    m->cfg = cfg;
    m->n_params = per_layer * (size_t)L + (size_t)D;
    m->params = calloc(m->n_params, sizeof(float));
    m->w.layers = calloc((size_t)L, sizeof *m->w.layers);
    m->mapped = calloc(1, sizeof *m->mapped);
    if (m->mapped) m->mapped->layers = calloc((size_t)L, sizeof *m->mapped->layers);
    if (!m->params || !m->w.layers || !m->mapped || !m->mapped->layers) {
        slm_model_free(m);
        goto nomem;
    }
    slm_mapped_weights *mw = m->mapped;
    float *p = m->params;
    char tn[SLM_GGUF_MAX_NAME + 32];
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((call) != SLM_OK) goto fail;                                                           \
    } while (0)
    TRY(map_matrix(g, "token_embd.weight", V, D, &mw->token_embd, err));
    if (cfg.tied_output)
        mw->output = mw->token_embd;
    else
        TRY(map_matrix(g, "output.weight", V, D, &mw->output, err));
    mw->output_norm = p;
    TRY(load_vector(g, "output_norm.weight", D, p, err));
    p += D;
    mw->weight_bytes = matrix_bytes(&mw->token_embd) + (cfg.tied_output ? 0 : matrix_bytes(&mw->output));
    for (int l = 0; l < L; l++) {
        slm_layer_weights *lw = &mw->layers[l];
#define NAME(s) (snprintf(tn, sizeof tn, "blk.%d.%s", l, s), tn)
        lw->attn_norm = p;
        TRY(load_vector(g, NAME("attn_norm.weight"), D, p, err));
        p += D;
        lw->ffn_norm = p;
        TRY(load_vector(g, NAME("ffn_norm.weight"), D, p, err));
        p += D;
        if (cfg.qkv_bias) {
            lw->bq = p;
            TRY(load_vector(g, NAME("attn_q.bias"), qd, p, err));
            p += qd;
            lw->bk = p;
            TRY(load_vector(g, NAME("attn_k.bias"), kvd, p, err));
            p += kvd;
            lw->bv = p;
            TRY(load_vector(g, NAME("attn_v.bias"), kvd, p, err));
            p += kvd;
        }
        if (cfg.qk_norm) {
            lw->q_norm = p;
            TRY(load_vector(g, NAME("attn_q_norm.weight"), hd, p, err));
            p += hd;
            lw->k_norm = p;
            TRY(load_vector(g, NAME("attn_k_norm.weight"), hd, p, err));
            p += hd;
        }
        TRY(map_matrix(g, NAME("attn_q.weight"), qd, D, &lw->wq, err));
        TRY(map_matrix(g, NAME("attn_k.weight"), kvd, D, &lw->wk, err));
        TRY(map_matrix(g, NAME("attn_v.weight"), kvd, D, &lw->wv, err));
        TRY(map_matrix(g, NAME("attn_output.weight"), D, qd, &lw->wo, err));
        TRY(map_matrix(g, NAME("ffn_gate.weight"), F, D, &lw->w_gate, err));
        TRY(map_matrix(g, NAME("ffn_up.weight"), F, D, &lw->w_up, err));
        TRY(map_matrix(g, NAME("ffn_down.weight"), D, F, &lw->w_down, err));
#undef NAME
        mw->weight_bytes += matrix_bytes(&lw->wq) + matrix_bytes(&lw->wk) + matrix_bytes(&lw->wv) +
                            matrix_bytes(&lw->wo) + matrix_bytes(&lw->w_gate) +
                            matrix_bytes(&lw->w_up) + matrix_bytes(&lw->w_down);
    }
#undef TRY
    SLM_ASSERT((size_t)(p - m->params) == m->n_params);
    return m;
fail:
    slm_model_free(m);
    return NULL;
nomem:
    slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory loading the model", slm_gguf_name(g));
    return NULL;
}

uint64_t slm_model_weight_bytes(const slm_model *m) {
    if (m->mapped) return m->mapped->weight_bytes;
    size_t vec = (size_t)m->cfg.dim * (1 + 2 * (size_t)m->cfg.n_layers);
    return (uint64_t)(m->n_params - vec) * sizeof(float);
}
