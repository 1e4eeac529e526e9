/* test_tokenizer.c: the byte-level BPE tokenizer — GPT-2's byte mapping and pre-split, every line
 * of llama.cpp's GPT-2 test vectors, round trips of arbitrary bytes, training (hand-derived
 * merges, determinism, special tokens), GGUF save/load, and the errors. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "tokenizer/tokenizer_internal.h"
#include "util/testutil.h"
#include "util/vocab_vectors.h"

#define GPT2_VOCAB "data/tokenizer-vectors/ggml-vocab-gpt-2.gguf"
#define SHAKESPEARE "data/tinyshakespeare/input.txt"

/* ---- helpers ---- */

static slm_tokenizer *gpt2(void) {
    static slm_tokenizer *t;
    if (!t) {
        t = slm_tokenizer_load_file(GPT2_VOCAB, tu_err());
        if (!t) fail_msg("loading %s: %s", GPT2_VOCAB, tu_err_last());
    }
    return t;
}

static char *read_file(const char *path, size_t *len) {
    char *data;
    if (slm_file_read_all(path, &data, len, tu_err()) != SLM_OK) fail_msg("%s", tu_err_last());
    return data;
}

static slm_tokenizer *train(const char *text, size_t len, int vocab) {
    slm_tokenizer_train_opts o = {.vocab_size = vocab};
    slm_tokenizer *t = NULL;
    TU_OK(slm_tokenizer_train(text, len, &o, &t, tu_err()));
    assert_non_null(t);
    return t;
}

static slm_tokenizer *trained_shakespeare(void) {
    static slm_tokenizer *t;
    if (!t) {
        size_t len;
        char *text = read_file(SHAKESPEARE, &len);
        t = train(text, len > 300000 ? 300000 : len, 1024);
        free(text);
    }
    return t;
}

/* Encodes and decodes text; fails unless the bytes come back exactly. Returns the id count. */
static size_t round_trip(const slm_tokenizer *t, const char *text, size_t len) {
    int32_t *ids;
    size_t n;
    TU_OK(slm_tokenizer_encode(t, text, len, 0, &ids, &n, tu_err()));
    char *back;
    size_t blen;
    TU_OK(slm_tokenizer_decode(t, ids, n, &back, &blen, tu_err()));
    if (blen != len || memcmp(back, text, len)) {
        size_t i = 0;
        while (i < len && i < blen && back[i] == text[i]) i++;
        fail_msg("round trip of %zu bytes gave %zu bytes, first difference at byte %zu", len, blen, i);
    }
    free(back);
    free(ids);
    return n;
}

/* Random bytes with the hard cases mixed in: invalid UTF-8, NUL, runs of spaces and newlines,
 * multi-byte characters, apostrophes, digits. */
static size_t random_text(slm_rng *r, char *buf, size_t cap) {
    static const char *frags[] = {
        " ", "  ", "\n", "\n\n", "\t", "'s", "'ll", "the", " The", "42", " 3.14", "\xc3\xa9",
        "\xe2\x82\xac", "\xf0\x9f\xa6\x99", "\xff", "\xc3", "\xe2\x82", "\x80", "<|eos|>",
        "<|endoftext|>", "\r\n", "\xc2\x85", "\xe3\x80\x80", "!!", "...", "\0",
    };
    size_t n = slm_rng_below(r, (uint32_t)cap), k = 0;
    while (k < n) {
        uint32_t what = slm_rng_below(r, 10);
        if (what < 4) {
            buf[k++] = (char)slm_rng_below(r, 256);
        } else if (what < 8) {
            const char *f = frags[slm_rng_below(r, sizeof frags / sizeof frags[0])];
            size_t fl = f[0] ? strlen(f) : 1;
            for (size_t i = 0; i < fl && k < n; i++) buf[k++] = f[i];
        } else {
            char c = "  \n a-zA-Z0"[slm_rng_below(r, 11)];
            size_t run = slm_rng_below(r, 40);
            for (size_t i = 0; i < run && k < n; i++) buf[k++] = c;
        }
    }
    return n;
}

/* ---- byte mapping and pre-split ---- */

static void test_byte_unicode_mapping(void **state) {
    (void)state;
    int seen[0x200] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t cp = slm_bu_byte_to_cp((uint8_t)b);
        assert_true(cp < 0x144);
        assert_int_equal(seen[cp]++, 0);
        assert_int_equal(slm_bu_cp_to_byte(cp), b);
        char raw = (char)b, mapped[2], back[2];
        size_t n = slm_bu_encode(&raw, 1, mapped);
        assert_int_equal(slm_bu_decode(mapped, n, back), 1);
        assert_int_equal((uint8_t)back[0], b);
    }
    assert_int_equal(slm_bu_byte_to_cp(' '), 0x120);   /* 'Ġ' */
    assert_int_equal(slm_bu_byte_to_cp('\n'), 0x10A);  /* 'Ċ' */
    assert_int_equal(slm_bu_byte_to_cp(0xAD), 0x143);
    assert_int_equal(slm_bu_byte_to_cp('A'), 'A');
    assert_int_equal(slm_bu_byte_to_cp(0xE9), 0xE9);
    char out[8];
    assert_int_equal(slm_bu_decode("\xc4\xa0the", 5, out), 4);
    assert_memory_equal(out, " the", 4);
    assert_int_equal(slm_bu_decode("\xc5\x84", 2, out), -1);        /* U+0144: outside */
    assert_int_equal(slm_bu_decode("\xe2\x82\xac", 3, out), -1);    /* 3-byte character */
    assert_int_equal(slm_bu_decode(" ", 1, out), -1);               /* space is never stored */
    assert_int_equal(slm_bu_decode("\xc4", 1, out), -1);            /* truncated */
}

