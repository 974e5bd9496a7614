// SPDX-License-Identifier: MIT
// The embedding lookup: y[i] = scale * W[ids[i]], for the ids that fall in
// this chunk of W's rows. One workgroup per id.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer W { uint wq[]; };
layout(std430, binding = 1) readonly buffer Ids { uint ids[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
        uint n_in;
        uint row_bytes;
        uint n_rows; // rows in this chunk
        uint row0;   // the first row of the chunk
        uint n_ids;
        float scale;
} p;

#include "dequant.glsl"

void main()
{
        uint i = gl_WorkGroupID.x;
        float v[32];

        if (i >= p.n_ids || ids[i] < p.row0 || ids[i] - p.row0 >= p.n_rows)
                return;
        uint rb = (ids[i] - p.row0) * p.row_bytes, nu = n_units(p.n_in);
        for (uint u = gl_LocalInvocationID.x; u < nu; u += WG) {
                load_unit(rb, u, p.n_in, v);
                uint e0 = u * 32, lim = min(32u, p.n_in - e0);
                for (uint j = 0; j < lim; j++)
                        y[i * p.n_in + e0 + j] = p.scale * v[j];
        }
}
