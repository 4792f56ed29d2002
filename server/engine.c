/* engine.c -- the inference engine (see engine.h): a thread that runs the
 * forward pass step after step over a continuously re-formed batch.
 *
 * Requests move waiting -> running -> gone.  One mutex guards the lists,
 * the cancel flags and the statistics; the engine thread holds it only
 * while it schedules, never while it computes or calls a callback.  What a
 * running request holds besides (its tokens, KV blocks, RNG, text) is the
 * engine thread's alone.
 *
 * A step:
 *  1. (locked) drop cancelled requests; admit waiting ones (FIFO) while the
 *     batch has room and the free KV blocks cover their prompt; give each
 *     running request its chunk (1 token when decoding, up to prefill_chunk
 *     prompt tokens within the step's token budget) and the KV blocks for it,
 *     preempting the newest running request when blocks run out (it goes back
 *     to the front of the queue and is recomputed from its tokens later);
 *  2. (unlocked) the forward pass over all chunks at once; sampling for the
 *     requests whose chunk reached their last token; events to callbacks;
 *  3. (locked) finished requests leave the batch.
 *
 * A forward pass that fails (the cuda backend's device errors) ends every
 * request of its step with ENGINE_FINISH_ERROR and the error's text; the
 * others, and later requests, go on.  A device error that corrupts the
 * context fails every later step too: after ENGINE_BROKEN_STEPS failures in
 * a row the engine breaks (engine_break): it fails what it holds, refuses
 * new requests and stays so until the process is restarted.
 *
 * What each new token becomes (text, stop strings, events) is in
 * engine_text.c; the structures both share are in engine_int.h. */
#include "config.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "server/engine_int.h"

double engine_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- requests --------------------------------------------------------------------- */

/* Free R; its KV blocks must have been released (under the lock, as the
 * statistics read the cache's free count). */
