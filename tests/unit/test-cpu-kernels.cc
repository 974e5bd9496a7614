// SPDX-License-Identifier: MIT
// The SIMD kernels against the scalar reference, per type, sizes odd included.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "cpu-kernels.h"
#include "cpu-pack.h"
#include "test-util.h"

TEST(CpuKernels, SimdMatchesScalar)
{
        const SlmType types[] = { SLM_TYPE_F32,  SLM_TYPE_F16,  SLM_TYPE_Q4_0, SLM_TYPE_Q8_0,
                                  SLM_TYPE_Q4_K, SLM_TYPE_Q5_K, SLM_TYPE_Q6_K };
        std::mt19937 rng(7);
        std::normal_distribution<float> act(0.0f, 1.0f);
        int checked = 0;
        for (SlmType type : types) {
                SlmVecDotFn simd = slm_cpu_vec_dot_avx2(type);
                if (!simd)
                        continue;
                const SlmTypeTraits *t = slm_type_traits(type);
                const SlmTypeTraits *dt = slm_type_traits(t->dot_type);
                // block counts 1, 3, 7 and 33; element counts for F32/F16 not multiples of 16
                for (int64_t blocks : { 1, 3, 7, 33 }) {
                        int64_t n = t->block_size == 1 ? blocks * 32 + 5 : blocks * t->block_size;
                        auto w = slmtest::random_row(type, n, rng);
                        std::vector<float> x(n);
                        for (auto &v : x)
                                v = act(rng);
                        std::vector<uint8_t> xq((size_t)(n / dt->block_size) * dt->block_bytes);
                        slm_quantize_row(t->dot_type, x.data(), xq.data(), n);
                        float want = slm_vec_dot_ref(type, n, w.data(), xq.data());
                        float got = simd(n, w.data(), xq.data());
                        EXPECT_NEAR(got, want, 1e-5f * (std::fabs(want) + std::sqrt((float)n)))
                            << t->name << " n=" << n;
                        checked++;
                }
        }
        if (checked == 0)
                GTEST_SKIP() << "no SIMD kernels on this CPU";
        EXPECT_EQ(checked, 28);
}

// A head's scores eight keys at a time: the bits of the dot one key at a time, for 1..300 keys
// (whole groups of eight and the rest) with a stride wider than the head, as in a cache row.
TEST(CpuKernels, KeyDotsHaveTheDotsBits)
{
        std::mt19937 rng(13);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        int checked = 0;
        for (SlmType type : { SLM_TYPE_F32, SLM_TYPE_F16 }) {
                EXPECT_EQ(slm_cpu_key_dots(type, 16), nullptr);
                SlmKeyDotsFn many = slm_cpu_key_dots(type, 8);
                if (!many)
                        continue;
                SlmVecDotFn dot = slm_cpu_vec_dot(type);
                size_t row = (size_t)slm_type_traits(type)->block_bytes * 8, stride = row * 5;
                for (int n_keys : { 1, 7, 8, 9, 16, 37, 300 }) {
                        std::vector<uint8_t> keys(stride * n_keys);
                        for (int j = 0; j < n_keys; j++) {
                                auto r = slmtest::random_row(type, 8, rng);
                                memcpy(keys.data() + j * stride, r.data(), row);
                        }
                        std::vector<float> qf(8);
                        for (auto &v : qf)
                                v = nd(rng);
                        std::vector<uint8_t> q(row);
                        slm_quantize_row(type, qf.data(), q.data(), 8);
                        std::vector<float> got(n_keys + 1, 7.0f);
                        many(n_keys, keys.data(), stride, q.data(), got.data());
                        for (int j = 0; j < n_keys; j++) {
                                float want = dot(8, keys.data() + j * stride, q.data());
                                EXPECT_EQ(memcmp(&got[j], &want, sizeof(float)), 0)
                                    << slm_type_traits(type)->name << " key " << j << " of "
                                    << n_keys << ": " << got[j] << " vs " << want;
                        }
                        EXPECT_EQ(got[n_keys], 7.0f) << "wrote past the scores";
                        checked++;
                }
        }
        if (checked == 0)
                GTEST_SKIP() << "no SIMD kernels on this CPU";
        EXPECT_EQ(checked, 14);
}

