/* finetune.h: fine-tuning a classify task model — a Llama-family body (random or a pretrained
 * base) plus a classification head on its final hidden state, trained end to end with softmax
 * cross-entropy.
 *
 * Training as src/train's language-model trainer does it: AdamW (matrices decay, vectors not),
 * warmup + cosine, global-norm clipping over body and head, gradient accumulation, validation
 * (loss and accuracy) every N steps, early stopping that hands back the best validated model, a
 * JSON-lines log, and checkpoints that resume exactly (same thread count).
 *
 * Batches: B examples per micro-batch, each its own sequence of the one batched forward pass
 * (seq = example, pos = 0..len-1), no padding. Example order: one seeded permutation of the
 * training set per epoch, a pure function of (seed, epoch) — resume needs no sampler state.
 *
 * Pooling auto (the default): two heads, "last" and "mean", train together on the shared body
 * (loss = the mean of their losses) for the first select_frac of the steps; then both are
 * validated, the one with the higher validation accuracy (ties: lower loss) is kept and the other
 * dropped, and training continues with it alone. One run, no second body to train; the choice and
 * both accuracies are reported and stored in the model file (slm.train.pooling_*).
 *
 * Extension points (LoRA, distillation, pruning): the step is forward -> head loss ->
 * slm_model_backward_hidden -> clip -> update (finetune.c, train_step/optimizer_step). A LoRA
 * trainer swaps the parameter block the update touches; distillation replaces slm_cls_loss's
 * targets with a teacher's soft labels (finetune.c: the slm_cls_loss call in train_step); pruning
 * masks after optimizer_step.
 */
#ifndef SLM_TASK_FINETUNE_H
#define SLM_TASK_FINETUNE_H

#include <stdint.h>

#include "core/error.h"
#include "core/threads.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "task/classify_mix.h"
#include "task/lora.h"
#include "task/ngram.h"
#include "task/task_data.h"
#include "tokenizer/tokenizer.h"
#include "train/optimizer.h"

#define SLM_POOL_AUTO (-1)
/* slm finetune's default layout of an example (task_data.h): the text as a line */
#define SLM_FINETUNE_TEMPLATE "{text}\n"

typedef struct {
    int steps;            /* optimizer steps; 0: epochs over the training set */
    float epochs;         /* used when steps == 0 */
    int batch;            /* B: examples per micro-batch */
    int accum;            /* micro-batches per optimizer step */
    int max_len;          /* text tokens per example (the data must be tokenized with it) */
    float lr, lr_min;     /* peak and final learning rate */
    int warmup;           /* warmup steps; < 0: 6% of the steps */
    slm_adamw_params adam;
    float grad_clip;      /* global-norm clip over body and head; <= 0: none */
    float label_smoothing;/* in [0, 1) */
    float token_dropout;  /* training only: each text token (not BOS/EOS) left out with this
                           * probability, a pure function of (seed, step, example, position);
                           * at least one kept. In [0, 0.9] */
    float dropout;        /* training only: dropout in the body (forward.h: attention outputs and
                           * feed-forward activations), a pure function of (seed, step). In [0, 0.9] */
    float rdrop;          /* R-Drop weight (Liang et al. 2021): each training example runs twice, under
                           * two dropout masks, and rdrop · the symmetric KL of the two predictions
                           * joins the loss; 0 = off. Needs dropout > 0; doubles a step's work */
    int pooling;          /* SLM_POOL_LAST, SLM_POOL_MEAN or SLM_POOL_AUTO */
    float select_frac;    /* auto: share of the steps both heads train, in (0, 1) */
    int eval_every;       /* validate every N steps; 0: once per epoch; and always at the end */
    int patience;         /* stop after this many validations without gain; 0: never */
    uint64_t seed;        /* example order, head init */
} slm_finetune_opts;

/* Defaults: 5 epochs, B 32, accum 1, max_len 64, lr 1e-3 -> 1e-5, warmup 6%, AdamW (0.9,
 * 0.999, 1e-8, wd 0.01), clip 1, no smoothing, pooling auto (select after 25%), validate once per
 * epoch, no early stopping, seed 1. */
void slm_finetune_opts_default(slm_finetune_opts *o);
slm_status slm_finetune_opts_check(const slm_finetune_opts *o, slm_err *err);

