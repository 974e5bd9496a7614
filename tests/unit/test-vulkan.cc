// SPDX-License-Identifier: MIT
// The Vulkan backend op by op against the CPU backend (normalized MSE, tolerances per type) and,
// for the matrix products, against double-precision sums over the exactly dequantized weights,
// which pins each shader's dequantization down. Every shader, every weight type, odd sizes.
// Run as test-vulkan (subgroup sums where the device has them), test-vulkan-shared
// (SLM_VULKAN_SUBGROUPS=0: the shared-memory fallback) and test-vulkan-validation
// (SLM_VULKAN_VALIDATE=1: not one validation message allowed).
#include <gtest/gtest.h>

#include <algorithm>

#include <cerrno>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "model.h"
#include "slm-backend.h"
#include "test-util.h"
#include "vk-debug.h"
#include "vk-internal.h"
#include "vk-push.h"

namespace
{

std::vector<float> randn(size_t n, unsigned seed, float sd = 1.0f)
{
        std::mt19937 rng(seed);
        std::normal_distribution<float> d(0.0f, sd);
        std::vector<float> v(n);
        for (auto &x : v)
                x = d(rng);
        return v;
}

bool validating()
{
        const char *v = getenv("SLM_VULKAN_VALIDATE");
        return v && std::string(v) == "1";
}

class Vulkan : public ::testing::Test
{
      protected:
        SlmBackend *cpu = nullptr, *vk = nullptr;
        unsigned messages_before = 0;

        void SetUp() override
        {
                messages_before = slm_vk_validation_message_count();
                ASSERT_EQ(slm_backend_cpu_new(2, &cpu), 0);
                int r = slm_backend_new("vulkan", 2, &vk);
                ASSERT_EQ(r, 0) << "no Vulkan device (install mesa-vulkan-drivers for lavapipe)";
                ASSERT_STREQ(slm_backend_name(vk), "vulkan");
                if (validating()) {
                        ASSERT_TRUE(slm_vk_validating(vk)) << "validation layer not loaded";
                }
        }

        void TearDown() override
        {
                slm_backend_free(vk);
                slm_backend_free(cpu);
                EXPECT_EQ(slm_vk_validation_message_count(), messages_before);
        }

        // A tensor on backend b holding v.
        SlmTensor *put(SlmBackend *b, const std::vector<float> &v)
        {
                SlmTensor *t = nullptr;
                EXPECT_EQ(slm_tensor_new(b, v.size(), &t), 0);
                EXPECT_EQ(slm_tensor_write(b, t, 0, v.data(), v.size()), 0);
                return t;
        }

        std::vector<float> get(SlmBackend *b, SlmTensor *t, size_t n)
        {
                std::vector<float> v(n);
                EXPECT_EQ(slm_tensor_read(b, t, 0, v.data(), n), 0);
                return v;
        }

        // Run op on both backends over copies of the same inputs; return {cpu, vulkan} outputs.
        template <typename Op>
        std::pair<std::vector<float>, std::vector<float>> both(
            const std::vector<std::vector<float>> &inputs, size_t out_index, Op op)
        {
                std::vector<float> res[2];
                SlmBackend *bs[2] = { cpu, vk };
                for (int i = 0; i < 2; i++) {
                        std::vector<SlmTensor *> ts;
                        for (const auto &in : inputs)
                                ts.push_back(put(bs[i], in));
                        EXPECT_EQ(op(bs[i], ts), 0);
                        res[i] = get(bs[i], ts[out_index], inputs[out_index].size());
                        for (auto *t : ts)
                                slm_tensor_free(bs[i], t);
                        // the caller's weights die after this; the next ones may reuse the address
                        slm_backend_release_weights(bs[i]);
                }
                return { res[0], res[1] };
        }
};

struct Weights {
        SlmMatrix m;
        std::vector<uint8_t> data;
        std::vector<float> deq; // the exact values of every row
};

Weights make_weights(SlmType type, int64_t n_in, int64_t n_out, unsigned seed)
{
        Weights w;
        std::mt19937 rng(seed);
        uint64_t row_bytes = 0;
        EXPECT_EQ(slm_type_row_bytes(type, (uint64_t)n_in, &row_bytes), 0);
        w.data.resize(row_bytes * (size_t)n_out);
        w.deq.resize((size_t)(n_in * n_out));
        for (int64_t r = 0; r < n_out; r++) {
                auto row = slmtest::random_row(type, n_in, rng);
                memcpy(w.data.data() + r * row_bytes, row.data(), row_bytes);
                slm_dequantize_row(type, row.data(), w.deq.data() + r * n_in, n_in);
        }
        w.m = { type, n_in, n_out, (size_t)row_bytes, w.data.data() };
        return w;
}

// y = W x in double over the dequantized weights.
std::vector<float> exact_matmul(const Weights &w, const std::vector<float> &x, int n_tok)
{
        std::vector<float> y((size_t)(n_tok * w.m.n_out));
        for (int t = 0; t < n_tok; t++)
                for (int64_t r = 0; r < w.m.n_out; r++) {
                        double s = 0;
                        for (int64_t i = 0; i < w.m.n_in; i++)
                                s += (double)w.deq[r * w.m.n_in + i] * x[t * w.m.n_in + i];
                        y[t * w.m.n_out + r] = (float)s;
                }
        return y;
}

} // namespace

