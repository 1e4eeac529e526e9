/* test_chat_template.c: chat template families — detection from Jinja snippets of real models'
 * templates, choosing by name, exact renderings of one conversation per family (the conversation
 * of llama.cpp's tests/test-chat-template.cpp, expected strings derived from llama.cpp's
 * llm_chat_apply_template), the GGUF key, and the errors. */
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "tokenizer/chat_template.h"
#include "util/testutil.h"

static const slm_chat_msg conv[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},
    {"user", "Another question"},
};
#define N_CONV (sizeof conv / sizeof conv[0])

static void expect_render(slm_chat_family f, int add, const char *want) {
    char *out;
    size_t len;
    TU_OK(slm_chat_apply(f, conv, N_CONV, add, &out, &len, tu_err()));
    if (strcmp(out, want)) fail_msg("%s:\n got: [%s]\nwant: [%s]", slm_chat_family_name(f), out, want);
    assert_int_equal(len, strlen(want));
    free(out);
}

static void test_render_each_family(void **state) {
    (void)state;
    expect_render(SLM_CHAT_CHATML, 1,
                  "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
                  "<|im_start|>user\nHello<|im_end|>\n"
                  "<|im_start|>assistant\nHi there<|im_end|>\n"
                  "<|im_start|>user\nWho are you<|im_end|>\n"
                  "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n"
                  "<|im_start|>user\nAnother question<|im_end|>\n"
                  "<|im_start|>assistant\n");
    expect_render(SLM_CHAT_CHATML, 0,
                  "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
                  "<|im_start|>user\nHello<|im_end|>\n"
                  "<|im_start|>assistant\nHi there<|im_end|>\n"
                  "<|im_start|>user\nWho are you<|im_end|>\n"
                  "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n"
                  "<|im_start|>user\nAnother question<|im_end|>\n");
    expect_render(SLM_CHAT_LLAMA3, 1,
                  "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_render(SLM_CHAT_PHI3, 1,
                  "<|system|>\nYou are a helpful assistant<|end|>\n"
                  "<|user|>\nHello<|end|>\n"
                  "<|assistant|>\nHi there<|end|>\n"
                  "<|user|>\nWho are you<|end|>\n"
                  "<|assistant|>\n   I am an assistant   <|end|>\n"
                  "<|user|>\nAnother question<|end|>\n"
                  "<|assistant|>\n");
    expect_render(SLM_CHAT_PHI4, 1,
                  "<|im_start|>system<|im_sep|>You are a helpful assistant<|im_end|>"
                  "<|im_start|>user<|im_sep|>Hello<|im_end|>"
                  "<|im_start|>assistant<|im_sep|>Hi there<|im_end|>"
                  "<|im_start|>user<|im_sep|>Who are you<|im_end|>"
                  "<|im_start|>assistant<|im_sep|>   I am an assistant   <|im_end|>"
                  "<|im_start|>user<|im_sep|>Another question<|im_end|>"
                  "<|im_start|>assistant<|im_sep|>");
    expect_render(SLM_CHAT_LLAMA2, 1,
                  "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>"
                  "[INST] Who are you [/INST]   I am an assistant   </s>"
                  "[INST] Another question [/INST]");
    expect_render(SLM_CHAT_LLAMA2_SYS, 1,
                  "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>"
                  "[INST] Who are you [/INST]   I am an assistant   </s>"
                  "[INST] Another question [/INST]");
    expect_render(SLM_CHAT_LLAMA2_SYS_BOS, 1,
                  "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>"
                  "<s>[INST] Who are you [/INST]   I am an assistant   </s>"
                  "<s>[INST] Another question [/INST]");
    expect_render(SLM_CHAT_LLAMA2_SYS_STRIP, 1,
                  "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>"
                  "[INST] Who are you [/INST]I am an assistant</s>"
                  "[INST] Another question [/INST]");
    expect_render(SLM_CHAT_GEMMA, 1,
                  "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n"
                  "<start_of_turn>model\nHi there<end_of_turn>\n"
                  "<start_of_turn>user\nWho are you<end_of_turn>\n"
                  "<start_of_turn>model\nI am an assistant<end_of_turn>\n"
                  "<start_of_turn>user\nAnother question<end_of_turn>\n"
                  "<start_of_turn>model\n");
    /* no messages: just the generation prompt */
    char *out;
    size_t len;
    TU_OK(slm_chat_apply(SLM_CHAT_CHATML, NULL, 0, 1, &out, &len, tu_err()));
    assert_string_equal(out, "<|im_start|>assistant\n");
    free(out);
    TU_OK(slm_chat_apply(SLM_CHAT_LLAMA3, NULL, 0, 0, &out, &len, tu_err()));
    assert_string_equal(out, "");
    assert_int_equal(len, 0);
    free(out);
}

