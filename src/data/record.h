/* record.h: one example of a dataset, in one of the three shapes of PRODUCT.md.
 *
 *   classify  {"text": ..., "label": ...}
 *   generate  {"prompt": ..., "completion": ...}
 *   chat      {"messages": [{"role": ..., "content": ...}, ...]}
 *
 * Readers (csv.c, jsonl.c) produce records; cleaning, scrubbing, de-duplication and splitting
 * work on them; the writer prints them back in the same canonical shape. Strings are UTF-8,
 * malloc'd and owned by the record.
 */
#ifndef SLM_DATA_RECORD_H
#define SLM_DATA_RECORD_H

#include <stddef.h>

typedef enum {
    SLM_TASK_AUTO = 0, /* decided from the input's shape */
    SLM_TASK_CLASSIFY,
    SLM_TASK_GENERATE,
    SLM_TASK_CHAT,
} slm_data_task;

typedef struct {
    char *role;
    char *content;
} slm_data_msg;

typedef struct {
    char *text, *label;        /* classify */
    char *prompt, *completion; /* generate */
    slm_data_msg *msgs;        /* chat: n_msgs messages */
    int n_msgs;
    long line; /* physical line of the input where the row starts (1-based) */
} slm_data_record;

/* "classify", "generate", "chat" or "auto". */
const char *slm_data_task_name(slm_data_task t);
/* Parses a task name; returns -1 when unknown. */
int slm_data_task_parse(const char *s);
/* Frees the record's strings and zeroes it. Safe on a zeroed record. */
void slm_data_record_free(slm_data_record *r);
/* The record as one line of JSON (no newline) in its canonical shape; malloc'd, NULL on OOM. */
char *slm_data_record_json(const slm_data_record *r, slm_data_task task);

#endif
