/* cmd_data.c: `slm data prepare` — a user's CSV/JSONL to clean, split JSONL and a dataset card.
 * Parses options, runs slm_data_prepare (src/data/prepare.h), prints malformed rows, progress and
 * a summary of the card. No logic of its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data/prepare.h"

static const char usage[] =
    "usage: slm data prepare INPUT [INPUT ...] -o DIR [options]\n"
    "\n"
    "Cleans CSV (RFC 4180, with a header row) or JSONL ({\"text\",\"label\"}, {\"prompt\",\"completion\"},\n"
    "{\"messages\":[{\"role\",\"content\"}...]}) and writes DIR/train.jsonl, DIR/val.jsonl [, DIR/test.jsonl],\n"
    "DIR/labels.txt (classify) and DIR/card.json (counts, labels, sha256 of every input).\n"
    "\n"
    "shape:\n"
    "  --task classify|generate|chat   what the rows are                     [from the input]\n"
    "  --text COL --label COL          classify columns (CSV header) or keys  [text, label]\n"
    "  --prompt COL --completion COL   generate columns or keys               [prompt, completion]\n"
    "\n"
    "cleaning:\n"
    "  --min-chars N --max-chars N     drop rows shorter/longer (characters)  [no limit]\n"
    "  --keep-duplicates               keep rows whose text repeats an earlier row's\n"
    "  --lowercase-dedup               rows differing only in case are duplicates\n"
    "  --scrub-pii                     replace emails, phone and card numbers by [EMAIL] [PHONE] [CARD]\n"
    "  --on-error skip|fail            a malformed row is reported and skipped, or stops the run [skip]\n"
    "\n"
    "splitting:\n"
    "  --split A,B[,C]                 train,val[,test] shares (stratified by label) [0.9,0.1]\n"
    "  --seed N                        the split's random seed               [1]\n"
    "  --test FILE                     an official test set: cleaned into DIR/test.jsonl, not split;\n"
    "                                  rows also in train are reported (leakage)\n"
    "\n"
    "open-set evaluation (classify):\n"
    "  --hold-out LABEL[,LABEL...]     rows of these labels (inputs and --test) go to DIR/ood.jsonl,\n"
    "                                  not to the splits or labels.txt; for slm eval --ood\n"
    "  --hold-out-random N             hold out N labels chosen by --seed (same seed and labels,\n"
    "                                  same choice); at least 2 labels must remain\n"
    "\n"
    "  -o, --out DIR                   output directory (created if missing)\n"
    "  --quiet                         no progress or per-row messages\n";

typedef struct {
    int quiet, tty;
    long shown;
} report_ctx;

static void on_malformed(void *ctx, const char *file, long line, const char *reason) {
    report_ctx *r = ctx;
    if (r->quiet) return;
    if (r->shown++ < 100) fprintf(stderr, "%s:%ld: %s (skipped)\n", file, line, reason);
    else if (r->shown == 101) fprintf(stderr, "... more malformed rows: see the counts in card.json\n");
}

static void on_progress(void *ctx, const char *file, long long bytes, long long total, long rows) {
    report_ctx *r = ctx;
    if (r->quiet || total < (8 << 20)) return; /* only big files */
    fprintf(stderr, "%s%s: %ld rows, %.0f%%%s", r->tty ? "\r" : "", file, rows,
            total ? 100.0 * (double)bytes / (double)total : 100.0, r->tty ? "   " : "\n");
    if (r->tty && bytes >= total) fputc('\n', stderr);
}

static void print_summary(const slm_data_prepare_opts *o, const slm_data_stats *s) {
    static const char *const names[3] = {"train", "val", "test"};
    const slm_data_counts *c = &s->main;
    long kept = 0;
    for (int k = 0; k < s->n_splits; k++) kept += s->split_rows[k];
    printf("task %s: %ld rows read, %ld malformed, %ld empty, %ld too short, %ld too long, %ld duplicate",
           slm_data_task_name(s->task), c->rows_read, c->malformed, c->dropped_empty, c->dropped_too_short,
           c->dropped_too_long, c->dropped_duplicate);
    if (s->n_held) printf(", %ld held out", s->ood_rows);
    printf(" -> %ld kept\n", kept);
    if (c->label_conflicts) printf("  %ld duplicates had a different label than the row kept\n", c->label_conflicts);
    if (o->scrub_pii)
        printf("  PII replaced: %ld email, %ld phone, %ld card\n", c->pii.email, c->pii.phone, c->pii.card);
    if (c->invalid_utf8_rows) printf("  %ld rows had invalid UTF-8 (replaced by U+FFFD)\n", c->invalid_utf8_rows);
    for (int k = 0; k < s->n_splits; k++) printf("  %-5s %ld rows\n", names[k], s->split_rows[k]);
    if (s->task == SLM_TASK_CLASSIFY) printf("  %d labels\n", s->n_labels);
    if (s->has_test) {
        printf("test %s: %ld rows read, %ld malformed, %ld empty", s->inputs[s->n_inputs - 1].path, s->test.rows_read,
               s->test.malformed, s->test.dropped_empty);
        if (s->n_held) printf(", %ld held out", s->ood_test_rows);
        printf(" -> %ld rows; %ld also in train", s->test_rows, s->test_leaked);
        if (s->n_unseen) printf("; %d labels not in train", s->n_unseen);
        printf("\n");
    }
    if (s->n_held) {
        if (o->hold_out) printf("held out %d labels (given):", s->n_held);
        else printf("held out %d labels (random, seed %llu):", s->n_held, (unsigned long long)o->seed);
        for (int h = 0; h < s->n_held; h++) printf("%s %s", h ? "," : "", s->held[h]);
        printf("\n  %ld rows to ood.jsonl: %ld from the inputs, %ld from the test file", s->ood_rows + s->ood_test_rows,
               s->ood_rows, s->ood_test_rows);
        if (s->ood_test_leaked) printf(" (%ld with a text also in train)", s->ood_test_leaked);
        printf("\n");
    }
    printf("wrote %s/{train,val%s%s.jsonl%s, card.json}\n", o->out_dir, s->n_splits == 3 || s->has_test ? ",test" : "",
           s->n_held ? ",ood" : "", s->task == SLM_TASK_CLASSIFY ? ", labels.txt" : "");
}

