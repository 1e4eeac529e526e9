/* gguf_reader.c: opening a GGUF v3 file — parse and validate the header, the key/values and the
 * tensor infos against the file's own length, then serve lookups. (Typed getters live in
 * gguf_getters.c, the writer in gguf_writer.c, the type tables in gguf_types.c.)
 *
 * Shape: one pass over the bytes with a bounds-checked cursor; every length and count is
 * compared with the bytes that remain before it is used, in 64-bit arithmetic that cannot
 * overflow, so no input can make the parser read outside [base, base + size). Arrays are bounded
 * by the remaining bytes before anything is allocated, so allocations stay proportional to the
 * file size. Strings (keys, values, string-array elements, tensor names) point into the map;
 * string arrays are parsed into one slm_gguf_str table per key at open, so a 150k-token
 * vocabulary costs one allocation and one pass. Names are indexed in hash tables, which also
 * catch duplicate keys and tensor names in linear time.
 * Every error says: "<file>: <key i 'name' | tensor i 'name'>: <what> at offset <byte>".
 */
#include "gguf/gguf.h"

#include <stdarg.h>
#include <string.h>

#include "core/file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf_reader.c reads little-endian fields with memcpy: a big-endian host needs byte swaps"
#endif

/* ---- name index: open addressing over pointers to the names, FNV-1a hashes ---- */

typedef struct {
    const slm_gguf_str *name; /* NULL: empty slot */
    int64_t i;
} name_slot;

typedef struct {
    name_slot *slots;
    uint64_t mask;
} name_index;

