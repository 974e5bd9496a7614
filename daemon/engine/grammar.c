/* SPDX-License-Identifier: MIT */
#include "grammar.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "unicode.h"

#define MAX_ELEMS     (1u << 20) /* a grammar's size */
#define MAX_STACKS    4096       /* ways of reading the text at once */
#define MAX_STACK     2048       /* nesting of one way */
#define MAX_EXPAND    256        /* rules entered without reading a character */
#define CACHE_ENTRIES 64         /* positions whose allowed tokens are remembered */
#define MAX_TOKEN_CPS 256
#define MAX_WORK      (50u * 1000 * 1000) /* stack operations one mask or token may take */

enum { E_END, E_ALT, E_RULE, E_CHARS };

typedef struct {
        uint8_t kind;
        uint8_t neg; /* E_CHARS: the ranges say what does not match */
        uint32_t a;  /* E_RULE: the rule; E_CHARS: the first range */
        uint32_t n;  /* E_CHARS: how many ranges */
} Elem;

typedef struct {
        uint32_t lo, hi;
} Range;

struct SlmGrammar {
        Elem *e;
        size_t n_e, cap_e;
        Range *r;
        size_t n_r, cap_r;
        uint32_t *rule_start; /* each rule's first element */
        size_t n_rules;
        uint32_t start; /* an E_RULE of root, then E_END */
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
        if (need <= *cap)
                return 0;
        size_t c = *cap ? *cap : 16;
        while (c < need)
                c *= 2;
        if (c > SIZE_MAX / elem)
                return -ENOMEM;
        void *q = realloc(*p, c * elem);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = c;
        return 0;
}

/* ---- parsing GBNF ---- */

typedef struct {
        Elem *v;
        size_t n, cap;
} Seq;

typedef struct {
        char *name;
        bool defined;
        Seq body; /* until committed */
} Sym;

typedef struct {
        SlmGrammar *g;
        const char *s, *end;
        SlmError *err;
        Sym *syms;
        size_t n_syms, cap_syms;
        SlmStrMap names; /* name -> symbol */
        int depth;
} P;

static int perr(P *p, const char *what)
{
        return slm_error_set(p->err, -EINVAL, "grammar: %s near \"%.20s\"", what, p->s);
}

static int seq_push(Seq *q, Elem e)
{
        if (q->n >= MAX_ELEMS || grow((void **)&q->v, &q->cap, q->n + 1, sizeof(Elem)) < 0)
                return -ENOMEM;
        q->v[q->n++] = e;
        return 0;
}

static int sym_id(P *p, const char *name, size_t len, uint32_t *ret)
{
        int32_t known = p->names.slots ? slm_strmap_get(&p->names, name, len) : -1;

        if (known >= 0) {
                *ret = (uint32_t)known;
                return 0;
        }
        if (!p->names.slots && slm_strmap_init(&p->names, 64) < 0)
                return -ENOMEM;
        if (p->n_syms >= MAX_ELEMS ||
            grow((void **)&p->syms, &p->cap_syms, p->n_syms + 1, sizeof(Sym)) < 0)
                return -ENOMEM;
        char *n = malloc(len + 1);
        if (!n)
                return -ENOMEM;
        memcpy(n, name, len);
        n[len] = 0;
        if (slm_strmap_put(&p->names, n, len, (int32_t)p->n_syms) < 0) {
                free(n);
                return -ENOMEM;
        }
        p->syms[p->n_syms] = (Sym){ .name = n };
        *ret = (uint32_t)p->n_syms++;
        return 0;
}

/* A rule of its own for generated parts (groups, repetitions). */
static int new_sym(P *p, uint32_t *ret)
{
        char name[32];
        int n = snprintf(name, sizeof(name), "\x01%zu", p->n_syms);
        return sym_id(p, name, (size_t)n, ret);
}

static int add_range(P *p, uint32_t lo, uint32_t hi)
{
        SlmGrammar *g = p->g;
        if (g->n_r >= MAX_ELEMS || grow((void **)&g->r, &g->cap_r, g->n_r + 1, sizeof(Range)) < 0)
                return -ENOMEM;
        g->r[g->n_r++] = (Range){ lo, hi };
        return 0;
}

static bool is_word(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
}

/* Spaces and comments; newlines too when @newlines. */
static void space(P *p, bool newlines)
{
        while (p->s < p->end) {
                char c = *p->s;
                if (c == '#') {
                        while (p->s < p->end && *p->s != '\n')
                                p->s++;
                } else if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
                        p->s++;
                } else {
                        break;
                }
        }
}

static int hexn(P *p, int n, uint32_t *ret)
{
        uint32_t v = 0;
        for (int i = 0; i < n; i++) {
                if (p->s >= p->end)
                        return perr(p, "bad escape");
                char c = *p->s++;
                int d = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
                if (d < 0)
                        return perr(p, "bad escape");
                v = v * 16 + (uint32_t)d;
        }
        *ret = v;
        return 0;
}

