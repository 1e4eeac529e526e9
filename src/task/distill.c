/* distill.c: the teacher's cached soft labels (distill.h); the loss is in classify_head.c and
 * the training hook in finetune.c. */
#include "task/distill.h"

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
