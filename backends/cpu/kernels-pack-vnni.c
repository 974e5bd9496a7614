/* SPDX-License-Identifier: MIT */
/*
 * The packed-weight kernels with AVX-512 VNNI on 256-bit vectors: vpdpbusd
 * does a four-byte dot product in one instruction, and the 32 vector
 * registers of AVX-512 keep eight tokens' accumulators.
 */
#include "cpu-kernels.h"
#include "cpu-pack.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

#define TARGET    __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define ISA       "avx512vnni"
#define SUFFIX(n) n##_vnni
#define TOKENS    8
#define HAVE_VNNI 1

TARGET static inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s)
{
        return _mm256_dpbusd_epi32(acc, u, s);
}

#include "kernels-pack.h"

const SlmPackKernel *slm_cpu_pack_kernels_vnni(SlmType type)
{
        return slm_cpu_have_avx512vnni() ? find_vnni(type) : NULL;
}

#else

const SlmPackKernel *slm_cpu_pack_kernels_vnni(SlmType type)
{
        (void)type;
        return NULL;
}

#endif
