/* SPDX-License-Identifier: MIT */
/*
 * The packed-weight kernels (layouts in cpu-pack.c), written once and
 * compiled per instruction set and vector width by the file that includes
 * this one after defining:
 *   TARGET        the target attribute of every function here
 *   SUFFIX(name)  the variant's symbols
 *   TOKENS        tokens kept in registers at once (4 or 8)
 *   GROUPS        groups of eight rows per vector (1: 256-bit, 2: 512-bit)
 *   VI, VF        the integer and float vector types, and the operations
 *                 vzero, vfzero, vset1_8, vset1_32, vfset1, vand, vor,
 *                 vsrli16, vslli16, vadd32, vsub32, vmullo32, vmadd16,
 *                 vcvt, vfmadd, vfnmadd, vfmul, vfadd, vfstore on them
 *   vdpbusd(a,u,s) a + the sums of four products of unsigned u and signed s bytes, per lane
 *   vbcast4(p)     four activation bytes in every lane
 *   vload(p)       32 bytes of each group
 *   vscales(p)     the eight fp16 scales of each group, as floats
 *   vu8x8, vi8x8(p)  eight bytes of each group widened to int32
 *   vu8x16(p)      sixteen bytes of each group widened to int16
 *   HAVE_VNNI      where vdpbusd cannot saturate (the Q8_0 kernel needs that)
 *
 * With two groups per vector the weights are a pair (slm_pack_pair): each
 * piece of a group's block at offset o lies at GROUPS * o, followed by the
 * second group's, so one load takes both and AT(g, o) finds it.
 *
 * Each weight vector is unpacked once per TOKENS tokens and every
 * accumulator lane belongs to one row, so a block ends in one float
 * multiply-add per token, with no horizontal sums.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "avx2-util.h"
#include "cpu-pack.h"

#undef TAIL_4_7
#define ALWAYS_INLINE inline __attribute__((always_inline))

#undef XROW
#undef AT
#define AT(g, off)              ((g) + GROUPS * (size_t)(off))
#define XROW(type, x, xs, t, b) ((const type *)((const uint8_t *)(x) + (size_t)(t) * (xs)) + (b))

/*
 * Software prefetch of the block @ahead blocks of @bytes past the one at @g.
 * Q5_K and Q6_K read a block's pieces out of order (the scales after the
 * weights, the fifth or high bits beside the low ones), which the hardware
 * prefetchers follow poorly: one thread streamed Q6_K pairs at 12 GB/s and
 * Q5_K groups at 12 GB/s on AVX2, where Q4_K streams 28. They ask for the
 * block PREFETCH_BLOCKS ahead. The others stream in order and measured
 * faster without for one token. From four tokens on (a batch of decoding
 * sequences) a Q4_0 or Q8_0 block's arithmetic takes long enough that the
 * hardware prefetcher falls behind: asking for a block 2 to 16 ahead took a
 * Q4_0 matrix larger than L3 from 40-50 to 34-41 ns per pair of blocks at
 * eight tokens and from 35-37 to 26-32 at four (AVX-512 VNNI, one thread),
 * PREFETCH_TILE_BLOCKS ahead the best. Q4_K measured the same either way.
 */
#define PREFETCH_BLOCKS      2
#define PREFETCH_TILE_BLOCKS 16

TARGET static ALWAYS_INLINE void SUFFIX(prefetch)(const uint8_t *g, size_t bytes, int ahead)
{
        for (size_t l = 0; l < bytes; l += 64)
                __builtin_prefetch(g + (size_t)ahead * bytes + l);
}

/*
 * Q4_0 and Q8_0: eight chunks of four weights per block. For Q4_0 a vector
 * holds two chunks (low nibbles: weights 4c.., high: 16+4c..).
 */
