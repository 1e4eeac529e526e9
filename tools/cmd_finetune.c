/* cmd_finetune.c: `slm finetune --task classify` — fine-tune a classify task model from scratch
 * (--preset, a tokenizer trained on the training texts or --tokenizer), from a pretrained base
 * (--init), or continue a checkpoint (--resume); with --lora only an adapter and the head train. Parses, calls src/task/finetune, prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train_args.h"
#include "core/timer.h"
#include "model/model.h"
#include "task/classify_head.h"
#include "task/classify_model.h"
#include "task/finetune.h"
#include "task/ngram.h"
#include "task/lora.h"
#include "task/task_data.h"
#include "tokenizer/tokenizer.h"

static const char usage[] =
    "usage: slm finetune --data DIR --task classify -o OUT.gguf [options]\n"
    "\n"
    "Fine-tunes a classify task model on DIR/train.jsonl, validating on DIR/val.jsonl (and reporting\n"
    "DIR/test.jsonl when present); lines are {\"text\": ..., \"label\": ...} (slm data prepare).\n"
    "\n"
    "model (one of):\n"
    "  --preset NAME          a new model: tiny, small, medium, base               [tiny]\n"
    "    --tokenizer TOK.gguf   its tokenizer; default: BPE trained on the training texts\n"
    "    --vocab N              size of that trained tokenizer                        [2048]\n"
    "  --init BASE.gguf       start from a pretrained base (its tokenizer; its LM head is dropped)\n"
    "  --resume CKPT.gguf     continue a checkpoint exactly (its options; give the same --data)\n"
    "\n"
    "training:\n"
    "  --epochs X             passes over the training set                         [5]\n"
    "  --steps N              optimizer steps (overrides --epochs)\n"
    "  --batch B              examples per micro-batch                             [32]\n"
    "  --accum N              micro-batches per step (gradient accumulation)       [1]\n"
    "  --max-len N            text tokens per example (BOS and EOS added)          [64]\n"
    "  --lr X, --lr-min X     peak and final learning rate (cosine)  [1e-3 new, 3e-4 --init; 1e-5]\n"
    "  --warmup N             linear warmup steps                                  [6% of steps]\n"
    "  --wd X                 AdamW weight decay (matrices only)                   [0.01]\n"
    "  --clip X               gradient norm clip, 0 = off                          [1]\n"
    "  --dropout P            dropout on the body's attention outputs and feed-forward\n"
    "                         activations while training (a regulariser)           [0]\n"
    "  --rdrop A              R-Drop: each training example runs twice under two dropout\n"
    "                         masks, A x their symmetric KL joins the loss (needs --dropout;\n"
    "                         twice the work per step)                             [0 = off]\n"
    "  --label-smoothing X    in [0, 1)                                            [0]\n"
    "  --token-dropout P      leave each text token out of a training example with\n"
    "                         probability P (a regulariser)                        [0]\n"
    "  --pooling P            last | mean | auto: both heads train on the shared body for\n"
    "                         --select-frac of the steps, the better on validation is kept [auto]\n"
    "  --select-frac X        share of steps before auto chooses                   [0.25]\n"
    "  --seed N               example order and initial weights                    [1]\n"
    "  --template T           how an example's text is laid out for the model, {text} standing\n"
    "                         for it (\\n for a newline); the model keeps it      [\"{text}\\n\"]\n"
    "                         (a base pretrained on lines sums a line up at its newline)\n"
    "\n"
    "LoRA (with --init; the base stays frozen, F32 or quantized: dequantized for training):\n"
    "  --lora R               train a rank-R adapter and the head only; -o gets the adapter\n"
    "                         (GGUF, llama.cpp convention + the classify head); apply it with\n"
    "                         slm classify --lora, or slm lora merge into a full model\n"
    "  --lora-alpha A         scale alpha/R                                          [2R]\n"
    "  --lora-dropout P       rank dropout: each step drops each rank with prob. P   [0]\n"
    "  --lora-targets LIST    q,k,v,o,gate,up,down or all                            [q,k,v,o]\n"
    "\n"
    "sparse n-gram part (full models; not with --lora):\n"
    "  --ngram on|off         also train TF-IDF word 1-2 + char 2-5 gram logistic regression on\n"
    "                         the training texts and pool its logits with the head's, weights fitted\n"
    "                         on validation: it catches rare words and typos the transformer misses [on]\n"
    "  --ngram-c X            its inverse L2 strength (scikit-learn's C)              [30]\n"
    "  --ngram-min-df N       keep n-grams seen in at least N training texts           [1]\n"
    "\n"
    "validation:\n"
    "  --eval-every N         validate every N steps (0: once per epoch), and at the end [0]\n"
    "  --patience N           early stop after N validations without gain          [0 = off]\n"
    "                         (the best validated model is the one written, always)\n"
    "\n"
    "output:\n"
    "  -o, --out FILE         the classify model (GGUF)\n"
    "  --log FILE             JSON lines: step, epoch, loss, val_loss, val_acc, lr, grad_norm, examples_per_s\n"
    "  --checkpoint FILE      a resumable checkpoint, written ...\n"
    "  --checkpoint-every N   ... every N steps and at the end                     [100]\n"
    "  --threads N            threads (default: all cores)\n"
    "  --quiet                no progress line\n"
    "\n"
    "refit:\n"
    "  --refit                once validation has made the choices (pooling, the n-gram pool's\n"
    "                         weights, the length: the whole run, or its best validated step when\n"
    "                         --patience stopped it), train a new body from --init/--preset with\n"
    "                         them on training + validation examples for as many epochs, and the\n"
    "                         n-gram part again: the model written has seen every labelled example.\n"
    "                         Twice the time; the validation figures reported and stored are the\n"
    "                         first run's (--log and --checkpoint too)\n";

static void on_progress(void *ctx, const slm_finetune_progress *p) {
    const train_progress *ps = ctx;
    if (ps->quiet) return;
    int validated = !isnan(p->val_loss);
    if (p->chose_pooling >= 0)
        fprintf(stderr, "%spooling: chose %s (validation accuracy last %.4f, mean %.4f)\n", ps->tty ? "\r" : "",
                slm_pooling_name(p->chose_pooling), p->acc_last, p->acc_mean);
    if (!train_progress_begin(ps, p->step, p->steps, validated)) return;
    double eta = p->eta_s;
    fprintf(stderr, " | epoch %.2f | loss %.4f | lr %.2e | %.0f ex/s | eta %.0fs", p->epoch, p->loss, p->lr,
            p->examples_per_s, eta >= 0 && eta < 1e7 ? eta : 0);
    if (validated) fprintf(stderr, " | val loss %.4f acc %.4f", p->val_loss, p->val_acc);
    train_progress_end(ps, p->step, p->steps, validated, p->stopped_early);
}

static void on_ngram_progress(void *ctx, int iter, int max_iter, double loss) {
    const train_progress *ps = ctx;
    if (ps->quiet || !ps->tty) return;
    fprintf(stderr, "\rn-gram part: iteration %d (at most %d) | loss %.4f   ", iter, max_iter, loss);
}

/* The n-gram part: trained, pooled and attached to t; reports its validation gain; *mix gets the
 * pool's weights. */
