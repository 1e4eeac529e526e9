/* sft.c: the generative fine-tuning loop, validation, distillation from a teacher language model
 * and the model file (see sft.h). Data rendering and masks: sft_data.c; the distillation loss of
 * one token: distill.c. */
#include "task/sft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/timer.h"
#include "task/distill.h"
#include "train/train_log.h"

struct slm_sft {
    slm_model *m;
    const slm_tokenizer *tok;
    const slm_sft_data *d;
    slm_sft_opts o;
    slm_pool *pool;
    int steps, warmup;
    slm_ctx *ctx;            /* train workspace for B*max_len tokens */
    slm_kv_cache *kv;        /* B slots of max_len positions */
    float *grads;            /* (n_params) */
    float *adam_m, *adam_v;  /* (n_params) */
    float *best;             /* (n_params) best validated parameters (early stopping) */
    int32_t *tokens, *targets, *pos, *seq; /* (B*max_len) */
    const slm_sft_example **mb; /* (accum*B) the examples of one step */
    uint32_t *perm;          /* (train.n) */
    int64_t perm_epoch;
    int step;
    uint64_t tokens_seen;
    float best_val, last_val, first_val;
    int bad_evals;
    FILE *log;
    slm_sft_callback cb;
    void *cb_ctx;
    /* distillation (slm_sft_set_teacher); teacher NULL: plain fine-tuning */
    const slm_model *teacher;
    float kd_T, kd_alpha;
    slm_ctx *tctx;           /* the teacher's inference workspace: B*max_len tokens and logits rows */
    slm_kv_cache *tkv;       /* the teacher's: B slots of max_len positions */
    int8_t *tout;            /* (B*max_len) the teacher's output flags: the counted tokens */
    int32_t *trow;           /* (B*max_len) row of a batch token in the teacher's logits; -1 uncounted */
    double *row_loss;        /* (B*max_len, 2) per batch token: loss (or KL), teacher CE */
};

