/* SPDX-License-Identifier: MIT */
/*
 * slmd: the language-model daemon. The main loop owns D-Bus; the inference
 * thread (slmd-worker.c) owns the model and never blocks it.
 */
#include <errno.h>
#include <locale.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "slmd-daemon.h"
#include "slmd-error.h"
#include "model.h"

#define DEFAULT_CONFIG    SYSCONFDIR "/slmd/slmd.conf"
#define DEFAULT_STATE_DIR LOCALSTATEDIR "/lib/slmd"

static gboolean on_signal(gpointer data)
{
        SlmdDaemon *d = data;

        g_message("stopping");
        g_main_loop_quit(d->loop);
        return G_SOURCE_CONTINUE;
}

static void on_name_lost(GDBusConnection *conn, const char *name, gpointer data)
{
        SlmdDaemon *d = data;

        g_warning("cannot own %s on the bus%s", name, conn ? " (is another slmd running?)" : "");
        g_main_loop_quit(d->loop);
}

static void on_name_acquired(GDBusConnection *conn, const char *name, gpointer data)
{
        g_message("ready on the bus as %s", name);
}

static void on_closed(GDBusConnection *conn, gboolean remote, GError *error, gpointer data)
{
        SlmdDaemon *d = data;

        g_message("the bus connection closed");
        g_main_loop_quit(d->loop);
}

static gboolean on_request_done(gpointer data)
{
        slmd_daemon_update_state(data);
        return G_SOURCE_REMOVE;
}

static void on_model_changed(const char *name, gpointer data)
{
        SlmdDaemon *d = data;

        g_message("model %s%s", name ? "loaded: " : "unloaded", name ? name : "");
        slmd_dbus_manager_set_active_model(d->manager, name ? name : "");
        slmd_daemon_update_state(d);
}

/* [budget]: the governor's thresholds, keep-alive and who may be interactive. */
static gboolean load_budget_config(SlmdConfig *c, GKeyFile *kf, const char *path, GError **error)
{
        g_auto(GStrv) keys = g_key_file_get_keys(kf, "budget", NULL, NULL);
        SlmPolicy *p = &c->policy;

        for (char **k = keys; k && *k; k++) {
                g_autoptr(GError) e = NULL;
                double v = 0;
                gboolean number = strcmp(*k, "interactive-users") != 0;

                if (number)
                        v = g_key_file_get_double(kf, "budget", *k, &e);
                if (e) {
                        g_propagate_prefixed_error(error, g_steal_pointer(&e), "%s: ", path);
                        return FALSE;
                }
                if (number && (v < 0 || v > 1e9)) {
                        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                                    "%s: [budget] %s is out of range", path, *k);
                        return FALSE;
                }
                if (strcmp(*k, "hot-temp") == 0)
                        p->hot_c = v;
                else if (strcmp(*k, "critical-temp") == 0)
                        p->critical_c = v;
                else if (strcmp(*k, "critical-margin") == 0)
                        p->critical_margin_c = v;
                else if (strcmp(*k, "battery-low") == 0)
                        p->battery_low_pct = (int)v;
                else if (strcmp(*k, "hot-pace") == 0)
                        p->hot_pace_tps = v;
                else if (strcmp(*k, "normal-pace") == 0)
                        p->normal_pace_tps = v;
                else if (strcmp(*k, "background-pace") == 0)
                        p->background_pace_tps = v;
                else if (strcmp(*k, "pressure-drop") == 0)
                        p->pressure_drop = v;
                else if (strcmp(*k, "pressure-unload") == 0)
                        p->pressure_unload = v;
                else if (strcmp(*k, "min-available-mb") == 0)
                        p->min_available_mb = (uint64_t)v;
                else if (strcmp(*k, "kv-cap-mb") == 0)
                        p->kv_cap_mb = (uint64_t)v;
                else if (strcmp(*k, "keep-alive") == 0)
                        c->keep_alive_s = (guint)v;
                else if (strcmp(*k, "poll-ms") == 0 && v >= 50)
                        c->poll_ms = (guint)v;
                else if (strcmp(*k, "interactive-users") == 0) {
                        g_strfreev(c->interactive_users);
                        c->interactive_users =
                            g_key_file_get_string_list(kf, "budget", *k, NULL, NULL);
                } else {
                        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                                    "%s: unknown key '%s' in [budget] or out of range", path, *k);
                        return FALSE;
                }
        }
        return TRUE;
}

