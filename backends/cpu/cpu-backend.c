/* SPDX-License-Identifier: MIT */
/*
 * The CPU backend: matrix products with activations converted once to the
 * weight type's dot type (Q8 blocks for quantized weights) and output rows
 * dealt in chunks to a persistent thread pool; attention split by (token,
 * head). The fused ops normalize and convert the rows once for all their
 * matrices, run them in one hand-over, and apply a gated activation to
 * each chunk of rows as it is done.
 */
#include "slm-backend.h"
#include "cpu-internal.h"
#include "cpu-kernels.h"
#include "pack-store.h"
#include "thread-pool.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A thread's chunks still to run, [next, end) as next << 32 | end, on a cache line of its own. */
typedef struct {
        _Alignas(64) atomic_ullong range;
} ChunkSlot;

typedef struct {
        SlmBackend base;
        SlmPool *pool;
        ChunkSlot *slots;    /* one per thread of the pool */
        SlmPackStore *packs; /* NULL: packing is off (SLM_CPU_PACK=0) */
        /* activations converted for the kernels: one buffer per kind in a fused op */
        void *xq[SLM_MAX_FUSED];
        size_t xq_size[SLM_MAX_FUSED];
        float *norm_rows; /* one normalized row per thread */
        size_t norm_rows_size;
        float *glu_up; /* a gated op's up rows */
        size_t glu_up_size;
        float *scores; /* attention scratch: one row per thread */
        size_t scores_per_thread;
        uint8_t *attn_scratch; /* SLM_ATTN_SCRATCH(head_dim) per thread */
        size_t attn_scratch_size;
} CpuBackend;

