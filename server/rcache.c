/* rcache.c -- see rcache.h. */
#include "config.h"

#include "server/rcache.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <xxhash.h>

#include "common/log.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ==== the Redis link ===================================================== */

#define LINK_SLOTS 4
#define BACKOFF_MIN_S 0.1
#define BACKOFF_MAX_S 5.0

struct link_slot {
    pthread_mutex_t lock;
    redisContext *ctx;
};

struct redis_link {
    char host[256];
    int port;
    int db;
    struct timeval timeout;
    struct link_slot slots[LINK_SLOTS];
    atomic_uint next_slot;
    pthread_mutex_t state_lock; /* guards the fields below */
    int up;
    double retry_at;            /* down: no attempt before this (monotonic s) */
    double backoff_s;
    atomic_uint_fast64_t errors;
};

struct redis_link *redis_link_create(const char *url, int timeout_ms, struct err *e)
{
    struct redis_link *l;
    const char *p, *colon, *slash, *end;
    char *num_end;
    long v;

    if (strncmp(url, "redis://", 8) != 0)
        return err_set(e, ERR_INPUT, "%s: expected redis://HOST:PORT[/DB]", url), NULL;
    p = url + 8;
    end = p + strlen(p);
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = end;
    colon = memchr(p, ':', (size_t)(slash - p));
    if ((colon != NULL ? colon : slash) == p || (size_t)((colon != NULL ? colon : slash) - p) >= 256)
        return err_set(e, ERR_INPUT, "%s: missing or overlong host", url), NULL;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory"), NULL;
    memcpy(l->host, p, (size_t)((colon != NULL ? colon : slash) - p));
    l->port = 6379;
    if (colon != NULL) {
        errno = 0;
        v = strtol(colon + 1, &num_end, 10);
        if (num_end != slash || colon + 1 == slash || errno != 0 || v < 1 || v > 65535) {
            free(l);
            return err_set(e, ERR_INPUT, "%s: port must be 1-65535", url), NULL;
        }
        l->port = (int)v;
    }
    if (slash != end) {
        errno = 0;
        v = strtol(slash + 1, &num_end, 10);
        if (*num_end != '\0' || slash + 1 == end || errno != 0 || v < 0 || v > 1000000) {
            free(l);
            return err_set(e, ERR_INPUT, "%s: DB must be a small non-negative integer", url), NULL;
        }
        l->db = (int)v;
    }
    if (timeout_ms <= 0)
        timeout_ms = 50;
    l->timeout.tv_sec = timeout_ms / 1000;
    l->timeout.tv_usec = (timeout_ms % 1000) * 1000;
    for (int i = 0; i < LINK_SLOTS; i++)
        pthread_mutex_init(&l->slots[i].lock, NULL);
    pthread_mutex_init(&l->state_lock, NULL);
    l->backoff_s = BACKOFF_MIN_S;
    return l;
}

void redis_link_free(struct redis_link *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < LINK_SLOTS; i++) {
        if (l->slots[i].ctx != NULL)
            redisFree(l->slots[i].ctx);
        pthread_mutex_destroy(&l->slots[i].lock);
    }
    pthread_mutex_destroy(&l->state_lock);
    free(l);
}

/* 1 when a command may be tried now: the link is up or a retry is due. */
static int link_may_try(struct redis_link *l)
{
    int ok;

    pthread_mutex_lock(&l->state_lock);
    ok = l->up || now_s() >= l->retry_at;
    pthread_mutex_unlock(&l->state_lock);
    return ok;
}

static void link_failed(struct redis_link *l, const char *why)
{
    atomic_fetch_add(&l->errors, 1);
    pthread_mutex_lock(&l->state_lock);
    if (l->up || now_s() >= l->retry_at) {
        if (l->up)
            log_warn("redis %s:%d: %s; failing open, retrying in %.1fs", l->host, l->port, why, l->backoff_s);
        l->up = 0;
        l->retry_at = now_s() + l->backoff_s;
        l->backoff_s = l->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : l->backoff_s * 2;
    }
    pthread_mutex_unlock(&l->state_lock);
}

