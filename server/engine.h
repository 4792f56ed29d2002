/* engine.h -- the inference engine: the only thing that touches the model.
 *
 * The engine runs on its own thread.  Callers (the HTTP layer, `llmserve
 * generate`) submit requests through a bounded queue and receive tokens
 * through a callback.  Every step the engine forms a batch by continuous
 * (iteration-level) scheduling: sequences waiting in the queue join the
 * running batch when the paged KV cache has free blocks for them, long
 * prompts are prefilled in chunks so decoding never stalls behind them,
 * finished or cancelled sequences leave at once, and when the cache runs
 * out the newest sequence is preempted (its blocks freed, recomputed later).
 *
 * A step whose forward pass fails ends its requests with an error.  After
 * ENGINE_BROKEN_STEPS failed steps in a row (a device whose context an
 * illegal address corrupted fails every step after it) the engine is
 * broken for good: only a new process can serve again (see engine_broken).
 *
 * Thread-safety: every function below may be called from any thread. */
#ifndef LLM_ENGINE_H
#define LLM_ENGINE_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct model;
struct engine;

/* Failed steps in a row after which the engine is broken (one or two are
 * survived: a later step that succeeds starts the count again). */
#define ENGINE_BROKEN_STEPS 3

/* What one engine step did, for the on_step hook: a log of these is what
 * llmsim's step-time model is checked against (llmserve --step-log), and
 * what `llmbench profile` times.  Times are CLOCK_MONOTONIC seconds. */
struct engine_step {
    double t_start;         /* the engine began planning the step */
    double t_forward;       /* the forward pass began (planning done) */
    double t_sample;        /* the forward pass ended: sampling and callbacks began */
    double t_end;           /* tokens sampled and handed to their callbacks */
    int seqs;               /* sequences in the step */
    int prefill_seqs;       /* of them, prefilling a chunk of prompt */
    int prefill_tokens;     /* prompt tokens in the step */
    long prefill_ctx;       /* sum over prefill tokens of the positions each attends to */
    int decode_seqs;        /* sequences decoding one token */
    long decode_ctx;        /* sum of their contexts (positions attended) */
    int generated;          /* tokens sampled */
};
typedef void (*engine_step_fn)(void *ctx, const struct engine_step *st);

struct engine_opts {
    int max_batch;          /* sequences decoded together (default 16) */
    int max_queue;          /* requests waiting beyond the batch; submit fails beyond it (default 64) */
    int kv_block_tokens;    /* tokens per KV-cache block (default 16) */
    size_t kv_cache_bytes;  /* KV-cache size (default: enough for max_batch full contexts) */
    int prefill_chunk;      /* prompt tokens prefilled per step per sequence (default 256) */
    int threads;            /* kernel threads (0: all cores) */
    const cpu_set_t *cpus;  /* the CPUs the engine thread, and so its OpenMP team, runs on
                               (NULL: those of the thread calling engine_create) */
    const char *backend;    /* backend name: "cpu", "ref", "cuda" or "auto" (forward.h's
                               forward_backend; NULL: "cpu") */
    engine_step_fn on_step; /* called on the engine thread after every step (NULL: none); it
                               must return quickly */
    void *on_step_ctx;
};

/* Sampling and stopping for one request. */
struct engine_params {
    float temperature;      /* <= 0: greedy */
    float top_p;            /* 1: off */
    int top_k;              /* 0: off */
    uint64_t seed;          /* the request's RNG seed (same seed, same prompt: same tokens) */
    int max_tokens;         /* tokens to generate at most (> 0) */
    int ignore_eos;         /* generate exactly max_tokens (load tests) */
    const char *const *stop;/* stop strings (copied by engine_submit); the text stops before them */
    int n_stop;
};

enum engine_finish {
    ENGINE_FINISH_NONE = 0, /* not finished (a token event) */
    ENGINE_FINISH_STOP,     /* EOS or a stop string */
    ENGINE_FINISH_LENGTH,   /* max_tokens or the model's context */
    ENGINE_FINISH_CANCELLED,
    ENGINE_FINISH_ERROR,    /* the request cannot run (prompt longer than the context), or its
                               step's forward pass failed (a device error), or the engine broke */
};

