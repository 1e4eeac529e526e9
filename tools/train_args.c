/* train_args.c: the training commands' common options and progress line (see train_args.h). */
#include "train_args.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

bool train_args_parse(const train_args *ta, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (ta->steps && !strcmp(a, "--steps")) *ta->steps = (int)cli_long(a, cli_value(argc, argv, i), 1, 1 << 30);
    else if (ta->epochs && !strcmp(a, "--epochs")) *ta->epochs = (float)cli_double(a, cli_value(argc, argv, i), 1e-6, 1e6);
    else if (ta->batch && !strcmp(a, "--batch")) *ta->batch = (int)cli_long(a, cli_value(argc, argv, i), 1, 4096);
    else if (ta->accum && !strcmp(a, "--accum"))
        *ta->accum = (int)cli_long(a, cli_value(argc, argv, i), 1, ta->accum_max);
    else if (ta->max_len && !strcmp(a, "--max-len")) {
        *ta->max_len = (int)cli_long(a, cli_value(argc, argv, i), ta->max_len_min, 65536);
        if (ta->max_len_given) *ta->max_len_given = 1;
    } else if (ta->lr && !strcmp(a, "--lr")) {
        *ta->lr = (float)cli_double(a, cli_value(argc, argv, i), 1e-9, 10);
        if (ta->lr_given) *ta->lr_given = 1;
    } else if (ta->lr_min && !strcmp(a, "--lr-min")) *ta->lr_min = (float)cli_double(a, cli_value(argc, argv, i), 0, 10);
    else if (ta->warmup && !strcmp(a, "--warmup")) *ta->warmup = (int)cli_long(a, cli_value(argc, argv, i), 0, 1 << 30);
    else if (ta->weight_decay && !strcmp(a, "--wd"))
        *ta->weight_decay = (float)cli_double(a, cli_value(argc, argv, i), 0, 10);
    else if (ta->grad_clip && !strcmp(a, "--clip")) *ta->grad_clip = (float)cli_double(a, cli_value(argc, argv, i), 0, 1e9);
    else if (ta->dropout && !strcmp(a, "--dropout")) *ta->dropout = (float)cli_double(a, cli_value(argc, argv, i), 0, 0.9);
    else if (ta->eval_every && !strcmp(a, "--eval-every"))
        *ta->eval_every = (int)cli_long(a, cli_value(argc, argv, i), 0, 1 << 30);
    else if (ta->patience && !strcmp(a, "--patience"))
        *ta->patience = (int)cli_long(a, cli_value(argc, argv, i), 0, 1 << 30);
    else if (ta->seed && !strcmp(a, "--seed")) *ta->seed = (uint64_t)cli_long(a, cli_value(argc, argv, i), 0, 0x7fffffffL);
    else if (ta->threads && !strcmp(a, "--threads")) *ta->threads = (int)cli_long(a, cli_value(argc, argv, i), 1, 1024);
    else if (ta->quiet && !strcmp(a, "--quiet")) *ta->quiet = 1;
    else return false;
    return true;
}

void train_progress_init(train_progress *ps, int quiet, int steps) {
    ps->tty = isatty(2);
    ps->quiet = quiet;
    ps->every = steps / 50 > 0 ? steps / 50 : 1;
}

bool train_progress_begin(const train_progress *ps, int step, int steps, int validated) {
    if (ps->quiet) return false;
    if (!(ps->tty || validated || step == steps || step % ps->every == 0 || step == 1)) return false;
    fprintf(stderr, "%sstep %d/%d", ps->tty ? "\r" : "", step, steps);
    return true;
}

void train_progress_end(const train_progress *ps, int step, int steps, int validated, int stopped_early) {
    if (stopped_early) fprintf(stderr, " | early stop");
    if (!ps->tty || validated || step == steps || stopped_early) fputc('\n', stderr);
    else fputs("   ", stderr);
    fflush(stderr);
}

void train_progress_sft(void *ctx, const slm_sft_progress *p) {
    const train_progress *ps = ctx;
    int validated = !isnan(p->val_loss);
    if (!train_progress_begin(ps, p->step, p->steps, validated)) return;
    double eta = p->eta_s;
    fprintf(stderr, " | epoch %.2f | loss %.4f | lr %.2e | %.0f tok/s | eta %.0fs", p->epoch, p->loss, p->lr,
            p->tokens_per_s, eta >= 0 && eta < 1e7 ? eta : 0);
    if (validated) fprintf(stderr, " | val loss %.4f", p->val_loss);
    train_progress_end(ps, p->step, p->steps, validated, p->stopped_early);
}

slm_sft_format sft_format_choose(const char *cmd, const slm_gguf *src, const char *template_name, int no_template,
                                 const char *sep, int sep_given, int max_len) {
    slm_err err;
    slm_sft_format f = {.family = SLM_CHAT_UNKNOWN, .separator = sep, .max_len = max_len};
    if (template_name) {
        if (slm_chat_family_from_name(template_name, &f.family, &err) != SLM_OK) cli_fail(&err, "--chat-template");
    } else if (!no_template && slm_gguf_find_kv(src, "tokenizer.chat_template")) {
        if (slm_chat_template_from_gguf(src, &f.family, &err) != SLM_OK) cli_fail(&err, "chat template");
    }
    if (sep_given && f.family != SLM_CHAT_UNKNOWN)
        cli_die("%s: --separator applies without a chat template (this run uses %s; add --no-chat-template)", cmd,
                slm_chat_family_name(f.family));
    return f;
}

void sft_data_summary(const slm_sft_data *d, const slm_sft_format *f, int max_len, int quiet) {
    if (quiet) return;
    fprintf(stderr, "data: %d training examples (%zu tokens, %zu counted), %d validation (%zu counted); "
            "rendering: %s\n", d->train.n, d->train.n_tokens, d->train.n_counted, d->val.n, d->val.n_counted,
            f->family == SLM_CHAT_UNKNOWN ? "raw text" : slm_chat_family_name(f->family));
    int cut = d->train.n_cut + d->val.n_cut, skipped = d->train.n_skipped + d->val.n_skipped;
    if (cut || skipped)
        fprintf(stderr, "data: %d examples cut to --max-len %d, %d skipped (no completion token left)\n", cut,
                max_len, skipped);
}
