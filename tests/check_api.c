/* check_api.c -- unit tests of server/api_common.c: request parsing and
 * validation (malformed, truncated, oversized and hostile bodies), the
 * cache key, and the shapes of responses, stream chunks and errors. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_common.h"

#define ASSERT_HAS(m, s) ck_assert_msg(strstr((m), (s)) != NULL, "expected '%s' in: %s", (s), (m))

static struct api_limits lim;

static void setup(void)
{
    api_limits_default(&lim);
}

static int parse(enum api_kind k, const char *body, struct api_request *req, struct api_error *ae)
{
    return api_parse_request(k, body, strlen(body), &lim, req, ae);
}

/* Parsing BODY fails with a 400 whose param is PARAM and whose message has S. */
static void expect_bad(enum api_kind k, const char *body, const char *param, const char *s)
{
    struct api_request req;
    struct api_error ae;

    memset(&ae, 0, sizeof(ae));
    ck_assert_msg(parse(k, body, &req, &ae) == -1, "accepted: %s", body);
    ck_assert_int_eq(ae.status, 400);
    ck_assert_str_eq(ae.type, "invalid_request_error");
    if (param != NULL)
        ck_assert_str_eq(ae.param, param);
    ASSERT_HAS(ae.message, s);
}

START_TEST(test_parse_chat_full)
{
    struct api_request req;
    struct api_error ae;
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hel\"},{\"type\":\"text\","
                       "\"text\":\"lo\"}]}],\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"max_tokens\":12,"
                       "\"stop\":[\"x\",\"yy\"],\"seed\":-3,\"n\":1,\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true},\"frobnicate\":{\"unknown\":[1,2]}}";

    ck_assert_int_eq(parse(API_CHAT, body, &req, &ae), 0);
    ck_assert_str_eq(req.model, "m");
    ck_assert_int_eq(req.n_msgs, 2);
    ck_assert_str_eq(req.msgs[0].role, "system");
    ck_assert_str_eq(req.msgs[1].content, "hello");
    ck_assert_float_eq_tol(req.temperature, 0.5, 1e-6);
    ck_assert_float_eq_tol(req.top_p, 0.9, 1e-6);
    ck_assert_int_eq(req.top_k, 40);
    ck_assert_int_eq(req.max_tokens, 12);
    ck_assert_int_eq(req.n_stop, 2);
    ck_assert_str_eq(req.stop[1], "yy");
    ck_assert_int_eq(req.has_seed, 1);
    ck_assert_uint_eq(req.seed, (uint64_t)-3);
    ck_assert_int_eq(req.stream, 1);
    ck_assert_int_eq(req.include_usage, 1);
    api_request_free(&req);
}
END_TEST

START_TEST(test_parse_defaults)
{
    struct api_request req;
    struct api_error ae;

    ck_assert_int_eq(parse(API_COMPLETION, "{\"prompt\":\"Once\"}", &req, &ae), 0);
    ck_assert_str_eq(req.prompt, "Once");
    ck_assert_int_eq(req.max_tokens, lim.default_max_tokens);
    ck_assert_float_eq(req.temperature, 1.0);
    ck_assert_int_eq(req.stream, 0);
    ck_assert_int_eq(req.has_seed, 0);
    ck_assert_int_eq(api_request_cacheable(&req), 0);
    api_request_free(&req);
    /* max_completion_tokens, a one-string prompt list, stop as a string, nulls as absent */
    ck_assert_int_eq(parse(API_COMPLETION,
                           "{\"prompt\":[\"a\"],\"max_completion_tokens\":7,\"stop\":\"\\n\",\"temperature\":0,"
                           "\"seed\":null,\"top_p\":null,\"stream_options\":null}",
                           &req, &ae),
                     0);
    ck_assert_int_eq(req.max_tokens, 7);
    ck_assert_int_eq(req.n_stop, 1);
    ck_assert_str_eq(req.stop[0], "\n");
    ck_assert_int_eq(api_request_cacheable(&req), 1);
    api_request_free(&req);
    /* a developer message is a system one; 16.0 is an integer */
    ck_assert_int_eq(parse(API_CHAT, "{\"messages\":[{\"role\":\"developer\",\"content\":\"x\"}],\"max_tokens\":16.0}",
                           &req, &ae),
                     0);
    ck_assert_str_eq(req.msgs[0].role, "system");
    ck_assert_int_eq(req.max_tokens, 16);
    api_request_free(&req);
}
END_TEST