TEST_F(Vulkan, MatmulEveryTypeOddSizes)
{
        struct {
                SlmType type;
                double vs_cpu; // the CPU rounds activations to the weight type's dot type
        } types[] = {
                { SLM_TYPE_F32, 1e-10 }, { SLM_TYPE_F16, 1e-6 },  { SLM_TYPE_Q8_0, 1e-3 },
                { SLM_TYPE_Q4_0, 1e-3 }, { SLM_TYPE_Q4_K, 1e-3 }, { SLM_TYPE_Q5_K, 1e-3 },
                { SLM_TYPE_Q6_K, 1e-3 }, { SLM_TYPE_BF16, 1e-6 }, { SLM_TYPE_Q4_1, 1e-3 },
                { SLM_TYPE_Q5_0, 1e-3 },
        };
        // rows not a multiple of the workgroup; 1 token (matrix-vector), 13 (two tiles of 8, a
        // tail)
        struct {
                int64_t n_in, n_out;
                int n_tok;
        } shapes[] = { { 256, 37, 1 }, { 512, 100, 13 }, { 256, 3, 8 } };
        unsigned seed = 1;
        for (const auto &ty : types) {
                const SlmTypeTraits *tt = slm_type_traits(ty.type);
                for (const auto &sh : shapes) {
                        Weights w = make_weights(ty.type, sh.n_in, sh.n_out, seed++);
                        auto x = randn((size_t)(sh.n_in * sh.n_tok), seed++);
                        std::vector<float> y((size_t)(sh.n_out * sh.n_tok));
                        auto [c, g] = both({ x, y }, 1, [&](SlmBackend *b, auto &t) {
                                return slm_backend_matmul(b, &w.m, t[0], sh.n_tok, t[1]);
                        });
                        auto want = exact_matmul(w, x, sh.n_tok);
                        bool native = slm_backend_supports_type(vk, ty.type);
                        double e = slmtest::nmse(g.data(), want.data(), want.size());
                        // shaders multiply float activations: exact up to float sums
                        if (native) {
                                EXPECT_LT(e, 1e-10) << tt->name << " " << sh.n_out;
                        }
                        EXPECT_LT(slmtest::nmse(g.data(), c.data(), c.size()), ty.vs_cpu)
                            << tt->name << " " << sh.n_out << " x " << sh.n_tok;
                }
        }
        // the seven types the shaders read; the rest take the CPU fallback
        for (SlmType t : { SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_Q8_0, SLM_TYPE_Q4_0, SLM_TYPE_Q4_K,
                           SLM_TYPE_Q5_K, SLM_TYPE_Q6_K })
                EXPECT_TRUE(slm_backend_supports_type(vk, t)) << slm_type_traits(t)->name;
        EXPECT_FALSE(slm_backend_supports_type(vk, SLM_TYPE_BF16));
}

