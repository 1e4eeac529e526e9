/* test_gguf.c: the GGUF v3 reader and writer, and `slm info`.
 *
 * Outside truth: llama.cpp's own files (stories260K, the tokenizer vocabularies) open with their
 * documented facts, and rewriting stories260K through the writer reproduces it byte for byte.
 * A small file is also built by hand, field by field (tbuf below), so that the writer's exact
 * bytes can be checked and so that fuzzing knows where each length and count lies. Fuzzing
 * (truncation at every length, byte changes at every position, seeded random mutations, huge
 * counts) opens each variant from an exactly-sized heap copy, so the sanitizer build catches
 * any read past the end; each open must fail with a message or give tensors inside the buffer.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slm.h"
#include "util/testutil.h"

#define STORIES "data/models/stories260K/stories260K.gguf"
#define VOCAB_GPT2 "data/tokenizer-vectors/ggml-vocab-gpt-2.gguf"
#define VOCAB_SPM "data/tokenizer-vectors/ggml-vocab-llama-spm.gguf"

/* ---- a byte builder for hand-made files ---- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} tbuf;

static size_t tb_put(tbuf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
    return b->n - n;
}
static size_t tb_u32(tbuf *b, uint32_t v) { return tb_put(b, &v, 4); }
static size_t tb_u64(tbuf *b, uint64_t v) { return tb_put(b, &v, 8); }
static size_t tb_str(tbuf *b, const char *s) {
    size_t at = tb_u64(b, strlen(s));
    tb_put(b, s, strlen(s));
    return at;
}
static void tb_pad(tbuf *b, size_t a) {
    static const uint8_t z[64];
    while (b->n % a) tb_put(b, z, 1);
}
static void set_u64_at(uint8_t *p, size_t at, uint64_t v) { memcpy(p + at, &v, 8); }
static void set_u32_at(uint8_t *p, size_t at, uint32_t v) { memcpy(p + at, &v, 4); }

/* The small file: 5 keys, 3 tensors (F32 [4,2], Q8_0 [32], F16 [3]), alignment 32. */
typedef struct {
    const char *key1;     /* "llama.block_count"; "general.architecture" makes a duplicate */
    const char *t2_name;  /* "h"; "w" makes a duplicate */
    uint32_t kv3_type;    /* SLM_GGUF_ARRAY, or an unknown type */
    bool nested;          /* kv3 an array of arrays */
    uint32_t align_type;  /* SLM_GGUF_UINT32 */
    uint32_t align_value; /* 32 */
    uint32_t q_type;      /* SLM_GGML_Q8_0 */
    uint64_t q_ne0;       /* 32 */
    uint32_t w_n_dims;    /* 2 */
} small_opts;

typedef struct {
    size_t n_tensors, n_kv, key0_len, kv0_val_len, kv1_val, kv2_count, kv2_elem0_len, kv3_type,
        kv3_count, align_val, data;
    size_t t_name_len[3], t_ndims[3], t_ne0[3], t_type[3], t_offset[3];
} small_offs;

static const float w_data[8] = {1, -2, 3.5f, 0, 1e-3f, -1e30f, 7, 8};
static uint8_t q_data[34];
static const uint16_t h_data[3] = {0x3c00, 0xc000, 0x7bff}; /* 1, -2, 65504 in f16 */

static small_opts default_opts(void) {
    return (small_opts){"llama.block_count", "h", SLM_GGUF_ARRAY, false, SLM_GGUF_UINT32, 32,
                        SLM_GGML_Q8_0, 32, 2};
}

static tbuf build_small(const small_opts *o, small_offs *at) {
    for (int i = 0; i < 34; i++) q_data[i] = (uint8_t)(i * 7 + 1);
    tbuf b = {0};
    small_offs dummy;
    if (!at) at = &dummy;
    tb_put(&b, "GGUF", 4);
    tb_u32(&b, 3);
    at->n_tensors = tb_u64(&b, 3);
    at->n_kv = tb_u64(&b, 5);
    at->key0_len = tb_str(&b, "general.architecture");
    tb_u32(&b, SLM_GGUF_STRING);
    at->kv0_val_len = tb_str(&b, "llama");
    tb_str(&b, o->key1);
    tb_u32(&b, SLM_GGUF_UINT32);
    at->kv1_val = tb_u32(&b, 5);
    tb_str(&b, "tokenizer.ggml.tokens");
    tb_u32(&b, SLM_GGUF_ARRAY);
    tb_u32(&b, SLM_GGUF_STRING);
    at->kv2_count = tb_u64(&b, 3);
    at->kv2_elem0_len = tb_str(&b, "a");
    tb_str(&b, "");
    tb_put(&b, &(uint64_t){1}, 8);
    tb_put(&b, "\xff", 1);
    tb_str(&b, "tokenizer.ggml.scores");
    at->kv3_type = tb_u32(&b, o->kv3_type);
    tb_u32(&b, o->nested ? SLM_GGUF_ARRAY : SLM_GGUF_FLOAT32);
    at->kv3_count = tb_u64(&b, 3);
    const float scores[3] = {0.5f, -1, 2};
    tb_put(&b, scores, sizeof scores);
    tb_str(&b, "general.alignment");
    tb_u32(&b, o->align_type);
    at->align_val = tb_u32(&b, o->align_value);
    /* tensor infos */
    const char *names[3] = {"w", "q", o->t2_name};
    uint32_t types[3] = {SLM_GGML_F32, o->q_type, SLM_GGML_F16};
    uint32_t ndims[3] = {o->w_n_dims, 1, 1};
    uint64_t ne[3][2] = {{4, 2}, {o->q_ne0, 1}, {3, 1}};
    uint64_t sizes[3] = {32, 34, 6}, off = 0;
    for (int i = 0; i < 3; i++) {
        at->t_name_len[i] = tb_str(&b, names[i]);
        at->t_ndims[i] = tb_u32(&b, ndims[i]);
        at->t_ne0[i] = b.n;
        for (uint32_t d = 0; d < ndims[i]; d++) tb_u64(&b, ne[i][d]);
        at->t_type[i] = tb_u32(&b, types[i]);
        at->t_offset[i] = tb_u64(&b, off);
        off += (sizes[i] + 31) / 32 * 32;
    }
    tb_pad(&b, 32);
    at->data = b.n;
    tb_put(&b, w_data, sizeof w_data);
    tb_pad(&b, 32);
    tb_put(&b, q_data, sizeof q_data);
    tb_pad(&b, 32);
    tb_put(&b, h_data, sizeof h_data);
    tb_pad(&b, 32);
    return b;
}

/* The same content through the writer. */
static slm_gguf_writer *small_writer(void) {
    for (int i = 0; i < 34; i++) q_data[i] = (uint8_t)(i * 7 + 1);
    slm_gguf_writer *w = slm_gguf_writer_new();
    assert_non_null(w);
    TU_OK(slm_gguf_set_str(w, "general.architecture", "llama"));
    TU_OK(slm_gguf_set_u32(w, "llama.block_count", 5));
    const char *toks[3] = {"a", "", "\xff"};
    TU_OK(slm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3));
    const float scores[3] = {0.5f, -1, 2};
    TU_OK(slm_gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, 3));
    TU_OK(slm_gguf_set_u32(w, "general.alignment", 32));
    TU_OK(slm_gguf_add_tensor(w, "w", SLM_GGML_F32, 2, (uint64_t[]){4, 2}, w_data, tu_err()));
    TU_OK(slm_gguf_add_tensor(w, "q", SLM_GGML_Q8_0, 1, (uint64_t[]){32}, q_data, tu_err()));
    TU_OK(slm_gguf_add_tensor(w, "h", SLM_GGML_F16, 1, (uint64_t[]){3}, h_data, tu_err()));
    return w;
}

/* Opens a heap copy of exactly n bytes (so the sanitizer sees any read past the end). */
static slm_gguf *open_copy(const uint8_t *p, size_t n, uint8_t **copy, slm_err *e) {
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    if (n) memcpy(*copy, p, n);
    return slm_gguf_open_memory(*copy, n, "fuzz.gguf", e);
}

/* What every successful open must satisfy: all strings, arrays and tensor data in the buffer.
 * Touches every byte so a sanitizer notices anything outside. */
