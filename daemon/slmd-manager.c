/* SPDX-License-Identifier: MIT */
/*
 * The manager object, /org/slmd/Slm1: the model store, the resident model,
 * sessions and who owns them.
 */
#include <string.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "slmd-daemon.h"
#include "slmd-error.h"
#include "model.h"
#include "slm-types.h"

typedef struct {
        char *name;
        guint uid;
        guint watch;
        guint n_sessions;
} Owner;

static void owner_free(gpointer p)
{
        Owner *o = p;

        if (o->watch)
                g_bus_unwatch_name(o->watch);
        g_free(o->name);
        g_free(o);
}

GHashTable *slmd_owners_new(void)
{
        return g_hash_table_new_full(g_str_hash, g_str_equal, NULL, owner_free);
}

guint slmd_daemon_peer_uid(SlmdDaemon *d, const char *sender)
{
        g_autoptr(GVariant) r = NULL;
        guint uid;

        r = g_dbus_connection_call_sync(d->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "GetConnectionUnixUser",
                                        g_variant_new("(s)", sender), G_VARIANT_TYPE("(u)"),
                                        G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
        if (!r)
                return (guint)-1;
        g_variant_get(r, "(u)", &uid);
        return uid;
}

void slmd_daemon_update_state(SlmdDaemon *d)
{
        const char *model = slmd_dbus_manager_get_active_model(d->manager);
        const char *state = slmd_worker_busy(d->worker) ? "busy"
                            : model && *model           ? "ready"
                                                        : "idle";

        if (g_strcmp0(slmd_dbus_manager_get_state(d->manager), state) != 0)
                slmd_dbus_manager_set_state(d->manager, state);
        slmd_dbus_manager_set_sessions(d->manager, g_hash_table_size(d->sessions));
}

/* Tell the worker which model to load when one is needed. */
static void update_default(SlmdDaemon *d)
{
        const char *name = slmd_store_get_default(d->store);
        const SlmdModelInfo *m = slmd_store_get(d->store, name);

        if (d->preload_path && !m)
                slmd_worker_set_default(d->worker, d->preload_name, d->preload_path);
        else
                slmd_worker_set_default(d->worker, m ? m->name : NULL, m ? m->path : NULL);
        slmd_dbus_manager_set_default_model(d->manager, name ? name : "");
}

/* ---- authorization ------------------------------------------------------------------------- */

typedef void (*AuthorizedFunc)(SlmdDaemon *d, GDBusMethodInvocation *inv, GVariant *params);

typedef struct {
        SlmdDaemon *d;
        GDBusMethodInvocation *inv;
        GVariant *params;
        AuthorizedFunc func;
} AuthCall;

static void auth_call_free(AuthCall *c)
{
        g_object_unref(c->inv);
        g_variant_unref(c->params);
        g_free(c);
}

static void auth_done(GObject *source, GAsyncResult *res, gpointer data)
{
        AuthCall *c = data;
        g_autoptr(GError) error = NULL;
        g_autoptr(PolkitAuthorizationResult) result =
            polkit_authority_check_authorization_finish(POLKIT_AUTHORITY(source), res, &error);

        if (result && polkit_authorization_result_get_is_authorized(result))
                c->func(c->d, c->inv, c->params);
        else
                g_dbus_method_invocation_return_error(
                    c->inv, SLMD_ERROR, SLMD_ERROR_PERMISSION_DENIED,
                    "not authorized to manage models%s%s", error ? ": " : "",
                    error ? error->message : "");
        auth_call_free(c);
}

/*
 * Run @func once the caller may manage models: polkit decides on the
 * system bus; on a development bus the daemon's own user and root may.
 */
static void authorize(SlmdDaemon *d, GDBusMethodInvocation *inv, GVariant *params,
                      AuthorizedFunc func)
{
        const char *sender = g_dbus_method_invocation_get_sender(inv);
        AuthCall *c;

        if (!d->use_polkit) {
                guint uid = slmd_daemon_peer_uid(d, sender);
                if (uid == 0 || uid == (guint)geteuid())
                        func(d, inv, params);
                else
                        g_dbus_method_invocation_return_error(
                            inv, SLMD_ERROR, SLMD_ERROR_PERMISSION_DENIED,
                            "only uid %u may manage models", (guint)geteuid());
                return;
        }
        c = g_new0(AuthCall, 1);
        c->d = d;
        c->inv = g_object_ref(inv);
        c->params = g_variant_ref(params);
        c->func = func;
        g_autoptr(PolkitSubject) subject = polkit_system_bus_name_new(sender);
        polkit_authority_check_authorization(
            d->authority, subject, SLMD_MANAGE_ACTION, NULL,
            POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION, NULL, auth_done, c);
}

/* ---- models -------------------------------------------------------------------------------- */

static gboolean handle_list_models(SlmdDBusManager *skel, GDBusMethodInvocation *inv,
                                   gpointer user_data)
{
        SlmdDaemon *d = user_data;
        GPtrArray *models = slmd_store_list(d->store);
        const char *def = slmd_store_get_default(d->store);
        const char *active = slmd_dbus_manager_get_active_model(skel);
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; i < models->len; i++) {
                const SlmdModelInfo *m = models->pdata[i];
                g_variant_builder_open(&b, G_VARIANT_TYPE_VARDICT);
                g_variant_builder_add(&b, "{sv}", "name", g_variant_new_string(m->name));
                g_variant_builder_add(&b, "{sv}", "size", g_variant_new_uint64(m->size));
                g_variant_builder_add(&b, "{sv}", "architecture",
                                      g_variant_new_string(m->architecture));
                g_variant_builder_add(&b, "{sv}", "quantization",
                                      g_variant_new_string(m->quantization));
                g_variant_builder_add(&b, "{sv}", "parameters",
                                      g_variant_new_uint64(m->parameters));
                g_variant_builder_add(&b, "{sv}", "sha256", g_variant_new_string(m->sha256));
                g_variant_builder_add(&b, "{sv}", "default",
                                      g_variant_new_boolean(g_strcmp0(def, m->name) == 0));
                g_variant_builder_add(&b, "{sv}", "loaded",
                                      g_variant_new_boolean(g_strcmp0(active, m->name) == 0));
                g_variant_builder_close(&b);
        }
        g_dbus_method_invocation_return_value(inv, g_variant_new("(aa{sv})", &b));
        return TRUE;
}

