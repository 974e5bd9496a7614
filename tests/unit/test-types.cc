// SPDX-License-Identifier: MIT
// Tensor types: half/bfloat16 conversion, block layouts, activation quantization and the
// reference dot products.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "slm-types.h"
#include "test-util.h"

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t hw_fp32_to_fp16(float f)
{
        return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
#endif

TEST(Types, HalfRoundTripsEveryValue)
{
        for (uint32_t h = 0; h < 65536; h++) {
                uint16_t v = (uint16_t)h;
                bool nan = (v & 0x7c00) == 0x7c00 && (v & 0x3ff);
                if (nan) {
                        EXPECT_TRUE(std::isnan(slm_fp16_to_fp32(v)));
                        continue;
                }
                ASSERT_EQ(slm_fp32_to_fp16(slm_fp16_to_fp32(v)), v) << std::hex << h;
        }
        EXPECT_EQ(slm_fp16_to_fp32(0x3c00), 1.0f);
        EXPECT_EQ(slm_fp16_to_fp32(0x7bff), 65504.0f);
        EXPECT_EQ(slm_fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));
        EXPECT_EQ(slm_fp32_to_fp16(65519.0f), 0x7bff);
        EXPECT_EQ(slm_fp32_to_fp16(65520.0f), 0x7c00); // halfway to the next: rounds to even (inf)
        EXPECT_EQ(slm_fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000); // halfway to 0 and 2^-24
        EXPECT_EQ(slm_fp32_to_fp16(std::ldexp(3.0f, -26)), 0x0001);
        EXPECT_EQ(slm_fp32_to_fp16(-0.0f), 0x8000);
}

TEST(Types, HalfRoundingMatchesHardware)
{
#if defined(__x86_64__)
        if (!__builtin_cpu_supports("f16c"))
                GTEST_SKIP() << "no F16C on this CPU";
        std::mt19937 rng(1);
        std::uniform_int_distribution<uint32_t> bits;
        for (int i = 0; i < 2000000; i++) {
                uint32_t u = bits(rng);
                float f;
                memcpy(&f, &u, 4);
                if (std::isnan(f))
                        continue;
                ASSERT_EQ(slm_fp32_to_fp16(f), hw_fp32_to_fp16(f)) << std::hexfloat << f;
        }
#else
        GTEST_SKIP() << "no hardware conversion to compare with";
#endif
}

TEST(Types, Bfloat16RoundsToNearestEven)
{
        EXPECT_EQ(slm_fp32_to_bf16(1.0f), 0x3f80);
        EXPECT_EQ(slm_bf16_to_fp32(0x3f80), 1.0f);
        float halfway; // 1 + 2^-8: exactly between two bf16 values, rounds to even (1.0)
        uint32_t u = 0x3f808000;
        memcpy(&halfway, &u, 4);
        EXPECT_EQ(slm_fp32_to_bf16(halfway), 0x3f80);
        u = 0x3f818000; // odd neighbour: rounds up
        memcpy(&halfway, &u, 4);
        EXPECT_EQ(slm_fp32_to_bf16(halfway), 0x3f82);
        EXPECT_TRUE(std::isnan(slm_bf16_to_fp32(slm_fp32_to_bf16(NAN))));
}

TEST(Types, TraitsAndRowSizes)
{
        uint64_t bytes = 0;
        EXPECT_EQ(slm_type_row_bytes(SLM_TYPE_Q4_0, 64, &bytes), 0);
        EXPECT_EQ(bytes, 36u);
        EXPECT_EQ(slm_type_row_bytes(SLM_TYPE_Q4_K, 512, &bytes), 0);
        EXPECT_EQ(bytes, 288u);
        EXPECT_EQ(slm_type_row_bytes(SLM_TYPE_Q6_K, 100, &bytes), -EINVAL);
        EXPECT_EQ(slm_type_row_bytes(4, 32, &bytes), -EINVAL); // 4 and 5 were removed types
        EXPECT_EQ(slm_type_row_bytes(SLM_TYPE_F32, UINT64_MAX / 2, &bytes), -EOVERFLOW);
        EXPECT_STREQ(slm_type_name(SLM_TYPE_Q5_K), "Q5_K");
        EXPECT_STREQ(slm_type_name(1000), "unknown");
}

