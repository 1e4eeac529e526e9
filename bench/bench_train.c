/* bench_train.c: training speed of the transformer — forward + loss + backward of the 15M shape
 * (dim 288, 6 layers, 6 heads, hidden 768, vocab 32000, batch 8 x 256 = 2048 tokens), in tokens/s
 * and achieved GFLOP/s, next to the machine's peak sgemm GFLOP/s measured in the same run.
 *
 * FLOPs counted per token per step (forward + backward = 3x forward):
 *   matmuls   6 · P_mm, P_mm = L·(D·(qd + 2·kvd) + qd·D + 3·D·F) + V·D   (projections + lm head;
 *             the embedding lookup is not a product)
 *   attention 6 · L · D · (T + 1): QK^T and PV over the (t + 1) visible keys of a causal row,
 *             2·2·D·(T+1)/2 forward, times 3 for forward + backward (work the implementation
 *             redoes — the backward recomputes the probabilities — is not counted)
 * Figures are medians over ITERS timed steps after one warm-up step, one line per figure. A last
 * line gives single-sequence decoding speed (one token per forward through the KV cache).
 *
 * Threads: the library's pool gets all of them and splits every product itself; OpenBLAS runs one
 * thread per call (the arrangement workspace.c explains). The peak is measured with OpenBLAS
 * using all threads on one big product.
 *
 * usage: bench_train [threads (default: all cores)] [iters (default 5)] [vocab (default 32000)]
 *                    [BLAS threads during the model (default 1)]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "kernels/blas_threads.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double peak_sgemm(int n, int reps) {
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) return 0;
    for (int i = 0; i < n * n; i++) {
        a[i] = (float)((i * 7) % 13) / 13.0f;
        b[i] = (float)((i * 5) % 11) / 11.0f;
    }
    double t[16];
    for (int r = 0; r <= reps; r++) {
        double t0 = slm_time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (r > 0) t[r - 1] = slm_time_now() - t0; /* the first call warms up */
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n / median(t, reps) / 1e9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    int iters = argc > 2 ? atoi(argv[2]) : 5;
    int vocab = argc > 3 ? atoi(argv[3]) : 32000;
    int blas_threads = argc > 4 ? atoi(argv[4]) : 1;
    if (threads <= 0) threads = slm_cpu_count();
    if (iters < 1 || iters > 15) iters = 5;
    const int B = 8, T = 256, n = B * T;
    slm_err err;
    slm_blas_set_threads(threads);
    slm_pool *pool = threads > 1 ? slm_pool_new(threads, &err) : NULL;

    double peak = peak_sgemm(2048, 5);
    printf("peak sgemm: %.1f GFLOP/s (2048^3 cblas_sgemm, %d threads)\n", peak, threads);
    slm_blas_set_threads(blas_threads > 0 ? blas_threads : threads);

    slm_model_config cfg;
    if (slm_model_preset("small", vocab, T, &cfg, &err) != SLM_OK) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    slm_model *m = slm_model_new(&cfg, &err);
    slm_ctx *c = m ? slm_ctx_new(&cfg, n, 1, pool, &err) : NULL;
    slm_kv_cache *kv = c ? slm_kv_cache_new(&cfg, B, T, &err) : NULL;
    float *grads = calloc(m ? m->n_params : 1, sizeof(float));
    int32_t *tok = malloc(sizeof(int32_t) * n), *pos = malloc(sizeof(int32_t) * n),
            *seq = malloc(sizeof(int32_t) * n), *tgt = malloc(sizeof(int32_t) * n);
    if (!kv || !grads || !tok || !pos || !seq || !tgt) {
        fprintf(stderr, "bench_train: %s\n", kv ? "out of memory" : err.msg);
        return 1;
    }
    slm_model_init_random(m, 1);
    slm_rng r;
    slm_rng_seed(&r, 2, 0);
    for (int i = 0; i < n; i++) {
        tok[i] = (int32_t)slm_rng_below(&r, (uint32_t)vocab);
        tgt[i] = (int32_t)slm_rng_below(&r, (uint32_t)vocab);
        seq[i] = i / T;
        pos[i] = i % T;
    }
    slm_batch b = {n, tok, pos, seq, NULL};

    int D = cfg.dim, L = cfg.n_layers, F = cfg.hidden_dim, hd = D / cfg.n_heads;
    int qd = hd * cfg.n_heads, kvd = hd * cfg.n_kv_heads;
    double p_mm = (double)L * ((double)D * (qd + 2 * kvd) + (double)qd * D + 3.0 * D * F) + (double)vocab * D;
    double flop_tok = 6.0 * p_mm + 6.0 * L * D * (T + 1.0);
    double flop_step = flop_tok * n;
    printf("model: small, %.2fM params (%.2fM in matmuls), vocab %d, batch %d x %d = %d tokens\n",
           m->n_params / 1e6, p_mm / 1e6, vocab, B, T, n);
    printf("flops per step: %.1f GFLOP (6*P_mm + 6*L*D*(T+1) per token)\n", flop_step / 1e9);

    double t_step[16], t_fwd[16], t_bwd[16];
    float loss = 0;
    for (int it = 0; it <= iters; it++) {
        double t0 = slm_time_now();
        if (slm_model_forward(m, c, kv, &b, &err) != SLM_OK) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 1;
        }
        int counted;
        loss = slm_model_loss(c, tgt, 1.0f, &counted);
        double t1 = slm_time_now();
        if (slm_model_backward(m, c, kv, &b, grads, &err) != SLM_OK) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 1;
        }
        double t2 = slm_time_now();
        if (it == 0) continue; /* warm-up */
        t_fwd[it - 1] = t1 - t0;
        t_bwd[it - 1] = t2 - t1;
        t_step[it - 1] = t2 - t0;
    }
    double step = median(t_step, iters), fwd = median(t_fwd, iters), bwd = median(t_bwd, iters);
    double gflops = flop_step / step / 1e9;
    printf("forward+loss: %.0f ms (median of %d)\n", fwd * 1e3, iters);
    printf("backward: %.0f ms\n", bwd * 1e3);
    printf("train step (fwd+bwd): %.0f ms, %.0f tok/s\n", step * 1e3, n / step);
    printf("achieved: %.1f GFLOP/s = %.0f%% of peak sgemm (loss %.4f, pool %d threads, BLAS %d)\n",
           gflops, 100.0 * gflops / peak, (double)loss, threads, slm_blas_threads());

    /* decoding: one sequence, one token per forward through the cache (inference workspace) */
    slm_ctx *dc = slm_ctx_new(&cfg, 1, 0, pool, &err);
    if (!dc) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    double t_dec[16];
    for (int it = 0; it < 3; it++) {
        double t0 = slm_time_now();
        int32_t t = 1, p = 0, s = 0;
        for (p = 0; p < T; p++) {
            slm_batch one = {1, &t, &p, &s, NULL};
            if (slm_model_forward(m, dc, kv, &one, &err) != SLM_OK) {
                fprintf(stderr, "bench_train: %s\n", err.msg);
                return 1;
            }
            t = (int32_t)((t * 31 + p) % vocab);
        }
        t_dec[it] = slm_time_now() - t0;
    }
    printf("decode: %.0f tok/s (one sequence, positions 0..%d, one token per forward)\n",
           T / median(t_dec, 3), T - 1);
    slm_ctx_free(dc);
    free(tok);
    free(pos);
    free(seq);
    free(tgt);
    free(grads);
    slm_kv_cache_free(kv);
    slm_ctx_free(c);
    slm_model_free(m);
    slm_pool_free(pool);
    return 0;
}