static int data_prepare(int argc, char **argv) {
    slm_data_prepare_opts o;
    slm_data_prepare_opts_default(&o);
    report_ctx rc = {0, isatty(2), 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--task")) {
            const char *v = cli_value(argc, argv, &i);
            int t = slm_data_task_parse(v);
            if (t < 0) cli_die("data prepare: --task: expected classify, generate or chat, got '%s'", v);
            o.task = (slm_data_task)t;
        } else if (!strcmp(a, "--text")) o.keys.text = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--label")) o.keys.label = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--prompt")) o.keys.prompt = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--completion")) o.keys.completion = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--split")) {
            slm_err err;
            const char *v = cli_value(argc, argv, &i);
            if (!(o.n_shares = slm_split_parse(v, o.shares, &err))) cli_die("data prepare: --%s", err.msg);
        } else if (!strcmp(a, "--seed")) o.seed = (uint64_t)cli_long(a, cli_value(argc, argv, &i), 0, 0x7fffffffL);
        else if (!strcmp(a, "--scrub-pii")) o.scrub_pii = 1;
        else if (!strcmp(a, "--min-chars")) o.min_chars = cli_long(a, cli_value(argc, argv, &i), 0, 1L << 40);
        else if (!strcmp(a, "--max-chars")) o.max_chars = cli_long(a, cli_value(argc, argv, &i), 1, 1L << 40);
        else if (!strcmp(a, "--on-error")) {
            const char *v = cli_value(argc, argv, &i);
            if (!strcmp(v, "fail")) o.fail_on_error = 1;
            else if (!strcmp(v, "skip")) o.fail_on_error = 0;
            else cli_die("data prepare: --on-error: expected skip or fail, got '%s'", v);
        } else if (!strcmp(a, "--keep-duplicates")) o.keep_duplicates = 1;
        else if (!strcmp(a, "--lowercase-dedup")) o.lowercase_dedup = 1;
        else if (!strcmp(a, "--test")) o.test_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--hold-out")) o.hold_out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--hold-out-random")) o.hold_out_random = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) o.out_dir = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--quiet")) rc.quiet = 1;
        else if (a[0] == '-' && a[1]) cli_die("data prepare: unknown option '%s' (see slm data prepare --help)", a);
        else {
            if (o.n_inputs == SLM_DATA_MAX_INPUTS) cli_die("data prepare: at most %d input files", SLM_DATA_MAX_INPUTS);
            o.inputs[o.n_inputs++] = a;
        }
    }
    if (!o.n_inputs) cli_die("data prepare: give an input file (see slm data prepare --help)");
    if (!o.out_dir) cli_die("data prepare: -o DIR is required (see slm data prepare --help)");
    if (o.max_chars && o.min_chars > o.max_chars) cli_die("data prepare: --min-chars is above --max-chars");
    if (o.hold_out && o.hold_out_random) cli_die("data prepare: give --hold-out or --hold-out-random, not both");
    if (o.test_path && o.n_shares == 3)
        cli_die("data prepare: --test gives the test set; split into train,val only (e.g. --split 0.9,0.1)");
    o.on_malformed = on_malformed;
    o.on_progress = on_progress;
    o.cb_ctx = &rc;
    slm_data_stats st;
    slm_err err;
    slm_status s = slm_data_prepare(&o, &st, &err);
    if (s != SLM_OK) {
        slm_data_stats_free(&st);
        cli_fail(&err, "data prepare");
    }
    print_summary(&o, &st);
    slm_data_stats_free(&st);
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs("usage: slm data prepare ...   (slm data prepare --help for its options)\n\n"
              "subcommands:\n  prepare    clean, de-duplicate, scrub and split a CSV/JSONL dataset; write its card\n",
              argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "prepare")) return data_prepare(argc - 1, argv + 1);
    cli_die("data: unknown subcommand '%s' (try: slm data prepare --help)", argv[1]);
}
