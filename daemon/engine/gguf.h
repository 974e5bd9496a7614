/* SPDX-License-Identifier: MIT */
/*
 * GGUF reader.
 *
 * A GGUF file is little-endian and laid out as:
 *
 *   u32 magic            "GGUF" (0x46554747)
 *   u32 version          2 or 3 (version 1 used 32-bit counts and is refused)
 *   u64 n_tensors
 *   u64 n_kv
 *   n_kv × key/value     key: string; u32 value type; value
 *   n_tensors × info     name: string; u32 n_dims (1..4); u64 dims[n_dims]
 *                        (dims[0] is the contiguous one); u32 tensor type;
 *                        u64 offset, relative to the data section
 *   padding              to `general.alignment` (u32, power of two, default 32)
 *   data section         each tensor at its offset, offsets multiples of the
 *                        alignment
 *
 * A string is a u64 byte length and that many bytes (UTF-8, no NUL).
 * Value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (one
 * byte, 0 or 1), 8 string, 9 array (u32 element type, u64 count, the
 * elements; arrays may nest), 10 u64, 11 i64, 12 f64.
 *
 * The file is mapped read-only once and everything points into the map.
 * Every count, length, offset and dimension is checked against the mapped
 * size before it is used; a malformed file gives a negative errno and a
 * message naming the problem.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_GGUF_MAGIC         0x46554747u
#define SLM_GGUF_MAX_DIMS      4
#define SLM_GGUF_DEFAULT_ALIGN 32
#define SLM_GGUF_MAX_DEPTH     4 /* arrays nested deeper than this are refused */

typedef enum {
        SLM_GGUF_U8 = 0,
        SLM_GGUF_I8 = 1,
        SLM_GGUF_U16 = 2,
        SLM_GGUF_I16 = 3,
        SLM_GGUF_U32 = 4,
        SLM_GGUF_I32 = 5,
        SLM_GGUF_F32 = 6,
        SLM_GGUF_BOOL = 7,
        SLM_GGUF_STRING = 8,
        SLM_GGUF_ARRAY = 9,
        SLM_GGUF_U64 = 10,
        SLM_GGUF_I64 = 11,
        SLM_GGUF_F64 = 12,
        SLM_GGUF_TYPE_COUNT
} SlmGgufType;

/* A string inside the map: not NUL-terminated. */
typedef struct {
        const char *ptr;
        uint64_t len;
} SlmGgufStr;

typedef struct SlmGgufValue SlmGgufValue;
struct SlmGgufValue {
        SlmGgufType type;
        union {
                uint64_t u; /* u8, u16, u32, u64, bool */
                int64_t i;  /* i8, i16, i32, i64 */
                double f;   /* f32, f64 */
                SlmGgufStr str;
                struct {
                        SlmGgufType type;
                        uint64_t n;
                        const uint8_t *data; /* scalars: n packed elements in the map */
                        SlmGgufStr *strs;    /* strings: n entries */
                        SlmGgufValue *items; /* arrays: n nested arrays */
                } arr;
        };
};

typedef struct {
        SlmGgufStr key;
        SlmGgufValue value;
} SlmGgufKv;

typedef struct {
        SlmGgufStr name;
        uint32_t n_dims;
        uint64_t ne[SLM_GGUF_MAX_DIMS]; /* unused dims are 1 */
        uint32_t type;                  /* SlmType */
        uint64_t offset;                /* within the data section */
        uint64_t n_elements;
        uint64_t n_bytes;
        const void *data; /* into the map */
} SlmGgufTensor;

typedef struct {
        bool owns_map; /* mapped by the reader (unmapped on free), not a caller's buffer */
        const uint8_t *map;
        uint8_t *anon; /* the tensor data copied to anonymous memory, or NULL */
        size_t anon_size;
        size_t map_size;
        uint32_t version;
        uint32_t alignment;
        uint64_t data_offset;
        uint64_t n_kv;
        SlmGgufKv *kv;
        uint64_t n_tensors;
        SlmGgufTensor *tensors;
} SlmGguf;

/* Map and parse the file at @path. */
int slm_gguf_open(const char *path, SlmGguf **ret_gguf, SlmError *err);

/* Map and parse an open file descriptor (the caller keeps its own @fd). */
int slm_gguf_open_fd(int fd, SlmGguf **ret_gguf, SlmError *err);

/* Parse a buffer the caller keeps alive for the reader's lifetime (fuzzing, tests). */
int slm_gguf_open_buffer(const void *buf, size_t size, SlmGguf **ret_gguf, SlmError *err);

/*
 * Copy the data section into anonymous memory backed by transparent huge
 * pages where the kernel has them, pre-faulted, and point every tensor at
 * the copy. Reading weights through 4 KiB page-cache mappings can be
 * page-walk bound; this trades a copy at load time for that.
 */
int slm_gguf_copy_to_anon(SlmGguf *g, SlmError *err);

/* Unmap and free; takes NULL, returns NULL. */
SlmGguf *slm_gguf_free(SlmGguf *g);

/* Lookups by key or name; NULL when absent. */
const SlmGgufValue *slm_gguf_get(const SlmGguf *g, const char *key);
const SlmGgufTensor *slm_gguf_tensor(const SlmGguf *g, const char *name);

/* Whether a map string equals a C string. */
bool slm_gguf_str_eq(SlmGgufStr s, const char *c);

/*
 * Typed getters. Integers accept any integer type whose value fits;
 * floats accept f32/f64. They return -ENOENT when absent, -EINVAL on a
 * type mismatch or a value out of range, and leave *ret untouched then.
 */
int slm_gguf_get_u32(const SlmGguf *g, const char *key, uint32_t *ret);
int slm_gguf_get_f32(const SlmGguf *g, const char *key, float *ret);
int slm_gguf_get_bool(const SlmGguf *g, const char *key, bool *ret);
int slm_gguf_get_str(const SlmGguf *g, const char *key, SlmGgufStr *ret);
/* An array of @type: *ret_arr points at the value. */
int slm_gguf_get_arr(const SlmGguf *g, const char *key, SlmGgufType type,
                     const SlmGgufValue **ret_arr);

/* Element @i of a scalar array, converted. */
float slm_gguf_arr_f32(const SlmGgufValue *arr, uint64_t i);
int64_t slm_gguf_arr_i64(const SlmGgufValue *arr, uint64_t i);

/* Size in bytes of a scalar value type, 0 for string/array/unknown. */
size_t slm_gguf_type_size(uint32_t type);

#ifdef __cplusplus
}
#endif
