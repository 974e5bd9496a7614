// SPDX-License-Identifier: MIT
// Chat templates: recognized from real GGUF metadata and vocabularies, formatted exactly.
#include <gtest/gtest.h>

#include <cstdlib>

#include "chat.h"
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
