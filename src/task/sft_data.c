/* sft_data.c: reading prompt/completion and chat JSONL and tokenizing it with the completion
 * mask (see sft_data.h for the rendering and masking rules). */
#include "task/sft_data.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

/* ---- reading ---- */

static void record_free(slm_sft_record *r) {
    if (!r->msgs) return;
    for (int i = 0; i < r->n_msgs; i++) {
        free((char *)r->msgs[i].role);
        free((char *)r->msgs[i].content);
    }
    free(r->msgs);
    r->msgs = NULL;
    r->n_msgs = 0;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static int role_known(const char *r) {
    return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant");
}

/* Parses one line into r. Errors name path:line. */
static slm_status parse_line(const char *path, int line, const char *txt, size_t len, slm_sft_record *r,
                             slm_err *err) {
    memset(r, 0, sizeof *r);
    r->line = line;
    cJSON *j = cJSON_ParseWithLength(txt, len);
    if (!j) return slm_err_set(err, SLM_ERR_FORMAT, "%s:%d: not valid JSON", path, line);
    slm_status s = SLM_OK;
    if (!cJSON_IsObject(j)) {
        s = slm_err_set(err, SLM_ERR_FORMAT, "%s:%d: expected a JSON object", path, line);
        goto done;
    }
    cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "completion");
    cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "messages");
    if (p || c) {
        if (!cJSON_IsString(p) || !cJSON_IsString(c)) {
            s = slm_err_set(err, SLM_ERR_FORMAT, "%s:%d: \"prompt\" and \"completion\" must both be strings",
                            path, line);
            goto done;
        }
        r->is_pc = 1;
        r->msgs = calloc(2, sizeof *r->msgs);
        if (!r->msgs) goto nomem;
        r->n_msgs = 2;
        r->msgs[0].role = dup_str("user");
        r->msgs[0].content = dup_str(p->valuestring);
        r->msgs[1].role = dup_str("assistant");
        r->msgs[1].content = dup_str(c->valuestring);
        for (int i = 0; i < 2; i++)
            if (!r->msgs[i].role || !r->msgs[i].content) goto nomem;
    } else if (m) {
        int n = cJSON_IsArray(m) ? cJSON_GetArraySize(m) : -1;
        if (n < 1) {
            s = slm_err_set(err, SLM_ERR_FORMAT, "%s:%d: \"messages\" must be a non-empty array", path, line);
            goto done;
        }
        r->msgs = calloc((size_t)n, sizeof *r->msgs);
        if (!r->msgs) goto nomem;
        int has_assistant = 0;
        for (int i = 0; i < n; i++) {
            cJSON *e = cJSON_GetArrayItem(m, i);
            cJSON *role = cJSON_GetObjectItemCaseSensitive(e, "role");
            cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
            if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
                s = slm_err_set(err, SLM_ERR_FORMAT, "%s:%d: message %d needs string \"role\" and \"content\"",
                                path, line, i + 1);
                goto done;
            }
            if (!role_known(role->valuestring)) {
                s = slm_err_set(err, SLM_ERR_FORMAT, "%s:%d: message %d has role \"%.40s\" (expected system, "
                                "user or assistant)", path, line, i + 1, role->valuestring);
                goto done;
            }
            r->msgs[i].role = dup_str(role->valuestring);
            r->msgs[i].content = dup_str(content->valuestring);
            r->n_msgs = i + 1;
            if (!r->msgs[i].role || !r->msgs[i].content) goto nomem;
            if (!strcmp(role->valuestring, "assistant")) has_assistant = 1;
        }
        if (!has_assistant) {
            s = slm_err_set(err, SLM_ERR_FORMAT, "%s:%d: no assistant message (nothing to learn)", path, line);
            goto done;
        }
    } else {
        s = slm_err_set(err, SLM_ERR_FORMAT, "%s:%d: expected {\"prompt\", \"completion\"} or {\"messages\": [...]}",
                        path, line);
    }
    goto done;
nomem:
    s = slm_err_set(err, SLM_ERR_NOMEM, "%s:%d: out of memory", path, line);
done:
    cJSON_Delete(j);
    if (s != SLM_OK) record_free(r);
    return s;
}