void slm_sft_opts_default(slm_sft_opts *o) {
    memset(o, 0, sizeof *o);
    o->steps = 0;
    o->epochs = 3.0f;
    o->batch = 8;
    o->accum = 1;
    o->max_len = 256;
    o->lr = 1e-4f;
    o->lr_min = 1e-5f;
    o->warmup = -1;
    o->adam = (slm_adamw_params){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    o->grad_clip = 1.0f;
    o->eval_every = 0;
    o->patience = 0;
    o->seed = 1;
}

slm_status slm_sft_opts_check(const slm_sft_opts *o, slm_err *err) {
    slm_status s = slm_epochs_batch_check(o->steps, o->epochs, o->batch, o->accum, err);
    if (s != SLM_OK) return s;
    if (o->max_len < 2 || o->max_len > (1 << 16))
        return slm_err_set(err, SLM_ERR_ARG, "max_len must be in [2, 65536] (got %d)", o->max_len);
    if ((s = slm_lr_check(o->lr, o->lr_min, err)) != SLM_OK) return s;
    if (o->eval_every < 0 || o->patience < 0)
        return slm_err_set(err, SLM_ERR_ARG, "eval_every and patience must not be negative");
    if (!(o->dropout >= 0 && o->dropout <= 0.9f))
        return slm_err_set(err, SLM_ERR_ARG, "dropout must be in [0, 0.9] (got %g)", o->dropout);
    return slm_adamw_params_check(&o->adam, err);
}

slm_sft *slm_sft_new(slm_model *m, const slm_tokenizer *tok, const slm_sft_data *d, const slm_sft_opts *opts,
                     slm_pool *pool, slm_err *err) {
    if (slm_sft_opts_check(opts, err) != SLM_OK) return NULL;
    if (!m || m->mapped || m->cfg.arch != SLM_ARCH_LLAMA) {
        slm_err_set(err, SLM_ERR_UNSUPPORTED, "generative fine-tuning needs an fp32 llama model (slm_model_load)");
        return NULL;
    }
    if (d->train.n < 1 || d->val.n < 1) {
        slm_err_set(err, SLM_ERR_ARG, "generative fine-tuning needs tokenized train and val examples (%d and %d "
                    "kept)", d->train.n, d->val.n);
        return NULL;
    }
    if (opts->max_len > m->cfg.ctx_len) {
        slm_err_set(err, SLM_ERR_ARG, "max_len %d is longer than the model's context (%d)", opts->max_len,
                    m->cfg.ctx_len);
        return NULL;
    }
    const slm_sft_split *sp[2] = {&d->train, &d->val};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < sp[k]->n; i++)
            if (sp[k]->ex[i].n > opts->max_len) {
                slm_err_set(err, SLM_ERR_ARG, "%s: an example has %d tokens, more than max_len %d (tokenize "
                            "with the same max_len)", sp[k]->path, sp[k]->ex[i].n, opts->max_len);
                return NULL;
            }
    if (slm_tokenizer_n_vocab(tok) > m->cfg.n_vocab) {
        slm_err_set(err, SLM_ERR_ARG, "the tokenizer has %d tokens but the model only %d",
                    slm_tokenizer_n_vocab(tok), m->cfg.n_vocab);
        return NULL;
    }
    slm_sft *t = calloc(1, sizeof *t);
    if (!t) goto nomem;
    t->m = m;
    t->tok = tok;
    t->d = d;
    t->o = *opts;
    t->pool = pool;
    int B = opts->batch;
    int64_t per_step = (int64_t)B * opts->accum;
    int steps_per_epoch = (int)((d->train.n + per_step - 1) / per_step);
    t->steps = opts->steps > 0 ? opts->steps : (int)ceil(opts->epochs * steps_per_epoch);
    if (t->steps < 1) t->steps = 1;
    t->warmup = opts->warmup >= 0 ? opts->warmup : (int)(0.06 * t->steps);
    if (t->o.eval_every == 0) t->o.eval_every = steps_per_epoch;
    t->best_val = INFINITY;
    t->last_val = t->first_val = NAN;
    t->perm_epoch = -1;
    size_t n = m->n_params, N = (size_t)B * (size_t)opts->max_len;
    t->grads = calloc(n, sizeof(float));
    t->adam_m = calloc(n, sizeof(float));
    t->adam_v = calloc(n, sizeof(float));
    t->tokens = malloc(N * sizeof(int32_t));
    t->targets = malloc(N * sizeof(int32_t));
    t->pos = malloc(N * sizeof(int32_t));
    t->seq = malloc(N * sizeof(int32_t));
    t->mb = malloc((size_t)per_step * sizeof *t->mb);
    t->perm = malloc((size_t)d->train.n * sizeof(uint32_t));
    if (!t->grads || !t->adam_m || !t->adam_v || !t->tokens || !t->targets || !t->pos || !t->seq || !t->mb ||
        !t->perm)
        goto nomem;
    t->ctx = slm_ctx_new(&m->cfg, (int)N, 1, pool, err);
    if (!t->ctx) goto fail;
    t->kv = slm_kv_cache_new(&m->cfg, B, opts->max_len, err);
    if (!t->kv) goto fail;
    return t;
nomem:
    slm_err_set(err, SLM_ERR_NOMEM, "generative fine-tune: out of memory for %zu parameters", m->n_params);
fail:
    slm_sft_free(t);
    return NULL;
}

void slm_sft_free(slm_sft *t) {
    if (!t) return;
    slm_ctx_free(t->ctx);
    slm_kv_cache_free(t->kv);
    slm_ctx_free(t->tctx);
    slm_kv_cache_free(t->tkv);
    void *bufs[] = {t->grads, t->adam_m, t->adam_v, t->best, t->tokens, t->targets, t->pos, t->seq,
                    (void *)t->mb, t->perm, t->tout, t->trow, t->row_loss};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    if (t->log) fclose(t->log);
    free(t);
}

slm_status slm_sft_set_log(slm_sft *t, const char *path, slm_err *err) {
    return slm_train_log_open(&t->log, path, err);
}

void slm_sft_set_callback(slm_sft *t, slm_sft_callback cb, void *ctx) {
    t->cb = cb;
    t->cb_ctx = ctx;
}