TEST_F(Vulkan, MatmulOddRowLengthsAndVocabSizedOutput)
{
        // F32/F16 rows need not be whole blocks; 32064 rows is Phi-3's vocabulary
        for (SlmType type : { SLM_TYPE_F32, SLM_TYPE_F16 }) {
                Weights w = make_weights(type, 97, 50, 11);
                auto x = randn(97 * 3, 12);
                std::vector<float> y(50 * 3);
                auto [c, g] = both({ x, y }, 1, [&](SlmBackend *b, auto &t) {
                        return slm_backend_matmul(b, &w.m, t[0], 3, t[1]);
                });
                auto want = exact_matmul(w, x, 3);
                EXPECT_LT(slmtest::nmse(g.data(), want.data(), want.size()), 1e-10);
        }
        Weights w = make_weights(SLM_TYPE_Q8_0, 64, 32064, 13);
        auto x = randn(64, 14);
        std::vector<float> y(32064);
        auto [c, g] = both({ x, y }, 1, [&](SlmBackend *b, auto &t) {
                return slm_backend_matmul(b, &w.m, t[0], 1, t[1]);
        });
        auto want = exact_matmul(w, x, 1);
        EXPECT_LT(slmtest::nmse(g.data(), want.data(), want.size()), 1e-10);
        EXPECT_LT(slmtest::nmse(g.data(), c.data(), c.size()), 1e-3);
}

TEST_F(Vulkan, WeightsLargerThanOneBufferAreSplit)
{
        // a 64 KiB buffer limit splits this 1.1 MB matrix into chunks of rows
        setenv("SLM_VULKAN_MAX_BUFFER", "65536", 1);
        SlmBackend *small = nullptr;
        ASSERT_EQ(slm_backend_new("vulkan", 1, &small), 0);
        unsetenv("SLM_VULKAN_MAX_BUFFER");
        Weights w = make_weights(SLM_TYPE_Q4_K, 512, 3000, 21);
        auto x = randn(512 * 2, 22);
        SlmTensor *tx = put(small, x), *ty = nullptr;
        ASSERT_EQ(slm_tensor_new(small, 3000 * 2, &ty), 0);
        ASSERT_EQ(slm_backend_matmul(small, &w.m, tx, 2, ty), 0);
        EXPECT_GT(slm_vk_weight_chunks(small, w.data.data()), 10);
        auto g = get(small, ty, 3000 * 2);
        auto want = exact_matmul(w, x, 2);
        EXPECT_LT(slmtest::nmse(g.data(), want.data(), want.size()), 1e-10);
        // rows from several chunks through the embedding lookup
        int32_t ids[] = { 2999, 0, 1500, 77 };
        SlmTensor *emb = nullptr;
        ASSERT_EQ(slm_tensor_new(small, 4 * 512, &emb), 0);
        ASSERT_EQ(slm_backend_get_rows(small, &w.m, ids, 4, 1.0f, emb), 0);
        auto rows = get(small, emb, 4 * 512);
        for (int i = 0; i < 4; i++)
                for (int j = 0; j < 512; j++)
                        ASSERT_EQ(rows[i * 512 + j], w.deq[(size_t)ids[i] * 512 + j]) << ids[i];
        slm_tensor_free(small, tx);
        slm_tensor_free(small, ty);
        slm_tensor_free(small, emb);
        slm_backend_free(small);
}

TEST_F(Vulkan, GetRowsEveryTypeWithScale)
{
        for (SlmType type : { SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_Q8_0, SLM_TYPE_Q4_0,
                              SLM_TYPE_Q4_K, SLM_TYPE_Q5_K, SLM_TYPE_Q6_K, SLM_TYPE_BF16 }) {
                Weights w = make_weights(type, 256, 41, 31);
                int32_t ids[] = { 40, 0, 17, 17, 3 };
                std::vector<float> y(5 * 256);
                auto [c, g] = both({ y }, 0, [&](SlmBackend *b, auto &t) {
                        return slm_backend_get_rows(b, &w.m, ids, 5, 1.5f, t[0]);
                });
                for (size_t i = 0; i < y.size(); i++)
                        ASSERT_EQ(g[i], c[i]) << slm_type_traits(type)->name << " at " << i;
        }
}

