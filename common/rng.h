/* rng.h -- the one seeded random number generator.
 *
 * xoshiro256** (Blackman and Vigna), seeded through splitmix64.  A stream is
 * the generator for (seed, stream id): stream k starts k jumps of 2^128
 * draws after stream 0, so streams never overlap in practice and each part of
 * a simulation (arrivals, token lengths, routing, service times ...) draws from
 * its own stream: changing how often one part draws never shifts another. */
#ifndef LLM_RNG_H
#define LLM_RNG_H

#include <stdint.h>

struct rng {
    uint64_t s[4];
};

/* Well-known stream ids, so the same part always uses the same stream. */
enum rng_stream {
    RNG_STREAM_ARRIVALS = 0,
    RNG_STREAM_PROMPT_LEN = 1,
    RNG_STREAM_OUTPUT_LEN = 2,
    RNG_STREAM_SERVICE = 3,
    RNG_STREAM_ROUTING = 4,
    RNG_STREAM_THINNING = 5,
    RNG_STREAM_BURST = 6,
    RNG_STREAM_IDENTITY = 7,
    RNG_STREAM_CACHE = 8,
    RNG_STREAM_REGION = 9, /* the client region of each request */
    RNG_STREAM_TUNE = 10,  /* llmsim tune: which candidates successive halving samples */
    RNG_STREAM_USER = 16, /* first id free for other parts */
};

/* Stream ids are small: the stream is reached by STREAM jumps of 256 draws
 * each, so rng_init costs O(STREAM) (asserted below RNG_STREAM_MAX). */
#define RNG_STREAM_MAX 65536
void rng_init(struct rng *r, uint64_t seed, uint64_t stream);

uint64_t rng_u64(struct rng *r);
/* Uniform on the open interval (0, 1): never 0 or 1, safe for log(). */
double rng_uniform(struct rng *r);
/* Uniform integer in [0, n); n > 0.  Unbiased (Lemire's method). */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Exponential with the given mean. */
double rng_exp(struct rng *r, double mean);
/* Standard normal (Box-Muller, no cached second value so state is simple). */
double rng_normal(struct rng *r);
/* Lognormal with parameters mu and sigma of the underlying normal. */
double rng_lognormal(struct rng *r, double mu, double sigma);
/* Poisson-distributed count with the given mean (mean >= 0; a mean that is
 * not positive, NaN included, gives 0; counts saturate at UINT64_MAX). */
uint64_t rng_poisson(struct rng *r, double mean);

#endif
