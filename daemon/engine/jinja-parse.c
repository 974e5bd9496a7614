/* SPDX-License-Identifier: MIT */
/*
 * Template source to syntax tree. The lexer follows Jinja2's rules for
 * whitespace as transformers sets them up: newlines normalized and one
 * trailing newline dropped; "{%-"/"-%}" (and the same on "{{ }}" and
 * "{# #}") strip all whitespace on their side; trim_blocks drops the
 * newline after a block or comment tag; lstrip_blocks drops the spaces
 * and tabs between the start of a line and a block or comment tag ("{%+"
 * keeps them). Inside a tag, brackets must balance before "}}" or "%}"
 * ends it.
 */
#include "jinja-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

#define MAX_DEPTH 100 /* nesting of expressions and blocks */

typedef enum {
        T_EOF,
        T_TEXT,
        T_VAR_BEGIN,
        T_VAR_END,
        T_BLOCK_BEGIN,
        T_BLOCK_END,
        T_NAME,
        T_STRING,
        T_INT,
        T_FLOAT,
        T_OP,
} TokType;

typedef struct {
        uint8_t type;
        uint32_t line;
        const char *s; /* NUL-terminated in the arena for names, strings and text */
        size_t len;
        int64_t i;
        double f;
} Token;

typedef struct {
        SlmArena *a;
        SlmError *err;
        Token *t;
        size_t n, cap;
        size_t pos; /* parser position */
        int depth;
} Parser;

static int fail_at(Parser *p, uint32_t line, const char *fmt, const char *arg)
{
        char msg[160];

        snprintf(msg, sizeof(msg), fmt, arg);
        return slm_error_set(p->err, -EINVAL, "template line %u: %s", line, msg);
}

static int push(Parser *p, Token tok)
{
        if (p->n == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 256;
                Token *t = realloc(p->t, cap * sizeof(*t));
                if (!t)
                        return -ENOMEM;
                p->t = t;
                p->cap = cap;
        }
        p->t[p->n++] = tok;
        return 0;
}

