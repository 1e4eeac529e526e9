/* gguf_types.c: the two type tables of GGUF — tensor element types (ggml's block layouts) and
 * metadata value types — and the small helpers on them that the reader, the writer and the CLI
 * share (names, block sizes, element sizes, tensor byte counts).
 *
 * It holds facts, not logic: each row was checked against ggml's type_traits (ggml/src/ggml.c)
 * and gguf-py's GGML_QUANT_SIZES. Types ggml removed from GGUF files (4, 5, 31-33, 36-38) and
 * numbers past the table are "unknown": name NULL, sizes 0. The table is indexed by the type
 * number so a lookup is one bounds check and one load.
 */
#include "gguf/gguf.h"

#include <string.h>
#include <strings.h>

typedef struct {
    const char *name;     /* ggml's type_name; NULL: no such type */
    uint32_t block_size;  /* elements per block */
    uint32_t block_bytes; /* bytes per block */
} ggml_type_row;

/* QK_K = 256 elements per super-block for the K and IQ formats. */
static const ggml_type_row ggml_types[] = {
    [SLM_GGML_F32] = {"f32", 1, 4},
    [SLM_GGML_F16] = {"f16", 1, 2},
    [SLM_GGML_Q4_0] = {"q4_0", 32, 18},    /* f16 d, 16 bytes of nibbles */
    [SLM_GGML_Q4_1] = {"q4_1", 32, 20},    /* f16 d, f16 m, 16 */
    [SLM_GGML_Q5_0] = {"q5_0", 32, 22},    /* f16 d, 4 high bits, 16 */
    [SLM_GGML_Q5_1] = {"q5_1", 32, 24},    /* f16 d, f16 m, 4, 16 */
    [SLM_GGML_Q8_0] = {"q8_0", 32, 34},    /* f16 d, 32 int8 */
    [SLM_GGML_Q8_1] = {"q8_1", 32, 36},    /* f16 d, f16 s, 32 int8 (gguf-py's table still says 40) */
    [SLM_GGML_Q2_K] = {"q2_K", 256, 84},   /* 2+2 + 256/16 + 256/4 */
    [SLM_GGML_Q3_K] = {"q3_K", 256, 110},  /* 2 + 256/4 + 256/8 + 12 */
    [SLM_GGML_Q4_K] = {"q4_K", 256, 144},  /* 2+2 + 12 + 256/2 */
    [SLM_GGML_Q5_K] = {"q5_K", 256, 176},  /* 2+2 + 12 + 256/8 + 256/2 */
    [SLM_GGML_Q6_K] = {"q6_K", 256, 210},  /* 2 + 256/2 + 256/4 + 256/16 */
    [SLM_GGML_Q8_K] = {"q8_K", 256, 292},  /* f32 d + 256 int8 + 16 int16 sums */
    [SLM_GGML_IQ2_XXS] = {"iq2_xxs", 256, 66},
    [SLM_GGML_IQ2_XS] = {"iq2_xs", 256, 74},
    [SLM_GGML_IQ3_XXS] = {"iq3_xxs", 256, 98},
    [SLM_GGML_IQ1_S] = {"iq1_s", 256, 50},
    [SLM_GGML_IQ4_NL] = {"iq4_nl", 32, 18},
    [SLM_GGML_IQ3_S] = {"iq3_s", 256, 110},
    [SLM_GGML_IQ2_S] = {"iq2_s", 256, 82},
    [SLM_GGML_IQ4_XS] = {"iq4_xs", 256, 136},
    [SLM_GGML_I8] = {"i8", 1, 1},
    [SLM_GGML_I16] = {"i16", 1, 2},
    [SLM_GGML_I32] = {"i32", 1, 4},
    [SLM_GGML_I64] = {"i64", 1, 8},
    [SLM_GGML_F64] = {"f64", 1, 8},
    [SLM_GGML_IQ1_M] = {"iq1_m", 256, 56},
    [SLM_GGML_BF16] = {"bf16", 1, 2},
    [SLM_GGML_TQ1_0] = {"tq1_0", 256, 54},
    [SLM_GGML_TQ2_0] = {"tq2_0", 256, 66},
    [SLM_GGML_MXFP4] = {"mxfp4", 32, 17},  /* e8m0 scale, 16 bytes of e2m1 nibbles */
};

