/* SPDX-License-Identifier: MIT */
/*
 * AVX2 dot products. Each function is compiled for AVX2+FMA+F16C by a
 * target attribute, so the rest of the build stays generic; they run only
 * after slm_cpu_vec_dot_avx2() has checked the CPU. The integer parts are
 * exact, as in the reference; only the order of float additions differs.
 */
#include "cpu-kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#if defined(__x86_64__) && defined(__GNUC__)

#include <cpuid.h>
#include <immintrin.h>

#include "avx2-util.h"

#define AVX2 SLM_AVX2

static unsigned long long xgetbv0(void)
{
        unsigned a, d;
        __asm__("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
        return ((unsigned long long)d << 32) | a;
}

/* F16C is part of what these kernels require: the hardware conversion. */
AVX2 static inline float h2f(slm_fp16 h)
{
        return _cvtsh_ss(h);
}

/* Eight int32 sums of products of 32 signed bytes. */
AVX2 static inline __m256i dot_i8(__m256i x, __m256i y)
{
        /* maddubs wants unsigned × signed: move x's sign onto y */
        __m256i ax = _mm256_sign_epi8(x, x), sy = _mm256_sign_epi8(y, x);
        return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

/* 32 4-bit values of 16 bytes: low nibbles first, then high nibbles. */
AVX2 static inline __m256i nibbles(const uint8_t *p)
{
        __m128i b = _mm_loadu_si128((const __m128i *)p);
        __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
        return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/* acc += d_w * d_x * (q · x) for one block of 32 against Q8_0 activations. */
AVX2 static inline __m256 fma_q8_block(__m256 acc, __m256i q, float dw, const SlmBlockQ8_0 *x)
{
        __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
        __m256 d = _mm256_set1_ps(dw * h2f(x->d));
        return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(q, y)), acc);
}

AVX2 static float dot_q8_0(int64_t n, const void *wv, const void *xv)
{
        const SlmBlockQ8_0 *w = wv, *x = xv;
        __m256 acc = _mm256_setzero_ps();

        for (int64_t i = 0; i < n / SLM_QK; i++)
                acc = fma_q8_block(acc, _mm256_loadu_si256((const __m256i *)w[i].qs), h2f(w[i].d),
                                   &x[i]);
        return slm_hsum8(acc);
}

AVX2 static float dot_q4_0(int64_t n, const void *wv, const void *xv)
{
        const SlmBlockQ4_0 *w = wv;
        const SlmBlockQ8_0 *x = xv;
        __m256 acc = _mm256_setzero_ps();

        for (int64_t i = 0; i < n / SLM_QK; i++)
                acc = fma_q8_block(acc, _mm256_sub_epi8(nibbles(w[i].qs), _mm256_set1_epi8(8)),
                                   h2f(w[i].d), &x[i]);
        return slm_hsum8(acc);
}

/*
 * Tiles for prompt batches: 4 weight rows against 2 token rows at once,
 * so each weight block is unpacked once for both tokens and each
 * activation block loaded once for four rows. out[t * out_stride + r].
 * Q4_0 weights stay unsigned (0..15): q·y - 8·Σy, with 8·Σy formed once
 * per token block, so no per-pair sign fix-up is needed.
 */
#define TILE_R 4
#define TILE_T 2

AVX2 static void tile_q4_0(int64_t n, const void *wv, size_t w_stride, const void *xv,
                           size_t x_stride, float *out, size_t out_stride)
{
        const SlmBlockQ4_0 *w[TILE_R];
        const SlmBlockQ8_0 *x[TILE_T];
        const __m256i ones = _mm256_set1_epi16(1), eights = _mm256_set1_epi8(8);
        __m256 acc[TILE_R][TILE_T];

        for (int r = 0; r < TILE_R; r++) {
                w[r] = (const SlmBlockQ4_0 *)((const uint8_t *)wv + r * w_stride);
                for (int t = 0; t < TILE_T; t++)
                        acc[r][t] = _mm256_setzero_ps();
        }
        for (int t = 0; t < TILE_T; t++)
                x[t] = (const SlmBlockQ8_0 *)((const uint8_t *)xv + t * x_stride);
        for (int64_t i = 0; i < n / SLM_QK; i++) {
                __m256i y[TILE_T], y8[TILE_T];
                float dx[TILE_T];
                for (int t = 0; t < TILE_T; t++) {
                        y[t] = _mm256_loadu_si256((const __m256i *)x[t][i].qs);
                        y8[t] = _mm256_maddubs_epi16(eights, y[t]);
                        dx[t] = h2f(x[t][i].d);
                }
                for (int r = 0; r < TILE_R; r++) {
                        __m256i q = nibbles(w[r][i].qs);
                        float dw = h2f(w[r][i].d);
                        for (int t = 0; t < TILE_T; t++) {
                                __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y[t]), y8[t]);
                                acc[r][t] = _mm256_fmadd_ps(
                                    _mm256_set1_ps(dw * dx[t]),
                                    _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), acc[r][t]);
                        }
                }
        }
        for (int r = 0; r < TILE_R; r++)
                for (int t = 0; t < TILE_T; t++)
                        out[t * out_stride + r] = slm_hsum8(acc[r][t]);
}

