/* cmd_classify.c: `slm classify` — a classify task model's label, probability and top-k for one
 * text, or for every line of a file in batches (plain text, or JSONL with "text" and optionally
 * "label", which then also gives the accuracy), with throughput. Parses, calls
 * src/task/classifier, prints. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/file.h"
#include "core/timer.h"
#include "task/classifier.h"

static const char usage[] =
    "usage: slm classify MODEL.gguf \"text\" [--top K]\n"
    "       slm classify MODEL.gguf --file IN.txt|IN.jsonl [--batch N] [-o OUT.jsonl]\n"
    "\n"
    "Classifies text with a model from `slm finetune --task classify`: the label, its probability\n"
    "and the top K labels. With --file every line is one text (JSONL lines: the \"text\" field; a\n"
    "\"label\" field is compared with the prediction and the accuracy reported); results go to OUT\n"
    "(JSON lines: text, label, prob, top) or stdout, and the throughput to stderr.\n"
    "\n"
    "  --top K        labels listed per text                          [3]\n"
    "  --batch N      texts per call of the classifier                [64]\n"
    "  --lora A.gguf  apply a LoRA adapter (slm finetune --lora) to MODEL, its base: the\n"
    "                 labels and head come from the adapter, W + alpha/r·B·A is merged at load\n"
    "  --threads N    threads (default: all cores)\n";

/* Indices of the k most probable labels, best first. */
static void top_k(const float *p, int n, int k, int *idx) {
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int used = 0;
            for (int q = 0; q < j; q++) used |= idx[q] == i;
            if (!used && (best < 0 || p[i] > p[best])) best = i;
        }
        idx[j] = best;
    }
}

static void print_one(const slm_classifier *c, const float *p, int k) {
    int idx[64];
    top_k(p, slm_classifier_n_labels(c), k, idx);
    printf("%s\t%.4f\n", slm_classifier_label(c, idx[0]), p[idx[0]]);
    if (k > 1) {
        int w = 0; /* one column for the probabilities, however long the labels */
        for (int j = 0; j < k; j++) {
            int n = (int)strlen(slm_classifier_label(c, idx[j]));
            if (n > w) w = n;
        }
        printf("top %d:\n", k);
        for (int j = 0; j < k; j++) printf("  %-*s %.4f\n", w, slm_classifier_label(c, idx[j]), p[idx[j]]);
    }
}

typedef struct {
    char **text, **gold; /* (n); gold[i] NULL without a label */
    int n, cap;
} lines;

static void read_lines(const char *path, lines *L) {
    char *data;
    size_t len;
    slm_err err;
    if (slm_file_read_all(path, &data, &len, &err) != SLM_OK) cli_fail(&err, "--file");
    size_t pl = strlen(path);
    int jsonl = pl > 6 && !strcmp(path + pl - 6, ".jsonl");
    size_t line_no = 0;
    for (char *p = data; p < data + len;) {
        char *e = memchr(p, '\n', (size_t)(data + len - p));
        if (!e) e = data + len;
        *e = 0;
        line_no++;
        char *s = p;
        p = e + 1;
        if (e > s && e[-1] == '\r') e[-1] = 0;
        if (!*s) continue;
        if (L->n == L->cap) {
            L->cap = L->cap ? 2 * L->cap : 1024;
            L->text = realloc(L->text, sizeof(char *) * (size_t)L->cap);
            L->gold = realloc(L->gold, sizeof(char *) * (size_t)L->cap);
            if (!L->text || !L->gold) cli_die("out of memory");
        }
        L->gold[L->n] = NULL;
        if (jsonl) {
            cJSON *o = cJSON_Parse(s);
            const cJSON *t = o ? cJSON_GetObjectItemCaseSensitive(o, "text") : NULL;
            if (!cJSON_IsString(t)) cli_die("%s:%zu: not a JSON object with a string \"text\"", path, line_no);
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "label");
            L->text[L->n] = strdup(t->valuestring);
            if (cJSON_IsString(g)) L->gold[L->n] = strdup(g->valuestring);
            cJSON_Delete(o);
        } else {
            L->text[L->n] = strdup(s);
        }
        if (!L->text[L->n]) cli_die("out of memory");
        L->n++;
    }
    free(data);
}

