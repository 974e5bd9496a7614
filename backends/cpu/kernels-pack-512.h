/* SPDX-License-Identifier: MIT */
/*
 * kernels-pack.h on 512-bit vectors: a pair of groups of eight rows per
 * vector (slm_pack_pair), the first in the low half; their outputs are
 * contiguous. Each piece of the pair is one load.
 */
#include <immintrin.h>
#include <string.h>

#define GROUPS   2
#define VI       __m512i
#define VF       __m512
#define vzero    _mm512_setzero_si512
#define vfzero   _mm512_setzero_ps
#define vset1_8  _mm512_set1_epi8
#define vset1_32 _mm512_set1_epi32
#define vfset1   _mm512_set1_ps
#define vand     _mm512_and_si512
#define vor      _mm512_or_si512
#define vsrli16  _mm512_srli_epi16
#define vslli16  _mm512_slli_epi16
#define vadd32   _mm512_add_epi32
#define vsub32   _mm512_sub_epi32
#define vmullo32 _mm512_mullo_epi32
#define vmadd16  _mm512_madd_epi16
#define vcvt     _mm512_cvtepi32_ps
#define vfmadd   _mm512_fmadd_ps
#define vfnmadd  _mm512_fnmadd_ps
#define vfmul    _mm512_mul_ps
#define vfadd    _mm512_add_ps
#define vfstore  _mm512_storeu_ps

TARGET static inline __m512i SUFFIX(bcast4)(const int8_t *p)
{
        int32_t v;
        memcpy(&v, p, 4);
        return _mm512_set1_epi32(v);
}

TARGET static inline __m512i SUFFIX(load)(const uint8_t *p)
{
        return _mm512_loadu_si512(p);
}

TARGET static inline __m512 SUFFIX(scales)(const uint8_t *p)
{
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

TARGET static inline __m512i SUFFIX(u8x8)(const uint8_t *p)
{
        return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
}

TARGET static inline __m512i SUFFIX(i8x8)(const uint8_t *p)
{
        return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p));
}

TARGET static inline __m512i SUFFIX(u8x16)(const uint8_t *p)
{
        return _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)p));
}

#define vbcast4 SUFFIX(bcast4)
#define vload   SUFFIX(load)
#define vscales SUFFIX(scales)
#define vu8x8   SUFFIX(u8x8)
#define vi8x8   SUFFIX(i8x8)
#define vu8x16  SUFFIX(u8x16)
