/* test_distill.c: distillation — the mixed loss (alpha·T²·KL + (1-alpha)·CE) against finite
 * differences and its limits (alpha 0 is cross-entropy; a teacher equal to the student has no
 * KL), for classify (per example over labels) and generate (per completion token over the
 * vocabulary) models; a classify student trained on a teacher's soft labels that matches the
 * teacher's predictions on a synthetic task; a generate student that, distilled from a teacher
 * trained on a reversal task, comes close to the teacher's next-token distributions; the
 * teacher's plumbing (a mapped copy of the student gives no loss at alpha 1, plain fine-tuning at
 * alpha 0); and a teacher whose tokenizer differs refused with the difference named. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "task/classifier.h"
#include "task/classify_head.h"
#include "task/distill.h"
#include "task/finetune.h"
#include "task/sft.h"
#include "task/sft_data.h"
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

/* ---- generate-task distillation ---- */

/* The per-token loss against finite differences over the student's logits, in place and not. */
static void test_token_loss_fd(void **state) {
    (void)state;
    enum { V = 9 };
    slm_rng r;
    slm_rng_seed(&r, 11, 0);
    float z[V], tz[V], dz[V], dz2[V];
    for (int k = 0; k < V; k++) z[k] = 2.0f * slm_rng_normal(&r), tz[k] = 2.0f * slm_rng_normal(&r);
    const float Ts[5] = {1.0f, 2.0f, 4.0f, 0.5f, 3.0f}, As[5] = {0.5f, 1.0f, 0.3f, 0.8f, 0.0f};
    for (int c = 0; c < 5; c++) {
        int32_t y = c % V;
        double l = slm_distill_token_loss(z, tz, V, y, Ts[c], As[c], 0.25f, dz);
        assert_true(l > 0);
        memcpy(dz2, z, sizeof z); /* in place: dz == z */
        assert_float_equal(slm_distill_token_loss(dz2, tz, V, y, Ts[c], As[c], 0.25f, dz2), l, 1e-9);
        assert_memory_equal(dz, dz2, sizeof dz);
        for (int j = 0; j < V; j++) {
            float v = z[j], h = 1e-3f;
            z[j] = v + h;
            double lp = slm_distill_token_loss(z, tz, V, y, Ts[c], As[c], 1.0f, NULL);
            z[j] = v - h;
            double lm = slm_distill_token_loss(z, tz, V, y, Ts[c], As[c], 1.0f, NULL);
            z[j] = v;
            double fd = 0.25 * (lp - lm) / ((double)(v + h) - (double)(v - h));
            if (fabs(fd - dz[j]) > 1e-4 * (1 + fabs(fd)))
                fail_msg("T %g alpha %g dz[%d]: fd %.7g, gradient %.7g", Ts[c], As[c], j, fd, (double)dz[j]);
        }
    }
    /* alpha 0 is plain cross-entropy, gradient softmax - onehot, whatever the teacher */
    double m = -INFINITY, s = 0;
    for (int k = 0; k < V; k++) m = fmax(m, z[k]);
    for (int k = 0; k < V; k++) s += exp(z[k] - m);
    double ce = m + log(s) - z[3];
    assert_float_equal(slm_distill_token_loss(z, tz, V, 3, 2.0f, 0.0f, 1.0f, dz), ce, 1e-9);
    for (int k = 0; k < V; k++) assert_float_equal(dz[k], exp(z[k] - m) / s - (k == 3), 1e-6);
    /* alpha 1 with the student's logits equal to the teacher's: no loss, no gradient, at any T */
    for (int c = 0; c < 3; c++) {
        double l = slm_distill_token_loss(z, z, V, 5, Ts[c], 1.0f, 1.0f, dz);
        assert_true(fabs(l) < 1e-12);
        for (int k = 0; k < V; k++) assert_true(fabsf(dz[k]) < 1e-7f);
    }
    /* the logits' scale (a real vocabulary's) does not overflow */
    float big[300], tbig[300], dbig[300];
    for (int k = 0; k < 300; k++) big[k] = 80.0f * slm_rng_normal(&r), tbig[k] = 80.0f * slm_rng_normal(&r);
    double lb = slm_distill_token_loss(big, tbig, 300, 7, 2.0f, 0.5f, 1.0f, dbig);
    assert_true(isfinite(lb) && lb > 0);
    for (int k = 0; k < 300; k++) assert_true(isfinite(dbig[k]));
}

