/* cmd_quantize.c: `slm quantize IN.gguf -o OUT.gguf --type T [--tensor-type NAME=TYPE ...]
 * [--keep-embeddings] [--quiet]` — parses, calls slm_quantize_file (src/compress/quantize.h,
 * which holds the policy), and prints its report: a table of tensors and the totals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compress/quantize.h"
#include "gguf/gguf.h"

static void usage(FILE *f) {
    fputs("usage: slm quantize IN.gguf -o OUT.gguf --type TYPE [--tensor-type NAME=TYPE ...]\n"
          "                    [--keep-embeddings] [--quiet]\n"
          "\n"
          "Writes IN's weight matrices in another type, GGUF block layouts as llama.cpp's, so\n"
          "OUT loads in llama.cpp too. Norms and other 1-D tensors stay as they are.\n"
          "\n"
          "  --type TYPE             q4_0, q8_0, q4_k (llama.cpp's Q4_K_M mix), q6_k, f16, bf16,\n"
          "                          f32. For quantized types output.weight (or the tied\n"
          "                          token_embd.weight) is Q6_K, as llama.cpp does\n"
          "  --tensor-type NAME=TYPE tensors whose name contains NAME get TYPE (repeatable)\n"
          "  --keep-embeddings       token_embd.weight keeps its type\n"
          "  --quiet                 no per-tensor progress on stderr\n"
          "Rows that are not whole blocks fall back (K-quants to q8_0, then f16) and say so.\n",
          f);
}

int cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = NULL;
    const char **ovr = calloc((size_t)argc + 1, sizeof *ovr);
    if (!ovr) cli_die("quantize: out of memory");
    int n_ovr = 0;
    bool keep = false, quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            free(ovr);
            return 0;
        }
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--type")) type = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--tensor-type")) ovr[n_ovr++] = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--keep-embeddings")) keep = true;
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (a[0] == '-' && a[1]) cli_die("quantize: unknown option '%s' (see slm quantize --help)", a);
        else if (in) cli_die("quantize: one input file ('%s' and '%s')", in, a);
        else in = a;
    }
    if (!in || !out || !type) {
        usage(stderr);
        free(ovr);
        return 2;
    }
    slm_err err;
    slm_err_clear(&err);
    slm_quantize_opts o = {0};
    if (slm_quantize_parse_type(type, &o.type, &err) != SLM_OK) cli_die("quantize: --type: %s", err.msg);
    o.overrides = ovr;
    o.n_overrides = n_ovr;
    o.keep_embeddings = keep;
    o.progress = quiet ? NULL : stderr;
    slm_quantize_report r;
    slm_status st = slm_quantize_file(in, out, &o, &r, &err);
    free(ovr);
    if (st == SLM_ERR_ARG) cli_die("quantize: %s", err.msg);
    if (st != SLM_OK) cli_fail(&err, "quantize");

    printf("%-32s %-5s %-5s %12s %12s  %s\n", "tensor", "from", "to", "bytes in", "bytes out", "note");
    for (int i = 0; i < r.n_tensors; i++) {
        const slm_quantize_tensor *t = &r.tensors[i];
        printf("%-32s %-5s %-5s %12llu %12llu  %s\n", t->name, slm_ggml_type_name(t->from),
               slm_ggml_type_name(t->to), (unsigned long long)t->bytes_from,
               (unsigned long long)t->bytes_to, t->note);
    }
    double n = r.n_elements ? (double)r.n_elements : 1;
    printf("\n%s -> %s (general.file_type %u)\n", in, out, r.file_type);
    printf("tensors:       %d (%d fell back to another type)\n", r.n_tensors, r.n_fallback);
    printf("size before:   %llu bytes (%.2f MiB, %.2f bits per weight)\n",
           (unsigned long long)r.bytes_before, r.bytes_before / 1048576.0, r.bytes_before * 8.0 / n);
    printf("size after:    %llu bytes (%.2f MiB, %.2f bits per weight)\n",
           (unsigned long long)r.bytes_after, r.bytes_after / 1048576.0, r.bytes_after * 8.0 / n);
    slm_quantize_report_free(&r);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "slm: quantize: cannot write the output\n");
        return 1;
    }
    return 0;
}
