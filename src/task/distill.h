/* distill.h: knowledge distillation for classify task models — the teacher's soft labels.
 *
 * The teacher (any classify model file, quantized or not, read through slm_classifier) gives a
 * probability row for every training example once, before training (cached: the teacher never
 * runs again); the student trains with slm_finetune_set_teacher on
 * alpha·T²·KL(p_T || q_T) + (1 - alpha)·CE (classify_head.h: slm_cls_distill_loss). Teacher
 * probabilities at temperature 1 suffice: p_T ∝ p^(1/T) equals the softmax of the teacher's
 * logits / T. Generate-task distillation is not done yet.
 */
#ifndef SLM_TASK_DISTILL_H
#define SLM_TASK_DISTILL_H

#include "core/error.h"
#include "task/classifier.h"
#include "task/task_data.h"

/* probs (d->train.n, d->n_labels): the teacher's probabilities of every training example, in the
 * data's label order. The teacher's label set must equal the data's (any order): a missing or
 * extra label is SLM_ERR_ARG naming it. */
slm_status slm_distill_teacher_probs(slm_classifier *teacher, const slm_task_data *d, float *probs,
                                     slm_err *err);

#endif
