/* prune.c: magnitude pruning (prune.h) — exact-count unstructured selection by quickselect of
 * |w| with positional tie-breaking, N:M per row group, the model and file front ends. */
#include "compress/prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

static const char *const TARGETS[] = {".attn_q.weight", ".attn_k.weight", ".attn_v.weight",
                                      ".attn_output.weight", ".ffn_gate.weight", ".ffn_up.weight",
                                      ".ffn_down.weight"};

int slm_prune_is_target(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof TARGETS / sizeof TARGETS[0]; i++) {
        size_t k = strlen(TARGETS[i]);
        if (n > k && strcmp(name + n - k, TARGETS[i]) == 0) return 1;
    }
    return 0;
}

slm_status slm_prune_opts_check(const slm_prune_opts *o, slm_err *err) {
    if (o->nm_m > 0) {
        if (o->nm_m > 64 || o->nm_n <= 0 || o->nm_n >= o->nm_m)
            return slm_err_set(err, SLM_ERR_ARG, "N:M pruning needs 0 < N < M <= 64 (got %d:%d)", o->nm_n, o->nm_m);
        return SLM_OK;
    }
    if (!(o->sparsity >= 0 && o->sparsity < 1))
        return slm_err_set(err, SLM_ERR_ARG, "sparsity must be in [0, 1) (got %g)", o->sparsity);
    return SLM_OK;
}

/* The k-th smallest (0-based) of x[0..n) (x is reordered). */
static float kth_smallest(float *x, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        float a = x[lo], b = x[mid], c = x[hi];
        float pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (x[i] < pivot) i++;
            while (x[j] > pivot) j--;
            if (i <= j) {
                float t = x[i];
                x[i] = x[j];
                x[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return x[k];
    }
    return x[k];
}

/* Zeroes exactly k of the weights of mats[0..n) (the smallest |w|; ties: earlier first). */
static slm_status prune_smallest(slm_prune_matrix *mats, int n, size_t k, slm_err *err) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)mats[i].rows * (size_t)mats[i].cols;
    if (k == 0 || total == 0) return SLM_OK;
    if (k > total) k = total;
    float *a = malloc(total * sizeof(float));
    if (!a) return slm_err_set(err, SLM_ERR_NOMEM, "prune: out of memory for %zu weights", total);
    size_t p = 0;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < (size_t)mats[i].rows * (size_t)mats[i].cols; j++) a[p++] = fabsf(mats[i].w[j]);
    float thr = kth_smallest(a, total, k - 1);
    free(a);
    size_t below = 0;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < (size_t)mats[i].rows * (size_t)mats[i].cols; j++) below += fabsf(mats[i].w[j]) < thr;
    size_t ties = k - below; /* weights equal to thr to zero, in order */
    for (int i = 0; i < n; i++) {
        float *w = mats[i].w;
        for (size_t j = 0; j < (size_t)mats[i].rows * (size_t)mats[i].cols; j++) {
            float v = fabsf(w[j]);
            if (v < thr) w[j] = 0.0f;
            else if (v == thr && ties > 0) w[j] = 0.0f, ties--;
        }
    }
    return SLM_OK;
}

/* In each group of M consecutive weights of a row, keeps the N largest |w| (ties: earlier). */
static void prune_nm(float *w, size_t n, int N, int M) {
    for (size_t g = 0; g < n; g += (size_t)M) {
        unsigned char keep[64] = {0};
        for (int r = 0; r < N; r++) {
            int best = -1;
            for (int j = 0; j < M; j++)
                if (!keep[j] && (best < 0 || fabsf(w[g + j]) > fabsf(w[g + best]))) best = j;
            keep[best] = 1;
        }
        for (int j = 0; j < M; j++)
            if (!keep[j]) w[g + j] = 0.0f;
    }
}