START_TEST(test_parse_malformed)
{
    expect_bad(API_CHAT, "", NULL, "empty");
    expect_bad(API_CHAT, "{", NULL, "invalid JSON");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]", NULL, "invalid JSON"); /* truncated */
    expect_bad(API_CHAT, "[1,2]", NULL, "must be a JSON object");
    expect_bad(API_CHAT, "\"str\"", NULL, "invalid JSON");
    expect_bad(API_CHAT, "{\"messages\":[],\"x\":1,\"x\":2}", NULL, "invalid JSON"); /* duplicate keys */
    /* invalid UTF-8 and an escaped NUL */
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", NULL, "invalid JSON");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", NULL, "invalid JSON");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xed\xa0\x80\"}]}", NULL, "invalid JSON");
    /* huge numbers */
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1e400}", NULL,
               "invalid JSON");
    expect_bad(API_CHAT,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":99999999999999999999999}",
               NULL, "invalid JSON");
}
END_TEST

START_TEST(test_parse_wrong_types)
{
    expect_bad(API_CHAT, "{}", "messages", "messages: required");
    expect_bad(API_CHAT, "{\"messages\":{}}", "messages", "non-empty array");
    expect_bad(API_CHAT, "{\"messages\":[]}", "messages", "non-empty array");
    expect_bad(API_CHAT, "{\"messages\":[1]}", "messages[0]", "must be an object");
    expect_bad(API_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", "must be a string");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages[0].role",
               "must be system");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content", "required");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content",
               "string or an array");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
               "messages[0].content", "text");
#define MSG "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
    expect_bad(API_CHAT, MSG "\"temperature\":\"hot\"}", "temperature", "temperature: must be a number");
    expect_bad(API_CHAT, MSG "\"temperature\":3}", "temperature", "between 0 and 2");
    expect_bad(API_CHAT, MSG "\"temperature\":-0.1}", "temperature", "between");
    expect_bad(API_CHAT, MSG "\"top_p\":0}", "top_p", "greater than 0");
    expect_bad(API_CHAT, MSG "\"top_p\":true}", "top_p", "must be a number");
    expect_bad(API_CHAT, MSG "\"top_k\":-1}", "top_k", "top_k");
    expect_bad(API_CHAT, MSG "\"max_tokens\":0}", "max_tokens", "max_tokens: must be an integer between 1");
    expect_bad(API_CHAT, MSG "\"max_tokens\":\"10\"}", "max_tokens", "must be an integer");
    expect_bad(API_CHAT, MSG "\"max_tokens\":1.5}", "max_tokens", "must be an integer");
    expect_bad(API_CHAT, MSG "\"max_tokens\":100000000}", "max_tokens", "between 1 and 4096");
    expect_bad(API_CHAT, MSG "\"max_tokens\":1e30}", "max_tokens", "must be an integer");
    expect_bad(API_CHAT, MSG "\"max_completion_tokens\":-5}", "max_completion_tokens", "max_completion_tokens");
    expect_bad(API_CHAT, MSG "\"seed\":\"42\"}", "seed", "seed: must be an integer");
    expect_bad(API_CHAT, MSG "\"n\":2}", "n", "only n=1");
    expect_bad(API_CHAT, MSG "\"stream\":\"yes\"}", "stream", "stream: must be true or false");
    expect_bad(API_CHAT, MSG "\"ignore_eos\":1}", "ignore_eos", "ignore_eos: must be true or false");
    expect_bad(API_CHAT, MSG "\"stream_options\":[]}", "stream_options", "must be an object");
    expect_bad(API_CHAT, MSG "\"stream_options\":{\"include_usage\":1}}", "stream_options.include_usage",
               "true or false");
    expect_bad(API_CHAT, MSG "\"stop\":5}", "stop", "string or an array");
    expect_bad(API_CHAT, MSG "\"stop\":[\"a\",3]}", "stop", "stop[1]: must be a string");
    expect_bad(API_CHAT, MSG "\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop", "at most 4");
    expect_bad(API_CHAT, MSG "\"stop\":[\"\"]}", "stop", "1 to 256 bytes");
    expect_bad(API_CHAT, MSG "\"model\":7}", "model", "model: must be a string");
