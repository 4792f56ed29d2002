/* llmbench.c -- the llmbench program: dispatch to a subcommand.
 *
 * llmbench measures the kernels of kernels.h: how fast (time, GFLOP/s, GB/s,
 * the fraction of the machine's roofline, the ratio against OpenBLAS or the
 * plain reference run in the same process) and how correct (error against
 * float64 on a sample of outputs). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "kernels/kernels.h"
#include "kernels/bench.h"

static const struct bench_command *const bench_commands[] = {
    &bench_roofline_entry,
    &bench_matmul_entry,
    &bench_attention_entry,
    &bench_report_entry,
    &bench_model_entry,
    &bench_profile_entry,
    &bench_cuda_entry,
    &bench_calibrate_entry,
    NULL,
};

/* The program's usage and its commands, on F. */
static void llmbench_usage(FILE *f)
{
    const struct bench_command *const *c;

    fprintf(f,
            "usage: llmbench COMMAND [ARGS...]\n"
            "\n"
            "Benchmark the llmscale kernels: speed against OpenBLAS, the plain reference\n"
            "and the hardware roofline; error against float64.\n"
            "\n"
            "commands:\n");
    for (c = bench_commands; *c != NULL; c++)
        fprintf(f, "  %-9s %s\n", (*c)->name, (*c)->summary);
    fprintf(f,
            "\n"
            "Run 'llmbench COMMAND --help' for a command's options.\n"
            "Environment: LLMSCALE_LOG=error|warn|info|debug sets the log level.\n");
}

int main(int argc, char **argv)
{
    const struct bench_command *const *c;

    kn_openmp_defaults(argv);
    log_init("llmbench");
    if (argc < 2) {
        llmbench_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        llmbench_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("llmbench (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
        return 0;
    }
    for (c = bench_commands; *c != NULL; c++)
        if (strcmp((*c)->name, argv[1]) == 0)
            return (*c)->exec(argc - 1, argv + 1);
    log_error("unknown command '%s' (try 'llmbench --help')", argv[1]);
    return 2;
}
