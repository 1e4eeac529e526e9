/* lora.c: LoRA adapters (lora.h) — creation, the materialise/gradient maths through BLAS, the
 * llama.cpp-convention adapter file, and the fp32 body of any (also quantized) llama GGUF. */
#include "task/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/kernels.h"
#include "quant/quant.h"

static const struct {
    unsigned bit;
    const char *opt;   /* CLI name */
    const char *suffix;/* tensor name suffix */
} MODS[] = {
    {SLM_LORA_Q, "q", ".attn_q.weight"},      {SLM_LORA_K, "k", ".attn_k.weight"},
    {SLM_LORA_V, "v", ".attn_v.weight"},      {SLM_LORA_O, "o", ".attn_output.weight"},
    {SLM_LORA_GATE, "gate", ".ffn_gate.weight"}, {SLM_LORA_UP, "up", ".ffn_up.weight"},
    {SLM_LORA_DOWN, "down", ".ffn_down.weight"},
};
#define N_MODS (int)(sizeof MODS / sizeof MODS[0])

slm_status slm_lora_parse_targets(const char *s, unsigned *targets, slm_err *err) {
    *targets = 0;
    if (!strcmp(s, "all")) {
        *targets = SLM_LORA_ALL;
        return SLM_OK;
    }
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int i = 0; i < N_MODS; i++)
            if (strlen(MODS[i].opt) == n && !strncmp(p, MODS[i].opt, n)) *targets |= MODS[i].bit, found = 1;
        if (!found)
            return slm_err_set(err, SLM_ERR_ARG, "LoRA target '%.*s' is not one of q, k, v, o, gate, up, down, all",
                               (int)n, p);
        p += n;
        if (*p == ',') p++;
    }
    if (!*targets) return slm_err_set(err, SLM_ERR_ARG, "no LoRA target given");
    return SLM_OK;
}

void slm_lora_targets_name(unsigned targets, char *buf, size_t size) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < N_MODS; i++)
        if (targets & MODS[i].bit) k += (size_t)snprintf(buf + k, k < size ? size - k : 0, "%s%s", k ? "," : "", MODS[i].opt);
}

/* Which target module a body tensor name is (its bit), or 0. */
static unsigned module_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return 0;
    size_t n = strlen(name);
    for (int i = 0; i < N_MODS; i++) {
        size_t k = strlen(MODS[i].suffix);
        if (n > k && !strcmp(name + n - k, MODS[i].suffix)) return MODS[i].bit;
    }
    return 0;
}

/* Allocates the pairs of cfg's targets with rank r, carving the one block. */
static slm_lora *lora_alloc(const slm_model_config *cfg, int rank, float alpha, unsigned targets, slm_err *err) {
    slm_lora *l = calloc(1, sizeof *l);
    int nt = slm_model_n_tensors(cfg);
    if (!l || !(l->pairs = calloc((size_t)nt, sizeof *l->pairs))) goto nomem;
    l->cfg = *cfg;
    l->rank = rank;
    l->alpha = alpha;
    l->targets = targets;
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(cfg, i, &info);
        if (info.n_dims != 2 || !(module_of(info.name) & targets)) continue;
        slm_lora_pair *p = &l->pairs[l->n_pairs++];
        snprintf(p->name, sizeof p->name, "%s", info.name);
        p->offset = info.offset;
        p->in = (int)info.ne[0];
        p->out = (int)info.ne[1];
        l->n_params += (size_t)rank * (size_t)(p->in + p->out);
    }
    if (!(l->params = calloc(l->n_params ? l->n_params : 1, sizeof(float)))) goto nomem;
    size_t o = 0;
    for (int i = 0; i < l->n_pairs; i++) {
        slm_lora_pair *p = &l->pairs[i];
        p->a = l->params + o;
        o += (size_t)rank * (size_t)p->in;
        p->b = l->params + o;
        o += (size_t)rank * (size_t)p->out;
    }
    return l;
nomem:
    slm_lora_free(l);
    slm_err_set(err, SLM_ERR_NOMEM, "LoRA: out of memory");
    return NULL;
}

