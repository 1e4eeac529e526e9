/* cmd_distill.c: `slm distill` — train a student on a teacher's distributions with
 * alpha·T²·KL + (1-alpha)·CE. --task classify (the default): the teacher (any classify model,
 * quantized or not) labels every training example once, then the student (new --preset, or
 * --init base) trains (distill.h, finetune.h); prints the student's and the teacher's validation
 * accuracy. --task generate: the teacher (any language model slm runs, quantized or not) runs
 * beside the student on every batch of SFT data, the loss on completion tokens only (sft.h);
 * prints both validation losses per completion token. Parses, calls src/task, prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train_args.h"
#include "core/timer.h"
#include "model/model.h"
#include "task/classifier.h"
#include "task/distill.h"
#include "task/finetune.h"
#include "task/sft.h"
#include "task/sft_data.h"
#include "task/task_data.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

static const char usage[] =
    "usage: slm distill [--task classify|generate] --teacher T.gguf --data DIR (--preset NAME | --init BASE.gguf)\n"
    "                   -o OUT.gguf [options]\n"
    "\n"
    "Trains a student on the teacher's distributions at temperature T mixed with the true targets:\n"
    "loss = alpha·T²·KL(teacher_T || student_T) + (1 - alpha)·CE. A --preset student uses the\n"
    "teacher's tokenizer; an --init base must have the same one.\n"
    "\n"
    "  --task classify     (default) the teacher is a classify model; its probabilities are computed\n"
    "                      once per training example of DIR (slm data prepare --task classify)\n"
    "  --task generate     the teacher is a language model (any GGUF slm generate runs, quantized or\n"
    "                      not); it runs beside the student on every batch of DIR's prompt/completion\n"
    "                      or chat data (slm data prepare --task generate|chat), the loss on the\n"
    "                      completion tokens only, over the whole vocabulary\n"
    "  --temperature T     softening of both distributions                        [2]\n"
    "  --alpha A           weight of the soft term, in [0, 1]                     [0.5]\n"
    "  --steps N, --epochs X, --batch B, --lr X, --max-len N, --dropout P, --seed N   as slm finetune\n"
    "  --threads N         threads (default: all cores)\n"
    "  --quiet             no progress\n"
    "\n"
    "--task generate also takes, as slm finetune --task generate: --accum N, --lr-min X, --warmup N,\n"
    "--wd X, --clip X, --eval-every N, --patience N, --log FILE, --chat-template NAME,\n"
    "--no-chat-template, --separator TEXT (rendering follows the --init base, or the teacher for a\n"
    "--preset student); its --lr default is 1e-3 with --preset, 1e-4 with --init. The summary gives\n"
    "the student's and the teacher's validation loss per completion token and the KL of the\n"
    "student from the teacher.\n";

static int distill_generate(int argc, char **argv);

int cmd_distill(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--task")) {
            if (!strcmp(argv[i + 1], "generate")) return distill_generate(argc, argv);
            if (strcmp(argv[i + 1], "classify") != 0)
                cli_die("distill: --task must be classify or generate (got '%s')", argv[i + 1]);
        }
    const char *teacher_path = NULL, *dir = NULL, *preset = NULL, *init = NULL, *out = NULL;
    float T = 2.0f, alpha = 0.5f;
    int threads = 0, quiet = 0, max_len_given = 0;
    slm_finetune_opts o;
    slm_finetune_opts_default(&o);
    const train_args ta = {.steps = &o.steps, .epochs = &o.epochs, .batch = &o.batch, .max_len = &o.max_len,
                           .max_len_min = 1, .max_len_given = &max_len_given, .lr = &o.lr, .dropout = &o.dropout,
                           .seed = &o.seed, .threads = &threads, .quiet = &quiet};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (train_args_parse(&ta, argc, argv, &i)) {
        } else if (!strcmp(a, "--task")) (void)cli_value(argc, argv, &i); /* classify (checked above) */
        else if (!strcmp(a, "--teacher")) teacher_path = cli_value(argc, argv, &i);
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
    slm_pool *pool = cli_pool(threads);
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
    /* the student reads texts laid out as its teacher did */
    if (slm_task_data_set_template(&data, slm_classifier_template(teacher), &err) != SLM_OK) cli_fail(&err, "--teacher");
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

