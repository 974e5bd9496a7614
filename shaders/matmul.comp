// SPDX-License-Identifier: MIT
// y[t][row0 + r] = sum_i W[r][i] * x[t][i] for the weight rows of one chunk.
//
// One workgroup per output row and per tile of TILE tokens: each weight unit
// is dequantized once and used for every token of the tile (TILE = 1 is the
// matrix-vector product of decoding, larger tiles serve prompt batches).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 0) const uint TILE = 1;

layout(std430, binding = 0) readonly buffer W { uint wq[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
        uint n_in;      // elements per weight row and per x row
        uint row_bytes; // bytes per weight row
        uint n_rows;    // rows in this chunk
        uint row0;      // the output row of the chunk's first row
        uint n_out;     // elements per y row
        uint n_tokens;
} p;

#include "dequant.glsl"

void main()
{
        uint r = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
        uint t0 = gl_WorkGroupID.z * TILE;
        uint lid = gl_LocalInvocationID.x;
        float acc[TILE];
        float v[32];

        for (uint t = 0; t < TILE; t++)
                acc[t] = 0.0;
        if (r < p.n_rows) {
                uint rb = r * p.row_bytes, nu = n_units(p.n_in);
                for (uint u = lid; u < nu; u += WG) {
                        load_unit(rb, u, p.n_in, v);
                        uint e0 = u * 32, lim = min(32u, p.n_in - e0);
                        for (uint t = 0; t < TILE && t0 + t < p.n_tokens; t++) {
                                uint xb = (t0 + t) * p.n_in + e0;
                                float s = 0.0;
                                for (uint i = 0; i < lim; i++)
                                        s += v[i] * x[xb + i];
                                acc[t] += s;
                        }
                }
        }
        for (uint t = 0; t < TILE; t++) {
                float s = wg_sum(acc[t]);
                if (lid == 0 && r < p.n_rows && t0 + t < p.n_tokens)
                        y[(t0 + t) * p.n_out + p.row0 + r] = s;
        }
}
