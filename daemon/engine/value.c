/* SPDX-License-Identifier: MIT */
#include "value.h"

#include "unicode.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct SlmArenaChunk {
        SlmArenaChunk *next;
        size_t size, used;
        _Alignas(16) unsigned char data[];
};

#define CHUNK_MIN (64 * 1024)

void slm_arena_init(SlmArena *a, size_t limit)
{
        *a = (SlmArena){ .limit = limit };
}

void slm_arena_clear(SlmArena *a)
{
        while (a->head) {
                SlmArenaChunk *next = a->head->next;
                free(a->head);
                a->head = next;
        }
        a->used = 0;
}

void *slm_arena_alloc(SlmArena *a, size_t size)
{
        SlmArenaChunk *c = a->head;

        size = (size + 15) & ~(size_t)15;
        if (size == 0)
                size = 16;
        if (size > SIZE_MAX / 2 || (a->limit && (size > a->limit || a->used > a->limit - size)))
                return NULL;
        if (!c || c->size - c->used < size) {
                size_t want = size > CHUNK_MIN ? size : CHUNK_MIN;
                c = malloc(sizeof(*c) + want);
                if (!c)
                        return NULL;
                c->size = want;
                c->used = 0;
                c->next = a->head;
                a->head = c;
        }
        void *p = c->data + c->used;
        c->used += size;
        a->used += size;
        return p;
}

char *slm_arena_strndup(SlmArena *a, const char *s, size_t len)
{
        char *p = len < SIZE_MAX ? slm_arena_alloc(a, len + 1) : NULL;

        if (p) {
                if (len)
                        memcpy(p, s, len);
                p[len] = 0;
        }
        return p;
}

/* ---- values ---- */

SlmValue slm_value_undefined(void)
{
        return (SlmValue){ .type = SLM_VALUE_UNDEFINED };
}
SlmValue slm_value_none(void)
{
        return (SlmValue){ .type = SLM_VALUE_NONE };
}
SlmValue slm_value_bool(bool b)
{
        return (SlmValue){ .type = SLM_VALUE_BOOL, .b = b };
}
SlmValue slm_value_int(int64_t i)
{
        return (SlmValue){ .type = SLM_VALUE_INT, .i = i };
}
SlmValue slm_value_float(double f)
{
        return (SlmValue){ .type = SLM_VALUE_FLOAT, .f = f };
}
SlmValue slm_value_str_static(const char *s, size_t len)
{
        return (SlmValue){ .type = SLM_VALUE_STRING, .len = (uint32_t)len, .s = s };
}

SlmValue slm_value_str(SlmArena *a, const char *s, size_t len)
{
        char *p = len <= UINT32_MAX ? slm_arena_strndup(a, s, len) : NULL;

        return p ? slm_value_str_static(p, len) : slm_value_undefined();
}

SlmValue slm_value_new_list(SlmArena *a)
{
        SlmList *l = slm_arena_alloc(a, sizeof(*l));

        if (!l)
                return slm_value_undefined();
        *l = (SlmList){ 0 };
        return (SlmValue){ .type = SLM_VALUE_LIST, .list = l };
}

SlmValue slm_value_new_dict(SlmArena *a)
{
        SlmDict *d = slm_arena_alloc(a, sizeof(*d));

        if (!d)
                return slm_value_undefined();
        *d = (SlmDict){ 0 };
        return (SlmValue){ .type = SLM_VALUE_DICT, .dict = d };
}

/* Grow an arena array of @elem-sized items to hold one more. */
static int grow(SlmArena *a, void **items, size_t n, size_t *cap, size_t elem)
{
        if (n < *cap)
                return 0;
        size_t ncap = *cap ? *cap * 2 : 4;
        if (ncap > SIZE_MAX / elem)
                return -ENOMEM;
        void *p = slm_arena_alloc(a, ncap * elem);
        if (!p)
                return -ENOMEM;
        if (n)
                memcpy(p, *items, n * elem);
        *items = p;
        *cap = ncap;
        return 0;
}

