/* test_models.c: see test_models.h. */
#include "test_models.h"

#include <stdlib.h>

#include "core/rng.h"
#include "testutil.h"

slm_model *tu_rand_model(const slm_model_config *cfg, uint64_t seed, float weight_scale) {
    slm_model *m = slm_model_new(cfg, tu_err());
    assert_non_null(m);
    slm_rng r;
    slm_rng_seed(&r, seed, 0);
    int nt = slm_model_n_tensors(cfg);
    for (int i = 0; i < nt; i++) {
        slm_model_tensor_info info;
        slm_model_tensor_at(cfg, i, &info);
        float *p = m->params + info.offset;
        size_t n = info.ne[0] * info.ne[1];
        for (size_t j = 0; j < n; j++) {
            float z = slm_rng_normal(&r);
            p[j] = info.n_dims == 1 ? 1.0f + 0.2f * z : (i == 0 ? 1.0f : weight_scale) * z;
        }
    }
    return m;
}

size_t tu_append_spm_piece(char *out, size_t len, size_t cap, const char *p, size_t n) {
    if (n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>') {
        if (len + 1 < cap) out[len++] = (char)strtol((char[3]){p[3], p[4], 0}, NULL, 16);
        return len;
    }
    for (size_t i = 0; i < n && len + 1 < cap; i++) {
        if (i + 2 < n && (unsigned char)p[i] == 0xE2 && (unsigned char)p[i + 1] == 0x96 &&
            (unsigned char)p[i + 2] == 0x81) {
            out[len++] = ' ';
            i += 2;
        } else {
            out[len++] = p[i];
        }
    }
    return len;
}

int tu_three_examples(slm_rng *r, int32_t *tok, int32_t *pos, int32_t *seq, int32_t *start, int32_t *len,
                      int32_t *y) {
    static const int lens[3] = {4, 2, 5};
    int n = 0;
    for (int e = 0; e < 3; e++) {
        start[e] = n;
        len[e] = lens[e];
        y[e] = (e + 1) % 3;
        for (int p = 0; p < lens[e]; p++, n++) {
            tok[n] = (int32_t)slm_rng_below(r, 24);
            pos[n] = p;
            seq[n] = e;
        }
    }
    return n;
}
