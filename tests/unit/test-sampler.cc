// SPDX-License-Identifier: MIT
// Sampling: greedy, seeded draws, top-k/top-p/min-p, penalties, parameter checks, stop strings.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "sampler.h"

namespace
{

SlmSamplerParams plain(float temp)
{
        SlmSamplerParams p;
        slm_sampler_params_default(&p);
        p.temperature = temp;
        p.top_k = 0;
        p.top_p = 1.0f;
        p.min_p = 0.0f;
        return p;
}

std::vector<int32_t> draws(const SlmSamplerParams &p, const std::vector<float> &logits, int n)
{
        SlmSampler *s = nullptr;
        EXPECT_EQ(slm_sampler_new(&p, (int)logits.size(), &s), 0);
        std::vector<int32_t> out;
        for (int i = 0; i < n; i++) {
                std::vector<float> l(logits);
                out.push_back(slm_sampler_sample(s, l.data(), nullptr, 0));
        }
        slm_sampler_free(s);
        return out;
}

} // namespace

TEST(Sampler, GreedyTakesLargestLowestIdOnTies)
{
        EXPECT_EQ(slm_argmax(std::vector<float>{ 1, 3, 3, 2 }.data(), 4), 1);
        auto d = draws(plain(0.0f), { 0.1f, 2.0f, -1.0f }, 5);
        EXPECT_EQ(d, std::vector<int32_t>(5, 1));
}

TEST(Sampler, SameSeedSameTokens)
{
        std::vector<float> logits(100);
        for (int i = 0; i < 100; i++)
                logits[i] = std::sin((float)i);
        SlmSamplerParams p = plain(1.0f);
        p.seed = 1234;
        auto a = draws(p, logits, 200), b = draws(p, logits, 200);
        EXPECT_EQ(a, b);
        p.seed = 99;
        EXPECT_NE(a, draws(p, logits, 200));
}

TEST(Sampler, FollowsTheDistribution)
{
        std::vector<float> logits = { std::log(0.5f), std::log(0.3f), std::log(0.2f) };
        auto d = draws(plain(1.0f), logits, 20000);
        double c[3] = {};
        for (int32_t id : d)
                c[id]++;
        EXPECT_NEAR(c[0] / 20000, 0.5, 0.02);
        EXPECT_NEAR(c[1] / 20000, 0.3, 0.02);
        EXPECT_NEAR(c[2] / 20000, 0.2, 0.02);
}

TEST(Sampler, TruncationRules)
{
        std::vector<float> logits = { std::log(0.5f), std::log(0.3f), std::log(0.2f) };
        SlmSamplerParams p = plain(1.0f);
        p.top_k = 1;
        EXPECT_EQ(draws(p, logits, 50), std::vector<int32_t>(50, 0));
        p = plain(1.0f);
        p.top_p = 0.5f; // the first token already holds half the mass
        EXPECT_EQ(draws(p, logits, 50), std::vector<int32_t>(50, 0));
        p = plain(1.0f);
        p.min_p = 0.7f; // 0.3 / 0.5 = 0.6 < 0.7
        EXPECT_EQ(draws(p, logits, 50), std::vector<int32_t>(50, 0));
        p = plain(1.0f);
        p.top_k = 2;
        for (int32_t id : draws(p, logits, 500))
                EXPECT_NE(id, 2);
}

