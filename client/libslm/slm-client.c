/* SPDX-License-Identifier: MIT */
#include "slm-client.h"

#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUS_NAME      "org.slmd.Slm1"
#define MANAGER_PATH  "/org/slmd/Slm1"
#define MANAGER_IFACE "org.slmd.Slm1.Manager"
#define SESSION_IFACE "org.slmd.Slm1.Session"
#define ERROR_PREFIX  "org.slmd.Slm1.Error."
#define CALL_TIMEOUT  (10 * 60 * 1000) /* model loads and imports can be slow */

struct SlmClient {
        DBusConnection *conn;
        bool service_gone;
};

struct SlmSession {
        SlmClient *c;
        char *path;
        volatile sig_atomic_t cancel;
};

/* ---- errors -------------------------------------------------------------------------------- */

static const struct {
        SlmStatus status;
        const char *name; /* after the org.slmd.Slm1.Error. prefix */
        const char *short_name;
} statuses[] = {
        { SLM_STATUS_FAILED, "Failed", "failed" },
        { SLM_STATUS_INVALID_ARGUMENT, "InvalidArgument", "invalid-argument" },
        { SLM_STATUS_NO_MODEL, "NoModel", "no-model" },
        { SLM_STATUS_INVALID_MODEL, "InvalidModel", "invalid-model" },
        { SLM_STATUS_BUSY, "Busy", "busy" },
        { SLM_STATUS_QUOTA_EXCEEDED, "QuotaExceeded", "quota-exceeded" },
        { SLM_STATUS_CONTEXT_OVERFLOW, "ContextOverflow", "context-overflow" },
        { SLM_STATUS_CANCELLED, "Cancelled", "cancelled" },
        { SLM_STATUS_PERMISSION_DENIED, "PermissionDenied", "permission-denied" },
        { SLM_STATUS_THROTTLED, "Throttled", "throttled" },
        { SLM_STATUS_NOT_FOUND, "NotFound", "not-found" },
        { SLM_STATUS_NO_SERVICE, NULL, "no-service" },
        { SLM_STATUS_DISCONNECTED, NULL, "disconnected" },
        { SLM_STATUS_IO, NULL, "io" },
        { SLM_STATUS_DBUS, NULL, "dbus" },
};

const char *slm_status_name(SlmStatus status)
{
        if (status == SLM_STATUS_OK)
                return "ok";
        for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
                if (statuses[i].status == status)
                        return statuses[i].short_name;
        return "unknown";
}

static int set_error(SlmClientError *err, SlmStatus status, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_error(SlmClientError *err, SlmStatus status, const char *name, const char *fmt, ...)
{
        va_list ap;

        if (err) {
                err->status = status;
                snprintf(err->name, sizeof(err->name), "%s", name ? name : "");
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return status;
}

static int from_dbus_error(SlmClientError *err, DBusError *e)
{
        SlmStatus status = SLM_STATUS_DBUS;
        int r;

        if (strncmp(e->name, ERROR_PREFIX, strlen(ERROR_PREFIX)) == 0) {
                for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
                        if (statuses[i].name &&
                            strcmp(e->name + strlen(ERROR_PREFIX), statuses[i].name) == 0)
                                status = statuses[i].status;
        } else if (strcmp(e->name, DBUS_ERROR_SERVICE_UNKNOWN) == 0 ||
                   strcmp(e->name, DBUS_ERROR_NAME_HAS_NO_OWNER) == 0) {
                status = SLM_STATUS_NO_SERVICE;
        } else if (strcmp(e->name, DBUS_ERROR_NO_REPLY) == 0 ||
                   strcmp(e->name, DBUS_ERROR_DISCONNECTED) == 0) {
                status = SLM_STATUS_DISCONNECTED;
        } else if (strcmp(e->name, DBUS_ERROR_ACCESS_DENIED) == 0) {
                status = SLM_STATUS_PERMISSION_DENIED;
        }
        r = set_error(err, status, e->name, "%s",
                      status == SLM_STATUS_NO_SERVICE ? "slmd is not running on this bus"
                      : e->message                    ? e->message
                                                      : e->name);
        dbus_error_free(e);
        return r;
}

/* D-Bus carries only valid UTF-8: refuse anything else before it reaches the wire. */
static int check_utf8(const char *s, SlmClientError *err)
{
        if (!s || !dbus_validate_utf8(s, NULL))
                return set_error(err, SLM_STATUS_INVALID_ARGUMENT, NULL,
                                 "the text is not valid UTF-8");
        return 0;
}

static int check_options_utf8(const SlmGenerateOptions *o, SlmClientError *err)
{
        for (const char *const *p = o && o->stop ? o->stop : NULL; p && *p; p++)
                if (check_utf8(*p, err) < 0)
                        return SLM_STATUS_INVALID_ARGUMENT;
        const char *texts[] = { o ? o->tools : NULL, o ? o->json_schema : NULL,
                                o ? o->grammar : NULL, o ? o->tool_choice : NULL };
        for (size_t i = 0; i < 4; i++)
                if (texts[i] && check_utf8(texts[i], err) < 0)
                        return SLM_STATUS_INVALID_ARGUMENT;
        return 0;
}

/* ---- calls --------------------------------------------------------------------------------- */

static DBusMessage *new_call(const char *path, const char *iface, const char *method)
{
        return dbus_message_new_method_call(BUS_NAME, path, iface, method);
}

/* Send @msg (unref'ed here) and wait for the reply; NULL on error. */
static DBusMessage *call(SlmClient *c, DBusMessage *msg, SlmClientError *err)
{
        DBusError e;
        DBusMessage *reply;

        if (!msg) {
                set_error(err, SLM_STATUS_FAILED, NULL, "out of memory");
                return NULL;
        }
        dbus_error_init(&e);
        reply = dbus_connection_send_with_reply_and_block(c->conn, msg, CALL_TIMEOUT, &e);
        dbus_message_unref(msg);
        if (!reply)
                from_dbus_error(err, &e);
        return reply;
}

/* A call whose reply carries nothing. */
static int call_void(SlmClient *c, DBusMessage *msg, SlmClientError *err)
{
        DBusMessage *reply = call(c, msg, err);

        if (!reply)
                return err ? err->status : SLM_STATUS_FAILED;
        dbus_message_unref(reply);
        return 0;
}

static void append_dict_entry(DBusMessageIter *dict, const char *key, int type, const void *value)
{
        DBusMessageIter entry, var;
        char sig[2] = { (char)type, 0 };

        dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
        dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key);
        dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, sig, &var);
        dbus_message_iter_append_basic(&var, type, value);
        dbus_message_iter_close_container(&entry, &var);
        dbus_message_iter_close_container(dict, &entry);
}

