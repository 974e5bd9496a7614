/* SPDX-License-Identifier: MIT */
#include "chat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

typedef struct {
        char *s;
        size_t n, cap;
        bool oom;
} Buf;

static void put(Buf *b, const char *s)
{
        size_t len = strlen(s);

        if (b->oom)
                return;
        if (b->n + len + 1 > b->cap) {
                size_t cap = (b->n + len + 1) * 2;
                char *p = realloc(b->s, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->s = p;
                b->cap = cap;
        }
        memcpy(b->s + b->n, s, len + 1);
        b->n += len;
}

int slm_chat_format(SlmChatTemplate t, const SlmChatMessage *msgs, size_t n, char **ret_text)
{
        Buf b = { 0 };
        const char *system = NULL;

        put(&b, "");
        for (size_t i = 0; i < n; i++) {
                const char *role = msgs[i].role, *c = msgs[i].content;
                bool sys = strcmp(role, "system") == 0, user = strcmp(role, "user") == 0;
                bool asst = strcmp(role, "assistant") == 0;

                if (!sys && !user && !asst) {
                        free(b.s);
                        return -EINVAL;
                }
                switch (t) {
                case SLM_CHAT_CHATML:
                        put(&b, "<|im_start|>");
                        put(&b, role);
                        put(&b, "\n");
                        put(&b, c);
                        put(&b, "<|im_end|>\n");
                        break;
                case SLM_CHAT_PHI3:
                        put(&b, sys ? "<|system|>\n" : user ? "<|user|>\n" : "<|assistant|>\n");
                        put(&b, c);
                        put(&b, "<|end|>\n");
                        break;
                case SLM_CHAT_GEMMA:
                        /* no system turn: it is folded into the next user turn */
                        if (sys) {
                                system = c;
                                break;
                        }
                        put(&b, user ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
                        if (user && system) {
                                put(&b, system);
                                put(&b, "\n\n");
                                system = NULL;
                        }
                        put(&b, c);
                        put(&b, "<end_of_turn>\n");
                        break;
                case SLM_CHAT_LLAMA2:
                        if (sys) {
                                system = c;
                                break;
                        }
                        if (user) {
                                put(&b, b.n ? "<s>[INST] " : "[INST] ");
                                if (system) {
                                        put(&b, "<<SYS>>\n");
                                        put(&b, system);
                                        put(&b, "\n<</SYS>>\n\n");
                                        system = NULL;
                                }
                                put(&b, c);
                                put(&b, " [/INST]");
                        } else {
                                put(&b, " ");
                                put(&b, c);
                                put(&b, " </s>");
                        }
                        break;
                case SLM_CHAT_PLAIN:
                default:
                        put(&b, sys ? "System: " : user ? "User: " : "Assistant: ");
                        put(&b, c);
                        put(&b, "\n");
                        break;
                }
        }
        switch (t) {
        case SLM_CHAT_CHATML:
                put(&b, "<|im_start|>assistant\n");
                break;
        case SLM_CHAT_PHI3:
                put(&b, "<|assistant|>\n");
                break;
        case SLM_CHAT_GEMMA:
                put(&b, "<start_of_turn>model\n");
                break;
        case SLM_CHAT_LLAMA2:
                break; /* the answer follows [/INST] */
        case SLM_CHAT_PLAIN:
        default:
                put(&b, "Assistant:");
                break;
        }
        if (b.oom) {
                free(b.s);
                return -ENOMEM;
        }
        *ret_text = b.s;
        return 0;
}
