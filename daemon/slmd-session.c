/* SPDX-License-Identifier: MIT */
/*
 * Session objects: /org/slmd/Slm1/session/N, callable only by the
 * connection that created them. Each holds its engine state (SlmdSeq) in
 * the worker and at most one running request.
 */
#include <string.h>

#include <pwd.h>

#include "slmd-daemon.h"
#include "grammar.h"
#include "value.h"
#include "slmd-error.h"

#define MAX_SUGGESTIONS 16
#define MAX_REPLIES     8
#define MAX_MESSAGES    1024       /* in one Chat */
#define MAX_JSON_BYTES  (1u << 20) /* tools, a message's tool calls */
#define MAX_STOPS       16
#define MAX_STOP_BYTES  1024 /* each: the stop matcher holds back this much text */

struct SlmdSession {
        gint ref_count;
        SlmdDaemon *d;
        char *path;
        char *owner;
        guint uid;
        SlmdDBusSession *skel;
        SlmdSeq *seq;
        SlmdRequest *current;
        gboolean closed;
        gboolean interactive_ok; /* policy lets this uid use the interactive class */
};

static SlmdSession *session_ref(SlmdSession *s)
{
        g_atomic_int_inc(&s->ref_count);
        return s;
}

void slmd_session_unref(SlmdSession *s)
{
        if (!s || !g_atomic_int_dec_and_test(&s->ref_count))
                return;
        g_clear_object(&s->skel);
        g_free(s->path);
        g_free(s->owner);
        g_free(s);
}

const char *slmd_session_path(SlmdSession *s)
{
        return s->path;
}

const char *slmd_session_owner(SlmdSession *s)
{
        return s->owner;
}

guint slmd_session_uid(SlmdSession *s)
{
        return s->uid;
}

/* ---- checks -------------------------------------------------------------------------------- */

static gboolean check_caller(SlmdSession *s, GDBusMethodInvocation *inv)
{
        if (g_strcmp0(g_dbus_method_invocation_get_sender(inv), s->owner) != 0) {
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_PERMISSION_DENIED,
                                                      "this session belongs to another client");
                return FALSE;
        }
        return TRUE;
}

static gboolean check_idle(SlmdSession *s, GDBusMethodInvocation *inv)
{
        if (s->current) {
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_BUSY,
                                                      "the session is running a request");
                return FALSE;
        }
        return TRUE;
}

static gboolean check_text(SlmdSession *s, GDBusMethodInvocation *inv, const char *text,
                           const char *what)
{
        if (strlen(text) > s->d->config.max_prompt_bytes) {
                g_dbus_method_invocation_return_error(
                    inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                    "the %s is %zu bytes; at most %" G_GUINT64_FORMAT " are accepted", what,
                    strlen(text), s->d->config.max_prompt_bytes);
                return FALSE;
        }
        return TRUE;
}

/*
 * [daemon] user-kv-share: the KV caches of @uid's sessions, with one more of
 * @n_ctx positions, as the resident model would hold them (nothing to say
 * while none is resident: the worker checks again when it makes a context).
 */
static gboolean check_user_kv(SlmdDaemon *d, guint uid, guint n_ctx, GError **error)
{
        guint64 limit = d->config.user_kv_bytes, want = slmd_worker_kv_estimate(d->worker, n_ctx);
        GHashTableIter it;
        gpointer value;

        if (!limit || !want)
                return TRUE;
        g_hash_table_iter_init(&it, d->sessions);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
                SlmdSession *o = value;
                if (o->uid == uid && o->seq)
                        want +=
                            slmd_worker_kv_estimate(d->worker, slmd_seq_context_requested(o->seq));
        }
        if (want <= limit)
                return TRUE;
        g_propagate_error(error, slmd_kv_quota_error(uid, want, limit, "this one"));
        return FALSE;
}

