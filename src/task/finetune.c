/* finetune.c: the classify fine-tuning loop and validation (see finetune.h). Model files and
 * checkpoints: finetune_ckpt.c. Head maths: classify_head.c. */
#include "task/finetune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/timer.h"
#include "compress/prune.h"
#include "task/classify_head.h"
#include "task/classify_model.h"
#include "task/finetune_internal.h"
#include "train/train_log.h"

void slm_finetune_opts_default(slm_finetune_opts *o) {
    memset(o, 0, sizeof *o);
    o->steps = 0;
    o->epochs = 5.0f;
    o->batch = 32;
    o->accum = 1;
    o->max_len = 64;
    o->lr = 1e-3f;
    o->lr_min = 1e-5f;
    o->warmup = -1;
    o->adam = (slm_adamw_params){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    o->grad_clip = 1.0f;
    o->label_smoothing = 0.0f;
    o->token_dropout = 0.0f;
    o->pooling = SLM_POOL_AUTO;
    o->select_frac = 0.25f;
    o->eval_every = 0;
    o->patience = 0;
    o->seed = 1;
}

slm_status slm_finetune_opts_check(const slm_finetune_opts *o, slm_err *err) {
    slm_status s = slm_epochs_batch_check(o->steps, o->epochs, o->batch, o->accum, err);
    if (s != SLM_OK) return s;
    if (o->max_len < 1 || o->max_len > (1 << 16))
        return slm_err_set(err, SLM_ERR_ARG, "max_len must be in [1, 65536] (got %d)", o->max_len);
    if ((s = slm_lr_check(o->lr, o->lr_min, err)) != SLM_OK) return s;
    if (o->eval_every < 0 || o->patience < 0)
        return slm_err_set(err, SLM_ERR_ARG, "eval_every and patience must not be negative");
    if (!(o->token_dropout >= 0 && o->token_dropout <= 0.9f))
        return slm_err_set(err, SLM_ERR_ARG, "token dropout must be in [0, 0.9] (got %g)", o->token_dropout);
    if (!(o->dropout >= 0 && o->dropout <= 0.9f))
        return slm_err_set(err, SLM_ERR_ARG, "dropout must be in [0, 0.9] (got %g)", o->dropout);
    if (!(o->rdrop >= 0 && o->rdrop <= 100))
        return slm_err_set(err, SLM_ERR_ARG, "the R-Drop weight must be in [0, 100] (got %g)", o->rdrop);
    if (o->rdrop > 0 && !(o->dropout > 0))
        return slm_err_set(err, SLM_ERR_ARG, "R-Drop compares two dropout masks: it needs dropout > 0");
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1))
        return slm_err_set(err, SLM_ERR_ARG, "label smoothing must be in [0, 1) (got %g)", o->label_smoothing);
    if (o->pooling != SLM_POOL_AUTO && o->pooling != SLM_POOL_LAST && o->pooling != SLM_POOL_MEAN)
        return slm_err_set(err, SLM_ERR_ARG, "pooling must be last, mean or auto");
    if (o->pooling == SLM_POOL_AUTO && !(o->select_frac > 0 && o->select_frac < 1))
        return slm_err_set(err, SLM_ERR_ARG, "select_frac must be in (0, 1) (got %g)", o->select_frac);
    return slm_adamw_params_check(&o->adam, err);
}

slm_model *slm_finetune_body_from(const slm_model *src, slm_err *err) {
    if (src->mapped || src->cfg.arch != SLM_ARCH_LLAMA) {
        slm_err_set(err, SLM_ERR_UNSUPPORTED, "fine-tuning needs an fp32 llama body (load with slm_model_load)");
        return NULL;
    }
    slm_model_config cfg = src->cfg;
    cfg.tied_output = 1;
    slm_model *m = slm_model_new(&cfg, err);
    if (!m) return NULL;
    int nt = slm_model_n_tensors(&cfg), ns = slm_model_n_tensors(&src->cfg);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info a, b;
        slm_model_tensor_at(&cfg, i, &a);
        for (int j = 0; j < ns; j++) {
            slm_model_tensor_at(&src->cfg, j, &b);
            if (strcmp(a.name, b.name) != 0) continue;
            size_t n = (size_t)a.ne[0] * (size_t)(a.n_dims > 1 ? a.ne[1] : 1);
            memcpy(m->params + a.offset, src->params + b.offset, n * sizeof(float));
            break;
        }
    }
    return m;
}

