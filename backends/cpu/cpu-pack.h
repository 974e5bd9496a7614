/* SPDX-License-Identifier: MIT */
/*
 * Weights packed for the CPU's integer dot products. Groups of eight rows
 * are interleaved block by block in chunks of four weights, so one 256-bit
 * vector holds the same four columns of eight rows: a dot product against
 * four broadcast activation bytes (vpdpbusd, or maddubs+madd without VNNI)
 * fills one 32-bit lane per row, and the block scales of the eight rows
 * are contiguous. No horizontal sums are needed, and for a prompt each
 * unpacked weight vector is used for several tokens.
 *
 * Activations are converted once per matmul to the kernel's own blocks,
 * with the per-block sums the unsigned weights need precomputed.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "slm-types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_PACK_ROWS 8

/*
 * Q8_0 activations (the same d and qs as slm_quantize_row gives) with d in
 * float and offset = -K * sum(qs), K the offset of the unsigned weights
 * (8 for Q4_0, 128 for Q8_0): a kernel starts a block's integer sum there.
 */
typedef struct {
        float d;
        int32_t offset;
        int8_t qs[SLM_QK];
} SlmBlockQ8S;

/*
 * Q8_K activations (d and qs as slm_quantize_row gives) with 32 times the
 * sum of each 16 (Q6_K's offset) and the sum of each 32 (the K-quant mins).
 */
typedef struct {
        float d;
        int32_t c16[SLM_QK_K / 16];
        int16_t s32[SLM_QK_K / 32];
        int8_t qs[SLM_QK_K];
} SlmBlockQ8KS;

/* The pieces of a packed block a kernel loads: those before @end are @size bytes each. */
typedef struct {
        uint16_t end, size;
} SlmPackPiece;

/* How a weight type is packed, and the activations its kernels read. */
typedef struct {
        /* weights per packed block (32 or 256) and bytes of a block of eight rows */
        int block_size;
        size_t group_block_bytes;
        /* activations: bytes per block of block_size, and the conversion of one row */
        size_t x_block_bytes;
        void (*convert_x)(int64_t n, const float *x, void *dst);
        /* eight rows packed from @rows (row_bytes apart) into @dst */
        void (*pack)(int64_t n, const void *rows, size_t row_bytes, void *dst);
        /* a block's pieces, in order; the last ends at group_block_bytes */
        const SlmPackPiece *pieces;
} SlmPackLayout;

extern const SlmPackLayout slm_pack_layout_q4_0, slm_pack_layout_q8_0, slm_pack_layout_q4_k,
    slm_pack_layout_q5_k, slm_pack_layout_q6_k, slm_pack_layout_f16;

/*
 * Packed groups of eight rows of @n against n_tokens activation rows
 * x_stride bytes apart: y[t * y_stride + r] for r < 8 (gemm: one group),
 * r < 16 (gemm2: one pair) or r < 32 (gemm4: the pairs at group and at
 * group + 2 * gs).
 */
typedef void (*SlmPackGemmFn)(int64_t n, const void *group, size_t gs, const void *x,
                              size_t x_stride, int n_tokens, float *y, size_t y_stride);

typedef struct {
        SlmType type; /* of the weights */
        const char *isa;
        const SlmPackLayout *layout;
        SlmPackGemmFn gemm;
        /*
         * Pairs, on wider vectors; NULL where the instruction set has none.
         * Where there are, a matrix is packed in pairs from its first group
         * and an odd last group alone, which gemm reads.
         */
        SlmPackGemmFn gemm2;
        SlmPackGemmFn gemm4; /* two pairs for prompts, where that measured faster; or NULL */
        /* the layout's activation conversion in this instruction set, with the same result */
        void (*convert_x)(int64_t n, const float *x, void *dst);
} SlmPackKernel;

/*
 * Sixteen rows from @rows packed as a pair for @k: block by block, each
 * piece of the first group's block and then the same piece of the
 * second's, so that a piece at offset o of a group's block lies at 2 * o.
 * The pair takes the bytes of two groups.
 */
void slm_pack_pair(const SlmPackKernel *k, int64_t n, const void *rows, size_t row_bytes,
                   void *dst);

/*
 * The packed kernel for @type on this CPU, NULL where there is none (or
 * SLM_CPU_SIMD asks for the scalar path). SLM_CPU_SIMD=avx2 keeps the
 * AVX2 kernels on a CPU with VNNI.
 */
const SlmPackKernel *slm_cpu_pack_kernel(SlmType type);

/* The kernel of one instruction set ("avx2", "avx512vnni"), if this CPU runs it (for tests). */
const SlmPackKernel *slm_cpu_pack_kernel_isa(SlmType type, const char *isa);

/* The entry of @type in a variant's table, or NULL. */
const SlmPackKernel *slm_pack_find(const SlmPackKernel *table, size_t n, SlmType type);

/* The instruction-set variants, as the template compiles them. */
const SlmPackKernel *slm_cpu_pack_kernels_avx2(SlmType type);
const SlmPackKernel *slm_cpu_pack_kernels_vnni(SlmType type);

/*
 * Where each part of a packed block of eight rows lies, read by the
 * packing in cpu-pack.c and by the kernels alike, and the bytes per block.
 */
#define SLM_PACK_D      0  /* fp16 d[8], every type */
#define SLM_PACK_QS     16 /* Q4_0, Q8_0: the chunks after d */
#define SLM_PACK_K_DMIN 16 /* Q4_K, Q5_K: fp16 dmin[8] */
#define SLM_PACK_K_SC   32 /* sc[sub-block][row] */
#define SLM_PACK_K_M    96 /* m[pair of sub-blocks][row][2] */
#define SLM_PACK_K_QS   160
#define SLM_PACK_Q6_SC  16  /* Q6_K: int8 sc[sub-block][row] */
#define SLM_PACK_Q6_Q   144 /* then 96 bytes per half and chunk: ql, ql + 32, qh */

#define SLM_PACK_Q4_0_BYTES (SLM_PACK_QS + 8 * 16)
#define SLM_PACK_Q8_0_BYTES (SLM_PACK_QS + 8 * 32)
#define SLM_PACK_Q4_K_BYTES (SLM_PACK_K_QS + 8 * 128)
#define SLM_PACK_Q5_K_QH    SLM_PACK_Q4_K_BYTES
#define SLM_PACK_Q5_K_BYTES (SLM_PACK_Q5_K_QH + 8 * 32)
#define SLM_PACK_Q6_K_BYTES (SLM_PACK_Q6_Q + 2 * 8 * 96)
#define SLM_PACK_F16_BYTES  (8 * 2) /* per weight */

#ifdef __cplusplus
}
#endif