static void check_inside(const slm_gguf *g, const uint8_t *base, size_t n) {
    const uint8_t *end = base + n;
    unsigned sum = 0;
#define INSIDE(ptr, len)                                                                      \
    do {                                                                                      \
        const uint8_t *p_ = (const uint8_t *)(ptr);                                           \
        assert_true((len) == 0 || (p_ >= base && p_ <= end && (uint64_t)(len) <= (uint64_t)(end - p_))); \
        for (uint64_t k_ = 0; k_ < (uint64_t)(len); k_++) sum += p_[k_];                      \
    } while (0)
    for (int64_t i = 0; i < slm_gguf_n_kv(g); i++) {
        const slm_gguf_kv *kv = slm_gguf_kv_at(g, i);
        INSIDE(kv->key.ptr, kv->key.len);
        if (kv->type == SLM_GGUF_STRING) INSIDE(kv->v.str.ptr, kv->v.str.len);
        if (kv->type == SLM_GGUF_ARRAY) {
            if (kv->arr_type == SLM_GGUF_STRING) {
                for (uint64_t j = 0; j < kv->arr_n; j++) INSIDE(kv->arr_strs[j].ptr, kv->arr_strs[j].len);
            } else {
                INSIDE(kv->arr_data, kv->arr_n * slm_gguf_type_size(kv->arr_type));
            }
        }
    }
    assert_true(slm_gguf_data_offset(g) <= n);
    for (int64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        INSIDE(t->name.ptr, t->name.len);
        assert_true(t->name.len < SLM_GGUF_MAX_NAME);
        assert_true((const uint8_t *)t->data >= base + slm_gguf_data_offset(g));
        INSIDE(t->data, t->nbytes);
        assert_int_equal(t->offset % slm_gguf_alignment(g), 0);
    }
#undef INSIDE
    (void)sum;
}

/* One fuzz case: fail with a message, or succeed with everything inside. */
static int fuzz_one(const uint8_t *p, size_t n) {
    slm_err e;
    slm_err_clear(&e);
    uint8_t *copy;
    slm_gguf *g = open_copy(p, n, &copy, &e);
    int ok = g != NULL;
    if (g) {
        check_inside(g, copy, n);
        slm_gguf_close(g);
    } else {
        assert_true(e.msg[0] != '\0');
        assert_true(e.code == SLM_ERR_FORMAT || e.code == SLM_ERR_UNSUPPORTED);
        assert_non_null(strstr(e.msg, "fuzz.gguf: "));
    }
    free(copy);
    return ok;
}

static uint8_t *read_file(const char *path, size_t *n) {
    char *data;
    TU_OK(slm_file_read_all(path, &data, n, tu_err()));
    return (uint8_t *)data;
}

/* ---- type tables ---- */

static void test_type_tables_match_ggml(void **state) {
    (void)state;
    static const struct { uint32_t t; const char *name; uint32_t bs, bb; } rows[] = {
        {SLM_GGML_F32, "f32", 1, 4},       {SLM_GGML_F16, "f16", 1, 2},
        {SLM_GGML_BF16, "bf16", 1, 2},     {SLM_GGML_Q4_0, "q4_0", 32, 18},
        {SLM_GGML_Q4_1, "q4_1", 32, 20},   {SLM_GGML_Q5_0, "q5_0", 32, 22},
        {SLM_GGML_Q5_1, "q5_1", 32, 24},   {SLM_GGML_Q8_0, "q8_0", 32, 34},
        {SLM_GGML_Q8_1, "q8_1", 32, 36},   {SLM_GGML_Q2_K, "q2_K", 256, 84},
        {SLM_GGML_Q3_K, "q3_K", 256, 110}, {SLM_GGML_Q4_K, "q4_K", 256, 144},
        {SLM_GGML_Q5_K, "q5_K", 256, 176}, {SLM_GGML_Q6_K, "q6_K", 256, 210},
        {SLM_GGML_Q8_K, "q8_K", 256, 292}, {SLM_GGML_IQ4_NL, "iq4_nl", 32, 18},
        {SLM_GGML_I32, "i32", 1, 4},       {SLM_GGML_F64, "f64", 1, 8},
        {SLM_GGML_MXFP4, "mxfp4", 32, 17},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_string_equal(slm_ggml_type_name(rows[i].t), rows[i].name);
        assert_int_equal(slm_ggml_block_size(rows[i].t), rows[i].bs);
        assert_int_equal(slm_ggml_block_bytes(rows[i].t), rows[i].bb);
        assert_int_equal(slm_ggml_type_from_name(rows[i].name), (int)rows[i].t);
    }
    /* removed and never-assigned numbers are unknown */
    const uint32_t unknown[] = {4, 5, 31, 32, 33, 36, 37, 38, 40, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_null(slm_ggml_type_name(unknown[i]));
        assert_int_equal(slm_ggml_block_size(unknown[i]), 0);
        assert_int_equal(slm_ggml_block_bytes(unknown[i]), 0);
    }
    assert_string_equal(slm_gguf_type_name(SLM_GGUF_STRING), "str");
    assert_null(slm_gguf_type_name(SLM_GGUF_TYPE_COUNT));
    assert_int_equal(slm_gguf_type_size(SLM_GGUF_BOOL), 1);
    assert_int_equal(slm_gguf_type_size(SLM_GGUF_FLOAT64), 8);
    /* byte counts: blocks, overflow, zero-sized */
    uint64_t ne, nb;
    assert_true(slm_ggml_nbytes(SLM_GGML_Q4_K, 2, (uint64_t[]){512, 3}, &ne, &nb));
    assert_int_equal(ne, 1536);
    assert_int_equal(nb, 2 * 3 * 144);
    assert_false(slm_ggml_nbytes(SLM_GGML_Q8_0, 1, (uint64_t[]){33}, &ne, &nb));
    assert_false(slm_ggml_nbytes(SLM_GGML_F32, 2, (uint64_t[]){1ull << 32, 1ull << 31}, &ne, &nb));
    assert_false(slm_ggml_nbytes(SLM_GGML_F32, 1, (uint64_t[]){1ull << 62}, &ne, &nb)); /* bytes */
    assert_true(slm_ggml_nbytes(SLM_GGML_F32, 2, (uint64_t[]){0, 1ull << 62}, &ne, &nb));
    assert_int_equal(nb, 0);
}

/* ---- writer layout ---- */

static void test_writer_bytes_match_hand_layout(void **state) {
    (void)state;
    small_opts o = default_opts();
    tbuf want = build_small(&o, NULL);
    slm_gguf_writer *w = small_writer();
    const char *path = tu_tmp_path("small.gguf");
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    size_t n;
    uint8_t *got = read_file(path, &n);
    assert_int_equal(n, want.n);
    assert_memory_equal(got, want.p, n);
    free(got);
    free(want.p);
}

static void test_writer_drops_trailing_unit_dims_like_ggml(void **state) {
    (void)state;
    slm_gguf_writer *w = slm_gguf_writer_new();
    static const float d[6] = {1, 2, 3, 4, 5, 6};
    TU_OK(slm_gguf_add_tensor(w, "a", SLM_GGML_F32, 4, (uint64_t[]){6, 1, 1, 1}, d, tu_err()));
    TU_OK(slm_gguf_add_tensor(w, "b", SLM_GGML_F32, 3, (uint64_t[]){1, 6, 1}, d, tu_err()));
    const char *path = tu_tmp_path("dims.gguf");
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    assert_non_null(g);
    const slm_gguf_tensor *a = slm_gguf_find_tensor(g, "a"), *b = slm_gguf_find_tensor(g, "b");
    assert_int_equal(a->n_dims, 1);
    assert_int_equal(a->ne[0], 6);
    assert_int_equal(b->n_dims, 2);
    assert_int_equal(b->ne[0], 1);
    assert_int_equal(b->ne[1], 6);
    assert_int_equal(b->ne[2], 1);
    assert_memory_equal(b->data, d, sizeof d);
    slm_gguf_close(g);
}

/* ---- round trip ---- */

static void compare_files(const slm_gguf *a, const slm_gguf *b) {
    assert_int_equal(slm_gguf_version(a), slm_gguf_version(b));
    assert_int_equal(slm_gguf_alignment(a), slm_gguf_alignment(b));
    assert_int_equal(slm_gguf_data_offset(a), slm_gguf_data_offset(b));
    assert_int_equal(slm_gguf_file_size(a), slm_gguf_file_size(b));
    assert_int_equal(slm_gguf_n_kv(a), slm_gguf_n_kv(b));
    for (int64_t i = 0; i < slm_gguf_n_kv(a); i++) {
        const slm_gguf_kv *x = slm_gguf_kv_at(a, i), *y = slm_gguf_kv_at(b, i);
        assert_int_equal(x->key.len, y->key.len);
        assert_memory_equal(x->key.ptr, y->key.ptr, x->key.len);
        assert_int_equal(x->type, y->type);
        if (x->type == SLM_GGUF_STRING) {
            assert_int_equal(x->v.str.len, y->v.str.len);
            if (x->v.str.len) assert_memory_equal(x->v.str.ptr, y->v.str.ptr, x->v.str.len);
        } else if (x->type == SLM_GGUF_ARRAY) {
            assert_int_equal(x->arr_type, y->arr_type);
            assert_int_equal(x->arr_n, y->arr_n);
            for (uint64_t j = 0; j < x->arr_n; j++) {
                slm_gguf_kv ex, ey;
                assert_true(slm_gguf_arr_at(x, j, &ex));
                assert_true(slm_gguf_arr_at(y, j, &ey));
                if (x->arr_type == SLM_GGUF_STRING) {
                    assert_int_equal(ex.v.str.len, ey.v.str.len);
                    if (ex.v.str.len) assert_memory_equal(ex.v.str.ptr, ey.v.str.ptr, ex.v.str.len);
                } else {
                    assert_memory_equal(&ex.v, &ey.v, sizeof ex.v);
                }
            }
        } else {
            assert_memory_equal(&x->v, &y->v, sizeof x->v);
        }
    }
    assert_int_equal(slm_gguf_n_tensors(a), slm_gguf_n_tensors(b));
    for (int64_t i = 0; i < slm_gguf_n_tensors(a); i++) {
        const slm_gguf_tensor *x = slm_gguf_tensor_at(a, i), *y = slm_gguf_tensor_at(b, i);
        assert_true(x->name.len == y->name.len && !memcmp(x->name.ptr, y->name.ptr, x->name.len));
        assert_int_equal(x->n_dims, y->n_dims);
        assert_memory_equal(x->ne, y->ne, sizeof x->ne);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->offset, y->offset);
        assert_int_equal(x->nbytes, y->nbytes);
        assert_memory_equal(x->data, y->data, x->nbytes);
    }
}

