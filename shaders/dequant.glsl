// SPDX-License-Identifier: MIT
// Weight rows in the GGUF block layouts, read as 32-bit words from the
// buffer `wq` (so no 8- or 16-bit storage is needed) and dequantized 32
// elements (one "unit") at a time. Exactly one TYPE_* is defined.
//
// Units: F32/F16 32 elements (the last one partial); Q4_0/Q8_0 one block;
// Q4_K/Q5_K/Q6_K one eighth of a 256-element super-block.

uint rd8(uint b)
{
        return (wq[b >> 2] >> ((b & 3u) << 3)) & 0xffu;
}

int rds8(uint b)
{
        return int(rd8(b) << 24) >> 24;
}

// 16-bit values sit at even offsets in every layout, so they never straddle words.
float rdh(uint b)
{
        return unpackHalf2x16((wq[b >> 2] >> ((b & 2u) << 3)) & 0xffffu).x;
}

#if defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
// The 6-bit scale and min of sub-block j from the 12 packed bytes at s.
void scale_min_k4(uint j, uint s, out float sc, out float m)
{
        if (j < 4) {
                sc = float(rd8(s + j) & 63u);
                m = float(rd8(s + j + 4) & 63u);
        } else {
                sc = float((rd8(s + j + 4) & 15u) | ((rd8(s + j - 4) >> 6) << 4));
                m = float((rd8(s + j + 4) >> 4) | ((rd8(s + j) >> 6) << 4));
        }
}
#endif

// The elements [32u, 32u + 32) of the row starting at byte rb; n_in elements in the row.
void load_unit(uint rb, uint u, uint n_in, out float v[32])
{
#if defined(TYPE_F32)
        for (uint i = 0; i < 32; i++) {
                uint e = u * 32 + i;
                v[i] = e < n_in ? uintBitsToFloat(wq[(rb >> 2) + e]) : 0.0;
        }
#elif defined(TYPE_F16)
        for (uint i = 0; i < 32; i++) {
                uint e = u * 32 + i;
                v[i] = e < n_in ? rdh(rb + 2 * e) : 0.0;
        }
#elif defined(TYPE_Q4_0)
        uint bb = rb + u * 18;
        float d = rdh(bb);
        for (uint j = 0; j < 16; j++) {
                uint q = rd8(bb + 2 + j);
                v[j] = d * (float(q & 15u) - 8.0);
                v[j + 16] = d * (float(q >> 4) - 8.0);
        }
#elif defined(TYPE_Q8_0)
        uint bb = rb + u * 34;
        float d = rdh(bb);
        for (uint j = 0; j < 32; j++)
                v[j] = d * float(rds8(bb + 2 + j));
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
#if defined(TYPE_Q4_K)
        uint bb = rb + (u / 8) * 144, qs = bb + 16;
#else
        uint bb = rb + (u / 8) * 176, qh = bb + 16, qs = bb + 48;
#endif
        uint j = u % 8;
        float d = rdh(bb), dmin = rdh(bb + 2), sc, m;
        scale_min_k4(j, bb + 4, sc, m);
        float d1 = d * sc, m1 = dmin * m;
        uint shift = (j & 1u) * 4;
        qs += (j / 2) * 32;
        for (uint l = 0; l < 32; l++) {
                uint q = (rd8(qs + l) >> shift) & 15u;
#if defined(TYPE_Q5_K)
                q |= ((rd8(qh + l) >> j) & 1u) << 4;
#endif
                v[l] = d1 * float(q) - m1;
        }
#elif defined(TYPE_Q6_K)
        uint bb = rb + (u / 8) * 210;
        uint j = u % 8, n = j / 4, g = j % 4;
        float d = rdh(bb + 208);
        uint ql = bb + 64 * n + (g & 1u) * 32, qh = bb + 128 + 32 * n, sc = bb + 192 + 8 * n + 2 * g;
        uint lshift = (g >> 1) * 4, hshift = 2 * g;
        for (uint l = 0; l < 32; l++) {
                uint q = ((rd8(ql + l) >> lshift) & 15u) | (((rd8(qh + l) >> hshift) & 3u) << 4);
                v[l] = d * float(rds8(sc + l / 16)) * (float(q) - 32.0);
        }
#else
#error "no TYPE_* defined"
#endif
}

uint n_units(uint n_in)
{
        return (n_in + 31) / 32;
}
