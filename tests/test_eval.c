/* test_eval.c: slm eval's library — classification metrics on hand-computed cases, percentiles,
 * energy arithmetic and RAPL parsing from a fake powercap tree, SVG well-formedness, report
 * JSON round trip, the regression gate, and end to end a tiny classify model trained here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "eval/classify_metrics.h"
#include "eval/energy.h"
#include "eval/latency.h"
#include "eval/report.h"
#include "eval/svg.h"
#include "core/rng.h"
#include "model/model.h"
#include "task/classifier.h"
#include "task/finetune.h"
#include "task/task_data.h"
#include "tokenizer/tokenizer.h"
#include "util/testutil.h"

/* ---- helpers ---- */

/* Rows with `hi` on the predicted label and the rest spread evenly. */
static void fill_rows(float *probs, const int *pred, int n, int L, float hi) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < L; j++) probs[i * L + j] = j == pred[i] ? hi : (1.0f - hi) / (float)(L - 1);
}

/* ---- classification metrics ---- */

static void test_metrics_perfect_and_all_wrong(void **state) {
    (void)state;
    int gold[3] = {0, 1, 2}, pred_ok[3] = {0, 1, 2}, pred_bad[3] = {1, 2, 0};
    float probs[9];
    slm_cls_metrics m;
    fill_rows(probs, pred_ok, 3, 3, 1.0f);
    TU_OK(slm_cls_metrics_compute(probs, gold, 3, 3, 10, &m, tu_err()));
    assert_int_equal(m.n_correct, 3);
    assert_true(m.accuracy == 1.0 && m.macro_f1 == 1.0 && m.ece == 0.0);
    for (int j = 0; j < 3; j++) {
        assert_true(m.precision[j] == 1.0 && m.recall[j] == 1.0 && m.f1[j] == 1.0);
        assert_int_equal(m.support[j], 1);
        assert_int_equal(m.confusion[j * 3 + j], 1);
    }
    assert_int_equal(m.bins[9].count, 3); /* confidence 1.0 goes to the last bin */
    slm_cls_metrics_free(&m);

    fill_rows(probs, pred_bad, 3, 3, 1.0f);
    TU_OK(slm_cls_metrics_compute(probs, gold, 3, 3, 10, &m, tu_err()));
    assert_true(m.accuracy == 0.0 && m.macro_f1 == 0.0);
    assert_true(fabs(m.ece - 1.0) < 1e-12); /* fully confident, never right */
    assert_int_equal(m.confusion[0 * 3 + 1], 1);
    assert_int_equal(m.confusion[2 * 3 + 0], 1);
    slm_cls_metrics_free(&m);
}

static void test_metrics_known_3x3(void **state) {
    (void)state;
    /* gold A: A A A B; gold B: A B B C; gold C: C C.  Hand-computed:
     * P = (3/4, 2/3, 2/3), R = (3/4, 1/2, 1), F1 = (3/4, 4/7, 4/5), macro-F1 = 0.707142857... */
    int gold[10] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2};
    int pred[10] = {0, 0, 0, 1, 0, 1, 1, 2, 2, 2};
    float probs[30];
    fill_rows(probs, pred, 10, 3, 0.6f);
    slm_cls_metrics m;
    TU_OK(slm_cls_metrics_compute(probs, gold, 10, 3, 10, &m, tu_err()));
    long want[9] = {3, 1, 0, 1, 2, 1, 0, 0, 2};
    for (int k = 0; k < 9; k++) assert_int_equal(m.confusion[k], want[k]);
    assert_true(fabs(m.accuracy - 0.7) < 1e-12);
    double P[3] = {0.75, 2.0 / 3, 2.0 / 3}, R[3] = {0.75, 0.5, 1.0}, F[3] = {0.75, 4.0 / 7, 0.8};
    for (int j = 0; j < 3; j++) {
        assert_true(fabs(m.precision[j] - P[j]) < 1e-12);
        assert_true(fabs(m.recall[j] - R[j]) < 1e-12);
        assert_true(fabs(m.f1[j] - F[j]) < 1e-12);
    }
    assert_int_equal(m.support[0], 4);
    assert_int_equal(m.support[2], 2);
    assert_int_equal(m.predicted[0], 4);
    assert_true(fabs(m.macro_f1 - (0.75 + 4.0 / 7 + 0.8) / 3) < 1e-12);
    /* every confidence is 0.6: one bin [0.6, 0.7), accuracy 0.7, ECE |0.7 - 0.6| */
    assert_int_equal(m.bins[6].count, 10);
    assert_true(fabs(m.ece - 0.1) < 1e-6);
    slm_cls_metrics_free(&m);
}

