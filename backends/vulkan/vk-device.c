/* SPDX-License-Identifier: MIT */
/*
 * Instance and device: the best physical device with a compute queue
 * (discrete > integrated > virtual > CPU; SLM_VULKAN_DEVICE=N or a name
 * fragment forces one), and what it can do.
 */
#include "vk-debug.h"
#include "vk-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned validation_messages;

unsigned slm_vk_validation_message_count(void)
{
        return __atomic_load_n(&validation_messages, __ATOMIC_RELAXED);
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                 void *user)
{
        (void)type;
        (void)user;
        if (severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
                __atomic_add_fetch(&validation_messages, 1, __ATOMIC_RELAXED);
                fprintf(stderr, "vulkan: %s\n", data->pMessage);
        }
        return VK_FALSE;
}

static bool validation_wanted(void)
{
        const char *v = getenv("SLM_VULKAN_VALIDATE");
        return v && strcmp(v, "1") == 0;
}

static int create_instance(VkBackend *vk)
{
        const char *layers[] = { "VK_LAYER_KHRONOS_validation" };
        const char *exts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
        bool validate = validation_wanted();
        VkApplicationInfo app = {
                .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                .pApplicationName = "slmd",
                .pEngineName = "slm",
                .apiVersion = VK_API_VERSION_1_1,
        };
        VkDebugUtilsMessengerCreateInfoEXT dbg = {
                .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
                .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                                   VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
                .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
                .pfnUserCallback = on_message,
        };
        VkInstanceCreateInfo ci = {
                .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                .pNext = validate ? &dbg : NULL,
                .pApplicationInfo = &app,
                .enabledLayerCount = validate ? 1 : 0,
                .ppEnabledLayerNames = layers,
                .enabledExtensionCount = validate ? 1 : 0,
                .ppEnabledExtensionNames = exts,
        };
        VkResult res = vkCreateInstance(&ci, NULL, &vk->instance);

        if (res != VK_SUCCESS) {
                if (validate)
                        fprintf(stderr, "vulkan: cannot enable the validation layer (%d)\n", res);
                return -ENODEV;
        }
        if (validate) {
                PFN_vkCreateDebugUtilsMessengerEXT create =
                    (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                        vk->instance, "vkCreateDebugUtilsMessengerEXT");
                if (!create || create(vk->instance, &dbg, NULL, &vk->messenger) != VK_SUCCESS)
                        return -ENODEV;
                vk->validating = true;
        }
        return 0;
}

static int type_rank(VkPhysicalDeviceType t)
{
        switch (t) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
                return 4;
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
                return 3;
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
                return 2;
        case VK_PHYSICAL_DEVICE_TYPE_CPU:
                return 1;
        default:
                return 0;
        }
}

static const char *type_name(VkPhysicalDeviceType t)
{
        static const char *const names[] = { "other", "integrated", "discrete", "virtual", "cpu" };
        return (unsigned)t < 5 ? names[t] : "other";
}