#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

const char *slm_ggml_type_name(uint32_t type) {
    return type < N_GGML_TYPES ? ggml_types[type].name : NULL;
}

uint32_t slm_ggml_block_size(uint32_t type) {
    return type < N_GGML_TYPES && ggml_types[type].name ? ggml_types[type].block_size : 0;
}

uint32_t slm_ggml_block_bytes(uint32_t type) {
    return type < N_GGML_TYPES && ggml_types[type].name ? ggml_types[type].block_bytes : 0;
}

int slm_ggml_type_from_name(const char *name) {
    if (!name) return -1;
    for (uint32_t t = 0; t < N_GGML_TYPES; t++)
        if (ggml_types[t].name && !strcasecmp(ggml_types[t].name, name)) return (int)t;
    return -1;
}

/* Metadata value types: gguf.cpp's short names and each scalar's size in the file. */
static const struct {
    const char *name;
    uint32_t size; /* 0: variable (string, array) */
} gguf_types[SLM_GGUF_TYPE_COUNT] = {
    [SLM_GGUF_UINT8] = {"u8", 1},    [SLM_GGUF_INT8] = {"i8", 1},
    [SLM_GGUF_UINT16] = {"u16", 2},  [SLM_GGUF_INT16] = {"i16", 2},
    [SLM_GGUF_UINT32] = {"u32", 4},  [SLM_GGUF_INT32] = {"i32", 4},
    [SLM_GGUF_FLOAT32] = {"f32", 4}, [SLM_GGUF_BOOL] = {"bool", 1},
    [SLM_GGUF_STRING] = {"str", 0},  [SLM_GGUF_ARRAY] = {"arr", 0},
    [SLM_GGUF_UINT64] = {"u64", 8},  [SLM_GGUF_INT64] = {"i64", 8},
    [SLM_GGUF_FLOAT64] = {"f64", 8},
};

const char *slm_gguf_type_name(uint32_t type) {
    return type < SLM_GGUF_TYPE_COUNT ? gguf_types[type].name : NULL;
}

uint32_t slm_gguf_type_size(uint32_t type) {
    return type < SLM_GGUF_TYPE_COUNT ? gguf_types[type].size : 0;
}

bool slm_gguf_type_is_int(uint32_t type) {
    switch (type) {
    case SLM_GGUF_UINT8: case SLM_GGUF_INT8: case SLM_GGUF_UINT16: case SLM_GGUF_INT16:
    case SLM_GGUF_UINT32: case SLM_GGUF_INT32: case SLM_GGUF_UINT64: case SLM_GGUF_INT64:
        return true;
    default:
        return false;
    }
}

bool slm_gguf_type_is_signed(uint32_t type) {
    return type == SLM_GGUF_INT8 || type == SLM_GGUF_INT16 || type == SLM_GGUF_INT32 ||
           type == SLM_GGUF_INT64;
}

bool slm_ggml_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *nelem,
                     uint64_t *nbytes) {
    uint32_t bs = slm_ggml_block_size(type), bb = slm_ggml_block_bytes(type);
    if (!bs || n_dims > SLM_GGUF_MAX_DIMS) return false;
    uint64_t n = 1;
    bool zero = false;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] > (uint64_t)INT64_MAX) return false;
        if (ne[d] == 0) zero = true;
    }
    if ((n_dims > 0 ? ne[0] : 1) % bs != 0) return false; /* rows are whole blocks */
    if (zero) {
        n = 0;
    } else {
        for (uint32_t d = 0; d < n_dims; d++) {
            if (n > (uint64_t)INT64_MAX / ne[d]) return false;
            n *= ne[d];
        }
    }
    uint64_t blocks = n / bs;
    if (blocks > (uint64_t)INT64_MAX / bb) return false;
    if (nelem) *nelem = n;
    if (nbytes) *nbytes = blocks * bb;
    return true;
}

uint64_t slm_gguf_tensor_nelements(const slm_gguf_tensor *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims && d < SLM_GGUF_MAX_DIMS; d++) n *= t->ne[d];
    return n;
}
