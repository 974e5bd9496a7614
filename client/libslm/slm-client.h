/* SPDX-License-Identifier: MIT */
/*
 * libslm: the C client library of slmd (pkg-config: slm).
 *
 * Every call is synchronous and returns 0 or a negative SlmStatus, with
 * the daemon's message in the SlmClientError when one is given. Streaming
 * calls (generate, chat) deliver text through a callback as it arrives and
 * return when the daemon says the generation finished.
 *
 * A client is used from one thread at a time; slm_session_request_cancel
 * may be called from anywhere, a signal handler included.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
        SLM_STATUS_OK = 0,
        SLM_STATUS_FAILED = -1,
        SLM_STATUS_INVALID_ARGUMENT = -2,
        SLM_STATUS_NO_MODEL = -3,
        SLM_STATUS_INVALID_MODEL = -4,
        SLM_STATUS_BUSY = -5,
        SLM_STATUS_QUOTA_EXCEEDED = -6,
        SLM_STATUS_CONTEXT_OVERFLOW = -7,
        SLM_STATUS_CANCELLED = -8,
        SLM_STATUS_PERMISSION_DENIED = -9,
        SLM_STATUS_THROTTLED = -10,
        SLM_STATUS_NOT_FOUND = -11,
        SLM_STATUS_NO_SERVICE = -12,   /* slmd is not on the bus */
        SLM_STATUS_DISCONNECTED = -13, /* the bus went away */
        SLM_STATUS_IO = -14,           /* a local file could not be read */
        SLM_STATUS_DBUS = -15,         /* any other D-Bus error */
} SlmStatus;

typedef struct {
        SlmStatus status;
        char name[128]; /* the D-Bus error name, when the daemon sent one */
        char message[512];
} SlmClientError;

/* A short name for a status ("busy", "permission-denied", ...). */
const char *slm_status_name(SlmStatus status);

typedef struct SlmClient SlmClient;
typedef struct SlmSession SlmSession;

typedef enum {
        SLM_BUS_SYSTEM,
        SLM_BUS_SESSION,
} SlmBusType;

int slm_client_connect(SlmBusType bus, SlmClient **ret_client, SlmClientError *err);
int slm_client_connect_address(const char *address, SlmClient **ret_client, SlmClientError *err);
void slm_client_free(SlmClient *client);

typedef struct {
        char *version;
        char *active_model;
        char *default_model;
        char *backend;
        char *state;
        uint32_t sessions;
        /* the budget in force (see the Budget property) */
        char *thermal;       /* "cool", "hot" or "critical" */
        char *budget_reason; /* "cool", or each constraint in force */
        int32_t budget_threads;
        bool background_refused;
} SlmDaemonStatus;

int slm_client_status(SlmClient *c, SlmDaemonStatus *ret_status, SlmClientError *err);
void slm_daemon_status_clear(SlmDaemonStatus *s);

typedef struct {
        char *name;
        char *architecture;
        char *quantization;
        char *sha256;
        uint64_t size;
        uint64_t parameters;
        bool is_default;
        bool loaded;
} SlmModelInfo;

int slm_client_list_models(SlmClient *c, SlmModelInfo **ret_models, size_t *ret_n,
                           SlmClientError *err);
void slm_model_info_free(SlmModelInfo *models, size_t n);

/* Called while an import runs: bytes the daemon has read so far, of @total. */
typedef void (*SlmProgressFunc)(uint64_t done, uint64_t total, void *user_data);

/*
 * Import the GGUF file at @path: it is opened here and its descriptor is
 * passed, so the daemon needs no access to the caller's files. @name may
 * be NULL to derive it from the file. *ret_name (may be NULL) gets the
 * stored name; free it.
 */
int slm_client_import(SlmClient *c, const char *path, const char *name, SlmProgressFunc progress,
                      void *user_data, char **ret_name, SlmClientError *err);
/*
 * The same, and the daemon refuses the file unless its SHA-256 is @sha256
 * (64 hex digits; NULL: no check), with SLM_STATUS_INVALID_MODEL.
 */
int slm_client_import_verified(SlmClient *c, const char *path, const char *name, const char *sha256,
                               SlmProgressFunc progress, void *user_data, char **ret_name,
                               SlmClientError *err);
/*
 * What the daemon runs: general.architecture values and weight tensor type
 * names, NULL-terminated; free each with slm_strv_free.
 */
int slm_client_capabilities(SlmClient *c, char ***ret_architectures, char ***ret_weight_types,
                            SlmClientError *err);
