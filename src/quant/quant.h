/* quant.h: GGUF's tensor block formats — F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, and Q8_K for
 * activations — their reference quantizers, dequantizers and dot products, behind one traits table.
 *
 * Block layouts are GGUF's exact ones (llama.cpp's ggml-common.h), so files are interchangeable.
 * The scalar reference quantizer of each type is the specification; SIMD dot products (AVX2+FMA,
 * chosen at run time by CPU check) are tested against the scalar ones. A dot product multiplies a
 * row of weights of type T with a row of activations already quantized to T's vec_dot_type
 * (Q8_0 for Q8_0/Q4_0, Q8_K for the K-quants, F32 for F32/F16/BF16), which is how prompt
 * processing and generation read weights straight from the mmap.
 */
#ifndef SLM_QUANT_QUANT_H
#define SLM_QUANT_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t type;            /* slm_ggml_type */
    const char *name;         /* "q4_0", ... */
    int block_size;           /* elements per block */
    size_t block_bytes;       /* bytes per block */
    uint32_t vec_dot_type;    /* the type the other operand of vec_dot must be in */
    /* dst[0..n) = the values of n elements (n a multiple of block_size). */
    void (*to_float)(const void *src, float *dst, int64_t n);
    /* Quantizes n floats (n a multiple of block_size) into blocks of this type. */
    void (*from_float)(const float *src, void *dst, int64_t n);
    /* *s = sum over n elements of x[i]·y[i], x of this type, y of vec_dot_type. */
    void (*vec_dot)(int n, float *s, const void *x, const void *y);
} slm_quant_traits;

/* The fastest implementation this CPU runs; NULL for a type without one. */
const slm_quant_traits *slm_quant_get(uint32_t type);
/* The scalar reference implementation (the specification the fast one is tested against). */
const slm_quant_traits *slm_quant_get_ref(uint32_t type);

/* Bytes of a row of n elements of type (n a multiple of the block size), 0 if it is not. */
size_t slm_quant_row_bytes(uint32_t type, int64_t n);

/* 1 when this CPU has AVX2 and FMA (and F16C) and the fast kernels use them. */
int slm_cpu_has_avx2(void);

#endif
