/* report.c: slm eval's run, report and gate (see report.h for the schema and contracts).
 *
 * Sections: the test set (JSONL), JSON helpers, the run of one classifier, the report object and
 * its loading, the Markdown and SVG writers, the terminal summary, the gate. Tables, plots and
 * gate read the JSON objects only, so a foreign baseline report is treated like one of ours.
 */
#include "eval/report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/file.h"
#include "core/timer.h"
#include "data/jsonl.h"
#include "eval/classify_metrics.h"
#include "eval/latency.h"
#include "eval/svg.h"

/* ---- test set ---- */

void slm_eval_dataset_free(slm_eval_dataset *ds) {
    if (!ds) return;
    for (long i = 0; i < ds->n; i++) {
        free(ds->texts[i]);
        free(ds->labels[i]);
    }
    free(ds->texts);
    free(ds->lens);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

slm_status slm_eval_dataset_load(const char *path, slm_eval_dataset *ds, slm_err *err) {
    memset(ds, 0, sizeof *ds);
    char *data;
    size_t len;
    slm_status st = slm_file_read_all(path, &data, &len, err);
    if (st != SLM_OK) return st;
    long cap = 0, line_no = 0;
    slm_data_keys keys = {"text", "label", "prompt", "completion", "messages"};
    for (char *p = data, *end = data + len; p < end && st == SLM_OK;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line_no++;
        char *line = p;
        p += ll + 1;
        size_t k = 0;
        while (k < ll && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == ll) continue;
        if (ds->n >= SLM_EVAL_MAX_ROWS) {
            st = slm_err_set(err, SLM_ERR_RANGE, "%s: more than %ld rows", path, SLM_EVAL_MAX_ROWS);
            break;
        }
        slm_data_task task = SLM_TASK_CLASSIFY;
        slm_data_record rec;
        char why[256] = "";
        st = slm_jsonl_parse(line, ll, &task, &keys, &rec, why, sizeof why);
        if (st != SLM_OK) {
            if (st == SLM_ERR_NOMEM) slm_err_set(err, st, "%s:%ld: out of memory", path, line_no);
            else slm_err_set(err, SLM_ERR_FORMAT, "%s:%ld: %s (want {\"text\": ..., \"label\": ...})",
                             path, line_no, why);
            break;
        }
        if (ds->n == cap) {
            long nc = cap ? cap * 2 : 1024;
            char **t = realloc(ds->texts, (size_t)nc * sizeof *t);
            if (t) ds->texts = t;
            char **lb = realloc(ds->labels, (size_t)nc * sizeof *lb);
            if (lb) ds->labels = lb;
            size_t *ln = realloc(ds->lens, (size_t)nc * sizeof *ln);
            if (ln) ds->lens = ln;
            if (!t || !lb || !ln) {
                slm_data_record_free(&rec);
                st = slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory at line %ld", path, line_no);
                break;
            }
            cap = nc;
        }
        ds->texts[ds->n] = rec.text;
        ds->labels[ds->n] = rec.label;
        ds->lens[ds->n] = strlen(rec.text);
        rec.text = rec.label = NULL;
        slm_data_record_free(&rec);
        ds->n++;
    }
    free(data);
    if (st == SLM_OK && ds->n == 0) st = slm_err_set(err, SLM_ERR_FORMAT, "%s: no examples", path);
    if (st != SLM_OK) slm_eval_dataset_free(ds);
    return st;
}

/* ---- JSON helpers ---- */

static void put_num(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

/* A number at "key" or "obj.key" (one level); NaN when missing, null or not a number. */
static double get_num(const cJSON *o, const char *path) {
    const char *dot = strchr(path, '.');
    if (dot) {
        char head[64];
        size_t n = (size_t)(dot - path);
        if (n >= sizeof head) return NAN;
        memcpy(head, path, n);
        head[n] = '\0';
        o = cJSON_GetObjectItemCaseSensitive(o, head);
        path = dot + 1;
    }
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, path) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *get_str(const cJSON *o, const char *key, const char *dflt) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : dflt;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- the run ---- */

void slm_eval_opts_default(slm_eval_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 32;
    o->latency_samples = 200;
    o->warmup = 5;
    o->ece_bins = 15;
    o->ood_target = 0.95;
    slm_energy_opts_default(&o->energy);
}

static slm_status predict_all(slm_classifier *c, const slm_eval_dataset *ds, int bs, float *probs,
                              slm_err *err) {
    int L = slm_classifier_n_labels(c);
    for (long i = 0; i < ds->n; i += bs) {
        int nb = (int)(ds->n - i < bs ? ds->n - i : bs);
        slm_status st = slm_classifier_predict(c, (const char *const *)(ds->texts + i), ds->lens + i,
                                               nb, probs + (size_t)i * (size_t)L, err);
        if (st != SLM_OK) return slm_err_prefix(err, "predicting examples %ld..%ld", i, i + nb - 1);
    }
    return SLM_OK;
}

static cJSON *metrics_json(const slm_cls_metrics *m, cJSON *o) {
    put_num(o, "accuracy", m->accuracy);
    put_num(o, "macro_f1", m->macro_f1);
    put_num(o, "ece", m->ece);
    cJSON_AddNumberToObject(o, "ece_bins", m->n_bins);
    put_num(o, "mean_confidence", m->mean_confidence);
    return o;
}

/* OOD block: max-probability of in-scope (known gold) vs held-out examples. */
static slm_status ood_json(slm_classifier *c, const slm_eval_dataset *ood, const float *probs,
                           const int *gold, long n, const slm_eval_opts *o, cJSON *model,
                           slm_err *err) {
    int L = slm_classifier_n_labels(c);
    float *oprobs = malloc((size_t)ood->n * (size_t)L * sizeof *oprobs);
    double *in_conf = malloc((size_t)n * sizeof *in_conf), *ood_conf = malloc((size_t)ood->n * sizeof *ood_conf);
    unsigned char *in_ok = malloc((size_t)n);
    slm_status st = SLM_OK;
    if (!oprobs || !in_conf || !ood_conf || !in_ok) {
        st = slm_err_set(err, SLM_ERR_NOMEM, "out of memory for %ld out-of-scope examples", ood->n);
        goto done;
    }
    if ((st = predict_all(c, ood, o->batch_size, oprobs, err)) != SLM_OK) goto done;
    long n_in = 0;
    for (long i = 0; i < n; i++) {
        if (gold[i] < 0) continue;
        float conf;
        int p = slm_cls_argmax(probs + (size_t)i * (size_t)L, L, &conf);
        in_conf[n_in] = conf;
        in_ok[n_in++] = p == gold[i];
    }
    for (long i = 0; i < ood->n; i++) {
        float conf;
        slm_cls_argmax(oprobs + (size_t)i * (size_t)L, L, &conf);
        ood_conf[i] = conf;
    }
    double auroc;
    slm_ood_at_acc r;
    if ((st = slm_auroc(in_conf, n_in, ood_conf, ood->n, &auroc, err)) != SLM_OK) goto done;
    if ((st = slm_ood_at_accuracy(in_conf, in_ok, n_in, ood_conf, ood->n, o->ood_target, &r, err)) != SLM_OK)
        goto done;
    cJSON *j = cJSON_AddObjectToObject(model, "ood");
    cJSON_AddNumberToObject(j, "n_in", (double)n_in);
    cJSON_AddNumberToObject(j, "n_ood", (double)ood->n);
    put_num(j, "auroc", auroc);
    put_num(j, "target_in_accuracy", r.target);
    cJSON_AddBoolToObject(j, "reached", r.reached);
    put_num(j, "threshold", r.reached ? r.threshold : NAN);
    put_num(j, "in_coverage", r.in_coverage);
    put_num(j, "in_accuracy", r.in_accuracy);
    put_num(j, "ood_recall", r.ood_recall);
done:
    free(oprobs);
    free(in_conf);
    free(ood_conf);
    free(in_ok);
    return st;
}

slm_status slm_eval_classifier(slm_classifier *c, const char *model_path, const slm_eval_dataset *ds,
                               const slm_eval_dataset *ood, const slm_eval_opts *o, cJSON **out,
                               slm_err *err) {
    *out = NULL;
    if (ds->n < 1) return slm_err_set(err, SLM_ERR_ARG, "no test examples");
    int L = slm_classifier_n_labels(c), bs = o->batch_size > 0 ? o->batch_size : 32;
    long n = ds->n;
    float *probs = malloc((size_t)n * (size_t)L * sizeof *probs);
    float *one = malloc((size_t)L * sizeof *one);
    int *gold = malloc((size_t)n * sizeof *gold);
    long n_lat = o->latency_samples < n ? o->latency_samples : n;
    double *lat_ms = malloc((size_t)(n_lat > 0 ? n_lat : 1) * sizeof *lat_ms);
    cJSON *m = cJSON_CreateObject();
    slm_cls_metrics met = {0};
    slm_status st = SLM_OK;
    if (!probs || !one || !gold || !lat_ms || !m) {
        st = slm_err_set(err, SLM_ERR_NOMEM, "out of memory evaluating %ld examples", n);
        goto done;
    }
    cJSON_AddStringToObject(m, "name", base_name(model_path));
    cJSON_AddStringToObject(m, "path", model_path);
    cJSON_AddStringToObject(m, "kind", "slm-classify");
    struct stat sb;
    put_num(m, "file_bytes", stat(model_path, &sb) == 0 ? (double)sb.st_size : NAN);
    cJSON_AddNumberToObject(m, "n_labels", L);
    cJSON *labels = cJSON_AddArrayToObject(m, "labels");
    for (int j = 0; j < L; j++) cJSON_AddItemToArray(labels, cJSON_CreateString(slm_classifier_label(c, j)));

    /* gold ids; labels the model does not know count as wrong and are listed */
    cJSON *unknown = cJSON_CreateObject();
    for (long i = 0; i < n; i++) {
        gold[i] = -1;
        for (int j = 0; j < L; j++)
            if (!strcmp(ds->labels[i], slm_classifier_label(c, j))) {
                gold[i] = j;
                break;
            }
        if (gold[i] < 0) {
            cJSON *cnt = cJSON_GetObjectItemCaseSensitive(unknown, ds->labels[i]);
            if (cnt) cJSON_SetNumberValue(cnt, cnt->valuedouble + 1);
            else cJSON_AddNumberToObject(unknown, ds->labels[i], 1);
        }
    }

    /* batched run: throughput and energy */
    slm_energy_meter meter;
    slm_energy_result en;
    slm_energy_meter_start(&meter, &o->energy);
    if ((st = predict_all(c, ds, bs, probs, err)) != SLM_OK) goto done_unknown;
    if ((st = slm_energy_meter_stop(&meter, n, &en, err)) != SLM_OK) goto done_unknown;

    if ((st = slm_cls_metrics_compute(probs, gold, n, L, o->ece_bins > 0 ? o->ece_bins : 15, &met, err)) != SLM_OK)
        goto done_unknown;
    cJSON_AddNumberToObject(m, "n_examples", (double)n);
    cJSON_AddNumberToObject(m, "n_unknown_label", (double)met.n_unknown);
    cJSON_AddItemToObject(m, "unknown_labels", unknown);
    unknown = NULL;
    metrics_json(&met, m);
    cJSON *pl = cJSON_AddArrayToObject(m, "per_label");
    for (int j = 0; j < L; j++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "label", slm_classifier_label(c, j));
        put_num(r, "precision", met.precision[j]);
        put_num(r, "recall", met.recall[j]);
        put_num(r, "f1", met.f1[j]);
        cJSON_AddNumberToObject(r, "support", (double)met.support[j]);
        cJSON_AddItemToArray(pl, r);
    }
    cJSON *conf = cJSON_AddArrayToObject(m, "confusion");
    for (int g = 0; g < L; g++) {
        cJSON *row = cJSON_CreateArray();
        for (int p = 0; p < L; p++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)met.confusion[(size_t)g * (size_t)L + (size_t)p]));
        cJSON_AddItemToArray(conf, row);
    }
    cJSON *rel = cJSON_AddArrayToObject(m, "reliability");
    for (int b = 0; b < met.n_bins; b++) {
        cJSON *r = cJSON_CreateObject();
        put_num(r, "lo", met.bins[b].lo);
        put_num(r, "hi", met.bins[b].hi);
        cJSON_AddNumberToObject(r, "count", (double)met.bins[b].count);
        put_num(r, "confidence", met.bins[b].confidence);
        put_num(r, "accuracy", met.bins[b].accuracy);
        cJSON_AddItemToArray(rel, r);
    }

    /* single-query latency: warm-up, then the first n_lat texts one at a time */
    for (long i = 0; i < o->warmup && i < n; i++)
        if ((st = slm_classifier_predict(c, (const char *const *)&ds->texts[i], &ds->lens[i], 1, one, err)) != SLM_OK)
            goto done;
    for (long i = 0; i < n_lat; i++) {
        double t0 = slm_time_now();
        if ((st = slm_classifier_predict(c, (const char *const *)&ds->texts[i], &ds->lens[i], 1, one, err)) != SLM_OK)
            goto done;
        lat_ms[i] = (slm_time_now() - t0) * 1e3;
    }
    slm_latency_stats ls = {0};
    if (n_lat > 0 && (st = slm_latency_summarize(lat_ms, (size_t)n_lat, &ls, err)) != SLM_OK) goto done;
    cJSON_AddNumberToObject(m, "latency_samples", (double)n_lat);
    put_num(m, "latency_ms_mean", n_lat ? ls.mean : NAN);
    put_num(m, "latency_ms_p50", n_lat ? ls.p50 : NAN);
    put_num(m, "latency_ms_p90", n_lat ? ls.p90 : NAN);
    put_num(m, "latency_ms_p95", n_lat ? ls.p95 : NAN);
    put_num(m, "latency_ms_p99", n_lat ? ls.p99 : NAN);
    put_num(m, "latency_ms_max", n_lat ? ls.max : NAN);

    cJSON_AddNumberToObject(m, "batch_size", bs);
    put_num(m, "throughput_queries_per_s", en.wall_s > 0 ? (double)n / en.wall_s : NAN);
    put_num(m, "batch_wall_s", en.wall_s);
    put_num(m, "batch_cpu_s", en.cpu_s);

    if (ood && (st = ood_json(c, ood, probs, gold, n, o, m, err)) != SLM_OK) goto done;

    long rss = slm_eval_peak_rss_kib();
    put_num(m, "peak_rss_kib", rss > 0 ? (double)rss : NAN);
    cJSON_AddStringToObject(m, "peak_rss_scope", o->peak_rss_reset ? "model" : "process");
    cJSON_AddStringToObject(m, "energy_method", en.method);
    char note[1200];
    if (en.measured)
        snprintf(note, sizeof note, "RAPL package energy over the batched run (whole package, other "
                                    "processes included)");
    else
        snprintf(note, sizeof note, "CPU seconds x %.3g W per core (%s)", o->energy.watts_per_core,
                 meter.why_estimated);
    cJSON_AddStringToObject(m, "energy_note", note);
    put_num(m, "energy_j", en.joules);
    put_num(m, "energy_j_per_query", en.j_per_query);
    put_num(m, "queries_per_kwh", en.queries_per_kwh);
    put_num(m, "gco2e_per_1k_queries", en.g_co2e_per_1k);
    put_num(m, "cpu_s_per_query", en.cpu_s_per_query);
    put_num(m, "cost_usd_per_1k_queries", en.usd_per_1k);
    *out = m;
    m = NULL;
