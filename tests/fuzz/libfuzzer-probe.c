/* SPDX-License-Identifier: MIT */
/* Built at configure time to see whether the compiler can link a libFuzzer target. */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        (void)data;
        (void)size;
        return 0;
}
