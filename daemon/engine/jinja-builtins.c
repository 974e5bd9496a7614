/* SPDX-License-Identifier: MIT */
/*
 * The filters, tests, globals and Python methods that chat templates call,
 * each with the semantics of Jinja2 3.1 and Python 3 (tojson as
 * transformers overrides it: key order kept, non-ASCII text as it is).
 */
#include "jinja-private.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unicode.h"

#define MAX_RANGE 100000

typedef struct {
        SlmValue self;
        const char *name;
} Method;

static bool is_str(SlmValue v)
{
        return v.type == SLM_VALUE_STRING;
}

static const SlmValue *arg(SlmValue *args, size_t n, const Kwargs *kw, size_t pos, const char *name)
{
        return slm_jinja_arg(args, n, kw, pos, name);
}

static SlmValue str_arg(SlmValue *args, size_t n, const Kwargs *kw, size_t pos, const char *name,
                        const char *def)
{
        const SlmValue *v = arg(args, n, kw, pos, name);

        return v && v->type != SLM_VALUE_NONE ? *v : slm_value_str_static(def, strlen(def));
}

static bool bool_arg(SlmValue *args, size_t n, const Kwargs *kw, size_t pos, const char *name)
{
        const SlmValue *v = arg(args, n, kw, pos, name);

        return v && slm_value_truthy(*v);
}

static int new_list(Render *r, SlmValue *ret)
{
        *ret = slm_value_new_list(slm_jinja_arena(r));
        return ret->type == SLM_VALUE_LIST ? 0 : slm_jinja_oom(r);
}

static int append(Render *r, SlmValue l, SlmValue v)
{
        return slm_list_append(slm_jinja_arena(r), l.list, v) < 0 ? slm_jinja_oom(r) : 0;
}

static int make_str(Render *r, const char *s, size_t n, SlmValue *ret)
{
        *ret = slm_value_str(slm_jinja_arena(r), s, n);
        return ret->type == SLM_VALUE_STRING ? 0 : slm_jinja_oom(r);
}

static int need_str(Render *r, SlmValue v, const char *what)
{
        if (is_str(v))
                return 0;
        return slm_jinja_fail(r, "%s expects a string, not '%s'", what, slm_value_type_name(v));
}

/* ---- string helpers ---- */

static bool in_chars(uint32_t cp, SlmValue chars)
{
        if (chars.type != SLM_VALUE_STRING)
                return slm_unicode_is_whitespace(cp);
        for (size_t i = 0; i < chars.len;) {
                uint32_t c;
                i += slm_utf8_decode(chars.s + i, chars.len - i, &c);
                if (c == cp)
                        return true;
        }
        return false;
}

/* Python's str.strip family: @chars a string, or none for whitespace. */
static int strip(Render *r, SlmValue s, SlmValue chars, bool left, bool right, SlmValue *ret)
{
        size_t b = 0, e = s.len;

        while (left && b < e) {
                uint32_t cp;
                size_t k = slm_utf8_decode(s.s + b, e - b, &cp);
                if (!in_chars(cp, chars))
                        break;
                b += k;
        }
        while (right && e > b) {
                size_t k = 1;
                while (k < e - b && ((uint8_t)s.s[e - k] & 0xC0) == 0x80)
                        k++;
                uint32_t cp;
                slm_utf8_decode(s.s + e - k, k, &cp);
                if (!in_chars(cp, chars))
                        break;
                e -= k;
        }
        if (b == 0 && e == s.len) {
                *ret = s;
                return 0;
        }
        return make_str(r, s.s + b, e - b, ret);
}

/* Simple case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic. */
static uint32_t case_map(uint32_t c, bool up)
{
        if (c < 0x80) {
                if (up && c >= 'a' && c <= 'z')
                        return c - 32;
                if (!up && c >= 'A' && c <= 'Z')
                        return c + 32;
                return c;
        }
        if (up) {
                if ((c >= 0xE0 && c <= 0xFE && c != 0xF7) ||
                    (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) || (c >= 0x430 && c <= 0x44F))
                        return c - 32;
                if (c == 0xFF)
                        return 0x178;
                if (c == 0x3C2)
                        return 0x3A3;
                if (c >= 0x450 && c <= 0x45F)
                        return c - 80;
                if (c >= 0x100 && c <= 0x177 && c != 0x131 && c != 0x138 && c != 0x149)
                        return (c >= 0x139 && c <= 0x148) ? (c % 2 == 0 ? c - 1 : c)
                                                          : (c % 2 == 1 ? c - 1 : c);
                if (c >= 0x179 && c <= 0x17E)
                        return c % 2 == 0 ? c - 1 : c;
                return c;
        }
        if ((c >= 0xC0 && c <= 0xDE && c != 0xD7) || (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) ||
            (c >= 0x410 && c <= 0x42F))
                return c + 32;
        if (c == 0x178)
                return 0xFF;
        if (c >= 0x400 && c <= 0x40F)
                return c + 80;
        if (c >= 0x100 && c <= 0x177 && c != 0x130 && c != 0x138 && c != 0x149)
                return (c >= 0x139 && c <= 0x148) ? (c % 2 == 1 ? c + 1 : c)
                                                  : (c % 2 == 0 ? c + 1 : c);
        if (c >= 0x179 && c <= 0x17E)
                return c % 2 == 1 ? c + 1 : c;
        return c;
}

static bool is_cased(uint32_t c)
{
        return case_map(c, true) != c || case_map(c, false) != c;
}

/*
 * @mode: 0 lower, 1 upper, 2 capitalize, 3 the title filter (words begin after
 * whitespace, "-" and opening brackets), 4 str.title() (after any uncased character)
 */
static int change_case(Render *r, SlmValue s, int mode, SlmValue *ret)
{
        SlmBuf b = { .limit = slm_jinja_max_output(r) };
        bool word_start = true;

        for (size_t i = 0; i < s.len;) {
                uint32_t c;
                size_t k = slm_utf8_decode(s.s + i, s.len - i, &c);
                bool up = mode == 1 || (mode == 2 && i == 0) || (mode >= 3 && word_start);
                if (c == SLM_UNICODE_INVALID) {
                        slm_buf_put(&b, s.s + i, k);
                } else if (up && c == 0xDF) {
                        /* no capital sharp s: upper() makes "SS", title() "Ss" */
                        slm_buf_puts(&b, mode == 1 || mode == 3 ? "SS" : "Ss");
                } else {
                        char o[4];
                        slm_buf_put(&b, o, slm_utf8_encode(case_map(c, up), o));
                }
                if (mode == 3)
                        word_start = c == ' ' || (c >= '\t' && c <= '\r') || c == '-' || c == '(' ||
                                     c == '{' || c == '[' || c == '<';
                else
                        word_start = c == SLM_UNICODE_INVALID || !(is_cased(c) || c == 0xDF);
                i += k;
        }
        return slm_jinja_buf_value(r, &b, ret);
}

