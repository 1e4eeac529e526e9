/* classify_head.c: pooling, the linear head, softmax cross-entropy and their backward passes
 * (see classify_head.h). Plain loops: the head is K·D multiply-adds per example, a rounding error
 * next to the body's forward pass. Sums run in double so results do not depend on batch size. */
#include "task/classify_head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int slm_pooling_from_name(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "last")) return SLM_POOL_LAST;
    if (!strcmp(name, "mean")) return SLM_POOL_MEAN;
    return -1;
}

const char *slm_pooling_name(int pooling) {
    return pooling == SLM_POOL_LAST ? "last" : pooling == SLM_POOL_MEAN ? "mean" : "?";
}

void slm_cls_pool(const float *hidden, int D, const int32_t *start, const int32_t *len, int E,
                  int pooling, float *pooled) {
    for (int e = 0; e < E; e++) {
        float *out = pooled + (size_t)e * D;
        if (pooling == SLM_POOL_LAST) {
            memcpy(out, hidden + (size_t)(start[e] + len[e] - 1) * D, sizeof(float) * (size_t)D);
            continue;
        }
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int t = 0; t < len[e]; t++) s += hidden[(size_t)(start[e] + t) * D + j];
            out[j] = (float)(s / len[e]);
        }
    }
}

void slm_cls_pool_backward(const float *dpooled, int D, const int32_t *start, const int32_t *len,
                           int E, int pooling, float *dhidden) {
    for (int e = 0; e < E; e++) {
        const float *g = dpooled + (size_t)e * D;
        if (pooling == SLM_POOL_LAST) {
            float *row = dhidden + (size_t)(start[e] + len[e] - 1) * D;
            for (int j = 0; j < D; j++) row[j] += g[j];
            continue;
        }
        float inv = 1.0f / (float)len[e];
        for (int t = 0; t < len[e]; t++) {
            float *row = dhidden + (size_t)(start[e] + t) * D;
            for (int j = 0; j < D; j++) row[j] += g[j] * inv;
        }
    }
}

void slm_cls_logits(const float *W, const float *b, const float *pooled, int E, int D, int K,
                    float *logits) {
    for (int e = 0; e < E; e++) {
        const float *x = pooled + (size_t)e * D;
        for (int k = 0; k < K; k++) {
            const float *w = W + (size_t)k * D;
            double s = b[k];
            for (int j = 0; j < D; j++) s += (double)w[j] * x[j];
            logits[(size_t)e * K + k] = (float)s;
        }
    }
}

void slm_cls_softmax(float *x, int E, int K) {
    for (int e = 0; e < E; e++) {
        float *z = x + (size_t)e * K;
        float mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double sum = 0;
        for (int k = 0; k < K; k++) sum += exp((double)z[k] - mx);
        for (int k = 0; k < K; k++) z[k] = (float)(exp((double)z[k] - mx) / sum);
    }
}

double slm_cls_loss(const float *logits, const int32_t *labels, int E, int K, float smoothing,
                    float scale, float *dlogits, int *n_correct) {
    double total = 0;
    int correct = 0;
    for (int e = 0; e < E; e++) {
        const float *z = logits + (size_t)e * K;
        int y = labels[e], am = 0;
        double mx = z[0];
        for (int k = 1; k < K; k++)
            if (z[k] > mx) mx = z[k], am = k;
        correct += am == y;
        double sum = 0;
        for (int k = 0; k < K; k++) sum += exp((double)z[k] - mx);
        double lse = mx + log(sum), off = (double)smoothing / K;
        for (int k = 0; k < K; k++) {
            double target = off + (k == y ? 1.0 - smoothing : 0.0);
            total -= target * ((double)z[k] - lse);
            if (dlogits) dlogits[(size_t)e * K + k] = (float)(scale * (exp((double)z[k] - lse) - target));
        }
    }
    if (n_correct) *n_correct = correct;
    return total;
}

