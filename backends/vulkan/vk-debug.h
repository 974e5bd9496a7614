/* SPDX-License-Identifier: MIT */
/* What tests may ask of the Vulkan backend beyond the backend interface. */
#pragma once

#include <stdbool.h>

#include "slm-backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Warnings and errors the validation layer reported so far, in this process. */
unsigned slm_vk_validation_message_count(void);
/* Whether @b runs with the validation layer (SLM_VULKAN_VALIDATE=1 at creation). */
bool slm_vk_validating(SlmBackend *b);
/* Make one invalid Vulkan call that the validation layer must report (a zero-sized buffer). */
void slm_vk_debug_invalid_call(SlmBackend *b);
/* Weight chunks of the matrix whose data is @host, 0 when not on the device. */
int slm_vk_weight_chunks(SlmBackend *b, const void *host);

#ifdef __cplusplus
}
#endif