/* Splits text with the pre-splitter into "|"-joined pieces (for comparing with expectations). */
static void split_kind(slm_pre_kind kind, const char *text, size_t len, char *out, size_t cap) {
    slm_pretok *p = slm_pretok_new_kind(kind, tu_err());
    assert_non_null(p);
    slm_pretok_iter it;
    TU_OK(slm_pretok_iter_init(&it, p, text, len, tu_err()));
    size_t k = 0, start, n, expect = 0;
    int rc;
    while ((rc = slm_pretok_iter_next(&it, &start, &n, tu_err())) > 0) {
        assert_int_equal(start, expect);
        assert_true(n > 0);
        expect = start + n;
        if (k) out[k++] = '|';
        assert_true(k + n + 2 < cap);
        memcpy(out + k, text + start, n);
        k += n;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(expect, len);
    out[k] = 0;
    slm_pretok_iter_done(&it);
    slm_pretok_free(p);
}

static void split_joined(const char *text, size_t len, char *out, size_t cap) {
    split_kind(SLM_PRE_GPT2, text, len, out, cap);
}

static void test_pretokenize_splits_like_gpt2(void **state) {
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        {"Hello world", "Hello| world"},
        {"I'm here, they'll go", "I|'m| here|,| they|'ll| go"},
        {"'RE 'Ve", "'|RE| '|Ve"},                       /* contractions are lower case only */
        {"a  b", "a| | b"},                              /* \s+(?!\S) leaves the last space */
        {"a \tb", "a| |\t|b"},                           /* ... the final \s+ takes the tab */
        {"x  \n", "x|  \n"},
        {"    Hello\n    Hello", "   | Hello|\n   | Hello"},
        {"3333 12.5", "3333| 12|.|5"},
        {"!!!??", "!!!??"},
        {"\xd0\xbd\xd0\xb5 \xe2\x82\xac" "5", "\xd0\xbd\xd0\xb5| \xe2\x82\xac|5"},
        {"a\xc2\x85" "b", "a|\xc2\x85|b"},               /* U+0085 is White_Space */
        {"a\xe1\xa0\x8e" "b", "a|\xe1\xa0\x8e|b"},      /* U+180E is not White_Space */
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        split_joined(cases[i].in, strlen(cases[i].in), out, sizeof out);
        if (strcmp(out, cases[i].want)) fail_msg("split '%s' gave '%s', want '%s'", cases[i].in, out, cases[i].want);
    }
}

static void expect_ids(const slm_tokenizer *t, const char *text, const int32_t *want, size_t nw);

/* The other pre-split rules, on strings whose splits follow by hand from each regex (see
 * pretokenize.c). Columns: GPT-2, Llama 3 ("llama-bpe"), Qwen2, SmolLM. */
static void test_pretokenize_other_rules(void **state) {
    (void)state;
    static const struct { const char *in, *want[4]; } cases[] = {
        /* digits: one run / groups of 1-3 from the left / one each / one each, space apart */
        {"x 1234567", {"x| 1234567", "x| |123|456|7", "x| |1|2|3|4|5|6|7", "x| |1|2|3|4|5|6|7"}},
        {"a  1", {"a| | 1", "a| | |1", "a| | |1", "a|  |1"}},
        {"v2.10", {"v|2|.|10", "v|2|.|10", "v|2|.|1|0", "v|2|.|1|0"}},
        /* contractions: lower case only in GPT-2 and SmolLM, either case in Llama 3 / Qwen2 */
        {"I'LL don't", {"I|'|LL| don|'t", "I|'LL| don|'t", "I|'LL| don|'t", "I|'|LL| don|'t"}},
        {"we'Re", {"we|'|Re", "we|'Re", "we|'Re", "we|'|Re"}},
        /* a letter run takes one non-letter, non-digit, non-newline character before it */
        {"(hello) 	bye", {"(|hello|)| |	|bye", "(hello|)| |	bye", "(hello|)| |	bye",
                           "(|hello|)| |	|bye"}},
        /* newlines: \s*[\r\n]+ keeps them together, punctuation takes those after it */
        {"a\n\n  b", {"a|\n\n | b", "a|\n\n| | b", "a|\n\n| | b", "a|\n\n | b"}},
        {"hi!!\n\nthere", {"hi|!!|\n|\n|there", "hi|!!\n\n|there", "hi|!!\n\n|there",
                           "hi|!!|\n|\n|there"}},
        {"x \r\n y", {"x| \r\n| y", "x| \r\n| y", "x| \r\n| y", "x| \r\n| y"}},
        /* whitespace runs before a word leave their last space to it */
        {"a   b", {"a|  | b", "a|  | b", "a|  | b", "a|  | b"}},
        /* CJK letters are letters; full-width punctuation is punctuation */
        {"\xe6\x88\x91\xe6\x98\xaf \xe4\xb8\xad\xe6\x96\x87\xe3\x80\x82ok",
         {"\xe6\x88\x91\xe6\x98\xaf| \xe4\xb8\xad\xe6\x96\x87|\xe3\x80\x82|ok",
          "\xe6\x88\x91\xe6\x98\xaf| \xe4\xb8\xad\xe6\x96\x87|\xe3\x80\x82ok",
          "\xe6\x88\x91\xe6\x98\xaf| \xe4\xb8\xad\xe6\x96\x87|\xe3\x80\x82ok",
          "\xe6\x88\x91\xe6\x98\xaf| \xe4\xb8\xad\xe6\x96\x87|\xe3\x80\x82|ok"}},
        /* punctuation runs */
        {"...?! ok", {"...?!| ok", "...?!| ok", "...?!| ok", "...?!| ok"}},
        {" ...x", {" ...|x", " ...|x", " ...|x", " ...|x"}},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int k = 0; k < 4; k++) {
            split_kind((slm_pre_kind)k, cases[i].in, strlen(cases[i].in), out, sizeof out);
            if (strcmp(out, cases[i].want[k]))
                fail_msg("rule %d split '%s' gave '%s', want '%s'", k, cases[i].in, out,
                         cases[i].want[k]);
        }
    /* every byte lands in one piece under every rule */
    slm_rng r;
    slm_rng_seed(&r, 11, 1);
    static char buf[2048], joined[3 * 2048];
    for (int rep = 0; rep < 100; rep++) {
        size_t n = random_text(&r, buf, sizeof buf);
        for (int k = 0; k < 4; k++) split_kind((slm_pre_kind)k, buf, n, joined, sizeof joined);
    }
    /* names, as llama.cpp maps them */
    slm_pre_info info;
    assert_true(slm_pretok_lookup("llama-bpe", 9, &info));
    assert_int_equal(info.kind, SLM_PRE_LLAMA3);
    assert_true(info.ignore_merges && info.add_bos);
    assert_true(slm_pretok_lookup("qwen2", 5, &info));
    assert_int_equal(info.kind, SLM_PRE_QWEN2);
    assert_false(info.ignore_merges || info.add_bos);
    assert_true(slm_pretok_lookup("smollm", 6, &info));
    assert_int_equal(info.kind, SLM_PRE_SMOLLM);
    assert_true(slm_pretok_lookup("gpt-2", 5, &info));
    assert_int_equal(info.kind, SLM_PRE_GPT2);
    assert_false(slm_pretok_lookup("deepseek-coder", 14, &info));
    assert_false(slm_pretok_lookup("llama", 5, &info));
}

