/* check_tokenizer.c -- unit tests of server/tokenizer.c.
 *
 * Parity: ../shared/models/tokenizer.bin (the Llama 2 vocabulary) must encode
 * the prompts of Meta's Llama 2 example_text_completion.py to the ids Meta's
 * SentencePiece gives (as llama2.c's test_all.py and test.c list them).
 * Those tests skip with a message when LLMSCALE_SHARED has no models/.
 * The rest runs on small vocabularies built here with tokenizer_from_arrays:
 * merge order, byte fallback, UTF-8 safe incremental decoding, and hostile
 * tokenizer files (truncated, absurd lengths, NaN scores). */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/tokenizer.h"

static char tok_path[4096];

static int shared_tokenizer(void)
{
    const char *shared = getenv("LLMSCALE_SHARED");

    if (shared == NULL)
        shared = "../shared";
    snprintf(tok_path, sizeof tok_path, "%s/models/tokenizer.bin", shared);
    if (access(tok_path, R_OK) != 0) {
        fprintf(stderr, "check_tokenizer: SKIP parity tests: %s not found\n", tok_path);
        return 0;
    }
    return 1;
}

static void expect_ids(const struct tokenizer *t, const char *text, const int *want, int n_want)
{
    int *ids, n;
    struct err e = {0};

    ck_assert_int_eq(tokenizer_encode(t, text, strlen(text), 1, 0, &ids, &n, &e), 0);
    if (n != n_want) {
        for (int i = 0; i < n; i++)
            fprintf(stderr, "%d ", ids[i]);
        fprintf(stderr, "\n");
    }
    ck_assert_int_eq(n, n_want);
    for (int i = 0; i < n; i++)
        ck_assert_msg(ids[i] == want[i], "'%s': id %d is %d, want %d", text, i, ids[i], want[i]);
    free(ids);
}

/* Decode IDS (after BOS) with detok into a new string. */
static char *decode_all(const struct tokenizer *t, const int *ids, int n)
{
    struct detok d;
    size_t cap = 16, len = 0;
    char *s = malloc(cap), piece[1024];

    detok_init(&d, t);
    for (int i = 0; i <= n; i++) {
        size_t k = i < n ? detok_push(&d, ids[i], piece, sizeof piece) : detok_flush(&d, piece, sizeof piece);
        while (len + k + 1 > cap)
            s = realloc(s, cap *= 2);
        memcpy(s + len, piece, k);
        len += k;
    }
    s[len] = '\0';
    return s;
}

static void expect_round_trip(const struct tokenizer *t, const char *text)
{
    int *ids, n;
    struct err e = {0};
    char *back;

    ck_assert_int_eq(tokenizer_encode(t, text, strlen(text), 1, 0, &ids, &n, &e), 0);
    back = decode_all(t, ids, n);
    ck_assert_msg(strcmp(back, text) == 0, "round trip of '%s' gave '%s'", text, back);
    free(back);
    free(ids);
}