static void test_round_trip_every_type(void **state) {
    (void)state;
    slm_gguf_writer *w = slm_gguf_writer_new();
    assert_non_null(w);
    TU_OK(slm_gguf_set_u32(w, "general.alignment", 64));
    TU_OK(slm_gguf_set_u8(w, "t.u8", 250));
    TU_OK(slm_gguf_set_i8(w, "t.i8", -100));
    TU_OK(slm_gguf_set_u16(w, "t.u16", 65000));
    TU_OK(slm_gguf_set_i16(w, "t.i16", -30000));
    TU_OK(slm_gguf_set_u32(w, "t.u32", 4000000000u));
    TU_OK(slm_gguf_set_i32(w, "t.i32", -2000000000));
    TU_OK(slm_gguf_set_u64(w, "t.u64", (1ull << 63) + 5));
    TU_OK(slm_gguf_set_i64(w, "t.i64", INT64_MIN + 1));
    TU_OK(slm_gguf_set_f32(w, "t.f32", 1.5f));
    TU_OK(slm_gguf_set_f64(w, "t.f64", -2.25e300));
    TU_OK(slm_gguf_set_bool(w, "t.bool", true));
    TU_OK(slm_gguf_set_str(w, "t.str", "hello"));
    TU_OK(slm_gguf_set_str(w, "t.empty", ""));
    TU_OK(slm_gguf_set_strn(w, "t.bytes", "\xff\x00z", 3));
    const char *strs[5] = {"", "a", "\xc3\x28", "tok\0en", "\xe2\x96\x81the"};
    const size_t lens[5] = {0, 1, 2, 6, 6};
    TU_OK(slm_gguf_set_arr_str(w, "t.arr_str", strs, lens, 5));
    TU_OK(slm_gguf_set_arr_str(w, "t.arr_str_empty", NULL, NULL, 0));
    TU_OK(slm_gguf_set_arr_i32(w, "t.arr_i32", (int32_t[]){-1, 0, 7, INT32_MAX}, 4));
    TU_OK(slm_gguf_set_arr_i32(w, "t.arr_i32_empty", NULL, 0));
    TU_OK(slm_gguf_set_arr_f32(w, "t.arr_f32", (float[]){0.5f, -3.25f, INFINITY}, 3));
    TU_OK(slm_gguf_set_arr_data(w, "t.arr_u8", SLM_GGUF_UINT8, (uint8_t[]){1, 2, 255}, 3));
    TU_OK(slm_gguf_set_arr_data(w, "t.arr_bool", SLM_GGUF_BOOL, (uint8_t[]){1, 0, 5}, 3));
    TU_OK(slm_gguf_set_arr_data(w, "t.arr_u64", SLM_GGUF_UINT64, (uint64_t[]){UINT64_MAX, 0}, 2));
    TU_OK(slm_gguf_set_arr_data(w, "t.arr_f64", SLM_GGUF_FLOAT64, (double[]){1e-300, -0.0}, 2));
    TU_OK(slm_gguf_set_arr_data(w, "t.arr_i16", SLM_GGUF_INT16, (int16_t[]){-5, 300}, 2));

    float f32[15];
    for (int i = 0; i < 15; i++) f32[i] = (float)i * 0.25f - 1;
    uint16_t f16[7] = {0x3c00, 0x4000, 0xbc00, 0x0000, 0x8000, 0x7c00, 0x0001};
    uint8_t q8[4 * 34];
    for (int i = 0; i < (int)sizeof q8; i++) q8[i] = (uint8_t)(i * 31 + 3);
    TU_OK(slm_gguf_add_tensor(w, "f32.weight", SLM_GGML_F32, 2, (uint64_t[]){5, 3}, f32, tu_err()));
    TU_OK(slm_gguf_add_tensor(w, "f16.weight", SLM_GGML_F16, 1, (uint64_t[]){7}, f16, tu_err()));
    TU_OK(slm_gguf_add_tensor(w, "q8.weight", SLM_GGML_Q8_0, 2, (uint64_t[]){64, 2}, q8, tu_err()));
    TU_OK(slm_gguf_add_tensor(w, "empty", SLM_GGML_F32, 2, (uint64_t[]){4, 0}, NULL, tu_err()));
    const char *path = tu_tmp_path("round.gguf");
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);

    slm_gguf *g = slm_gguf_open(path, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    assert_int_equal(slm_gguf_version(g), 3);
    assert_int_equal(slm_gguf_alignment(g), 64);
    assert_int_equal(slm_gguf_data_offset(g) % 64, 0);
    assert_int_equal(slm_gguf_n_kv(g), 25);
    /* keys in the order set */
    assert_true(slm_gguf_str_eq(slm_gguf_kv_at(g, 0)->key, "general.alignment"));
    assert_true(slm_gguf_str_eq(slm_gguf_kv_at(g, 24)->key, "t.arr_i16"));
    const slm_gguf_kv *kv;
    assert_int_equal((kv = slm_gguf_find_kv(g, "t.u8"))->type, SLM_GGUF_UINT8);
    assert_int_equal(kv->v.u64, 250);
    assert_int_equal((kv = slm_gguf_find_kv(g, "t.i8"))->type, SLM_GGUF_INT8);
    assert_int_equal(kv->v.i64, -100);
    assert_int_equal(slm_gguf_find_kv(g, "t.u16")->v.u64, 65000);
    assert_int_equal(slm_gguf_find_kv(g, "t.i16")->v.i64, -30000);
    assert_int_equal(slm_gguf_find_kv(g, "t.u32")->v.u64, 4000000000u);
    assert_int_equal(slm_gguf_find_kv(g, "t.i32")->v.i64, -2000000000);
    assert_true(slm_gguf_find_kv(g, "t.u64")->v.u64 == (1ull << 63) + 5);
    assert_true(slm_gguf_find_kv(g, "t.i64")->v.i64 == INT64_MIN + 1);
    assert_true(slm_gguf_find_kv(g, "t.f32")->v.f64 == 1.5);
    assert_int_equal(slm_gguf_find_kv(g, "t.f64")->type, SLM_GGUF_FLOAT64);
    assert_true(slm_gguf_find_kv(g, "t.f64")->v.f64 == -2.25e300);
    assert_true(slm_gguf_find_kv(g, "t.bool")->v.b);
    assert_true(slm_gguf_str_eq(slm_gguf_find_kv(g, "t.str")->v.str, "hello"));
    assert_int_equal(slm_gguf_find_kv(g, "t.empty")->v.str.len, 0);
    kv = slm_gguf_find_kv(g, "t.bytes");
    assert_int_equal(kv->v.str.len, 3);
    assert_memory_equal(kv->v.str.ptr, "\xff\x00z", 3);
    kv = slm_gguf_find_kv(g, "t.arr_str");
    assert_int_equal(kv->type, SLM_GGUF_ARRAY);
    assert_int_equal(kv->arr_type, SLM_GGUF_STRING);
    assert_int_equal(kv->arr_n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(kv->arr_strs[i].len, lens[i]);
        if (lens[i]) assert_memory_equal(kv->arr_strs[i].ptr, strs[i], lens[i]);
    }
    kv = slm_gguf_find_kv(g, "t.arr_str_empty");
    assert_int_equal(kv->arr_type, SLM_GGUF_STRING);
    assert_int_equal(kv->arr_n, 0);
    int32_t i32[4];
    TU_OK(slm_gguf_get_arr(g, "t.arr_i32", SLM_GGUF_INT32, &kv, tu_err()));
    TU_OK(slm_gguf_arr_copy_i32(g, kv, i32, tu_err()));
    assert_int_equal(i32[0], -1);
    assert_int_equal(i32[3], INT32_MAX);
    assert_int_equal(slm_gguf_find_kv(g, "t.arr_i32_empty")->arr_n, 0);
    float f3[3];
    TU_OK(slm_gguf_get_arr(g, "t.arr_f32", SLM_GGUF_FLOAT32, &kv, tu_err()));
    TU_OK(slm_gguf_arr_copy_f32(g, kv, f3, tu_err()));
    assert_true(f3[0] == 0.5f && f3[1] == -3.25f && isinf(f3[2]));
    slm_gguf_kv e;
    kv = slm_gguf_find_kv(g, "t.arr_u8");
    assert_true(slm_gguf_arr_at(kv, 2, &e) && e.type == SLM_GGUF_UINT8 && e.v.u64 == 255);
    assert_false(slm_gguf_arr_at(kv, 3, &e));
    kv = slm_gguf_find_kv(g, "t.arr_bool");
    assert_int_equal(kv->arr_data[2], 1); /* written as exactly 0/1, as gguf.cpp does */
    assert_true(slm_gguf_arr_at(kv, 0, &e) && e.v.b);
    assert_true(slm_gguf_arr_at(kv, 1, &e) && !e.v.b);
    kv = slm_gguf_find_kv(g, "t.arr_u64");
    assert_true(slm_gguf_arr_at(kv, 0, &e) && e.v.u64 == UINT64_MAX);
    kv = slm_gguf_find_kv(g, "t.arr_f64");
    assert_true(slm_gguf_arr_at(kv, 1, &e) && e.v.f64 == 0 && signbit(e.v.f64));
    kv = slm_gguf_find_kv(g, "t.arr_i16");
    assert_true(slm_gguf_arr_at(kv, 0, &e) && e.v.i64 == -5);

    assert_int_equal(slm_gguf_n_tensors(g), 4);
    const slm_gguf_tensor *t = slm_gguf_find_tensor(g, "f32.weight");
    assert_non_null(t);
    assert_int_equal(t->type, SLM_GGML_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 5);
    assert_int_equal(t->ne[1], 3);
    assert_int_equal(t->nbytes, sizeof f32);
    assert_memory_equal(t->data, f32, sizeof f32);
    t = slm_gguf_find_tensor(g, "f16.weight");
    assert_int_equal(t->type, SLM_GGML_F16);
    assert_int_equal(t->nbytes, sizeof f16);
    assert_memory_equal(t->data, f16, sizeof f16);
    t = slm_gguf_find_tensor(g, "q8.weight");
    assert_int_equal(t->type, SLM_GGML_Q8_0);
    assert_int_equal(t->nbytes, sizeof q8);
    assert_memory_equal(t->data, q8, sizeof q8);
    t = slm_gguf_find_tensor(g, "empty");
    assert_int_equal(t->nbytes, 0);
    assert_int_equal(slm_gguf_tensor_nelements(t), 0);
    assert_null(slm_gguf_find_tensor(g, "f32"));
    uint64_t expect_off = 0;
    for (int64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
        t = slm_gguf_tensor_at(g, i);
        assert_int_equal(t->offset, expect_off); /* packed in order, each padded to 64 */
        assert_int_equal((uintptr_t)t->data % 64, 0); /* the map is page-aligned */
        expect_off += (t->nbytes + 63) / 64 * 64;
    }
    assert_int_equal(slm_gguf_file_size(g), slm_gguf_data_offset(g) + expect_off);

    /* the same bytes from a buffer give the same file */
    size_t n;
    uint8_t *buf = read_file(path, &n);
    slm_gguf *m = slm_gguf_open_memory(buf, n, "round (memory)", tu_err());
    assert_non_null(m);
    assert_string_equal(slm_gguf_name(m), "round (memory)");
    compare_files(g, m);
    slm_gguf_close(m);
    free(buf);
    slm_gguf_close(g);
}

