/* card.c: the dataset card (card.json) — what went in, what was done, what came out.
 *
 * Provenance (every input's path, size and sha256), the task and columns, the options, the fate of
 * every row (the counts add up: rows_read = malformed + dropped_* + held_out + kept, and kept = the
 * sum of the splits), the first malformed rows with file:line and reason, PII replacements by kind,
 * the label list in byte order with per-split counts, for --test its own counts and the rows that
 * leak from train, and with --hold-out the held-out labels and their rows in ood.jsonl. Key order
 * is fixed so cards diff cleanly.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "data/prepare.h"

static const char *const split_names[SLM_SPLIT_MAX] = {"train", "val", "test"};

static void add_counts(cJSON *o, const slm_data_counts *c, int is_test, long held_out, long kept) {
    cJSON_AddNumberToObject(o, "rows_read", (double)c->rows_read);
    cJSON_AddNumberToObject(o, "malformed", (double)c->malformed);
    cJSON_AddNumberToObject(o, "dropped_empty", (double)c->dropped_empty);
    if (!is_test) {
        cJSON_AddNumberToObject(o, "dropped_too_short", (double)c->dropped_too_short);
        cJSON_AddNumberToObject(o, "dropped_too_long", (double)c->dropped_too_long);
        cJSON_AddNumberToObject(o, "dropped_duplicate", (double)c->dropped_duplicate);
        cJSON_AddNumberToObject(o, "duplicate_label_conflicts", (double)c->label_conflicts);
    }
    cJSON_AddNumberToObject(o, "held_out", (double)held_out); /* rows of held-out labels: ood.jsonl */
    cJSON_AddNumberToObject(o, "kept", (double)kept);
    cJSON_AddNumberToObject(o, "blank_lines_ignored", (double)c->blank_lines);
    cJSON_AddNumberToObject(o, "rows_with_invalid_utf8_replaced", (double)c->invalid_utf8_rows);
    cJSON *pii = cJSON_AddObjectToObject(o, "pii_replaced");
    cJSON_AddNumberToObject(pii, "email", (double)c->pii.email);
    cJSON_AddNumberToObject(pii, "phone", (double)c->pii.phone);
    cJSON_AddNumberToObject(pii, "card", (double)c->pii.card);
    cJSON *bad = cJSON_AddArrayToObject(o, "malformed_examples");
    for (int i = 0; i < c->n_bad; i++) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "file", c->bad[i].file);
        cJSON_AddNumberToObject(b, "line", (double)c->bad[i].line);
        cJSON_AddStringToObject(b, "reason", c->bad[i].reason);
        cJSON_AddItemToArray(bad, b);
    }
}

