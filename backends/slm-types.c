/* SPDX-License-Identifier: MIT */
#include "slm-types.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* ---- type table ---------------------------------------------------------------------------- */

static const SlmTypeTraits type_traits[SLM_TYPE_COUNT] = {
        [SLM_TYPE_F32] = { "F32", 1, 4, true, SLM_TYPE_F32 },
        [SLM_TYPE_F16] = { "F16", 1, 2, true, SLM_TYPE_F16 },
        [SLM_TYPE_BF16] = { "BF16", 1, 2, true, SLM_TYPE_BF16 },
        [SLM_TYPE_Q4_0] = { "Q4_0", SLM_QK, sizeof(SlmBlockQ4_0), true, SLM_TYPE_Q8_0 },
        [SLM_TYPE_Q4_1] = { "Q4_1", SLM_QK, sizeof(SlmBlockQ4_1), true, SLM_TYPE_Q8_1 },
        [SLM_TYPE_Q5_0] = { "Q5_0", SLM_QK, sizeof(SlmBlockQ5_0), true, SLM_TYPE_Q8_0 },
        [SLM_TYPE_Q5_1] = { "Q5_1", SLM_QK, sizeof(SlmBlockQ5_1), true, SLM_TYPE_Q8_1 },
        [SLM_TYPE_Q8_0] = { "Q8_0", SLM_QK, sizeof(SlmBlockQ8_0), true, SLM_TYPE_Q8_0 },
        [SLM_TYPE_Q8_1] = { "Q8_1", SLM_QK, sizeof(SlmBlockQ8_1), false, SLM_TYPE_Q8_1 },
        [SLM_TYPE_Q4_K] = { "Q4_K", SLM_QK_K, sizeof(SlmBlockQ4_K), true, SLM_TYPE_Q8_K },
        [SLM_TYPE_Q5_K] = { "Q5_K", SLM_QK_K, sizeof(SlmBlockQ5_K), true, SLM_TYPE_Q8_K },
        [SLM_TYPE_Q6_K] = { "Q6_K", SLM_QK_K, sizeof(SlmBlockQ6_K), true, SLM_TYPE_Q8_K },
        [SLM_TYPE_Q8_K] = { "Q8_K", SLM_QK_K, sizeof(SlmBlockQ8_K), false, SLM_TYPE_Q8_K },
};

const SlmTypeTraits *slm_type_traits(uint32_t type)
{
        if (type >= SLM_TYPE_COUNT || !type_traits[type].name)
                return NULL;
        return &type_traits[type];
}

const char *slm_type_name(uint32_t type)
{
        const SlmTypeTraits *t = slm_type_traits(type);
        return t ? t->name : "unknown";
}

int slm_type_row_bytes(uint32_t type, uint64_t n, uint64_t *ret_bytes)
{
        const SlmTypeTraits *t = slm_type_traits(type);
        uint64_t bytes;

        if (!t || n % t->block_size)
                return -EINVAL;
        if (__builtin_mul_overflow(n / t->block_size, (uint64_t)t->block_bytes, &bytes))
                return -EOVERFLOW;
        *ret_bytes = bytes;
        return 0;
}

/* ---- half and bfloat16 --------------------------------------------------------------------- */

static inline uint32_t f32_bits(float f)
{
        uint32_t u;
        memcpy(&u, &f, 4);
        return u;
}

static inline float bits_f32(uint32_t u)
{
        float f;
        memcpy(&f, &u, 4);
        return f;
}