/* A byte-level tokenizer with no merges (vocab 260), or merges learnt from text (vocab 270). */
static slm_tokenizer *small_tokenizer(const char *text, int vocab) {
    slm_tokenizer_train_opts o = {.vocab_size = vocab};
    char buf[4000];
    size_t n = strlen(text), k = 0;
    while (k + n + 1 < sizeof buf) memcpy(buf + k, text, n), buf[k + n] = ' ', k += n + 1;
    slm_tokenizer *t = NULL;
    TU_OK(slm_tokenizer_train(buf, k, &o, &t, tu_err()));
    return t;
}

/* Reversal of three letters from "abcdef" (every 9th word held out), tokenized with tok. */
static void reversal_data(const char *name, const slm_tokenizer *tok, slm_sft_data *d) {
    const char *dir = tu_write_reversal_task(name);
    TU_OK(slm_sft_data_load(dir, d, tu_err()));
    slm_sft_format f = {.family = SLM_CHAT_UNKNOWN, .max_len = 16};
    TU_OK(slm_sft_data_tokenize(d, tok, &f, tu_err()));
}

static slm_model *lm(int n_vocab, int dim, int layers, uint64_t seed) {
    slm_model_config cfg = {.n_vocab = n_vocab, .dim = dim, .n_layers = layers, .n_heads = 4, .n_kv_heads = 4,
                            .hidden_dim = 3 * dim, .ctx_len = 16, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                            .tied_output = 1};
    slm_model *m = slm_model_new(&cfg, tu_err());
    assert_non_null(m);
    slm_model_init_random(m, seed);
    return m;
}

static slm_sft_opts sft_opts(int steps) {
    slm_sft_opts o;
    slm_sft_opts_default(&o);
    o.steps = steps;
    o.batch = 16;
    o.max_len = 16;
    o.lr = 3e-3f;
    o.lr_min = 3e-4f;
    o.warmup = 10;
    o.eval_every = 0;
    return o;
}

/* The token lists must agree: another merge or another size is refused naming it. */
static void test_vocab_mismatch_refused(void **state) {
    (void)state;
    slm_tokenizer *bytes = small_tokenizer("abc", 260), *m1 = small_tokenizer("abcd", 270),
                  *m2 = small_tokenizer("wxyz", 270);
    slm_err *e = tu_err();
    TU_OK(slm_distill_check_vocab(m1, m1, e));
    assert_int_equal(slm_distill_check_vocab(m1, m2, e), SLM_ERR_ARG);
    if (!strstr(e->msg, "token 260 is '") || !strstr(e->msg, "in the teacher"))
        fail_msg("the error does not name the first difference: %s", e->msg);
    assert_int_equal(slm_distill_check_vocab(m1, bytes, e), SLM_ERR_ARG);
    char sizes[64];
    snprintf(sizes, sizeof sizes, "has %d tokens, the student 260", slm_tokenizer_n_vocab(m1));
    assert_true(slm_tokenizer_n_vocab(m1) > 260);
    if (!strstr(e->msg, sizes)) fail_msg("the error does not give both sizes: %s", e->msg);
    /* through the trainer: a teacher with the other tokenizer, and one with another vocabulary size */
    slm_sft_data d;
    reversal_data("kd-vocab", m1, &d);
    slm_model *s = lm(270, 32, 1, 1), *t2 = lm(270, 32, 1, 2), *t3 = lm(280, 32, 1, 3);
    slm_sft_opts o = sft_opts(1);
    slm_sft *t = slm_sft_new(s, m1, &d, &o, NULL, e);
    assert_non_null(t);
    assert_int_equal(slm_sft_set_teacher(t, t2, m2, 2.0f, 0.5f, e), SLM_ERR_ARG);
    assert_non_null(strstr(e->msg, "token 260"));
    assert_int_equal(slm_sft_set_teacher(t, t3, m1, 2.0f, 0.5f, e), SLM_ERR_ARG);
    assert_non_null(strstr(e->msg, "280"));
    assert_int_equal(slm_sft_set_teacher(t, t2, m1, 2.0f, 1.5f, e), SLM_ERR_ARG);
    double kl;
    assert_int_equal(slm_sft_evaluate_teacher(t, &d.val, NULL, &kl, e), SLM_ERR_ARG); /* none set */
    TU_OK(slm_sft_set_teacher(t, t2, m1, 2.0f, 0.5f, e));
    slm_sft_free(t);
    slm_model_free(s);
    slm_model_free(t2);
    slm_model_free(t3);
    slm_sft_data_free(&d);
    slm_tokenizer_free(bytes);
    slm_tokenizer_free(m1);
    slm_tokenizer_free(m2);
}

