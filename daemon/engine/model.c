/* SPDX-License-Identifier: MIT */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LAYERS   1024
#define MAX_HEAD_DIM 1024
#define MAX_DIM      (1 << 20)
#define BATCH        64 /* tokens per forward pass when evaluating a prompt */

typedef struct {
        const float *attn_norm;    /* (n_embd) */
        SlmMatrix wq;              /* (n_embd, n_head * head_dim) */
        SlmMatrix wk;              /* (n_embd, n_head_kv * head_dim) */
        SlmMatrix wv;              /* (n_embd, n_head_kv * head_dim) */
        SlmMatrix wqkv;            /* phi3: (n_embd, q + k + v rows) */
        const float *bq, *bk, *bv; /* qwen2 */
        SlmMatrix wo;              /* (n_head * head_dim, n_embd) */
        const float *ffn_norm;     /* (n_embd) */
        SlmMatrix w_gate;          /* (n_embd, n_ff) */
        SlmMatrix w_up;            /* (n_embd, n_ff), phi3: (n_embd, 2 * n_ff) gate rows first */
        SlmMatrix w_down;          /* (n_ff, n_embd) */
} Layer;

struct SlmModel {
        SlmGguf *gguf;
        SlmTokenizer *tk;
        SlmHParams hp;
        SlmMatrix tok_embd;       /* (n_embd, n_vocab) */
        SlmMatrix output;         /* (n_embd, n_vocab), token_embd when tied */
        const float *output_norm; /* (n_embd) */
        Layer *layers;
        float *vectors; /* norms and biases as F32, owned */
        size_t n_vectors_used, n_vectors_cap;
};

/* The activations of one forward pass, on the backend: up to cap tokens, logits for out rows. */
typedef struct {
        int cap, out;
        SlmTensor *x, *xb, *q, *k, *v, *att, *tmp, *up, *hb, *qkv, *logits;
        SlmAttnSeg *attn; /* one for each sequence (as many as out rows) */
} Scratch;

struct SlmContext {
        SlmModel *m;
        SlmBackend *b;
        int n_ctx;
        int n_past;
        int n_layer;         /* a context may be freed after its model */
        SlmType kv_type;     /* what the cache holds: F32, F16 or Q8_0 */
        SlmTensor **k_cache; /* per layer: (n_ctx, n_head_kv * head_dim) */
        SlmTensor **v_cache;
        Scratch s; /* for BATCH tokens of this context alone */
};

struct SlmBatch {
        SlmModel *m;
        SlmBackend *b;
        int max_seqs;
        Scratch s;
        int32_t *ids;   /* every sequence's tokens, one after the other */
        int32_t *rows;  /* the rows whose logits are wanted */
        void *segs;     /* Seg[max_seqs] */
        float **logits; /* where each wanted row goes */
};

/* One sequence's rows of a forward pass. */
typedef struct {
        SlmContext *c;
        int row0, n;
} Seg;

static const char *const arch_names[SLM_ARCH_COUNT] = {
        [SLM_ARCH_LLAMA] = "llama",
        [SLM_ARCH_PHI3] = "phi3",
        [SLM_ARCH_GEMMA] = "gemma",
        [SLM_ARCH_QWEN2] = "qwen2",
};

const char *slm_arch_name(SlmArch arch)
{
        return arch_names[arch];
}

/* ---- hyperparameters ----------------------------------------------------------------------- */

static int get_dim(const SlmGguf *g, const char *arch, const char *key, bool required, int def,
                   int max, int *ret, SlmError *err)
{
        char full[128];
        uint32_t v;
        int r;

        snprintf(full, sizeof(full), "%s.%s", arch, key);
        r = slm_gguf_get_u32(g, full, &v);
        if (r == -ENOENT && !required) {
                *ret = def;
                return 0;
        }
        if (r == -ENOENT)
                return slm_error_set(err, -EINVAL, "%s is missing", full);
        if (r < 0 || v == 0 || v > (uint32_t)max)
                return slm_error_set(err, -EINVAL, "%s is out of range", full);
        *ret = (int)v;
        return 0;
}

static int get_float(const SlmGguf *g, const char *arch, const char *key, float def, float *ret,
                     SlmError *err)
{
        char full[128];
        int r;

        snprintf(full, sizeof(full), "%s.%s", arch, key);
        r = slm_gguf_get_f32(g, full, ret);
        if (r == -ENOENT) {
                *ret = def;
                return 0;
        }
        if (r < 0 || !isfinite(*ret) || *ret <= 0.0f)
                return slm_error_set(err, -EINVAL, "%s is not a positive number", full);
        return 0;
}