static slm_ngram *fit_ngram(slm_finetune *t, const slm_ngram_opts *no, train_progress *ps, slm_cls_mix *mix_out) {
    slm_err err;
    slm_finetune_scores v;
    slm_cls_mix mix;
    double t0 = slm_time_now();
    slm_ngram *ng = slm_finetune_fit_ngram(t, no, on_ngram_progress, ps, &v, &mix, &err);
    if (!ng) cli_fail(&err, "finetune");
    if (!ps->quiet)
        fprintf(stderr, "%sn-gram part: %d features in %.1fs; validation accuracy: transformer %.4f, n-gram %.4f, "
                "together %.4f (logits %.3g x head + %.3g x n-gram)\n", ps->tty ? "\r" : "",
                slm_ngram_n_features(ng), slm_time_now() - t0, v.acc_head, v.acc_ngram, v.acc_mix, mix.w_head,
                mix.w_ngram);
    *mix_out = mix;
    return ng;
}

/* A BPE tokenizer trained on the training texts (one per line). */
static slm_tokenizer *train_tokenizer(const slm_task_data *d, int vocab, int quiet) {
    size_t len = 0;
    for (int i = 0; i < d->train.n; i++) len += strlen(d->train.text[i]) + 1;
    char *text = malloc(len + 1), *p = text;
    if (!text) cli_die("out of memory");
    for (int i = 0; i < d->train.n; i++) {
        size_t n = strlen(d->train.text[i]);
        memcpy(p, d->train.text[i], n);
        p += n;
        *p++ = '\n';
    }
    *p = 0;
    double t0 = slm_time_now();
    slm_tokenizer_train_opts o = {.vocab_size = vocab};
    slm_tokenizer *tok;
    slm_err err;
    if (slm_tokenizer_train(text, len, &o, &tok, &err) != SLM_OK) cli_fail(&err, "training the tokenizer");
    free(text);
    if (!quiet)
        fprintf(stderr, "tokenizer: %d tokens trained on %zu bytes of training text (%.1fs)\n",
                slm_tokenizer_n_vocab(tok), len, slm_time_now() - t0);
    return tok;
}

