/* SPDX-License-Identifier: MIT */
/* D-Bus errors of slmd: one enum, registered as org.slmd.Slm1.Error.* names. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
        SLMD_ERROR_FAILED,
        SLMD_ERROR_INVALID_ARGUMENT,
        SLMD_ERROR_NO_MODEL,
        SLMD_ERROR_INVALID_MODEL,
        SLMD_ERROR_BUSY,
        SLMD_ERROR_QUOTA_EXCEEDED,
        SLMD_ERROR_CONTEXT_OVERFLOW,
        SLMD_ERROR_CANCELLED,
        SLMD_ERROR_PERMISSION_DENIED,
        SLMD_ERROR_THROTTLED,
        SLMD_ERROR_NOT_FOUND,
        SLMD_N_ERRORS,
} SlmdError;

#define SLMD_ERROR slmd_error_quark()
GQuark slmd_error_quark(void);

/* Set @error from a negative errno of the engine, with @msg (may be NULL) for context. */
void slmd_set_errno(GError **error, SlmdError code, int r, const char *msg);

/* @bytes for a message, "640.0 KiB": IEC units, a plain space before them. */
char *slmd_format_size(guint64 bytes);
/* QuotaExceeded: @uid's sessions would hold @want bytes of KV cache with @with, past @limit. */
GError *slmd_kv_quota_error(guint uid, guint64 want, guint64 limit, const char *with);

G_END_DECLS
