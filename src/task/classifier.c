/* classifier.c: a classify task model for inference (classifier.h) and the writer of its file
 * (classify_model.h).
 *
 * The body is loaded mapped (any block type, read where it lies), so a quantized file works the
 * same; the head is small and copied to F32 (whatever type a quantizer gave it). Texts go through
 * the one batched forward pass as separate sequences (seq = text index within the pass, pos =
 * 0..len-1: no padding) asking for no logits; the head reads the final hidden states.
 */
#include "task/classifier.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/forward.h"
#include "quant/quant.h"
#include "task/classify_head.h"
#include "task/classify_mix.h"
#include "task/classify_model.h"
#include "task/lora.h"
#include "task/task_data.h"
#include "tokenizer/tokenizer.h"

/* Texts per forward pass: enough to keep the matrix products efficient, small enough that the
 * KV cache (one slot per text) stays a few tens of MB for the `small` shape. */
#define CLS_MAX_BATCH 32

struct slm_classifier {
    slm_gguf *g;
    slm_gguf *ga;              /* the LoRA adapter (task keys and head), or NULL */
    slm_model *m;              /* mapped body */
    slm_tokenizer *tok;
    int K, D, pooling, max_tokens;
    char **labels;             /* (K) */
    float *W, *b;              /* (K, D), (K) */
    slm_ctx *ctx;              /* CLS_MAX_BATCH * max_tokens tokens */
    slm_kv_cache *kv;          /* CLS_MAX_BATCH slots of max_tokens */
    int32_t *tokens, *pos, *seq, *start, *len; /* (N) (N) (N) (B) (B) */
    int8_t *out;               /* (N) zeros: no logits */
    float *pooled, *logits;    /* (B, D), (B, K) */
    char *tmpl;                /* slm.template (task_data.h), or NULL: text + EOS */
    slm_ngram *ngram;          /* the sparse n-gram part, or NULL */
    slm_cls_mix mix;           /* and the weights of the two parts' logits */
};

slm_status slm_classify_task_add(slm_gguf_writer *w, int D, const float *W, const float *b,
                                 char *const *labels, int K, int pooling, int max_tokens,
                                 const char *template_text, slm_err *err) {
    slm_status s = slm_gguf_set_str(w, "slm.task", "classify");
    if (!s && template_text) s = slm_gguf_set_str(w, "slm.template", template_text);
    if (!s) s = slm_gguf_set_arr_str(w, "slm.labels", (const char *const *)labels, NULL, (size_t)K);
    if (!s) s = slm_gguf_set_str(w, "slm.pooling", slm_pooling_name(pooling));
    if (!s) s = slm_gguf_set_u32(w, "slm.max_tokens", (uint32_t)max_tokens);
    if (s) return slm_err_set(err, s, "classify model: out of memory");
    uint64_t ne[2] = {(uint64_t)D, (uint64_t)K};
    s = slm_gguf_add_tensor(w, "cls.weight", SLM_GGML_F32, 2, ne, W, err);
    if (!s) s = slm_gguf_add_tensor(w, "cls.bias", SLM_GGML_F32, 1, &ne[1], b, err);
    return s;
}

slm_status slm_classify_ngram_add(slm_gguf_writer *w, const slm_ngram *ng, slm_cls_mix mix, slm_err *err) {
    slm_status s = slm_gguf_set_f32(w, "slm.mix.head", mix.w_head);
    if (!s) s = slm_gguf_set_f32(w, "slm.mix.ngram", mix.w_ngram);
    if (s) return slm_err_set(err, s, "classify model: out of memory");
    return slm_ngram_add(w, ng, err);
}

slm_status slm_classify_ngram_read(const slm_gguf *g, int K, slm_ngram **ng, slm_cls_mix *mix, slm_err *err) {
    slm_status s = slm_ngram_read(g, K, ng, err);
    if (s || !*ng) return s;
    if ((s = slm_gguf_get_f32(g, "slm.mix.head", &mix->w_head, err)) != SLM_OK ||
        (s = slm_gguf_get_f32(g, "slm.mix.ngram", &mix->w_ngram, err)) != SLM_OK) {
        slm_ngram_free(*ng);
        *ng = NULL;
        slm_err_prefix(err, "the n-gram part's weight");
    }
    return s;
}