typedef struct {
    int step, steps;
    double epoch;          /* examples seen / training examples */
    float loss;            /* mean head loss of this step */
    float val_loss;        /* NAN unless validated at this step */
    float val_acc;         /* NAN unless validated */
    float lr;
    double grad_norm;      /* before clipping */
    double examples_per_s; /* training examples per second since this run started */
    double elapsed_s, eta_s;
    int chose_pooling;     /* SLM_POOL_LAST/MEAN at the step auto chose; -1 otherwise */
    float acc_last, acc_mean; /* at that step: both heads' validation accuracy */
    int stopped_early;
} slm_finetune_progress;

typedef void (*slm_finetune_callback)(void *ctx, const slm_finetune_progress *p);

typedef struct slm_finetune slm_finetune;

/* m: an fp32 llama body with tied output (its parameters are trained in place; the LM head is
 * unused); d: tokenized with opts->max_len; both and tok must outlive the trainer. */
slm_finetune *slm_finetune_new(slm_model *m, const slm_tokenizer *tok, const slm_task_data *d,
                               const slm_finetune_opts *opts, slm_pool *pool, slm_err *err);
void slm_finetune_free(slm_finetune *t);

slm_status slm_finetune_set_log(slm_finetune *t, const char *path, slm_err *err);
void slm_finetune_set_checkpoint(slm_finetune *t, const char *path, int every);
void slm_finetune_set_callback(slm_finetune *t, slm_finetune_callback cb, void *ctx);

/* Trains to the end (or early stop: the best validated model is restored). */
slm_status slm_finetune_run(slm_finetune *t, slm_err *err);
/* At most max_steps more steps (an interruption: no end-of-run checkpoint or best-restore). */
slm_status slm_finetune_run_for(slm_finetune *t, int max_steps, slm_err *err);

/* Validation of the current head(s) on a split: mean loss and accuracy of head h (0 or 1 while
 * auto has not chosen; else 0). */
slm_status slm_finetune_evaluate(slm_finetune *t, const slm_task_split *s, int head, double *loss,
                                 double *acc, slm_err *err);

int slm_finetune_step(const slm_finetune *t);
/* The step of the best validated model (the one slm_finetune_run hands back); 0 before any. */
int slm_finetune_best_step(const slm_finetune *t);
int slm_finetune_steps(const slm_finetune *t);
/* The pooling in use: SLM_POOL_AUTO until auto has chosen. */
int slm_finetune_pooling(const slm_finetune *t);
/* The last validation (after a run: the best validated); a refit's: the choosing run's. */
float slm_finetune_val_acc(const slm_finetune *t);
float slm_finetune_val_loss(const slm_finetune *t);
/* The current head (the first while auto has not chosen): W (K, D) and b (K). */
const float *slm_finetune_head_weight(const slm_finetune *t);
const float *slm_finetune_head_bias(const slm_finetune *t);

/* Marks the run as a refit (slm finetune --refit: after a run on the training split has made the
 * choices on validation, a new body trains on training + validation examples with them): its
 * validation split is then part of its training data, so the model file records val_acc and
 * val_loss (the choosing run's) and slm.train.refit = true instead of its own validation. */
void slm_finetune_set_refit(slm_finetune *t, float val_acc, float val_loss);

/* Writes the classify model (classify_model.h) with slm.train.* facts, atomically. */
slm_status slm_finetune_save(const slm_finetune *t, const char *path, slm_err *err);
/* A checkpoint: the model file plus the training state (slm.ckpt.*, moments, both heads). */
slm_status slm_finetune_save_checkpoint(const slm_finetune *t, const char *path, slm_err *err);
/* The options a checkpoint was written with (to build the trainer that resumes it). */
slm_status slm_finetune_opts_from_checkpoint(const slm_gguf *g, slm_finetune_opts *o, slm_err *err);
/* Continues a checkpoint: parameters, moments, step, heads, early-stopping state. Errors when
 * the model shape, options or data (fingerprint) differ. */
slm_status slm_finetune_resume(slm_finetune *t, const slm_gguf *ckpt, slm_err *err);

