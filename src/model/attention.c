/* attention.c: causal grouped-query attention over a batch, forward and backward.
 *
 * Work is split into items (a run or sequence of tokens) x (one KV head with the query heads that
 * read it), so GQA needs no copies and the backward's dK/dV of a head are owned by one item.
 * Items are dealt to threads by their estimated cost, statically: each item's result is computed
 * by one thread in a fixed order, so outputs do not depend on the thread count.
 *
 * Batched path (a run of >= SLM_ATT_MIN_RUN consecutive positions of one sequence, e.g. a
 * training row or a prompt): blocks of SLM_ATT_CHUNK query rows; S = scale·Q·K^T over the keys
 * the block can see (sgemm, with strided views of q and of the cache), masked softmax per row,
 * O = P·V (sgemm). The backward recomputes P the same way (nothing T x T is stored) and uses four
 * more sgemms per block: dP = dO·V^T, dV += P^T·dO, dQ = scale·dS·K, dK += scale·dS^T·Q.
 * Per-token path (generation, interleaved batches): softmax_query kernels, one query at a time.
 * An F16 cache takes the same two paths with keys and values converted SLM_ATT_KTILE rows at a
 * time into per-thread tiles (fwd_item_f16): half the cache bytes read, nothing allocated.
 */
#include "model/workspace.h"

#include <math.h>
#include <string.h>

#include "gguf/gguf.h"
#include "kernels/kernels.h"

/* Query rows per block when the block sees up to max_keys keys: at most SLM_ATT_CHUNK, and few
 * enough that rows·keys·hd stays within OpenBLAS's single-thread threshold (65536·4 multiply-adds),
 * so that sgemms issued from pool threads do not also fan out to BLAS threads. */
static int chunk_rows(int max_keys, int hd) {
    long rows = 262144L / ((long)max_keys * hd);
    return rows < 4 ? 4 : (rows > SLM_ATT_CHUNK ? SLM_ATT_CHUNK : (int)rows);
}

/* Items are (unit u, kv head g), u-major; owner of an item by its cost midpoint. */
static int item_owner(double before, double cost, double total, int nth) {
    if (total <= 0) return 0;
    int o = (int)((before + 0.5 * cost) * nth / total);
    return o < 0 ? 0 : (o >= nth ? nth - 1 : o);
}

/* ---- forward ---- */

typedef struct {
    slm_ctx *c;
    const slm_kv_cache *kv;
    int l;
    const float *qkv;
    float *att;
    double total;
} fwd_job;

static double run_cost(const slm_ctx *c, int r) {
    double T = c->run_len[r], p0 = c->pos[c->run_start[r]];
    return T * (p0 + 0.5 * T + 1.0) + 32.0;
}

/* Rows [j0, j0 + n) of one head of an F16 cache (row stride kvd halves) as floats, (n, hd). */
static void tile_f16(float *dst, const uint16_t *src, int j0, int n, int hd, int kvd) {
    slm_f16_to_f32_rows(dst, (size_t)hd, src + (size_t)j0 * kvd, (size_t)kvd, (size_t)n, (size_t)hd);
}

/* fwd_item over an F16 cache: the same two paths, with K and V converted SLM_ATT_KTILE keys at a
 * time into the thread's tiles. The per-token path gives exactly slm_attn_query_fwd's result on
 * the converted values (the kernel in pieces); the batched path sums P·V tile by tile. */
