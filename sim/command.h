/* command.h -- llmsim subcommands.  Each lives in its own cmd_NAME.c and is
 * described by one table entry; llmsim.c dispatches on the first argument. */
#ifndef LLM_COMMAND_H
#define LLM_COMMAND_H

struct command {
    const char *name;    /* "run" */
    const char *summary; /* one line for `llmsim --help` */
    /* argv[0] is the command name; returns the process exit status
     * (0 ok, 1 failure, 2 bad input or usage). */
    int (*exec)(int argc, char **argv);
};

extern const struct command cmd_run_entry;
extern const struct command cmd_trace_entry;
extern const struct command cmd_hpa_entry;
extern const struct command cmd_instances_entry;
extern const struct command cmd_tune_entry;
extern const struct command cmd_validate_entry;

#endif
