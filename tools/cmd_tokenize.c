/* cmd_tokenize.c: placeholder until the subcommand lands. */
#include <stdio.h>

#include "cli.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "slm: %s: not built yet\n", argv[0]);
    return 2;
}