static bool is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_name_start(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int hexval(char c)
{
        if (is_digit(c))
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* A string literal with Python's escapes, from the quote at src[*pos]. */
static int lex_string(Parser *p, const char *src, size_t len, size_t *pos, uint32_t line)
{
        char q = src[*pos];
        size_t i = *pos + 1, start = i;

        while (i < len && src[i] != q) {
                if (src[i] == '\\')
                        i++;
                i++;
        }
        if (i >= len)
                return fail_at(p, line, "%s", "unterminated string");
        /* the decoded text is never longer than the escaped one */
        char *o = slm_arena_alloc(p->a, i - start + 1), *w = o;
        if (!o)
                return -ENOMEM;
        for (size_t k = start; k < i; k++) {
                char c = src[k];
                if (c != '\\') {
                        *w++ = c;
                        continue;
                }
                char e = src[++k];
                int digits = 0;
                switch (e) {
                case 'n':
                        *w++ = '\n';
                        continue;
                case 't':
                        *w++ = '\t';
                        continue;
                case 'r':
                        *w++ = '\r';
                        continue;
                case 'b':
                        *w++ = '\b';
                        continue;
                case 'f':
                        *w++ = '\f';
                        continue;
                case 'v':
                        *w++ = '\v';
                        continue;
                case 'a':
                        *w++ = '\a';
                        continue;
                case '\\':
                case '\'':
                case '"':
                        *w++ = e;
                        continue;
                case '\n':
                        continue; /* a line continuation */
                case 'x':
                        digits = 2;
                        break;
                case 'u':
                        digits = 4;
                        break;
                case 'U':
                        digits = 8;
                        break;
                default:
                        if (e >= '0' && e <= '7') {
                                unsigned v = 0;
                                int m = 0;
                                while (m < 3 && k < i && src[k] >= '0' && src[k] <= '7')
                                        v = v * 8 + (unsigned)(src[k++] - '0'), m++;
                                k--;
                                w += slm_utf8_encode(v, w);
                                continue;
                        }
                        *w++ = '\\';
                        *w++ = e;
                        continue;
                }
                uint32_t cp = 0;
                for (int d = 0; d < digits; d++) {
                        int h = k + 1 + (size_t)d < i ? hexval(src[k + 1 + (size_t)d]) : -1;
                        if (h < 0)
                                return fail_at(p, line, "%s", "bad escape in string");
                        cp = cp * 16 + (uint32_t)h;
                }
                if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return fail_at(p, line, "%s", "bad escape in string");
                k += (size_t)digits;
                /* \xhh is 4 source bytes for 2 of UTF-8, \uhhhh 6 for 3, \U 10 for 4 */
                w += slm_utf8_encode(cp, w);
        }
        *w = 0;
        *pos = i + 1;
        return push(p, (Token){ .type = T_STRING, .line = line, .s = o, .len = (size_t)(w - o) });
}

static const char *const ops[] = { "//", "**", "==", "!=", "<=", ">=", "+", "-", "/",
                                   "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                   "<",  ">",  "=",  ".",  ":",  "|",  ",", ";" };

/* The tokens of one tag, from src[*pos] to its end delimiter. */
static int lex_tag(Parser *p, const char *src, size_t len, size_t *pos, uint32_t *line, bool block)
{
        size_t i = *pos;
        int balance = 0;
        int r;

        for (;;) {
                while (i < len && is_ws(src[i])) {
                        if (src[i] == '\n')
                                (*line)++;
                        i++;
                }
                if (i >= len)
                        return fail_at(p, *line, "%s",
                                       block ? "missing '%}' at the end"
                                             : "missing '}}' at the end");
                if (balance == 0) {
                        char close = block ? '%' : '}';
                        size_t k = i;
                        char sign = 0;
                        if ((src[k] == '-' || (block && src[k] == '+')) && k + 2 < len + 1 &&
                            k + 1 < len && src[k + 1] == close && k + 2 < len && src[k + 2] == '}')
                                sign = src[k++];
                        if (k + 1 < len && src[k] == close && src[k + 1] == '}') {
                                i = k + 2;
                                if (sign == '-') {
                                        while (i < len && is_ws(src[i])) {
                                                if (src[i] == '\n')
                                                        (*line)++;
                                                i++;
                                        }
                                } else if (block && sign == 0 && i < len && src[i] == '\n') {
                                        (*line)++;
                                        i++; /* trim_blocks */
                                }
                                *pos = i;
                                return push(p, (Token){ .type = block ? T_BLOCK_END : T_VAR_END,
                                                        .line = *line });
                        }
                }
                char c = src[i];
                bool after_dot = p->n > 0 && p->t[p->n - 1].type == T_OP &&
                                 p->t[p->n - 1].s[0] == '.' && p->t[p->n - 1].len == 1;
                if (is_digit(c)) {
                        size_t s = i;
                        bool is_float = false;
                        while (i < len && (is_digit(src[i]) || src[i] == '_'))
                                i++;
                        if (!after_dot && i + 1 < len && src[i] == '.' && is_digit(src[i + 1])) {
                                is_float = true;
                                i++;
                                while (i < len && (is_digit(src[i]) || src[i] == '_'))
                                        i++;
                        }
                        if (!after_dot && i < len && (src[i] == 'e' || src[i] == 'E')) {
                                size_t k = i + 1;
                                if (k < len && (src[k] == '+' || src[k] == '-'))
                                        k++;
                                if (k < len && is_digit(src[k])) {
                                        is_float = true;
                                        i = k;
                                        while (i < len && is_digit(src[i]))
                                                i++;
                                }
                        }
                        char num[64];
                        size_t n = 0;
                        for (size_t k = s; k < i; k++)
                                if (src[k] != '_' && n < sizeof(num) - 1)
                                        num[n++] = src[k];
                        num[n] = 0;
                        Token t = { .type = is_float ? T_FLOAT : T_INT, .line = *line };
                        if (is_float) {
                                t.f = strtod(num, NULL);
                        } else {
                                errno = 0;
                                t.i = strtoll(num, NULL, 10);
                                if (errno)
                                        return fail_at(p, *line, "%s", "integer too large");
                        }
                        r = push(p, t);
                } else if (is_name_start(c)) {
                        size_t s = i;
                        while (i < len && (is_name_start(src[i]) || is_digit(src[i])))
                                i++;
                        char *name = slm_arena_strndup(p->a, src + s, i - s);
                        if (!name)
                                return -ENOMEM;
                        r = push(p,
                                 (Token){ .type = T_NAME, .line = *line, .s = name, .len = i - s });
                } else if (c == '\'' || c == '"') {
                        r = lex_string(p, src, len, &i, *line);
                } else {
                        const char *op = NULL;
                        for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
                                size_t n = strlen(ops[k]);
                                if (i + n <= len && memcmp(src + i, ops[k], n) == 0) {
                                        op = ops[k];
                                        break;
                                }
                        }
                        if (!op) {
                                char what[8] = { c, 0 };
                                return fail_at(p, *line, "unexpected character '%s'", what);
                        }
                        if (op[0] == '(' || op[0] == '[' || op[0] == '{')
                                balance++;
                        else if (op[0] == ')' || op[0] == ']' || op[0] == '}')
                                balance--;
                        if (balance < 0)
                                return fail_at(p, *line, "unexpected '%s'", op);
                        i += strlen(op);
                        r = push(
                            p, (Token){ .type = T_OP, .line = *line, .s = op, .len = strlen(op) });
                }
                if (r < 0)
                        return r;
        }
}

static int lex(Parser *p, const char *src, size_t len)
{
        size_t pos = 0;
        uint32_t line = 1;
        bool line_starting = true;
        int r;

        while (pos < len) {
                size_t q = pos;
                while (q + 1 < len && !(src[q] == '{' && (src[q + 1] == '{' || src[q + 1] == '%' ||
                                                          src[q + 1] == '#')))
                        q++;
                if (q + 1 >= len)
                        q = len;
                size_t tend = q;
                char kind = q < len ? src[q + 1] : 0, sign = 0;
                size_t i = q + 2;
                if (q < len && i < len && (src[i] == '-' || src[i] == '+'))
                        sign = src[i++];
                if (sign == '-') {
                        while (tend > pos && is_ws(src[tend - 1]))
                                tend--;
                } else if (q < len && sign != '+' && kind != '{') {
                        /* lstrip_blocks */
                        size_t l = tend;
                        while (l > pos && src[l - 1] != '\n')
                                l--;
                        if ((l > pos || line_starting) && l < tend) {
                                size_t k = l;
                                while (k < tend && is_ws(src[k]))
                                        k++;
                                if (k == tend)
                                        tend = l;
                        }
                }
                uint32_t text_line = line;
                for (size_t k = pos; k < q; k++)
                        line += src[k] == '\n';
                if (tend > pos) {
                        r = push(p, (Token){ .type = T_TEXT,
                                             .line = text_line,
                                             .s = src + pos,
                                             .len = tend - pos });
                        if (r < 0)
                                return r;
                }
                if (q >= len)
                        break;
                if (kind == '#') {
                        size_t e = i;
                        while (e + 1 < len && !(src[e] == '#' && src[e + 1] == '}'))
                                e++;
                        if (e + 1 >= len)
                                return fail_at(p, line, "%s", "unterminated comment");
                        for (size_t k = i; k < e; k++)
                                line += src[k] == '\n';
                        char end_sign = e > i ? src[e - 1] : 0;
                        pos = e + 2;
                        if (end_sign == '-') {
                                while (pos < len && is_ws(src[pos]))
                                        line += src[pos++] == '\n';
                        } else if (end_sign != '+' && pos < len && src[pos] == '\n') {
                                line++;
                                pos++;
                        }
                } else {
                        bool block = kind == '%';
                        r = push(p, (Token){ .type = block ? T_BLOCK_BEGIN : T_VAR_BEGIN,
                                             .line = line });
                        if (r < 0)
                                return r;
                        pos = i;
                        r = lex_tag(p, src, len, &pos, &line, block);
                        if (r < 0)
                                return r;
                }
                line_starting = src[pos - 1] == '\n';
        }
        return push(p, (Token){ .type = T_EOF, .line = line });
}

/* ---- parser ---- */

static Token *peek(Parser *p)
{
        return &p->t[p->pos];
}

static Token *peek2(Parser *p)
{
        return p->pos + 1 < p->n ? &p->t[p->pos + 1] : &p->t[p->n - 1];
}

static Token *next(Parser *p)
{
        Token *t = &p->t[p->pos];

        if (t->type != T_EOF)
                p->pos++;
        return t;
}

static bool is_op(const Token *t, const char *op)
{
        return t->type == T_OP && strcmp(t->s, op) == 0;
}

static bool is_name(const Token *t, const char *name)
{
        return t->type == T_NAME && strcmp(t->s, name) == 0;
}

static const char *describe(const Token *t)
{
        switch (t->type) {
        case T_EOF:
                return "end of template";
        case T_TEXT:
                return "text";
        case T_VAR_BEGIN:
                return "'{{'";
        case T_VAR_END:
                return "'}}'";
        case T_BLOCK_BEGIN:
                return "'{%'";
        case T_BLOCK_END:
                return "'%}'";
        case T_STRING:
                return "a string";
        case T_INT:
        case T_FLOAT:
                return "a number";
        default:
                return t->s;
        }
}

static int unexpected(Parser *p)
{
        return fail_at(p, peek(p)->line, "unexpected %s", describe(peek(p)));
}

static int expect_op(Parser *p, const char *op)
{
        if (!is_op(peek(p), op)) {
                char what[64];
                snprintf(what, sizeof(what), "expected '%s', got %s", op, describe(peek(p)));
                return fail_at(p, peek(p)->line, "%s", what);
        }
        next(p);
        return 0;
}

static int expect_name(Parser *p, const char *name)
{
        if (!is_name(peek(p), name)) {
                char what[64];
                snprintf(what, sizeof(what), "expected '%s', got %s", name, describe(peek(p)));
                return fail_at(p, peek(p)->line, "%s", what);
        }
        next(p);
        return 0;
}

static Node *node(Parser *p, NodeKind kind, uint32_t line)
{
        Node *n = slm_arena_alloc(p->a, sizeof(*n));

        if (n)
                *n = (Node){ .kind = (uint8_t)kind, .line = line };
        return n;
}

static int add(Parser *p, NodeList *l, Node *n)
{
        if (!n)
                return -ENOMEM;
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 4;
                Node **v = slm_arena_alloc(p->a, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                if (l->n)
                        memcpy(v, l->v, l->n * sizeof(*v));
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = n;
        return 0;
}

static int parse_expr(Parser *p, Node **ret);
static int parse_or(Parser *p, Node **ret);
static int parse_unary(Parser *p, Node **ret, bool with_filter);
static int parse_primary(Parser *p, Node **ret);
static int parse_postfix(Parser *p, Node *n, Node **ret);

static int enter(Parser *p)
{
        if (++p->depth > MAX_DEPTH)
                return fail_at(p, peek(p)->line, "%s", "nested too deeply");
        return 0;
}

/* "(a, b=c)" after the "(" : positional into items, keywords into kw */
static int parse_args(Parser *p, Node *call)
{
        int r;

        for (bool first = true; !is_op(peek(p), ")"); first = false) {
                if (!first && (r = expect_op(p, ",")) < 0)
                        return r;
                if (is_op(peek(p), ")"))
                        break;
                Node *v;
                if (peek(p)->type == T_NAME && is_op(peek2(p), "=")) {
                        Token *name = next(p);
                        next(p);
                        if ((r = parse_expr(p, &v)) < 0)
                                return r;
                        Node *k = node(p, N_NAME, name->line);
                        if (!k)
                                return -ENOMEM;
                        k->name = name->s;
                        k->a = v;
                        r = add(p, &call->kw, k);
                } else {
                        if (call->kw.n)
                                return fail_at(p, peek(p)->line, "%s",
                                               "positional argument after a keyword argument");
                        if ((r = parse_expr(p, &v)) < 0)
                                return r;
                        r = add(p, &call->items, v);
                }
                if (r < 0)
                        return r;
        }
        next(p);
        return 0;
}

/* A dotted name, as filters and tests are named. */
static int parse_dotted(Parser *p, const char **ret)
{
        Token *t = next(p);

        if (t->type != T_NAME)
                return fail_at(p, t->line, "expected a name, got %s", describe(t));
        *ret = t->s;
        return 0;
}

static int parse_filter(Parser *p, Node *target, Node **ret)
{
        int r;

        while (is_op(peek(p), "|")) {
                uint32_t line = next(p)->line;
                Node *f = node(p, N_FILTER, line);
                if (!f)
                        return -ENOMEM;
                if ((r = parse_dotted(p, &f->name)) < 0)
                        return r;
                if (!slm_jinja_has_filter(f->name))
                        return fail_at(p, line, "no filter named '%s'", f->name);
                if (is_op(peek(p), "(")) {
                        next(p);
                        if ((r = parse_args(p, f)) < 0)
                                return r;
                }
                f->a = target;
                target = f;
        }
        *ret = target;
        return 0;
}

static int parse_test(Parser *p, Node *target, Node **ret)
{
        uint32_t line = next(p)->line; /* is */
        Node *t = node(p, N_TEST, line);
        int r;

        if (!t)
                return -ENOMEM;
        if (is_name(peek(p), "not")) {
                next(p);
                t->op = 1;
        }
        if ((r = parse_dotted(p, &t->name)) < 0)
                return r;
        if (!slm_jinja_has_test(t->name))
                return fail_at(p, line, "no test named '%s'", t->name);
        Token *n = peek(p);
        if (is_op(n, "(")) {
                next(p);
                if ((r = parse_args(p, t)) < 0)
                        return r;
        } else if ((n->type == T_NAME || n->type == T_STRING || n->type == T_INT ||
                    n->type == T_FLOAT || is_op(n, "[") || is_op(n, "{")) &&
                   !is_name(n, "else") && !is_name(n, "or") && !is_name(n, "and") &&
                   !is_name(n, "is")) {
                Node *arg;
                if ((r = parse_primary(p, &arg)) < 0 || (r = parse_postfix(p, arg, &arg)) < 0)
                        return r;
                if ((r = add(p, &t->items, arg)) < 0)
                        return r;
        }
        t->a = target;
        *ret = t;
        return 0;
}

static int parse_subscript(Parser *p, Node *target, Node **ret)
{
        uint32_t line = next(p)->line; /* [ */
        Node *parts[3] = { NULL, NULL, NULL };
        int n_parts = 0, r;
        bool slice = false;

        for (;;) {
                if (is_op(peek(p), ":")) {
                        next(p);
                        slice = true;
                        if (++n_parts >= 3)
                                return unexpected(p);
                        continue;
                }
                if (is_op(peek(p), "]"))
                        break;
                if (parts[n_parts])
                        return unexpected(p);
                if ((r = parse_expr(p, &parts[n_parts])) < 0)
                        return r;
        }
        next(p);
        Node *n = node(p, slice ? N_SLICE : N_ITEM, line);
        if (!n)
                return -ENOMEM;
        n->a = target;
        if (slice) {
                /* start, stop, step; a missing one is NULL */
                n->items.v = slm_arena_alloc(p->a, 3 * sizeof(Node *));
                if (!n->items.v)
                        return -ENOMEM;
                memcpy(n->items.v, parts, sizeof(parts));
                n->items.n = n->items.cap = 3;
        } else {
                if (!parts[0])
                        return fail_at(p, line, "%s", "empty subscript");
                n->b = parts[0];
        }
        *ret = n;
        return 0;
}

static int parse_postfix(Parser *p, Node *n, Node **ret)
{
        int r;

        for (;;) {
                Token *t = peek(p);
                if (is_op(t, ".")) {
                        next(p);
                        Token *name = next(p);
                        Node *a = node(p, N_ATTR, t->line);
                        if (!a)
                                return -ENOMEM;
                        a->a = n;
                        if (name->type == T_NAME) {
                                a->name = name->s;
                        } else if (name->type == T_INT) {
                                a->kind = N_ITEM;
                                if (!(a->b = node(p, N_CONST, t->line)))
                                        return -ENOMEM;
                                a->b->value = slm_value_int(name->i);
                        } else {
                                return fail_at(p, t->line, "expected a name after '.', got %s",
                                               describe(name));
                        }
                        n = a;
                } else if (is_op(t, "[")) {
                        if ((r = parse_subscript(p, n, &n)) < 0)
                                return r;
                } else if (is_op(t, "(")) {
                        next(p);
                        Node *c = node(p, N_CALL, t->line);
                        if (!c)
                                return -ENOMEM;
                        c->a = n;
                        if ((r = parse_args(p, c)) < 0)
                                return r;
                        n = c;
                } else {
                        break;
                }
        }
        *ret = n;
        return 0;
}

/* "(" already taken: a parenthesized expression, or a tuple */
static int parse_paren(Parser *p, uint32_t line, Node **ret)
{
        Node *t = node(p, N_TUPLE, line), *e;
        bool comma = false;
        int r;

        if (!t)
                return -ENOMEM;
        while (!is_op(peek(p), ")")) {
                if ((r = parse_expr(p, &e)) < 0 || (r = add(p, &t->items, e)) < 0)
                        return r;
                if (!is_op(peek(p), ","))
                        break;
                next(p);
                comma = true;
        }
        if ((r = expect_op(p, ")")) < 0)
                return r;
        *ret = t->items.n == 1 && !comma ? t->items.v[0] : t;
        return 0;
}

static int parse_primary(Parser *p, Node **ret)
{
        Token *t = next(p);
        Node *n;
        int r;

        switch (t->type) {
        case T_NAME:
                if (!(n = node(p, N_CONST, t->line)))
                        return -ENOMEM;
                if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) {
                        n->value = slm_value_bool(true);
                } else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) {
                        n->value = slm_value_bool(false);
                } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
                        n->value = slm_value_none();
                } else {
                        n->kind = N_NAME;
                        n->name = t->s;
                }
                break;
        case T_STRING: {
                if (!(n = node(p, N_CONST, t->line)))
                        return -ENOMEM;
                n->value = slm_value_str_static(t->s, t->len);
                /* adjacent literals join, as in Python */
                if (peek(p)->type == T_STRING) {
                        SlmBuf b = { 0 };
                        slm_buf_put(&b, t->s, t->len);
                        while (peek(p)->type == T_STRING) {
                                Token *s = next(p);
                                slm_buf_put(&b, s->s, s->len);
                        }
                        n->value = slm_value_str(p->a, b.s ? b.s : "", b.n);
                        bool bad = b.failed || n->value.type != SLM_VALUE_STRING;
                        slm_buf_free(&b);
                        if (bad)
                                return -ENOMEM;
                }
                break;
        }
        case T_INT:
        case T_FLOAT:
                if (!(n = node(p, N_CONST, t->line)))
                        return -ENOMEM;
                n->value = t->type == T_INT ? slm_value_int(t->i) : slm_value_float(t->f);
                break;
        case T_OP:
                if (is_op(t, "(")) {
                        if ((r = enter(p)) < 0 || (r = parse_paren(p, t->line, &n)) < 0)
                                return r;
                        p->depth--;
                        break;
                }
                if (is_op(t, "[") || is_op(t, "{")) {
                        bool dict = t->s[0] == '{';
                        const char *close = dict ? "}" : "]";
                        if ((r = enter(p)) < 0)
                                return r;
                        if (!(n = node(p, dict ? N_DICT : N_LIST, t->line)))
                                return -ENOMEM;
                        for (bool first = true; !is_op(peek(p), close); first = false) {
                                Node *e;
                                if (!first && (r = expect_op(p, ",")) < 0)
                                        return r;
                                if (is_op(peek(p), close))
                                        break;
                                if ((r = parse_expr(p, &e)) < 0 || (r = add(p, &n->items, e)) < 0)
                                        return r;
                                if (dict) {
                                        if ((r = expect_op(p, ":")) < 0 ||
                                            (r = parse_expr(p, &e)) < 0 ||
                                            (r = add(p, &n->items, e)) < 0)
                                                return r;
                                }
                        }
                        next(p);
                        p->depth--;
                        break;
                }
                /* fall through */
        default:
                p->pos--;
                if (t->type == T_EOF)
                        p->pos = p->n - 1;
                return unexpected(p);
        }
        *ret = n;
        return 0;
}

