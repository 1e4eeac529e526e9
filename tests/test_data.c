/* test_data.c: the data stage — CSV/JSONL readers, cleaning, PII, dedup, split, SHA-256, the
 * card's accounting, --on-error fail, atomic outputs, held-out labels (ood.jsonl), and the whole
 * pipeline on Banking77. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/file.h"
#include "data/clean.h"
#include "data/csv.h"
#include "data/jsonl.h"
#include "data/pii.h"
#include "data/prepare.h"
#include "data/sha256.h"
#include "data/split.h"
#include "util/testutil.h"

#define FIX "tests/fixtures/data/"

/* ---- helpers ---- */

static cJSON *read_json(const char *path) {
    char *d;
    size_t n;
    TU_OK(slm_file_read_all(path, &d, &n, tu_err()));
    cJSON *j = cJSON_Parse(d);
    free(d);
    assert_non_null(j);
    return j;
}

static long jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) fail_msg("card: no number '%s'", k);
    return (long)v->valuedouble;
}

static char *read_text(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *d;
    size_t n;
    if (slm_file_read_all(path, &d, &n, NULL) != SLM_OK) return NULL;
    return d;
}

static long count_lines(const char *s) {
    long n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

/* rows_read = malformed + dropped_* + held_out + sum of split rows, from card.json itself (and for
 * --test: rows_read = malformed + dropped_empty + held_out + rows) */
static void assert_card_adds_up(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/card.json", dir);
    cJSON *card = read_json(path);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(card, "counts");
    const cJSON *splits = cJSON_GetObjectItemCaseSensitive(card, "splits");
    long sum = 0;
    const cJSON *sp;
    cJSON_ArrayForEach(sp, splits) {
        long rows = jnum(sp, "rows");
        char name[64];
        snprintf(name, sizeof name, "%s.jsonl", sp->string);
        char *t = read_text(dir, name);
        if (strcmp(sp->string, "test") || !cJSON_GetObjectItemCaseSensitive(card, "test"))
            assert_int_equal(count_lines(t), rows);
        free(t);
        sum += rows;
    }
    assert_int_equal(jnum(c, "kept"), sum);
    assert_int_equal(jnum(c, "rows_read"), jnum(c, "malformed") + jnum(c, "dropped_empty") +
                                               jnum(c, "dropped_too_short") + jnum(c, "dropped_too_long") +
                                               jnum(c, "dropped_duplicate") + jnum(c, "held_out") + sum);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(card, "test");
    if (t) {
        assert_int_equal(jnum(t, "kept"), jnum(t, "rows"));
        assert_int_equal(jnum(t, "rows_read"),
                         jnum(t, "malformed") + jnum(t, "dropped_empty") + jnum(t, "held_out") + jnum(t, "rows"));
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(card, "held_out");
    char *ood = read_text(dir, "ood.jsonl");
    if (h) {
        assert_int_equal(jnum(h, "from_inputs"), jnum(c, "held_out"));
        assert_int_equal(jnum(h, "from_test"), t ? jnum(t, "held_out") : 0);
        assert_int_equal(jnum(h, "rows"), jnum(h, "from_inputs") + jnum(h, "from_test"));
        assert_int_equal(count_lines(ood), jnum(h, "rows"));
    } else {
        assert_int_equal(jnum(c, "held_out"), 0);
    }
    free(ood);
    cJSON_Delete(card);
}

static void opts_for(slm_data_prepare_opts *o, const char *in, const char *out) {
    slm_data_prepare_opts_default(o);
    o->inputs[0] = in;
    o->n_inputs = 1;
    o->out_dir = out;
}

/* ---- SHA-256 ---- */

static void test_sha256_vectors(void **state) {
    (void)state;
    char hex[65];
    slm_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    slm_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    slm_sha256_hex(m448, strlen(m448), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* a million 'a', fed in uneven pieces so block boundaries fall everywhere */
    char a[1000];
    memset(a, 'a', sizeof a);
    slm_sha256 s;
    slm_sha256_init(&s);
    size_t fed = 0, piece = 1;
    while (fed < 1000000) {
        size_t n = piece < 1000000 - fed ? piece : 1000000 - fed;
        slm_sha256_update(&s, a, n);
        fed += n;
        piece = piece % 900 + 63; /* at most 962 < sizeof a */
    }
    uint8_t d[32];
    slm_sha256_final(&s, d);
    static const uint8_t want[32] = {0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7,
                                     0xe2, 0x84, 0xd7, 0x3e, 0x67, 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97,
                                     0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    assert_memory_equal(d, want, 32);
    /* the file hash matches the buffer hash */
    const char *p = tu_tmp_path("abc.txt");
    FILE *f = fopen(p, "wb");
    fputs("abc", f);
    fclose(f);
    uint64_t size;
    TU_OK(slm_sha256_file(p, hex, &size, tu_err()));
    assert_int_equal(size, 3);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* ---- CSV ---- */

static void test_csv_edge_cases(void **state) {
    (void)state;
    FILE *f = fopen(FIX "edge.csv", "rb");
    assert_non_null(f);
    slm_err e;
    slm_csv *c = slm_csv_new(f, &e);
    assert_non_null(c);
    slm_csv_row r;
    int eof;
    /* BOM stripped from the header */
    assert_int_equal(slm_csv_next(c, &r, &eof, &e), SLM_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.fields[0], "text");
    assert_int_equal(r.line, 1);
    struct { const char *a, *b; long line; } want[] = {
        {"hello, world", "greet", 2}, {"she said \"hi\"", "quote", 3}, {"two\r\nlines", "multi", 4},
        {"plain", "simple", 6},       {"lf\nonly", "multi", 7},
    };
    for (int i = 0; i < 5; i++) {
        assert_int_equal(slm_csv_next(c, &r, &eof, &e), SLM_OK);
        assert_false(eof);
        assert_int_equal(r.n, 2);
        assert_string_equal(r.fields[0], want[i].a);
        assert_string_equal(r.fields[1], want[i].b);
        assert_int_equal(r.line, want[i].line);
    }
    /* ragged row: the reader returns 3 fields; the pipeline calls it malformed */
    assert_int_equal(slm_csv_next(c, &r, &eof, &e), SLM_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.line, 9);
    assert_int_equal(slm_csv_next(c, &r, &eof, &e), SLM_OK);
    assert_true(r.blank);
    assert_int_equal(r.line, 10);
    assert_int_equal(slm_csv_next(c, &r, &eof, &e), SLM_ERR_FORMAT);
    assert_int_equal(r.line, 11);
    assert_non_null(strstr(e.msg, "after a closing quote"));
    /* recovers on the next line; the last row has no newline */
    assert_int_equal(slm_csv_next(c, &r, &eof, &e), SLM_OK);
    assert_false(eof);
    assert_int_equal(r.line, 12);
    assert_string_equal(r.fields[1], "  tail");
    assert_int_equal(slm_csv_next(c, &r, &eof, &e), SLM_OK);
    assert_true(eof);
    slm_csv_free(c);
    fclose(f);
}

static void test_csv_unterminated_quote(void **state) {
    (void)state;
    const char *s = "a,b\n1,\"open\nstill open";
    FILE *f = fmemopen((void *)s, strlen(s), "rb");
    slm_err e;
    slm_csv *c = slm_csv_new(f, &e);
    slm_csv_row r;
    int eof;
    assert_int_equal(slm_csv_next(c, &r, &eof, &e), SLM_OK);
    assert_int_equal(slm_csv_next(c, &r, &eof, &e), SLM_ERR_FORMAT);
    assert_int_equal(r.line, 2);
    assert_non_null(strstr(e.msg, "unterminated quote"));
    assert_int_equal(slm_csv_next(c, &r, &eof, &e), SLM_OK);
    assert_true(eof);
    slm_csv_free(c);
    fclose(f);
}

static void test_prepare_csv_reports_malformed_rows(void **state) {
    (void)state;
    const char *out = tu_tmp_path("edge_out");
    slm_data_prepare_opts o;
    opts_for(&o, FIX "edge.csv", out);
    slm_data_stats st;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.main.rows_read, 8);
    assert_int_equal(st.main.malformed, 2);
    assert_int_equal(st.main.blank_lines, 1);
    assert_int_equal(st.main.bad[0].line, 9);
    assert_non_null(strstr(st.main.bad[0].reason, "expected 2 fields"));
    assert_int_equal(st.main.bad[1].line, 11);
    assert_int_equal(st.split_rows[0] + st.split_rows[1], 6);
    slm_data_stats_free(&st);
    assert_card_adds_up(out);
    /* multi-line text is normalised to one line in the output */
    char *train = read_text(out, "train.jsonl"), *val = read_text(out, "val.jsonl");
    char both[4096];
    snprintf(both, sizeof both, "%s%s", train, val);
    assert_non_null(strstr(both, "{\"text\":\"two lines\",\"label\":\"multi\"}"));
    assert_non_null(strstr(both, "\"she said \\\"hi\\\"\""));
    free(train);
    free(val);
}

/* ---- on-error fail and atomic outputs ---- */

static void test_on_error_fail_names_file_line_and_writes_nothing(void **state) {
    (void)state;
    const char *out = tu_tmp_path("fail_out");
    slm_data_prepare_opts o;
    opts_for(&o, FIX "unterminated.csv", out);
    o.fail_on_error = 1;
    slm_data_stats st;
    slm_err e;
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_FORMAT);
    slm_data_stats_free(&st);
    assert_non_null(strstr(e.msg, FIX "unterminated.csv:3: unterminated quote"));
    assert_int_not_equal(access(out, F_OK) == 0 && access(tu_tmp_path("fail_out/card.json"), F_OK) == 0, 1);

    /* a failing run over an earlier good one leaves the earlier files whole, no temporaries */
    o.fail_on_error = 0;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.main.malformed, 1);
    slm_data_stats_free(&st);
    char *before = read_text(out, "card.json");
    assert_non_null(before);
    o.inputs[0] = FIX "bad.jsonl";
    o.fail_on_error = 1;
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_FORMAT);
    slm_data_stats_free(&st);
    assert_non_null(strstr(e.msg, FIX "bad.jsonl:2: invalid JSON"));
    char *after = read_text(out, "card.json");
    assert_string_equal(before, after);
    free(before);
    free(after);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", out);
    FILE *p = popen(cmd, "r");
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    assert_int_equal(n, 0);
}

/* ---- JSONL ---- */

static void test_jsonl_shapes_and_errors(void **state) {
    (void)state;
    slm_data_keys k = {"text", "label", "prompt", "completion", "messages"};
    slm_data_record r;
    char why[200];
    slm_data_task t = SLM_TASK_AUTO;
    const char *c = "{\"text\":\"hi\",\"label\":3}";
    assert_int_equal(slm_jsonl_parse(c, strlen(c), &t, &k, &r, why, sizeof why), SLM_OK);
    assert_int_equal(t, SLM_TASK_CLASSIFY);
    assert_string_equal(r.label, "3");
    slm_data_record_free(&r);
    t = SLM_TASK_AUTO;
    const char *g = "{\"prompt\":\"p\",\"completion\":\"c\"}";
    assert_int_equal(slm_jsonl_parse(g, strlen(g), &t, &k, &r, why, sizeof why), SLM_OK);
    assert_int_equal(t, SLM_TASK_GENERATE);
    assert_string_equal(r.completion, "c");
    slm_data_record_free(&r);
    t = SLM_TASK_AUTO;
    const char *m = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}";
    assert_int_equal(slm_jsonl_parse(m, strlen(m), &t, &k, &r, why, sizeof why), SLM_OK);
    assert_int_equal(t, SLM_TASK_CHAT);
    assert_int_equal(r.n_msgs, 2);
    assert_string_equal(r.msgs[1].content, "b");
    slm_data_record_free(&r);
    struct { const char *line, *why; } bad[] = {
        {"{\"text\":\"x\",", "invalid JSON"},
        {"{\"text\":1,\"label\":\"a\"}", "\"text\" is a number"},
        {"{\"text\":\"x\"}", "missing key \"label\""},
        {"[1,2]", "expected a JSON object"},
        {"{\"text\":\"x\",\"label\":true}", "\"label\" is a boolean"},
        {"{\"messages\":[{\"role\":\"user\"}]}", "message 0: missing key \"content\""},
        {"{\"messages\":[]}", "is empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = i >= 5 ? SLM_TASK_CHAT : SLM_TASK_CLASSIFY;
        assert_int_equal(slm_jsonl_parse(bad[i].line, strlen(bad[i].line), &t, &k, &r, why, sizeof why), SLM_ERR_FORMAT);
        if (!strstr(why, bad[i].why)) fail_msg("'%s': reason '%s' lacks '%s'", bad[i].line, why, bad[i].why);
    }
}

static void test_prepare_jsonl_bad_lines_counted(void **state) {
    (void)state;
    const char *out = tu_tmp_path("bad_out");
    slm_data_prepare_opts o;
    opts_for(&o, FIX "bad.jsonl", out);
    slm_data_stats st;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.main.rows_read, 7);
    assert_int_equal(st.main.malformed, 5);
    long lines[] = {2, 3, 4, 5, 6};
    for (int i = 0; i < 5; i++) assert_int_equal(st.main.bad[i].line, lines[i]);
    assert_non_null(strstr(st.main.bad[4].reason, "text after the JSON value"));
    slm_data_stats_free(&st);
    assert_card_adds_up(out);
}

