/* cmd_train.c: `slm train` — train a model from scratch, fine-tune one (--init), or resume a
 * checkpoint (--resume), on plain-text corpora. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train_args.h"
#include "core/file.h"
#include "core/timer.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

static const char usage[] =
    "usage: slm train --data FILE [--data FILE ...] -o OUT.gguf [options]\n"
    "\n"
    "Trains a Llama-family model on plain text and writes it (with its tokenizer) to OUT.gguf.\n"
    "\n"
    "model (one of):\n"
    "  --tokenizer TOK.gguf   a tokenizer (slm tokenizer train) for a new model, with --preset\n"
    "  --preset NAME          tiny (~1M), small (~15M), medium (~42M), base (~110M)   [tiny]\n"
    "  --init MODEL.gguf      fine-tune an existing model (its own tokenizer)\n"
    "  --resume CKPT.gguf     continue a checkpoint exactly where it stopped (its options, not\n"
    "                         the ones given here; give the same --data and --val-frac)\n"
    "\n"
    "training:\n"
    "  --steps N              optimizer steps                                  [1000]\n"
    "  --batch B              sequences per micro-batch                        [8]\n"
    "  --seq T                tokens per sequence                              [256]\n"
    "  --accum N              micro-batches per step (gradient accumulation)   [1]\n"
    "  --lr X, --lr-min X     peak and final learning rate (cosine)            [1e-3, 1e-4]\n"
    "  --warmup N             linear warmup steps                              [100]\n"
    "  --wd X                 AdamW weight decay (matrices only)               [0.1]\n"
    "  --clip X               gradient norm clip, 0 = off                      [1]\n"
    "  --ctx N                model context length for a new model             [max(seq, 256)]\n"
    "  --seed N               data order and initial weights                   [1]\n"
    "\n"
    "validation:\n"
    "  --val-frac X           share of the text held out (its end)             [0.1]\n"
    "  --eval-every N         validate every N steps (and at the end)          [100]\n"
    "  --eval-windows N       windows per validation, 0 = all                  [20]\n"
    "  --patience N           early stop after N validations without gain      [0 = off]\n"
    "\n"
    "output:\n"
    "  -o, --out FILE         the trained model\n"
    "  --log FILE             JSON lines, one per step (step, loss, val_loss, val_bpb, lr, tokens_per_s)\n"
    "  --checkpoint FILE      write a resumable checkpoint here ...\n"
    "  --checkpoint-every N   ... every N steps and at the end                 [100]\n"
    "  --threads N            threads (default: all cores)\n"
    "  --quiet                no progress line\n";

static void fmt_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void on_progress(void *ctx, const slm_train_progress *p) {
    const train_progress *ps = ctx;
    int validated = !isnan(p->val_loss);
    if (!train_progress_begin(ps, p->step, p->steps, validated)) return;
    char eta[32];
    fmt_duration(p->eta_s, eta, sizeof eta);
    fprintf(stderr, " | loss %.4f | lr %.2e | %.0f tok/s | eta %s", p->loss, p->lr, p->tokens_per_s, eta);
    if (validated) fprintf(stderr, " | val %.4f (%.3f bits/byte)", p->val_loss, p->val_bpb);
    train_progress_end(ps, p->step, p->steps, validated, p->stopped_early);
}

/* Concatenates the --data files (each ends with a newline) into one buffer. */
static char *read_corpus(char **files, int n, size_t *len) {
    size_t total = 0, cap = 0;
    char *all = NULL;
    for (int i = 0; i < n; i++) {
        char *data;
        size_t dl;
        slm_err err;
        if (slm_file_read_all(files[i], &data, &dl, &err) != SLM_OK) cli_fail(&err, "reading --data");
        if (total + dl + 2 > cap) {
            cap = (total + dl + 2) * 2;
            char *na = realloc(all, cap);
            if (!na) cli_die("out of memory reading %s", files[i]);
            all = na;
        }
        memcpy(all + total, data, dl);
        total += dl;
        if (dl && data[dl - 1] != '\n') all[total++] = '\n';
        free(data);
    }
    if (all) all[total] = '\0';
    *len = total;
    return all;
}

