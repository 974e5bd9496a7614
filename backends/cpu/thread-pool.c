/* SPDX-License-Identifier: MIT */
/*
 * Tasks are handed over through an atomic generation counter. Decode runs
 * a few hundred pool tasks per token, microseconds apart, and a futex
 * wake-up costs about as much as a small task, so a worker that finished
 * spins on the counter for a short while before it sleeps on a condition
 * variable, and the caller spins the same short while on the count of
 * workers still running before it sleeps.
 *
 * The spin must outlast a wake-up, which on a virtual machine takes tens
 * of microseconds: with a 20 µs spin, once one thread slept the other's
 * spin ran out while it woke, and from then on both slept at almost every
 * task (slmd with eight streams on two cores: 300 context switches a step
 * instead of 70, a third less speed). It is no longer than that because
 * with more threads than cores (tests in parallel, other programs) a
 * spinning thread only takes time from the one it waits for; the back-off
 * below covers that case.
 */
#include "thread-pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* How long a waiting thread spins before it sleeps. */
#define SPIN_NS 100000

/*
 * Each waiting thread keeps its own record of spins that ran out. Misses
 * in a row raise its level, a spin that ends in time lowers it, and after
 * a miss it goes 2^level - 1 waits without a spin: a thread whose peers
 * keep getting preempted stops wasting their time, and one that missed
 * once (a long step between two tasks) spins again soon.
 */
#define MAX_LEVEL 6

typedef struct {
        int skip; /* waits to go without spinning */
        int level;
} SpinState;

typedef struct {
        SlmPool *pool;
        int ith;
        SpinState spin;
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
        atomic_bool caller_sleeping;
        SpinState caller_spin;
        atomic_bool stopping;
        pthread_mutex_t lock;
        pthread_cond_t start; /* for sleeping workers: a new generation, or stopping */
        pthread_cond_t done;  /* for a sleeping caller: pending reached zero */
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

/* Spin until @done(p, arg) or SPIN_NS have passed; whether it is done. */
static bool spin(SlmPool *p, SpinState *s, bool (*done)(SlmPool *p, unsigned long arg),
                 unsigned long arg)
{
        long long start = 0;

        if (s->skip > 0) {
                s->skip--;
                return done(p, arg);
        }
        for (unsigned i = 1;; i++) {
                if (done(p, arg)) {
                        if (s->level > 0)
                                s->level--;
                        return true;
                }
                cpu_relax();
                if (i % 256 == 0) {
                        long long t = now_ns();
                        if (!start) {
                                start = t;
                        } else if (t - start > SPIN_NS) {
                                if (s->level < MAX_LEVEL)
                                        s->level++;
                                s->skip = (1 << s->level) - 1;
                                return false;
                        }
                }
        }
}

static bool moved_on(SlmPool *p, unsigned long seen)
{
        return atomic_load_explicit(&p->generation, memory_order_acquire) != seen ||
               atomic_load_explicit(&p->stopping, memory_order_relaxed);
}

static bool all_done(SlmPool *p, unsigned long unused)
{
        (void)unused;
        return atomic_load_explicit(&p->pending, memory_order_acquire) == 0;
}

/* Sleeping and waking are sequentially consistent with the counters: each side writes
 * its own flag, then reads the other's, so one of them always sees the other. */
static void *worker_main(void *data)
{
        Worker *w = data;
        SlmPool *p = w->pool;
        unsigned long seen = 0;

        for (;;) {
                if (!spin(p, &w->spin, moved_on, seen)) {
                        pthread_mutex_lock(&p->lock);
                        atomic_fetch_add(&p->sleepers, 1);
                        while (atomic_load(&p->generation) == seen && !atomic_load(&p->stopping))
                                pthread_cond_wait(&p->start, &p->lock);
                        atomic_fetch_sub(&p->sleepers, 1);
                        pthread_mutex_unlock(&p->lock);
                }
                if (atomic_load(&p->stopping))
                        return NULL;
                seen = atomic_load(&p->generation);
                p->fn(p->arg, w->ith, p->n_threads);
                if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping)) {
                        pthread_mutex_lock(&p->lock);
                        pthread_cond_signal(&p->done);
                        pthread_mutex_unlock(&p->lock);
                }
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
        pthread_cond_init(&p->done, NULL);
        p->threads = calloc((size_t)n_threads, sizeof(pthread_t));
        p->workers = calloc((size_t)n_threads, sizeof(Worker));
        if (!p->threads || !p->workers) {
                p->n_threads = 1;
                slm_pool_free(p);
                return -ENOMEM;
        }
        for (int i = 1; i < n_threads; i++) {
                p->workers[i] = (Worker){ p, i, { 0, 0 } };
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
        pthread_cond_destroy(&p->done);
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
        atomic_store(&p->pending, p->n_threads - 1);
        atomic_fetch_add(&p->generation, 1);
        if (atomic_load(&p->sleepers) > 0) {
                pthread_mutex_lock(&p->lock);
                pthread_cond_broadcast(&p->start);
                pthread_mutex_unlock(&p->lock);
        }
        fn(arg, 0, p->n_threads);
        if (spin(p, &p->caller_spin, all_done, 0))
                return;
        pthread_mutex_lock(&p->lock);
        atomic_store(&p->caller_sleeping, true);
        while (atomic_load(&p->pending) > 0)
                pthread_cond_wait(&p->done, &p->lock);
        atomic_store(&p->caller_sleeping, false);
        pthread_mutex_unlock(&p->lock);
}
