/* SPDX-License-Identifier: MIT */
/*
 * The packed-weight kernels (layouts in cpu-pack.c), written once and
 * compiled per instruction set by the file that includes this one after
 * defining:
 *   TARGET        the target attribute of every function here
 *   ISA           the variant's name
 *   SUFFIX(name)  the variant's symbol
 *   TOKENS        tokens kept in registers at once
 *   dpbusd(a,u,s) a + the sums of four products of unsigned u and signed s bytes, per lane
 *   HAVE_VNNI     where dpbusd cannot saturate (the Q8_0 kernel needs that)
 *
 * Each weight vector is unpacked once per group of TOKENS tokens and every
 * accumulator lane belongs to one row, so a block ends in one float
 * multiply-add per token, with no horizontal sums.
 */
#include <immintrin.h>
#include <string.h>

#include "cpu-pack.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Four activation bytes in every lane. */
TARGET static ALWAYS_INLINE __m256i bcast4(const int8_t *p)
{
        int32_t v;
        memcpy(&v, p, 4);
        return _mm256_set1_epi32(v);
}

/* The eight fp16 scales of a packed block, as floats. */
TARGET static ALWAYS_INLINE __m256 scales8(const uint8_t *p)
{
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

TARGET static ALWAYS_INLINE __m256i load32(const uint8_t *p)
{
        return _mm256_loadu_si256((const __m256i *)p);
}

/* Eight bytes widened to eight int32 lanes, unsigned or signed. */
TARGET static ALWAYS_INLINE __m256i u8x8(const uint8_t *p)
{
        return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

TARGET static ALWAYS_INLINE __m256i i8x8(const uint8_t *p)
{
        return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

#define XROW(type, x, xs, t, b) ((const type *)((const uint8_t *)(x) + (size_t)(t) * (xs)) + (b))

/*
 * Q4_0 and Q8_0: n_chunks vectors per block. For Q4_0 each vector holds
 * two chunks (low nibbles: weights 4c.., high: 16+4c..).
 */
TARGET static ALWAYS_INLINE void q8s_tile(int64_t nb, const uint8_t *g, const void *x, size_t xs,
                                          int T, float *y, size_t ys, bool q4)
{
        const size_t bytes = q4 ? SLM_PACK_Q4_0_BYTES : SLM_PACK_Q8_0_BYTES;
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        __m256 acc[TOKENS];

        for (int t = 0; t < T; t++)
                acc[t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++, g += bytes) {
                __m256 dw = scales8(g);
                __m256i w[8];
                if (q4) {
                        for (int c = 0; c < 4; c++) {
                                __m256i v = load32(g + 16 + 32 * c);
                                w[c] = _mm256_and_si256(v, m4);
                                w[c + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                        }
                } else {
                        for (int c = 0; c < 8; c++)
                                w[c] = load32(g + 16 + 32 * c);
                }
                for (int t = 0; t < T; t++) {
                        const SlmBlockQ8S *xb = XROW(SlmBlockQ8S, x, xs, t, b);
                        __m256i s = _mm256_setzero_si256();
                        for (int c = 0; c < 8; c++)
                                s = dpbusd(s, w[c], bcast4(xb->qs + 4 * c));
                        s = _mm256_sub_epi32(s, _mm256_set1_epi32(xb->corr));
                        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s),
                                                 _mm256_mul_ps(dw, _mm256_set1_ps(xb->d)), acc[t]);
                }
        }
        for (int t = 0; t < T; t++)
                _mm256_storeu_ps(y + t * ys, acc[t]);
}

/* Q4_K and Q5_K (q5: the fifth bits from the interleaved qh). */
TARGET static ALWAYS_INLINE void q45_k_tile(int64_t nb, const uint8_t *g, const void *x, size_t xs,
                                            int T, float *y, size_t ys, bool q5)
{
        const size_t bytes = q5 ? SLM_PACK_Q5_K_BYTES : SLM_PACK_Q4_K_BYTES;
        const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
        __m256 acc[TOKENS];

        for (int t = 0; t < T; t++)
                acc[t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++, g += bytes) {
                __m256i isum[TOKENS];
                for (int t = 0; t < T; t++)
                        isum[t] = _mm256_setzero_si256();
                for (int p = 0; p < 4; p++) {
                        __m256i lo_acc[TOKENS], hi_acc[TOKENS];
                        for (int t = 0; t < T; t++)
                                lo_acc[t] = hi_acc[t] = _mm256_setzero_si256();
                        for (int k = 0; k < 8; k++) {
                                __m256i v = load32(g + 160 + 32 * (8 * p + k));
                                __m256i lo = _mm256_and_si256(v, m4);
                                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                                if (q5) {
                                        __m256i h = load32(g + SLM_PACK_Q4_K_BYTES + 32 * k);
                                        __m256i h0 =
                                            _mm256_and_si256(_mm256_srli_epi16(h, 2 * p), one);
                                        __m256i h1 =
                                            _mm256_and_si256(_mm256_srli_epi16(h, 2 * p + 1), one);
                                        lo = _mm256_or_si256(lo, _mm256_slli_epi16(h0, 4));
                                        hi = _mm256_or_si256(hi, _mm256_slli_epi16(h1, 4));
                                }
                                for (int t = 0; t < T; t++) {
                                        const int8_t *q = XROW(SlmBlockQ8KS, x, xs, t, b)->qs;
                                        lo_acc[t] =
                                            dpbusd(lo_acc[t], lo, bcast4(q + 64 * p + 4 * k));
                                        hi_acc[t] =
                                            dpbusd(hi_acc[t], hi, bcast4(q + 64 * p + 32 + 4 * k));
                                }
                        }
                        __m256i sc_lo = u8x8(g + 32 + 8 * (2 * p));
                        __m256i sc_hi = u8x8(g + 32 + 8 * (2 * p + 1));
                        for (int t = 0; t < T; t++)
                                isum[t] = _mm256_add_epi32(
                                    isum[t],
                                    _mm256_add_epi32(_mm256_mullo_epi32(lo_acc[t], sc_lo),
                                                     _mm256_mullo_epi32(hi_acc[t], sc_hi)));
                }
                __m256 dw = scales8(g), dmin = scales8(g + 16);
                for (int t = 0; t < T; t++) {
                        const SlmBlockQ8KS *xb = XROW(SlmBlockQ8KS, x, xs, t, b);
                        __m256i msum = _mm256_setzero_si256();
                        for (int p = 0; p < 4; p++) {
                                __m256i m = _mm256_cvtepu8_epi16(
                                    _mm_loadu_si128((const __m128i *)(g + 96 + 16 * p)));
                                msum = _mm256_add_epi32(
                                    msum, _mm256_madd_epi16(
                                              m, bcast4((const int8_t *)(xb->s32 + 2 * p))));
                        }
                        __m256 d = _mm256_set1_ps(xb->d);
                        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, d),
                                                 acc[t]);
                        acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmin, d),
                                                  acc[t]);
                }
        }
        for (int t = 0; t < T; t++)
                _mm256_storeu_ps(y + t * ys, acc[t]);
}

