/* SPDX-License-Identifier: MIT */
#include "gguf-writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"

#define ALIGN 32

typedef struct {
        char *key;
        uint8_t *bytes; /* the value, already encoded (type id first) */
        size_t n;
} Kv;

typedef struct {
        char *name;
        SlmType type;
        uint64_t ne[SLM_GGUF_MAX_DIMS];
        uint32_t n_dims;
        uint64_t rows, row_bytes, offset;
        SlmRowFunc fill;
        void *user_data;
} Tensor;

struct SlmGgufWriter {
        Kv *kv;
        size_t n_kv;
        Tensor *t;
        size_t n_t;
        uint64_t data_size;
};

int slm_gguf_writer_new(SlmGgufWriter **ret)
{
        *ret = calloc(1, sizeof(SlmGgufWriter));
        return *ret ? 0 : -ENOMEM;
}

SlmGgufWriter *slm_gguf_writer_free(SlmGgufWriter *w)
{
        if (!w)
                return NULL;
        for (size_t i = 0; i < w->n_kv; i++) {
                free(w->kv[i].key);
                free(w->kv[i].bytes);
        }
        for (size_t i = 0; i < w->n_t; i++)
                free(w->t[i].name);
        free(w->kv);
        free(w->t);
        free(w);
        return NULL;
}

/* ---- encoding ------------------------------------------------------------------------------ */

typedef struct {
        uint8_t *p;
        size_t n, cap;
        bool oom;
} Buf;

