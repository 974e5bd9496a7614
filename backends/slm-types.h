/* SPDX-License-Identifier: MIT */
/*
 * Tensor element types as they are stored in GGUF files.
 *
 * Block-quantized types pack a fixed number of weights (the block size,
 * 32 or 256) into a fixed number of bytes; a row of n weights is n /
 * block_size consecutive blocks, so a row's length must be a multiple of
 * the block size. The layouts are the ones llama.cpp writes:
 *
 *   Q4_0  32 weights: fp16 d, 16 bytes of 4-bit q        x = d * (q - 8)
 *   Q4_1  32 weights: fp16 d, fp16 m, 16 bytes of q      x = d * q + m
 *   Q5_0  32 weights: fp16 d, 32 high bits, 16 bytes     x = d * (q - 16)
 *   Q5_1  32 weights: fp16 d, fp16 m, 32 high bits, 16   x = d * q + m
 *   Q8_0  32 weights: fp16 d, 32 int8                    x = d * q
 *   Q4_K 256 weights in 8 sub-blocks of 32: fp16 d, fp16 dmin, 12 bytes of
 *        6-bit scales and mins, 128 bytes of 4-bit q     x = d*sc*q - dmin*m
 *   Q5_K like Q4_K plus 32 bytes of fifth bits
 *   Q6_K 256 weights in 16 sub-blocks of 16: 128 bytes low 4 bits, 64 bytes
 *        high 2 bits, 16 int8 scales, fp16 d             x = d * sc * (q - 32)
 *
 * Activations are quantized on the fly for integer dot products: Q8_0
 * (and Q8_1, which also carries d * sum(q)) blocks of 32 for the 32-wide
 * types, Q8_K blocks of 256 (float d, 16 partial sums) for the K-quants.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Values are the GGUF on-disk type ids. */
typedef enum {
        SLM_TYPE_F32 = 0,
        SLM_TYPE_F16 = 1,
        SLM_TYPE_Q4_0 = 2,
        SLM_TYPE_Q4_1 = 3,
        SLM_TYPE_Q5_0 = 6,
        SLM_TYPE_Q5_1 = 7,
        SLM_TYPE_Q8_0 = 8,
        SLM_TYPE_Q8_1 = 9,
        SLM_TYPE_Q4_K = 12,
        SLM_TYPE_Q5_K = 13,
        SLM_TYPE_Q6_K = 14,
        SLM_TYPE_Q8_K = 15,
        SLM_TYPE_BF16 = 30,
        SLM_TYPE_COUNT = 31,
} SlmType;

#define SLM_QK           32
#define SLM_QK_K         256
#define SLM_K_SCALE_SIZE 12

typedef uint16_t slm_fp16;
typedef uint16_t slm_bf16;

typedef struct {
        slm_fp16 d;
        uint8_t qs[SLM_QK / 2];
} SlmBlockQ4_0;

typedef struct {
        slm_fp16 d;
        slm_fp16 m;
        uint8_t qs[SLM_QK / 2];
} SlmBlockQ4_1;

typedef struct {
        slm_fp16 d;
        uint8_t qh[4];
        uint8_t qs[SLM_QK / 2];
} SlmBlockQ5_0;

typedef struct {
        slm_fp16 d;
        slm_fp16 m;
        uint8_t qh[4];
        uint8_t qs[SLM_QK / 2];
} SlmBlockQ5_1;

typedef struct {
        slm_fp16 d;
        int8_t qs[SLM_QK];
} SlmBlockQ8_0;

typedef struct {
        slm_fp16 d;
        slm_fp16 s; /* d * sum(qs) */
        int8_t qs[SLM_QK];
} SlmBlockQ8_1;

typedef struct {
        slm_fp16 d;
        slm_fp16 dmin;
        uint8_t scales[SLM_K_SCALE_SIZE];
        uint8_t qs[SLM_QK_K / 2];
} SlmBlockQ4_K;

typedef struct {
        slm_fp16 d;
        slm_fp16 dmin;
        uint8_t scales[SLM_K_SCALE_SIZE];
        uint8_t qh[SLM_QK_K / 8];
        uint8_t qs[SLM_QK_K / 2];
} SlmBlockQ5_K;

