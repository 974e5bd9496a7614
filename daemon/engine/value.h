/* SPDX-License-Identifier: MIT */
/*
 * Dynamic values as JSON and Python know them (none, booleans, integers,
 * floats, strings, lists, dictionaries that keep their insertion order),
 * allocated from an arena that is freed in one go. The chat templates, the
 * conversations they render and the JSON schemas of structured output all
 * live in these.
 *
 * An arena has a byte limit: data from a client or a template cannot grow
 * without bound, and every allocation may fail with NULL.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SlmArenaChunk SlmArenaChunk;

typedef struct {
        SlmArenaChunk *head;
        size_t used;  /* bytes handed out, over all chunks */
        size_t limit; /* 0: no limit */
} SlmArena;

void slm_arena_init(SlmArena *a, size_t limit);
void slm_arena_clear(SlmArena *a);
/* @size bytes aligned for any value, or NULL when out of memory or over the limit. */
void *slm_arena_alloc(SlmArena *a, size_t size);
/* A NUL-terminated copy of @len bytes at @s, or NULL. */
char *slm_arena_strndup(SlmArena *a, const char *s, size_t len);

typedef enum {
        SLM_VALUE_UNDEFINED, /* a name or key that does not exist */
        SLM_VALUE_NONE,
        SLM_VALUE_BOOL,
        SLM_VALUE_INT,
        SLM_VALUE_FLOAT,
        SLM_VALUE_STRING,
        SLM_VALUE_LIST,
        SLM_VALUE_DICT,
        SLM_VALUE_OBJECT, /* opaque to this module: the template engine's macros and such */
} SlmValueType;

#define SLM_VALUE_TUPLE 0x1 /* flag on a list: shown as (a, b) */

typedef struct SlmList SlmList;
typedef struct SlmDict SlmDict;

typedef struct {
        uint8_t type;  /* SlmValueType */
        uint8_t flags; /* SLM_VALUE_TUPLE */
        uint16_t kind; /* SLM_VALUE_OBJECT: what the object is, for its owner */
        uint32_t len;  /* SLM_VALUE_STRING: bytes, without the NUL */
        union {
                bool b;
                int64_t i;
                double f;
                const char *s; /* UTF-8, NUL-terminated */
                SlmList *list;
                SlmDict *dict;
                void *obj;
        };
} SlmValue;

struct SlmList {
        SlmValue *v;
        size_t n, cap;
};

typedef struct {
        SlmValue key, value;
} SlmDictEntry;

struct SlmDict {
        SlmDictEntry *e;
        size_t n, cap;
        uint32_t *index; /* hash slots holding entry number + 1, once the dict is large */
        size_t n_index;  /* a power of two, or 0 */
};

SlmValue slm_value_undefined(void);
SlmValue slm_value_none(void);
SlmValue slm_value_bool(bool b);
SlmValue slm_value_int(int64_t i);
SlmValue slm_value_float(double f);
/* A string borrowed from @s, which must be NUL-terminated at @len and outlive the value. */
SlmValue slm_value_str_static(const char *s, size_t len);

/* Copies into the arena; the value's type is UNDEFINED when out of memory. */
SlmValue slm_value_str(SlmArena *a, const char *s, size_t len);
SlmValue slm_value_new_list(SlmArena *a);
SlmValue slm_value_new_dict(SlmArena *a);

int slm_list_append(SlmArena *a, SlmList *l, SlmValue v);
/* Set @key (replacing an existing entry's value in place, as Python does). */
int slm_dict_set(SlmArena *a, SlmDict *d, SlmValue key, SlmValue v);
/* The value for @key, or NULL. */
SlmValue *slm_dict_get(const SlmDict *d, SlmValue key);
SlmValue *slm_dict_get_str(const SlmDict *d, const char *key);

/* Python's truth and ==: 1 == 1.0 == True, lists and dicts compared deeply. */
bool slm_value_truthy(SlmValue v);
bool slm_value_equal(SlmValue a, SlmValue b);
const char *slm_value_type_name(SlmValue v);

/* A growing output buffer; @limit (0: none) caps its length, past which it fails. */
typedef struct {
        char *s; /* NUL-terminated, malloc'ed */
        size_t n, cap, limit;
        bool failed; /* out of memory or over the limit; later writes do nothing */
} SlmBuf;

void slm_buf_put(SlmBuf *b, const char *s, size_t len);
void slm_buf_puts(SlmBuf *b, const char *s);
void slm_buf_printf(SlmBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void slm_buf_free(SlmBuf *b);
/*
 * Write @n bytes of @s, each byte for which @escape returns a string (it
 * may build one in @tmp) replaced by it, the others as they are.
 */
void slm_buf_put_escaped(SlmBuf *b, const char *s, size_t n,
                         const char *(*escape)(unsigned char c, char tmp[8], void *data),
                         void *data);

/*
 * Parse JSON text into values in @a: objects keep their key order (a repeated
 * key keeps its last value, as Python does), integers that fit stay integers,
 * NaN and Infinity read as Python reads them.
 * Nesting is bounded. -EINVAL with the place in @err for bad text, -ENOMEM.
 */
int slm_json_parse(SlmArena *a, const char *text, size_t len, SlmValue *ret, SlmError *err);

/*
 * Write @v as Python's json.dumps(v, ensure_ascii=False) does: ", " and ": "
 * between items, or with @indent > 0 one item per line. -EINVAL when @v holds
 * something JSON has no form for (undefined, an object).
 */
int slm_json_write(SlmBuf *b, SlmValue v, int indent);
/* The same with "," and ":" and no spaces. */
int slm_json_write_compact(SlmBuf *b, SlmValue v);

/* Python's str(): strings as they are, None/True/False, lists and dicts as repr() shows them. */
void slm_value_write_str(SlmBuf *b, SlmValue v);
/* Python's repr(). */
void slm_value_write_repr(SlmBuf *b, SlmValue v);

#ifdef __cplusplus
}
#endif
