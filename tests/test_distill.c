/* test_distill.c: distillation — the mixed loss (alpha·T²·KL + (1-alpha)·CE) against finite
 * differences and its limits (alpha 0 is cross-entropy; a teacher equal to the student has no
 * KL), and a student trained on a teacher's soft labels that matches the teacher's predictions
 * on a synthetic task. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "task/classifier.h"
#include "task/classify_head.h"
#include "task/distill.h"
#include "task/finetune.h"
#include "task/task_data.h"
#include "util/synth_task.h"
#include "util/testutil.h"

enum { E = 3, K = 4 };

static void test_distill_loss_fd(void **state) {
    (void)state;
    slm_rng r;
    slm_rng_seed(&r, 3, 0);
    float z[E * K], p[E * K], dz[E * K];
    int32_t y[E] = {0, 2, 3};
    for (int i = 0; i < E * K; i++) z[i] = 1.5f * slm_rng_normal(&r);
    for (int e = 0; e < E; e++) {
        float s = 0;
        for (int k = 0; k < K; k++) s += p[e * K + k] = expf(slm_rng_normal(&r));
        for (int k = 0; k < K; k++) p[e * K + k] /= s;
    }
    float Ts[3] = {1.0f, 2.0f, 4.0f}, As[3] = {0.0f, 0.5f, 1.0f};
    for (int ti = 0; ti < 3; ti++)
        for (int ai = 0; ai < 3; ai++) {
            slm_cls_distill_loss(z, y, p, E, K, Ts[ti], As[ai], 0.5f, dz);
            for (int j = 0; j < E * K; j++) {
                float v = z[j];
                z[j] = v + 1e-3f;
                double lp = slm_cls_distill_loss(z, y, p, E, K, Ts[ti], As[ai], 1.0f, NULL);
                z[j] = v - 1e-3f;
                double lm = slm_cls_distill_loss(z, y, p, E, K, Ts[ti], As[ai], 1.0f, NULL);
                z[j] = v;
                double fd = 0.5 * (lp - lm) / ((double)(v + 1e-3f) - (double)(v - 1e-3f));
                if (fabs(fd - dz[j]) > 1e-3 * (1 + fabs(fd)))
                    fail_msg("T %g alpha %g dz[%d]: fd %.6g, gradient %.6g", Ts[ti], As[ai], j, fd, (double)dz[j]);
            }
        }
    /* alpha 0 is plain cross-entropy */
    double ce = slm_cls_loss(z, y, E, K, 0.0f, 1.0f, NULL, NULL);
    assert_float_equal(slm_cls_distill_loss(z, y, p, E, K, 2.0f, 0.0f, 1.0f, NULL), ce, 1e-5);
    /* a teacher equal to the student (at any T) leaves no KL */
    float q[E * K];
    memcpy(q, z, sizeof q);
    slm_cls_softmax(q, E, K);
    assert_float_equal(slm_cls_distill_loss(z, y, q, E, K, 3.0f, 1.0f, 1.0f, NULL), 0.0, 1e-5);
}

static void test_student_matches_teacher(void **state) {
    (void)state;
    slm_task_data d;
    slm_tokenizer *tok;
    tu_synth_task("kd-synth", 320, 80, 12, &d, &tok);
    slm_model_config cfg = {.n_vocab = slm_tokenizer_n_vocab(tok), .dim = 32, .n_layers = 2, .n_heads = 4,
                            .n_kv_heads = 4, .hidden_dim = 64, .ctx_len = 16, .rope_theta = 10000.0f,
                            .norm_eps = 1e-5f, .tied_output = 1};
    slm_finetune_opts o;
    slm_finetune_opts_default(&o);
    o.steps = 80;
    o.batch = 16;
    o.max_len = 12;
    o.lr = 3e-3f;
    o.pooling = SLM_POOL_MEAN;
    o.eval_every = 40;
    /* the teacher */
    slm_model *tm = slm_model_new(&cfg, tu_err());
    slm_model_init_random(tm, 1);
    slm_finetune *tt = slm_finetune_new(tm, tok, &d, &o, NULL, tu_err());
    TU_OK(slm_finetune_run(tt, tu_err()));
    const char *teacher_path = tu_tmp_path("kd-teacher.gguf");
    TU_OK(slm_finetune_save(tt, teacher_path, tu_err()));
    slm_finetune_free(tt);
    slm_model_free(tm);
    slm_classifier *teacher = slm_classifier_load(teacher_path, NULL, tu_err());
    assert_non_null(teacher);
    float *probs = malloc(sizeof(float) * (size_t)d.train.n * 3);
    TU_OK(slm_distill_teacher_probs(teacher, &d, probs, tu_err()));
    for (int k = 0; k < 3; k++) assert_true(probs[k] >= 0 && probs[k] <= 1);
    /* a smaller student, another seed, distilled */
    slm_model_config sc = cfg;
    sc.dim = 16;
    sc.hidden_dim = 32;
    sc.n_layers = 1;
    slm_model *sm = slm_model_new(&sc, tu_err());
    slm_model_init_random(sm, 7);
    slm_finetune *st = slm_finetune_new(sm, tok, &d, &o, NULL, tu_err());
    assert_non_null(st);
    assert_int_equal(slm_finetune_set_teacher(st, probs, 0.0f, 0.5f, tu_err()), SLM_ERR_ARG);
    TU_OK(slm_finetune_set_teacher(st, probs, 2.0f, 0.7f, tu_err()));
    TU_OK(slm_finetune_run(st, tu_err()));
    const char *student_path = tu_tmp_path("kd-student.gguf");
    TU_OK(slm_finetune_save(st, student_path, tu_err()));
    slm_classifier *student = slm_classifier_load(student_path, NULL, tu_err());
    assert_non_null(student);
    int n = d.val.n;
    const char **texts = malloc(sizeof(char *) * n);
    size_t *lens = malloc(sizeof(size_t) * n);
    for (int i = 0; i < n; i++) texts[i] = d.val.text[i], lens[i] = strlen(texts[i]);
    float *pt = malloc(sizeof(float) * n * 3), *ps = malloc(sizeof(float) * n * 3);
    TU_OK(slm_classifier_predict(teacher, texts, lens, n, pt, tu_err()));
    TU_OK(slm_classifier_predict(student, texts, lens, n, ps, tu_err()));
    int agree = 0;
    for (int i = 0; i < n; i++) {
        int a = 0, b = 0;
        for (int k = 1; k < 3; k++) a = pt[i * 3 + k] > pt[i * 3 + a] ? k : a, b = ps[i * 3 + k] > ps[i * 3 + b] ? k : b;
        agree += a == b;
    }
    if (getenv("SLM_TEST_VERBOSE")) print_message("student agrees with teacher on %d/%d\n", agree, n);
    assert_true(agree >= (int)(0.9 * n));
    free(pt);
    free(ps);
    free(texts);
    free(lens);
    free(probs);
    slm_classifier_free(teacher);
    slm_classifier_free(student);
    slm_finetune_free(st);
    slm_model_free(sm);
    slm_tokenizer_free(tok);
    slm_task_data_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distill_loss_fd),
        cmocka_unit_test(test_student_matches_teacher),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
