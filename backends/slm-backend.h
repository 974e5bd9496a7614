/* SPDX-License-Identifier: MIT */
/*
 * The backend interface: the ops of one forward pass.
 *
 * A backend is a static const table of function pointers (SlmBackendOps)
 * plus its own state behind SlmBackend. The engine calls only the
 * slm_backend_* and slm_tensor_* wrappers below.
 *
 * Activations are SlmTensors the backend allocates: row-major floats, a
 * batch of n_tokens rows. Weights are SlmMatrix views of n_out rows of
 * n_in elements each, in any type of slm-types.h, in host memory.
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

/* The most matrices one fused op takes (q, k and v). */
#define SLM_MAX_FUSED 3

/*
 * A buffer of n elements owned by a backend. data points at host memory
 * on the CPU backend and is NULL where the backend keeps the buffer on a
 * device: there slm_backend_write/read are the only way in and out.
 *
 * Activations are F32. A KV cache may be held in F16 or Q8_0
 * (slm_tensor_new_typed): copy converts rows into it, attention reads it,
 * and no other op takes it.
 */
typedef struct {
        size_t n;
        float *data;  /* F32 elements; the raw rows of other types */
        SlmType type; /* last, so that { n, data } is an F32 tensor */
} SlmTensor;

/* One sequence in attention: its queries in rows row0.. of q and out, at positions pos0.., and
 * its cache. */
typedef struct {
        int64_t row0, n_tokens;
        int32_t pos0;
        SlmTensor *k, *v;
} SlmAttnSeg;

/* The input of a fused op: n_tokens rows of x, each normalized as rmsnorm does with @weight. */
typedef struct {
        SlmTensor *x;
        const float *weight;
        float eps;
        int64_t n_tokens;
} SlmNormInput;

/*
 * Every op slot is required but the fused ones at the end. A device
 * backend may queue ops and run them later, in order; read waits for
 * everything queued before it. Weights
 * (SlmMatrix data, norm and bias vectors) are host pointers: a device
 * backend copies each to the device on first use and keeps the copy until
 * release_weights, which the owner calls before freeing the model.
 */
