/* rope.c: rotary position embedding on adjacent pairs (x[2i], x[2i+1]) — llama.cpp's "norm" mode,
 * the layout of `llama` GGUFs and of llama2.c — with angle pos·theta^(-2i/hd).
 *
 * Angles come from a table computed once in double (so position 2000 is as exact as position 1);
 * the backward is the rotation by the opposite angle (a rotation's transpose is its inverse).
 */
#include "kernels/simd.h"
#include "kernels/kernels.h"

#include <math.h>

void slm_rope_table(float *cos_t, float *sin_t, int ctx_len, int hd, double theta) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        double freq = pow(theta, -2.0 * i / hd);
        for (int p = 0; p < ctx_len; p++) {
            double a = p * freq;
            cos_t[(size_t)p * half + i] = (float)cos(a);
            sin_t[(size_t)p * half + i] = (float)sin(a);
        }
    }
}

void slm_rope_fwd(float *x, int n_heads, int hd, const float *c, const float *s) {
    int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *xh = x + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            float x0 = xh[2 * i], x1 = xh[2 * i + 1];
            xh[2 * i] = x0 * c[i] - x1 * s[i];
            xh[2 * i + 1] = x0 * s[i] + x1 * c[i];
        }
    }
}

void slm_rope_bwd(float *dx, int n_heads, int hd, const float *c, const float *s) {
    int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *xh = dx + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            float d0 = xh[2 * i], d1 = xh[2 * i + 1];
            xh[2 * i] = d0 * c[i] + d1 * s[i];
            xh[2 * i + 1] = -d0 * s[i] + d1 * c[i];
        }
    }
}
