/* SPDX-License-Identifier: MIT */
/*
 * Models: the weights of one GGUF file for one architecture, and contexts
 * that run forward passes over them.
 *
 * An SlmModel is read-only once loaded and can be shared by any number of
 * SlmContexts; each context owns one sequence's KV cache and scratch, and
 * is used by one thread at a time.
 *
 * Architectures: llama (Llama 2, Mistral, TinyLlama, SmolLM), phi3 (fused
 * qkv and gate/up), gemma (MQA, GeGLU, embeddings scaled by sqrt(n_embd),
 * tied output), qwen2 (q/k/v biases).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "slm-backend.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
        SLM_ARCH_LLAMA,
        SLM_ARCH_PHI3,
        SLM_ARCH_GEMMA,
        SLM_ARCH_QWEN2,
        SLM_ARCH_COUNT
} SlmArch;

typedef struct {
        SlmArch arch;
        int n_vocab;
        int n_ctx_train;
        int n_embd;
        int n_layer;
        int n_head;
        int n_head_kv;
        int head_dim; /* per head, for q, k and v */
        int n_ff;
        int n_swa; /* sliding attention window, 0 for none */
        float norm_eps;
        SlmRopeParams rope;
} SlmHParams;

typedef struct SlmModel SlmModel;
typedef struct SlmContext SlmContext;

/* Load the model in @path: validate the file, the architecture and every tensor's shape. */
int slm_model_load(const char *path, SlmModel **ret_model, SlmError *err);
/* The same from a parsed file; the model takes ownership of @gguf on success. */
int slm_model_load_gguf(SlmGguf *gguf, SlmModel **ret_model, SlmError *err);
SlmModel *slm_model_free(SlmModel *m);

const SlmHParams *slm_model_hparams(const SlmModel *m);
const SlmTokenizer *slm_model_tokenizer(const SlmModel *m);
const SlmGguf *slm_model_gguf(const SlmModel *m);
/* The GGUF name of @arch (general.architecture); every arch below SLM_ARCH_COUNT has one. */
const char *slm_arch_name(SlmArch arch);
/* Bytes of weights the model reads per token. */
uint64_t slm_model_weight_bytes(const SlmModel *m);

/* The KV cache type a program uses unless told otherwise: half the bytes of F32. */
#define SLM_KV_TYPE_DEFAULT SLM_TYPE_F16

/* "f32", "f16" or "q8_0" (any case) as a KV cache type; -EINVAL for anything else. */
int slm_kv_type_from_name(const char *name, SlmType *ret);

/*
 * A sequence of up to @n_ctx positions on @backend (which the caller keeps
 * alive), its KV cache in @kv_type: F32, F16 or Q8_0. Where the model or
 * the backend cannot hold that type (Q8_0 needs heads of a multiple of 32;
 * the Vulkan backend holds F32 and F16) the next wider one is used:
 * slm_context_kv_type says which. A context may be freed after its model,
 * but not used.
 */
int slm_context_new(SlmModel *m, SlmBackend *backend, int n_ctx, SlmType kv_type,
                    SlmContext **ret_ctx, SlmError *err);
SlmContext *slm_context_free(SlmContext *ctx);

int slm_context_n_ctx(const SlmContext *ctx);
/* Bytes of the context's KV cache. */
uint64_t slm_context_kv_bytes(const SlmContext *ctx);
/*
 * Bytes of KV cache one position takes in @kv_type on a backend that holds
 * it (Q8_0 widened to F16 where the heads do not allow it, as
 * slm_context_new does); a context of n positions holds n times that. 0
 * for a type no cache holds.
 */
uint64_t slm_model_kv_bytes_per_position(const SlmModel *m, SlmType kv_type);
/* The type the KV cache is held in. */
SlmType slm_context_kv_type(const SlmContext *ctx);
/* Positions already in the KV cache. */
int slm_context_n_past(const SlmContext *ctx);
/* Forget positions from @n_past on (keeping the prefix before it). */
void slm_context_truncate(SlmContext *ctx, int n_past);
/*
 * Make @dst hold the first @n positions of @src (contexts of one model,
 * backend and cache type): their KV rows are copied, not evaluated again,
 * so a candidate continuation can run beside its parent in a batch.
 * -EINVAL for contexts that do not match, -ENOSPC when @n exceeds what
 * @src holds or @dst can.
 */
int slm_context_fork(SlmContext *dst, const SlmContext *src, int n);

/*
 * Run @n tokens at the next positions, in batches; store the logits of
 * the last one in @ret_logits (n_vocab floats) when not NULL. -ENOSPC
 * when they do not fit in the context, -EINVAL for an id out of range.
 */
int slm_context_eval(SlmContext *ctx, const int32_t *ids, int n, float *ret_logits);
/* The same, then the most likely next token, chosen on the backend (greedy decoding). */
int slm_context_eval_greedy(SlmContext *ctx, const int32_t *ids, int n, int32_t *ret_token);

/*
 * A batch: tokens of several sequences (contexts of one model on one
 * backend) run in one forward pass. Every weight matrix is read once for
 * all of them, so a step of decode tokens of many sequences costs little
 * more than one; positions, KV caches and attention stay each sequence's
 * own, and the results are those of evaluating each sequence alone.
 * Decode tokens and prompt chunks mix freely.
 */
#define SLM_BATCH_MAX_TOKENS 512

typedef struct SlmBatch SlmBatch;

typedef struct {
        SlmContext *ctx;    /* its tokens go at its next positions */
        const int32_t *ids; /* n >= 1 of them */
        int n;
        float *logits; /* NULL, or n_vocab floats for the logits after its last token */
} SlmBatchSeq;

/* Room for @max_tokens tokens of up to @max_seqs sequences per pass. */
int slm_batch_new(SlmModel *m, SlmBackend *backend, int max_tokens, int max_seqs,
                  SlmBatch **ret_batch, SlmError *err);
SlmBatch *slm_batch_free(SlmBatch *batch);
int slm_batch_max_tokens(const SlmBatch *batch);
int slm_batch_max_seqs(const SlmBatch *batch);
/*
 * Run @seqs (each context at most once, of the batch's model and
 * backend, tokens in all at most slm_batch_max_tokens). -EINVAL for a bad
 * part, -ENOSPC when a sequence's tokens do not fit in its context; then
 * nothing ran.
 */
int slm_batch_eval(SlmBatch *batch, const SlmBatchSeq *seqs, int n_seqs);

#ifdef __cplusplus
}
#endif