static void test_prepare_generate_and_chat(void **state) {
    (void)state;
    const char *out = tu_tmp_path("gen_out");
    slm_data_prepare_opts o;
    opts_for(&o, FIX "generate.jsonl", out);
    o.shares[0] = 0.5, o.shares[1] = 0.5;
    slm_data_stats st;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.task, SLM_TASK_GENERATE);
    slm_data_stats_free(&st);
    char *tr = read_text(out, "train.jsonl"), *va = read_text(out, "val.jsonl");
    char both[2048];
    snprintf(both, sizeof both, "%s%s", tr, va);
    /* newlines kept (at most two), trailing spaces trimmed */
    assert_non_null(strstr(both, "{\"prompt\":\"Line one\\n\\nLine two\",\"completion\":\"ok\"}"));
    free(tr);
    free(va);
    assert_null(read_text(out, "labels.txt"));

    out = tu_tmp_path("chat_out");
    opts_for(&o, FIX "chat.jsonl", out);
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.task, SLM_TASK_CHAT);
    assert_int_equal(st.main.dropped_empty, 1);
    assert_int_equal(st.split_rows[0], 1);
    slm_data_stats_free(&st);
    tr = read_text(out, "train.jsonl");
    assert_string_equal(tr, "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi there\"},"
                            "{\"role\":\"assistant\",\"content\":\"Hello!\"}]}\n");
    free(tr);
    assert_card_adds_up(out);
}