int cmd_train(int argc, char **argv) {
    char *data_files[64];
    int n_data = 0;
    const char *tok_path = NULL, *preset = "tiny", *init = NULL, *resume = NULL, *out = NULL;
    const char *log_path = NULL, *ckpt = NULL;
    int ckpt_every = 100, threads = 0, ctx = 0, quiet = 0;
    double val_frac = 0.1;
    slm_train_opts o;
    slm_train_opts_default(&o);
    const train_args ta = {.steps = &o.steps, .batch = &o.batch, .accum = &o.accum, .accum_max = 4096, .lr = &o.lr,
                           .lr_min = &o.lr_min, .warmup = &o.warmup, .weight_decay = &o.adam.weight_decay,
                           .grad_clip = &o.grad_clip, .eval_every = &o.eval_every, .patience = &o.patience,
                           .seed = &o.seed, .threads = &threads, .quiet = &quiet};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (train_args_parse(&ta, argc, argv, &i)) {
        } else if (!strcmp(a, "--data")) {
            if (n_data == 64) cli_die("--data: at most 64 files");
            data_files[n_data++] = (char *)cli_value(argc, argv, &i);
        } else if (!strcmp(a, "--tokenizer")) tok_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--preset")) preset = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--init")) init = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--resume")) resume = cli_value(argc, argv, &i);
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--log")) log_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--checkpoint")) ckpt = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--checkpoint-every")) ckpt_every = (int)cli_long(a, cli_value(argc, argv, &i), 0, 1 << 30);
        else if (!strcmp(a, "--seq")) o.seq_len = (int)cli_long(a, cli_value(argc, argv, &i), 2, 1 << 16);
        else if (!strcmp(a, "--ctx")) ctx = (int)cli_long(a, cli_value(argc, argv, &i), 2, 1 << 20);
        else if (!strcmp(a, "--val-frac")) val_frac = cli_double(a, cli_value(argc, argv, &i), 0, 0.5);
        else if (!strcmp(a, "--eval-windows")) o.eval_windows = (int)cli_long(a, cli_value(argc, argv, &i), 0, 1 << 30);
        else cli_die("train: unknown option '%s' (see slm train --help)", a);
    }
    if (!n_data) cli_die("train: --data FILE is required (see slm train --help)");
    if (!out) cli_die("train: -o OUT.gguf is required (see slm train --help)");
    if ((init != NULL) + (resume != NULL) + (tok_path != NULL) != 1)
        cli_die("train: give exactly one of --tokenizer (new model), --init (fine-tune) or --resume");
    if (o.lr_min > o.lr) o.lr_min = o.lr;

    slm_err err;
    /* The library splits matrix products over its own pool; OpenBLAS threads competing with it
     * cost 10-15% (measured on the 15M shape), so OpenBLAS runs single-threaded here. */
    slm_pool *pool = cli_pool(threads);

    /* The model and tokenizer come from one GGUF: the tokenizer file, the model to fine-tune, or
     * the checkpoint. */
    const char *src_path = resume ? resume : init ? init : tok_path;
    slm_gguf *src = slm_gguf_open(src_path, &err);
    if (!src) cli_fail(&err, "reading model");
    slm_tokenizer *tok = slm_tokenizer_load(src, &err);
    if (!tok) cli_fail(&err, src_path);
    slm_model *m;
    if (init || resume) {
        m = slm_model_load(src, &err);
        if (!m) cli_fail(&err, src_path);
    } else {
        slm_model_config cfg;
        int ctx_len = ctx ? ctx : (o.seq_len > 256 ? o.seq_len : 256);
        if (slm_model_preset(preset, slm_tokenizer_n_vocab(tok), ctx_len, &cfg, &err) != SLM_OK)
            cli_fail(&err, "--preset");
        m = slm_model_new(&cfg, &err);
        if (!m) cli_fail(&err, "creating the model");
        slm_model_init_random(m, o.seed);
    }

    size_t len;
    char *text = read_corpus(data_files, n_data, &len);
    double t_enc = slm_time_now();
    slm_token_data data;
    if (slm_token_data_build(tok, text, len, val_frac, &data, &err) != SLM_OK) cli_fail(&err, "preparing data");
    free(text);
    if (!quiet)
        fprintf(stderr, "data: %zu bytes -> %zu training + %zu validation tokens (%.2f bytes/token, %.1fs)\n",
                len, data.n_train, data.n_val, (double)len / (double)(data.n_train + data.n_val + 1),
                slm_time_now() - t_enc);

    if (resume && slm_train_opts_from_checkpoint(src, &o, &err) != SLM_OK) cli_fail(&err, resume);
    slm_trainer *tr = slm_trainer_new(m, tok, &data, &o, pool, &err);
    if (!tr) cli_fail(&err, "train");
    if (resume && slm_trainer_resume(tr, src, &err) != SLM_OK) cli_fail(&err, "resume");
    if (log_path && slm_trainer_set_log(tr, log_path, &err) != SLM_OK) cli_fail(&err, "--log");
    if (ckpt) slm_trainer_set_checkpoint(tr, ckpt, ckpt_every);
    train_progress ps = {.start = slm_time_now()};
    const slm_train_opts *eo = slm_trainer_opts(tr);
    train_progress_init(&ps, quiet, eo->steps);
    slm_trainer_set_callback(tr, on_progress, &ps);
    if (!quiet)
        fprintf(stderr, "model: %d layers, dim %d, %d heads (%d kv), hidden %d, vocab %d: %.2fM parameters; "
                "training %d steps of %d x %d x %d tokens from step %d\n",
                m->cfg.n_layers, m->cfg.dim, m->cfg.n_heads, m->cfg.n_kv_heads, m->cfg.hidden_dim,
                m->cfg.n_vocab, (double)m->n_params / 1e6, eo->steps, eo->accum, eo->batch,
                eo->seq_len, slm_trainer_step(tr));

    if (slm_trainer_run(tr, &err) != SLM_OK) cli_fail(&err, "train");

    slm_gguf_writer *w = slm_gguf_writer_new();
    if (!w) cli_die("out of memory");
    slm_status s = slm_model_save(m, w, &err);
    if (!s) s = slm_tokenizer_save(tok, w, &err);
    if (!s && slm_trainer_add_metadata(tr, w) != SLM_OK) s = slm_err_set(&err, SLM_ERR_NOMEM, "out of memory");
    if (!s) s = slm_gguf_set_str(w, "general.name", "slm");
    if (!s) s = slm_gguf_writer_write(w, out, &err);
    if (s) cli_fail(&err, out);
    if (!quiet) {
        fprintf(stderr, "wrote %s after %d steps in %.1fs", out, slm_trainer_step(tr), slm_time_now() - ps.start);
        if (!isnan(slm_trainer_val_loss(tr)))
            fprintf(stderr, ": validation loss %.4f, %.4f bits per byte", slm_trainer_val_loss(tr),
                    slm_trainer_val_bpb(tr));
        fputc('\n', stderr);
    }
    slm_gguf_writer_free(w);
    slm_trainer_free(tr);
    slm_token_data_free(&data);
    slm_model_free(m);
    slm_tokenizer_free(tok);
    slm_gguf_close(src);
    slm_pool_free(pool);
    return 0;
}
