/* SPDX-License-Identifier: MIT */
#include "slmd-worker.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>

#include "chat.h"
#include "model.h"
#include "slmd-error.h"
#include "slmd-scheduler.h"

#define DEFAULT_CTX   2048
#define PREFILL_CHUNK 64 /* prompt tokens per step */
#define WORD_TOKENS   5  /* tokens a suggested word may take */
#define REPLY_TOKENS  24 /* tokens a smart reply may take */

/*
 * A candidate Suggest expanded from a session's kept logits: its first token, the prefix it
 * was held to and the text it came to (NULL: none that covers the prefix).
 */
typedef struct {
        int32_t first;
        char *want;
        char *text;
} WordMemo;

#define MAX_WORD_MEMOS 64

static void word_memo_clear(gpointer data)
{
        WordMemo *m = data;

        g_free(m->want);
        g_free(m->text);
}

struct SlmdSeq {
        guint n_ctx_requested;
        guint uid; /* whose: the per-user KV bound counts it */
        char *system_prompt;
        SlmdPriority priority;
        SlmContext *ctx;
        guint model_gen;
        GArray *history;     /* int32_t: what the KV cache holds */
        GArray *unevaluated; /* int32_t: generated but not yet in the cache */
        gint used, size;     /* mirrors for the main thread */
        char *tokens_model;  /* after its cache was dropped: the model its tokens are for */
        float *logits;       /* after the first logits_len tokens of history, kept for the */
        guint logits_len;    /* next keystroke (0: none); the rows before stay as they were */
        GArray *words;       /* WordMemo: Suggest's candidates from those logits */
        gint64 last_used;    /* monotonic µs: the least recently used cache goes first */
};

typedef struct SlmdProgress {
        int32_t *prompt; /* tokens still to be evaluated */
        size_t n_prompt, n_done;
        gboolean accepted;
        float *logits; /* this request's own: others run between its steps */
        SlmSampler *sampler;
        SlmGrammarMatcher *matcher; /* the request's grammar, where it has one */
        SlmGrammar *lazy;           /* a tool call's, for when the model starts one */
        GString *text;              /* the answer so far, where tool calls are looked for */
        size_t searched;            /* how much of it was searched for a call's opening */
        SlmDetokenizer detok;
        SlmStopMatcher stop;
        gint64 t_start, t_decode;
} Progress;

struct SlmdWorker {
        GThread *thread;
        GMutex lock;
        GCond cond;
        GQueue incoming;
        gboolean stopping;
        char *default_name, *default_path;
        gint pending;          /* queued + running */
        SlmBudget budget;      /* under lock: set by the main thread */
        guint64 user_kv_limit; /* under lock: KV bytes one uid's contexts may hold; 0: none */
        /* the resident model's, under lock; their one writer, the inference thread, reads freely */
        guint64 kv_pos_bytes; /* KV bytes per position */
        int n_ctx_train;      /* its training context; 0: no model */
        gint64 last_active;   /* monotonic µs of the last step, atomic */

        /* the worker thread's own */
        GMainContext *main_ctx;
        SlmBackend *backend;
        char *backend_info;    /* "name (device; KV cache type)" for the status */
        SlmType kv_type;       /* asked for; a context may hold a wider one */
        guint kv_fallback_gen; /* the model whose wider cache was last reported */
        SlmModel *model;
        char *model_name;
        guint model_gen;
        float *logits;      /* for requests that finish in one step (suggest, replies) */
        SlmBatch *batch;    /* the resident model's: the text requests of a step */
        SlmChat *chat;      /* the resident model's way of writing a conversation */
        SlmTokenTrie *trie; /* the resident model's vocabulary, once a grammar needs it */
        SlmdScheduler sched;
        GPtrArray *seqs; /* every sequence with a context, or whose cache was dropped */
        int max_threads, threads;
        int step_batch;   /* tokens per step, from the budget */
        gboolean preempt; /* under lock: the scheduler's from the next step on */
        SlmdModelFunc model_changed;
        GSourceFunc request_done;
        gpointer user_data;
};

/* ---- requests and sequences ---------------------------------------------------------------- */

SlmdRequest *slmd_request_new(SlmdRequestKind kind, SlmdSeq *seq)
{
        SlmdRequest *r = g_new0(SlmdRequest, 1);

        r->ref_count = 1;
        r->kind = kind;
        r->seq = seq;
        /*
         * Work runs in its session's class. Control requests (a reset, freeing a closed
         * session's state) run in the system class: under steady normal work a background
         * session's would otherwise wait, and a closed session's cache stay, for as long.
         */
        r->priority = seq && slmd_request_kind_is_work(kind) ? seq->priority : SLMD_PRIORITY_SYSTEM;
        r->max_tokens = 256;
        slm_sampler_params_default(&r->sampling);
        return r;
}

SlmdRequest *slmd_request_ref(SlmdRequest *r)
{
        g_atomic_int_inc(&r->ref_count);
        return r;
}

static void progress_free(Progress *p)
{
        if (!p)
                return;
        g_free(p->prompt);
        g_free(p->logits);
        slm_sampler_free(p->sampler);
        slm_grammar_matcher_free(p->matcher);
        slm_grammar_free(p->lazy);
        if (p->text)
                g_string_free(p->text, TRUE);
        slm_stop_matcher_clear(&p->stop);
        g_free(p);
}

void slmd_request_unref(SlmdRequest *r)
{
        if (!r || !g_atomic_int_dec_and_test(&r->ref_count))
                return;
        g_free(r->text);
        g_free(r->model_name);
        g_strfreev(r->roles);
        g_strfreev(r->contents);
        g_strfreev(r->tool_calls);
        g_strfreev(r->tool_call_ids);
        g_free(r->tools);
        slm_grammar_free(r->grammar);
        g_free(r->tool_choice);
        g_free(r->calls_made);
        g_strfreev(r->stops);
        g_clear_error(&r->error);
        if (r->results)
                g_ptr_array_unref(r->results);
        if (r->user_data_free)
                r->user_data_free(r->user_data);
        progress_free(r->progress);
        g_free(r);
}

void slmd_request_cancel(SlmdRequest *r)
{
        g_atomic_int_set(&r->cancelled, 1);
}

SlmdSeq *slmd_seq_new(guint n_ctx, const char *system_prompt, SlmdPriority priority, guint uid)
{
        SlmdSeq *s = g_new0(SlmdSeq, 1);

        s->n_ctx_requested = n_ctx;
        s->uid = uid;
        s->system_prompt = g_strdup(system_prompt && *system_prompt ? system_prompt : NULL);
        s->priority = priority;
        s->history = g_array_new(FALSE, FALSE, sizeof(int32_t));
        s->unevaluated = g_array_new(FALSE, FALSE, sizeof(int32_t));
        s->words = g_array_new(FALSE, FALSE, sizeof(WordMemo));
        g_array_set_clear_func(s->words, word_memo_clear);
        s->size = (gint)(n_ctx ? n_ctx : DEFAULT_CTX);
        return s;
}

static void seq_free(SlmdWorker *w, SlmdSeq *s)
{
        g_ptr_array_remove_fast(w->seqs, s);
        g_free(s->tokens_model);
        g_free(s->logits);
        slm_context_free(s->ctx);
        g_array_unref(s->history);
        g_array_unref(s->unevaluated);
        g_array_unref(s->words);
        g_free(s->system_prompt);
        g_free(s);
}

guint slmd_seq_context_used(SlmdSeq *s)
{
        return (guint)g_atomic_int_get(&s->used);
}

guint slmd_seq_context_size(SlmdSeq *s)
{
        return (guint)g_atomic_int_get(&s->size);
}

/* The kept logits, and what Suggest made of them, no longer hold. */
static void seq_forget_logits(SlmdSeq *s)
{
        s->logits_len = 0;
        g_array_set_size(s->words, 0);
}

static void seq_truncate(SlmdSeq *s, guint n)
{
        if (n < s->logits_len)
                seq_forget_logits(s);
        if (n < s->history->len) {
                slm_context_truncate(s->ctx, (int)n);
                g_array_set_size(s->history, n);
        }
        g_atomic_int_set(&s->used, (gint)s->history->len);
}

/* After @n tokens @ids were evaluated on @s (r: how that went): its history follows. */
static void seq_evaluated(SlmdSeq *s, const int32_t *ids, size_t n, int r)
{
        s->last_used = g_get_monotonic_time();
        if (r == 0)
                g_array_append_vals(s->history, ids, (guint)n);
        g_atomic_int_set(&s->used, (gint)s->history->len);
}

static int seq_eval(SlmdSeq *s, const int32_t *ids, size_t n, float *logits)
{
        int r = slm_context_eval(s->ctx, ids, (int)n, logits);

        seq_evaluated(s, ids, n, r);
        return r;
}

/* ---- events to the main loop --------------------------------------------------------------- */

typedef struct {
        SlmdWorker *w;
        SlmdRequest *req;
        SlmdEvent event;
        char *text;
} Post;

static gboolean post_deliver(gpointer data)
{
        Post *p = data;

        if (p->req->func)
                p->req->func(p->req, p->event, p->text, p->req->user_data);
        if (p->event == SLMD_EVENT_DONE && p->w->request_done)
                p->w->request_done(p->w->user_data);
        return G_SOURCE_REMOVE;
}

static void post_free(gpointer data)
{
        Post *p = data;

        slmd_request_unref(p->req);
        g_free(p->text);
        g_free(p);
}

static void post(SlmdWorker *w, SlmdRequest *req, SlmdEvent event, const char *text, gsize len)
{
        Post *p = g_new0(Post, 1);

        p->w = w;
        p->req = slmd_request_ref(req);
        p->event = event;
        p->text = text ? g_strndup(text, len) : NULL;
        g_main_context_invoke_full(w->main_ctx, G_PRIORITY_DEFAULT, post_deliver, p, post_free);
}

