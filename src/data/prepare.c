/* prepare.c: the `slm data prepare` pipeline (see prepare.h for the stages and the invariant). */
#include "data/prepare.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/rng.h"
#include "data/clean.h"
#include "data/csv.h"
#include "data/dedup.h"
#include "data/sha256.h"

#define PROGRESS_EVERY 50000
#define SPLIT_OOD 0xFF                         /* split[] of a row with a held-out label */
#define HOLD_OUT_STREAM 0x686f6c646f7574ULL    /* "holdout": the rng stream of --hold-out-random */

void slm_data_prepare_opts_default(slm_data_prepare_opts *o) {
    memset(o, 0, sizeof *o);
    o->keys = (slm_data_keys){"text", "label", "prompt", "completion", "messages"};
    o->shares[0] = 0.9;
    o->shares[1] = 0.1;
    o->n_shares = 2;
    o->seed = 1;
}

typedef struct {
    slm_data_record *v;
    size_t n, cap;
} rec_vec;

typedef struct {
    const slm_data_prepare_opts *o;
    slm_data_stats *st;
    slm_data_task task;
    rec_vec recs;    /* kept input rows, in input order */
    slm_dedup keys;  /* dedup key -> index in recs of its first row */
    rec_vec trecs;   /* kept --test rows */
    long *tmatch;    /* per test row: index in recs with the same key, or -1 */
    size_t tmatch_cap;
    uint8_t *tood;   /* per test row: 1 when its label is held out (it goes to ood.jsonl) */
} pipeline;

static int vec_push(rec_vec *v, slm_data_record *r) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 1024;
        slm_data_record *nv = realloc(v->v, nc * sizeof *nv);
        if (!nv) return 0;
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = *r;
    memset(r, 0, sizeof *r);
    return 1;
}

static void vec_free(rec_vec *v) {
    for (size_t i = 0; i < v->n; i++) slm_data_record_free(&v->v[i]);
    free(v->v);
    memset(v, 0, sizeof *v);
}

/* A malformed row: fatal with --on-error fail, else counted, remembered and reported. */
static slm_status bad_row(pipeline *p, slm_data_counts *c, const char *file, long line, const char *reason,
                          slm_err *err) {
    if (p->o->fail_on_error)
        return slm_err_set(err, SLM_ERR_FORMAT, "%s:%ld: %s (--on-error skip would skip this row)", file, line, reason);
    c->malformed++;
    if (c->n_bad < SLM_DATA_BAD_KEEP) {
        slm_data_bad_row *b = &c->bad[c->n_bad++];
        snprintf(b->file, sizeof b->file, "%s", file);
        b->line = line;
        snprintf(b->reason, sizeof b->reason, "%s", reason);
    }
    if (p->o->on_malformed) p->o->on_malformed(p->o->cb_ctx, file, line, reason);
    return SLM_OK;
}

/* Replaces *s by its cleaned copy; adds to *bad the invalid UTF-8 sequences. 0 on OOM. */
static int clean_field(char **s, int keep_newlines, size_t *chars, size_t *bad) {
    if (!*s) return 1;
    size_t n_chars, n_bad;
    char *c = slm_clean_text(*s, strlen(*s), keep_newlines, &n_chars, &n_bad);
    if (!c) return 0;
    free(*s);
    *s = c;
    if (chars) *chars += n_chars;
    *bad += n_bad;
    return 1;
}

static int scrub_field(char **s, slm_pii_counts *pc) {
    if (!*s) return 1;
    char *c = slm_pii_scrub(*s, pc);
    if (!c) return 0;
    free(*s);
    *s = c;
    return 1;
}

/* The de-duplication key: the text (classify), prompt and completion, or every turn. */
static char *dedup_key(const slm_data_record *r, slm_data_task t, int fold, size_t *len) {
    size_t n = 1;
    if (t == SLM_TASK_CLASSIFY) n += strlen(r->text);
    else if (t == SLM_TASK_GENERATE) n += strlen(r->prompt) + strlen(r->completion) + 1;
    else
        for (int i = 0; i < r->n_msgs; i++) n += strlen(r->msgs[i].role) + strlen(r->msgs[i].content) + 2;
    char *k = malloc(n), *w = k;
    if (!k) return NULL;
    if (t == SLM_TASK_CLASSIFY) w = stpcpy(w, r->text);
    else if (t == SLM_TASK_GENERATE) w = stpcpy(stpcpy(stpcpy(w, r->prompt), "\x1f"), r->completion);
    else
        for (int i = 0; i < r->n_msgs; i++)
            w = stpcpy(stpcpy(stpcpy(stpcpy(w, r->msgs[i].role), "\x1e"), r->msgs[i].content), "\x1f");
    *w = '\0';
    if (fold) {
        char *f = slm_clean_casefold(k);
        free(k);
        if (!f) return NULL;
        k = f;
    }
    *len = strlen(k);
    return k;
}