static void engine_req_free(struct engine *eng, struct engine_req *r)
{
    if (r == NULL)
        return;
    assert(r->kv.n_blocks == 0);
    kv_seq_free(&eng->kv, &r->kv);
    for (int i = 0; i < r->p.n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    free(r->tokens);
    free(r->text);
    free(r);
}

/* ---- scheduling (under the lock) -------------------------------------------------------- */

static void engine_wait_push_front(struct engine *eng, struct engine_req *r)
{
    r->next = eng->wait_head;
    eng->wait_head = r;
    if (eng->wait_tail == NULL)
        eng->wait_tail = r;
    eng->n_waiting++;
}

static struct engine_req *engine_wait_pop(struct engine *eng)
{
    struct engine_req *r = eng->wait_head;

    if (r != NULL) {
        eng->wait_head = r->next;
        if (eng->wait_head == NULL)
            eng->wait_tail = NULL;
        r->next = NULL;
        eng->n_waiting--;
    }
    return r;
}

/* Remove running request I (keeping the others in order). */
static void engine_running_remove(struct engine *eng, int i)
{
    memmove(eng->running + i, eng->running + i + 1, (size_t)(eng->n_running - i - 1) * sizeof *eng->running);
    eng->n_running--;
}

/* Move the cancelled requests (waiting or running) to the list *DONE,
 * their KV blocks freed. */
static void engine_reap_cancelled(struct engine *eng, struct engine_req **done)
{
    struct engine_req **pp = &eng->wait_head, *prev = NULL;

    while (*pp != NULL) {
        struct engine_req *r = *pp;

        if (r->cancelled) {
            *pp = r->next;
            eng->n_waiting--;
            r->finish = ENGINE_FINISH_CANCELLED;
            r->next = *done;
            *done = r;
        } else {
            prev = r;
            pp = &r->next;
        }
    }
    eng->wait_tail = prev;
    for (int i = 0; i < eng->n_running;) {
        struct engine_req *r = eng->running[i];

        if (r->cancelled) {
            kv_seq_release(&eng->kv, &r->kv);
            r->n_cached = 0;
            engine_running_remove(eng, i);
            r->finish = ENGINE_FINISH_CANCELLED;
            r->next = *done;
            *done = r;
        } else {
            i++;
        }
    }
}

/* KV blocks the running requests will still claim to hold their current
 * tokens and the next one. */
static int engine_blocks_promised(const struct engine *eng)
{
    int n = 0;

    for (int i = 0; i < eng->n_running; i++) {
        const struct engine_req *r = eng->running[i];
        int need = kv_cache_blocks_for(&eng->kv, r->n_tokens + 1) - r->kv.n_blocks;

        n += need > 0 ? need : 0;
    }
    return n;
}

/* Admit waiting requests, in order, while the batch has room and the free
 * blocks cover each one's tokens and its next one.  A request that can never
 * run goes to *DONE with an error. */
static void engine_admit(struct engine *eng, struct engine_req **done, double now)
{
    int avail = kv_cache_n_free(&eng->kv) - engine_blocks_promised(eng);

    while (eng->wait_head != NULL && eng->n_running < eng->o.max_batch) {
        struct engine_req *r = eng->wait_head;
        int need = kv_cache_blocks_for(&eng->kv, r->n_tokens + 1);

        if (r->n_tokens >= eng->m->cfg.seq_len || need > eng->kv.n_blocks) {
            engine_wait_pop(eng);
            r->finish = r->n_generated > 0 ? ENGINE_FINISH_LENGTH : ENGINE_FINISH_ERROR;
            r->error = r->n_tokens >= eng->m->cfg.seq_len ? "the prompt does not fit the model's context"
                                                          : "the prompt does not fit the KV cache";
            r->error_code = ERR_INPUT;
            r->next = *done;
            *done = r;
            continue;
        }
        if (need > avail)
            break;
        avail -= need;
        engine_wait_pop(eng);
        if (!r->started) {
            r->started = 1;
            r->t_sched = now;
            eng->st.prompt_tokens += (uint64_t)r->n_prompt;
        }
        eng->running[eng->n_running++] = r;
    }
}

/* Preempt the newest running request: its blocks freed, back to the front
 * of the queue to be recomputed. */
static void engine_preempt_newest(struct engine *eng)
{
    struct engine_req *r = eng->running[eng->n_running - 1];

    kv_seq_release(&eng->kv, &r->kv);
    r->n_cached = 0;
    eng->n_running--;
    engine_wait_push_front(eng, r);
    eng->st.preemptions++;
    log_debug("engine: preempted request %llu (%d tokens) for lack of KV blocks", (unsigned long long)r->id,
              r->n_tokens);
}

/* Give each running request its chunk for this step, with the KV blocks
 * for it.  Returns the number of slots filled. */
static int engine_plan(struct engine *eng, struct engine_req **done)
{
    int budget = forward_max_tokens(eng->fwd), n = 0;

    for (int i = 0; i < eng->n_running; i++)
        if (eng->running[i]->n_tokens - eng->running[i]->n_cached == 1)
            budget--; /* decode tokens first: they never wait */
    for (int i = 0; i < eng->n_running; i++) {
        struct engine_req *r = eng->running[i];
        int left = r->n_tokens - r->n_cached, chunk = left;

        assert(left >= 1);
        if (left > 1) {
            if (chunk > eng->o.prefill_chunk)
                chunk = eng->o.prefill_chunk;
            if (chunk > budget)
                chunk = budget;
            if (chunk <= 0)
                continue; /* no room in this step: the next one */
            budget -= chunk;
        }
        while (kv_seq_reserve(&eng->kv, &r->kv, r->n_cached + chunk) < 0) {
            if (eng->n_running == 1) {
                /* alone and still out of blocks: the cache cannot hold it */
                engine_running_remove(eng, i);
                kv_seq_release(&eng->kv, &r->kv);
                r->finish = r->n_generated > 0 ? ENGINE_FINISH_LENGTH : ENGINE_FINISH_ERROR;
                r->error = "the sequence outgrew the KV cache";
                r->error_code = ERR_INPUT;
                r->next = *done;
                *done = r;
                r = NULL;
                break;
            }
            if (eng->running[eng->n_running - 1] == r) {
                engine_preempt_newest(eng);
                r = NULL;
                break;
            }
            engine_preempt_newest(eng);
        }
        if (r == NULL)
            break; /* it was the newest: nothing after it is left */
        eng->slots[n].r = r;
        eng->slots[n].chunk = chunk;
        n++;
    }
    return n;
}

/* ---- the engine thread ------------------------------------------------------------------------ */

/* Send the final events of the requests in list DONE and free them. */
static void engine_finish_list(struct engine *eng, struct engine_req *done)
{
    while (done != NULL) {
        struct engine_req *r = done;

        done = r->next;
        engine_finish_req(eng, r, r->finish);
        engine_req_free(eng, r);
    }
}

/* Describe the N planned slots in ST (for the on_step hook). */
static void engine_step_describe(const struct engine *eng, int n, struct engine_step *st)
{
    for (int i = 0; i < n; i++) {
        const struct engine_req *r = eng->slots[i].r;
        long chunk = eng->slots[i].chunk, pos0 = r->n_cached;

        st->seqs++;
        if (r->n_tokens - r->n_cached > 1) {
            st->prefill_seqs++;
            st->prefill_tokens += (int)chunk;
            /* token t of the chunk attends to positions 0 .. pos0+t */
            st->prefill_ctx += chunk * pos0 + chunk * (chunk + 1) / 2;
        } else {
            st->decode_seqs++;
            st->decode_ctx += pos0 + 1;
        }
    }
}

/* The forward pass of the step's N slots failed with MSG: each of their
 * requests ends with ENGINE_FINISH_ERROR (and leaves the batch after the
 * step, its blocks freed, as any finished request).  Their final events go
 * out from engine_main, after the failure is counted. */
static void engine_fail_step(struct engine *eng, int n, const char *msg)
{
    snprintf(eng->step_error, sizeof eng->step_error, "the forward pass failed: %s", msg);
    log_error("engine: %s (%d request%s ended)", eng->step_error, n, n == 1 ? "" : "s");
    for (int i = 0; i < n; i++) {
        struct engine_req *r = eng->slots[i].r;

        r->error = eng->step_error;
        r->error_code = ERR_SYSTEM;
        r->finish = ENGINE_FINISH_ERROR;
    }
}

/* Run the forward pass over the N planned slots and take their tokens
 * (FAIL, when not empty: fail the step with it instead, for
 * engine_fail_next_steps).  Returns the number of tokens generated, or -1
 * when the step failed (its requests ended with the error). */
static int engine_run_step(struct engine *eng, int n, struct engine_step *st, const char *fail)
{
    int vocab = eng->m->cfg.vocab_size, generated = 0;
    struct err e = {0};

    for (int i = 0; i < n; i++) {
        struct engine_req *r = eng->slots[i].r;
        int chunk = eng->slots[i].chunk;

        eng->fs[i].tokens = r->tokens + r->n_cached;
        eng->fs[i].n_tokens = chunk;
        eng->fs[i].pos0 = r->n_cached;
        eng->fs[i].kv = &r->kv;
        eng->fs[i].logits = r->n_cached + chunk == r->n_tokens ? eng->logits + (size_t)i * vocab : NULL;
    }
    if (fail[0] != '\0' || forward_batch_checked(eng->fwd, eng->fs, n, &e) != 0) {
        engine_fail_step(eng, n, fail[0] != '\0' ? fail : e.msg);
        st->t_sample = eng->o.on_step != NULL ? engine_now_s() : 0;
        return -1;
    }
    st->t_sample = eng->o.on_step != NULL ? engine_now_s() : 0;
    for (int i = 0; i < n; i++) {
        struct engine_req *r = eng->slots[i].r;
        float *logits = eng->fs[i].logits;
        int token;

        r->n_cached += eng->slots[i].chunk;
        if (logits == NULL)
            continue;
        token = kn_sample(logits, vocab, r->p.temperature, r->p.top_k, r->p.top_p,
                          r->p.temperature > 0 ? (float)rng_uniform(&r->rng) : 0.0f, eng->scratch);
        generated -= r->n_generated;
        engine_take_token(eng, r, token);
        generated += r->n_generated;
    }
    return generated;
}

/* ENGINE_BROKEN_STEPS steps in a row failed (under the lock): the engine
 * is broken for good.  Every request still waiting or running goes to *DONE
 * with the error; engine_submit refuses from now on.  Returns how many. */
static int engine_break(struct engine *eng, struct engine_req **done)
{
    struct engine_req *r;
    int n = 0;

    eng->st.broken = 1;
    snprintf(eng->broken_why, sizeof eng->broken_why, "%s (%d steps in a row)", eng->step_error,
             eng->failed_in_row);
    snprintf(eng->broken_msg, sizeof eng->broken_msg, "engine broken: %s", eng->broken_why);
    while ((r = engine_wait_pop(eng)) != NULL) {
        r->next = *done;
        *done = r;
    }
    while (eng->n_running > 0) {
        r = eng->running[--eng->n_running];
        kv_seq_release(&eng->kv, &r->kv);
        r->next = *done;
        *done = r;
    }
    for (r = *done; r != NULL; r = r->next, n++) {
        r->finish = ENGINE_FINISH_ERROR;
        r->error = eng->broken_msg;
        r->error_code = ERR_SYSTEM;
    }
    return n;
}

static void *engine_main(void *arg)
{
    struct engine *eng = arg;

    pthread_mutex_lock(&eng->mu);
    while (!eng->stop) {
        struct engine_req *done = NULL;
        struct engine_step step = {0};
        char fail[sizeof eng->fail_next] = "";
        int n, generated = 0, failed = 0, n_broke = -1;
        double t0;

        step.t_start = engine_now_s();
        engine_reap_cancelled(eng, &done);
        engine_admit(eng, &done, engine_now_s());
        n = eng->n_running > 0 ? engine_plan(eng, &done) : 0;
        if (n == 0 && done == NULL) {
            pthread_cond_wait(&eng->cv, &eng->mu);
            continue;
        }
        if (n > 0 && eng->fail_next_n > 0) {
            memcpy(fail, eng->fail_next, sizeof fail);
            eng->fail_next_n--;
        }
        pthread_mutex_unlock(&eng->mu);

        engine_finish_list(eng, done);
        t0 = engine_now_s();
        if (n > 0) {
            if (eng->o.on_step != NULL)
                engine_step_describe(eng, n, &step);
            generated = engine_run_step(eng, n, &step, fail);
            failed = generated < 0;
            if (failed)
                generated = 0;
            if (eng->o.on_step != NULL) {
                step.t_forward = t0;
                step.t_end = engine_now_s();
                step.generated = generated;
                eng->o.on_step(eng->o.on_step_ctx, &step);
            }
        }

        pthread_mutex_lock(&eng->mu);
        done = NULL;
        for (int i = 0; i < eng->n_running;) {
            struct engine_req *r = eng->running[i];

            if (r->finish != ENGINE_FINISH_NONE) {
                engine_running_remove(eng, i);
                kv_seq_release(&eng->kv, &r->kv);
                r->next = done;
                done = r;
            } else {
                i++;
            }
        }
        if (n > 0) {
            eng->st.steps++;
            eng->st.last_batch = n;
            eng->st.generated_tokens += (uint64_t)generated;
            eng->st.busy_s += engine_now_s() - t0;
            eng->st.failed_steps += (uint64_t)failed;
            eng->failed_in_row = failed ? eng->failed_in_row + 1 : 0;
        }
        {
            struct engine_req *broke = NULL;

            if (eng->failed_in_row >= ENGINE_BROKEN_STEPS && !eng->st.broken)
                n_broke = engine_break(eng, &broke);
            pthread_mutex_unlock(&eng->mu);
            if (n_broke >= 0)
                log_error("engine: broken: %s; %d request%s still held failed, new ones refused: restart the process",
                          eng->broken_why, n_broke, n_broke == 1 ? "" : "s");
            engine_finish_list(eng, broke);
        }
        if (failed) {
            /* their final events go out only now, once the failure is
             * counted (and the engine broken, if it was the last straw):
             * whoever hears of it finds /healthz already telling */
            engine_finish_list(eng, done);
            done = NULL;
        }
        while (done != NULL) { /* their final events went out in the step */
            struct engine_req *r = done;

            done = r->next;
            engine_req_free(eng, r);
        }
        pthread_mutex_lock(&eng->mu);
    }

    /* stopping: everything still here is cancelled */
    {
        struct engine_req *done = NULL, *r;

        while ((r = engine_wait_pop(eng)) != NULL) {
            r->finish = ENGINE_FINISH_CANCELLED;
            r->next = done;
            done = r;
        }
        while (eng->n_running > 0) {
            r = eng->running[--eng->n_running];
            kv_seq_release(&eng->kv, &r->kv);
            r->finish = ENGINE_FINISH_CANCELLED;
            r->next = done;
            done = r;
        }
        pthread_mutex_unlock(&eng->mu);
        engine_finish_list(eng, done);
    }
    return NULL;
}

/* ---- the interface -------------------------------------------------------------------------------- */

struct engine *engine_create(struct model *m, const struct engine_opts *opts, struct err *e)
{
    const struct model_config *c = &m->cfg;
    struct engine_opts o = {0};
    struct engine *eng;
    const struct kn_backend *be;
    size_t block_bytes;
    int n_blocks, r, kv_dim = c->n_kv_heads * c->head_dim;

    if (opts != NULL)
        o = *opts;
    if (o.max_batch <= 0)
        o.max_batch = 16;
    if (o.max_queue <= 0)
        o.max_queue = 64;
    if (o.kv_block_tokens <= 0)
        o.kv_block_tokens = 16;
    if (o.prefill_chunk <= 0)
        o.prefill_chunk = 256;
    if (o.backend == NULL)
        o.backend = "cpu";
    if ((be = forward_backend(o.backend, e)) == NULL) {
        err_prefix(e, "engine");
        return NULL;
    }
    block_bytes = kv_cache_block_bytes(c->n_layers, kv_dim, o.kv_block_tokens);
    if (o.kv_cache_bytes == 0)
        n_blocks = o.max_batch * ((c->seq_len + o.kv_block_tokens - 1) / o.kv_block_tokens);
    else if (o.kv_cache_bytes / block_bytes > (size_t)1 << 30)
        n_blocks = 1 << 30;
    else
        n_blocks = (int)(o.kv_cache_bytes / block_bytes);
    if (n_blocks < 1) {
        err_set(e, ERR_INPUT, "engine: a KV cache of %zu bytes holds no block of %zu bytes", o.kv_cache_bytes,
                block_bytes);
        return NULL;
    }

    eng = calloc(1, sizeof *eng);
    if (eng == NULL) {
        err_set(e, ERR_SYSTEM, "engine: out of memory");
        return NULL;
    }
    eng->m = m;
    eng->o = o;
    eng->bos = m->tokenizer != NULL ? tokenizer_bos(m->tokenizer) : ENGINE_DEFAULT_BOS;
    eng->eos = m->tokenizer != NULL ? tokenizer_eos(m->tokenizer) : ENGINE_DEFAULT_EOS;
    eng->next_id = 1;
    pthread_mutex_init(&eng->mu, NULL);
    pthread_cond_init(&eng->cv, NULL);
    /* on the device, the cache's keys and values live in the forward pass */
    if (forward_backend_on_device(be))
        r = kv_cache_init_meta(&eng->kv, c->n_layers, kv_dim, o.kv_block_tokens, n_blocks, e);
    else
        r = kv_cache_init(&eng->kv, c->n_layers, kv_dim, o.kv_block_tokens, n_blocks, e);
    if (r < 0)
        goto err;
    eng->fwd = forward_create(m, &eng->kv, o.prefill_chunk + o.max_batch, be, e);
    if (eng->fwd == NULL)
        goto err;
    eng->running = calloc((size_t)o.max_batch, sizeof *eng->running);
    eng->slots = calloc((size_t)o.max_batch, sizeof *eng->slots);
    eng->fs = calloc((size_t)o.max_batch, sizeof *eng->fs);
    eng->logits = malloc((size_t)o.max_batch * c->vocab_size * sizeof(float));
    eng->scratch = malloc((size_t)c->vocab_size * sizeof *eng->scratch);
    eng->tmp = malloc(ENGINE_TMP_BYTES);
    if (eng->running == NULL || eng->slots == NULL || eng->fs == NULL || eng->logits == NULL ||
        eng->scratch == NULL || eng->tmp == NULL) {
        err_set(e, ERR_SYSTEM, "engine: out of memory");
        goto err;
    }
    eng->st.max_batch = o.max_batch;
    eng->st.max_queue = o.max_queue;
    if (o.threads > 0)
        kn_set_threads(o.threads);
    pthread_attr_t attr;
    int rc;
    if (pthread_attr_init(&attr) != 0) {
        err_set(e, ERR_SYSTEM, "engine: cannot start its thread");
        goto err;
    }
    rc = o.cpus != NULL ? pthread_attr_setaffinity_np(&attr, sizeof *o.cpus, o.cpus) : 0;
    if (rc == 0)
        rc = pthread_create(&eng->thread, &attr, engine_main, eng);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        err_set(e, ERR_SYSTEM, "engine: cannot start its thread%s: %s", o.cpus != NULL ? " on its CPUs" : "",
                strerror(rc));
        goto err;
    }
    eng->thread_started = 1;
    pthread_setname_np(eng->thread, "engine"); /* for top -H, ps -L and /proc; best effort */
    log_debug("engine: backend %s, %d KV blocks of %d tokens (%.1f MiB), batch %d, queue %d, prefill chunk %d",
              be->name, n_blocks, o.kv_block_tokens, (double)n_blocks * block_bytes / (1 << 20), o.max_batch,
              o.max_queue, o.prefill_chunk);
    return eng;
err:
    engine_destroy(eng);
    return NULL;
}

