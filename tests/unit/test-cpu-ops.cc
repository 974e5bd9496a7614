// SPDX-License-Identifier: MIT
// CPU backend ops against straightforward double-precision versions: RoPE (both orderings,
// linear scaling), attention (GQA, MQA, sliding window; F16 and Q8_0 caches), norms, gated
// activations, and matrix products that do not depend on the thread count; the fused ops
// against the plain ones, bit for bit.
#include <gtest/gtest.h>

#include <cerrno>
#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "cpu-kernels.h"
#include "slm-backend.h"
#include "test-util.h"

namespace
{

std::vector<float> randn(size_t n, unsigned seed)
{
        std::mt19937 rng(seed);
        std::normal_distribution<float> d(0.0f, 1.0f);
        std::vector<float> v(n);
        for (auto &x : v)
                x = d(rng);
        return v;
}

// A host vector seen as an F32 tensor.
SlmTensor f32(std::vector<float> &v, size_t n = SIZE_MAX)
{
        return { n == SIZE_MAX ? v.size() : n, v.data(), SLM_TYPE_F32 };
}

// x rounded through @type and back: what a KV cache of that type holds.
std::vector<float> round_trip(SlmType type, const std::vector<float> &x, size_t row)
{
        uint64_t bytes = 0;
        EXPECT_EQ(slm_type_row_bytes(type, row, &bytes), 0);
        std::vector<uint8_t> q(bytes);
        std::vector<float> out(x.size());
        for (size_t r = 0; r < x.size() / row; r++) {
                slm_quantize_row(type, x.data() + r * row, q.data(), (int64_t)row);
                slm_dequantize_row(type, q.data(), out.data() + r * row, (int64_t)row);
        }
        return out;
}

} // namespace

TEST(CpuOps, RopeRotatesTheRightPairs)
{
        const int hd = 8, n_rot = 4;
        SlmRopeParams norm = { n_rot, 10000.0f, 1.0f, SLM_ROPE_NORM };
        SlmRopeParams neox = { n_rot, 10000.0f, 1.0f, SLM_ROPE_NEOX };
        int32_t pos = 3;
        std::vector<float> x = randn(hd, 1), a = x, b = x;
        slm_cpu_rope(a.data(), 1, 1, hd, &pos, &norm);
        slm_cpu_rope(b.data(), 1, 1, hd, &pos, &neox);
        for (int i = 0; i < n_rot / 2; i++) {
                double theta = pos * std::pow(10000.0, -2.0 * i / n_rot);
                double c = std::cos(theta), s = std::sin(theta);
                // norm: (2i, 2i+1); neox: (i, i + n_rot/2)
                EXPECT_NEAR(a[2 * i], x[2 * i] * c - x[2 * i + 1] * s, 1e-5);
                EXPECT_NEAR(a[2 * i + 1], x[2 * i] * s + x[2 * i + 1] * c, 1e-5);
                EXPECT_NEAR(b[i], x[i] * c - x[i + n_rot / 2] * s, 1e-5);
                EXPECT_NEAR(b[i + n_rot / 2], x[i] * s + x[i + n_rot / 2] * c, 1e-5);
        }
        for (int i = n_rot; i < hd; i++) { // dims past n_rot are left alone
                EXPECT_EQ(a[i], x[i]);
                EXPECT_EQ(b[i], x[i]);
        }
}

TEST(CpuOps, RopeLinearScalingDividesPositions)
{
        const int hd = 64;
        SlmRopeParams scaled = { hd, 10000.0f, 0.25f, SLM_ROPE_NEOX };
        SlmRopeParams plain = { hd, 10000.0f, 1.0f, SLM_ROPE_NEOX };
        int32_t p4 = 40, p1 = 10;
        std::vector<float> x = randn(hd, 2), a = x, b = x;
        slm_cpu_rope(a.data(), 1, 1, hd, &p4, &scaled);
        slm_cpu_rope(b.data(), 1, 1, hd, &p1, &plain);
        for (int i = 0; i < hd; i++)
                EXPECT_NEAR(a[i], b[i], 1e-5);
}

