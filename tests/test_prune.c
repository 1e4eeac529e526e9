/* test_prune.c: magnitude pruning — exact sparsity (global and per-layer) with the smallest
 * magnitudes gone, the 2:4 pattern in every group, sparsity 0 changing nothing, files pruned with
 * every other tensor and key unchanged (quantized targets refused), and a recovery fine-tune on a
 * synthetic classify task that keeps every mask. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/prune.h"
#include "slm.h"
#include "task/classify_head.h"
#include "task/classify_model.h"
#include "task/finetune.h"
#include "task/task_data.h"
#include "util/synth_task.h"
#include "util/testutil.h"

static slm_model_config small_cfg(void) {
    return (slm_model_config){.n_vocab = 40, .dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                              .hidden_dim = 48, .ctx_len = 16, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                              .tied_output = 1};
}

static slm_model *random_model(uint64_t seed) {
    slm_model_config cfg = small_cfg();
    slm_model *m = slm_model_new(&cfg, tu_err());
    assert_non_null(m);
    slm_model_init_random(m, seed);
    return m;
}

/* Zeros and the magnitude split of the targets: largest |pruned| and smallest |kept|. */
static void target_stats(const slm_model *m, int only, size_t *n, size_t *zeros, float *max_pruned_ref,
                         const float *orig, float *min_kept) {
    int nt = slm_model_n_tensors(&m->cfg), k = 0;
    *n = *zeros = 0;
    *max_pruned_ref = 0;
    *min_kept = INFINITY;
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(&m->cfg, i, &info);
        if (!slm_prune_is_target(info.name)) continue;
        if (only >= 0 && k++ != only) continue;
        size_t c = info.ne[0] * info.ne[1];
        for (size_t j = 0; j < c; j++) {
            float v = m->params[info.offset + j];
            (*n)++;
            if (v == 0.0f) {
                (*zeros)++;
                *max_pruned_ref = fmaxf(*max_pruned_ref, fabsf(orig[info.offset + j]));
            } else {
                *min_kept = fminf(*min_kept, fabsf(v));
            }
        }
    }
}

static void test_unstructured_exact(void **state) {
    (void)state;
    for (int per_layer = 0; per_layer < 2; per_layer++) {
        slm_model *m = random_model(7);
        float *orig = malloc(sizeof(float) * m->n_params);
        memcpy(orig, m->params, sizeof(float) * m->n_params);
        uint8_t *mask = malloc(m->n_params);
        slm_prune_opts o = {.sparsity = 0.37f, .per_layer = per_layer};
        slm_prune_report rep;
        TU_OK(slm_prune_model(m, &o, mask, &rep, tu_err()));
        assert_int_equal(rep.n_tensors, 14);
        size_t n, z;
        float maxp, mink;
        target_stats(m, -1, &n, &z, &maxp, orig, &mink);
        assert_int_equal(rep.n, n);
        assert_int_equal(rep.zeros, z);
        if (!per_layer) {
            assert_int_equal(z, (size_t)llround(0.37 * (double)n));
            assert_true(maxp <= mink); /* one threshold: nothing kept is smaller than anything pruned */
        } else {
            for (int t = 0; t < 14; t++) {
                target_stats(m, t, &n, &z, &maxp, orig, &mink);
                assert_int_equal(z, (size_t)llround(0.37 * (double)n));
                assert_int_equal(rep.tensors[t].zeros, z);
                assert_true(maxp <= mink);
            }
        }
        /* the mask is the pattern; embeddings and norms untouched */
        for (size_t i = 0; i < m->n_params; i++) {
            assert_int_equal(mask[i], m->params[i] != 0.0f || orig[i] == 0.0f);
            if (mask[i]) assert_true(m->params[i] == orig[i]);
        }
        assert_memory_equal(m->params, orig, sizeof(float) * m->cfg.n_vocab * m->cfg.dim);
        slm_prune_report_free(&rep);
        free(mask);
        free(orig);
        slm_model_free(m);
    }
}

