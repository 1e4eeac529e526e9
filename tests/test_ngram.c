/* test_ngram.c: the sparse n-gram classifier (src/task/ngram.h).
 *
 * Outside truth: the word and char_wb n-grams of a few texts, and the tf-idf values of a toy
 * corpus, as scikit-learn 1.2.1's TfidfVectorizer gives them (sublinear_tf, smooth idf, l2; the
 * lists below were printed by its build_analyzer() / fit_transform()). Then the behaviour that
 * could break: one-character words, code points versus bytes, invalid UTF-8, texts that are not
 * NUL-terminated; a keyword task learned to 100% train and > 95% held-out accuracy; the
 * objective's gradient against finite differences; larger C giving larger weights; the same model
 * for 1 and 2 threads; the GGUF round trip (logits within the F16 rounding bound) and its errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "gguf/gguf.h"
#include "task/ngram.h"
#include "util/testutil.h"

/* ---- feature extraction ---- */

typedef struct {
    char keys[256][64];
    int n;
} key_list;

static void collect(void *ctx, const char *key, size_t len) {
    key_list *l = ctx;
    if (l->n >= 256 || len >= 64) fail_msg("too many or too long keys (%zu bytes)", len);
    memcpy(l->keys[l->n], key, len);
    l->keys[l->n][len] = 0;
    l->n++;
}

static void expect_keys(const slm_ngram_opts *o, const char *text, size_t len, const char *const *want, int n_want) {
    key_list l = {.n = 0};
    TU_OK(slm_ngram_features_of(o, text, len, collect, &l, tu_err()));
    for (int i = 0; i < l.n && i < n_want; i++)
        if (strcmp(l.keys[i], want[i]))
            fail_msg("'%s': n-gram %d is '%s', scikit-learn gives '%s'", text, i, l.keys[i], want[i]);
    if (l.n != n_want) fail_msg("'%s': %d n-grams, scikit-learn gives %d", text, l.n, n_want);
}

#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

static void test_features_match_sklearn(void **state) {
    (void)state;
    slm_ngram_opts o;
    slm_ngram_opts_default(&o);
    static const char *const hi[] = {
        "w:hi", "w:there", "w:hi there",
        "c: h", "c:hi", "c:i ", "c: hi", "c:hi ", "c: hi ", /* " hi " stops at n = 4 = its length */
        "c: t", "c:th", "c:he", "c:er", "c:re", "c:e ", "c: th", "c:the", "c:her", "c:ere", "c:re ",
        "c: the", "c:ther", "c:here", "c:ere ", "c: ther", "c:there", "c:here "};
    expect_keys(&o, "Hi there", 8, hi, N_OF(hi));
    /* é is one code point: 5-grams of " café " are " café" and "café " */
    static const char *const cafe[] = {
        "w:café", "c: c", "c:ca", "c:af", "c:fé", "c:é ", "c: ca", "c:caf", "c:afé", "c:fé ",
        "c: caf", "c:café", "c:afé ", "c: café", "c:café "};
    expect_keys(&o, "café", strlen("café"), cafe, N_OF(cafe));
    /* one-character words ("i", "m", "a", "5") give no word feature; £ is not a word character */
    static const char *const mixed[] = {
        "w:user_x", "w:ok", "w:user_x ok",
        "c: i", "c:i'", "c:'m", "c:m ", "c: i'", "c:i'm", "c:'m ", "c: i'm", "c:i'm ", "c: i'm ",
        "c: a", "c:a ", "c: a ", "c: £", "c:£5", "c:5 ", "c: £5", "c:£5 ", "c: £5 ",
        "c: u", "c:us", "c:se", "c:er", "c:r_", "c:_x", "c:x.", "c:..", "c:..", "c:. ",
        "c: us", "c:use", "c:ser", "c:er_", "c:r_x", "c:_x.", "c:x..", "c:...", "c:.. ",
        "c: use", "c:user", "c:ser_", "c:er_x", "c:r_x.", "c:_x..", "c:x...", "c:... ",
        "c: user", "c:user_", "c:ser_x", "c:er_x.", "c:r_x..", "c:_x...", "c:x... ",
        "c: o", "c:ok", "c:k!", "c:! ", "c: ok", "c:ok!", "c:k! ", "c: ok!", "c:ok! ", "c: ok! "};
    const char *t = "I'm a £5 user_x... OK!";
    expect_keys(&o, t, strlen(t), mixed, N_OF(mixed));
    /* Latin-1 capitals lowercase; runs of spaces and tabs separate words */
    static const char *const ecole[] = {
        "w:école", "c: é", "c:éc", "c:co", "c:ol", "c:le", "c:e ", "c: éc", "c:éco", "c:col", "c:ole", "c:le ",
        "c: éco", "c:écol", "c:cole", "c:ole ", "c: écol", "c:école", "c:cole ", "c: à", "c:à ", "c: à ",
        "c: x", "c:x ", "c: x "};
    t = "ÉCOLE  à\tx";
    expect_keys(&o, t, strlen(t), ecole, N_OF(ecole));
    /* repeated n-grams are reported each time */
    static const char *const aa[] = {"w:aa", "w:aa", "w:aa aa", "c: a", "c:aa", "c:a ", "c: aa", "c:aa ",
                                     "c: aa ", "c: a", "c:aa", "c:a ", "c: aa", "c:aa ", "c: aa "};
    expect_keys(&o, "aa aa", 5, aa, N_OF(aa));
}