slm_status slm_classify_template_read(const slm_gguf *g, char **out, slm_err *err) {
    *out = NULL;
    const slm_gguf_kv *kv = slm_gguf_find_kv(g, "slm.template");
    if (!kv) return SLM_OK;
    if (kv->type != SLM_GGUF_STRING)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: slm.template is not a string", slm_gguf_name(g));
    if (!(*out = strndup(kv->v.str.ptr, kv->v.str.len))) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    if (strlen(*out) != kv->v.str.len || slm_task_template_check(*out, err) != SLM_OK) {
        free(*out);
        *out = NULL;
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: slm.template must hold {text} exactly once", slm_gguf_name(g));
    }
    return SLM_OK;
}

slm_status slm_classify_model_add(slm_gguf_writer *w, const slm_model *m, const slm_tokenizer *tok,
                                  const float *W, const float *b, char *const *labels, int K,
                                  int pooling, int max_tokens, const char *template_text, slm_err *err) {
    slm_status s = slm_model_save(m, w, err);
    if (!s) s = slm_tokenizer_save(tok, w, err);
    if (s) return s;
    if (slm_gguf_set_str(w, "general.name", "slm-classify") != SLM_OK)
        return slm_err_set(err, SLM_ERR_NOMEM, "classify model: out of memory");
    return slm_classify_task_add(w, m->cfg.dim, W, b, labels, K, pooling, max_tokens, template_text, err);
}

/* A head tensor of n elements (any type with a dequantizer) as F32 into dst. */
static slm_status head_tensor(const slm_gguf *g, const char *name, uint64_t ne0, uint64_t ne1,
                              float *dst, slm_err *err) {
    const slm_gguf_tensor *t = slm_gguf_find_tensor(g, name);
    if (!t) return slm_err_set(err, SLM_ERR_FORMAT, "%s: classify model without tensor '%s'", slm_gguf_name(g), name);
    if (t->ne[0] != ne0 || slm_gguf_tensor_nelements(t) != ne0 * ne1)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: tensor '%s' is [%llu, %llu]; expected [%llu, %llu] "
                           "(dim, labels)", slm_gguf_name(g), name, (unsigned long long)t->ne[0],
                           (unsigned long long)(t->n_dims > 1 ? t->ne[1] : 1), (unsigned long long)ne0,
                           (unsigned long long)ne1);
    if (t->type == SLM_GGML_F32) {
        memcpy(dst, t->data, sizeof(float) * ne0 * ne1);
        return SLM_OK;
    }
    const slm_quant_traits *q = slm_quant_get(t->type);
    if (!q || !q->to_float)
        return slm_err_set(err, SLM_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which cannot be read",
                           slm_gguf_name(g), name, slm_ggml_type_name(t->type) ? slm_ggml_type_name(t->type) : "?");
    q->to_float(t->data, dst, (int64_t)(ne0 * ne1));
    return SLM_OK;
}

slm_status slm_classify_head_read(const slm_gguf *g, int K, int D, float *W, float *b, int *pooling,
                                  slm_err *err) {
    slm_gguf_str ps;
    slm_status s = slm_gguf_get_str(g, "slm.pooling", &ps, err);
    if (s) return s;
    *pooling = slm_gguf_str_eq(ps, "last") ? SLM_POOL_LAST : slm_gguf_str_eq(ps, "mean") ? SLM_POOL_MEAN : -1;
    if (*pooling < 0)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: slm.pooling is '%.*s' (known: last, mean)", slm_gguf_name(g),
                           (int)ps.len, ps.ptr);
    s = head_tensor(g, "cls.weight", (uint64_t)D, (uint64_t)K, W, err);
    if (!s) s = head_tensor(g, "cls.bias", (uint64_t)K, 1, b, err);
    return s;
}