TEST_F(Vulkan, RmsNormRopeGluAddCopy)
{
        const int n = 300, rows = 7; // not multiples of the workgroup
        auto x = randn(n * rows, 41), wt = randn(n, 42);
        std::vector<float> y(n * rows);
        auto [c, g] = both({ x, y }, 1, [&](SlmBackend *b, auto &t) {
                return slm_backend_rmsnorm(b, t[0], wt.data(), n, rows, 1e-5f, t[1]);
        });
        EXPECT_LT(slmtest::nmse(g.data(), c.data(), c.size()), 1e-12);

        // both orderings, partial rotation, linear scaling, far positions, the rows of one
        // sequence of a batch (from row 2 on)
        for (SlmRopeMode mode : { SLM_ROPE_NORM, SLM_ROPE_NEOX })
                for (int n_rot : { 64, 32 })
                        for (int row0 : { 0, 2 }) {
                                SlmRopeParams p = { n_rot, 10000.0f, 0.25f, mode };
                                auto q = randn(5 * 3 * 64, 43);
                                auto [rc, rg] = both({ q }, 0, [&](SlmBackend *b, auto &t) {
                                        return slm_backend_rope(b, t[0], row0, 5 - row0, 3, 64,
                                                                1000, &p);
                                });
                                EXPECT_LT(slmtest::nmse(rg.data(), rc.data(), rc.size()), 1e-10)
                                    << mode << " " << n_rot << " from row " << row0;
                                if (row0) { // the rows before it are not touched
                                        EXPECT_TRUE(std::equal(q.begin(), q.begin() + row0 * 192,
                                                               rg.begin()));
                                }
                        }

        for (SlmAct act : { SLM_ACT_SILU, SLM_ACT_GELU }) {
                auto gate = randn(1000, 44, 3.0f), up = randn(1000, 45);
                gate[0] = -12.0f;
                gate[1] = 11.0f;
                std::vector<float> out(1000);
                auto [ac, ag] = both({ gate, up, out }, 2, [&](SlmBackend *b, auto &t) {
                        return slm_backend_glu(b, act, t[0], t[1], 1000, t[2]);
                });
                EXPECT_LT(slmtest::nmse(ag.data(), ac.data(), ac.size()), 1e-10) << act;
        }

        auto a = randn(n * rows, 46), d = randn(n * rows, 47), bias = randn(n, 48);
        for (int mode = 0; mode < 3; mode++) {
                auto [dc, dg] = both({ a, d }, 0, [&](SlmBackend *b, auto &t) {
                        return slm_backend_add(b, t[0], mode == 1 ? nullptr : t[1],
                                               mode == 0 ? nullptr : bias.data(),
                                               mode == 2 ? 0.5f : 1.0f, n, rows);
                });
                EXPECT_EQ(dg, dc) << "add mode " << mode;
        }

        // strided rows out of a fused row, and one long contiguous run at an offset
        auto src = randn(6 * 30, 49);
        std::vector<float> dst(200, 0.0f);
        auto [cc, cg] = both({ src, dst }, 1, [&](SlmBackend *b, auto &t) {
                int r = slm_backend_copy(b, t[0], 10, 30, t[1], 3, 12, 12, 6);
                return r ? r : slm_backend_copy(b, t[0], 0, 0, t[1], 100, 0, 90, 1);
        });
        EXPECT_EQ(cg, cc);
}

