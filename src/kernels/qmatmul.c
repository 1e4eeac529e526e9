/* qmatmul.c: linear layers over F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q6_K weight rows (see qmatmul.h).
 *
 * Three strategies, chosen per call by the weight type and the number of tokens n:
 *  - SGEMM:  F32 rows, n tokens: one single-threaded sgemm (sgemv for n == 1) per thread slice.
 *  - DEQUANT: F16/BF16 rows with n > 1: each thread converts SLM_QMM_DQ_ROWS rows at a time into its
 *    scratch tile and runs sgemm on it; conversion costs 1/n of the multiply-adds.
 *  - VECDOT: block formats (and F16/BF16 with one token): activations quantized once to the type's
 *    vec_dot_type, then one traits->vec_dot per (token, output row), over a tile of output rows
 *    at a time so the tile's weights stay in cache while every token passes over them.
 * The quant traits come from src/quant (slm_quant_get).
 */
#include "kernels/qmatmul.h"

#include <string.h>

#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "quant/gemm.h"
#include "quant/quant.h"

static const slm_quant_traits *qget(uint32_t type) { return slm_quant_get(type); }

/* rows per dequantized tile: 32 rows x cols floats of scratch per thread */
#define SLM_QMM_DQ_ROWS 32
/* below this many multiply-adds a product runs on the caller alone */
#define SLM_QMM_SPLIT_MIN (1 << 16)

static float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void row_to_float(uint32_t type, const void *src, float *dst, int n) {
    switch (type) {
    case SLM_GGML_F32: memcpy(dst, src, sizeof(float) * (size_t)n); return;
    case SLM_GGML_F16: {
        const unsigned char *p = src;
        for (int i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * (size_t)i, 2);
            dst[i] = slm_f16_to_f32(h);
        }
        return;
    }
    case SLM_GGML_BF16: {
        const unsigned char *p = src;
        for (int i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * (size_t)i, 2);
            dst[i] = bf16_to_f32(h);
        }
        return;
    }
    default: {
        const slm_quant_traits *tr = qget(type);
        SLM_ASSERT(tr && tr->to_float);
        tr->to_float(src, dst, n);
    }
    }
}

void slm_qmat_row(const slm_qmat *w, int r, float *dst) {
    row_to_float(w->type, (const char *)w->data + (size_t)r * w->row_bytes, dst, w->cols);
}

slm_status slm_qmat_check_type(uint32_t type, const char *what, slm_err *err) {
    switch (type) {
    case SLM_GGML_F32: case SLM_GGML_F16: case SLM_GGML_BF16: return SLM_OK;
    case SLM_GGML_Q8_0: case SLM_GGML_Q4_0: case SLM_GGML_Q4_K: case SLM_GGML_Q6_K: {
        const slm_quant_traits *tr = qget(type);
        if (tr && tr->vec_dot && tr->to_float && qget(tr->vec_dot_type) &&
            qget(tr->vec_dot_type)->from_float)
            return SLM_OK;
        break;
    }
    default: break;
    }
    const char *tn = slm_ggml_type_name(type);
    return slm_err_set(err, SLM_ERR_UNSUPPORTED,
                       "%s: tensor type %s (%u) is not supported for inference (f32, f16, bf16, q8_0, "
                       "q4_0, q4_k, q6_k are)", what, tn ? tn : "unknown", type);
}

size_t slm_qmatmul_scratch_bytes(int n, int max_cols, int nth) {
    /* activation rows: Q8_0 is 34 bytes per 32, Q8_K 292 per 256: under 5/4 byte per element */
    size_t row = ((size_t)max_cols * 5 / 4 + 64 + 63) / 64 * 64;
    size_t tile = (size_t)SLM_QMM_DQ_ROWS * (size_t)max_cols * sizeof(float);
    tile = (tile + 63) / 64 * 64;
    return (size_t)n * row + (size_t)(nth < 1 ? 1 : nth) * tile;
}

enum { MODE_SGEMM, MODE_DEQUANT, MODE_VECDOT, MODE_QGEMM };

/* tokens per QGEMM call: the activation rows of a call stay in L2 while the rows stream by */
#define SLM_QMM_TOK_CHUNK 64

