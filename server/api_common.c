/* api_common.c -- see api_common.h. */
#include "config.h"

#include "server/api_common.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

const char api_sse_done[] = "data: [DONE]\n\n";

int api_error_set(struct api_error *ae, int status, const char *type, const char *code, const char *param,
                  const char *fmt, ...)
{
    va_list ap;

    ae->status = status;
    ae->type = type;
    ae->code = code;
    snprintf(ae->param, sizeof(ae->param), "%s", param != NULL ? param : "");
    va_start(ap, fmt);
    vsnprintf(ae->message, sizeof(ae->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* A 400 about field PARAM: the message starts with the field's name. */
#define BAD_FIELD(ae, param, ...) \
    api_error_set((ae), 400, "invalid_request_error", "invalid_value", (param), __VA_ARGS__)

void api_limits_default(struct api_limits *lim)
{
    lim->max_tokens_limit = 4096;
    lim->default_max_tokens = 256;
    lim->max_messages = 256;
    lim->max_stop = 4;
    lim->max_stop_len = 256;
}

void api_request_free(struct api_request *req)
{
    int i;

    if (req == NULL)
        return;
    for (i = 0; i < req->n_msgs; i++) {
        free((char *)req->msgs[i].role);
        free((char *)req->msgs[i].content);
    }
    free(req->msgs);
    for (i = 0; i < req->n_stop; i++)
        free(req->stop[i]);
    free(req->stop);
    free(req->model);
    free(req->prompt);
    memset(req, 0, sizeof(*req));
}

/* A copy of LEN bytes as a NUL-terminated string (jansson strings hold no NUL). */
static char *dupn(const char *s, size_t len)
{
    char *d = malloc(len + 1);

    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

#define NOMEM(ae) api_error_set((ae), 500, "server_error", NULL, NULL, "out of memory")

/* A number field in [lo, hi] into *OUT; absent or null keeps *OUT. */
static int get_number(json_t *root, const char *name, double lo, double hi, double *out, struct api_error *ae)
{
    json_t *v = json_object_get(root, name);

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return BAD_FIELD(ae, name, "%s: must be a number", name);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return BAD_FIELD(ae, name, "%s: must be between %g and %g", name, lo, hi);
    *out = d;
    return 0;
}

/* An integer field in [lo, hi]; *SET is 1 when present. */
static int get_int(json_t *root, const char *name, json_int_t lo, json_int_t hi, json_int_t *out, int *set,
                   struct api_error *ae)
{
    json_t *v = json_object_get(root, name);

    if (v == NULL || json_is_null(v))
        return 0;
    /* 256.0 is an integer to Python's and JavaScript's clients. */
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && fabs(json_real_value(v)) < 9e15) {
        json_int_t i = (json_int_t)json_real_value(v);
        if (i < lo || i > hi)
            return BAD_FIELD(ae, name, "%s: must be an integer between %" JSON_INTEGER_FORMAT " and %" JSON_INTEGER_FORMAT,
                             name, lo, hi);
        *out = i;
        *set = 1;
        return 0;
    }
    if (!json_is_integer(v))
        return BAD_FIELD(ae, name, "%s: must be an integer", name);
    if (json_integer_value(v) < lo || json_integer_value(v) > hi)
        return BAD_FIELD(ae, name, "%s: must be an integer between %" JSON_INTEGER_FORMAT " and %" JSON_INTEGER_FORMAT,
                         name, lo, hi);
    *out = json_integer_value(v);
    *set = 1;
    return 0;
}

static int get_bool(json_t *root, const char *name, int *out, struct api_error *ae)
{
    json_t *v = json_object_get(root, name);

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return BAD_FIELD(ae, name, "%s: must be true or false", name);
    *out = json_is_true(v);
    return 0;
}

/* Message content: a string, or an array of {"type":"text","text":...}
 * parts, joined.  A new string in *OUT. */
static int get_content(json_t *c, const char *field, char **out, struct api_error *ae)
{
    size_t i, total = 0;
    json_t *part;
    char *buf;

    if (json_is_string(c)) {
        *out = dupn(json_string_value(c), json_string_length(c));
        return *out != NULL ? 0 : NOMEM(ae);
    }
    if (json_is_null(c)) {
        *out = strdup("");
        return *out != NULL ? 0 : NOMEM(ae);
    }
    if (!json_is_array(c))
        return BAD_FIELD(ae, field, "%s: must be a string or an array of text parts", field);
    json_array_foreach(c, i, part) {
        json_t *t = json_object_get(part, "text");
        json_t *type = json_object_get(part, "type");
        if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") != 0 ||
            !json_is_string(t))
            return BAD_FIELD(ae, field, "%s[%zu]: only {\"type\": \"text\", \"text\": string} parts are supported",
                             field, i);
        total += json_string_length(t);
    }
    buf = malloc(total + 1);
    if (buf == NULL)
        return NOMEM(ae);
    total = 0;
    json_array_foreach(c, i, part) {
        json_t *t = json_object_get(part, "text");
        memcpy(buf + total, json_string_value(t), json_string_length(t));
        total += json_string_length(t);
    }
    buf[total] = '\0';
    *out = buf;
    return 0;
}

static int parse_messages(json_t *root, const struct api_limits *lim, struct api_request *req, struct api_error *ae)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", NULL};
    json_t *msgs = json_object_get(root, "messages");
    char field[64];
    size_t i;
    json_t *m;

    if (msgs == NULL || json_is_null(msgs))
        return BAD_FIELD(ae, "messages", "messages: required");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return BAD_FIELD(ae, "messages", "messages: must be a non-empty array");
    if (json_array_size(msgs) > (size_t)lim->max_messages)
        return BAD_FIELD(ae, "messages", "messages: at most %d messages", lim->max_messages);
    req->msgs = calloc(json_array_size(msgs), sizeof(*req->msgs));
    if (req->msgs == NULL)
        return NOMEM(ae);
    json_array_foreach(msgs, i, m) {
        json_t *role = json_object_get(m, "role");
        int k;

        snprintf(field, sizeof(field), "messages[%zu]", i);
        if (!json_is_object(m))
            return BAD_FIELD(ae, field, "%s: must be an object", field);
        snprintf(field, sizeof(field), "messages[%zu].role", i);
        if (!json_is_string(role))
            return BAD_FIELD(ae, field, "%s: must be a string", field);
        for (k = 0; roles[k] != NULL; k++)
            if (strcmp(json_string_value(role), roles[k]) == 0)
                break;
        if (roles[k] == NULL)
            return BAD_FIELD(ae, field, "%s: must be system, developer, user or assistant", field);
        /* the templates know three roles; a developer message is a system one */
        req->msgs[i].role = strdup(k <= 1 ? "system" : roles[k]);
        req->n_msgs = (int)i + 1;
        if (req->msgs[i].role == NULL)
            return NOMEM(ae);
        snprintf(field, sizeof(field), "messages[%zu].content", i);
        json_t *c = json_object_get(m, "content");
        if (c == NULL)
            return BAD_FIELD(ae, field, "%s: required", field);
        if (get_content(c, field, (char **)&req->msgs[i].content, ae) != 0)
            return -1;
    }
    return 0;
}

static int parse_prompt(json_t *root, struct api_request *req, struct api_error *ae)
{
    json_t *p = json_object_get(root, "prompt");

    if (p == NULL || json_is_null(p))
        return BAD_FIELD(ae, "prompt", "prompt: required");
    /* a list of one string is the same prompt (clients batch this way) */
    if (json_is_array(p)) {
        if (json_array_size(p) != 1 || !json_is_string(json_array_get(p, 0)))
            return BAD_FIELD(ae, "prompt", "prompt: must be a string (or a list of exactly one string)");
        p = json_array_get(p, 0);
    }
    if (!json_is_string(p))
        return BAD_FIELD(ae, "prompt", "prompt: must be a string");
    req->prompt_len = json_string_length(p);
    req->prompt = dupn(json_string_value(p), req->prompt_len);
    return req->prompt != NULL ? 0 : NOMEM(ae);
}

static int parse_stop(json_t *root, const struct api_limits *lim, struct api_request *req, struct api_error *ae)
{
    json_t *s = json_object_get(root, "stop");
    size_t i, n;

    if (s == NULL || json_is_null(s))
        return 0;
    n = json_is_string(s) ? 1 : json_is_array(s) ? json_array_size(s) : 0;
    if (!json_is_string(s) && !json_is_array(s))
        return BAD_FIELD(ae, "stop", "stop: must be a string or an array of strings");
    if (n > (size_t)lim->max_stop)
        return BAD_FIELD(ae, "stop", "stop: at most %d stop sequences", lim->max_stop);
    req->stop = calloc(n > 0 ? n : 1, sizeof(char *));
    if (req->stop == NULL)
        return NOMEM(ae);
    for (i = 0; i < n; i++) {
        json_t *v = json_is_string(s) ? s : json_array_get(s, i);
        if (!json_is_string(v))
            return BAD_FIELD(ae, "stop", "stop[%zu]: must be a string", i);
        if (json_string_length(v) == 0 || json_string_length(v) > (size_t)lim->max_stop_len)
            return BAD_FIELD(ae, "stop", "stop[%zu]: must be 1 to %d bytes", i, lim->max_stop_len);
        req->stop[i] = dupn(json_string_value(v), json_string_length(v));
        if (req->stop[i] == NULL)
            return NOMEM(ae);
        req->n_stop = (int)i + 1;
    }
    return 0;
}

static int parse_fields(json_t *root, const struct api_limits *lim, struct api_request *req, struct api_error *ae)
{
    double d;
    json_int_t iv;
    int set;
    json_t *v;

    v = json_object_get(root, "model");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v))
            return BAD_FIELD(ae, "model", "model: must be a string");
        req->model = dupn(json_string_value(v), json_string_length(v));
        if (req->model == NULL)
            return NOMEM(ae);
    }
    if (req->kind == API_CHAT ? parse_messages(root, lim, req, ae) : parse_prompt(root, req, ae))
        return -1;

    d = 1.0;
    if (get_number(root, "temperature", 0, 2, &d, ae))
        return -1;
    req->temperature = (float)d;
    d = 1.0;
    if (get_number(root, "top_p", 0, 1, &d, ae))
        return -1;
    if (d <= 0)
        return BAD_FIELD(ae, "top_p", "top_p: must be greater than 0 and at most 1");
    req->top_p = (float)d;
    set = 0;
    iv = 0;
    if (get_int(root, "top_k", 0, 1 << 20, &iv, &set, ae))
        return -1;
    req->top_k = (int)iv;

    req->max_tokens = lim->default_max_tokens;
    set = 0;
    if (get_int(root, "max_tokens", 1, lim->max_tokens_limit, &iv, &set, ae))
        return -1;
    if (set)
        req->max_tokens = (int)iv;
    set = 0;
    if (get_int(root, "max_completion_tokens", 1, lim->max_tokens_limit, &iv, &set, ae))
        return -1;
    if (set)
        req->max_tokens = (int)iv;

    set = 0;
    if (get_int(root, "seed", INT64_MIN, INT64_MAX, &iv, &set, ae))
        return -1;
    req->has_seed = set;
    req->seed = (uint64_t)iv;

    set = 0;
    iv = 1;
    if (get_int(root, "n", 1, 1, &iv, &set, ae)) {
        snprintf(ae->message, sizeof(ae->message), "n: only n=1 is supported");
        return -1;
    }
    if (parse_stop(root, lim, req, ae))
        return -1;
    if (get_bool(root, "stream", &req->stream, ae))
        return -1;
    if (get_bool(root, "ignore_eos", &req->ignore_eos, ae))
        return -1;
    v = json_object_get(root, "stream_options");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v))
            return BAD_FIELD(ae, "stream_options", "stream_options: must be an object");
        json_t *iu = json_object_get(v, "include_usage");
        if (iu != NULL && !json_is_null(iu) && !json_is_boolean(iu))
            return BAD_FIELD(ae, "stream_options.include_usage", "stream_options.include_usage: must be true or false");
        req->include_usage = json_is_true(iu);
    }
    return 0;
}

