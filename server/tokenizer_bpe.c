/* tokenizer_bpe.c -- byte-level BPE vocabularies (GPT-2 style, GGUF
 * tokenizer.ggml.model "gpt2": SmolLM and the like): the vocabulary and
 * merge list from GGUF arrays, and the pre-tokenizer that cuts text into the
 * fragments BPE merges within.
 *
 * GPT-2 spells every byte as a printable character (bytes_to_unicode: the
 * bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves, the other
 * 68 for U+0100 onwards in order), so a piece like "Ġthe" is the bytes
 * " the".  Pieces are stored as bytes; encoding starts from single bytes and
 * applies merges lowest rank first (tokenizer.c's merge loop), within each
 * fragment of GPT-2's splitting regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * ("smollm" first isolates every \p{N}: Hugging Face's Digits pre-tokenizer
 * with individual digits). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/log.h"
#include "server/tokenizer.h"
#include "server/tokenizer_int.h"
#include "server/unicode.h"

/* GGUF token types (llama.cpp's llama_token_type). */
enum { BPE_TOKEN_NORMAL = 1, BPE_TOKEN_USER_DEFINED = 4 };

#define BPE_MAX_PIECE_BYTES 65536

/* cp_to_byte[cp] for cp < 324: the byte GPT-2 spells as U+cp, or -1. */
static void byte_level_table(int cp_to_byte[324])
{
    int extra = 0;

    for (int cp = 0; cp < 324; cp++)
        cp_to_byte[cp] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        cp_to_byte[printable ? b : 256 + extra++] = b;
    }
}

/* Write the bytes piece S (n) spells into DST (room for n); returns their
 * count, or -1 when S has a character outside GPT-2's byte alphabet. */
static long byte_level_decode(char *dst, const char *s, size_t n, const int cp_to_byte[324])
{
    size_t o = 0;

    for (size_t i = 0; i < n;) {
        size_t adv;
        uint32_t cp = unicode_next(s + i, n - i, &adv);
        if (cp >= 324 || cp_to_byte[cp] < 0)
            return -1;
        dst[o++] = (char)cp_to_byte[cp];
        i += adv;
    }
    return (long)o;
}

static uint64_t merge_hash(uint64_t key)
{
    return XXH3_64bits(&key, sizeof key);
}

int tok_bpe_merge(const struct tokenizer *t, int left, int right, int *id)
{
    uint64_t key = (uint64_t)(left + 1) << 32 | (uint64_t)(right + 1);

    if (t->merge_key == NULL)
        return -1;
    for (size_t i = (size_t)merge_hash(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merge_key[i] == 0)
            return -1;
        if (t->merge_key[i] == key) {
            *id = t->merge_id[i];
            return t->merge_rank[i];
        }
    }
}

/* ---- the pre-tokenizer ------------------------------------------------------------ */

static uint32_t cp_at(const char *s, size_t len, size_t *adv)
{
    return unicode_next(s, len, adv);
}

/* GPT-2's regex at S (LEN > 0): the length of the match. */
static size_t gpt2_match(const char *s, size_t len)
{
    static const char *const contractions[] = {"re", "ve", "ll", "s", "t", "m", "d"};
    size_t adv, adv1, i, skip = 0;
    uint32_t c = cp_at(s, len, &adv), c1 = c;

    if (c == '\'' && len > 1)
        for (size_t k = 0; k < sizeof contractions / sizeof contractions[0]; k++) {
            size_t n = strlen(contractions[k]);
            if (len - 1 >= n && memcmp(s + 1, contractions[k], n) == 0)
                return 1 + n;
        }
    adv1 = adv;
    if (c == ' ' && len > 1) { /* the optional leading space */
        c1 = cp_at(s + 1, len - 1, &adv1);
        skip = 1;
    }
    if (unicode_is_letter(c1) || unicode_is_number(c1) || !unicode_is_space(c1)) {
        int (*same)(uint32_t) = unicode_is_letter(c1) ? unicode_is_letter : unicode_is_number(c1) ? unicode_is_number : NULL;
        for (i = skip + adv1; i < len; i += adv) {
            c = cp_at(s + i, len - i, &adv);
            if (same != NULL ? !same(c) : (unicode_is_space(c) || unicode_is_letter(c) || unicode_is_number(c)))
                break;
        }
        return i;
    }
    /* White space: \s+(?!\S) leaves the last one to prefix what follows;
     * a single one before \S is \s+. */
    {
        size_t last = 0;
        int count = 0;
        for (i = 0; i < len; i += adv) {
            c = cp_at(s + i, len - i, &adv);
            if (!unicode_is_space(c))
                break;
            last = i;
            count++;
        }
        return i < len && count > 1 ? last : i;
    }
}

