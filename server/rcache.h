/* rcache.h -- the response cache (an in-process LRU with a TTL, or Redis)
 * and the Redis link it shares with the rate limiter.
 *
 * The cache maps a request's key (api_request_cache_key) to its encoded
 * result (api_result_encode).  It fails open: when Redis is down or slow a
 * lookup is a counted error that the caller treats as a miss, and no call
 * ever waits on Redis longer than the link's timeout.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef LLM_RCACHE_H
#define LLM_RCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- the Redis link ------------------------------------------------------ */

/* A small pool of hiredis connections to one server with connect and
 * command timeouts.  After a failure the link is down: commands fail at
 * once (no network wait) until a reconnect is due, with the delay doubling
 * from 100 ms to 5 s; the first success marks it up again. */
struct redis_link;

/* Parse "redis://HOST:PORT[/DB]" (PORT defaults to 6379, DB to 0) and
 * create the link; it connects lazily.  NULL with E (ERR_INPUT naming the
 * URL) on a bad URL. */
struct redis_link *redis_link_create(const char *url, int timeout_ms, struct err *e);
void redis_link_free(struct redis_link *l);

/* Run one command (ARGC arguments, binary-safe).  Returns the reply (free
 * with freeReplyObject) or NULL on any failure: down, timeout, connection
 * or protocol error, or a Redis error reply (counted, the link stays up). */
struct redisReply;
struct redisReply *redis_link_command(struct redis_link *l, int argc, const char **argv, const size_t *argvlen);

/* 1 if the last command reached Redis, else 0. */
int redis_link_up(struct redis_link *l);
/* Commands that failed since the start. */
uint64_t redis_link_errors(struct redis_link *l);

/* ---- the response cache -------------------------------------------------------- */

struct rcache_opts {
    const char *url;       /* "memory" (default) or "redis://HOST:PORT[/DB]" */
    double ttl_s;          /* entries live this long (default 3600) */
    size_t max_bytes;      /* memory backend: keys + values kept at most (default 64 MiB) */
    int timeout_ms;        /* Redis connect and command timeout (default 50) */
};

struct rcache;

/* NULL with E set on a bad option. */
struct rcache *rcache_create(const struct rcache_opts *opts, struct err *e);
void rcache_free(struct rcache *c);

/* Look up KEY.  1: a hit, *VAL (malloc'd, NUL-terminated) and *LEN set;
 * 0: a miss; -1: the backend failed (counted; treat as a miss). */
int rcache_get(struct rcache *c, const char *key, char **val, size_t *len);
/* Store VAL under KEY for the TTL.  0, or -1 when the backend failed (counted). */
int rcache_put(struct rcache *c, const char *key, const char *val, size_t len);

struct rcache_stats {
    uint64_t hits, misses, errors;
    size_t entries, bytes; /* memory backend */
    int is_redis;
    int redis_up;
};
void rcache_get_stats(struct rcache *c, struct rcache_stats *st);

/* The cache's Redis link (NULL for the memory backend), for the rate limiter. */
struct redis_link *rcache_redis(struct rcache *c);

#endif
