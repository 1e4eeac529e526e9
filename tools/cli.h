/* cli.h: what the slm command's subcommands share — the command table and argument helpers.
 *
 * The CLI parses arguments, calls the library and prints; it holds no logic of its own. It is
 * the only place allowed to exit: cli_die prints "slm <cmd>: <message>" and exits with status 2
 * (bad usage or input); a library error is printed with cli_fail and exits with status 1.
 */
#ifndef SLM_TOOLS_CLI_H
#define SLM_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/threads.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* Subcommands: argv[0] is the subcommand's name. Each returns the process exit status. */
int cmd_info(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_finetune_generate(int argc, char **argv);
int cmd_finetune_task(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_lora(int argc, char **argv);
int cmd_distill(int argc, char **argv);

/* Prints "slm: <message>" to stderr and exits 2. */
void cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Prints "slm: <what>: <err->msg>" to stderr and exits 1. */
void cli_fail(const slm_err *err, const char *what) __attribute__((noreturn));

bool cli_is_help(const char *arg);
/* The value after option argv[*i] (advances *i); dies naming the option when it is missing. */
const char *cli_value(int argc, char **argv, int *i);
/* Parses s as an integer / a number within [min, max]; dies naming opt when it is not. */
long cli_long(const char *opt, const char *s, long min, long max);
double cli_double(const char *opt, const char *s, double min, double max);
/* A copy of s (malloc'd) with the two-character escapes \n, \t and \\ turned into a newline, a
 * tab and a backslash (a --separator given on the command line). */
char *cli_unescape(const char *s);
/* The library's thread pool for a command (threads <= 0: one per core), OpenBLAS kept to one
 * thread since the pool splits every matrix product; dies naming the problem. */
slm_pool *cli_pool(int threads);
/* "on" -> 1, "off" -> 0; dies naming opt otherwise. */
int cli_on_off(const char *opt, const char *s);

/* Prints s[0..n) to stdout in double quotes: valid UTF-8 as is; quotes, backslashes, control
 * characters and invalid bytes escaped (\n, \t, \r, \xNN). With max > 0, stops after max
 * source bytes at a character boundary and ends with "...". */
void cli_print_quoted(const char *s, size_t n, size_t max);

/* A model file opened for inference: the mapped GGUF, its tokenizer and its model (weights read
 * where they lie). cli_open_model dies with the file's name on any error. */
typedef struct {
    slm_gguf *g;
    slm_tokenizer *tok;
    slm_model *m;
} cli_model;
void cli_open_model(const char *path, cli_model *cm);
void cli_close_model(cli_model *cm);

#endif
