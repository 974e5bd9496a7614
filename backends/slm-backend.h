/* SPDX-License-Identifier: MIT */
/*
 * The backend interface: the ops of one forward pass.
 *
 * A backend is a static const table of function pointers (SlmBackendOps)
 * plus its own state behind SlmBackend. The engine calls only the
 * slm_backend_* wrappers below. Optional slots may be NULL: the wrapper
 * then runs the CPU reference implementation, which is how an op a
 * device cannot run falls back to the CPU.
 *
 * Activations are row-major float arrays in host memory: a batch of
 * n_tokens rows. Weights are SlmMatrix views of n_out rows of n_in
 * elements each, in any type of slm-types.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slm-types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
        SLM_ACT_SILU,
        SLM_ACT_GELU, /* tanh form */
} SlmAct;

typedef enum {
        SLM_ROPE_NORM, /* rotate adjacent pairs (0,1), (2,3), ... (llama) */
        SLM_ROPE_NEOX, /* rotate (i, i + n_rot/2) (phi3, gemma, qwen2) */
} SlmRopeMode;

/* A weight matrix: n_out rows of n_in elements; (n_in, n_out) in GGUF order. */
typedef struct {
        SlmType type;
        int64_t n_in;
        int64_t n_out;
        size_t row_bytes;
        const void *data;
} SlmMatrix;

typedef struct {
        int n_rot;        /* rotated dimensions per head (<= head_dim, even) */
        float freq_base;  /* rope.freq_base */
        float freq_scale; /* 1 / linear scaling factor */
        SlmRopeMode mode;
} SlmRopeParams;

typedef struct {
        int n_head;
        int n_head_kv; /* divides n_head: GQA when smaller, MQA when 1 */
        int head_dim;
        float scale; /* applied to q·k before the softmax */
        int n_swa;   /* sliding window: attend only to the last n_swa positions; 0 = all */
} SlmAttnParams;

typedef struct SlmBackend SlmBackend;

typedef struct {
        const char *name;
        void (*free)(SlmBackend *b);
        /* Number of worker threads to use from now on (>= 1). */
        int (*set_threads)(SlmBackend *b, int n_threads);
        /* Whether matmul runs weights of @type on this backend. */
        bool (*supports_type)(SlmBackend *b, SlmType type);

        /* y[t][o] = sum_i w[o][i] * x[t][i], t < n_tokens; y is (n_tokens, n_out). */
        int (*matmul)(SlmBackend *b, const SlmMatrix *w, const float *x, int64_t n_tokens,
                      float *y);
        /* y[t] = x[t] / rms(x[t]) * weight, rows of n. */
        void (*rmsnorm)(SlmBackend *b, const float *x, const float *weight, int64_t n,
                        int64_t n_rows, float eps, float *y);
        /* Rotate the first n_rot dims of each head of x (n_tokens rows of n_head * head_dim). */
        void (*rope)(SlmBackend *b, float *x, int64_t n_tokens, int n_head, int head_dim,
                     const int32_t *pos, const SlmRopeParams *p);
        /*
         * Causal attention of n_tokens queries at positions pos0.. over the
         * cache rows 0..pos0+t (k, v: one row of n_head_kv * head_dim per
         * position); out is (n_tokens, n_head * head_dim).
         */
        int (*attention)(SlmBackend *b, const float *q, const float *k, const float *v,
                         int64_t n_tokens, int32_t pos0, const SlmAttnParams *p, float *out);
        /* y = act(gate) * up, n elements. */
        void (*glu)(SlmBackend *b, SlmAct act, const float *gate, const float *up, int64_t n,
                    float *y);
} SlmBackendOps;

struct SlmBackend {
        const SlmBackendOps *ops;
};

/* Names accepted by slm_backend_new: "cpu", and "auto" for the best one built. */
int slm_backend_new(const char *name, int n_threads, SlmBackend **ret_backend);
SlmBackend *slm_backend_free(SlmBackend *b);
const char *slm_backend_name(const SlmBackend *b);
int slm_backend_set_threads(SlmBackend *b, int n_threads);

int slm_backend_matmul(SlmBackend *b, const SlmMatrix *w, const float *x, int64_t n_tokens,
                       float *y);
void slm_backend_rmsnorm(SlmBackend *b, const float *x, const float *weight, int64_t n,
                         int64_t n_rows, float eps, float *y);
void slm_backend_rope(SlmBackend *b, float *x, int64_t n_tokens, int n_head, int head_dim,
                      const int32_t *pos, const SlmRopeParams *p);
int slm_backend_attention(SlmBackend *b, const float *q, const float *k, const float *v,
                          int64_t n_tokens, int32_t pos0, const SlmAttnParams *p, float *out);
void slm_backend_glu(SlmBackend *b, SlmAct act, const float *gate, const float *up, int64_t n,
                     float *y);

/* The CPU backend; the others fall back to it. */
int slm_backend_cpu_new(int n_threads, SlmBackend **ret_backend);

/* CPU reference ops, single-threaded (the fallbacks of the wrappers above). */
void slm_cpu_rmsnorm(const float *x, const float *weight, int64_t n, int64_t n_rows, float eps,
                     float *y);
void slm_cpu_rope(float *x, int64_t n_tokens, int n_head, int head_dim, const int32_t *pos,
                  const SlmRopeParams *p);
void slm_cpu_glu(SlmAct act, const float *gate, const float *up, int64_t n, float *y);

#ifdef __cplusplus
}
#endif