typedef struct {
    float *y;
    int ldy, n, mode, accumulate, n_tiles;
    const float *x;
    const slm_qmat *w;
    slm_qgemm_fn gemm;  /* QGEMM: tile kernel */
    const slm_quant_traits *tr;
    const char *qx;     /* quantized activations (VECDOT), n rows of qrow bytes; or x itself */
    size_t qrow;
    char *tiles;        /* DEQUANT: per-thread tile buffers */
    size_t tile_bytes;
} qmm_job;

/* Generation (a call of at most SLM_QMM_PF_TOKENS tokens) streams each weight row once, a few
 * rows at a time: the tile kernel reads 4 rows side by side, 4 streams the hardware prefetcher
 * follows poorly. Prefetching the 4 rows SLM_QMM_PF_ROWS ahead measured 7.9 -> 38 GB/s for a
 * 32000 x 768 Q8_0 matrix on one core (AMD EPYC, AVX-512 VNNI tiles). Prefetches change no value. */
#define SLM_QMM_PF_TOKENS 4
#define SLM_QMM_PF_ROWS 8

static inline void prefetch_rows(const char *wd, size_t row_bytes, int r, int r_end) {
    if (r >= r_end) return;
    int nr = r_end - r < 4 ? r_end - r : 4;
    const char *p = wd + (size_t)r * row_bytes;
    size_t bytes = (size_t)nr * row_bytes;
    for (size_t o = 0; o < bytes; o += 64) {
#if defined(__GNUC__) && defined(__x86_64__)
        /* GCC may drop a loop of __builtin_prefetch as side-effect free; an asm statement stays */
        __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(p + o)));
#else
        __builtin_prefetch(p + o, 0, 3);
#endif
    }
}

/* Output-row tiles [tb, te) of one product. */
static void run_tiles(const qmm_job *j, size_t tb, size_t te, int ith) {
    const slm_qmat *w = j->w;
    int r0 = (int)tb * SLM_QMM_TILE, r1 = (int)te * SLM_QMM_TILE;
    if (r1 > w->rows) r1 = w->rows;
    if (r1 <= r0) return;
    int cols = w->cols, n = j->n;
    float beta = j->accumulate ? 1.0f : 0.0f;
    const char *wd = w->data;
    if (j->mode == MODE_SGEMM) {
        const float *W = (const float *)(wd + (size_t)r0 * w->row_bytes);
        if (n == 1)
            slm_matmul_fwd(j->y + r0, j->x, W, 1, cols, r1 - r0, beta);
        else
            slm_gemm(0, 1, n, r1 - r0, cols, 1.0f, j->x, cols, W, cols, beta, j->y + r0, j->ldy);
        return;
    }
    if (j->mode == MODE_DEQUANT) {
        float *tile = (float *)(j->tiles + (size_t)ith * j->tile_bytes);
        for (int r = r0; r < r1; r += SLM_QMM_DQ_ROWS) {
            int nr = r1 - r < SLM_QMM_DQ_ROWS ? r1 - r : SLM_QMM_DQ_ROWS;
            for (int k = 0; k < nr; k++)
                row_to_float(w->type, wd + (size_t)(r + k) * w->row_bytes, tile + (size_t)k * cols, cols);
            if (n == 1)
                slm_matmul_fwd(j->y + r, j->x, tile, 1, cols, nr, beta);
            else
                slm_gemm(0, 1, n, nr, cols, 1.0f, j->x, cols, tile, cols, beta, j->y + r, j->ldy);
        }
        return;
    }
    if (j->mode == MODE_QGEMM && n <= SLM_QMM_PF_TOKENS) {
        /* generation: 4 rows at a time, the rows SLM_QMM_PF_ROWS ahead prefetched (see above) */
        for (int r = r0; r < r1; r += 4) {
            prefetch_rows(wd, w->row_bytes, r + SLM_QMM_PF_ROWS, r1);
            int nr = r1 - r < 4 ? r1 - r : 4;
            j->gemm(cols, nr, n, wd + (size_t)r * w->row_bytes, w->row_bytes, j->qx, j->qrow, j->y + r,
                    (size_t)j->ldy, j->accumulate);
        }
        return;
    }
    if (j->mode == MODE_QGEMM) {
        for (int t0 = 0; t0 < n; t0 += SLM_QMM_TOK_CHUNK) {
            int nt = n - t0 < SLM_QMM_TOK_CHUNK ? n - t0 : SLM_QMM_TOK_CHUNK;
            j->gemm(cols, r1 - r0, nt, wd + (size_t)r0 * w->row_bytes, w->row_bytes,
                    j->qx + (size_t)t0 * j->qrow, j->qrow, j->y + (size_t)t0 * j->ldy + r0,
                    (size_t)j->ldy, j->accumulate);
        }
        return;
    }
    /* VECDOT: tile of output rows x every token */
    for (int t0 = r0; t0 < r1; t0 += SLM_QMM_TILE) {
        int t1 = t0 + SLM_QMM_TILE < r1 ? t0 + SLM_QMM_TILE : r1;
        for (int i = 0; i < n; i++) {
            const void *xi = j->qx + (size_t)i * j->qrow;
            float *yi = j->y + (size_t)i * j->ldy;
            for (int r = t0; r < t1; r++) {
                float s;
                j->tr->vec_dot(cols, &s, wd + (size_t)r * w->row_bytes, xi);
                yi[r] = j->accumulate ? yi[r] + s : s;
            }
        }
    }
}