// The SiLU-gated product of the kernel set in use (AVX2's own e^x where the CPU has it) against
// double precision: within a few ulps over the range where expf is a normal float, the same
// signs and sizes beyond it, NaN through, and a tail that is not a whole vector.
TEST(CpuOps, SiluGluWithinUlpsOfExpf)
{
        std::vector<float> g, u;
        for (int i = -4400; i <= 4400; i++) {
                g.push_back((float)i * 0.02f + 0.00731f);
                u.push_back(i % 3 == 0 ? -1.5f : 0.75f);
        }
        for (float v : { 0.0f, -0.0f, 1e-30f, -1e-30f, 87.9f, -87.9f, 95.0f, -95.0f, 1e30f, -1e30f,
                         INFINITY, NAN, 3.0f }) {
                g.push_back(v);
                u.push_back(2.0f);
        }
        std::vector<float> y(g.size());
        slm_cpu_silu_glu()(g.data(), u.data(), (int64_t)g.size(), y.data());
        for (size_t i = 0; i < g.size(); i++) {
                double want = (double)g[i] / (1.0 + std::exp(-(double)g[i])) * u[i];
                if (std::isnan(g[i])) {
                        EXPECT_TRUE(std::isnan(y[i]));
                } else if (g[i] < -88.0f) { // expf's denormal or infinite range: a tiny negative
                        EXPECT_LE(y[i] * u[i], 0.0f) << g[i];
                        EXPECT_LT(std::fabs(y[i]), 1e-30f) << g[i];
                } else if (std::isinf(g[i])) {
                        EXPECT_EQ(y[i], want) << g[i];
                } else {
                        EXPECT_NEAR(y[i], want, 4 * FLT_EPSILON * std::fabs(want) + 1e-37) << g[i];
                }
        }
}

TEST(CpuOps, RmsNormAndGatedActivations)
{
        std::vector<float> x = { 1.0f, -2.0f, 3.0f, -4.0f }, w = { 1.0f, 2.0f, 0.5f, 1.0f }, y(4);
        slm_cpu_rmsnorm(x.data(), w.data(), 4, 1, 0.0f, y.data());
        double rms = std::sqrt((1 + 4 + 9 + 16) / 4.0);
        for (int i = 0; i < 4; i++)
                EXPECT_NEAR(y[i], x[i] / rms * w[i], 1e-6);

        std::vector<float> g = { -3.0f, 0.0f, 0.5f, 12.0f }, u = { 2.0f, 2.0f, 2.0f, 2.0f };
        slm_cpu_glu(SLM_ACT_SILU, g.data(), u.data(), 4, y.data());
        for (int i = 0; i < 4; i++)
                EXPECT_NEAR(y[i], g[i] / (1 + std::exp(-g[i])) * 2.0, 1e-6);
        slm_cpu_glu(SLM_ACT_GELU, g.data(), u.data(), 4, y.data());
        for (int i = 0; i < 4; i++) {
                double v = g[i];
                double gelu = 0.5 * v * (1 + std::tanh(0.7978845608 * (v + 0.044715 * v * v * v)));
                EXPECT_NEAR(y[i], gelu * 2.0, 2e-3 * std::fabs(gelu) * 2 + 1e-6); // fp16 table
        }
}

namespace
{

// Causal attention in double, one query row per token.
std::vector<double> naive_attention(const std::vector<float> &q, const std::vector<float> &k,
                                    const std::vector<float> &v, int n_tokens, int pos0,
                                    const SlmAttnParams &p)
{
        int qd = p.n_head * p.head_dim, kvd = p.n_head_kv * p.head_dim;
        std::vector<double> out((size_t)n_tokens * qd);
        for (int t = 0; t < n_tokens; t++)
                for (int h = 0; h < p.n_head; h++) {
                        int kvh = h / (p.n_head / p.n_head_kv), last = pos0 + t;
                        int first = p.n_swa > 0 ? std::max(0, last - p.n_swa + 1) : 0;
                        std::vector<double> s;
                        double mx = -1e300, sum = 0;
                        for (int j = first; j <= last; j++) {
                                double d = 0;
                                for (int c = 0; c < p.head_dim; c++)
                                        d += (double)q[t * qd + h * p.head_dim + c] *
                                             k[j * kvd + kvh * p.head_dim + c];
                                s.push_back(d * p.scale);
                                mx = std::max(mx, s.back());
                        }
                        for (double &e : s)
                                sum += (e = std::exp(e - mx));
                        for (int c = 0; c < p.head_dim; c++) {
                                double acc = 0;
                                for (int j = first; j <= last; j++)
                                        acc +=
                                            s[j - first] / sum * v[j * kvd + kvh * p.head_dim + c];
                                out[t * qd + h * p.head_dim + c] = acc;
                        }
                }
        return out;
}

} // namespace

