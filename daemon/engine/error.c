/* SPDX-License-Identifier: MIT */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int slm_error_set(SlmError *err, int errnum, const char *fmt, ...)
{
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                va_end(ap);
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
}