/* llama-bpe through a GGUF: its regex, ignore_merges (a piece that is a token is taken whole,
 * even when no merge builds it) and add_bos defaulting to true. */
static void test_llama3_vocabulary_from_gguf(void **state) {
    (void)state;
    const char *path = tu_tmp_path("llama3.gguf");
    for (int qwen = 0; qwen < 2; qwen++) {
        slm_gguf_writer *w = slm_gguf_writer_new();
        assert_non_null(w);
        /* tokens: a b c 1 2 3 abc ab Ġ 12 123 <|begin_of_text|> */
        const char *toks[] = {"a", "b", "c", "1", "2", "3", "abc", "ab", "\xc4\xa0", "12", "123",
                              "<|begin_of_text|>"};
        int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3};
        const char *merges[] = {"a b", "1 2"};
        TU_OK(slm_gguf_set_str(w, "tokenizer.ggml.model", "gpt2"));
        TU_OK(slm_gguf_set_str(w, "tokenizer.ggml.pre", qwen ? "qwen2" : "llama-bpe"));
        TU_OK(slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 12));
        TU_OK(slm_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, 12));
        TU_OK(slm_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 2));
        TU_OK(slm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 11));
        TU_OK(slm_gguf_writer_write(w, path, tu_err()));
        slm_gguf_writer_free(w);
        slm_tokenizer *t = slm_tokenizer_load_file(path, tu_err());
        if (!t) fail_msg("%s", tu_err_last());
        assert_string_equal(slm_tokenizer_pre_name(t), qwen ? "qwen2" : "llama-bpe");
        if (!qwen) {
            assert_int_equal(slm_tokenizer_add_bos_default(t), 1);
            /* "abc" is a token: taken whole; "123" too (llama3 keeps 3 digits together) */
            expect_ids(t, "abc", (const int32_t[]){6}, 1);
            expect_ids(t, "1233", (const int32_t[]){10, 5}, 2);
        } else {
            assert_int_equal(slm_tokenizer_add_bos_default(t), 0);
            /* merges only: a+b, then c; digits one by one */
            expect_ids(t, "abc", (const int32_t[]){7, 2}, 2);
            expect_ids(t, "123", (const int32_t[]){3, 4, 5}, 3);
        }
        slm_tokenizer_free(t);
    }
}

static void test_pretokenize_covers_invalid_utf8(void **state) {
    (void)state;
    char out[256];
    split_joined("ab\xff\xfe cd\xe2\x82 x\xc3", 12, out, sizeof out);
    assert_string_equal(out, "ab|\xff\xfe| cd|\xe2\x82| x|\xc3");
    split_joined("\x80", 1, out, sizeof out);
    assert_string_equal(out, "\x80");
    split_joined("a\0b", 3, out, sizeof out); /* NUL is punctuation-like: its own piece */
    assert_memory_equal(out, "a|\0|b", 5);
    /* random bytes: every byte in exactly one piece, in order (split_joined checks) */
    slm_rng r;
    slm_rng_seed(&r, 7, 1);
    static char buf[4096], joined[3 * 4096];
    for (int rep = 0; rep < 300; rep++) {
        size_t n = random_text(&r, buf, sizeof buf);
        split_joined(buf, n, joined, sizeof joined);
    }
}

/* ---- llama.cpp's GPT-2 vectors ---- */

static void round_trip_each(const slm_tokenizer *t, const char *text, size_t len) {
    round_trip(t, text, len);
}

