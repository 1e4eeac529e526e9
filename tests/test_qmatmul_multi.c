/* test_qmatmul_multi.c: slm_qmatmul_multi (several products of one input, quantized once, one
 * dispatch) equals separate slm_qmatmul calls bit for bit — F32, F16, Q8_0, Q4_0, Q4_K and Q6_K
 * weights, one and many tokens, accumulating and not, 1, 2 and 3 threads — and falls back to
 * separate calls for mixed types.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "kernels/qmatmul.h"
#include "quant/quant.h"
#include "util/testutil.h"

enum { COLS = 256, N_MAX = 9 };

static void *make_rows(slm_rng *r, uint32_t type, int rows, size_t *row_bytes) {
    size_t rb = type == SLM_GGML_F32 ? COLS * sizeof(float)
              : type == SLM_GGML_F16 ? COLS * sizeof(uint16_t) : slm_quant_row_bytes(type, COLS);
    char *d = malloc(rb * (size_t)rows);
    assert_non_null(d);
    float f[COLS];
    for (int i = 0; i < rows; i++) {
        for (int k = 0; k < COLS; k++) f[k] = slm_rng_normal(r);
        char *row = d + rb * (size_t)i;
        if (type == SLM_GGML_F32) memcpy(row, f, sizeof f);
        else if (type == SLM_GGML_F16) slm_f32_to_f16_row((uint16_t *)(void *)row, f, COLS);
        else slm_quant_get(type)->from_float(f, row, COLS);
    }
    *row_bytes = rb;
    return d;
}

static void check(uint32_t t0, uint32_t t1, uint32_t t2) {
    slm_rng r;
    slm_rng_seed(&r, 17, t0 * 9 + t1 * 3 + t2);
    const int rows[3] = {80, 37, 37}; /* q, k, v-like; 37 leaves a partial tile */
    uint32_t types[3] = {t0, t1, t2};
    void *data[3];
    slm_qmat w[3];
    for (int k = 0; k < 3; k++) {
        size_t rb;
        data[k] = make_rows(&r, types[k], rows[k], &rb);
        w[k] = (slm_qmat){types[k], data[k], rows[k], COLS, rb};
    }
    int ld = rows[0] + rows[1] + rows[2];
    float x[N_MAX * COLS];
    for (int i = 0; i < N_MAX * COLS; i++) x[i] = slm_rng_normal(&r);
    const int ns[2] = {1, N_MAX};
    for (int ni = 0; ni < 2; ni++)
        for (int threads = 1; threads <= 3; threads++) {
            int n = ns[ni];
            slm_pool *pool = threads > 1 ? slm_pool_new(threads, tu_err()) : NULL;
            size_t sb = slm_qmatmul_scratch_bytes(n, COLS, threads);
            void *scratch = aligned_alloc(64, (sb + 63) / 64 * 64);
            float want[N_MAX * 154], got[N_MAX * 154];
            for (int i = 0; i < n * ld; i++) want[i] = got[i] = 0.25f * (float)(i % 13);
            /* the last product accumulates */
            slm_qmatmul(pool, want, ld, x, n, &w[0], 0, scratch);
            slm_qmatmul(pool, want + rows[0], ld, x, n, &w[1], 0, scratch);
            slm_qmatmul(pool, want + rows[0] + rows[1], ld, x, n, &w[2], 1, scratch);
            slm_qmm_out o[3] = {{got, ld, &w[0], 0}, {got + rows[0], ld, &w[1], 0},
                                {got + rows[0] + rows[1], ld, &w[2], 1}};
            slm_qmatmul_multi(pool, x, n, o, 3, scratch);
            if (memcmp(want, got, sizeof(float) * (size_t)n * ld) != 0)
                fail_msg("types %s/%s/%s n %d threads %d: multi differs from separate calls",
                         slm_ggml_type_name(t0), slm_ggml_type_name(t1), slm_ggml_type_name(t2), n, threads);
            free(scratch);
            slm_pool_free(pool);
        }
    for (int k = 0; k < 3; k++) free(data[k]);
}

static void test_multi_equals_separate(void **state) {
    (void)state;
    const uint32_t types[] = {SLM_GGML_F32, SLM_GGML_F16, SLM_GGML_Q8_0, SLM_GGML_Q4_0, SLM_GGML_Q4_K,
                              SLM_GGML_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) check(types[i], types[i], types[i]);
    check(SLM_GGML_Q4_K, SLM_GGML_Q4_K, SLM_GGML_Q6_K); /* mixed (Q4_K_M-style v): separate calls */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_equals_separate),
    };
    return cmocka_run_group_tests_name("qmatmul_multi", tests, NULL, NULL);
}
