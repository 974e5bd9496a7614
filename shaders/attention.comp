// SPDX-License-Identifier: MIT
// Causal attention over the KV cache: one workgroup per (head, token).
// Keys are taken CHUNK at a time with a running maximum and sum (the
// softmax is rescaled as the maximum grows), so any context length fits
// in a fixed amount of shared memory. GQA/MQA: head h reads KV head
// h / (n_head / n_head_kv). With KV_F16 the cache holds half-precision values, two per word.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define CHUNK        256
#define MAX_HEAD_DIM 1024

layout(std430, binding = 0) readonly buffer Q { float q[]; };
#ifdef KV_F16
layout(std430, binding = 1) readonly buffer K { uint k[]; };
layout(std430, binding = 2) readonly buffer V { uint v[]; };
#define KV(buf, e) unpackHalf2x16(buf[(e) >> 1])[(e)&1u]
#else
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
#define KV(buf, e) buf[e]
#endif
layout(std430, binding = 3) writeonly buffer O { float o[]; };

layout(push_constant) uniform Push {
        uint pos0;
        uint n_head;
        uint n_head_kv;
        uint head_dim;
        uint n_swa; // attend to the last n_swa positions only; 0: all
        float scale;
        uint row0;  // the first row of q and o
} p;

shared float q_sh[MAX_HEAD_DIM];
shared float o_sh[MAX_HEAD_DIM];
shared float s_sh[CHUNK];

void main()
{
        uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, lid = gl_LocalInvocationID.x;
        uint hd = p.head_dim, qd = p.n_head * hd, kvd = p.n_head_kv * hd;
        uint kv_off = (h / (p.n_head / p.n_head_kv)) * hd;
        uint n_kv = p.pos0 + t + 1;
        uint first = p.n_swa > 0 && n_kv > p.n_swa ? n_kv - p.n_swa : 0;
        float m = uintBitsToFloat(0xff800000u), l = 0.0;

        for (uint d = lid; d < hd; d += WG) {
                q_sh[d] = q[(p.row0 + t) * qd + h * hd + d];
                o_sh[d] = 0.0;
        }
        barrier();
        for (uint c0 = first; c0 < n_kv; c0 += CHUNK) {
                uint cn = min(uint(CHUNK), n_kv - c0);
                float lmax = uintBitsToFloat(0xff800000u);
                for (uint j = lid; j < cn; j += WG) {
                        uint kb = (c0 + j) * kvd + kv_off;
                        float s = 0.0;
                        for (uint d = 0; d < hd; d++)
                                s += q_sh[d] * KV(k, kb + d);
                        s *= p.scale;
                        s_sh[j] = s;
                        lmax = max(lmax, s);
                }
                float m_new = max(m, wg_max(lmax));
                float corr = exp(m - m_new);
                float lsum = 0.0;
                for (uint j = lid; j < cn; j += WG) {
                        float e = exp(s_sh[j] - m_new);
                        s_sh[j] = e;
                        lsum += e;
                }
                l = l * corr + wg_sum(lsum);
                for (uint d = lid; d < hd; d += WG) {
                        float acc = o_sh[d] * corr;
                        for (uint j = 0; j < cn; j++)
                                acc += s_sh[j] * KV(v, (c0 + j) * kvd + kv_off + d);
                        o_sh[d] = acc;
                }
                m = m_new;
                barrier();
        }
        for (uint d = lid; d < hd; d += WG)
                o[(p.row0 + t) * qd + h * hd + d] = o_sh[d] / l;
}
