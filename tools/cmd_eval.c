/* cmd_eval.c: `slm eval` — a classify model's accuracy, calibration, speed, memory, energy and
 * cost on a test set, side by side with a baseline, as report.json / report.md / SVG plots, and a
 * gate against a stored report. The work is in src/eval/report.c; this file parses and prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval/report.h"

static const char usage[] =
    "usage: slm eval MODEL.gguf --data TEST.jsonl [-o DIR] [options]\n"
    "\n"
    "Evaluates a classify model (slm finetune) on a JSONL test set ({\"text\": ..., \"label\": ...}),\n"
    "side by side with a baseline. Test labels the model does not know count as wrong and are listed.\n"
    "\n"
    "data and baseline:\n"
    "  --data FILE              the test set (required)\n"
    "  --baseline MODEL.gguf    a second classify model, evaluated the same way in the same run\n"
    "  --baseline-report FILE   or a stored report.json (e.g. scripts/baseline_tfidf.py's): its\n"
    "                           candidate becomes the baseline\n"
    "  --ood FILE               JSONL examples of intents the model never saw: AUROC of the max\n"
    "                           probability, and recall of these at the target in-scope accuracy\n"
    "  --ood-target X           accuracy the kept in-scope answers must reach         [0.95]\n"
    "\n"
    "measurement:\n"
    "  --batch N                texts per batched prediction (throughput, energy)    [32]\n"
    "  --latency-samples N      single queries timed, the first N texts              [200]\n"
    "  --warmup N               untimed single queries before them                   [5]\n"
    "  --ece-bins M             equal-width bins of the calibration error            [15]\n"
    "  --threads N              threads (default: all cores)\n"
    "\n"
    "energy, carbon, cost (RAPL from /sys/class/powercap when readable, else estimated):\n"
    "  --watts-per-core W       estimate = CPU seconds x W                           [10]\n"
    "  --grid-g-per-kwh G       grid carbon intensity, gCO2e/kWh                     [400]\n"
    "  --price-per-cpu-hour USD price of one CPU-hour                                [0.05]\n"
    "  --powercap DIR           the powercap tree to read; 'none' never reads RAPL\n"
    "\n"
    "output:\n"
    "  -o, --out DIR            write report.json, report.md, reliability.svg, accuracy_cost.svg\n"
    "  --train-log FILE         training log (JSON lines: step, loss, val_loss) -> loss.svg\n"
    "  --gate FILE              compare with a stored report.json: exit 3 when accuracy or\n"
    "                           macro-F1 dropped by more than the tolerance\n"
    "  --gate-tolerance P       allowed drop, percentage points                      [0.5]\n"
    "  --gate-latency-pct P     also fail when p95 latency grew by more than P percent\n"
    "  --quiet                  no progress lines\n"
    "\n"
    "exit status: 0 done (gate passed), 1 error, 2 bad usage, 3 gate failed.\n";

/* Loads, runs and frees one model, so each gets its own peak RSS and the two never share memory. */
static cJSON *eval_model(const char *path, const slm_eval_dataset *test, const slm_eval_dataset *ood,
                         slm_eval_opts *o, slm_pool *pool, int quiet) {
    slm_err err;
    o->peak_rss_reset = slm_eval_peak_rss_reset();
    if (!quiet) fprintf(stderr, "eval: %s on %ld examples...\n", path, test->n);
    slm_classifier *c = slm_classifier_load(path, pool, &err);
    if (!c) cli_fail(&err, path);
    cJSON *m;
    if (slm_eval_classifier(c, path, test, ood, o, &m, &err) != SLM_OK) cli_fail(&err, path);
    slm_classifier_free(c);
    return m;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *baseline = NULL, *baseline_report = NULL, *ood_path = NULL;
    const char *out = NULL, *train_log = NULL, *gate = NULL, *powercap = NULL;
    int quiet = 0;
    slm_eval_opts o;
    slm_eval_opts_default(&o);
    slm_gate_opts g = {0.5, -1};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--data")) data = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--baseline")) baseline = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--baseline-report")) baseline_report = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--ood")) ood_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--ood-target")) o.ood_target = cli_double(a, cli_value(argc, argv, &i), 1e-6, 1);
        else if (!strcmp(a, "--batch")) o.batch_size = (int)cli_long(a, cli_value(argc, argv, &i), 1, 65536);
        else if (!strcmp(a, "--latency-samples")) o.latency_samples = (int)cli_long(a, cli_value(argc, argv, &i), 0, 1 << 24);
        else if (!strcmp(a, "--warmup")) o.warmup = (int)cli_long(a, cli_value(argc, argv, &i), 0, 1 << 20);
        else if (!strcmp(a, "--ece-bins")) o.ece_bins = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1000);
        else if (!strcmp(a, "--threads")) o.threads = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1024);
        else if (!strcmp(a, "--watts-per-core")) o.energy.watts_per_core = cli_double(a, cli_value(argc, argv, &i), 0, 1e4);
        else if (!strcmp(a, "--grid-g-per-kwh")) o.energy.grid_g_per_kwh = cli_double(a, cli_value(argc, argv, &i), 0, 1e5);
        else if (!strcmp(a, "--price-per-cpu-hour")) o.energy.price_per_cpu_hour = cli_double(a, cli_value(argc, argv, &i), 0, 1e6);
        else if (!strcmp(a, "--powercap")) powercap = cli_value(argc, argv, &i);
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--train-log")) train_log = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--gate")) gate = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--gate-tolerance")) g.tolerance_points = cli_double(a, cli_value(argc, argv, &i), 0, 100);
        else if (!strcmp(a, "--gate-latency-pct")) g.latency_pct = cli_double(a, cli_value(argc, argv, &i), 0, 1e6);
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (a[0] == '-' && a[1]) cli_die("eval: unknown option '%s' (see slm eval --help)", a);
        else if (!model) model = a;
        else cli_die("eval: one model at a time ('%s' and '%s'); the second goes after --baseline", model, a);
    }
    if (!model) cli_die("eval: MODEL.gguf is required (see slm eval --help)");
    if (!data) cli_die("eval: --data TEST.jsonl is required (see slm eval --help)");
    if (baseline && baseline_report) cli_die("eval: give --baseline or --baseline-report, not both");
    if (powercap) o.energy.powercap_root = strcmp(powercap, "none") ? powercap : "";

    slm_err err;
    /* the classifier splits work over its own pool; OpenBLAS threads would compete with it */
    slm_pool *pool = cli_pool(o.threads);
    o.threads = slm_pool_size(pool);

    slm_eval_dataset test, ood = {0};
    if (slm_eval_dataset_load(data, &test, &err) != SLM_OK) cli_fail(&err, "--data");
    if (ood_path && slm_eval_dataset_load(ood_path, &ood, &err) != SLM_OK) cli_fail(&err, "--ood");
    /* stored reports are read first: a bad path fails before minutes of measuring */
    cJSON *base = NULL, *stored = NULL;
    if (baseline_report) {
        if (slm_eval_report_load(baseline_report, &stored, &err) != SLM_OK) cli_fail(&err, "--baseline-report");
        base = cJSON_DetachItemFromObjectCaseSensitive(stored, "candidate");
        cJSON_Delete(stored);
    }
    if (gate) {
        if (slm_eval_report_load(gate, &stored, &err) != SLM_OK) cli_fail(&err, "--gate");
        cJSON_Delete(stored);
    }

    cJSON *cand = eval_model(model, &test, ood_path ? &ood : NULL, &o, pool, quiet);
    if (baseline) base = eval_model(baseline, &test, ood_path ? &ood : NULL, &o, pool, quiet);
    cJSON *report = slm_eval_report_new(&o, data, test.n, ood_path, ood.n, cand, base);
    if (!report) cli_die("eval: out of memory building the report");

    slm_eval_report_print_summary(report, stdout);
    if (out) {
        if (slm_eval_report_write(report, out, train_log, &err) != SLM_OK) cli_fail(&err, "writing the report");
        printf("report: %s/report.json, %s/report.md, SVG plots\n", out, out);
    }
    int status = 0;
    if (gate) {
        slm_gate_result res;
        if (slm_eval_gate(report, gate, &g, &res, &err) != SLM_OK) cli_fail(&err, "--gate");
        slm_gate_print(&res, gate, stdout);
        status = res.pass ? 0 : 3;
    }
    fflush(stdout);
    cJSON_Delete(report);
    slm_eval_dataset_free(&test);
    slm_eval_dataset_free(&ood);
    slm_pool_free(pool);
    return status;
}