TARGET static ALWAYS_INLINE void SUFFIX(q8s_tile)(int64_t nb, const uint8_t *g, const void *x,
                                                  size_t xs, int T, float *y, size_t ys, bool q4)
{
        const size_t bytes = q4 ? SLM_PACK_Q4_0_BYTES : SLM_PACK_Q8_0_BYTES;
        const VI m4 = vset1_8(0x0f);
        VF acc[TOKENS];

        for (int t = 0; t < T; t++)
                acc[t] = vfzero();
        for (int64_t b = 0; b < nb; b++, g += GROUPS * bytes) {
                if (T >= 4)
                        SUFFIX(prefetch)(g, GROUPS * bytes, PREFETCH_TILE_BLOCKS);
                VF dw = vscales(AT(g, SLM_PACK_D));
                VI w[8];
                if (q4) {
                        for (int c = 0; c < 4; c++) {
                                VI v = vload(AT(g, SLM_PACK_QS + 32 * c));
                                w[c] = vand(v, m4);
                                w[c + 4] = vand(vsrli16(v, 4), m4);
                        }
                } else {
                        for (int c = 0; c < 8; c++)
                                w[c] = vload(AT(g, SLM_PACK_QS + 32 * c));
                }
                for (int t = 0; t < T; t++) {
                        const SlmBlockQ8S *xb = XROW(SlmBlockQ8S, x, xs, t, b);
                        /*
                         * Two chains, so the adds do not wait on each other; the first starts
                         * at the offset (a broadcast load), which corrects the unsigned weights.
                         */
                        VI s0 = vset1_32(xb->offset), s1 = vzero();
                        for (int c = 0; c < 8; c += 2) {
                                s0 = vdpbusd(s0, w[c], vbcast4(xb->qs + 4 * c));
                                s1 = vdpbusd(s1, w[c + 1], vbcast4(xb->qs + 4 * c + 4));
                        }
                        VI s = vadd32(s0, s1);
                        acc[t] = vfmadd(vcvt(s), vfmul(dw, vfset1(xb->d)), acc[t]);
                }
        }
        for (int t = 0; t < T; t++)
                vfstore(y + t * ys, acc[t]);
}

/* Q4_K and Q5_K (q5: the fifth bits from the interleaved qh). */
TARGET static ALWAYS_INLINE void SUFFIX(q45_k_tile)(int64_t nb, const uint8_t *g, const void *x,
                                                    size_t xs, int T, float *y, size_t ys, bool q5)
{
        const size_t bytes = q5 ? SLM_PACK_Q5_K_BYTES : SLM_PACK_Q4_K_BYTES;
        const VI m4 = vset1_8(0x0f), one = vset1_8(1);
        VF acc[TOKENS];

        for (int t = 0; t < T; t++)
                acc[t] = vfzero();
        for (int64_t b = 0; b < nb; b++, g += GROUPS * bytes) {
                if (q5)
                        SUFFIX(prefetch)(g, GROUPS * bytes, PREFETCH_BLOCKS);
                VI isum[TOKENS];
                for (int t = 0; t < T; t++)
                        isum[t] = vzero();
                for (int p = 0; p < 4; p++) {
                        VI lo_acc[TOKENS], hi_acc[TOKENS];
                        for (int t = 0; t < T; t++)
                                lo_acc[t] = hi_acc[t] = vzero();
                        for (int k = 0; k < 8; k++) {
                                VI v = vload(AT(g, SLM_PACK_K_QS + 32 * (8 * p + k)));
                                VI lo = vand(v, m4);
                                VI hi = vand(vsrli16(v, 4), m4);
                                if (q5) {
                                        VI h = vload(AT(g, SLM_PACK_Q5_K_QH + 32 * k));
                                        VI h0 = vand(vsrli16(h, 2 * p), one);
                                        VI h1 = vand(vsrli16(h, 2 * p + 1), one);
                                        lo = vor(lo, vslli16(h0, 4));
                                        hi = vor(hi, vslli16(h1, 4));
                                }
                                for (int t = 0; t < T; t++) {
                                        const int8_t *q = XROW(SlmBlockQ8KS, x, xs, t, b)->qs;
                                        lo_acc[t] =
                                            vdpbusd(lo_acc[t], lo, vbcast4(q + 64 * p + 4 * k));
                                        hi_acc[t] = vdpbusd(hi_acc[t], hi,
                                                            vbcast4(q + 64 * p + 32 + 4 * k));
                                }
                        }
                        VI sc_lo = vu8x8(AT(g, SLM_PACK_K_SC + 8 * (2 * p)));
                        VI sc_hi = vu8x8(AT(g, SLM_PACK_K_SC + 8 * (2 * p + 1)));
                        for (int t = 0; t < T; t++)
                                isum[t] = vadd32(isum[t], vadd32(vmullo32(lo_acc[t], sc_lo),
                                                                 vmullo32(hi_acc[t], sc_hi)));
                }
                VF dw = vscales(AT(g, SLM_PACK_D)), dmin = vscales(AT(g, SLM_PACK_K_DMIN));
                VI m[4];
                for (int p = 0; p < 4; p++)
                        m[p] = vu8x16(AT(g, SLM_PACK_K_M + 16 * p));
                for (int t = 0; t < T; t++) {
                        const SlmBlockQ8KS *xb = XROW(SlmBlockQ8KS, x, xs, t, b);
                        VI msum = vzero();
                        for (int p = 0; p < 4; p++)
                                msum = vadd32(
                                    msum,
                                    vmadd16(m[p], vbcast4((const int8_t *)(xb->s32 + 2 * p))));
                        VF d = vfset1(xb->d);
                        acc[t] = vfmadd(vcvt(isum[t]), vfmul(dw, d), acc[t]);
                        acc[t] = vfnmadd(vcvt(msum), vfmul(dmin, d), acc[t]);
                }
        }
        for (int t = 0; t < T; t++)
                vfstore(y + t * ys, acc[t]);
}

