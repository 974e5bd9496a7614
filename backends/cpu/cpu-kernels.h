/* SPDX-License-Identifier: MIT */
/*
 * Dot-product kernels of the CPU backend, chosen at run time from what the
 * processor supports (CPUID): AVX2 with FMA and F16C where present, else
 * the scalar reference of slm-types.c. SLM_CPU_SIMD=scalar in the
 * environment forces the reference path.
 */
#pragma once

#include <stdint.h>

#include "slm-types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One weight row of @n elements against activations in the type's dot type. */
typedef float (*SlmVecDotFn)(int64_t n, const void *w, const void *x);

/* The fastest kernel for weights of @type. */
SlmVecDotFn slm_cpu_vec_dot(SlmType type);

/* The kernel set in use: "avx2" or "scalar". */
const char *slm_cpu_simd_name(void);

/* The AVX2 kernel for @type, or NULL when there is none or the CPU lacks AVX2 (for tests). */
SlmVecDotFn slm_cpu_vec_dot_avx2(SlmType type);

#ifdef __cplusplus
}
#endif