static void test_two_four_pattern(void **state) {
    (void)state;
    slm_model *m = random_model(9);
    float *orig = malloc(sizeof(float) * m->n_params);
    memcpy(orig, m->params, sizeof(float) * m->n_params);
    slm_prune_opts o = {.nm_n = 2, .nm_m = 4};
    slm_prune_report rep;
    TU_OK(slm_prune_model(m, &o, NULL, &rep, tu_err()));
    assert_int_equal(rep.zeros * 2, rep.n);
    int nt = slm_model_n_tensors(&m->cfg), groups = 0;
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(&m->cfg, i, &info);
        if (!slm_prune_is_target(info.name)) continue;
        size_t c = info.ne[0] * info.ne[1];
        for (size_t g = 0; g < c; g += 4, groups++) {
            const float *w = m->params + info.offset + g, *w0 = orig + info.offset + g;
            int zeros = 0;
            float min_kept = INFINITY, max_pruned = 0;
            for (int j = 0; j < 4; j++) {
                if (w[j] == 0.0f) zeros++, max_pruned = fmaxf(max_pruned, fabsf(w0[j]));
                else min_kept = fminf(min_kept, fabsf(w[j])), assert_true(w[j] == w0[j]);
            }
            assert_int_equal(zeros, 2);
            assert_true(max_pruned <= min_kept);
        }
    }
    assert_true(groups > 1000);
    slm_prune_report_free(&rep);
    /* rows that are not whole groups are refused, naming the tensor */
    float w[6] = {1, 2, 3, 4, 5, 6};
    slm_prune_matrix mat = {"odd", w, 2, 3};
    assert_int_equal(slm_prune_matrices(&mat, 1, &o, NULL, tu_err()), SLM_ERR_ARG);
    assert_non_null(strstr(tu_err_last(), "odd"));
    free(orig);
    slm_model_free(m);
}

static void test_zero_sparsity_changes_nothing(void **state) {
    (void)state;
    slm_model *m = random_model(11);
    float *orig = malloc(sizeof(float) * m->n_params);
    memcpy(orig, m->params, sizeof(float) * m->n_params);
    for (int pl = 0; pl < 2; pl++) {
        slm_prune_opts o = {.sparsity = 0.0f, .per_layer = pl};
        TU_OK(slm_prune_model(m, &o, NULL, NULL, tu_err()));
        assert_memory_equal(m->params, orig, sizeof(float) * m->n_params);
    }
    slm_prune_opts bad = {.sparsity = 1.0f};
    assert_int_equal(slm_prune_model(m, &bad, NULL, NULL, tu_err()), SLM_ERR_ARG);
    free(orig);
    slm_model_free(m);
}

static void test_prune_file(void **state) {
    (void)state;
    slm_model *m = random_model(13);
    const char *in = tu_tmp_path("p-in.gguf"), *out = tu_tmp_path("p-out.gguf");
    slm_gguf_writer *w = slm_gguf_writer_new();
    TU_OK(slm_model_save(m, w, tu_err()));
    TU_OK(slm_gguf_set_str(w, "slm.extra", "kept"));
    TU_OK(slm_gguf_writer_write(w, in, tu_err()));
    slm_gguf_writer_free(w);
    slm_prune_opts o = {.sparsity = 0.5f};
    slm_prune_report rep;
    TU_OK(slm_prune_file(in, out, &o, &rep, tu_err()));
    assert_int_equal(rep.zeros, (uint64_t)llround(0.5 * (double)rep.n));
    slm_gguf *gi = slm_gguf_open(in, tu_err()), *go = slm_gguf_open(out, tu_err());
    assert_non_null(gi);
    assert_non_null(go);
    assert_non_null(slm_gguf_find_kv(go, "slm.extra"));
    assert_int_equal(slm_gguf_n_tensors(gi), slm_gguf_n_tensors(go));
    uint64_t zeros = 0;
    for (int64_t i = 0; i < slm_gguf_n_tensors(gi); i++) {
        const slm_gguf_tensor *a = slm_gguf_tensor_at(gi, i);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)a->name.len, a->name.ptr);
        const slm_gguf_tensor *b = slm_gguf_find_tensor(go, name);
        assert_non_null(b);
        assert_int_equal(a->nbytes, b->nbytes);
        if (!slm_prune_is_target(name)) {
            assert_memory_equal(a->data, b->data, a->nbytes);
        } else {
            const float *x = b->data;
            for (uint64_t j = 0; j < slm_gguf_tensor_nelements(b); j++) zeros += x[j] == 0.0f;
        }
    }
    assert_int_equal(zeros, rep.zeros);
    /* the pruned file loads as a model */
    slm_model *back = slm_model_load(go, tu_err());
    assert_non_null(back);
    slm_model_free(back);
    slm_gguf_close(gi);
    slm_gguf_close(go);
    slm_prune_report_free(&rep);
    /* a quantized target is refused */
    const char *q = tu_tmp_path("p-q8.gguf");
    slm_quantize_opts qo = {.type = SLM_GGML_Q8_0};
    TU_OK(slm_quantize_file(in, q, &qo, NULL, tu_err()));
    assert_int_equal(slm_prune_file(q, tu_tmp_path("p-q8-out.gguf"), &o, NULL, tu_err()), SLM_ERR_UNSUPPORTED);
    slm_model_free(m);
}

