/* llmload_replay.c -- the replay (see llmload_int.h): one thread drives every
 * request through libcurl's multi interface, so thousands can be in flight at
 * once.  Each request is started at its arrival time on the client's
 * monotonic clock, its answer read as it streams (SSE lines, or the whole
 * body when not streaming, both bounded in size), and when its transfer ends
 * it is classified (completed, rejected, timed out, failed) and recorded. */
#include "config.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/err.h"
#include "workloads/llmload.h"
#include "workloads/llmload_int.h"
#include "workloads/trace.h"

/* One request in flight. */
struct load_req {
    struct load_record rec;
    CURL *h;
    struct curl_slist *hdrs;
    char *buf;          /* the current SSE line, or the whole answer when not streaming */
    size_t len, cap;
    long chunks;        /* streamed chunks that carried a token */
    bool done_marker;   /* saw data: [DONE] */
    bool too_big;
    bool checked_status; /* looked at the status at the first byte of the body */
    bool error_body;     /* not 2xx: keep the body (the first 64 KiB) for the error */
    char *error;        /* owned copy of an error message */
    struct load_req *prev, *next; /* the requests in flight */
};

static double load_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double load_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static void load_req_free(struct load_req *r)
{
    if (r == NULL)
        return;
    if (r->h != NULL)
        curl_easy_cleanup(r->h);
    curl_slist_free_all(r->hdrs);
    free(r->buf);
    free(r->error);
    free(r);
}

static void load_req_error(struct load_req *r, const char *fmt, const char *arg)
{
    char msg[512];
    if (r->error != NULL)
        return;
    snprintf(msg, sizeof(msg), fmt, arg);
    r->error = strdup(msg);
}

/* One complete SSE line (without its newline). */
static void load_sse_line(struct load_req *r, char *line, size_t len)
{
    json_t *ev, *choices, *usage;
    json_error_t je;

    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (len < 5 || strncmp(line, "data:", 5) != 0)
        return; /* comments, event names, blank separators */
    line += 5;
    len -= 5;
    while (len > 0 && *line == ' ') {
        line++;
        len--;
    }
    if (len == 6 && memcmp(line, "[DONE]", 6) == 0) {
        r->done_marker = true;
        return;
    }
    ev = json_loadb(line, len, JSON_ALLOW_NUL, &je); /* generated text may hold U+0000 */
    if (ev == NULL) {
        load_req_error(r, "a streamed chunk is not JSON: %s", je.text);
        return;
    }
    if (json_object_get(ev, "error") != NULL)
        load_req_error(r, "error in the stream: %.300s", json_string_value(json_object_get(
                                                              json_object_get(ev, "error"), "message")));
    choices = json_object_get(ev, "choices");
    if (json_array_size(choices) > 0) {
        json_t *c = json_array_get(choices, 0), *delta = json_object_get(c, "delta");
        /* A token: completions chunks carry "text"; chat chunks a delta with
         * "content" (the first chat delta, with only the role, is not one). */
        bool token = (json_object_get(c, "text") != NULL || json_object_get(delta, "content") != NULL) &&
                     !json_is_string(json_object_get(c, "finish_reason"));
        const char *text = json_string_value(json_object_get(c, "text"));
        if (!text)
            text = json_string_value(json_object_get(delta, "content"));
        if (token || (text && *text)) {
            r->chunks++;
            if (r->rec.first_token_s < 0)
                r->rec.first_token_s = load_now();
        }
    }
    usage = json_object_get(ev, "usage");
    if (json_is_object(usage)) {
        long p = load_usage_tokens(ev, "prompt_tokens"), c = load_usage_tokens(ev, "completion_tokens");
        if (p >= 0)
            r->rec.server_prompt_tokens = p;
        if (c >= 0)
            r->rec.server_output_tokens = c;
    }
    json_decref(ev);
}

static size_t load_write(char *data, size_t size, size_t n, void *ctx)
{
    struct load_req *r = ctx;
    size_t add = size * n, i;
    bool stream = r->rec.first_token_s != -2; /* -2 marks a non-streamed request */

    if (!r->checked_status) {
        long status = 0;
        r->checked_status = true;
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
        r->error_body = status < 200 || status > 299;
    }
    if (r->error_body) {
        /* An error answer: keep its start for the message, not parsed as SSE. */
        stream = false;
        if (r->len + add > 65536)
            add = r->len < 65536 ? 65536 - r->len : 0;
    } else if (!stream && r->len + add > LOAD_MAX_BODY_BYTES) {
        r->too_big = true;
        return 0;
    }
    for (i = 0; i < add; i++) {
        if (stream && data[i] == '\n') {
            if (r->buf != NULL) {
                r->buf[r->len] = '\0';
                load_sse_line(r, r->buf, r->len);
            }
            r->len = 0;
            continue;
        }
        if (r->len + 2 > r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 512;
            char *p;
            if (cap > LOAD_MAX_BODY_BYTES + 2 || (stream && cap > LOAD_MAX_LINE_BYTES)) {
                r->too_big = true;
                return 0;
            }
            p = realloc(r->buf, cap);
            if (p == NULL)
                return 0;
            r->buf = p;
            r->cap = cap;
        }
        r->buf[r->len++] = data[i];
    }
    return size * n;
}

