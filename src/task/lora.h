/* lora.h: LoRA adapters over a llama body — low-rank updates W' = W + (alpha/r)·B·A of chosen
 * weight matrices, their training maths, their GGUF files and merging.
 *
 * Training without a second forward pass (DESIGN.md decision 2): before each step the trainer
 * materialises W_eff = W + s·B·A (s = alpha/r) into the fp32 parameter block from a frozen copy
 * of the base, runs the one forward/backward, and turns the body gradient dW of each target into
 * dA = s·Bᵀ·dW and dB = s·dW·Aᵀ (exact: W_eff is linear in A and in B). The base copy is never
 * written. A quantized base is dequantized to fp32 for training (QLoRA-style in what is frozen and
 * saved, not in memory use); the adapter stays separate.
 *
 * Dropout. PEFT's lora_dropout drops input features of the LoRA path per token: y = W·x +
 * s·B·A·drop(x), a different update for every token, which no single W_eff can fold. What folds
 * is rank dropout (LyCORIS's rank_dropout): at each optimizer step every one of the r components
 * of every adapted matrix is kept with probability 1-P (mask m, r entries per matrix) and the step
 * uses W_eff = W + s·B·diag(m)·A/(1-P), with dA = s/(1-P)·diag(m)·Bᵀ·dW and dB = s/(1-P)·dW·
 * (diag(m)·A)ᵀ (a dropped component has zero gradient that step). m is a pure function of (seed,
 * step, matrix, component) through slm_rng_hash, so a resumed run draws the same masks without
 * saved state. E[W_eff] is the undropped W + s·B·A, which validation, evaluation, saving, merging
 * and inference use (no mask, no 1/(1-P)).
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
    float dropout;      /* rank dropout P in [0, 1) of training steps (see above); 0 = none */
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
    float dropout;         /* rank dropout P of training steps (slm_lora_opts); not saved, 0 when loaded */
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
 * base (then it is the merge in place). No dropout: validation, saving, merging, inference. */
void slm_lora_apply(const slm_lora *l, const float *base, float *params);
/* From a body gradient block (n_params of the model): dA = s·Bᵀ·dW, dB = s·dW·Aᵀ into dlora
 * (l->n_params, the adapter's layout; overwritten). */
void slm_lora_grad(const slm_lora *l, const float *dparams, float *dlora);

/* Rank dropout's mask entry of component k of pair `pair` at optimizer step `step`: 1 (kept) with
 * probability 1-p, a pure function of its arguments (p = 0: always 1). */
int slm_lora_rank_keep(uint64_t seed, uint64_t step, int pair, int k, float p);
/* The training step's forms with P = l->dropout and the mask of (seed, step):
 * params[W] = base[W] + s/(1-P)·B·diag(m)·A (params != base), and dA = s/(1-P)·diag(m)·Bᵀ·dW,
 * dB = s/(1-P)·dW·(diag(m)·A)ᵀ, exactly 0 in dropped rows of dA and columns of dB. With P = 0
 * they are slm_lora_apply and slm_lora_grad, bit for bit. */
void slm_lora_apply_step(const slm_lora *l, const float *base, float *params, uint64_t seed, uint64_t step);
void slm_lora_grad_step(const slm_lora *l, const float *dparams, float *dlora, uint64_t seed, uint64_t step);

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
