/* model.c: the model's configuration, named presets, parameter table and one-block storage.
 *
 * The tensor table below is the single source of the parameter layout: slm_model_param_count,
 * slm_model_carve (params, grads, Adam moments all share it) and the GGUF names all derive from it.
 * Order: token_embd; per layer attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 * ffn_gate, ffn_up, ffn_down; output_norm; output (absent when tied). attn_q|k|v and
 * ffn_gate|up are adjacent, so the forward pass projects each group with one sgemm.
 * Not here: GGUF reading/writing (model_gguf.c), the forward pass (forward.c).
 */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

typedef struct {
    const char *name;
    int dim, n_layers, n_heads, hidden_dim;
} preset;

static const preset PRESETS[] = {
    {"tiny", 96, 6, 6, 256},      /* ~1.06M with a 4096 vocab */
    {"small", 288, 6, 6, 768},    /* ~15.2M with a 32000 vocab (llama2.c's stories15M shape) */
    {"medium", 512, 8, 8, 1376},  /* ~41.7M with a 32000 vocab (stories42M) */
    {"base", 768, 12, 12, 2048},  /* ~110M with a 32000 vocab (stories110M) */
};

slm_status slm_model_preset(const char *name, int n_vocab, int ctx_len, slm_model_config *cfg,
                            slm_err *err) {
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++) {
        const preset *p = &PRESETS[i];
        if (!name || strcmp(name, p->name) != 0) continue;
        memset(cfg, 0, sizeof *cfg);
        cfg->n_vocab = n_vocab;
        cfg->dim = p->dim;
        cfg->n_layers = p->n_layers;
        cfg->n_heads = p->n_heads;
        cfg->n_kv_heads = p->n_heads;
        cfg->hidden_dim = p->hidden_dim;
        cfg->ctx_len = ctx_len;
        cfg->rope_theta = 10000.0f;
        cfg->norm_eps = 1e-5f;
        cfg->tied_output = 1;
        return slm_model_config_check(cfg, err);
    }
    return slm_err_set(err, SLM_ERR_ARG, "unknown model preset '%s' (known: tiny, small, medium, base)",
                       name ? name : "(null)");
}

slm_status slm_model_config_check(const slm_model_config *c, slm_err *err) {
#define RANGE(field, lo, hi)                                                                      \
    do {                                                                                          \
        if (c->field < (lo) || c->field > (hi))                                                   \
            return slm_err_set(err, SLM_ERR_ARG, "model config: " #field " = %d, must be in [%d, %d]", \
                               (int)c->field, (int)(lo), (int)(hi));                              \
    } while (0)
    RANGE(n_vocab, 1, 1 << 24);
    RANGE(dim, 2, 1 << 16);
    RANGE(n_layers, 1, 1024);
    RANGE(n_heads, 1, 1024);
    RANGE(n_kv_heads, 1, 1024);
    RANGE(hidden_dim, 1, 1 << 18);
    RANGE(ctx_len, 1, 1 << 20);
    RANGE(tied_output, 0, 1);
    RANGE(arch, 0, 2);
    RANGE(head_dim, 0, 1 << 16);
    RANGE(rope_neox, 0, 1);
    RANGE(qkv_bias, 0, 1);
    RANGE(qk_norm, 0, 1);
#undef RANGE
    if (c->head_dim == 0 && c->dim % c->n_heads != 0)
        return slm_err_set(err, SLM_ERR_ARG, "model config: dim %d is not a multiple of n_heads %d",
                           c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads != 0)
        return slm_err_set(err, SLM_ERR_ARG,
                           "model config: n_heads %d is not a multiple of n_kv_heads %d", c->n_heads,
                           c->n_kv_heads);
    if (slm_model_head_dim(c) % 2 != 0)
        return slm_err_set(err, SLM_ERR_ARG, "model config: head_dim %d (dim %d, n_heads %d) must be even for RoPE",
                           slm_model_head_dim(c), c->dim, c->n_heads);
    if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta))
        return slm_err_set(err, SLM_ERR_ARG, "model config: rope_theta %g must be positive and finite",
                           (double)c->rope_theta);
    if (!(c->norm_eps > 0.0f) || !(c->norm_eps < 1.0f))
        return slm_err_set(err, SLM_ERR_ARG, "model config: norm_eps %g must be in (0, 1)",
                           (double)c->norm_eps);
    return SLM_OK;
}