/* ---- cleaning, dedup, length ---- */

static void test_whitespace_normalisation(void **state) {
    (void)state;
    size_t chars, bad;
    const char *ws = " \t a\xc2\xa0\xc2\xa0" "b\xe2\x80\x83\n c\xe2\x80\x8b d \r\n";
    char *s = slm_clean_text(ws, strlen(ws), 0, &chars, &bad);
    assert_string_equal(s, "a b c d");
    assert_int_equal(chars, 7);
    assert_int_equal(bad, 0);
    free(s);
    /* invalid bytes and an overlong '/' become U+FFFD; character counts are code points */
    const char in[] = "caf\xc3\xa9 \xff x \xc0\xaf";
    s = slm_clean_text(in, sizeof in - 1, 0, &chars, &bad);
    assert_string_equal(s, "caf\xc3\xa9 \xef\xbf\xbd x \xef\xbf\xbd\xef\xbf\xbd");
    assert_int_equal(bad, 3);
    assert_int_equal(chars, 11);
    free(s);
    s = slm_clean_text("a  \n\n\n\n  b\r\nc", 14, 1, &chars, &bad);
    assert_string_equal(s, "a\n\nb\nc");
    free(s);
    s = slm_clean_casefold("\xc3\x89T\xc3\x89 \xd0\x9f\xd0\xa0\xd0\x98");
    assert_string_equal(s, "\xc3\xa9t\xc3\xa9 \xd0\xbf\xd1\x80\xd0\xb8");
    free(s);
}

