/* SPDX-License-Identifier: MIT */
/*
 * Recording: ops append dispatches to one command buffer, which runs when
 * the host needs a result (a read, argmax) or the step grows long. A
 * barrier goes in only where data flows: before a dispatch that reads a
 * buffer written since the last barrier, or writes one read or written
 * since then. Descriptor sets come from pools that are reset after each
 * submission.
 */
#include "vk-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SETS_PER_POOL  512
#define MAX_DISPATCHES 4096 /* a longer step is split into several submissions */
#define WAIT_NS        60000000000ull

int slm_vk_record_init(VkBackend *vk)
{
        VkCommandPoolCreateInfo pci = {
                .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                .queueFamilyIndex = vk->queue_family,
        };
        VkCommandBufferAllocateInfo cai = {
                .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                .commandBufferCount = 1,
        };
        VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };

        if (vkCreateCommandPool(vk->device, &pci, NULL, &vk->cmd_pool) != VK_SUCCESS)
                return -ENOMEM;
        cai.commandPool = vk->cmd_pool;
        if (vkAllocateCommandBuffers(vk->device, &cai, &vk->cmd) != VK_SUCCESS ||
            vkCreateFence(vk->device, &fci, NULL, &vk->fence) != VK_SUCCESS)
                return -ENOMEM;
        vk->epoch = 1;
        return 0;
}

void slm_vk_record_free(VkBackend *vk)
{
        for (size_t i = 0; i < vk->n_desc_pools; i++)
                vkDestroyDescriptorPool(vk->device, vk->desc_pools[i], NULL);
        free(vk->desc_pools);
        if (vk->fence)
                vkDestroyFence(vk->device, vk->fence, NULL);
        if (vk->cmd_pool)
                vkDestroyCommandPool(vk->device, vk->cmd_pool, NULL);
}

static void barrier(VkBackend *vk, VkPipelineStageFlags dst_stage, VkAccessFlags dst_access)
{
        VkMemoryBarrier mb = {
                .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                .dstAccessMask = dst_access,
        };

        vkCmdPipelineBarrier(vk->cmd,
                             VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                             dst_stage, 0, 1, &mb, 0, NULL, 0, NULL);
        vk->epoch++;
}

static void device_barrier(VkBackend *vk)
{
        barrier(vk, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                    VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
}

static int begin(VkBackend *vk)
{
        VkCommandBufferBeginInfo bi = {
                .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
        };

        if (vk->recording)
                return 0;
        if (vkBeginCommandBuffer(vk->cmd, &bi) != VK_SUCCESS)
                return -ENOMEM;
        vk->recording = true;
        vk->n_dispatches = 0;
        /* what earlier submissions wrote is visible to this one */
        device_barrier(vk);
        return 0;
}

/* Place a barrier if any access of this command depends on one since the last. */
static void track(VkBackend *vk, VkBuf *const *bufs, int n, unsigned reads, unsigned writes)
{
        bool need = false;

        for (int i = 0; i < n; i++) {
                if (!bufs[i])
                        continue;
                if ((reads & (1u << i)) && bufs[i]->write_epoch == vk->epoch)
                        need = true;
                if ((writes & (1u << i)) &&
                    (bufs[i]->write_epoch == vk->epoch || bufs[i]->read_epoch == vk->epoch))
                        need = true;
        }
        if (need)
                device_barrier(vk);
        for (int i = 0; i < n; i++) {
                if (!bufs[i])
                        continue;
                if (reads & (1u << i))
                        bufs[i]->read_epoch = vk->epoch;
                if (writes & (1u << i))
                        bufs[i]->write_epoch = vk->epoch;
        }
}

static int alloc_set(VkBackend *vk, VkDescriptorSet *ret)
{
        VkDescriptorPoolSize size = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      SETS_PER_POOL * VK_MAX_BINDINGS };
        VkDescriptorPoolCreateInfo pci = {
                .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                .maxSets = SETS_PER_POOL,
                .poolSizeCount = 1,
                .pPoolSizes = &size,
        };
        VkDescriptorSetAllocateInfo ai = {
                .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                .descriptorSetCount = 1,
                .pSetLayouts = &vk->set_layout,
        };

        if (vk->n_desc_pools == 0 || vk->sets_in_pool == SETS_PER_POOL) {
                if (vk->n_desc_pools > 0)
                        vk->cur_desc_pool++;
                if (vk->cur_desc_pool >= vk->n_desc_pools) {
                        VkDescriptorPool *p =
                            realloc(vk->desc_pools, (vk->n_desc_pools + 1) * sizeof(*p));
                        if (!p)
                                return -ENOMEM;
                        vk->desc_pools = p;
                        if (vkCreateDescriptorPool(vk->device, &pci, NULL, &p[vk->n_desc_pools]) !=
                            VK_SUCCESS)
                                return -ENOMEM;
                        vk->cur_desc_pool = vk->n_desc_pools++;
                }
                vk->sets_in_pool = 0;
        }
        ai.descriptorPool = vk->desc_pools[vk->cur_desc_pool];
        if (vkAllocateDescriptorSets(vk->device, &ai, ret) != VK_SUCCESS)
                return -ENOMEM;
        vk->sets_in_pool++;
        return 0;
}

