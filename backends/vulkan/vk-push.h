/* SPDX-License-Identifier: MIT */
/*
 * Push constants, field for field the `Push` blocks of the shaders in
 * shaders/ (std430-like: 4-byte scalars, no padding). A change on one side
 * must be made on the other; the sizes are asserted here.
 */
#pragma once

#include <stdint.h>

typedef struct {
        uint32_t n_in, row_bytes, n_rows, row0, n_out, n_tokens;
} VkPushMatmul; /* matmul.comp */

typedef struct {
        uint32_t n_in, row_bytes, n_rows, row0, n_ids;
        float scale;
} VkPushGetRows; /* get_rows.comp */

typedef struct {
        uint32_t n;
        float eps;
} VkPushRmsnorm; /* rmsnorm.comp */

typedef struct {
        uint32_t n_tokens, n_head, head_dim, n_pairs, pos0, neox;
        float theta_scale, freq_scale;
        uint32_t row0;
} VkPushRope; /* rope.comp */

typedef struct {
        uint32_t pos0, n_head, n_head_kv, head_dim, n_swa;
        float scale;
        uint32_t row0;
} VkPushAttention; /* attention.comp */

typedef struct {
        uint32_t n, gelu;
} VkPushGlu; /* glu.comp */

typedef struct {
        uint32_t n, total;
        float scale;
        uint32_t has_y, has_bias;
} VkPushAdd; /* add.comp */

typedef struct {
        uint32_t src_off, src_stride, dst_off, dst_stride, n, total;
} VkPushCopy; /* copy.comp */

typedef struct {
        uint32_t n;
} VkPushArgmax; /* argmax.comp */

_Static_assert(sizeof(VkPushMatmul) == 24, "matmul.comp push constants");
_Static_assert(sizeof(VkPushGetRows) == 24, "get_rows.comp push constants");
_Static_assert(sizeof(VkPushRmsnorm) == 8, "rmsnorm.comp push constants");
_Static_assert(sizeof(VkPushRope) == 36, "rope.comp push constants");
_Static_assert(sizeof(VkPushAttention) == 28, "attention.comp push constants");
_Static_assert(sizeof(VkPushGlu) == 8, "glu.comp push constants");
_Static_assert(sizeof(VkPushAdd) == 20, "add.comp push constants");
_Static_assert(sizeof(VkPushCopy) == 24, "copy.comp push constants");
_Static_assert(sizeof(VkPushArgmax) == 4, "argmax.comp push constants");
