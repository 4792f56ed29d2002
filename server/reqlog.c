/* reqlog.c -- one log line per request (see http.h).  The key itself is
 * never known here: only its name. */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "server/http.h"

void reqlog_write(const struct http_req *r, int json, double total_s)
{
    char ts[32];
    struct tm tm;
    time_t now = time(NULL);

    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (json) {
        /* the path may hold anything a client sent: jansson escapes it,
         * and a path that is not UTF-8 is logged as null */
        json_t *path = json_string(r->path);
        json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:i,s:s,s:i,s:i,s:b,s:f,s:f,s:f}", "time", ts, "level", "info",
                              "method", r->method != NULL ? r->method : "-", "path",
                              path != NULL ? path : json_null(), "status",
                              r->status, "key", r->key_name[0] ? r->key_name : "-", "prompt_tokens",
                              r->prompt_tokens, "completion_tokens", r->completion_tokens, "cached", r->cached,
                              "queue_ms", r->queue_s * 1e3, "ttft_ms", r->ttft_s * 1e3, "total_ms", total_s * 1e3);
        char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s != NULL)
            fprintf(stderr, "%s\n", s);
        free(s);
        json_decref(o);
        return;
    }
    /* plain: the path is quoted with non-printable bytes escaped */
    char path[sizeof(r->path) * 4];
    size_t j = 0;
    for (const char *p = r->path; *p != '\0' && j + 5 < sizeof(path); p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            j += (size_t)snprintf(path + j, sizeof(path) - j, "\\x%02x", c);
        else
            path[j++] = (char)c;
    }
    path[j] = '\0';
    fprintf(stderr,
            "%s: %s request method=%s path=\"%s\" status=%d key=%s prompt_tokens=%d completion_tokens=%d cached=%d "
            "queue_ms=%.1f ttft_ms=%.1f total_ms=%.1f\n",
            log_progname(), ts, r->method != NULL ? r->method : "-", path, r->status,
            r->key_name[0] ? r->key_name : "-", r->prompt_tokens, r->completion_tokens, r->cached, r->queue_s * 1e3,
            r->ttft_s * 1e3, total_s * 1e3);
}