int slm_sft_step(const slm_sft *t) { return t->step; }
int slm_sft_steps(const slm_sft *t) { return t->steps; }
float slm_sft_val_loss(const slm_sft *t) { return t->last_val; }
float slm_sft_first_val_loss(const slm_sft *t) { return t->first_val; }

/* Lays out ex[0..n) as one batch (seq = example, pos = 0..len-1); returns the token count. */
static int layout(slm_sft *t, const slm_sft_example *const *ex, int n) {
    int k = 0;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < ex[b]->n; i++, k++) {
            t->tokens[k] = ex[b]->ids[i];
            t->targets[k] = ex[b]->targets[i];
            t->pos[k] = i;
            t->seq[k] = b;
        }
    return k;
}

/* Checks and lays out ex[0..n) and runs the student forward on it (logits for every token). */
static slm_status student_forward(slm_sft *t, const slm_sft_example *const *ex, int n, slm_batch *batch,
                                  slm_err *err) {
    if (n < 1 || n > t->o.batch) return slm_err_set(err, SLM_ERR_ARG, "a batch holds 1 to %d examples (got %d)",
                                                    t->o.batch, n);
    for (int b = 0; b < n; b++)
        if (ex[b]->n < 1 || ex[b]->n > t->o.max_len)
            return slm_err_set(err, SLM_ERR_ARG, "an example of %d tokens (max_len %d)", ex[b]->n, t->o.max_len);
    int nt = layout(t, ex, n);
    *batch = (slm_batch){.n_tokens = nt, .token = t->tokens, .pos = t->pos, .seq = t->seq, .output = NULL};
    return slm_model_forward(t->m, t->ctx, t->kv, batch, err);
}

/* Distillation rows, split over the pool: a counted token's loss and (train) its d/dlogits in place
 * of the student's logits, or (eval) its KL at temperature 1 and the teacher's cross-entropy. */
typedef struct {
    slm_sft *t;
    const float *tl; /* (counted, V) the teacher's logits */
    float *z;        /* (n, V) the student's logits; train: replaced by d(loss·scale)/dz */
    int n, train;
    float g;         /* scale / counted */
} kd_job;

static void kd_rows(void *ctx, int ith, int nth) {
    const kd_job *j = ctx;
    slm_sft *t = j->t;
    const int V = t->m->cfg.n_vocab;
    size_t i0, i1;
    slm_pool_slice((size_t)j->n, ith, nth, &i0, &i1);
    for (size_t i = i0; i < i1; i++) {
        float *z = j->z + i * (size_t)V;
        double *out = t->row_loss + 2 * i;
        int r = t->trow[i];
        int32_t y = t->targets[i];
        if (r < 0) {
            if (j->train) memset(z, 0, (size_t)V * sizeof(float));
            out[0] = out[1] = 0;
            continue;
        }
        const float *tz = j->tl + (size_t)r * (size_t)V;
        if (j->train) {
            out[0] = slm_distill_token_loss(z, tz, V, y, t->kd_T, t->kd_alpha, j->g, z);
            out[1] = 0;
        } else {
            out[0] = slm_distill_token_loss(z, tz, V, y, 1.0f, 1.0f, 0.0f, NULL);
            double m = -INFINITY, sum = 0;
            for (int k = 0; k < V; k++) m = fmax(m, tz[k]);
            for (int k = 0; k < V; k++) sum += exp((double)tz[k] - m);
            out[1] = m + log(sum) - (double)tz[y];
        }
    }
}

/* The teacher and the student on one batch. train: the distillation loss (mean per counted token)
 * in sums[0], and its gradient (times scale) added to grads when grads is not NULL. Else: the
 * summed KL at temperature 1 in sums[0] and the summed teacher cross-entropy in sums[1]. */