TEST(Sampler, Penalties)
{
        SlmSamplerParams p = plain(0.0f);
        p.repeat_penalty = 2.0f;
        SlmSampler *s = nullptr;
        ASSERT_EQ(slm_sampler_new(&p, 3, &s), 0);
        std::vector<int32_t> hist = { 0 };
        std::vector<float> l = { 3.0f, 2.0f, 1.0f };
        EXPECT_EQ(slm_sampler_sample(s, l.data(), hist.data(), hist.size()), 1); // 3 / 2 < 2
        EXPECT_FLOAT_EQ(l[0], 1.5f);
        slm_sampler_free(s);

        p = plain(0.0f);
        p.frequency_penalty = 0.4f;
        p.presence_penalty = 0.3f;
        ASSERT_EQ(slm_sampler_new(&p, 3, &s), 0);
        hist = { 0, 0, 1 };
        l = { 3.0f, 2.5f, 1.0f };
        slm_sampler_sample(s, l.data(), hist.data(), hist.size());
        EXPECT_FLOAT_EQ(l[0], 3.0f - 2 * 0.4f - 0.3f);
        EXPECT_FLOAT_EQ(l[1], 2.5f - 0.4f - 0.3f);
        EXPECT_FLOAT_EQ(l[2], 1.0f);
        slm_sampler_free(s);
}

TEST(Sampler, RejectsBadParameters)
{
        SlmSamplerParams p = plain(0.5f);
        EXPECT_EQ(slm_sampler_params_check(&p), nullptr);
        p.temperature = -1.0f;
        EXPECT_STREQ(slm_sampler_params_check(&p), "temperature");
        p.temperature = NAN;
        EXPECT_STREQ(slm_sampler_params_check(&p), "temperature");
        p = plain(0.5f);
        p.top_p = 0.0f;
        EXPECT_STREQ(slm_sampler_params_check(&p), "top_p");
        p = plain(0.5f);
        p.min_p = 1.0f;
        EXPECT_STREQ(slm_sampler_params_check(&p), "min_p");
        p = plain(0.5f);
        p.top_k = -3;
        EXPECT_STREQ(slm_sampler_params_check(&p), "top_k");
        p = plain(0.5f);
        p.repeat_penalty = 0.0f;
        EXPECT_STREQ(slm_sampler_params_check(&p), "repeat_penalty");
        SlmSampler *s = nullptr;
        EXPECT_EQ(slm_sampler_new(&p, 10, &s), -EINVAL);
}

namespace
{

struct Fed {
        std::string shown;
        bool stopped = false;
};

Fed feed_all(const std::vector<std::string> &stops, const std::vector<std::string> &chunks)
{
        std::vector<const char *> c;
        for (const auto &s : stops)
                c.push_back(s.c_str());
        SlmStopMatcher m;
        EXPECT_EQ(slm_stop_matcher_init(&m, c.data(), c.size()), 0);
        Fed f;
        for (const auto &chunk : chunks) {
                const char *out;
                size_t n;
                EXPECT_EQ(
                    slm_stop_matcher_feed(&m, chunk.data(), chunk.size(), &out, &n, &f.stopped), 0);
                f.shown.append(out, n);
                if (f.stopped)
                        break;
        }
        if (!f.stopped) {
                const char *out;
                size_t n;
                slm_stop_matcher_flush(&m, &out, &n);
                f.shown.append(out, n);
        }
        slm_stop_matcher_clear(&m);
        return f;
}

} // namespace

TEST(StopStrings, StopAcrossChunks)
{
        Fed f = feed_all({ "STOP" }, { "abc S", "T", "OP and more" });
        EXPECT_TRUE(f.stopped);
        EXPECT_EQ(f.shown, "abc ");
}

TEST(StopStrings, FalseStartIsReleased)
{
        Fed f = feed_all({ "STOP" }, { "abc ST", "AR", "T" });
        EXPECT_FALSE(f.stopped);
        EXPECT_EQ(f.shown, "abc START");
}

TEST(StopStrings, EarliestOfSeveral)
{
        Fed f = feed_all({ "world", "lo w" }, { "hello world" });
        EXPECT_TRUE(f.stopped);
        EXPECT_EQ(f.shown, "hel");
}

TEST(StopStrings, NoneMeansPassThrough)
{
        Fed f = feed_all({}, { "a", "b" });
        EXPECT_FALSE(f.stopped);
        EXPECT_EQ(f.shown, "ab");
}