static void test_metrics_unknown_gold_counts_wrong(void **state) {
    (void)state;
    int gold[4] = {0, 1, -1, -1}, pred[4] = {0, 1, 0, 1};
    float probs[8];
    fill_rows(probs, pred, 4, 2, 0.9f);
    slm_cls_metrics m;
    TU_OK(slm_cls_metrics_compute(probs, gold, 4, 2, 10, &m, tu_err()));
    assert_int_equal(m.n_unknown, 2);
    assert_true(fabs(m.accuracy - 0.5) < 1e-12);
    assert_true(m.recall[0] == 1.0 && fabs(m.precision[0] - 0.5) < 1e-12); /* FP from unknown */
    assert_int_equal(m.support[0] + m.support[1], 2);
    slm_cls_metrics_free(&m);

    gold[2] = 2; /* outside [-1, L) */
    slm_err e;
    assert_int_equal(slm_cls_metrics_compute(probs, gold, 4, 2, 10, &m, &e), SLM_ERR_RANGE);
    assert_non_null(strstr(e.msg, "example 2"));
    assert_null(m.confusion);
    assert_int_equal(slm_cls_metrics_compute(probs, gold, 0, 2, 10, &m, &e), SLM_ERR_ARG);
}

static void test_ece_calibrated_vs_overconfident(void **state) {
    (void)state;
    int gold[10], pred[10];
    float probs[20];
    slm_cls_metrics m;
    /* calibrated: confidence 0.8, 8 of 10 right */
    for (int i = 0; i < 10; i++) gold[i] = 0, pred[i] = i < 8 ? 0 : 1;
    fill_rows(probs, pred, 10, 2, 0.8f);
    TU_OK(slm_cls_metrics_compute(probs, gold, 10, 2, 10, &m, tu_err()));
    assert_true(m.ece < 1e-6);
    assert_int_equal(m.bins[8].count, 10);
    assert_true(fabs(m.bins[8].accuracy - 0.8) < 1e-12);
    slm_cls_metrics_free(&m);
    /* overconfident: confidence 0.9, half right -> 0.4 */
    for (int i = 0; i < 10; i++) pred[i] = i < 5 ? 0 : 1;
    fill_rows(probs, pred, 10, 2, 0.9f);
    TU_OK(slm_cls_metrics_compute(probs, gold, 10, 2, 10, &m, tu_err()));
    assert_true(fabs(m.ece - 0.4) < 1e-6);
    slm_cls_metrics_free(&m);
    /* two bins: 4 at 0.95 with 2 right (gap .45), 6 at 0.55 with 3 right (gap .05):
     * ECE = 0.4 * 0.45 + 0.6 * 0.05 = 0.21 */
    for (int i = 0; i < 10; i++) pred[i] = (i < 4 ? i < 2 : i < 7) ? 0 : 1;
    for (int i = 0; i < 10; i++) {
        float hi = i < 4 ? 0.95f : 0.55f;
        probs[2 * i + pred[i]] = hi;
        probs[2 * i + 1 - pred[i]] = 1 - hi;
    }
    TU_OK(slm_cls_metrics_compute(probs, gold, 10, 2, 10, &m, tu_err()));
    assert_true(fabs(m.ece - 0.21) < 1e-6);
    assert_int_equal(m.bins[9].count, 4);
    assert_int_equal(m.bins[5].count, 6);
    slm_cls_metrics_free(&m);
}

static void test_auroc(void **state) {
    (void)state;
    double a;
    double p1[2] = {0.9, 0.8}, n1[2] = {0.1, 0.2};
    TU_OK(slm_auroc(p1, 2, n1, 2, &a, tu_err()));
    assert_true(a == 1.0);
    TU_OK(slm_auroc(n1, 2, p1, 2, &a, tu_err()));
    assert_true(a == 0.0);
    double same[3] = {0.5, 0.5, 0.5};
    TU_OK(slm_auroc(same, 3, same, 2, &a, tu_err()));
    assert_true(fabs(a - 0.5) < 1e-12);
    /* pairs: (.9,.5)=1 (.9,.2)=1 (.5,.5)=.5 (.5,.2)=1 (.3,.5)=0 (.3,.2)=1 -> 4.5 / 6 */
    double p2[3] = {0.9, 0.5, 0.3}, n2[2] = {0.5, 0.2};
    TU_OK(slm_auroc(p2, 3, n2, 2, &a, tu_err()));
    assert_true(fabs(a - 0.75) < 1e-12);
    slm_err e;
    assert_int_equal(slm_auroc(p2, 3, n2, 0, &a, &e), SLM_ERR_ARG);
    double bad[1] = {NAN};
    assert_int_equal(slm_auroc(p2, 3, bad, 1, &a, &e), SLM_ERR_RANGE);
}

static void test_ood_recall_at_accuracy(void **state) {
    (void)state;
    double in[6] = {0.99, 0.95, 0.9, 0.8, 0.7, 0.6};
    unsigned char ok[6] = {1, 1, 1, 0, 1, 0};
    double ood[4] = {0.95, 0.75, 0.65, 0.5};
    slm_ood_at_acc r;
    /* keeping >= .7: 4 of 5 right (.8 >= .75); >= .6 would be 4/6. Rejects .65 and .5 of OOD. */
    TU_OK(slm_ood_at_accuracy(in, ok, 6, ood, 4, 0.75, &r, tu_err()));
    assert_true(r.reached);
    assert_true(r.threshold == 0.7);
    assert_true(fabs(r.in_coverage - 5.0 / 6) < 1e-12);
    assert_true(fabs(r.in_accuracy - 0.8) < 1e-12);
    assert_true(fabs(r.ood_recall - 0.5) < 1e-12);
    /* target 1.0: keep >= .9 (3 right), rejects .75 .65 .5 */
    TU_OK(slm_ood_at_accuracy(in, ok, 6, ood, 4, 1.0, &r, tu_err()));
    assert_true(r.threshold == 0.9 && fabs(r.in_coverage - 0.5) < 1e-12);
    assert_true(fabs(r.ood_recall - 0.75) < 1e-12);
    /* never right: target unreachable, everything rejected */
    unsigned char none[6] = {0};
    TU_OK(slm_ood_at_accuracy(in, none, 6, ood, 4, 0.95, &r, tu_err()));
    assert_false(r.reached);
    assert_true(r.ood_recall == 1.0 && r.in_coverage == 0.0);
    slm_err e;
    assert_int_equal(slm_ood_at_accuracy(in, ok, 6, ood, 4, 0.0, &r, &e), SLM_ERR_ARG);
    assert_int_equal(slm_ood_at_accuracy(in, ok, 6, ood, 0, 0.9, &r, &e), SLM_ERR_ARG);
}

