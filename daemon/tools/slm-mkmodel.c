/* SPDX-License-Identifier: MIT */
/*
 * slm-mkmodel: GGUF files of real model shapes with random weights, for
 * benchmarks (speed does not depend on the values). The tensor types follow
 * the usual mixes: q4_0 keeps the output in Q6_K; q4_k_m and q5_k_m keep the
 * output and some attn_v/ffn_down tensors in Q6_K.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf-writer.h"
#include "gguf.h"

typedef struct {
        const char *name, *arch;
        int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
        float rope_base;
} Shape;

static const Shape shapes[] = {
        { "tinyllama-1.1b", "llama", 2048, 22, 32, 4, 64, 5632, 32000, 2048, 10000.0f },
        { "phi3-mini", "phi3", 3072, 32, 32, 32, 96, 8192, 32064, 4096, 10000.0f },
        { "gemma-2b", "gemma", 2048, 18, 8, 1, 256, 16384, 256000, 8192, 10000.0f },
        { "llama2-7b", "llama", 4096, 32, 32, 32, 128, 11008, 32000, 4096, 10000.0f },
};

typedef struct {
        const Shape *s;
        SlmType base; /* most matrices */
        SlmType high; /* output and the layers that get more bits */
        SlmType embd; /* token embeddings */
        bool mixed;   /* some attn_v / ffn_down in the high type */
        float *row;
} Plan;

/* Deterministic noise per (tensor, row): the same file from the same options. */
static uint64_t seed_of(const char *name, uint64_t row)
{
        uint64_t h = 0xcbf29ce484222325ull;
        for (const char *p = name; *p; p++)
                h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
        return h ^ (row * 0x9e3779b97f4a7c15ull) ^ 0x2545f4914f6cdd1dull;
}

typedef struct {
        Plan *plan;
        SlmType type;
        uint64_t ne0;
} TensorFill;

/* One row: small uniform noise, or ones for a norm; then in the tensor's type. */
static int fill_typed(void *data, const char *tensor, uint64_t index, void *out)
{
        TensorFill *t = data;
        float *row = t->plan->row;
        uint64_t st = seed_of(tensor, index);
        bool norm = strstr(tensor, "norm") != NULL;

        for (uint64_t i = 0; i < t->ne0; i++) {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                row[i] = norm ? 1.0f : ((float)(st >> 40) / (float)(1u << 24) - 0.5f) * 0.08f;
        }
        return slm_quantize_weights_row(t->type, row, out, (int64_t)t->ne0);
}

static TensorFill fills[4096];
static int n_fills;

static int add(SlmGgufWriter *w, Plan *p, const char *name, SlmType type, uint64_t ne0,
               uint64_t ne1)
{
        uint64_t ne[2] = { ne0, ne1 };
        if (n_fills == (int)(sizeof(fills) / sizeof(fills[0])))
                return -E2BIG;
        fills[n_fills] = (TensorFill){ p, type, ne0 };
        return slm_gguf_writer_add_tensor(w, name, type, ne, ne1 ? 2 : 1, fill_typed,
                                          &fills[n_fills++]);
}

