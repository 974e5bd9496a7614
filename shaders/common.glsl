// SPDX-License-Identifier: MIT
// Included first by every shader: the workgroup size and sums across it.
//
// With USE_SUBGROUP the sums use subgroup arithmetic, then one shared slot
// per subgroup; without it, a tree in shared memory. The host picks the
// variant by what the device reports.
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#define WG 64
layout(local_size_x = WG, local_size_y = 1, local_size_z = 1) in;

shared float red_sh[WG];

// NAME(v): v combined by OP over the workgroup, returned to every invocation.
#ifdef USE_SUBGROUP
#define DEFINE_WG_REDUCE(NAME, SUBGROUP_OP, OP)                                \
        float NAME(float v)                                                    \
        {                                                                      \
                v = SUBGROUP_OP(v);                                            \
                if (subgroupElect())                                           \
                        red_sh[gl_SubgroupID] = v;                             \
                barrier();                                                     \
                float r = red_sh[0];                                           \
                for (uint i = 1; i < gl_NumSubgroups; i++)                     \
                        r = OP(r, red_sh[i]);                                  \
                barrier();                                                     \
                return r;                                                      \
        }
#else
#define DEFINE_WG_REDUCE(NAME, SUBGROUP_OP, OP)                                \
        float NAME(float v)                                                    \
        {                                                                      \
                uint lid = gl_LocalInvocationID.x;                             \
                red_sh[lid] = v;                                               \
                barrier();                                                     \
                for (uint s = WG / 2; s > 0; s >>= 1) {                        \
                        if (lid < s)                                           \
                                red_sh[lid] = OP(red_sh[lid], red_sh[lid + s]); \
                        barrier();                                             \
                }                                                              \
                float r = red_sh[0];                                           \
                barrier();                                                     \
                return r;                                                      \
        }
#endif

float add2(float a, float b)
{
        return a + b;
}

DEFINE_WG_REDUCE(wg_sum, subgroupAdd, add2)
DEFINE_WG_REDUCE(wg_max, subgroupMax, max)

// Element-wise shaders run over a 2-D grid of workgroups so counts past the
// 65535-group limit of one dimension still fit.
uint grid_index()
{
        return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG +
               gl_LocalInvocationID.x;
}