void engine_destroy(struct engine *eng)
{
    if (eng == NULL)
        return;
    if (eng->thread_started) {
        pthread_mutex_lock(&eng->mu);
        eng->stop = 1;
        pthread_cond_signal(&eng->cv);
        pthread_mutex_unlock(&eng->mu);
        pthread_join(eng->thread, NULL);
    }
    forward_free(eng->fwd);
    kv_cache_free(&eng->kv);
    free(eng->running);
    free(eng->slots);
    free(eng->fs);
    free(eng->logits);
    free(eng->scratch);
    free(eng->tmp);
    pthread_mutex_destroy(&eng->mu);
    pthread_cond_destroy(&eng->cv);
    free(eng);
}

/* A new request from the arguments of engine_submit; NULL on out of memory. */
static struct engine_req *engine_req_new(const struct engine *eng, const int *prompt, int n_prompt,
                                         const struct engine_params *p)
{
    struct engine_req *r = calloc(1, sizeof *r);
    int seq_len = eng->m->cfg.seq_len;

    if (r == NULL)
        return NULL;
    r->p = *p;
    r->p.stop = NULL;
    r->p.n_stop = 0;
    /* room for the prompt and every token it may generate (never past the context) */
    r->cap = n_prompt + (p->max_tokens < seq_len ? p->max_tokens : seq_len);
    r->tokens = malloc((size_t)r->cap * sizeof *r->tokens);
    if (r->tokens == NULL)
        goto err;
    memcpy(r->tokens, prompt, (size_t)n_prompt * sizeof *prompt);
    r->n_tokens = r->n_prompt = n_prompt;
    if (p->n_stop > 0) {
        r->stop = calloc((size_t)p->n_stop, sizeof *r->stop);
        if (r->stop == NULL)
            goto err;
        for (int i = 0; i < p->n_stop; i++) {
            r->stop[i] = strdup(p->stop[i] != NULL ? p->stop[i] : "");
            if (r->stop[i] == NULL)
                goto err;
            r->p.n_stop = i + 1;
        }
        r->p.stop = (const char *const *)r->stop;
    }
    kv_seq_init(&r->kv);
    rng_init(&r->rng, p->seed, ENGINE_RNG_STREAM);
    if (eng->m->tokenizer != NULL)
        detok_init(&r->detok, eng->m->tokenizer);
    return r;
err:
    for (int i = 0; i < r->p.n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    free(r->tokens);
    free(r);
    return NULL;
}

int engine_submit(struct engine *eng, const int *prompt, int n_prompt, const struct engine_params *p,
                  engine_event_fn fn, void *ctx, uint64_t *id, struct err *e)
{
    int vocab = eng->m->cfg.vocab_size;
    struct engine_req *r;

    if (prompt == NULL || n_prompt <= 0)
        return err_set(e, ERR_INPUT, "the prompt is empty");
    if (p == NULL || p->max_tokens <= 0)
        return err_set(e, ERR_INPUT, "max_tokens must be positive");
    if (p->n_stop < 0 || (p->n_stop > 0 && p->stop == NULL))
        return err_set(e, ERR_INPUT, "stop: bad list");
    if (fn == NULL)
        return err_set(e, ERR_INPUT, "no event callback");
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= vocab)
            return err_set(e, ERR_INPUT, "prompt token %d (at %d) is outside the vocabulary of %d", prompt[i], i,
                           vocab);
    r = engine_req_new(eng, prompt, n_prompt, p);
    if (r == NULL)
        return err_set(e, ERR_SYSTEM, "engine: out of memory for a request");
    r->fn = fn;
    r->ctx = ctx;
    r->t_submit = engine_now_s();

    pthread_mutex_lock(&eng->mu);
    if (eng->stop || eng->st.broken || eng->n_waiting >= eng->o.max_queue) {
        if (eng->stop)
            err_set(e, ERR_SYSTEM, "engine: shutting down");
        else if (eng->st.broken)
            err_set(e, ERR_SYSTEM, "%s", eng->broken_msg);
        else
            err_set(e, ERR_SYSTEM, "engine: the queue is full (%d waiting)", eng->o.max_queue);
        pthread_mutex_unlock(&eng->mu);
        engine_req_free(eng, r);
        return -1;
    }
    r->id = eng->next_id++;
    if (eng->wait_tail != NULL)
        eng->wait_tail->next = r;
    else
        eng->wait_head = r;
    eng->wait_tail = r;
    eng->n_waiting++;
    if (id != NULL)
        *id = r->id;
    pthread_cond_signal(&eng->cv);
    pthread_mutex_unlock(&eng->mu);
    return 0;
}