/* A SentencePiece-style vocabulary: specials, the 256 byte tokens, then made-up pieces. */
static int add_vocab(SlmGgufWriter *w, int n_vocab)
{
        char **tokens = calloc((size_t)n_vocab, sizeof(char *));
        float *scores = calloc((size_t)n_vocab, sizeof(float));
        int32_t *types = calloc((size_t)n_vocab, sizeof(int32_t));
        int r = -ENOMEM;

        if (!tokens || !scores || !types)
                goto out;
        for (int i = 0; i < n_vocab; i++) {
                char buf[32];
                if (i < 3) {
                        snprintf(buf, sizeof(buf), "%s",
                                 (const char *[]){ "<unk>", "<s>", "</s>" }[i]);
                        types[i] = i == 0 ? 2 : 3;
                } else if (i < 3 + 256) {
                        snprintf(buf, sizeof(buf), "<0x%02X>", i - 3);
                        types[i] = 6;
                } else {
                        /* "\u2581" and a base-26 spelling of the index: all distinct */
                        int v = i - 259, k = 3;
                        memcpy(buf, "\xe2\x96\x81", 3);
                        do {
                                buf[k++] = (char)('a' + v % 26);
                                v /= 26;
                        } while (v && k < 30);
                        buf[k] = 0;
                        types[i] = 1;
                }
                tokens[i] = strdup(buf);
                if (!tokens[i])
                        goto out;
                scores[i] = -(float)i;
        }
        r = slm_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
        if (!r)
                r = slm_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens",
                                                  (const char *const *)tokens, (size_t)n_vocab);
        if (!r)
                r = slm_gguf_writer_add_f32_array(w, "tokenizer.ggml.scores", scores,
                                                  (size_t)n_vocab);
        if (!r)
                r = slm_gguf_writer_add_i32_array(w, "tokenizer.ggml.token_type", types,
                                                  (size_t)n_vocab);
        if (!r)
                r = slm_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
        if (!r)
                r = slm_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
out:
        for (int i = 0; tokens && i < n_vocab; i++)
                free(tokens[i]);
        free(tokens);
        free(scores);
        free(types);
        return r;
}

/* The vocabulary of another GGUF file (a real one: its tokens, scores, types, BOS and EOS). */
static int copy_vocab(SlmGgufWriter *w, const char *path, int n_vocab, SlmError *err)
{
        SlmGguf *g = NULL;
        SlmGgufStr model;
        int r = slm_gguf_open(path, &g, err);

        if (r < 0)
                return r;
        const SlmGgufValue *tokens = slm_gguf_get(g, "tokenizer.ggml.tokens");
        const SlmGgufValue *scores = slm_gguf_get(g, "tokenizer.ggml.scores");
        const SlmGgufValue *types = slm_gguf_get(g, "tokenizer.ggml.token_type");
        const SlmGgufValue *bos = slm_gguf_get(g, "tokenizer.ggml.bos_token_id");
        const SlmGgufValue *eos = slm_gguf_get(g, "tokenizer.ggml.eos_token_id");
        if (slm_gguf_get_str(g, "tokenizer.ggml.model", &model) < 0 || !tokens ||
            tokens->type != SLM_GGUF_ARRAY || tokens->arr.type != SLM_GGUF_STRING ||
            tokens->arr.n != (uint64_t)n_vocab || !scores || scores->type != SLM_GGUF_ARRAY ||
            scores->arr.type != SLM_GGUF_F32 || scores->arr.n != (uint64_t)n_vocab || !types ||
            types->type != SLM_GGUF_ARRAY || types->arr.type != SLM_GGUF_I32 ||
            types->arr.n != (uint64_t)n_vocab || !bos || !eos) {
                slm_gguf_free(g);
                return slm_error_set(err, -EINVAL,
                                     "%s: no SentencePiece vocabulary of %d tokens to copy", path,
                                     n_vocab);
        }
        char **t = calloc((size_t)n_vocab, sizeof(char *));
        float *sc = malloc((size_t)n_vocab * sizeof(float));
        int32_t *ty = malloc((size_t)n_vocab * sizeof(int32_t));
        char mname[32];
        snprintf(mname, sizeof(mname), "%.*s", (int)model.len, model.ptr);
        r = t && sc && ty ? 0 : -ENOMEM;
        for (int i = 0; i < n_vocab && r == 0; i++) {
                t[i] = strndup(tokens->arr.strs[i].ptr, tokens->arr.strs[i].len);
                r = t[i] ? 0 : -ENOMEM;
        }
        if (r == 0) {
                memcpy(sc, scores->arr.data, (size_t)n_vocab * sizeof(float));
                memcpy(ty, types->arr.data, (size_t)n_vocab * sizeof(int32_t));
                r = slm_gguf_writer_add_str(w, "tokenizer.ggml.model", mname);
        }
        r = r
                ?: slm_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)t,
                                                 (size_t)n_vocab);
        r = r ?: slm_gguf_writer_add_f32_array(w, "tokenizer.ggml.scores", sc, (size_t)n_vocab);
        r = r ?: slm_gguf_writer_add_i32_array(w, "tokenizer.ggml.token_type", ty, (size_t)n_vocab);
        r = r ?: slm_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos->u);
        r = r ?: slm_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos->u);
        for (int i = 0; t && i < n_vocab; i++)
                free(t[i]);
        free(t);
        free(sc);
        free(ty);
        slm_gguf_free(g);
        return r;
}