/* One character of a literal or class, escapes decoded. */
static int parse_char(P *p, uint32_t *ret)
{
        if (p->s >= p->end)
                return perr(p, "unexpected end");
        if (*p->s == '\\') {
                p->s++;
                if (p->s >= p->end)
                        return perr(p, "unexpected end");
                char c = *p->s++;
                switch (c) {
                case 'x':
                        return hexn(p, 2, ret);
                case 'u':
                        return hexn(p, 4, ret);
                case 'U':
                        return hexn(p, 8, ret);
                case 't':
                        *ret = '\t';
                        return 0;
                case 'r':
                        *ret = '\r';
                        return 0;
                case 'n':
                        *ret = '\n';
                        return 0;
                case '\\':
                case '"':
                case '[':
                case ']':
                case '-':
                case '^':
                        *ret = (uint32_t)c;
                        return 0;
                default:
                        return perr(p, "unknown escape");
                }
        }
        size_t n = slm_utf8_decode(p->s, (size_t)(p->end - p->s), ret);
        if (*ret == SLM_UNICODE_INVALID)
                return perr(p, "invalid UTF-8");
        p->s += n;
        return 0;
}

static int commit(P *p, uint32_t id, Seq *body);
static int parse_alternates(P *p, Seq *out, bool nested);

/* X{min,max} (max UINT32_MAX: no bound) of the element at out->v[at..] (one element). */
static int repeat(P *p, Seq *out, size_t at, uint32_t min, uint32_t max)
{
        int r;

        if (out->n - at != 1) {
                /* a literal of several characters: repeat it as one rule */
                uint32_t id;
                Seq body = { 0 };
                for (size_t i = at; i < out->n; i++)
                        if ((r = seq_push(&body, out->v[i])) < 0)
                                return r;
                if ((r = new_sym(p, &id)) < 0 || (r = commit(p, id, &body)) < 0)
                        return r;
                out->n = at;
                if ((r = seq_push(out, (Elem){ .kind = E_RULE, .a = id })) < 0)
                        return r;
        }
        Elem x = out->v[at];
        out->n = at;
        if (min > 1000 || (max != UINT32_MAX && (max > 1000 || max < min)))
                return perr(p, "repetition bounds must be 0 to 1000, min <= max");
        for (uint32_t i = 0; i < min; i++)
                if ((r = seq_push(out, x)) < 0)
                        return r;
        if (max == UINT32_MAX) {
                /* R ::= X R | "" */
                uint32_t id;
                Seq body = { 0 };
                if ((r = new_sym(p, &id)) < 0 || (r = seq_push(&body, x)) < 0 ||
                    (r = seq_push(&body, (Elem){ .kind = E_RULE, .a = id })) < 0 ||
                    (r = seq_push(&body, (Elem){ .kind = E_ALT })) < 0 ||
                    (r = commit(p, id, &body)) < 0)
                        return r;
                return seq_push(out, (Elem){ .kind = E_RULE, .a = id });
        }
        /* R1 ::= X R2 | "" ... Rk ::= X | "" */
        uint32_t next = UINT32_MAX;
        for (uint32_t i = min; i < max; i++) {
                uint32_t id;
                Seq body = { 0 };
                if ((r = new_sym(p, &id)) < 0 || (r = seq_push(&body, x)) < 0)
                        return r;
                if (next != UINT32_MAX &&
                    (r = seq_push(&body, (Elem){ .kind = E_RULE, .a = next })) < 0)
                        return r;
                if ((r = seq_push(&body, (Elem){ .kind = E_ALT })) < 0 ||
                    (r = commit(p, id, &body)) < 0)
                        return r;
                next = id;
        }
        return next == UINT32_MAX ? 0 : seq_push(out, (Elem){ .kind = E_RULE, .a = next });
}

static int parse_uint(P *p, uint32_t *ret)
{
        uint64_t v = 0;
        if (p->s >= p->end || *p->s < '0' || *p->s > '9')
                return perr(p, "expected a number");
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
                v = v * 10 + (uint64_t)(*p->s++ - '0');
                if (v > 100000)
                        return perr(p, "number too large");
        }
        *ret = (uint32_t)v;
        return 0;
}

