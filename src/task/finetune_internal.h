/* finetune_internal.h: the fine-tuner's state, shared by finetune.c and finetune_ckpt.c only. */
#ifndef SLM_TASK_FINETUNE_INTERNAL_H
#define SLM_TASK_FINETUNE_INTERNAL_H

#include <stdio.h>

#include "model/forward.h"
#include "task/classify_mix.h"
#include "task/finetune.h"
#include "task/ngram.h"

struct slm_finetune {
    slm_model *m;
    const slm_tokenizer *tok;
    const slm_task_data *d;
    slm_finetune_opts o;
    slm_pool *pool;
    int K, D, T;            /* labels, dim, tokens per example at most (max_len + 2) */
    int steps, warmup, select_step, steps_per_epoch;
    int n_heads;            /* 2 while pooling auto has not chosen, else 1 (slot 0) */
    int head_pool[2];       /* pooling of each head slot */
    size_t hs;              /* floats per head: K*D (W) + K (b) */
    float *head;            /* (2, hs) */
    float *ghead, *head_m, *head_v; /* (2, hs) */
    float *grads, *adam_m, *adam_v; /* (n_params) */
    float *best, *best_head;        /* (n_params), (hs): best validated body and head */
    slm_ctx *ctx;           /* train workspace, B*T tokens, no logits */
    slm_kv_cache *kv;       /* B slots of T */
    int32_t *tokens, *pos, *seq;    /* (B*T) */
    int8_t *out;            /* (B*T) zeros */
    int32_t *start, *len, *labels;  /* (B) */
    float *pooled, *logits, *dlogits, *dpooled; /* (B, D), (B, K), (B, K), (B, D) */
    float *dhidden;         /* (B*T, D) */
    uint32_t *perm;         /* (n_train) the order of epoch perm_epoch */
    int64_t perm_epoch;
    int step;
    float best_acc, best_loss;
    int best_step, bad_evals;
    float last_acc, last_loss;
    float acc_sel[2];       /* auto: both heads' validation accuracy at the choice (NAN before) */
    FILE *log;
    char *ckpt_path;
    int ckpt_every;
    slm_lora *lora;         /* LoRA run: the adapter trained (not owned), else NULL */
    float *base;            /* (n_params) frozen base of a LoRA run */
    float *dlora, *lora_m, *lora_v, *best_lora; /* (lora->n_params) */
    const float *teacher;   /* (n_train, K) distillation targets, or NULL */
    float kd_T, kd_alpha;
    float *soft;            /* (B, K) the batch's teacher rows */
    const uint8_t *mask;    /* (n_params) pruning mask re-applied after each step, or NULL */
    const slm_ngram *ngram; /* the sparse n-gram part saved beside the head, or NULL */
    slm_cls_mix mix;        /* and the weights of the two parts' logits */
    slm_ngram *own_ngram;   /* the one slm_finetune_load_head read (owned), or NULL */
    int refit;              /* a refit run (slm_finetune_set_refit): its validation is inside its training */
    float refit_acc, refit_loss; /* the validation figures of the run that made the choices */
    slm_finetune_callback cb;
    void *cb_ctx;
};

/* finetune_ckpt.c: the slm.train.* facts of a model file. */
slm_status slm_finetune_add_metadata(const slm_finetune *t, slm_gguf_writer *w);

#endif