// The reference dot product equals the float dot of the dequantized rows (weights and
// quantized activations), for every weight type, over several rows.
TEST(Types, DotProductsMatchDequantizedRows)
{
        const SlmType types[] = { SLM_TYPE_F32,  SLM_TYPE_F16,  SLM_TYPE_BF16, SLM_TYPE_Q4_0,
                                  SLM_TYPE_Q4_1, SLM_TYPE_Q5_0, SLM_TYPE_Q5_1, SLM_TYPE_Q8_0,
                                  SLM_TYPE_Q4_K, SLM_TYPE_Q5_K, SLM_TYPE_Q6_K };
        std::mt19937 rng(42);
        std::normal_distribution<float> act(0.0f, 1.0f);
        for (SlmType type : types) {
                const SlmTypeTraits *t = slm_type_traits(type);
                const SlmTypeTraits *dt = slm_type_traits(t->dot_type);
                for (int64_t n : { (int64_t)256, (int64_t)768, (int64_t)2560 }) {
                        std::vector<uint8_t> w = slmtest::random_row(type, n, rng);
                        std::vector<float> x(n), wf(n), xf(n);
                        for (auto &v : x)
                                v = act(rng);
                        std::vector<uint8_t> xq((size_t)(n / dt->block_size) * dt->block_bytes);
                        slm_quantize_row(t->dot_type, x.data(), xq.data(), n);
                        slm_dequantize_row(type, w.data(), wf.data(), n);
                        if (t->dot_type == SLM_TYPE_Q8_K) {
                                // Q8_K is activation-only: expand it here from its fields
                                for (int64_t b = 0; b < n / 256; b++) {
                                        const SlmBlockQ8_K *blk =
                                            (const SlmBlockQ8_K *)xq.data() + b;
                                        for (int j = 0; j < 256; j++)
                                                xf[b * 256 + j] = blk->d * blk->qs[j];
                                }
                        } else if (t->dot_type == SLM_TYPE_Q8_1) {
                                for (int64_t b = 0; b < n / 32; b++) {
                                        const SlmBlockQ8_1 *blk =
                                            (const SlmBlockQ8_1 *)xq.data() + b;
                                        for (int j = 0; j < 32; j++)
                                                xf[b * 32 + j] =
                                                    slm_fp16_to_fp32(blk->d) * blk->qs[j];
                                }
                        } else {
                                slm_dequantize_row(t->dot_type, xq.data(), xf.data(), n);
                        }
                        double want = 0, mag = 0;
                        for (int64_t i = 0; i < n; i++) {
                                want += (double)wf[i] * xf[i];
                                mag += std::fabs((double)wf[i] * xf[i]);
                        }
                        float got = slm_vec_dot_ref(type, n, w.data(), xq.data());
                        // Q8_1 carries d*sum(q) rounded to fp16: allow for that rounding
                        double tol = (t->dot_type == SLM_TYPE_Q8_1 ? 2e-3 : 1e-5) * mag + 1e-6;
                        EXPECT_NEAR(got, want, tol) << t->name << " n=" << n;
                }
        }
}

// Layouts checked by hand for the types no reference model file covers.
TEST(Types, Q4_1AndQ5LayoutsByHand)
{
        SlmBlockQ4_1 a = {};
        a.d = slm_fp32_to_fp16(0.5f);
        a.m = slm_fp32_to_fp16(-1.0f);
        a.qs[0] = 0x3f; // x[0] = 15, x[16] = 3
        float y[32];
        slm_dequantize_row(SLM_TYPE_Q4_1, &a, y, 32);
        EXPECT_EQ(y[0], 0.5f * 15 - 1.0f);
        EXPECT_EQ(y[16], 0.5f * 3 - 1.0f);
        EXPECT_EQ(y[1], -1.0f);

        SlmBlockQ5_0 b = {};
        b.d = slm_fp32_to_fp16(2.0f);
        b.qs[1] = 0x21;                       // x[1] low nibble 1, x[17] low nibble 2
        uint32_t qh = (1u << 1) | (1u << 17); // fifth bits of x[1] and x[17]
        memcpy(b.qh, &qh, 4);
        slm_dequantize_row(SLM_TYPE_Q5_0, &b, y, 32);
        EXPECT_EQ(y[1], 2.0f * (1 + 16 - 16));
        EXPECT_EQ(y[17], 2.0f * (2 + 16 - 16));
        EXPECT_EQ(y[0], 2.0f * -16);

        SlmBlockQ5_1 c = {};
        c.d = slm_fp32_to_fp16(1.0f);
        c.m = slm_fp32_to_fp16(0.25f);
        c.qs[31 - 16] = 0xf0; // x[31] low bits 15
        qh = 1u << 31;        // x[31] fifth bit
        memcpy(c.qh, &qh, 4);
        slm_dequantize_row(SLM_TYPE_Q5_1, &c, y, 32);
        EXPECT_EQ(y[31], 31.25f);
        EXPECT_EQ(y[15], 0.25f);
}