size_t tok_bpe_fragment(const struct tokenizer *t, const char *s, size_t len)
{
    size_t adv, lim = len;

    if (t->pre == TOK_PRE_SMOLLM) {
        /* A number character alone; other text up to the next one. */
        if (unicode_is_number(cp_at(s, len, &adv)))
            return adv;
        for (size_t i = 0; i < len; i += adv)
            if (unicode_is_number(cp_at(s + i, len - i, &adv))) {
                lim = i;
                break;
            }
    }
    return gpt2_match(s, lim);
}

/* ---- the vocabulary ------------------------------------------------------------------- */

static int build_merges(struct tokenizer *t, int n_merges, const char *const *merges, const size_t *merge_lens,
                        const int cp_to_byte[324], struct err *e)
{
    size_t cap = 16;
    char *buf = malloc(2 * BPE_MAX_PIECE_BYTES + 2);
    int skipped = 0;

    if (buf == NULL)
        return err_set(e, ERR_SYSTEM, "tokenizer: out of memory");
    while (cap < (size_t)n_merges * 2)
        cap *= 2;
    t->merge_key = calloc(cap, sizeof *t->merge_key);
    t->merge_rank = calloc(cap, sizeof *t->merge_rank);
    t->merge_id = calloc(cap, sizeof *t->merge_id);
    if (t->merge_key == NULL || t->merge_rank == NULL || t->merge_id == NULL) {
        free(buf);
        return err_set(e, ERR_SYSTEM, "tokenizer: out of memory");
    }
    t->merge_mask = cap - 1;
    for (int r = 0; r < n_merges; r++) {
        const char *m = merges[r], *sp;
        size_t n = merge_lens[r];
        long la, lb;
        int left, right, id;
        uint64_t key;

        sp = n > 0 ? memchr(m, ' ', n) : NULL;
        if (n > 2 * BPE_MAX_PIECE_BYTES || sp == NULL || sp == m || sp == m + n - 1) {
            free(buf);
            return err_set(e, ERR_INPUT, "tokenizer: merge %d is not \"left right\"", r);
        }
        la = byte_level_decode(buf, m, (size_t)(sp - m), cp_to_byte);
        lb = la < 0 ? -1 : byte_level_decode(buf + la, sp + 1, n - (size_t)(sp - m) - 1, cp_to_byte);
        if (la < 0 || lb < 0 || (left = tok_lookup(t, buf, (size_t)la)) < 0 ||
            (right = tok_lookup(t, buf + la, (size_t)lb)) < 0 || (id = tok_lookup(t, buf, (size_t)(la + lb))) < 0) {
            skipped++; /* a merge of pieces the vocabulary lacks can never apply */
            continue;
        }
        key = (uint64_t)(left + 1) << 32 | (uint64_t)(right + 1);
        for (size_t i = (size_t)merge_hash(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
            if (t->merge_key[i] == key)
                break; /* the lower rank came first */
            if (t->merge_key[i] == 0) {
                t->merge_key[i] = key;
                t->merge_rank[i] = r;
                t->merge_id[i] = id;
                break;
            }
        }
    }
    if (skipped > 0)
        log_debug("tokenizer: %d of %d merges name pieces outside the vocabulary", skipped, n_merges);
    free(buf);
    return 0;
}

struct tokenizer *tokenizer_from_bpe(int vocab_size, const char *const *pieces, const size_t *lens, const int *types,
                                     int n_merges, const char *const *merges, const size_t *merge_lens,
                                     const char *pre, int bos_id, int eos_id, int add_bos, struct err *e)
{
    struct tokenizer *t;
    int cp_to_byte[324];
    size_t arena = 0;

    if (vocab_size < 1 || vocab_size > (1 << 22) || n_merges < 0 || n_merges > (1 << 24)) {
        err_set(e, ERR_INPUT, "tokenizer: %d tokens and %d merges: out of range", vocab_size, n_merges);
        return NULL;
    }
    if (bos_id < 0 || bos_id >= vocab_size || eos_id < 0 || eos_id >= vocab_size) {
        err_set(e, ERR_INPUT, "tokenizer: BOS %d or EOS %d is not a token id (vocabulary of %d)", bos_id, eos_id,
                vocab_size);
        return NULL;
    }
    if (pre != NULL && strcmp(pre, "default") != 0 && strcmp(pre, "gpt2") != 0 && strcmp(pre, "gpt-2") != 0 &&
        strcmp(pre, "smollm") != 0) {
        err_set(e, ERR_INPUT, "tokenizer: pre-tokenizer '%s' is not supported (default, gpt2, smollm)", pre);
        return NULL;
    }
    for (int i = 0; i < vocab_size; i++) {
        if (lens[i] > BPE_MAX_PIECE_BYTES) {
            err_set(e, ERR_INPUT, "tokenizer: token %d: %zu bytes, longer than %d", i, lens[i], BPE_MAX_PIECE_BYTES);
            return NULL;
        }
        arena += lens[i] + 1;
    }
    t = tok_alloc(vocab_size, arena);
    if (t == NULL) {
        err_set(e, ERR_SYSTEM, "tokenizer: out of memory");
        return NULL;
    }
    byte_level_table(cp_to_byte);
    t->bpe = 1;
    t->pre = pre != NULL && strcmp(pre, "smollm") == 0 ? TOK_PRE_SMOLLM : TOK_PRE_GPT2;
    t->add_bos = add_bos;
    t->bos = bos_id;
    t->eos = eos_id;
    t->unk = -1;
    arena = 0;
    for (int i = 0; i < vocab_size; i++) {
        int type = types != NULL ? types[i] : BPE_TOKEN_NORMAL;
        long n = -1;
        t->offset[i] = arena;
        t->kind[i] = type == BPE_TOKEN_NORMAL || type == BPE_TOKEN_USER_DEFINED ? PIECE_NORMAL : PIECE_CONTROL;
        if (type == BPE_TOKEN_NORMAL)
            n = byte_level_decode(t->arena + arena, pieces[i], lens[i], cp_to_byte);
        if (n < 0) { /* special and user-defined tokens are written as they are */
            memcpy(t->arena + arena, pieces[i], lens[i]);
            n = (long)lens[i];
        }
        t->len[i] = (size_t)n;
        t->arena[arena + (size_t)n] = '\0';
        arena += lens[i] + 1;
    }
    t->kind[bos_id] = t->kind[eos_id] = PIECE_CONTROL;
    if (tok_index(t) < 0) {
        err_set(e, ERR_SYSTEM, "tokenizer: out of memory");
        tokenizer_free(t);
        return NULL;
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int id = tok_lookup(t, &c, 1);
        if (id < 0 || t->kind[id] != PIECE_NORMAL) {
            err_set(e, ERR_INPUT, "tokenizer: the byte-level vocabulary has no piece for the byte 0x%02X", b);
            tokenizer_free(t);
            return NULL;
        }
        t->byte_id[b] = id;
    }
    if (build_merges(t, n_merges, merges, merge_lens, cp_to_byte, e) < 0) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}