typedef struct {
        SlmdDaemon *d;
        int fd;
        char *name;
        char *sha256; /* lower-case hex, or NULL */
} ImportJob;

static void import_job_free(gpointer p)
{
        ImportJob *j = p;

        if (j->fd >= 0)
                close(j->fd);
        g_free(j->name);
        g_free(j->sha256);
        g_free(j);
}

static void import_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
        ImportJob *j = data;
        GError *error = NULL;
        SlmdStaged *staged = slmd_store_stage(j->d->store, j->fd, j->name, j->sha256,
                                              j->d->config.max_import_bytes, cancellable, &error);

        if (staged)
                g_task_return_pointer(task, staged, (GDestroyNotify)slmd_staged_free);
        else
                g_task_return_error(task, error);
}

static void import_done(GObject *source, GAsyncResult *res, gpointer data)
{
        GDBusMethodInvocation *inv = data;
        ImportJob *j = g_task_get_task_data(G_TASK(res));
        g_autoptr(GError) error = NULL;
        g_autoptr(SlmdStaged) staged = g_task_propagate_pointer(G_TASK(res), &error);
        const SlmdModelInfo *m = staged ? slmd_store_commit(j->d->store, staged, &error) : NULL;

        if (!m) {
                g_dbus_method_invocation_return_gerror(inv, error);
        } else {
                update_default(j->d);
                g_dbus_method_invocation_return_value(inv, g_variant_new("(s)", m->name));
        }
        g_object_unref(inv);
}

/* ImportModel's options into *ret_sha256 (lower-case hex, or NULL when not given). */
static gboolean parse_import_options(GVariant *options, char **ret_sha256, GError **error)
{
        GVariantIter it;
        const char *key;
        GVariant *value;

        g_variant_iter_init(&it, options);
        while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
                g_autoptr(GVariant) v = value;
                const char *hex;
                if (strcmp(key, "sha256") != 0) {
                        g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                    "unknown ImportModel option '%s'", key);
                        return FALSE;
                }
                if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
                        g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                    "option sha256 must be a string (s), not %s",
                                    g_variant_get_type_string(v));
                        return FALSE;
                }
                hex = g_variant_get_string(v, NULL);
                gsize n = strlen(hex), ok = 0;
                while (ok < n && g_ascii_isxdigit(hex[ok]))
                        ok++;
                if (n != 64 || ok != n) {
                        g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                    "option sha256 must be 64 hexadecimal digits, not %zu "
                                    "characters%s",
                                    n, ok == n ? "" : " with other characters among them");
                        return FALSE;
                }
                g_free(*ret_sha256);
                *ret_sha256 = g_ascii_strdown(hex, -1);
        }
        return TRUE;
}

