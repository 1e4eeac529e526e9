/* train_log.c: opening the trainers' JSON-lines log (see train_log.h). */
#include "train/train_log.h"

slm_status slm_train_log_open(FILE **log, const char *path, slm_err *err) {
    if (*log) fclose(*log);
    *log = NULL;
    if (!path) return SLM_OK;
    *log = fopen(path, "a");
    if (!*log) return slm_err_set(err, SLM_ERR_IO, "%s: cannot open the log for writing", path);
    return SLM_OK;
}
