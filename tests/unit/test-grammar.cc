// SPDX-License-Identifier: MIT
// Constrained generation: GBNF grammars and JSON Schemas compiled and matched, and the story model
// sampling under them: every seeded sample parses and validates.
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "grammar.h"
#include "model.h"
#include "sampler.h"
#include "test-util.h"

namespace
{

SlmGrammar *gbnf(const std::string &src)
{
        SlmGrammar *g = nullptr;
        SlmError err = {};
        EXPECT_EQ(slm_grammar_parse(src.data(), src.size(), &g, &err), 0) << err.msg << "\n"
                                                                          << src.substr(0, 300);
        return g;
}

std::string refused(const std::string &src)
{
        SlmGrammar *g = nullptr;
        SlmError err = {};
        EXPECT_EQ(slm_grammar_parse(src.data(), src.size(), &g, &err), -EINVAL) << src;
        slm_grammar_free(g);
        return err.msg;
}

SlmGrammar *schema(const std::string &json)
{
        char *text = nullptr;
        SlmError err = {};
        EXPECT_EQ(slm_json_schema_to_gbnf(json.data(), json.size(), &text, &err), 0) << err.msg;
        if (!text)
                return nullptr;
        SlmGrammar *g = gbnf(text);
        free(text);
        return g;
}

std::string schema_refused(const std::string &json)
{
        char *text = nullptr;
        SlmError err = {};
        EXPECT_EQ(slm_json_schema_to_gbnf(json.data(), json.size(), &text, &err), -EINVAL) << json;
        free(text);
        return err.msg;
}

bool matches(SlmGrammar *g, const std::string &s)
{
        return slm_grammar_matches(g, s.data(), s.size());
}

} // namespace

TEST(Grammar, Gbnf)
{
        SlmGrammar *g = gbnf("root ::= expr\n"
                             "expr ::= term ((\"+\" | \"-\") term)*\n"
                             "term ::= [0-9]+ | \"(\" expr \")\"   # nesting\n");
        EXPECT_TRUE(matches(g, "1+2"));
        EXPECT_TRUE(matches(g, "(1+(23-4))-5"));
        EXPECT_FALSE(matches(g, "1+"));
        EXPECT_FALSE(matches(g, "(1"));
        EXPECT_FALSE(matches(g, ""));
        slm_grammar_free(g);

        g = gbnf("root ::= [a-c]{2,3} x? [^a-z\\n]* \"é\\u00e8\"\nx ::= \"-\"");
        EXPECT_TRUE(matches(g, "ab-XYZéè"));
        EXPECT_TRUE(matches(g, "abcéè"));
        EXPECT_FALSE(matches(g, "aéè"));
        EXPECT_FALSE(matches(g, "abcdéè"));
        EXPECT_FALSE(matches(g, "ab\néè"));
        slm_grammar_free(g);

        // a rule may go on over lines inside parentheses and after "|"
        g = gbnf("root ::= (\n  \"a\"\n  | \"b\" ) |\n  \"c\"\n");
        EXPECT_TRUE(matches(g, "a"));
        EXPECT_TRUE(matches(g, "c"));
        slm_grammar_free(g);

        EXPECT_NE(refused("root ::= x").find("'x' is not defined"), std::string::npos);
        EXPECT_NE(refused("a ::= \"x\"").find("no rule 'root'"), std::string::npos);
        EXPECT_NE(refused("root ::= root \"a\" | \"b\"").find("left-recursive"), std::string::npos);
        EXPECT_NE(refused("root ::= a\na ::= b? a \"x\"\nb ::= \"y\"").find("left-recursive"),
                  std::string::npos);
        refused("root ::= \"unterminated");
        refused("root ::= [a-");
        refused("root ::= \"\\q\"");
        refused("root ::= \"a\"{5,2}");
        refused("root ::= (\"a\"");
        refused("root ::= \"a\"\nroot ::= \"b\"");
}

