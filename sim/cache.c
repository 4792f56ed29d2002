/* cache.c -- see cache.h.  An open-addressing hash table (linear probing,
 * backward-shift deletion) of indices into a fixed array of entries, the
 * entries chained in LRU order. */
#include "sim/cache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CACHE_NONE UINT32_MAX

struct cache_entry {
    uint64_t key;
    double expires_s;
    uint32_t slot; /* where the table holds it */
    uint32_t prev; /* towards the most recently used */
    uint32_t next; /* towards the least recently used */
};

/* A table slot keeps the key beside the entry index, so a probe touches one
 * cache line, not two. */
struct cache_slot {
    uint64_t key;
    uint32_t entry; /* CACHE_NONE when empty */
};

struct cache {
    struct cache_entry *entries;
    struct cache_slot *slots; /* hash table, linear probing */
    size_t nslots;     /* a power of two, at least 2 x capacity */
    size_t capacity;
    size_t len;
    uint32_t head;     /* most recently used */
    uint32_t tail;     /* least recently used */
    uint32_t free_head;
    uint64_t evictions;
};

static size_t cache_hash(const struct cache *c, uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (c->nslots - 1);
}

/* A large table is probed at random: back it with huge pages where the
 * kernel allows (fewer TLB misses), which needs 2 MiB alignment. */
static void *cache_alloc(size_t bytes)
{
    const size_t huge = 2u << 20;
    void *p;

    if (bytes < huge)
        return malloc(bytes);
    bytes = (bytes + huge - 1) / huge * huge;
    if (posix_memalign(&p, huge, bytes) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

struct cache *cache_create(size_t capacity)
{
    struct cache *c;
    size_t i;

    if (capacity == 0 || capacity >= CACHE_NONE / 4)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->capacity = capacity;
    for (c->nslots = 16; c->nslots < 2 * capacity; c->nslots *= 2)
        ;
    c->entries = cache_alloc(capacity * sizeof(*c->entries));
    c->slots = cache_alloc(c->nslots * sizeof(*c->slots));
    if (c->entries == NULL || c->slots == NULL) {
        cache_free(c);
        return NULL;
    }
    for (i = 0; i < c->nslots; i++)
        c->slots[i].entry = CACHE_NONE;
    for (i = 0; i < capacity; i++)
        c->entries[i].next = i + 1 < capacity ? (uint32_t)(i + 1) : CACHE_NONE;
    c->free_head = 0;
    c->head = c->tail = CACHE_NONE;
    return c;
}

void cache_free(struct cache *c)
{
    if (c == NULL)
        return;
    free(c->entries);
    free(c->slots);
    free(c);
}

size_t cache_len(const struct cache *c) { return c->len; }
uint64_t cache_evictions(const struct cache *c) { return c->evictions; }

/* The slot holding KEY, or the empty slot where it would go. */
static size_t cache_find(const struct cache *c, uint64_t key)
{
    size_t i = cache_hash(c, key);

    while (c->slots[i].entry != CACHE_NONE && c->slots[i].key != key)
        i = (i + 1) & (c->nslots - 1);
    return i;
}

static void cache_unlink(struct cache *c, uint32_t e)
{
    struct cache_entry *x = &c->entries[e];

    if (x->prev != CACHE_NONE)
        c->entries[x->prev].next = x->next;
    else
        c->head = x->next;
    if (x->next != CACHE_NONE)
        c->entries[x->next].prev = x->prev;
    else
        c->tail = x->prev;
}

static void cache_push_front(struct cache *c, uint32_t e)
{
    struct cache_entry *x = &c->entries[e];

    x->prev = CACHE_NONE;
    x->next = c->head;
    if (c->head != CACHE_NONE)
        c->entries[c->head].prev = e;
    c->head = e;
    if (c->tail == CACHE_NONE)
        c->tail = e;
}

/* Remove the entry in slot I from the table and the list; keeps probe chains
 * intact by shifting later entries back. */
static void cache_remove_slot(struct cache *c, size_t i)
{
    uint32_t e = c->slots[i].entry;
    size_t j = i;

    cache_unlink(c, e);
    c->entries[e].next = c->free_head;
    c->free_head = e;
    c->len--;
    c->slots[i].entry = CACHE_NONE;
    for (;;) {
        size_t home;
        j = (j + 1) & (c->nslots - 1);
        if (c->slots[j].entry == CACHE_NONE)
            return;
        home = cache_hash(c, c->slots[j].key);
        /* Move slot j back to i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            c->slots[i] = c->slots[j];
            c->entries[c->slots[i].entry].slot = (uint32_t)i;
            c->slots[j].entry = CACHE_NONE;
            i = j;
        }
    }
}

bool cache_get(struct cache *c, uint64_t key, double now_s)
{
    size_t i = cache_find(c, key);
    uint32_t e = c->slots[i].entry;

    if (e == CACHE_NONE)
        return false;
    if (c->entries[e].expires_s <= now_s) {
        cache_remove_slot(c, i);
        return false;
    }
    cache_unlink(c, e);
    cache_push_front(c, e);
    return true;
}

void cache_put(struct cache *c, uint64_t key, double expires_s)
{
    size_t i = cache_find(c, key);
    uint32_t e = c->slots[i].entry;

    if (e != CACHE_NONE) {
        c->entries[e].expires_s = expires_s;
        cache_unlink(c, e);
        cache_push_front(c, e);
        return;
    }
    if (c->len == c->capacity) {
        cache_remove_slot(c, c->entries[c->tail].slot);
        c->evictions++;
        i = cache_find(c, key); /* the table moved */
    }
    e = c->free_head;
    assert(e != CACHE_NONE);
    c->free_head = c->entries[e].next;
    c->entries[e].key = key;
    c->entries[e].expires_s = expires_s;
    c->entries[e].slot = (uint32_t)i;
    c->slots[i].key = key;
    c->slots[i].entry = e;
    c->len++;
    cache_push_front(c, e);
}
