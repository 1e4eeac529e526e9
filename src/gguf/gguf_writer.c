/* gguf_writer.c: building a GGUF v3 file — metadata set in any order, tensors referenced by
 * pointer — and writing it atomically in exactly the layout llama.cpp's gguf.cpp produces.
 *
 * Shape: each key/value is serialized when it is set (the bytes after its type field), so
 * replacing a value is swapping one buffer and writing is a straight copy; the writer holds no
 * second representation that could disagree with the file. Tensors keep the caller's data
 * pointer and are copied only into the output stream. Everything that can be wrong with the
 * content is checked before the temporary file is created; the file is then streamed through
 * slm_atomic_* (temp file, fsync, rename), so a failure at any point leaves what was at the
 * path before. Byte layout, as gguf.cpp's gguf_write_out: magic, version, n_tensors, n_kv,
 * key/values in order, tensor infos (n_dims without trailing 1s), zero padding to the alignment,
 * each tensor's data followed by zero padding to the alignment.
 */
#include "gguf/gguf.h"

#include <errno.h>
#include <string.h>

#include "core/file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf_writer.c writes host-order fields: a big-endian host needs byte swaps"
#endif

typedef struct {
    char *key;
    size_t key_len;
    uint32_t type;  /* the type field as written: SLM_GGUF_ARRAY for arrays */
    uint8_t *val;   /* serialized value: scalar bytes | u64 len + bytes | elem type, u64 n, elems */
    size_t val_len;
} wkv;

typedef struct {
    char *name;
    size_t name_len;
    uint32_t type;
    uint32_t n_dims; /* as written: trailing dimensions of 1 dropped, at least 1 */
    uint64_t ne[SLM_GGUF_MAX_DIMS];
    const void *data; /* the caller's, not copied */
    uint64_t nbytes;
} wtensor;

struct slm_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

/* ---- a growable byte buffer for serializing values ---- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} bbuf;

static void bb_put(bbuf *b, const void *src, size_t n) {
    if (b->oom || n == 0) return;
    if (n > SIZE_MAX - b->n) {
        b->oom = true;
        return;
    }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) cap = cap > SIZE_MAX / 2 ? b->n + n : cap * 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void bb_u32(bbuf *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bbuf *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_str(bbuf *b, const char *s, uint64_t n) {
    bb_u64(b, n);
    bb_put(b, s, (size_t)n);
}

/* ---- key/values ---- */

slm_gguf_writer *slm_gguf_writer_new(void) { return calloc(1, sizeof(slm_gguf_writer)); }

void slm_gguf_writer_free(slm_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

static wkv *find_wkv(const slm_gguf_writer *w, const char *key, size_t len) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (w->kv[i].key_len == len && !memcmp(w->kv[i].key, key, len)) return &w->kv[i];
    return NULL;
}

/* Takes ownership of b's bytes (freed on failure too). */
static slm_status set_serialized(slm_gguf_writer *w, const char *key, uint32_t type, bbuf *b) {
    if (b->oom) {
        free(b->p);
        return SLM_ERR_NOMEM;
    }
    size_t len = strlen(key);
    wkv *kv = find_wkv(w, key, len);
    if (kv) { /* replace in place: the key keeps its first position */
        free(kv->val);
        kv->type = type;
        kv->val = b->p;
        kv->val_len = b->n;
        return SLM_OK;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *nk = realloc(w->kv, cap * sizeof *nk);
        if (!nk) {
            free(b->p);
            return SLM_ERR_NOMEM;
        }
        w->kv = nk;
        w->cap_kv = cap;
    }
    char *k = malloc(len + 1);
    if (!k) {
        free(b->p);
        return SLM_ERR_NOMEM;
    }
    memcpy(k, key, len + 1);
    w->kv[w->n_kv++] = (wkv){.key = k, .key_len = len, .type = type, .val = b->p, .val_len = b->n};
    return SLM_OK;
}

