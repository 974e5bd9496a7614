/* SPDX-License-Identifier: MIT */
/*
 * JSON Schema to GBNF. Every schema becomes one rule; the text has no
 * whitespace around the root value and a little inside (a space, or a
 * newline and indentation), so the model can lay out its answer but not
 * pad it without end. Objects write their properties in the schema's
 * order, the required ones always, the others when the model chooses.
 */
#include "grammar.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "value.h"

#define MAX_NEST  32
#define MAX_RULES 4096
#define MAX_COUNT 1000 /* items, lengths */

typedef struct {
        SlmArena *a;
        SlmValue root;
        SlmBuf out; /* the rules */
        int n_rules, first_rule;
        SlmError *err;
        SlmDict *refs; /* "#/$defs/x" -> rule number */
} Ctx;

static const char *const ignored[] = { "title",    "description", "$schema",  "$id",
                                       "$comment", "default",     "examples", "deprecated",
                                       "readOnly", "writeOnly",   "$defs",    "definitions",
                                       NULL };

static int refuse(Ctx *c, const char *what)
{
        return slm_error_set(c->err, -EINVAL, "json-schema: %s", what);
}

static const SlmValue *get(SlmValue schema, const char *key)
{
        return schema.type == SLM_VALUE_DICT ? slm_dict_get_str(schema.dict, key) : NULL;
}

static int new_rule(Ctx *c)
{
        return c->n_rules - c->first_rule < MAX_RULES ? c->n_rules++ : -1;
}

/* A JSON text as a GBNF literal: "\"kitchen\"" */
static void literal(SlmBuf *b, const char *s, size_t n)
{
        slm_buf_put(b, "\"", 1);
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];
                if (ch == '"' || ch == '\\') {
                        slm_buf_put(b, "\\", 1);
                        slm_buf_put(b, s + i, 1);
                } else if (ch < 0x20) {
                        slm_buf_printf(b, "\\x%02X", ch);
                } else {
                        slm_buf_put(b, s + i, 1);
                }
        }
        slm_buf_put(b, "\"", 1);
}

static int json_literal(Ctx *c, SlmBuf *b, SlmValue v)
{
        SlmBuf j = { 0 };
        int r = slm_json_write_compact(&j, v);

        if (r == 0)
                literal(b, j.s, j.n);
        slm_buf_free(&j);
        return r < 0 ? refuse(c, "enum and const take JSON values") : 0;
}

/* Digit strings lo..hi of the same length, without a sign. */
static void digits_range(SlmBuf *b, const char *lo, const char *hi, size_t n)
{
        bool full = true;

        if (n == 0)
                return;
        for (size_t i = 0; i < n && full; i++)
                full = lo[i] == '0' && hi[i] == '9';
        if (full) {
                slm_buf_printf(b, "[0-9]{%zu}", n);
                return;
        }
        if (n == 1) {
                slm_buf_printf(b, "[%c-%c]", lo[0], hi[0]);
                return;
        }
        if (lo[0] == hi[0]) {
                slm_buf_printf(b, "\"%c\" ", lo[0]);
                digits_range(b, lo + 1, hi + 1, n - 1);
                return;
        }
        char nines[24], zeros[24];
        memset(nines, '9', n - 1);
        memset(zeros, '0', n - 1);
        slm_buf_puts(b, "(");
        slm_buf_printf(b, "\"%c\" (", lo[0]);
        digits_range(b, lo + 1, nines, n - 1);
        slm_buf_puts(b, ")");
        if (lo[0] + 1 <= hi[0] - 1)
                slm_buf_printf(b, " | [%c-%c] [0-9]{%zu}", lo[0] + 1, hi[0] - 1, n - 1);
        slm_buf_printf(b, " | \"%c\" (", hi[0]);
        digits_range(b, zeros, hi + 1, n - 1);
        slm_buf_puts(b, "))");
}

