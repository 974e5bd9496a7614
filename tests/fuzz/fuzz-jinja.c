/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: arbitrary bytes as a chat template (and, after a NUL byte,
 * as the JSON of its variables), parsed and rendered under tight limits.
 * Without a NUL the template renders a conversation with every kind of
 * turn, tools and a tool call.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"
#include "value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char conversation[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \"Hi \\u00e9\\n\"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"type\": \"function\","
    " \"id\": \"abc123XYZ\", \"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1}}}]},"
    " {\"role\": \"tool\", \"content\": \"{}\", \"tool_call_id\": \"abc123XYZ\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"integer\"}}}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *src = (const char *)data;
        const char *nul = memchr(src, 0, size);
        size_t tlen = nul ? (size_t)(nul - src) : size;
        const char *json = nul ? nul + 1 : conversation;
        size_t jlen = nul ? size - tlen - 1 : sizeof(conversation) - 1;
        SlmJinjaOptions opts = { .max_output = 1 << 16,
                                 .max_memory = 16 << 20,
                                 .max_steps = 200000,
                                 .now = 1785067200,
                                 .utc = true };
        SlmArena arena;
        SlmValue vars;
        SlmJinja *t = NULL;
        SlmError err;
        char *out = NULL;
        size_t olen;

        slm_arena_init(&arena, 16 << 20);
        if (slm_json_parse(&arena, json, jlen, &vars, &err) == 0) {
                /* what the parser read is written back, and that reads back the same */
                SlmBuf b1 = { 0 }, b2 = { 0 };
                SlmValue again;
                if (slm_json_write(&b1, vars, 0) != 0 ||
                    slm_json_parse(&arena, b1.s, b1.n, &again, &err) != 0 ||
                    slm_json_write(&b2, again, 0) != 0 || b1.n != b2.n ||
                    memcmp(b1.s, b2.s, b1.n) != 0)
                        abort();
                slm_buf_free(&b1);
                slm_buf_free(&b2);
                if (slm_jinja_parse(src, tlen, &t, &err) == 0 &&
                    slm_jinja_render(t, vars, &opts, &out, &olen, &err) == 0 &&
                    olen > opts.max_output)
                        abort();
        }
        free(out);
        slm_jinja_free(t);
        slm_arena_clear(&arena);
        return 0;
}
