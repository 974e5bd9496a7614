/* SPDX-License-Identifier: MIT */
/*
 * The packed-weight kernels with AVX-512 VNNI: vpdpbusd does a four-byte
 * dot product in one instruction. Compiled twice: on 256-bit vectors (one
 * group of eight rows, for an odd group at the end) and on 512-bit vectors
 * (two groups). The 32 vector registers keep eight tokens' accumulators.
 */
#include "cpu-kernels.h"
#include "cpu-pack.h"

#if defined(__x86_64__) && defined(__GNUC__)

#define TARGET    __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define TOKENS    8
#define HAVE_VNNI 1

#define SUFFIX(n) n##_vnni
#include "kernels-pack-256.h"
#define vdpbusd _mm256_dpbusd_epi32
#include "kernels-pack.h"

#include "kernels-pack-undef.h"

#define SUFFIX(n) n##_vnni512
#include "kernels-pack-512.h"
#define vdpbusd _mm512_dpbusd_epi32
#include "kernels-pack.h"

static const SlmPackKernel kernels[] = {
        { SLM_TYPE_Q4_0, "avx512vnni", &slm_pack_layout_q4_0, gemm_q4_0_vnni, gemm_q4_0_vnni512,
          NULL, convert_x_q4_0_vnni },
        { SLM_TYPE_Q8_0, "avx512vnni", &slm_pack_layout_q8_0, gemm_q8_0_vnni, gemm_q8_0_vnni512,
          NULL, convert_x_q8_0_vnni },
        { SLM_TYPE_Q4_K, "avx512vnni", &slm_pack_layout_q4_k, gemm_q4_k_vnni, gemm_q4_k_vnni512,
          NULL, convert_x_q8_ks_vnni },
        { SLM_TYPE_Q5_K, "avx512vnni", &slm_pack_layout_q5_k, gemm_q5_k_vnni, gemm_q5_k_vnni512,
          NULL, convert_x_q8_ks_vnni },
        { SLM_TYPE_Q6_K, "avx512vnni", &slm_pack_layout_q6_k, gemm_q6_k_vnni, gemm_q6_k_vnni512,
          NULL, convert_x_q8_ks_vnni },
        { SLM_TYPE_F16, "avx512vnni", &slm_pack_layout_f16, gemm_f16_vnni, gemm_f16_vnni512,
          gemm4_f16_vnni512, convert_x_f16_vnni },
};

const SlmPackKernel *slm_cpu_pack_kernels_vnni(SlmType type)
{
        return slm_cpu_have_avx512vnni()
                   ? slm_pack_find(kernels, sizeof(kernels) / sizeof(kernels[0]), type)
                   : NULL;
}

#else

const SlmPackKernel *slm_cpu_pack_kernels_vnni(SlmType type)
{
        (void)type;
        return NULL;
}

#endif
