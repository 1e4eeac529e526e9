/* forward.h: the one batched forward pass (DESIGN.md decision 2), its workspace and KV cache, the
 * cross-entropy loss and the backward pass.
 *
 * A batch is a list of tokens, each with its position and sequence id (its KV cache slot), like
 * llama.cpp's llama_batch. Token i attends to positions [0, pos[i]] of slot seq[i]; the batch's
 * own keys and values are written to the cache before attention, so a whole prompt (or B training
 * sequences of T tokens: seq = b, pos = t) goes in one call and generation feeds one token per
 * sequence per call. Training, evaluation, prompt processing and generation all use this pass.
 *
 * Shapes: n = batch tokens, D = dim, V = vocab, hd = head dim, kvd = Hkv*hd.
 */
#ifndef SLM_MODEL_FORWARD_H
#define SLM_MODEL_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/threads.h"
#include "model/model.h"

typedef struct {
    int n_tokens;
    const int32_t *token;  /* (n) token ids */
    const int32_t *pos;    /* (n) position within its sequence, < the cache's ctx_len */
    const int32_t *seq;    /* (n) sequence id = KV cache slot */
    const int8_t *output;  /* (n) nonzero: compute logits for this token; NULL: for every token */
} slm_batch;

/* Keys and values in F32 (k, v) or in IEEE half (kh, vh: half the memory and half the bytes
 * attention reads; each value rounded once when written, read back exactly). The other pair is
 * NULL. An F16 cache serves inference only: the backward pass refuses it (its gradients are those
 * of the unrounded keys). */
typedef struct {
    int n_layers, n_slots, ctx_len, kv_dim;
    uint32_t type; /* SLM_GGML_F32 (0) or SLM_GGML_F16 (1) */
    float *k;      /* F32: (L, slots, ctx_len, kvd) */
    float *v;      /* F32: (L, slots, ctx_len, kvd) */
    uint16_t *kh;  /* F16: (L, slots, ctx_len, kvd) */
    uint16_t *vh;  /* F16: (L, slots, ctx_len, kvd) */
} slm_kv_cache;

/* ctx_len must be in [1, cfg->ctx_len] (SLM_ERR_RANGE otherwise). The cache starts zeroed.
 * slm_kv_cache_new is slm_kv_cache_new_type(..., SLM_GGML_F32, ...); type must be SLM_GGML_F32
 * or SLM_GGML_F16 (SLM_ERR_ARG otherwise). */
slm_kv_cache *slm_kv_cache_new(const slm_model_config *cfg, int n_slots, int ctx_len, slm_err *err);
slm_kv_cache *slm_kv_cache_new_type(const slm_model_config *cfg, int n_slots, int ctx_len,
                                    uint32_t type, slm_err *err);
void slm_kv_cache_free(slm_kv_cache *kv);
/* Bytes of keys and values held (both tensors). */
size_t slm_kv_cache_bytes(const slm_kv_cache *kv);
/* "f32" or "f16" (case-insensitive) -> *type; SLM_ERR_ARG naming the text otherwise. */
slm_status slm_kv_type_from_name(const char *name, uint32_t *type, slm_err *err);
/* Zeroes one slot (slot >= 0) or every slot (slot < 0). Not needed for correctness — a position is
 * always written before it is read — but keeps a reused slot free of an old sequence's data. */
void slm_kv_cache_clear(slm_kv_cache *kv, int slot);

/* The workspace of one forward pass: activations for up to max_tokens batch tokens, sized once.
 * With train != 0 every activation the backward pass needs is kept. pool may be NULL (one
 * thread). Threads: with a pool and OpenBLAS at one thread (slm_blas_set_threads(1)) the library
 * splits every product across the pool itself — the fastest arrangement for training; with
 * OpenBLAS at several threads the products are left to OpenBLAS whole (lower latency for one-token
 * decoding). Results are deterministic run to run for a given thread arrangement. */
typedef struct slm_ctx slm_ctx;
slm_ctx *slm_ctx_new(const slm_model_config *cfg, int max_tokens, int train, slm_pool *pool,
                     slm_err *err);