slm_finetune *slm_finetune_new(slm_model *m, const slm_tokenizer *tok, const slm_task_data *d,
                               const slm_finetune_opts *opts, slm_pool *pool, slm_err *err) {
    if (slm_finetune_opts_check(opts, err) != SLM_OK) return NULL;
    if (!m || m->mapped || !m->cfg.tied_output) {
        slm_err_set(err, SLM_ERR_ARG, "fine-tuning needs an fp32 body with a tied output (slm_finetune_body_from)");
        return NULL;
    }
    if (d->n_labels < 2 || d->train.n < 1 || d->val.n < 1 || !d->train.tokens || !d->val.tokens) {
        slm_err_set(err, SLM_ERR_ARG, "fine-tuning needs tokenized train and val splits and at least two labels");
        return NULL;
    }
    int T = opts->max_len + 2;
    if (T > m->cfg.ctx_len || d->train.max_len > T || d->val.max_len > T) {
        slm_err_set(err, SLM_ERR_ARG, "examples of up to %d tokens (max_len %d + BOS + EOS) do not fit the "
                    "model's context of %d (or the data was tokenized with another max_len)",
                    T, opts->max_len, m->cfg.ctx_len);
        return NULL;
    }
    if (slm_tokenizer_n_vocab(tok) > m->cfg.n_vocab) {
        slm_err_set(err, SLM_ERR_ARG, "the tokenizer has %d tokens but the model only %d",
                    slm_tokenizer_n_vocab(tok), m->cfg.n_vocab);
        return NULL;
    }
    slm_finetune *t = calloc(1, sizeof *t);
    if (!t) goto nomem;
    t->m = m;
    t->tok = tok;
    t->d = d;
    t->o = *opts;
    t->pool = pool;
    t->K = d->n_labels;
    t->D = m->cfg.dim;
    t->T = T;
    int B = opts->batch;
    int64_t per_step = (int64_t)B * opts->accum;
    t->steps_per_epoch = (int)((d->train.n + per_step - 1) / per_step);
    t->steps = opts->steps > 0 ? opts->steps : (int)ceil(opts->epochs * t->steps_per_epoch);
    if (t->steps < 1) t->steps = 1;
    t->warmup = opts->warmup >= 0 ? opts->warmup : (int)(0.06 * t->steps);
    t->n_heads = opts->pooling == SLM_POOL_AUTO ? 2 : 1;
    t->head_pool[0] = opts->pooling == SLM_POOL_AUTO ? SLM_POOL_LAST : opts->pooling;
    t->head_pool[1] = SLM_POOL_MEAN;
    t->select_step = opts->pooling == SLM_POOL_AUTO ? (int)(opts->select_frac * t->steps) : 0;
    if (opts->pooling == SLM_POOL_AUTO && t->select_step < 1) t->select_step = 1;
    t->best_acc = -1;
    t->best_loss = INFINITY;
    t->last_acc = t->last_loss = NAN;
    t->acc_sel[0] = t->acc_sel[1] = NAN;
    t->perm_epoch = -1;
    t->hs = (size_t)t->K * t->D + (size_t)t->K;
    int R = opts->rdrop > 0 ? 2 * B : B; /* rows per training micro-batch (R-Drop runs each twice) */
    size_t n = m->n_params, N = (size_t)R * T, D = (size_t)t->D, K = (size_t)t->K;
    t->grads = calloc(n, sizeof(float));
    t->adam_m = calloc(n, sizeof(float));
    t->adam_v = calloc(n, sizeof(float));
    t->head = calloc(2 * t->hs, sizeof(float));
    t->ghead = calloc(2 * t->hs, sizeof(float));
    t->head_m = calloc(2 * t->hs, sizeof(float));
    t->head_v = calloc(2 * t->hs, sizeof(float));
    t->tokens = malloc(N * sizeof(int32_t));
    t->pos = malloc(N * sizeof(int32_t));
    t->seq = malloc(N * sizeof(int32_t));
    t->out = calloc(N, 1);
    t->start = malloc((size_t)R * sizeof(int32_t));
    t->len = malloc((size_t)R * sizeof(int32_t));
    t->labels = malloc((size_t)R * sizeof(int32_t));
    t->pooled = malloc((size_t)R * D * sizeof(float));
    t->dpooled = malloc((size_t)R * D * sizeof(float));
    t->logits = malloc((size_t)R * K * sizeof(float));
    t->dlogits = malloc((size_t)R * K * sizeof(float));
    t->dhidden = malloc(N * D * sizeof(float));
    t->perm = malloc((size_t)d->train.n * sizeof(uint32_t));
    if (!t->grads || !t->adam_m || !t->adam_v || !t->head || !t->ghead || !t->head_m || !t->head_v ||
        !t->tokens || !t->pos || !t->seq || !t->out || !t->start || !t->len || !t->labels || !t->pooled ||
        !t->dpooled || !t->logits || !t->dlogits || !t->dhidden || !t->perm)
        goto nomem;
    /* head init: W ~ N(0, 0.02), b = 0 (both slots from one stream) */
    slm_rng r;
    slm_rng_seed(&r, opts->seed, 0x68656164u);
    for (int h = 0; h < 2; h++)
        for (size_t i = 0; i < K * D; i++) t->head[h * t->hs + i] = 0.02f * slm_rng_normal(&r);
    t->ctx = slm_ctx_new_outputs(&m->cfg, (int)N, 1, 1, pool, err);
    if (!t->ctx) goto fail;
    t->kv = slm_kv_cache_new(&m->cfg, R, T, err);
    if (!t->kv) goto fail;
    return t;
nomem:
    slm_err_set(err, SLM_ERR_NOMEM, "fine-tune: out of memory for %zu parameters", m->n_params);
fail:
    slm_finetune_free(t);
    return NULL;
}