static void run_slice(const qmm_job *j, int ith, int nth) {
    size_t tb, te;
    slm_pool_slice((size_t)j->n_tiles, ith, nth, &tb, &te);
    run_tiles(j, tb, te, ith);
}

static void slice_tramp(void *ctx, int ith, int nth) { run_slice(ctx, ith, nth); }

/* Several products over one input: their tiles laid end to end, one static slice per thread. */
typedef struct {
    qmm_job *jobs;
    int n_jobs;
    size_t total_tiles;
} multi_job;

static void multi_tramp(void *ctx, int ith, int nth) {
    const multi_job *mj = ctx;
    size_t tb, te, off = 0;
    slm_pool_slice(mj->total_tiles, ith, nth, &tb, &te);
    for (int k = 0; k < mj->n_jobs && off < te; k++) {
        size_t nt = (size_t)mj->jobs[k].n_tiles, b = tb > off ? tb - off : 0, e = te - off < nt ? te - off : nt;
        if (e > b) run_tiles(&mj->jobs[k], b, e, ith);
        off += nt;
    }
}

typedef struct {
    const float *x;
    char *qx;
    size_t qrow;
    int n, cols;
    const slm_quant_traits *vt;
} quant_job;

static void quant_tramp(void *ctx, int ith, int nth) {
    const quant_job *q = ctx;
    size_t b, e;
    slm_pool_slice((size_t)q->n, ith, nth, &b, &e);
    if (q->vt->type == SLM_GGML_Q8_0 && slm_cpu_has_avx2()) {
        for (size_t i = b; i < e; i++)
            slm_quantize_q8_0_avx2(q->x + i * (size_t)q->cols, q->qx + i * q->qrow, q->cols);
        return;
    }
    for (size_t i = b; i < e; i++)
        q->vt->from_float(q->x + i * (size_t)q->cols, q->qx + i * q->qrow, q->cols);
}

/* Fills j for y = x·W^T (mode, kernels); returns the activation type to quantize x into, or
 * SLM_GGML_F32 when x is used as it is. */
