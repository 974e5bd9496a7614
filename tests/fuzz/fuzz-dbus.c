/* SPDX-License-Identifier: MIT */
/*
 * A D-Bus fuzzer for slmd: clients on the daemon's bus send seeded random
 * sequences of every method of org.slmd.Slm1.Manager and
 * org.slmd.Slm1.Session (right and wrong signatures, empty, huge and
 * invalid UTF-8 strings, NaN and extreme numbers, unknown and wrongly typed
 * options, calls on closed and foreign sessions, calls that overlap,
 * clients that vanish mid-call) and then check that the daemon survived
 * whole: alive, answering, Sessions counting only live sessions, and its
 * descriptors and resident memory back near where they started.
 *
 *   fuzz-dbus --address ADDR --pid PID --model FILE [--model FILE...]
 *             [--seed S] [--runs R] [--calls N] [--clients K] [--rss-slack PCT]
 *             [--foreign-uid UID]
 *
 * Each run prints its seed and what it saw; a failed run says how to
 * replay it (--seed S --runs 1 with the same --calls and --clients). The
 * seed fixes what is sent; which calls overlap also depends on timing, so
 * a replay may need a few tries. With --foreign-uid (as root) that user
 * runs a campaign of its own beside each run.
 * Exit status 0: every run passed; 1: a check failed; 2: usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "../proc-status.h"

#define BUS_NAME     "org.slmd.Slm1"
#define MANAGER_PATH "/org/slmd/Slm1"
#define MANAGER      "org.slmd.Slm1.Manager"
#define SESSION      "org.slmd.Slm1.Session"
#define PROPERTIES   "org.freedesktop.DBus.Properties"
#define MAX_INFLIGHT 24
#define CALL_MS      60000 /* a call unanswered this long means the daemon hangs */
#define MAX_CLIENTS  16

typedef struct {
        GDBusConnection *conn;
        GPtrArray *live; /* char *: sessions this client created and has not closed */
        gboolean gone;   /* closed by us, or dropped by the bus */
} Client;

typedef struct {
        guint ok;
        GHashTable *errors; /* error name -> count */
} Stat;

typedef struct {
        GRand *rng;
        const char *address;
        pid_t pid;
        char **models;
        guint n_models;
        Client clients[MAX_CLIENTS];
        guint n_clients;
        GPtrArray *paths; /* every session path seen, for closed and foreign calls */
        GPtrArray *names; /* model names worth trying */
        GHashTable *stats;
        GPtrArray *unexpected; /* char *: what should not have happened */
        GPtrArray *failed_msgs;
        guint inflight, calls, vanished, budget;
        gboolean follow_up; /* the call continues a session: nothing new is likelier */
} Fuzz;

typedef struct {
        Fuzz *f;
        Client *c;
        char *method;
        gboolean create, close; /* CreateSession / Close: the live set follows the reply */
        gboolean session;       /* a call on a session: a reply may bring the next one */
        char *path;
} Call;

static void session_call(Fuzz *f, Client *c, const char *path);

/* ---- random values ------------------------------------------------------------------------- */

static guint pick(Fuzz *f, guint n)
{
        return (guint)g_rand_int_range(f->rng, 0, (gint32)n);
}

static gboolean chance(Fuzz *f, double p)
{
        return g_rand_double(f->rng) < p;
}

static const char *const words[] = { "Once", "upon",  "a",    "time", "there", "was", "little",
                                     "girl", "named", "Lily", "she",  "liked", "to",  "play",
                                     "\n",   ".",     ",",    "!",    "?",     "the", "dog" };

/* A valid UTF-8 string: empty, words, random characters, or huge (past the daemon's limit). */
static char *rand_text(Fuzz *f)
{
        GString *s = g_string_new(NULL);
        guint kind = f->follow_up && chance(f, 0.4) ? 0 : pick(f, 20);

        if (kind <= 2) /* empty: a request with nothing to evaluate */
                return g_string_free(s, FALSE);
        if (kind == 3) { /* huge: around the 1 MiB limit, on either side */
                gsize n = (1u << 20) - 64 + pick(f, 128);
                if (chance(f, 0.3))
                        n = 4u << 20;
                g_string_set_size(s, n);
                memset(s->str, "ab "[pick(f, 3)], n);
                return g_string_free(s, FALSE);
        }
        if (kind == 4) { /* random code points, NUL excepted */
                guint n = pick(f, 64);
                for (guint i = 0; i < n; i++) {
                        gunichar c = (gunichar)g_rand_int_range(f->rng, 1, 0x10ffff);
                        if (g_unichar_validate(c))
                                g_string_append_unichar(s, c);
                }
                return g_string_free(s, FALSE);
        }
        if (kind == 5) { /* control characters and special-token look-alikes */
                static const char *const odd[] = { "<s>", "</s>", "<|im_start|>", "<unk>",
                                                   "\t",  "\r",   "\x01",         "[INST]" };
                guint n = 1 + pick(f, 8);
                for (guint i = 0; i < n; i++)
                        g_string_append(s, odd[pick(f, G_N_ELEMENTS(odd))]);
                return g_string_free(s, FALSE);
        }
        guint n = 1 + pick(f, kind < 8 ? 200 : 12);
        for (guint i = 0; i < n; i++) {
                if (i)
                        g_string_append_c(s, ' ');
                g_string_append(s, words[pick(f, G_N_ELEMENTS(words))]);
        }
        return g_string_free(s, FALSE);
}

static GVariant *rand_string(Fuzz *f)
{
        g_autofree char *t = rand_text(f);
        return g_variant_new_string(t);
}

static guint32 rand_u32(Fuzz *f)
{
        static const guint32 edge[] = {
                0,        1,          2,          3,    8,     15,       16,
                17,       255,        512,        4096, 65536, 1u << 20, (1u << 20) + 1,
                1u << 24, G_MAXINT32, G_MAXUINT32
        };
        return chance(f, 0.7) ? edge[pick(f, G_N_ELEMENTS(edge))] : g_rand_int(f->rng);
}

static double rand_double(Fuzz *f)
{
        static const double edge[] = { 0.0,    -0.0, 1.0,   -1.0,  0.5,    0.9,
                                       1e-300, 2.0,  100.0, 1e308, -1e308, 5e-324 };
        guint k = pick(f, 16);
        if (k < G_N_ELEMENTS(edge))
                return edge[k];
        if (k == 12)
                return NAN;
        if (k == 13)
                return INFINITY;
        if (k == 14)
                return -INFINITY;
        return g_rand_double_range(f->rng, 0.0, 2.0);
}

