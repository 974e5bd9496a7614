/* SPDX-License-Identifier: MIT */
/*
 * The CPU backend's packed copies of weight matrices, keyed by the host
 * address of their rows like a device backend's copies: made on first use,
 * kept in anonymous memory backed by huge pages where the kernel allows,
 * and all dropped by slm_pack_store_clear() (release_weights).
 */
#pragma once

#include "cpu-pack.h"
#include "slm-backend.h"
#include "thread-pool.h"

typedef struct SlmPackStore SlmPackStore;

typedef struct {
        const SlmPackKernel *kernel; /* NULL: the matrix stays in rows */
        const uint8_t *data;
        size_t group_bytes; /* one group of eight rows */
} SlmPacked;

int slm_pack_store_new(SlmPackStore **ret_store);
SlmPackStore *slm_pack_store_free(SlmPackStore *s);
void slm_pack_store_clear(SlmPackStore *s);

/*
 * The packed copy of @w, packed now on @pool if it is new. It has no kernel
 * where @w has no packed kernel, its rows do not come in eights or there
 * was no memory for a copy: then the rows serve, only slower. Returned
 * by value: the store's table moves as it grows.
 */
SlmPacked slm_pack_store_get(SlmPackStore *s, SlmPool *pool, const SlmMatrix *w);

/* Bytes of packed weights held. */
size_t slm_pack_store_bytes(const SlmPackStore *s);
