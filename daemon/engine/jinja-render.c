/* SPDX-License-Identifier: MIT */
/*
 * The syntax tree walked with Python's semantics, the way Jinja2 runs a
 * template: scopes per loop iteration and per macro call ("set" inside a
 * loop does not leak out of it; namespace() objects carry values out),
 * Undefined for missing names, attributes and items (printed as nothing,
 * false, iterable as empty, an error when used as a value).
 */
#include "jinja-private.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

#define MAX_CALL_DEPTH     64
#define DEFAULT_MAX_OUTPUT (4u << 20)
#define DEFAULT_MAX_MEMORY (64u << 20)
#define DEFAULT_MAX_STEPS  10000000u

enum { FLOW_BREAK = 1, FLOW_CONTINUE = 2 };

typedef struct {
        const char *name;
        SlmValue v;
} Var;

typedef struct Frame Frame;
struct Frame {
        Frame *parent;
        Var *v;
        size_t n, cap;
};

typedef struct {
        const Node *def; /* N_MACRO, or the N_CALL_BLOCK a caller() comes from */
        Frame *scope;    /* where it was defined */
} Macro;

typedef struct {
        SlmList *items;
        size_t i;
} Loop;

struct Render {
        SlmArena *a;
        SlmBuf *out;
        Frame *root;
        SlmError *err;
        const SlmJinjaOptions *opts;
        int depth;
        uint64_t steps;
};

int slm_jinja_fail(Render *r, const char *fmt, ...)
{
        char msg[200];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return slm_error_set(r->err, -EINVAL, "%s", msg);
}

SlmArena *slm_jinja_arena(Render *r)
{
        return r->a;
}

static int oom(Render *r)
{
        return slm_error_set(r->err, -E2BIG, "template used more memory than allowed");
}

static int undefined_error(Render *r, SlmValue v)
{
        if (v.s)
                return slm_jinja_fail(r, "'%s' is undefined", v.s);
        return slm_jinja_fail(r, "an undefined value was used");
}

static SlmValue undefined_named(const char *name)
{
        SlmValue v = slm_value_undefined();
        v.s = name;
        return v;
}

static Frame *frame_new(Render *r, Frame *parent)
{
        Frame *f = slm_arena_alloc(r->a, sizeof(*f));

        if (f)
                *f = (Frame){ .parent = parent };
        return f;
}

static int frame_set(Render *r, Frame *f, const char *name, SlmValue v)
{
        for (size_t i = 0; i < f->n; i++) {
                if (!strcmp(f->v[i].name, name)) {
                        f->v[i].v = v;
                        return 0;
                }
        }
        if (f->n == f->cap) {
                size_t cap = f->cap ? f->cap * 2 : 8;
                Var *v2 = slm_arena_alloc(r->a, cap * sizeof(*v2));
                if (!v2)
                        return oom(r);
                if (f->n)
                        memcpy(v2, f->v, f->n * sizeof(*v2));
                f->v = v2;
                f->cap = cap;
        }
        f->v[f->n++] = (Var){ name, v };
        return 0;
}

static SlmValue lookup(Frame *f, const char *name)
{
        SlmValue v;

        for (; f; f = f->parent)
                for (size_t i = f->n; i-- > 0;)
                        if (!strcmp(f->v[i].name, name))
                                return f->v[i].v;
        if (slm_jinja_global(name, &v))
                return v;
        return undefined_named(name);
}

static SlmValue object(uint16_t kind, void *obj)
{
        return (SlmValue){ .type = SLM_VALUE_OBJECT, .kind = kind, .obj = obj };
}

static int step(Render *r)
{
        if (++r->steps > r->opts->max_steps)
                return slm_error_set(r->err, -E2BIG, "template ran longer than allowed");
        return 0;
}

static int eval(Render *r, const Node *n, Frame *f, SlmValue *ret);
static int exec_list(Render *r, const NodeList *l, Frame *f);

/* ---- values from syntax ---- */

/* The buffer's text as a string value; the buffer is freed either way. */
static int str_value(Render *r, SlmBuf *b, SlmValue *ret)
{
        int e = 0;

        if (b->failed)
                e = slm_error_set(r->err, -E2BIG, "template output is larger than allowed");
        else if ((*ret = slm_value_str(r->a, b->s ? b->s : "", b->n)).type != SLM_VALUE_STRING)
                e = oom(r);
        slm_buf_free(b);
        return e;
}

static int to_string(Render *r, SlmValue v, SlmValue *ret)
{
        SlmBuf b = { .limit = r->opts->max_output };

        if (v.type == SLM_VALUE_STRING) {
                *ret = v;
                return 0;
        }
        slm_value_write_str(&b, v);
        return str_value(r, &b, ret);
}

/* The items a for loop or a filter walks over: lists as they are, dict keys, characters. */
static int iterate(Render *r, SlmValue v, SlmList **ret)
{
        SlmValue l;

        switch (v.type) {
        case SLM_VALUE_LIST:
                *ret = v.list;
                return 0;
        case SLM_VALUE_UNDEFINED:
        case SLM_VALUE_DICT:
        case SLM_VALUE_STRING:
                l = slm_value_new_list(r->a);
                if (l.type != SLM_VALUE_LIST)
                        return oom(r);
                if (v.type == SLM_VALUE_DICT) {
                        for (size_t i = 0; i < v.dict->n; i++)
                                if (slm_list_append(r->a, l.list, v.dict->e[i].key) < 0)
                                        return oom(r);
                } else if (v.type == SLM_VALUE_STRING) {
                        for (size_t i = 0; i < v.len;) {
                                size_t k = slm_utf8_len((uint8_t)v.s[i]);
                                if (k > v.len - i)
                                        k = v.len - i;
                                SlmValue c = slm_value_str(r->a, v.s + i, k);
                                if (c.type != SLM_VALUE_STRING ||
                                    slm_list_append(r->a, l.list, c) < 0)
                                        return oom(r);
                                i += k;
                        }
                }
                *ret = l.list;
                return 0;
        default:
                return slm_jinja_fail(r, "'%s' object is not iterable", slm_value_type_name(v));
        }
}

