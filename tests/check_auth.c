/* check_auth.c -- unit tests of server/auth.c: the key file (good, malformed
 * and hostile), Bearer checks, the constant-time compare, and the
 * per-process GCRA rate limits.  (The Redis limiter is tested with a real
 * redis-server in check_rcache.c.) */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/auth.h"

#define ASSERT_HAS(m, s) ck_assert_msg(strstr((m), (s)) != NULL, "expected '%s' in: %s", (s), (m))

static char path[64];

static void write_file(const char *text)
{
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "/tmp/check_auth_XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
}

static void expect_bad(const char *text, const char *msg)
{
    struct err e;
    struct auth *a;

    write_file(text);
    err_clear(&e);
    a = auth_load(path, &e);
    unlink(path);
    ck_assert_msg(a == NULL, "accepted: %s", text);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ASSERT_HAS(e.msg, msg);
}

START_TEST(test_keys_load_and_check)
{
    struct err e;
    struct auth *a;

    write_file("# keys\n\nsk-alpha-123 alice\n  sk-beta-456\t bob  \nsk-gamma\n");
    a = auth_load(path, &e);
    unlink(path);
    ck_assert_msg(a != NULL, "%s", e.msg);
    ck_assert_int_eq(auth_n_keys(a), 3);
    ck_assert_str_eq(auth_check(a, "Bearer sk-alpha-123"), "alice");
    ck_assert_str_eq(auth_check(a, "bearer sk-beta-456"), "bob");
    ck_assert_str_eq(auth_check(a, "Bearer sk-gamma"), "key-5");
    ck_assert_ptr_null(auth_check(a, NULL));
    ck_assert_ptr_null(auth_check(a, ""));
    ck_assert_ptr_null(auth_check(a, "sk-alpha-123"));          /* no scheme */
    ck_assert_ptr_null(auth_check(a, "Basic sk-alpha-123"));
    ck_assert_ptr_null(auth_check(a, "Bearer sk-alpha-12"));    /* a prefix */
    ck_assert_ptr_null(auth_check(a, "Bearer sk-alpha-1234"));  /* longer */
    ck_assert_ptr_null(auth_check(a, "Bearer "));
    ck_assert_ptr_null(auth_check(a, "Bearer alice"));          /* a name is not a key */
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "Bearer ", 7);
    ck_assert_ptr_null(auth_check(a, big));
    auth_free(a);
}
END_TEST

START_TEST(test_keys_bad_files)
{
    struct err e;

    expect_bad("", "no keys");
    expect_bad("# only comments\n\n", "no keys");
    expect_bad("k1 a\nk1 b\n", ":2: duplicate key");
    expect_bad("k1 a\nk2 a\n", ":2: duplicate name 'a'");
    expect_bad("k1 two words\n", ":1: expected 'KEY [NAME]'");
    expect_bad("k1\x01x a\n", ":1: control character");
    char *long_key = malloc(600);
    memset(long_key, 'k', 599);
    long_key[599] = '\0';
    expect_bad(long_key, ":1: key longer than");
    free(long_key);
    err_clear(&e);
    ck_assert_ptr_null(auth_load("/nonexistent/keys", &e));
    ck_assert_int_eq(e.code, ERR_SYSTEM);
    ASSERT_HAS(e.msg, "/nonexistent/keys");
}
END_TEST

START_TEST(test_ct_equal)
{
    ck_assert_int_eq(auth_ct_equal("abc", 3, "abc", 3), 1);
    ck_assert_int_eq(auth_ct_equal("abc", 3, "abd", 3), 0);
    ck_assert_int_eq(auth_ct_equal("abc", 3, "ab", 2), 0);
    ck_assert_int_eq(auth_ct_equal("", 0, "", 0), 1);
    /* a NUL inside counts */
    ck_assert_int_eq(auth_ct_equal("a\0b", 3, "a\0c", 3), 0);
    ck_assert_int_eq(auth_ct_equal("x", AUTH_KEY_MAX + 1, "x", AUTH_KEY_MAX + 1), 0);
}
END_TEST

/* 60 requests/min: a burst of 60 passes, the 61st waits about a second. */
START_TEST(test_rate_requests)
{
    struct ratelimit_opts o = {.requests_per_min = 60};
    struct ratelimit *rl = ratelimit_create(&o, NULL);
    double retry;
    int i;

    for (i = 0; i < 60; i++)
        ck_assert_msg(ratelimit_check(rl, "alice", 1, &retry) == 0, "request %d limited", i);
    ck_assert_int_eq(ratelimit_check(rl, "alice", 1, &retry), 1);
    ck_assert_msg(retry > 0.5 && retry <= 1.01, "retry %g", retry);
    /* another key has its own budget */
    ck_assert_int_eq(ratelimit_check(rl, "bob", 1, &retry), 0);
    ratelimit_free(rl);
}
END_TEST

/* Tokens per minute: a request over the rest of the budget is refused and
 * not charged; a smaller one still passes. */
START_TEST(test_rate_tokens)
{
    struct ratelimit_opts o = {.tokens_per_min = 1000};
    struct ratelimit *rl = ratelimit_create(&o, NULL);
    double retry;

    ck_assert_int_eq(ratelimit_check(rl, "k", 900, &retry), 0);
    ck_assert_int_eq(ratelimit_check(rl, "k", 200, &retry), 1);
    ck_assert_msg(retry > 5 && retry < 7, "retry %g (100 tokens at 1000/min: 6 s)", retry);
    ck_assert_int_eq(ratelimit_check(rl, "k", 100, &retry), 0);
    ck_assert_int_eq(ratelimit_check(rl, "k", 1, &retry), 1);
    /* unlimited */
    ratelimit_free(rl);
    o.tokens_per_min = 0;
    rl = ratelimit_create(&o, NULL);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(ratelimit_check(rl, "k", 1000000, &retry), 0);
    ratelimit_free(rl);
}
END_TEST

/* Both budgets: refused by one, neither is charged. */
START_TEST(test_rate_both)
{
    struct ratelimit_opts o = {.requests_per_min = 2, .tokens_per_min = 100};
    struct ratelimit *rl = ratelimit_create(&o, NULL);
    double retry;

    ck_assert_int_eq(ratelimit_check(rl, "k", 500, &retry), 1); /* tokens refuse */
    ck_assert_int_eq(ratelimit_check(rl, "k", 10, &retry), 0);
    ck_assert_int_eq(ratelimit_check(rl, "k", 10, &retry), 0);  /* the request budget was not charged above */
    ck_assert_int_eq(ratelimit_check(rl, "k", 10, &retry), 1);
    ratelimit_free(rl);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_keys_load_and_check);
    tcase_add_test(tc, test_keys_bad_files);
    tcase_add_test(tc, test_ct_equal);
    tcase_add_test(tc, test_rate_requests);
    tcase_add_test(tc, test_rate_tokens);
    tcase_add_test(tc, test_rate_both);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
