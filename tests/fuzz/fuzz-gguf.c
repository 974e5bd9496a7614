/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: arbitrary bytes through the GGUF reader, and when they parse,
 * through the model loader (hyperparameters, tokenizer, tensor shapes) and a
 * tokenize + two-token forward pass when the model loads.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        SlmGguf *g = NULL;
        SlmModel *m = NULL;
        SlmBackend *b = NULL;
        SlmContext *ctx = NULL;
        SlmError err;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        static const char text[] = "Hello <s> world, 123 caf\xc3\xa9!";

        if (slm_gguf_open_buffer(data, size, &g, &err) < 0)
                return 0;
        if (slm_model_load_gguf(g, &m, &err) < 0) {
                slm_gguf_free(g);
                return 0;
        }
        const SlmTokenizer *tk = slm_model_tokenizer(m);
        if (slm_tokenizer_encode(tk, text, sizeof(text) - 1,
                                 SLM_TOKENIZE_ADD_SPECIAL | SLM_TOKENIZE_PARSE_SPECIAL, &ids,
                                 &n_ids) == 0 &&
            n_ids > 0 && slm_backend_new("cpu", 1, &b) == 0 &&
            slm_context_new(m, b, 8, SLM_TYPE_Q8_0, &ctx, &err) == 0) {
                char *out = NULL;
                size_t len;
                if (slm_tokenizer_decode(tk, ids, n_ids, true, &out, &len) == 0)
                        free(out);
                slm_context_eval(ctx, ids, n_ids < 2 ? (int)n_ids : 2, NULL);
        }
        free(ids);
        slm_context_free(ctx);
        slm_backend_free(b);
        slm_model_free(m);
        return 0;
}
