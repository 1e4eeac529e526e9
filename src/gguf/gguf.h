/* gguf.h: GGUF v3, the only model format (DESIGN.md decision 1).
 *
 * Reader: slm_gguf_open mmaps a file and validates every header field, metadata value and tensor
 * record against the file's own length before anything is used; tensor data is then read where it
 * lies in the map. Strings point into the map and are NOT NUL-terminated (use .len).
 * Writer: collects metadata and tensor pointers, then writes the file atomically
 * (temp file, fsync, rename).
 *
 * Layout (little-endian): magic "GGUF", u32 version (3), u64 n_tensors, u64 n_kv, then n_kv
 * key/value pairs (string key, u32 type, value), then n_tensors infos (string name, u32 n_dims,
 * u64 ne[n_dims], u32 ggml type, u64 offset relative to the data section), padding to
 * general.alignment (default 32), then the data section. Strings are u64 length + bytes.
 */
#ifndef SLM_GGUF_GGUF_H
#define SLM_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define SLM_GGUF_DEFAULT_ALIGNMENT 32
#define SLM_GGUF_MAX_DIMS 4
/* Tensor names are shorter than this many bytes (ggml's GGML_MAX_NAME counts the NUL), so that
 * llama.cpp can load every file slm writes; the reader applies the same limit. */
#define SLM_GGUF_MAX_NAME 64

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum {
    SLM_GGUF_UINT8 = 0,
    SLM_GGUF_INT8 = 1,
    SLM_GGUF_UINT16 = 2,
    SLM_GGUF_INT16 = 3,
    SLM_GGUF_UINT32 = 4,
    SLM_GGUF_INT32 = 5,
    SLM_GGUF_FLOAT32 = 6,
    SLM_GGUF_BOOL = 7,
    SLM_GGUF_STRING = 8,
    SLM_GGUF_ARRAY = 9,
    SLM_GGUF_UINT64 = 10,
    SLM_GGUF_INT64 = 11,
    SLM_GGUF_FLOAT64 = 12,
    SLM_GGUF_TYPE_COUNT
} slm_gguf_type;

/* Tensor element types, numbered as ggml's enum ggml_type. Only some are computed with (F32, F16
 * now; the block formats later), but every known type's size is known so any file can be listed. */
typedef enum {
    SLM_GGML_F32 = 0,
    SLM_GGML_F16 = 1,
    SLM_GGML_Q4_0 = 2,
    SLM_GGML_Q4_1 = 3,
    SLM_GGML_Q5_0 = 6,
    SLM_GGML_Q5_1 = 7,
    SLM_GGML_Q8_0 = 8,
    SLM_GGML_Q8_1 = 9,
    SLM_GGML_Q2_K = 10,
    SLM_GGML_Q3_K = 11,
    SLM_GGML_Q4_K = 12,
    SLM_GGML_Q5_K = 13,
    SLM_GGML_Q6_K = 14,
    SLM_GGML_Q8_K = 15,
    SLM_GGML_IQ2_XXS = 16,
    SLM_GGML_IQ2_XS = 17,
    SLM_GGML_IQ3_XXS = 18,
    SLM_GGML_IQ1_S = 19,
    SLM_GGML_IQ4_NL = 20,
    SLM_GGML_IQ3_S = 21,
    SLM_GGML_IQ2_S = 22,
    SLM_GGML_IQ4_XS = 23,
    SLM_GGML_I8 = 24,
    SLM_GGML_I16 = 25,
    SLM_GGML_I32 = 26,
    SLM_GGML_I64 = 27,
    SLM_GGML_F64 = 28,
    SLM_GGML_IQ1_M = 29,
    SLM_GGML_BF16 = 30,
    /* 31-33 and 36-38 were repacked Q4_0/IQ4_NL layouts, removed from GGUF files by ggml */
    SLM_GGML_TQ1_0 = 34,
    SLM_GGML_TQ2_0 = 35,
    SLM_GGML_MXFP4 = 39,
} slm_ggml_type;

