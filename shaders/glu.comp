// SPDX-License-Identifier: MIT
// Gated activation y = act(gate) * up, element-wise (y may be gate).
// GELU is the tanh form, rounded through fp16 on the way in and out as the
// CPU's table does.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer G { float gate[]; };
layout(std430, binding = 1) readonly buffer U { float up[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
        uint n;
        uint gelu;
} p;

float fp16_round(float x)
{
        return unpackHalf2x16(packHalf2x16(vec2(x, 0.0))).x;
}

float gelu(float x)
{
        if (x <= -10.0)
                return 0.0;
        if (x >= 10.0)
                return x;
        float h = fp16_round(x);
        float a = clamp(0.79788456080286535588 * h * (1.0 + 0.044715 * h * h), -15.0, 15.0);
        return fp16_round(0.5 * h * (1.0 + tanh(a)));
}

void main()
{
        uint i = grid_index();
        if (i >= p.n)
                return;
        float g = gate[i];
        float a = p.gelu != 0 ? gelu(g) : g / (1.0 + exp(-g));
        y[i] = a * up[i];
}