void slm_finetune_free(slm_finetune *t) {
    if (!t) return;
    slm_ngram_free(t->own_ngram);
    slm_ctx_free(t->ctx);
    slm_kv_cache_free(t->kv);
    void *bufs[] = {t->grads, t->adam_m, t->adam_v, t->best, t->best_head, t->head, t->ghead, t->head_m,
                    t->head_v, t->tokens, t->pos, t->seq, t->out, t->start, t->len, t->labels,
                    t->pooled, t->dpooled, t->logits, t->dlogits, t->dhidden, t->perm, t->ckpt_path,
                    t->base, t->dlora, t->lora_m, t->lora_v, t->best_lora, t->soft};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    if (t->log) fclose(t->log);
    free(t);
}

slm_status slm_finetune_set_log(slm_finetune *t, const char *path, slm_err *err) {
    return slm_train_log_open(&t->log, path, err);
}

void slm_finetune_set_checkpoint(slm_finetune *t, const char *path, int every) {
    free(t->ckpt_path);
    t->ckpt_path = path ? strdup(path) : NULL;
    t->ckpt_every = every;
}

void slm_finetune_set_callback(slm_finetune *t, slm_finetune_callback cb, void *ctx) {
    t->cb = cb;
    t->cb_ctx = ctx;
}

slm_status slm_finetune_set_lora(slm_finetune *t, slm_lora *l, slm_err *err) {
    if (t->lora || t->step > 0) return slm_err_set(err, SLM_ERR_ARG, "LoRA: set once, before the first step");
    if ((l->cfg.dim != t->m->cfg.dim ||
        l->cfg.n_layers != t->m->cfg.n_layers || l->cfg.hidden_dim != t->m->cfg.hidden_dim ||
        l->cfg.n_heads != t->m->cfg.n_heads || l->cfg.n_kv_heads != t->m->cfg.n_kv_heads))
        return slm_err_set(err, SLM_ERR_ARG, "LoRA: the adapter was made for another body shape");
    size_t n = t->m->n_params;
    t->base = malloc(n * sizeof(float));
    t->dlora = calloc(l->n_params + 1, sizeof(float));
    t->lora_m = calloc(l->n_params + 1, sizeof(float));
    t->lora_v = calloc(l->n_params + 1, sizeof(float));
    if (!t->base || !t->dlora || !t->lora_m || !t->lora_v) return slm_err_set(err, SLM_ERR_NOMEM, "LoRA: out of memory");
    memcpy(t->base, t->m->params, n * sizeof(float));
    t->lora = l;
    slm_lora_apply(l, t->base, t->m->params);
    return SLM_OK;
}

const float *slm_finetune_lora_base(const slm_finetune *t) { return t->base; }

slm_status slm_finetune_set_teacher(slm_finetune *t, const float *probs, float temperature, float alpha,
                                    slm_err *err) {
    if (!(temperature > 0 && temperature <= 100) || !(alpha >= 0 && alpha <= 1))
        return slm_err_set(err, SLM_ERR_ARG, "distillation: temperature must be in (0, 100] and alpha in [0, 1] "
                           "(got %g, %g)", temperature, alpha);
    size_t rows = (size_t)t->o.batch * (t->o.rdrop > 0 ? 2 : 1); /* a training micro-batch's rows */
    if (!t->soft && !(t->soft = malloc(sizeof(float) * rows * (size_t)t->K)))
        return slm_err_set(err, SLM_ERR_NOMEM, "distillation: out of memory");
    t->teacher = probs;
    t->kd_T = temperature;
    t->kd_alpha = alpha;
    return SLM_OK;
}

