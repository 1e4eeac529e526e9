/* chat_template.c: chat template families — detection by substrings and rendering (see
 * chat_template.h). Each family's rendering follows llama.cpp's llm_chat_apply_template
 * (src/llama-chat.cpp) line by line, including where it trims contents (Llama 3, Gemma and the
 * "strip" Llama 2 variant trim; ChatML and Phi keep contents as given).
 */
#include "tokenizer/chat_template.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const family_names[] = {
    [SLM_CHAT_UNKNOWN] = "unknown",
    [SLM_CHAT_CHATML] = "chatml",
    [SLM_CHAT_LLAMA2] = "llama2",
    [SLM_CHAT_LLAMA2_SYS] = "llama2-sys",
    [SLM_CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
    [SLM_CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
    [SLM_CHAT_LLAMA3] = "llama3",
    [SLM_CHAT_PHI3] = "phi3",
    [SLM_CHAT_PHI4] = "phi4",
    [SLM_CHAT_GEMMA] = "gemma",
};
#define N_FAMILIES (sizeof family_names / sizeof family_names[0])

const char *slm_chat_family_name(slm_chat_family f) {
    return (unsigned)f < N_FAMILIES ? family_names[f] : "unknown";
}

slm_status slm_chat_family_from_name(const char *name, slm_chat_family *out, slm_err *err) {
    for (size_t i = 1; i < N_FAMILIES; i++)
        if (name && !strcmp(name, family_names[i])) {
            *out = (slm_chat_family)i;
            return SLM_OK;
        }
    *out = SLM_CHAT_UNKNOWN;
    return slm_err_set(err, SLM_ERR_ARG,
                       "chat template '%.60s' is not a known family (chatml, llama2, llama2-sys, "
                       "llama2-sys-bos, llama2-sys-strip, llama3, phi3, phi4, gemma)",
                       name ? name : "(null)");
}

static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* A family llama.cpp recognises but slm does not render. */
static slm_status not_rendered(const char *family, slm_err *err) {
    return slm_err_set(err, SLM_ERR_UNSUPPORTED,
                       "chat template: the %s family is recognised but not supported by slm "
                       "(it renders chatml, llama2*, llama3, phi3, phi4, gemma; choose one by name)",
                       family);
}

slm_status slm_chat_template_detect(const char *t, slm_chat_family *out, slm_err *err) {
    *out = SLM_CHAT_UNKNOWN;
    if (!t) return slm_err_set(err, SLM_ERR_ARG, "chat template: NULL template");
    for (size_t i = 1; i < N_FAMILIES; i++)
        if (!strcmp(t, family_names[i])) {
            *out = (slm_chat_family)i;
            return SLM_OK;
        }
    /* llama.cpp's llm_chat_detect_template, in its order */
    if (has(t, "<|im_start|>")) {
        if (has(t, "<|im_sep|>")) *out = SLM_CHAT_PHI4;
        else if (has(t, "<end_of_utterance>")) return not_rendered("SmolVLM", err);
        else *out = SLM_CHAT_CHATML;
        return SLM_OK;
    }
    if (!strncmp(t, "mistral", 7) || has(t, "[INST]")) {
        if (has(t, "[SYSTEM_PROMPT]")) return not_rendered("Mistral v7", err);
        if (has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]"))
            return not_rendered("Mistral v1/v3", err);
        if (has(t, "content.strip()")) *out = SLM_CHAT_LLAMA2_SYS_STRIP;
        else if (has(t, "bos_token + '[INST]")) *out = SLM_CHAT_LLAMA2_SYS_BOS;
        else if (has(t, "<<SYS>>")) *out = SLM_CHAT_LLAMA2_SYS;
        else *out = SLM_CHAT_LLAMA2;
        return SLM_OK;
    }
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) {
        *out = SLM_CHAT_PHI3;
        return SLM_OK;
    }
    if (has(t, "[gMASK]<sop>")) return not_rendered("ChatGLM4", err);
    if (has(t, "<|assistant|>") && has(t, "<|user|>"))
        return not_rendered(has(t, "</s>") ? "Falcon 3" : "GLM-Edge", err);
    if (has(t, "<|user|>") && has(t, "<|endoftext|>")) return not_rendered("Zephyr", err);
    if (has(t, "bos_token + message['role']")) return not_rendered("Monarch", err);
    if (has(t, "<start_of_turn>")) {
        *out = SLM_CHAT_GEMMA;
        return SLM_OK;
    }
    if (has(t, "GPT4 Correct ")) return not_rendered("OpenChat", err);
    if (has(t, "USER: ") && has(t, "ASSISTANT: ")) return not_rendered("Vicuna", err);
    if (has(t, "### Instruction:") && has(t, "<|EOT|>")) return not_rendered("DeepSeek", err);
    if (has(t, "<|START_OF_TURN_TOKEN|>") && has(t, "<|USER_TOKEN|>"))
        return not_rendered("Command-R", err);
    if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>")) {
        *out = SLM_CHAT_LLAMA3;
        return SLM_OK;
    }
    size_t n = strlen(t);
    return slm_err_set(err, SLM_ERR_UNSUPPORTED,
                       "chat template not recognised: \"%.60s\"%s (choose a family by name: chatml, "
                       "llama3, phi3, ...)", t, n > 60 ? "..." : "");
}

slm_status slm_chat_template_from_gguf(const slm_gguf *g, slm_chat_family *out, slm_err *err) {
    *out = SLM_CHAT_UNKNOWN;
    slm_gguf_str s;
    slm_status st = slm_gguf_get_str(g, "tokenizer.chat_template", &s, err);
    if (st != SLM_OK) return st;
    char *z = malloc((size_t)s.len + 1);
    if (!z) return slm_err_set(err, SLM_ERR_NOMEM, "%s: out of memory", slm_gguf_name(g));
    memcpy(z, s.ptr, (size_t)s.len);
    z[s.len] = 0;
    st = slm_chat_template_detect(z, out, err);
    free(z);
    if (st != SLM_OK) slm_err_prefix(err, "%s: tokenizer.chat_template", slm_gguf_name(g));
    return st;
}