static void append_dict_strv(DBusMessageIter *dict, const char *key, const char *const *v)
{
        DBusMessageIter entry, var, arr;

        dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
        dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key);
        dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "as", &var);
        dbus_message_iter_open_container(&var, DBUS_TYPE_ARRAY, "s", &arr);
        for (; *v; v++)
                dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, v);
        dbus_message_iter_close_container(&var, &arr);
        dbus_message_iter_close_container(&entry, &var);
        dbus_message_iter_close_container(dict, &entry);
}

/* Walk an a{sv} at @it, calling @fn for each key with an iterator on the value. */
static void read_dict(DBusMessageIter *it,
                      void (*fn)(const char *key, DBusMessageIter *val, void *data), void *data)
{
        DBusMessageIter arr, entry, var;

        if (dbus_message_iter_get_arg_type(it) != DBUS_TYPE_ARRAY)
                return;
        dbus_message_iter_recurse(it, &arr);
        while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_DICT_ENTRY) {
                const char *key;
                dbus_message_iter_recurse(&arr, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &var);
                fn(key, &var, data);
                dbus_message_iter_next(&arr);
        }
}

static char *dup_str(DBusMessageIter *v)
{
        const char *s = "";

        if (dbus_message_iter_get_arg_type(v) == DBUS_TYPE_STRING)
                dbus_message_iter_get_basic(v, &s);
        return strdup(s);
}

/* A variant holding "as" into a NULL-terminated array (free with slm_strv_free), or NULL. */
static char **dup_strv(DBusMessageIter *v)
{
        DBusMessageIter arr;
        size_t n = 0, cap = 8;
        char **out;

        if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_ARRAY ||
            dbus_message_iter_get_element_type(v) != DBUS_TYPE_STRING)
                return NULL;
        out = malloc(cap * sizeof(char *));
        if (!out)
                return NULL;
        dbus_message_iter_recurse(v, &arr);
        while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRING) {
                const char *s;
                if (n + 2 > cap) {
                        char **grown = realloc(out, (cap *= 2) * sizeof(char *));
                        if (!grown)
                                break;
                        out = grown;
                }
                dbus_message_iter_get_basic(&arr, &s);
                if (!(out[n] = strdup(s)))
                        break;
                n++;
                dbus_message_iter_next(&arr);
        }
        out[n] = NULL;
        return out;
}

static uint64_t get_u64(DBusMessageIter *v)
{
        dbus_uint64_t u = 0;
        dbus_uint32_t u32 = 0;
        dbus_int32_t i32 = 0;

        if (dbus_message_iter_get_arg_type(v) == DBUS_TYPE_UINT64)
                dbus_message_iter_get_basic(v, &u);
        else if (dbus_message_iter_get_arg_type(v) == DBUS_TYPE_UINT32) {
                dbus_message_iter_get_basic(v, &u32);
                u = u32;
        } else if (dbus_message_iter_get_arg_type(v) == DBUS_TYPE_INT32) {
                dbus_message_iter_get_basic(v, &i32);
                u = i32 > 0 ? (uint64_t)i32 : 0;
        }
        return u;
}

