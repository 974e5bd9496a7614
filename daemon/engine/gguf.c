/* SPDX-License-Identifier: MIT */
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "slm-types.h"

#define MAX_KEY_LEN  65535
#define MAX_NAME_LEN 256

/* ---- a bounds-checked cursor over the mapped bytes ----------------------------------------- */

typedef struct {
        const uint8_t *base;
        uint64_t size;
        uint64_t pos;
        SlmError *err;
} Cursor;

static uint64_t remaining(const Cursor *c)
{
        return c->size - c->pos;
}

static int need(Cursor *c, uint64_t n, const char *what)
{
        if (n > remaining(c))
                return slm_error_set(c->err, -EBADMSG,
                                     "truncated in %s at offset %llu (needs %llu bytes, %llu left)",
                                     what, (unsigned long long)c->pos, (unsigned long long)n,
                                     (unsigned long long)remaining(c));
        return 0;
}

static int read_bytes(Cursor *c, void *out, uint64_t n, const char *what)
{
        int r = need(c, n, what);
        if (r < 0)
                return r;
        memcpy(out, c->base + c->pos, n);
        c->pos += n;
        return 0;
}

static int read_u32(Cursor *c, uint32_t *v, const char *what)
{
        return read_bytes(c, v, 4, what);
}

static int read_u64(Cursor *c, uint64_t *v, const char *what)
{
        return read_bytes(c, v, 8, what);
}

static int read_str(Cursor *c, SlmGgufStr *s, uint64_t max_len, const char *what)
{
        uint64_t len;
        int r = read_u64(c, &len, what);

        if (r < 0)
                return r;
        if (len > remaining(c))
                return slm_error_set(
                    c->err, -EBADMSG, "%s: string length %llu at offset %llu runs past the end",
                    what, (unsigned long long)len, (unsigned long long)(c->pos - 8));
        if (max_len && len > max_len)
                return slm_error_set(c->err, -ERANGE, "%s: string length %llu exceeds %llu", what,
                                     (unsigned long long)len, (unsigned long long)max_len);
        s->ptr = (const char *)c->base + c->pos;
        s->len = len;
        c->pos += len;
        return 0;
}

/* ---- values -------------------------------------------------------------------------------- */

size_t slm_gguf_type_size(uint32_t type)
{
        switch (type) {
        case SLM_GGUF_U8:
        case SLM_GGUF_I8:
        case SLM_GGUF_BOOL:
                return 1;
        case SLM_GGUF_U16:
        case SLM_GGUF_I16:
                return 2;
        case SLM_GGUF_U32:
        case SLM_GGUF_I32:
        case SLM_GGUF_F32:
                return 4;
        case SLM_GGUF_U64:
        case SLM_GGUF_I64:
        case SLM_GGUF_F64:
                return 8;
        default:
                return 0;
        }
}

/* Decode one scalar of @type at @p (already bounds-checked). */
static void decode_scalar(uint32_t type, const uint8_t *p, SlmGgufValue *v)
{
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        int64_t i64;

        v->type = (SlmGgufType)type;
        switch (type) {
        case SLM_GGUF_U8:
        case SLM_GGUF_BOOL:
                memcpy(&u8, p, 1);
                v->u = u8;
                break;
        case SLM_GGUF_I8:
                memcpy(&i8, p, 1);
                v->i = i8;
                break;
        case SLM_GGUF_U16:
                memcpy(&u16, p, 2);
                v->u = u16;
                break;
        case SLM_GGUF_I16:
                memcpy(&i16, p, 2);
                v->i = i16;
                break;
        case SLM_GGUF_U32:
                memcpy(&u32, p, 4);
                v->u = u32;
                break;
        case SLM_GGUF_I32:
                memcpy(&i32, p, 4);
                v->i = i32;
                break;
        case SLM_GGUF_F32:
                memcpy(&f32, p, 4);
                v->f = f32;
                break;
        case SLM_GGUF_U64:
                memcpy(&v->u, p, 8);
                break;
        case SLM_GGUF_I64:
                memcpy(&i64, p, 8);
                v->i = i64;
                break;
        case SLM_GGUF_F64:
                memcpy(&v->f, p, 8);
                break;
        }
}