/* ---- llama.cpp's files ---- */

static void test_stories260K_facts(void **state) {
    (void)state;
    slm_gguf *g = slm_gguf_open(STORIES, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    assert_int_equal(slm_gguf_version(g), 3);
    assert_int_equal(slm_gguf_file_size(g), 1185376);
    assert_int_equal(slm_gguf_alignment(g), 32);
    assert_int_equal(slm_gguf_n_tensors(g), 48);
    slm_gguf_str s;
    TU_OK(slm_gguf_get_str(g, "general.architecture", &s, tu_err()));
    assert_true(slm_gguf_str_eq(s, "llama"));
    TU_OK(slm_gguf_get_str(g, "tokenizer.ggml.model", &s, tu_err()));
    assert_true(slm_gguf_str_eq(s, "llama"));
    uint32_t v;
    TU_OK(slm_gguf_get_u32(g, "llama.embedding_length", &v, tu_err()));
    assert_int_equal(v, 64);
    TU_OK(slm_gguf_get_u32(g, "llama.feed_forward_length", &v, tu_err()));
    assert_int_equal(v, 172);
    TU_OK(slm_gguf_get_u32(g, "llama.block_count", &v, tu_err()));
    assert_int_equal(v, 5);
    TU_OK(slm_gguf_get_u32(g, "llama.attention.head_count", &v, tu_err()));
    assert_int_equal(v, 8);
    TU_OK(slm_gguf_get_u32(g, "llama.attention.head_count_kv", &v, tu_err()));
    assert_int_equal(v, 4);
    TU_OK(slm_gguf_get_u32(g, "llama.context_length", &v, tu_err()));
    assert_int_equal(v, 2048);
    float eps;
    TU_OK(slm_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, tu_err()));
    assert_true(eps == 1e-5f);
    const slm_gguf_kv *tok;
    TU_OK(slm_gguf_get_arr(g, "tokenizer.ggml.tokens", SLM_GGUF_STRING, &tok, tu_err()));
    assert_int_equal(tok->arr_n, 512);
    assert_true(slm_gguf_str_eq(tok->arr_strs[1], "<s>"));
    assert_true(slm_gguf_str_eq(tok->arr_strs[2], "</s>"));
    const slm_gguf_kv *scores;
    TU_OK(slm_gguf_get_arr(g, "tokenizer.ggml.scores", SLM_GGUF_FLOAT32, &scores, tu_err()));
    assert_int_equal(scores->arr_n, 512);
    uint64_t params = 0;
    for (int64_t i = 0; i < 48; i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        assert_int_equal(t->type, SLM_GGML_F32);
        params += slm_gguf_tensor_nelements(t);
    }
    assert_int_equal(params, 292800);
    const slm_gguf_tensor *t = slm_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    t = slm_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 172);
    assert_int_equal(t->ne[1], 64);
    t = slm_gguf_find_tensor(g, "output_norm.weight");
    assert_int_equal(t->n_dims, 1);
    const float *norm = t->data;
    for (int i = 0; i < 64; i++) assert_true(isfinite(norm[i]));
    slm_gguf_close(g);
}

static void test_gpt2_vocab_opens_with_merges(void **state) {
    (void)state;
    slm_gguf *g = slm_gguf_open(VOCAB_GPT2, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    assert_int_equal(slm_gguf_n_tensors(g), 0);
    assert_int_equal(slm_gguf_data_offset(g), slm_gguf_file_size(g)); /* no padding after infos */
    const slm_gguf_kv *tok, *merges, *types;
    TU_OK(slm_gguf_get_arr(g, "tokenizer.ggml.tokens", SLM_GGUF_STRING, &tok, tu_err()));
    assert_int_equal(tok->arr_n, 50257);
    assert_true(slm_gguf_str_eq(tok->arr_strs[0], "!"));
    assert_true(slm_gguf_str_eq(tok->arr_strs[50256], "<|endoftext|>"));
    TU_OK(slm_gguf_get_arr(g, "tokenizer.ggml.merges", SLM_GGUF_STRING, &merges, tu_err()));
    assert_int_equal(merges->arr_n, 50000);
    assert_true(slm_gguf_str_eq(merges->arr_strs[0], "\xc4\xa0 t")); /* "Ġ t" */
    assert_true(slm_gguf_str_eq(merges->arr_strs[2], "h e"));
    TU_OK(slm_gguf_get_arr(g, "tokenizer.ggml.token_type", SLM_GGUF_INT32, &types, tu_err()));
    int32_t *tt = malloc(types->arr_n * sizeof *tt);
    TU_OK(slm_gguf_arr_copy_i32(g, types, tt, tu_err()));
    assert_int_equal(tt[0], 1);
    free(tt);
    uint32_t bos;
    TU_OK(slm_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos, tu_err()));
    assert_int_equal(bos, 50256);
    slm_gguf_close(g);

    g = slm_gguf_open(VOCAB_SPM, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    bool add_bos = false;
    TU_OK(slm_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, tu_err()));
    assert_true(add_bos);
    assert_int_equal(slm_gguf_find_kv(g, "tokenizer.ggml.tokens")->arr_n, 32000);
    slm_gguf_close(g);
}