static int replace(Render *r, SlmValue s, SlmValue old, SlmValue new, int64_t count, SlmValue *ret)
{
        SlmBuf b = { .limit = slm_jinja_max_output(r) };
        size_t i = 0;
        int64_t done = 0;

        if (old.len == 0) {
                /* Python puts @new around every character */
                for (size_t k = 0; k <= s.len && (count < 0 || done < count); done++) {
                        slm_buf_put(&b, new.s, new.len);
                        if (k == s.len)
                                break;
                        size_t l = slm_utf8_len((uint8_t)s.s[k]);
                        if (l > s.len - k)
                                l = s.len - k;
                        slm_buf_put(&b, s.s + k, l);
                        k += l;
                        i = k;
                }
                slm_buf_put(&b, s.s + i, s.len - i);
        } else {
                while (count < 0 || done < count) {
                        const char *hit = memmem(s.s + i, s.len - i, old.s, old.len);
                        if (!hit)
                                break;
                        slm_buf_put(&b, s.s + i, (size_t)(hit - s.s) - i);
                        slm_buf_put(&b, new.s, new.len);
                        i = (size_t)(hit - s.s) + old.len;
                        done++;
                }
                slm_buf_put(&b, s.s + i, s.len - i);
        }
        return slm_jinja_buf_value(r, &b, ret);
}

static int split(Render *r, SlmValue s, const SlmValue *sep, int64_t maxsplit, SlmValue *ret)
{
        int e = new_list(r, ret);
        size_t i = 0;
        SlmValue part;

        if (e < 0)
                return e;
        if (!sep || sep->type == SLM_VALUE_NONE) {
                /* runs of whitespace, none at either end */
                for (;;) {
                        while (i < s.len && (s.s[i] == ' ' || (s.s[i] >= '\t' && s.s[i] <= '\r')))
                                i++;
                        if (i >= s.len)
                                return 0;
                        size_t j = i;
                        if (maxsplit >= 0 && (int64_t)ret->list->n >= maxsplit) {
                                size_t end = s.len;
                                while (end > j && (s.s[end - 1] == ' ' ||
                                                   (s.s[end - 1] >= '\t' && s.s[end - 1] <= '\r')))
                                        end--;
                                if ((e = make_str(r, s.s + j, end - j, &part)) < 0)
                                        return e;
                                return append(r, *ret, part);
                        }
                        while (j < s.len && !(s.s[j] == ' ' || (s.s[j] >= '\t' && s.s[j] <= '\r')))
                                j++;
                        if ((e = make_str(r, s.s + i, j - i, &part)) < 0 ||
                            (e = append(r, *ret, part)) < 0)
                                return e;
                        i = j;
                }
        }
        if ((e = need_str(r, *sep, "split")) < 0)
                return e;
        if (sep->len == 0)
                return slm_jinja_fail(r, "empty separator");
        for (;;) {
                const char *hit = maxsplit >= 0 && (int64_t)ret->list->n >= maxsplit
                                      ? NULL
                                      : memmem(s.s + i, s.len - i, sep->s, sep->len);
                size_t end = hit ? (size_t)(hit - s.s) : s.len;
                if ((e = make_str(r, s.s + i, end - i, &part)) < 0 ||
                    (e = append(r, *ret, part)) < 0)
                        return e;
                if (!hit)
                        return 0;
                i = end + sep->len;
        }
}

static bool affix(SlmValue s, SlmValue a, bool start)
{
        if (a.type == SLM_VALUE_LIST) {
                for (size_t i = 0; i < a.list->n; i++)
                        if (affix(s, a.list->v[i], start))
                                return true;
                return false;
        }
        if (!is_str(a) || a.len > s.len)
                return false;
        return memcmp(start ? s.s : s.s + s.len - a.len, a.s, a.len) == 0;
}

static int join(Render *r, SlmValue seq, SlmValue sep, const char *attribute, SlmValue *ret)
{
        SlmBuf b = { .limit = slm_jinja_max_output(r) };
        SlmList *items;
        int e = slm_jinja_iterate(r, seq, &items);

        for (size_t i = 0; e >= 0 && i < items->n; i++) {
                SlmValue v = items->v[i];
                if (i)
                        slm_value_write_str(&b, sep);
                if (attribute && (e = slm_jinja_getattr(r, v, attribute, &v)) < 0)
                        break;
                slm_value_write_str(&b, v);
        }
        if (e >= 0)
                return slm_jinja_buf_value(r, &b, ret);
        slm_buf_free(&b);
        return e;
}

/* ---- methods ---- */

static const char *const str_methods[] = {
        "strip",   "lstrip",  "rstrip",  "split",      "startswith", "endswith", "replace",
        "upper",   "lower",   "title",   "capitalize", "find",       "count",    "join",
        "isdigit", "isspace", "isalpha", "isalnum",    "islower",    "isupper",  NULL
};
static const char *const dict_methods[] = { "items", "keys", "values", "get", NULL };
static const char *const loop_methods[] = { "cycle", NULL };

static bool listed(const char *const *names, const char *name)
{
        for (size_t i = 0; names[i]; i++)
                if (!strcmp(names[i], name))
                        return true;
        return false;
}

int slm_jinja_method(Render *r, SlmValue self, const char *name, SlmValue *ret)
{
        const char *const *names = self.type == SLM_VALUE_STRING ? str_methods
                                   : self.type == SLM_VALUE_DICT ? dict_methods
                                   : self.type == SLM_VALUE_OBJECT && self.kind == OBJ_LOOP
                                       ? loop_methods
                                       : NULL;
        SlmValue u = slm_value_undefined();

        u.s = name;
        *ret = u;
        if (!names || !listed(names, name))
                return 0;
        Method *m = slm_arena_alloc(slm_jinja_arena(r), sizeof(*m));
        if (!m)
                return slm_jinja_oom(r);
        *m = (Method){ self, name };
        *ret = (SlmValue){ .type = SLM_VALUE_OBJECT, .kind = OBJ_METHOD, .obj = m };
        return 0;
}