/* [daemon] keys of the configuration file; command-line options override them. */
static gboolean load_config(SlmdConfig *c, const char *path, gboolean must_exist, GError **error)
{
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) local = NULL;
        g_auto(GStrv) keys = NULL;

        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
                if (!must_exist && g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return TRUE;
                g_propagate_prefixed_error(error, g_steal_pointer(&local), "%s: ", path);
                return FALSE;
        }
        if (!load_budget_config(c, kf, path, error))
                return FALSE;
        keys = g_key_file_get_keys(kf, "daemon", NULL, NULL);
        for (char **k = keys; k && *k; k++) {
                g_autoptr(GError) e = NULL;
                if (strcmp(*k, "state-dir") == 0) {
                        g_free(c->state_dir);
                        c->state_dir = g_key_file_get_string(kf, "daemon", *k, &e);
                } else if (strcmp(*k, "backend") == 0) {
                        g_free(c->backend);
                        c->backend = g_key_file_get_string(kf, "daemon", *k, &e);
                } else if (strcmp(*k, "threads") == 0) {
                        c->threads = g_key_file_get_integer(kf, "daemon", *k, &e);
                } else if (strcmp(*k, "kv-type") == 0) {
                        g_autofree char *v = g_key_file_get_string(kf, "daemon", *k, &e);
                        if (v && slm_kv_type_from_name(v, &c->kv_type) < 0)
                                g_set_error(&e, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                                            "kv-type is f16, q8_0 or f32, not '%s'", v);
                } else if (strcmp(*k, "max-sessions-per-user") == 0) {
                        c->max_sessions_per_user =
                            (guint)g_key_file_get_uint64(kf, "daemon", *k, &e);
                } else if (strcmp(*k, "user-kv-share") == 0) {
                        gint v = g_key_file_get_integer(kf, "daemon", *k, &e);
                        if (!e && (v < 1 || v > 100))
                                g_set_error(&e, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                                            "user-kv-share is a percentage, 1 to 100");
                        c->user_kv_share = (guint)v;
                } else if (strcmp(*k, "max-prompt-bytes") == 0) {
                        c->max_prompt_bytes = g_key_file_get_uint64(kf, "daemon", *k, &e);
                } else if (strcmp(*k, "preemption") == 0) {
                        c->no_preemption = !g_key_file_get_boolean(kf, "daemon", *k, &e);
                } else if (strcmp(*k, "max-import-bytes") == 0) {
                        c->max_import_bytes = g_key_file_get_uint64(kf, "daemon", *k, &e);
                } else {
                        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                                    "%s: unknown key '%s' in [daemon]", path, *k);
                        return FALSE;
                }
                if (e) {
                        g_propagate_prefixed_error(error, g_steal_pointer(&e), "%s: ", path);
                        return FALSE;
                }
        }
        return TRUE;
}

static GDBusConnection *connect_bus(gboolean session, const char *address, GError **error)
{
        if (address)
                return g_dbus_connection_new_for_address_sync(
                    address,
                    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                        G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                    NULL, NULL, error);
        return g_bus_get_sync(session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL, error);
}