char *slm_data_card_json(const slm_data_prepare_opts *o, const slm_data_stats *s) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "slm_dataset_card", "1");
    cJSON_AddStringToObject(root, "task", slm_data_task_name(s->task));

    cJSON *inputs = cJSON_AddArrayToObject(root, "inputs");
    for (int i = 0; i < s->n_inputs; i++) {
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "path", s->inputs[i].path);
        cJSON_AddStringToObject(in, "role", s->inputs[i].role);
        cJSON_AddStringToObject(in, "format", s->inputs[i].format ? s->inputs[i].format : "unread");
        cJSON_AddNumberToObject(in, "bytes", (double)s->inputs[i].bytes);
        cJSON_AddStringToObject(in, "sha256", s->inputs[i].sha256);
        cJSON_AddItemToArray(inputs, in);
    }
    cJSON *cols = cJSON_AddObjectToObject(root, "columns");
    if (s->task == SLM_TASK_CLASSIFY) {
        cJSON_AddStringToObject(cols, "text", o->keys.text);
        cJSON_AddStringToObject(cols, "label", o->keys.label);
    } else if (s->task == SLM_TASK_GENERATE) {
        cJSON_AddStringToObject(cols, "prompt", o->keys.prompt);
        cJSON_AddStringToObject(cols, "completion", o->keys.completion);
    } else cJSON_AddStringToObject(cols, "messages", o->keys.messages);

    cJSON *opt = cJSON_AddObjectToObject(root, "options");
    cJSON *sh = cJSON_AddArrayToObject(opt, "split");
    for (int i = 0; i < o->n_shares; i++) cJSON_AddItemToArray(sh, cJSON_CreateNumber(o->shares[i]));
    cJSON_AddNumberToObject(opt, "seed", (double)o->seed);
    cJSON_AddBoolToObject(opt, "scrub_pii", o->scrub_pii);
    cJSON_AddNumberToObject(opt, "min_chars", (double)o->min_chars);
    cJSON_AddNumberToObject(opt, "max_chars", (double)o->max_chars);
    cJSON_AddBoolToObject(opt, "keep_duplicates", o->keep_duplicates);
    cJSON_AddBoolToObject(opt, "lowercase_dedup", o->lowercase_dedup);
    cJSON_AddStringToObject(opt, "on_error", o->fail_on_error ? "fail" : "skip");
    cJSON *ho = cJSON_AddArrayToObject(opt, "hold_out");
    if (o->hold_out)
        for (int h = 0; h < s->n_held; h++) cJSON_AddItemToArray(ho, cJSON_CreateString(s->held[h]));
    cJSON_AddNumberToObject(opt, "hold_out_random", (double)o->hold_out_random);
    cJSON_AddStringToObject(opt, "normalisation",
                            "UTF-8 (invalid bytes -> U+FFFD), white space collapsed and trimmed, control and zero-width "
                            "characters removed; newlines kept in prompts, completions and chat turns");

    long kept = 0;
    for (int k = 0; k < s->n_splits; k++) kept += s->split_rows[k];
    add_counts(cJSON_AddObjectToObject(root, "counts"), &s->main, 0, s->ood_rows, kept);

    cJSON *splits = cJSON_AddObjectToObject(root, "splits");
    for (int k = 0; k < s->n_splits; k++) {
        cJSON *sp = cJSON_AddObjectToObject(splits, split_names[k]);
        cJSON_AddNumberToObject(sp, "rows", (double)s->split_rows[k]);
        if (s->task == SLM_TASK_CLASSIFY) {
            cJSON *lc = cJSON_AddObjectToObject(sp, "labels");
            for (int l = 0; l < s->n_labels; l++)
                cJSON_AddNumberToObject(lc, s->labels[l], (double)s->label_counts[l * SLM_SPLIT_MAX + k]);
        }
    }
    if (s->task == SLM_TASK_CLASSIFY) {
        cJSON *labels = cJSON_AddArrayToObject(root, "labels");
        for (int l = 0; l < s->n_labels; l++) cJSON_AddItemToArray(labels, cJSON_CreateString(s->labels[l]));
    }
    if (s->has_test) {
        cJSON *t = cJSON_AddObjectToObject(root, "test");
        cJSON_AddStringToObject(t, "path", s->inputs[s->n_inputs - 1].path);
        add_counts(t, &s->test, 1, s->ood_test_rows, s->test_rows);
        cJSON_AddNumberToObject(t, "rows", (double)s->test_rows);
        cJSON_AddNumberToObject(t, "also_in_train", (double)s->test_leaked);
        if (s->task == SLM_TASK_CLASSIFY) {
            cJSON *lc = cJSON_AddObjectToObject(t, "labels");
            for (int l = 0; l < s->n_labels; l++) cJSON_AddNumberToObject(lc, s->labels[l], (double)s->test_label_counts[l]);
            cJSON *un = cJSON_AddObjectToObject(t, "labels_not_in_train");
            for (int u = 0; u < s->n_unseen; u++) cJSON_AddNumberToObject(un, s->unseen[u], (double)s->unseen_counts[u]);
        }
    }
    if (s->n_held) {
        cJSON *h = cJSON_AddObjectToObject(root, "held_out");
        cJSON_AddStringToObject(h, "file", "ood.jsonl");
        cJSON_AddStringToObject(h, "chosen", o->hold_out ? "given" : "random");
        cJSON *hl = cJSON_AddArrayToObject(h, "labels");
        for (int l = 0; l < s->n_held; l++) cJSON_AddItemToArray(hl, cJSON_CreateString(s->held[l]));
        cJSON_AddNumberToObject(h, "rows", (double)(s->ood_rows + s->ood_test_rows));
        cJSON_AddNumberToObject(h, "from_inputs", (double)s->ood_rows);
        cJSON_AddNumberToObject(h, "from_test", (double)s->ood_test_rows);
        cJSON_AddNumberToObject(h, "test_rows_also_in_train", (double)s->ood_test_leaked);
        cJSON *pl = cJSON_AddObjectToObject(h, "per_label");
        for (int l = 0; l < s->n_held; l++) {
            cJSON *c = cJSON_AddObjectToObject(pl, s->held[l]);
            cJSON_AddNumberToObject(c, "inputs", (double)s->held_counts[l * 2]);
            cJSON_AddNumberToObject(c, "test", (double)s->held_counts[l * 2 + 1]);
        }
    }
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}
