/* finetune_ckpt.c: classify model files and checkpoints of the fine-tuner.
 *
 * A checkpoint is a classify model file (it loads in slm classify like any model; its head is
 * the current slot 0) plus slm.ckpt.* keys (step, options, pooling choice, early-stopping state,
 * data fingerprint) and the state as 1-D F32 tensors: Adam moments of body and heads, both head
 * slots, and the best validated body and head. Written atomically.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task/classify_head.h"
#include "task/classify_model.h"
#include "task/finetune_internal.h"

slm_status slm_finetune_add_metadata(const slm_finetune *t, slm_gguf_writer *w) {
    slm_status s = SLM_OK;
    if (!s) s = slm_gguf_set_u32(w, "slm.train.steps", (uint32_t)t->step);
    if (!s) s = slm_gguf_set_f32(w, "slm.train.epochs", (float)((double)t->step * t->o.batch * t->o.accum / t->d->train.n));
    if (!s) s = slm_gguf_set_u32(w, "slm.train.examples", (uint32_t)t->d->train.n);
    if (!s) s = slm_gguf_set_u64(w, "slm.train.seed", t->o.seed);
    if (!s) s = slm_gguf_set_u32(w, "slm.train.batch", (uint32_t)(t->o.batch * t->o.accum));
    float acc = slm_finetune_val_acc(t), loss = slm_finetune_val_loss(t);
    if (!s && t->refit) s = slm_gguf_set_bool(w, "slm.train.refit", true);
    if (!s && !isnan(acc)) s = slm_gguf_set_f32(w, "slm.train.val_accuracy", acc);
    if (!s && !isnan(loss)) s = slm_gguf_set_f32(w, "slm.train.val_loss", loss);
    if (!s) s = slm_gguf_set_str(w, "slm.train.pooling_mode", t->o.pooling == SLM_POOL_AUTO ? "auto" : "fixed");
    if (!s && !isnan(t->acc_sel[0])) s = slm_gguf_set_f32(w, "slm.train.pooling_val_accuracy_last", t->acc_sel[0]);
    if (!s && !isnan(t->acc_sel[1])) s = slm_gguf_set_f32(w, "slm.train.pooling_val_accuracy_mean", t->acc_sel[1]);
    return s;
}

/* The model file's content (body, tokenizer, head slot 0, facts) on w. */
static slm_status add_model(const slm_finetune *t, slm_gguf_writer *w, slm_err *err) {
    slm_status s = slm_classify_model_add(w, t->m, t->tok, t->head, t->head + (size_t)t->K * t->D,
                                          t->d->labels, t->K, t->head_pool[0], t->T, t->d->template_text, err);
    if (!s && slm_finetune_add_metadata(t, w) != SLM_OK) s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    return s;
}

slm_status slm_finetune_save(const slm_finetune *t, const char *path, slm_err *err) {
    slm_gguf_writer *w = slm_gguf_writer_new();
    if (!w) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    slm_status s = add_model(t, w, err);
    if (!s && t->ngram) s = slm_classify_ngram_add(w, t->ngram, t->mix, err);
    if (!s) s = slm_gguf_writer_write(w, path, err);
    slm_gguf_writer_free(w);
    if (s) slm_err_prefix(err, "writing %s", path);
    return s;
}

slm_status slm_finetune_save_adapter(const slm_finetune *t, const char *path, slm_err *err) {
    if (!t->lora) return slm_err_set(err, SLM_ERR_ARG, "save adapter: not a LoRA run");
    slm_gguf_writer *w = slm_gguf_writer_new();
    if (!w) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    slm_status s = slm_lora_save_add(w, t->lora, err);
    if (!s && slm_gguf_set_str(w, "general.name", "slm-classify-lora") != SLM_OK)
        s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    if (!s) s = slm_classify_task_add(w, t->D, t->head, t->head + (size_t)t->K * t->D, t->d->labels, t->K,
                                      t->head_pool[0], t->T, t->d->template_text, err);
    if (!s && slm_finetune_add_metadata(t, w) != SLM_OK) s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    if (!s) s = slm_gguf_writer_write(w, path, err);
    slm_gguf_writer_free(w);
    if (s) slm_err_prefix(err, "writing %s", path);
    return s;
}

/* The options, as (key, int field) and (key, float field) tables. */
#define OPT_INTS(X)                                                                     \
    X("slm.ckpt.steps", steps) X("slm.ckpt.batch", batch) X("slm.ckpt.accum", accum)    \
    X("slm.ckpt.max_len", max_len) X("slm.ckpt.warmup", warmup)                         \
    X("slm.ckpt.pooling", pooling) X("slm.ckpt.eval_every", eval_every)                 \
    X("slm.ckpt.patience", patience)
