/* auth.c -- see auth.h. */
#include "config.h"

#include "server/auth.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "server/rcache.h"

/* ==== API keys ========================================================== */

struct auth_key {
    char key[AUTH_KEY_MAX];
    size_t len;
    char name[64];
};

struct auth {
    struct auth_key *keys;
    int n;
};

int auth_ct_equal(const char *a, size_t la, const char *b, size_t lb)
{
    unsigned diff = (unsigned)(la ^ lb);
    size_t i;

    if (la > AUTH_KEY_MAX || lb > AUTH_KEY_MAX)
        return 0;
    /* every byte position up to the maximum, whatever the lengths */
    for (i = 0; i < AUTH_KEY_MAX; i++) {
        unsigned char x = i < la ? (unsigned char)a[i] : 0;
        unsigned char y = i < lb ? (unsigned char)b[i] : 0;
        diff |= (unsigned)(x ^ y);
    }
    return diff == 0;
}

void auth_free(struct auth *a)
{
    if (a == NULL)
        return;
    /* the keys are secrets: do not leave them in freed memory */
    if (a->keys != NULL)
        memset(a->keys, 0, sizeof(*a->keys) * (size_t)a->n);
    free(a->keys);
    free(a);
}

int auth_n_keys(const struct auth *a)
{
    return a != NULL ? a->n : 0;
}

/* Parse one line (NUL-terminated, no newline) into K.  0, 1 for a line to
 * skip, -1 with E set. */
static int parse_key_line(char *line, const char *path, long lineno, struct auth_key *k, struct err *e)
{
    char *p = line, *key, *name;
    size_t len;

    for (char *q = line; *q != '\0'; q++)
        if (iscntrl((unsigned char)*q) && *q != '\t' && *q != '\r')
            return err_at(e, path, lineno, "control character in the line");
    len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        p[--len] = '\0';
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0' || *p == '#')
        return 1;
    key = p;
    while (*p != '\0' && !isspace((unsigned char)*p))
        p++;
    len = (size_t)(p - key);
    while (isspace((unsigned char)*p))
        *p++ = '\0';
    name = p;
    if (len >= AUTH_KEY_MAX)
        return err_at(e, path, lineno, "key longer than %d bytes", AUTH_KEY_MAX - 1);
    if (strpbrk(name, " \t") != NULL)
        return err_at(e, path, lineno, "expected 'KEY [NAME]' (the name has no spaces)");
    if (strlen(name) >= sizeof(k->name))
        return err_at(e, path, lineno, "name longer than %zu bytes", sizeof(k->name) - 1);
    memset(k, 0, sizeof(*k));
    memcpy(k->key, key, len);
    k->len = len;
    if (*name != '\0')
        snprintf(k->name, sizeof(k->name), "%s", name);
    else
        snprintf(k->name, sizeof(k->name), "key-%ld", lineno);
    return 0;
}

struct auth *auth_load(const char *path, struct err *e)
{
    struct auth *a = calloc(1, sizeof(*a));
    FILE *f = fopen(path, "r");
    char line[1024];
    long lineno = 0;
    int cap = 0, rc, i;

    if (a == NULL || f == NULL) {
        if (f == NULL)
            err_sys(e, errno, "%s", path);
        else
            err_set(e, ERR_SYSTEM, "out of memory");
        goto err;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        struct auth_key k;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            err_at(e, path, lineno, "line longer than %zu bytes", sizeof(line) - 2);
            goto err;
        }
        line[strcspn(line, "\n")] = '\0';
        rc = parse_key_line(line, path, lineno, &k, e);
        if (rc < 0)
            goto err;
        if (rc > 0)
            continue;
        for (i = 0; i < a->n; i++) {
            if (a->keys[i].len == k.len && memcmp(a->keys[i].key, k.key, k.len) == 0) {
                err_at(e, path, lineno, "duplicate key (first on an earlier line)");
                goto err;
            }
            if (strcmp(a->keys[i].name, k.name) == 0) {
                err_at(e, path, lineno, "duplicate name '%s'", k.name);
                goto err;
            }
        }
        if (a->n == cap) {
            struct auth_key *nk = realloc(a->keys, sizeof(*nk) * (size_t)(cap = cap ? cap * 2 : 8));
            if (nk == NULL) {
                err_set(e, ERR_SYSTEM, "out of memory");
                goto err;
            }
            a->keys = nk;
        }
        a->keys[a->n++] = k;
        memset(&k, 0, sizeof(k));
    }
    if (ferror(f)) {
        err_sys(e, errno, "%s", path);
        goto err;
    }
    if (a->n == 0) {
        err_at(e, path, 0, "no keys (expected lines 'KEY [NAME]')");
        goto err;
    }
    fclose(f);
    return a;
