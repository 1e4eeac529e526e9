/* quantize.c: model-file quantization (quantize.h has the policy and the contract).
 *
 * Two passes over the tensor records: first each tensor's target type is chosen (policy,
 * overrides, fallback) and every override is checked against the file, so a bad argument fails
 * before any work; then tensors are converted in file order, a bounded chunk of rows at a time
 * through f32 (the source type's to_float, the target's reference from_float), and handed to
 * the GGUF writer, which writes the file atomically. Converted data is held until the write;
 * copied tensors point into the input's map.
 */
#include "compress/quantize.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant.h"

enum { CHUNK_ELEMS = 1 << 20 }; /* f32 staging per conversion step */

static const struct {
    const char *name;
    uint32_t type;
    uint32_t ftype; /* llama.cpp's LLAMA_FTYPE for the whole file */
} TARGETS[] = {
    {"f32", SLM_GGML_F32, 0},   {"f16", SLM_GGML_F16, 1},   {"bf16", SLM_GGML_BF16, 32},
    {"q8_0", SLM_GGML_Q8_0, 7}, {"q4_0", SLM_GGML_Q4_0, 2}, {"q4_k", SLM_GGML_Q4_K, 15},
    {"q6_k", SLM_GGML_Q6_K, 18},
};
enum { N_TARGETS = sizeof TARGETS / sizeof TARGETS[0] };

slm_status slm_quantize_parse_type(const char *s, uint32_t *type, slm_err *err) {
    char low[16];
    size_t n = s ? strlen(s) : 0;
    if (n > 0 && n < sizeof low) {
        for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)s[i]);
        for (int i = 0; i < N_TARGETS; i++) {
            if (!strcmp(low, TARGETS[i].name)) {
                *type = TARGETS[i].type;
                return SLM_OK;
            }
        }
    }
    return slm_err_set(err, SLM_ERR_ARG,
                       "unknown type '%s' (expected q4_0, q8_0, q4_k, q6_k, f16, bf16 or f32)",
                       s ? s : "");
}

static uint32_t file_type_of(uint32_t type) {
    for (int i = 0; i < N_TARGETS; i++)
        if (TARGETS[i].type == type) return TARGETS[i].ftype;
    return 0;
}

static bool is_quantized(uint32_t type) {
    return type != SLM_GGML_F32 && type != SLM_GGML_F16 && type != SLM_GGML_BF16;
}

static bool name_is(slm_gguf_str s, const char *c) { return slm_gguf_str_eq(s, c); }

static bool name_has(slm_gguf_str s, const char *sub) {
    size_t m = strlen(sub);
    if (m == 0 || m > s.len) return m == 0;
    for (uint64_t i = 0; i + m <= s.len; i++)
        if (!memcmp(s.ptr + i, sub, m)) return true;
    return false;
}

static bool ends_with(slm_gguf_str s, const char *suf) {
    size_t m = strlen(suf);
    return s.len >= m && !memcmp(s.ptr + s.len - m, suf, m);
}

/* Layer index of "blk.N...." or -1. */
static int layer_of(slm_gguf_str s) {
    if (s.len < 5 || memcmp(s.ptr, "blk.", 4)) return -1;
    int v = 0;
    uint64_t i = 4;
    if (!isdigit((unsigned char)s.ptr[i])) return -1;
    for (; i < s.len && isdigit((unsigned char)s.ptr[i]) && v < 1000000; i++) v = v * 10 + (s.ptr[i] - '0');
    return v;
}

/* llama.cpp's use_more_bits: the layers Q4_K_M gives 6 bits in attn_v and ffn_down. */
static bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

typedef struct {
    char *pattern;
    uint32_t type;
    int hits;
} override;

