/* cmd_tokenize.c -- `llmserve tokenize` and `llmserve detokenize`: the
 * tokenizer from the command line.
 *
 *   llmserve tokenize   (--model M | --tokenizer T) --text TEXT
 *   llmserve detokenize (--model M | --tokenizer T) --ids "1 2 3"
 *
 * The tokenizer is T (llama2.c tokenizer.bin; with --model too, sized to the
 * model's vocabulary) or the one in M's metadata (GGUF). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "server/command.h"
#include "server/model.h"
#include "server/tokenizer.h"

static void tokenize_usage(FILE *f, int detokenize)
{
    if (detokenize)
        fprintf(f, "usage: llmserve detokenize (--model M | --tokenizer T) --ids \"ID ID ...\"\n"
                   "\n"
                   "Print the text of the token ids (separated by spaces or commas).  Bytes that do\n"
                   "not form valid UTF-8 print as U+FFFD.\n");
    else
        fprintf(f, "usage: llmserve tokenize (--model M | --tokenizer T) --text TEXT\n"
                   "\n"
                   "Print the token ids of TEXT on one line, BOS first.\n");
    fprintf(f, "\n"
               "  --model M       a GGUF model (its tokenizer is in the file), or with\n"
               "                  --tokenizer any model whose vocabulary size T is cut to\n"
               "  --tokenizer T   a llama2.c tokenizer.bin\n"
               "  -h, --help      this text\n"
               "\n"
               "Exit status: 0 ok, 1 I/O or system error, 2 bad input or usage.\n");
}

/* The tokenizer the options name: owned by *M (GGUF) or returned to free. */
static struct tokenizer *tokenize_open(const char *model_path, const char *tok_path, struct model *m,
                                       struct tokenizer **owned, struct err *e)
{
    int vocab = 0;

    *owned = NULL;
    if (model_path != NULL) {
        if (model_load(m, model_path, NULL, e) < 0)
            return NULL;
        vocab = m->cfg.vocab_size;
        if (tok_path == NULL) {
            if (m->tokenizer == NULL)
                err_set(e, ERR_INPUT, "%s: the model has no tokenizer in it: give --tokenizer T", model_path);
            return m->tokenizer;
        }
    }
    *owned = tokenizer_load(tok_path, vocab, e);
    return *owned;
}

static int tokenize_run(int argc, char **argv, int detokenize)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"tokenizer", required_argument, NULL, 'k'},
        {"text", required_argument, NULL, 'x'},  {"ids", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *model_path = NULL, *tok_path = NULL, *text = NULL, *ids_arg = NULL;
    const char *cmd = detokenize ? "detokenize" : "tokenize";
    struct model m;
    struct tokenizer *owned = NULL, *t;
    struct err e = {0};
    int c, status = 0;

    memset(&m, 0, sizeof m);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            model_path = optarg;
            break;
        case 'k':
            tok_path = optarg;
            break;
        case 'x':
            text = optarg;
            break;
        case 'i':
            ids_arg = optarg;
            break;
        case 'h':
            tokenize_usage(stdout, detokenize);
            return 0;
        default:
            tokenize_usage(stderr, detokenize);
            return 2;
        }
    }
    if (optind < argc) {
        log_error("%s: unexpected argument '%s'", cmd, argv[optind]);
        return 2;
    }
    if (model_path == NULL && tok_path == NULL) {
        log_error("%s: give --model M or --tokenizer T", cmd);
        return 2;
    }
    if (!detokenize && (text == NULL || ids_arg != NULL)) {
        log_error("tokenize: give --text TEXT");
        return 2;
    }
    if (detokenize && (ids_arg == NULL || text != NULL)) {
        log_error("detokenize: give --ids \"ID ID ...\"");
        return 2;
    }
    t = tokenize_open(model_path, tok_path, &m, &owned, &e);
    if (t == NULL) {
        log_error("%s", e.msg);
        model_free(&m);
        return err_exit_status(&e);
    }
    if (!detokenize) {
        int *ids, n;
        if (tokenizer_encode(t, text, strlen(text), 1, 0, &ids, &n, &e) < 0) {
            log_error("%s", e.msg);
            status = err_exit_status(&e);
        } else {
            for (int i = 0; i < n; i++)
                printf("%s%d", i ? " " : "", ids[i]);
            printf("\n");
            free(ids);
        }
    } else {
        struct detok d;
        /* A piece is at most 64 KiB; each byte may print as U+FFFD (3 bytes). */
        size_t cap = 3 * 65536 + 16;
        char *buf = malloc(cap);
        const char *p = ids_arg;
        int vocab = tokenizer_vocab_size(t);

        if (buf == NULL) {
            log_error("detokenize: out of memory");
            tokenizer_free(owned);
            model_free(&m);
            return 1;
        }
        detok_init(&d, t);
        for (;;) {
            char *end;
            long v;
            while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
                p++;
            if (*p == '\0')
                break;
            errno = 0;
            v = strtol(p, &end, 10);
            if (end == p || errno != 0 || v < 0 || v >= vocab ||
                (*end != '\0' && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n')) {
                int w = 0;
                while (p[w] != '\0' && p[w] != ' ' && p[w] != ',' && w < 40)
                    w++;
                log_error("detokenize: --ids: '%.*s' is not a token id (0..%d)", w, p, vocab - 1);
                status = 2;
                break;
            }
            p = end;
            detok_push(&d, (int)v, buf, cap);
            fputs(buf, stdout);
        }
        if (status == 0) {
            detok_flush(&d, buf, cap);
            fputs(buf, stdout);
            printf("\n");
        }
        free(buf);
    }
    tokenizer_free(owned);
    model_free(&m);
    return status;
}

static int tokenize_exec(int argc, char **argv)
{
    return tokenize_run(argc, argv, 0);
}

static int detokenize_exec(int argc, char **argv)
{
    return tokenize_run(argc, argv, 1);
}

const struct serve_command cmd_tokenize_entry = {
    .name = "tokenize",
    .summary = "print the token ids of a text",
    .exec = tokenize_exec,
};

const struct serve_command cmd_detokenize_entry = {
    .name = "detokenize",
    .summary = "print the text of token ids",
    .exec = detokenize_exec,
};
