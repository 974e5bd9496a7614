// SPDX-License-Identifier: MIT
// The slm-generate command, run as a user would: the story from the reference, --ids, stop
// strings, seeds, and the errors it gives for bad input.
#include <gtest/gtest.h>

#include <cstdio>
#include <sys/wait.h>

#include "gguf.h"
#include "tokenizer.h"
#include "test-util.h"

using slmtest::shared;

namespace
{

struct Result {
        std::string out;
        int status = -1;
};

// Run slm-generate with @args (already quoted); stdout captured, stderr to /dev/null.
Result run(const std::string &args)
{
        const char *exe = getenv("SLM_GENERATE");
        Result r;
        std::string cmd = std::string(exe ? exe : "slm-generate") + " " + args + " 2>/dev/null";
        FILE *p = popen(cmd.c_str(), "r");
        if (!p)
                return r;
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
                r.out.append(buf, n);
        int st = pclose(p);
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return r;
}

std::string stories()
{
        return "'" + shared("models/stories260K-f32.gguf") + "'";
}

// The text of the first @n reference tokens, decoded with the model's own vocabulary.
std::string reference_text(size_t n)
{
        auto ref = slmtest::read_json(shared("reference/vectors/stories260K-f32/once.json"));
        std::vector<int32_t> ids = ref["generated_ids"];
        ids.resize(n);
        SlmGguf *g = nullptr;
        SlmTokenizer *tk = nullptr;
        SlmError err = {};
        EXPECT_EQ(slm_gguf_open(shared("models/stories260K-f32.gguf").c_str(), &g, &err), 0);
        EXPECT_EQ(slm_tokenizer_new(g, &tk, &err), 0);
        std::string text;
        for (int32_t id : ids) {
                size_t len;
                const char *p = slm_tokenizer_piece(tk, id, false, &len);
                text.append(p, len);
        }
        slm_tokenizer_free(tk);
        slm_gguf_free(g);
        return text;
}

} // namespace

TEST(Generate, PrintsTheReferenceStory)
{
        Result r = run(stories() + " 'Once upon a time' -n 100");
        EXPECT_EQ(r.status, 0);
        std::string want = reference_text(100);
        ASSERT_GT(want.size(), 200u);
        EXPECT_EQ(r.out, want + "\n");
        EXPECT_EQ(r.out.rfind(", there was a little girl named Lily.", 0), 0u);
}

TEST(Generate, IdsMode)
{
        auto ref = slmtest::read_json(shared("reference/vectors/stories260K-f32/once.json"));
        std::vector<int32_t> prompt = ref["prompt_ids"], gen = ref["generated_ids"];
        Result r = run(stories() + " 'Once upon a time' -n 200 --ids --threads 2");
        EXPECT_EQ(r.status, 0);
        std::string want;
        for (size_t i = 0; i < prompt.size(); i++)
                want += (i ? " " : "") + std::to_string(prompt[i]);
        want += "\n";
        for (size_t i = 0; i < gen.size(); i++)
                want += (i ? " " : "") + std::to_string(gen[i]);
        want += "\n";
        EXPECT_EQ(r.out, want);
}

TEST(Generate, StopString)
{
        Result r = run(stories() + " 'Once upon a time' -n 100 --stop 'red ball'");
        EXPECT_EQ(r.status, 0);
        EXPECT_EQ(r.out, ", there was a little girl named Lily. She loved to play outside in the "
                         "park. One day, she saw a big, \n");
}

TEST(Generate, SeededSamplingIsRepeatable)
{
        std::string args = stories() + " 'Once upon a time' -n 60 --temp 0.9 --top-k 20";
        Result a = run(args + " --seed 7"), b = run(args + " --seed 7"),
               c = run(args + " --seed 8");
        EXPECT_EQ(a.status, 0);
        EXPECT_EQ(a.out, b.out);
        EXPECT_NE(a.out, c.out);
        EXPECT_NE(a.out, reference_text(60) + "\n"); // it really sampled
}

TEST(Generate, ErrorsAreReportedNotCrashed)
{
        EXPECT_EQ(run("/nonexistent.gguf 'hi'").status, 1);
        EXPECT_EQ(run("'" + shared("models/vocab/ggml-vocab-gpt-2.gguf") + "' 'hi'").status, 1);
        EXPECT_EQ(run(stories() + " 'hi' --temp -1").status, 2);
        EXPECT_EQ(run(stories() + " 'hi' -n abc").status, 2);
        EXPECT_EQ(run(stories() + " 'hi' --backend nosuch").status, 1);
        EXPECT_EQ(run(stories() + " 'hi' -n 600").status, 1); // longer than the 512 context
        EXPECT_EQ(run(stories()).status, 2);
}
