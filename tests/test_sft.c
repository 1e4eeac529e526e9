/* test_sft.c: generative fine-tuning — reading prompt/completion and chat JSONL (malformed lines
 * name file:line), the completion mask (raw text, a BPE merge across the boundary, and the ChatML
 * template with real control tokens), the gradient ignoring prompt targets, and a tiny model
 * learning a synthetic task (reverse three letters) well enough that greedy generation on unseen
 * validation prompts gives the completions, with the validation loss falling. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "generate/generate.h"
#include "task/sft.h"
#include "task/sft_data.h"
#include "tokenizer/chat_template.h"
#include "util/synth_task.h"
#include "util/testutil.h"

#define FIX "tests/fixtures/sft/"

/* A byte-level tokenizer with no merges (vocab 260: 4 specials + 256 bytes). */
static slm_tokenizer *bytes_tokenizer(void) {
    slm_tokenizer_train_opts o = {.vocab_size = 260};
    slm_tokenizer *t = NULL;
    TU_OK(slm_tokenizer_train("abc", 3, &o, &t, tu_err()));
    return t;
}

/* The same plus <|im_start|> and <|im_end|> as CONTROL tokens and a ChatML template, as an
 * instruction model's GGUF has them. */
static slm_tokenizer *chatml_tokenizer(void) {
    slm_tokenizer *base = bytes_tokenizer();
    const char *p1 = tu_tmp_path("base_tok.gguf"), *p2 = tu_tmp_path("chatml_tok.gguf");
    TU_OK(slm_tokenizer_save_file(base, p1, tu_err()));
    slm_gguf *g = slm_gguf_open(p1, tu_err());
    assert_non_null(g);
    int n = slm_tokenizer_n_vocab(base);
    const char **strs = calloc((size_t)n + 2, sizeof *strs);
    size_t *lens = calloc((size_t)n + 2, sizeof *lens);
    int32_t *types = calloc((size_t)n + 2, sizeof *types);
    for (int i = 0; i < n; i++) {
        strs[i] = slm_tokenizer_token_text(base, i, &lens[i]);
        types[i] = slm_tokenizer_token_type(base, i);
    }
    strs[n] = "<|im_start|>";
    strs[n + 1] = "<|im_end|>";
    lens[n] = strlen(strs[n]);
    lens[n + 1] = strlen(strs[n + 1]);
    types[n] = types[n + 1] = SLM_TOKEN_CONTROL;
    slm_gguf_writer *w = slm_gguf_writer_new();
    for (int64_t i = 0; i < slm_gguf_n_kv(g); i++) {
        const slm_gguf_kv *kv = slm_gguf_kv_at(g, i);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        if (!strcmp(key, "tokenizer.ggml.tokens") || !strcmp(key, "tokenizer.ggml.token_type") ||
            !strcmp(key, "llama.vocab_size"))
            continue;
        assert_int_equal(slm_gguf_set_kv_from(w, g, kv), SLM_OK);
    }
    assert_int_equal(slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, lens, (size_t)n + 2), SLM_OK);
    assert_int_equal(slm_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, (size_t)n + 2), SLM_OK);
    assert_int_equal(slm_gguf_set_u32(w, "llama.vocab_size", (uint32_t)n + 2), SLM_OK);
    assert_int_equal(slm_gguf_set_str(w, "tokenizer.chat_template",
                                      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                                      "{% endfor %}"), SLM_OK);
    TU_OK(slm_gguf_writer_write(w, p2, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf_close(g);
    free(strs);
    free(lens);
    free(types);
    slm_tokenizer_free(base);
    slm_tokenizer *t = slm_tokenizer_load_file(p2, tu_err());
    assert_non_null(t);
    assert_int_equal(slm_tokenizer_n_vocab(t), n + 2);
    return t;
}

static slm_sft_record pc_record(const char *prompt, const char *completion) {
    slm_sft_record r = {.n_msgs = 2, .is_pc = 1, .line = 1};
    r.msgs = calloc(2, sizeof *r.msgs);
    r.msgs[0] = (slm_chat_msg){"user", prompt};
    r.msgs[1] = (slm_chat_msg){"assistant", completion};
    return r;
}

static void expect_error(const char *path, const char *needle) {
    slm_sft_split s;
    slm_err *e = tu_err();
    assert_int_equal(slm_sft_split_read(path, &s, e), SLM_ERR_FORMAT);
    if (!strstr(e->msg, needle)) fail_msg("error '%s' does not name '%s'", e->msg, needle);
}

static void test_malformed_lines_name_file_and_line(void **state) {
    (void)state;
    expect_error(FIX "bad_json.jsonl", "bad_json.jsonl:3");
    expect_error(FIX "bad_role.jsonl", "bad_role.jsonl:2");
    expect_error(FIX "bad_role.jsonl", "robot");
    expect_error(FIX "missing_completion.jsonl", "missing_completion.jsonl:2");
    expect_error(FIX "no_assistant.jsonl", "no_assistant.jsonl:1");
    slm_sft_split s;
    assert_int_equal(slm_sft_split_read(FIX "does_not_exist.jsonl", &s, tu_err()), SLM_ERR_IO);
    /* both shapes in one file, blank lines skipped, extra fields ignored */
    TU_OK(slm_sft_split_read(FIX "mixed.jsonl", &s, tu_err()));
    assert_int_equal(s.n_rec, 2);
    assert_true(s.rec[0].is_pc);
    assert_string_equal(s.rec[0].msgs[1].content, "ba");
    assert_int_equal(s.rec[1].line, 3);
    assert_int_equal(s.rec[1].n_msgs, 5);
    assert_true(slm_sft_split_has_chat(&s));
    /* chat data without a template is an error naming the line */
    slm_tokenizer *tok = bytes_tokenizer();
    slm_sft_format f = {.family = SLM_CHAT_UNKNOWN, .max_len = 64};
    assert_int_equal(slm_sft_split_tokenize(&s, tok, &f, tu_err()), SLM_ERR_ARG);
    assert_non_null(strstr(tu_err()->msg, "mixed.jsonl:3"));
    slm_sft_split_free(&s);
    slm_tokenizer_free(tok);
}

static void test_mask_raw_text(void **state) {
    (void)state;
    slm_tokenizer *tok = bytes_tokenizer();
    int32_t B = slm_tokenizer_bos(tok), E = slm_tokenizer_eos(tok);
    int32_t a = slm_tokenizer_n_vocab(tok) - 256 + 'a'; /* bytes follow the 4 specials */
    slm_sft_record r = pc_record("ab", "cd");
    slm_sft_format f = {.family = SLM_CHAT_UNKNOWN, .separator = ":", .max_len = 64};
    slm_sft_example ex;
    int split = -1;
    TU_OK(slm_sft_encode(tok, &f, &r, &ex, &split, tu_err()));
    assert_int_equal(split, 0);
    int32_t want_ids[] = {B, a, a + 1, a + ':' - 'a', a + 2, a + 3, E};
    int32_t want_tg[] = {-1, -1, -1, a + 2, a + 3, E, -1};
    assert_int_equal(ex.n, 7);
    assert_memory_equal(ex.ids, want_ids, sizeof want_ids);
    assert_memory_equal(ex.targets, want_tg, sizeof want_tg);
    assert_int_equal(ex.n_counted, 3);
    slm_sft_example_free(&ex);

    /* cut to max_len keeping the start; an example with nothing counted left is skipped */
    slm_sft_split s = {.rec = &r, .n_rec = 1};
    f.max_len = 5; /* BOS a b : c -> only "c" is predicted */
    TU_OK(slm_sft_split_tokenize(&s, tok, &f, tu_err()));
    assert_int_equal(s.n, 1);
    assert_int_equal(s.n_cut, 1);
    assert_int_equal(s.ex[0].n, 5);
    assert_int_equal(s.ex[0].n_counted, 1);
    assert_int_equal(s.ex[0].targets[3], a + 2);
    assert_int_equal(s.ex[0].targets[4], -1);
    f.max_len = 4;
    TU_OK(slm_sft_split_tokenize(&s, tok, &f, tu_err()));
    assert_int_equal(s.n, 0);
    assert_int_equal(s.n_skipped, 1);
    for (int i = 0; i < s.n; i++) slm_sft_example_free(&s.ex[i]);
    free(s.ex);
    free(r.msgs);
    slm_tokenizer_free(tok);
}

static void test_mask_merge_across_boundary(void **state) {
    (void)state;
    /* a tokenizer that merges "abcd" into one token: prompt "ab" + completion "cd" cannot share it */
    char text[4000];
    for (int i = 0; i < 800; i++) memcpy(text + 5 * i, "abcd ", 5);
    slm_tokenizer_train_opts o = {.vocab_size = 270};
    slm_tokenizer *tok;
    TU_OK(slm_tokenizer_train(text, sizeof text, &o, &tok, tu_err()));
    int32_t *whole;
    size_t nw;
    TU_OK(slm_tokenizer_encode(tok, "abcd", 4, 0, &whole, &nw, tu_err()));
    assert_int_equal(nw, 1);
    free(whole);
    slm_sft_record r = pc_record("ab", "cd");
    slm_sft_format f = {.family = SLM_CHAT_UNKNOWN, .max_len = 64};
    slm_sft_example ex;
    int split = 0;
    TU_OK(slm_sft_encode(tok, &f, &r, &ex, &split, tu_err()));
    assert_int_equal(split, 1);
    int32_t *p, *c;
    size_t np, nc;
    TU_OK(slm_tokenizer_encode(tok, "ab", 2, 1, &p, &np, tu_err()));
    TU_OK(slm_tokenizer_encode(tok, "cd", 2, 0, &c, &nc, tu_err()));
    assert_int_equal(ex.n, (int)(np + nc + 1));
    assert_memory_equal(ex.ids, p, np * sizeof *p);
    assert_memory_equal(ex.ids + np, c, nc * sizeof *c);
    assert_int_equal(ex.n_counted, (int)nc + 1);
    for (int i = 0; i < ex.n; i++) {
        int counted = i + 1 >= (int)np && i + 1 < ex.n;
        assert_int_equal(ex.targets[i], counted ? ex.ids[i + 1] : -1);
    }
    free(p);
    free(c);
    slm_sft_example_free(&ex);
    free(r.msgs);
    slm_tokenizer_free(tok);
}

static void test_mask_chat_template(void **state) {
    (void)state;
    slm_tokenizer *tok = chatml_tokenizer();
    int32_t im_end = slm_tokenizer_n_vocab(tok) - 1;
    int32_t byte0 = 4; /* bytes follow the 4 specials */
    slm_sft_split s;
    TU_OK(slm_sft_split_read(FIX "mixed.jsonl", &s, tu_err()));
    slm_sft_format f = {.family = SLM_CHAT_CHATML, .max_len = 256};
    TU_OK(slm_sft_split_tokenize(&s, tok, &f, tu_err()));
    assert_int_equal(s.n, 2);
    assert_int_equal(s.n_split_encoded, 0);
    /* the chat: exactly A1<|im_end|> and A2<|im_end|> are counted, nothing of the template */
    const slm_sft_example *ex = &s.ex[1];
    int32_t want[] = {byte0 + 'A', byte0 + '1', im_end, byte0 + 'A', byte0 + '2', im_end};
    int k = 0;
    for (int i = 0; i < ex->n; i++) {
        if (ex->targets[i] < 0) continue;
        assert_true(k < 6);
        assert_int_equal(ex->targets[i], want[k]);
        assert_int_equal(ex->targets[i], ex->ids[i + 1]);
        if (k == 0 || k == 3) assert_int_equal(ex->ids[i], byte0 + '\n'); /* after "assistant\n" */
        k++;
    }
    assert_int_equal(k, 6);
    assert_int_equal(ex->n_counted, 6);
    /* the text decodes to the ChatML rendering, "\n" after the last <|im_end|> uncounted */
    assert_int_equal(ex->ids[ex->n - 1], byte0 + '\n');
    /* prompt/completion under the template: a user turn and an assistant turn */
    ex = &s.ex[0];
    int32_t want_pc[] = {byte0 + 'b', byte0 + 'a', im_end};
    k = 0;
    for (int i = 0; i < ex->n; i++)
        if (ex->targets[i] >= 0) {
            assert_true(k < 3);
            assert_int_equal(ex->targets[i], want_pc[k++]);
        }
    assert_int_equal(k, 3);
    char *txt;
    size_t len;
    TU_OK(slm_tokenizer_decode(tok, ex->ids, (size_t)ex->n, &txt, &len, tu_err()));
    assert_string_equal(txt, "user\nrev ab=\nassistant\nba\n"); /* control tokens decode to nothing */
    free(txt);
    slm_sft_split_free(&s);
    slm_tokenizer_free(tok);
}

static slm_model *tiny_model(int n_vocab, int ctx, uint64_t seed) {
    slm_model_config cfg = {.n_vocab = n_vocab, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4,
                            .hidden_dim = 192, .ctx_len = ctx, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                            .tied_output = 1};
    slm_model *m = slm_model_new(&cfg, tu_err());
    assert_non_null(m);
    slm_model_init_random(m, seed);
    return m;
}

static void test_gradient_ignores_prompt_targets(void **state) {
    (void)state;
    slm_tokenizer *tok = bytes_tokenizer();
    slm_sft_data d;
    memset(&d, 0, sizeof d);
    slm_sft_record r = pc_record("the prompt: ", "completion");
    slm_sft_format f = {.family = SLM_CHAT_UNKNOWN, .max_len = 32};
    d.train.rec = d.val.rec = &r;
    d.train.n_rec = d.val.n_rec = 1;
    TU_OK(slm_sft_data_tokenize(&d, tok, &f, tu_err()));
    slm_model *m = tiny_model(slm_tokenizer_n_vocab(tok), 32, 3);
    slm_sft_opts o;
    slm_sft_opts_default(&o);
    o.batch = 1;
    o.max_len = 32;
    slm_sft *t = slm_sft_new(m, tok, &d, &o, NULL, tu_err());
    assert_non_null(t);
    const slm_sft_example *ex = &d.train.ex[0];
    int n = ex->n;
    /* the same tokens with every next token a target, and with only the prompt's */
    slm_sft_example all = *ex, pr = *ex;
    all.targets = malloc((size_t)n * sizeof(int32_t));
    pr.targets = malloc((size_t)n * sizeof(int32_t));
    int n_all = 0, n_pr = 0;
    for (int i = 0; i < n; i++) {
        all.targets[i] = i + 1 < n ? ex->ids[i + 1] : -1;
        pr.targets[i] = i + 1 < n && ex->targets[i] < 0 ? ex->ids[i + 1] : -1;
        n_all += all.targets[i] >= 0;
        n_pr += pr.targets[i] >= 0;
    }
    assert_int_equal(n_all, n_pr + ex->n_counted);
    assert_true(n_pr >= 10);
    size_t np = m->n_params;
    float *g_sft = calloc(np, sizeof(float)), *g_all = calloc(np, sizeof(float)), *g_pr = calloc(np, sizeof(float));
    float *g_diff = calloc(np, sizeof(float)), *g_pert = calloc(np, sizeof(float));
    float l;
    int c;
    /* summed losses (scale = counted): sum_all = sum_prompt + sum_completion */
    TU_OK(slm_sft_grad(t, ex, 1, (float)ex->n_counted, g_sft, &l, &c, tu_err()));
    assert_int_equal(c, ex->n_counted);
    TU_OK(slm_sft_grad(t, &all, 1, (float)n_all, g_all, &l, &c, tu_err()));
    TU_OK(slm_sft_grad(t, &pr, 1, (float)n_pr, g_pr, &l, &c, tu_err()));
    for (size_t i = 0; i < np; i++) g_diff[i] = g_all[i] - g_pr[i];
    double gmax = 0;
    for (size_t i = 0; i < np; i++) gmax = fmax(gmax, fabs(g_sft[i]));
    assert_true(gmax > 1e-4);
    assert_true(tu_max_excess(g_sft, g_diff, np, 1e-3) < 1e-5 * gmax + 1e-7);
    slm_sft_example pert = *ex;
    pert.targets = malloc((size_t)n * sizeof(int32_t));
    memcpy(pert.targets, ex->targets, (size_t)n * sizeof(int32_t));
    /* a prompt target turned on (what the plain LM loss would count) does change the gradient */
    pert.targets[2] = ex->ids[3];
    memset(g_pert, 0, np * sizeof(float));
    TU_OK(slm_sft_grad(t, &pert, 1, (float)ex->n_counted, g_pert, &l, &c, tu_err()));
    assert_true(memcmp(g_pert, g_sft, np * sizeof(float)) != 0);
    free(pert.targets);
    free(all.targets);
    free(pr.targets);
    free(g_sft);
    free(g_all);
    free(g_pr);
    free(g_diff);
    free(g_pert);
    slm_sft_free(t);
    slm_model_free(m);
    for (int i = 0; i < d.train.n; i++) slm_sft_example_free(&d.train.ex[i]);
    for (int i = 0; i < d.val.n; i++) slm_sft_example_free(&d.val.ex[i]);
    free(d.train.ex);
    free(d.val.ex);
    free(r.msgs);
    slm_tokenizer_free(tok);
}

/* The loss of a step is the mean over all its counted tokens: B = 4 in one micro-batch and
 * B = 2 accumulated twice take the same step (examples of different completion lengths). */
/* Four prompt/completion pairs of different lengths, both splits, tokenized for bytes_tokenizer. */
typedef struct {
    slm_tokenizer *tok;
    slm_sft_record r[4];
    slm_sft_data d;
} four_pairs;

static void four_pairs_init(four_pairs *fp) {
    fp->tok = bytes_tokenizer();
    const char *pr[4] = {"a=", "bb=", "c=", "dddd="}, *co[4] = {"x", "yyyyyy", "zz", "wwwwwwwwww"};
    for (int i = 0; i < 4; i++) fp->r[i] = pc_record(pr[i], co[i]);
    memset(&fp->d, 0, sizeof fp->d);
    fp->d.train.rec = fp->d.val.rec = fp->r;
    fp->d.train.n_rec = fp->d.val.n_rec = 4;
    slm_sft_format f = {.family = SLM_CHAT_UNKNOWN, .max_len = 24};
    TU_OK(slm_sft_data_tokenize(&fp->d, fp->tok, &f, tu_err()));
}

static void four_pairs_free(four_pairs *fp) {
    for (int i = 0; i < fp->d.train.n; i++) slm_sft_example_free(&fp->d.train.ex[i]);
    for (int i = 0; i < fp->d.val.n; i++) slm_sft_example_free(&fp->d.val.ex[i]);
    free(fp->d.train.ex);
    free(fp->d.val.ex);
    for (int i = 0; i < 4; i++) free(fp->r[i].msgs);
    slm_tokenizer_free(fp->tok);
}

/* A fresh tiny model for the fixture's vocabulary, and options for `steps` steps of batch 4. */
static slm_model *four_pairs_model(const four_pairs *fp, slm_sft_opts *o, int steps) {
    slm_sft_opts_default(o);
    o->steps = steps;
    o->max_len = 24;
    o->batch = 4;
    return tiny_model(slm_tokenizer_n_vocab(fp->tok), 24, 5);
}

static void test_accumulation_equals_one_batch(void **state) {
    (void)state;
    four_pairs fp;
    four_pairs_init(&fp);
    slm_tokenizer *tok = fp.tok;
    slm_sft_data d = fp.d;
    float loss[2];
    slm_model *m[2];
    for (int k = 0; k < 2; k++) {
        slm_sft_opts o;
        m[k] = four_pairs_model(&fp, &o, 1);
        o.batch = k ? 2 : 4;
        o.accum = k ? 2 : 1;
        o.warmup = 0;
        o.lr = 1e-3f;
        o.lr_min = 1e-3f;
        slm_sft *t = slm_sft_new(m[k], tok, &d, &o, NULL, tu_err());
        assert_non_null(t);
        const char *log = tu_tmp_path(k ? "accum2.jsonl" : "accum1.jsonl");
        TU_OK(slm_sft_set_log(t, log, tu_err()));
        TU_OK(slm_sft_run(t, tu_err()));
        slm_sft_free(t);
        char *txt;
        size_t len;
        TU_OK(slm_file_read_all(log, &txt, &len, tu_err()));
        const char *l = strstr(txt, "\"loss\":");
        assert_non_null(l);
        loss[k] = strtof(l + 7, NULL);
        free(txt);
    }
    assert_float_equal(loss[0], loss[1], 1e-5);
    assert_true(tu_max_excess(m[1]->params, m[0]->params, m[0]->n_params, 1e-3) < 1e-5);
    for (int k = 0; k < 2; k++) slm_model_free(m[k]);
    four_pairs_free(&fp);
}

/* Dropout (--dropout): training changes, deterministically (a pure function of seed and step);
 * validation runs whole; out of range is refused. */
static void test_dropout(void **state) {
    (void)state;
    four_pairs fp;
    four_pairs_init(&fp);
    slm_tokenizer *tok = fp.tok;
    slm_sft_data d = fp.d;
    slm_model *m[3];
    double val[3];
    for (int k = 0; k < 3; k++) {
        slm_sft_opts o;
        m[k] = four_pairs_model(&fp, &o, 3);
        o.dropout = k ? 0.3f : 0.0f;
        slm_sft *t = slm_sft_new(m[k], tok, &d, &o, NULL, tu_err());
        assert_non_null(t);
        TU_OK(slm_sft_evaluate(t, &d.val, &val[k], tu_err()));
        TU_OK(slm_sft_run(t, tu_err()));
        slm_sft_free(t);
    }
    size_t bytes = sizeof(float) * m[0]->n_params;
    assert_memory_equal(m[1]->params, m[2]->params, bytes);
    assert_memory_not_equal(m[0]->params, m[1]->params, bytes);
    assert_float_equal(val[0], val[1], 0); /* validation never drops */
    slm_sft_opts o;
    slm_sft_opts_default(&o);
    o.dropout = 0.95f;
    slm_err e;
    assert_int_equal(slm_sft_opts_check(&o, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "dropout"));
    for (int k = 0; k < 3; k++) slm_model_free(m[k]);
    four_pairs_free(&fp);
}

typedef struct {
    char buf[64];
    size_t len;
} collect;

static int on_text(void *ctx, const char *text, size_t len) {
    collect *c = ctx;
    if (c->len + len >= sizeof c->buf) return 1;
    memcpy(c->buf + c->len, text, len);
    c->len += len;
    c->buf[c->len] = 0;
    return 0;
}

static void test_tiny_model_learns_to_reverse(void **state) {
    (void)state;
    const char *dir = tu_write_reversal_task("rev"); /* every 9th of the 216 words held out */
    slm_sft_data d;
    TU_OK(slm_sft_data_load(dir, &d, tu_err()));
    assert_int_equal(d.val.n_rec, 24);
    slm_tokenizer *tok = bytes_tokenizer();
    slm_sft_format f = {.family = SLM_CHAT_UNKNOWN, .max_len = 16};
    TU_OK(slm_sft_data_tokenize(&d, tok, &f, tu_err()));
    assert_int_equal(d.train.n, 192);
    assert_int_equal(d.train.n_counted, 192 * 4); /* three letters and EOS */
    slm_model *m = tiny_model(slm_tokenizer_n_vocab(tok), 16, 7);
    slm_sft_opts o;
    slm_sft_opts_default(&o);
    o.steps = 600;
    o.batch = 16;
    o.max_len = 16;
    o.lr = 3e-3f;
    o.lr_min = 1e-4f;
    o.warmup = 30;
    o.eval_every = 200;
    o.patience = 3;
    slm_err *e = tu_err();
    slm_pool *pool = slm_pool_new(2, e);
    assert_non_null(pool);
    slm_sft *t = slm_sft_new(m, tok, &d, &o, pool, e);
    assert_non_null(t);
    double before;
    TU_OK(slm_sft_evaluate(t, &d.val, &before, e));
    const char *log = tu_tmp_path("sft_log.jsonl");
    TU_OK(slm_sft_set_log(t, log, e));
    TU_OK(slm_sft_run(t, e));
    float after = slm_sft_val_loss(t);
    assert_true(after < 0.5 * before);
    assert_true(slm_sft_first_val_loss(t) < (float)before);
    /* greedy generation of every held-out prompt */
    slm_sampler_params sp;
    slm_sampler_params_default(&sp);
    sp.temperature = 0;
    slm_generate_opts go = {.max_tokens = 6, .stop_at_eos = 1};
    int right = 0;
    for (int i = 0; i < d.val.n_rec; i++) {
        const slm_sft_record *r = &d.val.rec[i];
        collect c = {.len = 0};
        slm_generate_stats st;
        TU_OK(slm_generate(m, tok, r->msgs[0].content, strlen(r->msgs[0].content), &sp, &go, pool, on_text, &c, &st, e));
        right += !strcmp(c.buf, r->msgs[1].content);
    }
    print_message("reverse: %d/24 held-out words right; val loss %.4f -> %.4f after %d steps\n", right, before,
                  after, slm_sft_step(t));
    if (right < 22) fail_msg("only %d of 24 held-out words reversed (val loss %.4f -> %.4f)", right, before, after);
    /* the model file: slm.task = generate, loads and generates the same */
    const char *out = tu_tmp_path("sft_model.gguf");
    slm_sft_save_info info = {.separator = ""};
    TU_OK(slm_sft_save(t, &info, out, e));
    slm_gguf *g = slm_gguf_open(out, e);
    assert_non_null(g);
    slm_gguf_str task;
    TU_OK(slm_gguf_get_str(g, "slm.task", &task, e));
    assert_int_equal(task.len, 8);
    assert_memory_equal(task.ptr, "generate", 8);
    slm_model *m2 = slm_model_load_mapped(g, e);
    assert_non_null(m2);
    collect c = {.len = 0};
    slm_generate_stats st;
    const slm_sft_record *r0 = &d.val.rec[0];
    TU_OK(slm_generate(m2, tok, r0->msgs[0].content, strlen(r0->msgs[0].content), &sp, &go, pool, on_text, &c, &st, e));
    collect c1 = {.len = 0};
    TU_OK(slm_generate(m, tok, r0->msgs[0].content, strlen(r0->msgs[0].content), &sp, &go, pool, on_text, &c1, &st, e));
    assert_string_equal(c.buf, c1.buf);
    slm_model_free(m2);
    slm_gguf_close(g);
    /* the log has a line per step with val_loss where validated */
    char *logtxt;
    size_t loglen;
    TU_OK(slm_file_read_all(log, &logtxt, &loglen, e));
    assert_non_null(strstr(logtxt, "{\"step\":1,"));
    assert_non_null(strstr(logtxt, "\"val_loss\":"));
    assert_non_null(strstr(logtxt, "\"tokens_per_s\":"));
    free(logtxt);
    slm_sft_free(t);
    slm_model_free(m);
    slm_pool_free(pool);
    slm_sft_data_free(&d);
    slm_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_lines_name_file_and_line),
        cmocka_unit_test(test_mask_raw_text),
        cmocka_unit_test(test_mask_merge_across_boundary),
        cmocka_unit_test(test_mask_chat_template),
        cmocka_unit_test(test_gradient_ignores_prompt_targets),
        cmocka_unit_test(test_accumulation_equals_one_batch),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_tiny_model_learns_to_reverse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
