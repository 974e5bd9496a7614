/* SPDX-License-Identifier: MIT */
/*
 * Pipelines: every shader binds up to VK_MAX_BINDINGS storage buffers in
 * set 0 and takes at most 128 bytes of push constants (the minimum every
 * device offers), so one layout serves them all. A pipeline is created
 * the first time an op needs it and kept for the backend's life.
 */
#include "vk-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PUSH_MAX 128

int slm_vk_pipelines_init(VkBackend *vk)
{
        VkDescriptorSetLayoutBinding binds[VK_MAX_BINDINGS];
        VkPushConstantRange push = { VK_SHADER_STAGE_COMPUTE_BIT, 0, PUSH_MAX };
        VkDescriptorSetLayoutCreateInfo sci = {
                .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                .bindingCount = VK_MAX_BINDINGS,
                .pBindings = binds,
        };
        VkPipelineLayoutCreateInfo pci = {
                .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                .setLayoutCount = 1,
                .pSetLayouts = &vk->set_layout,
                .pushConstantRangeCount = 1,
                .pPushConstantRanges = &push,
        };

        for (uint32_t i = 0; i < VK_MAX_BINDINGS; i++)
                binds[i] = (VkDescriptorSetLayoutBinding){
                        .binding = i,
                        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                        .descriptorCount = 1,
                        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
                };
        if (vkCreateDescriptorSetLayout(vk->device, &sci, NULL, &vk->set_layout) != VK_SUCCESS ||
            vkCreatePipelineLayout(vk->device, &pci, NULL, &vk->pipeline_layout) != VK_SUCCESS)
                return -ENOMEM;
        return 0;
}

void slm_vk_pipelines_free(VkBackend *vk)
{
        for (size_t i = 0; i < vk->n_pipes; i++)
                vkDestroyPipeline(vk->device, vk->pipes[i].pipeline, NULL);
        free(vk->pipes);
        vk->pipes = NULL;
        vk->n_pipes = 0;
        if (vk->pipeline_layout)
                vkDestroyPipelineLayout(vk->device, vk->pipeline_layout, NULL);
        if (vk->set_layout)
                vkDestroyDescriptorSetLayout(vk->device, vk->set_layout, NULL);
}

static const SlmVkShader *find_shader(const char *name)
{
        for (size_t i = 0; i < slm_vk_n_shaders; i++)
                if (strcmp(slm_vk_shaders[i].name, name) == 0)
                        return &slm_vk_shaders[i];
        return NULL;
}

int slm_vk_pipeline(VkBackend *vk, const char *name, uint32_t tile, VkPipeline *ret)
{
        const SlmVkShader *sh;
        VkShaderModule module;
        VkPipe *pipes;

        for (size_t i = 0; i < vk->n_pipes; i++)
                if (vk->pipes[i].tile == tile && strcmp(vk->pipes[i].name, name) == 0) {
                        *ret = vk->pipes[i].pipeline;
                        return 0;
                }
        sh = find_shader(name);
        if (!sh)
                return -ENOTSUP;

        VkShaderModuleCreateInfo mci = {
                .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                .codeSize = sh->size,
                .pCode = sh->code,
        };
        VkSpecializationMapEntry entry = { 0, 0, sizeof(uint32_t) };
        VkSpecializationInfo spec = { 1, &entry, sizeof(tile), &tile };
        VkComputePipelineCreateInfo cci = {
                .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
                .stage = {
                        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                        .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                        .pName = "main",
                        .pSpecializationInfo = &spec,
                },
                .layout = vk->pipeline_layout,
        };
        VkPipeline pipe;
        VkResult res;

        pipes = realloc(vk->pipes, (vk->n_pipes + 1) * sizeof(*pipes));
        if (!pipes)
                return -ENOMEM;
        vk->pipes = pipes;
        if (vkCreateShaderModule(vk->device, &mci, NULL, &module) != VK_SUCCESS)
                return -ENOMEM;
        cci.stage.module = module;
        res = vkCreateComputePipelines(vk->device, VK_NULL_HANDLE, 1, &cci, NULL, &pipe);
        vkDestroyShaderModule(vk->device, module, NULL);
        if (res != VK_SUCCESS)
                return -ENOMEM;
        vk->pipes[vk->n_pipes++] = (VkPipe){ sh->name, tile, pipe };
        *ret = pipe;
        return 0;
}