/* A body to fine-tune (not LoRA): an fp32 copy of base (--init, or the checkpoint of --resume)
 * without its LM head, or, base NULL, a new --preset model with random weights from o->seed. */
static slm_model *make_body(const slm_gguf *base_g, const char *src_path, const char *preset, const slm_tokenizer *tok,
                            const slm_finetune_opts *o) {
    slm_err err;
    slm_model *m;
    if (base_g) {
        slm_model *base = slm_model_load(base_g, &err);
        if (!base) cli_fail(&err, src_path);
        if (base->cfg.ctx_len < o->max_len + 2)
            cli_die("finetune: %s has a context of %d tokens; --max-len %d needs %d", src_path, base->cfg.ctx_len,
                    o->max_len, o->max_len + 2);
        m = slm_finetune_body_from(base, &err);
        slm_model_free(base);
        if (!m) cli_fail(&err, src_path);
        return m;
    }
    slm_model_config cfg;
    if (slm_model_preset(preset ? preset : "tiny", slm_tokenizer_n_vocab(tok), o->max_len + 2, &cfg, &err) != SLM_OK)
        cli_fail(&err, "--preset");
    if (!(m = slm_model_new(&cfg, &err))) cli_fail(&err, "creating the model");
    slm_model_init_random(m, o->seed);
    return m;
}

/* --refit: after the first run made its choices on validation (pooling, length, the pool's
 * weights), a new body trains with them on training + validation examples for as many epochs, and
 * the n-gram part is trained again on the same; *t, *m and *ng are replaced (the old ones freed),
 * *data2 holds the merged data they read. */
static void refit(const char *dir, const char *template_text, const slm_gguf *base_g, const char *src_path,
                  const char *preset, const slm_tokenizer *tok, const slm_finetune_opts *o, const slm_ngram_opts *no, slm_pool *pool,
                  int quiet, slm_finetune **t, slm_model **m, slm_ngram **ng, slm_cls_mix mix, slm_task_data *data2) {
    slm_err err;
    slm_finetune_opts o2 = *o;
    o2.pooling = slm_finetune_pooling(*t);
    /* the length: the whole schedule when the first run went through it (its best validated step
     * is then a noisy pick between late epochs that differ by a few validation examples), the best
     * validated step when early stopping cut it short */
    int best = slm_finetune_step(*t) < slm_finetune_steps(*t) ? slm_finetune_best_step(*t) : slm_finetune_steps(*t);
    if (best < 1) best = slm_finetune_steps(*t);
    float val_acc = slm_finetune_val_acc(*t), val_loss = slm_finetune_val_loss(*t);
    if (slm_task_data_load(dir, data2, &err) != SLM_OK || slm_task_data_merge_val(data2, &err) != SLM_OK ||
        slm_task_data_set_template(data2, template_text, &err) != SLM_OK ||
        slm_task_data_tokenize(data2, tok, o2.max_len, &err) != SLM_OK)
        cli_fail(&err, "refit: reading --data");
    /* the same epochs over the larger set: steps scale with its size */
    double epochs = (double)best * o->batch * o->accum / (double)(data2->train.n - data2->val.n);
    o2.steps = (int)ceil(epochs * data2->train.n / ((double)o->batch * o->accum));
    o2.eval_every = o2.steps;
    o2.patience = 0;
    slm_finetune_free(*t);
    slm_model_free(*m);
    slm_ngram_free(*ng);
    *ng = NULL;
    *m = make_body(base_g, src_path, preset, tok, &o2);
    if (!(*t = slm_finetune_new(*m, tok, data2, &o2, pool, &err))) cli_fail(&err, "refit");
    slm_finetune_set_refit(*t, val_acc, val_loss);
    train_progress ps;
    train_progress_init(&ps, quiet, o2.steps);
    slm_finetune_set_callback(*t, on_progress, &ps);
    if (!quiet)
        fprintf(stderr, "refit: a new body on %d examples (training + validation), pooling %s, %.2f epochs = %d steps\n",
                data2->train.n, slm_pooling_name(o2.pooling), epochs, o2.steps);
    double t0 = slm_time_now();
    if (slm_finetune_run(*t, &err) != SLM_OK) cli_fail(&err, "refit");
    if (!quiet) fprintf(stderr, "refit: trained in %.1fs\n", slm_time_now() - t0);
    if (mix.w_ngram != 0 || mix.w_head != 0) {
        *ng = slm_finetune_add_ngram(*t, no, on_ngram_progress, &ps, mix, &err);
        if (!*ng) cli_fail(&err, "refit");
        if (!quiet)
            fprintf(stderr, "%srefit: n-gram part of %d features, pooled with the first run's weights\n",
                    ps.tty ? "\r" : "", slm_ngram_n_features(*ng));
    }
    slm_finetune_set_callback(*t, NULL, NULL); /* ps ends here */
}