static void test_dedup_empty_length_and_pii_in_pipeline(void **state) {
    (void)state;
    const char *out = tu_tmp_path("cls_out");
    slm_data_prepare_opts o;
    opts_for(&o, FIX "classify.jsonl", out);
    o.min_chars = 5;
    o.scrub_pii = 1;
    slm_data_stats st;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.main.rows_read, 7);
    assert_int_equal(st.main.blank_lines, 1);
    assert_int_equal(st.main.dropped_empty, 1);
    assert_int_equal(st.main.dropped_too_short, 1); /* "tiny" */
    assert_int_equal(st.main.dropped_duplicate, 1); /* whitespace variant; the upper-case one is kept */
    assert_int_equal(st.main.pii.email, 1);
    assert_int_equal(st.main.pii.phone, 1);
    assert_int_equal(st.n_labels, 3);
    assert_string_equal(st.labels[0], "7"); /* byte order; integer labels become text */
    slm_data_stats_free(&st);
    assert_card_adds_up(out);
    char *tr = read_text(out, "train.jsonl"), *va = read_text(out, "val.jsonl");
    char both[4096];
    snprintf(both, sizeof both, "%s%s", tr, va);
    assert_non_null(strstr(both, "Mail me at [EMAIL] or call [PHONE]"));
    free(tr);
    free(va);

    o.lowercase_dedup = 1;
    o.max_chars = 18;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.main.dropped_duplicate, 2);
    assert_int_equal(st.main.dropped_too_long, 2); /* "Reset my PIN please" (19), the contact row */
    slm_data_stats_free(&st);
    assert_card_adds_up(out);

    o.lowercase_dedup = 0;
    o.max_chars = 0;
    o.keep_duplicates = 1;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.main.dropped_duplicate, 0);
    assert_int_equal(st.split_rows[0] + st.split_rows[1], 5);
    slm_data_stats_free(&st);
}

/* ---- PII ---- */

