// SPDX-License-Identifier: MIT
// Helpers shared by the unit tests: where ../shared/ is, JSON and hex.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

} // namespace slmtest