static int items_of(Render *r, SlmValue d, SlmValue *ret)
{
        int e = new_list(r, ret);

        for (size_t i = 0; e >= 0 && i < d.dict->n; i++) {
                SlmValue pair;
                if ((e = new_list(r, &pair)) < 0 || (e = append(r, pair, d.dict->e[i].key)) < 0 ||
                    (e = append(r, pair, d.dict->e[i].value)) < 0)
                        return e;
                pair.flags = SLM_VALUE_TUPLE;
                e = append(r, *ret, pair);
        }
        return e;
}

static int str_predicate(SlmValue s, const char *name)
{
        bool any = false, all = true, cased = false;

        for (size_t i = 0; i < s.len; i++) {
                char c = s.s[i];
                bool ok;
                if (!strcmp(name, "isdigit"))
                        ok = c >= '0' && c <= '9';
                else if (!strcmp(name, "isspace"))
                        ok = c == ' ' || (c >= '\t' && c <= '\r');
                else if (!strcmp(name, "isalpha"))
                        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
                else if (!strcmp(name, "isalnum"))
                        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9');
                else if (!strcmp(name, "islower"))
                        ok = !(c >= 'A' && c <= 'Z'), cased |= c >= 'a' && c <= 'z';
                else
                        ok = !(c >= 'a' && c <= 'z'), cased |= c >= 'A' && c <= 'Z';
                any = true;
                all &= ok;
        }
        if (!strcmp(name, "islower") || !strcmp(name, "isupper"))
                return all && cased;
        return any && all;
}

int slm_jinja_call_method(Render *r, SlmValue method, SlmValue *args, size_t n, const Kwargs *kw,
                          SlmValue *ret)
{
        const Method *m = method.obj;
        SlmValue s = m->self;
        const char *name = m->name;
        const SlmValue *a0 = arg(args, n, kw, 0, NULL);
        int e;

        if (s.type == SLM_VALUE_DICT) {
                if (!strcmp(name, "items"))
                        return items_of(r, s, ret);
                if (!strcmp(name, "get")) {
                        if (!a0)
                                return slm_jinja_fail(r, "get expected at least 1 argument");
                        const SlmValue *v = slm_dict_get(s.dict, *a0);
                        const SlmValue *def = arg(args, n, kw, 1, NULL);
                        *ret = v ? *v : def ? *def : slm_value_none();
                        return 0;
                }
                if ((e = new_list(r, ret)) < 0)
                        return e;
                for (size_t i = 0; i < s.dict->n; i++)
                        if ((e = append(r, *ret,
                                        name[0] == 'k' ? s.dict->e[i].key : s.dict->e[i].value)) <
                            0)
                                return e;
                return 0;
        }
        if (s.type == SLM_VALUE_OBJECT) { /* loop.cycle */
                if (n == 0)
                        return slm_jinja_fail(r, "no items for cycling given");
                SlmValue idx;
                if ((e = slm_jinja_getattr(r, s, "index0", &idx)) < 0)
                        return e;
                *ret = args[idx.i % (int64_t)n];
                return 0;
        }
        if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
                SlmValue chars = a0 ? *a0 : slm_value_none();
                if (chars.type != SLM_VALUE_NONE && (e = need_str(r, chars, name)) < 0)
                        return e;
                return strip(r, s, chars, name[0] != 'r', name[0] != 'l', ret);
        }
        if (!strcmp(name, "split")) {
                const SlmValue *mx = arg(args, n, kw, 1, "maxsplit");
                return split(r, s, arg(args, n, kw, 0, "sep"),
                             mx && mx->type == SLM_VALUE_INT ? mx->i : -1, ret);
        }
        if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
                if (!a0)
                        return slm_jinja_fail(r, "%s takes a prefix", name);
                if (!is_str(*a0) && a0->type != SLM_VALUE_LIST)
                        return need_str(r, *a0, name);
                *ret = slm_value_bool(affix(s, *a0, name[0] == 's'));
                return 0;
        }
        if (!strcmp(name, "replace")) {
                const SlmValue *old = arg(args, n, kw, 0, NULL), *new = arg(args, n, kw, 1, NULL);
                const SlmValue *count = arg(args, n, kw, 2, "count");
                if (!old || !new)
                        return slm_jinja_fail(r, "replace takes two strings");
                if ((e = need_str(r, *old, "replace")) < 0 ||
                    (e = need_str(r, *new, "replace")) < 0)
                        return e;
                return replace(r, s, *old, *new,
                               count && count->type == SLM_VALUE_INT ? count->i : -1, ret);
        }
        if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "capitalize") ||
            !strcmp(name, "title"))
                return change_case(r, s,
                                   name[0] == 'l'   ? 0
                                   : name[0] == 'u' ? 1
                                   : name[0] == 'c' ? 2
                                                    : 4,
                                   ret);
        if (!strcmp(name, "find") || !strcmp(name, "count")) {
                if (!a0 || (e = need_str(r, *a0, name)) < 0)
                        return a0 ? e : slm_jinja_fail(r, "%s takes a string", name);
                if (name[0] == 'f') {
                        const char *hit = a0->len ? memmem(s.s, s.len, a0->s, a0->len) : s.s;
                        *ret = slm_value_int(
                            hit ? (int64_t)slm_jinja_utf8_count(s.s, (size_t)(hit - s.s)) : -1);
                        return 0;
                }
                int64_t c = 0;
                if (a0->len == 0) {
                        c = (int64_t)slm_jinja_utf8_count(s.s, s.len) + 1;
                } else {
                        for (const char *p = s.s;
                             (p = memmem(p, s.len - (size_t)(p - s.s), a0->s, a0->len));
                             p += a0->len)
                                c++;
                }
                *ret = slm_value_int(c);
                return 0;
        }
        if (!strcmp(name, "join")) {
                if (!a0)
                        return slm_jinja_fail(r, "join takes an iterable");
                return join(r, *a0, s, NULL, ret);
        }
        *ret = slm_value_bool(str_predicate(s, name));
        return 0;
}

/* ---- tests ---- */

static bool is_callable(SlmValue v)
{
        return v.type == SLM_VALUE_OBJECT &&
               (v.kind == OBJ_MACRO || v.kind == OBJ_BUILTIN || v.kind == OBJ_METHOD);
}