static void test_pii_positives_and_negatives(void **state) {
    (void)state;
    struct { const char *in, *out; } cases[] = {
        {"card 4111 1111 1111 1111 ok", "card [CARD] ok"},
        {"card 4111-1111-1111-1111.", "card [CARD]."},
        {"amex 378282246310005", "amex [CARD]"},
        {"bad 4111 1111 1111 1112", "bad 4111 1111 1111 1112"}, /* fails Luhn */
        {"mail john.smith+x@mail.example.co.uk now", "mail [EMAIL] now"},
        {"not@an email, a@b.c", "not@an email, a@b.c"},
        {"call (555) 123-4567 today", "call [PHONE] today"},
        {"call 555-123-4567", "call [PHONE]"},
        {"call +1 555 123 4567", "call [PHONE]"},
        {"ring +44 20 7946 0958!", "ring [PHONE]!"},
        {"ring +49 (30) 1234567", "ring [PHONE]"},
        {"in 2023 I paid $1,234.56 on 2023-01-15", "in 2023 I paid $1,234.56 on 2023-01-15"},
        {"order 123456789 and 12/05/2024 and 3.14159", "order 123456789 and 12/05/2024 and 3.14159"},
        {"account 12345678901234", "account 12345678901234"},
        {"555-123 4567 mixed", "555-123 4567 mixed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        slm_pii_counts c = {0};
        char *s = slm_pii_scrub(cases[i].in, &c);
        if (strcmp(s, cases[i].out)) fail_msg("scrub('%s') = '%s', want '%s'", cases[i].in, s, cases[i].out);
        free(s);
    }
    slm_pii_counts c = {0};
    char *s = slm_pii_scrub("a@x.org 4111111111111111 555.123.4567 b@y.io", &c);
    assert_int_equal(c.email, 2);
    assert_int_equal(c.card, 1);
    assert_int_equal(c.phone, 1);
    free(s);
    assert_true(slm_pii_luhn("79927398713", 11));
    assert_false(slm_pii_luhn("79927398710", 11));
}

/* ---- split ---- */

static void test_split_stratified_deterministic(void **state) {
    (void)state;
    enum { N = 1003, G = 7 };
    int group[N];
    uint8_t a[N], b[N], c[N];
    for (int i = 0; i < N; i++) group[i] = i < 2 ? 5 : i == 2 ? 6 : (i * 7919) % 5; /* 5 big, 2 rare */
    double sh[3] = {0.8, 0.1, 0.1};
    TU_OK(slm_split_assign(group, N, G, sh, 3, 42, a, tu_err()));
    TU_OK(slm_split_assign(group, N, G, sh, 3, 42, b, tu_err()));
    TU_OK(slm_split_assign(group, N, G, sh, 3, 43, c, tu_err()));
    assert_memory_equal(a, b, N);
    assert_memory_not_equal(a, c, N);
    for (int g = 0; g < G; g++) {
        long n = 0, k[3] = {0};
        for (int i = 0; i < N; i++)
            if (group[i] == g) n++, k[a[i]]++;
        if (!n) continue;
        assert_true(k[0] >= 1); /* every label reaches train */
        for (int s = 0; s < 3; s++) assert_true(labs(k[s] * 10 - (long)(sh[s] * 10 * n + 0.5)) <= 10);
    }
    double two[2] = {0.9, 0.1};
    int g1[1] = {0};
    TU_OK(slm_split_assign(g1, 1, 1, two, 2, 1, a, tu_err()));
    assert_int_equal(a[0], 0);
    double parsed[3];
    assert_int_equal(slm_split_parse("0.8,0.1,0.1", parsed, NULL), 3);
    assert_int_equal(slm_split_parse("90,10", parsed, NULL), 2);
    assert_true(parsed[0] > 0.899 && parsed[0] < 0.901);
    slm_err e;
    assert_int_equal(slm_split_parse("0.5,0.2", parsed, &e), 0);
    assert_int_equal(slm_split_parse("1", parsed, &e), 0);
}

/* ---- --test and leakage ---- */

static void test_official_test_file_and_leakage(void **state) {
    (void)state;
    const char *out = tu_tmp_path("small_out");
    slm_data_prepare_opts o;
    opts_for(&o, FIX "train_small.csv", out);
    o.test_path = FIX "test_small.csv";
    o.shares[0] = 0.8, o.shares[1] = 0.2;
    slm_data_stats st;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.n_labels, 4);
    assert_int_equal(st.test.rows_read, 4);
    assert_int_equal(st.test.dropped_empty, 1);
    assert_int_equal(st.test_rows, 3);
    assert_int_equal(st.n_unseen, 1);
    assert_string_equal(st.unseen[0], "exchange");
    /* leaked = the test rows whose text went to train */
    char *tr = read_text(out, "train.jsonl");
    long leak = !!strstr(tr, "\"where is my new card\"") + !!strstr(tr, "\"I forgot my PIN\"");
    assert_int_equal(st.test_leaked, leak);
    /* rare (2 rows) and single (1 row) labels are in train */
    assert_non_null(strstr(tr, "\"label\":\"rare\""));
    assert_non_null(strstr(tr, "\"label\":\"single\""));
    free(tr);
    slm_data_stats_free(&st);
    char *te = read_text(out, "test.jsonl");
    assert_int_equal(count_lines(te), 3);
    free(te);
    assert_card_adds_up(out);
    o.n_shares = 3;
    o.shares[0] = 0.8, o.shares[1] = 0.1, o.shares[2] = 0.1;
    slm_err e;
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_ARG);
    slm_data_stats_free(&st);
}

