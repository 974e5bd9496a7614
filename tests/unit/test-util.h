// SPDX-License-Identifier: MIT
// Helpers shared by the unit tests: where ../shared/ is, JSON and hex.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slm-types.h"

namespace slmtest
{

inline std::string shared(const std::string &rel)
{
        const char *dir = getenv("SLM_SHARED_DIR");
        return std::string(dir ? dir : "../shared") + "/" + rel;
}

inline std::string read_file(const std::string &path)
{
        std::ifstream f(path, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
}

// The backend the engine tests run on: SLM_TEST_BACKEND, or the CPU.
inline const char *backend_name()
{
        const char *b = getenv("SLM_TEST_BACKEND");
        return b && *b ? b : "cpu";
}

inline nlohmann::json read_json(const std::string &path)
{
        return nlohmann::json::parse(read_file(path));
}

inline std::string from_hex(const std::string &hex)
{
        std::string out;
        for (size_t i = 0; i + 1 < hex.size(); i += 2)
                out.push_back((char)std::stoi(hex.substr(i, 2), nullptr, 16));
        return out;
}

inline std::string to_hex(const std::string &s)
{
        static const char *d = "0123456789abcdef";
        std::string out;
        for (unsigned char c : s) {
                out.push_back(d[c >> 4]);
                out.push_back(d[c & 15]);
        }
        return out;
}

inline std::vector<float> read_f32(const std::string &path)
{
        std::string b = read_file(path);
        std::vector<float> v(b.size() / 4);
        memcpy(v.data(), b.data(), v.size() * 4);
        return v;
}

// Normalized mean squared error of a against the reference b.
inline double nmse(const float *a, const float *b, size_t n)
{
        double num = 0, den = 0;
        for (size_t i = 0; i < n; i++) {
                num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
                den += (double)b[i] * b[i];
        }
        return den > 0 ? num / den : num;
}

// Random blocks with sane scales: random bytes, then every fp16 scale set to a small value.
inline std::vector<uint8_t> random_row(SlmType type, int64_t n, std::mt19937 &rng)
{
        const SlmTypeTraits *t = slm_type_traits(type);
        size_t nb = (size_t)(n / t->block_size);
        std::vector<uint8_t> row(nb * t->block_bytes);
        std::uniform_int_distribution<int> byte(0, 255);
        std::uniform_real_distribution<float> scale(0.001f, 0.05f), val(-1.0f, 1.0f);
        for (auto &b : row)
                b = (uint8_t)byte(rng);
        auto set = [&](size_t block, size_t off, float v) {
                uint16_t h = slm_fp32_to_fp16(v);
                memcpy(row.data() + block * t->block_bytes + off, &h, 2);
        };
        for (size_t i = 0; i < nb; i++) {
                switch (type) {
                case SLM_TYPE_F32:
                        for (size_t k = 0; k < nb; k++) {
                                float v = val(rng);
                                memcpy(row.data() + 4 * k, &v, 4);
                        }
                        return row;
                case SLM_TYPE_F16:
                case SLM_TYPE_BF16:
                        for (size_t k = 0; k < nb; k++) {
                                float v = val(rng);
                                uint16_t h = type == SLM_TYPE_F16 ? slm_fp32_to_fp16(v)
                                                                  : slm_fp32_to_bf16(v);
                                memcpy(row.data() + 2 * k, &h, 2);
                        }
                        return row;
                case SLM_TYPE_Q4_1:
                case SLM_TYPE_Q5_1:
                case SLM_TYPE_Q4_K:
                case SLM_TYPE_Q5_K:
                        set(i, 0, scale(rng));
                        set(i, 2, -scale(rng));
                        break;
                case SLM_TYPE_Q6_K:
                        set(i, offsetof(SlmBlockQ6_K, d), scale(rng));
                        break;
                default:
                        set(i, 0, scale(rng));
                        break;
                }
        }
        return row;
}

} // namespace slmtest