/* A JSON text of at most MAX_JSON_BYTES whose value is a list; @what names it in the error. */
static gboolean json_list(const char *json, const char *what, GError **error)
{
        SlmError err = { { 0 } };
        SlmArena a;
        SlmValue v;
        int r;

        if (strlen(json) > MAX_JSON_BYTES) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                            "%s is longer than %u bytes", what, MAX_JSON_BYTES);
                return FALSE;
        }
        slm_arena_init(&a, MAX_JSON_BYTES * 8);
        r = slm_json_parse(&a, json, strlen(json), &v, &err);
        slm_arena_clear(&a);
        if (r < 0 || v.type != SLM_VALUE_LIST) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                            "%s is not a JSON array%s%s", what, r < 0 ? ": " : "",
                            r < 0 ? err.msg : "");
                return FALSE;
        }
        return TRUE;
}

/* Sampling and length options of Generate and Chat. */
static gboolean parse_generate_options(SlmdRequest *req, GVariant *options, GError **error)
{
        GVariantIter iter;
        const char *key;
        GVariant *v;

        req->sampling.seed = (guint64)g_get_real_time();
        g_variant_iter_init(&iter, options);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &v)) {
                /* freed on every way out: a bad option returns from the loop */
                g_autoptr(GVariant) owned = v;
                gboolean ok = TRUE;
                if (strcmp(key, "max-tokens") == 0) {
                        ok = g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32);
                        if (ok) {
                                req->max_tokens = g_variant_get_uint32(v);
                                ok = req->max_tokens >= 1 && req->max_tokens <= 1 << 20;
                        }
                } else if (strcmp(key, "top-k") == 0) {
                        ok = g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32) &&
                             g_variant_get_uint32(v) <= 1 << 24;
                        if (ok)
                                req->sampling.top_k = (int)g_variant_get_uint32(v);
                } else if (strcmp(key, "seed") == 0) {
                        ok = g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64);
                        if (ok)
                                req->sampling.seed = g_variant_get_uint64(v);
                } else if (strcmp(key, "tools") == 0 && req->kind == SLMD_REQ_CHAT) {
                        /* a JSON array of function definitions, for the model's template */
                        if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
                                ok = FALSE;
                        } else if (!json_list(g_variant_get_string(v, NULL), "option 'tools'",
                                              error)) {
                                return FALSE;
                        } else {
                                g_free(req->tools);
                                req->tools = g_variant_dup_string(v, NULL);
                        }
                } else if (strcmp(key, "tool-choice") == 0 && req->kind == SLMD_REQ_CHAT) {
                        /* auto, none, required, or a function's name */
                        ok = g_variant_is_of_type(v, G_VARIANT_TYPE_STRING) &&
                             *g_variant_get_string(v, NULL) &&
                             strlen(g_variant_get_string(v, NULL)) <= 256;
                        if (ok) {
                                g_free(req->tool_choice);
                                req->tool_choice = g_variant_dup_string(v, NULL);
                        }
                } else if (strcmp(key, "json-schema") == 0 || strcmp(key, "grammar") == 0) {
                        /* compiled now: what the engine cannot honour is refused up front */
                        const char *text = g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)
                                               ? g_variant_get_string(v, NULL)
                                               : NULL;
                        g_autofree char *gbnf = NULL;
                        SlmError err = { { 0 } };
                        int r;
                        if (!text || strlen(text) > MAX_JSON_BYTES) {
                                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                            "option '%s' is a string of at most %u bytes", key,
                                            MAX_JSON_BYTES);
                                return FALSE;
                        }
                        if (req->grammar) {
                                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                            "json-schema and grammar exclude each other");
                                return FALSE;
                        }
                        if (key[0] == 'j') {
                                r = slm_json_schema_to_gbnf(text, strlen(text), &gbnf, &err);
                                if (r == 0)
                                        text = gbnf;
                        } else {
                                r = 0;
                        }
                        if (r == 0)
                                r = slm_grammar_parse(text, strlen(text), &req->grammar, &err);
                        if (r < 0) {
                                g_set_error(error, SLMD_ERROR,
                                            r == -ENOMEM ? SLMD_ERROR_FAILED
                                                         : SLMD_ERROR_INVALID_ARGUMENT,
                                            "option '%s': %s", key, err.msg);
                                return FALSE;
                        }
                } else if (strcmp(key, "stop") == 0) {
                        ok = g_variant_is_of_type(v, G_VARIANT_TYPE_STRING_ARRAY) &&
                             g_variant_n_children(v) <= MAX_STOPS;
                        if (ok) {
                                g_strfreev(req->stops);
                                req->stops = g_variant_dup_strv(v, NULL);
                                for (char **t = req->stops; *t; t++)
                                        ok = ok && strlen(*t) <= MAX_STOP_BYTES;
                        }
                } else {
                        float *f =
                            strcmp(key, "temperature") == 0      ? &req->sampling.temperature
                            : strcmp(key, "top-p") == 0          ? &req->sampling.top_p
                            : strcmp(key, "min-p") == 0          ? &req->sampling.min_p
                            : strcmp(key, "repeat-penalty") == 0 ? &req->sampling.repeat_penalty
                            : strcmp(key, "frequency-penalty") == 0
                                ? &req->sampling.frequency_penalty
                            : strcmp(key, "presence-penalty") == 0 ? &req->sampling.presence_penalty
                                                                   : NULL;
                        if (!f) {
                                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                            "unknown option '%s'", key);
                                return FALSE;
                        }
                        ok = g_variant_is_of_type(v, G_VARIANT_TYPE_DOUBLE);
                        if (ok)
                                *f = (float)g_variant_get_double(v);
                }
                if (!ok) {
                        g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                    "option '%s' has a wrong type or value", key);
                        return FALSE;
                }
        }
        if (req->tool_choice && !req->tools) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                            "tool-choice without tools");
                return FALSE;
        }
        if (req->tool_choice && req->grammar && strcmp(req->tool_choice, "none") != 0 &&
            strcmp(req->tool_choice, "auto") != 0) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                            "a required tool call and json-schema or grammar exclude each other");
                return FALSE;
        }
        const char *bad = slm_sampler_params_check(&req->sampling);
        if (bad) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                            "invalid sampling value: %s", bad);
                return FALSE;
        }
        return TRUE;
}

