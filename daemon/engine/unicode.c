/* SPDX-License-Identifier: MIT */
#include "unicode.h"

size_t slm_utf8_len(uint8_t c)
{
        if (c < 0x80)
                return 1;
        if ((c & 0xe0) == 0xc0)
                return 2;
        if ((c & 0xf0) == 0xe0)
                return 3;
        if ((c & 0xf8) == 0xf0)
                return 4;
        return 1;
}

size_t slm_utf8_decode(const char *s, size_t n, uint32_t *ret_cp)
{
        const uint8_t *u = (const uint8_t *)s;
        size_t len = slm_utf8_len(u[0]);
        uint32_t cp;

        if (len == 1) {
                *ret_cp = u[0] < 0x80 ? u[0] : SLM_UNICODE_INVALID;
                return 1;
        }
        if (len > n)
                goto bad;
        cp = u[0] & (0x7f >> len);
        for (size_t i = 1; i < len; i++) {
                if ((u[i] & 0xc0) != 0x80)
                        goto bad;
                cp = (cp << 6) | (u[i] & 0x3f);
        }
        /* overlong forms, surrogates and values past U+10FFFF are malformed */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                goto bad;
        *ret_cp = cp;
        return len;
bad:
        *ret_cp = SLM_UNICODE_INVALID;
        return 1;
}

size_t slm_utf8_encode(uint32_t cp, char *out)
{
        uint8_t *o = (uint8_t *)out;

        if (cp < 0x80) {
                o[0] = (uint8_t)cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (uint8_t)(0xc0 | (cp >> 6));
                o[1] = (uint8_t)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (uint8_t)(0xe0 | (cp >> 12));
                o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
                o[2] = (uint8_t)(0x80 | (cp & 0x3f));
                return 3;
        }
        o[0] = (uint8_t)(0xf0 | (cp >> 18));
        o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (uint8_t)(0x80 | (cp & 0x3f));
        return 4;
}

size_t slm_utf8_complete_prefix(const char *s, size_t n)
{
        const uint8_t *u = (const uint8_t *)s;

        /* look back at most 3 bytes for the start of an unfinished character */
        for (size_t back = 1; back <= 3 && back <= n; back++) {
                uint8_t c = u[n - back];
                if ((c & 0xc0) == 0x80)
                        continue; /* continuation byte: keep looking */
                size_t len = slm_utf8_len(c);
                return len > back ? n - back : n;
        }
        return n;
}

bool slm_utf8_valid(const char *s, size_t n)
{
        size_t i = 0;
        uint32_t cp;

        while (i < n) {
                i += slm_utf8_decode(s + i, n - i, &cp);
                if (cp == SLM_UNICODE_INVALID)
                        return false;
        }
        return true;
}

static bool in_ranges(const SlmUnicodeRange *r, size_t n, uint32_t cp)
{
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (cp < r[mid].first)
                        hi = mid;
                else if (cp > r[mid].last)
                        lo = mid + 1;
                else
                        return true;
        }
        return false;
}

bool slm_unicode_is_letter(uint32_t cp)
{
        if (cp < 0x80)
                return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
        return in_ranges(slm_unicode_letters, slm_unicode_letters_count, cp);
}

bool slm_unicode_is_number(uint32_t cp)
{
        if (cp < 0x80)
                return cp >= '0' && cp <= '9';
        return in_ranges(slm_unicode_numbers, slm_unicode_numbers_count, cp);
}

bool slm_unicode_is_whitespace(uint32_t cp)
{
        /* the White_Space property */
        return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 ||
               cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
               cp == 0x202f || cp == 0x205f || cp == 0x3000;
}
