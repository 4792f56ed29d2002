/* command.h -- llmserve subcommands.  Each lives in its own cmd_NAME.c and
 * is one table entry in llmserve.c; `llmserve --model M ...` with no command
 * means `llmserve serve`. */
#ifndef LLM_SERVE_COMMAND_H
#define LLM_SERVE_COMMAND_H

struct serve_command {
    const char *name;    /* "generate" */
    const char *summary; /* one line for `llmserve --help` */
    /* argv[0] is the command name; returns the exit status (0 ok, 1 failure,
     * 2 bad input or usage). */
    int (*exec)(int argc, char **argv);
};

extern const struct serve_command cmd_serve_entry;
extern const struct serve_command cmd_generate_entry;
extern const struct serve_command cmd_tokenize_entry;
extern const struct serve_command cmd_detokenize_entry;

#endif