/* Copies every key and tensor of src through the writer into path. */
static void rewrite(const char *src, const char *path) {
    slm_gguf *g = slm_gguf_open(src, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    slm_gguf_writer *w = slm_gguf_writer_new();
    for (int64_t i = 0; i < slm_gguf_n_kv(g); i++) TU_OK(slm_gguf_set_kv_from(w, g, slm_gguf_kv_at(g, i)));
    for (int64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        char name[SLM_GGUF_MAX_NAME];
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = '\0';
        TU_OK(slm_gguf_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, tu_err()));
    }
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf_close(g);
}

static void test_rewriting_llama_cpp_files_is_byte_identical(void **state) {
    (void)state;
    /* stories260K was written by llama.cpp: the writer must reproduce every byte */
    const char *path = tu_tmp_path("stories-copy.gguf");
    rewrite(STORIES, path);
    size_t n0, n1;
    uint8_t *a = read_file(STORIES, &n0), *b = read_file(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(a, b, n0);
    free(a);
    free(b);
    /* the vocabulary files end unpadded after the infos; gguf.cpp's writer pads with zeros */
    path = tu_tmp_path("gpt2-copy.gguf");
    rewrite(VOCAB_GPT2, path);
    a = read_file(VOCAB_GPT2, &n0);
    b = read_file(path, &n1);
    assert_int_equal(n1, (n0 + 31) / 32 * 32);
    assert_memory_equal(a, b, n0);
    for (size_t i = n0; i < n1; i++) assert_int_equal(b[i], 0);
    free(a);
    free(b);
}

/* ---- getters ---- */

static void test_getters_convert_and_name_the_key(void **state) {
    (void)state;
    slm_gguf_writer *w = slm_gguf_writer_new();
    TU_OK(slm_gguf_set_u8(w, "a.u8", 7));
    TU_OK(slm_gguf_set_i32(w, "a.i32", 12));
    TU_OK(slm_gguf_set_i32(w, "a.neg", -1));
    TU_OK(slm_gguf_set_u64(w, "a.big", 1ull << 40));
    TU_OK(slm_gguf_set_u64(w, "a.huge", UINT64_MAX));
    TU_OK(slm_gguf_set_f64(w, "a.f64", 0.25));
    TU_OK(slm_gguf_set_f64(w, "a.f64big", 1e300));
    TU_OK(slm_gguf_set_bool(w, "a.bool", true));
    TU_OK(slm_gguf_set_str(w, "a.str", "x"));
    TU_OK(slm_gguf_set_arr_data(w, "a.arr_u8", SLM_GGUF_UINT8, (uint8_t[]){3, 200}, 2));
    TU_OK(slm_gguf_set_arr_data(w, "a.arr_u32", SLM_GGUF_UINT32, (uint32_t[]){1, 3000000000u}, 2));
    TU_OK(slm_gguf_set_arr_data(w, "a.arr_f64", SLM_GGUF_FLOAT64, (double[]){0.5, -2}, 2));
    const char *path = tu_tmp_path("getters.gguf");
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    assert_non_null(g);
    slm_err e;
    uint32_t u = 99;
    int64_t i64 = 0;
    float f = 0;
    bool b = false;
    slm_gguf_str s;
    TU_OK(slm_gguf_get_u32(g, "a.u8", &u, tu_err()));
    assert_int_equal(u, 7);
    TU_OK(slm_gguf_get_u32(g, "a.i32", &u, tu_err()));
    assert_int_equal(u, 12);
    assert_int_equal(slm_gguf_get_u32(g, "a.neg", &u, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "'a.neg'"));
    assert_non_null(strstr(e.msg, "-1"));
    assert_int_equal(slm_gguf_get_u32(g, "a.big", &u, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "does not fit in u32"));
    TU_OK(slm_gguf_get_i64(g, "a.big", &i64, tu_err()));
    assert_true(i64 == (1ll << 40));
    TU_OK(slm_gguf_get_i64(g, "a.neg", &i64, tu_err()));
    assert_true(i64 == -1);
    assert_int_equal(slm_gguf_get_i64(g, "a.huge", &i64, &e), SLM_ERR_FORMAT);
    assert_int_equal(slm_gguf_get_u32(g, "a.str", &u, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "getters.gguf: key 'a.str'"));
    assert_non_null(strstr(e.msg, "found str"));
    assert_int_equal(slm_gguf_get_u32(g, "no.such.key", &u, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "missing key 'no.such.key'"));
    assert_non_null(strstr(e.msg, "getters.gguf"));
    TU_OK(slm_gguf_get_f32(g, "a.f64", &f, tu_err()));
    assert_true(f == 0.25f);
    assert_int_equal(slm_gguf_get_f32(g, "a.f64big", &f, &e), SLM_ERR_FORMAT);
    assert_int_equal(slm_gguf_get_f32(g, "a.u8", &f, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "found u8"));
    TU_OK(slm_gguf_get_bool(g, "a.bool", &b, tu_err()));
    assert_true(b);
    assert_int_equal(slm_gguf_get_bool(g, "a.u8", &b, &e), SLM_ERR_FORMAT);
    TU_OK(slm_gguf_get_str(g, "a.str", &s, tu_err()));
    assert_true(slm_gguf_str_eq(s, "x"));
    assert_false(slm_gguf_str_eq(s, "xy"));
    /* optional: absent leaves the value, present converts, wrong type still fails */
    u = 42;
    TU_OK(slm_gguf_opt_u32(g, "absent", &u, tu_err()));
    assert_int_equal(u, 42);
    TU_OK(slm_gguf_opt_u32(g, "a.u8", &u, tu_err()));
    assert_int_equal(u, 7);
    f = 3;
    TU_OK(slm_gguf_opt_f32(g, "absent", &f, tu_err()));
    assert_true(f == 3);
    b = false;
    TU_OK(slm_gguf_opt_bool(g, "absent", &b, tu_err()));
    assert_false(b);
    assert_int_equal(slm_gguf_opt_bool(g, "a.str", &b, &e), SLM_ERR_FORMAT);
    /* arrays */
    const slm_gguf_kv *kv;
    int32_t i32[2];
    float f2[2];
    TU_OK(slm_gguf_get_arr(g, "a.arr_u8", SLM_GGUF_INT32, &kv, tu_err()));
    TU_OK(slm_gguf_arr_copy_i32(g, kv, i32, tu_err()));
    assert_int_equal(i32[1], 200);
    TU_OK(slm_gguf_arr_copy_f32(g, kv, f2, tu_err()));
    assert_true(f2[1] == 200.0f);
    TU_OK(slm_gguf_get_arr(g, "a.arr_u32", SLM_GGUF_INT32, &kv, tu_err()));
    assert_int_equal(slm_gguf_arr_copy_i32(g, kv, i32, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "element 1 = 3000000000"));
    assert_non_null(strstr(e.msg, "'a.arr_u32'"));
    assert_int_equal(slm_gguf_get_arr(g, "a.arr_u32", SLM_GGUF_STRING, &kv, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "expected arr[str], found arr[u32]"));
    assert_int_equal(slm_gguf_get_arr(g, "a.arr_f64", SLM_GGUF_INT32, &kv, &e), SLM_ERR_FORMAT);
    TU_OK(slm_gguf_get_arr(g, "a.arr_f64", SLM_GGUF_FLOAT32, &kv, tu_err()));
    TU_OK(slm_gguf_arr_copy_f32(g, kv, f2, tu_err()));
    assert_true(f2[0] == 0.5f && f2[1] == -2.0f);
    assert_int_equal(slm_gguf_arr_copy_i32(g, kv, i32, &e), SLM_ERR_FORMAT);
    assert_int_equal(slm_gguf_get_arr(g, "a.str", SLM_GGUF_STRING, &kv, &e), SLM_ERR_FORMAT);
    assert_int_equal(slm_gguf_get_arr(g, "absent", SLM_GGUF_STRING, &kv, &e), SLM_ERR_FORMAT);
    assert_null(slm_gguf_kv_at(g, -1));
    assert_null(slm_gguf_kv_at(g, slm_gguf_n_kv(g)));
    assert_null(slm_gguf_tensor_at(g, 0));
    slm_gguf_close(g);
}

/* ---- writer API ---- */

static void test_writer_keeps_first_order_and_replaces(void **state) {
    (void)state;
    slm_gguf_writer *w = slm_gguf_writer_new();
    TU_OK(slm_gguf_set_u32(w, "first", 1));
    TU_OK(slm_gguf_set_str(w, "second", "two"));
    TU_OK(slm_gguf_set_u32(w, "third", 3));
    TU_OK(slm_gguf_set_str(w, "first", "replaced, and now a string"));
    TU_OK(slm_gguf_set_u32(w, "gone", 4));
    slm_gguf_remove_kv(w, "gone");
    slm_gguf_remove_kv(w, "never set");
    TU_OK(slm_gguf_set_u32(w, "fourth", 4));
    const char *path = tu_tmp_path("order.gguf");
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    assert_non_null(g);
    assert_int_equal(slm_gguf_n_kv(g), 4);
    const char *order[4] = {"first", "second", "third", "fourth"};
    for (int i = 0; i < 4; i++) assert_true(slm_gguf_str_eq(slm_gguf_kv_at(g, i)->key, order[i]));
    assert_int_equal(slm_gguf_kv_at(g, 0)->type, SLM_GGUF_STRING);
    assert_true(slm_gguf_str_eq(slm_gguf_kv_at(g, 0)->v.str, "replaced, and now a string"));
    assert_null(slm_gguf_find_kv(g, "gone"));
    assert_int_equal(slm_gguf_n_tensors(g), 0);
    slm_gguf_close(g);
}

static void test_writer_rejects_bad_tensors(void **state) {
    (void)state;
    slm_gguf_writer *w = slm_gguf_writer_new();
    float d[64] = {0};
    slm_err e;
    TU_OK(slm_gguf_add_tensor(w, "ok", SLM_GGML_F32, 1, (uint64_t[]){4}, d, tu_err()));
    assert_int_equal(slm_gguf_add_tensor(w, "ok", SLM_GGML_F32, 1, (uint64_t[]){4}, d, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "duplicate"));
    assert_int_equal(slm_gguf_add_tensor(w, "q", SLM_GGML_Q8_0, 1, (uint64_t[]){33}, d, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "'q'"));
    assert_non_null(strstr(e.msg, "blocks"));
    assert_int_equal(slm_gguf_add_tensor(w, "t", 31, 1, (uint64_t[]){4}, d, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "unknown tensor type 31"));
    assert_int_equal(slm_gguf_add_tensor(w, "d0", SLM_GGML_F32, 0, (uint64_t[]){4}, d, &e), SLM_ERR_ARG);
    assert_int_equal(slm_gguf_add_tensor(w, "d5", SLM_GGML_F32, 5, (uint64_t[]){1, 1, 1, 1, 1}, d, &e), SLM_ERR_ARG);
    assert_int_equal(slm_gguf_add_tensor(w, "big", SLM_GGML_F32, 2, (uint64_t[]){1ull << 40, 1ull << 40}, d, &e),
                     SLM_ERR_ARG);
    assert_int_equal(slm_gguf_add_tensor(w, "nodata", SLM_GGML_F32, 1, (uint64_t[]){4}, NULL, &e), SLM_ERR_ARG);
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    assert_int_equal(slm_gguf_add_tensor(w, longname, SLM_GGML_F32, 1, (uint64_t[]){4}, d, &e), SLM_ERR_ARG);
    longname[63] = '\0'; /* 63 bytes is the longest llama.cpp accepts */
    TU_OK(slm_gguf_add_tensor(w, longname, SLM_GGML_F32, 1, (uint64_t[]){4}, d, tu_err()));
    assert_int_equal(slm_gguf_add_tensor(w, "", SLM_GGML_F32, 1, (uint64_t[]){4}, d, &e), SLM_ERR_ARG);
    assert_int_equal(slm_gguf_set_str(w, "k", NULL), SLM_ERR_ARG);
    assert_int_equal(slm_gguf_set_u32(NULL, "k", 1), SLM_ERR_ARG);
    const char *path = tu_tmp_path("rejects.gguf");
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    assert_non_null(g);
    assert_int_equal(slm_gguf_n_tensors(g), 2);
    assert_non_null(slm_gguf_find_tensor(g, longname));
    slm_gguf_close(g);
}

static bool dir_has_temp_files(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -a \"$(dirname '%s')\" | grep -q '\\.tmp\\.'", path);
    return system(cmd) == 0;
}