static slm_status set_scalar(slm_gguf_writer *w, const char *key, uint32_t type, const void *v) {
    if (!w || !key) return SLM_ERR_ARG;
    bbuf b = {0};
    bb_put(&b, v, slm_gguf_type_size(type));
    return set_serialized(w, key, type, &b);
}

slm_status slm_gguf_set_u8(slm_gguf_writer *w, const char *key, uint8_t v) { return set_scalar(w, key, SLM_GGUF_UINT8, &v); }
slm_status slm_gguf_set_i8(slm_gguf_writer *w, const char *key, int8_t v) { return set_scalar(w, key, SLM_GGUF_INT8, &v); }
slm_status slm_gguf_set_u16(slm_gguf_writer *w, const char *key, uint16_t v) { return set_scalar(w, key, SLM_GGUF_UINT16, &v); }
slm_status slm_gguf_set_i16(slm_gguf_writer *w, const char *key, int16_t v) { return set_scalar(w, key, SLM_GGUF_INT16, &v); }
slm_status slm_gguf_set_u32(slm_gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, SLM_GGUF_UINT32, &v); }
slm_status slm_gguf_set_i32(slm_gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, SLM_GGUF_INT32, &v); }
slm_status slm_gguf_set_u64(slm_gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, SLM_GGUF_UINT64, &v); }
slm_status slm_gguf_set_i64(slm_gguf_writer *w, const char *key, int64_t v) { return set_scalar(w, key, SLM_GGUF_INT64, &v); }
slm_status slm_gguf_set_f32(slm_gguf_writer *w, const char *key, float v) { return set_scalar(w, key, SLM_GGUF_FLOAT32, &v); }
slm_status slm_gguf_set_f64(slm_gguf_writer *w, const char *key, double v) { return set_scalar(w, key, SLM_GGUF_FLOAT64, &v); }

slm_status slm_gguf_set_bool(slm_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, SLM_GGUF_BOOL, &b);
}

slm_status slm_gguf_set_strn(slm_gguf_writer *w, const char *key, const char *v, size_t len) {
    if (!w || !key || (!v && len)) return SLM_ERR_ARG;
    bbuf b = {0};
    bb_str(&b, v, len);
    return set_serialized(w, key, SLM_GGUF_STRING, &b);
}

slm_status slm_gguf_set_str(slm_gguf_writer *w, const char *key, const char *v) {
    if (!v) return SLM_ERR_ARG;
    return slm_gguf_set_strn(w, key, v, strlen(v));
}

slm_status slm_gguf_set_arr_str(slm_gguf_writer *w, const char *key, const char *const *strs,
                                const size_t *lens, size_t n) {
    if (!w || !key || (!strs && n)) return SLM_ERR_ARG;
    bbuf b = {0};
    bb_u32(&b, SLM_GGUF_STRING);
    bb_u64(&b, n);
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strs[i] ? strlen(strs[i]) : 0;
        if (!strs[i] && len) {
            free(b.p);
            return SLM_ERR_ARG;
        }
        bb_str(&b, strs[i], len);
    }
    return set_serialized(w, key, SLM_GGUF_ARRAY, &b);
}

slm_status slm_gguf_set_arr_data(slm_gguf_writer *w, const char *key, slm_gguf_type type,
                                 const void *data, size_t n) {
    uint32_t sz = slm_gguf_type_size(type);
    if (!w || !key || !sz || (!data && n) || n > SIZE_MAX / sz) return SLM_ERR_ARG;
    bbuf b = {0};
    bb_u32(&b, type);
    bb_u64(&b, n);
    if (type == SLM_GGUF_BOOL) { /* as gguf.cpp writes bools: exactly 0 or 1 */
        const uint8_t *src = data;
        for (size_t i = 0; i < n; i++) {
            uint8_t v = src[i] != 0;
            bb_put(&b, &v, 1);
        }
    } else {
        bb_put(&b, data, n * sz);
    }
    return set_serialized(w, key, SLM_GGUF_ARRAY, &b);
}

