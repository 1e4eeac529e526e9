/* optimizer.c: AdamW update, warmup + cosine schedule, global-norm clipping (see optimizer.h). */
#include "train/optimizer.h"

#include <math.h>

void slm_adamw_update(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                      int t, int decay, const slm_adamw_params *p) {
    const float b1 = p->beta1, b2 = p->beta2;
    const float c1 = 1.0f / (1.0f - powf(b1, (float)t));
    const float c2 = 1.0f / (1.0f - powf(b2, (float)t));
    const float wd = decay ? p->weight_decay : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float mhat = m[i] * c1, vhat = v[i] * c2;
        params[i] -= lr * (mhat / (sqrtf(vhat) + p->eps) + wd * params[i]);
    }
}

float slm_lr_schedule(int step, int warmup, int total, float lr_max, float lr_min) {
    if (warmup > 0 && step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (step >= total) return lr_min;
    int span = total - warmup;
    if (span <= 0) return lr_max;
    double progress = (double)(step - warmup) / (double)span;
    double coeff = 0.5 * (1.0 + cos(M_PI * progress));
    return lr_min + (float)coeff * (lr_max - lr_min);
}

double slm_grad_norm(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

double slm_grad_clip(float *g, size_t n, double max_norm) {
    double norm = slm_grad_norm(g, n);
    if (max_norm > 0 && norm > max_norm) {
        float s = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < n; i++) g[i] *= s;
    }
    return norm;
}