static double get_double(DBusMessageIter *v)
{
        double d = 0;

        if (dbus_message_iter_get_arg_type(v) == DBUS_TYPE_DOUBLE)
                dbus_message_iter_get_basic(v, &d);
        return d;
}

static bool get_bool(DBusMessageIter *v)
{
        dbus_bool_t b = 0;

        if (dbus_message_iter_get_arg_type(v) == DBUS_TYPE_BOOLEAN)
                dbus_message_iter_get_basic(v, &b);
        return b;
}

/* ---- connection ---------------------------------------------------------------------------- */

static int finish_connect(DBusConnection *conn, SlmClient **ret, SlmClientError *err)
{
        SlmClient *c = calloc(1, sizeof(*c));
        DBusError e;

        if (!c) {
                dbus_connection_close(conn);
                dbus_connection_unref(conn);
                return set_error(err, SLM_STATUS_FAILED, NULL, "out of memory");
        }
        dbus_connection_set_exit_on_disconnect(conn, FALSE);
        dbus_error_init(&e);
        /* to notice the daemon leaving in the middle of a generation */
        dbus_bus_add_match(conn,
                           "type='signal',sender='org.freedesktop.DBus',"
                           "member='NameOwnerChanged',arg0='" BUS_NAME "'",
                           &e);
        dbus_error_free(&e);
        c->conn = conn;
        *ret = c;
        return 0;
}

int slm_client_connect(SlmBusType bus, SlmClient **ret, SlmClientError *err)
{
        DBusError e;
        DBusConnection *conn;

        dbus_error_init(&e);
        conn = dbus_bus_get_private(bus == SLM_BUS_SYSTEM ? DBUS_BUS_SYSTEM : DBUS_BUS_SESSION, &e);
        if (!conn)
                return from_dbus_error(err, &e);
        return finish_connect(conn, ret, err);
}

int slm_client_connect_address(const char *address, SlmClient **ret, SlmClientError *err)
{
        DBusError e;
        DBusConnection *conn;

        dbus_error_init(&e);
        conn = dbus_connection_open_private(address, &e);
        if (!conn)
                return from_dbus_error(err, &e);
        if (!dbus_bus_register(conn, &e)) {
                dbus_connection_close(conn);
                dbus_connection_unref(conn);
                return from_dbus_error(err, &e);
        }
        return finish_connect(conn, ret, err);
}

void slm_client_free(SlmClient *c)
{
        if (!c)
                return;
        dbus_connection_close(c->conn);
        dbus_connection_unref(c->conn);
        free(c);
}

/* ---- the manager --------------------------------------------------------------------------- */

static void budget_field(const char *key, DBusMessageIter *v, void *data)
{
        SlmDaemonStatus *s = data;

        if (strcmp(key, "thermal") == 0 && !s->thermal)
                s->thermal = dup_str(v);
        else if (strcmp(key, "reason") == 0 && !s->budget_reason)
                s->budget_reason = dup_str(v);
        else if (strcmp(key, "threads") == 0)
                s->budget_threads = (int32_t)get_u64(v);
        else if (strcmp(key, "background-refused") == 0)
                s->background_refused = get_bool(v);
}

static void status_field(const char *key, DBusMessageIter *v, void *data)
{
        SlmDaemonStatus *s = data;

        if (strcmp(key, "Version") == 0)
                s->version = dup_str(v);
        else if (strcmp(key, "ActiveModel") == 0)
                s->active_model = dup_str(v);
        else if (strcmp(key, "DefaultModel") == 0)
                s->default_model = dup_str(v);
        else if (strcmp(key, "Backend") == 0)
                s->backend = dup_str(v);
        else if (strcmp(key, "State") == 0)
                s->state = dup_str(v);
        else if (strcmp(key, "Sessions") == 0)
                s->sessions = (uint32_t)get_u64(v);
        else if (strcmp(key, "Budget") == 0)
                read_dict(v, budget_field, s);
}

/* The manager's properties, each given to @fn. */
static int read_manager(SlmClient *c, void (*fn)(const char *key, DBusMessageIter *val, void *data),
                        void *data, SlmClientError *err)
{
        DBusMessage *msg = new_call(MANAGER_PATH, DBUS_INTERFACE_PROPERTIES, "GetAll");
        const char *iface = MANAGER_IFACE;
        DBusMessage *reply;
        DBusMessageIter it;

        dbus_message_append_args(msg, DBUS_TYPE_STRING, &iface, DBUS_TYPE_INVALID);
        reply = call(c, msg, err);
        if (!reply)
                return err ? err->status : SLM_STATUS_FAILED;
        dbus_message_iter_init(reply, &it);
        read_dict(&it, fn, data);
        dbus_message_unref(reply);
        return 0;
}