#undef MSG
    expect_bad(API_COMPLETION, "{}", "prompt", "prompt: required");
    expect_bad(API_COMPLETION, "{\"prompt\":5}", "prompt", "must be a string");
    expect_bad(API_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", "prompt", "exactly one string");
    expect_bad(API_COMPLETION, "{\"prompt\":[1,2,3]}", "prompt", "exactly one string");
}
END_TEST

/* A body nested 100,000 levels deep, and a stop string 1 MB long: refused
 * cleanly (jansson's depth limit, our length limit), no crash. */
START_TEST(test_parse_hostile)
{
    size_t depth = 100000, i;
    char *b = malloc(depth * 2 + 64);
    struct api_request req;
    struct api_error ae;

    ck_assert_ptr_nonnull(b);
    memcpy(b, "{\"messages\":", 12);
    memset(b + 12, '[', depth);
    b[12 + depth] = '\0';
    ck_assert_int_eq(parse(API_CHAT, b, &req, &ae), -1);
    ck_assert_int_eq(ae.status, 400);
    free(b);

    const char *pre = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"";
    size_t n = 1 << 20, pl = strlen(pre);
    b = malloc(pl + n + 8);
    ck_assert_ptr_nonnull(b);
    memcpy(b, pre, pl);
    memset(b + pl, 'a', n);
    memcpy(b + pl + n, "\"}", 3);
    ck_assert_int_eq(parse(API_CHAT, b, &req, &ae), -1);
    ASSERT_HAS(ae.message, "stop[0]: must be 1 to 256 bytes");
    free(b);

    /* too many messages */
    b = malloc(300 * 40 + 64);
    strcpy(b, "{\"messages\":[");
    for (i = 0; i < 300; i++)
        strcat(b, i ? ",{\"role\":\"user\",\"content\":\"x\"}" : "{\"role\":\"user\",\"content\":\"x\"}");
    strcat(b, "]}");
    ck_assert_int_eq(parse(API_CHAT, b, &req, &ae), -1);
    ASSERT_HAS(ae.message, "at most 256 messages");
    free(b);
}
END_TEST

START_TEST(test_cache_key)
{
    struct api_request a, b;
    struct api_error ae;
    char ka[33], kb[33];

    /* the same request with fields in another order, an unknown field and stream: same key */
    ck_assert_int_eq(parse(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0,"
                                     "\"max_tokens\":5}", &a, &ae), 0);
    ck_assert_int_eq(parse(API_CHAT, "{\"max_tokens\":5,\"stream\":true,\"user\":\"u\",\"temperature\":0,"
                                     "\"top_p\":0.3,\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}]}", &b, &ae),
                     0);
    ck_assert_int_eq(api_request_cache_key(&a, "m", ka), 0);
    ck_assert_int_eq(api_request_cache_key(&b, "m", kb), 0);
    ck_assert_int_eq(strlen(ka), 32);
    ck_assert_str_eq(ka, kb); /* greedy: top_p does not change the output */
    ck_assert_int_eq(api_request_cache_key(&a, "other-model", kb), 0);
    ck_assert_str_ne(ka, kb);
    api_request_free(&b);
    /* every output-changing field changes the key */
    static const char *const variants[] = {
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi!\"}],\"temperature\":0,\"max_tokens\":5}",
        "{\"messages\":[{\"role\":\"system\",\"content\":\"hi\"}],\"temperature\":0,\"max_tokens\":5}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0,\"max_tokens\":6}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0,\"max_tokens\":5,\"stop\":\"a\"}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0,\"max_tokens\":5,\"ignore_eos\":true}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.7,\"seed\":1,\"max_tokens\":5}",
    };
    api_request_cache_key(&a, "m", ka);
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        ck_assert_int_eq(parse(API_CHAT, variants[i], &b, &ae), 0);
        api_request_cache_key(&b, "m", kb);
        ck_assert_msg(strcmp(ka, kb) != 0, "same key for %s", variants[i]);
        api_request_free(&b);
    }
    /* sampled with a seed: the seed and top_p matter */
    ck_assert_int_eq(parse(API_CHAT, variants[5], &b, &ae), 0);
    ck_assert_int_eq(api_request_cacheable(&b), 1);
    api_request_cache_key(&b, "m", ka);
    b.seed = 2;
    api_request_cache_key(&b, "m", kb);
    ck_assert_str_ne(ka, kb);
    b.seed = 1;
    b.top_p = 0.5f;
    api_request_cache_key(&b, "m", kb);
    ck_assert_str_ne(ka, kb);
    api_request_free(&b);
    /* chat and completion with the same text differ */
    ck_assert_int_eq(parse(API_COMPLETION, "{\"prompt\":\"hi\",\"temperature\":0,\"max_tokens\":5}", &b, &ae), 0);
    api_request_cache_key(&a, "m", ka);
    api_request_cache_key(&b, "m", kb);
    ck_assert_str_ne(ka, kb);
    api_request_free(&b);
    api_request_free(&a);
}
END_TEST

