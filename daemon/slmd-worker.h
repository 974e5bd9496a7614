/* SPDX-License-Identifier: MIT */
/*
 * The inference thread. It owns the resident model, the backend and every
 * session's engine state (SlmdSeq: KV cache and token history), and runs
 * a scheduler loop over submitted requests: the highest priority class
 * first, round-robin within a class, one step at a time (a chunk of
 * prompt or one generated token), so interactive work starts within one
 * step of arriving. Events go back to the main loop's context, in order.
 */
#pragma once

#include <gio/gio.h>

#include "governor.h"
#include "grammar.h"
#include "sampler.h"
#include "slm-types.h"

G_BEGIN_DECLS

typedef enum {
        SLMD_PRIORITY_BACKGROUND,
        SLMD_PRIORITY_NORMAL,
        SLMD_PRIORITY_INTERACTIVE,
        SLMD_PRIORITY_SYSTEM, /* model loads and unloads */
} SlmdPriority;

typedef enum {
        SLMD_REQ_APPEND,
        SLMD_REQ_GENERATE,
        SLMD_REQ_CHAT,
        SLMD_REQ_SUGGEST,
        SLMD_REQ_REPLIES,
        SLMD_REQ_RESET,
        SLMD_REQ_FREE_SEQ,
        SLMD_REQ_LOAD,
        SLMD_REQ_UNLOAD,
        SLMD_REQ_DROP_CACHES, /* idle sessions' KV caches; n: how many went */
} SlmdRequestKind;

typedef enum {
        SLMD_EVENT_ACCEPTED, /* input checked and taken: reply to the method now */
        SLMD_EVENT_TOKEN,    /* text */
        SLMD_EVENT_DONE,     /* finished: see reason, error, results, stats */
} SlmdEvent;

typedef struct SlmdSeq SlmdSeq;
typedef struct SlmdRequest SlmdRequest;
typedef struct SlmdWorker SlmdWorker;

/* Runs in the main context. */
typedef void (*SlmdRequestFunc)(SlmdRequest *req, SlmdEvent event, const char *text,
                                gpointer user_data);

struct SlmdRequest {
        /* set by the submitter */
        SlmdRequestKind kind;
        SlmdPriority priority;
        SlmdSeq *seq;
        char *text;               /* prompt, appended text, suggest text, message, or model path */
        char *model_name;         /* LOAD */
        char **roles, **contents; /* CHAT, NULL-terminated */
        char **tool_calls;        /* CHAT: each message's JSON array, "" for none */
        char **tool_call_ids;     /* CHAT: "" for none */
        char *tools;              /* CHAT: a JSON array of function definitions, or NULL */
        gboolean conversation;    /* CHAT: the messages are the whole conversation (ChatMessages) */
        SlmGrammar *grammar;      /* GENERATE, CHAT: what the text must be, or NULL */
        char *tool_choice;        /* CHAT with tools: auto (NULL), none, required or a name */
        SlmSamplerParams sampling;
        guint max_tokens;
        char **stops;
        guint n; /* candidates or replies */
        SlmdRequestFunc func;
        gpointer user_data;
        GDestroyNotify user_data_free;

        /* set by the worker, read in the DONE event */
        const char *reason; /* Finished reason */
        GError *error;
        GPtrArray *results; /* char *: candidates or replies */
        char *calls_made;   /* CHAT with tools: the calls the answer made, a JSON array */
        guint n_generated, n_prompt;
        double prompt_ms, decode_ms;

        /* private */
        gint ref_count;
        gint cancelled;
        struct SlmdProgress *progress;
};

SlmdRequest *slmd_request_new(SlmdRequestKind kind, SlmdSeq *seq);
SlmdRequest *slmd_request_ref(SlmdRequest *req);
void slmd_request_unref(SlmdRequest *req);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SlmdRequest, slmd_request_unref)
void slmd_request_cancel(SlmdRequest *req);

/* A session's engine state, of user @uid; freed by submitting SLMD_REQ_FREE_SEQ. */
SlmdSeq *slmd_seq_new(guint n_ctx, const char *system_prompt, SlmdPriority priority, guint uid);
/* The context size it asked for (0: the default). */
guint slmd_seq_context_requested(SlmdSeq *seq);
/* Tokens in the context (an unlocked read, for the ContextUsed property). */
guint slmd_seq_context_used(SlmdSeq *seq);
guint slmd_seq_context_size(SlmdSeq *seq);

/* Called in the main context when the resident model changes (name NULL: none). */
typedef void (*SlmdModelFunc)(const char *name, gpointer user_data);

/* @request_done runs in the main context after each request's DONE event. */
SlmdWorker *slmd_worker_new(const char *backend, int n_threads, SlmType kv_type,
                            SlmdModelFunc model_changed, GSourceFunc request_done,
                            gpointer user_data, GError **error);
void slmd_worker_free(SlmdWorker *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SlmdWorker, slmd_worker_free)

/* The model loaded when a request needs one and none is resident (NULL: none). */
void slmd_worker_set_default(SlmdWorker *w, const char *name, const char *path);
void slmd_worker_submit(SlmdWorker *w, SlmdRequest *req);
const char *slmd_worker_backend(SlmdWorker *w);
/*
 * The budget from now on: classes it pauses wait in their queues (control
 * requests and cancellations still run), normal work is paced, the thread
 * count follows, and no model is loaded while it says unload.
 */
void slmd_worker_set_budget(SlmdWorker *w, const SlmBudget *b);
/*
 * With preemption (the default) higher classes go first at every step
 * boundary; without it a started request runs to its end (for measuring
 * what preemption is worth).
 */
void slmd_worker_set_preemption(SlmdWorker *w, gboolean preempt);
/*
 * The KV cache one user's contexts may hold together (0: no bound): a
 * context that would take them past it is not created, and its request
 * fails with QuotaExceeded.
 */
void slmd_worker_set_user_kv_limit(SlmdWorker *w, guint64 bytes);
/*
 * The KV bytes a context asking for @n_ctx_requested positions (0: the
 * default) takes with the resident model; 0 while none is resident.
 */
guint64 slmd_worker_kv_estimate(SlmdWorker *w, guint n_ctx_requested);
/* How long the worker has had nothing to do, 0 while it works. */
gint64 slmd_worker_idle_usec(SlmdWorker *w);
/* Whether any request is queued or running. */
gboolean slmd_worker_busy(SlmdWorker *w);

G_END_DECLS
