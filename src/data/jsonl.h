/* jsonl.h: one JSON Lines row -> one record, in any of the three shapes (record.h), via cJSON.
 *
 * The keys are configurable (--text/--label/--prompt/--completion name them). A label may be a
 * string or an integer (kept as its decimal text). Everything else that is not the expected shape
 * — bad JSON, not an object, a missing key, a wrong type — is a malformed row with a reason.
 */
#ifndef SLM_DATA_JSONL_H
#define SLM_DATA_JSONL_H

#include <stddef.h>

#include "core/error.h"
#include "data/record.h"

typedef struct {
    const char *text, *label, *prompt, *completion, *messages; /* key names */
} slm_data_keys;

/* Parses line[0..len) into rec (zeroed first). *task may be SLM_TASK_AUTO, in which case it is
 * set from the row's keys (messages -> chat, prompt -> generate, text -> classify). Returns
 * SLM_OK, SLM_ERR_FORMAT with a reason in why (rec left empty) or SLM_ERR_NOMEM. */
slm_status slm_jsonl_parse(const char *line, size_t len, slm_data_task *task, const slm_data_keys *keys,
                           slm_data_record *rec, char *why, size_t why_n);

#endif
