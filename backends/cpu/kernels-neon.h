/* SPDX-License-Identifier: MIT */
/*
 * NEON dot products and row sums for arm64, written once and compiled
 * twice: kernels-neon.c for every arm64 CPU (8-bit products widened with
 * vmull/vpadal) and kernels-neon-dotprod.c for CPUs with the dot-product
 * extension (sdot), which defines SLM_NEON_DOTPROD first. NEON_FN names
 * each function after the variant. The integer parts are exact, as in the
 * reference; only the order of float additions differs.
 *
 * The including file provides: NEON_FN(name), and includes arm_neon.h.
 */
#include "cpu-kernels.h"

#include <stddef.h>
#include <string.h>

/* acc + the dot products of four groups of four int8 lanes of a and b. */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b)
{
#ifdef SLM_NEON_DOTPROD
        return vdotq_s32(acc, a, b);
#else
        int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        int16x8_t hi = vmull_high_s8(a, b);
        return vpadalq_s16(vpadalq_s16(acc, lo), hi);
#endif
}

static inline float h2f(slm_fp16 h)
{
        __fp16 f;
        memcpy(&f, &h, sizeof(f));
        return (float)f;
}

/* Eight values from @p at @i as two float vectors, widened from half precision when @half. */
static inline float32x4x2_t load8(const void *p, int64_t i, bool half)
{
        float32x4x2_t v;

        if (half) {
                float16x8_t h = vld1q_f16((const __fp16 *)p + i);
                v.val[0] = vcvt_f32_f16(vget_low_f16(h));
                v.val[1] = vcvt_high_f32_f16(h);
        } else {
                v.val[0] = vld1q_f32((const float *)p + i);
                v.val[1] = vld1q_f32((const float *)p + i + 4);
        }
        return v;
}

static inline float dot_float(int64_t n, const void *w, const void *x, bool half)
{
        float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
        int64_t i = 0;
        float sum;

        for (; i + 8 <= n; i += 8) {
                float32x4x2_t a = load8(w, i, half), b = load8(x, i, half);
                acc0 = vfmaq_f32(acc0, a.val[0], b.val[0]);
                acc1 = vfmaq_f32(acc1, a.val[1], b.val[1]);
        }
        sum = vaddvq_f32(vaddq_f32(acc0, acc1));
        for (; i < n; i++)
                sum += half ? h2f(((const slm_fp16 *)w)[i]) * h2f(((const slm_fp16 *)x)[i])
                            : ((const float *)w)[i] * ((const float *)x)[i];
        return sum;
}

static float NEON_FN(dot_f32)(int64_t n, const void *w, const void *x)
{
        return dot_float(n, w, x, false);
}

static float NEON_FN(dot_f16)(int64_t n, const void *w, const void *x)
{
        return dot_float(n, w, x, true);
}

/* d_w * d_x * (q · y) for one block of 32 against Q8_0 activations, q as two vectors. */
static inline float32x4_t fma_q8_block(float32x4_t acc, int8x16_t q0, int8x16_t q1, float dw,
                                       const SlmBlockQ8_0 *x)
{
        int32x4_t p = dot16(vdupq_n_s32(0), q0, vld1q_s8(x->qs));
        p = dot16(p, q1, vld1q_s8(x->qs + 16));
        return vfmaq_n_f32(acc, vcvtq_f32_s32(p), dw * h2f(x->d));
}

static float NEON_FN(dot_q8_0)(int64_t n, const void *wv, const void *xv)
{
        const SlmBlockQ8_0 *w = wv, *x = xv;
        float32x4_t acc = vdupq_n_f32(0.0f);

        for (int64_t i = 0; i < n / SLM_QK; i++)
                acc = fma_q8_block(acc, vld1q_s8(w[i].qs), vld1q_s8(w[i].qs + 16), h2f(w[i].d),
                                   &x[i]);
        return vaddvq_f32(acc);
}

