/* cmd_lora.c: `slm lora` — LoRA adapter operations: `merge` writes base + adapter as one full
 * classify model (W + alpha/r·B·A, F32; quantize it afterwards if wanted). Parses, calls
 * src/task (classify_model.h), prints. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "task/classify_model.h"

static const char usage[] =
    "usage: slm lora merge BASE.gguf ADAPTER.gguf -o MERGED.gguf\n"
    "\n"
    "Merges a classify LoRA adapter (slm finetune --lora) into its base: the output is a full\n"
    "classify model (F32 body W + alpha/r·B·A, the base's tokenizer, the adapter's labels and\n"
    "head) that loads with slm classify and gives the pair's probabilities. A quantized base is\n"
    "dequantized first.\n";

int cmd_lora(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "merge") != 0) cli_die("lora: unknown action '%s' (known: merge)", argv[1]);
    const char *base = NULL, *adapter = NULL, *out = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = cli_value(argc, argv, &i);
        else if (a[0] == '-' && a[1]) cli_die("lora merge: unknown option '%s'", a);
        else if (!base) base = a;
        else if (!adapter) adapter = a;
        else cli_die("lora merge: too many files ('%s')", a);
    }
    if (!base || !adapter || !out) cli_die("lora merge: BASE.gguf ADAPTER.gguf -o MERGED.gguf are required");
    slm_err err;
    if (slm_classify_lora_merge(base, adapter, out, &err) != SLM_OK) cli_fail(&err, "lora merge");
    printf("wrote %s (%s + %s)\n", out, base, adapter);
    return 0;
}