/* ---- running requests ---------------------------------------------------------------------- */

typedef struct {
        SlmdSession *s;
        GDBusMethodInvocation *inv; /* until replied */
} Pending;

static void pending_free(gpointer p)
{
        Pending *pd = p;

        if (pd->inv) /* never answered: the daemon is going away */
                g_dbus_method_invocation_return_error(pd->inv, SLMD_ERROR, SLMD_ERROR_CANCELLED,
                                                      "the daemon is stopping");
        slmd_session_unref(pd->s);
        g_free(pd);
}

static void emit(SlmdSession *s, const char *signal, GVariant *params)
{
        g_autoptr(GError) error = NULL;

        /* to the owner only */
        if (!g_dbus_connection_emit_signal(s->d->conn, s->owner, s->path, "org.slmd.Slm1.Session",
                                           signal, params, &error))
                g_debug("cannot send %s to %s: %s", signal, s->owner, error->message);
}

static GVariant *stats(SlmdRequest *req)
{
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "tokens", g_variant_new_uint32(req->n_generated));
        g_variant_builder_add(&b, "{sv}", "prompt-tokens", g_variant_new_uint32(req->n_prompt));
        g_variant_builder_add(&b, "{sv}", "prompt-ms", g_variant_new_double(req->prompt_ms));
        g_variant_builder_add(&b, "{sv}", "decode-ms", g_variant_new_double(req->decode_ms));
        g_variant_builder_add(&b, "{sv}", "tokens-per-second",
                              g_variant_new_double(req->decode_ms > 0
                                                       ? req->n_generated * 1000.0 / req->decode_ms
                                                       : 0.0));
        if (req->error)
                g_variant_builder_add(&b, "{sv}", "message",
                                      g_variant_new_string(req->error->message));
        if (req->calls_made)
                g_variant_builder_add(&b, "{sv}", "tool-calls",
                                      g_variant_new_string(req->calls_made));
        return g_variant_builder_end(&b);
}

static void request_done(SlmdSession *s)
{
        g_clear_pointer(&s->current, slmd_request_unref);
        if (s->closed && s->seq) {
                /* the engine state goes once nothing uses it */
                g_autoptr(SlmdRequest) free_req = slmd_request_new(SLMD_REQ_FREE_SEQ, s->seq);
                s->seq = NULL;
                slmd_worker_submit(s->d->worker, free_req);
        }
        slmd_dbus_session_set_context_used(s->skel, s->seq ? slmd_seq_context_used(s->seq) : 0);
        slmd_daemon_update_state(s->d);
}

