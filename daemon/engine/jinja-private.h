/* SPDX-License-Identifier: MIT */
/* The template engine's insides: the syntax tree the parser builds and the renderer walks. */
#pragma once

#include "jinja.h"

typedef enum {
        /* expressions */
        N_CONST,   /* value */
        N_NAME,    /* name */
        N_LIST,    /* items */
        N_TUPLE,   /* items */
        N_DICT,    /* items: key, value, key, value, ... */
        N_ATTR,    /* a.name */
        N_ITEM,    /* a[b] */
        N_SLICE,   /* a[items[0]:items[1]:items[2]], each may be NULL */
        N_CALL,    /* a(items, kw) */
        N_FILTER,  /* a | name(items, kw); a is NULL in a filter block */
        N_TEST,    /* a is name(items); op: negated */
        N_NEG,     /* -a */
        N_POS,     /* +a */
        N_NOT,     /* not a */
        N_AND,     /* a and b */
        N_OR,      /* a or b */
        N_BINARY,  /* a op b: + - * / // % ** ~ */
        N_COMPARE, /* a op b: == != < <= > >= in, not in */
        N_COND,    /* b if a else c; c may be NULL */
        /* statements */
        N_TEXT,         /* value */
        N_OUTPUT,       /* {{ a }} */
        N_IF,           /* if a: body else: orelse */
        N_FOR,          /* for targets in a if b: body else: orelse */
        N_SET,          /* set targets (or a.name) = b */
        N_SET_BLOCK,    /* set name | filters: body */
        N_MACRO,        /* macro name(params = defaults): body */
        N_CALL_BLOCK,   /* call(params) a: body */
        N_FILTER_BLOCK, /* filter b: body (b a filter chain over NULL) */
        N_WITH,         /* with targets = items: body */
        N_BREAK,
        N_CONTINUE,
        N_BLOCK, /* body, as it is (generation blocks) */
} NodeKind;

typedef enum {
        OP_ADD,
        OP_SUB,
        OP_MUL,
        OP_DIV,
        OP_FLOORDIV,
        OP_MOD,
        OP_POW,
        OP_CONCAT,
        OP_EQ,
        OP_NE,
        OP_LT,
        OP_LE,
        OP_GT,
        OP_GE,
        OP_IN,
        OP_NOT_IN,
} NodeOp;

typedef struct Node Node;

typedef struct {
        Node **v;
        size_t n, cap;
} NodeList;

struct Node {
        uint8_t kind; /* NodeKind */
        uint8_t op;   /* NodeOp, or the negation of a test */
        uint32_t line;
        SlmValue value;   /* N_CONST, N_TEXT */
        const char *name; /* names, attributes, filters, tests, macros; NUL-terminated */
        Node *a, *b, *c;
        NodeList items; /* elements, positional arguments */
        NodeList kw;    /* keyword arguments: N_CONST-free pairs as N_NAME(name) with .a = value */
        NodeList
            targets; /* assignment targets (N_NAME) and macro parameters (N_NAME, .a = default) */
        NodeList body, orelse;
};

struct SlmJinja {
        SlmArena arena;
        NodeList body;
};

/* The renderer's state, shared with the built-in filters, tests and methods. */
typedef struct Render Render;

/* An error while rendering: fill @err with the message, return -EINVAL. */
int slm_jinja_fail(Render *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
SlmArena *slm_jinja_arena(Render *r);
/* Call a callable value (macro, builtin, bound method) with the given arguments. */
int slm_jinja_call_value(Render *r, SlmValue fn, SlmValue *args, size_t n_args,
                         const char **kw_names, SlmValue *kw_vals, size_t n_kw, SlmValue *ret);

/* Objects the renderer makes (SlmValue.kind for SLM_VALUE_OBJECT) */
enum {
        OBJ_MACRO = 1,
        OBJ_NAMESPACE, /* obj: SlmDict* */
        OBJ_BUILTIN,   /* obj: const Builtin* */
        OBJ_METHOD,    /* obj: Method* */
        OBJ_LOOP,      /* obj: Loop* */
};

typedef struct {
        const char *const *kw_names;
        const SlmValue *kw_vals;
        size_t n_kw;
} Kwargs;

/* A keyword argument by name, else the @pos'th positional one, else NULL. */
const SlmValue *slm_jinja_arg(const SlmValue *args, size_t n_args, const Kwargs *kw, size_t pos,
                              const char *name);

/* Built-ins (jinja-builtins.c) */
int slm_jinja_filter(Render *r, const char *name, SlmValue v, SlmValue *args, size_t n_args,
                     const Kwargs *kw, SlmValue *ret);
bool slm_jinja_has_filter(const char *name);
int slm_jinja_test(Render *r, const char *name, SlmValue v, SlmValue *args, size_t n_args,
                   bool *ret);
bool slm_jinja_has_test(const char *name);
/* obj.name for values that are not dicts' items: string and dict methods; *ret undefined if none.
 */
int slm_jinja_method(Render *r, SlmValue self, const char *name, SlmValue *ret);
int slm_jinja_call_method(Render *r, SlmValue method, SlmValue *args, size_t n_args,
                          const Kwargs *kw, SlmValue *ret);
/* The global functions: raise_exception, strftime_now, namespace, range, dict. */
bool slm_jinja_global(const char *name, SlmValue *ret);
int slm_jinja_call_builtin(Render *r, SlmValue fn, SlmValue *args, size_t n_args, const Kwargs *kw,
                           SlmValue *ret);

/* The items a for loop walks: a list, a dict's keys, a string's characters; undefined: none. */
int slm_jinja_iterate(Render *r, SlmValue v, SlmList **ret);
/* Python's ordering of numbers, strings and lists: *ret < 0, 0, > 0; -EINVAL for other types. */
int slm_jinja_compare(Render *r, SlmValue a, SlmValue b, int *ret);
/* obj.name as a template writes it (dict item first, then methods). */
int slm_jinja_getattr(Render *r, SlmValue obj, const char *name, SlmValue *ret);
/* str(v) as a string value in the render's arena. */
int slm_jinja_to_string(Render *r, SlmValue v, SlmValue *ret);
/* The output limit, for built-ins that build strings. */
size_t slm_jinja_max_output(Render *r);
/* Out of the render's memory: the error to return. */
int slm_jinja_oom(Render *r);
/* A string value from a buffer (checks the buffer's limit), which is freed. */
int slm_jinja_buf_value(Render *r, SlmBuf *b, SlmValue *ret);
/* The render's strftime_now time and whether it is UTC. */
void slm_jinja_now(Render *r, int64_t *ret_now, bool *ret_utc);
/* A limit reached: -E2BIG with @what as the message. */
int slm_jinja_too_big(Render *r, const char *what);
/* Raise: the template refused with @msg. */
int slm_jinja_raise(Render *r, SlmValue msg);

/* Strings by code point, as Python counts them */
size_t slm_jinja_utf8_count(const char *s, size_t n);
/* Byte offset of code point @index (clamped to the end). */
size_t slm_jinja_utf8_offset(const char *s, size_t n, size_t index);