static void do_import(SlmdDaemon *d, GDBusMethodInvocation *inv, GVariant *params)
{
        GUnixFDList *fds =
            g_dbus_message_get_unix_fd_list(g_dbus_method_invocation_get_message(inv));
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) options = NULL;
        g_autoptr(GTask) task = NULL;
        ImportJob *j;
        gint32 handle;
        const char *name;

        g_autofree char *sha256 = NULL;

        g_variant_get(params, "(h&s@a{sv})", &handle, &name, &options);
        if (!parse_import_options(options, &sha256, &error)) {
                g_dbus_method_invocation_return_gerror(inv, error);
                return;
        }
        if (*name && !slmd_model_name_is_valid(name)) {
                g_dbus_method_invocation_return_error(
                    inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                    "invalid model name '%s': use 1 to 64 of A-Z a-z 0-9 . _ -", name);
                return;
        }
        if (*name && slmd_store_get(d->store, name)) {
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_FAILED,
                                                      "a model named '%s' exists; remove it first",
                                                      name);
                return;
        }
        j = g_new0(ImportJob, 1);
        j->d = d;
        j->name = g_strdup(name);
        j->sha256 = g_steal_pointer(&sha256);
        j->fd = fds ? g_unix_fd_list_get(fds, handle, &error) : -1;
        if (j->fd < 0) {
                import_job_free(j);
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                                      "no readable file descriptor was passed");
                return;
        }
        task = g_task_new(NULL, NULL, import_done, g_object_ref(inv));
        g_task_set_task_data(task, j, import_job_free);
        g_task_run_in_thread(task, import_thread);
}

/* The descriptor travels in the message's fd list; do_import takes it from there. */
static gboolean handle_import_model(SlmdDBusManager *skel, GDBusMethodInvocation *inv, GVariant *fd,
                                    const char *name, GVariant *options, gpointer user_data)
{
        authorize(user_data, inv, g_dbus_method_invocation_get_parameters(inv), do_import);
        return TRUE;
}

/* Requests of the manager to the worker: the invocation is answered when they are done. */
static void on_manager_event(SlmdRequest *req, SlmdEvent event, const char *text,
                             gpointer user_data)
{
        GDBusMethodInvocation *inv = user_data;

        if (event != SLMD_EVENT_DONE)
                return;
        if (req->error)
                g_dbus_method_invocation_return_gerror(inv, req->error);
        else
                g_dbus_method_invocation_return_value(inv, NULL);
}

static void submit_for(SlmdDaemon *d, GDBusMethodInvocation *inv, SlmdRequest *req)
{
        req->func = inv ? on_manager_event : NULL;
        req->user_data = inv ? g_object_ref(inv) : NULL;
        req->user_data_free = inv ? g_object_unref : NULL;
        slmd_worker_submit(d->worker, req);
}

static void do_remove(SlmdDaemon *d, GDBusMethodInvocation *inv, GVariant *params)
{
        g_autoptr(GError) error = NULL;
        const char *name;
        gboolean force;

        g_variant_get(params, "(&sb)", &name, &force);
        if (!slmd_store_get(d->store, name)) {
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_NOT_FOUND,
                                                      "no model named '%s'", name);
                return;
        }
        if (g_strcmp0(slmd_dbus_manager_get_active_model(d->manager), name) == 0) {
                if (!force) {
                        g_dbus_method_invocation_return_error(
                            inv, SLMD_ERROR, SLMD_ERROR_BUSY,
                            "'%s' is loaded: unload it first or force the removal", name);
                        return;
                }
                g_autoptr(SlmdRequest) req = slmd_request_new(SLMD_REQ_UNLOAD, NULL);
                submit_for(d, NULL, req);
        }
        if (!slmd_store_remove(d->store, name, &error)) {
                g_dbus_method_invocation_return_gerror(inv, error);
                return;
        }
        update_default(d);
        g_dbus_method_invocation_return_value(inv, NULL);
}