/* ---- held-out labels (open-set evaluation) ---- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* 4 labels; a duplicate (of a pin row, dropped) and an empty row (dropped) keep the counts honest */
static const char hold_train[] =
    "text,label\n"
    "what is my balance,balance\n"
    "show my balance please,balance\n"
    "balance on savings,balance\n"
    "how much money do I have,balance\n"
    "card has not arrived,card\n"
    "where is my new card,card\n"
    "card delivery is late,card\n"
    "track my card,card\n"
    "how do I reset my pin,pin\n"
    "I forgot my PIN,pin\n"
    "pin locked after three tries,pin\n"
    "how do I reset my pin,pin\n"
    "change my pin online,pin\n"
    "send money to a friend,transfer\n"
    "transfer to another bank,transfer\n"
    ",transfer\n"
    "my transfer is pending,transfer\n"
    "cancel a transfer,transfer\n";
static const char hold_test[] =
    "text,label\n"
    "balance right now,balance\n"
    "new pin please,pin\n"
    "pin blocked,pin\n"
    "card still missing,card\n"
    "transfer failed,transfer\n";

/* Parses every line of DIR/NAME as a classify record (as slm eval --data/--ood reads them); returns
 * the number of lines and counts in *n_label those whose label is `label`. */
static long read_labels(const char *dir, const char *name, const char *label, long *n_label) {
    char *d = read_text(dir, name);
    assert_non_null(d);
    slm_data_keys k = {"text", "label", "prompt", "completion", "messages"};
    long n = 0;
    *n_label = 0;
    for (char *line = d, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        slm_data_record r;
        char why[200];
        slm_data_task t = SLM_TASK_CLASSIFY;
        assert_int_equal(slm_jsonl_parse(line, (size_t)(nl - line), &t, &k, &r, why, sizeof why), SLM_OK);
        n++;
        *n_label += !strcmp(r.label, label);
        slm_data_record_free(&r);
    }
    free(d);
    return n;
}

static void test_hold_out_label_goes_to_ood(void **state) {
    (void)state;
    const char *in = tu_tmp_path("hold_train.csv"), *te = tu_tmp_path("hold_test.csv");
    const char *out = tu_tmp_path("hold_out");
    write_file(in, hold_train);
    write_file(te, hold_test);
    slm_data_prepare_opts o;
    opts_for(&o, in, out);
    o.test_path = te;
    o.shares[0] = 0.5, o.shares[1] = 0.5;
    o.hold_out = " pin ,pin"; /* names are trimmed, a repeat counts once */
    slm_data_stats st;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.n_held, 1);
    assert_string_equal(st.held[0], "pin");
    assert_int_equal(st.n_labels, 3);
    assert_int_equal(st.main.rows_read, 18);
    assert_int_equal(st.main.dropped_duplicate, 1);
    assert_int_equal(st.main.dropped_empty, 1);
    assert_int_equal(st.ood_rows, 4); /* 5 pin rows, one a duplicate */
    assert_int_equal(st.split_rows[0] + st.split_rows[1], 12);
    assert_int_equal(st.ood_test_rows, 2);
    assert_int_equal(st.test_rows, 3);
    assert_int_equal(st.held_counts[0], 4);
    assert_int_equal(st.held_counts[1], 2);
    assert_int_equal(st.n_unseen, 0);
    slm_data_stats_free(&st);
    /* exactly the pin rows (input and test) in ood.jsonl, none anywhere else */
    long n_pin;
    assert_int_equal(read_labels(out, "ood.jsonl", "pin", &n_pin), 6);
    assert_int_equal(n_pin, 6);
    char *ood = read_text(out, "ood.jsonl");
    assert_non_null(strstr(ood, "{\"text\":\"I forgot my PIN\",\"label\":\"pin\"}"));
    assert_non_null(strstr(ood, "{\"text\":\"pin blocked\",\"label\":\"pin\"}"));
    free(ood);
    static const char *const splits[3] = {"train.jsonl", "val.jsonl", "test.jsonl"};
    long rows = 0;
    for (int k = 0; k < 3; k++) {
        rows += read_labels(out, splits[k], "pin", &n_pin);
        assert_int_equal(n_pin, 0);
    }
    assert_int_equal(rows, 12 + 3);
    char *labels = read_text(out, "labels.txt");
    assert_string_equal(labels, "balance\ncard\ntransfer\n");
    free(labels);
    assert_card_adds_up(out);
    char path[1024];
    snprintf(path, sizeof path, "%s/card.json", out);
    cJSON *card = read_json(path);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(card, "held_out");
    assert_non_null(h);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(h, "chosen")->valuestring, "given");
    const cJSON *hl = cJSON_GetObjectItemCaseSensitive(h, "labels");
    assert_int_equal(cJSON_GetArraySize(hl), 1);
    assert_string_equal(cJSON_GetArrayItem(hl, 0)->valuestring, "pin");
    assert_int_equal(jnum(h, "rows"), 6);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(card, "labels")), 3);
    cJSON_Delete(card);

    /* a label only the test file has can be held out: its rows leave test.jsonl */
    const char *te2 = tu_tmp_path("hold_test2.csv"), *out2 = tu_tmp_path("hold_out2");
    write_file(te2, "text,label\nwhat is the fx rate,exchange\nsend abroad,transfer\n");
    o.test_path = te2;
    o.out_dir = out2;
    o.hold_out = "exchange";
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.n_labels, 4);
    assert_int_equal(st.ood_rows, 0);
    assert_int_equal(st.ood_test_rows, 1);
    assert_int_equal(st.test_rows, 1);
    assert_int_equal(st.n_unseen, 0);
    slm_data_stats_free(&st);
    assert_card_adds_up(out2);
}

