/* task_data.c: reading the classify JSONL splits and encoding them (see task_data.h). */
#include "task/task_data.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/rng.h"

void slm_task_split_free(slm_task_split *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->text[i]);
    free(s->text);
    free(s->label);
    free(s->start);
    free(s->len);
    free(s->tokens);
    memset(s, 0, sizeof *s);
}

void slm_task_data_free(slm_task_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n_labels; i++) free(d->labels[i]);
    free(d->labels);
    slm_task_split_free(&d->train);
    slm_task_split_free(&d->val);
    slm_task_split_free(&d->test);
    free(d->template_text);
    memset(d, 0, sizeof *d);
}

slm_status slm_task_data_merge_val(slm_task_data *d, slm_err *err) {
    if (d->train.tokens || d->val.tokens)
        return slm_err_set(err, SLM_ERR_ARG, "merge the validation split before tokenizing");
    slm_task_split *tr = &d->train;
    const slm_task_split *va = &d->val;
    size_t n = (size_t)tr->n + (size_t)va->n;
    char **text = realloc(tr->text, n * sizeof *text);
    if (text) tr->text = text;
    int32_t *label = text ? realloc(tr->label, n * sizeof *label) : NULL;
    if (label) tr->label = label;
    if (!text || !label) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory merging the validation split");
    for (int i = 0; i < va->n; i++) {
        if (!(tr->text[tr->n] = strdup(va->text[i])))
            return slm_err_set(err, SLM_ERR_NOMEM, "out of memory merging the validation split");
        tr->label[tr->n++] = va->label[i];
    }
    return SLM_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int find_label(char **labels, int n, const char *name) {
    char *const *hit = bsearch(&name, labels, (size_t)n, sizeof *labels, cmp_str);
    return hit ? (int)(hit - labels) : -1;
}

/* A label's text: a JSON string, or a number written as an integer (label ids in some datasets). */
static int label_text(const cJSON *v, char *buf, size_t n) {
    if (cJSON_IsString(v) && v->valuestring[0]) {
        snprintf(buf, n, "%s", v->valuestring);
        return strlen(v->valuestring) < n;
    }
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble) {
        snprintf(buf, n, "%lld", (long long)v->valuedouble);
        return 1;
    }
    return 0;
}