static void test_writer_failure_keeps_old_file(void **state) {
    (void)state;
    const char *path = tu_tmp_path("atomic.gguf");
    slm_gguf_writer *w = small_writer();
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    size_t n0;
    uint8_t *before = read_file(path, &n0);

    /* content rejected at write: nothing is touched */
    slm_err e;
    w = small_writer();
    TU_OK(slm_gguf_set_u32(w, "general.alignment", 48));
    assert_int_equal(slm_gguf_writer_write(w, path, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "general.alignment"));
    TU_OK(slm_gguf_set_i32(w, "general.alignment", 32));
    assert_int_equal(slm_gguf_writer_write(w, path, &e), SLM_ERR_ARG);
    slm_gguf_writer_free(w);
    /* a directory that does not exist */
    w = small_writer();
    assert_int_equal(slm_gguf_writer_write(w, tu_tmp_path("no/such/dir/x.gguf"), &e), SLM_ERR_IO);
    slm_gguf_writer_free(w);

    /* a write that fails half-way (file size limit) in a child process */
    static float big[1 << 18];
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) big[i] = (float)i;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 * 1024, 64 * 1024};
        setrlimit(RLIMIT_FSIZE, &rl);
        slm_gguf_writer *cw = small_writer();
        if (slm_gguf_add_tensor(cw, "big", SLM_GGML_F32, 1, (uint64_t[]){1 << 18}, big, NULL)) _exit(10);
        slm_err ce;
        slm_status s = slm_gguf_writer_write(cw, path, &ce);
        _exit(s == SLM_ERR_IO && strstr(ce.msg, "atomic.gguf") ? 0 : 11);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    size_t n1;
    uint8_t *after = read_file(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    assert_false(dir_has_temp_files(path));
    free(before);
    free(after);
}

/* ---- reader errors ---- */

/* Opens b (after an optional change) and checks the error's code and message parts. */
static void expect_error(const tbuf *b, slm_status code, const char *part1, const char *part2) {
    slm_err e;
    slm_err_clear(&e);
    uint8_t *copy;
    slm_gguf *g = open_copy(b->p, b->n, &copy, &e);
    if (g) fail_msg("opened, expected an error with '%s'", part1);
    free(copy);
    if (e.code != code) fail_msg("code %s, expected %s: %s", slm_status_name(e.code), slm_status_name(code), e.msg);
    if (!strstr(e.msg, "fuzz.gguf: ")) fail_msg("message does not name the file: %s", e.msg);
    if (part1 && !strstr(e.msg, part1)) fail_msg("message lacks '%s': %s", part1, e.msg);
    if (part2 && !strstr(e.msg, part2)) fail_msg("message lacks '%s': %s", part2, e.msg);
}