static uint64_t hash_bytes(const char *p, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static bool index_init(name_index *ix, int64_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap *= 2; /* n is bounded by the file size, so this ends */
    ix->slots = calloc(cap, sizeof *ix->slots);
    ix->mask = cap - 1;
    return ix->slots != NULL;
}

/* The index of the name equal to (p, n), or -1. */
static int64_t index_find(const name_index *ix, const char *p, uint64_t n) {
    if (!ix->slots) return -1;
    for (uint64_t h = hash_bytes(p, n) & ix->mask;; h = (h + 1) & ix->mask) {
        const name_slot *s = &ix->slots[h];
        if (!s->name) return -1;
        if (s->name->len == n && (n == 0 || !memcmp(s->name->ptr, p, n))) return s->i;
    }
}

/* Adds name as item i; returns the earlier item's index if the name is already there, else -1.
 * The table has at least twice as many slots as items, so a free slot always exists. */
static int64_t index_add(name_index *ix, const slm_gguf_str *name, int64_t i) {
    for (uint64_t h = hash_bytes(name->ptr, name->len) & ix->mask;; h = (h + 1) & ix->mask) {
        name_slot *s = &ix->slots[h];
        if (!s->name) {
            s->name = name;
            s->i = i;
            return -1;
        }
        if (s->name->len == name->len && (name->len == 0 || !memcmp(s->name->ptr, name->ptr, name->len)))
            return s->i;
    }
}

/* ---- the open file ---- */

struct slm_gguf {
    slm_mmap map;        /* owned when opened from a path; zeroed for open_memory */
    const uint8_t *base; /* first byte of the file */
    uint64_t size;
    char *name;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    slm_gguf_kv *kv;       /* [n_kv] */
    uint64_t *kv_at;       /* [n_kv] file offset of each key/value */
    int64_t n_tensors;
    slm_gguf_tensor *tensors; /* [n_tensors] */
    uint64_t *tensor_at;      /* [n_tensors] file offset of each tensor info */
    name_index kv_index, tensor_index;
};

/* The parser: a cursor over the bytes and the context ("key 3 'x'") errors are reported in. */
typedef struct {
    slm_gguf *g;
    uint64_t pos;
    slm_err *err;
    char ctx[512];
} parser;

/* Writes a name for a message: printable ASCII kept, other bytes as \xNN, cut at 80 bytes. */
static void quote_name(char *out, size_t cap, const char *p, uint64_t n) {
    size_t o = 0;
    for (uint64_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (i == 80) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o] = '\0';
}

static slm_status fail(parser *ps, slm_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static slm_status fail(parser *ps, slm_status code, const char *fmt, ...) {
    char what[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (ps->ctx[0]) return slm_err_set(ps->err, code, "%s: %s: %s", ps->g->name, ps->ctx, what);
    return slm_err_set(ps->err, code, "%s: %s", ps->g->name, what);
}

static uint64_t remaining(const parser *ps) { return ps->g->size - ps->pos; }

static slm_status truncated(parser *ps, const char *field, uint64_t need) {
    return fail(ps, SLM_ERR_FORMAT, "file ends at %llu bytes while reading %s (%llu bytes at offset %llu)",
                (unsigned long long)ps->g->size, field, (unsigned long long)need,
                (unsigned long long)ps->pos);
}

static slm_status read_u32(parser *ps, const char *field, uint32_t *v) {
    if (remaining(ps) < 4) return truncated(ps, field, 4);
    memcpy(v, ps->g->base + ps->pos, 4);
    ps->pos += 4;
    return SLM_OK;
}

static slm_status read_u64(parser *ps, const char *field, uint64_t *v) {
    if (remaining(ps) < 8) return truncated(ps, field, 8);
    memcpy(v, ps->g->base + ps->pos, 8);
    ps->pos += 8;
    return SLM_OK;
}

static slm_status read_str(parser *ps, const char *field, slm_gguf_str *s) {
    uint64_t at = ps->pos, n = 0;
    slm_status st = read_u64(ps, field, &n);
    if (st) return st;
    if (n > remaining(ps))
        return fail(ps, SLM_ERR_FORMAT,
                    "%s length %llu at offset %llu runs past end of file (%llu bytes)", field,
                    (unsigned long long)n, (unsigned long long)at, (unsigned long long)ps->g->size);
    s->ptr = (const char *)ps->g->base + ps->pos;
    s->len = n;
    ps->pos += n;
    return SLM_OK;
}

/* Widens one little-endian scalar of a fixed-size type into kv->v. */
static void widen(uint32_t type, const uint8_t *src, slm_gguf_kv *kv) {
    switch (type) {
    case SLM_GGUF_UINT8: kv->v.u64 = src[0]; break;
    case SLM_GGUF_INT8: kv->v.i64 = (int8_t)src[0]; break;
    case SLM_GGUF_BOOL: kv->v.b = src[0] != 0; break; /* gguf.cpp: any non-zero byte is true */
    case SLM_GGUF_UINT16: { uint16_t x; memcpy(&x, src, 2); kv->v.u64 = x; } break;
    case SLM_GGUF_INT16: { int16_t x; memcpy(&x, src, 2); kv->v.i64 = x; } break;
    case SLM_GGUF_UINT32: { uint32_t x; memcpy(&x, src, 4); kv->v.u64 = x; } break;
    case SLM_GGUF_INT32: { int32_t x; memcpy(&x, src, 4); kv->v.i64 = x; } break;
    case SLM_GGUF_FLOAT32: { float x; memcpy(&x, src, 4); kv->v.f64 = x; } break;
    case SLM_GGUF_UINT64: memcpy(&kv->v.u64, src, 8); break;
    case SLM_GGUF_INT64: memcpy(&kv->v.i64, src, 8); break;
    case SLM_GGUF_FLOAT64: memcpy(&kv->v.f64, src, 8); break;
    default: break;
    }
}

bool slm_gguf_arr_at(const slm_gguf_kv *kv, uint64_t i, slm_gguf_kv *elem) {
    if (!kv || !elem || kv->type != SLM_GGUF_ARRAY || i >= kv->arr_n) return false;
    memset(elem, 0, sizeof *elem);
    elem->key = kv->key;
    elem->type = kv->arr_type;
    if (kv->arr_type == SLM_GGUF_STRING) {
        if (!kv->arr_strs) return false;
        elem->v.str = kv->arr_strs[i];
        return true;
    }
    uint32_t sz = slm_gguf_type_size(kv->arr_type);
    if (!sz || !kv->arr_data) return false;
    widen(kv->arr_type, kv->arr_data + i * sz, elem);
    return true;
}

/* A value of a non-array type: scalars widened, strings pointed at. */
static slm_status read_value(parser *ps, uint32_t type, slm_gguf_kv *kv) {
    if (type == SLM_GGUF_STRING) return read_str(ps, "string value", &kv->v.str);
    uint32_t sz = slm_gguf_type_size(type);
    if (remaining(ps) < sz) return truncated(ps, "the value", sz);
    widen(type, ps->g->base + ps->pos, kv);
    ps->pos += sz;
    return SLM_OK;
}

static slm_status read_array(parser *ps, slm_gguf_kv *kv) {
    uint64_t at = ps->pos;
    uint32_t et;
    slm_status st = read_u32(ps, "the array element type", &et);
    if (st) return st;
    if (et == SLM_GGUF_ARRAY)
        return fail(ps, SLM_ERR_FORMAT, "nested arrays are not supported (element type arr at offset %llu)",
                    (unsigned long long)at);
    if (et >= SLM_GGUF_TYPE_COUNT)
        return fail(ps, SLM_ERR_FORMAT, "unknown array element type %u at offset %llu", et,
                    (unsigned long long)at);
    uint64_t n, n_at = ps->pos;
    if ((st = read_u64(ps, "the array length", &n))) return st;
    kv->arr_type = (slm_gguf_type)et;
    kv->arr_n = n;
    kv->arr_data = ps->g->base + ps->pos;
    if (et != SLM_GGUF_STRING) {
        uint32_t sz = slm_gguf_type_size(et);
        if (n > remaining(ps) / sz)
            return fail(ps, SLM_ERR_FORMAT,
                        "array of %llu %s (length at offset %llu) runs past end of file: %llu bytes remain",
                        (unsigned long long)n, slm_gguf_type_name(et), (unsigned long long)n_at,
                        (unsigned long long)remaining(ps));
        ps->pos += n * sz;
        return SLM_OK;
    }
    /* every string takes at least its 8-byte length: this bounds the table's allocation */
    if (n > remaining(ps) / 8)
        return fail(ps, SLM_ERR_FORMAT,
                    "array of %llu strings at offset %llu cannot fit in the %llu bytes that remain",
                    (unsigned long long)n, (unsigned long long)n_at, (unsigned long long)remaining(ps));
    if (n == 0) return SLM_OK;
    kv->arr_strs = malloc(n * sizeof *kv->arr_strs);
    if (!kv->arr_strs)
        return fail(ps, SLM_ERR_NOMEM, "out of memory for %llu strings", (unsigned long long)n);
    char field[64];
    for (uint64_t i = 0; i < n; i++) {
        snprintf(field, sizeof field, "element %llu: string", (unsigned long long)i);
        if ((st = read_str(ps, field, &kv->arr_strs[i]))) return st;
    }
    return SLM_OK;
}

static void set_ctx(parser *ps, const char *what, int64_t i, const slm_gguf_str *name) {
    char q[360];
    if (name) {
        quote_name(q, sizeof q, name->ptr, name->len);
        snprintf(ps->ctx, sizeof ps->ctx, "%s %lld '%s'", what, (long long)i, q);
    } else {
        snprintf(ps->ctx, sizeof ps->ctx, "%s %lld", what, (long long)i);
    }
}

static slm_status parse_header(parser *ps, uint64_t *n_tensors, uint64_t *n_kv) {
    slm_gguf *g = ps->g;
    if (g->size < 4)
        return fail(ps, SLM_ERR_FORMAT, "not a GGUF file: %llu bytes, too short for the magic 'GGUF'",
                    (unsigned long long)g->size);
    if (memcmp(g->base, "GGUF", 4) != 0) {
        if (memcmp(g->base, "FUGG", 4) == 0)
            return fail(ps, SLM_ERR_UNSUPPORTED, "byte-swapped magic 'FUGG' at offset 0: a big-endian "
                        "GGUF file; only little-endian files are supported");
        char q[64];
        quote_name(q, sizeof q, (const char *)g->base, 4);
        return fail(ps, SLM_ERR_FORMAT, "not a GGUF file: magic '%s' at offset 0, expected 'GGUF'", q);
    }
    ps->pos = 4;
    slm_status st = read_u32(ps, "the version", &g->version);
    if (st) return st;
    if (g->version != 3) {
        if (g->version == 1 || g->version == 2)
            return fail(ps, SLM_ERR_UNSUPPORTED, "GGUF version %u at offset 4 is not supported: only "
                        "version 3 is read (re-convert the model with a current llama.cpp)", g->version);
        if (g->version != 0 && (g->version & 0xffff) == 0)
            return fail(ps, SLM_ERR_UNSUPPORTED, "version field 0x%08x at offset 4 looks byte-swapped: "
                        "a big-endian GGUF file; only little-endian files are supported", g->version);
        return fail(ps, g->version == 0 ? SLM_ERR_FORMAT : SLM_ERR_UNSUPPORTED,
                    "GGUF version %u at offset 4 is not supported: only version 3 is read", g->version);
    }
    if ((st = read_u64(ps, "the tensor count", n_tensors))) return st;
    if ((st = read_u64(ps, "the key/value count", n_kv))) return st;
    /* the smallest key/value is 8 + 1 + 4 + 1 bytes, the smallest tensor info 8 + 4 + 4 + 8 */
    if (*n_kv > remaining(ps) / 14)
        return fail(ps, SLM_ERR_FORMAT, "key/value count %llu at offset 16 cannot fit in the %llu bytes that remain",
                    (unsigned long long)*n_kv, (unsigned long long)remaining(ps));
    if (*n_tensors > remaining(ps) / 24)
        return fail(ps, SLM_ERR_FORMAT, "tensor count %llu at offset 8 cannot fit in the %llu bytes that remain",
                    (unsigned long long)*n_tensors, (unsigned long long)remaining(ps));
    return SLM_OK;
}

static slm_status parse_kvs(parser *ps) {
    slm_gguf *g = ps->g;
    slm_status st;
    for (int64_t i = 0; i < g->n_kv; i++) {
        slm_gguf_kv *kv = &g->kv[i];
        g->kv_at[i] = ps->pos;
        set_ctx(ps, "key", i, NULL);
        if ((st = read_str(ps, "name", &kv->key))) return st;
        if (kv->key.len == 0)
            return fail(ps, SLM_ERR_FORMAT, "empty key name at offset %llu", (unsigned long long)g->kv_at[i]);
        set_ctx(ps, "key", i, &kv->key);
        int64_t dup = index_add(&g->kv_index, &kv->key, i);
        if (dup >= 0)
            return fail(ps, SLM_ERR_FORMAT, "duplicate key (first set by key %lld) at offset %llu",
                        (long long)dup, (unsigned long long)g->kv_at[i]);
        uint64_t type_at = ps->pos;
        uint32_t type;
        if ((st = read_u32(ps, "the value type", &type))) return st;
        if (type >= SLM_GGUF_TYPE_COUNT)
            return fail(ps, SLM_ERR_FORMAT, "unknown value type %u at offset %llu", type,
                        (unsigned long long)type_at);
        kv->type = (slm_gguf_type)type;
        st = type == SLM_GGUF_ARRAY ? read_array(ps, kv) : read_value(ps, type, kv);
        if (st) return st;
    }
    ps->ctx[0] = '\0';
    g->alignment = SLM_GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = index_find(&g->kv_index, "general.alignment", 17);
    if (ai >= 0) {
        const slm_gguf_kv *kv = &g->kv[ai];
        set_ctx(ps, "key", ai, &kv->key);
        if (kv->type != SLM_GGUF_UINT32)
            return fail(ps, SLM_ERR_FORMAT, "must be of type u32, found %s (key at offset %llu)",
                        slm_gguf_type_name(kv->type), (unsigned long long)g->kv_at[ai]);
        uint64_t a = kv->v.u64;
        if (a == 0 || (a & (a - 1)) != 0)
            return fail(ps, SLM_ERR_FORMAT, "alignment %llu is not a power of two (key at offset %llu)",
                        (unsigned long long)a, (unsigned long long)g->kv_at[ai]);
        g->alignment = (uint32_t)a;
        ps->ctx[0] = '\0';
    }
    return SLM_OK;
}

static slm_status parse_tensor_infos(parser *ps) {
    slm_gguf *g = ps->g;
    slm_status st;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        slm_gguf_tensor *t = &g->tensors[i];
        uint64_t at = g->tensor_at[i] = ps->pos;
        set_ctx(ps, "tensor", i, NULL);
        if ((st = read_str(ps, "name", &t->name))) return st;
        set_ctx(ps, "tensor", i, &t->name);
        if (t->name.len >= SLM_GGUF_MAX_NAME)
            return fail(ps, SLM_ERR_FORMAT, "name of %llu bytes at offset %llu: names must be shorter than %d bytes",
                        (unsigned long long)t->name.len, (unsigned long long)at, SLM_GGUF_MAX_NAME);
        int64_t dup = index_add(&g->tensor_index, &t->name, i);
        if (dup >= 0)
            return fail(ps, SLM_ERR_FORMAT, "duplicate tensor name (first used by tensor %lld) at offset %llu",
                        (long long)dup, (unsigned long long)at);
        uint64_t dims_at = ps->pos;
        if ((st = read_u32(ps, "n_dims", &t->n_dims))) return st;
        if (t->n_dims > SLM_GGUF_MAX_DIMS)
            return fail(ps, SLM_ERR_FORMAT, "n_dims %u at offset %llu is more than %d", t->n_dims,
                        (unsigned long long)dims_at, SLM_GGUF_MAX_DIMS);
        for (uint32_t d = 0; d < SLM_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne_at = ps->pos;
            if ((st = read_u64(ps, "a dimension", &t->ne[d]))) return st;
            if (t->ne[d] > (uint64_t)INT64_MAX)
                return fail(ps, SLM_ERR_FORMAT, "dimension %u = %llu at offset %llu is negative as int64", d,
                            (unsigned long long)t->ne[d], (unsigned long long)ne_at);
        }
        uint64_t type_at = ps->pos;
        if ((st = read_u32(ps, "the type", &t->type))) return st;
        uint32_t bs = slm_ggml_block_size(t->type);
        if (!bs)
            return fail(ps, SLM_ERR_UNSUPPORTED, "unknown tensor type %u at offset %llu%s", t->type,
                        (unsigned long long)type_at,
                        (t->type >= 31 && t->type <= 38) || t->type == 4 || t->type == 5
                            ? " (a layout ggml removed from GGUF files)" : "");
        if (t->ne[0] % bs != 0)
            return fail(ps, SLM_ERR_FORMAT, "row of %llu elements (offset %llu) is not a whole number of %s blocks of %u",
                        (unsigned long long)t->ne[0], (unsigned long long)dims_at + 4,
                        slm_ggml_type_name(t->type), bs);
        if (!slm_ggml_nbytes(t->type, t->n_dims, t->ne, NULL, &t->nbytes))
            return fail(ps, SLM_ERR_FORMAT, "shape [%llu, %llu, %llu, %llu] at offset %llu: element or byte count overflows int64",
                        (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                        (unsigned long long)t->ne[3], (unsigned long long)dims_at);
        if ((st = read_u64(ps, "the data offset", &t->offset))) return st;
    }
    ps->ctx[0] = '\0';
    return SLM_OK;
}

static slm_status place_tensors(parser *ps) {
    slm_gguf *g = ps->g;
    uint64_t a = g->alignment, pos = ps->pos;
    if (g->n_tensors == 0) { /* gguf.cpp: no padding is required when there is no data */
        g->data_offset = pos;
        return SLM_OK;
    }
    uint64_t pad = (a - pos % a) % a;
    if (pad > g->size - pos)
        return fail(ps, SLM_ERR_FORMAT, "data section would start at offset %llu (tensor infos end at %llu, "
                    "alignment %u), past end of file (%llu bytes)",
                    (unsigned long long)(pos + pad), (unsigned long long)pos, g->alignment,
                    (unsigned long long)g->size);
    g->data_offset = pos + pad;
    uint64_t avail = g->size - g->data_offset;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        slm_gguf_tensor *t = &g->tensors[i];
        set_ctx(ps, "tensor", i, &t->name);
        if (t->offset % a != 0)
            return fail(ps, SLM_ERR_FORMAT, "data offset %llu (info at offset %llu) is not a multiple of the alignment %u",
                        (unsigned long long)t->offset, (unsigned long long)g->tensor_at[i], g->alignment);
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            if (t->offset <= UINT64_MAX - g->data_offset &&
                t->nbytes <= UINT64_MAX - g->data_offset - t->offset)
                return fail(ps, SLM_ERR_FORMAT, "data [%llu, %llu) past end of file (%llu bytes)",
                            (unsigned long long)(g->data_offset + t->offset),
                            (unsigned long long)(g->data_offset + t->offset + t->nbytes),
                            (unsigned long long)g->size);
            return fail(ps, SLM_ERR_FORMAT, "data of %llu bytes at data offset %llu (info at offset %llu) "
                        "past end of file (%llu bytes)",
                        (unsigned long long)t->nbytes, (unsigned long long)t->offset,
                        (unsigned long long)g->tensor_at[i], (unsigned long long)g->size);
        }
        t->data = g->base + g->data_offset + t->offset;
    }
    ps->ctx[0] = '\0';
    return SLM_OK;
}

static slm_status parse(slm_gguf *g, slm_err *err) {
    parser ps = {.g = g, .pos = 0, .err = err};
    uint64_t n_tensors, n_kv;
    slm_status st = parse_header(&ps, &n_tensors, &n_kv);
    if (st) return st;
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->kv_at = calloc(n_kv ? n_kv : 1, sizeof *g->kv_at);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    g->tensor_at = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensor_at);
    if (!g->kv || !g->kv_at || !g->tensors || !g->tensor_at || !index_init(&g->kv_index, g->n_kv) ||
        !index_init(&g->tensor_index, g->n_tensors))
        return fail(&ps, SLM_ERR_NOMEM, "out of memory for %llu keys and %llu tensors",
                    (unsigned long long)n_kv, (unsigned long long)n_tensors);
    if ((st = parse_kvs(&ps))) return st;
    if ((st = parse_tensor_infos(&ps))) return st;
    return place_tensors(&ps);
}

