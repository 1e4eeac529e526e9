/* report.h: `slm eval` as a library — run a classify model over a labelled test set (metrics,
 * batched throughput, single-query latency, energy, peak memory), put candidate and baseline side
 * by side in one report (report.json for machines, report.md for people, SVG plots), and gate a
 * candidate against a stored report.
 *
 * Every model of a report is one JSON object in the schema below, whether slm measured it or a
 * foreign tool did (scripts/baseline_tfidf.py writes the same keys), so the Markdown tables, the
 * plots and the gate read only JSON. Units are in the key names; fractions are in [0, 1]; a figure
 * that could not be measured is null.
 *
 *   report.json = {
 *     "schema": "slm-eval-report/1", "created_utc": "2026-01-01T00:00:00Z",
 *     "test_data": {"path", "n_examples"}, "ood_data": {"path", "n_examples"} | absent,
 *     "settings": {"threads", "batch_size", "latency_samples", "ece_bins", "watts_per_core",
 *                  "grid_gco2e_per_kwh", "price_usd_per_cpu_hour", "ood_target_accuracy"},
 *     "candidate": MODEL, "baseline": MODEL | absent }
 *   MODEL = {
 *     "name", "path", "kind" ("slm-classify", "tfidf-logreg", ...), "file_bytes", "n_labels",
 *     "labels": [..], "n_examples", "n_unknown_label", "unknown_labels": {"label": count},
 *     "accuracy", "macro_f1", "ece", "ece_bins", "mean_confidence",
 *     "per_label": [{"label", "precision", "recall", "f1", "support"}],
 *     "confusion": [[..]] (row = gold, column = predicted, in "labels" order),
 *     "reliability": [{"lo", "hi", "count", "confidence", "accuracy"}],
 *     "latency_samples", "latency_ms_mean", "latency_ms_p50", "latency_ms_p90", "latency_ms_p95",
 *     "latency_ms_p99", "latency_ms_max",
 *     "batch_size", "throughput_queries_per_s", "batch_wall_s", "batch_cpu_s",
 *     "peak_rss_kib", "peak_rss_scope" ("model": reset before loading it; "process"),
 *     "energy_method" ("measured (RAPL)" | "estimated"), "energy_note", "energy_j",
 *     "energy_j_per_query", "queries_per_kwh", "gco2e_per_1k_queries", "cpu_s_per_query",
 *     "cost_usd_per_1k_queries",
 *     "ood": {"n_in", "n_ood", "auroc", "target_in_accuracy", "reached", "threshold",
 *             "in_coverage", "in_accuracy", "ood_recall"} | absent }
 *
 * Test labels the model does not know are not an error: those examples count as wrong, and the
 * report lists each such label with its count (a model trained on other intents should lose
 * accuracy for them, visibly). Texts are JSONL rows {"text": ..., "label": ...}.
 */
#ifndef SLM_EVAL_REPORT_H
#define SLM_EVAL_REPORT_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "eval/energy.h"
#include "task/classifier.h"

#define SLM_EVAL_SCHEMA "slm-eval-report/1"
#define SLM_EVAL_MAX_ROWS 10000000L

typedef struct {
    long n;
    char **texts;   /* (n) */
    size_t *lens;   /* (n) */
    char **labels;  /* (n) */
} slm_eval_dataset;

/* Reads a JSONL file of {"text", "label"} rows (blank lines skipped; a label may be a string or
 * an integer). Errors name the file and line (SLM_ERR_FORMAT), an empty file is SLM_ERR_FORMAT. */
slm_status slm_eval_dataset_load(const char *path, slm_eval_dataset *ds, slm_err *err);
void slm_eval_dataset_free(slm_eval_dataset *ds);

typedef struct {
    int batch_size;          /* texts per predict call in the batched run        [32] */
    int latency_samples;     /* single queries timed (the first N texts)         [200] */
    int warmup;              /* untimed single queries before them               [5] */
    int ece_bins;            /* equal-width calibration bins                     [15] */
    double ood_target;       /* in-scope accuracy for the OOD recall figure      [0.95] */
    slm_energy_opts energy;
    int threads;             /* recorded in the report only */
    int peak_rss_reset;      /* 1 when the caller reset the peak before loading the model */
} slm_eval_opts;

void slm_eval_opts_default(slm_eval_opts *o);

/* Evaluates classifier c (loaded from model_path) on ds and, when ood is not NULL, on examples of
 * intents it never saw. Returns one MODEL object (see above) in *out (caller cJSON_Deletes).
 * Errors: predict errors, out of memory, a dataset of 0 rows. */
slm_status slm_eval_classifier(slm_classifier *c, const char *model_path, const slm_eval_dataset *ds,
                               const slm_eval_dataset *ood, const slm_eval_opts *o, cJSON **out,
                               slm_err *err);

/* The report object: settings from o, the data paths, and the models (ownership taken; baseline
 * may be NULL). Returns NULL only on out of memory. */
cJSON *slm_eval_report_new(const slm_eval_opts *o, const char *test_path, long n_test,
                           const char *ood_path, long n_ood, cJSON *candidate, cJSON *baseline);

/* Loads a report.json (ours or a foreign tool's in the same schema). Errors name the file: it
 * cannot be read (SLM_ERR_IO), it is not JSON or has no "candidate" object (SLM_ERR_FORMAT). */
slm_status slm_eval_report_load(const char *path, cJSON **report, slm_err *err);

/* Writes into dir (created if missing): report.json, report.md, reliability.svg,
 * accuracy_cost.svg and, when train_log is given (JSON lines with "step", "loss", optional
 * "val_loss"), loss.svg. Every file is written atomically. */
slm_status slm_eval_report_write(const cJSON *report, const char *dir, const char *train_log,
                                 slm_err *err);

/* A short side-by-side table of the report's headline figures, for the terminal. */
void slm_eval_report_print_summary(const cJSON *report, FILE *f);

/* ---- the gate ---- */

typedef struct {
    double tolerance_points;  /* accuracy / macro-F1 may drop this many percentage points [0.5] */
    double latency_pct;       /* p95 latency may grow this many percent; < 0 = not gated [-1] */
} slm_gate_opts;

#define SLM_GATE_MAX_ROWS 4

typedef struct {
    char metric[32];
    double old_value, new_value, delta, allowed; /* allowed: the worst new value that passes */
    int pass;
} slm_gate_row;

typedef struct {
    int n;
    slm_gate_row rows[SLM_GATE_MAX_ROWS];
    int pass; /* every row passed */
} slm_gate_result;

/* Compares report's candidate with stored_path's candidate. Errors (the gate cannot judge): the
 * stored report is missing or corrupt, or a gated metric is missing/null in either report — each
 * naming the file and key. A regression is not an error: see res->pass. */
slm_status slm_eval_gate(const cJSON *report, const char *stored_path, const slm_gate_opts *o,
                         slm_gate_result *res, slm_err *err);
/* The verdict, one line per metric (metric, old, new, delta, allowed, PASS/FAIL) and a last line. */
void slm_gate_print(const slm_gate_result *res, const char *stored_path, FILE *f);

#endif
