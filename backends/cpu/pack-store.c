/* SPDX-License-Identifier: MIT */
#include "pack-store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
        const void *key;
        SlmType type;
        int64_t n_in, n_out;
        SlmPacked packed;
} Entry;

/* Packed matrices are carved from chunks of at least this size. */
#define CHUNK_BYTES ((size_t)64 << 20)

typedef struct Chunk {
        struct Chunk *next;
        uint8_t *base;
        size_t size, used;
} Chunk;

struct SlmPackStore {
        Entry *entries; /* open addressing, a power of two */
        size_t cap, n;
        Chunk *chunks;
        size_t bytes;
};

int slm_pack_store_new(SlmPackStore **ret_store)
{
        SlmPackStore *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        *ret_store = s;
        return 0;
}

void slm_pack_store_clear(SlmPackStore *s)
{
        while (s->chunks) {
                Chunk *c = s->chunks;
                s->chunks = c->next;
                munmap(c->base, c->size);
                free(c);
        }
        free(s->entries);
        s->entries = NULL;
        s->cap = s->n = 0;
        s->bytes = 0;
}

SlmPackStore *slm_pack_store_free(SlmPackStore *s)
{
        if (s) {
                slm_pack_store_clear(s);
                free(s);
        }
        return NULL;
}

size_t slm_pack_store_bytes(const SlmPackStore *s)
{
        return s->bytes;
}

static size_t slot(const void *key, size_t cap)
{
        uint64_t h = (uint64_t)(uintptr_t)key * 0x9e3779b97f4a7c15ull;
        return (size_t)(h >> 32) & (cap - 1);
}

static Entry *find(SlmPackStore *s, const void *key)
{
        if (!s->cap)
                return NULL;
        for (size_t i = slot(key, s->cap);; i = (i + 1) & (s->cap - 1)) {
                if (s->entries[i].key == key)
                        return &s->entries[i];
                if (!s->entries[i].key)
                        return NULL;
        }
}

static int insert(SlmPackStore *s, const Entry *e, Entry **ret)
{
        if (2 * (s->n + 1) > s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 64;
                Entry *old = s->entries, *table = calloc(cap, sizeof(*table));
                if (!table)
                        return -ENOMEM;
                for (size_t i = 0; i < s->cap; i++)
                        if (old[i].key) {
                                size_t j = slot(old[i].key, cap);
                                while (table[j].key)
                                        j = (j + 1) & (cap - 1);
                                table[j] = old[i];
                        }
                free(old);
                s->entries = table;
                s->cap = cap;
        }
        size_t i = slot(e->key, s->cap);
        while (s->entries[i].key)
                i = (i + 1) & (s->cap - 1);
        s->entries[i] = *e;
        s->n++;
        *ret = &s->entries[i];
        return 0;
}

/* @size bytes, 64-aligned, from the chunks; pages are touched by the packing right after. */
static void *carve(SlmPackStore *s, size_t size)
{
        Chunk *c = s->chunks;

        size = (size + 63) & ~(size_t)63;
        if (!c || c->size - c->used < size) {
                size_t huge = (size_t)2 << 20;
                size_t want = size > CHUNK_BYTES ? (size + huge - 1) / huge * huge : CHUNK_BYTES;
                void *p =
                    mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED)
                        return NULL;
                (void)madvise(p, want, MADV_HUGEPAGE); /* a hint */
                c = calloc(1, sizeof(*c));
                if (!c) {
                        munmap(p, want);
                        return NULL;
                }
                *c = (Chunk){ s->chunks, p, want, 0 };
                s->chunks = c;
        }
        void *p = c->base + c->used;
        c->used += size;
        return p;
}

/*
 * Rows that were packed are not read by matrix products again. Where they
 * lie in a read-only file mapping (the model file), drop them from this
 * process's pages: the page cache keeps them for whoever reads them next
 * (get_rows on a tied embedding), and resident memory holds one copy of
 * the weights, the packed one. Anonymous memory is left alone: dropping it
 * would lose it.
 */
static void drop_file_pages(const void *data, size_t size)
{
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t a = ((uintptr_t)data + page - 1) & ~(page - 1);
        uintptr_t z = ((uintptr_t)data + size) & ~(page - 1);
        FILE *f;
        char line[512];

        if (z <= a || !(f = fopen("/proc/self/maps", "re")))
                return;
        while (fgets(line, sizeof(line), f)) {
                unsigned long lo, hi, inode;
                char perms[8];
                if (sscanf(line, "%lx-%lx %7s %*s %*s %lu", &lo, &hi, perms, &inode) != 4)
                        continue;
                if (a < lo || z > hi)
                        continue;
                if (inode != 0 && perms[1] == '-')
                        (void)madvise((void *)a, z - a, MADV_DONTNEED);
                break;
        }
        fclose(f);
}

typedef struct {
        const SlmMatrix *w;
        const SlmPacked *packed;
} PackTask;

/* Groups in pairs where the kernel reads pairs, an odd last group alone. */
static void pack_task(void *data, int ith, int nth)
{
        const PackTask *t = data;
        const SlmMatrix *w = t->w;
        const SlmPackKernel *k = t->packed->kernel;
        long long n_groups = w->n_out / SLM_PACK_ROWS, per = k->gemm2 ? 2 : 1, start, end;

        slm_split((n_groups + per - 1) / per, ith, nth, &start, &end);
        for (long long g = start * per; g < end * per && g < n_groups; g += per) {
                const uint8_t *rows =
                    (const uint8_t *)w->data + (size_t)g * SLM_PACK_ROWS * w->row_bytes;
                uint8_t *dst = (uint8_t *)t->packed->data + (size_t)g * t->packed->group_bytes;
                if (per == 2 && g + 1 < n_groups)
                        slm_pack_pair(k, w->n_in, rows, w->row_bytes, dst);
                else
                        k->layout->pack(w->n_in, rows, w->row_bytes, dst);
        }
}

SlmPacked slm_pack_store_get(SlmPackStore *s, SlmPool *pool, const SlmMatrix *w)
{
        const SlmPacked rows = { 0 }; /* no kernel: the rows serve */
        Entry *e = find(s, w->data), fresh = { w->data, w->type, w->n_in, w->n_out, { 0 } };
        const SlmPackKernel *k;
        size_t total = 0;

        if (e && e->type == w->type && e->n_in == w->n_in && e->n_out == w->n_out)
                return e->packed;
        if (e) /* the same rows seen as another matrix: keep to the rows */
                return rows;
        k = slm_cpu_pack_kernel(w->type);
        if (k && w->n_out % SLM_PACK_ROWS == 0 && w->n_in % k->layout->block_size == 0) {
                size_t group =
                    (size_t)(w->n_in / k->layout->block_size) * k->layout->group_block_bytes;
                total = group * (size_t)(w->n_out / SLM_PACK_ROWS);
                void *data = carve(s, total);
                if (data) /* else no memory for a copy: the rows serve, only slower */
                        fresh.packed = (SlmPacked){ k, data, group };
        }
        if (insert(s, &fresh, &e) < 0)
                return rows; /* a copy carved already stays in its chunk until clear */
        if (e->packed.kernel) {
                PackTask task = { w, &e->packed };
                s->bytes += total;
                slm_pool_run(pool, pack_task, &task);
                drop_file_pages(w->data, (size_t)w->n_out * w->row_bytes);
        }
        return e->packed;
}
