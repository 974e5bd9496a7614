/* SPDX-License-Identifier: MIT */
#include "chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grammar.h"
#include "jinja.h"

static bool meta_contains(const SlmGguf *g, const char *needle)
{
        SlmGgufStr s;

        return slm_gguf_get_str(g, "tokenizer.chat_template", &s) == 0 &&
               memmem(s.ptr, s.len, needle, strlen(needle)) != NULL;
}

SlmChatTemplate slm_chat_template_detect(const SlmGguf *g, const SlmTokenizer *tk)
{
        if (meta_contains(g, "<|im_start|>"))
                return SLM_CHAT_CHATML;
        if (meta_contains(g, "<|assistant|>"))
                return SLM_CHAT_PHI3;
        if (meta_contains(g, "<start_of_turn>"))
                return SLM_CHAT_GEMMA;
        if (meta_contains(g, "[INST]"))
                return SLM_CHAT_LLAMA2;
        /* no template: what the vocabulary was built for */
        if (slm_tokenizer_find(tk, "<|im_start|>") >= 0)
                return SLM_CHAT_CHATML;
        if (slm_tokenizer_find(tk, "<|assistant|>") >= 0)
                return SLM_CHAT_PHI3;
        if (slm_tokenizer_find(tk, "<start_of_turn>") >= 0)
                return SLM_CHAT_GEMMA;
        return SLM_CHAT_PLAIN;
}

const char *slm_chat_template_name(SlmChatTemplate t)
{
        static const char *const names[] = { "plain", "llama-2", "phi-3", "gemma", "chatml" };
        return names[t];
}

