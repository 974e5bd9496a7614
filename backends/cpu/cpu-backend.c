/* SPDX-License-Identifier: MIT */
/*
 * The CPU backend: matrix products with activations converted once to the
 * weight type's dot type (Q8 blocks for quantized weights) and output rows
 * split across a persistent thread pool; attention split by (token, head).
 */
#include "slm-backend.h"
#include "cpu-internal.h"
#include "cpu-kernels.h"
#include "pack-store.h"
#include "thread-pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
        SlmBackend base;
        SlmPool *pool;
        SlmPackStore *packs; /* NULL: packing is off (SLM_CPU_PACK=0) */
        void *xq;            /* activations converted to the dot type */
        size_t xq_size;
        float *scores; /* attention scratch: one row per thread */
        size_t scores_per_thread;
        uint8_t *attn_scratch; /* SLM_ATTN_SCRATCH(head_dim) per thread */
        size_t attn_scratch_size;
} CpuBackend;

static int grow(void **buf, size_t *size, size_t need)
{
        void *p;

        if (need <= *size)
                return 0;
        p = realloc(*buf, need);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *size = need;
        return 0;
}

/* Bytes of the first @n elements of a row of @type (whole blocks: the wrappers checked). */
static size_t type_bytes(SlmType type, size_t n)
{
        uint64_t bytes = 0;

        slm_type_row_bytes(type, n, &bytes);
        return (size_t)bytes;
}

/* ---- activations converted for the kernels ------------------------------------------------- */

typedef struct {
        void (*convert)(int64_t n, const float *x, void *dst); /* NULL: slm_cpu_quantize_row */
        SlmType type;
        int64_t n, n_tokens;
        const float *x;
        uint8_t *dst;
        size_t row_bytes;
} ConvertTask;

static void convert_task(void *data, int ith, int nth)
{
        const ConvertTask *c = data;
        long long start, end;

        slm_split(c->n_tokens, ith, nth, &start, &end);
        for (long long t = start; t < end; t++) {
                const float *x = c->x + t * c->n;
                uint8_t *dst = c->dst + (size_t)t * c->row_bytes;
                if (c->convert)
                        c->convert(c->n, x, dst);
                else
                        slm_cpu_quantize_row(c->type, x, dst, c->n);
        }
}

/* Rows of a prompt are converted on every thread; one token is not worth a hand-over. */
static void convert_rows(CpuBackend *cpu, const ConvertTask *c)
{
        if (c->n_tokens >= 2 * slm_pool_threads(cpu->pool))
                slm_pool_run(cpu->pool, convert_task, (void *)c);
        else
                convert_task((void *)c, 0, 1);
}

/* ---- matmul -------------------------------------------------------------------------------- */

typedef struct {
        const SlmMatrix *w;
        SlmVecDotFn dot;
        SlmTileDotFn tile; /* NULL: one row and token at a time */
        const void *xq;
        size_t xq_row_bytes;
        int64_t n_tokens;
        float *y;
} MatmulTask;

/* Rows are taken in blocks so each weight block is reused for every token while hot. */
#define ROW_BLOCK 16

static void matmul_task(void *data, int ith, int nth)
{
        const MatmulTask *m = data;
        const SlmMatrix *w = m->w;
        long long start, end;

        slm_split(w->n_out, ith, nth, &start, &end);
        for (long long r0 = start; r0 < end; r0 += ROW_BLOCK) {
                long long r1 = r0 + ROW_BLOCK < end ? r0 + ROW_BLOCK : end;
                int64_t t = 0;
                /* whole tiles of rows and tokens, then what is left one by one */
                for (; m->tile && t + SLM_TILE_TOKENS <= m->n_tokens; t += SLM_TILE_TOKENS) {
                        const uint8_t *x = (const uint8_t *)m->xq + t * m->xq_row_bytes;
                        long long r = r0;
                        for (; r + SLM_TILE_ROWS <= r1; r += SLM_TILE_ROWS)
                                m->tile(w->n_in, (const uint8_t *)w->data + r * w->row_bytes,
                                        w->row_bytes, x, m->xq_row_bytes, m->y + t * w->n_out + r,
                                        (size_t)w->n_out);
                        for (; r < r1; r++)
                                for (int k = 0; k < SLM_TILE_TOKENS; k++)
                                        m->y[(t + k) * w->n_out + r] = m->dot(
                                            w->n_in, (const uint8_t *)w->data + r * w->row_bytes,
                                            x + k * m->xq_row_bytes);
                }
                for (; t < m->n_tokens; t++) {
                        const uint8_t *x = (const uint8_t *)m->xq + t * m->xq_row_bytes;
                        float *y = m->y + t * w->n_out;
                        for (long long r = r0; r < r1; r++)
                                y[r] =
                                    m->dot(w->n_in, (const uint8_t *)w->data + r * w->row_bytes, x);
                }
        }
}