#define OPT_FLOATS(X)                                                                   \
    X("slm.ckpt.epochs", epochs) X("slm.ckpt.lr", lr) X("slm.ckpt.lr_min", lr_min)      \
    X("slm.ckpt.beta1", adam.beta1) X("slm.ckpt.beta2", adam.beta2)                     \
    X("slm.ckpt.eps", adam.eps) X("slm.ckpt.weight_decay", adam.weight_decay)           \
    X("slm.ckpt.grad_clip", grad_clip) X("slm.ckpt.label_smoothing", label_smoothing)   \
    X("slm.ckpt.token_dropout", token_dropout) X("slm.ckpt.dropout", dropout)           \
    X("slm.ckpt.rdrop", rdrop) X("slm.ckpt.select_frac", select_frac)

slm_status slm_finetune_save_checkpoint(const slm_finetune *t, const char *path, slm_err *err) {
    const slm_finetune_opts *o = &t->o;
    slm_gguf_writer *w = slm_gguf_writer_new();
    if (!w) return slm_err_set(err, SLM_ERR_NOMEM, "checkpoint: out of memory");
    slm_status s = add_model(t, w, err);
    if (s) goto done;
    char fp[32];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)t->d->fingerprint);
#define SET_INT(key, f) if (!s) s = slm_gguf_set_i32(w, key, (int32_t)o->f);
#define SET_FLOAT(key, f) if (!s) s = slm_gguf_set_f32(w, key, o->f);
    OPT_INTS(SET_INT)
    OPT_FLOATS(SET_FLOAT)
#undef SET_INT
#undef SET_FLOAT
    if (!s) s = slm_gguf_set_u64(w, "slm.ckpt.seed", o->seed);
    if (!s) s = slm_gguf_set_str(w, "slm.ckpt.data_fingerprint", fp);
    if (!s) s = slm_gguf_set_i32(w, "slm.ckpt.step", t->step);
    if (!s) s = slm_gguf_set_i32(w, "slm.ckpt.n_heads", t->n_heads);
    if (!s) s = slm_gguf_set_i32(w, "slm.ckpt.head_pool0", t->head_pool[0]);
    if (!s) s = slm_gguf_set_i32(w, "slm.ckpt.head_pool1", t->head_pool[1]);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.best_acc", t->best_acc);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.best_loss", t->best_loss);
    if (!s) s = slm_gguf_set_i32(w, "slm.ckpt.best_step", t->best_step);
    if (!s) s = slm_gguf_set_i32(w, "slm.ckpt.bad_evals", t->bad_evals);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.last_acc", t->last_acc);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.last_loss", t->last_loss);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.acc_sel0", t->acc_sel[0]);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.acc_sel1", t->acc_sel[1]);
    if (s) {
        slm_err_set(err, s, "out of memory");
        goto done;
    }
    uint64_t np = t->m->n_params, nh = 2 * t->hs, hs = t->hs;
    s = slm_gguf_add_tensor(w, "slm.ckpt.adam_m", SLM_GGML_F32, 1, &np, t->adam_m, err);
    if (!s) s = slm_gguf_add_tensor(w, "slm.ckpt.adam_v", SLM_GGML_F32, 1, &np, t->adam_v, err);
    if (!s) s = slm_gguf_add_tensor(w, "slm.ckpt.heads", SLM_GGML_F32, 1, &nh, t->head, err);
    if (!s) s = slm_gguf_add_tensor(w, "slm.ckpt.heads_m", SLM_GGML_F32, 1, &nh, t->head_m, err);
    if (!s) s = slm_gguf_add_tensor(w, "slm.ckpt.heads_v", SLM_GGML_F32, 1, &nh, t->head_v, err);
    if (!s && t->best) s = slm_gguf_add_tensor(w, "slm.ckpt.best", SLM_GGML_F32, 1, &np, t->best, err);
    if (!s && t->best_head) s = slm_gguf_add_tensor(w, "slm.ckpt.best_head", SLM_GGML_F32, 1, &hs, t->best_head, err);
    if (!s) s = slm_gguf_writer_write(w, path, err);
done:
    slm_gguf_writer_free(w);
    if (s) slm_err_prefix(err, "writing checkpoint %s", path);
    return s;
}

static slm_status get_int(const slm_gguf *g, const char *key, int *out, slm_err *err) {
    int64_t v;
    slm_status s = slm_gguf_get_i64(g, key, &v, err);
    if (s) return s;
    *out = (int)v;
    return SLM_OK;
}

slm_status slm_finetune_opts_from_checkpoint(const slm_gguf *g, slm_finetune_opts *o, slm_err *err) {
    slm_status s = SLM_OK;
#define GET_INT(key, f) if (!s) s = get_int(g, key, &o->f, err);
#define GET_FLOAT(key, f) if (!s) s = slm_gguf_get_f32(g, key, &o->f, err);
    OPT_INTS(GET_INT)
    OPT_FLOATS(GET_FLOAT)
#undef GET_INT
#undef GET_FLOAT
    int64_t seed;
    if (!s) s = slm_gguf_get_i64(g, "slm.ckpt.seed", &seed, err);
    if (s) return slm_err_prefix(err, "%s: not a fine-tuning checkpoint", slm_gguf_name(g));
    o->seed = (uint64_t)seed;
    return slm_finetune_opts_check(o, err);
}