int slm_client_status(SlmClient *c, SlmDaemonStatus *ret, SlmClientError *err)
{
        int r;

        memset(ret, 0, sizeof(*ret));
        if ((r = read_manager(c, status_field, ret, err)) < 0)
                return r;
        /* an older daemon without a Budget property */
        if (!ret->thermal)
                ret->thermal = strdup("");
        if (!ret->budget_reason)
                ret->budget_reason = strdup("");
        return 0;
}

void slm_daemon_status_clear(SlmDaemonStatus *s)
{
        free(s->thermal);
        free(s->budget_reason);
        free(s->version);
        free(s->active_model);
        free(s->default_model);
        free(s->backend);
        free(s->state);
        memset(s, 0, sizeof(*s));
}

static void model_field(const char *key, DBusMessageIter *v, void *data)
{
        SlmModelInfo *m = data;

        if (strcmp(key, "name") == 0)
                m->name = dup_str(v);
        else if (strcmp(key, "architecture") == 0)
                m->architecture = dup_str(v);
        else if (strcmp(key, "quantization") == 0)
                m->quantization = dup_str(v);
        else if (strcmp(key, "sha256") == 0)
                m->sha256 = dup_str(v);
        else if (strcmp(key, "size") == 0)
                m->size = get_u64(v);
        else if (strcmp(key, "parameters") == 0)
                m->parameters = get_u64(v);
        else if (strcmp(key, "default") == 0)
                m->is_default = get_bool(v);
        else if (strcmp(key, "loaded") == 0)
                m->loaded = get_bool(v);
}

int slm_client_list_models(SlmClient *c, SlmModelInfo **ret_models, size_t *ret_n,
                           SlmClientError *err)
{
        DBusMessage *reply = call(c, new_call(MANAGER_PATH, MANAGER_IFACE, "ListModels"), err);
        DBusMessageIter it, arr;
        SlmModelInfo *models = NULL;
        size_t n = 0;

        if (!reply)
                return err ? err->status : SLM_STATUS_FAILED;
        dbus_message_iter_init(reply, &it);
        if (dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_ARRAY) {
                dbus_message_iter_recurse(&it, &arr);
                while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_ARRAY) {
                        SlmModelInfo *p = realloc(models, (n + 1) * sizeof(*models));
                        if (!p)
                                break;
                        models = p;
                        memset(&models[n], 0, sizeof(models[n]));
                        read_dict(&arr, model_field, &models[n]);
                        n++;
                        dbus_message_iter_next(&arr);
                }
        }
        dbus_message_unref(reply);
        *ret_models = models;
        *ret_n = n;
        return 0;
}

void slm_model_info_free(SlmModelInfo *models, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(models[i].name);
                free(models[i].architecture);
                free(models[i].quantization);
                free(models[i].sha256);
        }
        free(models);
}

static void capability_field(const char *key, DBusMessageIter *v, void *data)
{
        char ***ret = data;

        if (strcmp(key, "Architectures") == 0 && !ret[0])
                ret[0] = dup_strv(v);
        else if (strcmp(key, "WeightTypes") == 0 && !ret[1])
                ret[1] = dup_strv(v);
}

int slm_client_capabilities(SlmClient *c, char ***ret_architectures, char ***ret_weight_types,
                            SlmClientError *err)
{
        char **got[2] = { NULL, NULL };
        int r;

        if ((r = read_manager(c, capability_field, got, err)) < 0)
                return r;
        if (!got[0] || !got[1]) {
                slm_strv_free(got[0]);
                slm_strv_free(got[1]);
                return set_error(err, SLM_STATUS_FAILED, NULL,
                                 "slmd does not say which models it runs (an older version?)");
        }
        *ret_architectures = got[0];
        *ret_weight_types = got[1];
        return 0;
}

int slm_client_import(SlmClient *c, const char *path, const char *name, SlmProgressFunc progress,
                      void *user_data, char **ret_name, SlmClientError *err)
{
        return slm_client_import_verified(c, path, name, NULL, progress, user_data, ret_name, err);
}