/* Start request REQ of the trace now. */
static struct load_req *load_start(CURLM *m, const struct load_opts *o, const struct load_calib *cal,
                                   const struct trace_request *tr, uint64_t id, double t0, struct err *e)
{
    struct load_req *r = calloc(1, sizeof(*r));
    char *body = NULL, auth[1024];

    if (r == NULL)
        goto oom;
    if (tr->prompt_tokens > LOAD_MAX_PROMPT_TOKENS || tr->output_tokens > LOAD_MAX_PROMPT_TOKENS) {
        err_set(e, ERR_INPUT, "request %llu of the trace: %u prompt and %u output tokens, beyond llmload's %u",
                (unsigned long long)id, tr->prompt_tokens, tr->output_tokens, LOAD_MAX_PROMPT_TOKENS);
        free(r);
        return NULL;
    }
    r->rec.id = id;
    r->rec.sched_s = tr->arrival_s;
    r->rec.first_byte_s = -1;
    r->rec.first_token_s = o->stream ? -1 : -2;
    r->rec.done_s = -1;
    r->rec.prompt_tokens = tr->prompt_tokens;
    r->rec.output_tokens = tr->output_tokens;
    r->rec.server_prompt_tokens = -1;
    r->rec.server_output_tokens = -1;
    r->rec.outcome = LOAD_COMPLETED; /* until the answer says otherwise */
    body = load_body(o, cal, tr->prompt_tokens, tr->output_tokens, o->stream);
    r->h = curl_easy_init();
    r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (body == NULL || r->h == NULL || r->hdrs == NULL)
        goto oom;
    if (o->stream)
        r->hdrs = curl_slist_append(r->hdrs, "Accept: text/event-stream");
    if (o->api_key != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->api_key);
        r->hdrs = curl_slist_append(r->hdrs, auth);
    }
    curl_easy_setopt(r->h, CURLOPT_URL, o->endpoint);
    curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(r->h, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, (long)(o->timeout_s * 1000));
    curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, load_write);
    curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
    free(body);
    body = NULL;
    r->rec.send_s = load_now() - t0;
    if (curl_multi_add_handle(m, r->h) != CURLM_OK) {
        err_set(e, ERR_SYSTEM, "curl_multi_add_handle failed");
        load_req_free(r);
        return NULL;
    }
    return r;
oom:
    free(body);
    load_req_free(r);
    err_set(e, ERR_SYSTEM, "out of memory");
    return NULL;
}

/* A transfer ended: classify it and record it. */
static void load_finish(struct load_req *r, CURLcode cc, double t0, struct load_results *res)
{
    curl_off_t fb_us = -1;
    double done = load_now();

    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->rec.status);
    if (curl_easy_getinfo(r->h, CURLINFO_STARTTRANSFER_TIME_T, &fb_us) == CURLE_OK && fb_us > 0)
        r->rec.first_byte_s = r->rec.send_s + fb_us * 1e-6;
    r->rec.done_s = done - t0;
    if (r->rec.first_token_s >= 0)
        r->rec.first_token_s -= t0;
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        r->rec.outcome = LOAD_TIMED_OUT;
        load_req_error(r, "%s", curl_easy_strerror(cc));
    } else if (r->too_big) {
        r->rec.outcome = LOAD_FAILED;
        load_req_error(r, "%s", "the answer is too large");
    } else if (cc != CURLE_OK) {
        r->rec.outcome = LOAD_FAILED;
        load_req_error(r, "%s", curl_easy_strerror(cc));
    } else if (r->rec.status == 429 || r->rec.status == 503) {
        r->rec.outcome = LOAD_REJECTED;
    } else if (r->rec.status < 200 || r->rec.status > 299) {
        r->rec.outcome = LOAD_FAILED;
        if (r->buf != NULL) {
            r->buf[r->len] = '\0';
            load_req_error(r, "%.300s", r->buf);
        }
    } else if (r->rec.first_token_s == -2) {
        /* Not streamed: the whole answer at once. */
        json_error_t je;
        json_t *ans = json_loadb(r->buf ? r->buf : "", r->len, JSON_ALLOW_NUL, &je);
        if (ans == NULL) {
            r->rec.outcome = LOAD_FAILED;
            load_req_error(r, "the answer is not JSON: %s", je.text);
        } else {
            r->rec.server_prompt_tokens = load_usage_tokens(ans, "prompt_tokens");
            r->rec.server_output_tokens = load_usage_tokens(ans, "completion_tokens");
            json_decref(ans);
        }
        r->rec.first_token_s = r->rec.done_s;
    } else {
        if (r->len > 0 && r->buf != NULL) { /* a last line without its newline */
            r->buf[r->len] = '\0';
            load_sse_line(r, r->buf, r->len);
        }
        if (r->error != NULL || !r->done_marker || r->rec.first_token_s < 0) {
            r->rec.outcome = LOAD_FAILED;
            load_req_error(r, "%s", r->rec.first_token_s < 0 ? "the stream carried no token"
                                                             : "the stream ended without [DONE]");
        }
        if (r->rec.server_output_tokens < 0)
            r->rec.server_output_tokens = r->chunks;
    }
    r->rec.error = r->error;
    load_results_add(res, &r->rec);
}

