/* cmd_distill.c: `slm distill` — train a classify student on a teacher's soft labels: the
 * teacher (any classify model, quantized or not) labels every training example once, then the
 * student (new --preset, or --init base) trains with alpha·T²·KL + (1-alpha)·CE. Parses, calls
 * src/task (distill.h, finetune.h), prints the student's and the teacher's validation accuracy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train_args.h"
#include "kernels/blas_threads.h"
#include "model/model.h"
#include "task/classifier.h"
#include "task/distill.h"
#include "task/finetune.h"
#include "task/task_data.h"
#include "tokenizer/tokenizer.h"

static const char usage[] =
    "usage: slm distill --teacher T.gguf --data DIR (--preset NAME | --init BASE.gguf) -o OUT.gguf [options]\n"
    "\n"
    "Trains a classify student on the teacher's probabilities (computed once per training\n"
    "example) at temperature T mixed with the hard labels: loss = alpha·T²·KL(teacher_T ||\n"
    "student_T) + (1 - alpha)·CE. A --preset student uses the teacher's tokenizer.\n"
    "\n"
    "  --temperature T     softening of both distributions                        [2]\n"
    "  --alpha A           weight of the soft term, in [0, 1]                     [0.5]\n"
    "  --steps N, --epochs X, --batch B, --lr X, --max-len N, --seed N   as slm finetune\n"
    "  --threads N         threads (default: all cores)\n"
    "  --quiet             no summary\n"
    "Generate-task distillation is not available yet.\n";

int cmd_distill(int argc, char **argv) {
    const char *teacher_path = NULL, *dir = NULL, *preset = NULL, *init = NULL, *out = NULL;
    float T = 2.0f, alpha = 0.5f;
    int threads = 0, quiet = 0, max_len_given = 0;
    slm_finetune_opts o;
    slm_finetune_opts_default(&o);
    const train_args ta = {.steps = &o.steps, .epochs = &o.epochs, .batch = &o.batch, .max_len = &o.max_len,
                           .max_len_min = 1, .max_len_given = &max_len_given, .lr = &o.lr, .seed = &o.seed,
                           .threads = &threads, .quiet = &quiet};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (train_args_parse(&ta, argc, argv, &i)) {
        } else if (!strcmp(a, "--teacher")) teacher_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--data")) dir = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--preset")) preset = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--init")) init = cli_value(argc, argv, &i);
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--temperature")) T = (float)cli_double(a, cli_value(argc, argv, &i), 1e-3, 100);
        else if (!strcmp(a, "--alpha")) alpha = (float)cli_double(a, cli_value(argc, argv, &i), 0, 1);
        else cli_die("distill: unknown option '%s' (see slm distill --help)", a);
    }
    if (!teacher_path || !dir || !out) cli_die("distill: --teacher, --data and -o are required (see slm distill --help)");
    if ((preset != NULL) == (init != NULL)) cli_die("distill: give one of --preset NAME or --init BASE.gguf");
    if (o.lr_min > o.lr) o.lr_min = o.lr;
    slm_err err;
    slm_blas_set_threads(1);
    slm_pool *pool = slm_pool_new(threads, &err);
    if (!pool) cli_fail(&err, "threads");
    slm_classifier *teacher = slm_classifier_load(teacher_path, pool, &err);
    if (!teacher) cli_fail(&err, "--teacher");
    if (!max_len_given) o.max_len = slm_classifier_max_tokens(teacher) - 2;
    slm_task_data data;
    if (slm_task_data_load(dir, &data, &err) != SLM_OK) cli_fail(&err, "reading --data");
    float *probs = malloc(sizeof(float) * (size_t)data.train.n * (size_t)data.n_labels);
    if (!probs) cli_die("out of memory");
    if (slm_distill_teacher_probs(teacher, &data, probs, &err) != SLM_OK) cli_fail(&err, "distill");
    slm_gguf *src = slm_gguf_open(init ? init : teacher_path, &err);
    if (!src) cli_fail(&err, init ? init : teacher_path);
    slm_tokenizer *tok = slm_tokenizer_load(src, &err);
    if (!tok) cli_fail(&err, "tokenizer");
    if (slm_task_data_tokenize(&data, tok, o.max_len, &err) != SLM_OK) cli_fail(&err, "tokenizing --data");
    slm_model *m;
    if (init) {
        slm_model *base = slm_model_load(src, &err);
        if (!base) cli_fail(&err, init);
        m = slm_finetune_body_from(base, &err);
        slm_model_free(base);
        if (!m) cli_fail(&err, init);
    } else {
        slm_model_config cfg;
        if (slm_model_preset(preset, slm_tokenizer_n_vocab(tok), o.max_len + 2, &cfg, &err) != SLM_OK)
            cli_fail(&err, "--preset");
        if (!(m = slm_model_new(&cfg, &err))) cli_fail(&err, "student");
        slm_model_init_random(m, o.seed);
    }
    slm_finetune *t = slm_finetune_new(m, tok, &data, &o, pool, &err);
    if (!t) cli_fail(&err, "distill");
    if (slm_finetune_set_teacher(t, probs, T, alpha, &err) != SLM_OK) cli_fail(&err, "distill");
    if (!quiet)
        fprintf(stderr, "distill: student %.2fM parameters, %d steps, T %g, alpha %g\n", (double)m->n_params / 1e6,
                slm_finetune_steps(t), T, alpha);
    if (slm_finetune_run(t, &err) != SLM_OK) cli_fail(&err, "distill");
    if (slm_finetune_save(t, out, &err) != SLM_OK) cli_fail(&err, out);
    /* the teacher's validation accuracy, for comparison */
    int n = data.val.n, K = data.n_labels, correct = 0;
    size_t *lens = malloc(sizeof(size_t) * (size_t)n);
    float *pv = malloc(sizeof(float) * (size_t)n * (size_t)K);
    if (!lens || !pv) cli_die("out of memory");
    for (int i = 0; i < n; i++) lens[i] = strlen(data.val.text[i]);
    if (slm_classifier_predict(teacher, (const char *const *)data.val.text, lens, n, pv, &err) != SLM_OK)
        cli_fail(&err, "teacher");
    for (int i = 0; i < n; i++) {
        int am = 0;
        for (int k = 1; k < K; k++) am = pv[(size_t)i * K + k] > pv[(size_t)i * K + am] ? k : am;
        correct += !strcmp(slm_classifier_label(teacher, am), data.labels[data.val.label[i]]);
    }
    printf("student validation accuracy %.4f (teacher %.4f); wrote %s\n", slm_finetune_val_acc(t),
           (double)correct / n, out);
    free(lens);
    free(pv);
    free(probs);
    slm_finetune_free(t);
    slm_model_free(m);
    slm_tokenizer_free(tok);
    slm_gguf_close(src);
    slm_task_data_free(&data);
    slm_classifier_free(teacher);
    slm_pool_free(pool);
    return 0;
}