static void test_features_edges(void **state) {
    (void)state;
    slm_ngram_opts o;
    slm_ngram_opts_default(&o);
    /* only the first len bytes are read (no NUL needed) */
    static const char *const hi[] = {"w:hi", "c: h", "c:hi", "c:i ", "c: hi", "c:hi ", "c: hi "};
    expect_keys(&o, "hi there", 2, hi, N_OF(hi));
    expect_keys(&o, "", 0, NULL, 0);
    expect_keys(&o, " \t\n ", 4, NULL, 0);
    /* a word of one character: no word feature; with word n-grams only, nothing at all */
    static const char *const x[] = {"c: x", "c:x ", "c: x "};
    expect_keys(&o, "x", 1, x, N_OF(x));
    o.char_max = 0;
    expect_keys(&o, "x y z", 5, NULL, 0);
    /* invalid UTF-8: each bad byte is one code point (and a word character); a truncated
     * sequence at the end is one code point too */
    slm_ngram_opts_default(&o);
    o.word_max = 1, o.char_min = 3, o.char_max = 3;
    static const char *const bad[] = {"w:\xff\xc3", "c: \xff\xc3", "c:\xff\xc3 "};
    expect_keys(&o, "\xff\xc3", 2, bad, N_OF(bad));
    static const char *const ebad[] = {"w:é\xe9", "c: é\xe9", "c:é\xe9 "};
    expect_keys(&o, "\xc3\x89\xe9", 3, ebad, N_OF(ebad)); /* É lowercased, then a lone 0xE9 */
    /* bad options name themselves */
    slm_ngram_opts_default(&o);
    o.char_min = 6;
    key_list l = {.n = 0};
    assert_int_equal(slm_ngram_features_of(&o, "a", 1, collect, &l, tu_err()), SLM_ERR_ARG);
    assert_non_null(strstr(tu_err_last(), "char_min"));
    slm_ngram_opts_default(&o);
    o.word_max = 0, o.char_max = 0;
    assert_int_equal(slm_ngram_features_of(&o, "a", 1, collect, &l, tu_err()), SLM_ERR_ARG);
    assert_non_null(strstr(tu_err_last(), "word_max"));
}

/* ---- tf-idf ---- */

static int find(const slm_ngram *m, const char *key) { return slm_ngram_find(m, key, strlen(key)); }