// The weighted sums of KV cache rows (attention's values): SIMD against the scalar reference, for
// every cache type, head sizes that are not multiples of 32 or 8 (F32/F16) and 1..37 rows with a
// stride wider than the row, as a head's slice of a cache row is.
TEST(CpuKernels, RowSumsMatchScalar)
{
        std::mt19937 rng(11);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        int checked = 0;
        for (SlmType type : { SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_Q8_0 }) {
                SlmRowSumFn ref = slm_cpu_row_sum_ref(type), simd = slm_cpu_row_sum_avx2(type);
                ASSERT_NE(ref, nullptr);
                EXPECT_EQ(slm_cpu_row_sum(type) != nullptr, true);
                if (!simd)
                        continue;
                const SlmTypeTraits *t = slm_type_traits(type);
                for (int64_t n : { 8, 13, 32, 64, 72, 100, 128, 256 }) {
                        if (n % t->block_size)
                                continue;
                        size_t row = (size_t)(n / t->block_size) * t->block_bytes;
                        size_t stride = row * 3 + t->block_bytes; // the other heads in between
                        for (int n_rows : { 1, 2, 7, 37 }) {
                                std::vector<uint8_t> rows(stride * n_rows);
                                for (int j = 0; j < n_rows; j++) {
                                        auto r = slmtest::random_row(type, n, rng);
                                        memcpy(rows.data() + j * stride, r.data(), row);
                                }
                                std::vector<float> w(n_rows), want(n + 1, 7.0f), got(n + 1, 7.0f);
                                for (auto &v : w)
                                        v = std::fabs(nd(rng)) / n_rows;
                                ref(n, n_rows, w.data(), rows.data(), stride, want.data());
                                simd(n, n_rows, w.data(), rows.data(), stride, got.data());
                                // an F32 cache: the same bits (products rounded before sums)
                                if (type == SLM_TYPE_F32) {
                                        ASSERT_EQ(0, memcmp(got.data(), want.data(), n * 4));
                                }
                                for (int64_t i = 0; i < n; i++) {
                                        ASSERT_NEAR(got[i], want[i],
                                                    1e-5f * (1 + std::fabs(want[i])))
                                            << t->name << " n=" << n << " rows " << n_rows
                                            << " i=" << i;
                                }
                                EXPECT_EQ(got[n], 7.0f) << "wrote past the row";
                                EXPECT_EQ(want[n], 7.0f);
                                checked++;
                        }
                }
        }
        EXPECT_EQ(checked, slm_cpu_have_avx2() ? 80 : 0);
        EXPECT_EQ(slm_cpu_row_sum_ref(SLM_TYPE_Q4_0), nullptr);
}

// Rows of an F16 KV cache: the SIMD conversion gives slm_fp32_to_fp16's bits for normal values,
// half subnormals, values that round past 65504, infinities, zeros of both signs and NaN, in
// lengths that leave every tail.
TEST(CpuKernels, ToF16MatchesScalar)
{
        std::mt19937 rng(17);
        std::uniform_real_distribution<float> mant(1.0f, 2.0f);
        std::uniform_int_distribution<int> exp2(-30, 17), sign(0, 1);
        std::vector<float> x(997);
        for (auto &v : x)
                v = std::ldexp(mant(rng), exp2(rng)) * (sign(rng) ? -1.0f : 1.0f);
        const float special[] = { 0.0f,
                                  -0.0f,
                                  65504.0f,
                                  65519.99f,
                                  65520.0f,
                                  -1e9f,
                                  5.96e-8f,
                                  2.98e-8f,
                                  std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(),
                                  std::numeric_limits<float>::quiet_NaN() };
        for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
                x[7 * i + 3] = special[i];
        SlmToF16Fn f = slm_cpu_to_f16();
        ASSERT_NE(f, nullptr);
        for (int64_t n : { 1, 7, 8, 9, 37, 997 }) {
                std::vector<slm_fp16> got(n + 1, 0x1234);
                f(n, x.data(), got.data());
                for (int64_t i = 0; i < n; i++) {
                        ASSERT_EQ(got[i], slm_fp32_to_fp16(x[i])) << "n=" << n << " x=" << x[i];
                }
                EXPECT_EQ(got[n], 0x1234) << "wrote past the row";
        }
        EXPECT_EQ(slm_cpu_to_f16_avx2() != nullptr, slm_cpu_have_avx2());
}

TEST(CpuKernels, DispatchCoversEveryWeightType)
{
        for (uint32_t t = 0; t < SLM_TYPE_COUNT; t++) {
                const SlmTypeTraits *tt = slm_type_traits(t);
                if (tt && tt->weight_type) {
                        EXPECT_NE(slm_cpu_vec_dot((SlmType)t), nullptr) << tt->name;
                }
        }
        std::string name = slm_cpu_simd_name();
        EXPECT_TRUE(name == "avx2" || name == "avx2+avx512vnni" || name == "scalar") << name;
}

