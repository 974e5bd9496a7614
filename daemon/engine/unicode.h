/* SPDX-License-Identifier: MIT */
/* UTF-8 decoding and the few Unicode properties the tokenizers need. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
        uint32_t first, last;
} SlmUnicodeRange;

extern const SlmUnicodeRange slm_unicode_letters[];
extern const size_t slm_unicode_letters_count;
extern const SlmUnicodeRange slm_unicode_numbers[];
extern const size_t slm_unicode_numbers_count;

#define SLM_UNICODE_INVALID 0xFFFFFFFFu

/* Length of the UTF-8 sequence that starts with byte @c (1 for a stray byte). */
size_t slm_utf8_len(uint8_t c);

/*
 * Decode one code point from @s (at most @n bytes) into *ret_cp; returns
 * the bytes used (>= 1). A malformed or truncated sequence decodes as one
 * byte with *ret_cp = SLM_UNICODE_INVALID.
 */
size_t slm_utf8_decode(const char *s, size_t n, uint32_t *ret_cp);

/* Encode @cp into @out (4 bytes of room); returns the length. */
size_t slm_utf8_encode(uint32_t cp, char *out);

/*
 * Length of the longest prefix of @s (n bytes) that does not end inside
 * a character that more bytes could still complete.
 */
size_t slm_utf8_complete_prefix(const char *s, size_t n);

/* Whether the @n bytes at @s are well-formed UTF-8. */
bool slm_utf8_valid(const char *s, size_t n);

bool slm_unicode_is_letter(uint32_t cp);
bool slm_unicode_is_number(uint32_t cp);
bool slm_unicode_is_whitespace(uint32_t cp);

#ifdef __cplusplus
}
#endif
