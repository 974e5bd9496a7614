/* SPDX-License-Identifier: MIT */
/* Pieces shared inside the CPU backend. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "slm-types.h"

/* GELU (tanh form) as the reference computes it: through an fp16 table. */
float slm_cpu_gelu(float x);

/* One head's slice of the KV cache rows: data at its first position, stride bytes apart. */
typedef struct {
        SlmType type; /* F32, F16 or Q8_0 */
        const uint8_t *data;
        size_t stride;
} SlmKvRows;

/* Bytes of scratch slm_cpu_attention_head needs for a head of @head_dim: q in a dot type. */
#define SLM_ATTN_SCRATCH(head_dim) ((size_t)(head_dim) * sizeof(float))

/*
 * One head of causal attention: softmax(scale * q·k_j) over j < n_kv,
 * weighted sum of v_j into out (head_dim). q is first converted to the
 * keys' dot type, as the weight kernels take it; the values go through
 * the row-sum kernel of their type. scores has room for n_kv floats,
 * scratch for SLM_ATTN_SCRATCH(head_dim) bytes.
 */
void slm_cpu_attention_head(const float *q, const SlmKvRows *k, const SlmKvRows *v, int n_kv,
                            int head_dim, float scale, float *scores, void *scratch, float *out);