err:
    if (f != NULL)
        fclose(f);
    auth_free(a);
    return NULL;
}

const char *auth_check(const struct auth *a, const char *authorization)
{
    const char *key, *found = NULL;
    size_t len;
    int i;

    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    key = authorization + 7;
    while (*key == ' ')
        key++;
    len = strlen(key);
    while (len > 0 && key[len - 1] == ' ')
        len--;
    if (len == 0 || len >= AUTH_KEY_MAX)
        return NULL;
    /* compare with every key, always all of them */
    for (i = 0; i < a->n; i++) {
        int eq = auth_ct_equal(key, len, a->keys[i].key, a->keys[i].len);
        found = eq ? a->keys[i].name : found;
    }
    return found;
}

/* ==== rate limits ============================================================ */

#define RL_WINDOW_S 60.0

/* The per-process GCRA state of one name. */
struct rl_state {
    struct rl_state *next;
    double tat_req, tat_tok; /* theoretical arrival times (monotonic s) */
    char name[64];
};

struct ratelimit {
    struct ratelimit_opts opts;
    struct redis_link *redis;
    pthread_mutex_t lock;
    struct rl_state *states;
    int n_states;
    char sha[48];            /* the script's SHA1 once loaded */
    atomic_uint_fast64_t fallbacks;
};

/* KEYS[1], KEYS[2]: the TATs (ms) of the request and token budgets.
 * ARGV[1], ARGV[3]: ms per request / per token (0: unlimited);
 * ARGV[2], ARGV[4]: the costs.  Returns {1, 0} (allowed, charged) or
 * {0, retry_after_ms}.  Time comes from Redis so replicas agree. */
static const char rl_script[] =
    "local now = redis.call('TIME')\n"
    "local t = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)\n"
    "local window = 60000\n"
    "local retry = 0\n"
    "local new = {}\n"
    "for i = 1, 2 do\n"
    "  local period = tonumber(ARGV[2 * i - 1])\n"
    "  local cost = tonumber(ARGV[2 * i])\n"
    "  if period > 0 then\n"
    "    local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0\n"
    "    if tat < t then tat = t end\n"
    "    local nt = tat + cost * period\n"
    "    if nt - t > window and nt - t - window > retry then retry = nt - t - window end\n"
    "    new[i] = math.ceil(nt)\n"
    "  end\n"
    "end\n"
    "if retry > 0 then return {0, math.ceil(retry)} end\n"
    "for i = 1, 2 do\n"
    "  if new[i] then redis.call('SET', KEYS[i], new[i], 'PX', new[i] - t + 1000) end\n"
    "end\n"
    "return {1, 0}\n";

struct ratelimit *ratelimit_create(const struct ratelimit_opts *opts, struct redis_link *redis)
{
    struct ratelimit *rl = calloc(1, sizeof(*rl));

    if (rl == NULL)
        return NULL;
    rl->opts = *opts;
    rl->redis = redis;
    pthread_mutex_init(&rl->lock, NULL);
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    struct rl_state *s, *next;

    if (rl == NULL)
        return;
    for (s = rl->states; s != NULL; s = next) {
        next = s->next;
        free(s);
    }
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One GCRA budget: the new TAT for COST units at RATE per minute, and how
 * long past the window it would reach (0: allowed). */
static double gcra(double tat, double now, double rate_per_min, double cost, double *new_tat)
{
    double t = tat < now ? now : tat;

    *new_tat = t + cost * (RL_WINDOW_S / rate_per_min);
    return *new_tat - now > RL_WINDOW_S ? *new_tat - now - RL_WINDOW_S : 0;
}

static int local_check(struct ratelimit *rl, const char *name, int tokens, double *retry_after_s)
{
    const double now = mono_s();
    double nt_req = 0, nt_tok = 0, wait = 0, w;
    struct rl_state *s;

    pthread_mutex_lock(&rl->lock);
    for (s = rl->states; s != NULL; s = s->next)
        if (strcmp(s->name, name) == 0)
            break;
    if (s == NULL) {
        /* names come from the key file (bounded), or "anonymous" */
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            pthread_mutex_unlock(&rl->lock);
            return 0; /* fail open */
        }
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->next = rl->states;
        rl->states = s;
        rl->n_states++;
    }
    if (rl->opts.requests_per_min > 0 && (w = gcra(s->tat_req, now, rl->opts.requests_per_min, 1, &nt_req)) > wait)
        wait = w;
    if (rl->opts.tokens_per_min > 0 &&
        (w = gcra(s->tat_tok, now, rl->opts.tokens_per_min, tokens, &nt_tok)) > wait)
        wait = w;
    if (wait <= 0) {
        if (rl->opts.requests_per_min > 0)
            s->tat_req = nt_req;
        if (rl->opts.tokens_per_min > 0)
            s->tat_tok = nt_tok;
    }
    pthread_mutex_unlock(&rl->lock);
    *retry_after_s = wait;
    return wait > 0;
}