static int parse_sequence(P *p, Seq *out, bool nested)
{
        int r;

        for (;;) {
                space(p, nested);
                if (p->s >= p->end)
                        return 0;
                char c = *p->s;
                size_t at = out->n;
                if (c == '"') {
                        p->s++;
                        while (p->s < p->end && *p->s != '"') {
                                uint32_t cp;
                                if ((r = parse_char(p, &cp)) < 0 ||
                                    (r = add_range(p, cp, cp)) < 0 ||
                                    (r = seq_push(out, (Elem){ .kind = E_CHARS,
                                                               .a = (uint32_t)p->g->n_r - 1,
                                                               .n = 1 })) < 0)
                                        return r;
                        }
                        if (p->s >= p->end)
                                return perr(p, "unterminated string");
                        p->s++;
                        if (out->n == at)
                                continue; /* "" is nothing */
                } else if (c == '[') {
                        p->s++;
                        Elem e = { .kind = E_CHARS, .a = (uint32_t)p->g->n_r };
                        if (p->s < p->end && *p->s == '^') {
                                e.neg = 1;
                                p->s++;
                        }
                        while (p->s < p->end && *p->s != ']') {
                                uint32_t lo, hi;
                                if ((r = parse_char(p, &lo)) < 0)
                                        return r;
                                hi = lo;
                                if (p->s + 1 < p->end && *p->s == '-' && p->s[1] != ']') {
                                        p->s++;
                                        if ((r = parse_char(p, &hi)) < 0)
                                                return r;
                                }
                                if (hi < lo)
                                        return perr(p, "range out of order");
                                if ((r = add_range(p, lo, hi)) < 0)
                                        return r;
                                e.n++;
                        }
                        if (p->s >= p->end)
                                return perr(p, "unterminated character class");
                        p->s++;
                        if ((r = seq_push(out, e)) < 0)
                                return r;
                } else if (c == '.') {
                        p->s++;
                        if ((r = seq_push(out, (Elem){ .kind = E_CHARS, .neg = 1 })) < 0)
                                return r;
                } else if (c == '(') {
                        p->s++;
                        uint32_t id;
                        Seq body = { 0 };
                        if (++p->depth > 100)
                                return perr(p, "nested too deeply");
                        if ((r = new_sym(p, &id)) < 0 ||
                            (r = parse_alternates(p, &body, true)) < 0) {
                                free(body.v);
                                return r;
                        }
                        p->depth--;
                        space(p, true);
                        if (p->s >= p->end || *p->s != ')') {
                                free(body.v);
                                return perr(p, "expected ')'");
                        }
                        p->s++;
                        if ((r = commit(p, id, &body)) < 0 ||
                            (r = seq_push(out, (Elem){ .kind = E_RULE, .a = id })) < 0)
                                return r;
                } else if (is_word(c)) {
                        const char *name = p->s;
                        while (p->s < p->end && is_word(*p->s))
                                p->s++;
                        /* the next rule's "name ::=" ends this one */
                        const char *save = p->s;
                        space(p, false);
                        if (p->end - p->s >= 3 && !memcmp(p->s, "::=", 3)) {
                                p->s = name;
                                return 0;
                        }
                        p->s = save;
                        uint32_t id;
                        if ((r = sym_id(p, name, (size_t)(save - name), &id)) < 0 ||
                            (r = seq_push(out, (Elem){ .kind = E_RULE, .a = id })) < 0)
                                return r;
                } else {
                        return 0;
                }
                /* repetition of what was just read */
                if (p->s < p->end && (*p->s == '*' || *p->s == '+' || *p->s == '?')) {
                        char op = *p->s++;
                        r = repeat(p, out, at, op == '+' ? 1 : 0, op == '?' ? 1 : UINT32_MAX);
                } else if (p->s < p->end && *p->s == '{') {
                        uint32_t min, max;
                        p->s++;
                        space(p, true);
                        if ((r = parse_uint(p, &min)) < 0)
                                return r;
                        max = min;
                        space(p, true);
                        if (p->s < p->end && *p->s == ',') {
                                p->s++;
                                space(p, true);
                                max = UINT32_MAX;
                                if (p->s < p->end && *p->s != '}' && (r = parse_uint(p, &max)) < 0)
                                        return r;
                                space(p, true);
                        }
                        if (p->s >= p->end || *p->s != '}')
                                return perr(p, "expected '}'");
                        p->s++;
                        r = repeat(p, out, at, min, max);
                } else {
                        r = 0;
                }
                if (r < 0)
                        return r;
        }
}

static int parse_alternates(P *p, Seq *out, bool nested)
{
        int r;

        for (;;) {
                if ((r = parse_sequence(p, out, nested)) < 0)
                        return r;
                space(p, nested);
                if (p->s < p->end && *p->s == '|') {
                        p->s++;
                        space(p, true);
                        if ((r = seq_push(out, (Elem){ .kind = E_ALT })) < 0)
                                return r;
                        continue;
                }
                return 0;
        }
}

/* Give rule @id the body @body (taken): its elements go to the grammar. */
static int commit(P *p, uint32_t id, Seq *body)
{
        SlmGrammar *g = p->g;
        int r = seq_push(body, (Elem){ .kind = E_END });

        if (r < 0 || g->n_e + body->n > MAX_ELEMS ||
            grow((void **)&g->e, &g->cap_e, g->n_e + body->n, sizeof(Elem)) < 0) {
                free(body->v);
                return r < 0 ? r : -ENOMEM;
        }
        if (p->syms[id].defined) {
                free(body->v);
                return slm_error_set(p->err, -EINVAL, "grammar: rule '%s' is defined twice",
                                     p->syms[id].name);
        }
        p->syms[id].defined = true;
        p->syms[id].body.n = g->n_e; /* where it starts */
        memcpy(g->e + g->n_e, body->v, body->n * sizeof(Elem));
        g->n_e += body->n;
        free(body->v);
        *body = (Seq){ 0 };
        return 0;
}

static bool at_end(const SlmGrammar *g, uint32_t pos)
{
        return g->e[pos].kind == E_END || g->e[pos].kind == E_ALT;
}