/* Q6_K: 6-bit weights offset by 32, sixteen int8 scales per block. */
TARGET static ALWAYS_INLINE void SUFFIX(q6_k_tile)(int64_t nb, const uint8_t *g, const void *x,
                                                   size_t xs, int T, float *y, size_t ys)
{
        const VI m4 = vset1_8(0x0f), m3 = vset1_8(3);
        VF acc[TOKENS];

        for (int t = 0; t < T; t++)
                acc[t] = vfzero();
        for (int64_t b = 0; b < nb; b++, g += GROUPS * SLM_PACK_Q6_K_BYTES) {
                SUFFIX(prefetch)(g, GROUPS * SLM_PACK_Q6_K_BYTES, PREFETCH_BLOCKS);
                VI isum[TOKENS];
                for (int t = 0; t < T; t++)
                        isum[t] = vzero();
                for (int h = 0; h < 2; h++)
                        for (int half = 0; half < 2; half++) {
                                VI a[4][TOKENS];
                                for (int i = 0; i < 4; i++)
                                        for (int t = 0; t < T; t++)
                                                a[i][t] = vzero();
                                for (int c = 4 * half; c < 4 * half + 4; c++) {
                                        const uint8_t *o = AT(g, SLM_PACK_Q6_Q + (h * 8 + c) * 96);
                                        VI la = vload(o), lb = vload(o + GROUPS * 32),
                                           hb = vload(o + GROUPS * 64);
                                        VI q[4] = {
                                                vor(vand(la, m4), vslli16(vand(hb, m3), 4)),
                                                vor(vand(lb, m4),
                                                    vslli16(vand(vsrli16(hb, 2), m3), 4)),
                                                vor(vand(vsrli16(la, 4), m4),
                                                    vslli16(vand(vsrli16(hb, 4), m3), 4)),
                                                vor(vand(vsrli16(lb, 4), m4),
                                                    vslli16(vand(vsrli16(hb, 6), m3), 4)),
                                        };
                                        for (int t = 0; t < T; t++) {
                                                const int8_t *yq =
                                                    XROW(SlmBlockQ8KS, x, xs, t, b)->qs + 128 * h +
                                                    4 * c;
                                                for (int i = 0; i < 4; i++)
                                                        a[i][t] = vdpbusd(a[i][t], q[i],
                                                                          vbcast4(yq + 32 * i));
                                        }
                                }
                                for (int i = 0; i < 4; i++) {
                                        int j = 8 * h + 2 * i + half;
                                        VI sc = vi8x8(AT(g, SLM_PACK_Q6_SC + 8 * j));
                                        for (int t = 0; t < T; t++) {
                                                const SlmBlockQ8KS *xb =
                                                    XROW(SlmBlockQ8KS, x, xs, t, b);
                                                VI v = vsub32(a[i][t], vset1_32(xb->c16[j]));
                                                isum[t] = vadd32(isum[t], vmullo32(v, sc));
                                        }
                                }
                        }
                VF dw = vscales(AT(g, SLM_PACK_D));
                for (int t = 0; t < T; t++)
                        acc[t] =
                            vfmadd(vcvt(isum[t]),
                                   vfmul(dw, vfset1(XROW(SlmBlockQ8KS, x, xs, t, b)->d)), acc[t]);
        }
        for (int t = 0; t < T; t++)
                vfstore(y + t * ys, acc[t]);
}

