/* synth_task.c: see synth_task.h. */
#include "synth_task.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/rng.h"
#include "testutil.h"

static const char *KEYS[3][2] = {{"card", "pin"}, {"transfer", "wire"}, {"balance", "savings"}};
static const char *LABS[3] = {"cards", "payments", "accounts"};
static const char *FILL[] = {"my", "the", "please", "help", "with", "today", "i", "need", "a", "is"};

static void write_split(const char *path, int n, uint64_t seed) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    slm_rng r;
    slm_rng_seed(&r, seed, 3);
    for (int i = 0; i < n; i++) {
        int y = (int)slm_rng_below(&r, 3), len = 3 + (int)slm_rng_below(&r, 4), at = (int)slm_rng_below(&r, (uint32_t)len);
        fprintf(f, "{\"text\": \"");
        for (int w = 0; w < len; w++)
            fprintf(f, "%s%s", w ? " " : "", w == at ? KEYS[y][slm_rng_below(&r, 2)] : FILL[slm_rng_below(&r, 10)]);
        fprintf(f, "\", \"label\": \"%s\"}\n", LABS[y]);
    }
    fclose(f);
}

void tu_synth_task(const char *name, int n_train, int n_val, int max_len, slm_task_data *d,
                   slm_tokenizer **tok) {
    const char *dir = tu_tmp_path(name);
    char path[512];
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/train.jsonl", dir);
    write_split(path, n_train, 1);
    snprintf(path, sizeof path, "%s/val.jsonl", dir);
    write_split(path, n_val, 2);
    TU_OK(slm_task_data_load(dir, d, tu_err()));
    const char *corpus = "my the please help with today i need a is card pin transfer wire balance savings\n";
    slm_tokenizer_train_opts to = {.vocab_size = 300};
    TU_OK(slm_tokenizer_train(corpus, strlen(corpus), &to, tok, tu_err()));
    TU_OK(slm_task_data_tokenize(d, *tok, max_len, tu_err()));
}

const char *tu_write_reversal_task(const char *name) {
    const char *dir = tu_tmp_path(name);
    char path[1024];
    assert_true(mkdir(dir, 0755) == 0 || errno == EEXIST);
    snprintf(path, sizeof path, "%s/train.jsonl", dir);
    FILE *ft = fopen(path, "w");
    snprintf(path, sizeof path, "%s/val.jsonl", dir);
    FILE *fv = fopen(path, "w");
    assert_non_null(ft);
    assert_non_null(fv);
    for (int w = 0; w < 216; w++) {
        char a = (char)('a' + w / 36), b = (char)('a' + w / 6 % 6), c = (char)('a' + w % 6);
        fprintf(w % 9 == 4 ? fv : ft, "{\"prompt\": \"rev %c%c%c=\", \"completion\": \"%c%c%c\"}\n", a, b, c, c, b,
                a);
    }
    fclose(ft);
    fclose(fv);
    return dir;
}