/* A value of a random type: for options and bodies of the wrong type. */
static GVariant *rand_value(Fuzz *f, guint depth)
{
        switch (pick(f, depth > 2 ? 9 : 12)) {
        case 0:
                return g_variant_new_boolean(chance(f, 0.5));
        case 1:
                return g_variant_new_byte((guchar)pick(f, 256));
        case 2:
                return g_variant_new_int32((gint32)g_rand_int(f->rng));
        case 3:
                return g_variant_new_uint32(rand_u32(f));
        case 4:
                return g_variant_new_int64(-(gint64)g_rand_int(f->rng));
        case 5:
                return g_variant_new_uint64(((guint64)g_rand_int(f->rng) << 32) |
                                            g_rand_int(f->rng));
        case 6:
                return g_variant_new_double(rand_double(f));
        case 7:
                return g_variant_new_object_path(MANAGER_PATH);
        case 8: {
                g_autofree char *t = rand_text(f);
                if (strlen(t) > 4096)
                        t[4096] = 0;
                return g_variant_new_string(t);
        }
        case 9: {
                GVariantBuilder b;
                g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
                for (guint i = pick(f, 20); i > 0; i--) {
                        g_autofree char *t = rand_text(f);
                        if (strlen(t) > 2048)
                                t[2048] = 0;
                        g_variant_builder_add(&b, "s", t);
                }
                return g_variant_builder_end(&b);
        }
        case 10:
                return g_variant_new_variant(rand_value(f, depth + 1));
        default: {
                GVariantBuilder b;
                g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&b, "{sv}", "x", rand_value(f, depth + 1));
                return g_variant_builder_end(&b);
        }
        }
}

/* Options: known keys with the right or a wrong type, unknown keys, repeated keys. */
/* A JSON Schema, GBNF grammar or tools array: good, bad, or mangled. */
static GVariant *structured(Fuzz *f, const char *key)
{
        static const char *const schemas[] = {
                "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\", "
                "\"minimum\": -5, \"maximum\": 50}}, \"required\": [\"a\"]}",
                "{\"enum\": [\"x\", 1, null, [true]]}",
                "{\"type\": \"array\", \"items\": {\"type\": \"string\", \"maxLength\": 3}, "
                "\"maxItems\": 4}",
                "{\"$ref\": \"#/$defs/n\", \"$defs\": {\"n\": {\"anyOf\": [{\"type\": \"null\"}, "
                "{\"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/n\"}}]}}}",
                "{\"type\": \"string\", \"pattern\": \"x\"}",
                "{\"type\": \"integer\", \"minimum\": 1e300}",
                "{}",
                "[",
        };
        static const char *const grammars[] = {
                "root ::= [a-z]+ \".\"",
                "root ::= \"(\" root \")\" | \"\"",
                "root ::= x\nx ::= x \"a\"",
                "root ::= [^\\x00]{0,1000}",
                "root ::= (\"a\" | \"a\" | \"a\")*",
                "root ::= \"\\U0010FFFF\" \"\\xZZ\"",
                "root ::=",
        };
        static const char *const tools[] = {
                "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": "
                "{\"type\": \"object\", \"properties\": {}}}}]",
                "[]",
                "{}",
                "[1, 2",
        };
        if (chance(f, 0.2))
                return rand_string(f);
        if (!strcmp(key, "json-schema"))
                return g_variant_new_string(schemas[pick(f, G_N_ELEMENTS(schemas))]);
        if (!strcmp(key, "grammar"))
                return g_variant_new_string(grammars[pick(f, G_N_ELEMENTS(grammars))]);
        return g_variant_new_string(tools[pick(f, G_N_ELEMENTS(tools))]);
}

static GVariant *rand_options(Fuzz *f, const char *const *keys, guint n_keys)
{
        GVariantBuilder b;
        guint n = chance(f, 0.3) ? 0 : pick(f, 5);

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        for (guint i = 0; i < n; i++) {
                const char *key = chance(f, 0.9) ? keys[pick(f, n_keys)] : "bogus-option";
                GVariant *v;
                if (chance(f, 0.2))
                        v = rand_value(f, 0);
                else if (!strcmp(key, "max-tokens"))
                        v = g_variant_new_uint32(chance(f, 0.8) ? 1 + pick(f, 40) : rand_u32(f));
                else if (!strcmp(key, "top-k") || !strcmp(key, "context-size"))
                        v = g_variant_new_uint32(rand_u32(f));
                else if (!strcmp(key, "sha256"))
                        /* 64 hex digits (of some other file) as often as not */
                        v = chance(f, 0.5)
                                ? g_variant_new_string("00112233445566778899aabbccddeef"
                                                       "f00112233445566778899aabbccddeeff")
                                : rand_string(f);
                else if (!strcmp(key, "seed"))
                        v = g_variant_new_uint64(g_rand_int(f->rng));
                else if (!strcmp(key, "json-schema") || !strcmp(key, "grammar") ||
                         !strcmp(key, "tools"))
                        v = structured(f, key);
                else if (!strcmp(key, "stop") || !strcmp(key, "system-prompt") ||
                         !strcmp(key, "priority"))
                        v = !strcmp(key, "stop") ? rand_value(f, 2)
                            : !strcmp(key, "priority")
                                ? g_variant_new_string((const char *[]){ "interactive", "normal",
                                                                         "background", "urgent",
                                                                         "" }[pick(f, 5)])
                                : rand_string(f);
                else
                        v = g_variant_new_double(rand_double(f));
                if (!strcmp(key, "stop") && !g_variant_is_of_type(v, G_VARIANT_TYPE("as")) &&
                    chance(f, 0.7)) {
                        g_variant_unref(g_variant_ref_sink(v));
                        const char *stops[] = { ".", "Lily", "" };
                        v = g_variant_new_strv(stops, 1 + pick(f, 3));
                }
                g_variant_builder_add(&b, "{sv}", key, v);
        }
        return g_variant_builder_end(&b);
}

static const char *const gen_keys[] = { "max-tokens",
                                        "temperature",
                                        "top-k",
                                        "top-p",
                                        "min-p",
                                        "repeat-penalty",
                                        "frequency-penalty",
                                        "presence-penalty",
                                        "seed",
                                        "stop",
                                        "json-schema",
                                        "grammar",
                                        "tools" };
static const char *const session_keys[] = { "system-prompt", "priority", "context-size" };
static const char *const import_keys[] = { "sha256" };

/* A body of a random signature, almost never the right one. */
static GVariant *rand_body(Fuzz *f)
{
        guint n = pick(f, 4);
        GVariant *items[3];

        for (guint i = 0; i < n && i < 3; i++)
                items[i] = rand_value(f, 0);
        return g_variant_new_tuple(items, MIN(n, 3));
}

