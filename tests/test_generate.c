/* test_generate.c: the sampler (greedy, top-k, top-p, temperature, repetition penalty, seeds)
 * and the generation loop (streaming, stop strings, limits, context errors). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "generate/generate.h"
#include "slm.h"
#include "util/testutil.h"

static slm_sampler *make(float temp, int top_k, float top_p, float rep, uint64_t seed, int V) {
    slm_sampler_params p = {.temperature = temp, .top_k = top_k, .top_p = top_p, .repeat_penalty = rep,
                            .repeat_last_n = 8, .seed = seed};
    slm_sampler *s = slm_sampler_new(&p, V, tu_err());
    assert_non_null(s);
    return s;
}

static void test_greedy_picks_argmax_lowest_on_ties(void **state) {
    (void)state;
    float logits[5] = {0.1f, 2.0f, -1.0f, 2.0f, 1.9f};
    slm_sampler *s = make(0, 0, 1, 1, 1, 5);
    assert_int_equal(slm_sampler_sample(s, logits), 1);
    slm_sampler_free(s);
    s = make(0.7f, 1, 1, 1, 1, 5); /* top-k 1 is greedy at any temperature */
    for (int i = 0; i < 20; i++) assert_int_equal(slm_sampler_sample(s, logits), 1);
    slm_sampler_free(s);
}

static void test_temperature_sampling_follows_softmax(void **state) {
    (void)state;
    float logits[4] = {1.0f, 0.0f, -1.0f, 0.5f};
    const float T = 0.8f;
    slm_sampler *s = make(T, 0, 1, 1, 42, 4);
    int counts[4] = {0};
    const int N = 40000;
    for (int i = 0; i < N; i++) counts[slm_sampler_sample(s, logits)]++;
    double z = 0, p[4];
    for (int i = 0; i < 4; i++) z += exp(logits[i] / T);
    for (int i = 0; i < 4; i++) {
        p[i] = exp(logits[i] / T) / z;
        double sd = sqrt(N * p[i] * (1 - p[i]));
        assert_true(fabs(counts[i] - N * p[i]) < 5 * sd);
    }
    slm_sampler_free(s);
    /* the same seed draws the same sequence; another seed another one */
    slm_sampler *a = make(1, 0, 1, 1, 7, 4), *b = make(1, 0, 1, 1, 7, 4), *c = make(1, 0, 1, 1, 8, 4);
    int diff = 0;
    for (int i = 0; i < 200; i++) {
        int x = slm_sampler_sample(a, logits);
        assert_int_equal(x, slm_sampler_sample(b, logits));
        diff += x != slm_sampler_sample(c, logits);
    }
    assert_true(diff > 20);
    slm_sampler_free(a);
    slm_sampler_free(b);
    slm_sampler_free(c);
}

static void test_top_k_and_top_p_restrict_candidates(void **state) {
    (void)state;
    float logits[6] = {3.0f, 2.9f, 2.8f, 0.0f, -1.0f, -2.0f};
    slm_sampler *s = make(1.0f, 2, 1, 1, 3, 6);
    int seen[6] = {0};
    for (int i = 0; i < 2000; i++) seen[slm_sampler_sample(s, logits)]++;
    assert_true(seen[0] > 0 && seen[1] > 0);
    for (int i = 2; i < 6; i++) assert_int_equal(seen[i], 0);
    slm_sampler_free(s);
    /* probabilities at T=1: ~0.36, 0.33, 0.30, 0.015...: top_p 0.6 keeps exactly the first two */
    s = make(1.0f, 0, 0.6f, 1, 3, 6);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 2000; i++) seen[slm_sampler_sample(s, logits)]++;
    assert_true(seen[0] > 0 && seen[1] > 0);
    for (int i = 2; i < 6; i++) assert_int_equal(seen[i], 0);
    slm_sampler_free(s);
}

static void test_repetition_penalty_demotes_recent(void **state) {
    (void)state;
    float logits[3] = {2.0f, 1.5f, -3.0f};
    slm_sampler *s = make(0, 0, 1, 2.0f, 1, 3);
    assert_int_equal(slm_sampler_sample(s, logits), 0);
    slm_sampler_accept(s, 0);
    slm_sampler_accept(s, 0); /* seen twice: penalised once (2.0 / 2 = 1.0 < 1.5) */
    assert_int_equal(slm_sampler_sample(s, logits), 1);
    slm_sampler_free(s);
    slm_sampler_params bad = {.temperature = -1, .top_p = 1, .repeat_penalty = 1};
    slm_err e;
    assert_null(slm_sampler_new(&bad, 3, &e));
    assert_int_equal(e.code, SLM_ERR_ARG);
}

/* A tiny random model with a trained tokenizer, for the generation loop. */
static slm_tokenizer *tok;
static slm_model *model;