static void test_tfidf_toy_corpus(void **state) {
    (void)state;
    const char *docs[] = {"apple banana apple", "banana cherry", "cherry cherry date"};
    int32_t y[] = {0, 1, 0};
    slm_ngram_opts o;
    slm_ngram_opts_default(&o);
    o.word_max = 1, o.char_min = 3, o.char_max = 3, o.max_iter = 2;
    slm_ngram *m = slm_ngram_train(docs, NULL, y, 3, 2, &o, NULL, NULL, tu_err());
    if (!m) fail_msg("%s", tu_err_last());
    assert_int_equal(slm_ngram_n_labels(m), 2);
    /* idf = ln((1 + N) / (1 + df)) + 1 */
    assert_float_equal(slm_ngram_idf(m, find(m, "w:apple")), log(4.0 / 2.0) + 1, 1e-6);
    assert_float_equal(slm_ngram_idf(m, find(m, "w:banana")), log(4.0 / 3.0) + 1, 1e-6);
    assert_float_equal(slm_ngram_idf(m, find(m, "c:che")), log(4.0 / 3.0) + 1, 1e-6);
    int32_t idx[64];
    float val[64];
    int n = slm_ngram_transform(m, docs[0], strlen(docs[0]), idx, val, 64);
    assert_int_equal(n, 2 + 10); /* apple, banana; 5 + 5 distinct 3-grams of " apple " / " banana " */
    /* the word block by hand: apple tf 2, banana tf 1 */
    double a = (1 + log(2.0)) * (log(2.0) + 1), b = log(4.0 / 3.0) + 1, nw = sqrt(a * a + b * b);
    /* scikit-learn's values (word 1-gram and char_wb 3-gram vectorisers on the same corpus) */
    static const struct {
        const char *key;
        double v;
    } sk[] = {{"w:banana", 0.409741610}, {"w:apple", 0.912201630}, {"c:na ", 0.177755733},
              {"c:nan", 0.177755733},    {"c:ana", 0.300966618},   {"c:ban", 0.177755733},
              {"c: ba", 0.177755733},    {"c:le ", 0.395734935},   {"c:ple", 0.395734935},
              {"c:ppl", 0.395734935},    {"c:app", 0.395734935},   {"c: ap", 0.395734935}};
    double ssw = 0, ssc = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *k = slm_ngram_feature(m, idx[i], &len);
        if (i) assert_true(idx[i] > idx[i - 1]);
        *(k[0] == 'w' ? &ssw : &ssc) += (double)val[i] * val[i];
        int found = 0;
        for (int j = 0; j < N_OF(sk); j++)
            if (strlen(sk[j].key) == len && !memcmp(sk[j].key, k, len)) {
                found = 1;
                if (fabs(val[i] - sk[j].v) > 1e-6) fail_msg("%s: %.9f, scikit-learn %.9f", sk[j].key, val[i], sk[j].v);
            }
        if (!found) fail_msg("feature '%.*s' is not in scikit-learn's row", (int)len, k);
    }
    int apple = find(m, "w:apple"), banana = find(m, "w:banana");
    for (int i = 0; i < n; i++) {
        if (idx[i] == apple) assert_float_equal(val[i], a / nw, 1e-6);
        if (idx[i] == banana) assert_float_equal(val[i], b / nw, 1e-6);
    }
    assert_float_equal(ssw, 1.0, 1e-6); /* each block unit length: the row's norm is sqrt(2) */
    assert_float_equal(ssc, 1.0, 1e-6);
    /* unknown features are ignored; an unknown-only text has an empty row */
    n = slm_ngram_transform(m, "zebra apple", 11, idx, val, 64);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *k = slm_ngram_feature(m, idx[i], &len);
        assert_true(len >= 3 && (k[0] == 'w' || k[0] == 'c'));
    }
    assert_int_equal(slm_ngram_transform(m, "zzz", 3, idx, val, 64), 0);
    slm_ngram_free(m);

    /* min_df and max_features shape the vocabulary */
    o.min_df = 2;
    m = slm_ngram_train(docs, NULL, y, 3, 2, &o, NULL, NULL, tu_err());
    assert_non_null(m);
    assert_true(find(m, "w:banana") >= 0 && find(m, "w:cherry") >= 0 && find(m, "w:apple") < 0);
    slm_ngram_free(m);
    o.min_df = 1, o.max_features = 3;
    m = slm_ngram_train(docs, NULL, y, 3, 2, &o, NULL, NULL, tu_err());
    assert_non_null(m);
    assert_int_equal(slm_ngram_n_features(m), 3); /* no feature has df 3: three of df 2 */
    for (int f = 0; f < 3; f++) assert_float_equal(slm_ngram_idf(m, f), log(4.0 / 3.0) + 1, 1e-6);
    slm_ngram_free(m);
}

