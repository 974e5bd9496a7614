// SPDX-License-Identifier: MIT
// Chat templates: recognized from real GGUF metadata and vocabularies, formatted exactly.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <unistd.h>

#include "chat.h"
#include "grammar.h"
#include "test-util.h"

namespace
{

SlmChatTemplate detect(const std::string &rel)
{
        SlmGguf *g = nullptr;
        SlmTokenizer *tk = nullptr;
        SlmError err = {};
        EXPECT_EQ(slm_gguf_open(slmtest::shared(rel).c_str(), &g, &err), 0) << err.msg;
        EXPECT_EQ(slm_tokenizer_new(g, &tk, &err), 0) << err.msg;
        SlmChatTemplate t = slm_chat_template_detect(g, tk);
        slm_tokenizer_free(tk);
        slm_gguf_free(g);
        return t;
}

std::string format(SlmChatTemplate t, std::vector<SlmChatMessage> msgs)
{
        char *out = nullptr;
        EXPECT_EQ(slm_chat_format(t, msgs.data(), msgs.size(), &out), 0);
        std::string s = out ? out : "";
        free(out);
        return s;
}

const std::vector<SlmChatMessage> kTurns = {
        { "system", "Be brief." },
        { "user", "Hi" },
        { "assistant", "Hello!" },
        { "user", "Bye" },
};

} // namespace

TEST(Chat, DetectedFromMetadataAndVocabulary)
{
        // tokenizer.chat_template with <|user|>
        EXPECT_EQ(detect("models/vocab/ggml-vocab-phi-3.gguf"), SLM_CHAT_PHI3);
        // no template, but <|im_start|> in the vocabulary
        EXPECT_EQ(detect("models/synthetic/tiny-qwen2-f32.gguf"), SLM_CHAT_CHATML);
        // neither
        EXPECT_EQ(detect("models/stories260K-f32.gguf"), SLM_CHAT_PLAIN);
        EXPECT_EQ(detect("models/vocab/ggml-vocab-llama-spm.gguf"), SLM_CHAT_PLAIN);
}

TEST(Chat, Formats)
{
        EXPECT_EQ(format(SLM_CHAT_CHATML, kTurns),
                  "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                  "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                  "<|im_start|>assistant\n");
        EXPECT_EQ(
            format(SLM_CHAT_PHI3, kTurns),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
            "<|user|>\nBye<|end|>\n<|assistant|>\n");
        EXPECT_EQ(format(SLM_CHAT_GEMMA, kTurns),
                  "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
                  "Hello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n"
                  "<start_of_turn>model\n");
        EXPECT_EQ(format(SLM_CHAT_LLAMA2, kTurns),
                  "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye "
                  "[/INST]");
        EXPECT_EQ(format(SLM_CHAT_PLAIN, kTurns),
                  "System: Be brief.\nUser: Hi\nAssistant: Hello!\nUser: Bye\nAssistant:");
}

TEST(Chat, RefusesUnknownRoles)
{
        SlmChatMessage m = { "narrator", "x" };
        char *out = nullptr;
        EXPECT_EQ(slm_chat_format(SLM_CHAT_CHATML, &m, 1, &out), -EINVAL);
        EXPECT_EQ(out, nullptr);
}

namespace
{

// The model's way of writing chats, from a vocabulary file given @tmpl as its chat template.
struct TemplatedChat {
        std::string path;
        SlmGguf *g = nullptr;
        SlmTokenizer *tk = nullptr;
        SlmChat *chat = nullptr;
        explicit TemplatedChat(const std::string &tmpl)
        {
                char dir[] = "/tmp/slm-chat-XXXXXX";
                EXPECT_NE(mkdtemp(dir), nullptr);
                path = std::string(dir) + "/model.gguf";
                std::string cmd =
                    "/usr/bin/python3 '" + std::string(getenv("GGUF_SET_TEMPLATE")) + "' '" +
                    slmtest::shared("models/vocab/ggml-vocab-llama-spm.gguf") + "' '" +
                    slmtest::shared("chat-templates/templates/" + tmpl) + "' '" + path + "'";
                EXPECT_EQ(system(cmd.c_str()), 0);
                SlmError err = {};
                EXPECT_EQ(slm_gguf_open(path.c_str(), &g, &err), 0) << err.msg;
                EXPECT_EQ(slm_tokenizer_new(g, &tk, &err), 0) << err.msg;
                EXPECT_EQ(slm_chat_new(g, tk, &chat), 0);
        }
        ~TemplatedChat()
        {
                slm_chat_free(chat);
                slm_tokenizer_free(tk);
                slm_gguf_free(g);
                std::string dir = path.substr(0, path.rfind('/'));
                unlink(path.c_str());
                rmdir(dir.c_str());
        }
        std::string calls(const std::string &answer)
        {
                char *json = nullptr;
                EXPECT_EQ(slm_chat_parse_tool_calls(chat, answer.data(), answer.size(), &json), 0);
                std::string s = json ? json : "";
                free(json);
                return s;
        }
        // Whether @text, after the format's opening marker, is one call the tools allow.
        bool call_after_trigger(const std::string &tools, const std::string &text)
        {
                char *gbnf = nullptr;
                SlmError err = {};
                SlmGrammar *gr = nullptr;
                EXPECT_EQ(slm_chat_tool_grammar(chat, tools.data(), tools.size(), nullptr, true,
                                                &gbnf, &err),
                          0)
                    << err.msg;
                EXPECT_EQ(slm_grammar_parse(gbnf, strlen(gbnf), &gr, &err), 0) << err.msg;
                bool ok = slm_grammar_matches(gr, text.data(), text.size());
                slm_grammar_free(gr);
                free(gbnf);
                return ok;
        }
};

const char kTools[] = R"([{"type": "function", "function": {"name": "set_light", "parameters":
        {"type": "object", "properties": {"room": {"enum": ["hall", "den"]}, "on": {"type": "boolean"}},
        "required": ["room", "on"]}}}])";

} // namespace

