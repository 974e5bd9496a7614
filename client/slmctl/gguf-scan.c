/* SPDX-License-Identifier: MIT */
/*
 * The few facts `slmctl discover` shows about a GGUF file, read from its
 * header with stdio: the architecture, the file type, whether it is one
 * part of a split model, and the tensor types. Nothing is mapped and no
 * tensor data is read; every count and length is checked against the
 * file's size before it is used, so a damaged file ends the scan with a
 * reason instead of a crash or a long read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "slmctl.h"

enum {
        T_U8,
        T_I8,
        T_U16,
        T_I16,
        T_U32,
        T_I32,
        T_F32,
        T_BOOL,
        T_STRING,
        T_ARRAY,
        T_U64,
        T_I64,
        T_F64
};

typedef struct {
        FILE *f;
        uint64_t size;
        const char *why; /* set at the first problem */
} Reader;

static bool rd(Reader *r, void *dst, size_t n)
{
        if (r->why)
                return false;
        if (fread(dst, 1, n, r->f) != n) {
                r->why = "truncated header";
                return false;
        }
        return true;
}

static uint64_t rd_u64(Reader *r)
{
        uint8_t b[8];
        uint64_t v = 0;

        if (!rd(r, b, 8))
                return 0;
        for (int i = 7; i >= 0; i--)
                v = v << 8 | b[i];
        return v;
}