static uint32_t job_setup(qmm_job *j, float *y, int ldy, const float *x, int n, const slm_qmat *w,
                          int accumulate, void *scratch) {
    *j = (qmm_job){.y = y, .ldy = ldy, .n = n, .accumulate = accumulate, .x = x, .w = w,
                   .n_tiles = (w->rows + SLM_QMM_TILE - 1) / SLM_QMM_TILE};
    size_t row_area = ((size_t)w->cols * 5 / 4 + 64 + 63) / 64 * 64;
    if (w->type == SLM_GGML_F32) {
        j->mode = MODE_SGEMM;
    } else if ((w->type == SLM_GGML_F16 || w->type == SLM_GGML_BF16) &&
               (n > 1 || !qget(w->type) || !qget(w->type)->vec_dot)) {
        j->mode = MODE_DEQUANT;
        j->tiles = (char *)scratch + (size_t)n * row_area;
        j->tile_bytes = ((size_t)SLM_QMM_DQ_ROWS * (size_t)w->cols * sizeof(float) + 63) / 64 * 64;
    } else {
        j->mode = MODE_VECDOT;
        j->tr = qget(w->type);
        SLM_ASSERT(j->tr && j->tr->vec_dot);
        if (j->tr->vec_dot_type == SLM_GGML_Q8_0 && (j->gemm = slm_qgemm_get(w->type)) != NULL)
            j->mode = MODE_QGEMM;
        if (j->tr->vec_dot_type == SLM_GGML_F32) {
            j->qx = (const char *)x;
            j->qrow = (size_t)w->cols * sizeof(float);
        } else {
            j->qrow = slm_quant_row_bytes(j->tr->vec_dot_type, w->cols);
            SLM_ASSERT(j->qrow > 0 && j->qrow <= row_area);
            j->qx = scratch;
            return j->tr->vec_dot_type;
        }
    }
    return SLM_GGML_F32;
}

/* Quantizes the n rows of x into scratch as type (the pool splits rows when par). */
static void quantize_input(slm_pool *pool, int par, const float *x, int n, int cols, uint32_t type,
                           size_t qrow, void *scratch) {
    const slm_quant_traits *vt = qget(type);
    SLM_ASSERT(vt && vt->from_float);
    quant_job q = {x, scratch, qrow, n, cols, vt};
    if (par && n >= 2 * slm_pool_size(pool))
        slm_pool_run(pool, quant_tramp, &q);
    else
        quant_tramp(&q, 0, 1);
}

void slm_qmatmul(slm_pool *pool, float *y, int ldy, const float *x, int n, const slm_qmat *w,
                 int accumulate, void *scratch) {
    if (n <= 0 || w->rows <= 0) return;
    int nth = slm_pool_size(pool);
    double macs = (double)n * w->rows * w->cols;
    int par = nth > 1 && macs >= SLM_QMM_SPLIT_MIN;
    qmm_job j;
    uint32_t qt = job_setup(&j, y, ldy, x, n, w, accumulate, scratch);
    if (qt != SLM_GGML_F32) quantize_input(pool, par, x, n, w->cols, qt, j.qrow, scratch);
    if (par)
        slm_pool_run(pool, slice_tramp, &j);
    else
        run_slice(&j, 0, 1);
}

void slm_qmatmul_multi(slm_pool *pool, const float *x, int n, const slm_qmm_out *outs, int n_outs,
                       void *scratch) {
    if (n <= 0 || n_outs <= 0) return;
    int same = n_outs <= SLM_QMM_MAX_MULTI;
    for (int k = 1; k < n_outs && same; k++)
        same = outs[k].w->type == outs[0].w->type && outs[k].w->cols == outs[0].w->cols;
    if (!same || n_outs == 1) {
        for (int k = 0; k < n_outs; k++)
            slm_qmatmul(pool, outs[k].y, outs[k].ldy, x, n, outs[k].w, outs[k].accumulate, scratch);
        return;
    }
    qmm_job jobs[SLM_QMM_MAX_MULTI];
    multi_job mj = {jobs, n_outs, 0};
    double macs = 0;
    uint32_t qt = SLM_GGML_F32;
    for (int k = 0; k < n_outs; k++) {
        qt = job_setup(&jobs[k], outs[k].y, outs[k].ldy, x, n, outs[k].w, outs[k].accumulate, scratch);
        mj.total_tiles += (size_t)jobs[k].n_tiles;
        macs += (double)n * outs[k].w->rows * outs[k].w->cols;
    }
    int par = slm_pool_size(pool) > 1 && macs >= SLM_QMM_SPLIT_MIN;
    if (qt != SLM_GGML_F32) quantize_input(pool, par, x, n, outs[0].w->cols, qt, jobs[0].qrow, scratch);
    if (par)
        slm_pool_run(pool, multi_tramp, &mj);
    else
        multi_tramp(&mj, 0, 1);
}