/* The decimal integers @lo..@hi (at most 18 digits), as alternatives by length. */
static void uint_range(SlmBuf *b, uint64_t lo, uint64_t hi)
{
        bool first = true;
        uint64_t p = 1;

        slm_buf_puts(b, "(");
        for (int len = 1; len <= 18; len++, p *= 10) {
                uint64_t bottom = len == 1 ? 0 : p, top = p * 10 - 1;
                if (hi < bottom)
                        break;
                if (lo > top)
                        continue;
                char sa[24], sz[24];
                snprintf(sa, sizeof(sa), "%llu", (unsigned long long)(lo > bottom ? lo : bottom));
                snprintf(sz, sizeof(sz), "%llu", (unsigned long long)(hi < top ? hi : top));
                if (!first)
                        slm_buf_puts(b, " | ");
                first = false;
                digits_range(b, sa, sz, strlen(sa));
        }
        slm_buf_puts(b, ")");
}

#define MAX_18 999999999999999999ULL

/* @from and up, to 18 digits */
static void uint_at_least(SlmBuf *b, uint64_t from)
{
        if (from == 0)
                slm_buf_puts(b, "([0-9] | [1-9] [0-9]{1,17})");
        else if (from == 1)
                slm_buf_puts(b, "([1-9] [0-9]{0,17})");
        else
                uint_range(b, from, MAX_18);
}

/* Integers from @lo to @hi (INT64_MIN / INT64_MAX: no bound), at most 18 digits. */
static void int_range(SlmBuf *b, int64_t lo, int64_t hi)
{
        bool alt = false;

        slm_buf_puts(b, "(");
        if (lo < 0) {
                uint64_t m_lo = hi < 0 ? (uint64_t)(-hi) : 1;
                slm_buf_puts(b, "\"-\" ");
                if (lo == INT64_MIN)
                        uint_at_least(b, m_lo);
                else
                        uint_range(b, m_lo, (uint64_t)(-lo));
                alt = true;
        }
        if (hi >= 0) {
                uint64_t from = lo > 0 ? (uint64_t)lo : 0;
                if (alt)
                        slm_buf_puts(b, " | ");
                if (hi == INT64_MAX)
                        uint_at_least(b, from);
                else
                        uint_range(b, from, (uint64_t)hi);
        }
        slm_buf_puts(b, ")");
}

static int schema_rule(Ctx *c, SlmValue s, int depth, int *ret);
static int bound(Ctx *c, SlmValue s, const char *key, int64_t def, int64_t *ret);

#define FRAC_ANY     "(\".\" [0-9]{1,16})?"
#define FRAC_ZERO    "(\".\" \"0\"{1,16})?"
#define FRAC_NONZERO "\".\" \"0\"{0,15} [1-9] [0-9]{0,15}"

/*
 * Decimal magnitudes from @a to @top (-1: no bound), each end left out when
 * its flag says so; written without an exponent. False when none is left.
 */
static bool magnitudes(SlmBuf *b, uint64_t a, bool ax, int64_t top, bool tx)
{
        if (top >= 0 && a == (uint64_t)top) {
                if (ax || tx)
                        return false;
                slm_buf_printf(b, "\"%llu\" " FRAC_ZERO, (unsigned long long)a);
                return true;
        }
        slm_buf_printf(b, "(\"%llu\" %s", (unsigned long long)a, ax ? FRAC_NONZERO : FRAC_ANY);
        if (top < 0) {
                slm_buf_puts(b, " | ");
                uint_at_least(b, a + 1);
                slm_buf_puts(b, " " FRAC_ANY);
        } else if (a + 1 <= (uint64_t)top - 1) {
                slm_buf_puts(b, " | ");
                uint_range(b, a + 1, (uint64_t)top - 1);
                slm_buf_puts(b, " " FRAC_ANY);
        }
        if (top >= 0 && !tx)
                slm_buf_printf(b, " | \"%llu\" " FRAC_ZERO, (unsigned long long)top);
        slm_buf_puts(b, ")");
        return true;
}