void slm_finetune_set_mask(slm_finetune *t, const uint8_t *mask) { t->mask = mask; }

slm_status slm_finetune_load_head(slm_finetune *t, const slm_gguf *g, slm_err *err) {
    const slm_gguf_kv *lk;
    slm_status s = slm_gguf_get_arr(g, "slm.labels", SLM_GGUF_STRING, &lk, err);
    if (s) return s;
    if ((int)lk->arr_n != t->K)
        return slm_err_set(err, SLM_ERR_ARG, "%s has %llu labels, the data %d", slm_gguf_name(g),
                           (unsigned long long)lk->arr_n, t->K);
    for (int i = 0; i < t->K; i++)
        if (!slm_gguf_str_eq(lk->arr_strs[i], t->d->labels[i]))
            return slm_err_set(err, SLM_ERR_ARG, "%s: label %d is '%.*s', the data's is '%s'", slm_gguf_name(g), i,
                               (int)lk->arr_strs[i].len, lk->arr_strs[i].ptr, t->d->labels[i]);
    int pooling;
    s = slm_classify_head_read(g, t->K, t->D, t->head, t->head + (size_t)t->K * t->D, &pooling, err);
    if (s) return s;
    t->n_heads = 1;
    t->head_pool[0] = pooling;
    t->select_step = 0;
    t->o.pooling = pooling;
    /* its n-gram part travels on unchanged (a pruning recovery keeps it) */
    slm_ngram *ng = NULL;
    if ((s = slm_classify_ngram_read(g, t->K, &ng, &t->mix, err)) != SLM_OK) return s;
    slm_ngram_free(t->own_ngram);
    t->own_ngram = ng;
    t->ngram = ng;
    return SLM_OK;
}

int slm_finetune_step(const slm_finetune *t) { return t->step; }
int slm_finetune_best_step(const slm_finetune *t) { return t->best ? t->best_step : 0; }
void slm_finetune_set_refit(slm_finetune *t, float val_acc, float val_loss) {
    t->refit = 1;
    t->refit_acc = val_acc;
    t->refit_loss = val_loss;
}
int slm_finetune_steps(const slm_finetune *t) { return t->steps; }
int slm_finetune_pooling(const slm_finetune *t) { return t->n_heads == 2 ? SLM_POOL_AUTO : t->head_pool[0]; }
float slm_finetune_val_acc(const slm_finetune *t) { return t->refit ? t->refit_acc : t->last_acc; }
float slm_finetune_val_loss(const slm_finetune *t) { return t->refit ? t->refit_loss : t->last_loss; }
const float *slm_finetune_head_weight(const slm_finetune *t) { return t->head; }
const float *slm_finetune_head_bias(const slm_finetune *t) { return t->head + (size_t)t->K * t->D; }

/* Example i of epoch e's order (a seeded Fisher-Yates permutation per epoch). */
static int train_example(slm_finetune *t, int64_t g) {
    int n = t->d->train.n;
    int64_t e = g / n;
    if (e != t->perm_epoch) {
        slm_rng r;
        slm_rng_seed(&r, slm_rng_hash(t->o.seed, (uint64_t)e, 0x65706f63u), 1);
        slm_rng_permutation(&r, t->perm, (uint32_t)n);
        t->perm_epoch = e;
    }
    return (int)t->perm[g % n];
}

/* Lays examples idx[0..E) of s out as one batch; returns its tokens. With drop_key != 0
 * (training with token dropout) each text token between the first and the last is left out with
 * probability o.token_dropout (a regulariser: the head cannot lean on any one token), positions
 * renumbered. */