typedef struct {
        SlmdWorker *w;
        char *name;
} ModelPost;

static gboolean model_deliver(gpointer data)
{
        ModelPost *m = data;

        m->w->model_changed(m->name, m->w->user_data);
        return G_SOURCE_REMOVE;
}

static void model_post_free(gpointer data)
{
        ModelPost *m = data;

        g_free(m->name);
        g_free(m);
}

static void post_model(SlmdWorker *w)
{
        ModelPost *m = g_new0(ModelPost, 1);

        m->w = w;
        m->name = g_strdup(w->model_name);
        if (w->model_changed)
                g_main_context_invoke_full(w->main_ctx, G_PRIORITY_DEFAULT, model_deliver, m,
                                           model_post_free);
        else
                model_post_free(m);
}

static gboolean fail(SlmdRequest *req, SlmdError code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Finish @req with an error; returns TRUE (the request is done). */
static gboolean fail(SlmdRequest *req, SlmdError code, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        g_clear_error(&req->error);
        req->error = g_error_new_valist(SLMD_ERROR, code, fmt, ap);
        va_end(ap);
        req->reason = "error";
        return TRUE;
}

/* ---- the model ----------------------------------------------------------------------------- */

static void end_accepted_generations(SlmdWorker *w, const char *reason)
{
        for (int p = 0; p <= SLMD_PRIORITY_SYSTEM; p++)
                for (GList *l = w->sched.active[p].head; l; l = l->next) {
                        SlmdRequest *r = l->data;
                        if (r->seq && r->progress && r->progress->accepted && !r->reason)
                                r->reason = reason; /* finished on its next step */
                }
}

/* Whether a queued request works on @s (the requests of a step stay queued while it runs). */
static gboolean seq_in_use(SlmdWorker *w, SlmdSeq *s)
{
        return slmd_scheduler_uses(&w->sched, s);
}

/*
 * Free @s's KV cache but keep its tokens: they are evaluated again, in
 * front of whatever comes next, when the same model is resident.
 */
static void drop_cache(SlmdWorker *w, SlmdSeq *s)
{
        if (!s->ctx)
                return;
        seq_forget_logits(s);
        g_array_prepend_vals(s->unevaluated, s->history->data, s->history->len);
        g_array_set_size(s->history, 0);
        s->ctx = slm_context_free(s->ctx);
        g_free(s->tokens_model);
        s->tokens_model = g_strdup(w->model_name);
        g_atomic_int_set(&s->used, 0);
}

static guint drop_idle_caches(SlmdWorker *w)
{
        guint n = 0;

        for (guint i = 0; i < w->seqs->len; i++) {
                SlmdSeq *s = g_ptr_array_index(w->seqs, i);
                if (s->ctx && !seq_in_use(w, s)) {
                        drop_cache(w, s);
                        n++;
                }
        }
        return n;
}

/* KV bytes the contexts hold now: of @uid's sessions (NULL: everyone's), but for @except's. */
static guint64 kv_held(SlmdWorker *w, const guint *uid, const SlmdSeq *except)
{
        guint64 held = 0;

        for (guint i = 0; i < w->seqs->len; i++) {
                SlmdSeq *o = g_ptr_array_index(w->seqs, i);
                if (o != except && (!uid || o->uid == *uid) && o->ctx)
                        held += slm_context_kv_bytes(o->ctx);
        }
        return held;
}

/*
 * Keep all caches together, and @extra bytes about to be allocated, under the budget's cap:
 * drop idle ones, least recently used first.
 */
static void cap_caches(SlmdWorker *w, SlmdSeq *keep, guint64 extra)
{
        guint64 cap, total;

        g_mutex_lock(&w->lock);
        cap = w->budget.kv_cap_bytes;
        g_mutex_unlock(&w->lock);
        if (!cap)
                return;
        total = kv_held(w, NULL, NULL) + extra;
        while (total > cap) {
                SlmdSeq *victim = NULL;
                for (guint i = 0; i < w->seqs->len; i++) {
                        SlmdSeq *s = g_ptr_array_index(w->seqs, i);
                        if (s->ctx && s != keep && !seq_in_use(w, s) &&
                            (!victim || s->last_used < victim->last_used))
                                victim = s;
                }
                if (!victim)
                        return; /* every cache is in use: over the cap until one is idle */
                total -= slm_context_kv_bytes(victim->ctx);
                drop_cache(w, victim);
                g_message("KV cache of an idle session dropped: over the %" G_GUINT64_FORMAT
                          " MiB cap",
                          cap >> 20);
        }
}

static void unload(SlmdWorker *w)
{
        end_accepted_generations(w, "unloaded");
        /* idle sessions keep their tokens for when the model is back */
        drop_idle_caches(w);
        w->batch = slm_batch_free(w->batch);
        w->chat = slm_chat_free(w->chat);
        w->trie = slm_token_trie_free(w->trie);
        /* device copies are keyed by address, which the next model may reuse */
        slm_backend_release_weights(w->backend);
        w->model = slm_model_free(w->model);
        g_clear_pointer(&w->model_name, g_free);
        g_clear_pointer(&w->logits, g_free);
        w->model_gen++; /* every session's context is rebuilt on its next use */
        g_mutex_lock(&w->lock);
        w->kv_pos_bytes = 0;
        w->n_ctx_train = 0;
        g_mutex_unlock(&w->lock);
}

static int load(SlmdWorker *w, const char *name, const char *path, GError **error)
{
        SlmModel *m = NULL;
        SlmError err = { { 0 } };
        int r = slm_model_load(path, &m, &err);

        if (r < 0) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_MODEL, "cannot load %s: %s", name,
                            err.msg);
                return r;
        }
        unload(w);
        r = slm_batch_new(m, w->backend, PREFILL_CHUNK, SLMD_STEP_MAX_SEQS, &w->batch, &err);
        if (r < 0) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_FAILED, "cannot load %s: %s", name,
                            err.msg);
                slm_model_free(m);
                post_model(w);
                return r;
        }
        r = slm_chat_new(slm_model_gguf(m), slm_model_tokenizer(m), &w->chat);
        if (r < 0) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_FAILED, "cannot load %s: out of memory",
                            name);
                w->batch = slm_batch_free(w->batch);
                slm_model_free(m);
                post_model(w);
                return r;
        }
        if (slm_chat_template_error(w->chat))
                g_warning("%s: its chat template is not used, the built-in %s format is: %s", name,
                          slm_chat_name(w->chat), slm_chat_template_error(w->chat));
        w->model = m;
        w->model_name = g_strdup(name);
        w->logits = g_new(float, slm_model_hparams(m)->n_vocab);
        g_mutex_lock(&w->lock);
        w->kv_pos_bytes = slm_model_kv_bytes_per_position(m, w->kv_type);
        w->n_ctx_train = slm_model_hparams(m)->n_ctx_train;
        g_mutex_unlock(&w->lock);
        post_model(w);
        return 0;
}

/* The model, loading the default one when none is resident. */
static gboolean ensure_model(SlmdWorker *w, SlmdRequest *req)
{
        g_autofree char *name = NULL, *path = NULL;
        g_autoptr(GError) error = NULL;

        if (w->model)
                return TRUE;
        g_mutex_lock(&w->lock);
        name = g_strdup(w->default_name);
        path = g_strdup(w->default_path);
        gboolean unloaded = w->budget.unload;
        g_mutex_unlock(&w->lock);
        if (unloaded) {
                fail(req, SLMD_ERROR_THROTTLED, "memory pressure: the model stays unloaded");
                return FALSE;
        }
        if (!path) {
                fail(req, SLMD_ERROR_NO_MODEL, "no model is loaded and there is no default model");
                return FALSE;
        }
        if (load(w, name, path, &error) < 0) {
                fail(req, SLMD_ERROR_NO_MODEL, "%s", error->message);
                return FALSE;
        }
        return TRUE;
}

/* The positions a session's context gets: what it asked for, at most the model's. */
static int context_for(int n_ctx_train, guint requested)
{
        if (requested && (int)requested < n_ctx_train)
                return (int)requested;
        if (!requested && n_ctx_train > DEFAULT_CTX)
                return DEFAULT_CTX;
        return n_ctx_train;
}

/* Fail @req with QuotaExceeded: its user's caches would hold @want with @with; FALSE. */
static gboolean quota_exceeded(SlmdRequest *req, guint64 want, guint64 limit, const char *with)
{
        g_clear_error(&req->error);
        req->error = slmd_kv_quota_error(req->seq->uid, want, limit, with);
        req->reason = "error";
        return FALSE;
}

/* Whether @req's session may hold @bytes more of KV cache; else @req fails with QuotaExceeded. */
static gboolean user_kv_fits(SlmdWorker *w, SlmdRequest *req, guint64 bytes)
{
        guint64 limit, held;

        g_mutex_lock(&w->lock);
        limit = w->user_kv_limit;
        g_mutex_unlock(&w->lock);
        held = kv_held(w, &req->seq->uid, req->seq);
        if (!limit || held + bytes <= limit)
                return TRUE;
        return quota_exceeded(req, held + bytes, limit, "this one");
}