/* ---- rendering ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void put_n(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void put(sbuf *b, const char *s) { put_n(b, s, strlen(s)); }

/* s without leading and trailing isspace characters (llama.cpp's trim). */
static void put_trim(sbuf *b, const char *s) {
    size_t n = strlen(s), i = 0;
    while (i < n && isspace((unsigned char)s[i])) i++;
    while (n > i && isspace((unsigned char)s[n - 1])) n--;
    put_n(b, s + i, n - i);
}

static void trimmed(const char *s, const char **start, size_t *n) {
    size_t e = strlen(s), i = 0;
    while (i < e && isspace((unsigned char)s[i])) i++;
    while (e > i && isspace((unsigned char)s[e - 1])) e--;
    *start = s + i;
    *n = e - i;
}

static void render_llama2(sbuf *b, slm_chat_family f, const slm_chat_msg *m, size_t n) {
    int sys = f != SLM_CHAT_LLAMA2, bos_inside = f == SLM_CHAT_LLAMA2_SYS_BOS;
    int strip = f == SLM_CHAT_LLAMA2_SYS_STRIP, inside = 1;
    put(b, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        const char *c = m[i].content;
        size_t cn = strlen(c);
        if (strip) trimmed(m[i].content, &c, &cn);
        if (!inside) {
            inside = 1;
            put(b, bos_inside ? "<s>[INST] " : "[INST] ");
        }
        if (!strcmp(m[i].role, "system")) {
            if (sys) {
                put(b, "<<SYS>>\n");
                put_n(b, c, cn);
                put(b, "\n<</SYS>>\n\n");
            } else {
                put_n(b, c, cn);
                put(b, "\n");
            }
        } else if (!strcmp(m[i].role, "user")) {
            put_n(b, c, cn);
            put(b, " [/INST]");
        } else {
            put_n(b, c, cn);
            put(b, "</s>");
            inside = 0;
        }
    }
}

static void render_gemma(sbuf *b, const slm_chat_msg *m, size_t n, int add) {
    sbuf sys = {0};
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(m[i].role, "system")) { /* no system turn: merged into the next user turn */
            put_trim(&sys, m[i].content);
            continue;
        }
        const char *role = !strcmp(m[i].role, "assistant") ? "model" : m[i].role;
        put(b, "<start_of_turn>");
        put(b, role);
        put(b, "\n");
        if (sys.len && strcmp(role, "model")) {
            put_n(b, sys.p, sys.len);
            put(b, "\n\n");
            sys.len = 0;
        }
        put_trim(b, m[i].content);
        put(b, "<end_of_turn>\n");
    }
    if (add) put(b, "<start_of_turn>model\n");
    if (sys.oom) b->oom = 1;
    free(sys.p);
}

slm_status slm_chat_apply(slm_chat_family f, const slm_chat_msg *m, size_t n, int add, char **out,
                          size_t *len, slm_err *err) {
    *out = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++)
        if (!m[i].role || !m[i].content)
            return slm_err_set(err, SLM_ERR_ARG, "chat message %zu has no %s", i,
                               m[i].role ? "content" : "role");
    sbuf b = {0};
    put(&b, "");
    switch (f) {
    case SLM_CHAT_CHATML:
        for (size_t i = 0; i < n; i++) {
            put(&b, "<|im_start|>");
            put(&b, m[i].role);
            put(&b, "\n");
            put(&b, m[i].content);
            put(&b, "<|im_end|>\n");
        }
        if (add) put(&b, "<|im_start|>assistant\n");
        break;
    case SLM_CHAT_LLAMA2:
    case SLM_CHAT_LLAMA2_SYS:
    case SLM_CHAT_LLAMA2_SYS_BOS:
    case SLM_CHAT_LLAMA2_SYS_STRIP:
        render_llama2(&b, f, m, n);
        break;
    case SLM_CHAT_LLAMA3:
        for (size_t i = 0; i < n; i++) {
            put(&b, "<|start_header_id|>");
            put(&b, m[i].role);
            put(&b, "<|end_header_id|>\n\n");
            put_trim(&b, m[i].content);
            put(&b, "<|eot_id|>");
        }
        if (add) put(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case SLM_CHAT_PHI3:
        for (size_t i = 0; i < n; i++) {
            put(&b, "<|");
            put(&b, m[i].role);
            put(&b, "|>\n");
            put(&b, m[i].content);
            put(&b, "<|end|>\n");
        }
        if (add) put(&b, "<|assistant|>\n");
        break;
    case SLM_CHAT_PHI4:
        for (size_t i = 0; i < n; i++) {
            put(&b, "<|im_start|>");
            put(&b, m[i].role);
            put(&b, "<|im_sep|>");
            put(&b, m[i].content);
            put(&b, "<|im_end|>");
        }
        if (add) put(&b, "<|im_start|>assistant<|im_sep|>");
        break;
    case SLM_CHAT_GEMMA:
        render_gemma(&b, m, n, add);
        break;
    default:
        free(b.p);
        return slm_err_set(err, SLM_ERR_ARG, "chat template family %d is not one slm renders",
                           (int)f);
    }
    if (b.oom) {
        free(b.p);
        return slm_err_set(err, SLM_ERR_NOMEM, "chat template: out of memory rendering %zu messages",
                           n);
    }
    *out = b.p;
    *len = b.len;
    return SLM_OK;
}
