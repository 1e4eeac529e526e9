/* cmd_tokenizer.c: `slm tokenizer train CORPUS... -o TOK.gguf [--vocab N] [--max-bytes N]` —
 * trains a byte-level BPE tokenizer and writes it as a vocabulary-only GGUF.
 *
 * Only argument handling, reading the corpus files and printing live here; training, the file
 * format and encoding are the library's (tokenizer/tokenizer.h). Corpus files are joined as they
 * are, byte for byte, in the order given; --max-bytes stops reading once that much is in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/file.h"
#include "core/timer.h"
#include "tokenizer/tokenizer.h"

static void usage(FILE *f) {
    fputs("usage: slm tokenizer train CORPUS.txt [CORPUS2.txt ...] -o TOK.gguf [options]\n"
          "\n"
          "Trains a byte-level BPE tokenizer (GPT-2 style: text pre-split with GPT-2's regex, then\n"
          "the most frequent byte pairs merged) and writes a vocabulary-only GGUF\n"
          "(tokenizer.ggml.model = \"gpt2\"). The vocabulary is <|unk|> <|bos|> <|eos|> <|pad|>\n"
          "(ids 0-3), the 256 bytes (4-259), then one token per merge. Any bytes encode, and\n"
          "decode back exactly. Use it with `slm train --tokenizer TOK.gguf`.\n"
          "\n"
          "  -o, --output FILE   where to write the tokenizer (required)\n"
          "  --vocab N           vocabulary size, special tokens and bytes included\n"
          "                      (default 4096; at least 260). Training stops early when the text\n"
          "                      has no pair left to merge.\n"
          "  --max-bytes N       train on at most the first N bytes of the corpus (default: all)\n"
          "  --quiet             no progress line\n"
          "  --help              this text\n",
          f);
}

typedef struct {
    double t0;
    int tty;
    int last_pct;
} progress_state;

static void on_progress(void *ctx, int done, int total) {
    progress_state *p = ctx;
    int pct = total > 0 ? (int)(100.0 * done / total) : 100;
    /* on a terminal, one line rewritten; in a log, a line per 10% */
    if (!p->tty && pct / 10 == p->last_pct / 10 && done != total) return;
    p->last_pct = pct;
    fprintf(stderr, "%stokenizer: merges %d/%d (%d%%), %.1f s%s", p->tty ? "\r" : "", done, total,
            pct, slm_time_now() - p->t0, p->tty ? "" : "\n");
    fflush(stderr);
}

static int train(int argc, char **argv) {
    const char *out = NULL;
    long vocab = 4096;
    long long max_bytes = 0;
    int quiet = 0;
    const char **corpus = calloc((size_t)argc, sizeof *corpus);
    int n_corpus = 0;
    if (!corpus) cli_die("tokenizer train: out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            free(corpus);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            out = cli_value(argc, argv, &i);
        } else if (!strcmp(a, "--vocab")) {
            vocab = cli_long("--vocab", cli_value(argc, argv, &i), 260, 1L << 24);
        } else if (!strcmp(a, "--max-bytes")) {
            max_bytes = cli_long("--max-bytes", cli_value(argc, argv, &i), 1, 1L << 62);
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            cli_die("tokenizer train: unknown option '%s' (see slm tokenizer --help)", a);
        } else {
            corpus[n_corpus++] = a;
        }
    }
    if (!n_corpus) cli_die("tokenizer train: no corpus file given (see slm tokenizer --help)");
    if (!out) cli_die("tokenizer train: no output file: add -o TOK.gguf");

    /* the corpus: the files one after another, up to --max-bytes */
    char *text = NULL;
    size_t len = 0;
    int files_used = 0;
    slm_err err;
    for (int i = 0; i < n_corpus && (!max_bytes || len < (size_t)max_bytes); i++) {
        char *data;
        size_t n;
        if (slm_file_read_all(corpus[i], &data, &n, &err) != SLM_OK) cli_fail(&err, "tokenizer train");
        if (max_bytes && len + n > (size_t)max_bytes) n = (size_t)max_bytes - len;
        char *t = realloc(text, len + n + 1);
        if (!t) cli_die("tokenizer train: out of memory reading %s", corpus[i]);
        text = t;
        memcpy(text + len, data, n);
        len += n;
        free(data);
        files_used++;
    }
    if (!len) cli_die("tokenizer train: the corpus is empty");

    progress_state ps = {slm_time_now(), isatty(2), -100};
    slm_tokenizer_train_opts opts = {
        .vocab_size = (int)vocab,
        .progress = quiet ? NULL : on_progress,
        .progress_ctx = &ps,
    };
    slm_tokenizer *tok;
    if (slm_tokenizer_train(text, len, &opts, &tok, &err) != SLM_OK) cli_fail(&err, "tokenizer train");
    double secs = slm_time_now() - ps.t0;
    if (!quiet && ps.tty) fputc('\n', stderr);
    if (slm_tokenizer_save_file(tok, out, &err) != SLM_OK) cli_fail(&err, "tokenizer train");

    int32_t *ids;
    size_t n_ids;
    if (slm_tokenizer_encode(tok, text, len, 0, &ids, &n_ids, &err) != SLM_OK)
        cli_fail(&err, "tokenizer train");
    int nv = slm_tokenizer_n_vocab(tok);
    printf("wrote %s: %d tokens (4 special, 256 bytes, %d merged; %d merges)%s\n", out, nv, nv - 260,
           slm_tokenizer_n_merges(tok), nv < vocab ? ", fewer than asked: no pairs left" : "");
    printf("trained on %zu bytes from %d file%s in %.2f s; they encode to %zu tokens, "
           "%.2f bytes per token\n",
           len, files_used, files_used == 1 ? "" : "s", secs, n_ids,
           n_ids ? (double)len / (double)n_ids : 0.0);
    free(ids);
    slm_tokenizer_free(tok);
    free(text);
    free(corpus);
    return 0;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "train")) return train(argc - 1, argv + 1);
    cli_die("tokenizer: unknown subcommand '%s' (the one there is: train; see slm tokenizer --help)",
            argv[1]);
}