static float NEON_FN(dot_q4_0)(int64_t n, const void *wv, const void *xv)
{
        const SlmBlockQ4_0 *w = wv;
        const SlmBlockQ8_0 *x = xv;
        const uint8x16_t m4 = vdupq_n_u8(0x0f);
        const int8x16_t eight = vdupq_n_s8(8);
        float32x4_t acc = vdupq_n_f32(0.0f);

        for (int64_t i = 0; i < n / SLM_QK; i++) {
                uint8x16_t b = vld1q_u8(w[i].qs);
                /* low nibbles are elements 0-15, high nibbles 16-31 */
                int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, m4)), eight);
                int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), eight);
                acc = fma_q8_block(acc, lo, hi, h2f(w[i].d), &x[i]);
        }
        return vaddvq_f32(acc);
}

/* Σ q·y over 32 values, q and y as pairs of vectors. */
static inline int32_t dot32(int8x16_t q0, int8x16_t q1, const int8_t *y)
{
        return vaddvq_s32(dot16(dot16(vdupq_n_s32(0), q0, vld1q_s8(y)), q1, vld1q_s8(y + 16)));
}

/*
 * Q4_K and Q5_K (which adds a fifth bit per weight in qh): the block
 * header (d, dmin, scales) is laid out alike, qs and qh are found per type.
 */
static inline float dot_q45_k(int64_t n, const uint8_t *w, size_t block_bytes, size_t qs_offset,
                              ptrdiff_t qh_offset, const SlmBlockQ8_K *x)
{
        const uint8x16_t m4 = vdupq_n_u8(0x0f), one = vdupq_n_u8(1);
        float sum = 0.0f;

        for (int64_t i = 0; i < n / SLM_QK_K; i++, w += block_bytes) {
                const SlmBlockQ4_K *b = (const SlmBlockQ4_K *)w;
                const uint8_t *qs = w + qs_offset;
                uint8x16_t qh[2] = { vdupq_n_u8(0), vdupq_n_u8(0) };
                int32_t isum = 0, msum = 0;
                uint8_t sc[8], m[8];

                if (qh_offset >= 0) {
                        qh[0] = vld1q_u8(w + qh_offset);
                        qh[1] = vld1q_u8(w + qh_offset + 16);
                }
                slm_k_scales(b->scales, sc, m);
                for (int j = 0; j < 8; j++)
                        msum += m[j] * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
                for (int j = 0; j < 4; j++) {
                        int8x16_t lo[2], hi[2];
                        for (int h = 0; h < 2; h++) {
                                uint8x16_t q = vld1q_u8(qs + 32 * j + 16 * h);
                                uint8x16_t l = vandq_u8(q, m4), u = vshrq_n_u8(q, 4);
                                if (qh_offset >= 0) {
                                        /* bit 2j of each qh byte: lo's fifth bit; 2j+1: hi's */
                                        int8x16_t r0 = vdupq_n_s8((int8_t)(-2 * j));
                                        int8x16_t r1 = vdupq_n_s8((int8_t)(-2 * j - 1));
                                        uint8x16_t h0 = vandq_u8(vshlq_u8(qh[h], r0), one);
                                        uint8x16_t h1 = vandq_u8(vshlq_u8(qh[h], r1), one);
                                        l = vorrq_u8(l, vshlq_n_u8(h0, 4));
                                        u = vorrq_u8(u, vshlq_n_u8(h1, 4));
                                }
                                lo[h] = vreinterpretq_s8_u8(l);
                                hi[h] = vreinterpretq_s8_u8(u);
                        }
                        isum += sc[2 * j] * dot32(lo[0], lo[1], x[i].qs + 64 * j);
                        isum += sc[2 * j + 1] * dot32(hi[0], hi[1], x[i].qs + 64 * j + 32);
                }
                sum += h2f(b->d) * x[i].d * (float)isum - h2f(b->dmin) * x[i].d * (float)msum;
        }
        return sum;
}

static float NEON_FN(dot_q4_k)(int64_t n, const void *w, const void *x)
{
        return dot_q45_k(n, w, sizeof(SlmBlockQ4_K), offsetof(SlmBlockQ4_K, qs), -1, x);
}