/* ---- percentiles ---- */

static void test_percentiles(void **state) {
    (void)state;
    double x[4] = {4, 1, 3, 2}, v;
    TU_OK(slm_percentile(x, 4, 50, &v, tu_err()));
    assert_true(v == 2.5);
    TU_OK(slm_percentile(x, 4, 0, &v, tu_err()));
    assert_true(v == 1);
    TU_OK(slm_percentile(x, 4, 100, &v, tu_err()));
    assert_true(v == 4);
    TU_OK(slm_percentile(x, 4, 95, &v, tu_err())); /* h = 2.85 -> 3 + .85 */
    assert_true(fabs(v - 3.85) < 1e-12);
    assert_true(x[0] == 4); /* input untouched */
    double h[100];
    for (int i = 0; i < 100; i++) h[i] = 100 - i;
    slm_latency_stats s;
    TU_OK(slm_latency_summarize(h, 100, &s, tu_err()));
    assert_true(fabs(s.p99 - 99.01) < 1e-9 && fabs(s.p50 - 50.5) < 1e-12);
    assert_true(fabs(s.p95 - 95.05) < 1e-9 && s.mean == 50.5 && s.min == 1 && s.max == 100);
    double one = 7;
    TU_OK(slm_latency_summarize(&one, 1, &s, tu_err()));
    assert_true(s.p50 == 7 && s.p99 == 7);
    slm_err e;
    assert_int_equal(slm_percentile(x, 0, 50, &v, &e), SLM_ERR_ARG);
}

/* ---- energy ---- */