TEST(Types, ActivationQuantization)
{
        std::vector<float> x(256);
        for (int i = 0; i < 256; i++)
                x[i] = std::sin(0.1f * (float)i) * (i == 77 ? 5.0f : 1.0f);
        SlmBlockQ8_0 q0[8];
        slm_quantize_row(SLM_TYPE_Q8_0, x.data(), q0, 256);
        float d = slm_fp16_to_fp32(q0[2].d);
        EXPECT_EQ(std::abs(q0[2].qs[77 - 64]), 127); // the block's largest value maps to 127
        for (int j = 0; j < 32; j++)
                EXPECT_NEAR(q0[2].qs[j] * d, x[64 + j], d * 0.51f);

        SlmBlockQ8_K qk;
        slm_quantize_row(SLM_TYPE_Q8_K, x.data(), &qk, 256);
        // the scale carries the sign of the largest value: d = -max / 127
        EXPECT_EQ(std::abs(qk.qs[77]), 127);
        EXPECT_NEAR(qk.d * qk.qs[77], x[77], 1e-6);
        for (int j = 0; j < 256; j++)
                EXPECT_NEAR(qk.d * qk.qs[j], x[j], std::fabs(qk.d) * 0.51f);
        int sum = 0;
        for (int j = 0; j < 16; j++)
                sum += qk.qs[16 + j];
        EXPECT_EQ(qk.bsums[1], sum);

        std::vector<float> zero(32, 0.0f);
        slm_quantize_row(SLM_TYPE_Q8_0, zero.data(), q0, 32);
        EXPECT_EQ(slm_fp16_to_fp32(q0[0].d), 0.0f);
        EXPECT_EQ(q0[0].qs[5], 0);
}

// Weights written by the quantizers come back close: relative RMS error per type.
TEST(Types, WeightQuantizersRoundTrip)
{
        struct {
                SlmType type;
                double max_rel_rms;
        } cases[] = { { SLM_TYPE_F16, 1e-3 },  { SLM_TYPE_BF16, 5e-3 }, { SLM_TYPE_Q8_0, 0.01 },
                      { SLM_TYPE_Q6_K, 0.04 }, { SLM_TYPE_Q5_K, 0.06 }, { SLM_TYPE_Q4_K, 0.12 },
                      { SLM_TYPE_Q4_0, 0.15 } };
        std::mt19937 rng(3);
        std::normal_distribution<float> dist(0.0f, 0.02f);
        const int64_t n = 4096;
        std::vector<float> x(n), y(n);
        for (auto &v : x)
                v = dist(rng);
        for (const auto &c : cases) {
                const SlmTypeTraits *t = slm_type_traits(c.type);
                std::vector<uint8_t> q((size_t)(n / t->block_size) * t->block_bytes);
                ASSERT_EQ(slm_quantize_weights_row(c.type, x.data(), q.data(), n), 0) << t->name;
                slm_dequantize_row(c.type, q.data(), y.data(), n);
                double err = 0, ref = 0;
                for (int64_t i = 0; i < n; i++) {
                        err += (double)(x[i] - y[i]) * (x[i] - y[i]);
                        ref += (double)x[i] * x[i];
                }
                double rel = std::sqrt(err / ref);
                EXPECT_LT(rel, c.max_rel_rms) << t->name;
                EXPECT_GT(rel, 0.0) << t->name << ": lossless is not believable for a quantizer";
        }
        EXPECT_EQ(slm_quantize_weights_row(SLM_TYPE_Q4_1, x.data(), y.data(), 32), -EINVAL);
        EXPECT_EQ(slm_quantize_weights_row(SLM_TYPE_Q4_K, x.data(), y.data(), 100), -EINVAL);
}