/* ---- training ---- */

static const char *const FILLER[] = {"the", "my", "please", "today", "account", "help", "need", "where",
                                     "could", "you", "check", "again", "money", "bank", "app", "when",
                                     "why", "is", "it", "still", "now", "how", "long", "does"};
static const char *const KEYWORD[] = {"refund", "transfer", "pin", "exchange"};

/* n texts of 3-9 filler words with label y's keyword at a random place. */
static void make_task(int n, uint64_t seed, char **texts, int32_t *y) {
    slm_rng r;
    slm_rng_seed(&r, seed, 0);
    for (int i = 0; i < n; i++) {
        char buf[256] = "";
        int nw = 3 + (int)slm_rng_below(&r, 7), at = (int)slm_rng_below(&r, (uint32_t)nw + 1);
        y[i] = (int32_t)slm_rng_below(&r, 4);
        for (int w = 0; w <= nw; w++) {
            if (w) strcat(buf, " ");
            strcat(buf, w == at ? KEYWORD[y[i]] : FILLER[slm_rng_below(&r, N_OF(FILLER))]);
        }
        texts[i] = strdup(buf);
    }
}

static int argmax(const float *z, int K) {
    int b = 0;
    for (int k = 1; k < K; k++) b = z[k] > z[b] ? k : b;
    return b;
}

static double accuracy(const slm_ngram *m, char **texts, const int32_t *y, int n) {
    float z[8];
    int ok = 0;
    for (int i = 0; i < n; i++) {
        slm_ngram_logits(m, texts[i], strlen(texts[i]), z);
        ok += argmax(z, slm_ngram_n_labels(m)) == y[i];
    }
    return (double)ok / n;
}

typedef struct {
    int calls, last_iter;
    double first, last;
} progress;

static void on_progress(void *ctx, int iter, int max_iter, double loss) {
    progress *p = ctx;
    assert_true(iter >= 1 && iter <= max_iter);
    if (!p->calls++) p->first = loss;
    p->last_iter = iter, p->last = loss;
}

enum { NT = 200, NV = 200 };