static void test_energy_estimate_arithmetic(void **state) {
    (void)state;
    slm_energy_opts o;
    slm_energy_opts_default(&o);
    assert_true(o.watts_per_core == 10 && o.grid_g_per_kwh == 400 && o.price_per_cpu_hour == 0.05);
    slm_energy_result r;
    /* 2 CPU-seconds at 10 W = 20 J over 100 queries */
    TU_OK(slm_energy_derive(-1, 2.0, 1.0, 100, &o, &r, tu_err()));
    assert_false(r.measured);
    assert_string_equal(r.method, "estimated");
    assert_true(fabs(r.joules - 20) < 1e-12 && fabs(r.j_per_query - 0.2) < 1e-12);
    assert_true(fabs(r.queries_per_kwh - 1.8e7) < 1e-3);
    assert_true(fabs(r.g_co2e_per_1k - 0.2 * 1000 / 3.6e6 * 400) < 1e-15);
    assert_true(fabs(r.usd_per_1k - 0.02 * 1000 / 3600 * 0.05) < 1e-15);
    TU_OK(slm_energy_derive(5.0, 2.0, 1.0, 100, &o, &r, tu_err()));
    assert_true(r.measured && fabs(r.j_per_query - 0.05) < 1e-12);
    assert_string_equal(r.method, "measured (RAPL)");
    slm_err e;
    assert_int_equal(slm_energy_derive(1, 1, 1, 0, &o, &r, &e), SLM_ERR_ARG);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_rapl_fake_sysfs(void **state) {
    (void)state;
    const char *root = tu_tmp_path("powercap");
    char p[1024];
    mkdir(root, 0755);
    snprintf(p, sizeof p, "%s/intel-rapl:0", root), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/intel-rapl:0:0", root), mkdir(p, 0755); /* sub-zone: ignored */
    snprintf(p, sizeof p, "%s/intel-rapl:1", root), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/intel-rapl:0/energy_uj", root), write_text(p, "262143328000\n");
    snprintf(p, sizeof p, "%s/intel-rapl:0/max_energy_range_uj", root), write_text(p, "262143328850\n");
    snprintf(p, sizeof p, "%s/intel-rapl:0:0/energy_uj", root), write_text(p, "999999\n");
    snprintf(p, sizeof p, "%s/intel-rapl:1/energy_uj", root), write_text(p, "1000000\n");
    slm_rapl_snapshot a, b;
    TU_OK(slm_rapl_read(root, &a, tu_err()));
    assert_int_equal(a.n, 2);
    assert_string_equal(a.name[0], "intel-rapl:0");
    assert_true(a.max_range_uj[1] == 0);
    /* zone 0 wraps: 850 to the top + 500; zone 1 advances 2.5 J */
    snprintf(p, sizeof p, "%s/intel-rapl:0/energy_uj", root), write_text(p, "500\n");
    snprintf(p, sizeof p, "%s/intel-rapl:1/energy_uj", root), write_text(p, "3500000\n");
    TU_OK(slm_rapl_read(root, &b, tu_err()));
    double j;
    TU_OK(slm_rapl_joules(&a, &b, &j, tu_err()));
    assert_true(fabs(j - (1350e-6 + 2.5)) < 1e-12);
    /* zone 1 going backwards without a range cannot be undone */
    slm_err e;
    assert_int_equal(slm_rapl_joules(&b, &a, &j, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "intel-rapl:1"));

    /* the meter uses RAPL when the tree is readable */
    slm_energy_opts o;
    slm_energy_opts_default(&o);
    o.powercap_root = root;
    slm_energy_meter m;
    slm_energy_meter_start(&m, &o);
    assert_true(m.have_rapl);
    snprintf(p, sizeof p, "%s/intel-rapl:1/energy_uj", root), write_text(p, "4500000\n");
    slm_energy_result r;
    TU_OK(slm_energy_meter_stop(&m, 10, &r, tu_err()));
    assert_true(r.measured && fabs(r.joules - 1.0) < 1e-9 && fabs(r.j_per_query - 0.1) < 1e-9);

    /* malformed counter: named; missing tree: unsupported, and the meter estimates */
    snprintf(p, sizeof p, "%s/intel-rapl:1/energy_uj", root), write_text(p, "garbage\n");
    assert_int_equal(slm_rapl_read(root, &a, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "intel-rapl:1/energy_uj"));
    assert_int_equal(slm_rapl_read(tu_tmp_path("no-powercap"), &a, &e), SLM_ERR_UNSUPPORTED);
    o.powercap_root = tu_tmp_path("no-powercap");
    slm_energy_meter_start(&m, &o);
    assert_false(m.have_rapl);
    assert_true(m.why_estimated[0] != '\0');
    TU_OK(slm_energy_meter_stop(&m, 10, &r, tu_err()));
    assert_false(r.measured);
}

static void test_peak_rss_probe(void **state) {
    (void)state;
    long kib = slm_eval_peak_rss_kib();
    assert_true(kib > 0);
}

/* ---- SVG ---- */

/* Checks that every element is closed in order and every '&' starts a known entity. */
static void assert_well_formed(const char *s) {
    assert_true(!strncmp(s, "<?xml", 5));
    char stack[64][32];
    int depth = 0, roots = 0;
    for (const char *c = s; *c; c++) {
        if (*c == '&') {
            const char *ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            int ok = 0;
            for (int k = 0; k < 5; k++) ok |= !strncmp(c, ents[k], strlen(ents[k]));
            if (!ok) fail_msg("bare '&' at: %.30s", c);
        }
        if (*c == '>' && depth == 0 && c > s && c[-1] != '?' && c[-1] != '/')
            continue;
        if (*c != '<') continue;
        if (c[1] == '?') {
            c = strstr(c, "?>");
            assert_non_null(c);
            continue;
        }
        const char *end = strchr(c, '>');
        assert_non_null(end);
        int closing = c[1] == '/';
        const char *name = c + 1 + closing;
        size_t len = strcspn(name, " />\n");
        assert_true(len > 0 && len < 32);
        for (const char *q = c + 1; q < end; q++) assert_true(*q != '<');
        if (closing) {
            assert_true(depth > 0);
            depth--;
            if (strncmp(stack[depth], name, len) || stack[depth][len])
                fail_msg("</%.*s> closes <%s>", (int)len, name, stack[depth]);
        } else if (end[-1] != '/') {
            assert_true(depth < 64);
            if (depth == 0) roots++;
            memcpy(stack[depth], name, len);
            stack[depth][len] = '\0';
            depth++;
        }
        c = end;
    }
    assert_int_equal(depth, 0);
    assert_int_equal(roots, 1);
}

static char *svg_to_string(int kind) {
    const char *path = tu_tmp_path("plot.svg");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    double x[4] = {1, 2, 3, 4}, y1[4] = {3.2, 2.1, NAN, 1.5}, y2[4] = {3.4, 2.5, 2.2, 2.0};
    slm_svg_series s[2] = {{"train <loss> & co", x, y1, 4}, {"val \"loss\"", x, y2, 4}};
    slm_calib_bin bins[2] = {{0.5, 0.75, 3, 0.6, 0.66}, {0.75, 1.0, 7, 0.9, 0.85}};
    slm_svg_reliability_model rm[2] = {{"cand<&>", bins, 2}, {"base", bins, 2}};
    slm_svg_point pts[3] = {{"slm <tiny> & q8", 0.002, 0.91}, {"tf-idf 'lr'", 0.0004, 0.918},
                            {"skipped", 0, 0.5}};
    slm_status st;
    if (kind == 0) st = slm_svg_line_chart(f, "loss <&>", "step", "loss", s, 2, tu_err());
    else if (kind == 1) st = slm_svg_reliability(f, "reliability & <calibration>", rm, 2, tu_err());
    else st = slm_svg_scatter(f, "accuracy vs cost <&>", "USD / 1k", "accuracy", pts, 3, 1, tu_err());
    fclose(f);
    TU_OK(st);
    char *data;
    size_t len;
    TU_OK(slm_file_read_all(path, &data, &len, tu_err()));
    return data;
}

static void test_svg_well_formed_and_escaped(void **state) {
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        char *s = svg_to_string(kind);
        assert_well_formed(s);
        assert_null(strstr(s, "<&"));
        assert_non_null(strstr(s, "&lt;&amp;&gt;"));
        assert_non_null(strstr(s, "</svg>"));
        if (kind == 0) {
            assert_non_null(strstr(s, "train &lt;loss&gt; &amp; co"));
            assert_non_null(strstr(s, "val &quot;loss&quot;"));
            assert_non_null(strstr(s, " M")); /* the NaN broke the first line */
        }
        if (kind == 1) assert_non_null(strstr(s, "stroke-dasharray")); /* the diagonal */
        if (kind == 2) {
            assert_non_null(strstr(s, "tf-idf &apos;lr&apos;"));
            assert_null(strstr(s, ">skipped<")); /* x = 0 on a log axis */
        }
        free(s);
    }
    slm_err e;
    FILE *f = fopen(tu_tmp_path("empty.svg"), "w");
    assert_int_equal(slm_svg_line_chart(f, "t", "x", "y", NULL, 0, &e), SLM_ERR_ARG);
    assert_int_equal(slm_svg_reliability(f, "t", NULL, 0, &e), SLM_ERR_ARG);
    fclose(f);
}

