/* sft.h: generative fine-tuning (supervised fine-tuning, `slm finetune --task generate`) — a
 * Llama-family language model trained on prompt/completion or chat examples with the loss on the
 * completion (assistant) tokens only (sft_data.h renders and masks them).
 *
 * Training as src/train's trainer does it: AdamW (matrices decay, vectors not), warmup + cosine,
 * global-norm clipping, gradient accumulation, validation loss (completion tokens only) every N
 * steps and at the end, early stopping that hands back the best validated model, a JSON-lines
 * log. The loss of a step is the mean over every counted token of its micro-batches (each
 * micro-batch's mean is weighted by its share of the step's counted tokens), so accumulation
 * equals one big batch.
 *
 * Batches: B examples per micro-batch, each its own sequence of the one batched forward pass
 * (seq = example, pos = 0..len-1), packed with no padding. Example order: one seeded permutation
 * of the training set per epoch, a pure function of (seed, epoch).
 *
 * Distillation (slm_sft_set_teacher): a teacher language model runs forward (no backward) on
 * each micro-batch — the same packed tokens — and each counted token's loss becomes
 * alpha·T²·KL(p_T || q_T) + (1 - alpha)·CE over the whole vocabulary (distill.h:
 * slm_distill_token_loss). Validation stays the plain loss per completion token (what the
 * student is for, and comparable with the teacher's: slm_sft_evaluate_teacher).
 *
 * Not done: checkpoints and exact resume (src/train/checkpoint.c's approach would carry over:
 * the step, moments and best parameters as tensors; the order needs no sampler state).
 */
#ifndef SLM_TASK_SFT_H
#define SLM_TASK_SFT_H

#include <stdint.h>

#include "core/error.h"
#include "core/threads.h"
#include "gguf/gguf.h"
#include "model/forward.h"
#include "model/model.h"
#include "task/sft_data.h"
#include "tokenizer/tokenizer.h"
#include "train/optimizer.h"

typedef struct {
    int steps;            /* optimizer steps; 0: epochs over the training set */
    float epochs;         /* used when steps == 0 */
    int batch;            /* B: examples per micro-batch */
    int accum;            /* micro-batches per optimizer step */
    int max_len;          /* tokens per example (the data must be tokenized with it) */
    float lr, lr_min;     /* peak and final learning rate */
    int warmup;           /* warmup steps; < 0: 6% of the steps */
    slm_adamw_params adam;
    float grad_clip;      /* global-norm clip; <= 0: none */
    float dropout;        /* training only: dropout in the model (forward.h), a pure function of
                           * (seed, step, micro-batch). In [0, 0.9] */
    int eval_every;       /* validate every N steps; 0: once per epoch; and always at the end */
    int patience;         /* stop after this many validations without improvement; 0: never */
    uint64_t seed;        /* example order */
} slm_sft_opts;

/* Defaults: 3 epochs, B 8, accum 1, max_len 256, lr 1e-4 -> 1e-5, warmup 6%, AdamW (0.9, 0.999,
 * 1e-8, wd 0.01), clip 1, no dropout, validate once per epoch, no early stopping, seed 1. */
void slm_sft_opts_default(slm_sft_opts *o);
slm_status slm_sft_opts_check(const slm_sft_opts *o, slm_err *err);

typedef struct {
    int step, steps;
    double epoch;          /* examples seen / training examples */
    float loss;            /* mean loss per counted token of this step (the distillation loss with a teacher) */
    float val_loss;        /* NAN unless validated at this step */
    float lr;
    double grad_norm;      /* before clipping */
    double tokens_per_s;   /* training tokens (all, not only counted) per second, this run */
    double elapsed_s, eta_s;
    int stopped_early;
} slm_sft_progress;

typedef void (*slm_sft_callback)(void *ctx, const slm_sft_progress *p);

typedef struct slm_sft slm_sft;

/* m: an fp32 llama model (trained in place); d: tokenized with opts->max_len (train and val
 * non-empty); m, tok and d must outlive the trainer. */
slm_sft *slm_sft_new(slm_model *m, const slm_tokenizer *tok, const slm_sft_data *d, const slm_sft_opts *opts,
                     slm_pool *pool, slm_err *err);
