// SPDX-License-Identifier: MIT
// The index of the largest of n values (the first on ties), one workgroup.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer R { uint result[]; };

layout(push_constant) uniform Push {
        uint n;
} p;

shared float best_v[WG];
shared uint best_i[WG];

void main()
{
        uint lid = gl_LocalInvocationID.x;
        float bv = uintBitsToFloat(0xff800000u);
        uint bi = 0xffffffffu;

        for (uint i = lid; i < p.n; i += WG)
                if (bi == 0xffffffffu || x[i] > bv) {
                        bv = x[i];
                        bi = i;
                }
        best_v[lid] = bv;
        best_i[lid] = bi;
        barrier();
        for (uint s = WG / 2; s > 0; s >>= 1) {
                if (lid < s) {
                        float ov = best_v[lid + s];
                        uint oi = best_i[lid + s];
                        if (oi != 0xffffffffu &&
                            (best_i[lid] == 0xffffffffu || ov > best_v[lid] ||
                             (ov == best_v[lid] && oi < best_i[lid]))) {
                                best_v[lid] = ov;
                                best_i[lid] = oi;
                        }
                }
                barrier();
        }
        if (lid == 0)
                result[0] = best_i[0];
}