/*
 * F16: eight rows' weight k in 16 bytes; activations are floats already
 * rounded through fp16, so every product is exact in float, as in the
 * reference. Two accumulators per token hide the multiply-add latency
 * when few tokens run.
 */
TARGET static ALWAYS_INLINE void SUFFIX(f16_tile)(int64_t n, const uint8_t *g, const void *x,
                                                  size_t xs, int T, float *y, size_t ys)
{
        VF acc0[TOKENS], acc1[TOKENS];
        int64_t k = 0;

        for (int t = 0; t < T; t++)
                acc0[t] = acc1[t] = vfzero();
        for (; k + 2 <= n; k += 2) {
                VF w0 = vscales(AT(g, SLM_PACK_F16_BYTES * k)),
                   w1 = vscales(AT(g, SLM_PACK_F16_BYTES * (k + 1)));
                for (int t = 0; t < T; t++) {
                        const float *xt = XROW(float, x, xs, t, k);
                        acc0[t] = vfmadd(w0, vfset1(xt[0]), acc0[t]);
                        acc1[t] = vfmadd(w1, vfset1(xt[1]), acc1[t]);
                }
        }
        for (; k < n; k++) {
                VF w0 = vscales(AT(g, SLM_PACK_F16_BYTES * k));
                for (int t = 0; t < T; t++)
                        acc0[t] = vfmadd(w0, vfset1(*XROW(float, x, xs, t, k)), acc0[t]);
        }
        for (int t = 0; t < T; t++)
                vfstore(y + t * ys, vfadd(acc0[t], acc1[t]));
}

#if GROUPS == 2
/*
 * F16 prompts on twice the rows: the pairs at g and g + 2 * gs as two
 * vectors, so every broadcast activation feeds two multiply-adds. With one
 * vector the kernel is bound by its loads, not by the multiply-adds; one
 * chain per token and vector is enough to hide their latency.
 */
TARGET static ALWAYS_INLINE void SUFFIX(f16_tile4)(int64_t n, const uint8_t *g, size_t gs,
                                                   const void *x, size_t xs, int T, float *y,
                                                   size_t ys)
{
        VF acc0[TOKENS], acc1[TOKENS];

        for (int t = 0; t < T; t++)
                acc0[t] = acc1[t] = vfzero();
        for (int64_t k = 0; k < n; k++) {
                VF w0 = vscales(AT(g, SLM_PACK_F16_BYTES * k)),
                   w1 = vscales(AT(g + 2 * gs, SLM_PACK_F16_BYTES * k));
                for (int t = 0; t < T; t++) {
                        VF xv = vfset1(*XROW(float, x, xs, t, k));
                        acc0[t] = vfmadd(w0, xv, acc0[t]);
                        acc1[t] = vfmadd(w1, xv, acc1[t]);
                }
        }
        for (int t = 0; t < T; t++) {
                vfstore(y + t * ys, acc0[t]);
                vfstore(y + t * ys + 16, acc1[t]);
        }
}
#endif