typedef struct {
        const char *name;
        void (*free)(SlmBackend *b);
        /* Number of worker threads to use from now on (>= 1). */
        int (*set_threads)(SlmBackend *b, int n_threads);
        /* Whether matmul runs weights of @type on this backend's own kernels. */
        bool (*supports_type)(SlmBackend *b, SlmType type);
        /* A one-line description of the device for status output. */
        const char *(*device_name)(SlmBackend *b);
        void (*release_weights)(SlmBackend *b);

        /* -EOPNOTSUPP for a type the backend does not hold */
        int (*tensor_new)(SlmBackend *b, SlmType type, size_t n, SlmTensor **ret);
        void (*tensor_free)(SlmBackend *b, SlmTensor *t);
        int (*write)(SlmBackend *b, SlmTensor *t, size_t off, const float *src, size_t n);
        int (*read)(SlmBackend *b, SlmTensor *t, size_t off, float *dst, size_t n);

        /* y[t] = scale * row ids[t] of w, dequantized. */
        int (*get_rows)(SlmBackend *b, const SlmMatrix *w, const int32_t *ids, int64_t n_ids,
                        float scale, SlmTensor *y);
        /* y[t][o] = sum_i w[o][i] * x[t][i], t < n_tokens; y is (n_tokens, n_out). */
        int (*matmul)(SlmBackend *b, const SlmMatrix *w, SlmTensor *x, int64_t n_tokens,
                      SlmTensor *y);
        /* y[t] = x[t] / rms(x[t]) * weight, rows of n. */
        int (*rmsnorm)(SlmBackend *b, SlmTensor *x, const float *weight, int64_t n, int64_t n_rows,
                       float eps, SlmTensor *y);
        /* Rotate the first n_rot dims of each head of rows row0.. row0 + n_tokens - 1 of x
         * (rows of n_head * head_dim) for positions pos0, pos0 + 1, ... */
        int (*rope)(SlmBackend *b, SlmTensor *x, int64_t row0, int64_t n_tokens, int n_head,
                    int head_dim, int32_t pos0, const SlmRopeParams *p);
        /*
         * Causal attention, for each of the n_segs sequences, of its n_tokens
         * queries in rows row0.. of q, at positions pos0.., over its cache
         * rows 0..pos0+t (k, v: one row of n_head_kv * head_dim per
         * position, in the cache's type), into the same rows of out; q and
         * out rows are n_head * head_dim. A batch of several sequences runs
         * this once over all of them.
         */
        int (*attention)(SlmBackend *b, SlmTensor *q, const SlmAttnSeg *segs, int n_segs,
                         const SlmAttnParams *p, SlmTensor *out);
        /* y = act(gate) * up, n elements. */
        int (*glu)(SlmBackend *b, SlmAct act, SlmTensor *gate, SlmTensor *up, int64_t n,
                   SlmTensor *y);
        /* x[r][i] = x[r][i] * scale + (y ? y[r][i] : 0) + (bias ? bias[i] : 0), rows of n. */
        int (*add)(SlmBackend *b, SlmTensor *x, SlmTensor *y, const float *bias, float scale,
                   int64_t n, int64_t n_rows);
        /* dst[dst_off + r * dst_stride + i] = src[src_off + r * src_stride + i], i < n;
         * converted to dst's type (rows of whole blocks, offsets on block boundaries). */
        int (*copy)(SlmBackend *b, SlmTensor *src, size_t src_off, size_t src_stride,
                    SlmTensor *dst, size_t dst_off, size_t dst_stride, size_t n, size_t n_rows);
        /* The index of the largest of the first n elements (the first one on ties). */
        int (*argmax)(SlmBackend *b, SlmTensor *x, int64_t n, int32_t *ret);
        /* dst's first n elements = src's, both of one type (a KV cache's rows into another's). */
        int (*copy_prefix)(SlmBackend *b, SlmTensor *src, SlmTensor *dst, size_t n);

        /*
         * Fused ops, each what the plain ops in its comment give, bit for
         * bit; NULL where a backend has none (the wrappers then run the
         * plain ops). They save the normalized rows' round trip through
         * memory, convert them once for every matrix, and run everything
         * in one hand-over to the threads.
         *
         * y[j] = w[j] · rmsnorm(x) for j < n_w: rmsnorm then n_w matmuls.
         */
        int (*norm_matmul)(SlmBackend *b, const SlmNormInput *in, int n_w,
                           const SlmMatrix *const *w, SlmTensor *const *y);
        /* y = act(gate · rmsnorm(x)) * (up · rmsnorm(x)): rmsnorm, two matmuls, glu. */
        int (*norm_matmul_glu)(SlmBackend *b, const SlmNormInput *in, SlmAct act,
                               const SlmMatrix *gate, const SlmMatrix *up, SlmTensor *y);
} SlmBackendOps;

struct SlmBackend {
        const SlmBackendOps *ops;
};

/*
 * Names accepted by slm_backend_new: "cpu", "vulkan" (where built) and
 * "auto", the best one that works here: Vulkan on a usable device, else
 * the CPU. SLM_BACKEND in the environment overrides "auto".
 */
int slm_backend_new(const char *name, int n_threads, SlmBackend **ret_backend);
SlmBackend *slm_backend_free(SlmBackend *b);
const char *slm_backend_name(const SlmBackend *b);
const char *slm_backend_device_name(SlmBackend *b);
int slm_backend_set_threads(SlmBackend *b, int n_threads);
bool slm_backend_supports_type(SlmBackend *b, SlmType type);
void slm_backend_release_weights(SlmBackend *b);

int slm_tensor_new(SlmBackend *b, size_t n, SlmTensor **ret);
/*
 * A tensor of @type for a KV cache: F32, F16 or Q8_0 (n a multiple of its
 * 32-element blocks). -EOPNOTSUPP where the backend does not hold @type.
 */
int slm_tensor_new_typed(SlmBackend *b, SlmType type, size_t n, SlmTensor **ret);
SlmTensor *slm_tensor_free(SlmBackend *b, SlmTensor *t);
int slm_tensor_write(SlmBackend *b, SlmTensor *t, size_t off, const float *src, size_t n);
int slm_tensor_read(SlmBackend *b, SlmTensor *t, size_t off, float *dst, size_t n);

int slm_backend_get_rows(SlmBackend *b, const SlmMatrix *w, const int32_t *ids, int64_t n_ids,
                         float scale, SlmTensor *y);