static float NEON_FN(dot_q5_k)(int64_t n, const void *w, const void *x)
{
        return dot_q45_k(n, w, sizeof(SlmBlockQ5_K), offsetof(SlmBlockQ5_K, qs),
                         offsetof(SlmBlockQ5_K, qh), x);
}

/* Σ q·y over 16 values. */
static inline int32_t dot16s(int8x16_t q, const int8_t *y)
{
        return vaddvq_s32(dot16(vdupq_n_s32(0), q, vld1q_s8(y)));
}

static float NEON_FN(dot_q6_k)(int64_t n, const void *wv, const void *xv)
{
        const SlmBlockQ6_K *w = wv;
        const SlmBlockQ8_K *x = xv;
        const uint8x16_t m4 = vdupq_n_u8(0x0f), m3 = vdupq_n_u8(3);
        float sum = 0.0f;

        for (int64_t i = 0; i < n / SLM_QK_K; i++) {
                const uint8_t *ql = w[i].ql, *qh = w[i].qh;
                const int8_t *sc = w[i].scales;
                const int8_t *y = x[i].qs;
                int32_t isum = 0, bias = 0;

                /* q - 32: the -32 part through the block sums of y */
                for (int j = 0; j < SLM_QK_K / 16; j++)
                        bias += sc[j] * x[i].bsums[j];
                for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128) {
                        /* 16 values at a time: element e of the 128 is at ql/qh index e % 32 */
                        for (int h = 0; h < 2; h++) {
                                uint8x16_t l0 = vld1q_u8(ql + 16 * h);
                                uint8x16_t l1 = vld1q_u8(ql + 32 + 16 * h);
                                uint8x16_t hb = vld1q_u8(qh + 16 * h);
                                uint8x16_t q[4] = {
                                        vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4)),
                                        vorrq_u8(vandq_u8(l1, m4),
                                                 vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4)),
                                        vorrq_u8(vshrq_n_u8(l0, 4),
                                                 vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4)),
                                        vorrq_u8(vshrq_n_u8(l1, 4),
                                                 vshlq_n_u8(vshrq_n_u8(hb, 6), 4)),
                                };
                                for (int k = 0; k < 4; k++)
                                        isum += sc[2 * k + h] * dot16s(vreinterpretq_s8_u8(q[k]),
                                                                       y + 32 * k + 16 * h);
                        }
                }
                sum += h2f(w[i].d) * x[i].d * (float)(isum - 32 * bias);
        }
        return sum;
}

/* ---- weighted sums of KV cache rows ------------------------------------------------------- */

/* float sums only: the dot-product variant has none of its own */
#ifndef SLM_NEON_DOTPROD

static inline void row_sum_float(int64_t n, int n_rows, const float *w, const void *rows,
                                 size_t stride, float *out, bool half)
{
        int64_t i = 0;

        for (; i + 16 <= n; i += 16) {
                float32x4_t acc[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                                       vdupq_n_f32(0.0f) };
                for (int j = 0; j < n_rows; j++) {
                        const void *row = (const uint8_t *)rows + (size_t)j * stride;
                        float32x4x2_t a = load8(row, i, half), b = load8(row, i + 8, half);
                        acc[0] = vfmaq_n_f32(acc[0], a.val[0], w[j]);
                        acc[1] = vfmaq_n_f32(acc[1], a.val[1], w[j]);
                        acc[2] = vfmaq_n_f32(acc[2], b.val[0], w[j]);
                        acc[3] = vfmaq_n_f32(acc[3], b.val[1], w[j]);
                }
                for (int k = 0; k < 4; k++)
                        vst1q_f32(out + i + 4 * k, acc[k]);
        }
        for (; i < n; i++) {
                float acc = 0.0f;
                for (int j = 0; j < n_rows; j++) {
                        const void *row = (const uint8_t *)rows + (size_t)j * stride;
                        acc += w[j] *
                               (half ? h2f(((const slm_fp16 *)row)[i]) : ((const float *)row)[i]);
                }
                out[i] = acc;
        }
}

