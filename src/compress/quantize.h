/* quantize.h: model-file quantization — read any GGUF, write it again with its weight matrices
 * in another tensor type (what `slm quantize` and llama.cpp's llama-quantize do).
 *
 * Policy (llama.cpp's llama-quant.cpp, for the types slm has):
 *  - only 2-D tensors whose name ends in "weight" are converted; norms, biases and every other
 *    1-D tensor are copied as they are (F32), as is a classify model's n-gram part (ngram.*,
 *    F16 rows of one weight per label: read a feature at a time, not in blocks);
 *  - for a quantized target, output.weight (token_embd.weight when there is no output.weight,
 *    i.e. tied embeddings) goes to Q6_K unless the target is Q8_0 — or Q8_0 when its rows are
 *    not whole blocks of the target; token_embd.weight otherwise follows the target;
 *  - q4_k is llama.cpp's Q4_K_M: attn_v.weight and ffn_down.weight of the layers chosen by
 *    use_more_bits (first and last eighth, every third between) go to Q6_K;
 *  - overrides (NAME=TYPE: NAME a substring of the tensor name, llama.cpp's --tensor-type takes a
 *    regex) and keep_embeddings (token_embd.weight copied in its source type) come next;
 *  - a row that is not a whole number of blocks of the chosen type falls back: Q4_K and Q6_K to
 *    Q8_0 (llama.cpp uses Q5_0 for Q4_K, which slm lacks; Q8_0 never loses precision), and any
 *    type whose block still does not divide the row to F16 (llama.cpp refuses Q4_0/Q8_0 there).
 * Sources may be F32, F16 or BF16; an already quantized tensor is copied when its chosen type is
 * its own and is an error naming it otherwise. Every metadata key is copied; general.file_type
 * (llama.cpp's LLAMA_FTYPE: 0 F32, 1 F16, 2 Q4_0, 7 Q8_0, 15 Q4_K_M, 18 Q6_K, 32 BF16) and
 * general.quantization_version = 2 are set. The output is written atomically.
 */
#ifndef SLM_COMPRESS_QUANTIZE_H
#define SLM_COMPRESS_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

typedef struct {
    uint32_t type;                   /* target: SLM_GGML_F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q6_K */
    const char *const *overrides;    /* n_overrides strings "NAME=TYPE" */
    int n_overrides;
    bool keep_embeddings;            /* token_embd.weight keeps its source type */
    FILE *progress;                  /* one line per tensor as it is converted; NULL: silent */
} slm_quantize_opts;

typedef struct {
    char name[64];
    uint32_t from, to;               /* slm_ggml_type */
    uint64_t n_elements;
    uint64_t bytes_from, bytes_to;
    char note[96];                   /* why `to` differs from the target ("fallback: ..."), or "" */
} slm_quantize_tensor;

typedef struct {
    int n_tensors;
    slm_quantize_tensor *tensors;    /* (n_tensors), in file order */
    uint64_t bytes_before, bytes_after, n_elements;
    uint32_t file_type;              /* the general.file_type written */
    int n_fallback;                  /* tensors whose rows forced another type */
} slm_quantize_report;

/* Parses a type name as the CLI takes it (q4_0, q8_0, q4_k, q6_k, f16, bf16, f32; any case).
 * SLM_ERR_ARG naming the accepted names otherwise. */
slm_status slm_quantize_parse_type(const char *s, uint32_t *type, slm_err *err);

/* Quantizes in_path into out_path. report (may be NULL) is filled on success; free it with
 * slm_quantize_report_free. Errors: SLM_ERR_ARG (bad target or override, an override matching no
 * weight matrix), SLM_ERR_UNSUPPORTED (a quantized source tensor that would need converting,
 * named), and whatever opening or writing the files returns. out_path is untouched on error. */
slm_status slm_quantize_file(const char *in_path, const char *out_path, const slm_quantize_opts *opts,
                             slm_quantize_report *report, slm_err *err);
void slm_quantize_report_free(slm_quantize_report *r);

#endif