slm_lora *slm_lora_new(const slm_model_config *cfg, const slm_lora_opts *o, uint64_t seed, slm_err *err) {
    if (o->rank < 1 || o->rank > 4096) {
        slm_err_set(err, SLM_ERR_ARG, "LoRA rank must be in [1, 4096] (got %d)", o->rank);
        return NULL;
    }
    if (!(o->dropout >= 0.0f && o->dropout < 1.0f)) {
        slm_err_set(err, SLM_ERR_ARG, "LoRA rank dropout (--lora-dropout) must be in [0, 1) (got %g)", o->dropout);
        return NULL;
    }
    if (!(o->targets & SLM_LORA_ALL)) {
        slm_err_set(err, SLM_ERR_ARG, "no LoRA target modules");
        return NULL;
    }
    slm_lora *l = lora_alloc(cfg, o->rank, o->alpha > 0 ? o->alpha : (float)o->rank, o->targets & SLM_LORA_ALL, err);
    if (!l) return NULL;
    l->dropout = o->dropout;
    slm_rng r;
    slm_rng_seed(&r, seed, 0x6c6f7261u);
    for (int i = 0; i < l->n_pairs; i++) {
        slm_lora_pair *p = &l->pairs[i];
        float bound = 1.0f / sqrtf((float)p->in);
        for (size_t j = 0; j < (size_t)l->rank * (size_t)p->in; j++)
            p->a[j] = bound * (2.0f * (float)slm_rng_below(&r, 1u << 24) / (float)(1u << 24) - 1.0f);
    }
    return l;
}

void slm_lora_free(slm_lora *l) {
    if (!l) return;
    free(l->pairs);
    free(l->params);
    free(l);
}

float slm_lora_scale(const slm_lora *l) { return l->alpha / (float)l->rank; }

void slm_lora_apply(const slm_lora *l, const float *base, float *params) {
    float s = slm_lora_scale(l);
    for (int i = 0; i < l->n_pairs; i++) {
        const slm_lora_pair *p = &l->pairs[i];
        float *W = params + p->offset;
        if (params != base) memcpy(W, base + p->offset, sizeof(float) * (size_t)p->out * (size_t)p->in);
        /* W (out, in) += s · B (out, r) · A (r, in) */
        slm_gemm(0, 0, p->out, p->in, l->rank, s, p->b, l->rank, p->a, p->in, 1.0f, W, p->in);
    }
}

void slm_lora_grad(const slm_lora *l, const float *dparams, float *dlora) {
    float s = slm_lora_scale(l);
    for (int i = 0; i < l->n_pairs; i++) {
        const slm_lora_pair *p = &l->pairs[i];
        const float *dW = dparams + p->offset;
        float *dA = dlora + (p->a - l->params), *dB = dlora + (p->b - l->params);
        /* dA (r, in) = s · Bᵀ (r, out) · dW (out, in) */
        slm_gemm(1, 0, l->rank, p->in, p->out, s, p->b, l->rank, dW, p->in, 0.0f, dA, p->in);
        /* dB (out, r) = s · dW (out, in) · Aᵀ (in, r) */
        slm_gemm(0, 1, p->out, l->rank, p->in, s, dW, p->in, p->a, p->in, 0.0f, dB, l->rank);
    }
}

int slm_lora_rank_keep(uint64_t seed, uint64_t step, int pair, int k, float p) {
    if (!(p > 0)) return 1;
    uint64_t h = slm_rng_hash(slm_rng_hash(seed, step, 0x726b64726f70ull /* "rkdrop" */), (uint64_t)pair, (uint64_t)k);
    return (double)(h >> 11) * 0x1.0p-53 >= (double)p; /* uniform in [0, 1) on 53 bits */
}

/* The next run [*k0, *k1) of kept components of pair i at or after *k0; 0 when none is left. */
static int next_kept_run(const slm_lora *l, int i, uint64_t seed, uint64_t step, int *k0, int *k1) {
    int k = *k0;
    while (k < l->rank && !slm_lora_rank_keep(seed, step, i, k, l->dropout)) k++;
    if (k == l->rank) return 0;
    *k0 = k;
    for (*k1 = k + 1; *k1 < l->rank && slm_lora_rank_keep(seed, step, i, *k1, l->dropout); ++*k1) {}
    return 1;
}

/* Runs of kept components are contiguous column blocks of B and row blocks of A: one product each,
 * so dropped components cost nothing and no masked copy of A or B is made. */
void slm_lora_apply_step(const slm_lora *l, const float *base, float *params, uint64_t seed, uint64_t step) {
    if (!(l->dropout > 0)) {
        slm_lora_apply(l, base, params);
        return;
    }
    SLM_ASSERT(params != base);
    float c = slm_lora_scale(l) / (1.0f - l->dropout);
    for (int i = 0; i < l->n_pairs; i++) {
        const slm_lora_pair *p = &l->pairs[i];
        float *W = params + p->offset;
        memcpy(W, base + p->offset, sizeof(float) * (size_t)p->out * (size_t)p->in);
        /* W (out, in) += c · B[:, k0:k1] (out, n) · A[k0:k1, :] (n, in) */
        for (int k0 = 0, k1 = 0; next_kept_run(l, i, seed, step, &k0, &k1); k0 = k1)
            slm_gemm(0, 0, p->out, p->in, k1 - k0, c, p->b + k0, l->rank, p->a + (size_t)k0 * p->in, p->in, 1.0f, W,
                     p->in);
    }
}