static void on_event(SlmdRequest *req, SlmdEvent event, const char *text, gpointer user_data)
{
        Pending *pd = user_data;
        SlmdSession *s = pd->s;
        gboolean streams = req->kind == SLMD_REQ_GENERATE || req->kind == SLMD_REQ_CHAT;

        switch (event) {
        case SLMD_EVENT_ACCEPTED:
                if (streams && pd->inv)
                        g_dbus_method_invocation_return_value(g_steal_pointer(&pd->inv), NULL);
                break;
        case SLMD_EVENT_TOKEN:
                if (!s->closed)
                        emit(s, "Token", g_variant_new("(s)", text));
                break;
        case SLMD_EVENT_DONE:
                if (pd->inv && req->error) {
                        g_dbus_method_invocation_return_gerror(g_steal_pointer(&pd->inv),
                                                               req->error);
                } else if (pd->inv && req->results) {
                        g_ptr_array_add(req->results, NULL);
                        g_dbus_method_invocation_return_value(
                            g_steal_pointer(&pd->inv),
                            g_variant_new("(^as)", (char **)req->results->pdata));
                } else if (pd->inv) {
                        g_dbus_method_invocation_return_value(g_steal_pointer(&pd->inv), NULL);
                } else if (streams && !s->closed) {
                        emit(s, "Finished", g_variant_new("(s@a{sv})", req->reason, stats(req)));
                }
                if (s->current == req)
                        request_done(s);
                break;
        }
}

static void run(SlmdSession *s, GDBusMethodInvocation *inv, SlmdRequest *req)
{
        g_autoptr(GError) error = NULL;
        Pending *pd;

        if (req->kind != SLMD_REQ_RESET && !slmd_budget_check(s->d, req->priority, &error)) {
                g_dbus_method_invocation_return_gerror(inv, error);
                return;
        }
        pd = g_new0(Pending, 1);

        pd->s = session_ref(s);
        pd->inv = inv;
        req->func = on_event;
        req->user_data = pd;
        req->user_data_free = pending_free;
        s->current = slmd_request_ref(req);
        slmd_worker_submit(s->d->worker, req);
        slmd_daemon_update_state(s->d);
}

/* ---- methods ------------------------------------------------------------------------------- */

static gboolean handle_append(SlmdDBusSession *skel, GDBusMethodInvocation *inv, const char *text,
                              gpointer user_data)
{
        SlmdSession *s = user_data;
        g_autoptr(SlmdRequest) req = NULL;

        if (!check_caller(s, inv) || !check_idle(s, inv) || !check_text(s, inv, text, "text"))
                return TRUE;
        req = slmd_request_new(SLMD_REQ_APPEND, s->seq);
        req->text = g_strdup(text);
        run(s, inv, req);
        return TRUE;
}

static gboolean start_generation(SlmdSession *s, GDBusMethodInvocation *inv, SlmdRequest *req,
                                 GVariant *options)
{
        g_autoptr(GError) error = NULL;

        if (!parse_generate_options(req, options, &error)) {
                g_dbus_method_invocation_return_gerror(inv, error);
                return TRUE;
        }
        run(s, inv, req);
        return TRUE;
}

static gboolean handle_generate(SlmdDBusSession *skel, GDBusMethodInvocation *inv,
                                const char *prompt, GVariant *options, gpointer user_data)
{
        SlmdSession *s = user_data;
        g_autoptr(SlmdRequest) req = NULL;

        if (!check_caller(s, inv) || !check_idle(s, inv) || !check_text(s, inv, prompt, "prompt"))
                return TRUE;
        req = slmd_request_new(SLMD_REQ_GENERATE, s->seq);
        req->text = g_strdup(prompt);
        return start_generation(s, inv, req, options);
}

