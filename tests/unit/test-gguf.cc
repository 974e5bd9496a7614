// SPDX-License-Identifier: MIT
// The GGUF reader: every value type, nested arrays, tensors; and a table of malformed files,
// each answered by its own error.
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <functional>

#include "gguf-builder.h"
#include "gguf.h"
#include "model.h"
#include "slm-types.h"
#include "test-util.h"

using slmtest::GgufBuilder;

namespace
{

struct Parsed {
        SlmGguf *g = nullptr;
        int r = 0;
        SlmError err = {};
        explicit Parsed(const std::vector<uint8_t> &bytes)
        {
                r = slm_gguf_open_buffer(bytes.data(), bytes.size(), &g, &err);
        }
        ~Parsed()
        {
                slm_gguf_free(g);
        }
};

// A valid version-3 file with every value type, a nested array, and two tensors.
GgufBuilder valid_file(uint32_t version = 3)
{
        GgufBuilder b;
        b.header(2, 16, version);
        b.str("t.u8").u32(0).raw<uint8_t>(200);
        b.str("t.i8").u32(1).raw<int8_t>(-100);
        b.str("t.u16").u32(2).raw<uint16_t>(60000);
        b.str("t.i16").u32(3).raw<int16_t>(-30000);
        b.kv_u32("t.u32", 4000000000u);
        b.str("t.i32").u32(5).raw<int32_t>(-2000000000);
        b.kv_f32("t.f32", 1.5f);
        b.kv_bool("t.bool", true);
        b.kv_str("t.str", "héllo");
        b.str("t.u64").u32(10).raw<uint64_t>(1ull << 40);
        b.str("t.i64").u32(11).raw<int64_t>(-(1ll << 40));
        b.str("t.f64").u32(12).raw<double>(0.25);
        b.kv_arr<float>("t.arr_f32", 6, { 1.0f, 2.0f, 3.0f });
        b.kv_strs("t.arr_str", { "a", "", "ccc" });
        // array of two arrays of i32
        b.str("t.nested").u32(9).u32(9).u64(2);
        b.u32(5).u64(2).raw<int32_t>(7).raw<int32_t>(8);
        b.u32(5).u64(1).raw<int32_t>(9);
        b.kv_u32("general.alignment", 64);
        b.tensor_info("w", { 32, 2 }, SLM_TYPE_Q8_0, 0);
        b.tensor_info("v", { 4 }, SLM_TYPE_F32, 128);
        b.align(64);
        b.zeros(128 + 16);
        return b;
}

} // namespace