/* ---- matmul on packed weights -------------------------------------------------------------- */

typedef struct {
        const SlmPacked *p;
        int64_t n_in, n_out;
        const void *xq;
        size_t xq_row_bytes;
        int64_t n_tokens;
        float *y;
} PackedTask;

/*
 * Kernels with wider vectors read every pair through gemm2 (two pairs at a
 * time through gemm4 for prompts, where there is one), and an odd last
 * group through gemm.
 */
#define WIDE_MIN_TOKENS 4

static void packed_task(void *data, int ith, int nth)
{
        const PackedTask *m = data;
        const SlmPackKernel *k = m->p->kernel;
        size_t gb = m->p->group_bytes;
        int per = !k->gemm2 ? 1 : k->gemm4 && m->n_tokens >= WIDE_MIN_TOKENS ? 4 : 2;
        long long start, end, g;

        slm_split(m->n_out / SLM_PACK_ROWS / per, ith, nth, &start, &end);
        start *= per;
        end *= per;
        if (ith == nth - 1) /* the groups that do not make a whole unit, at the end */
                end = m->n_out / SLM_PACK_ROWS;
        for (g = start; per == 4 && g + 4 <= end; g += 4)
                k->gemm4(m->n_in, m->p->data + (size_t)g * gb, gb, m->xq, m->xq_row_bytes,
                         (int)m->n_tokens, m->y + g * SLM_PACK_ROWS, (size_t)m->n_out);
        for (; k->gemm2 && g + 2 <= end; g += 2)
                k->gemm2(m->n_in, m->p->data + (size_t)g * gb, gb, m->xq, m->xq_row_bytes,
                         (int)m->n_tokens, m->y + g * SLM_PACK_ROWS, (size_t)m->n_out);
        for (; g < end; g++)
                k->gemm(m->n_in, m->p->data + (size_t)g * gb, gb, m->xq, m->xq_row_bytes,
                        (int)m->n_tokens, m->y + g * SLM_PACK_ROWS, (size_t)m->n_out);
}

static int packed_matmul(CpuBackend *cpu, const SlmMatrix *w, const SlmPacked *p, const float *x,
                         int64_t n_tokens, float *y)
{
        const SlmPackLayout *l = p->kernel->layout;
        size_t row_bytes = (size_t)(w->n_in / l->block_size) * l->x_block_bytes, total;
        PackedTask task = { p, w->n_in, w->n_out, NULL, row_bytes, n_tokens, y };
        int r;

        if (__builtin_mul_overflow(row_bytes, (size_t)n_tokens, &total) || n_tokens > INT32_MAX)
                return -EOVERFLOW;
        r = grow(&cpu->xq, &cpu->xq_size, total);
        if (r < 0)
                return r;
        ConvertTask conv = { p->kernel->convert_x ? p->kernel->convert_x : l->convert_x,
                             0,
                             w->n_in,
                             n_tokens,
                             x,
                             cpu->xq,
                             row_bytes };
        convert_rows(cpu, &conv);
        task.xq = cpu->xq;
        slm_pool_run(cpu->pool, packed_task, &task);
        return 0;
}

