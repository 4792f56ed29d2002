/* engine_int.h -- the engine's insides, shared by the files that implement
 * engine.h and by nothing else:
 *
 *   engine.c       the engine object and its thread: requests in and out,
 *                  scheduling (admission, KV blocks, preemption), the step
 *                  (forward pass and sampling), failures and breaking
 *   engine_text.c  a request's output: each token's text, stop strings,
 *                  the events to its callback */
#ifndef LLM_SERVE_ENGINE_INT_H
#define LLM_SERVE_ENGINE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/rng.h"
#include "kernels/kernels.h"
#include "server/engine.h"
#include "server/forward.h"
#include "server/kvcache.h"
#include "server/model.h"
#include "server/tokenizer.h"

/* The RNG stream of request sampling (common/rng.h): a request draws from
 * stream ENGINE_RNG_STREAM of its own seed. */
#define ENGINE_RNG_STREAM (RNG_STREAM_USER + 1)

/* Ids generated in the llama2.c convention when the model has no tokenizer. */
#define ENGINE_DEFAULT_BOS 1
#define ENGINE_DEFAULT_EOS 2

struct engine_req {
    uint64_t id;
    struct engine_req *next;  /* in the waiting list */
    int cancelled;            /* set by engine_cancel (under the lock) */

    /* what was asked */
    struct engine_params p;
    char **stop;              /* p.n_stop copies; p.stop points here */
    size_t stop_max_len;
    engine_event_fn fn;
    void *ctx;

    /* tokens: the prompt, then the ones generated */
    int *tokens;
    int n_tokens;
    int cap;
    int n_prompt;
    int n_generated;
    int n_cached;             /* positions whose K/V are in the cache */
    struct kv_seq kv;
    struct rng rng;
    int started;              /* admitted once (counted in the statistics) */

    /* text: what the tokens decode to; text_sent bytes went to the callback */
    struct detok detok;
    char *text;
    size_t text_len;
    size_t text_cap;
    size_t text_sent;

    double t_submit, t_sched, t_first;
    int cut;                  /* ended on a stop string: no text after it */
    enum engine_finish finish; /* set when it ends on the engine thread */
    const char *error;
    enum err_code error_code; /* with error: ERR_INPUT or ERR_SYSTEM (engine_event) */
};

/* One sequence's part of the step being run. */
struct engine_slot {
    struct engine_req *r;
    int chunk;
};

struct engine {
    struct model *m;
    struct engine_opts o;
    struct kv_cache kv;
    struct forward *fwd;
    int bos, eos;

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;

    /* under mu */
    int stop;
    char fail_next[256];         /* engine_fail_next_steps' message */
    int fail_next_n;             /* steps it still fails */
    char broken_why[ERR_MSG_MAX + 128]; /* once st.broken: why (set once, then read-only) */
    char broken_msg[ERR_MSG_MAX + 160]; /* "engine broken: " and why, the requests' error */
    struct engine_req *wait_head, *wait_tail;
    int n_waiting;
    struct engine_req **running; /* oldest first */
    int n_running;
    uint64_t next_id;
    struct engine_stats st;

    /* the engine thread's */
    struct engine_slot *slots;
    struct forward_seq *fs;
    float *logits;               /* (max_batch, vocab) */
    struct kn_prob_index *scratch;
    char *tmp;                   /* detok output */
    char step_error[ERR_MSG_MAX + 64]; /* why the last failed step failed */
    int failed_in_row;           /* steps failed since the last one that succeeded */
};

/* Bytes detok_push may write for one token (a piece, or replacement characters). */
#define ENGINE_TMP_BYTES 512

/* Seconds on the monotonic clock. */
double engine_now_s(void);

/* engine_text.c: the engine thread's, never under the lock. */

/* Append N bytes to R's text.  -1 when memory runs out. */
int engine_text_append(struct engine_req *r, const char *s, size_t n);
/* Send R's event: a token (FINISH NONE, TOKEN) or the final one (TOKEN -1);
 * the text up to TEXT_END is released with it. */
void engine_emit(struct engine_req *r, enum engine_finish finish, int token, size_t text_end);
/* The final event, with the text still held back (none after a stop string). */
void engine_finish_req(struct engine *eng, struct engine_req *r, enum engine_finish finish);
/* Take TOKEN for R: its text, stop strings, events, and whether it ends R
 * (R->finish set, the final event sent). */
void engine_take_token(struct engine *eng, struct engine_req *r, int token);

#endif