static int fill_batch(slm_finetune *t, const slm_task_split *s, const int *idx, int E, uint64_t drop_key) {
    int n = 0;
    uint64_t cut = (uint64_t)((double)t->o.token_dropout * 18446744073709551616.0);
    for (int e = 0; e < E; e++) {
        int i = idx[e], k = s->len[i];
        const int32_t *src = s->tokens + s->start[i];
        if (drop_key && cut && k > 3) {
            int kept = 0;
            for (int p = 0; p < k; p++) {
                int inner = p > 0 && p < k - 1;
                if (inner && slm_rng_hash(drop_key, (uint64_t)e, (uint64_t)p) < cut) continue;
                t->tokens[n + kept++] = src[p];
            }
            if (kept == 2) { /* every text token drawn out: keep the first */
                t->tokens[n + 1] = src[1];
                t->tokens[n + 2] = src[k - 1];
                kept = 3;
            }
            k = kept;
        } else {
            memcpy(t->tokens + n, src, sizeof(int32_t) * (size_t)k);
        }
        for (int p = 0; p < k; p++) {
            t->pos[n + p] = p;
            t->seq[n + p] = e;
        }
        t->start[e] = n;
        t->len[e] = k;
        t->labels[e] = s->label[i];
        n += k;
    }
    return n;
}

/* Head h's logits for the last forward into t->logits (pooled kept in t->pooled). */
static void head_forward(slm_finetune *t, int h, int E) {
    const float *W = t->head + (size_t)h * t->hs, *b = W + (size_t)t->K * t->D;
    slm_cls_pool(slm_ctx_hidden(t->ctx), t->D, t->start, t->len, E, t->head_pool[h], t->pooled);
    slm_cls_logits(W, b, t->pooled, E, t->D, t->K, t->logits);
}

/* Mean loss and accuracy of every active head over a split (one forward per B examples). */
static slm_status eval_heads(slm_finetune *t, const slm_task_split *s, double *loss, double *acc,
                             float *logits0, slm_err *err) {
    double lsum[2] = {0, 0};
    int correct[2] = {0, 0};
    int idx[4096];
    for (int i0 = 0; i0 < s->n; i0 += t->o.batch) {
        int E = s->n - i0 < t->o.batch ? s->n - i0 : t->o.batch;
        for (int e = 0; e < E; e++) idx[e] = i0 + e;
        int n = fill_batch(t, s, idx, E, 0);
        slm_batch b = {.n_tokens = n, .token = t->tokens, .pos = t->pos, .seq = t->seq, .output = t->out};
        slm_status st = slm_model_forward(t->m, t->ctx, t->kv, &b, err);
        if (st) return slm_err_prefix(err, "validation");
        for (int h = 0; h < t->n_heads; h++) {
            int c = 0;
            head_forward(t, h, E);
            if (h == 0 && logits0)
                memcpy(logits0 + (size_t)i0 * t->K, t->logits, sizeof(float) * (size_t)E * t->K);
            lsum[h] += slm_cls_loss(t->logits, t->labels, E, t->K, 0.0f, 1.0f, NULL, &c);
            correct[h] += c;
        }
    }
    for (int h = 0; h < t->n_heads; h++) {
        loss[h] = lsum[h] / s->n;
        acc[h] = (double)correct[h] / s->n;
    }
    return SLM_OK;
}

slm_status slm_finetune_evaluate(slm_finetune *t, const slm_task_split *s, int head, double *loss,
                                 double *acc, slm_err *err) {
    if (head < 0 || head >= t->n_heads)
        return slm_err_set(err, SLM_ERR_ARG, "evaluate: head %d of %d", head, t->n_heads);
    if (!s || s->n < 1 || !s->tokens) return slm_err_set(err, SLM_ERR_ARG, "evaluate: an empty or untokenized split");
    if (s->max_len > t->T) return slm_err_set(err, SLM_ERR_ARG, "evaluate: examples longer than %d tokens", t->T);
    double l[2], a[2];
    slm_status st = eval_heads(t, s, l, a, NULL, err);
    if (st) return st;
    *loss = l[head];
    *acc = a[head];
    return SLM_OK;
}

slm_status slm_finetune_logits(slm_finetune *t, const slm_task_split *s, float *logits, slm_err *err) {
    if (!s || s->n < 1 || !s->tokens) return slm_err_set(err, SLM_ERR_ARG, "logits: an empty or untokenized split");
    if (s->max_len > t->T) return slm_err_set(err, SLM_ERR_ARG, "logits: examples longer than %d tokens", t->T);
    double l[2], a[2];
    return eval_heads(t, s, l, a, logits, err);
}

void slm_finetune_set_ngram(slm_finetune *t, const slm_ngram *ng, slm_cls_mix mix) {
    t->ngram = ng;
    t->mix = mix;
}

