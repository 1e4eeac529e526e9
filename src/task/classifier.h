/* classifier.h: a task model of kind "classify" — a Llama-family body, a classification head on
 * its final hidden state, and the label names — loaded from one GGUF for inference.
 *
 * The GGUF is an ordinary slm model file (llama.* keys, tokenizer.ggml.*, body tensors) plus
 * slm.task = "classify", slm.labels (string array, head row order), slm.pooling ("last" or
 * "mean"), optionally slm.template (how a text is laid out before encoding: task_data.h) and the
 * head tensors cls.weight (n_labels, D) and cls.bias (n_labels).
 * One forward pass per batch of texts gives a real probability for every label.
 *
 * Optionally a sparse n-gram part (ngram.h; slm finetune trains it by default): then the
 * probabilities are softmax(slm.mix.head · head logits + slm.mix.ngram · n-gram logits)
 * (classify_mix.h).
 */
#ifndef SLM_TASK_CLASSIFIER_H
#define SLM_TASK_CLASSIFIER_H

#include <stddef.h>

#include "core/error.h"
#include "core/threads.h"

typedef struct slm_classifier slm_classifier;

/* Opens a classify model (weights read where they lie, any block type). Errors: not a classify
 * model (slm.task missing or another kind), head/labels missing or misshapen — each named. */
slm_classifier *slm_classifier_load(const char *path, slm_pool *pool, slm_err *err);
/* A base model plus a classify LoRA adapter (lora.h; from slm finetune --lora): the body and
 * tokenizer from base_path (any block type: dequantized to fp32), W + (alpha/r)·B·A merged once
 * at load, the labels, pooling and head from the adapter. Errors as slm_lora_load and above. */
slm_classifier *slm_classifier_load_lora(const char *base_path, const char *adapter_path, slm_pool *pool,
                                         slm_err *err);
void slm_classifier_free(slm_classifier *c);

int slm_classifier_n_labels(const slm_classifier *c);
const char *slm_classifier_label(const slm_classifier *c, int i);
/* The longest text (in tokens, BOS included) a prediction reads; longer texts are cut to it. */
int slm_classifier_max_tokens(const slm_classifier *c);
/* How texts are encoded (slm.template, task_data.h), NULL for text + EOS. */
const char *slm_classifier_template(const slm_classifier *c);
/* Features of the n-gram part, 0 without one; *mix (may be NULL) its weights then. */
int slm_classifier_ngram_features(const slm_classifier *c, float *w_head, float *w_ngram);

/* Probabilities for n texts (texts[i] of lens[i] bytes): probs[i * n_labels + j]. All n texts go
 * through the model in one batched forward pass (split into passes of at most max_batch_tokens).
 * Thread-compatible: one classifier per thread, or serialise calls. */
slm_status slm_classifier_predict(slm_classifier *c, const char *const *texts, const size_t *lens,
                                  int n, float *probs, slm_err *err);

#endif