static int parse_unary(Parser *p, Node **ret, bool with_filter)
{
        Token *t = peek(p);
        Node *n;
        int r;

        if ((r = enter(p)) < 0)
                return r;
        if (is_op(t, "-") || is_op(t, "+")) {
                next(p);
                if (!(n = node(p, t->s[0] == '-' ? N_NEG : N_POS, t->line)))
                        return -ENOMEM;
                if ((r = parse_unary(p, &n->a, false)) < 0)
                        return r;
        } else if ((r = parse_primary(p, &n)) < 0) {
                return r;
        }
        if ((r = parse_postfix(p, n, &n)) < 0)
                return r;
        while (with_filter) {
                if (is_op(peek(p), "|")) {
                        if ((r = parse_filter(p, n, &n)) < 0)
                                return r;
                } else if (is_name(peek(p), "is")) {
                        if ((r = parse_test(p, n, &n)) < 0)
                                return r;
                } else if (is_op(peek(p), "(")) {
                        if ((r = parse_postfix(p, n, &n)) < 0)
                                return r;
                } else {
                        break;
                }
        }
        p->depth--;
        *ret = n;
        return 0;
}

typedef struct {
        const char *op;
        NodeOp code;
} OpCode;

/* One level of left-associative binary operators over @sub. */
static int parse_binary(Parser *p, Node **ret, int (*sub)(Parser *, Node **), const OpCode *codes,
                        size_t n_codes)
{
        Node *l;
        int r = sub(p, &l);

        if (r < 0)
                return r;
        for (;;) {
                const OpCode *c = NULL;
                for (size_t i = 0; i < n_codes; i++)
                        if (is_op(peek(p), codes[i].op))
                                c = &codes[i];
                if (!c)
                        break;
                Node *n = node(p, N_BINARY, next(p)->line);
                if (!n)
                        return -ENOMEM;
                n->op = (uint8_t)c->code;
                n->a = l;
                if ((r = sub(p, &n->b)) < 0)
                        return r;
                l = n;
        }
        *ret = l;
        return 0;
}

