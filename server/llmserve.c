/* llmserve.c -- the llmserve program: dispatch to a subcommand. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "kernels/kernels.h"
#include "server/command.h"

static const struct serve_command *const llmserve_commands[] = {
    &cmd_serve_entry,
    &cmd_generate_entry,
    &cmd_tokenize_entry,
    &cmd_detokenize_entry,
    NULL,
};

static void llmserve_usage(FILE *f)
{
    const struct serve_command *const *c;

    fprintf(f,
            "usage: llmserve [COMMAND] [ARGS...]\n"
            "\n"
            "Reference LLM inference server: a Llama-architecture model on llmscale's own\n"
            "kernels, behind an OpenAI-compatible HTTP API.  Without a command (options\n"
            "first, as in 'llmserve --model M'), runs 'serve'.\n"
            "\n"
            "commands:\n");
    for (c = llmserve_commands; *c != NULL; c++)
        fprintf(f, "  %-11s %s\n", (*c)->name, (*c)->summary);
    fprintf(f,
            "\n"
            "Run 'llmserve COMMAND --help' for a command's options.\n"
            "Environment: LLMSCALE_LOG=error|warn|info|debug sets the log level.\n");
}

int main(int argc, char **argv)
{
    const struct serve_command *const *c;

    kn_openmp_defaults(argv);
    log_init("llmserve");
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        llmserve_usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("llmserve (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-')
        return cmd_serve_entry.exec(argc, argv); /* argv[0] stands for "serve" */
    for (c = llmserve_commands; *c != NULL; c++)
        if (strcmp((*c)->name, argv[1]) == 0)
            return (*c)->exec(argc - 1, argv + 1);
    log_error("unknown command '%s' (try 'llmserve --help')", argv[1]);
    return 2;
}
