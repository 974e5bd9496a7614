/* SPDX-License-Identifier: MIT */
/* A string-to-int32 hash map with open addressing; keys are borrowed, not copied. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct {
        const char *key;
        size_t len;
        int32_t value;
} SlmStrMapEntry;

typedef struct {
        SlmStrMapEntry *slots;
        size_t n_slots; /* a power of two */
        size_t n_used;
} SlmStrMap;

/* Room for @n entries without growing. */
int slm_strmap_init(SlmStrMap *m, size_t n);
void slm_strmap_clear(SlmStrMap *m);
/* Insert unless present (the first value wins); the key must outlive the map. */
int slm_strmap_put(SlmStrMap *m, const char *key, size_t len, int32_t value);
/* The value for @key, or -1. */
int32_t slm_strmap_get(const SlmStrMap *m, const char *key, size_t len);