static void put(Buf *b, const void *data, size_t n)
{
        if (b->oom)
                return;
        if (b->n + n > b->cap) {
                size_t cap = (b->n + n) * 2 + 64;
                uint8_t *p = realloc(b->p, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->n, data, n);
        b->n += n;
}

static void put_u32(Buf *b, uint32_t v)
{
        put(b, &v, 4);
}

static void put_u64(Buf *b, uint64_t v)
{
        put(b, &v, 8);
}

static void put_str(Buf *b, const char *s)
{
        put_u64(b, strlen(s));
        put(b, s, strlen(s));
}

static int add_kv(SlmGgufWriter *w, const char *key, Buf *value)
{
        Kv *kv;

        if (value->oom) {
                free(value->p);
                return -ENOMEM;
        }
        kv = realloc(w->kv, (w->n_kv + 1) * sizeof(Kv));
        if (!kv) {
                free(value->p);
                return -ENOMEM;
        }
        w->kv = kv;
        w->kv[w->n_kv] = (Kv){ strdup(key), value->p, value->n };
        if (!w->kv[w->n_kv].key)
                return -ENOMEM;
        w->n_kv++;
        return 0;
}

int slm_gguf_writer_add_u32(SlmGgufWriter *w, const char *key, uint32_t v)
{
        Buf b = { 0 };
        put_u32(&b, SLM_GGUF_U32);
        put_u32(&b, v);
        return add_kv(w, key, &b);
}

int slm_gguf_writer_add_f32(SlmGgufWriter *w, const char *key, float v)
{
        Buf b = { 0 };
        put_u32(&b, SLM_GGUF_F32);
        put(&b, &v, 4);
        return add_kv(w, key, &b);
}

int slm_gguf_writer_add_bool(SlmGgufWriter *w, const char *key, bool v)
{
        Buf b = { 0 };
        uint8_t u = v;
        put_u32(&b, SLM_GGUF_BOOL);
        put(&b, &u, 1);
        return add_kv(w, key, &b);
}

int slm_gguf_writer_add_str(SlmGgufWriter *w, const char *key, const char *v)
{
        Buf b = { 0 };
        put_u32(&b, SLM_GGUF_STRING);
        put_str(&b, v);
        return add_kv(w, key, &b);
}

int slm_gguf_writer_add_str_array(SlmGgufWriter *w, const char *key, const char *const *v, size_t n)
{
        Buf b = { 0 };
        put_u32(&b, SLM_GGUF_ARRAY);
        put_u32(&b, SLM_GGUF_STRING);
        put_u64(&b, n);
        for (size_t i = 0; i < n; i++)
                put_str(&b, v[i]);
        return add_kv(w, key, &b);
}

static int add_scalar_array(SlmGgufWriter *w, const char *key, uint32_t type, const void *v,
                            size_t n)
{
        Buf b = { 0 };
        put_u32(&b, SLM_GGUF_ARRAY);
        put_u32(&b, type);
        put_u64(&b, n);
        put(&b, v, n * 4);
        return add_kv(w, key, &b);
}

int slm_gguf_writer_add_f32_array(SlmGgufWriter *w, const char *key, const float *v, size_t n)
{
        return add_scalar_array(w, key, SLM_GGUF_F32, v, n);
}

int slm_gguf_writer_add_i32_array(SlmGgufWriter *w, const char *key, const int32_t *v, size_t n)
{
        return add_scalar_array(w, key, SLM_GGUF_I32, v, n);
}

int slm_gguf_writer_add_tensor(SlmGgufWriter *w, const char *name, SlmType type, const uint64_t *ne,
                               uint32_t n_dims, SlmRowFunc fill, void *user_data)
{
        Tensor *t;
        uint64_t rows = 1, row_bytes;

        if (n_dims == 0 || n_dims > SLM_GGUF_MAX_DIMS ||
            slm_type_row_bytes(type, ne[0], &row_bytes) < 0)
                return -EINVAL;
        for (uint32_t d = 1; d < n_dims; d++)
                rows *= ne[d];
        t = realloc(w->t, (w->n_t + 1) * sizeof(Tensor));
        if (!t)
                return -ENOMEM;
        w->t = t;
        t = &w->t[w->n_t];
        memset(t, 0, sizeof(*t));
        t->name = strdup(name);
        if (!t->name)
                return -ENOMEM;
        t->type = type;
        memcpy(t->ne, ne, n_dims * sizeof(uint64_t));
        t->n_dims = n_dims;
        t->rows = rows;
        t->row_bytes = row_bytes;
        t->offset = w->data_size;
        t->fill = fill;
        t->user_data = user_data;
        w->data_size += (rows * row_bytes + ALIGN - 1) / ALIGN * ALIGN;
        w->n_t++;
        return 0;
}

/* ---- writing ------------------------------------------------------------------------------- */

static int write_all(FILE *f, const void *p, size_t n)
{
        return fwrite(p, 1, n, f) == n ? 0 : -EIO;
}

int slm_gguf_writer_write(SlmGgufWriter *w, const char *path, SlmError *err)
{
        static const uint8_t zeros[ALIGN];
        size_t tmp_len = strlen(path) + 8;
        char *tmp = malloc(tmp_len);
        Buf h = { 0 };
        uint8_t *row = NULL;
        size_t max_row = 0;
        FILE *f = NULL;
        int r = 0;

        if (!tmp)
                return slm_error_set(err, -ENOMEM, "out of memory");
        snprintf(tmp, tmp_len, "%s.part", path);

        put_u32(&h, SLM_GGUF_MAGIC);
        put_u32(&h, 3);
        put_u64(&h, w->n_t);
        put_u64(&h, w->n_kv);
        for (size_t i = 0; i < w->n_kv; i++) {
                put_str(&h, w->kv[i].key);
                put(&h, w->kv[i].bytes, w->kv[i].n);
        }
        for (size_t i = 0; i < w->n_t; i++) {
                const Tensor *t = &w->t[i];
                put_str(&h, t->name);
                put_u32(&h, t->n_dims);
                for (uint32_t d = 0; d < t->n_dims; d++)
                        put_u64(&h, t->ne[d]);
                put_u32(&h, t->type);
                put_u64(&h, t->offset);
                if (t->row_bytes > max_row)
                        max_row = t->row_bytes;
        }
        put(&h, zeros, (ALIGN - h.n % ALIGN) % ALIGN);
        row = malloc(max_row ? max_row : 1);
        if (h.oom || !row) {
                r = slm_error_set(err, -ENOMEM, "out of memory");
                goto out;
        }
        f = fopen(tmp, "wb");
        if (!f) {
                r = slm_error_set(err, -errno, "cannot create %s: %s", tmp, strerror(errno));
                goto out;
        }
        r = write_all(f, h.p, h.n);
        for (size_t i = 0; i < w->n_t && r == 0; i++) {
                const Tensor *t = &w->t[i];
                uint64_t bytes = t->rows * t->row_bytes;
                for (uint64_t k = 0; k < t->rows && r == 0; k++) {
                        r = t->fill(t->user_data, t->name, k, row);
                        if (r == 0)
                                r = write_all(f, row, t->row_bytes);
                }
                if (r == 0)
                        r = write_all(f, zeros, (ALIGN - bytes % ALIGN) % ALIGN);
        }
        if (r == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
                r = -errno;
        if (fclose(f) != 0 && r == 0)
                r = -EIO;
        f = NULL;
        if (r < 0) {
                slm_error_set(err, r, "writing %s failed: %s", tmp, strerror(-r));
                unlink(tmp);
                goto out;
        }
        if (rename(tmp, path) < 0) {
                r = slm_error_set(err, -errno, "cannot rename %s: %s", tmp, strerror(errno));
                unlink(tmp);
        }
out:
        free(h.p);
        free(row);
        free(tmp);
        return r;
}
