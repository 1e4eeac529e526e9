/* model.h: the Llama-family decoder — configuration, parameters, GGUF load/save.
 *
 * Architecture (as llama.cpp's `llama`): token embedding; per layer x += Wo·attn(RoPE(Wq·n(x)),
 * RoPE(Wk·n(x)), Wv·n(x)) and x += Wdown·(silu(Wgate·n(x)) * Wup·n(x)) with n = RMSNorm; final
 * RMSNorm; output projection (optionally tied to the embedding). RoPE rotates adjacent pairs
 * (x[2i], x[2i+1]) by pos·theta^(-2i/head_dim) — the layout llama.cpp uses for `llama` GGUFs.
 * Attention is grouped-query: query head h reads KV head h / (n_heads / n_kv_heads).
 *
 * All parameters live in one float block (params), carved into tensors in a fixed order; gradient
 * and optimizer blocks use the same layout, so slm_model_carve can view any of them.
 * Weight matrices are row-major (out, in), i.e. GGUF ne = [in, out].
 */
#ifndef SLM_MODEL_MODEL_H
#define SLM_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "gguf/gguf.h"
#include "kernels/qmatmul.h"

typedef struct {
    int n_vocab;     /* V */
    int dim;         /* D: residual width */
    int n_layers;    /* L */
    int n_heads;     /* H: query heads; head_dim hd = D / H */
    int n_kv_heads;  /* Hkv: key/value heads, H % Hkv == 0 */
    int hidden_dim;  /* F: SwiGLU width */
    int ctx_len;     /* maximum positions (llama.context_length) */
    float rope_theta;
    float norm_eps;
    int tied_output; /* 1: output projection is token_embd (no output.weight tensor) */
    /* Family details (all zero for llama, the trainable fp32 model's only layout): */
    int arch;        /* slm_arch: SLM_ARCH_LLAMA (0), SLM_ARCH_QWEN2, SLM_ARCH_QWEN3 */
    int head_dim;    /* hd; 0 means D / H (qwen3's key_length may differ) */
    int rope_neox;   /* 1: RoPE rotates (x[i], x[i + hd/2]) (llama.cpp's NEOX mode: qwen2/3) */
    int qkv_bias;    /* 1: attn_q/k/v add biases (qwen2) */
    int qk_norm;     /* 1: per-head RMSNorm of q and k (weights of hd) before RoPE (qwen3) */
} slm_model_config;

typedef enum { SLM_ARCH_LLAMA = 0, SLM_ARCH_QWEN2 = 1, SLM_ARCH_QWEN3 = 2 } slm_arch;
/* "llama", "qwen2", "qwen3" (NULL for an unknown value). */
const char *slm_arch_name(int arch);

/* The head dimension hd of a config (head_dim, or D / H when 0). */
static inline int slm_model_head_dim(const slm_model_config *c) {
    return c->head_dim > 0 ? c->head_dim : (c->n_heads > 0 ? c->dim / c->n_heads : 0);
}

/* Named shapes: "tiny" (~1M parameters with a 4096 vocab, for tests and the demo), "small"
 * (~15M: dim 288, 6 layers, 6 heads, hidden 768), "medium" (~42M: 512, 8, 8, 1376), "base"
 * (~110M: 768, 12, 12, 2048). Unknown name: SLM_ERR_ARG listing the known ones. */
slm_status slm_model_preset(const char *name, int n_vocab, int ctx_len, slm_model_config *cfg,
                            slm_err *err);
/* Checks every field (positive sizes, D % H == 0, H % Hkv == 0, even head_dim, ...). */
slm_status slm_model_config_check(const slm_model_config *cfg, slm_err *err);

typedef struct {
    float *attn_norm;   /* (D) */
    float *wq;          /* (H*hd, D) */
    float *wk;          /* (Hkv*hd, D) */
    float *wv;          /* (Hkv*hd, D) */
    float *wo;          /* (D, H*hd) */
    float *ffn_norm;    /* (D) */
    float *w_gate;      /* (F, D) */
    float *w_up;        /* (F, D) */
    float *w_down;      /* (D, F) */
} slm_layer_tensors;

typedef struct {
    float *token_embd;   /* (V, D) */
    slm_layer_tensors *layers; /* (L) */
    float *output_norm;  /* (D) */
    float *output;       /* (V, D); equals token_embd when tied */
} slm_model_tensors;

/* One weight matrix of the inference representation (DESIGN.md decision 4): rows of ggml blocks
 * read where they lie (the GGUF's mmap) — F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K. */
typedef slm_qmat slm_weight;