static const char *const test_names[] = {
        "defined",  "undefined", "none",    "boolean", "true",     "false",       "integer",
        "float",    "number",    "string",  "mapping", "iterable", "sequence",    "callable",
        "sameas",   "eq",        "equalto", "==",      "ne",       "!=",          "lt",
        "lessthan", "<",         "le",      "<=",      "gt",       "greaterthan", ">",
        "ge",       ">=",        "in",      "odd",     "even",     "divisibleby", "lower",
        "upper",    "filter",    "test",    "escaped", NULL
};

bool slm_jinja_has_test(const char *name)
{
        return listed(test_names, name);
}

int slm_jinja_test(Render *r, const char *name, SlmValue v, SlmValue *args, size_t n, bool *ret)
{
        SlmValue a = n > 0 ? args[0] : slm_value_undefined();
        int c, e;

        if (!strcmp(name, "defined") || !strcmp(name, "undefined"))
                *ret = (v.type != SLM_VALUE_UNDEFINED) == (name[0] == 'd');
        else if (!strcmp(name, "none"))
                *ret = v.type == SLM_VALUE_NONE;
        else if (!strcmp(name, "boolean"))
                *ret = v.type == SLM_VALUE_BOOL;
        else if (!strcmp(name, "true") || !strcmp(name, "false"))
                *ret = v.type == SLM_VALUE_BOOL && v.b == (name[0] == 't');
        else if (!strcmp(name, "integer"))
                *ret = v.type == SLM_VALUE_INT;
        else if (!strcmp(name, "float"))
                *ret = v.type == SLM_VALUE_FLOAT;
        else if (!strcmp(name, "number"))
                *ret = v.type == SLM_VALUE_INT || v.type == SLM_VALUE_FLOAT ||
                       v.type == SLM_VALUE_BOOL;
        else if (!strcmp(name, "string"))
                *ret = v.type == SLM_VALUE_STRING;
        else if (!strcmp(name, "mapping"))
                *ret = v.type == SLM_VALUE_DICT;
        else if (!strcmp(name, "iterable") || !strcmp(name, "sequence"))
                /* Undefined iterates as empty and has a length in Jinja2 */
                *ret = v.type == SLM_VALUE_STRING || v.type == SLM_VALUE_LIST ||
                       v.type == SLM_VALUE_DICT || v.type == SLM_VALUE_UNDEFINED;
        else if (!strcmp(name, "callable"))
                *ret = is_callable(v);
        else if (!strcmp(name, "sameas"))
                *ret = v.type == a.type &&
                       (v.type == SLM_VALUE_NONE || v.type == SLM_VALUE_UNDEFINED ||
                        (v.type == SLM_VALUE_BOOL  ? v.b == a.b
                         : v.type == SLM_VALUE_INT ? v.i == a.i
                                                   : v.obj == a.obj));
        else if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "=="))
                *ret = slm_value_equal(v, a);
        else if (!strcmp(name, "ne") || !strcmp(name, "!="))
                *ret = !slm_value_equal(v, a);
        else if (!strcmp(name, "in")) {
                SlmList *items;
                if (a.type == SLM_VALUE_STRING && v.type == SLM_VALUE_STRING) {
                        *ret = v.len == 0 || memmem(a.s, a.len, v.s, v.len);
                        return 0;
                }
                if ((e = slm_jinja_iterate(r, a, &items)) < 0)
                        return e;
                *ret = false;
                for (size_t i = 0; i < items->n && !*ret; i++)
                        *ret = slm_value_equal(items->v[i], v);
        } else if (!strcmp(name, "odd") || !strcmp(name, "even") || !strcmp(name, "divisibleby")) {
                int64_t d = 2;
                if (v.type != SLM_VALUE_INT)
                        return slm_jinja_fail(r, "%s expects an integer", name);
                if (name[0] == 'd') {
                        if (a.type != SLM_VALUE_INT || a.i == 0)
                                return slm_jinja_fail(r, "divisibleby expects a non-zero integer");
                        d = a.i;
                }
                int64_t m = d == -1 ? 0 : v.i % d;
                *ret = name[0] == 'o' ? m != 0 : m == 0;
        } else if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
                bool lower = name[0] == 'l';
                *ret =
                    v.type == SLM_VALUE_STRING && str_predicate(v, lower ? "islower" : "isupper");
        } else if (!strcmp(name, "filter") || !strcmp(name, "test")) {
                *ret = v.type == SLM_VALUE_STRING &&
                       (name[0] == 'f' ? slm_jinja_has_filter(v.s) : slm_jinja_has_test(v.s));
        } else if (!strcmp(name, "escaped")) {
                *ret = false;
        } else {
                if (slm_jinja_compare(r, v, a, &c) < 0)
                        return -EINVAL;
                if (name[0] == 'l' || name[0] == '<')
                        *ret = (name[1] == 'e' || name[1] == '=') ? c <= 0 : c < 0;
                else
                        *ret = (name[1] == 'e' || name[1] == '=') ? c >= 0 : c > 0;
        }
        return 0;
}

/* ---- sorting (stable, as Python's) ---- */

typedef struct {
        SlmValue key, item;
} SortItem;

static int fold(Render *r, SlmValue v, bool case_sensitive, SlmValue *ret)
{
        if (case_sensitive || v.type != SLM_VALUE_STRING) {
                *ret = v;
                return 0;
        }
        return change_case(r, v, 0, ret);
}

static int merge_sort(Render *r, SortItem *v, SortItem *tmp, size_t n, bool reverse)
{
        int c, e;

        if (n < 2)
                return 0;
        size_t h = n / 2;
        if ((e = merge_sort(r, v, tmp, h, reverse)) < 0 ||
            (e = merge_sort(r, v + h, tmp, n - h, reverse)) < 0)
                return e;
        size_t i = 0, j = h, k = 0;
        while (i < h && j < n) {
                if (slm_jinja_compare(r, v[j].key, v[i].key, &c) < 0)
                        return -EINVAL;
                bool take_right = reverse ? c > 0 : c < 0;
                tmp[k++] = take_right ? v[j++] : v[i++];
        }
        while (i < h)
                tmp[k++] = v[i++];
        while (j < n)
                tmp[k++] = v[j++];
        memcpy(v, tmp, n * sizeof(*v));
        return 0;
}

