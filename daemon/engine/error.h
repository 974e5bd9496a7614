/* SPDX-License-Identifier: MIT */
/*
 * Error reporting for the GLib-free engine: functions return a negative
 * errno and, when given one, fill an SlmError with a message that says
 * what was wrong. The engine never prints.
 */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
        char msg[256]; /* always NUL-terminated */
} SlmError;

/* Fill @err (may be NULL) with the formatted message and return @errnum (negative). */
int slm_error_set(SlmError *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the message already in @err (may be NULL) with @prefix and ": ". */
void slm_error_prefix(SlmError *err, const char *prefix);

#ifdef __cplusplus
}
#endif