static void test_gpt2_vectors_every_line(void **state) {
    (void)state;
    const slm_tokenizer *t = gpt2();
    assert_int_equal(slm_tokenizer_n_vocab(t), 50257);
    assert_int_equal(slm_tokenizer_bos(t), 50256);
    assert_int_equal(slm_tokenizer_eos(t), 50256);
    assert_int_equal(slm_tokenizer_unk(t), -1);
    int failed;
    int line = tu_vocab_vectors(t, GPT2_VOCAB, round_trip_each, &failed);
    assert_int_equal(line, 46);
    if (failed) fail_msg("%d of %d GPT-2 vectors differ (listed above)", failed, line);
}

static void test_gpt2_known_ids_and_special_text(void **state) {
    (void)state;
    const slm_tokenizer *t = gpt2();
    int32_t *ids;
    size_t n;
    TU_OK(slm_tokenizer_encode(t, "Hello world", 11, 1, &ids, &n, tu_err()));
    assert_int_equal(n, 3); /* add_bos puts BOS first */
    assert_int_equal(ids[0], 50256);
    assert_int_equal(ids[1], 15496);
    assert_int_equal(ids[2], 995);
    free(ids);
    /* the control token's text in the input is ordinary text */
    const char *s = "<|endoftext|>";
    TU_OK(slm_tokenizer_encode(t, s, strlen(s), 0, &ids, &n, tu_err()));
    assert_true(n > 1);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(ids[i], 50256);
    free(ids);
    size_t len;
    const char *b = slm_tokenizer_token_bytes(t, 50256, &len);
    assert_non_null(b);
    assert_int_equal(len, 0); /* control tokens decode to nothing */
    b = slm_tokenizer_token_bytes(t, 220, &len);
    assert_int_equal(len, 1);
    assert_int_equal(b[0], ' ');
    b = slm_tokenizer_token_text(t, 220, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(b, "\xc4\xa0", 2);
    assert_int_equal(slm_tokenizer_token_type(t, 50256), SLM_TOKEN_CONTROL);
    assert_int_equal(slm_tokenizer_token_type(t, 50257), 0);
    assert_int_equal(slm_tokenizer_n_merges(t), 50000);
}

/* The two merge paths (rescan for short pieces, heap for long ones) agree on long pieces. */
static void test_heap_and_scan_paths_agree(void **state) {
    (void)state;
    const slm_tokenizer *t = gpt2();
    slm_rng r;
    slm_rng_seed(&r, 11, 2);
    static char piece[3000];
    slm_tok_work w = {0};
    for (int rep = 0; rep < 200; rep++) {
        size_t n = 2 + slm_rng_below(&r, sizeof piece - 2);
        const char *alpha = rep % 3 == 0 ? "ab" : rep % 3 == 1 ? "etaoinshrdlu" : " ";
        size_t na = strlen(alpha);
        for (size_t i = 0; i < n; i++) piece[i] = alpha[slm_rng_below(&r, (uint32_t)na)];
        if (rep % 5 == 0)
            for (size_t i = 0; i < n; i++) piece[i] = (char)slm_rng_below(&r, 256);
        slm_tok_ids a = {0}, b = {0};
        TU_OK(slm_tok_encode_piece(t, &w, (const uint8_t *)piece, n, 2, &a));
        TU_OK(slm_tok_encode_piece(t, &w, (const uint8_t *)piece, n, SIZE_MAX, &b));
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.v, b.v, a.n * sizeof *a.v);
        free(a.v);
        free(b.v);
    }
    slm_tok_work_free(&w);
}

/* ---- round trips ---- */

static void round_trip_random(const slm_tokenizer *t, uint64_t seed) {
    slm_rng r;
    slm_rng_seed(&r, seed, 3);
    static char buf[8192];
    for (int rep = 0; rep < 200; rep++) {
        size_t n = random_text(&r, buf, sizeof buf);
        round_trip(t, buf, n);
    }
    /* long runs: a megabyte of spaces and of newlines go through the heap path */
    size_t big = 1 << 20;
    char *s = malloc(big);
    assert_non_null(s);
    memset(s, ' ', big);
    round_trip(t, s, big);
    memset(s, '\n', big);
    round_trip(t, s, big);
    for (size_t i = 0; i < big; i++) s[i] = (char)(i * 7919 % 251); /* every byte value */
    round_trip(t, s, big);
    free(s);
    round_trip(t, "", 0);
}

static void test_round_trip_gpt2(void **state) {
    (void)state;
    round_trip_random(gpt2(), 1);
}

static void test_round_trip_trained(void **state) {
    (void)state;
    round_trip_random(trained_shakespeare(), 2);
}

typedef struct {
    const slm_tokenizer *t;
    const char *text;
    size_t len;
    int32_t *ids;
    size_t n;
    slm_status st;
} enc_job;

static void *enc_thread(void *arg) {
    enc_job *j = arg;
    slm_err e;
    j->st = slm_tokenizer_encode(j->t, j->text, j->len, 0, &j->ids, &j->n, &e);
    return NULL;
}

static void test_encode_from_many_threads(void **state) {
    (void)state;
    size_t len;
    char *text = read_file(SHAKESPEARE, &len);
    len = 200000;
    const slm_tokenizer *toks[2] = {gpt2(), trained_shakespeare()};
    for (int k = 0; k < 2; k++) {
        int32_t *ref;
        size_t nref;
        TU_OK(slm_tokenizer_encode(toks[k], text, len, 0, &ref, &nref, tu_err()));
        enum { NT = 4 };
        pthread_t th[NT];
        enc_job jobs[NT];
        for (int i = 0; i < NT; i++) {
            jobs[i] = (enc_job){toks[k], text, len, NULL, 0, SLM_ERR_ARG};
            assert_int_equal(pthread_create(&th[i], NULL, enc_thread, &jobs[i]), 0);
        }
        for (int i = 0; i < NT; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(jobs[i].st, SLM_OK);
            assert_int_equal(jobs[i].n, nref);
            assert_memory_equal(jobs[i].ids, ref, nref * sizeof *ref);
            free(jobs[i].ids);
        }
        free(ref);
    }
    free(text);
}

