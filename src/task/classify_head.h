/* classify_head.h: the classification head over a decoder's final hidden state — pooling of each
 * example's tokens, a linear layer to one logit per label, softmax cross-entropy — and the
 * backward of each piece, as plain functions on arrays (shared by fine-tuning and inference, and
 * checked against finite differences one by one).
 *
 * Shape letters: n = batch tokens, E = examples in the batch, D = dim, K = labels.
 * Example e owns the hidden rows [start[e], start[e] + len[e]) (its tokens, in position order).
 */
#ifndef SLM_TASK_CLASSIFY_HEAD_H
#define SLM_TASK_CLASSIFY_HEAD_H

#include <stdint.h>

/* How an example's token states become one vector. Values are stored in no file (names are). */
typedef enum {
    SLM_POOL_LAST = 0, /* the hidden state of the example's last token (its EOS) */
    SLM_POOL_MEAN = 1, /* the mean over all its tokens */
} slm_pooling;

/* "last" / "mean"; -1 for another name. */
int slm_pooling_from_name(const char *name);
const char *slm_pooling_name(int pooling);

/* pooled (E, D) from hidden (n, D). */
void slm_cls_pool(const float *hidden, int D, const int32_t *start, const int32_t *len, int E,
                  int pooling, float *pooled);
/* dhidden (n, D) += the pooling's backward of dpooled (E, D); rows of no example are untouched. */
void slm_cls_pool_backward(const float *dpooled, int D, const int32_t *start, const int32_t *len,
                           int E, int pooling, float *dhidden);

/* logits (E, K) = pooled (E, D) · W^T (W: (K, D)) + b (K). */
void slm_cls_logits(const float *W, const float *b, const float *pooled, int E, int D, int K,
                    float *logits);
/* Softmax of each row of x (E, K) in place (max-subtracted, in double). */
void slm_cls_softmax(float *x, int E, int K);

/* Softmax cross-entropy of logits (E, K) against labels (E) with label smoothing s in [0, 1)
 * (target s/K everywhere plus 1-s on the label). Returns the SUM of the E example losses;
 * dlogits (E, K, may alias nothing) receives scale · d(sum)/d(logits). *n_correct (may be NULL)
 * counts rows whose arg-max is the label. */
double slm_cls_loss(const float *logits, const int32_t *labels, int E, int K, float smoothing,
                    float scale, float *dlogits, int *n_correct);

/* Distillation loss of logits z (E, K) against teacher probabilities p (E, K, temperature 1) and
 * labels (E): per example alpha·T²·KL(p_T || q_T) + (1 - alpha)·CE(softmax(z), label), with
 * p_T = softmax(log p / T) (p^(1/T) renormalised; zeros floored at 1e-30) and q_T = softmax(z / T).
 * Returns the SUM over examples; dlogits (E, K) receives scale · d(sum)/dz =
 * scale·(alpha·T·(q_T - p_T) + (1 - alpha)·(q - onehot)). */
double slm_cls_distill_loss(const float *logits, const int32_t *labels, const float *teacher, int E, int K,
                            float T, float alpha, float scale, float *dlogits);

/* R-Drop's consistency term (Liang et al. 2021): the rows of logits (2P, K) come in pairs (2i, 2i+1),
 * the same example run twice under different dropout masks; per pair
 * alpha·½·(KL(p_2i || p_2i+1) + KL(p_2i+1 || p_2i)) with p = softmax(logits). Returns the SUM over
 * pairs and ADDS scale · d(sum)/d(logits) to dlogits (may be NULL): for row a against its twin b,
 * alpha·½·(p_a ⊙ (log p_a - log p_b - KL(p_a || p_b)) + p_a - p_b). NAN when out of memory. */
double slm_cls_rdrop_loss(const float *logits, int P, int K, float alpha, float scale, float *dlogits);

/* Backward of slm_cls_logits: dW (K, D) += dlogits^T · pooled, db (K) += column sums,
 * dpooled (E, D) = dlogits · W (overwritten; may be NULL). */
void slm_cls_head_backward(const float *W, const float *pooled, const float *dlogits, int E, int D,
                           int K, float *dW, float *db, float *dpooled);

#endif