/* ---- report ---- */

/* A model object as slm_eval_classifier or the TF-IDF script would write it. */
static cJSON *fake_model(const char *name, double acc, double f1, double p95, double cost) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "kind", "test");
    cJSON_AddNumberToObject(m, "accuracy", acc);
    cJSON_AddNumberToObject(m, "macro_f1", f1);
    cJSON_AddNumberToObject(m, "latency_ms_p95", p95);
    cJSON_AddNumberToObject(m, "cost_usd_per_1k_queries", cost);
    cJSON_AddNumberToObject(m, "n_unknown_label", 0);
    cJSON_AddStringToObject(m, "energy_method", "estimated");
    cJSON *labels = cJSON_AddArrayToObject(m, "labels");
    cJSON_AddItemToArray(labels, cJSON_CreateString("card_arrival"));
    cJSON_AddItemToArray(labels, cJSON_CreateString("a|b<c>"));
    cJSON *conf = cJSON_AddArrayToObject(m, "confusion");
    for (int g = 0; g < 2; g++) {
        cJSON *row = cJSON_CreateArray();
        for (int p = 0; p < 2; p++) cJSON_AddItemToArray(row, cJSON_CreateNumber(g == p ? 9 : 1 + g));
        cJSON_AddItemToArray(conf, row);
    }
    cJSON *pl = cJSON_AddArrayToObject(m, "per_label");
    for (int j = 0; j < 2; j++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "label", j ? "a|b<c>" : "card_arrival");
        cJSON_AddNumberToObject(r, "precision", 0.9);
        cJSON_AddNumberToObject(r, "recall", 0.8);
        cJSON_AddNumberToObject(r, "f1", 0.85);
        cJSON_AddNumberToObject(r, "support", 10);
        cJSON_AddItemToArray(pl, r);
    }
    cJSON *rel = cJSON_AddArrayToObject(m, "reliability");
    for (int b = 0; b < 4; b++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "lo", b / 4.0);
        cJSON_AddNumberToObject(r, "hi", (b + 1) / 4.0);
        cJSON_AddNumberToObject(r, "count", b);
        cJSON_AddNumberToObject(r, "confidence", b / 4.0 + 0.1);
        cJSON_AddNumberToObject(r, "accuracy", b / 4.0);
        cJSON_AddItemToArray(rel, r);
    }
    return m;
}

static cJSON *fake_report(double acc, double f1, double p95, int with_baseline) {
    slm_eval_opts o;
    slm_eval_opts_default(&o);
    return slm_eval_report_new(&o, "test.jsonl", 20, NULL, 0, fake_model("cand <&>.gguf", acc, f1, p95, 0.002),
                               with_baseline ? fake_model("tfidf", 0.918, 0.918, 1.5, 0.0004) : NULL);
}

static char *read_text(const char *path) {
    char *data;
    size_t len;
    TU_OK(slm_file_read_all(path, &data, &len, tu_err()));
    return data;
}