static void link_succeeded(struct redis_link *l)
{
    pthread_mutex_lock(&l->state_lock);
    if (!l->up)
        log_info("redis %s:%d: up", l->host, l->port);
    l->up = 1;
    l->backoff_s = BACKOFF_MIN_S;
    pthread_mutex_unlock(&l->state_lock);
}

/* Connect slot S (locked).  0, or -1 with the link marked down. */
static int slot_connect(struct redis_link *l, struct link_slot *s)
{
    redisReply *r;

    s->ctx = redisConnectWithTimeout(l->host, l->port, l->timeout);
    if (s->ctx == NULL || s->ctx->err) {
        link_failed(l, s->ctx != NULL ? s->ctx->errstr : "cannot connect");
        if (s->ctx != NULL)
            redisFree(s->ctx);
        s->ctx = NULL;
        return -1;
    }
    redisSetTimeout(s->ctx, l->timeout);
    if (l->db != 0) {
        r = redisCommand(s->ctx, "SELECT %d", l->db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            link_failed(l, r != NULL ? r->str : s->ctx->errstr);
            if (r != NULL)
                freeReplyObject(r);
            redisFree(s->ctx);
            s->ctx = NULL;
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

struct redisReply *redis_link_command(struct redis_link *l, int argc, const char **argv, const size_t *argvlen)
{
    struct link_slot *s = NULL;
    redisReply *r;
    unsigned start;
    int i;

    if (!link_may_try(l)) {
        atomic_fetch_add(&l->errors, 1);
        return NULL;
    }
    /* a free slot if there is one, else wait for one (at most one command's timeout) */
    start = atomic_fetch_add(&l->next_slot, 1);
    for (i = 0; i < LINK_SLOTS && s == NULL; i++)
        if (pthread_mutex_trylock(&l->slots[(start + (unsigned)i) % LINK_SLOTS].lock) == 0)
            s = &l->slots[(start + (unsigned)i) % LINK_SLOTS];
    if (s == NULL) {
        s = &l->slots[start % LINK_SLOTS];
        pthread_mutex_lock(&s->lock);
    }
    if (s->ctx == NULL && slot_connect(l, s) != 0) {
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    r = redisCommandArgv(s->ctx, argc, argv, argvlen);
    if (r == NULL) {
        /* timeout or I/O error: the context is unusable now */
        link_failed(l, s->ctx->errstr[0] != '\0' ? s->ctx->errstr : "command failed");
        redisFree(s->ctx);
        s->ctx = NULL;
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    pthread_mutex_unlock(&s->lock);
    link_succeeded(l);
    if (r->type == REDIS_REPLY_ERROR) {
        atomic_fetch_add(&l->errors, 1);
        log_debug("redis: %s", r->str);
    }
    return r;
}

int redis_link_up(struct redis_link *l)
{
    int up;

    pthread_mutex_lock(&l->state_lock);
    up = l->up;
    pthread_mutex_unlock(&l->state_lock);
    return up;
}

uint64_t redis_link_errors(struct redis_link *l)
{
    return atomic_load(&l->errors);
}

/* ==== the memory backend: a hash table threaded on an LRU list ============= */

struct mentry {
    struct mentry *hnext;         /* hash chain */
    struct mentry *prev, *next;   /* LRU: head is the most recent */
    uint64_t hash;
    double expires_at;
    size_t len;
    char key[33];
    char val[];                   /* len bytes and a NUL */
};

struct rcache {
    int is_redis;
    double ttl_s;
    size_t max_bytes;
    struct redis_link *redis;
    pthread_mutex_t lock;
    struct mentry **table;
    size_t nbuckets;              /* a power of two */
    struct mentry *head, *tail;
    size_t entries, bytes;
    atomic_uint_fast64_t hits, misses, errors;
};

#define MENTRY_OVERHEAD (sizeof(struct mentry) + 1)

struct rcache *rcache_create(const struct rcache_opts *opts, struct err *e)
{
    struct rcache *c = calloc(1, sizeof(*c));
    const char *url = opts->url != NULL ? opts->url : "memory";

    if (c == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory"), NULL;
    c->ttl_s = opts->ttl_s > 0 ? opts->ttl_s : 3600;
    c->max_bytes = opts->max_bytes > 0 ? opts->max_bytes : (size_t)64 << 20;
    pthread_mutex_init(&c->lock, NULL);
    if (strcmp(url, "memory") == 0) {
        c->nbuckets = 1024;
        c->table = calloc(c->nbuckets, sizeof(*c->table));
        if (c->table == NULL) {
            rcache_free(c);
            return err_set(e, ERR_SYSTEM, "out of memory"), NULL;
        }
        return c;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        rcache_free(c);
        return err_set(e, ERR_INPUT, "--cache %s: expected memory or redis://HOST:PORT[/DB]", url), NULL;
    }
    c->is_redis = 1;
    c->redis = redis_link_create(url, opts->timeout_ms, e);
    if (c->redis == NULL) {
        err_prefix(e, "--cache");
        rcache_free(c);
        return NULL;
    }
    return c;
}

void rcache_free(struct rcache *c)
{
    struct mentry *m, *next;

    if (c == NULL)
        return;
    for (m = c->head; m != NULL; m = next) {
        next = m->next;
        free(m);
    }
    free(c->table);
    redis_link_free(c->redis);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void lru_unlink(struct rcache *c, struct mentry *m)
{
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        c->head = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        c->tail = m->prev;
    m->prev = m->next = NULL;
}

static void lru_push_front(struct rcache *c, struct mentry *m)
{
    m->prev = NULL;
    m->next = c->head;
    if (c->head != NULL)
        c->head->prev = m;
    c->head = m;
    if (c->tail == NULL)
        c->tail = m;
}

/* Remove M from the table and the list and free it. */
static void mem_remove(struct rcache *c, struct mentry *m)
{
    struct mentry **pp = &c->table[m->hash & (c->nbuckets - 1)];

    while (*pp != m)
        pp = &(*pp)->hnext;
    *pp = m->hnext;
    lru_unlink(c, m);
    c->entries--;
    c->bytes -= MENTRY_OVERHEAD + m->len;
    free(m);
}

static struct mentry *mem_find(struct rcache *c, const char *key, uint64_t h)
{
    struct mentry *m;

    for (m = c->table[h & (c->nbuckets - 1)]; m != NULL; m = m->hnext)
        if (m->hash == h && strcmp(m->key, key) == 0)
            return m;
    return NULL;
}

/* Double the table when it holds more entries than buckets. */
static void mem_grow(struct rcache *c)
{
    size_t n = c->nbuckets * 2, i;
    struct mentry **t, *m, *next;

    if (c->entries <= c->nbuckets || n > ((size_t)1 << 26))
        return;
    t = calloc(n, sizeof(*t));
    if (t == NULL)
        return; /* chains just get longer */
    for (i = 0; i < c->nbuckets; i++)
        for (m = c->table[i]; m != NULL; m = next) {
            next = m->hnext;
            m->hnext = t[m->hash & (n - 1)];
            t[m->hash & (n - 1)] = m;
        }
    free(c->table);
    c->table = t;
    c->nbuckets = n;
}

static int mem_get(struct rcache *c, const char *key, char **val, size_t *len)
{
    uint64_t h = XXH3_64bits(key, strlen(key));
    struct mentry *m;
    int found = 0;

    pthread_mutex_lock(&c->lock);
    m = mem_find(c, key, h);
    if (m != NULL && m->expires_at <= now_s()) {
        mem_remove(c, m);
        m = NULL;
    }
    if (m != NULL) {
        *val = malloc(m->len + 1);
        if (*val != NULL) {
            memcpy(*val, m->val, m->len + 1);
            *len = m->len;
            lru_unlink(c, m);
            lru_push_front(c, m);
            found = 1;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

static int mem_put(struct rcache *c, const char *key, const char *val, size_t len)
{
    uint64_t h = XXH3_64bits(key, strlen(key));
    struct mentry *m, *old;

    if (strlen(key) > 32 || MENTRY_OVERHEAD + len > c->max_bytes)
        return 0; /* too big to keep: not an error */
    m = malloc(sizeof(*m) + len + 1);
    if (m == NULL)
        return -1;
    memset(m, 0, sizeof(*m));
    snprintf(m->key, sizeof(m->key), "%s", key);
    memcpy(m->val, val, len);
    m->val[len] = '\0';
    m->len = len;
    m->hash = h;
    m->expires_at = now_s() + c->ttl_s;
    pthread_mutex_lock(&c->lock);
    if ((old = mem_find(c, key, h)) != NULL)
        mem_remove(c, old);
    while (c->tail != NULL && c->bytes + MENTRY_OVERHEAD + len > c->max_bytes)
        mem_remove(c, c->tail);
    m->hnext = c->table[h & (c->nbuckets - 1)];
    c->table[h & (c->nbuckets - 1)] = m;
    lru_push_front(c, m);
    c->entries++;
    c->bytes += MENTRY_OVERHEAD + len;
    mem_grow(c);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* ==== the Redis backend ========================================================== */

#define REDIS_KEY_PREFIX "llmserve:rc:"

static int redis_get(struct rcache *c, const char *key, char **val, size_t *len)
{
    char k[64];
    const char *argv[2] = {"GET", k};
    size_t argvlen[2] = {3, 0};
    redisReply *r;
    int rc = -1;

    argvlen[1] = (size_t)snprintf(k, sizeof(k), REDIS_KEY_PREFIX "%s", key);
    r = redis_link_command(c->redis, 2, argv, argvlen);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_NIL) {
        rc = 0;
    } else if (r->type == REDIS_REPLY_STRING) {
        *val = malloc((size_t)r->len + 1);
        if (*val != NULL) {
            memcpy(*val, r->str, (size_t)r->len);
            (*val)[r->len] = '\0';
            *len = (size_t)r->len;
            rc = 1;
        }
    }
    freeReplyObject(r);
    return rc;
}

static int redis_put(struct rcache *c, const char *key, const char *val, size_t len)
{
    char k[64], ttl[32];
    const char *argv[5] = {"SET", k, val, "PX", ttl};
    size_t argvlen[5] = {3, 0, len, 2, 0};
    redisReply *r;
    int rc;

    argvlen[1] = (size_t)snprintf(k, sizeof(k), REDIS_KEY_PREFIX "%s", key);
    argvlen[4] = (size_t)snprintf(ttl, sizeof(ttl), "%lld", (long long)(c->ttl_s * 1000 + 0.5));
    r = redis_link_command(c->redis, 5, argv, argvlen);
    if (r == NULL)
        return -1;
    rc = r->type == REDIS_REPLY_STATUS ? 0 : -1;
    freeReplyObject(r);
    return rc;
}

/* ==== the interface ================================================================ */

int rcache_get(struct rcache *c, const char *key, char **val, size_t *len)
{
    int rc;

    *val = NULL;
    *len = 0;
    rc = c->is_redis ? redis_get(c, key, val, len) : mem_get(c, key, val, len);
    if (rc > 0)
        atomic_fetch_add(&c->hits, 1);
    else if (rc == 0)
        atomic_fetch_add(&c->misses, 1);
    else
        atomic_fetch_add(&c->errors, 1);
    return rc;
}

int rcache_put(struct rcache *c, const char *key, const char *val, size_t len)
{
    int rc = c->is_redis ? redis_put(c, key, val, len) : mem_put(c, key, val, len);

    if (rc != 0)
        atomic_fetch_add(&c->errors, 1);
    return rc;
}

void rcache_get_stats(struct rcache *c, struct rcache_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->hits = atomic_load(&c->hits);
    st->misses = atomic_load(&c->misses);
    st->errors = atomic_load(&c->errors);
    st->is_redis = c->is_redis;
    if (c->is_redis) {
        st->redis_up = redis_link_up(c->redis);
    } else {
        pthread_mutex_lock(&c->lock);
        st->entries = c->entries;
        st->bytes = c->bytes;
        pthread_mutex_unlock(&c->lock);
    }
}

struct redis_link *rcache_redis(struct rcache *c)
{
    return c->redis;
}