/*
 * Q4_K and Q5_K (which adds a fifth bit per weight in qh): the block
 * header (d, dmin, scales) is laid out alike, qs and qh are found per type.
 */
AVX2 static inline float dot_q45_k(int64_t n, const uint8_t *w, size_t block_bytes,
                                   size_t qs_offset, ssize_t qh_offset, const SlmBlockQ8_K *x)
{
        const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
        float sum = 0.0f;

        for (int64_t i = 0; i < n / SLM_QK_K; i++, w += block_bytes) {
                const SlmBlockQ4_K *b = (const SlmBlockQ4_K *)w;
                const uint8_t *qs = w + qs_offset;
                __m256i qh = qh_offset >= 0 ? _mm256_loadu_si256((const __m256i *)(w + qh_offset))
                                            : _mm256_setzero_si256();
                __m256i acc = _mm256_setzero_si256();
                uint8_t sc[8], m[8];
                int msum = 0;

                slm_k_scales(b->scales, sc, m);
                for (int j = 0; j < 8; j++)
                        msum += m[j] * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
                for (int j = 0; j < 4; j++) {
                        __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
                        __m256i lo = _mm256_and_si256(q, m4);
                        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                        if (qh_offset >= 0) {
                                /* bit 2j of each qh byte is the fifth bit of lo, 2j+1 of hi */
                                __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one);
                                __m256i h1 =
                                    _mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one);
                                lo = _mm256_or_si256(lo, _mm256_slli_epi16(h0, 4));
                                hi = _mm256_or_si256(hi, _mm256_slli_epi16(h1, 4));
                        }
                        __m256i y0 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 64 * j));
                        __m256i y1 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 64 * j + 32));
                        __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0),
                                                       _mm256_set1_epi16(sc[2 * j]));
                        __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1),
                                                       _mm256_set1_epi16(sc[2 * j + 1]));
                        acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
                }
                sum += h2f(b->d) * x[i].d * (float)slm_hsum8_i32(acc) -
                       h2f(b->dmin) * x[i].d * (float)msum;
        }
        return sum;
}

AVX2 static float dot_q4_k(int64_t n, const void *w, const void *x)
{
        return dot_q45_k(n, w, sizeof(SlmBlockQ4_K), offsetof(SlmBlockQ4_K, qs), -1, x);
}

AVX2 static float dot_q5_k(int64_t n, const void *w, const void *x)
{
        return dot_q45_k(n, w, sizeof(SlmBlockQ5_K), offsetof(SlmBlockQ5_K, qs),
                         offsetof(SlmBlockQ5_K, qh), x);
}