int slm_jinja_iterate(Render *r, SlmValue v, SlmList **ret)
{
        return iterate(r, v, ret);
}

size_t slm_jinja_utf8_count(const char *s, size_t n)
{
        size_t c = 0;

        for (size_t i = 0; i < n; i++)
                c += ((uint8_t)s[i] & 0xC0) != 0x80;
        return c;
}

size_t slm_jinja_utf8_offset(const char *s, size_t n, size_t index)
{
        size_t i = 0;

        for (; i < n && index > 0; index--) {
                i++;
                while (i < n && ((uint8_t)s[i] & 0xC0) == 0x80)
                        i++;
        }
        return i;
}

/* obj.name and obj[name] for a name */
static int get_attr(Render *r, SlmValue obj, const char *name, bool item_first, SlmValue *ret)
{
        switch (obj.type) {
        case SLM_VALUE_UNDEFINED:
                return undefined_error(r, obj);
        case SLM_VALUE_DICT: {
                SlmValue *v = item_first ? slm_dict_get_str(obj.dict, name) : NULL;
                if (v) {
                        *ret = *v;
                        return 0;
                }
                int e = slm_jinja_method(r, obj, name, ret);
                if (e < 0 || ret->type != SLM_VALUE_UNDEFINED)
                        return e;
                v = slm_dict_get_str(obj.dict, name);
                *ret = v ? *v : undefined_named(name);
                return 0;
        }
        case SLM_VALUE_OBJECT:
                if (obj.kind == OBJ_NAMESPACE) {
                        SlmValue *v = slm_dict_get_str(obj.obj, name);
                        *ret = v ? *v : undefined_named(name);
                        return 0;
                }
                if (obj.kind == OBJ_LOOP) {
                        Loop *l = obj.obj;
                        size_t n = l->items->n;
                        if (!strcmp(name, "index"))
                                *ret = slm_value_int((int64_t)l->i + 1);
                        else if (!strcmp(name, "index0"))
                                *ret = slm_value_int((int64_t)l->i);
                        else if (!strcmp(name, "revindex"))
                                *ret = slm_value_int((int64_t)(n - l->i));
                        else if (!strcmp(name, "revindex0"))
                                *ret = slm_value_int((int64_t)(n - l->i - 1));
                        else if (!strcmp(name, "first"))
                                *ret = slm_value_bool(l->i == 0);
                        else if (!strcmp(name, "last"))
                                *ret = slm_value_bool(l->i + 1 == n);
                        else if (!strcmp(name, "length"))
                                *ret = slm_value_int((int64_t)n);
                        else if (!strcmp(name, "depth"))
                                *ret = slm_value_int(1);
                        else if (!strcmp(name, "depth0"))
                                *ret = slm_value_int(0);
                        else if (!strcmp(name, "previtem"))
                                *ret = l->i > 0 ? l->items->v[l->i - 1] : undefined_named(name);
                        else if (!strcmp(name, "nextitem"))
                                *ret = l->i + 1 < n ? l->items->v[l->i + 1] : undefined_named(name);
                        else
                                return slm_jinja_method(r, obj, name, ret);
                        return 0;
                }
                *ret = undefined_named(name);
                return 0;
        default:
                return slm_jinja_method(r, obj, name, ret);
        }
}

int slm_jinja_getattr(Render *r, SlmValue obj, const char *name, SlmValue *ret)
{
        return get_attr(r, obj, name, true, ret);
}

int slm_jinja_to_string(Render *r, SlmValue v, SlmValue *ret)
{
        return to_string(r, v, ret);
}

size_t slm_jinja_max_output(Render *r)
{
        return r->opts->max_output;
}

int slm_jinja_oom(Render *r)
{
        return oom(r);
}

int slm_jinja_buf_value(Render *r, SlmBuf *b, SlmValue *ret)
{
        return str_value(r, b, ret);
}

void slm_jinja_now(Render *r, int64_t *ret_now, bool *ret_utc)
{
        *ret_now = r->opts->now;
        *ret_utc = r->opts->utc;
}

int slm_jinja_too_big(Render *r, const char *what)
{
        return slm_error_set(r->err, -E2BIG, "%s", what);
}

int slm_jinja_raise(Render *r, SlmValue msg)
{
        SlmBuf b = { .limit = r->opts->max_output };

        slm_value_write_str(&b, msg);
        slm_error_set(r->err, -ECANCELED, "%s", b.s ? b.s : "");
        slm_buf_free(&b);
        return -ECANCELED;
}

static int int_of(SlmValue v, int64_t *ret)
{
        if (v.type == SLM_VALUE_INT) {
                *ret = v.i;
                return 0;
        }
        if (v.type == SLM_VALUE_BOOL) {
                *ret = v.b;
                return 0;
        }
        return -1;
}