static int load_hparams(SlmModel *m, SlmError *err)
{
        const SlmGguf *g = m->gguf;
        SlmHParams *hp = &m->hp;
        SlmGgufStr archs, st;
        char arch[16];
        float factor;
        int r;

        if (slm_gguf_get_str(g, "general.architecture", &archs) < 0)
                return slm_error_set(err, -EINVAL, "general.architecture is missing");
        for (r = 0; r < SLM_ARCH_COUNT; r++)
                if (slm_gguf_str_eq(archs, arch_names[r]))
                        break;
        if (r == SLM_ARCH_COUNT)
                return slm_error_set(err, -ENOTSUP,
                                     "unsupported architecture '%.*s' (supported: llama, phi3, "
                                     "gemma, qwen2)",
                                     (int)(archs.len > 32 ? 32 : archs.len), archs.ptr);
        hp->arch = (SlmArch)r;
        snprintf(arch, sizeof(arch), "%s", arch_names[r]);

        if ((r = get_dim(g, arch, "embedding_length", true, 0, MAX_DIM, &hp->n_embd, err)) < 0 ||
            (r = get_dim(g, arch, "block_count", true, 0, MAX_LAYERS, &hp->n_layer, err)) < 0 ||
            (r = get_dim(g, arch, "feed_forward_length", true, 0, MAX_DIM, &hp->n_ff, err)) < 0 ||
            (r = get_dim(g, arch, "attention.head_count", true, 0, MAX_DIM, &hp->n_head, err)) <
                0 ||
            (r = get_dim(g, arch, "attention.head_count_kv", false, hp->n_head, MAX_DIM,
                         &hp->n_head_kv, err)) < 0 ||
            (r = get_dim(g, arch, "context_length", false, 2048, 1 << 24, &hp->n_ctx_train, err)) <
                0)
                return r;
        if (hp->n_head % hp->n_head_kv)
                return slm_error_set(err, -EINVAL, "%d heads cannot share %d KV heads", hp->n_head,
                                     hp->n_head_kv);
        if (hp->n_embd % hp->n_head && hp->arch != SLM_ARCH_GEMMA)
                return slm_error_set(err, -EINVAL, "n_embd %d is not a multiple of %d heads",
                                     hp->n_embd, hp->n_head);
        r = get_dim(g, arch, "attention.key_length", false, hp->n_embd / hp->n_head, MAX_HEAD_DIM,
                    &hp->head_dim, err);
        if (r < 0)
                return r;
        int vlen;
        r = get_dim(g, arch, "attention.value_length", false, hp->head_dim, MAX_HEAD_DIM, &vlen,
                    err);
        if (r < 0)
                return r;
        if (vlen != hp->head_dim || hp->head_dim % 2)
                return slm_error_set(err, -ENOTSUP, "head sizes k=%d v=%d are not supported",
                                     hp->head_dim, vlen);
        r = get_dim(g, arch, "rope.dimension_count", false, hp->head_dim, hp->head_dim,
                    &hp->rope.n_rot, err);
        if (r < 0)
                return r;
        if (hp->rope.n_rot % 2)
                return slm_error_set(err, -EINVAL, "rope.dimension_count %d is odd",
                                     hp->rope.n_rot);
        r = get_dim(g, arch, "attention.sliding_window", false, 0, 1 << 24, &hp->n_swa, err);
        if (r < 0)
                return r;
        r = get_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->norm_eps, err);
        if (r < 0)
                return r;
        r = get_float(g, arch, "rope.freq_base", 10000.0f, &hp->rope.freq_base, err);
        if (r < 0)
                return r;

        /* linear RoPE scaling: positions divided by the factor */
        hp->rope.freq_scale = 1.0f;
        char key[128];
        snprintf(key, sizeof(key), "%s.rope.scaling.type", arch);
        if (slm_gguf_get_str(g, key, &st) == 0 && !slm_gguf_str_eq(st, "none") &&
            !slm_gguf_str_eq(st, "linear"))
                return slm_error_set(err, -ENOTSUP, "rope scaling '%.*s' is not supported",
                                     (int)(st.len > 32 ? 32 : st.len), st.ptr);
        if (slm_gguf_get_str(g, key, &st) < 0 || slm_gguf_str_eq(st, "linear")) {
                r = get_float(g, arch, "rope.scaling.factor", 0.0f, &factor, err);
                if (r == 0 && factor == 0.0f)
                        r = get_float(g, arch, "rope.scale_linear", 1.0f, &factor, err);
                if (r < 0)
                        return r;
                hp->rope.freq_scale = 1.0f / factor;
        }
        hp->rope.mode = hp->arch == SLM_ARCH_LLAMA ? SLM_ROPE_NORM : SLM_ROPE_NEOX;
        return 0;
}

/* ---- tensors ------------------------------------------------------------------------------- */