START_TEST(test_result_roundtrip)
{
    struct api_result r = {.text = "héllo \"q\"\n", .text_len = strlen("héllo \"q\"\n"), .finish_reason = "length",
                           .prompt_tokens = 3, .completion_tokens = 9};
    struct api_result back;
    char *enc = api_result_encode(&r);

    ck_assert_ptr_nonnull(enc);
    ck_assert_int_eq(api_result_decode(enc, strlen(enc), &back), 0);
    ck_assert_str_eq(back.text, r.text);
    ck_assert_str_eq(back.finish_reason, "length");
    ck_assert_int_eq(back.prompt_tokens, 3);
    ck_assert_int_eq(back.completion_tokens, 9);
    api_result_free(&back);
    free(enc);
    /* values we did not write are refused */
    ck_assert_int_eq(api_result_decode("{\"text\":1}", 10, &back), -1);
    ck_assert_int_eq(api_result_decode("garbage", 7, &back), -1);
    ck_assert_int_eq(api_result_decode("{\"text\":\"a\",\"finish\":\"stop\",\"prompt_tokens\":-1,"
                                       "\"completion_tokens\":1}", 66, &back), -1);
}
END_TEST

static json_t *load(const char *s)
{
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);

    ck_assert_msg(o != NULL, "not JSON (%s): %s", je.text, s);
    return o;
}

START_TEST(test_format_response)
{
    struct api_result r = {.text = "Hi", .text_len = 2, .finish_reason = "stop", .prompt_tokens = 4,
                           .completion_tokens = 2};
    char *s = api_format_response(API_CHAT, "chatcmpl-1", 1700000000, "m", &r);
    json_t *o = load(s), *c;

    ck_assert_str_eq(json_string_value(json_object_get(o, "object")), "chat.completion");
    c = json_array_get(json_object_get(o, "choices"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "message"), "content")), "Hi");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "message"), "role")), "assistant");
    ck_assert_str_eq(json_string_value(json_object_get(c, "finish_reason")), "stop");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "usage"), "total_tokens")), 6);
    json_decref(o);
    free(s);
    s = api_format_response(API_COMPLETION, "cmpl-1", 1, "m", &r);
    o = load(s);
    ck_assert_str_eq(json_string_value(json_object_get(o, "object")), "text_completion");
    c = json_array_get(json_object_get(o, "choices"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(c, "text")), "Hi");
    json_decref(o);
    free(s);
}
END_TEST

/* A chunk is "data: JSON\n\n". */
static json_t *load_event(char *ev)
{
    size_t n = strlen(ev);
    json_t *o;

    ck_assert_msg(strncmp(ev, "data: ", 6) == 0 && n > 8 && strcmp(ev + n - 2, "\n\n") == 0, "not an event: %s", ev);
    ev[n - 2] = '\0';
    o = load(ev + 6);
    free(ev);
    return o;
}