/* ---- training ---- */

static void expect_ids(const slm_tokenizer *t, const char *text, const int32_t *want, size_t nw) {
    int32_t *ids;
    size_t n;
    TU_OK(slm_tokenizer_encode(t, text, strlen(text), 0, &ids, &n, tu_err()));
    if (n != nw || memcmp(ids, want, n * sizeof *ids)) {
        char got[512] = "";
        for (size_t i = 0, k = 0; i < n && k < 400; i++)
            k += (size_t)snprintf(got + k, sizeof got - k, " %d", ids[i]);
        fail_msg("encode '%s' gave%s", text, got);
    }
    free(ids);
}

static void expect_text(const slm_tokenizer *t, int32_t id, const char *want) {
    size_t len;
    const char *s = slm_tokenizer_token_text(t, id, &len);
    assert_non_null(s);
    if (len != strlen(want) || memcmp(s, want, len))
        fail_msg("token %d is '%.*s', want '%s'", id, (int)len, s, want);
}

static void test_train_hand_derived_merges(void **state) {
    (void)state;
    /* "aaabdaaabac" is one piece. Pairs: aa 4, ab 2, bd da ba ac 1.
     *  1. a+a -> 260 "aa":   aa a b d aa a b a c (left to right: "aaa" is "aa" "a")
     *  2. now aa+a and a+b both count 2; the tie goes to the lower ids: a+b -> 261 "ab"
     *  3. aa+ab -> 262 "aaab" (2): 262 d 262 a c                                          */
    slm_tokenizer *t = train("aaabdaaabac", 11, 263);
    assert_int_equal(slm_tokenizer_n_vocab(t), 263);
    assert_int_equal(slm_tokenizer_n_merges(t), 3);
    expect_text(t, 260, "aa");
    expect_text(t, 261, "ab");
    expect_text(t, 262, "aaab");
    const int32_t want[] = {262, 4 + 'd', 262, 4 + 'a', 4 + 'c'};
    expect_ids(t, "aaabdaaabac", want, 5);
    slm_tokenizer_free(t);

    /* through the pre-splitter: "ab ab ab" is "ab" " ab" " ab"; a+b (3) then Ġ+ab (2), then
     * nothing is left to merge, so training stops at 262 tokens though 300 were asked for */
    t = train("ab ab ab", 8, 300);
    assert_int_equal(slm_tokenizer_n_vocab(t), 262);
    expect_text(t, 260, "ab");
    expect_text(t, 261, "\xc4\xa0" "ab");
    const int32_t want2[] = {260, 261, 261, 4 + ' '};
    expect_ids(t, "ab ab ab ", want2, 4);
    slm_tokenizer_free(t);
}

static void test_train_long_piece_and_no_merges(void **state) {
    (void)state;
    /* one 10,000-byte piece "abab...": a+b (5000), then ab+ab (2500), then doubling while the
     * count allows: the merge runs left to right at every position of one long word */
    size_t n = 10000;
    char *text = malloc(n);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++) text[i] = "ab"[i % 2];
    slm_tokenizer *t = train(text, n, 265);
    char want[40];
    for (int k = 0; k < 5; k++) {
        size_t len = (size_t)2 << k;
        for (size_t i = 0; i < len; i++) want[i] = "ab"[i % 2];
        want[len] = 0;
        expect_text(t, 260 + k, want);
    }
    assert_true(round_trip(t, text, n) < 350);
    slm_tokenizer_free(t);
    /* 260 tokens: specials and bytes only; text encodes byte by byte */
    t = train(text, n, 260);
    assert_int_equal(slm_tokenizer_n_merges(t), 0);
    expect_ids(t, "hi!", (const int32_t[]){4 + 'h', 4 + 'i', 4 + '!'}, 3);
    assert_int_equal(round_trip(t, text, 100), 100);
    slm_tokenizer_free(t);
    /* empty text: nothing to learn, still a working byte-level tokenizer */
    t = train("", 0, 1000);
    assert_int_equal(slm_tokenizer_n_vocab(t), 260);
    assert_int_equal(round_trip(t, "\xff\x00x", 3), 3);
    slm_tokenizer_free(t);
    free(text);
}

