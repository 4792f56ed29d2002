/* check_workloads.c -- unit tests of workloads/: line reader, each trace
 * format (good, malformed, truncated, oversized and hostile input),
 * detection, the common options, generators, length distributions,
 * workload_open, the real Azure trace, and bounded memory. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/err.h"
#include "common/log.h"
#include "workloads/lengths.h"
#include "workloads/linereader.h"
#include "workloads/trace.h"

/* --- helpers -------------------------------------------------------------- */

static char tmpdir[256];

static void tmpdir_setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_workloads.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmpdir_teardown(void)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Write LEN bytes of DATA to tmpdir/NAME; returns the path (static buffer
 * rotated among 4). */
static const char *write_bytes(const char *name, const char *data, size_t len)
{
    static char paths[4][512];
    static int next;
    char *path = paths[next++ % 4];
    FILE *f;

    snprintf(path, 512, "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static const char *write_text(const char *name, const char *text)
{
    return write_bytes(name, text, strlen(text));
}

/* Read the whole trace at PATH; returns the count, or -1 with e set.  The
 * first MAX requests are copied to OUT (may be NULL). */
static long read_all(const char *path, const struct trace_options *opt, struct trace_request *out, size_t max,
                     struct err *e)
{
    struct trace_reader *r = trace_open_file(path, opt, e);
    struct trace_request req;
    long n = 0;
    int rc;

    if (r == NULL)
        return -1;
    while ((rc = trace_next(r, &req, e)) == 1) {
        if (out != NULL && (size_t)n < max)
            out[n] = req;
        n++;
    }
    trace_close(r);
    return rc < 0 ? -1 : n;
}

/* Expect reading TEXT (as file NAME) to fail with ERR_INPUT and a message
 * holding NAME:LINE and every string of WANT. */
static void expect_error(const char *name, const char *text, long line, const char *format, const char *want)
{
    struct trace_options opt = {.format = format};
    struct err e;
    char where[600];
    const char *path = write_text(name, text);

    err_clear(&e);
    ck_assert_int_eq(read_all(path, &opt, NULL, 0, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    snprintf(where, sizeof(where), "%s:%ld: ", path, line);
    ck_assert_msg(strstr(e.msg, where) != NULL, "'%s' does not name %s", e.msg, where);
    ck_assert_msg(strstr(e.msg, want) != NULL, "'%s' does not contain '%s'", e.msg, want);
}

/* A generator reader from inline YAML (origin "spec.yaml"). */
static struct trace_reader *gen_from(const char *yaml, uint64_t seed, struct conf **cp, struct err *e)
{
    struct conf *c = conf_load_string(yaml, "spec.yaml", e);
    struct trace_reader *r;

    ck_assert_msg(c != NULL, "%s", e->msg);
    r = trace_open_generator(c, conf_root(c), seed, e);
    *cp = c;
    return r;
}

/* Expect opening generator YAML to fail with CODE naming spec.yaml:LINE and WANT. */
static void expect_gen_error_code(const char *yaml, long line, enum err_code code, const char *want)
{
    struct conf *c = NULL;
    struct err e;
    char where[64];
    struct trace_reader *r;

    err_clear(&e);
    r = gen_from(yaml, 1, &c, &e);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(e.code, code);
    snprintf(where, sizeof(where), "spec.yaml:%ld: ", line);
    ck_assert_msg(strstr(e.msg, where) != NULL, "'%s' does not name %s", e.msg, where);
    ck_assert_msg(strstr(e.msg, want) != NULL, "'%s' does not contain '%s'", e.msg, want);
    conf_free(c);
}

static void expect_gen_error(const char *yaml, long line, const char *want)
{
    expect_gen_error_code(yaml, line, ERR_INPUT, want);
}

/* --- line reader ------------------------------------------------------------ */

START_TEST(test_linereader_crlf_bom_no_final_newline)
{
    const char *path = write_bytes("a.txt", "\xEF\xBB\xBFone\r\ntwo\r\n\r\nthree", 20);
    struct linereader *lr;
    struct err e;
    char *line;
    size_t len;

    lr = linereader_open(path, &e);
    ck_assert_ptr_nonnull(lr);
    ck_assert_int_eq(linereader_next(lr, &line, &len, &e), 1);
    ck_assert_str_eq(line, "one");
    ck_assert_int_eq(linereader_next(lr, &line, &len, &e), 1);
    ck_assert_str_eq(line, "two");
    ck_assert_int_eq(linereader_next(lr, &line, &len, &e), 1);
    ck_assert_str_eq(line, "");
    ck_assert_int_eq(linereader_next(lr, &line, &len, &e), 1);
    ck_assert_str_eq(line, "three");
    ck_assert_int_eq(linereader_lineno(lr), 4);
    ck_assert_int_eq(linereader_next(lr, &line, &len, &e), 0);
    ck_assert_uint_eq(linereader_offset(lr), linereader_size(lr));
    linereader_close(lr);
}
END_TEST

START_TEST(test_linereader_long_line)
{
    size_t n = LINEREADER_MAX_BYTES + 100;
    char *big = malloc(n + 20);
    const char *path;
    struct linereader *lr;
    struct err e;
    char *line;
    size_t len;
    char where[600];

    ck_assert_ptr_nonnull(big);
    memcpy(big, "ok\n", 3);
    memset(big + 3, 'x', n);
    path = write_bytes("long.txt", big, n + 3);
    free(big);
    lr = linereader_open(path, &e);
    ck_assert_ptr_nonnull(lr);
    ck_assert_int_eq(linereader_next(lr, &line, &len, &e), 1);
    ck_assert_int_eq(linereader_next(lr, &line, &len, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    snprintf(where, sizeof(where), "%s:2: line longer than", path);
    ck_assert_msg(strstr(e.msg, where) != NULL, "%s", e.msg);
    linereader_close(lr);
}
END_TEST

START_TEST(test_linereader_missing_file)
{
    struct err e;

    ck_assert_ptr_null(linereader_open("/nonexistent/trace.csv", &e));
    ck_assert_int_eq(e.code, ERR_SYSTEM);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/trace.csv"));
}
END_TEST

static Suite *suite_linereader(void)
{
    Suite *s = suite_create("linereader");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
    tcase_add_test(tc, test_linereader_crlf_bom_no_final_newline);
    tcase_add_test(tc, test_linereader_long_line);
    tcase_add_test(tc, test_linereader_missing_file);
    suite_add_tcase(s, tc);
    return s;
}

/* --- azure -------------------------------------------------------------------- */

#define AZ_HEAD "TIMESTAMP,ContextTokens,GeneratedTokens\n"

START_TEST(test_azure_good)
{
    const char *path = write_text("az.csv", AZ_HEAD "2023-11-16 18:15:46.6805900,374,44\n"
                                                    "2023-11-16 18:15:50.9951690,396,109\n"
                                                    "2023-11-16 18:16:00.0000001,1,0\n"
                                                    "2023-11-17 00:00:00.6805900,5,6\n");
    struct trace_request req[4];
    struct err e;

    ck_assert_int_eq(read_all(path, NULL, req, 4, &e), 4);
    ck_assert_double_eq(req[0].arrival_s, 0);
    ck_assert_double_eq_tol(req[1].arrival_s, 4.314579, 1e-9);
    ck_assert_double_eq_tol(req[2].arrival_s, 13.3194101, 1e-9);
    ck_assert_double_eq_tol(req[3].arrival_s, 5 * 3600 + 44 * 60 + 14, 1e-9);
    ck_assert_uint_eq(req[0].prompt_tokens, 374);
    ck_assert_uint_eq(req[0].output_tokens, 44);
    ck_assert_uint_eq(req[0].prompt_hash, 0);
    ck_assert_uint_eq(req[0].tenant, 0);
}
END_TEST

START_TEST(test_azure_crlf_bom_truncated_blank)
{
    struct trace_request req[3];
    struct err e;
    const char *path;

    path = write_text("crlf.csv", "\xEF\xBB\xBF" "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
                                  "2024-05-10 00:00:00.0000000,10,20\r\n"
                                  "2024-05-10 00:00:01.5000000,11,21\r\n\r\n");
    ck_assert_int_eq(read_all(path, NULL, req, 3, &e), 2);
    ck_assert_double_eq_tol(req[1].arrival_s, 1.5, 1e-12);
    path = write_text("trunc.csv", AZ_HEAD "2024-05-10 00:00:00.0000000,10,20\n2024-05-10 00:00:02.0000000,11,21");
    ck_assert_int_eq(read_all(path, NULL, req, 3, &e), 2);
    ck_assert_uint_eq(req[1].output_tokens, 21);
    /* a time zone offset, as some exports write */
    path = write_text("tz.csv", AZ_HEAD "2024-05-10 02:00:00+02:00,1,1\n2024-05-10 00:00:03Z,1,1\n");
    ck_assert_int_eq(read_all(path, NULL, req, 3, &e), 2);
    ck_assert_double_eq_tol(req[1].arrival_s, 3, 1e-12);
}
END_TEST

START_TEST(test_azure_malformed)
{
    expect_error("t.csv", AZ_HEAD "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:46.7,abc,44\n", 3, NULL,
                 "ContextTokens: expected a non-negative integer, got 'abc'");
    expect_error("t.csv", AZ_HEAD "2023-11-16 18:15:46.7,-5,44\n", 2, NULL, "ContextTokens");
    expect_error("t.csv", AZ_HEAD "2023-11-16 18:15:46.7,5,\n", 2, NULL, "GeneratedTokens: empty field");
    expect_error("t.csv", AZ_HEAD "2023-11-16 18:15:46.7,5\n", 2, NULL, "expected 3 columns");
    expect_error("t.csv", AZ_HEAD "2023-11-16 18:15:46.7,5,6,7\n", 2, NULL, "got 4");
    expect_error("t.csv", AZ_HEAD "2023-11-16 18:15:46.7,5,99999999999999999999\n", 2, NULL,
                 "GeneratedTokens: '99999999999999999999' is more than the limit");
    expect_error("t.csv", AZ_HEAD "2023-11-16 18:15:46.7,4294967296,1\n", 2, NULL, "ContextTokens");
    expect_error("t.csv", AZ_HEAD "2023-11-16 18:15:46.7,nan,1\n", 2, NULL, "ContextTokens");
    expect_error("t.csv", AZ_HEAD "2023-13-16 18:15:46.7,1,1\n", 2, NULL, "TIMESTAMP: expected");
    expect_error("t.csv", AZ_HEAD "2023-02-30 18:15:46.7,1,1\n", 2, NULL, "TIMESTAMP");
    expect_error("t.csv", AZ_HEAD "yesterday,1,1\n", 2, NULL, "TIMESTAMP: expected 'YYYY-MM-DD");
    expect_error("t.csv", AZ_HEAD ",1,1\n", 2, NULL, "TIMESTAMP: empty field");
    /* a field cut short by truncation */
    expect_error("t.csv", AZ_HEAD "2023-11-16 18:15:46.7,1,1\n2023-11-16 18:1", 3, NULL, "TIMESTAMP");
    expect_error("t.csv", AZ_HEAD "2023-11-16 18:15:46.7,1,1\n2023-11-16 18:15:47.0,1", 3, NULL, "expected 3 columns");
    /* forced format with the wrong header */
    expect_error("t.csv", "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n", 1, "azure",
                 "expected the header 'TIMESTAMP,ContextTokens,GeneratedTokens'");
}
END_TEST

START_TEST(test_azure_binary_garbage)
{
    static const char data[] = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.7,1,1\n\x01\x02\x00\xff\xfe,1\n";
    const char *path = write_bytes("bin.csv", data, sizeof(data) - 1);
    struct err e;
    char where[600];

    ck_assert_int_eq(read_all(path, NULL, NULL, 0, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    snprintf(where, sizeof(where), "%s:3: NUL byte", path);
    ck_assert_msg(strstr(e.msg, where) != NULL, "%s", e.msg);
    path = write_bytes("bin2.csv", "\x7f" "ELF\x02\x01\x01", 7);
    ck_assert_int_eq(read_all(path, NULL, NULL, 0, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_msg(strstr(e.msg, ":1: unknown trace format") != NULL, "%s", e.msg);
}
END_TEST

START_TEST(test_azure_backwards_clamped)
{
    const char *path = write_text("back.csv", AZ_HEAD "2023-11-16 18:00:10.0,1,1\n2023-11-16 18:00:05.0,1,1\n"
                                                      "2023-11-16 18:00:12.0,1,1\n");
    struct trace_request req[3];
    struct err e;

    log_set_level(LOG_ERROR); /* the clamp warning is expected */
    ck_assert_int_eq(read_all(path, NULL, req, 3, &e), 3);
    ck_assert_double_eq(req[1].arrival_s, 0);
    ck_assert_double_eq(req[1].arrival_s, req[0].arrival_s);
    ck_assert_double_eq_tol(req[2].arrival_s, 2, 1e-12);
}
END_TEST

/* The real Azure conversation trace, when the shared data is present. */
START_TEST(test_azure_real_trace)
{
    const char *shared = getenv("LLMSCALE_SHARED");
    struct trace_reader *r;
    struct trace_request req;
    struct err e;
    char path[1024];
    double last_s = 0, progress_mid = -1;
    long n = 0;
    int rc;

    snprintf(path, sizeof(path), "%s/traces/azure-llm-2023-conv.csv", shared ? shared : "../shared");
    if (access(path, R_OK) != 0) {
        printf("check_workloads: skipping the real Azure trace test: %s not found\n", path);
        return;
    }
    r = trace_open_file(path, NULL, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    ck_assert_str_eq(trace_format(r), "azure");
    while ((rc = trace_next(r, &req, &e)) == 1) {
        ck_assert(req.arrival_s >= last_s);
        last_s = req.arrival_s;
        if (++n == 9683)
            progress_mid = trace_progress(r);
    }
    ck_assert_msg(rc == 0, "%s", e.msg);
    ck_assert_int_eq(n, 19366);
    ck_assert_double_eq_tol(last_s, 3502, 1.0);
    ck_assert_double_eq_tol(progress_mid, 0.5, 0.05);
    ck_assert_double_eq(trace_progress(r), 1);
    trace_close(r);
}
END_TEST

static Suite *suite_trace_azure(void)
{
    Suite *s = suite_create("trace_azure");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
    tcase_add_test(tc, test_azure_good);
    tcase_add_test(tc, test_azure_crlf_bom_truncated_blank);
    tcase_add_test(tc, test_azure_malformed);
    tcase_add_test(tc, test_azure_binary_garbage);
    tcase_add_test(tc, test_azure_backwards_clamped);
    tcase_add_test(tc, test_azure_real_trace);
    suite_add_tcase(s, tc);
    return s;
}

/* --- burstgpt ---------------------------------------------------------------- */

#define BG_HEAD "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"

START_TEST(test_burstgpt_good_and_failed_rows)
{
    const char *path = write_text("bg.csv", BG_HEAD "5,ChatGPT,472,18,490,Conversation log\n"
                                                    "45,ChatGPT,1087,0,1087,Conversation log\n"
                                                    "118.5,GPT-4,417,276,693,API log\n");
    struct trace_request req[3];
    struct err e;

    log_set_level(LOG_ERROR);
    ck_assert_int_eq(read_all(path, NULL, req, 3, &e), 2);
    ck_assert_double_eq(req[0].arrival_s, 0);
    ck_assert_uint_eq(req[0].prompt_tokens, 472);
    ck_assert_uint_eq(req[0].output_tokens, 18);
    ck_assert_double_eq_tol(req[1].arrival_s, 113.5, 1e-12);
    ck_assert_uint_eq(req[1].output_tokens, 276);
}
END_TEST

START_TEST(test_burstgpt_malformed)
{
    expect_error("bg.csv", BG_HEAD "5,ChatGPT,472,18,490,Conversation log\n7,ChatGPT,x1,18,490,API log\n", 3, NULL,
                 "Request tokens: expected a non-negative integer, got 'x1'");
    expect_error("bg.csv", BG_HEAD "-5,ChatGPT,472,18,490,API log\n", 2, NULL, "Timestamp: must not be negative");
    expect_error("bg.csv", BG_HEAD "inf,ChatGPT,472,18,490,API log\n", 2, NULL, "Timestamp: expected");
    expect_error("bg.csv", BG_HEAD "NaN,ChatGPT,472,18,490,API log\n", 2, NULL, "Timestamp");
    expect_error("bg.csv", BG_HEAD "1e300,ChatGPT,472,18,490,API log\n", 2, NULL, "Timestamp: '1e300' is out of range");
    expect_error("bg.csv", BG_HEAD "5,ChatGPT,472,18\n", 2, NULL, "expected 6 columns");
    expect_error("bg.csv", BG_HEAD "5,,472,18,490,API log\n", 2, NULL, "Model: empty field");
    expect_error("bg.csv", BG_HEAD "5,ChatGPT,472,1.5,490,API log\n", 2, NULL, "Response tokens");
}
END_TEST

static Suite *suite_trace_burstgpt(void)
{
    Suite *s = suite_create("trace_burstgpt");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
    tcase_add_test(tc, test_burstgpt_good_and_failed_rows);
    tcase_add_test(tc, test_burstgpt_malformed);
    suite_add_tcase(s, tc);
    return s;
}

/* --- mooncake ---------------------------------------------------------------- */

START_TEST(test_mooncake_good)
{
    const char *path = write_text("mc.jsonl",
                                  "{\"timestamp\": 27482, \"input_length\": 6955, \"output_length\": 52, \"hash_ids\": [46, 47, 48]}\n"
                                  "{\"timestamp\": 30535, \"input_length\": 6472, \"output_length\": 26, \"hash_ids\": [46, 47, 48]}\n"
                                  "{\"timestamp\": 31000, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [46, 48, 47]}\n"
                                  "{\"timestamp\": 32000, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": []}\n"
                                  "{\"timestamp\": 33000.5, \"input_length\": 10, \"output_length\": 2, \"extra\": \"ignored\"}\n");
    struct trace_request req[5];
    struct err e;

    ck_assert_int_eq(read_all(path, NULL, req, 5, &e), 5);
    ck_assert_double_eq(req[0].arrival_s, 0);
    ck_assert_double_eq_tol(req[1].arrival_s, 3.053, 1e-12);
    ck_assert_double_eq_tol(req[4].arrival_s, 5.5185, 1e-12);
    ck_assert_uint_eq(req[0].prompt_tokens, 6955);
    ck_assert_uint_eq(req[0].output_tokens, 52);
    ck_assert_uint_ne(req[0].prompt_hash, 0);
    ck_assert_uint_eq(req[0].prompt_hash, req[1].prompt_hash);
    ck_assert_uint_ne(req[0].prompt_hash, req[2].prompt_hash);
    ck_assert_uint_eq(req[3].prompt_hash, 0);
    ck_assert_uint_eq(req[4].prompt_hash, 0);
}
END_TEST

START_TEST(test_mooncake_malformed)
{
    expect_error("mc.jsonl", "{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2}\n{\"timestamp\": 2, \"input_length\": 5,\n",
                 2, NULL, "invalid JSON");
    expect_error("mc.jsonl", "{\"timestamp\": 1, \"output_length\": 2}\n", 1, NULL, "input_length: missing");
    expect_error("mc.jsonl", "{\"timestamp\": 1, \"input_length\": \"5\", \"output_length\": 2}\n", 1, NULL,
                 "input_length: expected a non-negative integer");
    expect_error("mc.jsonl", "{\"timestamp\": 1, \"input_length\": -5, \"output_length\": 2}\n", 1, NULL,
                 "input_length: expected a non-negative integer, got -5");
    expect_error("mc.jsonl", "{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 4294967296}\n", 1, NULL,
                 "output_length: 4294967296 is more than the limit");
    expect_error("mc.jsonl", "{\"timestamp\": -1, \"input_length\": 5, \"output_length\": 2}\n", 1, NULL, "timestamp");
    expect_error("mc.jsonl", "{\"input_length\": 5, \"output_length\": 2}\n", 1, NULL, "timestamp: missing");
    expect_error("mc.jsonl", "{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2, \"hash_ids\": [1, \"x\"]}\n",
                 1, NULL, "hash_ids[1]: expected a non-negative integer");
    expect_error("mc.jsonl", "{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2, \"hash_ids\": 7}\n", 1,
                 NULL, "hash_ids: expected a list");
    expect_error("mc.jsonl", "{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2}\n[1, 2]\n", 2, "mooncake",
                 "expected a JSON object");
    expect_error("mc.jsonl", "{\"timestamp\": 1, \"timestamp\": 2, \"input_length\": 5, \"output_length\": 2}\n", 1,
                 NULL, "invalid JSON");
}
END_TEST

static Suite *suite_trace_mooncake(void)
{
    Suite *s = suite_create("trace_mooncake");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
    tcase_add_test(tc, test_mooncake_good);
    tcase_add_test(tc, test_mooncake_malformed);
    suite_add_tcase(s, tc);
    return s;
}

/* --- native and the writer ----------------------------------------------------- */

#define NAT_HEAD "arrival_s,prompt_tokens,output_tokens,prompt_hash,tenant\n"

START_TEST(test_native_roundtrip)
{
    struct trace_request in[3] = {
        {.arrival_s = 0.25, .prompt_tokens = 10, .output_tokens = 20},
        {.arrival_s = 1.123456, .prompt_tokens = 0, .output_tokens = 1, .prompt_hash = 0x9f86d081884c7d65ull,
         .tenant = 0xdeadbeefull},
        {.arrival_s = 3600.5, .prompt_tokens = 100000, .output_tokens = 7, .prompt_hash = 1, .tenant = 2},
    };
    struct trace_request out[3];
    struct trace_writer *w;
    struct err e;
    char path[600];
    int i;

    snprintf(path, sizeof(path), "%s/rt.csv", tmpdir);
    w = trace_writer_open(path, &e);
    ck_assert_ptr_nonnull(w);
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(trace_writer_put(w, &in[i], &e), 0);
    ck_assert_int_eq(trace_writer_close(w, &e), 0);
    ck_assert_int_eq(read_all(path, NULL, out, 3, &e), 3);
    for (i = 0; i < 3; i++) {
        ck_assert_double_eq_tol(out[i].arrival_s, in[i].arrival_s, 1e-6);
        ck_assert_uint_eq(out[i].prompt_tokens, in[i].prompt_tokens);
        ck_assert_uint_eq(out[i].output_tokens, in[i].output_tokens);
        ck_assert_uint_eq(out[i].prompt_hash, in[i].prompt_hash);
        ck_assert_uint_eq(out[i].tenant, in[i].tenant);
    }
}
END_TEST

START_TEST(test_native_tenant_names)
{
    const char *path = write_text("n.csv", NAT_HEAD "1,2,3,,alice\n2,2,3,,alice\n3,2,3,,bob\n4,2,3,,\n");
    struct trace_request req[4];
    struct err e;

    ck_assert_int_eq(read_all(path, NULL, req, 4, &e), 4);
    ck_assert_double_eq(req[0].arrival_s, 1); /* native keeps its own time axis */
    ck_assert_uint_ne(req[0].tenant, 0);
    ck_assert_uint_eq(req[0].tenant, req[1].tenant);
    ck_assert_uint_ne(req[0].tenant, req[2].tenant);
    ck_assert_uint_eq(req[3].tenant, 0);
}
END_TEST

START_TEST(test_native_malformed)
{
    expect_error("n.csv", NAT_HEAD "1,2,3,,\n2,2,3,xyz,\n", 3, NULL, "prompt_hash: expected 16 hex digits");
    expect_error("n.csv", NAT_HEAD "1,2,3,0123456789abcdef0,\n", 2, NULL, "prompt_hash");
    expect_error("n.csv", NAT_HEAD "abc,2,3,,\n", 2, NULL, "arrival_s: expected a non-negative number");
    expect_error("n.csv", NAT_HEAD "0x10,2,3,,\n", 2, NULL, "arrival_s");
    expect_error("n.csv", NAT_HEAD "1,2,3,\n", 2, NULL, "expected 5 columns");
    expect_error("n.csv", NAT_HEAD "1,2, ,,\n", 2, NULL, "output_tokens: empty field");
    expect_error("n.csv", "arrival_s,prompt_tokens\n", 1, "native", "native: expected the header");
}
END_TEST

static Suite *suite_trace_native(void)
{
    Suite *s = suite_create("trace_native");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
    tcase_add_test(tc, test_native_roundtrip);
    tcase_add_test(tc, test_native_tenant_names);
    tcase_add_test(tc, test_native_malformed);
    suite_add_tcase(s, tc);
    return s;
}

/* --- detection and empty files ------------------------------------------------- */

START_TEST(test_detect_formats)
{
    static const struct {
        const char *text;
        const char *format;
    } cases[] = {
        {AZ_HEAD "2023-11-16 18:15:46.6805900,374,44\n", "azure"},
        {BG_HEAD "5,ChatGPT,472,18,490,Conversation log\n", "burstgpt"},
        {"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2}\n", "mooncake"},
        {NAT_HEAD "1,2,3,,\n", "native"},
        {"\n\n" NAT_HEAD "1,2,3,,\n", "native"},
    };
    struct trace_reader *r;
    struct trace_request req;
    struct err e;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_text("d.txt", cases[i].text);

        r = trace_open_file(path, NULL, &e);
        ck_assert_msg(r != NULL, "%s", e.msg);
        ck_assert_str_eq(trace_format(r), cases[i].format);
        ck_assert_int_eq(trace_next(r, &req, &e), 1);
        ck_assert_int_eq(trace_next(r, &req, &e), 0);
        trace_close(r);
    }
}
END_TEST

START_TEST(test_detect_unknown)
{
    struct trace_options opt = {.format = "parquet"};
    struct err e;

    expect_error("u.csv", "time,tokens\n1,2\n", 1, NULL, "unknown trace format: 'time,tokens'");
    ck_assert_ptr_null(trace_open_file(write_text("u.csv", NAT_HEAD), &opt, &e));
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(e.msg, "unknown trace format 'parquet'"));
    ck_assert_ptr_nonnull(strstr(e.msg, "azure, burstgpt, mooncake, native"));
    ck_assert(trace_format_known("mooncake"));
    ck_assert(!trace_format_known("auto"));
}
END_TEST

START_TEST(test_empty_and_header_only)
{
    struct trace_options forced = {.format = "azure"};
    struct err e;

    ck_assert_int_eq(read_all(write_text("empty.csv", ""), NULL, NULL, 0, &e), 0);
    ck_assert_int_eq(read_all(write_text("blank.csv", "\n\r\n  \n"), NULL, NULL, 0, &e), 0);
    ck_assert_int_eq(read_all(write_text("empty.csv", ""), &forced, NULL, 0, &e), 0);
    ck_assert_int_eq(read_all(write_text("h.csv", AZ_HEAD), NULL, NULL, 0, &e), 0);
    ck_assert_int_eq(read_all(write_text("h.csv", BG_HEAD), NULL, NULL, 0, &e), 0);
    ck_assert_int_eq(read_all(write_text("h.csv", NAT_HEAD), NULL, NULL, 0, &e), 0);
}
END_TEST

static Suite *suite_trace_detect(void)
{
    Suite *s = suite_create("trace_detect");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
    tcase_add_test(tc, test_detect_formats);
    tcase_add_test(tc, test_detect_unknown);
    tcase_add_test(tc, test_empty_and_header_only);
    suite_add_tcase(s, tc);
    return s;
}

/* --- options: time_scale, rate_scale, duration, limit --------------------------- */

/* Write N requests one second apart to a native file. */
static const char *write_uniform_trace(const char *name, long n)
{
    static char path[600];
    struct trace_writer *w;
    struct trace_request req;
    struct err e;
    long i;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    w = trace_writer_open(path, &e);
    ck_assert_ptr_nonnull(w);
    memset(&req, 0, sizeof(req));
    for (i = 0; i < n; i++) {
        req.arrival_s = (double)i;
        req.prompt_tokens = (uint32_t)i;
        req.output_tokens = 1;
        ck_assert_int_eq(trace_writer_put(w, &req, &e), 0);
    }
    ck_assert_int_eq(trace_writer_close(w, &e), 0);
    return path;
}

START_TEST(test_options_time_scale_limit_duration)
{
    const char *path = write_uniform_trace("u.csv", 100);
    struct trace_options opt;
    struct trace_request req[100];
    struct err e;

    memset(&opt, 0, sizeof(opt));
    opt.time_scale = 2;
    ck_assert_int_eq(read_all(path, &opt, req, 100, &e), 100);
    ck_assert_double_eq(req[10].arrival_s, 20);
    opt.max_duration_s = 50;
    ck_assert_int_eq(read_all(path, &opt, req, 100, &e), 26); /* 0, 2, ..., 50 */
    opt.limit = 7;
    ck_assert_int_eq(read_all(path, &opt, req, 100, &e), 7);
    opt.time_scale = -1;
    ck_assert_int_eq(read_all(path, &opt, req, 100, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(e.msg, "time_scale"));
    opt.time_scale = 1;
    opt.rate_scale = NAN;
    ck_assert_int_eq(read_all(path, &opt, req, 100, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "rate_scale"));
}
END_TEST

START_TEST(test_options_rate_scale)
{
    const long n = 20000;
    const char *path = write_uniform_trace("u.csv", n);
    struct trace_options opt;
    struct trace_request req[8];
    struct err e;
    double p = 0.3, sd = sqrt(n * p * (1 - p));
    long kept, kept2;

    memset(&opt, 0, sizeof(opt));
    opt.rate_scale = p;
    opt.seed = 42;
    kept = read_all(path, &opt, NULL, 0, &e);
    ck_assert_msg(fabs((double)kept - n * p) < 4 * sd, "kept %ld of %ld at %g", kept, n, p);
    kept2 = read_all(path, &opt, NULL, 0, &e);
    ck_assert_int_eq(kept, kept2); /* the same seed thins the same way */
    opt.seed = 43;
    ck_assert_int_ne(read_all(path, &opt, NULL, 0, &e), -1);
    /* 2.5: two copies plus one with probability 0.5 */
    opt.rate_scale = 2.5;
    kept = read_all(path, &opt, req, 8, &e);
    ck_assert_msg(fabs((double)kept - n * 2.5) < 4 * sqrt(n * 0.25), "got %ld", kept);
    ck_assert_double_eq(req[0].arrival_s, req[1].arrival_s);
    ck_assert_uint_eq(req[0].prompt_tokens, req[1].prompt_tokens);
    opt.rate_scale = 3;
    ck_assert_int_eq(read_all(path, &opt, NULL, 0, &e), 3 * n);
}
END_TEST

static Suite *suite_trace_options(void)
{
    Suite *s = suite_create("trace_options");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_options_time_scale_limit_duration);
    tcase_add_test(tc, test_options_rate_scale);
    suite_add_tcase(s, tc);
    return s;
}

/* --- generators ------------------------------------------------------------------ */

/* Count the requests and sum inter-arrival times of a generator. */
static long gen_count(const char *yaml, uint64_t seed, double *sum_gap_s, double *sum_gap2_s)
{
    struct conf *c;
    struct err e;
    struct trace_reader *r = gen_from(yaml, seed, &c, &e);
    struct trace_request req;
    double last_s = 0;
    long n = 0;
    int rc;

    ck_assert_msg(r != NULL, "%s", e.msg);
    ck_assert_str_eq(trace_format(r), "generator");
    if (sum_gap_s != NULL)
        *sum_gap_s = *sum_gap2_s = 0;
    while ((rc = trace_next(r, &req, &e)) == 1) {
        double gap = req.arrival_s - last_s;

        ck_assert(gap >= 0);
        if (sum_gap_s != NULL) {
            *sum_gap_s += gap;
            *sum_gap2_s += gap * gap;
        }
        last_s = req.arrival_s;
        n++;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_double_eq(trace_progress(r), 1);
    trace_close(r);
    conf_free(c);
    return n;
}

START_TEST(test_gen_poisson)
{
    double rate = 5, dur = 4000, sum, sum2, mean;
    long n = gen_count("{kind: poisson, rate: 5, duration: 4000s}", 7, &sum, &sum2);

    /* count ~ Poisson(rate * dur): sd = sqrt(20000) ~ 141 */
    ck_assert_msg(fabs((double)n - rate * dur) < 4 * sqrt(rate * dur), "n=%ld", n);
    mean = sum / (double)n;
    /* exponential gaps: sd of the mean = (1/rate)/sqrt(n) */
    ck_assert_msg(fabs(mean - 1 / rate) < 4 * (1 / rate) / sqrt((double)n), "mean gap %g", mean);
    ck_assert_msg(fabs(sum2 / (double)n - 2 / (rate * rate)) < 0.05 * 2 / (rate * rate), "second moment");
}
END_TEST

START_TEST(test_gen_diurnal_peak_trough)
{
    struct conf *c;
    struct err e;
    struct trace_reader *r = gen_from("{kind: diurnal, rate: 20, amplitude: 0.5, period: 1000s, phase: 0, "
                                      "duration: 10000s}",
                                      3, &c, &e);
    struct trace_request req;
    long peak = 0, trough = 0, n = 0;
    int rc;

    ck_assert_msg(r != NULL, "%s", e.msg);
    while ((rc = trace_next(r, &req, &e)) == 1) {
        double x = fmod(req.arrival_s, 1000);

        n++;
        if (x < 100 || x >= 900) /* around the peak at phase 0 */
            peak++;
        else if (x >= 400 && x < 600) /* around the trough */
            trough++;
    }
    ck_assert_int_eq(rc, 0);
    trace_close(r);
    conf_free(c);
    /* expected per period: 20 * (200 +- 0.5 * integral of cos over +-100 s),
     * and that integral is (1000 / pi) sin(pi / 5) */
    {
        double in_peak = 20 * (200 + 0.5 * 1000 / M_PI * sin(M_PI / 5)) * 10;
        double in_trough = 20 * (200 - 0.5 * 1000 / M_PI * sin(M_PI / 5)) * 10;

        ck_assert_msg(fabs((double)n - 200000) < 4 * sqrt(200000.0), "n=%ld", n);
        ck_assert_msg(fabs((double)peak - in_peak) < 4 * sqrt(in_peak), "peak %ld vs %g", peak, in_peak);
        ck_assert_msg(fabs((double)trough - in_trough) < 4 * sqrt(in_trough), "trough %ld vs %g", trough, in_trough);
        ck_assert_double_eq_tol((double)peak / (double)trough, in_peak / in_trough, 0.1);
    }
}
END_TEST

START_TEST(test_gen_bursty_mean_rate)
{
    /* mean rate = (1*30 + 20*10) / 40 = 5.75 req/s */
    long n = gen_count("{kind: bursty, rate_low: 1, rate_high: 20, mean_low: 30s, mean_high: 10s, duration: 20000s}",
                       11, NULL, NULL);
    double expect = 5.75 * 20000;

    /* the state process adds variance: allow 5% */
    ck_assert_msg(fabs((double)n - expect) < 0.05 * expect, "n=%ld expect %g", n, expect);
    /* on/off */
    n = gen_count("{kind: bursty, rate_low: 0, rate_high: 10, mean_low: 5s, mean_high: 5s, duration: 20000s}", 12,
                  NULL, NULL);
    ck_assert_msg(fabs((double)n - 100000) < 5000, "n=%ld", n);
}
END_TEST

START_TEST(test_gen_determinism)
{
    const char *yaml = "{kind: bursty, rate_low: 1, rate_high: 20, mean_low: 3s, mean_high: 1s, duration: 300s,"
                       " prompt_tokens: {kind: lognormal, median: 600, sigma: 1, min: 16, max: 8192},"
                       " output_tokens: {kind: uniform, min: 1, max: 100}}";
    struct conf *c1, *c2;
    struct err e;
    struct trace_reader *a = gen_from(yaml, 5, &c1, &e), *b;
    struct trace_request ra, rb;
    int rca, rcb, differ = 0;
    long n = 0;

    b = gen_from(yaml, 5, &c2, &e);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    do {
        rca = trace_next(a, &ra, &e);
        rcb = trace_next(b, &rb, &e);
        ck_assert_int_eq(rca, rcb);
        if (rca == 1) {
            ck_assert_double_eq(ra.arrival_s, rb.arrival_s);
            ck_assert_uint_eq(ra.prompt_tokens, rb.prompt_tokens);
            ck_assert_uint_eq(ra.output_tokens, rb.output_tokens);
            ck_assert(ra.prompt_tokens >= 16 && ra.prompt_tokens <= 8192);
            ck_assert(ra.output_tokens >= 1 && ra.output_tokens <= 100);
            n++;
        }
    } while (rca == 1);
    ck_assert_int_gt(n, 100);
    trace_close(a);
    trace_close(b);
    conf_free(c1);
    conf_free(c2);
    /* another seed gives another sequence */
    a = gen_from(yaml, 5, &c1, &e);
    b = gen_from(yaml, 6, &c2, &e);
    while (trace_next(a, &ra, &e) == 1 && trace_next(b, &rb, &e) == 1)
        differ += ra.arrival_s != rb.arrival_s;
    ck_assert_int_gt(differ, 0);
    trace_close(a);
    trace_close(b);
    conf_free(c1);
    conf_free(c2);
}
END_TEST

START_TEST(test_gen_defaults_and_repeat)
{
    struct conf *c;
    struct err e;
    struct trace_reader *r = gen_from("{kind: poisson, rate: 50, duration: 200s, "
                                      "repeat: {fraction: 0.5, zipf_s: 1.2, keys: 100}}",
                                      9, &c, &e);
    struct trace_request req;
    long n = 0, hashed = 0;

    ck_assert_msg(r != NULL, "%s", e.msg);
    while (trace_next(r, &req, &e) == 1) { /* defaults: fixed 512 and 128 */
        n++;
        ck_assert_uint_eq(req.prompt_tokens, 512);
        ck_assert_uint_eq(req.output_tokens, 128);
        hashed += req.prompt_hash != 0; /* with repeat, every prompt has an identity */
    }
    ck_assert_int_eq(hashed, n);
    trace_close(r);
    conf_free(c);
    /* with fraction 1 every prompt is one of 100 keys; the most popular with
     * s = 1.2 has share 1 / H(100, 1.2) ~ 0.24, and each key keeps its size */
    r = gen_from("{kind: poisson, rate: 50, duration: 200s, prompt_tokens: {kind: lognormal, median: 300, sigma: 1},"
                 " repeat: {fraction: 1, zipf_s: 1.2, keys: 100}}",
                 9, &c, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    {
        uint64_t keys[100];
        uint32_t lens[100];
        long counts[100], top = 0, total = 0;
        size_t nkeys = 0, k;
        double h = 0;

        while (trace_next(r, &req, &e) == 1) {
            total++;
            for (k = 0; k < nkeys && keys[k] != req.prompt_hash; k++)
                ;
            if (k == nkeys) {
                ck_assert_uint_lt(nkeys, 100);
                keys[k] = req.prompt_hash;
                lens[k] = req.prompt_tokens;
                counts[k] = 0;
                nkeys++;
            }
            ck_assert_uint_eq(req.prompt_tokens, lens[k]);
            counts[k]++;
        }
        for (k = 0; k < nkeys; k++)
            if (counts[k] > top)
                top = counts[k];
        for (k = 1; k <= 100; k++)
            h += pow((double)k, -1.2);
        ck_assert_msg(fabs((double)top / (double)total - 1 / h) < 0.03, "top share %g vs %g", (double)top / (double)total,
                      1 / h);
    }
    trace_close(r);
    conf_free(c);
}
END_TEST

START_TEST(test_gen_spec_errors)
{
    expect_gen_error("kind: poisson\nrate: 5\nduration: 10m\nburst: 3\n", 4, "unknown key 'burst' in generator (poisson)");
    expect_gen_error("kind: poisson\nrate: 5\n", 1, "duration: required");
    expect_gen_error("kind: poisson\nduration: 10m\nrate: -1\n", 3, "rate");
    expect_gen_error("kind: poisson\nduration: 10m\nrate: 0\n", 3, "rate");
    expect_gen_error("kind: weibull\nduration: 10m\n", 1, "kind: unknown value 'weibull'");
    expect_gen_error("rate: 5\nduration: 10m\n", 1, "'kind' is required");
    expect_gen_error("kind: poisson\nrate: 5\nduration: ten minutes\n", 3, "duration");
    expect_gen_error("kind: diurnal\nrate: 5\nduration: 1h\namplitude: 1.5\n", 4, "amplitude");
    expect_gen_error("kind: bursty\nrate_high: 5\nduration: 1h\nmean_low: 10s\n", 1, "mean_high: required");
    expect_gen_error("kind: poisson\nrate: 5\nduration: 1h\nprompt_tokens:\n  kind: lognormal\n  median: 100\n", 5,
                     "'median' and 'sigma' are required");
    expect_gen_error("kind: poisson\nrate: 5\nduration: 1h\nprompt_tokens:\n  kind: uniform\n  min: 10\n  max: 5\n", 7,
                     "max: 5 is less than min 10");
    expect_gen_error("kind: poisson\nrate: 5\nduration: 1h\noutput_tokens:\n  kind: fixed\n  value: 1.5\n", 6, "value");
    expect_gen_error("kind: poisson\nrate: 5\nduration: 1h\noutput_tokens:\n  kind: fixed\n  vaule: 3\n", 6,
                     "unknown key 'vaule'");
    expect_gen_error("kind: poisson\nrate: 5\nduration: 1h\nrepeat:\n  fraction: 2\n", 5, "fraction");
    /* a missing file is an I/O error (exit 1), still located */
    expect_gen_error_code("kind: poisson\nrate: 5\nduration: 1h\noutput_tokens:\n  kind: empirical\n  trace: nope.csv\n",
                          6, ERR_SYSTEM, "nope.csv");
}
END_TEST

static Suite *suite_generator(void)
{
    Suite *s = suite_create("generator");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gen_poisson);
    tcase_add_test(tc, test_gen_diurnal_peak_trough);
    tcase_add_test(tc, test_gen_bursty_mean_rate);
    tcase_add_test(tc, test_gen_determinism);
    tcase_add_test(tc, test_gen_defaults_and_repeat);
    tcase_add_test(tc, test_gen_spec_errors);
    suite_add_tcase(s, tc);
    return s;
}

/* --- lengths ----------------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

START_TEST(test_lengths_lognormal_median)
{
    struct conf *c;
    struct err e;
    struct lengths *l;
    struct rng r;
    static uint32_t v[20001];
    int i;

    c = conf_load_string("{kind: lognormal, median: 600, sigma: 1.0, min: 16, max: 8192}", "l.yaml", &e);
    ck_assert_ptr_nonnull(c);
    l = lengths_open(c, conf_root(c), "prompt_tokens", 1, &e);
    ck_assert_msg(l != NULL, "%s", e.msg);
    ck_assert_str_eq(lengths_kind(l), "lognormal");
    rng_init(&r, 1, RNG_STREAM_PROMPT_LEN);
    for (i = 0; i < 20001; i++) {
        v[i] = lengths_draw(l, &r);
        ck_assert(v[i] >= 16 && v[i] <= 8192);
    }
    qsort(v, 20001, sizeof(v[0]), cmp_u32);
    /* the sample median of n lognormal draws has sd ~ 1.2533 sigma m / sqrt(n) */
    ck_assert_msg(fabs((double)v[10000] - 600) < 4 * 1.2533 * 600 / sqrt(20001.0), "median %u", v[10000]);
    lengths_free(l);
    conf_free(c);
}
END_TEST

START_TEST(test_lengths_empirical)
{
    struct conf *c;
    struct err e;
    struct lengths *l;
    struct rng r;
    char yaml[700];
    long counts[3] = {0, 0, 0};
    int i;

    write_text("emp.csv", NAT_HEAD "0,10,1,,\n1,10,2,,\n2,10,3,,\n3,20,4,,\n");
    snprintf(yaml, sizeof(yaml), "{kind: empirical, trace: emp.csv, column: prompt}");
    {
        char origin[600];

        snprintf(origin, sizeof(origin), "%s/spec.yaml", tmpdir); /* relative to the spec's directory */
        c = conf_load_string(yaml, origin, &e);
    }
    ck_assert_ptr_nonnull(c);
    l = lengths_open(c, conf_root(c), "prompt_tokens", 1, &e);
    ck_assert_msg(l != NULL, "%s", e.msg);
    rng_init(&r, 1, RNG_STREAM_PROMPT_LEN);
    for (i = 0; i < 40000; i++) {
        uint32_t x = lengths_draw(l, &r);

        ck_assert_msg(x == 10 || x == 20, "drew %u", x);
        counts[x == 10 ? 0 : 1]++;
    }
    ck_assert_msg(fabs(counts[0] / 40000.0 - 0.75) < 0.02, "share of 10: %g", counts[0] / 40000.0);
    lengths_free(l);
    conf_free(c);
}
END_TEST

static Suite *suite_lengths(void)
{
    Suite *s = suite_create("lengths");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
    tcase_add_test(tc, test_lengths_lognormal_median);
    tcase_add_test(tc, test_lengths_empirical);
    suite_add_tcase(s, tc);
    return s;
}

/* --- workload_open ------------------------------------------------------------------ */

/* Open the workload section of scenario YAML written to tmpdir/scenario.yaml. */
static struct trace_reader *workload_from(const char *yaml, struct conf **cp, struct err *e)
{
    const char *path = write_text("scenario.yaml", yaml);
    struct conf *c = conf_load_file(path, e);

    ck_assert_msg(c != NULL, "%s", e->msg);
    *cp = c;
    return workload_open(c, conf_get(conf_root(c), "workload"), 1, e);
}

START_TEST(test_workload_trace_and_generator)
{
    struct conf *c;
    struct err e;
    struct trace_reader *r;
    struct trace_request req;
    long n = 0;

    write_text("w.csv", NAT_HEAD "0,1,1,,\n1,1,1,,\n2,1,1,,\n3,1,1,,\n");
    r = workload_from("workload:\n  trace: w.csv\n  time_scale: 10\n  limit: 3\n", &c, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    while (trace_next(r, &req, &e) == 1)
        n++;
    ck_assert_int_eq(n, 3);
    ck_assert_double_eq(req.arrival_s, 20);
    trace_close(r);
    conf_free(c);
    /* a generator without its own duration, bounded by the workload */
    r = workload_from("workload:\n  generator: {kind: poisson, rate: 10}\n  duration: 100s\n", &c, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    for (n = 0; trace_next(r, &req, &e) == 1; n++)
        ck_assert(req.arrival_s <= 100);
    ck_assert_msg(n > 800 && n < 1200, "n=%ld", n);
    trace_close(r);
    conf_free(c);
    /* a generator spec in its own file */
    write_text("gen.yaml", "kind: poisson\nrate: 2\nduration: 10s\n");
    r = workload_from("workload:\n  generator: gen.yaml\n", &c, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    trace_close(r);
    conf_free(c);
}
END_TEST

/* Expect the workload YAML to fail naming scenario.yaml:LINE and WANT. */
static void expect_workload_error_code(const char *yaml, long line, enum err_code code, const char *want)
{
    struct conf *c;
    struct err e;
    char where[700];

    err_clear(&e);
    ck_assert_ptr_null(workload_from(yaml, &c, &e));
    ck_assert_int_eq(e.code, code);
    snprintf(where, sizeof(where), "%s/scenario.yaml:%ld: ", tmpdir, line);
    ck_assert_msg(strstr(e.msg, where) != NULL, "'%s' does not name %s", e.msg, where);
    ck_assert_msg(strstr(e.msg, want) != NULL, "'%s' does not contain '%s'", e.msg, want);
    conf_free(c);
}

static void expect_workload_error(const char *yaml, long line, const char *want)
{
    expect_workload_error_code(yaml, line, ERR_INPUT, want);
}

START_TEST(test_workload_errors)
{
    write_text("w.csv", NAT_HEAD "0,1,1,,\n");
    expect_workload_error("workload:\n  trace: w.csv\n  generator: {kind: poisson, rate: 1, duration: 1s}\n", 2,
                          "exactly one of");
    expect_workload_error("workload:\n  limit: 5\n", 2, "exactly one of");
    expect_workload_error("workload:\n  trace: w.csv\n  format: parquet\n", 3, "unknown trace format 'parquet'");
    expect_workload_error("workload:\n  trace: w.csv\n  rate_scal: 2\n", 3, "unknown key 'rate_scal'");
    expect_workload_error("workload:\n  trace: w.csv\n  time_scale: -2\n", 3, "time_scale");
    expect_workload_error("workload:\n  trace: w.csv\n  limit: -2\n", 3, "limit");
    expect_workload_error_code("workload:\n  trace: missing.csv\n", 2, ERR_SYSTEM, "missing.csv");
    expect_workload_error_code("workload:\n  generator: nope.yaml\n", 2, ERR_SYSTEM, "nope.yaml");
    expect_workload_error("workload:\n  generator: {kind: poisson, rate: 1}\n", 2, "duration: required");
    expect_workload_error("workload:\n  generator: {kind: poisson, rate: 1, duration: 1s}\n  format: azure\n", 3,
                          "format: only applies");
}
END_TEST

static Suite *suite_workload(void)
{
    Suite *s = suite_create("workload");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
    tcase_add_test(tc, test_workload_trace_and_generator);
    tcase_add_test(tc, test_workload_errors);
    suite_add_tcase(s, tc);
    return s;
}

/* --- memory ---------------------------------------------------------------------------- */

/* Resident set size in KiB, from /proc (0 when unavailable). */
static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Generate 1e6 requests to a file, read them back: RSS after the first
 * 50,000 and at the end differ by well under what holding them would take
 * (1e6 requests x 32 bytes = 31 MiB). */
START_TEST(test_memory_flat)
{
    struct conf *c;
    struct err e;
    struct trace_reader *r = gen_from("{kind: poisson, rate: 1000, duration: 1000s}", 1, &c, &e);
    struct trace_writer *w;
    struct trace_request req;
    char path[600];
    long n = 0, rss_early = 0, rss_end;
    int rc;

    snprintf(path, sizeof(path), "%s/big.csv", tmpdir);
    w = trace_writer_open(path, &e);
    ck_assert_ptr_nonnull(w);
    while (trace_next(r, &req, &e) == 1)
        ck_assert_int_eq(trace_writer_put(w, &req, &e), 0);
    ck_assert_int_eq(trace_writer_close(w, &e), 0);
    trace_close(r);
    conf_free(c);
    r = trace_open_file(path, NULL, &e);
    ck_assert_ptr_nonnull(r);
    while ((rc = trace_next(r, &req, &e)) == 1)
        if (++n == 50000)
            rss_early = rss_kib();
    ck_assert_int_eq(rc, 0);
    rss_end = rss_kib();
    trace_close(r);
    ck_assert_msg(n > 990000, "n=%ld", n);
    if (rss_early == 0) {
        printf("check_workloads: /proc/self/statm unavailable: memory test skipped\n");
        return;
    }
    ck_assert_msg(rss_end - rss_early < 4096, "RSS grew by %ld KiB while reading", rss_end - rss_early);
}
END_TEST

static Suite *suite_memory(void)
{
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_memory_flat);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_linereader());
    int failed;

    log_init("check_workloads");
    srunner_add_suite(sr, suite_trace_azure());
    srunner_add_suite(sr, suite_trace_burstgpt());
    srunner_add_suite(sr, suite_trace_mooncake());
    srunner_add_suite(sr, suite_trace_native());
    srunner_add_suite(sr, suite_trace_detect());
    srunner_add_suite(sr, suite_trace_options());
    srunner_add_suite(sr, suite_generator());
    srunner_add_suite(sr, suite_lengths());
    srunner_add_suite(sr, suite_workload());
    srunner_add_suite(sr, suite_memory());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