static bool more_bits(int il, int n_layer)
{
        return il < n_layer / 8 || il >= 7 * n_layer / 8 || (il - n_layer / 8) % 3 == 2;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "shape", required_argument, NULL, 's' },
                { "type", required_argument, NULL, 't' },
                { "output", required_argument, NULL, 'o' },
                { "vocab", required_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *shape = NULL, *type = NULL, *out = NULL, *vocab = NULL;
        Plan p = { 0 };
        SlmGgufWriter *w = NULL;
        SlmError err = { { 0 } };
        char key[128], name[96];
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "s:t:o:v:h", opts, NULL)) != -1) {
                switch (c) {
                case 'v':
                        vocab = optarg;
                        break;
                case 's':
                        shape = optarg;
                        break;
                case 't':
                        type = optarg;
                        break;
                case 'o':
                        out = optarg;
                        break;
                default:
                        fprintf(c == 'h' ? stdout : stderr,
                                "Usage: slm-mkmodel --shape "
                                "tinyllama-1.1b|phi3-mini|gemma-2b|llama2-7b\n"
                                "                   --type f16|q8_0|q4_0|q4_k_m|q5_k_m -o FILE\n"
                                "                   [--vocab GGUF]  (that file's vocabulary, "
                                "not a made-up one)\n");
                        return c == 'h' ? 0 : 2;
                }
        }
        for (size_t i = 0; shape && i < sizeof(shapes) / sizeof(shapes[0]); i++)
                if (strcmp(shape, shapes[i].name) == 0)
                        p.s = &shapes[i];
        if (!shape || !type || !out) {
                fprintf(stderr, "slm-mkmodel: --shape, --type and -o are needed (see --help)\n");
                return 2;
        }
        if (!p.s) {
                fprintf(stderr, "slm-mkmodel: unknown shape '%s'\n", shape);
                return 2;
        }
        if (strcmp(type, "f16") == 0)
                p.base = p.high = p.embd = SLM_TYPE_F16;
        else if (strcmp(type, "q8_0") == 0)
                p.base = p.high = p.embd = SLM_TYPE_Q8_0;
        else if (strcmp(type, "q4_0") == 0) {
                p.base = p.embd = SLM_TYPE_Q4_0;
                p.high = SLM_TYPE_Q6_K;
        } else if (strcmp(type, "q4_k_m") == 0 || strcmp(type, "q5_k_m") == 0) {
                p.base = p.embd = type[1] == '4' ? SLM_TYPE_Q4_K : SLM_TYPE_Q5_K;
                p.high = SLM_TYPE_Q6_K;
                p.mixed = true;
        } else {
                fprintf(stderr, "slm-mkmodel: unknown type '%s'\n", type);
                return 2;
        }
        const Shape *s = p.s;
        int ff_in = s->n_ff > s->n_embd ? s->n_ff : s->n_embd;
        p.row = malloc((size_t)(ff_in > s->n_head * s->head_dim ? ff_in : s->n_head * s->head_dim) *
                       sizeof(float));
        if (!p.row || slm_gguf_writer_new(&w) < 0) {
                fprintf(stderr, "slm-mkmodel: out of memory\n");
                free(p.row);
                return 1;
        }
        uint64_t e = (uint64_t)s->n_embd, qd = (uint64_t)s->n_head * (uint64_t)s->head_dim,
                 kvd = (uint64_t)s->n_head_kv * (uint64_t)s->head_dim, ff = (uint64_t)s->n_ff;
