/* SPDX-License-Identifier: MIT */
#include "thread-pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct {
        SlmPool *pool;
        int ith;
} Worker;

struct SlmPool {
        int n_threads;
        pthread_t *threads;
        Worker *workers;
        pthread_mutex_t lock;
        pthread_cond_t start; /* a new generation, or stopping */
        pthread_cond_t done;  /* pending reached zero */
        unsigned long generation;
        int pending;
        bool stopping;
        SlmTaskFn fn;
        void *arg;
};

static void *worker_main(void *data)
{
        Worker *w = data;
        SlmPool *p = w->pool;
        unsigned long seen = 0;

        for (;;) {
                pthread_mutex_lock(&p->lock);
                while (p->generation == seen && !p->stopping)
                        pthread_cond_wait(&p->start, &p->lock);
                if (p->stopping) {
                        pthread_mutex_unlock(&p->lock);
                        return NULL;
                }
                seen = p->generation;
                SlmTaskFn fn = p->fn;
                void *arg = p->arg;
                pthread_mutex_unlock(&p->lock);

                fn(arg, w->ith, p->n_threads);

                pthread_mutex_lock(&p->lock);
                if (--p->pending == 0)
                        pthread_cond_signal(&p->done);
                pthread_mutex_unlock(&p->lock);
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
        p->stopping = true;
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
        pthread_mutex_lock(&p->lock);
        p->fn = fn;
        p->arg = arg;
        p->pending = p->n_threads - 1;
        p->generation++;
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->lock);

        fn(arg, 0, p->n_threads);

        pthread_mutex_lock(&p->lock);
        while (p->pending > 0)
                pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
}
