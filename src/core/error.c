/* error.c: the slm_err message buffer (see error.h). */
#include "core/error.h"

#include <stdarg.h>
#include <string.h>

slm_status slm_err_set(slm_err *err, slm_status code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

slm_status slm_err_prefix(slm_err *err, const char *fmt, ...) {
    if (!err) return SLM_ERR_ARG;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* prefix, then as much of the old message as fits */
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3) n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3, ol = strnlen(old, sizeof old - 1);
    if (ol > room) ol = room;
    memcpy(err->msg + n + 2, old, ol);
    err->msg[n + 2 + ol] = '\0';
    return err->code;
}

void slm_err_clear(slm_err *err) {
    if (!err) return;
    err->code = SLM_OK;
    err->msg[0] = '\0';
}

const char *slm_status_name(slm_status s) {
    switch (s) {
    case SLM_OK: return "ok";
    case SLM_ERR_IO: return "i/o error";
    case SLM_ERR_FORMAT: return "format error";
    case SLM_ERR_ARG: return "invalid argument";
    case SLM_ERR_NOMEM: return "out of memory";
    case SLM_ERR_UNSUPPORTED: return "unsupported";
    case SLM_ERR_RANGE: return "out of range";
    }
    return "unknown error";
}