slm_status slm_gguf_set_arr_i32(slm_gguf_writer *w, const char *key, const int32_t *v, size_t n) {
    return slm_gguf_set_arr_data(w, key, SLM_GGUF_INT32, v, n);
}

slm_status slm_gguf_set_arr_f32(slm_gguf_writer *w, const char *key, const float *v, size_t n) {
    return slm_gguf_set_arr_data(w, key, SLM_GGUF_FLOAT32, v, n);
}

slm_status slm_gguf_set_kv_from(slm_gguf_writer *w, const slm_gguf *g, const slm_gguf_kv *kv) {
    (void)g;
    if (!w || !kv || !kv->key.ptr) return SLM_ERR_ARG;
    /* the key as a C string (a key holding a NUL byte cannot be set through this API) */
    if (memchr(kv->key.ptr, 0, kv->key.len)) return SLM_ERR_ARG;
    char *key = malloc(kv->key.len + 1);
    if (!key) return SLM_ERR_NOMEM;
    memcpy(key, kv->key.ptr, kv->key.len);
    key[kv->key.len] = '\0';
    bbuf b = {0};
    slm_status s;
    if (kv->type == SLM_GGUF_STRING) {
        bb_str(&b, kv->v.str.ptr, kv->v.str.len);
        s = set_serialized(w, key, SLM_GGUF_STRING, &b);
    } else if (kv->type == SLM_GGUF_ARRAY) {
        bb_u32(&b, kv->arr_type);
        bb_u64(&b, kv->arr_n);
        slm_gguf_kv e;
        for (uint64_t i = 0; i < kv->arr_n && !b.oom; i++) {
            if (!slm_gguf_arr_at(kv, i, &e)) {
                b.oom = true;
                break;
            }
            if (kv->arr_type == SLM_GGUF_STRING) bb_str(&b, e.v.str.ptr, e.v.str.len);
            else if (kv->arr_type == SLM_GGUF_BOOL) bb_put(&b, &(uint8_t){e.v.b ? 1 : 0}, 1);
            else bb_put(&b, kv->arr_data + i * slm_gguf_type_size(kv->arr_type), slm_gguf_type_size(kv->arr_type));
        }
        s = set_serialized(w, key, SLM_GGUF_ARRAY, &b);
    } else {
        uint8_t raw[8];
        switch (kv->type) {
        case SLM_GGUF_UINT8: raw[0] = (uint8_t)kv->v.u64; break;
        case SLM_GGUF_INT8: raw[0] = (uint8_t)(int8_t)kv->v.i64; break;
        case SLM_GGUF_BOOL: raw[0] = kv->v.b ? 1 : 0; break;
        case SLM_GGUF_UINT16: { uint16_t x = (uint16_t)kv->v.u64; memcpy(raw, &x, 2); } break;
        case SLM_GGUF_INT16: { int16_t x = (int16_t)kv->v.i64; memcpy(raw, &x, 2); } break;
        case SLM_GGUF_UINT32: { uint32_t x = (uint32_t)kv->v.u64; memcpy(raw, &x, 4); } break;
        case SLM_GGUF_INT32: { int32_t x = (int32_t)kv->v.i64; memcpy(raw, &x, 4); } break;
        case SLM_GGUF_FLOAT32: { float x = (float)kv->v.f64; memcpy(raw, &x, 4); } break;
        case SLM_GGUF_UINT64: memcpy(raw, &kv->v.u64, 8); break;
        case SLM_GGUF_INT64: memcpy(raw, &kv->v.i64, 8); break;
        case SLM_GGUF_FLOAT64: memcpy(raw, &kv->v.f64, 8); break;
        default:
            free(key);
            return SLM_ERR_ARG;
        }
        s = set_scalar(w, key, kv->type, raw);
    }
    free(key);
    return s;
}