static slm_gguf *open_common(slm_gguf *g, const char *name, slm_err *err) {
    g->name = strdup(name ? name : "<memory>");
    if (!g->name) {
        slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", name ? name : "<memory>");
        slm_gguf_close(g);
        return NULL;
    }
    if (parse(g, err) != SLM_OK) {
        slm_gguf_close(g);
        return NULL;
    }
    return g;
}

slm_gguf *slm_gguf_open(const char *path, slm_err *err) {
    if (!path) {
        slm_err_set(err, SLM_ERR_ARG, "slm_gguf_open: no path");
        return NULL;
    }
    slm_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (slm_mmap_open(path, &g->map, err) != SLM_OK) {
        free(g);
        return NULL;
    }
    g->base = g->map.data;
    g->size = g->map.size;
    return open_common(g, path, err);
}

slm_gguf *slm_gguf_open_memory(const void *data, size_t size, const char *name, slm_err *err) {
    slm_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", name ? name : "<memory>");
        return NULL;
    }
    g->base = data;
    g->size = data ? size : 0;
    return open_common(g, name, err);
}

void slm_gguf_close(slm_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++) free(g->kv[i].arr_strs);
    free(g->kv);
    free(g->kv_at);
    free(g->tensors);
    free(g->tensor_at);
    free(g->kv_index.slots);
    free(g->tensor_index.slots);
    slm_mmap_close(&g->map);
    free(g->name);
    free(g);
}

