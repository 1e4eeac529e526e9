/* checkpoint.c: a training checkpoint is a GGUF model file (llama.* keys, tensors, tokenizer)
 * plus the training state: slm.ckpt.* keys (step, options, early-stopping state, a fingerprint
 * of the data) and the Adam moments (and best parameters, with early stopping) as 1-D F32
 * tensors. One format for models and checkpoints; a checkpoint opens in `slm info` and
 * `slm generate` like any model. Written atomically, so a crash mid-write keeps the last one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer_internal.h"

#define CKPT_M "slm.ckpt.adam_m"
#define CKPT_V "slm.ckpt.adam_v"
#define CKPT_BEST "slm.ckpt.best"

slm_status slm_trainer_add_metadata(const slm_trainer *t, slm_gguf_writer *w) {
    slm_status s = SLM_OK;
    if (!s) s = slm_gguf_set_u32(w, "slm.train.steps", (uint32_t)t->step);
    if (!s) s = slm_gguf_set_u64(w, "slm.train.tokens", t->tokens_seen);
    if (!s) s = slm_gguf_set_u64(w, "slm.train.seed", t->o.seed);
    if (!s) s = slm_gguf_set_u32(w, "slm.train.batch", (uint32_t)t->o.batch);
    if (!s) s = slm_gguf_set_u32(w, "slm.train.seq_len", (uint32_t)t->o.seq_len);
    if (!s && !isnan(t->last_val)) s = slm_gguf_set_f32(w, "slm.train.val_loss", t->last_val);
    if (!s && !isnan(t->last_bpb)) s = slm_gguf_set_f32(w, "slm.train.val_bpb", t->last_bpb);
    return s;
}

slm_status slm_trainer_save_checkpoint(const slm_trainer *t, const char *path, slm_err *err) {
    const slm_train_opts *o = &t->o;
    slm_gguf_writer *w = slm_gguf_writer_new();
    if (!w) return slm_err_set(err, SLM_ERR_NOMEM, "checkpoint: out of memory");
    slm_status s = slm_model_save(t->m, w, err);
    if (!s) s = slm_tokenizer_save(t->tok, w, err);
    if (s) goto done;
    s = slm_trainer_add_metadata(t, w);
    char fp[32];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)t->data->fingerprint);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.step", (uint32_t)t->step);
    if (!s) s = slm_gguf_set_u64(w, "slm.ckpt.tokens", t->tokens_seen);
    if (!s) s = slm_gguf_set_str(w, "slm.ckpt.data_fingerprint", fp);
    if (!s) s = slm_gguf_set_u64(w, "slm.ckpt.seed", o->seed);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.steps", (uint32_t)o->steps);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.batch", (uint32_t)o->batch);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.seq_len", (uint32_t)o->seq_len);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.accum", (uint32_t)o->accum);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.lr", o->lr);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.lr_min", o->lr_min);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.warmup", (uint32_t)o->warmup);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.beta1", o->adam.beta1);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.beta2", o->adam.beta2);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.eps", o->adam.eps);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.weight_decay", o->adam.weight_decay);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.grad_clip", o->grad_clip);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.eval_every", (uint32_t)o->eval_every);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.eval_windows", (uint32_t)o->eval_windows);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.patience", (uint32_t)o->patience);
    if (!s) s = slm_gguf_set_f32(w, "slm.ckpt.best_val", t->best_val);
    if (!s && !isnan(t->best_bpb)) s = slm_gguf_set_f32(w, "slm.ckpt.best_bpb", t->best_bpb);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.best_step", (uint32_t)t->best_step);
    if (!s) s = slm_gguf_set_u32(w, "slm.ckpt.bad_evals", (uint32_t)t->bad_evals);
    if (!s && !isnan(t->last_val)) s = slm_gguf_set_f32(w, "slm.ckpt.last_val", t->last_val);
    if (!s && !isnan(t->last_bpb)) s = slm_gguf_set_f32(w, "slm.ckpt.last_bpb", t->last_bpb);
    if (s) { /* the setters fail only for memory */
        slm_err_set(err, s, "out of memory");
        goto done;
    }
    uint64_t ne = t->m->n_params;
    s = slm_gguf_add_tensor(w, CKPT_M, SLM_GGML_F32, 1, &ne, t->adam_m, err);
    if (!s) s = slm_gguf_add_tensor(w, CKPT_V, SLM_GGML_F32, 1, &ne, t->adam_v, err);
    if (!s && t->best) s = slm_gguf_add_tensor(w, CKPT_BEST, SLM_GGML_F32, 1, &ne, t->best, err);
    if (!s) s = slm_gguf_writer_write(w, path, err);
done:
    slm_gguf_writer_free(w);
    if (s) slm_err_prefix(err, "writing checkpoint %s", path);
    return s;
}

