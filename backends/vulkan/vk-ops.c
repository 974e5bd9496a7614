/* SPDX-License-Identifier: MIT */
/*
 * The Vulkan backend: each op records one or a few dispatches of the
 * shaders in shaders/. Matrix products for F32, F16, Q8_0, Q4_0, Q4_K,
 * Q5_K and Q6_K run on the device; other weight types fall back to the
 * CPU backend's kernels, through host copies of the activations.
 */
#include "vk-internal.h"
#include "vk-push.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IDS      (65536 / 4) /* token ids per get_rows: what one buffer update carries */
#define MAX_HEAD_DIM 1024        /* attention.comp's shared arrays */
#define MAX_GROUPS   65535u

static VkBackend *vk_of(SlmBackend *b)
{
        return (VkBackend *)b;
}

static VkBuf *buf_of(SlmTensor *t)
{
        return t ? &((VkTensor *)t)->buf : NULL;
}

/* The shader suffix of a weight type the shaders read, NULL for the others. */
static const char *type_suffix(SlmType type)
{
        switch (type) {
        case SLM_TYPE_F32:
                return "f32";
        case SLM_TYPE_F16:
                return "f16";
        case SLM_TYPE_Q4_0:
                return "q4_0";
        case SLM_TYPE_Q8_0:
                return "q8_0";
        case SLM_TYPE_Q4_K:
                return "q4_k";
        case SLM_TYPE_Q5_K:
                return "q5_k";
        case SLM_TYPE_Q6_K:
                return "q6_k";
        default:
                return NULL;
        }
}

/* The pipeline for @base (+ _suffix), in its subgroup variant where it has one and the device can.
 */
static int pipeline(VkBackend *vk, const char *base, const char *suffix, bool has_sg, uint32_t tile,
                    VkPipeline *ret)
{
        char name[64];

        snprintf(name, sizeof(name), "%s%s%s%s", base, suffix ? "_" : "", suffix ? suffix : "",
                 has_sg && vk->subgroup_arith ? "_sg" : "");
        return slm_vk_pipeline(vk, name, tile, ret);
}

/* ---- tensors ------------------------------------------------------------------------------- */

/* F32, and F16 for a KV cache (two values per 32-bit word, as the shaders read it). */
static int vk_tensor_new(SlmBackend *b, SlmType type, size_t n, SlmTensor **ret)
{
        VkBackend *vk = vk_of(b);
        VkDeviceSize bytes =
            type == SLM_TYPE_F16 ? (VkDeviceSize)(n + 1) / 2 * 4 : (VkDeviceSize)n * sizeof(float);
        VkTensor *t;
        int r;

        if (type != SLM_TYPE_F32 && type != SLM_TYPE_F16)
                return -EOPNOTSUPP;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        r = slm_vk_buf_new(vk, bytes, false, &t->buf);
        if (r < 0) {
                free(t);
                return r;
        }
        t->base.n = n;
        t->base.type = type;
        *ret = &t->base;
        return 0;
}

static void vk_tensor_free(SlmBackend *b, SlmTensor *t)
{
        VkBackend *vk = vk_of(b);

        slm_vk_flush(vk); /* recorded work may still use it */
        slm_vk_buf_free(vk, buf_of(t));
        free(t);
}

static int vk_write(SlmBackend *b, SlmTensor *t, size_t off, const float *src, size_t n)
{
        VkBackend *vk = vk_of(b);
        int r = slm_vk_flush(vk);

        return r < 0 ? r
                     : slm_vk_upload(vk, buf_of(t), off * sizeof(float), src, n * sizeof(float));
}

static int vk_copy_prefix(SlmBackend *b, SlmTensor *src, SlmTensor *dst, size_t n)
{
        VkBackend *vk = vk_of(b);
        uint64_t bytes = 0;
        int r = slm_vk_flush(vk); /* recorded work may still write it */

        if (r < 0)
                return r;
        if (slm_type_row_bytes(src->type, n, &bytes) < 0)
                return -EINVAL;
        return slm_vk_copy_now(vk, buf_of(src), 0, buf_of(dst), 0, bytes);
}