static void test_errors_name_the_field_and_offset(void **state) {
    (void)state;
    small_opts o = default_opts();
    small_offs at;
    tbuf b = build_small(&o, &at);
    assert_int_equal(fuzz_one(b.p, b.n), 1);
    char part[128];

    /* data past the end: absolute byte range and the file size */
    tbuf c = {0};
    tb_put(&c, b.p, b.n);
    set_u64_at(c.p, at.t_offset[2], 4096);
    snprintf(part, sizeof part, "data [%zu, %zu) past end of file (%zu bytes)", at.data + 4096, at.data + 4096 + 6, b.n);
    expect_error(&c, SLM_ERR_FORMAT, "tensor 2 'h'", part);
    /* the file cut inside the last tensor */
    c.n = b.n - 30;
    expect_error(&c, SLM_ERR_FORMAT, "tensor 2 'h'", "past end of file");
    c.n = b.n;
    memcpy(c.p, b.p, b.n);
    /* huge key length */
    set_u64_at(c.p, at.key0_len, UINT64_MAX);
    snprintf(part, sizeof part, "at offset %zu", at.key0_len);
    expect_error(&c, SLM_ERR_FORMAT, "key 0", part);
    memcpy(c.p, b.p, b.n);
    /* huge string array */
    set_u64_at(c.p, at.kv2_count, 1ull << 63);
    snprintf(part, sizeof part, "offset %zu", at.kv2_count);
    expect_error(&c, SLM_ERR_FORMAT, "key 2 'tokenizer.ggml.tokens'", part);
    memcpy(c.p, b.p, b.n);
    /* a string element past the end */
    set_u64_at(c.p, at.kv2_elem0_len, 1u << 20);
    expect_error(&c, SLM_ERR_FORMAT, "'tokenizer.ggml.tokens': element 0", "past end of file");
    memcpy(c.p, b.p, b.n);
    /* huge counts in the header */
    set_u64_at(c.p, at.n_kv, UINT64_MAX);
    expect_error(&c, SLM_ERR_FORMAT, "key/value count 18446744073709551615 at offset 16", NULL);
    memcpy(c.p, b.p, b.n);
    set_u64_at(c.p, at.n_tensors, 1ull << 63);
    expect_error(&c, SLM_ERR_FORMAT, "tensor count", "offset 8");
    memcpy(c.p, b.p, b.n);
    /* a misaligned tensor offset */
    set_u64_at(c.p, at.t_offset[1], 40);
    expect_error(&c, SLM_ERR_FORMAT, "tensor 1 'q'", "not a multiple of the alignment 32");
    memcpy(c.p, b.p, b.n);
    /* n_dims */
    set_u32_at(c.p, at.t_ndims[0], 5);
    snprintf(part, sizeof part, "n_dims 5 at offset %zu", at.t_ndims[0]);
    expect_error(&c, SLM_ERR_FORMAT, "tensor 0 'w'", part);
    memcpy(c.p, b.p, b.n);
    /* a negative (as int64) dimension */
    set_u64_at(c.p, at.t_ne0[0], 1ull << 63);
    expect_error(&c, SLM_ERR_FORMAT, "tensor 0 'w'", "negative");
    memcpy(c.p, b.p, b.n);
    /* element count overflow: 2^62 x 2 ... with F32 */
    set_u64_at(c.p, at.t_ne0[0], 1ull << 62);
    expect_error(&c, SLM_ERR_FORMAT, "tensor 0 'w'", "overflows");
    memcpy(c.p, b.p, b.n);
    /* an unknown value type */
    set_u32_at(c.p, at.kv3_type, 13);
    expect_error(&c, SLM_ERR_FORMAT, "key 3 'tokenizer.ggml.scores'", "unknown value type 13");
    memcpy(c.p, b.p, b.n);
    /* version and magic */
    set_u32_at(c.p, 4, 2);
    expect_error(&c, SLM_ERR_UNSUPPORTED, "GGUF version 2", "only version 3");
    set_u32_at(c.p, 4, 1);
    expect_error(&c, SLM_ERR_UNSUPPORTED, "GGUF version 1", NULL);
    set_u32_at(c.p, 4, 0x03000000); /* the bytes 00 00 00 03 of a big-endian file */
    expect_error(&c, SLM_ERR_UNSUPPORTED, "big-endian", "offset 4");
    set_u32_at(c.p, 4, 4);
    expect_error(&c, SLM_ERR_UNSUPPORTED, "version 4", NULL);
    memcpy(c.p, "FUGG", 4);
    expect_error(&c, SLM_ERR_UNSUPPORTED, "big-endian", NULL);
    memcpy(c.p, "GGML", 4);
    expect_error(&c, SLM_ERR_FORMAT, "not a GGUF file", "'GGML'");
    c.n = 2;
    expect_error(&c, SLM_ERR_FORMAT, "too short", NULL);
    c.n = 0;
    expect_error(&c, SLM_ERR_FORMAT, "0 bytes", NULL);
    free(c.p);

    /* variants built differently */
    tbuf v;
    o = default_opts();
    o.key1 = "general.architecture";
    v = build_small(&o, NULL);
    expect_error(&v, SLM_ERR_FORMAT, "key 1 'general.architecture'", "duplicate key (first set by key 0)");
    free(v.p);
    o = default_opts();
    o.t2_name = "w";
    v = build_small(&o, NULL);
    expect_error(&v, SLM_ERR_FORMAT, "tensor 2 'w'", "duplicate tensor name");
    free(v.p);
    o = default_opts();
    o.nested = true;
    v = build_small(&o, NULL);
    expect_error(&v, SLM_ERR_FORMAT, "'tokenizer.ggml.scores'", "nested arrays");
    free(v.p);
    o = default_opts();
    o.align_value = 48;
    v = build_small(&o, NULL);
    expect_error(&v, SLM_ERR_FORMAT, "'general.alignment'", "48 is not a power of two");
    free(v.p);
    o = default_opts();
    o.align_value = 0;
    v = build_small(&o, NULL);
    expect_error(&v, SLM_ERR_FORMAT, "'general.alignment'", "power of two");
    free(v.p);
    o = default_opts();
    o.align_type = SLM_GGUF_INT32;
    v = build_small(&o, NULL);
    expect_error(&v, SLM_ERR_FORMAT, "'general.alignment'", "must be of type u32, found i32");
    free(v.p);
    o = default_opts();
    o.q_type = 31;
    v = build_small(&o, NULL);
    expect_error(&v, SLM_ERR_UNSUPPORTED, "tensor 1 'q'", "unknown tensor type 31");
    free(v.p);
    o = default_opts();
    o.q_type = 1000;
    v = build_small(&o, NULL);
    expect_error(&v, SLM_ERR_UNSUPPORTED, "tensor 1 'q'", "unknown tensor type 1000");
    free(v.p);
    o = default_opts();
    o.q_ne0 = 33;
    v = build_small(&o, NULL);
    expect_error(&v, SLM_ERR_FORMAT, "tensor 1 'q'", "not a whole number of q8_0 blocks of 32");
    free(v.p);
    /* a key with bytes that are not printable is quoted safely */
    o = default_opts();
    o.key1 = "bad\nkey'";
    small_offs vat;
    v = build_small(&o, &vat);
    set_u32_at(v.p, vat.kv1_val - 4, 99);
    expect_error(&v, SLM_ERR_FORMAT, "key 1 'bad\\x0akey\\x27'", "unknown value type 99");
    free(v.p);
    free(b.p);

    slm_err e;
    assert_null(slm_gguf_open(tu_tmp_path("missing.gguf"), &e));
    assert_int_equal(e.code, SLM_ERR_IO);
    assert_non_null(strstr(e.msg, "missing.gguf"));
}

