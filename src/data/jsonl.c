/* jsonl.c: JSON Lines rows to records (see jsonl.h). */
#include "data/jsonl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static const char *type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "invalid";
}

/* Copies the string member key of o into *out. 0 = ok, 1 = malformed (why filled), -1 = OOM. */
static int get_string(const cJSON *o, const char *key, int allow_int, char **out, char *why, size_t why_n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        snprintf(why, why_n, "missing key \"%s\"", key);
        return 1;
    }
    char tmp[32];
    const char *s;
    if (cJSON_IsString(v)) s = v->valuestring;
    else if (allow_int && cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->valuedouble);
        s = tmp;
    } else {
        snprintf(why, why_n, "\"%s\" is %s, expected a string%s", key, type_name(v), allow_int ? " or an integer" : "");
        return 1;
    }
    *out = strdup(s);
    return *out ? 0 : -1;
}

slm_status slm_jsonl_parse(const char *line, size_t len, slm_data_task *task, const slm_data_keys *keys,
                           slm_data_record *rec, char *why, size_t why_n) {
    memset(rec, 0, sizeof *rec);
    if (memchr(line, '\0', len)) {
        snprintf(why, why_n, "NUL byte in the line");
        return SLM_ERR_FORMAT;
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!o) {
        size_t at = end && end >= line ? (size_t)(end - line) : 0;
        snprintf(why, why_n, "invalid JSON near column %zu", at + 1);
        return SLM_ERR_FORMAT;
    }
    for (const char *p = end; p && p < line + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            snprintf(why, why_n, "text after the JSON value at column %zu", (size_t)(p - line) + 1);
            cJSON_Delete(o);
            return SLM_ERR_FORMAT;
        }
    if (!cJSON_IsObject(o)) {
        snprintf(why, why_n, "expected a JSON object, found %s", type_name(o));
        cJSON_Delete(o);
        return SLM_ERR_FORMAT;
    }
    slm_data_task t = *task;
    if (t == SLM_TASK_AUTO) {
        if (cJSON_GetObjectItemCaseSensitive(o, keys->messages)) t = SLM_TASK_CHAT;
        else if (cJSON_GetObjectItemCaseSensitive(o, keys->prompt)) t = SLM_TASK_GENERATE;
        else if (cJSON_GetObjectItemCaseSensitive(o, keys->text)) t = SLM_TASK_CLASSIFY;
        else {
            snprintf(why, why_n, "none of the keys \"%s\", \"%s\" or \"%s\" (use --text/--prompt to name them)",
                     keys->text, keys->prompt, keys->messages);
            cJSON_Delete(o);
            return SLM_ERR_FORMAT;
        }
    }
    int r = 0;
    if (t == SLM_TASK_CLASSIFY) {
        r = get_string(o, keys->text, 0, &rec->text, why, why_n);
        if (!r) r = get_string(o, keys->label, 1, &rec->label, why, why_n);
    } else if (t == SLM_TASK_GENERATE) {
        r = get_string(o, keys->prompt, 0, &rec->prompt, why, why_n);
        if (!r) r = get_string(o, keys->completion, 0, &rec->completion, why, why_n);
    } else {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, keys->messages);
        int n = m ? cJSON_GetArraySize(m) : 0;
        if (!m) snprintf(why, why_n, "missing key \"%s\"", keys->messages), r = 1;
        else if (!cJSON_IsArray(m)) snprintf(why, why_n, "\"%s\" is %s, expected an array", keys->messages, type_name(m)), r = 1;
        else if (n == 0) snprintf(why, why_n, "\"%s\" is empty", keys->messages), r = 1;
        else if (!(rec->msgs = calloc((size_t)n, sizeof *rec->msgs))) r = -1;
        for (int i = 0; !r && i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(m, i);
            if (!cJSON_IsObject(e)) {
                snprintf(why, why_n, "message %d is %s, expected an object", i, type_name(e));
                r = 1;
                break;
            }
            char sub[200];
            r = get_string(e, "role", 0, &rec->msgs[i].role, sub, sizeof sub);
            if (!r) r = get_string(e, "content", 0, &rec->msgs[i].content, sub, sizeof sub);
            rec->n_msgs = i + 1;
            if (r == 1) snprintf(why, why_n, "message %d: %s", i, sub);
        }
    }
    cJSON_Delete(o);
    if (r) {
        slm_data_record_free(rec);
        return r < 0 ? SLM_ERR_NOMEM : SLM_ERR_FORMAT;
    }
    *task = t;
    return SLM_OK;
}