/* Type traits: name ("f32", "q4_0", ... or NULL for an unknown type), elements per block and
 * bytes per block (0 for an unknown type). */
const char *slm_ggml_type_name(uint32_t type);
uint32_t slm_ggml_block_size(uint32_t type);
uint32_t slm_ggml_block_bytes(uint32_t type);
const char *slm_gguf_type_name(uint32_t type);
/* ggml's name back to the type ("q8_0" -> 8); -1 when unknown. */
int slm_ggml_type_from_name(const char *name);
/* Bytes of one scalar metadata value of this type in the file (bool: 1); 0 for STRING, ARRAY
 * and unknown types. */
uint32_t slm_gguf_type_size(uint32_t type);
bool slm_gguf_type_is_int(uint32_t type);    /* UINT8..INT64 (not BOOL) */
bool slm_gguf_type_is_signed(uint32_t type); /* INT8/16/32/64 */
/* Element and byte counts of a tensor of this type and shape (ne[0..n_dims), unused dims 1).
 * False when the type is unknown, n_dims > 4, a dimension exceeds INT64_MAX, the row ne[0] is
 * not a whole number of blocks, or a count overflows int64 (ggml's limits). Zero-sized
 * dimensions are allowed (an empty tensor, 0 bytes), as in gguf.cpp. */
bool slm_ggml_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *nelem,
                     uint64_t *nbytes);

typedef struct {
    const char *ptr; /* into the map (reader) or owned (writer); not NUL-terminated */
    uint64_t len;
} slm_gguf_str;

typedef struct {
    slm_gguf_str key;
    slm_gguf_type type;
    union {
        uint64_t u64;   /* UINT8/16/32/64 widened */
        int64_t i64;    /* INT8/16/32/64 widened */
        double f64;     /* FLOAT32/64 widened */
        bool b;
        slm_gguf_str str;
    } v;
    /* type == SLM_GGUF_ARRAY: */
    slm_gguf_type arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;  /* raw little-endian elements in the map (maybe unaligned) */
    slm_gguf_str *arr_strs;   /* arr_type == STRING: arr_n parsed strings */
} slm_gguf_kv;

typedef struct {
    slm_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[SLM_GGUF_MAX_DIMS]; /* ne[0] is the contiguous dimension; unused dims are 1 */
    uint32_t type;                  /* slm_ggml_type */
    uint64_t offset;                /* relative to the data section */
    const void *data;               /* in the map, aligned to the file's alignment (for
                                     * open_memory: when the caller's buffer is so aligned) */
    uint64_t nbytes;
} slm_gguf_tensor;

/* Product of the tensor's dimensions (validated at open not to overflow). */
uint64_t slm_gguf_tensor_nelements(const slm_gguf_tensor *t);

typedef struct slm_gguf slm_gguf;

/* Opens and validates a file. On any problem returns NULL and err names the field and byte
 * offset ("x.gguf: tensor 3 'blk.0.attn_q.weight': data [1024, 5120) past end of file (4096)").
 * Codes: SLM_ERR_IO (cannot open/map), SLM_ERR_FORMAT (malformed), SLM_ERR_UNSUPPORTED (GGUF
 * version 1/2 or a later one, big-endian file, unknown tensor type), SLM_ERR_NOMEM.
 * Rules follow gguf.cpp: keys non-empty and unique, no nested arrays, general.alignment a u32
 * power of two, tensor names unique and < SLM_GGUF_MAX_NAME bytes, n_dims <= 4, dimensions
 * >= 0 (empty tensors allowed) with no int64 overflow, rows whole blocks. Tensor offsets must be
 * multiples of the alignment and the data inside the file; unlike gguf.cpp, tensors need not be
 * packed in order. With no tensors the data section starts right after the tensor infos (no
 * padding needed), as in gguf.cpp and llama.cpp's vocabulary-only files. */
slm_gguf *slm_gguf_open(const char *path, slm_err *err);
/* The same over a buffer the caller keeps alive for the life of the result (tests, fuzzing). */
slm_gguf *slm_gguf_open_memory(const void *data, size_t size, const char *name, slm_err *err);
void slm_gguf_close(slm_gguf *g);

