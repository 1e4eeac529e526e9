/* testutil.c: see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];
static slm_err the_err;

static void remove_tmpdir(void) {
    if (!tmpdir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "testutil: could not remove %s\n", tmpdir);
}

const char *tu_tmp_path(const char *name) {
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/slm-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "testutil: mkdtemp failed\n");
            abort();
        }
        atexit(remove_tmpdir);
    }
    enum { SLOTS = 64 };
    static char paths[SLOTS][512];
    static int next;
    char *p = paths[next++ % SLOTS];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

slm_err *tu_err(void) { return &the_err; }
const char *tu_err_last(void) { return the_err.msg; }

double tu_max_excess(const float *a, const float *b, size_t n, double rtol) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) - rtol * fabs((double)b[i]);
        if (isnan(a[i]) || isnan(b[i])) return INFINITY;
        if (d > worst) worst = d;
    }
    return worst;
}
