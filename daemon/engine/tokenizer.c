/* SPDX-License-Identifier: MIT */
#include "tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "unicode.h"

#define MAX_VOCAB  (1 << 24)
#define N_BYTE_CPS 324 /* byte-level BPE maps bytes to code points below this */

typedef enum {
        PRE_GPT2,   /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
        PRE_LLAMA3, /* (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|...
                     */
        PRE_QWEN2,  /* as llama3 with \p{N} one digit at a time */
        PRE_SMOLLM, /* every digit alone, then gpt2 */
} PreType;

typedef struct {
        const char *text; /* NUL-terminated, in the arena */
        uint32_t len;
        float score;
        uint8_t type;
        const char *piece; /* the bytes it decodes to */
        uint32_t piece_len;
} Token;

struct SlmTokenizer {
        SlmVocabType type;
        PreType pre;
        int32_t n_vocab;
        Token *tokens;
        char *arena;
        SlmStrMap by_text;
        SlmStrMap merges; /* "left right" -> rank */
        char *merge_arena;
        int32_t byte_token[256];
        int16_t cp_byte[N_BYTE_CPS]; /* inverse of byte_to_cp, -1 elsewhere */
        int32_t bos, eos, unk;
        bool add_bos, add_eos, add_space_prefix, ignore_merges;
        bool *eog;
        int32_t *special; /* control / user-defined / unknown ids, longest text first */
        size_t n_special;
};

/* ---- byte-level BPE code points ------------------------------------------------------------ */

/* GPT-2 maps every byte to a printable code point: printable Latin-1 to itself, others to 256+. */
static uint32_t byte_to_cp(uint8_t b)
{
        int n = 0;

        if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae))
                return b;
        for (int c = 0; c < b; c++)
                if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae)))
                        n++;
        return 256 + (uint32_t)n;
}

/* ---- loading ------------------------------------------------------------------------------- */

static const char *const eog_texts[] = {
        "<|eot_id|>",    "<|im_end|>", "<|end|>",    "<end_of_turn>",
        "<|endoftext|>", "<EOT>",      "<|eom_id|>", "<|end_of_text|>",
};

