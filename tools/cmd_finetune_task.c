/* cmd_finetune_task.c: `slm finetune` chooses its trainer by --task: classify (cmd_finetune.c)
 * or generate (cmd_finetune_generate.c). Both read the same argument list. */
#include <string.h>

#include "cli.h"

int cmd_finetune_task(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--task") && !strcmp(argv[i + 1], "generate"))
            return cmd_finetune_generate(argc, argv);
    return cmd_finetune(argc, argv);
}
