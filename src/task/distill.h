/* distill.h: knowledge distillation — a teacher's distribution as the student's target.
 *
 * Classify task models: the teacher (any classify model file, quantized or not, read through
 * slm_classifier) gives a probability row for every training example once, before training
 * (cached: the teacher never runs again); the student trains with slm_finetune_set_teacher on
 * alpha·T²·KL(p_T || q_T) + (1 - alpha)·CE (classify_head.h: slm_cls_distill_loss). Teacher
 * probabilities at temperature 1 suffice: p_T ∝ p^(1/T) equals the softmax of the teacher's
 * logits / T.
 *
 * Generate task models: the teacher is a language model that runs forward on every training
 * batch beside the student (sft.h: slm_sft_set_teacher); each completion token's loss is
 * slm_distill_token_loss over the whole vocabulary. Nothing is cached there: that would be V
 * floats per training token. Teacher and student must share the tokenizer
 * (slm_distill_check_vocab).
 */
#ifndef SLM_TASK_DISTILL_H
#define SLM_TASK_DISTILL_H

#include <stdint.h>

#include "core/error.h"
#include "task/classifier.h"
#include "task/task_data.h"
#include "tokenizer/tokenizer.h"

/* probs (d->train.n, d->n_labels): the teacher's probabilities of every training example, in the
 * data's label order. The teacher's label set must equal the data's (any order): a missing or
 * extra label is SLM_ERR_ARG naming it. */
slm_status slm_distill_teacher_probs(slm_classifier *teacher, const slm_task_data *d, float *probs,
                                     slm_err *err);

/* One next-token position: student logits z (V), teacher logits tz (V), the true next token
 * target in [0, V). Returns (in nats, unscaled)
 *     alpha·T²·KL(p_T || q_T) + (1 - alpha)·CE(target),
 * p_T = softmax(tz / T), q_T = softmax(z / T), CE = -log softmax(z)[target]. When dz is not NULL
 * it receives scale · d(loss)/dz = scale·(alpha·T·(q_T - p_T) + (1 - alpha)·(softmax(z) - onehot));
 * dz may be z itself (overwritten in place). T > 0, alpha in [0, 1] (not checked: the caller's).
 * Sums run in double. T = 1, alpha = 1 gives KL(p || q) of the two distributions as they are. */
double slm_distill_token_loss(const float *z, const float *tz, int V, int32_t target, float T, float alpha,
                              float scale, float *dz);

/* SLM_OK when the two tokenizers have the same token list (count, and every token's bytes);
 * else SLM_ERR_ARG naming the first difference ("token 261 is 'ab' in the teacher, 'ba' in the
 * student", or the two sizes). Token types, merges and special ids are not compared. */
slm_status slm_distill_check_vocab(const slm_tokenizer *teacher, const slm_tokenizer *student, slm_err *err);

#endif
