/* cmd_tokenize.c: `slm tokenize FILE.gguf (--file IN.txt | -p TEXT) [--bos] [--pieces]` — the
 * token ids of exactly the bytes given (no newline added or removed), space-separated on one line,
 * using the tokenizer stored in any GGUF (a vocabulary-only file or a model; byte-level BPE or
 * SentencePiece, whose encoding puts one "▁" before the text as llama.cpp does).
 *
 * Only argument handling and printing live here (tokenizer/tokenizer.h does the work). --pieces
 * prints what each token stands for instead, quoted, with control characters, quotes and bytes
 * that are not whole UTF-8 characters escaped (a multi-byte character split across tokens shows
 * as \xNN escapes).
 *
 * A reader that stops early (`| head`) is not an error: SIGPIPE is ignored and a closed pipe ends
 * the output with status 0. Any other write failure (disk full) is reported, status 1.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/file.h"
#include "tokenizer/tokenizer.h"

static void usage(FILE *f) {
    fputs("usage: slm tokenize FILE.gguf (--file IN.txt | -p TEXT) [--bos] [--pieces]\n"
          "\n"
          "Prints the token ids of the exact bytes of the text, space-separated on one line, with\n"
          "the tokenizer stored in FILE.gguf (made by `slm tokenizer train`, or any GGUF whose\n"
          "tokenizer.ggml.model is \"gpt2\" (byte-level BPE: GPT-2, Llama 3, Qwen2, SmolLM\n"
          "pre-splits) or \"llama\" (SentencePiece: Llama 2, TinyLlama), models included).\n"
          "\n"
          "  --file IN.txt   the text is this file's bytes\n"
          "  -p, --prompt T  the text is T\n"
          "  --bos           put the BOS token first (default: none)\n"
          "  --pieces        print each token's bytes, quoted and escaped, instead of its id\n"
          "  --help          this text\n",
          f);
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *prompt = NULL;
    int bos = 0, pieces = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--file") || !strcmp(a, "-f")) {
            file = cli_value(argc, argv, &i);
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            prompt = cli_value(argc, argv, &i);
        } else if (!strcmp(a, "--bos")) {
            bos = 1;
        } else if (!strcmp(a, "--pieces")) {
            pieces = 1;
        } else if (a[0] == '-' && a[1]) {
            cli_die("tokenize: unknown option '%s' (see slm tokenize --help)", a);
        } else if (!model) {
            model = a;
        } else {
            cli_die("tokenize: more than one GGUF given ('%s' and '%s')", model, a);
        }
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!model) cli_die("tokenize: no GGUF file given (see slm tokenize --help)");
    if (!file == !prompt) cli_die("tokenize: give the text with exactly one of --file or -p");

    slm_err err;
    char *text = NULL;
    size_t len;
    if (file) {
        if (slm_file_read_all(file, &text, &len, &err) != SLM_OK) cli_fail(&err, "tokenize");
    } else {
        len = strlen(prompt);
    }
    slm_tokenizer *tok = slm_tokenizer_load_file(model, &err);
    if (!tok) cli_fail(&err, "tokenize");
    int32_t *ids;
    size_t n;
    if (slm_tokenizer_encode(tok, file ? text : prompt, len, bos, &ids, &n, &err) != SLM_OK)
        cli_fail(&err, "tokenize");
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < n && !ferror(stdout); i++) {
        if (i) putchar(' ');
        if (pieces) {
            size_t pl;
            const char *p = slm_tokenizer_token_bytes(tok, ids[i], &pl);
            if (slm_tokenizer_token_type(tok, ids[i]) == SLM_TOKEN_CONTROL)
                p = slm_tokenizer_token_text(tok, ids[i], &pl); /* show "<|bos|>", not nothing */
            cli_print_quoted(p, pl, 0);
        } else {
            printf("%d", ids[i]);
        }
    }
    putchar('\n');
    int failed = fflush(stdout) != 0 || ferror(stdout);
    int saved = errno;
    free(ids);
    free(text);
    slm_tokenizer_free(tok);
    if (failed && saved != EPIPE) {
        slm_err_set(&err, SLM_ERR_IO, "writing the output: %s", strerror(saved));
        cli_fail(&err, "tokenize");
    }
    return 0;
}
