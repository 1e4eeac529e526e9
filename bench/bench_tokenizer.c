/* bench_tokenizer.c: tokenizer speed on tinyshakespeare — encoding MB/s with GPT-2's vocabulary
 * (llama.cpp's ggml-vocab-gpt-2.gguf) and with a 4096-token vocabulary trained here, and the time
 * to train that vocabulary. Medians of several runs, one line per figure, single thread.
 *
 * Run from the repository root (make bench does): build/bench/bench_tokenizer [TEXT [GPT2.gguf]]
 */
#include <stdio.h>
#include <stdlib.h>

#include "slm.h"

enum { RUNS = 7, TRAIN_RUNS = 3, VOCAB = 4096 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* Median seconds to encode text; *n_tokens gets the count. Returns < 0 on error. */
static double time_encode(const slm_tokenizer *t, const char *text, size_t len, size_t *n_tokens) {
    double secs[RUNS];
    for (int r = 0; r < RUNS; r++) {
        slm_err err;
        int32_t *ids;
        double t0 = slm_time_now();
        if (slm_tokenizer_encode(t, text, len, 0, &ids, n_tokens, &err) != SLM_OK) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
            return -1;
        }
        secs[r] = slm_time_now() - t0;
        free(ids);
    }
    return median(secs, RUNS);
}

int main(int argc, char **argv) {
    const char *text_path = argc > 1 ? argv[1] : "data/tinyshakespeare/input.txt";
    const char *gpt2_path = argc > 2 ? argv[2] : "data/tokenizer-vectors/ggml-vocab-gpt-2.gguf";
    slm_err err;
    char *text;
    size_t len, n;
    if (slm_file_read_all(text_path, &text, &len, &err) != SLM_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }
    double mb = (double)len / 1e6;

    slm_tokenizer *gpt2 = slm_tokenizer_load_file(gpt2_path, &err);
    if (!gpt2) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }
    double s = time_encode(gpt2, text, len, &n);
    if (s < 0) return 1;
    printf("tokenizer encode, GPT-2 vocab (%d tokens): %.1f MB/s (%.2f MB -> %zu tokens, median of %d)\n",
           slm_tokenizer_n_vocab(gpt2), mb / s, mb, n, RUNS);
    slm_tokenizer_free(gpt2);

    double tsecs[TRAIN_RUNS];
    slm_tokenizer *tok = NULL;
    for (int r = 0; r < TRAIN_RUNS; r++) {
        slm_tokenizer_train_opts o = {.vocab_size = VOCAB};
        slm_tokenizer_free(tok);
        double t0 = slm_time_now();
        if (slm_tokenizer_train(text, len, &o, &tok, &err) != SLM_OK) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
            return 1;
        }
        tsecs[r] = slm_time_now() - t0;
    }
    printf("tokenizer train to %d tokens: %.3f s (%.2f MB, median of %d)\n", VOCAB,
           median(tsecs, TRAIN_RUNS), mb, TRAIN_RUNS);

    s = time_encode(tok, text, len, &n);
    if (s < 0) return 1;
    printf("tokenizer encode, trained vocab (%d tokens): %.1f MB/s (%.2f MB -> %zu tokens, "
           "%.2f bytes/token, median of %d)\n",
           slm_tokenizer_n_vocab(tok), mb / s, mb, n, (double)len / (double)n, RUNS);
    slm_tokenizer_free(tok);
    free(text);
    return 0;
}