int slm_vk_dispatch(VkBackend *vk, VkPipeline pipe, VkBuf *const *bufs, int n_bufs, unsigned reads,
                    unsigned writes, const void *push, size_t push_size, uint32_t x, uint32_t y,
                    uint32_t z)
{
        VkDescriptorBufferInfo info[VK_MAX_BINDINGS];
        VkWriteDescriptorSet wr[VK_MAX_BINDINGS];
        VkDescriptorSet set;
        int r;

        if (x == 0 || y == 0 || z == 0)
                return 0;
        if (vk->n_dispatches >= MAX_DISPATCHES && (r = slm_vk_flush(vk)) < 0)
                return r;
        if ((r = begin(vk)) < 0 || (r = alloc_set(vk, &set)) < 0)
                return r;
        track(vk, bufs, n_bufs, reads, writes);
        for (int i = 0; i < VK_MAX_BINDINGS; i++) {
                VkBuf *b = i < n_bufs && bufs[i] ? bufs[i] : &vk->dummy;
                info[i] = (VkDescriptorBufferInfo){ b->buf, 0, VK_WHOLE_SIZE };
                wr[i] = (VkWriteDescriptorSet){
                        .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                        .dstSet = set,
                        .dstBinding = (uint32_t)i,
                        .descriptorCount = 1,
                        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                        .pBufferInfo = &info[i],
                };
        }
        vkUpdateDescriptorSets(vk->device, VK_MAX_BINDINGS, wr, 0, NULL);
        vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
        vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->pipeline_layout, 0, 1,
                                &set, 0, NULL);
        vkCmdPushConstants(vk->cmd, vk->pipeline_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                           (uint32_t)push_size, push);
        vkCmdDispatch(vk->cmd, x, y, z);
        vk->n_dispatches++;
        return 0;
}

int slm_vk_update(VkBackend *vk, VkBuf *dst, const void *data, size_t n)
{
        VkBuf *bufs[1] = { dst };
        int r;

        if (n == 0 || n > 65536 || n % 4 || n > dst->size)
                return -EINVAL;
        if ((r = begin(vk)) < 0)
                return r;
        track(vk, bufs, 1, 0, 1);
        vkCmdUpdateBuffer(vk->cmd, dst->buf, 0, n, data);
        return 0;
}

int slm_vk_flush(VkBackend *vk)
{
        VkSubmitInfo si = {
                .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                .commandBufferCount = 1,
                .pCommandBuffers = &vk->cmd,
        };
        VkResult res;
        int r = 0;

        if (!vk->recording)
                return 0;
        /* the host reads what this step wrote */
        barrier(vk, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
        vkEndCommandBuffer(vk->cmd);
        vk->recording = false;
        res = vkQueueSubmit(vk->queue, 1, &si, vk->fence);
        if (res == VK_SUCCESS)
                res = vkWaitForFences(vk->device, 1, &vk->fence, VK_TRUE, WAIT_NS);
        if (res == VK_TIMEOUT)
                r = -ETIMEDOUT;
        else if (res != VK_SUCCESS)
                r = -EIO;
        if (res == VK_SUCCESS)
                vkResetFences(vk->device, 1, &vk->fence);
        vkResetCommandBuffer(vk->cmd, 0);
        for (size_t i = 0; i < vk->n_desc_pools; i++)
                vkResetDescriptorPool(vk->device, vk->desc_pools[i], 0);
        vk->cur_desc_pool = 0;
        vk->sets_in_pool = 0;
        vk->epoch++;
        return r;
}

void slm_vk_grid(uint64_t n, uint32_t *x, uint32_t *y)
{
        uint64_t groups = (n + 63) / 64;

        *x = groups < 65535 ? (uint32_t)(groups ? groups : 1) : 65535;
        *y = (uint32_t)((groups + *x - 1) / *x);
        if (*y == 0)
                *y = 1;
}