/* The session's context for the resident model. */
static gboolean ensure_ctx(SlmdWorker *w, SlmdRequest *req)
{
        SlmdSeq *s = req->seq;
        SlmError err = { { 0 } };
        int n_ctx;

        if (!ensure_model(w, req))
                return FALSE;
        if (s->ctx && s->model_gen == w->model_gen)
                return TRUE;
        s->ctx = slm_context_free(s->ctx);
        seq_forget_logits(s);
        g_clear_pointer(&s->logits, g_free);
        if (!s->tokens_model || g_strcmp0(s->tokens_model, w->model_name) != 0) {
                /* a new model: the tokens mean nothing to it */
                g_array_set_size(s->history, 0);
                g_array_set_size(s->unevaluated, 0);
        }
        g_clear_pointer(&s->tokens_model, g_free);
        if (!g_ptr_array_find(w->seqs, s, NULL))
                g_ptr_array_add(w->seqs, s);
        n_ctx = context_for(slm_model_hparams(w->model)->n_ctx_train, s->n_ctx_requested);
        /* before allocating, then with what the backend allocated (it may hold a wider type) */
        if (!user_kv_fits(w, req, (guint64)n_ctx * w->kv_pos_bytes)) /* this thread sets it */
                return FALSE;
        if (slm_context_new(w->model, w->backend, n_ctx, w->kv_type, &s->ctx, &err) < 0) {
                fail(req, SLMD_ERROR_FAILED, "cannot create a context: %s", err.msg);
                return FALSE;
        }
        if (!user_kv_fits(w, req, slm_context_kv_bytes(s->ctx))) {
                s->ctx = slm_context_free(s->ctx);
                return FALSE;
        }
        if (slm_context_kv_type(s->ctx) != w->kv_type && w->kv_fallback_gen != w->model_gen) {
                w->kv_fallback_gen = w->model_gen; /* said once per model */
                g_message("%s: KV cache in %s: this model or backend cannot hold %s", w->model_name,
                          slm_type_name(slm_context_kv_type(s->ctx)), slm_type_name(w->kv_type));
        }
        s->model_gen = w->model_gen;
        s->last_used = g_get_monotonic_time();
        cap_caches(w, s, 0);
        g_atomic_int_set(&s->size, n_ctx);
        g_atomic_int_set(&s->used, 0);
        return TRUE;
}

/* ---- tokens -------------------------------------------------------------------------------- */

static GArray *encode(SlmdWorker *w, const char *text, unsigned flags)
{
        const SlmTokenizer *tk = slm_model_tokenizer(w->model);
        int32_t *ids = NULL;
        size_t n = 0;
        GArray *a = g_array_new(FALSE, FALSE, sizeof(int32_t));

        if (text && slm_tokenizer_encode(tk, text, strlen(text), flags, &ids, &n) == 0) {
                g_array_append_vals(a, ids, (guint)n);
                free(ids);
        }
        return a;
}

/*
 * What a request adds to the session: a fresh context starts with BOS and
 * the system prompt; tokens generated last time and not yet evaluated
 * come first.
 */
static GArray *prompt_tokens(SlmdWorker *w, SlmdRequest *req, const char *text, unsigned flags)
{
        SlmdSeq *s = req->seq;
        GArray *out = g_array_new(FALSE, FALSE, sizeof(int32_t));
        g_autoptr(GArray) body = NULL;

        if (s->history->len == 0 && s->unevaluated->len == 0) {
                g_autoptr(GArray) sys = encode(
                    w, s->system_prompt, SLM_TOKENIZE_ADD_SPECIAL | SLM_TOKENIZE_PARSE_SPECIAL);
                g_array_append_vals(out, sys->data, sys->len);
                if (sys->len == 0 && slm_tokenizer_add_bos(slm_model_tokenizer(w->model)))
                        g_array_append_val(
                            out, (int32_t){ slm_tokenizer_bos(slm_model_tokenizer(w->model)) });
        }
        g_array_append_vals(out, s->unevaluated->data, s->unevaluated->len);
        g_array_set_size(s->unevaluated, 0);
        body = encode(w, text, flags);
        g_array_append_vals(out, body->data, body->len);
        return out;
}

/* ---- append, generate, chat ---------------------------------------------------------------- */

/*
 * Tools: a required call is generated under its grammar from the first
 * token; with "auto" the grammar takes over once the model opens a call
 * in its format. Either way the answer is kept to read the calls from.
 */
static gboolean start_tools(SlmdWorker *w, SlmdRequest *req)
{
        Progress *p = req->progress;
        const char *choice = req->tool_choice ? req->tool_choice : "auto";
        gboolean required = strcmp(choice, "auto") != 0;
        g_autofree char *gbnf = NULL;
        SlmError err = { { 0 } };
        SlmGrammar *g = NULL;
        int r;

        if (strcmp(choice, "none") == 0)
                return TRUE;
        r = slm_chat_tool_grammar(w->chat, req->tools, strlen(req->tools),
                                  required && strcmp(choice, "required") != 0 ? choice : NULL,
                                  !required, &gbnf, &err);
        if (r == 0)
                r = slm_grammar_parse(gbnf, strlen(gbnf), &g, &err);
        if (r < 0) {
                fail(req, r == -ENOMEM ? SLMD_ERROR_FAILED : SLMD_ERROR_INVALID_ARGUMENT, "%s",
                     err.msg);
                return FALSE;
        }
        if (required && !req->grammar)
                req->grammar = g;
        else if (!required)
                p->lazy = g;
        else
                slm_grammar_free(g);
        p->text = g_string_new(NULL);
        return TRUE;
}

/* With "auto": once the answer opens a call, the call's grammar constrains the rest. */
static void watch_for_call(SlmdWorker *w, SlmdRequest *req)
{
        Progress *p = req->progress;
        const char *trigger = slm_chat_tool_trigger(w->chat);
        const char *at = NULL;

        if (!p->lazy || p->matcher)
                return;
        if (slm_chat_tool_format(w->chat) == SLM_TOOLS_TAGGED ||
            slm_chat_tool_format(w->chat) == SLM_TOOLS_MISTRAL) {
                /* only what came since, and the trigger's length before it */
                size_t from = p->searched > strlen(trigger) ? p->searched - strlen(trigger) : 0;
                at = strstr(p->text->str + from, trigger);
                p->searched = p->text->len;
        } else {
                at = p->text->str + strspn(p->text->str, " \n\t");
                if (*at != '{') {
                        if (*at) /* the answer began with something else: no call */
                                g_clear_pointer(&p->lazy, slm_grammar_free);
                        return;
                }
        }
        if (!at)
                return;
        const char *rest = at + strlen(trigger);
        if (slm_grammar_matcher_new(p->lazy, w->trie, &p->matcher) < 0 ||
            slm_grammar_matcher_accept_text(p->matcher, rest, strlen(rest)) < 0)
                /* the token that opened it went on in another way: leave the answer free */
                g_clear_pointer(&p->matcher, slm_grammar_matcher_free);
        g_clear_pointer(&p->lazy, slm_grammar_free);
}

