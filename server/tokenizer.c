/* tokenizer.c -- SentencePiece-style BPE: the vocabulary (from llama2.c's
 * tokenizer.bin or GGUF arrays), encoding, decoding and UTF-8 safe
 * incremental decoding.  See tokenizer.h for the contract.
 *
 * Pieces are stored with SentencePiece's word marker U+2581 ("▁") written
 * as a plain space, as llama2.c's tokenizer.bin has them; GGUF pieces are
 * converted on load.  Lookup is a hash table (xxh3) of piece bytes -> id.
 *
 * Encoding is llama2.c's algorithm -- symbols start as whole UTF-8
 * characters (bytes of characters not in the vocabulary become <0xNN>
 * tokens), then the adjacent pair whose concatenation is the
 * highest-scoring piece is merged, leftmost first on ties, until no pair
 * merges -- but with a priority queue of candidate pairs instead of a
 * rescan after each merge, so long prompts cost O(n log n), not O(n^2). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "server/tokenizer.h"
#include "server/tokenizer_int.h"

/* ---- vocabulary ---------------------------------------------------------------- */

static uint64_t piece_hash(const char *s, size_t n)
{
    return XXH3_64bits(s, n);
}

const char *tok_piece_of(const struct tokenizer *t, int id)
{
    return t->arena + t->offset[id];
}

/* Id of the piece S[0..n), or -1. */
int tok_lookup(const struct tokenizer *t, const char *s, size_t n)
{
    size_t i = (size_t)piece_hash(s, n) & t->mask;

    for (;; i = (i + 1) & t->mask) {
        int32_t v = t->slots[i];
        if (v == 0)
            return -1;
        if (t->len[v - 1] == n && memcmp(tok_piece_of(t, v - 1), s, n) == 0)
            return v - 1;
    }
}

/* "<0xNN>" (upper- or lower-case hex): the byte, else -1. */
int tok_parse_byte_piece(const char *s, size_t n)
{
    unsigned v = 0;

    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else
            return -1;
    }
    return (int)v;
}

/* Build the hash table and byte map once the pieces are in place.  The
 * first of duplicate pieces wins the lookup. */
int tok_index(struct tokenizer *t)
{
    size_t cap = 16;

    while (cap < (size_t)t->vocab_size * 2)
        cap *= 2;
    t->slots = calloc(cap, sizeof *t->slots);
    if (t->slots == NULL)
        return -1;
    t->mask = cap - 1;
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    for (int id = 0; id < t->vocab_size; id++) {
        const char *s = tok_piece_of(t, id);
        size_t i = (size_t)piece_hash(s, t->len[id]) & t->mask;
        int dup = 0;

        if (t->kind[id] == PIECE_BYTE) {
            int b = tok_parse_byte_piece(s, t->len[id]);
            if (b < 0) {
                t->kind[id] = PIECE_CONTROL; /* typed BYTE but not <0xNN>: never emit it */
            } else {
                t->byte[id] = (unsigned char)b;
                if (t->byte_id[b] < 0)
                    t->byte_id[b] = id;
            }
        }
        for (; t->slots[i] != 0; i = (i + 1) & t->mask) {
            int other = t->slots[i] - 1;
            if (t->len[other] == t->len[id] && memcmp(tok_piece_of(t, other), s, t->len[id]) == 0) {
                dup = 1;
                break;
            }
        }
        if (!dup)
            t->slots[i] = id + 1;
    }
    return 0;
}

struct tokenizer *tok_alloc(int vocab_size, size_t arena_bytes)
{
    struct tokenizer *t = calloc(1, sizeof *t);