uint32_t slm_gguf_version(const slm_gguf *g) { return g->version; }
uint32_t slm_gguf_alignment(const slm_gguf *g) { return g->alignment; }
uint64_t slm_gguf_data_offset(const slm_gguf *g) { return g->data_offset; }
uint64_t slm_gguf_file_size(const slm_gguf *g) { return g->size; }
const char *slm_gguf_name(const slm_gguf *g) { return g->name; }
int64_t slm_gguf_n_kv(const slm_gguf *g) { return g->n_kv; }
int64_t slm_gguf_n_tensors(const slm_gguf *g) { return g->n_tensors; }

const slm_gguf_kv *slm_gguf_kv_at(const slm_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const slm_gguf_tensor *slm_gguf_tensor_at(const slm_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const slm_gguf_kv *slm_gguf_find_kv(const slm_gguf *g, const char *key) {
    if (!key) return NULL;
    int64_t i = index_find(&g->kv_index, key, strlen(key));
    return i >= 0 ? &g->kv[i] : NULL;
}

const slm_gguf_tensor *slm_gguf_find_tensor(const slm_gguf *g, const char *name) {
    if (!name) return NULL;
    int64_t i = index_find(&g->tensor_index, name, strlen(name));
    return i >= 0 ? &g->tensors[i] : NULL;
}

bool slm_gguf_str_eq(slm_gguf_str s, const char *c) {
    if (!c) return false;
    size_t n = strlen(c);
    return s.len == n && (n == 0 || !memcmp(s.ptr, c, n));
}