/* Items of @seq sorted by @attribute (or themselves), as a new list. */
/* @by: for dictsort, 0 to sort pairs by key, 1 by value; -1 otherwise */
static int sorted(Render *r, SlmValue seq, const char *attribute, bool case_sensitive, bool reverse,
                  int by, SlmValue *ret)
{
        SlmList *items;
        int e;

        if (seq.type == SLM_VALUE_DICT) {
                SlmValue pairs;
                if ((e = items_of(r, seq, &pairs)) < 0)
                        return e;
                seq = pairs;
        }
        if ((e = slm_jinja_iterate(r, seq, &items)) < 0)
                return e;
        SortItem *v = slm_arena_alloc(slm_jinja_arena(r), (items->n + 1) * 2 * sizeof(*v));
        if (!v)
                return slm_jinja_oom(r);
        for (size_t i = 0; i < items->n; i++) {
                SlmValue k = items->v[i];
                if (by >= 0)
                        k = k.list->v[by];
                if (attribute && (e = slm_jinja_getattr(r, k, attribute, &k)) < 0)
                        return e;
                if ((e = fold(r, k, case_sensitive, &k)) < 0)
                        return e;
                v[i] = (SortItem){ k, items->v[i] };
        }
        if ((e = merge_sort(r, v, v + items->n + 1, items->n, reverse)) < 0 ||
            (e = new_list(r, ret)) < 0)
                return e;
        for (size_t i = 0; i < items->n; i++)
                if ((e = append(r, *ret, v[i].item)) < 0)
                        return e;
        return 0;
}

/* ---- filters ---- */

static int tojson(Render *r, SlmValue v, const SlmValue *indent, SlmValue *ret)
{
        SlmBuf b = { .limit = slm_jinja_max_output(r) };
        int ind =
            indent && indent->type == SLM_VALUE_INT ? (int)(indent->i > 64 ? 64 : indent->i) : 0;
        int e = slm_json_write(&b, v, ind);

        if (e == -EINVAL)
                e = slm_jinja_fail(r, "Object of type %s is not JSON serializable",
                                   slm_value_type_name(v));
        else if (e == -ELOOP)
                e = slm_jinja_too_big(r, "tojson: nested too deeply");
        else
                return slm_jinja_buf_value(r, &b, ret);
        slm_buf_free(&b);
        return e;
}

static int length(Render *r, SlmValue v, SlmValue *ret)
{
        switch (v.type) {
        case SLM_VALUE_STRING:
                *ret = slm_value_int((int64_t)slm_jinja_utf8_count(v.s, v.len));
                return 0;
        case SLM_VALUE_LIST:
                *ret = slm_value_int((int64_t)v.list->n);
                return 0;
        case SLM_VALUE_DICT:
                *ret = slm_value_int((int64_t)v.dict->n);
                return 0;
        case SLM_VALUE_UNDEFINED:
                *ret = slm_value_int(0);
                return 0;
        case SLM_VALUE_OBJECT:
                if (v.kind == OBJ_NAMESPACE) {
                        *ret = slm_value_int((int64_t)((SlmDict *)v.obj)->n);
                        return 0;
                }
                /* fall through */
        default:
                return slm_jinja_fail(r, "object of type '%s' has no len()",
                                      slm_value_type_name(v));
        }
}

/* select, reject, selectattr, rejectattr */
static int select_items(Render *r, SlmValue seq, bool attr, bool keep, SlmValue *args, size_t n,
                        SlmValue *ret)
{
        SlmList *items;
        const char *attribute = NULL, *test = NULL;
        size_t first = 0;
        int e;

        if (attr) {
                if (n < 1 || !is_str(args[0]))
                        return slm_jinja_fail(r,
                                              "selectattr and rejectattr take an attribute name");
                attribute = args[0].s;
                first = 1;
        }
        if (n > first) {
                if (!is_str(args[first]))
                        return slm_jinja_fail(r, "a test is named by a string");
                test = args[first].s;
                if (!slm_jinja_has_test(test))
                        return slm_jinja_fail(r, "no test named '%s'", test);
                first++;
        }
        if ((e = slm_jinja_iterate(r, seq, &items)) < 0 || (e = new_list(r, ret)) < 0)
                return e;
        for (size_t i = 0; i < items->n; i++) {
                SlmValue v = items->v[i];
                bool t;
                if (attribute) {
                        if (v.type == SLM_VALUE_UNDEFINED)
                                continue;
                        if ((e = slm_jinja_getattr(r, v, attribute, &v)) < 0)
                                return e;
                }
                if (test) {
                        if ((e = slm_jinja_test(r, test, v, args + first, n - first, &t)) < 0)
                                return e;
                } else {
                        t = slm_value_truthy(v);
                }
                if (t == keep && (e = append(r, *ret, items->v[i])) < 0)
                        return e;
        }
        return 0;
}

static int map_items(Render *r, SlmValue seq, SlmValue *args, size_t n, const Kwargs *kw,
                     SlmValue *ret)
{
        const SlmValue *attribute = arg(NULL, 0, kw, 0, "attribute");
        const SlmValue *def = arg(NULL, 0, kw, 0, "default");
        SlmList *items;
        int e;

        if (!attribute && (n < 1 || !is_str(args[0])))
                return slm_jinja_fail(r, "map takes a filter name or attribute=");
        if (attribute && !is_str(*attribute))
                return slm_jinja_fail(r, "map's attribute is a string");
        if (!attribute && !slm_jinja_has_filter(args[0].s))
                return slm_jinja_fail(r, "no filter named '%s'", args[0].s);
        if ((e = slm_jinja_iterate(r, seq, &items)) < 0 || (e = new_list(r, ret)) < 0)
                return e;
        for (size_t i = 0; i < items->n; i++) {
                SlmValue v = items->v[i];
                if (attribute) {
                        if ((e = slm_jinja_getattr(r, v, attribute->s, &v)) < 0)
                                return e;
                        if (v.type == SLM_VALUE_UNDEFINED && def)
                                v = *def;
                } else {
                        Kwargs none = { 0 };
                        if ((e = slm_jinja_filter(r, args[0].s, v, args + 1, n - 1, &none, &v)) < 0)
                                return e;
                }
                if ((e = append(r, *ret, v)) < 0)
                        return e;
        }
        return 0;
}

static int to_int(Render *r, SlmValue v, SlmValue def, SlmValue *ret)
{
        (void)r;
        switch (v.type) {
        case SLM_VALUE_INT:
                *ret = v;
                return 0;
        case SLM_VALUE_BOOL:
                *ret = slm_value_int(v.b);
                return 0;
        case SLM_VALUE_FLOAT:
                if (isfinite(v.f) && fabs(v.f) < 9.2e18) {
                        *ret = slm_value_int((int64_t)v.f);
                        return 0;
                }
                break;
        case SLM_VALUE_STRING: {
                char *end;
                errno = 0;
                long long i = strtoll(v.s, &end, 10);
                if (v.len && !errno && *end == 0) {
                        *ret = slm_value_int(i);
                        return 0;
                }
                double f = strtod(v.s, &end);
                if (v.len && *end == 0 && isfinite(f) && fabs(f) < 9.2e18) {
                        *ret = slm_value_int((int64_t)f);
                        return 0;
                }
                break;
        }
        default:
                break;
        }
        *ret = def;
        return 0;
}

