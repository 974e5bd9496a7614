/* SPDX-License-Identifier: MIT */
/* Built in place of the Vulkan backend where the build found no Vulkan or glslang. */
#include "slm-backend.h"

#include <errno.h>

int slm_backend_vulkan_new(int n_threads, bool allow_cpu_device, SlmBackend **ret_backend)
{
        (void)n_threads;
        (void)allow_cpu_device;
        (void)ret_backend;
        return -ENODEV;
}