static void value_clear(SlmGgufValue *v)
{
        if (v->type != SLM_GGUF_ARRAY)
                return;
        free(v->arr.strs);
        if (v->arr.items) {
                for (uint64_t i = 0; i < v->arr.n; i++)
                        value_clear(&v->arr.items[i]);
                free(v->arr.items);
        }
        v->arr.strs = NULL;
        v->arr.items = NULL;
}

static int read_array(Cursor *c, SlmGgufValue *v, int depth, const char *what);

static int read_value(Cursor *c, uint32_t type, SlmGgufValue *v, int depth, const char *what)
{
        size_t sz = slm_gguf_type_size(type);
        int r;

        if (sz) {
                r = need(c, sz, what);
                if (r < 0)
                        return r;
                decode_scalar(type, c->base + c->pos, v);
                if (type == SLM_GGUF_BOOL && v->u > 1)
                        return slm_error_set(c->err, -EINVAL, "%s: bool value %u is not 0 or 1",
                                             what, (unsigned)v->u);
                c->pos += sz;
                return 0;
        }
        if (type == SLM_GGUF_STRING) {
                v->type = SLM_GGUF_STRING;
                return read_str(c, &v->str, 0, what);
        }
        if (type == SLM_GGUF_ARRAY) {
                v->type = SLM_GGUF_ARRAY;
                return read_array(c, v, depth, what);
        }
        return slm_error_set(c->err, -EPROTO, "%s: unknown value type %u", what, type);
}