static void test_hold_out_random_is_seeded(void **state) {
    (void)state;
    const char *in = tu_tmp_path("hold_train.csv"), *out = tu_tmp_path("hold_rand");
    write_file(in, hold_train);
    /* the same rows in another order: the choice depends on the label set only */
    const char *in_rev = tu_tmp_path("hold_train_rev.csv");
    {
        char buf[sizeof hold_train], rev[sizeof hold_train] = "text,label\n";
        memcpy(buf, hold_train, sizeof buf);
        char *lines[32];
        int n = 0;
        for (char *l = strchr(buf, '\n') + 1; *l; l = strchr(l, '\n') + 1) lines[n++] = l;
        for (int i = n - 1; i >= 0; i--) strncat(rev, lines[i], (size_t)(strchr(lines[i], '\n') - lines[i] + 1));
        write_file(in_rev, rev);
    }
    slm_data_prepare_opts o;
    opts_for(&o, in, out);
    o.shares[0] = 0.5, o.shares[1] = 0.5;
    o.hold_out_random = 2;
    o.seed = 7;
    slm_data_stats a, b, c;
    TU_OK(slm_data_prepare(&o, &a, tu_err()));
    assert_int_equal(a.n_held, 2);
    assert_int_equal(a.n_labels, 2);
    assert_true(strcmp(a.held[0], a.held[1]) < 0);
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < a.n_labels; l++) assert_string_not_equal(a.held[h], a.labels[l]);
    assert_int_equal(a.ood_rows + a.split_rows[0] + a.split_rows[1], 16);
    assert_card_adds_up(out);
    o.inputs[0] = in_rev;
    TU_OK(slm_data_prepare(&o, &b, tu_err()));
    assert_int_equal(b.n_held, 2);
    assert_string_equal(a.held[0], b.held[0]);
    assert_string_equal(a.held[1], b.held[1]);
    slm_data_stats_free(&b);
    o.out_dir = tu_tmp_path("hold_rand_other");
    int differs = 0;
    for (uint64_t seed = 1; seed <= 20 && !differs; seed++) {
        if (seed == 7) continue;
        o.seed = seed;
        TU_OK(slm_data_prepare(&o, &c, tu_err()));
        differs = strcmp(a.held[0], c.held[0]) || strcmp(a.held[1], c.held[1]);
        slm_data_stats_free(&c);
    }
    assert_true(differs);
    slm_data_stats_free(&a);
    char path[1024];
    snprintf(path, sizeof path, "%s/card.json", out);
    cJSON *card = read_json(path);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(card, "held_out");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(h, "chosen")->valuestring, "random");
    assert_int_equal(jnum(cJSON_GetObjectItemCaseSensitive(card, "options"), "hold_out_random"), 2);
    cJSON_Delete(card);
}