static void test_report_round_trip_and_files(void **state) {
    (void)state;
    const char *dir = tu_tmp_path("report");
    const char *log = tu_tmp_path("run.jsonl");
    write_text(log, "{\"step\":1,\"loss\":4.0}\n{\"step\":2,\"loss\":3.0,\"val_loss\":3.5}\n\n"
                    "{\"step\":3,\"loss\":2.5}\n{\"step\":4,\"loss\":2.0,\"val_loss\":3.0}\n{\"step\":5,\"lo");
    cJSON *rep = fake_report(0.9125, 0.9, 12.5, 1);
    assert_non_null(rep);
    TU_OK(slm_eval_report_write(rep, dir, log, tu_err()));
    char p[1024];
    snprintf(p, sizeof p, "%s/report.json", dir);
    cJSON *back;
    TU_OK(slm_eval_report_load(p, &back, tu_err()));
    assert_true(cJSON_Compare(rep, back, 1));
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(back, "candidate");
    assert_true(cJSON_GetObjectItemCaseSensitive(c, "accuracy")->valuedouble == 0.9125);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(back, "schema")->valuestring, SLM_EVAL_SCHEMA);
    cJSON_Delete(back);

    snprintf(p, sizeof p, "%s/report.md", dir);
    char *md = read_text(p);
    assert_non_null(strstr(md, "| accuracy (%) | 91.25 | 91.80 | -0.55 |"));
    assert_non_null(strstr(md, "| latency p95 (ms) | 12.500 | 1.500 | +11.000 |"));
    assert_non_null(strstr(md, "a\\|b\\<c>")); /* table cells escaped */
    assert_non_null(strstr(md, "loss.svg") && strstr(md, "accuracy_cost.svg"));
    free(md);
    const char *svgs[3] = {"reliability.svg", "accuracy_cost.svg", "loss.svg"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, svgs[i]);
        char *s = read_text(p);
        assert_well_formed(s);
        if (i == 2) { /* both validations (steps 2 and 4) on one line: a move, then a draw */
            const char *val = strstr(s, "stroke=\"#d62728\"");
            assert_non_null(val);
            const char *d = strstr(val, " d=\"M");
            assert_non_null(d);
            assert_non_null(strstr(d, " L"));
            assert_true(strstr(d, " L") < strchr(d + 4, '"'));
        }
        free(s);
    }
    /* a train log without any loss line is an error naming it */
    write_text(log, "not json\n");
    slm_err e;
    assert_int_not_equal(slm_eval_report_write(rep, dir, log, &e), SLM_OK);
    assert_non_null(strstr(e.msg, "run.jsonl"));
    cJSON_Delete(rep);
}

static void test_gate(void **state) {
    (void)state;
    const char *dir = tu_tmp_path("prod");
    cJSON *prod = fake_report(0.90, 0.89, 10.0, 0);
    TU_OK(slm_eval_report_write(prod, dir, NULL, tu_err()));
    cJSON_Delete(prod);
    char stored[1024];
    snprintf(stored, sizeof stored, "%s/report.json", dir);
    slm_gate_opts o = {0.5, -1};
    slm_gate_result r;

    cJSON *rep = fake_report(0.896, 0.8851, 30.0, 0); /* -0.4 and -0.49 points: within 0.5 */
    TU_OK(slm_eval_gate(rep, stored, &o, &r, tu_err()));
    assert_true(r.pass);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.rows[0].metric, "accuracy");
    assert_true(fabs(r.rows[0].delta + 0.004) < 1e-12 && fabs(r.rows[0].allowed - 0.895) < 1e-12);
    cJSON_Delete(rep);

    rep = fake_report(0.93, 0.884, 10.0, 0); /* macro-F1 -0.6 points: fails */
    TU_OK(slm_eval_gate(rep, stored, &o, &r, tu_err()));
    assert_false(r.pass);
    assert_true(r.rows[0].pass && !r.rows[1].pass);
    char buf[4096] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    slm_gate_print(&r, stored, f);
    fclose(f);
    assert_non_null(strstr(buf, "macro_f1"));
    assert_non_null(strstr(buf, "FAIL"));
    cJSON_Delete(rep);

    /* p95 latency gated when asked: 10 ms -> 10.9 passes at +10%, 11.5 fails */
    o.latency_pct = 10;
    rep = fake_report(0.90, 0.89, 10.9, 0);
    TU_OK(slm_eval_gate(rep, stored, &o, &r, tu_err()));
    assert_true(r.pass && r.n == 3);
    cJSON_Delete(rep);
    rep = fake_report(0.90, 0.89, 11.5, 0);
    TU_OK(slm_eval_gate(rep, stored, &o, &r, tu_err()));
    assert_false(r.pass);
    assert_false(r.rows[2].pass);

    /* a missing or corrupt stored report is an error naming the file */
    slm_err e;
    const char *missing = tu_tmp_path("nope/report.json");
    assert_int_equal(slm_eval_gate(rep, missing, &o, &r, &e), SLM_ERR_IO);
    assert_non_null(strstr(e.msg, missing));
    const char *corrupt = tu_tmp_path("corrupt.json");
    write_text(corrupt, "{\"candidate\": {\"accuracy\": 0.9,");
    assert_int_equal(slm_eval_gate(rep, corrupt, &o, &r, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, corrupt));
    write_text(corrupt, "{\"candidate\": {\"accuracy\": 0.9}}");
    assert_int_equal(slm_eval_gate(rep, corrupt, &o, &r, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "macro_f1"));
    assert_false(r.pass);
    cJSON_Delete(rep);
}

