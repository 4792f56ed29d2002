/* check_rcache.c -- unit tests of server/rcache.c (the memory LRU with its
 * TTL and size bound; the Redis backend and link) and of the Redis rate
 * limiter (server/auth.c), against a real redis-server this test starts on
 * a free port and kills mid-run: the cache and the limiter fail open fast,
 * count their errors, and reconnect when Redis is back.  The Redis cases
 * skip, saying so, when redis-server is not installed. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "server/auth.h"
#include "server/rcache.h"

extern char **environ;

#define ASSERT_HAS(m, s) ck_assert_msg(strstr((m), (s)) != NULL, "expected '%s' in: %s", (s), (m))

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ==== a redis-server of our own ============================================ */

static pid_t redis_pid = -1;
static int redis_port;
static char redis_url[64];

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &len))
        return -1;
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int redis_ping(void)
{
    struct timeval tv = {0, 100000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    redisReply *r;
    int ok = 0;

    if (c != NULL && !c->err && (r = redisCommand(c, "PING")) != NULL) {
        ok = r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    return ok;
}

/* Start redis-server on REDIS_PORT.  0, or -1 when it is not installed. */
static int redis_start(void)
{
    char port[16];
    /* DEBUG SLEEP (the slow-Redis case) needs --enable-debug-command on Redis 7 */
    char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--loglevel", "warning", "--enable-debug-command", "local", NULL};
    posix_spawn_file_actions_t fa;

    snprintf(port, sizeof(port), "%d", redis_port);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
    if (posix_spawnp(&redis_pid, "redis-server", &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        redis_pid = -1;
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 200; i++) {
        if (redis_ping())
            return 0;
        usleep(20000);
    }
    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, NULL, 0);
    redis_pid = -1;
    return -1;
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = -1;
    }
}

static int have_redis;

static void redis_setup(void)
{
    redis_port = free_port();
    snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%d", redis_port);
    have_redis = redis_start() == 0;
    if (!have_redis)
        fprintf(stderr, "check_rcache: SKIP the Redis cases: redis-server not installed or not starting\n");
}

static void redis_teardown(void)
{
    redis_stop();
}

/* ==== memory backend ========================================================== */

static struct rcache *mem_cache(double ttl_s, size_t max_bytes)
{
    struct rcache_opts o = {.url = "memory", .ttl_s = ttl_s, .max_bytes = max_bytes};
    struct err e;
    struct rcache *c = rcache_create(&o, &e);

    ck_assert_msg(c != NULL, "%s", e.msg);
    return c;
}

START_TEST(test_memory_get_put)
{
    struct rcache *c = mem_cache(60, 0);
    struct rcache_stats st;
    char *v;
    size_t n;

    ck_assert_int_eq(rcache_get(c, "k1", &v, &n), 0);
    ck_assert_int_eq(rcache_put(c, "k1", "value one", 9), 0);
    ck_assert_int_eq(rcache_get(c, "k1", &v, &n), 1);
    ck_assert_uint_eq(n, 9);
    ck_assert_str_eq(v, "value one");
    free(v);
    ck_assert_int_eq(rcache_put(c, "k1", "two", 3), 0); /* replaces */
    ck_assert_int_eq(rcache_get(c, "k1", &v, &n), 1);
    ck_assert_str_eq(v, "two");
    free(v);
    /* binary values */
    ck_assert_int_eq(rcache_put(c, "k2", "a\0b", 3), 0);
    ck_assert_int_eq(rcache_get(c, "k2", &v, &n), 1);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(v, "a\0b", 3), 0);
    free(v);
    rcache_get_stats(c, &st);
    ck_assert_uint_eq(st.hits, 3);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.entries, 2);
    ck_assert_int_eq(st.is_redis, 0);
    rcache_free(c);
}
END_TEST

START_TEST(test_memory_ttl)
{
    struct rcache *c = mem_cache(0.2, 0);
    char *v;
    size_t n;

    rcache_put(c, "k", "v", 1);
    ck_assert_int_eq(rcache_get(c, "k", &v, &n), 1);
    free(v);
    usleep(300000);
    ck_assert_int_eq(rcache_get(c, "k", &v, &n), 0);
    rcache_free(c);
}
END_TEST