static void test_hold_out_errors_name_the_labels(void **state) {
    (void)state;
    const char *in = tu_tmp_path("hold_train.csv"), *out = tu_tmp_path("hold_err");
    write_file(in, hold_train);
    slm_data_prepare_opts o;
    opts_for(&o, in, out);
    o.shares[0] = 0.5, o.shares[1] = 0.5;
    slm_data_stats st;
    slm_err e;
    o.hold_out = "pin,loans";
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_ARG);
    slm_data_stats_free(&st);
    assert_non_null(strstr(e.msg, "'loans'"));
    assert_non_null(strstr(e.msg, "balance, card, pin, transfer")); /* the labels there are */
    o.hold_out = "transfer,pin,card,balance";
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_ARG);
    slm_data_stats_free(&st);
    assert_non_null(strstr(e.msg, "every label"));
    assert_non_null(strstr(e.msg, "balance, card, pin, transfer"));
    o.hold_out = "transfer,pin,card";
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_ARG);
    slm_data_stats_free(&st);
    assert_non_null(strstr(e.msg, "only the label 'balance'"));
    o.hold_out = "pin,,card";
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_ARG);
    slm_data_stats_free(&st);
    assert_non_null(strstr(e.msg, "empty label name"));
    o.hold_out = NULL;
    o.hold_out_random = 4;
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_ARG);
    slm_data_stats_free(&st);
    assert_non_null(strstr(e.msg, "every label"));
    o.hold_out_random = 3;
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_ARG);
    slm_data_stats_free(&st);
    assert_non_null(strstr(e.msg, "at least 2 must remain"));
    o.hold_out = "pin";
    o.hold_out_random = 1;
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_ARG);
    slm_data_stats_free(&st);
    /* no labels to hold out in generate data */
    o.hold_out_random = 0;
    o.inputs[0] = FIX "generate.jsonl";
    assert_int_equal(slm_data_prepare(&o, &st, &e), SLM_ERR_ARG);
    slm_data_stats_free(&st);
    assert_non_null(strstr(e.msg, "classify"));
    /* nothing was written by any of these */
    char *tr = read_text(out, "train.jsonl");
    assert_null(tr);
}

/* ---- Banking77 ---- */

static void test_banking77(void **state) {
    (void)state;
    const char *out1 = tu_tmp_path("bank1"), *out2 = tu_tmp_path("bank2"), *out3 = tu_tmp_path("bank3");
    slm_data_prepare_opts o;
    opts_for(&o, "data/banking77/train.csv", out1);
    o.keys.label = "category";
    o.test_path = "data/banking77/test.csv";
    slm_data_stats st;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    assert_int_equal(st.main.rows_read, 10003);
    assert_int_equal(st.main.malformed, 0);
    assert_int_equal(st.n_labels, 77);
    long kept = st.split_rows[0] + st.split_rows[1];
    assert_int_equal(st.main.rows_read, st.main.dropped_duplicate + st.main.dropped_empty + kept);
    for (int l = 0; l < st.n_labels; l++) {
        long tr = st.label_counts[l * SLM_SPLIT_MAX], va = st.label_counts[l * SLM_SPLIT_MAX + 1];
        double want = 0.1 * (double)(tr + va);
        assert_true(va >= want - 1 && va <= want + 1);
    }
    assert_int_equal(st.test.rows_read, 3080);
    assert_int_equal(st.test_rows, 3080);
    assert_int_equal(st.n_unseen, 0);
    slm_data_stats_free(&st);
    assert_card_adds_up(out1);
    cJSON *card = read_json(tu_tmp_path("bank1/card.json"));
    const cJSON *in0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(card, "inputs"), 0);
    assert_int_equal(jnum(in0, "bytes"), 839073);
    assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(in0, "sha256")->valuestring), 64);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(card, "labels")), 77);
    cJSON_Delete(card);

    o.out_dir = out2;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    slm_data_stats_free(&st);
    o.out_dir = out3;
    o.seed = 2;
    TU_OK(slm_data_prepare(&o, &st, tu_err()));
    slm_data_stats_free(&st);
    char *v1 = read_text(out1, "val.jsonl"), *v2 = read_text(out2, "val.jsonl"), *v3 = read_text(out3, "val.jsonl");
    char *t1 = read_text(out1, "train.jsonl"), *t2 = read_text(out2, "train.jsonl");
    assert_string_equal(v1, v2);
    assert_string_equal(t1, t2);
    assert_string_not_equal(v1, v3);
    free(v1), free(v2), free(v3), free(t1), free(t2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_csv_edge_cases),
        cmocka_unit_test(test_csv_unterminated_quote),
        cmocka_unit_test(test_prepare_csv_reports_malformed_rows),
        cmocka_unit_test(test_on_error_fail_names_file_line_and_writes_nothing),
        cmocka_unit_test(test_jsonl_shapes_and_errors),
        cmocka_unit_test(test_prepare_jsonl_bad_lines_counted),
        cmocka_unit_test(test_prepare_generate_and_chat),
        cmocka_unit_test(test_whitespace_normalisation),
        cmocka_unit_test(test_dedup_empty_length_and_pii_in_pipeline),
        cmocka_unit_test(test_pii_positives_and_negatives),
        cmocka_unit_test(test_split_stratified_deterministic),
        cmocka_unit_test(test_official_test_file_and_leakage),
        cmocka_unit_test(test_hold_out_label_goes_to_ood),
        cmocka_unit_test(test_hold_out_random_is_seeded),
        cmocka_unit_test(test_hold_out_errors_name_the_labels),
        cmocka_unit_test(test_banking77),
    };
    return cmocka_run_group_tests_name("data", tests, NULL, NULL);
}
