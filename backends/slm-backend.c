/* SPDX-License-Identifier: MIT */
/*
 * The wrappers check every size against the tensors it names before a
 * backend sees it, so no backend indexes past a buffer.
 */
#include "slm-backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool is_backend(const char *name, const char *want)
{
        return name && strcmp(name, want) == 0;
}

int slm_backend_new(const char *name, int n_threads, SlmBackend **ret_backend)
{
        if (!name || is_backend(name, "auto")) {
                const char *env = getenv("SLM_BACKEND");
                if (env && *env && !is_backend(env, "auto"))
                        return slm_backend_new(env, n_threads, ret_backend);
                /* a Vulkan device that is itself the CPU would only be slower */
                if (slm_backend_vulkan_new(n_threads, false, ret_backend) == 0)
                        return 0;
                return slm_backend_cpu_new(n_threads, ret_backend);
        }
        if (is_backend(name, "cpu"))
                return slm_backend_cpu_new(n_threads, ret_backend);
        if (is_backend(name, "vulkan"))
                return slm_backend_vulkan_new(n_threads, true, ret_backend);
        return -EINVAL;
}

SlmBackend *slm_backend_free(SlmBackend *b)
{
        if (b)
                b->ops->free(b);
        return NULL;
}

const char *slm_backend_name(const SlmBackend *b)
{
        return b->ops->name;
}

const char *slm_backend_device_name(SlmBackend *b)
{
        return b->ops->device_name(b);
}

int slm_backend_set_threads(SlmBackend *b, int n_threads)
{
        if (n_threads < 1)
                return -EINVAL;
        return b->ops->set_threads(b, n_threads);
}

bool slm_backend_supports_type(SlmBackend *b, SlmType type)
{
        return b->ops->supports_type(b, type);
}

void slm_backend_release_weights(SlmBackend *b)
{
        b->ops->release_weights(b);
}

/* ---- tensors ------------------------------------------------------------------------------- */

/* Whether elements [off, off + n) lie inside t, whatever its type. */
static bool fits_any(const SlmTensor *t, size_t off, size_t n)
{
        return t && off <= t->n && n <= t->n - off;
}

/* The same for an F32 tensor: only copy and attention take the others. */
static bool fits(const SlmTensor *t, size_t off, size_t n)
{
        return fits_any(t, off, n) && t->type == SLM_TYPE_F32;
}

static bool rows_total(int64_t n_rows, int64_t n, size_t *total)
{
        return n_rows >= 0 && n >= 0 && !__builtin_mul_overflow((size_t)n_rows, (size_t)n, total);
}

/* Whether rows x cols elements lie inside t (an F32 one). */
static bool fits_rows(const SlmTensor *t, int64_t n_rows, int64_t n)
{
        size_t total;

        return rows_total(n_rows, n, &total) && fits(t, 0, total);
}

/* The elements per block of a type a tensor may hold; 0 for any other. */
static size_t tensor_block(SlmType type)
{
        switch (type) {
        case SLM_TYPE_F32:
        case SLM_TYPE_F16:
                return 1;
        case SLM_TYPE_Q8_0:
                return SLM_QK;
        default:
                return 0;
        }
}

int slm_tensor_new_typed(SlmBackend *b, SlmType type, size_t n, SlmTensor **ret)
{
        size_t block = tensor_block(type);

        if (block == 0 || n == 0 || n % block || n > SIZE_MAX / sizeof(float))
                return -EINVAL;
        return b->ops->tensor_new(b, type, n, ret);
}

int slm_tensor_new(SlmBackend *b, size_t n, SlmTensor **ret)
{
        return slm_tensor_new_typed(b, SLM_TYPE_F32, n, ret);
}

SlmTensor *slm_tensor_free(SlmBackend *b, SlmTensor *t)
{
        if (t)
                b->ops->tensor_free(b, t);
        return NULL;
}

int slm_tensor_write(SlmBackend *b, SlmTensor *t, size_t off, const float *src, size_t n)
{
        if (!fits(t, off, n))
                return -EINVAL;
        return n ? b->ops->write(b, t, off, src, n) : 0;
}

int slm_tensor_read(SlmBackend *b, SlmTensor *t, size_t off, float *dst, size_t n)
{
        if (!fits(t, off, n))
                return -EINVAL;
        return b->ops->read(b, t, off, dst, n);
}

/* ---- ops ----------------------------------------------------------------------------------- */