TEST_F(Vulkan, AttentionGqaMqaWindowAndLongContext)
{
        struct {
                int n_head, n_head_kv, head_dim, n_swa, pos0, n;
        } shapes[] = {
                { 4, 4, 64, 0, 9, 7 },      { 8, 2, 64, 0, 0, 13 },  { 6, 1, 80, 0, 30, 1 },
                { 4, 2, 64, 5, 20, 6 },     { 4, 2, 64, 0, 600, 3 }, // several 256-key chunks
                { 2, 1, 128, 300, 700, 2 },
        };
        // and each at row 3 of q and out, as one sequence of a batch
        for (const auto &s : shapes)
                for (int row0 : { 0, 3 }) {
                        SlmAttnParams p = { s.n_head, s.n_head_kv, s.head_dim, 0.125f, s.n_swa };
                        int n_kv = s.pos0 + s.n;
                        auto q = randn((size_t)((row0 + s.n) * s.n_head * s.head_dim), 51);
                        auto k = randn((size_t)(n_kv * s.n_head_kv * s.head_dim), 52);
                        auto v = randn((size_t)(n_kv * s.n_head_kv * s.head_dim), 53);
                        std::vector<float> out(q.size());
                        auto [c, g] = both({ q, k, v, out }, 3, [&](SlmBackend *b, auto &t) {
                                return slm_backend_attention(b, t[0], row0, t[1], t[2], s.n, s.pos0,
                                                             &p, t[3]);
                        });
                        EXPECT_LT(slmtest::nmse(g.data(), c.data(), c.size()), 1e-10)
                            << s.n_head << "/" << s.n_head_kv << " pos0 " << s.pos0 << " row "
                            << row0;
                        EXPECT_TRUE(std::all_of(g.begin(), g.begin() + row0 * s.n_head * s.head_dim,
                                                [](float x) { return x == 0.0f; }));
                }
}

// A half-precision KV cache on the device: rows copied in one at a time (odd head sizes put
// them at odd offsets, so a word is shared between two copies) and in one long run, then
// attention over it. It must equal attention on the CPU over an F32 cache holding the same
// halves. A Q8_0 cache is not held on the device.
TEST_F(Vulkan, AttentionOverF16Cache)
{
        struct {
                int n_head, n_head_kv, head_dim, pos0, n;
        } shapes[] = { { 4, 2, 64, 9, 7 }, { 3, 1, 5, 10, 3 }, { 2, 2, 7, 300, 2 } };
        for (const auto &s : shapes) {
                SlmAttnParams p = { s.n_head, s.n_head_kv, s.head_dim, 0.125f, 0 };
                size_t kvd = (size_t)s.n_head_kv * s.head_dim, n_kv = (size_t)(s.pos0 + s.n);
                auto q = randn((size_t)s.n * s.n_head * s.head_dim, 54);
                auto k = randn(n_kv * kvd, 55), v = randn(n_kv * kvd, 56);
                std::vector<float> kh(k.size()), vh(v.size());
                for (size_t i = 0; i < k.size(); i++) {
                        kh[i] = slm_fp16_to_fp32(slm_fp32_to_fp16(k[i]));
                        vh[i] = slm_fp16_to_fp32(slm_fp32_to_fp16(v[i]));
                }
                SlmTensor *tq = put(vk, q), *tk = put(vk, k), *tv = put(vk, v);
                SlmTensor *out = put(vk, std::vector<float>(q.size())), *ck = nullptr,
                          *cv = nullptr;
                ASSERT_EQ(slm_tensor_new_typed(vk, SLM_TYPE_F16, n_kv * kvd, &ck), 0);
                ASSERT_EQ(slm_tensor_new_typed(vk, SLM_TYPE_F16, n_kv * kvd, &cv), 0);
                ASSERT_EQ(slm_backend_copy(vk, tk, 0, 0, ck, 0, 0, s.pos0 * kvd, 1), 0);
                ASSERT_EQ(slm_backend_copy(vk, tv, 0, 0, cv, 0, 0, s.pos0 * kvd, 1), 0);
                for (size_t j = s.pos0; j < n_kv; j++) {
                        ASSERT_EQ(slm_backend_copy(vk, tk, j * kvd, 0, ck, j * kvd, 0, kvd, 1), 0);
                        ASSERT_EQ(slm_backend_copy(vk, tv, j * kvd, 0, cv, j * kvd, 0, kvd, 1), 0);
                }
                ASSERT_EQ(slm_backend_attention(vk, tq, 0, ck, cv, s.n, s.pos0, &p, out), 0);
                auto got = get(vk, out, q.size());
                for (SlmTensor *t : { tq, tk, tv, out, ck, cv })
                        slm_tensor_free(vk, t);

                // the CPU over F32 caches: of the same halves, and of the original values
                auto on_cpu = [&](const std::vector<float> &kk, const std::vector<float> &vv) {
                        SlmTensor *a = put(cpu, q), *b = put(cpu, kk), *c = put(cpu, vv);
                        SlmTensor *o = put(cpu, std::vector<float>(q.size()));
                        EXPECT_EQ(slm_backend_attention(cpu, a, 0, b, c, s.n, s.pos0, &p, o), 0);
                        auto r = get(cpu, o, q.size());
                        for (SlmTensor *t : { a, b, c, o })
                                slm_tensor_free(cpu, t);
                        return r;
                };
                auto want = on_cpu(kh, vh), exact = on_cpu(k, v);
                EXPECT_LT(slmtest::nmse(got.data(), want.data(), want.size()), 1e-10)
                    << s.n_head << "/" << s.n_head_kv << " x " << s.head_dim;
                EXPECT_GT(slmtest::nmse(got.data(), exact.data(), exact.size()), 1e-10);
        }
        SlmTensor *t = nullptr;
        EXPECT_EQ(slm_tensor_new_typed(vk, SLM_TYPE_Q8_0, 64, &t), -EOPNOTSUPP);
}

