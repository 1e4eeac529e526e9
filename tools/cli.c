/* cli.c: argument helpers shared by the subcommands (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/blas_threads.h"

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

char *cli_unescape(const char *s) {
    char *o = malloc(strlen(s) + 1), *q = o;
    if (!o) cli_die("out of memory");
    for (; *s; s++) {
        if (s[0] == '\\' && (s[1] == 'n' || s[1] == 't' || s[1] == '\\')) {
            *q++ = s[1] == 'n' ? '\n' : s[1] == 't' ? '\t' : '\\';
            s++;
        } else {
            *q++ = *s;
        }
    }
    *q = 0;
    return o;
}

slm_pool *cli_pool(int threads) {
    slm_err err;
    slm_blas_set_threads(1);
    slm_pool *pool = slm_pool_new(threads, &err);
    if (!pool) cli_fail(&err, "threads");
    return pool;
}

int cli_on_off(const char *opt, const char *s) {
    if (!strcmp(s, "on")) return 1;
    if (!strcmp(s, "off")) return 0;
    cli_die("%s: expected on or off, got '%s'", opt, s);
    return 0;
}

/* Length of the valid UTF-8 sequence at p (n bytes available), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

void cli_print_quoted(const char *s, size_t n, size_t max) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    putchar('"');
    while (i < n) {
        if (max && i >= max) {
            fputs("\"...", stdout);
            return;
        }
        unsigned c = p[i];
        size_t len = utf8_len(p + i, n - i);
        if (len > 1) {
            fwrite(p + i, 1, len, stdout);
            i += len;
            continue;
        }
        i++;
        if (len == 1 && c >= 0x20 && c != 0x7f && c != '"' && c != '\\') putchar((int)c);
        else if (c == '"') fputs("\\\"", stdout);
        else if (c == '\\') fputs("\\\\", stdout);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else printf("\\x%02x", c);
    }
    putchar('"');
}

void cli_open_model(const char *path, cli_model *cm) {
    slm_err err;
    if (!(cm->g = slm_gguf_open(path, &err))) cli_fail(&err, "reading model");
    if (!(cm->tok = slm_tokenizer_load(cm->g, &err))) cli_fail(&err, path);
    if (!(cm->m = slm_model_load_mapped(cm->g, &err))) cli_fail(&err, path);
}

void cli_close_model(cli_model *cm) {
    slm_model_free(cm->m);
    slm_tokenizer_free(cm->tok);
    slm_gguf_close(cm->g);
}