void slm_gguf_remove_kv(slm_gguf_writer *w, const char *key) {
    if (!w || !key) return;
    wkv *kv = find_wkv(w, key, strlen(key));
    if (!kv) return;
    free(kv->key);
    free(kv->val);
    size_t i = (size_t)(kv - w->kv);
    memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof *w->kv);
    w->n_kv--;
}

/* ---- tensors ---- */

slm_status slm_gguf_add_tensor(slm_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const uint64_t *ne, const void *data, slm_err *err) {
    if (!w || !name || (!ne && n_dims))
        return slm_err_set(err, SLM_ERR_ARG, "slm_gguf_add_tensor: NULL writer, name or shape");
    size_t len = strlen(name);
    if (len == 0) return slm_err_set(err, SLM_ERR_ARG, "tensor name is empty");
    if (len >= SLM_GGUF_MAX_NAME)
        return slm_err_set(err, SLM_ERR_ARG, "tensor '%s': name of %zu bytes; names must be shorter than %d bytes",
                           name, len, SLM_GGUF_MAX_NAME);
    for (size_t i = 0; i < w->n_t; i++)
        if (w->t[i].name_len == len && !memcmp(w->t[i].name, name, len))
            return slm_err_set(err, SLM_ERR_ARG, "tensor '%s': duplicate name (tensor %zu)", name, i);
    if (n_dims < 1 || n_dims > SLM_GGUF_MAX_DIMS)
        return slm_err_set(err, SLM_ERR_ARG, "tensor '%s': n_dims %u is not 1..%d", name, n_dims, SLM_GGUF_MAX_DIMS);
    uint32_t bs = slm_ggml_block_size(type);
    if (!bs) return slm_err_set(err, SLM_ERR_ARG, "tensor '%s': unknown tensor type %u", name, type);
    if (ne[0] % bs != 0)
        return slm_err_set(err, SLM_ERR_ARG, "tensor '%s': row of %llu elements is not a whole number of %s blocks of %u",
                           name, (unsigned long long)ne[0], slm_ggml_type_name(type), bs);
    uint64_t nbytes;
    if (!slm_ggml_nbytes(type, n_dims, ne, NULL, &nbytes))
        return slm_err_set(err, SLM_ERR_ARG, "tensor '%s': shape overflows int64", name);
    if (!data && nbytes) return slm_err_set(err, SLM_ERR_ARG, "tensor '%s': no data", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) return slm_err_set(err, SLM_ERR_NOMEM, "tensor '%s': out of memory", name);
        w->t = nt;
        w->cap_t = cap;
    }
    wtensor t = {.name = malloc(len + 1), .name_len = len, .type = type, .data = data, .nbytes = nbytes};
    if (!t.name) return slm_err_set(err, SLM_ERR_NOMEM, "tensor '%s': out of memory", name);
    memcpy(t.name, name, len + 1);
    for (uint32_t d = 0; d < SLM_GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    t.n_dims = SLM_GGUF_MAX_DIMS; /* ggml_n_dims: drop trailing 1s, keep at least one */
    while (t.n_dims > 1 && t.ne[t.n_dims - 1] == 1) t.n_dims--;
    w->t[w->n_t++] = t;
    return SLM_OK;
}

/* ---- writing ---- */

typedef struct {
    FILE *f;
    uint64_t pos;
    bool bad;
} out_stream;

static void out_put(out_stream *o, const void *p, uint64_t n) {
    if (o->bad || n == 0) return;
    if (fwrite(p, 1, (size_t)n, o->f) != (size_t)n) o->bad = true;
    o->pos += n;
}

static void out_pad(out_stream *o, uint64_t alignment) {
    static const uint8_t zeros[4096];
    uint64_t pad = (alignment - o->pos % alignment) % alignment;
    while (pad > 0 && !o->bad) {
        uint64_t n = pad < sizeof zeros ? pad : sizeof zeros;
        out_put(o, zeros, n);
        pad -= n;
    }
}