int slm_backend_get_rows(SlmBackend *b, const SlmMatrix *w, const int32_t *ids, int64_t n_ids,
                         float scale, SlmTensor *y)
{
        if (n_ids <= 0 || !fits_rows(y, n_ids, w->n_in))
                return -EINVAL;
        for (int64_t i = 0; i < n_ids; i++)
                if (ids[i] < 0 || ids[i] >= w->n_out)
                        return -EINVAL;
        return b->ops->get_rows(b, w, ids, n_ids, scale, y);
}

int slm_backend_matmul(SlmBackend *b, const SlmMatrix *w, SlmTensor *x, int64_t n_tokens,
                       SlmTensor *y)
{
        if (n_tokens <= 0 || !fits_rows(x, n_tokens, w->n_in) || !fits_rows(y, n_tokens, w->n_out))
                return -EINVAL;
        return b->ops->matmul(b, w, x, n_tokens, y);
}

int slm_backend_rmsnorm(SlmBackend *b, SlmTensor *x, const float *weight, int64_t n, int64_t n_rows,
                        float eps, SlmTensor *y)
{
        if (n <= 0 || !fits_rows(x, n_rows, n) || !fits_rows(y, n_rows, n))
                return -EINVAL;
        return b->ops->rmsnorm(b, x, weight, n, n_rows, eps, y);
}

int slm_backend_rope(SlmBackend *b, SlmTensor *x, int64_t row0, int64_t n_tokens, int n_head,
                     int head_dim, int32_t pos0, const SlmRopeParams *p)
{
        if (n_head <= 0 || head_dim <= 0 || p->n_rot > head_dim || p->n_rot % 2 || pos0 < 0 ||
            row0 < 0 || n_tokens < 0 || row0 > INT32_MAX - n_tokens ||
            !fits_rows(x, row0 + n_tokens, (int64_t)n_head * head_dim))
                return -EINVAL;
        return b->ops->rope(b, x, row0, n_tokens, n_head, head_dim, pos0, p);
}

int slm_backend_attention_segs(SlmBackend *b, SlmTensor *q, const SlmAttnSeg *segs, int n_segs,
                               const SlmAttnParams *p, SlmTensor *out)
{
        int64_t qd = (int64_t)p->n_head * p->head_dim, kvd = (int64_t)p->n_head_kv * p->head_dim;

        if (p->n_head <= 0 || p->n_head_kv <= 0 || p->n_head % p->n_head_kv || p->head_dim <= 0 ||
            n_segs <= 0 || !segs)
                return -EINVAL;
        for (int i = 0; i < n_segs; i++) {
                const SlmAttnSeg *g = &segs[i];
                size_t n_kv, kb = tensor_block(g->k ? g->k->type : SLM_TYPE_F32);
                size_t vb = tensor_block(g->v ? g->v->type : SLM_TYPE_F32);
                if (g->pos0 < 0 || g->n_tokens <= 0 || g->n_tokens > INT32_MAX - g->pos0 ||
                    g->row0 < 0 || g->row0 > INT32_MAX - g->n_tokens ||
                    !fits_rows(q, g->row0 + g->n_tokens, qd) ||
                    !fits_rows(out, g->row0 + g->n_tokens, qd) ||
                    !rows_total(g->pos0 + g->n_tokens, kvd, &n_kv) || !fits_any(g->k, 0, n_kv) ||
                    !fits_any(g->v, 0, n_kv))
                        return -EINVAL;
                /* each head's slice of a cache row is read on its own: it must be whole blocks */
                if (kb == 0 || vb == 0 || (size_t)p->head_dim % kb || (size_t)p->head_dim % vb)
                        return -EINVAL;
        }
        return b->ops->attention(b, q, segs, n_segs, p, out);
}

int slm_backend_attention(SlmBackend *b, SlmTensor *q, int64_t row0, SlmTensor *k, SlmTensor *v,
                          int64_t n_tokens, int32_t pos0, const SlmAttnParams *p, SlmTensor *out)
{
        SlmAttnSeg seg = { row0, n_tokens, pos0, k, v };

        return slm_backend_attention_segs(b, q, &seg, 1, p, out);
}

int slm_backend_glu(SlmBackend *b, SlmAct act, SlmTensor *gate, SlmTensor *up, int64_t n,
                    SlmTensor *y)
{
        if (!fits_rows(gate, 1, n) || !fits_rows(up, 1, n) || !fits_rows(y, 1, n))
                return -EINVAL;
        return b->ops->glu(b, act, gate, up, n, y);
}

