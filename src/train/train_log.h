/* train_log.h: the JSON-lines training log the trainers share — opening (appending to) the file.
 * Each trainer writes its own record fields (trainer.c, finetune.c, sft.c); only the file handling
 * is here, so the three open, replace and close it the same way.
 */
#ifndef SLM_TRAIN_TRAIN_LOG_H
#define SLM_TRAIN_TRAIN_LOG_H

#include <stdio.h>

#include "core/error.h"

/* Closes *log when open, then opens path for appending into *log (path NULL: *log stays NULL).
 * Errors (SLM_ERR_IO) name the path. */
slm_status slm_train_log_open(FILE **log, const char *path, slm_err *err);

#endif