/* What the callback receives.  A request gets zero or more token events,
 * then exactly one final event (finish != NONE).  The final event may carry
 * text too: what was held back until the end (the tail of a possible stop
 * string, or a UTF-8 character left incomplete); a stop string itself is
 * never sent.  A generated EOS ends the request without a token event. */
struct engine_event {
    uint64_t id;
    enum engine_finish finish;
    int token;              /* token events: the id generated (-1 in the final event) */
    const char *text;       /* new complete UTF-8 text (may be empty while a character or a
                               possible stop string is pending); valid during the call */
    size_t text_len;
    int prompt_tokens;
    int completion_tokens;  /* so far */
    double queue_s;         /* submit -> first scheduled */
    double ttft_s;          /* submit -> first token */
    const char *error;      /* ENGINE_FINISH_ERROR: why */
    enum err_code error_code; /* ENGINE_FINISH_ERROR: ERR_INPUT when the request cannot run,
                               ERR_SYSTEM when the forward pass failed or the engine is broken */
};

/* Called on the engine thread: it must return quickly and never block (copy
 * what it needs and signal the caller's own thread).  After the final event
 * the engine never mentions the request again. */
typedef void (*engine_event_fn)(void *ctx, const struct engine_event *ev);

/* Create an engine over a loaded model (the engine does not own it) and
 * start its thread.  NULL with E set on failure. */
struct engine *engine_create(struct model *m, const struct engine_opts *opts, struct err *e);
/* Stop the thread: requests still queued or running get a CANCELLED final
 * event first.  Then free. */
void engine_destroy(struct engine *eng);

/* Submit a prompt of N_PROMPT token ids (copied).  Returns 0 and the
 * request's id in *ID, or -1 when the queue is full (E says so; the HTTP
 * layer answers 429), the engine is shutting down or broken (E says which
 * and, when broken, why; engine_broken tells them apart), or the request is
 * invalid (ERR_INPUT: empty prompt, prompt + max_tokens beyond the context
 * is allowed and ends with LENGTH). */
int engine_submit(struct engine *eng, const int *prompt, int n_prompt, const struct engine_params *p,
                  engine_event_fn fn, void *ctx, uint64_t *id, struct err *e);

/* Cancel a request (a client went away): its final event comes with
 * CANCELLED soon after, unless it had already finished. */
void engine_cancel(struct engine *eng, uint64_t id);

/* A consistent snapshot for /metrics, /readyz and the admission check. */
struct engine_stats {
    int running;            /* sequences in the batch */
    int waiting;            /* requests queued */
    int max_batch;
    int max_queue;
    double kv_usage;        /* fraction of KV-cache blocks in use, 0..1 */
    uint64_t steps;         /* engine steps so far */
    uint64_t prompt_tokens; /* totals since start */
    uint64_t generated_tokens;
    uint64_t preemptions;
    double busy_s;          /* time spent computing (for utilisation) */
    int last_batch;         /* sequences in the last step */
    uint64_t failed_steps;  /* steps whose forward pass failed, since start */
    int broken;             /* 1 once the engine is broken (engine_broken) */
};
void engine_get_stats(struct engine *eng, struct engine_stats *st);

/* 1 when ENGINE_BROKEN_STEPS steps in a row failed, with the last one's
 * error in WHY (N bytes; WHY may be NULL); else 0.  A broken engine stays broken:
 * it failed every request it held with that error and refuses new ones,
 * and the process must be restarted (llmserve's /healthz answers 503). */
int engine_broken(struct engine *eng, char *why, size_t n);

const struct model *engine_model(const struct engine *eng);

/* For tests of the error path: the next N steps that run (N >= 1) fail as
 * a failed forward pass would (a device error), with MSG, without running. */
void engine_fail_next_steps(struct engine *eng, int n, const char *msg);

#endif