/* Rules that can match nothing, then a refusal of left recursion (it would never end). */
static int check_rules(P *p)
{
        SlmGrammar *g = p->g;
        size_t n = g->n_rules;
        bool *nullable = calloc(n ? n : 1, sizeof(bool));
        uint8_t *state = calloc(n ? n : 1, 1);
        uint32_t *stack = calloc(n ? n * 2 : 1, sizeof(uint32_t));
        int r = 0;

        if (!nullable || !state || !stack) {
                r = -ENOMEM;
                goto out;
        }
        for (bool changed = true; changed;) {
                changed = false;
                for (size_t i = 0; i < n; i++) {
                        if (nullable[i])
                                continue;
                        for (uint32_t pos = g->rule_start[i];; pos++) {
                                bool all = true;
                                for (; !at_end(g, pos); pos++)
                                        if (g->e[pos].kind != E_RULE || !nullable[g->e[pos].a])
                                                all = false;
                                if (all) {
                                        nullable[i] = changed = true;
                                        break;
                                }
                                if (g->e[pos].kind == E_END)
                                        break;
                        }
                }
        }
        /* depth-first over "can start with" edges; state 1 on the path, 2 done */
        for (size_t root = 0; root < n && r == 0; root++) {
                if (state[root])
                        continue;
                size_t sp = 0;
                stack[sp++] = (uint32_t)root;
                stack[sp++] = g->rule_start[root];
                state[root] = 1;
                while (sp > 0 && r == 0) {
                        uint32_t rule = stack[sp - 2], pos = stack[sp - 1];
                        /* the next rule this one can start with, from @pos on */
                        uint32_t found = UINT32_MAX;
                        while (g->e[pos].kind != E_END) {
                                const Elem *e = &g->e[pos];
                                if (e->kind == E_ALT) {
                                        pos++;
                                        continue;
                                }
                                /* a reference at the start of its alternative, or after nullables
                                 */
                                uint32_t k = pos;
                                while (k > g->rule_start[rule] && !at_end(g, k - 1) &&
                                       g->e[k - 1].kind == E_RULE && nullable[g->e[k - 1].a])
                                        k--;
                                bool first = k == g->rule_start[rule] || at_end(g, k - 1);
                                pos++;
                                if (e->kind == E_RULE && first) {
                                        found = e->a;
                                        break;
                                }
                        }
                        stack[sp - 1] = pos;
                        if (found == UINT32_MAX) {
                                state[rule] = 2;
                                sp -= 2;
                        } else if (state[found] == 1) {
                                r = slm_error_set(
                                    p->err, -EINVAL, "grammar: rule '%s' is left-recursive",
                                    p->syms[found].name[0] == 1 ? "(a group)"
                                                                : p->syms[found].name);
                        } else if (state[found] == 0) {
                                state[found] = 1;
                                stack[sp++] = found;
                                stack[sp++] = g->rule_start[found];
                        }
                }
        }
out:
        free(nullable);
        free(state);
        free(stack);
        return r;
}

int slm_grammar_parse(const char *gbnf, size_t len, SlmGrammar **ret, SlmError *err)
{
        SlmGrammar *g = calloc(1, sizeof(*g));
        P p = { .g = g, .s = gbnf, .end = gbnf + len, .err = err };
        int r = 0;

        if (!g)
                return slm_error_set(err, -ENOMEM, "out of memory");
        for (;;) {
                space(&p, true);
                if (p.s >= p.end)
                        break;
                const char *name = p.s;
                while (p.s < p.end && is_word(*p.s))
                        p.s++;
                if (p.s == name) {
                        r = perr(&p, "expected a rule name");
                        break;
                }
                uint32_t id;
                if ((r = sym_id(&p, name, (size_t)(p.s - name), &id)) < 0)
                        break;
                space(&p, false);
                if (p.end - p.s < 3 || memcmp(p.s, "::=", 3) != 0) {
                        r = perr(&p, "expected '::='");
                        break;
                }
                p.s += 3;
                space(&p, true);
                Seq body = { 0 };
                if ((r = parse_alternates(&p, &body, false)) < 0) {
                        free(body.v);
                        break;
                }
                if (p.s < p.end && *p.s != '\n' && !is_word(*p.s)) {
                        free(body.v);
                        r = perr(&p, "unexpected character");
                        break;
                }
                if ((r = commit(&p, id, &body)) < 0)
                        break;
        }
        uint32_t root = UINT32_MAX;
        for (size_t i = 0; r == 0 && i < p.n_syms; i++) {
                if (!p.syms[i].defined)
                        r = slm_error_set(err, -EINVAL, "grammar: rule '%s' is not defined",
                                          p.syms[i].name);
                if (!strcmp(p.syms[i].name, "root"))
                        root = (uint32_t)i;
        }
        if (r == 0 && root == UINT32_MAX)
                r = slm_error_set(err, -EINVAL, "grammar: no rule 'root'");
        if (r == 0) {
                g->n_rules = p.n_syms;
                g->rule_start = malloc((p.n_syms ? p.n_syms : 1) * sizeof(uint32_t));
                if (!g->rule_start ||
                    grow((void **)&g->e, &g->cap_e, g->n_e + 2, sizeof(Elem)) < 0) {
                        r = -ENOMEM;
                } else {
                        for (size_t i = 0; i < p.n_syms; i++)
                                g->rule_start[i] = (uint32_t)p.syms[i].body.n;
                        g->start = (uint32_t)g->n_e;
                        g->e[g->n_e++] = (Elem){ .kind = E_RULE, .a = root };
                        g->e[g->n_e++] = (Elem){ .kind = E_END };
                        r = check_rules(&p);
                }
        }
        for (size_t i = 0; i < p.n_syms; i++)
                free(p.syms[i].name);
        free(p.syms);
        slm_strmap_clear(&p.names);
        if (r == -ENOMEM)
                slm_error_set(err, r, "grammar: out of memory");
        if (r < 0) {
                slm_grammar_free(g);
                return r;
        }
        *ret = g;
        return 0;
}