int cmd_classify(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL, *out = NULL, *lora = NULL;
    int top = 3, batch = 64, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--top")) top = (int)cli_long(a, cli_value(argc, argv, &i), 1, 64);
        else if (!strcmp(a, "--file")) file = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--batch")) batch = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--lora")) lora = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--threads")) threads = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1024);
        else if (a[0] == '-' && a[1]) cli_die("classify: unknown option '%s' (see slm classify --help)", a);
        else if (!model) model = a;
        else if (!text) text = a;
        else cli_die("classify: one text at a time (or --file); got another argument '%s'", a);
    }
    if (!model) cli_die("classify: MODEL.gguf is required (see slm classify --help)");
    if (!text == !file) cli_die("classify: give a text or --file (one of them)");
    slm_err err;
    slm_pool *pool = cli_pool(threads);
    slm_classifier *c = lora ? slm_classifier_load_lora(model, lora, pool, &err) : slm_classifier_load(model, pool, &err);
    if (!c) cli_fail(&err, model);
    int K = slm_classifier_n_labels(c);
    if (top > K) top = K;
    if (text) {
        float *p = malloc(sizeof(float) * (size_t)K);
        size_t len = strlen(text);
        if (!p) cli_die("out of memory");
        if (slm_classifier_predict(c, &text, &len, 1, p, &err) != SLM_OK) cli_fail(&err, "classify");
        print_one(c, p, top);
        free(p);
    } else {
        lines L = {0};
        read_lines(file, &L);
        FILE *f = out ? fopen(out, "w") : stdout;
        if (!f) cli_die("classify: cannot write %s", out);
        float *p = malloc(sizeof(float) * (size_t)K * (size_t)batch);
        size_t *lens = malloc(sizeof(size_t) * (size_t)batch);
        if (!p || !lens) cli_die("out of memory");
        int correct = 0, labelled = 0, idx[64];
        double t0 = slm_time_now();
        for (int i0 = 0; i0 < L.n; i0 += batch) {
            int nb = L.n - i0 < batch ? L.n - i0 : batch;
            for (int i = 0; i < nb; i++) lens[i] = strlen(L.text[i0 + i]);
            if (slm_classifier_predict(c, (const char *const *)L.text + i0, lens, nb, p, &err) != SLM_OK)
                cli_fail(&err, file);
            for (int i = 0; i < nb; i++) {
                const float *pi = p + (size_t)i * K;
                top_k(pi, K, top, idx);
                cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
                cJSON_AddStringToObject(o, "text", L.text[i0 + i]);
                cJSON_AddStringToObject(o, "label", slm_classifier_label(c, idx[0]));
                cJSON_AddNumberToObject(o, "prob", round(pi[idx[0]] * 1e6) / 1e6);
                for (int j = 0; j < top; j++) {
                    cJSON *e = cJSON_CreateObject();
                    cJSON_AddStringToObject(e, "label", slm_classifier_label(c, idx[j]));
                    cJSON_AddNumberToObject(e, "prob", round(pi[idx[j]] * 1e6) / 1e6);
                    cJSON_AddItemToArray(arr, e);
                }
                cJSON_AddItemToObject(o, "top", arr);
                if (L.gold[i0 + i]) {
                    cJSON_AddStringToObject(o, "gold", L.gold[i0 + i]);
                    labelled++;
                    correct += !strcmp(L.gold[i0 + i], slm_classifier_label(c, idx[0]));
                }
                char *js = cJSON_PrintUnformatted(o);
                if (!js) cli_die("out of memory");
                fprintf(f, "%s\n", js);
                free(js);
                cJSON_Delete(o);
            }
        }
        double dt = slm_time_now() - t0;
        if (out && fclose(f) != 0) cli_die("classify: writing %s failed", out);
        fprintf(stderr, "classified %d texts in %.2fs: %.1f texts/s (batch %d, max %d tokens each)", L.n, dt,
                L.n / (dt > 0 ? dt : 1e-9), batch, slm_classifier_max_tokens(c));
        if (labelled) fprintf(stderr, "; accuracy %.4f on %d labelled", (double)correct / labelled, labelled);
        fputc('\n', stderr);
        for (int i = 0; i < L.n; i++) free(L.text[i]), free(L.gold[i]);
        free(L.text);
        free(L.gold);
        free(p);
        free(lens);
    }
    slm_classifier_free(c);
    slm_pool_free(pool);
    return 0;
}