/* ---- bookkeeping --------------------------------------------------------------------------- */

static Stat *stat_for(Fuzz *f, const char *method)
{
        Stat *s = g_hash_table_lookup(f->stats, method);

        if (!s) {
                s = g_new0(Stat, 1);
                s->errors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
                g_hash_table_insert(f->stats, g_strdup(method), s);
        }
        return s;
}

static void stat_free(gpointer p)
{
        Stat *s = p;

        g_hash_table_unref(s->errors);
        g_free(s);
}

static void count_error(Fuzz *f, const char *method, const char *name)
{
        Stat *s = stat_for(f, method);
        gpointer n = g_hash_table_lookup(s->errors, name);

        g_hash_table_insert(s->errors, g_strdup(name), GUINT_TO_POINTER(GPOINTER_TO_UINT(n) + 1));
}

static gboolean expected_error(const char *name)
{
        static const char *const ok[] = {
                "org.freedesktop.DBus.Error.InvalidArgs",
                "org.freedesktop.DBus.Error.UnknownMethod",
                "org.freedesktop.DBus.Error.UnknownObject",
                "org.freedesktop.DBus.Error.UnknownInterface",
                "org.freedesktop.DBus.Error.UnknownProperty",
                "org.freedesktop.DBus.Error.PropertyReadOnly",
                "org.freedesktop.DBus.Error.AccessDenied",
                "org.freedesktop.DBus.Error.LimitsExceeded",
        };
        /* slmd's own errors, Failed included (a name taken): its messages are printed */
        if (g_str_has_prefix(name, "org.slmd.Slm1.Error."))
                return TRUE;
        for (guint i = 0; i < G_N_ELEMENTS(ok); i++)
                if (!strcmp(name, ok[i]))
                        return TRUE;
        return FALSE;
}

static void client_open(Fuzz *f, Client *c)
{
        g_autoptr(GError) error = NULL;

        c->conn = g_dbus_connection_new_for_address_sync(
            f->address,
            G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
            NULL, NULL, &error);
        if (!c->conn)
                g_error("cannot connect to %s: %s", f->address, error->message);
        g_dbus_connection_set_exit_on_close(c->conn, FALSE);
        c->live = g_ptr_array_new_with_free_func(g_free);
        c->gone = FALSE;
}

/* The client leaves the bus, mid-call or not; a new one takes its place. */
static void client_vanish(Fuzz *f, Client *c)
{
        if (!c->gone)
                g_dbus_connection_close_sync(c->conn, NULL, NULL);
        g_clear_object(&c->conn);
        g_ptr_array_unref(c->live);
        f->vanished++;
        client_open(f, c);
}

static void call_done(GObject *source, GAsyncResult *res, gpointer data)
{
        Call *call = data;
        Fuzz *f = call->f;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_finish(
            G_DBUS_CONNECTION(source), NULL, res, &error);

        f->inflight--;
        if (reply) {
                stat_for(f, call->method)->ok++;
                /*
                 * A client goes on where it was, as apps do: the next request on the
                 * same session once this one is answered (an empty Append after
                 * text, a Cancel while a generation streams, ...).
                 */
                if (call->session && G_DBUS_CONNECTION(source) == call->c->conn &&
                    f->calls < f->budget && chance(f, 0.5)) {
                        f->follow_up = TRUE;
                        session_call(f, call->c, call->path);
                        f->follow_up = FALSE;
                }
                if (call->create && G_DBUS_CONNECTION(source) == call->c->conn) {
                        const char *path;
                        g_variant_get(reply, "(&o)", &path);
                        g_ptr_array_add(call->c->live, g_strdup(path));
                        g_ptr_array_add(f->paths, g_strdup(path));
                }
                if (call->close && G_DBUS_CONNECTION(source) == call->c->conn)
                        for (guint i = 0; i < call->c->live->len; i++)
                                if (!strcmp(call->c->live->pdata[i], call->path)) {
                                        g_ptr_array_remove_index_fast(call->c->live, i);
                                        break;
                                }
        } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
                   g_dbus_connection_is_closed(G_DBUS_CONNECTION(source))) {
                count_error(f, call->method, "(our connection closed)");
        } else {
                g_autofree char *name = g_dbus_error_get_remote_error(error);
                const char *n = name ? name : "(local error)";
                count_error(f, call->method, n);
                if (!name || !expected_error(name))
                        g_ptr_array_add(f->unexpected,
                                        g_strdup_printf("%s: %s", call->method, error->message));
                else if (!strcmp(name, "org.slmd.Slm1.Error.Failed") && f->failed_msgs->len < 8) {
                        g_dbus_error_strip_remote_error(error);
                        g_ptr_array_add(f->failed_msgs,
                                        g_strdup_printf("%s: %s", call->method, error->message));
                }
        }
        g_free(call->method);
        g_free(call->path);
        g_free(call);
}

static void send_call(Fuzz *f, Client *c, const char *path, const char *iface, const char *method,
                      GVariant *params, GUnixFDList *fds)
{
        Call *call = g_new0(Call, 1);

        call->f = f;
        call->c = c;
        call->method = g_strdup(method);
        call->path = g_strdup(path);
        /* a wrong-signature body may be the right one after all: follow the method */
        call->create = !strcmp(method, "CreateSession") && !strcmp(iface, MANAGER);
        call->close = !strcmp(method, "Close") && !strcmp(iface, SESSION);
        call->session = !strcmp(iface, SESSION);
        f->inflight++;
        f->calls++;
        g_dbus_connection_call_with_unix_fd_list(c->conn, BUS_NAME, path, iface, method, params,
                                                 NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_MS,
                                                 fds, NULL, call_done, call);
}

/*
 * A string the bus must refuse: invalid UTF-8. GDBus will not write one, so
 * this client speaks the wire protocol itself on a socket of its own:
 * EXTERNAL authentication, Hello, then a valid Append whose string is
 * patched in place. The bus drops the connection that sent it; slmd must
 * never see it, and must cope with a client that vanished.
 */