SlmGrammar *slm_grammar_free(SlmGrammar *g)
{
        if (g) {
                free(g->e);
                free(g->r);
                free(g->rule_start);
                free(g);
        }
        return NULL;
}

/* ---- the vocabulary's trie ---- */

typedef struct {
        uint32_t cp;
        int32_t first_child, next_sibling;
        int32_t first_token; /* tokens whose text ends here, linked by next_token */
} TrieNode;

struct SlmTokenTrie {
        TrieNode *nodes;
        size_t n_nodes, cap_nodes;
        int32_t *next_token;
        uint32_t *cps;     /* each token's text */
        uint32_t *cps_off; /* token i: cps[cps_off[i] .. cps_off[i + 1]) */
        bool *eog;         /* end-of-generation tokens */
        int32_t n_vocab;
        size_t max_len;
};

static int32_t trie_child(SlmTokenTrie *t, int32_t node, uint32_t cp)
{
        int32_t prev = -1;

        for (int32_t c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next_sibling) {
                if (t->nodes[c].cp == cp)
                        return c;
                prev = c;
        }
        if (grow((void **)&t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof(TrieNode)) < 0)
                return -1;
        int32_t id = (int32_t)t->n_nodes++;
        t->nodes[id] = (TrieNode){ cp, -1, -1, -1 };
        if (prev < 0)
                t->nodes[node].first_child = id;
        else
                t->nodes[prev].next_sibling = id;
        return id;
}

int slm_token_trie_new(const SlmTokenizer *tk, SlmTokenTrie **ret)
{
        SlmTokenTrie *t = calloc(1, sizeof(*t));
        int32_t n = slm_tokenizer_n_vocab(tk);
        size_t total = 0, cap = 0;

        if (!t)
                return -ENOMEM;
        t->n_vocab = n;
        t->next_token = malloc((size_t)n * sizeof(int32_t));
        t->cps_off = malloc(((size_t)n + 1) * sizeof(uint32_t));
        t->eog = calloc((size_t)n, sizeof(bool));
        if (!t->next_token || !t->cps_off || !t->eog ||
            grow((void **)&t->nodes, &t->cap_nodes, 1, sizeof(TrieNode)) < 0)
                goto oom;
        t->nodes[t->n_nodes++] = (TrieNode){ 0, -1, -1, -1 };
        for (int32_t id = 0; id < n; id++) {
                size_t len = 0;
                const char *s = slm_tokenizer_piece(tk, id, false, &len);
                SlmTokenType type = slm_tokenizer_token_type(tk, id);
                bool usable = s && len > 0 && len <= MAX_TOKEN_CPS * 4 &&
                              (type == SLM_TOKEN_NORMAL || type == SLM_TOKEN_USER_DEFINED ||
                               type == SLM_TOKEN_BYTE) &&
                              slm_utf8_valid(s, len);
                t->eog[id] = slm_tokenizer_is_eog(tk, id);
                t->next_token[id] = -1;
                t->cps_off[id] = (uint32_t)total;
                if (!usable)
                        continue;
                if (grow((void **)&t->cps, &cap, total + len, sizeof(uint32_t)) < 0)
                        goto oom;
                int32_t node = 0;
                size_t k = 0;
                for (size_t i = 0; i < len; k++) {
                        uint32_t cp;
                        i += slm_utf8_decode(s + i, len - i, &cp);
                        t->cps[total + k] = cp;
                        if ((node = trie_child(t, node, cp)) < 0)
                                goto oom;
                }
                total += k;
                if (k > t->max_len)
                        t->max_len = k;
                t->next_token[id] = t->nodes[node].first_token;
                t->nodes[node].first_token = id;
        }
        t->cps_off[n] = (uint32_t)total;
        *ret = t;
        return 0;
oom:
        slm_token_trie_free(t);
        return -ENOMEM;
}

SlmTokenTrie *slm_token_trie_free(SlmTokenTrie *t)
{
        if (t) {
                free(t->nodes);
                free(t->next_token);
                free(t->cps);
                free(t->cps_off);
                free(t->eog);
                free(t);
        }
        return NULL;
}

/* ---- matching ---- */

/* Stacks of element positions, top last; stack i is d[off[i] .. off[i + 1]). */
typedef struct {
        uint32_t *d;
        size_t n, cap;
        uint32_t *off;
        size_t n_st, cap_st;
} Set;

typedef struct {
        uint64_t hash;
        Set key;
        uint64_t *bits;
        int allowed;
        bool used;
} CacheEntry;

struct SlmGrammarMatcher {
        const SlmGrammar *g;
        const SlmTokenTrie *t;
        Set cur, tmp;
        Set *levels; /* the trie walk's, one per depth */
        size_t n_levels;
        uint32_t *sv; /* scratch for stacks being expanded */
        size_t n_sv, cap_sv;
        CacheEntry cache[CACHE_ENTRIES];
        size_t cache_next;
        uint64_t *bits; /* the mask being built */
        uint64_t work;  /* spent by the current call, against MAX_WORK */
};