static int parse_unary_filtered(Parser *p, Node **ret)
{
        return parse_unary(p, ret, true);
}

static int parse_pow(Parser *p, Node **ret)
{
        static const OpCode c[] = { { "**", OP_POW } };
        return parse_binary(p, ret, parse_unary_filtered, c, 1);
}

static int parse_math2(Parser *p, Node **ret)
{
        static const OpCode c[] = {
                { "*", OP_MUL }, { "/", OP_DIV }, { "//", OP_FLOORDIV }, { "%", OP_MOD }
        };
        return parse_binary(p, ret, parse_pow, c, 4);
}

static int parse_concat(Parser *p, Node **ret)
{
        static const OpCode c[] = { { "~", OP_CONCAT } };
        return parse_binary(p, ret, parse_math2, c, 1);
}

static int parse_math1(Parser *p, Node **ret)
{
        static const OpCode c[] = { { "+", OP_ADD }, { "-", OP_SUB } };
        return parse_binary(p, ret, parse_concat, c, 2);
}

static int parse_compare(Parser *p, Node **ret)
{
        static const OpCode c[] = { { "==", OP_EQ }, { "!=", OP_NE }, { "<", OP_LT },
                                    { "<=", OP_LE }, { ">", OP_GT },  { ">=", OP_GE } };
        Node *result, *last = NULL;
        int r = parse_math1(p, &result);

        if (r < 0)
                return r;
        for (;;) {
                int code = -1;
                Token *t = peek(p);
                for (size_t i = 0; i < 6; i++)
                        if (is_op(t, c[i].op))
                                code = (int)c[i].code;
                if (code < 0 && is_name(t, "in"))
                        code = OP_IN;
                if (code < 0 && is_name(t, "not") && is_name(peek2(p), "in")) {
                        next(p);
                        code = OP_NOT_IN;
                }
                if (code < 0)
                        break;
                next(p);
                Node *n = node(p, N_COMPARE, t->line);
                if (!n)
                        return -ENOMEM;
                n->op = (uint8_t)code;
                n->a = last ? last : result;
                if ((r = parse_math1(p, &n->b)) < 0)
                        return r;
                if (last) {
                        /* a < b < c is a < b and b < c */
                        Node *both = node(p, N_AND, t->line);
                        if (!both)
                                return -ENOMEM;
                        both->a = result;
                        both->b = n;
                        result = both;
                } else {
                        result = n;
                }
                last = n->b;
        }
        *ret = result;
        return 0;
}

