/* cmd_generate.c: `slm generate` — sample text from a model, streamed to stdout as it comes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/file.h"
#include "generate/generate.h"
#include "model/forward.h"
#include "tokenizer/chat_template.h"
#include "kernels/blas_threads.h"

static const char usage[] =
    "usage: slm generate MODEL.gguf [-p PROMPT | --file PROMPT.txt] [options]\n"
    "\n"
    "Generates text after the prompt (which follows BOS; an empty prompt starts from BOS alone)\n"
    "and streams it to standard output as tokens arrive.\n"
    "\n"
    "  -p, --prompt TEXT      the prompt                                 [\"\"]\n"
    "  --file FILE            read the prompt from a file\n"
    "  -n, --max-tokens N     tokens to generate at most                 [256]\n"
    "  --temp X               temperature; 0 = greedy                    [0.8]\n"
    "  --top-k N              keep the N likeliest tokens; 0 = all       [40]\n"
    "  --top-p X              keep the smallest set with mass X          [0.95]\n"
    "  --repeat-penalty X     penalise recent tokens; 1 = off            [1.0]\n"
    "  --repeat-last-n N      how many recent tokens to penalise         [64]\n"
    "  --seed N               sampling seed                              [1]\n"
    "  --stop TEXT            stop before this text (repeatable; \\n and \\t understood)\n"
    "  --ignore-eos           keep going past the end-of-text token\n"
    "  --ctx N                context length (default: the model's)\n"
    "  --truncate             keep the end of a prompt too long for the context (else an error)\n"
    "  --threads N            threads (default: all cores)\n"
    "  --kv-type T            KV cache element type, f32 or f16 (half the cache memory;\n"
    "                         keys and values rounded to half precision)   [f32]\n"
    "  --chat                 the prompt is a user message: render it with the model's chat\n"
    "                         template (tokenizer.chat_template: Llama 3, ChatML/Qwen, Phi-3,\n"
    "                         Llama 2, Gemma) and answer as the assistant\n"
    "  --system TEXT          with --chat: a system message first\n"
    "  --chat-template NAME   with --chat: use this family (chatml, llama3, phi3, ...) instead\n"
    "  --echo                 print the prompt before the generated text\n"
    "  --stats                print token counts and speeds to stderr\n";

static int write_out(void *ctx, const char *text, size_t len) {
    (void)ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* Turns the two-character escapes \n, \t and \\ into their bytes, in place. */
