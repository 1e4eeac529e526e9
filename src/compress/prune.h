/* prune.h: magnitude pruning of a model's body weight matrices — unstructured (one global
 * threshold across every matrix, or each matrix its own) and N:M semi-structured (2:4: in each
 * group of M consecutive input weights of a row, the N largest |w| are kept).
 *
 * Targets are the 2-D body matrices blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,
 * ffn_down}.weight; embeddings, norms, biases and task heads (cls.*) are never touched. Pruned
 * weights are stored as zeros in the same file format (no sparse storage): the gain is what a
 * later quantizer or a sparse kernel makes of it; the cost is measured by the caller (slm prune
 * --recover-data reports validation accuracy before, after pruning and after recovery).
 *
 * Exactness: unstructured pruning zeroes exactly round(sparsity * n) weights (the smallest |w|,
 * ties broken by position: earlier first), globally or per matrix; N:M keeps exactly N of every M.
 * A mask (1 = kept) records the pattern so a recovery fine-tune can re-apply it after every step.
 */
#ifndef SLM_COMPRESS_PRUNE_H
#define SLM_COMPRESS_PRUNE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "model/model.h"

typedef struct {
    float sparsity;  /* unstructured: share of target weights set to zero, in [0, 1) */
    int per_layer;   /* 0: one threshold across all targets; 1: each matrix its own */
    int nm_n, nm_m;  /* N:M when nm_m > 0 (then sparsity and per_layer are ignored); 0 < N < M */
} slm_prune_opts;

typedef struct {
    char name[64];
    uint64_t n, zeros; /* elements, zeros after pruning */
} slm_prune_tensor;

typedef struct {
    int n_tensors;
    slm_prune_tensor *tensors; /* (n_tensors) in model order */
    uint64_t n, zeros;         /* over all targets */
} slm_prune_report;

/* One matrix to prune: w (rows, cols) row-major, changed in place. */
typedef struct {
    const char *name;
    float *w;
    int rows, cols;
} slm_prune_matrix;

/* Checks the options (SLM_ERR_ARG naming the bad one). */
slm_status slm_prune_opts_check(const slm_prune_opts *o, slm_err *err);
/* 1 when a tensor name is a pruning target (see above). */
int slm_prune_is_target(const char *name);

/* Prunes the matrices together (global) or one by one. report may be NULL; else free it with
 * slm_prune_report_free. Errors: bad options; N:M on a matrix whose cols is not a multiple of M
 * (SLM_ERR_ARG naming it); out of memory. */
slm_status slm_prune_matrices(slm_prune_matrix *mats, int n_mats, const slm_prune_opts *o,
                              slm_prune_report *report, slm_err *err);

/* Prunes an fp32 model's target matrices in place. mask (may be NULL): n_params bytes, receives
 * 1 for every parameter kept (all non-targets) and 0 for every pruned one. */
slm_status slm_prune_model(slm_model *m, const slm_prune_opts *o, uint8_t *mask,
                           slm_prune_report *report, slm_err *err);

/* params[i] = 0 wherever mask[i] == 0 (the re-application after an optimizer step). */
void slm_prune_mask_apply(float *params, const uint8_t *mask, size_t n);

/* Reads any GGUF (a language model or a task model), prunes its target matrices (F32, or F16
 * converted to F32; a quantized target is SLM_ERR_UNSUPPORTED: prune first, then quantize) and
 * writes every key and every other tensor unchanged to out_path (atomically). */
slm_status slm_prune_file(const char *in_path, const char *out_path, const slm_prune_opts *o,
                          slm_prune_report *report, slm_err *err);

void slm_prune_report_free(slm_prune_report *r);

#endif
