/* sha256.h: SHA-256 (FIPS 180-4), streaming, for the dataset card's provenance hashes.
 *
 * Written from the standard (not copied); tested against its published vectors. Incremental, so a
 * file of any size is hashed in one pass with a fixed buffer.
 */
#ifndef SLM_DATA_SHA256_H
#define SLM_DATA_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    uint32_t h[8];     /* chaining state H0..H7 */
    uint8_t block[64]; /* the pending partial block */
    size_t n_block;    /* bytes used in block */
    uint64_t n_bytes;  /* total message length so far */
} slm_sha256;

void slm_sha256_init(slm_sha256 *s);
void slm_sha256_update(slm_sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest; s must be re-initialised before reuse. */
void slm_sha256_final(slm_sha256 *s, uint8_t out[32]);
/* Digest of data as 64 lower-case hex digits plus NUL. */
void slm_sha256_hex(const void *data, size_t len, char hex[65]);
/* Hashes a whole file; *size receives its length in bytes. */
slm_status slm_sha256_file(const char *path, char hex[65], uint64_t *size, slm_err *err);

#endif