/* A teacher that is the student itself (saved, then read back with its weights mapped): alpha 1
 * leaves no loss and no gradient; alpha 0 gives plain fine-tuning's gradient. */
static void test_teacher_plumbing(void **state) {
    (void)state;
    slm_tokenizer *tok = small_tokenizer("abc", 260);
    slm_sft_data d;
    reversal_data("kd-plumb", tok, &d);
    slm_model *m = lm(260, 32, 2, 5);
    slm_err *e = tu_err();
    const char *path = tu_tmp_path("kd-self.gguf");
    slm_gguf_writer *w = slm_gguf_writer_new();
    TU_OK(slm_model_save(m, w, e));
    TU_OK(slm_tokenizer_save(tok, w, e));
    TU_OK(slm_gguf_writer_write(w, path, e));
    slm_gguf_writer_free(w);
    slm_gguf *g = slm_gguf_open(path, e);
    assert_non_null(g);
    slm_model *tm = slm_model_load_mapped(g, e);
    assert_non_null(tm);
    assert_non_null(tm->mapped);
    slm_sft_opts o = sft_opts(1);
    o.batch = 4;
    slm_sft *plain = slm_sft_new(m, tok, &d, &o, NULL, e), *t = slm_sft_new(m, tok, &d, &o, NULL, e);
    assert_non_null(plain);
    assert_non_null(t);
    size_t np = m->n_params;
    float *g0 = calloc(np, sizeof(float)), *g1 = calloc(np, sizeof(float));
    float l0, l1;
    int c0, c1;
    TU_OK(slm_sft_grad(plain, d.train.ex, 4, 1.0f, g0, &l0, &c0, e));
    double gmax = 0;
    for (size_t i = 0; i < np; i++) gmax = fmax(gmax, fabs(g0[i]));
    assert_true(gmax > 1e-3);
    TU_OK(slm_sft_set_teacher(t, tm, tok, 2.0f, 1.0f, e));
    TU_OK(slm_sft_grad(t, d.train.ex, 4, 1.0f, g1, &l1, &c1, e));
    assert_int_equal(c1, c0);
    assert_true(fabsf(l1) < 1e-5f);
    for (size_t i = 0; i < np; i++)
        if (fabsf(g1[i]) > 1e-5 * gmax) fail_msg("alpha 1, teacher = student: gradient %zu is %g", i, (double)g1[i]);
    double t_loss, kl, s_loss;
    TU_OK(slm_sft_evaluate_teacher(t, &d.val, &t_loss, &kl, e));
    TU_OK(slm_sft_evaluate(t, &d.val, &s_loss, e));
    assert_true(fabs(kl) < 1e-5);
    assert_float_equal(t_loss, s_loss, 1e-4);
    memset(g1, 0, np * sizeof(float));
    TU_OK(slm_sft_set_teacher(t, tm, tok, 2.0f, 0.0f, e));
    TU_OK(slm_sft_grad(t, d.train.ex, 4, 1.0f, g1, &l1, &c1, e));
    assert_float_equal(l1, l0, 1e-5);
    assert_true(tu_max_excess(g1, g0, np, 1e-4) < 1e-6 * gmax);
    free(g0);
    free(g1);
    slm_sft_free(plain);
    slm_sft_free(t);
    slm_model_free(tm);
    slm_gguf_close(g);
    slm_model_free(m);
    slm_sft_data_free(&d);
    slm_tokenizer_free(tok);
}

