/* llmsim.c -- the llmsim program: dispatch to a subcommand. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "sim/command.h"

static const struct command *const llmsim_commands[] = {
    &cmd_run_entry,
    &cmd_trace_entry,
    &cmd_hpa_entry,
    &cmd_instances_entry,
    &cmd_tune_entry,
    &cmd_validate_entry,
    NULL,
};

static void llmsim_usage(FILE *f)
{
    const struct command *const *c;

    fprintf(f,
            "usage: llmsim COMMAND [ARGS...]\n"
            "\n"
            "Discrete-event simulator of an LLM-serving cluster: replays a traffic trace\n"
            "through gateways, replicas with continuous batching and a service-time profile,\n"
            "and reports cost, latency and SLO attainment.\n"
            "\n"
            "commands:\n");
    for (c = llmsim_commands; *c != NULL; c++)
        fprintf(f, "  %-10s %s\n", (*c)->name, (*c)->summary);
    fprintf(f,
            "\n"
            "Run 'llmsim COMMAND --help' for a command's options.\n"
            "Environment: LLMSCALE_LOG=error|warn|info|debug sets the log level.\n");
}

int main(int argc, char **argv)
{
    const struct command *const *c;

    log_init("llmsim");
    if (argc < 2) {
        llmsim_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        llmsim_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("llmsim (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
        return 0;
    }
    for (c = llmsim_commands; *c != NULL; c++)
        if (strcmp((*c)->name, argv[1]) == 0)
            return (*c)->exec(argc - 1, argv + 1);
    log_error("unknown command '%s' (try 'llmsim --help')", argv[1]);
    return 2;
}