int slm_client_import_verified(SlmClient *c, const char *path, const char *name, const char *sha256,
                               SlmProgressFunc progress, void *user_data, char **ret_name,
                               SlmClientError *err)
{
        DBusMessage *msg, *reply;
        DBusPendingCall *pending = NULL;
        DBusMessageIter it, dict;
        DBusError e;
        struct stat st;
        const char *n = name ? name : "", *stored;
        int fd, r = 0;

        if (check_utf8(n, err) < 0 || (sha256 && check_utf8(sha256, err) < 0))
                return SLM_STATUS_INVALID_ARGUMENT;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return set_error(err, SLM_STATUS_IO, NULL, "cannot open %s: %s", path,
                                 strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return set_error(err, SLM_STATUS_IO, NULL, "%s is not a regular file", path);
        }
        msg = new_call(MANAGER_PATH, MANAGER_IFACE, "ImportModel");
        dbus_message_iter_init_append(msg, &it);
        dbus_message_iter_append_basic(&it, DBUS_TYPE_UNIX_FD, &fd);
        dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &n);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        if (sha256)
                append_dict_entry(&dict, "sha256", DBUS_TYPE_STRING, &sha256);
        dbus_message_iter_close_container(&it, &dict);
        if (!dbus_connection_send_with_reply(c->conn, msg, &pending, CALL_TIMEOUT) || !pending) {
                dbus_message_unref(msg);
                close(fd);
                return set_error(err, SLM_STATUS_DISCONNECTED, NULL, "cannot send to the bus");
        }
        dbus_message_unref(msg);
        /* the daemon reads our descriptor: its offset is the progress */
        while (!dbus_pending_call_get_completed(pending)) {
                /* pending calls complete when their reply is dispatched */
                if (!dbus_connection_read_write_dispatch(c->conn, 100))
                        break;
                if (progress) {
                        off_t off = lseek(fd, 0, SEEK_CUR);
                        progress(off > 0 ? (uint64_t)off : 0, (uint64_t)st.st_size, user_data);
                }
        }
        dbus_pending_call_block(pending);
        reply = dbus_pending_call_steal_reply(pending);
        dbus_pending_call_unref(pending);
        close(fd);
        if (!reply)
                return set_error(err, SLM_STATUS_DISCONNECTED, NULL, "no reply from slmd");
        dbus_error_init(&e);
        if (dbus_set_error_from_message(&e, reply)) {
                r = from_dbus_error(err, &e);
        } else if (dbus_message_get_args(reply, &e, DBUS_TYPE_STRING, &stored, DBUS_TYPE_INVALID)) {
                if (progress)
                        progress((uint64_t)st.st_size, (uint64_t)st.st_size, user_data);
                if (ret_name)
                        *ret_name = strdup(stored);
        } else {
                r = from_dbus_error(err, &e);
        }
        dbus_message_unref(reply);
        return r;
}

int slm_client_remove(SlmClient *c, const char *name, bool force, SlmClientError *err)
{
        DBusMessage *msg = new_call(MANAGER_PATH, MANAGER_IFACE, "RemoveModel");
        dbus_bool_t f = force;

        dbus_message_append_args(msg, DBUS_TYPE_STRING, &name, DBUS_TYPE_BOOLEAN, &f,
                                 DBUS_TYPE_INVALID);
        return call_void(c, msg, err);
}

static int call_with_name(SlmClient *c, const char *method, const char *name, SlmClientError *err)
{
        DBusMessage *msg = new_call(MANAGER_PATH, MANAGER_IFACE, method);
        const char *n = name ? name : "";

        dbus_message_append_args(msg, DBUS_TYPE_STRING, &n, DBUS_TYPE_INVALID);
        return call_void(c, msg, err);
}

int slm_client_load(SlmClient *c, const char *name, SlmClientError *err)
{
        return call_with_name(c, "LoadModel", name, err);
}

int slm_client_unload(SlmClient *c, SlmClientError *err)
{
        return call_void(c, new_call(MANAGER_PATH, MANAGER_IFACE, "UnloadModel"), err);
}

int slm_client_set_default(SlmClient *c, const char *name, SlmClientError *err)
{
        return call_with_name(c, "SetDefaultModel", name, err);
}

/* ---- sessions ------------------------------------------------------------------------------ */

int slm_client_create_session(SlmClient *c, const SlmSessionOptions *opts, SlmSession **ret,
                              SlmClientError *err)
{
        DBusMessage *msg, *reply;
        DBusMessageIter it, dict;
        DBusError e;
        const char *path;
        SlmSession *s;

        if (opts && ((opts->system_prompt && check_utf8(opts->system_prompt, err) < 0) ||
                     (opts->priority && check_utf8(opts->priority, err) < 0)))
                return SLM_STATUS_INVALID_ARGUMENT;
        msg = new_call(MANAGER_PATH, MANAGER_IFACE, "CreateSession");
        dbus_message_iter_init_append(msg, &it);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        if (opts && opts->system_prompt)
                append_dict_entry(&dict, "system-prompt", DBUS_TYPE_STRING, &opts->system_prompt);
        if (opts && opts->priority)
                append_dict_entry(&dict, "priority", DBUS_TYPE_STRING, &opts->priority);
        if (opts && opts->context_size)
                append_dict_entry(&dict, "context-size", DBUS_TYPE_UINT32, &opts->context_size);
        dbus_message_iter_close_container(&it, &dict);
        reply = call(c, msg, err);
        if (!reply)
                return err ? err->status : SLM_STATUS_FAILED;
        dbus_error_init(&e);
        if (!dbus_message_get_args(reply, &e, DBUS_TYPE_OBJECT_PATH, &path, DBUS_TYPE_INVALID)) {
                dbus_message_unref(reply);
                return from_dbus_error(err, &e);
        }
        s = calloc(1, sizeof(*s));
        if (s)
                s->path = strdup(path);
        dbus_message_unref(reply);
        if (!s || !s->path) {
                free(s);
                return set_error(err, SLM_STATUS_FAILED, NULL, "out of memory");
        }
        s->c = c;
        *ret = s;
        return 0;
}

