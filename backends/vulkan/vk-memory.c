/* SPDX-License-Identifier: MIT */
/*
 * Device memory: buffers, transfers between host and device, and the
 * weight cache.
 *
 * Where the device's memory is also host-visible (integrated GPUs, CPU
 * devices) buffers are mapped and written in place; on a discrete GPU
 * they are device-local and filled through a staging buffer. Weights are
 * copied once, on first use, and split by rows into chunks no larger than
 * maxStorageBufferRange.
 */
#include "vk-debug.h"
#include "vk-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STAGING_SIZE (16u << 20)

static int find_memory(VkBackend *vk, uint32_t type_bits, VkMemoryPropertyFlags want, uint32_t *ret)
{
        for (uint32_t i = 0; i < vk->mem_props.memoryTypeCount; i++)
                if ((type_bits & (1u << i)) &&
                    (vk->mem_props.memoryTypes[i].propertyFlags & want) == want) {
                        *ret = i;
                        return 0;
                }
        return -ENOMEM;
}

int slm_vk_buf_new(VkBackend *vk, VkDeviceSize size, bool host_visible, VkBuf *ret)
{
        const VkMemoryPropertyFlags local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                    host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
        VkBufferCreateInfo bci = {
                .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                .size = (size + 15) & ~(VkDeviceSize)15,
                .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                         VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
        };
        VkMemoryRequirements req;
        VkMemoryAllocateInfo mai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO };
        /* a discrete GPU's host-visible window is small: keep its buffers device-local */
        bool map = host_visible || vk->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
        int r;

        memset(ret, 0, sizeof(*ret));
        if (size == 0 || bci.size > vk->props.limits.maxStorageBufferRange)
                return -E2BIG;
        if (vkCreateBuffer(vk->device, &bci, NULL, &ret->buf) != VK_SUCCESS)
                return -ENOMEM;
        vkGetBufferMemoryRequirements(vk->device, ret->buf, &req);
        mai.allocationSize = req.size;
        if (host_visible)
                r = find_memory(vk, req.memoryTypeBits, host, &mai.memoryTypeIndex);
        else if (map &&
                 find_memory(vk, req.memoryTypeBits, local | host, &mai.memoryTypeIndex) == 0)
                r = 0;
        else {
                map = false;
                r = find_memory(vk, req.memoryTypeBits, local, &mai.memoryTypeIndex);
        }
        if (r < 0 || vkAllocateMemory(vk->device, &mai, NULL, &ret->mem) != VK_SUCCESS) {
                slm_vk_buf_free(vk, ret);
                return -ENOMEM;
        }
        vkBindBufferMemory(vk->device, ret->buf, ret->mem, 0);
        ret->size = bci.size;
        if (map) {
                if (vkMapMemory(vk->device, ret->mem, 0, VK_WHOLE_SIZE, 0, &ret->map) !=
                    VK_SUCCESS) {
                        slm_vk_buf_free(vk, ret);
                        return -ENOMEM;
                }
                ret->coherent = vk->mem_props.memoryTypes[mai.memoryTypeIndex].propertyFlags &
                                VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        }
        return 0;
}

void slm_vk_buf_free(VkBackend *vk, VkBuf *b)
{
        if (b->buf)
                vkDestroyBuffer(vk->device, b->buf, NULL);
        if (b->mem)
                vkFreeMemory(vk->device, b->mem, NULL);
        memset(b, 0, sizeof(*b));
}

/* Non-coherent mappings are flushed and invalidated whole: they are rare (no driver here has one).
 */
static void sync_map(VkBackend *vk, VkBuf *b, bool to_device)
{
        VkMappedMemoryRange range = {
                .sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
                .memory = b->mem,
                .size = VK_WHOLE_SIZE,
        };

        if (b->coherent)
                return;
        if (to_device)
                vkFlushMappedMemoryRanges(vk->device, 1, &range);
        else
                vkInvalidateMappedMemoryRanges(vk->device, 1, &range);
}

/* One copy between buffers in its own submission, waited for. */
int slm_vk_copy_now(VkBackend *vk, VkBuf *src, VkDeviceSize src_off, VkBuf *dst,
                    VkDeviceSize dst_off, VkDeviceSize n)
{
        VkCommandBufferAllocateInfo cai = {
                .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                .commandPool = vk->cmd_pool,
                .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                .commandBufferCount = 1,
        };
        VkCommandBufferBeginInfo begin = {
                .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
        };
        VkBufferCopy region = { src_off, dst_off, n };
        VkCommandBuffer cb;
        VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1 };
        int r = 0;

        if (vkAllocateCommandBuffers(vk->device, &cai, &cb) != VK_SUCCESS)
                return -ENOMEM;
        vkBeginCommandBuffer(cb, &begin);
        vkCmdCopyBuffer(cb, src->buf, dst->buf, 1, &region);
        vkEndCommandBuffer(cb);
        si.pCommandBuffers = &cb;
        if (vkQueueSubmit(vk->queue, 1, &si, VK_NULL_HANDLE) != VK_SUCCESS ||
            vkQueueWaitIdle(vk->queue) != VK_SUCCESS)
                r = -EIO;
        vkFreeCommandBuffers(vk->device, vk->cmd_pool, 1, &cb);
        return r;
}

static int staging(VkBackend *vk)
{
        if (vk->staging.buf)
                return 0;
        return slm_vk_buf_new(vk, STAGING_SIZE, true, &vk->staging);
}

