/* optimizer.h: AdamW, the learning-rate schedule and gradient clipping.
 *
 * AdamW (Loshchilov & Hutter 2019): decoupled weight decay, applied only where the caller's
 * decay flag says so (matrices yes; norm gains no), bias-corrected moments. Plain scalar loops:
 * the update is memory-bound and a small share of a training step.
 */
#ifndef SLM_TRAIN_OPTIMIZER_H
#define SLM_TRAIN_OPTIMIZER_H

#include <stddef.h>

typedef struct {
    float beta1, beta2, eps;
    float weight_decay;
} slm_adamw_params;

/* One AdamW update of params[0..n) with gradients grads, moments m and v, step t (1-based). */
void slm_adamw_update(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                      int t, int decay, const slm_adamw_params *p);

/* Linear warmup over warmup steps from lr_max/warmup to lr_max, then cosine decay to lr_min at
 * total steps. step is 0-based; past total the rate stays lr_min. */
float slm_lr_schedule(int step, int warmup, int total, float lr_max, float lr_min);

/* L2 norm of g[0..n), accumulated in double. */
double slm_grad_norm(const float *g, size_t n);
/* Scales g so its norm is at most max_norm (max_norm <= 0: no clipping). Returns the norm before. */
double slm_grad_clip(float *g, size_t n, double max_norm);

#endif