static slm_status kd_batch(slm_sft *t, const slm_sft_example *const *ex, int n, int train, float scale,
                           float *grads, double sums[2], int *counted, slm_err *err) {
    slm_batch batch;
    slm_status s = student_forward(t, ex, n, &batch, err);
    if (s != SLM_OK) return s;
    int nt = batch.n_tokens, nc = 0, V = t->m->cfg.n_vocab;
    for (int i = 0; i < nt; i++) {
        if (t->targets[i] < -1 || t->targets[i] >= V)
            return slm_err_set(err, SLM_ERR_RANGE, "target %d of the batch is outside the vocabulary (%d)",
                               t->targets[i], V);
        t->tout[i] = t->targets[i] >= 0;
        t->trow[i] = t->targets[i] >= 0 ? nc++ : -1;
    }
    *counted = nc;
    sums[0] = sums[1] = 0;
    if (nc == 0) return SLM_OK; /* nothing counted: no loss, no gradient */
    slm_batch tb = batch;
    tb.output = t->tout;
    s = slm_model_forward(t->teacher, t->tctx, t->tkv, &tb, err);
    if (s != SLM_OK) return slm_err_prefix(err, "teacher");
    kd_job j = {.t = t, .tl = slm_ctx_logits(t->tctx), .n = nt, .train = train, .g = scale / (float)nc};
    j.z = train ? slm_ctx_dlogits(t->ctx) : slm_ctx_logits(t->ctx);
    slm_pool_run(t->pool, kd_rows, &j);
    for (int i = 0; i < nt; i++) sums[0] += t->row_loss[2 * i], sums[1] += t->row_loss[2 * i + 1];
    if (train) sums[0] /= nc;
    if (!isfinite(sums[0])) return slm_err_set(err, SLM_ERR_RANGE, "the distillation loss is %g", sums[0]);
    if (train && grads) return slm_model_backward(t->m, t->ctx, t->kv, &batch, grads, err);
    return SLM_OK;
}

/* Forward, loss (scaled), and backward when grads is not NULL. distill: the teacher's loss when
 * one is set (training); else cross-entropy (validation). */
static slm_status run_batch(slm_sft *t, const slm_sft_example *const *ex, int n, float scale, float *grads,
                            float *loss, int *counted, int distill, slm_err *err) {
    if (distill && t->teacher) {
        double sums[2];
        slm_status s = kd_batch(t, ex, n, 1, scale, grads, sums, counted, err);
        *loss = (float)sums[0];
        return s;
    }
    slm_batch batch;
    slm_status s = student_forward(t, ex, n, &batch, err);
    if (s != SLM_OK) return s;
    *loss = slm_model_loss(t->ctx, t->targets, scale, counted);
    if (isnan(*loss)) return slm_err_set(err, SLM_ERR_RANGE, "the loss could not be computed (a target out of vocab?)");
    if (grads) return slm_model_backward(t->m, t->ctx, t->kv, &batch, grads, err);
    return SLM_OK;
}

slm_status slm_sft_grad(slm_sft *t, const slm_sft_example *ex, int n, float scale, float *grads, float *loss,
                        int *n_counted, slm_err *err) {
    const slm_sft_example *p[4096];
    if (n < 1 || n > t->o.batch) return slm_err_set(err, SLM_ERR_ARG, "1 to %d examples (got %d)", t->o.batch, n);
    for (int i = 0; i < n; i++) p[i] = &ex[i];
    return run_batch(t, p, n, scale, grads, loss, n_counted, 1, err);
}

slm_status slm_sft_evaluate(slm_sft *t, const slm_sft_split *s, double *loss, slm_err *err) {
    const slm_sft_example *p[4096];
    double nats = 0;
    size_t counted_all = 0;
    for (int i0 = 0; i0 < s->n; i0 += t->o.batch) {
        int nb = s->n - i0 < t->o.batch ? s->n - i0 : t->o.batch;
        for (int b = 0; b < nb; b++) p[b] = &s->ex[i0 + b];
        float l;
        int c = 0;
        slm_status st = run_batch(t, p, nb, 1.0f, NULL, &l, &c, 0, err);
        if (st != SLM_OK) return slm_err_prefix(err, "validation");
        nats += (double)l * c;
        counted_all += (size_t)c;
    }
    *loss = counted_all ? nats / (double)counted_all : NAN;
    return SLM_OK;
}

