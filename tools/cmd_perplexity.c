/* cmd_perplexity.c: `slm perplexity` — perplexity and bits per byte of a model on a text, and
 * with --kl-ref the KL divergence and top-1 agreement against a reference model (see
 * eval/perplexity.h for the method). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/file.h"
#include "core/timer.h"
#include "eval/perplexity.h"
#include "model/forward.h"
#include "tokenizer/tokenizer.h"

static const char usage[] =
    "usage: slm perplexity MODEL.gguf --data TEXT.txt [options]\n"
    "\n"
    "Perplexity over non-overlapping windows of the text (llama.cpp's method: each window starts\n"
    "from BOS, the second half of each window is scored), and bits per byte. With --kl-ref, the\n"
    "reference model (e.g. the F32 original of a quantized model) runs on the same windows and the\n"
    "mean KL(ref || model) and top-1 agreement are reported.\n"
    "\n"
    "  --data FILE        the text\n"
    "  --ctx N            window length in tokens                     [512]\n"
    "  --kl-ref REF.gguf  a reference model with the same vocabulary\n"
    "  --max-windows N    score at most N windows (0 = all)            [0]\n"
    "  --kv-type T        the model's KV cache, f32 or f16 (--kl-ref stays f32; give the\n"
    "                     same file as --kl-ref to measure what f16 costs)    [f32]\n"
    "  --threads N        threads (default: all cores)\n";

int cmd_perplexity(int argc, char **argv) {
    const char *model_path = NULL, *data = NULL, *ref_path = NULL;
    int ctx = 512, threads = 0, max_windows = 0;
    uint32_t kv_type = SLM_GGML_F32;
    slm_err kv_err;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--data")) data = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--ctx")) ctx = (int)cli_long(a, cli_value(argc, argv, &i), 4, 1 << 20);
        else if (!strcmp(a, "--kl-ref")) ref_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--kv-type")) {
            if (slm_kv_type_from_name(cli_value(argc, argv, &i), &kv_type, &kv_err) != SLM_OK) cli_fail(&kv_err, a);
        }
        else if (!strcmp(a, "--max-windows")) max_windows = (int)cli_long(a, cli_value(argc, argv, &i), 0, 1 << 30);
        else if (!strcmp(a, "--threads")) threads = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1024);
        else if (a[0] == '-' && a[1]) cli_die("perplexity: unknown option '%s' (see slm perplexity --help)", a);
        else if (!model_path) model_path = a;
        else cli_die("perplexity: one model only (got '%s' and '%s')", model_path, a);
    }
    if (!model_path || !data) cli_die("perplexity: usage: slm perplexity MODEL.gguf --data TEXT.txt");
    if (ctx % 2) cli_die("--ctx: must be even, got %d", ctx);
    slm_err err;
    slm_pool *pool = cli_pool(threads);
    cli_model cm;
    cli_open_model(model_path, &cm);
    slm_tokenizer *tok = cm.tok;
    slm_model *m = cm.m;
    slm_gguf *rg = NULL;
    slm_model *ref = NULL;
    if (ref_path) {
        if (!(rg = slm_gguf_open(ref_path, &err))) cli_fail(&err, "reading --kl-ref");
        if (!(ref = slm_model_load_mapped(rg, &err))) cli_fail(&err, ref_path);
    }
    char *text = NULL;
    size_t len = 0;
    if (slm_file_read_all(data, &text, &len, &err) != SLM_OK) cli_fail(&err, "--data");
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (slm_tokenizer_encode(tok, text, len, 0, &ids, &n_ids, &err) != SLM_OK) cli_fail(&err, "tokenizing --data");
    if (max_windows > 0 && n_ids > (size_t)max_windows * (size_t)ctx) n_ids = (size_t)max_windows * (size_t)ctx;
    int V = m->cfg.n_vocab;
    uint32_t *nbytes = calloc((size_t)V, sizeof *nbytes);
    if (!nbytes) cli_die("perplexity: out of memory");
    for (int v = 0; v < V && v < slm_tokenizer_n_vocab(tok); v++) {
        size_t bl = 0;
        slm_tokenizer_token_bytes(tok, v, &bl);
        nbytes[v] = (uint32_t)bl;
    }
    slm_ppl_result r;
    double t0 = slm_time_now();
    if (slm_perplexity_kv(m, ref, ids, n_ids, ctx, slm_tokenizer_bos(tok), nbytes, kv_type, pool, &r, &err) != SLM_OK)
        cli_fail(&err, "perplexity");
    double dt = slm_time_now() - t0;
    printf("model        %s\n", model_path);
    printf("text         %s: %zu bytes, %zu tokens; %d windows of %d, %ld tokens scored\n", data, len, n_ids,
           r.n_windows, ctx, r.n_scored);
    printf("perplexity   %.4f   (%.4f nats/token)\n", r.ppl, r.nll);
    printf("bits/byte    %.4f\n", r.bits_per_byte);
    if (r.has_ref) {
        printf("reference    %s: perplexity %.4f\n", ref_path, r.ref_ppl);
        printf("KL(ref||m)   %.6f nats/token\n", r.kl);
        printf("top-1 agree  %.2f%%\n", 100.0 * r.top1);
    }
    printf("time         %.1f s (%.0f tokens/s)\n", dt, (double)r.n_windows * ctx * (ref ? 2 : 1) / dt);
    free(nbytes);
    free(ids);
    free(text);
    slm_model_free(ref);
    slm_gguf_close(rg);
    cli_close_model(&cm);
    slm_pool_free(pool);
    return 0;
}