static void send_invalid_utf8(Fuzz *f)
{
        static const char *const bad[] = { "\xc3", "\xff", "\xed", "\xc0" };
        const char *path = g_str_has_prefix(f->address, "unix:path=") ? f->address + 10 : NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        g_autoptr(GDBusMessage) hello = NULL, msg = NULL;
        g_autofree guchar *b1 = NULL, *b2 = NULL;
        g_autofree char *auth = NULL, *text = NULL;
        gsize n1 = 0, n2 = 0;
        char buf[512];
        int fd;

        if (!path || strlen(path) >= sizeof(sa.sun_path))
                return;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                if (fd >= 0)
                        close(fd);
                return;
        }
        g_autofree char *uid = g_strdup_printf("%u", (unsigned)getuid());
        g_autoptr(GString) hex = g_string_new(NULL);
        for (const char *p = uid; *p; p++)
                g_string_append_printf(hex, "%02x", (unsigned char)*p);
        auth = g_strdup_printf("AUTH EXTERNAL %s\r\n", hex->str);
        hello = g_dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                               "org.freedesktop.DBus", "Hello");
        g_dbus_message_set_serial(hello, 1);
        /* a placeholder byte of its own, patched to the bad byte after serialization */
        text = g_strdup_printf("Once %c upon", 0x7f);
        msg = g_dbus_message_new_method_call(BUS_NAME, "/org/slmd/Slm1/session/1", SESSION,
                                             chance(f, 0.5) ? "Append" : "Suggest");
        g_dbus_message_set_body(msg, chance(f, 0.5) ? g_variant_new("(s)", text)
                                                    : g_variant_new("(su)", text, 3));
        g_dbus_message_set_serial(msg, 2);
        b1 = g_dbus_message_to_blob(hello, &n1, G_DBUS_CAPABILITY_FLAGS_NONE, NULL);
        b2 = g_dbus_message_to_blob(msg, &n2, G_DBUS_CAPABILITY_FLAGS_NONE, NULL);
        guchar *hole = b2 ? memchr(b2, 0x7f, n2) : NULL;
        if (b1 && hole) {
                *hole = (guchar)bad[pick(f, G_N_ELEMENTS(bad))][0];
                if (write(fd, "", 1) == 1 && write(fd, auth, strlen(auth)) > 0 &&
                    read(fd, buf, sizeof(buf)) > 0 && strncmp(buf, "OK", 2) == 0 &&
                    write(fd, "BEGIN\r\n", 7) == 7 && write(fd, b1, n1) == (ssize_t)n1 &&
                    write(fd, b2, n2) == (ssize_t)n2) {
                        /* the bus answers Hello, then closes on us */
                        struct timeval tv = { 5, 0 };
                        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                        while (read(fd, buf, sizeof(buf)) > 0)
                                ;
                }
        }
        close(fd);
        count_error(f, "(invalid UTF-8)", "sent");
        f->calls++;
}

/* ---- one random action --------------------------------------------------------------------- */

static const char *rand_session_path(Fuzz *f, Client *c)
{
        guint k = pick(f, 10);

        if (k < 8 && c->live->len)
                return c->live->pdata[pick(f, c->live->len)]; /* our own, live */
        if (k < 9 && f->paths->len)
                return f->paths->pdata[pick(f, f->paths->len)]; /* closed or foreign */
        return k == 9 ? "/org/slmd/Slm1/session/0" : "/org/slmd/Slm1/session/999999";
}

static const char *rand_model_name(Fuzz *f)
{
        if (chance(f, 0.1))
                return (const char *[]){ "", "../etc", ".hidden", "a/b", "no-such" }[pick(f, 5)];
        return f->names->pdata[pick(f, f->names->len)];
}

static void import(Fuzz *f, Client *c)
{
        g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
        g_autofree char *name = NULL;
        gint32 handle = 0;
        int fd = -1;
        guint k = pick(f, 10);

        if (k < 5) {
                fd = open(f->models[pick(f, f->n_models)], O_RDONLY | O_CLOEXEC);
        } else if (k < 7) { /* not a model: a pipe with a little junk, or /dev/null */
                int p[2];
                if (k == 5 && pipe(p) == 0) {
                        (void)!write(p[1], "GGUF\x03\0\0\0junk", 12);
                        close(p[1]);
                        fd = p[0];
                } else {
                        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                }
        } else if (k == 7) {
                fd = open(f->models[0], O_RDONLY | O_CLOEXEC); /* positioned past the header */
                if (fd >= 0)
                        (void)!lseek(fd, 4096, SEEK_SET);
        }
        if (fd >= 0) {
                handle = g_unix_fd_list_append(fds, fd, NULL);
                close(fd);
        }
        if (k == 8)
                handle = (gint32)g_rand_int(f->rng); /* an index with no descriptor */
        if (chance(f, 0.5))
                name = g_strdup_printf("fuzz-%u", pick(f, 6));
        else
                name = g_strdup(rand_model_name(f));
        if (chance(f, 0.5) && strlen(name) && name[0] != '.' && !strchr(name, '/'))
                g_ptr_array_add(f->names, g_strdup(name));
        GVariant *opts =
            chance(f, 0.8) ? g_variant_new("a{sv}", NULL) : rand_options(f, import_keys, 1);
        send_call(f, c, MANAGER_PATH, MANAGER, "ImportModel",
                  g_variant_new("(hs@a{sv})", handle, name, opts), fds);
}