static void test_train_vocab_and_special_ids(void **state) {
    (void)state;
    const slm_tokenizer *t = trained_shakespeare();
    assert_int_equal(slm_tokenizer_n_vocab(t), 1024);
    assert_int_equal(slm_tokenizer_unk(t), 0);
    assert_int_equal(slm_tokenizer_bos(t), 1);
    assert_int_equal(slm_tokenizer_eos(t), 2);
    assert_int_equal(slm_tokenizer_pad(t), 3);
    assert_int_equal(slm_tokenizer_add_bos_default(t), 1);
    const char *names[] = {"<|unk|>", "<|bos|>", "<|eos|>", "<|pad|>"};
    for (int i = 0; i < 4; i++) {
        expect_text(t, i, names[i]);
        assert_int_equal(slm_tokenizer_token_type(t, i), SLM_TOKEN_CONTROL);
    }
    for (int b = 0; b < 256; b++) {
        size_t len;
        const char *s = slm_tokenizer_token_bytes(t, 4 + b, &len);
        assert_int_equal(len, 1);
        assert_int_equal((uint8_t)s[0], b);
        assert_int_equal(slm_tokenizer_token_type(t, 4 + b), SLM_TOKEN_NORMAL);
    }
    /* English: the first merges are frequent pairs and the text compresses well */
    size_t len;
    char *text = read_file(SHAKESPEARE, &len);
    size_t n = round_trip(t, text, len);
    assert_true((double)len / (double)n > 2.2); /* about 2.4 bytes per token at 1024 */
    int32_t *ids;
    TU_OK(slm_tokenizer_encode(t, "ROMEO:", 6, 1, &ids, &n, tu_err()));
    assert_int_equal(ids[0], 1);
    free(ids);
    free(text);

    slm_tokenizer *bad = NULL;
    slm_tokenizer_train_opts o = {.vocab_size = 259};
    slm_err e;
    assert_int_equal(slm_tokenizer_train("abc", 3, &o, &bad, &e), SLM_ERR_ARG);
    assert_null(bad);
    assert_non_null(strstr(e.msg, "259"));
}

static void same_tokenizer(const slm_tokenizer *a, const slm_tokenizer *b) {
    assert_int_equal(slm_tokenizer_n_vocab(a), slm_tokenizer_n_vocab(b));
    assert_int_equal(slm_tokenizer_n_merges(a), slm_tokenizer_n_merges(b));
    for (int32_t i = 0; i < slm_tokenizer_n_vocab(a); i++) {
        size_t la, lb;
        const char *sa = slm_tokenizer_token_text(a, i, &la), *sb = slm_tokenizer_token_text(b, i, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(sa, sb, la);
        assert_int_equal(slm_tokenizer_token_type(a, i), slm_tokenizer_token_type(b, i));
    }
    assert_int_equal(slm_tokenizer_bos(a), slm_tokenizer_bos(b));
    assert_int_equal(slm_tokenizer_eos(a), slm_tokenizer_eos(b));
    assert_int_equal(slm_tokenizer_unk(a), slm_tokenizer_unk(b));
    assert_int_equal(slm_tokenizer_pad(a), slm_tokenizer_pad(b));
}

typedef struct {
    int calls, last_done, last_total, monotonic;
} progress_log;

static void on_progress(void *ctx, int done, int total) {
    progress_log *p = ctx;
    if (done < p->last_done) p->monotonic = 0;
    p->calls++;
    p->last_done = done;
    p->last_total = total;
}

static void test_train_deterministic_with_progress(void **state) {
    (void)state;
    size_t len;
    char *text = read_file(SHAKESPEARE, &len);
    len = 100000;
    progress_log pl = {0, 0, 0, 1};
    slm_tokenizer_train_opts o = {.vocab_size = 800, .progress = on_progress, .progress_ctx = &pl};
    slm_tokenizer *a, *b;
    TU_OK(slm_tokenizer_train(text, len, &o, &a, tu_err()));
    assert_true(pl.monotonic);
    assert_true(pl.calls >= 90 && pl.calls <= 110); /* about every 1% */
    assert_int_equal(pl.last_done, 800 - 260);
    assert_int_equal(pl.last_total, 800 - 260);
    o.progress = NULL;
    TU_OK(slm_tokenizer_train(text, len, &o, &b, tu_err()));
    same_tokenizer(a, b);
    /* max_bytes: training on the first 50,000 bytes is training on those bytes */
    slm_tokenizer_train_opts o2 = {.vocab_size = 600, .max_bytes = 50000};
    slm_tokenizer *c, *d;
    TU_OK(slm_tokenizer_train(text, len, &o2, &c, tu_err()));
    o2.max_bytes = 0;
    TU_OK(slm_tokenizer_train(text, 50000, &o2, &d, tu_err()));
    same_tokenizer(c, d);
    slm_tokenizer_free(a);
    slm_tokenizer_free(b);
    slm_tokenizer_free(c);
    slm_tokenizer_free(d);
    free(text);
}

static void test_train_never_builds_special_text(void **state) {
    (void)state;
    /* a corpus full of "<|eos|>": no token may spell it (llama.cpp would see a duplicate token,
     * and the input text would turn into the control token). GPT-2's pre-split already keeps
     * "<|", "eos" and "|>" apart; the trainer also refuses any merge that would spell one. */
    static char text[40000];
    const char *unit = "<|eos|> hi <|bos|>";
    size_t k = 0, ul = strlen(unit);
    while (k + ul < sizeof text) {
        memcpy(text + k, unit, ul);
        k += ul;
    }
    slm_tokenizer *t = train(text, k, 400);
    for (int32_t i = 4; i < slm_tokenizer_n_vocab(t); i++) {
        size_t len;
        const char *s = slm_tokenizer_token_text(t, i, &len);
        assert_false(len == 7 && (!memcmp(s, "<|eos|>", 7) || !memcmp(s, "<|bos|>", 7)));
    }
    int32_t *ids;
    size_t n;
    TU_OK(slm_tokenizer_encode(t, "<|eos|><|bos|><|pad|><|unk|>", 28, 0, &ids, &n, tu_err()));
    for (size_t i = 0; i < n; i++) assert_true(ids[i] >= 4);
    free(ids);
    round_trip(t, text, k);
    /* it saves and loads (no duplicate texts) */
    const char *path = tu_tmp_path("special.gguf");
    TU_OK(slm_tokenizer_save_file(t, path, tu_err()));
    slm_tokenizer *u = slm_tokenizer_load_file(path, tu_err());
    if (!u) fail_msg("%s", tu_err_last());
    same_tokenizer(t, u);
    slm_tokenizer_free(u);
    slm_tokenizer_free(t);
}

/* ---- GGUF ---- */

static void same_encodings(const slm_tokenizer *a, const slm_tokenizer *b, uint64_t seed) {
    slm_rng r;
    slm_rng_seed(&r, seed, 4);
    static char buf[8192];
    size_t len;
    char *text = read_file(SHAKESPEARE, &len);
    for (int rep = 0; rep < 60; rep++) {
        size_t n = rep == 0 ? len : random_text(&r, buf, sizeof buf);
        const char *s = rep == 0 ? text : buf;
        int32_t *ia, *ib;
        size_t na, nb;
        TU_OK(slm_tokenizer_encode(a, s, n, 0, &ia, &na, tu_err()));
        TU_OK(slm_tokenizer_encode(b, s, n, 0, &ib, &nb, tu_err()));
        assert_int_equal(na, nb);
        assert_memory_equal(ia, ib, na * sizeof *ia);
        free(ia);
        free(ib);
    }
    free(text);
}

static void test_save_load_round_trip(void **state) {
    (void)state;
    const slm_tokenizer *t = trained_shakespeare();
    /* into a writer with other keys, as a model file would */
    const char *path = tu_tmp_path("tok.gguf");
    slm_gguf_writer *w = slm_gguf_writer_new();
    assert_non_null(w);
    TU_OK(slm_gguf_set_str(w, "general.architecture", "llama"));
    TU_OK(slm_tokenizer_save(t, w, tu_err()));
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);

    slm_gguf *g = slm_gguf_open(path, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    slm_gguf_str s;
    TU_OK(slm_gguf_get_str(g, "tokenizer.ggml.model", &s, tu_err()));
    assert_true(slm_gguf_str_eq(s, "gpt2"));
    TU_OK(slm_gguf_get_str(g, "tokenizer.ggml.pre", &s, tu_err()));
    assert_true(slm_gguf_str_eq(s, "gpt-2"));
    bool add_bos = false;
    TU_OK(slm_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, tu_err()));
    assert_true(add_bos);
    const slm_gguf_kv *kv;
    TU_OK(slm_gguf_get_arr(g, "tokenizer.ggml.token_type", SLM_GGUF_INT32, &kv, tu_err()));
    assert_int_equal(kv->arr_n, 1024);
    TU_OK(slm_gguf_get_arr(g, "tokenizer.ggml.merges", SLM_GGUF_STRING, &kv, tu_err()));
    assert_int_equal(kv->arr_n, slm_tokenizer_n_merges(t));
    {   /* the first merge "left right" spells the first merged token */
        slm_gguf_str m0 = kv->arr_strs[0];
        const char *sp = memchr(m0.ptr + 1, ' ', m0.len - 1);
        assert_non_null(sp);
        char joined[64];
        size_t ln = (size_t)(sp - m0.ptr), rn = m0.len - ln - 1, tl;
        assert_true(ln + rn < sizeof joined);
        memcpy(joined, m0.ptr, ln);
        memcpy(joined + ln, sp + 1, rn);
        const char *t260 = slm_tokenizer_token_text(t, 260, &tl);
        assert_int_equal(tl, ln + rn);
        assert_memory_equal(t260, joined, tl);
    }
    uint32_t id;
    TU_OK(slm_gguf_get_u32(g, "tokenizer.ggml.padding_token_id", &id, tu_err()));
    assert_int_equal(id, 3);
    slm_tokenizer *u = slm_tokenizer_load(g, tu_err());
    if (!u) fail_msg("%s", tu_err_last());
    slm_gguf_close(g); /* the tokenizer keeps its own copies */
    same_tokenizer(t, u);
    same_encodings(t, u, 5);
    slm_tokenizer_free(u);

    /* the vocab-only file, and GPT-2's vocabulary through save and load */
    const char *p2 = tu_tmp_path("gpt2-again.gguf");
    TU_OK(slm_tokenizer_save_file(gpt2(), p2, tu_err()));
    u = slm_tokenizer_load_file(p2, tu_err());
    if (!u) fail_msg("%s", tu_err_last());
    same_tokenizer(gpt2(), u);
    same_encodings(gpt2(), u, 6);
    assert_int_equal(slm_tokenizer_add_bos_default(u), 0);
    slm_tokenizer_free(u);
}