// The prompt-batch tiles (4 weight rows x 2 token rows at once) against the scalar reference.
TEST(CpuKernels, TilesMatchScalar)
{
        std::mt19937 rng(11);
        std::normal_distribution<float> act(0.0f, 1.0f);
        int checked = 0;
        for (SlmType type : { SLM_TYPE_Q4_0 }) {
                SlmTileDotFn tile = slm_cpu_tile_dot_avx2(type);
                if (!tile)
                        continue;
                const SlmTypeTraits *t = slm_type_traits(type);
                const SlmTypeTraits *dt = slm_type_traits(t->dot_type);
                for (int64_t blocks : { 1, 3, 7, 33 }) {
                        int64_t n = blocks * t->block_size;
                        size_t w_row = (size_t)blocks * t->block_bytes;
                        size_t x_row = (size_t)(n / dt->block_size) * dt->block_bytes;
                        std::vector<uint8_t> w(SLM_TILE_ROWS * w_row), xq(SLM_TILE_TOKENS * x_row);
                        for (int r = 0; r < SLM_TILE_ROWS; r++) {
                                auto row = slmtest::random_row(type, n, rng);
                                memcpy(w.data() + r * w_row, row.data(), w_row);
                        }
                        for (int k = 0; k < SLM_TILE_TOKENS; k++) {
                                std::vector<float> x(n);
                                for (auto &v : x)
                                        v = act(rng);
                                slm_quantize_row(t->dot_type, x.data(), xq.data() + k * x_row, n);
                        }
                        // out is (tokens, rows) with a row stride wider than the tile
                        const size_t stride = 7;
                        std::vector<float> out(SLM_TILE_TOKENS * stride, -1.0f);
                        tile(n, w.data(), w_row, xq.data(), x_row, out.data(), stride);
                        for (int k = 0; k < SLM_TILE_TOKENS; k++)
                                for (int r = 0; r < SLM_TILE_ROWS; r++) {
                                        float want = slm_vec_dot_ref(type, n, w.data() + r * w_row,
                                                                     xq.data() + k * x_row);
                                        EXPECT_NEAR(out[k * stride + r], want,
                                                    1e-5f * (std::fabs(want) + std::sqrt((float)n)))
                                            << t->name << " n=" << n << " r" << r << " t" << k;
                                }
                        for (int k = 0; k < SLM_TILE_TOKENS; k++) // nothing past the tile
                                for (size_t r = SLM_TILE_ROWS; r < stride; r++)
                                        EXPECT_EQ(out[k * stride + r], -1.0f);
                        checked++;
                }
        }
        if (checked == 0)
                GTEST_SKIP() << "no SIMD kernels on this CPU";
        EXPECT_EQ(checked, 4);
}

// One packed kernel on groups of eight rows of n weights against n_tok tokens, through gemm
// (groups 1), gemm2 (groups 2: a pair) or gemm4 (groups 4: two pairs), against the scalar
// reference over the original rows.
static void check_packed(const SlmPackKernel *k, int64_t n, int n_tok, int groups,
                         std::mt19937 &rng)
{
        const SlmPackLayout *l = k->layout;
        const SlmTypeTraits *t = slm_type_traits(k->type);
        const SlmTypeTraits *dt = slm_type_traits(t->dot_type);
        const int rows = 4 * SLM_PACK_ROWS;
        std::normal_distribution<float> act(0.0f, 1.0f);
        size_t w_row = (size_t)(n / t->block_size) * t->block_bytes;
        std::vector<uint8_t> w(rows * w_row);
        for (int r = 0; r < rows; r++) {
                auto row = slmtest::random_row(k->type, n, rng);
                memcpy(w.data() + r * w_row, row.data(), w_row);
        }
        // one group, one pair, or two pairs 2 * gs apart with a gap between them
        size_t gb = (size_t)(n / l->block_size) * l->group_block_bytes, gs = gb + 64;
        std::vector<uint8_t> packed(2 * gs + 2 * gb);
        if (groups == 1)
                l->pack(n, w.data(), w_row, packed.data());
        for (int p = 0; 2 * p < groups && groups > 1; p++)
                slm_pack_pair(k, n, w.data() + 2 * p * SLM_PACK_ROWS * w_row, w_row,
                              packed.data() + 2 * p * gs);

        size_t xs = (size_t)(n / l->block_size) * l->x_block_bytes;
        size_t ref_row = (size_t)(n / dt->block_size) * dt->block_bytes;
        std::vector<uint8_t> xk(n_tok * xs), xr(n_tok * ref_row), portable(xs);
        for (int tok = 0; tok < n_tok; tok++) {
                std::vector<float> x(n);
                for (auto &v : x)
                        v = act(rng);
                k->convert_x(n, x.data(), xk.data() + tok * xs);
                // the instruction set's conversion is the portable one, bit for bit
                l->convert_x(n, x.data(), portable.data());
                EXPECT_EQ(memcmp(xk.data() + tok * xs, portable.data(), xs), 0)
                    << k->isa << " " << t->name << " n=" << n;
                slm_quantize_row(t->dot_type, x.data(), xr.data() + tok * ref_row, n);
        }

        const size_t stride = 35; // wider than four groups
        std::vector<float> out(n_tok * stride, -1.0f);
        SlmPackGemmFn gemm = groups == 4 ? k->gemm4 : groups == 2 ? k->gemm2 : k->gemm;
        gemm(n, packed.data(), gs, xk.data(), xs, n_tok, out.data(), stride);
        for (int tok = 0; tok < n_tok; tok++)
                for (size_t r = 0; r < stride; r++) {
                        float got = out[tok * stride + r];
                        if (r >= (size_t)groups * SLM_PACK_ROWS) {
                                EXPECT_EQ(got, -1.0f); // nothing written past the groups
                                continue;
                        }
                        float want = slm_vec_dot_ref(k->type, n, w.data() + r * w_row,
                                                     xr.data() + tok * ref_row);
                        EXPECT_NEAR(got, want, 1e-5f * (std::fabs(want) + std::sqrt((float)n)))
                            << k->isa << " " << t->name << " n=" << n << " groups " << groups
                            << " r" << r << " t" << tok;
                }
}

