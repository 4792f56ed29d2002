/* unicode.h -- the little of Unicode that byte-level BPE pre-tokenizers need:
 * UTF-8 decoding that never fails, and the classes GPT-2's splitting regex
 * uses (\p{L}, \p{N}, \s). */
#ifndef LLM_UNICODE_H
#define LLM_UNICODE_H

#include <stddef.h>
#include <stdint.h>

struct unicode_range {
    uint32_t first, last;
};

/* Generated tables (unicode_tables.c), sorted, not overlapping. */
extern const struct unicode_range unicode_letters[];
extern const size_t unicode_letters_count;
extern const struct unicode_range unicode_numbers[];
extern const size_t unicode_numbers_count;

/* The code point at S (LEN > 0 bytes left); *ADV gets its length.  A byte
 * that does not start a valid UTF-8 sequence decodes as UNICODE_INVALID
 * with *ADV = 1, so every byte is consumed exactly once. */
#define UNICODE_INVALID 0xFFFFFFFFu
uint32_t unicode_next(const char *s, size_t len, size_t *adv);

int unicode_is_letter(uint32_t cp); /* general category L* */
int unicode_is_number(uint32_t cp); /* general category N* */
int unicode_is_space(uint32_t cp);  /* the White_Space property (regex \s) */

#endif