void engine_cancel(struct engine *eng, uint64_t id)
{
    pthread_mutex_lock(&eng->mu);
    for (struct engine_req *r = eng->wait_head; r != NULL; r = r->next)
        if (r->id == id)
            r->cancelled = 1;
    for (int i = 0; i < eng->n_running; i++)
        if (eng->running[i]->id == id)
            eng->running[i]->cancelled = 1;
    pthread_cond_signal(&eng->cv);
    pthread_mutex_unlock(&eng->mu);
}

void engine_get_stats(struct engine *eng, struct engine_stats *st)
{
    pthread_mutex_lock(&eng->mu);
    *st = eng->st;
    st->running = eng->n_running;
    st->waiting = eng->n_waiting;
    st->kv_usage = kv_cache_usage(&eng->kv);
    pthread_mutex_unlock(&eng->mu);
}

const struct model *engine_model(const struct engine *eng)
{
    return eng->m;
}

int engine_broken(struct engine *eng, char *why, size_t n)
{
    int broken;

    pthread_mutex_lock(&eng->mu);
    broken = eng->st.broken;
    if (broken && why != NULL && n > 0)
        snprintf(why, n, "%s", eng->broken_why);
    pthread_mutex_unlock(&eng->mu);
    return broken;
}

void engine_fail_next_steps(struct engine *eng, int n, const char *msg)
{
    pthread_mutex_lock(&eng->mu);
    snprintf(eng->fail_next, sizeof eng->fail_next, "%s", msg != NULL && msg[0] != '\0' ? msg : "injected failure");
    eng->fail_next_n = n > 0 ? n : 1;
    pthread_mutex_unlock(&eng->mu);
}