void slm_session_free(SlmSession *s)
{
        if (!s)
                return;
        call_void(s->c, new_call(s->path, SESSION_IFACE, "Close"), NULL);
        free(s->path);
        free(s);
}

const char *slm_session_path(const SlmSession *s)
{
        return s->path;
}

void slm_session_request_cancel(SlmSession *s)
{
        s->cancel = 1;
}

void slm_generate_options_init(SlmGenerateOptions *o)
{
        memset(o, 0, sizeof(*o));
        o->temperature = -1.0;
        o->min_p = -1.0;
}

static void append_generate_options(DBusMessageIter *it, const SlmGenerateOptions *o)
{
        DBusMessageIter dict;

        dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        if (o) {
                if (o->max_tokens)
                        append_dict_entry(&dict, "max-tokens", DBUS_TYPE_UINT32, &o->max_tokens);
                if (o->temperature >= 0)
                        append_dict_entry(&dict, "temperature", DBUS_TYPE_DOUBLE, &o->temperature);
                if (o->top_k)
                        append_dict_entry(&dict, "top-k", DBUS_TYPE_UINT32, &o->top_k);
                if (o->top_p > 0)
                        append_dict_entry(&dict, "top-p", DBUS_TYPE_DOUBLE, &o->top_p);
                if (o->min_p >= 0)
                        append_dict_entry(&dict, "min-p", DBUS_TYPE_DOUBLE, &o->min_p);
                if (o->repeat_penalty > 0)
                        append_dict_entry(&dict, "repeat-penalty", DBUS_TYPE_DOUBLE,
                                          &o->repeat_penalty);
                if (o->has_seed)
                        append_dict_entry(&dict, "seed", DBUS_TYPE_UINT64, &o->seed);
                if (o->stop)
                        append_dict_strv(&dict, "stop", o->stop);
                if (o->tools)
                        append_dict_entry(&dict, "tools", DBUS_TYPE_STRING, &o->tools);
                if (o->json_schema)
                        append_dict_entry(&dict, "json-schema", DBUS_TYPE_STRING, &o->json_schema);
                if (o->grammar)
                        append_dict_entry(&dict, "grammar", DBUS_TYPE_STRING, &o->grammar);
                if (o->tool_choice)
                        append_dict_entry(&dict, "tool-choice", DBUS_TYPE_STRING, &o->tool_choice);
        }
        dbus_message_iter_close_container(it, &dict);
}

static void finish_field(const char *key, DBusMessageIter *v, void *data)
{
        SlmFinish *f = data;

        if (strcmp(key, "tokens") == 0)
                f->tokens = (uint32_t)get_u64(v);
        else if (strcmp(key, "prompt-tokens") == 0)
                f->prompt_tokens = (uint32_t)get_u64(v);
        else if (strcmp(key, "prompt-ms") == 0)
                f->prompt_ms = get_double(v);
        else if (strcmp(key, "decode-ms") == 0)
                f->decode_ms = get_double(v);
        else if (strcmp(key, "tokens-per-second") == 0)
                f->tokens_per_second = get_double(v);
        else if (strcmp(key, "message") == 0 &&
                 dbus_message_iter_get_arg_type(v) == DBUS_TYPE_STRING) {
                const char *m;
                dbus_message_iter_get_basic(v, &m);
                snprintf(f->message, sizeof(f->message), "%s", m);
        } else if (strcmp(key, "tool-calls") == 0 &&
                   dbus_message_iter_get_arg_type(v) == DBUS_TYPE_STRING) {
                const char *calls;
                dbus_message_iter_get_basic(v, &calls);
                free(f->tool_calls);
                f->tool_calls = strdup(calls);
        }
}

void slm_finish_clear(SlmFinish *f)
{
        free(f->tool_calls);
        f->tool_calls = NULL;
}

/*
 * After Generate or Chat was accepted: dispatch Token signals to the
 * callback until Finished, sending Cancel when asked to.
 */