static slm_classifier *load_impl(const char *path, const char *adapter, slm_pool *pool, slm_err *err);

slm_classifier *slm_classifier_load(const char *path, slm_pool *pool, slm_err *err) {
    return load_impl(path, NULL, pool, err);
}

slm_classifier *slm_classifier_load_lora(const char *base_path, const char *adapter_path, slm_pool *pool,
                                         slm_err *err) {
    return load_impl(base_path, adapter_path, pool, err);
}

/* The body of a base plus an adapter, merged in fp32. */
static slm_model *merged_body(const slm_gguf *base, const slm_gguf *ga, slm_err *err) {
    slm_model *m = slm_lora_body_load(base, err);
    if (!m) return NULL;
    slm_lora *l = slm_lora_load(ga, &m->cfg, err);
    if (!l) {
        slm_model_free(m);
        return NULL;
    }
    slm_lora_apply(l, m->params, m->params);
    slm_lora_free(l);
    return m;
}

static slm_classifier *load_impl(const char *path, const char *adapter, slm_pool *pool, slm_err *err) {
    slm_classifier *c = calloc(1, sizeof *c);
    if (!c) {
        slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    slm_status s = SLM_OK;
    c->g = slm_gguf_open(path, err);
    if (!c->g) goto fail;
    if (adapter && !(c->ga = slm_gguf_open(adapter, err))) goto fail;
    const slm_gguf *mg = adapter ? c->ga : c->g; /* where the task keys and head are */
    if (adapter) path = adapter;
    const slm_gguf_kv *task = slm_gguf_find_kv(mg, "slm.task");
    if (!task || task->type != SLM_GGUF_STRING) {
        slm_err_set(err, SLM_ERR_ARG, "%s: not a task model (no slm.task key): a language model? "
                    "Fine-tune one with `slm finetune --task classify --init %s`", path, path);
        goto fail;
    }
    if (!slm_gguf_str_eq(task->v.str, "classify")) {
        slm_err_set(err, SLM_ERR_ARG, "%s: a '%.*s' task model, not a classify one", path,
                    (int)task->v.str.len, task->v.str.ptr);
        goto fail;
    }
    const slm_gguf_kv *lk;
    if ((s = slm_gguf_get_arr(mg, "slm.labels", SLM_GGUF_STRING, &lk, err)) != SLM_OK) goto fail;
    if (lk->arr_n < 2 || lk->arr_n > (1u << 20)) {
        slm_err_set(err, SLM_ERR_FORMAT, "%s: slm.labels has %llu labels (need at least 2)", path,
                    (unsigned long long)lk->arr_n);
        goto fail;
    }
    c->K = (int)lk->arr_n;
    c->labels = calloc((size_t)c->K, sizeof(char *));
    if (!c->labels) goto nomem;
    for (int i = 0; i < c->K; i++)
        if (!(c->labels[i] = strndup(lk->arr_strs[i].ptr, lk->arr_strs[i].len))) goto nomem;
    slm_gguf_str ps;
    if ((s = slm_gguf_get_str(mg, "slm.pooling", &ps, err)) != SLM_OK) goto fail;
    c->pooling = slm_gguf_str_eq(ps, "last") ? SLM_POOL_LAST : slm_gguf_str_eq(ps, "mean") ? SLM_POOL_MEAN : -1;
    if (c->pooling < 0) {
        slm_err_set(err, SLM_ERR_FORMAT, "%s: slm.pooling is '%.*s' (known: last, mean)", path, (int)ps.len, ps.ptr);
        goto fail;
    }
    uint32_t mt;
    if ((s = slm_gguf_get_u32(mg, "slm.max_tokens", &mt, err)) != SLM_OK) goto fail;
    c->m = adapter ? merged_body(c->g, c->ga, err) : slm_model_load_mapped(c->g, err);
    if (!c->m) goto fail;
    if (mt < 3 || (int)mt > c->m->cfg.ctx_len) {
        slm_err_set(err, SLM_ERR_FORMAT, "%s: slm.max_tokens %u is outside [3, the context %d]", path, mt,
                    c->m->cfg.ctx_len);
        goto fail;
    }
    c->max_tokens = (int)mt;
    c->tok = slm_tokenizer_load(c->g, err);
    if (!c->tok) goto fail;
    c->D = c->m->cfg.dim;
    c->W = malloc(sizeof(float) * (size_t)c->K * c->D);
    c->b = malloc(sizeof(float) * (size_t)c->K);
    if (!c->W || !c->b) goto nomem;
    if ((s = head_tensor(mg, "cls.weight", (uint64_t)c->D, (uint64_t)c->K, c->W, err)) != SLM_OK) goto fail;
    if ((s = head_tensor(mg, "cls.bias", (uint64_t)c->K, 1, c->b, err)) != SLM_OK) goto fail;
    if ((s = slm_classify_template_read(mg, &c->tmpl, err)) != SLM_OK) goto fail;
    if ((s = slm_classify_ngram_read(mg, c->K, &c->ngram, &c->mix, err)) != SLM_OK) {
        slm_err_prefix(err, "%s", path);
        goto fail;
    }

    int N = CLS_MAX_BATCH * c->max_tokens;
    c->ctx = slm_ctx_new_outputs(&c->m->cfg, N, 1, 0, pool, err);
    if (!c->ctx) goto fail;
    c->kv = slm_kv_cache_new(&c->m->cfg, CLS_MAX_BATCH, c->max_tokens, err);
    if (!c->kv) goto fail;
    c->tokens = malloc(sizeof(int32_t) * (size_t)N);
    c->pos = malloc(sizeof(int32_t) * (size_t)N);
    c->seq = malloc(sizeof(int32_t) * (size_t)N);
    c->out = calloc((size_t)N, 1);
    c->start = malloc(sizeof(int32_t) * CLS_MAX_BATCH);
    c->len = malloc(sizeof(int32_t) * CLS_MAX_BATCH);
    c->pooled = malloc(sizeof(float) * CLS_MAX_BATCH * (size_t)c->D);
    c->logits = malloc(sizeof(float) * CLS_MAX_BATCH * (size_t)c->K);
    if (!c->tokens || !c->pos || !c->seq || !c->out || !c->start || !c->len || !c->pooled || !c->logits)
        goto nomem;
    return c;
nomem:
    slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory loading the classifier", path);
fail:
    slm_classifier_free(c);
    return NULL;
}

void slm_classifier_free(slm_classifier *c) {
    if (!c) return;
    slm_ctx_free(c->ctx);
    slm_kv_cache_free(c->kv);
    slm_model_free(c->m);
    slm_tokenizer_free(c->tok);
    if (c->labels)
        for (int i = 0; i < c->K; i++) free(c->labels[i]);
    free(c->labels);
    free(c->W);
    free(c->b);
    free(c->tokens);
    free(c->pos);
    free(c->seq);
    free(c->out);
    free(c->start);
    free(c->len);
    free(c->pooled);
    free(c->logits);
    slm_ngram_free(c->ngram);
    free(c->tmpl);
    slm_gguf_close(c->g);
    slm_gguf_close(c->ga);
    free(c);
}

int slm_classifier_n_labels(const slm_classifier *c) { return c->K; }
const char *slm_classifier_label(const slm_classifier *c, int i) {
    return i >= 0 && i < c->K ? c->labels[i] : NULL;
}
int slm_classifier_max_tokens(const slm_classifier *c) { return c->max_tokens; }
const char *slm_classifier_template(const slm_classifier *c) { return c->tmpl; }
int slm_classifier_ngram_features(const slm_classifier *c, float *w_head, float *w_ngram) {
    if (!c->ngram) return 0;
    if (w_head) *w_head = c->mix.w_head;
    if (w_ngram) *w_ngram = c->mix.w_ngram;
    return slm_ngram_n_features(c->ngram);
}

/* One forward pass over the n_ex examples laid out in c's buffers (texts/lens: theirs, for the
 * n-gram part); probabilities into probs. */
static slm_status run_pass(slm_classifier *c, const char *const *texts, const size_t *lens, int n_ex, int n_tok,
                           float *probs, slm_err *err) {
    slm_batch b = {.n_tokens = n_tok, .token = c->tokens, .pos = c->pos, .seq = c->seq, .output = c->out};
    slm_status s = slm_model_forward(c->m, c->ctx, c->kv, &b, err);
    if (s) return s;
    slm_cls_pool(slm_ctx_hidden(c->ctx), c->D, c->start, c->len, n_ex, c->pooling, c->pooled);
    slm_cls_logits(c->W, c->b, c->pooled, n_ex, c->D, c->K, probs);
    if (c->ngram) {
        for (int e = 0; e < n_ex; e++)
            slm_ngram_logits(c->ngram, texts[e] ? texts[e] : "", texts[e] ? lens[e] : 0, c->logits + (size_t)e * c->K);
        slm_cls_mix_logits(&c->mix, probs, c->logits, n_ex, c->K, probs);
    }
    slm_cls_softmax(probs, n_ex, c->K);
    return SLM_OK;
}

slm_status slm_classifier_predict(slm_classifier *c, const char *const *texts, const size_t *lens,
                                  int n, float *probs, slm_err *err) {
    if (!c || (n > 0 && (!texts || !lens || !probs)))
        return slm_err_set(err, SLM_ERR_ARG, "classify: classifier, texts, lengths and output are required");
    int n_ex = 0, n_tok = 0, first = 0;
    for (int i = 0; i < n; i++) {
        int k;
        slm_status s = slm_task_encode(c->tok, c->tmpl, texts[i] ? texts[i] : "", texts[i] ? lens[i] : 0,
                                       c->max_tokens - 2, c->tokens + n_tok, &k, err);
        if (s) return slm_err_prefix(err, "classify: text %d", i);
        for (int t = 0; t < k; t++) {
            c->pos[n_tok + t] = t;
            c->seq[n_tok + t] = n_ex;
        }
        c->start[n_ex] = n_tok;
        c->len[n_ex] = k;
        n_tok += k;
        n_ex++;
        if (n_ex == CLS_MAX_BATCH || i == n - 1) {
            s = run_pass(c, texts + first, lens + first, n_ex, n_tok, probs + (size_t)first * c->K, err);
            if (s) return slm_err_prefix(err, "classify: texts %d..%d", first, i);
            first = i + 1;
            n_ex = 0;
            n_tok = 0;
        }
    }
    return SLM_OK;
}

slm_status slm_classify_lora_merge(const char *base_path, const char *adapter_path, const char *out_path,
                                   slm_err *err) {
    /* the classifier loader does the checking and the merge; its fp32 body and head are written */
    slm_classifier *c = slm_classifier_load_lora(base_path, adapter_path, NULL, err);
    if (!c) return err ? err->code : SLM_ERR_ARG;
    slm_gguf_writer *w = slm_gguf_writer_new();
    slm_status s = w ? SLM_OK : slm_err_set(err, SLM_ERR_NOMEM, "merge: out of memory");
    if (!s) s = slm_classify_model_add(w, c->m, c->tok, c->W, c->b, c->labels, c->K, c->pooling, c->max_tokens,
                                       c->tmpl, err);
    if (!s) s = slm_gguf_set_str(w, "slm.lora.merged_from", adapter_path) == SLM_OK
                    ? SLM_OK : slm_err_set(err, SLM_ERR_NOMEM, "merge: out of memory");
    if (!s) s = slm_gguf_writer_write(w, out_path, err);
    if (s) slm_err_prefix(err, "writing %s", out_path);
    slm_gguf_writer_free(w);
    slm_classifier_free(c);
    return s;
}
