/* test_perplexity.c: perplexity, bits per byte and KL against a reference, on models whose answers
 * are known: an all-zero model predicts the uniform distribution (perplexity = vocabulary size),
 * and a model compared with itself has KL 0 and full top-1 agreement. */
#include <math.h>
#include <string.h>

#include "slm.h"
#include "util/testutil.h"

static slm_model *model(int zero, uint64_t seed) {
    slm_model_config cfg = {.n_vocab = 16, .dim = 16, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1,
                            .hidden_dim = 24, .ctx_len = 16, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                            .tied_output = 0};
    slm_model *m = slm_model_new(&cfg, tu_err());
    assert_non_null(m);
    if (!zero) slm_model_init_random(m, seed);
    return m;
}

static void test_uniform_model_has_perplexity_of_vocab(void **state) {
    (void)state;
    slm_model *m = model(1, 0);
    int32_t tokens[24];
    uint32_t nbytes[16];
    for (int i = 0; i < 24; i++) tokens[i] = (i * 7) % 16;
    for (int i = 0; i < 16; i++) nbytes[i] = 2;
    slm_ppl_result r;
    TU_OK(slm_perplexity(m, NULL, tokens, 24, 8, 1, nbytes, NULL, &r, tu_err()));
    assert_int_equal(r.n_windows, 3);
    assert_int_equal(r.n_scored, 9); /* positions 4..6 of each window predict tokens 5..7 */
    assert_float_equal(r.ppl, 16.0, 1e-4);
    assert_float_equal(r.nll, log(16.0), 1e-6);
    assert_float_equal(r.bits_per_byte, 2.0, 1e-5); /* 4 bits per token, 2 bytes per token */
    assert_false(r.has_ref);
    slm_model_free(m);
}

static void test_kl_against_self_and_other(void **state) {
    (void)state;
    slm_model *a = model(0, 3), *b = model(0, 4);
    for (size_t i = 0; i < b->n_params; i++) b->params[i] *= 10.0f; /* confident, different */
    int32_t tokens[32];
    for (int i = 0; i < 32; i++) tokens[i] = (i * 5 + 3) % 16;
    slm_ppl_result self, other;
    TU_OK(slm_perplexity(a, a, tokens, 32, 16, -1, NULL, NULL, &self, tu_err()));
    assert_true(self.has_ref);
    assert_float_equal(self.kl, 0.0, 1e-6);
    assert_float_equal(self.top1, 1.0, 0);
    assert_float_equal(self.ref_ppl, self.ppl, 1e-9);
    TU_OK(slm_perplexity(a, b, tokens, 32, 16, -1, NULL, NULL, &other, tu_err()));
    assert_true(other.kl > 1e-3);
    assert_true(other.top1 < 1.0);
    assert_float_equal(other.ppl, self.ppl, 1e-9); /* the model's own figure does not change */
    assert_float_equal(self.bits_per_byte, 0.0, 0);  /* no byte counts given */
    slm_model_free(a);
    slm_model_free(b);
}

static void test_bad_windows_are_errors(void **state) {
    (void)state;
    slm_model *m = model(1, 0);
    int32_t tokens[8] = {0};
    slm_ppl_result r;
    slm_err e;
    assert_int_equal(slm_perplexity(m, NULL, tokens, 8, 12, -1, NULL, NULL, &r, &e), SLM_ERR_RANGE);
    assert_non_null(strstr(e.msg, "8 tokens"));
    assert_int_equal(slm_perplexity(m, NULL, tokens, 8, 7, -1, NULL, NULL, &r, &e), SLM_ERR_ARG);
    assert_int_equal(slm_perplexity(m, NULL, tokens, 8, 32, -1, NULL, NULL, &r, &e), SLM_ERR_ARG);
    slm_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform_model_has_perplexity_of_vocab),
        cmocka_unit_test(test_kl_against_self_and_other),
        cmocka_unit_test(test_bad_windows_are_errors),
    };
    return cmocka_run_group_tests_name("perplexity", tests, NULL, NULL);
}
