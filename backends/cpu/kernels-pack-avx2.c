/* SPDX-License-Identifier: MIT */
/*
 * The packed-weight kernels for AVX2 without VNNI: a four-byte dot product
 * is maddubs then madd. Weights stay below 64, so maddubs never saturates;
 * Q8_0 (unsigned bytes up to 255) would, and runs one row at a time here.
 */
#include "cpu-kernels.h"
#include "cpu-pack.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

#define TARGET    __attribute__((target("avx2,fma,f16c")))
#define ISA       "avx2"
#define SUFFIX(n) n##_avx2
#define TOKENS    4

TARGET static inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s)
{
        return _mm256_add_epi32(
            acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

#include "kernels-pack.h"

const SlmPackKernel *slm_cpu_pack_kernels_avx2(SlmType type)
{
        return slm_cpu_have_avx2() ? find_avx2(type) : NULL;
}

#else

const SlmPackKernel *slm_cpu_pack_kernels_avx2(SlmType type)
{
        (void)type;
        return NULL;
}

#endif