slm_status slm_prune_matrices(slm_prune_matrix *mats, int n_mats, const slm_prune_opts *o,
                              slm_prune_report *report, slm_err *err) {
    if (report) memset(report, 0, sizeof *report);
    slm_status s = slm_prune_opts_check(o, err);
    if (s) return s;
    if (o->nm_m > 0) {
        for (int i = 0; i < n_mats; i++)
            if (mats[i].cols % o->nm_m != 0)
                return slm_err_set(err, SLM_ERR_ARG, "%s: %d inputs per row is not a multiple of %d (N:M pruning)",
                                   mats[i].name, mats[i].cols, o->nm_m);
        for (int i = 0; i < n_mats; i++)
            prune_nm(mats[i].w, (size_t)mats[i].rows * (size_t)mats[i].cols, o->nm_n, o->nm_m);
    } else if (o->per_layer) {
        for (int i = 0; i < n_mats && !s; i++) {
            size_t n = (size_t)mats[i].rows * (size_t)mats[i].cols;
            s = prune_smallest(&mats[i], 1, (size_t)llround((double)o->sparsity * (double)n), err);
        }
    } else {
        size_t total = 0;
        for (int i = 0; i < n_mats; i++) total += (size_t)mats[i].rows * (size_t)mats[i].cols;
        s = prune_smallest(mats, n_mats, (size_t)llround((double)o->sparsity * (double)total), err);
    }
    if (s || !report) return s;
    report->tensors = calloc((size_t)(n_mats > 0 ? n_mats : 1), sizeof *report->tensors);
    if (!report->tensors) return slm_err_set(err, SLM_ERR_NOMEM, "prune: out of memory");
    report->n_tensors = n_mats;
    for (int i = 0; i < n_mats; i++) {
        slm_prune_tensor *t = &report->tensors[i];
        snprintf(t->name, sizeof t->name, "%s", mats[i].name ? mats[i].name : "?");
        t->n = (uint64_t)mats[i].rows * (uint64_t)mats[i].cols;
        for (uint64_t j = 0; j < t->n; j++) t->zeros += mats[i].w[j] == 0.0f;
        report->n += t->n;
        report->zeros += t->zeros;
    }
    return SLM_OK;
}

void slm_prune_report_free(slm_prune_report *r) {
    if (!r) return;
    free(r->tensors);
    memset(r, 0, sizeof *r);
}

void slm_prune_mask_apply(float *params, const uint8_t *mask, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!mask[i]) params[i] = 0.0f;
}

slm_status slm_prune_model(slm_model *m, const slm_prune_opts *o, uint8_t *mask,
                           slm_prune_report *report, slm_err *err) {
    if (report) memset(report, 0, sizeof *report);
    if (!m || m->mapped) return slm_err_set(err, SLM_ERR_ARG, "prune: needs an fp32 model (slm_model_load)");
    int nt = slm_model_n_tensors(&m->cfg), n = 0;
    slm_prune_matrix *mats = calloc((size_t)nt, sizeof *mats);
    slm_model_tensor_info *infos = calloc((size_t)nt, sizeof *infos);
    if (!mats || !infos) {
        free(mats);
        free(infos);
        return slm_err_set(err, SLM_ERR_NOMEM, "prune: out of memory");
    }
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_at(&m->cfg, i, &infos[n]);
        if (infos[n].n_dims != 2 || !slm_prune_is_target(infos[n].name)) continue;
        mats[n] = (slm_prune_matrix){infos[n].name, m->params + infos[n].offset, (int)infos[n].ne[1],
                                     (int)infos[n].ne[0]};
        n++;
    }
    slm_status s = slm_prune_matrices(mats, n, o, report, err);
    if (!s && mask) {
        memset(mask, 1, m->n_params);
        for (int i = 0; i < n; i++) {
            size_t off = infos[i].offset, cnt = (size_t)mats[i].rows * (size_t)mats[i].cols;
            for (size_t j = 0; j < cnt; j++) mask[off + j] = m->params[off + j] != 0.0f;
        }
    }
    free(mats);
    free(infos);
    return s;
}