/* Q6_K: 6-bit weights offset by 32, sixteen int8 scales per block. */
TARGET static ALWAYS_INLINE void q6_k_tile(int64_t nb, const uint8_t *g, const void *x, size_t xs,
                                           int T, float *y, size_t ys)
{
        const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
        __m256 acc[TOKENS];

        for (int t = 0; t < T; t++)
                acc[t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++, g += SLM_PACK_Q6_K_BYTES) {
                __m256i isum[TOKENS];
                for (int t = 0; t < T; t++)
                        isum[t] = _mm256_setzero_si256();
                for (int h = 0; h < 2; h++)
                        for (int half = 0; half < 2; half++) {
                                __m256i a[4][TOKENS];
                                for (int i = 0; i < 4; i++)
                                        for (int t = 0; t < T; t++)
                                                a[i][t] = _mm256_setzero_si256();
                                for (int c = 4 * half; c < 4 * half + 4; c++) {
                                        const uint8_t *o = g + 144 + (h * 8 + c) * 96;
                                        __m256i la = load32(o), lb = load32(o + 32),
                                                hb = load32(o + 64);
                                        __m256i q[4] = {
                                                _mm256_or_si256(
                                                    _mm256_and_si256(la, m4),
                                                    _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4)),
                                                _mm256_or_si256(
                                                    _mm256_and_si256(lb, m4),
                                                    _mm256_slli_epi16(
                                                        _mm256_and_si256(_mm256_srli_epi16(hb, 2),
                                                                         m3),
                                                        4)),
                                                _mm256_or_si256(
                                                    _mm256_and_si256(_mm256_srli_epi16(la, 4), m4),
                                                    _mm256_slli_epi16(
                                                        _mm256_and_si256(_mm256_srli_epi16(hb, 4),
                                                                         m3),
                                                        4)),
                                                _mm256_or_si256(
                                                    _mm256_and_si256(_mm256_srli_epi16(lb, 4), m4),
                                                    _mm256_slli_epi16(
                                                        _mm256_and_si256(_mm256_srli_epi16(hb, 6),
                                                                         m3),
                                                        4)),
                                        };
                                        for (int t = 0; t < T; t++) {
                                                const int8_t *yq =
                                                    XROW(SlmBlockQ8KS, x, xs, t, b)->qs + 128 * h +
                                                    4 * c;
                                                for (int i = 0; i < 4; i++)
                                                        a[i][t] = dpbusd(a[i][t], q[i],
                                                                         bcast4(yq + 32 * i));
                                        }
                                }
                                for (int i = 0; i < 4; i++) {
                                        int j = 8 * h + 2 * i + half;
                                        __m256i sc = i8x8(g + 16 + 8 * j);
                                        for (int t = 0; t < T; t++) {
                                                const SlmBlockQ8KS *xb =
                                                    XROW(SlmBlockQ8KS, x, xs, t, b);
                                                __m256i v = _mm256_sub_epi32(
                                                    a[i][t], _mm256_set1_epi32(xb->c16[j]));
                                                isum[t] = _mm256_add_epi32(
                                                    isum[t], _mm256_mullo_epi32(v, sc));
                                        }
                                }
                        }
                __m256 dw = scales8(g);
                for (int t = 0; t < T; t++)
                        acc[t] = _mm256_fmadd_ps(
                            _mm256_cvtepi32_ps(isum[t]),
                            _mm256_mul_ps(dw, _mm256_set1_ps(XROW(SlmBlockQ8KS, x, xs, t, b)->d)),
                            acc[t]);
        }
        for (int t = 0; t < T; t++)
                _mm256_storeu_ps(y + t * ys, acc[t]);
}