/* The script's SHA1, loading it when needed.  0, or -1 when Redis fails. */
static int script_sha(struct ratelimit *rl, char *sha, int reload)
{
    const char *argv[3] = {"SCRIPT", "LOAD", rl_script};
    size_t argvlen[3] = {6, 4, sizeof(rl_script) - 1};
    redisReply *r;

    pthread_mutex_lock(&rl->lock);
    if (reload)
        rl->sha[0] = '\0';
    snprintf(sha, 48, "%s", rl->sha);
    pthread_mutex_unlock(&rl->lock);
    if (sha[0] != '\0')
        return 0;
    r = redis_link_command(rl->redis, 3, argv, argvlen);
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len >= 48) {
        if (r != NULL)
            freeReplyObject(r);
        return -1;
    }
    memcpy(sha, r->str, (size_t)r->len);
    sha[r->len] = '\0';
    freeReplyObject(r);
    pthread_mutex_lock(&rl->lock);
    snprintf(rl->sha, sizeof(rl->sha), "%s", sha);
    pthread_mutex_unlock(&rl->lock);
    return 0;
}

/* 0/1 as ratelimit_check, or -1 when Redis failed. */
static int redis_check(struct ratelimit *rl, const char *name, int tokens, double *retry_after_s)
{
    char sha[48], k1[128], k2[128], a1[32], a2[32], a3[32], a4[32];
    const char *argv[9] = {"EVALSHA", sha, "2", k1, k2, a1, a2, a3, a4};
    size_t argvlen[9];
    redisReply *r = NULL;
    int attempt, rc = -1, i;

    snprintf(k1, sizeof(k1), "llmserve:rl:{%s}:req", name);
    snprintf(k2, sizeof(k2), "llmserve:rl:{%s}:tok", name);
    snprintf(a1, sizeof(a1), "%.6f", rl->opts.requests_per_min > 0 ? 60000.0 / rl->opts.requests_per_min : 0.0);
    snprintf(a2, sizeof(a2), "1");
    snprintf(a3, sizeof(a3), "%.6f", rl->opts.tokens_per_min > 0 ? 60000.0 / rl->opts.tokens_per_min : 0.0);
    snprintf(a4, sizeof(a4), "%d", tokens);
    for (attempt = 0; attempt < 2; attempt++) {
        if (script_sha(rl, sha, attempt > 0) != 0)
            return -1;
        for (i = 0; i < 9; i++)
            argvlen[i] = strlen(argv[i]);
        r = redis_link_command(rl->redis, 9, argv, argvlen);
        if (r == NULL)
            return -1;
        /* NOSCRIPT after a Redis restart: load it again once */
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            freeReplyObject(r);
            r = NULL;
            continue;
        }
        break;
    }
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_INTEGER) {
        rc = r->element[0]->integer ? 0 : 1;
        *retry_after_s = (double)r->element[1]->integer / 1000.0;
    }
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

int ratelimit_check(struct ratelimit *rl, const char *name, int tokens, double *retry_after_s)
{
    int rc;

    *retry_after_s = 0;
    if (rl->opts.requests_per_min <= 0 && rl->opts.tokens_per_min <= 0)
        return 0;
    if (tokens < 0)
        tokens = 0;
    if (rl->redis != NULL) {
        rc = redis_check(rl, name, tokens, retry_after_s);
        if (rc >= 0)
            return rc;
        atomic_fetch_add(&rl->fallbacks, 1);
    }
    return local_check(rl, name, tokens, retry_after_s);
}

uint64_t ratelimit_redis_fallbacks(struct ratelimit *rl)
{
    return atomic_load(&rl->fallbacks);
}
