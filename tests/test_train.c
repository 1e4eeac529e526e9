/* test_train.c: AdamW, the schedule, clipping, training windows, and the trainer — the loss
 * falls, a resumed run reproduces the uninterrupted one exactly, early stopping hands back the
 * best parameters, checkpoints round-trip. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "train/trainer.h"
#include "util/testutil.h"

static void test_adamw_matches_hand_computation(void **state) {
    (void)state;
    slm_adamw_params p = {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.5f};
    float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, -0.25f}, m[2] = {0}, v[2] = {0};
    slm_adamw_update(w, g, m, v, 2, 0.1f, 1, 1, &p);
    /* step 1: mhat = g, vhat = g^2, update = lr * (sign(g) + wd * w) */
    assert_float_equal(w[0], 1.0f - 0.1f * (1.0f + 0.5f * 1.0f), 1e-6);
    assert_float_equal(w[1], -2.0f - 0.1f * (-1.0f + 0.5f * -2.0f), 1e-6);
    assert_float_equal(m[0], 0.05f, 1e-7);
    assert_float_equal(v[1], 0.01f * 0.0625f, 1e-9);
    /* step 2 without decay, by hand */
    float w2[1] = {1.0f}, m2[1] = {0}, v2[1] = {0};
    float ga = 0.5f, gb = 1.5f;
    slm_adamw_update(w2, &ga, m2, v2, 1, 0.1f, 1, 0, &p);
    slm_adamw_update(w2, &gb, m2, v2, 1, 0.1f, 2, 0, &p);
    double mm = 0.9 * 0.05 + 0.1 * 1.5, vv = 0.99 * (0.01 * 0.25) + 0.01 * 2.25;
    double mh = mm / (1 - 0.81), vh = vv / (1 - 0.9801);
    double expect = 1.0 - 0.1 - 0.1 * mh / (sqrt(vh) + 1e-8);
    assert_float_equal(w2[0], (float)expect, 1e-5);
}

static void test_schedule_warmup_then_cosine(void **state) {
    (void)state;
    assert_float_equal(slm_lr_schedule(0, 10, 110, 1.0f, 0.1f), 0.1f, 1e-6);
    assert_float_equal(slm_lr_schedule(9, 10, 110, 1.0f, 0.1f), 1.0f, 1e-6);
    assert_float_equal(slm_lr_schedule(10, 10, 110, 1.0f, 0.1f), 1.0f, 1e-6);
    assert_float_equal(slm_lr_schedule(60, 10, 110, 1.0f, 0.1f), 0.55f, 1e-5); /* halfway */
    assert_float_equal(slm_lr_schedule(110, 10, 110, 1.0f, 0.1f), 0.1f, 1e-6);
    assert_float_equal(slm_lr_schedule(500, 10, 110, 1.0f, 0.1f), 0.1f, 1e-6);
    for (int s = 11; s < 110; s++)
        assert_true(slm_lr_schedule(s, 10, 110, 1.0f, 0.1f) <= slm_lr_schedule(s - 1, 10, 110, 1.0f, 0.1f));
}

static void test_clip_scales_to_max_norm(void **state) {
    (void)state;
    float g[2] = {3.0f, 4.0f};
    assert_float_equal(slm_grad_clip(g, 2, 1.0), 5.0, 1e-9);
    assert_float_equal(slm_grad_norm(g, 2), 1.0, 1e-5);
    assert_float_equal(g[0], 0.6f, 1e-5);
    float h[2] = {0.3f, 0.4f};
    slm_grad_clip(h, 2, 1.0);
    assert_float_equal(h[0], 0.3f, 0); /* under the limit: untouched */
}

/* A small shared corpus and tokenizer for the trainer tests. */
static char *corpus;
static size_t corpus_len;
static slm_tokenizer *tok;

static int setup_corpus(void **state) {
    (void)state;
    char *all;
    size_t len;
    if (slm_file_read_all("data/tinyshakespeare/input.txt", &all, &len, tu_err()) != SLM_OK) return -1;
    corpus_len = 40000;
    corpus = malloc(corpus_len + 1);
    memcpy(corpus, all, corpus_len);
    corpus[corpus_len] = 0;
    free(all);
    slm_tokenizer_train_opts o = {.vocab_size = 300};
    if (slm_tokenizer_train(corpus, corpus_len, &o, &tok, tu_err()) != SLM_OK) return -1;
    return 0;
}

static int teardown_corpus(void **state) {
    (void)state;
    free(corpus);
    slm_tokenizer_free(tok);
    return 0;
}