TEST_F(Vulkan, ArgmaxFirstOfTies)
{
        auto x = randn(32064, 61);
        x[31000] = 50.0f;
        x[31001] = 50.0f;
        x[5] = 49.0f;
        for (SlmBackend *b : { cpu, vk }) {
                SlmTensor *t = put(b, x);
                int32_t best = -1;
                ASSERT_EQ(slm_backend_argmax(b, t, 32064, &best), 0);
                EXPECT_EQ(best, 31000) << slm_backend_name(b);
                ASSERT_EQ(slm_backend_argmax(b, t, 31000, &best), 0); // only a prefix
                EXPECT_EQ(best, 5) << slm_backend_name(b);
                slm_tensor_free(b, t);
        }
}

TEST_F(Vulkan, SizesOutsideTensorsAreRefused)
{
        SlmTensor *t = nullptr;
        ASSERT_EQ(slm_tensor_new(vk, 100, &t), 0);
        float buf[200] = {};
        EXPECT_EQ(slm_tensor_write(vk, t, 50, buf, 51), -EINVAL);
        EXPECT_EQ(slm_tensor_read(vk, t, 101, buf, 0), -EINVAL);
        EXPECT_EQ(slm_backend_copy(vk, t, 0, 60, t, 0, 0, 50, 2), -EINVAL);
        EXPECT_EQ(slm_backend_rmsnorm(vk, t, buf, 50, 3, 1e-5f, t), -EINVAL);
        slm_tensor_free(vk, t);
        // a tensor larger than the device's largest buffer is refused cleanly
        EXPECT_EQ(slm_tensor_new(vk, (size_t)1 << 40, &t), -E2BIG);
}

namespace
{

// Greedy tokens chosen on the backend (argmax shader), prompt in one batch then one at a time.
std::vector<int32_t> greedy(SlmModel *m, SlmBackend *b, int n)
{
        SlmError err = {};
        SlmContext *ctx = nullptr;
        std::vector<int32_t> out;
        EXPECT_EQ(slm_context_new(m, b, 256, SLM_TYPE_F32, &ctx, &err), 0) << err.msg;
        if (!ctx)
                return out;
        std::vector<int32_t> prompt = { 1, 5, 9, 14, 20, 27, 35, 44, 54, 65, 77 };
        int32_t tok = -1;
        EXPECT_EQ(slm_context_eval_greedy(ctx, prompt.data(), (int)prompt.size(), &tok), 0);
        for (int i = 0; i < n && tok >= 0; i++) {
                out.push_back(tok);
                EXPECT_EQ(slm_context_eval_greedy(ctx, &tok, 1, &tok), 0);
        }
        slm_context_free(ctx);
        return out;
}

} // namespace