/* ---- the tensor table ---- */

enum { T_ATTN_NORM, T_Q, T_K, T_V, T_O, T_FFN_NORM, T_GATE, T_UP, T_DOWN, T_PER_LAYER };
static const char *const LAYER_NAMES[T_PER_LAYER] = {
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
};

/* Shape of a per-layer tensor as (rows, cols) = GGUF (ne[1], ne[0]); rows == 0 for vectors. */
static void layer_shape(const slm_model_config *c, int which, uint64_t *rows, uint64_t *cols) {
    uint64_t D = (uint64_t)c->dim, hd = D / (uint64_t)c->n_heads, qd = hd * (uint64_t)c->n_heads,
             kvd = hd * (uint64_t)c->n_kv_heads, F = (uint64_t)c->hidden_dim;
    switch (which) {
    case T_ATTN_NORM: case T_FFN_NORM: *rows = 0; *cols = D; break;
    case T_Q: *rows = qd; *cols = D; break;
    case T_K: case T_V: *rows = kvd; *cols = D; break;
    case T_O: *rows = D; *cols = qd; break;
    case T_GATE: case T_UP: *rows = F; *cols = D; break;
    default: *rows = D; *cols = F; break; /* T_DOWN */
    }
}

static uint64_t layer_floats(const slm_model_config *c) {
    uint64_t total = 0;
    for (int t = 0; t < T_PER_LAYER; t++) {
        uint64_t r, k;
        layer_shape(c, t, &r, &k);
        total += (r ? r : 1) * k;
    }
    return total;
}

int slm_model_n_tensors(const slm_model_config *c) {
    return 1 + T_PER_LAYER * c->n_layers + 1 + (c->tied_output ? 0 : 1);
}

void slm_model_tensor_at(const slm_model_config *c, int i, slm_model_tensor_info *info) {
    uint64_t V = (uint64_t)c->n_vocab, D = (uint64_t)c->dim;
    memset(info, 0, sizeof *info);
    uint64_t embd = V * D, per_layer = layer_floats(c);
    if (i == 0) {
        snprintf(info->name, sizeof info->name, "token_embd.weight");
        info->offset = 0;
        info->n_dims = 2;
        info->ne[0] = D;
        info->ne[1] = V;
        return;
    }
    int li = i - 1;
    if (li < T_PER_LAYER * c->n_layers) {
        int l = li / T_PER_LAYER, which = li % T_PER_LAYER;
        size_t off = embd + (uint64_t)l * per_layer;
        for (int t = 0; t < which; t++) {
            uint64_t r, k;
            layer_shape(c, t, &r, &k);
            off += (r ? r : 1) * k;
        }
        uint64_t r, k;
        layer_shape(c, which, &r, &k);
        snprintf(info->name, sizeof info->name, "blk.%d.%s.weight", l, LAYER_NAMES[which]);
        info->offset = off;
        info->n_dims = r ? 2 : 1;
        info->ne[0] = k;
        info->ne[1] = r ? r : 1;
        return;
    }
    size_t after_layers = embd + (uint64_t)c->n_layers * per_layer;
    if (li == T_PER_LAYER * c->n_layers) {
        snprintf(info->name, sizeof info->name, "output_norm.weight");
        info->offset = after_layers;
        info->n_dims = 1;
        info->ne[0] = D;
        info->ne[1] = 1;
        return;
    }
    snprintf(info->name, sizeof info->name, "output.weight");
    info->offset = after_layers + D;
    info->n_dims = 2;
    info->ne[0] = D;
    info->ne[1] = V;
}

size_t slm_model_param_count(const slm_model_config *c) {
    uint64_t V = (uint64_t)c->n_vocab, D = (uint64_t)c->dim;
    return V * D + (uint64_t)c->n_layers * layer_floats(c) + D + (c->tied_output ? 0 : V * D);
}