typedef struct {
        uint8_t ql[SLM_QK_K / 2];
        uint8_t qh[SLM_QK_K / 4];
        int8_t scales[SLM_QK_K / 16];
        slm_fp16 d;
} SlmBlockQ6_K;

typedef struct {
        float d;
        int8_t qs[SLM_QK_K];
        int16_t bsums[SLM_QK_K / 16]; /* sums of groups of 16 */
} SlmBlockQ8_K;

#ifdef __cplusplus
#define _Static_assert static_assert
#endif
_Static_assert(sizeof(SlmBlockQ4_0) == 18, "Q4_0 layout");
_Static_assert(sizeof(SlmBlockQ4_1) == 20, "Q4_1 layout");
_Static_assert(sizeof(SlmBlockQ5_0) == 22, "Q5_0 layout");
_Static_assert(sizeof(SlmBlockQ5_1) == 24, "Q5_1 layout");
_Static_assert(sizeof(SlmBlockQ8_0) == 34, "Q8_0 layout");
_Static_assert(sizeof(SlmBlockQ8_1) == 36, "Q8_1 layout");
_Static_assert(sizeof(SlmBlockQ4_K) == 144, "Q4_K layout");
_Static_assert(sizeof(SlmBlockQ5_K) == 176, "Q5_K layout");
_Static_assert(sizeof(SlmBlockQ6_K) == 210, "Q6_K layout");
_Static_assert(sizeof(SlmBlockQ8_K) == 292, "Q8_K layout");

typedef struct {
        const char *name;
        uint32_t block_size;  /* weights per block (1 for F32/F16/BF16) */
        uint32_t block_bytes; /* bytes per block */
        bool weight_type;     /* usable as a model weight (Q8_1/Q8_K are not) */
        SlmType dot_type;     /* the type activations are converted to for a dot product */
} SlmTypeTraits;

/* Traits of @type, or NULL for an id this build does not know. */
const SlmTypeTraits *slm_type_traits(uint32_t type);

/* Name of @type ("Q4_K", ...) or "unknown". */
const char *slm_type_name(uint32_t type);

/*
 * Bytes of a row of @n elements of @type into *ret_bytes. -EINVAL when
 * @type is unknown or @n is not a multiple of its block size.
 */
int slm_type_row_bytes(uint32_t type, uint64_t n, uint64_t *ret_bytes);

float slm_fp16_to_fp32(slm_fp16 h);
slm_fp16 slm_fp32_to_fp16(float f); /* round to nearest even */
float slm_bf16_to_fp32(slm_bf16 h);
slm_bf16 slm_fp32_to_bf16(float f); /* round to nearest even */

/* The eight 6-bit scales and mins packed in the 12 scale bytes of a Q4_K/Q5_K block. */
void slm_k_scales(const uint8_t *packed, uint8_t *ret_sc, uint8_t *ret_m);

/* Dequantize one row of @n elements of @type from @src into @dst. */
void slm_dequantize_row(SlmType type, const void *src, float *dst, int64_t n);

/*
 * Convert @n activations to the dot type of a weight type (F16, BF16,
 * Q8_0, Q8_1, Q8_K; F32 is a copy). @n is a multiple of the block size.
 */
void slm_quantize_row(SlmType type, const float *src, void *dst, int64_t n);

/*
 * Quantize weights (writing model files; not a hot path): round to nearest
 * for F16/BF16/Q4_0/Q8_0, and per-sub-block min/max scales for Q4_K, Q5_K
 * and Q6_K. Returns -EINVAL for a type it does not write or a length that is
 * not a multiple of the block size.
 */
int slm_quantize_weights_row(SlmType type, const float *src, void *dst, int64_t n);

/*
 * Reference dot product of one weight row of @n elements of @type with
 * activations already converted to that type's dot type (see
 * slm_quantize_row): integer sums per block, scaled in float. SIMD
 * kernels are tested against these.
 */
float slm_vec_dot_ref(SlmType type, int64_t n, const void *w, const void *x);

#ifdef __cplusplus
}
#endif