done_unknown:
    cJSON_Delete(unknown);
done:
    cJSON_Delete(m);
    slm_cls_metrics_free(&met);
    free(probs);
    free(one);
    free(gold);
    free(lat_ms);
    return st;
}

/* ---- the report object ---- */

cJSON *slm_eval_report_new(const slm_eval_opts *o, const char *test_path, long n_test,
                           const char *ood_path, long n_ood, cJSON *candidate, cJSON *baseline) {
    cJSON *r = cJSON_CreateObject();
    if (!r) {
        cJSON_Delete(candidate);
        cJSON_Delete(baseline);
        return NULL;
    }
    cJSON_AddStringToObject(r, "schema", SLM_EVAL_SCHEMA);
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(r, "created_utc", when);
    cJSON *td = cJSON_AddObjectToObject(r, "test_data");
    cJSON_AddStringToObject(td, "path", test_path ? test_path : "");
    cJSON_AddNumberToObject(td, "n_examples", (double)n_test);
    if (ood_path) {
        cJSON *od = cJSON_AddObjectToObject(r, "ood_data");
        cJSON_AddStringToObject(od, "path", ood_path);
        cJSON_AddNumberToObject(od, "n_examples", (double)n_ood);
    }
    cJSON *s = cJSON_AddObjectToObject(r, "settings");
    cJSON_AddNumberToObject(s, "threads", o->threads);
    cJSON_AddNumberToObject(s, "batch_size", o->batch_size);
    cJSON_AddNumberToObject(s, "latency_samples", o->latency_samples);
    cJSON_AddNumberToObject(s, "ece_bins", o->ece_bins);
    put_num(s, "watts_per_core", o->energy.watts_per_core);
    put_num(s, "grid_gco2e_per_kwh", o->energy.grid_g_per_kwh);
    put_num(s, "price_usd_per_cpu_hour", o->energy.price_per_cpu_hour);
    put_num(s, "ood_target_accuracy", o->ood_target);
    if (candidate) cJSON_AddItemToObject(r, "candidate", candidate);
    if (baseline) cJSON_AddItemToObject(r, "baseline", baseline);
    return r;
}