static void fwd_item_f16(slm_ctx *c, const slm_kv_cache *kv, int l, const float *qkv, float *att,
                         int r, int g, float *scratch, float *tiles) {
    int hd = c->hd, qkvd = c->qkvd, qd = c->qd, kvd = c->kvd;
    int rep = c->cfg.n_heads / c->cfg.n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    int i0 = c->run_start[r], T = c->run_len[r], p0 = c->pos[i0], s = c->seq[i0];
    size_t base = ((size_t)l * (size_t)kv->n_slots + (size_t)s) * (size_t)kv->ctx_len * (size_t)kvd;
    const uint16_t *K = kv->kh + base + (size_t)g * hd, *Vv = kv->vh + base + (size_t)g * hd;
    float *Kt = tiles, *Vt = tiles + (size_t)SLM_ATT_KTILE * hd;
    int chunk = chunk_rows(p0 + T, hd), KT = SLM_ATT_KTILE;
    for (int h = g * rep; h < (g + 1) * rep; h++) {
        if (T >= SLM_ATT_MIN_RUN) {
            for (int r0 = 0; r0 < T; r0 += chunk) {
                int tq = T - r0 < chunk ? T - r0 : chunk;
                int nk = p0 + r0 + tq;
                float *S = scratch;
                const float *Q = qkv + (size_t)(i0 + r0) * qkvd + (size_t)h * hd;
                for (int j0 = 0; j0 < nk; j0 += KT) {
                    int kt = nk - j0 < KT ? nk - j0 : KT;
                    tile_f16(Kt, K, j0, kt, hd, kvd);
                    slm_gemm(0, 1, tq, kt, hd, scale, Q, qkvd, Kt, hd, 0.0f, S + j0, nk);
                }
                for (int i = 0; i < tq; i++) {
                    float *Si = S + (size_t)i * nk;
                    int valid = p0 + r0 + i + 1;
                    slm_softmax_fwd(Si, Si, valid);
                    memset(Si + valid, 0, sizeof(float) * (size_t)(nk - valid));
                }
                float *O = att + (size_t)(i0 + r0) * qd + (size_t)h * hd;
                for (int j0 = 0; j0 < nk; j0 += KT) {
                    int kt = nk - j0 < KT ? nk - j0 : KT;
                    tile_f16(Vt, Vv, j0, kt, hd, kvd);
                    slm_gemm(0, 0, tq, hd, kt, 1.0f, S + j0, nk, Vt, hd, j0 ? 1.0f : 0.0f, O, qd);
                }
            }
        } else {
            for (int i = 0; i < T; i++) {
                const float *q = qkv + (size_t)(i0 + i) * qkvd + (size_t)h * hd;
                float *out = att + (size_t)(i0 + i) * qd + (size_t)h * hd, *p = scratch;
                int n = p0 + i + 1;
                for (int j0 = 0; j0 < n; j0 += KT) {
                    int kt = n - j0 < KT ? n - j0 : KT;
                    tile_f16(Kt, K, j0, kt, hd, kvd);
                    slm_attn_scores(p + j0, q, Kt, hd, kt, hd, scale);
                }
                slm_softmax_fwd(p, p, n);
                memset(out, 0, sizeof(float) * (size_t)hd);
                for (int j0 = 0; j0 < n; j0 += KT) {
                    int kt = n - j0 < KT ? n - j0 : KT;
                    tile_f16(Vt, Vv, j0, kt, hd, kvd);
                    slm_attn_accum_v(out, p + j0, Vt, hd, kt, hd);
                }
            }
        }
    }
}

static void fwd_item(slm_ctx *c, const slm_kv_cache *kv, int l, const float *qkv, float *att,
                     int r, int g, float *scratch) {
    int hd = c->hd, qkvd = c->qkvd, qd = c->qd, kvd = c->kvd;
    int rep = c->cfg.n_heads / c->cfg.n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    int i0 = c->run_start[r], T = c->run_len[r], p0 = c->pos[i0], s = c->seq[i0];
    size_t base = ((size_t)l * (size_t)kv->n_slots + (size_t)s) * (size_t)kv->ctx_len * (size_t)kvd;
    const float *K = kv->k + base + (size_t)g * hd, *Vv = kv->v + base + (size_t)g * hd;
    int chunk = chunk_rows(p0 + T, hd);
    for (int h = g * rep; h < (g + 1) * rep; h++) {
        if (T >= SLM_ATT_MIN_RUN) {
            for (int r0 = 0; r0 < T; r0 += chunk) {
                int tq = T - r0 < chunk ? T - r0 : chunk;
                int nk = p0 + r0 + tq;
                float *S = scratch;
                const float *Q = qkv + (size_t)(i0 + r0) * qkvd + (size_t)h * hd;
                slm_gemm(0, 1, tq, nk, hd, scale, Q, qkvd, K, kvd, 0.0f, S, nk);
                for (int i = 0; i < tq; i++) {
                    float *Si = S + (size_t)i * nk;
                    int valid = p0 + r0 + i + 1;
                    slm_softmax_fwd(Si, Si, valid);
                    memset(Si + valid, 0, sizeof(float) * (size_t)(nk - valid));
                }
                slm_gemm(0, 0, tq, hd, nk, 1.0f, S, nk, Vv, kvd, 0.0f,
                         att + (size_t)(i0 + r0) * qd + (size_t)h * hd, qd);
            }
        } else {
            for (int i = 0; i < T; i++) {
                const float *q = qkv + (size_t)(i0 + i) * qkvd + (size_t)h * hd;
                slm_attn_query_fwd(att + (size_t)(i0 + i) * qd + (size_t)h * hd, scratch, q, K, kvd,
                                   Vv, kvd, p0 + i + 1, hd, scale);
            }
        }
    }
}

