/* cmd_finetune_generate.c: `slm finetune --task generate` — supervised fine-tuning of a language
 * model on prompt/completion or chat JSONL with the loss on the completion only (src/task/sft).
 * Takes the same argv as `slm finetune` (which hands over when --task generate is given).
 * Parses, calls the library, prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train_args.h"
#include "core/timer.h"
#include "model/model.h"
#include "task/sft.h"
#include "task/sft_data.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

int cmd_finetune_generate(int argc, char **argv);

static const char usage[] =
    "usage: slm finetune --task generate --data DIR --init BASE.gguf -o OUT.gguf [options]\n"
    "\n"
    "Supervised fine-tuning of a language model on DIR/train.jsonl, validating on DIR/val.jsonl.\n"
    "Lines are {\"prompt\": ..., \"completion\": ...} or {\"messages\": [{\"role\": \"system|user|assistant\",\n"
    "\"content\": ...}, ...]} (slm data prepare). The loss counts only the completion: the completion's\n"
    "tokens and EOS, or each assistant turn's content and its end-of-turn token.\n"
    "\n"
    "Rendering: with a chat template (the base's tokenizer.chat_template, or --chat-template) a\n"
    "prompt/completion pair becomes a user turn and an assistant turn, and the result is used with\n"
    "`slm generate OUT.gguf --chat -p PROMPT`. Without one the text is BOS prompt SEPARATOR completion\n"
    "EOS, used with `slm generate OUT.gguf -p \"PROMPT<separator>\"`. Chat data needs a template.\n"
    "\n"
    "model (one of):\n"
    "  --init BASE.gguf       a llama-architecture base (F32/F16 weights; its tokenizer and template)\n"
    "  --preset NAME          a new random model (tiny, small, medium, base) -- for tests\n"
    "    --tokenizer TOK.gguf   its tokenizer (required with --preset)\n"
    "  --chat-template NAME   render with this family (chatml, llama3, phi3, phi4, gemma, llama2, ...)\n"
    "                         instead of the base's; written into the output model when it had none\n"
    "  --no-chat-template     ignore the base's template: raw prompt/completion text\n"
    "  --separator TEXT       between prompt and completion without a template (\\n for a newline) [none]\n"
    "\n"
    "training:\n"
    "  --epochs X             passes over the training set                         [3]\n"
    "  --steps N              optimizer steps (overrides --epochs)\n"
    "  --batch B              examples per micro-batch                             [8]\n"
    "  --accum N              micro-batches per step (gradient accumulation)       [1]\n"
    "  --max-len N            tokens per example, BOS/EOS included; longer ones keep their start,\n"
    "                         ones with no completion token left are skipped     [256, <= context]\n"
    "  --lr X, --lr-min X     peak and final learning rate (cosine)  [1e-4 --init, 1e-3 --preset; 1e-5]\n"
    "  --warmup N             linear warmup steps                                  [6% of steps]\n"
    "  --wd X                 AdamW weight decay (matrices only)                   [0.01]\n"
    "  --clip X               gradient norm clip, 0 = off                          [1]\n"
    "  --dropout P            dropout on the model's attention outputs and feed-forward\n"
    "                         activations while training (a regulariser)           [0]\n"
    "  --seed N               example order (and a --preset model's weights)       [1]\n"
    "\n"
    "validation (loss on completion tokens only):\n"
    "  --eval-every N         validate every N steps (0: once per epoch), and at the end [0]\n"
    "  --patience N           early stop after N validations without gain; the best validated\n"
    "                         model is the one written                             [0 = off]\n"
    "\n"
    "output:\n"
    "  -o, --out FILE         the model (GGUF: llama weights, tokenizer, chat template, slm.task =\n"
    "                         \"generate\", slm.train.*); loads in slm generate and llama.cpp\n"
    "  --log FILE             JSON lines: step, epoch, loss, val_loss, lr, grad_norm, tokens_per_s\n"
    "  --threads N            threads (default: all cores)\n"
    "  --quiet                no progress line\n"
    "\n"
    "Not available yet for --task generate: --resume and --checkpoint.\n";


int cmd_finetune_generate(int argc, char **argv) {
    const char *dir = NULL, *task = NULL, *preset = NULL, *tok_path = NULL, *init = NULL, *out = NULL;
    const char *log_path = NULL, *template_name = NULL, *sep_arg = NULL;
    int threads = 0, quiet = 0, lr_given = 0, no_template = 0;
    slm_sft_opts o;
    slm_sft_opts_default(&o);
    const train_args ta = {.steps = &o.steps, .epochs = &o.epochs, .batch = &o.batch, .accum = &o.accum,
                           .accum_max = 65536, .max_len = &o.max_len, .max_len_min = 2, .lr = &o.lr,
                           .lr_given = &lr_given, .lr_min = &o.lr_min, .warmup = &o.warmup,
                           .weight_decay = &o.adam.weight_decay, .grad_clip = &o.grad_clip,
                           .dropout = &o.dropout, .eval_every = &o.eval_every, .patience = &o.patience, .seed = &o.seed,
                           .threads = &threads, .quiet = &quiet};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (train_args_parse(&ta, argc, argv, &i)) {
        } else if (!strcmp(a, "--data")) dir = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--task")) task = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--preset")) preset = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--tokenizer")) tok_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--init")) init = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--chat-template")) template_name = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--no-chat-template")) no_template = 1;
        else if (!strcmp(a, "--separator")) sep_arg = cli_value(argc, argv, &i);
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--log")) log_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--resume") || !strcmp(a, "--checkpoint") || !strcmp(a, "--checkpoint-every"))
            cli_die("finetune: %s is not available yet for --task generate", a);
        else cli_die("finetune: unknown option '%s' for --task generate (see slm finetune --task generate --help)", a);
    }
    if (task && strcmp(task, "generate") != 0) cli_die("finetune: cmd_finetune_generate got --task %s", task);
    if (!dir) cli_die("finetune: --data DIR is required (see slm finetune --task generate --help)");
    if (!out) cli_die("finetune: -o OUT.gguf is required (see slm finetune --task generate --help)");
    if (init && (preset || tok_path)) cli_die("finetune: give --init BASE.gguf or --preset with --tokenizer, not both");
    if (!init && !tok_path) cli_die("finetune: --task generate needs --init BASE.gguf (or --preset NAME --tokenizer TOK.gguf)");
    if (template_name && no_template) cli_die("finetune: --chat-template and --no-chat-template contradict each other");
    if (!init && !lr_given) o.lr = 1e-3f;
    if (o.lr_min > o.lr) o.lr_min = o.lr;
    char *sep = cli_unescape(sep_arg ? sep_arg : "");

    slm_err err;
    slm_pool *pool = cli_pool(threads);

    slm_sft_data data;
    if (slm_sft_data_load(dir, &data, &err) != SLM_OK) cli_fail(&err, "reading --data");

    const char *src_path = init ? init : tok_path;
    slm_gguf *src = slm_gguf_open(src_path, &err);
    if (!src) cli_fail(&err, src_path);
    slm_tokenizer *tok = slm_tokenizer_load(src, &err);
    if (!tok) cli_fail(&err, src_path);

    slm_sft_format f = sft_format_choose("finetune", src, template_name, no_template, sep, sep_arg != NULL, o.max_len);

    slm_model *m;
    if (init) {
        m = slm_model_load(src, &err);
        if (!m) cli_fail(&err, src_path);
        if (o.max_len > m->cfg.ctx_len) {
            if (!quiet) fprintf(stderr, "max-len: %d is beyond the model's context; using %d\n", o.max_len, m->cfg.ctx_len);
            o.max_len = f.max_len = m->cfg.ctx_len;
        }
    } else {
        slm_model_config cfg;
        if (slm_model_preset(preset ? preset : "tiny", slm_tokenizer_n_vocab(tok), o.max_len, &cfg, &err) != SLM_OK)
            cli_fail(&err, "--preset");
        m = slm_model_new(&cfg, &err);
        if (!m) cli_fail(&err, "creating the model");
        slm_model_init_random(m, o.seed);
    }
    if (slm_sft_data_tokenize(&data, tok, &f, &err) != SLM_OK) cli_fail(&err, "tokenizing --data");
    sft_data_summary(&data, &f, o.max_len, quiet);
    slm_sft *t = slm_sft_new(m, tok, &data, &o, pool, &err);
    if (!t) cli_fail(&err, "finetune");
    if (log_path && slm_sft_set_log(t, log_path, &err) != SLM_OK) cli_fail(&err, "--log");
    train_progress ps;
    train_progress_init(&ps, quiet, slm_sft_steps(t));
    slm_sft_set_callback(t, train_progress_sft, &ps);
    if (!quiet)
        fprintf(stderr, "model: %d layers, dim %d, %d heads, hidden %d, vocab %d: %.2fM parameters; %d steps of "
                "%d x %d examples (max %d tokens)\n", m->cfg.n_layers, m->cfg.dim, m->cfg.n_heads, m->cfg.hidden_dim,
                m->cfg.n_vocab, (double)m->n_params / 1e6, slm_sft_steps(t), o.accum, o.batch, o.max_len);
    double t0 = slm_time_now();
    if (slm_sft_run(t, &err) != SLM_OK) cli_fail(&err, "finetune");
    /* the base's own template when it was used; else the family chosen by name */
    slm_sft_save_info info = {.base = !template_name && !no_template ? src : NULL, .separator = sep,
                              .chat_template = f.family != SLM_CHAT_UNKNOWN ? slm_chat_family_name(f.family) : NULL};
    if (slm_sft_save(t, &info, out, &err) != SLM_OK) cli_fail(&err, out);
    if (!quiet)
        fprintf(stderr, "wrote %s after %d steps in %.1fs: validation loss %.4f (completion tokens)\n", out,
                slm_sft_step(t), slm_time_now() - t0, slm_sft_val_loss(t));
    slm_sft_free(t);
    slm_model_free(m);
    slm_tokenizer_free(tok);
    slm_sft_data_free(&data);
    slm_gguf_close(src);
    slm_pool_free(pool);
    free(sep);
    return 0;
}