slm_status slm_eval_report_load(const char *path, cJSON **report, slm_err *err) {
    *report = NULL;
    char *data;
    size_t len;
    slm_status st = slm_file_read_all(path, &data, &len, err);
    if (st != SLM_OK) return slm_err_prefix(err, "stored report");
    const char *end = NULL;
    cJSON *r = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!r) {
        long off = end ? (long)(end - data) : -1;
        free(data);
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: not valid JSON (near byte %ld)", path, off);
    }
    free(data);
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r, "candidate"))) {
        cJSON_Delete(r);
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: no \"candidate\" object (not an slm eval report)",
                           path);
    }
    *report = r;
    return SLM_OK;
}

/* ---- Markdown ---- */

typedef struct {
    const char *title, *key;
    double scale;
    int decimals;
} row_def;

static const row_def rows[] = {
    {"accuracy (%)", "accuracy", 100, 2},
    {"macro-F1 (%)", "macro_f1", 100, 2},
    {"calibration error ECE (%)", "ece", 100, 2},
    {"latency p50 (ms)", "latency_ms_p50", 1, 3},
    {"latency p95 (ms)", "latency_ms_p95", 1, 3},
    {"latency p99 (ms)", "latency_ms_p99", 1, 3},
    {"throughput, batched (queries/s)", "throughput_queries_per_s", 1, 1},
    {"peak RSS (MiB)", "peak_rss_kib", 1.0 / 1024, 1},
    {"file size (MB)", "file_bytes", 1e-6, 2},
    {"energy (J/query)", "energy_j_per_query", 1, 4},
    {"queries per kWh", "queries_per_kwh", 1, 0},
    {"gCO2e per 1,000 queries", "gco2e_per_1k_queries", 1, 4},
    {"cost per 1,000 queries (USD)", "cost_usd_per_1k_queries", 1, 6},
    {"OOD AUROC (%)", "ood.auroc", 100, 2},
    {"OOD recall at target in-scope accuracy (%)", "ood.ood_recall", 100, 2},
    {"in-scope coverage at that threshold (%)", "ood.in_coverage", 100, 2},
};
#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))