// Whole models of each architecture, greedy on the device, the same tokens as the CPU; under
// test-vulkan-validation this is the run that must not raise a single validation message.
TEST_F(Vulkan, WholeModelsGreedyLikeTheCpu)
{
        for (const char *name : { "stories260K-f32.gguf", "synthetic/tiny-llama-gqa-f32.gguf",
                                  "synthetic/tiny-phi3-f32.gguf", "synthetic/tiny-gemma-f32.gguf",
                                  "synthetic/tiny-qwen2-f32.gguf" }) {
                SlmError err = {};
                SlmModel *m = nullptr;
                ASSERT_EQ(slm_model_load(slmtest::shared(std::string("models/") + name).c_str(), &m,
                                         &err),
                          0)
                    << err.msg;
                auto want = greedy(m, cpu, 12), got = greedy(m, vk, 12);
                EXPECT_EQ(got.size(), 12u) << name;
                EXPECT_EQ(got, want) << name;
                slm_backend_release_weights(vk);
                slm_model_free(m);
        }
}

TEST(VulkanValidation, LayerReportsInvalidCalls)
{
        // the check the validation test relies on can fail: one deliberate misuse is reported
        if (!validating())
                GTEST_SKIP() << "runs as test-vulkan-validation";
        SlmBackend *vk = nullptr;
        ASSERT_EQ(slm_backend_new("vulkan", 1, &vk), 0);
        unsigned before = slm_vk_validation_message_count();
        slm_vk_debug_invalid_call(vk);
        unsigned after = slm_vk_validation_message_count();
        slm_backend_free(vk);
        EXPECT_GT(after, before);
        if (after > before)
                fprintf(stderr, "(the message above was expected)\n");
}

namespace
{

// The size of a SPIR-V module's push-constant block: the last member's offset plus 4 (every
// member of ours is a 32-bit scalar). 0 when the module has none.
size_t push_block_size(const uint32_t *code, size_t words)
{
        const uint32_t OpTypePointer = 32, OpVariable = 59, OpMemberDecorate = 72, PushConstant = 9,
                       Offset = 35;
        std::map<uint32_t, uint32_t> pointee, end_of;
        uint32_t var_type = 0;
        for (size_t i = 5; i < words;) {
                uint32_t n = code[i] >> 16, op = code[i] & 0xffff;
                if (n == 0 || i + n > words)
                        return 0;
                if (op == OpTypePointer && code[i + 2] == PushConstant)
                        pointee[code[i + 1]] = code[i + 3];
                if (op == OpVariable && code[i + 3] == PushConstant)
                        var_type = code[i + 1];
                if (op == OpMemberDecorate && code[i + 3] == Offset)
                        end_of[code[i + 1]] = std::max(end_of[code[i + 1]], code[i + 4] + 4);
                i += n;
        }
        if (!var_type || !pointee.count(var_type))
                return 0;
        return end_of[pointee[var_type]];
}

} // namespace

// The push constants each shader declares are the size of the C struct the host pushes.
TEST(VulkanShaders, PushConstantsMirrorTheCStructs)
{
        const std::pair<const char *, size_t> sizes[] = {
                { "matmul_", sizeof(VkPushMatmul) },
                { "get_rows_", sizeof(VkPushGetRows) },
                { "rmsnorm", sizeof(VkPushRmsnorm) },
                { "rope", sizeof(VkPushRope) },
                { "attention", sizeof(VkPushAttention) },
                { "glu", sizeof(VkPushGlu) },
                { "add", sizeof(VkPushAdd) },
                { "copy", sizeof(VkPushCopy) },
                { "argmax", sizeof(VkPushArgmax) },
        };
        ASSERT_GT(slm_vk_n_shaders, 20u);
        for (size_t i = 0; i < slm_vk_n_shaders; i++) {
                const SlmVkShader &sh = slm_vk_shaders[i];
                ASSERT_EQ(sh.code[0], 0x07230203u) << sh.name << " is not SPIR-V";
                size_t want = 0;
                for (const auto &s : sizes)
                        if (std::string(sh.name).rfind(s.first, 0) == 0)
                                want = s.second;
                ASSERT_NE(want, 0u) << sh.name << " has no push-constant struct in vk-push.h";
                EXPECT_EQ(push_block_size(sh.code, sh.size / 4), want) << sh.name;
        }
}
