/* SPDX-License-Identifier: MIT */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "unicode.h"

/*
 * Messages reach D-Bus, which takes UTF-8 only: a character cut at the end
 * goes, a byte that is not UTF-8 (quoted from bad input) becomes '?'.
 */
static void make_utf8(char *s)
{
        size_t n = strlen(s);

        for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t k = slm_utf8_decode(s + i, n - i, &cp);
                if (cp != SLM_UNICODE_INVALID) {
                        i += k;
                } else if (n - i < slm_utf8_len((uint8_t)s[i])) {
                        s[i] = 0; /* cut short by the buffer */
                        return;
                } else {
                        s[i++] = '?';
                }
        }
}

int slm_error_set(SlmError *err, int errnum, const char *fmt, ...)
{
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                va_end(ap);
                make_utf8(err->msg);
        }
        return errnum;
}

void slm_error_prefix(SlmError *err, const char *prefix)
{
        char tmp[sizeof(err->msg)];
        int n;

        if (!err)
                return;
        n = snprintf(tmp, sizeof(tmp), "%s: ", prefix);
        if (n < 0 || (size_t)n >= sizeof(tmp))
                return;
        /* the old message may be cut short at the end */
        memcpy(tmp + n, err->msg, sizeof(tmp) - (size_t)n - 1);
        tmp[sizeof(tmp) - 1] = 0;
        memcpy(err->msg, tmp, sizeof(tmp));
        make_utf8(err->msg);
}
