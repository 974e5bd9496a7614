/* SPDX-License-Identifier: MIT */
/*
 * CPU reference ops: single-threaded, plain C (attention's q.k through the
 * dispatched dot product of the cache's type), written to round the way the reference
 * implementation does (sums of squares and softmax denominators in double,
 * RoPE angles advanced by repeated multiplication, GELU through an fp16
 * table).
 */
#include "slm-backend.h"
#include "cpu-internal.h"
#include "cpu-kernels.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

void slm_cpu_rmsnorm(const float *x, const float *weight, int64_t n, int64_t n_rows, float eps,
                     float *y)
{
        for (int64_t r = 0; r < n_rows; r++, x += n, y += n) {
                double sum = 0.0;
                for (int64_t i = 0; i < n; i++)
                        sum += (double)(x[i] * x[i]);
                float mean = (float)(sum / (double)n);
                float scale = 1.0f / sqrtf(mean + eps);
                for (int64_t i = 0; i < n; i++)
                        y[i] = (x[i] * scale) * weight[i];
        }
}

void slm_cpu_rope(float *x, int64_t n_tokens, int n_head, int head_dim, const int32_t *pos,
                  const SlmRopeParams *p)
{
        float theta_scale = powf(p->freq_base, -2.0f / (float)p->n_rot);
        float cs[2 * 512];
        int n_pairs = p->n_rot / 2;

        if (n_pairs > 512)
                n_pairs = 512; /* n_rot is validated against this bound at load time */
        for (int64_t t = 0; t < n_tokens; t++) {
                float theta = (float)pos[t];
                for (int i = 0; i < n_pairs; i++) {
                        float th = theta * p->freq_scale;
                        cs[2 * i] = cosf(th);
                        cs[2 * i + 1] = sinf(th);
                        theta *= theta_scale;
                }
                for (int h = 0; h < n_head; h++) {
                        float *v = x + (t * n_head + h) * (int64_t)head_dim;
                        for (int i = 0; i < n_pairs; i++) {
                                int a = p->mode == SLM_ROPE_NEOX ? i : 2 * i;
                                int b = p->mode == SLM_ROPE_NEOX ? i + n_pairs : 2 * i + 1;
                                float c = cs[2 * i], s = cs[2 * i + 1];
                                float x0 = v[a], x1 = v[b];
                                v[a] = x0 * c - x1 * s;
                                v[b] = x0 * s + x1 * c;
                        }
                }
        }
}

/* ---- activations --------------------------------------------------------------------------- */

static float gelu_table[1 << 16];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static float gelu_exact(float x)
{
        const float c = 0.044715f, sqrt_2_over_pi = 0.79788456080286535587989211986876f;
        return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * x * (1.0f + c * x * x)));
}

static void gelu_table_init(void)
{
        for (uint32_t i = 0; i < (1u << 16); i++) {
                float f = slm_fp16_to_fp32((slm_fp16)i);
                gelu_table[i] = slm_fp16_to_fp32(slm_fp32_to_fp16(gelu_exact(f)));
        }
}

float slm_cpu_gelu(float x)
{
        if (x <= -10.0f)
                return 0.0f;
        if (x >= 10.0f)
                return x;
        pthread_once(&gelu_once, gelu_table_init);
        return gelu_table[slm_fp32_to_fp16(x)];
}

void slm_cpu_glu(SlmAct act, const float *gate, const float *up, int64_t n, float *y)
{
        if (act == SLM_ACT_GELU) {
                for (int64_t i = 0; i < n; i++)
                        y[i] = slm_cpu_gelu(gate[i]) * up[i];
        } else {
                slm_cpu_silu_glu()(gate, up, n, y);
        }
}

/* ---- attention ----------------------------------------------------------------------------- */

void slm_cpu_attention_head(const float *q, const SlmKvRows *k, const SlmKvRows *v, int n_kv,
                            int head_dim, float scale, float *scores, void *scratch, float *out)
{
        /* q in the keys' dot type (F32, F16 or Q8_0 blocks): the weight kernels then apply */
        SlmType qt = slm_type_traits(k->type)->dot_type;
        SlmVecDotFn dot = slm_cpu_vec_dot(k->type);
        const void *qx = q;
        float max = -INFINITY;
        double sum = 0.0;

        if (qt != SLM_TYPE_F32) {
                slm_cpu_quantize_row(qt, q, scratch, head_dim);
                qx = scratch;
        }
        SlmKeyDotsFn many = slm_cpu_key_dots(k->type, head_dim);
        if (many)
                many(n_kv, k->data, k->stride, qx, scores);
        else
                for (int j = 0; j < n_kv; j++)
                        scores[j] = dot(head_dim, k->data + (size_t)j * k->stride, qx);
        for (int j = 0; j < n_kv; j++) {
                scores[j] *= scale;
                if (scores[j] > max)
                        max = scores[j];
        }
        for (int j = 0; j < n_kv; j++) {
                float e = expf(scores[j] - max);
                scores[j] = e;
                sum += (double)e;
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < n_kv; j++)
                scores[j] *= inv;
        slm_cpu_row_sum(v->type)(head_dim, n_kv, scores, v->data, v->stride, out);
}
