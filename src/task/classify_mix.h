/* classify_mix.h: one distribution from a classify model's two parts — the transformer head's
 * logits z_head and the sparse n-gram model's z_ngram (ngram.h) — as
 *     softmax(w_head · z_head + w_ngram · z_ngram),
 * a weighted product of the two softmaxes (a log-linear pool). Its two parts err on different
 * queries (the n-gram part on paraphrases, the transformer on rare words and typos), so the pool
 * beats both; Rasa's DIET classifier combines sparse n-gram and dense features for the same reason.
 *
 * The weights are fitted on validation data: the share mix = w_head / (w_head + w_ngram) and a
 * temperature (their sum) together, by mean negative log-likelihood — which picks the share more
 * steadily than accuracy on a small validation set and calibrates the probabilities.
 */
#ifndef SLM_TASK_CLASSIFY_MIX_H
#define SLM_TASK_CLASSIFY_MIX_H

#include <stdint.h>

typedef struct {
    float w_head, w_ngram;
} slm_cls_mix;

/* out (E, K) = w_head · z_head + w_ngram · z_ngram (out may alias z_head). */
void slm_cls_mix_logits(const slm_cls_mix *m, const float *z_head, const float *z_ngram, int E, int K, float *out);

/* Accuracy and mean negative log-likelihood of softmax(logits) (E, K) against labels. */
void slm_cls_mix_score(const float *logits, const int32_t *labels, int E, int K, double *acc, double *nll);

/* Fits the weights on E labelled examples: mix in {0, 0.05, ..., 1} and the temperature on a log
 * grid from 1/8 to 8 with the lowest NLL (ties: the larger mix, the lower temperature).
 * *acc and *nll (may be NULL) receive the fitted pool's scores. */
slm_cls_mix slm_cls_mix_fit(const float *z_head, const float *z_ngram, const int32_t *labels, int E, int K,
                            double *acc, double *nll);

#endif