int slm_chat_format(SlmChatTemplate t, const SlmChatMessage *msgs, size_t n, char **ret_text)
{
        SlmBuf b = { 0 };
        const char *system = NULL;

        slm_buf_puts(&b, "");
        for (size_t i = 0; i < n; i++) {
                const char *role = msgs[i].role, *c = msgs[i].content;
                bool sys = strcmp(role, "system") == 0, user = strcmp(role, "user") == 0;
                bool asst = strcmp(role, "assistant") == 0;

                if (!sys && !user && !asst) {
                        slm_buf_free(&b);
                        return -EINVAL;
                }
                switch (t) {
                case SLM_CHAT_CHATML:
                        slm_buf_puts(&b, "<|im_start|>");
                        slm_buf_puts(&b, role);
                        slm_buf_puts(&b, "\n");
                        slm_buf_puts(&b, c);
                        slm_buf_puts(&b, "<|im_end|>\n");
                        break;
                case SLM_CHAT_PHI3:
                        slm_buf_puts(&b, sys    ? "<|system|>\n"
                                         : user ? "<|user|>\n"
                                                : "<|assistant|>\n");
                        slm_buf_puts(&b, c);
                        slm_buf_puts(&b, "<|end|>\n");
                        break;
                case SLM_CHAT_GEMMA:
                        /* no system turn: it is folded into the next user turn */
                        if (sys) {
                                system = c;
                                break;
                        }
                        slm_buf_puts(&b, user ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
                        if (user && system) {
                                slm_buf_puts(&b, system);
                                slm_buf_puts(&b, "\n\n");
                                system = NULL;
                        }
                        slm_buf_puts(&b, c);
                        slm_buf_puts(&b, "<end_of_turn>\n");
                        break;
                case SLM_CHAT_LLAMA2:
                        if (sys) {
                                system = c;
                                break;
                        }
                        if (user) {
                                slm_buf_puts(&b, b.n ? "<s>[INST] " : "[INST] ");
                                if (system) {
                                        slm_buf_puts(&b, "<<SYS>>\n");
                                        slm_buf_puts(&b, system);
                                        slm_buf_puts(&b, "\n<</SYS>>\n\n");
                                        system = NULL;
                                }
                                slm_buf_puts(&b, c);
                                slm_buf_puts(&b, " [/INST]");
                        } else {
                                slm_buf_puts(&b, " ");
                                slm_buf_puts(&b, c);
                                slm_buf_puts(&b, " </s>");
                        }
                        break;
                case SLM_CHAT_PLAIN:
                default:
                        slm_buf_puts(&b, sys ? "System: " : user ? "User: " : "Assistant: ");
                        slm_buf_puts(&b, c);
                        slm_buf_puts(&b, "\n");
                        break;
                }
        }
        switch (t) {
        case SLM_CHAT_CHATML:
                slm_buf_puts(&b, "<|im_start|>assistant\n");
                break;
        case SLM_CHAT_PHI3:
                slm_buf_puts(&b, "<|assistant|>\n");
                break;
        case SLM_CHAT_GEMMA:
                slm_buf_puts(&b, "<start_of_turn>model\n");
                break;
        case SLM_CHAT_LLAMA2:
                break; /* the answer follows [/INST] */
        case SLM_CHAT_PLAIN:
        default:
                slm_buf_puts(&b, "Assistant:");
                break;
        }
        if (b.failed) {
                slm_buf_free(&b);
                return -ENOMEM;
        }
        *ret_text = b.s;
        return 0;
}

/* ---- the model's own template ---- */

struct SlmChat {
        SlmJinja *jinja; /* NULL: the built-in format */
        SlmToolFormat tools;
        SlmChatTemplate builtin;
        char *bos, *eos; /* the control tokens' text, for the template */
        char error[256]; /* why the file's template is not used */
};

static bool has_text(SlmGgufStr s, const char *needle)
{
        return memmem(s.ptr, s.len, needle, strlen(needle)) != NULL;
}

static char *piece(const SlmTokenizer *tk, int32_t id)
{
        size_t len = 0;
        const char *p = id >= 0 ? slm_tokenizer_piece(tk, id, true, &len) : NULL;
        char *s = malloc(len + 1);

        if (s) {
                if (len)
                        memcpy(s, p, len);
                s[len] = 0;
        }
        return s;
}

int slm_chat_new(const SlmGguf *g, const SlmTokenizer *tk, SlmChat **ret)
{
        SlmChat *c = calloc(1, sizeof(*c));
        SlmGgufStr src;
        SlmError err;

        if (!c)
                return -ENOMEM;
        c->builtin = slm_chat_template_detect(g, tk);
        c->bos = piece(tk, slm_tokenizer_bos(tk));
        c->eos = piece(tk, slm_tokenizer_eos(tk));
        if (!c->bos || !c->eos) {
                slm_chat_free(c);
                return -ENOMEM;
        }
        c->tools = SLM_TOOLS_JSON;
        if (slm_gguf_get_str(g, "tokenizer.chat_template", &src) == 0 && src.len > 0) {
                /* how the template shows the model's own calls */
                if (has_text(src, "<tool_call>"))
                        c->tools = SLM_TOOLS_TAGGED;
                else if (has_text(src, "[TOOL_CALLS]"))
                        c->tools = SLM_TOOLS_MISTRAL;
                else if (has_text(src, "\"parameters\": "))
                        c->tools = SLM_TOOLS_PARAMETERS;
                int r = slm_jinja_parse(src.ptr, src.len, &c->jinja, &err);
                if (r == -ENOMEM) {
                        slm_chat_free(c);
                        return r;
                }
                if (r < 0)
                        snprintf(c->error, sizeof(c->error), "%s", err.msg);
        }
        *ret = c;
        return 0;
}

SlmChat *slm_chat_free(SlmChat *c)
{
        if (c) {
                slm_jinja_free(c->jinja);
                free(c->bos);
                free(c->eos);
                free(c);
        }
        return NULL;
}

const char *slm_chat_name(const SlmChat *c)
{
        return c->jinja ? "jinja" : slm_chat_template_name(c->builtin);
}

const char *slm_chat_template_error(const SlmChat *c)
{
        return c->error[0] ? c->error : NULL;
}

bool slm_chat_has_template(const SlmChat *c)
{
        return c->jinja != NULL;
}

/* The built-in formats know system, user and assistant turns of plain text. */
static int render_builtin(const SlmChat *c, const SlmChatInput *in, char **ret_text,
                          size_t *ret_len, SlmError *err)
{
        const SlmList *l = in->messages.list;
        SlmChatMessage *msgs = calloc(l->n ? l->n : 1, sizeof(*msgs));
        int r;

        if (!msgs)
                return slm_error_set(err, -ENOMEM, "out of memory");
        if (in->tools.type == SLM_VALUE_LIST && in->tools.list->n > 0) {
                free(msgs);
                return slm_error_set(err, -EINVAL,
                                     "the model's file has no chat template to show tools with");
        }
        for (size_t i = 0; i < l->n; i++) {
                const SlmValue *role =
                    l->v[i].type == SLM_VALUE_DICT ? slm_dict_get_str(l->v[i].dict, "role") : NULL;
                const SlmValue *content = role ? slm_dict_get_str(l->v[i].dict, "content") : NULL;
                if (!role || role->type != SLM_VALUE_STRING ||
                    (content && content->type != SLM_VALUE_STRING) ||
                    (strcmp(role->s, "system") && strcmp(role->s, "user") &&
                     strcmp(role->s, "assistant")) ||
                    slm_dict_get_str(l->v[i].dict, "tool_calls")) {
                        free(msgs);
                        return slm_error_set(err, -EINVAL,
                                             "message %zu: the model's file has no chat template, "
                                             "and the built-in %s format knows only system, user "
                                             "and assistant turns of text",
                                             i + 1, slm_chat_template_name(c->builtin));
                }
                msgs[i] = (SlmChatMessage){ role->s, content ? content->s : "" };
        }
        r = slm_chat_format(c->builtin, msgs, l->n, ret_text);
        free(msgs);
        if (r < 0)
                return slm_error_set(err, r, "cannot format the conversation: %s", strerror(-r));
        *ret_len = strlen(*ret_text);
        return 0;
}

int slm_chat_render(const SlmChat *c, const SlmChatInput *in, char **ret_text, size_t *ret_len,
                    SlmError *err)
{
        SlmArena a;
        SlmValue vars;
        int r;

        if (in->messages.type != SLM_VALUE_LIST)
                return slm_error_set(err, -EINVAL, "messages must be a list");
        if (!c->jinja)
                return render_builtin(c, in, ret_text, ret_len, err);
        slm_arena_init(&a, 0);
        vars = slm_value_new_dict(&a);
        r = vars.type == SLM_VALUE_DICT ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && in->extra.type == SLM_VALUE_DICT && i < in->extra.dict->n; i++)
                r = slm_dict_set(&a, vars.dict, in->extra.dict->e[i].key,
                                 in->extra.dict->e[i].value);
        /* what transformers passes to apply_chat_template */
        const struct {
                const char *name;
                SlmValue v;
        } set[] = {
                { "messages", in->messages },
                { "tools", in->tools },
                { "add_generation_prompt", slm_value_bool(in->add_generation_prompt) },
                { "bos_token", slm_value_str_static(c->bos, strlen(c->bos)) },
                { "eos_token", slm_value_str_static(c->eos, strlen(c->eos)) },
        };
        for (size_t i = 0; r == 0 && i < sizeof(set) / sizeof(set[0]); i++)
                if (set[i].v.type != SLM_VALUE_UNDEFINED)
                        r = slm_dict_set(&a, vars.dict,
                                         slm_value_str_static(set[i].name, strlen(set[i].name)),
                                         set[i].v);
        if (r < 0) {
                slm_arena_clear(&a);
                return slm_error_set(err, -ENOMEM, "out of memory");
        }
        SlmJinjaOptions opts = { .now = in->now ? in->now : (int64_t)time(NULL) };
        r = slm_jinja_render(c->jinja, vars, &opts, ret_text, ret_len, err);
        slm_arena_clear(&a);
        return r;
}