static void set_clear(Set *s)
{
        s->n = 0;
        s->n_st = 0;
}

static void set_free(Set *s)
{
        free(s->d);
        free(s->off);
        *s = (Set){ 0 };
}

static int set_add(Set *s, const uint32_t *stk, size_t len)
{
        for (size_t i = 0; i < s->n_st; i++) {
                size_t l = s->off[i + 1] - s->off[i];
                if (l == len &&
                    (len == 0 || !memcmp(s->d + s->off[i], stk, len * sizeof(uint32_t))))
                        return 0;
        }
        if (s->n_st >= MAX_STACKS || len > MAX_STACK)
                return -E2BIG;
        if (grow((void **)&s->d, &s->cap, s->n + len, sizeof(uint32_t)) < 0 ||
            grow((void **)&s->off, &s->cap_st, s->n_st + 2, sizeof(uint32_t)) < 0)
                return -ENOMEM;
        if (s->n_st == 0)
                s->off[0] = 0;
        if (len)
                memcpy(s->d + s->n, stk, len * sizeof(uint32_t));
        s->n += len;
        s->off[++s->n_st] = (uint32_t)s->n;
        return 0;
}

static int sv_reserve(SlmGrammarMatcher *m, size_t more)
{
        return grow((void **)&m->sv, &m->cap_sv, m->n_sv + more, sizeof(uint32_t));
}

/* Add to @out every stack that the stack sv[at .. at + len) stands for, with a character on top. */
static int expand(SlmGrammarMatcher *m, Set *out, size_t at, size_t len, int depth)
{
        const SlmGrammar *g = m->g;
        int r;

        /* comparing with every stack already there, and copying: an ambiguous grammar's cost */
        m->work += out->n_st + len;
        if (m->work > MAX_WORK)
                return -E2BIG;
        if (len == 0 || g->e[m->sv[at + len - 1]].kind == E_CHARS)
                return set_add(out, m->sv + at, len);
        if (depth > MAX_EXPAND || len > MAX_STACK)
                return -E2BIG;
        uint32_t top = m->sv[at + len - 1];
        uint32_t rule = g->e[top].a;
        for (uint32_t alt = g->rule_start[rule];; alt++) {
                size_t base = m->n_sv;
                if ((r = sv_reserve(m, len + 1)) < 0)
                        return r;
                memcpy(m->sv + base, m->sv + at, (len - 1) * sizeof(uint32_t));
                size_t l = len - 1;
                if (!at_end(g, top + 1))
                        m->sv[base + l++] = top + 1;
                if (!at_end(g, alt))
                        m->sv[base + l++] = alt;
                m->n_sv = base + l;
                r = expand(m, out, base, l, depth + 1);
                m->n_sv = base;
                if (r < 0)
                        return r;
                while (!at_end(g, alt))
                        alt++;
                if (g->e[alt].kind == E_END)
                        break;
        }
        return 0;
}

static bool elem_matches(const SlmGrammar *g, const Elem *e, uint32_t cp)
{
        bool in = false;
        for (uint32_t i = 0; i < e->n && !in; i++)
                in = cp >= g->r[e->a + i].lo && cp <= g->r[e->a + i].hi;
        return in != (e->neg != 0);
}