static void test_learns_keyword_task(void **state) {
    (void)state;
    char *tr[NT], *va[NV];
    int32_t ytr[NT], yva[NV];
    make_task(NT, 11, tr, ytr);
    make_task(NV, 12, va, yva);
    slm_ngram_opts o;
    slm_ngram_opts_default(&o);
    progress p = {0};
    slm_ngram *m = slm_ngram_train((const char *const *)tr, NULL, ytr, NT, 4, &o, on_progress, &p, tu_err());
    if (!m) fail_msg("%s", tu_err_last());
    assert_true(p.calls >= 2 && p.last < p.first);
    double acc_tr = accuracy(m, tr, ytr, NT), acc_va = accuracy(m, va, yva, NV);
    if (acc_tr < 1.0 || acc_va <= 0.95) fail_msg("accuracy train %.3f, held-out %.3f", acc_tr, acc_va);
    /* the objective at the trained weights is the last loss reported, and nearly stationary */
    int F = slm_ngram_n_features(m), K = 4;
    float *W = malloc(sizeof(float) * F * K), *gW = malloc(sizeof(float) * F * K), gb[4];
    for (int f = 0; f < F; f++) memcpy(W + (size_t)f * K, slm_ngram_weight_row(m, f), sizeof(float) * K);
    double obj = slm_ngram_objective(m, (const char *const *)tr, NULL, ytr, NT, o.C, W, slm_ngram_bias(m), gW, gb);
    assert_float_equal(obj, p.last, 1e-5 * p.last);
    double gmax = 0;
    for (size_t i = 0; i < (size_t)F * K; i++) gmax = fmax(gmax, fabs(gW[i]));
    for (int k = 0; k < K; k++) gmax = fmax(gmax, fabs(gb[k]));
    if (p.last_iter < o.max_iter && gmax > 2 * o.tol) fail_msg("stopped at iteration %d with max |g| %g", p.last_iter, gmax);
    free(W);
    free(gW);
    slm_ngram_free(m);

    /* errors name the argument */
    int32_t bad[NT];
    memcpy(bad, ytr, sizeof bad);
    bad[7] = 4;
    assert_null(slm_ngram_train((const char *const *)tr, NULL, bad, NT, 4, &o, NULL, NULL, tu_err()));
    assert_int_equal(tu_err()->code, SLM_ERR_ARG);
    assert_non_null(strstr(tu_err_last(), "label 4 of text 7"));
    bad[7] = -1;
    assert_null(slm_ngram_train((const char *const *)tr, NULL, bad, NT, 4, &o, NULL, NULL, tu_err()));
    assert_non_null(strstr(tu_err_last(), "label -1 of text 7"));
    assert_null(slm_ngram_train((const char *const *)tr, NULL, ytr, NT, 1, &o, NULL, NULL, tu_err()));
    assert_int_equal(tu_err()->code, SLM_ERR_ARG);
    assert_non_null(strstr(tu_err_last(), "K = 1"));
    assert_null(slm_ngram_train((const char *const *)tr, NULL, ytr, 0, 4, &o, NULL, NULL, tu_err()));
    assert_non_null(strstr(tu_err_last(), "n = 0"));
    const char *tiny[] = {"a b", "c"};
    int32_t ytiny[] = {0, 1};
    o.char_max = 0;
    assert_null(slm_ngram_train(tiny, NULL, ytiny, 2, 2, &o, NULL, NULL, tu_err()));
    assert_int_equal(tu_err()->code, SLM_ERR_ARG);
    assert_non_null(strstr(tu_err_last(), "no features"));
    slm_ngram_opts_default(&o);
    o.C = 0;
    assert_null(slm_ngram_train((const char *const *)tr, NULL, ytr, NT, 4, &o, NULL, NULL, tu_err()));
    assert_non_null(strstr(tu_err_last(), "C 0"));
    slm_ngram_opts_default(&o);
    o.min_df = NT + 1;
    assert_null(slm_ngram_train((const char *const *)tr, NULL, ytr, NT, 4, &o, NULL, NULL, tu_err()));
    assert_non_null(strstr(tu_err_last(), "min_df"));
    for (int i = 0; i < NT; i++) free(tr[i]);
    for (int i = 0; i < NV; i++) free(va[i]);
}

static double weight_norm(const slm_ngram *m) {
    double s = 0;
    for (int f = 0; f < slm_ngram_n_features(m); f++) {
        const float *w = slm_ngram_weight_row(m, f);
        for (int k = 0; k < slm_ngram_n_labels(m); k++) s += (double)w[k] * w[k];
    }
    return sqrt(s);
}

static void test_larger_C_larger_weights(void **state) {
    (void)state;
    char *tr[NT];
    int32_t y[NT];
    make_task(NT, 21, tr, y);
    slm_ngram_opts o;
    slm_ngram_opts_default(&o);
    double prev = 0;
    const float Cs[] = {0.1f, 1.0f, 10.0f, 100.0f};
    for (int i = 0; i < 4; i++) {
        o.C = Cs[i];
        slm_ngram *m = slm_ngram_train((const char *const *)tr, NULL, y, NT, 4, &o, NULL, NULL, tu_err());
        assert_non_null(m);
        double nw = weight_norm(m);
        if (!(nw > prev)) fail_msg("C = %g: ||W|| %.4f, not above %.4f (smaller C)", (double)Cs[i], nw, prev);
        prev = nw;
        slm_ngram_free(m);
    }
    for (int i = 0; i < NT; i++) free(tr[i]);
}

