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

void slm_adamw_step_model(const slm_model_config *cfg, float *params, const float *grads, float *m, float *v,
                          float lr, int t, const slm_adamw_params *p) {
    int nt = slm_model_n_tensors(cfg);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(cfg, i, &info);
        size_t n = (size_t)info.ne[0] * (size_t)(info.n_dims > 1 ? info.ne[1] : 1), o = info.offset;
        slm_adamw_update(params + o, grads + o, m + o, v + o, n, lr, t, info.n_dims > 1, p);
    }
}

slm_status slm_lr_check(float lr, float lr_min, slm_err *err) {
    if (!(lr > 0) || !(lr_min >= 0) || lr_min > lr)
        return slm_err_set(err, SLM_ERR_ARG, "learning rates must satisfy 0 <= lr_min (%g) <= lr (%g), lr > 0",
                           lr_min, lr);
    return SLM_OK;
}

slm_status slm_adamw_params_check(const slm_adamw_params *p, slm_err *err) {
    if (!(p->beta1 >= 0 && p->beta1 < 1 && p->beta2 >= 0 && p->beta2 < 1))
        return slm_err_set(err, SLM_ERR_ARG, "Adam betas must be in [0, 1)");
    if (!(p->weight_decay >= 0)) return slm_err_set(err, SLM_ERR_ARG, "weight decay must be >= 0");
    return SLM_OK;
}

slm_status slm_epochs_batch_check(int steps, float epochs, int batch, int accum, slm_err *err) {
    if (steps < 0 || (steps == 0 && !(epochs > 0 && epochs <= 1e6)))
        return slm_err_set(err, SLM_ERR_ARG, "give steps >= 1 or epochs > 0 (got %d steps, %g epochs)", steps,
                           epochs);
    if (batch < 1 || batch > 4096 || accum < 1 || accum > 65536)
        return slm_err_set(err, SLM_ERR_ARG, "batch (%d) and accumulation (%d) must be in [1, 4096] and [1, 65536]",
                           batch, accum);
    return SLM_OK;
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