int slm_client_remove(SlmClient *c, const char *name, bool force, SlmClientError *err);
/* @name NULL or empty: the default model. */
int slm_client_load(SlmClient *c, const char *name, SlmClientError *err);
int slm_client_unload(SlmClient *c, SlmClientError *err);
int slm_client_set_default(SlmClient *c, const char *name, SlmClientError *err);

typedef struct {
        const char *system_prompt; /* NULL: none */
        const char *priority;      /* NULL: "normal" */
        uint32_t context_size;     /* 0: the daemon's default */
} SlmSessionOptions;

int slm_client_create_session(SlmClient *c, const SlmSessionOptions *opts, SlmSession **ret_session,
                              SlmClientError *err);
/* Close the session on the daemon and free it. */
void slm_session_free(SlmSession *s);
const char *slm_session_path(const SlmSession *s);

typedef struct {
        uint32_t max_tokens;   /* 0: the daemon's default */
        double temperature;    /* < 0: the daemon's default; 0 greedy */
        uint32_t top_k;        /* 0: default */
        double top_p;          /* 0: default */
        double min_p;          /* < 0: default */
        double repeat_penalty; /* 0: default */
        bool has_seed;
        uint64_t seed;
        const char *const *stop; /* NULL-terminated, or NULL */
        const char *tools;       /* chats: a JSON array of function definitions, or NULL */
        const char *json_schema; /* the text must be JSON this schema accepts, or NULL */
        const char *grammar;     /* the text must be a sentence of this GBNF grammar, or NULL */
        const char *tool_choice; /* with tools: auto (NULL), none, required, or a function's name */
} SlmGenerateOptions;

/* Defaults everywhere. */
void slm_generate_options_init(SlmGenerateOptions *o);

typedef struct {
        char reason[32]; /* length, stop, cancelled, context, unloaded, error */
        uint32_t tokens;
        uint32_t prompt_tokens;
        double prompt_ms;
        double decode_ms;
        double tokens_per_second;
        char message[256]; /* for reason "error" */
        char *tool_calls;  /* chats with tools: the calls made, a JSON array; NULL: none */
} SlmFinish;

/* Free what a SlmFinish holds (its tool calls); it may be reused after. */
void slm_finish_clear(SlmFinish *f);

/* Text as it arrives; return false to cancel the generation. */
typedef bool (*SlmTokenFunc)(const char *text, void *user_data);

int slm_session_generate(SlmSession *s, const char *prompt, const SlmGenerateOptions *opts,
                         SlmTokenFunc on_token, void *user_data, SlmFinish *ret_finish,
                         SlmClientError *err);

typedef struct {
        const char *role; /* system, user, assistant */
        const char *content;
} SlmChatTurn;

int slm_session_chat(SlmSession *s, const SlmChatTurn *turns, size_t n,
                     const SlmGenerateOptions *opts, SlmTokenFunc on_token, void *user_data,
                     SlmFinish *ret_finish, SlmClientError *err);

/* A turn of a whole conversation, as ChatMessages takes it. */
typedef struct {
        const char *role;         /* system, user, assistant, tool, ... */
        const char *content;      /* NULL: none */
        const char *tool_calls;   /* a JSON array of the assistant's calls, or NULL */
        const char *tool_call_id; /* a tool's answer: the call it answers, or NULL */
} SlmMessage;

/*
 * Generate the assistant's next turn of the whole conversation @msgs, written
 * by the model's own chat template; the session's context is reused as far
 * as it agrees with the conversation.
 */
int slm_session_chat_messages(SlmSession *s, const SlmMessage *msgs, size_t n,
                              const SlmGenerateOptions *opts, SlmTokenFunc on_token,
                              void *user_data, SlmFinish *ret_finish, SlmClientError *err);

int slm_session_append(SlmSession *s, const char *text, SlmClientError *err);
int slm_session_reset(SlmSession *s, SlmClientError *err);

/* NULL-terminated arrays; free with slm_strv_free. */
int slm_session_suggest(SlmSession *s, const char *text, uint32_t n, char ***ret_words,
                        SlmClientError *err);
int slm_session_smart_replies(SlmSession *s, const char *message, uint32_t n, char ***ret_replies,
                              SlmClientError *err);
void slm_strv_free(char **v);

/* Ask the running generation to stop (async-signal-safe: it sets a flag). */
void slm_session_request_cancel(SlmSession *s);

#ifdef __cplusplus
}
#endif