static void test_same_model_any_thread_count(void **state) {
    (void)state;
    char *tr[NT];
    int32_t y[NT];
    make_task(NT, 31, tr, y);
    slm_ngram_opts o;
    slm_ngram_opts_default(&o);
    o.max_iter = 15;
    o.n_threads = 1;
    slm_ngram *a = slm_ngram_train((const char *const *)tr, NULL, y, NT, 4, &o, NULL, NULL, tu_err());
    o.n_threads = 2;
    slm_ngram *b = slm_ngram_train((const char *const *)tr, NULL, y, NT, 4, &o, NULL, NULL, tu_err());
    o.n_threads = 3;
    slm_ngram *c = slm_ngram_train((const char *const *)tr, NULL, y, NT, 4, &o, NULL, NULL, tu_err());
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(slm_ngram_n_features(a), slm_ngram_n_features(b));
    for (int f = 0; f < slm_ngram_n_features(a); f++) {
        assert_memory_equal(slm_ngram_weight_row(a, f), slm_ngram_weight_row(b, f), 4 * sizeof(float));
        assert_memory_equal(slm_ngram_weight_row(a, f), slm_ngram_weight_row(c, f), 4 * sizeof(float));
    }
    assert_memory_equal(slm_ngram_bias(a), slm_ngram_bias(b), 4 * sizeof(float));
    slm_ngram_free(a);
    slm_ngram_free(b);
    slm_ngram_free(c);
    for (int i = 0; i < NT; i++) free(tr[i]);
}

/* ---- gradient ---- */

static void test_gradient_fd(void **state) {
    (void)state;
    const char *texts[] = {"card arrived late", "my card is lost", "transfer failed", "why did the transfer fail",
                           "exchange rate", "what rate do you use", "lost card again"};
    int32_t y[] = {0, 0, 1, 1, 2, 2, 0};
    const int n = 7, K = 3;
    slm_ngram_opts o;
    slm_ngram_opts_default(&o);
    o.char_min = 3, o.char_max = 3, o.max_iter = 1;
    slm_ngram *m = slm_ngram_train(texts, NULL, y, n, K, &o, NULL, NULL, tu_err());
    assert_non_null(m);
    const int F = slm_ngram_n_features(m);
    float *W = malloc(sizeof(float) * F * K), *gW = malloc(sizeof(float) * F * K), b[3], gb[3];
    slm_rng r;
    slm_rng_seed(&r, 3, 0);
    for (int i = 0; i < F * K; i++) W[i] = 0.5f * slm_rng_normal(&r);
    for (int k = 0; k < K; k++) b[k] = 0.3f * slm_rng_normal(&r);
    const float C = 2.0f; /* strong enough that the L2 term shows in the gradient */
    double f0 = slm_ngram_objective(m, texts, NULL, y, n, C, W, b, gW, gb);
    assert_true(isfinite(f0));
    double gmax = 0;
    for (int i = 0; i < F * K; i++) gmax = fmax(gmax, fabs(gW[i]));
    assert_true(gmax > 0);
    const double eps = 1e-2, tol = 2e-3;
    for (int i = 0; i < F * K + K; i++) {
        float *x = i < F * K ? &W[i] : &b[i - F * K];
        double g = i < F * K ? gW[i] : gb[i - F * K];
        float v = *x;
        *x = (float)(v + eps);
        double fp = slm_ngram_objective(m, texts, NULL, y, n, C, W, b, NULL, NULL);
        *x = (float)(v - eps);
        double fm = slm_ngram_objective(m, texts, NULL, y, n, C, W, b, NULL, NULL);
        *x = v;
        double fd = (fp - fm) / (2 * eps);
        if (fabs(fd - g) > tol * (gmax + fabs(g)))
            fail_msg("%s[%d]: finite difference %.6g, gradient %.6g", i < F * K ? "W" : "b", i, fd, g);
    }
    /* bad arguments: NaN */
    int32_t bad[] = {0, 0, 1, 1, 2, 2, 3};
    assert_true(isnan(slm_ngram_objective(m, texts, NULL, bad, n, C, W, b, NULL, NULL)));
    free(W);
    free(gW);
    slm_ngram_free(m);
}

/* ---- GGUF ---- */

static slm_ngram *small_model(char **tr, int32_t *y) {
    make_task(NT, 41, tr, y);
    slm_ngram_opts o;
    slm_ngram_opts_default(&o);
    o.max_iter = 30;
    slm_ngram *m = slm_ngram_train((const char *const *)tr, NULL, y, NT, 4, &o, NULL, NULL, tu_err());
    if (!m) fail_msg("%s", tu_err_last());
    return m;
}

