/* distill.c: classify distillation's cached soft labels (its loss is in classify_head.c and its
 * training hook in finetune.c), and generate distillation's per-token loss and tokenizer check
 * (its training hook is in sft.c). See distill.h. */
#include "task/distill.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

slm_status slm_distill_teacher_probs(slm_classifier *teacher, const slm_task_data *d, float *probs,
                                     slm_err *err) {
    int K = d->n_labels, Kt = slm_classifier_n_labels(teacher);
    if (Kt != K)
        return slm_err_set(err, SLM_ERR_ARG, "teacher: %d labels, the data %d (the label sets must be equal)", Kt, K);
    int *map = malloc(sizeof(int) * (size_t)K); /* teacher column -> data column */
    float *buf = malloc(sizeof(float) * 64 * (size_t)K);
    size_t *lens = malloc(sizeof(size_t) * 64);
    if (!map || !buf || !lens) {
        free(map), free(buf), free(lens);
        return slm_err_set(err, SLM_ERR_NOMEM, "teacher: out of memory");
    }
    slm_status s = SLM_OK;
    for (int j = 0; j < K && !s; j++) {
        map[j] = -1;
        for (int k = 0; k < K; k++)
            if (!strcmp(slm_classifier_label(teacher, j), d->labels[k])) map[j] = k;
        if (map[j] < 0)
            s = slm_err_set(err, SLM_ERR_ARG, "teacher label '%s' is not a label of the data",
                            slm_classifier_label(teacher, j));
    }
    for (int i0 = 0; i0 < d->train.n && !s; i0 += 64) {
        int n = d->train.n - i0 < 64 ? d->train.n - i0 : 64;
        for (int i = 0; i < n; i++) lens[i] = strlen(d->train.text[i0 + i]);
        s = slm_classifier_predict(teacher, (const char *const *)d->train.text + i0, lens, n, buf, err);
        for (int i = 0; i < n && !s; i++)
            for (int j = 0; j < K; j++) probs[(size_t)(i0 + i) * K + map[j]] = buf[(size_t)i * K + j];
    }
    if (s) slm_err_prefix(err, "teacher");
    free(map);
    free(buf);
    free(lens);
    return s;
}

double slm_distill_token_loss(const float *z, const float *tz, int V, int32_t target, float T, float alpha,
                              float scale, float *dz) {
    const double iT = 1.0 / (double)T, a = alpha;
    /* the maxima of z and tz (z / T and tz / T have theirs at the same places) */
    double mz = -INFINITY, mp = -INFINITY;
    for (int k = 0; k < V; k++) {
        mz = fmax(mz, z[k]);
        mp = fmax(mp, tz[k]);
    }
    /* log-sum-exps of z, z / T and tz / T, shifted by their maxima */
    double sz = 0, st = 0, sp = 0;
    for (int k = 0; k < V; k++) {
        sz += exp((double)z[k] - mz);
        sp += exp(((double)tz[k] - mp) * iT);
        if (T != 1.0f) st += exp(((double)z[k] - mz) * iT);
    }
    if (T == 1.0f) st = sz;
    double lz = log(sz), lt = log(st), lp = log(sp);
    double ce = lz - ((double)z[target] - mz), kl = 0;
    for (int k = 0; k < V; k++) {
        double lqt = ((double)z[k] - mz) * iT - lt, lpt = ((double)tz[k] - mp) * iT - lp, pt = exp(lpt);
        kl += pt * (lpt - lqt);
        if (dz) {
            double q = exp((double)z[k] - mz - lz), qt = T == 1.0f ? q : exp(lqt);
            double g = a * (double)T * (qt - pt) + (1 - a) * (q - (k == target));
            dz[k] = (float)(scale * g);
        }
    }
    return a * (double)T * (double)T * kl + (1 - a) * ce;
}

/* Writes s[0..n) quoted into out (cap bytes): about its first 24 bytes (cut at a character
 * boundary), control bytes, quote and backslash as \xNN; "..." when cut. */
static void show(char *out, size_t cap, const char *s, size_t n) {
    size_t k = 0, i = 0;
    out[k++] = '\'';
    for (; i < n && k + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 24 && (c & 0xC0) != 0x80) break;
        if (c < 32 || c == 127 || c == '\'' || c == '\\') k += (size_t)snprintf(out + k, cap - k, "\\x%02x", c);
        else out[k++] = (char)c;
    }
    if (i < n) out[k++] = '.', out[k++] = '.', out[k++] = '.';
    out[k++] = '\'';
    out[k] = 0;
}

slm_status slm_distill_check_vocab(const slm_tokenizer *teacher, const slm_tokenizer *student, slm_err *err) {
    int nt = slm_tokenizer_n_vocab(teacher), ns = slm_tokenizer_n_vocab(student);
    int n = nt < ns ? nt : ns;
    for (int i = 0; i < n; i++) {
        size_t lt = 0, ls = 0;
        const char *a = slm_tokenizer_token_text(teacher, i, &lt), *b = slm_tokenizer_token_text(student, i, &ls);
        if (lt == ls && (lt == 0 || !memcmp(a, b, lt))) continue;
        char sa[128], sb[128];
        show(sa, sizeof sa, a ? a : "", a ? lt : 0);
        show(sb, sizeof sb, b ? b : "", b ? ls : 0);
        return slm_err_set(err, SLM_ERR_ARG, "the teacher's and the student's tokenizers differ: token %d is %s in "
                           "the teacher, %s in the student (they must share the tokenizer)", i, sa, sb);
    }
    if (nt != ns)
        return slm_err_set(err, SLM_ERR_ARG, "the teacher's and the student's tokenizers differ: the teacher has %d "
                           "tokens, the student %d (the first %d agree; they must share the tokenizer)", nt, ns, n);
    return SLM_OK;
}
