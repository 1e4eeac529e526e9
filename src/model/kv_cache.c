/* kv_cache.c: the key/value cache, one slot per sequence (DESIGN.md decision 2), in F32 or F16.
 *
 * Layout (L, slots, ctx_len, kvd) for K and for V, so one sequence's keys of one layer are
 * contiguous rows: the batched attention reads a head's keys as a strided matrix (row stride kvd)
 * without copying (F32), or converts them a tile of keys at a time into its scratch (F16).
 * Entries are written by the forward pass; a position's entry is valid once a batch holding it
 * has run. Zeroed at creation so nothing reads uninitialised memory.
 */
#include "model/forward.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gguf/gguf.h"

static size_t elem_bytes(const slm_kv_cache *kv) {
    return kv->type == SLM_GGML_F16 ? sizeof(uint16_t) : sizeof(float);
}

slm_kv_cache *slm_kv_cache_new(const slm_model_config *cfg, int n_slots, int ctx_len, slm_err *err) {
    return slm_kv_cache_new_type(cfg, n_slots, ctx_len, SLM_GGML_F32, err);
}

slm_kv_cache *slm_kv_cache_new_type(const slm_model_config *cfg, int n_slots, int ctx_len,
                                    uint32_t type, slm_err *err) {
    if (slm_model_config_check(cfg, err) != SLM_OK) return NULL;
    if (type != SLM_GGML_F32 && type != SLM_GGML_F16) {
        slm_err_set(err, SLM_ERR_ARG, "kv cache: type %u is not supported (f32 or f16)", type);
        return NULL;
    }
    if (n_slots < 1 || n_slots > (1 << 20)) {
        slm_err_set(err, SLM_ERR_ARG, "kv cache: n_slots %d must be in [1, %d]", n_slots, 1 << 20);
        return NULL;
    }
    if (ctx_len < 1 || ctx_len > cfg->ctx_len) {
        slm_err_set(err, SLM_ERR_RANGE, "kv cache: ctx_len %d must be in [1, %d] (the model's context length)",
                    ctx_len, cfg->ctx_len);
        return NULL;
    }
    slm_kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv) goto nomem;
    kv->n_layers = cfg->n_layers;
    kv->n_slots = n_slots;
    kv->ctx_len = ctx_len;
    kv->kv_dim = slm_model_head_dim(cfg) * cfg->n_kv_heads;
    kv->type = type;
    size_t n = (size_t)kv->n_layers * (size_t)n_slots * (size_t)ctx_len * (size_t)kv->kv_dim;
    if (type == SLM_GGML_F16) {
        kv->kh = calloc(n, sizeof(uint16_t));
        kv->vh = calloc(n, sizeof(uint16_t));
        if (!kv->kh || !kv->vh) {
            slm_kv_cache_free(kv);
            goto nomem;
        }
    } else {
        kv->k = calloc(n, sizeof(float));
        kv->v = calloc(n, sizeof(float));
        if (!kv->k || !kv->v) {
            slm_kv_cache_free(kv);
            goto nomem;
        }
    }
    return kv;
nomem:
    slm_err_set(err, SLM_ERR_NOMEM, "kv cache: out of memory (%d slots x %d positions)", n_slots, ctx_len);
    return NULL;
}

void slm_kv_cache_free(slm_kv_cache *kv) {
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv->kh);
    free(kv->vh);
    free(kv);
}

size_t slm_kv_cache_bytes(const slm_kv_cache *kv) {
    return 2 * (size_t)kv->n_layers * (size_t)kv->n_slots * (size_t)kv->ctx_len * (size_t)kv->kv_dim *
           elem_bytes(kv);
}

slm_status slm_kv_type_from_name(const char *name, uint32_t *type, slm_err *err) {
    if (name && !strcasecmp(name, "f32")) *type = SLM_GGML_F32;
    else if (name && !strcasecmp(name, "f16")) *type = SLM_GGML_F16;
    else return slm_err_set(err, SLM_ERR_ARG, "kv cache type '%s': expected f32 or f16", name ? name : "(null)");
    return SLM_OK;
}

void slm_kv_cache_clear(slm_kv_cache *kv, int slot) {
    size_t row = (size_t)kv->ctx_len * (size_t)kv->kv_dim, eb = elem_bytes(kv);
    char *K = kv->type == SLM_GGML_F16 ? (char *)kv->kh : (char *)kv->k;
    char *V = kv->type == SLM_GGML_F16 ? (char *)kv->vh : (char *)kv->v;
    for (int l = 0; l < kv->n_layers; l++)
        for (int s = 0; s < kv->n_slots; s++) {
            if (slot >= 0 && s != slot) continue;
            size_t off = ((size_t)l * (size_t)kv->n_slots + (size_t)s) * row * eb;
            memset(K + off, 0, row * eb);
            memset(V + off, 0, row * eb);
        }
}
