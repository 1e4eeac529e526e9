/* tokenizer.h: the tokenizers of GGUF models — byte-level BPE (GPT-2 style, trained here or
 * loaded) and SentencePiece-style vocabularies (Llama 2, TinyLlama, llama2.c's stories models).
 *
 * Byte-level BPE (tokenizer.ggml.model = "gpt2"): text is pre-split with the regex that
 * tokenizer.ggml.pre names (GPT-2's, Llama 3's "llama-bpe", Qwen2's "qwen2", SmolLM's "smollm";
 * PCRE2, Unicode classes), each piece is mapped to bytes and merged by rank. Every byte has a
 * token, so any byte string (invalid UTF-8 included) encodes, and decode(encode(x)) == x. In GGUF
 * the vocabulary is stored the way llama.cpp reads it: tokenizer.ggml.model = "gpt2",
 * tokenizer.ggml.pre, tokenizer.ggml.tokens (byte-to-unicode mapped strings),
 * tokenizer.ggml.token_type, tokenizer.ggml.merges ("a b"), and the special token ids
 * tokenizer.ggml.bos_token_id / eos / padding / unknown.
 *
 * SentencePiece (tokenizer.ggml.model = "llama"): tokens hold U+2581 for spaces, scores, and
 * "<0xNN>" byte tokens; encode adds a space before the text (tokenizer.ggml.add_space_prefix,
 * default true), merges adjacent pieces by highest score as llama.cpp does, and falls back to
 * byte tokens. decode drops that one leading space again (see slm_tokenizer_decode).
 */
#ifndef SLM_TOKENIZER_TOKENIZER_H
#define SLM_TOKENIZER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "gguf/gguf.h"

typedef struct slm_tokenizer slm_tokenizer;

/* Token types as in GGUF (llama.cpp's llama_token_type). */
enum {
    SLM_TOKEN_NORMAL = 1,
    SLM_TOKEN_UNKNOWN = 2,
    SLM_TOKEN_CONTROL = 3,
    SLM_TOKEN_USER_DEFINED = 4,
    SLM_TOKEN_UNUSED = 5,
    SLM_TOKEN_BYTE = 6,
};

typedef struct {
    int vocab_size;      /* total tokens including the 256 bytes and the special tokens */
    size_t max_bytes;    /* train on at most this many bytes of the text (0: all) */
    /* Called now and then during training with (merges done, merges wanted); may be NULL. */
    void (*progress)(void *ctx, int done, int total);
    void *progress_ctx;
} slm_tokenizer_train_opts;

/* Trains a tokenizer on text[0..len). The special tokens <|bos|>, <|eos|>, <|pad|>, <|unk|> are
 * part of the vocabulary (as CONTROL tokens). vocab_size < 256 + 4 (or > 2^24) is SLM_ERR_ARG.
 * When the text has fewer distinct pairs than merges wanted, training stops early and
 * slm_tokenizer_n_vocab reports the smaller size. */
slm_status slm_tokenizer_train(const char *text, size_t len, const slm_tokenizer_train_opts *opts,
                               slm_tokenizer **out, slm_err *err);

/* Loads the tokenizer stored in a GGUF (tokenizer.ggml.model = "gpt2" or "llama"). Any other
 * model ("bert", "t5", ...) or an unknown tokenizer.ggml.pre gets SLM_ERR_UNSUPPORTED naming it. */
slm_tokenizer *slm_tokenizer_load(const slm_gguf *g, slm_err *err);

/* Adds the tokenizer.ggml.* keys to a writer. */
slm_status slm_tokenizer_save(const slm_tokenizer *t, slm_gguf_writer *w, slm_err *err);

void slm_tokenizer_free(slm_tokenizer *t);

int slm_tokenizer_n_vocab(const slm_tokenizer *t);
int32_t slm_tokenizer_bos(const slm_tokenizer *t); /* -1 when the vocabulary has none */
int32_t slm_tokenizer_eos(const slm_tokenizer *t);
int32_t slm_tokenizer_pad(const slm_tokenizer *t);
int32_t slm_tokenizer_unk(const slm_tokenizer *t);