AVX2 static float dot_q6_k(int64_t n, const void *wv, const void *xv)
{
        const SlmBlockQ6_K *w = wv;
        const SlmBlockQ8_K *x = xv;
        const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
        float sum = 0.0f;

        for (int64_t i = 0; i < n / SLM_QK_K; i++) {
                const uint8_t *ql = w[i].ql, *qh = w[i].qh;
                const int8_t *sc = w[i].scales;
                const int8_t *y = x[i].qs;
                __m256i acc = _mm256_setzero_si256();
                int bias = 0;

                /* q - 32: the -32 part through the block sums of y */
                for (int j = 0; j < SLM_QK_K / 16; j++)
                        bias += sc[j] * x[i].bsums[j];
                for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128) {
                        __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
                        __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
                        __m256i h = _mm256_loadu_si256((const __m256i *)qh);
                        __m256i q[4] = {
                                _mm256_or_si256(_mm256_and_si256(l0, m4),
                                                _mm256_slli_epi16(_mm256_and_si256(h, m3), 4)),
                                _mm256_or_si256(
                                    _mm256_and_si256(l1, m4),
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3),
                                                      4)),
                                _mm256_or_si256(
                                    _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3),
                                                      4)),
                                _mm256_or_si256(
                                    _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3),
                                                      4)),
                        };
                        for (int k = 0; k < 4; k++) {
                                __m256i yk = _mm256_loadu_si256((const __m256i *)(y + 32 * k));
                                /* lanes 0-7 hold elements 0-15, lanes 8-15 elements 16-31 */
                                __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]),
                                                             _mm_set1_epi16(sc[2 * k]));
                                acc = _mm256_add_epi32(
                                    acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], yk), s));
                        }
                }
                sum += h2f(w[i].d) * x[i].d * (float)(slm_hsum8_i32(acc) - 32 * bias);
        }
        return sum;
}

/* Eight values from @p at @i, widened from half precision when @half. */
AVX2 static inline __m256 load8(const void *p, int64_t i, bool half)
{
        return half ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const slm_fp16 *)p + i)))
                    : _mm256_loadu_ps((const float *)p + i);
}

AVX2 static inline float dot_float(int64_t n, const void *w, const void *x, bool half)
{
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        int64_t i = 0;
        float sum;

        for (; i + 16 <= n; i += 16) {
                acc0 = _mm256_fmadd_ps(load8(w, i, half), load8(x, i, half), acc0);
                acc1 = _mm256_fmadd_ps(load8(w, i + 8, half), load8(x, i + 8, half), acc1);
        }
        sum = slm_hsum8(_mm256_add_ps(acc0, acc1));
        for (; i < n; i++)
                sum += half ? h2f(((const slm_fp16 *)w)[i]) * h2f(((const slm_fp16 *)x)[i])
                            : ((const float *)w)[i] * ((const float *)x)[i];
        return sum;
}

AVX2 static float dot_f16(int64_t n, const void *w, const void *x)
{
        return dot_float(n, w, x, true);
}

AVX2 static float dot_f32(int64_t n, const void *w, const void *x)
{
        return dot_float(n, w, x, false);
}

/* ---- weighted sums of KV cache rows ------------------------------------------------------- */

/*
 * acc + w * v. F32 caches round the product before the sum, as the
 * portable code does (the empty asm keeps the compiler from fusing them),
 * so an F32 cache gives the same bits with or without SIMD; F16 rounds once.
 */
AVX2 static inline __m256 mul_add(__m256 w, __m256 v, __m256 acc, bool fused)
{
        if (fused)
                return _mm256_fmadd_ps(w, v, acc);
        __m256 p = _mm256_mul_ps(w, v);
        __asm__("" : "+x"(p));
        return _mm256_add_ps(acc, p);
}

/*
 * The dots of @q with @n_keys rows of 8 values (F32 or F16) @stride bytes
 * apart, eight rows at a time: transposed, lane j adds row j's products one
 * by one, rounding each product, as dot_float's tail does for a row of 8,
 * so every dot has dot_float's bits. One key at a time, a head of 8 (the
 * story model's) took a fifth of a Suggest call in that tail.
 */