/* The byte bound evicts the least recently used entry first. */
START_TEST(test_memory_lru_bound)
{
    struct rcache *c = mem_cache(60, 4096);
    struct rcache_stats st;
    char key[33], val[200], *v;
    size_t n;
    int i;

    memset(val, 'x', sizeof(val));
    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        rcache_put(c, key, val, sizeof(val));
        ck_assert_int_eq(rcache_get(c, "key0", &v, &n), 1); /* key0 stays hot */
        free(v);
    }
    for (i = 10; i < 1000; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        rcache_put(c, key, val, sizeof(val));
        ck_assert_int_eq(rcache_get(c, "key0", &v, &n), 1);
        free(v);
    }
    rcache_get_stats(c, &st);
    ck_assert_uint_le(st.bytes, 4096);
    ck_assert_uint_gt(st.entries, 3);
    ck_assert_int_eq(rcache_get(c, "key1", &v, &n), 0);   /* cold: evicted */
    ck_assert_int_eq(rcache_get(c, "key999", &v, &n), 1); /* newest: kept */
    free(v);
    /* a value larger than the whole cache is not kept (and is no error) */
    char *big = calloc(1, 8192);
    ck_assert_int_eq(rcache_put(c, "big", big, 8192), 0);
    ck_assert_int_eq(rcache_get(c, "big", &v, &n), 0);
    free(big);
    rcache_free(c);
}
END_TEST

/* Many keys: the table grows, all found. */
START_TEST(test_memory_many)
{
    struct rcache *c = mem_cache(60, 64 << 20);
    char key[33], *v;
    size_t n;
    int i;

    for (i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "%032x", i);
        rcache_put(c, key, key, 32);
    }
    for (i = 0; i < 20000; i += 97) {
        snprintf(key, sizeof(key), "%032x", i);
        ck_assert_int_eq(rcache_get(c, key, &v, &n), 1);
        ck_assert_str_eq(v, key);
        free(v);
    }
    rcache_free(c);
}
END_TEST

START_TEST(test_bad_urls)
{
    static const char *const bad[] = {"memcached://x", "redis://", "redis://:6379", "redis://h:0", "redis://h:99999",
                                      "redis://h:12x", "redis://h:1/x", "redis://h:1/", "", NULL};
    struct rcache_opts o = {0};
    struct err e;

    for (int i = 0; bad[i] != NULL; i++) {
        o.url = bad[i];
        err_clear(&e);
        ck_assert_msg(rcache_create(&o, &e) == NULL, "accepted %s", bad[i]);
        ck_assert_int_eq(e.code, ERR_INPUT);
    }
    o.url = "redis://localhost";
    struct rcache *c = rcache_create(&o, &e);
    ck_assert_ptr_nonnull(c); /* lazily connected: no server needed yet */
    rcache_free(c);
}
END_TEST

/* ==== Redis backend ==================================================================== */

START_TEST(test_redis_cache)
{
    struct rcache_opts o = {.url = redis_url, .ttl_s = 1, .timeout_ms = 50};
    struct err e;
    struct rcache *c;
    struct rcache_stats st;
    char *v;
    size_t n;

    if (!have_redis)
        return;
    c = rcache_create(&o, &e);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(rcache_get(c, "r1", &v, &n), 0);
    ck_assert_int_eq(rcache_put(c, "r1", "hello\0world", 11), 0);
    ck_assert_int_eq(rcache_get(c, "r1", &v, &n), 1);
    ck_assert_uint_eq(n, 11);
    ck_assert_int_eq(memcmp(v, "hello\0world", 11), 0);
    free(v);
    rcache_get_stats(c, &st);
    ck_assert_int_eq(st.is_redis, 1);
    ck_assert_int_eq(st.redis_up, 1);
    usleep(1200000); /* the TTL, kept by Redis */
    ck_assert_int_eq(rcache_get(c, "r1", &v, &n), 0);
    rcache_free(c);
}
END_TEST

/* Redis killed: every call fails fast (no waiting on a dead server),
 * errors are counted, and after a restart the link comes back by itself. */
START_TEST(test_redis_fail_open_and_reconnect)
{
    struct rcache_opts o = {.url = redis_url, .ttl_s = 60, .timeout_ms = 50};
    struct err e;
    struct rcache *c;
    struct rcache_stats st;
    char *v;
    size_t n;
    double t0, worst = 0;
    int i;

    if (!have_redis)
        return;
    c = rcache_create(&o, &e);
    ck_assert_int_eq(rcache_put(c, "k", "v", 1), 0);
    redis_stop();
    for (i = 0; i < 200; i++) {
        t0 = now_s();
        ck_assert_int_eq(rcache_get(c, "k", &v, &n), -1);
        if (now_s() - t0 > worst)
            worst = now_s() - t0;
    }
    ck_assert_msg(worst < 0.2, "a call waited %.3f s on a dead Redis", worst);
    rcache_get_stats(c, &st);
    ck_assert_uint_eq(st.errors, 200);
    ck_assert_int_eq(st.redis_up, 0);
    ck_assert_uint_ge(redis_link_errors(rcache_redis(c)), 200);
    ck_assert_int_eq(redis_start(), 0);
    /* reconnects within the backoff (at most 5 s) */
    for (i = 0; i < 150 && rcache_put(c, "k", "back", 4) != 0; i++)
        usleep(50000);
    ck_assert_int_lt(i, 150);
    ck_assert_int_eq(rcache_get(c, "k", &v, &n), 1);
    ck_assert_str_eq(v, "back");
    free(v);
    rcache_get_stats(c, &st);
    ck_assert_int_eq(st.redis_up, 1);
    rcache_free(c);
}
END_TEST

