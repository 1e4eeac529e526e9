/* classify_model.h: writing a classify task model — the other half of classifier.h (which
 * reads it). The keys and tensors are listed there; this adds them to a GGUF writer so that
 * fine-tuning can add its training facts (and checkpoints their state) before writing. */
#ifndef SLM_TASK_CLASSIFY_MODEL_H
#define SLM_TASK_CLASSIFY_MODEL_H

#include "core/error.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* Adds the body (slm_model_save), the tokenizer, general.name = "slm-classify", slm.task =
 * "classify", slm.labels, slm.pooling ("last"/"mean"), slm.max_tokens and the F32 tensors
 * cls.weight (K, D) and cls.bias (K). W, b, labels and m must outlive slm_gguf_writer_write. */
slm_status slm_classify_model_add(slm_gguf_writer *w, const slm_model *m, const slm_tokenizer *tok,
                                  const float *W, const float *b, char *const *labels, int K,
                                  int pooling, int max_tokens, slm_err *err);

/* Reads a classify file's head: cls.weight (K, D) and cls.bias (K) as F32 (any type with a
 * dequantizer) and slm.pooling. Errors name the tensor or key and the shapes. */
slm_status slm_classify_head_read(const slm_gguf *g, int K, int D, float *W, float *b, int *pooling,
                                  slm_err *err);

#endif
