/* csv.h: a streaming RFC 4180 reader.
 *
 * Handles quoted fields with commas, doubled quotes ("") and embedded CR/LF/CRLF newlines, a
 * UTF-8 byte order mark, a missing final newline, and reports the physical line on which each
 * record starts, so a bad row can be named "file.csv:123". Reads one record at a time through a
 * FILE (memory is one record, however large the file). Lenient where RFC 4180 is silent: a quote
 * inside an unquoted field is kept literally. Malformed: text after a closing quote, and a quote
 * still open at end of file.
 */
#ifndef SLM_DATA_CSV_H
#define SLM_DATA_CSV_H

#include <stdio.h>

#include "core/error.h"

typedef struct slm_csv slm_csv;

typedef struct {
    char **fields; /* n fields, NUL-terminated, valid until the next slm_csv_next */
    size_t *lens;  /* their byte lengths (a field may hold NUL bytes) */
    int n;
    long line;     /* physical line where the record starts (1-based) */
    int blank;     /* the record was an empty line (n == 1, an empty field) */
} slm_csv_row;

/* Reads from f (not closed by slm_csv_free). */
slm_csv *slm_csv_new(FILE *f, slm_err *err);
void slm_csv_free(slm_csv *c);

/* Reads the next record into row. Returns SLM_OK with *eof = 0 for a record, SLM_OK with *eof = 1
 * at end of input, SLM_ERR_FORMAT for a malformed record (err holds "line N: reason", row->line is
 * set; the reader has skipped past it and the next call continues), SLM_ERR_NOMEM/IO otherwise. */
slm_status slm_csv_next(slm_csv *c, slm_csv_row *row, int *eof, slm_err *err);

/* Bytes consumed so far (for progress). */
long long slm_csv_offset(const slm_csv *c);

#endif
