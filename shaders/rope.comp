// SPDX-License-Identifier: MIT
// Rotary position embedding in place, one invocation per rotated pair of rows row0...
// The angle is advanced by repeated multiplication, as the CPU does, so
// both round alike.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) buffer X { float x[]; };

layout(push_constant) uniform Push {
        uint n_tokens;
        uint n_head;
        uint head_dim;
        uint n_pairs; // n_rot / 2
        uint pos0;
        uint neox;    // 0: pairs (2i, 2i+1); 1: pairs (i, i + n_pairs)
        float theta_scale;
        float freq_scale;
        uint row0;    // the first row of x
} p;

void main()
{
        uint idx = grid_index();
        if (idx >= p.n_tokens * p.n_head * p.n_pairs)
                return;
        uint i = idx % p.n_pairs, h = (idx / p.n_pairs) % p.n_head;
        uint t = idx / (p.n_pairs * p.n_head);
        float theta = float(p.pos0 + t);
        for (uint k = 0; k < i; k++)
                theta *= p.theta_scale;
        float th = theta * p.freq_scale, c = cos(th), s = sin(th);
        uint base = ((p.row0 + t) * p.n_head + h) * p.head_dim;
        uint a = base + (p.neox != 0 ? i : 2 * i);
        uint b = base + (p.neox != 0 ? i + p.n_pairs : 2 * i + 1);
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
}