int load_replay(const struct load_opts *o, const struct load_calib *cal, struct trace_reader *tr,
                       struct load_results *res, struct load_run_info *info, struct err *e)
{
    CURLM *m = curl_multi_init();
    struct load_req *flying = NULL; /* the requests in flight */
    struct trace_request next;
    bool have_next;
    uint64_t id = 0;
    long in_flight = 0;
    double t0, first_s = -1, last_done_s = 0, cpu0 = load_cpu_s(), wall0;
    int rc = 0, got;

    if (m == NULL)
        return err_set(e, ERR_SYSTEM, "curl_multi_init failed");
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, o->max_concurrency);
    got = trace_next(tr, &next, e);
    if (got < 0) {
        curl_multi_cleanup(m);
        return -1;
    }
    have_next = got == 1;
    wall0 = load_now();
    /* Start the clock so the first request leaves at its own arrival time. */
    t0 = wall0 - (have_next ? next.arrival_s : 0);
    while ((have_next || in_flight > 0) && !load_interrupted) {
        double now = load_now() - t0;
        int running, msgs, timeout_ms;
        CURLMsg *msg;

        while (have_next && next.arrival_s <= now && !load_interrupted) {
            struct load_req *r;
            if (in_flight >= o->max_concurrency) {
                info->held++;
                break;
            }
            r = load_start(m, o, cal, &next, id++, t0, e);
            if (r == NULL) {
                rc = -1;
                goto out;
            }
            r->next = flying;
            if (flying != NULL)
                flying->prev = r;
            flying = r;
            if (first_s < 0)
                first_s = next.arrival_s;
            if (++in_flight > info->max_in_flight)
                info->max_in_flight = in_flight;
            got = trace_next(tr, &next, e);
            if (got < 0) {
                rc = -1;
                goto out;
            }
            have_next = got == 1;
        }
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &msgs)) != NULL) {
            struct load_req *r = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            curl_multi_remove_handle(m, msg->easy_handle);
            if (r->prev != NULL)
                r->prev->next = r->next;
            else
                flying = r->next;
            if (r->next != NULL)
                r->next->prev = r->prev;
            load_finish(r, msg->data.result, t0, res);
            if (r->rec.done_s > last_done_s)
                last_done_s = r->rec.done_s;
            load_req_free(r);
            in_flight--;
        }
        /* Sleep until the next arrival or socket activity. */
        timeout_ms = 100;
        if (have_next && in_flight < o->max_concurrency) {
            double wait = next.arrival_s - (load_now() - t0);
            timeout_ms = wait <= 0 ? 0 : wait < 0.1 ? (int)(wait * 1000) : 100;
        }
        if (timeout_ms > 0)
            curl_multi_poll(m, NULL, 0, timeout_ms, NULL);
    }
out:
    if (in_flight > 0) {
        /* Interrupted (or an error): what is still outstanding is abandoned. */
        while (flying != NULL) {
            struct load_req *r = flying;
            flying = r->next;
            curl_multi_remove_handle(m, r->h);
            load_req_free(r);
        }
        load_results_unfinished(res, (uint64_t)in_flight);
    }
    curl_multi_cleanup(m);
    info->duration_s = first_s >= 0 ? last_done_s - first_s : 0;
    info->wall_s = load_now() - wall0;
    info->cpu_s = load_cpu_s() - cpu0;
    return rc;
}