slm_status slm_train_opts_from_checkpoint(const slm_gguf *g, slm_train_opts *o, slm_err *err) {
    slm_status s;
    uint32_t u;
    int64_t i64;
#define GET_U32(key, field)                                                   \
    do {                                                                      \
        if ((s = slm_gguf_get_u32(g, key, &u, err)) != SLM_OK) return s;      \
        field = (int)u;                                                       \
    } while (0)
#define GET_F32(key, field)                                                   \
    do {                                                                      \
        if ((s = slm_gguf_get_f32(g, key, &field, err)) != SLM_OK) return s;  \
    } while (0)
    GET_U32("slm.ckpt.steps", o->steps);
    GET_U32("slm.ckpt.batch", o->batch);
    GET_U32("slm.ckpt.seq_len", o->seq_len);
    GET_U32("slm.ckpt.accum", o->accum);
    GET_U32("slm.ckpt.warmup", o->warmup);
    GET_U32("slm.ckpt.eval_every", o->eval_every);
    GET_U32("slm.ckpt.eval_windows", o->eval_windows);
    GET_U32("slm.ckpt.patience", o->patience);
    GET_F32("slm.ckpt.lr", o->lr);
    GET_F32("slm.ckpt.lr_min", o->lr_min);
    GET_F32("slm.ckpt.beta1", o->adam.beta1);
    GET_F32("slm.ckpt.beta2", o->adam.beta2);
    GET_F32("slm.ckpt.eps", o->adam.eps);
    GET_F32("slm.ckpt.weight_decay", o->adam.weight_decay);
    GET_F32("slm.ckpt.grad_clip", o->grad_clip);
#undef GET_U32
#undef GET_F32
    if ((s = slm_gguf_get_i64(g, "slm.ckpt.seed", &i64, err)) != SLM_OK) return s;
    o->seed = (uint64_t)i64;
    return slm_train_opts_check(o, err);
}

/* Copies a 1-D F32 tensor of n floats into dst. */
static slm_status read_vector(const slm_gguf *g, const char *name, float *dst, size_t n, slm_err *err) {
    const slm_gguf_tensor *tt = slm_gguf_find_tensor(g, name);
    if (!tt) return slm_err_set(err, SLM_ERR_FORMAT, "%s: missing tensor '%s' (not a checkpoint?)",
                                slm_gguf_name(g), name);
    if (tt->type != SLM_GGML_F32 || tt->n_dims != 1 || tt->ne[0] != n)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: tensor '%s' is not %zu F32 values",
                           slm_gguf_name(g), name, n);
    memcpy(dst, tt->data, n * sizeof(float));
    return SLM_OK;
}

slm_status slm_trainer_resume(slm_trainer *t, const slm_gguf *g, slm_err *err) {
    slm_model_config cfg;
    slm_status s = slm_model_config_from_gguf(g, &cfg, err);
    if (s) return s;
    const slm_model_config *mc = &t->m->cfg;
    if (cfg.n_vocab != mc->n_vocab || cfg.dim != mc->dim || cfg.n_layers != mc->n_layers ||
        cfg.n_heads != mc->n_heads || cfg.n_kv_heads != mc->n_kv_heads ||
        cfg.hidden_dim != mc->hidden_dim || cfg.tied_output != mc->tied_output)
        return slm_err_set(err, SLM_ERR_ARG, "%s: the checkpoint's model shape differs from this model's",
                           slm_gguf_name(g));
    slm_model *loaded = slm_model_load(g, err);
    if (!loaded) return err ? err->code : SLM_ERR_FORMAT;
    memcpy(t->m->params, loaded->params, t->m->n_params * sizeof(float));
    slm_model_free(loaded);

    slm_gguf_str fp;
    s = slm_gguf_get_str(g, "slm.ckpt.data_fingerprint", &fp, err);
    if (s) return s;
    char want[32];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)t->data->fingerprint);
    if (!slm_gguf_str_eq(fp, want))
        return slm_err_set(err, SLM_ERR_ARG, "%s: the training data (or tokenizer or validation share) "
                           "differ from the run that wrote this checkpoint", slm_gguf_name(g));

    slm_train_opts o = t->o;
    if ((s = slm_train_opts_from_checkpoint(g, &o, err)) != SLM_OK) return s;
    if (o.batch != t->o.batch || o.seq_len != t->o.seq_len)
        return slm_err_set(err, SLM_ERR_ARG, "%s: the checkpoint trains batch %d x %d tokens; this trainer "
                           "was made for %d x %d", slm_gguf_name(g), o.batch, o.seq_len, t->o.batch, t->o.seq_len);
    t->o = o;
    uint32_t u;
    int64_t i64;
    if ((s = slm_gguf_get_u32(g, "slm.ckpt.step", &u, err)) != SLM_OK) return s;
    t->step = (int)u;
    if ((s = slm_gguf_get_u32(g, "slm.ckpt.best_step", &u, err)) != SLM_OK) return s;
    t->best_step = (int)u;
    if ((s = slm_gguf_get_u32(g, "slm.ckpt.bad_evals", &u, err)) != SLM_OK) return s;
    t->bad_evals = (int)u;
    if ((s = slm_gguf_get_f32(g, "slm.ckpt.best_val", &t->best_val, err)) != SLM_OK) return s;
    t->best_bpb = NAN;
    if ((s = slm_gguf_opt_f32(g, "slm.ckpt.best_bpb", &t->best_bpb, err)) != SLM_OK) return s;
    if ((s = slm_gguf_get_i64(g, "slm.ckpt.tokens", &i64, err)) != SLM_OK) return s;
    t->tokens_seen = (uint64_t)i64;
    t->last_val = NAN;
    t->last_bpb = NAN;
    if ((s = slm_gguf_opt_f32(g, "slm.ckpt.last_val", &t->last_val, err)) != SLM_OK) return s;
    if ((s = slm_gguf_opt_f32(g, "slm.ckpt.last_bpb", &t->last_bpb, err)) != SLM_OK) return s;

    size_t n = t->m->n_params;
    if ((s = read_vector(g, CKPT_M, t->adam_m, n, err)) != SLM_OK) return s;
    if ((s = read_vector(g, CKPT_V, t->adam_v, n, err)) != SLM_OK) return s;
    if (slm_gguf_find_tensor(g, CKPT_BEST)) {
        if (!t->best) t->best = malloc(n * sizeof(float));
        if (!t->best) return slm_err_set(err, SLM_ERR_NOMEM, "resume: out of memory");
        if ((s = read_vector(g, CKPT_BEST, t->best, n, err)) != SLM_OK) return s;
    }
    return SLM_OK;
}