/* A number between whole-number bounds, inclusive or exclusive, without an exponent. */
static int number_range(Ctx *c, SlmBuf *b, SlmValue s)
{
        int64_t lo, hi, xlo, xhi;
        int r;

        if ((r = bound(c, s, "minimum", INT64_MIN, &lo)) < 0 ||
            (r = bound(c, s, "maximum", INT64_MAX, &hi)) < 0 ||
            (r = bound(c, s, "exclusiveMinimum", INT64_MIN, &xlo)) < 0 ||
            (r = bound(c, s, "exclusiveMaximum", INT64_MAX, &xhi)) < 0)
                return refuse(c, "bounds on a number must be whole numbers");
        bool lox = false, hix = false;
        if (xlo != INT64_MIN && (lo == INT64_MIN || xlo >= lo)) {
                lo = xlo;
                lox = true;
        }
        if (xhi != INT64_MAX && (hi == INT64_MAX || xhi <= hi)) {
                hi = xhi;
                hix = true;
        }
        if ((lo != INT64_MIN && lo < -999999999999999999LL) ||
            (hi != INT64_MAX && hi > 999999999999999999LL))
                return refuse(c, "number bounds beyond 18 digits");
        if (lo != INT64_MIN && hi != INT64_MAX && (lo > hi || (lo == hi && (lox || hix))))
                return refuse(c, "no number lies within the bounds");
        SlmBuf alt = { 0 };
        bool any = false;
        slm_buf_puts(b, "(");
        if (lo < 0) {
                /* the negatives: magnitudes from what hi leaves up to -lo */
                uint64_t from = hi < 0 ? (uint64_t)(-hi) : 0;
                bool fx = hi < 0 ? hix : false;
                if (hi >= 0 && from == 0)
                        fx = true; /* -0 is 0: the non-negatives below have it */
                slm_buf_puts(&alt, "\"-\" ");
                if (magnitudes(&alt, from, fx, lo == INT64_MIN ? -1 : -lo, lox)) {
                        slm_buf_put(b, alt.s, alt.n);
                        any = true;
                }
        }
        if (hi >= 0) {
                uint64_t from = lo > 0 ? (uint64_t)lo : 0;
                SlmBuf pos = { 0 };
                if (magnitudes(&pos, from, lo >= 0 && lox, hi == INT64_MAX ? -1 : hi, hix)) {
                        if (any)
                                slm_buf_puts(b, " | ");
                        slm_buf_put(b, pos.s, pos.n);
                        any = true;
                }
                slm_buf_free(&pos);
        }
        slm_buf_free(&alt);
        slm_buf_puts(b, ")");
        return any ? 0 : refuse(c, "no number lies within the bounds");
}

static int bound(Ctx *c, SlmValue s, const char *key, int64_t def, int64_t *ret)
{
        const SlmValue *v = get(s, key);

        *ret = def;
        if (!v)
                return 0;
        if (v->type == SLM_VALUE_INT) {
                *ret = v->i;
                return 0;
        }
        if (v->type == SLM_VALUE_FLOAT && v->f == floor(v->f) && fabs(v->f) < 9e18) {
                *ret = (int64_t)v->f;
                return 0;
        }
        char msg[64];
        snprintf(msg, sizeof(msg), "'%s' must be an integer", key);
        return refuse(c, msg);
}