AVX2 static inline void dots_of_8(int n_keys, const void *keys, size_t stride, const void *q,
                                  float *out, bool half)
{
        const uint8_t *k = keys;
        __m256 qd[8];
        int j = 0;

        for (int d = 0; d < 8; d++)
                qd[d] =
                    _mm256_set1_ps(half ? h2f(((const slm_fp16 *)q)[d]) : ((const float *)q)[d]);
        for (; j + 8 <= n_keys; j += 8) {
                __m256 r[8], t[8];
                for (int l = 0; l < 8; l++)
                        r[l] = load8(k + (size_t)(j + l) * stride, 0, half);
                for (int l = 0; l < 8; l += 2) {
                        t[l] = _mm256_unpacklo_ps(r[l], r[l + 1]);
                        t[l + 1] = _mm256_unpackhi_ps(r[l], r[l + 1]);
                }
                for (int l = 0; l < 8; l += 4) {
                        r[l] = _mm256_shuffle_ps(t[l], t[l + 2], 0x44);
                        r[l + 1] = _mm256_shuffle_ps(t[l], t[l + 2], 0xee);
                        r[l + 2] = _mm256_shuffle_ps(t[l + 1], t[l + 3], 0x44);
                        r[l + 3] = _mm256_shuffle_ps(t[l + 1], t[l + 3], 0xee);
                }
                /* r[d], d < 4: elements d and d + 4 of rows 0-3; r[d + 4]: of rows 4-7 */
                for (int d = 0; d < 4; d++) {
                        t[d] = _mm256_permute2f128_ps(r[d], r[d + 4], 0x20);
                        t[d + 4] = _mm256_permute2f128_ps(r[d], r[d + 4], 0x31);
                }
                __m256 acc = _mm256_setzero_ps();
                for (int d = 0; d < 8; d++)
                        acc = mul_add(t[d], qd[d], acc, false);
                _mm256_storeu_ps(out + j, acc);
        }
        for (; j < n_keys; j++)
                out[j] = dot_float(8, k + (size_t)j * stride, q, half);
}

/*
 * Four vectors of out (32 floats) stay in registers while every row adds
 * its piece; then the next 32. F32 and F16 rows also take pieces of 8 and
 * a scalar tail, for heads that are not a multiple of 32.
 */
AVX2 static inline void row_sum_float(int64_t n, int n_rows, const float *w, const void *rows,
                                      size_t stride, float *out, bool half)
{
        int64_t i = 0;

        for (; i + 32 <= n; i += 32) {
                __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                                  _mm256_setzero_ps() };
                for (int j = 0; j < n_rows; j++) {
                        const void *row = (const uint8_t *)rows + (size_t)j * stride;
                        __m256 wj = _mm256_set1_ps(w[j]);
                        for (int k = 0; k < 4; k++)
                                acc[k] = mul_add(wj, load8(row, i + 8 * k, half), acc[k], half);
                }
                for (int k = 0; k < 4; k++)
                        _mm256_storeu_ps(out + i + 8 * k, acc[k]);
        }
        for (; i + 8 <= n; i += 8) {
                __m256 acc = _mm256_setzero_ps();
                for (int j = 0; j < n_rows; j++)
                        acc = mul_add(_mm256_set1_ps(w[j]),
                                      load8((const uint8_t *)rows + (size_t)j * stride, i, half),
                                      acc, half);
                _mm256_storeu_ps(out + i, acc);
        }
        for (; i < n; i++) {
                float acc = 0.0f;
                for (int j = 0; j < n_rows; j++) {
                        const void *row = (const uint8_t *)rows + (size_t)j * stride;
                        float p = w[j] * (half ? h2f(((const slm_fp16 *)row)[i])
                                               : ((const float *)row)[i]);
                        __asm__("" : "+x"(p));
                        acc += p;
                }
                out[i] = acc;
        }
}

AVX2 static void row_sum_f32(int64_t n, int n_rows, const float *w, const void *rows, size_t stride,
                             float *out)
{
        row_sum_float(n, n_rows, w, rows, stride, out, false);
}

