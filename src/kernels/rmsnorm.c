/* rmsnorm.c: RMSNorm, y = x / sqrt(mean(x^2) + eps) * w, forward and backward.
 *
 * Sums of squares are taken in 8 independent lanes (fixed order, so the result does not depend on
 * the SIMD variant) and combined in double. The weight gradient is a separate column-sliced pass so
 * that threads can split it without partial sums, keeping results independent of thread count.
 */
#include "kernels/simd.h"
#include "kernels/kernels.h"

#include <math.h>

/* sum(a[i]·b[i]) over d floats in 8 fixed lanes. */
SLM_INLINE double dot8(const float *a, const float *b, int d) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= d; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    double s = 0;
    for (; i < d; i++) s += (double)a[i] * b[i];
    for (int l = 0; l < 8; l++) s += acc[l];
    return s;
}

SLM_SIMD_CLONES
void slm_rmsnorm_fwd(float *y, float *rinv, const float *x, const float *w, int n, int d, float eps) {
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * d;
        float *yr = y + (size_t)r * d;
        double ms = dot8(xr, xr, d) / d;
        float s = (float)(1.0 / sqrt(ms + (double)eps));
        if (rinv) rinv[r] = s;
        for (int i = 0; i < d; i++) yr[i] = xr[i] * s * w[i];
    }
}

SLM_SIMD_CLONES
void slm_rmsnorm_bwd_dx(float *dx, const float *dy, const float *x, const float *rinv,
                        const float *w, int n, int d, int accumulate) {
    /* y_j = x_j·r·w_j with r = (mean(x^2)+eps)^(-1/2):
     * dx_j = r·w_j·dy_j - x_j·r^3/d·sum_k(dy_k·w_k·x_k) */
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * d, *dyr = dy + (size_t)r * d;
        float *dxr = dx + (size_t)r * d;
        float s = rinv[r];
        float acc[8] = {0};
        int i = 0;
        for (; i + 8 <= d; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += dyr[i + l] * w[i + l] * xr[i + l];
        double dot = 0;
        for (; i < d; i++) dot += (double)dyr[i] * w[i] * xr[i];
        for (int l = 0; l < 8; l++) dot += acc[l];
        float c = (float)(dot * s * s * s / d);
        if (accumulate)
            for (int j = 0; j < d; j++) dxr[j] += s * w[j] * dyr[j] - xr[j] * c;
        else
            for (int j = 0; j < d; j++) dxr[j] = s * w[j] * dyr[j] - xr[j] * c;
    }
}

SLM_SIMD_CLONES
void slm_rmsnorm_bwd_dw(float *dw, const float *dy, const float *x, const float *rinv, int n, int d,
                        int j0, int j1) {
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * d, *dyr = dy + (size_t)r * d;
        float s = rinv[r];
        for (int j = j0; j < j1; j++) dw[j] += dyr[j] * xr[j] * s;
    }
}
