/* SPDX-License-Identifier: MIT */
/*
 * GGUF writer (version 3, the layout described in gguf.h). Metadata and
 * tensor descriptions are collected first; then the file is written in
 * one pass, each tensor's bytes produced row by row by a callback, so a
 * model of several GiB never has to be in memory.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "slm-types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SlmGgufWriter SlmGgufWriter;

int slm_gguf_writer_new(SlmGgufWriter **ret_writer);
SlmGgufWriter *slm_gguf_writer_free(SlmGgufWriter *w);

/* Metadata; keys and strings are copied. */
int slm_gguf_writer_add_u32(SlmGgufWriter *w, const char *key, uint32_t v);
int slm_gguf_writer_add_f32(SlmGgufWriter *w, const char *key, float v);
int slm_gguf_writer_add_bool(SlmGgufWriter *w, const char *key, bool v);
int slm_gguf_writer_add_str(SlmGgufWriter *w, const char *key, const char *v);
int slm_gguf_writer_add_str_array(SlmGgufWriter *w, const char *key, const char *const *v,
                                  size_t n);
int slm_gguf_writer_add_f32_array(SlmGgufWriter *w, const char *key, const float *v, size_t n);
int slm_gguf_writer_add_i32_array(SlmGgufWriter *w, const char *key, const int32_t *v, size_t n);

/* Fill @row (the bytes of row @index of the tensor) and return 0, or a negative errno. */
typedef int (*SlmRowFunc)(void *user_data, const char *tensor, uint64_t index, void *row);

/* A tensor of @n_dims dims (ne[0] contiguous) of @type; its rows come from @fill. */
int slm_gguf_writer_add_tensor(SlmGgufWriter *w, const char *name, SlmType type, const uint64_t *ne,
                               uint32_t n_dims, SlmRowFunc fill, void *user_data);

/* Write everything to @path (through a temporary file renamed into place). */
int slm_gguf_writer_write(SlmGgufWriter *w, const char *path, SlmError *err);

#ifdef __cplusplus
}
#endif