int main(int argc, char **argv)
{
        g_autofree char *config_path = NULL, *state_dir = NULL, *model = NULL, *backend = NULL;
        g_autofree char *sysfs_root = NULL, *procfs_root = NULL;
        g_autofree char *address = NULL, *kv_type = NULL;
        gboolean session = FALSE, version = FALSE;
        int threads = 0;
        g_autoptr(GError) error = NULL;
        g_autoptr(GOptionContext) octx = NULL;
        SlmdDaemon d = { 0 };
        guint owner_id;
        int ret = 1;
        const GOptionEntry entries[] = {
                { "session", 0, 0, G_OPTION_ARG_NONE, &session, "Use the session bus", NULL },
                { "address", 0, 0, G_OPTION_ARG_STRING, &address, "Use the bus at ADDRESS",
                  "ADDRESS" },
                { "config", 0, 0, G_OPTION_ARG_FILENAME, &config_path,
                  "Configuration file (default " DEFAULT_CONFIG ")", "FILE" },
                { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
                  "Model store and state (default " DEFAULT_STATE_DIR ")", "DIR" },
                { "model", 0, 0, G_OPTION_ARG_FILENAME, &model,
                  "Load this stored model, or this GGUF file, at start", "NAME|FILE" },
                { "backend", 0, 0, G_OPTION_ARG_STRING, &backend,
                  "cpu, vulkan or auto (default auto)", "NAME" },
                { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Inference threads", "N" },
                { "kv-type", 0, 0, G_OPTION_ARG_STRING, &kv_type,
                  "KV caches in f16, q8_0 or f32 (default f16)", "TYPE" },
                { "sysfs-root", 0, 0, G_OPTION_ARG_FILENAME, &sysfs_root,
                  "Read thermal zones and power supplies here (default /sys)", "DIR" },
                { "procfs-root", 0, 0, G_OPTION_ARG_FILENAME, &procfs_root,
                  "Read memory pressure here (default /proc)", "DIR" },
                { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL },
                { NULL },
        };

#ifdef M_MMAP_THRESHOLD
        /*
         * Any user may send messages of many MiB. glibc raises its mmap
         * threshold after the first such buffer is freed and keeps later ones
         * in the heap, where they stay resident; a fixed threshold gives them
         * back to the system when they are freed.
         */
        mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
        setlocale(LC_ALL, "");
        octx = g_option_context_new("- the language-model service");
        g_option_context_add_main_entries(octx, entries, NULL);
        if (!g_option_context_parse(octx, &argc, &argv, &error)) {
                g_printerr("slmd: %s\n", error->message);
                return 2;
        }
        if (version) {
                g_print("slmd %s\n", PACKAGE_VERSION);
                return 0;
        }

        d.config.state_dir = g_strdup(DEFAULT_STATE_DIR);
        d.config.backend = g_strdup("auto");
        d.config.threads = (int)MIN(g_get_num_processors(), 4);
        d.config.kv_type = SLM_KV_TYPE_DEFAULT;
        d.config.max_sessions_per_user = 16;
        d.config.user_kv_share = 50;
        d.config.max_prompt_bytes = 1 << 20;
        d.config.max_import_bytes = 64ull << 30;
        slm_policy_defaults(&d.config.policy);
        d.config.poll_ms = 2000;
        d.config.keep_alive_s = 0;
        if (!load_config(&d.config, config_path ? config_path : DEFAULT_CONFIG, config_path != NULL,
                         &error)) {
                g_printerr("slmd: %s\n", error->message);
                ret = 2;
                goto out;
        }
        if (state_dir) {
                g_free(d.config.state_dir);
                d.config.state_dir = g_steal_pointer(&state_dir);
        }
        if (backend) {
                g_free(d.config.backend);
                d.config.backend = g_steal_pointer(&backend);
        }
        if (threads)
                d.config.threads = threads;
        if (kv_type && slm_kv_type_from_name(kv_type, &d.config.kv_type) < 0) {
                g_printerr("slmd: --kv-type is f16, q8_0 or f32, not '%s'\n", kv_type);
                ret = 2;
                goto out;
        }
        if (d.config.threads < 1 || d.config.threads > 256) {
                g_printerr("slmd: threads must be 1 to 256\n");
                ret = 2;
                goto out;
        }
        d.config.policy.max_threads = d.config.threads;
        d.config.sysfs_root = sysfs_root ? g_steal_pointer(&sysfs_root) : g_strdup("/sys");
        d.config.procfs_root = procfs_root ? g_steal_pointer(&procfs_root) : g_strdup("/proc");

        d.store = slmd_store_new(d.config.state_dir, &error);
        if (!d.store) {
                g_printerr("slmd: model store: %s\n", error->message);
                goto out;
        }
        d.worker = slmd_worker_new(d.config.backend, d.config.threads, d.config.kv_type,
                                   on_model_changed, on_request_done, &d, &error);
        if (!d.worker) {
                g_printerr("slmd: %s\n", error->message);
                goto out;
        }
        slmd_worker_set_preemption(d.worker, !d.config.no_preemption);
        d.loop = g_main_loop_new(NULL, FALSE);
        d.sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify)slmd_session_unref);
        d.owners = slmd_owners_new();
        d.use_polkit = !session && !address;
        if (d.use_polkit) {
                d.authority = polkit_authority_get_sync(NULL, &error);
                if (!d.authority) {
                        g_printerr("slmd: polkit: %s\n", error->message);
                        goto out;
                }
        }
        d.conn = connect_bus(session, address, &error);
        if (!d.conn) {
                g_printerr("slmd: cannot connect to the bus: %s\n", error->message);
                goto out;
        }
        g_dbus_connection_set_exit_on_close(d.conn, FALSE);
        g_signal_connect(d.conn, "closed", G_CALLBACK(on_closed), &d);

        if (model) {
                const SlmdModelInfo *m = slmd_store_get(d.store, model);
                g_autoptr(SlmdRequest) req = slmd_request_new(SLMD_REQ_LOAD, NULL);
                if (!m && !g_file_test(model, G_FILE_TEST_IS_REGULAR)) {
                        g_printerr("slmd: --model %s: neither a stored model nor a file\n", model);
                        goto out;
                }
                if (!m) {
                        /* served from its own path, outside the store */
                        d.preload_path = g_strdup(model);
                        d.preload_name = g_path_get_basename(model);
                }
                req->model_name = g_strdup(m ? m->name : d.preload_name);
                req->text = g_strdup(m ? m->path : d.preload_path);
                slmd_worker_submit(d.worker, req);
        }
        if (!slmd_manager_export(&d, &error)) {
                g_printerr("slmd: %s\n", error->message);
                goto out;
        }
        (void)slmd_error_quark();
        slmd_budget_start(&d);

        g_unix_signal_add(SIGTERM, on_signal, &d);
        g_unix_signal_add(SIGINT, on_signal, &d);
        owner_id =
            g_bus_own_name_on_connection(d.conn, SLMD_BUS_NAME, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                         on_name_acquired, on_name_lost, &d, NULL);
        g_message("slmd %s: state in %s, backend %s, %d threads", PACKAGE_VERSION,
                  d.config.state_dir, slmd_worker_backend(d.worker), d.config.threads);
        g_main_loop_run(d.loop);
        g_bus_unown_name(owner_id);
        ret = 0;
