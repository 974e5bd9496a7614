/* SPDX-License-Identifier: MIT */
/*
 * The budget in force: every poll interval the device is read (from
 * --sysfs-root and --procfs-root), the governor decides, and a changed
 * budget goes to the worker, the Budget property and the BudgetChanged
 * signal. The power profile comes from power-profiles-daemon, when it is
 * on the bus. Dropping idle KV caches and unloading happen when the budget
 * starts asking for them; an idle model goes after the keep-alive time.
 */
#include "slmd-daemon.h"
#include "slmd-error.h"

#include <string.h>

#include "readers.h"

GVariant *slmd_budget_variant(const SlmBudget *b)
{
        GVariantBuilder vb;

        g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&vb, "{sv}", "thermal",
                              g_variant_new_string(slm_thermal_name(b->thermal)));
        g_variant_builder_add(&vb, "{sv}", "threads", g_variant_new_int32(b->threads));
        g_variant_builder_add(&vb, "{sv}", "max-batch", g_variant_new_int32(b->max_batch));
        g_variant_builder_add(&vb, "{sv}", "pace", g_variant_new_double(b->pace_tps));
        g_variant_builder_add(&vb, "{sv}", "background-pace",
                              g_variant_new_double(b->background_pace_tps));
        g_variant_builder_add(&vb, "{sv}", "normal-allowed",
                              g_variant_new_boolean(b->normal_allowed));
        g_variant_builder_add(&vb, "{sv}", "background-allowed",
                              g_variant_new_boolean(b->background_allowed));
        g_variant_builder_add(&vb, "{sv}", "background-refused",
                              g_variant_new_boolean(b->background_refused));
        g_variant_builder_add(&vb, "{sv}", "accept-sessions",
                              g_variant_new_boolean(b->accept_sessions));
        g_variant_builder_add(&vb, "{sv}", "kv-cap", g_variant_new_uint64(b->kv_cap_bytes));
        g_variant_builder_add(&vb, "{sv}", "drop-idle-kv", g_variant_new_boolean(b->drop_idle_kv));
        g_variant_builder_add(&vb, "{sv}", "unload", g_variant_new_boolean(b->unload));
        g_variant_builder_add(&vb, "{sv}", "reason", g_variant_new_string(b->reason));
        return g_variant_builder_end(&vb);
}

/*
 * The KV cache one user's sessions may hold: user-kv-share of the KV budget,
 * half of the machine's memory (@mem_total_kb), set in the configuration and
 * the worker.
 */
static void set_user_kv(SlmdDaemon *d, guint64 mem_total_kb)
{
        guint64 budget = mem_total_kb * 1024 / 2;

        d->config.user_kv_bytes = budget / 100 * d->config.user_kv_share;
        slmd_worker_set_user_kv_limit(d->worker, d->config.user_kv_bytes);
        if (!budget) {
                g_warning("the machine's memory is unknown: one user's KV caches are bounded by "
                          "the session limit alone");
                return;
        }
        g_autofree char *user = slmd_format_size(d->config.user_kv_bytes);
        g_autofree char *all = slmd_format_size(budget);
        g_message("one user's sessions may hold %s of KV cache (%u %% of %s)", user,
                  d->config.user_kv_share, all);
}

static void submit(SlmdDaemon *d, SlmdRequestKind kind)
{
        g_autoptr(SlmdRequest) req = slmd_request_new(kind, NULL);

        slmd_worker_submit(d->worker, req);
}

static void apply(SlmdDaemon *d, const SlmBudget *b, gboolean announce)
{
        SlmBudget prev = d->budget;

        d->budget = *b;
        slmd_worker_set_budget(d->worker, b);
        slmd_dbus_manager_set_budget(d->manager, slmd_budget_variant(b));
        if (!announce)
                return;
        g_message("budget: %s", b->reason);
        slmd_dbus_manager_emit_budget_changed(d->manager, slmd_budget_variant(b));
        if (b->drop_idle_kv && !prev.drop_idle_kv)
                submit(d, SLMD_REQ_DROP_CACHES);
        if (b->unload && !prev.unload && *slmd_dbus_manager_get_active_model(d->manager))
                submit(d, SLMD_REQ_UNLOAD);
}