static char *unescape(char *s) {
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1]) {
            p++;
            *o++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return s;
}

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *prompt = "", *prompt_file = NULL;
    const char *stops[16];
    int n_stop = 0, threads = 0, echo = 0, stats_flag = 0, chat = 0;
    const char *system_msg = NULL, *template_name = NULL;
    slm_sampler_params sp;
    slm_sampler_params_default(&sp);
    slm_generate_opts go = {.max_tokens = 256, .stop_at_eos = 1, .kv_type = SLM_GGML_F32};
    slm_err kv_err;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--file")) prompt_file = cli_value(argc, argv, &i);
        else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) go.max_tokens = (int)cli_long(a, cli_value(argc, argv, &i), 0, 1 << 24);
        else if (!strcmp(a, "--temp")) sp.temperature = (float)cli_double(a, cli_value(argc, argv, &i), 0, 100);
        else if (!strcmp(a, "--top-k")) sp.top_k = (int)cli_long(a, cli_value(argc, argv, &i), 0, 1 << 24);
        else if (!strcmp(a, "--top-p")) sp.top_p = (float)cli_double(a, cli_value(argc, argv, &i), 1e-6, 1);
        else if (!strcmp(a, "--repeat-penalty")) sp.repeat_penalty = (float)cli_double(a, cli_value(argc, argv, &i), 1e-3, 100);
        else if (!strcmp(a, "--repeat-last-n")) sp.repeat_last_n = (int)cli_long(a, cli_value(argc, argv, &i), 0, 1 << 20);
        else if (!strcmp(a, "--seed")) sp.seed = (uint64_t)cli_long(a, cli_value(argc, argv, &i), 0, 0x7fffffffL);
        else if (!strcmp(a, "--stop")) {
            if (n_stop == 16) cli_die("--stop: at most 16 stop strings");
            stops[n_stop++] = unescape((char *)cli_value(argc, argv, &i));
        } else if (!strcmp(a, "--ignore-eos")) go.stop_at_eos = 0;
        else if (!strcmp(a, "--ctx")) go.ctx_len = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1 << 24);
        else if (!strcmp(a, "--threads")) threads = (int)cli_long(a, cli_value(argc, argv, &i), 1, 1024);
        else if (!strcmp(a, "--kv-type")) {
            if (slm_kv_type_from_name(cli_value(argc, argv, &i), &go.kv_type, &kv_err) != SLM_OK) cli_fail(&kv_err, a);
        } else if (!strcmp(a, "--echo")) echo = 1;
        else if (!strcmp(a, "--chat")) chat = 1;
        else if (!strcmp(a, "--system")) system_msg = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--chat-template")) template_name = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--stats")) stats_flag = 1;
        else if (a[0] == '-' && a[1]) cli_die("generate: unknown option '%s' (see slm generate --help)", a);
        else if (!model_path) model_path = a;
        else cli_die("generate: one model only (got '%s' and '%s')", model_path, a);
    }
    if (!model_path) cli_die("generate: which model? (usage: slm generate MODEL.gguf -p TEXT)");
    go.stop = stops;
    go.n_stop = n_stop;

    slm_err err;
    char *file_prompt = NULL;
    size_t prompt_len = strlen(prompt);
    if (prompt_file) {
        if (slm_file_read_all(prompt_file, &file_prompt, &prompt_len, &err) != SLM_OK) cli_fail(&err, "--file");
        prompt = file_prompt;
    }
    slm_blas_set_threads(threads);
    slm_pool *pool = slm_pool_new(threads, &err);
    if (!pool) cli_fail(&err, "threads");
    cli_model cm;
    cli_open_model(model_path, &cm);
    slm_gguf *g = cm.g;
    slm_tokenizer *tok = cm.tok;
    slm_model *m = cm.m;

    char *rendered = NULL;
    if ((system_msg || template_name) && !chat) cli_die("generate: --system and --chat-template go with --chat");
    if (chat) {
        slm_chat_family fam;
        slm_status cs = template_name ? slm_chat_family_from_name(template_name, &fam, &err)
                                      : slm_chat_template_from_gguf(g, &fam, &err);
        if (cs != SLM_OK) cli_fail(&err, template_name ? "--chat-template" : "--chat");
        slm_chat_msg msgs[2];
        size_t n_msgs = 0;
        if (system_msg) msgs[n_msgs++] = (slm_chat_msg){"system", system_msg};
        msgs[n_msgs++] = (slm_chat_msg){"user", prompt};
        if (slm_chat_apply(fam, msgs, n_msgs, 1, &rendered, &prompt_len, &err) != SLM_OK) cli_fail(&err, "--chat");
        prompt = rendered;
        go.chat = 1;
    }
    if (echo) write_out(NULL, prompt, prompt_len);
    slm_generate_stats st;
    if (slm_generate(m, tok, prompt, prompt_len, &sp, &go, pool, write_out, NULL, &st, &err) != SLM_OK)
        cli_fail(&err, "generate");
    fputc('\n', stdout);
    fflush(stdout); /* before the statistics on stderr */
    if (stats_flag)
        fprintf(stderr, "prompt: %d tokens in %.1f ms (%.1f tok/s); generated: %d tokens in %.3f s "
                "(%.1f tok/s); stopped by %s\n", st.prompt_tokens, st.prompt_s * 1e3,
                st.prompt_s > 0 ? st.prompt_tokens / st.prompt_s : 0.0, st.generated_tokens, st.generate_s,
                st.generate_s > 0 ? st.generated_tokens / st.generate_s : 0.0, st.stopped_by);
    cli_close_model(&cm);
    slm_pool_free(pool);
    free(file_prompt);
    free(rendered);
    return 0;
}
