/* llmload_prompt.c -- what llmload asks the server (see llmload_int.h).
 *
 * Prompts: in text mode (the default) llmload learns from the server how many
 * tokens a repeated word costs (a few max_tokens=1 requests before the replay,
 * read from usage.prompt_tokens) and sends that word repeated to the length
 * the trace asks for; in ids mode it sends the prompt as an array of token
 * ids, which the OpenAI API allows for /v1/completions. */
#include "config.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "workloads/llmload_int.h"

/* The text of K repeated words (caller frees). */
static char *load_words(const char *word, long k)
{
    size_t wl = strlen(word), i;
    char *s = malloc(wl * (size_t)k + 1);

    if (s == NULL)
        return NULL;
    for (i = 0; i < (size_t)k; i++)
        memcpy(s + i * wl, word, wl);
    s[wl * (size_t)k] = '\0';
    return s;
}

/* The JSON body of one request: PROMPT_TOKENS of prompt, OUTPUT_TOKENS to
 * generate.  NULL when out of memory. */
char *load_body(const struct load_opts *o, const struct load_calib *cal, uint32_t prompt_tokens,
                       uint32_t output_tokens, bool stream)
{
    json_t *req = json_object(), *prompt;
    char *body = NULL;

    if (req == NULL)
        return NULL;
    if (o->ids) {
        uint32_t i;
        prompt = json_array();
        for (i = 0; prompt != NULL && i < prompt_tokens; i++)
            json_array_append_new(prompt, json_integer(o->prompt_token));
    } else {
        long k = cal->per > 0 ? ((long)prompt_tokens - cal->base) / cal->per : 0;
        char *text = load_words(o->word, k < 1 ? 1 : k);
        prompt = text ? json_string(text) : NULL;
        free(text);
    }
    if (prompt == NULL)
        goto done;
    if (o->chat)
        json_object_set_new(req, "messages", json_pack("[{s:s,s:o}]", "role", "user", "content", prompt));
    else
        json_object_set_new(req, "prompt", prompt);
    if (o->model != NULL)
        json_object_set_new(req, "model", json_string(o->model));
    json_object_set_new(req, "max_tokens", json_integer(output_tokens > 0 ? output_tokens : 1));
    json_object_set_new(req, "ignore_eos", json_true());
    /* Sampled, not greedy: a response cache must not answer a load test. */
    json_object_set_new(req, "temperature", json_real(1.0));
    if (stream) {
        json_object_set_new(req, "stream", json_true());
        json_object_set_new(req, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    body = json_dumps(req, JSON_COMPACT);
done:
    json_decref(req);
    return body;
}

/* usage.prompt_tokens of a non-streamed answer, or -1. */
long load_usage_tokens(json_t *answer, const char *key)
{
    json_t *v = json_object_get(json_object_get(answer, "usage"), key);
    return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

/* --- blocking requests before the replay (model name, calibration) --------------- */

struct load_membuf {
    char *p;
    size_t len;
};

static size_t load_membuf_write(char *data, size_t size, size_t n, void *ctx)
{
    struct load_membuf *b = ctx;
    size_t add = size * n;
    char *p;

    if (b->len + add > LOAD_MAX_BODY_BYTES)
        return 0;
    p = realloc(b->p, b->len + add + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* GET or POST (BODY non-NULL) URL; returns the parsed JSON answer of a 2xx,
 * or NULL with E saying what went wrong. */
json_t *load_fetch_json(const struct load_opts *o, const char *url, const char *body, struct err *e)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    struct load_membuf b = {0};
    char auth[1024];
    long status = 0;
    CURLcode cc;
    json_t *j = NULL;
    json_error_t je;

    if (h == NULL) {
        err_set(e, ERR_SYSTEM, "curl_easy_init failed");
        return NULL;
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (o->api_key != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->api_key);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(o->timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, load_membuf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK)
        err_set(e, ERR_SYSTEM, "%s: %s", url, curl_easy_strerror(cc));
    else if (status < 200 || status > 299)
        err_set(e, ERR_SYSTEM, "%s: HTTP %ld: %.300s", url, status, b.p ? b.p : "");
    else if ((j = json_loadb(b.p ? b.p : "", b.len, JSON_ALLOW_NUL, &je)) == NULL)
        err_set(e, ERR_SYSTEM, "%s: the answer is not JSON: %s", url, je.text);
    free(b.p);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return j;
}

/* The cost in tokens of WORD repeated 1, 9 and 33 times (text mode): 0 and
 * CAL filled when it is a fixed number per repetition, 1 when not, -1 when
 * the server could not be asked. */
static int load_calibrate_word(struct load_opts *o, const char *word, struct load_calib *cal, long got[3],
                               struct err *e)
{
    static const long ks[] = {1, 9, 33};
    size_t i;

    o->word = word;
    for (i = 0; i < 3; i++) {
        struct load_calib probe = {.base = 0, .per = 1};
        char *body = load_body(o, &probe, (uint32_t)ks[i], 1, false);
        json_t *ans;
        if (body == NULL)
            return err_set(e, ERR_SYSTEM, "out of memory");
        ans = load_fetch_json(o, o->endpoint, body, e);
        free(body);
        if (ans == NULL)
            return err_prefix(e, "calibrating prompt lengths");
        got[i] = load_usage_tokens(ans, "prompt_tokens");
        json_decref(ans);
        if (got[i] < 0)
            return err_set(e, ERR_SYSTEM, "calibrating prompt lengths: %s answered without usage.prompt_tokens "
                                          "(try --prompt-mode ids)", o->endpoint);
    }
    cal->per = (got[1] - got[0]) / (ks[1] - ks[0]);
    cal->base = got[0] - cal->per * ks[0];
    if (cal->per < 1 || got[1] - got[0] != cal->per * (ks[1] - ks[0]) || got[2] != cal->base + cal->per * ks[2])
        return 1;
    return 0;
}

/* Learn from the server what text makes a prompt of a given length (text
 * mode): the --prompt-word, or the first of a few candidates that costs one
 * token a repetition (else the first that costs a fixed number, and prompt
 * lengths are rounded down to its multiples). */
int load_calibrate(struct load_opts *o, bool word_given, struct load_calib *cal, struct err *e)
{
    static const char *const candidates[] = {" the", " a", " x", "x", "a", " and", NULL};
    const char *const given[] = {o->word, NULL};
    const char *const *w = word_given ? given : candidates;
    const char *fallback = NULL;
    struct load_calib fb = {0, 0};
    long got[3];
    int rc;

    for (; *w != NULL; w++) {
        rc = load_calibrate_word(o, *w, cal, got, e);
        if (rc < 0)
            return -1;
        if (rc == 0 && cal->per == 1)
            goto found;
        if (rc == 0 && fallback == NULL) {
            fallback = *w;
            fb = *cal;
        }
        if (rc > 0 && word_given)
            return err_set(e, ERR_INPUT,
                           "--prompt-word: '%s' repeated 1, 9, 33 times costs %ld, %ld, %ld tokens, not a fixed "
                           "number per repetition (choose another, or --prompt-mode ids)", *w, got[0], got[1], got[2]);
    }
    if (fallback == NULL)
        return err_set(e, ERR_SYSTEM, "calibrating prompt lengths: no candidate word costs a fixed number of "
                                      "tokens on this server (give --prompt-word, or --prompt-mode ids)");
    o->word = fallback;
    *cal = fb;
    log_warn("no word costs one token here; '%s' costs %ld, so prompt lengths are rounded down to its multiples",
             o->word, cal->per);
    return 0;
found:
    log_info("prompt: '%s' costs %ld token(s), plus %ld for the template", o->word, cal->per, cal->base);
    return 0;
}
