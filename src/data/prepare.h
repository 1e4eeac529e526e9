/* prepare.h: the data pipeline behind `slm data prepare` — a user's CSV/JSONL files in, clean
 * split JSONL and a dataset card out.
 *
 *   read (csv.c / jsonl.c) -> malformed rows reported and counted (or fatal with --on-error fail)
 *   -> normalise (clean.c) -> drop empty -> scrub PII (pii.c, on request) -> length filters
 *   -> drop duplicates (dedup.c) -> hold out labels (classify, on request) -> stratified seeded
 *   split (split.c) -> OUT/train.jsonl, OUT/val.jsonl [, OUT/test.jsonl] [, OUT/ood.jsonl],
 *   OUT/labels.txt, OUT/card.json (card.c)
 *
 * Held-out labels (--hold-out, --hold-out-random) are for open-set evaluation: every kept row with
 * such a label, from the inputs and from --test, goes to OUT/ood.jsonl instead of a split (the
 * inputs' rows first, then --test's, so the last ood_test_rows lines are the test file's), and
 * labels.txt lists only the others. The model never trains on them; `slm eval --ood` scores them.
 *
 * Every row read is accounted for: rows_read = malformed + dropped_empty + dropped_too_short +
 * dropped_too_long + dropped_duplicate + the rows of all splits + ood_rows (and for --test:
 * rows_read = malformed + dropped_empty + test_rows + ood_test_rows). Inputs are read one row at a time;
 * the kept rows are held in memory (the split needs them all). All outputs are written to
 * temporary files and renamed only when every one is complete: a failure leaves no partial file.
 */
#ifndef SLM_DATA_PREPARE_H
#define SLM_DATA_PREPARE_H

#include <stdint.h>

#include "core/error.h"
#include "data/jsonl.h"
#include "data/pii.h"
#include "data/record.h"
#include "data/split.h"

#define SLM_DATA_MAX_INPUTS 16
#define SLM_DATA_BAD_KEEP 10 /* malformed rows remembered for the card */

typedef struct {
    const char *inputs[SLM_DATA_MAX_INPUTS]; /* CSV (.csv, or not starting with '{') or JSONL files */
    int n_inputs;
    const char *test_path; /* an official test file: cleaned into OUT/test.jsonl, never split */
    const char *out_dir;   /* created if missing */
    slm_data_task task;    /* SLM_TASK_AUTO: from the input's shape */
    slm_data_keys keys;    /* CSV column / JSONL key names (defaults text, label, prompt, ...) */
    double shares[SLM_SPLIT_MAX];
    int n_shares; /* 2 (train, val) or 3 (train, val, test) */
    uint64_t seed;
    int scrub_pii, keep_duplicates, lowercase_dedup, fail_on_error;
    long min_chars, max_chars; /* in code points after cleaning; 0 = no limit */
    /* classify only, at most one of the two: labels whose rows go to OUT/ood.jsonl */
    const char *hold_out; /* "A,B,...": labels of the inputs or the test file (spaces around names trimmed) */
    int hold_out_random;  /* N labels of the inputs, a function of seed and the sorted label set only */
    /* optional callbacks: each malformed row (skip mode), and progress every 50,000 rows */
    void (*on_malformed)(void *ctx, const char *file, long line, const char *reason);
    void (*on_progress)(void *ctx, const char *file, long long bytes, long long total, long rows);
    void *cb_ctx;
} slm_data_prepare_opts;

void slm_data_prepare_opts_default(slm_data_prepare_opts *o);

typedef struct {
    char file[256];
    long line;
    char reason[200];
} slm_data_bad_row;

/* What happened to the rows of one group of files (the inputs, or the test file). */
typedef struct {
    long rows_read, malformed, blank_lines, dropped_empty, dropped_too_short, dropped_too_long,
        dropped_duplicate, label_conflicts, invalid_utf8_rows;
    slm_pii_counts pii;
    int n_bad;
    slm_data_bad_row bad[SLM_DATA_BAD_KEEP];
} slm_data_counts;

typedef struct {
    char path[512];
    const char *role; /* "train" or "test" */
    const char *format; /* "csv" or "jsonl" */
    uint64_t bytes;
    char sha256[65];
} slm_data_input;

typedef struct {
    slm_data_task task;
    int n_inputs;
    slm_data_input inputs[SLM_DATA_MAX_INPUTS + 1];
    slm_data_counts main, test;
    int n_splits;            /* 2 or 3 */
    long split_rows[SLM_SPLIT_MAX];
    int n_labels;            /* classify: labels of the kept rows, sorted by byte value */
    char **labels;
    long *label_counts;      /* [n_labels][SLM_SPLIT_MAX]: rows of each label in each split */
    int has_test;            /* --test given */
    long test_rows;          /* rows written to test.jsonl from --test */
    long test_leaked;        /* test rows whose text (dedup key) is also in train */
    long *test_label_counts; /* [n_labels] */
    int n_unseen;            /* test labels never seen in the inputs, and their row counts */
    char **unseen;
    long *unseen_counts;
    int n_held;              /* held-out labels, sorted by byte value (0: no ood.jsonl) */
    char **held;
    long *held_counts;       /* [n_held][2]: rows of each held label from the inputs, from --test */
    long ood_rows;           /* rows of the inputs written to ood.jsonl (not in any split) */
    long ood_test_rows;      /* rows of --test written to ood.jsonl (not in test.jsonl) */
    long ood_test_leaked;    /* of those, rows whose text (dedup key) is also in train */
} slm_data_stats;

/* Runs the pipeline. stats is filled (also on most failures, for reporting); free it with
 * slm_data_stats_free. With fail_on_error, the first malformed row returns SLM_ERR_FORMAT with
 * "file:line: reason" and writes nothing. A hold-out that names a label found in neither the
 * inputs nor the test file, holds out every label, or leaves fewer than 2 returns SLM_ERR_ARG
 * naming the labels, and writes nothing. */
slm_status slm_data_prepare(const slm_data_prepare_opts *o, slm_data_stats *stats, slm_err *err);
void slm_data_stats_free(slm_data_stats *s);

/* The dataset card (card.c): a JSON document (malloc'd, NULL on OOM). */
char *slm_data_card_json(const slm_data_prepare_opts *o, const slm_data_stats *s);

#endif
