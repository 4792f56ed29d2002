/* cmd_serve.c -- PLACEHOLDER until the HTTP server lands. */
#include "config.h"
#include <stdio.h>
#include "server/command.h"
static int serve_exec(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "llmserve serve: not built yet\n"); return 1; }
const struct serve_command cmd_serve_entry = { .name = "serve", .summary = "serve the OpenAI-compatible HTTP API", .exec = serve_exec };
