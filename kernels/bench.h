/* bench.h -- llmbench: its subcommands and the helpers they share.
 *
 * Each subcommand lives in its own bench_NAME.c and is described by one
 * table entry; llmbench.c dispatches on the first argument.  bench_util.c
 * holds what they share: timing, inputs rotated through more memory than
 * the last-level cache holds, argument parsing, table printing and JSON
 * output.  JSON files are what `llmbench report` reads back; every one holds
 * {"tool": "llmbench", "command": NAME, "host": {...}, "threads": N,
 * "results": [...]}. */
#ifndef LLM_BENCH_H
#define LLM_BENCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"

struct bench_command {
    const char *name;    /* "matmul" */
    const char *summary; /* one line for `llmbench --help` */
    /* argv[0] is the command name; returns the process exit status
     * (0 ok, 1 failure, 2 bad input or usage). */
    int (*exec)(int argc, char **argv);
};

extern const struct bench_command bench_roofline_entry;
extern const struct bench_command bench_matmul_entry;
extern const struct bench_command bench_attention_entry;
extern const struct bench_command bench_report_entry;
extern const struct bench_command bench_model_entry;   /* bench_model.c */
extern const struct bench_command bench_profile_entry; /* bench_profile.c */
extern const struct bench_command bench_cuda_entry;    /* bench_cuda.c */
extern const struct bench_command bench_calibrate_entry; /* bench_calibrate.c */

/* Operands larger than this (one copy, in bytes) are refused as a usage
 * error rather than risking the machine's memory. */
#define BENCH_MAX_OPERAND_BYTES (8.0 * 1024 * 1024 * 1024)

/* ---- timing ---------------------------------------------------------------- */

/* Seconds on CLOCK_MONOTONIC. */
double bench_now_s(void);

/* What bench_time() measured: the median and minimum of the timed runs. */
struct bench_timing {
    double median_s;
    double min_s;
    int runs;
};

/* Time FN(ARG, i) for i = 0, 1, ...: one untimed warm-up run, then REPEAT
 * timed runs, reporting the median.  When the warm-up alone took more than
 * BUDGET_S seconds (0: no budget), it is the one sample (runs = 1), so a
 * slow reference is not run many times. */
struct bench_timing bench_time(void (*fn)(void *arg, int i), void *arg, int repeat, double budget_s);

/* The median of V[0..N) (V is not changed); NAN when N is 0 or memory runs out. */
double bench_median(const double *v, size_t n);

/* Sleep long enough (0.25 s) for another threading runtime's idle workers
 * to stop spinning: OpenBLAS's threads busy-wait about 2^28 cycles after a
 * call, and on a machine with few cores they would steal the next kernel's
 * cores. */
void bench_settle(void);

/* ---- the machine ----------------------------------------------------------- */

/* Size of the last-level cache in bytes: the largest cache level of cpu0 in
 * /sys (what one core shares), else sysconf(_SC_LEVEL3_CACHE_SIZE), else
 * 32 MiB. */
size_t bench_llc_bytes(void);

/* How many copies of operands of BYTES each to cycle through so that they
 * together exceed twice the last-level cache for each of the kernels'
 * threads (kn_get_threads()), and every run reads from memory, not cache:
 * at least 1, at most 64.  Per thread, because threads may sit on separate
 * LLCs (the CCXs of an AMD EPYC each have their own L3) and each thread
 * reads the same part of the operands on every run. */
int bench_copies(double bytes);

/* Cores OpenMP would use (the default thread count). */
int bench_cores(void);

/* Describe the host (CPU model, cores, LLC, ISA, date) for the JSON. */
json_t *bench_host_json(void);

/* ---- arguments --------------------------------------------------------------- */

/* Parse ARG as an integer in [lo, hi] for option OPT.  Returns 0, or -1 with
 * an ERR_INPUT naming the option. */
int bench_parse_int(const char *opt, const char *arg, long lo, long hi, long *out, struct err *e);

/* A matmul shape: out (m, n) = x (m, k) W^T. */
struct bench_mnk {
    long m, n, k;
};
/* Sizes are at most this in any dimension. */
#define BENCH_MAX_DIM 1000000L

/* Parse LIST ("1024,2048" cubed, or "1x4096x4096,64x4096x11008" as m x n x k)
 * into CASES (at most MAX), setting *N.  Returns 0, or -1 with an ERR_INPUT
 * quoting the item. */
int bench_parse_sizes(const char *list, struct bench_mnk *cases, int max, int *n, struct err *e);

/* Print the error of a failed subcommand ("llmbench: error: ...") and
 * return its exit status. */
int bench_fail(const struct err *e);

/* ---- results: a table on stdout and a JSON file ------------------------------------ */