TEST(CpuOps, AttentionGqaMqaAndWindow)
{
        struct {
                int n_head, n_head_kv, n_swa;
        } shapes[] = { { 4, 4, 0 }, { 8, 2, 0 }, { 6, 1, 0 }, { 4, 2, 5 } };
        for (int threads : { 1, 3 }) {
                SlmBackend *b = nullptr;
                ASSERT_EQ(slm_backend_cpu_new(threads, &b), 0);
                for (const auto &sh : shapes) {
                        const int hd = 16, pos0 = 9, n = 7, n_kv = pos0 + n;
                        SlmAttnParams p = { sh.n_head, sh.n_head_kv, hd, 0.25f, sh.n_swa };
                        auto q = randn((size_t)n * sh.n_head * hd, 3);
                        auto k = randn((size_t)n_kv * sh.n_head_kv * hd, 4);
                        auto v = randn((size_t)n_kv * sh.n_head_kv * hd, 5);
                        std::vector<float> out(q.size());
                        SlmTensor tq = f32(q), tk = f32(k), tv = f32(v), tout = f32(out);
                        ASSERT_EQ(slm_backend_attention(b, &tq, 0, &tk, &tv, n, pos0, &p, &tout),
                                  0);
                        auto want = naive_attention(q, k, v, n, pos0, p);
                        for (size_t i = 0; i < out.size(); i++)
                                ASSERT_NEAR(out[i], want[i], 1e-5)
                                    << sh.n_head << "/" << sh.n_head_kv << " swa " << sh.n_swa;
                }
                slm_backend_free(b);
        }
}

// A batch's sequences in one attention op: each over its own cache, at its own rows and
// positions, exactly what it gets alone; a sequence that does not fit is refused.
TEST(CpuOps, AttentionOfSeveralSequencesInOneOp)
{
        struct {
                int64_t row0, n;
                int32_t pos0;
        } seqs[] = { { 0, 1, 5 }, { 1, 4, 0 }, { 5, 2, 12 }, { 7, 1, 0 } };
        const int hd = 16, rows = 8;
        for (int n_swa : { 0, 5 })
                for (int threads : { 1, 3 }) {
                        SlmBackend *b = nullptr;
                        ASSERT_EQ(slm_backend_cpu_new(threads, &b), 0);
                        SlmAttnParams p = { 8, 2, hd, 0.25f, n_swa };
                        size_t qd = (size_t)p.n_head * hd, kvd = (size_t)p.n_head_kv * hd;
                        auto q = randn(rows * qd, 21);
                        std::vector<std::vector<float>> k, v;
                        std::vector<SlmTensor> tk, tv;
                        for (size_t i = 0; i < 4; i++) {
                                size_t n_kv = (size_t)(seqs[i].pos0 + seqs[i].n);
                                k.push_back(randn(n_kv * kvd, 30 + (int)i));
                                v.push_back(randn(n_kv * kvd, 40 + (int)i));
                        }
                        for (size_t i = 0; i < 4; i++) {
                                tk.push_back(f32(k[i]));
                                tv.push_back(f32(v[i]));
                        }
                        std::vector<float> together(q.size()), alone(q.size());
                        SlmTensor tq = f32(q), to = f32(together), ta = f32(alone);
                        SlmAttnSeg segs[4];
                        for (int i = 0; i < 4; i++) {
                                segs[i] = { seqs[i].row0, seqs[i].n, seqs[i].pos0, &tk[i], &tv[i] };
                                ASSERT_EQ(slm_backend_attention(b, &tq, seqs[i].row0, &tk[i],
                                                                &tv[i], seqs[i].n, seqs[i].pos0, &p,
                                                                &ta),
                                          0);
                        }
                        ASSERT_EQ(slm_backend_attention_segs(b, &tq, segs, 4, &p, &to), 0);
                        EXPECT_EQ(together, alone) << "threads " << threads << " swa " << n_swa;
                        // the last sequence reaches past its cache, or past the rows of q
                        SlmAttnSeg bad[2] = { segs[0], segs[1] };
                        bad[1].pos0 = 1;
                        EXPECT_EQ(slm_backend_attention_segs(b, &tq, bad, 2, &p, &to), -EINVAL);
                        bad[1] = segs[3];
                        bad[1].row0 = rows;
                        EXPECT_EQ(slm_backend_attention_segs(b, &tq, bad, 2, &p, &to), -EINVAL);
                        EXPECT_EQ(slm_backend_attention_segs(b, &tq, segs, 0, &p, &to), -EINVAL);
                        slm_backend_free(b);
                }
}

