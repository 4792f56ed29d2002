/* cmd_generate.c -- `llmserve generate`: offline generation for one prompt,
 * through the engine (the same path the HTTP server takes).
 *
 * The engine calls back on its own thread; the callback only copies the
 * event into a queue that the main thread prints from. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "server/command.h"
#include "server/engine.h"
#include "server/forward.h"
#include "server/model.h"
#include "server/tokenizer.h"

/* Stop strings --stop may give. */
#define GEN_MAX_STOP 16

struct gen_opts {
    const char *model;
    const char *tokenizer;
    const char *prompt;
    const char *prompt_ids;
    int n;
    float temperature;
    float top_p;
    int top_k;
    uint64_t seed;
    int seed_given;
    int print_ids;
    int quantize_q8;
    int threads;
    int ignore_eos;
    const char *stop[GEN_MAX_STOP];
    int n_stop;
    const char *backend;
};

/* What the engine thread hands the main thread: the text and ids so far,
 * and the final event's figures. */
struct gen_out {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *text;
    size_t text_len, text_cap;
    int *ids;
    int n_ids, ids_cap;
    int done;
    int failed;              /* out of memory in the callback */
    struct engine_event final;
    char error[256];
};

static void generate_usage(FILE *f)
{
    fprintf(f,
            "usage: llmserve generate --model M [--tokenizer T] [--prompt TEXT | --prompt-ids \"1 2 3\"]\n"
            "                         [-n N] [-t TEMP] [--top-p P] [--top-k K] [--seed S] [--stop STR]...\n"
            "                         [--print-ids] [--ignore-eos] [--quantize q8] [--threads N]\n"
            "                         [--backend NAME]\n"
            "\n"
            "Generate text for one prompt offline, through the same engine the server uses,\n"
            "and print the prompt and the text as it comes (or, with --print-ids, the\n"
            "generated token ids on one line).  A summary goes to stderr.\n"
            "\n"
            "  --model M          a llama2.c checkpoint, a GGUF file or synthetic:NAME\n"
            "  --tokenizer T      llama2.c tokenizer.bin (default: the model's own, if any)\n"
            "  --prompt TEXT      encoded with BOS first (needs a tokenizer)\n"
            "  --prompt-ids IDS   the prompt as token ids, used as given (no BOS added);\n"
            "                     without either prompt option, generation starts from BOS\n"
            "  -n N               tokens to generate at most (default 256)\n"
            "  -t, --temperature  sampling temperature; 0 is greedy (default 1.0)\n"
            "  --top-p P          nucleus sampling mass (default 0.9; 1 turns it off)\n"
            "  --top-k K          keep the K most likely tokens (default 0: off)\n"
            "  --seed S           the sampler's seed (default: the time)\n"
            "  --stop STR         stop before STR in the text (up to %d times)\n"
            "  --print-ids        print the generated ids instead of text (no tokenizer needed)\n"
            "  --ignore-eos       generate exactly N tokens\n"
            "  --quantize q8      convert float weights to int8 at load time\n"
            "  --threads N        kernel threads (default: all cores)\n"
            "  --backend NAME     auto (cuda when a GPU is present, else cpu), cuda, cpu or\n"
            "                     ref (default: $LLMSERVE_BACKEND, else auto)\n"
            "\n"
            "Generation stops at EOS (or a generated BOS), a stop string, N tokens or the\n"
            "model's context.  Exit status: 0 done, 1 failure, 2 bad input.\n",
            GEN_MAX_STOP);
}

static double gen_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the callback and the queue -------------------------------------------------------- */