static void fwd_tramp(void *ctx, int ith, int nth) {
    fwd_job *j = ctx;
    slm_ctx *c = j->c;
    int hkv = c->cfg.n_kv_heads;
    float *scratch = c->scratch + (size_t)ith * c->scratch_per_thread;
    float *tiles = c->kvtile + (size_t)ith * 2 * SLM_ATT_KTILE * (size_t)c->hd;
    int f16 = j->kv->type == SLM_GGML_F16;
    double before = 0;
    for (int r = 0; r < c->n_runs; r++) {
        double cost = run_cost(c, r);
        for (int g = 0; g < hkv; g++, before += cost) {
            if (item_owner(before, cost, j->total, nth) != ith) continue;
            if (f16)
                fwd_item_f16(c, j->kv, j->l, j->qkv, j->att, r, g, scratch, tiles);
            else
                fwd_item(c, j->kv, j->l, j->qkv, j->att, r, g, scratch);
        }
    }
}

void slm_attention_forward(slm_ctx *c, const slm_kv_cache *kv, int l, const float *qkv, float *att) {
    fwd_job j = {c, kv, l, qkv, att, 0};
    for (int r = 0; r < c->n_runs; r++) j.total += run_cost(c, r) * c->cfg.n_kv_heads;
    if (c->nth == 1 || j.total * c->hd * (c->cfg.n_heads / c->cfg.n_kv_heads) < c->att_split_min)
        fwd_tramp(&j, 0, 1);
    else
        slm_pool_run(c->pool, fwd_tramp, &j);
}

/* ---- backward ---- */

typedef struct {
    slm_ctx *c;
    const float *qkv, *datt;
    float *dqkv;
    double total;
} bwd_job;

static double grp_cost(const slm_ctx *c, int gi) {
    double T = c->grp_len[gi];
    return T * (0.5 * T + 1.0) + 32.0;
}

/* A group whose tokens sit at consecutive batch rows in position order (positions 0..T-1). */
static int grp_contiguous(const slm_ctx *c, int gi) {
    const slm_tok_key *k = c->sorted + c->grp_start[gi];
    for (int j = 1; j < c->grp_len[gi]; j++)
        if (k[j].idx != k[0].idx + j) return 0;
    return 1;
}

static void bwd_item_batched(slm_ctx *c, const float *qkv, const float *datt, float *dqkv, int gi,
                             int g, float *scratch) {
    int hd = c->hd, qkvd = c->qkvd, qd = c->qd, kvd = c->kvd;
    int rep = c->cfg.n_heads / c->cfg.n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    int i0 = c->sorted[c->grp_start[gi]].idx, T = c->grp_len[gi];
    const float *K = qkv + (size_t)i0 * qkvd + qd + (size_t)g * hd;
    const float *Vv = K + kvd;
    float *dK = dqkv + (size_t)i0 * qkvd + qd + (size_t)g * hd, *dV = dK + kvd;
    for (int i = 0; i < T; i++) {
        memset(dK + (size_t)i * qkvd, 0, sizeof(float) * (size_t)hd);
        memset(dV + (size_t)i * qkvd, 0, sizeof(float) * (size_t)hd);
    }
    float *P = scratch, *dP = scratch + (size_t)SLM_ATT_CHUNK * c->cfg.ctx_len;
    int chunk = chunk_rows(T, hd);
    for (int h = g * rep; h < (g + 1) * rep; h++) {
        for (int r0 = 0; r0 < T; r0 += chunk) {
            int tq = T - r0 < chunk ? T - r0 : chunk;
            int nk = r0 + tq;
            const float *Q = qkv + (size_t)(i0 + r0) * qkvd + (size_t)h * hd;
            const float *dO = datt + (size_t)(i0 + r0) * qd + (size_t)h * hd;
            slm_gemm(0, 1, tq, nk, hd, scale, Q, qkvd, K, qkvd, 0.0f, P, nk);
            for (int i = 0; i < tq; i++) {
                float *Pi = P + (size_t)i * nk;
                int valid = r0 + i + 1;
                slm_softmax_fwd(Pi, Pi, valid);
                memset(Pi + valid, 0, sizeof(float) * (size_t)(nk - valid));
            }
            slm_gemm(0, 1, tq, nk, hd, 1.0f, dO, qd, Vv, qkvd, 0.0f, dP, nk);
            slm_gemm(1, 0, nk, hd, tq, 1.0f, P, nk, dO, qd, 1.0f, dV, qkvd);
            for (int i = 0; i < tq; i++) {
                float *dPi = dP + (size_t)i * nk;
                int valid = r0 + i + 1;
                slm_softmax_bwd(dPi, P + (size_t)i * nk, dPi, valid);
                memset(dPi + valid, 0, sizeof(float) * (size_t)(nk - valid));
            }
            slm_gemm(0, 0, tq, hd, nk, scale, dP, nk, K, qkvd, 0.0f,
                     dqkv + (size_t)(i0 + r0) * qkvd + (size_t)h * hd, qkvd);
            slm_gemm(1, 0, nk, hd, tq, scale, dP, nk, Q, qkvd, 1.0f, dK, qkvd);
        }
    }
}