/* ---- tool calls ---- */

SlmToolFormat slm_chat_tool_format(const SlmChat *c)
{
        return c->tools;
}

const char *slm_chat_tool_trigger(const SlmChat *c)
{
        switch (c->tools) {
        case SLM_TOOLS_TAGGED:
                return "<tool_call>";
        case SLM_TOOLS_MISTRAL:
                return "[TOOL_CALLS]";
        default:
                return "{";
        }
}

static bool is_function_list(SlmValue tools, SlmError *err)
{
        if (tools.type != SLM_VALUE_LIST || tools.list->n == 0) {
                slm_error_set(err, -EINVAL, "tools must be a non-empty JSON array");
                return false;
        }
        return true;
}

/* A tool's function: {"type": "function", "function": {...}} or the function itself. */
static const SlmDict *function_of(SlmValue tool)
{
        if (tool.type != SLM_VALUE_DICT)
                return NULL;
        const SlmValue *f = slm_dict_get_str(tool.dict, "function");
        if (f && f->type == SLM_VALUE_DICT)
                return f->dict;
        return tool.dict;
}

int slm_chat_tool_grammar(const SlmChat *c, const char *tools_json, size_t len, const char *only,
                          bool after_trigger, char **ret_gbnf, SlmError *err)
{
        SlmArena a;
        SlmValue tools;
        SlmBuf out = { 0 }, names = { 0 };
        int r, n_alts = 0;

        slm_arena_init(&a, 64u << 20);
        r = slm_json_parse(&a, tools_json, len, &tools, err);
        if (r < 0) {
                slm_error_prefix(err, "tools");
                slm_arena_clear(&a);
                return r;
        }
        if (!is_function_list(tools, err) ||
            (tools.list->n > 256 && slm_error_set(err, -EINVAL, "tools: more than 256") < 0)) {
                slm_arena_clear(&a);
                return -EINVAL;
        }
        const char *args_key = c->tools == SLM_TOOLS_PARAMETERS ? "parameters" : "arguments";
        for (size_t i = 0; i < tools.list->n && r == 0; i++) {
                const SlmDict *f = function_of(tools.list->v[i]);
                const SlmValue *name = f ? slm_dict_get_str(f, "name") : NULL;
                const SlmValue *params = f ? slm_dict_get_str(f, "parameters") : NULL;
                if (!name || name->type != SLM_VALUE_STRING || name->len == 0) {
                        r = slm_error_set(err, -EINVAL, "tools: function %zu has no name", i + 1);
                        break;
                }
                if (only && strcmp(only, name->s) != 0)
                        continue;
                SlmBuf schema = { 0 };
                if (params)
                        slm_json_write_compact(&schema, *params);
                else
                        slm_buf_puts(&schema, "{\"type\": \"object\"}");
                int root;
                r = schema.failed ? -ENOMEM
                                  : slm_json_schema_rules(schema.s, schema.n, (int)(i + 1) * 4096,
                                                          &out, &root, err);
                slm_buf_free(&schema);
                if (r < 0) {
                        char what[64];
                        snprintf(what, sizeof(what), "tools: %.40s", name->s);
                        slm_error_prefix(err, what);
                        break;
                }
                /* "name": "f", "arguments": {...} */
                SlmBuf lit = { 0 };
                slm_json_write_compact(&lit, *name);
                slm_buf_printf(&names, "%s(\"\\\"name\\\"\" ws \":\" ws \"", n_alts ? " | " : "");
                for (size_t k = 0; k < lit.n; k++) {
                        if (lit.s[k] == '"' || lit.s[k] == '\\')
                                slm_buf_put(&names, "\\", 1);
                        slm_buf_put(&names, lit.s + k, 1);
                }
                slm_buf_printf(&names, "\" ws \",\" ws \"\\\"%s\\\"\" ws \":\" ws r%d)", args_key,
                               root);
                slm_buf_free(&lit);
                n_alts++;
        }
        if (r == 0 && n_alts == 0)
                r = slm_error_set(err, -EINVAL, "tool-choice names no function of the tools");
        if (r == 0) {
                /* a call after its "{", then the whole of it in the model's own wrapping */
                slm_buf_printf(&out, "call-rest ::= ws (%s) ws \"}\"\ncall ::= \"{\" call-rest\n",
                               names.s);
                if (c->tools == SLM_TOOLS_TAGGED)
                        slm_buf_printf(&out, "root ::= %s\"\\n\" call \"\\n</tool_call>\"\n",
                                       after_trigger ? "" : "\"<tool_call>\" ");
                else if (c->tools == SLM_TOOLS_MISTRAL)
                        slm_buf_printf(&out, "root ::= %s\"[\" call \"]\"\n",
                                       after_trigger ? "" : "\"[TOOL_CALLS]\" ");
                else
                        slm_buf_puts(&out,
                                     after_trigger ? "root ::= call-rest\n" : "root ::= call\n");
                slm_json_schema_common_rules(&out);
                if (out.failed)
                        r = slm_error_set(err, -ENOMEM, "out of memory");
        }
        slm_buf_free(&names);
        slm_arena_clear(&a);
        if (r < 0) {
                slm_buf_free(&out);
                return r;
        }
        *ret_gbnf = out.s;
        return 0;
}

