/* cli.c: argument helpers shared by the subcommands (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("slm: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

void cli_fail(const slm_err *err, const char *what) {
    fprintf(stderr, "slm: %s: %s\n", what, err->msg[0] ? err->msg : slm_status_name(err->code));
    exit(1);
}

bool cli_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) cli_die("option %s needs a value (see --help)", argv[*i]);
    return argv[++*i];
}

long cli_long(const char *opt, const char *s, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        cli_die("%s: expected a whole number from %ld to %ld, got '%s'", opt, min, max, s);
    return v;
}

double cli_double(const char *opt, const char *s, double min, double max) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        cli_die("%s: expected a number from %g to %g, got '%s'", opt, min, max, s);
    return v;
}