/* The F16 rounding bound of text's logits: 2^-11 · sum_f |x_f| |w_fk| (and a little). */
static void check_close(const slm_ngram *m, const slm_ngram *r, const char *text) {
    float za[4], zb[4];
    int32_t idx[512];
    float val[512];
    size_t len = strlen(text);
    slm_ngram_logits(m, text, len, za);
    slm_ngram_logits(r, text, len, zb);
    int n = slm_ngram_transform(m, text, len, idx, val, 512);
    assert_true(n >= 0 && n <= 512);
    for (int k = 0; k < 4; k++) {
        double bound = 1e-6;
        for (int i = 0; i < n; i++) bound += fabs(val[i] * slm_ngram_weight_row(m, idx[i])[k]) / 2048.0;
        if (fabs(za[k] - zb[k]) > bound)
            fail_msg("'%s': logit %d %.6f, read back %.6f (bound %.2g)", text, k, za[k], zb[k], bound);
    }
}

static void test_gguf_round_trip(void **state) {
    (void)state;
    char *tr[NT];
    int32_t y[NT];
    slm_ngram *m = small_model(tr, y);
    const int F = slm_ngram_n_features(m);
    const char *path = tu_tmp_path("ngram.gguf");
    slm_gguf_writer *w = slm_gguf_writer_new();
    TU_OK(slm_gguf_set_str(w, "general.name", "ngram-test"));
    TU_OK(slm_ngram_add(w, m, tu_err()));
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);

    slm_gguf *g = slm_gguf_open(path, tu_err());
    assert_non_null(g);
    slm_ngram *r = NULL;
    TU_OK(slm_ngram_read(g, 4, &r, tu_err()));
    assert_non_null(r);
    assert_int_equal(slm_ngram_n_features(r), F);
    assert_int_equal(slm_ngram_n_labels(r), 4);
    for (int f = 0; f < F; f++) {
        size_t la, lb;
        const char *ka = slm_ngram_feature(m, f, &la), *kb = slm_ngram_feature(r, f, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(ka, kb, la);
        assert_float_equal(slm_ngram_idf(m, f), slm_ngram_idf(r, f), 0);
    }
    assert_memory_equal(slm_ngram_bias(m), slm_ngram_bias(r), 4 * sizeof(float));
    const char *probe[] = {"", "refund please", "where is my transfer", "pin pin pin exchange", "unknown words only",
                           "\xff\xfe broken \xc3"};
    for (int i = 0; i < N_OF(probe); i++) check_close(m, r, probe[i]);
    for (int i = 0; i < 20; i++) check_close(m, r, tr[i]);
    /* the same K is required: a mismatch names the tensor and its shape */
    slm_ngram *bad = NULL;
    assert_int_equal(slm_ngram_read(g, 5, &bad, tu_err()), SLM_ERR_FORMAT);
    assert_null(bad);
    assert_non_null(strstr(tu_err_last(), "ngram.weight"));
    slm_ngram_free(r);
    slm_gguf_close(g);

    /* a file without the part: NULL and OK */
    const char *plain = tu_tmp_path("plain.gguf");
    w = slm_gguf_writer_new();
    TU_OK(slm_gguf_set_str(w, "general.name", "no-ngram"));
    TU_OK(slm_gguf_writer_write(w, plain, tu_err()));
    slm_gguf_writer_free(w);
    g = slm_gguf_open(plain, tu_err());
    assert_non_null(g);
    r = (slm_ngram *)1;
    TU_OK(slm_ngram_read(g, 4, &r, tu_err()));
    assert_null(r);
    slm_gguf_close(g);

    /* malformed parts: a weight with one row too few, a missing idf, a repeated key */
    size_t *lens = malloc(sizeof(size_t) * F);
    const char **keys = malloc(sizeof(char *) * F);
    for (int f = 0; f < F; f++) keys[f] = slm_ngram_feature(m, f, &lens[f]);
    float *zeros = calloc((size_t)F * 4 + 64, sizeof(float));
    for (int c = 0; c < 3; c++) {
        const char *p = tu_tmp_path(c == 0 ? "short.gguf" : c == 1 ? "noidf.gguf" : "dup.gguf");
        w = slm_gguf_writer_new();
        TU_OK(slm_gguf_set_u32(w, "slm.ngram.word_max", 2));
        TU_OK(slm_gguf_set_u32(w, "slm.ngram.char_min", 2));
        TU_OK(slm_gguf_set_u32(w, "slm.ngram.char_max", 5));
        if (c == 2) keys[1] = keys[0], lens[1] = lens[0];
        TU_OK(slm_gguf_set_arr_str(w, "slm.ngram.features", keys, lens, (size_t)F));
        uint64_t ne_w[2] = {4, (uint64_t)(c == 0 ? F - 1 : F)}, ne_b[1] = {4}, ne_i[1] = {(uint64_t)F};
        TU_OK(slm_gguf_add_tensor(w, "ngram.weight", SLM_GGML_F32, 2, ne_w, zeros, tu_err()));
        TU_OK(slm_gguf_add_tensor(w, "ngram.bias", SLM_GGML_F32, 1, ne_b, zeros, tu_err()));
        if (c != 1) TU_OK(slm_gguf_add_tensor(w, "ngram.idf", SLM_GGML_F32, 1, ne_i, zeros, tu_err()));
        TU_OK(slm_gguf_writer_write(w, p, tu_err()));
        slm_gguf_writer_free(w);
        g = slm_gguf_open(p, tu_err());
        assert_non_null(g);
        bad = (slm_ngram *)1;
        assert_int_equal(slm_ngram_read(g, 4, &bad, tu_err()), SLM_ERR_FORMAT);
        assert_null(bad);
        const char *want = c == 0 ? "ngram.weight" : c == 1 ? "ngram.idf" : "repeats";
        if (!strstr(tu_err_last(), want)) fail_msg("case %d: '%s' does not name %s", c, tu_err_last(), want);
        if (c == 0) assert_non_null(strstr(tu_err_last(), "[4, "));
        slm_gguf_close(g);
    }
    free(zeros);
    free(keys);
    free(lens);
    slm_ngram_free(m);
    for (int i = 0; i < NT; i++) free(tr[i]);
}