static int advance(SlmGrammarMatcher *m, const Set *in, uint32_t cp, Set *out)
{
        const SlmGrammar *g = m->g;
        int r;

        set_clear(out);
        for (size_t i = 0; i < in->n_st; i++) {
                size_t len = in->off[i + 1] - in->off[i];
                if (len == 0)
                        continue;
                const uint32_t *stk = in->d + in->off[i];
                uint32_t top = stk[len - 1];
                if (!elem_matches(g, &g->e[top], cp))
                        continue;
                size_t base = m->n_sv;
                if ((r = sv_reserve(m, len)) < 0)
                        return r;
                memcpy(m->sv + base, stk, (len - 1) * sizeof(uint32_t));
                size_t l = len - 1;
                if (!at_end(g, top + 1))
                        m->sv[base + l++] = top + 1;
                m->n_sv = base + l;
                r = expand(m, out, base, l, 0);
                m->n_sv = base;
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool set_complete(const Set *s)
{
        for (size_t i = 0; i < s->n_st; i++)
                if (s->off[i + 1] == s->off[i])
                        return true;
        return false;
}

static int start(SlmGrammarMatcher *m)
{
        int r = sv_reserve(m, 1);

        if (r < 0)
                return r;
        m->sv[0] = m->g->start;
        m->n_sv = 1;
        r = expand(m, &m->cur, 0, 1, 0);
        m->n_sv = 0;
        return r;
}

int slm_grammar_matcher_new(const SlmGrammar *g, const SlmTokenTrie *t, SlmGrammarMatcher **ret)
{
        SlmGrammarMatcher *m = calloc(1, sizeof(*m));
        int r;

        if (!m)
                return -ENOMEM;
        m->g = g;
        m->t = t;
        if (t) {
                m->n_levels = t->max_len + 1;
                m->levels = calloc(m->n_levels, sizeof(Set));
                m->bits = calloc(((size_t)t->n_vocab + 63) / 64, sizeof(uint64_t));
                if (!m->levels || !m->bits) {
                        slm_grammar_matcher_free(m);
                        return -ENOMEM;
                }
        }
        if ((r = start(m)) < 0) {
                slm_grammar_matcher_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

SlmGrammarMatcher *slm_grammar_matcher_free(SlmGrammarMatcher *m)
{
        if (m) {
                set_free(&m->cur);
                set_free(&m->tmp);
                for (size_t i = 0; i < m->n_levels; i++)
                        set_free(&m->levels[i]);
                free(m->levels);
                for (size_t i = 0; i < CACHE_ENTRIES; i++) {
                        set_free(&m->cache[i].key);
                        free(m->cache[i].bits);
                }
                free(m->sv);
                free(m->bits);
                free(m);
        }
        return NULL;
}

static uint64_t set_hash(const Set *s)
{
        uint64_t h = 1469598103934665603ULL ^ s->n_st;
        for (size_t i = 0; i < s->n; i++)
                h = (h ^ s->d[i]) * 1099511628211ULL;
        for (size_t i = 0; i <= s->n_st && s->n_st; i++)
                h = (h ^ s->off[i]) * 1099511628211ULL;
        return h;
}

static bool set_equal(const Set *a, const Set *b)
{
        return a->n == b->n && a->n_st == b->n_st && !memcmp(a->d, b->d, a->n * sizeof(uint32_t)) &&
               (a->n_st == 0 || !memcmp(a->off, b->off, (a->n_st + 1) * sizeof(uint32_t)));
}

static int set_copy(Set *dst, const Set *src)
{
        set_clear(dst);
        if (grow((void **)&dst->d, &dst->cap, src->n ? src->n : 1, sizeof(uint32_t)) < 0 ||
            grow((void **)&dst->off, &dst->cap_st, src->n_st + 1, sizeof(uint32_t)) < 0)
                return -ENOMEM;
        if (src->n)
                memcpy(dst->d, src->d, src->n * sizeof(uint32_t));
        if (src->n_st)
                memcpy(dst->off, src->off, (src->n_st + 1) * sizeof(uint32_t));
        dst->n = src->n;
        dst->n_st = src->n_st;
        return 0;
}

/* Mark every token under trie @node whose text the stacks @in accept; @depth's set is free. */
static int walk(SlmGrammarMatcher *m, int32_t node, const Set *in, size_t depth, int *count)
{
        const SlmTokenTrie *t = m->t;
        int r;

        for (int32_t c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next_sibling) {
                Set *out = &m->levels[depth];
                if ((r = advance(m, in, t->nodes[c].cp, out)) < 0)
                        return r;
                if (out->n_st == 0)
                        continue;
                for (int32_t tok = t->nodes[c].first_token; tok >= 0; tok = t->next_token[tok]) {
                        m->bits[tok / 64] |= 1ULL << (tok % 64);
                        (*count)++;
                }
                if (t->nodes[c].first_child >= 0 && depth + 1 < m->n_levels &&
                    (r = walk(m, c, out, depth + 1, count)) < 0)
                        return r;
        }
        return 0;
}

static CacheEntry *cache_find(SlmGrammarMatcher *m, uint64_t h)
{
        for (size_t i = 0; i < CACHE_ENTRIES; i++)
                if (m->cache[i].used && m->cache[i].hash == h &&
                    set_equal(&m->cache[i].key, &m->cur))
                        return &m->cache[i];
        return NULL;
}

/* Every allowed token, by the trie walk, remembered for this position. */
static int full_mask(SlmGrammarMatcher *m, uint64_t h, CacheEntry **ret)
{
        const SlmTokenTrie *t = m->t;
        size_t words = ((size_t)t->n_vocab + 63) / 64;
        int count = 0, r;

        memset(m->bits, 0, words * sizeof(uint64_t));
        if ((r = walk(m, 0, &m->cur, 0, &count)) < 0)
                return r;
        if (set_complete(&m->cur)) {
                for (int32_t i = 0; i < t->n_vocab; i++) {
                        if (t->eog[i]) {
                                m->bits[i / 64] |= 1ULL << (i % 64);
                                count++;
                        }
                }
        }
        CacheEntry *e = &m->cache[m->cache_next];
        m->cache_next = (m->cache_next + 1) % CACHE_ENTRIES;
        if (!e->bits && !(e->bits = malloc(words * sizeof(uint64_t))))
                return -ENOMEM;
        if ((r = set_copy(&e->key, &m->cur)) < 0)
                return r;
        memcpy(e->bits, m->bits, words * sizeof(uint64_t));
        e->hash = h;
        e->allowed = count;
        e->used = true;
        *ret = e;
        return 0;
}

/* Whether token @tok's text can come next; uses the walk's sets 0 and 1 as scratch. */
static int token_ok(SlmGrammarMatcher *m, int32_t tok, bool *ret)
{
        const SlmTokenTrie *t = m->t;
        uint32_t b = t->cps_off[tok], e = t->cps_off[tok + 1];
        const Set *in = &m->cur;
        int r;

        *ret = false;
        if (t->eog[tok]) {
                *ret = set_complete(&m->cur);
                return 0;
        }
        if (b == e || m->n_levels < 2)
                return 0;
        for (uint32_t i = b; i < e; i++) {
                Set *out = &m->levels[(i - b) % 2];
                if ((r = advance(m, in, t->cps[i], out)) < 0)
                        return r;
                if (out->n_st == 0)
                        return 0;
                in = out;
        }
        *ret = true;
        return 0;
}

#define TOP_CHECKS 256 /* tokens tried by their logits before the whole vocabulary is walked */

int slm_grammar_matcher_mask_top(SlmGrammarMatcher *m, float *logits, int k)
{
        const SlmTokenTrie *t = m->t;

        m->work = 0;
        size_t words = ((size_t)t->n_vocab + 63) / 64;
        uint64_t h = set_hash(&m->cur);
        CacheEntry *hit = cache_find(m, h);
        int r;

        if (!hit && k > 0 && k <= TOP_CHECKS / 4) {
                /*
                 * The @k best tokens the grammar allows, tried best first: where most tokens are
                 * allowed (a string being written) a few checks find them, and the sampler, which
                 * keeps @k, sees what the whole mask would give it.
                 */
                int32_t top[TOP_CHECKS];
                int n_top = 0;
                for (int32_t i = 0; i < t->n_vocab; i++) {
                        if (n_top == TOP_CHECKS && logits[i] <= logits[top[n_top - 1]])
                                continue;
                        int pos = n_top < TOP_CHECKS ? n_top++ : TOP_CHECKS - 1;
                        while (pos > 0 && logits[top[pos - 1]] < logits[i]) {
                                top[pos] = top[pos - 1];
                                pos--;
                        }
                        top[pos] = i;
                }
                int32_t keep[TOP_CHECKS / 4];
                int n_keep = 0;
                for (int i = 0; i < n_top && n_keep < k; i++) {
                        bool ok;
                        if ((r = token_ok(m, top[i], &ok)) < 0)
                                return r;
                        if (ok)
                                keep[n_keep++] = top[i];
                }
                if (n_keep == k) {
                        float saved[TOP_CHECKS / 4];
                        for (int i = 0; i < n_keep; i++)
                                saved[i] = logits[keep[i]];
                        for (int32_t i = 0; i < t->n_vocab; i++)
                                logits[i] = -INFINITY;
                        for (int i = 0; i < n_keep; i++)
                                logits[keep[i]] = saved[i];
                        return n_keep;
                }
        }
        if (!hit && (r = full_mask(m, h, &hit)) < 0)
                return r;
        for (size_t w = 0; w < words; w++) {
                uint64_t b = hit->bits[w];
                if (b == ~0ULL)
                        continue;
                for (size_t j = 0; j < 64 && w * 64 + j < (size_t)t->n_vocab; j++)
                        if (!(b & (1ULL << j)))
                                logits[w * 64 + j] = -INFINITY;
        }
        return hit->allowed;
}

int slm_grammar_matcher_mask(SlmGrammarMatcher *m, float *logits)
{
        return slm_grammar_matcher_mask_top(m, logits, 0);
}

/* Advance the matcher over one code point; -EINVAL when the grammar refuses it. */
static int step_cp(SlmGrammarMatcher *m, uint32_t cp)
{
        int r = advance(m, &m->cur, cp, &m->tmp);

        if (r < 0)
                return r;
        if (m->tmp.n_st == 0)
                return -EINVAL;
        Set swap = m->cur;
        m->cur = m->tmp;
        m->tmp = swap;
        return 0;
}

int slm_grammar_matcher_accept(SlmGrammarMatcher *m, int32_t token)
{
        const SlmTokenTrie *t = m->t;
        int r;

        m->work = 0;
        if (token < 0 || token >= t->n_vocab)
                return -EINVAL;
        if (t->eog[token]) {
                if (!set_complete(&m->cur))
                        return -EINVAL;
                /* nothing more: only the empty stack */
                set_clear(&m->cur);
                uint32_t none = 0;
                return set_add(&m->cur, &none, 0);
        }
        uint32_t b = t->cps_off[token], e = t->cps_off[token + 1];
        if (b == e)
                return -EINVAL;
        for (uint32_t i = b; i < e; i++)
                if ((r = step_cp(m, t->cps[i])) < 0)
                        return r;
        return 0;
}

int slm_grammar_matcher_accept_text(SlmGrammarMatcher *m, const char *text, size_t len)
{
        int r;

        m->work = 0;
        for (size_t i = 0; i < len;) {
                uint32_t cp;
                i += slm_utf8_decode(text + i, len - i, &cp);
                if (cp == SLM_UNICODE_INVALID)
                        return -EINVAL;
                if ((r = step_cp(m, cp)) < 0)
                        return r;
        }
        return 0;
}

bool slm_grammar_matcher_complete(const SlmGrammarMatcher *m)
{
        return set_complete(&m->cur);
}

bool slm_grammar_matcher_finished(const SlmGrammarMatcher *m)
{
        return set_complete(&m->cur) && m->cur.n_st == 1;
}

bool slm_grammar_matches(const SlmGrammar *g, const char *text, size_t len)
{
        SlmGrammarMatcher *m;
        bool ok;

        if (slm_grammar_matcher_new(g, NULL, &m) < 0)
                return false;
        ok = slm_grammar_matcher_accept_text(m, text, len) == 0 && set_complete(&m->cur);
        slm_grammar_matcher_free(m);
        return ok;
}