/* At least @rows times @cols elements of @each bytes at *buf, of *size bytes so far. */
static int grow(void **buf, size_t *size, size_t rows, size_t cols, size_t each)
{
        size_t need;
        void *p;

        if (__builtin_mul_overflow(rows, cols, &need) || __builtin_mul_overflow(need, each, &need))
                return -EOVERFLOW;
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

/* One conversion of activation rows: a packed layout's, a dot type's, or floats as they are. */
typedef struct {
        void (*convert)(int64_t n, const float *x, void *dst); /* NULL: by type */
        SlmType type; /* without convert: slm_cpu_quantize_row to it, or a copy (F32) */
        size_t row_bytes;
        uint8_t *dst;
} Conversion;

typedef struct {
        const float *x; /* n_tokens rows of n */
        int64_t n, n_tokens;
        const float *norm; /* NULL: the rows as they are */
        float eps;
        float *norm_rows; /* with norm: a row of n per thread */
        const Conversion *conv;
        int n_conv;
} ConvertTask;

static void convert_task(void *data, int ith, int nth)
{
        const ConvertTask *c = data;
        long long start, end;

        slm_split(c->n_tokens, ith, nth, &start, &end);
        for (long long t = start; t < end; t++) {
                const float *x = c->x + t * c->n;
                if (c->norm) {
                        float *row = c->norm_rows + (size_t)ith * (size_t)c->n;
                        slm_cpu_rmsnorm(x, c->norm, c->n, 1, c->eps, row);
                        x = row;
                }
                for (int i = 0; i < c->n_conv; i++) {
                        const Conversion *cv = &c->conv[i];
                        uint8_t *dst = cv->dst + (size_t)t * cv->row_bytes;
                        if (cv->convert)
                                cv->convert(c->n, x, dst);
                        else if (cv->type == SLM_TYPE_F32)
                                memcpy(dst, x, (size_t)c->n * sizeof(float));
                        else
                                slm_cpu_quantize_row(cv->type, x, dst, c->n);
                }
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

/* ---- one matrix's rows --------------------------------------------------------------------- */

/*
 * Work of fewer multiply-adds than this runs on the calling thread alone: it takes a few
 * microseconds there, where handing it to a worker that went to sleep costs tens of them (on a
 * virtual machine with a busy host, hundreds). A small model's every op is below it.
 */
#define INLINE_MACS (1u << 17)

/* A matrix ready to run: its packed copy or its rows, and its activations converted. */
typedef struct {
        const SlmMatrix *w;
        SlmPacked pk; /* no kernel: the rows, through dot and tile */
        SlmVecDotFn dot;
        SlmTileDotFn tile; /* NULL: one row and token at a time */
        const void *xq;
        size_t xq_row_bytes;
        int64_t n_tokens;
        float *y; /* n_tokens rows of n_out */
} MatJob;

/* Rows are taken in blocks so each weight block is reused for every token while hot. */
#define ROW_BLOCK 16

/* Rows [start, end) of unpacked weights, for every token. */
static void rows_range(const MatJob *m, long long start, long long end)
{
        const SlmMatrix *w = m->w;

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

/* Two pairs at a time through gemm4 for prompts of at least this many tokens. */
#define WIDE_MIN_TOKENS 4

/*
 * Packed groups [g, end), g even: kernels with wider vectors read every
 * pair through gemm2 (two pairs at a time through gemm4 for prompts, where
 * there is one), and an odd last group through gemm.
 */
static void groups_range(const MatJob *m, long long g, long long end)
{
        const SlmPackKernel *k = m->pk.kernel;
        const uint8_t *data = m->pk.data;
        size_t gb = m->pk.group_bytes, ys = (size_t)m->w->n_out;
        float *y = m->y;
        int64_t n = m->w->n_in;
        int nt = (int)m->n_tokens;

        for (; k->gemm4 && nt >= WIDE_MIN_TOKENS && g + 4 <= end; g += 4)
                k->gemm4(n, data + g * gb, gb, m->xq, m->xq_row_bytes, nt, y + g * SLM_PACK_ROWS,
                         ys);
        for (; k->gemm2 && g + 2 <= end; g += 2)
                k->gemm2(n, data + g * gb, gb, m->xq, m->xq_row_bytes, nt, y + g * SLM_PACK_ROWS,
                         ys);
        for (; g < end; g++)
                k->gemm(n, data + g * gb, gb, m->xq, m->xq_row_bytes, nt, y + g * SLM_PACK_ROWS,
                        ys);
}

/* Rows [start, end), for every token; on packed weights both are whole pairs but at the end. */
static void job_range(const MatJob *m, long long start, long long end)
{
        if (m->pk.kernel)
                groups_range(m, start / SLM_PACK_ROWS, end / SLM_PACK_ROWS);
        else
                rows_range(m, start, end);
}

typedef struct {
        MatJob job[SLM_MAX_FUSED];
        int n_jobs;
        const SlmAct *glu; /* job 0 gate, job 1 up, into glu_up: y = act(gate) * up */
        long long first[SLM_MAX_FUSED + 1]; /* each job's first chunk; then the total */
        ChunkSlot *slots;                   /* one per thread */
} RunTask;

/*
 * Rows are dealt in chunks of CHUNK_ROWS (whole pairs of groups, and two
 * pairs for gemm4). Each thread runs a contiguous range of chunks from its
 * front, so that it reads one stream of weights, and then takes what is
 * left of the others' from their back: a thread that was slowed down
 * (memory, another program) does not hold up the rest.
 */
#define CHUNK_ROWS 64

static void run_chunk(const RunTask *t, long long c)
{
        int j = 0;

        while (c >= t->first[j + 1])
                j++;
        const MatJob *m = &t->job[j];
        long long start = (c - t->first[j]) * CHUNK_ROWS, end = start + CHUNK_ROWS;
        if (end > m->w->n_out)
                end = m->w->n_out;
        job_range(m, start, end);
        if (!t->glu)
                return;
        const MatJob *up = &t->job[1];
        job_range(up, start, end);
        for (int64_t tok = 0; tok < m->n_tokens; tok++) {
                size_t at = (size_t)tok * (size_t)m->w->n_out + (size_t)start;
                slm_cpu_glu(*t->glu, m->y + at, up->y + at, end - start, m->y + at);
        }
}

static void run_task(void *data, int ith, int nth)
{
        const RunTask *t = data;

        for (int k = 0; k < nth; k++) {
                atomic_ullong *range = &t->slots[(ith + k) % nth].range;
                unsigned long long v = atomic_load_explicit(range, memory_order_relaxed);
                for (;;) {
                        unsigned long long next = v >> 32, end = v & 0xffffffffu;
                        if (next >= end)
                                break;
                        /* its own from the front, the others' from the back */
                        unsigned long long want = k == 0 ? v + (1ull << 32) : v - 1;
                        if (atomic_compare_exchange_weak_explicit(
                                range, &v, want, memory_order_relaxed, memory_order_relaxed)) {
                                run_chunk(t, (long long)(k == 0 ? next : end - 1));
                                v = atomic_load_explicit(range, memory_order_relaxed);
                        }
                }
        }
}

/* The kernels for @w and the conversion of activations they read. */
static int job_init(CpuBackend *cpu, const SlmMatrix *w, int64_t n_tokens, float *y, MatJob *m,
                    Conversion *conv)
{
        const SlmTypeTraits *tt = slm_type_traits(w->type);
        uint64_t row_bytes;
        int r;

        *m = (MatJob){ w,
                       { NULL, NULL, 0 },
                       slm_cpu_vec_dot(w->type),
                       n_tokens >= SLM_TILE_TOKENS ? slm_cpu_tile_dot(w->type) : NULL,
                       NULL,
                       0,
                       n_tokens,
                       y };
        if (!tt || !tt->weight_type || !m->dot)
                return -ENOTSUP;
        if (cpu->packs) {
                SlmPacked p = slm_pack_store_get(cpu->packs, cpu->pool, w);
                if (p.kernel) {
                        const SlmPackLayout *l = p.kernel->layout;
                        m->pk = p;
                        *conv = (Conversion){
                                p.kernel->convert_x ? p.kernel->convert_x : l->convert_x, w->type,
                                (size_t)(w->n_in / l->block_size) * l->x_block_bytes, NULL
                        };
                        return 0;
                }
        }
        r = slm_type_row_bytes(tt->dot_type, (uint64_t)w->n_in, &row_bytes);
        if (r < 0)
                return r;
        *conv = (Conversion){ NULL, tt->dot_type, (size_t)row_bytes, NULL };
        return 0;
}

static bool same_conversion(const Conversion *a, const Conversion *b)
{
        return a->convert ? a->convert == b->convert : !b->convert && a->type == b->type;
}

/*
 * The matrices @w on the rows of x, normalized first where @norm is set:
 * each kind of activations the kernels read converted once, then every
 * matrix in one hand-over to the threads. With @glu (two matrices, gate
 * and up), y[0] = act(gate · x) * (up · x) and y[1] is not used.
 */
static int run_matrices(CpuBackend *cpu, const float *x, const float *norm, float eps,
                        int64_t n_tokens, int n_w, const SlmMatrix *const *w, float *const *y,
                        const SlmAct *glu)
{
        RunTask task = { .n_jobs = n_w, .glu = glu, .slots = cpu->slots };
        Conversion conv[SLM_MAX_FUSED], want;
        ConvertTask ct = { x, w[0]->n_in, n_tokens, norm, eps, NULL, conv, 0 };
        int threads = slm_pool_threads(cpu->pool), r;

        if (n_tokens > INT32_MAX) /* what the packed kernels count in */
                return -EOVERFLOW;
        for (int i = 0; i < n_w; i++) {
                float *out = y[i];
                if (glu && i == 1) {
                        if ((r = grow((void **)&cpu->glu_up, &cpu->glu_up_size, (size_t)n_tokens,
                                      (size_t)w[1]->n_out, sizeof(float))) < 0)
                                return r;
                        out = cpu->glu_up;
                }
                if ((r = job_init(cpu, w[i], n_tokens, out, &task.job[i], &want)) < 0)
                        return r;
                MatJob *m = &task.job[i];
                if (!norm && !want.convert && want.type == SLM_TYPE_F32) {
                        m->xq = x; /* the rows serve as they are */
                        m->xq_row_bytes = (size_t)w[i]->n_in * sizeof(float);
                        continue;
                }
                int c = 0;
                while (c < ct.n_conv && !same_conversion(&conv[c], &want))
                        c++;
                if (c == ct.n_conv) {
                        if ((r = grow(&cpu->xq[c], &cpu->xq_size[c], (size_t)n_tokens, 1,
                                      want.row_bytes)) < 0)
                                return r;
                        want.dst = cpu->xq[c];
                        conv[ct.n_conv++] = want;
                }
                m->xq = conv[c].dst;
                m->xq_row_bytes = conv[c].row_bytes;
        }
        /* gate and up run chunk by chunk together: only the gate's are counted */
        for (int i = 0; i < (glu ? 1 : n_w); i++)
                task.first[i + 1] = task.first[i] + (w[i]->n_out + CHUNK_ROWS - 1) / CHUNK_ROWS;
        if (task.first[glu ? 1 : n_w] > UINT32_MAX)
                return -EOVERFLOW;
        for (int i = 0; i < threads; i++) {
                long long start, end;
                slm_split(task.first[glu ? 1 : n_w], i, threads, &start, &end);
                atomic_store_explicit(&cpu->slots[i].range,
                                      (unsigned long long)start << 32 | (unsigned long long)end,
                                      memory_order_relaxed);
        }
        if (norm) {
                if ((r = grow((void **)&cpu->norm_rows, &cpu->norm_rows_size, (size_t)threads,
                              (size_t)w[0]->n_in, sizeof(float))) < 0)
                        return r;
                ct.norm_rows = cpu->norm_rows;
        }
        if (ct.n_conv > 0)
                convert_rows(cpu, &ct);
        uint64_t macs = 0;
        for (int i = 0; i < n_w; i++)
                macs += (uint64_t)w[i]->n_out * (uint64_t)w[i]->n_in * (uint64_t)n_tokens;
        if (macs < INLINE_MACS)
                run_task(&task, 0, threads); /* thread 0 takes every slot's chunks */
        else
                slm_pool_run(cpu->pool, run_task, &task);
        return 0;
}

int slm_cpu_matmul(SlmBackend *b, const SlmMatrix *w, const float *x, int64_t n_tokens, float *y)
{
        return run_matrices((CpuBackend *)b, x, NULL, 0.0f, n_tokens, 1, &w, &y, NULL);
}

/* ---- attention ----------------------------------------------------------------------------- */

typedef struct {
        CpuBackend *cpu;
        const float *q;
        const SlmAttnSeg *segs;
        int n_segs;
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

        /*
         * Round robin over the (token, head) pairs of all sequences in turn: with a causal mask
         * later tokens have more keys, and a batch of one-token sequences spreads its heads.
         */
        long long base = 0;
        for (int si = 0; si < a->n_segs; si++) {
                const SlmAttnSeg *g = &a->segs[si];
                long long count = (long long)g->n_tokens * p->n_head;
                long long i = base + ((ith - base) % nth + nth) % nth; /* the first that is ours */
                for (; i < base + count; i += nth) {
                        int64_t t = (i - base) / p->n_head;
                        int h = (int)((i - base) % p->n_head);
                        int kvh = h / group;
                        int64_t n_kv = g->pos0 + t + 1, first = 0;
                        if (p->n_swa > 0 && n_kv > p->n_swa)
                                first = n_kv - p->n_swa;
                        SlmKvRows k = kv_rows(g->k, p, first, kvh),
                                  v = kv_rows(g->v, p, first, kvh);
                        size_t at = (size_t)(g->row0 + t) * (size_t)q_stride +
                                    (size_t)h * (size_t)p->head_dim;
                        slm_cpu_attention_head(a->q + at, &k, &v, (int)(n_kv - first), p->head_dim,
                                               p->scale, scores, scratch, a->out + at);
                }
                base += count;
        }
}

static int cpu_attention(SlmBackend *b, SlmTensor *q, const SlmAttnSeg *segs, int n_segs,
                         const SlmAttnParams *p, SlmTensor *out)
{
        CpuBackend *cpu = (CpuBackend *)b;
        size_t threads = (size_t)slm_pool_threads(cpu->pool);
        size_t n_kv = 0;
        size_t have = cpu->scores_per_thread * sizeof(float) * threads;
        AttnTask task = { cpu, q->data, segs, n_segs, p, out->data };
        int r;

        for (int i = 0; i < n_segs; i++)
                if ((size_t)segs[i].pos0 + (size_t)segs[i].n_tokens > n_kv)
                        n_kv = (size_t)segs[i].pos0 + (size_t)segs[i].n_tokens;
        if (n_kv > cpu->scores_per_thread) {
                r = grow((void **)&cpu->scores, &have, threads, n_kv, sizeof(float));
                if (r < 0)
                        return r;
                cpu->scores_per_thread = n_kv;
        }
        r = grow((void **)&cpu->attn_scratch, &cpu->attn_scratch_size, threads, 1,
                 SLM_ATTN_SCRATCH(p->head_dim));
        if (r < 0)
                return r;
        uint64_t macs = 0; /* scores and the weighted sum of values */
        for (int i = 0; i < n_segs; i++)
                macs += 2 * (uint64_t)segs[i].n_tokens *
                        (uint64_t)(segs[i].pos0 + segs[i].n_tokens) * (uint64_t)p->n_head *
                        (uint64_t)p->head_dim;
        if (macs < INLINE_MACS)
                attention_task(&task, 0, 1);
        else
                slm_pool_run(cpu->pool, attention_task, &task);
        return 0;
}

/* ---- the ops on host tensors ---------------------------------------------------------------- */

static int cpu_matmul(SlmBackend *b, const SlmMatrix *w, SlmTensor *x, int64_t n_tokens,
                      SlmTensor *y)
{
        return slm_cpu_matmul(b, w, x->data, n_tokens, y->data);
}

static int cpu_norm_matmul(SlmBackend *b, const SlmNormInput *in, int n_w,
                           const SlmMatrix *const *w, SlmTensor *const *y)
{
        float *out[SLM_MAX_FUSED];

        for (int i = 0; i < n_w; i++)
                out[i] = y[i]->data;
        return run_matrices((CpuBackend *)b, in->x->data, in->weight, in->eps, in->n_tokens, n_w, w,
                            out, NULL);
}

static int cpu_norm_matmul_glu(SlmBackend *b, const SlmNormInput *in, SlmAct act,
                               const SlmMatrix *gate, const SlmMatrix *up, SlmTensor *y)
{
        const SlmMatrix *w[2] = { gate, up };
        float *out[2] = { y->data, NULL };

        return run_matrices((CpuBackend *)b, in->x->data, in->weight, in->eps, in->n_tokens, 2, w,
                            out, &act);
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

static int cpu_rope(SlmBackend *b, SlmTensor *x, int64_t row0, int64_t n_tokens, int n_head,
                    int head_dim, int32_t pos0, const SlmRopeParams *p)
{
        int64_t stride = (int64_t)n_head * head_dim;

        (void)b;
        for (int64_t t = 0; t < n_tokens; t++) {
                int32_t pos = pos0 + (int32_t)t;
                slm_cpu_rope(x->data + (row0 + t) * stride, 1, n_head, head_dim, &pos, p);
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

static int cpu_copy_prefix(SlmBackend *b, SlmTensor *src, SlmTensor *dst, size_t n)
{
        (void)b;
        memcpy(dst->data, src->data, type_bytes(src->type, n));
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

/* A pool of @n_threads and its chunk slots, in place of the ones there were. */
static int new_pool(CpuBackend *cpu, int n_threads)
{
        SlmPool *pool;
        ChunkSlot *slots;
        int r;

        r = slm_pool_new(n_threads, &pool);
        if (r < 0)
                return r;
        slots = aligned_alloc(_Alignof(ChunkSlot), (size_t)n_threads * sizeof(ChunkSlot));
        if (!slots) {
                slm_pool_free(pool);
                return -ENOMEM;
        }
        slm_pool_free(cpu->pool);
        free(cpu->slots);
        cpu->pool = pool;
        cpu->slots = slots;
        cpu->scores_per_thread = 0; /* the scratch is re-divided on next use */
        return 0;
}

static int cpu_set_threads(SlmBackend *b, int n_threads)
{
        CpuBackend *cpu = (CpuBackend *)b;

        if (n_threads == slm_pool_threads(cpu->pool))
                return 0;
        return new_pool(cpu, n_threads);
}

static void cpu_free(SlmBackend *b)
{
        CpuBackend *cpu = (CpuBackend *)b;

        slm_pool_free(cpu->pool);
        free(cpu->slots);
        slm_pack_store_free(cpu->packs);
        for (int i = 0; i < SLM_MAX_FUSED; i++)
                free(cpu->xq[i]);
        free(cpu->norm_rows);
        free(cpu->glu_up);
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
        .copy_prefix = cpu_copy_prefix,
        .norm_matmul = cpu_norm_matmul,
        .norm_matmul_glu = cpu_norm_matmul_glu,
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

        r = new_pool(cpu, n_threads);
        if (r == 0 && !(pack && strcmp(pack, "0") == 0))
                r = slm_pack_store_new(&cpu->packs);
        if (r < 0) {
                slm_pool_free(cpu->pool);
                free(cpu->slots);
                free(cpu);
                return r;
        }
        cpu->base.ops = &cpu_ops;
        *ret_backend = &cpu->base;
        return 0;
}