void slm_cls_head_backward(const float *W, const float *pooled, const float *dlogits, int E, int D,
                           int K, float *dW, float *db, float *dpooled) {
    for (int k = 0; k < K; k++) {
        float *dw = dW + (size_t)k * D;
        double sb = 0;
        for (int e = 0; e < E; e++) {
            float g = dlogits[(size_t)e * K + k];
            sb += g;
            if (g == 0.0f) continue;
            const float *x = pooled + (size_t)e * D;
            for (int j = 0; j < D; j++) dw[j] += g * x[j];
        }
        db[k] += (float)sb;
    }
    if (!dpooled) return;
    for (int e = 0; e < E; e++) {
        float *dx = dpooled + (size_t)e * D;
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)dlogits[(size_t)e * K + k] * W[(size_t)k * D + j];
            dx[j] = (float)s;
        }
    }
}

/* log softmax of z (K) into out (double) */
static void log_softmax(const float *z, int K, double *out) {
    double m = -INFINITY, sum = 0;
    for (int k = 0; k < K; k++) m = fmax(m, z[k]);
    for (int k = 0; k < K; k++) sum += exp(z[k] - m);
    double lse = m + log(sum);
    for (int k = 0; k < K; k++) out[k] = z[k] - lse;
}

double slm_cls_rdrop_loss(const float *logits, int P, int K, float alpha, float scale, float *dlogits) {
    double total = 0, *la = malloc(sizeof(double) * 2 * (size_t)K), *lb = la + K;
    if (!la) return NAN;
    for (int i = 0; i < P; i++) {
        const float *za = logits + (size_t)(2 * i) * K, *zb = za + K;
        log_softmax(za, K, la);
        log_softmax(zb, K, lb);
        double kab = 0, kba = 0;
        for (int k = 0; k < K; k++) {
            kab += exp(la[k]) * (la[k] - lb[k]);
            kba += exp(lb[k]) * (lb[k] - la[k]);
        }
        total += alpha * 0.5 * (kab + kba);
        if (!dlogits) continue;
        float *da = dlogits + (size_t)(2 * i) * K, *db = da + K;
        for (int k = 0; k < K; k++) {
            double pa = exp(la[k]), pb = exp(lb[k]);
            da[k] += (float)(scale * alpha * 0.5 * (pa * (la[k] - lb[k] - kab) + pa - pb));
            db[k] += (float)(scale * alpha * 0.5 * (pb * (lb[k] - la[k] - kba) + pb - pa));
        }
    }
    free(la);
    return total;
}

double slm_cls_distill_loss(const float *logits, const int32_t *labels, const float *teacher, int E, int K,
                            float T, float alpha, float scale, float *dlogits) {
    double total = 0;
    for (int e = 0; e < E; e++) {
        const float *z = logits + (size_t)e * K, *p = teacher + (size_t)e * K;
        /* log-sum-exps of z/T, z and log(p)/T */
        double mz = -INFINITY, mt = -INFINITY, mp = -INFINITY;
        for (int k = 0; k < K; k++) {
            mz = fmax(mz, z[k]);
            mt = fmax(mt, z[k] / T);
            mp = fmax(mp, log(fmax(p[k], 1e-30)) / T);
        }
        double sz = 0, st = 0, sp = 0;
        for (int k = 0; k < K; k++) {
            sz += exp(z[k] - mz);
            st += exp(z[k] / T - mt);
            sp += exp(log(fmax(p[k], 1e-30)) / T - mp);
        }
        double lz = mz + log(sz), lt = mt + log(st), lp = mp + log(sp), kl = 0;
        for (int k = 0; k < K; k++) {
            double lpt = log(fmax(p[k], 1e-30)) / T - lp, lqt = z[k] / T - lt, pt = exp(lpt);
            kl += pt * (lpt - lqt);
            if (dlogits) {
                double q = exp(z[k] - lz), qt = exp(lqt), oh = k == labels[e] ? 1.0 : 0.0;
                dlogits[(size_t)e * K + k] = (float)(scale * (alpha * T * (qt - pt) + (1 - alpha) * (q - oh)));
            }
        }
        double ce = lz - z[labels[e]];
        total += alpha * T * T * kl + (1 - alpha) * ce;
    }
    return total;
}