static void test_dataset_load(void **state) {
    (void)state;
    const char *path = tu_tmp_path("test.jsonl");
    write_text(path, "{\"text\": \"where is my card?\", \"label\": \"card_arrival\"}\n\n"
                     "{\"text\": \"x\", \"label\": 7}\n");
    slm_eval_dataset ds;
    TU_OK(slm_eval_dataset_load(path, &ds, tu_err()));
    assert_int_equal(ds.n, 2);
    assert_string_equal(ds.texts[0], "where is my card?");
    assert_int_equal(ds.lens[0], 17);
    assert_string_equal(ds.labels[1], "7");
    slm_eval_dataset_free(&ds);
    write_text(path, "{\"text\": \"a\", \"label\": \"b\"}\n{\"text\": \"no label\"}\n");
    slm_err e;
    assert_int_equal(slm_eval_dataset_load(path, &ds, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "test.jsonl:2"));
    assert_int_equal(ds.n, 0);
    write_text(path, "\n");
    assert_int_equal(slm_eval_dataset_load(path, &ds, &e), SLM_ERR_FORMAT);
}

/* ---- end to end: a tiny classify model trained here, evaluated through the library ---- */

static const char *KW[3][3] = {{"card", "atm", "pin"}, {"transfer", "send", "wire"}, {"balance", "statement", "savings"}};
static const char *LB[3] = {"cards", "payments", "accounts"};
static const char *FILL[] = {"my", "the", "please", "help", "with", "today", "i", "need", "a", "is",
                             "there", "why", "can", "you", "check", "again", "still", "not", "working", "hello"};

/* Rows with one keyword of their label among filler words; keyword-less rows (ood) get "other". */
static void write_rows(const char *path, int n, uint64_t seed, int ood) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    slm_rng r;
    slm_rng_seed(&r, seed, 5);
    for (int i = 0; i < n; i++) {
        int y = (int)slm_rng_below(&r, 3), len = 4 + (int)slm_rng_below(&r, 6), at = (int)slm_rng_below(&r, (uint32_t)len);
        fputs("{\"text\": \"", f);
        for (int w = 0; w < len; w++) {
            if (w) fputc(' ', f);
            fputs(w == at && !ood ? KW[y][slm_rng_below(&r, 3)] : FILL[slm_rng_below(&r, 20)], f);
        }
        fprintf(f, "\", \"label\": \"%s\"}\n", ood ? "other" : LB[y]);
    }
    fclose(f);
}

static const char *train_tiny_classifier(void) {
    const char *dir = tu_tmp_path("e2e");
    char path[1024];
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/train.jsonl", dir);
    write_rows(path, 480, 1, 0);
    snprintf(path, sizeof path, "%s/val.jsonl", dir);
    write_rows(path, 120, 2, 0);
    slm_task_data d;
    TU_OK(slm_task_data_load(dir, &d, tu_err()));
    size_t len = 0;
    for (int i = 0; i < d.train.n; i++) len += strlen(d.train.text[i]) + 1;
    char *text = malloc(len + 1), *p = text;
    for (int i = 0; i < d.train.n; i++) p += sprintf(p, "%s\n", d.train.text[i]);
    slm_tokenizer_train_opts to = {.vocab_size = 320};
    slm_tokenizer *tok;
    TU_OK(slm_tokenizer_train(text, len, &to, &tok, tu_err()));
    free(text);
    TU_OK(slm_task_data_tokenize(&d, tok, 16, tu_err()));
    slm_model_config cfg = {.n_vocab = slm_tokenizer_n_vocab(tok), .dim = 32, .n_layers = 2, .n_heads = 4,
                            .n_kv_heads = 4, .hidden_dim = 64, .ctx_len = 18, .rope_theta = 10000.0f,
                            .norm_eps = 1e-5f, .tied_output = 1};
    slm_model *m = slm_model_new(&cfg, tu_err());
    assert_non_null(m);
    slm_model_init_random(m, 3);
    slm_finetune_opts o;
    slm_finetune_opts_default(&o);
    o.steps = 120, o.batch = 16, o.max_len = 16, o.lr = 3e-3f, o.lr_min = 1e-4f, o.eval_every = 30, o.seed = 3;
    slm_finetune *t = slm_finetune_new(m, tok, &d, &o, NULL, tu_err());
    assert_non_null(t);
    TU_OK(slm_finetune_set_log(t, tu_tmp_path("e2e-train.jsonl"), tu_err()));
    TU_OK(slm_finetune_run(t, tu_err()));
    const char *model = tu_tmp_path("e2e.gguf");
    TU_OK(slm_finetune_save(t, model, tu_err()));
    slm_finetune_free(t);
    slm_model_free(m);
    slm_tokenizer_free(tok);
    slm_task_data_free(&d);
    return model;
}

