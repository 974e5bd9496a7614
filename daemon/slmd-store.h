/* SPDX-License-Identifier: MIT */
/*
 * The model store under the state directory:
 *
 *   STATE/models/NAME.gguf   the model, as imported
 *   STATE/models/NAME.ini    its record: size, architecture, quantization,
 *                            parameters, sha256; written last, so a model
 *                            without a record was never committed
 *   STATE/default            the default model's name
 *
 * Imports are staged in STATE/models/.import-XXXXXX, fsync'ed and renamed
 * into place; leftovers of interrupted imports are removed at start-up.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
        char *name;
        char *path;
        char *architecture;
        char *quantization;
        char *sha256;
        guint64 size;
        guint64 parameters;
} SlmdModelInfo;

typedef struct SlmdStore SlmdStore;

/* A validated copy of a model waiting to be committed under a name. */
typedef struct SlmdStaged SlmdStaged;

SlmdStore *slmd_store_new(const char *state_dir, GError **error);
void slmd_store_free(SlmdStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SlmdStore, slmd_store_free)

/* The models, sorted by name (the array and its entries belong to the store). */
GPtrArray *slmd_store_list(SlmdStore *store);
const SlmdModelInfo *slmd_store_get(SlmdStore *store, const char *name);
/* The default model's name, or NULL. */
const char *slmd_store_get_default(SlmdStore *store);
gboolean slmd_store_set_default(SlmdStore *store, const char *name, GError **error);
gboolean slmd_store_remove(SlmdStore *store, const char *name, GError **error);

/* 1 to 64 of [A-Za-z0-9._-], not starting with a dot. */
gboolean slmd_model_name_is_valid(const char *name);

/*
 * Copy @fd (read from its current offset to the end, at most @max_bytes)
 * into a staging file, computing its SHA-256, then validate it as a model
 * the engine can load. Thread-safe: touches no store state. @name may be
 * empty to derive it from the file. @sha256 (lower-case hex) may be NULL;
 * when given, a file with another digest is refused before validation.
 */
SlmdStaged *slmd_store_stage(SlmdStore *store, int fd, const char *name, const char *sha256,
                             guint64 max_bytes, GCancellable *cancellable, GError **error);
void slmd_staged_free(SlmdStaged *staged);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SlmdStaged, slmd_staged_free)

/* Commit a staged model (main thread); returns its record. */
const SlmdModelInfo *slmd_store_commit(SlmdStore *store, SlmdStaged *staged, GError **error);

G_END_DECLS