static SlmProfile power_profile(SlmdDaemon *d)
{
        g_autoptr(GVariant) v = NULL;
        const char *name;

        if (!d->profiles)
                return SLM_PROFILE_UNKNOWN;
        v = g_dbus_proxy_get_cached_property(d->profiles, "ActiveProfile");
        if (!v || !g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
                return SLM_PROFILE_UNKNOWN;
        name = g_variant_get_string(v, NULL);
        if (strcmp(name, "power-saver") == 0)
                return SLM_PROFILE_POWER_SAVER;
        if (strcmp(name, "performance") == 0)
                return SLM_PROFILE_PERFORMANCE;
        return strcmp(name, "balanced") == 0 ? SLM_PROFILE_BALANCED : SLM_PROFILE_UNKNOWN;
}

/* The budget from the device as it is now, read into @r. */
static SlmBudget decide(SlmdDaemon *d, SlmReadings *r)
{
        SlmBudget b;

        *r = (SlmReadings){ .profile = power_profile(d) };
        slm_read_device(d->config.sysfs_root, d->config.procfs_root, r); /* keeps r->profile */
        slm_governor_decide(r, &d->config.policy, &b);
        return b;
}

static gboolean tick(gpointer data)
{
        SlmdDaemon *d = data;
        SlmReadings r;
        SlmBudget b = decide(d, &r);

        if (!slm_budget_equal(&b, &d->budget))
                apply(d, &b, TRUE);
        if (d->config.keep_alive_s > 0 && *slmd_dbus_manager_get_active_model(d->manager) &&
            slmd_worker_idle_usec(d->worker) >= (gint64)d->config.keep_alive_s * G_USEC_PER_SEC) {
                g_message("keep-alive: the model was idle for %u s, unloading it",
                          d->config.keep_alive_s);
                submit(d, SLMD_REQ_UNLOAD);
        }
        return G_SOURCE_CONTINUE;
}

static void on_profile_changed(GDBusProxy *proxy, GVariant *changed, GStrv invalidated,
                               gpointer data)
{
        tick(data); /* at once, not at the next poll */
}

static void on_profiles_proxy(GObject *source, GAsyncResult *res, gpointer data)
{
        SlmdDaemon *d = data;
        g_autoptr(GError) error = NULL;
        GDBusProxy *proxy = g_dbus_proxy_new_finish(res, &error);

        if (!proxy) {
                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        g_message("power profiles: %s", error->message);
                return;
        }
        d->profiles = proxy;
        g_signal_connect(proxy, "g-properties-changed", G_CALLBACK(on_profile_changed), d);
        tick(d);
}

void slmd_budget_start(SlmdDaemon *d)
{
        SlmReadings r;
        SlmBudget b = decide(d, &r);

        set_user_kv(d, r.mem_total_kb); /* the same reading: the machine's memory */
        /* the proxy follows the name: the profile is read whenever the service runs */
        d->profiles_cancel = g_cancellable_new();
        g_dbus_proxy_new(d->conn, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, NULL,
                         "net.hadess.PowerProfiles", "/net/hadess/PowerProfiles",
                         "net.hadess.PowerProfiles", d->profiles_cancel, on_profiles_proxy, d);

        apply(d, &b, FALSE);
        g_message("budget: %s", b.reason);
        d->budget_timer = g_timeout_add(d->config.poll_ms, tick, d);
}

void slmd_budget_stop(SlmdDaemon *d)
{
        if (d->profiles_cancel)
                g_cancellable_cancel(d->profiles_cancel);
        g_clear_object(&d->profiles_cancel);
        g_clear_object(&d->profiles);
        if (d->budget_timer)
                g_source_remove(d->budget_timer);
        d->budget_timer = 0;
}

gboolean slmd_budget_check(SlmdDaemon *d, SlmdPriority priority, GError **error)
{
        if (priority == SLMD_PRIORITY_BACKGROUND && d->budget.background_refused) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_THROTTLED,
                            "background work is refused now: %s", d->budget.reason);
                return FALSE;
        }
        return TRUE;
}
