/* record.c: task names, freeing and canonical JSON printing of records (see record.h). */
#include "data/record.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

const char *slm_data_task_name(slm_data_task t) {
    switch (t) {
    case SLM_TASK_CLASSIFY: return "classify";
    case SLM_TASK_GENERATE: return "generate";
    case SLM_TASK_CHAT: return "chat";
    default: return "auto";
    }
}

int slm_data_task_parse(const char *s) {
    if (!strcmp(s, "classify")) return SLM_TASK_CLASSIFY;
    if (!strcmp(s, "generate")) return SLM_TASK_GENERATE;
    if (!strcmp(s, "chat")) return SLM_TASK_CHAT;
    if (!strcmp(s, "auto")) return SLM_TASK_AUTO;
    return -1;
}

void slm_data_record_free(slm_data_record *r) {
    free(r->text);
    free(r->label);
    free(r->prompt);
    free(r->completion);
    for (int i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    memset(r, 0, sizeof *r);
}

char *slm_data_record_json(const slm_data_record *r, slm_data_task task) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = 1;
    if (task == SLM_TASK_CLASSIFY) {
        ok = cJSON_AddStringToObject(o, "text", r->text ? r->text : "") &&
             cJSON_AddStringToObject(o, "label", r->label ? r->label : "");
    } else if (task == SLM_TASK_GENERATE) {
        ok = cJSON_AddStringToObject(o, "prompt", r->prompt ? r->prompt : "") &&
             cJSON_AddStringToObject(o, "completion", r->completion ? r->completion : "");
    } else {
        cJSON *arr = cJSON_AddArrayToObject(o, "messages");
        ok = arr != NULL;
        for (int i = 0; ok && i < r->n_msgs; i++) {
            cJSON *m = cJSON_CreateObject();
            ok = m && cJSON_AddStringToObject(m, "role", r->msgs[i].role) &&
                 cJSON_AddStringToObject(m, "content", r->msgs[i].content);
            if (m) cJSON_AddItemToArray(arr, m);
        }
    }
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}