// A KV cache in F16 or Q8_0: copy converts rows into it, and attention over it equals attention
// in double over what the cache holds, with q rounded to the keys' dot type as the kernels take it.
TEST(CpuOps, AttentionOverF16AndQ8_0Cache)
{
        const int hd = 64, pos0 = 21, n = 6, n_kv = pos0 + n;
        for (SlmType type : { SLM_TYPE_F16, SLM_TYPE_Q8_0 })
                for (int threads : { 1, 3 }) {
                        SlmBackend *b = nullptr;
                        ASSERT_EQ(slm_backend_cpu_new(threads, &b), 0);
                        SlmAttnParams p = { 8, 2, hd, 0.125f, 0 };
                        size_t kvd = (size_t)p.n_head_kv * hd;
                        auto q = randn((size_t)n * p.n_head * hd, 8);
                        auto k = randn(n_kv * kvd, 9), v = randn(n_kv * kvd, 10);
                        std::vector<float> out(q.size());
                        SlmTensor tq = f32(q), tk = f32(k), tv = f32(v), tout = f32(out);
                        SlmTensor *ck = nullptr, *cv = nullptr;
                        ASSERT_EQ(slm_tensor_new_typed(b, type, n_kv * kvd, &ck), 0);
                        ASSERT_EQ(slm_tensor_new_typed(b, type, n_kv * kvd, &cv), 0);
                        // the first pos0 rows in one copy, the rest one row at a time
                        ASSERT_EQ(slm_backend_copy(b, &tk, 0, 0, ck, 0, 0, pos0 * kvd, 1), 0);
                        ASSERT_EQ(slm_backend_copy(b, &tv, 0, 0, cv, 0, 0, pos0 * kvd, 1), 0);
                        for (int j = pos0; j < n_kv; j++) {
                                ASSERT_EQ(
                                    slm_backend_copy(b, &tk, j * kvd, 0, ck, j * kvd, 0, kvd, 1),
                                    0);
                                ASSERT_EQ(
                                    slm_backend_copy(b, &tv, j * kvd, 0, cv, j * kvd, 0, kvd, 1),
                                    0);
                        }
                        ASSERT_EQ(slm_backend_attention(b, &tq, 0, ck, cv, n, pos0, &p, &tout), 0);
                        SlmType qt = type == SLM_TYPE_F16 ? SLM_TYPE_F16 : SLM_TYPE_Q8_0;
                        auto want = naive_attention(round_trip(qt, q, hd), round_trip(type, k, kvd),
                                                    round_trip(type, v, kvd), n, pos0, p);
                        double worst = 0;
                        for (size_t i = 0; i < out.size(); i++)
                                worst = std::max(worst, std::fabs(out[i] - want[i]));
                        EXPECT_LT(worst, 2e-5) << slm_type_name(type) << ", threads " << threads;
                        // and it is not the F32 answer: the cache really holds the rounded rows
                        auto exact = naive_attention(q, k, v, n, pos0, p);
                        double moved = 0;
                        for (size_t i = 0; i < out.size(); i++)
                                moved = std::max(moved, std::fabs(out[i] - exact[i]));
                        EXPECT_GT(moved, 1e-4) << slm_type_name(type);

                        // rows that are not whole blocks, misplaced heads and F32-only ops refused
                        if (type == SLM_TYPE_Q8_0) {
                                EXPECT_EQ(slm_backend_copy(b, &tk, 0, 0, ck, 16, 0, kvd, 1),
                                          -EINVAL);
                                EXPECT_EQ(slm_backend_copy(b, &tk, 0, 0, ck, 0, 0, 48, 1), -EINVAL);
                                SlmAttnParams odd = { 8, 8, 16, 0.25f, 0 };
                                EXPECT_EQ(
                                    slm_backend_attention(b, &tq, 0, ck, cv, 1, 0, &odd, &tout),
                                    -EINVAL);
                                SlmTensor *bad = nullptr;
                                EXPECT_EQ(slm_tensor_new_typed(b, type, 40, &bad), -EINVAL);
                        }
                        EXPECT_EQ(slm_backend_add(b, ck, nullptr, nullptr, 2.0f, kvd, 1), -EINVAL);
                        EXPECT_EQ(slm_tensor_read(b, ck, 0, out.data(), 4), -EINVAL);
                        EXPECT_EQ(slm_backend_copy(b, ck, 0, 0, &tk, 0, 0, kvd, 1), -EINVAL);
                        slm_tensor_free(b, ck);
                        slm_tensor_free(b, cv);
                        slm_backend_free(b);
                }
        SlmBackend *b = nullptr;
        SlmTensor *t = nullptr;
        ASSERT_EQ(slm_backend_cpu_new(1, &b), 0);
        EXPECT_EQ(slm_tensor_new_typed(b, SLM_TYPE_Q4_0, 64, &t), -EINVAL);
        // a tensor of a type no cache holds, made by hand, is refused rather than divided by
        std::vector<float> x(64 * 4), out(64);
        SlmTensor tx = f32(x), tout = f32(out), bogus = { x.size(), x.data(), SLM_TYPE_Q4_0 };
        SlmAttnParams p = { 1, 1, 64, 0.125f, 0 };
        EXPECT_EQ(slm_backend_attention(b, &tx, 0, &bogus, &bogus, 1, 0, &p, &tout), -EINVAL);
        EXPECT_EQ(slm_backend_copy(b, &tx, 0, 0, &bogus, 0, 0, 64, 1), -EINVAL);
        slm_backend_free(b);
}