static int cmp_special(const void *a, const void *b, void *data);

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* The byte of a "<0xXX>" token, or -1. */
static int parse_byte_token(const char *text, size_t len)
{
        int hi, lo;

        if (len != 6 || memcmp(text, "<0x", 3) != 0 || text[5] != '>')
                return -1;
        hi = hex_digit(text[3]);
        lo = hex_digit(text[4]);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int load_tokens(SlmTokenizer *tk, const SlmGguf *g, SlmError *err)
{
        const SlmGgufValue *toks, *scores = NULL, *types = NULL;
        size_t arena_size = 0, off = 0;
        int r;

        r = slm_gguf_get_arr(g, "tokenizer.ggml.tokens", SLM_GGUF_STRING, &toks);
        if (r < 0)
                return slm_error_set(err, -EINVAL, "tokenizer.ggml.tokens %s",
                                     r == -ENOENT ? "is missing" : "is not an array of strings");
        if (toks->arr.n == 0 || toks->arr.n > MAX_VOCAB)
                return slm_error_set(err, -EINVAL, "vocabulary of %llu tokens",
                                     (unsigned long long)toks->arr.n);
        tk->n_vocab = (int32_t)toks->arr.n;

        r = slm_gguf_get_arr(g, "tokenizer.ggml.scores", SLM_GGUF_F32, &scores);
        if (r == -EINVAL || (r == 0 && scores->arr.n != toks->arr.n))
                return slm_error_set(err, -EINVAL,
                                     "tokenizer.ggml.scores does not match the tokens");
        if (r < 0)
                scores = NULL;
        r = slm_gguf_get_arr(g, "tokenizer.ggml.token_type", SLM_GGUF_I32, &types);
        if (r == -EINVAL || (r == 0 && types->arr.n != toks->arr.n))
                return slm_error_set(err, -EINVAL,
                                     "tokenizer.ggml.token_type does not match the tokens");
        if (r < 0)
                types = NULL;

        /* one arena: each token's text and its decoded piece, NUL-terminated */
        for (int32_t i = 0; i < tk->n_vocab; i++) {
                uint64_t len = toks->arr.strs[i].len;
                if (len > 1024)
                        return slm_error_set(err, -EINVAL, "token %d is %llu bytes long", i,
                                             (unsigned long long)len);
                arena_size += 2 * (size_t)len + 2;
        }
        tk->tokens = calloc((size_t)tk->n_vocab, sizeof(Token));
        tk->eog = calloc((size_t)tk->n_vocab, sizeof(bool));
        tk->arena = malloc(arena_size);
        if (!tk->tokens || !tk->eog || !tk->arena)
                return slm_error_set(err, -ENOMEM, "out of memory");
        r = slm_strmap_init(&tk->by_text, (size_t)tk->n_vocab);
        if (r < 0)
                return slm_error_set(err, r, "out of memory");

        for (int32_t i = 0; i < tk->n_vocab; i++) {
                Token *t = &tk->tokens[i];
                SlmGgufStr s = toks->arr.strs[i];
                char *text = tk->arena + off, *piece;
                size_t pl = 0;

                memcpy(text, s.ptr, s.len);
                text[s.len] = 0;
                off += s.len + 1;
                t->text = text;
                t->len = (uint32_t)s.len;
                t->score = scores ? slm_gguf_arr_f32(scores, (uint64_t)i) : 0.0f;
                int64_t ty = types ? slm_gguf_arr_i64(types, (uint64_t)i) : SLM_TOKEN_NORMAL;
                if (ty < SLM_TOKEN_NORMAL || ty > SLM_TOKEN_BYTE)
                        return slm_error_set(err, -EINVAL, "token %d has unknown type %lld", i,
                                             (long long)ty);
                t->type = (uint8_t)ty;
                r = slm_strmap_put(&tk->by_text, text, s.len, i);
                if (r < 0)
                        return slm_error_set(err, r, "out of memory");

                /* the piece: what the token stands for in text */
                piece = tk->arena + off;
                if (t->type == SLM_TOKEN_BYTE && tk->type == SLM_VOCAB_SPM) {
                        int v = parse_byte_token(text, s.len);
                        if (v < 0)
                                return slm_error_set(err, -EINVAL, "byte token %d is not <0xXX>",
                                                     i);
                        piece[pl++] = (char)v;
                        tk->byte_token[v] = i;
                } else if (t->type == SLM_TOKEN_UNKNOWN && tk->type == SLM_VOCAB_SPM) {
                        memcpy(piece, "\xe2\x96\x85", 3); /* U+2585, as SentencePiece shows it */
                        pl = 3;
                } else if (t->type == SLM_TOKEN_NORMAL && tk->type == SLM_VOCAB_SPM) {
                        for (size_t k = 0; k < s.len; k++) {
                                if (k + 2 < s.len && memcmp(text + k, "\xe2\x96\x81", 3) == 0) {
                                        piece[pl++] = ' ';
                                        k += 2;
                                } else {
                                        piece[pl++] = text[k];
                                }
                        }
                } else if (t->type == SLM_TOKEN_NORMAL || t->type == SLM_TOKEN_BYTE) {
                        /* byte-level BPE: code points back to bytes */
                        for (size_t k = 0; k < s.len;) {
                                uint32_t cp;
                                size_t n = slm_utf8_decode(text + k, s.len - k, &cp);
                                int b = cp < N_BYTE_CPS ? tk->cp_byte[cp] : -1;
                                if (b >= 0) {
                                        piece[pl++] = (char)b;
                                } else {
                                        memcpy(piece + pl, text + k, n);
                                        pl += n;
                                }
                                k += n;
                        }
                } else {
                        memcpy(piece, text, s.len); /* control, user-defined, unused */
                        pl = s.len;
                }
                piece[pl] = 0;
                off += pl + 1;
                t->piece = piece;
                t->piece_len = (uint32_t)pl;
        }
        return 0;
}

static int load_merges(SlmTokenizer *tk, const SlmGguf *g, SlmError *err)
{
        const SlmGgufValue *merges;
        int r = slm_gguf_get_arr(g, "tokenizer.ggml.merges", SLM_GGUF_STRING, &merges);

        if (r < 0)
                return slm_error_set(err, -EINVAL, "tokenizer.ggml.merges %s",
                                     r == -ENOENT ? "is missing" : "is not an array of strings");
        if (merges->arr.n > MAX_VOCAB)
                return slm_error_set(err, -EINVAL, "%llu merges",
                                     (unsigned long long)merges->arr.n);
        size_t total = 0, off = 0;
        for (uint64_t i = 0; i < merges->arr.n; i++) {
                if (merges->arr.strs[i].len > 2048)
                        return slm_error_set(err, -EINVAL, "merge %llu is too long",
                                             (unsigned long long)i);
                total += merges->arr.strs[i].len;
        }
        tk->merge_arena = malloc(total ? total : 1);
        r = slm_strmap_init(&tk->merges, merges->arr.n);
        if (r < 0 || !tk->merge_arena)
                return slm_error_set(err, -ENOMEM, "out of memory");
        for (uint64_t i = 0; i < merges->arr.n; i++) {
                SlmGgufStr m = merges->arr.strs[i];
                const char *sp = memchr(m.ptr, ' ', m.len);
                if (!sp || sp == m.ptr || sp == m.ptr + m.len - 1)
                        return slm_error_set(err, -EINVAL, "merge %llu is not 'left right'",
                                             (unsigned long long)i);
                /* copied: the tokenizer does not keep the file */
                memcpy(tk->merge_arena + off, m.ptr, m.len);
                r = slm_strmap_put(&tk->merges, tk->merge_arena + off, m.len, (int32_t)i);
                off += m.len;
                if (r < 0)
                        return slm_error_set(err, r, "out of memory");
        }
        return 0;
}

static int special_id(const SlmTokenizer *tk, const SlmGguf *g, const char *key, int32_t def,
                      int32_t *ret, SlmError *err)
{
        uint32_t v;
        int r = slm_gguf_get_u32(g, key, &v);

        if (r == -ENOENT) {
                *ret = def < tk->n_vocab ? def : -1;
                return 0;
        }
        if (r < 0 || v >= (uint32_t)tk->n_vocab)
                return slm_error_set(err, -EINVAL, "%s is not a token id", key);
        *ret = (int32_t)v;
        return 0;
}

static void get_bool(const SlmGguf *g, const char *key, bool *v)
{
        (void)slm_gguf_get_bool(g, key, v); /* absent: keep the default */
}

static int cmp_special(const void *a, const void *b, void *data)
{
        const SlmTokenizer *tk = data;
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

        if (tk->tokens[x].len != tk->tokens[y].len)
                return tk->tokens[x].len > tk->tokens[y].len ? -1 : 1;
        return x < y ? -1 : x > y;
}

int slm_tokenizer_new(const SlmGguf *g, SlmTokenizer **ret_tokenizer, SlmError *err)
{
        SlmTokenizer *tk;
        SlmGgufStr model, pre;
        uint32_t eot;
        int r;

        if (slm_gguf_get_str(g, "tokenizer.ggml.model", &model) < 0)
                return slm_error_set(err, -EINVAL, "tokenizer.ggml.model is missing");
        tk = calloc(1, sizeof(*tk));
        if (!tk)
                return slm_error_set(err, -ENOMEM, "out of memory");
        for (int i = 0; i < 256; i++)
                tk->byte_token[i] = -1;
        for (int i = 0; i < N_BYTE_CPS; i++)
                tk->cp_byte[i] = -1;
        for (int b = 0; b < 256; b++)
                tk->cp_byte[byte_to_cp((uint8_t)b)] = (int16_t)b;

        if (slm_gguf_str_eq(model, "llama")) {
                tk->type = SLM_VOCAB_SPM;
                tk->add_bos = true;
                tk->add_space_prefix = true;
        } else if (slm_gguf_str_eq(model, "gpt2")) {
                tk->type = SLM_VOCAB_BPE;
                tk->pre = PRE_GPT2;
                if (slm_gguf_get_str(g, "tokenizer.ggml.pre", &pre) == 0 &&
                    !slm_gguf_str_eq(pre, "default") && !slm_gguf_str_eq(pre, "gpt-2") &&
                    !slm_gguf_str_eq(pre, "gpt2")) {
                        if (slm_gguf_str_eq(pre, "llama-bpe") || slm_gguf_str_eq(pre, "llama3") ||
                            slm_gguf_str_eq(pre, "llama-v3")) {
                                tk->pre = PRE_LLAMA3;
                                tk->ignore_merges = true;
                                tk->add_bos = true;
                        } else if (slm_gguf_str_eq(pre, "qwen2")) {
                                tk->pre = PRE_QWEN2;
                        } else if (slm_gguf_str_eq(pre, "smollm")) {
                                tk->pre = PRE_SMOLLM;
                        } else {
                                r = slm_error_set(err, -ENOTSUP, "unknown pre-tokenizer '%.*s'",
                                                  (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
                                goto fail;
                        }
                }
        } else {
                r = slm_error_set(err, -ENOTSUP, "unknown tokenizer model '%.*s'",
                                  (int)(model.len > 64 ? 64 : model.len), model.ptr);
                goto fail;
        }

        r = load_tokens(tk, g, err);
        if (r < 0)
                goto fail;
        if (tk->type == SLM_VOCAB_BPE) {
                r = load_merges(tk, g, err);
                if (r < 0)
                        goto fail;
                for (int b = 0; b < 256; b++) {
                        char buf[4];
                        size_t n = slm_utf8_encode(byte_to_cp((uint8_t)b), buf);
                        tk->byte_token[b] = slm_strmap_get(&tk->by_text, buf, n);
                }
        }

        r = special_id(tk, g, "tokenizer.ggml.bos_token_id", tk->type == SLM_VOCAB_SPM ? 1 : -1,
                       &tk->bos, err);
        if (r >= 0)
                r = special_id(tk, g, "tokenizer.ggml.eos_token_id",
                               tk->type == SLM_VOCAB_SPM ? 2 : -1, &tk->eos, err);
        if (r >= 0)
                r = special_id(tk, g, "tokenizer.ggml.unknown_token_id",
                               tk->type == SLM_VOCAB_SPM ? 0 : -1, &tk->unk, err);
        if (r < 0)
                goto fail;
        get_bool(g, "tokenizer.ggml.add_bos_token", &tk->add_bos);
        get_bool(g, "tokenizer.ggml.add_eos_token", &tk->add_eos);
        get_bool(g, "tokenizer.ggml.add_space_prefix", &tk->add_space_prefix);
        if (tk->bos < 0)
                tk->add_bos = false;
        if (tk->eos < 0)
                tk->add_eos = false;

        /* end-of-generation tokens */
        if (tk->eos >= 0)
                tk->eog[tk->eos] = true;
        if (slm_gguf_get_u32(g, "tokenizer.ggml.eot_token_id", &eot) == 0 &&
            eot < (uint32_t)tk->n_vocab)
                tk->eog[eot] = true;
        for (size_t i = 0; i < sizeof(eog_texts) / sizeof(eog_texts[0]); i++) {
                int32_t id = slm_tokenizer_find(tk, eog_texts[i]);
                if (id >= 0 && tk->tokens[id].type != SLM_TOKEN_NORMAL)
                        tk->eog[id] = true;
        }

        /* special tokens, matched in the text before tokenizing, longest first */
        tk->special = calloc((size_t)tk->n_vocab, sizeof(int32_t));
        if (!tk->special) {
                r = slm_error_set(err, -ENOMEM, "out of memory");
                goto fail;
        }
        for (int32_t i = 0; i < tk->n_vocab; i++) {
                uint8_t t = tk->tokens[i].type;
                if ((t == SLM_TOKEN_CONTROL || t == SLM_TOKEN_USER_DEFINED ||
                     t == SLM_TOKEN_UNKNOWN) &&
                    tk->tokens[i].len > 0)
                        tk->special[tk->n_special++] = i;
        }
        qsort_r(tk->special, tk->n_special, sizeof(int32_t), cmp_special, tk);

        *ret_tokenizer = tk;
        return 0;
fail:
        slm_tokenizer_free(tk);
        return r;
}

SlmTokenizer *slm_tokenizer_free(SlmTokenizer *tk)
{
        if (!tk)
                return NULL;
        slm_strmap_clear(&tk->by_text);
        slm_strmap_clear(&tk->merges);
        free(tk->tokens);
        free(tk->arena);
        free(tk->merge_arena);
        free(tk->eog);
        free(tk->special);
        free(tk);
        return NULL;
}

SlmVocabType slm_tokenizer_type(const SlmTokenizer *tk)
{
        return tk->type;
}

int32_t slm_tokenizer_n_vocab(const SlmTokenizer *tk)
{
        return tk->n_vocab;
}

int32_t slm_tokenizer_bos(const SlmTokenizer *tk)
{
        return tk->bos;
}

int32_t slm_tokenizer_eos(const SlmTokenizer *tk)
{
        return tk->eos;
}

bool slm_tokenizer_add_bos(const SlmTokenizer *tk)
{
        return tk->add_bos;
}

bool slm_tokenizer_is_eog(const SlmTokenizer *tk, int32_t id)
{
        return id >= 0 && id < tk->n_vocab && tk->eog[id];
}

SlmTokenType slm_tokenizer_token_type(const SlmTokenizer *tk, int32_t id)
{
        return id >= 0 && id < tk->n_vocab ? (SlmTokenType)tk->tokens[id].type : SLM_TOKEN_UNUSED;
}

int32_t slm_tokenizer_find(const SlmTokenizer *tk, const char *text)
{
        return slm_strmap_get(&tk->by_text, text, strlen(text));
}

/* ---- output buffer ------------------------------------------------------------------------- */

typedef struct {
        int32_t *ids;
        size_t n, cap;
        int err;
} IdVec;

static void push(IdVec *v, int32_t id)
{
        if (v->err)
                return;
        if (v->n == v->cap) {
                size_t cap = v->cap ? v->cap * 2 : 64;
                int32_t *p = realloc(v->ids, cap * sizeof(int32_t));
                if (!p) {
                        v->err = -ENOMEM;
                        return;
                }
                v->ids = p;
                v->cap = cap;
        }
        v->ids[v->n++] = id;
}

/* ---- merge queue: a binary heap, lowest priority value first, then leftmost ---------------- */

typedef struct {
        double prio;
        int left, right;
        size_t size;
} Bigram;

typedef struct {
        Bigram *items;
        size_t n, cap;
} Heap;

static bool before(const Bigram *a, const Bigram *b)
{
        return a->prio < b->prio || (a->prio == b->prio && a->left < b->left);
}

static int heap_push(Heap *h, Bigram b)
{
        size_t i;

        if (h->n == h->cap) {
                size_t cap = h->cap ? h->cap * 2 : 64;
                Bigram *p = realloc(h->items, cap * sizeof(Bigram));
                if (!p)
                        return -ENOMEM;
                h->items = p;
                h->cap = cap;
        }
        i = h->n++;
        while (i > 0 && before(&b, &h->items[(i - 1) / 2])) {
                h->items[i] = h->items[(i - 1) / 2];
                i = (i - 1) / 2;
        }
        h->items[i] = b;
        return 0;
}

static Bigram heap_pop(Heap *h)
{
        Bigram top = h->items[0], last = h->items[--h->n];
        size_t i = 0;

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= h->n)
                        break;
                if (c + 1 < h->n && before(&h->items[c + 1], &h->items[c]))
                        c++;
                if (!before(&h->items[c], &last))
                        break;
                h->items[i] = h->items[c];
                i = c;
        }
        if (h->n)
                h->items[i] = last;
        return top;
}

/* ---- symbol chains shared by both merge loops ---------------------------------------------- */

typedef struct {
        const char *text;
        size_t n;
        int prev, next;
} Symbol;

typedef struct {
        const SlmTokenizer *tk;
        Symbol *sym;
        size_t n_sym, cap;
        Heap heap;
        char *buf; /* scratch for "left right" merge keys */
        size_t buf_cap;
} Session;

/* Split @text into one symbol per UTF-8 character. */
static int session_split(Session *s, const char *text, size_t len)
{
        s->n_sym = 0;
        s->heap.n = 0;
        if (len > s->cap) {
                Symbol *p = realloc(s->sym, len * sizeof(Symbol));
                if (!p)
                        return -ENOMEM;
                s->sym = p;
                s->cap = len;
        }
        for (size_t off = 0; off < len;) {
                size_t n = slm_utf8_len((uint8_t)text[off]);
                if (n > len - off)
                        n = len - off;
                s->sym[s->n_sym] = (Symbol){ text + off, n, (int)s->n_sym - 1,
                                             off + n == len ? -1 : (int)s->n_sym + 1 };
                s->n_sym++;
                off += n;
        }
        return 0;
}

/* Queue the merge of symbols @l and @r if the vocabulary has it. */
static int session_try_pair(Session *s, int l, int r)
{
        const SlmTokenizer *tk = s->tk;
        size_t nl, nr;
        int32_t v;

        if (l < 0 || r < 0)
                return 0;
        nl = s->sym[l].n;
        nr = s->sym[r].n;
        if (tk->type == SLM_VOCAB_SPM) {
                v = slm_strmap_get(&tk->by_text, s->sym[l].text, nl + nr);
                if (v < 0)
                        return 0;
                return heap_push(&s->heap, (Bigram){ -(double)tk->tokens[v].score, l, r, nl + nr });
        }
        if (nl + nr + 1 > s->buf_cap) {
                char *p = realloc(s->buf, 2 * (nl + nr + 1));
                if (!p)
                        return -ENOMEM;
                s->buf = p;
                s->buf_cap = 2 * (nl + nr + 1);
        }
        memcpy(s->buf, s->sym[l].text, nl);
        s->buf[nl] = ' ';
        memcpy(s->buf + nl + 1, s->sym[r].text, nr);
        v = slm_strmap_get(&tk->merges, s->buf, nl + nr + 1);
        if (v < 0)
                return 0;
        return heap_push(&s->heap, (Bigram){ (double)v, l, r, nl + nr });
}

/* Merge pairs in queue order until none is left; then emit each symbol's token. */
static int session_merge(Session *s, IdVec *out)
{
        const SlmTokenizer *tk = s->tk;
        int r = 0;

        for (int i = 1; i < (int)s->n_sym && r == 0; i++)
                r = session_try_pair(s, i - 1, i);
        while (s->heap.n > 0 && r == 0) {
                Bigram b = heap_pop(&s->heap);
                Symbol *l = &s->sym[b.left], *rt = &s->sym[b.right];
                /* stale: one side has changed since the pair was queued */
                if (l->n == 0 || rt->n == 0 || l->n + rt->n != b.size)
                        continue;
                l->n += rt->n;
                rt->n = 0;
                l->next = rt->next;
                if (rt->next >= 0)
                        s->sym[rt->next].prev = b.left;
                r = session_try_pair(s, l->prev, b.left);
                if (r == 0)
                        r = session_try_pair(s, b.left, l->next);
        }
        if (r < 0)
                return r;
        for (int i = s->n_sym ? 0 : -1; i != -1; i = s->sym[i].next) {
                const Symbol *sym = &s->sym[i];
                int32_t id = slm_strmap_get(&tk->by_text, sym->text, sym->n);
                if (id >= 0) {
                        push(out, id);
                        continue;
                }
                /* not a token: fall back to one token per byte */
                for (size_t k = 0; k < sym->n; k++) {
                        int32_t bt = tk->byte_token[(uint8_t)sym->text[k]];
                        if (bt >= 0)
                                push(out, bt);
                        else if (tk->type == SLM_VOCAB_SPM && tk->unk >= 0)
                                push(out, tk->unk);
                }
        }
        return out->err;
}

static void session_clear(Session *s)
{
        free(s->sym);
        free(s->heap.items);
        free(s->buf);
}

/* ---- SentencePiece ------------------------------------------------------------------------- */

static int spm_tokenize(Session *s, const char *text, size_t len, bool prefix_space, IdVec *out)
{
        /* spaces become U+2581 (3 bytes) */
        size_t n = (prefix_space ? 3 : 0);
        char *esc;
        int r;

        for (size_t i = 0; i < len; i++)
                n += text[i] == ' ' ? 3 : 1;
        esc = malloc(n ? n : 1);
        if (!esc)
                return -ENOMEM;
        n = 0;
        if (prefix_space) {
                memcpy(esc, "\xe2\x96\x81", 3);
                n = 3;
        }
        for (size_t i = 0; i < len; i++) {
                if (text[i] == ' ') {
                        memcpy(esc + n, "\xe2\x96\x81", 3);
                        n += 3;
                } else {
                        esc[n++] = text[i];
                }
        }
        r = session_split(s, esc, n);
        if (r == 0)
                r = session_merge(s, out);
        free(esc);
        return r;
}

/* ---- byte-level BPE pre-tokenizers --------------------------------------------------------- */

typedef struct {
        uint32_t *cp; /* code points, U+FFFD for bad bytes */
        size_t n;
} Cpts;

typedef struct {
        size_t *end; /* word end positions, in code points */
        size_t n, cap;
} Words;

static int word_end(Words *w, size_t end)
{
        if (w->n && w->end[w->n - 1] == end)
                return 0;
        if (w->n == w->cap) {
                size_t cap = w->cap ? 2 * w->cap : 64;
                size_t *p = realloc(w->end, cap * sizeof(size_t));
                if (!p)
                        return -ENOMEM;
                w->end = p;
                w->cap = cap;
        }
        w->end[w->n++] = end;
        return 0;
}

typedef struct {
        const Cpts *c;
        size_t lo, hi; /* the range being split */
} Range;

#define OUT 0xFFFFFFFFu

static uint32_t cpt_at(const Range *r, size_t i)
{
        return i >= r->lo && i < r->hi ? r->c->cp[i] : OUT;
}

static bool is_l(const Range *r, size_t i)
{
        uint32_t c = cpt_at(r, i);
        return c != OUT && slm_unicode_is_letter(c);
}

static bool is_n(const Range *r, size_t i)
{
        uint32_t c = cpt_at(r, i);
        return c != OUT && slm_unicode_is_number(c);
}

static bool is_s(const Range *r, size_t i)
{
        uint32_t c = cpt_at(r, i);
        return c != OUT && slm_unicode_is_whitespace(c);
}

/* [^\s\p{L}\p{N}] */
static bool is_other(const Range *r, size_t i)
{
        return cpt_at(r, i) != OUT && !is_s(r, i) && !is_l(r, i) && !is_n(r, i);
}

static uint32_t lower_ascii(uint32_t c)
{
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* 's 't 're 've 'm 'll 'd at @pos: the match length, or 0. */
static size_t contraction(const Range *r, size_t pos, bool any_case)
{
        uint32_t a, b;

        if (cpt_at(r, pos) != '\'' || pos + 1 >= r->hi)
                return 0;
        a = cpt_at(r, pos + 1);
        b = cpt_at(r, pos + 2);
        if (any_case) {
                a = lower_ascii(a);
                b = lower_ascii(b);
        }
        if (a == 's' || a == 't' || a == 'm' || a == 'd')
                return 2;
        if (pos + 2 < r->hi &&
            ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')))
                return 3;
        return 0;
}

/* Trailing whitespace: \s+(?!\S) leaves the last space for the next word; else \s+. */
static size_t whitespace_run(const Range *r, size_t pos)
{
        size_t n = 0;

        while (is_s(r, pos + n))
                n++;
        if (n > 1 && cpt_at(r, pos + n) != OUT)
                return n - 1;
        return n;
}

static int split_gpt2(const Range *r, Words *w)
{
        size_t pos = r->lo;
        int err = 0;

        while (pos < r->hi && !err) {
                uint32_t c = cpt_at(r, pos);
                size_t n = contraction(r, pos, false), p2;

                if (n) {
                        pos += n;
                } else if (p2 = pos + (c == ' '), is_l(r, p2)) {
                        for (pos = p2; is_l(r, pos); pos++)
                                ;
                } else if (is_n(r, p2)) {
                        for (pos = p2; is_n(r, pos); pos++)
                                ;
                } else if (is_other(r, p2)) {
                        for (pos = p2; is_other(r, pos); pos++)
                                ;
                } else if ((n = whitespace_run(r, pos)) > 0) {
                        pos += n;
                } else {
                        pos++;
                }
                err = word_end(w, pos);
        }
        return err;
}

static int split_llama3(const Range *r, Words *w, size_t max_digits)
{
        size_t pos = r->lo;
        int err = 0;

        while (pos < r->hi && !err) {
                uint32_t c = cpt_at(r, pos);
                size_t n = contraction(r, pos, true);

                if (n) {
                        pos += n;
                } else if (c != '\r' && c != '\n' && !is_n(r, pos) &&
                           (is_l(r, pos) || is_l(r, pos + 1))) {
                        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
                        for (pos++; is_l(r, pos); pos++)
                                ;
                } else if (is_n(r, pos)) {
                        /* \p{N}{1,max_digits}: runs cut into groups */
                        for (n = 0; is_n(r, pos) && n < max_digits; n++)
                                pos++;
                } else if (is_other(r, pos + (c == ' '))) {
                        /* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
                        for (pos += (c == ' '); is_other(r, pos); pos++)
                                ;
                        while (cpt_at(r, pos) == '\r' || cpt_at(r, pos) == '\n')
                                pos++;
                } else {
                        /* \s*[\r\n]+ ending at the last newline of the run, else as gpt2 */
                        size_t last_nl = 0, k;
                        for (k = 0; is_s(r, pos + k); k++)
                                if (cpt_at(r, pos + k) == '\r' || cpt_at(r, pos + k) == '\n')
                                        last_nl = pos + k + 1;
                        if (last_nl)
                                pos = last_nl;
                        else if ((n = whitespace_run(r, pos)) > 0)
                                pos += n;
                        else
                                pos++;
                }
                err = word_end(w, pos);
        }
        return err;
}

static int pre_tokenize(const SlmTokenizer *tk, const Cpts *c, Words *w)
{
        Range r = { c, 0, c->n };
        int err = 0;

        switch (tk->pre) {
        case PRE_LLAMA3:
                return split_llama3(&r, w, 3);
        case PRE_QWEN2:
                return split_llama3(&r, w, 1);
        case PRE_SMOLLM:
                /* every digit is a word of its own; the runs between go through gpt2 */
                for (size_t i = 0; i <= c->n && !err; i++) {
                        if (i < c->n && !slm_unicode_is_number(c->cp[i]))
                                continue;
                        r.hi = i;
                        if (r.lo < r.hi)
                                err = split_gpt2(&r, w);
                        if (i < c->n && !err)
                                err = word_end(w, i + 1);
                        r.lo = i + 1;
                }
                return err;
        case PRE_GPT2:
        default:
                return split_gpt2(&r, w);
        }
}

static int bpe_tokenize(Session *s, const char *text, size_t len, IdVec *out)
{
        const SlmTokenizer *tk = s->tk;
        Cpts c = { 0 };
        Words w = { 0 };
        char *enc = NULL;
        int r = -ENOMEM;

        c.cp = malloc((len + 1) * sizeof(uint32_t));
        /* U+FFFD replaces a bad byte: 3 bytes of UTF-8, each 2 bytes once mapped */
        enc = malloc(6 * len + 1);
        if (!c.cp || !enc)
                goto out;
        for (size_t i = 0; i < len;) {
                uint32_t cp;
                i += slm_utf8_decode(text + i, len - i, &cp);
                c.cp[c.n++] = cp == SLM_UNICODE_INVALID ? 0xfffd : cp;
        }

        r = pre_tokenize(tk, &c, &w);
        for (size_t k = 0, start = 0; k < w.n && r == 0; start = w.end[k++]) {
                size_t n = 0;
                for (size_t i = start; i < w.end[k]; i++) {
                        char u[4];
                        size_t ul = slm_utf8_encode(c.cp[i], u);
                        for (size_t j = 0; j < ul; j++)
                                n += slm_utf8_encode(byte_to_cp((uint8_t)u[j]), enc + n);
                }
                if (tk->ignore_merges) {
                        int32_t id = slm_strmap_get(&tk->by_text, enc, n);
                        if (id >= 0) {
                                push(out, id);
                                continue;
                        }
                }
                r = session_split(s, enc, n);
                if (r == 0)
                        r = session_merge(s, out);
        }
out:
        free(c.cp);
        free(w.end);
        free(enc);
        return r;
}

/* ---- special tokens and the top level ------------------------------------------------------ */

typedef struct {
        int32_t id; /* -1: raw text */
        size_t off, len;
} Fragment;

typedef struct {
        Fragment *f;
        size_t n, cap;
} Fragments;

static int frag_insert(Fragments *fs, size_t at, Fragment f)
{
        if (fs->n == fs->cap) {
                size_t cap = fs->cap ? 2 * fs->cap : 16;
                Fragment *p = realloc(fs->f, cap * sizeof(Fragment));
                if (!p)
                        return -ENOMEM;
                fs->f = p;
                fs->cap = cap;
        }
        memmove(fs->f + at + 1, fs->f + at, (fs->n - at) * sizeof(Fragment));
        fs->f[at] = f;
        fs->n++;
        return 0;
}

/* Cut raw-text fragments at every occurrence of each special token, longest tokens first. */
static int partition(const SlmTokenizer *tk, const char *text, Fragments *fs, bool parse_special)
{
        for (size_t k = 0; k < tk->n_special; k++) {
                int32_t id = tk->special[k];
                const Token *t = &tk->tokens[id];

                if (!parse_special && t->type != SLM_TOKEN_USER_DEFINED)
                        continue;
                for (size_t i = 0; i < fs->n; i++) {
                        Fragment f = fs->f[i];
                        const char *hit;
                        if (f.id >= 0 || f.len < t->len)
                                continue;
                        hit = memmem(text + f.off, f.len, t->text, t->len);
                        if (!hit)
                                continue;
                        size_t at = (size_t)(hit - text);
                        size_t right_off = at + t->len, right_len = f.off + f.len - right_off;
                        /* [left] token [right]: the right part is looked at next */
                        if (at > f.off) {
                                fs->f[i].len = at - f.off;
                                i++;
                                if (frag_insert(fs, i, (Fragment){ id, 0, 0 }) < 0)
                                        return -ENOMEM;
                        } else {
                                fs->f[i] = (Fragment){ id, 0, 0 };
                        }
                        if (right_len > 0 &&
                            frag_insert(fs, i + 1, (Fragment){ -1, right_off, right_len }) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

int slm_tokenizer_encode(const SlmTokenizer *tk, const char *text, size_t len, unsigned flags,
                         int32_t **ret_ids, size_t *ret_n)
{
        bool add_special = flags & SLM_TOKENIZE_ADD_SPECIAL;
        Session s = { .tk = tk };
        Fragments fs = { 0 };
        IdVec out = { 0 };
        bool prev_special = true;
        int r = 0;

        if (add_special && tk->add_bos)
                push(&out, tk->bos);
        if (len > 0) {
                r = frag_insert(&fs, 0, (Fragment){ -1, 0, len });
                if (r == 0)
                        r = partition(tk, text, &fs, flags & SLM_TOKENIZE_PARSE_SPECIAL);
        }
        for (size_t i = 0; i < fs.n && r == 0; i++) {
                const Fragment *f = &fs.f[i];
                if (f->id >= 0) {
                        push(&out, f->id);
                        prev_special = true;
                        continue;
                }
                if (tk->type == SLM_VOCAB_SPM)
                        r = spm_tokenize(&s, text + f->off, f->len,
                                         tk->add_space_prefix && prev_special, &out);
                else
                        r = bpe_tokenize(&s, text + f->off, f->len, &out);
                prev_special = false;
        }
        if (add_special && tk->add_eos)
                push(&out, tk->eos);
        if (r == 0)
                r = out.err;
        session_clear(&s);
        free(fs.f);
        if (r < 0) {
                free(out.ids);
                return r;
        }
        *ret_ids = out.ids ? out.ids : calloc(1, sizeof(int32_t));
        if (!*ret_ids)
                return -ENOMEM;
        *ret_n = out.n;
        return 0;
}

/* ---- decoding ------------------------------------------------------------------------------ */

const char *slm_tokenizer_piece(const SlmTokenizer *tk, int32_t id, bool special, size_t *ret_len)
{
        const Token *t;

        *ret_len = 0;
        if (id < 0 || id >= tk->n_vocab)
                return NULL;
        t = &tk->tokens[id];
        if (!special && t->type == SLM_TOKEN_CONTROL)
                return "";
        *ret_len = t->piece_len;
        return t->piece;
}

int slm_tokenizer_decode(const SlmTokenizer *tk, const int32_t *ids, size_t n, bool special,
                         char **ret_text, size_t *ret_len)
{
        size_t total = 0, len, pos = 0;
        bool strip = tk->type == SLM_VOCAB_SPM && tk->add_space_prefix;
        char *text;

        for (size_t i = 0; i < n; i++) {
                if (!slm_tokenizer_piece(tk, ids[i], special, &len))
                        return -EINVAL;
                total += len;
        }
        text = malloc(total + 1);
        if (!text)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *p = slm_tokenizer_piece(tk, ids[i], special, &len);
                if (strip && len > 0 && p[0] == ' ') {
                        p++;
                        len--;
                }
                if (len > 0 || tk->tokens[ids[i]].type != SLM_TOKEN_CONTROL)
                        strip = false;
                memcpy(text + pos, p, len);
                pos += len;
        }
        text[pos] = 0;
        *ret_text = text;
        *ret_len = pos;
        return 0;
}

void slm_detokenizer_init(SlmDetokenizer *d, const SlmTokenizer *tk, bool special)
{
        memset(d, 0, sizeof(*d));
        d->tk = tk;
        d->special = special;
}

/* Append @n bytes as valid UTF-8 (bad sequences as U+FFFD), holding an unfinished tail. */
static int emit_utf8(SlmDetokenizer *d, const char *p, size_t n, char *out, size_t size, bool final)
{
        size_t o = 0, i = 0;

        while (i < n) {
                uint32_t cp;
                size_t want = slm_utf8_len((uint8_t)p[i]);
                if (!final && want > n - i && slm_utf8_complete_prefix(p + i, n - i) == 0) {
                        /* the start of a character that later bytes may complete */
                        memcpy(d->pending, p + i, n - i);
                        d->n_pending = n - i;
                        return (int)o;
                }
                size_t used = slm_utf8_decode(p + i, n - i, &cp);
                if (o + 4 > size)
                        return -ENOBUFS;
                if (cp == SLM_UNICODE_INVALID) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                } else {
                        memcpy(out + o, p + i, used);
                        o += used;
                }
                i += used;
        }
        return (int)o;
}

int slm_detokenizer_feed(SlmDetokenizer *d, int32_t id, char *out, size_t size)
{
        size_t len;
        const char *piece = slm_tokenizer_piece(d->tk, id, d->special, &len);
        char buf[8 + 1024 * 2 + 4];
        size_t n = d->n_pending;

        if (!piece)
                return -EINVAL;
        memcpy(buf, d->pending, n);
        memcpy(buf + n, piece, len);
        n += len;
        d->n_pending = 0;
        return emit_utf8(d, buf, n, out, size, false);
}

int slm_detokenizer_flush(SlmDetokenizer *d, char *out, size_t size)
{
        char buf[8];
        size_t n = d->n_pending;

        memcpy(buf, d->pending, n);
        d->n_pending = 0;
        return emit_utf8(d, buf, n, out, size, true);
}