/* Writes a GGUF with a small gpt2-like vocabulary, with one thing changed by the caller. */
typedef enum { V_OK, V_MODEL_BERT, V_NO_MERGES, V_NO_TOKENS, V_NO_MODEL, V_BAD_BOS, V_PRE_UNKNOWN,
               V_MERGE_NO_SPACE, V_DUP_TOKEN, V_TYPES_SHORT } variant;

static slm_tokenizer *load_variant(variant v, slm_err *e) {
    const char *path = tu_tmp_path("variant.gguf");
    slm_gguf_writer *w = slm_gguf_writer_new();
    assert_non_null(w);
    const char *toks[] = {"a", "b", "ab", "\xc4\xa0", v == V_DUP_TOKEN ? "a" : "c"};
    const char *merges[] = {v == V_MERGE_NO_SPACE ? "ab" : "a b"};
    int32_t types[] = {1, 1, 1, 1, 1};
    if (v != V_NO_MODEL) TU_OK(slm_gguf_set_str(w, "tokenizer.ggml.model", v == V_MODEL_BERT ? "bert" : "gpt2"));
    TU_OK(slm_gguf_set_str(w, "tokenizer.ggml.pre", v == V_PRE_UNKNOWN ? "deepseek-coder" : "gpt-2"));
    if (v != V_NO_TOKENS) TU_OK(slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 5));
    TU_OK(slm_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, v == V_TYPES_SHORT ? 3 : 5));
    if (v != V_NO_MERGES) TU_OK(slm_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 1));
    TU_OK(slm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", v == V_BAD_BOS ? 99 : 0));
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    slm_tokenizer *t = slm_tokenizer_load(g, e);
    slm_gguf_close(g);
    return t;
}