void slm_model_carve(const slm_model_config *c, float *block, slm_model_tensors *t,
                     slm_layer_tensors *layers) {
    slm_model_tensor_info info;
    slm_model_tensor_at(c, 0, &info);
    t->token_embd = block + info.offset;
    t->layers = layers;
    for (int l = 0; l < c->n_layers; l++) {
        float *p[T_PER_LAYER];
        for (int w = 0; w < T_PER_LAYER; w++) {
            slm_model_tensor_at(c, 1 + l * T_PER_LAYER + w, &info);
            p[w] = block + info.offset;
        }
        slm_layer_tensors *L = &layers[l];
        L->attn_norm = p[T_ATTN_NORM];
        L->wq = p[T_Q];
        L->wk = p[T_K];
        L->wv = p[T_V];
        L->wo = p[T_O];
        L->ffn_norm = p[T_FFN_NORM];
        L->w_gate = p[T_GATE];
        L->w_up = p[T_UP];
        L->w_down = p[T_DOWN];
    }
    slm_model_tensor_at(c, 1 + T_PER_LAYER * c->n_layers, &info);
    t->output_norm = block + info.offset;
    if (c->tied_output) {
        t->output = t->token_embd;
    } else {
        slm_model_tensor_at(c, 2 + T_PER_LAYER * c->n_layers, &info);
        t->output = block + info.offset;
    }
}

/* ---- allocation and initialisation ---- */

const char *slm_arch_name(int arch) {
    switch (arch) {
    case SLM_ARCH_LLAMA: return "llama";
    case SLM_ARCH_QWEN2: return "qwen2";
    case SLM_ARCH_QWEN3: return "qwen3";
    default: return NULL;
    }
}

slm_model *slm_model_new(const slm_model_config *cfg, slm_err *err) {
    if (slm_model_config_check(cfg, err) != SLM_OK) return NULL;
    if (cfg->arch != SLM_ARCH_LLAMA || cfg->qkv_bias || cfg->qk_norm ||
        slm_model_head_dim(cfg) * cfg->n_heads != cfg->dim) {
        slm_err_set(err, SLM_ERR_UNSUPPORTED,
                    "model: the fp32 (trainable) model is the llama layout only (architecture %s%s%s%s); "
                    "load other families for inference with slm_model_load_mapped",
                    slm_arch_name(cfg->arch), cfg->qkv_bias ? ", q/k/v biases" : "",
                    cfg->qk_norm ? ", q/k norms" : "",
                    slm_model_head_dim(cfg) * cfg->n_heads != cfg->dim ? ", head_dim x heads != dim" : "");
        return NULL;
    }
    slm_model *m = calloc(1, sizeof *m);
    if (!m) goto nomem;
    m->cfg = *cfg;
    m->n_params = slm_model_param_count(cfg);
    size_t bytes = (m->n_params * sizeof(float) + 63) / 64 * 64;
    m->params = aligned_alloc(64, bytes);
    slm_layer_tensors *layers = calloc((size_t)cfg->n_layers, sizeof *layers);
    if (!m->params || !layers) {
        free(layers);
        slm_model_free(m);
        goto nomem;
    }
    memset(m->params, 0, bytes);
    slm_model_carve(cfg, m->params, &m->w, layers);
    return m;
nomem:
    slm_err_set(err, SLM_ERR_NOMEM, "model: out of memory for %zu parameters",
                slm_model_param_count(cfg));
    return NULL;
}

void slm_model_free(slm_model *m) {
    if (!m) return;
    if (m->mapped) {
        free(m->mapped->layers);
        free(m->mapped);
    }
    free(m->params);
    free(m->w.layers);
    free(m);
}

void slm_model_init_random(slm_model *m, uint64_t seed) {
    const slm_model_config *c = &m->cfg;
    float resid_scale = 1.0f / sqrtf(2.0f * (float)c->n_layers);
    int nt = slm_model_n_tensors(c);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(c, i, &info);
        float *p = m->params + info.offset;
        size_t n = (size_t)(info.ne[0] * info.ne[1]);
        if (info.n_dims == 1) { /* norm weights */
            for (size_t j = 0; j < n; j++) p[j] = 1.0f;
            continue;
        }
        float std = 0.02f;
        size_t len = strlen(info.name);
        if ((len > 19 && strcmp(info.name + len - 19, ".attn_output.weight") == 0) ||
            (len > 16 && strcmp(info.name + len - 16, ".ffn_down.weight") == 0))
            std *= resid_scale;
        slm_rng r;
        slm_rng_seed(&r, seed, (uint64_t)i); /* one stream per tensor */
        for (size_t j = 0; j < n; j++) p[j] = std * slm_rng_normal(&r);
    }
}