int slm_cpu_matmul(SlmBackend *b, const SlmMatrix *w, const float *x, int64_t n_tokens, float *y)
{
        CpuBackend *cpu = (CpuBackend *)b;
        const SlmTypeTraits *tt = slm_type_traits(w->type);
        MatmulTask task = { w,
                            slm_cpu_vec_dot(w->type),
                            n_tokens >= SLM_TILE_TOKENS ? slm_cpu_tile_dot(w->type) : NULL,
                            x,
                            (size_t)w->n_in * sizeof(float),
                            n_tokens,
                            y };
        uint64_t row_bytes, total;
        int r;

        if (!tt || !tt->weight_type || !task.dot)
                return -ENOTSUP;
        if (cpu->packs) {
                const SlmPacked *p = slm_pack_store_get(cpu->packs, cpu->pool, w);
                if (p->kernel)
                        return packed_matmul(cpu, w, p, x, n_tokens, y);
        }
        if (tt->dot_type != SLM_TYPE_F32) {
                r = slm_type_row_bytes(tt->dot_type, (uint64_t)w->n_in, &row_bytes);
                if (r < 0)
                        return r;
                if (__builtin_mul_overflow(row_bytes, (uint64_t)n_tokens, &total))
                        return -EOVERFLOW;
                r = grow(&cpu->xq, &cpu->xq_size, total);
                if (r < 0)
                        return r;
                ConvertTask conv = { NULL, tt->dot_type, w->n_in, n_tokens, x, cpu->xq, row_bytes };
                convert_rows(cpu, &conv);
                task.xq = cpu->xq;
                task.xq_row_bytes = row_bytes;
        }
        slm_pool_run(cpu->pool, matmul_task, &task);
        return 0;
}

/* ---- attention ----------------------------------------------------------------------------- */

typedef struct {
        CpuBackend *cpu;
        const float *q;
        const SlmTensor *k, *v;
        int64_t n_tokens;
        int32_t pos0;
        const SlmAttnParams *p;
        float *out;
} AttnTask;

/* Head @kvh of cache row @pos: byte offsets within a row are whole blocks (the wrapper checked). */
static SlmKvRows kv_rows(const SlmTensor *t, const SlmAttnParams *p, int64_t pos, int kvh)
{
        size_t row = type_bytes(t->type, (size_t)p->n_head_kv * (size_t)p->head_dim);
        size_t head = type_bytes(t->type, (size_t)kvh * (size_t)p->head_dim);

        return (SlmKvRows){ t->type, (const uint8_t *)t->data + (size_t)pos * row + head, row };
}

static void attention_task(void *data, int ith, int nth)
{
        const AttnTask *a = data;
        const SlmAttnParams *p = a->p;
        CpuBackend *cpu = a->cpu;
        int group = p->n_head / p->n_head_kv;
        int q_stride = p->n_head * p->head_dim;
        float *scores = cpu->scores + (size_t)ith * cpu->scores_per_thread;
        uint8_t *scratch = cpu->attn_scratch + (size_t)ith * SLM_ATTN_SCRATCH(p->head_dim);

        /* round robin: with a causal mask later tokens have more keys */
        for (long long i = ith; i < a->n_tokens * p->n_head; i += nth) {
                int64_t t = i / p->n_head;
                int h = (int)(i % p->n_head);
                int kvh = h / group;
                int64_t n_kv = a->pos0 + t + 1, first = 0;
                if (p->n_swa > 0 && n_kv > p->n_swa)
                        first = n_kv - p->n_swa;
                SlmKvRows k = kv_rows(a->k, p, first, kvh), v = kv_rows(a->v, p, first, kvh);
                slm_cpu_attention_head(a->q + t * q_stride + h * p->head_dim, &k, &v,
                                       (int)(n_kv - first), p->head_dim, p->scale, scores, scratch,
                                       a->out + t * q_stride + h * p->head_dim);
        }
}

static int cpu_attention(SlmBackend *b, SlmTensor *q, SlmTensor *k, SlmTensor *v, int64_t n_tokens,
                         int32_t pos0, const SlmAttnParams *p, SlmTensor *out)
{
        CpuBackend *cpu = (CpuBackend *)b;
        size_t threads = (size_t)slm_pool_threads(cpu->pool);
        size_t n_kv = (size_t)pos0 + (size_t)n_tokens;
        size_t need = n_kv * sizeof(float) * threads;
        size_t have = cpu->scores_per_thread * sizeof(float) * threads;
        AttnTask task = { cpu, q->data, k, v, n_tokens, pos0, p, out->data };
        int r;

        if (need > have) {
                r = grow((void **)&cpu->scores, &have, need);
                if (r < 0)
                        return r;
                cpu->scores_per_thread = n_kv;
        }
        r = grow((void **)&cpu->attn_scratch, &cpu->attn_scratch_size,
                 SLM_ATTN_SCRATCH(p->head_dim) * threads);
        if (r < 0)
                return r;
        slm_pool_run(cpu->pool, attention_task, &task);
        return 0;
}