slm_status slm_sft_split_read(const char *path, slm_sft_split *s, slm_err *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    char *data;
    size_t len;
    slm_status st = slm_file_read_all(path, &data, &len, err);
    if (st != SLM_OK) return st;
    int cap = 0, line = 0;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        line++;
        size_t a = i, b = e;
        while (a < b && (data[a] == ' ' || data[a] == '\t' || data[a] == '\r')) a++;
        while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t' || data[b - 1] == '\r')) b--;
        i = e + 1;
        if (a == b) continue;
        if (s->n_rec == cap) {
            int nc = cap ? cap * 2 : 64;
            slm_sft_record *nr = realloc(s->rec, (size_t)nc * sizeof *nr);
            if (!nr) {
                st = slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            s->rec = nr;
            cap = nc;
        }
        st = parse_line(path, line, data + a, b - a, &s->rec[s->n_rec], err);
        if (st != SLM_OK) break;
        s->n_rec++;
    }
    free(data);
    if (st == SLM_OK && s->n_rec == 0) st = slm_err_set(err, SLM_ERR_FORMAT, "%s: no examples", path);
    if (st != SLM_OK) slm_sft_split_free(s);
    return st;
}

slm_status slm_sft_data_load(const char *dir, slm_sft_data *d, slm_err *err) {
    memset(d, 0, sizeof *d);
    char path[1024];
    snprintf(path, sizeof path, "%s/train.jsonl", dir);
    slm_status s = slm_sft_split_read(path, &d->train, err);
    if (s != SLM_OK) return s;
    snprintf(path, sizeof path, "%s/val.jsonl", dir);
    s = slm_sft_split_read(path, &d->val, err);
    if (s != SLM_OK) slm_sft_data_free(d);
    return s;
}

int slm_sft_split_has_chat(const slm_sft_split *s) {
    for (int i = 0; i < s->n_rec; i++)
        if (!s->rec[i].is_pc) return 1;
    return 0;
}

/* ---- rendering ---- */

#define MAX_SPANS 512

/* The text of an example and its spans: [start, end) bytes, counted or not. */
typedef struct {
    char *text;
    size_t len;
    size_t start[MAX_SPANS], end[MAX_SPANS];
    int counted[MAX_SPANS];
    int n;
} rendered;

static slm_status add_span(rendered *r, size_t a, size_t b, int counted, slm_err *err) {
    if (b <= a) return SLM_OK;
    if (r->n == MAX_SPANS) return slm_err_set(err, SLM_ERR_RANGE, "more than %d turns in one example", MAX_SPANS / 2);
    r->start[r->n] = a;
    r->end[r->n] = b;
    r->counted[r->n] = counted;
    r->n++;
    return SLM_OK;
}

static int is_prefix(const char *p, size_t np, const char *s, size_t ns) {
    return np <= ns && memcmp(p, s, np) == 0;
}

static slm_status render_raw(const slm_sft_format *f, const slm_sft_record *r, rendered *out, slm_err *err) {
    const char *sep = f->separator ? f->separator : "";
    const char *p = r->msgs[0].content, *c = r->msgs[1].content;
    size_t np = strlen(p), ns = strlen(sep), nc = strlen(c);
    out->len = np + ns + nc;
    out->text = malloc(out->len + 1);
    if (!out->text) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    memcpy(out->text, p, np);
    memcpy(out->text + np, sep, ns);
    memcpy(out->text + np + ns, c, nc);
    out->text[out->len] = 0;
    slm_status s = add_span(out, 0, np + ns, 0, err);
    if (!s) s = add_span(out, np + ns, out->len, 1, err);
    return s;
}

static slm_status render_chat(const slm_sft_format *f, const slm_sft_record *r, rendered *out, slm_err *err) {
    int last = -1;
    for (int i = 0; i < r->n_msgs; i++)
        if (!strcmp(r->msgs[i].role, "assistant")) last = i;
    if (last < 0) return slm_err_set(err, SLM_ERR_FORMAT, "no assistant message");
    slm_status s = slm_chat_apply(f->family, r->msgs, (size_t)last + 1, 0, &out->text, &out->len, err);
    if (s != SLM_OK) return s;
    size_t done = 0; /* bytes of text assigned to spans */
    for (int i = 0; i <= last && !s; i++) {
        if (strcmp(r->msgs[i].role, "assistant") != 0) continue;
        char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        s = slm_chat_apply(f->family, r->msgs, (size_t)i, 1, &a, &na, err);
        if (!s) s = slm_chat_apply(f->family, r->msgs, (size_t)i + 1, 0, &b, &nb, err);
        if (!s && (!is_prefix(a, na, b, nb) || !is_prefix(b, nb, out->text, out->len) || na < done))
            s = slm_err_set(err, SLM_ERR_UNSUPPORTED, "the %s template does not render this conversation turn by "
                            "turn (a turn's rendering is not a prefix of the next)", slm_chat_family_name(f->family));
        if (!s) s = add_span(out, done, na, 0, err);
        if (!s) s = add_span(out, na, nb, 1, err);
        if (!s) done = nb;
        free(a);
        free(b);
    }
    if (!s) s = add_span(out, done, out->len, 0, err);
    return s;
}

