/* tokenizer.h -- SentencePiece-style BPE (llama2.c's tokenizer.bin and GGUF
 * metadata): encode text to token ids and decode ids to text, and the chat
 * templates that turn a conversation into a prompt.
 *
 * Encoding follows SentencePiece as Llama uses it: a dummy-prefix space is
 * added in front of the text, every UTF-8 character is looked up whole, a
 * character not in the vocabulary falls back to its bytes (<0xNN> tokens),
 * then pairs are merged greedily by score.  Decoding turns <0xNN> back into
 * bytes and drops the leading space after BOS. */
#ifndef LLM_TOKENIZER_H
#define LLM_TOKENIZER_H

#include <stddef.h>

#include "common/err.h"

struct tokenizer;

/* llama2.c's tokenizer.bin: int32 max_token_length, then per token a float32
 * score, an int32 length and the bytes.  VOCAB_SIZE is the model's (the file
 * does not say); VOCAB_SIZE <= 0 reads every token in the file.  BOS is 1,
 * EOS 2, <unk> 0.  Returns NULL with E set on a bad file. */
struct tokenizer *tokenizer_load(const char *path, int vocab_size, struct err *e);

/* From parallel arrays (GGUF tokenizer.ggml.tokens / scores / token_type);
 * the strings are copied, with SentencePiece's U+2581 turned into a space
 * (as tokenizer.bin stores them).  types may be NULL (then <0xNN> pieces are
 * byte tokens, the rest normal); with types, control/unknown/unused tokens
 * are never produced from text and decode to nothing. */
struct tokenizer *tokenizer_from_arrays(int vocab_size, const char *const *pieces, const size_t *lens,
                                        const float *scores, const int *types, int bos_id, int eos_id,
                                        struct err *e);
void tokenizer_free(struct tokenizer *t);

/* Byte-level BPE (GPT-2 style: GGUF tokenizer.ggml.model "gpt2") from GGUF
 * arrays: the pieces in GPT-2's byte-to-unicode spelling, TYPES as in
 * tokenizer_from_arrays, MERGES "left right" in rank order (lowest first),
 * PRE the pre-tokenizer (tokenizer.ggml.pre: "default"/"gpt2" or "smollm";
 * NULL: default), ADD_BOS whether prompts start with BOS.  No dummy prefix,
 * no byte fallback: every byte is a piece of its own. */
struct tokenizer *tokenizer_from_bpe(int vocab_size, const char *const *pieces, const size_t *lens, const int *types,
                                     int n_merges, const char *const *merges, const size_t *merge_lens,
                                     const char *pre, int bos_id, int eos_id, int add_bos, struct err *e);

/* Set whether tokenizer_encode puts BOS first when asked (GGUF
 * tokenizer.ggml.add_bos_token). */
void tokenizer_set_add_bos(struct tokenizer *t, int add_bos);

int tokenizer_vocab_size(const struct tokenizer *t);
/* Does tokenizer_encode put BOS first when asked (1 for tokenizer.bin and
 * SentencePiece GGUF unless tokenizer.ggml.add_bos_token says otherwise)? */
int tokenizer_adds_bos(const struct tokenizer *t);
int tokenizer_bos(const struct tokenizer *t);
int tokenizer_eos(const struct tokenizer *t);
/* Look up a piece exactly ("<|im_end|>"); -1 if absent. */
int tokenizer_find(const struct tokenizer *t, const char *piece);

/* Encode LEN bytes of TEXT (any bytes; invalid UTF-8 falls back to byte
 * tokens) into a new array *IDS of *N ids, with BOS first when BOS is set
 * (and the vocabulary uses one: tokenizer_adds_bos) and EOS last when EOS is
 * set.  Returns 0, or -1 on allocation failure. */
int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, int bos, int eos, int **ids,
                     int *n, struct err *e);

/* The bytes of token ID when it follows token PREV (-1 at the start): the
 * leading space after BOS is dropped, <0xNN> becomes the byte NN, control
 * tokens (BOS, EOS, <unk>) and ids out of range give "" (length 0).  The
 * pointer is into T or a static; *LEN gets the length.  Bytes of a UTF-8
 * character split over tokens come out as they are: a caller printing text
 * piece by piece uses struct detok below. */
const char *tokenizer_piece(const struct tokenizer *t, int prev, int id, size_t *len);

/* Incremental decoding that never emits half a UTF-8 character: push ids,
 * get back only complete characters (a stray invalid byte becomes U+FFFD). */
struct detok {
    const struct tokenizer *t;
    int prev;
    unsigned char pending[8];
    int n_pending;
};
void detok_init(struct detok *d, const struct tokenizer *t);
/* Append the text completed by token ID to OUT (size CAP, always
 * NUL-terminated); returns the bytes written. */
size_t detok_push(struct detok *d, int id, char *out, size_t cap);
/* Flush what is pending at the end (as U+FFFD). */
size_t detok_flush(struct detok *d, char *out, size_t cap);

/* ---- chat templates ------------------------------------------------------ */

enum chat_template {
    CHAT_TEMPLATE_AUTO = 0, /* from the model's metadata, else llama2 */
    CHAT_TEMPLATE_LLAMA2,   /* <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n user [/INST] answer </s> */
    CHAT_TEMPLATE_CHATML,   /* <|im_start|>role\n...<|im_end|>\n ... <|im_start|>assistant\n */
    CHAT_TEMPLATE_RAW,      /* the messages' contents joined by newlines (for tiny story models) */
    CHAT_TEMPLATE_ZEPHYR,   /* <|user|>\n...</s>\n ... <|assistant|>\n (TinyLlama-Chat, Zephyr) */
};

struct chat_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
};

/* Parse "llama2", "chatml", "zephyr", "raw" or "auto"; -1 if unknown. */
int chat_template_parse(const char *name, enum chat_template *out);
/* Pick the template for a model's metadata template text (NULL: llama2). */
enum chat_template chat_template_detect(const char *metadata_template);
const char *chat_template_name(enum chat_template t);

/* Render the conversation and encode it: *IDS (BOS first as the template
 * wants), ready for the assistant's reply.  AUTO renders as llama2: resolve
 * it with chat_template_detect(model->chat_template) first.  Roles are
 * system, user and assistant; llama2 needs user/assistant turns alternating
 * (a system message only first) ending with user.  A bad conversation is
 * ERR_INPUT naming messages[i].  See chat.c for each template's text. */
int chat_encode(const struct tokenizer *t, enum chat_template tmpl, const struct chat_message *msgs, int n_msgs,
                int **ids, int *n, struct err *e);

#endif