/* ---- the ops on host tensors ---------------------------------------------------------------- */

static int cpu_matmul(SlmBackend *b, const SlmMatrix *w, SlmTensor *x, int64_t n_tokens,
                      SlmTensor *y)
{
        return slm_cpu_matmul(b, w, x->data, n_tokens, y->data);
}

static int cpu_get_rows(SlmBackend *b, const SlmMatrix *w, const int32_t *ids, int64_t n_ids,
                        float scale, SlmTensor *y)
{
        (void)b;
        for (int64_t t = 0; t < n_ids; t++) {
                const uint8_t *row = (const uint8_t *)w->data + (size_t)ids[t] * w->row_bytes;
                float *dst = y->data + t * w->n_in;
                slm_dequantize_row(w->type, row, dst, w->n_in);
                if (scale != 1.0f)
                        for (int64_t i = 0; i < w->n_in; i++)
                                dst[i] *= scale;
        }
        return 0;
}

static int cpu_rmsnorm(SlmBackend *b, SlmTensor *x, const float *weight, int64_t n, int64_t n_rows,
                       float eps, SlmTensor *y)
{
        (void)b;
        slm_cpu_rmsnorm(x->data, weight, n, n_rows, eps, y->data);
        return 0;
}

static int cpu_rope(SlmBackend *b, SlmTensor *x, int64_t n_tokens, int n_head, int head_dim,
                    int32_t pos0, const SlmRopeParams *p)
{
        int64_t stride = (int64_t)n_head * head_dim;

        (void)b;
        for (int64_t t = 0; t < n_tokens; t++) {
                int32_t pos = pos0 + (int32_t)t;
                slm_cpu_rope(x->data + t * stride, 1, n_head, head_dim, &pos, p);
        }
        return 0;
}

static int cpu_glu(SlmBackend *b, SlmAct act, SlmTensor *gate, SlmTensor *up, int64_t n,
                   SlmTensor *y)
{
        (void)b;
        slm_cpu_glu(act, gate->data, up->data, n, y->data);
        return 0;
}

static int cpu_add(SlmBackend *b, SlmTensor *x, SlmTensor *y, const float *bias, float scale,
                   int64_t n, int64_t n_rows)
{
        (void)b;
        for (int64_t r = 0; r < n_rows; r++) {
                float *xr = x->data + r * n;
                const float *yr = y ? y->data + r * n : NULL;
                for (int64_t i = 0; i < n; i++) {
                        float v = xr[i] * scale;
                        if (yr)
                                v += yr[i];
                        if (bias)
                                v += bias[i];
                        xr[i] = v;
                }
        }
        return 0;
}

static int cpu_copy(SlmBackend *b, SlmTensor *src, size_t src_off, size_t src_stride,
                    SlmTensor *dst, size_t dst_off, size_t dst_stride, size_t n, size_t n_rows)
{
        (void)b;
        for (size_t r = 0; r < n_rows; r++) {
                const float *from = src->data + src_off + r * src_stride;
                uint8_t *to =
                    (uint8_t *)dst->data + type_bytes(dst->type, dst_off + r * dst_stride);
                if (dst->type == SLM_TYPE_F32)
                        memmove(to, from, n * sizeof(float));
                else
                        slm_cpu_quantize_row(dst->type, from, to, (int64_t)n);
        }
        return 0;
}

static int cpu_argmax(SlmBackend *b, SlmTensor *x, int64_t n, int32_t *ret)
{
        int64_t best = 0;

        (void)b;
        for (int64_t i = 1; i < n; i++)
                if (x->data[i] > x->data[best])
                        best = i;
        *ret = (int32_t)best;
        return 0;
}

