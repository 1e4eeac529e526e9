/* dropout.c: dropout inside the one forward pass, for training (forward.h: slm_ctx_set_dropout).
 *
 * Where: on each layer's attention output (the input of attn_output) and on its feed-forward
 * hidden activation silu(gate)·up (the input of ffn_down) — the two activations that feed the
 * residual stream's projections, as T5 and the feed-forward dropout of many Llama fine-tuning
 * recipes place it. Dropping a projection's input (rather than its output) lets the masked values
 * stay in the workspace: attn_output's and ffn_down's weight gradients read exactly the values the
 * forward multiplied, and the attention backward never reads its own output.
 *
 * The mask is not stored: element (row i, column j) of layer l's site s is kept when a 16-bit
 * draw from a stream seeded by hash(key, 2l + s, i) is at least p·65536, and the backward of the
 * same batch draws the same stream. So the pass stays allocation-free, a run is a pure function of
 * its key (a resumed run drops what the uninterrupted one dropped), and finite differences of the
 * masked function check its backward.
 */
#include "model/workspace.h"

#include "core/rng.h"

slm_status slm_ctx_set_dropout(slm_ctx *c, float p, uint64_t key, slm_err *err) {
    if (!c) return slm_err_set(err, SLM_ERR_ARG, "dropout: no workspace");
    if (!(p >= 0 && p < 1))
        return slm_err_set(err, SLM_ERR_ARG, "dropout: the probability must be in [0, 1) (got %g)", p);
    if (p > 0 && !c->train)
        return slm_err_set(err, SLM_ERR_ARG, "dropout: only a train workspace drops (this one is for inference)");
    c->drop_p = p;
    c->drop_key = key;
    /* keep when the 16-bit draw >= threshold; the kept share is (65536 - threshold) / 65536 */
    uint32_t thr = (uint32_t)(p * 65536.0f + 0.5f);
    c->drop_thr = thr > 65535 ? 65535 : thr;
    c->drop_scale = 65536.0f / (float)(65536 - c->drop_thr);
    return SLM_OK;
}

uint64_t slm_dropout_key(uint64_t seed, int64_t step, int micro) {
    return slm_rng_hash(seed ^ 0x64726f706f7574ULL /* "dropout" */, (uint64_t)step, (uint64_t)micro);
}

typedef struct {
    float *x;
    int width, site;
} drop_arg;

static void drop_rows(slm_ctx *c, void *arg, int r0, int r1) {
    const drop_arg *a = arg;
    const uint32_t thr = c->drop_thr;
    const float s = c->drop_scale;
    for (int i = r0; i < r1; i++) {
        float *row = a->x + (size_t)i * (size_t)a->width;
        uint64_t state = slm_rng_hash(c->drop_key, (uint64_t)a->site, (uint64_t)i), bits = 0;
        for (int j = 0; j < a->width; j++) {
            if ((j & 3) == 0) { /* four 16-bit draws per 64-bit step (xorshift64*) */
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                bits = state * 0x2545F4914F6CDD1DULL;
            }
            uint32_t u = (uint32_t)(bits & 0xffff);
            bits >>= 16;
            row[j] = u >= thr ? row[j] * s : 0.0f;
        }
    }
}

void slm_ws_dropout(slm_ctx *c, float *x, int width, int layer, int site) {
    if (!(c->drop_p > 0)) return;
    drop_arg a = {x, width, 2 * layer + site};
    slm_ws_par_rows(c, c->n_tokens, drop_rows, &a);
}