static int parse_not(Parser *p, Node **ret)
{
        if (is_name(peek(p), "not")) {
                Node *n = node(p, N_NOT, next(p)->line);
                int r;
                if (!n)
                        return -ENOMEM;
                if ((r = enter(p)) < 0 || (r = parse_not(p, &n->a)) < 0)
                        return r;
                p->depth--;
                *ret = n;
                return 0;
        }
        return parse_compare(p, ret);
}

static int parse_logic(Parser *p, Node **ret, const char *word, NodeKind kind,
                       int (*sub)(Parser *, Node **))
{
        Node *l;
        int r = sub(p, &l);

        if (r < 0)
                return r;
        while (is_name(peek(p), word)) {
                Node *n = node(p, kind, next(p)->line);
                if (!n)
                        return -ENOMEM;
                n->a = l;
                if ((r = sub(p, &n->b)) < 0)
                        return r;
                l = n;
        }
        *ret = l;
        return 0;
}

static int parse_and(Parser *p, Node **ret)
{
        return parse_logic(p, ret, "and", N_AND, parse_not);
}

static int parse_or(Parser *p, Node **ret)
{
        return parse_logic(p, ret, "or", N_OR, parse_and);
}

static int parse_expr(Parser *p, Node **ret)
{
        Node *e;
        int r;

        if ((r = enter(p)) < 0 || (r = parse_or(p, &e)) < 0)
                return r;
        while (is_name(peek(p), "if")) {
                Node *c = node(p, N_COND, next(p)->line);
                if (!c)
                        return -ENOMEM;
                c->b = e;
                if ((r = parse_or(p, &c->a)) < 0)
                        return r;
                if (is_name(peek(p), "else")) {
                        next(p);
                        if ((r = parse_expr(p, &c->c)) < 0)
                                return r;
                }
                e = c;
        }
        p->depth--;
        *ret = e;
        return 0;
}