TEST(Gguf, ParsesEveryValueType)
{
        for (uint32_t version : { 2u, 3u }) {
                GgufBuilder b = valid_file(version);
                Parsed p(b.b);
                ASSERT_EQ(p.r, 0) << p.err.msg;
                const SlmGguf *g = p.g;
                EXPECT_EQ(g->version, version);
                EXPECT_EQ(g->n_kv, 16u);
                EXPECT_EQ(g->alignment, 64u);
                EXPECT_EQ(slm_gguf_get(g, "t.u8")->u, 200u);
                EXPECT_EQ(slm_gguf_get(g, "t.i8")->i, -100);
                EXPECT_EQ(slm_gguf_get(g, "t.u16")->u, 60000u);
                EXPECT_EQ(slm_gguf_get(g, "t.i16")->i, -30000);
                uint32_t u32 = 0;
                EXPECT_EQ(slm_gguf_get_u32(g, "t.u32", &u32), 0);
                EXPECT_EQ(u32, 4000000000u);
                EXPECT_EQ(slm_gguf_get(g, "t.i32")->i, -2000000000);
                EXPECT_EQ(slm_gguf_get_u32(g, "t.i32", &u32), -EINVAL); // negative: no u32
                float f = 0;
                EXPECT_EQ(slm_gguf_get_f32(g, "t.f32", &f), 0);
                EXPECT_EQ(f, 1.5f);
                bool bo = false;
                EXPECT_EQ(slm_gguf_get_bool(g, "t.bool", &bo), 0);
                EXPECT_TRUE(bo);
                SlmGgufStr s;
                EXPECT_EQ(slm_gguf_get_str(g, "t.str", &s), 0);
                EXPECT_TRUE(slm_gguf_str_eq(s, "héllo"));
                EXPECT_EQ(slm_gguf_get(g, "t.u64")->u, 1ull << 40);
                EXPECT_EQ(slm_gguf_get(g, "t.i64")->i, -(1ll << 40));
                EXPECT_EQ(slm_gguf_get(g, "t.f64")->f, 0.25);
                EXPECT_EQ(slm_gguf_get_u32(g, "t.u64", &u32), -EINVAL); // does not fit
                EXPECT_EQ(slm_gguf_get_u32(g, "absent", &u32), -ENOENT);

                const SlmGgufValue *arr;
                ASSERT_EQ(slm_gguf_get_arr(g, "t.arr_f32", SLM_GGUF_F32, &arr), 0);
                ASSERT_EQ(arr->arr.n, 3u);
                EXPECT_EQ(slm_gguf_arr_f32(arr, 2), 3.0f);
                ASSERT_EQ(slm_gguf_get_arr(g, "t.arr_str", SLM_GGUF_STRING, &arr), 0);
                ASSERT_EQ(arr->arr.n, 3u);
                EXPECT_TRUE(slm_gguf_str_eq(arr->arr.strs[1], ""));
                EXPECT_TRUE(slm_gguf_str_eq(arr->arr.strs[2], "ccc"));
                ASSERT_EQ(slm_gguf_get_arr(g, "t.nested", SLM_GGUF_ARRAY, &arr), 0);
                ASSERT_EQ(arr->arr.n, 2u);
                EXPECT_EQ(arr->arr.items[0].arr.n, 2u);
                EXPECT_EQ(slm_gguf_arr_i64(&arr->arr.items[0], 1), 8);
                EXPECT_EQ(slm_gguf_arr_i64(&arr->arr.items[1], 0), 9);

                ASSERT_EQ(g->n_tensors, 2u);
                const SlmGgufTensor *w = slm_gguf_tensor(g, "w");
                ASSERT_NE(w, nullptr);
                EXPECT_EQ(w->n_elements, 64u);
                EXPECT_EQ(w->n_bytes, 2u * sizeof(SlmBlockQ8_0));
                EXPECT_EQ((const uint8_t *)w->data - g->map, (ptrdiff_t)g->data_offset);
                EXPECT_EQ(g->data_offset % 64, 0u);
                const SlmGgufTensor *v = slm_gguf_tensor(g, "v");
                ASSERT_NE(v, nullptr);
                EXPECT_EQ(v->offset, 128u);
        }
}

TEST(Gguf, ReadsRealModelFromFile)
{
        SlmGguf *g = nullptr;
        SlmError err = {};
        ASSERT_EQ(slm_gguf_open(slmtest::shared("models/stories260K-q8_0.gguf").c_str(), &g, &err),
                  0)
            << err.msg;
        EXPECT_EQ(g->n_tensors, 48u);
        const SlmGgufTensor *t = slm_gguf_tensor(g, "blk.0.ffn_down.weight");
        ASSERT_NE(t, nullptr);
        EXPECT_EQ(t->type, (uint32_t)SLM_TYPE_F16); // 172 is not a multiple of 32
        slm_gguf_free(g);
}

// Every prefix of a valid file is refused, with a message about truncation.
TEST(Gguf, TruncatedAtEveryByte)
{
        GgufBuilder b = valid_file();
        // the last byte of the file is the end of tensor "v": every shorter prefix is short
        for (size_t len = 0; len < b.size() - 15; len++) {
                std::vector<uint8_t> cut(b.b.begin(), b.b.begin() + (long)len);
                Parsed p(cut);
                ASSERT_LT(p.r, 0) << "prefix of " << len << " bytes was accepted";
                std::string msg = p.err.msg;
                EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                            msg.find("past the end") != std::string::npos ||
                            msg.find("cannot fit") != std::string::npos)
                    << len << ": " << msg;
        }
}

struct BadCase {
        const char *name;
        std::function<void(GgufBuilder &)> build;
        int err;
        const char *msg; // a part of the message
};