static void bwd_item_tokens(slm_ctx *c, const float *qkv, const float *datt, float *dqkv, int gi,
                            int g, float *scratch) {
    int hd = c->hd, qkvd = c->qkvd, qd = c->qd, kvd = c->kvd;
    int rep = c->cfg.n_heads / c->cfg.n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    const slm_tok_key *keys = c->sorted + c->grp_start[gi];
    int T = c->grp_len[gi];
    size_t th = (size_t)T * hd;
    float *K = scratch, *Vv = K + th, *dK = Vv + th, *dV = dK + th, *p = dV + th, *dp = p + T;
    for (int j = 0; j < T; j++) { /* key j is the token at position j */
        const float *row = qkv + (size_t)keys[j].idx * qkvd + qd + (size_t)g * hd;
        memcpy(K + (size_t)j * hd, row, sizeof(float) * (size_t)hd);
        memcpy(Vv + (size_t)j * hd, row + kvd, sizeof(float) * (size_t)hd);
    }
    memset(dK, 0, 2 * th * sizeof(float));
    for (int h = g * rep; h < (g + 1) * rep; h++)
        for (int j = 0; j < T; j++) {
            size_t row = (size_t)keys[j].idx;
            slm_attn_query_bwd(dqkv + row * qkvd + (size_t)h * hd, dK, hd, dV, hd, p, dp,
                               datt + row * qd + (size_t)h * hd, qkv + row * qkvd + (size_t)h * hd,
                               K, hd, Vv, hd, j + 1, hd, scale);
        }
    for (int j = 0; j < T; j++) {
        float *row = dqkv + (size_t)keys[j].idx * qkvd + qd + (size_t)g * hd;
        memcpy(row, dK + (size_t)j * hd, sizeof(float) * (size_t)hd);
        memcpy(row + kvd, dV + (size_t)j * hd, sizeof(float) * (size_t)hd);
    }
}

static void bwd_tramp(void *ctx, int ith, int nth) {
    bwd_job *j = ctx;
    slm_ctx *c = j->c;
    int hkv = c->cfg.n_kv_heads;
    float *scratch = c->scratch + (size_t)ith * c->scratch_per_thread;
    double before = 0;
    for (int gi = 0; gi < c->n_groups; gi++) {
        double cost = grp_cost(c, gi);
        int batched = -1;
        for (int g = 0; g < hkv; g++, before += cost) {
            if (item_owner(before, cost, j->total, nth) != ith) continue;
            if (batched < 0) batched = c->grp_len[gi] >= SLM_ATT_MIN_RUN && grp_contiguous(c, gi);
            if (batched)
                bwd_item_batched(c, j->qkv, j->datt, j->dqkv, gi, g, scratch);
            else
                bwd_item_tokens(c, j->qkv, j->datt, j->dqkv, gi, g, scratch);
        }
    }
}

void slm_attention_backward(slm_ctx *c, const float *qkv, const float *datt, float *dqkv) {
    bwd_job j = {c, qkv, datt, dqkv, 0};
    for (int gi = 0; gi < c->n_groups; gi++) j.total += grp_cost(c, gi) * c->cfg.n_kv_heads;
    if (c->nth == 1 || j.total * c->hd * (c->cfg.n_heads / c->cfg.n_kv_heads) < c->att_split_min)
        bwd_tramp(&j, 0, 1);
    else
        slm_pool_run(c->pool, bwd_tramp, &j);
}