static void session_call(Fuzz *f, Client *c, const char *path)
{
        guint k = pick(f, 100);

        if (k < 14) {
                g_autofree char *t = rand_text(f);
                send_call(f, c, path, SESSION, "Append", g_variant_new("(s)", t), NULL);
        } else if (k < 34) {
                g_autofree char *t = rand_text(f);
                send_call(f, c, path, SESSION, "Generate",
                          g_variant_new("(s@a{sv})", t,
                                        rand_options(f, gen_keys, G_N_ELEMENTS(gen_keys))),
                          NULL);
        } else if (k < 44) {
                GVariantBuilder b;
                g_variant_builder_init(&b, G_VARIANT_TYPE("a(ss)"));
                for (guint i = pick(f, 5); i > 0; i--) {
                        g_autofree char *t = rand_text(f);
                        const char *role = (const char *[]){ "system", "user", "assistant",
                                                             "user",   "tool", "" }[pick(f, 6)];
                        g_variant_builder_add(&b, "(ss)", role, t);
                }
                send_call(f, c, path, SESSION, "Chat",
                          g_variant_new("(a(ss)@a{sv})", &b,
                                        rand_options(f, gen_keys, G_N_ELEMENTS(gen_keys))),
                          NULL);
        } else if (k < 50) {
                /* the whole conversation as dictionaries, keys right and wrong */
                static const char *const keys[] = { "role", "content", "tool-calls", "tool-call-id",
                                                    "name" };
                GVariantBuilder b;
                g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
                for (guint i = pick(f, 5); i > 0; i--) {
                        GVariantBuilder m;
                        g_variant_builder_init(&m, G_VARIANT_TYPE("a{sv}"));
                        g_variant_builder_add(
                            &m, "{sv}", "role",
                            g_variant_new_string((const char *[]){ "system", "user", "assistant",
                                                                   "tool", "" }[pick(f, 5)]));
                        for (guint j = pick(f, 3); j > 0; j--) {
                                /* an unknown key now and then */
                                const char *key = keys[chance(f, 0.1) ? 4 : pick(f, 4)];
                                g_autofree char *t = rand_text(f);
                                GVariant *v = !strcmp(key, "tool-calls") && chance(f, 0.6)
                                                  ? g_variant_new_string(
                                                        "[{\"type\": \"function\", \"id\": "
                                                        "\"abc123XYZ\", \"function\": {\"name\": "
                                                        "\"f\", \"arguments\": {}}}]")
                                              : chance(f, 0.9) ? g_variant_new_string(t)
                                                               : rand_value(f, 0);
                                g_variant_builder_add(&m, "{sv}", key, v);
                        }
                        g_variant_builder_add_value(&b, g_variant_builder_end(&m));
                }
                send_call(f, c, path, SESSION, "ChatMessages",
                          g_variant_new("(aa{sv}@a{sv})", &b,
                                        rand_options(f, gen_keys, G_N_ELEMENTS(gen_keys))),
                          NULL);
        } else if (k < 60) {
                g_autofree char *t = rand_text(f);
                send_call(f, c, path, SESSION, "Suggest",
                          g_variant_new("(su)", t, chance(f, 0.7) ? 1 + pick(f, 5) : rand_u32(f)),
                          NULL);
        } else if (k < 66) {
                g_autofree char *t = rand_text(f);
                send_call(f, c, path, SESSION, "SmartReplies",
                          g_variant_new("(su)", t, chance(f, 0.7) ? 1 + pick(f, 3) : rand_u32(f)),
                          NULL);
        } else if (k < 76) {
                send_call(f, c, path, SESSION, "Cancel", NULL, NULL);
        } else if (k < 82) {
                send_call(f, c, path, SESSION, "Reset", NULL, NULL);
        } else if (k < 90) {
                send_call(f, c, path, SESSION, "Close", NULL, NULL);
        } else if (k < 94) {
                const char *prop = (const char *[]){ "Priority", "ContextSize", "ContextUsed",
                                                     "Nope" }[pick(f, 4)];
                send_call(f, c, path, PROPERTIES, chance(f, 0.8) ? "Get" : "Set",
                          chance(f, 0.8)
                              ? g_variant_new("(ss)", SESSION, prop)
                              : g_variant_new("(ssv)", SESSION, prop, g_variant_new_uint32(1)),
                          NULL);
        } else {
                const char *m =
                    (const char *[]){ "Append",       "Generate", "Chat",  "Suggest",
                                      "Cancel",       "Close",    "Reset", "SmartReplies",
                                      "ChatMessages", "Explode" }[pick(f, 10)];
                send_call(f, c, path, SESSION, m, rand_body(f), NULL);
        }
}

static void manager_call(Fuzz *f, Client *c)
{
        guint k = pick(f, 100);

        if (k < 30) {
                send_call(f, c, MANAGER_PATH, MANAGER, "CreateSession",
                          g_variant_new("(@a{sv})",
                                        rand_options(f, session_keys, G_N_ELEMENTS(session_keys))),
                          NULL);
        } else if (k < 40) {
                send_call(f, c, MANAGER_PATH, MANAGER, "ListModels", NULL, NULL);
        } else if (k < 47) {
                import(f, c);
        } else if (k < 54) {
                send_call(f, c, MANAGER_PATH, MANAGER, "RemoveModel",
                          g_variant_new("(sb)", rand_model_name(f), chance(f, 0.5)), NULL);
        } else if (k < 64) {
                send_call(f, c, MANAGER_PATH, MANAGER, "LoadModel",
                          g_variant_new("(s)", chance(f, 0.3) ? "" : rand_model_name(f)), NULL);
        } else if (k < 69) {
                send_call(f, c, MANAGER_PATH, MANAGER, "UnloadModel", NULL, NULL);
        } else if (k < 74) {
                send_call(f, c, MANAGER_PATH, MANAGER, "SetDefaultModel",
                          g_variant_new("(s)", rand_model_name(f)), NULL);
        } else if (k < 84) {
                const char *prop = (const char *[]){ "Version", "ActiveModel", "DefaultModel",
                                                     "Backend", "State",       "Sessions",
                                                     "Budget",  "Missing" }[pick(f, 8)];
                if (chance(f, 0.3))
                        send_call(f, c, MANAGER_PATH, PROPERTIES, "GetAll",
                                  g_variant_new("(s)", chance(f, 0.8) ? MANAGER : "x.y"), NULL);
                else if (chance(f, 0.8))
                        send_call(f, c, MANAGER_PATH, PROPERTIES, "Get",
                                  g_variant_new("(ss)", MANAGER, prop), NULL);
                else
                        send_call(f, c, MANAGER_PATH, PROPERTIES, "Set",
                                  g_variant_new("(ssv)", MANAGER, prop, rand_value(f, 0)), NULL);
        } else if (k < 87) {
                send_call(f, c, MANAGER_PATH, "org.freedesktop.DBus.Introspectable", "Introspect",
                          NULL, NULL);
        } else {
                const char *m = (const char *[]){ "ListModels",      "ImportModel", "RemoveModel",
                                                  "LoadModel",       "UnloadModel", "CreateSession",
                                                  "SetDefaultModel", "Reboot" }[pick(f, 8)];
                send_call(f, c, MANAGER_PATH, MANAGER, m, rand_body(f), NULL);
        }
}

static void action(Fuzz *f)
{
        Client *c = &f->clients[pick(f, f->n_clients)];
        guint k = pick(f, 1000);

        if (c->live->len < 2 && k % 2)
                /* a session of one's own to work on: most calls should reach the engine */
                send_call(f, c, MANAGER_PATH, MANAGER, "CreateSession",
                          g_variant_new("(a{sv})", NULL), NULL);
        else if (k < 8)
                client_vanish(f, c); /* whatever it had running */
        else if (k < 11)
                send_invalid_utf8(f);
        else if (k < 350)
                manager_call(f, c);
        else
                session_call(f, c, rand_session_path(f, c));
}

/* ---- checks -------------------------------------------------------------------------------- */

static gboolean alive(pid_t pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)pid);
        g_autofree char *text = NULL;

        return kill(pid, 0) == 0 && g_file_get_contents(path, &text, NULL, NULL) &&
               !strstr(text, "State:\tZ");
}

static GVariant *ctl_call(GDBusConnection *ctl, const char *iface, const char *method,
                          GVariant *params, GError **error)
{
        return g_dbus_connection_call_sync(ctl, BUS_NAME, MANAGER_PATH, iface, method, params, NULL,
                                           G_DBUS_CALL_FLAGS_NO_AUTO_START, 20000, NULL, error);
}

