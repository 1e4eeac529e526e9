/* workspace.c: creating and freeing slm_ctx (the forward/backward workspace), its accessors, and
 * the static splits that run work on the thread pool: rows for the elementwise phases, rows or
 * columns for the linear layers' sgemms.
 *
 * Every array is sized once, here, for max_tokens rows, then carved from one allocation (a size
 * table, then pointers), so no forward or backward call allocates.
 *
 * Why the library splits the sgemms itself instead of leaving them to OpenBLAS's threads: the
 * forward and backward alternate sgemms with elementwise and attention phases dozens of times per
 * step; with two thread pools (OpenBLAS's workers spin-yielding after each product, ours waking
 * for the next phase) they fight for the cores. One pool doing everything, with OpenBLAS set to
 * one thread (slm_blas_set_threads(1)), measured ~15% faster on the 15M shape (bench_train).
 * When the caller has given OpenBLAS more than one thread, the products are left to it whole.
 */
#include "model/workspace.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/blas_threads.h"
#include "kernels/kernels.h"
#include "kernels/qmatmul.h"

typedef struct {
    void **ptr;
    size_t bytes;
} ws_slot;

slm_ctx *slm_ctx_new(const slm_model_config *cfg, int max_tokens, int train, slm_pool *pool,
                     slm_err *err) {
    return slm_ctx_new_outputs(cfg, max_tokens, max_tokens, train, pool, err);
}

