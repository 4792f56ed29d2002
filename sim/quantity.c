/* quantity.c -- see quantity.h.  The number is read exactly (digits into an
 * integer, the decimal point and suffix into powers of ten and two) so that
 * "0.1" and "100m" give exactly 100 milli-units. */
#include "sim/quantity.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define QUANTITY_MAX_MILLI 9200000000000000000LL /* just under INT64_MAX */
#define QUANTITY_MAX_DIGITS 30                     /* significant digits kept */

/* Read the suffix at S: sets the power of ten and power of 1024 it stands
 * for; false when S is not a known suffix or exponent. */
static bool quantity_suffix(const char *s, int *pow10, int *pow1024)
{
    static const struct {
        const char *name;
        int pow10, pow1024;
    } suffixes[] = {
        {"", 0, 0},    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"k", 3, 0},   {"M", 6, 0},
        {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},  {"Ki", 0, 1},  {"Mi", 0, 2},
        {"Gi", 0, 3},  {"Ti", 0, 4},  {"Pi", 0, 5},  {"Ei", 0, 6},
    };
    size_t i;

    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        if (strcmp(s, suffixes[i].name) == 0) {
            *pow10 = suffixes[i].pow10;
            *pow1024 = suffixes[i].pow1024;
            return true;
        }
    if (s[0] == 'e' || s[0] == 'E') {
        const char *p = s + 1;
        char *end;
        long x;

        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        x = strtol(s + 1, &end, 10);
        if (*end != '\0' || x < -100 || x > 100)
            return false;
        *pow10 = (int)x;
        *pow1024 = 0;
        return true;
    }
    return false;
}

int quantity_parse(const char *text, int64_t *out_milli, double *out_value, struct err *e)
{
    const char *p = text;
    bool negative = false, any_digit = false;
    unsigned __int128 mant = 0, num, den = 1;
    int pow10 = 0, suffix10 = 0, suffix1024 = 0, kept = 0, i;
    int64_t milli;
    double value;

    if (text == NULL)
        return err_set(e, ERR_INPUT, "missing quantity");
    if (*p == '+' || *p == '-')
        negative = *p++ == '-';
    for (; isdigit((unsigned char)*p); p++) {
        any_digit = true;
        if (kept < QUANTITY_MAX_DIGITS) {
            mant = mant * 10 + (unsigned)(*p - '0');
            if (mant != 0)
                kept++;
        } else {
            pow10++; /* drop an insignificant digit, keep the magnitude */
        }
    }
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++) {
            any_digit = true;
            if (kept < QUANTITY_MAX_DIGITS) {
                mant = mant * 10 + (unsigned)(*p - '0');
                pow10--;
                if (mant != 0)
                    kept++;
            }
        }
    }
    if (!any_digit || !quantity_suffix(p, &suffix10, &suffix1024))
        return err_set(e, ERR_INPUT, "'%s' is not a quantity (expected e.g. 500m, 2, 1.5, 100Mi, 1k)", text);
    pow10 += suffix10;
    value = (double)mant * pow(10.0, pow10) * pow(1024.0, suffix1024);
    pow10 += 3; /* milli-units */
    /* value = mant * 10^pow10 * 1024^suffix1024, rounded up. */
    num = mant;
    for (i = 0; i < suffix1024; i++)
        num *= 1024;
    for (; pow10 > 0; pow10--) {
        num *= 10;
        if (num > (unsigned __int128)QUANTITY_MAX_MILLI)
            break;
    }
    for (; pow10 < 0 && den < ((unsigned __int128)1 << 100); pow10++)
        den *= 10;
    if (pow10 < 0) /* a tiny fraction: one milli when positive, 0 when zero */
        num = num != 0 ? 1 : 0, den = 1;
    if (num / den + 1 > (unsigned __int128)QUANTITY_MAX_MILLI)
        return err_set(e, ERR_INPUT, "quantity '%s' is too large", text);
    if (negative) /* towards +infinity: truncate the magnitude */
        milli = -(int64_t)(num / den);
    else
        milli = (int64_t)((num + den - 1) / den);
    *out_milli = milli;
    if (out_value != NULL)
        *out_value = negative ? -value : value;
    return 0;
}
