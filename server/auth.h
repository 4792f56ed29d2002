/* auth.h -- API keys and per-key rate limits.
 *
 * Keys come from a file, one per line: "KEY [NAME]" (blank lines and lines
 * starting with # are skipped; NAME defaults to "key-LINE").  A request's
 * "Authorization: Bearer KEY" is compared with every key in constant time
 * (the time does not depend on where or whether it matches); only the
 * name is ever logged or used as a label.
 *
 * Rate limits are GCRA (the generic cell rate algorithm) on two budgets per
 * key name: requests per minute and tokens per minute (a request costs its
 * prompt tokens plus its max_tokens, charged at admission), each allowing a
 * burst of one minute's worth.  With a Redis link the state lives in Redis
 * and one Lua script (EVALSHA) checks and updates both budgets atomically,
 * so the limits hold across replicas; when Redis fails the check falls back
 * to the per-process limiter (and counts the error) rather than blocking.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef LLM_AUTH_H
#define LLM_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct redis_link;

/* ---- API keys --------------------------------------------------------------- */

#define AUTH_KEY_MAX 256

struct auth;

/* Load PATH.  NULL with E naming PATH:LINE on a bad line (a key too long,
 * a control character, a duplicate key or name) or an empty file. */
struct auth *auth_load(const char *path, struct err *e);
void auth_free(struct auth *a);
int auth_n_keys(const struct auth *a);

/* Check an Authorization header value (NULL when absent): the key's name
 * when it is "Bearer KEY" with a known KEY, else NULL. */
const char *auth_check(const struct auth *a, const char *authorization);

/* 1 if A and B (of lengths LA, LB <= AUTH_KEY_MAX) are equal; the time taken
 * depends on neither their contents nor where they differ. */
int auth_ct_equal(const char *a, size_t la, const char *b, size_t lb);

/* ---- rate limits --------------------------------------------------------------- */

struct ratelimit_opts {
    double requests_per_min; /* 0: unlimited */
    double tokens_per_min;   /* 0: unlimited */
};

struct ratelimit;

/* REDIS NULL: per-process.  NULL when out of memory. */
struct ratelimit *ratelimit_create(const struct ratelimit_opts *opts, struct redis_link *redis);
void ratelimit_free(struct ratelimit *rl);

/* Charge one request of TOKENS tokens to NAME.  0: allowed (charged);
 * 1: limited, nothing charged, *RETRY_AFTER_S says when it would pass. */
int ratelimit_check(struct ratelimit *rl, const char *name, int tokens, double *retry_after_s);

/* Checks that fell back to the per-process limiter because Redis failed. */
uint64_t ratelimit_redis_fallbacks(struct ratelimit *rl);

#endif