/* Encodes text[0..len) (any bytes). *ids is malloc'd by the callee; the caller frees it.
 * add_bos prepends the BOS token when the vocabulary has one. Special-token text in the input
 * is encoded as ordinary text (never as the control token). */
slm_status slm_tokenizer_encode(const slm_tokenizer *t, const char *text, size_t len, int add_bos,
                                int32_t **ids, size_t *n_ids, slm_err *err);

/* The raw bytes a token stands for (control tokens: empty). *len receives the length.
 * NULL for an id out of range. */
const char *slm_tokenizer_token_bytes(const slm_tokenizer *t, int32_t id, size_t *len);

/* Decodes ids into a malloc'd buffer (NUL-terminated; *len excludes the NUL). Control tokens
 * decode to nothing. An id out of range is SLM_ERR_RANGE.
 * SentencePiece with add_space_prefix: the first token that decodes to anything loses one leading
 * space (the one encode added), so decode(encode(x)) == x with or without BOS. (llama.cpp's
 * detokenizer strips it only when the ids do not start with BOS; slm strips it either way.) */
slm_status slm_tokenizer_decode(const slm_tokenizer *t, const int32_t *ids, size_t n_ids, char **out,
                                size_t *len, slm_err *err);

/* ---- added with the implementation (compatible additions) ---- */

/* Opens a GGUF, loads its tokenizer and closes the file (the tokenizer keeps copies). */
slm_tokenizer *slm_tokenizer_load_file(const char *path, slm_err *err);

/* Writes a vocabulary-only GGUF atomically: general.architecture = "llama", general.name,
 * llama.vocab_size and the tokenizer.ggml.* keys of slm_tokenizer_save. (llama.cpp loads the
 * tokenizer keys from any model file; a vocabulary-only file lacks the llama.* hyperparameters
 * it also requires, so it is for slm's own use, e.g. `slm train --tokenizer`.) */
slm_status slm_tokenizer_save_file(const slm_tokenizer *t, const char *path, slm_err *err);

/* The token's type (SLM_TOKEN_*), or 0 for an id out of range. */
int slm_tokenizer_token_type(const slm_tokenizer *t, int32_t id);

/* The token's text as stored in GGUF (byte-to-unicode mapped form, e.g. "Ġthe"); NULL out of
 * range. Not NUL-terminated. */
const char *slm_tokenizer_token_text(const slm_tokenizer *t, int32_t id, size_t *len);

/* Number of merges (ranks) in the vocabulary. */
int slm_tokenizer_n_merges(const slm_tokenizer *t);

/* tokenizer.ggml.add_bos_token: whether this vocabulary's models expect a BOS at the start
 * (trained here: 1; loaded: the file's value, default 0 as in llama.cpp for gpt2). encode only
 * adds one when its add_bos argument says so. */
int slm_tokenizer_add_bos_default(const slm_tokenizer *t);

/* As slm_tokenizer_encode, but text spelling a CONTROL or USER_DEFINED token ("<|im_start|>",
 * "<|eot_id|>", "<s>") becomes that token (the longest such text at the leftmost place), as
 * llama.cpp's tokenizer with parse_special. For prompts rendered by a chat template
 * (chat_template.h); never for untrusted text that should stay text. SentencePiece: the text
 * after a special token gets the space prefix again, as llama.cpp does. */
slm_status slm_tokenizer_encode_special(const slm_tokenizer *t, const char *text, size_t len,
                                        int add_bos, int32_t **ids, size_t *n_ids, slm_err *err);

/* 1 when the vocabulary is SentencePiece-style with add_space_prefix: the first generated piece
 * after BOS (no text before it) should drop one leading space, as slm_tokenizer_decode does;
 * slm_tokenizer_token_bytes itself always includes the space. 0 otherwise. */
int slm_tokenizer_add_space_prefix(const slm_tokenizer *t);

/* "gpt2" or "llama" (tokenizer.ggml.model), and tokenizer.ggml.pre ("gpt-2", "llama-bpe", ...). */
const char *slm_tokenizer_model_name(const slm_tokenizer *t);
const char *slm_tokenizer_pre_name(const slm_tokenizer *t);

#endif