/* Starts from an existing classify model's head: g's cls.weight/cls.bias and slm.pooling (its
 * slm.labels must equal the data's labels, in order). Pooling is then fixed to the file's (auto
 * is skipped); its n-gram part, if any, is kept for slm_finetune_save. Call before the first
 * step. Errors name the key or tensor. */
slm_status slm_finetune_load_head(slm_finetune *t, const slm_gguf *g, slm_err *err);

/* Pruning masks (n_params bytes, 1 = kept; NULL: none): after every optimizer step the body's
 * parameters where mask is 0 are set to zero again, so a recovery fine-tune keeps the pattern.
 * mask must outlive the trainer's runs. */
void slm_finetune_set_mask(slm_finetune *t, const uint8_t *mask);

/* LoRA (lora.h): from now on only the adapter l (and the head) trains; the body's current
 * parameters become the frozen base (copied once, never changed) and the body block holds
 * base + s·B·A, refreshed after every step. l must outlive the trainer. Call before the first
 * step. Checkpoints are not available for LoRA runs (SLM_ERR_UNSUPPORTED at the first). The
 * model written by slm_finetune_save is then the merged one; slm_finetune_save_adapter writes the
 * adapter file (lora.h: A/B, adapter keys, classify task keys and head). */
slm_status slm_finetune_set_lora(slm_finetune *t, slm_lora *l, slm_err *err);
slm_status slm_finetune_save_adapter(const slm_finetune *t, const char *path, slm_err *err);
/* The frozen base (n_params) of a LoRA run; NULL otherwise. */
const float *slm_finetune_lora_base(const slm_finetune *t);

/* Distillation: teacher probabilities (n_train, K) at temperature 1 (rows in training-set order,
 * label order of the data), which must outlive the trainer. Each example's loss becomes
 * alpha·T²·KL(p_T || q_T) + (1 - alpha)·CE(label) with p_T ∝ p^(1/T) the teacher's and q_T the
 * student's softmax at temperature T (slm_cls_distill_loss). T > 0, alpha in [0, 1]. */
slm_status slm_finetune_set_teacher(slm_finetune *t, const float *probs, float temperature, float alpha,
                                    slm_err *err);

/* The current head's logits (s->n, K) for every example of a split (head 0: the chosen one, or the
 * first while auto has not chosen). */
slm_status slm_finetune_logits(slm_finetune *t, const slm_task_split *s, float *logits, slm_err *err);

/* A sparse n-gram part (ngram.h) to save beside the head, with the weights of the two parts'
 * logits (classify_mix.h); ng must outlive the trainer's saves. NULL removes it. Full models
 * only: LoRA adapters and checkpoints do not carry it. */
void slm_finetune_set_ngram(slm_finetune *t, const slm_ngram *ng, slm_cls_mix mix);

/* Scores of a split under the head, the n-gram part and their pool (classify_mix.h). */
typedef struct {
    double acc_head, acc_ngram, acc_mix;
    double nll_head, nll_ngram, nll_mix;
} slm_finetune_scores;

/* The n-gram part (finetune_ngram.c): trains an slm_ngram on the training texts (o; cb may be
 * NULL), fits the pool's weights on the validation split, attaches both (slm_finetune_set_ngram)
 * and returns the n-gram model, which the caller frees after the last save. *val (may be NULL)
 * receives the validation scores, *mix the weights. Call after training. */
slm_ngram *slm_finetune_fit_ngram(slm_finetune *t, const slm_ngram_opts *o, slm_ngram_progress cb, void *ctx,
                                  slm_finetune_scores *val, slm_cls_mix *mix, slm_err *err);
/* The same with the pool's weights given, not fitted (a refit keeps those its validation chose). */
slm_ngram *slm_finetune_add_ngram(slm_finetune *t, const slm_ngram_opts *o, slm_ngram_progress cb, void *ctx,
                                  slm_cls_mix mix, slm_err *err);
/* The scores of split s with the attached n-gram part (without one: acc_ngram/acc_mix = head). */
slm_status slm_finetune_score(slm_finetune *t, const slm_task_split *s, slm_finetune_scores *r, slm_err *err);

/* Body of a base model for a classifier: copies every body tensor of src (fp32, llama) into a new
 * model with the same shape and a tied output (the LM head is dropped). */
slm_model *slm_finetune_body_from(const slm_model *src, slm_err *err);

#endif