slm_status slm_task_split_read(const char *path, char ***labels, int *n_labels, slm_task_split *s,
                               slm_err *err) {
    memset(s, 0, sizeof *s);
    char *data;
    size_t len;
    slm_status st = slm_file_read_all(path, &data, &len, err);
    if (st) return st;
    int collect = *n_labels < 0, cap = 0, nl = collect ? 0 : *n_labels;
    char **raw_labels = NULL; /* collect: each example's label text, resolved at the end */
    char **found = collect ? NULL : *labels;
    size_t line_no = 0;
    char *p = data, *end = data + len;
    while (p < end) {
        char *nl_at = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl_at ? nl_at : end;
        line_no++;
        *line_end = '\0';
        char *q = p;
        p = line_end + 1;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (!*q) continue;
        cJSON *obj = cJSON_Parse(q);
        if (!obj || !cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            st = slm_err_set(err, SLM_ERR_FORMAT, "%s:%zu: not a JSON object", path, line_no);
            goto fail;
        }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "text");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(obj, "label");
        char lab[512];
        if (!cJSON_IsString(t) || !l || !label_text(l, lab, sizeof lab)) {
            cJSON_Delete(obj);
            st = slm_err_set(err, SLM_ERR_FORMAT, "%s:%zu: needs a string \"text\" and a non-empty \"label\"",
                             path, line_no);
            goto fail;
        }
        if (s->n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nt = realloc(s->text, sizeof(char *) * (size_t)cap);
            int32_t *nlab = nt ? realloc(s->label, sizeof(int32_t) * (size_t)cap) : NULL;
            if (nt) s->text = nt;
            if (nlab) s->label = nlab;
            if (!nt || !nlab) goto nomem_obj;
            if (collect) {
                char **nr = realloc(raw_labels, sizeof(char *) * (size_t)cap);
                if (!nr) goto nomem_obj;
                raw_labels = nr;
            }
        }
        s->text[s->n] = strdup(t->valuestring);
        if (!s->text[s->n]) goto nomem_obj;
        if (collect) {
            raw_labels[s->n] = strdup(lab);
            if (!raw_labels[s->n]) {
                free(s->text[s->n]);
                goto nomem_obj;
            }
            s->label[s->n] = -1;
        } else {
            int k = -1;
            for (int i = 0; i < nl; i++)
                if (!strcmp(found[i], lab)) k = i;
            if (k < 0) {
                free(s->text[s->n]);
                cJSON_Delete(obj);
                st = slm_err_set(err, SLM_ERR_ARG, "%s:%zu: label '%s' is not among the %d training labels",
                                 path, line_no, lab, nl);
                goto fail;
            }
            s->label[s->n] = k;
        }
        s->n++;
        cJSON_Delete(obj);
        continue;
    nomem_obj:
        cJSON_Delete(obj);
        st = slm_err_set(err, SLM_ERR_NOMEM, "%s:%zu: out of memory", path, line_no);
        goto fail;
    }
    if (s->n == 0) {
        st = slm_err_set(err, SLM_ERR_FORMAT, "%s: no examples", path);
        goto fail;
    }
    if (collect) {
        char **sorted = malloc(sizeof(char *) * (size_t)s->n);
        if (!sorted) {
            st = slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        memcpy(sorted, raw_labels, sizeof(char *) * (size_t)s->n);
        qsort(sorted, (size_t)s->n, sizeof *sorted, cmp_str);
        int k = 0;
        for (int i = 0; i < s->n; i++)
            if (k == 0 || strcmp(sorted[k - 1], sorted[i]) != 0) sorted[k++] = sorted[i];
        char **out = malloc(sizeof(char *) * (size_t)k);
        int ok = out != NULL;
        for (int i = 0; ok && i < k; i++) {
            out[i] = strdup(sorted[i]);
            if (!out[i]) {
                for (int j = 0; j < i; j++) free(out[j]);
                ok = 0;
            }
        }
        if (ok)
            for (int i = 0; i < s->n; i++) s->label[i] = find_label(out, k, raw_labels[i]);
        free(sorted);
        if (!ok) {
            free(out);
            st = slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        *labels = out;
        *n_labels = k;
    }
    for (int i = 0; collect && i < s->n; i++) free(raw_labels[i]);
    free(raw_labels);
    free(data);
    return SLM_OK;
fail:
    for (int i = 0; collect && i < s->n; i++) free(raw_labels[i]);
    free(raw_labels);
    free(data);
    slm_task_split_free(s);
    return st;
}

/* card.json's labels, when the card names them. *n = 0 when there is no card or no list. */
static slm_status card_labels(const char *dir, char ***labels, int *n, slm_err *err) {
    *n = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/card.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return SLM_OK;
    fclose(f);
    char *data;
    size_t len;
    slm_status st = slm_file_read_all(path, &data, &len, err);
    if (st) return st;
    cJSON *card = cJSON_Parse(data);
    free(data);
    if (!card) return slm_err_set(err, SLM_ERR_FORMAT, "%s: not valid JSON", path);
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(card, "labels");
    int k = l && (cJSON_IsArray(l) || cJSON_IsObject(l)) ? cJSON_GetArraySize(l) : 0;
    char **out = k ? calloc((size_t)k, sizeof(char *)) : NULL;
    if (k && !out) st = slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
    int i = 0;
    for (const cJSON *e = l && k ? l->child : NULL; e && !st; e = e->next, i++) {
        const char *name = cJSON_IsObject(l) ? e->string : cJSON_IsString(e) ? e->valuestring : NULL;
        if (!name || !name[0]) st = slm_err_set(err, SLM_ERR_FORMAT, "%s: labels[%d] is not a name", path, i);
        else if (!(out[i] = strdup(name))) st = slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
    }
    cJSON_Delete(card);
    if (!st && k) {
        qsort(out, (size_t)k, sizeof *out, cmp_str);
        for (int j = 1; j < k && !st; j++)
            if (!strcmp(out[j], out[j - 1]))
                st = slm_err_set(err, SLM_ERR_FORMAT, "%s: label '%s' is listed twice", path, out[j]);
    }
    if (st) {
        for (int j = 0; j < k; j++) free(out[j]);
        free(out);
        return st;
    }
    *labels = out;
    *n = k;
    return SLM_OK;
}

slm_status slm_task_data_load(const char *dir, slm_task_data *d, slm_err *err) {
    memset(d, 0, sizeof *d);
    char path[4096];
    slm_status st = card_labels(dir, &d->labels, &d->n_labels, err);
    if (st) return st;
    int nl = d->n_labels ? d->n_labels : -1;
    snprintf(path, sizeof path, "%s/train.jsonl", dir);
    st = slm_task_split_read(path, &d->labels, &nl, &d->train, err);
    if (st) goto fail;
    d->n_labels = nl;
    if (nl < 2) {
        st = slm_err_set(err, SLM_ERR_ARG, "%s: only one label ('%s'); classification needs at least two",
                         path, d->labels[0]);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/val.jsonl", dir);
    st = slm_task_split_read(path, &d->labels, &nl, &d->val, err);
    if (st) goto fail;
    snprintf(path, sizeof path, "%s/test.jsonl", dir);
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        st = slm_task_split_read(path, &d->labels, &nl, &d->test, err);
        if (st) goto fail;
    }
    return SLM_OK;
fail:
    slm_task_data_free(d);
    return st;
}

#define TEMPLATE_SLOT "{text}"

slm_status slm_task_template_check(const char *template_text, slm_err *err) {
    const char *at = template_text ? strstr(template_text, TEMPLATE_SLOT) : NULL;
    if (!at || strstr(at + strlen(TEMPLATE_SLOT), TEMPLATE_SLOT))
        return slm_err_set(err, SLM_ERR_ARG, "template '%s' must hold {text} exactly once",
                           template_text ? template_text : "(null)");
    return SLM_OK;
}

slm_status slm_task_data_set_template(slm_task_data *d, const char *template_text, slm_err *err) {
    if (template_text && slm_task_template_check(template_text, err) != SLM_OK) return SLM_ERR_ARG;
    char *copy = template_text ? strdup(template_text) : NULL;
    if (template_text && !copy) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    free(d->template_text);
    d->template_text = copy;
    return SLM_OK;
}

slm_status slm_task_encode(const slm_tokenizer *tok, const char *template_text, const char *text, size_t len,
                           int max_len, int32_t *out, int *n, slm_err *err) {
    const char *slot = template_text ? strstr(template_text, TEMPLATE_SLOT) : NULL;
    if (template_text && !slot) return slm_task_template_check(template_text, err);
    int32_t *ids = NULL, *tail = NULL;
    size_t n_ids = 0, n_tail = 0;
    char *joined = NULL;
    slm_status st = SLM_OK;
    if (slot) { /* the text before the slot and the example together (a space after "User:" merges
                 * with the first word as it did in pretraining), the text after it alone */
        size_t pre = (size_t)(slot - template_text);
        if (!(joined = malloc(pre + len + 1))) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
        memcpy(joined, template_text, pre);
        memcpy(joined + pre, text, len);
        text = joined;
        len += pre;
        const char *after = slot + strlen(TEMPLATE_SLOT);
        st = slm_tokenizer_encode(tok, after, strlen(after), 0, &tail, &n_tail, err);
    }
    if (!st) st = slm_tokenizer_encode(tok, text, len, 0, &ids, &n_ids, err);
    free(joined);
    int k = 0;
    if (!st) {
        int bos = slm_tokenizer_bos(tok), eos = slm_tokenizer_eos(tok);
        /* room for the body: max_len, plus the EOS slot when a template replaces EOS */
        long room = slot ? (long)max_len + 1 - (long)n_tail : (long)max_len;
        if (room < 1)
            st = slm_err_set(err, SLM_ERR_ARG, "template '%s' leaves no room for text in %d tokens", template_text,
                             max_len + 2);
        if (!st && bos >= 0) out[k++] = bos;
        for (size_t i = 0; !st && i < n_ids && i < (size_t)room; i++) out[k++] = ids[i];
        for (size_t i = 0; !st && i < n_tail; i++) out[k++] = tail[i];
        if (!st && !slot && eos >= 0) out[k++] = eos;
    }
    free(ids);
    free(tail);
    if (st) return st;
    *n = k;
    if (k == 0) return slm_err_set(err, SLM_ERR_ARG, "an empty text encodes to no tokens (the vocabulary has no BOS or EOS)");
    return SLM_OK;
}

static slm_status tokenize_split(slm_task_split *s, const slm_tokenizer *tok, const char *tmpl, int max_len,
                                 const char *what, slm_err *err) {
    free(s->start);
    free(s->len);
    free(s->tokens);
    s->start = malloc(sizeof(int32_t) * (size_t)s->n);
    s->len = malloc(sizeof(int32_t) * (size_t)s->n);
    size_t cap = (size_t)s->n * 16 + 64;
    s->tokens = malloc(sizeof(int32_t) * cap);
    int32_t *buf = malloc(sizeof(int32_t) * ((size_t)max_len + 2));
    slm_status st = SLM_OK;
    if (!s->start || !s->len || !s->tokens || !buf) st = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    s->n_tokens = 0;
    s->max_len = 0;
    for (int i = 0; i < s->n && !st; i++) {
        int k;
        st = slm_task_encode(tok, tmpl, s->text[i], strlen(s->text[i]), max_len, buf, &k, err);
        if (st) {
            slm_err_prefix(err, "%s example %d", what, i + 1);
            break;
        }
        if (s->n_tokens + (size_t)k > cap) {
            cap = (s->n_tokens + (size_t)k) * 2;
            int32_t *nt = realloc(s->tokens, sizeof(int32_t) * cap);
            if (!nt) {
                st = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
                break;
            }
            s->tokens = nt;
        }
        memcpy(s->tokens + s->n_tokens, buf, sizeof(int32_t) * (size_t)k);
        s->start[i] = (int32_t)s->n_tokens;
        s->len[i] = k;
        s->n_tokens += (size_t)k;
        if (k > s->max_len) s->max_len = k;
    }
    free(buf);
    return st;
}

static uint64_t hash_split(uint64_t h, const slm_task_split *s) {
    for (int i = 0; i < s->n; i++) h = slm_rng_hash(h, (uint64_t)s->label[i], (uint64_t)s->len[i]);
    for (size_t i = 0; i < s->n_tokens; i++) h = slm_rng_hash(h, (uint64_t)s->tokens[i], i);
    return h;
}

slm_status slm_task_data_tokenize(slm_task_data *d, const slm_tokenizer *tok, int max_len,
                                  slm_err *err) {
    if (max_len < 1) return slm_err_set(err, SLM_ERR_ARG, "max_len must be at least 1 (got %d)", max_len);
    const char *tm = d->template_text;
    slm_status st = tokenize_split(&d->train, tok, tm, max_len, "train", err);
    if (!st) st = tokenize_split(&d->val, tok, tm, max_len, "val", err);
    if (!st && d->test.n) st = tokenize_split(&d->test, tok, tm, max_len, "test", err);
    if (st) return st;
    uint64_t h = slm_rng_hash((uint64_t)d->n_labels, (uint64_t)max_len, 0x636c6173u);
    for (int i = 0; i < d->n_labels; i++)
        for (const char *c = d->labels[i]; *c; c++) h = slm_rng_hash(h, (uint64_t)(unsigned char)*c, (uint64_t)i);
    h = hash_split(h, &d->train);
    h = hash_split(h, &d->val);
    d->fingerprint = h;
    return SLM_OK;
}