static char *ctl_prop(GDBusConnection *ctl, const char *name, guint *ret_u)
{
        g_autoptr(GVariant) r =
            ctl_call(ctl, PROPERTIES, "Get", g_variant_new("(ss)", MANAGER, name), NULL);
        g_autoptr(GVariant) v = NULL;

        if (!r)
                return NULL;
        g_variant_get(r, "(v)", &v);
        if (ret_u)
                *ret_u = g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32(v)
                                                                        : G_MAXUINT;
        return g_variant_is_of_type(v, G_VARIANT_TYPE_STRING) ? g_variant_dup_string(v, NULL)
                                                              : g_strdup("");
}

/* Wait until @cond holds, iterating the main context; FALSE on a timeout. */
static gboolean wait_for(gboolean (*cond)(gpointer), gpointer data, guint ms)
{
        gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

        while (!cond(data)) {
                if (g_get_monotonic_time() > end)
                        return FALSE;
                g_main_context_iteration(NULL, FALSE);
                g_usleep(2000);
        }
        return TRUE;
}

static gboolean no_inflight(gpointer data)
{
        return ((Fuzz *)data)->inflight == 0;
}

typedef struct {
        GDBusConnection *ctl;
        guint want;
        guint seen;
        gboolean idle; /* and the daemon's State is not busy */
} SessionsWant;

static gboolean sessions_are(gpointer data)
{
        SessionsWant *w = data;
        g_autofree char *state = NULL;

        g_free(ctl_prop(w->ctl, "Sessions", &w->seen));
        if (w->seen != w->want)
                return FALSE;
        state = ctl_prop(w->ctl, "State", NULL);
        return !w->idle || (state && strcmp(state, "busy") != 0);
}

/* The first model in the store as "fuzz-base" (where a run removed it). */
static void import_base(GDBusConnection *ctl, const char *file)
{
        g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
        g_autoptr(GVariant) r = NULL;
        int fd = open(file, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return;
        g_unix_fd_list_append(fds, fd, NULL);
        close(fd);
        r = g_dbus_connection_call_with_unix_fd_list_sync(
            ctl, BUS_NAME, MANAGER_PATH, MANAGER, "ImportModel",
            g_variant_new("(hsa{sv})", 0, "fuzz-base", NULL), NULL, G_DBUS_CALL_FLAGS_NONE, 60000,
            fds, NULL, NULL, NULL);
}

/* The model loaded and one of each request run: what a daemon in use holds. */
static gboolean warm_up(GDBusConnection *ctl, const char *model_name, GError **error)
{
        g_autoptr(GVariant) r = NULL, s = NULL;
        const char *path;

        r = ctl_call(ctl, MANAGER, "LoadModel", g_variant_new("(s)", model_name), error);
        if (!r)
                return FALSE;
        s = ctl_call(ctl, MANAGER, "CreateSession", g_variant_new("(a{sv})", NULL), error);
        if (!s)
                return FALSE;
        g_variant_get(s, "(&o)", &path);
        g_autoptr(GVariant) a = g_dbus_connection_call_sync(
            ctl, BUS_NAME, path, SESSION, "Suggest", g_variant_new("(su)", "Once upon a", 3), NULL,
            G_DBUS_CALL_FLAGS_NONE, 20000, NULL, error);
        g_autoptr(GVariant) b =
            a ? g_dbus_connection_call_sync(ctl, BUS_NAME, path, SESSION, "SmartReplies",
                                            g_variant_new("(su)", "Hello", 2), NULL,
                                            G_DBUS_CALL_FLAGS_NONE, 20000, NULL, error)
              : NULL;
        /*
         * The largest texts a campaign sends, refused and taken: what grows
         * to the largest message once (GDBus keeps its read buffer) is then
         * part of the start.
         */
        for (guint i = 0; a && b && i < 2; i++) {
                gsize n = i == 0 ? 4u << 20 : (1u << 20) - 64;
                g_autofree char *big = g_malloc(n + 1);
                memset(big, 'a', n);
                big[n] = 0;
                g_autoptr(GVariant) unused = g_dbus_connection_call_sync(
                    ctl, BUS_NAME, path, SESSION, "Append", g_variant_new("(s)", big), NULL,
                    G_DBUS_CALL_FLAGS_NONE, 60000, NULL, NULL);
        }
        g_autoptr(GVariant) c =
            g_dbus_connection_call_sync(ctl, BUS_NAME, path, SESSION, "Close", NULL, NULL,
                                        G_DBUS_CALL_FLAGS_NONE, 20000, NULL, NULL);
        return a && b && c;
}

static void print_stats(Fuzz *f)
{
        g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(f->stats), (GCompareFunc)strcmp);

        for (GList *l = keys; l; l = l->next) {
                Stat *s = g_hash_table_lookup(f->stats, l->data);
                g_autoptr(GString) line = g_string_new(NULL);
                g_autoptr(GList) names =
                    g_list_sort(g_hash_table_get_keys(s->errors), (GCompareFunc)strcmp);
                g_string_append_printf(line, "  %-16s ok %u", (char *)l->data, s->ok);
                for (GList *n = names; n; n = n->next) {
                        const char *e = n->data;
                        const char *tail = strrchr(e, '.');
                        g_string_append_printf(line, ", %s %u",
                                               tail && g_str_has_prefix(e, "org.") ? tail + 1 : e,
                                               GPOINTER_TO_UINT(g_hash_table_lookup(s->errors, e)));
                }
                printf("%s\n", line->str);
        }
}

/*
 * The calls of one seeded campaign, answered or given up on; the clients
 * stay open. @who says whose they are in what is printed.
 */
static void campaign(Fuzz *f, guint32 seed, guint n_calls, const char *who)
{
        f->rng = g_rand_new_with_seed(seed);
        f->stats = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, stat_free);
        f->unexpected = g_ptr_array_new_with_free_func(g_free);
        f->failed_msgs = g_ptr_array_new_with_free_func(g_free);
        f->calls = f->vanished = 0;
        f->budget = n_calls;
        for (guint i = 0; i < f->n_clients; i++)
                client_open(f, &f->clients[i]);

        gint64 t0 = g_get_monotonic_time();
        while (f->calls < n_calls && (!f->pid || alive(f->pid))) {
                action(f);
                while (f->inflight >= MAX_INFLIGHT)
                        g_main_context_iteration(NULL, TRUE);
                while (g_main_context_iteration(NULL, FALSE))
                        ;
        }
        if (!wait_for(no_inflight, f, CALL_MS + 5000)) {
                g_ptr_array_add(f->unexpected,
                                g_strdup_printf("%u calls never answered", f->inflight));
        }
        double secs = (double)(g_get_monotonic_time() - t0) / 1e6;

        printf("seed %u%s: %u calls in %.1f s, %u clients vanished\n", seed, who, f->calls, secs,
               f->vanished);
        print_stats(f);
        for (guint i = 0; i < f->failed_msgs->len; i++)
                printf("  Failed said: %s\n", (char *)f->failed_msgs->pdata[i]);
}

