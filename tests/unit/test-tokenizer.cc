// SPDX-License-Identifier: MIT
// Tokenizers against the reference: ../shared/reference/tokenizer/*.json and
// the llama.cpp vocabulary cases in ../shared/models/vocab/*.inp/.out.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "gguf.h"
#include "tokenizer.h"
#include "unicode.h"
#include "test-util.h"

using nlohmann::json;
using slmtest::shared;

namespace
{

struct Vocab {
        SlmGguf *g = nullptr;
        SlmTokenizer *tk = nullptr;
        explicit Vocab(const std::string &path)
        {
                SlmError err = {};
                int r = slm_gguf_open(path.c_str(), &g, &err);
                EXPECT_EQ(r, 0) << err.msg;
                if (r == 0) {
                        r = slm_tokenizer_new(g, &tk, &err);
                        EXPECT_EQ(r, 0) << err.msg;
                }
        }
        ~Vocab()
        {
                slm_tokenizer_free(tk);
                slm_gguf_free(g);
        }
        std::vector<int32_t> encode(const std::string &text, unsigned flags) const
        {
                int32_t *ids = nullptr;
                size_t n = 0;
                int r = slm_tokenizer_encode(tk, text.data(), text.size(), flags, &ids, &n);
                EXPECT_EQ(r, 0);
                std::vector<int32_t> v(ids, ids + n);
                free(ids);
                return v;
        }
        std::string decode(const std::vector<int32_t> &ids) const
        {
                char *text = nullptr;
                size_t n = 0;
                EXPECT_EQ(slm_tokenizer_decode(tk, ids.data(), ids.size(), false, &text, &n), 0);
                std::string s(text, n);
                free(text);
                return s;
        }
};

void check_reference(const std::string &model, const std::string &ref)
{
        Vocab v(shared("models/" + model));
        ASSERT_NE(v.tk, nullptr);
        json j = slmtest::read_json(shared("reference/tokenizer/" + ref));
        ASSERT_EQ(slm_tokenizer_n_vocab(v.tk), j["n_vocab"].get<int>());
        size_t n = 0;
        for (const auto &c : j["cases"]) {
                std::string text = c["text"];
                SCOPED_TRACE("text: \"" + text + "\"");
                EXPECT_EQ(v.encode(text, 0), c["ids"].get<std::vector<int32_t>>());
                EXPECT_EQ(v.encode(text, SLM_TOKENIZE_PARSE_SPECIAL),
                          c["ids_parse_special"].get<std::vector<int32_t>>());
                EXPECT_EQ(v.encode(text, SLM_TOKENIZE_PARSE_SPECIAL | SLM_TOKENIZE_ADD_SPECIAL),
                          c["ids_generation"].get<std::vector<int32_t>>());
                std::vector<int32_t> ids = c["ids"];
                EXPECT_EQ(slmtest::to_hex(v.decode(ids)), c["detok_hex"].get<std::string>());
                std::vector<std::string> pieces;
                for (int32_t id : ids) {
                        size_t len = 0;
                        const char *p = slm_tokenizer_piece(v.tk, id, false, &len);
                        pieces.push_back(slmtest::to_hex(std::string(p, len)));
                }
                EXPECT_EQ(pieces, c["pieces_hex"].get<std::vector<std::string>>());
                n++;
        }
        EXPECT_EQ(n, 50u);
}

void check_vocab_cases(const std::string &name)
{
        Vocab v(shared("models/vocab/" + name));
        ASSERT_NE(v.tk, nullptr);
        std::string inp = slmtest::read_file(shared("models/vocab/" + name + ".inp"));
        std::string out = slmtest::read_file(shared("models/vocab/" + name + ".out"));
        const std::string sep = "\n__ggml_vocab_test__\n";
        std::vector<std::string> inputs;
        for (size_t pos = 0;;) {
                size_t next = inp.find(sep, pos);
                if (next == std::string::npos)
                        break;
                inputs.push_back(inp.substr(pos, next - pos));
                pos = next + sep.size();
        }
        std::vector<std::vector<int32_t>> expected;
        std::istringstream lines(out);
        for (std::string line; std::getline(lines, line);) {
                std::istringstream ls(line);
                std::vector<int32_t> ids;
                for (int32_t id; ls >> id;)
                        ids.push_back(id);
                expected.push_back(ids);
        }
        ASSERT_EQ(inputs.size(), expected.size());
        ASSERT_GT(inputs.size(), 40u);
        for (size_t i = 0; i < inputs.size(); i++) {
                SCOPED_TRACE("case " + std::to_string(i) + ": \"" + inputs[i] + "\"");
                EXPECT_EQ(v.encode(inputs[i], 0), expected[i]);
        }
}

} // namespace