static int stream(SlmSession *s, SlmTokenFunc on_token, void *user_data, SlmFinish *ret,
                  SlmClientError *err)
{
        DBusConnection *conn = s->c->conn;
        bool cancel_sent = false;
        SlmFinish fin;

        memset(&fin, 0, sizeof(fin));

        for (;;) {
                DBusMessage *m;

                if (s->cancel && !cancel_sent) {
                        DBusMessage *cm = new_call(s->path, SESSION_IFACE, "Cancel");
                        dbus_message_set_no_reply(cm, TRUE);
                        dbus_connection_send(conn, cm, NULL);
                        dbus_message_unref(cm);
                        cancel_sent = true;
                }
                m = dbus_connection_pop_message(conn);
                if (!m) {
                        if (!dbus_connection_read_write(conn, 100))
                                return set_error(err, SLM_STATUS_DISCONNECTED, NULL,
                                                 "the bus connection closed");
                        continue;
                }
                if (dbus_message_is_signal(m, SESSION_IFACE, "Token") &&
                    strcmp(dbus_message_get_path(m), s->path) == 0) {
                        const char *text;
                        if (dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &text,
                                                  DBUS_TYPE_INVALID) &&
                            on_token && !on_token(text, user_data))
                                s->cancel = 1;
                } else if (dbus_message_is_signal(m, SESSION_IFACE, "Finished") &&
                           strcmp(dbus_message_get_path(m), s->path) == 0) {
                        DBusMessageIter it;
                        const char *reason = "";
                        dbus_message_iter_init(m, &it);
                        dbus_message_iter_get_basic(&it, &reason);
                        snprintf(fin.reason, sizeof(fin.reason), "%s", reason);
                        dbus_message_iter_next(&it);
                        read_dict(&it, finish_field, &fin);
                        dbus_message_unref(m);
                        s->cancel = 0;
                        if (ret)
                                *ret = fin;
                        else
                                free(fin.tool_calls);
                        return 0;
                } else if (dbus_message_is_signal(m, DBUS_INTERFACE_DBUS, "NameOwnerChanged")) {
                        const char *name, *old, *new_owner;
                        if (dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name,
                                                  DBUS_TYPE_STRING, &old, DBUS_TYPE_STRING,
                                                  &new_owner, DBUS_TYPE_INVALID) &&
                            strcmp(name, BUS_NAME) == 0 && !*new_owner) {
                                dbus_message_unref(m);
                                return set_error(err, SLM_STATUS_DISCONNECTED, NULL,
                                                 "slmd left the bus");
                        }
                } else if (dbus_message_is_signal(m, DBUS_INTERFACE_LOCAL, "Disconnected")) {
                        dbus_message_unref(m);
                        return set_error(err, SLM_STATUS_DISCONNECTED, NULL,
                                         "the bus connection closed");
                }
                dbus_message_unref(m);
        }
}

int slm_session_generate(SlmSession *s, const char *prompt, const SlmGenerateOptions *opts,
                         SlmTokenFunc on_token, void *user_data, SlmFinish *ret_finish,
                         SlmClientError *err)
{
        DBusMessage *msg;
        DBusMessageIter it;

        if (check_utf8(prompt, err) < 0 || check_options_utf8(opts, err) < 0)
                return SLM_STATUS_INVALID_ARGUMENT;
        msg = new_call(s->path, SESSION_IFACE, "Generate");
        s->cancel = 0;
        dbus_message_iter_init_append(msg, &it);
        dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &prompt);
        append_generate_options(&it, opts);
        if (call_void(s->c, msg, err) < 0)
                return err ? err->status : SLM_STATUS_FAILED;
        return stream(s, on_token, user_data, ret_finish, err);
}

int slm_session_chat(SlmSession *s, const SlmChatTurn *turns, size_t n,
                     const SlmGenerateOptions *opts, SlmTokenFunc on_token, void *user_data,
                     SlmFinish *ret_finish, SlmClientError *err)
{
        DBusMessage *msg;
        DBusMessageIter it, arr, st;

        for (size_t i = 0; i < n; i++)
                if (check_utf8(turns[i].role, err) < 0 || check_utf8(turns[i].content, err) < 0)
                        return SLM_STATUS_INVALID_ARGUMENT;
        if (check_options_utf8(opts, err) < 0)
                return SLM_STATUS_INVALID_ARGUMENT;
        msg = new_call(s->path, SESSION_IFACE, "Chat");
        s->cancel = 0;
        dbus_message_iter_init_append(msg, &it);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(ss)", &arr);
        for (size_t i = 0; i < n; i++) {
                dbus_message_iter_open_container(&arr, DBUS_TYPE_STRUCT, NULL, &st);
                dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &turns[i].role);
                dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &turns[i].content);
                dbus_message_iter_close_container(&arr, &st);
        }
        dbus_message_iter_close_container(&it, &arr);
        append_generate_options(&it, opts);
        if (call_void(s->c, msg, err) < 0)
                return err ? err->status : SLM_STATUS_FAILED;
        return stream(s, on_token, user_data, ret_finish, err);
}

