/* SPDX-License-Identifier: MIT */
/*
 * A persistent pool of worker threads. slm_pool_run() hands one task to
 * every thread (the caller takes part as thread 0) and returns when all
 * have finished it; no thread is created per task.
 */
#pragma once

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SlmPool SlmPool;

/* fn(arg, ith, nth): thread ith of nth. */
typedef void (*SlmTaskFn)(void *arg, int ith, int nth);

int slm_pool_new(int n_threads, SlmPool **ret_pool);
SlmPool *slm_pool_free(SlmPool *pool);
int slm_pool_threads(const SlmPool *pool);
void slm_pool_run(SlmPool *pool, SlmTaskFn fn, void *arg);

/* Split [0, n) evenly: the range of thread ith. */
static inline void slm_split(long long n, int ith, int nth, long long *ret_start,
                             long long *ret_end)
{
        *ret_start = n * ith / nth;
        *ret_end = n * (ith + 1) / nth;
}

#ifdef __cplusplus
}
#endif