/*
 * The entry points: n_tokens in tiles of TOKENS, the last tile through a
 * copy of the kernel specialized for its size.
 */
#if TOKENS > 4
#define TAIL_4_7(call)                                                                             \
        case 4:                                                                                    \
                call(4);                                                                           \
                break;                                                                             \
        case 5:                                                                                    \
                call(5);                                                                           \
                break;                                                                             \
        case 6:                                                                                    \
                call(6);                                                                           \
                break;                                                                             \
        case 7:                                                                                    \
                call(7);                                                                           \
                break;
#else
#define TAIL_4_7(call)
#endif

#define GEMM(name, call)                                                                           \
        TARGET static void SUFFIX(name)(int64_t n, const void *group, const void *x, size_t xs,    \
                                        int n_tokens, float *y, size_t ys)                         \
        {                                                                                          \
                const uint8_t *g = group;                                                          \
                for (int t0 = 0; t0 < n_tokens; t0 += TOKENS) {                                    \
                        const void *xt = (const uint8_t *)x + (size_t)t0 * xs;                     \
                        float *yt = y + (size_t)t0 * ys;                                           \
                        switch (n_tokens - t0 < TOKENS ? n_tokens - t0 : TOKENS) {                 \
                        case 1:                                                                    \
                                call(1);                                                           \
                                break;                                                             \
                        case 2:                                                                    \
                                call(2);                                                           \
                                break;                                                             \
                        case 3:                                                                    \
                                call(3);                                                           \
                                break;                                                             \
                                TAIL_4_7(call)                                                     \
                        default:                                                                   \
                                call(TOKENS);                                                      \
                                break;                                                             \
                        }                                                                          \
                }                                                                                  \
        }

