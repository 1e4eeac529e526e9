/* cmd_prune.c: `slm prune` — magnitude pruning of a model's body matrices (global or per-layer
 * unstructured, or N:M), written in the same format; with --recover-data a classify model gets
 * a short recovery fine-tune with the masks re-applied after every step, and the validation
 * accuracy before pruning, after pruning and after recovery is reported (what pruning cost).
 * Parses, calls src/compress/prune and src/task/finetune, prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compress/prune.h"
#include "model/model.h"
#include "task/classify_model.h"
#include "task/finetune.h"
#include "task/task_data.h"
#include "tokenizer/tokenizer.h"

static const char usage[] =
    "usage: slm prune MODEL.gguf --sparsity S -o OUT.gguf [options]\n"
    "       slm prune MODEL.gguf --nm 2:4 -o OUT.gguf [options]\n"
    "\n"
    "Sets the smallest-magnitude weights of the body matrices (attention q/k/v/o, feed-forward\n"
    "gate/up/down) to zero; embeddings, norms and task heads are kept. The output has the same\n"
    "format with the zeros stored. Prints the sparsity reached per tensor and overall.\n"
    "\n"
    "  --sparsity S          share of weights set to zero, in [0, 1)                 [0.5]\n"
    "  --per-layer           each matrix its own threshold (default: one global threshold)\n"
    "  --nm N:M              semi-structured: keep N of every M consecutive inputs of a row\n"
    "  -o, --out FILE        the pruned model\n"
    "\n"
    "recovery (classify task models):\n"
    "  --recover-data DIR    fine-tune on DIR (train/val.jsonl) with the masks held; reports the\n"
    "                        validation accuracy before pruning, after pruning and after recovery\n"
    "  --recover-steps N     optimizer steps                                          [100]\n"
    "  --lr X                learning rate                                            [1e-4]\n"
    "  --batch B             examples per step                                        [16]\n"
    "  --threads N           threads (default: all cores)\n"
    "  --quiet               no per-tensor lines\n";

static void print_report(const slm_prune_report *r, int quiet) {
    if (!quiet)
        for (int i = 0; i < r->n_tensors; i++)
            printf("  %-28s %10llu weights  sparsity %.4f\n", r->tensors[i].name, (unsigned long long)r->tensors[i].n,
                   r->tensors[i].n ? (double)r->tensors[i].zeros / (double)r->tensors[i].n : 0.0);
    printf("overall: %llu of %llu weights zero in %d tensors: sparsity %.4f\n", (unsigned long long)r->zeros,
           (unsigned long long)r->n, r->n_tensors, r->n ? (double)r->zeros / (double)r->n : 0.0);
}

static int recover(const char *in, const char *out, const slm_prune_opts *po, const char *dir, int steps, float lr,
                   int batch, int threads, int quiet) {
    slm_err err;
    slm_pool *pool = cli_pool(threads);
    slm_gguf *g = slm_gguf_open(in, &err);
    if (!g) cli_fail(&err, in);
    const slm_gguf_kv *task = slm_gguf_find_kv(g, "slm.task");
    if (!task || task->type != SLM_GGUF_STRING || !slm_gguf_str_eq(task->v.str, "classify"))
        cli_die("prune: --recover-data needs a classify task model (%s has no slm.task = classify)", in);
    uint32_t mt;
    if (slm_gguf_get_u32(g, "slm.max_tokens", &mt, &err) != SLM_OK) cli_fail(&err, in);
    slm_tokenizer *tok = slm_tokenizer_load(g, &err);
    if (!tok) cli_fail(&err, in);
    slm_task_data data;
    if (slm_task_data_load(dir, &data, &err) != SLM_OK) cli_fail(&err, "--recover-data");
    slm_finetune_opts o;
    slm_finetune_opts_default(&o);
    o.steps = steps;
    o.batch = batch;
    o.max_len = (int)mt - 2;
    o.lr = lr;
    o.lr_min = lr * 0.1f;
    o.warmup = 0;
    o.eval_every = steps;
    char *tmpl; /* the texts laid out as the model was trained on them */
    if (slm_classify_template_read(g, &tmpl, &err) != SLM_OK || slm_task_data_set_template(&data, tmpl, &err) != SLM_OK)
        cli_fail(&err, in);
    free(tmpl);
    if (slm_task_data_tokenize(&data, tok, o.max_len, &err) != SLM_OK) cli_fail(&err, "tokenizing --recover-data");
    slm_model *base = slm_model_load(g, &err);
    if (!base) cli_fail(&err, in);
    slm_model *m = slm_finetune_body_from(base, &err);
    slm_model_free(base);
    if (!m) cli_fail(&err, in);
    slm_finetune *t = slm_finetune_new(m, tok, &data, &o, pool, &err);
    if (!t) cli_fail(&err, "recovery");
    if (slm_finetune_load_head(t, g, &err) != SLM_OK) cli_fail(&err, in);
    double l0, a0, l1, a1, l2, a2;
    if (slm_finetune_evaluate(t, &data.val, 0, &l0, &a0, &err) != SLM_OK) cli_fail(&err, "validation");
    uint8_t *mask = malloc(m->n_params);
    if (!mask) cli_die("out of memory");
    slm_prune_report rep;
    if (slm_prune_model(m, po, mask, &rep, &err) != SLM_OK) cli_fail(&err, "prune");
    print_report(&rep, quiet);
    if (slm_finetune_evaluate(t, &data.val, 0, &l1, &a1, &err) != SLM_OK) cli_fail(&err, "validation");
    slm_finetune_set_mask(t, mask);
    if (slm_finetune_run(t, &err) != SLM_OK) cli_fail(&err, "recovery");
    if (slm_finetune_evaluate(t, &data.val, 0, &l2, &a2, &err) != SLM_OK) cli_fail(&err, "validation");
    if (slm_finetune_save(t, out, &err) != SLM_OK) cli_fail(&err, out);
    printf("validation accuracy: %.4f before pruning, %.4f after pruning (%+.4f), %.4f after %d recovery steps "
           "(%+.4f vs before); loss %.4f / %.4f / %.4f\n",
           a0, a1, a1 - a0, a2, steps, a2 - a0, l0, l1, l2);
    printf("wrote %s\n", out);
    slm_prune_report_free(&rep);
    free(mask);
    slm_finetune_free(t);
    slm_model_free(m);
    slm_task_data_free(&data);
    slm_tokenizer_free(tok);
    slm_gguf_close(g);
    slm_pool_free(pool);
    return 0;
}