slm_status slm_prune_file(const char *in_path, const char *out_path, const slm_prune_opts *o,
                          slm_prune_report *report, slm_err *err) {
    if (report) memset(report, 0, sizeof *report);
    slm_status s = slm_prune_opts_check(o, err);
    if (s) return s;
    slm_gguf *g = slm_gguf_open(in_path, err);
    if (!g) return err ? err->code : SLM_ERR_IO;
    int64_t nt = slm_gguf_n_tensors(g);
    slm_prune_matrix *mats = calloc((size_t)(nt > 0 ? nt : 1), sizeof *mats);
    char (*names)[SLM_GGUF_MAX_NAME] = calloc((size_t)(nt > 0 ? nt : 1), SLM_GGUF_MAX_NAME);
    int64_t *which = calloc((size_t)(nt > 0 ? nt : 1), sizeof *which); /* tensor -> matrix + 1 */
    slm_gguf_writer *w = slm_gguf_writer_new();
    int n = 0;
    if (!mats || !names || !which || !w) {
        s = slm_err_set(err, SLM_ERR_NOMEM, "prune: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < nt; i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        snprintf(names[i], SLM_GGUF_MAX_NAME, "%.*s", (int)t->name.len, t->name.ptr);
        if (t->n_dims != 2 || !slm_prune_is_target(names[i])) continue;
        if (t->type != SLM_GGML_F32 && t->type != SLM_GGML_F16) {
            s = slm_err_set(err, SLM_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; prune an F32/F16 model, then quantize",
                            in_path, names[i], slm_ggml_type_name(t->type) ? slm_ggml_type_name(t->type) : "?");
            goto done;
        }
        size_t cnt = (size_t)t->ne[0] * (size_t)t->ne[1];
        float *buf = malloc(cnt * sizeof(float));
        if (!buf) {
            s = slm_err_set(err, SLM_ERR_NOMEM, "prune: out of memory for '%s'", names[i]);
            goto done;
        }
        if (t->type == SLM_GGML_F32) memcpy(buf, t->data, cnt * sizeof(float));
        else slm_quant_get(t->type)->to_float(t->data, buf, (int64_t)cnt);
        mats[n] = (slm_prune_matrix){names[i], buf, (int)t->ne[1], (int)t->ne[0]};
        which[i] = ++n;
    }
    if ((s = slm_prune_matrices(mats, n, o, report, err)) != SLM_OK) goto done;
    for (int64_t i = 0; i < slm_gguf_n_kv(g) && !s; i++)
        if (slm_gguf_set_kv_from(w, g, slm_gguf_kv_at(g, i)) != SLM_OK)
            s = slm_err_set(err, SLM_ERR_NOMEM, "prune: copying the metadata");
    if (!s) s = slm_gguf_set_str(w, "slm.prune.method", o->nm_m > 0 ? "nm" : o->per_layer ? "per_layer" : "global");
    if (!s && report && report->n) s = slm_gguf_set_f32(w, "slm.prune.sparsity", (float)((double)report->zeros / (double)report->n));
    if (s) {
        s = slm_err_set(err, s, "prune: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < nt && !s; i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        if (which[i]) s = slm_gguf_add_tensor(w, names[i], SLM_GGML_F32, 2, t->ne, mats[which[i] - 1].w, err);
        else s = slm_gguf_add_tensor(w, names[i], t->type, t->n_dims, t->ne, t->data, err);
    }
    if (!s) s = slm_gguf_writer_write(w, out_path, err);
    if (s) slm_err_prefix(err, "writing %s", out_path);
done:
    if (s && report) slm_prune_report_free(report);
    for (int i = 0; i < n; i++) free(mats[i].w);
    free(mats);
    free(names);
    free(which);
    slm_gguf_writer_free(w);
    slm_gguf_close(g);
    return s;
}
