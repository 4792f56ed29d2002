/* cmd_tokenize.c -- PLACEHOLDER until the tokenizer lands. */
#include "config.h"
#include <stdio.h>
#include "server/command.h"
static int tokenize_exec(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "llmserve tokenize: not built yet\n"); return 1; }
const struct serve_command cmd_tokenize_entry = { .name = "tokenize", .summary = "print the token ids of a text", .exec = tokenize_exec };
const struct serve_command cmd_detokenize_entry = { .name = "detokenize", .summary = "print the text of token ids", .exec = tokenize_exec };
