/* SPDX-License-Identifier: MIT */
/*
 * Tokenizers built from GGUF metadata (tokenizer.ggml.*):
 *
 *   model "llama"  SentencePiece-style: pieces merged pairwise by score,
 *                  spaces as U+2581, a leading space added, unknown bytes
 *                  as <0xXX> byte tokens.
 *   model "gpt2"   byte-level BPE: text split by the pre-tokenizer named in
 *                  tokenizer.ggml.pre (default/gpt-2, llama-bpe, qwen2),
 *                  bytes mapped to printable code points, merges by rank.
 *
 * Control and user-defined tokens are matched in the text before either
 * runs (control tokens only when asked to parse special text).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SlmTokenizer SlmTokenizer;

typedef enum {
        SLM_VOCAB_SPM,
        SLM_VOCAB_BPE,
} SlmVocabType;

/* Token types as GGUF stores them (tokenizer.ggml.token_type). */
typedef enum {
        SLM_TOKEN_NORMAL = 1,
        SLM_TOKEN_UNKNOWN = 2,
        SLM_TOKEN_CONTROL = 3,
        SLM_TOKEN_USER_DEFINED = 4,
        SLM_TOKEN_UNUSED = 5,
        SLM_TOKEN_BYTE = 6,
} SlmTokenType;

enum {
        SLM_TOKENIZE_ADD_SPECIAL = 1 << 0,   /* BOS (and EOS) as the vocabulary asks */
        SLM_TOKENIZE_PARSE_SPECIAL = 1 << 1, /* match control-token text like "<s>" */
};

int slm_tokenizer_new(const SlmGguf *g, SlmTokenizer **ret_tokenizer, SlmError *err);
SlmTokenizer *slm_tokenizer_free(SlmTokenizer *tk);

SlmVocabType slm_tokenizer_type(const SlmTokenizer *tk);
int32_t slm_tokenizer_n_vocab(const SlmTokenizer *tk);
int32_t slm_tokenizer_bos(const SlmTokenizer *tk); /* -1 when none */
int32_t slm_tokenizer_eos(const SlmTokenizer *tk);
bool slm_tokenizer_add_bos(const SlmTokenizer *tk);
/* End of generation: EOS, EOT and the like (<|im_end|>, <|end|>, <end_of_turn>...). */
bool slm_tokenizer_is_eog(const SlmTokenizer *tk, int32_t id);
SlmTokenType slm_tokenizer_token_type(const SlmTokenizer *tk, int32_t id);
/* Id of the token whose text is exactly @text, or -1. */
int32_t slm_tokenizer_find(const SlmTokenizer *tk, const char *text);

/* Encode @len bytes of @text; *ret_ids is malloc'ed (free it), *ret_n its length. */
int slm_tokenizer_encode(const SlmTokenizer *tk, const char *text, size_t len, unsigned flags,
                         int32_t **ret_ids, size_t *ret_n);

/*
 * The bytes a token stands for. Control tokens give nothing unless
 * @special. Returns a pointer valid as long as the tokenizer, or NULL
 * with *ret_len = 0 for an id out of range.
 */
const char *slm_tokenizer_piece(const SlmTokenizer *tk, int32_t id, bool special, size_t *ret_len);

/*
 * Decode @n ids into a malloc'ed NUL-terminated string of *ret_len bytes
 * (raw bytes: may be invalid UTF-8 if the ids split a character). The
 * leading space SentencePiece adds is removed from the first piece.
 */
int slm_tokenizer_decode(const SlmTokenizer *tk, const int32_t *ids, size_t n, bool special,
                         char **ret_text, size_t *ret_len);

/*
 * Streaming decoder: text comes out only in whole UTF-8 characters; a
 * character split across tokens is held back until it is complete, and
 * bytes that can never form one come out as U+FFFD.
 */
typedef struct {
        const SlmTokenizer *tk;
        bool special;
        char pending[8];
        size_t n_pending;
} SlmDetokenizer;

void slm_detokenizer_init(SlmDetokenizer *d, const SlmTokenizer *tk, bool special);
/*
 * Feed one token; writes at most 12 + the piece's length bytes of valid
 * UTF-8 to @out (room: @size) and returns how many, or -ENOBUFS.
 */
int slm_detokenizer_feed(SlmDetokenizer *d, int32_t id, char *out, size_t size);
/* What is still held back, as U+FFFD replacements; returns bytes written. */
int slm_detokenizer_flush(SlmDetokenizer *d, char *out, size_t size);

#ifdef __cplusplus
}
#endif