static slm_status read_vector(const slm_gguf *g, const char *name, float *dst, size_t n, slm_err *err) {
    const slm_gguf_tensor *tt = slm_gguf_find_tensor(g, name);
    if (!tt) return slm_err_set(err, SLM_ERR_FORMAT, "%s: missing tensor '%s' (not a checkpoint?)", slm_gguf_name(g), name);
    if (tt->type != SLM_GGML_F32 || tt->n_dims != 1 || tt->ne[0] != n)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: tensor '%s' is not %zu F32 values", slm_gguf_name(g), name, n);
    memcpy(dst, tt->data, n * sizeof(float));
    return SLM_OK;
}

slm_status slm_finetune_resume(slm_finetune *t, const slm_gguf *g, slm_err *err) {
    slm_finetune_opts o = t->o;
    slm_status s = slm_finetune_opts_from_checkpoint(g, &o, err);
    if (s) return s;
    if (memcmp(&o, &t->o, sizeof o) != 0)
        return slm_err_set(err, SLM_ERR_ARG, "%s: the checkpoint was trained with other options; build the "
                           "trainer with slm_finetune_opts_from_checkpoint", slm_gguf_name(g));
    slm_gguf_str fp;
    if ((s = slm_gguf_get_str(g, "slm.ckpt.data_fingerprint", &fp, err)) != SLM_OK) return s;
    char want[32];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)t->d->fingerprint);
    if (!slm_gguf_str_eq(fp, want))
        return slm_err_set(err, SLM_ERR_ARG, "%s: the data (or labels, tokenizer, max_len) differ from the run "
                           "that wrote this checkpoint", slm_gguf_name(g));
    slm_model *loaded = slm_model_load(g, err);
    if (!loaded) return err ? err->code : SLM_ERR_FORMAT;
    int same = loaded->n_params == t->m->n_params && !memcmp(&loaded->cfg, &t->m->cfg, sizeof loaded->cfg);
    if (same) memcpy(t->m->params, loaded->params, t->m->n_params * sizeof(float));
    slm_model_free(loaded);
    if (!same) return slm_err_set(err, SLM_ERR_ARG, "%s: the checkpoint's model shape differs from this model's", slm_gguf_name(g));
    int step, nh, p0, p1, best_step, bad;
    if ((s = get_int(g, "slm.ckpt.step", &step, err)) || (s = get_int(g, "slm.ckpt.n_heads", &nh, err)) ||
        (s = get_int(g, "slm.ckpt.head_pool0", &p0, err)) || (s = get_int(g, "slm.ckpt.head_pool1", &p1, err)) ||
        (s = get_int(g, "slm.ckpt.best_step", &best_step, err)) || (s = get_int(g, "slm.ckpt.bad_evals", &bad, err)))
        return s;
    if (nh < 1 || nh > 2 || step < 0 || step > t->steps)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: slm.ckpt.step/n_heads out of range", slm_gguf_name(g));
    float best_acc, best_loss, last_acc, last_loss, a0, a1;
    if ((s = slm_gguf_get_f32(g, "slm.ckpt.best_acc", &best_acc, err)) ||
        (s = slm_gguf_get_f32(g, "slm.ckpt.best_loss", &best_loss, err)) ||
        (s = slm_gguf_get_f32(g, "slm.ckpt.last_acc", &last_acc, err)) ||
        (s = slm_gguf_get_f32(g, "slm.ckpt.last_loss", &last_loss, err)) ||
        (s = slm_gguf_get_f32(g, "slm.ckpt.acc_sel0", &a0, err)) ||
        (s = slm_gguf_get_f32(g, "slm.ckpt.acc_sel1", &a1, err)))
        return s;
    size_t np = t->m->n_params, nhs = 2 * t->hs;
    if ((s = read_vector(g, "slm.ckpt.adam_m", t->adam_m, np, err)) ||
        (s = read_vector(g, "slm.ckpt.adam_v", t->adam_v, np, err)) ||
        (s = read_vector(g, "slm.ckpt.heads", t->head, nhs, err)) ||
        (s = read_vector(g, "slm.ckpt.heads_m", t->head_m, nhs, err)) ||
        (s = read_vector(g, "slm.ckpt.heads_v", t->head_v, nhs, err)))
        return s;
    if (slm_gguf_find_tensor(g, "slm.ckpt.best")) {
        if (!t->best) t->best = malloc(np * sizeof(float));
        if (!t->best_head) t->best_head = malloc(t->hs * sizeof(float));
        if (!t->best || !t->best_head) return slm_err_set(err, SLM_ERR_NOMEM, "resume: out of memory");
        if ((s = read_vector(g, "slm.ckpt.best", t->best, np, err)) ||
            (s = read_vector(g, "slm.ckpt.best_head", t->best_head, t->hs, err)))
            return s;
    }
    t->step = step;
    t->n_heads = nh;
    t->head_pool[0] = p0;
    t->head_pool[1] = p1;
    t->best_step = best_step;
    t->bad_evals = bad;
    t->best_acc = best_acc;
    t->best_loss = best_loss;
    t->last_acc = last_acc;
    t->last_loss = last_loss;
    t->acc_sel[0] = a0;
    t->acc_sel[1] = a1;
    return SLM_OK;
}
