/* matmul.c: matrix products, all through OpenBLAS's cblas_sgemm (row-major).
 *
 * A linear layer stores W as (out, in) — GGUF's ne = [in, out] — so the forward is x·W^T and the
 * two backward products are dy·W (input gradient) and dy^T·x (weight gradient, accumulated). Each
 * is one sgemm over all n tokens of a batch, which is where nearly all of training's FLOPs go; a
 * single token (generation) takes sgemv, which does not pack the weights first.
 * BLAS threads are the caller's business (openblas_set_num_threads); nothing here sets them.
 */
#include "kernels/kernels.h"

#include <cblas.h>

void slm_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void slm_matmul_fwd(float *y, const float *x, const float *w, int n, int in, int out, float beta) {
    if (n == 1 && in > 0 && out > 0) { /* one token (generation): gemv reads W once, unpacked */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, beta, y, 1);
        return;
    }
    slm_gemm(0, 1, n, out, in, 1.0f, x, in, w, in, beta, y, out);
}

void slm_matmul_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, int n,
                    int in, int out, float beta_dx) {
    if (dx) slm_gemm(0, 0, n, in, out, 1.0f, dy, out, w, in, beta_dx, dx, in);
    if (dw) slm_gemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
}
