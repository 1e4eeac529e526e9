/* embedding.c: token embedding lookup and its scatter-add backward.
 *
 * The backward takes an id range so that threads owning disjoint ranges add without locks, each
 * visiting tokens in batch order: the sum order, hence the result, is the same for any thread count.
 */
#include "kernels/kernels.h"

#include <string.h>

void slm_embedding_fwd(float *out, const float *table, const int32_t *tok, int n, int d) {
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * d, table + (size_t)tok[i] * d, sizeof(float) * (size_t)d);
}

void slm_embedding_bwd(float *table_grad, const float *dout, const int32_t *tok, int n, int d,
                       int v0, int v1) {
    for (int i = 0; i < n; i++) {
        int t = tok[i];
        if (t < v0 || t >= v1) continue;
        float *g = table_grad + (size_t)t * d;
        const float *s = dout + (size_t)i * d;
        for (int j = 0; j < d; j++) g[j] += s[j];
    }
}