void slm_lora_grad_step(const slm_lora *l, const float *dparams, float *dlora, uint64_t seed, uint64_t step) {
    if (!(l->dropout > 0)) {
        slm_lora_grad(l, dparams, dlora);
        return;
    }
    float c = slm_lora_scale(l) / (1.0f - l->dropout);
    for (int i = 0; i < l->n_pairs; i++) {
        const slm_lora_pair *p = &l->pairs[i];
        const float *dW = dparams + p->offset;
        float *dA = dlora + (p->a - l->params), *dB = dlora + (p->b - l->params);
        memset(dA, 0, sizeof(float) * (size_t)l->rank * (size_t)p->in);
        memset(dB, 0, sizeof(float) * (size_t)l->rank * (size_t)p->out);
        for (int k0 = 0, k1 = 0; next_kept_run(l, i, seed, step, &k0, &k1); k0 = k1) {
            /* dA[k0:k1, :] (n, in) = c · B[:, k0:k1]ᵀ (n, out) · dW (out, in) */
            slm_gemm(1, 0, k1 - k0, p->in, p->out, c, p->b + k0, l->rank, dW, p->in, 0.0f, dA + (size_t)k0 * p->in,
                     p->in);
            /* dB[:, k0:k1] (out, n) = c · dW (out, in) · A[k0:k1, :]ᵀ (in, n) */
            slm_gemm(0, 1, p->out, k1 - k0, p->in, c, dW, p->in, p->a + (size_t)k0 * p->in, p->in, 0.0f, dB + k0,
                     l->rank);
        }
    }
}

slm_status slm_lora_save_add(slm_gguf_writer *w, const slm_lora *l, slm_err *err) {
    char tg[64];
    slm_lora_targets_name(l->targets, tg, sizeof tg);
    slm_status s = slm_gguf_set_str(w, "general.type", "adapter");
    if (!s) s = slm_gguf_set_str(w, "general.architecture", "llama");
    if (!s) s = slm_gguf_set_str(w, "adapter.type", "lora");
    if (!s) s = slm_gguf_set_f32(w, "adapter.lora.alpha", l->alpha);
    if (!s) s = slm_gguf_set_u32(w, "slm.lora.rank", (uint32_t)l->rank);
    if (!s) s = slm_gguf_set_str(w, "slm.lora.targets", tg);
    if (s) return slm_err_set(err, s, "LoRA adapter: out of memory");
    for (int i = 0; i < l->n_pairs && !s; i++) {
        const slm_lora_pair *p = &l->pairs[i];
        char name[SLM_GGUF_MAX_NAME + 8];
        uint64_t nea[2] = {(uint64_t)p->in, (uint64_t)l->rank}, neb[2] = {(uint64_t)l->rank, (uint64_t)p->out};
        snprintf(name, sizeof name, "%s.lora_a", p->name);
        s = slm_gguf_add_tensor(w, name, SLM_GGML_F32, 2, nea, p->a, err);
        snprintf(name, sizeof name, "%s.lora_b", p->name);
        if (!s) s = slm_gguf_add_tensor(w, name, SLM_GGML_F32, 2, neb, p->b, err);
    }
    return s;
}

/* Tensor data as F32 (any type with a dequantizer) into dst of n floats. */
static slm_status to_f32(const slm_gguf *g, const slm_gguf_tensor *t, float *dst, size_t n, slm_err *err) {
    if (t->type == SLM_GGML_F32) {
        memcpy(dst, t->data, n * sizeof(float));
        return SLM_OK;
    }
    const slm_quant_traits *q = slm_quant_get(t->type);
    if (!q || !q->to_float)
        return slm_err_set(err, SLM_ERR_UNSUPPORTED, "%s: tensor '%.*s' has type %s, which cannot be read",
                           slm_gguf_name(g), (int)t->name.len, t->name.ptr,
                           slm_ggml_type_name(t->type) ? slm_ggml_type_name(t->type) : "?");
    q->to_float(t->data, dst, (int64_t)n);
    return SLM_OK;
}

