// SPDX-License-Identifier: MIT
// The template engine and its values: real chat templates rendered as Jinja2 renders them, errors
// with their messages, limits that hold against hostile templates, JSON in and out.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "jinja.h"
#include "test-util.h"
#include "value.h"

namespace
{

struct Result {
        int rc;
        std::string text; // the output, or the error message
};

Result render(const std::string &tmpl, const std::string &json = "{}",
              SlmJinjaOptions opts = { 0, 0, 0, 1785067200, true })
{
        SlmArena a;
        SlmValue vars;
        SlmJinja *t = nullptr;
        SlmError err = {};
        char *out = nullptr;
        size_t len = 0;
        Result res;

        slm_arena_init(&a, 0);
        EXPECT_EQ(slm_json_parse(&a, json.data(), json.size(), &vars, &err), 0) << err.msg;
        res.rc = slm_jinja_parse(tmpl.data(), tmpl.size(), &t, &err);
        if (res.rc == 0)
                res.rc = slm_jinja_render(t, vars, &opts, &out, &len, &err);
        res.text = res.rc == 0 ? std::string(out, len) : std::string(err.msg);
        free(out);
        slm_jinja_free(t);
        slm_arena_clear(&a);
        return res;
}

std::string ok(const std::string &tmpl, const std::string &json = "{}")
{
        Result r = render(tmpl, json);
        EXPECT_EQ(r.rc, 0) << r.text;
        return r.text;
}

} // namespace

// Every template x case of ../shared/chat-templates through the engine's API, byte for byte
TEST(Jinja, RendersRealChatTemplatesAsJinja2Does)
{
        std::string dir = slmtest::shared("chat-templates");
        auto cases = nlohmann::ordered_json::parse(slmtest::read_file(dir + "/cases.json"));
        const char *names[] = { "HuggingFaceTB-SmolLM3-3B",
                                "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use",
                                "Qwen-Qwen2.5-7B-Instruct",
                                "Qwen-Qwen3-0.6B",
                                "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
                                "google-gemma-2-2b-it",
                                "meta-llama-Llama-3.2-3B-Instruct",
                                "microsoft-Phi-3.5-mini-instruct",
                                "mistralai-Mistral-Nemo-Instruct-2407" };
        int checked = 0, refused = 0;
        for (const char *name : names) {
                std::string tmpl = slmtest::read_file(dir + "/templates/" + name + ".jinja");
                ASSERT_FALSE(tmpl.empty()) << name;
                for (auto c : cases) {
                        if (!c.contains("add_generation_prompt"))
                                c["add_generation_prompt"] = true;
                        c["bos_token"] = c.value("bos_token", "<s>");
                        c["eos_token"] = c.value("eos_token", "</s>");
                        std::string base =
                            dir + "/expected/" + name + "/" + c["name"].get<std::string>();
                        std::string want = slmtest::read_file(base + ".txt");
                        Result r = render(tmpl, c.dump());
                        if (want.empty()) {
                                std::string error = slmtest::read_file(base + ".error");
                                ASSERT_FALSE(error.empty()) << base;
                                EXPECT_EQ(r.rc, -ECANCELED) << base << ": " << r.text;
                                EXPECT_EQ("TemplateError: " + r.text + "\n", error) << base;
                                refused++;
                        } else {
                                EXPECT_EQ(r.rc, 0) << base << ": " << r.text;
                                EXPECT_EQ(r.text, want) << base;
                        }
                        checked++;
                }
        }
        EXPECT_EQ(checked, 72);
        EXPECT_EQ(refused, 4);
}

TEST(Jinja, WhitespaceControl)
{
        // trim_blocks: the newline after a block tag goes, not the one after {{ }}
        EXPECT_EQ(ok("{% if true %}\na\n{% endif %}\nb{{ 1 }}\nc"), "a\nb1\nc");
        // lstrip_blocks: indentation before a block tag goes, "{%+" keeps it
        EXPECT_EQ(ok("x\n    {% if true %}y{% endif %}\n  {%+ if true %}z{% endif %}"), "x\ny  z");
        // "-" strips every kind of whitespace on its side, newlines included
        EXPECT_EQ(ok("a  \n\n {%- if true -%} \n\n b {{- ' c ' -}} \n d{% endif %}"), "ab c d");
        // comments take part like block tags
        EXPECT_EQ(ok("a\n  {# note #}\nb"), "a\nb");
        // one trailing newline of the source is dropped, as Jinja2 does by default
        EXPECT_EQ(ok("a\n\n"), "a\n");
        EXPECT_EQ(ok("a\r\nb\r\n"), "a\nb");
}

