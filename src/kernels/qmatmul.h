/* qmatmul.h: linear layers over weight matrices stored in GGUF block formats, read where they lie
 * (DESIGN.md decision 4), split across the pool.
 *
 * y(n, ldy)[:, 0..rows) = x(n, cols) · W^T (+ y when accumulating), W = rows of ggml blocks.
 *  - F32 rows go to sgemm/sgemv (OpenBLAS) on each thread's slice of output rows;
 *  - F16 and BF16 rows are converted a tile at a time into per-thread scratch and multiplied by
 *    sgemm (prompt processing) — or, with one token, dotted by the type's vec_dot (F32 operand);
 *  - block-quantized rows (Q8_0, Q4_0, Q4_K, Q6_K): the activation rows are quantized once to the
 *    type's vec_dot_type (traits->from_float), then each output is one traits->vec_dot.
 * Work is split by output rows in tiles of SLM_QMM_TILE rows (64-byte multiples of y per token, so
 * two threads never write one cache line when y's rows are 64-byte aligned); every output element
 * is computed by one call in a fixed order, so results do not depend on the thread count.
 * Nothing allocates: the caller passes scratch of slm_qmatmul_scratch_bytes.
 */
#ifndef SLM_KERNELS_QMATMUL_H
#define SLM_KERNELS_QMATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/threads.h"

#define SLM_QMM_TILE 16

/* A weight matrix: rows of row_bytes, each holding cols elements of type. */
typedef struct {
    uint32_t type;      /* slm_ggml_type */
    const void *data;   /* rows x row_bytes */
    int rows, cols;     /* (out, in): GGUF ne = [cols, rows] */
    size_t row_bytes;
} slm_qmat;

/* SLM_OK when matrices of type can be multiplied and dequantized here; SLM_ERR_UNSUPPORTED
 * naming the type otherwise (what names the tensor in the message). */
slm_status slm_qmat_check_type(uint32_t type, const char *what, slm_err *err);

/* Scratch bytes any call with at most n rows of at most max_cols activations needs on nth
 * threads, whatever the weight type. */
size_t slm_qmatmul_scratch_bytes(int n, int max_cols, int nth);

/* y[i*ldy + r] = (accumulate ? y[i*ldy + r] : 0) + sum_k x[i*cols + k]·W[r, k] for i < n,
 * r < w->rows. scratch: slm_qmatmul_scratch_bytes(n, w->cols, slm_pool_size(pool)) bytes,
 * 64-byte aligned. pool may be NULL (caller only). */
void slm_qmatmul(slm_pool *pool, float *y, int ldy, const float *x, int n, const slm_qmat *w,
                 int accumulate, void *scratch);

/* Several products of one input, y_k = x·W_k^T (+ y_k): for weights of one type and width, x is
 * quantized once and all the products' output tiles go to the pool in one dispatch (q|k|v,
 * gate|up in generation); each output element is computed exactly as slm_qmatmul computes it, so
 * results are bit-identical to separate calls. Mixed types or widths: separate calls. */
#define SLM_QMM_MAX_MULTI 4
typedef struct {
    float *y;
    int ldy;
    const slm_qmat *w;
    int accumulate;
} slm_qmm_out;
void slm_qmatmul_multi(slm_pool *pool, const float *x, int n, const slm_qmm_out *outs, int n_outs,
                       void *scratch);

/* dst[0..cols) = row r of w as floats. */
void slm_qmat_row(const slm_qmat *w, int r, float *dst);

#endif
