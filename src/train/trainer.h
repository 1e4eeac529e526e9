/* trainer.h: the training loop — micro-batches through the one forward/backward pass, gradient
 * accumulation and clipping, AdamW with warmup + cosine, validation, early stopping, a JSON-lines
 * log, and checkpoints that resume exactly.
 *
 * Exact resume: a checkpoint holds the parameters, both Adam moments, the step, the options and
 * the early-stopping state; windows are a pure function of (seed, step) (token_data.h). So a run
 * resumed from step k reproduces the losses of the uninterrupted run from step k on, given the
 * same thread count (the test checks equality).
 */
#ifndef SLM_TRAIN_TRAINER_H
#define SLM_TRAIN_TRAINER_H

#include <stdint.h>

#include "core/error.h"
#include "core/threads.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/optimizer.h"
#include "train/token_data.h"

typedef struct {
    int steps;            /* optimizer steps in all */
    int batch;            /* B: sequences per micro-batch */
    int seq_len;          /* T: tokens per sequence */
    int accum;            /* micro-batches per optimizer step */
    float lr, lr_min;     /* peak and final learning rate */
    int warmup;           /* linear warmup steps */
    slm_adamw_params adam;
    float grad_clip;      /* global-norm clip; <= 0: none */
    int eval_every;       /* validate every N steps and at the end; 0: only at the end */
    int eval_windows;     /* validation windows per evaluation; 0: the whole validation part */
    int patience;         /* stop after this many evaluations without improvement; 0: never */
    uint64_t seed;        /* data order (and init when training from scratch) */
} slm_train_opts;

/* Defaults: 1000 steps, B 8, T 256, accum 1, lr 1e-3 -> 1e-4, warmup 100, AdamW (0.9, 0.95,
 * 1e-8, wd 0.1), clip 1, eval every 100 over 20 windows, no early stopping, seed 1. */
void slm_train_opts_default(slm_train_opts *o);
slm_status slm_train_opts_check(const slm_train_opts *o, slm_err *err);

/* What the trainer reports after each step (and after each validation). */
typedef struct {
    int step;             /* steps done */
    int steps;
    float loss;           /* mean training loss of this step (nats per token) */
    float val_loss;       /* NAN unless validated at this step */
    float val_bpb;        /* bits per byte on the windows validated, NAN unless validated */
    float lr;
    double grad_norm;     /* before clipping */
    double tokens_per_s;  /* training tokens per second, since this run (or resume) started */
    double elapsed_s;
    double eta_s;
    int stopped_early;    /* 1 at the step where early stopping fired */
} slm_train_progress;

typedef void (*slm_train_callback)(void *ctx, const slm_train_progress *p);

typedef struct slm_trainer slm_trainer;

/* The trainer keeps pointers to m, data and tok (all must outlive it) and updates m in place. */
slm_trainer *slm_trainer_new(slm_model *m, const slm_tokenizer *tok, const slm_token_data *data,
                             const slm_train_opts *opts, slm_pool *pool, slm_err *err);
void slm_trainer_free(slm_trainer *t);

/* Where to write the JSON-lines log (one object per step: step, loss, val_loss when evaluated,
 * val_bpb, lr, grad_norm, tokens_per_s), appended to; NULL: none. */
slm_status slm_trainer_set_log(slm_trainer *t, const char *path, slm_err *err);
/* Write a checkpoint to path every `every` steps (and when training ends); every 0: only at end. */
void slm_trainer_set_checkpoint(slm_trainer *t, const char *path, int every);
void slm_trainer_set_callback(slm_trainer *t, slm_train_callback cb, void *ctx);

/* Continues from a checkpoint written by this trainer: restores parameters, moments, step,
 * options and early-stopping state. Errors if the model shape or the data differ. */
slm_status slm_trainer_resume(slm_trainer *t, const slm_gguf *ckpt, slm_err *err);

/* Trains until opts.steps or early stopping (then the best validated parameters are restored). */
slm_status slm_trainer_run(slm_trainer *t, slm_err *err);
/* The same, but returns after at most max_steps more steps (an interruption: the schedule is
 * still that of opts.steps, and the end-of-run checkpoint and best-restore are not done). */
slm_status slm_trainer_run_for(slm_trainer *t, int max_steps, slm_err *err);

/* Reads the training options a checkpoint was written with (to build the trainer that resumes it). */
slm_status slm_train_opts_from_checkpoint(const slm_gguf *ckpt, slm_train_opts *o, slm_err *err);

/* Writes the model, its tokenizer and the full training state, atomically. */
slm_status slm_trainer_save_checkpoint(const slm_trainer *t, const char *path, slm_err *err);

/* Training facts for a model file: slm.train.* keys (steps, tokens, val loss and bpb, seed). */
slm_status slm_trainer_add_metadata(const slm_trainer *t, slm_gguf_writer *w);

int slm_trainer_step(const slm_trainer *t);
const slm_train_opts *slm_trainer_opts(const slm_trainer *t);
/* The last validation (NAN before any). */
float slm_trainer_val_loss(const slm_trainer *t);
float slm_trainer_val_bpb(const slm_trainer *t);

/* Validation of a model on data: mean loss per target token and bits per byte over the first
 * max_windows windows of T tokens (0: all), B windows at a time. tok gives each token's bytes. */
slm_status slm_evaluate_text(const slm_model *m, const slm_tokenizer *tok, const slm_token_data *data,
                             int B, int T,
                             size_t max_windows, slm_pool *pool, double *loss, double *bpb,
                             slm_err *err);

#endif