int api_parse_request(enum api_kind kind, const char *body, size_t len, const struct api_limits *lim,
                      struct api_request *req, struct api_error *ae)
{
    json_error_t je;
    json_t *root;
    int rc;

    memset(req, 0, sizeof(*req));
    req->kind = kind;
    if (len == 0)
        return api_error_set(ae, 400, "invalid_request_error", "invalid_json", NULL,
                             "request body: empty; expected a JSON object");
    /* jansson refuses invalid UTF-8 and \u0000, so every string we keep is
     * valid UTF-8 without NUL bytes. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return api_error_set(ae, 400, "invalid_request_error", "invalid_json", NULL,
                             "request body: invalid JSON at byte %d: %s", je.position, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return api_error_set(ae, 400, "invalid_request_error", "invalid_json", NULL,
                             "request body: must be a JSON object");
    }
    rc = parse_fields(root, lim, req, ae);
    json_decref(root);
    if (rc != 0)
        api_request_free(req);
    return rc;
}

int api_request_cacheable(const struct api_request *req)
{
    return req->temperature <= 0.0f || req->has_seed;
}

int api_request_cache_key(const struct api_request *req, const char *model_name, char key[33])
{
    json_t *o = json_object(), *a;
    XXH128_hash_t h;
    char *canon;
    int i;

    if (o == NULL)
        return -1;
    json_object_set_new(o, "v", json_integer(1)); /* bump when the format changes */
    json_object_set_new(o, "model", json_string(model_name != NULL ? model_name : ""));
    json_object_set_new(o, "kind", json_string(req->kind == API_CHAT ? "chat" : "completion"));
    if (req->kind == API_CHAT) {
        a = json_array();
        for (i = 0; i < req->n_msgs; i++)
            json_array_append_new(a, json_pack("[ss]", req->msgs[i].role, req->msgs[i].content));
        json_object_set_new(o, "messages", a);
    } else {
        json_object_set_new(o, "prompt", json_stringn(req->prompt, req->prompt_len));
    }
    json_object_set_new(o, "max_tokens", json_integer(req->max_tokens));
    json_object_set_new(o, "ignore_eos", json_boolean(req->ignore_eos));
    a = json_array();
    for (i = 0; i < req->n_stop; i++)
        json_array_append_new(a, json_string(req->stop[i]));
    json_object_set_new(o, "stop", a);
    if (req->temperature > 0.0f) {
        /* sampled: every sampling parameter and the seed matter */
        json_object_set_new(o, "temperature", json_real(req->temperature));
        json_object_set_new(o, "top_p", json_real(req->top_p));
        json_object_set_new(o, "top_k", json_integer(req->top_k));
        json_object_set_new(o, "seed", json_integer((json_int_t)req->seed));
    }
    canon = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (canon == NULL)
        return -1;
    h = XXH3_128bits(canon, strlen(canon));
    free(canon);
    snprintf(key, 33, "%016" PRIx64 "%016" PRIx64, (uint64_t)h.high64, (uint64_t)h.low64);
    return 0;
}