/* "a, b" without brackets (as {{ }} and set take it): one expression or a tuple */
static int parse_tuple(Parser *p, Node **ret)
{
        Node *e;
        int r = parse_expr(p, &e);

        if (r < 0)
                return r;
        if (!is_op(peek(p), ",")) {
                *ret = e;
                return 0;
        }
        Node *t = node(p, N_TUPLE, e->line);
        if (!t || add(p, &t->items, e) < 0)
                return -ENOMEM;
        while (is_op(peek(p), ",")) {
                next(p);
                if (peek(p)->type == T_BLOCK_END || peek(p)->type == T_VAR_END)
                        break;
                if ((r = parse_expr(p, &e)) < 0 || (r = add(p, &t->items, e)) < 0)
                        return r;
        }
        *ret = t;
        return 0;
}

/* Assignment targets: "a", "a, b", "(a, b)"; with @ns also "ns.attr". */
static int parse_targets(Parser *p, Node *stmt, bool ns)
{
        bool paren = is_op(peek(p), "(");
        int r;

        if (paren)
                next(p);
        for (;;) {
                Token *t = next(p);
                if (t->type != T_NAME)
                        return fail_at(p, t->line, "expected a name to assign to, got %s",
                                       describe(t));
                Node *n = node(p, N_NAME, t->line);
                if (!n)
                        return -ENOMEM;
                n->name = t->s;
                if (ns && is_op(peek(p), ".") && stmt->targets.n == 0) {
                        next(p);
                        Token *attr = next(p);
                        if (attr->type != T_NAME)
                                return fail_at(p, attr->line, "expected a name, got %s",
                                               describe(attr));
                        n->kind = N_ATTR;
                        n->a = node(p, N_NAME, t->line);
                        if (!n->a)
                                return -ENOMEM;
                        n->a->name = t->s;
                        n->name = attr->s;
                        return add(p, &stmt->targets, n);
                }
                if ((r = add(p, &stmt->targets, n)) < 0)
                        return r;
                if (!is_op(peek(p), ","))
                        break;
                next(p);
        }
        if (paren && (r = expect_op(p, ")")) < 0)
                return r;
        return 0;
}

static int expect_block_end(Parser *p)
{
        if (peek(p)->type != T_BLOCK_END)
                return fail_at(p, peek(p)->line, "expected '%%}', got %s", describe(peek(p)));
        next(p);
        return 0;
}

static int parse_body(Parser *p, NodeList *body, const char *const *ends, const char **ret_end);

/* After "macro" or "call": "(a, b=default)" */
static int parse_params(Parser *p, Node *m)
{
        int r;

        if ((r = expect_op(p, "(")) < 0)
                return r;
        for (bool first = true; !is_op(peek(p), ")"); first = false) {
                if (!first && (r = expect_op(p, ",")) < 0)
                        return r;
                if (is_op(peek(p), ")"))
                        break;
                Token *t = next(p);
                if (t->type != T_NAME)
                        return fail_at(p, t->line, "expected a parameter name, got %s",
                                       describe(t));
                Node *n = node(p, N_NAME, t->line);
                if (!n)
                        return -ENOMEM;
                n->name = t->s;
                if (is_op(peek(p), "=")) {
                        next(p);
                        if ((r = parse_expr(p, &n->a)) < 0)
                                return r;
                }
                if ((r = add(p, &m->targets, n)) < 0)
                        return r;
        }
        next(p);
        return 0;
}

