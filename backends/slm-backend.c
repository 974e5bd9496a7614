/* SPDX-License-Identifier: MIT */
#include "slm-backend.h"

#include <errno.h>
#include <string.h>

int slm_backend_new(const char *name, int n_threads, SlmBackend **ret_backend)
{
        if (!name || strcmp(name, "auto") == 0 || strcmp(name, "cpu") == 0)
                return slm_backend_cpu_new(n_threads, ret_backend);
        return -ENODEV;
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

int slm_backend_set_threads(SlmBackend *b, int n_threads)
{
        if (n_threads < 1)
                return -EINVAL;
        return b->ops->set_threads ? b->ops->set_threads(b, n_threads) : 0;
}

int slm_backend_matmul(SlmBackend *b, const SlmMatrix *w, const float *x, int64_t n_tokens,
                       float *y)
{
        return b->ops->matmul(b, w, x, n_tokens, y);
}

void slm_backend_rmsnorm(SlmBackend *b, const float *x, const float *weight, int64_t n,
                         int64_t n_rows, float eps, float *y)
{
        if (b->ops->rmsnorm)
                b->ops->rmsnorm(b, x, weight, n, n_rows, eps, y);
        else
                slm_cpu_rmsnorm(x, weight, n, n_rows, eps, y);
}

void slm_backend_rope(SlmBackend *b, float *x, int64_t n_tokens, int n_head, int head_dim,
                      const int32_t *pos, const SlmRopeParams *p)
{
        if (b->ops->rope)
                b->ops->rope(b, x, n_tokens, n_head, head_dim, pos, p);
        else
                slm_cpu_rope(x, n_tokens, n_head, head_dim, pos, p);
}

int slm_backend_attention(SlmBackend *b, const float *q, const float *k, const float *v,
                          int64_t n_tokens, int32_t pos0, const SlmAttnParams *p, float *out)
{
        return b->ops->attention(b, q, k, v, n_tokens, pos0, p, out);
}

void slm_backend_glu(SlmBackend *b, SlmAct act, const float *gate, const float *up, int64_t n,
                     float *y)
{
        if (b->ops->glu)
                b->ops->glu(b, act, gate, up, n, y);
        else
                slm_cpu_glu(act, gate, up, n, y);
}
