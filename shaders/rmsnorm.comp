// SPDX-License-Identifier: MIT
// y[r] = x[r] / rms(x[r]) * w, one workgroup per row.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
        uint n;
        float eps;
} p;

void main()
{
        uint base = gl_WorkGroupID.x * p.n, lid = gl_LocalInvocationID.x;
        float s = 0.0;

        for (uint i = lid; i < p.n; i += WG)
                s += x[base + i] * x[base + i];
        float mean = wg_sum(s) / float(p.n);
        float scale = 1.0 / sqrt(mean + p.eps);
        for (uint i = lid; i < p.n; i += WG)
                y[base + i] = (x[base + i] * scale) * w[i];
}
