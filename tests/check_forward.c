/* check_forward.c -- unit tests of the paged KV cache (server/kvcache.c) and
 * the forward pass (server/model.c).
 *
 * References nobody here wrote: llama2.c's logits for stories260K after BOS
 * at position 0 (../shared/models/stories260K.logits-pos0-bos.txt), and the
 * float64 numpy forward pass tests/ref_llama.py for 64 greedy tokens.  Then
 * the forward pass against itself: a prompt prefilled in chunks gives the
 * logits of the same prompt fed a token at a time, and sequences batched
 * together give the logits each gives alone.  Tests needing ../shared
 * (LLMSCALE_SHARED) or Python ($PYTHON3) say why they skip. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/forward.h"
#include "server/kvcache.h"
#include "server/model.h"

/* A small grouped-query shape that runs fast even under ASan. */
#define SMALL_MODEL "synthetic:dim=64,layers=2,heads=4,kv_heads=2,hidden=96,vocab=300,seq=128,seed=3"

/* ---- helpers --------------------------------------------------------------------- */

/* The path of ../shared/models/NAME in *OUT, or 0 when it is not there. */
static int shared_model(const char *name, char *out, size_t cap)
{
    const char *dir = getenv("LLMSCALE_SHARED");
    FILE *f;

    if (dir == NULL || dir[0] == '\0')
        dir = "../shared";
    snprintf(out, cap, "%s/models/%s", dir, name);
    f = fopen(out, "rb");
    if (f == NULL) {
        fprintf(stderr, "SKIP: %s is absent (set LLMSCALE_SHARED)\n", out);
        return 0;
    }
    fclose(f);
    return 1;
}

static void load(struct model *m, const char *path, int q8)
{
    struct model_load_opts o = {.quantize_q8 = q8};
    struct err e = {0};

    ck_assert_msg(model_load(m, path, &o, &e) == 0, "%s: %s", path, e.msg);
}

/* A cache for model M with N_BLOCKS blocks of 16 tokens. */
static void cache_for(struct kv_cache *c, const struct model *m, int n_blocks)
{
    struct err e = {0};

    ck_assert_msg(kv_cache_init(c, m->cfg.n_layers, m->cfg.n_kv_heads * m->cfg.head_dim, 16, n_blocks, &e) == 0,
                  "%s", e.msg);
}

static struct forward *forward_for(const struct model *m, struct kv_cache *c, int max_tokens, const char *be)
{
    struct err e = {0};
    struct forward *f = forward_create(m, c, max_tokens, kn_backend_find(be), &e);

    ck_assert_msg(f != NULL, "%s", e.msg);
    return f;
}

/* max |a - b| / max |b| over N. */
static double normwise_err(const float *a, const float *b, int n)
{
    double num = 0, den = 0;

    for (int i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > num)
            num = fabs((double)a[i] - b[i]);
        if (fabs((double)b[i]) > den)
            den = fabs((double)b[i]);
    }
    return den > 0 ? num / den : num;
}

/* Feed TOKENS[0..n) to a fresh sequence of F one at a time; the logits
 * after each into LOGITS (n, vocab). */
static void run_one_by_one(struct forward *f, struct kv_cache *c, const int *tokens, int n, float *logits,
                           int vocab)
{
    struct kv_seq s;

    kv_seq_init(&s);
    for (int i = 0; i < n; i++) {
        struct forward_seq fs = {.tokens = tokens + i, .n_tokens = 1, .pos0 = i, .kv = &s,
                                 .logits = logits + (size_t)i * vocab};

        ck_assert_int_eq(kv_seq_reserve(c, &s, i + 1), 0);
        forward_batch(f, &fs, 1);
    }
    kv_seq_free(c, &s);
}

/* ---- the KV cache ----------------------------------------------------------------- */