int slm_list_append(SlmArena *a, SlmList *l, SlmValue v)
{
        int r = grow(a, (void **)&l->v, l->n, &l->cap, sizeof(SlmValue));

        if (r < 0)
                return r;
        l->v[l->n++] = v;
        return 0;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
        uint64_t h = 1469598103934665603ULL;

        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
        return h;
}

/* Keys that compare equal hash alike: 1, 1.0 and True. */
static uint64_t hash_value(SlmValue v)
{
        switch (v.type) {
        case SLM_VALUE_STRING:
                return hash_bytes(v.s, v.len);
        case SLM_VALUE_BOOL:
                return (uint64_t)v.b * 0x9E3779B97F4A7C15ULL;
        case SLM_VALUE_INT:
                return (uint64_t)v.i * 0x9E3779B97F4A7C15ULL;
        case SLM_VALUE_FLOAT:
                if (v.f == floor(v.f) && fabs(v.f) < 9e18)
                        return (uint64_t)(int64_t)v.f * 0x9E3779B97F4A7C15ULL;
                return hash_bytes((const char *)&v.f, sizeof(v.f));
        default:
                return v.type;
        }
}

#define INDEX_FROM 8 /* dicts with more entries than this get a hash index */

static int reindex(SlmArena *a, SlmDict *d, size_t n_slots)
{
        uint32_t *idx = slm_arena_alloc(a, n_slots * sizeof(*idx));

        if (!idx)
                return -ENOMEM;
        memset(idx, 0, n_slots * sizeof(*idx));
        for (size_t i = 0; i < d->n; i++) {
                size_t s = hash_value(d->e[i].key) & (n_slots - 1);
                while (idx[s])
                        s = (s + 1) & (n_slots - 1);
                idx[s] = (uint32_t)(i + 1);
        }
        d->index = idx;
        d->n_index = n_slots;
        return 0;
}

static SlmDictEntry *dict_find(const SlmDict *d, SlmValue key)
{
        if (!d->index) {
                for (size_t i = 0; i < d->n; i++)
                        if (slm_value_equal(d->e[i].key, key))
                                return &d->e[i];
                return NULL;
        }
        for (size_t s = hash_value(key) & (d->n_index - 1);; s = (s + 1) & (d->n_index - 1)) {
                uint32_t k = d->index[s];
                if (!k)
                        return NULL;
                if (slm_value_equal(d->e[k - 1].key, key))
                        return &d->e[k - 1];
        }
}

int slm_dict_set(SlmArena *a, SlmDict *d, SlmValue key, SlmValue v)
{
        SlmDictEntry *e = dict_find(d, key);
        int r;

        if (e) {
                e->value = v;
                return 0;
        }
        if (d->n >= UINT32_MAX - 1)
                return -ENOMEM;
        r = grow(a, (void **)&d->e, d->n, &d->cap, sizeof(SlmDictEntry));
        if (r < 0)
                return r;
        d->e[d->n++] = (SlmDictEntry){ key, v };
        if (d->n > INDEX_FROM && d->n * 2 > d->n_index) {
                size_t slots = 32;
                while (slots < d->n * 4)
                        slots *= 2;
                return reindex(a, d, slots);
        }
        if (d->index) {
                size_t s = hash_value(key) & (d->n_index - 1);
                while (d->index[s])
                        s = (s + 1) & (d->n_index - 1);
                d->index[s] = (uint32_t)d->n;
        }
        return 0;
}

SlmValue *slm_dict_get(const SlmDict *d, SlmValue key)
{
        SlmDictEntry *e = dict_find(d, key);

        return e ? &e->value : NULL;
}

SlmValue *slm_dict_get_str(const SlmDict *d, const char *key)
{
        return slm_dict_get(d, slm_value_str_static(key, strlen(key)));
}

