/* softmax.c: exp, softmax, the cross-entropy row and single-query attention, forward and backward.
 *
 * These are the exp-heavy ops (the vocabulary softmax of the loss alone is V exps per token), so
 * they use the vectorisable exp of simd.h in AVX2/baseline clones. Reductions (max, sums) run in 8
 * fixed lanes, so results do not depend on the variant. Single-query attention is the per-token
 * path of model/attention.c (generation, interleaved batches); the batched path uses sgemm.
 */
#include "kernels/simd.h"
#include "kernels/kernels.h"

#include <math.h>

SLM_INLINE float max8(const float *x, int n) {
    float m[8];
    int i = 0;
    float first = n > 0 ? x[0] : 0.0f;
    for (int l = 0; l < 8; l++) m[l] = first;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
    float r = first;
    for (int l = 0; l < 8; l++) r = m[l] > r ? m[l] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

/* y = exp(x - shift), returns sum(y) (8 lanes, then double). */
SLM_INLINE double exp_shift_sum(float *y, const float *x, int n, float shift) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            float e = slm_expf_poly(x[i + l] - shift);
            y[i + l] = e;
            acc[l] += e;
        }
    double s = 0;
    for (; i < n; i++) {
        float e = slm_expf_poly(x[i] - shift);
        y[i] = e;
        s += e;
    }
    for (int l = 0; l < 8; l++) s += acc[l];
    return s;
}

SLM_INLINE float dot8f(const float *a, const float *b, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    return s + (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
}

SLM_SIMD_CLONES
void slm_vexp(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] = slm_expf_poly(x[i]);
}

SLM_SIMD_CLONES
void slm_softmax_fwd(float *p, const float *s, int n) {
    if (n <= 0) return;
    float m = max8(s, n);
    float inv = (float)(1.0 / exp_shift_sum(p, s, n, m));
    for (int i = 0; i < n; i++) p[i] *= inv;
}

SLM_SIMD_CLONES
void slm_softmax_bwd(float *ds, const float *p, const float *dp, int n) {
    float dot = dot8f(p, dp, n);
    for (int i = 0; i < n; i++) ds[i] = p[i] * (dp[i] - dot);
}

SLM_SIMD_CLONES
float slm_cross_entropy_row(float *z, int n_vocab, int target, float g) {
    float zt = z[target];
    float m = max8(z, n_vocab);
    double sum = exp_shift_sum(z, z, n_vocab, m);
    float loss = (float)(log(sum) + (double)m - (double)zt);
    float scale = (float)(g / sum);
    for (int i = 0; i < n_vocab; i++) z[i] *= scale;
    z[target] -= g;
    return loss;
}

SLM_SIMD_CLONES
void slm_attn_query_fwd(float *out, float *p, const float *q, const float *k, int ldk,
                        const float *v, int ldv, int n_keys, int hd, float scale) {
    for (int j = 0; j < n_keys; j++) p[j] = scale * dot8f(q, k + (size_t)j * ldk, hd);
    float m = max8(p, n_keys);
    float inv = (float)(1.0 / exp_shift_sum(p, p, n_keys, m));
    for (int j = 0; j < n_keys; j++) p[j] *= inv;
    for (int d = 0; d < hd; d++) out[d] = 0.0f;
    for (int j = 0; j < n_keys; j++) {
        const float *vj = v + (size_t)j * ldv;
        float pj = p[j];
        for (int d = 0; d < hd; d++) out[d] += pj * vj[d];
    }
}

/* The pieces of slm_attn_query_fwd, for keys and values that arrive a tile at a time (the F16 KV
 * cache converts a tile into scratch): scores, then slm_softmax_fwd over all of them, then the
 * value sum tile by tile in key order. The same operations in the same order as the whole kernel. */
SLM_SIMD_CLONES
void slm_attn_scores(float *p, const float *q, const float *k, int ldk, int n_keys, int hd, float scale) {
    for (int j = 0; j < n_keys; j++) p[j] = scale * dot8f(q, k + (size_t)j * ldk, hd);
}

SLM_SIMD_CLONES
void slm_attn_accum_v(float *out, const float *p, const float *v, int ldv, int n_keys, int hd) {
    for (int j = 0; j < n_keys; j++) {
        const float *vj = v + (size_t)j * ldv;
        float pj = p[j];
        for (int d = 0; d < hd; d++) out[d] += pj * vj[d];
    }
}

SLM_SIMD_CLONES
void slm_attn_query_bwd(float *dq, float *dk, int lddk, float *dv, int lddv, float *p, float *dp,
                        const float *dout, const float *q, const float *k, int ldk, const float *v,
                        int ldv, int n_keys, int hd, float scale) {
    /* recompute the probabilities exactly as the forward did */
    for (int j = 0; j < n_keys; j++) p[j] = scale * dot8f(q, k + (size_t)j * ldk, hd);
    float m = max8(p, n_keys);
    float inv = (float)(1.0 / exp_shift_sum(p, p, n_keys, m));
    for (int j = 0; j < n_keys; j++) p[j] *= inv;
    for (int j = 0; j < n_keys; j++) {
        const float *vj = v + (size_t)j * ldv;
        float *dvj = dv + (size_t)j * lddv;
        dp[j] = dot8f(dout, vj, hd);
        float pj = p[j];
        for (int d = 0; d < hd; d++) dvj[d] += pj * dout[d];
    }
    float dot = dot8f(p, dp, n_keys);
    for (int d = 0; d < hd; d++) dq[d] = 0.0f;
    for (int j = 0; j < n_keys; j++) {
        float ds = p[j] * (dp[j] - dot) * scale;
        const float *kj = k + (size_t)j * ldk;
        float *dkj = dk + (size_t)j * lddk;
        for (int d = 0; d < hd; d++) {
            dq[d] += ds * kj[d];
            dkj[d] += ds * q[d];
        }
    }
}