static int read_array(Cursor *c, SlmGgufValue *v, int depth, const char *what)
{
        uint32_t etype;
        uint64_t n;
        size_t esz;
        int r;

        memset(&v->arr, 0, sizeof(v->arr));
        if (depth >= SLM_GGUF_MAX_DEPTH)
                return slm_error_set(c->err, -ELOOP, "%s: arrays nested deeper than %d", what,
                                     SLM_GGUF_MAX_DEPTH);
        r = read_u32(c, &etype, what);
        if (r < 0)
                return r;
        r = read_u64(c, &n, what);
        if (r < 0)
                return r;
        v->arr.type = (SlmGgufType)etype;

        esz = slm_gguf_type_size(etype);
        if (esz) {
                if (n > remaining(c) / esz)
                        return slm_error_set(
                            c->err, -EBADMSG,
                            "%s: array of %llu elements of %zu bytes runs past the end", what,
                            (unsigned long long)n, esz);
                v->arr.data = c->base + c->pos;
                if (etype == SLM_GGUF_BOOL)
                        for (uint64_t i = 0; i < n; i++)
                                if (v->arr.data[i] > 1)
                                        return slm_error_set(c->err, -EINVAL,
                                                             "%s: bool element %llu is not 0 or 1",
                                                             what, (unsigned long long)i);
                v->arr.n = n;
                c->pos += n * esz;
                return 0;
        }
        if (etype == SLM_GGUF_STRING) {
                /* every string needs at least its 8-byte length */
                if (n > remaining(c) / 8)
                        return slm_error_set(c->err, -EBADMSG,
                                             "%s: array of %llu strings runs past the end", what,
                                             (unsigned long long)n);
                v->arr.strs = calloc(n ? n : 1, sizeof(SlmGgufStr));
                if (!v->arr.strs)
                        return slm_error_set(c->err, -ENOMEM, "%s: out of memory", what);
                v->arr.n = n;
                for (uint64_t i = 0; i < n; i++) {
                        r = read_str(c, &v->arr.strs[i], 0, what);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (etype == SLM_GGUF_ARRAY) {
                /* every nested array needs at least its type and count */
                if (n > remaining(c) / 12)
                        return slm_error_set(c->err, -EBADMSG,
                                             "%s: array of %llu arrays runs past the end", what,
                                             (unsigned long long)n);
                v->arr.items = calloc(n ? n : 1, sizeof(SlmGgufValue));
                if (!v->arr.items)
                        return slm_error_set(c->err, -ENOMEM, "%s: out of memory", what);
                v->arr.n = n;
                for (uint64_t i = 0; i < n; i++) {
                        v->arr.items[i].type = SLM_GGUF_ARRAY;
                        r = read_array(c, &v->arr.items[i], depth + 1, what);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        return slm_error_set(c->err, -EPROTO, "%s: unknown array element type %u", what, etype);
}

/* ---- lookups ------------------------------------------------------------------------------- */

bool slm_gguf_str_eq(SlmGgufStr s, const char *c)
{
        size_t n = strlen(c);
        return s.len == n && memcmp(s.ptr, c, n) == 0;
}

static int str_cmp(SlmGgufStr a, SlmGgufStr b)
{
        uint64_t n = a.len < b.len ? a.len : b.len;
        int r = memcmp(a.ptr, b.ptr, n);
        if (r)
                return r;
        return a.len < b.len ? -1 : a.len > b.len;
}

const SlmGgufValue *slm_gguf_get(const SlmGguf *g, const char *key)
{
        for (uint64_t i = 0; i < g->n_kv; i++)
                if (slm_gguf_str_eq(g->kv[i].key, key))
                        return &g->kv[i].value;
        return NULL;
}

const SlmGgufTensor *slm_gguf_tensor(const SlmGguf *g, const char *name)
{
        for (uint64_t i = 0; i < g->n_tensors; i++)
                if (slm_gguf_str_eq(g->tensors[i].name, name))
                        return &g->tensors[i];
        return NULL;
}

static bool is_uint(SlmGgufType t)
{
        return t == SLM_GGUF_U8 || t == SLM_GGUF_U16 || t == SLM_GGUF_U32 || t == SLM_GGUF_U64;
}

static bool is_int(SlmGgufType t)
{
        return t == SLM_GGUF_I8 || t == SLM_GGUF_I16 || t == SLM_GGUF_I32 || t == SLM_GGUF_I64;
}

int slm_gguf_get_u32(const SlmGguf *g, const char *key, uint32_t *ret)
{
        const SlmGgufValue *v = slm_gguf_get(g, key);

        if (!v)
                return -ENOENT;
        if (is_uint(v->type) && v->u <= UINT32_MAX) {
                *ret = (uint32_t)v->u;
                return 0;
        }
        if (is_int(v->type) && v->i >= 0 && v->i <= UINT32_MAX) {
                *ret = (uint32_t)v->i;
                return 0;
        }
        return -EINVAL;
}

int slm_gguf_get_f32(const SlmGguf *g, const char *key, float *ret)
{
        const SlmGgufValue *v = slm_gguf_get(g, key);

        if (!v)
                return -ENOENT;
        if (v->type != SLM_GGUF_F32 && v->type != SLM_GGUF_F64)
                return -EINVAL;
        *ret = (float)v->f;
        return 0;
}

int slm_gguf_get_bool(const SlmGguf *g, const char *key, bool *ret)
{
        const SlmGgufValue *v = slm_gguf_get(g, key);

        if (!v)
                return -ENOENT;
        if (v->type != SLM_GGUF_BOOL)
                return -EINVAL;
        *ret = v->u != 0;
        return 0;
}

int slm_gguf_get_str(const SlmGguf *g, const char *key, SlmGgufStr *ret)
{
        const SlmGgufValue *v = slm_gguf_get(g, key);

        if (!v)
                return -ENOENT;
        if (v->type != SLM_GGUF_STRING)
                return -EINVAL;
        *ret = v->str;
        return 0;
}

int slm_gguf_get_arr(const SlmGguf *g, const char *key, SlmGgufType type,
                     const SlmGgufValue **ret_arr)
{
        const SlmGgufValue *v = slm_gguf_get(g, key);

        if (!v)
                return -ENOENT;
        if (v->type != SLM_GGUF_ARRAY || v->arr.type != type)
                return -EINVAL;
        *ret_arr = v;
        return 0;
}

float slm_gguf_arr_f32(const SlmGgufValue *arr, uint64_t i)
{
        SlmGgufValue v;

        decode_scalar(arr->arr.type, arr->arr.data + i * slm_gguf_type_size(arr->arr.type), &v);
        if (v.type == SLM_GGUF_F32 || v.type == SLM_GGUF_F64)
                return (float)v.f;
        return is_int(v.type) ? (float)v.i : (float)v.u;
}

int64_t slm_gguf_arr_i64(const SlmGgufValue *arr, uint64_t i)
{
        SlmGgufValue v;

        decode_scalar(arr->arr.type, arr->arr.data + i * slm_gguf_type_size(arr->arr.type), &v);
        if (v.type == SLM_GGUF_F32 || v.type == SLM_GGUF_F64)
                return (int64_t)v.f;
        return is_int(v.type) ? v.i : (int64_t)v.u;
}

/* ---- parsing ------------------------------------------------------------------------------- */

static int cmp_kv_key(const void *a, const void *b)
{
        return str_cmp((*(const SlmGgufKv *const *)a)->key, (*(const SlmGgufKv *const *)b)->key);
}

static int cmp_tensor_name(const void *a, const void *b)
{
        return str_cmp((*(const SlmGgufTensor *const *)a)->name,
                       (*(const SlmGgufTensor *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
        const SlmGgufTensor *x = *(const SlmGgufTensor *const *)a;
        const SlmGgufTensor *y = *(const SlmGgufTensor *const *)b;
        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int check_unique_keys(SlmGguf *g, SlmError *err)
{
        SlmGgufKv **v;
        int r = 0;

        if (g->n_kv < 2)
                return 0;
        v = malloc(g->n_kv * sizeof(*v));
        if (!v)
                return slm_error_set(err, -ENOMEM, "out of memory");
        for (uint64_t i = 0; i < g->n_kv; i++)
                v[i] = &g->kv[i];
        qsort(v, g->n_kv, sizeof(*v), cmp_kv_key);
        for (uint64_t i = 1; i < g->n_kv && r == 0; i++)
                if (str_cmp(v[i - 1]->key, v[i]->key) == 0)
                        r = slm_error_set(err, -EEXIST, "duplicate key '%.*s'",
                                          (int)(v[i]->key.len > 64 ? 64 : v[i]->key.len),
                                          v[i]->key.ptr);
        free(v);
        return r;
}

static int check_tensor_layout(SlmGguf *g, SlmError *err)
{
        SlmGgufTensor **v;
        int r = 0;

        if (g->n_tensors == 0)
                return 0;
        v = malloc(g->n_tensors * sizeof(*v));
        if (!v)
                return slm_error_set(err, -ENOMEM, "out of memory");
        for (uint64_t i = 0; i < g->n_tensors; i++)
                v[i] = &g->tensors[i];

        qsort(v, g->n_tensors, sizeof(*v), cmp_tensor_name);
        for (uint64_t i = 1; i < g->n_tensors && r == 0; i++)
                if (str_cmp(v[i - 1]->name, v[i]->name) == 0)
                        r = slm_error_set(err, -EEXIST, "duplicate tensor name '%.*s'",
                                          (int)v[i]->name.len, v[i]->name.ptr);

        qsort(v, g->n_tensors, sizeof(*v), cmp_tensor_offset);
        for (uint64_t i = 1; i < g->n_tensors && r == 0; i++)
                if (v[i - 1]->offset + v[i - 1]->n_bytes > v[i]->offset)
                        r = slm_error_set(err, -EBADMSG,
                                          "tensors '%.*s' and '%.*s' overlap in the data section",
                                          (int)v[i - 1]->name.len, v[i - 1]->name.ptr,
                                          (int)v[i]->name.len, v[i]->name.ptr);
        free(v);
        return r;
}

static int read_tensor_info(Cursor *c, SlmGgufTensor *t, uint64_t idx)
{
        const SlmTypeTraits *tt;
        uint64_t n = 1, rows = 1, row_bytes;
        char what[64];
        int r;

        snprintf(what, sizeof(what), "tensor info %llu", (unsigned long long)idx);
        r = read_str(c, &t->name, MAX_NAME_LEN, what);
        if (r < 0)
                return r;
        if (t->name.len == 0)
                return slm_error_set(c->err, -EINVAL, "%s: empty tensor name", what);
        if (memchr(t->name.ptr, 0, t->name.len))
                return slm_error_set(c->err, -EINVAL, "%s: tensor name contains a NUL byte", what);
        r = read_u32(c, &t->n_dims, what);
        if (r < 0)
                return r;
        if (t->n_dims == 0 || t->n_dims > SLM_GGUF_MAX_DIMS)
                return slm_error_set(c->err, -EINVAL,
                                     "tensor '%.*s': %u dimensions (1..%d allowed)",
                                     (int)t->name.len, t->name.ptr, t->n_dims, SLM_GGUF_MAX_DIMS);
        for (uint32_t d = 0; d < SLM_GGUF_MAX_DIMS; d++)
                t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
                r = read_u64(c, &t->ne[d], what);
                if (r < 0)
                        return r;
                if (t->ne[d] == 0 || t->ne[d] > INT64_MAX)
                        return slm_error_set(c->err, -EINVAL, "tensor '%.*s': dimension %u is %llu",
                                             (int)t->name.len, t->name.ptr, d,
                                             (unsigned long long)t->ne[d]);
                if (__builtin_mul_overflow(n, t->ne[d], &n) || n > INT64_MAX)
                        return slm_error_set(c->err, -EOVERFLOW,
                                             "tensor '%.*s': element count overflows",
                                             (int)t->name.len, t->name.ptr);
                if (d > 0)
                        rows *= t->ne[d]; /* <= n, cannot overflow */
        }
        t->n_elements = n;
        r = read_u32(c, &t->type, what);
        if (r < 0)
                return r;
        tt = slm_type_traits(t->type);
        if (!tt || !tt->weight_type)
                return slm_error_set(c->err, -ENOTSUP, "tensor '%.*s': unknown tensor type %u",
                                     (int)t->name.len, t->name.ptr, t->type);
        if (t->ne[0] % tt->block_size)
                return slm_error_set(c->err, -EINVAL,
                                     "tensor '%.*s': row length %llu is not a multiple of the %s "
                                     "block size %u",
                                     (int)t->name.len, t->name.ptr, (unsigned long long)t->ne[0],
                                     tt->name, tt->block_size);
        r = slm_type_row_bytes(t->type, t->ne[0], &row_bytes);
        if (r < 0 || __builtin_mul_overflow(row_bytes, rows, &t->n_bytes))
                return slm_error_set(c->err, -EOVERFLOW, "tensor '%.*s': byte size overflows",
                                     (int)t->name.len, t->name.ptr);
        return read_u64(c, &t->offset, what);
}

static int parse(SlmGguf *g, SlmError *err)
{
        Cursor c = { g->map, g->map_size, 0, err };
        uint32_t magic;
        int r;

        r = read_u32(&c, &magic, "header");
        if (r < 0)
                return r;
        if (magic != SLM_GGUF_MAGIC)
                return slm_error_set(err, -EBADMSG, "bad magic 0x%08x: not a GGUF file", magic);
        r = read_u32(&c, &g->version, "header");
        if (r < 0)
                return r;
        if (g->version != 2 && g->version != 3)
                return slm_error_set(err, -EPROTONOSUPPORT,
                                     "unsupported GGUF version %u (2 and 3 are supported)",
                                     g->version);
        uint64_t n_tensors, n_kv;
        r = read_u64(&c, &n_tensors, "header");
        if (r < 0)
                return r;
        r = read_u64(&c, &n_kv, "header");
        if (r < 0)
                return r;
        /* smallest key/value: 8-byte length, 1-byte key, type, 1-byte value */
        if (n_kv > remaining(&c) / 14)
                return slm_error_set(err, -EBADMSG, "key/value count %llu cannot fit in the file",
                                     (unsigned long long)n_kv);
        /* smallest tensor info: length, 1-byte name, n_dims, one dim, type, offset */
        if (n_tensors > remaining(&c) / 33)
                return slm_error_set(err, -EBADMSG, "tensor count %llu cannot fit in the file",
                                     (unsigned long long)n_tensors);

        g->kv = calloc(n_kv ? n_kv : 1, sizeof(SlmGgufKv));
        g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof(SlmGgufTensor));
        if (!g->kv || !g->tensors)
                return slm_error_set(err, -ENOMEM, "out of memory");

        for (uint64_t i = 0; i < n_kv; i++) {
                SlmGgufKv *kv = &g->kv[i];
                uint32_t type;
                char what[96];

                snprintf(what, sizeof(what), "key %llu", (unsigned long long)i);
                r = read_str(&c, &kv->key, MAX_KEY_LEN, what);
                if (r < 0)
                        return r;
                g->n_kv = i + 1; /* from here on the value is freed with the file */
                if (kv->key.len == 0)
                        return slm_error_set(err, -EINVAL, "%s: empty key", what);
                snprintf(what, sizeof(what), "value of '%.*s'",
                         (int)(kv->key.len > 64 ? 64 : kv->key.len), kv->key.ptr);
                r = read_u32(&c, &type, what);
                if (r < 0)
                        return r;
                r = read_value(&c, type, &kv->value, 0, what);
                if (r < 0)
                        return r;
        }
        r = check_unique_keys(g, err);
        if (r < 0)
                return r;

        g->alignment = SLM_GGUF_DEFAULT_ALIGN;
        const SlmGgufValue *al = slm_gguf_get(g, "general.alignment");
        if (al) {
                if (al->type != SLM_GGUF_U32 || al->u == 0 || (al->u & (al->u - 1)))
                        return slm_error_set(err, -EINVAL,
                                             "general.alignment must be a u32 power of two");
                g->alignment = (uint32_t)al->u;
        }

        for (uint64_t i = 0; i < n_tensors; i++) {
                r = read_tensor_info(&c, &g->tensors[i], i);
                if (r < 0)
                        return r;
                g->n_tensors = i + 1;
        }

        /* the data section starts at the next multiple of the alignment */
        uint64_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
        g->data_offset = c.pos + pad;
        if (n_tensors == 0)
                return 0;
        if (g->data_offset > g->map_size)
                return slm_error_set(err, -EBADMSG, "truncated before the data section");
        uint64_t data_size = g->map_size - g->data_offset;

        for (uint64_t i = 0; i < n_tensors; i++) {
                SlmGgufTensor *t = &g->tensors[i];

                if (t->offset % g->alignment)
                        return slm_error_set(err, -EINVAL,
                                             "tensor '%.*s': offset %llu is not aligned to %u",
                                             (int)t->name.len, t->name.ptr,
                                             (unsigned long long)t->offset, g->alignment);
                if (t->offset > data_size || t->n_bytes > data_size - t->offset)
                        return slm_error_set(err, -EBADMSG,
                                             "tensor '%.*s': data [%llu, +%llu) runs past the end "
                                             "of the file",
                                             (int)t->name.len, t->name.ptr,
                                             (unsigned long long)t->offset,
                                             (unsigned long long)t->n_bytes);
                t->data = g->map + g->data_offset + t->offset;
        }
        return check_tensor_layout(g, err);
}

/* ---- open / free --------------------------------------------------------------------------- */

SlmGguf *slm_gguf_free(SlmGguf *g)
{
        if (!g)
                return NULL;
        if (g->kv)
                for (uint64_t i = 0; i < g->n_kv; i++)
                        value_clear(&g->kv[i].value);
        free(g->kv);
        free(g->tensors);
        if (g->owns_map)
                munmap((void *)g->map, g->map_size);
        if (g->anon)
                munmap(g->anon, g->anon_size);
        free(g);
        return NULL;
}

int slm_gguf_copy_to_anon(SlmGguf *g, SlmError *err)
{
        const size_t huge = 2u << 20;
        size_t size, start = (size_t)g->data_offset;
        uint8_t *p;

        if (g->anon || g->n_tensors == 0)
                return 0;
        size = (g->map_size - start + huge - 1) / huge * huge;
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return slm_error_set(err, -errno, "cannot allocate %zu bytes for the weights: %s",
                                     size, strerror(errno));
        (void)madvise(p, size, MADV_HUGEPAGE);          /* a hint: fine where unsupported */
        memcpy(p, g->map + start, g->map_size - start); /* faults every page in now */
        for (uint64_t i = 0; i < g->n_tensors; i++)
                g->tensors[i].data = p + g->tensors[i].offset;
        g->anon = p;
        g->anon_size = size;
        if (g->owns_map) /* the file's pages are not needed any more */
                (void)madvise((void *)(g->map + start / 4096 * 4096),
                              g->map_size - start / 4096 * 4096, MADV_DONTNEED);
        return 0;
}

static int finish_open(SlmGguf *g, SlmGguf **ret_gguf, SlmError *err)
{
        int r = parse(g, err);

        if (r < 0) {
                slm_gguf_free(g);
                return r;
        }
        *ret_gguf = g;
        return 0;
}

int slm_gguf_open_buffer(const void *buf, size_t size, SlmGguf **ret_gguf, SlmError *err)
{
        SlmGguf *g = calloc(1, sizeof(*g));

        if (!g)
                return slm_error_set(err, -ENOMEM, "out of memory");
        g->map = buf;
        g->map_size = size;
        return finish_open(g, ret_gguf, err);
}

int slm_gguf_open_fd(int fd, SlmGguf **ret_gguf, SlmError *err)
{
        struct stat st;
        SlmGguf *g;
        void *map;

        if (fstat(fd, &st) < 0)
                return slm_error_set(err, -errno, "cannot stat: %s", strerror(errno));
        if (!S_ISREG(st.st_mode))
                return slm_error_set(err, -EINVAL, "not a regular file");
        if (st.st_size < 24)
                return slm_error_set(err, -EBADMSG,
                                     "truncated in header: %lld bytes, a GGUF header needs 24",
                                     (long long)st.st_size);
        if ((uint64_t)st.st_size > SIZE_MAX)
                return slm_error_set(err, -EFBIG, "file too large to map");
        /* the mapping outlives the descriptor: the caller may close it */
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return slm_error_set(err, -errno, "cannot map: %s", strerror(errno));
        g = calloc(1, sizeof(*g));
        if (!g) {
                munmap(map, (size_t)st.st_size);
                return slm_error_set(err, -ENOMEM, "out of memory");
        }
        g->owns_map = true;
        g->map = map;
        g->map_size = (size_t)st.st_size;
        return finish_open(g, ret_gguf, err);
}

int slm_gguf_open(const char *path, SlmGguf **ret_gguf, SlmError *err)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        int r;

        if (fd < 0)
                return slm_error_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
        r = slm_gguf_open_fd(fd, ret_gguf, err);
        close(fd);
        return r;
}
