/* cache.h -- the response cache as llmserve uses Redis: exact match on the
 * request (prompt identity and sampling settings), a TTL set when the answer
 * is stored (SET ... EX), a bounded number of entries with least-recently-used
 * eviction (maxmemory-policy allkeys-lru), and a lookup latency.
 *
 * Keys are 64-bit request identities (0 is never stored).  Memory is fixed
 * by the capacity.  Expired entries are dropped when met (lookup, eviction),
 * as Redis does lazily; an expired entry never answers. */
#ifndef LLM_CACHE_H
#define LLM_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache;

/* A cache of at most CAPACITY entries (> 0).  NULL when out of memory. */
struct cache *cache_create(size_t capacity);
void cache_free(struct cache *c);

/* Whether KEY holds an unexpired answer at NOW_S; a hit makes it the most
 * recently used. */
bool cache_get(struct cache *c, uint64_t key, double now_s);
/* Store KEY until EXPIRES_S (replacing and refreshing an existing entry),
 * evicting the least recently used entry when full. */
void cache_put(struct cache *c, uint64_t key, double expires_s);

size_t cache_len(const struct cache *c);
uint64_t cache_evictions(const struct cache *c);

#endif
