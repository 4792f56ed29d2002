/* check_cpus.c -- unit tests of common/cpus.c: CPU lists for --engine-cpus,
 * good, malformed, truncated, oversized and hostile. */
#include <check.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cpus.h"

#define ASSERT_HAS(m, s) ck_assert_msg(strstr((m), (s)) != NULL, "expected '%s' in message: %s", (s), (m))

/* TEXT parses to exactly the CPUs of WANT (a list terminated by -1). */
static void parses_to(const char *text, const int *want)
{
    cpu_set_t set;
    struct err e = {0};
    int n = 0;

    ck_assert_msg(cpus_parse(text, &set, &e) == 0, "'%s': %s", text, e.msg);
    for (; want[n] >= 0; n++)
        ck_assert_msg(CPU_ISSET(want[n], &set), "'%s': CPU %d missing", text, want[n]);
    ck_assert_msg(CPU_COUNT(&set) == n, "'%s': %d CPUs, expected %d", text, CPU_COUNT(&set), n);
}

START_TEST(test_cpus_good)
{
    parses_to("0", (const int[]){0, -1});
    parses_to("3", (const int[]){3, -1});
    parses_to("0-3", (const int[]){0, 1, 2, 3, -1});
    parses_to("2-2", (const int[]){2, -1});
    parses_to("0,2-3,6", (const int[]){0, 2, 3, 6, -1});
    parses_to("5,1,5,0-1", (const int[]){0, 1, 5, -1}); /* repeats and overlaps: the union */
    parses_to("007", (const int[]){7, -1});
    parses_to("1023", (const int[]){1023, -1}); /* the last of CPU_SETSIZE */
}
END_TEST

/* Each bad list is refused with -1, ERR_INPUT and a message quoting the bad
 * item; the set is left empty. */
static void refused(const char *text, const char *msg)
{
    cpu_set_t set;
    struct err e = {0};

    ck_assert_msg(cpus_parse(text, &set, &e) == -1, "'%s' accepted", text);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ASSERT_HAS(e.msg, msg);
}

START_TEST(test_cpus_bad)
{
    refused("", "empty CPU list");
    refused("x", "'x': not a CPU number");
    refused(" 1", "not a CPU number");
    refused("1 ", "not a CPU number");
    refused("1,", "'' in '1,'");       /* truncated */
    refused("1,,2", "'' in '1,,2'");
    refused(",1", "in ',1'");
    refused("1-", "not a CPU number"); /* truncated range */
    refused("-1", "not a CPU number"); /* negative */
    refused("1-2-3", "not a CPU number");
    refused("3-1", "'3-1': the range runs backwards");
    refused("0,3-1", "'3-1' in '0,3-1': the range runs backwards");
    refused("1024", "below 1024");      /* CPU_SETSIZE */
    refused("0-1024", "below 1024");
    refused("99999999999999999999999", "below 1024"); /* no overflow */
    refused("1;rm -rf /", "not a CPU number");
    refused("0x1", "not a CPU number");
    refused("1.5", "not a CPU number");
    refused("\xff\xfe", "not a CPU number");
}
END_TEST

/* A list far longer than any message: the error stays bounded and names the
 * start of the text. */
START_TEST(test_cpus_oversized)
{
    size_t n = 1 << 20;
    char *text = malloc(n + 8);
    cpu_set_t set;
    struct err e = {0};

    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i += 2)
        memcpy(text + i, "1,", 2);
    strcpy(text + n, "x");
    ck_assert_int_eq(cpus_parse(text, &set, &e), -1);
    ASSERT_HAS(e.msg, "'x' in '1,1,1,");
    ck_assert_uint_lt(strlen(e.msg), 200);
    text[n - 1] = '\0'; /* "1,1,...,1": a million repeats of one CPU is still one CPU */
    ck_assert_int_eq(cpus_parse(text, &set, &e), 0);
    ck_assert_int_eq(CPU_COUNT(&set), 1);
    free(text);
}
END_TEST

START_TEST(test_cpus_allowed)
{
    cpu_set_t set;
    int n = cpus_allowed(&set);

    ck_assert_int_ge(n, 1);
    ck_assert_int_eq(n, CPU_COUNT(&set));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cpus");
    TCase *tc = tcase_create("cpus");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_cpus_good);
    tcase_add_test(tc, test_cpus_bad);
    tcase_add_test(tc, test_cpus_oversized);
    tcase_add_test(tc, test_cpus_allowed);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