slm_status slm_sft_set_teacher(slm_sft *t, const slm_model *teacher, const slm_tokenizer *teacher_tok,
                               float temperature, float alpha, slm_err *err) {
    if (!teacher || !teacher_tok)
        return slm_err_set(err, SLM_ERR_ARG, "distillation: a teacher model and its tokenizer are required");
    if (!(temperature > 0 && temperature <= 100) || !(alpha >= 0 && alpha <= 1))
        return slm_err_set(err, SLM_ERR_ARG, "distillation: temperature must be in (0, 100] and alpha in [0, 1] "
                           "(got %g, %g)", temperature, alpha);
    slm_status s = slm_distill_check_vocab(teacher_tok, t->tok, err);
    if (s != SLM_OK) return s;
    if (teacher->cfg.n_vocab != t->m->cfg.n_vocab)
        return slm_err_set(err, SLM_ERR_ARG, "distillation: the teacher's output has %d vocabulary rows, the "
                           "student's %d (they must be equal)", teacher->cfg.n_vocab, t->m->cfg.n_vocab);
    if (teacher->cfg.ctx_len < t->o.max_len)
        return slm_err_set(err, SLM_ERR_ARG, "distillation: the teacher's context (%d) is shorter than max_len %d",
                           teacher->cfg.ctx_len, t->o.max_len);
    slm_ctx_free(t->tctx);
    slm_kv_cache_free(t->tkv);
    t->tctx = NULL;
    t->tkv = NULL;
    t->teacher = NULL;
    int N = t->o.batch * t->o.max_len, most = 1; /* logits rows: the most counted tokens a batch can hold */
    const slm_sft_split *sp[2] = {&t->d->train, &t->d->val};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < sp[k]->n; i++) most = sp[k]->ex[i].n_counted > most ? sp[k]->ex[i].n_counted : most;
    if (!t->tout) t->tout = malloc((size_t)N * sizeof(int8_t));
    if (!t->trow) t->trow = malloc((size_t)N * sizeof(int32_t));
    if (!t->row_loss) t->row_loss = malloc((size_t)N * 2 * sizeof(double));
    if (!t->tout || !t->trow || !t->row_loss) return slm_err_set(err, SLM_ERR_NOMEM, "distillation: out of memory");
    if (!(t->tctx = slm_ctx_new_outputs(&teacher->cfg, N, t->o.batch * most, 0, t->pool, err)) ||
        !(t->tkv = slm_kv_cache_new(&teacher->cfg, t->o.batch, t->o.max_len, err)))
        return slm_err_prefix(err, "distillation: the teacher's workspace");
    t->teacher = teacher;
    t->kd_T = temperature;
    t->kd_alpha = alpha;
    return SLM_OK;
}

slm_status slm_sft_evaluate_teacher(slm_sft *t, const slm_sft_split *s, double *teacher_loss, double *kl,
                                    slm_err *err) {
    if (!t->teacher) return slm_err_set(err, SLM_ERR_ARG, "no teacher is set (slm_sft_set_teacher)");
    const slm_sft_example *p[4096];
    double kl_sum = 0, ce_sum = 0;
    size_t counted_all = 0;
    for (int i0 = 0; i0 < s->n; i0 += t->o.batch) {
        int nb = s->n - i0 < t->o.batch ? s->n - i0 : t->o.batch;
        for (int b = 0; b < nb; b++) p[b] = &s->ex[i0 + b];
        double sums[2];
        int c = 0;
        slm_status st = kd_batch(t, p, nb, 0, 0.0f, NULL, sums, &c, err);
        if (st != SLM_OK) return slm_err_prefix(err, "evaluating the teacher");
        kl_sum += sums[0];
        ce_sum += sums[1];
        counted_all += (size_t)c;
    }
    if (kl) *kl = counted_all ? kl_sum / (double)counted_all : NAN;
    if (teacher_loss) *teacher_loss = counted_all ? ce_sum / (double)counted_all : NAN;
    return SLM_OK;
}