int cmd_prune(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *rdir = NULL;
    slm_prune_opts po = {.sparsity = 0.5f};
    int steps = 100, batch = 16, threads = 0, quiet = 0;
    float lr = 1e-4f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--sparsity")) po.sparsity = (float)cli_double(a, cli_value(argc, argv, &i), 0, 0.9999);
        else if (!strcmp(a, "--per-layer")) po.per_layer = 1;
        else if (!strcmp(a, "--nm")) {
            const char *v = cli_value(argc, argv, &i);
            if (sscanf(v, "%d:%d", &po.nm_n, &po.nm_m) != 2 || po.nm_n <= 0 || po.nm_n >= po.nm_m || po.nm_m > 64)
                cli_die("prune: --nm '%s' is not N:M with 0 < N < M <= 64 (e.g. 2:4)", v);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--recover-data")) rdir = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--recover-steps")) steps = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1 << 24);
        else if (!strcmp(a, "--lr")) lr = (float)cli_double(a, cli_value(argc, argv, &i), 1e-9, 1);
        else if (!strcmp(a, "--batch")) batch = (int)cli_long(a, cli_value(argc, argv, &i), 1, 4096);
        else if (!strcmp(a, "--threads")) threads = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1024);
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (a[0] == '-' && a[1]) cli_die("prune: unknown option '%s' (see slm prune --help)", a);
        else if (!in) in = a;
        else cli_die("prune: one model at a time ('%s' and '%s')", in, a);
    }
    if (!in || !out) cli_die("prune: MODEL.gguf and -o OUT.gguf are required (see slm prune --help)");
    if (rdir) return recover(in, out, &po, rdir, steps, lr, batch, threads, quiet);
    slm_err err;
    slm_prune_report rep;
    if (slm_prune_file(in, out, &po, &rep, &err) != SLM_OK) cli_fail(&err, "prune");
    print_report(&rep, quiet);
    printf("wrote %s\n", out);
    slm_prune_report_free(&rep);
    return 0;
}