static int get_item(Render *r, SlmValue obj, SlmValue key, SlmValue *ret)
{
        int64_t i;

        if (obj.type == SLM_VALUE_UNDEFINED)
                return undefined_error(r, obj);
        if (obj.type == SLM_VALUE_DICT) {
                SlmValue *v = slm_dict_get(obj.dict, key);
                if (v) {
                        *ret = *v;
                        return 0;
                }
        } else if ((obj.type == SLM_VALUE_LIST || obj.type == SLM_VALUE_STRING) &&
                   int_of(key, &i) == 0) {
                size_t n =
                    obj.type == SLM_VALUE_LIST ? obj.list->n : slm_jinja_utf8_count(obj.s, obj.len);
                if (i < 0)
                        i += (int64_t)n;
                if (i < 0 || (uint64_t)i >= n) {
                        *ret = slm_value_undefined();
                        return 0;
                }
                if (obj.type == SLM_VALUE_LIST) {
                        *ret = obj.list->v[i];
                        return 0;
                }
                size_t s = slm_jinja_utf8_offset(obj.s, obj.len, (size_t)i);
                size_t e = slm_jinja_utf8_offset(obj.s, obj.len, (size_t)i + 1);
                *ret = slm_value_str(r->a, obj.s + s, e - s);
                return ret->type == SLM_VALUE_STRING ? 0 : oom(r);
        }
        if (key.type == SLM_VALUE_STRING)
                return get_attr(r, obj, key.s, false, ret);
        *ret = slm_value_undefined();
        return 0;
}

static int slice(Render *r, SlmValue obj, const SlmValue *parts, SlmValue *ret)
{
        int64_t v[3], n;
        bool has[3];

        if (obj.type != SLM_VALUE_LIST && obj.type != SLM_VALUE_STRING) {
                if (obj.type == SLM_VALUE_UNDEFINED)
                        return undefined_error(r, obj);
                return slm_jinja_fail(r, "'%s' object is not subscriptable",
                                      slm_value_type_name(obj));
        }
        for (int k = 0; k < 3; k++) {
                has[k] = parts[k].type != SLM_VALUE_NONE;
                if (has[k] && int_of(parts[k], &v[k]) < 0)
                        return slm_jinja_fail(r, "slice indices must be integers");
        }
        n = obj.type == SLM_VALUE_LIST ? (int64_t)obj.list->n
                                       : (int64_t)slm_jinja_utf8_count(obj.s, obj.len);
        int64_t stp = has[2] ? v[2] : 1;
        if (stp == 0)
                return slm_jinja_fail(r, "slice step cannot be zero");
        int64_t start, stop;
        if (stp > 0) {
                start = has[0] ? v[0] : 0;
                stop = has[1] ? v[1] : n;
                if (start < 0)
                        start = start + n < 0 ? 0 : start + n;
                if (stop < 0)
                        stop = stop + n < 0 ? 0 : stop + n;
                if (start > n)
                        start = n;
                if (stop > n)
                        stop = n;
        } else {
                start = has[0] ? v[0] : n - 1;
                stop = has[1] ? v[1] : -1 - n;
                if (start < 0)
                        start = start + n < 0 ? -1 : start + n;
                if (stop < 0)
                        stop = stop + n < 0 ? -1 : stop + n;
                if (start >= n)
                        start = n - 1;
                if (stop >= n)
                        stop = n - 1;
        }
        SlmValue out = slm_value_new_list(r->a);
        if (out.type != SLM_VALUE_LIST)
                return oom(r);
        SlmBuf b = { .limit = r->opts->max_output };
        for (int64_t i = start; stp > 0 ? i < stop : i > stop; i += stp) {
                if (obj.type == SLM_VALUE_LIST) {
                        if (slm_list_append(r->a, out.list, obj.list->v[i]) < 0)
                                return oom(r);
                } else {
                        size_t s = slm_jinja_utf8_offset(obj.s, obj.len, (size_t)i);
                        size_t e = slm_jinja_utf8_offset(obj.s + s, obj.len - s, 1) + s;
                        slm_buf_put(&b, obj.s + s, e - s);
                }
        }
        if (obj.type == SLM_VALUE_STRING) {
                return str_value(r, &b, ret);
        }
        out.flags = obj.flags;
        *ret = out;
        return 0;
}

/* ---- operators ---- */

static bool is_num(SlmValue v)
{
        return v.type == SLM_VALUE_INT || v.type == SLM_VALUE_FLOAT || v.type == SLM_VALUE_BOOL;
}

static double num(SlmValue v)
{
        return v.type == SLM_VALUE_FLOAT ? v.f : v.type == SLM_VALUE_BOOL ? v.b : (double)v.i;
}

static const char *op_name(int op)
{
        static const char *const names[] = { "+",  "-",  "*", "/",  "//", "%",  "**", "~",
                                             "==", "!=", "<", "<=", ">",  ">=", "in", "not in" };
        return names[op];
}

static int type_error(Render *r, int op, SlmValue a, SlmValue b)
{
        if (a.type == SLM_VALUE_UNDEFINED)
                return undefined_error(r, a);
        if (b.type == SLM_VALUE_UNDEFINED)
                return undefined_error(r, b);
        if (op == OP_ADD && a.type == SLM_VALUE_STRING)
                return slm_jinja_fail(r, "can only concatenate str (not \"%s\") to str",
                                      slm_value_type_name(b));
        if (op >= OP_LT && op <= OP_GE)
                return slm_jinja_fail(r, "'%s' not supported between instances of '%s' and '%s'",
                                      op_name(op), slm_value_type_name(a), slm_value_type_name(b));
        return slm_jinja_fail(r, "unsupported operand type(s) for %s: '%s' and '%s'", op_name(op),
                              slm_value_type_name(a), slm_value_type_name(b));
}

static int repeat(Render *r, SlmValue seq, int64_t times, SlmValue *ret)
{
        if (times < 0)
                times = 0;
        if (seq.type == SLM_VALUE_STRING) {
                SlmBuf b = { .limit = r->opts->max_output };
                if (seq.len && (uint64_t)times > r->opts->max_output / seq.len)
                        return slm_error_set(r->err, -E2BIG,
                                             "string repeated past the output limit");
                for (int64_t i = 0; i < times; i++)
                        slm_buf_put(&b, seq.s, seq.len);
                return str_value(r, &b, ret);
        }
        SlmValue l = slm_value_new_list(r->a);
        if (l.type != SLM_VALUE_LIST)
                return oom(r);
        if (seq.list->n && (uint64_t)times > r->opts->max_steps / seq.list->n)
                return slm_error_set(r->err, -E2BIG, "list repeated past the limit");
        for (int64_t i = 0; i < times; i++)
                for (size_t k = 0; k < seq.list->n; k++)
                        if (slm_list_append(r->a, l.list, seq.list->v[k]) < 0)
                                return oom(r);
        *ret = l;
        return 0;
}