json_t *api_json_text(const char *text, size_t len)
{
    json_t *s = json_stringn(text, len);
    char *clean, *p;
    size_t i = 0;

    if (s != NULL || text == NULL)
        return s != NULL ? s : json_string("");
    /* Invalid UTF-8: copy valid sequences, replace each bad byte. */
    clean = malloc(len * 3 + 1);
    if (clean == NULL)
        return NULL;
    p = clean;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        json_t *probe = n > 0 && i + n <= len && c != 0 ? json_stringn(text + i, n) : NULL;
        if (probe != NULL) {
            memcpy(p, text + i, n);
            p += n;
            i += n;
            json_decref(probe);
        } else {
            memcpy(p, "\xEF\xBF\xBD", 3);
            p += 3;
            i++;
        }
    }
    s = json_stringn(clean, (size_t)(p - clean));
    free(clean);
    return s;
}

char *api_result_encode(const struct api_result *res)
{
    json_t *o = json_pack("{s:o,s:s,s:i,s:i}", "text", api_json_text(res->text, res->text_len), "finish",
                          res->finish_reason, "prompt_tokens", res->prompt_tokens, "completion_tokens",
                          res->completion_tokens);
    char *s;

    if (o == NULL)
        return NULL;
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

int api_result_decode(const char *val, size_t len, struct api_result *res)
{
    json_t *o = json_loadb(val, len, 0, NULL);
    json_t *t, *f, *pt, *ct;

    memset(res, 0, sizeof(*res));
    if (o == NULL)
        return -1;
    t = json_object_get(o, "text");
    f = json_object_get(o, "finish");
    pt = json_object_get(o, "prompt_tokens");
    ct = json_object_get(o, "completion_tokens");
    if (!json_is_string(t) || !json_is_string(f) || !json_is_integer(pt) || !json_is_integer(ct) ||
        json_integer_value(pt) < 0 || json_integer_value(ct) < 0 || json_integer_value(pt) > INT32_MAX ||
        json_integer_value(ct) > INT32_MAX) {
        json_decref(o);
        return -1;
    }
    res->finish_reason = strcmp(json_string_value(f), "length") == 0 ? "length" : "stop";
    res->prompt_tokens = (int)json_integer_value(pt);
    res->completion_tokens = (int)json_integer_value(ct);
    res->text_len = json_string_length(t);
    res->text = dupn(json_string_value(t), res->text_len);
    json_decref(o);
    return res->text != NULL ? 0 : -1;
}

void api_result_free(struct api_result *res)
{
    free(res->text);
    res->text = NULL;
}

void api_new_id(enum api_kind kind, char *out, size_t cap)
{
    static atomic_uint_fast64_t counter;
    static atomic_uint_fast64_t salt;
    uint64_t n = atomic_fetch_add(&counter, 1), s = atomic_load(&salt), expected = 0;

    if (s == 0) {
        /* the first caller picks it; any nonzero value will do */
        s = (((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ULL) | 1;
        if (!atomic_compare_exchange_strong(&salt, &expected, s))
            s = expected;
    }
    snprintf(out, cap, "%s-%012" PRIx64 "%012" PRIx64, kind == API_CHAT ? "chatcmpl" : "cmpl",
             (uint64_t)(s & 0xffffffffffffULL), n);
}

static json_t *usage_json(const struct api_result *res)
{
    return json_pack("{s:i,s:i,s:i}", "prompt_tokens", res->prompt_tokens, "completion_tokens",
                     res->completion_tokens, "total_tokens", res->prompt_tokens + res->completion_tokens);
}

static char *dump_free(json_t *o)
{
    char *s;

    if (o == NULL)
        return NULL;
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

char *api_format_response(enum api_kind kind, const char *id, long created, const char *model,
                          const struct api_result *res)
{
    json_t *choice;

    if (kind == API_CHAT)
        choice = json_pack("{s:i,s:{s:s,s:o},s:n,s:s}", "index", 0, "message", "role", "assistant", "content",
                           api_json_text(res->text, res->text_len), "logprobs", "finish_reason",
                           res->finish_reason);
    else
        choice = json_pack("{s:o,s:i,s:n,s:s}", "text", api_json_text(res->text, res->text_len), "index", 0,
                           "logprobs", "finish_reason", res->finish_reason);
    return dump_free(json_pack("{s:s,s:s,s:I,s:s,s:[o],s:o}", "id", id, "object",
                               kind == API_CHAT ? "chat.completion" : "text_completion", "created",
                               (json_int_t)created, "model", model, "choices", choice, "usage", usage_json(res)));
}

static char *sse_wrap(char *json)
{
    char *ev;
    size_t n;

    if (json == NULL)
        return NULL;
    n = strlen(json);
    ev = malloc(n + 9);
    if (ev != NULL) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, json, n);
        memcpy(ev + 6 + n, "\n\n", 3);
    }
    free(json);
    return ev;
}

char *api_format_chunk(enum api_kind kind, const char *id, long created, const char *model, int role,
                       const char *text, size_t text_len, const char *finish, const struct api_result *usage)
{
    json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "id", id, "object",
                          kind == API_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                          (json_int_t)created, "model", model);
    json_t *choices = json_array(), *c;

    if (o == NULL || choices == NULL) {
        json_decref(o);
        json_decref(choices);
        return NULL;
    }
    if (usage == NULL) {
        json_t *fr = finish != NULL ? json_string(finish) : json_null();
        if (kind == API_CHAT) {
            json_t *delta = json_object();
            if (role)
                json_object_set_new(delta, "role", json_string("assistant"));
            if (finish == NULL)
                json_object_set_new(delta, "content", api_json_text(text != NULL ? text : "", text_len));
            c = json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason", fr);
        } else {
            c = json_pack("{s:o,s:i,s:n,s:o}", "text", api_json_text(text != NULL ? text : "", text_len), "index",
                          0, "logprobs", "finish_reason", fr);
        }
        json_array_append_new(choices, c);
    } else {
        json_object_set_new(o, "usage", usage_json(usage));
    }
    json_object_set_new(o, "choices", choices);
    return sse_wrap(dump_free(o));
}

static json_t *error_json(const struct api_error *ae)
{
    /* the message may quote what a client sent (a path, a model name cut
     * short): api_json_text keeps it valid UTF-8 */
    return json_pack("{s:{s:o,s:s,s:o,s:o}}", "error", "message", api_json_text(ae->message, strlen(ae->message)),
                     "type",
                     ae->type != NULL ? ae->type : "server_error", "param",
                     ae->param[0] != '\0' ? json_string(ae->param) : json_null(), "code",
                     ae->code != NULL ? json_string(ae->code) : json_null());
}

char *api_format_error(const struct api_error *ae)
{
    return dump_free(error_json(ae));
}

char *api_format_error_event(const struct api_error *ae)
{
    return sse_wrap(dump_free(error_json(ae)));
}
