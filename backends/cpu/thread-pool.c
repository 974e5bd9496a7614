/* SPDX-License-Identifier: MIT */
/*
 * Tasks are handed over through an atomic generation counter. A worker that
 * finished spins on it for a short while (decode runs a few hundred tasks
 * per token, microseconds apart, and a futex wake-up costs about as much
 * as a small task), then sleeps on a condition variable so an idle daemon
 * uses no CPU. The caller spins on the count of workers still running.
 */
#include "thread-pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* How long a worker spins for the next task before it sleeps. */
#define SPIN_NS 200000

typedef struct {
        SlmPool *pool;
        int ith;
} Worker;

struct SlmPool {
        int n_threads;
        pthread_t *threads;
        Worker *workers;
        SlmTaskFn fn; /* written before generation moves on */
        void *arg;
        atomic_ulong generation;
        atomic_int pending; /* workers still running the current task */
        atomic_int sleepers;
        atomic_bool stopping;
        pthread_mutex_t lock;
        pthread_cond_t start; /* for sleepers: a new generation, or stopping */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
}

static long long now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The generation after @seen, once there is one; spinning first, then asleep. */
static unsigned long wait_next(SlmPool *p, unsigned long seen)
{
        unsigned long g;
        long long deadline = 0;

        for (unsigned i = 1;; i++) {
                g = atomic_load_explicit(&p->generation, memory_order_acquire);
                if (g != seen || atomic_load(&p->stopping))
                        return g;
                cpu_relax();
                if (i % 1024 == 0) {
                        long long t = now_ns();
                        if (!deadline)
                                deadline = t + SPIN_NS;
                        else if (t > deadline)
                                break;
                }
        }
        pthread_mutex_lock(&p->lock);
        atomic_fetch_add(&p->sleepers, 1);
        while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->stopping))
                pthread_cond_wait(&p->start, &p->lock);
        atomic_fetch_sub(&p->sleepers, 1);
        pthread_mutex_unlock(&p->lock);
        return g;
}

static void *worker_main(void *data)
{
        Worker *w = data;
        SlmPool *p = w->pool;
        unsigned long seen = 0;

        for (;;) {
                seen = wait_next(p, seen);
                if (atomic_load(&p->stopping))
                        return NULL;
                p->fn(p->arg, w->ith, p->n_threads);
                atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
        }
}

int slm_pool_new(int n_threads, SlmPool **ret_pool)
{
        SlmPool *p;

        if (n_threads < 1 || n_threads > 1024)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->n_threads = n_threads;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->start, NULL);
        p->threads = calloc((size_t)n_threads, sizeof(pthread_t));
        p->workers = calloc((size_t)n_threads, sizeof(Worker));
        if (!p->threads || !p->workers) {
                p->n_threads = 1;
                slm_pool_free(p);
                return -ENOMEM;
        }
        for (int i = 1; i < n_threads; i++) {
                p->workers[i] = (Worker){ p, i };
                int r = pthread_create(&p->threads[i], NULL, worker_main, &p->workers[i]);
                if (r != 0) {
                        p->n_threads = i; /* join only the ones started */
                        slm_pool_free(p);
                        return -r;
                }
        }
        *ret_pool = p;
        return 0;
}

SlmPool *slm_pool_free(SlmPool *p)
{
        if (!p)
                return NULL;
        pthread_mutex_lock(&p->lock);
        atomic_store(&p->stopping, true);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->lock);
        for (int i = 1; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->start);
        free(p->threads);
        free(p->workers);
        free(p);
        return NULL;
}

int slm_pool_threads(const SlmPool *p)
{
        return p->n_threads;
}

void slm_pool_run(SlmPool *p, SlmTaskFn fn, void *arg)
{
        if (p->n_threads == 1) {
                fn(arg, 0, 1);
                return;
        }
        p->fn = fn;
        p->arg = arg;
        atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
        /* sequentially consistent with the sleepers' count: a worker going to sleep either
         * sees this generation under the lock or is counted below and woken */
        atomic_fetch_add(&p->generation, 1);
        if (atomic_load(&p->sleepers) > 0) {
                pthread_mutex_lock(&p->lock);
                pthread_cond_broadcast(&p->start);
                pthread_mutex_unlock(&p->lock);
        }
        fn(arg, 0, p->n_threads);
        while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
                cpu_relax();
}