/* A slow Redis (busy in DEBUG SLEEP) costs a command its timeout, no more. */
START_TEST(test_redis_slow_times_out)
{
    struct rcache_opts o = {.url = redis_url, .ttl_s = 60, .timeout_ms = 50};
    struct err e;
    struct rcache *c;
    redisContext *blocker;
    char *v;
    size_t n;
    double t0, dt;

    if (!have_redis)
        return;
    c = rcache_create(&o, &e);
    ck_assert_int_eq(rcache_put(c, "k", "v", 1), 0);
    blocker = redisConnect("127.0.0.1", redis_port);
    ck_assert(blocker != NULL && !blocker->err);
    redisAppendCommand(blocker, "DEBUG SLEEP 1");
    int done = 0;
    redisBufferWrite(blocker, &done);
    usleep(50000);
    t0 = now_s();
    ck_assert_int_eq(rcache_get(c, "k", &v, &n), -1);
    dt = now_s() - t0;
    ck_assert_msg(dt < 0.3, "the call took %.3f s", dt);
    redisFree(blocker);
    usleep(1200000);
    rcache_free(c);
}
END_TEST

/* Two limiters on one Redis share the budget: the limit is cluster-wide.
 * With Redis gone, each falls back to its own per-process limiter. */
START_TEST(test_redis_rate_limit)
{
    struct ratelimit_opts ro = {.requests_per_min = 10};
    struct err e;
    struct redis_link *l1 = redis_link_create(redis_url, 50, &e), *l2 = redis_link_create(redis_url, 50, &e);
    struct ratelimit *a, *b;
    double retry;
    int i, allowed = 0;

    if (!have_redis) {
        redis_link_free(l1);
        redis_link_free(l2);
        return;
    }
    a = ratelimit_create(&ro, l1);
    b = ratelimit_create(&ro, l2);
    for (i = 0; i < 20; i++)
        allowed += ratelimit_check(i % 2 ? a : b, "shared", 1, &retry) == 0;
    ck_assert_int_eq(allowed, 10);
    ck_assert_int_eq(ratelimit_check(a, "shared", 1, &retry), 1);
    ck_assert_msg(retry > 4 && retry <= 6.1, "retry %g (one request per 6 s)", retry);
    ck_assert_int_eq(ratelimit_check(a, "other", 1, &retry), 0);
    ck_assert_uint_eq(ratelimit_redis_fallbacks(a), 0);
    /* the script is reloaded after Redis forgets it */
    redisContext *c = redisConnect("127.0.0.1", redis_port);
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    redisFree(c);
    ck_assert_int_eq(ratelimit_check(a, "third", 1, &retry), 0);
    ck_assert_uint_eq(ratelimit_redis_fallbacks(a), 0);
    redis_stop();
    ck_assert_int_eq(ratelimit_check(a, "shared", 1, &retry), 0); /* local budget, fresh */
    ck_assert_uint_ge(ratelimit_redis_fallbacks(a), 1);
    ratelimit_free(a);
    ratelimit_free(b);
    redis_link_free(l1);
    redis_link_free(l2);
    ck_assert_int_eq(redis_start(), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rcache");
    TCase *mem = tcase_create("memory"), *red = tcase_create("redis");
    SRunner *sr;
    int failed;

    signal(SIGPIPE, SIG_IGN);
    tcase_add_test(mem, test_memory_get_put);
    tcase_add_test(mem, test_memory_ttl);
    tcase_add_test(mem, test_memory_lru_bound);
    tcase_add_test(mem, test_memory_many);
    tcase_add_test(mem, test_bad_urls);
    suite_add_tcase(s, mem);
    tcase_add_unchecked_fixture(red, redis_setup, redis_teardown);
    tcase_set_timeout(red, 60);
    tcase_add_test(red, test_redis_cache);
    tcase_add_test(red, test_redis_fail_open_and_reconnect);
    tcase_add_test(red, test_redis_slow_times_out);
    tcase_add_test(red, test_redis_rate_limit);
    suite_add_tcase(s, red);
    sr = srunner_create(s);
    /* one process: the Redis fixture's server must outlive each test */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    redis_stop();
    return failed == 0 ? 0 : 1;
}
