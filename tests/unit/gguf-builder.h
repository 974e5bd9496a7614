// SPDX-License-Identifier: MIT
// Writes GGUF bytes field by field, so tests can build valid files and break them on purpose.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace slmtest
{

struct GgufBuilder {
        std::vector<uint8_t> b;

        template <typename T> GgufBuilder &raw(T v)
        {
                uint8_t tmp[sizeof(T)];
                memcpy(tmp, &v, sizeof(T));
                b.insert(b.end(), tmp, tmp + sizeof(T));
                return *this;
        }
        GgufBuilder &u32(uint32_t v)
        {
                return raw(v);
        }
        GgufBuilder &u64(uint64_t v)
        {
                return raw(v);
        }
        GgufBuilder &str(const std::string &s)
        {
                u64(s.size());
                b.insert(b.end(), s.begin(), s.end());
                return *this;
        }
        GgufBuilder &header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3)
        {
                return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
        }
        GgufBuilder &kv_u32(const std::string &k, uint32_t v)
        {
                return str(k).u32(4).u32(v);
        }
        GgufBuilder &kv_str(const std::string &k, const std::string &v)
        {
                return str(k).u32(8).str(v);
        }
        GgufBuilder &kv_f32(const std::string &k, float v)
        {
                return str(k).u32(6).raw(v);
        }
        GgufBuilder &kv_bool(const std::string &k, bool v)
        {
                return str(k).u32(7).raw<uint8_t>(v);
        }
        GgufBuilder &kv_strs(const std::string &k, const std::vector<std::string> &v)
        {
                str(k).u32(9).u32(8).u64(v.size());
                for (const auto &s : v)
                        str(s);
                return *this;
        }
        template <typename T>
        GgufBuilder &kv_arr(const std::string &k, uint32_t type, const std::vector<T> &v)
        {
                str(k).u32(9).u32(type).u64(v.size());
                for (T x : v)
                        raw(x);
                return *this;
        }
        GgufBuilder &tensor_info(const std::string &name, std::vector<uint64_t> dims, uint32_t type,
                                 uint64_t offset)
        {
                str(name).u32((uint32_t)dims.size());
                for (uint64_t d : dims)
                        u64(d);
                return u32(type).u64(offset);
        }
        GgufBuilder &align(size_t a = 32)
        {
                while (b.size() % a)
                        b.push_back(0);
                return *this;
        }
        GgufBuilder &zeros(size_t n)
        {
                b.insert(b.end(), n, 0);
                return *this;
        }
        size_t size() const
        {
                return b.size();
        }
};

} // namespace slmtest