int cmd_finetune(int argc, char **argv) {
    const char *dir = NULL, *task = NULL, *preset = NULL, *tok_path = NULL, *init = NULL, *resume = NULL;
    const char *out = NULL, *log_path = NULL, *ckpt = NULL;
    int vocab = 2048, ckpt_every = 100, threads = 0, quiet = 0, lr_given = 0, use_ngram = 1, do_refit = 0;
    const char *template_arg = NULL;
    slm_ngram_opts no;
    slm_ngram_opts_default(&no);
    slm_lora_opts lo = {.rank = 0, .alpha = 0, .dropout = 0, .targets = SLM_LORA_Q | SLM_LORA_K | SLM_LORA_V | SLM_LORA_O};
    slm_finetune_opts o;
    slm_finetune_opts_default(&o);
    const train_args ta = {.steps = &o.steps, .epochs = &o.epochs, .batch = &o.batch, .accum = &o.accum,
                           .accum_max = 65536, .max_len = &o.max_len, .max_len_min = 1, .lr = &o.lr,
                           .lr_given = &lr_given, .lr_min = &o.lr_min, .warmup = &o.warmup,
                           .weight_decay = &o.adam.weight_decay, .grad_clip = &o.grad_clip,
                           .dropout = &o.dropout, .eval_every = &o.eval_every, .patience = &o.patience, .seed = &o.seed,
                           .threads = &threads, .quiet = &quiet};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (train_args_parse(&ta, argc, argv, &i)) {
        } else if (!strcmp(a, "--data")) dir = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--task")) task = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--preset")) preset = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--tokenizer")) tok_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--vocab")) vocab = (int)cli_long(a, cli_value(argc, argv, &i), 264, 1 << 20);
        else if (!strcmp(a, "--init")) init = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--resume")) resume = cli_value(argc, argv, &i);
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--log")) log_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--checkpoint")) ckpt = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--checkpoint-every")) ckpt_every = (int)cli_long(a, cli_value(argc, argv, &i), 0, 1 << 30);
        else if (!strcmp(a, "--token-dropout")) o.token_dropout = (float)cli_double(a, cli_value(argc, argv, &i), 0, 0.9);
        else if (!strcmp(a, "--refit")) do_refit = 1;
        else if (!strcmp(a, "--template")) template_arg = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--rdrop")) o.rdrop = (float)cli_double(a, cli_value(argc, argv, &i), 0, 100);
        else if (!strcmp(a, "--label-smoothing")) o.label_smoothing = (float)cli_double(a, cli_value(argc, argv, &i), 0, 0.999);
        else if (!strcmp(a, "--pooling")) {
            const char *v = cli_value(argc, argv, &i);
            o.pooling = !strcmp(v, "auto") ? SLM_POOL_AUTO : slm_pooling_from_name(v);
            if (o.pooling == -1 && strcmp(v, "auto")) cli_die("--pooling: '%s' is not last, mean or auto", v);
        } else if (!strcmp(a, "--select-frac")) o.select_frac = (float)cli_double(a, cli_value(argc, argv, &i), 0.001, 0.999);
        else if (!strcmp(a, "--ngram")) use_ngram = cli_on_off(a, cli_value(argc, argv, &i));
        else if (!strcmp(a, "--ngram-c")) no.C = (float)cli_double(a, cli_value(argc, argv, &i), 1e-4, 1e6);
        else if (!strcmp(a, "--ngram-min-df")) no.min_df = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1 << 30);
        else if (!strcmp(a, "--lora")) lo.rank = (int)cli_long(a, cli_value(argc, argv, &i), 1, 4096);
        else if (!strcmp(a, "--lora-alpha")) lo.alpha = (float)cli_double(a, cli_value(argc, argv, &i), 1e-6, 1e6);
        else if (!strcmp(a, "--lora-dropout")) lo.dropout = (float)cli_double(a, cli_value(argc, argv, &i), 0, 0.999);
        else if (!strcmp(a, "--lora-targets")) {
            slm_err e;
            if (slm_lora_parse_targets(cli_value(argc, argv, &i), &lo.targets, &e) != SLM_OK) cli_fail(&e, a);
        }
        else cli_die("finetune: unknown option '%s' (see slm finetune --help)", a);
    }
    if (!dir) cli_die("finetune: --data DIR is required (see slm finetune --help)");
    if (!out) cli_die("finetune: -o OUT.gguf is required (see slm finetune --help)");
    if (task && strcmp(task, "classify") != 0)
        cli_die("finetune: --task %s is not available yet (classify is)", task);
    if ((init != NULL) + (resume != NULL) + (preset != NULL || tok_path != NULL) > 1)
        cli_die("finetune: give one of --preset/--tokenizer (new model), --init (base) or --resume");
    if (lo.rank && !init) cli_die("finetune: --lora needs --init BASE.gguf (the frozen base)");
    if (lo.rank && ckpt) cli_die("finetune: --checkpoint is not available with --lora yet");
    if (do_refit && (lo.rank || resume))
        cli_die("finetune: --refit starts a new body from --init or --preset: not with --%s", lo.rank ? "lora" : "resume");
    if (lo.rank) use_ngram = 0; /* an adapter carries the head only (lora.h) */
    if (lo.rank && lo.alpha == 0) lo.alpha = 2.0f * (float)lo.rank;
    if (init && !lr_given) o.lr = lo.rank ? 1e-3f : 3e-4f;
    if (o.lr_min > o.lr) o.lr_min = o.lr;

    slm_err err;
    slm_pool *pool = cli_pool(threads);

    slm_task_data data;
    if (slm_task_data_load(dir, &data, &err) != SLM_OK) cli_fail(&err, "reading --data");
    if (!quiet)
        fprintf(stderr, "data: %d training, %d validation, %d test examples, %d labels\n", data.train.n,
                data.val.n, data.test.n, data.n_labels);

    slm_gguf *src = NULL;
    const char *src_path = resume ? resume : init ? init : tok_path;
    if (src_path && !(src = slm_gguf_open(src_path, &err))) cli_fail(&err, "reading model");
    if (resume && slm_finetune_opts_from_checkpoint(src, &o, &err) != SLM_OK) cli_fail(&err, resume);
    slm_tokenizer *tok = src ? slm_tokenizer_load(src, &err) : train_tokenizer(&data, vocab, quiet);
    if (!tok) cli_fail(&err, src_path);
    /* how texts are laid out: --template, a checkpoint's own, else a line: "{text}\n" */
    char *tmpl = template_arg ? cli_unescape(template_arg) : NULL;
    if (!template_arg && resume && slm_classify_template_read(src, &tmpl, &err) != SLM_OK) cli_fail(&err, resume);
    if (!template_arg && !resume) tmpl = strdup(SLM_FINETUNE_TEMPLATE);
    if (slm_task_data_set_template(&data, tmpl, &err) != SLM_OK) cli_fail(&err, "--template");
    if (slm_task_data_tokenize(&data, tok, o.max_len, &err) != SLM_OK) cli_fail(&err, "tokenizing --data");

    slm_model *m;
    slm_lora *lora = NULL;
    if (lo.rank) {
        m = slm_lora_body_load(src, &err);
        if (!m) cli_fail(&err, src_path);
        if (m->cfg.ctx_len < o.max_len + 2)
            cli_die("finetune: %s has a context of %d tokens; --max-len %d needs %d", src_path, m->cfg.ctx_len,
                    o.max_len, o.max_len + 2);
        if (!(lora = slm_lora_new(&m->cfg, &lo, o.seed, &err))) cli_fail(&err, "--lora");
    } else {
        m = make_body(init || resume ? src : NULL, src_path, preset, tok, &o);
    }
    slm_finetune *t = slm_finetune_new(m, tok, &data, &o, pool, &err);
    if (!t) cli_fail(&err, "finetune");
    if (resume && slm_finetune_resume(t, src, &err) != SLM_OK) cli_fail(&err, "resume");
    if (lora && slm_finetune_set_lora(t, lora, &err) != SLM_OK) cli_fail(&err, "--lora");
    if (lora && !quiet)
        fprintf(stderr, "LoRA: rank %d, alpha %g, %d matrices, %.3fM adapter parameters (body frozen)\n", lo.rank,
                lo.alpha, lora->n_pairs, (double)lora->n_params / 1e6);
    if (log_path && slm_finetune_set_log(t, log_path, &err) != SLM_OK) cli_fail(&err, "--log");
    if (ckpt) slm_finetune_set_checkpoint(t, ckpt, ckpt_every);
    train_progress ps;
    train_progress_init(&ps, quiet, slm_finetune_steps(t));
    slm_finetune_set_callback(t, on_progress, &ps);
    if (!quiet)
        fprintf(stderr, "model: %d layers, dim %d, %d heads, hidden %d, vocab %d: %.2fM parameters + head %dx%d; "
                "%d steps of %d x %d examples (max %d tokens) from step %d, pooling %s\n",
                m->cfg.n_layers, m->cfg.dim, m->cfg.n_heads, m->cfg.hidden_dim, m->cfg.n_vocab,
                (double)m->n_params / 1e6, data.n_labels, m->cfg.dim, slm_finetune_steps(t), o.accum, o.batch,
                o.max_len + 2, slm_finetune_step(t),
                o.pooling == SLM_POOL_AUTO ? "auto" : slm_pooling_name(o.pooling));
    double t0 = slm_time_now();
    if (slm_finetune_run(t, &err) != SLM_OK) cli_fail(&err, "finetune");
    double train_s = slm_time_now() - t0;
    int first_steps = slm_finetune_step(t); /* --refit replaces t */
    no.n_threads = slm_pool_size(pool);
    slm_cls_mix mix = {0, 0};
    slm_ngram *ng = use_ngram ? fit_ngram(t, &no, &ps, &mix) : NULL;
    slm_task_data data2 = {0}; /* --refit: training + validation */
    if (do_refit) refit(dir, tmpl, init ? src : NULL, src_path, preset, tok, &o, &no, pool, quiet, &t, &m, &ng, mix, &data2);
    if ((lora ? slm_finetune_save_adapter(t, out, &err) : slm_finetune_save(t, out, &err)) != SLM_OK)
        cli_fail(&err, out);
    if (!quiet) {
        char refit_steps[64] = "";
        if (do_refit) snprintf(refit_steps, sizeof refit_steps, " and the refit's %d steps", slm_finetune_step(t));
        fprintf(stderr, "wrote %s after %d steps in %.1fs (+ %.1fs: the n-gram part%s): pooling %s, validation "
                "accuracy %.4f, loss %.4f (transformer alone%s)\n", out, first_steps, train_s,
                slm_time_now() - t0 - train_s, refit_steps, slm_pooling_name(slm_finetune_pooling(t)),
                slm_finetune_val_acc(t), slm_finetune_val_loss(t), do_refit ? ", before the refit" : "");
        if (data.test.n) {
            slm_finetune_scores r;
            if (slm_finetune_score(t, &data.test, &r, &err) != SLM_OK) cli_fail(&err, "test");
            if (ng)
                fprintf(stderr, "test: accuracy %.4f, loss %.4f on %d examples (transformer %.4f, n-gram %.4f)\n",
                        r.acc_mix, r.nll_mix, data.test.n, r.acc_head, r.acc_ngram);
            else
                fprintf(stderr, "test: accuracy %.4f, loss %.4f on %d examples\n", r.acc_head, r.nll_head, data.test.n);
        }
    }
    slm_ngram_free(ng);
    slm_finetune_free(t);
    slm_lora_free(lora);
    slm_model_free(m);
    slm_tokenizer_free(tok);
    slm_task_data_free(&data);
    slm_task_data_free(&data2);
    free(tmpl);
    slm_gguf_close(src);
    slm_pool_free(pool);
    return 0;
}