int slm_backend_add(SlmBackend *b, SlmTensor *x, SlmTensor *y, const float *bias, float scale,
                    int64_t n, int64_t n_rows)
{
        if (n <= 0 || !fits_rows(x, n_rows, n) || (y && !fits_rows(y, n_rows, n)))
                return -EINVAL;
        return b->ops->add(b, x, y, bias, scale, n, n_rows);
}

int slm_backend_copy(SlmBackend *b, SlmTensor *src, size_t src_off, size_t src_stride,
                     SlmTensor *dst, size_t dst_off, size_t dst_stride, size_t n, size_t n_rows)
{
        size_t last_src, last_dst;

        if (n == 0 || n_rows == 0)
                return 0;
        /* the last row must fit: offset + (n_rows - 1) * stride + n */
        if (__builtin_mul_overflow(n_rows - 1, src_stride, &last_src) ||
            __builtin_add_overflow(last_src, src_off, &last_src) ||
            __builtin_mul_overflow(n_rows - 1, dst_stride, &last_dst) ||
            __builtin_add_overflow(last_dst, dst_off, &last_dst) || !fits(src, last_src, n) ||
            !fits_any(dst, last_dst, n))
                return -EINVAL;
        size_t block = tensor_block(dst->type);
        if (block == 0 || dst_off % block || (n_rows > 1 && dst_stride % block) || n % block)
                return -EINVAL;
        return b->ops->copy(b, src, src_off, src_stride, dst, dst_off, dst_stride, n, n_rows);
}

int slm_backend_argmax(SlmBackend *b, SlmTensor *x, int64_t n, int32_t *ret)
{
        if (n <= 0 || n > INT32_MAX || !fits_rows(x, 1, n))
                return -EINVAL;
        return b->ops->argmax(b, x, n, ret);
}

int slm_backend_copy_prefix(SlmBackend *b, SlmTensor *src, SlmTensor *dst, size_t n)
{
        size_t block = tensor_block(src ? src->type : SLM_TYPE_F32);

        if (!src || !dst || src->type != dst->type || !fits_any(src, 0, n) ||
            !fits_any(dst, 0, n) || block == 0 || n % block)
                return -EINVAL;
        if (n == 0)
                return 0;
        return b->ops->copy_prefix(b, src, dst, n);
}

/* ---- fused ops ----------------------------------------------------------------------------- */

static bool fused_ok(const SlmNormInput *in, int n_w, const SlmMatrix *const *w,
                     SlmTensor *const *y)
{
        if (n_w < 1 || n_w > SLM_MAX_FUSED || !in->weight || in->n_tokens <= 0 || w[0]->n_in <= 0 ||
            !fits_rows(in->x, in->n_tokens, w[0]->n_in))
                return false;
        for (int i = 0; i < n_w; i++)
                if (w[i]->n_in != w[0]->n_in || y[i] == in->x ||
                    !fits_rows(y[i], in->n_tokens, w[i]->n_out))
                        return false;
        return true;
}

int slm_backend_norm_matmul(SlmBackend *b, const SlmNormInput *in, int n_w,
                            const SlmMatrix *const *w, SlmTensor *const *y, SlmTensor *xn)
{
        int r;

        if (!fused_ok(in, n_w, w, y))
                return -EINVAL;
        if (b->ops->norm_matmul)
                return b->ops->norm_matmul(b, in, n_w, w, y);
        r = slm_backend_rmsnorm(b, in->x, in->weight, w[0]->n_in, in->n_tokens, in->eps, xn);
        for (int i = 0; r == 0 && i < n_w; i++)
                r = slm_backend_matmul(b, w[i], xn, in->n_tokens, y[i]);
        return r;
}

int slm_backend_norm_matmul_glu(SlmBackend *b, const SlmNormInput *in, SlmAct act,
                                const SlmMatrix *gate, const SlmMatrix *up, SlmTensor *y,
                                SlmTensor *xn, SlmTensor *up_out)
{
        const SlmMatrix *w[2] = { gate, up };
        SlmTensor *out[2] = { y, y };
        size_t n;
        int r;

        if (!fused_ok(in, 2, w, out) || up->n_out != gate->n_out ||
            !rows_total(in->n_tokens, gate->n_out, &n))
                return -EINVAL;
        if (b->ops->norm_matmul_glu)
                return b->ops->norm_matmul_glu(b, in, act, gate, up, y);
        out[1] = up_out;
        if ((r = slm_backend_norm_matmul(b, in, 2, w, out, xn)) < 0)
                return r;
        return slm_backend_glu(b, act, y, up_out, (int64_t)n, y);
}