/* Cleans one parsed row and keeps or drops it (takes ownership of r). */
static slm_status take_row(pipeline *p, slm_data_record *r, int is_test, slm_err *err) {
    slm_data_counts *c = is_test ? &p->st->test : &p->st->main;
    size_t chars = 0, bad = 0;
    int ok = 1, empty = 0;
    if (p->task == SLM_TASK_CLASSIFY) {
        ok = clean_field(&r->text, 0, &chars, &bad) && clean_field(&r->label, 0, NULL, &bad);
        empty = ok && (!r->text[0] || !r->label[0]);
    } else if (p->task == SLM_TASK_GENERATE) {
        ok = clean_field(&r->prompt, 1, &chars, &bad) && clean_field(&r->completion, 1, &chars, &bad);
        empty = ok && (!r->prompt[0] || !r->completion[0]);
    } else {
        empty = 1;
        for (int i = 0; ok && i < r->n_msgs; i++) {
            ok = clean_field(&r->msgs[i].role, 0, NULL, &bad) && clean_field(&r->msgs[i].content, 1, &chars, &bad);
            if (ok && r->msgs[i].content[0]) empty = 0;
        }
    }
    if (!ok) goto oom;
    if (bad) c->invalid_utf8_rows++;
    if (empty) {
        c->dropped_empty++;
        slm_data_record_free(r);
        return SLM_OK;
    }
    if (p->o->scrub_pii) {
        ok = scrub_field(&r->text, &c->pii) && scrub_field(&r->prompt, &c->pii) && scrub_field(&r->completion, &c->pii);
        for (int i = 0; ok && i < r->n_msgs; i++) ok = scrub_field(&r->msgs[i].content, &c->pii);
        if (!ok) goto oom;
        if (p->o->min_chars || p->o->max_chars) {
            chars = 0;
            if (r->text) chars = slm_utf8_count(r->text);
            if (r->prompt) chars = slm_utf8_count(r->prompt) + slm_utf8_count(r->completion);
            for (int i = 0; i < r->n_msgs; i++) chars += slm_utf8_count(r->msgs[i].content);
        }
    }
    size_t klen;
    char *key = dedup_key(r, p->task, p->o->lowercase_dedup, &klen);
    if (!key) goto oom;
    if (is_test) {
        /* the official test set loses nothing but malformed and empty rows */
        long idx = -1;
        slm_dedup_find(&p->keys, key, klen, &idx);
        free(key);
        if (p->trecs.n == p->tmatch_cap) {
            size_t nc = p->tmatch_cap ? p->tmatch_cap * 2 : 1024;
            long *nm = realloc(p->tmatch, nc * sizeof *nm);
            if (!nm) goto oom;
            p->tmatch = nm;
            p->tmatch_cap = nc;
        }
        p->tmatch[p->trecs.n] = idx;
        if (!vec_push(&p->trecs, r)) goto oom;
        return SLM_OK;
    }
    if (p->o->min_chars && (long)chars < p->o->min_chars) {
        c->dropped_too_short++;
        free(key);
        slm_data_record_free(r);
        return SLM_OK;
    }
    if (p->o->max_chars && (long)chars > p->o->max_chars) {
        c->dropped_too_long++;
        free(key);
        slm_data_record_free(r);
        return SLM_OK;
    }
    long first;
    int ins = slm_dedup_insert(&p->keys, key, klen, (long)p->recs.n, &first);
    free(key);
    if (ins < 0) goto oom;
    if (ins == 0 && !p->o->keep_duplicates) {
        c->dropped_duplicate++;
        if (p->task == SLM_TASK_CLASSIFY && strcmp(p->recs.v[first].label, r->label)) c->label_conflicts++;
        slm_data_record_free(r);
        return SLM_OK;
    }
    if (!vec_push(&p->recs, r)) goto oom;
    return SLM_OK;
oom:
    slm_data_record_free(r);
    return slm_err_set(err, SLM_ERR_NOMEM, "out of memory after %zu rows", p->recs.n + p->trecs.n);
}

