/* train_args.h: what the training commands (train, finetune, finetune --task generate, distill)
 * share — parsing the common training options and the progress line's frame.
 *
 * Each command points the parser at the fields of its own option struct; a NULL target means the
 * command does not take that option (it then falls through to the command's "unknown option").
 * Ranges are those the commands always had; the two that differ between commands (--accum's
 * maximum, --max-len's minimum) are fields. Defaults stay in the library's *_opts_default.
 */
#ifndef SLM_TOOLS_TRAIN_ARGS_H
#define SLM_TOOLS_TRAIN_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "task/sft.h"

typedef struct {
    int *steps;              /* --steps N        [1, 2^30] */
    float *epochs;           /* --epochs X       [1e-6, 1e6] */
    int *batch;              /* --batch B        [1, 4096] */
    int *accum;              /* --accum N        [1, accum_max] */
    int accum_max;
    int *max_len;            /* --max-len N      [max_len_min, 65536] */
    int max_len_min;
    int *max_len_given;      /* set to 1 when --max-len is given (may be NULL) */
    float *lr;               /* --lr X           [1e-9, 10] */
    int *lr_given;           /* set to 1 when --lr is given (may be NULL) */
    float *lr_min;           /* --lr-min X       [0, 10] */
    int *warmup;             /* --warmup N       [0, 2^30] */
    float *weight_decay;     /* --wd X           [0, 10] */
    float *grad_clip;        /* --clip X         [0, 1e9] */
    float *dropout;          /* --dropout P      [0, 0.9] */
    int *eval_every;         /* --eval-every N   [0, 2^30] */
    int *patience;           /* --patience N     [0, 2^30] */
    uint64_t *seed;          /* --seed N         [0, 2^31) */
    int *threads;            /* --threads N      [1, 1024] */
    int *quiet;              /* --quiet */
} train_args;

/* When argv[*i] is one of the options above with a target, parses its value into the target
 * (advancing *i past it; dies on a bad value) and returns true; else returns false. */
bool train_args_parse(const train_args *ta, int argc, char **argv, int *i);

/* The progress line: "step i/n ... | early stop", redrawn in place on a terminal, else printed
 * every `every` steps (and at the first, validated and last steps). */
typedef struct {
    int tty, quiet, every;
    double start;            /* when the run started (for the command's summary) */
} train_progress;

/* tty from stderr, every = steps / 50 (at least 1). */
void train_progress_init(train_progress *ps, int quiet, int steps);
/* Whether this step's line is shown; if so prints its start ("step i/n", after a carriage
 * return on a terminal). The caller prints its fields (" | ...") and then train_progress_end. */
bool train_progress_begin(const train_progress *ps, int step, int steps, int validated);
void train_progress_end(const train_progress *ps, int step, int steps, int validated, int stopped_early);

/* The progress line of a generative fine-tuning or distillation run (ctx: a train_progress). */
void train_progress_sft(void *ctx, const slm_sft_progress *p);

/* How SFT examples are rendered: the family named by --chat-template, else src's own
 * tokenizer.chat_template (unless --no-chat-template), else raw prompt + separator + completion.
 * Dies (naming cmd) on an unknown family or a --separator given with a template. */
slm_sft_format sft_format_choose(const char *cmd, const slm_gguf *src, const char *template_name, int no_template,
                                 const char *sep, int sep_given, int max_len);
/* The "data: ..." lines after tokenizing (nothing when quiet). */
void sft_data_summary(const slm_sft_data *d, const slm_sft_format *f, int max_len, int quiet);

#endif
