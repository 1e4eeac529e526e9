/* classify_metrics.c: confusion matrix, accuracy, per-label and macro F1, calibration error and
 * reliability bins, AUROC and out-of-scope recall at a target accuracy (see classify_metrics.h).
 * Pure functions: no I/O, no state; the only allocations are the result's arrays and sort space.
 */
#include "eval/classify_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int slm_cls_argmax(const float *row, int n_labels, float *confidence) {
    int best = 0;
    for (int j = 1; j < n_labels; j++)
        if (row[j] > row[best]) best = j;
    if (confidence) *confidence = row[best];
    return best;
}

void slm_cls_metrics_free(slm_cls_metrics *m) {
    if (!m) return;
    free(m->confusion);
    free(m->support);
    free(m->predicted);
    free(m->precision);
    free(m->recall);
    free(m->f1);
    free(m->bins);
    memset(m, 0, sizeof *m);
}

static double safe_div(double a, double b) { return b > 0 ? a / b : 0.0; }

slm_status slm_cls_metrics_compute(const float *probs, const int *gold, long n, int n_labels,
                                   int n_bins, slm_cls_metrics *m, slm_err *err) {
    memset(m, 0, sizeof *m);
    if (n < 1 || n_labels < 1 || n_bins < 1)
        return slm_err_set(err, SLM_ERR_ARG,
                           "classification metrics need at least one example, label and bin "
                           "(got n=%ld, labels=%d, bins=%d)", n, n_labels, n_bins);
    size_t L = (size_t)n_labels;
    m->n_labels = n_labels;
    m->n = n;
    m->n_bins = n_bins;
    m->confusion = calloc(L * L, sizeof *m->confusion);
    m->support = calloc(L, sizeof *m->support);
    m->predicted = calloc(L, sizeof *m->predicted);
    m->precision = calloc(L, sizeof *m->precision);
    m->recall = calloc(L, sizeof *m->recall);
    m->f1 = calloc(L, sizeof *m->f1);
    m->bins = calloc((size_t)n_bins, sizeof *m->bins);
    double *bin_conf = calloc((size_t)n_bins, sizeof *bin_conf);
    long *bin_correct = calloc((size_t)n_bins, sizeof *bin_correct);
    long *tp = calloc(L, sizeof *tp);
    if (!m->confusion || !m->support || !m->predicted || !m->precision || !m->recall || !m->f1 ||
        !m->bins || !bin_conf || !bin_correct || !tp) {
        free(bin_conf);
        free(bin_correct);
        free(tp);
        slm_cls_metrics_free(m);
        return slm_err_set(err, SLM_ERR_NOMEM, "out of memory for metrics of %d labels", n_labels);
    }

    slm_status st = SLM_OK;
    double conf_sum = 0;
    for (long i = 0; i < n; i++) {
        const float *row = probs + (size_t)i * L;
        int g = gold[i];
        if (g < -1 || g >= n_labels) {
            st = slm_err_set(err, SLM_ERR_RANGE, "example %ld: gold label id %d outside [-1, %d)",
                             i, g, n_labels);
            break;
        }
        for (size_t j = 0; j < L; j++)
            if (isnan(row[j])) {
                st = slm_err_set(err, SLM_ERR_RANGE, "example %ld: probability of label %zu is NaN",
                                 i, j);
                break;
            }
        if (st != SLM_OK) break;
        float conf;
        int p = slm_cls_argmax(row, n_labels, &conf);
        int correct = g == p;
        m->predicted[p]++;
        if (g >= 0) {
            m->support[g]++;
            m->confusion[(size_t)g * L + (size_t)p]++;
        } else {
            m->n_unknown++;
        }
        if (correct) {
            m->n_correct++;
            tp[p]++;
        }
        double c = conf < 0 ? 0 : conf > 1 ? 1 : conf;
        int b = (int)(c * n_bins);
        if (b >= n_bins) b = n_bins - 1;
        m->bins[b].count++;
        bin_conf[b] += c;
        bin_correct[b] += correct;
        conf_sum += c;
    }
    if (st != SLM_OK) {
        free(bin_conf);
        free(bin_correct);
        free(tp);
        slm_cls_metrics_free(m);
        return st;
    }

    m->accuracy = (double)m->n_correct / (double)n;
    m->mean_confidence = conf_sum / (double)n;
    double f1_sum = 0;
    int f1_labels = 0;
    for (size_t j = 0; j < L; j++) {
        m->precision[j] = safe_div((double)tp[j], (double)m->predicted[j]);
        m->recall[j] = safe_div((double)tp[j], (double)m->support[j]);
        m->f1[j] = safe_div(2.0 * m->precision[j] * m->recall[j], m->precision[j] + m->recall[j]);
        if (m->support[j] > 0 || m->predicted[j] > 0) {
            f1_sum += m->f1[j];
            f1_labels++;
        }
    }
    m->macro_f1 = safe_div(f1_sum, (double)f1_labels);
    double ece = 0;
    for (int b = 0; b < n_bins; b++) {
        slm_calib_bin *bin = &m->bins[b];
        bin->lo = (double)b / n_bins;
        bin->hi = (double)(b + 1) / n_bins;
        if (bin->count) {
            bin->confidence = bin_conf[b] / (double)bin->count;
            bin->accuracy = (double)bin_correct[b] / (double)bin->count;
            ece += (double)bin->count / (double)n * fabs(bin->accuracy - bin->confidence);
        }
    }
    m->ece = ece;
    free(bin_conf);
    free(bin_correct);
    free(tp);
    return SLM_OK;
}

