/* task_data.h: a labelled text dataset for the classify task, as `slm data prepare` writes it:
 * DIR/train.jsonl, DIR/val.jsonl and optionally DIR/test.jsonl, one {"text": ..., "label": ...}
 * object per line (blank lines skipped), and the examples' token ids for a tokenizer.
 *
 * Labels: DIR/card.json's label list when present ("labels": an array of names, or an object whose
 * keys are the names), else the sorted set of training labels; their order is the head's row
 * order. A validation or test label outside that set is an error naming it, file and line, as is a
 * malformed line. Each example encodes to [BOS] text [EOS] (BOS/EOS when the vocabulary has
 * them), the text cut to its first max_len tokens; examples lie back to back in one token array.
 *
 * Or, with a template ("{text}" once, in any text: "{text}\n", "User: {text}\n"), to [BOS] then
 * the template's text before "{text}" and the example's text encoded together, cut so the whole
 * stays within max_len + 2 tokens, then the text after "{text}" encoded on its own, and no EOS.
 * Why: a base pretrained on lines of text never saw EOS, but it learnt to sum a line up at the
 * newline that ends it (Banking77, transformer alone: 89.9% with EOS, 90.4% ending with "\n").
 */
#ifndef SLM_TASK_TASK_DATA_H
#define SLM_TASK_TASK_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    int n;                /* examples */
    char **text;          /* (n) NUL-terminated */
    int32_t *label;       /* (n) index into the label list */
    /* after slm_task_data_tokenize: */
    int32_t *start, *len; /* (n) each example's tokens: tokens[start[i] .. start[i] + len[i]) */
    int32_t *tokens;      /* (n_tokens) */
    size_t n_tokens;
    int max_len;          /* longest example in tokens */
} slm_task_split;

typedef struct {
    int n_labels;
    char **labels;        /* (n_labels) */
    slm_task_split train, val, test; /* test.n == 0 without test.jsonl */
    uint64_t fingerprint; /* a hash of labels and every example's tokens (after tokenize) */
    char *template_text;  /* the template examples are encoded with (owned), NULL: text + EOS */
} slm_task_data;

/* Reads DIR's splits (train.jsonl and val.jsonl are required; neither may be empty). */
slm_status slm_task_data_load(const char *dir, slm_task_data *d, slm_err *err);
/* Reads one JSONL file against a fixed label list (labels[0..n_labels)); unknown labels are
 * errors. With n_labels < 0 the labels are collected instead: *labels / *n_labels receive the
 * sorted distinct set (the split's label indices refer to it). */
slm_status slm_task_split_read(const char *path, char ***labels, int *n_labels, slm_task_split *s,
                               slm_err *err);
/* Checks a template: "{text}" exactly once (SLM_ERR_ARG naming the template otherwise). */
slm_status slm_task_template_check(const char *template_text, slm_err *err);
/* Encodes with template (a copy is kept; NULL: text + EOS) from the next slm_task_data_tokenize. */
slm_status slm_task_data_set_template(slm_task_data *d, const char *template_text, slm_err *err);
/* Encodes every split's texts with tok, each cut to max_len text tokens (max_len >= 1). */
slm_status slm_task_data_tokenize(slm_task_data *d, const slm_tokenizer *tok, int max_len,
                                  slm_err *err);
void slm_task_data_free(slm_task_data *d);
/* Appends a copy of the validation examples to the training split, for a refit on every labelled
 * example once validation has made the choices (slm finetune --refit); the validation split stays
 * as it is. Call before slm_task_data_tokenize (SLM_ERR_ARG after); SLM_ERR_NOMEM. */
slm_status slm_task_data_merge_val(slm_task_data *d, slm_err *err);
void slm_task_split_free(slm_task_split *s);

/* One text as the classifier reads it: [BOS] first max_len text tokens [EOS], or as template
 * (not NULL) says (above), into out (room for max_len + 2); *n receives the count (>= 1: an empty
 * text with no BOS/EOS is SLM_ERR_ARG; so is a template whose fixed text leaves no room). */
slm_status slm_task_encode(const slm_tokenizer *tok, const char *template_text, const char *text, size_t len,
                           int max_len, int32_t *out, int *n, slm_err *err);

#endif