TEST(CpuOps, MatmulIndependentOfThreadsAndOddSizes)
{
        // 37 output rows (not a multiple of the row block or the thread count), 5 tokens
        const int n_in = 96, n_out = 37, n_tok = 5;
        std::vector<float> w = randn((size_t)n_in * n_out, 6), x = randn((size_t)n_in * n_tok, 7);
        std::vector<uint8_t> wq((size_t)n_out * (n_in / 32) * sizeof(SlmBlockQ8_0));
        for (int r = 0; r < n_out; r++)
                slm_quantize_row(SLM_TYPE_Q8_0, w.data() + r * n_in,
                                 wq.data() + r * (n_in / 32) * sizeof(SlmBlockQ8_0), n_in);
        SlmMatrix m = { SLM_TYPE_Q8_0, n_in, n_out, (n_in / 32) * sizeof(SlmBlockQ8_0), wq.data() };
        std::vector<float> y1((size_t)n_out * n_tok), y4(y1.size());
        SlmBackend *b1 = nullptr, *b4 = nullptr;
        ASSERT_EQ(slm_backend_cpu_new(1, &b1), 0);
        ASSERT_EQ(slm_backend_cpu_new(4, &b4), 0);
        SlmTensor tx = f32(x), ty1 = f32(y1), ty4 = f32(y4);
        ASSERT_EQ(slm_backend_matmul(b1, &m, &tx, n_tok, &ty1), 0);
        ASSERT_EQ(slm_backend_matmul(b4, &m, &tx, n_tok, &ty4), 0);
        EXPECT_EQ(y1, y4);
        for (int t = 0; t < n_tok; t++)
                for (int r = 0; r < n_out; r++) {
                        double d = 0;
                        for (int i = 0; i < n_in; i++)
                                d += (double)w[r * n_in + i] * x[t * n_in + i];
                        EXPECT_NEAR(y1[t * n_out + r], d, 0.05 * std::sqrt((double)n_in));
                }
        ASSERT_EQ(slm_backend_set_threads(b4, 2), 0);
        ASSERT_EQ(slm_backend_matmul(b4, &m, &tx, n_tok, &ty4), 0);
        EXPECT_EQ(y1, y4);
        // sizes that do not fit the tensors are refused before any work
        EXPECT_EQ(slm_backend_matmul(b4, &m, &tx, n_tok + 1, &ty4), -EINVAL);
        SlmTensor short_y = f32(y4, y4.size() - 1);
        EXPECT_EQ(slm_backend_matmul(b4, &m, &tx, n_tok, &short_y), -EINVAL);
        slm_backend_free(b1);
        slm_backend_free(b4);
}