#if GROUPS == 1
/*
 * The activation conversions on 256-bit vectors (once per variant), bit
 * for bit what the portable ones in cpu-pack.c give: the same products,
 * rounded to nearest even by vcvtps2dq as the reference rounds them.
 */
/* The largest |x| of 32 floats, NaNs left out. */
TARGET static ALWAYS_INLINE float SUFFIX(amax32)(const float *x)
{
        const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        __m256 m = _mm256_setzero_ps();
        /* maxps returns its second operand when one is NaN: NaNs are skipped, as by fmaxf */
        for (int i = 0; i < 32; i += 8)
                m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs), m);
        return slm_hmax8(m);
}

/*
 * 32 values of x * scale rounded as the reference's round_even (NaN to 0, the
 * rest clamped to -128..127), as bytes in order; q[4] keeps them as int32.
 */
TARGET static ALWAYS_INLINE void SUFFIX(round32)(const float *x, float scale, int8_t *out,
                                                 __m256i q[4])
{
        const __m256 s = _mm256_set1_ps(scale), lo = _mm256_set1_ps(-128.0f),
                     hi = _mm256_set1_ps(127.0f);
        for (int i = 0; i < 4; i++) {
                /* clamped to -128..127 as floats, NaN to 0, then rounded to nearest even */
                __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), s);
                __m256 c = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
                q[i] = _mm256_and_si256(_mm256_cvtps_epi32(c),
                                        _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_ORD_Q)));
        }
        __m256i b =
            _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out, b);
}

TARGET static ALWAYS_INLINE void SUFFIX(convert_q8s)(int64_t n, const float *x, int32_t k,
                                                     void *dst)
{
        SlmBlockQ8S *out = dst;

        for (int64_t b = 0; b < n / SLM_QK; b++, x += SLM_QK) {
                float amax = SUFFIX(amax32)(x);
                float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
                __m256i q[4];
                out[b].d = _cvtsh_ss(_cvtss_sh(d, 0));
                SUFFIX(round32)(x, id, out[b].qs, q);
                out[b].offset = -k * slm_hsum8_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]),
                                                                    _mm256_add_epi32(q[2], q[3])));
        }
}

TARGET __attribute__((unused)) static void SUFFIX(convert_x_q4_0)(int64_t n, const float *x,
                                                                  void *dst)
{
        SUFFIX(convert_q8s)(n, x, 8, dst);
}

TARGET __attribute__((unused)) static void SUFFIX(convert_x_q8_0)(int64_t n, const float *x,
                                                                  void *dst)
{
        SUFFIX(convert_q8s)(n, x, 128, dst);
}

TARGET __attribute__((unused)) static void SUFFIX(convert_x_q8_ks)(int64_t n, const float *x,
                                                                   void *dst)
{
        SlmBlockQ8KS *out = dst;

        for (int64_t b = 0; b < n / SLM_QK_K; b++, x += SLM_QK_K) {
                float amax = 0.0f, max = 0.0f;
                for (int i = 0; i < SLM_QK_K; i += 32) {
                        float m = SUFFIX(amax32)(x + i);
                        amax = m > amax ? m : amax;
                }
                if (amax == 0.0f) {
                        memset(&out[b], 0, sizeof(out[b]));
                        continue;
                }
                for (int j = 0; j < SLM_QK_K; j++) /* the first value of that size, with its sign */
                        if (fabsf(x[j]) == amax) {
                                max = x[j];
                                break;
                        }
                float iscale = -127.0f / max;
                for (int i = 0; i < SLM_QK_K / 32; i++) {
                        __m256i q[4];
                        SUFFIX(round32)(x + 32 * i, iscale, out[b].qs + 32 * i, q);
                        int s0 = slm_hsum8_i32(_mm256_add_epi32(q[0], q[1]));
                        int s1 = slm_hsum8_i32(_mm256_add_epi32(q[2], q[3]));
                        out[b].c16[2 * i] = 32 * s0;
                        out[b].c16[2 * i + 1] = 32 * s1;
                        out[b].s32[i] = (int16_t)(s0 + s1);
                }
                out[b].d = 1.0f / iscale;
        }
}