static void expect_load_error(variant v, slm_status code, const char *in_msg) {
    slm_err e;
    slm_err_clear(&e);
    slm_tokenizer *t = load_variant(v, &e);
    if (t) fail_msg("variant %d loaded", (int)v);
    assert_int_equal(e.code, code);
    if (!strstr(e.msg, in_msg)) fail_msg("variant %d: '%s' does not mention '%s'", (int)v, e.msg, in_msg);
}

static void test_load_errors_name_the_problem(void **state) {
    (void)state;
    slm_err e;
    slm_tokenizer *t = load_variant(V_OK, &e);
    if (!t) fail_msg("%s", e.msg);
    /* "ab" | " abb": a+b merges in both pieces; Ġ and the last b stay */
    expect_ids(t, "ab abb", (const int32_t[]){2, 3, 2, 1}, 4);
    /* 'c' is not a byte-pair product and the vocabulary has no other bytes: bytes without a
     * token are dropped (llama.cpp does the same) */
    expect_ids(t, "xa", (const int32_t[]){0}, 1);
    slm_tokenizer_free(t);

    expect_load_error(V_MODEL_BERT, SLM_ERR_UNSUPPORTED, "'bert'");
    expect_load_error(V_PRE_UNKNOWN, SLM_ERR_UNSUPPORTED, "'deepseek-coder'");
    expect_load_error(V_NO_MERGES, SLM_ERR_FORMAT, "tokenizer.ggml.merges");
    expect_load_error(V_NO_TOKENS, SLM_ERR_FORMAT, "tokenizer.ggml.tokens");
    expect_load_error(V_NO_MODEL, SLM_ERR_FORMAT, "tokenizer.ggml.model");
    expect_load_error(V_BAD_BOS, SLM_ERR_FORMAT, "tokenizer.ggml.bos_token_id");
    expect_load_error(V_MERGE_NO_SPACE, SLM_ERR_FORMAT, "tokenizer.ggml.merges[0]");
    expect_load_error(V_DUP_TOKEN, SLM_ERR_FORMAT, "tokenizer.ggml.tokens");
    expect_load_error(V_TYPES_SHORT, SLM_ERR_FORMAT, "tokenizer.ggml.token_type");

    /* a real SentencePiece vocabulary loads now (tests/test_tokenizer_spm.c tests it) */
    slm_tokenizer *spm = slm_tokenizer_load_file("data/tokenizer-vectors/ggml-vocab-llama-spm.gguf", &e);
    if (!spm) fail_msg("%s", e.msg);
    assert_string_equal(slm_tokenizer_model_name(spm), "llama");
    slm_tokenizer_free(spm);
}

static void test_decode_out_of_range_is_an_error(void **state) {
    (void)state;
    const slm_tokenizer *t = trained_shakespeare();
    char *out = (char *)1;
    size_t len = 7;
    slm_err e;
    int32_t ids[] = {40, 1024};
    assert_int_equal(slm_tokenizer_decode(t, ids, 2, &out, &len, &e), SLM_ERR_RANGE);
    assert_null(out);
    assert_non_null(strstr(e.msg, "1024"));
    ids[1] = -1;
    assert_int_equal(slm_tokenizer_decode(t, ids, 2, &out, &len, &e), SLM_ERR_RANGE);
    assert_null(slm_tokenizer_token_bytes(t, 1024, &len));
    assert_null(slm_tokenizer_token_bytes(t, -5, &len));
    /* control tokens decode to nothing */
    int32_t ctl[] = {1, 4 + 'h', 4 + 'i', 2, 3, 0};
    TU_OK(slm_tokenizer_decode(t, ctl, 6, &out, &len, tu_err()));
    assert_int_equal(len, 2);
    assert_string_equal(out, "hi");
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_unicode_mapping),
        cmocka_unit_test(test_pretokenize_splits_like_gpt2),
        cmocka_unit_test(test_pretokenize_other_rules),
        cmocka_unit_test(test_llama3_vocabulary_from_gguf),
        cmocka_unit_test(test_pretokenize_covers_invalid_utf8),
        cmocka_unit_test(test_gpt2_vectors_every_line),
        cmocka_unit_test(test_gpt2_known_ids_and_special_text),
        cmocka_unit_test(test_heap_and_scan_paths_agree),
        cmocka_unit_test(test_round_trip_gpt2),
        cmocka_unit_test(test_round_trip_trained),
        cmocka_unit_test(test_encode_from_many_threads),
        cmocka_unit_test(test_train_hand_derived_merges),
        cmocka_unit_test(test_train_long_piece_and_no_merges),
        cmocka_unit_test(test_train_vocab_and_special_ids),
        cmocka_unit_test(test_train_deterministic_with_progress),
        cmocka_unit_test(test_train_never_builds_special_text),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_load_errors_name_the_problem),
        cmocka_unit_test(test_decode_out_of_range_is_an_error),
    };
    int rc = cmocka_run_group_tests_name("tokenizer", tests, NULL, NULL);
    slm_tokenizer_free(gpt2());
    slm_tokenizer_free(trained_shakespeare());
    return rc;
}
