/* SPDX-License-Identifier: MIT */
#include "cpu-kernels.h"
#include "cpu-pack.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The scalar reference, one function per type so the table has a uniform shape. */
#define REF(T, NAME)                                                                               \
        static float NAME(int64_t n, const void *w, const void *x)                                 \
        {                                                                                          \
                return slm_vec_dot_ref(T, n, w, x);                                                \
        }
REF(SLM_TYPE_F32, ref_f32)
REF(SLM_TYPE_F16, ref_f16)
REF(SLM_TYPE_BF16, ref_bf16)
REF(SLM_TYPE_Q4_0, ref_q4_0)
REF(SLM_TYPE_Q4_1, ref_q4_1)
REF(SLM_TYPE_Q5_0, ref_q5_0)
REF(SLM_TYPE_Q5_1, ref_q5_1)
REF(SLM_TYPE_Q8_0, ref_q8_0)
REF(SLM_TYPE_Q4_K, ref_q4_k)
REF(SLM_TYPE_Q5_K, ref_q5_k)
REF(SLM_TYPE_Q6_K, ref_q6_k)

static SlmVecDotFn table[SLM_TYPE_COUNT];
static SlmTileDotFn tiles[SLM_TYPE_COUNT];
static const char *simd_name = "scalar";
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
        const char *env = getenv("SLM_CPU_SIMD");
        bool simd = !env || strcmp(env, "scalar") != 0;

        table[SLM_TYPE_F32] = ref_f32;
        table[SLM_TYPE_F16] = ref_f16;
        table[SLM_TYPE_BF16] = ref_bf16;
        table[SLM_TYPE_Q4_0] = ref_q4_0;
        table[SLM_TYPE_Q4_1] = ref_q4_1;
        table[SLM_TYPE_Q5_0] = ref_q5_0;
        table[SLM_TYPE_Q5_1] = ref_q5_1;
        table[SLM_TYPE_Q8_0] = ref_q8_0;
        table[SLM_TYPE_Q4_K] = ref_q4_k;
        table[SLM_TYPE_Q5_K] = ref_q5_k;
        table[SLM_TYPE_Q6_K] = ref_q6_k;
        if (!simd)
                return;
        for (int t = 0; t < SLM_TYPE_COUNT; t++) {
                SlmVecDotFn f = slm_cpu_vec_dot_avx2((SlmType)t);
                if (f && table[t]) {
                        table[t] = f;
                        tiles[t] = slm_cpu_tile_dot_avx2((SlmType)t);
                        simd_name = "avx2";
                }
        }
}

SlmVecDotFn slm_cpu_vec_dot(SlmType type)
{
        pthread_once(&once, init);
        return (unsigned)type < SLM_TYPE_COUNT ? table[type] : NULL;
}

SlmTileDotFn slm_cpu_tile_dot(SlmType type)
{
        pthread_once(&once, init);
        return (unsigned)type < SLM_TYPE_COUNT ? tiles[type] : NULL;
}

const char *slm_cpu_simd_name(void)
{
        const SlmPackKernel *k = slm_cpu_pack_kernel(SLM_TYPE_Q4_0);

        pthread_once(&once, init);
        if (k && strcmp(k->isa, "avx512vnni") == 0)
                return "avx2+avx512vnni";
        return simd_name;
}