static int arith(Render *r, int op, SlmValue a, SlmValue b, SlmValue *ret)
{
        if (op == OP_CONCAT) {
                SlmBuf buf = { .limit = r->opts->max_output };
                slm_value_write_str(&buf, a);
                slm_value_write_str(&buf, b);
                return str_value(r, &buf, ret);
        }
        if (op == OP_ADD && a.type == b.type &&
            (a.type == SLM_VALUE_STRING || a.type == SLM_VALUE_LIST)) {
                if (a.type == SLM_VALUE_STRING) {
                        SlmBuf buf = { .limit = r->opts->max_output };
                        slm_buf_put(&buf, a.s, a.len);
                        slm_buf_put(&buf, b.s, b.len);
                        return str_value(r, &buf, ret);
                }
                SlmValue l = slm_value_new_list(r->a);
                if (l.type != SLM_VALUE_LIST)
                        return oom(r);
                for (size_t i = 0; i < a.list->n; i++)
                        if (slm_list_append(r->a, l.list, a.list->v[i]) < 0)
                                return oom(r);
                for (size_t i = 0; i < b.list->n; i++)
                        if (slm_list_append(r->a, l.list, b.list->v[i]) < 0)
                                return oom(r);
                *ret = l;
                return 0;
        }
        if (op == OP_MUL && (a.type == SLM_VALUE_STRING || a.type == SLM_VALUE_LIST) &&
            (b.type == SLM_VALUE_INT || b.type == SLM_VALUE_BOOL))
                return repeat(r, a, b.type == SLM_VALUE_INT ? b.i : b.b, ret);
        if (op == OP_MUL && (b.type == SLM_VALUE_STRING || b.type == SLM_VALUE_LIST) &&
            (a.type == SLM_VALUE_INT || a.type == SLM_VALUE_BOOL))
                return repeat(r, b, a.type == SLM_VALUE_INT ? a.i : a.b, ret);
        if (!is_num(a) || !is_num(b))
                return type_error(r, op, a, b);
        bool ints = a.type != SLM_VALUE_FLOAT && b.type != SLM_VALUE_FLOAT;
        int64_t x = ints ? (int64_t)num(a) : 0, y = ints ? (int64_t)num(b) : 0, z;
        double fx = num(a), fy = num(b);
        if (ints) {
                x = a.type == SLM_VALUE_INT ? a.i : a.b;
                y = b.type == SLM_VALUE_INT ? b.i : b.b;
        }
        switch (op) {
        case OP_ADD:
        case OP_SUB:
        case OP_MUL:
                if (ints) {
                        bool over = op == OP_ADD   ? __builtin_add_overflow(x, y, &z)
                                    : op == OP_SUB ? __builtin_sub_overflow(x, y, &z)
                                                   : __builtin_mul_overflow(x, y, &z);
                        if (over)
                                return slm_jinja_fail(r, "integer overflow");
                        *ret = slm_value_int(z);
                } else {
                        *ret = slm_value_float(op == OP_ADD   ? fx + fy
                                               : op == OP_SUB ? fx - fy
                                                              : fx * fy);
                }
                return 0;
        case OP_DIV:
                if (fy == 0)
                        return slm_jinja_fail(r, "division by zero");
                *ret = slm_value_float(fx / fy);
                return 0;
        case OP_FLOORDIV:
        case OP_MOD:
                if (fy == 0)
                        return slm_jinja_fail(r, op == OP_MOD
                                                     ? "modulo by zero"
                                                     : "integer division or modulo by zero");
                if (ints) {
                        if (x == INT64_MIN && y == -1)
                                return slm_jinja_fail(r, "integer overflow");
                        int64_t q = x / y, m = x % y;
                        if (m != 0 && ((m < 0) != (y < 0))) {
                                q--;
                                m += y;
                        }
                        *ret = slm_value_int(op == OP_MOD ? m : q);
                } else {
                        double q = floor(fx / fy), m = fx - q * fy;
                        *ret = slm_value_float(op == OP_MOD ? m : q);
                }
                return 0;
        case OP_POW:
                if (ints && y >= 0) {
                        int64_t acc = 1;
                        for (int64_t i = 0; i < y; i++) {
                                if (__builtin_mul_overflow(acc, x, &acc))
                                        return slm_jinja_fail(r, "integer overflow");
                                if (acc == 0 || acc == 1)
                                        break;
                        }
                        *ret = slm_value_int(acc);
                } else {
                        *ret = slm_value_float(pow(fx, fy));
                }
                return 0;
        default:
                return type_error(r, op, a, b);
        }
}