TEST(Grammar, JsonSchema)
{
        SlmGrammar *g = schema(R"({"type": "object", "properties": {
                "name": {"type": "string", "maxLength": 5},
                "age": {"type": "integer", "minimum": 0, "maximum": 130},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
                "pet": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/pet"}]}},
                "required": ["name", "age"],
                "$defs": {"pet": {"type": "object", "properties": {"kind": {"const": "cat"}},
                                  "required": ["kind"]}}})");
        EXPECT_TRUE(matches(g, R"({"name": "Ann", "age": 7})"));
        EXPECT_TRUE(
            matches(g, "{\n  \"name\": \"\",\n  \"age\": 130,\n  \"tags\": [\"a\", \"b\"]\n}"));
        EXPECT_TRUE(matches(g, R"({"name": "Bo", "age": 0, "pet": {"kind": "cat"}})"));
        EXPECT_TRUE(matches(g, R"({"name":"Bo","age":1,"pet":null})"));
        EXPECT_FALSE(matches(g, R"({"age": 7, "name": "Ann"})"));     // order
        EXPECT_FALSE(matches(g, R"({"name": "Ann"})"));               // required
        EXPECT_FALSE(matches(g, R"({"name": "Annabel", "age": 7})")); // maxLength
        EXPECT_FALSE(matches(g, R"({"name": "Ann", "age": 131})"));   // maximum
        EXPECT_FALSE(matches(g, R"({"name": "Ann", "age": -1})"));    // minimum
        EXPECT_FALSE(matches(g, R"({"name": "A", "age": 1, "tags": ["a", "a", "b"]})"));
        EXPECT_FALSE(matches(g, R"({"name": "A", "age": 1, "x": 1})")); // no other properties
        EXPECT_FALSE(matches(g, R"( {"name": "A", "age": 1})"));        // nothing around it
        slm_grammar_free(g);

        // integer ranges, exactly
        for (auto range : std::vector<std::pair<int, int>>{
                 { -15, 123 }, { 7, 7 }, { -120, -3 }, { 0, 1000 } }) {
                std::string s =
                    "{\"type\": \"integer\", \"minimum\": " + std::to_string(range.first) +
                    ", \"maximum\": " + std::to_string(range.second) + "}";
                g = schema(s);
                for (int i = -1100; i <= 1100; i++)
                        ASSERT_EQ(matches(g, std::to_string(i)),
                                  i >= range.first && i <= range.second)
                            << s << " " << i;
                EXPECT_FALSE(matches(g, "007"));
                EXPECT_FALSE(matches(g, "-0"));
                slm_grammar_free(g);
        }
        // numbers between whole-number bounds, inclusive and exclusive
        struct NumRange {
                const char *bounds;
                double lo, hi;
                bool lox, hix;
        };
        for (const NumRange &nr : std::vector<NumRange>{
                 { R"("minimum": -3, "maximum": 7)", -3, 7, false, false },
                 { R"("exclusiveMinimum": -3, "exclusiveMaximum": 7)", -3, 7, true, true },
                 { R"("minimum": 2, "exclusiveMaximum": 5)", 2, 5, false, true },
                 { R"("exclusiveMinimum": -9, "maximum": -2)", -9, -2, true, false },
                 { R"("minimum": 0)", 0, 1e9, false, false } }) {
                g = schema(std::string(R"({"type": "number", )") + nr.bounds + "}");
                for (int q = -48; q <= 48; q++) {
                        double x = q / 4.0;
                        bool in =
                            (nr.lox ? x > nr.lo : x >= nr.lo) && (nr.hix ? x < nr.hi : x <= nr.hi);
                        char text[32];
                        snprintf(text, sizeof(text), "%.2f", x);
                        ASSERT_EQ(matches(g, text), in) << nr.bounds << " " << text;
                        if (x == (int)x) {
                                snprintf(text, sizeof(text), "%d", (int)x);
                                if (strcmp(text, "-0")) {
                                        ASSERT_EQ(matches(g, text), in) << nr.bounds << " " << text;
                                }
                        }
                }
                EXPECT_FALSE(matches(g, "1e2"));
                slm_grammar_free(g);
        }

        g = schema(R"({"type": "integer", "exclusiveMinimum": 99})");
        EXPECT_FALSE(matches(g, "99"));
        EXPECT_TRUE(matches(g, "100"));
        EXPECT_TRUE(matches(g, "123456789"));
        slm_grammar_free(g);

        // a free-form value, arrays with bounds, additionalProperties as a schema
        g = schema(R"({"type": "array", "minItems": 2, "maxItems": 3})");
        EXPECT_TRUE(matches(g, R"([1, "x"])"));
        EXPECT_TRUE(matches(g, R"([{"a": [true, null, -1.5e3]}, [], "\u00e9\n"])"));
        EXPECT_FALSE(matches(g, R"([1])"));
        EXPECT_FALSE(matches(g, R"([1, 2, 3, 4])"));
        slm_grammar_free(g);
        g = schema(R"({"type": "object", "additionalProperties": {"type": "boolean"}})");
        EXPECT_TRUE(matches(g, R"({"x": true, "y": false})"));
        EXPECT_TRUE(matches(g, "{}"));
        EXPECT_FALSE(matches(g, R"({"x": 1})"));
        slm_grammar_free(g);

        // what a grammar cannot honour is refused, never ignored
        EXPECT_NE(schema_refused(R"({"type": "string", "pattern": "^a"})").find("'pattern'"),
                  std::string::npos);
        EXPECT_NE(schema_refused(R"({"type": "number", "minimum": 0.5})").find("whole numbers"),
                  std::string::npos);
        schema_refused(R"({"type": "number", "exclusiveMinimum": 3, "maximum": 3})");
        schema_refused(R"({"type": "string", "format": "date"})");
        schema_refused(R"({"allOf": [{"type": "string"}]})");
        schema_refused(R"({"$ref": "#/nowhere"})");
        schema_refused(R"({"type": "object", "properties": {}, "required": ["x"]})");
        schema_refused(R"({"type": "wat"})");
        schema_refused("{not json");
        schema_refused("false");
}

