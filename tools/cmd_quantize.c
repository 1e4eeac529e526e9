/* cmd_quantize.c: placeholder until the subcommand lands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_quantize(int argc, char **argv) {
    if (argc > 1 && cli_is_help(argv[1])) {
        printf("usage: slm %s ... (not built yet)\n", argv[0]);
        return 0;
    }
    fprintf(stderr, "slm: %s: not built yet\n", argv[0]);
    return 2;
}
