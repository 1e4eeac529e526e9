/* synth_task.h: the small three-label keyword task the fine-tuning tests (LoRA, distillation,
 * pruning recovery) learn from. */
#ifndef SLM_TESTS_SYNTH_TASK_H
#define SLM_TESTS_SYNTH_TASK_H

#include "slm.h"
#include "task/task_data.h"

/* Writes n_train and n_val examples as train.jsonl and val.jsonl under the new directory
 * tu_tmp_path(name), loads them into d, trains a tokenizer on the task's words into *tok and
 * tokenizes d to max_len. Fails the test on any error. */
void tu_synth_task(const char *name, int n_train, int n_val, int max_len, slm_task_data *d,
                   slm_tokenizer **tok);

/* Writes the three-letter reversal task — all 216 words of letters from "abcdef", prompt
 * "rev abc=", completion "cba"; every 9th word (24) in val.jsonl, the other 192 in train.jsonl —
 * under the new directory tu_tmp_path(name), and returns that path. */
const char *tu_write_reversal_task(const char *name);

#endif
