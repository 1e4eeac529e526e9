/* ngram.h: a sparse n-gram text classifier — TF-IDF features and a multinomial logistic regression,
 * the classical model that sits beside the transformer head (as Rasa's DIET joins sparse n-gram
 * features to dense ones) and the one scripts/baseline_tfidf.py fits with scikit-learn.
 *
 * Features of a text, modelled on scikit-learn's TfidfVectorizer (lowercase=True):
 *  - the text is lowercased (ASCII, Latin-1, Latin Extended-A, basic Greek and Cyrillic; other
 *    bytes as they are). It is UTF-8 read leniently: an invalid byte is one code point.
 *  - "word": tokens are the maximal runs of word characters (ASCII letters, digits, '_', and
 *    non-ASCII code points except Unicode spaces, Latin-1 punctuation/symbols and the General
 *    Punctuation and currency blocks) at least 2 code points long (sklearn's \b\w\w+\b); n-grams
 *    n = 1..word_max joined by one space. Key "w:" + n-gram.
 *  - "char_wb": each whitespace-separated word w, padded " " + w + " ", gives its code-point
 *    n-grams n = char_min..char_max as sklearn's _char_wb_ngrams (a padded word of at most n code
 *    points gives itself once, and no longer n-grams). Key "c:" + n-gram.
 *  - value (1 + ln tf) · idf, idf = ln((1 + N) / (1 + df)) + 1 (N training texts, df texts holding
 *    the feature); the "w:" block and the "c:" block are L2-normalised separately (sklearn stacks
 *    two vectorisers), so a row with both blocks has norm sqrt(2). Unknown features are ignored.
 * Model: logits (K) = W·x + b, W feature-major (row f holds feature f's K weights), trained by
 * full-batch L-BFGS on sum_i CE(softmax(W x_i + b), y_i) + ||W||² / (2C) (the objective of
 * sklearn's LogisticRegression(C), multinomial, bias not penalised), from zero, deterministic
 * (the same model for any thread count).
 *
 * What it is not: a tokenizer for the transformer, or a store of label names (the caller's file
 * holds those; row k of the logits is label k).
 */
#ifndef SLM_TASK_NGRAM_H
#define SLM_TASK_NGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "gguf/gguf.h"

typedef struct {
    int word_max;           /* word n-grams 1..word_max, 0 = no word features                 [2] */
    int char_min, char_max; /* char_wb n-grams, char_max 0 = none                          [2, 5] */
    int min_df;             /* keep features in at least min_df training texts              [1] */
    int max_features;       /* 0 = all; else the max_features of highest df (ties: key order) */
    float C;                /* inverse L2 strength, as scikit-learn's                      [30] */
    int max_iter;           /* L-BFGS iterations at most; <= 0: the default               [200] */
    float tol;              /* stop when max |gradient| of the objective / N <= tol        [1e-5]
                             * (scikit-learn's tol=1e-4 is on the objective itself: 1e-4 / N here) */
    uint64_t seed;          /* unused by the deterministic full-batch solver (kept for API)       */
    int n_threads;          /* threads for training, counting the caller; <= 0: one per CPU  [0] */
} slm_ngram_opts;
void slm_ngram_opts_default(slm_ngram_opts *o);

typedef struct slm_ngram slm_ngram;
/* Called after every solver iteration: loss = (sum CE + ||W||²/(2C)) / N. */
typedef void (*slm_ngram_progress)(void *ctx, int iter, int max_iter, double loss);

/* Trains on n texts (texts[i] of lens[i] bytes, any bytes; lens NULL: NUL-terminated) with labels
 * in [0, K). Errors (SLM_ERR_ARG) name the bad argument: n < 1, K < 2, a label out of range (and
 * its text's index), an option out of range, no features at all; SLM_ERR_NOMEM. Memory: about
 * 15 · F · K floats while training (L-BFGS history), F · K floats after. */
slm_ngram *slm_ngram_train(const char *const *texts, const size_t *lens, const int32_t *labels, int n, int K,
                           const slm_ngram_opts *o, slm_ngram_progress cb, void *ctx, slm_err *err);
void slm_ngram_free(slm_ngram *m);
int slm_ngram_n_features(const slm_ngram *m);
int slm_ngram_n_labels(const slm_ngram *m);
/* logits (K) of one text; thread-safe (m is read-only). An empty text, or one with no known
 * feature, gives the bias; so does a failed allocation of the call's scratch (about 60 bytes per
 * byte of text with the default n-gram ranges). */
void slm_ngram_logits(const slm_ngram *m, const char *text, size_t len, float *logits);

/* GGUF storage (src/gguf/gguf.h writer/reader): keys slm.ngram.word_max, slm.ngram.char_min,
   slm.ngram.char_max (u32), slm.ngram.features (string array, the feature keys "w:..."/"c:..." in
   row order); tensors ngram.weight F16 ne = [K, F] (row f = feature f's K weights), ngram.bias F32 [K],
   ngram.idf F32 [F]. The writer keeps pointers: m must outlive slm_gguf_writer_write (W is
   converted to F16 into a buffer owned by m, so add is not to run concurrently with itself on
   one m; slm_ngram_logits may). */
slm_status slm_ngram_add(slm_gguf_writer *w, const slm_ngram *m, slm_err *err);
/* Reads it back for K labels; *out = NULL and SLM_OK when the file has no n-gram part
   (no slm.ngram.features key); malformed parts are SLM_ERR_FORMAT naming key/tensor and shapes.
   ngram.weight may also be F32. */
slm_status slm_ngram_read(const slm_gguf *g, int K, slm_ngram **out, slm_err *err);

/* ---- inspection (tests, tools) ---- */

/* Calls cb for every n-gram occurrence of text under o's analyzers, in order: word n-grams (n = 1
 * first, then 2, ...), then each word's char n-grams; a repeated n-gram is reported each time.
 * Keys are "w:..."/"c:..." and not NUL-terminated. SLM_ERR_ARG for bad options, SLM_ERR_NOMEM. */
typedef void (*slm_ngram_feature_fn)(void *ctx, const char *key, size_t len);
slm_status slm_ngram_features_of(const slm_ngram_opts *o, const char *text, size_t len,
                                 slm_ngram_feature_fn cb, void *ctx, slm_err *err);
/* The tf-idf row of text: the distinct known features' indices (ascending) and values, at most
 * cap of them written. Returns how many there are (may exceed cap), -1 when out of memory. */
int slm_ngram_transform(const slm_ngram *m, const char *text, size_t len, int32_t *idx, float *val, int cap);
/* Feature f's key (len bytes, not NUL-terminated) / the index of a key, -1 when unknown. */
const char *slm_ngram_feature(const slm_ngram *m, int f, size_t *len);
int slm_ngram_find(const slm_ngram *m, const char *key, size_t len);
float slm_ngram_idf(const slm_ngram *m, int f);
/* Feature f's K weights / the K biases (read-only views into m). */
const float *slm_ngram_weight_row(const slm_ngram *m, int f);
const float *slm_ngram_bias(const slm_ngram *m);
/* The training objective (sum_i CE + ||W||²/(2C)) / n at the given W (F x K, row per feature) and
 * b (K) on texts featurised by m's vocabulary, and its gradient into gW (F x K) and gb (K) when
 * they are not NULL — the function the solver minimises. NaN on bad arguments or no memory. */
double slm_ngram_objective(const slm_ngram *m, const char *const *texts, const size_t *lens, const int32_t *labels,
                           int n, float C, const float *W, const float *b, float *gW, float *gb);

#endif
