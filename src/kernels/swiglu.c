/* swiglu.c: the gated MLP activation h = silu(g)·u and its backward.
 *
 * sigmoid uses the vectorisable exp of simd.h; silu(g) = g·sigmoid(g),
 * silu'(g) = sigmoid(g)·(1 + g·(1 - sigmoid(g))).
 */
#include "kernels/simd.h"
#include "kernels/kernels.h"

SLM_SIMD_CLONES
void slm_swiglu_fwd(float *h, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) {
        float sg = 1.0f / (1.0f + slm_expf_poly(-g[i]));
        h[i] = g[i] * sg * u[i];
    }
}

SLM_SIMD_CLONES
void slm_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) {
        float sg = 1.0f / (1.0f + slm_expf_poly(-g[i]));
        float si = g[i] * sg;
        float d = dh[i];
        du[i] = d * si;
        dg[i] = d * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    }
}
