/* SPDX-License-Identifier: MIT */
#include "slmd-error.h"

#include <string.h>

static const GDBusErrorEntry entries[] = {
        { SLMD_ERROR_FAILED, "org.slmd.Slm1.Error.Failed" },
        { SLMD_ERROR_INVALID_ARGUMENT, "org.slmd.Slm1.Error.InvalidArgument" },
        { SLMD_ERROR_NO_MODEL, "org.slmd.Slm1.Error.NoModel" },
        { SLMD_ERROR_INVALID_MODEL, "org.slmd.Slm1.Error.InvalidModel" },
        { SLMD_ERROR_BUSY, "org.slmd.Slm1.Error.Busy" },
        { SLMD_ERROR_QUOTA_EXCEEDED, "org.slmd.Slm1.Error.QuotaExceeded" },
        { SLMD_ERROR_CONTEXT_OVERFLOW, "org.slmd.Slm1.Error.ContextOverflow" },
        { SLMD_ERROR_CANCELLED, "org.slmd.Slm1.Error.Cancelled" },
        { SLMD_ERROR_PERMISSION_DENIED, "org.slmd.Slm1.Error.PermissionDenied" },
        { SLMD_ERROR_THROTTLED, "org.slmd.Slm1.Error.Throttled" },
        { SLMD_ERROR_NOT_FOUND, "org.slmd.Slm1.Error.NotFound" },
};

G_STATIC_ASSERT(G_N_ELEMENTS(entries) == SLMD_N_ERRORS);

GQuark slmd_error_quark(void)
{
        static gsize quark;

        g_dbus_error_register_error_domain("slmd-error-quark", &quark, entries,
                                           G_N_ELEMENTS(entries));
        return (GQuark)quark;
}

char *slmd_format_size(guint64 bytes)
{
        GString *s = g_string_new(NULL);
        g_autofree char *text = g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);

        /* GLib puts a no-break space between the number and the unit */
        for (const char *p = text; *p; p = g_utf8_next_char(p)) {
                if (g_utf8_get_char(p) == 0xa0)
                        g_string_append_c(s, ' ');
                else
                        g_string_append_len(s, p, g_utf8_next_char(p) - p);
        }
        return g_string_free(s, FALSE);
}

GError *slmd_kv_quota_error(guint uid, guint64 want, guint64 limit, const char *with)
{
        g_autofree char *w = slmd_format_size(want);
        g_autofree char *most = slmd_format_size(limit);

        return g_error_new(SLMD_ERROR, SLMD_ERROR_QUOTA_EXCEEDED,
                           "uid %u's sessions would hold %s of KV cache with %s; one user "
                           "may hold %s (user-kv-share in slmd.conf): ask for a smaller "
                           "context-size or close a session",
                           uid, w, with, most);
}

void slmd_set_errno(GError **error, SlmdError code, int r, const char *msg)
{
        if (msg && *msg)
                g_set_error(error, SLMD_ERROR, code, "%s", msg);
        else
                g_set_error(error, SLMD_ERROR, code, "%s", g_strerror(r < 0 ? -r : r));
}