/* ---- tokenizing ---- */

static slm_status enc(const slm_tokenizer *tok, int special, const char *t, size_t n, int bos, int32_t **ids,
                      size_t *nid, slm_err *err) {
    return special ? slm_tokenizer_encode_special(tok, t, n, bos, ids, nid, err)
                   : slm_tokenizer_encode(tok, t, n, bos, ids, nid, err);
}

void slm_sft_example_free(slm_sft_example *ex) {
    free(ex->ids);
    free(ex->targets);
    memset(ex, 0, sizeof *ex);
}

slm_status slm_sft_encode(const slm_tokenizer *tok, const slm_sft_format *f, const slm_sft_record *r,
                          slm_sft_example *ex, int *split_encoded, slm_err *err) {
    memset(ex, 0, sizeof *ex);
    *split_encoded = 0;
    int templ = f->family != SLM_CHAT_UNKNOWN;
    if (!templ && !r->is_pc)
        return slm_err_set(err, SLM_ERR_ARG, "a chat example needs a chat template (the model has no "
                           "tokenizer.chat_template; choose a family with --chat-template NAME)");
    int bos = templ ? slm_tokenizer_add_bos_default(tok) : 1;
    int add_eos = !templ && slm_tokenizer_eos(tok) >= 0;
    rendered rd;
    memset(&rd, 0, sizeof rd);
    slm_status s = templ ? render_chat(f, r, &rd, err) : render_raw(f, r, &rd, err);
    int32_t *full = NULL, *pre = NULL;
    uint8_t *cnt = NULL;
    size_t nfull = 0, npre = 0;
    if (!s) s = enc(tok, templ, rd.text, rd.len, bos, &full, &nfull, err);
    if (s) goto done;
    cnt = calloc(nfull + 1, 1);
    if (!cnt) goto nomem;
    /* token index where each span starts, from encoding the text before it */
    int ok = 1;
    size_t tstart[MAX_SPANS + 1];
    for (int k = 0; k < rd.n && ok; k++) {
        if (rd.start[k] == 0) {
            tstart[k] = 0;
            continue;
        }
        s = enc(tok, templ, rd.text, rd.start[k], bos, &pre, &npre, err);
        if (s) goto done;
        ok = npre <= nfull && memcmp(pre, full, npre * sizeof *pre) == 0 && (k == 0 || npre >= tstart[k - 1]);
        tstart[k] = npre;
        free(pre);
        pre = NULL;
    }
    if (ok) {
        tstart[rd.n] = nfull;
        for (int k = 0; k < rd.n; k++)
            for (size_t i = tstart[k]; i < tstart[k + 1]; i++) cnt[i] = (uint8_t)rd.counted[k];
        if (rd.n > 0 && rd.start[0] == 0 && tstart[0] == 0 && bos && nfull > 0 && full[0] == slm_tokenizer_bos(tok))
            cnt[0] = 0; /* BOS is never a target */
    } else {
        /* a merge crosses a boundary: encode span by span and concatenate */
        *split_encoded = 1;
        free(full);
        full = NULL;
        nfull = 0;
        free(cnt);
        cnt = NULL;
        size_t cap = 0;
        for (int k = 0; k < rd.n || (k == 0 && rd.n == 0); k++) {
            const char *t = rd.n ? rd.text + rd.start[k] : rd.text;
            size_t n = rd.n ? rd.end[k] - rd.start[k] : 0;
            s = enc(tok, templ, t, n, k == 0 && bos, &pre, &npre, err);
            if (s) goto done;
            if (nfull + npre + 1 > cap) {
                cap = (nfull + npre + 1) * 2;
                int32_t *nf = realloc(full, cap * sizeof *nf);
                uint8_t *nc = nf ? realloc(cnt, cap) : NULL;
                if (nf) full = nf;
                if (nc) cnt = nc;
                if (!nf || !nc) goto nomem;
            }
            memcpy(full + nfull, pre, npre * sizeof *pre);
            for (size_t i = 0; i < npre; i++)
                cnt[nfull + i] = (uint8_t)(rd.n && rd.counted[k] && !(k == 0 && i == 0 && bos));
            nfull += npre;
            free(pre);
            pre = NULL;
        }
        if (!cnt) {
            cnt = calloc(1, 1);
            if (!cnt) goto nomem;
        }
    }
    if (templ) {
        /* inside each counted run, tokens after its first CONTROL token (the end of turn) are
         * template text, not the assistant's */
        int seen_ctrl = 0;
        for (size_t i = 0; i < nfull; i++) {
            if (!cnt[i]) {
                seen_ctrl = 0;
                continue;
            }
            if (seen_ctrl) cnt[i] = 0;
            else if (slm_tokenizer_token_type(tok, full[i]) == SLM_TOKEN_CONTROL) seen_ctrl = 1;
        }
        /* a run cut back this way leaves the rest of the run uncounted; the next run starts a
         * new assistant turn after uncounted template text */
    }
    if (add_eos) {
        int32_t *nf = realloc(full, (nfull + 1) * sizeof *nf);
        if (!nf) goto nomem;
        full = nf;
        full[nfull] = slm_tokenizer_eos(tok);
        cnt[nfull] = 1;
        nfull++;
    }
    ex->n = (int)nfull;
    ex->ids = full;
    full = NULL;
    ex->targets = malloc((nfull ? nfull : 1) * sizeof(int32_t));
    if (!ex->targets) goto nomem;
    for (size_t i = 0; i < nfull; i++) {
        int c = i + 1 < nfull && cnt[i + 1];
        ex->targets[i] = c ? ex->ids[i + 1] : -1;
        ex->n_counted += c;
    }
    goto done;
nomem:
    s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory tokenizing an example");
done:
    if (s != SLM_OK) slm_sft_example_free(ex);
    free(full);
    free(pre);
    free(cnt);
    free(rd.text);
    return s;
}