bool slm_value_truthy(SlmValue v)
{
        switch (v.type) {
        case SLM_VALUE_BOOL:
                return v.b;
        case SLM_VALUE_INT:
                return v.i != 0;
        case SLM_VALUE_FLOAT:
                return v.f != 0;
        case SLM_VALUE_STRING:
                return v.len > 0;
        case SLM_VALUE_LIST:
                return v.list->n > 0;
        case SLM_VALUE_DICT:
                return v.dict->n > 0;
        case SLM_VALUE_OBJECT:
                return true;
        default:
                return false;
        }
}

static bool is_number(SlmValue v)
{
        return v.type == SLM_VALUE_BOOL || v.type == SLM_VALUE_INT || v.type == SLM_VALUE_FLOAT;
}

bool slm_value_equal(SlmValue a, SlmValue b)
{
        if (is_number(a) && is_number(b)) {
                if (a.type != SLM_VALUE_FLOAT && b.type != SLM_VALUE_FLOAT) {
                        int64_t x = a.type == SLM_VALUE_BOOL ? a.b : a.i;
                        int64_t y = b.type == SLM_VALUE_BOOL ? b.b : b.i;
                        return x == y;
                }
                double x = a.type == SLM_VALUE_FLOAT  ? a.f
                           : a.type == SLM_VALUE_BOOL ? a.b
                                                      : (double)a.i;
                double y = b.type == SLM_VALUE_FLOAT  ? b.f
                           : b.type == SLM_VALUE_BOOL ? b.b
                                                      : (double)b.i;
                return x == y;
        }
        if (a.type != b.type)
                return false;
        switch (a.type) {
        case SLM_VALUE_UNDEFINED:
        case SLM_VALUE_NONE:
                return true;
        case SLM_VALUE_STRING:
                return a.len == b.len && memcmp(a.s, b.s, a.len) == 0;
        case SLM_VALUE_LIST:
                if (a.list->n != b.list->n)
                        return false;
                for (size_t i = 0; i < a.list->n; i++)
                        if (!slm_value_equal(a.list->v[i], b.list->v[i]))
                                return false;
                return true;
        case SLM_VALUE_DICT:
                if (a.dict->n != b.dict->n)
                        return false;
                for (size_t i = 0; i < a.dict->n; i++) {
                        SlmValue *o = slm_dict_get(b.dict, a.dict->e[i].key);
                        if (!o || !slm_value_equal(a.dict->e[i].value, *o))
                                return false;
                }
                return true;
        default:
                return a.obj == b.obj;
        }
}

const char *slm_value_type_name(SlmValue v)
{
        static const char *const names[] = { "Undefined", "NoneType", "bool", "int",   "float",
                                             "str",       "list",     "dict", "object" };
        if (v.type == SLM_VALUE_LIST && (v.flags & SLM_VALUE_TUPLE))
                return "tuple";
        return v.type < sizeof(names) / sizeof(names[0]) ? names[v.type] : "object";
}

/* ---- output buffer ---- */

void slm_buf_put(SlmBuf *b, const char *s, size_t len)
{
        if (b->failed)
                return;
        if (len > SIZE_MAX / 4 - b->n || (b->limit && b->n + len > b->limit)) {
                b->failed = true;
                return;
        }
        if (b->n + len + 1 > b->cap) {
                size_t cap = (b->n + len + 1) * 2;
                if (cap < 256)
                        cap = 256;
                char *p = realloc(b->s, cap);
                if (!p) {
                        b->failed = true;
                        return;
                }
                b->s = p;
                b->cap = cap;
        }
        if (len)
                memcpy(b->s + b->n, s, len);
        b->n += len;
        b->s[b->n] = 0;
}

void slm_buf_puts(SlmBuf *b, const char *s)
{
        slm_buf_put(b, s, strlen(s));
}