namespace
{

// The story model sampling under @g: @n seeded samples of at most @max tokens, the mask found for
// a sampler that keeps its top @k (0: the whole mask).
std::vector<std::string> samples(SlmGrammar *g, int n, int max, int k = 0)
{
        SlmModel *m = nullptr;
        SlmBackend *b = nullptr;
        SlmError err = {};
        std::vector<std::string> out;
        EXPECT_EQ(slm_model_load(slmtest::shared("models/stories260K-f32.gguf").c_str(), &m, &err),
                  0)
            << err.msg;
        EXPECT_EQ(slm_backend_new("cpu", 1, &b), 0);
        const SlmTokenizer *tk = slm_model_tokenizer(m);
        SlmTokenTrie *trie = nullptr;
        EXPECT_EQ(slm_token_trie_new(tk, &trie), 0);
        int n_vocab = slm_model_hparams(m)->n_vocab;
        std::vector<float> logits(n_vocab);
        for (int seed = 1; seed <= n; seed++) {
                SlmContext *ctx = nullptr;
                EXPECT_EQ(slm_context_new(m, b, 512, SLM_TYPE_F16, &ctx, &err), 0) << err.msg;
                SlmSamplerParams p;
                slm_sampler_params_default(&p);
                p.temperature = 1.0f;
                p.seed = (uint64_t)seed;
                SlmSampler *s = nullptr;
                EXPECT_EQ(slm_sampler_new(&p, n_vocab, &s), 0);
                SlmGrammarMatcher *gm = nullptr;
                EXPECT_EQ(slm_grammar_matcher_new(g, trie, &gm), 0);
                int32_t tok = slm_tokenizer_bos(tk);
                std::string text;
                std::vector<int32_t> hist;
                for (int i = 0; i < max; i++) {
                        EXPECT_EQ(slm_context_eval(ctx, &tok, 1, logits.data()), 0);
                        int allowed = k ? slm_grammar_matcher_mask_top(gm, logits.data(), k)
                                        : slm_grammar_matcher_mask(gm, logits.data());
                        EXPECT_GT(allowed, 0) << text;
                        if (allowed <= 0)
                                break;
                        tok = slm_sampler_sample(s, logits.data(), hist.data(), hist.size());
                        EXPECT_EQ(slm_grammar_matcher_accept(gm, tok), 0) << text;
                        if (slm_tokenizer_is_eog(tk, tok))
                                break;
                        hist.push_back(tok);
                        size_t len;
                        const char *piece = slm_tokenizer_piece(tk, tok, false, &len);
                        text.append(piece, len);
                        if (slm_grammar_matcher_finished(gm))
                                break;
                }
                EXPECT_TRUE(slm_grammar_matcher_complete(gm)) << "seed " << seed << ": " << text;
                out.push_back(text);
                slm_grammar_matcher_free(gm);
                slm_sampler_free(s);
                slm_context_free(ctx);
        }
        slm_token_trie_free(trie);
        slm_backend_free(b);
        slm_model_free(m);
        return out;
}

} // namespace

