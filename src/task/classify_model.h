/* classify_model.h: writing a classify task model — the other half of classifier.h (which
 * reads it). The keys and tensors are listed there; this adds them to a GGUF writer so that
 * fine-tuning can add its training facts (and checkpoints their state) before writing. */
#ifndef SLM_TASK_CLASSIFY_MODEL_H
#define SLM_TASK_CLASSIFY_MODEL_H

#include "core/error.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "task/classify_mix.h"
#include "task/ngram.h"
#include "tokenizer/tokenizer.h"

/* Adds the body (slm_model_save), the tokenizer, general.name = "slm-classify", slm.task =
 * "classify", slm.labels, slm.pooling ("last"/"mean"), slm.max_tokens, slm.template (when
 * template_text is not NULL: how texts are encoded, task_data.h) and the F32 tensors cls.weight
 * (K, D) and cls.bias (K). W, b, labels and m must outlive slm_gguf_writer_write. */
slm_status slm_classify_model_add(slm_gguf_writer *w, const slm_model *m, const slm_tokenizer *tok,
                                  const float *W, const float *b, char *const *labels, int K,
                                  int pooling, int max_tokens, const char *template_text, slm_err *err);

/* The task part alone (no body, no tokenizer): slm.task, slm.labels, slm.pooling,
 * slm.max_tokens, slm.template, cls.weight (K, D), cls.bias (K) — what a classify LoRA adapter
 * carries. */
slm_status slm_classify_task_add(slm_gguf_writer *w, int D, const float *W, const float *b,
                                 char *const *labels, int K, int pooling, int max_tokens,
                                 const char *template_text, slm_err *err);
/* slm.template of a classify file into *out (malloc'd; NULL when the file has none: text + EOS).
 * SLM_ERR_FORMAT naming the key when it is not a string holding {text} once. */
slm_status slm_classify_template_read(const slm_gguf *g, char **out, slm_err *err);

/* The optional sparse n-gram part (ngram.h: slm.ngram.* keys, ngram.* tensors) and the weights
 * of the two parts' logits (classify_mix.h) as slm.mix.head and slm.mix.ngram (f32). ng must
 * outlive slm_gguf_writer_write. */
slm_status slm_classify_ngram_add(slm_gguf_writer *w, const slm_ngram *ng, slm_cls_mix mix, slm_err *err);
/* Reads them back for K labels: *ng = NULL and SLM_OK when the file has no n-gram part. */
slm_status slm_classify_ngram_read(const slm_gguf *g, int K, slm_ngram **ng, slm_cls_mix *mix, slm_err *err);

/* Reads a classify file's head: cls.weight (K, D) and cls.bias (K) as F32 (any type with a
 * dequantizer) and slm.pooling. Errors name the tensor or key and the shapes. */
slm_status slm_classify_head_read(const slm_gguf *g, int K, int D, float *W, float *b, int *pooling,
                                  slm_err *err);

/* slm lora merge: base (any block type, dequantized) + classify LoRA adapter -> a full classify
 * model (F32 body W + (alpha/r)·B·A, the base's tokenizer, the adapter's labels, pooling and
 * head), written atomically. It loads with slm_classifier_load and predicts as the pair does. */
slm_status slm_classify_lora_merge(const char *base_path, const char *adapter_path, const char *out_path,
                                   slm_err *err);

#endif
