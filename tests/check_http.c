/* check_http.c -- unit tests of server/http.c in process: the server on a
 * free port over a synthetic model's engine, asked over a plain socket.
 * A broken engine (server/engine.c, ENGINE_BROKEN_STEPS failed steps in a
 * row; injected here with engine_fail_next_steps) fails /healthz and
 * /readyz with the reason, sets llmserve_engine_broken and clears
 * llmserve_ready in /metrics, and generations are refused with 503.
 * (tests/server_*.sh drive the built llmserve over the network.) */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "server/engine.h"
#include "server/http.h"
#include "server/model.h"
#include "server/tokenizer.h"

#define VOCAB 32000
#define MODEL "synthetic:dim=64,layers=1,heads=2,hidden=64,vocab=32000,seq=256,seed=9"

#define ASSERT_HAS(s, sub) ck_assert_msg(strstr((s), (sub)) != NULL, "expected '%s' in:\n%s", (sub), (s))

/* Send METHOD PATH (with BODY when not NULL) to 127.0.0.1:PORT as HTTP/1.0
 * and read the answer until the server closes.  Returns the status; the
 * answer's body in OUT (CAP bytes, NUL-terminated). */
static int http_call(int port, const char *method, const char *path, const char *body, char *out, size_t cap)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[1024], *resp = malloc(1 << 20), *b;
    size_t len = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;

    ck_assert_ptr_nonnull(resp);
    ck_assert_int_ge(fd, 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: localhost\r\n", method, path);
    if (body != NULL)
        n += snprintf(req + n, sizeof req - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      strlen(body));
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n%s", body != NULL ? body : "");
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    while (len < (1 << 20) - 1 && (n = read(fd, resp + len, (1 << 20) - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    resp[len] = '\0';
    sscanf(resp, "HTTP/1.%*d %d", &status);
    b = strstr(resp, "\r\n\r\n");
    snprintf(out, cap, "%s", b != NULL ? b + 4 : "");
    free(resp);
    return status;
}

/* Submit PROMPT to ENG directly and wait (10 s at most) for its final event. */
struct final_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    enum engine_finish finish;
};

static void on_final(void *ctx, const struct engine_event *ev)
{
    struct final_wait *w = ctx;

    if (ev->finish == ENGINE_FINISH_NONE)
        return;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->finish = ev->finish;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static enum engine_finish run_direct(struct engine *eng)
{
    struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = 2, .ignore_eos = 1};
    struct final_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct timespec until;
    struct err e = {0};
    int prompt[2] = {1, 42};

    ck_assert_msg(engine_submit(eng, prompt, 2, &p, on_final, &w, NULL, &e) == 0, "%s", e.msg);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        ck_assert_msg(pthread_cond_timedwait(&w.cv, &w.mu, &until) == 0 || w.done, "no final event in 10 s");
    pthread_mutex_unlock(&w.mu);
    return w.finish;
}

START_TEST(test_broken_engine_fails_probes)
{
    const char *dir = getenv("LLMSCALE_SHARED");
    char path[4096], out[1 << 16];
    struct model m = {0};
    struct tokenizer *tok;
    struct server srv;
    struct err e = {0};
    struct engine_opts eo = {.max_batch = 2, .threads = 1};
    const char *completion = "{\"prompt\":\"Once\",\"max_tokens\":2}";

    ck_assert_msg(model_load(&m, MODEL, NULL, &e) == 0, "%s", e.msg);
    /* the API needs a tokenizer; the probes and metrics do not */
    snprintf(path, sizeof path, "%s/models/tokenizer.bin", dir != NULL && dir[0] ? dir : "../shared");
    tok = tokenizer_load(path, VOCAB, &e);
    if (tok == NULL)
        fprintf(stderr, "SKIP (the API's part): %s: %s\n", path, e.msg);
    m.tokenizer = tok;

    memset(&srv, 0, sizeof srv);
    server_opts_default(&srv.opts);
    srv.opts.port = 0;
    srv.opts.http_threads = 2;
    srv.opts.log_requests = 0;
    srv.opts.chat_template = CHAT_TEMPLATE_RAW;
    srv.model = &m;
    srv.tok = tok;
    srv.model_id = "synthetic";
    ck_assert_msg(server_start(&srv, &e) == 0, "%s", e.msg);
    srv.eng = engine_create(&m, &eo, &e);
    ck_assert_msg(srv.eng != NULL, "%s", e.msg);
    atomic_store(&srv.ready, 1);

    /* healthy */
    ck_assert_int_eq(http_call(srv.port, "GET", "/healthz", NULL, out, sizeof out), 200);
    ck_assert_int_eq(http_call(srv.port, "GET", "/readyz", NULL, out, sizeof out), 200);
    ck_assert_int_eq(http_call(srv.port, "GET", "/metrics", NULL, out, sizeof out), 200);
    ASSERT_HAS(out, "# TYPE llmserve_engine_broken gauge\n");
    ASSERT_HAS(out, "\nllmserve_engine_broken 0\n");
    ASSERT_HAS(out, "\nllmserve_ready 1\n");
    if (tok != NULL) {
        /* one failed step: 500 for its request, and the pod stays healthy */
        engine_fail_next_steps(srv.eng, 1, "device hiccup");
        ck_assert_int_eq(http_call(srv.port, "POST", "/v1/completions", completion, out, sizeof out), 500);
        ASSERT_HAS(out, "\"code\":\"engine_error\"");
        ASSERT_HAS(out, "the forward pass failed: device hiccup");
        ck_assert_int_eq(http_call(srv.port, "POST", "/v1/completions", completion, out, sizeof out), 200);
        ck_assert_int_eq(http_call(srv.port, "GET", "/healthz", NULL, out, sizeof out), 200);
    }

    /* three failed steps in a row: broken */
    engine_fail_next_steps(srv.eng, ENGINE_BROKEN_STEPS, "illegal memory access");
    for (int i = 0; i < ENGINE_BROKEN_STEPS; i++)
        ck_assert_int_eq(run_direct(srv.eng), ENGINE_FINISH_ERROR);
    ck_assert_int_eq(engine_broken(srv.eng, NULL, 0), 1);

    ck_assert_int_eq(http_call(srv.port, "GET", "/healthz", NULL, out, sizeof out), 503);
    ck_assert_str_eq(out, "engine broken: the forward pass failed: illegal memory access (3 steps in a row)\n");
    ck_assert_int_eq(http_call(srv.port, "GET", "/readyz", NULL, out, sizeof out), 503);
    ASSERT_HAS(out, "engine broken: the forward pass failed: illegal memory access");
    if (tok != NULL) {
        ck_assert_int_eq(http_call(srv.port, "POST", "/v1/completions", completion, out, sizeof out), 503);
        ASSERT_HAS(out, "\"type\":\"service_unavailable\"");
        ASSERT_HAS(out, "\"code\":\"engine_broken\"");
        ASSERT_HAS(out, "engine broken: the forward pass failed: illegal memory access");
    }
    ck_assert_int_eq(http_call(srv.port, "GET", "/metrics", NULL, out, sizeof out), 200);
    ASSERT_HAS(out, "\nllmserve_engine_broken 1\n");
    ASSERT_HAS(out, "\nllmserve_ready 0\n");
    ASSERT_HAS(out, tok != NULL ? "\nllmserve_rejected_total{reason=\"engine_broken\"} 1\n"
                                : "\nllmserve_rejected_total{reason=\"engine_broken\"} 0\n");

    server_stop_engine(&srv);
    server_free(&srv);
    m.tokenizer = NULL;
    tokenizer_free(tok);
    model_free(&m);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_broken_engine_fails_probes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