static int parse_statement(Parser *p, NodeList *out)
{
        Token *kw = next(p);
        Node *n;
        const char *end;
        int r;

        if (kw->type != T_NAME)
                return fail_at(p, kw->line, "expected a statement, got %s", describe(kw));
        if ((r = enter(p)) < 0)
                return r;
        if (!strcmp(kw->s, "if")) {
                Node *top = node(p, N_IF, kw->line);
                n = top;
                if (!n)
                        return -ENOMEM;
                if ((r = parse_tuple(p, &n->a)) < 0 || (r = expect_block_end(p)) < 0)
                        return r;
                static const char *const ends[] = { "elif", "else", "endif", NULL };
                for (;;) {
                        if ((r = parse_body(p, &n->body, ends, &end)) < 0)
                                return r;
                        if (!strcmp(end, "elif")) {
                                Node *e = node(p, N_IF, peek(p)->line);
                                if (!e || (r = add(p, &n->orelse, e)) < 0)
                                        return -ENOMEM;
                                if ((r = parse_tuple(p, &e->a)) < 0 ||
                                    (r = expect_block_end(p)) < 0)
                                        return r;
                                n = e;
                                continue;
                        }
                        if (!strcmp(end, "else")) {
                                static const char *const endif[] = { "endif", NULL };
                                if ((r = expect_block_end(p)) < 0 ||
                                    (r = parse_body(p, &n->orelse, endif, &end)) < 0)
                                        return r;
                        }
                        break;
                }
                n = top;
        } else if (!strcmp(kw->s, "for")) {
                n = node(p, N_FOR, kw->line);
                if (!n)
                        return -ENOMEM;
                if ((r = parse_targets(p, n, false)) < 0 || (r = expect_name(p, "in")) < 0 ||
                    (r = parse_or(p, &n->a)) < 0)
                        return r;
                if (is_name(peek(p), "if")) {
                        next(p);
                        if ((r = parse_expr(p, &n->b)) < 0)
                                return r;
                }
                if (is_name(peek(p), "recursive"))
                        return fail_at(p, kw->line, "%s", "recursive loops are not supported");
                static const char *const ends[] = { "else", "endfor", NULL };
                if ((r = expect_block_end(p)) < 0 || (r = parse_body(p, &n->body, ends, &end)) < 0)
                        return r;
                if (!strcmp(end, "else")) {
                        static const char *const endfor[] = { "endfor", NULL };
                        if ((r = expect_block_end(p)) < 0 ||
                            (r = parse_body(p, &n->orelse, endfor, &end)) < 0)
                                return r;
                }
        } else if (!strcmp(kw->s, "set")) {
                n = node(p, N_SET, kw->line);
                if (!n)
                        return -ENOMEM;
                if ((r = parse_targets(p, n, true)) < 0)
                        return r;
                if (is_op(peek(p), "=")) {
                        next(p);
                        if ((r = parse_tuple(p, &n->b)) < 0)
                                return r;
                } else {
                        n->kind = N_SET_BLOCK;
                        if (n->targets.n != 1 || n->targets.v[0]->kind != N_NAME)
                                return fail_at(p, kw->line, "%s", "a block set assigns one name");
                        if (is_op(peek(p), "|") && (r = parse_filter(p, NULL, &n->b)) < 0)
                                return r;
                        static const char *const ends[] = { "endset", NULL };
                        if ((r = expect_block_end(p)) < 0 ||
                            (r = parse_body(p, &n->body, ends, &end)) < 0)
                                return r;
                }
        } else if (!strcmp(kw->s, "macro")) {
                Token *name = next(p);
                if (name->type != T_NAME)
                        return fail_at(p, name->line, "expected a macro name, got %s",
                                       describe(name));
                n = node(p, N_MACRO, kw->line);
                if (!n)
                        return -ENOMEM;
                n->name = name->s;
                static const char *const ends[] = { "endmacro", NULL };
                if ((r = parse_params(p, n)) < 0 || (r = expect_block_end(p)) < 0 ||
                    (r = parse_body(p, &n->body, ends, &end)) < 0)
                        return r;
                if (peek(p)->type == T_NAME && !strcmp(peek(p)->s, name->s))
                        next(p);
        } else if (!strcmp(kw->s, "call")) {
                n = node(p, N_CALL_BLOCK, kw->line);
                if (!n)
                        return -ENOMEM;
                if (is_op(peek(p), "(") && (r = parse_params(p, n)) < 0)
                        return r;
                if ((r = parse_expr(p, &n->a)) < 0)
                        return r;
                if (n->a->kind != N_CALL)
                        return fail_at(p, kw->line, "%s", "expected a macro call");
                static const char *const ends[] = { "endcall", NULL };
                if ((r = expect_block_end(p)) < 0 || (r = parse_body(p, &n->body, ends, &end)) < 0)
                        return r;
        } else if (!strcmp(kw->s, "filter")) {
                n = node(p, N_FILTER_BLOCK, kw->line);
                if (!n)
                        return -ENOMEM;
                /* the filter chain without its first "|" */
                p->pos--;
                p->t[p->pos] = (Token){ .type = T_OP, .line = kw->line, .s = "|", .len = 1 };
                static const char *const ends[] = { "endfilter", NULL };
                if ((r = parse_filter(p, NULL, &n->b)) < 0 || (r = expect_block_end(p)) < 0 ||
                    (r = parse_body(p, &n->body, ends, &end)) < 0)
                        return r;
        } else if (!strcmp(kw->s, "with")) {
                n = node(p, N_WITH, kw->line);
                if (!n)
                        return -ENOMEM;
                while (peek(p)->type != T_BLOCK_END) {
                        Token *t = next(p);
                        Node *v;
                        if (t->type != T_NAME)
                                return fail_at(p, t->line, "expected a name, got %s", describe(t));
                        Node *target = node(p, N_NAME, t->line);
                        if (!target)
                                return -ENOMEM;
                        target->name = t->s;
                        if ((r = expect_op(p, "=")) < 0 || (r = parse_expr(p, &v)) < 0 ||
                            (r = add(p, &n->targets, target)) < 0 || (r = add(p, &n->items, v)) < 0)
                                return r;
                        if (!is_op(peek(p), ","))
                                break;
                        next(p);
                }
                static const char *const ends[] = { "endwith", NULL };
                if ((r = expect_block_end(p)) < 0 || (r = parse_body(p, &n->body, ends, &end)) < 0)
                        return r;
        } else if (!strcmp(kw->s, "generation")) {
                n = node(p, N_BLOCK, kw->line);
                static const char *const ends[] = { "endgeneration", NULL };
                if (!n)
                        return -ENOMEM;
                if ((r = expect_block_end(p)) < 0 || (r = parse_body(p, &n->body, ends, &end)) < 0)
                        return r;
        } else if (!strcmp(kw->s, "break") || !strcmp(kw->s, "continue")) {
                n = node(p, kw->s[0] == 'b' ? N_BREAK : N_CONTINUE, kw->line);
                if (!n)
                        return -ENOMEM;
        } else {
                return fail_at(p, kw->line, "unknown statement '%s'", kw->s);
        }
        p->depth--;
        if ((r = add(p, out, n)) < 0)
                return r;
        /* the tag that ended a block statement has been read up to its name */
        return expect_block_end(p);
}