static void test_token_data_split_and_windows(void **state) {
    (void)state;
    slm_token_data d;
    TU_OK(slm_token_data_build(tok, corpus, corpus_len, 0.1, &d, tu_err()));
    assert_int_equal(d.train_bytes + d.val_bytes, corpus_len);
    assert_true(d.val_bytes > corpus_len / 20 && d.val_bytes < corpus_len / 5);
    assert_int_equal(corpus[d.train_bytes - 1], '\n'); /* the cut is at a line start */
    /* the validation tokens decode to exactly the validation bytes */
    char *text;
    size_t tl;
    TU_OK(slm_tokenizer_decode(tok, d.val, d.n_val, &text, &tl, tu_err()));
    assert_int_equal(tl, d.val_bytes);
    assert_memory_equal(text, corpus + d.train_bytes, tl);
    free(text);
    /* windows: BOS first, inputs are targets shifted by one, same step = same windows */
    enum { B = 3, T = 16 };
    int32_t in[B * T], tg[B * T], in2[B * T], tg2[B * T];
    slm_token_data_train_batch(&d, 7, 5, 0, B, T, in, tg);
    slm_token_data_train_batch(&d, 7, 5, 0, B, T, in2, tg2);
    assert_memory_equal(in, in2, sizeof in);
    for (int b = 0; b < B; b++) {
        assert_int_equal(in[b * T], d.bos);
        for (int t = 1; t < T; t++) assert_int_equal(in[b * T + t], tg[b * T + t - 1]);
    }
    slm_token_data_train_batch(&d, 7, 6, 0, B, T, in2, tg2);
    assert_memory_not_equal(tg, tg2, sizeof tg);
    /* every validation token is a target of exactly one window */
    size_t nw = slm_token_data_val_windows(&d, T), counted = 0;
    for (size_t w = 0; w < nw; w++) counted += (size_t)slm_token_data_val_window(&d, w, T, in, tg);
    assert_int_equal(counted, d.n_val);
    slm_token_data_free(&d);
}

static slm_model *tiny_model(uint64_t seed) {
    slm_model_config cfg = {.n_vocab = slm_tokenizer_n_vocab(tok), .dim = 32, .n_layers = 2, .n_heads = 4,
                            .n_kv_heads = 2, .hidden_dim = 64, .ctx_len = 32, .rope_theta = 10000.0f,
                            .norm_eps = 1e-5f, .tied_output = 1};
    slm_model *m = slm_model_new(&cfg, tu_err());
    assert_non_null(m);
    slm_model_init_random(m, seed);
    return m;
}

static slm_train_opts tiny_opts(int steps) {
    slm_train_opts o;
    slm_train_opts_default(&o);
    o.steps = steps;
    o.batch = 4;
    o.seq_len = 32;
    o.accum = 2;
    o.lr = 3e-3f;
    o.lr_min = 3e-4f;
    o.warmup = 3;
    o.eval_every = 5;
    o.eval_windows = 4;
    o.seed = 3;
    return o;
}

/* Reads the "loss" of each line of a JSON-lines log. */
static int read_losses(const char *path, float *loss, int max) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"loss\":");
        assert_non_null(p);
        loss[n++] = strtof(p + 7, NULL);
    }
    fclose(f);
    return n;
}

static void test_training_lowers_loss(void **state) {
    (void)state;
    slm_token_data d;
    TU_OK(slm_token_data_build(tok, corpus, corpus_len, 0.1, &d, tu_err()));
    slm_model *m = tiny_model(1);
    double before, bpb_before, after, bpb_after;
    TU_OK(slm_evaluate_text(m, tok, &d, 4, 32, 0, NULL, &before, &bpb_before, tu_err()));
    assert_float_equal(before, log(slm_tokenizer_n_vocab(tok)), 0.3); /* near uniform at init */
    slm_train_opts o = tiny_opts(40);
    slm_trainer *t = slm_trainer_new(m, tok, &d, &o, NULL, tu_err());
    assert_non_null(t);
    TU_OK(slm_trainer_run(t, tu_err()));
    TU_OK(slm_evaluate_text(m, tok, &d, 4, 32, 0, NULL, &after, &bpb_after, tu_err()));
    assert_true(after < before - 1.0);
    assert_true(bpb_after < bpb_before);
    assert_int_equal(slm_trainer_step(t), 40);
    slm_trainer_free(t);
    slm_model_free(m);
    slm_token_data_free(&d);
}