static void gen_on_event(void *ctx, const struct engine_event *ev)
{
    struct gen_out *o = ctx;

    pthread_mutex_lock(&o->mu);
    if (ev->text_len > 0) {
        if (o->text_len + ev->text_len + 1 > o->text_cap) {
            size_t cap = o->text_cap ? o->text_cap * 2 : 1024;
            char *t;

            while (cap < o->text_len + ev->text_len + 1)
                cap *= 2;
            t = realloc(o->text, cap);
            if (t == NULL)
                o->failed = 1;
            else {
                o->text = t;
                o->text_cap = cap;
            }
        }
        if (!o->failed) {
            memcpy(o->text + o->text_len, ev->text, ev->text_len);
            o->text_len += ev->text_len;
        }
    }
    if (ev->finish == ENGINE_FINISH_NONE && ev->token >= 0) {
        if (o->n_ids == o->ids_cap) {
            int cap = o->ids_cap ? o->ids_cap * 2 : 256;
            int *p = realloc(o->ids, (size_t)cap * sizeof *p);

            if (p == NULL)
                o->failed = 1;
            else {
                o->ids = p;
                o->ids_cap = cap;
            }
        }
        if (o->n_ids < o->ids_cap)
            o->ids[o->n_ids++] = ev->token;
    }
    if (ev->finish != ENGINE_FINISH_NONE) {
        o->final = *ev;
        o->final.text = NULL;
        o->final.error = NULL;
        if (ev->error != NULL)
            snprintf(o->error, sizeof o->error, "%s", ev->error);
        o->done = 1;
    }
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static const char *gen_finish_name(enum engine_finish f)
{
    switch (f) {
    case ENGINE_FINISH_STOP: return "stop";
    case ENGINE_FINISH_LENGTH: return "length";
    case ENGINE_FINISH_CANCELLED: return "cancelled";
    case ENGINE_FINISH_ERROR: return "error";
    default: return "none";
    }
}

/* ---- arguments --------------------------------------------------------------------------- */

/* Parse ARG as an integer in [LO, HI] for option OPT. */
static int gen_parse_long(const char *opt, const char *arg, long lo, long hi, long *out, struct err *e)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < lo || v > hi)
        return err_set(e, ERR_INPUT, "%s: '%s' is not an integer in [%ld, %ld]", opt, arg, lo, hi);
    *out = v;
    return 0;
}

static int gen_parse_float(const char *opt, const char *arg, double lo, double hi, float *out, struct err *e)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !(v >= lo && v <= hi))
        return err_set(e, ERR_INPUT, "%s: '%s' is not a number in [%g, %g]", opt, arg, lo, hi);
    *out = (float)v;
    return 0;
}

/* Parse "1 2 3" (spaces, tabs or commas) into a new array *IDS of *N. */
static int gen_parse_ids(const char *s, int **ids, int *n, struct err *e)
{
    size_t cap = strlen(s) / 2 + 1;
    int *v = malloc(cap * sizeof *v), k = 0;
    const char *p = s;

    if (v == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    for (;;) {
        char *end;
        long x;

        while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\n')
            p++;
        if (*p == '\0')
            break;
        errno = 0;
        x = strtol(p, &end, 10);
        if (end == p || errno != 0 || x < 0 || x > INT_MAX ||
            (*end != '\0' && *end != ' ' && *end != '\t' && *end != ',' && *end != '\n')) {
            free(v);
            return err_set(e, ERR_INPUT, "--prompt-ids: '%.20s' (at byte %zu) is not a token id", p,
                           (size_t)(p - s));
        }
        v[k++] = (int)x;
        p = end;
    }
    if (k == 0) {
        free(v);
        return err_set(e, ERR_INPUT, "--prompt-ids: no token ids");
    }
    *ids = v;
    *n = k;
    return 0;
}

/* Parse the command line into O.  Returns 0, 1 for --help (printed), or
 * -1 with E set. */
static int gen_parse(int argc, char **argv, struct gen_opts *o, struct err *e)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},      {"tokenizer", required_argument, NULL, 'T'},
        {"prompt", required_argument, NULL, 'p'},     {"prompt-ids", required_argument, NULL, 'i'},
        {"temperature", required_argument, NULL, 't'}, {"top-p", required_argument, NULL, 'P'},
        {"top-k", required_argument, NULL, 'k'},      {"seed", required_argument, NULL, 's'},
        {"stop", required_argument, NULL, 'S'},       {"print-ids", no_argument, NULL, 'I'},
        {"ignore-eos", no_argument, NULL, 'E'},       {"quantize", required_argument, NULL, 'q'},
        {"threads", required_argument, NULL, 'j'},    {"backend", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long v;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hn:t:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'T': o->tokenizer = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'i': o->prompt_ids = optarg; break;
        case 'n':
            if (gen_parse_long("-n", optarg, 1, INT_MAX / 2, &v, e) < 0)
                return -1;
            o->n = (int)v;
            break;
        case 't':
            if (gen_parse_float("--temperature", optarg, 0, 100, &o->temperature, e) < 0)
                return -1;
            break;
        case 'P':
            if (gen_parse_float("--top-p", optarg, 0, 1, &o->top_p, e) < 0)
                return -1;
            break;
        case 'k':
            if (gen_parse_long("--top-k", optarg, 0, INT_MAX, &v, e) < 0)
                return -1;
            o->top_k = (int)v;
            break;
        case 's': {
            char *end;

            errno = 0;
            o->seed = strtoull(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-')
                return err_set(e, ERR_INPUT, "--seed: '%s' is not an unsigned integer", optarg);
            o->seed_given = 1;
            break;
        }
        case 'S':
            if (o->n_stop == GEN_MAX_STOP)
                return err_set(e, ERR_INPUT, "--stop: at most %d stop strings", GEN_MAX_STOP);
            if (optarg[0] == '\0')
                return err_set(e, ERR_INPUT, "--stop: empty string");
            o->stop[o->n_stop++] = optarg;
            break;
        case 'I': o->print_ids = 1; break;
        case 'E': o->ignore_eos = 1; break;
        case 'q':
            if (strcmp(optarg, "q8") != 0)
                return err_set(e, ERR_INPUT, "--quantize: unknown type '%s' (q8)", optarg);
            o->quantize_q8 = 1;
            break;
        case 'j':
            if (gen_parse_long("--threads", optarg, 1, 1024, &v, e) < 0)
                return -1;
            o->threads = (int)v;
            break;
        case 'B': o->backend = optarg; break;
        case 'h':
            generate_usage(stdout);
            return 1;
        default:
            return err_set(e, ERR_INPUT, "unknown or incomplete option '%s' (try 'llmserve generate --help')",
                           argv[optind - 1]);
        }
    }
    if (optind < argc)
        return err_set(e, ERR_INPUT, "unexpected argument '%s'", argv[optind]);
    if (o->model == NULL)
        return err_set(e, ERR_INPUT, "--model is required (try 'llmserve generate --help')");
    if (o->prompt != NULL && o->prompt_ids != NULL)
        return err_set(e, ERR_INPUT, "--prompt and --prompt-ids exclude each other");
    if (o->backend == NULL)
        o->backend = getenv("LLMSERVE_BACKEND") != NULL ? getenv("LLMSERVE_BACKEND") : "auto";
    return 0;
}

