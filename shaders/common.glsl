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

#ifdef USE_SUBGROUP
shared float red_sh[WG];

float wg_sum(float v)
{
        v = subgroupAdd(v);
        if (subgroupElect())
                red_sh[gl_SubgroupID] = v;
        barrier();
        float s = 0.0;
        for (uint i = 0; i < gl_NumSubgroups; i++)
                s += red_sh[i];
        barrier();
        return s;
}

float wg_max(float v)
{
        v = subgroupMax(v);
        if (subgroupElect())
                red_sh[gl_SubgroupID] = v;
        barrier();
        float s = red_sh[0];
        for (uint i = 1; i < gl_NumSubgroups; i++)
                s = max(s, red_sh[i]);
        barrier();
        return s;
}
#else
shared float red_sh[WG];

float wg_sum(float v)
{
        uint lid = gl_LocalInvocationID.x;
        red_sh[lid] = v;
        barrier();
        for (uint s = WG / 2; s > 0; s >>= 1) {
                if (lid < s)
                        red_sh[lid] += red_sh[lid + s];
                barrier();
        }
        float r = red_sh[0];
        barrier();
        return r;
}

float wg_max(float v)
{
        uint lid = gl_LocalInvocationID.x;
        red_sh[lid] = v;
        barrier();
        for (uint s = WG / 2; s > 0; s >>= 1) {
                if (lid < s)
                        red_sh[lid] = max(red_sh[lid], red_sh[lid + s]);
                barrier();
        }
        float r = red_sh[0];
        barrier();
        return r;
}
#endif

// Element-wise shaders run over a 2-D grid of workgroups so counts past the
// 65535-group limit of one dimension still fit.
uint grid_index()
{
        return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG +
               gl_LocalInvocationID.x;
}