static void campaign_free(Fuzz *f)
{
        g_ptr_array_unref(f->unexpected);
        g_ptr_array_unref(f->failed_msgs);
        g_hash_table_unref(f->stats);
        g_rand_free(f->rng);
        fflush(stdout);
}

/*
 * Another user's campaign at the same time: this program again, as @uid,
 * calling sessions by guessed paths (foreign ones among them). Its pid, or
 * -1 when there is none.
 */
static pid_t spawn_foreign(Fuzz *f, gint uid, guint32 seed, guint n_calls)
{
        g_autofree char *s = g_strdup_printf("%u", seed), *n = g_strdup_printf("%u", n_calls);
        g_autofree char *k = g_strdup_printf("%u", f->n_clients);
        g_autofree char *u = g_strdup_printf("%d", uid);
        char exe[4096];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        pid_t pid;

        if (uid < 0 || len <= 0)
                return -1;
        exe[len] = 0;
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                /* only async-signal-safe calls between fork and exec */
                if (setgid((gid_t)uid) == 0 && setuid((uid_t)uid) == 0)
                        execl(exe, exe, "--address", f->address, "--as-foreign", u, "--seed", s,
                              "--calls", n, "--clients", k, "--model", f->models[0], (char *)NULL);
                _exit(127);
        }
        return pid;
}

/* One seeded campaign (beside another user's, as @foreign_uid); TRUE when every check passed. */
static gboolean run(Fuzz *f, GDBusConnection *ctl, guint32 seed, guint n_calls,
                    const char *model_name, guint fd0, guint64 rss0, double rss_slack,
                    gint foreign_uid)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) models = NULL;
        gboolean ok = TRUE;
        guint live = 0;
        pid_t foreign = spawn_foreign(f, foreign_uid, seed ^ 0x9e3779b9u, n_calls / 2);

        campaign(f, seed, n_calls, "");
        if (foreign > 0) {
                int st = 0;
                waitpid(foreign, &st, 0);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                        printf("FAIL seed %u: the campaign of uid %d failed (status %d)\n", seed,
                               foreign_uid, st);
                        ok = FALSE;
                }
        }

        /* the daemon is alive and answers */
        if (!alive(f->pid)) {
                printf("FAIL seed %u: slmd (pid %d) is gone\n", seed, (int)f->pid);
                ok = FALSE;
                goto out;
        }
        models = ctl_call(ctl, MANAGER, "ListModels", NULL, &error);
        if (!models) {
                printf("FAIL seed %u: ListModels: %s\n", seed, error->message);
                ok = FALSE;
                goto out;
        }
        /* Sessions counts the live sessions: those our open clients hold, then none */
        for (guint i = 0; i < f->n_clients; i++)
                live += f->clients[i].live->len;
        SessionsWant w = { ctl, live, 0, FALSE };
        if (!wait_for(sessions_are, &w, 10000)) {
                printf("FAIL seed %u: Sessions is %u with %u live sessions\n", seed, w.seen, live);
                for (guint i = 0; i < f->n_clients; i++)
                        for (guint j = 0; j < f->clients[i].live->len; j++)
                                printf("  live: client %u %s\n", i,
                                       (char *)f->clients[i].live->pdata[j]);
                g_autoptr(GVariant) intro = g_dbus_connection_call_sync(
                    ctl, BUS_NAME, "/org/slmd/Slm1/session", "org.freedesktop.DBus.Introspectable",
                    "Introspect", NULL, NULL, 0, 5000, NULL, NULL);
                if (intro) {
                        const char *x;
                        g_variant_get(intro, "(&s)", &x);
                        printf("%s\n", x);
                }
                ok = FALSE;
        }
        for (guint i = 0; i < f->n_clients; i++) {
                Client *c = &f->clients[i];
                if (!c->gone)
                        g_dbus_connection_close_sync(c->conn, NULL, NULL);
                g_clear_object(&c->conn);
                g_ptr_array_unref(c->live);
        }
        w = (SessionsWant){ ctl, 0, 0, TRUE };
        if (!wait_for(sessions_are, &w, 20000)) {
                printf("FAIL seed %u: Sessions is %u after every client left\n", seed, w.seen);
                ok = FALSE;
        }
        /* back to where it started: the model loaded and used once */
        import_base(ctl, f->models[0]);
        if (!warm_up(ctl, model_name, &error)) {
                printf("FAIL seed %u: the daemon does not serve afterwards: %s\n", seed,
                       error ? error->message : "a call failed");
                ok = FALSE;
                goto out;
        }
        w = (SessionsWant){ ctl, 0, 0, TRUE };
        wait_for(sessions_are, &w, 10000);
        g_usleep(1500 * 1000); /* slmd gives freed heap back within a second of going idle */
        guint fd1 = proc_fd_count(f->pid);
        guint64 rss1 = proc_status_value(f->pid, "VmRSS:");
        printf("  descriptors %u -> %u, RSS %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT
               " kB (%+.1f %%)\n",
               fd0, fd1, rss0, rss1, rss0 ? 100.0 * ((double)rss1 - (double)rss0) / rss0 : 0.0);
        if (fd0 && fd1 > fd0) {
                printf("FAIL seed %u: %u descriptors more than at the start\n", seed, fd1 - fd0);
                ok = FALSE;
        }
        if (rss0 && rss_slack > 0 && rss1 > rss0 + (guint64)(rss0 * rss_slack / 100.0)) {
                printf("FAIL seed %u: RSS grew more than %.0f %%\n", seed, rss_slack);
                ok = FALSE;
        }
out:
        for (guint i = 0; i < f->unexpected->len; i++) {
                printf("FAIL seed %u: unexpected: %s\n", seed, (char *)f->unexpected->pdata[i]);
                ok = FALSE;
        }
        if (!ok)
                printf("replay: --seed %u --runs 1 --calls %u --clients %u%s\n", seed, n_calls,
                       f->n_clients, foreign_uid >= 0 ? " --foreign-uid UID" : "");
        campaign_free(f);
        return ok;
}