static gboolean handle_chat(SlmdDBusSession *skel, GDBusMethodInvocation *inv, GVariant *messages,
                            GVariant *options, gpointer user_data)
{
        SlmdSession *s = user_data;
        g_autoptr(SlmdRequest) req = NULL;
        gsize n = g_variant_n_children(messages), total = 0;
        GVariantIter iter;
        const char *role, *content;
        guint i = 0;

        if (!check_caller(s, inv) || !check_idle(s, inv))
                return TRUE;
        if (n == 0 || n > MAX_MESSAGES) {
                /* each message adds the template's markers: the count bounds them */
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                                      "1 to %u messages", MAX_MESSAGES);
                return TRUE;
        }
        req = slmd_request_new(SLMD_REQ_CHAT, s->seq);
        req->roles = g_new0(char *, n + 1);
        req->contents = g_new0(char *, n + 1);
        g_variant_iter_init(&iter, messages);
        while (g_variant_iter_next(&iter, "(&s&s)", &role, &content)) {
                if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
                        g_dbus_method_invocation_return_error(
                            inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                            "unknown role '%s': use system, user or assistant", role);
                        return TRUE;
                }
                total += strlen(content);
                req->roles[i] = g_strdup(role);
                req->contents[i++] = g_strdup(content);
        }
        if (total > s->d->config.max_prompt_bytes) {
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                                      "the messages are too long");
                return TRUE;
        }
        return start_generation(s, inv, req, options);
}

static gboolean handle_chat_messages(SlmdDBusSession *skel, GDBusMethodInvocation *inv,
                                     GVariant *messages, GVariant *options, gpointer user_data)
{
        SlmdSession *s = user_data;
        g_autoptr(SlmdRequest) req = NULL;
        g_autoptr(GError) error = NULL;
        gsize n = g_variant_n_children(messages), total = 0;

        if (!check_caller(s, inv) || !check_idle(s, inv))
                return TRUE;
        if (n == 0 || n > MAX_MESSAGES) {
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                                      "1 to %u messages", MAX_MESSAGES);
                return TRUE;
        }
        req = slmd_request_new(SLMD_REQ_CHAT, s->seq);
        req->conversation = TRUE;
        req->roles = g_new0(char *, n + 1);
        req->contents = g_new0(char *, n + 1);
        req->tool_calls = g_new0(char *, n + 1);
        req->tool_call_ids = g_new0(char *, n + 1);
        for (gsize i = 0; i < n; i++) {
                g_autoptr(GVariant) msg = g_variant_get_child_value(messages, i);
                GVariantIter iter;
                const char *key;
                GVariant *v;
                g_variant_iter_init(&iter, msg);
                while (g_variant_iter_next(&iter, "{&sv}", &key, &v)) {
                        g_autoptr(GVariant) owned = v;
                        char **slot = !strcmp(key, "role")           ? &req->roles[i]
                                      : !strcmp(key, "content")      ? &req->contents[i]
                                      : !strcmp(key, "tool-calls")   ? &req->tool_calls[i]
                                      : !strcmp(key, "tool-call-id") ? &req->tool_call_ids[i]
                                                                     : NULL;
                        if (!slot) {
                                g_dbus_method_invocation_return_error(
                                    inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                    "message %zu: unknown key '%s': use role, content, tool-calls "
                                    "and tool-call-id",
                                    i + 1, key);
                                return TRUE;
                        }
                        if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING) || *slot) {
                                g_dbus_method_invocation_return_error(
                                    inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                    "message %zu: '%s' must be one string", i + 1, key);
                                return TRUE;
                        }
                        *slot = g_variant_dup_string(v, NULL);
                        total += strlen(*slot);
                }
                if (!req->roles[i] || !*req->roles[i] || strlen(req->roles[i]) > 64) {
                        g_dbus_method_invocation_return_error(
                            inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                            "message %zu: a role of 1 to 64 bytes is required", i + 1);
                        return TRUE;
                }
                if (!req->contents[i])
                        req->contents[i] = g_strdup("");
                if (!req->tool_call_ids[i])
                        req->tool_call_ids[i] = g_strdup("");
                g_autofree char *what = g_strdup_printf("message %zu: tool-calls", i + 1);
                if (!req->tool_calls[i]) {
                        req->tool_calls[i] = g_strdup("");
                } else if (!json_list(req->tool_calls[i], what, &error)) {
                        g_dbus_method_invocation_return_gerror(inv, error);
                        return TRUE;
                }
        }
        if (total > s->d->config.max_prompt_bytes) {
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                                      "the messages are too long");
                return TRUE;
        }
        return start_generation(s, inv, req, options);
}