out:
        slmd_budget_stop(&d);
        /*
         * Sessions close first (they submit their last requests), then the
         * thread stops and its last events are delivered, then the tables go.
         */
        if (d.sessions) {
                GHashTableIter it;
                gpointer value;
                g_hash_table_iter_init(&it, d.sessions);
                while (g_hash_table_iter_next(&it, NULL, &value))
                        slmd_session_close(value);
        }
        /* cancelled requests end within a step; their sessions' state is freed after them */
        while (d.worker && slmd_worker_busy(d.worker))
                g_main_context_iteration(NULL, TRUE);
        slmd_worker_free(d.worker);
        if (d.sessions)
                g_hash_table_unref(d.sessions);
        if (d.owners)
                g_hash_table_unref(d.owners);
        if (d.manager)
                g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(d.manager));
        g_clear_object(&d.manager);
        if (d.conn)
                g_dbus_connection_flush_sync(d.conn, NULL, NULL);
        g_clear_object(&d.conn);
        g_clear_object(&d.authority);
        if (d.loop)
                g_main_loop_unref(d.loop);
        slmd_store_free(d.store);
        g_free(d.config.state_dir);
        g_free(d.config.backend);
        g_free(d.config.sysfs_root);
        g_free(d.config.procfs_root);
        g_strfreev(d.config.interactive_users);
        g_free(d.preload_path);
        g_free(d.preload_name);
        return ret;
}