/* Example of global index g in the training order (a seeded permutation per epoch). */
static const slm_sft_example *train_example(slm_sft *t, int64_t g) {
    int n = t->d->train.n;
    int64_t e = g / n;
    if (e != t->perm_epoch) {
        slm_rng r;
        slm_rng_seed(&r, slm_rng_hash(t->o.seed, (uint64_t)e, 0x73667421u), 1);
        slm_rng_permutation(&r, t->perm, (uint32_t)n);
        t->perm_epoch = e;
    }
    return &t->d->train.ex[t->perm[g % n]];
}

static void write_log(slm_sft *t, const slm_sft_progress *p) {
    if (!t->log) return;
    fprintf(t->log, "{\"step\":%d,\"epoch\":%.4f,\"loss\":%.6f", p->step, p->epoch, p->loss);
    if (!isnan(p->val_loss)) fprintf(t->log, ",\"val_loss\":%.6f", p->val_loss);
    fprintf(t->log, ",\"lr\":%.6g,\"grad_norm\":%.6g,\"tokens_per_s\":%.1f}\n", p->lr, p->grad_norm,
            p->tokens_per_s);
    fflush(t->log);
}

static slm_status validate(slm_sft *t, slm_sft_progress *p, slm_err *err) {
    double loss;
    slm_status s = slm_sft_evaluate(t, &t->d->val, &loss, err);
    if (s != SLM_OK) return s;
    t->last_val = p->val_loss = (float)loss;
    if (isnan(t->first_val)) t->first_val = t->last_val;
    if (t->o.patience > 0) {
        if (p->val_loss < t->best_val) {
            t->best_val = p->val_loss;
            t->bad_evals = 0;
            if (!t->best) t->best = malloc(t->m->n_params * sizeof(float));
            if (!t->best) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory keeping the best parameters");
            memcpy(t->best, t->m->params, t->m->n_params * sizeof(float));
        } else if (++t->bad_evals >= t->o.patience) {
            p->stopped_early = 1;
        }
    }
    return SLM_OK;
}

slm_status slm_sft_run(slm_sft *t, slm_err *err) {
    slm_status s = slm_sft_run_for(t, -1, err);
    if (s == SLM_OK && t->o.patience > 0 && t->best) {
        memcpy(t->m->params, t->best, t->m->n_params * sizeof(float));
        t->last_val = t->best_val;
    }
    return s;
}

slm_status slm_sft_run_for(slm_sft *t, int max_steps, slm_err *err) {
    const int B = t->o.batch, A = t->o.accum;
    const size_t n_params = t->m->n_params;
    double t0 = slm_time_now();
    int start = t->step;
    uint64_t tokens0 = t->tokens_seen;
    while (t->step < t->steps) {
        if (max_steps >= 0 && t->step - start >= max_steps) return SLM_OK;
        /* the step's examples, and its counted tokens (to weight each micro-batch's mean) */
        int64_t g0 = (int64_t)t->step * B * A;
        size_t counted_step = 0;
        for (int i = 0; i < B * A; i++) {
            t->mb[i] = train_example(t, g0 + i);
            counted_step += (size_t)t->mb[i]->n_counted;
            t->tokens_seen += (uint64_t)t->mb[i]->n;
        }
        memset(t->grads, 0, n_params * sizeof(float));
        double loss_sum = 0;
        for (int micro = 0; micro < A; micro++) {
            const slm_sft_example *const *ex = t->mb + (size_t)micro * B;
            size_t c_micro = 0;
            for (int b = 0; b < B; b++) c_micro += (size_t)ex[b]->n_counted;
            float scale = counted_step ? (float)((double)c_micro / (double)counted_step) : 0.0f;
            float l;
            int c;
            slm_status s = slm_ctx_set_dropout(t->ctx, t->o.dropout, slm_dropout_key(t->o.seed, t->step, micro), err);
            if (!s) s = run_batch(t, ex, B, scale, t->grads, &l, &c, 1, err);
            slm_ctx_set_dropout(t->ctx, 0, 0, NULL); /* validation runs whole */
            if (s != SLM_OK) return slm_err_prefix(err, "step %d", t->step + 1);
            loss_sum += (double)l * c;
        }
        slm_sft_progress p = {.steps = t->steps, .val_loss = NAN};
        p.loss = counted_step ? (float)(loss_sum / (double)counted_step) : 0.0f;
        if (!isfinite(p.loss))
            return slm_err_set(err, SLM_ERR_RANGE, "step %d: the loss is %g; lower the learning rate (%g)",
                               t->step + 1, p.loss, t->o.lr);
        p.grad_norm = slm_grad_clip(t->grads, n_params, t->o.grad_clip);
        p.lr = slm_lr_schedule(t->step, t->warmup, t->steps, t->o.lr, t->o.lr_min);
        slm_adamw_step_model(&t->m->cfg, t->m->params, t->grads, t->adam_m, t->adam_v, p.lr, t->step + 1,
                             &t->o.adam);
        t->step++;
        p.step = t->step;
        p.epoch = (double)t->step * B * A / t->d->train.n;
        p.elapsed_s = slm_time_now() - t0;
        p.tokens_per_s = (double)(t->tokens_seen - tokens0) / (p.elapsed_s > 0 ? p.elapsed_s : 1e-9);
        p.eta_s = p.elapsed_s / (t->step - start) * (t->steps - t->step);
        if ((t->o.eval_every > 0 && t->step % t->o.eval_every == 0) || t->step == t->steps) {
            slm_status s = validate(t, &p, err);
            if (s != SLM_OK) return s;
        }
        write_log(t, &p);
        if (t->cb) t->cb(t->cb_ctx, &p);
        if (p.stopped_early) break;
    }
    return SLM_OK;
}