uint32_t slm_gguf_version(const slm_gguf *g);
uint32_t slm_gguf_alignment(const slm_gguf *g);
uint64_t slm_gguf_data_offset(const slm_gguf *g); /* file offset of the data section */
uint64_t slm_gguf_file_size(const slm_gguf *g);
const char *slm_gguf_name(const slm_gguf *g);     /* path or name given at open */

int64_t slm_gguf_n_kv(const slm_gguf *g);
const slm_gguf_kv *slm_gguf_kv_at(const slm_gguf *g, int64_t i);
const slm_gguf_kv *slm_gguf_find_kv(const slm_gguf *g, const char *key); /* NULL if absent */

int64_t slm_gguf_n_tensors(const slm_gguf *g);
const slm_gguf_tensor *slm_gguf_tensor_at(const slm_gguf *g, int64_t i);
const slm_gguf_tensor *slm_gguf_find_tensor(const slm_gguf *g, const char *name);

/* Typed getters. Absent key: SLM_ERR_FORMAT "x.gguf: missing key 'llama.block_count'".
 * Wrong type or out of range: SLM_ERR_FORMAT naming the key, the expected and the found type.
 * get_u32/get_i64 accept any integer type whose value fits; get_f32 accepts FLOAT32/FLOAT64. */
slm_status slm_gguf_get_u32(const slm_gguf *g, const char *key, uint32_t *out, slm_err *err);
slm_status slm_gguf_get_i64(const slm_gguf *g, const char *key, int64_t *out, slm_err *err);
slm_status slm_gguf_get_f32(const slm_gguf *g, const char *key, float *out, slm_err *err);
slm_status slm_gguf_get_bool(const slm_gguf *g, const char *key, bool *out, slm_err *err);
slm_status slm_gguf_get_str(const slm_gguf *g, const char *key, slm_gguf_str *out, slm_err *err);
/* The same, but an absent key leaves *out unchanged and returns SLM_OK (for optional keys). */
slm_status slm_gguf_opt_u32(const slm_gguf *g, const char *key, uint32_t *out, slm_err *err);
slm_status slm_gguf_opt_f32(const slm_gguf *g, const char *key, float *out, slm_err *err);
slm_status slm_gguf_opt_bool(const slm_gguf *g, const char *key, bool *out, slm_err *err);
/* An array: checks the element type (any integer type converts to i32/f32 copies below).
 * Precisely: elem_type STRING or BOOL must match exactly; an integer elem_type accepts an array
 * of any integer type; FLOAT32/FLOAT64 accept float and integer arrays. Absent key, not an array
 * or another element type: SLM_ERR_FORMAT naming the key. */
slm_status slm_gguf_get_arr(const slm_gguf *g, const char *key, slm_gguf_type elem_type,
                            const slm_gguf_kv **out, slm_err *err);
/* Copies an integer array into out[0..arr_n) (values must fit in int32) / a float array
 * (FLOAT32, FLOAT64 or integer elements). */
slm_status slm_gguf_arr_copy_i32(const slm_gguf *g, const slm_gguf_kv *kv, int32_t *out, slm_err *err);
slm_status slm_gguf_arr_copy_f32(const slm_gguf *g, const slm_gguf_kv *kv, float *out, slm_err *err);

/* Element i of an array kv as a scalar kv (type = kv->arr_type, value widened as for scalars;
 * strings from arr_strs). False when kv is not an array or i >= arr_n. */
bool slm_gguf_arr_at(const slm_gguf_kv *kv, uint64_t i, slm_gguf_kv *elem);

/* True when s equals the NUL-terminated string c. */
bool slm_gguf_str_eq(slm_gguf_str s, const char *c);

/* ---- writer ---- */

typedef struct slm_gguf_writer slm_gguf_writer;

slm_gguf_writer *slm_gguf_writer_new(void);
void slm_gguf_writer_free(slm_gguf_writer *w);

