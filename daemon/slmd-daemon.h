/* SPDX-License-Identifier: MIT */
/* The daemon's state, shared by the manager and the session objects (main thread only). */
#pragma once

#include <gio/gio.h>
#include <polkit/polkit.h>

#include "slmd-dbus.h"
#include "slmd-store.h"
#include "slmd-worker.h"

G_BEGIN_DECLS

#define SLMD_BUS_NAME       "org.slmd.Slm1"
#define SLMD_MANAGER_PATH   "/org/slmd/Slm1"
#define SLMD_SESSION_PREFIX "/org/slmd/Slm1/session/"
#define SLMD_MANAGE_ACTION  "org.slmd.manage-models"

typedef struct {
        char *state_dir;
        char *backend;
        int threads;
        SlmType kv_type; /* [daemon] kv-type */
        guint max_sessions_per_user;
        guint user_kv_share;   /* [daemon] user-kv-share: % of the KV budget one user may hold */
        guint64 user_kv_bytes; /* what that comes to; 0: unbounded */
        guint64 max_prompt_bytes;
        guint64 max_import_bytes;
        gboolean no_preemption; /* [daemon] preemption=false */
        /* budgets: [budget] in the configuration file */
        char *sysfs_root, *procfs_root;
        SlmPolicy policy;
        guint keep_alive_s; /* unload an idle model after this long; 0: never */
        guint poll_ms;
        char **interactive_users; /* who may claim the interactive class; "*": everyone */
} SlmdConfig;

typedef struct SlmdSession SlmdSession;

typedef struct {
        SlmdConfig config;
        gboolean use_polkit; /* on the system bus; else only our own uid (and root) manage */
        GDBusConnection *conn;
        GMainLoop *loop;
        SlmdDBusManager *manager;
        SlmdStore *store;
        SlmdWorker *worker;
        PolkitAuthority *authority;
        GHashTable *sessions; /* object path -> SlmdSession */
        GHashTable *owners;   /* unique bus name -> Owner */
        guint next_session;
        char *preload_path, *preload_name; /* --model FILE outside the store */
        SlmBudget budget;                  /* in force */
        guint budget_timer;
        GDBusProxy *profiles; /* power-profiles-daemon */
        GCancellable *profiles_cancel;
} SlmdDaemon;

/* The Unix uid of a bus peer, or (guint)-1 when the bus cannot tell. */
guint slmd_daemon_peer_uid(SlmdDaemon *d, const char *sender);
/* The manager's State property from the current situation. */
void slmd_daemon_update_state(SlmdDaemon *d);

/* Budgets (slmd-budget.c); the start also sets the per-user KV bound from the machine's memory. */
void slmd_budget_start(SlmdDaemon *d);
void slmd_budget_stop(SlmdDaemon *d);
GVariant *slmd_budget_variant(const SlmBudget *b);
/* Whether work of class @priority may be submitted now; else Throttled. */
gboolean slmd_budget_check(SlmdDaemon *d, SlmdPriority priority, GError **error);

/* Sessions (slmd-session.c). */
SlmdSession *slmd_session_new(SlmdDaemon *d, const char *owner, guint uid, GVariant *options,
                              GError **error);
const char *slmd_session_path(SlmdSession *s);
const char *slmd_session_owner(SlmdSession *s);
guint slmd_session_uid(SlmdSession *s);
/* Unexport, cancel what runs, and free the engine state once it has stopped. */
void slmd_session_close(SlmdSession *s);
void slmd_session_unref(SlmdSession *s);

/* Manager (slmd-manager.c). */
/* The table of session owners: unique bus name -> watch and uid. */
GHashTable *slmd_owners_new(void);
gboolean slmd_manager_export(SlmdDaemon *d, GError **error);
/* The owner's connection left: its sessions go (called from the name watch). */
void slmd_manager_owner_vanished(SlmdDaemon *d, const char *owner);
void slmd_manager_session_closed(SlmdDaemon *d, SlmdSession *s);

G_END_DECLS