void slm_sft_free(slm_sft *t);

/* JSON lines, appended: step, loss, val_loss (when validated), lr, grad_norm, tokens_per_s. */
slm_status slm_sft_set_log(slm_sft *t, const char *path, slm_err *err);
void slm_sft_set_callback(slm_sft *t, slm_sft_callback cb, void *ctx);

/* Trains to the end (or early stop: the best validated parameters are restored). */
slm_status slm_sft_run(slm_sft *t, slm_err *err);
/* At most max_steps more steps (no best-restore). */
slm_status slm_sft_run_for(slm_sft *t, int max_steps, slm_err *err);

/* Mean loss per counted token over a split's examples (completion tokens only): cross-entropy,
 * with a teacher or without. */
slm_status slm_sft_evaluate(slm_sft *t, const slm_sft_split *s, double *loss, slm_err *err);

/* Distillation from a teacher language model: from now on every training step's loss per counted
 * token is alpha·T²·KL(p_T || q_T) + (1 - alpha)·CE, p_T and q_T the teacher's and the student's
 * softmax of logits / T. teacher: any model slm runs forward — fp32 (slm_model_load) or mapped
 * and quantized (slm_model_load_mapped), llama, qwen2 or qwen3 — with as many output rows
 * (cfg.n_vocab) as the student and a context of at least max_len; teacher_tok its tokenizer,
 * whose token list must equal the student's (slm_distill_check_vocab: SLM_ERR_ARG naming the first
 * difference). T in (0, 100], alpha in [0, 1]. The teacher and teacher_tok must outlive the
 * trainer; the teacher's workspace (B·max_len tokens; logits only for counted tokens, room for B
 * times the most one example of the data counts: a batch of other examples counting more is
 * SLM_ERR_RANGE) and KV cache are allocated here. Calling it again replaces the teacher. */
slm_status slm_sft_set_teacher(slm_sft *t, const slm_model *teacher, const slm_tokenizer *teacher_tok,
                               float temperature, float alpha, slm_err *err);

/* With a teacher set, over a split's counted tokens: the teacher's mean cross-entropy
 * (*teacher_loss) and the mean KL(p || q) of the teacher's next-token distribution p from the
 * student's q, at temperature 1 (*kl, in nats); either pointer may be NULL. No teacher:
 * SLM_ERR_ARG. */
slm_status slm_sft_evaluate_teacher(slm_sft *t, const slm_sft_split *s, double *teacher_loss, double *kl,
                                    slm_err *err);

/* The gradient step's core, exposed for tests: runs examples ex[0..n) (at most B, each at most
 * max_len tokens) as one batch, adds scale * d(mean counted loss)/d(params) to grads, returns
 * the mean loss in *loss and the counted tokens in *n_counted. With a teacher the loss is the
 * distillation loss. */
slm_status slm_sft_grad(slm_sft *t, const slm_sft_example *ex, int n, float scale, float *grads, float *loss,
                        int *n_counted, slm_err *err);

int slm_sft_step(const slm_sft *t);
int slm_sft_steps(const slm_sft *t);
float slm_sft_val_loss(const slm_sft *t);   /* the last validation (after early stop: the best) */
float slm_sft_first_val_loss(const slm_sft *t); /* the first validation of this run, NAN before */

/* What the model file records besides the weights. */
typedef struct {
    const slm_gguf *base;       /* tokenizer.chat_template is copied from it when present; may be NULL */
    const char *chat_template;  /* else, when not NULL, written as tokenizer.chat_template (a family name) */
    const char *separator;      /* slm.sft.separator (raw prompt/completion); NULL: "" */
} slm_sft_save_info;

/* Writes the model (slm_model_save + slm_tokenizer_save, general.name = "slm-generate",
 * slm.task = "generate", slm.train.* facts; with a teacher also slm.distill.temperature and
 * slm.distill.alpha), atomically. It loads in slm generate and llama.cpp. */
slm_status slm_sft_save(const slm_sft *t, const slm_sft_save_info *info, const char *path, slm_err *err);

#endif