slm_status slm_sft_split_tokenize(slm_sft_split *s, const slm_tokenizer *tok, const slm_sft_format *f,
                                  slm_err *err) {
    if (f->max_len < 2) return slm_err_set(err, SLM_ERR_ARG, "max_len must be at least 2 (got %d)", f->max_len);
    for (int i = 0; i < s->n; i++) slm_sft_example_free(&s->ex[i]);
    free(s->ex);
    s->ex = calloc(s->n_rec ? (size_t)s->n_rec : 1, sizeof *s->ex);
    s->n = s->n_skipped = s->n_cut = s->n_split_encoded = 0;
    s->n_tokens = s->n_counted = 0;
    if (!s->ex) return slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", s->path);
    for (int i = 0; i < s->n_rec; i++) {
        slm_sft_example ex;
        int split = 0;
        slm_status st = slm_sft_encode(tok, f, &s->rec[i], &ex, &split, err);
        if (st != SLM_OK) return slm_err_prefix(err, "%s:%d", s->path, s->rec[i].line);
        s->n_split_encoded += split;
        if (ex.n > f->max_len) {
            ex.n = f->max_len;
            ex.targets[ex.n - 1] = -1;
            ex.n_counted = 0;
            for (int k = 0; k < ex.n; k++) ex.n_counted += ex.targets[k] >= 0;
            s->n_cut++;
        }
        if (ex.n_counted == 0) {
            slm_sft_example_free(&ex);
            s->n_skipped++;
            continue;
        }
        s->n_tokens += (size_t)ex.n;
        s->n_counted += (size_t)ex.n_counted;
        s->ex[s->n++] = ex;
    }
    return SLM_OK;
}

slm_status slm_sft_data_tokenize(slm_sft_data *d, const slm_tokenizer *tok, const slm_sft_format *f,
                                 slm_err *err) {
    slm_status s = slm_sft_split_tokenize(&d->train, tok, f, err);
    if (!s) s = slm_sft_split_tokenize(&d->val, tok, f, err);
    return s;
}

void slm_sft_split_free(slm_sft_split *s) {
    for (int i = 0; i < s->n_rec; i++) record_free(&s->rec[i]);
    free(s->rec);
    for (int i = 0; i < s->n; i++) slm_sft_example_free(&s->ex[i]);
    free(s->ex);
    s->rec = NULL;
    s->ex = NULL;
    s->n = s->n_rec = 0;
}

void slm_sft_data_free(slm_sft_data *d) {
    slm_sft_split_free(&d->train);
    slm_sft_split_free(&d->val);
}