/* ---- the command ----------------------------------------------------------------------- */

/* Print what arrived since the last call (from *TEXT_DONE bytes on). */
static void gen_print_new(struct gen_out *out, size_t *text_done, int print_ids)
{
    if (!print_ids && out->text_len > *text_done) {
        fwrite(out->text + *text_done, 1, out->text_len - *text_done, stdout);
        fflush(stdout);
        *text_done = out->text_len;
    }
}

static int generate_exec(int argc, char **argv)
{
    struct gen_opts o = {.n = 256, .temperature = 1.0f, .top_p = 0.9f};
    const struct kn_backend *be;
    struct model_load_opts lo = {0};
    struct model m = {0};
    struct tokenizer *own_tok = NULL, *model_tok = NULL;
    struct engine *eng = NULL;
    struct engine_opts eo = {0};
    struct engine_params p = {0};
    struct gen_out out = {0};
    struct err e = {0};
    int *prompt = NULL, n_prompt = 0, rc = 1, r;
    size_t text_done = 0;
    double t0, t1;
    struct timespec ts;

    r = gen_parse(argc, argv, &o, &e);
    if (r == 1)
        return 0;
    if (r < 0) {
        log_error("generate: %s", e.msg);
        return err_exit_status(&e);
    }
    /* cuda without a device fails here, before the model loads */
    if ((be = forward_backend(o.backend, &e)) == NULL) {
        log_error("generate: %s", e.msg);
        return err_exit_status(&e);
    }

    lo.quantize_q8 = o.quantize_q8;
    if (model_load(&m, o.model, &lo, &e) < 0)
        goto fail;
    if (o.tokenizer != NULL) {
        own_tok = tokenizer_load(o.tokenizer, m.cfg.vocab_size, &e);
        if (own_tok == NULL)
            goto fail;
        if (m.tokenizer != NULL)
            log_warn("generate: the model has its own tokenizer; --tokenizer is used instead");
        /* the engine reads it from the model; the model's own is put back before model_free */
        model_tok = m.tokenizer;
        m.tokenizer = own_tok;
    }

    /* the prompt */
    if (o.prompt_ids != NULL) {
        if (gen_parse_ids(o.prompt_ids, &prompt, &n_prompt, &e) < 0)
            goto fail;
    } else if (o.prompt != NULL) {
        if (m.tokenizer == NULL) {
            err_set(&e, ERR_INPUT, "--prompt needs a tokenizer: %s has none (give --tokenizer T or --prompt-ids)",
                    o.model);
            goto fail;
        }
        if (tokenizer_encode(m.tokenizer, o.prompt, strlen(o.prompt), 1, 0, &prompt, &n_prompt, &e) < 0)
            goto fail;
    } else {
        prompt = malloc(sizeof *prompt);
        if (prompt == NULL) {
            err_set(&e, ERR_SYSTEM, "out of memory");
            goto fail;
        }
        prompt[0] = m.tokenizer != NULL ? tokenizer_bos(m.tokenizer) : 1;
        n_prompt = 1;
    }
    if (!o.print_ids && m.tokenizer == NULL) {
        err_set(&e, ERR_INPUT, "%s has no tokenizer: give --tokenizer T, or --print-ids to print token ids",
                o.model);
        goto fail;
    }

    /* the engine, one request */
    eo.max_batch = 1;
    eo.max_queue = 1;
    eo.threads = o.threads;
    eo.backend = be->name;
    eng = engine_create(&m, &eo, &e);
    if (eng == NULL && strcmp(o.backend, "auto") == 0 && strcmp(eo.backend, "cuda") == 0) {
        /* the device is there but cannot hold the model (its memory): the CPU can */
        log_warn("generate: backend auto: cuda failed (%s); falling back to cpu", e.msg);
        eo.backend = "cpu";
        err_clear(&e);
        eng = engine_create(&m, &eo, &e);
    }
    if (eng == NULL)
        goto fail;
    if (!o.seed_given) {
        clock_gettime(CLOCK_REALTIME, &ts);
        o.seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    p.temperature = o.temperature;
    p.top_p = o.top_p;
    p.top_k = o.top_k;
    p.seed = o.seed;
    p.max_tokens = o.n;
    p.ignore_eos = o.ignore_eos;
    p.stop = o.stop;
    p.n_stop = o.n_stop;
    pthread_mutex_init(&out.mu, NULL);
    pthread_cond_init(&out.cv, NULL);
    t0 = gen_now_s();
    if (!o.print_ids && o.prompt != NULL) {
        fputs(o.prompt, stdout);
        fflush(stdout);
    }
    if (engine_submit(eng, prompt, n_prompt, &p, gen_on_event, &out, NULL, &e) < 0) {
        pthread_mutex_destroy(&out.mu);
        pthread_cond_destroy(&out.cv);
        goto fail;
    }
    pthread_mutex_lock(&out.mu);
    while (!out.done) {
        pthread_cond_wait(&out.cv, &out.mu);
        gen_print_new(&out, &text_done, o.print_ids);
    }
    gen_print_new(&out, &text_done, o.print_ids);
    pthread_mutex_unlock(&out.mu);
    t1 = gen_now_s();

    if (o.print_ids) {
        for (int i = 0; i < out.n_ids; i++)
            printf(i ? " %d" : "%d", out.ids[i]);
        printf("\n");
    } else {
        printf("\n");
    }
    fflush(stdout);
    {
        double decode_s = t1 - t0 - out.final.ttft_s;

        fprintf(stderr,
                "generate: %d prompt + %d generated tokens, finish %s; time to first token %.3f s, "
                "%.1f tokens/s after it\n",
                out.final.prompt_tokens, out.final.completion_tokens, gen_finish_name(out.final.finish),
                out.final.ttft_s,
                out.final.completion_tokens > 1 && decode_s > 0 ? (out.final.completion_tokens - 1) / decode_s : 0.0);
    }
    if (out.failed) {
        err_set(&e, ERR_SYSTEM, "out of memory for the output");
        rc = 1;
    } else if (out.final.finish == ENGINE_FINISH_ERROR) {
        /* the request's fault (the context) exits 2; the device's 1 */
        err_set(&e, out.final.error_code == ERR_SYSTEM ? ERR_SYSTEM : ERR_INPUT, "%s", out.error);
        rc = err_exit_status(&e);
    } else {
        rc = 0;
    }
    if (rc != 0)
        log_error("generate: %s", e.msg);
    pthread_mutex_destroy(&out.mu);
    pthread_cond_destroy(&out.cv);
    goto out;
fail:
    log_error("generate: %s", e.msg);
    rc = err_exit_status(&e);
out:
    engine_destroy(eng);
    if (own_tok != NULL && m.tokenizer == own_tok)
        m.tokenizer = model_tok;
    tokenizer_free(own_tok);
    model_free(&m);
    free(prompt);
    free(out.text);
    free(out.ids);
    return rc;
}

const struct serve_command cmd_generate_entry = {
    .name = "generate",
    .summary = "generate text for one prompt, offline",
    .exec = generate_exec,
};
