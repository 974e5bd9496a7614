/* SPDX-License-Identifier: MIT */
/*
 * Horizontal reductions of AVX2 vectors, shared by the kernel files. They
 * carry the AVX2 target themselves, so kernels built for a wider target
 * inline them too.
 */
#pragma once

#include <immintrin.h>

#define SLM_AVX2 __attribute__((target("avx2,fma,f16c")))

SLM_AVX2 static inline float slm_hsum8(__m256 v)
{
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
}

SLM_AVX2 static inline int slm_hsum8_i32(__m256i v)
{
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
        return _mm_cvtsi128_si32(s);
}

SLM_AVX2 static inline float slm_hmax8(__m256 v)
{
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        return _mm_cvtss_f32(m);
}