/* A text table: columns named at creation, rows of cells added one by one,
 * printed with every column as wide as its widest cell. */
struct bench_table;

/* NULL when out of memory. */
struct bench_table *bench_table_new(int ncols, const char *const *names);
void bench_table_free(struct bench_table *t);
/* Start a new row; the cells that follow fill it left to right. */
void bench_table_row(struct bench_table *t);
void bench_table_cell(struct bench_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print to F; numeric-looking cells are right-aligned. */
void bench_table_print(struct bench_table *t, FILE *f);

/* A JSON number, or null when V is not finite (NaN marks "n/a"). */
json_t *bench_json_num(double v);

/* {"tool": "llmbench", "command": COMMAND, "host": ..., "threads": THREADS,
 * "results": []}: the caller appends to "results".  NULL on out of memory. */
json_t *bench_json_doc(const char *command, int threads);

/* Write DOC to FILE (indented), through a temporary file renamed into place.
 * Returns 0, or -1 with an ERR_SYSTEM naming the file. */
int bench_json_write(const char *file, json_t *doc, struct err *e);

/* ---- the roofline (bench_roofline.c) ------------------------------------------------- */

struct bench_roofline {
    int threads;
    double bandwidth_gbs; /* streaming read, GB/s (1e9 bytes) */
    double peak_gflops;   /* FMA throughput, GFLOP/s */
};

/* Measure both on THREADS threads, reading an array of BYTES (rounded down
 * to whole AVX2 vectors) REPEAT times after a warm-up; each figure is the
 * best run.  Returns 0, or -1 with an ERR_SYSTEM when the array cannot be
 * allocated. */
int bench_roofline_measure(int threads, size_t bytes, int repeat, struct bench_roofline *r,
                           struct err *e);

/* Read the entry for THREADS threads from FILE, as written by
 * `llmbench roofline --json` (the entry with the most threads not above
 * THREADS when there is no exact one).  Returns 0, or -1 with an ERR_INPUT
 * naming the file. */
int bench_roofline_load(const char *file, int threads, struct bench_roofline *r, struct err *e);

/* The array a quick roofline reads on THREADS threads: 4x the LLC per
 * thread, at least 256 MiB (out of every cache). */
size_t bench_roofline_bytes(int threads);

/* The roofline a matmul or attention subcommand compares against: loaded
 * from FILE when it is not NULL, else measured quickly (bench_roofline_bytes,
 * 3 repeats) on THREADS threads, and logged. */
int bench_roofline_get(const char *file, int threads, struct bench_roofline *r, struct err *e);

/* The attainable GFLOP/s at arithmetic intensity AI (FLOP per byte):
 * min(peak, bandwidth x AI). */
double bench_roofline_bound(const struct bench_roofline *r, double ai);

/* ---- timed forward steps of llmserve's model (bench_model.c) ---------------------------- */

/* A model, a paged KV cache with MAX_SEQS sequences holding a full context
 * each, and a forward pass for steps of up to MAX_TOKENS tokens. */
struct bench_step {
    struct model *m;
    struct kv_cache *kv;
    struct forward *f;
    struct kv_seq *seqs;
    struct forward_seq *fs;
    int *tokens;
    float *logits;
    struct kn_prob_index *scratch;
    int max_seqs;
    int max_tokens;
    const char *backend; /* the forward pass's backend, resolved ("cpu", "cuda") */
    int sample;   /* time sampling a token from each sequence's logits too (as the engine) */
    long sampled; /* sum of the sampled ids (keeps the work observable) */
};

/* Load MODEL (int8 weights when QUANTIZE_Q8) and set up B on the forward
 * pass's BACKEND ("cpu", "cuda", "auto": server/forward.h).  Returns 0, or
 * -1 with E set (the model's or the backend's error, or ERR_SYSTEM). */
int bench_step_open(struct bench_step *b, const char *model, int quantize_q8, int max_seqs, int max_tokens,
                    const char *backend, struct err *e);
void bench_step_close(struct bench_step *b);
/* Median seconds of REPEAT timed decode steps (after a warm-up) of BATCH
 * sequences, each attending to CTX positions. */
double bench_step_decode_s(struct bench_step *b, int batch, int ctx, int repeat);
/* Median seconds of prefilling N prompt tokens of one sequence in one step. */
double bench_step_prefill_s(struct bench_step *b, int n, int repeat);
/* Median seconds of one step that prefills PREFILL prompt tokens of one
 * sequence (0: none) and decodes BATCH others at CTX positions each (the
 * engine's mixed steps of chunked prefill); needs max_seqs > BATCH when
 * PREFILL > 0. */
double bench_step_mixed_s(struct bench_step *b, int prefill, int batch, int ctx, int repeat);

#endif