/* ---- recovery on a synthetic task ---- */

static void test_recovery_keeps_masks(void **state) {
    (void)state;
    slm_task_data d;
    slm_tokenizer *tok;
    tu_synth_task("prune-synth", 240, 60, 12, &d, &tok);
    slm_model_config cfg = small_cfg();
    cfg.n_vocab = slm_tokenizer_n_vocab(tok);
    slm_model *m = slm_model_new(&cfg, tu_err());
    assert_non_null(m);
    slm_model_init_random(m, 5);
    slm_finetune_opts o;
    slm_finetune_opts_default(&o);
    o.steps = 60;
    o.batch = 16;
    o.max_len = 12;
    o.lr = 3e-3f;
    o.pooling = SLM_POOL_MEAN;
    o.eval_every = 60;
    slm_finetune *t = slm_finetune_new(m, tok, &d, &o, NULL, tu_err());
    assert_non_null(t);
    TU_OK(slm_finetune_run(t, tu_err()));
    const char *model = tu_tmp_path("prune-cls.gguf");
    TU_OK(slm_finetune_save(t, model, tu_err()));
    double l0, a0;
    TU_OK(slm_finetune_evaluate(t, &d.val, 0, &l0, &a0, tu_err()));
    slm_finetune_free(t);
    slm_model_free(m);

    /* a new trainer from the file's body and head, as slm prune --recover-data builds it */
    slm_gguf *g = slm_gguf_open(model, tu_err());
    assert_non_null(g);
    slm_model *base = slm_model_load(g, tu_err());
    assert_non_null(base);
    m = slm_finetune_body_from(base, tu_err());
    slm_model_free(base);
    o.steps = 20;
    o.eval_every = 20;
    o.pooling = SLM_POOL_AUTO; /* the file's pooling is taken */
    t = slm_finetune_new(m, tok, &d, &o, NULL, tu_err());
    assert_non_null(t);
    TU_OK(slm_finetune_load_head(t, g, tu_err()));
    assert_int_equal(slm_finetune_pooling(t), SLM_POOL_MEAN);
    double l1, a1;
    TU_OK(slm_finetune_evaluate(t, &d.val, 0, &l1, &a1, tu_err()));
    assert_float_equal(a1, a0, 1e-9); /* the same model */
    uint8_t *mask = malloc(m->n_params);
    slm_prune_opts po = {.nm_n = 2, .nm_m = 4};
    TU_OK(slm_prune_model(m, &po, mask, NULL, tu_err()));
    float *pruned = malloc(sizeof(float) * m->n_params);
    memcpy(pruned, m->params, sizeof(float) * m->n_params);
    slm_finetune_set_mask(t, mask);
    TU_OK(slm_finetune_run(t, tu_err()));
    size_t masked = 0, moved = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        if (!mask[i]) masked++, assert_true(m->params[i] == 0.0f);
        else moved += m->params[i] != pruned[i];
    }
    assert_true(masked > m->n_params / 4);
    assert_true(moved > 0); /* recovery did train */
    double l2, a2;
    TU_OK(slm_finetune_evaluate(t, &d.val, 0, &l2, &a2, tu_err()));
    if (getenv("SLM_TEST_VERBOSE")) print_message("val acc %.3f dense, %.3f after 2:4 + recovery\n", a0, a2);
    free(mask);
    free(pruned);
    slm_finetune_free(t);
    slm_model_free(m);
    slm_gguf_close(g);
    slm_tokenizer_free(tok);
    slm_task_data_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unstructured_exact),
        cmocka_unit_test(test_two_four_pattern),
        cmocka_unit_test(test_zero_sparsity_changes_nothing),
        cmocka_unit_test(test_prune_file),
        cmocka_unit_test(test_recovery_keeps_masks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