/* ---- robustness ---- */

static void test_odd_texts_give_finite_logits(void **state) {
    (void)state;
    char *tr[NT];
    int32_t y[NT];
    slm_ngram *m = small_model(tr, y);
    float z[4];
    /* empty text, NULL text of length 0, whitespace only, unknown only: the bias */
    const char *none[] = {"", " \t ", "q", "zzzz qqqq"};
    for (int i = 0; i < N_OF(none); i++) {
        slm_ngram_logits(m, none[i], strlen(none[i]), z);
        assert_memory_equal(z, slm_ngram_bias(m), sizeof z);
    }
    slm_ngram_logits(m, NULL, 0, z);
    assert_memory_equal(z, slm_ngram_bias(m), sizeof z);
    /* random bytes (invalid UTF-8, NULs, truncated sequences) */
    slm_rng r;
    slm_rng_seed(&r, 9, 0);
    char buf[300];
    for (int t = 0; t < 2000; t++) {
        size_t len = slm_rng_below(&r, sizeof buf);
        for (size_t i = 0; i < len; i++) buf[i] = (char)slm_rng_below(&r, 256);
        slm_ngram_logits(m, buf, len, z);
        for (int k = 0; k < 4; k++) assert_true(isfinite(z[k]));
    }
    /* a long text */
    size_t big = 200000;
    char *text = malloc(big);
    for (size_t i = 0; i < big; i++) text[i] = "refund pin "[i % 11];
    slm_ngram_logits(m, text, big, z);
    for (int k = 0; k < 4; k++) assert_true(isfinite(z[k]));
    free(text);
    slm_ngram_free(m);
    for (int i = 0; i < NT; i++) free(tr[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_match_sklearn),
        cmocka_unit_test(test_features_edges),
        cmocka_unit_test(test_tfidf_toy_corpus),
        cmocka_unit_test(test_learns_keyword_task),
        cmocka_unit_test(test_larger_C_larger_weights),
        cmocka_unit_test(test_same_model_any_thread_count),
        cmocka_unit_test(test_gradient_fd),
        cmocka_unit_test(test_gguf_round_trip),
        cmocka_unit_test(test_odd_texts_give_finite_logits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
