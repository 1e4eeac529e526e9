/* traits.c: the traits tables of quant.h — one for the scalar references, one for the fastest
 * kernels this CPU runs — and the CPU check that picks between them.
 *
 * Both tables are constant; the choice is made on each call from __builtin_cpu_supports (a
 * few loads once libgcc's start-up code has filled its CPU model), so there is no mutable
 * state to initialise and nothing to race on.
 */
#include "quant/quant.h"

#include "gguf/gguf.h"
#include "quant/blocks.h"

#define T(type_, name_, bs_, bytes_, dot_type_, pre_, dot_)                                       \
    {type_, name_, bs_, bytes_, dot_type_, pre_##to_float, pre_##from_float, dot_}

static const slm_quant_traits ref_table[] = {
    T(SLM_GGML_F32, "f32", 1, 4, SLM_GGML_F32, slm_q_f32_, slm_q_f32_vec_dot),
    T(SLM_GGML_F16, "f16", 1, 2, SLM_GGML_F32, slm_q_f16_, slm_q_f16_vec_dot),
    T(SLM_GGML_BF16, "bf16", 1, 2, SLM_GGML_F32, slm_q_bf16_, slm_q_bf16_vec_dot),
    T(SLM_GGML_Q8_0, "q8_0", 32, 34, SLM_GGML_Q8_0, slm_q8_0_, slm_q8_0_vec_dot),
    T(SLM_GGML_Q4_0, "q4_0", 32, 18, SLM_GGML_Q8_0, slm_q4_0_, slm_q4_0_vec_dot),
    T(SLM_GGML_Q4_K, "q4_K", 256, 144, SLM_GGML_Q8_K, slm_q4_K_, slm_q4_K_vec_dot),
    T(SLM_GGML_Q6_K, "q6_K", 256, 210, SLM_GGML_Q8_K, slm_q6_K_, slm_q6_K_vec_dot),
    T(SLM_GGML_Q8_K, "q8_K", 256, 292, SLM_GGML_Q8_K, slm_q8_K_, NULL),
};

static const slm_quant_traits avx2_table[] = {
    T(SLM_GGML_F32, "f32", 1, 4, SLM_GGML_F32, slm_q_f32_, slm_q_f32_vec_dot_avx2),
    T(SLM_GGML_F16, "f16", 1, 2, SLM_GGML_F32, slm_q_f16_, slm_q_f16_vec_dot_avx2),
    T(SLM_GGML_BF16, "bf16", 1, 2, SLM_GGML_F32, slm_q_bf16_, slm_q_bf16_vec_dot_avx2),
    T(SLM_GGML_Q8_0, "q8_0", 32, 34, SLM_GGML_Q8_0, slm_q8_0_, slm_q8_0_vec_dot_avx2),
    T(SLM_GGML_Q4_0, "q4_0", 32, 18, SLM_GGML_Q8_0, slm_q4_0_, slm_q4_0_vec_dot_avx2),
    T(SLM_GGML_Q4_K, "q4_K", 256, 144, SLM_GGML_Q8_K, slm_q4_K_, slm_q4_K_vec_dot_avx2),
    T(SLM_GGML_Q6_K, "q6_K", 256, 210, SLM_GGML_Q8_K, slm_q6_K_, slm_q6_K_vec_dot_avx2),
    T(SLM_GGML_Q8_K, "q8_K", 256, 292, SLM_GGML_Q8_K, slm_q8_K_, NULL),
};

enum { N_TYPES = sizeof ref_table / sizeof ref_table[0] };

static const slm_quant_traits *find(const slm_quant_traits *table, uint32_t type) {
    for (int i = 0; i < N_TYPES; i++)
        if (table[i].type == type) return &table[i];
    return NULL;
}

int slm_cpu_has_avx2(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

const slm_quant_traits *slm_quant_get(uint32_t type) {
    return find(slm_cpu_has_avx2() ? avx2_table : ref_table, type);
}

const slm_quant_traits *slm_quant_get_ref(uint32_t type) { return find(ref_table, type); }

size_t slm_quant_row_bytes(uint32_t type, int64_t n) {
    const slm_quant_traits *t = find(ref_table, type);
    if (!t || n < 0 || n % t->block_size) return 0;
    return (size_t)(n / t->block_size) * t->block_bytes;
}
