/* gemm.h: quantized matrix products over tiles of weight rows x activation rows — the kernels
 * prompt processing (and generation, with one token) runs for Q8_0 and Q4_0 weights.
 *
 * y[t*ldy + r] = (accumulate ? y[t*ldy + r] : 0) + Σ_k W[r,k]·X[t,k] for r < nr, t < nt, where
 * W is nr rows of the weight type (row stride w_stride bytes) and X is nt rows of Q8_0
 * activations (row stride x_stride bytes), cols elements each (a multiple of 32).
 *
 * Why a tile kernel: a vec_dot per (row, token) reloads and unpacks a weight block for every
 * token; the tile kernel unpacks it once and reuses it across several tokens (and each activation
 * block across several rows), as llamafile's tinyBLAS does.
 *
 * Numerics (the same in the scalar reference, gemm_ref.c, and the SIMD kernels, gemm_avx2.c, so
 * they agree bit for bit): per 32-element block, 8 exact int32 partial sums (lane l = elements
 * 4l..4l+3); lane l's f32 accumulator becomes fma(d_w·d_x, (float)partial_l, acc_l) block after
 * block; the 8 lanes are summed as ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)). Every output element is
 * computed this way whatever the tile shape, so results do not depend on nr, nt or threads.
 * Precondition (SIMD Q8_0 only; the Q8_0 quantizer guarantees it): activation values are in
 * [-127, 127] (weights may hold any int8, -128 included).
 */
#ifndef SLM_QUANT_GEMM_H
#define SLM_QUANT_GEMM_H

#include <stddef.h>
#include <stdint.h>

typedef void (*slm_qgemm_fn)(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                             size_t x_stride, float *y, size_t ldy, int accumulate);

/* The fastest tile kernel this CPU runs for weights of type (activations Q8_0); NULL when the
 * type has none (then use the traits' vec_dot). */
slm_qgemm_fn slm_qgemm_get(uint32_t type);
/* The scalar reference of the same (NULL when none). */
slm_qgemm_fn slm_qgemm_get_ref(uint32_t type);

void slm_qgemm_q8_0_ref(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                        size_t x_stride, float *y, size_t ldy, int accumulate);
void slm_qgemm_q4_0_ref(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                        size_t x_stride, float *y, size_t ldy, int accumulate);
/* AVX2 (gemm_avx2.c); only called when the CPU has AVX2+FMA+F16C. */
void slm_qgemm_q8_0_avx2(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                         size_t x_stride, float *y, size_t ldy, int accumulate);
void slm_qgemm_q4_0_avx2(int cols, int nr, int nt, const void *w, size_t w_stride, const void *x,
                         size_t x_stride, float *y, size_t ldy, int accumulate);
/* Q8_0 quantization of activation rows (n a multiple of 32), byte-identical to the reference
 * slm_q8_0_from_float for finite input; AVX2, only called when the CPU has it. */
void slm_quantize_q8_0_avx2(const float *x, void *y, int64_t n);

#endif
