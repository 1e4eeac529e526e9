/* error.h: errors as values.
 *
 * Every library function that can fail on bad input returns an slm_status and, when the caller
 * passes an slm_err, fills a message that says what was wrong and where (file, offset, field,
 * line). The library never exits or aborts on bad input; only the CLI decides to exit.
 * SLM_ASSERT is for internal invariants (bugs), never for input.
 */
#ifndef SLM_CORE_ERROR_H
#define SLM_CORE_ERROR_H

#include <stdio.h>
#include <stdlib.h>

typedef enum {
    SLM_OK = 0,
    SLM_ERR_IO,          /* a file could not be opened, read, written or renamed */
    SLM_ERR_FORMAT,      /* a file's content is malformed (corrupt GGUF, bad text) */
    SLM_ERR_ARG,         /* a caller-supplied argument is invalid */
    SLM_ERR_NOMEM,       /* an allocation failed */
    SLM_ERR_UNSUPPORTED, /* valid but not handled (unknown tensor type, architecture) */
    SLM_ERR_RANGE,       /* a value is outside what is allowed (context too long, id out of vocab) */
} slm_status;

typedef struct {
    slm_status code;
    char msg[1024];
} slm_err;

/* Records code and a printf-style message in err (which may be NULL); returns code so that
 * callers can write `return slm_err_set(err, SLM_ERR_ARG, "...")`. */
slm_status slm_err_set(slm_err *err, slm_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (adds context on the way up). Returns err->code. */
slm_status slm_err_prefix(slm_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err to SLM_OK with an empty message. */
void slm_err_clear(slm_err *err);

const char *slm_status_name(slm_status s);

#define SLM_ASSERT(cond)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: internal error: assertion failed: %s\n", __FILE__,      \
                    __LINE__, #cond);                                                        \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

#endif
