/* csv.c: the RFC 4180 state machine (see csv.h). Bytes go into one growing buffer with a NUL after
 * each field; field pointers are made once the record is complete (the buffer may move). */
#include "data/csv.h"

#include <stdlib.h>
#include <string.h>

struct slm_csv {
    FILE *f;
    long line;         /* current physical line (1-based) */
    long long offset;  /* bytes consumed */
    char *buf;         /* field bytes, each field followed by NUL */
    size_t len, cap;
    size_t *starts;    /* offset in buf of each field */
    size_t *lens;
    char **fields;
    int n, cap_fields;
    int done;
};

slm_csv *slm_csv_new(FILE *f, slm_err *err) {
    slm_csv *c = calloc(1, sizeof *c);
    if (!c) {
        slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->f = f;
    c->line = 1;
    /* a UTF-8 byte order mark is not part of the first header name */
    int b0 = getc(f);
    if (b0 == 0xEF) {
        int b1 = getc(f), b2 = getc(f);
        if (b1 == 0xBB && b2 == 0xBF) c->offset = 3;
        else {
            /* not a BOM: push back what we can (ungetc guarantees one byte) by re-seeking */
            if (fseek(f, -(long)((b1 != EOF) + (b2 != EOF) + 1), SEEK_CUR) != 0) {
                free(c);
                slm_err_set(err, SLM_ERR_IO, "input starts with 0xEF but is not seekable");
                return NULL;
            }
        }
    } else if (b0 != EOF) ungetc(b0, f);
    return c;
}

void slm_csv_free(slm_csv *c) {
    if (!c) return;
    free(c->buf);
    free(c->starts);
    free(c->lens);
    free(c->fields);
    free(c);
}

long long slm_csv_offset(const slm_csv *c) { return c->offset; }

static int put(slm_csv *c, char ch) {
    if (c->len + 1 >= c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 4096;
        char *nb = realloc(c->buf, nc);
        if (!nb) return 0;
        c->buf = nb;
        c->cap = nc;
    }
    c->buf[c->len++] = ch;
    return 1;
}

static int begin_field(slm_csv *c) {
    if (c->n == c->cap_fields) {
        int nc = c->cap_fields ? c->cap_fields * 2 : 16;
        size_t *ns = realloc(c->starts, (size_t)nc * sizeof *ns);
        if (!ns) return 0;
        c->starts = ns;
        size_t *nl = realloc(c->lens, (size_t)nc * sizeof *nl);
        if (!nl) return 0;
        c->lens = nl;
        char **nf = realloc(c->fields, (size_t)nc * sizeof *nf);
        if (!nf) return 0;
        c->fields = nf;
        c->cap_fields = nc;
    }
    c->starts[c->n++] = c->len;
    return 1;
}

static int end_field(slm_csv *c) {
    c->lens[c->n - 1] = c->len - c->starts[c->n - 1];
    return put(c, '\0');
}

static inline int next_byte(slm_csv *c) {
    int ch = getc_unlocked(c->f);
    if (ch != EOF) c->offset++;
    return ch;
}

/* After a CR: consume a following LF (CRLF is one line end). */
static void eat_lf(slm_csv *c) {
    int ch = getc_unlocked(c->f);
    if (ch == '\n') c->offset++;
    else if (ch != EOF) ungetc(ch, c->f);
}

/* Skips to the end of the current physical line (error recovery). */
static void skip_line(slm_csv *c) {
    int ch;
    while ((ch = next_byte(c)) != EOF) {
        if (ch == '\n') break;
        if (ch == '\r') {
            eat_lf(c);
            break;
        }
    }
    c->line++;
}

enum { START, UNQUOTED, QUOTED, QUOTE_SEEN };

slm_status slm_csv_next(slm_csv *c, slm_csv_row *row, int *eof, slm_err *err) {
    memset(row, 0, sizeof *row);
    *eof = 0;
    c->len = 0;
    c->n = 0;
    if (c->done) {
        *eof = 1;
        return SLM_OK;
    }
    long start_line = c->line;
    row->line = start_line;
    int state = START, any = 0;
    if (!begin_field(c)) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    for (;;) {
        int ch = next_byte(c);
        if (ch == EOF && ferror(c->f)) return slm_err_set(err, SLM_ERR_IO, "read error at line %ld", c->line);
        switch (state) {
        case START:
        case UNQUOTED:
            if (ch == EOF) {
                c->done = 1;
                if (!any && state == START && c->n == 1) {
                    *eof = 1;
                    return SLM_OK;
                }
                goto record;
            }
            if (ch == '"' && state == START) {
                state = QUOTED;
                any = 1;
            } else if (ch == ',') {
                any = 1;
                if (!end_field(c) || !begin_field(c)) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
                state = START;
            } else if (ch == '\n' || ch == '\r') {
                if (ch == '\r') eat_lf(c);
                c->line++;
                goto record;
            } else {
                any = 1;
                if (!put(c, (char)ch)) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
                state = UNQUOTED;
            }
            break;
        case QUOTED:
            if (ch == EOF) {
                c->done = 1;
                return slm_err_set(err, SLM_ERR_FORMAT,
                                   "line %ld: unterminated quote (still open at end of file: lines %ld-%ld were read as one field)",
                                   start_line, start_line, c->line);
            }
            if (ch == '"') state = QUOTE_SEEN;
            else {
                if (ch == '\n') c->line++;
                else if (ch == '\r') {
                    int nx = getc_unlocked(c->f);
                    if (nx != '\n') c->line++; /* a lone CR ends a line; CRLF counts at the LF */
                    if (nx != EOF) ungetc(nx, c->f);
                }
                if (!put(c, (char)ch)) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
            }
            break;
        case QUOTE_SEEN:
            if (ch == '"') {
                if (!put(c, '"')) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
                state = QUOTED;
            } else if (ch == ',') {
                if (!end_field(c) || !begin_field(c)) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
                state = START;
            } else if (ch == '\n' || ch == '\r' || ch == EOF) {
                if (ch == '\r') eat_lf(c);
                if (ch == EOF) c->done = 1;
                else c->line++;
                goto record;
            } else {
                long at = c->line;
                if (ch != '\n') skip_line(c);
                return slm_err_set(err, SLM_ERR_FORMAT, "line %ld: unexpected character '%c' after a closing quote%s",
                                   start_line, ch >= 32 && ch < 127 ? ch : '?',
                                   at != start_line ? " (in a record spanning lines)" : "");
            }
            break;
        }
    }
record:
    if (!end_field(c)) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->n; i++) c->fields[i] = c->buf + c->starts[i];
    row->fields = c->fields;
    row->lens = c->lens;
    row->n = c->n;
    row->blank = !any && c->n == 1;
    return SLM_OK;
}