AVX2 static void row_sum_f16(int64_t n, int n_rows, const float *w, const void *rows, size_t stride,
                             float *out)
{
        row_sum_float(n, n_rows, w, rows, stride, out, true);
}

AVX2 static void dots_of_8_f32(int n_keys, const void *keys, size_t stride, const void *q,
                               float *out)
{
        dots_of_8(n_keys, keys, stride, q, out, false);
}

AVX2 static void dots_of_8_f16(int n_keys, const void *keys, size_t stride, const void *q,
                               float *out)
{
        dots_of_8(n_keys, keys, stride, q, out, true);
}

/* One Q8_0 block of 32 per pass: its scale times the row's weight, 32 bytes widened to floats. */
AVX2 static void row_sum_q8_0(int64_t n, int n_rows, const float *w, const void *rows,
                              size_t stride, float *out)
{
        for (int64_t b = 0; b < n / SLM_QK; b++) {
                __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                                  _mm256_setzero_ps() };
                for (int j = 0; j < n_rows; j++) {
                        const SlmBlockQ8_0 *blk =
                            (const SlmBlockQ8_0 *)((const uint8_t *)rows + (size_t)j * stride) + b;
                        __m256 d = _mm256_set1_ps(w[j] * h2f(blk->d));
                        for (int k = 0; k < 4; k++) {
                                __m128i q = _mm_loadl_epi64((const __m128i *)(blk->qs + 8 * k));
                                __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
                                acc[k] = _mm256_fmadd_ps(d, v, acc[k]);
                        }
                }
                for (int k = 0; k < 4; k++)
                        _mm256_storeu_ps(out + b * SLM_QK + 8 * k, acc[k]);
        }
}

/* F16C's conversion, rounding to nearest even like slm_fp32_to_fp16. */
AVX2 static void to_f16(int64_t n, const float *src, slm_fp16 *dst)
{
        int64_t i = 0;

        for (; i + 8 <= n; i += 8)
                _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i),
                                                                       _MM_FROUND_TO_NEAREST_INT));
        for (; i < n; i++)
                dst[i] = slm_fp32_to_fp16(src[i]);
}

SlmToF16Fn slm_cpu_to_f16_avx2(void)
{
        return slm_cpu_have_avx2() ? to_f16 : NULL;
}

/*
 * e^x for eight floats within two ulps of expf: x = n ln 2 + r with |r| <=
 * ln 2 / 2 (ln 2 in two parts, so r is exact), e^r by a degree-7 polynomial
 * (Cephes' coefficients), 2^n into the exponent. Beyond |x| = 88.38, where
 * 2^n would not be a normal float, e^x is infinity or 0 (expf gives a
 * denormal down to -103.97).
 */
AVX2 static inline __m256 exp8(__m256 x)
{
        const __m256 bound = _mm256_set1_ps(88.3762626647949f);
        __m256 over = _mm256_cmp_ps(x, bound, _CMP_GT_OQ);
        x = _mm256_max_ps(_mm256_min_ps(x, bound), _mm256_sub_ps(_mm256_setzero_ps(), bound));
        __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
        r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
        __m256 p = _mm256_set1_ps(1.9875691500e-4f);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
        p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
        __m256i e =
            _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
        return _mm256_blendv_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), _mm256_set1_ps(INFINITY),
                                over);
}

