/* cmd_info.c: `slm info FILE [--all]` — what a GGUF file holds: header facts, every metadata key
 * with its type and value, a table of tensors and totals.
 *
 * Only formatting lives here: the file is opened and validated by the library (gguf.h), which
 * also supplies type names, element access and element counts. Values from the file are
 * arbitrary bytes, so strings are printed quoted with control characters and invalid UTF-8
 * escaped; without --all long strings are cut and arrays show their first few elements.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gguf/gguf.h"

enum { ARRAY_SHOWN = 8, STRING_SHOWN = 64, NAME_SHOWN = 48 };

static void usage(FILE *f) {
    fputs("usage: slm info FILE [--all]\n"
          "\n"
          "Shows a GGUF file: version, alignment, size, architecture and name, then every metadata\n"
          "key with its type and value, a table of tensors (name, type, shape, bytes, file offset)\n"
          "and totals (tensors, parameters, bytes by type).\n"
          "\n"
          "  --all    print every array element and whole strings (default: the first 8 elements\n"
          "           of an array, strings cut at 64 bytes with \"...\")\n"
          "  --help   this text\n",
          f);
}

/* A name from the file (key or tensor), unquoted but with the same escaping. */
static void print_name(slm_gguf_str s, int width) {
    int shown = 0;
    for (uint64_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c > 0x20 && c < 0x7f && c != '\\') {
            putchar(c);
            shown++;
        } else {
            shown += printf("\\x%02x", c);
        }
    }
    for (; shown < width; shown++) putchar(' ');
}

/* The shortest %g form that reads back as the same value. */
static void print_float(double v, bool is_f32) {
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (is_f32 ? (float)back == (float)v : back == v) break;
        if (isnan(v)) break;
    }
    fputs(buf, stdout);
}

static void print_scalar(const slm_gguf_kv *kv, bool all) {
    switch (kv->type) {
    case SLM_GGUF_UINT8: case SLM_GGUF_UINT16: case SLM_GGUF_UINT32: case SLM_GGUF_UINT64:
        printf("%llu", (unsigned long long)kv->v.u64);
        break;
    case SLM_GGUF_INT8: case SLM_GGUF_INT16: case SLM_GGUF_INT32: case SLM_GGUF_INT64:
        printf("%lld", (long long)kv->v.i64);
        break;
    case SLM_GGUF_FLOAT32: print_float(kv->v.f64, true); break;
    case SLM_GGUF_FLOAT64: print_float(kv->v.f64, false); break;
    case SLM_GGUF_BOOL: fputs(kv->v.b ? "true" : "false", stdout); break;
    case SLM_GGUF_STRING: cli_print_quoted(kv->v.str.ptr, kv->v.str.len, all ? 0 : STRING_SHOWN); break;
    default: fputs("?", stdout); break;
    }
}

static void print_kv(const slm_gguf_kv *kv, int key_width, bool all) {
    fputs("  ", stdout);
    print_name(kv->key, key_width);
    if (kv->type != SLM_GGUF_ARRAY) {
        printf("  %-12s ", slm_gguf_type_name(kv->type));
        print_scalar(kv, all);
        putchar('\n');
        return;
    }
    char type[32];
    snprintf(type, sizeof type, "arr[%s]", slm_gguf_type_name(kv->arr_type));
    printf("  %-12s %llu [", type, (unsigned long long)kv->arr_n);
    uint64_t shown = all || kv->arr_n <= ARRAY_SHOWN ? kv->arr_n : ARRAY_SHOWN;
    slm_gguf_kv e;
    for (uint64_t i = 0; i < shown && slm_gguf_arr_at(kv, i, &e); i++) {
        if (i) fputs(", ", stdout);
        print_scalar(&e, all);
    }
    if (shown < kv->arr_n) fputs(", ...", stdout);
    puts("]");
}

static void print_human_bytes(uint64_t n) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    if (u == 0) printf("%llu bytes", (unsigned long long)n);
    else printf("%llu bytes (%.2f %s)", (unsigned long long)n, v, unit[u]);
}