void slm_buf_printf(SlmBuf *b, const char *fmt, ...)
{
        char tmp[256];
        va_list ap, again;
        int n;

        va_start(ap, fmt);
        va_copy(again, ap);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->failed = true;
        } else if ((size_t)n < sizeof(tmp)) {
                slm_buf_put(b, tmp, (size_t)n);
        } else {
                char *big = malloc((size_t)n + 1);
                if (big && vsnprintf(big, (size_t)n + 1, fmt, again) == n)
                        slm_buf_put(b, big, (size_t)n);
                else
                        b->failed = true;
                free(big);
        }
        va_end(again);
}

void slm_buf_free(SlmBuf *b)
{
        free(b->s);
        *b = (SlmBuf){ 0 };
}

/* ---- JSON in ---- */

typedef struct {
        SlmArena *a;
        const char *p, *end, *start;
        SlmError *err;
} JsonIn;

#define JSON_MAX_DEPTH 128

static int json_fail(JsonIn *in, const char *what)
{
        return slm_error_set(in->err, -EINVAL, "JSON: %s at offset %zu", what,
                             (size_t)(in->p - in->start));
}

static void json_ws(JsonIn *in)
{
        while (in->p < in->end &&
               (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r'))
                in->p++;
}

static int hex4(const char *p, unsigned *ret)
{
        unsigned v = 0;

        for (int i = 0; i < 4; i++) {
                char c = p[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (unsigned)(c - 'A' + 10);
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

static int json_string(JsonIn *in, SlmValue *ret)
{
        const char *p = ++in->p; /* past the quote */
        size_t cap = 0;

        /* the decoded text is never longer than the source */
        while (p < in->end && *p != '"') {
                if (*p == '\\')
                        p++;
                p++;
        }
        if (p >= in->end)
                return json_fail(in, "unterminated string");
        cap = (size_t)(p - in->p);
        char *o = slm_arena_alloc(in->a, cap + 1), *w = o;
        if (!o)
                return -ENOMEM;
        while (*in->p != '"') {
                unsigned char c = (unsigned char)*in->p;
                if (c < 0x20)
                        return json_fail(in, "control character in string");
                if (c >= 0x80) {
                        uint32_t cp;
                        size_t l = slm_utf8_decode(in->p, (size_t)(in->end - in->p), &cp);
                        if (cp == SLM_UNICODE_INVALID)
                                return json_fail(in, "invalid UTF-8");
                        memcpy(w, in->p, l);
                        w += l;
                        in->p += l;
                        continue;
                }
                if (c != '\\') {
                        *w++ = (char)c;
                        in->p++;
                        continue;
                }
                in->p++;
                switch (*in->p) {
                case '"':
                case '\\':
                case '/':
                        *w++ = *in->p;
                        break;
                case 'b':
                        *w++ = '\b';
                        break;
                case 'f':
                        *w++ = '\f';
                        break;
                case 'n':
                        *w++ = '\n';
                        break;
                case 'r':
                        *w++ = '\r';
                        break;
                case 't':
                        *w++ = '\t';
                        break;
                case 'u': {
                        unsigned cp, lo;
                        if (in->end - in->p < 5 || hex4(in->p + 1, &cp) < 0)
                                return json_fail(in, "bad \\u escape");
                        in->p += 4;
                        if (cp >= 0xD800 && cp <= 0xDBFF && in->end - in->p >= 7 &&
                            in->p[1] == '\\' && in->p[2] == 'u' && hex4(in->p + 3, &lo) == 0 &&
                            lo >= 0xDC00 && lo <= 0xDFFF) {
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                in->p += 6;
                        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                                cp = 0xFFFD; /* a lone surrogate has no UTF-8 form */
                        }
                        /* \uXXXX is 6 source bytes for at most 3 output bytes; a pair 12 for 4 */
                        w += slm_utf8_encode(cp, w);
                        break;
                }
                default:
                        return json_fail(in, "bad escape");
                }
                in->p++;
        }
        in->p++;
        *w = 0;
        if ((size_t)(w - o) > UINT32_MAX)
                return json_fail(in, "string too long");
        *ret = slm_value_str_static(o, (size_t)(w - o));
        return 0;
}

static int json_number(JsonIn *in, SlmValue *ret)
{
        const char *s = in->p;
        bool is_float = false;
        char tmp[64];

        if (in->p < in->end && *in->p == '-')
                in->p++;
        if (in->p >= in->end || *in->p < '0' || *in->p > '9')
                return json_fail(in, "bad number");
        if (*in->p == '0' && in->p + 1 < in->end && in->p[1] >= '0' && in->p[1] <= '9')
                return json_fail(in, "leading zero");
        while (in->p < in->end && *in->p >= '0' && *in->p <= '9')
                in->p++;
        if (in->p < in->end && *in->p == '.') {
                is_float = true;
                in->p++;
                if (in->p >= in->end || *in->p < '0' || *in->p > '9')
                        return json_fail(in, "bad number");
                while (in->p < in->end && *in->p >= '0' && *in->p <= '9')
                        in->p++;
        }
        if (in->p < in->end && (*in->p == 'e' || *in->p == 'E')) {
                is_float = true;
                in->p++;
                if (in->p < in->end && (*in->p == '+' || *in->p == '-'))
                        in->p++;
                if (in->p >= in->end || *in->p < '0' || *in->p > '9')
                        return json_fail(in, "bad number");
                while (in->p < in->end && *in->p >= '0' && *in->p <= '9')
                        in->p++;
        }
        size_t n = (size_t)(in->p - s);
        if (n >= sizeof(tmp))
                return json_fail(in, "number too long");
        memcpy(tmp, s, n);
        tmp[n] = 0;
        if (!is_float) {
                errno = 0;
                long long v = strtoll(tmp, NULL, 10);
                if (errno == 0) {
                        *ret = slm_value_int(v);
                        return 0;
                }
        }
        *ret = slm_value_float(strtod(tmp, NULL));
        return 0;
}

static int json_value(JsonIn *in, SlmValue *ret, int depth);

/* An array, or with @object an object, from its opening bracket. */
static int json_container(JsonIn *in, SlmValue *ret, int depth, bool object)
{
        char close = object ? '}' : ']';
        SlmValue c = object ? slm_value_new_dict(in->a) : slm_value_new_list(in->a);
        int r;

        if (c.type == SLM_VALUE_UNDEFINED)
                return -ENOMEM;
        in->p++;
        json_ws(in);
        if (in->p < in->end && *in->p == close) {
                in->p++;
                *ret = c;
                return 0;
        }
        for (;;) {
                SlmValue key = slm_value_undefined(), item;
                json_ws(in);
                if (object) {
                        if (in->p >= in->end || *in->p != '"')
                                return json_fail(in, "expected a string key");
                        if ((r = json_string(in, &key)) < 0)
                                return r;
                        json_ws(in);
                        if (in->p >= in->end || *in->p != ':')
                                return json_fail(in, "expected ':'");
                        in->p++;
                }
                if ((r = json_value(in, &item, depth + 1)) < 0)
                        return r;
                if ((object ? slm_dict_set(in->a, c.dict, key, item)
                            : slm_list_append(in->a, c.list, item)) < 0)
                        return -ENOMEM;
                json_ws(in);
                if (in->p < in->end && *in->p == ',') {
                        in->p++;
                        continue;
                }
                if (in->p < in->end && *in->p == close) {
                        in->p++;
                        *ret = c;
                        return 0;
                }
                return json_fail(in, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
}

static int json_word(JsonIn *in, const char *w, SlmValue v, SlmValue *ret)
{
        size_t n = strlen(w);

        if ((size_t)(in->end - in->p) < n || memcmp(in->p, w, n) != 0)
                return json_fail(in, "unexpected character");
        in->p += n;
        *ret = v;
        return 0;
}

static int json_value(JsonIn *in, SlmValue *ret, int depth)
{
        json_ws(in);
        if (in->p >= in->end)
                return json_fail(in, "unexpected end");
        if (depth > JSON_MAX_DEPTH)
                return json_fail(in, "nested too deeply");
        switch (*in->p) {
        case '"':
                return json_string(in, ret);
        case 't':
                return json_word(in, "true", slm_value_bool(true), ret);
        case 'f':
                return json_word(in, "false", slm_value_bool(false), ret);
        case 'n':
                return json_word(in, "null", slm_value_none(), ret);
        case '[':
        case '{':
                return json_container(in, ret, depth, *in->p == '{');
        case 'N':
                return json_word(in, "NaN", slm_value_float(NAN), ret);
        case 'I':
                return json_word(in, "Infinity", slm_value_float(INFINITY), ret);
        default:
                if (in->end - in->p > 1 && in->p[0] == '-' && in->p[1] == 'I')
                        return json_word(in, "-Infinity", slm_value_float(-INFINITY), ret);
                return json_number(in, ret);
        }
}

int slm_json_parse(SlmArena *a, const char *text, size_t len, SlmValue *ret, SlmError *err)
{
        JsonIn in = { .a = a, .p = text, .end = text + len, .start = text, .err = err };
        SlmValue v;
        int r = json_value(&in, &v, 0);

        if (r == -ENOMEM)
                return slm_error_set(err, -ENOMEM, "JSON: out of memory");
        if (r < 0)
                return r;
        json_ws(&in);
        if (in.p != in.end)
                return json_fail(&in, "extra data");
        *ret = v;
        return 0;
}

/* ---- JSON and Python out ---- */

/* Python's repr(float): the shortest digits that read back the same. */
static void write_float(SlmBuf *b, double f, bool json)
{
        char digits[40], out[64];
        int exp10 = 0, nd;

        if (isnan(f)) {
                slm_buf_puts(b, json ? "NaN" : "nan");
                return;
        }
        if (isinf(f)) {
                slm_buf_puts(b,
                             f < 0 ? (json ? "-Infinity" : "-inf") : (json ? "Infinity" : "inf"));
                return;
        }
        if (f == 0) {
                slm_buf_puts(b, signbit(f) ? "-0.0" : "0.0");
                return;
        }
        for (int prec = 1; prec <= 17; prec++) {
                snprintf(digits, sizeof(digits), "%.*e", prec - 1, f);
                if (strtod(digits, NULL) == f)
                        break;
        }
        /* digits: [-]d[.ddd]e[+-]xx */
        char *e = strchr(digits, 'e');
        exp10 = atoi(e + 1);
        *e = 0;
        char mant[24];
        nd = 0;
        for (char *p = digits; *p; p++)
                if (*p >= '0' && *p <= '9')
                        mant[nd++] = *p;
        mant[nd] = 0;
        while (nd > 1 && mant[nd - 1] == '0')
                mant[--nd] = 0;
        char *o = out;
        if (f < 0)
                *o++ = '-';
        if (exp10 >= -4 && exp10 < 16) {
                if (exp10 < 0) {
                        *o++ = '0';
                        *o++ = '.';
                        for (int i = 0; i < -exp10 - 1; i++)
                                *o++ = '0';
                        memcpy(o, mant, (size_t)nd);
                        o += nd;
                } else {
                        for (int i = 0; i <= exp10; i++)
                                *o++ = i < nd ? mant[i] : '0';
                        *o++ = '.';
                        if (nd > exp10 + 1) {
                                memcpy(o, mant + exp10 + 1, (size_t)(nd - exp10 - 1));
                                o += nd - exp10 - 1;
                        } else {
                                *o++ = '0';
                        }
                }
                *o = 0;
        } else {
                *o++ = mant[0];
                if (nd > 1) {
                        *o++ = '.';
                        memcpy(o, mant + 1, (size_t)(nd - 1));
                        o += nd - 1;
                }
                snprintf(o, sizeof(out) - (size_t)(o - out), "e%c%02d", exp10 < 0 ? '-' : '+',
                         exp10 < 0 ? -exp10 : exp10);
        }
        slm_buf_puts(b, out);
}

void slm_buf_put_escaped(SlmBuf *b, const char *s, size_t n,
                         const char *(*escape)(unsigned char c, char tmp[8], void *data),
                         void *data)
{
        size_t start = 0;

        for (size_t i = 0; i < n; i++) {
                char tmp[8];
                const char *esc = escape((unsigned char)s[i], tmp, data);
                if (!esc)
                        continue;
                slm_buf_put(b, s + start, i - start);
                slm_buf_puts(b, esc);
                start = i + 1;
        }
        slm_buf_put(b, s + start, n - start);
}

/* What json.dumps writes for a byte of a string, or NULL: the byte itself. */
static const char *json_escape(unsigned char c, char tmp[8], void *data)
{
        (void)data;
        switch (c) {
        case '"':
                return "\\\"";
        case '\\':
                return "\\\\";
        case '\n':
                return "\\n";
        case '\r':
                return "\\r";
        case '\t':
                return "\\t";
        case '\b':
                return "\\b";
        case '\f':
                return "\\f";
        default:
                if (c >= 0x20)
                        return NULL;
                snprintf(tmp, 8, "\\u%04x", c);
                return tmp;
        }
}

static void json_write_string(SlmBuf *b, const char *s, size_t n)
{
        slm_buf_put(b, "\"", 1);
        slm_buf_put_escaped(b, s, n, json_escape, NULL);
        slm_buf_put(b, "\"", 1);
}

static void newline_indent(SlmBuf *b, int indent, int level)
{
        slm_buf_put(b, "\n", 1);
        for (int i = 0; i < indent * level; i++)
                slm_buf_put(b, " ", 1);
}

static int json_write(SlmBuf *b, SlmValue v, int indent, int level, bool compact)
{
        const char *item_sep = compact ? "," : indent > 0 ? "," : ", ";
        const char *key_sep = compact ? ":" : ": ";

        if (level > JSON_MAX_DEPTH * 4)
                return -ELOOP;
        switch (v.type) {
        case SLM_VALUE_NONE:
                slm_buf_puts(b, "null");
                return 0;
        case SLM_VALUE_BOOL:
                slm_buf_puts(b, v.b ? "true" : "false");
                return 0;
        case SLM_VALUE_INT:
                slm_buf_printf(b, "%lld", (long long)v.i);
                return 0;
        case SLM_VALUE_FLOAT:
                write_float(b, v.f, true);
                return 0;
        case SLM_VALUE_STRING:
                json_write_string(b, v.s, v.len);
                return 0;
        case SLM_VALUE_LIST:
                if (v.list->n == 0) {
                        slm_buf_puts(b, "[]");
                        return 0;
                }
                slm_buf_put(b, "[", 1);
                for (size_t i = 0; i < v.list->n; i++) {
                        if (i)
                                slm_buf_puts(b, item_sep);
                        if (indent > 0)
                                newline_indent(b, indent, level + 1);
                        int r = json_write(b, v.list->v[i], indent, level + 1, compact);
                        if (r < 0)
                                return r;
                }
                if (indent > 0)
                        newline_indent(b, indent, level);
                slm_buf_put(b, "]", 1);
                return 0;
        case SLM_VALUE_DICT:
                if (v.dict->n == 0) {
                        slm_buf_puts(b, "{}");
                        return 0;
                }
                slm_buf_put(b, "{", 1);
                for (size_t i = 0; i < v.dict->n; i++) {
                        SlmValue k = v.dict->e[i].key;
                        if (i)
                                slm_buf_puts(b, item_sep);
                        if (indent > 0)
                                newline_indent(b, indent, level + 1);
                        if (k.type == SLM_VALUE_STRING) {
                                json_write_string(b, k.s, k.len);
                        } else if (k.type == SLM_VALUE_NONE || k.type == SLM_VALUE_BOOL ||
                                   k.type == SLM_VALUE_INT || k.type == SLM_VALUE_FLOAT) {
                                slm_buf_put(b, "\"", 1);
                                json_write(b, k, 0, 0, compact);
                                slm_buf_put(b, "\"", 1);
                        } else {
                                return -EINVAL;
                        }
                        slm_buf_puts(b, key_sep);
                        int r = json_write(b, v.dict->e[i].value, indent, level + 1, compact);
                        if (r < 0)
                                return r;
                }
                if (indent > 0)
                        newline_indent(b, indent, level);
                slm_buf_put(b, "}", 1);
                return 0;
        default:
                return -EINVAL;
        }
}

int slm_json_write(SlmBuf *b, SlmValue v, int indent)
{
        int r = json_write(b, v, indent, 0, false);

        return r < 0 ? r : b->failed ? -ENOMEM : 0;
}

int slm_json_write_compact(SlmBuf *b, SlmValue v)
{
        int r = json_write(b, v, 0, 0, true);

        return r < 0 ? r : b->failed ? -ENOMEM : 0;
}

/* What repr() writes for a byte of a string quoted with *@data, or NULL: the byte itself. */
static const char *repr_escape(unsigned char c, char tmp[8], void *data)
{
        char q = *(const char *)data;

        if (c == (unsigned char)q)
                return q == '\'' ? "\\'" : "\\\"";
        switch (c) {
        case '\\':
                return "\\\\";
        case '\n':
                return "\\n";
        case '\r':
                return "\\r";
        case '\t':
                return "\\t";
        default:
                if (c >= 0x20 && c != 0x7f)
                        return NULL;
                snprintf(tmp, 8, "\\x%02x", c);
                return tmp;
        }
}

static void repr_string(SlmBuf *b, const char *s, size_t n)
{
        bool has_single = memchr(s, '\'', n) != NULL, has_double = memchr(s, '"', n) != NULL;
        char q = has_single && !has_double ? '"' : '\'';

        slm_buf_put(b, &q, 1);
        slm_buf_put_escaped(b, s, n, repr_escape, &q);
        slm_buf_put(b, &q, 1);
}

static void write_py(SlmBuf *b, SlmValue v, bool repr, int level)
{
        if (level > JSON_MAX_DEPTH * 4) {
                slm_buf_puts(b, "...");
                return;
        }
        switch (v.type) {
        case SLM_VALUE_UNDEFINED:
                return;
        case SLM_VALUE_NONE:
                slm_buf_puts(b, "None");
                return;
        case SLM_VALUE_BOOL:
                slm_buf_puts(b, v.b ? "True" : "False");
                return;
        case SLM_VALUE_INT:
                slm_buf_printf(b, "%lld", (long long)v.i);
                return;
        case SLM_VALUE_FLOAT:
                write_float(b, v.f, false);
                return;
        case SLM_VALUE_STRING:
                if (repr)
                        repr_string(b, v.s, v.len);
                else
                        slm_buf_put(b, v.s, v.len);
                return;
        case SLM_VALUE_LIST: {
                bool tuple = v.flags & SLM_VALUE_TUPLE;
                slm_buf_puts(b, tuple ? "(" : "[");
                for (size_t i = 0; i < v.list->n; i++) {
                        if (i)
                                slm_buf_puts(b, ", ");
                        write_py(b, v.list->v[i], true, level + 1);
                }
                slm_buf_puts(b, tuple ? (v.list->n == 1 ? ",)" : ")") : "]");
                return;
        }
        case SLM_VALUE_DICT:
                slm_buf_puts(b, "{");
                for (size_t i = 0; i < v.dict->n; i++) {
                        if (i)
                                slm_buf_puts(b, ", ");
                        write_py(b, v.dict->e[i].key, true, level + 1);
                        slm_buf_puts(b, ": ");
                        write_py(b, v.dict->e[i].value, true, level + 1);
                }
                slm_buf_puts(b, "}");
                return;
        default:
                slm_buf_puts(b, "<object>");
                return;
        }
}

void slm_value_write_str(SlmBuf *b, SlmValue v)
{
        write_py(b, v, false, 0);
}

void slm_value_write_repr(SlmBuf *b, SlmValue v)
{
        write_py(b, v, true, 0);
}