AVX2 static inline __m256 silu_glu8(__m256 g, __m256 u)
{
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

/*
 * y = gate / (1 + e^-gate) * up, as slm_cpu_glu writes it with expf. The
 * tail goes through the same vector code, so that an element's result does
 * not depend on where it lies (a matrix's rows are gated in chunks, or all
 * at once).
 */
AVX2 static void silu_glu(const float *gate, const float *up, int64_t n, float *y)
{
        int64_t i = 0;

        for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(y + i,
                                 silu_glu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
        if (i < n) {
                float g[8] = { 0 }, u[8] = { 0 }, out[8];
                memcpy(g, gate + i, (size_t)(n - i) * sizeof(float));
                memcpy(u, up + i, (size_t)(n - i) * sizeof(float));
                _mm256_storeu_ps(out, silu_glu8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
                memcpy(y + i, out, (size_t)(n - i) * sizeof(float));
        }
}

SlmGluFn slm_cpu_silu_glu_avx2(void)
{
        return slm_cpu_have_avx2() ? silu_glu : NULL;
}

SlmKeyDotsFn slm_cpu_key_dots_8_avx2(SlmType type)
{
        if (!slm_cpu_have_avx2())
                return NULL;
        return type == SLM_TYPE_F32 ? dots_of_8_f32 : type == SLM_TYPE_F16 ? dots_of_8_f16 : NULL;
}

SlmRowSumFn slm_cpu_row_sum_avx2(SlmType type)
{
        if (!slm_cpu_have_avx2())
                return NULL;
        switch (type) {
        case SLM_TYPE_F32:
                return row_sum_f32;
        case SLM_TYPE_F16:
                return row_sum_f16;
        case SLM_TYPE_Q8_0:
                return row_sum_q8_0;
        default:
                return NULL;
        }
}

/* AVX2, FMA and F16C, and an OS that saves the AVX registers. */
bool slm_cpu_have_avx2(void)
{
        unsigned a, b, c, d;

        if (!__get_cpuid(1, &a, &b, &c, &d))
                return false;
        bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
        bool f16c = c & (1u << 29);
        if (!fma || !osxsave || !avx || !f16c)
                return false;
        if ((xgetbv0() & 6) != 6)
                return false;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
                return false;
        return b & (1u << 5);
}

/* AVX-512 F, BW, VL and VNNI on top of that, and an OS that saves the AVX-512 state. */
bool slm_cpu_have_avx512vnni(void)
{
        unsigned a, b, c, d;

        if (!slm_cpu_have_avx2() || (xgetbv0() & 0xe6) != 0xe6)
                return false;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
                return false;
        bool f = b & (1u << 16), bw = b & (1u << 30), vl = b & (1u << 31);
        bool vnni = c & (1u << 11);
        return f && bw && vl && vnni;
}

SlmVecDotFn slm_cpu_vec_dot_avx2(SlmType type)
{
        if (!slm_cpu_have_avx2())
                return NULL;
        switch (type) {
        case SLM_TYPE_F32:
                return dot_f32;
        case SLM_TYPE_F16:
                return dot_f16;
        case SLM_TYPE_Q4_0:
                return dot_q4_0;
        case SLM_TYPE_Q8_0:
                return dot_q8_0;
        case SLM_TYPE_Q4_K:
                return dot_q4_k;
        case SLM_TYPE_Q5_K:
                return dot_q5_k;
        case SLM_TYPE_Q6_K:
                return dot_q6_k;
        default:
                return NULL;
        }
}

SlmTileDotFn slm_cpu_tile_dot_avx2(SlmType type)
{
        if (!slm_cpu_have_avx2())
                return NULL;
        switch (type) {
        case SLM_TYPE_Q4_0:
                return tile_q4_0;
        default:
                /* a Q8_0 tile measured no faster than one row at a time */
                return NULL;
        }
}

#else

bool slm_cpu_have_avx2(void)
{
        return false;
}

bool slm_cpu_have_avx512vnni(void)
{
        return false;
}

SlmVecDotFn slm_cpu_vec_dot_avx2(SlmType type)
{
        (void)type;
        return NULL;
}

SlmTileDotFn slm_cpu_tile_dot_avx2(SlmType type)
{
        (void)type;
        return NULL;
}

SlmRowSumFn slm_cpu_row_sum_avx2(SlmType type)
{
        (void)type;
        return NULL;
}

SlmToF16Fn slm_cpu_to_f16_avx2(void)
{
        return NULL;
}

SlmGluFn slm_cpu_silu_glu_avx2(void)
{
        return NULL;
}

SlmKeyDotsFn slm_cpu_key_dots_8_avx2(SlmType type)
{
        (void)type;
        return NULL;
}

#endif
