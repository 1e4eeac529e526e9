/* optimizer.h: AdamW, the learning-rate schedule and gradient clipping.
 *
 * AdamW (Loshchilov & Hutter 2019): decoupled weight decay, applied only where the caller's
 * decay flag says so (matrices yes; norm gains no), bias-corrected moments. Plain scalar loops:
 * the update is memory-bound and a small share of a training step.
 */
#ifndef SLM_TRAIN_OPTIMIZER_H
#define SLM_TRAIN_OPTIMIZER_H

#include <stddef.h>

#include "core/error.h"
#include "model/model.h"

typedef struct {
    float beta1, beta2, eps;
    float weight_decay;
} slm_adamw_params;

/* One AdamW update of params[0..n) with gradients grads, moments m and v, step t (1-based). */
void slm_adamw_update(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                      int t, int decay, const slm_adamw_params *p);

/* One AdamW step over a model's tensor table: every tensor of cfg at its offset in params, grads,
 * m and v (n_params each); matrices decay, vectors (norm gains) do not. t is 1-based. */
void slm_adamw_step_model(const slm_model_config *cfg, float *params, const float *grads, float *m, float *v,
                          float lr, int t, const slm_adamw_params *p);

/* The checks every trainer's options share, in the trainers' order of checking: learning rates
 * (0 <= lr_min <= lr, lr > 0) and Adam (betas in [0, 1), weight decay >= 0). */
slm_status slm_lr_check(float lr, float lr_min, slm_err *err);
slm_status slm_adamw_params_check(const slm_adamw_params *p, slm_err *err);
/* Fine-tuners' length and batch: steps >= 1 or (steps 0 and epochs in (0, 1e6]), batch in
 * [1, 4096], accum in [1, 65536]. */
slm_status slm_epochs_batch_check(int steps, float epochs, int batch, int accum, slm_err *err);

/* Linear warmup over warmup steps from lr_max/warmup to lr_max, then cosine decay to lr_min at
 * total steps. step is 0-based; past total the rate stays lr_min. */
float slm_lr_schedule(int step, int warmup, int total, float lr_max, float lr_min);

/* L2 norm of g[0..n), accumulated in double. */
double slm_grad_norm(const float *g, size_t n);
/* Scales g so its norm is at most max_norm (max_norm <= 0: no clipping). Returns the norm before. */
double slm_grad_clip(float *g, size_t n, double max_norm);

#endif
