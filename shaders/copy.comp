// SPDX-License-Identifier: MIT
// Strided row copy: dst[dst_off + r * dst_stride + i] = src[src_off + r * src_stride + i].
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer S { float src[]; };
layout(std430, binding = 1) writeonly buffer D { float dst[]; };

layout(push_constant) uniform Push {
        uint src_off;
        uint src_stride;
        uint dst_off;
        uint dst_stride;
        uint n;
        uint total;
} p;

void main()
{
        uint i = grid_index();
        if (i >= p.total)
                return;
        uint r = i / p.n, c = i % p.n;
        dst[p.dst_off + r * p.dst_stride + c] = src[p.src_off + r * p.src_stride + c];
}
