/* sft_data.h: data for generative fine-tuning (`slm finetune --task generate`) — reading
 * prompt/completion and chat JSONL, rendering each example as the model will see it at
 * generation time, and turning it into token ids plus the targets the loss counts.
 *
 * Input lines (slm data prepare writes them; other fields are ignored):
 *   {"prompt": "...", "completion": "..."}
 *   {"messages": [{"role": "system|user|assistant", "content": "..."}, ...]}
 * A line that is not one of these is SLM_ERR_FORMAT naming file:line. Blank lines are skipped.
 *
 * Rendering (what slm generate does with the same prompt, so training and use agree):
 *  - no chat template, prompt/completion: text = prompt + separator + completion, encoded as
 *    plain text (special-token text stays text) after BOS, then EOS. Counted: the completion's
 *    tokens and the EOS. The separator (default none) is stored in the model (slm.sft.separator):
 *    `slm generate -p "PROMPT<separator>"` then continues with the completion.
 *  - with a chat template: prompt/completion becomes a user turn and an assistant turn; chat
 *    messages are rendered as given (up to the last assistant message). The text is encoded with
 *    special tokens (encode_special) after BOS when the vocabulary adds one by default (as
 *    slm generate --chat does). Counted: each assistant turn's content and its end-of-turn token
 *    (the first CONTROL token of the turn's tail, e.g. <|im_end|>); the template text around it
 *    ("<|im_start|>assistant\n", the "\n" after <|im_end|>) is not. No EOS is added: the
 *    end-of-turn token is where slm generate --chat stops. Chat data without a template is an
 *    error (give the model a template, or --chat-template NAME).
 *
 * The mask is computed on the text's own tokenization: the whole text is encoded once, and the
 * text up to each boundary (start and end of every counted span) is encoded alone; when that is a
 * prefix of the whole, the boundary falls at its length. When a BPE merge crosses a boundary
 * (e.g. prompt "abc" + completion "def" with no separator merges "cd"), the example is instead
 * encoded span by span and the pieces concatenated — which is exactly what generation sees (the
 * prompt encoded alone, the completion produced token by token after it).
 *
 * Length: examples are cut to max_len tokens keeping the start; an example with no counted
 * token left is dropped and counted in n_skipped.
 */
#ifndef SLM_TASK_SFT_DATA_H
#define SLM_TASK_SFT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

/* One line of the file, as read: prompt/completion is kept as a user + assistant pair with
 * is_pc = 1. */
typedef struct {
    slm_chat_msg *msgs;   /* (n_msgs) role and content, owned */
    int n_msgs;
    int is_pc;            /* 1: a {"prompt","completion"} line */
    int line;             /* 1-based line in its file */
} slm_sft_record;

/* One tokenized example. */
typedef struct {
    int32_t *ids;         /* (n) token ids: [BOS] rendered text [EOS] */
    int32_t *targets;     /* (n) targets[i] = ids[i+1] when ids[i+1] is counted, else -1 */
    int n;
    int n_counted;        /* targets that are not -1 */
} slm_sft_example;

typedef struct {
    slm_sft_record *rec;  /* (n_rec) as read */
    int n_rec;
    slm_sft_example *ex;  /* (n) after slm_sft_split_tokenize: the examples kept */
    int n;
    int n_skipped;        /* no counted token after the cut */
    int n_cut;            /* kept, but cut to max_len */
    int n_split_encoded;  /* encoded span by span (a merge crossed a boundary) */
    size_t n_tokens, n_counted; /* over the kept examples */
    char path[512];
} slm_sft_split;

typedef struct {
    slm_sft_split train, val;
} slm_sft_data;

/* How examples are rendered (see the header comment). */
typedef struct {
    slm_chat_family family; /* SLM_CHAT_UNKNOWN: no template (raw text) */
    const char *separator;   /* between prompt and completion without a template; NULL: "" */
    int max_len;             /* tokens per example, BOS and EOS included, >= 2 */
} slm_sft_format;

/* Reads one JSONL file. Errors name path:line (SLM_ERR_FORMAT) or the file (SLM_ERR_IO). An
 * empty file is SLM_ERR_FORMAT. */
slm_status slm_sft_split_read(const char *path, slm_sft_split *s, slm_err *err);
/* DIR/train.jsonl and DIR/val.jsonl. */
slm_status slm_sft_data_load(const char *dir, slm_sft_data *d, slm_err *err);

/* Renders and tokenizes one record into ex (fields malloc'd; free with slm_sft_example_free).
 * *split_encoded is set to 1 when the span-by-span fallback was used. Not cut to max_len. */
slm_status slm_sft_encode(const slm_tokenizer *tok, const slm_sft_format *f, const slm_sft_record *r,
                          slm_sft_example *ex, int *split_encoded, slm_err *err);
/* Tokenizes every record of a split (replacing earlier examples), cutting and skipping. Errors
 * name path:line. */
slm_status slm_sft_split_tokenize(slm_sft_split *s, const slm_tokenizer *tok, const slm_sft_format *f,
                                  slm_err *err);
slm_status slm_sft_data_tokenize(slm_sft_data *d, const slm_tokenizer *tok, const slm_sft_format *f,
                                 slm_err *err);

/* 1 when any record is a chat ({"messages"}) line. */
int slm_sft_split_has_chat(const slm_sft_split *s);

void slm_sft_example_free(slm_sft_example *ex);
void slm_sft_split_free(slm_sft_split *s);
void slm_sft_data_free(slm_sft_data *d);

#endif
