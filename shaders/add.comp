// SPDX-License-Identifier: MIT
// x = x * scale + y + bias, element-wise over rows of n; y and bias optional.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer B { float bias[]; };

layout(push_constant) uniform Push {
        uint n;
        uint total;
        float scale;
        uint has_y;
        uint has_bias;
} p;

void main()
{
        uint i = grid_index();
        if (i >= p.total)
                return;
        float v = x[i] * p.scale;
        if (p.has_y != 0)
                v += y[i];
        if (p.has_bias != 0)
                v += bias[i % p.n];
        x[i] = v;
}