static slm_status parse_overrides(const slm_quantize_opts *o, override *ov, slm_err *err) {
    for (int i = 0; i < o->n_overrides; i++) {
        const char *s = o->overrides[i], *eq = s ? strrchr(s, '=') : NULL;
        if (!eq || eq == s || !eq[1])
            return slm_err_set(err, SLM_ERR_ARG, "--tensor-type '%s': expected NAME=TYPE", s ? s : "");
        ov[i].pattern = strndup(s, (size_t)(eq - s));
        if (!ov[i].pattern) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
        if (slm_quantize_parse_type(eq + 1, &ov[i].type, err) != SLM_OK)
            return slm_err_prefix(err, "--tensor-type '%s'", s);
    }
    return SLM_OK;
}

/* Chooses the type of one tensor; note says why it is not the target. */
static uint32_t choose_type(const slm_gguf_tensor *t, const slm_quantize_opts *o, bool has_output,
                            int n_attn_v, int n_ffn_down, override *ov, char *note, size_t note_len,
                            bool *fallback) {
    note[0] = 0;
    *fallback = false;
    if (t->n_dims < 2 || !ends_with(t->name, "weight")) return t->type; /* copied as is */
    /* a classify model's sparse n-gram part: rows of K label weights, read one feature at a time
     * (classify_model.h), already F16; blocks of 32 would not fit K */
    if (t->name.len > 6 && !memcmp(t->name.ptr, "ngram.", 6)) return t->type;
    bool embd = name_is(t->name, "token_embd.weight");
    if (embd && o->keep_embeddings) {
        snprintf(note, note_len, "--keep-embeddings");
        return t->type;
    }
    uint32_t target = o->type, nt = target;
    const char *why = NULL;
    if (is_quantized(target)) {
        if (name_is(t->name, "output.weight") || (!has_output && embd)) {
            uint32_t bs = slm_ggml_block_size(target);
            if (t->ne[0] % bs) nt = SLM_GGML_Q8_0;
            else if (target != SLM_GGML_Q8_0) nt = SLM_GGML_Q6_K;
            why = has_output ? "output projection (llama.cpp policy)"
                             : "tied output projection (llama.cpp policy)";
        } else if (target == SLM_GGML_Q4_K) {
            int il = layer_of(t->name);
            if (il >= 0 && name_has(t->name, "attn_v.weight") && use_more_bits(il, n_attn_v))
                nt = SLM_GGML_Q6_K, why = "Q4_K_M: attn_v of this layer";
            if (il >= 0 && name_has(t->name, "ffn_down") && use_more_bits(il, n_ffn_down))
                nt = SLM_GGML_Q6_K, why = "Q4_K_M: ffn_down of this layer";
        }
    }
    for (int i = 0; i < o->n_overrides; i++) {
        if (name_has(t->name, ov[i].pattern)) {
            nt = ov[i].type, why = "--tensor-type";
            ov[i].hits++;
        }
    }
    if (why && nt != target) snprintf(note, note_len, "%s", why);
    if (t->ne[0] % slm_ggml_block_size(nt)) {
        uint32_t want = nt;
        if (nt == SLM_GGML_Q4_K || nt == SLM_GGML_Q6_K) nt = SLM_GGML_Q8_0;
        if (t->ne[0] % slm_ggml_block_size(nt)) nt = SLM_GGML_F16;
        snprintf(note, note_len, "fallback: row of %llu is not whole %s blocks of %u",
                 (unsigned long long)t->ne[0], slm_ggml_type_name(want), slm_ggml_block_size(want));
        *fallback = true;
    }
    return nt;
}

