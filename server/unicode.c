/* unicode.c -- see unicode.h. */
#include "config.h"

#include "server/unicode.h"

uint32_t unicode_next(const char *s, size_t len, size_t *adv)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp, min;
    size_t n;

    *adv = 1;
    if (p[0] < 0x80)
        return p[0];
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2, cp = p[0] & 0x1Fu, min = 0x80;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3, cp = p[0] & 0x0Fu, min = 0x800;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4, cp = p[0] & 0x07u, min = 0x10000;
    else
        return UNICODE_INVALID;
    if (len < n)
        return UNICODE_INVALID;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return UNICODE_INVALID;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return UNICODE_INVALID;
    *adv = n;
    return cp;
}

static int in_ranges(const struct unicode_range *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].first)
            hi = mid;
        else if (cp > r[mid].last)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int unicode_is_letter(uint32_t cp)
{
    if (cp < 0x80)
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return cp != UNICODE_INVALID && in_ranges(unicode_letters, unicode_letters_count, cp);
}

int unicode_is_number(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return cp != UNICODE_INVALID && in_ranges(unicode_numbers, unicode_numbers_count, cp);
}

int unicode_is_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}