static uint32_t rd_u32(Reader *r)
{
        uint8_t b[4];

        if (!rd(r, b, 4))
                return 0;
        return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void skip(Reader *r, uint64_t n)
{
        off_t pos = ftello(r->f);

        if (r->why)
                return;
        if (pos < 0 || n > r->size - (uint64_t)pos || fseeko(r->f, (off_t)n, SEEK_CUR) < 0)
                r->why = "a length runs past the end of the file";
}

/* A string into @out (cut to @cap - 1 bytes), or skipped when @out is NULL. */
static void rd_str(Reader *r, char *out, size_t cap)
{
        uint64_t len = rd_u64(r);
        off_t pos = ftello(r->f);

        if (r->why)
                return;
        if (pos < 0 || len > r->size - (uint64_t)pos) {
                r->why = "a string runs past the end of the file";
                return;
        }
        if (!out) {
                skip(r, len);
                return;
        }
        size_t keep = len < cap - 1 ? (size_t)len : cap - 1;
        if (rd(r, out, keep)) {
                out[keep] = 0;
                skip(r, len - keep);
        }
}

static int scalar_size(uint32_t type)
{
        static const int sizes[] = {
                [T_U8] = 1,  [T_I8] = 1,   [T_U16] = 2, [T_I16] = 2, [T_U32] = 4, [T_I32] = 4,
                [T_F32] = 4, [T_BOOL] = 1, [T_U64] = 8, [T_I64] = 8, [T_F64] = 8
        };
        return type < sizeof(sizes) / sizeof(sizes[0]) ? sizes[type] : 0;
}

static void skip_value(Reader *r, uint32_t type, int depth)
{
        if (type == T_STRING) {
                rd_str(r, NULL, 0);
        } else if (type == T_ARRAY) {
                uint32_t et = rd_u32(r);
                uint64_t n = rd_u64(r);
                if (r->why)
                        return;
                if (depth >= 4) {
                        r->why = "arrays nested too deep";
                } else if (scalar_size(et)) {
                        if (n > r->size / (uint64_t)scalar_size(et))
                                r->why = "an array runs past the end of the file";
                        else
                                skip(r, n * (uint64_t)scalar_size(et));
                } else if (et == T_STRING || et == T_ARRAY) {
                        /* each element takes at least 8 bytes */
                        if (n > r->size / 8)
                                r->why = "an array runs past the end of the file";
                        for (uint64_t i = 0; i < n && !r->why; i++)
                                skip_value(r, et, depth + 1);
                } else {
                        r->why = "unknown value type";
                }
        } else if (scalar_size(type)) {
                skip(r, (uint64_t)scalar_size(type));
        } else {
                r->why = "unknown value type";
        }
}

/* An integer value of any integer type, or -1. */
static int64_t rd_int(Reader *r, uint32_t type)
{
        int n = scalar_size(type);
        uint8_t b[8] = { 0 };
        uint64_t v = 0;

        if (!n || type == T_F32 || type == T_F64) {
                skip_value(r, type, 0);
                return -1;
        }
        if (!rd(r, b, (size_t)n))
                return -1;
        for (int i = n - 1; i >= 0; i--)
                v = v << 8 | b[i];
        return v > INT64_MAX ? -1 : (int64_t)v;
}

int gguf_scan(const char *path, GgufFacts *out)
{
        Reader r = { 0 };
        struct stat st;
        char key[256];

        memset(out, 0, sizeof(*out));
        out->file_type = -1;
        r.f = fopen(path, "rb");
        if (!r.f)
                return -errno;
        if (fstat(fileno(r.f), &st) < 0 || !S_ISREG(st.st_mode)) {
                fclose(r.f);
                return -EINVAL;
        }
        r.size = (uint64_t)st.st_size;
        out->size = r.size;
        if (rd_u32(&r) != 0x46554747u) {
                out->problem = "not a GGUF file";
                goto done;
        }
        uint32_t version = rd_u32(&r);
        uint64_t n_tensors = rd_u64(&r), n_kv = rd_u64(&r);
        if (!r.why && (version < 2 || version > 3))
                r.why = "unsupported GGUF version";
        /* a key/value takes at least 12 bytes, a tensor entry at least 24 */
        if (!r.why && (n_kv > r.size / 12 || n_tensors > r.size / 24))
                r.why = "truncated (the header counts more entries than the file holds)";
        for (uint64_t i = 0; i < n_kv && !r.why; i++) {
                rd_str(&r, key, sizeof(key));
                uint32_t type = rd_u32(&r);
                if (r.why)
                        break;
                if (strcmp(key, "general.architecture") == 0 && type == T_STRING)
                        rd_str(&r, out->architecture, sizeof(out->architecture));
                else if (strcmp(key, "general.name") == 0 && type == T_STRING)
                        rd_str(&r, out->name, sizeof(out->name));
                else if (strcmp(key, "general.file_type") == 0)
                        out->file_type = rd_int(&r, type);
                else if (strcmp(key, "split.count") == 0)
                        out->split_count = rd_int(&r, type);
                else
                        skip_value(&r, type, 0);
        }
        for (uint64_t i = 0; i < n_tensors && !r.why; i++) {
                uint64_t elems = 1;
                rd_str(&r, NULL, 0);
                uint32_t n_dims = rd_u32(&r);
                if (!r.why && (n_dims < 1 || n_dims > 4))
                        r.why = "a tensor with a bad number of dimensions";
                for (uint32_t d = 0; d < n_dims && !r.why; d++) {
                        uint64_t ne = rd_u64(&r);
                        elems = ne && elems > UINT64_MAX / ne ? UINT64_MAX : elems * ne;
                }
                uint32_t type = rd_u32(&r);
                rd_u64(&r); /* offset */
                if (r.why)
                        break;
                if (type >= GGUF_MAX_TYPES) {
                        r.why = "a tensor of an unknown type";
                        break;
                }
                out->type_elements[type] += n_dims >= 2 ? elems : 0;
                out->has_type[type] = true;
                out->n_tensors++;
        }
        out->problem = r.why;
done:
        fclose(r.f);
        return 0;
}

/* The GGUF tensor type ids of ggml, by name. */
const char *gguf_type_name(uint32_t type)
{
        static const char *const names[GGUF_MAX_TYPES] = {
                [0] = "F32",      [1] = "F16",     [2] = "Q4_0",     [3] = "Q4_1",
                [6] = "Q5_0",     [7] = "Q5_1",    [8] = "Q8_0",     [9] = "Q8_1",
                [10] = "Q2_K",    [11] = "Q3_K",   [12] = "Q4_K",    [13] = "Q5_K",
                [14] = "Q6_K",    [15] = "Q8_K",   [16] = "IQ2_XXS", [17] = "IQ2_XS",
                [18] = "IQ3_XXS", [19] = "IQ1_S",  [20] = "IQ4_NL",  [21] = "IQ3_S",
                [22] = "IQ2_S",   [23] = "IQ4_XS", [24] = "I8",      [25] = "I16",
                [26] = "I32",     [27] = "I64",    [28] = "F64",     [29] = "IQ1_M",
                [30] = "BF16",    [34] = "TQ1_0",  [35] = "TQ2_0",
        };
        return type < GGUF_MAX_TYPES && names[type] ? names[type] : "unknown";
}

/* general.file_type (llama.cpp's file types) by name, or NULL. */
static const char *file_type_name(int64_t ft)
{
        static const char *const names[] = {
                [0] = "F32",      [1] = "F16",     [2] = "Q4_0",    [3] = "Q4_1",
                [7] = "Q8_0",     [8] = "Q5_0",    [9] = "Q5_1",    [10] = "Q2_K",
                [11] = "Q3_K_S",  [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S",
                [15] = "Q4_K_M",  [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K",
                [19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S", [22] = "IQ3_XS",
                [23] = "IQ3_XXS", [24] = "IQ1_S",  [25] = "IQ4_NL", [26] = "IQ3_S",
                [27] = "IQ3_M",   [28] = "IQ2_S",  [29] = "IQ2_M",  [30] = "IQ4_XS",
                [31] = "IQ1_M",   [32] = "BF16",   [36] = "TQ1_0",  [37] = "TQ2_0",
        };
        if (ft < 0 || ft >= (int64_t)(sizeof(names) / sizeof(names[0])))
                return NULL;
        return names[ft];
}

const char *gguf_quantization(const GgufFacts *g)
{
        const char *ft = file_type_name(g->file_type);
        uint32_t best = 0;

        if (ft)
                return ft;
        for (uint32_t t = 1; t < GGUF_MAX_TYPES; t++)
                if (g->type_elements[t] > g->type_elements[best])
                        best = t;
        return g->n_tensors ? gguf_type_name(best) : "unknown";
}