slm_lora *slm_lora_load(const slm_gguf *g, const slm_model_config *cfg, slm_err *err) {
    slm_gguf_str v;
    float alpha = 0;
    if (slm_gguf_get_str(g, "general.type", &v, err) != SLM_OK || !slm_gguf_str_eq(v, "adapter")) {
        slm_err_set(err, SLM_ERR_ARG, "%s: not an adapter file (general.type is not 'adapter')", slm_gguf_name(g));
        return NULL;
    }
    if (slm_gguf_get_str(g, "adapter.type", &v, err) != SLM_OK || !slm_gguf_str_eq(v, "lora")) {
        slm_err_set(err, SLM_ERR_UNSUPPORTED, "%s: adapter.type is not 'lora'", slm_gguf_name(g));
        return NULL;
    }
    if (slm_gguf_get_str(g, "general.architecture", &v, err) != SLM_OK || !slm_gguf_str_eq(v, "llama")) {
        slm_err_set(err, SLM_ERR_UNSUPPORTED, "%s: a LoRA adapter for another architecture than llama", slm_gguf_name(g));
        return NULL;
    }
    if (slm_gguf_get_f32(g, "adapter.lora.alpha", &alpha, err) != SLM_OK) return NULL;
    /* the targets and rank from the tensors present */
    unsigned targets = 0;
    int rank = -1;
    for (int64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        char name[SLM_GGUF_MAX_NAME];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        size_t n = strlen(name);
        if (n < 7 || strcmp(name + n - 7, ".lora_a") != 0) continue;
        name[n - 7] = 0;
        unsigned mod = module_of(name);
        if (!mod || t->n_dims != 2) {
            slm_err_set(err, SLM_ERR_FORMAT, "%s: LoRA tensor '%s.lora_a' names no body matrix", slm_gguf_name(g), name);
            return NULL;
        }
        if (rank >= 0 && (int)t->ne[1] != rank) {
            slm_err_set(err, SLM_ERR_UNSUPPORTED, "%s: LoRA ranks differ between tensors (%d and %d)", slm_gguf_name(g),
                        rank, (int)t->ne[1]);
            return NULL;
        }
        rank = (int)t->ne[1];
        targets |= mod;
    }
    if (rank < 1) {
        slm_err_set(err, SLM_ERR_FORMAT, "%s: an adapter without LoRA tensors", slm_gguf_name(g));
        return NULL;
    }
    slm_lora *l = lora_alloc(cfg, rank, alpha, targets, err);
    if (!l) return NULL;
    for (int i = 0; i < l->n_pairs; i++) {
        slm_lora_pair *p = &l->pairs[i];
        char na[SLM_GGUF_MAX_NAME + 8], nb[SLM_GGUF_MAX_NAME + 8];
        snprintf(na, sizeof na, "%s.lora_a", p->name);
        snprintf(nb, sizeof nb, "%s.lora_b", p->name);
        const slm_gguf_tensor *ta = slm_gguf_find_tensor(g, na), *tb = slm_gguf_find_tensor(g, nb);
        if (!ta || !tb) {
            slm_err_set(err, SLM_ERR_FORMAT, "%s: LoRA pair for '%s' is missing %s (every layer of a target module "
                        "needs one)", slm_gguf_name(g), p->name, !ta ? "lora_a" : "lora_b");
            goto fail;
        }
        if (ta->ne[0] != (uint64_t)p->in || ta->ne[1] != (uint64_t)rank || tb->ne[0] != (uint64_t)rank ||
            tb->ne[1] != (uint64_t)p->out) {
            slm_err_set(err, SLM_ERR_FORMAT, "%s: '%s' lora_a [%llu, %llu], lora_b [%llu, %llu]; the base needs "
                        "[%d, %d] and [%d, %d] (wrong base model?)", slm_gguf_name(g), p->name,
                        (unsigned long long)ta->ne[0], (unsigned long long)ta->ne[1], (unsigned long long)tb->ne[0],
                        (unsigned long long)tb->ne[1], p->in, rank, rank, p->out);
            goto fail;
        }
        if (to_f32(g, ta, p->a, (size_t)rank * p->in, err) || to_f32(g, tb, p->b, (size_t)rank * p->out, err)) goto fail;
    }
    return l;
fail:
    slm_lora_free(l);
    return NULL;
}

slm_model *slm_lora_body_load(const slm_gguf *g, slm_err *err) {
    slm_model_config cfg;
    if (slm_model_config_from_gguf(g, &cfg, err) != SLM_OK) return NULL;
    cfg.tied_output = 1;
    slm_model *m = slm_model_new(&cfg, err);
    if (!m) return NULL;
    int nt = slm_model_n_tensors(&cfg);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(&cfg, i, &info);
        const slm_gguf_tensor *t = slm_gguf_find_tensor(g, info.name);
        uint64_t n = info.ne[0] * (info.n_dims > 1 ? info.ne[1] : 1);
        if (!t || t->ne[0] != info.ne[0] || slm_gguf_tensor_nelements(t) != n) {
            slm_err_set(err, SLM_ERR_FORMAT, "%s: tensor '%s' %s", slm_gguf_name(g), info.name,
                        t ? "has another shape than the config says" : "is missing");
            slm_model_free(m);
            return NULL;
        }
        if (to_f32(g, t, m->params + info.offset, (size_t)n, err) != SLM_OK) {
            slm_model_free(m);
            return NULL;
        }
    }
    return m;
}