static int setup_model(void **state) {
    (void)state;
    const char *text = "the cat sat on the mat. the dog sat on the log. a cat and a dog.\n";
    slm_tokenizer_train_opts o = {.vocab_size = 280};
    if (slm_tokenizer_train(text, strlen(text), &o, &tok, tu_err()) != SLM_OK) return -1;
    slm_model_config cfg = {.n_vocab = slm_tokenizer_n_vocab(tok), .dim = 16, .n_layers = 1, .n_heads = 2,
                            .n_kv_heads = 1, .hidden_dim = 32, .ctx_len = 64, .rope_theta = 10000.0f,
                            .norm_eps = 1e-5f, .tied_output = 0};
    model = slm_model_new(&cfg, tu_err());
    if (!model) return -1;
    slm_model_init_random(model, 5);
    /* larger weights so the random model's outputs vary from token to token */
    for (size_t i = 0; i < model->n_params; i++) model->params[i] *= 20.0f;
    return 0;
}

static int teardown_model(void **state) {
    (void)state;
    slm_model_free(model);
    slm_tokenizer_free(tok);
    return 0;
}

typedef struct {
    char buf[4096];
    size_t len;
    int calls;
} collected;

static int collect(void *ctx, const char *text, size_t len) {
    collected *c = ctx;
    assert_true(c->len + len < sizeof c->buf);
    memcpy(c->buf + c->len, text, len);
    c->len += len;
    c->buf[c->len] = 0;
    c->calls++;
    return 0;
}

static void run(const char *prompt, int n, const char *const *stop, int n_stop, collected *out,
                slm_generate_stats *st) {
    slm_sampler_params sp;
    slm_sampler_params_default(&sp);
    sp.temperature = 0;
    slm_generate_opts go = {.max_tokens = n, .stop = stop, .n_stop = n_stop, .stop_at_eos = 0};
    memset(out, 0, sizeof *out);
    TU_OK(slm_generate(model, tok, prompt, strlen(prompt), &sp, &go, NULL, collect, out, st, tu_err()));
}

static void test_generation_streams_and_counts(void **state) {
    (void)state;
    collected a, b;
    slm_generate_stats st;
    run("the cat", 30, NULL, 0, &a, &st);
    assert_int_equal(st.generated_tokens, 30);
    assert_string_equal(st.stopped_by, "length");
    assert_int_equal(a.calls, 30); /* one piece per token, as it arrives */
    run("the cat", 30, NULL, 0, &b, &st);
    assert_string_equal(a.buf, b.buf); /* greedy is deterministic */
    /* the text equals the decoded tokens: re-encoding does not matter, lengths add up */
    assert_true(a.len > 0);
    run("", 5, NULL, 0, &b, &st); /* an empty prompt starts from BOS alone */
    assert_int_equal(st.prompt_tokens, 1);
}

static void test_stop_string_cuts_before_it(void **state) {
    (void)state;
    collected full, cut;
    slm_generate_stats st;
    run("the dog", 40, NULL, 0, &full, &st);
    assert_true(full.len > 12);
    /* stop at a piece of text from the middle of the greedy output */
    char stop[5];
    memcpy(stop, full.buf + full.len / 2, 4);
    stop[4] = 0;
    const char *stops[] = {"zzzz-never", stop};
    run("the dog", 40, stops, 2, &cut, &st);
    assert_string_equal(st.stopped_by, "stop");
    size_t first = (size_t)(strstr(full.buf, stop) - full.buf);
    assert_int_equal(cut.len, first);
    assert_memory_equal(cut.buf, full.buf, first);
}

static void test_prompt_longer_than_context_is_an_error(void **state) {
    (void)state;
    char prompt[2000];
    for (int i = 0; i < 1999; i++) prompt[i] = (char)('a' + i % 7 * 3);
    prompt[1999] = 0;
    slm_sampler_params sp;
    slm_sampler_params_default(&sp);
    slm_generate_opts go = {.max_tokens = 4};
    slm_generate_stats st;
    slm_err e;
    assert_int_equal(slm_generate(model, tok, prompt, strlen(prompt), &sp, &go, NULL, collect,
                                  &(collected){0}, &st, &e), SLM_ERR_RANGE);
    assert_non_null(strstr(e.msg, "context"));
    /* asked for, truncation keeps BOS and the prompt's end, leaving room to generate */
    go.truncate = 1;
    go.max_tokens = 10;
    collected c = {0};
    TU_OK(slm_generate(model, tok, prompt, strlen(prompt), &sp, &go, NULL, collect, &c, &st, tu_err()));
    assert_int_equal(st.prompt_tokens, 64 - 10);
    assert_int_equal(st.generated_tokens, 10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_picks_argmax_lowest_on_ties),
        cmocka_unit_test(test_temperature_sampling_follows_softmax),
        cmocka_unit_test(test_top_k_and_top_p_restrict_candidates),
        cmocka_unit_test(test_repetition_penalty_demotes_recent),
        cmocka_unit_test(test_generation_streams_and_counts),
        cmocka_unit_test(test_stop_string_cuts_before_it),
        cmocka_unit_test(test_prompt_longer_than_context_is_an_error),
    };
    return cmocka_run_group_tests_name("generate", tests, setup_model, teardown_model);
}