static int is_jsonl(const char *path, FILE *f) {
    const char *dot = strrchr(path, '.');
    if (dot && !strcmp(dot, ".csv")) return 0;
    if (dot && (!strcmp(dot, ".jsonl") || !strcmp(dot, ".ndjson") || !strcmp(dot, ".json"))) return 1;
    /* sniff: the first byte that is not a BOM or white space */
    int ch, first = 0;
    long n = 0;
    while ((ch = getc(f)) != EOF && n < 4096) {
        n++;
        if (ch == 0xEF || ch == 0xBB || ch == 0xBF || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') continue;
        first = ch;
        break;
    }
    rewind(f);
    return first == '{';
}

static void progress(pipeline *p, const char *path, long long at, long long total, long rows) {
    if (p->o->on_progress) p->o->on_progress(p->o->cb_ctx, path, at, total, rows);
}

static slm_status read_csv(pipeline *p, FILE *f, const char *path, long long total, int is_test, slm_err *err) {
    slm_data_counts *c = is_test ? &p->st->test : &p->st->main;
    const slm_data_keys *k = &p->o->keys;
    slm_csv *csv = slm_csv_new(f, err);
    if (!csv) return slm_err_prefix(err, "%s", path);
    slm_csv_row row;
    int eof, n_cols = 0, col[2] = {-1, -1};
    char **header = NULL;
    slm_status s = slm_csv_next(csv, &row, &eof, err);
    if (s == SLM_OK && eof) s = slm_err_set(err, SLM_ERR_FORMAT, "empty file: no header row");
    if (s != SLM_OK) goto done;
    n_cols = row.n;
    header = calloc((size_t)n_cols, sizeof *header);
    if (!header) {
        s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_cols; i++)
        if (!(header[i] = strdup(row.fields[i]))) {
            s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
            goto done;
        }
    int has[4] = {0};
    const char *names[4] = {k->text, k->label, k->prompt, k->completion};
    for (int i = 0; i < n_cols; i++)
        for (int j = 0; j < 4; j++)
            if (!strcmp(header[i], names[j]) && !has[j]) has[j] = i + 1;
    if (p->task == SLM_TASK_AUTO) p->task = (has[2] && has[3] && !has[0]) ? SLM_TASK_GENERATE : SLM_TASK_CLASSIFY;
    if (p->task == SLM_TASK_CHAT) {
        s = slm_err_set(err, SLM_ERR_UNSUPPORTED, "chat data must be JSONL ({\"messages\": [...]}), not CSV");
        goto done;
    }
    int base = p->task == SLM_TASK_CLASSIFY ? 0 : 2;
    for (int j = 0; j < 2; j++) {
        if (!has[base + j]) {
            char cols[512] = "";
            size_t w = 0;
            for (int i = 0; i < n_cols && w < sizeof cols - 1; i++)
                w += (size_t)snprintf(cols + w, sizeof cols - w, "%s%s", i ? ", " : "", header[i]);
            static const char *const opt[4] = {"--text", "--label", "--prompt", "--completion"};
            s = slm_err_set(err, SLM_ERR_ARG, "no column '%s' in the header (columns: %s); name it with %s",
                            names[base + j], cols, opt[base + j]);
            goto done;
        }
        col[j] = has[base + j] - 1;
    }
    for (;;) {
        s = slm_csv_next(csv, &row, &eof, err);
        if (s == SLM_ERR_FORMAT) {
            c->rows_read++;
            const char *why = strchr(err->msg, ':'); /* "line N: reason" */
            char reason[256];
            snprintf(reason, sizeof reason, "%.200s", why ? why + 2 : err->msg);
            if ((s = bad_row(p, c, path, row.line, reason, err)) != SLM_OK) goto done;
            continue;
        }
        if (s != SLM_OK || eof) break;
        if (row.blank) {
            c->blank_lines++;
            continue;
        }
        c->rows_read++;
        if (c->rows_read % PROGRESS_EVERY == 0) progress(p, path, slm_csv_offset(csv), total, c->rows_read);
        if (row.n != n_cols) {
            char reason[96];
            snprintf(reason, sizeof reason, "expected %d fields (as in the header), found %d", n_cols, row.n);
            if ((s = bad_row(p, c, path, row.line, reason, err)) != SLM_OK) goto done;
            continue;
        }
        slm_data_record r = {0};
        r.line = row.line;
        char **a = p->task == SLM_TASK_CLASSIFY ? &r.text : &r.prompt;
        char **b = p->task == SLM_TASK_CLASSIFY ? &r.label : &r.completion;
        *a = strdup(row.fields[col[0]]);
        *b = strdup(row.fields[col[1]]);
        if (!*a || !*b) {
            slm_data_record_free(&r);
            s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((s = take_row(p, &r, is_test, err)) != SLM_OK) goto done;
    }
    if (s == SLM_OK && c->rows_read % PROGRESS_EVERY) progress(p, path, slm_csv_offset(csv), total, c->rows_read);
done:
    if (header)
        for (int i = 0; i < n_cols; i++) free(header[i]);
    free(header);
    slm_csv_free(csv);
    return s;
}

static slm_status read_jsonl(pipeline *p, FILE *f, const char *path, long long total, int is_test, slm_err *err) {
    slm_data_counts *c = is_test ? &p->st->test : &p->st->main;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long line_no = 0;
    long long at = 0;
    slm_status s = SLM_OK;
    while ((got = getline(&line, &cap, f)) >= 0) {
        line_no++;
        at += got;
        char *t = line;
        size_t n = (size_t)got;
        if (line_no == 1 && n >= 3 && !memcmp(t, "\xEF\xBB\xBF", 3)) t += 3, n -= 3;
        while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' ' || t[n - 1] == '\t')) n--;
        size_t lead = 0;
        while (lead < n && (t[lead] == ' ' || t[lead] == '\t')) lead++;
        if (lead == n) {
            c->blank_lines++;
            continue;
        }
        c->rows_read++;
        if (c->rows_read % PROGRESS_EVERY == 0) progress(p, path, at, total, c->rows_read);
        slm_data_record r;
        char why[200];
        slm_data_task task = p->task;
        s = slm_jsonl_parse(t, n, &task, &p->o->keys, &r, why, sizeof why);
        if (s == SLM_ERR_FORMAT) {
            if ((s = bad_row(p, c, path, line_no, why, err)) != SLM_OK) break;
            continue;
        }
        if (s != SLM_OK) {
            s = slm_err_set(err, SLM_ERR_NOMEM, "%s:%ld: out of memory", path, line_no);
            break;
        }
        p->task = task;
        r.line = line_no;
        if ((s = take_row(p, &r, is_test, err)) != SLM_OK) break;
    }
    if (s == SLM_OK && ferror(f)) s = slm_err_set(err, SLM_ERR_IO, "%s: read error after line %ld", path, line_no);
    if (s == SLM_OK && c->rows_read % PROGRESS_EVERY) progress(p, path, at, total, c->rows_read);
    free(line);
    return s;
}