/* The body of one schema's rule, written to @b. */
static int schema_body(Ctx *c, SlmBuf *b, SlmValue s, int depth)
{
        int r, sub;

        if (depth > MAX_NEST)
                return refuse(c, "schemas nested too deeply");
        if (s.type == SLM_VALUE_BOOL) {
                if (!s.b)
                        return refuse(c, "a schema of false matches nothing");
                slm_buf_puts(b, "value");
                return 0;
        }
        if (s.type != SLM_VALUE_DICT)
                return refuse(c, "a schema is an object or a boolean");
        static const char *const known[] = { "type",
                                             "properties",
                                             "required",
                                             "additionalProperties",
                                             "enum",
                                             "const",
                                             "anyOf",
                                             "oneOf",
                                             "items",
                                             "minItems",
                                             "maxItems",
                                             "minLength",
                                             "maxLength",
                                             "minimum",
                                             "maximum",
                                             "exclusiveMinimum",
                                             "exclusiveMaximum",
                                             "$ref",
                                             NULL };
        for (size_t i = 0; i < s.dict->n; i++) {
                SlmValue k = s.dict->e[i].key;
                bool ok = false;
                for (size_t j = 0; known[j] && !ok; j++)
                        ok = !strcmp(k.s, known[j]);
                for (size_t j = 0; ignored[j] && !ok; j++)
                        ok = !strcmp(k.s, ignored[j]);
                if (!ok) {
                        char msg[96];
                        snprintf(msg, sizeof(msg), "'%.40s' is not supported", k.s);
                        return refuse(c, msg);
                }
        }
        const SlmValue *ref = get(s, "$ref"), *cst = get(s, "const"), *en = get(s, "enum");
        const SlmValue *any = get(s, "anyOf") ? get(s, "anyOf") : get(s, "oneOf");
        const SlmValue *type = get(s, "type");
        if (ref) {
                const char *path = ref->type == SLM_VALUE_STRING ? ref->s : "";
                const char *name = !strncmp(path, "#/$defs/", 8)          ? path + 8
                                   : !strncmp(path, "#/definitions/", 14) ? path + 14
                                                                          : NULL;
                const SlmValue *defs = get(c->root, path[2] == '$' ? "$defs" : "definitions");
                const SlmValue *target = name && defs ? get(*defs, name) : NULL;
                if (!target)
                        return refuse(c, "$ref must point to #/$defs/NAME or #/definitions/NAME");
                SlmValue *known_rule = slm_dict_get(c->refs, *ref);
                if (!known_rule) {
                        int id = new_rule(c);
                        if (id < 0)
                                return refuse(c, "too many rules");
                        if (slm_dict_set(c->a, c->refs, *ref, slm_value_int(id)) < 0)
                                return -ENOMEM;
                        SlmBuf body = { 0 };
                        r = schema_body(c, &body, *target, depth + 1);
                        if (r == 0)
                                slm_buf_printf(&c->out, "r%d ::= %s\n", id, body.s ? body.s : "");
                        slm_buf_free(&body);
                        if (r < 0)
                                return r;
                        known_rule = slm_dict_get(c->refs, *ref);
                }
                slm_buf_printf(b, "r%lld", (long long)known_rule->i);
                return 0;
        }
        if (cst)
                return json_literal(c, b, *cst);
        if (en) {
                if (en->type != SLM_VALUE_LIST || en->list->n == 0)
                        return refuse(c, "enum must be a non-empty array");
                slm_buf_puts(b, "(");
                for (size_t i = 0; i < en->list->n; i++) {
                        if (i)
                                slm_buf_puts(b, " | ");
                        if ((r = json_literal(c, b, en->list->v[i])) < 0)
                                return r;
                }
                slm_buf_puts(b, ")");
                return 0;
        }
        if (any) {
                if (any->type != SLM_VALUE_LIST || any->list->n == 0)
                        return refuse(c, "anyOf and oneOf take a non-empty array");
                slm_buf_puts(b, "(");
                for (size_t i = 0; i < any->list->n; i++) {
                        if ((r = schema_rule(c, any->list->v[i], depth + 1, &sub)) < 0)
                                return r;
                        slm_buf_printf(b, "%sr%d", i ? " | " : "", sub);
                }
                slm_buf_puts(b, ")");
                return 0;
        }
        if (type && type->type == SLM_VALUE_LIST) {
                /* one of several types: the same schema with each */
                slm_buf_puts(b, "(");
                for (size_t i = 0; i < type->list->n; i++) {
                        SlmValue one = slm_value_new_dict(c->a);
                        if (one.type != SLM_VALUE_DICT)
                                return -ENOMEM;
                        for (size_t k = 0; k < s.dict->n; k++)
                                if (slm_dict_set(c->a, one.dict, s.dict->e[k].key,
                                                 strcmp(s.dict->e[k].key.s, "type")
                                                     ? s.dict->e[k].value
                                                     : type->list->v[i]) < 0)
                                        return -ENOMEM;
                        if ((r = schema_rule(c, one, depth + 1, &sub)) < 0)
                                return r;
                        slm_buf_printf(b, "%sr%d", i ? " | " : "", sub);
                }
                slm_buf_puts(b, ")");
                return 0;
        }
        const char *t = type && type->type == SLM_VALUE_STRING ? type->s : NULL;
        if (!t) {
                if (get(s, "properties"))
                        t = "object";
                else if (get(s, "items"))
                        t = "array";
        }
        if (!t) {
                slm_buf_puts(b, "value");
                return 0;
        }
        if (!strcmp(t, "null")) {
                slm_buf_puts(b, "\"null\"");
        } else if (!strcmp(t, "boolean")) {
                slm_buf_puts(b, "(\"true\" | \"false\")");
        } else if (!strcmp(t, "string")) {
                int64_t lo, hi;
                if ((r = bound(c, s, "minLength", 0, &lo)) < 0 ||
                    (r = bound(c, s, "maxLength", -1, &hi)) < 0)
                        return r;
                if (lo < 0 || lo > MAX_COUNT || hi > MAX_COUNT || (hi >= 0 && hi < lo))
                        return refuse(c,
                                      "string lengths must be 0 to 1000, minLength <= maxLength");
                if (hi < 0)
                        slm_buf_printf(b, "\"\\\"\" char{%lld,} \"\\\"\"", (long long)lo);
                else
                        slm_buf_printf(b, "\"\\\"\" char{%lld,%lld} \"\\\"\"", (long long)lo,
                                       (long long)hi);
        } else if (!strcmp(t, "integer")) {
                int64_t lo, hi, xlo, xhi;
                if ((r = bound(c, s, "minimum", INT64_MIN, &lo)) < 0 ||
                    (r = bound(c, s, "maximum", INT64_MAX, &hi)) < 0 ||
                    (r = bound(c, s, "exclusiveMinimum", INT64_MIN, &xlo)) < 0 ||
                    (r = bound(c, s, "exclusiveMaximum", INT64_MAX, &xhi)) < 0)
                        return r;
                if (xlo != INT64_MIN && xlo + 1 > lo)
                        lo = xlo + 1;
                if (xhi != INT64_MAX && xhi - 1 < hi)
                        hi = xhi - 1;
                if ((lo != INT64_MIN && lo < -999999999999999999LL) ||
                    (hi != INT64_MAX && hi > 999999999999999999LL))
                        return refuse(c, "integer bounds beyond 18 digits");
                if (lo > hi)
                        return refuse(c, "minimum is above maximum");
                int_range(b, lo, hi);
        } else if (!strcmp(t, "number")) {
                if (!get(s, "minimum") && !get(s, "maximum") && !get(s, "exclusiveMinimum") &&
                    !get(s, "exclusiveMaximum")) {
                        slm_buf_puts(b, "(\"-\"? ([0-9] | [1-9] [0-9]{1,15}) (\".\" [0-9]{1,16})? "
                                        "([eE] [-+]? [0-9]{1,3})?)");
                        return 0;
                }
                return number_range(c, b, s);
        } else if (!strcmp(t, "array")) {
                const SlmValue *items = get(s, "items");
                int64_t lo, hi;
                if ((r = bound(c, s, "minItems", 0, &lo)) < 0 ||
                    (r = bound(c, s, "maxItems", -1, &hi)) < 0)
                        return r;
                if (lo < 0 || lo > MAX_COUNT || hi > MAX_COUNT || (hi >= 0 && hi < lo))
                        return refuse(c, "array lengths must be 0 to 1000, minItems <= maxItems");
                if (items && items->type == SLM_VALUE_LIST)
                        return refuse(c, "items as an array (tuples) is not supported");
                if ((r = schema_rule(c, items ? *items : slm_value_bool(true), depth + 1, &sub)) <
                    0)
                        return r;
                if (hi == 0) {
                        slm_buf_puts(b, "\"[\" ws \"]\"");
                } else if (lo == 0) {
                        slm_buf_printf(b, "\"[\" ws (r%d (ws \",\" ws r%d)", sub, sub);
                        if (hi < 0)
                                slm_buf_puts(b, "*");
                        else
                                slm_buf_printf(b, "{0,%lld}", (long long)hi - 1);
                        slm_buf_puts(b, " ws)? \"]\"");
                } else {
                        slm_buf_printf(b, "\"[\" ws r%d (ws \",\" ws r%d)", sub, sub);
                        if (hi < 0)
                                slm_buf_printf(b, "{%lld,}", (long long)lo - 1);
                        else
                                slm_buf_printf(b, "{%lld,%lld}", (long long)lo - 1,
                                               (long long)hi - 1);
                        slm_buf_puts(b, " ws \"]\"");
                }
        } else if (!strcmp(t, "object")) {
                const SlmValue *props = get(s, "properties"), *req = get(s, "required");
                const SlmValue *extra = get(s, "additionalProperties");
                size_t n = props && props->type == SLM_VALUE_DICT ? props->dict->n : 0;
                if (props && props->type != SLM_VALUE_DICT)
                        return refuse(c, "properties must be an object");
                if (req && req->type != SLM_VALUE_LIST)
                        return refuse(c, "required must be an array");
                for (size_t i = 0; req && i < req->list->n; i++)
                        if (req->list->v[i].type != SLM_VALUE_STRING ||
                            !slm_dict_get(props ? props->dict : NULL, req->list->v[i]))
                                return refuse(c, "required names a property that is not defined");
                bool has_extra = !props || (extra && !(extra->type == SLM_VALUE_BOOL && !extra->b));
                int extra_rule = -1;
                if (has_extra && (r = schema_rule(c, extra ? *extra : slm_value_bool(true),
                                                  depth + 1, &extra_rule)) < 0)
                        return r;
                /* each property "key": value as a rule */
                int *kv = calloc(n ? n : 1, sizeof(int));
                bool *required = calloc(n ? n : 1, sizeof(bool));
                if (!kv || !required) {
                        free(kv);
                        free(required);
                        return -ENOMEM;
                }
                r = 0;
                for (size_t i = 0; i < n && r == 0; i++) {
                        SlmValue key = props->dict->e[i].key;
                        for (size_t k = 0; req && k < req->list->n; k++)
                                required[i] |= slm_value_equal(req->list->v[k], key);
                        if ((r = schema_rule(c, props->dict->e[i].value, depth + 1, &sub)) < 0)
                                break;
                        kv[i] = new_rule(c);
                        if (kv[i] < 0) {
                                r = refuse(c, "too many rules");
                                break;
                        }
                        slm_buf_printf(&c->out, "r%d ::= ", kv[i]);
                        if ((r = json_literal(c, &c->out, key)) < 0)
                                break;
                        slm_buf_printf(&c->out, " ws \":\" ws r%d\n", sub);
                }
                /*
                 * after(i): properties i.. when one was written before; first(i): when none was.
                 * after(n) is the extra properties, first(n) them or nothing.
                 */
                int base = c->n_rules;
                if (r == 0 && c->n_rules - c->first_rule + 2 * ((int)n + 1) > MAX_RULES)
                        r = refuse(c, "too many rules");
                if (r == 0) {
                        c->n_rules += 2 * ((int)n + 1);
                        for (size_t i = 0; i <= n; i++) {
                                int after = base + 2 * (int)i, first = after + 1;
                                if (i == n) {
                                        if (has_extra) {
                                                slm_buf_printf(
                                                    &c->out,
                                                    "r%d ::= (ws \",\" ws string ws \":\" "
                                                    "ws r%d)*\n",
                                                    after, extra_rule);
                                                slm_buf_printf(&c->out,
                                                               "r%d ::= (string ws \":\" ws r%d "
                                                               "r%d)?\n",
                                                               first, extra_rule, after);
                                        } else {
                                                slm_buf_printf(&c->out, "r%d ::= \"\"\n", after);
                                                slm_buf_printf(&c->out, "r%d ::= \"\"\n", first);
                                        }
                                } else if (required[i]) {
                                        slm_buf_printf(&c->out, "r%d ::= ws \",\" ws r%d r%d\n",
                                                       after, kv[i], after + 2);
                                        slm_buf_printf(&c->out, "r%d ::= r%d r%d\n", first, kv[i],
                                                       after + 2);
                                } else {
                                        slm_buf_printf(&c->out, "r%d ::= (ws \",\" ws r%d)? r%d\n",
                                                       after, kv[i], after + 2);
                                        slm_buf_printf(&c->out, "r%d ::= r%d r%d | r%d\n", first,
                                                       kv[i], after + 2, first + 2);
                                }
                        }
                        slm_buf_printf(b, "\"{\" ws r%d ws \"}\"", base + 1);
                }
                free(kv);
                free(required);
                return r;
        } else {
                char msg[64];
                snprintf(msg, sizeof(msg), "unknown type '%.20s'", t);
                return refuse(c, msg);
        }
        return 0;
}