static uint64_t pad_to(uint64_t n, uint64_t a) { return n + (a - n % a) % a; }

/* The alignment the file will declare, or an error for a bad general.alignment value. */
static slm_status writer_alignment(const slm_gguf_writer *w, const char *path, uint32_t *alignment,
                                   slm_err *err) {
    *alignment = SLM_GGUF_DEFAULT_ALIGNMENT;
    const wkv *kv = find_wkv(w, "general.alignment", 17);
    if (!kv) return SLM_OK;
    uint32_t a = 0;
    if (kv->type == SLM_GGUF_UINT32) memcpy(&a, kv->val, 4);
    if (kv->type != SLM_GGUF_UINT32 || a == 0 || (a & (a - 1)) != 0)
        return slm_err_set(err, SLM_ERR_ARG, "%s: key 'general.alignment' must be a u32 power of two, got %s %u",
                           path, slm_gguf_type_name(kv->type), a);
    *alignment = a;
    return SLM_OK;
}

slm_status slm_gguf_writer_write(const slm_gguf_writer *w, const char *path, slm_err *err) {
    if (!w || !path) return slm_err_set(err, SLM_ERR_ARG, "slm_gguf_writer_write: NULL writer or path");
    uint32_t alignment;
    slm_status s = writer_alignment(w, path, &alignment, err);
    if (s) return s;
    for (size_t i = 0; i < w->n_kv; i++)
        if (w->kv[i].key_len == 0) return slm_err_set(err, SLM_ERR_ARG, "%s: key %zu is empty", path, i);
    /* tensor offsets within the data section: each tensor padded to the alignment */
    uint64_t *offsets = malloc((w->n_t ? w->n_t : 1) * sizeof *offsets);
    if (!offsets) return slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        offsets[i] = off;
        uint64_t padded = pad_to(w->t[i].nbytes, alignment);
        if (padded < w->t[i].nbytes || padded > UINT64_MAX - off) {
            free(offsets);
            return slm_err_set(err, SLM_ERR_ARG, "%s: tensor data larger than 2^64 bytes", path);
        }
        off += padded;
    }

    slm_atomic_file af;
    if ((s = slm_atomic_open(&af, path, err))) {
        free(offsets);
        return s;
    }
    out_stream o = {.f = af.f};
    const uint32_t version = 3;
    const uint64_t n_t = w->n_t, n_kv = w->n_kv;
    out_put(&o, "GGUF", 4);
    out_put(&o, &version, 4);
    out_put(&o, &n_t, 8);
    out_put(&o, &n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        uint64_t kl = kv->key_len;
        out_put(&o, &kl, 8);
        out_put(&o, kv->key, kl);
        out_put(&o, &kv->type, 4);
        out_put(&o, kv->val, kv->val_len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint64_t nl = t->name_len;
        out_put(&o, &nl, 8);
        out_put(&o, t->name, nl);
        out_put(&o, &t->n_dims, 4);
        out_put(&o, t->ne, 8ull * t->n_dims);
        out_put(&o, &t->type, 4);
        out_put(&o, &offsets[i], 8);
    }
    out_pad(&o, alignment);
    uint64_t data_start = o.pos;
    for (size_t i = 0; i < w->n_t && !o.bad; i++) {
        SLM_ASSERT(o.pos - data_start == offsets[i]);
        out_put(&o, w->t[i].data, w->t[i].nbytes);
        out_pad(&o, alignment);
    }
    free(offsets);
    if (o.bad) {
        s = slm_err_set(err, SLM_ERR_IO, "%s: write failed near byte %llu: %s", path,
                        (unsigned long long)o.pos, strerror(errno));
        slm_atomic_abort(&af);
        return s;
    }
    return slm_atomic_commit(&af, err);
}
