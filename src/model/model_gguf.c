/* model_gguf.c: reading a model from a GGUF file and adding one to a GGUF writer, with llama.cpp's
 * key and tensor names for the `llama` architecture (DESIGN.md decision 1).
 *
 * Loading copies each tensor into the one parameter block (F32 as is, F16 converted), after
 * checking its name, type and shape against the tensor table of model.c; a missing output.weight
 * means the output projection is tied to token_embd. Quantized types are refused here (inference
 * on quantized weights is a separate path that reads blocks where they lie).
 */
#include "model/model.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"
#include "quant/quant.h"

slm_status slm_model_config_from_gguf(const slm_gguf *g, slm_model_config *cfg, slm_err *err) {
    slm_status st = slm_model_config_read(g, cfg, err);
    if (st != SLM_OK) return st;
    if (cfg->arch != SLM_ARCH_LLAMA)
        return slm_err_set(err, SLM_ERR_UNSUPPORTED, "%s: architecture '%s' loads for inference only "
                           "(slm trains 'llama')", slm_gguf_name(g), slm_arch_name(cfg->arch));
    return SLM_OK;
}

slm_model *slm_model_load(const slm_gguf *g, slm_err *err) {
    slm_model_config cfg;
    if (slm_model_config_from_gguf(g, &cfg, err) != SLM_OK) return NULL;
    slm_model *m = slm_model_new(&cfg, err);
    if (!m) return NULL;
    const char *name = slm_gguf_name(g);
    int nt = slm_model_n_tensors(&cfg);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(&cfg, i, &info);
        const slm_gguf_tensor *t = slm_gguf_find_tensor(g, info.name);
        if (!t) {
            slm_err_set(err, SLM_ERR_FORMAT, "%s: missing tensor '%s' (expected shape [%" PRIu64 ", %" PRIu64 "])",
                        name, info.name, info.ne[0], info.ne[1]);
            goto fail;
        }
        int same = 1;
        for (int k = 0; k < SLM_GGUF_MAX_DIMS; k++) {
            uint64_t want = k < 2 ? info.ne[k] : 1, have = k < (int)t->n_dims ? t->ne[k] : 1;
            same &= want == have;
        }
        if (!same) {
            char found[128];
            int len = snprintf(found, sizeof found, "[");
            for (uint32_t k = 0; k < t->n_dims && k < SLM_GGUF_MAX_DIMS; k++)
                len += snprintf(found + len, sizeof found - (size_t)len, "%s%" PRIu64, k ? ", " : "", t->ne[k]);
            snprintf(found + len, sizeof found - (size_t)len, "]");
            if (info.n_dims == 1)
                slm_err_set(err, SLM_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected [%" PRIu64 "]",
                            name, info.name, found, info.ne[0]);
            else
                slm_err_set(err, SLM_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected [%" PRIu64 ", %" PRIu64 "]",
                            name, info.name, found, info.ne[0], info.ne[1]);
            goto fail;
        }
        size_t count = (size_t)(info.ne[0] * info.ne[1]);
        float *dst = m->params + info.offset;
        if (t->type == SLM_GGML_F32 && t->nbytes >= count * sizeof(float)) {
            memcpy(dst, t->data, count * sizeof(float));
        } else if (t->type == SLM_GGML_F16 && t->nbytes >= count * sizeof(uint16_t)) {
            const unsigned char *src = t->data;
            for (size_t j = 0; j < count; j++) {
                uint16_t h;
                memcpy(&h, src + 2 * j, sizeof h);
                dst[j] = slm_f16_to_f32(h);
            }
        } else if (slm_quant_get(t->type) && slm_quant_get(t->type)->to_float) {
            /* a quantized file (e.g. the committed Q8_0 base) dequantized to train from; the
             * reader checked nbytes against type and shape, the shape is checked above */
            slm_quant_get(t->type)->to_float(t->data, dst, (int64_t)count);
        } else {
            const char *tn = slm_ggml_type_name(t->type);
            slm_err_set(err, SLM_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s (%u); only f32, f16 and types with a dequantizer load",
                        name, info.name, tn ? tn : "unknown", t->type);
            goto fail;
        }
    }
    return m;
fail:
    slm_model_free(m);
    return NULL;
}

slm_status slm_model_save(const slm_model *m, slm_gguf_writer *w, slm_err *err) {
    const slm_model_config *c = &m->cfg;
    slm_status st = SLM_OK;
#define SET(call)                                                                                  \
    do {                                                                                           \
        if (st == SLM_OK) st = (call);                                                             \
    } while (0)
    SET(slm_gguf_set_str(w, "general.architecture", "llama"));
    SET(slm_gguf_set_u32(w, "general.file_type", 0));
    SET(slm_gguf_set_u32(w, "llama.context_length", (uint32_t)c->ctx_len));
    SET(slm_gguf_set_u32(w, "llama.embedding_length", (uint32_t)c->dim));
    SET(slm_gguf_set_u32(w, "llama.block_count", (uint32_t)c->n_layers));
    SET(slm_gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)c->hidden_dim));
    SET(slm_gguf_set_u32(w, "llama.rope.dimension_count", (uint32_t)(c->dim / c->n_heads)));
    SET(slm_gguf_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads));
    SET(slm_gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads));
    SET(slm_gguf_set_f32(w, "llama.rope.freq_base", c->rope_theta));
    SET(slm_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps));
    SET(slm_gguf_set_u32(w, "llama.vocab_size", (uint32_t)c->n_vocab));
#undef SET
    if (st != SLM_OK) return slm_err_set(err, st, "model save: out of memory adding metadata");
    int nt = slm_model_n_tensors(c);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(c, i, &info);
        st = slm_gguf_add_tensor(w, info.name, SLM_GGML_F32, (uint32_t)info.n_dims, info.ne,
                                 m->params + info.offset, err);
        if (st != SLM_OK) return slm_err_prefix(err, "model save");
    }
    return SLM_OK;
}