static int schema_rule(Ctx *c, SlmValue s, int depth, int *ret)
{
        SlmBuf body = { 0 };
        int id = new_rule(c), r;

        if (id < 0)
                return refuse(c, "too many rules");
        r = schema_body(c, &body, s, depth);
        if (r == 0)
                slm_buf_printf(&c->out, "r%d ::= %s\n", id, body.s ? body.s : "");
        slm_buf_free(&body);
        *ret = id;
        return r;
}

void slm_json_schema_common_rules(SlmBuf *out)
{
        slm_buf_puts(out, "ws ::= \" \"? | \"\\n\" [ \\t]{0,16}\n"
                          "string ::= \"\\\"\" char* \"\\\"\"\n"
                          "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | "
                          "\"u\" [0-9a-fA-F]{4})\n"
                          "value ::= object | array | string | number | \"true\" | \"false\" | "
                          "\"null\"\n"
                          "object ::= \"{\" ws (string ws \":\" ws value (ws \",\" ws string ws "
                          "\":\" ws value)*)? ws \"}\"\n"
                          "array ::= \"[\" ws (value (ws \",\" ws value)*)? ws \"]\"\n"
                          "number ::= \"-\"? ([0-9] | [1-9] [0-9]{1,15}) (\".\" [0-9]{1,16})? "
                          "([eE] [-+]? [0-9]{1,3})?\n");
}

