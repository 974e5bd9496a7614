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
#include "value.h"

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

/*
 * A model's way of writing a conversation: its own Jinja template from
 * tokenizer.chat_template when the file has one that parses, else the
 * built-in format recognized above.
 */
typedef struct SlmChat SlmChat;

int slm_chat_new(const SlmGguf *g, const SlmTokenizer *tk, SlmChat **ret);
SlmChat *slm_chat_free(SlmChat *c);
/* "jinja" for the file's template, else the built-in format's name. */
const char *slm_chat_name(const SlmChat *c);
bool slm_chat_has_template(const SlmChat *c);
/* Why the file's template is not used (it does not parse), or NULL. */
const char *slm_chat_template_error(const SlmChat *c);

typedef struct {
        SlmValue messages; /* a list of dicts: role, content, tool_calls, tool_call_id, ... */
        SlmValue tools;    /* a list of function definitions, or undefined */
        bool add_generation_prompt;
        SlmValue extra; /* a dict of more template variables, or undefined */
        int64_t now;    /* strftime_now's time; 0: the clock */
} SlmChatInput;

/*
 * The conversation as the model reads it; *ret_text is malloc'ed. With the
 * file's template: -ECANCELED when the template refuses the conversation
 * (its raise_exception message in @err), -EINVAL when it fails, -E2BIG at a
 * limit. With a built-in format: -EINVAL for turns it cannot write (roles
 * other than system, user and assistant; tools; tool calls).
 */
int slm_chat_render(const SlmChat *c, const SlmChatInput *in, char **ret_text, size_t *ret_len,
                    SlmError *err);

/* How a model writes its tool calls, as its template shows them to it. */
typedef enum {
        SLM_TOOLS_JSON,       /* {"name": ..., "arguments": {...}}: no template says otherwise */
        SLM_TOOLS_TAGGED,     /* <tool_call>\n{"name": ..., "arguments": ...}\n</tool_call> */
        SLM_TOOLS_MISTRAL,    /* [TOOL_CALLS][{"name": ..., "arguments": ...}] */
        SLM_TOOLS_PARAMETERS, /* {"name": ..., "parameters": {...}} (Llama 3) */
} SlmToolFormat;

SlmToolFormat slm_chat_tool_format(const SlmChat *c);
/* The text that opens a call in that format ("{" for the JSON ones, at the start of the answer). */
const char *slm_chat_tool_trigger(const SlmChat *c);

/*
 * GBNF for one call of a function of @tools_json (an OpenAI tools array), in
 * the model's format, its arguments under the function's parameter schema;
 * @only: the function's name, or NULL for any. With @after_trigger the text
 * starts right after the trigger. *ret_gbnf is malloc'ed; -EINVAL for bad
 * tools or a schema the grammar cannot honour.
 */
int slm_chat_tool_grammar(const SlmChat *c, const char *tools_json, size_t len, const char *only,
                          bool after_trigger, char **ret_gbnf, SlmError *err);

/*
 * The calls in a model's answer, as a JSON array of {"name", "arguments"}
 * (malloc'ed; "[]" when it holds none).
 */
int slm_chat_parse_tool_calls(const SlmChat *c, const char *text, size_t len, char **ret_json);

#ifdef __cplusplus
}
#endif