int slm_vk_upload(VkBackend *vk, VkBuf *dst, VkDeviceSize off, const void *src, size_t n)
{
        int r;

        if (dst->map) {
                memcpy((uint8_t *)dst->map + off, src, n);
                sync_map(vk, dst, true);
                return 0;
        }
        r = staging(vk);
        for (size_t done = 0; r == 0 && done < n; done += STAGING_SIZE) {
                size_t piece = n - done < STAGING_SIZE ? n - done : STAGING_SIZE;
                memcpy(vk->staging.map, (const uint8_t *)src + done, piece);
                sync_map(vk, &vk->staging, true);
                r = slm_vk_copy_now(vk, &vk->staging, 0, dst, off + done, (piece + 3) & ~(size_t)3);
        }
        return r;
}

int slm_vk_download(VkBackend *vk, VkBuf *src, VkDeviceSize off, void *dst, size_t n)
{
        int r;

        if (src->map) {
                sync_map(vk, src, false);
                memcpy(dst, (const uint8_t *)src->map + off, n);
                return 0;
        }
        r = staging(vk);
        for (size_t done = 0; r == 0 && done < n; done += STAGING_SIZE) {
                size_t piece = n - done < STAGING_SIZE ? n - done : STAGING_SIZE;
                r = slm_vk_copy_now(vk, src, off + done, &vk->staging, 0, piece);
                if (r == 0) {
                        sync_map(vk, &vk->staging, false);
                        memcpy((uint8_t *)dst + done, vk->staging.map, piece);
                }
        }
        return r;
}

/* ---- the weight cache ---------------------------------------------------------------------- */

static size_t slot_of(const void *p, size_t cap)
{
        uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
        return (size_t)(h >> 32) & (cap - 1);
}

static int cache_insert(VkBackend *vk, VkWeight *w)
{
        if (2 * (vk->n_weights + 1) > vk->weights_cap) {
                size_t cap = vk->weights_cap ? 2 * vk->weights_cap : 256;
                VkWeight **t = calloc(cap, sizeof(*t));
                if (!t)
                        return -ENOMEM;
                for (size_t i = 0; i < vk->weights_cap; i++) {
                        VkWeight *o = vk->weights[i];
                        if (!o)
                                continue;
                        size_t s = slot_of(o->host, cap);
                        while (t[s])
                                s = (s + 1) & (cap - 1);
                        t[s] = o;
                }
                free(vk->weights);
                vk->weights = t;
                vk->weights_cap = cap;
        }
        size_t s = slot_of(w->host, vk->weights_cap);
        while (vk->weights[s])
                s = (s + 1) & (vk->weights_cap - 1);
        vk->weights[s] = w;
        vk->n_weights++;
        return 0;
}

static void weight_free(VkBackend *vk, VkWeight *w)
{
        for (int c = 0; c < w->n_chunks; c++)
                slm_vk_buf_free(vk, &w->chunk[c].buf);
        free(w);
}

int slm_vk_weight(VkBackend *vk, const void *host, size_t row_bytes, int64_t n_rows, VkWeight **ret)
{
        size_t bytes = row_bytes * (size_t)n_rows, max = (size_t)vk->max_buffer;
        VkWeight *w;
        int r;

        if (vk->weights_cap) {
                for (size_t s = slot_of(host, vk->weights_cap); vk->weights[s];
                     s = (s + 1) & (vk->weights_cap - 1))
                        if (vk->weights[s]->host == host && vk->weights[s]->bytes == bytes) {
                                *ret = vk->weights[s];
                                return 0;
                        }
        }
        if (row_bytes == 0 || n_rows <= 0 || n_rows > UINT32_MAX || row_bytes + 16 > max)
                return -E2BIG;
        uint64_t rows_per_chunk = (max - 16) / row_bytes;
        uint64_t n_chunks = ((uint64_t)n_rows + rows_per_chunk - 1) / rows_per_chunk;
        if (n_chunks > VK_MAX_CHUNKS)
                return -E2BIG;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->host = host;
        w->bytes = bytes;
        for (uint32_t row0 = 0; row0 < (uint64_t)n_rows; row0 += (uint32_t)rows_per_chunk) {
                uint32_t rows = (uint64_t)n_rows - row0 < rows_per_chunk
                                    ? (uint32_t)((uint64_t)n_rows - row0)
                                    : (uint32_t)rows_per_chunk;
                int c = w->n_chunks;
                r = slm_vk_buf_new(vk, (VkDeviceSize)rows * row_bytes, false, &w->chunk[c].buf);
                if (r == 0) {
                        w->n_chunks++;
                        w->chunk[c].row0 = row0;
                        w->chunk[c].n_rows = rows;
                        r = slm_vk_upload(vk, &w->chunk[c].buf, 0,
                                          (const uint8_t *)host + (size_t)row0 * row_bytes,
                                          (size_t)rows * row_bytes);
                }
                if (r < 0) {
                        weight_free(vk, w);
                        return r;
                }
        }
        r = cache_insert(vk, w);
        if (r < 0) {
                weight_free(vk, w);
                return r;
        }
        *ret = w;
        return 0;
}

void slm_vk_weights_release(VkBackend *vk)
{
        for (size_t i = 0; i < vk->weights_cap; i++)
                if (vk->weights[i])
                        weight_free(vk, vk->weights[i]);
        free(vk->weights);
        vk->weights = NULL;
        vk->n_weights = vk->weights_cap = 0;
}

int slm_vk_weight_chunks(SlmBackend *b, const void *host)
{
        VkBackend *vk = (VkBackend *)b;

        for (size_t i = 0; i < vk->weights_cap; i++)
                if (vk->weights[i] && vk->weights[i]->host == host)
                        return vk->weights[i]->n_chunks;
        return 0;
}