/* The same with room for logits of at most max_outputs tokens per batch (<= max_tokens): a
 * prompt of thousands of tokens that wants the last token's logits needs one row of V, not
 * thousands. A batch asking for more outputs is SLM_ERR_RANGE. slm_ctx_new: max_outputs = max_tokens. */
slm_ctx *slm_ctx_new_outputs(const slm_model_config *cfg, int max_tokens, int max_outputs, int train,
                             slm_pool *pool, slm_err *err);
void slm_ctx_free(slm_ctx *c);
/* Logits of the last forward: one row of V floats per output token, in batch order. */
float *slm_ctx_logits(slm_ctx *c);
int slm_ctx_n_outputs(const slm_ctx *c);
/* The final hidden state (after output_norm) of the last forward, (n, D), every batch token. */
const float *slm_ctx_hidden(const slm_ctx *c);
/* For a loss computed by the caller: the logits buffer, which the caller overwrites with
 * d(loss)/d(logits) (one row of V per output token) before slm_model_backward. Calling it declares
 * the buffer to hold gradients. NULL before any forward. */
float *slm_ctx_dlogits(slm_ctx *c);

/* Dropout for training: from the next forward on, every element of each layer's attention output
 * (the input of attn_output) and feed-forward hidden activation (the input of ffn_down) is zeroed
 * with probability p and the rest scaled by 1/(1 - p); the backward of the same batch applies the
 * same mask. The mask is a pure function of (key, layer, batch row, column): give each training
 * batch its own key, and turn dropout off (p = 0, the default) before evaluating. SLM_ERR_ARG for p
 * outside [0, 1) or p > 0 on an inference workspace. */
slm_status slm_ctx_set_dropout(slm_ctx *c, float p, uint64_t key, slm_err *err);
/* The dropout key of a training run's micro-batch (step, micro): every trainer derives its masks
 * from its seed this way, so a resumed run drops what the uninterrupted one dropped. */
uint64_t slm_dropout_key(uint64_t seed, int64_t step, int micro);

/* Runs the model. Errors (SLM_ERR_RANGE naming the batch index): token out of vocab, pos out of
 * the cache, seq out of slots, more tokens than the workspace holds. SLM_ERR_ARG: an empty batch,
 * two tokens with the same (seq, pos), a cache or workspace made for another config. Nothing is
 * written to the cache unless the whole batch is valid. */
slm_status slm_model_forward(const slm_model *m, slm_ctx *c, slm_kv_cache *kv, const slm_batch *b,
                             slm_err *err);

/* Mean cross-entropy of the last forward's logits against targets (n, -1 = not counted); needs
 * logits for every token. Replaces the logits with d(loss·scale)/d(logits) for the backward pass.
 * *n_counted receives the number of counted tokens (the mean's denominator); with none counted the
 * loss is 0 and so is the gradient. Returns NAN (and changes nothing) when there is no fresh
 * forward (none yet, or its logits already replaced), some token has no logits, or a target is
 * outside [-1, V). */
float slm_model_loss(slm_ctx *c, const int32_t *targets, float scale, int *n_counted);

/* Accumulates (+=) into grads (a block of slm_model_param_count floats) the gradient of the loss
 * whose d/dlogits slm_model_loss left in the workspace. The workspace must be a train one and the
 * batch the one just run forward; every position a token attended to must be in that batch
 * (SLM_ERR_ARG otherwise). The cache must not have been changed since the forward. */
slm_status slm_model_backward(const slm_model *m, slm_ctx *c, slm_kv_cache *kv, const slm_batch *b,
                              float *grads, slm_err *err);

/* The same from a gradient with respect to the final hidden state instead of the logits: dhidden
 * is (n, D), d(loss)/d(slm_ctx_hidden) for every batch token (zero rows for tokens the loss does
 * not read). The output projection gets no gradient. Needs a fresh forward on a train workspace
 * (the batch may ask for no logits at all: output flags all zero); slm_model_loss is not needed. */
slm_status slm_model_backward_hidden(const slm_model *m, slm_ctx *c, slm_kv_cache *kv,
                                     const slm_batch *b, const float *dhidden, float *grads,
                                     slm_err *err);

#endif
