/* SPDX-License-Identifier: MIT */
/*
 * Dot-product kernels of the CPU backend, chosen at run time from what the
 * processor supports: AVX2 with FMA and F16C where CPUID says so, NEON on
 * arm64 (with sdot where HWCAP says so), else the scalar reference of
 * slm-types.c. SLM_CPU_SIMD=scalar in the environment forces the reference
 * path.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slm-types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One weight row of @n elements against activations in the type's dot type. */
typedef float (*SlmVecDotFn)(int64_t n, const void *w, const void *x);

/*
 * A tile of SLM_TILE_ROWS weight rows (w_stride bytes apart) against
 * SLM_TILE_TOKENS activation rows (x_stride bytes apart), for prompt
 * batches: out[t * out_stride + r].
 */
#define SLM_TILE_ROWS   4
#define SLM_TILE_TOKENS 2
typedef void (*SlmTileDotFn)(int64_t n, const void *w, size_t w_stride, const void *x,
                             size_t x_stride, float *out, size_t out_stride);

/* The tile kernel for weights of @type, NULL where there is none (then one row at a time). */
SlmTileDotFn slm_cpu_tile_dot(SlmType type);
SlmTileDotFn slm_cpu_tile_dot_avx2(SlmType type);

/* The fastest kernel for weights of @type. */
SlmVecDotFn slm_cpu_vec_dot(SlmType type);

/*
 * out[i] = sum_j w[j] * rows[j][i] for i < n, over n_rows rows of a KV
 * cache type (F32, F16, Q8_0; n whole blocks) stride bytes apart: the
 * weighted sum of value rows in attention. out is overwritten.
 */
typedef void (*SlmRowSumFn)(int64_t n, int n_rows, const float *w, const void *rows, size_t stride,
                            float *out);

/*
 * dst[i] = src[i] in half precision, rounded to nearest even: what
 * slm_fp32_to_fp16 gives, NaN payloads aside (an F16 KV cache's rows).
 */
typedef void (*SlmToF16Fn)(int64_t n, const float *src, slm_fp16 *dst);
SlmToF16Fn slm_cpu_to_f16(void);
SlmToF16Fn slm_cpu_to_f16_avx2(void);
SlmToF16Fn slm_cpu_to_f16_neon(void);

/*
 * y[i] = gate[i] / (1 + e^-gate[i]) * up[i], the SiLU-gated product: on
 * AVX2 eight at a time, e^x within two ulps of expf (0 where expf is a
 * denormal), else with expf.
 */
typedef void (*SlmGluFn)(const float *gate, const float *up, int64_t n, float *y);
SlmGluFn slm_cpu_silu_glu(void);
SlmGluFn slm_cpu_silu_glu_avx2(void);

/* slm_quantize_row, with F16 through slm_cpu_to_f16: what the CPU backend converts rows with. */
void slm_cpu_quantize_row(SlmType type, const float *src, void *dst, int64_t n);

/*
 * out[j] = dot(n, keys + j * stride, q) for j < n_keys: a head's attention
 * scores, with the bits of slm_cpu_vec_dot(type)'s dots. So far only AVX2
 * has one, for heads of 8 in F32 and F16 caches; elsewhere NULL, and the
 * dot runs one key at a time.
 */
typedef void (*SlmKeyDotsFn)(int n_keys, const void *keys, size_t stride, const void *q,
                             float *out);
SlmKeyDotsFn slm_cpu_key_dots(SlmType type, int64_t n);
SlmKeyDotsFn slm_cpu_key_dots_8_avx2(SlmType type);

/* The fastest row sum for @type, NULL for a type a KV cache does not take. */
SlmRowSumFn slm_cpu_row_sum(SlmType type);
SlmRowSumFn slm_cpu_row_sum_ref(SlmType type);
SlmRowSumFn slm_cpu_row_sum_avx2(SlmType type);

/*
 * The arm64 kernels (NULL elsewhere): with sdot where the CPU has the
 * dot-product extension, unless SLM_CPU_SIMD=neon.
 */
SlmVecDotFn slm_cpu_vec_dot_neon(SlmType type);
SlmRowSumFn slm_cpu_row_sum_neon(SlmType type);
bool slm_cpu_have_neon_dotprod(void);

/* What this CPU and its OS run (CPUID and XCR0); false off x86-64. */
bool slm_cpu_have_avx2(void);
bool slm_cpu_have_avx512vnni(void);

/*
 * The kernel set in use: "avx2", "avx2+avx512vnni" (the packed kernels),
 * "neon", "neon+dotprod" or "scalar".
 */
const char *slm_cpu_simd_name(void);

/* The AVX2 kernel for @type, or NULL when there is none or the CPU lacks AVX2 (for tests). */
SlmVecDotFn slm_cpu_vec_dot_avx2(SlmType type);

#ifdef __cplusplus
}
#endif