TARGET __attribute__((unused)) static void SUFFIX(convert_x_f16)(int64_t n, const float *x,
                                                                 void *dst)
{
        float *out = dst;
        int64_t i = 0;

        for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm256_cvtps_ph(
                                              _mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
        for (; i < n; i++)
                out[i] = _cvtsh_ss(_cvtss_sh(x[i], 0));
}
#endif

/*
 * The entry points: n_tokens in tiles of @tile (TOKENS, or 4), the last tile
 * through a copy of the kernel specialized for its size, @tail the cases
 * from 4 on where tiles are larger.
 *
 * Q6_K keeps a chunk's four sums per token besides the block's sum and the
 * result: with eight tokens they do not fit the 32 registers, and the
 * spills cost more than unpacking the weights again for the next four
 * tokens (from L1: a group's row is a few kilobytes). At eight tokens a
 * 32000-row matrix took 135-148 ns per block of sixteen rows with tiles of
 * eight and 100-108 with tiles of four, one thread on AVX-512 VNNI; Q4_K
 * measured the same either way and keeps its tiles of eight.
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
#define NO_TAIL(call)

#define GEMM_TILED(name, call, tile, tail)                                                         \
        TARGET static void SUFFIX(name)(int64_t n, const void *group, size_t gs, const void *x,    \
                                        size_t xs, int n_tokens, float *y, size_t ys)              \
        {                                                                                          \
                const uint8_t *g = group;                                                          \
                (void)gs; /* only the four-group kernel reads its second pair there */             \
                for (int t0 = 0; t0 < n_tokens; t0 += (tile)) {                                    \
                        const void *xt = (const uint8_t *)x + (size_t)t0 * xs;                     \
                        float *yt = y + (size_t)t0 * ys;                                           \
                        switch (n_tokens - t0 < (tile) ? n_tokens - t0 : (tile)) {                 \
                        case 1:                                                                    \
                                call(1);                                                           \
                                break;                                                             \
                        case 2:                                                                    \
                                call(2);                                                           \
                                break;                                                             \
                        case 3:                                                                    \
                                call(3);                                                           \
                                break;                                                             \
                                tail(call);                                                        \
                        default:                                                                   \
                                call(tile);                                                        \
                                break;                                                             \
                        }                                                                          \
                }                                                                                  \
        }
#define GEMM(name, call)  GEMM_TILED(name, call, TOKENS, TAIL_4_7)
#define GEMM4(name, call) GEMM_TILED(name, call, 4, NO_TAIL)

_Static_assert(TOKENS == 4 || TOKENS == 8, "the tail cases above");

#define CALL_Q4_0(T) SUFFIX(q8s_tile)(n / SLM_QK, g, xt, xs, T, yt, ys, true)
#define CALL_Q8_0(T) SUFFIX(q8s_tile)(n / SLM_QK, g, xt, xs, T, yt, ys, false)
#define CALL_Q4_K(T) SUFFIX(q45_k_tile)(n / SLM_QK_K, g, xt, xs, T, yt, ys, false)
#define CALL_Q5_K(T) SUFFIX(q45_k_tile)(n / SLM_QK_K, g, xt, xs, T, yt, ys, true)
#define CALL_Q6_K(T) SUFFIX(q6_k_tile)(n / SLM_QK_K, g, xt, xs, T, yt, ys)
#define CALL_F16(T)  SUFFIX(f16_tile)(n, g, xt, xs, T, yt, ys)

GEMM(gemm_q4_0, CALL_Q4_0)
GEMM(gemm_q4_k, CALL_Q4_K)
GEMM(gemm_q5_k, CALL_Q5_K)
GEMM4(gemm_q6_k, CALL_Q6_K)
GEMM(gemm_f16, CALL_F16)
#if GROUPS == 2
#define CALL_F16_4(T) SUFFIX(f16_tile4)(n, g, gs, xt, xs, T, yt, ys)
GEMM(gemm4_f16, CALL_F16_4)
#endif
#ifdef HAVE_VNNI
GEMM(gemm_q8_0, CALL_Q8_0)
#endif
