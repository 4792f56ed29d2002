/* engine_text.c -- a request's output on the engine thread (see
 * engine_int.h): each new token's text (detokenised, UTF-8 safe across
 * tokens), the stop strings (text that could begin one is held back until
 * the next tokens decide; a match cuts the text before it), and the events
 * to the request's callback, the final one included. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "server/engine_int.h"

/* Append N bytes to R's text.  -1 when memory runs out. */
int engine_text_append(struct engine_req *r, const char *s, size_t n)
{
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = r->text_cap > 0 ? r->text_cap : 256;
        char *t;

        while (cap < r->text_len + n + 1)
            cap *= 2;
        t = realloc(r->text, cap);
        if (t == NULL)
            return -1;
        r->text = t;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, s, n);
    r->text_len += n;
    r->text[r->text_len] = '\0';
    return 0;
}

/* Send R's event: a token (finish NONE) or the final one.  TEXT_END: the
 * text up to here is released (text_sent advances to it). */
void engine_emit(struct engine_req *r, enum engine_finish finish, int token, size_t text_end)
{
    struct engine_event ev = {
        .id = r->id,
        .finish = finish,
        .token = token,
        .text = r->text != NULL ? r->text + r->text_sent : "",
        .text_len = text_end > r->text_sent ? text_end - r->text_sent : 0,
        .prompt_tokens = r->n_prompt,
        .completion_tokens = r->n_generated,
        .queue_s = r->t_sched > 0 ? r->t_sched - r->t_submit : 0,
        .ttft_s = r->t_first > 0 ? r->t_first - r->t_submit : 0,
        .error = finish == ENGINE_FINISH_ERROR ? r->error : NULL,
        .error_code = finish == ENGINE_FINISH_ERROR ? r->error_code : ERR_OK,
    };

    if (text_end > r->text_sent)
        r->text_sent = text_end;
    r->fn(r->ctx, &ev);
}

/* The final event: whatever text is still held back goes with it (unless it
 * ended on a stop string, whose text was cut before the string). */
void engine_finish_req(struct engine *eng, struct engine_req *r, enum engine_finish finish)
{
    size_t end = r->text_sent;

    if (!r->cut) {
        if (r->detok.t != NULL && finish != ENGINE_FINISH_CANCELLED) {
            size_t n = detok_flush(&r->detok, eng->tmp, ENGINE_TMP_BYTES);

            /* out of memory: the tail is lost, the request ends anyway */
            if (n > 0)
                (void)engine_text_append(r, eng->tmp, n);
        }
        end = r->text_len;
    }
    engine_emit(r, finish, -1, end);
}

/* ---- stop strings ---------------------------------------------------------------------- */

/* Where the first stop string starts in R's unsent text (an offset into
 * r->text), or -1. */
static long engine_stop_find(const struct engine_req *r)
{
    long best = -1;

    for (int i = 0; i < r->p.n_stop; i++) {
        size_t sl = strlen(r->stop[i]);
        const char *hit;

        if (sl == 0 || r->text_len < r->text_sent + sl)
            continue;
        hit = memmem(r->text + r->text_sent, r->text_len - r->text_sent, r->stop[i], sl);
        if (hit != NULL && (best < 0 || hit - r->text < best))
            best = hit - r->text;
    }
    return best;
}

/* Bytes at the end of R's unsent text that begin some stop string (and so
 * are held back until the next tokens decide). */
static size_t engine_stop_hold(const struct engine_req *r)
{
    size_t unsent = r->text_len - r->text_sent, hold = 0;

    for (int i = 0; i < r->p.n_stop; i++) {
        size_t sl = strlen(r->stop[i]);

        for (size_t n = sl - (sl > 0); n > hold; n--)
            if (n <= unsent && memcmp(r->text + r->text_len - n, r->stop[i], n) == 0) {
                hold = n;
                break;
            }
    }
    return hold;
}

/* ---- after a step: one new token for R -------------------------------------------------- */

/* Take token TOKEN for R: events, and whether it ends R (R->finish set). */
void engine_take_token(struct engine *eng, struct engine_req *r, int token)
{
    int cfg_seq = eng->m->cfg.seq_len;
    long stop_at;

    if (r->t_first == 0)
        r->t_first = engine_now_s();
    if (!r->p.ignore_eos && (token == eng->eos || token == eng->bos)) {
        /* EOS, or BOS (llama2.c's story models start a new text with it) */
        r->finish = ENGINE_FINISH_STOP;
        engine_finish_req(eng, r, ENGINE_FINISH_STOP);
        return;
    }
    assert(r->n_tokens < r->cap);
    r->tokens[r->n_tokens++] = token;
    r->n_generated++;
    if (r->detok.t != NULL) {
        size_t n = detok_push(&r->detok, token, eng->tmp, ENGINE_TMP_BYTES);

        if (n > 0 && engine_text_append(r, eng->tmp, n) < 0) {
            r->error = "out of memory for the text";
            r->error_code = ERR_SYSTEM;
            r->finish = ENGINE_FINISH_ERROR;
            engine_finish_req(eng, r, ENGINE_FINISH_ERROR);
            return;
        }
    }
    stop_at = r->p.n_stop > 0 ? engine_stop_find(r) : -1;
    if (stop_at >= 0) {
        /* the text ends before the stop string */
        engine_emit(r, ENGINE_FINISH_NONE, token, (size_t)stop_at);
        r->finish = ENGINE_FINISH_STOP;
        r->cut = 1;
        engine_finish_req(eng, r, ENGINE_FINISH_STOP);
        return;
    }
    if (r->n_generated >= r->p.max_tokens || r->n_tokens >= cfg_seq) {
        engine_emit(r, ENGINE_FINISH_NONE, token, r->text_len);
        r->finish = ENGINE_FINISH_LENGTH;
        engine_finish_req(eng, r, ENGINE_FINISH_LENGTH);
        return;
    }
    engine_emit(r, ENGINE_FINISH_NONE, token, r->text_len - engine_stop_hold(r));
}
