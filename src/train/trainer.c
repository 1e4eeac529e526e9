/* trainer.c: the training loop and validation (see trainer.h). Checkpoint files: checkpoint.c. */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "model/forward.h"
#include "train/train_log.h"
#include "train/trainer_internal.h"

void slm_train_opts_default(slm_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->steps = 1000;
    o->batch = 8;
    o->seq_len = 256;
    o->accum = 1;
    o->lr = 1e-3f;
    o->lr_min = 1e-4f;
    o->warmup = 100;
    o->adam = (slm_adamw_params){.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    o->grad_clip = 1.0f;
    o->eval_every = 100;
    o->eval_windows = 20;
    o->patience = 0;
    o->seed = 1;
}

slm_status slm_train_opts_check(const slm_train_opts *o, slm_err *err) {
    slm_status s;
    if (o->steps < 1) return slm_err_set(err, SLM_ERR_ARG, "steps must be at least 1 (got %d)", o->steps);
    if (o->batch < 1 || o->seq_len < 2 || o->accum < 1)
        return slm_err_set(err, SLM_ERR_ARG, "batch (%d), sequence length (%d) and accumulation (%d) "
                           "must be at least 1, 2 and 1", o->batch, o->seq_len, o->accum);
    if ((s = slm_lr_check(o->lr, o->lr_min, err)) != SLM_OK) return s;
    if (o->warmup < 0 || o->eval_every < 0 || o->eval_windows < 0 || o->patience < 0)
        return slm_err_set(err, SLM_ERR_ARG, "warmup, eval_every, eval_windows and patience must not be negative");
    return slm_adamw_params_check(&o->adam, err);
}

slm_trainer *slm_trainer_new(slm_model *m, const slm_tokenizer *tok, const slm_token_data *data,
                             const slm_train_opts *opts, slm_pool *pool, slm_err *err) {
    if (slm_train_opts_check(opts, err) != SLM_OK) return NULL;
    if (opts->seq_len > m->cfg.ctx_len) {
        slm_err_set(err, SLM_ERR_ARG, "sequence length %d is longer than the model's context (%d)",
                    opts->seq_len, m->cfg.ctx_len);
        return NULL;
    }
    if (slm_tokenizer_n_vocab(tok) > m->cfg.n_vocab) {
        slm_err_set(err, SLM_ERR_ARG, "the tokenizer has %d tokens but the model only %d",
                    slm_tokenizer_n_vocab(tok), m->cfg.n_vocab);
        return NULL;
    }
    if (data->n_train < 2) {
        slm_err_set(err, SLM_ERR_ARG, "the training text encodes to %zu tokens; need more text",
                    data->n_train);
        return NULL;
    }
    slm_trainer *t = calloc(1, sizeof *t);
    if (!t) goto nomem;
    t->m = m;
    t->tok = tok;
    t->data = data;
    t->o = *opts;
    t->pool = pool;
    t->best_val = INFINITY;
    t->best_bpb = NAN;
    t->last_val = NAN;
    t->last_bpb = NAN;
    size_t n = m->n_params, bt = (size_t)opts->batch * (size_t)opts->seq_len;
    t->grads = calloc(n, sizeof(float));
    t->adam_m = calloc(n, sizeof(float));
    t->adam_v = calloc(n, sizeof(float));
    t->inputs = malloc(bt * sizeof(int32_t));
    t->targets = malloc(bt * sizeof(int32_t));
    t->pos = malloc(bt * sizeof(int32_t));
    t->seq = malloc(bt * sizeof(int32_t));
    if (!t->grads || !t->adam_m || !t->adam_v || !t->inputs || !t->targets || !t->pos || !t->seq) goto nomem;
    for (size_t i = 0; i < bt; i++) {
        t->pos[i] = (int32_t)(i % (size_t)opts->seq_len);
        t->seq[i] = (int32_t)(i / (size_t)opts->seq_len);
    }
    t->ctx = slm_ctx_new(&m->cfg, (int)bt, 1, pool, err);
    if (!t->ctx) goto fail;
    t->kv = slm_kv_cache_new(&m->cfg, opts->batch, opts->seq_len, err);
    if (!t->kv) goto fail;
    return t;
nomem:
    slm_err_set(err, SLM_ERR_NOMEM, "trainer: out of memory for %zu parameters", m->n_params);
fail:
    slm_trainer_free(t);
    return NULL;
}

void slm_trainer_free(slm_trainer *t) {
    if (!t) return;
    slm_ctx_free(t->ctx);
    slm_kv_cache_free(t->kv);
    free(t->grads);
    free(t->adam_m);
    free(t->adam_v);
    free(t->best);
    free(t->inputs);
    free(t->targets);
    free(t->pos);
    free(t->seq);
    if (t->log) fclose(t->log);
    free(t->ckpt_path);
    free(t);
}

slm_status slm_trainer_set_log(slm_trainer *t, const char *path, slm_err *err) {
    return slm_train_log_open(&t->log, path, err);
}

void slm_trainer_set_checkpoint(slm_trainer *t, const char *path, int every) {
    free(t->ckpt_path);
    t->ckpt_path = path ? strdup(path) : NULL;
    t->ckpt_every = every;
}

void slm_trainer_set_callback(slm_trainer *t, slm_train_callback cb, void *ctx) {
    t->cb = cb;
    t->cb_ctx = ctx;
}

int slm_trainer_step(const slm_trainer *t) { return t->step; }
const slm_train_opts *slm_trainer_opts(const slm_trainer *t) { return &t->o; }
float slm_trainer_val_loss(const slm_trainer *t) { return t->last_val; }
float slm_trainer_val_bpb(const slm_trainer *t) { return t->last_bpb; }

/* Validation over windows [0, max_windows) with the given workspace (B*T tokens at least). */
static slm_status evaluate_with(const slm_model *m, const slm_tokenizer *tok, const slm_token_data *d,
                                slm_ctx *ctx, slm_kv_cache *kv, int B, int T, size_t max_windows,
                                int32_t *inputs, int32_t *targets, int32_t *pos, int32_t *seq,
                                double *loss, double *bpb, slm_err *err) {
    size_t nw = slm_token_data_val_windows(d, T);
    if (max_windows && max_windows < nw) nw = max_windows;
    if (nw == 0) return slm_err_set(err, SLM_ERR_ARG, "there is no validation text to evaluate on");
    double nats = 0, bytes = 0;
    size_t counted_all = 0;
    for (size_t w0 = 0; w0 < nw; w0 += (size_t)B) {
        int nb = (int)((nw - w0) < (size_t)B ? (nw - w0) : (size_t)B);
        for (int b = 0; b < nb; b++) {
            slm_token_data_val_window(d, w0 + (size_t)b, T, inputs + (size_t)b * T, targets + (size_t)b * T);
            for (int i = 0; i < T; i++) {
                pos[(size_t)b * T + i] = i;
                seq[(size_t)b * T + i] = b;
                int32_t tg = targets[(size_t)b * T + i];
                if (tg >= 0) {
                    size_t len = 0;
                    slm_tokenizer_token_bytes(tok, tg, &len);
                    bytes += (double)len;
                }
            }
        }
        slm_batch batch = {.n_tokens = nb * T, .token = inputs, .pos = pos, .seq = seq, .output = NULL};
        slm_status s = slm_model_forward(m, ctx, kv, &batch, err);
        if (s != SLM_OK) return slm_err_prefix(err, "validation");
        int counted = 0;
        float mean = slm_model_loss(ctx, targets, 1.0f, &counted);
        nats += (double)mean * counted;
        counted_all += (size_t)counted;
    }
    *loss = counted_all ? nats / (double)counted_all : NAN;
    *bpb = bytes > 0 ? nats / log(2.0) / bytes : NAN;
    return SLM_OK;
}

slm_status slm_evaluate_text(const slm_model *m, const slm_tokenizer *tok, const slm_token_data *data,
                             int B, int T, size_t max_windows, slm_pool *pool, double *loss,
                             double *bpb, slm_err *err) {
    if (B < 1 || T < 2 || T > m->cfg.ctx_len)
        return slm_err_set(err, SLM_ERR_ARG, "evaluation needs B >= 1 and 2 <= T <= %d (got %d, %d)",
                           m->cfg.ctx_len, B, T);
    size_t bt = (size_t)B * (size_t)T;
    slm_status s = SLM_OK;
    int32_t *buf = malloc(4 * bt * sizeof(int32_t));
    slm_ctx *ctx = slm_ctx_new(&m->cfg, (int)bt, 0, pool, err);
    slm_kv_cache *kv = slm_kv_cache_new(&m->cfg, B, T, err);
    if (!buf) s = slm_err_set(err, SLM_ERR_NOMEM, "evaluation: out of memory");
    else if (!ctx || !kv) s = err ? err->code : SLM_ERR_NOMEM;
    else
        s = evaluate_with(m, tok, data, ctx, kv, B, T, max_windows, buf, buf + bt, buf + 2 * bt,
                          buf + 3 * bt, loss, bpb, err);
    slm_ctx_free(ctx);
    slm_kv_cache_free(kv);
    free(buf);
    return s;
}

static void write_log(slm_trainer *t, const slm_train_progress *p) {
    if (!t->log) return;
    fprintf(t->log, "{\"step\":%d,\"loss\":%.6f", p->step, p->loss);
    if (!isnan(p->val_loss)) fprintf(t->log, ",\"val_loss\":%.6f,\"val_bpb\":%.6f", p->val_loss, p->val_bpb);
    fprintf(t->log, ",\"lr\":%.6g,\"grad_norm\":%.6g,\"tokens_per_s\":%.1f}\n", p->lr, p->grad_norm,
            p->tokens_per_s);
    fflush(t->log);
}

/* Validates, tracks the best parameters, and says whether patience ran out. */
static slm_status validate(slm_trainer *t, slm_train_progress *p, slm_err *err) {
    double loss, bpb;
    const slm_train_opts *o = &t->o;
    slm_status s = evaluate_with(t->m, t->tok, t->data, t->ctx, t->kv, o->batch, o->seq_len,
                                 (size_t)o->eval_windows, t->inputs, t->targets, t->pos, t->seq,
                                 &loss, &bpb, err);
    if (s != SLM_OK) return s;
    t->last_val = p->val_loss = (float)loss;
    t->last_bpb = p->val_bpb = (float)bpb;
    if (o->patience > 0) {
        if (p->val_loss < t->best_val) {
            t->best_val = p->val_loss;
            t->best_bpb = p->val_bpb;
            t->bad_evals = 0;
            if (!t->best) t->best = malloc(t->m->n_params * sizeof(float));
            if (!t->best) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory keeping the best parameters");
            memcpy(t->best, t->m->params, t->m->n_params * sizeof(float));
            t->best_step = t->step;
        } else if (++t->bad_evals >= o->patience) {
            p->stopped_early = 1;
        }
    }
    return SLM_OK;
}

slm_status slm_trainer_run(slm_trainer *t, slm_err *err) { return slm_trainer_run_for(t, -1, err); }

slm_status slm_trainer_run_for(slm_trainer *t, int max_steps, slm_err *err) {
    const slm_train_opts *o = &t->o;
    const int B = o->batch, T = o->seq_len;
    const size_t n_params = t->m->n_params;
    slm_batch batch = {.n_tokens = B * T, .token = t->inputs, .pos = t->pos, .seq = t->seq, .output = NULL};
    double t0 = slm_time_now();
    int start_step = t->step;
    slm_status s = SLM_OK;
    while (t->step < o->steps) {
        if (max_steps >= 0 && t->step - start_step >= max_steps) return SLM_OK;
        memset(t->grads, 0, n_params * sizeof(float));
        double loss_sum = 0;
        for (int micro = 0; micro < o->accum; micro++) {
            slm_token_data_train_batch(t->data, o->seed, t->step, micro, B, T, t->inputs, t->targets);
            s = slm_model_forward(t->m, t->ctx, t->kv, &batch, err);
            if (s != SLM_OK) return slm_err_prefix(err, "step %d: forward", t->step + 1);
            int counted = 0;
            loss_sum += slm_model_loss(t->ctx, t->targets, 1.0f / (float)o->accum, &counted);
            s = slm_model_backward(t->m, t->ctx, t->kv, &batch, t->grads, err);
            if (s != SLM_OK) return slm_err_prefix(err, "step %d: backward", t->step + 1);
        }
        slm_train_progress p = {.steps = o->steps, .val_loss = NAN, .val_bpb = NAN};
        p.loss = (float)(loss_sum / o->accum);
        if (!isfinite(p.loss))
            return slm_err_set(err, SLM_ERR_RANGE, "step %d: the loss is %g; lower the learning rate (%g)",
                               t->step + 1, p.loss, o->lr);
        p.grad_norm = slm_grad_clip(t->grads, n_params, o->grad_clip);
        p.lr = slm_lr_schedule(t->step, o->warmup, o->steps, o->lr, o->lr_min);
        slm_adamw_step_model(&t->m->cfg, t->m->params, t->grads, t->adam_m, t->adam_v, p.lr, t->step + 1,
                             &t->o.adam);
        t->step++;
        t->tokens_seen += (uint64_t)B * T * o->accum;
        p.step = t->step;
        p.elapsed_s = slm_time_now() - t0;
        int done = t->step - start_step;
        p.tokens_per_s = (double)done * B * T * o->accum / (p.elapsed_s > 0 ? p.elapsed_s : 1e-9);
        p.eta_s = p.elapsed_s / done * (o->steps - t->step);
        if ((o->eval_every > 0 && t->step % o->eval_every == 0) || t->step == o->steps) {
            s = validate(t, &p, err);
            if (s != SLM_OK) return s;
        }
        write_log(t, &p);
        if (t->cb) t->cb(t->cb_ctx, &p);
        int last = t->step == o->steps || p.stopped_early;
        if (t->ckpt_path && ((t->ckpt_every > 0 && t->step % t->ckpt_every == 0) || last)) {
            s = slm_trainer_save_checkpoint(t, t->ckpt_path, err);
            if (s != SLM_OK) return s;
        }
        if (p.stopped_early) break;
    }
    /* With early stopping on, the model handed back is the best one validated, and the
     * validation figures reported (and written into the model file) are its own. */
    if (o->patience > 0 && t->best) {
        memcpy(t->m->params, t->best, n_params * sizeof(float));
        t->last_val = t->best_val;
        t->last_bpb = t->best_bpb;
    }
    return SLM_OK;
}
