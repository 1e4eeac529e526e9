/* trainer_internal.h: the trainer's state, shared by trainer.c and checkpoint.c only. */
#ifndef SLM_TRAIN_TRAINER_INTERNAL_H
#define SLM_TRAIN_TRAINER_INTERNAL_H

#include <stdio.h>

#include "model/forward.h"
#include "train/trainer.h"

struct slm_trainer {
    slm_model *m;
    const slm_tokenizer *tok;
    const slm_token_data *data;
    slm_train_opts o;
    slm_pool *pool;
    slm_ctx *ctx;          /* train workspace for B*T tokens */
    slm_kv_cache *kv;      /* B slots of T positions */
    float *grads;          /* (n_params) */
    float *adam_m;         /* (n_params) first moment */
    float *adam_v;         /* (n_params) second moment */
    float *best;           /* (n_params) best validated parameters, with early stopping */
    int32_t *inputs, *targets, *pos, *seq; /* (B*T) each */
    int step;              /* optimizer steps done */
    uint64_t tokens_seen;
    float best_val;
    float best_bpb;
    int best_step;
    int bad_evals;
    float last_val, last_bpb;
    FILE *log;
    char *ckpt_path;
    int ckpt_every;
    slm_train_callback cb;
    void *cb_ctx;
};

#endif