static void fmt_val(char *buf, size_t n, double v, const row_def *r) {
    if (isnan(v)) snprintf(buf, n, "—");
    else snprintf(buf, n, "%.*f", r->decimals, v * r->scale);
}

static void md_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|' || *s == '\\' || *s == '*' || *s == '`' || *s == '<' || *s == '[')
            fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
}

static const cJSON *find_label_row(const cJSON *model, const char *label) {
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(model, "per_label"))
        if (!strcmp(get_str(r, "label", ""), label)) return r;
    return NULL;
}

static void write_markdown(FILE *f, const cJSON *rep, int have_loss, int have_cost) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(rep, "candidate");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(rep, "baseline");
    const cJSON *td = cJSON_GetObjectItemCaseSensitive(rep, "test_data");
    fputs("# Evaluation: ", f);
    md_escape(f, get_str(c, "name", "candidate"));
    if (b) fputs(" vs ", f), md_escape(f, get_str(b, "name", "baseline"));
    fprintf(f, "\n\nTest data: `%s`, %.0f examples. Generated %s by `slm eval` (schema %s).\n\n",
            get_str(td, "path", "?"), get_num(td, "n_examples"), get_str(rep, "created_utc", "?"),
            get_str(rep, "schema", "?"));
    fputs(b ? "| metric | candidate | baseline | delta |\n|---|---:|---:|---:|\n"
            : "| metric | candidate |\n|---|---:|\n", f);
    for (int i = 0; i < N_ROWS; i++) {
        double cv = get_num(c, rows[i].key), bv = b ? get_num(b, rows[i].key) : NAN;
        if (isnan(cv) && isnan(bv)) continue;
        char s1[64], s2[64], s3[64];
        fmt_val(s1, sizeof s1, cv, &rows[i]);
        fmt_val(s2, sizeof s2, bv, &rows[i]);
        if (isnan(cv) || isnan(bv)) snprintf(s3, sizeof s3, "—");
        else snprintf(s3, sizeof s3, "%+.*f", rows[i].decimals, (cv - bv) * rows[i].scale);
        if (b) fprintf(f, "| %s | %s | %s | %s |\n", rows[i].title, s1, s2, s3);
        else fprintf(f, "| %s | %s |\n", rows[i].title, s1);
    }
    fputs("\nEnergy: candidate ", f);
    md_escape(f, get_str(c, "energy_method", "?"));
    fputs(" — ", f);
    md_escape(f, get_str(c, "energy_note", ""));
    if (b) {
        fputs("; baseline ", f);
        md_escape(f, get_str(b, "energy_method", "?"));
        fputs(" — ", f);
        md_escape(f, get_str(b, "energy_note", ""));
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(rep, "settings");
    fprintf(f, ". Grid %.0f gCO2e/kWh, %.4g USD per CPU-hour; latency over %.0f single queries, "
               "throughput and energy over the batched run (batch %.0f, %.0f threads).\n",
            get_num(s, "grid_gco2e_per_kwh"), get_num(s, "price_usd_per_cpu_hour"),
            get_num(s, "latency_samples"), get_num(s, "batch_size"), get_num(s, "threads"));

    double nu = get_num(c, "n_unknown_label");
    if (nu > 0) {
        fprintf(f, "\n%.0f test examples carry labels the candidate does not know (counted wrong):", nu);
        const cJSON *u;
        cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(c, "unknown_labels")) {
            fputs(" ", f);
            md_escape(f, u->string);
            fprintf(f, " (%.0f)", u->valuedouble);
        }
        fputs(".\n", f);
    }

    fputs("\n## Plots\n\n![reliability diagram](reliability.svg)\n", f);
    if (have_cost) fputs("\n![accuracy versus cost](accuracy_cost.svg)\n", f);
    if (have_loss) fputs("\n![training loss](loss.svg)\n", f);

    /* most frequent confusions of the candidate */
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(c, "labels");
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(c, "confusion");
    if (cJSON_IsArray(conf) && cJSON_IsArray(labels)) {
        enum { TOP = 10 };
        int tg[TOP], tp[TOP];
        double tc[TOP];
        int nt = 0, g = 0;
        const cJSON *row;
        cJSON_ArrayForEach(row, conf) {
            int p = 0;
            const cJSON *cell;
            cJSON_ArrayForEach(cell, row) {
                double v = cell->valuedouble;
                if (p != g && v > 0 && (nt < TOP || v > tc[nt - 1])) {
                    int k = nt < TOP ? nt++ : TOP - 1;
                    while (k > 0 && tc[k - 1] < v) tc[k] = tc[k - 1], tg[k] = tg[k - 1], tp[k] = tp[k - 1], k--;
                    tc[k] = v, tg[k] = g, tp[k] = p;
                }
                p++;
            }
            g++;
        }
        if (nt) {
            fputs("\n## Most frequent confusions (candidate)\n\n| gold | predicted | count |\n|---|---|---:|\n", f);
            for (int k = 0; k < nt; k++) {
                const cJSON *gl = cJSON_GetArrayItem(labels, tg[k]), *pl = cJSON_GetArrayItem(labels, tp[k]);
                fputs("| ", f);
                md_escape(f, cJSON_IsString(gl) ? gl->valuestring : "?");
                fputs(" | ", f);
                md_escape(f, cJSON_IsString(pl) ? pl->valuestring : "?");
                fprintf(f, " | %.0f |\n", tc[k]);
            }
        }
    }

    fputs(b ? "\n## Per label\n\n| label | support | precision (%) | recall (%) | F1 (%) | baseline F1 (%) |\n"
              "|---|---:|---:|---:|---:|---:|\n"
            : "\n## Per label\n\n| label | support | precision (%) | recall (%) | F1 (%) |\n|---|---:|---:|---:|---:|\n",
          f);
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(c, "per_label")) {
        fputs("| ", f);
        md_escape(f, get_str(r, "label", "?"));
        fprintf(f, " | %.0f | %.2f | %.2f | %.2f |", get_num(r, "support"), 100 * get_num(r, "precision"),
                100 * get_num(r, "recall"), 100 * get_num(r, "f1"));
        if (b) {
            const cJSON *br = find_label_row(b, get_str(r, "label", ""));
            if (br) fprintf(f, " %.2f |", 100 * get_num(br, "f1"));
            else fputs(" — |", f);
        }
        fputc('\n', f);
    }
}

/* ---- plots ---- */

static int json_bins(const cJSON *model, slm_calib_bin *bins, int max) {
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(model, "reliability")) {
        if (n == max) break;
        double cnt = get_num(r, "count");
        bins[n] = (slm_calib_bin){get_num(r, "lo"), get_num(r, "hi"), isnan(cnt) ? 0 : (long)cnt,
                                  get_num(r, "confidence"), get_num(r, "accuracy")};
        if (isnan(bins[n].lo) || isnan(bins[n].hi)) continue;
        if (isnan(bins[n].confidence) || isnan(bins[n].accuracy)) bins[n].count = 0;
        n++;
    }
    return n;
}

typedef slm_status (*plot_fn)(FILE *f, const void *ctx, slm_err *err);

static slm_status write_file(const char *dir, const char *name, plot_fn fn, const void *ctx, slm_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    slm_atomic_file af;
    slm_status st = slm_atomic_open(&af, path, err);
    if (st != SLM_OK) return st;
    if ((st = fn(af.f, ctx, err)) != SLM_OK) {
        slm_atomic_abort(&af);
        return slm_err_prefix(err, "%s", path);
    }
    return slm_atomic_commit(&af, err);
}

enum { MAX_BINS = 100 };

static slm_status plot_reliability(FILE *f, const void *ctx, slm_err *err) {
    const cJSON *rep = ctx;
    static const char *const roles[2] = {"candidate", "baseline"};
    slm_calib_bin bins[2][MAX_BINS];
    slm_svg_reliability_model models[2];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(rep, roles[i]);
        if (!m) continue;
        int nb = json_bins(m, bins[n], MAX_BINS);
        if (!nb) continue;
        models[n] = (slm_svg_reliability_model){get_str(m, "name", roles[i]), bins[n], nb};
        n++;
    }
    return slm_svg_reliability(f, "Reliability diagram (bars: accuracy; dots: mean confidence)", models, n, err);
}

static slm_status plot_cost(FILE *f, const void *ctx, slm_err *err) {
    const cJSON *rep = ctx;
    static const char *const roles[2] = {"candidate", "baseline"};
    slm_svg_point pts[2];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(rep, roles[i]);
        if (m) pts[n++] = (slm_svg_point){get_str(m, "name", roles[i]), get_num(m, "cost_usd_per_1k_queries"),
                                          100 * get_num(m, "accuracy")};
    }
    return slm_svg_scatter(f, "Accuracy versus cost", "cost per 1,000 queries (USD, log scale)",
                           "accuracy (%)", pts, n, 1, err);
}

typedef struct {
    double *step, *loss, *val;
    int n;
} loss_log;

static slm_status plot_loss(FILE *f, const void *ctx, slm_err *err) {
    const loss_log *l = ctx;
    /* validation runs every few hundred steps: its points are joined to each other, not broken by
     * the steps in between (a gap in a series lifts the pen) */
    double *vx = malloc(sizeof(double) * (size_t)(l->n + 1)), *vy = malloc(sizeof(double) * (size_t)(l->n + 1));
    if (!vx || !vy) {
        free(vx);
        free(vy);
        return slm_err_set(err, SLM_ERR_NOMEM, "out of memory plotting the loss");
    }
    int nv = 0;
    for (int i = 0; i < l->n; i++)
        if (!isnan(l->val[i])) vx[nv] = l->step[i], vy[nv++] = l->val[i];
    slm_svg_series s[2] = {{"training loss", l->step, l->loss, l->n}, {"validation loss", vx, vy, nv}};
    slm_status st = slm_svg_line_chart(f, "Training loss", "step", "loss (nats/token)", s, nv ? 2 : 1, err);
    free(vx);
    free(vy);
    return st;
}

static slm_status load_loss_log(const char *path, loss_log *l, slm_err *err) {
    memset(l, 0, sizeof *l);
    char *data;
    size_t len;
    slm_status st = slm_file_read_all(path, &data, &len, err);
    if (st != SLM_OK) return slm_err_prefix(err, "--train-log");
    int cap = 0;
    long line_no = 0;
    for (char *p = data, *end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *line = p;
        p += ll + 1;
        line_no++;
        cJSON *o = cJSON_ParseWithLength(line, ll);
        if (!o) continue; /* blank or partial last line of a running job */
        double step = get_num(o, "step"), loss = get_num(o, "loss"), val = get_num(o, "val_loss");
        cJSON_Delete(o);
        if (isnan(step) || (isnan(loss) && isnan(val))) continue;
        if (l->n == cap) {
            cap = cap ? cap * 2 : 256;
            double *a = realloc(l->step, (size_t)cap * sizeof *a);
            if (a) l->step = a;
            double *b = realloc(l->loss, (size_t)cap * sizeof *b);
            if (b) l->loss = b;
            double *c = realloc(l->val, (size_t)cap * sizeof *c);
            if (c) l->val = c;
            if (!a || !b || !c) {
                st = slm_err_set(err, SLM_ERR_NOMEM, "%s:%ld: out of memory", path, line_no);
                break;
            }
        }
        l->step[l->n] = step, l->loss[l->n] = loss, l->val[l->n] = val;
        l->n++;
    }
    free(data);
    if (st == SLM_OK && l->n == 0)
        st = slm_err_set(err, SLM_ERR_FORMAT, "%s: no line with \"step\" and \"loss\"", path);
    return st;
}

static slm_status print_json(FILE *f, const void *ctx, slm_err *err) {
    char *s = cJSON_Print(ctx);
    if (!s) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory printing the report");
    fputs(s, f);
    fputc('\n', f);
    cJSON_free(s);
    return ferror(f) ? slm_err_set(err, SLM_ERR_IO, "write error") : SLM_OK;
}

typedef struct {
    const cJSON *rep;
    int have_loss, have_cost;
} md_ctx;

static slm_status print_md(FILE *f, const void *ctx, slm_err *err) {
    const md_ctx *m = ctx;
    write_markdown(f, m->rep, m->have_loss, m->have_cost);
    return ferror(f) ? slm_err_set(err, SLM_ERR_IO, "write error") : SLM_OK;
}

slm_status slm_eval_report_write(const cJSON *report, const char *dir, const char *train_log,
                                 slm_err *err) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return slm_err_set(err, SLM_ERR_IO, "%s: cannot create the report directory: %s", dir, strerror(errno));
    slm_status st = write_file(dir, "report.json", print_json, report, err);
    if (st == SLM_OK) st = write_file(dir, "reliability.svg", plot_reliability, report, err);
    md_ctx md = {report, 0, 0};
    if (st == SLM_OK) {
        slm_err e2;
        md.have_cost = write_file(dir, "accuracy_cost.svg", plot_cost, report, &e2) == SLM_OK;
    }
    if (st == SLM_OK && train_log) {
        loss_log l;
        st = load_loss_log(train_log, &l, err);
        if (st == SLM_OK) st = write_file(dir, "loss.svg", plot_loss, &l, err);
        md.have_loss = st == SLM_OK;
        free(l.step);
        free(l.loss);
        free(l.val);
    }
    if (st == SLM_OK) st = write_file(dir, "report.md", print_md, &md, err);
    return st;
}

/* ---- terminal summary ---- */

void slm_eval_report_print_summary(const cJSON *report, FILE *f) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(report, "candidate");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(report, "baseline");
    fprintf(f, "%-44s %16.16s", "", get_str(c, "name", "candidate"));
    if (b) fprintf(f, " %16.16s %10s", get_str(b, "name", "baseline"), "delta");
    fputc('\n', f);
    for (int i = 0; i < N_ROWS; i++) {
        double cv = get_num(c, rows[i].key), bv = b ? get_num(b, rows[i].key) : NAN;
        if (isnan(cv) && isnan(bv)) continue;
        char s1[64], s2[64], s3[64] = "—";
        fmt_val(s1, sizeof s1, cv, &rows[i]);
        fmt_val(s2, sizeof s2, bv, &rows[i]);
        if (!isnan(cv) && !isnan(bv)) snprintf(s3, sizeof s3, "%+.*f", rows[i].decimals, (cv - bv) * rows[i].scale);
        /* "—" is 3 bytes for 1 column: pad by hand */
        fprintf(f, "%-44s %*s", rows[i].title, isnan(cv) ? 18 : 16, s1);
        if (b) fprintf(f, " %*s %*s", isnan(bv) ? 18 : 16, s2, strcmp(s3, "—") ? 10 : 12, s3);
        fputc('\n', f);
    }
    fprintf(f, "energy: %s", get_str(c, "energy_method", "?"));
    if (b) fprintf(f, " (baseline: %s)", get_str(b, "energy_method", "?"));
    fputc('\n', f);
}

/* ---- the gate ---- */

slm_status slm_eval_gate(const cJSON *report, const char *stored_path, const slm_gate_opts *o,
                         slm_gate_result *res, slm_err *err) {
    memset(res, 0, sizeof *res);
    cJSON *stored;
    slm_status st = slm_eval_report_load(stored_path, &stored, err);
    if (st != SLM_OK) return st;
    const cJSON *oc = cJSON_GetObjectItemCaseSensitive(stored, "candidate");
    const cJSON *nc = cJSON_GetObjectItemCaseSensitive(report, "candidate");
    static const char *const keys[3] = {"accuracy", "macro_f1", "latency_ms_p95"};
    int n_keys = o->latency_pct >= 0 ? 3 : 2;
    res->pass = 1;
    for (int k = 0; k < n_keys; k++) {
        double ov = get_num(oc, keys[k]), nv = get_num(nc, keys[k]);
        if (isnan(ov) || isnan(nv)) {
            st = slm_err_set(err, SLM_ERR_FORMAT, "%s: \"candidate\".\"%s\" is missing or null",
                             isnan(ov) ? stored_path : "the new report", keys[k]);
            break;
        }
        slm_gate_row *r = &res->rows[res->n++];
        snprintf(r->metric, sizeof r->metric, "%s", keys[k]);
        r->old_value = ov;
        r->new_value = nv;
        r->delta = nv - ov;
        if (k < 2) {
            r->allowed = ov - o->tolerance_points / 100.0;
            r->pass = nv >= r->allowed - 1e-12;
        } else {
            r->allowed = ov * (1 + o->latency_pct / 100.0);
            r->pass = nv <= r->allowed + 1e-12;
        }
        res->pass &= r->pass;
    }
    cJSON_Delete(stored);
    if (st != SLM_OK) res->pass = 0;
    return st;
}

void slm_gate_print(const slm_gate_result *res, const char *stored_path, FILE *f) {
    fprintf(f, "gate against %s:\n", stored_path);
    fprintf(f, "  %-16s %12s %12s %10s %12s  %s\n", "metric", "stored", "new", "delta", "allowed", "verdict");
    for (int i = 0; i < res->n; i++) {
        int frac = strncmp(res->rows[i].metric, "latency", 7) != 0;
        double s = frac ? 100 : 1;
        fprintf(f, "  %-16s %11.3f%s %11.3f%s %+9.3f%s %s%10.3f%s  %s\n", res->rows[i].metric,
                res->rows[i].old_value * s, frac ? "%" : " ", res->rows[i].new_value * s, frac ? "%" : " ",
                res->rows[i].delta * s, frac ? "p" : " ", frac ? ">=" : "<=", res->rows[i].allowed * s,
                frac ? "%" : " ", res->rows[i].pass ? "PASS" : "FAIL");
    }
    fprintf(f, "gate: %s\n", res->pass ? "PASS" : "FAIL (the candidate is worse than the stored report)");
}