slm_ctx *slm_ctx_new_outputs(const slm_model_config *cfg, int max_tokens, int max_outputs, int train,
                             slm_pool *pool, slm_err *err) {
    if (slm_model_config_check(cfg, err) != SLM_OK) return NULL;
    if (max_tokens < 1 || max_tokens > (1 << 24)) {
        slm_err_set(err, SLM_ERR_ARG, "workspace: max_tokens %d must be in [1, %d]", max_tokens, 1 << 24);
        return NULL;
    }
    if (max_outputs < 1 || max_outputs > max_tokens) {
        slm_err_set(err, SLM_ERR_ARG, "workspace: max_outputs %d must be in [1, max_tokens %d]",
                    max_outputs, max_tokens);
        return NULL;
    }
    slm_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        slm_err_set(err, SLM_ERR_NOMEM, "workspace: out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    c->max_tokens = max_tokens;
    c->max_outputs = max_outputs;
    c->train = train ? 1 : 0;
    c->pool = pool;
    c->nth = slm_pool_size(pool);
    c->split_min_macs = 1 << 20;
    c->att_split_min = 1e5;
    c->hd = slm_model_head_dim(cfg);
    c->qd = c->hd * cfg->n_heads;
    c->kvd = c->hd * cfg->n_kv_heads;
    c->qkvd = c->qd + 2 * c->kvd;

    size_t N = (size_t)max_tokens, D = (size_t)cfg->dim, F = (size_t)cfg->hidden_dim,
           V = (size_t)cfg->n_vocab, L = (size_t)cfg->n_layers, T = (size_t)cfg->ctx_len;
    int max_in = cfg->dim > c->qd ? cfg->dim : c->qd;
    if (cfg->hidden_dim > max_in) max_in = cfg->hidden_dim;
    size_t Lt = c->train ? L : 1, f = sizeof(float), i4 = sizeof(int32_t);
    /* attention scratch: two blocks of CHUNK query rows by up to ctx_len keys */
    c->scratch_per_thread = 2 * (size_t)SLM_ATT_CHUNK * T;
    /* the backward's per-token path gathers a sequence's k, v, dk, dv of one head, plus p, dp */
    size_t gathered = 4 * T * (size_t)c->hd + 2 * T;
    if (c->train && gathered > c->scratch_per_thread) c->scratch_per_thread = gathered;
    if (c->scratch_per_thread % 16) c->scratch_per_thread += 16 - c->scratch_per_thread % 16;

    ws_slot slots[] = {
        {(void **)&c->tok, N * i4},
        {(void **)&c->pos, N * i4},
        {(void **)&c->seq, N * i4},
        {(void **)&c->out_rows, N * i4},
        {(void **)&c->run_start, N * i4},
        {(void **)&c->run_len, N * i4},
        {(void **)&c->sorted, N * sizeof(slm_tok_key)},
        {(void **)&c->grp_start, N * i4},
        {(void **)&c->grp_len, N * i4},
        {(void **)&c->res, (c->train ? L + 1 : 1) * N * D * f},
        {(void **)&c->mid, Lt * N * D * f},
        {(void **)&c->xn1, Lt * N * D * f},
        {(void **)&c->xn2, c->train ? L * N * D * f : 0},
        {(void **)&c->rms1, Lt * N * f},
        {(void **)&c->rms2, c->train ? L * N * f : 0},
        {(void **)&c->qkv, Lt * N * (size_t)c->qkvd * f},
        {(void **)&c->att, Lt * N * (size_t)c->qd * f},
        {(void **)&c->gu, Lt * N * 2 * F * f},
        {(void **)&c->h, N * F * f},
        {(void **)&c->xnf, N * D * f},
        {(void **)&c->rmsf, N * f},
        {(void **)&c->gather, (size_t)max_outputs * D * f},
        {(void **)&c->logits, (size_t)max_outputs * V * f},
        {(void **)&c->row_loss, N * sizeof(double)},
        {(void **)&c->dx, c->train ? N * D * f : 0},
        {(void **)&c->dxn, c->train ? N * D * f : 0},
        {(void **)&c->dqkv, c->train ? N * (size_t)c->qkvd * f : 0},
        {(void **)&c->datt, c->train ? N * (size_t)c->qd * f : 0},
        {(void **)&c->dh, c->train ? N * F * f : 0},
        {(void **)&c->dgu, c->train ? N * 2 * F * f : 0},
        {(void **)&c->glayers, c->train ? L * sizeof(slm_layer_tensors) : 0},
        {(void **)&c->rope_cos, T * (size_t)(c->hd / 2) * f},
        {(void **)&c->rope_sin, T * (size_t)(c->hd / 2) * f},
        {(void **)&c->scratch, (size_t)c->nth * c->scratch_per_thread * f},
        {(void **)&c->kvtile, (size_t)c->nth * 2 * SLM_ATT_KTILE * (size_t)c->hd * f},
        {(void **)&c->qscratch, c->train ? 0 : slm_qmatmul_scratch_bytes(max_tokens, max_in, c->nth)},
    };
    size_t n_slots = sizeof slots / sizeof slots[0], total = 0;
    for (size_t i = 0; i < n_slots; i++) total += (slots[i].bytes + 63) / 64 * 64;
    c->block = aligned_alloc(64, total ? total : 64);
    if (!c->block) {
        slm_err_set(err, SLM_ERR_NOMEM, "workspace: out of memory for %zu MiB (%d tokens%s)",
                    total >> 20, max_tokens, train ? ", training" : "");
        free(c);
        return NULL;
    }
    char *p = c->block;
    for (size_t i = 0; i < n_slots; i++) {
        *slots[i].ptr = slots[i].bytes ? p : NULL;
        p += (slots[i].bytes + 63) / 64 * 64;
    }
    if (!c->train) {
        c->xn2 = c->xn1;
        c->rms2 = c->rms1;
    }
    slm_rope_table(c->rope_cos, c->rope_sin, cfg->ctx_len, c->hd, (double)cfg->rope_theta);
    return c;
}

void slm_ctx_free(slm_ctx *c) {
    if (!c) return;
    free(c->block);
    free(c);
}

float *slm_ctx_logits(slm_ctx *c) { return c->logits; }
int slm_ctx_n_outputs(const slm_ctx *c) { return c->state ? c->n_outputs : 0; }
const float *slm_ctx_hidden(const slm_ctx *c) { return c->xnf; }

float *slm_ctx_dlogits(slm_ctx *c) {
    if (c->state == 0) return NULL;
    c->state = 2;
    return c->logits;
}

typedef struct {
    slm_ctx *c;
    int n;
    slm_rows_fn fn;
    void *arg;
} rows_job;

static void rows_tramp(void *ctx, int ith, int nth) {
    rows_job *j = ctx;
    size_t b, e;
    slm_pool_slice((size_t)j->n, ith, nth, &b, &e);
    if (e > b) j->fn(j->c, j->arg, (int)b, (int)e);
}

void slm_ws_par_rows(slm_ctx *c, int n, slm_rows_fn fn, void *arg) {
    if (n <= 0) return;
    rows_job j = {c, n, fn, arg};
    if (c->nth == 1 || n < 2 * c->nth) {
        fn(c, arg, 0, n);
        return;
    }
    slm_pool_run(c->pool, rows_tramp, &j);
}

/* ---- linear layers on the pool ---- */

typedef struct {
    float *y, *dx, *dw;
    const float *x, *w, *dy;
    int n, in, out, by_rows;
    float beta;
} mm_job;

static int split_rows(const slm_ctx *c, int n) { return n >= 16 * c->nth; }

static int run_whole(const slm_ctx *c, int n, int in, int out) {
    return c->nth == 1 || (double)n * in * out < c->split_min_macs || slm_blas_threads() > 1;
}

static void mm_fwd_tramp(void *ctx, int ith, int nth) {
    const mm_job *j = ctx;
    size_t b, e;
    if (j->by_rows) {
        slm_pool_slice((size_t)j->n, ith, nth, &b, &e);
        if (e > b)
            slm_matmul_fwd(j->y + b * j->out, j->x + b * j->in, j->w, (int)(e - b), j->in, j->out, j->beta);
    } else { /* columns of y = rows of W */
        slm_pool_slice((size_t)j->out, ith, nth, &b, &e);
        if (e <= b) return;
        if (j->n == 1)
            slm_matmul_fwd(j->y + b, j->x, j->w + b * j->in, 1, j->in, (int)(e - b), j->beta);
        else
            slm_gemm(0, 1, j->n, (int)(e - b), j->in, 1.0f, j->x, j->in, j->w + b * j->in, j->in,
                     j->beta, j->y + b, j->out);
    }
}

void slm_ws_matmul_fwd(slm_ctx *c, float *y, const float *x, const float *w, int n, int in, int out,
                       float beta) {
    if (run_whole(c, n, in, out)) {
        slm_matmul_fwd(y, x, w, n, in, out, beta);
        return;
    }
    mm_job j = {.y = y, .x = x, .w = w, .n = n, .in = in, .out = out, .beta = beta,
                .by_rows = split_rows(c, n)};
    slm_pool_run(c->pool, mm_fwd_tramp, &j);
}

static void mm_dx_tramp(void *ctx, int ith, int nth) {
    const mm_job *j = ctx;
    size_t b, e;
    if (j->by_rows) {
        slm_pool_slice((size_t)j->n, ith, nth, &b, &e);
        if (e > b)
            slm_gemm(0, 0, (int)(e - b), j->in, j->out, 1.0f, j->dy + b * j->out, j->out, j->w, j->in,
                     j->beta, j->dx + b * j->in, j->in);
    } else { /* columns of dx = columns of W */
        slm_pool_slice((size_t)j->in, ith, nth, &b, &e);
        if (e > b)
            slm_gemm(0, 0, j->n, (int)(e - b), j->out, 1.0f, j->dy, j->out, j->w + b, j->in, j->beta,
                     j->dx + b, j->in);
    }
}

static void mm_dw_tramp(void *ctx, int ith, int nth) {
    const mm_job *j = ctx;
    size_t b, e;
    slm_pool_slice((size_t)j->out, ith, nth, &b, &e); /* rows of dW = columns of dy */
    if (e > b)
        slm_gemm(1, 0, (int)(e - b), j->in, j->n, 1.0f, j->dy + b, j->out, j->x, j->in, 1.0f,
                 j->dw + b * j->in, j->in);
}

void slm_ws_matmul_bwd(slm_ctx *c, float *dx, float *dw, const float *dy, const float *x,
                       const float *w, int n, int in, int out, float beta_dx) {
    if (run_whole(c, n, in, out)) {
        slm_matmul_bwd(dx, dw, dy, x, w, n, in, out, beta_dx);
        return;
    }
    mm_job j = {.dx = dx, .dw = dw, .dy = dy, .x = x, .w = w, .n = n, .in = in, .out = out,
                .beta = beta_dx, .by_rows = split_rows(c, n)};
    if (dx) slm_pool_run(c->pool, mm_dx_tramp, &j);
    if (dw) slm_pool_run(c->pool, mm_dw_tramp, &j);
}
