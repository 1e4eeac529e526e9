/* bench.h: the machine's limits, measured (memory bandwidth, peak sgemm), and random-weight models
 * of named shapes written in any block format — what `slm bench` divides its speeds by.
 *
 * Speed is measured by the bench command and bench/ programs, never by tests.
 */
#ifndef SLM_BENCH_BENCH_H
#define SLM_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/threads.h"

/* STREAM-style triad a[i] = b[i] + s·c[i] over three float arrays of total_bytes together (make it
 * far larger than the last-level cache), split across the pool; the best of reps, in GB/s
 * (10^9 bytes: 3 arrays' bytes moved per pass, as STREAM counts). SLM_ERR_NOMEM if it cannot
 * allocate. */
slm_status slm_bench_membw(slm_pool *pool, size_t total_bytes, int reps, double *gbs, slm_err *err);

/* Peak single-precision GEMM: an n x n x n sgemm (OpenBLAS, one thread per pool thread, the
 * product split by rows), best of reps, in GFLOP/s. */
slm_status slm_bench_sgemm(slm_pool *pool, int n, int reps, double *gflops, slm_err *err);

/* Writes a llama model with random weights of a named shape ("15M": dim 288, 6 layers, 6 heads,
 * hidden 768; "110M": 768, 12, 12, 2048; vocab 32000, context ctx_len) to path, its matrices in
 * type (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k; matrices whose rows are not whole blocks stay
 * f32), norms f32. Unknown shape or type: SLM_ERR_ARG naming the known ones. */
slm_status slm_bench_write_shape(const char *shape, uint32_t type, int ctx_len, const char *path,
                                 slm_err *err);

#endif