slm_status slm_sft_save(const slm_sft *t, const slm_sft_save_info *info, const char *path, slm_err *err) {
    slm_gguf_writer *w = slm_gguf_writer_new();
    if (!w) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    slm_status s = slm_model_save(t->m, w, err);
    if (!s) s = slm_tokenizer_save(t->tok, w, err);
    slm_status m = SLM_OK;
    const slm_gguf_kv *ct = info && info->base ? slm_gguf_find_kv(info->base, "tokenizer.chat_template") : NULL;
    if (!s && ct) m = slm_gguf_set_kv_from(w, info->base, ct);
    else if (!s && info && info->chat_template) m = slm_gguf_set_str(w, "tokenizer.chat_template", info->chat_template);
    if (!m) m = slm_gguf_set_str(w, "general.name", "slm-generate");
    if (!m) m = slm_gguf_set_str(w, "slm.task", "generate");
    if (!m) m = slm_gguf_set_str(w, "slm.sft.separator", info && info->separator ? info->separator : "");
    if (!m) m = slm_gguf_set_u32(w, "slm.sft.max_len", (uint32_t)t->o.max_len);
    if (!m) m = slm_gguf_set_u32(w, "slm.train.steps", (uint32_t)t->step);
    if (!m) m = slm_gguf_set_f32(w, "slm.train.epochs", (float)((double)t->step * t->o.batch * t->o.accum / t->d->train.n));
    if (!m) m = slm_gguf_set_u32(w, "slm.train.examples", (uint32_t)t->d->train.n);
    if (!m) m = slm_gguf_set_u64(w, "slm.train.tokens", t->tokens_seen);
    if (!m) m = slm_gguf_set_u64(w, "slm.train.seed", t->o.seed);
    if (!m) m = slm_gguf_set_u32(w, "slm.train.batch", (uint32_t)(t->o.batch * t->o.accum));
    if (!m) m = slm_gguf_set_f32(w, "slm.train.lr", t->o.lr);
    if (!m && !isnan(t->last_val)) m = slm_gguf_set_f32(w, "slm.train.val_loss", t->last_val);
    if (!m && t->teacher) m = slm_gguf_set_f32(w, "slm.distill.temperature", t->kd_T);
    if (!m && t->teacher) m = slm_gguf_set_f32(w, "slm.distill.alpha", t->kd_alpha);
    if (!s && m) s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory adding metadata");
    if (!s) s = slm_gguf_writer_write(w, path, err);
    slm_gguf_writer_free(w);
    if (s) slm_err_prefix(err, "writing %s", path);
    return s;
}
