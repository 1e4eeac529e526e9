/* file.h: reading whole files, mapping files read-only, and writing files atomically.
 *
 * Atomic writes go to "<path>.tmp.<pid>", are fsynced, then renamed over <path> and the directory
 * is fsynced, so a crash leaves either the old file or the new one, never a torn one.
 */
#ifndef SLM_CORE_FILE_H
#define SLM_CORE_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

/* Reads the whole file into a malloc'd buffer with a NUL byte appended (not counted in *len). */
slm_status slm_file_read_all(const char *path, char **data, size_t *len, slm_err *err);

typedef struct {
    void *data;  /* NULL for an empty file */
    size_t size;
} slm_mmap;

slm_status slm_mmap_open(const char *path, slm_mmap *map, slm_err *err);
void slm_mmap_close(slm_mmap *map);

typedef struct {
    FILE *f;
    char *tmp_path;
    char *path;
} slm_atomic_file;

/* Opens a temporary file beside path for writing. */
slm_status slm_atomic_open(slm_atomic_file *af, const char *path, slm_err *err);
/* Flushes, fsyncs, closes and renames the temporary file over path. Frees af's fields. */
slm_status slm_atomic_commit(slm_atomic_file *af, slm_err *err);
/* Closes and removes the temporary file; path is untouched. Safe on a zeroed af. */
void slm_atomic_abort(slm_atomic_file *af);

#endif
