/* lora.h: LoRA adapters over a llama body — low-rank updates W' = W + (alpha/r)·B·A of chosen
 * weight matrices, their training maths, their GGUF files and merging.
 *
 * Training without a second forward pass (DESIGN.md decision 2): before each step the trainer
 * materialises W_eff = W + s·B·A (s = alpha/r) into the fp32 parameter block from a frozen copy
 * of the base, runs the one forward/backward, and turns the body gradient dW of each target into
 * dA = s·Bᵀ·dW and dB = s·dW·Aᵀ (exact: W_eff is linear in A and in B). The base copy is never
 * written. Dropout on the LoRA input path is therefore not available (the update is folded into
 * W): slm_lora_opts.dropout must be 0. A quantized base is dequantized to fp32 for training
 * (QLoRA-style in what is frozen and saved, not in memory use); the adapter stays separate.
 *
 * Adapter file (llama.cpp's convention, src/llama-adapter.cpp): general.type = "adapter",
 * general.architecture = "llama", adapter.type = "lora", adapter.lora.alpha (f32); per target
 * "<base tensor>.lora_a" F32 ne = [in, r] (A, row-major (r, in)) and ".lora_b" F32 ne = [r, out]
 * (B, row-major (out, r)); scale = alpha / r. slm adds slm.lora.rank and slm.lora.targets, and
 * for a classify adapter the task keys (slm.task, slm.labels, slm.pooling, slm.max_tokens) and
 * the head cls.weight / cls.bias: a classify adapter needs its head; the tokenizer and body come
 * from the base.
 */
#ifndef SLM_TASK_LORA_H
#define SLM_TASK_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "gguf/gguf.h"
#include "model/model.h"

/* Target modules, a bit set. */
enum {
    SLM_LORA_Q = 1, SLM_LORA_K = 2, SLM_LORA_V = 4, SLM_LORA_O = 8,
    SLM_LORA_GATE = 16, SLM_LORA_UP = 32, SLM_LORA_DOWN = 64, SLM_LORA_ALL = 127
};

typedef struct {
    int rank;           /* r >= 1 */
    float alpha;        /* scale = alpha / r; <= 0: alpha = r (scale 1) */
    float dropout;      /* must be 0 (see above) */
    unsigned targets;   /* SLM_LORA_* bits */
} slm_lora_opts;

/* "q,k,v,o,gate,up,down" (any subset, comma separated; "all"). SLM_ERR_ARG naming a bad one. */
slm_status slm_lora_parse_targets(const char *s, unsigned *targets, slm_err *err);
/* The names of a target set into buf ("q,v"). */
void slm_lora_targets_name(unsigned targets, char *buf, size_t size);

typedef struct {
    char name[64];      /* base tensor, "blk.0.attn_q.weight" */
    size_t offset;      /* of W in the model's parameter block */
    int out, in;        /* W (out, in) */
    float *a;           /* (r, in) view into the adapter block */
    float *b;           /* (out, r) view into the adapter block */
} slm_lora_pair;

typedef struct {
    slm_model_config cfg;  /* the body it applies to */
    int rank;
    float alpha;
    unsigned targets;
    int n_pairs;
    slm_lora_pair *pairs;  /* (n_pairs) in model tensor order */
    size_t n_params;
    float *params;         /* (n_params): pair i's A then B, pair after pair */
} slm_lora;

/* A new adapter for cfg: A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming-uniform bound), B = 0, so
 * the adapted model starts equal to the base. Deterministic in seed. */
slm_lora *slm_lora_new(const slm_model_config *cfg, const slm_lora_opts *o, uint64_t seed, slm_err *err);
void slm_lora_free(slm_lora *l);
float slm_lora_scale(const slm_lora *l);

/* params[W] = base[W] + s·B·A for every target (other parameters untouched); params may equal
 * base (then it is the merge in place). */
void slm_lora_apply(const slm_lora *l, const float *base, float *params);
/* From a body gradient block (n_params of the model): dA = s·Bᵀ·dW, dB = s·dW·Aᵀ into dlora
 * (l->n_params, the adapter's layout; overwritten). */
void slm_lora_grad(const slm_lora *l, const float *dparams, float *dlora);

/* Adds general.type/architecture, adapter.*, slm.lora.* and the A/B tensors (pointing into l). */
slm_status slm_lora_save_add(slm_gguf_writer *w, const slm_lora *l, slm_err *err);
/* Reads an adapter file for a body of config cfg. Errors: not an adapter (general.type), not
 * LoRA, architecture not llama, a pair with one half, a tensor naming no body matrix, shapes that
 * do not fit the body ("wrong base model?"), ranks that differ between pairs. */
slm_lora *slm_lora_load(const slm_gguf *g, const slm_model_config *cfg, slm_err *err);

/* The body of any llama GGUF as an fp32 model with a tied output (the LM head dropped): every
 * tensor F32, F16, BF16 or a block type with a dequantizer (a quantized base is dequantized). */
slm_model *slm_lora_body_load(const slm_gguf *g, slm_err *err);

#endif