/* ---- --task generate ---- */


static int distill_generate(int argc, char **argv) {
    const char *teacher_path = NULL, *dir = NULL, *preset = NULL, *init = NULL, *out = NULL, *log_path = NULL;
    const char *template_name = NULL, *sep_arg = NULL;
    float T = 2.0f, alpha = 0.5f;
    int threads = 0, quiet = 0, lr_given = 0, max_len_given = 0, no_template = 0;
    slm_sft_opts o;
    slm_sft_opts_default(&o);
    const train_args ta = {.steps = &o.steps, .epochs = &o.epochs, .batch = &o.batch, .accum = &o.accum,
                           .accum_max = 65536, .max_len = &o.max_len, .max_len_min = 2,
                           .max_len_given = &max_len_given, .lr = &o.lr, .lr_given = &lr_given,
                           .lr_min = &o.lr_min, .warmup = &o.warmup, .weight_decay = &o.adam.weight_decay,
                           .grad_clip = &o.grad_clip, .dropout = &o.dropout, .eval_every = &o.eval_every,
                           .patience = &o.patience, .seed = &o.seed, .threads = &threads, .quiet = &quiet};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (train_args_parse(&ta, argc, argv, &i)) {
        } else if (!strcmp(a, "--task")) (void)cli_value(argc, argv, &i); /* generate */
        else if (!strcmp(a, "--teacher")) teacher_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--data")) dir = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--preset")) preset = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--init")) init = cli_value(argc, argv, &i);
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--log")) log_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--temperature")) T = (float)cli_double(a, cli_value(argc, argv, &i), 1e-3, 100);
        else if (!strcmp(a, "--alpha")) alpha = (float)cli_double(a, cli_value(argc, argv, &i), 0, 1);
        else if (!strcmp(a, "--chat-template")) template_name = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--no-chat-template")) no_template = 1;
        else if (!strcmp(a, "--separator")) sep_arg = cli_value(argc, argv, &i);
        else cli_die("distill: unknown option '%s' for --task generate (see slm distill --help)", a);
    }
    if (!teacher_path || !dir || !out) cli_die("distill: --teacher, --data and -o are required (see slm distill --help)");
    if ((preset != NULL) == (init != NULL)) cli_die("distill: give one of --preset NAME or --init BASE.gguf");
    if (template_name && no_template) cli_die("distill: --chat-template and --no-chat-template contradict each other");
    if (!init && !lr_given) o.lr = 1e-3f;
    if (o.lr_min > o.lr) o.lr_min = o.lr;
    char *sep = cli_unescape(sep_arg ? sep_arg : "");

    slm_err err;
    slm_pool *pool = cli_pool(threads);

    /* the teacher: any language model slm runs, its weights where they lie in the file */
    slm_gguf *tg = slm_gguf_open(teacher_path, &err);
    if (!tg) cli_fail(&err, "--teacher");
    const slm_gguf_kv *task = slm_gguf_find_kv(tg, "slm.task");
    if (task && task->type == SLM_GGUF_STRING && slm_gguf_str_eq(task->v.str, "classify"))
        cli_die("distill: %s is a classify model; --task generate needs a language model teacher (or use --task "
                "classify)", teacher_path);
    slm_tokenizer *ttok = slm_tokenizer_load(tg, &err);
    if (!ttok) cli_fail(&err, teacher_path);
    slm_model *teacher = slm_model_load_mapped(tg, &err);
    if (!teacher) cli_fail(&err, teacher_path);

    slm_sft_data data;
    if (slm_sft_data_load(dir, &data, &err) != SLM_OK) cli_fail(&err, "reading --data");

    /* the student: an fp32 copy of --init, or a new --preset model with the teacher's tokenizer and
     * as many output rows as the teacher (which may pad its vocabulary) */
    slm_gguf *src = tg;
    slm_tokenizer *tok = ttok;
    slm_model *m = NULL;
    if (init) {
        if (!(src = slm_gguf_open(init, &err))) cli_fail(&err, init);
        if (!(tok = slm_tokenizer_load(src, &err))) cli_fail(&err, init);
        if (slm_distill_check_vocab(ttok, tok, &err) != SLM_OK) cli_fail(&err, "--init");
        if (!(m = slm_model_load(src, &err))) cli_fail(&err, init);
    }
    int ctx = teacher->cfg.ctx_len;
    if (m && m->cfg.ctx_len < ctx) ctx = m->cfg.ctx_len;
    if (o.max_len > ctx) {
        if (max_len_given && !quiet)
            fprintf(stderr, "max-len: %d is beyond the context (%d); using %d\n", o.max_len, ctx, ctx);
        o.max_len = ctx;
    }
    if (!m) {
        slm_model_config cfg;
        if (slm_model_preset(preset, teacher->cfg.n_vocab, o.max_len, &cfg, &err) != SLM_OK) cli_fail(&err, "--preset");
        if (!(m = slm_model_new(&cfg, &err))) cli_fail(&err, "creating the student");
        slm_model_init_random(m, o.seed);
    }

    slm_sft_format f = sft_format_choose("distill", src, template_name, no_template, sep, sep_arg != NULL, o.max_len);
    if (slm_sft_data_tokenize(&data, tok, &f, &err) != SLM_OK) cli_fail(&err, "tokenizing --data");
    sft_data_summary(&data, &f, o.max_len, quiet);

    slm_sft *t = slm_sft_new(m, tok, &data, &o, pool, &err);
    if (!t) cli_fail(&err, "distill");
    if (slm_sft_set_teacher(t, teacher, ttok, T, alpha, &err) != SLM_OK) cli_fail(&err, "distill");
    if (log_path && slm_sft_set_log(t, log_path, &err) != SLM_OK) cli_fail(&err, "--log");
    train_progress ps;
    train_progress_init(&ps, quiet, slm_sft_steps(t));
    slm_sft_set_callback(t, train_progress_sft, &ps);
    if (!quiet)
        fprintf(stderr, "distill: teacher %s (%d layers, dim %d, %.1f MB of weights), student %.2fM parameters; "
                "%d steps of %d x %d examples (max %d tokens); T %g, alpha %g\n",
                slm_arch_name(teacher->cfg.arch), teacher->cfg.n_layers, teacher->cfg.dim,
                (double)slm_model_weight_bytes(teacher) / 1e6, (double)m->n_params / 1e6, slm_sft_steps(t),
                o.accum, o.batch, o.max_len, T, alpha);
    double t0 = slm_time_now();
    if (slm_sft_run(t, &err) != SLM_OK) cli_fail(&err, "distill");
    slm_sft_save_info info = {.base = !template_name && !no_template ? src : NULL, .separator = sep,
                              .chat_template = f.family != SLM_CHAT_UNKNOWN ? slm_chat_family_name(f.family) : NULL};
    if (slm_sft_save(t, &info, out, &err) != SLM_OK) cli_fail(&err, out);
    double t_loss, kl;
    if (slm_sft_evaluate_teacher(t, &data.val, &t_loss, &kl, &err) != SLM_OK) cli_fail(&err, "distill");
    printf("student validation loss %.4f per completion token (teacher %.4f); KL(teacher || student) %.4f; "
           "%d steps in %.1fs; wrote %s\n", slm_sft_val_loss(t), t_loss, kl, slm_sft_step(t), slm_time_now() - t0,
           out);
    slm_sft_free(t);
    slm_model_free(m);
    slm_sft_data_free(&data);
    if (init) {
        slm_tokenizer_free(tok);
        slm_gguf_close(src);
    }
    slm_model_free(teacher);
    slm_tokenizer_free(ttok);
    slm_gguf_close(tg);
    slm_pool_free(pool);
    free(sep);
    return 0;
}