int slm_session_chat_messages(SlmSession *s, const SlmMessage *msgs, size_t n,
                              const SlmGenerateOptions *opts, SlmTokenFunc on_token,
                              void *user_data, SlmFinish *ret_finish, SlmClientError *err)
{
        DBusMessage *msg;
        DBusMessageIter it, arr, dict;

        for (size_t i = 0; i < n; i++) {
                const char *fields[] = { msgs[i].role, msgs[i].content, msgs[i].tool_calls,
                                         msgs[i].tool_call_id };
                for (size_t k = 0; k < 4; k++)
                        if (fields[k] && check_utf8(fields[k], err) < 0)
                                return SLM_STATUS_INVALID_ARGUMENT;
        }
        if (check_options_utf8(opts, err) < 0)
                return SLM_STATUS_INVALID_ARGUMENT;
        msg = new_call(s->path, SESSION_IFACE, "ChatMessages");
        s->cancel = 0;
        dbus_message_iter_init_append(msg, &it);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "a{sv}", &arr);
        for (size_t i = 0; i < n; i++) {
                dbus_message_iter_open_container(&arr, DBUS_TYPE_ARRAY, "{sv}", &dict);
                if (msgs[i].role)
                        append_dict_entry(&dict, "role", DBUS_TYPE_STRING, &msgs[i].role);
                if (msgs[i].content)
                        append_dict_entry(&dict, "content", DBUS_TYPE_STRING, &msgs[i].content);
                if (msgs[i].tool_calls)
                        append_dict_entry(&dict, "tool-calls", DBUS_TYPE_STRING,
                                          &msgs[i].tool_calls);
                if (msgs[i].tool_call_id)
                        append_dict_entry(&dict, "tool-call-id", DBUS_TYPE_STRING,
                                          &msgs[i].tool_call_id);
                dbus_message_iter_close_container(&arr, &dict);
        }
        dbus_message_iter_close_container(&it, &arr);
        append_generate_options(&it, opts);
        if (call_void(s->c, msg, err) < 0)
                return err ? err->status : SLM_STATUS_FAILED;
        return stream(s, on_token, user_data, ret_finish, err);
}

int slm_session_append(SlmSession *s, const char *text, SlmClientError *err)
{
        DBusMessage *msg;

        if (check_utf8(text, err) < 0)
                return SLM_STATUS_INVALID_ARGUMENT;
        msg = new_call(s->path, SESSION_IFACE, "Append");
        dbus_message_append_args(msg, DBUS_TYPE_STRING, &text, DBUS_TYPE_INVALID);
        return call_void(s->c, msg, err);
}

int slm_session_reset(SlmSession *s, SlmClientError *err)
{
        return call_void(s->c, new_call(s->path, SESSION_IFACE, "Reset"), err);
}

static int call_strv(SlmSession *s, const char *method, const char *text, uint32_t n, char ***ret,
                     SlmClientError *err)
{
        DBusMessage *msg, *reply;
        DBusError e;
        char **v = NULL;
        int len = 0;

        if (check_utf8(text, err) < 0)
                return SLM_STATUS_INVALID_ARGUMENT;
        msg = new_call(s->path, SESSION_IFACE, method);
        dbus_message_append_args(msg, DBUS_TYPE_STRING, &text, DBUS_TYPE_UINT32, &n,
                                 DBUS_TYPE_INVALID);
        reply = call(s->c, msg, err);
        if (!reply)
                return err ? err->status : SLM_STATUS_FAILED;
        dbus_error_init(&e);
        if (!dbus_message_get_args(reply, &e, DBUS_TYPE_ARRAY, DBUS_TYPE_STRING, &v, &len,
                                   DBUS_TYPE_INVALID)) {
                dbus_message_unref(reply);
                return from_dbus_error(err, &e);
        }
        dbus_message_unref(reply);
        if (!v) {
                /* libdbus gives NULL for an empty array */
                v = calloc(1, sizeof(char *));
                if (!v)
                        return set_error(err, SLM_STATUS_FAILED, NULL, "out of memory");
        }
        *ret = v;
        return 0;
}

int slm_session_suggest(SlmSession *s, const char *text, uint32_t n, char ***ret,
                        SlmClientError *err)
{
        return call_strv(s, "Suggest", text, n, ret, err);
}

int slm_session_smart_replies(SlmSession *s, const char *message, uint32_t n, char ***ret,
                              SlmClientError *err)
{
        return call_strv(s, "SmartReplies", message, n, ret, err);
}

void slm_strv_free(char **v)
{
        if (v && v[0] == NULL) {
                free(v);
                return;
        }
        dbus_free_string_array(v);
}