/* Suggest and SmartReplies: a text and a count in, a list of strings out. */
static gboolean run_list(SlmdSession *s, GDBusMethodInvocation *inv, SlmdRequestKind kind,
                         const char *text, const char *what, guint n, guint max)
{
        g_autoptr(SlmdRequest) req = NULL;

        if (!check_caller(s, inv) || !check_idle(s, inv) || !check_text(s, inv, text, what))
                return TRUE;
        if (n < 1 || n > max) {
                g_dbus_method_invocation_return_error(inv, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                                      "n must be 1 to %u", max);
                return TRUE;
        }
        req = slmd_request_new(kind, s->seq);
        if (kind == SLMD_REQ_SUGGEST && s->interactive_ok)
                req->priority = SLMD_PRIORITY_INTERACTIVE; /* a keyboard is waiting */
        req->text = g_strdup(text);
        req->n = n;
        run(s, inv, req);
        return TRUE;
}

static gboolean handle_suggest(SlmdDBusSession *skel, GDBusMethodInvocation *inv, const char *text,
                               guint n, gpointer user_data)
{
        return run_list(user_data, inv, SLMD_REQ_SUGGEST, text, "text", n, MAX_SUGGESTIONS);
}

static gboolean handle_smart_replies(SlmdDBusSession *skel, GDBusMethodInvocation *inv,
                                     const char *message, guint n, gpointer user_data)
{
        return run_list(user_data, inv, SLMD_REQ_REPLIES, message, "message", n, MAX_REPLIES);
}

static gboolean handle_cancel(SlmdDBusSession *skel, GDBusMethodInvocation *inv, gpointer user_data)
{
        SlmdSession *s = user_data;

        if (!check_caller(s, inv))
                return TRUE;
        if (s->current)
                slmd_request_cancel(s->current);
        slmd_dbus_session_complete_cancel(skel, inv);
        return TRUE;
}

static gboolean handle_reset(SlmdDBusSession *skel, GDBusMethodInvocation *inv, gpointer user_data)
{
        SlmdSession *s = user_data;
        g_autoptr(SlmdRequest) req = NULL;

        if (!check_caller(s, inv) || !check_idle(s, inv))
                return TRUE;
        req = slmd_request_new(SLMD_REQ_RESET, s->seq);
        run(s, inv, req);
        return TRUE;
}

