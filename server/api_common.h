/* api_common.h -- the OpenAI-compatible API's data: parsing and validating
 * request bodies, the cache key of a request, and formatting responses,
 * stream chunks (SSE) and errors.  No I/O here: http.c and api_chat.c move
 * the bytes.
 *
 * Errors follow OpenAI's shape, {"error":{"message","type","param","code"}},
 * with the HTTP status that goes with them; a message about a field names
 * the field ("max_tokens: must be an integer >= 1"). */
#ifndef LLM_API_COMMON_H
#define LLM_API_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "server/tokenizer.h"

enum api_kind {
    API_CHAT,       /* POST /v1/chat/completions */
    API_COMPLETION, /* POST /v1/completions */
};

/* Server-side limits applied while parsing. */
struct api_limits {
    int max_tokens_limit;   /* largest max_tokens accepted */
    int default_max_tokens; /* when the request gives none */
    int max_messages;       /* messages per conversation */
    int max_stop;           /* stop strings (OpenAI: 4) */
    int max_stop_len;       /* bytes per stop string */
};

/* A validated request.  Every string is owned (api_request_free). */
struct api_request {
    enum api_kind kind;
    char *model;                  /* as sent, or NULL */
    struct chat_message *msgs;    /* API_CHAT: n_msgs messages */
    int n_msgs;
    char *prompt;                 /* API_COMPLETION: the prompt */
    size_t prompt_len;
    float temperature;            /* default 1 */
    float top_p;                  /* default 1 */
    int top_k;                    /* default 0: off (an extension) */
    int max_tokens;
    int has_seed;
    uint64_t seed;
    char **stop;
    int n_stop;
    int stream;
    int include_usage;            /* stream_options.include_usage */
    int ignore_eos;               /* an extension (as vLLM's): generate max_tokens exactly */
};

/* An error to send: the HTTP status and OpenAI's fields. */
struct api_error {
    int status;                   /* 400, 401, 404, 413, 429, 500, 503 */
    const char *type;             /* "invalid_request_error", ... */
    const char *code;             /* NULL or a short code ("rate_limit_exceeded") */
    char param[64];               /* the field at fault, or "" */
    char message[512];
};

/* Set AE and return -1. */
int api_error_set(struct api_error *ae, int status, const char *type, const char *code, const char *param,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

void api_limits_default(struct api_limits *lim);

/* Parse and validate BODY (LEN bytes) as a request of KIND.  Unknown fields
 * are ignored; a known field of the wrong type or out of range, invalid
 * JSON (including invalid UTF-8) or a missing required field gives -1 and a
 * 400 in AE naming the field.  On success REQ is filled (free it with
 * api_request_free); on failure REQ holds nothing. */
int api_parse_request(enum api_kind kind, const char *body, size_t len, const struct api_limits *lim,
                      struct api_request *req, struct api_error *ae);
void api_request_free(struct api_request *req);

/* Deterministic requests may be cached: greedy (temperature 0) or seeded. */
int api_request_cacheable(const struct api_request *req);

/* The cache key: XXH3-128 of the model name and the canonical request (the
 * conversation or prompt and every parameter that changes the output;
 * sampling parameters drop out when decoding is greedy).  Streaming and
 * include_usage do not change the output and are not part of it.  Written
 * as 32 hex digits and a NUL into KEY. */
int api_request_cache_key(const struct api_request *req, const char *model_name, char key[33]);

/* What a finished generation produced: the cached value and the input of
 * every response formatter. */
struct api_result {
    char *text;                   /* owned, UTF-8 */
    size_t text_len;
    const char *finish_reason;    /* "stop" or "length" (static) */
    int prompt_tokens;
    int completion_tokens;
};
/* Serialise RES for the cache (a new string) / read it back (-1 if the
 * value is not one we wrote). */
char *api_result_encode(const struct api_result *res);
int api_result_decode(const char *val, size_t len, struct api_result *res);
void api_result_free(struct api_result *res);

/* A new response id: "chatcmpl-..." or "cmpl-..." (unique per process run). */
void api_new_id(enum api_kind kind, char *out, size_t cap);

/* The whole (non-streaming) response body; a new string, NULL when out of
 * memory. */
char *api_format_response(enum api_kind kind, const char *id, long created, const char *model,
                          const struct api_result *res);

/* One stream chunk as a complete SSE event ("data: {...}\n\n"), a new
 * string.  ROLE: the first chat chunk carries "role":"assistant".  FINISH
 * non-NULL: the closing chunk (empty delta).  USAGE non-NULL: the usage
 * chunk (empty choices). */
char *api_format_chunk(enum api_kind kind, const char *id, long created, const char *model, int role,
                       const char *text, size_t text_len, const char *finish, const struct api_result *usage);
extern const char api_sse_done[]; /* "data: [DONE]\n\n" */

/* The error body {"error":{...}}; a new string. */
char *api_format_error(const struct api_error *ae);
/* The same as an SSE event, for errors after a stream has started. */
char *api_format_error_event(const struct api_error *ae);

/* A JSON string value for TEXT that may hold invalid UTF-8 (each bad byte
 * becomes U+FFFD): used for every text that leaves the server. */
json_t *api_json_text(const char *text, size_t len);

#endif
