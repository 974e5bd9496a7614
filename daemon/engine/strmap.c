/* SPDX-License-Identifier: MIT */
#include "strmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s, size_t n)
{
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
        for (size_t i = 0; i < n; i++) {
                h ^= (uint8_t)s[i];
                h *= 0x100000001b3ull;
        }
        return h;
}

int slm_strmap_init(SlmStrMap *m, size_t n)
{
        size_t slots = 16;

        while (slots < n * 2) {
                if (slots > SIZE_MAX / 4 / sizeof(SlmStrMapEntry))
                        return -ENOMEM;
                slots *= 2;
        }
        m->slots = calloc(slots, sizeof(SlmStrMapEntry));
        if (!m->slots)
                return -ENOMEM;
        m->n_slots = slots;
        m->n_used = 0;
        return 0;
}

void slm_strmap_clear(SlmStrMap *m)
{
        free(m->slots);
        m->slots = NULL;
        m->n_slots = m->n_used = 0;
}

static SlmStrMapEntry *find(const SlmStrMap *m, const char *key, size_t len)
{
        size_t mask = m->n_slots - 1;

        for (size_t i = hash(key, len) & mask;; i = (i + 1) & mask) {
                SlmStrMapEntry *e = &m->slots[i];
                if (!e->key || (e->len == len && memcmp(e->key, key, len) == 0))
                        return e;
        }
}

int slm_strmap_put(SlmStrMap *m, const char *key, size_t len, int32_t value)
{
        SlmStrMapEntry *e;

        if ((m->n_used + 1) * 2 > m->n_slots) {
                SlmStrMap bigger;
                int r = slm_strmap_init(&bigger, m->n_slots);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < m->n_slots; i++)
                        if (m->slots[i].key)
                                *find(&bigger, m->slots[i].key, m->slots[i].len) = m->slots[i];
                bigger.n_used = m->n_used;
                free(m->slots);
                *m = bigger;
        }
        e = find(m, key, len);
        if (e->key)
                return 0;
        *e = (SlmStrMapEntry){ key ? key : "", len, value };
        m->n_used++;
        return 0;
}

int32_t slm_strmap_get(const SlmStrMap *m, const char *key, size_t len)
{
        const SlmStrMapEntry *e;

        if (!m->n_slots)
                return -1;
        e = find(m, key, len);
        return e->key ? e->value : -1;
}