/* One optimizer step's gradients: forward, head loss, backward, for each micro-batch. */
static slm_status train_step(slm_finetune *t, double *loss_out, slm_err *err) {
    const slm_finetune_opts *o = &t->o;
    int B = o->batch, idx[4096], rows[8192];
    int twice = o->rdrop > 0, R = twice ? 2 * B : B; /* R-Drop: every example in two rows */
    memset(t->grads, 0, t->m->n_params * sizeof(float));
    memset(t->ghead, 0, 2 * t->hs * sizeof(float));
    double loss = 0;
    for (int micro = 0; micro < o->accum; micro++) {
        int64_t g0 = ((int64_t)t->step * o->accum + micro) * B;
        for (int e = 0; e < B; e++) idx[e] = train_example(t, g0 + e);
        for (int r = 0; r < R; r++) rows[r] = idx[twice ? r / 2 : r];
        uint64_t key = t->o.token_dropout > 0 ? slm_rng_hash(t->o.seed ^ 0x746f6b656e64726fULL, (uint64_t)t->step, (uint64_t)micro) | 1 : 0;
        int n = fill_batch(t, &t->d->train, rows, R, key);
        slm_batch b = {.n_tokens = n, .token = t->tokens, .pos = t->pos, .seq = t->seq, .output = t->out};
        slm_status st = slm_ctx_set_dropout(t->ctx, o->dropout, slm_dropout_key(o->seed, t->step, micro), err);
        if (!st) st = slm_model_forward(t->m, t->ctx, t->kv, &b, err);
        if (st) return slm_err_prefix(err, "step %d: forward", t->step + 1);
        memset(t->dhidden, 0, (size_t)n * t->D * sizeof(float));
        /* per example: the mean over its rows of the head loss, plus R-Drop's term per pair */
        float scale = 1.0f / ((float)R * o->accum * t->n_heads), pair_scale = 1.0f / ((float)B * o->accum * t->n_heads);
        for (int h = 0; h < t->n_heads; h++) {
            float *W = t->head + (size_t)h * t->hs, *gW = t->ghead + (size_t)h * t->hs;
            size_t KD = (size_t)t->K * t->D;
            head_forward(t, h, R);
            if (t->teacher) {
                for (int r = 0; r < R; r++)
                    memcpy(t->soft + (size_t)r * t->K, t->teacher + (size_t)rows[r] * t->K, sizeof(float) * (size_t)t->K);
                loss += slm_cls_distill_loss(t->logits, t->labels, t->soft, R, t->K, t->kd_T, t->kd_alpha, scale,
                                             t->dlogits) * scale;
            } else {
                loss += slm_cls_loss(t->logits, t->labels, R, t->K, o->label_smoothing, scale, t->dlogits, NULL) *
                        scale;
            }
            if (twice) {
                double kl = slm_cls_rdrop_loss(t->logits, B, t->K, o->rdrop, pair_scale, t->dlogits);
                if (isnan(kl)) return slm_err_set(err, SLM_ERR_NOMEM, "step %d: out of memory", t->step + 1);
                loss += kl * pair_scale;
            }
            slm_cls_head_backward(W, t->pooled, t->dlogits, R, t->D, t->K, gW, gW + KD, t->dpooled);
            slm_cls_pool_backward(t->dpooled, t->D, t->start, t->len, R, t->head_pool[h], t->dhidden);
        }
        st = slm_model_backward_hidden(t->m, t->ctx, t->kv, &b, t->dhidden, t->grads, err);
        slm_ctx_set_dropout(t->ctx, 0, 0, NULL); /* validation and logits run whole */
        if (st) return slm_err_prefix(err, "step %d: backward", t->step + 1);
    }
    *loss_out = loss;
    return SLM_OK;
}

/* Global-norm clipping over body and active heads; returns the norm before. */
static double clip_all(slm_finetune *t) {
    size_t nh = (size_t)t->n_heads * t->hs;
    float *gb = t->lora ? t->dlora : t->grads;
    size_t ngb = t->lora ? t->lora->n_params : t->m->n_params;
    double nb = slm_grad_norm(gb, ngb), nhd = slm_grad_norm(t->ghead, nh);
    double norm = sqrt(nb * nb + nhd * nhd);
    if (t->o.grad_clip > 0 && norm > t->o.grad_clip) {
        float s = (float)(t->o.grad_clip / norm);
        for (size_t i = 0; i < ngb; i++) gb[i] *= s;
        for (size_t i = 0; i < nh; i++) t->ghead[i] *= s;
    }
    return norm;
}