/* Setting a key again replaces its value; keys keep the order of their first setting.
 * Values and strings are copied. Each returns SLM_ERR_NOMEM or SLM_OK (SLM_ERR_ARG for a NULL
 * writer, key or value). Key rules (non-empty; general.alignment a u32 power of two) are checked
 * by slm_gguf_writer_write, which then fails with SLM_ERR_ARG before touching the disk. */
slm_status slm_gguf_set_u32(slm_gguf_writer *w, const char *key, uint32_t v);
slm_status slm_gguf_set_i32(slm_gguf_writer *w, const char *key, int32_t v);
slm_status slm_gguf_set_u64(slm_gguf_writer *w, const char *key, uint64_t v);
slm_status slm_gguf_set_f32(slm_gguf_writer *w, const char *key, float v);
slm_status slm_gguf_set_bool(slm_gguf_writer *w, const char *key, bool v);
slm_status slm_gguf_set_str(slm_gguf_writer *w, const char *key, const char *v);
slm_status slm_gguf_set_u8(slm_gguf_writer *w, const char *key, uint8_t v);
slm_status slm_gguf_set_i8(slm_gguf_writer *w, const char *key, int8_t v);
slm_status slm_gguf_set_u16(slm_gguf_writer *w, const char *key, uint16_t v);
slm_status slm_gguf_set_i16(slm_gguf_writer *w, const char *key, int16_t v);
slm_status slm_gguf_set_i64(slm_gguf_writer *w, const char *key, int64_t v);
slm_status slm_gguf_set_f64(slm_gguf_writer *w, const char *key, double v);
/* A string of any bytes (may hold NULs or invalid UTF-8). */
slm_status slm_gguf_set_strn(slm_gguf_writer *w, const char *key, const char *v, size_t len);
/* Arrays: elements copied. strs may hold any bytes when lens is given (lens == NULL: strlen). */
slm_status slm_gguf_set_arr_str(slm_gguf_writer *w, const char *key, const char *const *strs,
                                const size_t *lens, size_t n);
slm_status slm_gguf_set_arr_i32(slm_gguf_writer *w, const char *key, const int32_t *v, size_t n);
slm_status slm_gguf_set_arr_f32(slm_gguf_writer *w, const char *key, const float *v, size_t n);
/* An array of any fixed-size element type (not STRING/ARRAY): n elements of
 * slm_gguf_type_size(type) bytes each, little-endian (bool: one byte, 0 or 1). */
slm_status slm_gguf_set_arr_data(slm_gguf_writer *w, const char *key, slm_gguf_type type,
                                 const void *data, size_t n);
/* Copies one key/value (any type, arrays included) from an open file (SLM_ERR_ARG for a key
 * holding a NUL byte, which the C-string key API cannot name). */
slm_status slm_gguf_set_kv_from(slm_gguf_writer *w, const slm_gguf *g, const slm_gguf_kv *kv);
/* Removes a key if present. */
void slm_gguf_remove_kv(slm_gguf_writer *w, const char *key);

/* Adds a tensor. data is NOT copied: it must stay valid until slm_gguf_writer_write returns.
 * ne[0] is the contiguous dimension. Errors (SLM_ERR_ARG, err names the tensor): duplicate name,
 * name empty or >= SLM_GGUF_MAX_NAME bytes, n_dims not 1..4, row not a whole number of blocks of
 * the type, unknown type, size overflow, NULL data for a non-empty tensor.
 * As ggml's writer does, the file records n_dims without trailing dimensions of 1 (at least 1):
 * [64, 1] is written, and read back, as n_dims 1, ne [64]. */
slm_status slm_gguf_add_tensor(slm_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const uint64_t *ne, const void *data, slm_err *err);

/* Writes the file atomically (general.alignment is honoured if set, else 32), in llama.cpp's
 * layout: header, key/values, tensor infos, zero padding to the alignment, then each tensor's
 * data in the order added, each followed by zero padding to the alignment (offsets are
 * assigned so). Any failure leaves a previous file at path untouched and no temporary file. */
slm_status slm_gguf_writer_write(const slm_gguf_writer *w, const char *path, slm_err *err);

#endif
