/* loss.c: mean cross-entropy over a batch's logits, leaving d(loss·scale)/d(logits) in place.
 *
 * Rows are split across the pool; each row's loss goes to its own slot and the slots are summed in
 * batch order (in double), so the value does not depend on the thread count.
 */
#include "model/workspace.h"

#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

typedef struct {
    const int32_t *targets;
    float g;
} loss_arg;

static void loss_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const loss_arg *a = arg;
    size_t V = (size_t)c->cfg.n_vocab;
    for (int i = r0; i < r1; i++) {
        float *z = c->logits + (size_t)i * V;
        int t = a->targets[i];
        if (t < 0) {
            memset(z, 0, V * sizeof(float));
            c->row_loss[i] = 0;
        } else {
            c->row_loss[i] = slm_cross_entropy_row(z, (int)V, t, a->g);
        }
    }
}

float slm_model_loss(slm_ctx *c, const int32_t *targets, float scale, int *n_counted) {
    if (n_counted) *n_counted = 0;
    if (!c || !targets || c->state != 1 || !c->all_outputs) return NAN;
    int n = c->n_tokens, counted = 0;
    for (int i = 0; i < n; i++) {
        if (targets[i] < -1 || targets[i] >= c->cfg.n_vocab) return NAN;
        counted += targets[i] >= 0;
    }
    loss_arg a = {targets, counted ? scale / (float)counted : 0.0f};
    slm_ws_par_rows(c, n, loss_rows, &a);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += c->row_loss[i];
    c->state = 2;
    if (n_counted) *n_counted = counted;
    return counted ? (float)(sum / counted) : 0.0f;
}