namespace
{

// Random rows of @type as a matrix; the bytes stay in @store.
SlmMatrix random_matrix(SlmType type, int64_t n_in, int64_t n_out, std::mt19937 &rng,
                        std::vector<std::vector<uint8_t>> &store)
{
        std::vector<uint8_t> rows;
        for (int64_t r = 0; r < n_out; r++) {
                auto row = slmtest::random_row(type, n_in, rng);
                rows.insert(rows.end(), row.begin(), row.end());
        }
        store.push_back(std::move(rows));
        return { type, n_in, n_out, store.back().size() / (size_t)n_out, store.back().data() };
}

struct Fused {
        std::vector<SlmType> types;
        std::vector<int64_t> n_out;
        bool glu;
};

// The plain ops' answer on @b: rmsnorm, the matmuls, and for a gated op the activation.
std::vector<std::vector<float>> plain(SlmBackend *b, SlmTensor *x, const float *norm, int n_tok,
                                      const std::vector<SlmMatrix> &w, bool glu)
{
        int64_t n_in = w[0].n_in;
        std::vector<float> xn((size_t)n_tok * n_in);
        SlmTensor txn = f32(xn);
        EXPECT_EQ(slm_backend_rmsnorm(b, x, norm, n_in, n_tok, 1e-5f, &txn), 0);
        std::vector<std::vector<float>> y;
        for (const auto &m : w) {
                y.emplace_back((size_t)n_tok * m.n_out);
                SlmTensor ty = f32(y.back());
                EXPECT_EQ(slm_backend_matmul(b, &m, &txn, n_tok, &ty), 0);
        }
        if (glu) {
                SlmTensor g = f32(y[0]), u = f32(y[1]);
                EXPECT_EQ(slm_backend_glu(b, SLM_ACT_SILU, &g, &u, (int64_t)y[0].size(), &g), 0);
                y.pop_back();
        }
        return y;
}

// The fused op's answer on @b.
std::vector<std::vector<float>> fused(SlmBackend *b, SlmTensor *x, const float *norm, int n_tok,
                                      const std::vector<SlmMatrix> &w, bool glu)
{
        int64_t n_in = w[0].n_in;
        std::vector<float> xn((size_t)n_tok * n_in), up((size_t)n_tok * w.back().n_out);
        SlmTensor txn = f32(xn), tup = f32(up);
        SlmNormInput in = { x, norm, 1e-5f, n_tok };
        std::vector<std::vector<float>> y;
        std::vector<SlmTensor> ty;
        std::vector<SlmTensor *> pty;
        std::vector<const SlmMatrix *> pw;
        for (const auto &m : w) {
                y.emplace_back((size_t)n_tok * m.n_out, -1.0f);
                pw.push_back(&m);
        }
        if (glu) {
                y.pop_back();
                ty.push_back(f32(y[0]));
                EXPECT_EQ(slm_backend_norm_matmul_glu(b, &in, SLM_ACT_SILU, pw[0], pw[1], &ty[0],
                                                      &txn, &tup),
                          0);
                return y;
        }
        for (auto &v : y)
                ty.push_back(f32(v));
        for (auto &t : ty)
                pty.push_back(&t);
        EXPECT_EQ(slm_backend_norm_matmul(b, &in, (int)w.size(), pw.data(), pty.data(), &txn), 0);
        return y;
}

} // namespace

