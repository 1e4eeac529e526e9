/* bench_quant.c: speed of the block formats — per weight type, vec_dot over a 4096-long row ×
 * 2048 rows (one activation row, quantized once to the vec_dot_type) for the scalar reference
 * and the AVX2 kernel, in GB/s of weight bytes read and GFLOP/s (2 per weight); then the
 * reference quantizer's and dequantizer's speed in M elements/s. One line per figure.
 * Single thread; each figure is the best of several timed passes of at least 0.2 s.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"
#include "core/timer.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

enum { N = 4096, ROWS = 2048 };

static volatile float sink;

static double time_dots(const slm_quant_traits *t, const void *w, size_t row_bytes, const void *act) {
    double best = 1e30;
    for (int pass = 0; pass < 3; pass++) {
        int reps = 0;
        double t0 = slm_time_now(), el;
        do {
            for (int r = 0; r < ROWS; r++) {
                float s;
                t->vec_dot(N, &s, (const char *)w + (size_t)r * row_bytes, act);
                sink += s;
            }
            reps++;
            el = slm_time_now() - t0;
        } while (el < 0.2);
        if (el / reps < best) best = el / reps;
    }
    return best;
}

int main(void) {
    const uint32_t types[] = {SLM_GGML_F32, SLM_GGML_F16, SLM_GGML_BF16, SLM_GGML_Q8_0,
                              SLM_GGML_Q4_0, SLM_GGML_Q4_K, SLM_GGML_Q6_K};
    slm_rng rng;
    slm_rng_seed(&rng, 1, 0);
    float *x = malloc((size_t)N * ROWS * sizeof *x), *a = malloc(N * sizeof *a);
    if (!x || !a) return 1;
    for (size_t i = 0; i < (size_t)N * ROWS; i++) x[i] = 0.02f * slm_rng_normal(&rng);
    for (int i = 0; i < N; i++) a[i] = slm_rng_normal(&rng);
    printf("bench_quant: vec_dot of a %d-long row x %d rows, 1 thread, AVX2 %s\n", N, ROWS,
           slm_cpu_has_avx2() ? "yes" : "no (fast = scalar)");
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const slm_quant_traits *ref = slm_quant_get_ref(types[k]), *fast = slm_quant_get(types[k]);
        const slm_quant_traits *vt = slm_quant_get_ref(ref->vec_dot_type);
        size_t row_bytes = slm_quant_row_bytes(types[k], N);
        void *w = malloc(row_bytes * ROWS), *act = malloc(slm_quant_row_bytes(vt->type, N));
        float *back = malloc((size_t)N * ROWS * sizeof *back);
        if (!w || !act || !back) return 1;
        double t0 = slm_time_now();
        ref->from_float(x, w, (int64_t)N * ROWS);
        double tq = slm_time_now() - t0;
        t0 = slm_time_now();
        ref->to_float(w, back, (int64_t)N * ROWS);
        double td = slm_time_now() - t0;
        vt->from_float(a, act, N);
        double bytes = (double)row_bytes * ROWS, flops = 2.0 * N * ROWS;
        double ts = time_dots(ref, w, row_bytes, act), tf = time_dots(fast, w, row_bytes, act);
        printf("%-5s vec_dot scalar   %7.2f GB/s  %7.2f GFLOP/s\n", ref->name, bytes / ts / 1e9, flops / ts / 1e9);
        printf("%-5s vec_dot avx2     %7.2f GB/s  %7.2f GFLOP/s  (%.1fx scalar)\n", ref->name,
               bytes / tf / 1e9, flops / tf / 1e9, ts / tf);
        printf("%-5s quantize         %7.1f M elements/s\n", ref->name, (double)N * ROWS / tq / 1e6);
        printf("%-5s dequantize       %7.1f M elements/s\n", ref->name, (double)N * ROWS / td / 1e6);
        free(w), free(act), free(back);
    }
    free(x), free(a);
    return 0;
}