typedef struct {
    const float *attn_norm, *ffn_norm;  /* (D) */
    const float *bq, *bk, *bv;          /* (qd), (kvd), (kvd); NULL without qkv_bias */
    const float *q_norm, *k_norm;       /* (hd); NULL without qk_norm */
    slm_weight wq, wk, wv, wo;          /* (qd, D), (kvd, D), (kvd, D), (D, qd) */
    slm_weight w_gate, w_up, w_down;    /* (F, D), (F, D), (D, F) */
} slm_layer_weights;

typedef struct {
    slm_weight token_embd;          /* (V, D) */
    slm_weight output;              /* (V, D); the same as token_embd when tied */
    const float *output_norm;       /* (D) */
    slm_layer_weights *layers;      /* (L) */
    uint64_t weight_bytes;          /* bytes of every matrix as stored (the tied one once) */
} slm_mapped_weights;

typedef struct {
    slm_model_config cfg;
    size_t n_params;       /* floats in params (tied output counted once) */
    float *params;         /* (n_params) one block */
    slm_model_tensors w;   /* views into params (fp32 models; NULL pointers when mapped) */
    /* Inference models from slm_model_load_mapped: the matrices where they lie in the GGUF (which
     * must outlive the model); params then holds only the small vectors (norms, biases) as F32.
     * NULL for an fp32 (trainable) model. */
    slm_mapped_weights *mapped;
} slm_model;

/* Allocates a model with zeroed parameters. */
slm_model *slm_model_new(const slm_model_config *cfg, slm_err *err);
void slm_model_free(slm_model *m);
/* GPT-2/llm.c-style init: weights N(0, 0.02), residual output projections (wo, w_down) scaled by
 * 1/sqrt(2L), norms 1. Deterministic in seed. */
void slm_model_init_random(slm_model *m, uint64_t seed);

/* Number of floats a config's parameter block holds. */
size_t slm_model_param_count(const slm_model_config *cfg);
/* Carves a block of slm_model_param_count floats into tensor views (params, grads, Adam moments).
 * layers must hold cfg->n_layers entries. */
void slm_model_carve(const slm_model_config *cfg, float *block, slm_model_tensors *t,
                     slm_layer_tensors *layers);

/* The i-th tensor of the model in GGUF terms, i in [0, slm_model_n_tensors): its llama.cpp name
 * ("blk.3.attn_q.weight"), its offset in the parameter block, and its shape (ne[0] contiguous). */
typedef struct {
    char name[64];
    size_t offset;   /* in floats from the start of the block */
    int n_dims;
    uint64_t ne[2];
} slm_model_tensor_info;
int slm_model_n_tensors(const slm_model_config *cfg);
void slm_model_tensor_at(const slm_model_config *cfg, int i, slm_model_tensor_info *info);

/* Reads the config from llama.* keys (architecture must be "llama"; others: SLM_ERR_UNSUPPORTED
 * naming it) and the tensors (F32 or F16, converted to F32). Missing or misshapen tensor: an
 * error naming it, its expected and its found shape. */
slm_model *slm_model_load(const slm_gguf *g, slm_err *err);
slm_status slm_model_config_from_gguf(const slm_gguf *g, slm_model_config *cfg, slm_err *err);
/* The config of any architecture slm runs (llama, qwen2, qwen3; keys <arch>.*), with the tensor
 * facts it depends on (vocabulary from token_embd, tied output, biases). slm_model_config_from_gguf
 * is this plus "must be llama" (what training handles). */
slm_status slm_model_config_read(const slm_gguf *g, slm_model_config *cfg, slm_err *err);

/* The inference path: reads the config (architectures llama, qwen2, qwen3; keys <arch>.*) and
 * points each weight matrix into g's mmap without converting it (F32, F16, BF16, Q8_0, Q4_0,
 * Q4_K, Q6_K); norms and biases are converted to F32 into params. g must stay open while the
 * model is used. Such a model runs forward (inference, generation, evaluation) but not backward.
 * Errors: an unsupported architecture or tensor type (SLM_ERR_UNSUPPORTED naming it and the
 * tensor), missing or misshapen tensors (SLM_ERR_FORMAT naming them). */
slm_model *slm_model_load_mapped(const slm_gguf *g, slm_err *err);
/* Bytes of weight matrices a forward pass reads per token (every matrix once; the tied
 * embedding/output once). For an fp32 model: 4 bytes per matrix element. */
uint64_t slm_model_weight_bytes(const slm_model *m);

/* Adds general.architecture = "llama", the llama.* keys and the F32 tensors to w. The tensors
 * point into m->params, which must outlive slm_gguf_writer_write. */
slm_status slm_model_save(const slm_model *m, slm_gguf_writer *w, slm_err *err);

#endif