static int to_float(SlmValue v, SlmValue def, SlmValue *ret)
{
        char *end;

        switch (v.type) {
        case SLM_VALUE_INT:
                *ret = slm_value_float((double)v.i);
                return 0;
        case SLM_VALUE_BOOL:
                *ret = slm_value_float(v.b);
                return 0;
        case SLM_VALUE_FLOAT:
                *ret = v;
                return 0;
        case SLM_VALUE_STRING: {
                double f = strtod(v.s, &end);
                if (v.len && *end == 0) {
                        *ret = slm_value_float(f);
                        return 0;
                }
                break;
        }
        default:
                break;
        }
        *ret = def;
        return 0;
}

static int indent(Render *r, SlmValue s, SlmValue *args, size_t n, const Kwargs *kw, SlmValue *ret)
{
        const SlmValue *w = arg(args, n, kw, 0, "width");
        bool first = bool_arg(args, n, kw, 1, "first"), blank = bool_arg(args, n, kw, 2, "blank");
        SlmBuf pad = { 0 }, b = { .limit = slm_jinja_max_output(r) };
        int e;

        if (w && w->type == SLM_VALUE_STRING)
                slm_buf_put(&pad, w->s, w->len);
        else
                for (int64_t i = 0;
                     i < (w && w->type == SLM_VALUE_INT ? (w->i > 256 ? 256 : w->i) : 4); i++)
                        slm_buf_put(&pad, " ", 1);
        size_t i = 0;
        for (bool line0 = true; i <= s.len; line0 = false) {
                const char *nl = memchr(s.s + i, '\n', s.len - i);
                size_t end = nl ? (size_t)(nl - s.s) : s.len;
                bool empty = end == i;
                if ((!line0 || first) && (blank || !empty))
                        slm_buf_put(&b, pad.s ? pad.s : "", pad.n);
                slm_buf_put(&b, s.s + i, end - i);
                if (!nl)
                        break;
                slm_buf_put(&b, "\n", 1);
                i = end + 1;
        }
        slm_buf_free(&pad);
        return slm_jinja_buf_value(r, &b, ret);
        return e;
}

/* What Jinja's escape writes for a byte, or NULL: the byte itself. */
static const char *html_byte(unsigned char c, char tmp[8], void *data)
{
        (void)tmp;
        (void)data;
        switch (c) {
        case '&':
                return "&amp;";
        case '<':
                return "&lt;";
        case '>':
                return "&gt;";
        case '"':
                return "&#34;";
        case '\'':
                return "&#39;";
        default:
                return NULL;
        }
}

static int html_escape(Render *r, SlmValue s, SlmValue *ret)
{
        SlmBuf b = { .limit = slm_jinja_max_output(r) };

        slm_buf_put_escaped(&b, s.s, s.len, html_byte, NULL);
        return slm_jinja_buf_value(r, &b, ret);
}

static const char *const filter_names[] = {
        "abs",    "attr",   "capitalize", "count",      "d",           "default", "dictsort",
        "e",      "escape", "first",      "float",      "forceescape", "indent",  "int",
        "items",  "join",   "last",       "length",     "list",        "lower",   "map",
        "max",    "min",    "reject",     "rejectattr", "replace",     "reverse", "round",
        "safe",   "select", "selectattr", "sort",       "string",      "sum",     "title",
        "tojson", "trim",   "unique",     "upper",      "wordcount",   NULL
};

bool slm_jinja_has_filter(const char *name)
{
        return listed(filter_names, name);
}