static slm_status read_input(pipeline *p, slm_data_input *in, int is_test, slm_err *err) {
    FILE *f = fopen(in->path, "rb");
    if (!f) return slm_err_set(err, SLM_ERR_IO, "%s: cannot open: %s", in->path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    int jl = is_jsonl(in->path, f);
    in->format = jl ? "jsonl" : "csv";
    slm_status s = jl ? read_jsonl(p, f, in->path, (long long)in->bytes, is_test, err)
                      : read_csv(p, f, in->path, (long long)in->bytes, is_test, err);
    fclose(f);
    if (s != SLM_OK && strncmp(err->msg, in->path, strlen(in->path))) slm_err_prefix(err, "%s", in->path);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static slm_status mkdirs(const char *dir, slm_err *err) {
    char path[1024];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return slm_err_set(err, SLM_ERR_ARG, "output directory name too long");
    for (char *q = path + 1;; q++) {
        if (*q == '/' || !*q) {
            char keep = *q;
            *q = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return slm_err_set(err, SLM_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
            *q = keep;
            if (!keep) break;
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return slm_err_set(err, SLM_ERR_IO, "%s: not a directory", dir);
    return SLM_OK;
}

enum { OUT_TRAIN, OUT_VAL, OUT_TEST, OUT_OOD, OUT_LABELS, OUT_CARD, OUT_N };

static slm_status write_outputs(pipeline *p, const uint8_t *split, slm_err *err) {
    static const char *const names[OUT_N] = {"train.jsonl", "val.jsonl",  "test.jsonl",
                                             "ood.jsonl",   "labels.txt", "card.json"};
    const slm_data_prepare_opts *o = p->o;
    slm_data_stats *st = p->st;
    int want[OUT_N] = {1, 1, st->n_splits == 3 || st->has_test, st->n_held > 0, p->task == SLM_TASK_CLASSIFY, 1};
    slm_atomic_file af[OUT_N];
    memset(af, 0, sizeof af);
    slm_status s = mkdirs(o->out_dir, err);
    for (int i = 0; s == SLM_OK && i < OUT_N; i++) {
        if (!want[i]) continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", o->out_dir, names[i]);
        s = slm_atomic_open(&af[i], path, err);
    }
    for (size_t i = 0; s == SLM_OK && i < p->recs.n; i++) {
        char *js = slm_data_record_json(&p->recs.v[i], p->task);
        if (!js) s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory writing row %zu", i);
        else {
            FILE *f = af[split[i] == SPLIT_OOD ? OUT_OOD : split[i] == 2 ? OUT_TEST : split[i]].f;
            fputs(js, f);
            fputc('\n', f);
            free(js);
        }
    }
    for (size_t i = 0; s == SLM_OK && i < p->trecs.n; i++) {
        char *js = slm_data_record_json(&p->trecs.v[i], p->task);
        if (!js) s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory writing test row %zu", i);
        else {
            FILE *f = af[p->tood && p->tood[i] ? OUT_OOD : OUT_TEST].f;
            fputs(js, f);
            fputc('\n', f);
            free(js);
        }
    }
    if (s == SLM_OK && want[OUT_LABELS])
        for (int i = 0; i < st->n_labels; i++) fprintf(af[OUT_LABELS].f, "%s\n", st->labels[i]);
    if (s == SLM_OK) {
        char *card = slm_data_card_json(o, st);
        if (!card) s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory writing the card");
        else {
            fputs(card, af[OUT_CARD].f);
            fputc('\n', af[OUT_CARD].f);
            free(card);
        }
    }
    /* every file is complete before any is renamed into place */
    for (int i = 0; i < OUT_N; i++) {
        if (!want[i]) continue;
        if (s == SLM_OK) s = slm_atomic_commit(&af[i], err);
        else slm_atomic_abort(&af[i]);
    }
    return s;
}

/* "a, b, c": names for an error message, cut short with "... (N in all)" to fit cap. */
static const char *list_names(char *buf, size_t cap, char *const *names, int n) {
    size_t w = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (w + strlen(names[i]) + 2 + 24 > cap) {
            snprintf(buf + w, cap - w, "%s... (%d in all)", i ? ", " : "", n);
            break;
        }
        w += (size_t)snprintf(buf + w, cap - w, "%s%s", i ? ", " : "", names[i]);
    }
    return buf;
}

static int test_has_label(const pipeline *p, const char *label) {
    for (size_t i = 0; i < p->trecs.n; i++)
        if (!strcmp(p->trecs.v[i].label, label)) return 1;
    return 0;
}

/* The held-out labels (st->held, sorted) from --hold-out or --hold-out-random. names: the n_all
 * labels of the kept input rows, sorted; all: the same as a set. */
static slm_status choose_held(pipeline *p, char **names, int n_all, const slm_dedup *all, slm_err *err) {
    const slm_data_prepare_opts *o = p->o;
    slm_data_stats *st = p->st;
    char known[600];
    if (o->hold_out) {
        int cap = 1;
        for (const char *c = o->hold_out; *c; c++) cap += *c == ',';
        if (!(st->held = calloc((size_t)cap, sizeof *st->held))) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
        for (const char *a = o->hold_out;;) {
            const char *e = strchr(a, ',');
            if (!e) e = a + strlen(a);
            const char *b = a, *z = e;
            while (b < z && (*b == ' ' || *b == '\t')) b++;
            while (z > b && (z[-1] == ' ' || z[-1] == '\t')) z--;
            if (z == b) return slm_err_set(err, SLM_ERR_ARG, "--hold-out '%s': an empty label name", o->hold_out);
            char *name = strndup(b, (size_t)(z - b));
            if (!name) return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
            int dup = 0;
            for (int h = 0; h < st->n_held && !dup; h++) dup = !strcmp(st->held[h], name);
            if (dup) free(name);
            else {
                st->held[st->n_held++] = name;
                if (!slm_dedup_find(all, name, strlen(name), NULL) && !test_has_label(p, name))
                    return slm_err_set(err, SLM_ERR_ARG, "--hold-out: no label '%s' in the input%s (labels: %s)", name,
                                       st->has_test ? "s or the test file" : "s",
                                       list_names(known, sizeof known, names, n_all));
            }
            if (!*e) break;
            a = e + 1;
        }
    } else {
        int n = o->hold_out_random;
        if (n >= n_all)
            return slm_err_set(err, SLM_ERR_ARG, "--hold-out-random %d: would hold out every label (the inputs have %d: %s)",
                               n, n_all, list_names(known, sizeof known, names, n_all));
        if (n_all - n < 2)
            return slm_err_set(err, SLM_ERR_ARG,
                               "--hold-out-random %d: leaves %d of the %d labels; at least 2 must remain (at most %d)", n,
                               n_all - n, n_all, n_all - 2);
        int *idx = malloc((size_t)n_all * sizeof *idx);
        st->held = calloc((size_t)n, sizeof *st->held);
        if (!idx || !st->held) {
            free(idx);
            return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
        }
        /* the first n of a seeded Fisher-Yates shuffle of the sorted labels */
        for (int i = 0; i < n_all; i++) idx[i] = i;
        slm_rng r;
        slm_rng_seed(&r, o->seed, HOLD_OUT_STREAM);
        for (int i = 0; i < n; i++) {
            int j = i + (int)slm_rng_below(&r, (uint32_t)(n_all - i)), t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        for (int i = 0; i < n; i++)
            if (!(st->held[st->n_held++] = strdup(names[idx[i]]))) {
                free(idx);
                return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
            }
        free(idx);
    }
    qsort(st->held, (size_t)st->n_held, sizeof *st->held, cmp_str);
    if (!(st->held_counts = calloc((size_t)st->n_held * 2, sizeof *st->held_counts)))
        return slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    int left = n_all;
    for (int h = 0; h < st->n_held; h++) left -= slm_dedup_find(all, st->held[h], strlen(st->held[h]), NULL);
    if (left == 0)
        return slm_err_set(err, SLM_ERR_ARG, "--hold-out holds out every label of the inputs (%s); at least 2 must remain",
                           list_names(known, sizeof known, st->held, st->n_held));
    if (left < 2) {
        const char *rest = NULL;
        for (int i = 0; i < n_all && !rest; i++) {
            int held = 0;
            for (int h = 0; h < st->n_held && !held; h++) held = !strcmp(st->held[h], names[i]);
            if (!held) rest = names[i];
        }
        return slm_err_set(err, SLM_ERR_ARG, "--hold-out leaves only the label '%s' of the %d (held out: %s); at least 2 must remain",
                           rest, n_all, list_names(known, sizeof known, st->held, st->n_held));
    }
    return SLM_OK;
}

/* Labels of the kept rows, sorted; the held-out ones (held: label -> index in st->held); group ids
 * for the split, with the rows of held-out labels in one extra group, n_labels (groups are shuffled
 * independently, so it changes nothing for the others; its assignment is then overridden). */
static slm_status count_labels(pipeline *p, int *group, slm_dedup *ids, slm_dedup *held, slm_err *err) {
    slm_data_stats *st = p->st;
    slm_dedup all;
    slm_dedup_init(&all);
    char **names = NULL; /* borrowed from all */
    int n_all = 0;
    slm_status s = SLM_OK;
    for (size_t i = 0; i < p->recs.n && s == SLM_OK; i++) {
        const char *l = p->recs.v[i].label;
        if (slm_dedup_insert(&all, l, strlen(l), 0, NULL) < 0) s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    }
    if (s == SLM_OK && !(names = calloc(all.n ? all.n : 1, sizeof *names)))
        s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    if (s != SLM_OK) goto done;
    for (size_t i = 0; i < all.cap; i++)
        if (all.hash[i]) names[n_all++] = all.key[i];
    qsort(names, (size_t)n_all, sizeof *names, cmp_str);
    if ((p->o->hold_out || p->o->hold_out_random) && (s = choose_held(p, names, n_all, &all, err)) != SLM_OK) goto done;
    for (int h = 0; h < st->n_held && s == SLM_OK; h++)
        if (slm_dedup_insert(held, st->held[h], strlen(st->held[h]), h, NULL) < 0)
            s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    st->labels = calloc(n_all ? (size_t)n_all : 1, sizeof *st->labels);
    st->label_counts = calloc((n_all ? (size_t)n_all : 1) * SLM_SPLIT_MAX, sizeof *st->label_counts);
    st->test_label_counts = calloc(n_all ? (size_t)n_all : 1, sizeof *st->test_label_counts);
    if (s == SLM_OK && (!st->labels || !st->label_counts || !st->test_label_counts))
        s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_all && s == SLM_OK; i++) {
        if (slm_dedup_find(held, names[i], strlen(names[i]), NULL)) continue;
        if (slm_dedup_insert(ids, names[i], strlen(names[i]), st->n_labels, NULL) < 0 ||
            !(st->labels[st->n_labels++] = strdup(names[i])))
            s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < p->recs.n && s == SLM_OK; i++) {
        const char *l = p->recs.v[i].label;
        long id = 0;
        if (slm_dedup_find(held, l, strlen(l), &id)) {
            st->held_counts[id * 2]++;
            st->ood_rows++;
            group[i] = st->n_labels;
        } else {
            slm_dedup_find(ids, l, strlen(l), &id);
            group[i] = (int)id;
        }
    }
done:
    free(names);
    slm_dedup_free(&all);
    return s;
}

slm_status slm_data_prepare(const slm_data_prepare_opts *o, slm_data_stats *st, slm_err *err) {
    memset(st, 0, sizeof *st);
    if (o->n_inputs < 1 || o->n_inputs > SLM_DATA_MAX_INPUTS)
        return slm_err_set(err, SLM_ERR_ARG, "give 1 to %d input files (got %d)", SLM_DATA_MAX_INPUTS, o->n_inputs);
    if (!o->out_dir || !o->out_dir[0]) return slm_err_set(err, SLM_ERR_ARG, "an output directory is required (-o DIR)");
    if (o->n_shares < 2 || o->n_shares > 3) return slm_err_set(err, SLM_ERR_ARG, "split: 2 or 3 shares, got %d", o->n_shares);
    if (o->test_path && o->n_shares == 3)
        return slm_err_set(err, SLM_ERR_ARG, "--test gives the test set: split into train,val only (e.g. 0.9,0.1)");
    if (o->min_chars < 0 || o->max_chars < 0 || (o->max_chars && o->min_chars > o->max_chars))
        return slm_err_set(err, SLM_ERR_ARG, "length limits: min %ld > max %ld", o->min_chars, o->max_chars);
    int hold = o->hold_out || o->hold_out_random;
    if (o->hold_out && o->hold_out_random)
        return slm_err_set(err, SLM_ERR_ARG, "give --hold-out LABELS or --hold-out-random N, not both");
    if (o->hold_out_random < 0)
        return slm_err_set(err, SLM_ERR_ARG, "--hold-out-random %d: expected a positive count", o->hold_out_random);
    if (hold && o->task != SLM_TASK_AUTO && o->task != SLM_TASK_CLASSIFY)
        return slm_err_set(err, SLM_ERR_ARG, "--hold-out: labels are held out of classify data only, not %s",
                           slm_data_task_name(o->task));
    st->n_splits = o->n_shares;
    st->has_test = o->test_path != NULL;
    /* provenance first: the card names exactly the bytes that were read */
    for (int i = 0; i <= o->n_inputs; i++) {
        const char *path = i < o->n_inputs ? o->inputs[i] : o->test_path;
        if (!path) break;
        slm_data_input *in = &st->inputs[st->n_inputs++];
        snprintf(in->path, sizeof in->path, "%s", path);
        in->role = i < o->n_inputs ? "train" : "test";
        slm_status s = slm_sha256_file(path, in->sha256, &in->bytes, err);
        if (s != SLM_OK) return s;
    }

    pipeline p = {.o = o, .st = st, .task = o->task};
    slm_dedup_init(&p.keys);
    slm_dedup ids, held;
    slm_dedup_init(&ids);
    slm_dedup_init(&held);
    int *group = NULL;
    uint8_t *split = NULL;
    slm_status s = SLM_OK;
    for (int i = 0; s == SLM_OK && i < o->n_inputs; i++) s = read_input(&p, &st->inputs[i], 0, err);
    if (s != SLM_OK) goto done;
    st->task = p.task == SLM_TASK_AUTO ? SLM_TASK_CLASSIFY : p.task;
    p.task = st->task;
    if (p.recs.n == 0) {
        s = slm_err_set(err, SLM_ERR_FORMAT,
                        "no rows left to split: %ld read, %ld malformed, %ld empty, %ld too short, %ld too long, %ld duplicate",
                        st->main.rows_read, st->main.malformed, st->main.dropped_empty, st->main.dropped_too_short,
                        st->main.dropped_too_long, st->main.dropped_duplicate);
        goto done;
    }
    if (hold && p.task != SLM_TASK_CLASSIFY) {
        s = slm_err_set(err, SLM_ERR_ARG, "--hold-out: labels are held out of classify data only, not %s",
                        slm_data_task_name(p.task));
        goto done;
    }
    /* the test file before the split: --hold-out may name a label only it has */
    if (o->test_path && (s = read_input(&p, &st->inputs[o->n_inputs], 1, err)) != SLM_OK) goto done;
    group = calloc(p.recs.n, sizeof *group);
    split = calloc(p.recs.n, sizeof *split);
    if (!group || !split) {
        s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory for %zu rows", p.recs.n);
        goto done;
    }
    if (p.task == SLM_TASK_CLASSIFY && (s = count_labels(&p, group, &ids, &held, err)) != SLM_OK) goto done;
    int n_groups = p.task == SLM_TASK_CLASSIFY ? st->n_labels + (st->ood_rows > 0) : 1;
    s = slm_split_assign(group, p.recs.n, n_groups, o->shares, o->n_shares, o->seed, split, err);
    if (s != SLM_OK) goto done;
    for (size_t i = 0; i < p.recs.n; i++) {
        if (p.task == SLM_TASK_CLASSIFY && group[i] == st->n_labels) {
            split[i] = SPLIT_OOD;
            continue;
        }
        st->split_rows[split[i]]++;
        if (p.task == SLM_TASK_CLASSIFY) st->label_counts[group[i] * SLM_SPLIT_MAX + split[i]]++;
    }
    if (o->test_path) {
        slm_dedup unseen;
        slm_dedup_init(&unseen);
        if (!(p.tood = calloc(p.trecs.n ? p.trecs.n : 1, 1))) s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
        for (size_t i = 0; s == SLM_OK && i < p.trecs.n; i++) {
            int in_train = p.tmatch[i] >= 0 && split[p.tmatch[i]] == 0;
            long id;
            if (p.task == SLM_TASK_CLASSIFY &&
                slm_dedup_find(&held, p.trecs.v[i].label, strlen(p.trecs.v[i].label), &id)) {
                p.tood[i] = 1;
                st->held_counts[id * 2 + 1]++;
                st->ood_test_rows++;
                st->ood_test_leaked += in_train;
                continue;
            }
            if (in_train) st->test_leaked++;
            if (p.task != SLM_TASK_CLASSIFY) continue;
            const char *l = p.trecs.v[i].label;
            if (slm_dedup_find(&ids, l, strlen(l), &id)) st->test_label_counts[id]++;
            else if (slm_dedup_insert(&unseen, l, strlen(l), 0, NULL) < 0) s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
        }
        st->test_rows = (long)p.trecs.n - st->ood_test_rows;
        if (s == SLM_OK && unseen.n) {
            st->unseen = calloc(unseen.n, sizeof *st->unseen);
            st->unseen_counts = calloc(unseen.n, sizeof *st->unseen_counts);
            if (!st->unseen || !st->unseen_counts) s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
            for (size_t i = 0; s == SLM_OK && i < unseen.cap; i++)
                if (unseen.hash[i] && !(st->unseen[st->n_unseen++] = strdup(unseen.key[i])))
                    s = slm_err_set(err, SLM_ERR_NOMEM, "out of memory");
            if (s == SLM_OK) {
                qsort(st->unseen, (size_t)st->n_unseen, sizeof *st->unseen, cmp_str);
                for (size_t i = 0; i < p.trecs.n; i++)
                    for (int u = 0; u < st->n_unseen; u++)
                        if (!strcmp(p.trecs.v[i].label, st->unseen[u])) st->unseen_counts[u]++;
            }
        }
        slm_dedup_free(&unseen);
        if (s != SLM_OK) goto done;
    }
    s = write_outputs(&p, split, err);
done:
    free(group);
    free(split);
    free(p.tmatch);
    free(p.tood);
    vec_free(&p.recs);
    vec_free(&p.trecs);
    slm_dedup_free(&p.keys);
    slm_dedup_free(&ids);
    slm_dedup_free(&held);
    return s;
}

void slm_data_stats_free(slm_data_stats *s) {
    for (int i = 0; i < s->n_labels; i++) free(s->labels[i]);
    for (int i = 0; i < s->n_unseen; i++) free(s->unseen[i]);
    for (int i = 0; i < s->n_held; i++) free(s->held[i]);
    free(s->labels);
    free(s->held);
    free(s->held_counts);
    free(s->label_counts);
    free(s->test_label_counts);
    free(s->unseen);
    free(s->unseen_counts);
    memset(s, 0, sizeof *s);
}