// The packed kernels, for every type and instruction set this CPU runs: block counts 1, 3, 7
// and 33 (F16: odd element counts), and 1..11 tokens, every tail of a register tile.
TEST(CpuKernels, PackedMatchScalar)
{
        std::mt19937 rng(13);
        int checked = 0;
        for (const char *isa : { "avx2", "avx512vnni" })
                for (SlmType type : { SLM_TYPE_Q4_0, SLM_TYPE_Q8_0, SLM_TYPE_Q4_K, SLM_TYPE_Q5_K,
                                      SLM_TYPE_Q6_K, SLM_TYPE_F16 }) {
                        const SlmPackKernel *k = slm_cpu_pack_kernel_isa(type, isa);
                        if (!k)
                                continue;
                        ASSERT_EQ(k->type, type);
                        ASSERT_NE(k->convert_x, nullptr);
                        const SlmTypeTraits *t = slm_type_traits(type);
                        for (int64_t blocks : { 1, 3, 7, 33 }) {
                                int64_t n =
                                    t->block_size == 1 ? blocks * 32 + 5 : blocks * t->block_size;
                                for (int n_tok : { 1, 2, 3, 5, 8, 11 })
                                        for (int groups : { 1, 2, 4 }) {
                                                if ((groups == 2 && !k->gemm2) ||
                                                    (groups == 4 && !k->gemm4))
                                                        continue;
                                                check_packed(k, n, n_tok, groups, rng);
                                                checked++;
                                        }
                        }
                }
        if (checked == 0)
                GTEST_SKIP() << "no packed kernels on this CPU";
        // AVX2 has all but Q8_0 on one group; VNNI all six on one and two, F16 on four too
        EXPECT_EQ(checked, (slm_cpu_have_avx2() ? 5 * 24 : 0) +
                               (slm_cpu_have_avx512vnni() ? 6 * 48 + 24 : 0));
}

// The instruction sets' activation conversions on what a broken model feeds them (NaN, infinities,
// values past the int8 range, denormals): the portable conversion's bytes, with no undefined
// behaviour on the way (the suite also runs under UBSan).
TEST(CpuKernels, PackedConversionsOnExtremeValues)
{
        const float nan = std::numeric_limits<float>::quiet_NaN();
        const float inf = std::numeric_limits<float>::infinity();
        const float specials[] = { nan, inf, -inf, 3e38f, -3e38f, 1e-40f, -1e-40f, 0.0f, -0.0f };
        std::mt19937 rng(17);
        std::normal_distribution<float> act(0.0f, 1.0f);
        int checked = 0;
        for (const char *isa : { "avx2", "avx512vnni" })
                for (SlmType type : { SLM_TYPE_Q4_0, SLM_TYPE_Q8_0, SLM_TYPE_Q4_K, SLM_TYPE_F16 }) {
                        const SlmPackKernel *k = slm_cpu_pack_kernel_isa(type, isa);
                        if (!k)
                                continue;
                        const SlmPackLayout *l = k->layout;
                        const int64_t n = 512;
                        size_t xs = (size_t)(n / l->block_size) * l->x_block_bytes;
                        for (float special : specials) {
                                if (type == SLM_TYPE_F16 && std::isnan(special))
                                        continue; // NaN payloads may differ; both stay NaN
                                std::vector<float> x(n);
                                for (auto &v : x)
                                        v = act(rng);
                                for (int64_t i = 5; i < n; i += 37)
                                        x[i] = special;
                                std::vector<uint8_t> got(xs), want(xs);
                                k->convert_x(n, x.data(), got.data());
                                l->convert_x(n, x.data(), want.data());
                                EXPECT_EQ(memcmp(got.data(), want.data(), xs), 0)
                                    << isa << " " << slm_type_name(type) << " " << special;
                                checked++;
                        }
                }
        if (checked == 0)
                GTEST_SKIP() << "no packed kernels on this CPU";
}