/*
 * Nodes until a block tag named in @ends (NULL-terminated; NULL @ends: the
 * end of the template). The tag's name is taken, its "%}" is not.
 */
static int parse_body(Parser *p, NodeList *body, const char *const *ends, const char **ret_end)
{
        int r;

        for (;;) {
                Token *t = peek(p);
                Node *n;
                switch (t->type) {
                case T_EOF:
                        if (ends) {
                                size_t last = 0;
                                while (ends[last + 1])
                                        last++;
                                return fail_at(p, t->line, "missing '{%% %s %%}'", ends[last]);
                        }
                        return 0;
                case T_TEXT:
                        next(p);
                        if (!(n = node(p, N_TEXT, t->line)))
                                return -ENOMEM;
                        n->value = slm_value_str_static(t->s, t->len);
                        if ((r = add(p, body, n)) < 0)
                                return r;
                        break;
                case T_VAR_BEGIN:
                        next(p);
                        if (!(n = node(p, N_OUTPUT, t->line)))
                                return -ENOMEM;
                        if ((r = parse_tuple(p, &n->a)) < 0)
                                return r;
                        if (peek(p)->type != T_VAR_END)
                                return fail_at(p, peek(p)->line, "expected '}}', got %s",
                                               describe(peek(p)));
                        next(p);
                        if ((r = add(p, body, n)) < 0)
                                return r;
                        break;
                case T_BLOCK_BEGIN: {
                        Token *name = peek2(p);
                        for (size_t i = 0; ends && ends[i]; i++) {
                                if (is_name(name, ends[i])) {
                                        p->pos += 2;
                                        *ret_end = ends[i];
                                        return 0;
                                }
                        }
                        if (name->type == T_NAME &&
                            (!strncmp(name->s, "end", 3) || !strcmp(name->s, "elif") ||
                             !strcmp(name->s, "else")))
                                return fail_at(p, name->line, "unexpected '%s'", name->s);
                        next(p);
                        if ((r = parse_statement(p, body)) < 0)
                                return r;
                        break;
                }
                default:
                        return unexpected(p);
                }
        }
}

/* Newlines normalized to "\n" and one trailing newline dropped, as Jinja2 reads a source. */
static char *normalize(SlmArena *a, const char *src, size_t len, size_t *ret_len)
{
        char *o = slm_arena_alloc(a, len + 1);
        size_t n = 0;

        if (!o)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                if (src[i] == '\r') {
                        o[n++] = '\n';
                        if (i + 1 < len && src[i + 1] == '\n')
                                i++;
                } else {
                        o[n++] = src[i];
                }
        }
        if (n && o[n - 1] == '\n')
                n--;
        o[n] = 0;
        *ret_len = n;
        return o;
}

int slm_jinja_parse(const char *src, size_t len, SlmJinja **ret, SlmError *err)
{
        SlmJinja *t = calloc(1, sizeof(*t));
        Parser p = { .err = err };
        size_t n;
        int r;

        if (!t)
                return slm_error_set(err, -ENOMEM, "out of memory");
        slm_arena_init(&t->arena, 0);
        p.a = &t->arena;
        const char *s = memchr(src, 0, len) ? NULL : normalize(p.a, src, len, &n);
        if (!s) {
                r = memchr(src, 0, len) ? slm_error_set(err, -EINVAL, "template holds a NUL byte")
                                        : -ENOMEM;
        } else if (!slm_utf8_valid(s, n)) {
                r = slm_error_set(err, -EINVAL, "template is not UTF-8");
        } else {
                r = lex(&p, s, n);
                if (r >= 0)
                        r = parse_body(&p, &t->body, NULL, NULL);
        }
        free(p.t);
        if (r == -ENOMEM)
                slm_error_set(err, r, "out of memory");
        if (r < 0) {
                slm_jinja_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

SlmJinja *slm_jinja_free(SlmJinja *t)
{
        if (t) {
                slm_arena_clear(&t->arena);
                free(t);
        }
        return NULL;
}
