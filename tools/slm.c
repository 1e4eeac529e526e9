/* slm.c: the slm command — finds the subcommand and hands it the arguments. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"data", cmd_data, "clean, de-duplicate, scrub and split a CSV/JSONL dataset; write its card"},
    {"info", cmd_info, "show a GGUF file's architecture, metadata and tensors"},
    {"tokenizer", cmd_tokenizer, "train a byte-level BPE tokenizer (slm tokenizer train ...)"},
    {"tokenize", cmd_tokenize, "print the token ids of a text with a GGUF's tokenizer"},
    {"train", cmd_train, "train or fine-tune a Llama-family model on a text corpus"},
    {"finetune", cmd_finetune_task, "fine-tune a task model (--task classify|generate) on prepared JSONL"},
    {"classify", cmd_classify, "label texts with a classify model: label, probability, top-k"},
    {"distill", cmd_distill, "train a small student classifier on a teacher's soft labels"},
    {"prune", cmd_prune, "magnitude pruning (global, per-layer, 2:4) with optional recovery fine-tuning"},
    {"lora", cmd_lora, "LoRA adapters: merge an adapter into its base (slm lora merge)"},
    {"eval", cmd_eval, "accuracy, speed, energy and cost of a classify model beside a baseline; --gate"},
    {"generate", cmd_generate, "generate text from a model, streamed as it is produced"},
    {"quantize", cmd_quantize, "convert a model's tensors to GGUF block formats (q8_0, q4_0, q4_k, q6_k, f16)"},
    {"bench", cmd_bench, "measure prompt and generation speed against the machine's limits"},
    {"perplexity", cmd_perplexity, "perplexity of a model on a text, and KL divergence to a reference"},
};

static void usage(FILE *f) {
    fputs("usage: slm <command> [options]   (slm <command> --help for its options)\n\ncommands:\n", f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "slm: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