int slm_backend_matmul(SlmBackend *b, const SlmMatrix *w, SlmTensor *x, int64_t n_tokens,
                       SlmTensor *y);
int slm_backend_rmsnorm(SlmBackend *b, SlmTensor *x, const float *weight, int64_t n, int64_t n_rows,
                        float eps, SlmTensor *y);
int slm_backend_rope(SlmBackend *b, SlmTensor *x, int64_t row0, int64_t n_tokens, int n_head,
                     int head_dim, int32_t pos0, const SlmRopeParams *p);
int slm_backend_attention(SlmBackend *b, SlmTensor *q, int64_t row0, SlmTensor *k, SlmTensor *v,
                          int64_t n_tokens, int32_t pos0, const SlmAttnParams *p, SlmTensor *out);
/* The same for several sequences at once, each with its own rows and cache. */
int slm_backend_attention_segs(SlmBackend *b, SlmTensor *q, const SlmAttnSeg *segs, int n_segs,
                               const SlmAttnParams *p, SlmTensor *out);
int slm_backend_glu(SlmBackend *b, SlmAct act, SlmTensor *gate, SlmTensor *up, int64_t n,
                    SlmTensor *y);
int slm_backend_add(SlmBackend *b, SlmTensor *x, SlmTensor *y, const float *bias, float scale,
                    int64_t n, int64_t n_rows);
int slm_backend_copy(SlmBackend *b, SlmTensor *src, size_t src_off, size_t src_stride,
                     SlmTensor *dst, size_t dst_off, size_t dst_stride, size_t n, size_t n_rows);
int slm_backend_argmax(SlmBackend *b, SlmTensor *x, int64_t n, int32_t *ret);
/* -EINVAL unless src and dst are of one type, hold n elements and n is whole blocks. */
int slm_backend_copy_prefix(SlmBackend *b, SlmTensor *src, SlmTensor *dst, size_t n);

/*
 * The fused ops, on every backend: where one has no fused op, the plain
 * ones run through the scratch tensors, of n_tokens rows of the matrices'
 * n_in (@xn) and n_out (@up_out). 1 <= n_w <= SLM_MAX_FUSED; the matrices
 * of one op share n_in, gate and up their shape too; no y is x.
 */
int slm_backend_norm_matmul(SlmBackend *b, const SlmNormInput *in, int n_w,
                            const SlmMatrix *const *w, SlmTensor *const *y, SlmTensor *xn);
int slm_backend_norm_matmul_glu(SlmBackend *b, const SlmNormInput *in, SlmAct act,
                                const SlmMatrix *gate, const SlmMatrix *up, SlmTensor *y,
                                SlmTensor *xn, SlmTensor *up_out);

/*
 * The CPU backend; the others fall back to it. Matrices of the types with
 * packed kernels are packed on first use into anonymous memory, which
 * release_weights frees; SLM_CPU_PACK=0 keeps every matrix in its rows.
 */
int slm_backend_cpu_new(int n_threads, SlmBackend **ret_backend);
/* Bytes of packed weights a CPU backend holds. */
size_t slm_backend_cpu_packed_bytes(SlmBackend *cpu);
/*
 * The Vulkan backend on the best device (discrete > integrated > virtual >
 * CPU; SLM_VULKAN_DEVICE=N or a name fragment picks one): -ENODEV when no
 * usable device exists, when it is not built, or when the only devices are
 * CPUs and @allow_cpu_device is false.
 */
int slm_backend_vulkan_new(int n_threads, bool allow_cpu_device, SlmBackend **ret_backend);

/* The CPU backend's matrix product on host arrays (also the other backends' fallback). */
int slm_cpu_matmul(SlmBackend *cpu, const SlmMatrix *w, const float *x, int64_t n_tokens, float *y);

/* CPU reference ops, single-threaded. */
void slm_cpu_rmsnorm(const float *x, const float *weight, int64_t n, int64_t n_rows, float eps,
                     float *y);
void slm_cpu_rope(float *x, int64_t n_tokens, int n_head, int head_dim, const int32_t *pos,
                  const SlmRopeParams *p);
void slm_cpu_glu(SlmAct act, const float *gate, const float *up, int64_t n, float *y);

#ifdef __cplusplus
}
#endif
