/* gguf_getters.c: typed access to an open file's metadata — required and optional scalars,
 * arrays and their conversion into int32/float copies.
 *
 * Built only on the public lookups of gguf.h (find_kv, arr_at), so it knows nothing of how the
 * reader stores things. Conversions are value-checked, never silently truncating: a u32 getter
 * takes any integer type whose value fits, and says which key, which type and which value when
 * it does not. All errors are SLM_ERR_FORMAT: the file does not hold what the model needs.
 */
#include "gguf/gguf.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* "u32", or "arr[u32]" for an array. */
static const char *kv_type_desc(const slm_gguf_kv *kv, char *buf, size_t cap) {
    if (kv->type != SLM_GGUF_ARRAY) return slm_gguf_type_name(kv->type);
    snprintf(buf, cap, "arr[%s]", slm_gguf_type_name(kv->arr_type));
    return buf;
}

static slm_status missing(const slm_gguf *g, const char *key, slm_err *err) {
    return slm_err_set(err, SLM_ERR_FORMAT, "%s: missing key '%s'", slm_gguf_name(g), key);
}

static slm_status wrong_type(const slm_gguf *g, const slm_gguf_kv *kv, const char *expected,
                             slm_err *err) {
    char buf[32];
    return slm_err_set(err, SLM_ERR_FORMAT, "%s: key '%.*s': expected %s, found %s", slm_gguf_name(g),
                       (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.ptr, expected,
                       kv_type_desc(kv, buf, sizeof buf));
}

/* Looks key up; NULL key or absent: *kv = NULL. */
static const slm_gguf_kv *lookup(const slm_gguf *g, const char *key) {
    return g && key ? slm_gguf_find_kv(g, key) : NULL;
}

/* An integer kv's value as a signed/unsigned pair: *neg tells which of *u / *i holds it. */
static void int_value(const slm_gguf_kv *kv, bool *neg, uint64_t *u, int64_t *i) {
    if (slm_gguf_type_is_signed(kv->type)) {
        *i = kv->v.i64;
        *neg = *i < 0;
        *u = *neg ? 0 : (uint64_t)*i;
    } else {
        *u = kv->v.u64;
        *neg = false;
        *i = 0;
    }
}

static slm_status out_of_range(const slm_gguf *g, const slm_gguf_kv *kv, const char *target,
                               slm_err *err) {
    bool neg;
    uint64_t u;
    int64_t i;
    int_value(kv, &neg, &u, &i);
    char val[32];
    if (neg) snprintf(val, sizeof val, "%lld", (long long)i);
    else snprintf(val, sizeof val, "%llu", (unsigned long long)u);
    return slm_err_set(err, SLM_ERR_FORMAT, "%s: key '%.*s': value %s (%s) does not fit in %s",
                       slm_gguf_name(g), (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.ptr,
                       val, slm_gguf_type_name(kv->type), target);
}

static slm_status kv_u32(const slm_gguf *g, const slm_gguf_kv *kv, uint32_t *out, slm_err *err) {
    if (kv->type == SLM_GGUF_ARRAY || !slm_gguf_type_is_int(kv->type))
        return wrong_type(g, kv, "an integer (u32)", err);
    bool neg;
    uint64_t u;
    int64_t i;
    int_value(kv, &neg, &u, &i);
    if (neg || u > UINT32_MAX) return out_of_range(g, kv, "u32", err);
    *out = (uint32_t)u;
    return SLM_OK;
}

static slm_status kv_f32(const slm_gguf *g, const slm_gguf_kv *kv, float *out, slm_err *err) {
    if (kv->type != SLM_GGUF_FLOAT32 && kv->type != SLM_GGUF_FLOAT64)
        return wrong_type(g, kv, "a float (f32 or f64)", err);
    double v = kv->v.f64;
    if (isfinite(v) && fabs(v) > FLT_MAX)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s: key '%.*s': value %g does not fit in f32",
                           slm_gguf_name(g), (int)(kv->key.len > 200 ? 200 : kv->key.len),
                           kv->key.ptr, v);
    *out = (float)v;
    return SLM_OK;
}

static slm_status kv_bool(const slm_gguf *g, const slm_gguf_kv *kv, bool *out, slm_err *err) {
    if (kv->type != SLM_GGUF_BOOL) return wrong_type(g, kv, "bool", err);
    *out = kv->v.b;
    return SLM_OK;
}

slm_status slm_gguf_get_u32(const slm_gguf *g, const char *key, uint32_t *out, slm_err *err) {
    const slm_gguf_kv *kv = lookup(g, key);
    return kv ? kv_u32(g, kv, out, err) : missing(g, key, err);
}

slm_status slm_gguf_get_i64(const slm_gguf *g, const char *key, int64_t *out, slm_err *err) {
    const slm_gguf_kv *kv = lookup(g, key);
    if (!kv) return missing(g, key, err);
    if (kv->type == SLM_GGUF_ARRAY || !slm_gguf_type_is_int(kv->type))
        return wrong_type(g, kv, "an integer (i64)", err);
    bool neg;
    uint64_t u;
    int64_t i;
    int_value(kv, &neg, &u, &i);
    if (!slm_gguf_type_is_signed(kv->type) && u > (uint64_t)INT64_MAX) return out_of_range(g, kv, "i64", err);
    *out = slm_gguf_type_is_signed(kv->type) ? i : (int64_t)u;
    return SLM_OK;
}

slm_status slm_gguf_get_f32(const slm_gguf *g, const char *key, float *out, slm_err *err) {
    const slm_gguf_kv *kv = lookup(g, key);
    return kv ? kv_f32(g, kv, out, err) : missing(g, key, err);
}

slm_status slm_gguf_get_bool(const slm_gguf *g, const char *key, bool *out, slm_err *err) {
    const slm_gguf_kv *kv = lookup(g, key);
    return kv ? kv_bool(g, kv, out, err) : missing(g, key, err);
}

slm_status slm_gguf_get_str(const slm_gguf *g, const char *key, slm_gguf_str *out, slm_err *err) {
    const slm_gguf_kv *kv = lookup(g, key);
    if (!kv) return missing(g, key, err);
    if (kv->type != SLM_GGUF_STRING) return wrong_type(g, kv, "str", err);
    *out = kv->v.str;
    return SLM_OK;
}

slm_status slm_gguf_opt_u32(const slm_gguf *g, const char *key, uint32_t *out, slm_err *err) {
    const slm_gguf_kv *kv = lookup(g, key);
    return kv ? kv_u32(g, kv, out, err) : SLM_OK;
}

slm_status slm_gguf_opt_f32(const slm_gguf *g, const char *key, float *out, slm_err *err) {
    const slm_gguf_kv *kv = lookup(g, key);
    return kv ? kv_f32(g, kv, out, err) : SLM_OK;
}

slm_status slm_gguf_opt_bool(const slm_gguf *g, const char *key, bool *out, slm_err *err) {
    const slm_gguf_kv *kv = lookup(g, key);
    return kv ? kv_bool(g, kv, out, err) : SLM_OK;
}

static bool is_float(uint32_t t) { return t == SLM_GGUF_FLOAT32 || t == SLM_GGUF_FLOAT64; }

slm_status slm_gguf_get_arr(const slm_gguf *g, const char *key, slm_gguf_type elem_type,
                            const slm_gguf_kv **out, slm_err *err) {
    const slm_gguf_kv *kv = lookup(g, key);
    if (!kv) return missing(g, key, err);
    bool ok = kv->type == SLM_GGUF_ARRAY;
    if (ok) {
        uint32_t t = kv->arr_type;
        if (slm_gguf_type_is_int(elem_type)) ok = slm_gguf_type_is_int(t);
        else if (is_float(elem_type)) ok = is_float(t) || slm_gguf_type_is_int(t);
        else ok = t == (uint32_t)elem_type;
    }
    if (!ok) {
        char want[40];
        snprintf(want, sizeof want, "arr[%s]", slm_gguf_type_name(elem_type) ? slm_gguf_type_name(elem_type) : "?");
        return wrong_type(g, kv, want, err);
    }
    *out = kv;
    return SLM_OK;
}

slm_status slm_gguf_arr_copy_i32(const slm_gguf *g, const slm_gguf_kv *kv, int32_t *out, slm_err *err) {
    if (kv->type != SLM_GGUF_ARRAY || !slm_gguf_type_is_int(kv->arr_type))
        return wrong_type(g, kv, "an integer array", err);
    slm_gguf_kv e;
    for (uint64_t j = 0; j < kv->arr_n; j++) {
        if (!slm_gguf_arr_at(kv, j, &e)) return wrong_type(g, kv, "an integer array", err);
        bool neg;
        uint64_t u;
        int64_t i;
        int_value(&e, &neg, &u, &i);
        if (neg ? i < INT32_MIN : u > INT32_MAX) {
            char val[32];
            if (neg) snprintf(val, sizeof val, "%lld", (long long)i);
            else snprintf(val, sizeof val, "%llu", (unsigned long long)u);
            return slm_err_set(err, SLM_ERR_FORMAT, "%s: key '%.*s': element %llu = %s does not fit in i32",
                               slm_gguf_name(g), (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.ptr,
                               (unsigned long long)j, val);
        }
        out[j] = neg ? (int32_t)i : (int32_t)u;
    }
    return SLM_OK;
}

slm_status slm_gguf_arr_copy_f32(const slm_gguf *g, const slm_gguf_kv *kv, float *out, slm_err *err) {
    if (kv->type != SLM_GGUF_ARRAY || !(is_float(kv->arr_type) || slm_gguf_type_is_int(kv->arr_type)))
        return wrong_type(g, kv, "a float array", err);
    if (kv->arr_type == SLM_GGUF_FLOAT32) { /* the common case (token scores): one copy */
        if (kv->arr_n) memcpy(out, kv->arr_data, kv->arr_n * sizeof(float));
        return SLM_OK;
    }
    slm_gguf_kv e;
    for (uint64_t j = 0; j < kv->arr_n; j++) {
        if (!slm_gguf_arr_at(kv, j, &e)) return wrong_type(g, kv, "a float array", err);
        if (is_float(e.type)) out[j] = (float)e.v.f64;
        else if (slm_gguf_type_is_signed(e.type)) out[j] = (float)e.v.i64;
        else out[j] = (float)e.v.u64;
    }
    return SLM_OK;
}