START_TEST(test_kvcache_blocks)
{
    struct kv_cache c;
    struct err e = {0};
    int ids[4];

    ck_assert_int_eq(kv_cache_init(&c, 2, 8, 4, 0, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_int_eq(kv_cache_init(&c, 2, 8, -4, 3, &e), -1);
    ck_assert_int_eq(kv_cache_init(&c, 2, 8, 4, 4, &e), 0);
    ck_assert_int_eq(kv_cache_n_free(&c), 4);
    for (int i = 0; i < 4; i++) {
        ids[i] = kv_cache_alloc_block(&c);
        ck_assert(ids[i] >= 0 && ids[i] < 4);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(ids[i], ids[j]);
    }
    ck_assert_int_eq(kv_cache_alloc_block(&c), -1); /* exhausted */
    ck_assert(kv_cache_usage(&c) == 1.0);
    kv_cache_free_block(&c, ids[2]);
    ck_assert_int_eq(kv_cache_n_free(&c), 1);
    ck_assert_int_eq(kv_cache_alloc_block(&c), ids[2]);
    for (int i = 0; i < 4; i++)
        kv_cache_free_block(&c, ids[i]);
    ck_assert(kv_cache_usage(&c) == 0.0);
    ck_assert_int_eq(kv_cache_blocks_for(&c, 0), 0);
    ck_assert_int_eq(kv_cache_blocks_for(&c, 1), 1);
    ck_assert_int_eq(kv_cache_blocks_for(&c, 4), 1);
    ck_assert_int_eq(kv_cache_blocks_for(&c, 5), 2);
    kv_cache_free(&c);
}
END_TEST

START_TEST(test_kvcache_sequences)
{
    struct kv_cache c;
    struct kv_seq a, b;
    struct kn_kv_view v;
    struct err e = {0};

    ck_assert_int_eq(kv_cache_init(&c, 3, 8, 4, 5, &e), 0);
    kv_seq_init(&a);
    kv_seq_init(&b);
    ck_assert_int_eq(kv_seq_reserve(&c, &a, 9), 0); /* 3 blocks */
    ck_assert_int_eq(a.n_blocks, 3);
    ck_assert_int_eq(kv_seq_capacity(&c, &a), 12);
    ck_assert_int_eq(kv_seq_reserve(&c, &a, 12), 0); /* no growth */
    ck_assert_int_eq(kv_cache_n_free(&c), 2);
    /* all or nothing: 3 blocks asked, 2 free */
    ck_assert_int_eq(kv_seq_reserve(&c, &b, 10), -1);
    ck_assert_int_eq(b.n_blocks, 0);
    ck_assert_int_eq(kv_cache_n_free(&c), 2);
    ck_assert_int_eq(kv_seq_reserve(&c, &b, 8), 0);
    ck_assert_int_eq(kv_cache_n_free(&c), 0);

    /* rows: every (layer, position) of both sequences distinct, inside the arrays */
    for (int l = 0; l < 3; l++) {
        for (int p = 0; p < 12; p++) {
            float *k = kv_seq_k(&c, &a, l, p);
            ck_assert(k >= c.k && k + 8 <= c.k + (size_t)3 * 5 * 4 * 8);
            k[0] = (float)(1000 * l + p);
            kv_seq_v(&c, &a, l, p)[0] = (float)(-1000 * l - p);
        }
        for (int p = 0; p < 8; p++)
            kv_seq_k(&c, &b, l, p)[0] = (float)(5000 + 1000 * l + p);
    }
    for (int l = 0; l < 3; l++) {
        kv_seq_view(&c, &a, l, &v);
        ck_assert_int_eq(v.block_size, 4);
        ck_assert_int_eq(v.pos_stride, 8);
        for (int p = 0; p < 12; p++) {
            int row = v.blocks[p / 4] * 4 + p % 4;
            ck_assert(v.k[(size_t)row * 8] == (float)(1000 * l + p));
            ck_assert(v.v[(size_t)row * 8] == (float)(-1000 * l - p));
        }
    }
    /* release gives every block back; the table is reusable */
    kv_seq_release(&c, &a);
    ck_assert_int_eq(a.n_blocks, 0);
    ck_assert_int_eq(kv_cache_n_free(&c), 3);
    ck_assert_int_eq(kv_seq_reserve(&c, &a, 1), 0);
    kv_seq_free(&c, &a);
    kv_seq_free(&c, &b);
    ck_assert_int_eq(kv_cache_n_free(&c), 5);
    kv_cache_free(&c);
}
END_TEST

/* ---- parity with llama2.c and the float64 reference ---------------------------------- */

/* Read the reference logits (one per line) of FILE into OUT (n). */
static void read_logits(const char *file, float *out, int n)
{
    FILE *f = fopen(file, "r");
    int i;

    ck_assert_msg(f != NULL, "cannot open %s", file);
    for (i = 0; i < n; i++)
        ck_assert_msg(fscanf(f, "%f", &out[i]) == 1, "%s: line %d: not a number", file, i + 1);
    fclose(f);
}

START_TEST(test_logits_pos0_bos)
{
    char path[4096], ref_path[4096];
    const char *backends[] = {"cpu", "ref"};
    struct model m = {0};

    if (!shared_model("stories260K.bin", path, sizeof path) ||
        !shared_model("stories260K.logits-pos0-bos.txt", ref_path, sizeof ref_path))
        return;
    load(&m, path, 0);
    ck_assert_int_eq(m.cfg.vocab_size, 512);
    for (int b = 0; b < 2; b++) {
        float *ref = malloc(512 * sizeof *ref), *logits = malloc(512 * sizeof *logits);
        struct kv_cache c;
        struct forward *f;
        double worst;
        int bos = 1;

        read_logits(ref_path, ref, 512);
        cache_for(&c, &m, 4);
        f = forward_for(&m, &c, 8, backends[b]);
        run_one_by_one(f, &c, &bos, 1, logits, 512);
        /* normwise relative error, as the kernels' tests measure it: the
         * file's float32 figures themselves differ from float64 by 1.3e-5
         * absolute (1.3e-6 of the largest logit), so a per-logit relative
         * error would judge rounding on logits near zero */
        worst = normwise_err(logits, ref, 512);
        ck_assert_msg(worst < 1e-4, "backend %s: relative error %g", backends[b], worst);
        ck_assert_int_eq(kn_argmax(logits, 512), kn_argmax(ref, 512));
        forward_free(f);
        kv_cache_free(&c);
        free(ref);
        free(logits);
    }
    model_free(&m);
}
END_TEST

/* Greedy ids from BOS: 64 of them, by the forward pass a token at a time. */
static void greedy_ids(const struct model *m, int n, int *out)
{
    struct kv_cache c;
    struct forward *f;
    struct kv_seq s;
    float *logits = malloc((size_t)m->cfg.vocab_size * sizeof *logits);
    int tok = 1;

    cache_for(&c, m, (n + 16) / 16 + 1);
    f = forward_for(m, &c, 1, "cpu");
    kv_seq_init(&s);
    for (int i = 0; i < n; i++) {
        struct forward_seq fs = {.tokens = &tok, .n_tokens = 1, .pos0 = i, .kv = &s, .logits = logits};

        ck_assert_int_eq(kv_seq_reserve(&c, &s, i + 1), 0);
        forward_batch(f, &fs, 1);
        tok = out[i] = kn_argmax(logits, m->cfg.vocab_size);
    }
    kv_seq_free(&c, &s);
    forward_free(f);
    kv_cache_free(&c);
    free(logits);
}

START_TEST(test_greedy_matches_float64_reference)
{
    const char *py = getenv("PYTHON3"), *src = getenv("top_srcdir");
    char path[4096], cmd[12288];
    struct model m = {0};
    int ids[64], ref[64];
    FILE *p;

    if (!shared_model("stories260K.bin", path, sizeof path))
        return;
    if (py == NULL || py[0] == '\0' || src == NULL) {
        fprintf(stderr, "SKIP: PYTHON3 or top_srcdir unset (run through make check)\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' -c 'import numpy' 2>/dev/null", py);
    if (system(cmd) != 0) {
        fprintf(stderr, "SKIP: %s has no numpy (scripts/setup.sh makes a .venv with it)\n", py);
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/ref_llama.py' '%s' greedy -n 64", py, src, path);
    p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "cannot run %s", cmd);
    for (int i = 0; i < 64; i++)
        ck_assert_msg(fscanf(p, "%d", &ref[i]) == 1, "%s: id %d missing", cmd, i);
    ck_assert_int_eq(pclose(p), 0);

    load(&m, path, 0);
    greedy_ids(&m, 64, ids);
    for (int i = 0; i < 64; i++)
        ck_assert_msg(ids[i] == ref[i], "token %d: %d, the float64 reference says %d", i, ids[i], ref[i]);
    model_free(&m);
}
END_TEST

/* ---- the forward pass against itself ---------------------------------------------------- */

/* A prompt prefilled in chunks of 1, 7 and 16 (GEMM and prefill attention)
 * gives the logits of feeding it a token at a time (GEMV and decode
 * attention), at every chunk end. */
START_TEST(test_prefill_chunks_equal_decode)
{
    struct model m = {0};
    struct kv_cache c;
    struct forward *f;
    int n = 40, V, tokens[40];
    const int chunks[] = {7, 16, 17};
    float *want, *got;

    load(&m, SMALL_MODEL, 0);
    V = m.cfg.vocab_size;
    for (int i = 0; i < n; i++)
        tokens[i] = (i * 37 + 11) % V;
    want = malloc((size_t)n * V * sizeof *want);
    got = malloc((size_t)V * sizeof *got);
    cache_for(&c, &m, 8);
    f = forward_for(&m, &c, 64, "cpu");
    run_one_by_one(f, &c, tokens, n, want, V);
    for (int ci = 0; ci < 3; ci++) {
        struct kv_seq s;

        kv_seq_init(&s);
        for (int pos = 0; pos < n; pos += chunks[ci]) {
            int k = pos + chunks[ci] <= n ? chunks[ci] : n - pos;
            struct forward_seq fs = {.tokens = tokens + pos, .n_tokens = k, .pos0 = pos, .kv = &s, .logits = got};

            ck_assert_int_eq(kv_seq_reserve(&c, &s, pos + k), 0);
            forward_batch(f, &fs, 1);
            ck_assert_msg(normwise_err(got, want + (size_t)(pos + k - 1) * V, V) < 1e-4,
                          "chunk %d at %d: error %g", chunks[ci], pos, normwise_err(got, want + (size_t)(pos + k - 1) * V, V));
        }
        kv_seq_free(&c, &s);
    }
    forward_free(f);
    kv_cache_free(&c);
    free(want);
    free(got);
    model_free(&m);
}
END_TEST

/* Three sequences in one step -- one prefilling a chunk, two decoding at
 * different positions -- give the logits each gives alone. */
START_TEST(test_batch_equals_alone)
{
    struct model m = {0};
    struct kv_cache c;
    struct forward *f;
    int V, prompts[3][30], lens[3] = {30, 12, 21};
    float *alone[3], *got[3];
    struct kv_seq s[3];
    struct forward_seq fs[3];

    load(&m, SMALL_MODEL, 0);
    V = m.cfg.vocab_size;
    for (int q = 0; q < 3; q++)
        for (int i = 0; i < 30; i++)
            prompts[q][i] = (i * (q + 3) * 13 + q * 101 + 1) % V;
    cache_for(&c, &m, 12);
    f = forward_for(&m, &c, 64, "cpu");
    for (int q = 0; q < 3; q++) {
        alone[q] = malloc((size_t)lens[q] * V * sizeof(float));
        got[q] = malloc((size_t)V * sizeof(float));
        run_one_by_one(f, &c, prompts[q], lens[q], alone[q], V);
        kv_seq_init(&s[q]);
    }
    /* sequences 1 and 2 hold all but their last token; 0 holds 10 */
    for (int q = 0; q < 3; q++) {
        int held = q == 0 ? 10 : lens[q] - 1;
        struct forward_seq one = {.tokens = prompts[q], .n_tokens = held, .pos0 = 0, .kv = &s[q], .logits = NULL};

        ck_assert_int_eq(kv_seq_reserve(&c, &s[q], lens[q]), 0);
        forward_batch(f, &one, 1);
        fs[q] = (struct forward_seq){.tokens = prompts[q] + held, .n_tokens = lens[q] - held, .pos0 = held,
                                     .kv = &s[q], .logits = got[q]};
    }
    forward_batch(f, fs, 3);
    for (int q = 0; q < 3; q++) {
        double err = normwise_err(got[q], alone[q] + (size_t)(lens[q] - 1) * V, V);
        ck_assert_msg(err < 1e-4, "sequence %d: error %g", q, err);
        kv_seq_free(&c, &s[q]);
        free(alone[q]);
        free(got[q]);
    }
    forward_free(f);
    kv_cache_free(&c);
    model_free(&m);
}
END_TEST

/* More sequences in a step than the classifier takes at once (40, every
 * third not asking for logits): each gets its own logits. */
START_TEST(test_many_sequences_logits)
{
    struct model m = {0};
    struct kv_cache c;
    struct forward *f;
    struct kv_seq s[40];
    struct forward_seq fs[40];
    int V, tokens[40];
    float *got, *alone;

    load(&m, SMALL_MODEL, 0);
    V = m.cfg.vocab_size;
    got = malloc((size_t)40 * V * sizeof *got);
    alone = malloc((size_t)V * sizeof *alone);
    cache_for(&c, &m, 41);
    f = forward_for(&m, &c, 40, "cpu");
    for (int i = 0; i < 40; i++) {
        tokens[i] = (i * 53 + 7) % V;
        kv_seq_init(&s[i]);
        ck_assert_int_eq(kv_seq_reserve(&c, &s[i], 1), 0);
        fs[i] = (struct forward_seq){.tokens = &tokens[i], .n_tokens = 1, .pos0 = 0, .kv = &s[i],
                                     .logits = i % 3 == 2 ? NULL : got + (size_t)i * V};
    }
    forward_batch(f, fs, 40);
    for (int i = 0; i < 40; i++) {
        if (i % 3 == 2)
            continue;
        run_one_by_one(f, &c, &tokens[i], 1, alone, V);
        ck_assert_msg(normwise_err(got + (size_t)i * V, alone, V) < 1e-4, "sequence %d: error %g", i,
                      normwise_err(got + (size_t)i * V, alone, V));
    }
    for (int i = 0; i < 40; i++)
        kv_seq_free(&c, &s[i]);
    forward_free(f);
    kv_cache_free(&c);
    free(got);
    free(alone);
    model_free(&m);
}
END_TEST

/* int8 weights stay close to float32 (Q8_0's error is about 1%). */
START_TEST(test_q8_close_to_f32)
{
    struct model m32 = {0}, m8 = {0};
    struct kv_cache c32, c8;
    struct forward *f32, *f8;
    int tokens[8] = {1, 5, 9, 200, 17, 3, 99, 250}, V;
    float *a, *b;
    double err;

    load(&m32, SMALL_MODEL, 0);
    load(&m8, SMALL_MODEL, 1);
    ck_assert_int_eq(m8.layers[0].wq.dtype, KN_Q8);
    V = m32.cfg.vocab_size;
    a = malloc((size_t)8 * V * sizeof *a);
    b = malloc((size_t)8 * V * sizeof *b);
    cache_for(&c32, &m32, 2);
    cache_for(&c8, &m8, 2);
    f32 = forward_for(&m32, &c32, 8, "cpu");
    f8 = forward_for(&m8, &c8, 8, "cpu");
    run_one_by_one(f32, &c32, tokens, 8, a, V);
    run_one_by_one(f8, &c8, tokens, 8, b, V);
    err = normwise_err(b + 7 * V, a + 7 * V, V);
    ck_assert_msg(err < 0.05, "q8 vs f32: error %g", err);
    ck_assert_msg(err > 0, "q8 logits identical to f32: not quantised?");
    forward_free(f32);
    forward_free(f8);
    kv_cache_free(&c32);
    kv_cache_free(&c8);
    free(a);
    free(b);
    model_free(&m32);
    model_free(&m8);
}
END_TEST

START_TEST(test_forward_create_checks)
{
    struct model m = {0};
    struct kv_cache c;
    struct err e = {0};

    load(&m, SMALL_MODEL, 0);
    ck_assert_int_eq(kv_cache_init(&c, m.cfg.n_layers + 1, m.cfg.n_kv_heads * m.cfg.head_dim, 16, 2, &e), 0);
    ck_assert_ptr_null(forward_create(&m, &c, 4, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "does not fit"));
    kv_cache_free(&c);
    cache_for(&c, &m, 2);
    ck_assert_ptr_null(forward_create(&m, &c, 0, NULL, &e));
    kv_cache_free(&c);
    /* a cache without host storage (for the cuda backend) is refused on the host */
    ck_assert_int_eq(kv_cache_init_meta(&c, m.cfg.n_layers, m.cfg.n_kv_heads * m.cfg.head_dim, 16, 2, &e), 0);
    ck_assert_ptr_null(c.k);
    ck_assert_int_eq(kv_cache_n_free(&c), 2);
    ck_assert_ptr_null(forward_create(&m, &c, 4, kn_backend_find("cpu"), &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "no host storage"));
    kv_cache_free(&c);
    model_free(&m);
}
END_TEST

/* Backends by name: cpu and ref, auto (cuda with a device, else cpu), cuda
 * (NULL with a message naming it when unusable), unknown names refused. */
START_TEST(test_backend_names)
{
    const struct kn_backend *be;
    struct err e = {0};

    ck_assert_str_eq(forward_backend(NULL, &e)->name, "cpu");
    ck_assert_str_eq(forward_backend("cpu", &e)->name, "cpu");
    ck_assert_str_eq(forward_backend("ref", &e)->name, "ref");
    ck_assert(!forward_backend_on_device(forward_backend("cpu", &e)));
    ck_assert_ptr_null(forward_backend("bogus", &e));
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(e.msg, "unknown backend 'bogus'"));
    be = forward_backend("cuda", &e);
    if (be != NULL) {
        ck_assert_str_eq(be->name, "cuda");
        ck_assert(forward_backend_on_device(be));
        ck_assert_str_eq(forward_backend("auto", &e)->name, "cuda");
    } else {
        ck_assert_ptr_nonnull(strstr(e.msg, "backend cuda: "));
        ck_assert_str_eq(forward_backend("auto", &e)->name, "cpu");
    }
}
END_TEST

static Suite *forward_suite(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("kvcache");

    tcase_add_test(tc, test_kvcache_blocks);
    tcase_add_test(tc, test_kvcache_sequences);
    suite_add_tcase(s, tc);
    tc = tcase_create("forward");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_logits_pos0_bos);
    tcase_add_test(tc, test_greedy_matches_float64_reference);
    tcase_add_test(tc, test_prefill_chunks_equal_decode);
    tcase_add_test(tc, test_batch_equals_alone);
    tcase_add_test(tc, test_many_sequences_logits);
    tcase_add_test(tc, test_q8_close_to_f32);
    tcase_add_test(tc, test_forward_create_checks);
    tcase_add_test(tc, test_backend_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(forward_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