/* AdamW over every body tensor (matrices decay, vectors not) and the active heads. */
static void optimizer_step(slm_finetune *t, float lr) {
    int step = t->step + 1;
    if (t->lora) {
        const slm_lora *l = t->lora;
        for (int i = 0; i < l->n_pairs; i++) {
            size_t oa = (size_t)(l->pairs[i].a - l->params), ob = (size_t)(l->pairs[i].b - l->params);
            size_t na = (size_t)l->rank * (size_t)l->pairs[i].in, nb = (size_t)l->rank * (size_t)l->pairs[i].out;
            slm_adamw_update(l->params + oa, t->dlora + oa, t->lora_m + oa, t->lora_v + oa, na, lr, step, 1, &t->o.adam);
            slm_adamw_update(l->params + ob, t->dlora + ob, t->lora_m + ob, t->lora_v + ob, nb, lr, step, 1, &t->o.adam);
        }
        slm_lora_apply(l, t->base, t->m->params);
    } else { /* (a LoRA run leaves the body frozen) */
        slm_adamw_step_model(&t->m->cfg, t->m->params, t->grads, t->adam_m, t->adam_v, lr, step, &t->o.adam);
    }
    size_t KD = (size_t)t->K * t->D;
    for (int h = 0; h < t->n_heads; h++) {
        size_t o = (size_t)h * t->hs;
        slm_adamw_update(t->head + o, t->ghead + o, t->head_m + o, t->head_v + o, KD, lr, step, 1, &t->o.adam);
        slm_adamw_update(t->head + o + KD, t->ghead + o + KD, t->head_m + o + KD, t->head_v + o + KD,
                         (size_t)t->K, lr, step, 0, &t->o.adam);
    }
}

/* Pooling auto: keeps the head with the better validation accuracy in slot 0. */
static void choose_head(slm_finetune *t, const double *loss, const double *acc, slm_finetune_progress *p) {
    int h = acc[1] > acc[0] || (acc[1] == acc[0] && loss[1] < loss[0]) ? 1 : 0;
    t->acc_sel[0] = (float)acc[0];
    t->acc_sel[1] = (float)acc[1];
    if (h == 1) {
        memcpy(t->head, t->head + t->hs, t->hs * sizeof(float));
        memcpy(t->head_m, t->head_m + t->hs, t->hs * sizeof(float));
        memcpy(t->head_v, t->head_v + t->hs, t->hs * sizeof(float));
        t->head_pool[0] = t->head_pool[1];
    }
    t->n_heads = 1;
    p->chose_pooling = t->head_pool[0];
    p->acc_last = t->acc_sel[0];
    p->acc_mean = t->acc_sel[1];
}

static slm_status validate(slm_finetune *t, slm_finetune_progress *p, slm_err *err) {
    double loss[2], acc[2];
    slm_status st = eval_heads(t, &t->d->val, loss, acc, NULL, err);
    if (st) return st;
    if (t->n_heads == 2) {
        if (t->step < t->select_step) { /* before the choice: report the better head */
            int h = acc[1] > acc[0] ? 1 : 0;
            p->val_loss = (float)loss[h];
            p->val_acc = (float)acc[h];
            t->last_loss = p->val_loss;
            t->last_acc = p->val_acc;
            return SLM_OK;
        }
        choose_head(t, loss, acc, p);
        if (p->chose_pooling == SLM_POOL_MEAN) loss[0] = loss[1], acc[0] = acc[1];
    }
    t->last_loss = p->val_loss = (float)loss[0];
    t->last_acc = p->val_acc = (float)acc[0];
    if (p->val_acc > t->best_acc || (p->val_acc == t->best_acc && p->val_loss < t->best_loss)) {
        t->best_acc = p->val_acc;
        t->best_loss = p->val_loss;
        t->best_step = t->step;
        t->bad_evals = 0;
        if (!t->best) t->best = malloc(t->m->n_params * sizeof(float));
        if (!t->best_head) t->best_head = malloc(t->hs * sizeof(float));
        if (!t->best || !t->best_head) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory keeping the best model");
        memcpy(t->best, t->m->params, t->m->n_params * sizeof(float));
        memcpy(t->best_head, t->head, t->hs * sizeof(float));
        if (t->lora) {
            if (!t->best_lora && !(t->best_lora = malloc(t->lora->n_params * sizeof(float))))
                return slm_err_set(err, SLM_ERR_NOMEM, "out of memory keeping the best adapter");
            memcpy(t->best_lora, t->lora->params, t->lora->n_params * sizeof(float));
        }
    } else if (t->o.patience > 0 && ++t->bad_evals >= t->o.patience) {
        p->stopped_early = 1;
    }
    return SLM_OK;
}