/* a < b as Python orders numbers, strings (by code point: UTF-8 bytes agree) and lists */
static int compare(Render *r, SlmValue a, SlmValue b, int *ret)
{
        if (is_num(a) && is_num(b)) {
                double x = num(a), y = num(b);
                if (a.type != SLM_VALUE_FLOAT && b.type != SLM_VALUE_FLOAT) {
                        int64_t p = a.type == SLM_VALUE_INT ? a.i : a.b;
                        int64_t q = b.type == SLM_VALUE_INT ? b.i : b.b;
                        *ret = p < q ? -1 : p > q;
                        return 0;
                }
                *ret = x < y ? -1 : x > y;
                return 0;
        }
        if (a.type == SLM_VALUE_STRING && b.type == SLM_VALUE_STRING) {
                size_t n = a.len < b.len ? a.len : b.len;
                int c = memcmp(a.s, b.s, n);
                *ret = c ? (c < 0 ? -1 : 1) : a.len < b.len ? -1 : a.len > b.len;
                return 0;
        }
        if (a.type == SLM_VALUE_LIST && b.type == SLM_VALUE_LIST) {
                for (size_t i = 0; i < a.list->n && i < b.list->n; i++) {
                        if (slm_value_equal(a.list->v[i], b.list->v[i]))
                                continue;
                        return compare(r, a.list->v[i], b.list->v[i], ret);
                }
                *ret = a.list->n < b.list->n ? -1 : a.list->n > b.list->n;
                return 0;
        }
        return -1;
}

int slm_jinja_compare(Render *r, SlmValue a, SlmValue b, int *ret)
{
        if (compare(r, a, b, ret) < 0)
                return type_error(r, OP_LT, a, b);
        return 0;
}

static int contains(Render *r, SlmValue needle, SlmValue hay, bool *ret)
{
        switch (hay.type) {
        case SLM_VALUE_STRING:
                if (needle.type != SLM_VALUE_STRING)
                        return slm_jinja_fail(
                            r, "'in <string>' requires string as left operand, not %s",
                            slm_value_type_name(needle));
                *ret = needle.len == 0 || memmem(hay.s, hay.len, needle.s, needle.len) != NULL;
                return 0;
        case SLM_VALUE_LIST:
                *ret = false;
                for (size_t i = 0; i < hay.list->n && !*ret; i++)
                        *ret = slm_value_equal(hay.list->v[i], needle);
                return 0;
        case SLM_VALUE_DICT:
                *ret = slm_dict_get(hay.dict, needle) != NULL;
                return 0;
        case SLM_VALUE_UNDEFINED:
                *ret = false;
                return 0;
        default:
                return slm_jinja_fail(r, "argument of type '%s' is not iterable",
                                      slm_value_type_name(hay));
        }
}

static int compare_op(Render *r, int op, SlmValue a, SlmValue b, SlmValue *ret)
{
        int c;
        bool in = false;

        switch (op) {
        case OP_EQ:
        case OP_NE:
                *ret = slm_value_bool(slm_value_equal(a, b) == (op == OP_EQ));
                return 0;
        case OP_IN:
        case OP_NOT_IN:
                if (contains(r, a, b, &in) < 0)
                        return -EINVAL;
                *ret = slm_value_bool(in == (op == OP_IN));
                return 0;
        default:
                if (compare(r, a, b, &c) < 0)
                        return type_error(r, op, a, b);
                *ret = slm_value_bool(op == OP_LT   ? c < 0
                                      : op == OP_LE ? c <= 0
                                      : op == OP_GT ? c > 0
                                                    : c >= 0);
                return 0;
        }
}

/* ---- calls ---- */

const SlmValue *slm_jinja_arg(const SlmValue *args, size_t n_args, const Kwargs *kw, size_t pos,
                              const char *name)
{
        for (size_t i = 0; kw && i < kw->n_kw; i++)
                if (name && !strcmp(kw->kw_names[i], name))
                        return &kw->kw_vals[i];
        return pos < n_args ? &args[pos] : NULL;
}

static int call_macro(Render *r, Macro *m, SlmValue *args, size_t n_args, const Kwargs *kw,
                      SlmValue caller, SlmValue *ret)
{
        const Node *def = m->def;
        Frame *f = frame_new(r, m->scope);
        SlmBuf buf = { .limit = r->opts->max_output }, *saved = r->out;
        int e;

        if (!f)
                return oom(r);
        if (r->depth >= MAX_CALL_DEPTH)
                return slm_error_set(r->err, -E2BIG, "macros nested deeper than %d calls",
                                     MAX_CALL_DEPTH);
        for (size_t i = 0; i < def->targets.n; i++) {
                const Node *p = def->targets.v[i];
                const SlmValue *a = slm_jinja_arg(args, n_args, kw, i, p->name);
                SlmValue v = a ? *a : undefined_named(p->name);
                if (!a && p->a && (e = eval(r, p->a, f, &v)) < 0)
                        return e;
                if ((e = frame_set(r, f, p->name, v)) < 0)
                        return e;
        }
        if (n_args > def->targets.n) {
                SlmValue extra = slm_value_new_list(r->a);
                if (extra.type != SLM_VALUE_LIST)
                        return oom(r);
                for (size_t i = def->targets.n; i < n_args; i++)
                        if (slm_list_append(r->a, extra.list, args[i]) < 0)
                                return oom(r);
                if ((e = frame_set(r, f, "varargs", extra)) < 0)
                        return e;
        }
        if (caller.type != SLM_VALUE_UNDEFINED && (e = frame_set(r, f, "caller", caller)) < 0)
                return e;
        r->depth++;
        r->out = &buf;
        e = exec_list(r, &def->body, f);
        r->out = saved;
        r->depth--;
        if (e > 0)
                e = slm_jinja_fail(r, "'%s' outside a loop",
                                   e == FLOW_BREAK ? "break" : "continue");
        if (e >= 0)
                return str_value(r, &buf, ret);
        slm_buf_free(&buf);
        return e;
}

static int call_value(Render *r, SlmValue fn, SlmValue *args, size_t n_args, const Kwargs *kw,
                      SlmValue caller, SlmValue *ret)
{
        if (fn.type == SLM_VALUE_UNDEFINED)
                return undefined_error(r, fn);
        if (fn.type != SLM_VALUE_OBJECT)
                return slm_jinja_fail(r, "'%s' object is not callable", slm_value_type_name(fn));
        switch (fn.kind) {
        case OBJ_MACRO:
                return call_macro(r, fn.obj, args, n_args, kw, caller, ret);
        case OBJ_BUILTIN:
                return slm_jinja_call_builtin(r, fn, args, n_args, kw, ret);
        case OBJ_METHOD:
                return slm_jinja_call_method(r, fn, args, n_args, kw, ret);
        default:
                return slm_jinja_fail(r, "object is not callable");
        }
}

