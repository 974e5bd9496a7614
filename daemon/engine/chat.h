/* SPDX-License-Identifier: MIT */
/*
 * Chat templates: role/content messages turned into the text a model was
 * trained on. The template is recognized from tokenizer.chat_template in
 * the GGUF metadata (the markers each family uses), else from the
 * vocabulary; models without one get plain "User:"/"Assistant:" turns.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "gguf.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
        SLM_CHAT_PLAIN,
        SLM_CHAT_LLAMA2,
        SLM_CHAT_PHI3,
        SLM_CHAT_GEMMA,
        SLM_CHAT_CHATML,
} SlmChatTemplate;

typedef struct {
        const char *role; /* "system", "user" or "assistant" */
        const char *content;
} SlmChatMessage;

SlmChatTemplate slm_chat_template_detect(const SlmGguf *g, const SlmTokenizer *tk);
const char *slm_chat_template_name(SlmChatTemplate t);

/*
 * Format @n messages, ending with the opening of the assistant's turn.
 * *ret_text is malloc'ed. -EINVAL for an unknown role.
 */
int slm_chat_format(SlmChatTemplate t, const SlmChatMessage *msgs, size_t n, char **ret_text);

#ifdef __cplusplus
}
#endif