/* Another user's campaign: calls only; 1 when something unexpected came back. */
static int foreign_main(const char *address, char **models, guint32 seed, guint calls,
                        guint clients, gint uid)
{
        Fuzz f = { 0 };
        g_autofree char *who = g_strdup_printf(" (uid %d)", uid);
        gboolean ok;

        signal(SIGPIPE, SIG_IGN);
        f.address = address;
        f.models = models;
        f.n_models = g_strv_length(models);
        f.n_clients = clients;
        f.paths = g_ptr_array_new_with_free_func(g_free);
        f.names = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(f.names, g_strdup("fuzz-base"));
        /* sessions are numbered: guessed paths are the other user's */
        for (guint n = 1; n < 4000; n += 1 + g_random_int_range(0, 60))
                g_ptr_array_add(f.paths, g_strdup_printf("/org/slmd/Slm1/session/%u", n));
        campaign(&f, seed, calls, who);
        ok = f.unexpected->len == 0;
        for (guint i = 0; i < f.unexpected->len; i++)
                printf("FAIL seed %u%s: unexpected: %s\n", seed, who,
                       (char *)f.unexpected->pdata[i]);
        for (guint i = 0; i < f.n_clients; i++) {
                if (!f.clients[i].gone)
                        g_dbus_connection_close_sync(f.clients[i].conn, NULL, NULL);
                g_clear_object(&f.clients[i].conn);
                g_ptr_array_unref(f.clients[i].live);
        }
        campaign_free(&f);
        g_ptr_array_unref(f.paths);
        g_ptr_array_unref(f.names);
        return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
        g_autofree char *address = NULL;
        g_auto(GStrv) models = NULL;
        gint pid = 0, runs = 3, calls = 1000, clients = 4;
        gint64 seed = -1;
        double rss_slack = 15.0;
        gint foreign_uid = -1, as_foreign = -1;
        g_autoptr(GError) error = NULL;
        g_autoptr(GOptionContext) octx = g_option_context_new("- fuzz slmd over D-Bus");
        const GOptionEntry entries[] = {
                { "address", 0, 0, G_OPTION_ARG_STRING, &address, "The daemon's bus", "ADDR" },
                { "pid", 0, 0, G_OPTION_ARG_INT, &pid, "The daemon's pid", "PID" },
                { "model", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &models, "GGUF files to import",
                  "FILE" },
                { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "First seed (default: random)", "S" },
                { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "Campaigns, seeds S, S+1, ...", "R" },
                { "calls", 0, 0, G_OPTION_ARG_INT, &calls, "Calls per campaign", "N" },
                { "clients", 0, 0, G_OPTION_ARG_INT, &clients, "Connections at once", "K" },
                { "rss-slack", 0, 0, G_OPTION_ARG_DOUBLE, &rss_slack,
                  "RSS growth allowed per run, % (0: not checked)", "PCT" },
                { "foreign-uid", 0, 0, G_OPTION_ARG_INT, &foreign_uid,
                  "Run another user's campaign beside each run, as UID (needs root)", "UID" },
                { "as-foreign", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &as_foreign,
                  "(that campaign: no store, no checks)", "UID" },
                { NULL },
        };
        Fuzz f = { 0 };
        int failed = 0;

        g_option_context_add_main_entries(octx, entries, NULL);
        if (g_option_context_parse(octx, &argc, &argv, &error) && address && as_foreign >= 0 &&
            models && models[0] && seed >= 0 && calls >= 1 && clients >= 1 &&
            clients <= MAX_CLIENTS)
                return foreign_main(address, models, (guint32)seed, (guint)calls, (guint)clients,
                                    as_foreign);
        if (error || !address || pid <= 0 || !models || !models[0] || runs < 1 || calls < 1 ||
            clients < 1 || clients > MAX_CLIENTS) {
                fprintf(stderr, "fuzz-dbus: %s\n",
                        error ? error->message
                              : "--address, --pid and --model are needed; 1 to 16 clients");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        if (seed < 0)
                seed = g_random_int();
        f.address = address;
        f.pid = pid;
        f.models = models;
        f.n_models = g_strv_length(models);
        f.n_clients = (guint)clients;
        f.paths = g_ptr_array_new_with_free_func(g_free);
        f.names = g_ptr_array_new_with_free_func(g_free);

        GDBusConnection *ctl = g_dbus_connection_new_for_address_sync(
            address,
            G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
            NULL, NULL, &error);
        if (!ctl) {
                fprintf(stderr, "fuzz-dbus: %s: %s\n", address, error->message);
                return 1;
        }
        /* the store holds the first model, the one every run ends with */
        import_base(ctl, models[0]);
        g_ptr_array_add(f.names, g_strdup("fuzz-base"));
        if (!warm_up(ctl, "fuzz-base", &error)) {
                fprintf(stderr, "fuzz-dbus: the daemon does not serve: %s\n",
                        error ? error->message : "a call failed");
                return 1;
        }
        /*
         * The first campaign takes the daemon from fresh to steady: thread
         * pools and allocator arenas grow once. Starting values are taken
         * after one unchecked warm-up campaign of a seed of its own.
         */
        guint64 rss_fresh = proc_status_value(pid, "VmRSS:");
        printf("fuzz-dbus: warm-up\n");
        if (!run(&f, ctl, 0xdeadbeefu, 1000, "fuzz-base", 0, 0, 0.0, foreign_uid))
                failed++;
        SessionsWant w = { ctl, 0, 0, TRUE };
        wait_for(sessions_are, &w, 10000);
        g_usleep(1500 * 1000);
        guint fd0 = proc_fd_count(pid);
        guint64 rss0 = proc_status_value(pid, "VmRSS:");
        printf("fuzz-dbus: RSS %" G_GUINT64_FORMAT " kB fresh, %" G_GUINT64_FORMAT
               " kB after the warm-up; %u descriptors\n",
               rss_fresh, rss0, fd0);

        printf("fuzz-dbus: %d runs of %d calls, %d clients, seeds %" G_GINT64_FORMAT
               "..%" G_GINT64_FORMAT "\n",
               runs, calls, clients, seed, seed + runs - 1);
        guint total = 0;
        for (gint i = 0; i < runs; i++) {
                if (!run(&f, ctl, (guint32)(seed + i), (guint)calls, "fuzz-base", fd0, rss0,
                         rss_slack, foreign_uid))
                        failed++;
                total += f.calls;
                if (!alive(pid))
                        break;
        }
        printf("fuzz-dbus: %u calls, %d of %d runs failed\n", total, failed, runs);
        g_object_unref(ctl);
        g_ptr_array_unref(f.paths);
        g_ptr_array_unref(f.names);
        return failed ? 1 : 0;
}
