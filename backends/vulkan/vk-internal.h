/* SPDX-License-Identifier: MIT */
/*
 * The Vulkan backend's pieces, one concern per file:
 *   vk-device.c     instance, device choice, capabilities, queue
 *   vk-memory.c     buffers, tensors, the weight cache, host transfers
 *   vk-pipelines.c  shader modules and pipelines, created once on first use
 *   vk-record.c     the command buffer of one step, barriers, submission
 *   vk-ops.c        the backend ops and the SlmBackendOps table
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#include "slm-backend.h"

#define VK_MAX_BINDINGS 4
#define VK_MAX_CHUNKS   64

typedef struct {
        VkBuffer buf;
        VkDeviceMemory mem;
        VkDeviceSize size;
        void *map; /* persistently mapped where host-visible, else NULL */
        bool coherent;
        /* barrier tracking: the epoch of the last write and read in this step */
        uint64_t write_epoch, read_epoch;
} VkBuf;

/* An SlmTensor whose data lives in one device buffer. */
typedef struct {
        SlmTensor base;
        VkBuf buf;
} VkTensor;

/* A weight (matrix or vector) copied to the device, split by rows into chunks. */
typedef struct {
        const void *host;
        size_t bytes;
        int n_chunks;
        struct {
                VkBuf buf;
                uint32_t row0, n_rows;
        } chunk[VK_MAX_CHUNKS];
} VkWeight;

typedef struct {
        const char *name;
        uint32_t tile;
        VkPipeline pipeline;
} VkPipe;

typedef struct {
        SlmBackend base;
        SlmBackend *cpu; /* runs the weight types no shader reads */

        /* vk-device.c */
        VkInstance instance;
        VkDebugUtilsMessengerEXT messenger;
        VkPhysicalDevice phys;
        VkDevice device;
        VkQueue queue;
        uint32_t queue_family;
        VkPhysicalDeviceProperties props;
        VkPhysicalDeviceMemoryProperties mem_props;
        bool subgroup_arith; /* subgroup arithmetic in compute shaders */
        uint32_t subgroup_size;
        bool storage16, int8;
        bool validating;
        VkDeviceSize max_buffer; /* largest storage buffer (SLM_VULKAN_MAX_BUFFER may lower it) */
        char description[384];

        /* vk-memory.c */
        VkWeight **weights; /* open-addressed by host pointer */
        size_t n_weights, weights_cap;
        VkBuf staging;
        VkBuf ids;    /* token ids for get_rows */
        VkBuf result; /* argmax's answer */
        VkBuf dummy;  /* bound where an op has no buffer */

        /* vk-pipelines.c */
        VkDescriptorSetLayout set_layout;
        VkPipelineLayout pipeline_layout;
        VkPipe *pipes;
        size_t n_pipes;

        /* vk-record.c */
        VkCommandPool cmd_pool;
        VkCommandBuffer cmd;
        VkFence fence;
        VkDescriptorPool *desc_pools;
        size_t n_desc_pools, cur_desc_pool;
        uint32_t sets_in_pool;
        bool recording;
        uint64_t epoch;
        uint32_t n_dispatches;
} VkBackend;

/* vk-device.c */
int slm_vk_device_open(VkBackend *vk, bool allow_cpu_device);
void slm_vk_device_close(VkBackend *vk);

/* vk-memory.c */
int slm_vk_buf_new(VkBackend *vk, VkDeviceSize size, bool host_visible, VkBuf *ret);
void slm_vk_buf_free(VkBackend *vk, VkBuf *b);
int slm_vk_upload(VkBackend *vk, VkBuf *dst, VkDeviceSize off, const void *src, size_t n);
/* n bytes from one buffer to another in a submission of their own, waited for. */
int slm_vk_copy_now(VkBackend *vk, VkBuf *src, VkDeviceSize src_off, VkBuf *dst,
                    VkDeviceSize dst_off, VkDeviceSize n);
int slm_vk_download(VkBackend *vk, VkBuf *src, VkDeviceSize off, void *dst, size_t n);
/* The device copy of a weight of n_rows rows of row_bytes, uploaded on first use. */
int slm_vk_weight(VkBackend *vk, const void *host, size_t row_bytes, int64_t n_rows,
                  VkWeight **ret);
void slm_vk_weights_release(VkBackend *vk);

/* vk-pipelines.c */
int slm_vk_pipelines_init(VkBackend *vk);
void slm_vk_pipelines_free(VkBackend *vk);
/* The pipeline of SPIR-V module @name with TILE = @tile. */
int slm_vk_pipeline(VkBackend *vk, const char *name, uint32_t tile, VkPipeline *ret);

/* vk-record.c */
int slm_vk_record_init(VkBackend *vk);
void slm_vk_record_free(VkBackend *vk);
/*
 * Record one dispatch of @pipe over groups (x, y, z) with @bufs bound in
 * order (NULL: the dummy) and @push as push constants; the reads and
 * writes masks (bit i: bufs[i]) decide where a barrier is needed.
 */
int slm_vk_dispatch(VkBackend *vk, VkPipeline pipe, VkBuf *const *bufs, int n_bufs, unsigned reads,
                    unsigned writes, const void *push, size_t push_size, uint32_t x, uint32_t y,
                    uint32_t z);
/* Record a write of @n bytes (<= 65536, a multiple of 4) into @dst from the command stream. */
int slm_vk_update(VkBackend *vk, VkBuf *dst, const void *data, size_t n);
/* Run everything recorded and wait for it. */
int slm_vk_flush(VkBackend *vk);
/* Groups (x, y) covering n invocations of WG each in a 2-D grid. */
void slm_vk_grid(uint64_t n, uint32_t *x, uint32_t *y);

/* The embedded SPIR-V modules (vk-shader-table.c, generated from shaders/meson.build). */
typedef struct {
        const char *name;
        const uint32_t *code;
        size_t size;
} SlmVkShader;

extern const SlmVkShader slm_vk_shaders[];
extern const size_t slm_vk_n_shaders;