float slm_fp16_to_fp32(slm_fp16 h)
{
        uint32_t sign = (uint32_t)(h & 0x8000) << 16;
        uint32_t e = (h >> 10) & 0x1f;
        uint32_t m = h & 0x3ff;

        if (e == 0) {
                float v = (float)m * 0x1p-24f; /* zero or subnormal */
                return sign ? -v : v;
        }
        if (e == 31)
                return bits_f32(sign | 0x7f800000 | (m << 13));
        return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

slm_fp16 slm_fp32_to_fp16(float f)
{
        uint32_t x = f32_bits(f);
        uint32_t sign = (x >> 16) & 0x8000;
        uint32_t a = x & 0x7fffffff;
        uint32_t r, rem;

        if (a > 0x7f800000)
                return (slm_fp16)(sign | 0x7e00); /* NaN */
        if (a >= 0x477ff000)
                return (slm_fp16)(sign | 0x7c00); /* rounds past 65504: infinity */
        if (a < 0x38800000) {
                /* below the smallest normal half: a subnormal in units of 2^-24 */
                uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000, shift, half;

                if (a < 0x33000000)
                        return (slm_fp16)sign; /* <= 2^-25 rounds to zero */
                shift = 126 - e;
                r = m >> shift;
                rem = m & ((1u << shift) - 1);
                half = 1u << (shift - 1);
                if (rem > half || (rem == half && (r & 1)))
                        r++;
                return (slm_fp16)(sign | r);
        }
        r = (a - 0x38000000) >> 13;
        rem = a & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
                r++; /* a carry into the exponent is the right answer */
        return (slm_fp16)(sign | r);
}

float slm_bf16_to_fp32(slm_bf16 h)
{
        return bits_f32((uint32_t)h << 16);
}

slm_bf16 slm_fp32_to_bf16(float f)
{
        uint32_t x = f32_bits(f);

        if ((x & 0x7fffffff) > 0x7f800000)
                return (slm_bf16)((x >> 16) | 64); /* quiet NaN */
        return (slm_bf16)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* ---- unpacking: one place that knows each block's bit layout ------------------------------ */

#define H2F(h) slm_fp16_to_fp32(h)

static inline uint32_t load_u32(const uint8_t *p)
{
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
}

/* 32-wide types: q[32] as signed integers, x = d * q (+ m for Q4_1/Q5_1). */
static void unpack_q4_0(const SlmBlockQ4_0 *b, int8_t *q)
{
        for (int j = 0; j < SLM_QK / 2; j++) {
                q[j] = (int8_t)((b->qs[j] & 0xf) - 8);
                q[j + SLM_QK / 2] = (int8_t)((b->qs[j] >> 4) - 8);
        }
}

static void unpack_q4_1(const SlmBlockQ4_1 *b, int8_t *q)
{
        for (int j = 0; j < SLM_QK / 2; j++) {
                q[j] = (int8_t)(b->qs[j] & 0xf);
                q[j + SLM_QK / 2] = (int8_t)(b->qs[j] >> 4);
        }
}

static void unpack_q5(const uint8_t *qs, const uint8_t *qhb, int offset, int8_t *q)
{
        uint32_t qh = load_u32(qhb);
        for (int j = 0; j < SLM_QK / 2; j++) {
                int h0 = ((qh >> j) << 4) & 0x10;
                int h1 = (qh >> (j + 12)) & 0x10;
                q[j] = (int8_t)(((qs[j] & 0xf) | h0) - offset);
                q[j + SLM_QK / 2] = (int8_t)(((qs[j] >> 4) | h1) - offset);
        }
}

/* Any 32-wide block: q[32] and its scale d and offset m (0 for the symmetric types). */
static void unpack_32(SlmType type, const uint8_t *blk, int8_t *q, float *ret_d, float *ret_m)
{
        *ret_m = 0.0f;
        switch (type) {
        case SLM_TYPE_Q4_0: {
                const SlmBlockQ4_0 *b = (const void *)blk;
                unpack_q4_0(b, q);
                *ret_d = H2F(b->d);
                break;
        }
        case SLM_TYPE_Q4_1: {
                const SlmBlockQ4_1 *b = (const void *)blk;
                unpack_q4_1(b, q);
                *ret_d = H2F(b->d);
                *ret_m = H2F(b->m);
                break;
        }
        case SLM_TYPE_Q5_0: {
                const SlmBlockQ5_0 *b = (const void *)blk;
                unpack_q5(b->qs, b->qh, 16, q);
                *ret_d = H2F(b->d);
                break;
        }
        case SLM_TYPE_Q5_1: {
                const SlmBlockQ5_1 *b = (const void *)blk;
                unpack_q5(b->qs, b->qh, 0, q);
                *ret_d = H2F(b->d);
                *ret_m = H2F(b->m);
                break;
        }
        default: {
                const SlmBlockQ8_0 *b = (const void *)blk;
                memcpy(q, b->qs, SLM_QK);
                *ret_d = H2F(b->d);
                break;
        }
        }
}

void slm_k_scales(const uint8_t *q, uint8_t *sc, uint8_t *m)
{
        for (int j = 0; j < 4; j++) {
                sc[j] = q[j] & 63;
                m[j] = q[j + 4] & 63;
                sc[j + 4] = (q[j + 8] & 0xf) | ((q[j] >> 6) << 4);
                m[j + 4] = (q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4);
        }
}

/* Q4_K / Q5_K: q[256] unsigned, 8 sub-blocks of 32 with scale sc and min m. */
static void unpack_q4_k(const SlmBlockQ4_K *b, uint8_t *q, uint8_t *sc, uint8_t *m)
{
        const uint8_t *qs = b->qs;
        for (int j = 0; j < SLM_QK_K / 64; j++, qs += 32) {
                for (int l = 0; l < 32; l++) {
                        q[64 * j + l] = qs[l] & 0xf;
                        q[64 * j + 32 + l] = qs[l] >> 4;
                }
        }
        slm_k_scales(b->scales, sc, m);
}

static void unpack_q5_k(const SlmBlockQ5_K *b, uint8_t *q, uint8_t *sc, uint8_t *m)
{
        const uint8_t *qs = b->qs;
        for (int j = 0; j < SLM_QK_K / 64; j++, qs += 32) {
                uint8_t u1 = (uint8_t)(1u << (2 * j)), u2 = (uint8_t)(2u << (2 * j));
                for (int l = 0; l < 32; l++) {
                        q[64 * j + l] = (qs[l] & 0xf) + (b->qh[l] & u1 ? 16 : 0);
                        q[64 * j + 32 + l] = (qs[l] >> 4) + (b->qh[l] & u2 ? 16 : 0);
                }
        }
        slm_k_scales(b->scales, sc, m);
}

/* Q6_K: q[256] signed in [-32, 31]; sub-block of 16 weights i has scale scales[i]. */
static void unpack_q6_k(const SlmBlockQ6_K *b, int8_t *q)
{
        const uint8_t *ql = b->ql, *qh = b->qh;
        for (int n = 0; n < SLM_QK_K; n += 128, ql += 64, qh += 32) {
                for (int l = 0; l < 32; l++) {
                        q[n + l] = (int8_t)(((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32);
                        q[n + l + 32] =
                            (int8_t)(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32);
                        q[n + l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                        q[n + l + 96] =
                            (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
        }
}

/* ---- dequantization ------------------------------------------------------------------------ */

/* Blocks of 32 with x = d * q + m (m = 0 for the symmetric types). */
static void dequant_32(SlmType type, const uint8_t *src, float *y, int64_t nb)
{
        size_t bs = slm_type_traits(type)->block_bytes;
        int8_t q[SLM_QK];

        for (int64_t i = 0; i < nb; i++, src += bs, y += SLM_QK) {
                float d, m;
                unpack_32(type, src, q, &d, &m);
                if (m != 0.0f)
                        for (int j = 0; j < SLM_QK; j++)
                                y[j] = d * q[j] + m;
                else
                        for (int j = 0; j < SLM_QK; j++)
                                y[j] = d * q[j];
        }
}

static void dequant_q45_k(SlmType type, const uint8_t *src, float *y, int64_t nb)
{
        size_t bs = slm_type_traits(type)->block_bytes;
        uint8_t q[SLM_QK_K], sc[8], m[8];

        for (int64_t i = 0; i < nb; i++, src += bs, y += SLM_QK_K) {
                /* Q4_K and Q5_K share the d, dmin, scales prefix */
                const SlmBlockQ4_K *b = (const void *)src;
                float d = H2F(b->d), dmin = H2F(b->dmin);
                if (type == SLM_TYPE_Q4_K)
                        unpack_q4_k(b, q, sc, m);
                else
                        unpack_q5_k((const SlmBlockQ5_K *)src, q, sc, m);
                for (int j = 0; j < 8; j++) {
                        float dj = d * sc[j], mj = dmin * m[j];
                        for (int l = 0; l < 32; l++)
                                y[32 * j + l] = dj * q[32 * j + l] - mj;
                }
        }
}

static void dequant_q6_k(const SlmBlockQ6_K *b, float *y, int64_t nb)
{
        int8_t q[SLM_QK_K];

        for (int64_t i = 0; i < nb; i++, y += SLM_QK_K) {
                float d = H2F(b[i].d);
                unpack_q6_k(&b[i], q);
                for (int l = 0; l < SLM_QK_K; l++)
                        y[l] = d * b[i].scales[l / 16] * q[l];
        }
}

void slm_dequantize_row(SlmType type, const void *src, float *dst, int64_t n)
{
        switch (type) {
        case SLM_TYPE_F32:
                memcpy(dst, src, (size_t)n * sizeof(float));
                break;
        case SLM_TYPE_F16:
                for (int64_t i = 0; i < n; i++) {
                        slm_fp16 h;
                        memcpy(&h, (const uint8_t *)src + 2 * i, 2);
                        dst[i] = slm_fp16_to_fp32(h);
                }
                break;
        case SLM_TYPE_BF16:
                for (int64_t i = 0; i < n; i++) {
                        slm_bf16 h;
                        memcpy(&h, (const uint8_t *)src + 2 * i, 2);
                        dst[i] = slm_bf16_to_fp32(h);
                }
                break;
        case SLM_TYPE_Q4_0:
        case SLM_TYPE_Q4_1:
        case SLM_TYPE_Q5_0:
        case SLM_TYPE_Q5_1:
        case SLM_TYPE_Q8_0:
                dequant_32(type, src, dst, n / SLM_QK);
                break;
        case SLM_TYPE_Q4_K:
        case SLM_TYPE_Q5_K:
                dequant_q45_k(type, src, dst, n / SLM_QK_K);
                break;
        case SLM_TYPE_Q6_K:
                dequant_q6_k(src, dst, n / SLM_QK_K);
                break;
        case SLM_TYPE_Q8_1:
        case SLM_TYPE_Q8_K:
        default:
                /* activation-only types are never stored as weights */
                memset(dst, 0, (size_t)n * sizeof(float));
                break;
        }
}

/* ---- activation quantization --------------------------------------------------------------- */

/*
 * Round half to even, as the vector units do in their default mode. Values
 * from a corrupt model can be NaN or huge: those become 0 or saturate, so
 * the conversion to int is always defined.
 */
static inline int round_even(float v)
{
        if (!(v > -128.0f))
                return v <= -128.0f ? -128 : 0; /* -inf..-128, or NaN */
        if (v > 127.0f)
                return 127;
        return (int)nearbyintf(v);
}

static void quant_q8_0(const float *x, SlmBlockQ8_0 *y, int64_t nb)
{
        for (int64_t i = 0; i < nb; i++, x += SLM_QK) {
                float amax = 0.0f;
                for (int j = 0; j < SLM_QK; j++)
                        amax = fmaxf(amax, fabsf(x[j]));
                float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
                y[i].d = slm_fp32_to_fp16(d);
                for (int j = 0; j < SLM_QK; j++)
                        y[i].qs[j] = (int8_t)round_even(x[j] * id);
        }
}

static void quant_q8_1(const float *x, SlmBlockQ8_1 *y, int64_t nb)
{
        for (int64_t i = 0; i < nb; i++, x += SLM_QK) {
                float amax = 0.0f;
                int sum = 0;
                for (int j = 0; j < SLM_QK; j++)
                        amax = fmaxf(amax, fabsf(x[j]));
                float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
                y[i].d = slm_fp32_to_fp16(d);
                for (int j = 0; j < SLM_QK; j++) {
                        y[i].qs[j] = (int8_t)round_even(x[j] * id);
                        sum += y[i].qs[j];
                }
                y[i].s = slm_fp32_to_fp16(d * (float)sum);
        }
}

static void quant_q8_k(const float *x, SlmBlockQ8_K *y, int64_t nb)
{
        for (int64_t i = 0; i < nb; i++, x += SLM_QK_K) {
                float amax = 0.0f, max = 0.0f;
                for (int j = 0; j < SLM_QK_K; j++) {
                        float ax = fabsf(x[j]);
                        if (ax > amax) {
                                amax = ax;
                                max = x[j];
                        }
                }
                if (amax == 0.0f) {
                        memset(&y[i], 0, sizeof(y[i]));
                        continue;
                }
                /* -127 / max keeps the largest value at -127, never -128 */
                float iscale = -127.0f / max;
                for (int j = 0; j < SLM_QK_K; j++) {
                        int v = round_even(iscale * x[j]);
                        y[i].qs[j] = (int8_t)(v > 127 ? 127 : v);
                }
                for (int j = 0; j < SLM_QK_K / 16; j++) {
                        int s = 0;
                        for (int l = 0; l < 16; l++)
                                s += y[i].qs[j * 16 + l];
                        y[i].bsums[j] = (int16_t)s;
                }
                y[i].d = 1.0f / iscale;
        }
}

void slm_quantize_row(SlmType type, const float *src, void *dst, int64_t n)
{
        switch (type) {
        case SLM_TYPE_F32:
                memcpy(dst, src, (size_t)n * sizeof(float));
                break;
        case SLM_TYPE_F16:
                for (int64_t i = 0; i < n; i++)
                        ((slm_fp16 *)dst)[i] = slm_fp32_to_fp16(src[i]);
                break;
        case SLM_TYPE_BF16:
                for (int64_t i = 0; i < n; i++)
                        ((slm_bf16 *)dst)[i] = slm_fp32_to_bf16(src[i]);
                break;
        case SLM_TYPE_Q8_0:
                quant_q8_0(src, dst, n / SLM_QK);
                break;
        case SLM_TYPE_Q8_1:
                quant_q8_1(src, dst, n / SLM_QK);
                break;
        case SLM_TYPE_Q8_K:
                quant_q8_k(src, dst, n / SLM_QK_K);
                break;
        default:
                break;
        }
}

/* ---- reference dot products ---------------------------------------------------------------- */

static float dot_32(SlmType type, const uint8_t *w, const uint8_t *x, int64_t nb)
{
        size_t bs = slm_type_traits(type)->block_bytes;
        int8_t q[SLM_QK];
        float sum = 0.0f;

        for (int64_t i = 0; i < nb; i++, w += bs) {
                float dw, mw;
                unpack_32(type, w, q, &dw, &mw);
                if (type == SLM_TYPE_Q4_1 || type == SLM_TYPE_Q5_1) {
                        /* asymmetric: activations carry s = d * sum(q) for the min term */
                        const SlmBlockQ8_1 *y = (const SlmBlockQ8_1 *)x + i;
                        int sumi = 0;
                        for (int j = 0; j < SLM_QK; j++)
                                sumi += q[j] * y->qs[j];
                        sum += dw * H2F(y->d) * (float)sumi + mw * H2F(y->s);
                } else {
                        const SlmBlockQ8_0 *y = (const SlmBlockQ8_0 *)x + i;
                        int sumi = 0;
                        for (int j = 0; j < SLM_QK; j++)
                                sumi += q[j] * y->qs[j];
                        sum += (float)sumi * (dw * H2F(y->d));
                }
        }
        return sum;
}

static float dot_q45_k(SlmType type, const uint8_t *w, const SlmBlockQ8_K *y, int64_t nb)
{
        size_t bs = slm_type_traits(type)->block_bytes;
        uint8_t q[SLM_QK_K], sc[8], m[8];
        float sum = 0.0f;

        for (int64_t i = 0; i < nb; i++, w += bs) {
                const SlmBlockQ4_K *b = (const void *)w;
                int32_t isum = 0, msum = 0;
                if (type == SLM_TYPE_Q4_K)
                        unpack_q4_k(b, q, sc, m);
                else
                        unpack_q5_k((const SlmBlockQ5_K *)w, q, sc, m);
                for (int j = 0; j < 8; j++) {
                        int32_t s = 0;
                        for (int l = 0; l < 32; l++)
                                s += q[32 * j + l] * y[i].qs[32 * j + l];
                        isum += sc[j] * s;
                        msum += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
                }
                sum += H2F(b->d) * y[i].d * (float)isum - H2F(b->dmin) * y[i].d * (float)msum;
        }
        return sum;
}

static float dot_q6_k(const SlmBlockQ6_K *b, const SlmBlockQ8_K *y, int64_t nb)
{
        int8_t q[SLM_QK_K];
        float sum = 0.0f;

        for (int64_t i = 0; i < nb; i++) {
                int32_t isum = 0;
                unpack_q6_k(&b[i], q);
                for (int j = 0; j < SLM_QK_K / 16; j++) {
                        int32_t s = 0;
                        for (int l = 0; l < 16; l++)
                                s += q[16 * j + l] * y[i].qs[16 * j + l];
                        isum += b[i].scales[j] * s;
                }
                sum += H2F(b[i].d) * y[i].d * (float)isum;
        }
        return sum;
}

float slm_vec_dot_ref(SlmType type, int64_t n, const void *w, const void *x)
{
        float sum = 0.0f;

        switch (type) {
        case SLM_TYPE_F32:
                for (int64_t i = 0; i < n; i++)
                        sum += ((const float *)w)[i] * ((const float *)x)[i];
                return sum;
        case SLM_TYPE_F16:
        case SLM_TYPE_BF16:
                for (int64_t i = 0; i < n; i++) {
                        uint16_t a, b;
                        memcpy(&a, (const uint8_t *)w + 2 * i, 2);
                        memcpy(&b, (const uint8_t *)x + 2 * i, 2);
                        if (type == SLM_TYPE_F16)
                                sum += H2F(a) * H2F(b);
                        else
                                sum += slm_bf16_to_fp32(a) * slm_bf16_to_fp32(b);
                }
                return sum;
        case SLM_TYPE_Q4_0:
        case SLM_TYPE_Q4_1:
        case SLM_TYPE_Q5_0:
        case SLM_TYPE_Q5_1:
        case SLM_TYPE_Q8_0:
                return dot_32(type, w, x, n / SLM_QK);
        case SLM_TYPE_Q4_K:
        case SLM_TYPE_Q5_K:
                return dot_q45_k(type, w, x, n / SLM_QK_K);
        case SLM_TYPE_Q6_K:
                return dot_q6_k(w, x, n / SLM_QK_K);
        default:
                return 0.0f;
        }
}

/* ---- weight quantization ------------------------------------------------------------------- */

static int clampi(int v, int lo, int hi)
{
        return v < lo ? lo : v > hi ? hi : v;
}

static void quant_w_q4_0(const float *x, SlmBlockQ4_0 *y, int64_t nb)
{
        for (int64_t i = 0; i < nb; i++, x += SLM_QK) {
                float amax = 0.0f, max = 0.0f;
                for (int j = 0; j < SLM_QK; j++)
                        if (fabsf(x[j]) > amax) {
                                amax = fabsf(x[j]);
                                max = x[j];
                        }
                /* the largest value maps to -8, the end with one more level */
                float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
                y[i].d = slm_fp32_to_fp16(d);
                for (int j = 0; j < SLM_QK / 2; j++) {
                        int a = clampi((int)(x[j] * id + 8.5f), 0, 15);
                        int b = clampi((int)(x[j + SLM_QK / 2] * id + 8.5f), 0, 15);
                        y[i].qs[j] = (uint8_t)(a | (b << 4));
                }
        }
}

/*
 * Q4_K and Q5_K: each sub-block of 32 gets a scale and a min from its range;
 * those are stored in 6 bits against the block's d and dmin.
 */
static void quant_w_qk(const float *x, uint8_t *blk, int64_t nb, int levels, bool five)
{
        for (int64_t i = 0; i < nb; i++, x += SLM_QK_K) {
                SlmBlockQ4_K *b4 = (SlmBlockQ4_K *)blk;
                SlmBlockQ5_K *b5 = (SlmBlockQ5_K *)blk;
                float scale[8], min[8], max_scale = 0.0f, max_min = 0.0f;
                uint8_t sc[8], m[8], q[SLM_QK_K];
                uint8_t *packed = five ? b5->scales : b4->scales;
                uint8_t *qs = five ? b5->qs : b4->qs;

                for (int j = 0; j < 8; j++) {
                        float lo = 0.0f, hi = 0.0f;
                        for (int l = 0; l < 32; l++) {
                                lo = fminf(lo, x[32 * j + l]);
                                hi = fmaxf(hi, x[32 * j + l]);
                        }
                        scale[j] = (hi - lo) / (float)levels;
                        min[j] = -lo;
                        max_scale = fmaxf(max_scale, scale[j]);
                        max_min = fmaxf(max_min, min[j]);
                }
                float d = max_scale / 63.0f, dmin = max_min / 63.0f;
                for (int j = 0; j < 8; j++) {
                        sc[j] = (uint8_t)clampi(d > 0 ? (int)nearbyintf(scale[j] / d) : 0, 0, 63);
                        m[j] =
                            (uint8_t)clampi(dmin > 0 ? (int)nearbyintf(min[j] / dmin) : 0, 0, 63);
                        float ds = d * sc[j], dm = dmin * m[j];
                        for (int l = 0; l < 32; l++)
                                q[32 * j + l] = (uint8_t)clampi(
                                    ds > 0 ? (int)nearbyintf((x[32 * j + l] + dm) / ds) : 0, 0,
                                    levels);
                }
                memset(blk, 0, slm_type_traits(five ? SLM_TYPE_Q5_K : SLM_TYPE_Q4_K)->block_bytes);
                b4->d = slm_fp32_to_fp16(d); /* d and dmin lead both layouts */
                b4->dmin = slm_fp32_to_fp16(dmin);
                for (int j = 0; j < 4; j++) {
                        packed[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
                        packed[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
                        packed[j + 8] = (uint8_t)((sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4));
                }
                for (int j = 0; j < 4; j++)
                        for (int l = 0; l < 32; l++) {
                                uint8_t a = q[64 * j + l], c = q[64 * j + 32 + l];
                                qs[32 * j + l] = (uint8_t)((a & 0xf) | ((c & 0xf) << 4));
                                if (five) {
                                        b5->qh[l] |= (uint8_t)(((a >> 4) & 1) << (2 * j));
                                        b5->qh[l] |= (uint8_t)(((c >> 4) & 1) << (2 * j + 1));
                                }
                        }
                blk += slm_type_traits(five ? SLM_TYPE_Q5_K : SLM_TYPE_Q4_K)->block_bytes;
        }
}

static void quant_w_q6_k(const float *x, SlmBlockQ6_K *y, int64_t nb)
{
        for (int64_t i = 0; i < nb; i++, x += SLM_QK_K) {
                float scale[16], max_scale = 0.0f;
                uint8_t q[SLM_QK_K];

                for (int j = 0; j < 16; j++) {
                        float amax = 0.0f;
                        for (int l = 0; l < 16; l++)
                                amax = fmaxf(amax, fabsf(x[16 * j + l]));
                        scale[j] = amax / 31.0f;
                        max_scale = fmaxf(max_scale, scale[j]);
                }
                float d = max_scale / 127.0f;
                memset(&y[i], 0, sizeof(y[i]));
                y[i].d = slm_fp32_to_fp16(d);
                for (int j = 0; j < 16; j++) {
                        int s = clampi(d > 0 ? (int)nearbyintf(scale[j] / d) : 0, 0, 127);
                        float ds = d * (float)s;
                        y[i].scales[j] = (int8_t)s;
                        for (int l = 0; l < 16; l++)
                                q[16 * j + l] =
                                    (uint8_t)(clampi(ds > 0 ? (int)nearbyintf(x[16 * j + l] / ds)
                                                            : 0,
                                                     -32, 31) +
                                              32);
                }
                uint8_t *ql = y[i].ql, *qh = y[i].qh;
                for (int n = 0; n < SLM_QK_K; n += 128, ql += 64, qh += 32)
                        for (int l = 0; l < 32; l++) {
                                uint8_t q1 = q[n + l], q2 = q[n + l + 32], q3 = q[n + l + 64],
                                        q4 = q[n + l + 96];
                                ql[l] = (uint8_t)((q1 & 0xf) | ((q3 & 0xf) << 4));
                                ql[l + 32] = (uint8_t)((q2 & 0xf) | ((q4 & 0xf) << 4));
                                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) |
                                                  ((q4 >> 4) << 6));
                        }
        }
}

int slm_quantize_weights_row(SlmType type, const float *src, void *dst, int64_t n)
{
        const SlmTypeTraits *t = slm_type_traits(type);

        if (!t || !t->weight_type || n % t->block_size)
                return -EINVAL;
        switch (type) {
        case SLM_TYPE_F32:
        case SLM_TYPE_F16:
        case SLM_TYPE_BF16:
        case SLM_TYPE_Q8_0:
                slm_quantize_row(type, src, dst, n); /* the activation rounding serves */
                return 0;
        case SLM_TYPE_Q4_0:
                quant_w_q4_0(src, dst, n / SLM_QK);
                return 0;
        case SLM_TYPE_Q4_K:
                quant_w_qk(src, dst, n / SLM_QK_K, 15, false);
                return 0;
        case SLM_TYPE_Q5_K:
                quant_w_qk(src, dst, n / SLM_QK_K, 31, true);
                return 0;
        case SLM_TYPE_Q6_K:
                quant_w_q6_k(src, dst, n / SLM_QK_K);
                return 0;
        default:
                return -EINVAL;
        }
}