TEST(Jinja, ScopesAsJinja2)
{
        // set in a loop stays in the loop; a namespace carries values out
        EXPECT_EQ(
            ok("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}"),
            "231");
        EXPECT_EQ(
            ok("{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}"
               "{% endfor %}{{ ns.n }}"),
            "6");
        // set in an if is visible after it
        EXPECT_EQ(ok("{% if true %}{% set y = 'in' %}{% endif %}{{ y }}"), "in");
        // macros with defaults, keywords, recursion and caller()
        EXPECT_EQ(
            ok("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m(2, b=3) }}"),
            "1B23");
        EXPECT_EQ(ok("{% macro f(n) %}{% if n %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ "
                     "f(3) }}"),
                  "321");
        EXPECT_EQ(ok("{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}in{% endcall %}"),
                  "<in>");
        // loop variables and controls
        EXPECT_EQ(
            ok("{% for x in 'abc' %}{{ loop.index0 }}{{ x }}{{ loop.previtem }}{% if loop.last %}!"
               "{% endif %}{% endfor %}"),
            "0a1ba2cb!");
        EXPECT_EQ(
            ok("{% for i in range(9) if i is odd %}{% if i > 5 %}{% break %}{% endif %}{{ i }}"
               "{% endfor %}"),
            "135");
        EXPECT_EQ(ok("{% for x in [] %}x{% else %}none{% endfor %}"), "none");
}

TEST(Jinja, PythonValues)
{
        EXPECT_EQ(ok("{{ [1, 'a', none, true, 2.5, {'k': (1,)}] }}"),
                  "[1, 'a', None, True, 2.5, {'k': (1,)}]");
        EXPECT_EQ(ok("{{ 1e16 }} {{ 1e15 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 10 / 4 }} {{ -7 // 2 }} "
                     "{{ -7 % 3 }}"),
                  "1e+16 1000000000000000.0 0.30000000000000004 1e-05 2.5 -4 2");
        EXPECT_EQ(ok("{{ 'héllo'[1] }}{{ 'héllo'|length }}{{ 'héllo'[::-1] }}{{ 'ab'|upper * 2 }}"),
                  "é5olléhABAB");
        EXPECT_EQ(ok("{{ x.tools is defined }} {{ x['k'] }} {{ 'k' in x }} {{ x.get('z', 0) }}",
                     R"({"x": {"k": "v"}})"),
                  "False v True 0");
        EXPECT_EQ(
            ok("{{ m|selectattr('role', 'equalto', 'user')|map(attribute='c')|join('+') }}",
               R"({"m": [{"role": "user", "c": "a"}, {"role": "bot", "c": "b"}, {"role": "user", "c": "c"}]})"),
            "a+c");
        EXPECT_EQ(
            ok("{{ d|tojson }}|{{ d|tojson(indent=2) }}", R"({"d": {"b": [1, "é\n"], "a": {}}})"),
            "{\"b\": [1, \"é\\n\"], \"a\": {}}|{\n  \"b\": [\n    1,\n    \"é\\n\"\n  ],\n  \"a\": "
            "{}\n}");
        EXPECT_EQ(ok("{{ strftime_now('%d %b %Y') }}"), "26 Jul 2026");
}

TEST(Jinja, ErrorsSayWhatAndWhere)
{
        Result r = render("line one\n{% if x %}\n{% endfor %}");
        EXPECT_EQ(r.rc, -EINVAL);
        EXPECT_NE(r.text.find("line 3"), std::string::npos) << r.text;
        r = render("{{ x | no_such_filter }}");
        EXPECT_EQ(r.rc, -EINVAL);
        EXPECT_NE(r.text.find("no filter named 'no_such_filter'"), std::string::npos) << r.text;
        r = render("{{ 'unterminated }}");
        EXPECT_EQ(r.rc, -EINVAL);
        r = render("{% if true %}never closed");
        EXPECT_EQ(r.rc, -EINVAL);
        EXPECT_NE(r.text.find("endif"), std::string::npos) << r.text;
        r = render("{{ missing + 1 }}");
        EXPECT_EQ(r.rc, -EINVAL);
        EXPECT_EQ(r.text, "'missing' is undefined");
        r = render("{{ 1 + 'a' }}");
        EXPECT_EQ(r.rc, -EINVAL);
        EXPECT_EQ(r.text, "unsupported operand type(s) for +: 'int' and 'str'");
        r = render("{% for x in none %}{% endfor %}");
        EXPECT_EQ(r.rc, -EINVAL);
        r = render("{{ raise_exception('No system role, ' ~ 3) }}");
        EXPECT_EQ(r.rc, -ECANCELED);
        EXPECT_EQ(r.text, "No system role, 3");
        r = render(std::string("a\0b", 3));
        EXPECT_EQ(r.rc, -EINVAL);
        r = render("\xff\xfe");
        EXPECT_EQ(r.rc, -EINVAL);
}