/* Converts n elements of src (type from) into dst (type to) through f32, a chunk at a time. */
static slm_status convert(const slm_gguf_tensor *t, uint32_t to, void *dst, float *stage,
                          slm_err *err) {
    const slm_quant_traits *src = slm_quant_get(t->type), *dt = slm_quant_get_ref(to);
    if (!src || !dt || !src->to_float || !dt->from_float)
        return slm_err_set(err, SLM_ERR_UNSUPPORTED, "tensor '%.*s': cannot convert %s to %s",
                           (int)t->name.len, t->name.ptr, slm_ggml_type_name(t->type),
                           slm_ggml_type_name(to));
    uint64_t ne0 = t->ne[0], rows = ne0 ? slm_gguf_tensor_nelements(t) / ne0 : 0;
    uint64_t rows_per = ne0 >= CHUNK_ELEMS ? 1 : CHUNK_ELEMS / ne0;
    size_t in_row = slm_quant_row_bytes(t->type, (int64_t)ne0), out_row = slm_quant_row_bytes(to, (int64_t)ne0);
    for (uint64_t r = 0; r < rows; r += rows_per) {
        uint64_t nr = rows - r < rows_per ? rows - r : rows_per;
        int64_t n = (int64_t)(nr * ne0);
        src->to_float((const uint8_t *)t->data + r * in_row, stage, n);
        dt->from_float(stage, (uint8_t *)dst + r * out_row, n);
    }
    return SLM_OK;
}

void slm_quantize_report_free(slm_quantize_report *r) {
    if (!r) return;
    free(r->tensors);
    memset(r, 0, sizeof *r);
}