TEST(Gguf, MalformedFilesGetSpecificErrors)
{
        const std::vector<BadCase> cases = {
                { "empty", [](GgufBuilder &) {}, -EBADMSG, "truncated in header" },
                { "bad magic", [](GgufBuilder &b) { b.u32(0x46554746).u32(3).u64(0).u64(0); },
                  -EBADMSG, "bad magic" },
                { "version 1", [](GgufBuilder &b) { b.header(0, 0, 1); }, -EPROTONOSUPPORT,
                  "version 1" },
                { "version 4", [](GgufBuilder &b) { b.header(0, 0, 4); }, -EPROTONOSUPPORT,
                  "version 4" },
                { "absurd kv count", [](GgufBuilder &b) { b.header(0, 1ull << 60).zeros(64); },
                  -EBADMSG, "key/value count" },
                { "absurd tensor count", [](GgufBuilder &b) { b.header(1ull << 60, 0).zeros(64); },
                  -EBADMSG, "tensor count" },
                { "key length past the end",
                  [](GgufBuilder &b) { b.header(0, 1).u64(1ull << 62).zeros(32); }, -EBADMSG,
                  "runs past the end" },
                { "empty key", [](GgufBuilder &b) { b.header(0, 1).str("").u32(4).u32(1); },
                  -EINVAL, "empty key" },
                { "unknown value type",
                  [](GgufBuilder &b) { b.header(0, 1).str("k").u32(13).u32(1); }, -EPROTO,
                  "unknown value type 13" },
                { "absurd array count",
                  [](GgufBuilder &b) {
                          b.header(0, 1).str("k").u32(9).u32(4).u64(1ull << 61).zeros(16);
                  },
                  -EBADMSG, "array of" },
                { "absurd string array",
                  [](GgufBuilder &b) {
                          b.header(0, 1).str("k").u32(9).u32(8).u64(1ull << 40).zeros(16);
                  },
                  -EBADMSG, "strings runs past the end" },
                { "unknown array element type",
                  [](GgufBuilder &b) { b.header(0, 1).str("k").u32(9).u32(77).u64(1); }, -EPROTO,
                  "unknown array element type 77" },
                { "arrays nested too deep",
                  [](GgufBuilder &b) {
                          b.header(0, 1).str("k").u32(9);
                          for (int i = 0; i < 8; i++)
                                  b.u32(9).u64(1);
                          b.u32(4).u64(0);
                  },
                  -ELOOP, "nested deeper" },
                { "bool not 0 or 1",
                  [](GgufBuilder &b) { b.header(0, 1).str("k").u32(7).raw<uint8_t>(2); }, -EINVAL,
                  "bool value 2" },
                { "duplicate key",
                  [](GgufBuilder &b) { b.header(0, 2).kv_u32("k", 1).kv_u32("k", 2); }, -EEXIST,
                  "duplicate key 'k'" },
                { "alignment not a power of two",
                  [](GgufBuilder &b) { b.header(0, 1).kv_u32("general.alignment", 48); }, -EINVAL,
                  "general.alignment" },
                { "alignment of the wrong type",
                  [](GgufBuilder &b) { b.header(0, 1).kv_f32("general.alignment", 32.0f); },
                  -EINVAL, "general.alignment" },
                { "five dimensions",
                  [](GgufBuilder &b) {
                          b.header(1, 0)
                              .tensor_info("t", { 1, 1, 1, 1, 1 }, 0, 0)
                              .align()
                              .zeros(32);
                  },
                  -EINVAL, "5 dimensions" },
                { "zero dimension",
                  [](GgufBuilder &b) {
                          b.header(1, 0).tensor_info("t", { 4, 0 }, 0, 0).align().zeros(32);
                  },
                  -EINVAL, "dimension 1 is 0" },
                { "dims whose product overflows",
                  [](GgufBuilder &b) {
                          b.header(1, 0)
                              .tensor_info("t", { 1ull << 32, 1ull << 32 }, 0, 0)
                              .align()
                              .zeros(32);
                  },
                  -EOVERFLOW, "element count overflows" },
                { "byte size overflows",
                  [](GgufBuilder &b) {
                          b.header(1, 0)
                              .tensor_info("t", { 1ull << 31, 1ull << 31 }, 0, 0)
                              .align()
                              .zeros(32);
                  },
                  -EOVERFLOW, "byte size overflows" },
                { "unknown tensor type",
                  [](GgufBuilder &b) {
                          b.header(1, 0).tensor_info("t", { 4 }, 99, 0).align().zeros(32);
                  },
                  -ENOTSUP, "unknown tensor type 99" },
                { "activation-only type as a tensor",
                  [](GgufBuilder &b) {
                          b.header(1, 0)
                              .tensor_info("t", { 256 }, SLM_TYPE_Q8_K, 0)
                              .align()
                              .zeros(512);
                  },
                  -ENOTSUP, "unknown tensor type 15" },
                { "row not a multiple of the block",
                  [](GgufBuilder &b) {
                          b.header(1, 0)
                              .tensor_info("t", { 33 }, SLM_TYPE_Q4_0, 0)
                              .align()
                              .zeros(64);
                  },
                  -EINVAL, "not a multiple of the Q4_0 block size" },
                { "misaligned data",
                  [](GgufBuilder &b) {
                          b.header(1, 0).tensor_info("t", { 4 }, 0, 1).align().zeros(64);
                  },
                  -EINVAL, "not aligned" },
                { "offset past the end",
                  [](GgufBuilder &b) {
                          b.header(1, 0).tensor_info("t", { 4 }, 0, 1024).align().zeros(64);
                  },
                  -EBADMSG, "runs past the end of the file" },
                { "data cut short",
                  [](GgufBuilder &b) {
                          b.header(1, 0).tensor_info("t", { 64 }, 0, 0).align().zeros(100);
                  },
                  -EBADMSG, "runs past the end of the file" },
                { "overlapping tensors",
                  [](GgufBuilder &b) {
                          b.header(2, 0)
                              .tensor_info("a", { 16 }, 0, 0)
                              .tensor_info("b", { 16 }, 0, 32);
                          b.align().zeros(128);
                  },
                  -EBADMSG, "overlap" },
                { "duplicate tensor name",
                  [](GgufBuilder &b) {
                          b.header(2, 0)
                              .tensor_info("a", { 8 }, 0, 0)
                              .tensor_info("a", { 8 }, 0, 32);
                          b.align().zeros(64);
                  },
                  -EEXIST, "duplicate tensor name 'a'" },
                { "empty tensor name",
                  [](GgufBuilder &b) {
                          b.header(1, 0).tensor_info("", { 8 }, 0, 0).align().zeros(32);
                  },
                  -EINVAL, "empty tensor name" },
                { "tensor name too long",
                  [](GgufBuilder &b) {
                          b.header(1, 0)
                              .tensor_info(std::string(300, 'x'), { 8 }, 0, 0)
                              .align()
                              .zeros(32);
                  },
                  -ERANGE, "exceeds" },
        };
        for (const auto &c : cases) {
                GgufBuilder b;
                c.build(b);
                Parsed p(b.b);
                EXPECT_EQ(p.r, c.err) << c.name << ": " << p.err.msg;
                EXPECT_NE(std::string(p.err.msg).find(c.msg), std::string::npos)
                    << c.name << ": got \"" << p.err.msg << "\"";
        }
}

