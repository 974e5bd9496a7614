/* SPDX-License-Identifier: MIT */
/* kernels-pack.h on 256-bit vectors: one group of eight rows per vector. */
#include <immintrin.h>
#include <string.h>

#define GROUPS   1
#define VI       __m256i
#define VF       __m256
#define vzero    _mm256_setzero_si256
#define vfzero   _mm256_setzero_ps
#define vset1_8  _mm256_set1_epi8
#define vset1_32 _mm256_set1_epi32
#define vfset1   _mm256_set1_ps
#define vand     _mm256_and_si256
#define vor      _mm256_or_si256
#define vsrli16  _mm256_srli_epi16
#define vslli16  _mm256_slli_epi16
#define vadd32   _mm256_add_epi32
#define vsub32   _mm256_sub_epi32
#define vmullo32 _mm256_mullo_epi32
#define vmadd16  _mm256_madd_epi16
#define vcvt     _mm256_cvtepi32_ps
#define vfmadd   _mm256_fmadd_ps
#define vfnmadd  _mm256_fnmadd_ps
#define vfmul    _mm256_mul_ps
#define vfadd    _mm256_add_ps
#define vfstore  _mm256_storeu_ps

TARGET static inline __m256i SUFFIX(bcast4)(const int8_t *p)
{
        int32_t v;
        memcpy(&v, p, 4);
        return _mm256_set1_epi32(v);
}

TARGET static inline __m256i SUFFIX(load)(const uint8_t *p)
{
        return _mm256_loadu_si256((const __m256i *)p);
}

TARGET static inline __m256 SUFFIX(scales)(const uint8_t *p)
{
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

TARGET static inline __m256i SUFFIX(u8x8)(const uint8_t *p)
{
        return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

TARGET static inline __m256i SUFFIX(i8x8)(const uint8_t *p)
{
        return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

TARGET static inline __m256i SUFFIX(u8x16)(const uint8_t *p)
{
        return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
}

#define vbcast4 SUFFIX(bcast4)
#define vload   SUFFIX(load)
#define vscales SUFFIX(scales)
#define vu8x8   SUFFIX(u8x8)
#define vi8x8   SUFFIX(i8x8)
#define vu8x16  SUFFIX(u8x16)