int slm_jinja_call_value(Render *r, SlmValue fn, SlmValue *args, size_t n_args,
                         const char **kw_names, SlmValue *kw_vals, size_t n_kw, SlmValue *ret)
{
        Kwargs kw = { kw_names, kw_vals, n_kw };

        return call_value(r, fn, args, n_args, &kw, slm_value_undefined(), ret);
}

/* Evaluate a node's positional and keyword arguments. */
static int eval_args(Render *r, const Node *n, Frame *f, SlmValue **ret_args, Kwargs *kw)
{
        size_t na = n->items.n, nk = n->kw.n;
        SlmValue *args = slm_arena_alloc(r->a, (na + nk + 1) * sizeof(SlmValue));
        const char **names = slm_arena_alloc(r->a, (nk + 1) * sizeof(char *));
        int e;

        if (!args || !names)
                return oom(r);
        for (size_t i = 0; i < na; i++)
                if ((e = eval(r, n->items.v[i], f, &args[i])) < 0)
                        return e;
        for (size_t i = 0; i < nk; i++) {
                names[i] = n->kw.v[i]->name;
                if ((e = eval(r, n->kw.v[i]->a, f, &args[na + i])) < 0)
                        return e;
        }
        *ret_args = args;
        *kw = (Kwargs){ names, args + na, nk };
        return 0;
}

/*
 * A filter node: its target evaluated, or in a chain over a value (filter
 * blocks, block sets: the innermost target is NULL and @v goes in there).
 */
static int apply_filter(Render *r, const Node *n, Frame *f, bool chain, SlmValue v, SlmValue *ret)
{
        SlmValue *args;
        Kwargs kw;
        int e;

        if (n->a && (e = chain ? apply_filter(r, n->a, f, true, v, &v) : eval(r, n->a, f, &v)) < 0)
                return e;
        if ((e = eval_args(r, n, f, &args, &kw)) < 0)
                return e;
        return slm_jinja_filter(r, n->name, v, args, n->items.n, &kw, ret);
}

static int eval(Render *r, const Node *n, Frame *f, SlmValue *ret)
{
        SlmValue a, b;
        int e;

        if ((e = step(r)) < 0)
                return e;
        switch (n->kind) {
        case N_CONST:
                *ret = n->value;
                return 0;
        case N_NAME:
                *ret = lookup(f, n->name);
                return 0;
        case N_LIST:
        case N_TUPLE:
        case N_DICT: {
                SlmValue c =
                    n->kind == N_DICT ? slm_value_new_dict(r->a) : slm_value_new_list(r->a);
                if (c.type == SLM_VALUE_UNDEFINED)
                        return oom(r);
                for (size_t i = 0; i < n->items.n; i++) {
                        if ((e = eval(r, n->items.v[i], f, &a)) < 0)
                                return e;
                        if (n->kind == N_DICT) {
                                if ((e = eval(r, n->items.v[++i], f, &b)) < 0)
                                        return e;
                                if (slm_dict_set(r->a, c.dict, a, b) < 0)
                                        return oom(r);
                        } else if (slm_list_append(r->a, c.list, a) < 0) {
                                return oom(r);
                        }
                }
                if (n->kind == N_TUPLE)
                        c.flags = SLM_VALUE_TUPLE;
                *ret = c;
                return 0;
        }
        case N_ATTR:
                if ((e = eval(r, n->a, f, &a)) < 0)
                        return e;
                return get_attr(r, a, n->name, true, ret);
        case N_ITEM:
                if ((e = eval(r, n->a, f, &a)) < 0 || (e = eval(r, n->b, f, &b)) < 0)
                        return e;
                return get_item(r, a, b, ret);
        case N_SLICE: {
                SlmValue parts[3];
                if ((e = eval(r, n->a, f, &a)) < 0)
                        return e;
                for (int i = 0; i < 3; i++) {
                        parts[i] = slm_value_none();
                        if (n->items.v[i] && (e = eval(r, n->items.v[i], f, &parts[i])) < 0)
                                return e;
                }
                return slice(r, a, parts, ret);
        }
        case N_CALL: {
                SlmValue *args;
                Kwargs kw;
                if ((e = eval(r, n->a, f, &a)) < 0 || (e = eval_args(r, n, f, &args, &kw)) < 0)
                        return e;
                return call_value(r, a, args, n->items.n, &kw, slm_value_undefined(), ret);
        }
        case N_FILTER:
                return apply_filter(r, n, f, false, slm_value_undefined(), ret);
        case N_TEST: {
                SlmValue *args;
                Kwargs kw;
                bool t;
                if ((e = eval(r, n->a, f, &a)) < 0 || (e = eval_args(r, n, f, &args, &kw)) < 0)
                        return e;
                if ((e = slm_jinja_test(r, n->name, a, args, n->items.n, &t)) < 0)
                        return e;
                *ret = slm_value_bool(t != (n->op != 0));
                return 0;
        }
        case N_NEG:
        case N_POS:
                if ((e = eval(r, n->a, f, &a)) < 0)
                        return e;
                if (!is_num(a))
                        return a.type == SLM_VALUE_UNDEFINED
                                   ? undefined_error(r, a)
                                   : slm_jinja_fail(r, "bad operand type for unary %s: '%s'",
                                                    n->kind == N_NEG ? "-" : "+",
                                                    slm_value_type_name(a));
                if (n->kind == N_POS)
                        *ret = a.type == SLM_VALUE_BOOL ? slm_value_int(a.b) : a;
                else if (a.type == SLM_VALUE_FLOAT)
                        *ret = slm_value_float(-a.f);
                else if (a.type == SLM_VALUE_INT && a.i == INT64_MIN)
                        return slm_jinja_fail(r, "integer overflow");
                else
                        *ret = slm_value_int(a.type == SLM_VALUE_INT ? -a.i : -(int64_t)a.b);
                return 0;
        case N_NOT:
                if ((e = eval(r, n->a, f, &a)) < 0)
                        return e;
                *ret = slm_value_bool(!slm_value_truthy(a));
                return 0;
        case N_AND:
        case N_OR:
                /* Python returns the operand that decided */
                if ((e = eval(r, n->a, f, &a)) < 0)
                        return e;
                if (slm_value_truthy(a) == (n->kind == N_OR)) {
                        *ret = a;
                        return 0;
                }
                return eval(r, n->b, f, ret);
        case N_BINARY:
                if ((e = eval(r, n->a, f, &a)) < 0 || (e = eval(r, n->b, f, &b)) < 0)
                        return e;
                return arith(r, n->op, a, b, ret);
        case N_COMPARE:
                if ((e = eval(r, n->a, f, &a)) < 0 || (e = eval(r, n->b, f, &b)) < 0)
                        return e;
                return compare_op(r, n->op, a, b, ret);
        case N_COND:
                if ((e = eval(r, n->a, f, &a)) < 0)
                        return e;
                if (slm_value_truthy(a))
                        return eval(r, n->b, f, ret);
                if (n->c)
                        return eval(r, n->c, f, ret);
                *ret = slm_value_undefined();
                return 0;
        default:
                return slm_jinja_fail(r, "line %u: not an expression", n->line);
        }
}