static void write_log(slm_finetune *t, const slm_finetune_progress *p) {
    if (!t->log) return;
    fprintf(t->log, "{\"step\":%d,\"epoch\":%.4f,\"loss\":%.6f", p->step, p->epoch, p->loss);
    if (!isnan(p->val_loss)) fprintf(t->log, ",\"val_loss\":%.6f,\"val_acc\":%.6f", p->val_loss, p->val_acc);
    if (p->chose_pooling >= 0)
        fprintf(t->log, ",\"pooling\":\"%s\",\"val_acc_last\":%.6f,\"val_acc_mean\":%.6f",
                slm_pooling_name(p->chose_pooling), p->acc_last, p->acc_mean);
    fprintf(t->log, ",\"lr\":%.6g,\"grad_norm\":%.6g,\"examples_per_s\":%.1f}\n", p->lr, p->grad_norm,
            p->examples_per_s);
    fflush(t->log);
}

slm_status slm_finetune_run(slm_finetune *t, slm_err *err) { return slm_finetune_run_for(t, -1, err); }

slm_status slm_finetune_run_for(slm_finetune *t, int max_steps, slm_err *err) {
    const slm_finetune_opts *o = &t->o;
    double t0 = slm_time_now();
    int start_step = t->step;
    slm_status st;
    while (t->step < t->steps) {
        if (max_steps >= 0 && t->step - start_step >= max_steps) return SLM_OK;
        double loss;
        if (t->lora && t->lora->dropout > 0) /* this step's rank-dropout mask; optimizer_step applies none */
            slm_lora_apply_step(t->lora, t->base, t->m->params, t->o.seed, (uint64_t)t->step);
        if ((st = train_step(t, &loss, err)) != SLM_OK) return st;
        if (t->lora) slm_lora_grad_step(t->lora, t->grads, t->dlora, t->o.seed, (uint64_t)t->step);
        slm_finetune_progress p = {.steps = t->steps, .val_loss = NAN, .val_acc = NAN, .chose_pooling = -1,
                                   .acc_last = NAN, .acc_mean = NAN};
        p.loss = (float)loss;
        if (!isfinite(p.loss))
            return slm_err_set(err, SLM_ERR_RANGE, "step %d: the loss is %g; lower the learning rate (%g)",
                               t->step + 1, p.loss, o->lr);
        p.grad_norm = clip_all(t);
        p.lr = slm_lr_schedule(t->step, t->warmup, t->steps, o->lr, o->lr_min);
        optimizer_step(t, p.lr);
        if (t->mask) slm_prune_mask_apply(t->m->params, t->mask, t->m->n_params);
        t->step++;
        p.step = t->step;
        p.epoch = (double)t->step * o->batch * o->accum / t->d->train.n;
        p.elapsed_s = slm_time_now() - t0;
        int done = t->step - start_step;
        p.examples_per_s = (double)done * o->batch * o->accum / (p.elapsed_s > 0 ? p.elapsed_s : 1e-9);
        p.eta_s = p.elapsed_s / done * (t->steps - t->step);
        int every = o->eval_every > 0 ? o->eval_every : t->steps_per_epoch;
        if (t->step % every == 0 || t->step == t->steps || (t->n_heads == 2 && t->step == t->select_step)) {
            if ((st = validate(t, &p, err)) != SLM_OK) return st;
        }
        write_log(t, &p);
        if (t->cb) t->cb(t->cb_ctx, &p);
        int last = t->step == t->steps || p.stopped_early;
        if (t->ckpt_path && (t->lora || t->teacher))
            return slm_err_set(err, SLM_ERR_UNSUPPORTED, "checkpoints of LoRA or distillation runs are not available yet");
        if (t->ckpt_path && ((t->ckpt_every > 0 && t->step % t->ckpt_every == 0) || last)) {
            if ((st = slm_finetune_save_checkpoint(t, t->ckpt_path, err)) != SLM_OK) return st;
        }
        if (p.stopped_early) break;
    }
    /* The model handed back is the best one validated (after the pooling choice). */
    if (t->best && t->best_head) {
        memcpy(t->m->params, t->best, t->m->n_params * sizeof(float));
        memcpy(t->head, t->best_head, t->hs * sizeof(float));
        if (t->lora && t->best_lora) memcpy(t->lora->params, t->best_lora, t->lora->n_params * sizeof(float));
        t->last_acc = t->best_acc;
        t->last_loss = t->best_loss;
    }
    return SLM_OK;
}