START_TEST(test_llama_parity)
{
    struct err e = {0};
    struct tokenizer *t;

    if (!shared_tokenizer())
        return;
    t = tokenizer_load(tok_path, 32000, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    ck_assert_int_eq(tokenizer_vocab_size(t), 32000);
    ck_assert_int_eq(tokenizer_bos(t), 1);
    ck_assert_int_eq(tokenizer_eos(t), 2);
    {
        static const int want[] = {1};
        expect_ids(t, "", want, 1);
    }
    {
        static const int want[] = {1, 306, 4658, 278, 6593, 310, 2834, 338};
        expect_ids(t, "I believe the meaning of life is", want, 8);
    }
    {
        static const int want[] = {1, 3439, 17632, 1925, 29892, 278, 6368, 310, 14215, 537, 5922, 393, 29871};
        expect_ids(t, "Simply put, the theory of relativity states that ", want, 13);
    }
    {
        static const int want[] = {1,    319,   11473, 2643, 378,  629, 271,  18099, 278,  3815, 373,   278, 6826,
                                   29901, 13,   13,    4706, 6324, 14332, 29892, 13,  13,   4706, 306, 925,  29871};
        expect_ids(t, "A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        I just ",
                   want, (int)(sizeof want / sizeof want[0]));
    }
    {
        static const int want[] = {1,    4103, 9632, 4223, 304,  5176, 29901, 13,   13,   4706, 7205, 4932, 357,
                                   1149, 301,  449,  276,  316,  2778, 13,    4706, 1236, 407,  837,  524,  1149,
                                   6042, 354,  772,  440,  29878, 1318, 13,   4706, 715,  1878, 330,  3055, 1725,
                                   1149, 330,  3055, 1725, 4639, 28754, 13,   4706, 923,  968,  1149};
        expect_ids(t,
                   "Translate English to French:\n\n        sea otter => loutre de mer\n        peppermint => menthe "
                   "poivrée\n        plush girafe => girafe peluche\n        cheese =>",
                   want, (int)(sizeof want / sizeof want[0]));
    }
    /* Byte fallback: U+1F600 is not a piece; its 4 bytes are <0xF0> <0x9F> <0x98> <0x80> = 3 + byte. */
    {
        static const int want[] = {1, 29871, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80};
        expect_ids(t, "\xF0\x9F\x98\x80", want, 6);
    }
    ck_assert_int_eq(tokenizer_find(t, " the"), 278);
    ck_assert_int_eq(tokenizer_find(t, "<0x0A>"), 13);
    ck_assert_int_eq(tokenizer_find(t, "no such piece in the vocabulary"), -1);
    tokenizer_free(t);
}
END_TEST

START_TEST(test_llama_round_trip)
{
    struct err e = {0};
    struct tokenizer *t;
    static const char *const texts[] = {
        "Hello, world!",
        "Once upon a time, there was a little girl named Lily.",
        "caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9\x65",                   /* é è û */
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE6\x96\x87", /* 日本語の文 */
        "emoji \xF0\x9F\x98\x80\xF0\x9F\x8E\x89 done",                   /* 😀🎉 */
        "  leading spaces, tabs\tand\nnewlines\n",
        "<s> and </s> and <unk> are plain text here",
    };

    if (!shared_tokenizer())
        return;
    t = tokenizer_load(tok_path, 32000, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        expect_round_trip(t, texts[i]);
    /* Control tokens never come out of text. */
    {
        int *ids, n;
        const char *s = "<s></s><unk>";
        ck_assert_int_eq(tokenizer_encode(t, s, strlen(s), 0, 0, &ids, &n, &e), 0);
        for (int i = 0; i < n; i++)
            ck_assert_int_gt(ids[i], 2);
        free(ids);
    }
    /* Invalid UTF-8: every byte survives encoding as a byte token; decoding
     * shows each broken sequence as U+FFFD. */
    {
        const char bad[] = "a\xFF"
                           "b\xC3"
                           "c\xE6\x97";
        int *ids, n;
        char *back;
        ck_assert_int_eq(tokenizer_encode(t, bad, strlen(bad), 1, 0, &ids, &n, &e), 0);
        back = decode_all(t, ids, n);
        ck_assert_str_eq(back, "a\xEF\xBF\xBD"
                               "b\xEF\xBF\xBD"
                               "c\xEF\xBF\xBD");
        free(back);
        /* tokenizer_piece gives the raw bytes back. */
        {
            char raw[64];
            size_t len = 0, k;
            for (int i = 0; i < n; i++) {
                const char *p = tokenizer_piece(t, i ? ids[i - 1] : -1, ids[i], &k);
                memcpy(raw + len, p, k);
                len += k;
            }
            ck_assert_uint_eq(len, strlen(bad));
            ck_assert(memcmp(raw, bad, len) == 0);
        }
        free(ids);
    }
    /* EOS at the end when asked. */
    {
        int *ids, n;
        ck_assert_int_eq(tokenizer_encode(t, "hi", 2, 1, 1, &ids, &n, &e), 0);
        ck_assert_int_eq(ids[0], 1);
        ck_assert_int_eq(ids[n - 1], 2);
        free(ids);
    }
    tokenizer_free(t);
}
END_TEST

/* A small vocabulary: bytes, characters and merges with chosen scores. */
static struct tokenizer *small_vocab(void)
{
    static const char *const pieces[] = {
        "<unk>", "<s>", "</s>", "<0x41>", "<0xC3>", "<0xA9>", "<0xE2>", "<0x82>", "<0xAC>",
        "\xE2\x96\x81", /* ▁ (a space) */
        "a", "b", "c", "ab", "bc", "abc", "\xE2\x96\x81" "a", "\xC3\xA9", "<|im_end|>",
    };
    static const float scores[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -2, -2, -2, -5, -3, -4, -6, -2, 0};
    static const int types[] = {2, 3, 3, 6, 6, 6, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3};
    size_t n = sizeof pieces / sizeof pieces[0], lens[32];
    struct err e = {0};
    struct tokenizer *t;

    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(pieces[i]);
    t = tokenizer_from_arrays((int)n, pieces, lens, scores, types, 1, 2, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    return t;
}

START_TEST(test_small_merges)
{
    struct tokenizer *t = small_vocab();

    /* " abc": symbols ' ' a b c; pairs: ' a' -6, ab -5, bc -3: bc first
     * (highest), then "abc" from a + bc (-4), then ' ' + abc is no piece. */
    {
        static const int want[] = {1, 9, 15};
        expect_ids(t, "abc", want, 3);
    }
    /* " ab": ' a' -6 vs ab -5: ab wins, then ' ' + ab is no piece. */
    {
        static const int want[] = {1, 9, 13};
        expect_ids(t, "ab", want, 3);
    }
    /* " a": ' a'. */
    {
        static const int want[] = {1, 16};
        expect_ids(t, "a", want, 2);
    }
    /* Ties go to the leftmost pair: "bcbc" -> bc bc. */
    {
        static const int want[] = {1, 9, 14, 14};
        expect_ids(t, "bcbc", want, 4);
    }
    /* é is a piece; € (E2 82 AC) is not: three byte tokens; A is <0x41>; 'd'
     * has no byte token: <unk>. */
    {
        static const int want[] = {1, 9, 17, 6, 7, 8, 3, 0};
        expect_ids(t, "\xC3\xA9\xE2\x82\xAC" "Ad", want, 8);
    }
    /* Control pieces are not matched from text but are found by name. */
    ck_assert_int_eq(tokenizer_find(t, "<|im_end|>"), 18);
    ck_assert_int_eq(tokenizer_find(t, " a"), 16); /* ▁ stored as a space */
    {
        size_t len;
        const char *p = tokenizer_piece(t, 1, 16, &len);
        ck_assert_uint_eq(len, 1); /* the space after BOS is dropped */
        ck_assert(memcmp(p, "a", 1) == 0);
        p = tokenizer_piece(t, 10, 16, &len);
        ck_assert_uint_eq(len, 2);
        p = tokenizer_piece(t, 10, 18, &len);
        ck_assert_uint_eq(len, 0); /* control: nothing */
        p = tokenizer_piece(t, 10, 99999, &len);
        ck_assert_uint_eq(len, 0);
        p = tokenizer_piece(t, 10, 4, &len);
        ck_assert_uint_eq(len, 1);
        ck_assert_int_eq((unsigned char)p[0], 0xC3);
    }
    tokenizer_free(t);
}
END_TEST

START_TEST(test_detok_split_characters)
{
    struct tokenizer *t = small_vocab();
    struct detok d;
    char out[64];

    /* € arrives one byte token at a time: nothing until the last. */
    detok_init(&d, t);
    ck_assert_uint_eq(detok_push(&d, 6, out, sizeof out), 0);
    ck_assert_uint_eq(detok_push(&d, 7, out, sizeof out), 0);
    ck_assert_uint_eq(detok_push(&d, 8, out, sizeof out), 3);
    ck_assert_str_eq(out, "\xE2\x82\xAC");
    /* A lead byte followed by a plain character: U+FFFD then the character. */
    ck_assert_uint_eq(detok_push(&d, 4, out, sizeof out), 0);
    ck_assert_uint_eq(detok_push(&d, 10, out, sizeof out), 4);
    ck_assert_str_eq(out, "\xEF\xBF\xBD" "a");
    /* A stray continuation byte. */
    ck_assert_uint_eq(detok_push(&d, 5, out, sizeof out), 3);
    ck_assert_str_eq(out, "\xEF\xBF\xBD");
    /* Unfinished at the end: flushed as U+FFFD. */
    ck_assert_uint_eq(detok_push(&d, 6, out, sizeof out), 0);
    ck_assert_uint_eq(detok_flush(&d, out, sizeof out), 3);
    ck_assert_str_eq(out, "\xEF\xBF\xBD");
    ck_assert_uint_eq(detok_flush(&d, out, sizeof out), 0);
    /* A small buffer is cut, never overrun, and stays terminated. */
    detok_init(&d, t);
    ck_assert_uint_eq(detok_push(&d, 13, out, 2), 1);
    ck_assert_str_eq(out, "a");
    tokenizer_free(t);
}
END_TEST

/* Write BYTES to a temporary file; returns its path (static). */
static const char *write_temp(const void *bytes, size_t n)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof path, "/tmp/check_tokenizer_XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq((int)write(fd, bytes, n), (int)n);
    close(fd);
    return path;
}

static void put_token(unsigned char *buf, size_t *off, float score, int32_t len, const char *s)
{
    memcpy(buf + *off, &score, 4);
    memcpy(buf + *off + 4, &len, 4);
    *off += 8;
    if (len > 0 && s != NULL) {
        memcpy(buf + *off, s, (size_t)len);
        *off += (size_t)len;
    }
}

START_TEST(test_hostile_files)
{
    unsigned char buf[256];
    size_t off = 0;
    int32_t max_len = 8;
    struct err e = {0};
    struct tokenizer *t;
    const char *p;

    memcpy(buf, &max_len, 4);
    off = 4;
    put_token(buf, &off, 0, 5, "<unk>");
    put_token(buf, &off, 0, 3, "<s>");
    put_token(buf, &off, 0, 4, "</s>");
    put_token(buf, &off, -1, 1, "x");
    /* Whole: 4 tokens; with vocab 0 all are read. */
    p = write_temp(buf, off);
    t = tokenizer_load(p, 0, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    ck_assert_int_eq(tokenizer_vocab_size(t), 4);
    tokenizer_free(t);
    /* More tokens asked for than the file has. */
    t = tokenizer_load(p, 5, &e);
    ck_assert(t == NULL);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_msg(strstr(e.msg, "truncated") != NULL && strstr(e.msg, p) != NULL, "%s", e.msg);
    unlink(p);
    /* Every truncation of the file is refused (vocab 4) or reads fewer. */
    for (size_t cut = 0; cut < off; cut++) {
        p = write_temp(buf, cut);
        t = tokenizer_load(p, 4, &e);
        ck_assert_msg(t == NULL, "cut at %zu accepted", cut);
        ck_assert_int_eq(e.code, ERR_INPUT);
        t = tokenizer_load(p, 0, &e);
        if (t != NULL) { /* a cut right after the third token: three whole tokens */
            ck_assert_int_eq(tokenizer_vocab_size(t), 3);
            tokenizer_free(t);
        }
        unlink(p);
    }
    /* A negative and a huge length, a NaN score, a bad header. */
    {
        size_t o = 4;
        unsigned char b2[64];
        float nan = __builtin_nanf("");
        memcpy(b2, &max_len, 4);
        put_token(b2, &o, 0, -5, NULL);
        p = write_temp(b2, o);
        ck_assert(tokenizer_load(p, 0, &e) == NULL);
        ck_assert_msg(strstr(e.msg, "length -5") != NULL, "%s", e.msg);
        unlink(p);
        o = 4;
        put_token(b2, &o, 0, 0x7fffffff, NULL);
        p = write_temp(b2, o);
        ck_assert(tokenizer_load(p, 0, &e) == NULL);
        unlink(p);
        o = 4;
        put_token(b2, &o, nan, 1, "x");
        p = write_temp(b2, o);
        ck_assert(tokenizer_load(p, 0, &e) == NULL);
        ck_assert_msg(strstr(e.msg, "finite") != NULL, "%s", e.msg);
        unlink(p);
        int32_t bad = -3;
        memcpy(b2, &bad, 4);
        p = write_temp(b2, 4);
        ck_assert(tokenizer_load(p, 0, &e) == NULL);
        ck_assert_msg(strstr(e.msg, "max_token_length") != NULL, "%s", e.msg);
        unlink(p);
    }
    ck_assert(tokenizer_load("/nonexistent/tokenizer.bin", 0, &e) == NULL);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert(tokenizer_load("/tmp", 0, &e) == NULL);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_msg(strstr(e.msg, "not a regular file") != NULL, "%s", e.msg);
    /* Random bytes never crash the loader. */
    srand(7);
    for (int trial = 0; trial < 200; trial++) {
        size_t n = (size_t)(rand() % (int)sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)rand();
        if (n >= 4 && trial % 2 == 0)
            memcpy(buf, &max_len, 4);
        p = write_temp(buf, n);
        t = tokenizer_load(p, trial % 3 == 0 ? 3 : 0, &e);
        if (t != NULL) {
            int *ids, k;
            ck_assert_int_eq(tokenizer_encode(t, "abc \xFF", 5, 1, 1, &ids, &k, &e), 0);
            free(ids);
            tokenizer_free(t);
        }
        unlink(p);
    }
}
END_TEST

START_TEST(test_from_arrays_refuses)
{
    const char *pieces[] = {"a", "b"};
    size_t lens[] = {1, 1};
    float scores[] = {0, __builtin_nanf("")};
    struct err e = {0};

    ck_assert(tokenizer_from_arrays(2, pieces, lens, NULL, NULL, 0, 5, &e) == NULL);
    ck_assert(tokenizer_from_arrays(0, pieces, lens, NULL, NULL, 0, 0, &e) == NULL);
    ck_assert(tokenizer_from_arrays(2, pieces, lens, scores, NULL, 0, 1, &e) == NULL);
    lens[1] = 1u << 20;
    ck_assert(tokenizer_from_arrays(2, pieces, lens, NULL, NULL, 0, 1, &e) == NULL);
}
END_TEST

START_TEST(test_long_text)
{
    /* A long prompt encodes in O(n log n): 200 KB of text. */
    struct tokenizer *t = small_vocab();
    size_t n = 200000;
    char *s = malloc(n + 1);
    int *ids, k;
    struct err e = {0};

    for (size_t i = 0; i < n; i++)
        s[i] = "abc "[i % 4];
    s[n] = '\0';
    ck_assert_int_eq(tokenizer_encode(t, s, n, 1, 0, &ids, &k, &e), 0);
    /* " " + "abc " repeated: ' ' abc per 4 bytes. */
    ck_assert_int_eq(k, 1 + (int)(n / 4) * 2 + 1); /* and the final space */
    free(ids);
    free(s);
    tokenizer_free(t);
}
END_TEST


/* Encode TEXT without BOS/EOS and append to W (n *NW). */
static void append_text(const struct tokenizer *t, const char *text, int *w, int *nw)
{
    int *ids, n;
    struct err e = {0};

    ck_assert_int_eq(tokenizer_encode(t, text, strlen(text), 0, 0, &ids, &n, &e), 0);
    memcpy(w + *nw, ids, (size_t)n * sizeof *ids);
    *nw += n;
    free(ids);
}

static void expect_chat(const struct tokenizer *t, enum chat_template tmpl, const struct chat_message *msgs, int n,
                        const int *want, int n_want)
{
    int *ids, k;
    struct err e = {0};

    ck_assert_msg(chat_encode(t, tmpl, msgs, n, &ids, &k, &e) == 0, "%s", e.msg);
    if (k != n_want) {
        for (int i = 0; i < k; i++)
            fprintf(stderr, "%d ", ids[i]);
        fprintf(stderr, "\n");
    }
    ck_assert_int_eq(k, n_want);
    for (int i = 0; i < k; i++)
        ck_assert_msg(ids[i] == want[i], "id %d is %d, want %d", i, ids[i], want[i]);
    free(ids);
}

START_TEST(test_chat_llama2)
{
    struct err e = {0};
    struct tokenizer *t;
    int want[256], nw = 0;

    if (!shared_tokenizer())
        return;
    t = tokenizer_load(tok_path, 32000, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    /* One user turn: BOS "[INST] Hello [/INST]" -- Llama 2's tokens for
     * "[INST]" are 518 25580 29962 and for " [/INST]" 518 29914 25580 29962. */
    {
        struct chat_message m[] = {{"user", "  Hello \n"}};
        static const int ids[] = {1, 518, 25580, 29962, 15043, 518, 29914, 25580, 29962};
        expect_chat(t, CHAT_TEMPLATE_LLAMA2, m, 1, ids, 9);
        expect_chat(t, CHAT_TEMPLATE_AUTO, m, 1, ids, 9);
    }
    /* System folded into the first turn; a finished pair ends with EOS;
     * the next turn starts with BOS again. */
    {
        struct chat_message m[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"},
                                   {"user", "Bye"}};
        want[nw++] = 1;
        append_text(t, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! ", want, &nw);
        want[nw++] = 2;
        want[nw++] = 1;
        append_text(t, "[INST] Bye [/INST]", want, &nw);
        expect_chat(t, CHAT_TEMPLATE_LLAMA2, m, 4, want, nw);
    }
    /* Zephyr (TinyLlama-Chat): "</s>" is EOS; text after a token gets the dummy prefix. */
    {
        struct chat_message m[] = {{"system", "Be kind."}, {"user", "Hi"}};
        nw = 0;
        want[nw++] = 1;
        append_text(t, "<|system|>\nBe kind.", want, &nw);
        want[nw++] = 2;
        append_text(t, "\n<|user|>\nHi", want, &nw);
        want[nw++] = 2;
        append_text(t, "\n<|assistant|>\n", want, &nw);
        expect_chat(t, CHAT_TEMPLATE_ZEPHYR, m, 2, want, nw);
    }
    /* Raw: the contents joined by newlines. */
    {
        struct chat_message m[] = {{"system", "Once upon"}, {"user", "a time"}};
        nw = 0;
        want[nw++] = 1;
        append_text(t, "Once upon\na time", want, &nw);
        expect_chat(t, CHAT_TEMPLATE_RAW, m, 2, want, nw);
    }
    /* Conversations the llama2 template cannot render. */
    {
        static const struct {
            struct chat_message m[3];
            int n;
            const char *want;
        } bad[] = {
            {{{"assistant", "x"}}, 1, "messages[0]: role 'assistant'"},
            {{{"user", "x"}, {"user", "y"}}, 2, "messages[1]: role 'user'"},
            {{{"user", "x"}, {"assistant", "y"}, {"system", "z"}}, 3, "messages[2]: role 'system'"},
            {{{"system", "x"}}, 1, "no user message"},
            {{{"robot", "x"}}, 1, "messages[0]: role 'robot': expected"},
            {{{"user", NULL}}, 1, "messages[0]: role and content"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int *ids = (int *)&e, n = 5;
            ck_assert(chat_encode(t, CHAT_TEMPLATE_LLAMA2, bad[i].m, bad[i].n, &ids, &n, &e) < 0);
            ck_assert_int_eq(e.code, ERR_INPUT);
            ck_assert_msg(strstr(e.msg, bad[i].want) != NULL, "'%s' lacks '%s'", e.msg, bad[i].want);
            ck_assert_ptr_eq(ids, NULL);
            ck_assert_int_eq(n, 0);
        }
    }
    tokenizer_free(t);
}
END_TEST

START_TEST(test_chat_chatml)
{
    struct tokenizer *t = small_vocab();
    struct chat_message m[] = {{"user", "a"}};
    int want[64], nw = 0;
    enum chat_template ct;

    /* <|im_end|> is in the small vocabulary, <|im_start|> is not: the one
     * is its special token, the other plain text. */
    want[nw++] = 1;
    append_text(t, "<|im_start|>user\na", want, &nw);
    want[nw++] = 18;
    append_text(t, "\n<|im_start|>assistant\n", want, &nw);
    expect_chat(t, CHAT_TEMPLATE_CHATML, m, 1, want, nw);
    tokenizer_free(t);

    ck_assert_int_eq(chat_template_detect(NULL), CHAT_TEMPLATE_LLAMA2);
    ck_assert_int_eq(chat_template_detect("{% for m in messages %}<|im_start|>{{ m.role }}"), CHAT_TEMPLATE_CHATML);
    ck_assert_int_eq(chat_template_detect("{{ bos_token + '[INST] ' + content + ' [/INST]' }}"),
                     CHAT_TEMPLATE_LLAMA2);
    ck_assert_int_eq(chat_template_detect("{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
                                          "{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif ... %}"
                                          "{{ '<|assistant|>' }}"),
                     CHAT_TEMPLATE_ZEPHYR);
    ck_assert_int_eq(chat_template_parse("zephyr", &ct), 0);
    ck_assert_int_eq(ct, CHAT_TEMPLATE_ZEPHYR);
    ck_assert_str_eq(chat_template_name(CHAT_TEMPLATE_ZEPHYR), "zephyr");
    ck_assert_int_eq(chat_template_parse("chatml", &ct), 0);
    ck_assert_int_eq(ct, CHAT_TEMPLATE_CHATML);
    ck_assert_int_eq(chat_template_parse("raw", &ct), 0);
    ck_assert_int_eq(ct, CHAT_TEMPLATE_RAW);
    ck_assert_int_eq(chat_template_parse("auto", &ct), 0);
    ck_assert_int_eq(ct, CHAT_TEMPLATE_AUTO);
    ck_assert_int_eq(chat_template_parse("vicuna", &ct), -1);
    ck_assert_str_eq(chat_template_name(CHAT_TEMPLATE_LLAMA2), "llama2");
    ck_assert_str_eq(chat_template_name(CHAT_TEMPLATE_CHATML), "chatml");
}
END_TEST


/* Any bytes encode to tokens whose pieces, joined, are exactly " " + text
 * (the dummy prefix): nothing is lost, reordered or invented. */
static void expect_lossless(const struct tokenizer *t, unsigned seed, int trials)
{
    static const char *const frags[] = {"a", "b", "c", " ", "the", "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x98\x80",
                                        "\n", "<s>", "\xFF", "\x80", "\xE2\x82", "ab", "<0x41>", "\t"};
    char text[256], joined[1024];
    struct err e = {0};

    for (int trial = 0; trial < trials; trial++) {
        size_t len = 0, jl = 0;
        int *ids, n;
        int parts = (int)(seed % 40);
        for (int k = 0; k < parts; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *f = (seed >> 8) % 5 == 0 ? NULL : frags[(seed >> 12) % 16];
            char byte = (char)(seed >> 20);
            size_t fl = f ? strlen(f) : 1;
            if (len + fl >= sizeof text)
                break;
            memcpy(text + len, f ? f : &byte, fl);
            len += fl;
        }
        seed = seed * 1103515245u + 12345u;
        ck_assert_int_eq(tokenizer_encode(t, text, len, 0, 0, &ids, &n, &e), 0);
        for (int i = 0; i < n; i++) {
            size_t pl;
            const char *p = tokenizer_piece(t, -1, ids[i], &pl);
            ck_assert_int_ge(ids[i], 0);
            ck_assert_int_lt(ids[i], tokenizer_vocab_size(t));
            ck_assert(jl + pl < sizeof joined);
            memcpy(joined + jl, p, pl);
            jl += pl;
        }
        if (len == 0) {
            ck_assert_int_eq(n, 0);
        } else {
            ck_assert_msg(jl == len + 1 && joined[0] == ' ' && memcmp(joined + 1, text, len) == 0,
                          "trial %d: %zu bytes came back as %zu", trial, len, jl);
        }
        free(ids);
    }
}

START_TEST(test_lossless)
{
    struct err e = {0};
    struct tokenizer *t;

    if (!shared_tokenizer())
        return;
    t = tokenizer_load(tok_path, 32000, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    expect_lossless(t, 17, 3000);
    tokenizer_free(t);
}
END_TEST


/* ---- byte-level BPE ---------------------------------------------------------------- */

/* Append the UTF-8 of code point CP to S; returns the new length. */
static size_t put_utf8(char *s, size_t n, unsigned cp)
{
    if (cp < 0x80) {
        s[n++] = (char)cp;
    } else {
        s[n++] = (char)(0xC0 | (cp >> 6));
        s[n++] = (char)(0x80 | (cp & 0x3F));
    }
    return n;
}

/* A byte-level vocabulary: the 256 bytes in GPT-2's spelling, then "ab",
 * "abc", "Ġa" and a control token; merges "a b", "ab c", "Ġ a" (EXTRA
 * replaces the last merge when set). */
static struct tokenizer *small_bpe(const char *pre, const char *extra_merge, int drop_byte, struct err *e)
{
    static char store[256][4];
    const char *pieces[261];
    size_t lens[261];
    int types[261], next = 256, n = 0;
    const char *merges[3] = {"a b", "ab c", "\xC4\xA0 a"};
    size_t mlens[3];

    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        unsigned cp = printable ? (unsigned)b : (unsigned)next++;
        if (b == drop_byte)
            continue;
        lens[n] = put_utf8(store[b], 0, cp);
        pieces[n] = store[b];
        types[n++] = 1;
    }
    pieces[n] = "ab", lens[n] = 2, types[n++] = 1;
    pieces[n] = "abc", lens[n] = 3, types[n++] = 1;
    pieces[n] = "\xC4\xA0" "a", lens[n] = 3, types[n++] = 1;
    pieces[n] = "<|end|>", lens[n] = 7, types[n++] = 3;
    if (extra_merge != NULL)
        merges[2] = extra_merge;
    for (int i = 0; i < 3; i++)
        mlens[i] = strlen(merges[i]);
    return tokenizer_from_bpe(n, pieces, lens, types, 3, merges, mlens, pre, n - 1, n - 1, 0, e);
}

START_TEST(test_bpe_small)
{
    struct err e = {0};
    struct tokenizer *t = small_bpe("gpt2", NULL, -1, &e);
    int a, ab, abc, sp_a, sp;

    ck_assert_msg(t != NULL, "%s", e.msg);
    a = tokenizer_find(t, "a");
    ab = tokenizer_find(t, "ab");
    abc = tokenizer_find(t, "abc");
    sp_a = tokenizer_find(t, " a"); /* "Ġa" is stored as its bytes */
    sp = tokenizer_find(t, " ");
    ck_assert(a >= 0 && ab >= 0 && abc >= 0 && sp_a >= 0 && sp >= 0);
    ck_assert_int_eq(tokenizer_adds_bos(t), 0);
    /* "abc abc": fragments "abc" and " abc"; in the second, "Ġ a" (rank 2)
     * loses to "a b" (rank 0), then "ab c": Ġ + abc. No BOS, no dummy prefix. */
    {
        int want[] = {abc, sp, abc};
        expect_ids(t, "abc abc", want, 3);
    }
    {
        int want[] = {sp_a};
        expect_ids(t, " a", want, 1);
    }
    /* Digits alone only with the smollm pre-tokenizer. */
    {
        int *ids, n;
        ck_assert_int_eq(tokenizer_encode(t, "x12", 3, 1, 0, &ids, &n, &e), 0);
        ck_assert_int_eq(n, 3);
        free(ids);
    }
    /* Any bytes encode losslessly; decoding keeps the leading space. */
    {
        size_t len;
        const char *p = tokenizer_piece(t, tokenizer_bos(t), sp_a, &len);
        ck_assert_uint_eq(len, 2);
        ck_assert(memcmp(p, " a", 2) == 0);
        p = tokenizer_piece(t, -1, tokenizer_find(t, "<|end|>"), &len);
        ck_assert_uint_eq(len, 0);
    }
    {
        char text[64], joined[256];
        unsigned seed = 5;
        for (int trial = 0; trial < 500; trial++) {
            size_t n = (size_t)(trial % 40), jl = 0;
            int *ids, k;
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                text[i] = trial % 2 ? "ab c\n1'"[(seed >> 16) % 7] : (char)(seed >> 16);
            }
            ck_assert_int_eq(tokenizer_encode(t, text, n, 0, 0, &ids, &k, &e), 0);
            for (int i = 0; i < k; i++) {
                size_t pl;
                const char *p = tokenizer_piece(t, -1, ids[i], &pl);
                memcpy(joined + jl, p, pl);
                jl += pl;
            }
            ck_assert_uint_eq(jl, n);
            ck_assert(memcmp(joined, text, n) == 0);
            free(ids);
        }
    }
    tokenizer_free(t);
    t = small_bpe("smollm", NULL, -1, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    {
        int *ids, n;
        ck_assert_int_eq(tokenizer_encode(t, "x12", 3, 0, 0, &ids, &n, &e), 0);
        ck_assert_int_eq(n, 3);
        free(ids);
    }
    tokenizer_free(t);
    /* Refused: a merge without its space, a missing byte, an unknown pre-tokenizer. */
    ck_assert(small_bpe("gpt2", "ab", -1, &e) == NULL);
    ck_assert_msg(strstr(e.msg, "merge 2 is not \"left right\"") != NULL, "%s", e.msg);
    ck_assert(small_bpe("gpt2", " ab", -1, &e) == NULL);
    ck_assert(small_bpe("gpt2", NULL, 0x41, &e) == NULL);
    ck_assert_msg(strstr(e.msg, "no piece for the byte 0x41") != NULL, "%s", e.msg);
    ck_assert(small_bpe("llama3", NULL, -1, &e) == NULL);
    ck_assert_msg(strstr(e.msg, "pre-tokenizer 'llama3' is not supported") != NULL, "%s", e.msg);
    /* A merge of pieces the vocabulary lacks is skipped, not an error. */
    t = small_bpe(NULL, "x y", -1, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    tokenizer_free(t);
}
END_TEST

static Suite *suite_tokenizer(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_llama_parity);
    tcase_add_test(tc, test_llama_round_trip);
    tcase_add_test(tc, test_small_merges);
    tcase_add_test(tc, test_detok_split_characters);
    tcase_add_test(tc, test_hostile_files);
    tcase_add_test(tc, test_from_arrays_refuses);
    tcase_add_test(tc, test_long_text);
    tcase_add_test(tc, test_chat_llama2);
    tcase_add_test(tc, test_chat_chatml);
    tcase_add_test(tc, test_lossless);
    tcase_add_test(tc, test_bpe_small);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_tokenizer());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