static bool compute_queue(VkPhysicalDevice d, uint32_t *ret_family)
{
        VkQueueFamilyProperties fam[16];
        uint32_t n = 16;

        vkGetPhysicalDeviceQueueFamilyProperties(d, &n, fam);
        for (uint32_t i = 0; i < n; i++)
                if (fam[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
                        *ret_family = i;
                        return true;
                }
        return false;
}

static int choose_device(VkBackend *vk, bool allow_cpu_device)
{
        VkPhysicalDevice devs[16];
        uint32_t n = 16, family;
        const char *want = getenv("SLM_VULKAN_DEVICE");
        int best = -1, best_rank = 0;

        if (vkEnumeratePhysicalDevices(vk->instance, &n, devs) < 0 || n == 0)
                return -ENODEV;
        for (uint32_t i = 0; i < n; i++) {
                VkPhysicalDeviceProperties p;
                int rank;

                vkGetPhysicalDeviceProperties(devs[i], &p);
                if (p.apiVersion < VK_API_VERSION_1_1 || !compute_queue(devs[i], &family))
                        continue;
                if (want && *want) {
                        char *end;
                        unsigned long idx = strtoul(want, &end, 10);
                        rank =
                            (*end == '\0' ? idx == i : strstr(p.deviceName, want) != NULL) ? 10 : 0;
                } else {
                        rank = type_rank(p.deviceType);
                        if (rank == 1 && !allow_cpu_device)
                                rank = 0;
                }
                if (rank > best_rank) {
                        best = (int)i;
                        best_rank = rank;
                }
        }
        if (best < 0)
                return -ENODEV;
        vk->phys = devs[best];
        compute_queue(vk->phys, &vk->queue_family);
        return 0;
}

static void probe(VkBackend *vk)
{
        VkPhysicalDeviceSubgroupProperties sg = {
                .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
        };
        VkPhysicalDeviceProperties2 p2 = {
                .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                .pNext = &sg,
        };
        VkPhysicalDeviceShaderFloat16Int8Features i8 = {
                .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        };
        VkPhysicalDevice16BitStorageFeatures s16 = {
                .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        };
        VkPhysicalDeviceFeatures2 f2 = {
                .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                .pNext = &s16,
        };
        const char *force = getenv("SLM_VULKAN_SUBGROUPS");

        vkGetPhysicalDeviceProperties(vk->phys, &vk->props);
        vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->mem_props);
        if (vk->props.apiVersion >= VK_API_VERSION_1_2)
                s16.pNext = &i8; /* core in 1.2 */
        vkGetPhysicalDeviceProperties2(vk->phys, &p2);
        vkGetPhysicalDeviceFeatures2(vk->phys, &f2);
        vk->subgroup_size = sg.subgroupSize;
        /* the shared-memory reductions assume at most WG (64) subgroups of at least 1 */
        vk->subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                             (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                             (sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                             sg.subgroupSize >= 1;
        if (force && strcmp(force, "0") == 0)
                vk->subgroup_arith = false; /* exercise the shared-memory fallback */
        vk->storage16 = s16.storageBuffer16BitAccess;
        vk->max_buffer = vk->props.limits.maxStorageBufferRange;
        const char *max = getenv("SLM_VULKAN_MAX_BUFFER");
        if (max && strtoull(max, NULL, 10) >= 4096 && strtoull(max, NULL, 10) < vk->max_buffer)
                vk->max_buffer = strtoull(max, NULL, 10); /* tests: split weights into chunks */
        /* reported only: the shaders read weights as 32-bit words and need neither */
        vk->int8 = i8.shaderInt8;
        snprintf(vk->description, sizeof(vk->description),
                 "%s (%s, Vulkan %u.%u, subgroup %u%s%s%s, max buffer %u MiB)",
                 vk->props.deviceName, type_name(vk->props.deviceType),
                 VK_API_VERSION_MAJOR(vk->props.apiVersion),
                 VK_API_VERSION_MINOR(vk->props.apiVersion), vk->subgroup_size,
                 vk->subgroup_arith ? " arithmetic" : ", shared-memory sums",
                 vk->storage16 ? ", 16-bit storage" : "", vk->int8 ? ", int8" : "",
                 (unsigned)(vk->max_buffer >> 20));
}

int slm_vk_device_open(VkBackend *vk, bool allow_cpu_device)
{
        float prio = 1.0f;
        VkDeviceQueueCreateInfo qci = {
                .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                .queueCount = 1,
                .pQueuePriorities = &prio,
        };
        VkDeviceCreateInfo dci = {
                .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                .queueCreateInfoCount = 1,
                .pQueueCreateInfos = &qci,
        };
        int r;

        r = create_instance(vk);
        if (r < 0)
                return r;
        r = choose_device(vk, allow_cpu_device);
        if (r < 0)
                return r;
        probe(vk);
        qci.queueFamilyIndex = vk->queue_family;
        if (vkCreateDevice(vk->phys, &dci, NULL, &vk->device) != VK_SUCCESS)
                return -ENODEV;
        vkGetDeviceQueue(vk->device, vk->queue_family, 0, &vk->queue);
        return 0;
}

void slm_vk_device_close(VkBackend *vk)
{
        if (vk->device)
                vkDestroyDevice(vk->device, NULL);
        if (vk->messenger) {
                PFN_vkDestroyDebugUtilsMessengerEXT destroy =
                    (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                        vk->instance, "vkDestroyDebugUtilsMessengerEXT");
                if (destroy)
                        destroy(vk->instance, vk->messenger, NULL);
        }
        if (vk->instance)
                vkDestroyInstance(vk->instance, NULL);
}

bool slm_vk_validating(SlmBackend *b)
{
        return ((VkBackend *)b)->validating;
}

void slm_vk_debug_invalid_call(SlmBackend *b)
{
        VkBackend *vk = (VkBackend *)b;
        VkBufferCreateInfo bci = {
                .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                .size = 0, /* VUID-VkBufferCreateInfo-size-00912 */
                .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
        };
        VkBuffer buf = VK_NULL_HANDLE;

        if (vkCreateBuffer(vk->device, &bci, NULL, &buf) == VK_SUCCESS && buf)
                vkDestroyBuffer(vk->device, buf, NULL);
}