static gboolean handle_remove_model(SlmdDBusManager *skel, GDBusMethodInvocation *inv,
                                    const char *name, gboolean force, gpointer user_data)
{
        authorize(user_data, inv, g_dbus_method_invocation_get_parameters(inv), do_remove);
        return TRUE;
}

static void do_load(SlmdDaemon *d, GDBusMethodInvocation *inv, GVariant *params)
{
        const char *name;
        const SlmdModelInfo *m;
        g_autoptr(SlmdRequest) req = slmd_request_new(SLMD_REQ_LOAD, NULL);

        g_variant_get(params, "(&s)", &name);
        if (!*name && d->preload_path && !slmd_store_get_default(d->store)) {
                req->model_name = g_strdup(d->preload_name);
                req->text = g_strdup(d->preload_path);
        } else {
                m = slmd_store_get(d->store, *name ? name : slmd_store_get_default(d->store));
                if (!m) {
                        g_dbus_method_invocation_return_error(
                            inv, SLMD_ERROR, *name ? SLMD_ERROR_NOT_FOUND : SLMD_ERROR_NO_MODEL,
                            *name ? "no model named '%s'" : "there is no default model%s", name);
                        return;
                }
                req->model_name = g_strdup(m->name);
                req->text = g_strdup(m->path);
        }
        submit_for(d, inv, req);
}

static gboolean handle_load_model(SlmdDBusManager *skel, GDBusMethodInvocation *inv,
                                  const char *name, gpointer user_data)
{
        authorize(user_data, inv, g_dbus_method_invocation_get_parameters(inv), do_load);
        return TRUE;
}

static void do_unload(SlmdDaemon *d, GDBusMethodInvocation *inv, GVariant *params)
{
        g_autoptr(SlmdRequest) req = slmd_request_new(SLMD_REQ_UNLOAD, NULL);
        submit_for(d, inv, req);
}

static gboolean handle_unload_model(SlmdDBusManager *skel, GDBusMethodInvocation *inv,
                                    gpointer user_data)
{
        authorize(user_data, inv, g_dbus_method_invocation_get_parameters(inv), do_unload);
        return TRUE;
}

static void do_set_default(SlmdDaemon *d, GDBusMethodInvocation *inv, GVariant *params)
{
        g_autoptr(GError) error = NULL;
        const char *name;

        g_variant_get(params, "(&s)", &name);
        if (!slmd_store_set_default(d->store, name, &error)) {
                g_dbus_method_invocation_return_gerror(inv, error);
                return;
        }
        update_default(d);
        g_dbus_method_invocation_return_value(inv, NULL);
}

static gboolean handle_set_default_model(SlmdDBusManager *skel, GDBusMethodInvocation *inv,
                                         const char *name, gpointer user_data)
{
        authorize(user_data, inv, g_dbus_method_invocation_get_parameters(inv), do_set_default);
        return TRUE;
}

/* ---- sessions ------------------------------------------------------------------------------ */

static void owner_vanished_cb(GDBusConnection *conn, const char *name, gpointer user_data)
{
        slmd_manager_owner_vanished(user_data, name);
}

