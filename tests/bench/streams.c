/* SPDX-License-Identifier: MIT */
/*
 * Aggregate decode speed through slmd: N clients, each with its own
 * connection and session, start a greedy generation of the same length at
 * once; prints each stream's decode tokens/s (as Finished reports it),
 * their sum (the aggregate decode speed while all of them run: they start
 * together and have the same length) and the tokens of all streams over
 * the time from the first start to the last finish (prompts and session
 * set-up included).
 *
 * Usage: streams ADDRESS N [TOKENS]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slm-client.h"

typedef struct {
        const char *address;
        unsigned tokens;
        int index;
        pthread_barrier_t *ready;
        SlmFinish fin;
        double t_end;
        int ok;
} Stream;

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *stream(void *data)
{
        Stream *s = data;
        SlmClient *c = NULL;
        SlmSession *sess = NULL;
        SlmClientError err;
        SlmGenerateOptions o;
        char prompt[64];

        if (slm_client_connect_address(s->address, &c, &err) < 0 ||
            slm_client_create_session(c, NULL, &sess, &err) < 0) {
                fprintf(stderr, "streams: %s\n", err.message);
                pthread_barrier_wait(s->ready);
                slm_client_free(c);
                return NULL;
        }
        slm_generate_options_init(&o);
        o.max_tokens = s->tokens;
        o.temperature = 0;
        snprintf(prompt, sizeof(prompt), "Stream %d: once upon a time", s->index);
        pthread_barrier_wait(s->ready);
        s->ok = slm_session_generate(sess, prompt, &o, NULL, NULL, &s->fin, &err) == 0;
        s->t_end = now_s();
        if (!s->ok)
                fprintf(stderr, "streams: %s\n", err.message);
        slm_session_free(sess);
        slm_client_free(c);
        return NULL;
}

int main(int argc, char **argv)
{
        if (argc < 3) {
                fprintf(stderr, "Usage: streams ADDRESS N [TOKENS]\n");
                return 2;
        }
        int n = atoi(argv[2]);
        unsigned tokens = argc > 3 ? (unsigned)atoi(argv[3]) : 64;
        if (n < 1 || n > 64 || tokens < 1) {
                fprintf(stderr, "streams: N is 1..64, TOKENS >= 1\n");
                return 2;
        }
        Stream *s = calloc((size_t)n, sizeof(*s));
        pthread_t *t = calloc((size_t)n, sizeof(*t));
        pthread_barrier_t ready;
        double total = 0, decode = 0, slowest = 1e30, fastest = 0, t_end = 0;

        pthread_barrier_init(&ready, NULL, (unsigned)n + 1);
        for (int i = 0; i < n; i++) {
                s[i] =
                    (Stream){ .address = argv[1], .tokens = tokens, .index = i, .ready = &ready };
                pthread_create(&t[i], NULL, stream, &s[i]);
        }
        pthread_barrier_wait(&ready);
        double t0 = now_s();
        for (int i = 0; i < n; i++)
                pthread_join(t[i], NULL);
        for (int i = 0; i < n; i++) {
                if (!s[i].ok)
                        return 1;
                total += s[i].fin.tokens;
                decode += s[i].fin.tokens_per_second;
                slowest =
                    s[i].fin.tokens_per_second < slowest ? s[i].fin.tokens_per_second : slowest;
                fastest =
                    s[i].fin.tokens_per_second > fastest ? s[i].fin.tokens_per_second : fastest;
                t_end = s[i].t_end > t_end ? s[i].t_end : t_end;
        }
        printf("%2d streams  per stream %6.1f .. %6.1f  decoding %6.1f  all together %6.1f tok/s  "
               "(%.0f tokens in %.2f s)\n",
               n, slowest, fastest, decode, total / (t_end - t0), total, t_end - t0);
        free(s);
        free(t);
        return 0;
}