#define KEY(k) (snprintf(key, sizeof(key), "%s." k, s->arch), key)
        r = slm_gguf_writer_add_str(w, "general.architecture", s->arch);
        r = r ?: slm_gguf_writer_add_str(w, "general.name", s->name);
        r = r ?: slm_gguf_writer_add_u32(w, KEY("embedding_length"), (uint32_t)s->n_embd);
        r = r ?: slm_gguf_writer_add_u32(w, KEY("block_count"), (uint32_t)s->n_layer);
        r = r ?: slm_gguf_writer_add_u32(w, KEY("feed_forward_length"), (uint32_t)s->n_ff);
        r = r ?: slm_gguf_writer_add_u32(w, KEY("attention.head_count"), (uint32_t)s->n_head);
        r = r ?: slm_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)s->n_head_kv);
        r = r ?: slm_gguf_writer_add_u32(w, KEY("attention.key_length"), (uint32_t)s->head_dim);
        r = r ?: slm_gguf_writer_add_u32(w, KEY("attention.value_length"), (uint32_t)s->head_dim);
        r = r ?: slm_gguf_writer_add_u32(w, KEY("context_length"), (uint32_t)s->n_ctx);
        r = r ?: slm_gguf_writer_add_u32(w, KEY("rope.dimension_count"), (uint32_t)s->head_dim);
        r = r ?: slm_gguf_writer_add_f32(w, KEY("rope.freq_base"), s->rope_base);
        r = r ?: slm_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
        r = r ?: (vocab ? copy_vocab(w, vocab, s->n_vocab, &err) : add_vocab(w, s->n_vocab));

        r = r ?: add(w, &p, "token_embd.weight", p.embd, e, (uint64_t)s->n_vocab);
        r = r ?: add(w, &p, "output_norm.weight", SLM_TYPE_F32, e, 0);
        if (strcmp(s->arch, "gemma") != 0) /* gemma ties its output to the embeddings */
                r = r ?: add(w, &p, "output.weight", p.high, e, (uint64_t)s->n_vocab);
        for (int il = 0; il < s->n_layer && !r; il++) {
                SlmType vt = p.mixed && more_bits(il, s->n_layer) ? p.high : p.base;
#define T(suffix) (snprintf(name, sizeof(name), "blk.%d." suffix, il), name)
                r = r ?: add(w, &p, T("attn_norm.weight"), SLM_TYPE_F32, e, 0);
                r = r ?: add(w, &p, T("ffn_norm.weight"), SLM_TYPE_F32, e, 0);
                r = r ?: add(w, &p, T("attn_output.weight"), p.base, qd, e);
                r = r ?: add(w, &p, T("ffn_down.weight"), vt, ff, e);
                if (strcmp(s->arch, "phi3") == 0) {
                        r = r ?: add(w, &p, T("attn_qkv.weight"), p.base, e, qd + 2 * kvd);
                        r = r ?: add(w, &p, T("ffn_up.weight"), p.base, e, 2 * ff);
                } else {
                        r = r ?: add(w, &p, T("attn_q.weight"), p.base, e, qd);
                        r = r ?: add(w, &p, T("attn_k.weight"), p.base, e, kvd);
                        r = r ?: add(w, &p, T("attn_v.weight"), vt, e, kvd);
                        r = r ?: add(w, &p, T("ffn_gate.weight"), p.base, e, ff);
                        r = r ?: add(w, &p, T("ffn_up.weight"), p.base, e, ff);
                }
#undef T
        }
#undef KEY
        if (r < 0)
                fprintf(stderr, "slm-mkmodel: %s\n", strerror(-r));
        else if ((r = slm_gguf_writer_write(w, out, &err)) < 0)
                fprintf(stderr, "slm-mkmodel: %s\n", err.msg);
        else
                printf("%s: %s %s\n", out, s->name, type);
        slm_gguf_writer_free(w);
        free(p.row);
        return r < 0 ? 1 : 0;
}