/* ---- tensors in host memory ---------------------------------------------------------------- */

static int cpu_tensor_new(SlmBackend *b, SlmType type, size_t n, SlmTensor **ret)
{
        SlmTensor *t = malloc(sizeof(*t));

        (void)b;
        if (!t)
                return -ENOMEM;
        t->n = n;
        t->type = type;
        t->data = calloc(1, type_bytes(type, n));
        if (!t->data) {
                free(t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

static void cpu_tensor_free(SlmBackend *b, SlmTensor *t)
{
        (void)b;
        free(t->data);
        free(t);
}

static int cpu_write(SlmBackend *b, SlmTensor *t, size_t off, const float *src, size_t n)
{
        (void)b;
        memcpy(t->data + off, src, n * sizeof(float));
        return 0;
}

static int cpu_read(SlmBackend *b, SlmTensor *t, size_t off, float *dst, size_t n)
{
        (void)b;
        memcpy(dst, t->data + off, n * sizeof(float));
        return 0;
}

/* ---- the rest ------------------------------------------------------------------------------ */

static const char *cpu_device_name(SlmBackend *b)
{
        (void)b;
        return slm_cpu_simd_name();
}

static void cpu_release_weights(SlmBackend *b)
{
        CpuBackend *cpu = (CpuBackend *)b;

        if (cpu->packs)
                slm_pack_store_clear(cpu->packs);
}

static bool cpu_supports_type(SlmBackend *b, SlmType type)
{
        const SlmTypeTraits *tt = slm_type_traits(type);
        (void)b;
        return tt && tt->weight_type;
}

static int cpu_set_threads(SlmBackend *b, int n_threads)
{
        CpuBackend *cpu = (CpuBackend *)b;
        SlmPool *pool;
        int r;

        if (n_threads == slm_pool_threads(cpu->pool))
                return 0;
        r = slm_pool_new(n_threads, &pool);
        if (r < 0)
                return r;
        slm_pool_free(cpu->pool);
        cpu->pool = pool;
        cpu->scores_per_thread = 0; /* the scratch is re-divided on next use */
        return 0;
}

static void cpu_free(SlmBackend *b)
{
        CpuBackend *cpu = (CpuBackend *)b;

        slm_pool_free(cpu->pool);
        slm_pack_store_free(cpu->packs);
        free(cpu->xq);
        free(cpu->scores);
        free(cpu->attn_scratch);
        free(cpu);
}

static const SlmBackendOps cpu_ops = {
        .name = "cpu",
        .free = cpu_free,
        .set_threads = cpu_set_threads,
        .supports_type = cpu_supports_type,
        .device_name = cpu_device_name,
        .release_weights = cpu_release_weights,
        .tensor_new = cpu_tensor_new,
        .tensor_free = cpu_tensor_free,
        .write = cpu_write,
        .read = cpu_read,
        .get_rows = cpu_get_rows,
        .matmul = cpu_matmul,
        .rmsnorm = cpu_rmsnorm,
        .rope = cpu_rope,
        .attention = cpu_attention,
        .glu = cpu_glu,
        .add = cpu_add,
        .copy = cpu_copy,
        .argmax = cpu_argmax,
};

size_t slm_backend_cpu_packed_bytes(SlmBackend *b)
{
        CpuBackend *cpu = (CpuBackend *)b;

        if (b->ops != &cpu_ops) /* another backend: it packs nothing for the CPU */
                return 0;
        return cpu->packs ? slm_pack_store_bytes(cpu->packs) : 0;
}

int slm_backend_cpu_new(int n_threads, SlmBackend **ret_backend)
{
        CpuBackend *cpu = calloc(1, sizeof(*cpu));
        int r;

        if (!cpu)
                return -ENOMEM;
        const char *pack = getenv("SLM_CPU_PACK");

        r = slm_pool_new(n_threads, &cpu->pool);
        if (r == 0 && !(pack && strcmp(pack, "0") == 0))
                r = slm_pack_store_new(&cpu->packs);
        if (r < 0) {
                slm_pool_free(cpu->pool);
                free(cpu);
                return r;
        }
        cpu->base.ops = &cpu_ops;
        *ret_backend = &cpu->base;
        return 0;
}