/* A teacher trained briefly on the reversal task; a smaller student distilled from it at
 * alpha 1 (no true targets at all) comes close to its next-token distributions. */
static void test_student_approaches_teacher(void **state) {
    (void)state;
    slm_err *e = tu_err();
    slm_pool *pool = slm_pool_new(2, e);
    assert_non_null(pool);
    slm_tokenizer *tok = small_tokenizer("abc", 260);
    slm_sft_data d;
    reversal_data("kd-rev", tok, &d);
    slm_model *tm = lm(260, 64, 2, 7);
    slm_sft_opts o = sft_opts(120);
    slm_sft *tt = slm_sft_new(tm, tok, &d, &o, pool, e);
    assert_non_null(tt);
    TU_OK(slm_sft_run(tt, e));
    float teacher_val = slm_sft_val_loss(tt);
    slm_sft_free(tt);

    slm_model *sm = lm(260, 32, 1, 9);
    slm_sft *st = slm_sft_new(sm, tok, &d, &o, pool, e);
    assert_non_null(st);
    TU_OK(slm_sft_set_teacher(st, tm, tok, 1.0f, 1.0f, e));
    double kl0, kl1, t_loss, s0;
    TU_OK(slm_sft_evaluate_teacher(st, &d.val, &t_loss, &kl0, e));
    TU_OK(slm_sft_evaluate(st, &d.val, &s0, e));
    assert_float_equal(t_loss, teacher_val, 1e-3);
    TU_OK(slm_sft_run(st, e));
    TU_OK(slm_sft_evaluate_teacher(st, &d.val, NULL, &kl1, e));
    float s1 = slm_sft_val_loss(st);
    if (getenv("SLM_TEST_VERBOSE"))
        print_message("teacher val %.4f; student val %.4f -> %.4f; KL %.4f -> %.4f\n", teacher_val, s0, s1, kl0, kl1);
    assert_true(teacher_val < 1.5);      /* the teacher learnt something */
    assert_true(kl1 < 0.25 * kl0);       /* the student's distributions approach the teacher's */
    assert_true(s1 < 0.5 * s0);          /* and with them the task, without its targets */
    /* the file records the distillation */
    const char *out = tu_tmp_path("kd-gen-student.gguf");
    slm_sft_save_info info = {.separator = ""};
    TU_OK(slm_sft_save(st, &info, out, e));
    slm_gguf *g = slm_gguf_open(out, e);
    assert_non_null(g);
    float T;
    TU_OK(slm_gguf_get_f32(g, "slm.distill.temperature", &T, e));
    assert_float_equal(T, 1.0f, 0);
    slm_gguf_close(g);
    slm_sft_free(st);
    slm_model_free(sm);
    slm_model_free(tm);
    slm_sft_data_free(&d);
    slm_tokenizer_free(tok);
    slm_pool_free(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distill_loss_fd),
        cmocka_unit_test(test_student_matches_teacher),
        cmocka_unit_test(test_token_loss_fd),
        cmocka_unit_test(test_vocab_mismatch_refused),
        cmocka_unit_test(test_teacher_plumbing),
        cmocka_unit_test(test_student_approaches_teacher),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
