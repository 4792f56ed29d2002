/* cmd_generate.c -- PLACEHOLDER until the engine lands. */
#include "config.h"
#include <stdio.h>
#include "server/command.h"
static int generate_exec(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "llmserve generate: not built yet\n"); return 1; }
const struct serve_command cmd_generate_entry = { .name = "generate", .summary = "generate text for one prompt, offline", .exec = generate_exec };
