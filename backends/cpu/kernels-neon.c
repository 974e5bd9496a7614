/* SPDX-License-Identifier: MIT */
/*
 * The arm64 kernels of kernels-neon.h for every NEON CPU, and the choice
 * between them and the dot-product ones of kernels-neon-dotprod.c by the
 * kernel's HWCAP_ASIMDDP (SLM_CPU_SIMD=neon keeps the plain ones).
 */
#include "cpu-kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__aarch64__) && defined(__GNUC__)

#include <arm_neon.h>
#include <sys/auxv.h>

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

#define NEON_FN(name) name##_neon
#include "kernels-neon.h"

SlmVecDotFn slm_cpu_vec_dot_neon_dotprod(SlmType type);

bool slm_cpu_have_neon_dotprod(void)
{
        const char *env = getenv("SLM_CPU_SIMD");

        if (env && strcmp(env, "neon") == 0)
                return false;
        return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}

SlmVecDotFn slm_cpu_vec_dot_neon(SlmType type)
{
        return slm_cpu_have_neon_dotprod() ? slm_cpu_vec_dot_neon_dotprod(type)
                                           : vec_dot_neon(type);
}

SlmRowSumFn slm_cpu_row_sum_neon(SlmType type)
{
        return row_sum_neon(type); /* float sums: the dot-product extension adds nothing */
}

SlmToF16Fn slm_cpu_to_f16_neon(void)
{
        return to_f16_neon;
}

#else

bool slm_cpu_have_neon_dotprod(void)
{
        return false;
}

SlmVecDotFn slm_cpu_vec_dot_neon(SlmType type)
{
        (void)type;
        return NULL;
}

SlmRowSumFn slm_cpu_row_sum_neon(SlmType type)
{
        (void)type;
        return NULL;
}

SlmToF16Fn slm_cpu_to_f16_neon(void)
{
        return NULL;
}

#endif