int slm_jinja_filter(Render *r, const char *name, SlmValue v, SlmValue *args, size_t n,
                     const Kwargs *kw, SlmValue *ret)
{
        SlmValue s;
        int e;

        /* the filters that work on str(value) */
        if (!strcmp(name, "trim") || !strcmp(name, "upper") || !strcmp(name, "lower") ||
            !strcmp(name, "capitalize") || !strcmp(name, "title") || !strcmp(name, "replace") ||
            !strcmp(name, "indent") || !strcmp(name, "wordcount") || !strcmp(name, "string") ||
            !strcmp(name, "e") || !strcmp(name, "escape") || !strcmp(name, "forceescape")) {
                if ((e = slm_jinja_to_string(r, v, &s)) < 0)
                        return e;
                if (!strcmp(name, "string")) {
                        *ret = s;
                        return 0;
                }
                if (!strcmp(name, "trim")) {
                        const SlmValue *chars = arg(args, n, kw, 0, "chars");
                        return strip(r, s, chars ? *chars : slm_value_none(), true, true, ret);
                }
                if (!strcmp(name, "replace")) {
                        const SlmValue *count = arg(args, n, kw, 2, "count");
                        SlmValue old = str_arg(args, n, kw, 0, "old", ""),
                                 new = str_arg(args, n, kw, 1, "new", "");
                        if ((e = slm_jinja_to_string(r, old, &old)) < 0 ||
                            (e = slm_jinja_to_string(r, new, &new)) < 0)
                                return e;
                        return replace(r, s, old, new,
                                       count && count->type == SLM_VALUE_INT ? count->i : -1, ret);
                }
                if (!strcmp(name, "indent"))
                        return indent(r, s, args, n, kw, ret);
                if (!strcmp(name, "wordcount")) {
                        SlmValue words;
                        if ((e = split(r, s, NULL, -1, &words)) < 0)
                                return e;
                        *ret = slm_value_int((int64_t)words.list->n);
                        return 0;
                }
                if (name[0] == 'e' || name[0] == 'f')
                        return html_escape(r, s, ret);
                return change_case(r, s,
                                   name[0] == 'l'   ? 0
                                   : name[0] == 'u' ? 1
                                   : name[0] == 'c' ? 2
                                                    : 3,
                                   ret);
        }
        if (!strcmp(name, "tojson"))
                return tojson(r, v, arg(args, n, kw, 0, "indent"), ret);
        if (!strcmp(name, "length") || !strcmp(name, "count"))
                return length(r, v, ret);
        if (!strcmp(name, "safe")) {
                *ret = v;
                return 0;
        }
        if (!strcmp(name, "default") || !strcmp(name, "d")) {
                const SlmValue *def = arg(args, n, kw, 0, "default_value");
                bool boolean = bool_arg(args, n, kw, 1, "boolean");
                bool use = v.type == SLM_VALUE_UNDEFINED || (boolean && !slm_value_truthy(v));
                *ret = use ? (def ? *def : slm_value_str_static("", 0)) : v;
                return 0;
        }
        if (!strcmp(name, "join")) {
                const SlmValue *attribute = arg(args, n, kw, 1, "attribute");
                return join(r, v, str_arg(args, n, kw, 0, "d", ""),
                            attribute && is_str(*attribute) ? attribute->s : NULL, ret);
        }
        if (!strcmp(name, "items")) {
                if (v.type == SLM_VALUE_UNDEFINED)
                        return new_list(r, ret);
                if (v.type != SLM_VALUE_DICT)
                        return slm_jinja_fail(r, "Can only get item pairs from a mapping.");
                return items_of(r, v, ret);
        }
        if (!strcmp(name, "list")) {
                SlmList *items;
                if ((e = slm_jinja_iterate(r, v, &items)) < 0 || (e = new_list(r, ret)) < 0)
                        return e;
                for (size_t i = 0; i < items->n; i++)
                        if ((e = append(r, *ret, items->v[i])) < 0)
                                return e;
                return 0;
        }
        if (!strcmp(name, "first") || !strcmp(name, "last")) {
                SlmList *items;
                if ((e = slm_jinja_iterate(r, v, &items)) < 0)
                        return e;
                *ret = items->n == 0    ? slm_value_undefined()
                       : name[0] == 'f' ? items->v[0]
                                        : items->v[items->n - 1];
                return 0;
        }
        if (!strcmp(name, "reverse")) {
                if (v.type == SLM_VALUE_STRING) {
                        SlmBuf b = { .limit = slm_jinja_max_output(r) };
                        for (size_t i = v.len; i > 0;) {
                                size_t k = 1;
                                while (k < i && ((uint8_t)v.s[i - k] & 0xC0) == 0x80)
                                        k++;
                                slm_buf_put(&b, v.s + i - k, k);
                                i -= k;
                        }
                        return slm_jinja_buf_value(r, &b, ret);
                }
                SlmList *items;
                if ((e = slm_jinja_iterate(r, v, &items)) < 0 || (e = new_list(r, ret)) < 0)
                        return e;
                for (size_t i = items->n; i > 0; i--)
                        if ((e = append(r, *ret, items->v[i - 1])) < 0)
                                return e;
                return 0;
        }
        if (!strcmp(name, "select") || !strcmp(name, "reject") || !strcmp(name, "selectattr") ||
            !strcmp(name, "rejectattr"))
                return select_items(r, v, strstr(name, "attr") != NULL, name[0] == 's', args, n,
                                    ret);
        if (!strcmp(name, "map"))
                return map_items(r, v, args, n, kw, ret);
        if (!strcmp(name, "attr")) {
                if (n < 1 || !is_str(args[0]))
                        return slm_jinja_fail(r, "attr takes a name");
                return slm_jinja_getattr(r, v, args[0].s, ret);
        }
        if (!strcmp(name, "int")) {
                const SlmValue *def = arg(args, n, kw, 0, "default");
                return to_int(r, v, def ? *def : slm_value_int(0), ret);
        }
        if (!strcmp(name, "float")) {
                const SlmValue *def = arg(args, n, kw, 0, "default");
                return to_float(v, def ? *def : slm_value_float(0), ret);
        }
        if (!strcmp(name, "abs")) {
                if (v.type == SLM_VALUE_INT && v.i != INT64_MIN)
                        *ret = slm_value_int(v.i < 0 ? -v.i : v.i);
                else if (v.type == SLM_VALUE_FLOAT)
                        *ret = slm_value_float(fabs(v.f));
                else if (v.type == SLM_VALUE_BOOL)
                        *ret = slm_value_int(v.b);
                else
                        return slm_jinja_fail(r, "bad operand type for abs(): '%s'",
                                              slm_value_type_name(v));
                return 0;
        }
        if (!strcmp(name, "round")) {
                const SlmValue *prec = arg(args, n, kw, 0, "precision");
                SlmValue method = str_arg(args, n, kw, 1, "method", "common");
                double f;
                if (v.type == SLM_VALUE_INT || v.type == SLM_VALUE_BOOL)
                        f = v.type == SLM_VALUE_INT ? (double)v.i : v.b;
                else if (v.type == SLM_VALUE_FLOAT)
                        f = v.f;
                else
                        return slm_jinja_fail(r, "round expects a number");
                int p =
                    prec && prec->type == SLM_VALUE_INT ? (int)(prec->i > 15 ? 15 : prec->i) : 0;
                double m = pow(10, p), x = f * m;
                x = !strcmp(method.s, "floor")  ? floor(x)
                    : !strcmp(method.s, "ceil") ? ceil(x)
                                                : nearbyint(x);
                *ret = slm_value_float(x / m);
                return 0;
        }
        if (!strcmp(name, "sort") || !strcmp(name, "dictsort")) {
                bool dict = name[0] == 'd';
                bool cs = bool_arg(args, n, kw, dict ? 0 : 1, "case_sensitive");
                bool rev = bool_arg(args, n, kw, dict ? 2 : 0, "reverse");
                const SlmValue *attribute = dict ? NULL : arg(args, n, kw, 2, "attribute");
                int by = 0;
                if (dict) {
                        if (v.type != SLM_VALUE_DICT)
                                return slm_jinja_fail(r, "dictsort expects a mapping");
                        SlmValue b = str_arg(args, n, kw, 1, "by", "key");
                        by = !strcmp(b.s, "value");
                }
                return sorted(r, v, attribute && is_str(*attribute) ? attribute->s : NULL, cs, rev,
                              dict ? by : -1, ret);
        }
        if (!strcmp(name, "unique")) {
                SlmList *items;
                bool cs = bool_arg(args, n, kw, 0, "case_sensitive");
                const SlmValue *attribute = arg(args, n, kw, 1, "attribute");
                SlmValue seen;
                if ((e = slm_jinja_iterate(r, v, &items)) < 0 || (e = new_list(r, ret)) < 0 ||
                    (e = new_list(r, &seen)) < 0)
                        return e;
                for (size_t i = 0; i < items->n; i++) {
                        SlmValue k = items->v[i];
                        bool dup = false;
                        if (attribute && is_str(*attribute) &&
                            (e = slm_jinja_getattr(r, k, attribute->s, &k)) < 0)
                                return e;
                        if ((e = fold(r, k, cs, &k)) < 0)
                                return e;
                        for (size_t j = 0; j < seen.list->n && !dup; j++)
                                dup = slm_value_equal(seen.list->v[j], k);
                        if (!dup && ((e = append(r, seen, k)) < 0 ||
                                     (e = append(r, *ret, items->v[i])) < 0))
                                return e;
                }
                return 0;
        }
        if (!strcmp(name, "min") || !strcmp(name, "max")) {
                SlmValue sl;
                bool cs = bool_arg(args, n, kw, 0, "case_sensitive");
                const SlmValue *attribute = arg(args, n, kw, 1, "attribute");
                if ((e = sorted(r, v, attribute && is_str(*attribute) ? attribute->s : NULL, cs,
                                false, -1, &sl)) < 0)
                        return e;
                *ret = sl.list->n == 0  ? slm_value_undefined()
                       : name[1] == 'i' ? sl.list->v[0]
                                        : sl.list->v[sl.list->n - 1];
                return 0;
        }
        if (!strcmp(name, "sum")) {
                SlmList *items;
                const SlmValue *attribute = arg(args, n, kw, 0, "attribute");
                const SlmValue *start = arg(args, n, kw, 1, "start");
                SlmValue acc = start ? *start : slm_value_int(0);
                if ((e = slm_jinja_iterate(r, v, &items)) < 0)
                        return e;
                for (size_t i = 0; i < items->n; i++) {
                        SlmValue x = items->v[i];
                        if (attribute && is_str(*attribute) &&
                            (e = slm_jinja_getattr(r, x, attribute->s, &x)) < 0)
                                return e;
                        bool fl = acc.type == SLM_VALUE_FLOAT || x.type == SLM_VALUE_FLOAT;
                        if ((acc.type != SLM_VALUE_INT && acc.type != SLM_VALUE_FLOAT) ||
                            (x.type != SLM_VALUE_INT && x.type != SLM_VALUE_FLOAT))
                                return slm_jinja_fail(r, "sum adds numbers");
                        if (fl)
                                acc = slm_value_float(
                                    (acc.type == SLM_VALUE_FLOAT ? acc.f : (double)acc.i) +
                                    (x.type == SLM_VALUE_FLOAT ? x.f : (double)x.i));
                        else if (__builtin_add_overflow(acc.i, x.i, &acc.i))
                                return slm_jinja_fail(r, "integer overflow");
                }
                *ret = acc;
                return 0;
        }
        return slm_jinja_fail(r, "no filter named '%s'", name);
}