/* ---- statements ---- */

static int assign(Render *r, const NodeList *targets, Frame *f, SlmValue v)
{
        int e;

        if (targets->n == 1) {
                const Node *t = targets->v[0];
                if (t->kind == N_ATTR) {
                        SlmValue ns = lookup(f, t->a->name);
                        if (ns.type != SLM_VALUE_OBJECT || ns.kind != OBJ_NAMESPACE)
                                return slm_jinja_fail(
                                    r, "cannot assign attribute on non-namespace object");
                        SlmValue key = slm_value_str_static(t->name, strlen(t->name));
                        return slm_dict_set(r->a, ns.obj, key, v) < 0 ? oom(r) : 0;
                }
                return frame_set(r, f, t->name, v);
        }
        if (v.type != SLM_VALUE_LIST) {
                SlmList *l;
                if ((e = iterate(r, v, &l)) < 0)
                        return slm_jinja_fail(r, "cannot unpack non-iterable %s object",
                                              slm_value_type_name(v));
                v = (SlmValue){ .type = SLM_VALUE_LIST, .list = l };
        }
        if (v.list->n != targets->n)
                return slm_jinja_fail(r, "%s values to unpack (expected %zu, got %zu)",
                                      v.list->n < targets->n ? "not enough" : "too many",
                                      targets->n, v.list->n);
        for (size_t i = 0; i < targets->n; i++)
                if ((e = frame_set(r, f, targets->v[i]->name, v.list->v[i])) < 0)
                        return e;
        return 0;
}

static int write_value(Render *r, SlmValue v)
{
        slm_value_write_str(r->out, v);
        if (r->out->failed)
                return slm_error_set(r->err, -E2BIG, "template output is larger than allowed");
        return 0;
}

static int exec_for(Render *r, const Node *n, Frame *f)
{
        SlmValue it;
        SlmList *items;
        int e;

        if ((e = eval(r, n->a, f, &it)) < 0 || (e = iterate(r, it, &items)) < 0)
                return e;
        if (n->b) {
                /* the loop's filter: loop.* counts only what it lets through */
                SlmValue kept = slm_value_new_list(r->a);
                if (kept.type != SLM_VALUE_LIST)
                        return oom(r);
                for (size_t i = 0; i < items->n; i++) {
                        Frame *tf = frame_new(r, f);
                        SlmValue c;
                        if (!tf)
                                return oom(r);
                        if ((e = assign(r, &n->targets, tf, items->v[i])) < 0 ||
                            (e = eval(r, n->b, tf, &c)) < 0)
                                return e;
                        if (slm_value_truthy(c) &&
                            slm_list_append(r->a, kept.list, items->v[i]) < 0)
                                return oom(r);
                }
                items = kept.list;
        }
        if (items->n == 0)
                return exec_list(r, &n->orelse, f);
        Loop *loop = slm_arena_alloc(r->a, sizeof(*loop));
        if (!loop)
                return oom(r);
        *loop = (Loop){ .items = items };
        for (size_t i = 0; i < items->n; i++) {
                Frame *lf = frame_new(r, f);
                if (!lf)
                        return oom(r);
                loop->i = i;
                if ((e = frame_set(r, lf, "loop", object(OBJ_LOOP, loop))) < 0 ||
                    (e = assign(r, &n->targets, lf, items->v[i])) < 0)
                        return e;
                e = exec_list(r, &n->body, lf);
                if (e < 0)
                        return e;
                if (e == FLOW_BREAK)
                        break;
        }
        return 0;
}

/* Render @body into a string of its own. */
static int capture(Render *r, const NodeList *body, Frame *f, SlmValue *ret)
{
        SlmBuf buf = { .limit = r->opts->max_output }, *saved = r->out;
        int e;

        r->out = &buf;
        e = exec_list(r, body, f);
        r->out = saved;
        if (e > 0)
                e = slm_jinja_fail(r, "'%s' outside a loop",
                                   e == FLOW_BREAK ? "break" : "continue");
        if (e >= 0)
                return str_value(r, &buf, ret);
        slm_buf_free(&buf);
        return e;
}