START_TEST(test_format_chunks)
{
    struct api_result u = {.prompt_tokens = 4, .completion_tokens = 2};
    json_t *o, *c;

    o = load_event(api_format_chunk(API_CHAT, "id", 1, "m", 1, "", 0, NULL, NULL));
    ck_assert_str_eq(json_string_value(json_object_get(o, "object")), "chat.completion.chunk");
    c = json_array_get(json_object_get(o, "choices"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "delta"), "role")), "assistant");
    ck_assert(json_is_null(json_object_get(c, "finish_reason")));
    json_decref(o);
    o = load_event(api_format_chunk(API_CHAT, "id", 1, "m", 0, "ab", 2, NULL, NULL));
    c = json_array_get(json_object_get(o, "choices"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "delta"), "content")), "ab");
    ck_assert_ptr_null(json_object_get(json_object_get(c, "delta"), "role"));
    json_decref(o);
    /* the closing chunk: an empty delta and the reason */
    o = load_event(api_format_chunk(API_CHAT, "id", 1, "m", 0, NULL, 0, "length", NULL));
    c = json_array_get(json_object_get(o, "choices"), 0);
    ck_assert_int_eq(json_object_size(json_object_get(c, "delta")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(c, "finish_reason")), "length");
    json_decref(o);
    /* the usage chunk: empty choices */
    o = load_event(api_format_chunk(API_CHAT, "id", 1, "m", 0, NULL, 0, NULL, &u));
    ck_assert_int_eq(json_array_size(json_object_get(o, "choices")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "usage"), "completion_tokens")), 2);
    json_decref(o);
    o = load_event(api_format_chunk(API_COMPLETION, "id", 1, "m", 0, "z", 1, NULL, NULL));
    ck_assert_str_eq(json_string_value(json_object_get(o, "object")), "text_completion");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "text")), "z");
    json_decref(o);
    ck_assert_str_eq(api_sse_done, "data: [DONE]\n\n");
}
END_TEST

START_TEST(test_format_error)
{
    struct api_error ae;
    json_t *o, *e;
    char *s;

    api_error_set(&ae, 400, "invalid_request_error", "invalid_value", "max_tokens", "max_tokens: bad %d", 5);
    s = api_format_error(&ae);
    o = load(s);
    e = json_object_get(o, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "message")), "max_tokens: bad 5");
    ck_assert_str_eq(json_string_value(json_object_get(e, "type")), "invalid_request_error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "param")), "max_tokens");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "invalid_value");
    json_decref(o);
    free(s);
    api_error_set(&ae, 500, "server_error", NULL, NULL, "x");
    o = load_event(api_format_error_event(&ae));
    e = json_object_get(o, "error");
    ck_assert(json_is_null(json_object_get(e, "param")));
    ck_assert(json_is_null(json_object_get(e, "code")));
    json_decref(o);
}
END_TEST

/* Text that is not UTF-8 leaves as valid JSON with U+FFFD for each bad byte. */
START_TEST(test_json_text_sanitises)
{
    json_t *s = api_json_text("a\xff" "b\xe2\x82", 5);

    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(json_string_value(s), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD");
    json_decref(s);
    s = api_json_text("ok \xe2\x82\xac", 6);
    ck_assert_str_eq(json_string_value(s), "ok \xe2\x82\xac");
    json_decref(s);
    s = api_json_text("nul\0x", 5);
    ck_assert_ptr_nonnull(s);
    json_decref(s);
}
END_TEST

START_TEST(test_ids_unique)
{
    char a[64], b[64];

    api_new_id(API_CHAT, a, sizeof(a));
    api_new_id(API_CHAT, b, sizeof(b));
    ck_assert_str_ne(a, b);
    ck_assert(strncmp(a, "chatcmpl-", 9) == 0);
    api_new_id(API_COMPLETION, a, sizeof(a));
    ck_assert(strncmp(a, "cmpl-", 5) == 0);
}
END_TEST

static Suite *suite_api(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_parse_chat_full);
    tcase_add_test(tc, test_parse_defaults);
    tcase_add_test(tc, test_parse_malformed);
    tcase_add_test(tc, test_parse_wrong_types);
    tcase_add_test(tc, test_parse_hostile);
    tcase_add_test(tc, test_cache_key);
    tcase_add_test(tc, test_result_roundtrip);
    tcase_add_test(tc, test_format_response);
    tcase_add_test(tc, test_format_chunks);
    tcase_add_test(tc, test_format_error);
    tcase_add_test(tc, test_json_text_sanitises);
    tcase_add_test(tc, test_ids_unique);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_api());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
