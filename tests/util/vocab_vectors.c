/* vocab_vectors.c: see vocab_vectors.h. */
#include "vocab_vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "testutil.h"

static char *read_file(const char *path, size_t *len) {
    char *data;
    if (slm_file_read_all(path, &data, len, tu_err()) != SLM_OK) fail_msg("%s", tu_err_last());
    return data;
}

int tu_vocab_vectors(const slm_tokenizer *t, const char *vocab,
                     void (*each)(const slm_tokenizer *t, const char *text, size_t len),
                     int *failed) {
    char path[1024];
    size_t ilen, olen;
    snprintf(path, sizeof path, "%s.inp", vocab);
    char *inp = read_file(path, &ilen);
    snprintf(path, sizeof path, "%s.out", vocab);
    char *outp = read_file(path, &olen);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *ip = inp, *op = outp;
    int line = 0;
    *failed = 0;
    while (ip < inp + ilen) {
        char *end = strstr(ip, sep);
        assert_non_null(end);
        size_t n = (size_t)(end - ip);
        char *eol = strchr(op, '\n');
        assert_non_null(eol);
        *eol = 0;
        int32_t want[512];
        size_t nw = 0;
        for (char *s = op, *e;; s = e) {
            long v = strtol(s, &e, 10);
            if (e == s) break;
            assert_true(nw < 512);
            want[nw++] = (int32_t)v;
        }
        int32_t *got;
        size_t ng;
        TU_OK(slm_tokenizer_encode(t, ip, n, 0, &got, &ng, tu_err()));
        line++;
        if (ng != nw || (nw && memcmp(got, want, nw * sizeof *want))) {
            (*failed)++;
            fprintf(stderr, "vector %d ('%.*s'): want%s\n  got ", line, (int)n, ip, op);
            for (size_t i = 0; i < ng; i++) fprintf(stderr, " %d", got[i]);
            fprintf(stderr, "\n");
        }
        free(got);
        if (each) each(t, ip, n);
        ip = end + sizeof sep - 1;
        op = eol + 1;
    }
    free(inp);
    free(outp);
    return line;
}
