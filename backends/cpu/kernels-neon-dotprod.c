/* SPDX-License-Identifier: MIT */
/* The kernels of kernels-neon.h with sdot, for arm64 CPUs with the dot-product extension. */
#include "cpu-kernels.h"

#if defined(__aarch64__) && defined(__GNUC__)

#pragma GCC target("arch=armv8.2-a+dotprod")

#include <arm_neon.h>

#define SLM_NEON_DOTPROD
#define NEON_FN(name) name##_dotprod
#include "kernels-neon.h"

SlmVecDotFn slm_cpu_vec_dot_neon_dotprod(SlmType type);

SlmVecDotFn slm_cpu_vec_dot_neon_dotprod(SlmType type)
{
        return vec_dot_dotprod(type);
}

#endif