static gboolean handle_close(SlmdDBusSession *skel, GDBusMethodInvocation *inv, gpointer user_data)
{
        SlmdSession *s = user_data;

        if (!check_caller(s, inv))
                return TRUE;
        slmd_dbus_session_complete_close(skel, inv);
        slmd_manager_session_closed(s->d, s);
        return TRUE;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

/* [budget] interactive-users: user names or uids, "*" for everyone (also when unset). */
static gboolean interactive_allowed(SlmdDaemon *d, guint uid)
{
        if (!d->config.interactive_users)
                return TRUE;
        for (char **u = d->config.interactive_users; *u; u++) {
                struct passwd *pw;
                char *end;
                guint64 n = g_ascii_strtoull(*u, &end, 10);
                if (strcmp(*u, "*") == 0 || (*end == '\0' && end != *u && n == uid))
                        return TRUE;
                pw = getpwnam(*u);
                if (pw && pw->pw_uid == uid)
                        return TRUE;
        }
        return FALSE;
}

static gboolean parse_priority(const char *name, SlmdPriority *ret)
{
        if (strcmp(name, "interactive") == 0)
                *ret = SLMD_PRIORITY_INTERACTIVE;
        else if (strcmp(name, "normal") == 0)
                *ret = SLMD_PRIORITY_NORMAL;
        else if (strcmp(name, "background") == 0)
                *ret = SLMD_PRIORITY_BACKGROUND;
        else
                return FALSE;
        return TRUE;
}

static const char *priority_name(SlmdPriority p)
{
        return p == SLMD_PRIORITY_INTERACTIVE  ? "interactive"
               : p == SLMD_PRIORITY_BACKGROUND ? "background"
                                               : "normal";
}

SlmdSession *slmd_session_new(SlmdDaemon *d, const char *owner, guint uid, GVariant *options,
                              GError **error)
{
        g_autofree char *system_prompt = NULL;
        SlmdPriority prio = SLMD_PRIORITY_NORMAL;
        guint n_ctx = 0;
        GVariantIter iter;
        const char *key;
        GVariant *v;
        SlmdSession *s;

        g_variant_iter_init(&iter, options);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &v)) {
                g_autoptr(GVariant) owned = v; /* as in parse_generate_options */
                if (strcmp(key, "system-prompt") == 0 &&
                    g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
                        g_free(system_prompt);
                        system_prompt = g_variant_dup_string(v, NULL);
                } else if (strcmp(key, "priority") == 0 &&
                           g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
                        if (!parse_priority(g_variant_get_string(v, NULL), &prio)) {
                                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                            "priority is interactive, normal or background");
                                return NULL;
                        }
                } else if (strcmp(key, "context-size") == 0 &&
                           g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32)) {
                        n_ctx = g_variant_get_uint32(v);
                        if (n_ctx < 16 || n_ctx > 1 << 20) {
                                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                            "context-size must be 16 to %u", 1u << 20);
                                return NULL;
                        }
                } else {
                        g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                    "unknown option '%s' or wrong type", key);
                        return NULL;
                }
        }
        if (system_prompt && strlen(system_prompt) > d->config.max_prompt_bytes) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                            "the system prompt is too long");
                return NULL;
        }
        if (!check_user_kv(d, uid, n_ctx, error))
                return NULL;

        gboolean interactive_ok = interactive_allowed(d, uid);
        if (prio == SLMD_PRIORITY_INTERACTIVE && !interactive_ok) {
                /* bounded by policy: the session runs as normal, and says so */
                prio = SLMD_PRIORITY_NORMAL;
        }
        s = g_new0(SlmdSession, 1);
        s->interactive_ok = interactive_ok;
        s->ref_count = 1;
        s->d = d;
        s->owner = g_strdup(owner);
        s->uid = uid;
        s->path = g_strdup_printf(SLMD_SESSION_PREFIX "%u", ++d->next_session);
        s->seq = slmd_seq_new(n_ctx, system_prompt, prio, uid);
        s->skel = slmd_dbus_session_skeleton_new();
        slmd_dbus_session_set_priority(s->skel, priority_name(prio));
        slmd_dbus_session_set_context_size(s->skel, slmd_seq_context_size(s->seq));
        g_signal_connect(s->skel, "handle-append", G_CALLBACK(handle_append), s);
        g_signal_connect(s->skel, "handle-generate", G_CALLBACK(handle_generate), s);
        g_signal_connect(s->skel, "handle-chat", G_CALLBACK(handle_chat), s);
        g_signal_connect(s->skel, "handle-chat-messages", G_CALLBACK(handle_chat_messages), s);
        g_signal_connect(s->skel, "handle-suggest", G_CALLBACK(handle_suggest), s);
        g_signal_connect(s->skel, "handle-smart-replies", G_CALLBACK(handle_smart_replies), s);
        g_signal_connect(s->skel, "handle-cancel", G_CALLBACK(handle_cancel), s);
        g_signal_connect(s->skel, "handle-reset", G_CALLBACK(handle_reset), s);
        g_signal_connect(s->skel, "handle-close", G_CALLBACK(handle_close), s);
        if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(s->skel), d->conn, s->path,
                                              error)) {
                slmd_session_close(s);
                slmd_session_unref(s);
                return NULL;
        }
        return s;
}

void slmd_session_close(SlmdSession *s)
{
        if (s->closed)
                return;
        s->closed = TRUE;
        g_signal_handlers_disconnect_by_data(s->skel, s);
        if (g_dbus_interface_skeleton_get_connection(G_DBUS_INTERFACE_SKELETON(s->skel)))
                g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(s->skel));
        if (s->current)
                slmd_request_cancel(s->current); /* the engine state goes when it stops */
        else
                request_done(s);
}