TEST(Grammar, StoryModelSamplesParseAndValidate)
{
        SlmGrammar *g = schema(R"({"type": "object", "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 12},
                "age": {"type": "integer", "minimum": 1, "maximum": 99},
                "likes": {"type": "array", "items": {"enum": ["cats", "dogs", "cake"]},
                          "minItems": 1, "maxItems": 3},
                "happy": {"type": "boolean"}},
                "required": ["name", "age", "likes"]})");
        std::vector<std::string> all = samples(g, 20, 200);
        // the sampler keeps its top 40: finding only those gives the same draws as the whole mask
        EXPECT_EQ(samples(g, 20, 200, 40), all);
        for (const std::string &s : all) {
                auto j = nlohmann::json::parse(s, nullptr, false);
                ASSERT_FALSE(j.is_discarded()) << s;
                ASSERT_TRUE(j.is_object()) << s;
                ASSERT_TRUE(j["name"].is_string()) << s;
                size_t len = 0;
                for (unsigned char c : j["name"].get<std::string>())
                        len += (c & 0xC0) != 0x80;
                EXPECT_GE(len, 1u) << s;
                EXPECT_LE(len, 12u) << s;
                ASSERT_TRUE(j["age"].is_number_integer()) << s;
                EXPECT_GE(j["age"].get<int>(), 1) << s;
                EXPECT_LE(j["age"].get<int>(), 99) << s;
                ASSERT_TRUE(j["likes"].is_array()) << s;
                EXPECT_GE(j["likes"].size(), 1u) << s;
                EXPECT_LE(j["likes"].size(), 3u) << s;
                for (auto &x : j["likes"])
                        EXPECT_TRUE(x == "cats" || x == "dogs" || x == "cake") << s;
                if (j.contains("happy")) {
                        EXPECT_TRUE(j["happy"].is_boolean()) << s;
                }
                for (auto &item : j.items()) {
                        const std::string &k = item.key();
                        EXPECT_TRUE(k == "name" || k == "age" || k == "likes" || k == "happy") << s;
                }
        }
        slm_grammar_free(g);

        // a list of mixed values, each kind within its bounds
        g = schema(R"({"type": "array", "minItems": 1, "maxItems": 5, "items": {"anyOf": [
                {"type": "integer", "minimum": -50, "maximum": 50}, {"type": "null"},
                {"type": "string", "maxLength": 6}]}})");
        for (const std::string &s : samples(g, 20, 200)) {
                auto j = nlohmann::json::parse(s, nullptr, false);
                ASSERT_TRUE(j.is_array()) << s;
                EXPECT_GE(j.size(), 1u) << s;
                EXPECT_LE(j.size(), 5u) << s;
                for (auto &x : j) {
                        if (x.is_number_integer()) {
                                EXPECT_GE(x.get<int>(), -50) << s;
                                EXPECT_LE(x.get<int>(), 50) << s;
                        } else if (x.is_string()) {
                                size_t len = 0;
                                for (unsigned char c : x.get<std::string>())
                                        len += (c & 0xC0) != 0x80;
                                EXPECT_LE(len, 6u) << s;
                        } else {
                                EXPECT_TRUE(x.is_null()) << s;
                        }
                }
        }
        slm_grammar_free(g);

        // numbers, booleans, an optional list, nothing else
        g = schema(R"({"type": "object", "additionalProperties": false, "required": ["x", "ok"],
                "properties": {"x": {"type": "number"}, "ok": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 3}}})");
        for (const std::string &s : samples(g, 20, 200)) {
                auto j = nlohmann::json::parse(s, nullptr, false);
                ASSERT_TRUE(j.is_object()) << s;
                EXPECT_TRUE(j["x"].is_number()) << s;
                EXPECT_TRUE(j["ok"].is_boolean()) << s;
                if (j.contains("tags")) {
                        ASSERT_TRUE(j["tags"].is_array()) << s;
                        EXPECT_LE(j["tags"].size(), 3u) << s;
                }
                EXPECT_LE(j.size(), 3u) << s;
        }
        slm_grammar_free(g);

        // a GBNF grammar of our own: a command for a smart home
        g = gbnf("root ::= verb \" the \" room \" light\" (\" at \" pct)?\n"
                 "verb ::= \"turn on\" | \"turn off\" | \"dim\"\n"
                 "room ::= \"kitchen\" | \"bedroom\" | \"hall\"\n"
                 "pct ::= [1-9] [0-9]? \"%\"\n");
        for (const std::string &s : samples(g, 20, 40))
                EXPECT_TRUE(matches(g, s)) << s;
        slm_grammar_free(g);
}