static void print_header(const slm_gguf *g) {
    slm_gguf_str s;
    printf("file:          %s\n", slm_gguf_name(g));
    printf("version:       %u\n", slm_gguf_version(g));
    printf("size:          ");
    print_human_bytes(slm_gguf_file_size(g));
    printf("\nalignment:     %u\n", slm_gguf_alignment(g));
    printf("data offset:   %llu\n", (unsigned long long)slm_gguf_data_offset(g));
    const slm_gguf_kv *arch = slm_gguf_find_kv(g, "general.architecture");
    const slm_gguf_kv *name = slm_gguf_find_kv(g, "general.name");
    printf("architecture:  ");
    if (arch && arch->type == SLM_GGUF_STRING) s = arch->v.str, cli_print_quoted(s.ptr, s.len, STRING_SHOWN);
    else fputs("(not set)", stdout);
    printf("\nname:          ");
    if (name && name->type == SLM_GGUF_STRING) s = name->v.str, cli_print_quoted(s.ptr, s.len, STRING_SHOWN);
    else fputs("(not set)", stdout);
    putchar('\n');
}

static void print_tensors(const slm_gguf *g) {
    int64_t n = slm_gguf_n_tensors(g);
    int name_width = 4;
    for (int64_t i = 0; i < n; i++) {
        int len = (int)slm_gguf_tensor_at(g, i)->name.len;
        if (len > name_width) name_width = len > NAME_SHOWN ? NAME_SHOWN : len;
    }
    printf("\ntensors: %lld\n", (long long)n);
    if (n == 0) return;
    printf("  %5s  %-*s  %-7s  %-22s %12s  %12s\n", "#", name_width, "name", "type", "shape", "bytes",
           "offset");
    for (int64_t i = 0; i < n; i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        printf("  %5lld  ", (long long)i);
        print_name(t->name, name_width);
        printf("  %-7s  ", slm_ggml_type_name(t->type));
        char shape[96];
        int o = 0;
        for (uint32_t d = 0; d < (t->n_dims ? t->n_dims : 1); d++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%llu", d ? " x " : "",
                          (unsigned long long)t->ne[d]);
        printf("%-22s %12llu  %12llu\n", shape, (unsigned long long)t->nbytes,
               (unsigned long long)(slm_gguf_data_offset(g) + t->offset));
    }
}

static void print_totals(const slm_gguf *g) {
    enum { MAX_TYPE = 64 };
    uint64_t count[MAX_TYPE] = {0}, bytes[MAX_TYPE] = {0}, params = 0, total = 0;
    int64_t n = slm_gguf_n_tensors(g);
    for (int64_t i = 0; i < n; i++) {
        const slm_gguf_tensor *t = slm_gguf_tensor_at(g, i);
        params += slm_gguf_tensor_nelements(t);
        total += t->nbytes;
        if (t->type < MAX_TYPE) count[t->type]++, bytes[t->type] += t->nbytes;
    }
    printf("\ntotals:\n");
    printf("  tensors:     %lld\n", (long long)n);
    printf("  parameters:  %llu", (unsigned long long)params);
    if (params >= 1000000) printf(" (%.2f M)", params / 1e6);
    else if (params >= 1000) printf(" (%.1f K)", params / 1e3);
    printf("\n  tensor data: ");
    print_human_bytes(total);
    putchar('\n');
    for (uint32_t t = 0; t < MAX_TYPE; t++) {
        if (!count[t]) continue;
        printf("  %-7s      %llu tensor%s, ", slm_ggml_type_name(t), (unsigned long long)count[t],
               count[t] == 1 ? "" : "s");
        print_human_bytes(bytes[t]);
        putchar('\n');
    }
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool all = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--all")) all = true;
        else if (argv[i][0] == '-' && argv[i][1]) cli_die("info: unknown option '%s' (see slm info --help)", argv[i]);
        else if (path) cli_die("info: one file at a time ('%s' and '%s')", path, argv[i]);
        else path = argv[i];
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    slm_err err;
    slm_err_clear(&err);
    slm_gguf *g = slm_gguf_open(path, &err);
    if (!g) cli_fail(&err, "info");

    print_header(g);
    int64_t n_kv = slm_gguf_n_kv(g);
    int key_width = 8;
    for (int64_t i = 0; i < n_kv; i++) {
        int len = (int)slm_gguf_kv_at(g, i)->key.len;
        if (len > key_width) key_width = len > NAME_SHOWN ? NAME_SHOWN : len;
    }
    printf("\nmetadata: %lld keys\n", (long long)n_kv);
    for (int64_t i = 0; i < n_kv; i++) print_kv(slm_gguf_kv_at(g, i), key_width, all);
    print_tensors(g);
    print_totals(g);
    slm_gguf_close(g);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "slm: info: cannot write the output\n");
        return 1;
    }
    return 0;
}