TEST(Gguf, MissingFileAndNonRegularFile)
{
        SlmGguf *g = nullptr;
        SlmError err = {};
        EXPECT_EQ(slm_gguf_open("/nonexistent/model.gguf", &g, &err), -ENOENT);
        EXPECT_NE(std::string(err.msg).find("cannot open"), std::string::npos);
        EXPECT_EQ(slm_gguf_open("/dev/null", &g, &err), -EINVAL);
        EXPECT_NE(std::string(err.msg).find("not a regular file"), std::string::npos);
        EXPECT_EQ(slm_gguf_open("/tmp", &g, &err), -EINVAL);
}

// A valid GGUF that is not a model we can run: the loader names the problem.
TEST(Gguf, ModelLoaderRefusesUnknownArchitecture)
{
        SlmModel *m = nullptr;
        SlmError err = {};
        // the gpt-2 vocabulary file says general.architecture = gpt2
        int r =
            slm_model_load(slmtest::shared("models/vocab/ggml-vocab-gpt-2.gguf").c_str(), &m, &err);
        EXPECT_EQ(r, -ENOTSUP);
        EXPECT_NE(std::string(err.msg).find("unsupported architecture 'gpt2'"), std::string::npos)
            << err.msg;
        // a llama vocabulary without tensors: the first missing tensor is named
        r = slm_model_load(slmtest::shared("models/vocab/ggml-vocab-llama-spm.gguf").c_str(), &m,
                           &err);
        EXPECT_EQ(r, -EINVAL);
        EXPECT_NE(std::string(err.msg).find("tensor 'token_embd.weight' is missing"),
                  std::string::npos)
            << err.msg;
}