/* ---- AUROC ---- */

typedef struct {
    double score;
    int positive;
} scored;

static int cmp_scored_asc(const void *a, const void *b) {
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x > y) - (x < y);
}

slm_status slm_auroc(const double *pos, long n_pos, const double *neg, long n_neg, double *auroc,
                     slm_err *err) {
    if (n_pos < 1 || n_neg < 1)
        return slm_err_set(err, SLM_ERR_ARG,
                           "AUROC needs at least one positive and one negative (got %ld and %ld)",
                           n_pos, n_neg);
    size_t n = (size_t)n_pos + (size_t)n_neg;
    scored *s = malloc(n * sizeof *s);
    if (!s) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory for AUROC of %zu scores", n);
    for (long i = 0; i < n_pos; i++) s[i] = (scored){pos[i], 1};
    for (long i = 0; i < n_neg; i++) s[n_pos + i] = (scored){neg[i], 0};
    for (size_t i = 0; i < n; i++)
        if (isnan(s[i].score)) {
            free(s);
            return slm_err_set(err, SLM_ERR_RANGE, "AUROC: score %zu is NaN", i);
        }
    qsort(s, n, sizeof *s, cmp_scored_asc);
    /* Sum of the positives' ranks (1-based), tied groups sharing their average rank. */
    double rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        long pos_in_group = 0;
        while (j < n && s[j].score == s[i].score) pos_in_group += s[j++].positive;
        double avg_rank = ((double)(i + 1) + (double)j) / 2.0;
        rank_sum += avg_rank * (double)pos_in_group;
        i = j;
    }
    free(s);
    double u = rank_sum - (double)n_pos * ((double)n_pos + 1) / 2.0;
    *auroc = u / ((double)n_pos * (double)n_neg);
    return SLM_OK;
}

/* ---- out-of-scope recall at a target in-scope accuracy ---- */

typedef struct {
    double conf;
    unsigned char correct;
} answer;

static int cmp_answer_desc(const void *a, const void *b) {
    double x = ((const answer *)a)->conf, y = ((const answer *)b)->conf;
    return (x < y) - (x > y);
}

slm_status slm_ood_at_accuracy(const double *in_conf, const unsigned char *in_correct, long n_in,
                               const double *ood_conf, long n_ood, double target,
                               slm_ood_at_acc *out, slm_err *err) {
    memset(out, 0, sizeof *out);
    if (n_in < 1 || n_ood < 1)
        return slm_err_set(err, SLM_ERR_ARG,
                           "out-of-scope recall needs in-scope and out-of-scope examples "
                           "(got %ld and %ld)", n_in, n_ood);
    if (!(target > 0 && target <= 1))
        return slm_err_set(err, SLM_ERR_ARG, "target accuracy %g outside (0, 1]", target);
    answer *a = malloc((size_t)n_in * sizeof *a);
    if (!a) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory for %ld answers", n_in);
    for (long i = 0; i < n_in; i++) a[i] = (answer){in_conf[i], in_correct[i] ? 1 : 0};
    qsort(a, (size_t)n_in, sizeof *a, cmp_answer_desc);

    out->target = target;
    out->threshold = nextafter(1.0, 2.0); /* rejects every probability */
    long kept = 0, correct = 0;
    /* Walk thresholds from the highest confidence down; equal confidences are kept together.
     * The last threshold whose kept answers reach the target gives the most coverage. */
    for (long i = 0; i < n_in;) {
        long j = i;
        while (j < n_in && a[j].conf == a[i].conf) correct += a[j++].correct;
        kept = j;
        double acc = (double)correct / (double)kept;
        /* compare with a little slack so that e.g. 19/20 counts as reaching 0.95 */
        if (acc >= target - 1e-12) {
            out->reached = 1;
            out->threshold = a[i].conf;
            out->in_coverage = (double)kept / (double)n_in;
            out->in_accuracy = acc;
        }
        i = j;
    }
    free(a);
    long rejected = 0;
    for (long i = 0; i < n_ood; i++) rejected += ood_conf[i] < out->threshold;
    out->ood_recall = (double)rejected / (double)n_ood;
    return SLM_OK;
}