static gboolean handle_create_session(SlmdDBusManager *skel, GDBusMethodInvocation *inv,
                                      GVariant *options, gpointer user_data)
{
        SlmdDaemon *d = user_data;
        const char *sender = g_dbus_method_invocation_get_sender(inv);
        g_autoptr(GError) error = NULL;
        Owner *o = g_hash_table_lookup(d->owners, sender);
        SlmdSession *s;
        guint uid, n_uid = 0;
        GHashTableIter it;
        gpointer value;

        uid = o ? o->uid : slmd_daemon_peer_uid(d, sender);
        g_hash_table_iter_init(&it, d->sessions);
        while (g_hash_table_iter_next(&it, NULL, &value))
                if (slmd_session_uid(value) == uid)
                        n_uid++;
        if (n_uid >= d->config.max_sessions_per_user) {
                g_dbus_method_invocation_return_error(
                    inv, SLMD_ERROR, SLMD_ERROR_QUOTA_EXCEEDED,
                    "uid %u already has %u sessions, the most allowed", uid, n_uid);
                return TRUE;
        }
        if (!d->budget.accept_sessions) {
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_THROTTLED,
                                                      "no new sessions now: %s", d->budget.reason);
                return TRUE;
        }
        s = slmd_session_new(d, sender, uid, options, &error);
        if (!s) {
                g_dbus_method_invocation_return_gerror(inv, error);
                return TRUE;
        }
        if (!o) {
                o = g_new0(Owner, 1);
                o->name = g_strdup(sender);
                o->uid = uid;
                g_hash_table_insert(d->owners, o->name, o);
                o->watch =
                    g_bus_watch_name_on_connection(d->conn, sender, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                   NULL, owner_vanished_cb, d, NULL);
        }
        o->n_sessions++;
        g_hash_table_insert(d->sessions, g_strdup(slmd_session_path(s)), s);
        slmd_daemon_update_state(d);
        slmd_dbus_manager_complete_create_session(skel, inv, slmd_session_path(s));
        return TRUE;
}

void slmd_manager_session_closed(SlmdDaemon *d, SlmdSession *s)
{
        Owner *o = g_hash_table_lookup(d->owners, slmd_session_owner(s));
        g_autofree char *path = g_strdup(slmd_session_path(s));

        slmd_session_close(s);
        if (o && --o->n_sessions == 0)
                g_hash_table_remove(d->owners, o->name);
        g_hash_table_remove(d->sessions, path); /* drops the table's reference */
        slmd_daemon_update_state(d);
}

void slmd_manager_owner_vanished(SlmdDaemon *d, const char *owner)
{
        g_autoptr(GPtrArray) gone = g_ptr_array_new();
        GHashTableIter it;
        gpointer value;

        g_hash_table_iter_init(&it, d->sessions);
        while (g_hash_table_iter_next(&it, NULL, &value))
                if (strcmp(slmd_session_owner(value), owner) == 0)
                        g_ptr_array_add(gone, value);
        for (guint i = 0; i < gone->len; i++)
                slmd_manager_session_closed(d, gone->pdata[i]);
}

/* Architectures and WeightTypes: what the engine runs. */
static void set_capabilities(SlmdDaemon *d)
{
        const char *archs[SLM_ARCH_COUNT + 1], *types[SLM_TYPE_COUNT + 1];
        int n = 0;

        for (int a = 0; a < SLM_ARCH_COUNT; a++)
                archs[a] = slm_arch_name((SlmArch)a);
        archs[SLM_ARCH_COUNT] = NULL;
        for (uint32_t t = 0; t < SLM_TYPE_COUNT; t++) {
                const SlmTypeTraits *tt = slm_type_traits(t);
                if (tt && tt->weight_type)
                        types[n++] = tt->name;
        }
        types[n] = NULL;
        slmd_dbus_manager_set_architectures(d->manager, archs);
        slmd_dbus_manager_set_weight_types(d->manager, types);
}

gboolean slmd_manager_export(SlmdDaemon *d, GError **error)
{
        d->manager = slmd_dbus_manager_skeleton_new();
        slmd_dbus_manager_set_version(d->manager, PACKAGE_VERSION);
        slmd_dbus_manager_set_backend(d->manager, slmd_worker_backend(d->worker));
        slmd_dbus_manager_set_active_model(d->manager, "");
        slmd_dbus_manager_set_state(d->manager, "idle");
        set_capabilities(d);
        update_default(d);
        g_signal_connect(d->manager, "handle-list-models", G_CALLBACK(handle_list_models), d);
        g_signal_connect(d->manager, "handle-import-model", G_CALLBACK(handle_import_model), d);
        g_signal_connect(d->manager, "handle-remove-model", G_CALLBACK(handle_remove_model), d);
        g_signal_connect(d->manager, "handle-load-model", G_CALLBACK(handle_load_model), d);
        g_signal_connect(d->manager, "handle-unload-model", G_CALLBACK(handle_unload_model), d);
        g_signal_connect(d->manager, "handle-set-default-model",
                         G_CALLBACK(handle_set_default_model), d);
        g_signal_connect(d->manager, "handle-create-session", G_CALLBACK(handle_create_session), d);
        return g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(d->manager), d->conn,
                                                SLMD_MANAGER_PATH, error);
}
