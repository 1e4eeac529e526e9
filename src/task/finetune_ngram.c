/* finetune_ngram.c: the sparse n-gram part of a fine-tuned classify model — trained on the same
 * training texts after the transformer, its weight in the pool fitted on validation (finetune.h,
 * classify_mix.h). Kept apart from finetune.c: it is a second, independent learner. */
#include <stdlib.h>
#include <string.h>

#include "task/finetune_internal.h"

/* Logits (s->n, K) of the n-gram part for every text of a split. */
static void ngram_logits(const slm_ngram *ng, const slm_task_split *s, int K, float *z) {
    for (int i = 0; i < s->n; i++) slm_ngram_logits(ng, s->text[i], strlen(s->text[i]), z + (size_t)i * K);
}

/* Both parts' logits on a split, into zh and zn (s->n, K) each. */
static slm_status both_logits(slm_finetune *t, const slm_ngram *ng, const slm_task_split *s, float *zh, float *zn,
                              slm_err *err) {
    slm_status st = slm_finetune_logits(t, s, zh, err);
    if (st) return st;
    if (ng) ngram_logits(ng, s, t->K, zn);
    return SLM_OK;
}

static void score_all(const slm_finetune *t, const slm_ngram *ng, const slm_cls_mix *mix, const slm_task_split *s,
                      float *zh, float *zn, slm_finetune_scores *r) {
    slm_cls_mix_score(zh, s->label, s->n, t->K, &r->acc_head, &r->nll_head);
    if (!ng) {
        r->acc_ngram = r->acc_mix = r->acc_head;
        r->nll_ngram = r->nll_mix = r->nll_head;
        return;
    }
    slm_cls_mix_score(zn, s->label, s->n, t->K, &r->acc_ngram, &r->nll_ngram);
    slm_cls_mix_logits(mix, zh, zn, s->n, t->K, zn); /* zn now holds the pool */
    slm_cls_mix_score(zn, s->label, s->n, t->K, &r->acc_mix, &r->nll_mix);
}

/* The n-gram part trained on t's training texts. */
static slm_ngram *train_ngram(slm_finetune *t, const slm_ngram_opts *o, slm_ngram_progress cb, void *ctx,
                              slm_err *err) {
    const slm_task_split *tr = &t->d->train;
    size_t *lens = malloc(sizeof(size_t) * (size_t)tr->n);
    if (!lens) {
        slm_err_set(err, SLM_ERR_NOMEM, "n-gram part: out of memory");
        return NULL;
    }
    for (int i = 0; i < tr->n; i++) lens[i] = strlen(tr->text[i]);
    slm_ngram *ng = slm_ngram_train((const char *const *)tr->text, lens, tr->label, tr->n, t->K, o, cb, ctx, err);
    if (!ng) slm_err_prefix(err, "n-gram part");
    free(lens);
    return ng;
}

slm_ngram *slm_finetune_fit_ngram(slm_finetune *t, const slm_ngram_opts *o, slm_ngram_progress cb, void *ctx,
                                  slm_finetune_scores *val, slm_cls_mix *mix, slm_err *err) {
    const slm_task_split *va = &t->d->val;
    float *zh = malloc(sizeof(float) * (size_t)va->n * t->K), *zn = malloc(sizeof(float) * (size_t)va->n * t->K);
    slm_ngram *ng = NULL;
    if (!zh || !zn) {
        slm_err_set(err, SLM_ERR_NOMEM, "n-gram part: out of memory");
        goto done;
    }
    if (!(ng = train_ngram(t, o, cb, ctx, err))) goto done;
    if (both_logits(t, ng, va, zh, zn, err) != SLM_OK) {
        slm_ngram_free(ng);
        ng = NULL;
        goto done;
    }
    slm_cls_mix m = slm_cls_mix_fit(zh, zn, va->label, va->n, t->K, NULL, NULL);
    if (val) score_all(t, ng, &m, va, zh, zn, val);
    if (mix) *mix = m;
    slm_finetune_set_ngram(t, ng, m);
done:
    free(zh);
    free(zn);
    return ng;
}

slm_ngram *slm_finetune_add_ngram(slm_finetune *t, const slm_ngram_opts *o, slm_ngram_progress cb, void *ctx,
                                  slm_cls_mix mix, slm_err *err) {
    slm_ngram *ng = train_ngram(t, o, cb, ctx, err);
    if (ng) slm_finetune_set_ngram(t, ng, mix);
    return ng;
}

slm_status slm_finetune_score(slm_finetune *t, const slm_task_split *s, slm_finetune_scores *r, slm_err *err) {
    float *zh = malloc(sizeof(float) * (size_t)s->n * t->K), *zn = malloc(sizeof(float) * (size_t)s->n * t->K);
    slm_status st = zh && zn ? both_logits(t, t->ngram, s, zh, zn, err) : slm_err_set(err, SLM_ERR_NOMEM, "score: out of memory");
    if (!st) score_all(t, t->ngram, &t->mix, s, zh, zn, r);
    free(zh);
    free(zn);
    return st;
}