slm_status slm_quantize_file(const char *in_path, const char *out_path, const slm_quantize_opts *o,
                             slm_quantize_report *report, slm_err *err) {
    if (report) memset(report, 0, sizeof *report);
    if (!o || !in_path || !out_path) return slm_err_set(err, SLM_ERR_ARG, "quantize: missing argument");
    if (!slm_quant_get_ref(o->type) || o->type == SLM_GGML_Q8_K)
        return slm_err_set(err, SLM_ERR_ARG, "quantize: target type %u is not one of q4_0, q8_0, "
                           "q4_k, q6_k, f16, bf16, f32", o->type);
    slm_status st = SLM_OK;
    slm_gguf *g = NULL;
    slm_gguf_writer *w = NULL;
    override *ov = NULL;
    void **bufs = NULL;
    float *stage = NULL;
    slm_quantize_tensor *rows = NULL;
    int64_t nt = 0;

    if (o->n_overrides < 0 || (o->n_overrides > 0 && !o->overrides)) {
        st = slm_err_set(err, SLM_ERR_ARG, "quantize: bad override list");
        goto done;
    }
    ov = calloc((size_t)o->n_overrides + 1, sizeof *ov);
    if (!ov) { st = slm_err_set(err, SLM_ERR_NOMEM, "out of memory"); goto done; }
    if ((st = parse_overrides(o, ov, err)) != SLM_OK) goto done;

    g = slm_gguf_open(in_path, err);
    if (!g) { st = err ? err->code : SLM_ERR_IO; goto done; }
    nt = slm_gguf_n_tensors(g);
    bool has_output = slm_gguf_find_tensor(g, "output.weight") != NULL;
    int n_attn_v = 0, n_ffn_down = 0;
    for (int64_t i = 0; i < nt; i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        n_attn_v += name_has(t->name, "attn_v.weight");
        n_ffn_down += name_has(t->name, "ffn_down");
    }
    bufs = calloc((size_t)nt + 1, sizeof *bufs);
    rows = calloc((size_t)nt + 1, sizeof *rows);
    stage = malloc((size_t)CHUNK_ELEMS * sizeof *stage);
    if (!bufs || !rows || !stage) { st = slm_err_set(err, SLM_ERR_NOMEM, "out of memory"); goto done; }

    /* pass 1: choose types, check every override hit something and no source blocks us */
    int n_fallback = 0;
    uint64_t before = 0, after = 0, elems = 0;
    for (int64_t i = 0; i < nt; i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        slm_quantize_tensor *r = &rows[i];
        bool fb;
        r->to = choose_type(t, o, has_output, n_attn_v, n_ffn_down, ov, r->note, sizeof r->note, &fb);
        r->from = t->type;
        snprintf(r->name, sizeof r->name, "%.*s", (int)t->name.len, t->name.ptr);
        r->n_elements = slm_gguf_tensor_nelements(t);
        r->bytes_from = t->nbytes;
        uint64_t ne[SLM_GGUF_MAX_DIMS] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (!slm_ggml_nbytes(r->to, t->n_dims, ne, NULL, &r->bytes_to)) {
            st = slm_err_set(err, SLM_ERR_ARG, "tensor '%s': shape does not fit %s", r->name,
                             slm_ggml_type_name(r->to));
            goto done;
        }
        if (r->to != r->from && is_quantized(r->from)) {
            st = slm_err_set(err, SLM_ERR_UNSUPPORTED,
                             "%s: tensor '%s' is already %s; converting it to %s would requantize "
                             "(quantize from an F32/F16/BF16 file, or keep its type with "
                             "--tensor-type %s=%s)", in_path, r->name, slm_ggml_type_name(r->from),
                             slm_ggml_type_name(r->to), r->name, slm_ggml_type_name(r->from));
            goto done;
        }
        n_fallback += fb;
        before += r->bytes_from, after += r->bytes_to, elems += r->n_elements;
    }
    for (int i = 0; i < o->n_overrides; i++) {
        if (!ov[i].hits) {
            st = slm_err_set(err, SLM_ERR_ARG,
                             "--tensor-type '%s': no 2-D weight tensor's name contains '%s'",
                             o->overrides[i], ov[i].pattern);
            goto done;
        }
    }

    /* pass 2: metadata, then each tensor converted or pointed at */
    w = slm_gguf_writer_new();
    if (!w) { st = slm_err_set(err, SLM_ERR_NOMEM, "out of memory"); goto done; }
    for (int64_t i = 0; i < slm_gguf_n_kv(g); i++)
        if ((st = slm_gguf_set_kv_from(w, g, slm_gguf_kv_at(g, i))) != SLM_OK) {
            if (st == SLM_ERR_NOMEM) slm_err_set(err, st, "out of memory");
            else slm_err_set(err, st, "%s: metadata key %lld cannot be copied", in_path, (long long)i);
            goto done;
        }
    uint32_t ftype = file_type_of(o->type);
    if ((st = slm_gguf_set_u32(w, "general.file_type", ftype)) != SLM_OK ||
        (st = slm_gguf_set_u32(w, "general.quantization_version", 2)) != SLM_OK) {
        slm_err_set(err, st, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < nt; i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        slm_quantize_tensor *r = &rows[i];
        const void *data = t->data;
        if (o->progress)
            fprintf(o->progress, "[%3lld/%3lld] %-32s %-5s -> %-5s%s%s\n", (long long)i + 1,
                    (long long)nt, r->name, slm_ggml_type_name(r->from), slm_ggml_type_name(r->to),
                    r->note[0] ? "  " : "", r->note);
        if (r->to != r->from) {
            bufs[i] = malloc(r->bytes_to ? r->bytes_to : 1);
            if (!bufs[i]) { st = slm_err_set(err, SLM_ERR_NOMEM, "tensor '%s': out of memory", r->name); goto done; }
            if ((st = convert(t, r->to, bufs[i], stage, err)) != SLM_OK) goto done;
            data = bufs[i];
        }
        uint64_t ne[SLM_GGUF_MAX_DIMS] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if ((st = slm_gguf_add_tensor(w, r->name, r->to, t->n_dims ? t->n_dims : 1, ne, data, err)) != SLM_OK)
            goto done;
    }
    if ((st = slm_gguf_writer_write(w, out_path, err)) != SLM_OK) goto done;
    if (report) {
        report->n_tensors = (int)nt;
        report->tensors = rows;
        rows = NULL;
        report->bytes_before = before;
        report->bytes_after = after;
        report->n_elements = elems;
        report->file_type = ftype;
        report->n_fallback = n_fallback;
    }

done:
    if (bufs)
        for (int64_t i = 0; i < nt; i++) free(bufs[i]);
    free(bufs);
    free(rows);
    free(stage);
    if (ov)
        for (int i = 0; i < o->n_overrides; i++) free(ov[i].pattern);
    free(ov);
    slm_gguf_writer_free(w);
    slm_gguf_close(g);
    return st;
}
