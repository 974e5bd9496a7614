/* SPDX-License-Identifier: MIT */
/*
 * The packed-weight kernels for AVX2 without VNNI: a four-byte dot product
 * is maddubs then madd. Weights stay below 64, so maddubs never saturates;
 * Q8_0 (unsigned bytes up to 255) would, and runs one row at a time here.
 */
#include "cpu-kernels.h"
#include "cpu-pack.h"

#if defined(__x86_64__) && defined(__GNUC__)

#define TARGET    __attribute__((target("avx2,fma,f16c")))
#define SUFFIX(n) n##_avx2
#define TOKENS    4

#include "kernels-pack-256.h"

TARGET static inline __m256i dpbusd_avx2(__m256i acc, __m256i u, __m256i s)
{
        return _mm256_add_epi32(
            acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
#define vdpbusd dpbusd_avx2

#include "kernels-pack.h"

static const SlmPackKernel kernels[] = {
        { SLM_TYPE_Q4_0, "avx2", &slm_pack_layout_q4_0, gemm_q4_0_avx2, NULL, NULL,
          convert_x_q4_0_avx2 },
        { SLM_TYPE_Q4_K, "avx2", &slm_pack_layout_q4_k, gemm_q4_k_avx2, NULL, NULL,
          convert_x_q8_ks_avx2 },
        { SLM_TYPE_Q5_K, "avx2", &slm_pack_layout_q5_k, gemm_q5_k_avx2, NULL, NULL,
          convert_x_q8_ks_avx2 },
        { SLM_TYPE_Q6_K, "avx2", &slm_pack_layout_q6_k, gemm_q6_k_avx2, NULL, NULL,
          convert_x_q8_ks_avx2 },
        { SLM_TYPE_F16, "avx2", &slm_pack_layout_f16, gemm_f16_avx2, NULL, NULL,
          convert_x_f16_avx2 },
};

const SlmPackKernel *slm_cpu_pack_kernels_avx2(SlmType type)
{
        return slm_cpu_have_avx2()
                   ? slm_pack_find(kernels, sizeof(kernels) / sizeof(kernels[0]), type)
                   : NULL;
}

#else

const SlmPackKernel *slm_cpu_pack_kernels_avx2(SlmType type)
{
        (void)type;
        return NULL;
}

#endif