/* Snippets of the templates real GGUFs carry. */
static void test_detect_from_jinja(void **state) {
    (void)state;
    static const struct { const char *jinja; slm_chat_family want; } cases[] = {
        {"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
         "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] "
         "| trim + '<|eot_id|>' %}{% endfor %}", SLM_CHAT_LLAMA3},
        {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
         "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
         "{{ '<|im_start|>assistant\\n' }}{% endif %}", SLM_CHAT_CHATML},
        {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '<|im_sep|>' + "
         "message['content'] + '<|im_end|>'}}{% endfor %}", SLM_CHAT_PHI4},
        {"{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + "
         "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + "
         "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}"
         "{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}",
         SLM_CHAT_PHI3},
        {"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
         "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}", SLM_CHAT_LLAMA2},
        {"{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
         "messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{% endif %}{{ '[INST] ' + content }}",
         SLM_CHAT_LLAMA2_SYS},
        {"<<SYS>>{% for message in messages %}{{ bos_token + '[INST] ' + message['content'] }}"
         "{% endfor %}", SLM_CHAT_LLAMA2_SYS_BOS},
        {"{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}<<SYS>>",
         SLM_CHAT_LLAMA2_SYS_STRIP},
        {"{{ bos_token }}{% for message in messages %}{{'<start_of_turn>' + role + '\\n' + "
         "message['content'] | trim + '<end_of_turn>\\n'}}{% endfor %}", SLM_CHAT_GEMMA},
        {"llama3", SLM_CHAT_LLAMA3},
        {"chatml", SLM_CHAT_CHATML},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        slm_chat_family f;
        TU_OK(slm_chat_template_detect(cases[i].jinja, &f, tu_err()));
        if (f != cases[i].want)
            fail_msg("case %zu detected as %s, want %s", i, slm_chat_family_name(f),
                     slm_chat_family_name(cases[i].want));
    }
}

static void test_names_and_errors(void **state) {
    (void)state;
    slm_chat_family f;
    TU_OK(slm_chat_family_from_name("phi3", &f, tu_err()));
    assert_int_equal(f, SLM_CHAT_PHI3);
    TU_OK(slm_chat_family_from_name("llama3", &f, tu_err()));
    assert_int_equal(f, SLM_CHAT_LLAMA3);
    assert_string_equal(slm_chat_family_name(SLM_CHAT_CHATML), "chatml");
    slm_err e;
    assert_int_equal(slm_chat_family_from_name("vicuna", &f, &e), SLM_ERR_ARG);
    assert_non_null(strstr(e.msg, "'vicuna'"));
    /* unknown template: named by its first 60 characters */
    static const char unknown[] =
        "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}0123456789abcdefghij";
    assert_int_equal(slm_chat_template_detect(unknown, &f, &e), SLM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endf"));
    assert_null(strstr(e.msg, "0123456789"));
    /* a family llama.cpp knows and slm does not render */
    assert_int_equal(slm_chat_template_detect("<|user|>{{ x }}<|endoftext|>", &f, &e),
                     SLM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "Zephyr"));
    assert_int_equal(slm_chat_template_detect("[SYSTEM_PROMPT] [INST]", &f, &e), SLM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "Mistral"));
    /* bad messages and families */
    slm_chat_msg bad[] = {{"user", NULL}};
    char *out;
    size_t len;
    assert_int_equal(slm_chat_apply(SLM_CHAT_CHATML, bad, 1, 1, &out, &len, &e), SLM_ERR_ARG);
    assert_null(out);
    assert_int_equal(slm_chat_apply(SLM_CHAT_UNKNOWN, conv, 1, 1, &out, &len, &e), SLM_ERR_ARG);
}

static void test_from_gguf(void **state) {
    (void)state;
    const char *path = tu_tmp_path("chat.gguf");
    slm_gguf_writer *w = slm_gguf_writer_new();
    assert_non_null(w);
    TU_OK(slm_gguf_set_str(w, "general.architecture", "llama"));
    TU_OK(slm_gguf_set_str(w, "tokenizer.chat_template",
                           "{% for message in messages %}<|im_start|>{{ message['role'] }}{% endfor %}"));
    TU_OK(slm_gguf_writer_write(w, path, tu_err()));
    slm_gguf_writer_free(w);
    slm_gguf *g = slm_gguf_open(path, tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    slm_chat_family f;
    TU_OK(slm_chat_template_from_gguf(g, &f, tu_err()));
    assert_int_equal(f, SLM_CHAT_CHATML);
    slm_gguf_close(g);
    /* a model without a template: the error names the key */
    slm_err e;
    g = slm_gguf_open("data/models/stories260K/stories260K.gguf", tu_err());
    if (!g) fail_msg("%s", tu_err_last());
    assert_int_equal(slm_chat_template_from_gguf(g, &f, &e), SLM_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "tokenizer.chat_template"));
    slm_gguf_close(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_each_family),
        cmocka_unit_test(test_detect_from_jinja),
        cmocka_unit_test(test_names_and_errors),
        cmocka_unit_test(test_from_gguf),
    };
    return cmocka_run_group_tests_name("chat_template", tests, NULL, NULL);
}
