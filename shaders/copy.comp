// SPDX-License-Identifier: MIT
// Strided row copy: dst[dst_off + r * dst_stride + i] = src[src_off + r * src_stride + i].
// With DST_F16 the destination is a half-precision KV cache, two values per 32-bit word: each
// invocation writes one word, keeping a half that lies outside the copied rows.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer S { float src[]; };
#ifdef DST_F16
layout(std430, binding = 1) buffer D { uint dst[]; };
#else
layout(std430, binding = 1) writeonly buffer D { float dst[]; };
#endif

layout(push_constant) uniform Push {
        uint src_off;
        uint src_stride;
        uint dst_off;
        uint dst_stride;
        uint n;
        uint total; // n * rows
} p;

#ifdef DST_F16
// Destination element e (counted from dst_off) as (row, column); false where no row covers it.
bool place(uint e, out uint r, out uint c)
{
        uint rows = p.total / p.n;
        r = rows > 1 ? e / p.dst_stride : 0;
        c = rows > 1 ? e % p.dst_stride : e;
        return r < rows && c < p.n;
}

void main()
{
        uint i = grid_index();
        uint rows = p.total / p.n;
        uint last = p.dst_off + (rows - 1) * p.dst_stride + p.n - 1; // the last element written
        uint word = p.dst_off / 2 + i;
        if (word > last / 2)
                return;
        vec2 h = unpackHalf2x16(dst[word]);
        for (uint k = 0; k < 2; k++) {
                uint e = 2 * word + k, r, c;
                if (e >= p.dst_off && place(e - p.dst_off, r, c))
                        h[k] = src[p.src_off + r * p.src_stride + c];
        }
        dst[word] = packHalf2x16(h);
}
#else
void main()
{
        uint i = grid_index();
        if (i >= p.total)
                return;
        uint r = i / p.n, c = i % p.n;
        dst[p.dst_off + r * p.dst_stride + c] = src[p.src_off + r * p.src_stride + c];
}
#endif