// The fused ops give the plain ops' bits: over every packed type and over rows the CPU runs one
// by one (F32, a row count that is no whole group, packing off), mixed in one op (Q4_K and Q6_K
// share their converted activations, Q4_0 and F16 do not, F32 reads the normalized floats), on
// 1 to 3 threads, for 1 to 70 tokens. Rows are dealt in fixed chunks, so the thread count does
// not change a bit either; a backend without fused ops (the wrappers' path) gives the same.
TEST(CpuOps, FusedOpsEqualThePlainOps)
{
        const int64_t n_in = 512;
        const Fused cases[] = {
                { { SLM_TYPE_Q4_K, SLM_TYPE_Q6_K, SLM_TYPE_Q4_0 }, { 200, 72, 8 }, false },
                { { SLM_TYPE_F16, SLM_TYPE_F32, SLM_TYPE_Q8_0 }, { 104, 100, 136 }, false },
                { { SLM_TYPE_Q5_K }, { 264 }, false },
                { { SLM_TYPE_Q4_K, SLM_TYPE_Q6_K }, { 200, 200 }, true },
                { { SLM_TYPE_F16, SLM_TYPE_F32 }, { 100, 100 }, true },
                { { SLM_TYPE_Q4_0, SLM_TYPE_Q8_0 }, { 136, 136 }, true },
        };
        std::mt19937 rng(21);
        std::vector<float> norm = randn((size_t)n_in, 22);
        for (bool pack : { true, false }) {
                if (!pack)
                        setenv("SLM_CPU_PACK", "0", 1);
                SlmBackend *b[3] = {};
                for (int i = 0; i < 3; i++)
                        ASSERT_EQ(slm_backend_cpu_new(i + 1, &b[i]), 0);
                unsetenv("SLM_CPU_PACK");
                for (const auto &c : cases) {
                        std::vector<std::vector<uint8_t>> store;
                        std::vector<SlmMatrix> w;
                        for (size_t i = 0; i < c.types.size(); i++)
                                w.push_back(
                                    random_matrix(c.types[i], n_in, c.n_out[i], rng, store));
                        for (int n_tok : { 1, 3, 9, 70 }) {
                                std::vector<float> x = randn((size_t)n_tok * n_in, n_tok);
                                SlmTensor tx = f32(x);
                                auto want = plain(b[0], &tx, norm.data(), n_tok, w, c.glu);
                                for (SlmBackend *be : b) {
                                        auto got = fused(be, &tx, norm.data(), n_tok, w, c.glu);
                                        EXPECT_EQ(got, want)
                                            << "pack " << pack << " n_tok " << n_tok << " "
                                            << c.types.size() << " matrices, glu " << c.glu;
                                }
                                // the wrappers' path, as for a backend with no fused ops
                                SlmBackendOps ops = *b[1]->ops;
                                const SlmBackendOps *own = b[1]->ops;
                                ops.norm_matmul = nullptr;
                                ops.norm_matmul_glu = nullptr;
                                b[1]->ops = &ops;
                                EXPECT_EQ(fused(b[1], &tx, norm.data(), n_tok, w, c.glu), want);
                                b[1]->ops = own;
                        }
                }
                for (SlmBackend *be : b)
                        slm_backend_free(be);
        }
}

