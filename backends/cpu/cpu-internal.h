/* SPDX-License-Identifier: MIT */
/* Pieces shared inside the CPU backend. */
#pragma once

#include <stdint.h>

/* GELU (tanh form) as the reference computes it: through an fp16 table. */
float slm_cpu_gelu(float x);

/*
 * One head of causal attention: softmax(scale * q·k_j) over j < n_kv,
 * weighted sum of v_j into out (head_dim). k and v rows are kv_stride
 * floats apart; scores has room for n_kv floats.
 */
void slm_cpu_attention_head(const float *q, const float *k, const float *v, int n_kv, int kv_stride,
                            int head_dim, float scale, float *scores, float *out);