// Templates come from files anyone can publish: every way to run away is stopped with -E2BIG
TEST(Jinja, LimitsHoldAgainstHostileTemplates)
{
        Result r = render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}");
        EXPECT_EQ(r.rc, -E2BIG) << r.text;
        r = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
        EXPECT_EQ(r.rc, -E2BIG) << r.text;
        r = render("{{ 'x' * 100000000 }}");
        EXPECT_EQ(r.rc, -E2BIG) << r.text;
        r = render("{% set ns = namespace(s='x' * 16) %}{% for i in range(30) %}{% set ns.s = ns.s "
                   "~ ns.s %}"
                   "{% endfor %}");
        EXPECT_EQ(r.rc, -E2BIG) << r.text;
        r = render("{% for i in range(10000) %}{{ 'y' * 1000 }}{% endfor %}", "{}",
                   { 1 << 20, 0, 0, 0, true });
        EXPECT_EQ(r.rc, -E2BIG) << r.text;
        // deep nesting is a parse error, not a stack overflow
        r = render("{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}");
        EXPECT_EQ(r.rc, -EINVAL);
        EXPECT_NE(r.text.find("nested too deeply"), std::string::npos) << r.text;
        std::string blocks;
        for (int i = 0; i < 5000; i++)
                blocks += "{% if true %}";
        r = render(blocks);
        EXPECT_EQ(r.rc, -EINVAL);
}

TEST(Json, ReadsAndWritesAsPython)
{
        SlmArena a;
        SlmValue v;
        SlmError err = {};
        slm_arena_init(&a, 0);
        std::string in =
            R"({"b": 1, "a": [true, null, -2.5e3, "\u00e9\ud83d\ude42\t"], "b": 2, "c": {}})";
        ASSERT_EQ(slm_json_parse(&a, in.data(), in.size(), &v, &err), 0) << err.msg;
        SlmBuf b = {};
        ASSERT_EQ(slm_json_write(&b, v, 0), 0);
        // a repeated key keeps its first place and its last value
        EXPECT_EQ(std::string(b.s, b.n),
                  "{\"b\": 2, \"a\": [true, null, -2500.0, \"é🙂\\t\"], \"c\": {}}");
        slm_buf_free(&b);
        ASSERT_EQ(slm_json_write_compact(&b, v), 0);
        EXPECT_EQ(std::string(b.s, b.n),
                  "{\"b\":2,\"a\":[true,null,-2500.0,\"é🙂\\t\"],\"c\":{}}");
        slm_buf_free(&b);

        for (const char *bad : { "", "{", "[1,]", "{\"a\" 1}", "01", "\"\\x\"", "\"a\nb\"", "tru",
                                 "1 2", "\"\xc3\x28\"", "{\"a\":1,}" }) {
                EXPECT_EQ(slm_json_parse(&a, bad, strlen(bad), &v, &err), -EINVAL) << bad;
                EXPECT_NE(std::string(err.msg).find("offset"), std::string::npos) << err.msg;
        }
        std::string deep(1000, '[');
        EXPECT_EQ(slm_json_parse(&a, deep.data(), deep.size(), &v, &err), -EINVAL);

        // a large object is indexed: every key found, in order
        std::string big = "{";
        for (int i = 0; i < 5000; i++)
                big += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
        big += "}";
        ASSERT_EQ(slm_json_parse(&a, big.data(), big.size(), &v, &err), 0) << err.msg;
        ASSERT_EQ(v.dict->n, 5000u);
        for (int i = 0; i < 5000; i += 7) {
                SlmValue *x = slm_dict_get_str(v.dict, ("k" + std::to_string(i)).c_str());
                ASSERT_NE(x, nullptr);
                EXPECT_EQ(x->i, i);
        }
        EXPECT_EQ(slm_dict_get_str(v.dict, "k5000"), nullptr);

        // the arena's limit is a clean failure
        SlmArena small;
        slm_arena_init(&small, 4096);
        EXPECT_EQ(slm_json_parse(&small, big.data(), big.size(), &v, &err), -ENOMEM);
        slm_arena_clear(&small);
        slm_arena_clear(&a);
}
