/* classify_metrics.h: the task metrics of a classifier, as pure functions over its outputs.
 *
 * Input everywhere: n examples, L labels, probs (n, L) row-major (each row a probability
 * distribution over the model's labels) and gold (n) label ids. A gold id of -1 means "a label the
 * model does not know": such an example is always counted as wrong (its prediction is a false
 * positive of the predicted label) and adds to n_unknown, never to any label's support.
 *
 * Conventions (the ones scikit-learn uses, so figures compare with a TF-IDF baseline's):
 * - prediction = argmax of the row (the first label on ties), confidence = that probability;
 * - precision = TP / (TP + FP), recall = TP / (TP + FN), 0 when the denominator is 0;
 * - macro-F1 = mean F1 over the labels that occur as gold or as prediction (sklearn's default
 *   `labels` set); labels that never occur are left out, not counted as F1 0;
 * - expected calibration error with M equal-width bins: bin b holds confidences in
 *   [b/M, (b+1)/M) (1.0 goes to the last bin); ECE = sum_b (n_b / n) |acc_b - conf_b|.
 * Out-of-distribution (held-out intents) metrics score each example by its max probability:
 * AUROC of in-scope (positive) versus out-of-scope (negative), ties counting one half; and the
 * recall of out-of-scope examples at the threshold where the in-scope answers kept reach a target
 * accuracy (see slm_ood_at_accuracy).
 */
#ifndef SLM_EVAL_CLASSIFY_METRICS_H
#define SLM_EVAL_CLASSIFY_METRICS_H

#include <stddef.h>

#include "core/error.h"

typedef struct {
    double lo, hi;       /* the bin's confidence range [lo, hi) */
    long count;          /* examples whose confidence falls in it */
    double confidence;   /* their mean confidence (0 when count is 0) */
    double accuracy;     /* their accuracy (0 when count is 0) */
} slm_calib_bin;

typedef struct {
    int n_labels;          /* L */
    long n;                /* examples scored (gold >= 0 or -1) */
    long n_correct;
    long n_unknown;        /* examples whose gold label the model does not know (gold == -1) */
    double accuracy;       /* n_correct / n */
    double macro_f1;       /* see the header comment */
    double ece;            /* expected calibration error, n_bins equal-width bins */
    double mean_confidence;
    long *confusion;       /* (L, L): confusion[gold * L + pred], known gold labels only */
    long *support;         /* (L): examples of each gold label */
    long *predicted;       /* (L): examples predicted as each label (unknown gold included) */
    double *precision;     /* (L) */
    double *recall;        /* (L) */
    double *f1;            /* (L) */
    int n_bins;            /* M */
    slm_calib_bin *bins;   /* (M) */
} slm_cls_metrics;

/* Computes every metric above. n_bins >= 1. Errors: n < 1 or L < 1 or n_bins < 1 (SLM_ERR_ARG),
 * a gold id outside [-1, L) (SLM_ERR_RANGE, naming the example), a row with a NaN (SLM_ERR_RANGE),
 * out of memory. On error *m is left zeroed. Free with slm_cls_metrics_free. */
slm_status slm_cls_metrics_compute(const float *probs, const int *gold, long n, int n_labels,
                                   int n_bins, slm_cls_metrics *m, slm_err *err);
void slm_cls_metrics_free(slm_cls_metrics *m);

/* The prediction (argmax, first on ties) and confidence (max) of one row of L probabilities. */
int slm_cls_argmax(const float *row, int n_labels, float *confidence);

/* Area under the ROC curve for separating positives (score should be high) from negatives:
 * P(s_pos > s_neg) + P(s_pos == s_neg) / 2, computed from average ranks (Mann-Whitney U).
 * Errors: n_pos < 1 or n_neg < 1 (SLM_ERR_ARG), a NaN score (SLM_ERR_RANGE), out of memory. */
slm_status slm_auroc(const double *pos, long n_pos, const double *neg, long n_neg, double *auroc,
                     slm_err *err);

typedef struct {
    double target;        /* the accuracy asked for among the in-scope answers kept */
    int reached;          /* 1 when some threshold keeps at least one in-scope answer at target */
    double threshold;     /* answers with confidence >= threshold are kept (1.0 + tiny when none) */
    double in_coverage;   /* share of in-scope examples kept */
    double in_accuracy;   /* accuracy of the in-scope examples kept (0 when none) */
    double ood_recall;    /* share of out-of-scope examples rejected (confidence < threshold) */
} slm_ood_at_acc;

/* Selective-answer view of held-out intents: the model answers when its confidence is at least a
 * threshold, else it defers (routes away, says "out of scope"). Over the in-scope examples
 * (confidence in_conf[i], correct in_correct[i] != 0), take the lowest threshold, among their
 * confidences, at which the kept answers reach target accuracy (most coverage); report how many
 * out-of-scope examples (ood_conf) that threshold rejects. When no threshold reaches the target,
 * reached = 0 and the threshold rejects everything (ood_recall 1, in_coverage 0).
 * Errors: n_in < 1 or n_ood < 1 or target outside (0, 1] (SLM_ERR_ARG), out of memory. */
slm_status slm_ood_at_accuracy(const double *in_conf, const unsigned char *in_correct, long n_in,
                               const double *ood_conf, long n_ood, double target,
                               slm_ood_at_acc *out, slm_err *err);

#endif