    if (t == NULL)
        return NULL;
    t->vocab_size = vocab_size;
    t->arena = malloc(arena_bytes > 0 ? arena_bytes : 1);
    t->offset = calloc((size_t)vocab_size, sizeof *t->offset);
    t->len = calloc((size_t)vocab_size, sizeof *t->len);
    t->score = calloc((size_t)vocab_size, sizeof *t->score);
    t->kind = calloc((size_t)vocab_size, 1);
    t->byte = calloc((size_t)vocab_size, 1);
    if (t->arena == NULL || t->offset == NULL || t->len == NULL || t->score == NULL || t->kind == NULL ||
        t->byte == NULL) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

void tokenizer_free(struct tokenizer *t)
{
    if (t == NULL)
        return;
    free(t->arena);
    free(t->offset);
    free(t->len);
    free(t->score);
    free(t->kind);
    free(t->byte);
    free(t->slots);
    free(t->merge_key);
    free(t->merge_rank);
    free(t->merge_id);
    free(t);
}

#define TOKENIZER_MAX_FILE_BYTES (256u << 20)
#define TOKENIZER_MAX_PIECE_BYTES 65536

struct tokenizer *tokenizer_load(const char *path, int vocab_size, struct err *e)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long flen;
    size_t len, off, arena = 0;
    int32_t max_len;
    int n = 0;
    struct tokenizer *t = NULL;
    struct stat st;

    if (f == NULL) {
        err_at(e, path, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        err_at(e, path, 0, "not a regular file");
        goto out;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (flen = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        err_sys(e, errno, "%s: cannot read", path);
        goto out;
    }
    if ((unsigned long)flen > TOKENIZER_MAX_FILE_BYTES) {
        err_at(e, path, 0, "%ld bytes: larger than any tokenizer (limit %u MiB)", flen,
               TOKENIZER_MAX_FILE_BYTES >> 20);
        goto out;
    }
    len = (size_t)flen;
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        err_set(e, ERR_SYSTEM, "%s: out of memory", path);
        goto out;
    }
    if (fread(buf, 1, len, f) != len) {
        err_sys(e, errno, "%s: read", path);
        goto out;
    }
    if (len < 4) {
        err_at(e, path, 0, "truncated: %zu bytes, no header (int32 max_token_length)", len);
        goto out;
    }
    memcpy(&max_len, buf, 4);
    if (max_len <= 0 || max_len > TOKENIZER_MAX_PIECE_BYTES) {
        err_at(e, path, 0, "header: max_token_length %d is not in 1..%d: not a llama2.c tokenizer", max_len,
               TOKENIZER_MAX_PIECE_BYTES);
        goto out;
    }
    /* First pass: validate and count. */
    for (off = 4; vocab_size > 0 ? n < vocab_size : off < len; n++) {
        float score;
        int32_t plen;

        if (len - off < 8) {
            if (vocab_size > 0)
                err_at(e, path, 0, "truncated: token %d of %d: no score and length (file has %zu bytes)", n,
                       vocab_size, len);
            else
                err_at(e, path, 0, "truncated: token %d: %zu stray bytes at the end", n, len - off);
            goto out;
        }
        memcpy(&score, buf + off, 4);
        memcpy(&plen, buf + off + 4, 4);
        if (!isfinite(score)) {
            err_at(e, path, 0, "token %d: score is not a finite number", n);
            goto out;
        }
        if (plen < 0 || plen > TOKENIZER_MAX_PIECE_BYTES) {
            err_at(e, path, 0, "token %d: length %d is not in 0..%d", n, plen, TOKENIZER_MAX_PIECE_BYTES);
            goto out;
        }
        off += 8;
        if ((size_t)plen > len - off) {
            err_at(e, path, 0, "truncated: token %d: %d bytes of text, %zu left in the file", n, plen, len - off);
            goto out;
        }
        off += (size_t)plen;
        arena += (size_t)plen + 1;
        if (n >= (1 << 22)) {
            err_at(e, path, 0, "more than %d tokens", 1 << 22);
            goto out;
        }
    }
    if (n < 3) {
        err_at(e, path, 0, "%d tokens: a llama2.c tokenizer has at least <unk>, <s> and </s>", n);
        goto out;
    }
    t = tok_alloc(n, arena);
    if (t == NULL) {
        err_set(e, ERR_SYSTEM, "%s: out of memory", path);
        goto out;
    }
    arena = 0;
    off = 4;
    for (int i = 0; i < n; i++) {
        int32_t plen;
        memcpy(&t->score[i], buf + off, 4);
        memcpy(&plen, buf + off + 4, 4);
        off += 8;
        t->offset[i] = arena;
        t->len[i] = (size_t)plen;
        memcpy(t->arena + arena, buf + off, (size_t)plen);
        t->arena[arena + (size_t)plen] = '\0';
        arena += (size_t)plen + 1;
        off += (size_t)plen;
        t->kind[i] = tok_parse_byte_piece(tok_piece_of(t, i), t->len[i]) >= 0 ? PIECE_BYTE : PIECE_NORMAL;
    }
    /* llama2.c's convention: 0 <unk>, 1 <s>, 2 </s>. */
    t->unk = 0;
    t->bos = 1;
    t->eos = 2;
    t->add_bos = 1;
    t->kind[0] = t->kind[1] = t->kind[2] = PIECE_CONTROL;
    if (tok_index(t) < 0) {
        err_set(e, ERR_SYSTEM, "%s: out of memory", path);
        tokenizer_free(t);
        t = NULL;
    }
out:
    free(buf);
    fclose(f);
    return t;
}

/* GGUF token types (llama.cpp's llama_token_type). */
enum { GGUF_TOKEN_NORMAL = 1, GGUF_TOKEN_UNKNOWN = 2, GGUF_TOKEN_CONTROL = 3, GGUF_TOKEN_USER_DEFINED = 4,
       GGUF_TOKEN_UNUSED = 5, GGUF_TOKEN_BYTE = 6 };

/* Bytes of S (n) with every U+2581 (E2 96 81) turned into a space. */
static size_t copy_unmark(char *dst, const char *s, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
            (unsigned char)s[i + 2] == 0x81) {
            dst[o++] = ' ';
            i += 2;
        } else {
            dst[o++] = s[i];
        }
    }
    return o;
}