static void test_end_to_end_tiny_classifier(void **state) {
    (void)state;
    const char *model = train_tiny_classifier();
    const char *test_path = tu_tmp_path("e2e-test.jsonl"), *ood_path = tu_tmp_path("e2e-ood.jsonl");
    write_rows(test_path, 150, 7, 0);
    FILE *f = fopen(test_path, "a");
    fputs("{\"text\": \"close my account\", \"label\": \"closing\"}\n", f); /* a label the model lacks */
    fclose(f);
    write_rows(ood_path, 40, 8, 1);
    slm_eval_dataset test, ood;
    TU_OK(slm_eval_dataset_load(test_path, &test, tu_err()));
    TU_OK(slm_eval_dataset_load(ood_path, &ood, tu_err()));
    assert_int_equal(test.n, 151);

    slm_classifier *c = slm_classifier_load(model, NULL, tu_err());
    assert_non_null(c);
    slm_eval_opts o;
    slm_eval_opts_default(&o);
    o.batch_size = 16, o.latency_samples = 20, o.ece_bins = 10;
    o.energy.powercap_root = ""; /* always the estimate here: the test must not depend on the host */
    cJSON *cand;
    TU_OK(slm_eval_classifier(c, model, &test, &ood, &o, &cand, tu_err()));

    /* the accuracy the report states equals one recomputed from predictions made here */
    int L = slm_classifier_n_labels(c), correct = 0;
    assert_int_equal(L, 3);
    float *probs = malloc((size_t)test.n * 3 * sizeof *probs);
    TU_OK(slm_classifier_predict(c, (const char *const *)test.texts, test.lens, (int)test.n, probs, tu_err()));
    for (long i = 0; i < test.n; i++) {
        int p = slm_cls_argmax(probs + i * 3, 3, NULL);
        correct += !strcmp(slm_classifier_label(c, p), test.labels[i]);
    }
    free(probs);
    double acc = cJSON_GetObjectItemCaseSensitive(cand, "accuracy")->valuedouble;
    assert_true(fabs(acc - (double)correct / 151) < 1e-12);
    assert_true(acc > 0.8);
    assert_true(cJSON_GetObjectItemCaseSensitive(cand, "n_unknown_label")->valuedouble == 1);
    assert_true(cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(cand, "unknown_labels"), "closing")->valuedouble == 1);
    double conf_sum = 0;
    const cJSON *row, *cell;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(cand, "confusion"))
        cJSON_ArrayForEach(cell, row) conf_sum += cell->valuedouble;
    assert_true(conf_sum == 150);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cand, "per_label")), 3);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cand, "reliability")), 10);
    assert_true(cJSON_GetObjectItemCaseSensitive(cand, "latency_samples")->valuedouble == 20);
    double p50 = cJSON_GetObjectItemCaseSensitive(cand, "latency_ms_p50")->valuedouble;
    double p99 = cJSON_GetObjectItemCaseSensitive(cand, "latency_ms_p99")->valuedouble;
    assert_true(p50 > 0 && p99 >= p50);
    struct stat sb;
    assert_int_equal(stat(model, &sb), 0);
    assert_true(cJSON_GetObjectItemCaseSensitive(cand, "file_bytes")->valuedouble == (double)sb.st_size);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cand, "energy_method")->valuestring, "estimated");
    double cpu = cJSON_GetObjectItemCaseSensitive(cand, "batch_cpu_s")->valuedouble;
    double jq = cJSON_GetObjectItemCaseSensitive(cand, "energy_j_per_query")->valuedouble;
    assert_true(fabs(jq - cpu * 10 / 151) < 1e-9);
    const cJSON *oj = cJSON_GetObjectItemCaseSensitive(cand, "ood");
    assert_non_null(oj);
    assert_true(cJSON_GetObjectItemCaseSensitive(oj, "n_ood")->valuedouble == 40);
    double auroc = cJSON_GetObjectItemCaseSensitive(oj, "auroc")->valuedouble;
    assert_true(auroc >= 0 && auroc <= 1);
    slm_classifier_free(c);

    /* the report writes, reads back equal, and gates against itself */
    cJSON *rep = slm_eval_report_new(&o, test_path, test.n, ood_path, ood.n, cand, NULL);
    const char *dir = tu_tmp_path("e2e-report");
    TU_OK(slm_eval_report_write(rep, dir, tu_tmp_path("e2e-train.jsonl"), tu_err()));
    char p[1024];
    snprintf(p, sizeof p, "%s/report.json", dir);
    cJSON *back;
    TU_OK(slm_eval_report_load(p, &back, tu_err()));
    assert_true(cJSON_Compare(rep, back, 1));
    cJSON_Delete(back);
    slm_gate_opts g = {0.5, 0};
    slm_gate_result r;
    TU_OK(slm_eval_gate(rep, p, &g, &r, tu_err()));
    assert_true(r.pass && r.n == 3);
    cJSON_Delete(rep);
    slm_eval_dataset_free(&test);
    slm_eval_dataset_free(&ood);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_perfect_and_all_wrong),
        cmocka_unit_test(test_metrics_known_3x3),
        cmocka_unit_test(test_metrics_unknown_gold_counts_wrong),
        cmocka_unit_test(test_ece_calibrated_vs_overconfident),
        cmocka_unit_test(test_auroc),
        cmocka_unit_test(test_ood_recall_at_accuracy),
        cmocka_unit_test(test_percentiles),
        cmocka_unit_test(test_energy_estimate_arithmetic),
        cmocka_unit_test(test_rapl_fake_sysfs),
        cmocka_unit_test(test_peak_rss_probe),
        cmocka_unit_test(test_svg_well_formed_and_escaped),
        cmocka_unit_test(test_report_round_trip_and_files),
        cmocka_unit_test(test_gate),
        cmocka_unit_test(test_dataset_load),
        cmocka_unit_test(test_end_to_end_tiny_classifier),
    };
    return cmocka_run_group_tests_name("eval", tests, NULL, NULL);
}