static void test_empty_tensors_and_no_tensors(void **state) {
    (void)state;
    /* a zero-element tensor (allowed by gguf.cpp) and a file with no tensors and no padding */
    tbuf b = {0};
    tb_put(&b, "GGUF", 4);
    tb_u32(&b, 3);
    tb_u64(&b, 1);
    tb_u64(&b, 0);
    tb_str(&b, "empty");
    tb_u32(&b, 2);
    tb_u64(&b, 0);
    tb_u64(&b, 5);
    tb_u32(&b, SLM_GGML_Q4_K);
    tb_u64(&b, 0);
    tb_pad(&b, 32);
    uint8_t *copy;
    slm_gguf *g = open_copy(b.p, b.n, &copy, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    assert_int_equal(slm_gguf_tensor_at(g, 0)->nbytes, 0);
    assert_int_equal(slm_gguf_data_offset(g), b.n);
    slm_gguf_close(g);
    free(copy);
    /* without the padding the data section would start past the end */
    size_t unpadded = 4 + 4 + 8 + 8 + 8 + 5 + 4 + 16 + 4 + 8;
    b.n = unpadded;
    assert_int_equal(fuzz_one(b.p, b.n), 0);
    /* n_tensors = 0: data section right after the header, nothing more needed */
    set_u64_at(b.p, 8, 0);
    b.n = 24;
    g = open_copy(b.p, b.n, &copy, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    assert_int_equal(slm_gguf_data_offset(g), 24);
    assert_int_equal(slm_gguf_n_kv(g), 0);
    slm_gguf_close(g);
    free(copy);
    free(b.p);
}

/* ---- fuzzing ---- */

static void test_fuzz_every_truncation(void **state) {
    (void)state;
    small_opts o = default_opts();
    tbuf b = build_small(&o, NULL);
    int opened = 0;
    for (size_t n = 0; n <= b.n; n++) opened += fuzz_one(b.p, n);
    /* only cuts inside the final padding leave every tensor whole */
    assert_int_equal(opened, 27);
    assert_int_equal(fuzz_one(b.p, b.n), 1);
    /* the same over a real file's header and vocabulary (first 16 KiB of stories260K) */
    size_t n;
    uint8_t *s = read_file(STORIES, &n);
    for (size_t cut = 0; cut < 14200; cut += 7) fuzz_one(s, cut);
    free(s);
    free(b.p);
}

static void test_fuzz_every_byte(void **state) {
    (void)state;
    small_opts o = default_opts();
    tbuf b = build_small(&o, NULL);
    uint8_t *m = malloc(b.n);
    int opened = 0, runs = 0;
    for (size_t i = 0; i < b.n; i++) {
        const uint8_t orig = b.p[i];
        const uint8_t vals[8] = {0x00, 0xff, 0x80, 0x7f, (uint8_t)(orig ^ 1), (uint8_t)(orig ^ 0x10),
                                 (uint8_t)(orig + 1), (uint8_t)(orig - 1)};
        for (int k = 0; k < 8; k++) {
            memcpy(m, b.p, b.n);
            m[i] = vals[k];
            opened += fuzz_one(m, b.n);
            runs++;
        }
    }
    assert_true(opened > 0 && opened < runs); /* both outcomes happen */
    free(m);
    free(b.p);
}

/* A file with every value type and three tensor types, alignment 16, from the writer. */
static tbuf build_rich(void) {
    slm_gguf_writer *w = slm_gguf_writer_new();
    TU_OK(slm_gguf_set_u32(w, "general.alignment", 16));
    TU_OK(slm_gguf_set_u8(w, "u8", 1));
    TU_OK(slm_gguf_set_i8(w, "i8", -1));
    TU_OK(slm_gguf_set_u16(w, "u16", 2));
    TU_OK(slm_gguf_set_i16(w, "i16", -2));
    TU_OK(slm_gguf_set_i32(w, "i32", -3));
    TU_OK(slm_gguf_set_u64(w, "u64", 4));
    TU_OK(slm_gguf_set_i64(w, "i64", -4));
    TU_OK(slm_gguf_set_f32(w, "f32", 1.5f));
    TU_OK(slm_gguf_set_f64(w, "f64", 2.5));
    TU_OK(slm_gguf_set_bool(w, "b", true));
    TU_OK(slm_gguf_set_str(w, "s", "str"));
    const char *ss[3] = {"x", "", "yz"};
    TU_OK(slm_gguf_set_arr_str(w, "as", ss, NULL, 3));
    TU_OK(slm_gguf_set_arr_i32(w, "ai", (int32_t[]){1, -2, 3}, 3));
    TU_OK(slm_gguf_set_arr_data(w, "ab", SLM_GGUF_BOOL, (uint8_t[]){1, 0}, 2));
    TU_OK(slm_gguf_set_arr_data(w, "au64", SLM_GGUF_UINT64, (uint64_t[]){7}, 1));
    TU_OK(slm_gguf_set_arr_data(w, "af64", SLM_GGUF_FLOAT64, (double[]){0.5}, 1));
    static float f[12];
    static uint8_t q[2 * 34];
    static uint16_t h[4];
    TU_OK(slm_gguf_add_tensor(w, "a", SLM_GGML_F32, 3, (uint64_t[]){2, 3, 2}, f, tu_err()));
    TU_OK(slm_gguf_add_tensor(w, "b", SLM_GGML_Q8_0, 2, (uint64_t[]){32, 2}, q, tu_err()));
    TU_OK(slm_gguf_add_tensor(w, "c", SLM_GGML_F16, 1, (uint64_t[]){4}, h, tu_err()));
    const char *path = tu_tmp_path("rich.gguf");
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    tbuf b = {0};
    b.p = read_file(path, &b.n);
    b.cap = b.n;
    return b;
}

/* Random 1-4 field changes (bytes, u32 type-like values, special u64 lengths), sometimes cut. */
static void mutate_many(const tbuf *b, uint64_t seed, int iters) {
    uint8_t *m = malloc(b->n);
    slm_rng r;
    slm_rng_seed(&r, seed, 1);
    static const uint64_t specials[] = {0, 1, 31, 32, 33, 0x7fffffffffffffffull, 0x8000000000000000ull,
                                        UINT64_MAX, 0xffffffffull, 0x100000000ull, 1ull << 40};
    for (int iter = 0; iter < iters; iter++) {
        memcpy(m, b->p, b->n);
        int changes = 1 + (int)slm_rng_below(&r, 4);
        for (int c = 0; c < changes; c++) {
            size_t at = slm_rng_below(&r, (uint32_t)b->n);
            switch (slm_rng_below(&r, 3)) {
            case 0: m[at] = (uint8_t)slm_rng_u32(&r); break;
            case 1:
                if (at + 8 <= b->n) set_u64_at(m, at, specials[slm_rng_below(&r, sizeof specials / sizeof specials[0])]);
                break;
            default:
                if (at + 4 <= b->n) set_u32_at(m, at, slm_rng_below(&r, 64));
                break;
            }
        }
        size_t n = slm_rng_below(&r, 8) == 0 ? slm_rng_below(&r, (uint32_t)b->n + 1) : b->n;
        fuzz_one(m, n);
    }
    free(m);
}

static void test_fuzz_random_mutations(void **state) {
    (void)state;
    small_opts o = default_opts();
    tbuf b = build_small(&o, NULL);
    mutate_many(&b, 20240607, 4000);
    free(b.p);
    b = build_rich();
    assert_int_equal(fuzz_one(b.p, b.n), 1);
    mutate_many(&b, 7, 4000);
    free(b.p);
}

static void test_fuzz_huge_lengths_at_known_fields(void **state) {
    (void)state;
    small_opts o = default_opts();
    small_offs at;
    tbuf b = build_small(&o, &at);
    uint8_t *m = malloc(b.n);
    const size_t u64_fields[] = {at.n_tensors, at.n_kv, at.key0_len, at.kv0_val_len, at.kv2_count,
                                 at.kv2_elem0_len, at.kv3_count, at.t_name_len[0], at.t_name_len[2],
                                 at.t_ne0[0], at.t_ne0[0] + 8, at.t_ne0[1], at.t_offset[0], at.t_offset[2]};
    const uint64_t vals[] = {1ull << 63, UINT64_MAX, (1ull << 63) - 1, 1ull << 32, 1ull << 62,
                             b.n, b.n + 1, (uint64_t)b.n * 8, 0x4000000000000000ull + 8};
    for (size_t f = 0; f < sizeof u64_fields / sizeof u64_fields[0]; f++) {
        for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++) {
            memcpy(m, b.p, b.n);
            set_u64_at(m, u64_fields[f], vals[v]);
            /* none of these can describe a valid file of this size, except a tensor offset
             * that happens to stay inside (none here) */
            assert_int_equal(fuzz_one(m, b.n), 0);
        }
    }
    const size_t u32_fields[] = {4, at.kv1_val - 4, at.kv3_type, at.kv3_type + 4, at.align_val,
                                 at.t_ndims[0], at.t_ndims[1], at.t_type[0], at.t_type[1]};
    const uint32_t vals32[] = {UINT32_MAX, 0x80000000u, 0x7fffffffu, 13, 64};
    for (size_t f = 0; f < sizeof u32_fields / sizeof u32_fields[0]; f++) {
        for (size_t v = 0; v < sizeof vals32 / sizeof vals32[0]; v++) {
            memcpy(m, b.p, b.n);
            set_u32_at(m, u32_fields[f], vals32[v]);
            fuzz_one(m, b.n);
        }
    }
    free(m);
    free(b.p);
}

/* ---- the command ---- */

/* Runs a shell command; returns its exit status and its output (stdout and stderr). */
static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = 0, got;
    while (n + 1 < cap && (got = fread(out + n, 1, cap - 1 - n, p)) > 0) n += got;
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_info(void **state) {
    (void)state;
    const char *slm = getenv("SLM");
    if (!slm || access(slm, X_OK) != 0) skip(); /* scripts/run-tests sets SLM */
    static char out[1 << 22]; /* --all prints 100k vocabulary strings */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s info %s 2>&1", slm, STORIES);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    const char *want[] = {"version:       3", "alignment:     32", "1185376 bytes", "architecture:  \"llama\"",
                          "llama.block_count", "u32          5", "arr[str]     512 [\"<unk>\", \"<s>\"",
                          "tensors: 48", "token_embd.weight", "64 x 512", "parameters:  292800",
                          "f32          48 tensors"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i])) fail_msg("slm info output lacks '%s'", want[i]);
    snprintf(cmd, sizeof cmd, "%s info %s --all 2>&1", slm, VOCAB_GPT2);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "arr[str]     50257 [\"!\""));
    assert_non_null(strstr(out, "\"<|endoftext|>\"]")); /* --all reaches the last token */
    /* a bad file: exit 1 and a message naming it */
    const char *bad = tu_tmp_path("bad.gguf");
    FILE *f = fopen(bad, "wb");
    fwrite("GGUF\x02\x00\x00\x00", 1, 8, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s info %s 2>&1", slm, bad);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "bad.gguf"));
    assert_non_null(strstr(out, "version 2"));
    snprintf(cmd, sizeof cmd, "%s info --help 2>&1", slm);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "usage: slm info FILE"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_tables_match_ggml),
        cmocka_unit_test(test_writer_bytes_match_hand_layout),
        cmocka_unit_test(test_writer_drops_trailing_unit_dims_like_ggml),
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_stories260K_facts),
        cmocka_unit_test(test_gpt2_vocab_opens_with_merges),
        cmocka_unit_test(test_rewriting_llama_cpp_files_is_byte_identical),
        cmocka_unit_test(test_getters_convert_and_name_the_key),
        cmocka_unit_test(test_writer_keeps_first_order_and_replaces),
        cmocka_unit_test(test_writer_rejects_bad_tensors),
        cmocka_unit_test(test_writer_failure_keeps_old_file),
        cmocka_unit_test(test_errors_name_the_field_and_offset),
        cmocka_unit_test(test_empty_tensors_and_no_tensors),
        cmocka_unit_test(test_fuzz_every_truncation),
        cmocka_unit_test(test_fuzz_every_byte),
        cmocka_unit_test(test_fuzz_random_mutations),
        cmocka_unit_test(test_fuzz_huge_lengths_at_known_fields),
        cmocka_unit_test(test_cli_info),
    };
    return cmocka_run_group_tests_name("gguf", tests, NULL, NULL);
}