TEST(Tokenizer, StoriesSentencePieceReference)
{
        check_reference("stories260K-f32.gguf", "stories260K-spm.json");
}

TEST(Tokenizer, Qwen2ByteLevelBpeReference)
{
        check_reference("synthetic/tiny-qwen2-f32.gguf", "tiny-qwen2-bpe.json");
}

TEST(Tokenizer, LlamaSpmVocabCases)
{
        check_vocab_cases("ggml-vocab-llama-spm.gguf");
}

TEST(Tokenizer, Phi3VocabCases)
{
        check_vocab_cases("ggml-vocab-phi-3.gguf");
}

TEST(Tokenizer, Gpt2VocabCases)
{
        check_vocab_cases("ggml-vocab-gpt-2.gguf");
}

TEST(Tokenizer, RealLlama2VocabRoundTrip)
{
        Vocab v(shared("models/llama-2-tiny-random.gguf"));
        ASSERT_NE(v.tk, nullptr);
        EXPECT_EQ(slm_tokenizer_n_vocab(v.tk), 32000);
        const std::string text =
            "Hello world, this is a test of 32000 tokens: caf\xc3\xa9 \xe4\xb8\xad!";
        auto ids = v.encode(text, SLM_TOKENIZE_ADD_SPECIAL);
        ASSERT_GE(ids.size(), 2u);
        EXPECT_EQ(ids[0], 1); // BOS
        EXPECT_EQ(v.decode(std::vector<int32_t>(ids.begin() + 1, ids.end())), text);
}

// A character split across byte tokens comes out whole, never half.
TEST(Tokenizer, StreamingNeverSplitsCharacters)
{
        Vocab v(shared("models/stories260K-f32.gguf"));
        ASSERT_NE(v.tk, nullptr);
        const std::string text = "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80!";
        auto ids = v.encode(text, 0);
        SlmDetokenizer d;
        slm_detokenizer_init(&d, v.tk, false);
        std::string all;
        bool held_back = false;
        for (int32_t id : ids) {
                char buf[256];
                int n = slm_detokenizer_feed(&d, id, buf, sizeof(buf));
                ASSERT_GE(n, 0);
                std::string chunk(buf, (size_t)n);
                size_t len = 0;
                slm_tokenizer_piece(v.tk, id, false, &len);
                if (chunk.size() < len)
                        held_back = true;
                for (size_t i = 0; i < chunk.size();) {
                        // every chunk is whole characters
                        ASSERT_TRUE(slm_utf8_valid(chunk.data(), chunk.size()))
                            << slmtest::to_hex(chunk);
                        i = chunk.size();
                }
                all += chunk;
        }
        char buf[32];
        EXPECT_EQ(slm_detokenizer_flush(&d, buf, sizeof(buf)), 0);
        EXPECT_TRUE(held_back);     // the vocab has no CJK pieces: byte tokens were used
        EXPECT_EQ(all, " " + text); // the SentencePiece leading space is part of the stream
}

TEST(Tokenizer, StreamingReplacesBrokenBytes)
{
        Vocab v(shared("models/stories260K-f32.gguf"));
        ASSERT_NE(v.tk, nullptr);
        int32_t lead = slm_tokenizer_find(v.tk, "<0xE4>");
        int32_t a = slm_tokenizer_find(v.tk, "a");
        ASSERT_GE(lead, 0);
        ASSERT_GE(a, 0);
        SlmDetokenizer d;
        slm_detokenizer_init(&d, v.tk, false);
        char buf[64];
        EXPECT_EQ(slm_detokenizer_feed(&d, lead, buf, sizeof(buf)), 0); // held back
        int n = slm_detokenizer_feed(&d, a, buf, sizeof(buf));
        EXPECT_EQ(std::string(buf, (size_t)n), "\xef\xbf\xbd"
                                               "a");
        EXPECT_EQ(slm_detokenizer_feed(&d, lead, buf, sizeof(buf)), 0);
        n = slm_detokenizer_flush(&d, buf, sizeof(buf));
        EXPECT_EQ(std::string(buf, (size_t)n), "\xef\xbf\xbd");
}
