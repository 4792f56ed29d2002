/* tokenizer_int.h -- what tokenizer.c (the vocabulary, SentencePiece
 * encoding, decoding) shares with tokenizer_bpe.c (byte-level BPE: GPT-2
 * style vocabularies from GGUF).  Not for users of tokenizer.h. */
#ifndef LLM_TOKENIZER_INT_H
#define LLM_TOKENIZER_INT_H

#include <stddef.h>
#include <stdint.h>

enum piece_kind {
    PIECE_NORMAL = 0, /* text: matched by encoding, printed by decoding */
    PIECE_CONTROL,    /* <s>, </s>, <unk>, unused: never matched from text, decoded as nothing */
    PIECE_BYTE,       /* <0xNN>: the byte NN */
};

enum tok_pre {
    TOK_PRE_GPT2 = 0, /* GPT-2's splitting regex */
    TOK_PRE_SMOLLM,   /* every \p{N} alone, then GPT-2's regex (SmolLM's Digits + ByteLevel) */
};

struct tokenizer {
    int vocab_size;
    char *arena;           /* all pieces (as bytes: byte-level BPE pieces decoded), each NUL-terminated */
    size_t *offset;        /* vocab_size: piece i at arena + offset[i] */
    size_t *len;           /* vocab_size */
    float *score;          /* vocab_size */
    unsigned char *kind;   /* vocab_size, enum piece_kind */
    unsigned char *byte;   /* vocab_size: the byte of a PIECE_BYTE */
    int byte_id[256];      /* SentencePiece: the <0xNN> token of each byte; BPE: the one-byte piece; -1 if absent */
    int bos, eos, unk;
    int add_bos;           /* tokenizer_encode adds BOS when asked (GGUF tokenizer.ggml.add_bos_token) */
    int32_t *slots;        /* hash table: id + 1, 0 = empty */
    size_t mask;           /* slots - 1 (a power of two minus one) */

    /* Byte-level BPE (bpe != 0): merges by rank, no dummy prefix. */
    int bpe;
    enum tok_pre pre;
    uint64_t *merge_key;   /* (left id + 1) << 32 | (right id + 1); 0 = empty */
    int32_t *merge_rank;
    int32_t *merge_id;     /* the merged piece */
    size_t merge_mask;
};

const char *tok_piece_of(const struct tokenizer *t, int id);
/* Id of the piece S[0..n), or -1. */
int tok_lookup(const struct tokenizer *t, const char *s, size_t n);
/* "<0xNN>": the byte, else -1. */
int tok_parse_byte_piece(const char *s, size_t n);
/* Build the piece hash table and the byte map (kinds set). */
int tok_index(struct tokenizer *t);
struct tokenizer *tok_alloc(int vocab_size, size_t arena_bytes);

/* BPE: the merge of LEFT and RIGHT: its rank and *ID, or -1. */
int tok_bpe_merge(const struct tokenizer *t, int left, int right, int *id);
/* BPE: bytes of the next pre-tokenizer fragment at S (LEN > 0). */
size_t tok_bpe_fragment(const struct tokenizer *t, const char *s, size_t len);

#endif