int slm_json_schema_rules(const char *schema, size_t len, int first, SlmBuf *out, int *ret_root,
                          SlmError *err)
{
        SlmArena a;
        Ctx c = { .a = &a, .err = err, .n_rules = first, .first_rule = first };
        int r;

        slm_arena_init(&a, 64u << 20);
        r = slm_json_parse(&a, schema, len, &c.root, err);
        if (r < 0) {
                slm_error_prefix(err, "json-schema");
                slm_arena_clear(&a);
                return r;
        }
        SlmValue refs = slm_value_new_dict(&a);
        if (refs.type != SLM_VALUE_DICT) {
                slm_arena_clear(&a);
                return slm_error_set(err, -ENOMEM, "out of memory");
        }
        c.refs = refs.dict;
        r = schema_rule(&c, c.root, 0, ret_root);
        if (r == 0 && c.out.failed)
                r = slm_error_set(err, -ENOMEM, "out of memory");
        if (r == 0)
                slm_buf_put(out, c.out.s ? c.out.s : "", c.out.n);
        slm_buf_free(&c.out);
        slm_arena_clear(&a);
        return r;
}

int slm_json_schema_to_gbnf(const char *schema, size_t len, char **ret_gbnf, SlmError *err)
{
        SlmBuf out = { 0 };
        int root, r = slm_json_schema_rules(schema, len, 0, &out, &root, err);

        if (r == 0) {
                slm_buf_printf(&out, "root ::= r%d\n", root);
                slm_json_schema_common_rules(&out);
                if (out.failed)
                        r = slm_error_set(err, -ENOMEM, "out of memory");
        }
        if (r < 0) {
                slm_buf_free(&out);
                return r;
        }
        *ret_gbnf = out.s;
        return 0;
}
