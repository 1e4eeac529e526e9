/* perplexity.h: perplexity of a model over a token stream, llama.cpp-style (non-overlapping
 * windows of ctx tokens, each starting from BOS when there is one; only the second half of each
 * window is scored, so every scored token sees at least ctx/2 tokens of context), bits per byte,
 * and — against a reference model on the same windows — mean KL(ref || model) and top-1 agreement,
 * which make each quantization's cost a number.
 */
#ifndef SLM_EVAL_PERPLEXITY_H
#define SLM_EVAL_PERPLEXITY_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/threads.h"
#include "model/model.h"

typedef struct {
    int n_windows;
    long n_scored;          /* tokens scored */
    double nll;             /* mean negative log-likelihood, nats per scored token */
    double ppl;             /* exp(nll) */
    double bits_per_byte;   /* total nll / ln 2 / bytes of the scored tokens (0 without byte counts) */
    int has_ref;
    double kl;              /* mean KL(ref || model) in nats per scored token (has_ref) */
    double top1;            /* fraction of scored positions whose argmax agrees (has_ref) */
    double ref_ppl;         /* the reference model's perplexity on the same tokens (has_ref) */
} slm_ppl_result;

/* Scores tokens[0..n) in windows of ctx tokens (ctx even, >= 4, <= both models' context).
 * bos >= 0 replaces each window's first token (as llama.cpp does). token_nbytes (n_vocab entries,
 * may be NULL) gives each token's length in bytes, for bits per byte. ref may be NULL; it must
 * have the same vocabulary. Errors: fewer than ctx tokens (SLM_ERR_RANGE saying both numbers),
 * a bad ctx (SLM_ERR_ARG), vocabularies differing (SLM_ERR_ARG), forward errors. */
slm_status slm_perplexity(const slm_model *m, const slm_model *ref, const int32_t *tokens, size_t n,
                          int ctx, int32_t bos, const uint32_t *token_nbytes, slm_pool *pool,
                          slm_ppl_result *out, slm_err *err);
/* The same with the model's KV cache of kv_type (SLM_GGML_F32 or SLM_GGML_F16; the reference's
 * stays F32): the model against itself as ref measures what an F16 cache costs. */
slm_status slm_perplexity_kv(const slm_model *m, const slm_model *ref, const int32_t *tokens, size_t n,
                             int ctx, int32_t bos, const uint32_t *token_nbytes, uint32_t kv_type,
                             slm_pool *pool, slm_ppl_result *out, slm_err *err);

#endif