/* Length of the JSON object or array at @s (balanced brackets outside strings), or 0. */
static size_t json_extent(const char *s, size_t n)
{
        int depth = 0;
        bool in_str = false;

        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                if (in_str) {
                        if (ch == '\\')
                                i++;
                        else if (ch == '"')
                                in_str = false;
                } else if (ch == '"') {
                        in_str = true;
                } else if (ch == '{' || ch == '[') {
                        depth++;
                } else if (ch == '}' || ch == ']') {
                        if (--depth == 0)
                                return i + 1;
                        if (depth < 0)
                                return 0;
                }
        }
        return 0;
}

/* Add the call object at @s (its JSON text) to @calls, when it is one. */
static int add_call(SlmArena *a, SlmValue calls, const char *s, size_t n)
{
        SlmValue v, call;
        SlmError err;

        if (slm_json_parse(a, s, n, &v, &err) < 0)
                return 0;
        if (v.type == SLM_VALUE_LIST) {
                for (size_t i = 0; i < v.list->n; i++) {
                        SlmBuf one = { 0 };
                        int r = slm_json_write_compact(&one, v.list->v[i]);
                        if (r == 0)
                                r = add_call(a, calls, one.s, one.n);
                        slm_buf_free(&one);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        const SlmValue *name = v.type == SLM_VALUE_DICT ? slm_dict_get_str(v.dict, "name") : NULL;
        const SlmValue *args = name ? slm_dict_get_str(v.dict, "arguments") : NULL;
        if (name && !args)
                args = slm_dict_get_str(v.dict, "parameters");
        if (!name || name->type != SLM_VALUE_STRING || !args)
                return 0;
        SlmValue parsed = *args;
        if (args->type == SLM_VALUE_STRING &&
            slm_json_parse(a, args->s, args->len, &parsed, &err) < 0)
                parsed = *args;
        call = slm_value_new_dict(a);
        if (call.type != SLM_VALUE_DICT ||
            slm_dict_set(a, call.dict, slm_value_str_static("name", 4), *name) < 0 ||
            slm_dict_set(a, call.dict, slm_value_str_static("arguments", 9), parsed) < 0 ||
            slm_list_append(a, calls.list, call) < 0)
                return -ENOMEM;
        return 0;
}

int slm_chat_parse_tool_calls(const SlmChat *c, const char *text, size_t len, char **ret_json)
{
        SlmArena a;
        SlmValue calls;
        SlmBuf out = { 0 };
        int r = 0;

        slm_arena_init(&a, 64u << 20);
        calls = slm_value_new_list(&a);
        if (calls.type != SLM_VALUE_LIST) {
                slm_arena_clear(&a);
                return -ENOMEM;
        }
        const char *trigger = slm_chat_tool_trigger(c);
        size_t tl = strlen(trigger);
        for (const char *p = text, *end = text + len; p < end && r == 0;) {
                const char *hit;
                if (c->tools == SLM_TOOLS_TAGGED || c->tools == SLM_TOOLS_MISTRAL) {
                        hit = memmem(p, (size_t)(end - p), trigger, tl);
                        if (!hit)
                                break;
                        hit += tl;
                } else {
                        /* a JSON call is the whole answer, spaces around it aside */
                        hit = p;
                }
                while (hit < end && (*hit == ' ' || *hit == '\n' || *hit == '\t' || *hit == '\r'))
                        hit++;
                size_t n = hit < end && (*hit == '{' || *hit == '[')
                               ? json_extent(hit, (size_t)(end - hit))
                               : 0;
                if (n == 0)
                        break;
                r = add_call(&a, calls, hit, n);
                p = hit + n;
                if (c->tools != SLM_TOOLS_TAGGED)
                        break;
        }
        if (r == 0)
                r = slm_json_write_compact(&out, calls);
        slm_arena_clear(&a);
        if (r < 0) {
                slm_buf_free(&out);
                return -ENOMEM;
        }
        *ret_json = out.s;
        return 0;
}