static void test_resume_reproduces_uninterrupted_run(void **state) {
    (void)state;
    slm_token_data d;
    TU_OK(slm_token_data_build(tok, corpus, corpus_len, 0.1, &d, tu_err()));
    const char *log_full = tu_tmp_path("full.jsonl"), *log_split = tu_tmp_path("split.jsonl");
    const char *ckpt = tu_tmp_path("run.ckpt.gguf");
    slm_train_opts o = tiny_opts(12);

    slm_model *a = tiny_model(9);
    slm_trainer *t = slm_trainer_new(a, tok, &d, &o, NULL, tu_err());
    TU_OK(slm_trainer_set_log(t, log_full, tu_err()));
    TU_OK(slm_trainer_run(t, tu_err()));
    slm_trainer_free(t);

    /* the same run interrupted after step 7 (its checkpoint is all that survives) ... */
    slm_model *b = tiny_model(9);
    t = slm_trainer_new(b, tok, &d, &o, NULL, tu_err());
    TU_OK(slm_trainer_set_log(t, log_split, tu_err()));
    TU_OK(slm_trainer_run_for(t, 7, tu_err()));
    assert_int_equal(slm_trainer_step(t), 7);
    TU_OK(slm_trainer_save_checkpoint(t, ckpt, tu_err()));
    slm_trainer_free(t);
    slm_model_free(b);

    /* ... and resumed from the file into a fresh model with different initial weights */
    slm_gguf *g = slm_gguf_open(ckpt, tu_err());
    assert_non_null(g);
    slm_model *c = slm_model_load(g, tu_err());
    assert_non_null(c);
    slm_model_init_random(c, 12345);
    slm_train_opts other = tiny_opts(3); /* options come from the checkpoint, not from here */
    t = slm_trainer_new(c, tok, &d, &other, NULL, tu_err());
    TU_OK(slm_trainer_resume(t, g, tu_err()));
    assert_int_equal(slm_trainer_step(t), 7);
    TU_OK(slm_trainer_set_log(t, log_split, tu_err()));
    TU_OK(slm_trainer_run(t, tu_err()));
    assert_int_equal(slm_trainer_step(t), 12);
    slm_trainer_free(t);
    slm_gguf_close(g);

    float full[32], split[32];
    int nf = read_losses(log_full, full, 32), ns = read_losses(log_split, split, 32);
    assert_int_equal(nf, 12);
    assert_int_equal(ns, 12);
    for (int i = 0; i < 12; i++) assert_float_equal(full[i], split[i], 0.0f); /* bit for bit */
    assert_memory_equal(a->params, c->params, a->n_params * sizeof(float));
    slm_model_free(a);
    slm_model_free(c);
    slm_token_data_free(&d);
}

static void test_resume_rejects_other_data(void **state) {
    (void)state;
    slm_token_data d, other;
    TU_OK(slm_token_data_build(tok, corpus, corpus_len, 0.1, &d, tu_err()));
    TU_OK(slm_token_data_build(tok, corpus, corpus_len / 2, 0.1, &other, tu_err()));
    slm_train_opts o = tiny_opts(2);
    slm_model *m = tiny_model(2);
    slm_trainer *t = slm_trainer_new(m, tok, &d, &o, NULL, tu_err());
    TU_OK(slm_trainer_run(t, tu_err()));
    const char *ckpt = tu_tmp_path("other.ckpt.gguf");
    TU_OK(slm_trainer_save_checkpoint(t, ckpt, tu_err()));
    slm_trainer_free(t);
    slm_gguf *g = slm_gguf_open(ckpt, tu_err());
    assert_non_null(g);
    t = slm_trainer_new(m, tok, &other, &o, NULL, tu_err());
    slm_err e;
    assert_int_equal(slm_trainer_resume(t, g, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "data"));
    slm_trainer_free(t);
    slm_gguf_close(g);
    slm_model_free(m);
    slm_token_data_free(&d);
    slm_token_data_free(&other);
}

static void test_early_stopping_keeps_best(void **state) {
    (void)state;
    slm_token_data d;
    TU_OK(slm_token_data_build(tok, corpus, corpus_len, 0.1, &d, tu_err()));
    /* a learning rate far too high makes validation worse after the first evaluations */
    slm_train_opts o = tiny_opts(200);
    o.lr = 0.3f;
    o.lr_min = 0.3f;
    o.warmup = 0;
    o.grad_clip = 0;
    o.eval_every = 1;
    o.eval_windows = 0;
    o.patience = 2;
    slm_model *m = tiny_model(4);
    slm_trainer *t = slm_trainer_new(m, tok, &d, &o, NULL, tu_err());
    const char *log = tu_tmp_path("early.jsonl");
    TU_OK(slm_trainer_set_log(t, log, tu_err()));
    slm_err e;
    slm_status s = slm_trainer_run(t, &e);
    if (s == SLM_OK) {
        assert_true(slm_trainer_step(t) < 200); /* stopped early */
        /* the parameters handed back are the best validated ones */
        double loss, bpb;
        TU_OK(slm_evaluate_text(m, tok, &d, 4, 32, 0, NULL, &loss, &bpb, tu_err()));
        FILE *f = fopen(log, "r");
        char line[512];
        double best = INFINITY;
        while (fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "\"val_loss\":");
            if (p && strtod(p + 11, NULL) < best) best = strtod(p + 11, NULL);
        }
        fclose(f);
        assert_float_equal(loss, best, 1e-4);
    } else {
        assert_int_equal(s, SLM_ERR_RANGE); /* diverged to a non-finite loss: reported, not crashed */
    }
    slm_trainer_free(t);
    slm_model_free(m);
    slm_token_data_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_hand_computation),
        cmocka_unit_test(test_schedule_warmup_then_cosine),
        cmocka_unit_test(test_clip_scales_to_max_norm),
        cmocka_unit_test(test_token_data_split_and_windows),
        cmocka_unit_test(test_training_lowers_loss),
        cmocka_unit_test(test_resume_reproduces_uninterrupted_run),
        cmocka_unit_test(test_resume_rejects_other_data),
        cmocka_unit_test(test_early_stopping_keeps_best),
    };
    return cmocka_run_group_tests_name("train", tests, setup_corpus, teardown_corpus);
}
