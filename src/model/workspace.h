/* workspace.h: private to src/model — the layout of slm_ctx (the forward/backward workspace) and
 * the helpers that forward.c, attention.c, loss.c and backward.c share.
 *
 * Shape letters: N = max_tokens (rows reserved), n = tokens of the current batch, D = dim,
 * qd = H·hd, kvd = Hkv·hd, qkvd = qd + 2·kvd, F = hidden_dim, V = vocab, L = layers.
 * A train workspace keeps one copy of each activation per layer (at stride N rows); an inference
 * workspace has one copy that every layer reuses (the per-layer accessors return the same rows).
 */
#ifndef SLM_MODEL_WORKSPACE_H
#define SLM_MODEL_WORKSPACE_H

#include <stdint.h>

#include "core/threads.h"
#include "model/forward.h"
#include "model/model.h"

/* Most query rows per attention block in the batched path (attention.c's chunk_rows may take
 * fewer): small enough that each sgemm stays single-threaded inside OpenBLAS (m·n·k under its
 * threading threshold) and the causal mask wastes little; large enough for sgemm to run near peak. */
#define SLM_ATT_CHUNK 16
/* A run of at least this many consecutive positions uses the sgemm attention path. */
#define SLM_ATT_MIN_RUN 4
/* Keys (and values) converted per tile when the KV cache is F16: a tile of K and one of V, of
 * this many rows of hd floats, per thread (64 KiB each at hd 64: they stay in L2). */
#define SLM_ATT_KTILE 128

typedef struct {
    int32_t seq, pos, idx;
} slm_tok_key;

struct slm_ctx {
    slm_model_config cfg;
    int max_tokens, max_outputs, train;
    slm_pool *pool;
    int nth;                      /* threads of pool (1 without one) */
    int hd, qd, kvd, qkvd;

    /* the last batch (copies) */
    int n_tokens, n_outputs;
    int state;                    /* 0 nothing run, 1 forward done, 2 d(logits) ready */
    int all_outputs;
    int32_t *tok, *pos, *seq;     /* (N) */
    int32_t *out_rows;            /* (N) batch index of each output row */
    int n_runs;
    int32_t *run_start, *run_len; /* (N) runs: consecutive tokens, one seq, consecutive positions */
    slm_tok_key *sorted;          /* (N) batch sorted by (seq, pos, idx) */
    int n_groups;
    int32_t *grp_start, *grp_len; /* (N) backward: one group per sequence, offsets into sorted */

    /* activations */
    float *res;     /* train (L+1, N, D), else (N, D): residual stream into layer l; res[L] final */
    float *mid;     /* train (L, N, D), else (N, D): residual after attention */
    float *xn1;     /* train (L, N, D), else (N, D): attn_norm output (q/k/v input) */
    float *xn2;     /* train (L, N, D), else = xn1: ffn_norm output (gate/up input) */
    float *rms1;    /* train (L, N), else (N): 1/rms of attn_norm */
    float *rms2;    /* train (L, N), else = rms1 */
    float *qkv;     /* train (L, N, qkvd), else (N, qkvd): q|k|v, q and k after RoPE */
    float *att;     /* train (L, N, qd), else (N, qd): attention output (attn_output input) */
    float *gu;      /* train (L, N, 2F), else (N, 2F): gate|up pre-activations */
    float *h;       /* (N, F): silu(gate)·up (recomputed in the backward) */
    float *xnf;     /* (N, D): output_norm output */
    float *rmsf;    /* (N) */
    float *gather;  /* (max_outputs, D): xnf rows of output tokens when not every token outputs */
    float *logits;  /* (max_outputs, V): one row per output token; d(loss)/d(logits) after the loss */
    double *row_loss; /* (N) */

    /* backward (train only) */
    float *dx;      /* (N, D) gradient of the residual stream */
    float *dxn;     /* (N, D) */
    float *dqkv;    /* (N, qkvd) */
    float *datt;    /* (N, qd) */
    float *dh;      /* (N, F) */
    float *dgu;     /* (N, 2F) */
    slm_layer_tensors *glayers; /* (L) views into the caller's gradient block */

    /* below these sizes work runs on the caller (waking the pool costs more than it saves);
     * tests lower them to force the splits */
    double split_min_macs;      /* a product's n·in·out */
    double att_split_min;       /* attention's estimated multiply-adds */

    float *rope_cos, *rope_sin; /* (ctx_len, hd/2) */
    float *scratch;             /* (nth, scratch_per_thread) attention blocks */
    float *kvtile;              /* (nth, 2, SLM_ATT_KTILE, hd) F16 cache: converted K and V tiles */
    void *qscratch;             /* inference only: slm_qmatmul's scratch (quantized activations) */
    size_t scratch_per_thread;

    /* dropout (dropout.c; train workspaces only): off while drop_p is 0 */
    float drop_p, drop_scale;   /* probability; 1/(kept share) */
    uint32_t drop_thr;          /* a 16-bit draw below this drops */
    uint64_t drop_key;

    void *block;                /* the one allocation all the arrays above live in */
};

/* Per-layer views (train: layer l's rows; inference: the shared rows). */
static inline size_t slm_ws_stride(const slm_ctx *c, size_t row_floats) {
    return c->train ? (size_t)c->max_tokens * row_floats : 0;
}

/* Calls fn(c, arg, r0, r1) on the pool, rows [0, n) split statically into contiguous slices. */
typedef void (*slm_rows_fn)(slm_ctx *c, void *arg, int r0, int r1);
void slm_ws_par_rows(slm_ctx *c, int n, slm_rows_fn fn, void *arg);

/* The linear-layer products of kernels/matmul.c, split across the pool: each thread runs one
 * single-threaded sgemm on its slice (rows of the batch when there are enough, else columns of
 * the output; weight gradients by rows of W). Every output element is computed by one call.
 * Small products, and all of them when OpenBLAS was given more than one thread, run whole. */
void slm_ws_matmul_fwd(slm_ctx *c, float *y, const float *x, const float *w, int n, int in, int out,
                       float beta);
void slm_ws_matmul_bwd(slm_ctx *c, float *dx, float *dw, const float *dy, const float *x,
                       const float *w, int n, int in, int out, float beta_dx);

/* Attention of layer l over the batch (attention.c). Forward: reads q from qkv and K/V from the
 * cache, writes att. Backward: reads q/k/v from qkv (every key is a batch token), datt; writes
 * dqkv (q, k, v parts). */
void slm_attention_forward(slm_ctx *c, const slm_kv_cache *kv, int l, const float *qkv, float *att);
void slm_attention_backward(slm_ctx *c, const float *qkv, const float *datt, float *dqkv);

/* Dropout (dropout.c) of site 0 (attention output) or 1 (feed-forward hidden) of a layer, in
 * place on the batch's rows of width floats: kept elements scaled by 1/(1 - p), the others zeroed;
 * the same call on the same batch and key zeroes the same elements. Nothing when dropout is off. */
#define SLM_DROP_ATT 0
#define SLM_DROP_FFN 1
void slm_ws_dropout(slm_ctx *c, float *x, int width, int layer, int site);

#endif