static int vk_read(SlmBackend *b, SlmTensor *t, size_t off, float *dst, size_t n)
{
        VkBackend *vk = vk_of(b);
        int r = slm_vk_flush(vk);

        return r < 0 ? r
                     : slm_vk_download(vk, buf_of(t), off * sizeof(float), dst, n * sizeof(float));
}

/* ---- matrix products ------------------------------------------------------------------------ */

/* Weights no shader reads: the CPU backend's kernels on host copies. */
static int fallback_matmul(VkBackend *vk, const SlmMatrix *w, SlmTensor *x, int64_t n_tokens,
                           SlmTensor *y)
{
        size_t nx = (size_t)n_tokens * (size_t)w->n_in, ny = (size_t)n_tokens * (size_t)w->n_out;
        float *hx = malloc(nx * sizeof(float)), *hy = malloc(ny * sizeof(float));
        int r = hx && hy ? 0 : -ENOMEM;

        if (r == 0)
                r = vk_read(&vk->base, x, 0, hx, nx);
        if (r == 0)
                r = slm_cpu_matmul(vk->cpu, w, hx, n_tokens, hy);
        if (r == 0)
                r = vk_write(&vk->base, y, 0, hy, ny);
        free(hx);
        free(hy);
        return r;
}

static int vk_matmul(SlmBackend *b, const SlmMatrix *w, SlmTensor *x, int64_t n_tokens,
                     SlmTensor *y)
{
        VkBackend *vk = vk_of(b);
        const char *suffix = type_suffix(w->type);
        uint32_t tile = n_tokens == 1 ? 1 : 8;
        VkPipeline pipe;
        VkWeight *wt;
        int r;

        if (!suffix)
                return fallback_matmul(vk, w, x, n_tokens, y);
        if (w->row_bytes > UINT32_MAX || (uint64_t)n_tokens > MAX_GROUPS * tile)
                return -E2BIG;
        if ((r = slm_vk_weight(vk, w->data, w->row_bytes, w->n_out, &wt)) < 0 ||
            (r = pipeline(vk, "matmul", suffix, true, tile, &pipe)) < 0)
                return r;
        for (int c = 0; c < wt->n_chunks; c++) {
                VkPushMatmul pc = { (uint32_t)w->n_in, (uint32_t)w->row_bytes, wt->chunk[c].n_rows,
                                    wt->chunk[c].row0, (uint32_t)w->n_out,     (uint32_t)n_tokens };
                VkBuf *bufs[] = { &wt->chunk[c].buf, buf_of(x), buf_of(y) };
                uint32_t gx = pc.n_rows < MAX_GROUPS ? pc.n_rows : MAX_GROUPS;
                r = slm_vk_dispatch(vk, pipe, bufs, 3, 0x3, 0x4, &pc, sizeof(pc), gx,
                                    (pc.n_rows + gx - 1) / gx,
                                    (uint32_t)((n_tokens + tile - 1) / tile));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int vk_get_rows(SlmBackend *b, const SlmMatrix *w, const int32_t *ids, int64_t n_ids,
                       float scale, SlmTensor *y)
{
        VkBackend *vk = vk_of(b);
        const char *suffix = type_suffix(w->type);
        VkPipeline pipe;
        VkWeight *wt;
        int r;

        if (n_ids > MAX_IDS)
                return -E2BIG;
        if (!suffix) {
                /* the CPU backend's lookup into host memory, then copied in */
                SlmTensor h = { (size_t)n_ids * (size_t)w->n_in, NULL, SLM_TYPE_F32 };
                h.data = malloc(h.n * sizeof(float));
                if (!h.data)
                        return -ENOMEM;
                r = slm_backend_get_rows(vk->cpu, w, ids, n_ids, scale, &h);
                if (r == 0)
                        r = vk_write(b, y, 0, h.data, h.n);
                free(h.data);
                return r;
        }
        if ((r = slm_vk_weight(vk, w->data, w->row_bytes, w->n_out, &wt)) < 0 ||
            (r = pipeline(vk, "get_rows", suffix, false, 1, &pipe)) < 0 ||
            (r = slm_vk_update(vk, &vk->ids, ids, (size_t)n_ids * sizeof(int32_t))) < 0)
                return r;
        for (int c = 0; c < wt->n_chunks; c++) {
                VkPushGetRows pc = { (uint32_t)w->n_in, (uint32_t)w->row_bytes, wt->chunk[c].n_rows,
                                     wt->chunk[c].row0, (uint32_t)n_ids,        scale };
                VkBuf *bufs[] = { &wt->chunk[c].buf, &vk->ids, buf_of(y) };
                r = slm_vk_dispatch(vk, pipe, bufs, 3, 0x3, 0x4, &pc, sizeof(pc), (uint32_t)n_ids,
                                    1, 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- the other ops -------------------------------------------------------------------------- */

static int vector(VkBackend *vk, const float *v, int64_t n, VkBuf **ret)
{
        VkWeight *w;
        int r = slm_vk_weight(vk, v, (size_t)n * sizeof(float), 1, &w);

        if (r < 0)
                return r;
        *ret = &w->chunk[0].buf;
        return 0;
}

static int vk_rmsnorm(SlmBackend *b, SlmTensor *x, const float *weight, int64_t n, int64_t n_rows,
                      float eps, SlmTensor *y)
{
        VkBackend *vk = vk_of(b);
        VkPushRmsnorm pc = { (uint32_t)n, eps };
        VkPipeline pipe;
        VkBuf *wb;
        int r;

        if (n_rows > MAX_GROUPS)
                return -E2BIG;
        if ((r = vector(vk, weight, n, &wb)) < 0 ||
            (r = pipeline(vk, "rmsnorm", NULL, true, 1, &pipe)) < 0)
                return r;
        VkBuf *bufs[] = { buf_of(x), wb, buf_of(y) };
        return slm_vk_dispatch(vk, pipe, bufs, 3, 0x3, 0x4, &pc, sizeof(pc), (uint32_t)n_rows, 1,
                               1);
}

static int vk_rope(SlmBackend *b, SlmTensor *x, int64_t row0, int64_t n_tokens, int n_head,
                   int head_dim, int32_t pos0, const SlmRopeParams *p)
{
        VkBackend *vk = vk_of(b);
        VkPushRope pc = {
                (uint32_t)n_tokens,
                (uint32_t)n_head,
                (uint32_t)head_dim,
                (uint32_t)p->n_rot / 2,
                (uint32_t)pos0,
                p->mode == SLM_ROPE_NEOX,
                powf(p->freq_base, -2.0f / (float)p->n_rot), /* as the CPU computes it */
                p->freq_scale,
                (uint32_t)row0,
        };
        uint64_t total = (uint64_t)n_tokens * (uint64_t)n_head * pc.n_pairs;
        VkPipeline pipe;
        uint32_t gx, gy;
        int r;

        if (total == 0)
                return 0;
        if ((r = pipeline(vk, "rope", NULL, false, 1, &pipe)) < 0)
                return r;
        VkBuf *bufs[] = { buf_of(x) };
        slm_vk_grid(total, &gx, &gy);
        return slm_vk_dispatch(vk, pipe, bufs, 1, 0x1, 0x1, &pc, sizeof(pc), gx, gy, 1);
}

/* One dispatch per sequence, each over its own cache. */
static int vk_attention(SlmBackend *b, SlmTensor *q, const SlmAttnSeg *segs, int n_segs,
                        const SlmAttnParams *p, SlmTensor *out)
{
        VkBackend *vk = vk_of(b);
        VkPipeline pipe;
        int r = 0;

        if (p->head_dim > MAX_HEAD_DIM)
                return -ENOTSUP;
        for (int i = 0; i < n_segs; i++) {
                if (p->n_head > (int)MAX_GROUPS || segs[i].n_tokens > MAX_GROUPS)
                        return -E2BIG;
                if (segs[i].k->type != segs[i].v->type)
                        return -EOPNOTSUPP;
        }
        for (int i = 0; i < n_segs && r == 0; i++) {
                const SlmAttnSeg *g = &segs[i];
                VkPushAttention pc = { (uint32_t)g->pos0,
                                       (uint32_t)p->n_head,
                                       (uint32_t)p->n_head_kv,
                                       (uint32_t)p->head_dim,
                                       (uint32_t)(p->n_swa > 0 ? p->n_swa : 0),
                                       p->scale,
                                       (uint32_t)g->row0 };
                if ((r = pipeline(vk, "attention", g->k->type == SLM_TYPE_F16 ? "f16" : NULL, true,
                                  1, &pipe)) < 0)
                        return r;
                VkBuf *bufs[] = { buf_of(q), buf_of(g->k), buf_of(g->v), buf_of(out) };
                r = slm_vk_dispatch(vk, pipe, bufs, 4, 0x7, 0x8, &pc, sizeof(pc),
                                    (uint32_t)p->n_head, (uint32_t)g->n_tokens, 1);
        }
        return r;
}

static int vk_glu(SlmBackend *b, SlmAct act, SlmTensor *gate, SlmTensor *up, int64_t n,
                  SlmTensor *y)
{
        VkBackend *vk = vk_of(b);
        VkPushGlu pc = { (uint32_t)n, act == SLM_ACT_GELU };
        VkPipeline pipe;
        uint32_t gx, gy;
        int r;

        if ((r = pipeline(vk, "glu", NULL, false, 1, &pipe)) < 0)
                return r;
        VkBuf *bufs[] = { buf_of(gate), buf_of(up), buf_of(y) };
        slm_vk_grid((uint64_t)n, &gx, &gy);
        return slm_vk_dispatch(vk, pipe, bufs, 3, 0x3, 0x4, &pc, sizeof(pc), gx, gy, 1);
}

static int vk_add(SlmBackend *b, SlmTensor *x, SlmTensor *y, const float *bias, float scale,
                  int64_t n, int64_t n_rows)
{
        VkBackend *vk = vk_of(b);
        VkPushAdd pc = { (uint32_t)n, (uint32_t)(n * n_rows), scale, y != NULL, bias != NULL };
        VkBuf *bb = NULL;
        VkPipeline pipe;
        uint32_t gx, gy;
        int r;

        if (pc.total == 0)
                return 0;
        if ((bias && (r = vector(vk, bias, n, &bb)) < 0) ||
            (r = pipeline(vk, "add", NULL, false, 1, &pipe)) < 0)
                return r;
        VkBuf *bufs[] = { buf_of(x), buf_of(y), bb };
        slm_vk_grid(pc.total, &gx, &gy);
        return slm_vk_dispatch(vk, pipe, bufs, 3, 0x7, 0x1, &pc, sizeof(pc), gx, gy, 1);
}

static int vk_copy(SlmBackend *b, SlmTensor *src, size_t src_off, size_t src_stride, SlmTensor *dst,
                   size_t dst_off, size_t dst_stride, size_t n, size_t n_rows)
{
        VkBackend *vk = vk_of(b);
        VkPushCopy pc = { (uint32_t)src_off,    (uint32_t)src_stride, (uint32_t)dst_off,
                          (uint32_t)dst_stride, (uint32_t)n,          (uint32_t)(n * n_rows) };
        VkPipeline pipe;
        uint32_t gx, gy;
        int r;

        /* the wrapper bounded every index by the tensors, which fit in 32 bits */
        if (dst->type == SLM_TYPE_F16) {
                /* one invocation per word of halves, which it reads and writes back */
                size_t last = dst_off + (n_rows - 1) * dst_stride + n - 1;
                if ((r = pipeline(vk, "copy", "f16", false, 1, &pipe)) < 0)
                        return r;
                VkBuf *bufs[] = { buf_of(src), buf_of(dst) };
                slm_vk_grid(last / 2 - dst_off / 2 + 1, &gx, &gy);
                return slm_vk_dispatch(vk, pipe, bufs, 2, 0x3, 0x2, &pc, sizeof(pc), gx, gy, 1);
        }
        if ((r = pipeline(vk, "copy", NULL, false, 1, &pipe)) < 0)
                return r;
        VkBuf *bufs[] = { buf_of(src), buf_of(dst) };
        slm_vk_grid(pc.total, &gx, &gy);
        return slm_vk_dispatch(vk, pipe, bufs, 2, 0x1, 0x2, &pc, sizeof(pc), gx, gy, 1);
}

static int vk_argmax(SlmBackend *b, SlmTensor *x, int64_t n, int32_t *ret)
{
        VkBackend *vk = vk_of(b);
        VkPushArgmax pc = { (uint32_t)n };
        VkPipeline pipe;
        uint32_t idx;
        int r;

        if ((r = pipeline(vk, "argmax", NULL, false, 1, &pipe)) < 0)
                return r;
        VkBuf *bufs[] = { buf_of(x), &vk->result };
        if ((r = slm_vk_dispatch(vk, pipe, bufs, 2, 0x1, 0x2, &pc, sizeof(pc), 1, 1, 1)) < 0 ||
            (r = slm_vk_flush(vk)) < 0 ||
            (r = slm_vk_download(vk, &vk->result, 0, &idx, sizeof(idx))) < 0)
                return r;
        if (idx >= (uint64_t)n)
                return -EIO;
        *ret = (int32_t)idx;
        return 0;
}

/* ---- the backend ----------------------------------------------------------------------------- */

static bool vk_supports_type(SlmBackend *b, SlmType type)
{
        (void)b;
        return type_suffix(type) != NULL;
}

static int vk_set_threads(SlmBackend *b, int n_threads)
{
        return slm_backend_set_threads(vk_of(b)->cpu, n_threads);
}

static const char *vk_device_name(SlmBackend *b)
{
        return vk_of(b)->description;
}

static void vk_release_weights(SlmBackend *b)
{
        VkBackend *vk = vk_of(b);

        slm_vk_flush(vk);
        slm_vk_weights_release(vk);
        slm_backend_release_weights(vk->cpu);
}

static void vk_free(SlmBackend *b)
{
        VkBackend *vk = vk_of(b);

        if (vk->device) {
                slm_vk_flush(vk);
                vkDeviceWaitIdle(vk->device);
                slm_vk_weights_release(vk);
                slm_vk_buf_free(vk, &vk->staging);
                slm_vk_buf_free(vk, &vk->ids);
                slm_vk_buf_free(vk, &vk->result);
                slm_vk_buf_free(vk, &vk->dummy);
                slm_vk_pipelines_free(vk);
                slm_vk_record_free(vk);
        }
        slm_vk_device_close(vk);
        slm_backend_free(vk->cpu);
        free(vk);
}

static const SlmBackendOps vk_ops = {
        .name = "vulkan",
        .free = vk_free,
        .set_threads = vk_set_threads,
        .supports_type = vk_supports_type,
        .device_name = vk_device_name,
        .release_weights = vk_release_weights,
        .tensor_new = vk_tensor_new,
        .tensor_free = vk_tensor_free,
        .write = vk_write,
        .read = vk_read,
        .get_rows = vk_get_rows,
        .matmul = vk_matmul,
        .rmsnorm = vk_rmsnorm,
        .rope = vk_rope,
        .attention = vk_attention,
        .glu = vk_glu,
        .add = vk_add,
        .copy = vk_copy,
        .copy_prefix = vk_copy_prefix,
        .argmax = vk_argmax,
};

int slm_backend_vulkan_new(int n_threads, bool allow_cpu_device, SlmBackend **ret_backend)
{
        VkBackend *vk = calloc(1, sizeof(*vk));
        int r;

        if (!vk)
                return -ENOMEM;
        vk->base.ops = &vk_ops;
        if ((r = slm_backend_cpu_new(n_threads, &vk->cpu)) < 0 ||
            (r = slm_vk_device_open(vk, allow_cpu_device)) < 0 ||
            (r = slm_vk_pipelines_init(vk)) < 0 || (r = slm_vk_record_init(vk)) < 0 ||
            (r = slm_vk_buf_new(vk, MAX_IDS * sizeof(int32_t), false, &vk->ids)) < 0 ||
            (r = slm_vk_buf_new(vk, 16, true, &vk->result)) < 0 ||
            (r = slm_vk_buf_new(vk, 16, false, &vk->dummy)) < 0) {
                vk_free(&vk->base);
                return r;
        }
        *ret_backend = &vk->base;
        return 0;
}
