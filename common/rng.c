/* rng.c -- see rng.h. */
#include "common/rng.h"

#include <assert.h>
#include <math.h>

static inline uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_u64(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

/* Advance by 2^128 draws (the published jump polynomial). */
static void rng_jump(struct rng *r)
{
    static const uint64_t jump[] = {0x180ec6d33cfd0abaULL, 0xd5a61266f0c9392cULL,
                                    0xa9582618e03fc9aaULL, 0x39abdc4529b1661cULL};
    uint64_t t[4] = {0, 0, 0, 0};
    int i, b;

    for (i = 0; i < 4; i++) {
        for (b = 0; b < 64; b++) {
            if (jump[i] & (1ULL << b)) {
                t[0] ^= r->s[0];
                t[1] ^= r->s[1];
                t[2] ^= r->s[2];
                t[3] ^= r->s[3];
            }
            rng_u64(r);
        }
    }
    for (i = 0; i < 4; i++)
        r->s[i] = t[i];
}

void rng_init(struct rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed;
    uint64_t k;

    assert(stream < RNG_STREAM_MAX);
    r->s[0] = rng_splitmix64(&x);
    r->s[1] = rng_splitmix64(&x);
    r->s[2] = rng_splitmix64(&x);
    r->s[3] = rng_splitmix64(&x);
    for (k = 0; k < stream; k++)
        rng_jump(r);
}

double rng_uniform(struct rng *r)
{
    double u = ((double)(rng_u64(r) >> 11) + 0.5) * 0x1.0p-53;

    /* (2^53 - 1) + 0.5 rounds to 2^53: keep the top draw below 1. */
    return u < 1.0 ? u : 1.0 - 0x1.0p-53;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
    unsigned __int128 m = (unsigned __int128)rng_u64(r) * n;
    uint64_t low = (uint64_t)m;

    if (low < n) {
        uint64_t threshold = -n % n;
        while (low < threshold) {
            m = (unsigned __int128)rng_u64(r) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double rng_exp(struct rng *r, double mean)
{
    return -mean * log(rng_uniform(r));
}

double rng_normal(struct rng *r)
{
    double u1 = rng_uniform(r);
    double u2 = rng_uniform(r);

    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double rng_lognormal(struct rng *r, double mu, double sigma)
{
    return exp(mu + sigma * rng_normal(r));
}

uint64_t rng_poisson(struct rng *r, double mean)
{
    if (!(mean > 0.0)) /* also NaN */
        return 0;
    if (mean < 30.0) {
        /* Knuth: multiply uniforms until below e^-mean. */
        double limit = exp(-mean), p = 1.0;
        uint64_t k = 0;
        for (;;) {
            p *= rng_uniform(r);
            if (p <= limit)
                return k;
            k++;
        }
    }
    /* Large means: normal approximation with continuity correction. */
    {
        double x = floor(mean + sqrt(mean) * rng_normal(r) + 0.5);
        if (x >= 0x1.0p64)
            return UINT64_MAX;
        return x < 0 ? 0 : (uint64_t)x;
    }
}