/* The request's messages as the template sees them: role, content, tool_calls, tool_call_id. */
static int chat_values(SlmdRequest *req, SlmArena *a, gboolean add_system, const char *system,
                       SlmChatInput *in, SlmError *err)
{
        SlmValue msgs = slm_value_new_list(a);
        guint n = g_strv_length(req->roles);

        if (msgs.type != SLM_VALUE_LIST)
                return -ENOMEM;
        for (guint i = 0; i <= n; i++) {
                gboolean sys = i == 0;
                const char *role = sys ? "system" : req->roles[i - 1];
                const char *content = sys ? system : req->contents[i - 1];
                SlmValue d = slm_value_new_dict(a), v;
                int r = 0;
                if (sys && !add_system)
                        continue;
                if (d.type != SLM_VALUE_DICT)
                        return -ENOMEM;
                if (slm_dict_set(a, d.dict, slm_value_str_static("role", 4),
                                 slm_value_str_static(role, strlen(role))) < 0 ||
                    slm_dict_set(a, d.dict, slm_value_str_static("content", 7),
                                 slm_value_str_static(content, strlen(content))) < 0)
                        return -ENOMEM;
                if (!sys && req->tool_calls && *req->tool_calls[i - 1]) {
                        const char *j = req->tool_calls[i - 1];
                        if ((r = slm_json_parse(a, j, strlen(j), &v, err)) < 0)
                                return r;
                        if (slm_dict_set(a, d.dict, slm_value_str_static("tool_calls", 10), v) < 0)
                                return -ENOMEM;
                }
                if (!sys && req->tool_call_ids && *req->tool_call_ids[i - 1]) {
                        const char *id = req->tool_call_ids[i - 1];
                        if (slm_dict_set(a, d.dict, slm_value_str_static("tool_call_id", 12),
                                         slm_value_str_static(id, strlen(id))) < 0)
                                return -ENOMEM;
                }
                if (slm_list_append(a, msgs.list, d) < 0)
                        return -ENOMEM;
        }
        *in = (SlmChatInput){ .messages = msgs, .add_generation_prompt = true };
        if (req->tools) {
                int r = slm_json_parse(a, req->tools, strlen(req->tools), &in->tools, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/*
 * The tokens of a conversation written by the model's template. A context
 * starts with one BOS (where the vocabulary wants it) whether the template
 * writes it or not; a continuation (@fresh FALSE) starts with none.
 */
static int template_tokens(SlmdWorker *w, const SlmChatInput *in, gboolean fresh, GArray **ret,
                           SlmError *err)
{
        const SlmTokenizer *tk = slm_model_tokenizer(w->model);
        g_autofree char *text = NULL;
        size_t len;
        int r = slm_chat_render(w->chat, in, &text, &len, err);

        if (r < 0)
                return r;
        GArray *toks = encode(w, text, SLM_TOKENIZE_PARSE_SPECIAL);
        int32_t bos = slm_tokenizer_bos(tk);
        gboolean starts_bos = toks->len > 0 && g_array_index(toks, int32_t, 0) == bos;
        if (fresh && slm_tokenizer_add_bos(tk) && bos >= 0 && !starts_bos)
                g_array_prepend_val(toks, bos);
        else if (!fresh && starts_bos)
                g_array_remove_index(toks, 0);
        *ret = toks;
        return 0;
}

/*
 * A chat's tokens through the model's template: the whole conversation for
 * ChatMessages, which keeps the part of the context it shares with what the
 * session holds; the new turns, after the session's context, for Chat. One
 * BOS at the start of a context whether the template writes it or not.
 * NULL when the request failed.
 */
static GArray *chat_tokens(SlmdWorker *w, SlmdRequest *req)
{
        SlmdSeq *s = req->seq;
        gboolean fresh = req->conversation || (s->history->len == 0 && s->unevaluated->len == 0);
        gboolean has_system = FALSE;
        SlmError err = { { 0 } };
        GArray *toks = NULL;
        SlmChatInput in;
        SlmArena a;
        int r;

        for (char **role = req->roles; *role; role++)
                has_system |= strcmp(*role, "system") == 0;
        slm_arena_init(&a, 64u << 20);
        r = chat_values(req, &a, fresh && !has_system && s->system_prompt && *s->system_prompt,
                        s->system_prompt, &in, &err);
        if (r == 0)
                r = template_tokens(w, &in, fresh, &toks, &err);
        slm_arena_clear(&a);
        if (r == -ENOMEM) {
                fail(req, SLMD_ERROR_FAILED, "out of memory");
                return NULL;
        }
        if (r == -ECANCELED) {
                fail(req, SLMD_ERROR_INVALID_ARGUMENT,
                     "the model's chat template refuses the conversation: %s", err.msg);
                return NULL;
        }
        if (r < 0) {
                fail(req, SLMD_ERROR_INVALID_ARGUMENT, "cannot write the conversation: %s",
                     err.msg);
                return NULL;
        }
        if (req->conversation) {
                guint common = 0;
                while (common < toks->len && common < s->history->len &&
                       g_array_index(toks, int32_t, common) ==
                           g_array_index(s->history, int32_t, common))
                        common++;
                g_array_set_size(s->unevaluated, 0);
                if (s->ctx)
                        seq_truncate(s, common);
                g_array_remove_range(toks, 0, common);
        } else {
                g_array_prepend_vals(toks, s->unevaluated->data, s->unevaluated->len);
                g_array_set_size(s->unevaluated, 0);
        }
        return toks;
}

static gboolean start_prompt(SlmdWorker *w, SlmdRequest *req)
{
        SlmdSeq *s = req->seq;
        Progress *p = g_new0(Progress, 1);
        g_autoptr(GArray) toks = NULL;
        g_autofree char *chat = NULL;
        const char *text = req->text;
        unsigned flags = 0;
        guint need;

        req->progress = p;
        p->t_start = g_get_monotonic_time();
        if (!ensure_ctx(w, req))
                return TRUE;
        if (req->kind == SLMD_REQ_CHAT &&
            (req->conversation || req->tools || slm_chat_has_template(w->chat))) {
                toks = chat_tokens(w, req);
                if (!toks)
                        return TRUE;
        } else if (req->kind == SLMD_REQ_CHAT) {
                guint n = g_strv_length(req->roles);
                g_autofree SlmChatMessage *msgs = g_new0(SlmChatMessage, n ? n : 1);
                for (guint i = 0; i < n; i++)
                        msgs[i] = (SlmChatMessage){ req->roles[i], req->contents[i] };
                if (slm_chat_format(slm_chat_template_detect(slm_model_gguf(w->model),
                                                             slm_model_tokenizer(w->model)),
                                    msgs, n, &chat) < 0)
                        return fail(req, SLMD_ERROR_INVALID_ARGUMENT,
                                    "roles are system, user or assistant");
                text = chat;
                flags = SLM_TOKENIZE_PARSE_SPECIAL; /* the template's markers */
        }
        if (!toks)
                toks = prompt_tokens(w, req, text, flags);
        if (toks->len == 0 && req->kind == SLMD_REQ_APPEND) {
                /* nothing new to add: done, the context as it was */
                req->reason = "done";
                return TRUE;
        }
        if (toks->len == 0 && s->history->len == 0)
                return fail(req, SLMD_ERROR_INVALID_ARGUMENT,
                            "the prompt is empty and the model has no BOS token");
        if (toks->len == 0) {
                /* nothing new: evaluate the last token again for its logits */
                int32_t last = g_array_index(s->history, int32_t, s->history->len - 1);
                seq_truncate(s, s->history->len - 1);
                g_array_append_val(toks, last);
        }
        need = s->history->len + toks->len + (req->kind == SLMD_REQ_APPEND ? 0 : 1);
        if (need > (guint)slm_context_n_ctx(s->ctx))
                return fail(req, SLMD_ERROR_CONTEXT_OVERFLOW,
                            "%u tokens do not fit in the context of %d (%u already used)",
                            toks->len, slm_context_n_ctx(s->ctx), s->history->len);
        if (req->kind != SLMD_REQ_APPEND) {
                const char *bad = slm_sampler_params_check(&req->sampling);
                if (bad)
                        return fail(req, SLMD_ERROR_INVALID_ARGUMENT, "invalid %s", bad);
                if (slm_sampler_new(&req->sampling, slm_model_hparams(w->model)->n_vocab,
                                    &p->sampler) < 0 ||
                    slm_stop_matcher_init(&p->stop, (const char *const *)req->stops,
                                          req->stops ? g_strv_length(req->stops) : 0) < 0)
                        return fail(req, SLMD_ERROR_FAILED, "out of memory");
                slm_detokenizer_init(&p->detok, slm_model_tokenizer(w->model), FALSE);
                if (req->tools && !start_tools(w, req))
                        return TRUE;
                if (req->grammar) {
                        int r = w->trie
                                    ? 0
                                    : slm_token_trie_new(slm_model_tokenizer(w->model), &w->trie);
                        if (r == 0)
                                r = slm_grammar_matcher_new(req->grammar, w->trie, &p->matcher);
                        if (r < 0)
                                return fail(req,
                                            r == -E2BIG ? SLMD_ERROR_INVALID_ARGUMENT
                                                        : SLMD_ERROR_FAILED,
                                            r == -E2BIG ? "the grammar is too ambiguous to follow"
                                                        : "out of memory");
                }
        }
        p->logits = g_new(float, slm_model_hparams(w->model)->n_vocab);
        p->n_prompt = toks->len;
        p->prompt = (int32_t *)g_array_free(g_steal_pointer(&toks), FALSE);
        p->accepted = TRUE;
        req->n_prompt = (guint)p->n_prompt;
        post(w, req, SLMD_EVENT_ACCEPTED, NULL, 0);
        return FALSE;
}

static gboolean finish_text(SlmdWorker *w, SlmdRequest *req, const char *reason)
{
        Progress *p = req->progress;
        char buf[64];
        const char *out;
        size_t n;
        bool stopped = false;

        /* whatever the detokenizer and the stop matcher still hold */
        int k = slm_detokenizer_flush(&p->detok, buf, sizeof(buf));
        if (k > 0 && p->text)
                g_string_append_len(p->text, buf, k);
        if (p->text) {
                char *calls = NULL;
                if (slm_chat_parse_tool_calls(w->chat, p->text->str, p->text->len, &calls) == 0 &&
                    strcmp(calls, "[]") != 0)
                        req->calls_made = g_strdup(calls);
                free(calls);
        }
        if (k > 0 && slm_stop_matcher_feed(&p->stop, buf, (size_t)k, &out, &n, &stopped) == 0 &&
            n > 0)
                post(w, req, SLMD_EVENT_TOKEN, out, n);
        if (!stopped) {
                slm_stop_matcher_flush(&p->stop, &out, &n);
                if (n > 0)
                        post(w, req, SLMD_EVENT_TOKEN, out, n);
        }
        req->reason = reason;
        return TRUE;
}

/* What a text request evaluates in a step. */
typedef struct {
        int32_t token; /* a generated one */
        const int32_t *ids;
        size_t n; /* 0: nothing this step */
        float *logits;
        gboolean prompt; /* a chunk of its prompt */
} Part;

/* Whether @req has its prompt still (or yet) to evaluate. */
static gboolean in_prompt(const SlmdRequest *req)
{
        return !req->progress || req->progress->n_done < req->progress->n_prompt;
}

/*
 * What @req evaluates next, at most @room tokens (room >= 1): a chunk of
 * its prompt, or the token it samples now, which also goes out to its
 * client. TRUE when the request is done instead.
 */
static gboolean text_prepare(SlmdWorker *w, SlmdRequest *req, size_t room, Part *part)
{
        SlmdSeq *s = req->seq;
        Progress *p = req->progress;

        part->n = 0;
        if (!p) {
                if (start_prompt(w, req))
                        return TRUE;
                p = req->progress; /* accepted: its first chunk goes in this step */
        }
        if (req->reason) /* ended from outside: the model went away */
                return TRUE;
        if (g_atomic_int_get(&req->cancelled))
                return req->kind == SLMD_REQ_APPEND ? fail(req, SLMD_ERROR_CANCELLED, "cancelled")
                                                    : finish_text(w, req, "cancelled");

        if (p->n_done < p->n_prompt) {
                size_t n = MIN(p->n_prompt - p->n_done, room);
                gboolean last = p->n_done + n == p->n_prompt;
                *part = (Part){ 0, p->prompt + p->n_done, n, last ? p->logits : NULL, TRUE };
                return FALSE;
        }
        if (!p->sampler) {
                /* Append: the prompt was all there was to do */
                req->reason = "done";
                return TRUE;
        }

        /* decode one token */
        const SlmTokenizer *tk = slm_model_tokenizer(w->model);
        if (p->matcher) {
                /*
                 * only what keeps the text a sentence of the grammar, or ends it when whole; the
                 * sampler keeps its top-k (greedy: 1), and with no penalty to reorder the logits
                 * the grammar need only find those
                 */
                const SlmSamplerParams *sp = &req->sampling;
                bool penalties = sp->repeat_penalty != 1.0f || sp->frequency_penalty != 0.0f ||
                                 sp->presence_penalty != 0.0f;
                int k = penalties ? 0 : sp->temperature == 0.0f ? 1 : sp->top_k;
                int allowed = slm_grammar_matcher_mask_top(p->matcher, p->logits, k);
                if (allowed == -E2BIG)
                        return fail(req, SLMD_ERROR_INVALID_ARGUMENT,
                                    "the grammar is too ambiguous to follow");
                if (allowed < 0)
                        return fail(req, SLMD_ERROR_FAILED, "out of memory");
                if (allowed == 0)
                        return slm_grammar_matcher_complete(p->matcher)
                                   ? finish_text(w, req, "stop")
                                   : fail(req, SLMD_ERROR_INVALID_ARGUMENT,
                                          "no token of the model can go on with what the "
                                          "grammar asks for");
        }
        int32_t id = slm_sampler_sample(p->sampler, p->logits, (const int32_t *)s->history->data,
                                        s->history->len);
        if (p->matcher && slm_grammar_matcher_accept(p->matcher, id) < 0)
                return fail(req, SLMD_ERROR_FAILED,
                            "the sampler chose a token the grammar refuses");
        req->n_generated++;
        req->decode_ms = (double)(g_get_monotonic_time() - p->t_decode) / 1000.0;
        if (slm_tokenizer_is_eog(tk, id)) {
                g_array_append_val(s->unevaluated, id);
                return finish_text(w, req, "stop");
        }
        char buf[4096];
        int k = slm_detokenizer_feed(&p->detok, id, buf, sizeof(buf));
        if (k > 0 && p->text) {
                g_string_append_len(p->text, buf, k);
                watch_for_call(w, req);
        }
        if (k > 0) {
                const char *out;
                size_t n;
                bool stopped = false;
                if (slm_stop_matcher_feed(&p->stop, buf, (size_t)k, &out, &n, &stopped) == 0 &&
                    n > 0)
                        post(w, req, SLMD_EVENT_TOKEN, out, n);
                if (stopped) {
                        g_array_append_val(s->unevaluated, id);
                        req->reason = "stop";
                        return TRUE;
                }
        }
        if (p->matcher && slm_grammar_matcher_finished(p->matcher)) {
                /* the text is whole and nothing may follow */
                g_array_append_val(s->unevaluated, id);
                return finish_text(w, req, "stop");
        }
        if (req->n_generated >= req->max_tokens) {
                g_array_append_val(s->unevaluated, id);
                return finish_text(w, req, "length");
        }
        if (s->history->len + 1 >= (guint)slm_context_n_ctx(s->ctx)) {
                g_array_append_val(s->unevaluated, id);
                return finish_text(w, req, "context");
        }
        *part = (Part){ id, NULL, 1, p->logits, FALSE };
        part->ids = &part->token;
        return FALSE;
}

/* After the step evaluated @part (r: how it went). TRUE when the request is done. */
static gboolean text_complete(SlmdRequest *req, const Part *part, int r)
{
        Progress *p = req->progress;

        seq_evaluated(req->seq, part->ids, part->n, r);
        if (r < 0)
                return fail(req, SLMD_ERROR_FAILED, "evaluation failed: %s", g_strerror(-r));
        if (!part->prompt)
                return FALSE;
        p->n_done += part->n;
        if (p->n_done < p->n_prompt)
                return FALSE;
        gint64 now = g_get_monotonic_time();
        req->prompt_ms = (double)(now - p->t_start) / 1000.0;
        p->t_decode = now;
        if (p->sampler)
                return FALSE; /* the first token in the next step */
        req->reason = "done"; /* Append: the prompt was all there was to do */
        return TRUE;
}

/*
 * One step of @n text requests (highest class first) in one forward pass
 * of at most w->step_batch tokens: one token of every generation first,
 * then prompt chunks, by class, in what is left. A request that gets no
 * room waits for the next step. done[i]: whether reqs[i] finished.
 */
static void step_texts(SlmdWorker *w, SlmdRequest **reqs, guint n, gboolean *done)
{
        Part parts[SLMD_STEP_MAX_SEQS];
        SlmBatchSeq seqs[SLMD_STEP_MAX_SEQS];
        guint idx[SLMD_STEP_MAX_SEQS], k = 0;
        size_t left = (size_t)MAX(w->step_batch, 1);

        for (guint i = 0; i < n; i++)
                done[i] = FALSE;
        /* generations in the first pass, prompts in the second */
        for (int pass = 0; pass < 2; pass++)
                for (guint i = 0; i < n; i++) {
                        SlmdRequest *req = reqs[i];
                        if (in_prompt(req) != (pass == 1))
                                continue;
                        /* without room it waits, unless it is ending: that takes none */
                        if (left == 0 && !g_atomic_int_get(&req->cancelled) && !req->reason)
                                continue;
                        done[i] = text_prepare(w, req, MAX(left, 1), &parts[i]);
                        if (done[i] || parts[i].n == 0)
                                continue;
                        g_assert(parts[i].n <= left); /* room for it was there */
                        left -= parts[i].n;
                        seqs[k] = (SlmBatchSeq){ req->seq->ctx, parts[i].ids, (int)parts[i].n,
                                                 parts[i].logits };
                        idx[k++] = i;
                }
        if (k == 0)
                return;
        int r = slm_batch_eval(w->batch, seqs, (int)k);
        for (guint j = 0; j < k; j++)
                done[idx[j]] = text_complete(reqs[idx[j]], &parts[idx[j]], r);
}

/* ---- suggestions and smart replies --------------------------------------------------------- */

/*
 * Make the context hold exactly @toks, reusing the longest common prefix,
 * and leave the logits of the last token in w->logits; @room more
 * positions must stay free for what the caller generates after them.
 */
static int sync_context(SlmdWorker *w, SlmdSeq *s, GArray *toks, guint room)
{
        guint common = 0, n_ctx = (guint)slm_context_n_ctx(s->ctx);
        const int32_t *t = (const int32_t *)toks->data;

        if (toks->len == 0)
                return -EINVAL; /* no token whose logits could be left */
        if (room >= n_ctx || toks->len > n_ctx - room)
                return -ENOSPC;
        g_array_set_size(s->unevaluated, 0);
        while (common < toks->len && common < s->history->len &&
               t[common] == g_array_index(s->history, int32_t, common))
                common++;
        size_t bytes = sizeof(float) * (size_t)slm_model_hparams(w->model)->n_vocab;
        if (common == toks->len) {
                seq_truncate(s, common);
                if (s->logits_len == common) {
                        /* nothing new since the last keystroke: its logits still hold */
                        memcpy(w->logits, s->logits, bytes);
                        return 0;
                }
                common--; /* the last token again, for its logits */
        }
        seq_truncate(s, common);
        seq_forget_logits(s);
        int r = seq_eval(s, t + common, toks->len - common, w->logits);
        if (r == 0) {
                if (!s->logits)
                        s->logits = g_malloc(bytes);
                memcpy(s->logits, w->logits, bytes);
                s->logits_len = toks->len;
        }
        return r;
}

static gboolean is_word_byte(unsigned char c)
{
        return g_ascii_isalnum(c) || c == '\'' || c >= 0x80;
}

/* Candidate token ids, most likely first: the top @k of w->logits. */
/* Put @id into @best, the at most @k ids of the highest @logits so far, highest first. */
static void keep_top(GArray *best, guint k, const float *logits, int32_t id)
{
        guint pos = best->len;

        while (pos > 0 && logits[g_array_index(best, int32_t, pos - 1)] < logits[id])
                pos--;
        if (pos < k) {
                g_array_insert_val(best, pos, id);
                if (best->len > k)
                        g_array_set_size(best, k);
        }
}

static GArray *top_tokens(SlmdWorker *w, guint k)
{
        int n_vocab = slm_model_hparams(w->model)->n_vocab;
        GArray *best = g_array_new(FALSE, FALSE, sizeof(int32_t));

        for (int32_t i = 0; i < n_vocab; i++)
                keep_top(best, k, w->logits, i);
        return best;
}

static gboolean contains(GPtrArray *a, const char *s)
{
        for (guint i = 0; i < a->len; i++)
                if (strcmp(a->pdata[i], s) == 0)
                        return TRUE;
        return FALSE;
}

/* A word goes on while pieces continue it: no leading space, word characters. */
static gboolean word_continues(const char *piece, size_t len, GString *sofar)
{
        (void)sofar;
        return len > 0 && is_word_byte((unsigned char)piece[0]);
}

/* A reply goes on until a newline. */
static gboolean reply_continues(const char *piece, size_t len, GString *sofar)
{
        (void)sofar;
        return memchr(piece, '\n', len) == NULL;
}

/* A word: what follows leading spaces, up to the first character that is not a word's. */
static char *first_word(char *text)
{
        char *end;

        while (*text == ' ')
                text++;
        for (end = text; *end && is_word_byte((unsigned char)*end); end++)
                ;
        *end = 0;
        return text;
}

/* A reply: without the spaces around it. */

/* Whether @a holds @word, in any case: a keyboard shows "please" or "Please", not both. */
static gboolean contains_word(GPtrArray *a, const char *word)
{
        for (guint i = 0; i < a->len; i++)
                if (g_ascii_strcasecmp(a->pdata[i], word) == 0)
                        return TRUE;
        return FALSE;
}

/*
 * The word being typed at the end of @text: *ret_partial (its bytes, maybe
 * none) and *ret_space (whether spaces come before it, or end the text);
 * the length of what the model reads, the text before both.
 */
static size_t split_word(const char *text, const char **ret_partial, gboolean *ret_space)
{
        size_t end = strlen(text), start = end, ctx;

        while (start > 0 && is_word_byte((unsigned char)text[start - 1]))
                start--;
        ctx = start;
        while (ctx > 0 && g_ascii_isspace(text[ctx - 1]))
                ctx--;
        *ret_partial = text + start;
        *ret_space = ctx < start;
        return ctx;
}

/* What a suggested word must begin with, and whether a piece keeps to it. */
typedef struct {
        char *want;        /* " gi" (a space, then the typed letters), "gi" at the text's start */
        gboolean at_start; /* the model reads nothing but BOS: leading spaces do not count */
} Prefix;

/* Whether @sofar followed by @piece still agrees with the prefix (letters in either case). */
static gboolean prefix_allows(const Prefix *px, const char *sofar, size_t n_sofar,
                              const char *piece, size_t len)
{
        size_t want = strlen(px->want), at = 0;
        char buf[256];

        if (n_sofar + len > sizeof(buf))
                return n_sofar >= want; /* past the prefix already */
        memcpy(buf, sofar, n_sofar);
        memcpy(buf + n_sofar, piece, len);
        size_t n = n_sofar + len;
        if (px->at_start)
                while (at < n && buf[at] == ' ')
                        at++;
        size_t m = MIN(n - at, want);
        return g_ascii_strncasecmp(buf + at, px->want, m) == 0;
}

static gboolean prefix_covered(const Prefix *px, const char *sofar, size_t n_sofar)
{
        size_t at = 0;

        if (px->at_start)
                while (at < n_sofar && sofar[at] == ' ')
                        at++;
        return n_sofar - at >= strlen(px->want);
}

/* The @k likeliest tokens of @logits whose piece agrees with @px, most likely first. */
static GArray *top_matching(SlmdWorker *w, const float *logits, guint k, const Prefix *px,
                            const GString *sofar)
{
        const SlmTokenizer *tk = slm_model_tokenizer(w->model);
        int n_vocab = slm_model_hparams(w->model)->n_vocab;
        GArray *best = g_array_new(FALSE, FALSE, sizeof(int32_t));

        for (int32_t i = 0; i < n_vocab; i++) {
                size_t len;
                /* the piece is looked at only when the token would make the top k */
                if (best->len == k && logits[g_array_index(best, int32_t, k - 1)] >= logits[i])
                        continue;
                const char *piece = slm_tokenizer_piece(tk, i, FALSE, &len);
                if (!piece || len == 0 || slm_tokenizer_is_eog(tk, i) ||
                    !prefix_allows(px, sofar->str, sofar->len, piece, len))
                        continue;
                keep_top(best, k, logits, i);
        }
        return best;
}

/*
 * How many forks of @req's context, of its first @base positions and @max more, to make at
 * once (at most @want): each holds a KV cache of its own while the call runs, which counts
 * against the user's share with the caches the user holds, and against the caches' cap, for
 * which idle caches are dropped first. 0, with @req failed with QuotaExceeded, where not even
 * one fits the share.
 */
static guint fork_room(SlmdWorker *w, SlmdRequest *req, guint base, guint max, guint want)
{
        SlmdSeq *s = req->seq;
        guint64 limit, held, each;

        each = slm_context_kv_bytes(s->ctx) / (guint64)slm_context_n_ctx(s->ctx) * (base + max);
        g_mutex_lock(&w->lock);
        limit = w->user_kv_limit;
        g_mutex_unlock(&w->lock);
        if (limit) {
                held = kv_held(w, &s->uid, NULL);
                guint64 fit = limit > held ? (limit - held) / MAX(each, 1) : 0;
                if (fit == 0) {
                        quota_exceeded(req, held + each, limit,
                                       "a copy of this one's context to write candidates on");
                        return 0;
                }
                want = (guint)MIN(want, fit);
        }
        cap_caches(w, s, want * each);
        return want;
}

/* One candidate word being generated on a fork of the session's context. */
typedef struct {
        SlmContext *ctx;
        GString *text;
        int32_t id; /* the token it takes next */
        float *logits;
        gboolean done;
} Candidate;

/*
 * Texts that begin with @first[0..n), from the end of @s's context, all in
 * one batch per token, each on a fork of the context: its first token,
 * then, while @px (may be NULL) is not covered, the likeliest token that
 * agrees with it, then greedy tokens while @more says the text goes on; at
 * most @max tokens. texts[i]: the text, or NULL where @px was not covered.
 * The session's context is left as it was.
 */
static int expand_in_batch(SlmdWorker *w, SlmdSeq *s, const int32_t *first, guint n, guint max,
                           const Prefix *px,
                           gboolean (*more)(const char *piece, size_t len, GString *sofar),
                           char **texts)
{
        const SlmTokenizer *tk = slm_model_tokenizer(w->model);
        int n_vocab = slm_model_hparams(w->model)->n_vocab;
        int base = (int)s->history->len, r = 0;
        Candidate c[SLMD_STEP_MAX_SEQS] = { { 0 } };
        SlmBatchSeq parts[SLMD_STEP_MAX_SEQS];
        SlmError err = { { 0 } };

        g_assert(n <= SLMD_STEP_MAX_SEQS);
        for (guint i = 0; i < n && r == 0; i++) {
                c[i].text = g_string_new(NULL);
                c[i].id = first[i];
                c[i].logits = g_new(float, n_vocab);
                r = slm_context_new(w->model, w->backend, base + (int)max, w->kv_type, &c[i].ctx,
                                    &err);
                if (r == 0)
                        r = slm_context_fork(c[i].ctx, s->ctx, base);
        }
        for (guint step = 0; step < max && r == 0; step++) {
                guint k = 0;
                for (guint i = 0; i < n; i++) {
                        size_t len;
                        if (c[i].done)
                                continue;
                        const char *piece = slm_tokenizer_piece(tk, c[i].id, FALSE, &len);
                        if (step > 0 &&
                            (!px || prefix_covered(px, c[i].text->str, c[i].text->len)) &&
                            (slm_tokenizer_is_eog(tk, c[i].id) || !more(piece, len, c[i].text))) {
                                c[i].done = TRUE;
                                continue;
                        }
                        g_string_append_len(c[i].text, piece, (gssize)len);
                        if (step + 1 == max) {
                                c[i].done = TRUE;
                                continue;
                        }
                        parts[k++] = (SlmBatchSeq){ c[i].ctx, &c[i].id, 1, c[i].logits };
                }
                if (k == 0)
                        break;
                if ((r = slm_batch_eval(w->batch, parts, (int)k)) < 0)
                        break;
                for (guint i = 0; i < n; i++) {
                        if (c[i].done)
                                continue;
                        if (!px || prefix_covered(px, c[i].text->str, c[i].text->len)) {
                                c[i].id = slm_argmax(c[i].logits, n_vocab);
                        } else {
                                g_autoptr(GArray) next =
                                    top_matching(w, c[i].logits, 1, px, c[i].text);
                                if (next->len == 0)
                                        c[i].done = TRUE;
                                else
                                        c[i].id = g_array_index(next, int32_t, 0);
                        }
                }
        }
        for (guint i = 0; i < n; i++) {
                texts[i] = NULL;
                if (r == 0 && (!px || prefix_covered(px, c[i].text->str, c[i].text->len)))
                        texts[i] = g_string_free(g_steal_pointer(&c[i].text), FALSE);
                if (c[i].text)
                        g_string_free(c[i].text, TRUE);
                g_free(c[i].logits);
                slm_context_free(c[i].ctx);
        }
        return r;
}

/*
 * What @s's kept logits made of candidate @id under @px before: a word found under a prefix
 * that @px extends, and that agrees with @px all through, is the word @id comes to under @px
 * (every token on its way agreed with @px and was the likeliest that agreed with the shorter
 * one, so it is the likeliest that agrees with @px); anything else only under the same
 * prefix. NULL where nothing is known.
 */
static const WordMemo *word_memo_find(const SlmdSeq *s, int32_t id, const Prefix *px)
{
        size_t want = strlen(px->want);

        for (guint i = 0; i < s->words->len; i++) {
                const WordMemo *m = &g_array_index(s->words, WordMemo, i);
                if (m->first != id)
                        continue;
                if (g_ascii_strcasecmp(m->want, px->want) == 0)
                        return m;
                size_t n = strlen(m->want), len = m->text ? strlen(m->text) : 0;
                if (m->text && n < want && g_ascii_strncasecmp(m->want, px->want, n) == 0 &&
                    prefix_allows(px, "", 0, m->text, len) && prefix_covered(px, m->text, len))
                        return m;
        }
        return NULL;
}

/* Remember what @n candidates @ids came to under @px (texts[i], or NULL). */
static void word_memo_add(SlmdSeq *s, const int32_t *ids, char *const *texts, guint n,
                          const Prefix *px)
{
        if (s->words->len + n > MAX_WORD_MEMOS)
                g_array_set_size(s->words, 0);
        for (guint i = 0; i < n; i++) {
                WordMemo m = { ids[i], g_strdup(px->want), g_strdup(texts[i]) };
                g_array_append_val(s->words, m);
        }
}

/* Add the word @text ends in to req->results, unless it is empty, not UTF-8 or there already. */
static void offer_word(SlmdRequest *req, const char *text)
{
        g_autofree char *copy = g_strdup(text);
        const char *word = copy ? first_word(copy) : NULL;

        if (word && *word && req->results->len < req->n && g_utf8_validate(word, -1, NULL) &&
            !contains_word(req->results, word))
                g_ptr_array_add(req->results, g_strdup(word));
}

/*
 * Replies from the current logits: the most likely first tokens, each
 * continued greedily to the end of its line, a batch of them at a time,
 * until req->n distinct, non-empty ones are found.
 */
static int propose_replies(SlmdWorker *w, SlmdRequest *req)
{
        const SlmTokenizer *tk = slm_model_tokenizer(w->model);
        g_autoptr(GArray) top = top_tokens(w, req->n * 4);
        g_autoptr(GArray) cands = g_array_new(FALSE, FALSE, sizeof(int32_t));
        int r = 0;

        for (guint i = 0; i < top->len; i++) {
                int32_t id = g_array_index(top, int32_t, i);
                size_t len;
                if (!slm_tokenizer_is_eog(tk, id) && slm_tokenizer_piece(tk, id, FALSE, &len) &&
                    len > 0)
                        g_array_append_val(cands, id);
        }
        guint room = fork_room(w, req, req->seq->history->len, REPLY_TOKENS, SLMD_STEP_MAX_SEQS);
        if (room == 0)
                return -EDQUOT;
        req->results = g_ptr_array_new_with_free_func(g_free);
        for (guint at = 0; at < cands->len && req->results->len < req->n && r == 0;) {
                char *texts[SLMD_STEP_MAX_SEQS];
                guint k = MIN(cands->len - at, room);
                r = expand_in_batch(w, req->seq, (const int32_t *)cands->data + at, k, REPLY_TOKENS,
                                    NULL, reply_continues, texts);
                for (guint i = 0; i < k; i++) {
                        char *t = texts[i] ? g_strstrip(texts[i]) : NULL;
                        if (t && *t && req->results->len < req->n && g_utf8_validate(t, -1, NULL) &&
                            !contains(req->results, t))
                                g_ptr_array_add(req->results, g_strdup(t));
                        g_free(texts[i]);
                }
                at += k;
        }
        return r;
}

static gboolean step_suggest(SlmdWorker *w, SlmdRequest *req)
{
        SlmdSeq *s = req->seq;
        const SlmTokenizer *tk;
        g_autoptr(GArray) toks = NULL;
        g_autofree char *context = NULL;
        g_autoptr(GString) none = g_string_new(NULL);
        const char *partial;
        gboolean space;
        Prefix px;
        int r;

        if (!ensure_ctx(w, req))
                return TRUE;
        tk = slm_model_tokenizer(w->model);
        context = g_strndup(req->text, split_word(req->text, &partial, &space));
        toks = encode(w, context, SLM_TOKENIZE_ADD_SPECIAL);
        if (toks->len == 0)
                return fail(req, SLMD_ERROR_INVALID_ARGUMENT,
                            "the text is empty and the model has no BOS token");
        /*
         * A long text: keep its end, which is what the next word depends on, at most half the
         * context. Its front is cut a quarter of that at a time, so the cut stays where it was
         * while the user types on and the cached context is reused.
         */
        guint keep = (guint)slm_context_n_ctx(s->ctx) / 2, step = MAX(keep / 4, 1);
        if (toks->len > keep) {
                guint drop = (toks->len - keep + step - 1) / step * step;
                g_array_remove_range(toks, slm_tokenizer_add_bos(tk) ? 1 : 0, drop);
        }
        r = sync_context(w, s, toks, WORD_TOKENS);
        if (r < 0)
                return fail(req, r == -ENOSPC ? SLMD_ERROR_CONTEXT_OVERFLOW : SLMD_ERROR_FAILED,
                            "cannot evaluate the text: %s", g_strerror(-r));

        /* the word at the cursor, which the candidates replace: "gi" -> "girl", "" -> next */
        px.at_start = *context == 0;
        px.want = g_strdup_printf("%s%s", space && !px.at_start ? " " : "", partial);
        g_autoptr(GArray) cands = top_matching(w, w->logits, req->n * 4, &px, none);
        const int32_t *cand = (const int32_t *)cands->data;
        req->results = g_ptr_array_new_with_free_func(g_free);
        /*
         * The likeliest first tokens in order, until n words are found: each from what this
         * context's logits made of it at an earlier keystroke where that still holds, else
         * with the next ones not known yet, room at a time in one batch. Room for the copies
         * is asked for only when one is needed: words all known take no memory, and drop no
         * other session's cache.
         */
        guint room = 0;
        for (guint at = 0; at < cands->len && req->results->len < req->n && r == 0;) {
                const WordMemo *m = word_memo_find(s, cand[at], &px);
                if (m) {
                        if (m->text)
                                offer_word(req, m->text);
                        at++;
                        continue;
                }
                if (room == 0 &&
                    (room = fork_room(w, req, s->history->len, WORD_TOKENS, req->n)) == 0) {
                        g_free(px.want);
                        return TRUE; /* req->error says why */
                }
                int32_t ids[SLMD_STEP_MAX_SEQS];
                char *texts[SLMD_STEP_MAX_SEQS];
                guint k = 0;
                for (guint j = at; j < cands->len && k < room; j++)
                        if (!word_memo_find(s, cand[j], &px))
                                ids[k++] = cand[j];
                r = expand_in_batch(w, s, ids, k, WORD_TOKENS, &px, word_continues, texts);
                if (r == 0)
                        word_memo_add(s, ids, texts, k, &px);
                for (guint i = 0; i < k; i++)
                        g_free(texts[i]);
        }
        g_free(px.want);
        if (r < 0)
                return fail(req, SLMD_ERROR_FAILED, "cannot complete the words: %s",
                            g_strerror(-r));
        req->reason = "done";
        return TRUE;
}

static gboolean step_replies(SlmdWorker *w, SlmdRequest *req)
{
        SlmdSeq *s = req->seq;
        g_autoptr(GArray) toks = NULL;
        SlmError err = { { 0 } };
        SlmArena a;
        int r;

        if (!ensure_ctx(w, req))
                return TRUE;
        /* the message as the user's turn of a new conversation */
        slm_arena_init(&a, 0);
        SlmValue msgs = slm_value_new_list(&a), msg = slm_value_new_dict(&a);
        r = msgs.type == SLM_VALUE_LIST && msg.type == SLM_VALUE_DICT &&
                    slm_dict_set(&a, msg.dict, slm_value_str_static("role", 4),
                                 slm_value_str_static("user", 4)) == 0 &&
                    slm_dict_set(&a, msg.dict, slm_value_str_static("content", 7),
                                 slm_value_str_static(req->text, strlen(req->text))) == 0 &&
                    slm_list_append(&a, msgs.list, msg) == 0
                ? 0
                : -ENOMEM;
        SlmChatInput in = { .messages = msgs, .add_generation_prompt = true };
        if (r == 0)
                r = template_tokens(w, &in, TRUE, &toks, &err);
        slm_arena_clear(&a);
        if (r == -ECANCELED)
                return fail(req, SLMD_ERROR_INVALID_ARGUMENT,
                            "the model's chat template refuses the message: %s", err.msg);
        if (r < 0)
                return fail(req, r == -ENOMEM ? SLMD_ERROR_FAILED : SLMD_ERROR_INVALID_ARGUMENT,
                            "cannot write the message: %s",
                            r == -ENOMEM ? "out of memory" : err.msg);
        if (toks->len == 0)
                return fail(req, SLMD_ERROR_INVALID_ARGUMENT,
                            "the message is empty and the model has no BOS token");
        r = sync_context(w, s, toks, REPLY_TOKENS);
        if (r < 0)
                return fail(req, r == -ENOSPC ? SLMD_ERROR_CONTEXT_OVERFLOW : SLMD_ERROR_FAILED,
                            "cannot evaluate the message: %s", g_strerror(-r));

        r = propose_replies(w, req);
        if (r == -EDQUOT)
                return TRUE; /* req->error says why */
        if (r < 0)
                return fail(req, SLMD_ERROR_FAILED, "cannot write the replies: %s", g_strerror(-r));
        req->reason = "done";
        return TRUE;
}

/* ---- the loop ------------------------------------------------------------------------------ */

static gboolean step(SlmdWorker *w, SlmdRequest *req)
{
        g_autoptr(GError) error = NULL;

        switch (req->kind) {
        case SLMD_REQ_APPEND:
        case SLMD_REQ_GENERATE:
        case SLMD_REQ_CHAT: {
                gboolean done;
                step_texts(w, &req, 1, &done);
                return done;
        }
        case SLMD_REQ_SUGGEST:
                return step_suggest(w, req);
        case SLMD_REQ_REPLIES:
                return step_replies(w, req);
        case SLMD_REQ_RESET:
                if (req->seq->ctx)
                        seq_truncate(req->seq, 0);
                g_array_set_size(req->seq->unevaluated, 0);
                req->reason = "done";
                return TRUE;
        case SLMD_REQ_FREE_SEQ:
                seq_free(w, req->seq);
                req->seq = NULL;
                req->reason = "done";
                return TRUE;
        case SLMD_REQ_LOAD:
                if (load(w, req->model_name, req->text, &error) < 0) {
                        req->error = g_steal_pointer(&error);
                        req->reason = "error";
                } else {
                        req->reason = "done";
                }
                return TRUE;
        case SLMD_REQ_UNLOAD:
                if (w->model) {
                        unload(w);
                        post_model(w);
                }
                req->reason = "done";
                return TRUE;
        case SLMD_REQ_DROP_CACHES:
                req->n = drop_idle_caches(w);
                req->reason = "done";
                return TRUE;
        }
        return TRUE;
}

static gpointer worker_main(gpointer data)
{
        SlmdWorker *w = data;
        /*
         * A context of the thread's own: without it g_main_context_invoke()
         * could acquire the main context from here and run main-loop code
         * on this thread.
         */
        g_autoptr(GMainContext) own = g_main_context_new();

        gboolean trim = FALSE; /* a request ended since the heaps were last trimmed */
        gint64 last_trim = 0;

        g_main_context_push_thread_default(own);
        for (;;) {
                SlmdStep st = { .n = 0 };
                gboolean have = FALSE, done[SLMD_STEP_MAX_SEQS];
                double pace[SLMD_PRIORITY_SYSTEM + 1];

                g_mutex_lock(&w->lock);
                for (;;) {
                        SlmdRequest *in;
                        gint64 wake = G_MAXINT64;
                        while ((in = g_queue_pop_head(&w->incoming)))
                                slmd_scheduler_add(&w->sched, in);
                        w->sched.preempt = w->preempt;
                        have = slmd_scheduler_next(&w->sched, &w->budget, g_get_monotonic_time(),
                                                   &st, &wake);
                        if (have || w->stopping)
                                break;
                        if (trim && g_get_monotonic_time() >= last_trim + G_USEC_PER_SEC) {
                                /*
                                 * Nothing to do: what the last requests freed goes back
                                 * to the system (texts of a MiB leave the allocator's heaps
                                 * full of free pages it would keep), at most once a second:
                                 * a trim takes 0.1 to 2 ms, which a request arriving meanwhile
                                 * waits for.
                                 */
                                trim = FALSE;
                                g_mutex_unlock(&w->lock);
#ifdef __GLIBC__
                                malloc_trim(0);
#endif
                                last_trim = g_get_monotonic_time();
                                g_mutex_lock(&w->lock);
                                continue;
                        }
                        if (trim)
                                wake = MIN(wake, last_trim + G_USEC_PER_SEC);
                        if (wake != G_MAXINT64)
                                g_cond_wait_until(&w->cond, &w->lock, wake);
                        else
                                g_cond_wait(&w->cond, &w->lock);
                }
                int threads = MIN(w->budget.threads, w->max_threads);
                pace[SLMD_PRIORITY_BACKGROUND] = w->budget.background_pace_tps;
                pace[SLMD_PRIORITY_NORMAL] = w->budget.pace_tps;
                pace[SLMD_PRIORITY_INTERACTIVE] = pace[SLMD_PRIORITY_SYSTEM] = 0.0;
                w->step_batch = CLAMP(w->budget.max_batch, 1, PREFILL_CHUNK);
                g_mutex_unlock(&w->lock);
                if (!have)
                        break;
                if (threads >= 1 && threads != w->threads &&
                    slm_backend_set_threads(w->backend, threads) == 0)
                        w->threads = threads;

                if (st.batch && w->batch) {
                        step_texts(w, st.reqs, st.n, done);
                } else {
                        /* alone; a batch before any model is loaded: its first loads it */
                        done[0] = step(w, st.reqs[0]);
                        for (guint i = 1; i < st.n; i++)
                                done[i] = FALSE;
                }
                __atomic_store_n(&w->last_active, g_get_monotonic_time(), __ATOMIC_RELAXED);
                slmd_scheduler_finish(&w->sched, &st, done, pace, g_get_monotonic_time());
                for (guint i = 0; i < st.n; i++) {
                        if (!done[i])
                                continue;
                        trim = TRUE;
                        /* counted down before the event, which looks at slmd_worker_busy() */
                        g_atomic_int_dec_and_test(&w->pending);
                        post(w, st.reqs[i], SLMD_EVENT_DONE, NULL, 0);
                        slmd_request_unref(st.reqs[i]);
                }
        }
        g_main_context_pop_thread_default(own);
        return NULL;
}

SlmdWorker *slmd_worker_new(const char *backend, int n_threads, SlmType kv_type,
                            SlmdModelFunc model_changed, GSourceFunc request_done,
                            gpointer user_data, GError **error)
{
        SlmdWorker *w = g_new0(SlmdWorker, 1);
        int r;

        r = slm_backend_new(backend, n_threads, &w->backend);
        if (r == -ENODEV) { /* "vulkan", or "auto" with SLM_BACKEND=vulkan */
                /* the service keeps working: on the CPU, and says so in its status */
                g_warning("no usable Vulkan device; running on the CPU");
                r = slm_backend_new("cpu", n_threads, &w->backend);
                w->backend_info = g_strdup_printf(
                    "%s (%s; vulkan: no usable device; KV cache %s)", slm_backend_name(w->backend),
                    slm_backend_device_name(w->backend), slm_type_name(kv_type));
        } else if (r == 0) {
                w->backend_info =
                    g_strdup_printf("%s (%s; KV cache %s)", slm_backend_name(w->backend),
                                    slm_backend_device_name(w->backend), slm_type_name(kv_type));
        }
        if (r < 0) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT, "backend '%s': %s",
                            backend,
                            r == -EINVAL ? "unknown (cpu, vulkan or auto)" : g_strerror(-r));
                g_free(w);
                return NULL;
        }
        g_mutex_init(&w->lock);
        g_cond_init(&w->cond);
        w->seqs = g_ptr_array_new();
        w->max_threads = w->threads = n_threads;
        w->kv_type = kv_type;
        w->preempt = TRUE;
        slmd_scheduler_init(&w->sched);
        w->step_batch = PREFILL_CHUNK;
        w->budget = (SlmBudget){ .threads = n_threads,
                                 .max_batch = 64,
                                 .normal_allowed = TRUE,
                                 .background_allowed = TRUE,
                                 .accept_sessions = TRUE };
        w->last_active = g_get_monotonic_time();
        w->main_ctx = g_main_context_ref_thread_default();
        w->model_changed = model_changed;
        w->request_done = request_done;
        w->user_data = user_data;
        w->thread = g_thread_new("slmd-inference", worker_main, w);
        return w;
}

void slmd_worker_free(SlmdWorker *w)
{
        SlmdRequest *r;

        if (!w)
                return;
        g_mutex_lock(&w->lock);
        w->stopping = TRUE;
        g_cond_signal(&w->cond);
        g_mutex_unlock(&w->lock);
        g_thread_join(w->thread);
        /* deliver what the thread posted last, while everything it refers to exists */
        while (g_main_context_iteration(w->main_ctx, FALSE))
                ;
        for (int p = 0; p <= SLMD_PRIORITY_SYSTEM; p++)
                while ((r = g_queue_pop_head(&w->sched.active[p])))
                        slmd_request_unref(r);
        while ((r = g_queue_pop_head(&w->incoming)))
                slmd_request_unref(r);
        slm_batch_free(w->batch);
        slm_chat_free(w->chat);
        slm_token_trie_free(w->trie);
        slm_model_free(w->model);
        slm_backend_free(w->backend);
        g_ptr_array_unref(w->seqs);
        g_free(w->backend_info);
        g_free(w->model_name);
        g_free(w->logits);
        g_free(w->default_name);
        g_free(w->default_path);
        g_main_context_unref(w->main_ctx);
        g_mutex_clear(&w->lock);
        g_cond_clear(&w->cond);
        g_free(w);
}

void slmd_worker_set_default(SlmdWorker *w, const char *name, const char *path)
{
        g_mutex_lock(&w->lock);
        g_free(w->default_name);
        g_free(w->default_path);
        w->default_name = g_strdup(name);
        w->default_path = g_strdup(path);
        g_mutex_unlock(&w->lock);
}

void slmd_worker_submit(SlmdWorker *w, SlmdRequest *req)
{
        g_atomic_int_inc(&w->pending);
        g_mutex_lock(&w->lock);
        g_queue_push_tail(&w->incoming, slmd_request_ref(req));
        g_cond_signal(&w->cond);
        g_mutex_unlock(&w->lock);
}

const char *slmd_worker_backend(SlmdWorker *w)
{
        return w->backend_info;
}

gboolean slmd_worker_busy(SlmdWorker *w)
{
        return g_atomic_int_get(&w->pending) > 0;
}

void slmd_worker_set_budget(SlmdWorker *w, const SlmBudget *b)
{
        g_mutex_lock(&w->lock);
        w->budget = *b;
        g_cond_signal(&w->cond);
        g_mutex_unlock(&w->lock);
}

gint64 slmd_worker_idle_usec(SlmdWorker *w)
{
        if (slmd_worker_busy(w))
                return 0;
        return g_get_monotonic_time() - __atomic_load_n(&w->last_active, __ATOMIC_RELAXED);
}

void slmd_worker_set_user_kv_limit(SlmdWorker *w, guint64 bytes)
{
        g_mutex_lock(&w->lock);
        w->user_kv_limit = bytes;
        g_mutex_unlock(&w->lock);
}

guint64 slmd_worker_kv_estimate(SlmdWorker *w, guint n_ctx_requested)
{
        guint64 bytes = 0;

        g_mutex_lock(&w->lock);
        if (w->n_ctx_train > 0)
                bytes = (guint64)context_for(w->n_ctx_train, n_ctx_requested) * w->kv_pos_bytes;
        g_mutex_unlock(&w->lock);
        return bytes;
}

guint slmd_seq_context_requested(SlmdSeq *s)
{
        return s->n_ctx_requested;
}

void slmd_worker_set_preemption(SlmdWorker *w, gboolean preempt)
{
        g_mutex_lock(&w->lock);
        w->preempt = preempt;
        g_mutex_unlock(&w->lock);
}
