/* cmd_bench.c: `slm bench` — prompt processing and generation speed of a model (a GGUF, or a
 * random-weight model of a named shape in a chosen block format), and the machine's limits
 * measured in the same run (STREAM triad bandwidth, peak sgemm), each speed shown as a fraction
 * of the limit that bounds it. Medians over repetitions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cli.h"
#include "core/timer.h"
#include "gguf/gguf.h"
#include "model/forward.h"
#include "model/model.h"

static const char usage[] =
    "usage: slm bench MODEL.gguf [options]\n"
    "       slm bench --shape 15M|110M [--type f32|f16|bf16|q8_0|q4_0|q4_k|q6_k] [options]\n"
    "\n"
    "Measures prompt processing (one batch of P tokens) and generation (N tokens one at a time)\n"
    "speed, time to first token, peak memory, and the machine's limits in the same run: memory\n"
    "bandwidth (STREAM triad over 384 MB) and peak sgemm. Generation is shown as a fraction of\n"
    "bandwidth (weight bytes per token x tok/s), prompt processing as a fraction of peak sgemm.\n"
    "\n"
    "  --threads N      threads (default: all cores)\n"
    "  -p N             prompt tokens                                 [512]\n"
    "  -n N             generated tokens                              [128]\n"
    "  --reps N         repetitions (medians are reported)            [3]\n"
    "  --shape NAME     a random-weight llama of shape 15M or 110M instead of a file\n"
    "  --type T         the shape's matrix format                     [q8_0]\n"
    "  --kv-type T      KV cache element type, f32 or f16             [f32]\n"
    "  --no-limits      skip measuring bandwidth and peak sgemm\n";

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL, *shape = NULL, *type_name = "q8_0";
    int threads = 0, P = 512, N = 128, reps = 3, limits = 1;
    uint32_t kv_type = SLM_GGML_F32;
    slm_err kv_err;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--threads")) threads = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1024);
        else if (!strcmp(a, "-p")) P = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1 << 16);
        else if (!strcmp(a, "-n")) N = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1 << 16);
        else if (!strcmp(a, "--reps")) reps = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1000);
        else if (!strcmp(a, "--shape")) shape = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--type")) type_name = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--kv-type")) {
            if (slm_kv_type_from_name(cli_value(argc, argv, &i), &kv_type, &kv_err) != SLM_OK) cli_fail(&kv_err, a);
        } else if (!strcmp(a, "--no-limits")) limits = 0;
        else if (a[0] == '-' && a[1]) cli_die("bench: unknown option '%s' (see slm bench --help)", a);
        else if (!model_path) model_path = a;
        else cli_die("bench: one model only (got '%s' and '%s')", model_path, a);
    }
    if (!model_path == !shape) cli_die("bench: give a MODEL.gguf or --shape NAME (see slm bench --help)");
    slm_err err;
    slm_pool *pool = cli_pool(threads);
    char tmp_path[256] = "";
    if (shape) {
        int type = slm_ggml_type_from_name(type_name);
        if (type < 0) cli_die("bench: unknown --type '%s'", type_name);
        snprintf(tmp_path, sizeof tmp_path, "/tmp/slm-bench-%s-%s-%d.gguf", shape, type_name, (int)getpid());
        if (slm_bench_write_shape(shape, (uint32_t)type, P + N, tmp_path, &err) != SLM_OK) cli_fail(&err, "--shape");
        model_path = tmp_path;
    }
    slm_gguf *g = slm_gguf_open(model_path, &err);
    if (!g) cli_fail(&err, "reading model");
    slm_model *m = slm_model_load_mapped(g, &err);
    if (!m) cli_fail(&err, model_path);
    const slm_model_config *cfg = &m->cfg;
    if (P + N > cfg->ctx_len)
        cli_die("bench: -p %d + -n %d exceeds the model's context of %d tokens", P, N, cfg->ctx_len);
    slm_ctx *c = slm_ctx_new_outputs(cfg, P, 1, 0, pool, &err);
    slm_kv_cache *kv = c ? slm_kv_cache_new_type(cfg, 1, P + N, kv_type, &err) : NULL;
    if (!c || !kv) cli_fail(&err, "bench");
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(P + N)), *pos = malloc(sizeof(int32_t) * (size_t)(P + N));
    int32_t *seq = calloc((size_t)(P + N), sizeof(int32_t));
    int8_t *out = calloc((size_t)P, 1);
    double *pp = malloc(sizeof(double) * (size_t)reps), *tg = malloc(sizeof(double) * (size_t)reps);
    if (!tok || !pos || !seq || !out || !pp || !tg) cli_die("bench: out of memory");
    for (int i = 0; i < P + N; i++) {
        tok[i] = (int32_t)(((uint64_t)i * 7919u + 13u) % (uint64_t)cfg->n_vocab);
        pos[i] = i;
    }
    out[P - 1] = 1;
    { /* warm-up: page the weights in */
        slm_batch b = {P < 16 ? P : 16, tok, pos, seq, NULL};
        int8_t o16[16] = {0};
        o16[b.n_tokens - 1] = 1;
        b.output = o16;
        if (slm_model_forward(m, c, kv, &b, &err) != SLM_OK) cli_fail(&err, "bench");
    }
    for (int r = 0; r < reps; r++) {
        slm_batch b = {P, tok, pos, seq, out};
        double t0 = slm_time_now();
        if (slm_model_forward(m, c, kv, &b, &err) != SLM_OK) cli_fail(&err, "bench");
        pp[r] = slm_time_now() - t0;
        t0 = slm_time_now();
        for (int i = 0; i < N; i++) {
            slm_batch b1 = {1, tok + i, pos + i, seq, NULL};
            if (slm_model_forward(m, c, kv, &b1, &err) != SLM_OK) cli_fail(&err, "bench");
        }
        tg[r] = slm_time_now() - t0;
    }
    double pp_s = median(pp, reps), tg_s = median(tg, reps);
    double pp_tps = P / pp_s, tg_tps = N / tg_s;
    uint64_t wbytes = slm_model_weight_bytes(m);
    /* per generated token every matrix is read once, except the embedding (one row) when untied */
    uint64_t streamed = wbytes;
    if (m->mapped && !cfg->tied_output)
        streamed -= (uint64_t)m->mapped->token_embd.rows * m->mapped->token_embd.row_bytes;
    int hd = slm_model_head_dim(cfg);
    double qd = (double)hd * cfg->n_heads, kvd = (double)hd * cfg->n_kv_heads, D = cfg->dim, F = cfg->hidden_dim;
    double layer_macs = D * (qd + 2 * kvd) + qd * D + 3 * D * F;
    double flops_tok = 2.0 * cfg->n_layers * (layer_macs + 2.0 * qd * (P / 2.0)) + 2.0 * cfg->n_vocab * D / P;
    printf("model      %s (%s, %d layers, dim %d, vocab %d), %.1f MB of weights\n",
           shape ? shape : model_path, slm_arch_name(cfg->arch), cfg->n_layers, cfg->dim, cfg->n_vocab,
           wbytes / 1e6);
    printf("threads    %d\n", slm_pool_size(pool));
    printf("kv cache   %s, %.1f MB\n", kv_type == SLM_GGML_F16 ? "f16" : "f32", slm_kv_cache_bytes(kv) / 1e6);
    printf("pp%-5d    %9.1f tok/s   (median of %d; time to first token %.1f ms)\n", P, pp_tps, reps, pp_s * 1e3);
    printf("tg%-5d    %9.1f tok/s   (median of %d; %.2f ms/token)\n", N, tg_tps, reps, tg_s / N * 1e3);
    printf("peak RSS   %9.1f MB\n", slm_peak_rss_kb() / 1024.0);
    if (limits) {
        double bw = 0, peak = 0;
        if (slm_bench_membw(pool, (size_t)384 << 20, 5, &bw, &err) != SLM_OK) cli_fail(&err, "membw");
        if (slm_bench_sgemm(pool, 1024, 3, &peak, &err) != SLM_OK) cli_fail(&err, "sgemm");
        double gen_bw = (double)streamed * tg_tps / 1e9, pp_gf = flops_tok * pp_tps / 1e9;
        printf("limits     memory bandwidth %.1f GB/s (STREAM triad, 384 MB), peak sgemm %.1f GFLOP/s\n", bw, peak);
        printf("generation %.2f GB/s of weights = %.0f%% of bandwidth (%.1f MB per token)\n", gen_bw,
               100.0 * gen_bw / bw, streamed / 1e6);
        printf("prompt     %.1f GFLOP/s = %.0f%% of peak sgemm (%.1f MFLOP per token)\n", pp_gf,
               100.0 * pp_gf / peak, flops_tok / 1e6);
    }
    free(tok), free(pos), free(seq), free(out), free(pp), free(tg);
    slm_kv_cache_free(kv);
    slm_ctx_free(c);
    slm_model_free(m);
    slm_gguf_close(g);
    slm_pool_free(pool);
    if (tmp_path[0]) unlink(tmp_path);
    return 0;
}