/* ---- globals ---- */

static const char *const global_names[] = { "raise_exception", "strftime_now", "namespace",
                                            "range",           "dict",         NULL };

bool slm_jinja_global(const char *name, SlmValue *ret)
{
        for (size_t i = 0; global_names[i]; i++) {
                if (!strcmp(global_names[i], name)) {
                        *ret = (SlmValue){ .type = SLM_VALUE_OBJECT,
                                           .kind = OBJ_BUILTIN,
                                           .obj = (void *)global_names[i] };
                        return true;
                }
        }
        return false;
}

int slm_jinja_call_builtin(Render *r, SlmValue fn, SlmValue *args, size_t n, const Kwargs *kw,
                           SlmValue *ret)
{
        const char *name = fn.obj;
        SlmArena *a = slm_jinja_arena(r);
        int e;

        if (!strcmp(name, "raise_exception"))
                return slm_jinja_raise(r, n ? args[0] : slm_value_str_static("", 0));
        if (!strcmp(name, "strftime_now")) {
                char out[256];
                int64_t now;
                bool utc;
                struct tm tm;
                if (n < 1 || !is_str(args[0]))
                        return slm_jinja_fail(r, "strftime_now takes a format string");
                slm_jinja_now(r, &now, &utc);
                time_t t = (time_t)now;
                if (!(utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)))
                        return slm_jinja_fail(r, "strftime_now: bad time");
                size_t len = args[0].len ? strftime(out, sizeof(out), args[0].s, &tm) : 0;
                if (args[0].len && len == 0)
                        return slm_jinja_fail(r, "strftime_now: result too long");
                return make_str(r, out, len, ret);
        }
        if (!strcmp(name, "namespace") || !strcmp(name, "dict")) {
                SlmValue d = slm_value_new_dict(a);
                if (d.type != SLM_VALUE_DICT)
                        return slm_jinja_oom(r);
                for (size_t i = 0; i < n; i++) {
                        if (args[i].type != SLM_VALUE_DICT)
                                return slm_jinja_fail(r, "%s takes a mapping or keywords", name);
                        for (size_t k = 0; k < args[i].dict->n; k++)
                                if (slm_dict_set(a, d.dict, args[i].dict->e[k].key,
                                                 args[i].dict->e[k].value) < 0)
                                        return slm_jinja_oom(r);
                }
                for (size_t i = 0; i < kw->n_kw; i++) {
                        SlmValue key =
                            slm_value_str_static(kw->kw_names[i], strlen(kw->kw_names[i]));
                        if (slm_dict_set(a, d.dict, key, kw->kw_vals[i]) < 0)
                                return slm_jinja_oom(r);
                }
                if (name[0] == 'd')
                        *ret = d;
                else
                        *ret = (SlmValue){ .type = SLM_VALUE_OBJECT,
                                           .kind = OBJ_NAMESPACE,
                                           .obj = d.dict };
                return 0;
        }
        /* range */
        int64_t v[3] = { 0, 0, 1 };
        if (n < 1 || n > 3)
                return slm_jinja_fail(r, "range expected 1 to 3 arguments");
        for (size_t i = 0; i < n; i++) {
                if (args[i].type != SLM_VALUE_INT)
                        return slm_jinja_fail(r, "range takes integers");
                v[n == 1 ? 1 : i] = args[i].i;
        }
        if (v[2] == 0)
                return slm_jinja_fail(r, "range() arg 3 must not be zero");
        if ((e = new_list(r, ret)) < 0)
                return e;
        for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2]) {
                if (ret->list->n >= MAX_RANGE)
                        return slm_jinja_too_big(r, "range() longer than allowed");
                if ((e = append(r, *ret, slm_value_int(i))) < 0)
                        return e;
                if ((v[2] > 0 && i > INT64_MAX - v[2]) || (v[2] < 0 && i < INT64_MIN - v[2]))
                        break;
        }
        return 0;
}