_Static_assert(TOKENS == 4 || TOKENS == 8, "the tail cases above");

#define CALL_Q4_0(T) q8s_tile(n / SLM_QK, g, xt, xs, T, yt, ys, true)
#define CALL_Q8_0(T) q8s_tile(n / SLM_QK, g, xt, xs, T, yt, ys, false)
#define CALL_Q4_K(T) q45_k_tile(n / SLM_QK_K, g, xt, xs, T, yt, ys, false)
#define CALL_Q5_K(T) q45_k_tile(n / SLM_QK_K, g, xt, xs, T, yt, ys, true)
#define CALL_Q6_K(T) q6_k_tile(n / SLM_QK_K, g, xt, xs, T, yt, ys)

GEMM(gemm_q4_0, CALL_Q4_0)
GEMM(gemm_q4_k, CALL_Q4_K)
GEMM(gemm_q5_k, CALL_Q5_K)
GEMM(gemm_q6_k, CALL_Q6_K)
#ifdef HAVE_VNNI
GEMM(gemm_q8_0, CALL_Q8_0)
#endif

#define KERNEL(T, BS, BYTES, XBYTES, CONVERT, PACK, FN)                                            \
        {                                                                                          \
                .type = T, .isa = ISA, .block_size = BS, .group_block_bytes = BYTES,               \
                .x_block_bytes = XBYTES, .convert_x = CONVERT, .pack = PACK, .gemm = FN            \
        }

static const SlmPackKernel SUFFIX(kernels)[] = {
        KERNEL(SLM_TYPE_Q4_0, SLM_QK, SLM_PACK_Q4_0_BYTES, sizeof(SlmBlockQ8S), slm_convert_x_q4_0,
               slm_pack_q4_0, SUFFIX(gemm_q4_0)),
        KERNEL(SLM_TYPE_Q4_K, SLM_QK_K, SLM_PACK_Q4_K_BYTES, sizeof(SlmBlockQ8KS),
               slm_convert_x_q8_ks, slm_pack_q4_k, SUFFIX(gemm_q4_k)),
        KERNEL(SLM_TYPE_Q5_K, SLM_QK_K, SLM_PACK_Q5_K_BYTES, sizeof(SlmBlockQ8KS),
               slm_convert_x_q8_ks, slm_pack_q5_k, SUFFIX(gemm_q5_k)),
        KERNEL(SLM_TYPE_Q6_K, SLM_QK_K, SLM_PACK_Q6_K_BYTES, sizeof(SlmBlockQ8KS),
               slm_convert_x_q8_ks, slm_pack_q6_k, SUFFIX(gemm_q6_k)),
#ifdef HAVE_VNNI
        KERNEL(SLM_TYPE_Q8_0, SLM_QK, SLM_PACK_Q8_0_BYTES, sizeof(SlmBlockQ8S), slm_convert_x_q8_0,
               slm_pack_q8_0, SUFFIX(gemm_q8_0)),
#endif
};

static const SlmPackKernel *SUFFIX(find)(SlmType type)
{
        for (size_t i = 0; i < sizeof(SUFFIX(kernels)) / sizeof(SUFFIX(kernels)[0]); i++)
                if (SUFFIX(kernels)[i].type == type)
                        return &SUFFIX(kernels)[i];
        return NULL;
}