static int find_tensor(SlmModel *m, const char *name, int n_dims, int64_t ne0, int64_t ne1,
                       bool required, const SlmGgufTensor **ret, SlmError *err)
{
        const SlmGgufTensor *t = slm_gguf_tensor(m->gguf, name);

        *ret = NULL;
        if (!t)
                return required ? slm_error_set(err, -EINVAL, "tensor '%s' is missing", name) : 0;
        if ((int)t->n_dims != n_dims || (int64_t)t->ne[0] != ne0 ||
            (n_dims > 1 && (int64_t)t->ne[1] != ne1))
                return slm_error_set(
                    err, -EINVAL, "tensor '%s' has shape (%llu, %llu), expected (%lld, %lld)", name,
                    (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (long long)ne0,
                    (long long)(n_dims > 1 ? ne1 : 1));
        *ret = t;
        return 0;
}

static int get_matrix(SlmModel *m, const char *name, int64_t n_in, int64_t n_out, bool required,
                      SlmMatrix *ret, SlmError *err)
{
        const SlmGgufTensor *t;
        int r = find_tensor(m, name, 2, n_in, n_out, required, &t, err);

        if (r < 0 || !t)
                return r;
        ret->type = (SlmType)t->type;
        ret->n_in = n_in;
        ret->n_out = n_out;
        ret->row_bytes = (size_t)(t->n_bytes / (uint64_t)n_out);
        ret->data = t->data;
        return 0;
}

/* Norm weights and biases, converted to F32 into the model's own arena. */
static int get_vector(SlmModel *m, const char *name, int64_t n, bool required, const float **ret,
                      SlmError *err)
{
        const SlmGgufTensor *t;
        int r = find_tensor(m, name, 1, n, 1, required, &t, err);

        *ret = NULL;
        if (r < 0 || !t)
                return r;
        if (m->n_vectors_used + (size_t)n > m->n_vectors_cap)
                return slm_error_set(err, -EINVAL, "too many vector tensors");
        float *dst = m->vectors + m->n_vectors_used;
        slm_dequantize_row((SlmType)t->type, t->data, dst, n);
        m->n_vectors_used += (size_t)n;
        *ret = dst;
        return 0;
}

static int load_tensors(SlmModel *m, SlmError *err)
{
        const SlmHParams *hp = &m->hp;
        int64_t e = hp->n_embd, qd = (int64_t)hp->n_head * hp->head_dim,
                kvd = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff, V = hp->n_vocab;
        char name[96];
        int r;

        /* room for every norm and bias: 2 norms and 3 biases per layer, the output norm */
        m->n_vectors_cap = (size_t)hp->n_layer * (size_t)(2 * e + qd + 2 * kvd) + (size_t)e;
        m->vectors = malloc(m->n_vectors_cap * sizeof(float));
        m->layers = calloc((size_t)hp->n_layer, sizeof(Layer));
        if (!m->vectors || !m->layers)
                return slm_error_set(err, -ENOMEM, "out of memory");

        r = get_matrix(m, "token_embd.weight", e, V, true, &m->tok_embd, err);
        if (r < 0)
                return r;
        r = get_vector(m, "output_norm.weight", e, true, &m->output_norm, err);
        if (r < 0)
                return r;
        r = get_matrix(m, "output.weight", e, V, false, &m->output, err);
        if (r < 0)
                return r;
        if (!m->output.data)
                m->output = m->tok_embd; /* tied embeddings */

        for (int il = 0; il < hp->n_layer; il++) {
                Layer *l = &m->layers[il];
#define T(suffix) (snprintf(name, sizeof(name), "blk.%d." suffix, il), name)
                if ((r = get_vector(m, T("attn_norm.weight"), e, true, &l->attn_norm, err)) < 0 ||
                    (r = get_vector(m, T("ffn_norm.weight"), e, true, &l->ffn_norm, err)) < 0 ||
                    (r = get_matrix(m, T("attn_output.weight"), qd, e, true, &l->wo, err)) < 0 ||
                    (r = get_matrix(m, T("ffn_down.weight"), ff, e, true, &l->w_down, err)) < 0)
                        return r;
                if (hp->arch == SLM_ARCH_PHI3) {
                        if ((r = get_matrix(m, T("attn_qkv.weight"), e, qd + 2 * kvd, true,
                                            &l->wqkv, err)) < 0 ||
                            (r = get_matrix(m, T("ffn_up.weight"), e, 2 * ff, true, &l->w_up,
                                            err)) < 0)
                                return r;
                        continue;
                }
                if ((r = get_matrix(m, T("attn_q.weight"), e, qd, true, &l->wq, err)) < 0 ||
                    (r = get_matrix(m, T("attn_k.weight"), e, kvd, true, &l->wk, err)) < 0 ||
                    (r = get_matrix(m, T("attn_v.weight"), e, kvd, true, &l->wv, err)) < 0 ||
                    (r = get_matrix(m, T("ffn_gate.weight"), e, ff, true, &l->w_gate, err)) < 0 ||
                    (r = get_matrix(m, T("ffn_up.weight"), e, ff, true, &l->w_up, err)) < 0)
                        return r;
                if (hp->arch == SLM_ARCH_QWEN2 &&
                    ((r = get_vector(m, T("attn_q.bias"), qd, true, &l->bq, err)) < 0 ||
                     (r = get_vector(m, T("attn_k.bias"), kvd, true, &l->bk, err)) < 0 ||
                     (r = get_vector(m, T("attn_v.bias"), kvd, true, &l->bv, err)) < 0))
                        return r;
#undef T
        }
        if (slm_gguf_tensor(m->gguf, "rope_factors_long.weight") ||
            slm_gguf_tensor(m->gguf, "rope_freqs.weight"))
                return slm_error_set(err, -ENOTSUP, "per-dimension RoPE factors are not supported");
        return 0;
}

/* ---- load / free --------------------------------------------------------------------------- */

int slm_model_load_gguf(SlmGguf *gguf, SlmModel **ret_model, SlmError *err)
{
        SlmModel *m = calloc(1, sizeof(*m));
        const SlmGgufTensor *emb;
        int r;

        if (!m)
                return slm_error_set(err, -ENOMEM, "out of memory");
        m->gguf = gguf;
        r = load_hparams(m, err);
        if (r < 0)
                goto fail;
        r = slm_tokenizer_new(gguf, &m->tk, err);
        if (r < 0) {
                slm_error_prefix(err, "tokenizer");
                goto fail;
        }
        m->hp.n_vocab = slm_tokenizer_n_vocab(m->tk);
        emb = slm_gguf_tensor(gguf, "token_embd.weight");
        if (emb && emb->n_dims == 2 && emb->ne[1] != (uint64_t)m->hp.n_vocab) {
                r = slm_error_set(err, -EINVAL, "token_embd has %llu rows for %d tokens",
                                  (unsigned long long)emb->ne[1], m->hp.n_vocab);
                goto fail;
        }
        /* where the CPU reads weights from: the file mapping, or an anonymous copy */
        const char *mode = getenv("SLM_WEIGHTS");
        if (mode && strcmp(mode, "anon") == 0) {
                r = slm_gguf_copy_to_anon(gguf, err);
                if (r < 0)
                        goto fail;
        }
        r = load_tensors(m, err);
        if (r < 0)
                goto fail;
        *ret_model = m;
        return 0;
fail:
        m->gguf = NULL; /* the caller keeps it on failure */
        slm_model_free(m);
        return r;
}

int slm_model_load(const char *path, SlmModel **ret_model, SlmError *err)
{
        SlmGguf *g;
        int r = slm_gguf_open(path, &g, err);

        if (r < 0)
                return r;
        r = slm_model_load_gguf(g, ret_model, err);
        if (r < 0)
                slm_gguf_free(g);
        return r;
}

SlmModel *slm_model_free(SlmModel *m)
{
        if (!m)
                return NULL;
        slm_tokenizer_free(m->tk);
        slm_gguf_free(m->gguf);
        free(m->layers);
        free(m->vectors);
        free(m);
        return NULL;
}

const SlmHParams *slm_model_hparams(const SlmModel *m)
{
        return &m->hp;
}

const SlmTokenizer *slm_model_tokenizer(const SlmModel *m)
{
        return m->tk;
}

const SlmGguf *slm_model_gguf(const SlmModel *m)
{
        return m->gguf;
}

uint64_t slm_model_weight_bytes(const SlmModel *m)
{
        uint64_t total = 0;

        for (uint64_t i = 0; i < m->gguf->n_tensors; i++)
                if (m->gguf->tensors[i].data != m->tok_embd.data ||
                    m->output.data == m->tok_embd.data)
                        total += m->gguf->tensors[i].n_bytes;
        return total;
}

/* ---- contexts ------------------------------------------------------------------------------ */

int slm_kv_type_from_name(const char *name, SlmType *ret)
{
        static const struct {
                const char *name;
                SlmType type;
        } names[] = { { "f32", SLM_TYPE_F32 }, { "f16", SLM_TYPE_F16 }, { "q8_0", SLM_TYPE_Q8_0 } };

        for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
                if (strcasecmp(name, names[i].name) == 0) {
                        *ret = names[i].type;
                        return 0;
                }
        return -EINVAL;
}

/*
 * The first layer's cache in @want, else in the next wider type: Q8_0
 * needs heads of whole 32-element blocks, and a backend may not hold it.
 */
static int kv_cache_first(SlmContext *c, SlmType want, int head_dim, size_t n)
{
        static const SlmType wider[] = { SLM_TYPE_Q8_0, SLM_TYPE_F16, SLM_TYPE_F32 };
        size_t i = 0;
        int r;

        while (wider[i] != want) /* the caller checked that it is one of them */
                i++;
        for (; i < sizeof(wider) / sizeof(wider[0]); i++) {
                if (wider[i] == SLM_TYPE_Q8_0 && head_dim % SLM_QK)
                        continue;
                r = slm_tensor_new_typed(c->b, wider[i], n, &c->k_cache[0]);
                if (r == 0)
                        c->kv_type = wider[i];
                if (r != -EOPNOTSUPP)
                        return r;
        }
        return -EOPNOTSUPP;
}

static int scratch_new(const SlmModel *m, SlmBackend *b, int cap, int out, Scratch *s)
{
        const SlmHParams *hp = &m->hp;
        size_t kvd = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
        size_t qd = (size_t)hp->n_head * (size_t)hp->head_dim, n = (size_t)cap;
        size_t e = (size_t)hp->n_embd, ff = (size_t)hp->n_ff, V = (size_t)hp->n_vocab;
        struct {
                SlmTensor **t;
                size_t n;
        } scratch[] = {
                { &s->x, n * e },
                { &s->xb, n * (e > qd ? e : qd) },
                { &s->q, n * qd },
                { &s->k, n * kvd },
                { &s->v, n * kvd },
                { &s->att, n * qd },
                { &s->tmp, n * e },
                { &s->up, n * ff },
                { &s->hb, n * ff },
                { &s->qkv, n * (qd + 2 * kvd) },
                { &s->logits, (size_t)out * V },
        };
        int r = 0;

        s->cap = cap;
        s->out = out;
        s->attn = calloc((size_t)out, sizeof(*s->attn));
        if (!s->attn)
                return -ENOMEM;
        for (size_t i = 0; r == 0 && i < sizeof(scratch) / sizeof(scratch[0]); i++)
                r = slm_tensor_new(b, scratch[i].n, scratch[i].t);
        return r;
}

static void scratch_free(SlmBackend *b, Scratch *s)
{
        SlmTensor **t[] = { &s->x,   &s->xb, &s->q,  &s->k,   &s->v,     &s->att,
                            &s->tmp, &s->up, &s->hb, &s->qkv, &s->logits };

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
                *t[i] = slm_tensor_free(b, *t[i]);
        free(s->attn);
        s->attn = NULL;
}

int slm_context_new(SlmModel *m, SlmBackend *backend, int n_ctx, SlmType kv_type,
                    SlmContext **ret_ctx, SlmError *err)
{
        const SlmHParams *hp = &m->hp;
        size_t kvd = (size_t)hp->n_head_kv * (size_t)hp->head_dim, cache;
        SlmContext *c;
        int r = 0;

        if (n_ctx <= 0)
                n_ctx = hp->n_ctx_train;
        if (n_ctx > hp->n_ctx_train)
                return slm_error_set(err, -EINVAL, "context of %d exceeds the model's %d", n_ctx,
                                     hp->n_ctx_train);
        if (kv_type != SLM_TYPE_F32 && kv_type != SLM_TYPE_F16 && kv_type != SLM_TYPE_Q8_0)
                return slm_error_set(err, -EINVAL, "a KV cache cannot be held in %s",
                                     slm_type_name(kv_type));
        if (__builtin_mul_overflow((size_t)n_ctx, kvd, &cache) ||
            cache > SIZE_MAX / sizeof(float) / 2)
                return slm_error_set(err, -ENOMEM, "KV cache size overflows");
        c = calloc(1, sizeof(*c));
        if (!c)
                return slm_error_set(err, -ENOMEM, "out of memory");
        c->m = m;
        c->b = backend;
        c->n_ctx = n_ctx;
        c->n_layer = hp->n_layer;
        c->k_cache = calloc((size_t)hp->n_layer, sizeof(SlmTensor *));
        c->v_cache = calloc((size_t)hp->n_layer, sizeof(SlmTensor *));
        if (!c->k_cache || !c->v_cache)
                r = -ENOMEM;
        if (r == 0)
                r = kv_cache_first(c, kv_type, hp->head_dim, cache);
        for (int il = 0; r == 0 && il < hp->n_layer; il++)
                if ((il > 0 &&
                     (r = slm_tensor_new_typed(backend, c->kv_type, cache, &c->k_cache[il])) < 0) ||
                    (r = slm_tensor_new_typed(backend, c->kv_type, cache, &c->v_cache[il])) < 0)
                        break;
        if (r == 0)
                r = scratch_new(m, backend, BATCH, 1, &c->s);
        if (r < 0) {
                slm_context_free(c);
                return slm_error_set(err, r, "cannot allocate a context of %d on %s: %s", n_ctx,
                                     slm_backend_name(backend), strerror(-r));
        }
        *ret_ctx = c;
        return 0;
}

SlmContext *slm_context_free(SlmContext *c)
{
        if (!c)
                return NULL;
        for (int il = 0; il < c->n_layer; il++) {
                if (c->k_cache)
                        slm_tensor_free(c->b, c->k_cache[il]);
                if (c->v_cache)
                        slm_tensor_free(c->b, c->v_cache[il]);
        }
        free(c->k_cache);
        free(c->v_cache);
        scratch_free(c->b, &c->s);
        free(c);
        return NULL;
}

int slm_context_n_ctx(const SlmContext *c)
{
        return c->n_ctx;
}

uint64_t slm_context_kv_bytes(const SlmContext *c)
{
        uint64_t row = 0;

        if (!c->k_cache || !c->k_cache[0] ||
            slm_type_row_bytes(c->kv_type, c->k_cache[0]->n, &row) < 0)
                return 0;
        return 2ull * (uint64_t)c->n_layer * row;
}

uint64_t slm_model_kv_bytes_per_position(const SlmModel *m, SlmType kv_type)
{
        uint64_t kvd = (uint64_t)m->hp.n_head_kv * (uint64_t)m->hp.head_dim, row = 0;

        if (kv_type == SLM_TYPE_Q8_0 && m->hp.head_dim % SLM_QK)
                kv_type = SLM_TYPE_F16; /* as slm_context_new widens it */
        if (slm_type_row_bytes(kv_type, kvd, &row) < 0)
                return 0;
        return 2ull * (uint64_t)m->hp.n_layer * row;
}

SlmType slm_context_kv_type(const SlmContext *c)
{
        return c->kv_type;
}

int slm_context_n_past(const SlmContext *c)
{
        return c->n_past;
}

void slm_context_truncate(SlmContext *c, int n_past)
{
        if (n_past >= 0 && n_past < c->n_past)
                c->n_past = n_past;
}

int slm_context_fork(SlmContext *dst, const SlmContext *src, int n)
{
        size_t kvd = (size_t)src->m->hp.n_head_kv * (size_t)src->m->hp.head_dim;
        int r = 0;

        if (dst == src || dst->m != src->m || dst->b != src->b || dst->kv_type != src->kv_type)
                return -EINVAL;
        if (n < 0 || n > src->n_past || n > dst->n_ctx)
                return -ENOSPC;
        for (int il = 0; r == 0 && il < src->n_layer; il++)
                if ((r = slm_backend_copy_prefix(src->b, src->k_cache[il], dst->k_cache[il],
                                                 (size_t)n * kvd)) == 0)
                        r = slm_backend_copy_prefix(src->b, src->v_cache[il], dst->v_cache[il],
                                                    (size_t)n * kvd);
        dst->n_past = r == 0 ? n : 0;
        return r;
}

/* ---- the forward pass ---------------------------------------------------------------------- */

/*
 * One layer for the @n tokens of @segs, whose hidden states are in s->x.
 * Every step is a backend op on backend tensors, so a device backend can
 * record the whole pass and run it at once. The matrices run once over
 * all rows; positions, the KV caches and attention are each sequence's own.
 */
static int forward_layer(const SlmModel *m, SlmBackend *b, Scratch *s, const Seg *segs, int n_segs,
                         int n, int il)
{
        const SlmHParams *hp = &m->hp;
        const Layer *l = &m->layers[il];
        int64_t e = hp->n_embd, hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd;
        int64_t ff = hp->n_ff;
        SlmAttnParams ap = { hp->n_head, hp->n_head_kv, (int)hd, 1.0f / sqrtf((float)hd),
                             hp->n_swa };
        int r;

        /* attention */
        SlmNormInput in = { s->x, l->attn_norm, hp->norm_eps, n };
        if (l->wqkv.data) {
                size_t row = (size_t)(qd + 2 * kvd);
                const SlmMatrix *w = &l->wqkv;
                if ((r = slm_backend_norm_matmul(b, &in, 1, &w, &s->qkv, s->xb)) < 0 ||
                    (r = slm_backend_copy(b, s->qkv, 0, row, s->q, 0, qd, qd, n)) < 0 ||
                    (r = slm_backend_copy(b, s->qkv, qd, row, s->k, 0, kvd, kvd, n)) < 0 ||
                    (r = slm_backend_copy(b, s->qkv, qd + kvd, row, s->v, 0, kvd, kvd, n)) < 0)
                        return r;
        } else {
                const SlmMatrix *w[3] = { &l->wq, &l->wk, &l->wv };
                SlmTensor *y[3] = { s->q, s->k, s->v };
                if ((r = slm_backend_norm_matmul(b, &in, 3, w, y, s->xb)) < 0)
                        return r;
                if (l->bq && ((r = slm_backend_add(b, s->q, NULL, l->bq, 1.0f, qd, n)) < 0 ||
                              (r = slm_backend_add(b, s->k, NULL, l->bk, 1.0f, kvd, n)) < 0 ||
                              (r = slm_backend_add(b, s->v, NULL, l->bv, 1.0f, kvd, n)) < 0))
                        return r;
        }
        for (int i = 0; i < n_segs; i++) {
                const Seg *g = &segs[i];
                if ((r = slm_backend_rope(b, s->q, g->row0, g->n, hp->n_head, (int)hd, g->c->n_past,
                                          &hp->rope)) < 0 ||
                    (r = slm_backend_rope(b, s->k, g->row0, g->n, hp->n_head_kv, (int)hd,
                                          g->c->n_past, &hp->rope)) < 0)
                        return r;
        }
        if (hp->arch == SLM_ARCH_PHI3 || hp->arch == SLM_ARCH_GEMMA) {
                /* these scale q before the product, as their reference graphs do */
                r = slm_backend_add(b, s->q, NULL, NULL, ap.scale, qd, n);
                if (r < 0)
                        return r;
                ap.scale = 1.0f;
        }
        for (int i = 0; i < n_segs; i++) {
                const Seg *g = &segs[i];
                SlmContext *c = g->c;
                size_t at = (size_t)c->n_past * (size_t)kvd, from = (size_t)g->row0 * (size_t)kvd;
                size_t len = (size_t)g->n * (size_t)kvd;
                if ((r = slm_backend_copy(b, s->k, from, 0, c->k_cache[il], at, 0, len, 1)) < 0 ||
                    (r = slm_backend_copy(b, s->v, from, 0, c->v_cache[il], at, 0, len, 1)) < 0)
                        return r;
                s->attn[i] =
                    (SlmAttnSeg){ g->row0, g->n, c->n_past, c->k_cache[il], c->v_cache[il] };
        }
        /* every sequence's attention in one op, over its own cache */
        if ((r = slm_backend_attention_segs(b, s->q, s->attn, n_segs, &ap, s->att)) < 0)
                return r;
        if ((r = slm_backend_matmul(b, &l->wo, s->att, n, s->tmp)) < 0 ||
            (r = slm_backend_add(b, s->x, s->tmp, NULL, 1.0f, e, n)) < 0)
                return r;

        /* feed-forward */
        SlmMatrix gate = l->w_gate, up = l->w_up;
        if (hp->arch == SLM_ARCH_PHI3) {
                /* rows of 2*ff, gate then up: two matrices of ff rows */
                gate = up;
                gate.n_out = up.n_out = ff;
                up.data = (const uint8_t *)up.data + (size_t)ff * up.row_bytes;
        }
        in.weight = l->ffn_norm;
        if ((r = slm_backend_norm_matmul_glu(
                 b, &in, hp->arch == SLM_ARCH_GEMMA ? SLM_ACT_GELU : SLM_ACT_SILU, &gate, &up,
                 s->hb, s->xb, s->up)) < 0 ||
            (r = slm_backend_matmul(b, &l->w_down, s->hb, n, s->tmp)) < 0 ||
            (r = slm_backend_add(b, s->x, s->tmp, NULL, 1.0f, e, n)) < 0)
                return r;
        return 0;
}

/*
 * Run the @n tokens @ids of @segs (each sequence's rows in turn) and
 * advance their positions; leave the logits of the @n_out rows @out_rows
 * in rows 0.. of s->logits.
 */
static int forward(const SlmModel *m, SlmBackend *b, Scratch *s, const Seg *segs, int n_segs,
                   const int32_t *ids, int n, const int32_t *out_rows, int n_out)
{
        const SlmHParams *hp = &m->hp;
        int64_t e = hp->n_embd;
        int r;

        r = slm_backend_get_rows(b, &m->tok_embd, ids, n,
                                 hp->arch == SLM_ARCH_GEMMA ? sqrtf((float)e) : 1.0f, s->x);
        if (r < 0)
                return r;
        for (int il = 0; il < hp->n_layer; il++) {
                r = forward_layer(m, b, s, segs, n_segs, n, il);
                if (r < 0)
                        return r;
        }
        for (int i = 0; i < n_segs; i++)
                segs[i].c->n_past += segs[i].n;
        if (n_out == 0)
                return 0;
        /* only the wanted rows' logits: gathered, then the output matrix once over them */
        SlmNormInput in = { s->tmp, m->output_norm, hp->norm_eps, n_out };
        const SlmMatrix *w = &m->output;
        for (int i = 0; i < n_out; i++) {
                r = slm_backend_copy(b, s->x, (size_t)(out_rows[i] * e), 0, s->tmp, (size_t)(i * e),
                                     0, (size_t)e, 1);
                if (r < 0)
                        return r;
        }
        return slm_backend_norm_matmul(b, &in, 1, &w, &s->logits, s->xb);
}

static bool ids_valid(const SlmModel *m, const int32_t *ids, int n)
{
        for (int i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= m->hp.n_vocab)
                        return false;
        return true;
}

static int eval(SlmContext *c, const int32_t *ids, int n)
{
        int r;

        if (n <= 0)
                return -EINVAL;
        if (n > c->n_ctx - c->n_past)
                return -ENOSPC;
        if (!ids_valid(c->m, ids, n))
                return -EINVAL;
        for (int done = 0; done < n; done += BATCH) {
                int nb = n - done < BATCH ? n - done : BATCH;
                Seg seg = { c, 0, nb };
                int32_t last = nb - 1;
                r = forward(c->m, c->b, &c->s, &seg, 1, ids + done, nb, &last,
                            done + nb == n ? 1 : 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

int slm_context_eval(SlmContext *c, const int32_t *ids, int n, float *ret_logits)
{
        int r = eval(c, ids, n);

        if (r < 0 || !ret_logits)
                return r;
        return slm_tensor_read(c->b, c->s.logits, 0, ret_logits, (size_t)c->m->hp.n_vocab);
}

int slm_context_eval_greedy(SlmContext *c, const int32_t *ids, int n, int32_t *ret_token)
{
        int r = eval(c, ids, n);

        if (r < 0)
                return r;
        return slm_backend_argmax(c->b, c->s.logits, c->m->hp.n_vocab, ret_token);
}

/* ---- batches of sequences ------------------------------------------------------------------ */

int slm_batch_new(SlmModel *m, SlmBackend *backend, int max_tokens, int max_seqs,
                  SlmBatch **ret_batch, SlmError *err)
{
        SlmBatch *bt;
        int r;

        if (max_tokens < 1 || max_tokens > SLM_BATCH_MAX_TOKENS || max_seqs < 1 ||
            max_seqs > max_tokens)
                return slm_error_set(err, -EINVAL,
                                     "a batch takes 1 to %d tokens of at most as many sequences",
                                     SLM_BATCH_MAX_TOKENS);
        bt = calloc(1, sizeof(*bt));
        if (!bt)
                return slm_error_set(err, -ENOMEM, "out of memory");
        bt->m = m;
        bt->b = backend;
        bt->max_seqs = max_seqs;
        bt->ids = calloc((size_t)max_tokens, sizeof(int32_t));
        bt->rows = calloc((size_t)max_seqs, sizeof(int32_t));
        bt->segs = calloc((size_t)max_seqs, sizeof(Seg));
        bt->logits = calloc((size_t)max_seqs, sizeof(float *));
        r = bt->ids && bt->rows && bt->segs && bt->logits ? 0 : -ENOMEM;
        if (r == 0)
                r = scratch_new(m, backend, max_tokens, max_seqs, &bt->s);
        if (r < 0) {
                slm_batch_free(bt);
                return slm_error_set(err, r, "cannot allocate a batch of %d tokens on %s: %s",
                                     max_tokens, slm_backend_name(backend), strerror(-r));
        }
        *ret_batch = bt;
        return 0;
}

SlmBatch *slm_batch_free(SlmBatch *bt)
{
        if (!bt)
                return NULL;
        scratch_free(bt->b, &bt->s);
        free(bt->ids);
        free(bt->rows);
        free(bt->segs);
        free(bt->logits);
        free(bt);
        return NULL;
}

int slm_batch_max_tokens(const SlmBatch *bt)
{
        return bt->s.cap;
}

int slm_batch_max_seqs(const SlmBatch *bt)
{
        return bt->max_seqs;
}

int slm_batch_eval(SlmBatch *bt, const SlmBatchSeq *seqs, int n_seqs)
{
        Seg *segs = bt->segs;
        int n = 0, n_out = 0, r;

        if (n_seqs < 1 || n_seqs > bt->max_seqs)
                return -EINVAL;
        for (int i = 0; i < n_seqs; i++) {
                SlmContext *c = seqs[i].ctx;
                if (!c || c->m != bt->m || c->b != bt->b || seqs[i].n < 1 ||
                    seqs[i].n > bt->s.cap - n || !ids_valid(bt->m, seqs[i].ids, seqs[i].n))
                        return -EINVAL;
                if (seqs[i].n > c->n_ctx - c->n_past)
                        return -ENOSPC;
                for (int j = 0; j < i; j++)
                        if (seqs[j].ctx == c)
                                return -EINVAL; /* one part per sequence: its positions run on */
                memcpy(bt->ids + n, seqs[i].ids, (size_t)seqs[i].n * sizeof(int32_t));
                segs[i] = (Seg){ c, n, seqs[i].n };
                n += seqs[i].n;
                if (seqs[i].logits) {
                        bt->rows[n_out] = n - 1;
                        bt->logits[n_out++] = seqs[i].logits;
                }
        }
        r = forward(bt->m, bt->b, &bt->s, segs, n_seqs, bt->ids, n, bt->rows, n_out);
        size_t V = (size_t)bt->m->hp.n_vocab;
        for (int i = 0; r == 0 && i < n_out; i++)
                r = slm_tensor_read(bt->b, bt->s.logits, (size_t)i * V, bt->logits[i], V);
        return r;
}