TEST(Chat, ToolCallsInTheModelsOwnFormat)
{
        {
                TemplatedChat c("Qwen-Qwen2.5-7B-Instruct.jinja");
                EXPECT_STREQ(slm_chat_name(c.chat), "jinja");
                EXPECT_EQ(slm_chat_tool_format(c.chat), SLM_TOOLS_TAGGED);
                EXPECT_EQ(
                    c.calls("Sure.\n<tool_call>\n{\"name\": \"set_light\", \"arguments\": "
                            "{\"room\": \"hall\", \"on\": true}}\n</tool_call>\n<tool_call>\n"
                            "{\"name\": \"x\", \"arguments\": \"{\\\"a\\\": 1}\"}\n</tool_call>"),
                    R"([{"name":"set_light","arguments":{"room":"hall","on":true}},)"
                    R"({"name":"x","arguments":{"a":1}}])");
                EXPECT_EQ(c.calls("No call here."), "[]");
                EXPECT_EQ(c.calls("<tool_call>\n{\"name\": \"cut"), "[]");
                // once "<tool_call>" is written, what may follow is one call the tools allow
                EXPECT_TRUE(c.call_after_trigger(
                    kTools, "\n{\"name\": \"set_light\", \"arguments\": {\"room\": \"den\", "
                            "\"on\": false}}\n</tool_call>"));
                EXPECT_FALSE(c.call_after_trigger(
                    kTools, "\n{\"name\": \"set_light\", \"arguments\": {\"room\": \"attic\", "
                            "\"on\": false}}\n</tool_call>"));
                EXPECT_FALSE(c.call_after_trigger(
                    kTools, "\n{\"name\": \"open_door\", \"arguments\": {}}\n</tool_call>"));
        }
        {
                TemplatedChat c("mistralai-Mistral-Nemo-Instruct-2407.jinja");
                EXPECT_EQ(slm_chat_tool_format(c.chat), SLM_TOOLS_MISTRAL);
                EXPECT_EQ(
                    c.calls("[TOOL_CALLS][{\"name\": \"set_light\", \"arguments\": {\"room\": "
                            "\"den\", \"on\": true}, \"id\": \"abc123XYZ\"}]"),
                    R"([{"name":"set_light","arguments":{"room":"den","on":true}}])");
                EXPECT_TRUE(c.call_after_trigger(kTools,
                                                 "[{\"name\": \"set_light\", \"arguments\": "
                                                 "{\"room\": \"den\", \"on\": true}}]"));
        }
        {
                TemplatedChat c("meta-llama-Llama-3.2-3B-Instruct.jinja");
                EXPECT_EQ(slm_chat_tool_format(c.chat), SLM_TOOLS_PARAMETERS);
                EXPECT_EQ(c.calls(" {\"name\": \"set_light\", \"parameters\": {\"room\": \"hall\", "
                                  "\"on\": false}}"),
                          R"([{"name":"set_light","arguments":{"room":"hall","on":false}}])");
                // the call's own "{" opens it
                EXPECT_TRUE(c.call_after_trigger(kTools, "\"name\": \"set_light\", \"parameters\": "
                                                         "{\"room\": \"hall\", \"on\": false}}"));
                EXPECT_FALSE(c.call_after_trigger(kTools, "\"name\": \"set_light\", \"arguments\": "
                                                          "{\"room\": \"hall\", \"on\": false}}"));
        }
        {
                TemplatedChat c("microsoft-Phi-3.5-mini-instruct.jinja");
                EXPECT_EQ(slm_chat_tool_format(c.chat), SLM_TOOLS_JSON);
                EXPECT_EQ(c.calls("{\"name\": \"set_light\", \"arguments\": {\"room\": \"hall\", "
                                  "\"on\": true}}"),
                          R"([{"name":"set_light","arguments":{"room":"hall","on":true}}])");
                EXPECT_EQ(c.calls("I turned it on. {\"name\": \"set_light\"}"), "[]");
        }
}