struct tokenizer *tokenizer_from_arrays(int vocab_size, const char *const *pieces, const size_t *lens,
                                        const float *scores, const int *types, int bos_id, int eos_id,
                                        struct err *e)
{
    struct tokenizer *t;
    size_t arena = 0;

    if (vocab_size < 1 || vocab_size > (1 << 22)) {
        err_set(e, ERR_INPUT, "tokenizer: %d tokens: must be 1..%d", vocab_size, 1 << 22);
        return NULL;
    }
    if (bos_id < 0 || bos_id >= vocab_size || eos_id < 0 || eos_id >= vocab_size) {
        err_set(e, ERR_INPUT, "tokenizer: BOS %d or EOS %d is not a token id (vocabulary of %d)", bos_id, eos_id,
                vocab_size);
        return NULL;
    }
    for (int i = 0; i < vocab_size; i++) {
        if (lens[i] > TOKENIZER_MAX_PIECE_BYTES) {
            err_set(e, ERR_INPUT, "tokenizer: token %d: %zu bytes, longer than %d", i, lens[i],
                    TOKENIZER_MAX_PIECE_BYTES);
            return NULL;
        }
        if (scores != NULL && !isfinite(scores[i])) {
            err_set(e, ERR_INPUT, "tokenizer: token %d: score is not a finite number", i);
            return NULL;
        }
        arena += lens[i] + 1;
    }
    t = tok_alloc(vocab_size, arena);
    if (t == NULL) {
        err_set(e, ERR_SYSTEM, "tokenizer: out of memory");
        return NULL;
    }
    arena = 0;
    t->unk = 0;
    t->add_bos = 1;
    for (int i = 0; i < vocab_size; i++) {
        t->offset[i] = arena;
        t->len[i] = copy_unmark(t->arena + arena, pieces[i], lens[i]);
        t->arena[arena + t->len[i]] = '\0';
        arena += lens[i] + 1;
        t->score[i] = scores != NULL ? scores[i] : 0.0f;
        if (types == NULL) {
            t->kind[i] = tok_parse_byte_piece(tok_piece_of(t, i), t->len[i]) >= 0 ? PIECE_BYTE : PIECE_NORMAL;
            continue;
        }
        switch (types[i]) {
        case GGUF_TOKEN_NORMAL:
        case GGUF_TOKEN_USER_DEFINED:
            t->kind[i] = PIECE_NORMAL;
            break;
        case GGUF_TOKEN_BYTE:
            t->kind[i] = PIECE_BYTE;
            break;
        case GGUF_TOKEN_UNKNOWN:
            t->unk = i;
            t->kind[i] = PIECE_CONTROL;
            break;
        default: /* control, unused, anything unknown */
            t->kind[i] = PIECE_CONTROL;
            break;
        }
    }
    t->bos = bos_id;
    t->eos = eos_id;
    t->kind[bos_id] = t->kind[eos_id] = PIECE_CONTROL;
    if (tok_index(t) < 0) {
        err_set(e, ERR_SYSTEM, "tokenizer: out of memory");
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

int tokenizer_vocab_size(const struct tokenizer *t)
{
    return t->vocab_size;
}

int tokenizer_bos(const struct tokenizer *t)
{
    return t->bos;
}

int tokenizer_eos(const struct tokenizer *t)
{
    return t->eos;
}

void tokenizer_set_add_bos(struct tokenizer *t, int add_bos)
{
    t->add_bos = add_bos != 0;
}

int tokenizer_adds_bos(const struct tokenizer *t)
{
    return t->add_bos;
}

int tokenizer_find(const struct tokenizer *t, const char *piece)
{
    return tok_lookup(t, piece, strlen(piece));
}

/* ---- encoding ----------------------------------------------------------------------- */

/* A symbol: a span of the text, linked to its neighbours; len 0 once merged
 * into the symbol on its left. */
struct symbol {
    size_t start, len;
    int prev, next;
    int id;
    int mergeable; /* byte fallbacks and control pieces never merge */
};

/* A candidate merge of symbol LEFT with its right neighbour RIGHT into the
 * piece ID of LEN bytes; stale once either symbol changed. */
struct candidate {
    float score;
    size_t start; /* LEFT's start: leftmost first on equal scores */
    int left, right;
    size_t len;
    int id;
};

struct heap {
    struct candidate *v;
    size_t n, cap;
};

static int cand_before(const struct candidate *a, const struct candidate *b)
{
    return a->score > b->score || (a->score == b->score && a->start < b->start);
}

static int heap_push(struct heap *h, struct candidate c)
{
    size_t i;

    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct candidate *v = realloc(h->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    i = h->n++;
    while (i > 0 && cand_before(&c, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = c;
    return 0;
}

static struct candidate heap_pop(struct heap *h)
{
    struct candidate top = h->v[0], last = h->v[--h->n];
    size_t i = 0;

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const struct candidate *bv = &last;
        if (l < h->n && cand_before(&h->v[l], bv))
            best = l, bv = &h->v[l];
        if (r < h->n && cand_before(&h->v[r], bv))
            best = r;
        if (best == i)
            break;
        h->v[i] = h->v[best];
        i = best;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

/* Push the merge of symbol L with its right neighbour, if that is a piece. */
static int try_pair(const struct tokenizer *t, const char *text, struct symbol *sym, int l, struct heap *h)
{
    int r;
    int id;
    size_t len;

    if (l < 0 || (r = sym[l].next) < 0 || !sym[l].mergeable || !sym[r].mergeable)
        return 0;
    len = sym[l].len + sym[r].len;
    if (t->bpe) { /* the merge list decides, lowest rank first */
        int rank = tok_bpe_merge(t, sym[l].id, sym[r].id, &id);
        if (rank < 0)
            return 0;
        return heap_push(h, (struct candidate){-(float)rank, sym[l].start, l, r, len, id});
    }
    id = tok_lookup(t, text + sym[l].start, len);
    if (id < 0 || t->kind[id] != PIECE_NORMAL)
        return 0;
    return heap_push(h, (struct candidate){t->score[id], sym[l].start, l, r, len, id});
}

/* Append the tokens of TEXT (len bytes, already with any dummy prefix) to
 * OUT from index *N (OUT has room for len more). */
static int encode_span(const struct tokenizer *t, const char *text, size_t len, int *out, int *n)
{
    struct symbol *sym = NULL;
    struct heap h = {0};
    int ns = 0, rc = -1;

    if (len == 0)
        return 0;
    sym = malloc(len * sizeof *sym);
    if (sym == NULL)
        return -1;
    /* Byte-level BPE starts from single bytes. */
    for (size_t i = 0; t->bpe && i < len; i++) {
        int bid = t->byte_id[(unsigned char)text[i]];
        sym[ns] = (struct symbol){i, 1, ns - 1, ns + 1, bid >= 0 ? bid : t->unk, bid >= 0};
        ns++;
    }
    /* SentencePiece: whole UTF-8 characters (a lead byte and up to 3
     * continuation bytes); a character not in the vocabulary becomes one
     * symbol per byte. */
    for (size_t i = 0; !t->bpe && i < len;) {
        size_t cl = 1;
        int id;
        while (i + cl < len && cl < 4 && ((unsigned char)text[i + cl] & 0xC0) == 0x80)
            cl++;
        id = tok_lookup(t, text + i, cl);
        if (id >= 0 && t->kind[id] == PIECE_NORMAL) {
            sym[ns] = (struct symbol){i, cl, ns - 1, ns + 1, id, 1};
            ns++;
        } else {
            for (size_t b = 0; b < cl; b++) {
                int bid = t->byte_id[(unsigned char)text[i + b]];
                sym[ns] = (struct symbol){i + b, 1, ns - 1, ns + 1, bid >= 0 ? bid : t->unk, 0};
                ns++;
            }
        }
        i += cl;
    }
    sym[ns - 1].next = -1;
    for (int i = 0; i + 1 < ns; i++)
        if (try_pair(t, text, sym, i, &h) < 0)
            goto out;
    while (h.n > 0) {
        struct candidate c = heap_pop(&h);
        struct symbol *l = &sym[c.left], *r = &sym[c.right];
        if (l->len == 0 || l->next != c.right || l->len + r->len != c.len)
            continue; /* stale */
        l->len = c.len;
        l->id = c.id;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = c.left;
        r->len = 0;
        if (try_pair(t, text, sym, l->prev, &h) < 0 || try_pair(t, text, sym, c.left, &h) < 0)
            goto out;
    }
    for (int i = 0; i >= 0; i = sym[i].next)
        out[(*n)++] = sym[i].id;
    rc = 0;
out:
    free(h.v);
    free(sym);
    return rc;
}

int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, int bos, int eos, int **ids,
                     int *n, struct err *e)
{
    char *buf = NULL;
    int *out;

    *ids = NULL;
    *n = 0;
    if (len > (size_t)1 << 30)
        return err_set(e, ERR_INPUT, "text of %zu bytes: longer than the 1 GiB the tokenizer takes", len);
    out = malloc((len + 3) * sizeof *out);
    if (out == NULL)
        return err_set(e, ERR_SYSTEM, "tokenizer: out of memory");
    if (bos && t->add_bos)
        out[(*n)++] = t->bos;
    if (t->bpe) { /* pre-tokenizer fragments, each merged on its own; no dummy prefix */
        for (size_t off = 0; off < len;) {
            size_t fl = tok_bpe_fragment(t, text + off, len - off);
            if (encode_span(t, text + off, fl, out, n) < 0)
                goto oom;
            off += fl;
        }
    } else if (len > 0) {
        /* The dummy prefix: SentencePiece sees " text". */
        buf = malloc(len + 1);
        if (buf == NULL)
            goto oom;
        buf[0] = ' ';
        memcpy(buf + 1, text, len);
        if (encode_span(t, buf, len + 1, out, n) < 0)
            goto oom;
        free(buf);
    }
    if (eos)
        out[(*n)++] = t->eos;
    *ids = out;
    return 0;
oom:
    free(buf);
    free(out);
    *n = 0;
    return err_set(e, ERR_SYSTEM, "tokenizer: out of memory");
}

/* ---- decoding ----------------------------------------------------------------------- */

const char *tokenizer_piece(const struct tokenizer *t, int prev, int id, size_t *len)
{
    static const unsigned char bytes[256] = {
#define B4(i) i, i + 1, i + 2, i + 3
#define B16(i) B4(i), B4(i + 4), B4(i + 8), B4(i + 12)
#define B64(i) B16(i), B16(i + 16), B16(i + 32), B16(i + 48)
        B64(0), B64(64), B64(128), B64(192)
#undef B4
#undef B16
#undef B64
    };
    const char *s;

    if (id < 0 || id >= t->vocab_size || t->kind[id] == PIECE_CONTROL) {
        *len = 0;
        return "";
    }
    if (t->kind[id] == PIECE_BYTE) {
        *len = 1;
        return (const char *)&bytes[t->byte[id]];
    }
    s = tok_piece_of(t, id);
    *len = t->len[id];
    if (prev == t->bos && *len > 0 && s[0] == ' ' && !t->bpe) {
        s++;
        (*len)--;
    }
    return s;
}

/* ---- UTF-8 safe incremental decoding --------------------------------------------------- */

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Bytes a character with lead byte B takes, or 0 if B cannot start one. */
static int utf8_length(unsigned char b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 0;
}

/* May B follow the bytes pending (lead byte LEAD, N bytes so far)? */
static int utf8_continues(unsigned char lead, int n, unsigned char b)
{
    if ((b & 0xC0) != 0x80)
        return 0;
    if (n == 1) { /* the second byte has narrower ranges (no overlongs, surrogates, > U+10FFFF) */
        if (lead == 0xE0)
            return b >= 0xA0;
        if (lead == 0xED)
            return b <= 0x9F;
        if (lead == 0xF0)
            return b >= 0x90;
        if (lead == 0xF4)
            return b <= 0x8F;
    }
    return 1;
}

struct out_buf {
    char *p;
    size_t cap, n;
};

static void out_put(struct out_buf *o, const void *s, size_t n)
{
    if (o->cap == 0)
        return;
    if (n > o->cap - 1 - o->n)
        n = o->cap - 1 - o->n;
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = '\0';
}

void detok_init(struct detok *d, const struct tokenizer *t)
{
    memset(d, 0, sizeof *d);
    d->t = t;
    d->prev = -1;
}

static void detok_byte(struct detok *d, unsigned char b, struct out_buf *o)
{
    for (;;) {
        if (d->n_pending == 0) {
            int need = utf8_length(b);
            if (need == 1)
                out_put(o, &b, 1);
            else if (need == 0)
                out_put(o, replacement, 3);
            else
                d->pending[d->n_pending++] = b;
            return;
        }
        if (utf8_continues(d->pending[0], d->n_pending, b)) {
            d->pending[d->n_pending++] = b;
            if (d->n_pending == utf8_length(d->pending[0])) {
                out_put(o, d->pending, (size_t)d->n_pending);
                d->n_pending = 0;
            }
            return;
        }
        /* The pending character is broken: one U+FFFD for it, then B afresh. */
        out_put(o, replacement, 3);
        d->n_pending = 0;
    }
}

size_t detok_push(struct detok *d, int id, char *out, size_t cap)
{
    struct out_buf o = {out, cap, 0};
    size_t len;
    const char *s = tokenizer_piece(d->t, d->prev, id, &len);

    if (cap > 0)
        out[0] = '\0';
    for (size_t i = 0; i < len; i++)
        detok_byte(d, (unsigned char)s[i], &o);
    d->prev = id;
    return o.n;
}

size_t detok_flush(struct detok *d, char *out, size_t cap)
{
    struct out_buf o = {out, cap, 0};

    if (cap > 0)
        out[0] = '\0';
    if (d->n_pending > 0)
        out_put(&o, replacement, 3);
    d->n_pending = 0;
    return o.n;
}