/* dst = src in half precision: FPCR's default rounding, to nearest even. */
static void NEON_FN(to_f16)(int64_t n, const float *src, slm_fp16 *dst)
{
        int64_t i = 0;

        for (; i + 8 <= n; i += 8) {
                float16x8_t h = vcombine_f16(vcvt_f16_f32(vld1q_f32(src + i)),
                                             vcvt_f16_f32(vld1q_f32(src + i + 4)));
                vst1q_f16((__fp16 *)(dst + i), h);
        }
        for (; i < n; i++)
                dst[i] = slm_fp32_to_fp16(src[i]);
}

static void NEON_FN(row_sum_f32)(int64_t n, int n_rows, const float *w, const void *rows,
                                 size_t stride, float *out)
{
        row_sum_float(n, n_rows, w, rows, stride, out, false);
}

static void NEON_FN(row_sum_f16)(int64_t n, int n_rows, const float *w, const void *rows,
                                 size_t stride, float *out)
{
        row_sum_float(n, n_rows, w, rows, stride, out, true);
}

static void NEON_FN(row_sum_q8_0)(int64_t n, int n_rows, const float *w, const void *rows,
                                  size_t stride, float *out)
{
        for (int64_t b = 0; b < n / SLM_QK; b++) {
                float32x4_t acc[8];
                for (int k = 0; k < 8; k++)
                        acc[k] = vdupq_n_f32(0.0f);
                for (int j = 0; j < n_rows; j++) {
                        const SlmBlockQ8_0 *blk =
                            (const SlmBlockQ8_0 *)((const uint8_t *)rows + (size_t)j * stride) + b;
                        float d = w[j] * h2f(blk->d);
                        for (int h = 0; h < 2; h++) {
                                int8x16_t q = vld1q_s8(blk->qs + 16 * h);
                                int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
                                acc[4 * h] = vfmaq_n_f32(
                                    acc[4 * h], vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d);
                                acc[4 * h + 1] = vfmaq_n_f32(acc[4 * h + 1],
                                                             vcvtq_f32_s32(vmovl_high_s16(lo)), d);
                                acc[4 * h + 2] = vfmaq_n_f32(
                                    acc[4 * h + 2], vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d);
                                acc[4 * h + 3] = vfmaq_n_f32(acc[4 * h + 3],
                                                             vcvtq_f32_s32(vmovl_high_s16(hi)), d);
                        }
                }
                for (int k = 0; k < 8; k++)
                        vst1q_f32(out + b * SLM_QK + 4 * k, acc[k]);
        }
}

#endif

/* ---- the tables ---------------------------------------------------------------------------- */

static SlmVecDotFn NEON_FN(vec_dot)(SlmType type)
{
        switch (type) {
        case SLM_TYPE_F32:
                return NEON_FN(dot_f32);
        case SLM_TYPE_F16:
                return NEON_FN(dot_f16);
        case SLM_TYPE_Q4_0:
                return NEON_FN(dot_q4_0);
        case SLM_TYPE_Q8_0:
                return NEON_FN(dot_q8_0);
        case SLM_TYPE_Q4_K:
                return NEON_FN(dot_q4_k);
        case SLM_TYPE_Q5_K:
                return NEON_FN(dot_q5_k);
        case SLM_TYPE_Q6_K:
                return NEON_FN(dot_q6_k);
        default:
                return NULL;
        }
}

#ifndef SLM_NEON_DOTPROD
static SlmRowSumFn NEON_FN(row_sum)(SlmType type)
{
        switch (type) {
        case SLM_TYPE_F32:
                return NEON_FN(row_sum_f32);
        case SLM_TYPE_F16:
                return NEON_FN(row_sum_f16);
        case SLM_TYPE_Q8_0:
                return NEON_FN(row_sum_q8_0);
        default:
                return NULL;
        }
}
#endif
