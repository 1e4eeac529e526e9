/* chat_template.h: chat prompts for instruction-tuned models — recognising the family of a GGUF's
 * tokenizer.chat_template (a Jinja string) and rendering a conversation the way that family's
 * template does.
 *
 * Not a Jinja interpreter: like llama.cpp's llm_chat_detect_template, a template is recognised
 * by distinctive substrings (Llama 3 "<|start_header_id|>", ChatML/Qwen "<|im_start|>", Phi-3
 * "<|assistant|>" + "<|end|>", Llama 2 "[INST]", Gemma "<start_of_turn>"), checked in llama.cpp's
 * order, and rendered by hand-written code that produces exactly what llama.cpp's
 * llm_chat_apply_template produces for it (src/llama-chat.cpp). Families llama.cpp knows but slm
 * does not render (Mistral, Zephyr, Command-R, ...) are SLM_ERR_UNSUPPORTED naming the family.
 *
 * BOS: no rendered text starts with a BOS; encode the result with the vocabulary's add_bos
 * default (slm_tokenizer_add_bos_default), as llama.cpp does. The one exception is inside the
 * history of "llama2-sys-bos", where "<s>" is written as text, as in llama.cpp.
 */
#ifndef SLM_TOKENIZER_CHAT_TEMPLATE_H
#define SLM_TOKENIZER_CHAT_TEMPLATE_H

#include <stddef.h>

#include "core/error.h"
#include "gguf/gguf.h"

typedef enum {
    SLM_CHAT_UNKNOWN = 0,
    SLM_CHAT_CHATML,           /* "chatml": <|im_start|>role\ncontent<|im_end|>\n (Qwen, SmolLM) */
    SLM_CHAT_LLAMA2,           /* "llama2": [INST] ... [/INST], system as a plain first line */
    SLM_CHAT_LLAMA2_SYS,       /* "llama2-sys": with <<SYS>> */
    SLM_CHAT_LLAMA2_SYS_BOS,   /* "llama2-sys-bos": <s> before each later [INST] */
    SLM_CHAT_LLAMA2_SYS_STRIP, /* "llama2-sys-strip": contents trimmed */
    SLM_CHAT_LLAMA3,           /* "llama3": <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    SLM_CHAT_PHI3,             /* "phi3": <|role|>\ncontent<|end|>\n */
    SLM_CHAT_PHI4,             /* "phi4": <|im_start|>role<|im_sep|>content<|im_end|> */
    SLM_CHAT_GEMMA,            /* "gemma": <start_of_turn>user|model\n...<end_of_turn>\n */
} slm_chat_family;

typedef struct {
    const char *role;    /* "system", "user", "assistant" (others are written as given) */
    const char *content; /* NUL-terminated */
} slm_chat_msg;

/* The family's name ("chatml", "llama3", ...; "unknown" for SLM_CHAT_UNKNOWN). */
const char *slm_chat_family_name(slm_chat_family f);

/* A family by its name (the names above, as llama.cpp's --chat-template takes them).
 * Unknown name: SLM_ERR_ARG listing the names. */
slm_status slm_chat_family_from_name(const char *name, slm_chat_family *out, slm_err *err);

/* Recognises a Jinja template (or a family name). Unrecognised, or a family slm does not render:
 * SLM_ERR_UNSUPPORTED naming the family or quoting the template's first 60 characters. */
slm_status slm_chat_template_detect(const char *jinja, slm_chat_family *out, slm_err *err);

/* Reads tokenizer.chat_template from a GGUF and recognises it. Absent key: SLM_ERR_FORMAT
 * naming it (choose a family by name instead). */
slm_status slm_chat_template_from_gguf(const slm_gguf *g, slm_chat_family *out, slm_err *err);

/* Renders msgs[0..n) in the family's format; add_assistant appends the opening of the
 * assistant's turn (Jinja's add_generation_prompt; the Llama 2 family has none). *out is
 * malloc'd, NUL-terminated, *len without the NUL. A NULL role or content is SLM_ERR_ARG. */
slm_status slm_chat_apply(slm_chat_family f, const slm_chat_msg *msgs, size_t n, int add_assistant,
                          char **out, size_t *len, slm_err *err);

#endif