static int exec_node(Render *r, const Node *n, Frame *f)
{
        SlmValue v;
        int e;

        if ((e = step(r)) < 0)
                return e;
        switch (n->kind) {
        case N_TEXT:
                slm_buf_put(r->out, n->value.s, n->value.len);
                return r->out->failed ? write_value(r, slm_value_undefined()) : 0;
        case N_OUTPUT:
                if ((e = eval(r, n->a, f, &v)) < 0)
                        return e;
                return write_value(r, v);
        case N_IF:
                if ((e = eval(r, n->a, f, &v)) < 0)
                        return e;
                return exec_list(r, slm_value_truthy(v) ? &n->body : &n->orelse, f);
        case N_FOR:
                return exec_for(r, n, f);
        case N_SET:
                if ((e = eval(r, n->b, f, &v)) < 0)
                        return e;
                return assign(r, &n->targets, f, v);
        case N_SET_BLOCK:
                if ((e = capture(r, &n->body, f, &v)) < 0)
                        return e;
                if (n->b && (e = apply_filter(r, n->b, f, true, v, &v)) < 0)
                        return e;
                return assign(r, &n->targets, f, v);
        case N_MACRO: {
                Macro *m = slm_arena_alloc(r->a, sizeof(*m));
                if (!m)
                        return oom(r);
                *m = (Macro){ n, f };
                return frame_set(r, f, n->name, object(OBJ_MACRO, m));
        }
        case N_CALL_BLOCK: {
                Macro *m = slm_arena_alloc(r->a, sizeof(*m));
                SlmValue fn, *args;
                Kwargs kw;
                if (!m)
                        return oom(r);
                *m = (Macro){ n, f };
                if ((e = eval(r, n->a->a, f, &fn)) < 0 ||
                    (e = eval_args(r, n->a, f, &args, &kw)) < 0)
                        return e;
                if (fn.type != SLM_VALUE_OBJECT || fn.kind != OBJ_MACRO)
                        return slm_jinja_fail(r, "line %u: call blocks call macros", n->line);
                if ((e = call_macro(r, fn.obj, args, n->a->items.n, &kw, object(OBJ_MACRO, m),
                                    &v)) < 0)
                        return e;
                return write_value(r, v);
        }
        case N_FILTER_BLOCK:
                if ((e = capture(r, &n->body, f, &v)) < 0 ||
                    (e = apply_filter(r, n->b, f, true, v, &v)) < 0)
                        return e;
                return write_value(r, v);
        case N_WITH: {
                Frame *wf = frame_new(r, f);
                if (!wf)
                        return oom(r);
                for (size_t i = 0; i < n->targets.n; i++)
                        if ((e = eval(r, n->items.v[i], wf, &v)) < 0 ||
                            (e = frame_set(r, wf, n->targets.v[i]->name, v)) < 0)
                                return e;
                return exec_list(r, &n->body, wf);
        }
        case N_BLOCK:
                return exec_list(r, &n->body, f);
        case N_BREAK:
                return FLOW_BREAK;
        case N_CONTINUE:
                return FLOW_CONTINUE;
        default:
                return slm_jinja_fail(r, "line %u: not a statement", n->line);
        }
}

static int exec_list(Render *r, const NodeList *l, Frame *f)
{
        for (size_t i = 0; i < l->n; i++) {
                int e = exec_node(r, l->v[i], f);
                if (e != 0)
                        return e;
        }
        return 0;
}

int slm_jinja_render(const SlmJinja *t, SlmValue vars, const SlmJinjaOptions *opts, char **ret_text,
                     size_t *ret_len, SlmError *err)
{
        SlmJinjaOptions o = opts ? *opts : (SlmJinjaOptions){ 0 };
        SlmArena arena;
        SlmBuf out = { 0 };
        int e;

        if (!o.max_output)
                o.max_output = DEFAULT_MAX_OUTPUT;
        if (!o.max_memory)
                o.max_memory = DEFAULT_MAX_MEMORY;
        if (!o.max_steps)
                o.max_steps = DEFAULT_MAX_STEPS;
        out.limit = o.max_output;
        slm_arena_init(&arena, o.max_memory);
        Render r = { .a = &arena, .out = &out, .err = err, .opts = &o };
        r.root = frame_new(&r, NULL);
        if (!r.root) {
                e = oom(&r);
        } else if (vars.type != SLM_VALUE_DICT && vars.type != SLM_VALUE_NONE &&
                   vars.type != SLM_VALUE_UNDEFINED) {
                e = slm_error_set(err, -EINVAL, "template variables must be a dict");
        } else {
                e = 0;
                for (size_t i = 0; vars.type == SLM_VALUE_DICT && i < vars.dict->n && e >= 0; i++) {
                        SlmValue k = vars.dict->e[i].key;
                        if (k.type == SLM_VALUE_STRING)
                                e = frame_set(&r, r.root, k.s, vars.dict->e[i].value);
                }
                if (e >= 0)
                        e = exec_list(&r, &t->body, r.root);
                if (e > 0)
                        e = slm_error_set(err, -EINVAL, "'%s' outside a loop",
                                          e == FLOW_BREAK ? "break" : "continue");
        }
        slm_arena_clear(&arena);
        if (e >= 0 && out.failed)
                e = slm_error_set(err, -E2BIG, "template output is larger than allowed");
        if (e < 0) {
                slm_buf_free(&out);
                return e;
        }
        if (!out.s)
                slm_buf_put(&out, "", 0);
        if (out.failed) {
                slm_buf_free(&out);
                return slm_error_set(err, -ENOMEM, "out of memory");
        }
        *ret_text = out.s;
        *ret_len = out.n;
        return 0;
}
