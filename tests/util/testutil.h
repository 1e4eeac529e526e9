/* testutil.h: small helpers the test programs share (cmocka is the framework). */
#ifndef SLM_TESTS_TESTUTIL_H
#define SLM_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

/* A fresh path under a per-process temporary directory: "<tmpdir>/<name>". The directory is
 * created on first use and removed (with its files) at exit. Returns a static-lifetime string. */
const char *tu_tmp_path(const char *name);

/* Fails the test with the message of err when status is not SLM_OK. */
#define TU_OK(expr)                                                                         \
    do {                                                                                    \
        slm_status tu_s_ = (expr);                                                          \
        if (tu_s_ != SLM_OK) fail_msg("%s failed: %s", #expr, tu_err_last());               \
    } while (0)

/* Tests pass their slm_err through tu_err() so TU_OK can print its message. */
#include "core/error.h"
slm_err *tu_err(void);
const char *tu_err_last(void);

/* Max |a-b| / (|b| + atol)-style comparison used by numeric tests: returns the largest
 * |a[i]-b[i]| - rtol*|b[i]| (<= atol means close). */
double tu_max_excess(const float *a, const float *b, size_t n, double rtol);

#endif
