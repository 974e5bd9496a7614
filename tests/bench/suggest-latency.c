/* SPDX-License-Identifier: MIT */
/*
 * Suggest latency while another client generates: one "normal" session
 * streams long greedy generations without pause while an "interactive"
 * session (the keyboard) calls Suggest again and again; prints the
 * latency percentiles of those calls and the generation's tokens/s.
 *
 * Usage: suggest-latency ADDRESS [N_SUGGESTS]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slm-client.h"

static atomic_bool stop_gen;
static atomic_long gen_tokens;

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool on_token(const char *text, void *data)
{
        (void)text;
        (void)data;
        atomic_fetch_add(&gen_tokens, 1);
        return !atomic_load(&stop_gen);
}

static void *generate(void *data)
{
        const char *address = data;
        SlmClient *c = NULL;
        SlmClientError err;

        if (slm_client_connect_address(address, &c, &err) < 0) {
                fprintf(stderr, "suggest-latency: %s\n", err.message);
                return NULL;
        }
        while (!atomic_load(&stop_gen)) {
                SlmSessionOptions so = { NULL, "normal", 0 };
                SlmSession *s = NULL;
                SlmGenerateOptions o;
                SlmFinish fin;

                if (slm_client_create_session(c, &so, &s, &err) < 0)
                        break;
                slm_generate_options_init(&o);
                o.max_tokens = 400;
                o.temperature = 0;
                /* a long prompt: its chunks are the longest steps */
                slm_session_generate(s,
                                     "Once upon a time, there was a little girl named Lily. She "
                                     "loved to play outside in the park with her friends. One "
                                     "day, she saw a big red ball under a tree and",
                                     &o, on_token, NULL, &fin, NULL);
                slm_session_free(s);
        }
        slm_client_free(c);
        return NULL;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
        static const char *const texts[] = { "Once upon a", "Once upon a time, there", "The little",
                                             "She was very", "One day, the" };
        int n = argc > 2 ? atoi(argv[2]) : 200;
        SlmClient *c = NULL;
        SlmSession *kb = NULL;
        SlmSessionOptions so = { NULL, "interactive", 0 };
        SlmClientError err;
        pthread_t gen;
        double *lat;

        if (argc < 2 || n < 10 || n > 100000) {
                fprintf(stderr, "usage: suggest-latency ADDRESS [N_SUGGESTS >= 10]\n");
                return 2;
        }
        lat = calloc((size_t)n, sizeof(double));
        if (!lat || slm_client_connect_address(argv[1], &c, &err) < 0 ||
            slm_client_create_session(c, &so, &kb, &err) < 0) {
                fprintf(stderr, "suggest-latency: %s\n", lat ? err.message : "out of memory");
                return 1;
        }
        pthread_create(&gen, NULL, generate, argv[1]);
        while (atomic_load(&gen_tokens) < 5) /* the generation streams */
                nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
        long tok0 = atomic_load(&gen_tokens);
        double t0 = now_ms();
        for (int i = 0; i < n; i++) {
                char **words = NULL;
                double t = now_ms();
                if (slm_session_suggest(kb, texts[i % 5], 3, &words, &err) < 0) {
                        fprintf(stderr, "suggest-latency: Suggest: %s\n", err.message);
                        return 1;
                }
                lat[i] = now_ms() - t;
                slm_strv_free(words);
        }
        double secs = (now_ms() - t0) / 1e3;
        long toks = atomic_load(&gen_tokens) - tok0;
        atomic_store(&stop_gen, true);
        pthread_join(gen, NULL);
        qsort(lat, (size_t)n, sizeof(double), cmp_double);
        printf("suggest n=%d  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  "
               "generation %.0f tokens/s\n",
               n, lat[n / 2], lat[n * 9 / 10], lat[n * 99 / 100], lat[n - 1], (double)toks / secs);
        slm_session_free(kb);
        slm_client_free(c);
        free(lat);
        return 0;
}
