/* SPDX-License-Identifier: MIT */
/* slmctl's parts: output helpers (slmctl.c), pull.c, ollama.c, discover.c, gguf-scan.c. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "slm-client.h"

/* ---- slmctl.c ------------------------------------------------------------------------------ */

extern bool json; /* --json: one JSON value per command (per line in pull) */
extern volatile sig_atomic_t interrupted; /* Ctrl-C was pressed */

void json_string(const char *s);
/* Print @err (as JSON with --json) and return the exit status for it. */
int fail(const SlmClientError *err);
/* Print a message of slmctl's own, the same way, and return 1. */
int fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void human_size(uint64_t bytes, char *out, size_t n);
/* A store name from @s: characters outside [A-Za-z0-9._-] become '-', at most 64, no leading dot.
 */
void store_name_from(const char *s, char *out, size_t n);
/*
 * Import @path (expecting @sha256 unless NULL) with a progress bar and print the result, naming
 * the file @what (NULL: its path). Returns the exit status; *ret_status (may be NULL) the call's.
 */
int import_file(SlmClient *c, const char *path, const char *name, const char *sha256,
                const char *what, SlmStatus *ret_status);

/* ---- pull.c -------------------------------------------------------------------------------- */

/* slmctl pull SOURCE [--name NAME]: download into the user's cache, verify, import. */
int cmd_pull(SlmClient *c, const char *source, const char *name);

/* ---- ollama.c ------------------------------------------------------------------------------ */

/*
 * The model layer of an Ollama manifest (JSON text): its digest as 64
 * lower-case hex digits into @hex (65 bytes) and its size. 0, or -1 with
 * the reason in @why.
 */
int ollama_model_layer(const char *manifest, size_t len, char *hex, uint64_t *ret_size, char *why,
                       size_t why_len);
/* NAME[:TAG] into the repository path ("library/NAME" or "NS/NAME") and the tag; -1 if invalid. */
int ollama_parse_name(const char *spec, char *repo, size_t repo_len, char *tag, size_t tag_len);
/* Ollama's own store: $OLLAMA_MODELS, ~/.ollama/models or /usr/share/ollama/.ollama/models. */
const char *ollama_store_dir(void);
/* slmctl import --from-ollama NAME[:TAG] [--name NAME] */
int cmd_import_ollama(SlmClient *c, const char *spec, const char *name);

/* ---- discover.c ---------------------------------------------------------------------------- */

int cmd_discover(SlmClient *c);

/* ---- gguf-scan.c --------------------------------------------------------------------------- */

#define GGUF_MAX_TYPES 40

typedef struct {
        char architecture[64];
        char name[128];
        int64_t file_type;   /* general.file_type, -1 when absent */
        int64_t split_count; /* split.count, 0 when absent */
        uint64_t size;
        uint64_t n_tensors;
        uint64_t type_elements[GGUF_MAX_TYPES]; /* weights of matrices, per tensor type */
        bool has_type[GGUF_MAX_TYPES];
        const char *problem; /* why the header could not be read to its end, or NULL */
} GgufFacts;

/* Read @path's header; a negative errno when it cannot be opened. */
int gguf_scan(const char *path, GgufFacts *out);
const char *gguf_type_name(uint32_t type);
/* The file type's name, or the most common matrix type's. */
const char *gguf_quantization(const GgufFacts *g);