TEST(CpuOps, FusedOpsRefuseWhatDoesNotFit)
{
        std::mt19937 rng(23);
        std::vector<std::vector<uint8_t>> store;
        SlmMatrix a = random_matrix(SLM_TYPE_Q8_0, 64, 16, rng, store);
        SlmMatrix c = random_matrix(SLM_TYPE_Q8_0, 96, 16, rng, store);
        SlmMatrix d = random_matrix(SLM_TYPE_Q8_0, 64, 24, rng, store);
        std::vector<float> x = randn(2 * 64, 24), norm = randn(64, 25), y(2 * 24), xn(2 * 64),
                           up(2 * 24);
        SlmTensor tx = f32(x), ty = f32(y), txn = f32(xn), tup = f32(up);
        SlmTensor short_y = f32(y, 2 * 16 - 1);
        SlmBackend *b = nullptr;
        ASSERT_EQ(slm_backend_cpu_new(2, &b), 0);
        SlmNormInput in = { &tx, norm.data(), 1e-5f, 2 };
        const SlmMatrix *four[4] = { &a, &a, &a, &a }, *mixed[2] = { &a, &c };
        SlmTensor *y4[4] = { &ty, &ty, &ty, &ty }, *onto_x[1] = { &tx }, *shorty[1] = { &short_y };
        EXPECT_EQ(slm_backend_norm_matmul(b, &in, 1, four, y4, &txn), 0);
        EXPECT_EQ(slm_backend_norm_matmul(b, &in, 0, four, y4, &txn), -EINVAL);
        EXPECT_EQ(slm_backend_norm_matmul(b, &in, 4, four, y4, &txn), -EINVAL);
        EXPECT_EQ(slm_backend_norm_matmul(b, &in, 2, mixed, y4, &txn), -EINVAL); // n_in differs
        EXPECT_EQ(slm_backend_norm_matmul(b, &in, 1, four, onto_x, &txn), -EINVAL);
        EXPECT_EQ(slm_backend_norm_matmul(b, &in, 1, four, shorty, &txn), -EINVAL);
        SlmNormInput no_norm = { &tx, nullptr, 1e-5f, 2 },
                     too_many = { &tx, norm.data(), 1e-5f, 3 };
        EXPECT_EQ(slm_backend_norm_matmul(b, &no_norm, 1, four, y4, &txn), -EINVAL);
        EXPECT_EQ(slm_backend_norm_matmul(b, &too_many, 1, four, y4, &txn), -EINVAL);
        EXPECT_EQ(slm_backend_norm_matmul_glu(b, &in, SLM_ACT_SILU, &a, &a, &ty, &txn, &tup), 0);
        EXPECT_EQ(slm_backend_norm_matmul_glu(b, &in, SLM_ACT_SILU, &a, &d, &ty, &txn, &tup),
                  -EINVAL); // gate and up of different shapes
        EXPECT_EQ(slm_backend_norm_matmul_glu(b, &in, SLM_ACT_SILU, &a, &c, &ty, &txn, &tup),
                  -EINVAL);
        EXPECT_EQ(slm_backend_norm_matmul_glu(b, &in, SLM_ACT_SILU, &a, &a, &tx, &txn, &tup),
                  -EINVAL);
        slm_backend_free(b);
}

// A fused op's matrices packed on first use while the store of packed copies grows: the store's
// table moves when it does (at its 32nd copy, here in the middle of an op), and the op must not
// keep pointers into it. Under ASan a kept pointer is a use after free; the answer must also
// stay the plain ops'.
TEST(CpuOps, FusedOpsWhileTheStoreGrows)
{
        const int64_t n_in = 64;
        const int n_tok = 2;
        std::mt19937 rng(27);
        std::vector<std::vector<uint8_t>> store;
        std::vector<SlmMatrix> w;
        for (int i = 0; i < 60; i++)
                w.push_back(random_matrix(SLM_TYPE_Q4_0, n_in, 16, rng, store));
        std::vector<float> x = randn((size_t)n_tok * n_in, 28), norm = randn((size_t)n_in, 29);
        SlmTensor tx = f32(x);
        SlmBackend *fresh = nullptr, *seasoned = nullptr;
        ASSERT_EQ(slm_backend_cpu_new(2, &fresh), 0);
        ASSERT_EQ(slm_backend_cpu_new(2, &seasoned), 0);
        for (size_t i = 0; i + 3 <= w.size(); i += 3) {
                std::vector<SlmMatrix> three(w.begin() + (long)i, w.begin() + (long)i + 3);
                // the seasoned backend packs them through the plain ops first
                auto want = plain(seasoned, &tx, norm.data(), n_tok, three, false);
                EXPECT_EQ(fused(fresh, &tx, norm.data(), n_tok, three, false), want) << i;
        }
        EXPECT_EQ(slm_backend_cpu_packed_bytes(fresh), slm_backend_cpu_packed_bytes(seasoned));
        EXPECT_GT(slm_backend_cpu_packed_bytes(fresh), 0u);
        slm_backend_free(fresh);
        slm_backend_free(seasoned);
}
