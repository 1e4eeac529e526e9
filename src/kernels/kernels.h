/* kernels.h: the fp32 compute kernels of the transformer, each with its forward and backward.
 *
 * Matrix products go through OpenBLAS (cblas_sgemm); every other op is plain C written so the
 * compiler vectorises it (independent lanes, no reductions across lanes unless in fixed blocks).
 * The kernels are single-threaded and work on whatever rows they are given: the model layer
 * splits rows (or columns) across its thread pool, so a kernel never knows about threads.
 * Backward kernels accumulate (+=) into parameter gradients and, unless said otherwise,
 * overwrite input gradients.
 *
 * Not here: attention orchestration over sequences and heads (model/attention.c), the loss over a
 * batch (model/loss.c). Those call the kernels below.
 */
#ifndef SLM_KERNELS_KERNELS_H
#define SLM_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- matmul.c: products through BLAS ----------------------------------------------------- */

/* Row-major C(m,n) = alpha·op(A)·op(B) + beta·C, op(X) = X or X^T (trans_* nonzero); a thin
 * wrapper over cblas_sgemm so BLAS is named in one place. Does nothing when m, n or k is 0
 * (with k == 0 it scales C by beta). */
void slm_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);

/* A linear layer, W row-major (out, in):  y(n,out) = x(n,in)·W^T + beta·y. */
void slm_matmul_fwd(float *y, const float *x, const float *w, int n, int in, int out, float beta);
/* Its backward: dx(n,in) = dy(n,out)·W + beta_dx·dx (skipped when dx is NULL);
 * dw(out,in) += dy^T·x (skipped when dw is NULL). */
void slm_matmul_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, int n,
                    int in, int out, float beta_dx);

/* ---- rmsnorm.c ---------------------------------------------------------------------------- */

/* For each of n rows of d: r = 1/sqrt(mean(x^2) + eps), y = x·r·w. rinv[i] = r (rinv may be
 * NULL). y may equal x. */
void slm_rmsnorm_fwd(float *y, float *rinv, const float *x, const float *w, int n, int d, float eps);
/* dx = d(y)/d(x)^T·dy for each row, written (accumulate == 0) or added (accumulate != 0). */
void slm_rmsnorm_bwd_dx(float *dx, const float *dy, const float *x, const float *rinv,
                        const float *w, int n, int d, int accumulate);
/* dw[j] += sum over the n rows of dy[i,j]·x[i,j]·rinv[i], for columns j in [j0, j1). Rows are
 * summed in order, so splitting columns across threads gives the same result as one thread. */
void slm_rmsnorm_bwd_dw(float *dw, const float *dy, const float *x, const float *rinv, int n, int d,
                        int j0, int j1);

/* ---- rope.c: rotary position embedding, adjacent pairs ------------------------------------ */

/* Fills cos_t/sin_t (ctx_len, hd/2) with cos/sin(pos·theta^(-2i/hd)) computed in double. */
void slm_rope_table(float *cos_t, float *sin_t, int ctx_len, int hd, double theta);
/* Rotates the pairs (x[2i], x[2i+1]) of each of n_heads heads of hd floats in place by the
 * angles of one position (cos_row/sin_row: hd/2 floats). */
void slm_rope_fwd(float *x, int n_heads, int hd, const float *cos_row, const float *sin_row);
/* Its backward (rotation by the opposite angle), in place on the gradient. */
void slm_rope_bwd(float *dx, int n_heads, int hd, const float *cos_row, const float *sin_row);

/* ---- swiglu.c ----------------------------------------------------------------------------- */

/* h = silu(g)·u elementwise, silu(g) = g/(1+exp(-g)). */
void slm_swiglu_fwd(float *h, const float *g, const float *u, int n);
/* dg, du from dh (overwritten). */
void slm_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, int n);

/* ---- softmax.c: softmax, exp, cross-entropy, single-query attention ----------------------- */

/* exp(x[i]) for n floats (|relative error| < 2e-7 for x in [-87, 88]; clamped outside). */
void slm_vexp(float *y, const float *x, int n);
/* p = softmax(s) over n floats (p may equal s). */
void slm_softmax_fwd(float *p, const float *s, int n);
/* ds = p·(dp - sum(p·dp)) (ds may equal dp). */
void slm_softmax_bwd(float *ds, const float *p, const float *dp, int n);
/* Cross-entropy of one row of logits z (V) against target t: returns -log softmax(z)[t]
 * (computed with max subtraction) and overwrites z with g·(softmax(z) - onehot(t)). */
float slm_cross_entropy_row(float *z, int n_vocab, int target, float g);

/* One query against n_keys keys of one head (K, V: rows of hd floats, row strides ldk/ldv):
 * out(hd) = softmax(scale·K·q)·V. p: n_keys floats of scratch (left holding the probabilities). */
void slm_attn_query_fwd(float *out, float *p, const float *q, const float *k, int ldk,
                        const float *v, int ldv, int n_keys, int hd, float scale);
/* slm_attn_query_fwd in pieces, for keys and values converted a tile at a time: p[j] =
 * scale·q·k_j for n_keys rows; out(hd) += sum_j p[j]·v_j in row order. Scores of every tile, then
 * slm_softmax_fwd over all, then out zeroed and the value tiles in key order give exactly
 * slm_attn_query_fwd's result. */
void slm_attn_scores(float *p, const float *q, const float *k, int ldk, int n_keys, int hd, float scale);
void slm_attn_accum_v(float *out, const float *p, const float *v, int ldv, int n_keys, int hd);
/* Its backward given dout: dq (hd) is overwritten, dk/dv rows are accumulated (+=).
 * p and dp: n_keys floats of scratch. */
void slm_attn_query_bwd(float *dq, float *dk, int lddk, float *dv, int lddv, float *p, float *dp,
                        const float *dout, const float *q, const float *k, int ldk, const float *v,
                        int ldv, int n_keys, int hd, float scale);

/* ---- embedding.c -------------------------------------------------------------------------- */

/* out[i,:] = table[tok[i],:] for n tokens of d floats (ids already checked). */
void slm_embedding_fwd(float *out, const float *table, const int32_t *tok, int n, int d);
/* table_grad[tok[i],:] += dout[i,:] for the tokens whose id is in [v0, v1), in token order:
 * threads that own disjoint id ranges never touch the same row. */
void slm_embedding_bwd(float *table_grad, const float *dout, const int32_t *tok, int n, int d,
                       int v0, int v1);

/* ---- f16.c -------------------------------------------------------------------------------- */

/* IEEE half <-> float (round to nearest even; subnormals, inf and NaN kept). */
float slm_f16_to_f32(uint16_t h);
uint16_t slm_f32_to_f16(float f);
/* Rows of n values: AVX2+F16C when the CPU has it (slm_f16_simd_available), else the _ref scalar
 * loops, which are the specification; the two agree bit for bit. */
void slm_f16_to_f32_row(float *dst, const uint16_t *src, size_t n);
void slm_f32_to_f16_row(uint16_t *dst, const float *src, size_t n);
void slm_f16_to_f32_row_ref(float *dst, const uint16_t *src, size_t n);
void slm_f32_to_f16_row_ref(uint16_t *dst, const float *src, size_t n);
int slm_f16_simd_available(void);
/* rows x cols halves (row stride lds) to floats (row stride ldd): one dispatch for a whole tile. */
void slm_f16_to_f32_rows(float *dst, size_t ldd, const uint16_t *src, size_t lds, size_t rows, size_t cols);

#endif
