/* shapes.c: random-weight llama models of the benchmark shapes, written in a block format, so
 * speed figures can be produced without downloaded models (see bench.h). */
#include "bench/bench.h"

#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/quant.h"

slm_status slm_bench_write_shape(const char *shape, uint32_t type, int ctx_len, const char *path,
                                 slm_err *err) {
    const char *preset = !strcmp(shape, "15M") ? "small" : !strcmp(shape, "110M") ? "base" : NULL;
    if (!preset) return slm_err_set(err, SLM_ERR_ARG, "unknown shape '%s' (known: 15M, 110M)", shape);
    const slm_quant_traits *tr = slm_quant_get(type);
    if (!tr || !tr->from_float)
        return slm_err_set(err, SLM_ERR_ARG, "shape: type %u cannot be written (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)",
                           type);
    slm_model_config cfg;
    slm_status st = slm_model_preset(preset, 32000, ctx_len, &cfg, err);
    if (st != SLM_OK) return st;
    cfg.tied_output = 0; /* an output matrix of its own, as most downloaded models have */
    slm_model *m = slm_model_new(&cfg, err);
    if (!m) return err ? err->code : SLM_ERR_NOMEM;
    slm_model_init_random(m, 1234);
    slm_gguf_writer *w = slm_gguf_writer_new();
    int nt = slm_model_n_tensors(&cfg);
    void **bufs = calloc((size_t)nt, sizeof *bufs);
    if (!w || !bufs) {
        st = slm_err_set(err, SLM_ERR_NOMEM, "shape: out of memory");
        goto done;
    }
    { /* the metadata of slm_model_save (no tokenizer: the bench feeds token ids) */
        slm_gguf_set_str(w, "general.architecture", "llama");
        slm_gguf_set_u32(w, "llama.context_length", (uint32_t)cfg.ctx_len);
        slm_gguf_set_u32(w, "llama.embedding_length", (uint32_t)cfg.dim);
        slm_gguf_set_u32(w, "llama.block_count", (uint32_t)cfg.n_layers);
        slm_gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)cfg.hidden_dim);
        slm_gguf_set_u32(w, "llama.attention.head_count", (uint32_t)cfg.n_heads);
        slm_gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)cfg.n_kv_heads);
        slm_gguf_set_f32(w, "llama.rope.freq_base", cfg.rope_theta);
        slm_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", cfg.norm_eps);
    }
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(&cfg, i, &info);
        const float *src = m->params + info.offset;
        /* Matrices whose rows are not whole blocks of the type fall back as `slm quantize` does
         * (a K-quant to Q8_0, then F16); vectors stay F32. */
        uint32_t t = SLM_GGML_F32;
        if (info.n_dims == 2) {
            const uint32_t tries[3] = {type, SLM_GGML_Q8_0, SLM_GGML_F16};
            for (int k = 0; k < 3 && t == SLM_GGML_F32; k++)
                if (slm_quant_row_bytes(tries[k], (int64_t)info.ne[0])) t = tries[k];
        }
        const slm_quant_traits *tt = slm_quant_get(t);
        const void *data = src;
        if (t != SLM_GGML_F32) {
            size_t rb = slm_quant_row_bytes(t, (int64_t)info.ne[0]);
            char *q = malloc(rb * info.ne[1]);
            if (!q) {
                st = slm_err_set(err, SLM_ERR_NOMEM, "shape: out of memory");
                goto done;
            }
            for (uint64_t r = 0; r < info.ne[1]; r++) tt->from_float(src + r * info.ne[0], q + r * rb, (int64_t)info.ne[0]);
            bufs[i] = q;
            data = q;
        }
        if ((st = slm_gguf_add_tensor(w, info.name, t, (uint32_t)info.n_dims, info.ne, data, err)) != SLM_OK) goto done;
    }
    st = slm_gguf_writer_write(w, path, err);
done:
    if (bufs)
        for (int i = 0; i < nt; i++) free(bufs[i]);
    free(bufs);
    slm_gguf_writer_free(w);
    slm_model_free(m);
    return st;
}
